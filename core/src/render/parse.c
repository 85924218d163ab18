/*
 * parse.c - the parser of Go's text/template (text/template/parse/parse.go
 * and node.go): a recursive descent over te_lex_next tokens with Go's
 * three-token look-ahead, building one tree per template name.
 *
 * Parse errors end the parse at once (longjmp to te_render_parse, which
 * frees everything the failed parse allocated), as Go's parser panics
 * and recovers; the message is Go's: `template: NAME:LINE: ...`.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render/render_int.h"

struct parser {
	te_render_set *set;
	struct te_source *src;
	struct te_lexer lex;
	struct te_item token[3];
	int peek_count;
	struct te_tree *tree; /* the tree being built */
	const char **vars;    /* names in scope ("$" first) */
	size_t *var_lens;
	size_t nvars, capvars;
	size_t var_base; /* first variable of the tree being parsed */
	int range_depth;
	int action_line;
	unsigned int depth;
	te_error *err;
	jmp_buf jb;
};

static void p_errorf(struct parser *p, const char *fmt, ...) TE_PRINTF(2, 3);

static _Noreturn void p_fail(struct parser *p)
{
	longjmp(p->jb, 1);
}

static void p_errorf(struct parser *p, const char *fmt, ...)
{
	char msg[TE_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	te_error_set(p->err, TE_EINVALID, "template: %s:%d: %s", p->src->name,
	             p->token[0].line, msg);
	p_fail(p);
}

static _Noreturn void p_oom(struct parser *p)
{
	te_error_set(p->err, TE_ENOMEM, "out of memory");
	p_fail(p);
}

static void *p_alloc(struct parser *p, size_t n)
{
	void *m = calloc(1, n);

	if (!m)
		p_oom(p);
	return m;
}

static char *p_strndup(struct parser *p, const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (!d)
		p_oom(p);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static struct te_node *new_node(struct parser *p, enum te_node_type type,
                                size_t pos)
{
	struct te_node *n = p_alloc(p, sizeof(*n));

	n->type = type;
	n->pos = pos;
	n->tree = p->tree;
	n->next_alloc = p->src->nodes;
	p->src->nodes = n;
	return n;
}

static void node_append(struct parser *p, struct te_node *n,
                        struct te_node *kid)
{
	struct te_node **k;
	uint32_t cap;

	if (n->nkids == UINT32_MAX / 2)
		p_errorf(p, "too many items in one list");
	if (n->nkids == n->capkids) {
		/* most commands and pipes have one or two entries */
		cap = n->capkids ? n->capkids * 2 : 2;
		k = realloc(n->kids, cap * sizeof(*k));
		if (!k)
			p_oom(p);
		n->kids = k;
		n->capkids = cap;
	}
	n->kids[n->nkids++] = kid;
}

/* Split "a.b.c" into idents; skip_first drops a leading '.'. */
static void node_idents(struct parser *p, struct te_node *n, const char *s,
                        size_t len)
{
	size_t i, start = 0, count = 1;

	for (i = 0; i < len; i++)
		count += s[i] == '.';
	n->idents = p_alloc(p, count * sizeof(char *));
	for (i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			n->idents[n->nidents++] =
			    p_strndup(p, s + start, i - start);
			start = i + 1;
		}
	}
}

/* ---- tokens ---- */

static struct te_item p_next(struct parser *p)
{
	if (p->peek_count > 0)
		p->peek_count--;
	else
		p->token[0] = te_lex_next(&p->lex);
	return p->token[p->peek_count];
}

static void p_backup(struct parser *p)
{
	p->peek_count++;
}

static void p_backup2(struct parser *p, struct te_item t1)
{
	p->token[1] = t1;
	p->peek_count = 2;
}

static void p_backup3(struct parser *p, struct te_item t2, struct te_item t1)
{
	p->token[1] = t1;
	p->token[2] = t2;
	p->peek_count = 3;
}

static struct te_item p_peek(struct parser *p)
{
	if (p->peek_count > 0)
		return p->token[p->peek_count - 1];
	p->peek_count = 1;
	p->token[0] = te_lex_next(&p->lex);
	return p->token[0];
}

static struct te_item p_next_nonspace(struct parser *p)
{
	struct te_item t;

	do
		t = p_next(p);
	while (t.typ == TOK_SPACE);
	return t;
}

static struct te_item p_peek_nonspace(struct parser *p)
{
	struct te_item t = p_next_nonspace(p);

	p_backup(p);
	return t;
}

/* item.String() of Go's lexer, for "unexpected X in Y". */
static void item_string(struct parser *p, struct te_item t, te_buf *b)
{
	te_error e = TE_ERROR_INIT;
	size_t n = 0, runes = 0, w;

	if (t.typ == TOK_EOF) {
		te_buf_puts(b, "EOF", &e);
	} else if (t.typ == TOK_ERROR) {
		te_buf_put(b, t.val, t.len, &e);
	} else if (t.typ > TOK_KEYWORD) {
		te_buf_printf(b, &e, "<%.*s>", (int)t.len, t.val);
	} else {
		while (n < t.len && runes < 10) {
			te_render__rune(t.val + n, t.len - n, &w);
			n += w;
			runes++;
		}
		te_render__quote(b, t.val, n, false, &e);
		if (n < t.len)
			te_buf_puts(b, "...", &e);
	}
	if (e.code == TE_ENOMEM)
		p_oom(p);
}

static _Noreturn void p_unexpected(struct parser *p, struct te_item t,
                                   const char *context)
{
	te_buf b = TE_BUF_INIT(4096);
	char extra[256] = "";

	item_string(p, t, &b);
	if (t.typ == TOK_ERROR) {
		if (p->action_line != 0 && p->action_line != t.line) {
			/* Go avoids "action in action" */
			bool action = t.len >= 7 &&
			              !memcmp(t.val + t.len - 7, " action", 7);

			snprintf(extra, sizeof(extra), "%s started at %s:%d",
			         action ? "" : " in action", p->src->name,
			         p->action_line);
		}
		te_error_set(p->err, TE_EINVALID, "template: %s:%d: %s%s",
		             p->src->name, p->token[0].line, b.ptr, extra);
	} else {
		te_error_set(p->err, TE_EINVALID,
		             "template: %s:%d: unexpected %s in %s",
		             p->src->name, p->token[0].line, b.ptr, context);
	}
	te_buf_dispose(&b);
	p_fail(p);
}

static struct te_item p_expect(struct parser *p, enum te_tok want,
                               const char *context)
{
	struct te_item t = p_next_nonspace(p);

	if (t.typ != want)
		p_unexpected(p, t, context);
	return t;
}

static void p_enter(struct parser *p)
{
	if (++p->depth > p->set->limits.parse_depth)
		p_errorf(p, "max expression depth exceeded (limit %u)",
		         p->set->limits.parse_depth);
}

/* ---- variables in scope ---- */

static void push_var(struct parser *p, const char *name, size_t len)
{
	size_t cap;

	if (p->nvars == p->capvars) {
		cap = p->capvars ? p->capvars * 2 : 8;
		p->vars = realloc(p->vars, cap * sizeof(*p->vars));
		if (!p->vars)
			p_oom(p);
		p->var_lens = realloc(p->var_lens, cap * sizeof(size_t));
		if (!p->var_lens)
			p_oom(p);
		p->capvars = cap;
	}
	p->vars[p->nvars] = name;
	p->var_lens[p->nvars++] = len;
}

static bool has_function(const struct parser *p, const char *name)
{
	const struct te_func *f;

	if (te_render__find_func(p->set->funcs, name))
		return true;
	return te_render__builtins_find(&f, name) == 0;
}

/* The reason a refused function is refused (its payload), or NULL. */
static const char *unsupported_why(const struct parser *p, const char *name)
{
	const struct te_func *f = te_render__find_func(p->set->funcs, name);

	if (!f || !(f->flags & TE_FN_UNSUPPORTED))
		return NULL;
	return f->payload ? (const char *)f->payload : "not implemented";
}

/* ---- nodes from tokens ---- */

static bool strip_underscores(char *dst, const char *s, size_t n)
{
	size_t i, o = 0;
	bool prev_digit = false, prefix = false;

	if (n >= 2 && s[0] == '0' && strchr("xXoObB", s[1]))
		prefix = true;
	for (i = 0; i < n; i++) {
		if (s[i] == '_') {
			/* Go: an underscore separates digits or follows the
			 * base prefix */
			if (!(prev_digit || (prefix && i == 2)) || i + 1 >= n)
				return false;
			prev_digit = false;
			continue;
		}
		prev_digit = (s[i] >= '0' && s[i] <= '9') ||
		             (prefix && strchr("abcdefABCDEF", s[i]));
		dst[o++] = s[i];
	}
	dst[o] = '\0';
	return true;
}

static bool parse_uint(const char *s, uint64_t *out)
{
	int base = 10;
	char *end;

	if (s[0] == '+' || s[0] == '-')
		return false;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16, s += 2;
	else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
		base = 8, s += 2;
	else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
		base = 2, s += 2;
	else if (s[0] == '0' && s[1])
		base = 8, s += 1;
	if (!*s || *s == '+' || *s == '-' || *s == ' ')
		return false;
	errno = 0;
	*out = strtoull(s, &end, base);
	return errno == 0 && *end == '\0';
}

static bool parse_int(const char *s, int64_t *out)
{
	bool neg = s[0] == '-';
	uint64_t u;

	if (!parse_uint(s + (s[0] == '-' || s[0] == '+'), &u))
		return false;
	if (neg) {
		if (u > (uint64_t)INT64_MAX + 1)
			return false;
		*out = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
	} else {
		if (u > (uint64_t)INT64_MAX)
			return false;
		*out = (int64_t)u;
	}
	return true;
}

/* strconv.ParseFloat for what the lexer lets through. */
static bool parse_float(const char *s, double *out)
{
	const char *digits = s + (s[0] == '+' || s[0] == '-');
	char *end;

	/* Go's hexadecimal floats need a 'p' exponent; strtod does not */
	if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X') &&
	    !strpbrk(digits, "pP"))
		return false;
	errno = 0;
	*out = strtod(s, &end);
	if (*end != '\0' || end == s)
		return false;
	/* Go accepts overflow to ±Inf as an error */
	return !(errno == ERANGE && isinf(*out));
}

