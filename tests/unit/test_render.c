#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/render.h"
#include "render_cases.h"

#define ORACLE_DIR "../oracle"

/* ---- helpers ---- */

struct run {
	int rc;
	char *out;
	te_error err;
};

static struct run render_with(const char *tmpl, const char *json,
                              const te_render_funcs *funcs,
                              const te_render_limits *limits)
{
	struct run r = {0, NULL, TE_ERROR_INIT};
	te_render_set *set = NULL;
	te_render_value *data = NULL;
	size_t len;

	r.rc = te_render_value_from_json(&data, json, strlen(json), &r.err);
	if (r.rc == 0)
		r.rc = te_render_set_new(&set, funcs, limits, &r.err);
	if (r.rc == 0)
		r.rc = te_render_parse(set, "t", tmpl, strlen(tmpl), &r.err);
	if (r.rc == 0)
		r.rc = te_render_exec(&r.out, &len, set, "t", data, &r.err);
	te_render_set_free(set);
	te_render_value_unref(data);
	return r;
}

static struct run render(const char *tmpl, const char *json)
{
	return render_with(tmpl, json, NULL, NULL);
}

static void assert_output(const char *tmpl, const char *json, const char *want)
{
	struct run r = render(tmpl, json);

	if (r.rc != 0)
		fail_msg("%s: %s", tmpl, r.err.msg);
	assert_string_equal(r.out, want);
	free(r.out);
}

static void assert_error(struct run r, const char *want)
{
	assert_int_not_equal(r.rc, 0);
	assert_null(r.out);
	if (!strstr(r.err.msg, want))
		fail_msg("error [%s] lacks [%s]", r.err.msg, want);
}

/* ---- every oracle case file against Go's recorded results ---- */

static void oracle_cases(void **state)
{
	DIR *d = opendir(ORACLE_DIR "/cases");
	struct dirent *e;
	size_t checked, total = 0;
	int files = 0;

	(void)state;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char cases[512], expected[512], data[512], base[256];
		size_t n = strlen(e->d_name);
		FILE *probe;

		if (n < 5 || strcmp(e->d_name + n - 4, ".txt") != 0)
			continue;
		snprintf(base, sizeof(base), "%.*s", (int)(n - 4), e->d_name);
		snprintf(cases, sizeof(cases), ORACLE_DIR "/cases/%s.txt",
		         base);
		snprintf(expected, sizeof(expected),
		         ORACLE_DIR "/expected/%s.jsonl", base);
		snprintf(data, sizeof(data), ORACLE_DIR "/%s.json", base);
		probe = fopen(data, "r");
		if (probe)
			fclose(probe);
		else
			snprintf(data, sizeof(data), ORACLE_DIR "/data.json");
		assert_int_equal(
		    render_cases_check(data, cases, expected, stderr, &checked),
		    0);
		total += checked;
		files++;
	}
	closedir(d);
	assert_true(files >= 9);
	assert_true(total >= 400);
}

/* ---- Go 1.22+ behaviour the Go 1.19 oracle cannot show, checked by
 * hand against the Go 1.22/1.23 text/template documentation ---- */

static void newer_go(void **state)
{
	(void)state;
	/* range over an integer (Go 1.22) */
	assert_output("{{range 3}}{{.}}{{end}}", "{}", "012");
	assert_output("{{range $i := 4}}{{$i}},{{end}}", "{}", "0,1,2,3,");
	assert_output("{{range .n}}x{{else}}none{{end}}", "{\"n\":0}", "none");
	assert_output("{{range -2}}x{{else}}neg{{end}}", "{}", "neg");
	assert_output("{{range 5}}{{if eq . 3}}{{break}}{{end}}{{.}}{{end}}",
	              "{}", "012");
	assert_output("{{range 4}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}",
	              "{}", "023");
	assert_error(render("{{range $i, $v := 3}}{{end}}", "{}"),
	             "can't use 3 to iterate over more than one variable");
	/* else with (Go 1.23) */
	assert_output("{{with .a}}A{{else with .b}}B={{.}}{{else}}C{{end}}",
	              "{\"b\":2}", "B=2");
	assert_output("{{with .a}}A{{else with .b}}B{{else}}C{{end}}", "{}",
	              "C");
	assert_output("{{with .a}}A{{.}}{{else with .b}}B{{end}}",
	              "{\"a\":1,\"b\":2}", "A1");
	/* no complex numbers in the value model: they parse as in Go, and
	 * using one is an error naming it (Go would print (0+3i)) */
	assert_error(render("{{if false}}{{3i}}{{end}}x{{1+2i}}", "{}"),
	             "template: t:1:28: executing \"t\" at <1+2i>: complex "
	             "constant 1+2i is not supported");
}

/* ---- budgets: hostile templates end with an error ---- */

