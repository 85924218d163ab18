/*
 * ignore.c - .dockerignore rules, following moby/patternmatcher and
 * buildkit's dockerignore.ReadAll:
 *
 *  1. A line starting with '#' is a comment (checked before trimming, so
 *     " #x" is a pattern), then the line is trimmed and empties dropped.
 *  2. A leading '!' re-includes; the rest is trimmed again, cleaned like
 *     filepath.Clean and a leading '/' is dropped: patterns are anchored
 *     at the context root.
 *  3. Each pattern becomes a list of tokens matched over the whole path
 *     (filepath.Match per segment): '*' and '?' never cross '/', "**"
 *     matches any number of directories, '\' quotes the next character,
 *     "[...]" is a class.  No regular expression: glibc's regcomp
 *     took gigabytes for lines of "**" and "/" repeated; this matcher is
 *     O(pattern x path) in time and O(pattern) in memory.
 *  4. A path matches a pattern when the pattern matches the path itself or
 *     one of its parent directories (MatchesOrParentMatches); the last
 *     matching pattern decides.
 */
#include "tagexport/ignore.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* What one piece of a pattern matches (the regular expression it stands
 * for, on the whole slash-separated path). */
enum tok_kind {
	TOK_BYTE,  /* this byte */
	TOK_ONE,   /* '?': one byte but '/'            [^/]   */
	TOK_CLASS, /* "[...]": one byte of a set       [...]  */
	TOK_STAR,  /* '*': bytes but '/'               [^/]*  */
	TOK_DIRS,  /* "**" before more: directories    (.*\/)? */
	TOK_ANY    /* "**" at the end: anything          .*     */
};

struct tok {
	unsigned char kind;
	unsigned char byte; /* TOK_BYTE */
	uint32_t set;       /* TOK_CLASS: index into pattern.sets */
};

struct pattern {
	bool exclusion;
	struct tok *toks;
	size_t ntoks;
	uint8_t (*sets)[32]; /* 256-bit byte sets of the classes */
	size_t nsets;
};

struct te_ignore {
	struct pattern *items;
	size_t count;
	size_t max_toks; /* longest pattern, for the matcher's state */
};