static struct te_node *new_number(struct parser *p, struct te_item t)
{
	struct te_node *n = new_node(p, N_NUMBER, t.pos);
	char *clean;
	double f;

	n->text = p_strndup(p, t.val, t.len);
	n->text_len = t.len;
	if (t.typ == TOK_CHARCONST) {
		int32_t r;
		int rc = te_render__char_const(t.val, t.len, &r);

		if (rc == -1)
			p_errorf(p, "invalid syntax");
		if (rc == -2)
			p_errorf(p, "malformed character constant: %s",
			         n->text);
		n->is_int = n->is_uint = n->is_float = true;
		n->i64 = r;
		n->u64 = (uint64_t)r;
		n->f64 = r;
		return n;
	}
	if (t.typ == TOK_COMPLEX || t.val[t.len - 1] == 'i') {
		/* parses as in Go; the value model has no complex numbers, so
		 * using it is an execution error */
		n->is_complex = true;
		return n;
	}
	clean = p_alloc(p, t.len + 1);
	if (!strip_underscores(clean, t.val, t.len)) {
		free(clean);
		p_errorf(p, "illegal number syntax: \"%s\"", n->text);
	}
	if (parse_uint(clean, &n->u64))
		n->is_uint = true;
	if (parse_int(clean, &n->i64)) {
		n->is_int = true;
		if (n->i64 == 0) {
			n->is_uint = true;
			n->u64 = 0;
		}
	}
	if (n->is_int) {
		n->is_float = true;
		n->f64 = (double)n->i64;
	} else if (n->is_uint) {
		n->is_float = true;
		n->f64 = (double)n->u64;
	} else if (parse_float(clean, &f)) {
		if (!strpbrk(n->text, ".eEpP")) {
			free(clean);
			p_errorf(p, "integer overflow: \"%s\"", n->text);
		}
		n->is_float = true;
		n->f64 = f;
		if (f >= -9223372036854775808.0 && f < 9223372036854775808.0 &&
		    (double)(int64_t)f == f) {
			n->is_int = true;
			n->i64 = (int64_t)f;
		}
		if (f >= 0 && f < 18446744073709551616.0 &&
		    (double)(uint64_t)f == f) {
			n->is_uint = true;
			n->u64 = (uint64_t)f;
		}
	}
	free(clean);
	if (!n->is_int && !n->is_uint && !n->is_float)
		p_errorf(p, "illegal number syntax: \"%s\"", n->text);
	return n;
}

