/* test_imagespec.c - werf's imageSpec: merge, canonical text, apply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "tagexport/imagespec.h"

static void push(te_strvec *v, const char *s)
{
	te_error err = TE_ERROR_INIT;

	assert_int_equal(te_strvec_push(v, s, &err), 0);
}

static void pair(te_strvec *v, const char *k, const char *val)
{
	push(v, k);
	push(v, val);
}

static char *dup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

static const char base_config[] =
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"author\":\"old\","
    "\"config\":{\"User\":\"nobody\",\"WorkingDir\":\"/old\","
    "\"Env\":[\"PATH=/bin\",\"DEBUG=1\",\"TEMP_A=x\",\"KEEP=k\"],"
    "\"Cmd\":[\"old\"],\"Entrypoint\":[\"/old-ep\"],"
    "\"Volumes\":{\"/tmp\":{},\"/data\":{}},"
    "\"ExposedPorts\":{\"9999/tcp\":{}},"
    "\"Labels\":{\"werf\":\"p\",\"werf-stage-content-digest\":\"d\","
    "\"werf-other\":\"o\",\"beta\":\"1\",\"exp.a\":\"2\",\"exp.b\":\"3\","
    "\"keep\":\"4\"}},"
    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
    "\"history\":[{\"created_by\":\"x\"}]}";

/* Apply s to base_config; the result parsed. */
static json_t *apply(const te_imagespec *s)
{
	te_buf out = TE_BUF_INIT(TE_IMAGESPEC_CONFIG_MAX);
	te_error err = TE_ERROR_INIT;
	json_error_t jerr;
	json_t *j;

	if (te_imagespec_apply(&out, base_config, strlen(base_config), s, "app",
	                       "proj", &err) != 0)
		fail_msg("apply: %s", err.msg);
	j = json_loads(out.ptr, 0, &jerr);
	assert_non_null(j);
	te_buf_dispose(&out);
	return j;
}

static const char *cfg_str(json_t *j, const char *key)
{
	return json_string_value(
	    json_object_get(json_object_get(j, "config"), key));
}

static json_t *cfg(json_t *j, const char *key)
{
	return json_object_get(json_object_get(j, "config"), key);
}

static void labels_and_regex(void **state)
{
	te_imagespec s = TE_IMAGESPEC_INIT;
	json_t *j, *l;

	(void)state;
	pair(&s.labels, "version", "1");
	pair(&s.labels, "project-%project%", "%image%-image");
	push(&s.remove_labels, "beta");
	push(&s.remove_labels, "/exp\\..*/");
	push(&s.remove_labels, "/werf.*/");
	j = apply(&s);
	l = cfg(j, "Labels");
	assert_string_equal(json_string_value(json_object_get(l, "version")),
	                    "1");
	assert_string_equal(
	    json_string_value(json_object_get(l, "project-proj")), "app-image");
	assert_null(json_object_get(l, "beta"));
	assert_null(json_object_get(l, "exp.a"));
	assert_null(json_object_get(l, "exp.b"));
	assert_non_null(json_object_get(l, "keep"));
	/* essential werf labels stay, other werf labels go */
	assert_non_null(json_object_get(l, "werf"));
	assert_non_null(json_object_get(l, "werf-stage-content-digest"));
	assert_null(json_object_get(l, "werf-other"));
	json_decref(j);
	te_imagespec_dispose(&s);

	/* the regex matches the whole name (werf anchors ^...$) */
	push(&s.remove_labels, "/exp/");
	push(&s.remove_labels, "kee");
	j = apply(&s);
	assert_non_null(json_object_get(cfg(j, "Labels"), "exp.a"));
	assert_non_null(json_object_get(cfg(j, "Labels"), "keep"));
	json_decref(j);
	te_imagespec_dispose(&s);
}

/* Go's regexp, anchored as werf anchors it: "^RE$" without a group. */
static bool pmatch(const char *pattern, const char *name)
{
	te_error err = TE_ERROR_INIT;
	bool match = true;

	assert_int_equal(
	    te_imagespec_pattern_match(&match, pattern, name, &err), 0);
	return match;
}

static void go_regexp_patterns(void **state)
{
	(void)state;
	assert_true(pmatch("/\\d+/", "2024"));
	assert_false(pmatch("/\\d+/", "v2024"));
	assert_true(pmatch("/(?i)debug_.*/", "DEBUG_LEVEL"));
	assert_true(pmatch("/\\pL+/", "\xc3\xa9t\xc3\xa9"));
	assert_true(pmatch("/\\Qa.b\\E/", "a.b"));
	assert_false(pmatch("/\\Qa.b\\E/", "axb"));
	/* werf builds "^a|b$": a name starting with a, or ending with b */
	assert_true(pmatch("/a|b/", "axx"));
	assert_true(pmatch("/a|b/", "xxb"));
	assert_false(pmatch("/a|b/", "xbx"));
	/* not a regex: exact names, "/" alone included */
	assert_true(pmatch("/", "/"));
	assert_false(pmatch("a.c", "abc"));
}

