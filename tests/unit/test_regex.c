#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bzlib.h>

#include "tagexport/regex.h"
#include "tagexport/render.h"

/* ---- helpers ------------------------------------------------------------ */

static te_regex *compile_ok(const char *pat, unsigned flags)
{
	te_error err = TE_ERROR_INIT;
	te_regex *re = NULL;

	if (te_regex_compile(&re, pat, strlen(pat), flags, &err) < 0)
		fail_msg("compile %s: %s", pat, err.msg);
	return re;
}

static void assert_compile_error(const char *pat, const char *msg)
{
	te_error err = TE_ERROR_INIT;
	te_regex *re = NULL;

	assert_int_equal(te_regex_compile(&re, pat, strlen(pat), 0, &err),
	                 TE_EINVALID);
	assert_null(re);
	assert_string_equal(err.msg, msg);
}

/* One match as the file writes it: "-" or "0-1 1-2 -". */
static void format_caps(char *out, size_t size, int rc, const ptrdiff_t *c,
                        size_t n)
{
	size_t i, o = 0;

	if (rc == 0) {
		snprintf(out, size, "-");
		return;
	}
	out[0] = '\0';
	for (i = 0; i < n && o < size; i++) {
		if (c[2 * i] < 0)
			o += (size_t)snprintf(out + o, size - o, "%s-",
			                      i ? " " : "");
		else
			o += (size_t)snprintf(out + o, size - o, "%s%td-%td",
			                      i ? " " : "", c[2 * i],
			                      c[2 * i + 1]);
	}
}

/* "a-b c-d -" of the first match's groups, "-" when none */
static char *find_str(const char *pat, const char *text, unsigned flags)
{
	te_error err = TE_ERROR_INIT;
	te_regex *re = compile_ok(pat, flags);
	size_t n = te_regex_groups(re);
	ptrdiff_t *caps = calloc(2 * n, sizeof(*caps));
	char *out = malloc(32 * n + 2);
	int rc;

	assert_non_null(caps);
	assert_non_null(out);
	rc = te_regex_find(caps, n, re, text, strlen(text), 0, NULL, &err);
	assert_true(rc >= 0);
	format_caps(out, 32 * n + 2, rc, caps, n);
	free(caps);
	te_regex_free(re);
	return out;
}

static void assert_find(const char *pat, const char *text, const char *want)
{
	char *got = find_str(pat, text, 0);

	if (strcmp(got, want))
		fail_msg("%s on \"%s\": got %s, want %s", pat, text, got, want);
	free(got);
}

struct collect {
	char buf[1024];
	size_t len;
	const char *text;
};

static int on_match(void *payload, const ptrdiff_t *caps)
{
	struct collect *c = payload;

	c->len +=
	    (size_t)snprintf(c->buf + c->len, sizeof(c->buf) - c->len, "[%.*s]",
	                     (int)(caps[1] - caps[0]), c->text + caps[0]);
	return 0;
}

static int on_piece(void *payload, const char *p, size_t len)
{
	struct collect *c = payload;

	c->len += (size_t)snprintf(c->buf + c->len, sizeof(c->buf) - c->len,
	                           "[%.*s]", (int)len, p);
	return 0;
}

static void assert_find_all(const char *pat, const char *text, long n,
                            const char *want)
{
	te_error err = TE_ERROR_INIT;
	te_regex *re = compile_ok(pat, 0);
	struct collect c = {"", 0, text};

	assert_int_equal(te_regex_find_all(re, text, strlen(text), n, on_match,
	                                   &c, NULL, &err),
	                 0);
	assert_string_equal(c.buf, want);
	te_regex_free(re);
}

static void assert_split(const char *pat, const char *text, long n,
                         const char *want)
{
	te_error err = TE_ERROR_INIT;
	te_regex *re = compile_ok(pat, 0);
	struct collect c = {"", 0, text};

	assert_int_equal(
	    te_regex_split(re, text, strlen(text), n, on_piece, &c, NULL, &err),
	    0);
	assert_string_equal(c.buf, want);
	te_regex_free(re);
}