static struct te_node *new_string(struct parser *p, struct te_item t)
{
	struct te_node *n = new_node(p, N_STRING, t.pos);

	if (te_render__unquote(&n->text, &n->text_len, t.val, t.len) < 0)
		p_errorf(p, "invalid syntax");
	n->quoted = p_strndup(p, t.val, t.len);
	n->quoted_len = t.len;
	return n;
}

static struct te_node *new_variable(struct parser *p, struct te_item t)
{
	struct te_node *n = new_node(p, N_VARIABLE, t.pos);

	node_idents(p, n, t.val, t.len);
	return n;
}

static struct te_node *use_var(struct parser *p, struct te_item t)
{
	struct te_node *v = new_variable(p, t);
	size_t i, len = strlen(v->idents[0]);

	for (i = p->var_base; i < p->nvars; i++)
		if (p->var_lens[i] == len &&
		    memcmp(p->vars[i], v->idents[0], len) == 0)
			return v;
	{
		te_buf b = TE_BUF_INIT(1024);
		te_error e = TE_ERROR_INIT;

		te_render__quote(&b, v->idents[0], len, false, &e);
		te_error_set(p->err, TE_EINVALID,
		             "template: %s:%d: undefined variable %s",
		             p->src->name, p->token[0].line, b.ptr);
		te_buf_dispose(&b);
		p_fail(p);
	}
}

/* ---- grammar ---- */

static struct te_node *pipeline(struct parser *p, const char *context,
                                enum te_tok end);
static struct te_node *item_list(struct parser *p, struct te_node **next);

static struct te_node *term(struct parser *p)
{
	struct te_item t = p_next_nonspace(p);
	struct te_node *n;