/* filepath.Clean for slash paths; returns a new string ("." if empty). */
static char *clean_path(const char *in, size_t n, te_error *err)
{
	bool rooted = n > 0 && in[0] == '/';
	size_t i = 0, o = 0, dotdot = 0;
	char *out = malloc(n + 2);

	if (!out) {
		te_error_set(err, TE_ENOMEM, "out of memory");
		return NULL;
	}
	if (rooted) {
		out[o++] = '/';
		dotdot = 1;
	}
	while (i < n) {
		size_t j = i;
		while (j < n && in[j] != '/')
			j++;
		if (j == i || (j - i == 1 && in[i] == '.')) {
			/* empty or "." */
		} else if (j - i == 2 && in[i] == '.' && in[i + 1] == '.') {
			if (o > dotdot) {
				o--;
				while (o > dotdot && out[o] != '/')
					o--;
			} else if (!rooted) {
				if (o > 0)
					out[o++] = '/';
				out[o++] = '.';
				out[o++] = '.';
				dotdot = o;
			}
		} else {
			if ((rooted && o != 1) || (!rooted && o != 0))
				out[o++] = '/';
			memcpy(out + o, in + i, j - i);
			o += j - i;
		}
		i = j + 1;
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return out;
}

static void set_add(uint8_t *set, unsigned char lo, unsigned char hi)
{
	unsigned c;

	for (c = lo; c <= hi; c++)
		set[c >> 3] |= (uint8_t)(1u << (c & 7));
}

/* One class at p[*i] (just after '['), filepath.Match's syntax: '^'
 * negates, a ']' first is a member, '\\' quotes, "a-z" is a range.
 * False when it has no closing ']'. */
static bool parse_class(uint8_t *set, const char *p, size_t n, size_t *i)
{
	size_t j = *i;
	bool neg = false, first = true;
	int k;

	memset(set, 0, 32);
	if (j < n && p[j] == '^') {
		neg = true;
		j++;
	}
	while (j < n && (first || p[j] != ']')) {
		unsigned char lo, hi;

		first = false;
		if (p[j] == '\\' && j + 1 < n)
			j++;
		lo = hi = (unsigned char)p[j++];
		if (j + 1 < n && p[j] == '-' && p[j + 1] != ']') {
			j++;
			if (p[j] == '\\' && j + 1 < n)
				j++;
			hi = (unsigned char)p[j++];
		}
		if (lo <= hi)
			set_add(set, lo, hi);
	}
	if (j >= n)
		return false;
	if (neg)
		for (k = 0; k < 32; k++)
			set[k] = (uint8_t)~set[k];
	*i = j + 1;
	return true;
}

/* Two adjacent tokens that match nothing but what one token matches:
 * "*" "*" = "*", "**" "**" = "**", ".*" absorbs "*" and "**" on either
 * side, and "**" then "*" is ".*" (any string splits at its last '/').
 * TOK_BYTE (0) when they stay two. */
static enum tok_kind merged(enum tok_kind a, enum tok_kind b)
{
	if (a < TOK_STAR || b < TOK_STAR)
		return TOK_BYTE;
	if (a == b)
		return a;
	if (a == TOK_ANY || b == TOK_ANY || (a == TOK_DIRS && b == TOK_STAR))
		return TOK_ANY;
	return TOK_BYTE; /* "*" then "**": no slash, or ends with one */
}

/* Append a token, merged into the ones before it when that means the
 * same: a run of wildcards is at most two tokens, so however many "**"
 * a line has, the matcher keeps few states alive at once. */
static void push_tok(struct pattern *pt, enum tok_kind kind, unsigned char b,
                     uint32_t set)
{
	enum tok_kind m;

	while (pt->ntoks &&
	       (m = merged((enum tok_kind)pt->toks[pt->ntoks - 1].kind,
	                   kind)) != TOK_BYTE) {
		kind = m;
		pt->ntoks--;
	}
	pt->toks[pt->ntoks].kind = (unsigned char)kind;
	pt->toks[pt->ntoks].byte = b;
	pt->toks[pt->ntoks].set = set;
	pt->ntoks++;
}

/* A cleaned pattern into tokens: '*' and '?' never cross '/', "**"
 * matches any number of directories, '\\' quotes the next byte. */
static int compile(struct pattern *pt, const char *p, te_error *err)
{
	size_t i = 0, n = strlen(p), nclass = 1, k;

	for (k = 0; k < n; k++)
		nclass += p[k] == '[';
	pt->toks = calloc(n + 1, sizeof(*pt->toks));
	pt->sets = calloc(nclass, sizeof(*pt->sets));
	if (!pt->toks || !pt->sets)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	while (i < n) {
		char ch = p[i++];

		if (ch == '*' && i < n && p[i] == '*') {
			i++;
			if (i < n && p[i] == '/')
				i++;
			push_tok(pt, i >= n ? TOK_ANY : TOK_DIRS, 0, 0);
		} else if (ch == '*') {
			push_tok(pt, TOK_STAR, 0, 0);
		} else if (ch == '?') {
			push_tok(pt, TOK_ONE, 0, 0);
		} else if (ch == '[') {
			if (!parse_class(pt->sets[pt->nsets], p, n, &i))
				return te_error_set(
				    err, TE_EINVALID,
				    ".dockerignore: syntax error "
				    "in pattern \"%.200s\"",
				    p);
			push_tok(pt, TOK_CLASS, 0, (uint32_t)pt->nsets++);
		} else if (ch == '\\' && i < n) {
			push_tok(pt, TOK_BYTE, (unsigned char)p[i++], 0);
		} else {
			push_tok(pt, TOK_BYTE, (unsigned char)ch, 0);
		}
	}
	return 0;
}

void te_ignore_free(te_ignore *ig)
{
	size_t i;

	if (!ig)
		return;
	for (i = 0; i < ig->count; i++) {
		free(ig->items[i].toks);
		free(ig->items[i].sets);
	}
	free(ig->items);
	free(ig);
}

static int add_pattern(te_ignore *ig, size_t *cap, const char *line, size_t len,
                       te_error *err)
{
	struct pattern *items;
	bool invert = false;
	char *clean = NULL;
	const char *p;
	int rc;

	if (len && line[0] == '!') {
		invert = true;
		line++;
		len--;
		while (len && (*line == ' ' || *line == '\t')) {
			line++;
			len--;
		}
		while (len && (line[len - 1] == ' ' || line[len - 1] == '\t'))
			len--;
		if (!len)
			return te_error_set(err, TE_EINVALID,
			                    ".dockerignore: illegal exclusion "
			                    "pattern: \"!\"");
	}
	if (len > TE_IGNORE_MAX_LINE)
		return te_error_set(err, TE_EINVALID,
		                    ".dockerignore: a pattern is longer than "
		                    "%d bytes",
		                    TE_IGNORE_MAX_LINE);
	if (ig->count >= TE_IGNORE_MAX_PATTERNS)
		return te_error_set(err, TE_EINVALID,
		                    ".dockerignore: more than %d patterns",
		                    TE_IGNORE_MAX_PATTERNS);
	clean = clean_path(line, len, err);
	if (!clean)
		return TE_ENOMEM;
	p = clean;
	if (p[0] == '/' && p[1])
		p++;
	if (ig->count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		items = realloc(ig->items, ncap * sizeof(*items));
		if (!items) {
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
			goto done;
		}
		ig->items = items;
		*cap = ncap;
	}
	memset(&ig->items[ig->count], 0, sizeof(ig->items[ig->count]));
	ig->items[ig->count].exclusion = invert;
	/* counted first, so te_ignore_free frees a half-built pattern */
	ig->count++;
	rc = compile(&ig->items[ig->count - 1], p, err);
	if (rc < 0)
		goto done;
	if (ig->items[ig->count - 1].ntoks > ig->max_toks)
		ig->max_toks = ig->items[ig->count - 1].ntoks;
done:
	free(clean);
	return rc;
}

int te_ignore_parse(te_ignore **out, const char *data, size_t len,
                    te_error *err)
{
	te_ignore *ig = NULL;
	size_t pos = 0, cap = 0;
	int rc = 0;

	*out = NULL;
	if (len > TE_IGNORE_MAX_SIZE)
		return te_error_set(err, TE_EINVALID,
		                    ".dockerignore larger than the 1 MiB "
		                    "limit");
	if (memchr(data, '\0', len))
		return te_error_set(err, TE_EINVALID,
		                    ".dockerignore contains a NUL byte");
	ig = calloc(1, sizeof(*ig));
	if (!ig)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if (len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3))
		pos = 3;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - data) : len;
		const char *l = data + pos;
		size_t n = end - pos;

		pos = end + 1;
		if (n && l[0] == '#')
			continue;
		/* strings.TrimSpace */
		while (n && strchr(" \t\r\v\f", *l)) {
			l++;
			n--;
		}
		while (n && strchr(" \t\r\v\f", l[n - 1]))
			n--;
		if (!n)
			continue;
		rc = add_pattern(ig, &cap, l, n, err);
		if (rc < 0)
			goto done;
	}
	*out = ig;
	ig = NULL;