static void assert_replace(const char *pat, const char *text, const char *repl,
                           bool literal, const char *want)
{
	te_error err = TE_ERROR_INIT;
	te_regex *re = compile_ok(pat, 0);
	te_buf b = TE_BUF_INIT(1 << 20);

	assert_int_equal(te_regex_replace_all(&b, re, text, strlen(text), repl,
	                                      strlen(repl), literal, NULL,
	                                      &err),
	                 0);
	assert_int_equal(te_buf_put(&b, "", 1, &err), 0);
	assert_string_equal(b.ptr, want);
	te_buf_dispose(&b);
	te_regex_free(re);
}

/* ---- syntax errors: Go's messages --------------------------------------- */

static void test_errors(void **state)
{
	static const char *const cases[][2] = {
	    {"(a", "missing closing ): `(a`"},
	    {"a)", "unexpected ): `a)`"},
	    {"a**", "invalid nested repetition operator: `**`"},
	    {"a*?*", "invalid nested repetition operator: `*?*`"},
	    {"a{2}{3}", "invalid nested repetition operator: `{2}{3}`"},
	    {"x{1001}", "invalid repeat count: `{1001}`"},
	    {"x{2,1}", "invalid repeat count: `{2,1}`"},
	    {"(a{1000}){1000}", "invalid repeat count: `{1000}`"},
	    {"\\8", "invalid escape sequence: `\\8`"},
	    {"\\x{110000}", "invalid escape sequence: `\\x{110000`"},
	    {"\\xZ", "invalid escape sequence: `\\xZ`"},
	    {"\\Z", "invalid escape sequence: `\\Z`"},
	    {"\\C", "invalid escape sequence: `\\C`"},
	    {"[a", "missing closing ]: `[a`"},
	    {"[z-a]", "invalid character class range: `z-a`"},
	    {"[[:foo:]]", "invalid character class range: `[:foo:]`"},
	    {"\\pX", "invalid character class range: `\\pX`"},
	    {"\\p{Foo}", "invalid character class range: `\\p{Foo}`"},
	    {"\\p{", "invalid character class range: `\\p{`"},
	    {"(?P<n!>a)", "invalid named capture: `(?P<n!>`"},
	    {"(?<n>a)", "invalid or unsupported Perl syntax: `(?<`"},
	    {"(?i", "invalid or unsupported Perl syntax: `(?i`"},
	    {"(?-)", "invalid or unsupported Perl syntax: `(?-)`"},
	    {"*", "missing argument to repetition operator: `*`"},
	    {"a|*", "missing argument to repetition operator: `*`"},
	    {"\\", "trailing backslash at end of expression: ``"},
	    {"(?P<n>", "missing closing ): `(?P<n>`"},
	    {"\xff", "invalid UTF-8: `\xff`"},
	    {"[\xff]", "invalid UTF-8: `\xff]`"},
	};
	char want[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(want, sizeof(want), "error parsing regexp: %s",
		         cases[i][1]);
		assert_compile_error(cases[i][0], want);
	}
}

/* ---- matching ----------------------------------------------------------- */

static void test_find(void **state)
{
	(void)state;
	/* Unicode simple folding: K matches the Kelvin sign, \w long s */
	assert_find("(?i)k", "\xe2\x84\xaa", "0-3");
	assert_find("(?i)[k]", "\xe2\x84\xaa", "0-3");
	assert_find("(?i)\\w", "\xc5\xbf", "0-2");
	assert_find("(?i)[^\\W]", "\xc5\xbf", "0-2");
	assert_find("(?i)[\\W]", "k", "-");
	assert_find("\\p{Greek}+",
	            "a\xce\xb1\xce\xb2\xce\xb3"
	            "b",
	            "1-7");
	assert_find("\\pL+", "1h\xc3\xa9llo2", "1-7");
	assert_find("\\p{^L}+", "ab12c", "2-4");
	assert_find("\\PL+", "ab12c", "2-4");
	assert_find("[[:^alpha:]]+", "ab12c", "2-4");
	assert_find("(?i)\\p{Lu}+", "abC", "0-3");
	assert_find("\\x{41}\\101\\x42", "AAB", "0-3");
	assert_find("(a*)+", "b", "0-0 0-0");
	assert_find("(a*|b)*", "ab", "0-2 1-2");
	assert_find("(?U)a+", "aaa", "0-1");
	assert_find("(?U)a+?", "aaa", "0-3");
	assert_find("(?s).+", "a\nb", "0-3");
	assert_find(".+", "a\nb", "0-1");
	assert_find("(?m)$", "a\nb", "1-1");
	assert_find("$", "a\nb", "3-3");
	assert_find("[^a]", "\n", "0-1");
	assert_find("\\Q.*\\E+", ".**", "0-3");
	assert_find("a{,2}", "a{,2}", "0-5");
	/* (?i) is not an item: * repeats the case-sensitive a */
	assert_find("a(?i)*", "aAa", "0-1");
	/* an invalid byte is U+FFFD of width one */
	assert_find("\xef\xbf\xbd", "\xff", "0-1");
	assert_find(".", "\xff", "0-1");
	assert_find("(?P<year>\\d{4})-(?P<m>\\d\\d)", "on 2024-05-01",
	            "3-10 3-7 8-10");
}

