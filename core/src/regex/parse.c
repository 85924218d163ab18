/*
 * parse.c - Go regexp syntax (regexp/syntax with the Perl flags that
 * regexp.Compile uses: https://pkg.go.dev/regexp/syntax) into a tree.
 *
 * A recursive descent over the pattern that reports Go's errors, with
 * Go's text: "error parsing regexp: CODE: `EXPR`", EXPR being the piece
 * Go names (the whole pattern for parentheses).  Repetition applies to
 * the last item of the current sequence, a flag group "(?i)" is not an
 * item, and flags set inside a group end with it, as in Go's parser.
 */
#include <stdlib.h>
#include <string.h>

#include "regex/regex_int.h"
#include "utf8_int.h"

#define F_FOLD 1u
#define F_DOTNL 2u
#define F_ONELINE 4u
#define F_NONGREEDY 8u

#define E_CLASS_RANGE "invalid character class range"
#define E_ESCAPE "invalid escape sequence"
#define E_NAMED "invalid named capture"
#define E_PERL "invalid or unsupported Perl syntax"
#define E_REPEAT_OP "invalid nested repetition operator"
#define E_REPEAT_SIZE "invalid repeat count"
#define E_UTF8 "invalid UTF-8"
#define E_BRACKET "missing closing ]"
#define E_PAREN "missing closing )"
#define E_REPEAT_ARG "missing argument to repetition operator"
#define E_BACKSLASH "trailing backslash at end of expression"
#define E_UNEXPECTED "unexpected )"
#define E_DEPTH "expression nests too deeply"
#define E_LARGE "expression too large"

struct parser {
	const char *s;
	size_t len;
	struct te_re_ast *ast;
	int depth;
	size_t pairs; /* rune ranges held by all classes so far */
	te_error *err;
};

static int fail(struct parser *p, const char *code, size_t from, size_t to)
{
	return te_error_set(p->err, TE_EINVALID,
	                    "error parsing regexp: %s: `%.*s`", code,
	                    (int)(to - from), p->s + from);
}

static int oom(struct parser *p)
{
	return te_error_set(p->err, TE_ENOMEM, "out of memory");
}

/* Go's nextRune: the rune at *pos; at the end U+FFFD of width 0. */
static int next_rune(struct parser *p, size_t *pos, uint32_t *r)
{
	size_t w;

	if (*pos >= p->len) {
		*r = TE_UTF8_INVALID;
		return 0;
	}
	w = te__utf8_next((const unsigned char *)p->s + *pos, p->len - *pos, r);
	if (*r == TE_UTF8_INVALID && w == 1)
		return fail(p, E_UTF8, *pos, p->len);
	*pos += w;
	return 0;
}

/* Go's checkUTF8 over s[from, to), reporting from the bad byte on. */
static int check_utf8(struct parser *p, size_t from, size_t to)
{
	uint32_t r;
	size_t w;

	while (from < to) {
		w = te__utf8_next((const unsigned char *)p->s + from, to - from,
		                  &r);
		if (r == TE_UTF8_INVALID && w == 1)
			return fail(p, E_UTF8, from, to);
		from += w;
	}
	return 0;
}

static bool is_alnum(uint32_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
	       (c >= 'a' && c <= 'z');
}

