/*
 * semver.h - semantic versions of git tags and the floating-tag rule.
 *
 * Grammar: semver.org 2.0.0, with one optional leading 'v' ("v1.2.3",
 * "1.2.3", "1.2.3-rc.1", "v1.2.3+build.5").  Numeric parts have no leading
 * zeros and fit in uint64_t; pre-release and build identifiers are
 * non-empty [0-9A-Za-z-], numeric pre-release identifiers have no leading
 * zeros.  Anything else ("1.2", "v01.2.3", "release-1") is not semver.
 *
 * Template placeholders (expanded by the template module from
 * te_semver_vars):
 *   %semver%        full version without the leading 'v', pre-release
 *                   included, build metadata joined with '_' instead of
 *                   '+' (a docker tag cannot hold '+', the Helm/OCI
 *                   convention): "v1.2.3-rc.1+b7" -> "1.2.3-rc.1_b7"
 *   %semver_major%  "1"       (one number each, so a template writes
 *   %semver_minor%  "2"        %semver_major%.%semver_minor% for ":1.2")
 *   %semver_patch%  "3"
 *
 * Which templates apply to a tag (te_semver_template_applies):
 *  1. A template with no %semver*% placeholder always applies.
 *  2. A template with any %semver*% placeholder is skipped for a tag that
 *     is not semver.
 *  3. A template with %semver% or %semver_patch% names one exact version:
 *     it applies to every semver tag, pre-releases included.
 *  4. Otherwise it is floating (%semver_major% and/or %semver_minor%,
 *     e.g. ":1" or ":1.2"): skipped for pre-releases, and applied only
 *     when the tag is the highest release (no pre-release) of its line
 *     among the repository's tags.  The line is the same major, or the
 *     same major.minor when the template has %semver_minor%.  So pushing
 *     v1.2.9 after v1.3.0 never moves ":1" backwards (it still moves
 *     ":1.2").  Equal precedence (differing build metadata) counts as
 *     highest.
 */
#ifndef TAGEXPORT_SEMVER_H
#define TAGEXPORT_SEMVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/error.h"

/* Longest tag accepted as semver, terminator included. */
#define TE_SEMVER_STR_MAX 256

typedef struct te_semver {
	uint64_t major;
	uint64_t minor;
	uint64_t patch;
	char pre[TE_SEMVER_STR_MAX];   /* "rc.1", "" when none */
	char build[TE_SEMVER_STR_MAX]; /* "build.5", "" when none */
} te_semver;

/**
 * Parse a tag name as a semantic version.
 *
 * @param[out] out  filled on success, zeroed on failure
 * @param tag       e.g. "v1.2.3-rc.1"
 * @return 0, or TE_EINVALID when tag is not semver (err says why)
 */
int te_semver_parse(te_semver *out, const char *tag, te_error *err);

/* Predicate form of te_semver_parse. */
bool te_semver_is_valid(const char *tag);

/**
 * semver.org section 11 precedence: numbers numerically, a version with a
 * pre-release is lower than the same version without, pre-release
 * identifiers compared left to right (numeric < alphanumeric, numbers
 * numerically, text in ASCII order, more identifiers wins a tie); build
 * metadata ignored.  Returns <0, 0 or >0.
 */
int te_semver_compare(const te_semver *a, const te_semver *b);

/* Bits returned by te_semver_template_uses. */
#define TE_SEMVER_USES_FULL (1u << 0)  /* %semver% */
#define TE_SEMVER_USES_MAJOR (1u << 1) /* %semver_major% */
#define TE_SEMVER_USES_MINOR (1u << 2) /* %semver_minor% */
#define TE_SEMVER_USES_PATCH (1u << 3) /* %semver_patch% */

/* Which %semver*% placeholders tpl contains (0: none). */
unsigned int te_semver_template_uses(const char *tpl);

/**
 * Decide whether template tpl is used for tag (rules 1-4 above).
 *
 * @param[out] applies     true when the template must be exported
 * @param tpl              the tag template, e.g. "reg/app:%semver_major%"
 * @param tag              the pushed tag, e.g. "v1.2.9"
 * @param all_repo_tags    every tag name of the repository (may include
 *                         tag itself and non-semver names, which are
 *                         ignored); borrowed; may be NULL when n is 0
 * @param n                number of entries in all_repo_tags
 * @return 0; TE_EINVALID only for NULL tpl or tag
 */
int te_semver_template_applies(bool *applies, const char *tpl, const char *tag,
                               const char *const *all_repo_tags, size_t n,
                               te_error *err);

/* Values of the placeholders for one tag (see the table above). */
typedef struct te_semver_vars {
	char semver[TE_SEMVER_STR_MAX]; /* "1.2.3-rc.1_b7" */
	char major[24];                 /* "1" */
	char minor[24];                 /* "2" */
	char patch[24];                 /* "3" */
} te_semver_vars;

/**
 * Compute the placeholder values of tag.
 *
 * @param[out] out  filled on success, zeroed on failure
 * @return 0, or TE_EINVALID when tag is not semver
 */
int te_semver_vars_get(te_semver_vars *out, const char *tag, te_error *err);

#endif
