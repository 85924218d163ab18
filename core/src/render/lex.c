/*
 * lex.c - the lexer of Go's text/template (text/template/parse/lex.go),
 * as a pull state machine: te_lex_next runs states until a token is
 * ready.  Delimiters are fixed to "{{" and "}}".  Token values point into
 * the input, which the caller keeps alive.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "render/render_int.h"

enum {
	S_TEXT,
	S_LEFT_DELIM,
	S_COMMENT,
	S_RIGHT_DELIM,
	S_INSIDE,
	S_SPACE,
	S_IDENT,
	S_FIELD,
	S_VARIABLE,
	S_CHAR,
	S_NUMBER,
	S_QUOTE,
	S_RAWQUOTE,
	S_DONE
};

#define LEX_EOF (-1)

void te_lex_init(struct te_lexer *l, const char *input, size_t len,
                 bool break_ok, bool continue_ok)
{
	memset(l, 0, sizeof(*l));
	l->input = input;
	l->len = len;
	l->line = l->start_line = 1;
	l->break_ok = break_ok;
	l->continue_ok = continue_ok;
	l->state = S_TEXT;
}

static int32_t lex_next_rune(struct te_lexer *l)
{
	size_t w;
	int32_t r;

	if (l->pos >= l->len) {
		l->at_eof = true;
		return LEX_EOF;
	}
	r = te_render__rune(l->input + l->pos, l->len - l->pos, &w);
	l->pos += w;
	if (r == '\n')
		l->line++;
	return r;
}

static void lex_backup(struct te_lexer *l)
{
	size_t p;

	if (l->at_eof || l->pos == 0)
		return;
	/* step back over one UTF-8 sequence */
	p = l->pos - 1;
	while (p > 0 && ((unsigned char)l->input[p] & 0xC0) == 0x80 &&
	       l->pos - p < 4)
		p--;
	{
		size_t w;
		te_render__rune(l->input + p, l->len - p, &w);
		if (p + w != l->pos)
			p = l->pos - 1;
	}
	if (l->input[p] == '\n')
		l->line--;
	l->pos = p;
}

static int32_t lex_peek(struct te_lexer *l)
{
	int32_t r = lex_next_rune(l);

	lex_backup(l);
	return r;
}

static size_t count_nl(const char *s, size_t n)
{
	size_t c = 0;

	while (n--)
		c += *s++ == '\n';
	return c;
}

static void lex_push(struct te_lexer *l, struct te_item it)
{
	size_t at = (l->qhead + l->qlen) % TE_LEX_QUEUE;

	l->queue[at] = it;
	l->qlen++;
}

static void lex_emit(struct te_lexer *l, enum te_tok t)
{
	struct te_item it = {t, l->start, l->input + l->start,
	                     l->pos - l->start, l->start_line};

	lex_push(l, it);
	l->start = l->pos;
	l->start_line = l->line;
}

static void lex_ignore(struct te_lexer *l)
{
	l->line += (int)count_nl(l->input + l->start, l->pos - l->start);
	l->start = l->pos;
	l->start_line = l->line;
}

static int lex_errorf(struct te_lexer *l, const char *fmt, ...) TE_PRINTF(2, 3);

static int lex_errorf(struct te_lexer *l, const char *fmt, ...)
{
	struct te_item it;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->errmsg, sizeof(l->errmsg), fmt, ap);
	va_end(ap);
	it.typ = TOK_ERROR;
	it.pos = l->start;
	it.val = l->errmsg;
	it.len = strlen(l->errmsg);
	it.line = l->start_line;
	lex_push(l, it);
	return S_DONE;
}

static bool is_space(int32_t r)
{
	return r == ' ' || r == '\t' || r == '\r' || r == '\n';
}

/* unicode.IsLetter/IsDigit, exactly for ASCII; above it, runes outside
 * the common punctuation and space blocks count as letters. */