static int unhex(uint32_t c)
{
	if (c >= '0' && c <= '9')
		return (int)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (int)(c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (int)(c - 'A' + 10);
	return -1;
}

static struct te_re_node *node(struct parser *p, enum re_op op)
{
	struct te_re_node *n = te_re__node_new(&p->ast->nodes, op);

	if (!n)
		oom(p);
	return n;
}

/* A class piece: ranges r (n pairs), folded when the flags say so,
 * negated when neg, added to c.  Folding comes before negation, so
 * (?i)[\W] is the complement of the folded \w, as in Go. */
static int add_piece(struct parser *p, struct te_re_class *c, const uint32_t *r,
                     size_t n, bool neg, unsigned flags)
{
	struct te_re_class t = {0};
	int rc;

	rc = te_re__class_add_pairs(&t, r, n);
	if (rc == 0) {
		te_re__class_clean(&t);
		if (flags & F_FOLD)
			rc = te_re__class_fold(&t);
	}
	if (rc == 0 && neg)
		rc = te_re__class_negate(&t);
	if (rc == 0)
		rc = te_re__class_add_pairs(c, t.r, t.n);
	p->pairs += t.n;
	te_re__class_free(&t);
	if (rc < 0)
		return oom(p);
	/* memory and folding work: \pL holds 600-odd ranges */
	if (p->pairs > RE_PAIRS_MAX)
		return fail(p, E_LARGE, 0, p->len);
	return 0;
}

/* Go's perl_groups.go: \d \s \w and the POSIX classes. */
static const uint32_t g_digit[] = {'0', '9'};
static const uint32_t g_space[] = {'\t', '\n', '\f', '\r', ' ', ' '};
static const uint32_t g_word[] = {'0', '9', 'A', 'Z', '_', '_', 'a', 'z'};
static const uint32_t g_alnum[] = {'0', '9', 'A', 'Z', 'a', 'z'};
static const uint32_t g_alpha[] = {'A', 'Z', 'a', 'z'};
static const uint32_t g_ascii[] = {0, 0x7f};
static const uint32_t g_blank[] = {'\t', '\t', ' ', ' '};
static const uint32_t g_cntrl[] = {0, 0x1f, 0x7f, 0x7f};
static const uint32_t g_graph[] = {0x21, 0x7e};
static const uint32_t g_lower[] = {'a', 'z'};
static const uint32_t g_print[] = {0x20, 0x7e};
static const uint32_t g_punct[] = {0x21, 0x2f, 0x3a, 0x40,
                                   0x5b, 0x60, 0x7b, 0x7e};
static const uint32_t g_pspace[] = {'\t', '\r', ' ', ' '};
static const uint32_t g_upper[] = {'A', 'Z'};
static const uint32_t g_xdigit[] = {'0', '9', 'A', 'F', 'a', 'f'};

struct group {
	const char *name;
	const uint32_t *r;
	size_t n;
};
#define G(name, t)                                                             \
	{                                                                      \
		name, t, sizeof(t) / sizeof(t[0]) / 2                          \
	}
static const struct group posix_groups[] = {
    G("alnum", g_alnum), G("alpha", g_alpha),   G("ascii", g_ascii),
    G("blank", g_blank), G("cntrl", g_cntrl),   G("digit", g_digit),
    G("graph", g_graph), G("lower", g_lower),   G("print", g_print),
    G("punct", g_punct), G("space", g_pspace),  G("upper", g_upper),
    G("word", g_word),   G("xdigit", g_xdigit),
};
#undef G

/* \d \D \s \S \w \W at pos: 1 when one was added to c. */
static int perl_class(struct parser *p, size_t *pos, struct te_re_class *c,
                      unsigned flags)
{
	const uint32_t *r;
	size_t n;
	char k;

	if (*pos + 1 >= p->len || p->s[*pos] != '\\')
		return 0;
	k = p->s[*pos + 1];
	switch (k | 0x20) {
	case 'd':
		r = g_digit, n = 1;
		break;
	case 's':
		r = g_space, n = 3;
		break;
	case 'w':
		r = g_word, n = 4;
		break;
	default:
		return 0;
	}
	if (add_piece(p, c, r, n, k >= 'A' && k <= 'Z', flags) < 0)
		return p->err->code;
	*pos += 2;
	return 1;
}

/* [:alpha:] at pos inside a class: 1 when one was added to c. */
static int posix_class(struct parser *p, size_t *pos, struct te_re_class *c,
                       unsigned flags)
{
	const char *s = p->s + *pos, *end;
	size_t i, nlen, rest = p->len - *pos;
	bool neg;

	if (rest <= 2 || s[0] != '[' || s[1] != ':')
		return 0;
	end = NULL;
	for (i = 2; i + 1 < rest; i++)
		if (s[i] == ':' && s[i + 1] == ']') {
			end = s + i;
			break;
		}
	if (!end)
		return 0;
	neg = s[2] == '^';
	nlen = (size_t)(end - s) - 2 - neg;
	for (i = 0; i < sizeof(posix_groups) / sizeof(posix_groups[0]); i++) {
		if (strlen(posix_groups[i].name) != nlen ||
		    memcmp(posix_groups[i].name, s + 2 + neg, nlen))
			continue;
		if (add_piece(p, c, posix_groups[i].r, posix_groups[i].n, neg,
		              flags) < 0)
			return p->err->code;
		*pos = (size_t)(end - p->s) + 2;
		return 1;
	}
	return fail(p, E_CLASS_RANGE, *pos, (size_t)(end - p->s) + 2);
}

/* \pL \p{Greek} \PL \p{^Greek} at pos: 1 when one was added to c. */
static int unicode_class(struct parser *p, size_t *pos, struct te_re_class *c,
                         unsigned flags)
{
	static const uint32_t any[] = {0, RE_MAX_RUNE};
	const struct te_unicode_table *tab = NULL;
	size_t t = *pos + 2, name, nend, seq_end, i;
	const uint32_t *r;
	bool neg;
	uint32_t ch;
	size_t n;

	if (*pos + 1 >= p->len || p->s[*pos] != '\\' ||
	    (p->s[*pos + 1] != 'p' && p->s[*pos + 1] != 'P'))
		return 0;
	neg = p->s[*pos + 1] == 'P';
	if (next_rune(p, &t, &ch) < 0)
		return p->err->code;
	if (ch != '{') {
		seq_end = t;
		name = *pos + 2;
		nend = t;
	} else {
		for (i = *pos; i < p->len && p->s[i] != '}'; i++)
			;
		if (i == p->len) {
			if (check_utf8(p, *pos, p->len) < 0)
				return p->err->code;
			return fail(p, E_CLASS_RANGE, *pos, p->len);
		}
		seq_end = i + 1;
		name = *pos + 3;
		nend = i;
		if (check_utf8(p, name, nend) < 0)
			return p->err->code;
	}
	if (nend > name && p->s[name] == '^') {
		neg = !neg;
		name++;
	}
	if (nend - name == 3 && !memcmp(p->s + name, "Any", 3)) {
		r = any;
		n = 1;
	} else {
		tab = te_unicode_table_find(p->s + name, nend - name);
		if (!tab)
			return fail(p, E_CLASS_RANGE, *pos, seq_end);
		r = tab->r;
		n = tab->n;
	}
	if (add_piece(p, c, r, n, neg, flags) < 0)
		return p->err->code;
	*pos = seq_end;
	return 1;
}

/* Go's parseEscape: one escaped rune at pos (which is at the '\'). */
static int escape(struct parser *p, size_t *pos, uint32_t *out)
{
	size_t start = *pos, t = *pos + 1;
	uint32_t c, r = 0;
	int x, y, nhex = 0, i;

	if (t >= p->len)
		return fail(p, E_BACKSLASH, 0, 0);
	if (next_rune(p, &t, &c) < 0)
		return p->err->code;
	switch (c) {
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
	case '6':
	case '7':
		/* a single non-zero digit is a backreference: unsupported */
		if (t >= p->len || p->s[t] < '0' || p->s[t] > '7')
			break;
		/* fall through */
	case '0':
		r = c - '0';
		for (i = 1;
		     i < 3 && t < p->len && p->s[t] >= '0' && p->s[t] <= '7';
		     i++)
			r = r * 8 + (uint32_t)(p->s[t++] - '0');
		goto ok;
	case 'x':
		if (t >= p->len)
			break;
		if (next_rune(p, &t, &c) < 0)
			return p->err->code;
		if (c != '{') {
			x = unhex(c);
			if (next_rune(p, &t, &c) < 0)
				return p->err->code;
			y = unhex(c);
			if (x < 0 || y < 0)
				break;
			r = (uint32_t)(x * 16 + y);
			goto ok;
		}
		for (;;) {
			if (t >= p->len)
				goto bad;
			if (next_rune(p, &t, &c) < 0)
				return p->err->code;
			if (c == '}')
				break;
			x = unhex(c);
			if (x < 0)
				goto bad;
			r = r * 16 + (uint32_t)x;
			if (r > RE_MAX_RUNE)
				goto bad;
			nhex++;
		}
		if (nhex == 0)
			break;
		goto ok;
	case 'a':
		r = '\a';
		goto ok;
	case 'f':
		r = '\f';
		goto ok;
	case 'n':
		r = '\n';
		goto ok;
	case 'r':
		r = '\r';
		goto ok;
	case 't':
		r = '\t';
		goto ok;
	case 'v':
		r = '\v';
		goto ok;
	default:
		/* escaped punctuation is itself; \_ too */
		if (c < 0x80 && !is_alnum(c)) {
			r = c;
			goto ok;
		}
	}
bad:
	return fail(p, E_ESCAPE, start, t);
ok:
	*out = r;
	*pos = t;
	return 0;
}

/* One rune of a class: escaped or plain. */
static int class_char(struct parser *p, size_t *pos, size_t whole, uint32_t *r)
{
	if (*pos >= p->len)
		return fail(p, E_BRACKET, whole, p->len);
	if (p->s[*pos] == '\\')
		return escape(p, pos, r);
	return next_rune(p, pos, r);
}

/* [...] at pos into a class node. */
static int parse_class(struct parser *p, size_t *pos, unsigned flags,
                       struct te_re_node **out)
{
	size_t whole = *pos, t = *pos + 1, rng;
	struct te_re_node *n = node(p, RE_CLASS);
	bool neg = false, first = true;
	uint32_t lo, hi, pair[2];
	int rc;

	if (!n)
		return p->err->code;
	if (t < p->len && p->s[t] == '^') {
		neg = true;
		t++;
	}
	while (t >= p->len || p->s[t] != ']' || first) {
		first = false;
		rc = posix_class(p, &t, &n->cls, flags);
		if (rc == 0)
			rc = unicode_class(p, &t, &n->cls, flags);
		if (rc == 0)
			rc = perl_class(p, &t, &n->cls, flags);
		if (rc < 0)
			return rc;
		if (rc > 0)
			continue;
		rng = t;
		if (class_char(p, &t, whole, &lo) < 0)
			return p->err->code;
		hi = lo;
		if (t + 1 < p->len && p->s[t] == '-' && p->s[t + 1] != ']') {
			t++;
			if (class_char(p, &t, whole, &hi) < 0)
				return p->err->code;
			if (hi < lo)
				return fail(p, E_CLASS_RANGE, rng, t);
		}
		pair[0] = lo;
		pair[1] = hi;
		if (add_piece(p, &n->cls, pair, 1, false, flags) < 0)
			return p->err->code;
	}
	te_re__class_clean(&n->cls);
	if (neg && te_re__class_negate(&n->cls) < 0)
		return oom(p);
	*pos = t + 1;
	*out = n;
	return 0;
}

static struct te_re_node *literal(struct parser *p, uint32_t r, unsigned flags)
{
	struct te_re_node *n = node(p, RE_CLASS);
	uint32_t pair[2] = {r, r};

	if (n && add_piece(p, &n->cls, pair, 1, false, flags) < 0)
		return NULL;
	return n;
}

static struct te_re_node *any_char(struct parser *p, unsigned flags)
{
	struct te_re_node *n = node(p, RE_CLASS);

	if (!n)
		return NULL;
	if ((flags & F_DOTNL
	         ? te_re__class_add(&n->cls, 0, RE_MAX_RUNE)
	         : (te_re__class_add(&n->cls, 0, '\n' - 1) ||
	            te_re__class_add(&n->cls, '\n' + 1, RE_MAX_RUNE))) < 0) {
		oom(p);
		return NULL;
	}
	return n;
}

static struct te_re_node *assertion(struct parser *p, unsigned cond)
{
	struct te_re_node *n = node(p, RE_ASSERT);

	if (n)
		n->arg = cond;
	return n;
}

/* Go's repeatIsValid: nested counts multiply to at most n copies. */
static bool repeat_valid(const struct te_re_node *n, int max)
{
	int m;
	size_t i;

	if (n->op == RE_REPEAT) {
		m = n->max;
		if (m == 0)
			return true;
		if (m < 0)
			m = n->min;
		if (m > max)
			return false;
		if (m > 0)
			max /= m;
	}
	for (i = 0; i < n->nsub; i++)
		if (!repeat_valid(n->sub[i], max))
			return false;
	return true;
}

/* Go's parseInt: decimal without leading zeros; -1 when too big. */
static bool parse_int(struct parser *p, size_t *t, int *n)
{
	size_t s = *t;

	if (s >= p->len || p->s[s] < '0' || p->s[s] > '9')
		return false;
	if (s + 1 < p->len && p->s[s] == '0' && p->s[s + 1] >= '0' &&
	    p->s[s + 1] <= '9')
		return false;
	*n = 0;
	for (; s < p->len && p->s[s] >= '0' && p->s[s] <= '9'; s++) {
		if (*n >= 100000000)
			*n = -1;
		if (*n >= 0)
			*n = *n * 10 + (p->s[s] - '0');
	}
	*t = s;
	return true;
}

/* {n} {n,} {n,m} at t: false when it is not one (then '{' is literal). */
static bool parse_repeat(struct parser *p, size_t *t, int *min, int *max)
{
	size_t s = *t + 1;

	if (!parse_int(p, &s, min) || s >= p->len)
		return false;
	if (p->s[s] != ',') {
		*max = *min;
	} else {
		s++;
		if (s >= p->len)
			return false;
		if (p->s[s] == '}') {
			*max = -1;
		} else {
			if (!parse_int(p, &s, max))
				return false;
			if (*max < 0)
				*min = -1;
		}
	}
	if (s >= p->len || p->s[s] != '}')
		return false;
	*t = s + 1;
	return true;
}

struct seq {
	struct te_re_node *cat;
	size_t last_rep; /* where the previous item's repetition began */
};

#define NO_REP ((size_t)-1)

/* * + ? {..} at *t, applied to the last item of sq. */
static int repetition(struct parser *p, struct seq *sq, size_t *t,
                      unsigned flags)
{
	size_t before = *t, after;
	int min = 0, max = 0;
	enum re_op op;
	struct te_re_node *n, **last;
	bool nongreedy = (flags & F_NONGREEDY) != 0;
	char c = p->s[*t];

	if (c == '{') {
		after = *t;
		op = RE_REPEAT;
		if (!parse_repeat(p, &after, &min, &max))
			return 1; /* a literal '{' */
		if (min < 0 || min > RE_REPEAT_MAX || max > RE_REPEAT_MAX ||
		    (max >= 0 && min > max))
			return fail(p, E_REPEAT_SIZE, before, after);
	} else {
		after = *t + 1;
		op = c == '*' ? RE_STAR : (c == '+' ? RE_PLUS : RE_QUEST);
	}
	if (after < p->len && p->s[after] == '?') {
		after++;
		nongreedy = !nongreedy;
	}
	if (sq->last_rep != NO_REP)
		return fail(p, E_REPEAT_OP, sq->last_rep, after);
	if (sq->cat->nsub == 0)
		return fail(p, E_REPEAT_ARG, before, after);
	n = node(p, op);
	if (!n)
		return p->err->code;
	last = &sq->cat->sub[sq->cat->nsub - 1];
	n->min = min;
	n->max = max;
	n->nongreedy = nongreedy;
	if (te_re__node_push(n, *last) < 0)
		return oom(p);
	*last = n;
	if (op == RE_REPEAT && (min >= 2 || max >= 2) &&
	    !repeat_valid(n, RE_REPEAT_MAX))
		return fail(p, E_REPEAT_SIZE, before, after);
	sq->last_rep = before;
	*t = after;
	return 0;
}

static int parse_alt(struct parser *p, size_t *pos, unsigned flags,
                     struct te_re_node **out);

static int add_name(struct parser *p, size_t group, const char *name,
                    size_t len)
{
	char **v;
	size_t cap, i;

	if (group >= p->ast->names_cap) {
		cap = p->ast->names_cap ? p->ast->names_cap * 2 : 8;
		while (cap <= group)
			cap *= 2;
		v = realloc(p->ast->names, cap * sizeof(*v));
		if (!v)
			return oom(p);
		for (i = p->ast->names_cap; i < cap; i++)
			v[i] = NULL;
		p->ast->names = v;
		p->ast->names_cap = cap;
	}
	p->ast->names[group] = malloc(len + 1);
	if (!p->ast->names[group])
		return oom(p);
	memcpy(p->ast->names[group], name, len);
	p->ast->names[group][len] = '\0';
	return 0;
}

/* A group's body after its opening at *t, up to and with its ')'. */
static int group(struct parser *p, size_t *t, unsigned flags, size_t cap,
                 struct te_re_node **out)
{
	struct te_re_node *sub = NULL, *g;

	if (++p->depth > RE_HEIGHT_MAX)
		return fail(p, E_DEPTH, 0, p->len);
	if (parse_alt(p, t, flags, &sub) < 0)
		return p->err->code;
	p->depth--;
	if (*t >= p->len)
		return fail(p, E_PAREN, 0, p->len);
	(*t)++;
	if (cap == 0) {
		*out = sub;
		return 0;
	}
	g = node(p, RE_CAPTURE);
	if (!g || te_re__node_push(g, sub) < 0)
		return oom(p);
	g->arg = (unsigned)cap;
	*out = g;
	return 0;
}

/* (?P<name>...): the name at t (just after "(?P<"). */
static int named_group(struct parser *p, size_t open, size_t *t, unsigned flags,
                       struct te_re_node **out)
{
	size_t end, i, cap;

	for (end = *t; end < p->len && p->s[end] != '>'; end++)
		;
	if (end == p->len) {
		if (check_utf8(p, open, p->len) < 0)
			return p->err->code;
		return fail(p, E_NAMED, open, p->len);
	}
	if (check_utf8(p, *t, end) < 0)
		return p->err->code;
	for (i = *t; i < end; i++)
		if (p->s[i] != '_' && !is_alnum((unsigned char)p->s[i]))
			break;
	if (end == *t || i < end)
		return fail(p, E_NAMED, open, end + 1);
	cap = p->ast->ngroups++;
	if (add_name(p, cap, p->s + *t, end - *t) < 0)
		return p->err->code;
	*t = end + 1;
	return group(p, t, flags, cap, out);
}

/* "(?" at *t: flags, a non-capturing group or a named group.  *out is
 * NULL for a flags-only "(?i)", which changes *flags. */
static int perl_group(struct parser *p, size_t *t, unsigned *flags,
                      struct te_re_node **out)
{
	size_t open = *t, s = *t + 2;
	unsigned f = *flags;
	bool negate = false, saw = false;
	uint32_t c;

	*out = NULL;
	if (p->len - open > 4 && p->s[open + 2] == 'P' &&
	    p->s[open + 3] == '<') {
		*t = open + 4;
		return named_group(p, open, t, *flags, out);
	}
	while (s < p->len) {
		if (next_rune(p, &s, &c) < 0)
			return p->err->code;
		switch (c) {
		case 'i':
		case 'm':
		case 's':
		case 'U': {
			unsigned bit = c == 'i'   ? F_FOLD
			               : c == 's' ? F_DOTNL
			               : c == 'U' ? F_NONGREEDY
			                          : F_ONELINE;
			/* (?m) clears OneLine; (?-m) sets it */
			bool set = (c == 'm') == negate;
			f = set ? f | bit : f & ~bit;
			saw = true;
			continue;
		}
		case '-':
			if (negate)
				goto bad;
			negate = true;
			saw = false;
			continue;
		case ':':
		case ')':
			if (negate && !saw)
				goto bad;
			*t = s;
			if (c == ')') {
				*flags = f;
				return 0;
			}
			return group(p, t, f, 0, out);
		default:
			goto bad;
		}
	}
bad:
	return fail(p, E_PERL, open, s);
}

/* One escape outside a class at *t: an item in *out. */
static int escape_item(struct parser *p, size_t *t, unsigned flags,
                       struct te_re_node **out)
{
	struct te_re_node *n;
	uint32_t r;
	int rc;
	char k = *t + 1 < p->len ? p->s[*t + 1] : '\0';

	switch (k) {
	case 'A':
	case 'z':
	case 'b':
	case 'B':
		*out = assertion(p, k == 'A'   ? RE_BOT
		                    : k == 'z' ? RE_EOT
		                    : k == 'b' ? RE_WORDB
		                               : RE_NWORDB);
		*t += 2;
		return *out ? 0 : p->err->code;
	case 'C': /* any byte: not supported, as in Go */
		return fail(p, E_ESCAPE, *t, *t + 2);
	default:
		break;
	}
	n = node(p, RE_CLASS);
	if (!n)
		return p->err->code;
	rc = unicode_class(p, t, &n->cls, flags);
	if (rc == 0)
		rc = perl_class(p, t, &n->cls, flags);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		te_re__class_clean(&n->cls);
		*out = n;
		return 0;
	}
	if (escape(p, t, &r) < 0)
		return p->err->code;
	*out = literal(p, r, flags);
	return *out ? 0 : p->err->code;
}

