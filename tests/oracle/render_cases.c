/*
 * render_cases.c - run the oracle case files (tests/oracle/cases/NAME.txt,
 * format in oracle.go) through the C engine and compare each result
 * byte for byte with the Go oracle's JSON lines (tests/oracle/expected).
 *
 * Linked into tests/unit/test_render.c; built with RENDER_CASES_MAIN as
 * the `render_cases` driver of tests/integration/t60-render-oracle.sh:
 *   render_cases DATA.json CASES.txt EXPECTED.jsonl
 * prints one line per mismatch and exits 1 when there is any.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/base64.h"
#include "tagexport/render.h"
#include "render_cases.h"

struct rcase {
	char *name;
	char *tmpl;
	char *data; /* NULL: the default data */
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		if (buf) {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static char *join_lines(char **lines, size_t from, size_t to)
{
	size_t i, n = 0;
	char *s, *p;

	for (i = from; i < to; i++)
		n += strlen(lines[i]) + 1;
	s = calloc(n + 1, 1);
	if (!s)
		return NULL;
	p = s;
	for (i = from; i < to; i++) {
		if (i > from)
			*p++ = '\n';
		strcpy(p, lines[i]);
		p += strlen(lines[i]);
	}
	return s;
}

/* The same grammar as parseCases in oracle.go. */
static int parse_cases(char *text, struct rcase **out, size_t *count)
{
	char **lines = NULL;
	size_t nlines = 0, i, start = 0, ncases = 0;
	struct rcase *cases = NULL, *cur = NULL;
	bool in_data = false;
	char *p = text, *nl;

	while (*p) {
		lines = realloc(lines, (nlines + 1) * sizeof(*lines));
		lines[nlines++] = p;
		nl = strchr(p, '\n');
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	for (i = 0; i <= nlines; i++) {
		bool header = i < nlines && !strncmp(lines[i], "=== ", 4);

		if (i == nlines || header) {
			if (cur) {
				if (in_data)
					cur->data = join_lines(lines, start, i);
				else
					cur->tmpl = join_lines(lines, start, i);
			}
			if (i == nlines)
				break;
			cases = realloc(cases, (ncases + 1) * sizeof(*cases));
			cur = &cases[ncases++];
			memset(cur, 0, sizeof(*cur));
			cur->name = strdup(lines[i] + 4);
			start = i + 1;
			in_data = false;
		} else if (cur && !in_data && !strcmp(lines[i], "--- data")) {
			cur->tmpl = join_lines(lines, start, i);
			start = i + 1;
			in_data = true;
		}
	}
	free(lines);
	*out = cases;
	*count = ncases;
	return 0;
}

/* Render one case: *ok, and the output or the error message. */
static char *render_case(const struct rcase *c, const char *def_data,
                         const te_render_funcs *funcs, bool *ok, size_t *len)
{
	te_error err = TE_ERROR_INIT;
	te_render_set *set = NULL;
	te_render_value *data = NULL;
	const char *dtext = c->data ? c->data : def_data;
	char *out = NULL;

	*ok = false;
	if (te_render_value_from_json(&data, dtext, strlen(dtext), &err) < 0 ||
	    te_render_set_new(&set, funcs, NULL, &err) < 0 ||
	    te_render_parse(set, c->name, c->tmpl, strlen(c->tmpl), &err) < 0 ||
	    te_render_exec(&out, len, set, c->name, data, &err) < 0) {
		out = strdup(err.msg);
		*len = strlen(out);
	} else {
		*ok = true;
	}
	te_render_set_free(set);
	te_render_value_unref(data);
	return out;
}

/*
 * Outputs compare byte for byte.  Error messages go through te_error
 * (error.h): one line, so Go's newlines read as spaces, and at most
 * TE_ERROR_MSG_MAX - 1 bytes, so a full C message is compared as a prefix.
 */
static bool same_text(const char *got, size_t len, const char *want,
                      size_t wlen, bool ok)
{
	size_t i;

	if (ok)
		return len == wlen && memcmp(got, want, len) == 0;
	if (len == TE_ERROR_MSG_MAX - 1 && wlen > len)
		wlen = len;
	if (len != wlen)
		return false;
	for (i = 0; i < len; i++) {
		char w = want[i] == '\n' || want[i] == '\r' ? ' ' : want[i];

		if (got[i] != w)
			return false;
	}
	return true;
}

static int check_one(const struct rcase *c, const char *def_data,
                     const te_render_funcs *funcs, json_t *want, FILE *report)
{
	const char *wout = json_string_value(json_object_get(want, "out"));
	const char *wb64 = json_string_value(json_object_get(want, "out_b64"));
	bool wok = json_is_true(json_object_get(want, "ok")), ok;
	size_t len, wlen = 0;
	char *got = render_case(c, def_data, funcs, &ok, &len), *wdec = NULL;
	int bad;

	if (wb64) {
		long n;

		wdec = malloc(strlen(wb64) + 1);
		n = wdec ? te_base64_decode((unsigned char *)wdec, strlen(wb64),
		                            wb64, strlen(wb64))
		         : -1;
		wlen = n < 0 ? 0 : (size_t)n;
		wout = wdec;
	} else {
		/* outputs may hold NUL bytes */
		wlen =
		    wout ? json_string_length(json_object_get(want, "out")) : 0;
		wout = wout ? wout : "";
	}
	bad = !got || ok != wok || !same_text(got, len, wout, wlen, ok);
	if (bad && report)
		fprintf(report,
		        "case %s:\n  want (%s) [%.*s]\n  got  (%s) [%.*s]\n",
		        c->name, wok ? "ok" : "error", (int)wlen,
		        wout ? wout : "", ok ? "ok" : "error", (int)len,
		        got ? got : "");
	free(got);
	free(wdec);
	return bad;
}

int render_cases_check(const char *data_path, const char *cases_path,
                       const char *expected_path, FILE *report, size_t *checked)
{
	size_t dlen, clen, elen, ncases = 0, i;
	char *def = slurp(data_path, &dlen), *text = slurp(cases_path, &clen);
	char *exp = slurp(expected_path, &elen), *line, *save = NULL;
	struct rcase *cases = NULL;
	const char *base = strrchr(cases_path, '/');
	te_render_funcs *funcs = NULL;
	te_error err = TE_ERROR_INIT;
	int failures = 0;

	*checked = 0;
	/* sprig_*.txt cases run with Sprig's functions (oracle.go -sprig) */
	base = base ? base + 1 : cases_path;
	if (!strncmp(base, "sprig_", 6) &&
	    (te_render_funcs_new(&funcs, &err) < 0 ||
	     te_render_funcs_add_sprig(funcs, &err) < 0)) {
		if (report)
			fprintf(report, "sprig functions: %s\n", err.msg);
		failures = -1;
		goto done;
	}
	if (!def || !text || !exp) {
		if (report)
			fprintf(report, "cannot read %s, %s or %s\n", data_path,
			        cases_path, expected_path);
		failures = -1;
		goto done;
	}
	parse_cases(text, &cases, &ncases);
	i = 0;
	for (line = strtok_r(exp, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), i++) {
		json_t *want = json_loads(line, JSON_ALLOW_NUL, NULL);
		const char *name =
		    json_string_value(json_object_get(want, "name"));

		if (i >= ncases || !name || strcmp(name, cases[i].name) != 0) {
			if (report)
				fprintf(report,
				        "%s: expected line %zu (%s) does "
				        "not match the cases\n",
				        expected_path, i + 1,
				        name ? name : "?");
			json_decref(want);
			failures++;
			break;
		}
		failures += check_one(&cases[i], def, funcs, want, report);
		(*checked)++;
		json_decref(want);
	}
	if (i != ncases) {
		if (report)
			fprintf(report, "%s: %zu results for %zu cases\n",
			        expected_path, i, ncases);
		failures++;
	}
done:
	te_render_funcs_free(funcs);
	for (i = 0; i < ncases; i++) {
		free(cases[i].name);
		free(cases[i].tmpl);
		free(cases[i].data);
	}
	free(cases);
	free(def);
	free(text);
	free(exp);
	return failures;
}

#ifdef RENDER_CASES_MAIN
int main(int argc, char **argv)
{
	size_t checked;
	int failures;

	if (argc != 4) {
		fprintf(
		    stderr,
		    "usage: render_cases DATA.json CASES.txt EXPECTED.jsonl\n");
		return 2;
	}
	failures =
	    render_cases_check(argv[1], argv[2], argv[3], stdout, &checked);
	printf("%s: %zu cases checked, %d failed\n", argv[2], checked,
	       failures);
	return failures == 0 ? 0 : 1;
}
#endif
