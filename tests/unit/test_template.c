#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/slug.h"
#include "tagexport/template.h"

#define COMMIT "0123456789abcdef0123456789abcdef01234567"
#define HUB_MSG                                                                \
	"- the command exports images to the registry (cannot export them "    \
	"locally); - the user must explicitly provide the address "            \
	"\"index.docker.io\" when using Docker Hub as a registry"
#define UNIQUE_MSG                                                             \
	"tag template must contain image name shortcut %image% or "            \
	"%image_slug% if multiple images are exported (e.g. "                  \
	"REPO:TAG-%image% or REPO-%image%:TAG)"

static const te_template_vars app_vars = {"Frontend/App", "cbt123", "v1.0",
                                          COMMIT};

static void render_is(const char *tpl, const te_template_vars *vars,
                      const char *want)
{
	te_error err = TE_ERROR_INIT;
	char *out = NULL;

	if (te_template_render(&out, tpl, vars, &err) != 0)
		fail_msg("%s: %s", tpl, err.msg);
	assert_string_equal(out, want);
	free(out);
}

static void render_fails(const char *tpl, const te_template_vars *vars,
                         const char *msg)
{
	te_error err = TE_ERROR_INIT;
	char *out = (char *)"sentinel";

	assert_int_equal(te_template_render(&out, tpl, vars, &err),
	                 TE_EINVALID);
	assert_null(out);
	if (!strstr(err.msg, msg))
		fail_msg("%s: %s lacks %s", tpl, err.msg, msg);
}

static void placeholders(void **state)
{
	(void)state;
	render_is("r.io/x/%image%", &app_vars, "r.io/x/Frontend/App");
	render_is("r.io/x/%image_slug%:1", &app_vars, "r.io/x/frontend-app:1");
	render_is("r.io/x:%image_safe_slug%", &app_vars,
	          "r.io/x:frontend-app-36ef7b");
	render_is("r.io/x:%image_content_based_tag%", &app_vars,
	          "r.io/x:cbt123");
	render_is("r.io/x:%git_tag%", &app_vars, "r.io/x:v1.0");
	render_is("r.io/x:%git_commit%", &app_vars, "r.io/x:" COMMIT);
	render_is("%image_slug%-%image_slug%%git_tag%", &app_vars,
	          "frontend-app-frontend-appv1.0");
	render_is("no placeholders", &app_vars, "no placeholders");
	render_is("", &app_vars, "");
	/* Go's lexer skips spaces inside an action */
	render_is("r/% image_slug %", &app_vars, "r/frontend-app");
}

static void git_tag_forms(void **state)
{
	te_template_vars v = app_vars;
	char want[64];

	(void)state;
	v.git_tag = "feature/x";
	snprintf(want, sizeof(want), "r:feature-x-%x",
	         (unsigned)te_slug_murmur3("feature/x", 9, 0));
	render_is("r:%git_tag%", &v, want);
	v.git_tag = "V1.2_rc-3";
	render_is("r:%git_tag%", &v, "r:V1.2_rc-3");
	v.git_tag = "-x";
	snprintf(want, sizeof(want), "r:x-%x",
	         (unsigned)te_slug_murmur3("-x", 2, 0));
	render_is("r:%git_tag%", &v, want);
	v.git_tag = NULL;
	render_fails("r:%git_tag%", &v, "--git-tag");
	render_is("r:%image_slug%", &v, "r:frontend-app");
	v.git_commit = NULL;
	render_fails("r:%git_commit%", &v, "git commit");
}

static void semver_placeholders(void **state)
{
	te_template_vars v = app_vars;
	const char *names[] = {"a", "b"};
	te_error err = TE_ERROR_INIT;

	(void)state;
	v.git_tag = "v1.12.3-rc.1+b7";
	render_is("r/%image%:%semver%", &v, "r/Frontend/App:1.12.3-rc.1_b7");
	render_is("r:%semver_major%.%semver_minor%", &v, "r:1.12");
	render_is("r:%semver_patch%", &v, "r:3");
	v.git_tag = "release-7";
	render_fails("r:%semver%", &v, "semantic version");
	v.git_tag = NULL;
	render_fails("r:%semver_major%", &v, "--git-tag");
	assert_int_equal(te_template_validate("r/%image%:%semver_major%", names,
	                                      2, NULL, COMMIT, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "--git-tag"));
	assert_int_equal(te_template_validate("r.io/%image%:%semver_major%",
	                                      names, 2, "v2.0.0", COMMIT, NULL),
	                 0);
}