static void hostile_range(void **state)
{
	te_render_limits lim = TE_RENDER_LIMITS_INIT;

	(void)state;
	assert_error(render("{{range 1000000000}}{{end}}", "{}"),
	             "work budget of 10000000 steps exceeded");
	lim.steps_max = 100000;
	assert_error(
	    render_with("{{range 1000000000}}{{.}}{{end}}", "{}", NULL, &lim),
	    "template: t:1:22: executing \"t\" at <{{.}}>: work budget of "
	    "100000 steps exceeded");
	/* cheap-looking calls on long strings pay for their bytes */
	lim.steps_max = 1000000;
	assert_error(render_with("{{$s := printf \"%1000000d\" 1}}{{range "
	                         "100000000}}{{if eq $s $s}}{{end}}{{end}}",
	                         "{}", NULL, &lim),
	             "at <$s>: work budget of 1000000 steps exceeded");
	assert_error(render_with("{{range 100000000}}{{$x := printf "
	                         "\"%1000000d\" 1}}{{end}}",
	                         "{}", NULL, &lim),
	             "work budget of 1000000 steps exceeded");
}

/* Many templates: each call is a lookup among them, not a scan. */
static void many_templates(void **state)
{
	size_t n = 20000, i, len = 0, calls = 30000;
	char *t = malloc(n * 48 + 64), *out = NULL;
	te_render_set *set = NULL;
	te_error err = TE_ERROR_INIT;

	(void)state;
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(t + len, "{{define \"t%zu\"}}%zu{{end}}",
		                       i, i % 10);
	len += (size_t)sprintf(
	    t + len, "{{range %zu}}{{template \"t19999\"}}{{end}}", calls);
	assert_int_equal(te_render_set_new(&set, NULL, NULL, &err), 0);
	assert_int_equal(te_render_parse(set, "many", t, len, &err), 0);
	assert_int_equal(te_render_exec(&out, &len, set, "many", NULL, &err),
	                 0);
	assert_int_equal(len, calls);
	assert_int_equal(out[0], '9');
	free(out);
	te_render_set_free(set);
	free(t);
}

static void hostile_recursion(void **state)
{
	(void)state;
	assert_error(render("{{define \"r\"}}{{template \"r\" .}}{{end}}"
	                    "{{template \"r\" .}}",
	                    "{}"),
	             "exceeded maximum template depth (200)");
	assert_error(render("{{define \"a\"}}x{{template \"b\"}}{{end}}"
	                    "{{define \"b\"}}{{template \"a\"}}{{end}}"
	                    "{{template \"a\"}}",
	                    "{}"),
	             "exceeded maximum template depth");
	/* doubling recursion: bounded by depth and by work */
	assert_error(render("{{define \"d\"}}{{template \"d\"}}{{template "
	                    "\"d\"}}{{end}}{{template \"d\"}}",
	                    "{}"),
	             "exceeded maximum template depth");
}

static char *repeat(const char *a, size_t n, const char *mid, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), lm = strlen(mid), i;
	char *s = malloc(n * (la + lb) + lm + 1), *p = s;

	for (i = 0; i < n; i++, p += la)
		memcpy(p, a, la);
	memcpy(p, mid, lm);
	p += lm;
	for (i = 0; i < n; i++, p += lb)
		memcpy(p, b, lb);
	*p = '\0';
	return s;
}

static void hostile_nesting(void **state)
{
	char *t;

	(void)state;
	t = repeat("(", 5000, "1", ")");
	{
		size_t n = strlen(t);
		char *full = malloc(n + 16);

		snprintf(full, n + 16, "{{print %s}}", t);
		assert_error(render(full, "{}"),
		             "max expression depth exceeded (limit 200)");
		free(full);
	}
	free(t);
	t = repeat("{{if 1}}", 10000, "x", "{{end}}");
	assert_error(render(t, "{}"), "max expression depth exceeded");
	free(t);
	t = repeat("{{if 1}}", 150, "x", "{{end}}");
	assert_output(t, "{}", "x");
	free(t);
	/* deep blocks in a recursive define: the executor's own nesting
	 * budget ends it before the C stack is at risk */
	t = repeat("{{with (print (print 1))}}", 190, "{{template \"r\" .}}",
	           "{{end}}");
	{
		size_t n = strlen(t);
		char *full = malloc(n + 64);

		snprintf(full, n + 64,
		         "{{define \"r\"}}%s{{end}}{{template \"r\" 1}}", t);
		assert_error(render(full, "{}"),
		             "exceeded maximum nesting depth (5000)");
		free(full);
	}
	free(t);
}

static void hostile_output(void **state)
{
	te_render_limits lim = TE_RENDER_LIMITS_INIT;
	struct run r;

	(void)state;
	assert_error(
	    render("{{range 100000}}{{printf \"%1000d\" 1}}{{end}}", "{}"),
	    "output exceeds the limit of 16777216 bytes");
	/* a single builtin call cannot build a string past the cap either */
	lim.output_max = 1000;
	r = render_with("{{len (printf \"%5000d\" 1)}}", "{}", NULL, &lim);
	assert_error(r, "error calling printf");
	lim = (te_render_limits)TE_RENDER_LIMITS_INIT;
	lim.input_max = 10;
	r = render_with("{{.}} is too long", "{}", NULL, &lim);
	assert_error(r, "exceed the input limit of 10 bytes");
	lim = (te_render_limits)TE_RENDER_LIMITS_INIT;
	lim.version = 2;
	r = render_with("x", "{}", NULL, &lim);
	assert_error(r, "te_render_limits version 2 is not 1");
	lim = (te_render_limits)TE_RENDER_LIMITS_INIT;
	lim.steps_max = 50;
	r = render_with("{{range 10}}{{.}}{{.}}{{.}}{{end}}", "{}", NULL, &lim);
	assert_error(r, "work budget of 50 steps exceeded");
}