	switch (t.typ) {
	case TOK_IDENT: {
		char *name = p_strndup(p, t.val, t.len);

		n = new_node(p, N_IDENT, t.pos);
		n->text = name;
		n->text_len = t.len;
		if (unsupported_why(p, name)) {
			te_error_set(p->err, TE_EUNSUPPORTED,
			             "template: %s:%d: function \"%s\" is not "
			             "supported by tagexport: %s",
			             p->src->name, p->token[0].line, name,
			             unsupported_why(p, name));
			p_fail(p);
		}
		if (!has_function(p, name)) {
			te_buf b = TE_BUF_INIT(1024);
			te_error e = TE_ERROR_INIT;

			te_render__quote(&b, name, t.len, false, &e);
			te_error_set(p->err, TE_EINVALID,
			             "template: %s:%d: function %s not defined",
			             p->src->name, p->token[0].line, b.ptr);
			te_buf_dispose(&b);
			p_fail(p);
		}
		return n;
	}
	case TOK_DOT:
		return new_node(p, N_DOT, t.pos);
	case TOK_NIL:
		return new_node(p, N_NIL, t.pos);
	case TOK_VARIABLE:
		return use_var(p, t);
	case TOK_FIELD:
		n = new_node(p, N_FIELD, t.pos);
		node_idents(p, n, t.val + 1, t.len - 1);
		return n;
	case TOK_BOOL:
		n = new_node(p, N_BOOL, t.pos);
		n->truth = t.len == 4;
		return n;
	case TOK_CHARCONST:
	case TOK_COMPLEX:
	case TOK_NUMBER:
		return new_number(p, t);
	case TOK_LPAREN:
		return pipeline(p, "parenthesized pipeline", TOK_RPAREN);
	case TOK_STRING:
	case TOK_RAWSTRING:
		return new_string(p, t);
	default:
		p_backup(p);
		return NULL;
	}
}

static struct te_node *operand(struct parser *p)
{
	struct te_node *node = term(p), *chain;
	te_buf b = TE_BUF_INIT(1 << 20);
	te_error e = TE_ERROR_INIT;
	struct te_item t;

	if (!node || p_peek(p).typ != TOK_FIELD)
		return node;
	chain = new_node(p, N_CHAIN, p_peek(p).pos);
	chain->pipe = node;
	/* collect the fields as one ".a.b" string, then split */
	while (p_peek(p).typ == TOK_FIELD) {
		t = p_next(p);
		if (te_buf_put(&b, t.val, t.len, &e) < 0) {
			te_buf_dispose(&b);
			p_errorf(p, "field chain too long");
		}
	}
	switch (node->type) {
	case N_FIELD:
	case N_VARIABLE: {
		te_buf all = TE_BUF_INIT(2 << 20);
		struct te_node *n = new_node(p, node->type, chain->pos);

		te_render__node_string(&all, node, &e);
		te_buf_put(&all, b.ptr, b.len, &e);
		if (e.code) {
			te_buf_dispose(&all);
			te_buf_dispose(&b);
			p_oom(p);
		}
		if (node->type == N_FIELD)
			node_idents(p, n, all.ptr + 1, all.len - 1);
		else
			node_idents(p, n, all.ptr, all.len);
		te_buf_dispose(&all);
		te_buf_dispose(&b);
		return n;
	}
	case N_BOOL:
	case N_STRING:
	case N_NUMBER:
	case N_NIL:
	case N_DOT: {
		te_buf s = TE_BUF_INIT(1 << 20);

		te_buf_dispose(&b);
		te_render__node_string(&s, node, &e);
		{
			te_buf q = TE_BUF_INIT(2 << 20);

			te_render__quote(&q, s.ptr, s.len, false, &e);
			te_buf_dispose(&s);
			te_error_set(p->err, TE_EINVALID,
			             "template: %s:%d: unexpected . after term "
			             "%s",
			             p->src->name, p->token[0].line, q.ptr);
			te_buf_dispose(&q);
		}
		p_fail(p);
	}
	default:
		node_idents(p, chain, b.ptr + 1, b.len - 1);
		te_buf_dispose(&b);
		return chain;
	}
}

static struct te_node *command(struct parser *p)
{
	struct te_node *cmd = new_node(p, N_COMMAND, p_peek_nonspace(p).pos);
	struct te_node *op;
	struct te_item t;

	for (;;) {
		p_peek_nonspace(p);
		op = operand(p);
		if (op)
			node_append(p, cmd, op);
		t = p_next(p);
		if (t.typ == TOK_SPACE)
			continue;
		if (t.typ == TOK_RDELIM || t.typ == TOK_RPAREN)
			p_backup(p);
		else if (t.typ != TOK_PIPE)
			p_unexpected(p, t, "operand");
		break;
	}
	if (cmd->nkids == 0)
		p_errorf(p, "empty command");
	return cmd;
}

