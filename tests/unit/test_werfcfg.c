/*
 * test_werfcfg.c - werf.yaml rendering from real git commits: .werf
 * templates, werf's functions, giterminism of env, bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "git_fixture.h"
#include "regression.h"
#include "tagexport/werfcfg.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* NULL-terminated "NAME=VALUE" list standing in for an environment. */
static bool lookup(const char **value, const char *name, void *payload)
{
	const char *const *e;
	size_t n = strlen(name);

	for (e = payload; *e; e++)
		if (!strncmp(*e, name, n) && (*e)[n] == '=') {
			*value = *e + n + 1;
			return true;
		}
	return false;
}

static const char *const test_env[] = {"A=alpha", "B_ONE=b1",
                                       "EMPTY=", "DENIED=secret", NULL};

static te_werfcfg_opts base_opts(void)
{
	te_werfcfg_opts o = {0};

	o.env = "prod";
	o.lookup_env = lookup;
	o.lookup_payload = (void *)test_env;
	return o;
}

/* Commit files to a fresh repository and render it; the text or NULL. */
static char *render_files(const th_file *files, size_t n,
                          const te_werfcfg_opts *opts, te_error *err, int *rc,
                          char commit[41])
{
	char *tmp = th_tmpdir(), *out = NULL, *path = NULL;
	char local[41];
	git_repository *repo = th_init(tmp);
	te_gitsrc *src = NULL;
	size_t len = 0;

	if (!commit)
		commit = local;
	th_commit(commit, repo, files, n, "c");
	assert_int_equal(te_gitsrc_open(&src, tmp, err), 0);
	*rc = te_werfcfg_render(&out, &len, &path, src, commit, opts, err);
	if (*rc == 0) {
		assert_non_null(path);
		assert_int_equal(strlen(out), len);
	} else {
		assert_null(out);
	}
	free(path);
	te_gitsrc_free(src);
	git_repository_free(repo);
	th_rm_rf(tmp);
	free(tmp);
	return out;
}

static void expect_text(const th_file *files, size_t n,
                        const te_werfcfg_opts *opts, const char *want)
{
	te_error err = TE_ERROR_INIT;
	int rc;
	char *out = render_files(files, n, opts, &err, &rc, NULL);

	if (rc != 0)
		fail_msg("unexpected error %d: %s", rc, err.msg);
	assert_string_equal(out, want);
	free(out);
}

static void expect_error(const th_file *files, size_t n,
                         const te_werfcfg_opts *opts, const char *want)
{
	te_error err = TE_ERROR_INIT;
	int rc;
	char *out = render_files(files, n, opts, &err, &rc, NULL);

	if (rc >= 0 || !strstr(err.msg, want))
		fail_msg("want error \"%s\", got %d \"%s\"", want, rc, err.msg);
	free(out);
}

static void plain_and_data(void **state)
{
	te_werfcfg_opts o = base_opts();
	te_error err = TE_ERROR_INIT;
	char commit[41], want[200];
	const th_file plain[] = {
	    {"werf.yaml", "project: p\nconfigVersion: 1\n", 0}};
	const th_file yml[] = {{"werf.yml", "a: {{ .Env }}\n", 0}};
	const th_file data[] = {
	    {"werf.yaml",
	     "env: {{ .Env }}\nhash: {{ .Commit.Hash }}\n"
	     "date: {{ .Commit.Date.Human }} / {{ .Commit.Date.Unix }}\n",
	     0}};
	int rc;
	char *out;

	(void)state;
	expect_text(plain, N(plain), &o, "project: p\nconfigVersion: 1\n");
	expect_text(yml, N(yml), &o, "a: prod\n");
	o.env = NULL;
	expect_text(yml, N(yml), &o, "a: \n");
	o.env = "prod";
	out = render_files(data, N(data), &o, &err, &rc, commit);
	assert_int_equal(rc, 0);
	/* the fixture's author time: 1700000000, +0000 */
	snprintf(want, sizeof(want),
	         "env: prod\nhash: %s\ndate: 2023-11-14 22:13:20 +0000 UTC "
	         "/ 1700000000\n",
	         commit);
	assert_string_equal(out, want);
	free(out);
	expect_error(plain, 0, &o, "werf.yaml (or werf.yml) not found");
	o.config_path = "other.yaml";
	expect_error(plain, N(plain), &o, "config other.yaml not found");
}