/* ---- the function table ---- */

static int fn_join(te_render_value **out, te_render_call *call,
                   te_render_value *const *args, size_t nargs, void *payload,
                   te_error *err)
{
	char buf[256] = "";
	size_t i;

	(void)call;
	for (i = 0; i < nargs; i++) {
		if (te_render_value_kind(args[i]) != TE_RENDER_STRING)
			return te_error_set(err, TE_EINVALID,
			                    "argument %zu is not a string",
			                    i + 1);
		if (i)
			strncat(buf, (const char *)payload,
			        sizeof(buf) - strlen(buf) - 1);
		strncat(buf, te_render_value_str(args[i], NULL),
		        sizeof(buf) - strlen(buf) - 1);
	}
	*out = te_render_value_string(buf, strlen(buf));
	return *out ? 0 : TE_ENOMEM;
}

static int fn_list(te_render_value **out, te_render_call *call,
                   te_render_value *const *args, size_t nargs, void *payload,
                   te_error *err)
{
	te_render_value *l = te_render_value_list();
	size_t i;

	(void)call;
	(void)payload;
	for (i = 0; l && i < nargs; i++)
		if (te_render_list_push(l, te_render_value_ref(args[i]), err) <
		    0)
			return err->code;
	*out = l;
	return l ? 0 : TE_ENOMEM;
}

/* Helm's and werf's include: a template's output as a string. */
static int fn_include(te_render_value **out, te_render_call *call,
                      te_render_value *const *args, size_t nargs, void *payload,
                      te_error *err)
{
	char *text = NULL;
	size_t len;
	int rc;

	(void)payload;
	(void)nargs;
	if (te_render_value_kind(args[0]) != TE_RENDER_STRING)
		return te_error_set(err, TE_EINVALID, "name is not a string");
	rc = te_render_call_template(&text, &len, call,
	                             te_render_value_str(args[0], NULL),
	                             args[1], err);
	if (rc < 0)
		return rc;
	*out = te_render_value_string(text, len);
	free(text);
	return *out ? 0 : TE_ENOMEM;
}

static void include_function(void **state)
{
	te_render_limits lim = TE_RENDER_LIMITS_INIT;
	te_render_funcs *funcs = NULL;
	te_error err = TE_ERROR_INIT;
	struct run r;

	(void)state;
	assert_int_equal(te_render_funcs_new(&funcs, &err), 0);
	assert_int_equal(
	    te_render_funcs_add(funcs, "include", fn_include, 2, 2, NULL, &err),
	    0);
	r = render_with("{{define \"x\"}}<{{.}}>{{$v := 1}}{{end}}"
	                "{{$v := 2}}{{include \"x\" .a | len}} "
	                "{{include \"x\" .a}}{{$v}}",
	                "{\"a\":\"hi\"}", funcs, NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "4 <hi>2");
	free(r.out);
	/* the inner error, wrapped as Go wraps a function's error */
	assert_error(render_with("{{define \"x\"}}\n {{len 3}}{{end}}"
	                         "{{include \"x\" 1}}",
	                         "{}", funcs, NULL),
	             "template: t:2:19: executing \"t\" at <include \"x\" 1>: "
	             "error calling include: template: t:2:3: executing \"x\" "
	             "at <len 3>: error calling len: len of type int");
	assert_error(render_with("{{include \"nope\" 1}}", "{}", funcs, NULL),
	             "error calling include: template: no template \"nope\"");
	/* recursion through include is bounded like {{template}} */
	assert_error(render_with("{{define \"r\"}}{{include \"r\" .}}{{end}}"
	                         "{{include \"r\" 1}}",
	                         "{}", funcs, NULL),
	             "template: t:1:16: executing \"r\" at <include \"r\" .>: "
	             "error calling include: template: r: exceeded maximum "
	             "template depth (200)");
	lim.steps_max = 100000;
	assert_error(render_with("{{define \"q\"}}{{range 1000}}x{{end}}{{end}}"
	                         "{{define \"r\"}}{{range 100000}}{{include "
	                         "\"q\" .}}{{end}}{{end}}{{include \"r\" 1}}",
	                         "{}", funcs, &lim),
	             "work budget of 100000 steps exceeded");
	te_render_funcs_free(funcs);
}