/* \Q...\E at *t: each rune a literal item of sq. */
static int quoted(struct parser *p, struct seq *sq, size_t *t, unsigned flags)
{
	size_t s = *t + 2, end;
	struct te_re_node *n;
	uint32_t r;

	for (end = s; end + 1 < p->len; end++)
		if (p->s[end] == '\\' && p->s[end + 1] == 'E')
			break;
	if (end + 1 >= p->len)
		end = p->len;
	while (s < end) {
		if (next_rune(p, &s, &r) < 0)
			return p->err->code;
		n = literal(p, r, flags);
		if (!n || te_re__node_push(sq->cat, n) < 0)
			return oom(p);
	}
	*t = end < p->len ? end + 2 : end;
	return 0;
}

/* One item (or a repetition of the last one) at *t. */
static int item(struct parser *p, struct seq *sq, size_t *t, unsigned *flags)
{
	struct te_re_node *n = NULL;
	uint32_t r;
	int rc;
	char c = p->s[*t];

	switch (c) {
	case '*':
	case '+':
	case '?':
	case '{':
		rc = repetition(p, sq, t, *flags);
		if (rc <= 0)
			return rc;
		(*t)++;
		n = literal(p, '{', *flags);
		break;
	case '(':
		if (*t + 1 < p->len && p->s[*t + 1] == '?') {
			if (perl_group(p, t, flags, &n) < 0)
				return p->err->code;
			if (!n) {
				sq->last_rep = NO_REP;
				return 0;
			}
			break;
		}
		(*t)++;
		if (group(p, t, *flags, p->ast->ngroups++, &n) < 0)
			return p->err->code;
		break;
	case '^':
	case '$':
		(*t)++;
		if (*flags & F_ONELINE)
			n = assertion(p, c == '^' ? RE_BOT : RE_EOT);
		else
			n = assertion(p, c == '^' ? RE_BOL : RE_EOL);
		break;
	case '.':
		(*t)++;
		n = any_char(p, *flags);
		break;
	case '[':
		if (parse_class(p, t, *flags, &n) < 0)
			return p->err->code;
		break;
	case '\\':
		if (*t + 1 < p->len && p->s[*t + 1] == 'Q') {
			sq->last_rep = NO_REP;
			return quoted(p, sq, t, *flags);
		}
		if (escape_item(p, t, *flags, &n) < 0)
			return p->err->code;
		break;
	default:
		if (next_rune(p, t, &r) < 0)
			return p->err->code;
		n = literal(p, r, *flags);
	}
	if (!n || te_re__node_push(sq->cat, n) < 0)
		return p->err->code ? p->err->code : oom(p);
	sq->last_rep = NO_REP;
	return 0;
}