static bool is_alnum(int32_t r)
{
	if (r < 0)
		return false;
	if (r < 0x80)
		return r == '_' || (r >= 'a' && r <= 'z') ||
		       (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9');
	if (r == 0xFFFD || (r >= 0x80 && r < 0xC0) || r == 0xD7 || r == 0xF7)
		return false;
	if ((r >= 0x2000 && r <= 0x206F) || (r >= 0x3000 && r <= 0x303F) ||
	    (r >= 0x2190 && r <= 0x2BFF) || (r >= 0x1F000 && r <= 0x1FAFF))
		return false;
	return te_render__is_print(r);
}

static bool has_left_trim(const char *s, size_t n)
{
	return n >= 2 && s[0] == '-' && is_space((unsigned char)s[1]);
}

static bool has_right_trim(const char *s, size_t n)
{
	return n >= 2 && is_space((unsigned char)s[0]) && s[1] == '-';
}

static bool has_prefix(const struct te_lexer *l, size_t at, const char *p)
{
	size_t n = strlen(p);

	return at <= l->len && l->len - at >= n &&
	       memcmp(l->input + at, p, n) == 0;
}

static bool at_right_delim(const struct te_lexer *l, bool *trim)
{
	*trim = false;
	if (has_right_trim(l->input + l->pos, l->len - l->pos) &&
	    has_prefix(l, l->pos + 2, "}}")) {
		*trim = true;
		return true;
	}
	return has_prefix(l, l->pos, "}}");
}

static bool at_terminator(struct te_lexer *l)
{
	int32_t r = lex_peek(l);

	if (is_space(r))
		return true;
	switch (r) {
	case LEX_EOF:
	case '.':
	case ',':
	case '|':
	case ':':
	case ')':
	case '(':
		return true;
	default:
		break;
	}
	return has_prefix(l, l->pos, "}}");
}

/* Go's %#U: U+0041 'A' (the rune shown only when printable). */
static void fmt_rune_u(char *dst, size_t n, int32_t r)
{
	char enc[5] = {0};

	if (r >= 0 && te_render__is_print(r)) {
		enc[te_render__put_rune(enc, r)] = '\0';
		snprintf(dst, n, "U+%04X '%s'", (unsigned)r, enc);
	} else if (r < 0) {
		snprintf(dst, n, "U+FFFFFFFFFFFFFFFF");
	} else {
		snprintf(dst, n, "U+%04X", (unsigned)r);
	}
}

static int st_text(struct te_lexer *l)
{
	const char *hit = NULL;
	size_t trim = 0, x, e;

	if (l->pos < l->len)
		hit = memmem(l->input + l->pos, l->len - l->pos, "{{", 2);
	if (!hit) {
		l->pos = l->len;
		if (l->pos > l->start) {
			l->line += (int)count_nl(l->input + l->start,
			                         l->pos - l->start);
			lex_emit(l, TOK_TEXT);
		}
		lex_emit(l, TOK_EOF);
		return S_DONE;
	}
	x = (size_t)(hit - l->input);
	if (has_left_trim(l->input + x + 2, l->len - x - 2)) {
		e = x;
		while (e > l->start && is_space((unsigned char)l->input[e - 1]))
			e--;
		trim = x - e;
	}
	l->pos = x - trim;
	if (l->pos > l->start) {
		l->line +=
		    (int)count_nl(l->input + l->start, l->pos - l->start);
		lex_emit(l, TOK_TEXT);
	}
	l->pos += trim;
	lex_ignore(l);
	return S_LEFT_DELIM;
}

static int st_left_delim(struct te_lexer *l)
{
	size_t after = 0;

	l->pos += 2;
	if (has_left_trim(l->input + l->pos, l->len - l->pos))
		after = 2;
	if (has_prefix(l, l->pos + after, "/*")) {
		l->pos += after;
		lex_ignore(l);
		return S_COMMENT;
	}
	lex_emit(l, TOK_LDELIM);
	l->pos += after;
	lex_ignore(l);
	l->paren_depth = 0;
	return S_INSIDE;
}

static int st_comment(struct te_lexer *l)
{
	const char *end;
	bool trim;

	l->pos += 2;
	end = memmem(l->input + l->pos, l->len - l->pos, "*/", 2);
	if (!end)
		return lex_errorf(l, "unclosed comment");
	l->pos = (size_t)(end - l->input) + 2;
	if (!at_right_delim(l, &trim))
		return lex_errorf(l, "comment ends before closing delimiter");
	if (trim)
		l->pos += 2;
	l->pos += 2;
	if (trim)
		while (l->pos < l->len &&
		       is_space((unsigned char)l->input[l->pos]))
			l->pos++;
	lex_ignore(l);
	return S_TEXT;
}

static int st_right_delim(struct te_lexer *l)
{
	bool trim = has_right_trim(l->input + l->pos, l->len - l->pos);

	if (trim) {
		l->pos += 2;
		lex_ignore(l);
	}
	l->pos += 2;
	lex_emit(l, TOK_RDELIM);
	if (trim) {
		while (l->pos < l->len &&
		       is_space((unsigned char)l->input[l->pos]))
			l->pos++;
		lex_ignore(l);
	}
	return S_TEXT;
}

static int st_inside(struct te_lexer *l)
{
	char u[48];
	bool trim;
	int32_t r;

	if (at_right_delim(l, &trim)) {
		if (l->paren_depth == 0)
			return S_RIGHT_DELIM;
		return lex_errorf(l, "unclosed left paren");
	}
	r = lex_next_rune(l);
	if (r == LEX_EOF)
		return lex_errorf(l, "unclosed action");
	if (is_space(r)) {
		lex_backup(l);
		return S_SPACE;
	}
	switch (r) {
	case '=':
		lex_emit(l, TOK_ASSIGN);
		return S_INSIDE;
	case ':':
		if (lex_next_rune(l) != '=')
			return lex_errorf(l, "expected :=");
		lex_emit(l, TOK_DECLARE);
		return S_INSIDE;
	case '|':
		lex_emit(l, TOK_PIPE);
		return S_INSIDE;
	case '"':
		return S_QUOTE;
	case '`':
		return S_RAWQUOTE;
	case '$':
		return S_VARIABLE;
	case '\'':
		return S_CHAR;
	case '(':
		lex_emit(l, TOK_LPAREN);
		l->paren_depth++;
		return S_INSIDE;
	case ')':
		lex_emit(l, TOK_RPAREN);
		l->paren_depth--;
		if (l->paren_depth < 0) {
			fmt_rune_u(u, sizeof(u), r);
			return lex_errorf(l, "unexpected right paren %s", u);
		}
		return S_INSIDE;
	default:
		break;
	}
	if (r == '.' && l->pos < l->len &&
	    (l->input[l->pos] < '0' || l->input[l->pos] > '9'))
		return S_FIELD;
	if (r == '.' || r == '+' || r == '-' || (r >= '0' && r <= '9')) {
		lex_backup(l);
		return S_NUMBER;
	}
	if (is_alnum(r)) {
		lex_backup(l);
		return S_IDENT;
	}
	if (r < 0x80 && r >= 0x20 && r < 0x7F) {
		lex_emit(l, TOK_CHAR);
		return S_INSIDE;
	}
	fmt_rune_u(u, sizeof(u), r);
	return lex_errorf(l, "unrecognized character in action: %s", u);
}

static int st_space(struct te_lexer *l)
{
	int spaces = 0;

	while (is_space(lex_peek(l))) {
		lex_next_rune(l);
		spaces++;
	}
	/* " -}}": leave the space before the trim marker to the delimiter */
	if (has_right_trim(l->input + l->pos - 1, l->len - l->pos + 1) &&
	    has_prefix(l, l->pos + 1, "}}")) {
		lex_backup(l);
		if (spaces == 1)
			return S_RIGHT_DELIM;
	}
	lex_emit(l, TOK_SPACE);
	return S_INSIDE;
}

static const struct {
	const char *word;
	enum te_tok tok;
} keywords[] = {
    {".", TOK_DOT},
    {"block", TOK_BLOCK},
    {"break", TOK_BREAK},
    {"continue", TOK_CONTINUE},
    {"define", TOK_DEFINE},
    {"else", TOK_ELSE},
    {"end", TOK_END},
    {"if", TOK_IF},
    {"range", TOK_RANGE},
    {"nil", TOK_NIL},
    {"template", TOK_TEMPLATE},
    {"with", TOK_WITH},
};

static enum te_tok keyword(const char *w, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (strlen(keywords[i].word) == n &&
		    memcmp(keywords[i].word, w, n) == 0)
			return keywords[i].tok;
	return TOK_ERROR;
}

static int st_ident(struct te_lexer *l)
{
	const char *w;
	enum te_tok k;
	char u[48];
	size_t n;
	int32_t r;

	do
		r = lex_next_rune(l);
	while (is_alnum(r));
	lex_backup(l);
	if (!at_terminator(l)) {
		fmt_rune_u(u, sizeof(u), r);
		return lex_errorf(l, "bad character %s", u);
	}
	w = l->input + l->start;
	n = l->pos - l->start;
	k = keyword(w, n);
	if (k != TOK_ERROR) {
		if ((k == TOK_BREAK && !l->break_ok) ||
		    (k == TOK_CONTINUE && !l->continue_ok))
			k = TOK_IDENT;
		lex_emit(l, k);
	} else if (w[0] == '.') {
		lex_emit(l, TOK_FIELD);
	} else if ((n == 4 && !memcmp(w, "true", 4)) ||
	           (n == 5 && !memcmp(w, "false", 5))) {
		lex_emit(l, TOK_BOOL);
	} else {
		lex_emit(l, TOK_IDENT);
	}
	return S_INSIDE;
}

static int st_field_or_var(struct te_lexer *l, enum te_tok typ)
{
	char u[48];
	int32_t r;

	if (at_terminator(l)) {
		lex_emit(l, typ == TOK_VARIABLE ? TOK_VARIABLE : TOK_DOT);
		return S_INSIDE;
	}
	do
		r = lex_next_rune(l);
	while (is_alnum(r));
	lex_backup(l);
	if (!at_terminator(l)) {
		fmt_rune_u(u, sizeof(u), r);
		return lex_errorf(l, "bad character %s", u);
	}
	lex_emit(l, typ);
	return S_INSIDE;
}

static int st_quote(struct te_lexer *l, char close, enum te_tok typ,
                    const char *what)
{
	int32_t r;

	for (;;) {
		r = lex_next_rune(l);
		if (r == '\\' && close != '`') {
			r = lex_next_rune(l);
			if (r != LEX_EOF && r != '\n')
				continue;
			return lex_errorf(l, "unterminated %s", what);
		}
		if (r == LEX_EOF || (r == '\n' && close != '`'))
			return lex_errorf(l, "unterminated %s", what);
		if (r == close)
			break;
	}
	lex_emit(l, typ);
	return S_INSIDE;
}

static bool lex_accept(struct te_lexer *l, const char *valid)
{
	int32_t r = lex_next_rune(l);

	if (r > 0 && r < 0x80 && strchr(valid, (int)r))
		return true;
	lex_backup(l);
	return false;
}

static void lex_accept_run(struct te_lexer *l, const char *valid)
{
	while (lex_accept(l, valid))
		;
}

static bool scan_number(struct te_lexer *l)
{
	const char *digits = "0123456789_";

	lex_accept(l, "+-");
	if (lex_accept(l, "0")) {
		if (lex_accept(l, "xX"))
			digits = "0123456789abcdefABCDEF_";
		else if (lex_accept(l, "oO"))
			digits = "01234567_";
		else if (lex_accept(l, "bB"))
			digits = "01_";
	}
	lex_accept_run(l, digits);
	if (lex_accept(l, "."))
		lex_accept_run(l, digits);
	if (strlen(digits) == 11 && lex_accept(l, "eE")) {
		lex_accept(l, "+-");
		lex_accept_run(l, "0123456789_");
	}
	if (strlen(digits) == 23 && lex_accept(l, "pP")) {
		lex_accept(l, "+-");
		lex_accept_run(l, "0123456789_");
	}
	lex_accept(l, "i");
	if (is_alnum(lex_peek(l))) {
		lex_next_rune(l);
		return false;
	}
	return true;
}

static int lex_bad_number(struct te_lexer *l)
{
	te_buf b = TE_BUF_INIT(120);
	te_error e = TE_ERROR_INIT;
	int st;

	if (te_render__quote(&b, l->input + l->start, l->pos - l->start, false,
	                     &e) < 0)
		st = lex_errorf(l, "bad number syntax");
	else
		st = lex_errorf(l, "bad number syntax: %s", b.ptr);
	te_buf_dispose(&b);
	return st;
}

static int st_number(struct te_lexer *l)
{
	int32_t sign;

	if (!scan_number(l))
		return lex_bad_number(l);
	sign = lex_peek(l);
	if (sign == '+' || sign == '-') {
		if (!scan_number(l) || l->input[l->pos - 1] != 'i')
			return lex_bad_number(l);
		lex_emit(l, TOK_COMPLEX);
	} else {
		lex_emit(l, TOK_NUMBER);
	}
	return S_INSIDE;
}

static int lex_step(struct te_lexer *l)
{
	switch (l->state) {
	case S_TEXT:
		return st_text(l);
	case S_LEFT_DELIM:
		return st_left_delim(l);
	case S_COMMENT:
		return st_comment(l);
	case S_RIGHT_DELIM:
		return st_right_delim(l);
	case S_INSIDE:
		return st_inside(l);
	case S_SPACE:
		return st_space(l);
	case S_IDENT:
		return st_ident(l);
	case S_FIELD:
		return st_field_or_var(l, TOK_FIELD);
	case S_VARIABLE:
		if (at_terminator(l)) {
			lex_emit(l, TOK_VARIABLE);
			return S_INSIDE;
		}
		return st_field_or_var(l, TOK_VARIABLE);
	case S_CHAR:
		return st_quote(l, '\'', TOK_CHARCONST, "character constant");
	case S_NUMBER:
		return st_number(l);
	case S_QUOTE:
		return st_quote(l, '"', TOK_STRING, "quoted string");
	case S_RAWQUOTE:
		return st_quote(l, '`', TOK_RAWSTRING, "raw quoted string");
	default:
		return S_DONE;
	}
}

struct te_item te_lex_next(struct te_lexer *l)
{
	struct te_item it;

	while (l->qlen == 0 && l->state != S_DONE)
		l->state = lex_step(l);
	if (l->qlen == 0) {
		/* after EOF or an error the parser has stopped; repeat EOF */
		it.typ = TOK_EOF;
		it.pos = l->len;
		it.val = l->input + l->len;
		it.len = 0;
		it.line = l->line;
		return it;
	}
	it = l->queue[l->qhead];
	l->qhead = (l->qhead + 1) % TE_LEX_QUEUE;
	l->qlen--;
	return it;
}