static void check_pipeline(struct parser *p, struct te_node *pipe,
                           const char *context)
{
	size_t i;

	if (pipe->nkids == 0)
		p_errorf(p, "missing value for %s", context);
	for (i = 1; i < pipe->nkids; i++) {
		switch (pipe->kids[i]->kids[0]->type) {
		case N_BOOL:
		case N_DOT:
		case N_NIL:
		case N_NUMBER:
		case N_STRING:
			p_errorf(p,
			         "non executable command in pipeline stage %zu",
			         i + 1);
		default:
			break;
		}
	}
}

static void pipe_decl(struct parser *p, struct te_node *pipe, struct te_item v)
{
	struct te_node **d =
	    realloc(pipe->decl, (pipe->ndecl + 1) * sizeof(*d));

	if (!d)
		p_oom(p);
	pipe->decl = d;
	pipe->decl[pipe->ndecl++] = new_variable(p, v);
	push_var(p, v.val, v.len);
}

static struct te_node *pipeline(struct parser *p, const char *context,
                                enum te_tok end)
{
	struct te_item t = p_peek_nonspace(p), v, after, next;
	struct te_node *pipe;

	p_enter(p);
	pipe = new_node(p, N_PIPE, t.pos);
decls:
	v = p_peek_nonspace(p);
	if (v.typ == TOK_VARIABLE) {
		p_next(p);
		after = p_peek(p);
		next = p_peek_nonspace(p);
		if (next.typ == TOK_ASSIGN || next.typ == TOK_DECLARE) {
			pipe->is_assign = next.typ == TOK_ASSIGN;
			p_next_nonspace(p);
			pipe_decl(p, pipe, v);
		} else if (next.typ == TOK_CHAR && next.len == 1 &&
		           next.val[0] == ',') {
			p_next_nonspace(p);
			pipe_decl(p, pipe, v);
			if (strcmp(context, "range") == 0 && pipe->ndecl < 2) {
				switch (p_peek_nonspace(p).typ) {
				case TOK_VARIABLE:
				case TOK_RDELIM:
				case TOK_RPAREN:
					goto decls;
				default:
					p_errorf(p, "range can only initialize "
					            "variables");
				}
			}
			p_errorf(p, "too many declarations in %s", context);
		} else if (after.typ == TOK_SPACE) {
			p_backup3(p, v, after);
		} else {
			p_backup2(p, v);
		}
	}
	for (;;) {
		t = p_next_nonspace(p);
		if (t.typ == end) {
			check_pipeline(p, pipe, context);
			p->depth--;
			return pipe;
		}
		switch (t.typ) {
		case TOK_BOOL:
		case TOK_CHARCONST:
		case TOK_COMPLEX:
		case TOK_DOT:
		case TOK_FIELD:
		case TOK_IDENT:
		case TOK_NUMBER:
		case TOK_NIL:
		case TOK_RAWSTRING:
		case TOK_STRING:
		case TOK_VARIABLE:
		case TOK_LPAREN:
			p_backup(p);
			node_append(p, pipe, command(p));
			break;
		default:
			p_unexpected(p, t, context);
		}
	}
}

/* if / range / with: the pipe, the list and the else list. */
static struct te_node *parse_control(struct parser *p, enum te_node_type type,
                                     const char *context);

static struct te_node *else_chain(struct parser *p, enum te_node_type type,
                                  const char *context, struct te_node *els)
{
	struct te_node *list = new_node(p, N_LIST, els->pos);

	p_next(p); /* the "if" or "with" after "else" */
	node_append(p, list, parse_control(p, type, context));
	return list;
}

static struct te_node *parse_control(struct parser *p, enum te_node_type type,
                                     const char *context)
{
	size_t mark = p->nvars;
	struct te_node *n, *next = NULL;
	enum te_tok t;

	p_enter(p);
	n = new_node(p, type, 0);
	n->pipe = pipeline(p, context, TOK_RDELIM);
	n->pos = n->pipe->pos;
	if (type == N_RANGE)
		p->range_depth++;
	n->list = item_list(p, &next);
	if (type == N_RANGE)
		p->range_depth--;
	if (next->type == N_ELSE) {
		t = p_peek(p).typ;
		if (type == N_IF && t == TOK_IF) {
			n->else_list = else_chain(p, N_IF, "if", next);
		} else if (type == N_WITH && t == TOK_WITH) {
			n->else_list = else_chain(p, N_WITH, "with", next);
		} else {
			n->else_list = item_list(p, &next);
			if (next->type != N_END) {
				te_buf b = TE_BUF_INIT(64);
				te_error e = TE_ERROR_INIT;

				te_render__node_string(&b, next, &e);
				te_error_set(p->err, TE_EINVALID,
				             "template: %s:%d: expected end; "
				             "found %s",
				             p->src->name, p->token[0].line,
				             b.ptr);
				te_buf_dispose(&b);
				p_fail(p);
			}
		}
	}
	p->nvars = mark;
	p->depth--;
	return n;
}