static void custom_functions(void **state)
{
	te_render_funcs *funcs = NULL;
	te_error err = TE_ERROR_INIT;
	char sep[] = "+";
	struct run r;

	(void)state;
	assert_int_equal(te_render_funcs_new(&funcs, &err), 0);
	assert_int_equal(te_render_funcs_add(funcs, "join", fn_join, 1,
	                                     TE_RENDER_VARIADIC, sep, &err),
	                 0);
	assert_int_equal(
	    te_render_funcs_add(funcs, "pair", fn_list, 2, 2, NULL, &err), 0);
	assert_int_equal(
	    te_render_funcs_add(funcs, "opt", fn_list, 1, 2, NULL, &err), 0);
	/* a user function may replace a builtin */
	assert_int_equal(te_render_funcs_add(funcs, "len", fn_list, 0,
	                                     TE_RENDER_VARIADIC, NULL, &err),
	                 0);
	assert_int_not_equal(
	    te_render_funcs_add(funcs, "bad name", fn_list, 0, 1, NULL, &err),
	    0);
	err = (te_error)TE_ERROR_INIT;

	r = render_with("{{join \"a\" .s \"c\"}}|{{.s | join \"x\"}}",
	                "{\"s\":\"b\"}", funcs, NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "a+b+c|x+b");
	free(r.out);
	r = render_with("{{pair 1 .missing}}|{{len 1 2 3}}", "{}", funcs, NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "[1 <nil>]|[1 2 3]");
	free(r.out);
	r = render_with("{{range pair \"x\" \"y\"}}{{.}}{{end}}", "{}", funcs,
	                NULL);
	assert_string_equal(r.out, "xy");
	free(r.out);
	assert_error(render_with("{{join 1}}", "{}", funcs, NULL),
	             "template: t:1:2: executing \"t\" at <join 1>: error "
	             "calling join: argument 1 is not a string");
	assert_error(render_with("{{pair 1}}", "{}", funcs, NULL),
	             "wrong number of args for pair: want 2 got 1");
	assert_error(render_with("{{join}}", "{}", funcs, NULL),
	             "wrong number of args for join: want at least 1 got 0");
	assert_error(render_with("{{opt 1 2 3}}", "{}", funcs, NULL),
	             "wrong number of args for opt: want at most 2 got 3");
	/* unknown at parse time without the table */
	assert_error(render("{{join 1}}", "{}"),
	             "template: t:1: function \"join\" not defined");
	te_render_funcs_free(funcs);
}

/* te_render_value_object: fields that are methods (werf's .Files.Get). */
static struct run render_object(const char *tmpl, const te_render_funcs *m)
{
	struct run r = {0, NULL, TE_ERROR_INIT};
	te_render_set *set = NULL;
	te_render_value *data = te_render_value_map();
	size_t len;

	assert_non_null(data);
	assert_int_equal(te_render_map_set(data, "Files", 5,
	                                   te_render_value_object(m), &r.err),
	                 0);
	assert_int_equal(te_render_map_set(data, "x", 1,
	                                   te_render_value_string("b", 1),
	                                   &r.err),
	                 0);
	r.rc = te_render_set_new(&set, NULL, NULL, &r.err);
	if (r.rc == 0)
		r.rc = te_render_parse(set, "t", tmpl, strlen(tmpl), &r.err);
	if (r.rc == 0)
		r.rc = te_render_exec(&r.out, &len, set, "t", data, &r.err);
	te_render_set_free(set);
	te_render_value_unref(data);
	return r;
}

static void method_objects(void **state)
{
	te_render_funcs *m = NULL;
	te_error err = TE_ERROR_INIT;
	char sep[] = "+";
	struct run r;

	(void)state;
	assert_int_equal(te_render_funcs_new(&m, &err), 0);
	assert_int_equal(te_render_funcs_add(m, "Get", fn_join, 1,
	                                     TE_RENDER_VARIADIC, sep, &err),
	                 0);
	assert_int_equal(
	    te_render_funcs_add(m, "Pair", fn_list, 2, 2, NULL, &err), 0);
	r = render_object(
	    "{{ .Files.Get \"a\" .x }}|{{ $.Files.Get \"a\" }}|"
	    "{{ .x | .Files.Get \"p\" }}|"
	    "{{ with .Files }}{{ .Get \"q\" }}{{ end }}|"
	    "{{ $f := .Files }}{{ $f.Pair 1 2 }}|{{ .Files.Nope }}",
	    m);
	if (r.rc != 0)
		fail_msg("%s", r.err.msg);
	assert_string_equal(r.out, "a+b|a|p+b|q|[1 2]|<no value>");
	free(r.out);
	assert_error(render_object("{{ .Files.Get 1 }}", m),
	             "template: t:1:9: executing \"t\" at <.Files.Get>: error "
	             "calling Get: argument 1 is not a string");
	assert_error(render_object("{{ .Files.Pair 1 }}", m),
	             "wrong number of args for Pair: want 2 got 1");
	/* a method inside a chain is called without arguments, as in Go */
	assert_error(render_object("{{ .Files.Get.x }}", m),
	             "wrong number of args for Get: want at least 1 got 0");
	te_render_funcs_free(m);
}

/* ---- values and JSON ---- */

#define JSON_IFE "{\"i\": 1, \"f\": 1.0, \"e\": 1e2}"