static void label_templates(void **state)
{
	te_imagespec s = TE_IMAGESPEC_INIT;
	te_error err = TE_ERROR_INIT;

	(void)state;
	pair(&s.labels, "%project%/%image%", "x%image%%y");
	pair(&s.labels, "plain", "100%");
	assert_int_equal(te_imagespec_expand_labels(&s, "app", "shop", &err),
	                 0);
	assert_string_equal(s.labels.items[0], "shop/app");
	assert_string_equal(s.labels.items[1], "xapp%y");
	assert_string_equal(s.labels.items[3], "100%");
	te_imagespec_dispose(&s);
}

static void essential_warning(void **state)
{
	te_imagespec s = TE_IMAGESPEC_INIT;

	(void)state;
	push(&s.remove_labels, "beta");
	assert_false(te_imagespec_warns_essential(&s));
	push(&s.remove_labels, "/werf.*/");
	assert_true(te_imagespec_warns_essential(&s));
	s.keep_essential_werf_labels = true;
	assert_false(te_imagespec_warns_essential(&s));
	te_imagespec_dispose(&s);
	push(&s.remove_labels, "werf-project-repo-commit");
	assert_true(te_imagespec_warns_essential(&s));
	te_imagespec_dispose(&s);
}

static void env_rules(void **state)
{
	te_imagespec s = TE_IMAGESPEC_INIT;
	json_t *j, *env;

	(void)state;
	push(&s.remove_env, "DEBUG");
	push(&s.remove_env, "/TEMP_.*/");
	pair(&s.env, "PATH", "${PATH}:/app/bin");
	pair(&s.env, "NEW", "$KEEP-\\$x-$NOPE-${DEBUG}");
	j = apply(&s);
	env = cfg(j, "Env");
	assert_int_equal(json_array_size(env), 3);
	/* kept in order, PATH replaced where it was dropped, new ones last */
	assert_string_equal(json_string_value(json_array_get(env, 0)),
	                    "KEEP=k");
	assert_string_equal(json_string_value(json_array_get(env, 1)),
	                    "PATH=/bin:/app/bin");
	/* expanded against the original env, removed names included */
	assert_string_equal(json_string_value(json_array_get(env, 2)),
	                    "NEW=k-$x--1");
	json_decref(j);
	te_imagespec_dispose(&s);
}

static void sets_and_scalars(void **state)
{
	te_imagespec s = TE_IMAGESPEC_INIT;
	json_t *j;

	(void)state;
	push(&s.volumes, "/config");
	push(&s.remove_volumes, "/tmp");
	s.has_expose = true;
	push(&s.expose, "8080");
	push(&s.expose, "53/udp");
	s.user = dup("app");
	s.working_dir = dup("/app");
	s.stop_signal = dup("SIGTERM");
	s.author = dup("me");
	s.clear_history = true;
	j = apply(&s);
	assert_non_null(json_object_get(cfg(j, "Volumes"), "/config"));
	assert_non_null(json_object_get(cfg(j, "Volumes"), "/data"));
	assert_null(json_object_get(cfg(j, "Volumes"), "/tmp"));
	assert_int_equal(json_object_size(cfg(j, "ExposedPorts")), 2);
	assert_non_null(json_object_get(cfg(j, "ExposedPorts"), "8080/tcp"));
	assert_non_null(json_object_get(cfg(j, "ExposedPorts"), "53/udp"));
	assert_string_equal(cfg_str(j, "User"), "app");
	assert_string_equal(cfg_str(j, "WorkingDir"), "/app");
	assert_string_equal(cfg_str(j, "StopSignal"), "SIGTERM");
	assert_string_equal(json_string_value(json_object_get(j, "author")),
	                    "me");
	assert_int_equal(json_array_size(json_object_get(j, "history")), 0);
	/* untouched fields stay */
	assert_string_equal(json_string_value(json_object_get(j, "os")),
	                    "linux");
	assert_string_equal(json_string_value(json_array_get(cfg(j, "Cmd"), 0)),
	                    "old");
	json_decref(j);
	te_imagespec_dispose(&s);
}