done:
	te_ignore_free(ig);
	return rc;
}

/*
 * The matcher's states, a Thompson NFA: state 2i is "before token i"
 * (2 * ntoks: the pattern is done), 2i+1 "inside the directories of
 * the "**" token i".  Each step keeps the list of live states, so its
 * cost is what is alive (one or two for ordinary patterns), never the
 * pattern's length; the flags dedupe.
 */
struct nfa {
	unsigned char *flag, *next_flag;
	size_t *live, *next_live;
	size_t nlive, next_nlive;
};

/* Make state s live in the next list, with what it reaches without a
 * byte: a wildcard may match nothing, "**" may start its directories
 * (merged runs make this chain at most a few states long). */
static void add_state(const struct pattern *pt, unsigned char *flag,
                      size_t *live, size_t *nlive, size_t s)
{
	const struct tok *k;

	if (flag[s])
		return;
	flag[s] = 1;
	live[(*nlive)++] = s;
	if (s % 2 || s / 2 == pt->ntoks)
		return;
	k = &pt->toks[s / 2];
	if (k->kind == TOK_DIRS)
		add_state(pt, flag, live, nlive, s + 1);
	if (k->kind >= TOK_STAR)
		add_state(pt, flag, live, nlive, s + 2);
}

static bool tok_takes(const struct pattern *pt, const struct tok *k,
                      unsigned char c)
{
	switch ((enum tok_kind)k->kind) {
	case TOK_BYTE:
		return c == k->byte;
	case TOK_ONE:
		return c != '/';
	case TOK_CLASS:
		return (pt->sets[k->set][c >> 3] >> (c & 7)) & 1;
	case TOK_STAR: /* these consume by staying, next_state() */
	case TOK_DIRS:
	case TOK_ANY:
		break;
	}
	return false;
}