static void values(void **state)
{
	te_render_value *m = te_render_value_map(), *l = te_render_value_list();
	te_render_value *v = NULL;
	te_error err = TE_ERROR_INIT;
	size_t len;
	const char *k;

	(void)state;
	assert_int_equal(
	    te_render_map_set(m, "b", 1, te_render_value_int(2), &err), 0);
	assert_int_equal(
	    te_render_map_set(m, "a", 1, te_render_value_float(1.5), &err), 0);
	assert_int_equal(
	    te_render_map_set(m, "b", 1, te_render_value_bool(true), &err), 0);
	assert_int_equal(te_render_value_len(m), 2);
	k = te_render_map_key_at(m, 0, &len);
	assert_string_equal(k, "a");
	assert_true(te_render_value_bool_get(te_render_map_get(m, "b", 1)));
	assert_null(te_render_map_get(m, "c", 1));
	assert_int_equal(te_render_list_push(l, te_render_value_ref(m), &err),
	                 0);
	assert_int_equal(
	    te_render_list_push(l, te_render_value_string("x\0y", 3), &err), 0);
	assert_int_equal(te_render_value_kind(te_render_list_at(l, 0)),
	                 TE_RENDER_MAP);
	te_render_value_str(te_render_list_at(l, 1), &len);
	assert_int_equal(len, 3);
	assert_null(te_render_list_at(l, 2));
	/* pushing onto a non-list drops the item and fails */
	assert_int_equal(te_render_list_push(m, te_render_value_nil(), &err),
	                 TE_EINVALID);
	te_render_value_unref(m);
	te_render_value_unref(l);

	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(
	    te_render_value_from_json(&v, JSON_IFE, strlen(JSON_IFE), &err), 0);
	assert_int_equal(te_render_value_kind(te_render_map_get(v, "i", 1)),
	                 TE_RENDER_INT);
	assert_int_equal(te_render_value_kind(te_render_map_get(v, "f", 1)),
	                 TE_RENDER_FLOAT);
	assert_int_equal(te_render_value_kind(te_render_map_get(v, "e", 1)),
	                 TE_RENDER_FLOAT);
	te_render_value_unref(v);
	assert_int_equal(
	    te_render_value_from_json(&v, "{\"a\": [1,}", 10, &err),
	    TE_EINVALID);
	assert_null(v);
	assert_non_null(strstr(err.msg, "json data:1:"));
}

/* ---- sets: several parses, lookups, failures leave the set alone ---- */

static int parse_str(te_render_set *set, const char *name, const char *text,
                     te_error *err)
{
	return te_render_parse(set, name, text, strlen(text), err);
}

static void sets(void **state)
{
	te_render_set *set = NULL;
	te_error err = TE_ERROR_INIT;
	char *out = NULL;
	size_t len;

	(void)state;
	assert_int_equal(te_render_set_new(&set, NULL, NULL, &err), 0);
	assert_int_equal(parse_str(set, "lib.tmpl",
	                           "{{define \"greet\"}}hi {{.}}{{end}}", &err),
	                 0);
	assert_int_equal(
	    parse_str(set, "main", "{{template \"greet\" .}}!", &err), 0);
	assert_int_equal(te_render_exec(&out, &len, set, "main", NULL, &err),
	                 0);
	assert_string_equal(out, "hi <no value>!");
	free(out);
	/* a failed parse changes nothing */
	assert_int_equal(
	    parse_str(set, "bad", "{{define \"greet\"}}x{{end}}{{if}}", &err),
	    TE_EINVALID);
	assert_string_equal(err.msg, "template: bad:1: missing value for if");
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(te_render_exec(&out, &len, set, "main", NULL, &err),
	                 0);
	assert_string_equal(out, "hi <no value>!");
	free(out);
	/* a later definition replaces the earlier one */
	assert_int_equal(
	    parse_str(set, "over", "{{define \"greet\"}}yo{{end}}", &err), 0);
	assert_int_equal(te_render_exec(&out, &len, set, "main", NULL, &err),
	                 0);
	assert_string_equal(out, "yo!");
	free(out);
	assert_int_equal(te_render_exec(&out, &len, set, "nope", NULL, &err),
	                 TE_ENOTFOUND);
	assert_null(out);
	assert_non_null(strstr(err.msg, "no template \"nope\""));
	te_render_set_free(set);
}

/* ---- Sprig's functions (te_render_funcs_add_sprig) ---- */

static te_render_funcs *sprig_funcs(void)
{
	te_render_funcs *funcs = NULL;
	te_error err = TE_ERROR_INIT;

	assert_int_equal(te_render_funcs_new(&funcs, &err), 0);
	assert_int_equal(te_render_funcs_add_sprig(funcs, &err), 0);
	return funcs;
}

/* Names Sprig has but the engine does not offer yet fail when parsed, even
 * in a branch that never runs; expandenv is no function at all. */
static void sprig_unsupported(void **state)
{
	te_render_funcs *funcs = sprig_funcs();
	struct run r;

	(void)state;
	r = render_with("{{if false}}{{uuidv4}}{{end}}", "{}", funcs, NULL);
	assert_int_equal(r.rc, TE_EUNSUPPORTED);
	assert_error(r, "template: t:1: function \"uuidv4\" is not "
	                "supported by tagexport: its result is random");
	r = render_with("x\n{{genPrivateKey \"rsa\"}}", "{}", funcs, NULL);
	assert_error(r, "template: t:2: function \"genPrivateKey\" is not "
	                "supported by tagexport: it generates keys at random");
	r = render_with("{{expandenv \"$HOME\"}}", "{}", funcs, NULL);
	assert_error(r, "function \"expandenv\" not defined");
	r = render_with("{{list \"A\" | first | getHostByName}}", "{}", funcs,
	                NULL);
	assert_error(r, "function \"getHostByName\" is not supported by "
	                "tagexport: a template must not reach the network");
	/* the builtins stay: Sprig does not define these */
	r = render_with("{{len (list 1 2)}} {{index (dict \"a\" 1) \"a\"}}",
	                "{}", funcs, NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "2 1");
	free(r.out);
	te_render_funcs_free(funcs);
}

