/*
 * template.h - werf's --tag templates (werf-export.md 4.2, 4.3).
 *
 * Placeholders: %image%, %image_slug%, %image_safe_slug%,
 * %image_content_based_tag%, and tagexport's %git_tag%, %git_commit% and
 * %semver%, %semver_major%, %semver_minor%, %semver_patch% (values of a
 * semantic-version git tag, see semver.h).
 * A %git_tag% that is not a valid tag is passed through werf's DockerTag
 * rule.  Any other %...% or an unbalanced % is an error.
 */
#ifndef TAGEXPORT_TEMPLATE_H
#define TAGEXPORT_TEMPLATE_H

#include <stddef.h>

#include "tagexport/error.h"

typedef struct te_template_vars {
	const char *image;             /* werf image name */
	const char *content_based_tag; /* the image's content-based tag */
	const char *git_tag;           /* NULL when no tag is known */
	const char *git_commit;        /* 40-hex commit id, NULL if unknown */
} te_template_vars;

/* Expand tpl into a heap string (caller frees).  Using %git_tag% while
 * vars->git_tag is NULL is a TE_EINVALID error saying how to provide it. */
int te_template_render(char **out, const char *tpl,
                       const te_template_vars *vars, te_error *err);

/*
 * Validate one template against the final image names, before anything is
 * built: renders it per image with a 56-hex stub content tag and parses the
 * result as a reference; enforces werf's Docker Hub rule (must start with
 * "index.docker.io") and, when several images are exported, that the
 * rendering differs from the first image's.  Errors read
 * `invalid tag template "<tpl>": <cause>`.
 */
int te_template_validate(const char *tpl, const char *const *image_names,
                         size_t nimages, const char *git_tag,
                         const char *git_commit, te_error *err);

#endif