static void templates_dir(void **state)
{
	te_werfcfg_opts o = base_opts();
	const th_file files[] = {
	    {"werf.yaml",
	     "{{ include \"img\" \"web\" }}\n---\n"
	     "{{ include \"sub/raw.tmpl\" . }}|{{ template \"img\" \"x\" }}\n",
	     0},
	    {".werf/defs.tmpl", "{{ define \"img\" }}image: {{ . }}{{ end }}",
	     0},
	    {".werf/sub/raw.tmpl", "raw {{ .Env }}", 0},
	    /* not *.tmpl: ignored, so its define does not exist */
	    {".werf/other.yaml", "{{ define \"img\" }}WRONG{{ end }}", 0}};
	const th_file custom[] = {
	    {"werf.yaml", "{{ include \"t.tmpl\" . }}\n", 0},
	    {"tpls/t.tmpl", "custom", 0}};
	const th_file broken[] = {{"werf.yaml", "a\n", 0},
	                          {".werf/bad.tmpl", "x\n{{ if }}", 0}};

	(void)state;
	expect_text(files, N(files), &o,
	            "image: web\n---\nraw prod|image: x\n");
	o.templates_dir = "tpls";
	expect_text(custom, N(custom), &o, "custom\n");
	o.templates_dir = NULL;
	expect_error(broken, N(broken), &o, "template: bad.tmpl:2:");
	expect_error(custom, N(custom), &o, "t.tmpl");
}

static void tpl_and_required(void **state)
{
	te_werfcfg_opts o = base_opts();
	const th_file tpl[] = {
	    {"werf.yaml",
	     "{{ define \"d\" }}D{{ .Env }}{{ end }}"
	     "{{ tpl \"{{ .Env }}-{{ include \\\"d\\\" . }}\" . }}\n",
	     0}};
	const th_file req_ok[] = {
	    {"werf.yaml", "{{ required \"need A\" (env \"A\") }}\n", 0}};
	const th_file req_empty[] = {
	    {"werf.yaml", "{{ required \"need EMPTY\" (env \"EMPTY\") }}\n", 0},
	    {"werf-giterminism.yaml",
	     "giterminismConfigVersion: 1\nconfig:\n  goTemplateRendering:\n"
	     "    allowEnvVariables: [EMPTY]\n",
	     0}};
	const th_file req_nil[] = {
	    {"werf.yaml", "{{ required \"need x\" .x }}\n", 0}};
	const th_file tpl_bad[] = {
	    {"werf.yaml", "{{ tpl \"{{ if }}\" . }}\n", 0}};

	(void)state;
	expect_text(tpl, N(tpl), &o, "prod-Dprod\n");
	o.loose_giterminism = true;
	expect_text(req_ok, N(req_ok), &o, "alpha\n");
	o.loose_giterminism = false;
	expect_error(req_empty, N(req_empty), &o,
	             "error calling required: need EMPTY");
	expect_error(req_nil, N(req_nil), &o, "error calling required: need x");
	expect_error(tpl_bad, N(tpl_bad), &o, "template: tpl-1:1:");
}

/* /RE/ is Go's regexp "^RE$" as werf builds it: RE2 syntax (\d, (?i))
 * and no group around RE, so /X|B_ONE/ is "^X|B_ONE$". */
static void env_giterminism_regexp(void **state)
{
	te_werfcfg_opts o = base_opts();
	const th_file re2[] = {
	    {"werf.yaml", "{{ env \"B_ONE\" }} {{ env \"DENIED\" }}\n", 0},
	    {"werf-giterminism.yaml",
	     "giterminismConfigVersion: 1\nconfig:\n  goTemplateRendering:\n"
	     "    allowEnvVariables: ['/\\w_(?i:one)/', '/DEN|x/']\n",
	     0}};
	const th_file bad[] = {
	    {"werf.yaml", "{{ env \"A\" }}\n", 0},
	    {"werf-giterminism.yaml",
	     "giterminismConfigVersion: 1\nconfig:\n  goTemplateRendering:\n"
	     "    allowEnvVariables: ['/(A/']\n",
	     0}};

	(void)state;
	expect_text(re2, N(re2), &o, "b1 secret\n");
	expect_error(bad, N(bad), &o,
	             "allowEnvVariables: /(A/: error parsing regexp: "
	             "missing closing ): `^(A$`");
}