/* Arguments of the wrong type are refused with Go's words. */
static void sprig_argument_types(void **state)
{
	te_render_funcs *funcs = sprig_funcs();

	(void)state;
	assert_error(render_with("{{repeat \"3\" \"x\"}}", "{}", funcs, NULL),
	             "error calling repeat: wrong type for value; expected "
	             "int; got string");
	assert_error(render_with("{{ternary 1 2 \"yes\"}}", "{}", funcs, NULL),
	             "error calling ternary: wrong type for value; expected "
	             "bool; got string");
	assert_error(render_with("{{until \"3\"}}", "{}", funcs, NULL),
	             "error calling until: wrong type for value; expected "
	             "int; got string");
	assert_error(render_with("{{get (list 1) \"a\"}}", "{}", funcs, NULL),
	             "expected map[string]interface {}; got []interface {}");
	/* tests/fuzz/regressions/render: dig read its map argument before
	 * counting its arguments */
	assert_error(render_with("{{dig}}", "{}", funcs, NULL),
	             "error calling dig: dig needs at least three arguments");
	assert_error(render_with("{{dig \"d\" .}}", "{}", funcs, NULL),
	             "error calling dig: dig needs at least three arguments");
	te_render_funcs_free(funcs);
}

/* Hostile sizes end fast in an error naming the limit. */
static void sprig_budgets(void **state)
{
	te_render_funcs *funcs = sprig_funcs();
	te_render_limits lim = TE_RENDER_LIMITS_INIT;
	struct run r;
	char *json;
	size_t i, off;

	(void)state;
	assert_error(
	    render_with("{{repeat 1000000000 \"x\"}}", "{}", funcs, NULL),
	    "error calling repeat: result exceeds the output limit of "
	    "16777216 bytes");
	assert_error(render_with("{{repeat 9223372036854775807 \"ab\"}}", "{}",
	                         funcs, NULL),
	             "output limit");
	assert_error(
	    render_with("{{indent 1000000000 \"a\\nb\"}}", "{}", funcs, NULL),
	    "error calling indent: result exceeds the output limit");
	assert_error(render_with("{{nindent 9000000 (repeat 4 \"\\n\")}}", "{}",
	                         funcs, NULL),
	             "error calling nindent: result exceeds the output limit");
	assert_error(
	    render_with("{{until 1000000000 | len}}", "{}", funcs, NULL),
	    "error calling until: result of 1000000000 elements "
	    "exceeds the output limit of 16777216 bytes");
	assert_error(
	    render_with("{{untilStep 0 3000000 1 | len}}", "{}", funcs, NULL),
	    "output limit of 16777216 bytes (8 per element)");
	assert_error(render_with("{{range until 12}}{{until 1000000 | len}}"
	                         "{{end}}",
	                         "{}", funcs, NULL),
	             "work budget of 10000000 steps exceeded");
	assert_error(
	    render_with("{{splitList \"\" (repeat 3000000 \"x\") | len}}", "{}",
	                funcs, NULL),
	    "error calling splitList: result of 3000000 elements "
	    "exceeds the output limit");
	/* built strings meet the same limit, never swallowed (toJson
	 * swallows only encoding/json's refusals) */
	assert_error(render_with("{{replace \"\" (repeat 1000 \"x\") "
	                         "(repeat 100000 \"y\") | len}}",
	                         "{}", funcs, NULL),
	             "error calling replace: result exceeds the output limit "
	             "of 16777216 bytes");
	assert_error(render_with("{{toJson (splitList \"\" (repeat 2000000 "
	                         "\"<\")) | len}}",
	                         "{}", funcs, NULL),
	             "error calling toJson: result exceeds the output limit");
	lim.output_max = 100;
	r = render_with("{{repeat 100 \"x\" | len}}", "{}", funcs, &lim);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "100");
	free(r.out);
	assert_error(
	    render_with("{{repeat 101 \"x\" | len}}", "{}", funcs, &lim),
	    "output limit of 100 bytes");
	/* values built in a loop nest no deeper than JSON data may */
	assert_error(render_with("{{$l := list}}{{range until 600}}"
	                         "{{$l = list $l}}{{end}}{{len $l}}",
	                         "{}", funcs, NULL),
	             "values nest deeper than 512 levels");
	/* uniq compares every pair: 20000 distinct items cost 25M steps */
	json = malloc(20000 * 8 + 2);
	assert_non_null(json);
	off = 0;
	json[off++] = '[';
	for (i = 0; i < 20000; i++)
		off += (size_t)sprintf(json + off, "%s%zu", i ? "," : "", i);
	json[off++] = ']';
	json[off] = '\0';
	assert_error(render_with("{{uniq . | len}}", json, funcs, NULL),
	             "error calling uniq: work budget of 10000000 steps "
	             "exceeded");
	free(json);
	te_render_funcs_free(funcs);
}

/* set/unset/merge change dicts in place (render_int.h, "Mutable maps"):
 * no cycles, bounded depth, Go's argument checks. */