static char *template_name(struct parser *p, struct te_item t,
                           const char *context, size_t *len)
{
	char *name = NULL;

	if (t.typ != TOK_STRING && t.typ != TOK_RAWSTRING)
		p_unexpected(p, t, context);
	if (te_render__unquote(&name, len, t.val, t.len) < 0)
		p_errorf(p, "invalid syntax");
	/* owned by a node so a failed parse frees it */
	{
		struct te_node *holder = new_node(p, N_COMMENT, t.pos);

		holder->text = name;
	}
	return name;
}

static struct te_tree *new_tree(struct parser *p, const char *name, size_t len)
{
	struct te_tree *t = p_alloc(p, sizeof(*t));
	struct te_tree **trees;
	size_t cap;

	if (p->src->ntrees == p->src->captrees) {
		cap = p->src->captrees ? p->src->captrees * 2 : 4;
		trees = realloc(p->src->trees, cap * sizeof(*trees));
		if (!trees) {
			free(t);
			p_oom(p);
		}
		p->src->trees = trees;
		p->src->captrees = cap;
	}
	p->src->trees[p->src->ntrees++] = t;
	t->name = p_strndup(p, name, len);
	t->parse_name = p->src->name;
	t->text = p->src->text;
	t->src = p->src;
	return t;
}

static bool is_empty_tree(const struct te_node *n)
{
	size_t i;

	if (!n)
		return true;
	switch (n->type) {
	case N_COMMENT:
		return true;
	case N_LIST:
		for (i = 0; i < n->nkids; i++)
			if (!is_empty_tree(n->kids[i]))
				return false;
		return true;
	case N_TEXT:
		for (i = 0; i < n->text_len; i++)
			if (!strchr(" \t\r\n\v\f", n->text[i]))
				return false;
		return true;
	default:
		return false;
	}
}

/* parse.go Tree.add: the live tree of a name is replaced when empty; a
 * second non-empty definition in one parse fails; an empty one is
 * dropped. */
static void tree_add(struct parser *p, struct te_tree *t)
{
	struct te_tree *old = NULL;
	size_t i;

	for (i = 0; i < p->src->ntrees; i++) {
		struct te_tree *o = p->src->trees[i];

		if (o != t && o->added && o->root && !strcmp(o->name, t->name))
			old = o;
	}
	if (!old || is_empty_tree(old->root)) {
		if (old)
			old->root = NULL; /* superseded */
		t->added = true;
		return;
	}
	if (!is_empty_tree(t->root)) {
		te_buf b = TE_BUF_INIT(4096);
		te_error e = TE_ERROR_INIT;

		te_render__quote(&b, t->name, strlen(t->name), false, &e);
		te_error_set(p->err, TE_EINVALID,
		             "template: %s:%d: template: multiple definition "
		             "of template %s",
		             p->src->name, p->token[0].line, b.ptr);
		te_buf_dispose(&b);
		p_fail(p);
	}
	t->root = NULL; /* the earlier definition stays */
}

/* Parse a sub-tree (define body or block body) with its own scope. */
static struct te_node *sub_tree(struct parser *p, struct te_tree *t,
                                const char *context)
{
	struct te_tree *outer = p->tree;
	int range_depth = p->range_depth;
	size_t saved_base = p->var_base, mark = p->nvars;
	struct te_node *end = NULL, *root;

	/* the new tree starts with only "$" in scope (startParse) */
	p->tree = t;
	p->range_depth = 0;
	p->var_base = mark;
	push_var(p, "$", 1);
	root = item_list(p, &end);
	p->nvars = mark;
	p->var_base = saved_base;
	p->range_depth = range_depth;
	if (end->type != N_END) {
		te_buf b = TE_BUF_INIT(64);
		te_error e = TE_ERROR_INIT;

		te_render__node_string(&b, end, &e);
		te_error_set(p->err, TE_EINVALID,
		             "template: %s:%d: unexpected %s in %s",
		             p->src->name, p->token[0].line, b.ptr, context);
		te_buf_dispose(&b);
		p_fail(p);
	}
	t->root = root;
	tree_add(p, t);
	p->tree = outer;
	return root;
}

static struct te_node *block_control(struct parser *p)
{
	const char *context = "block clause";
	struct te_item t = p_next_nonspace(p);
	struct te_node *n;
	struct te_tree *tree;
	size_t len;
	char *name = template_name(p, t, context, &len);

	n = new_node(p, N_TEMPLATE, t.pos);
	n->text = p_strndup(p, name, len);
	n->text_len = len;
	n->pipe = pipeline(p, context, TOK_RDELIM);
	tree = new_tree(p, name, len);
	sub_tree(p, tree, context);
	return n;
}

static struct te_node *template_control(struct parser *p)
{
	const char *context = "template clause";
	struct te_item t = p_next_nonspace(p);
	struct te_node *n;
	size_t len;
	char *name = template_name(p, t, context, &len);

	n = new_node(p, N_TEMPLATE, t.pos);
	n->text = p_strndup(p, name, len);
	n->text_len = len;
	if (p_next_nonspace(p).typ != TOK_RDELIM) {
		p_backup(p);
		n->pipe = pipeline(p, context, TOK_RDELIM);
	}
	return n;
}