static void env_giterminism(void **state)
{
	te_werfcfg_opts o = base_opts();
	const char *gyaml = "giterminismConfigVersion: 1\n"
	                    "config:\n  goTemplateRendering:\n"
	                    "    allowEnvVariables: [A, /B_.*/, UNSET]\n";
	const th_file ok[] = {
	    {"werf.yaml",
	     "{{ env \"A\" }} {{ env \"B_ONE\" }} {{ env \"UNSET\" \"dflt\" "
	     "}}\n",
	     0},
	    {"werf-giterminism.yaml", gyaml, 0}};
	const th_file denied[] = {{"werf.yaml", "{{ env \"DENIED\" }}\n", 0},
	                          {"werf-giterminism.yaml", gyaml, 0}};
	/* the regexp is anchored: XB_ONE does not match /B_.*\/ */
	const th_file anchored[] = {{"werf.yaml", "{{ env \"XB_ONE\" }}\n", 0},
	                            {"werf-giterminism.yaml", gyaml, 0}};
	const th_file nofile[] = {{"werf.yaml", "{{ env \"A\" }}\n", 0}};
	const th_file unset[] = {{"werf.yaml", "{{ env \"UNSET\" }}\n", 0},
	                         {"werf-giterminism.yaml", gyaml, 0}};
	const th_file args[] = {
	    {"werf.yaml", "{{ env \"A\" \"x\" \"y\" }}\n", 0},
	    {"werf-giterminism.yaml", gyaml, 0}};
	const th_file badyaml[] = {{"werf.yaml", "{{ env \"A\" }}\n", 0},
	                           {"werf-giterminism.yaml", "a: [\n", 0}};

	(void)state;
	expect_text(ok, N(ok), &o, "alpha b1 dflt\n");
	expect_error(denied, N(denied), &o,
	             "error calling env: env name \"DENIED\" not allowed by "
	             "giterminism");
	expect_error(anchored, N(anchored), &o, "\"XB_ONE\" not allowed");
	expect_error(nofile, N(nofile), &o, "\"A\" not allowed");
	expect_error(unset, N(unset), &o,
	             "the environment variable \"UNSET\" must be set or "
	             "default must be provided");
	expect_error(args, N(args), &o, "more than 1 optional argument");
	expect_error(badyaml, N(badyaml), &o, "werf-giterminism.yaml:");
	/* loose: everything allowed, unset is "" */
	o.loose_giterminism = true;
	expect_text(denied, N(denied), &o, "secret\n");
	expect_text(unset, N(unset), &o, "\n");
	/* no lookup at all: nothing is set */
	o.lookup_env = NULL;
	expect_text(nofile, N(nofile), &o, "\n");
}

static void files_data(void **state)
{
	te_werfcfg_opts o = base_opts();
	const th_file files[] = {
	    {"werf.yaml",
	     "{{ .Files.Get \"conf/a.txt\" }}|{{ $.Files.Exists \"conf\" }}"
	     "{{ .Files.Exists \"conf/a.txt\" }}{{ .Files.Exists \"no\" }}|"
	     "{{ .Files.IsDir \"conf\" }}{{ .Files.IsDir \"conf/a.txt\" }}|"
	     "{{ range $p, $c := .Files.Glob \"conf/**/*.txt\" }}{{ $p }}="
	     "{{ $c }};{{ end }}|{{ len (.Files.Glob \"*.txt\") }}|"
	     "{{ tpl (.Files.Get \"conf/t.yaml\") . }}\n",
	     0},
	    {"conf/a.txt", "A", 0},
	    {"conf/sub/deep/b.txt", "B", 0},
	    {"conf/sub/c.md", "C", 0},
	    {"conf/t.yaml", "env={{ .Env }}", 0}};
	const th_file missing[] = {
	    {"werf.yaml", "{{ .Files.Get \"nope\" }}\n", 0}};
	const th_file dir[] = {{"werf.yaml", "{{ .Files.Get \"d\" }}\n", 0},
	                       {"d/x", "x", 0}};

	(void)state;
	expect_text(files, N(files), &o,
	            "A|truetruefalse|truefalse|conf/a.txt=A;"
	            "conf/sub/deep/b.txt=B;|0|env=prod\n");
	expect_error(missing, N(missing), &o,
	             "error calling Get: {{ .Files.Get \"nope\" }}: no such "
	             "file");
	expect_error(dir, N(dir), &o, "error calling Get:");
}