static void sprig_dict_mutation(void **state)
{
	te_render_funcs *funcs = sprig_funcs();
	struct run r;

	(void)state;
	assert_error(render_with("{{$d := dict}}{{set $d \"me\" $d}}", "{}",
	                         funcs, NULL),
	             "error calling set: a dict cannot hold itself");
	assert_error(render_with("{{$d := dict \"s\" (dict)}}"
	                         "{{merge $d.s $d}}",
	                         "{}", funcs, NULL),
	             "error calling merge: a dict cannot hold itself");
	assert_error(render_with("{{$d := dict}}{{set $d \"l\" (list 1 "
	                         "(list $d))}}",
	                         "{}", funcs, NULL),
	             "a dict cannot hold itself");
	/* a chain built by set into fresh dicts is as deep as dict allows */
	r = render_with("{{$l := dict}}{{range until 500}}{{$n := dict}}"
	                "{{$_ := set $n \"x\" $l}}{{$l = $n}}{{end}}ok",
	                "{}", funcs, NULL);
	assert_int_equal(r.rc, 0);
	free(r.out);
	assert_error(render_with("{{$l := dict}}{{range until 600}}"
	                         "{{$n := dict}}{{$_ := set $n \"x\" $l}}"
	                         "{{$l = $n}}{{end}}",
	                         "{}", funcs, NULL),
	             "error calling set: values nest deeper than 512 levels");
	/* deepening a dict that others hold is bounded per execution */
	assert_error(render_with("{{$all := list}}{{range until 4}}"
	                         "{{$b := dict}}{{$t := dict \"b\" $b}}"
	                         "{{$c := dict}}{{range until 300}}"
	                         "{{$c = dict \"c\" $c}}{{end}}"
	                         "{{$_ := set $b \"deep\" $c}}{{end}}",
	                         "{}", funcs, NULL),
	             "error calling set: values nest deeper than 512 levels");
	/* Go's parameter types */
	assert_error(
	    render_with("{{set .nil \"a\" 1}}", "{\"nil\":null}", funcs, NULL),
	    "error calling set: wrong type for value; expected "
	    "map[string]interface {}; got interface {}");
	assert_error(render_with("{{unset (list) \"a\"}}", "{}", funcs, NULL),
	             "expected map[string]interface {}; got []interface {}");
	assert_error(render_with("{{set (dict) 1 2}}", "{}", funcs, NULL),
	             "error calling set: wrong type for value; expected "
	             "string; got int");
	assert_error(render_with("{{merge (dict) (list)}}", "{}", funcs, NULL),
	             "error calling merge: wrong type for value");
	/* the caller's data is changed as Go changes it */
	r = render_with("{{$_ := set . \"b\" 2}}{{$_ := unset . \"a\"}}{{.}}",
	                "{\"a\":1}", funcs, NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "map[b:2]");
	free(r.out);
	te_render_funcs_free(funcs);
}

/* Hostile inputs to the newer families end in an error naming the
 * limit, never a crash or a hang. */
static void sprig_hostile_more(void **state)
{
	te_render_funcs *funcs = sprig_funcs();
	te_render_limits lim = TE_RENDER_LIMITS_INIT;
	struct run r;
	char *tmpl;
	size_t i, off;

	(void)state;
	/* wrapWith inserts its separator at every byte */
	assert_error(render_with("{{wrapWith 1 (repeat 100000 \"s\") "
	                         "(repeat 1000 \"x\") | len}}",
	                         "{}", funcs, NULL),
	             "error calling wrapWith: result exceeds the output limit");
	/* a chunk per element */
	assert_error(
	    render_with("{{chunk 1 (until 3000000) | len}}", "{}", funcs, NULL),
	    "output limit");
	/* fromJson stops where the value model stops nesting */
	tmpl = malloc(2 * 600 + 64);
	assert_non_null(tmpl);
	off = (size_t)sprintf(tmpl, "{{mustFromJson \"");
	for (i = 0; i < 600; i++)
		tmpl[off++] = '[';
	for (i = 0; i < 600; i++)
		tmpl[off++] = ']';
	strcpy(tmpl + off, "\" | len}}");
	assert_error(render_with(tmpl, "{}", funcs, NULL),
	             "error calling mustFromJson: values nest deeper than "
	             "512 levels");
	memcpy(tmpl + 2, "    fromJson", 12);
	assert_error(render_with(tmpl, "{}", funcs, NULL),
	             "error calling fromJson: values nest deeper than 512 "
	             "levels");
	free(tmpl);
	/* decimal arithmetic on huge coefficients is charged by size: 20000
	 * factors cost far more than 20000 steps */
	tmpl = malloc(20000 * 4 + 64);
	assert_non_null(tmpl);
	off = (size_t)sprintf(tmpl, "{{mulf 1");
	for (i = 0; i < 20000; i++)
		off += (size_t)sprintf(tmpl + off, " 1.1");
	strcpy(tmpl + off, "}}");
	r = render_with(tmpl, "{}", funcs, NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "+Inf");
	free(r.out);
	/* (the message names the call, cut before the limit's name) */
	lim.steps_max = 60000;
	assert_error(render_with(tmpl, "{}", funcs, &lim),
	             "executing \"t\" at <mulf 1 1.1 1.1");
	free(tmpl);
	assert_error(render_with("{{divf 1 0}}", "{}", funcs, NULL),
	             "error calling divf: decimal division by 0");
	te_render_funcs_free(funcs);
}

