/*
 * template.c - --tag templates and the semantic versions of pushed git
 * tags: te_template_render, te_template_validate, te_semver_parse,
 * te_semver_is_valid, te_semver_compare, te_semver_template_uses,
 * te_semver_template_applies and te_semver_vars_get.
 * Input: template NUL git tag NUL image names (one a line) NUL other tags
 * of the repository (one a line).
 */
#include "fuzz.h"
#include "tagexport/semver.h"
#include "tagexport/template.h"

#define MAX_LIST 16

static void semver(const char *tpl, const char *tag, const char *const *tags,
                   size_t ntags)
{
	te_semver a, b;
	te_semver_vars vars;
	te_error err = TE_ERROR_INIT;
	bool applies;
	size_t i;

	(void)te_semver_is_valid(tag);
	(void)te_semver_template_uses(tpl);
	(void)te_semver_vars_get(&vars, tag, &err);
	err = (te_error)TE_ERROR_INIT;
	(void)te_semver_template_applies(&applies, tpl, tag, tags, ntags, &err);
	err = (te_error)TE_ERROR_INIT;
	if (te_semver_parse(&a, tag, &err) < 0)
		return;
	if (te_semver_compare(&a, &a) != 0)
		abort(); /* precedence is reflexive */
	for (i = 0; i < ntags; i++) {
		err = (te_error)TE_ERROR_INIT;
		if (te_semver_parse(&b, tags[i], &err) == 0 &&
		    (te_semver_compare(&a, &b) > 0) !=
		        (te_semver_compare(&b, &a) < 0))
			abort(); /* and antisymmetric */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char commit[] = "0123456789abcdef0123456789abcdef01234567";
	char *f[4], *copy = fuzz_split(data, size, f, 4, NULL);
	const char *images[MAX_LIST], *tags[MAX_LIST];
	size_t nimages, ntags;
	te_template_vars vars = {0};
	te_error err = TE_ERROR_INIT;
	char *out = NULL;

	if (!copy)
		return 0;
	nimages = fuzz_lines(images, MAX_LIST, f[2]);
	ntags = fuzz_lines(tags, MAX_LIST, f[3]);
	vars.image = nimages ? images[0] : "app";
	vars.content_based_tag =
	    "0123456789abcdef0123456789abcdef0123456789abcdef01234567";
	vars.git_tag = *f[1] ? f[1] : NULL;
	vars.git_commit = commit;
	(void)te_template_render(&out, f[0], &vars, &err);
	free(out);
	err = (te_error)TE_ERROR_INIT;
	(void)te_template_validate(f[0], images, nimages, vars.git_tag, commit,
	                           &err);
	semver(f[0], f[1], tags, ntags);
	free(copy);
	return 0;
}