static void syntax_errors(void **state)
{
	(void)state;
	render_fails("r/%foo%", &app_vars,
	             "invalid tag template \"r/%foo%\": unknown placeholder "
	             "%foo% (known: %image%");
	render_fails("r/% foo %", &app_vars, "unknown placeholder %foo%");
	render_fails("r/%image", &app_vars,
	             "invalid tag template \"r/%image\": unbalanced '%'");
	render_fails("r:50%", &app_vars, "unbalanced '%'");
	render_fails("r/%image%%", &app_vars, "unbalanced '%'");
	render_fails("r/%%", &app_vars, "empty placeholder");
	render_fails("r/%  %", &app_vars, "empty placeholder");
	render_fails("%- image -%", &app_vars, "unknown placeholder");
	render_fails("%Image%", &app_vars, "unknown placeholder %Image%");
	render_fails("%im\nage%", &app_vars, "unknown placeholder %im\\nage%");
}

static void long_template(void **state)
{
	char *tpl = malloc(5000);

	(void)state;
	assert_non_null(tpl);
	memset(tpl, 'a', 4999);
	tpl[4999] = '\0';
	render_fails(tpl, &app_vars, "longer than");
	free(tpl);
}

static void validate_fails(const char *tpl, const char *const *names, size_t n,
                           const char *git_tag, const char *msg)
{
	te_error err = TE_ERROR_INIT;
	char want[600];

	assert_int_equal(
	    te_template_validate(tpl, names, n, git_tag, COMMIT, &err),
	    TE_EINVALID);
	snprintf(want, sizeof(want), "invalid tag template \"%s\": ", tpl);
	assert_memory_equal(err.msg, want, strlen(want));
	if (!strstr(err.msg, msg))
		fail_msg("%s: %s lacks %s", tpl, err.msg, msg);
}

static void validate_ok(const char *tpl, const char *const *names, size_t n,
                        const char *git_tag)
{
	te_error err = TE_ERROR_INIT;

	if (te_template_validate(tpl, names, n, git_tag, COMMIT, &err) != 0)
		fail_msg("%s: %s", tpl, err.msg);
}

static void validation(void **state)
{
	const char *two[] = {"backend", "frontend"};
	const char *upper[] = {"Frontend"};
	const char *apps[] = {"Frontend/App", "Backend"};
	const char *first_only[] = {"a", "b_", "b-"};

	(void)state;
	/* uniqueness rule */
	validate_fails("r.io/x/app:1", two, 2, NULL, UNIQUE_MSG);
	validate_ok("r.io/x/app:1", two, 1, NULL);
	validate_fails("r.io/x/app:%image_content_based_tag%", two, 2, NULL,
	               UNIQUE_MSG);
	validate_ok("r.io/x/app:%image%", two, 2, NULL);
	validate_ok("r.io/x-%image%:v", two, 2, NULL);
	validate_ok("r.io/x:%image_safe_slug%", apps, 2, NULL);
	validate_ok("r.io/x/%image_slug%:t", apps, 2, NULL);
	/* only compared with the first image (b_ and b- both give "b") */
	validate_ok("r.io/x/%image_slug%:1", first_only, 3, NULL);
	/* Docker Hub rule */
	validate_fails("company/app:tag", two, 1, NULL, HUB_MSG);
	validate_fails("docker.io/x/y:1", two, 1, NULL, HUB_MSG);
	validate_fails("%image%", two, 1, NULL, HUB_MSG);
	validate_ok("index.docker.io/x/y:1", two, 1, NULL);
	validate_ok("index.docker.io/x/%image%:1", two, 2, NULL);
	/* reference parse errors */
	validate_fails("r.io/%image%:1", upper, 1, NULL, "must be lowercase");
	validate_ok("r.io/%image_slug%:1", upper, 1, NULL);
	validate_fails("r.io/x:%image%", apps, 1, NULL, "invalid tag");
	validate_fails("r.io/x/%image%:a b", two, 1, NULL, "invalid tag");
	/* the 56-char stub fits in a tag; 73 more chars do not */
	validate_ok("r.io/x:%image_content_based_tag%", two, 1, NULL);
	validate_fails("r.io/x:%image_content_based_tag%-"
	               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	               "aaaaaaaaaaaaaaaaaa",
	               two, 1, NULL, "invalid tag");
	/* git tag */
	validate_fails("r.io/x:%git_tag%", two, 1, NULL, "--git-tag");
	validate_fails("r.io/x:%git_tag%", two, 0, NULL, "--git-tag");
	validate_ok("r.io/x:%git_tag%", two, 1, "feature/x");
	validate_ok("r.io/x/%image%:%git_commit%", two, 2, NULL);
	/* syntax is checked even with no images */
	validate_fails("r.io/%foo%", two, 0, NULL, "unknown placeholder");
	validate_fails("r.io/%image", two, 0, NULL, "unbalanced");
	validate_ok("company/app:tag", two, 0, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(placeholders),
	    cmocka_unit_test(git_tag_forms),
	    cmocka_unit_test(syntax_errors),
	    cmocka_unit_test(long_template),
	    cmocka_unit_test(validation),
	    cmocka_unit_test(semver_placeholders),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
