/*
 * sprig_regex.c - Sprig v3.2.3's regular expression functions (regex.go;
 * https://masterminds.github.io/sprig/strings.html): regexMatch
 * regexFind regexFindAll regexReplaceAll regexReplaceAllLiteral
 * regexSplit regexQuoteMeta and their must* forms, on the regex module
 * (Go's regexp syntax and results).
 *
 * Errors as Go reports them: the must* forms return regexp.Compile's
 * error; the others call regexp.MustCompile, whose panic text/template
 * reports as "regexp: Compile(`PAT`): error parsing regexp: ...", except
 * regexMatch, which ignores the error and answers false.
 */
#include <stdlib.h>
#include <string.h>

#include "render/sprig_int.h"
#include "tagexport/regex.h"
#include "utf8_int.h"

/* VM steps per render step: a VM step is one instruction of one thread
 * at one text position, far cheaper than a template node. */
#define RE_STEPS_PER_STEP 64

enum {
	R_MUST = 1,    /* return the compile error (must*) */
	R_QUIET = 2,   /* a bad pattern is no match (regexMatch) */
	R_LITERAL = 4, /* ReplaceAllLiteralString */
	R_SPLIT = 8,   /* Split, not FindAllString */
};

#define FLAGS(p) ((unsigned)(uintptr_t)(p))

/* strconv.CanBackquote: one line of valid UTF-8 without '`' or
 * controls other than tab, and no BOM. */
static bool can_backquote(const char *s, size_t len)
{
	size_t i = 0, w;
	uint32_t r;

	while (i < len) {
		w = te__utf8_next((const unsigned char *)s + i, len - i, &r);
		if ((r == TE_UTF8_INVALID && w == 1) || r == '`' ||
		    r == 0xFEFF || (r < ' ' && r != '\t') || r == 0x7F)
			return false;
		i += w;
	}
	return true;
}

/* The pattern (argument a) compiled, or err as Sprig's function fails. */
static int compile(te_regex **re, const te_render_value *a, unsigned flags,
                   te_error *err)
{
	te_error cerr = TE_ERROR_INIT;
	char quoted[TE_ERROR_MSG_MAX], *copy;
	int rc;

	rc = te_regex_compile(re, a->u.s.ptr, a->u.s.len, 0, &cerr);
	if (rc == 0)
		return 0;
	if (cerr.code == TE_ENOMEM || (flags & R_MUST))
		return te_error_set(err, cerr.code, "%s", cerr.msg);
	/* regexp.MustCompile's panic names the pattern as Go's quote():
	 * backquoted when strconv.CanBackquote, else strconv.Quote */
	if (can_backquote(a->u.s.ptr, a->u.s.len))
		return te_error_set(err, TE_EINVALID,
		                    "regexp: Compile(`%.*s`): %s",
		                    (int)a->u.s.len, a->u.s.ptr, cerr.msg);
	copy = malloc(a->u.s.len + 1);
	if (!copy)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	memcpy(copy, a->u.s.ptr, a->u.s.len);
	copy[a->u.s.len] = '\0';
	te__goquote(quoted, sizeof(quoted), copy);
	free(copy);
	return te_error_set(err, TE_EINVALID, "regexp: Compile(%s): %s", quoted,
	                    cerr.msg);
}

/* The VM steps left in the execution's work budget. */
static uint64_t budget(const te_render_call *call)
{
	const struct te_exec *s = call->s;
	uint64_t max = s->set->limits.steps_max;

	return s->steps < max ? (max - s->steps) * RE_STEPS_PER_STEP : 0;
}

/* Charge the VM steps spent (from the budget before to left now). */
static int charge(te_render_call *call, uint64_t before, uint64_t left, int rc,
                  te_error *err)
{
	uint64_t used = (before - left) / RE_STEPS_PER_STEP;

	if (rc < 0 && strstr(err->msg, "regexp: work budget exceeded")) {
		*err = (te_error)TE_ERROR_INIT;
		return sp_steps(call, used + 1, err);
	}
	if (sp_steps(call, used, err) < 0)
		return err->code;
	return rc < 0 ? rc : 0;
}

static int f_match(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	te_regex *re = NULL;
	uint64_t before = budget(call), left = before;
	bool m = false;
	int rc;

	(void)n;
	if (WANT_STR(a[0]) < 0 || WANT_STR(a[1]) < 0)
		return err->code;
	rc = compile(&re, a[0], FLAGS(p), err);
	if (rc < 0 && FLAGS(p) & R_QUIET && err->code == TE_EINVALID) {
		*err = (te_error)TE_ERROR_INIT;
		return sp_ret_bool(out, false, err);
	}
	if (rc < 0)
		return rc;
	rc = te_regex_match(&m, re, a[1]->u.s.ptr, a[1]->u.s.len, &left, err);
	te_regex_free(re);
	if (charge(call, before, left, rc, err) < 0)
		return err->code;
	return sp_ret_bool(out, m, err);
}

static int f_find(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	te_regex *re = NULL;
	uint64_t before = budget(call), left = before;
	ptrdiff_t caps[2] = {0, 0};
	int rc;

	(void)n;
	if (WANT_STR(a[0]) < 0 || WANT_STR(a[1]) < 0 ||
	    compile(&re, a[0], FLAGS(p), err) < 0)
		return err->code;
	rc = te_regex_find(caps, 1, re, a[1]->u.s.ptr, a[1]->u.s.len, 0, &left,
	                   err);
	te_regex_free(re);
	if (charge(call, before, left, rc, err) < 0)
		return err->code;
	if (rc == 0)
		caps[0] = caps[1] = 0;
	return sp_ret(out,
	              te_render_value_string(a[1]->u.s.ptr + caps[0],
	                                     (size_t)(caps[1] - caps[0])),
	              err);
}