/* doublestar's syntax, as werf's .Files.Glob reads it: classes,
 * negated classes, ranges, {a,b} alternatives (nested), quoting. */
static void files_glob_syntax(void **state)
{
	te_werfcfg_opts o = base_opts();
	const th_file files[] = {
	    {"werf.yaml",
	     "{{ range $p, $_ := .Files.Glob \"g/[ab]?.txt\" }}{{ $p }} "
	     "{{ end }}|{{ range $p, $_ := .Files.Glob \"g/[!ab]*\" }}{{ $p }} "
	     "{{ end }}|{{ range $p, $_ := .Files.Glob \"g/[a-b]1.{txt,md}\" }}"
	     "{{ $p }} {{ end }}|{{ range $p, $_ := .Files.Glob "
	     "\"{g/{c,x},h/**}/*\" }}{{ $p }} {{ end }}|"
	     "{{ range $p, $_ := .Files.Glob \"g/\\\\[q].txt\" }}{{ $p }}"
	     "{{ end }}|{{ len (.Files.Glob \"g/[ab\") }}\n",
	     0},
	    {"g/a1.txt", "", 0},
	    {"g/b1.md", "", 0},
	    {"g/c.txt", "", 0},
	    {"g/c/x", "", 0},
	    {"g/[q].txt", "", 0},
	    {"h/i/j", "", 0}};
	const th_file too_many[] = {
	    {"werf.yaml",
	     "{{ .Files.Glob \"{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}\" "
	     "}}\n",
	     0}};

	(void)state;
	expect_text(files, N(files), &o,
	            "g/a1.txt |g/[q].txt g/c.txt |g/a1.txt g/b1.md |"
	            "g/c/x h/i/j |g/[q].txt|0\n");
	expect_error(too_many, N(too_many), &o, "more than 256 alternatives");
}

static void huge_files(void **state)
{
	te_werfcfg_opts o = base_opts();
	char *big = malloc(TE_WERFCFG_FILE_MAX + 2);
	th_file files[] = {{"werf.yaml", "{{ .Files.Get \"big\" }}\n", 0},
	                   {"big", NULL, 0}};
	/* 20 files of 1 MiB each: over the 16 MiB all .Files may read */
	th_file many[21];
	char names[20][8];
	size_t i;

	(void)state;
	assert_non_null(big);
	memset(big, 'b', TE_WERFCFG_FILE_MAX + 1);
	big[TE_WERFCFG_FILE_MAX + 1] = '\0';
	files[1].data = big;
	expect_error(files, N(files), &o, "error calling Get:");
	big[TE_WERFCFG_FILE_MAX - 1] = '\0';
	many[0] =
	    (th_file){"werf.yaml", "{{ len (.Files.Glob \"f/*\") }}\n", 0};
	for (i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "f/%02zu", i);
		many[i + 1] = (th_file){names[i], big, 0};
	}
	expect_error(many, N(many), &o, "more than 16777216 bytes in all");
	free(big);
}

/* fromYaml/toYaml beyond the yaml.v2 oracle (t61): errors in yaml.v2's
 * words, non-map values, alias bombs. */
static void yaml_functions(void **state)
{
	te_werfcfg_opts o = base_opts();
	const th_file top[] = {
	    {"werf.yaml",
	     "{{ toYaml \"top\" }}|{{ toYaml .Commit.Date.Unix }}|"
	     "{{ (fromYaml \"a: {b: [1, x]}\").a.b }}|"
	     "{{ len (fromYaml \"\") }}|{{ toYaml (fromYaml \"l: [1, a, "
	     "~]\").l }}"
	     "\n",
	     0}};
	struct {
		const char *yaml, *want;
	} bad[] = {
	    {"a: [", "yaml: line 1: did not find expected node content"},
	    {"- a", "yaml: unmarshal errors: line 1: cannot unmarshal !!seq "
	            "into map[string]interface {}"},
	    {"plain", "cannot unmarshal !!str `plain` into "
	              "map[string]interface {}"},
	    {"a: b\n  c: d", "yaml: line 2: mapping values are not allowed "
	                     "in this context"},
	    {"a:\n\tb: 1", "yaml: line 2: found character that cannot "
	                   "start any token"},
	};
	char text[300];
	th_file f[1];
	size_t i;
	/* a billion laughs: aliases expand past the node budget */
	const th_file bomb[] = {
	    {"werf.yaml", "{{ len (.Files.Get \"b.yaml\" | fromYaml) }}\n", 0},
	    {"b.yaml",
	     "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	     "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
	     0}};

	(void)state;
	expect_text(top, N(top), &o,
	            "top|\"1700000000\"|[1 x]|0|- 1\n- a\n- null\n");
	for (i = 0; i < N(bad); i++) {
		snprintf(text, sizeof(text), "{{ fromYaml %s }}\n",
		         i == 3   ? "\"a: b\\n  c: d\""
		         : i == 4 ? "\"a:\\n\\tb: 1\""
		                  : "(printf \"%s\" \"x\")");
		if (i < 3)
			snprintf(text, sizeof(text), "{{ fromYaml \"%s\" }}\n",
			         bad[i].yaml);
		f[0] = (th_file){"werf.yaml", text, 0};
		expect_error(f, 1, &o, bad[i].want);
	}
	expect_error(bomb, N(bomb), &o, "more than 1000000 nodes");
}