static void test_groups(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_regex *re = compile_ok("(?P<year>\\d+)-(\\d+)(?:x)(?P<year>y)?", 0);
	te_buf b = TE_BUF_INIT(256);
	const char *src = "on 2024-05";
	ptrdiff_t caps[8];

	(void)state;
	assert_int_equal(te_regex_groups(re), 4);
	assert_string_equal(te_regex_group_name(re, 0), "");
	assert_string_equal(te_regex_group_name(re, 1), "year");
	assert_string_equal(te_regex_group_name(re, 2), "");
	assert_string_equal(te_regex_group_name(re, 3), "year");
	assert_string_equal(te_regex_group_name(re, 9), "");
	/* no x: no match; caps untouched by a miss */
	assert_int_equal(
	    te_regex_find(caps, 4, re, src, strlen(src), 0, NULL, &err), 0);
	te_regex_free(re);
	re = compile_ok("(?P<year>\\d+)-(\\d+)", 0);
	assert_int_equal(
	    te_regex_find(caps, 3, re, src, strlen(src), 0, NULL, &err), 1);
	assert_int_equal(
	    te_regex_expand(&b, re, "$2/${year}$9$$", 14, src, caps, &err), 0);
	assert_int_equal(te_buf_put(&b, "", 1, &err), 0);
	assert_string_equal(b.ptr, "05/2024$");
	te_regex_free(re);
	/* a search from pos sees the text before it: no \b inside 2024 */
	re = compile_ok("\\b\\d+", 0);
	assert_int_equal(
	    te_regex_find(caps, 1, re, src, strlen(src), 4, NULL, &err), 1);
	assert_int_equal(caps[0], 8);
	te_buf_dispose(&b);
	te_regex_free(re);
}

static void test_find_all(void **state)
{
	(void)state;
	/* no empty match right after a match (Go's allMatches) */
	assert_find_all("a*", "baaab", -1, "[][aaa][]");
	assert_find_all("a*?", "baaab", -1, "[][][][][][]");
	assert_find_all("", "h\xc3\xa9llo", -1, "[][][][][][]");
	assert_find_all("x*", "", -1, "[]");
	assert_find_all("\\b", "ab cd", -1, "[][][][]");
	/* ^ sees the text before the search position */
	assert_find_all("^a", "aaa", -1, "[a]");
	assert_find_all("(?m)^a", "a\na\nb", -1, "[a][a]");
	assert_find_all("a|b", "abab", 3, "[a][b][a]");
	assert_find_all("a", "aaa", 0, "");
	/* more live threads than slots: the slots grow while a thread's
	 * offsets are being copied (a use-after-free found by t60) */
	assert_find_all("[^\n]?\\B(?:\\x{263a}a+(?i)|\\p{Greek}*|\\p{Lu}??"
	                "(?:(?s)\\Q.*\\E)){2,}?|\\d{1,3}$($\xc3\xa9*()+"
	                "(?i:){2})(?i:(?i:){1,2}?)?|\\.??\\pL{0,}",
	                "\xe2\x84\xaa", -1, "[\xe2\x84\xaa]");
}

static void test_split(void **state)
{
	(void)state;
	assert_split("a", "banana", -1, "[b][n][n][]");
	assert_split("a", "banana", 2, "[b][nana]");
	assert_split("", "abc", -1, "[a][b][c]");
	assert_split("x*", "axbxc", -1, "[a][b][c]");
	assert_split("a", "", -1, "[]");
	assert_split("", "", -1, "");
	assert_split(",", "a,b,", 0, "");
}