/* A sequence up to '|', ')' or the end. */
static int parse_concat(struct parser *p, size_t *pos, unsigned *flags,
                        struct te_re_node **out)
{
	struct seq sq = {NULL, NO_REP};

	sq.cat = node(p, RE_CONCAT);
	if (!sq.cat)
		return p->err->code;
	while (*pos < p->len && p->s[*pos] != '|' && p->s[*pos] != ')')
		if (item(p, &sq, pos, flags) < 0)
			return p->err->code;
	*out = sq.cat->nsub == 1 ? sq.cat->sub[0] : sq.cat;
	if (sq.cat->nsub == 0)
		sq.cat->op = RE_EMPTY;
	return 0;
}

/* Alternatives up to ')' or the end; flags set in one alternative hold
 * for the next ones, up to the end of the group (Go). */
static int parse_alt(struct parser *p, size_t *pos, unsigned flags,
                     struct te_re_node **out)
{
	struct te_re_node *alt = NULL, *c = NULL;

	for (;;) {
		if (parse_concat(p, pos, &flags, &c) < 0)
			return p->err->code;
		if (*pos >= p->len || p->s[*pos] != '|')
			break;
		(*pos)++;
		if (!alt) {
			alt = node(p, RE_ALT);
			if (!alt)
				return p->err->code;
		}
		if (te_re__node_push(alt, c) < 0)
			return oom(p);
	}
	if (alt && te_re__node_push(alt, c) < 0)
		return oom(p);
	*out = alt ? alt : c;
	return 0;
}