static void cmd_entrypoint_and_clears(void **state)
{
	te_imagespec s = TE_IMAGESPEC_INIT;
	json_t *j;

	(void)state;
	/* entrypoint without cmd clears the image's cmd (Docker's rule) */
	s.has_entrypoint = true;
	push(&s.entrypoint, "/ep");
	j = apply(&s);
	assert_true(json_is_null(cfg(j, "Cmd")));
	assert_string_equal(
	    json_string_value(json_array_get(cfg(j, "Entrypoint"), 0)), "/ep");
	json_decref(j);
	s.has_cmd = true;
	push(&s.cmd, "run");
	j = apply(&s);
	assert_string_equal(json_string_value(json_array_get(cfg(j, "Cmd"), 0)),
	                    "run");
	json_decref(j);
	te_imagespec_dispose(&s);

	s.clear_cmd = s.clear_entrypoint = s.clear_user = true;
	s.clear_working_dir = true;
	j = apply(&s);
	assert_true(json_is_null(cfg(j, "Cmd")));
	assert_true(json_is_null(cfg(j, "Entrypoint")));
	assert_string_equal(cfg_str(j, "User"), "");
	assert_string_equal(cfg_str(j, "WorkingDir"), "");
	json_decref(j);
	/* a value given with its clear flag wins */
	s.user = dup("u");
	j = apply(&s);
	assert_string_equal(cfg_str(j, "User"), "u");
	json_decref(j);
	te_imagespec_dispose(&s);
}

static void healthcheck(void **state)
{
	te_imagespec s = TE_IMAGESPEC_INIT;
	json_t *j, *h;

	(void)state;
	s.has_healthcheck = true;
	push(&s.hc_test, "CMD");
	push(&s.hc_test, "true");
	s.hc_interval = 30;
	s.hc_retries = 3;
	j = apply(&s);
	h = cfg(j, "Healthcheck");
	assert_int_equal(json_array_size(json_object_get(h, "Test")), 2);
	assert_int_equal(json_integer_value(json_object_get(h, "Interval")),
	                 30000000000LL);
	assert_int_equal(json_integer_value(json_object_get(h, "Retries")), 3);
	assert_null(json_object_get(h, "Timeout"));
	json_decref(j);
	te_imagespec_dispose(&s);
}

static void merge_rules(void **state)
{
	te_imagespec g = TE_IMAGESPEC_INIT, im = TE_IMAGESPEC_INIT;
	te_imagespec out = TE_IMAGESPEC_INIT;
	te_error err = TE_ERROR_INIT;

	(void)state;
	g.author = dup("global");
	g.clear_history = true;
	pair(&g.labels, "a", "global");
	pair(&g.labels, "g", "g");
	push(&g.remove_labels, "x");
	push(&g.remove_labels, "y");
	pair(&im.labels, "a", "image");
	push(&im.remove_labels, "y");
	push(&im.remove_labels, "z");
	im.user = dup("u");
	assert_int_equal(te_imagespec_merge(&out, &g, &im, &err), 0);
	assert_string_equal(out.author, "global");
	assert_true(out.clear_history);
	assert_int_equal(out.labels.count, 4);
	assert_string_equal(out.labels.items[1], "image");
	assert_string_equal(out.labels.items[2], "g");
	assert_int_equal(out.remove_labels.count, 3);
	assert_string_equal(out.remove_labels.items[0], "y");
	assert_string_equal(out.remove_labels.items[2], "x");
	assert_string_equal(out.user, "u");
	te_imagespec_dispose(&out);
	/* the image's author wins */
	im.author = dup("image");
	assert_int_equal(te_imagespec_merge(&out, &g, &im, &err), 0);
	assert_string_equal(out.author, "image");
	te_imagespec_dispose(&out);
	/* no global (non-final image): a copy */
	assert_int_equal(te_imagespec_merge(&out, NULL, &im, &err), 0);
	assert_int_equal(out.labels.count, 2);
	assert_false(out.clear_history);
	te_imagespec_dispose(&out);
	te_imagespec_dispose(&g);
	te_imagespec_dispose(&im);
}