static void test_replace(void **state)
{
	(void)state;
	assert_replace("a*", "baaac", "-", false, "-b-c-");
	assert_replace("(?P<x>a)(b)?", "abac", "<$x|$2|${1}1|$1x|$$|$|${x>",
	               false, "<a|b|a1||$|$|${x><a||a1||$|$|${x>c");
	assert_replace("(?P<x>a)(b)?", "abac", "<$x|$$>", true,
	               "<$x|$$><$x|$$>c");
	assert_replace("", "abc", "-", false, "-a-b-c-");
	assert_replace("(\\w+)@(\\w+)", "joe@x ann@y", "$2.$1", false,
	               "x.joe y.ann");
	/* a name used twice: the first group that took part */
	assert_replace("(?P<a>x)|(?P<a>y)", "xy", "[$a]", false, "[x][y]");
}

static void test_quote_meta(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_buf b = TE_BUF_INIT(1024);
	const char *s = "a.b*c\\d$^[](){}|+?\xc3\xa9";

	(void)state;
	assert_int_equal(te_regex_quote_meta(&b, s, strlen(s), &err), 0);
	assert_int_equal(te_buf_put(&b, "", 1, &err), 0);
	assert_string_equal(b.ptr, "a\\.b\\*c\\\\d\\$\\^\\[\\]\\(\\)\\{\\}"
	                           "\\|\\+\\?\xc3\xa9");
	te_buf_dispose(&b);
}

/* ---- hostile patterns and texts ----------------------------------------- */

static void test_hostile(void **state)
{
	te_error err = TE_ERROR_INIT;
	size_t n = 100 * 1024, i;
	char *text = malloc(n + 1), *deep = malloc(4096);
	uint64_t steps = UINT64_MAX, used;
	te_regex *re;
	bool m;

	(void)state;
	assert_non_null(text);
	assert_non_null(deep);
	memset(text, 'a', n);
	text[n] = '\0';
	/* (a*)*b: exponential for a backtracker, linear here */
	re = compile_ok("(a*)*b", 0);
	assert_int_equal(te_regex_match(&m, re, text, n, &steps, &err), 0);
	assert_false(m);
	used = UINT64_MAX - steps;
	/* a few steps per instruction per byte: linear in the text */
	assert_true(used < 64 * (uint64_t)n);
	/* a budget that runs out fails the call */
	steps = 1000;
	assert_int_equal(te_regex_match(&m, re, text, n, &steps, &err),
	                 TE_EINVALID);
	assert_string_equal(err.msg, "regexp: work budget exceeded");
	te_regex_free(re);

	/* nesting beyond 1000 groups */
	for (i = 0; i < 1001; i++)
		deep[i] = '(';
	for (i = 0; i < 1001; i++)
		deep[1001 + i] = ')';
	deep[2002] = '\0';
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(te_regex_compile(&re, deep, strlen(deep), 0, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "expression nests too deeply"));
	/* counted repetition: 1000 at most, nested counts multiply */
	assert_compile_error("a{1000}{1000}",
	                     "error parsing regexp: invalid nested "
	                     "repetition operator: `{1000}{1000}`");
	assert_compile_error("((a{1000}){1000}){1000}",
	                     "error parsing regexp: invalid repeat count: "
	                     "`{1000}`");
	/* within Go's limits but over the program bound */
	for (i = 0; i < 101; i++)
		memcpy(deep + 7 * i, "a{1000}", 7);
	deep[707] = '\0';
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(te_regex_compile(&re, deep, 707, 0, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "expression too large"));
	/* the rune ranges of all classes: \pL holds 600-odd */
	for (i = 0; i < 500; i++)
		memcpy(deep + 3 * i, "\\pL", 3);
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(te_regex_compile(&re, deep, 300, 0, &err), 0);
	te_regex_free(re);
	assert_int_equal(te_regex_compile(&re, deep, 1500, 0, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "expression too large"));
	free(text);
	free(deep);
}

/* ---- Sprig's functions under the template budgets ----------------------- */