static int shout(te_render_value **out, te_render_call *call,
                 te_render_value *const *args, size_t nargs, void *payload,
                 te_error *err)
{
	(void)call;
	(void)args;
	(void)nargs;
	(void)payload;
	*out = te_render_value_string("LOUD", 4);
	return *out ? 0 : te_error_set(err, TE_ENOMEM, "oom");
}

static int add_extra(te_render_funcs *funcs, void *payload, te_error *err)
{
	int *called = payload;

	(*called)++;
	if (te_render_funcs_add(funcs, "shout", shout, 0, 0, NULL, err) < 0)
		return TE_EINVALID;
	/* werf's own functions are registered after, so they win */
	return te_render_funcs_add(funcs, "required", shout, 0, 0, NULL, err);
}

static void extra_funcs_hook(void **state)
{
	te_werfcfg_opts o = base_opts();
	int called = 0;
	const th_file files[] = {
	    {"werf.yaml", "{{ shout }} {{ required \"m\" 1 }}\n", 0}};

	(void)state;
	o.extra_funcs = add_extra;
	o.extra_payload = &called;
	expect_text(files, N(files), &o, "LOUD 1\n");
	assert_int_equal(called, 1);
}

/* werf registers Sprig's map before its own functions: Sprig works in
 * werf.yaml, werf's env wins over Sprig's, and expandenv stays out. */
static void sprig_functions(void **state)
{
	te_werfcfg_opts o = base_opts();
	const th_file files[] = {
	    {"werf.yaml",
	     "{{- $apps := list \"api\" \"web\" -}}\n"
	     "{{- range $apps }}\n---\nimage: {{ . }}\n"
	     "args: {{ dict \"n\" (len $apps) | toJson }}\n"
	     "{{- end }}\n"
	     "tag: {{ env \"TE_TEST_ALLOWED\" \"x\" | default \"d\" "
	     "| quote }}\n",
	     0},
	    {"werf-giterminism.yaml",
	     "giterminismConfigVersion: 1\nconfig:\n  goTemplateRendering:\n"
	     "    allowEnvVariables: [TE_TEST_ALLOWED]\n",
	     0}};
	const th_file expandenv[] = {
	    {"werf.yaml", "{{ expandenv \"$HOME\" }}\n", 0}};

	(void)state;
	expect_text(files, N(files), &o,
	            "\n---\nimage: api\nargs: {\"n\":2}\n---\nimage: web\n"
	            "args: {\"n\":2}\ntag: \"x\"\n");
	expect_error(expandenv, N(expandenv), &o,
	             "function \"expandenv\" not defined");
}

/* tests/fuzz/regressions/werf_yaml: a key with a long run of digits
 * overflowed the sort's counter (UBSan).  yaml.v2 sorts with Go's int64,
 * which wraps: 11111111111111111111 counts as negative, so a1111... sorts
 * before a2, and a9999... (wrapped, still positive) after it. */
static void yaml_key_digit_runs(void **state)
{
	te_werfcfg_opts o = base_opts();
	te_buf input = TE_BUF_INIT((size_t)16 << 20);
	th_file files[2] = {
	    {"werf.yaml",
	     "{{ toYaml (.Files.Get \"in.yaml\" | fromYaml) }}\n"
	     "{{ toYaml (fromYaml \"a99999999999999999999: 2\\n"
	     "a2: x\\na11111111111111111111: 1\") }}\n",
	     0},
	    {"in.yaml", NULL, 0}};
	te_error err = TE_ERROR_INIT;
	char *out;
	int rc;

	(void)state;
	read_regression(&input, "werf_yaml", "ubsan-key-digits-overflow");
	files[1].data = input.ptr;
	out = render_files(files, N(files), &o, &err, &rc, NULL);
	if (rc != 0)
		fail_msg("unexpected error %d: %s", rc, err.msg);
	assert_non_null(strstr(out, "a11111111111111111111: 1\na2: x\n"
	                            "a99999999999999999999: 2\n"));
	free(out);
	te_buf_dispose(&input);
}

