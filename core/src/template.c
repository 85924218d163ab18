/*
 * template.c - werf export's --tag templates (werf-export.md 4.2, 4.3;
 * werf cmd/werf/export/export.go getExportTagFunc).
 *
 * werf runs the template through Go's text/template with '%' delimiters
 * and functions that emit Sprintf verbs, then Sprintf's the image's
 * values in.  Since every '%' is a delimiter, that is exactly plain
 * substitution of %name% placeholders, which is what this does.  Spaces
 * inside a placeholder ("% image %") are accepted as Go's lexer does; Go
 * template trim markers, pipelines and comments are not.
 */
#include "tagexport/template.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/buf.h"
#include "tagexport/reference.h"
#include "tagexport/semver.h"
#include "tagexport/slug.h"
#include "utf8_int.h"

#define TEMPLATE_MAX 4096
#define RENDER_MAX 16384

/* werf's stub is 70 'x'; tagexport's content-based tags are 56 chars. */
#define CONTENT_TAG_STUB_LEN 56

#define DOCKER_HUB "index.docker.io"

enum placeholder {
	PH_IMAGE,
	PH_IMAGE_SLUG,
	PH_IMAGE_SAFE_SLUG,
	PH_CONTENT_BASED_TAG,
	PH_GIT_TAG,
	PH_GIT_COMMIT,
	PH_SEMVER,
	PH_SEMVER_MAJOR,
	PH_SEMVER_MINOR,
	PH_SEMVER_PATCH,
	PH_COUNT
};

static const char *const ph_names[PH_COUNT] = {
    "image",           "image_slug",
    "image_safe_slug", "image_content_based_tag",
    "git_tag",         "git_commit",
    "semver",          "semver_major",
    "semver_minor",    "semver_patch",
};

#define PH_SEMVER_ANY                                                          \
	((1u << PH_SEMVER) | (1u << PH_SEMVER_MAJOR) |                         \
	 (1u << PH_SEMVER_MINOR) | (1u << PH_SEMVER_PATCH))

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int lookup(const char *name, size_t len)
{
	int i;

	for (i = 0; i < PH_COUNT; i++)
		if (strlen(ph_names[i]) == len &&
		    strncmp(ph_names[i], name, len) == 0)
			return i;
	return -1;
}

static int put_owned(te_buf *out, char *s, te_error *err)
{
	int rc;

	if (!s)
		return err ? err->code : TE_ENOMEM;
	rc = te_buf_puts(out, s, err);
	free(s);
	return rc;
}

static int git_tag_missing(te_error *err)
{
	return te_error_set(err, TE_EINVALID,
	                    "%%git_tag%% is used but no git tag is known: "
	                    "check out a tagged commit or pass --git-tag");
}

/* %semver%, %semver_major%, %semver_minor%, %semver_patch% of the git
 * tag (see semver.h for the values). */
static int expand_semver(te_buf *out, int ph, const char *git_tag,
                         te_error *err)
{
	te_semver_vars sv;
	const char *v;

	if (!git_tag)
		return te_error_set(err, TE_EINVALID,
		                    "%%%s%% is used but no git tag is known: "
		                    "check out a tagged commit or pass "
		                    "--git-tag",
		                    ph_names[ph]);
	if (te_semver_vars_get(&sv, git_tag, NULL) < 0)
		return te_error_set(err, TE_EINVALID,
		                    "%%%s%% needs a semantic version tag such "
		                    "as v1.2.3, not \"%.200s\"",
		                    ph_names[ph], git_tag);
	v = ph == PH_SEMVER         ? sv.semver
	    : ph == PH_SEMVER_MAJOR ? sv.major
	    : ph == PH_SEMVER_MINOR ? sv.minor
	                            : sv.patch;
	return te_buf_puts(out, v, err);
}

static int expand_one(te_buf *out, int ph, const te_template_vars *vars,
                      te_error *err)
{
	char *s = NULL;
	int rc;

	if (ph >= PH_SEMVER)
		return expand_semver(out, ph, vars->git_tag, err);

	if (ph == PH_GIT_TAG) {
		if (!vars->git_tag)
			return git_tag_missing(err);
		if (te_ref_tag_valid(vars->git_tag))
			return te_buf_puts(out, vars->git_tag, err);
		if ((rc = te_slug_docker_tag(&s, vars->git_tag, err)) < 0)
			return rc;
		return put_owned(out, s, err);
	}
	if (ph == PH_GIT_COMMIT) {
		if (!vars->git_commit)
			return te_error_set(err, TE_EINVALID,
			                    "%%git_commit%% is used but the "
			                    "git commit is not known");
		return te_buf_puts(out, vars->git_commit, err);
	}
	if (ph == PH_CONTENT_BASED_TAG) {
		if (!vars->content_based_tag)
			return te_error_set(err, TE_EINVALID,
			                    "%%image_content_based_tag%% is "
			                    "used but the content-based tag "
			                    "is not known");
		return te_buf_puts(out, vars->content_based_tag, err);
	}
	if (!vars->image)
		return te_error_set(err, TE_EINVALID,
		                    "%%%s%% is used but no image name is known",
		                    ph_names[ph]);
	if (ph == PH_IMAGE)
		return te_buf_puts(out, vars->image, err);
	if (ph == PH_IMAGE_SLUG)
		rc = te_slug_slugify(&s, vars->image, err);
	else
		rc = te_slug_docker_tag(&s, vars->image, err);
	if (rc < 0)
		return rc;
	return put_owned(out, s, err);
}