/* tmpl rendered with Sprig's functions; the output or "error: MSG". */
static char *render_sprig(const char *tmpl, const te_render_limits *lim)
{
	te_error err = TE_ERROR_INIT;
	te_render_funcs *funcs = NULL;
	te_render_set *set = NULL;
	char *out = NULL, *msg;
	size_t len;

	assert_int_equal(te_render_funcs_new(&funcs, &err), 0);
	assert_int_equal(te_render_funcs_add_sprig(funcs, &err), 0);
	assert_int_equal(te_render_set_new(&set, funcs, lim, &err), 0);
	assert_int_equal(te_render_parse(set, "t", tmpl, strlen(tmpl), &err),
	                 0);
	if (te_render_exec(&out, &len, set, "t", NULL, &err) < 0) {
		msg = malloc(sizeof(err.msg) + 8);
		assert_non_null(msg);
		snprintf(msg, sizeof(err.msg) + 8, "error: %s", err.msg);
		out = msg;
	}
	te_render_set_free(set);
	te_render_funcs_free(funcs);
	return out;
}

static void assert_render(const char *tmpl, const te_render_limits *lim,
                          const char *want)
{
	char *got = render_sprig(tmpl, lim);

	if (!strstr(got, want))
		fail_msg("%s: got %s, want %s", tmpl, got, want);
	free(got);
}

static void test_sprig_budgets(void **state)
{
	te_render_limits lim = TE_RENDER_LIMITS_INIT;

	(void)state;
	/* linear: 100 KB of a against (x+x+)+y and (a*)*b */
	assert_render("{{regexMatch \"(a+a+)+b\" (repeat 100000 \"a\")}} "
	              "{{regexMatch \"(a*)*b\" (repeat 100000 \"a\")}}",
	              NULL, "false false");
	/* the VM's steps count against the template's work budget */
	lim.steps_max = 100000;
	assert_render("{{regexMatch \"[a-z]{1000}b\" (repeat 100000 \"a\")}}",
	              &lim,
	              "error calling regexMatch: work budget of 100000 steps "
	              "exceeded");
	assert_render("{{regexReplaceAll \"\" (repeat 1000 \"x\") "
	              "(repeat 100000 \"y\") | len}}",
	              NULL,
	              "error calling regexReplaceAll: result exceeds the "
	              "output limit of 16777216 bytes");
	assert_render("{{regexFindAll \"\" (repeat 3000000 \"x\") -1 | len}}",
	              NULL, "exceeds the output limit");
	/* the panic of MustCompile, quoted as Go's quote() does */
	assert_render("{{regexFind \"(\\x01\" \"x\"}}", NULL,
	              "error calling regexFind: regexp: Compile(\"(\\x01\"): "
	              "error parsing regexp: missing closing ): `(\x01`");
	assert_render("{{regexMatch \"(\" \"x\"}}", NULL, "false");
}

/* ---- Go's re2-search.txt ------------------------------------------------ */

/* Go's strconv.Unquote of a "..." line into out (NUL-free inputs only
 * matter for the length, which is returned). */
static size_t go_unquote(const char *q, char *out)
{
	size_t o = 0;
	const char *p = q + 1;
	unsigned long v;
	char hex[9];
	int k, n;

	while (*p && *p != '"') {
		if (*p != '\\') {
			out[o++] = *p++;
			continue;
		}
		p++;
		switch (*p) {
		case 'a':
			out[o++] = '\a';
			p++;
			break;
		case 'b':
			out[o++] = '\b';
			p++;
			break;
		case 'f':
			out[o++] = '\f';
			p++;
			break;
		case 'n':
			out[o++] = '\n';
			p++;
			break;
		case 'r':
			out[o++] = '\r';
			p++;
			break;
		case 't':
			out[o++] = '\t';
			p++;
			break;
		case 'v':
			out[o++] = '\v';
			p++;
			break;
		case 'x':
		case 'u':
		case 'U':
			n = *p == 'x' ? 2 : (*p == 'u' ? 4 : 8);
			memcpy(hex, p + 1, (size_t)n);
			hex[n] = '\0';
			v = strtoul(hex, NULL, 16);
			if (*p == 'x') {
				out[o++] = (char)v;
			} else if (v < 0x80) {
				out[o++] = (char)v;
			} else if (v < 0x800) {
				out[o++] = (char)(0xc0 | v >> 6);
				out[o++] = (char)(0x80 | (v & 0x3f));
			} else if (v < 0x10000) {
				out[o++] = (char)(0xe0 | v >> 12);
				out[o++] = (char)(0x80 | (v >> 6 & 0x3f));
				out[o++] = (char)(0x80 | (v & 0x3f));
			} else {
				out[o++] = (char)(0xf0 | v >> 18);
				out[o++] = (char)(0x80 | (v >> 12 & 0x3f));
				out[o++] = (char)(0x80 | (v >> 6 & 0x3f));
				out[o++] = (char)(0x80 | (v & 0x3f));
			}
			p += 1 + n;
			break;
		default:
			if (*p >= '0' && *p <= '7') {
				v = 0;
				for (k = 0; k < 3; k++)
					v = v * 8 + (unsigned long)(*p++ - '0');
				out[o++] = (char)v;
			} else {
				out[o++] = *p++; /* \\ \" \' */
			}
		}
	}
	out[o] = '\0';
	return o;
}