static int height(const struct te_re_node *n, int depth)
{
	int h = 1, sh;
	size_t i;

	if (depth > RE_HEIGHT_MAX + 1)
		return depth;
	for (i = 0; i < n->nsub; i++) {
		sh = 1 + height(n->sub[i], depth + 1);
		if (sh > h)
			h = sh;
	}
	return h;
}

int te_re__parse(struct te_re_ast *ast, const char *pat, size_t len,
                 te_error *err)
{
	struct parser p = {pat, len, ast, 0, 0, err};
	size_t pos = 0;

	memset(ast, 0, sizeof(*ast));
	ast->ngroups = 1;
	if (len > TE_REGEX_PATTERN_MAX)
		return te_error_set(err, TE_EINVALID,
		                    "regexp: pattern of %zu bytes exceeds the "
		                    "limit of %d",
		                    len, TE_REGEX_PATTERN_MAX);
	if (parse_alt(&p, &pos, F_ONELINE, &ast->root) < 0)
		return err->code;
	if (pos < len)
		return fail(&p, E_UNEXPECTED, 0, len);
	if (height(ast->root, 0) > RE_HEIGHT_MAX)
		return fail(&p, E_DEPTH, 0, len);
	if (add_name(&p, ast->ngroups, "", 0) < 0)
		return err->code;
	return 0;
}

void te_re__ast_dispose(struct te_re_ast *ast)
{
	size_t i;

	te_re__nodes_free(&ast->nodes);
	for (i = 0; i < ast->names_cap; i++)
		free(ast->names[i]);
	free(ast->names);
	memset(ast, 0, sizeof(*ast));
}