static void hostile(void **state)
{
	te_werfcfg_opts o = base_opts();
	const th_file rec_include[] = {
	    {"werf.yaml", "{{ include \"r.tmpl\" . }}\n", 0},
	    {".werf/r.tmpl", "x{{ include \"r.tmpl\" . }}", 0}};
	const th_file tpl_bomb[] = {
	    {"werf.yaml",
	     "{{ define \"t\" }}{{ tpl \"{{ include \\\"t\\\" . }}\" . }}"
	     "{{ end }}{{ include \"t\" . }}\n",
	     0}};
	const th_file tpl_loop[] = {
	    {"werf.yaml", "{{ range 100000 }}{{ tpl \"x\" . }}{{ end }}\n", 0}};
	const th_file range_bomb[] = {
	    {"werf.yaml", "{{ range 1000000000 }}x{{ end }}\n", 0}};
	char *big = malloc(TE_WERFCFG_FILE_MAX + 2);
	th_file huge[] = {{"werf.yaml", NULL, 0}};

	(void)state;
	assert_non_null(big);
	memset(big, 'a', TE_WERFCFG_FILE_MAX + 1);
	big[TE_WERFCFG_FILE_MAX + 1] = '\0';
	huge[0].data = big;
	expect_error(rec_include, N(rec_include), &o,
	             "exceeded maximum template depth");
	expect_error(tpl_bomb, N(tpl_bomb), &o, "template");
	expect_error(tpl_loop, N(tpl_loop), &o, "more than 1000 tpl calls");
	expect_error(range_bomb, N(range_bomb), &o, "steps");
	expect_error(huge, N(huge), &o, "werf.yaml");
	free(big);
}

static void split_docs(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_werfcfg_doc *d = NULL;
	size_t n = 0;
	/* werf's separators: ---, then spaces/tabs/CR, optional # comment;
	 * "----" and "--- x" are content. */
	const char *t = "a: 1\n---\nb: 2\n--- \t# c\n----\n--- x\n---\n"
	                "---#\nz\n---";

	(void)state;
	assert_int_equal(te_werfcfg_split(&d, &n, t, strlen(t), &err), 0);
	assert_int_equal(n, 5);
	assert_int_equal(d[0].line, 1);
	assert_int_equal(d[0].len, 5); /* "a: 1\n" */
	assert_memory_equal(t + d[1].off, "b: 2\n", d[1].len);
	assert_int_equal(d[1].len, 5);
	assert_int_equal(d[1].line, 3);
	assert_memory_equal(t + d[2].off, "----\n--- x\n", d[2].len);
	assert_int_equal(d[2].len, 11);
	assert_int_equal(d[2].line, 5);
	assert_int_equal(d[3].len, 0); /* between two separators */
	assert_memory_equal(t + d[4].off, "z\n", d[4].len);
	assert_int_equal(d[4].len, 2);
	assert_int_equal(d[4].line, 9);
	free(d);
	assert_int_equal(te_werfcfg_split(&d, &n, "", 0, &err), 0);
	assert_int_equal(n, 0);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(plain_and_data),
	    cmocka_unit_test(templates_dir),
	    cmocka_unit_test(tpl_and_required),
	    cmocka_unit_test(env_giterminism),
	    cmocka_unit_test(env_giterminism_regexp),
	    cmocka_unit_test(extra_funcs_hook),
	    cmocka_unit_test(sprig_functions),
	    cmocka_unit_test(hostile),
	    cmocka_unit_test(files_data),
	    cmocka_unit_test(yaml_functions),
	    cmocka_unit_test(yaml_key_digit_runs),
	    cmocka_unit_test(files_glob_syntax),
	    cmocka_unit_test(huge_files),
	    cmocka_unit_test(split_docs),
	};
	te_error err = TE_ERROR_INIT;

	if (te_gitsrc_global_init(&err) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