struct re2_case {
	te_regex *re[4]; /* full, partial, full longest, partial longest */
	char texts[512][256];
	size_t tlens[512];
	size_t ntexts, next;
	bool has_nwordb;
	size_t cases, skipped, uncompiled;
};

static bool single_bytes(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

static void re2_results(struct re2_case *rc, const char *line, int lineno)
{
	char want[4][512], got[512], *save = NULL, *tok, copy[2048];
	const char *text = rc->texts[rc->next];
	size_t tlen = rc->tlens[rc->next], n, k = 0;
	te_error err = TE_ERROR_INIT;
	ptrdiff_t caps[64];
	bool m;
	int i, r;

	rc->next++;
	if (!rc->re[0]) {
		rc->uncompiled++;
		return;
	}
	if (rc->has_nwordb && !single_bytes(text, tlen)) {
		rc->skipped++;
		return;
	}
	assert_true(strlen(line) < sizeof(copy));
	memcpy(copy, line, strlen(line) + 1);
	for (tok = strtok_r(copy, ";", &save); tok && k < 4;
	     tok = strtok_r(NULL, ";", &save))
		snprintf(want[k++], sizeof(want[0]), "%s", tok);
	assert_int_equal(k, 4);
	for (i = 0; i < 4; i++) {
		n = te_regex_groups(rc->re[i]);
		assert_true(n <= 32);
		r = te_regex_find(caps, n, rc->re[i], text, tlen, 0, NULL,
		                  &err);
		assert_true(r >= 0);
		format_caps(got, sizeof(got), r, caps, n);
		if (strcmp(got, want[i]))
			fail_msg("re2-search.txt:%d mode %d: got %s, want %s",
			         lineno, i, got, want[i]);
		assert_int_equal(
		    te_regex_match(&m, rc->re[i], text, tlen, NULL, &err), 0);
		if (m != (strcmp(want[i], "-") != 0))
			fail_msg("re2-search.txt:%d mode %d: match %d", lineno,
			         i, m);
	}
	rc->cases++;
}

static void re2_regexp(struct re2_case *rc, const char *pat, size_t len)
{
	te_error err = TE_ERROR_INIT;
	char full[600];
	size_t flen;
	int i;

	for (i = 0; i < 4; i++) {
		te_regex_free(rc->re[i]);
		rc->re[i] = NULL;
	}
	rc->next = 0;
	rc->has_nwordb = strstr(pat, "\\B") != NULL;
	if (te_regex_compile(&rc->re[1], pat, len, 0, &err) < 0) {
		/* \C (any byte) is the one thing Go refuses too */
		assert_string_equal(
		    err.msg,
		    "error parsing regexp: invalid escape sequence: `\\C`");
		return;
	}
	flen = (size_t)snprintf(full, sizeof(full), "\\A(?:%.*s)\\z", (int)len,
	                        pat);
	assert_int_equal(te_regex_compile(&rc->re[0], full, flen, 0, &err), 0);
	assert_int_equal(
	    te_regex_compile(&rc->re[2], full, flen, TE_REGEX_LONGEST, &err),
	    0);
	assert_int_equal(
	    te_regex_compile(&rc->re[3], pat, len, TE_REGEX_LONGEST, &err), 0);
}

/* The whole file, decompressed when its name ends in .bz2. */
static char *load(const char *path, size_t *len)
{
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap), *p;
	FILE *f = fopen(path, "rb");
	bool bz = strlen(path) > 4 && !strcmp(path + strlen(path) - 4, ".bz2");
	BZFILE *z = NULL;
	int e = BZ_OK, got;

	assert_non_null(f);
	assert_non_null(buf);
	if (bz) {
		z = BZ2_bzReadOpen(&e, f, 0, 0, NULL, 0);
		assert_int_equal(e, BZ_OK);
	}
	for (;;) {
		if (n == cap) {
			cap *= 2;
			p = realloc(buf, cap);
			assert_non_null(p);
			buf = p;
		}
		if (bz) {
			got = BZ2_bzRead(&e, z, buf + n, (int)(cap - n));
			assert_true(e == BZ_OK || e == BZ_STREAM_END);
		} else {
			got = (int)fread(buf + n, 1, cap - n, f);
		}
		n += (size_t)got;
		if (got == 0 || e == BZ_STREAM_END)
			break;
	}
	if (bz)
		BZ2_bzReadClose(&e, z);
	fclose(f);
	*len = n;
	return buf;
}