/* now/ago read the clock: checked by structure (Go's time.Time String:
 * date, time, fraction, offset, zone, monotonic reading). */
static void sprig_dates(void **state)
{
	te_render_funcs *funcs = sprig_funcs();
	struct run r;
	int y, mo, d, h, mi, sec, n = 0;
	char zone[8], sign;

	(void)state;
	r = render_with("{{now}}", "{}", funcs, NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(sscanf(r.out, "%4d-%2d-%2d %2d:%2d:%2d", &y, &mo, &d,
	                        &h, &mi, &sec),
	                 6);
	assert_true(y >= 2024 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31);
	assert_non_null(strstr(r.out, " m=+"));
	assert_int_equal(sscanf(strchr(r.out, ' ') + 9, "%*[.0-9] %c%*4d %7s%n",
	                        &sign, zone, &n) >= 2,
	                 1);
	free(r.out);
	r = render_with("{{ago now}} {{now | unixEpoch | len}}", "{}", funcs,
	                NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "0s 10");
	free(r.out);
	/* a time.Time parameter refuses other values */
	assert_error(render_with("{{dateModify \"1h\" 5}}", "{}", funcs, NULL),
	             "error calling dateModify: wrong type for value; expected "
	             "time.Time; got int");
	assert_error(render_with("{{unixEpoch \"x\"}}", "{}", funcs, NULL),
	             "expected time.Time; got string");
	/* zone names never leave the zoneinfo tree: UTC, as Go's error */
	r = render_with("{{dateInZone \"MST\" 0 \"../../../etc/passwd\"}} "
	                "{{dateInZone \"MST\" 0 \"/etc/localtime\"}}",
	                "{}", funcs, NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "UTC UTC");
	free(r.out);
	assert_error(
	    render_with("{{dateInZone (repeat 2500000 \"Monday\") 0 "
	                "\"UTC\" | len}}",
	                "{}", funcs, NULL),
	    "error calling dateInZone: result exceeds the output limit");
	te_render_funcs_free(funcs);
}

/* JSON as Go 1.22 writes it (\b, \f) and NaN refused as encoding/json
 * refuses it: toJson gives "", mustToJson and toRawJson fail. */
static void sprig_json(void **state)
{
	te_render_funcs *funcs = sprig_funcs();
	te_render_value *data = te_render_value_map();
	te_render_set *set = NULL;
	te_error err = TE_ERROR_INIT;
	const char *tmpl = "{{toJson \"\\b\\f\"}} [{{toJson .nan}}] "
	                   "[{{toPrettyJson .inf}}]";
	char *out = NULL;
	size_t len;

	(void)state;
	assert_non_null(data);
	assert_int_equal(
	    te_render_map_set(data, "nan", 3, te_render_value_float(NAN), &err),
	    0);
	assert_int_equal(te_render_map_set(data, "inf", 3,
	                                   te_render_value_float(-INFINITY),
	                                   &err),
	                 0);
	assert_int_equal(te_render_set_new(&set, funcs, NULL, &err), 0);
	assert_int_equal(te_render_parse(set, "t", tmpl, strlen(tmpl), &err),
	                 0);
	assert_int_equal(te_render_exec(&out, &len, set, "t", data, &err), 0);
	assert_string_equal(out, "\"\\b\\f\" [] []");
	free(out);
	tmpl = "{{mustToJson (list 1 .nan)}}";
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(te_render_parse(set, "m", tmpl, strlen(tmpl), &err),
	                 0);
	assert_int_equal(te_render_exec(&out, &len, set, "m", data, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "error calling mustToJson: json: "
	                                "unsupported value: NaN"));
	tmpl = "{{toRawJson .inf}}";
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(te_render_parse(set, "r", tmpl, strlen(tmpl), &err),
	                 0);
	assert_int_equal(te_render_exec(&out, &len, set, "r", data, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "error calling toRawJson: json: "
	                                "unsupported value: -Inf"));
	te_render_set_free(set);
	te_render_value_unref(data);
	te_render_funcs_free(funcs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(oracle_cases),
	    cmocka_unit_test(newer_go),
	    cmocka_unit_test(hostile_range),
	    cmocka_unit_test(hostile_recursion),
	    cmocka_unit_test(many_templates),
	    cmocka_unit_test(hostile_nesting),
	    cmocka_unit_test(hostile_output),
	    cmocka_unit_test(custom_functions),
	    cmocka_unit_test(method_objects),
	    cmocka_unit_test(include_function),
	    cmocka_unit_test(values),
	    cmocka_unit_test(sets),
	    cmocka_unit_test(sprig_unsupported),
	    cmocka_unit_test(sprig_argument_types),
	    cmocka_unit_test(sprig_budgets),
	    cmocka_unit_test(sprig_json),
	    cmocka_unit_test(sprig_dict_mutation),
	    cmocka_unit_test(sprig_hostile_more),
	    cmocka_unit_test(sprig_dates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