static struct te_node *loop_control(struct parser *p, struct te_item t,
                                    enum te_node_type type)
{
	const char *what = type == N_BREAK ? "{{break}}" : "{{continue}}";
	struct te_item next = p_next_nonspace(p);

	if (next.typ != TOK_RDELIM)
		p_unexpected(p, next, what);
	if (p->range_depth == 0)
		p_errorf(p, "%s outside {{range}}", what);
	return new_node(p, type, t.pos);
}

static struct te_node *action(struct parser *p)
{
	struct te_item t = p_next_nonspace(p);
	struct te_node *n;

	switch (t.typ) {
	case TOK_BLOCK:
		return block_control(p);
	case TOK_BREAK:
		return loop_control(p, t, N_BREAK);
	case TOK_CONTINUE:
		return loop_control(p, t, N_CONTINUE);
	case TOK_ELSE: {
		struct te_item peek = p_peek_nonspace(p);

		if (peek.typ == TOK_IF || peek.typ == TOK_WITH)
			return new_node(p, N_ELSE, peek.pos);
		return new_node(p, N_ELSE, p_expect(p, TOK_RDELIM, "else").pos);
	}
	case TOK_END:
		return new_node(p, N_END, p_expect(p, TOK_RDELIM, "end").pos);
	case TOK_IF:
		return parse_control(p, N_IF, "if");
	case TOK_RANGE:
		return parse_control(p, N_RANGE, "range");
	case TOK_TEMPLATE:
		return template_control(p);
	case TOK_WITH:
		return parse_control(p, N_WITH, "with");
	default:
		break;
	}
	p_backup(p);
	t = p_peek(p);
	n = new_node(p, N_ACTION, t.pos);
	n->pipe = pipeline(p, "command", TOK_RDELIM);
	return n;
}

static struct te_node *text_or_action(struct parser *p)
{
	struct te_item t = p_next_nonspace(p);
	struct te_node *n;

	switch (t.typ) {
	case TOK_TEXT:
		n = new_node(p, N_TEXT, t.pos);
		n->text = p_strndup(p, t.val, t.len);
		n->text_len = t.len;
		return n;
	case TOK_LDELIM:
		p->action_line = t.line;
		n = action(p);
		p->action_line = 0; /* Go clears it when the action ends */
		return n;
	default:
		p_unexpected(p, t, "input");
	}
}

static struct te_node *item_list(struct parser *p, struct te_node **next)
{
	struct te_node *list = new_node(p, N_LIST, p_peek_nonspace(p).pos), *n;

	while (p_peek_nonspace(p).typ != TOK_EOF) {
		n = text_or_action(p);
		if (n->type == N_END || n->type == N_ELSE) {
			*next = n;
			return list;
		}
		node_append(p, list, n);
	}
	p_errorf(p, "unexpected EOF");
	return NULL;
}

static void parse_definition(struct parser *p)
{
	const char *context = "define clause";
	struct te_item t = p_next_nonspace(p);
	struct te_tree *tree;
	size_t len;
	char *name;

	if (t.typ != TOK_STRING && t.typ != TOK_RAWSTRING)
		p_unexpected(p, t, context);
	name = template_name(p, t, context, &len);
	tree = new_tree(p, name, len);
	p_expect(p, TOK_RDELIM, context);
	sub_tree(p, tree, context);
}

static void parse_top(struct parser *p)
{
	struct te_node *n;
	struct te_item delim;

	p->tree->root = new_node(p, N_LIST, p_peek(p).pos);
	while (p_peek(p).typ != TOK_EOF) {
		if (p_peek(p).typ == TOK_LDELIM) {
			delim = p_next(p);
			if (p_next_nonspace(p).typ == TOK_DEFINE) {
				parse_definition(p);
				continue;
			}
			p_backup2(p, delim);
		}
		n = text_or_action(p);
		if (n->type == N_END || n->type == N_ELSE) {
			te_buf b = TE_BUF_INIT(64);
			te_error e = TE_ERROR_INIT;

			te_render__node_string(&b, n, &e);
			te_error_set(p->err, TE_EINVALID,
			             "template: %s:%d: unexpected %s",
			             p->src->name, p->token[0].line, b.ptr);
			te_buf_dispose(&b);
			p_fail(p);
		}
		node_append(p, p->tree->root, n);
	}
}

/* ---- sources and the set ---- */