/* Go's exec_test.go testRE2 over one file of RE2's test data: every
 * result line is checked, but those of the \C patterns (Go refuses
 * \C too) and of \B on UTF-8 texts (RE2 sees byte positions); returns
 * the number of result lines. */
static size_t run_re2_file(const char *path)
{
	struct re2_case *rc = calloc(1, sizeof(*rc));
	size_t len, total, off = 0, ll;
	char *data = load(path, &len), *line, *q = malloc(4096);
	bool in_strings = false;
	int lineno = 0, i;
	size_t n;

	assert_non_null(rc);
	assert_non_null(q);
	while (off < len) {
		line = data + off;
		ll = strcspn(line, "\n");
		off += ll + 1;
		line[ll] = '\0';
		lineno++;
		if (line[0] == '#' || (line[0] >= 'A' && line[0] <= 'Z'))
			continue;
		if (!strcmp(line, "strings")) {
			in_strings = true;
			rc->ntexts = 0;
		} else if (!strcmp(line, "regexps")) {
			in_strings = false;
		} else if (line[0] == '"') {
			assert_true(ll < 4096);
			n = go_unquote(line, q);
			if (in_strings) {
				assert_true(rc->ntexts < 512 && n < 256);
				memcpy(rc->texts[rc->ntexts], q, n + 1);
				rc->tlens[rc->ntexts++] = n;
			} else {
				re2_regexp(rc, q, n);
			}
		} else {
			assert_true(rc->next < rc->ntexts);
			re2_results(rc, line, lineno);
		}
	}
	for (i = 0; i < 4; i++)
		te_regex_free(rc->re[i]);
	total = rc->cases + rc->skipped + rc->uncompiled;
	/* re2-exhaustive.txt: 5,202,968 checked, 2,696 \B skipped, 511,220
	 * of \C */
	assert_true(rc->skipped <= total / 100);
	free(rc);
	free(q);
	free(data);
	return total;
}

static void test_re2_search(void **state)
{
	(void)state;
	assert_int_equal(
	    run_re2_file(TE_GO_SRC "/regexp/testdata/re2-search.txt"), 1888);
}

/* 5.7 million result lines: its own ctest entry (test_regex exhaustive) */
static void test_re2_exhaustive(void **state)
{
	(void)state;
	assert_int_equal(
	    run_re2_file(TE_GO_SRC "/regexp/testdata/re2-exhaustive.txt.bz2"),
	    5716884);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest exhaustive[] = {
	    cmocka_unit_test(test_re2_exhaustive),
	};
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_find),
	    cmocka_unit_test(test_groups),
	    cmocka_unit_test(test_find_all),
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_replace),
	    cmocka_unit_test(test_quote_meta),
	    cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_sprig_budgets),
	    cmocka_unit_test(test_re2_search),
	};

	if (argc > 1 && !strcmp(argv[1], "exhaustive"))
		return cmocka_run_group_tests(exhaustive, NULL, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