/*
 * Walk tpl; with vars, append the rendering to out.  Without, only check
 * the syntax.  *used collects a bit per placeholder seen.  Errors are the
 * bare cause (callers add the template prefix).
 */
static int expand(te_buf *out, const char *tpl, const te_template_vars *vars,
                  unsigned *used, te_error *err)
{
	const char *p = tpl, *open, *close, *name;
	size_t len;
	int ph, rc;

	*used = 0;
	if (strlen(tpl) > TEMPLATE_MAX)
		return te_error_set(err, TE_EINVALID, "longer than %d bytes",
		                    TEMPLATE_MAX);
	while (*p) {
		open = strchr(p, '%');
		len = open ? (size_t)(open - p) : strlen(p);
		if (vars && len && (rc = te_buf_put(out, p, len, err)) < 0)
			return rc;
		if (!open)
			break;
		close = strchr(open + 1, '%');
		if (!close)
			return te_error_set(err, TE_EINVALID,
			                    "unbalanced '%%' at offset %zu "
			                    "(placeholders are written "
			                    "%%name%%)",
			                    (size_t)(open - tpl));
		name = open + 1;
		len = (size_t)(close - name);
		while (len && is_space(*name)) {
			name++;
			len--;
		}
		while (len && is_space(name[len - 1]))
			len--;
		if (len == 0)
			return te_error_set(err, TE_EINVALID,
			                    "empty placeholder at offset %zu",
			                    (size_t)(open - tpl));
		if ((ph = lookup(name, len)) < 0) {
			char q[80];
			char *n = strndup(name, len < 60 ? len : 60);

			if (!n)
				return te_error_set(err, TE_ENOMEM,
				                    "out of memory");
			te__goquote(q, sizeof(q), n);
			free(n);
			/* %name%, escaped like Go's %q minus the quotes */
			return te_error_set(
			    err, TE_EINVALID,
			    "unknown placeholder %%%.*s%% (known: %%image%%, "
			    "%%image_slug%%, %%image_safe_slug%%, "
			    "%%image_content_based_tag%%, %%git_tag%%, "
			    "%%git_commit%%, %%semver%%, %%semver_major%%, "
			    "%%semver_minor%%, %%semver_patch%%)",
			    (int)strlen(q) - 2, q + 1);
		}
		*used |= 1u << ph;
		if (vars && (rc = expand_one(out, ph, vars, err)) < 0)
			return rc;
		p = close + 1;
	}
	return 0;
}

static int wrap(const char *tpl, te_error *err)
{
	char q[256];

	te__goquote(q, sizeof(q), tpl);
	return te_error_wrap(err, "invalid tag template %s", q);
}

int te_template_render(char **out, const char *tpl,
                       const te_template_vars *vars, te_error *err)
{
	te_buf b = TE_BUF_INIT(RENDER_MAX);
	unsigned used;
	int rc;

	*out = NULL;
	if ((rc = expand(&b, tpl, vars, &used, err)) < 0) {
		wrap(tpl, err);
		goto done;
	}
	if (!(*out = te_buf_detach(&b)))
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
done:
	te_buf_dispose(&b);
	return rc;
}

int te_template_validate(const char *tpl, const char *const *image_names,
                         size_t nimages, const char *git_tag,
                         const char *git_commit, te_error *err)
{
	char stub[CONTENT_TAG_STUB_LEN + 1];
	char *first = NULL, *cur = NULL;
	te_template_vars vars;
	te_ref ref = TE_REF_INIT;
	unsigned used;
	size_t i;
	int rc;

	if ((rc = expand(NULL, tpl, NULL, &used, err)) < 0)
		goto fail;
	if ((used & ((1u << PH_GIT_TAG) | PH_SEMVER_ANY)) && !git_tag) {
		rc = git_tag_missing(err);
		goto fail;
	}
	memset(stub, 'x', CONTENT_TAG_STUB_LEN);
	stub[CONTENT_TAG_STUB_LEN] = '\0';
	vars.content_based_tag = stub;
	vars.git_tag = git_tag;
	vars.git_commit = git_commit;
	for (i = 0; i < nimages; i++) {
		vars.image = image_names[i];
		if ((rc = te_template_render(&cur, tpl, &vars, err)) < 0)
			goto done; /* already wrapped */
		if ((rc = te_ref_parse(&ref, cur, err)) < 0)
			goto fail;
		if (strcmp(ref.domain, "docker.io") == 0 &&
		    strncmp(cur, DOCKER_HUB, strlen(DOCKER_HUB)) != 0) {
			rc = te_error_set(
			    err, TE_EINVALID,
			    "- the command exports images to the registry "
			    "(cannot export them locally); - the user must "
			    "explicitly provide the address "
			    "\"index.docker.io\" when using Docker Hub as "
			    "a registry");
			goto fail;
		}
		te_ref_dispose(&ref);
		if (!first) {
			first = cur;
			cur = NULL;
			continue;
		}
		if (strcmp(cur, first) == 0) {
			rc = te_error_set(
			    err, TE_EINVALID,
			    "tag template must contain image name shortcut "
			    "%%image%% or %%image_slug%% if multiple images "
			    "are exported (e.g. REPO:TAG-%%image%% or "
			    "REPO-%%image%%:TAG)");
			goto fail;
		}
		free(cur);
		cur = NULL;
	}
	rc = 0;
	goto done;
fail:
	wrap(tpl, err);
done:
	te_ref_dispose(&ref);
	free(first);
	free(cur);
	return rc;
}