static void source_free(struct te_source *src)
{
	struct te_node *n, *next;
	size_t i;

	if (!src)
		return;
	for (n = src->nodes; n; n = next) {
		next = n->next_alloc;
		free(n->text);
		switch (n->type) {
		case N_LIST:
		case N_COMMAND:
		case N_PIPE:
			free(n->kids);
			free(n->decl);
			break;
		case N_STRING:
			free(n->quoted);
			break;
		case N_FIELD:
		case N_VARIABLE:
		case N_CHAIN:
			for (i = 0; i < n->nidents; i++)
				free(n->idents[i]);
			free(n->idents);
			break;
		default:
			break;
		}
		free(n);
	}
	for (i = 0; i < src->ntrees; i++) {
		free(src->trees[i]->name);
		free(src->trees[i]);
	}
	free(src->trees);
	free(src->text);
	free(src->name);
	free(src);
}

/* set->trees is kept sorted by name: lookups are a binary search, since
 * a template may call templates millions of times within its budget. */
static size_t tree_find(const te_render_set *set, const char *name, bool *found)
{
	size_t lo = 0, hi = set->ntrees, mid;
	int c;

	*found = false;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(set->trees[mid]->name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct te_tree *te_render__lookup(const te_render_set *set, const char *name)
{
	bool found;
	size_t at = tree_find(set, name, &found);

	return found ? set->trees[at] : NULL;
}

/* text/template's associate: a new empty tree never replaces a defined
 * one; otherwise the latest definition wins. */
static void set_associate(te_render_set *set, struct te_tree *t)
{
	size_t at;
	bool found;

	at = tree_find(set, t->name, &found);
	if (found) {
		if (!is_empty_tree(t->root) || !set->trees[at]->root)
			set->trees[at] = t;
		return;
	}
	memmove(set->trees + at + 1, set->trees + at,
	        (set->ntrees - at) * sizeof(*set->trees));
	set->trees[at] = t;
	set->ntrees++;
}

/* Room for every tree of a parse, so that adding them cannot fail
 * half way and the set changes all at once or not at all. */
static int set_reserve(te_render_set *set, size_t more, te_error *err)
{
	struct te_tree **trees;
	size_t cap = set->captrees ? set->captrees : 8;

	while (cap < set->ntrees + more)
		cap *= 2;
	if (cap == set->captrees)
		return 0;
	trees = realloc(set->trees, cap * sizeof(*trees));
	if (!trees)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	set->trees = trees;
	set->captrees = cap;
	return 0;
}

int te_render_set_new(te_render_set **out, const te_render_funcs *funcs,
                      const te_render_limits *limits, te_error *err)
{
	te_render_limits defaults = TE_RENDER_LIMITS_INIT;
	te_render_set *set;

	*out = NULL;
	if (limits && limits->version != 1)
		return te_error_set(
		    err, TE_EINVALID,
		    "render: te_render_limits version %u is not 1",
		    limits->version);
	set = calloc(1, sizeof(*set));
	if (!set)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	set->funcs = funcs;
	set->limits = limits ? *limits : defaults;
	*out = set;
	return 0;
}

void te_render_set_free(te_render_set *set)
{
	struct te_source *s, *next;

	if (!set)
		return;
	for (s = set->sources; s; s = next) {
		next = s->next;
		source_free(s);
	}
	free(set->trees);
	free(set);
}

static int parse_body(struct parser *p, const char *name)
{
	struct te_source *src = p->src;
	size_t i;

	push_var(p, "$", 1);
	p->tree = new_tree(p, name, strlen(name));
	parse_top(p);
	tree_add(p, p->tree);
	if (set_reserve(p->set, src->ntrees, p->err) < 0)
		return p->err->code;
	for (i = 0; i < src->ntrees; i++)
		if (src->trees[i]->added && src->trees[i]->root)
			set_associate(p->set, src->trees[i]);
	return 0;
}

static int parse_run(struct parser *p, const char *name)
{
	int rc;

	if (setjmp(p->jb))
		rc = p->err->code ? p->err->code : TE_EINVALID;
	else
		rc = parse_body(p, name);
	free(p->vars);
	free(p->var_lens);
	return rc;
}

int te_render_parse(te_render_set *set, const char *name, const char *text,
                    size_t len, te_error *err)
{
	struct parser *p = NULL;
	struct te_source *src;
	int rc;

	if (len > set->limits.input_max)
		return te_error_set(err, TE_EINVALID,
		                    "template: %s: %zu bytes exceed the input "
		                    "limit of %zu bytes",
		                    name, len, set->limits.input_max);
	src = calloc(1, sizeof(*src));
	p = calloc(1, sizeof(*p));
	if (!src || !p) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto fail;
	}
	src->name = strdup(name);
	src->text = malloc(len + 1);
	if (!src->name || !src->text) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto fail;
	}
	memcpy(src->text, text, len);
	src->text[len] = '\0';
	src->len = len;
	p->set = set;
	p->src = src;
	p->err = err;
	te_lex_init(&p->lex, src->text, len, !has_function(p, "break"),
	            !has_function(p, "continue"));
	rc = parse_run(p, name);
	if (rc < 0)
		goto fail;
	src->next = set->sources;
	set->sources = src;
	free(p);
	return 0;
fail:
	source_free(src);
	free(p);
	return rc;
}