/* Where state s goes on byte c: the state it moves to, or SIZE_MAX. */
static size_t next_state(const struct pattern *pt, size_t s, unsigned char c,
                         size_t *also)
{
	const struct tok *k;

	*also = SIZE_MAX;
	if (s / 2 == pt->ntoks)
		return SIZE_MAX; /* done: takes no more bytes */
	k = &pt->toks[s / 2];
	if (s % 2) { /* inside "**": any byte stays, '/' may also end it */
		if (c == '/')
			*also = s + 1;
		return s;
	}
	if (tok_takes(pt, k, c))
		return s + 2;
	if ((k->kind == TOK_STAR && c != '/') || k->kind == TOK_ANY)
		return s;
	return SIZE_MAX;
}

/* Consume byte c; *steps counts the live states looked at. */
static void step(const struct pattern *pt, struct nfa *m, unsigned char c,
                 size_t *steps)
{
	size_t i, to, also;
	unsigned char *f;
	size_t *l;

	*steps += m->nlive;
	m->next_nlive = 0;
	for (i = 0; i < m->nlive; i++) {
		to = next_state(pt, m->live[i], c, &also);
		if (to != SIZE_MAX)
			add_state(pt, m->next_flag, m->next_live,
			          &m->next_nlive, to);
		if (also != SIZE_MAX)
			add_state(pt, m->next_flag, m->next_live,
			          &m->next_nlive, also);
	}
	for (i = 0; i < m->nlive; i++)
		m->flag[m->live[i]] = 0;
	f = m->flag, m->flag = m->next_flag, m->next_flag = f;
	l = m->live, m->live = m->next_live, m->next_live = l;
	m->nlive = m->next_nlive;
}

/*
 * Does the pattern match path or one of its parent directories
 * (MatchesOrParentMatches)?  One pass over the path: the pattern matches
 * the prefix path[0..j) when it is done after j bytes, and that prefix is
 * the path or a directory of it when path[j] is '/' or the end (j > 0:
 * the empty prefix of a rooted path is not a directory).
 * 1 match, 0 not, -1 when *steps passed TE_IGNORE_MAX_STEPS.
 */
static int pattern_match(const struct pattern *pt, const char *path,
                         struct nfa *m, size_t *steps)
{
	size_t j, i;
	int rc = 0;

	m->nlive = 0;
	add_state(pt, m->flag, m->live, &m->nlive, 0);
	for (j = 0; m->nlive; j++) {
		if (j > 0 && m->flag[2 * pt->ntoks] &&
		    (!path[j] || path[j] == '/')) {
			rc = 1;
			break;
		}
		if (!path[j])
			break;
		if (*steps > TE_IGNORE_MAX_STEPS) {
			rc = -1;
			break;
		}
		step(pt, m, (unsigned char)path[j], steps);
	}
	for (i = 0; i < m->nlive; i++)
		m->flag[m->live[i]] = 0;
	return rc;
}

int te_ignore_check(bool *excluded, const te_ignore *ig, const char *path,
                    te_error *err)
{
	struct nfa m = {NULL, NULL, NULL, NULL, 0, 0};
	char *file = NULL;
	size_t i, n, steps = 0;
	int rc = 0, hit;

	*excluded = false;
	if (!ig || !path || !ig->count || strlen(path) > TE_IGNORE_MAX_PATH)
		return 0;
	file = clean_path(path, strlen(path), err);
	if (!file)
		return TE_ENOMEM;
	n = 2 * ig->max_toks + 2;
	m.flag = calloc(n, 1);
	m.next_flag = calloc(n, 1);
	m.live = calloc(n, sizeof(*m.live));
	m.next_live = calloc(n, sizeof(*m.live));
	if (!m.flag || !m.next_flag || !m.live || !m.next_live) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < ig->count; i++) {
		const struct pattern *p = &ig->items[i];

		/* only a rule that can flip the result is worth testing */
		if (p->exclusion != *excluded)
			continue;
		hit = pattern_match(p, file, &m, &steps);
		if (hit < 0) {
			*excluded = false;
			rc = te_error_set(err, TE_EINVALID,
			                  ".dockerignore: matching a path "
			                  "takes more than %d steps",
			                  TE_IGNORE_MAX_STEPS);
			goto done;
		}
		if (hit)
			*excluded = !p->exclusion;
	}
done:
	free(m.flag);
	free(m.next_flag);
	free(m.live);
	free(m.next_live);
	free(file);
	return rc;
}

bool te_ignore_match(const te_ignore *ig, const char *path)
{
	te_error err = TE_ERROR_INIT;
	bool excluded = false;

	return te_ignore_check(&excluded, ig, path, &err) == 0 && excluded;
}