static void serialize_canonical(void **state)
{
	te_imagespec a = TE_IMAGESPEC_INIT, b = TE_IMAGESPEC_INIT;
	te_buf x = TE_BUF_INIT(65536), y = TE_BUF_INIT(65536);
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(te_imagespec_serialize(&x, &a, &err), 0);
	assert_int_equal(x.len, 0);
	assert_true(te_imagespec_is_empty(&a));
	/* map and set order do not matter, list order does */
	pair(&a.labels, "a", "1");
	pair(&a.labels, "b", "2");
	push(&a.volumes, "/x");
	push(&a.volumes, "/y");
	pair(&b.labels, "b", "2");
	pair(&b.labels, "a", "1");
	push(&b.volumes, "/y");
	push(&b.volumes, "/x");
	assert_int_equal(te_imagespec_serialize(&x, &a, &err), 0);
	assert_int_equal(te_imagespec_serialize(&y, &b, &err), 0);
	assert_string_equal(x.ptr, y.ptr);
	assert_string_equal(x.ptr, "{\"labels\":{\"a\":\"1\",\"b\":\"2\"},"
	                           "\"volumes\":[\"/x\",\"/y\"]}");
	a.has_cmd = b.has_cmd = true;
	push(&a.cmd, "1");
	push(&a.cmd, "2");
	push(&b.cmd, "2");
	push(&b.cmd, "1");
	te_buf_clear(&x);
	te_buf_clear(&y);
	assert_int_equal(te_imagespec_serialize(&x, &a, &err), 0);
	assert_int_equal(te_imagespec_serialize(&y, &b, &err), 0);
	assert_string_not_equal(x.ptr, y.ptr);
	/* an empty expose is not the same as no expose */
	te_imagespec_dispose(&a);
	a.has_expose = true;
	assert_false(te_imagespec_is_empty(&a));
	te_buf_clear(&x);
	assert_int_equal(te_imagespec_serialize(&x, &a, &err), 0);
	assert_string_equal(x.ptr, "{\"expose\":[]}");
	te_imagespec_dispose(&a);
	te_imagespec_dispose(&b);
	te_buf_dispose(&x);
	te_buf_dispose(&y);
}

static void patterns_and_durations(void **state)
{
	te_error err = TE_ERROR_INIT;
	long long v;

	(void)state;
	assert_int_equal(te_imagespec_check_pattern("plain(", &err), 0);
	assert_int_equal(te_imagespec_check_pattern("/a|b[0-9]+/", &err), 0);
	assert_int_equal(te_imagespec_check_pattern("/a(/", &err), TE_EINVALID);
	assert_non_null(strstr(err.msg, "invalid regular expression /a(/"));
	assert_non_null(strstr(err.msg, "error parsing regexp: missing "
	                                "closing ): `^a($`"));
	te_error_clear(&err);
	/* Go's syntax: Perl classes, flags, lazy repetition */
	assert_int_equal(te_imagespec_check_pattern("/\\d+/", &err), 0);
	assert_int_equal(te_imagespec_check_pattern("/(?i)a.*?b/", &err), 0);
	/* Go has no back-references */
	assert_int_equal(te_imagespec_check_pattern("/(a*)*\\1/", &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "invalid escape sequence"));
	te_error_clear(&err);
	assert_int_equal(te_imagespec_seconds_parse(&v, "30", &err), 0);
	assert_int_equal(v, 30);
	assert_int_equal(te_imagespec_seconds_parse(&v, "1h2m3s", &err), 0);
	assert_int_equal(v, 3723);
	assert_int_equal(te_imagespec_seconds_parse(&v, "2s1m", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_imagespec_seconds_parse(&v, "9999999h", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_imagespec_seconds_parse(&v, "", &err), TE_EINVALID);
}

static void bad_configs(void **state)
{
	te_imagespec s = TE_IMAGESPEC_INIT;
	te_buf out = TE_BUF_INIT(TE_IMAGESPEC_CONFIG_MAX);
	te_error err = TE_ERROR_INIT;
	static const char *const bad[] = {"[]", "{\"config\":[]}",
	                                  "{\"a\":1,\"a\":2}", "{", NULL};
	size_t i;

	(void)state;
	s.user = dup("u");
	for (i = 0; bad[i]; i++) {
		te_error_clear(&err);
		assert_int_equal(te_imagespec_apply(&out, bad[i],
		                                    strlen(bad[i]), &s, "a",
		                                    "p", &err),
		                 TE_EINVALID);
	}
	/* a config without "config" gets one */
	te_error_clear(&err);
	assert_int_equal(te_imagespec_apply(&out, "{}", 2, &s, "a", "p", &err),
	                 0);
	assert_string_equal(out.ptr, "{\"config\":{\"User\":\"u\"}}");
	te_buf_dispose(&out);
	te_imagespec_dispose(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(labels_and_regex),
	    cmocka_unit_test(go_regexp_patterns),
	    cmocka_unit_test(label_templates),
	    cmocka_unit_test(essential_warning),
	    cmocka_unit_test(env_rules),
	    cmocka_unit_test(sets_and_scalars),
	    cmocka_unit_test(cmd_entrypoint_and_clears),
	    cmocka_unit_test(healthcheck),
	    cmocka_unit_test(merge_rules),
	    cmocka_unit_test(serialize_canonical),
	    cmocka_unit_test(patterns_and_durations),
	    cmocka_unit_test(bad_configs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