struct collect {
	te_render_call *call;
	te_render_value *list;
	const char *text;
	size_t count;
	te_error *err;
};

/* One more list element, checked against the output budget before it is
 * built (charged once at the end). */
static int add_piece(struct collect *c, const char *p, size_t len)
{
	if (++c->count > sp_out_max(c->call) / 8 &&
	    sp_list_budget(c->call, c->count, c->err) < 0)
		return c->err->code;
	return te_render_list_push(c->list, te_render_value_string(p, len),
	                           c->err);
}

static int on_match(void *payload, const ptrdiff_t *caps)
{
	struct collect *c = payload;

	return add_piece(c, c->text + caps[0], (size_t)(caps[1] - caps[0]));
}

static int on_piece(void *payload, const char *p, size_t len)
{
	return add_piece(payload, p, len);
}

/* regexFindAll REGEX S N and regexSplit REGEX S N: a list of strings. */
static int f_list(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	struct collect c = {call, NULL, NULL, 0, err};
	te_regex *re = NULL;
	uint64_t before = budget(call), left = before;
	bool split = FLAGS(p) & R_SPLIT;
	int rc;

	(void)n;
	if (WANT_STR(a[0]) < 0 || WANT_STR(a[1]) < 0 || WANT_INT(a[2]) < 0 ||
	    compile(&re, a[0], FLAGS(p), err) < 0)
		return err->code;
	c.list = te_render_value_list();
	c.text = a[1]->u.s.ptr;
	if (!c.list) {
		te_regex_free(re);
		return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	if (split)
		rc = te_regex_split(re, a[1]->u.s.ptr, a[1]->u.s.len,
		                    (long)a[2]->u.i, on_piece, &c, &left, err);
	else
		rc = te_regex_find_all(re, a[1]->u.s.ptr, a[1]->u.s.len,
		                       (long)a[2]->u.i, on_match, &c, &left,
		                       err);
	te_regex_free(re);
	if (rc > 0)
		rc = err->code;
	if (charge(call, before, left, rc, err) < 0 ||
	    sp_list_budget(call, c.count, err) < 0) {
		te_render_value_unref(c.list);
		return err->code;
	}
	/* Go's FindAllString gives a nil slice for no match, Split only
	 * for n == 0 */
	c.list->u.list.nil = split ? a[2]->u.i == 0 : c.count == 0;
	*out = c.list;
	return 0;
}

static int f_replace(te_render_value **out, te_render_call *call, sp_args a,
                     size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	te_regex *re = NULL;
	uint64_t before = budget(call), left = before;
	int rc;

	(void)n;
	if (WANT_STR(a[0]) < 0 || WANT_STR(a[1]) < 0 || WANT_STR(a[2]) < 0 ||
	    compile(&re, a[0], FLAGS(p), err) < 0)
		return err->code;
	rc = te_regex_replace_all(&b, re, a[1]->u.s.ptr, a[1]->u.s.len,
	                          a[2]->u.s.ptr, a[2]->u.s.len,
	                          FLAGS(p) & R_LITERAL, &left, err);
	te_regex_free(re);
	if (rc < 0 && !strstr(err->msg, "regexp: work budget exceeded"))
		return sp_ret_buf(out, &b, err); /* the output limit, ENOMEM */
	if (charge(call, before, left, rc, err) < 0) {
		te_buf_dispose(&b);
		return err->code;
	}
	return sp_ret_buf(out, &b, err);
}

static int f_quote_meta(te_render_value **out, te_render_call *call, sp_args a,
                        size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));

	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	te_regex_quote_meta(&b, a[0]->u.s.ptr, a[0]->u.s.len, err);
	return sp_ret_buf(out, &b, err);
}

#define P(f) ((const void *)(uintptr_t)(f))
const struct sp_entry te_render__sp_regex[] = {
    {"mustRegexFind", f_find, 2, 2, P(R_MUST)},
    {"mustRegexFindAll", f_list, 3, 3, P(R_MUST)},
    {"mustRegexMatch", f_match, 2, 2, P(R_MUST)},
    {"mustRegexReplaceAll", f_replace, 3, 3, P(R_MUST)},
    {"mustRegexReplaceAllLiteral", f_replace, 3, 3, P(R_MUST | R_LITERAL)},
    {"mustRegexSplit", f_list, 3, 3, P(R_MUST | R_SPLIT)},
    {"regexFind", f_find, 2, 2, NULL},
    {"regexFindAll", f_list, 3, 3, NULL},
    {"regexMatch", f_match, 2, 2, P(R_QUIET)},
    {"regexQuoteMeta", f_quote_meta, 1, 1, NULL},
    {"regexReplaceAll", f_replace, 3, 3, NULL},
    {"regexReplaceAllLiteral", f_replace, 3, 3, P(R_LITERAL)},
    {"regexSplit", f_list, 3, 3, P(R_SPLIT)},
};
#undef P
const size_t te_render__sp_regex_len =
    sizeof(te_render__sp_regex) / sizeof(te_render__sp_regex[0]);
