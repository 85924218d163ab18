/*
 * dockerfile.c - what a Dockerfile build reads (see dockerfile.h).
 *
 * Parsing keeps only the instructions that decide inputs: FROM, ARG, ENV
 * (its keys), COPY, ADD and RUN (its --mount flags).  Words are stored raw
 * (quotes kept) and expanded per te_dockerfile_inputs call, because build
 * args change the result.
 *
 * Expansion is conservative.  A variable has one of three states: set,
 * unset (declared ARG without value: "" like Docker) or unknown (ENV, the
 * base image's environment, anything undeclared, unsupported ${x#y}
 * forms).  An unknown variable is left in the text as written, so a
 * COPY source holding one widens the sources to "." (the whole context)
 * and a FROM holding one keeps its "$" for the caller to see.
 */
#include "tagexport/dockerfile.h"
#include "tagexport/hex.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strmap_int.h"

#define DF_MAX_SIZE TE_DOCKERFILE_MAX_SIZE
#define DF_MAX_STAGES TE_DOCKERFILE_MAX_STAGES
#define DF_MAX_WORD TE_DOCKERFILE_MAX_WORD
#define DF_MAX_EXPAND_DEPTH 8

enum instr_kind { I_ARG, I_ENV, I_COPY, I_ADD, I_RUN };

struct instr {
	enum instr_kind kind;
	int line;
	te_strvec flags; /* leading "--x[=v]" words */
	te_strvec words; /* remaining words, raw */
};

struct stage {
	char *base;     /* FROM image, raw */
	char *name;     /* AS alias, lowercased, or NULL */
	char *platform; /* --platform value, raw, or NULL */
	int line;
	struct instr *instrs;
	size_t ninstrs;
	size_t cap;
};

struct te_dockerfile {
	char escape;
	/* Every instruction as written, in order (te_dockerfile_step). */
	te_strvec step_texts;
	te_strvec step_keywords;
	long *step_stages; /* stage index; -1 before the first FROM */
	size_t steps_cap;
	size_t ninstrs; /* in all stages, TE_DOCKERFILE_MAX_INSTRUCTIONS */
	te_strvec global_args; /* "NAME" or "NAME=default", raw */
	struct stage *stages;
	size_t nstages;
	size_t cap;
};

/* The code a failed helper left in err (allocation failures included). */
static int err_code(const te_error *err)
{
	return err && err->code != TE_OK ? err->code : TE_ENOMEM;
}

/* ---- lexical helpers ------------------------------------------------ */

struct line {
	const char *p;
	size_t len;
};

static bool is_blank(const struct line *l)
{
	size_t i;

	for (i = 0; i < l->len; i++)
		if (!isspace((unsigned char)l->p[i]))
			return false;
	return true;
}

static bool is_comment(const struct line *l)
{
	size_t i = 0;

	while (i < l->len && isspace((unsigned char)l->p[i]))
		i++;
	return i < l->len && l->p[i] == '#';
}

/* Splits data into lines without "\n" and a trailing "\r". */
static int split_lines(struct line **out, size_t *n, const char *data,
                       size_t len, te_error *err)
{
	struct line *lines;
	size_t count = 1, i, k = 0, start = 0;

	for (i = 0; i < len; i++)
		if (data[i] == '\n')
			count++;
	lines = calloc(count, sizeof(*lines));
	if (!lines)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i <= len; i++) {
		if (i == len || data[i] == '\n') {
			lines[k].p = data + start;
			lines[k].len = i - start;
			if (lines[k].len &&
			    lines[k].p[lines[k].len - 1] == '\r')
				lines[k].len--;
			k++;
			start = i + 1;
		}
	}
	*out = lines;
	*n = k;
	return 0;
}

/*
 * Shell-ish word splitting: whitespace separates words except inside
 * quotes or after the escape character.  Quotes stay in the words (they
 * are removed by expand()).
 */
static int split_words(te_strvec *out, const char *s, size_t len, char esc,
                       te_error *err)
{
	size_t i = 0, start;
	char q;
	int rc;

	for (;;) {
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		if (i >= len)
			return 0;
		start = i;
		q = 0;
		while (i < len) {
			char ch = s[i];
			if (q) {
				if (ch == q)
					q = 0;
				else if (ch == esc && q == '"' && i + 1 < len)
					i++;
			} else if (ch == '"' || ch == '\'') {
				q = ch;
			} else if (ch == esc && i + 1 < len) {
				i++;
			} else if (isspace((unsigned char)ch)) {
				break;
			}
			i++;
		}
		if (i - start > DF_MAX_WORD)
			return te_error_set(
			    err, TE_EINVALID,
			    "dockerfile word longer than %d bytes",
			    DF_MAX_WORD);
		rc = te_strvec_push_owned(out, strndup(s + start, i - start),
		                          err);
		if (rc < 0)
			return rc;
	}
}

static int put_utf8(te_buf *b, unsigned cp, te_error *err)
{
	char u[3];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	}
	return te_buf_put(b, u, n, err);
}

/* One JSON string starting after its opening quote; *i moves past the
 * closing quote.  1 = parsed, 0 = not JSON, < 0 = error. */
static int json_string(te_buf *b, const char *s, size_t len, size_t *i,
                       te_error *err)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	unsigned cp;
	int rc, k, h;

	te_buf_clear(b);
	while (*i < len && s[*i] != '"') {
		char ch = s[(*i)++];
		const char *esc;

		if ((unsigned char)ch < 0x20)
			return 0;
		if (ch != '\\') {
			rc = te_buf_put(b, &ch, 1, err);
		} else if (*i < len && s[*i] == 'u') {
			(*i)++;
			if (len - *i < 4)
				return 0;
			for (cp = 0, k = 0; k < 4; k++) {
				h = te_hex_digit(s[*i + (size_t)k]);
				if (h < 0)
					return 0;
				cp = cp * 16 + (unsigned)h;
			}
			*i += 4;
			if (cp == 0)
				return 0;
			rc = put_utf8(b, cp, err);
		} else {
			if (*i >= len || !s[*i])
				return 0;
			esc = strchr(from, s[(*i)++]);
			if (!esc)
				return 0;
			rc = te_buf_put(b, &to[esc - from], 1, err);
		}
		if (rc < 0)
			return rc;
	}
	if (*i >= len)
		return 0;
	(*i)++;
	return 1;
}

static void skip_ws(const char *s, size_t len, size_t *i)
{
	while (*i < len && isspace((unsigned char)s[*i]))
		(*i)++;
}

/* JSON array of strings (the exec form): 1 and the strings appended to
 * out if s is one, 0 and out untouched if it is not. */
static int parse_json_array(te_strvec *out, const char *s, size_t len,
                            te_error *err)
{
	te_buf b = TE_BUF_INIT(DF_MAX_WORD);
	te_strvec words = TE_STRVEC_INIT;
	size_t i = 0, k;
	int rc = 0;

	skip_ws(s, len, &i);
	if (i >= len || s[i++] != '[')
		goto done;
	skip_ws(s, len, &i);
	if (i < len && s[i] == ']') {
		i++;
	} else {
		for (;;) {
			skip_ws(s, len, &i);
			if (i >= len || s[i++] != '"')
				goto done;
			rc = json_string(&b, s, len, &i, err);
			if (rc <= 0)
				goto done;
			rc = te_strvec_push(&words, b.ptr, err);
			if (rc < 0)
				goto done;
			skip_ws(s, len, &i);
			if (i < len && s[i] == ',') {
				i++;
				continue;
			}
			if (i >= len || s[i++] != ']')
				goto done;
			break;
		}
	}
	skip_ws(s, len, &i);
	if (i != len)
		goto done;
	for (k = 0; k < words.count; k++) {
		rc = te_strvec_push(out, words.items[k], err);
		if (rc < 0)
			goto done;
	}
	rc = 1;
done:
	te_buf_dispose(&b);
	te_strvec_dispose(&words);
	return rc;
}

/* ---- variables and expansion ---------------------------------------- */

enum var_state { V_SET, V_UNSET, V_UNKNOWN };

struct var {
	char *name;
	char *value; /* V_SET only */
	enum var_state state;
};

struct env {
	struct var *vars;
	size_t count;
	size_t cap;
	struct te_strmap index; /* name -> its latest definition in vars */
	size_t *spent; /* bytes expanded so far, shared by all scopes */
};

#define ENV_INIT(spent)                                                        \
	{                                                                      \
		NULL, 0, 0, {NULL, 0, 0}, (spent)                              \
	}

static void env_dispose(struct env *e)
{
	size_t i;

	for (i = 0; i < e->count; i++) {
		free(e->vars[i].name);
		free(e->vars[i].value);
	}
	free(e->vars);
	e->vars = NULL;
	e->count = e->cap = 0;
	te_strmap_dispose(&e->index);
}

/* Latest definition wins; NULL when the name was never declared.  A hash
 * lookup: a Dockerfile may reference variables hundreds of thousands of
 * times. */
static const struct var *env_find(const struct env *e, const char *name,
                                  size_t nlen)
{
	const struct te_strmap_ent *ent = te_strmap_find(&e->index, name, nlen);

	return ent ? &e->vars[ent->value] : NULL;
}

static int env_set(struct env *e, const char *name, size_t nlen,
                   enum var_state state, const char *value, te_error *err)
{
	struct var *vars;
	struct var v = {NULL, NULL, state};
	size_t cap;

	v.name = strndup(name, nlen);
	if (!v.name)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if (state == V_SET) {
		v.value = strdup(value);
		if (!v.value) {
			free(v.name);
			return te_error_set(err, TE_ENOMEM, "out of memory");
		}
	}
	if (e->count == e->cap) {
		cap = e->cap ? e->cap * 2 : 16;
		vars = realloc(e->vars, cap * sizeof(*vars));
		if (!vars) {
			free(v.name);
			free(v.value);
			return te_error_set(err, TE_ENOMEM, "out of memory");
		}
		e->vars = vars;
		e->cap = cap;
	}
	e->vars[e->count++] = v;
	return te_strmap_put(&e->index, v.name, nlen, e->count - 1, NULL, err);
}

static const char *build_arg(const char *const *args, size_t nargs,
                             const char *name, size_t nlen)
{
	size_t i = nargs;

	while (i-- > 0) {
		const char *a = args[i];
		if (a && !strncmp(a, name, nlen) && a[nlen] == '=')
			return a + nlen + 1;
	}
	return NULL;
}

struct expander {
	const struct env *env;
	char esc;
	bool unresolved;
	te_error *err;
};

static int expand_into(struct expander *x, te_buf *out, const char *s,
                       size_t len, int depth, bool quotes);

static bool name_start(char c)
{
	return isalpha((unsigned char)c) || c == '_';
}

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* s points at '$'; consumes a variable reference, returns its length. */
static int expand_var(struct expander *x, te_buf *out, const char *s,
                      size_t len, size_t *used, int depth)
{
	const struct var *v;
	size_t i = 1, nstart, nlen, end, level;
	const char *op = NULL, *word = NULL;
	size_t oplen = 0, wlen = 0;
	bool set, nonempty;

	if (len > 1 && name_start(s[1])) {
		nstart = 1;
		while (i < len && name_char(s[i]))
			i++;
		nlen = i - nstart;
		*used = i;
		v = env_find(x->env, s + nstart, nlen);
		if (!v || v->state == V_UNKNOWN) {
			x->unresolved = true;
			return te_buf_put(out, s, i, x->err);
		}
		return v->state == V_SET ? te_buf_puts(out, v->value, x->err)
		                         : 0;
	}
	if (len < 2 || s[1] != '{') {
		*used = 1;
		return te_buf_put(out, "$", 1, x->err);
	}
	/* ${...}: find the matching brace */
	level = 1;
	for (end = 2; end < len; end++) {
		if (s[end] == x->esc && end + 1 < len) {
			end++;
			continue;
		}
		if (s[end] == '{')
			level++;
		else if (s[end] == '}' && --level == 0)
			break;
	}
	if (end >= len) {
		/* unterminated: keep as text, flag it */
		*used = len;
		x->unresolved = true;
		return te_buf_put(out, s, len, x->err);
	}
	*used = end + 1;
	nstart = 2;
	i = nstart;
	if (i < end && name_start(s[i]))
		while (i < end && name_char(s[i]))
			i++;
	nlen = i - nstart;
	if (i < end) {
		op = s + i;
		if (*op == ':' && i + 1 < end &&
		    (op[1] == '-' || op[1] == '+' || op[1] == '?'))
			oplen = 2;
		else if (*op == '-' || *op == '+' || *op == '?')
			oplen = 1;
		word = op + oplen;
		wlen = (size_t)(s + end - word);
	}
	if (nlen == 0 || (op && oplen == 0)) {
		x->unresolved = true;
		return te_buf_put(out, s, end + 1, x->err);
	}
	v = env_find(x->env, s + nstart, nlen);
	if (!v || v->state == V_UNKNOWN) {
		x->unresolved = true;
		return te_buf_put(out, s, end + 1, x->err);
	}
	set = v->state == V_SET;
	nonempty = set && *v->value;
	if (!op)
		return set ? te_buf_puts(out, v->value, x->err) : 0;
	if (op[oplen - 1] == '-') {
		if (oplen == 2 ? nonempty : set)
			return te_buf_puts(out, v->value, x->err);
		return expand_into(x, out, word, wlen, depth + 1, false);
	}
	if (op[oplen - 1] == '+') {
		if (oplen == 2 ? nonempty : set)
			return expand_into(x, out, word, wlen, depth + 1,
			                   false);
		return 0;
	}
	/* '?': Docker fails the build when unset; we cannot know more */
	if (oplen == 2 ? nonempty : set)
		return te_buf_puts(out, v->value, x->err);
	x->unresolved = true;
	return te_buf_put(out, s, end + 1, x->err);
}

/* Shell word processing: quotes, the escape character and variables. */
static int expand_into(struct expander *x, te_buf *out, const char *s,
                       size_t len, int depth, bool quotes)
{
	size_t i = 0, used;
	bool dq = false;
	int rc = 0;

	if (depth > DF_MAX_EXPAND_DEPTH) {
		x->unresolved = true;
		return te_buf_put(out, s, len, x->err);
	}
	while (i < len && rc == 0) {
		char ch = s[i];

		if (quotes && !dq && ch == '\'') {
			const char *q = memchr(s + i + 1, '\'', len - i - 1);
			size_t n = q ? (size_t)(q - s) - i - 1 : len - i - 1;
			rc = te_buf_put(out, s + i + 1, n, x->err);
			i += n + 2;
		} else if (quotes && ch == '"') {
			dq = !dq;
			i++;
		} else if (ch == x->esc && i + 1 < len) {
			char nx = s[i + 1];
			if (dq && nx != '$' && nx != '"' && nx != x->esc)
				rc = te_buf_put(out, s + i, 2, x->err);
			else if (nx == '$')
				/* a literal '$' is still a '$' for callers */
				rc = te_buf_put(out, "$", 1, x->err);
			else
				rc = te_buf_put(out, &nx, 1, x->err);
			i += 2;
		} else if (ch == '$') {
			rc = expand_var(x, out, s + i, len - i, &used, depth);
			i += used;
		} else {
			rc = te_buf_put(out, &ch, 1, x->err);
			i++;
		}
	}
	return rc;
}

/* Expands word into a new string; *unresolved tells if some variable
 * could not be resolved. */
static char *expand(const struct env *env, char esc, const char *word,
                    bool *unresolved, te_error *err)
{
	te_buf b = TE_BUF_INIT(DF_MAX_WORD);
	struct expander x = {env, esc, false, err};
	char *s;

	if (expand_into(&x, &b, word, strlen(word), 0, true) < 0) {
		te_buf_dispose(&b);
		return NULL;
	}
	/* Each word is bounded (DF_MAX_WORD); so is their sum, or a big
	 * ARG referenced a hundred thousand times costs gigabytes. */
	if (env->spent &&
	    (*env->spent += b.len) > TE_DOCKERFILE_MAX_EXPANSION) {
		te_buf_dispose(&b);
		te_error_set(err, TE_EINVALID,
		             "dockerfile: variable expansion produces more "
		             "than %d bytes",
		             TE_DOCKERFILE_MAX_EXPANSION);
		return NULL;
	}
	s = te_buf_detach(&b);
	if (!s)
		te_error_set(err, TE_ENOMEM, "out of memory");
	*unresolved = x.unresolved;
	return s;
}

/* ---- parsing --------------------------------------------------------- */

static void instr_dispose(struct instr *in)
{
	te_strvec_dispose(&in->flags);
	te_strvec_dispose(&in->words);
}

static void stage_dispose(struct stage *st)
{
	size_t i;

	free(st->base);
	free(st->name);
	free(st->platform);
	for (i = 0; i < st->ninstrs; i++)
		instr_dispose(&st->instrs[i]);
	free(st->instrs);
}

void te_dockerfile_free(te_dockerfile *df)
{
	size_t i;

	if (!df)
		return;
	te_strvec_dispose(&df->global_args);
	te_strvec_dispose(&df->step_texts);
	te_strvec_dispose(&df->step_keywords);
	free(df->step_stages);
	for (i = 0; i < df->nstages; i++)
		stage_dispose(&df->stages[i]);
	free(df->stages);
	free(df);
}

static bool is_heredoc_word(const char *w)
{
	while (isdigit((unsigned char)*w))
		w++;
	if (strncmp(w, "<<", 2))
		return false;
	w += 2;
	if (*w == '-')
		w++;
	return *w && !strchr(w, '<');
}

/* Heredoc delimiter of a "<<[-]WORD" word, quotes removed. */
static char *heredoc_name(const char *w, bool *chomp, te_error *err)
{
	size_t n;
	char *s;

	while (isdigit((unsigned char)*w))
		w++;
	w += 2;
	*chomp = *w == '-';
	if (*chomp)
		w++;
	n = strlen(w);
	if (n >= 2 && (w[0] == '"' || w[0] == '\'') && w[n - 1] == w[0]) {
		w++;
		n -= 2;
	}
	s = strndup(w, n);
	if (!s)
		te_error_set(err, TE_ENOMEM, "out of memory");
	return s;
}

/* Skips the bodies of the heredocs that words open; *idx is the index of
 * the line after the instruction and is moved past the bodies. */
static int skip_heredocs(const te_strvec *words, const struct line *lines,
                         size_t nlines, size_t *idx, int line, te_error *err)
{
	size_t w;

	for (w = 0; w < words->count; w++) {
		char *name;
		bool chomp, found = false;

		if (!is_heredoc_word(words->items[w]))
			continue;
		name = heredoc_name(words->items[w], &chomp, err);
		if (!name)
			return err_code(err);
		while (*idx < nlines && !found) {
			const struct line *l = &lines[(*idx)++];
			size_t off = 0;

			if (chomp)
				while (off < l->len && l->p[off] == '\t')
					off++;
			found = l->len - off == strlen(name) &&
			        !memcmp(l->p + off, name, l->len - off);
		}
		free(name);
		if (!found)
			return te_error_set(err, TE_EINVALID,
			                    "dockerfile:%d: unterminated "
			                    "heredoc",
			                    line);
	}
	return 0;
}

static int parse_directive(struct te_dockerfile *df, const struct line *l,
                           bool *seen_escape, te_error *err)
{
	size_t i = 1, ks, ke, vs, ve;

	while (i < l->len && isspace((unsigned char)l->p[i]))
		i++;
	ks = i;
	if (i >= l->len || !isalpha((unsigned char)l->p[i]))
		return 0;
	while (i < l->len && isalnum((unsigned char)l->p[i]))
		i++;
	ke = i;
	while (i < l->len && isspace((unsigned char)l->p[i]))
		i++;
	if (i >= l->len || l->p[i] != '=')
		return 0;
	i++;
	while (i < l->len && isspace((unsigned char)l->p[i]))
		i++;
	vs = i;
	ve = l->len;
	while (ve > vs && isspace((unsigned char)l->p[ve - 1]))
		ve--;
	if (ve == vs)
		return 0;
	if (ke - ks != 6 || strncasecmp(l->p + ks, "escape", 6))
		return 1;
	if (*seen_escape)
		return te_error_set(err, TE_EINVALID,
		                    "dockerfile: only one escape parser "
		                    "directive can be used");
	*seen_escape = true;
	if (ve - vs != 1 || (l->p[vs] != '\\' && l->p[vs] != '`'))
		return te_error_set(err, TE_EINVALID,
		                    "dockerfile: invalid escape token '%.*s' "
		                    "does not match ` or \\",
		                    (int)(ve - vs > 16 ? 16 : ve - vs),
		                    l->p + vs);
	df->escape = l->p[vs];
	return 1;
}

/* Joins continuation lines into one logical line; *idx moves past them. */
static int logical_line(te_buf *out, const struct line *lines, size_t nlines,
                        size_t *idx, char esc, te_error *err)
{
	bool first = true;
	int rc;

	te_buf_clear(out);
	while (*idx < nlines) {
		const struct line *l = &lines[(*idx)++];
		size_t n = l->len;

		if (!first && (is_blank(l) || is_comment(l)))
			continue;
		first = false;
		while (n > 0 && (l->p[n - 1] == ' ' || l->p[n - 1] == '\t'))
			n--;
		if (n > 0 && l->p[n - 1] == esc) {
			rc = te_buf_put(out, l->p, n - 1, err);
			if (rc < 0)
				return rc;
			continue;
		}
		return te_buf_put(out, l->p, l->len, err);
	}
	return 0;
}

static int new_instr(struct stage *st, enum instr_kind kind, int line,
                     struct instr **out, te_error *err)
{
	struct instr *items;
	size_t cap;

	if (st->ninstrs == st->cap) {
		cap = st->cap ? st->cap * 2 : 8;
		items = realloc(st->instrs, cap * sizeof(*items));
		if (!items)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		st->instrs = items;
		st->cap = cap;
	}
	*out = &st->instrs[st->ninstrs++];
	memset(*out, 0, sizeof(**out));
	(*out)->kind = kind;
	(*out)->line = line;
	return 0;
}

static int parse_from(struct te_dockerfile *df, const te_strvec *words,
                      int line, te_error *err)
{
	struct stage *st, *items;
	size_t i = 0, cap, n;

	if (df->nstages >= DF_MAX_STAGES)
		return te_error_set(err, TE_EINVALID,
		                    "dockerfile:%d: more than %d stages", line,
		                    DF_MAX_STAGES);
	if (df->nstages == df->cap) {
		cap = df->cap ? df->cap * 2 : 4;
		items = realloc(df->stages, cap * sizeof(*items));
		if (!items)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		df->stages = items;
		df->cap = cap;
	}
	st = &df->stages[df->nstages++];
	memset(st, 0, sizeof(*st));
	st->line = line;
	for (; i < words->count && !strncmp(words->items[i], "--", 2); i++) {
		if (!strncmp(words->items[i], "--platform=", 11)) {
			free(st->platform);
			st->platform = te_strdup(words->items[i] + 11, err);
			if (!st->platform)
				return err_code(err);
		}
	}
	n = words->count - i;
	if (n != 1 && !(n == 3 && !strcasecmp(words->items[i + 1], "as")))
		return te_error_set(err, TE_EINVALID,
		                    "dockerfile:%d: FROM requires either one "
		                    "or three arguments",
		                    line);
	st->base = te_strdup(words->items[i], err);
	if (!st->base)
		return err_code(err);
	if (n == 3) {
		char *p;
		st->name = te_strdup(words->items[i + 2], err);
		if (!st->name)
			return err_code(err);
		for (p = st->name; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	return 0;
}

static const char *const known_instructions[] = {
    "from",       "run",         "cmd",     "label", "maintainer",
    "expose",     "env",         "add",     "copy",  "entrypoint",
    "volume",     "user",        "workdir", "arg",   "onbuild",
    "stopsignal", "healthcheck", "shell",   NULL};

/* COPY/ADD operands after the flags (words[first...]): exec (JSON) form
 * or shell form; the last one is the destination. */
static int copy_words(struct instr *in, const te_strvec *words, size_t first,
                      const char *rest, te_error *err)
{
	const char *p = rest;
	size_t f, i;
	int rc;

	for (f = 0; f < in->flags.count; f++) {
		while (isspace((unsigned char)*p))
			p++;
		p += strlen(in->flags.items[f]);
	}
	rc = parse_json_array(&in->words, p, strlen(p), err);
	if (rc < 0)
		return rc;
	for (i = first; rc == 0 && i < words->count; i++) {
		rc = te_strvec_push(&in->words, words->items[i], err);
		if (rc < 0)
			return rc;
	}
	if (in->words.count < 2)
		return te_error_set(err, TE_EINVALID,
		                    "dockerfile:%d: %s requires at least two "
		                    "arguments",
		                    in->line,
		                    in->kind == I_COPY ? "COPY" : "ADD");
	return 0;
}

/* Only the keys of ENV matter: "ENV K V" or "ENV K=V K2=V2". */
static int env_keys(struct instr *in, const te_strvec *words, te_error *err)
{
	size_t i;
	int rc;

	for (i = 0; i < words->count; i++) {
		const char *eq = strchr(words->items[i], '=');

		if (!eq) {
			if (i == 0)
				return te_strvec_push(&in->words,
				                      words->items[0], err);
			continue;
		}
		rc = te_strvec_pushf(&in->words, err, "%.*s",
		                     (int)(eq - words->items[i]),
		                     words->items[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int parse_instruction(struct te_dockerfile *df, const char *cmd,
                             const te_strvec *words, const char *rest, int line,
                             te_error *err)
{
	struct stage *st = df->nstages ? &df->stages[df->nstages - 1] : NULL;
	struct instr *in = NULL;
	enum instr_kind kind;
	size_t i;
	int rc;

	if (++df->ninstrs > TE_DOCKERFILE_MAX_INSTRUCTIONS)
		return te_error_set(err, TE_EINVALID,
		                    "dockerfile:%d: more than %d instructions",
		                    line, TE_DOCKERFILE_MAX_INSTRUCTIONS);
	for (i = 0; known_instructions[i]; i++)
		if (!strcmp(cmd, known_instructions[i]))
			break;
	if (!known_instructions[i])
		return te_error_set(err, TE_EINVALID,
		                    "dockerfile:%d: unknown instruction: %s",
		                    line, cmd);
	if (!strcmp(cmd, "from"))
		return parse_from(df, words, line, err);
	if (!strcmp(cmd, "arg")) {
		if (!words->count)
			return te_error_set(err, TE_EINVALID,
			                    "dockerfile:%d: ARG requires at "
			                    "least one argument",
			                    line);
		if (!st) {
			for (i = 0; i < words->count; i++) {
				rc = te_strvec_push(&df->global_args,
				                    words->items[i], err);
				if (rc < 0)
					return rc;
			}
			return 0;
		}
		kind = I_ARG;
	} else if (!st) {
		return te_error_set(err, TE_EINVALID,
		                    "dockerfile:%d: no build stage in current "
		                    "context (%s before FROM)",
		                    line, cmd);
	} else if (!strcmp(cmd, "env")) {
		kind = I_ENV;
	} else if (!strcmp(cmd, "copy")) {
		kind = I_COPY;
	} else if (!strcmp(cmd, "add")) {
		kind = I_ADD;
	} else if (!strcmp(cmd, "run")) {
		kind = I_RUN;
	} else {
		return 0;
	}
	rc = new_instr(st, kind, line, &in, err);
	if (rc < 0)
		return rc;
	for (i = 0; i < words->count; i++) {
		if (kind == I_ARG || kind == I_ENV ||
		    strncmp(words->items[i], "--", 2))
			break;
		rc = te_strvec_push(&in->flags, words->items[i], err);
		if (rc < 0)
			return rc;
	}
	if (kind == I_RUN)
		return 0;
	if (kind == I_COPY || kind == I_ADD)
		return copy_words(in, words, i, rest, err);
	if (kind == I_ENV)
		return env_keys(in, words, err);
	for (i = 0; i < words->count; i++) {
		rc = te_strvec_push(&in->words, words->items[i], err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Record lines[first..end) as the text of one instruction. */
static int record_step(struct te_dockerfile *df, const char *cmd,
                       const struct line *lines, size_t first, size_t end,
                       te_error *err)
{
	te_buf text = TE_BUF_INIT(DF_MAX_SIZE + DF_MAX_SIZE / 8);
	long *stages;
	size_t i;
	int rc = 0;

	if (df->step_texts.count == df->steps_cap) {
		size_t cap = df->steps_cap ? df->steps_cap * 2 : 16;

		stages = realloc(df->step_stages, cap * sizeof(*stages));
		if (!stages)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		df->step_stages = stages;
		df->steps_cap = cap;
	}
	for (i = first; rc == 0 && i < end; i++)
		if ((rc = te_buf_put(&text, lines[i].p, lines[i].len, err)) ==
		    0)
			rc = te_buf_put(&text, "\n", 1, err);
	if (rc == 0)
		rc = te_strvec_push(&df->step_texts, text.ptr, err);
	if (rc == 0 && (rc = te_strvec_push(&df->step_keywords, cmd, err)) < 0)
		te_strvec_dispose(&df->step_texts); /* counts must agree */
	if (rc == 0)
		df->step_stages[df->step_texts.count - 1] =
		    (long)df->nstages - 1;
	te_buf_dispose(&text);
	return rc;
}

static int parse_lines(struct te_dockerfile *df, const struct line *lines,
                       size_t nlines, te_error *err)
{
	te_buf logical = TE_BUF_INIT(DF_MAX_SIZE);
	te_strvec words = TE_STRVEC_INIT;
	size_t idx = 0;
	bool seen_escape = false;
	int rc = 0;

	/* parser directives: only before anything else */
	while (idx < nlines && lines[idx].len && lines[idx].p[0] == '#') {
		rc = parse_directive(df, &lines[idx], &seen_escape, err);
		if (rc < 0)
			goto done;
		if (rc == 0)
			break;
		idx++;
	}
	while (idx < nlines) {
		const struct line *l = &lines[idx];
		char cmd[16];
		const char *p;
		size_t n = 0, first = idx;
		int line = (int)idx + 1;

		if (is_blank(l) || is_comment(l)) {
			idx++;
			continue;
		}
		rc = logical_line(&logical, lines, nlines, &idx, df->escape,
		                  err);
		if (rc < 0)
			goto done;
		p = logical.ptr;
		while (isspace((unsigned char)*p))
			p++;
		while (isalpha((unsigned char)p[n]) && n < sizeof(cmd) - 1) {
			cmd[n] = (char)tolower((unsigned char)p[n]);
			n++;
		}
		cmd[n] = '\0';
		if (n == 0 || (p[n] && !isspace((unsigned char)p[n]))) {
			rc = te_error_set(err, TE_EINVALID,
			                  "dockerfile:%d: cannot parse "
			                  "instruction",
			                  line);
			goto done;
		}
		p += n;
		te_strvec_dispose(&words);
		rc = split_words(&words, p, strlen(p), df->escape, err);
		if (rc < 0)
			goto done;
		if (!strcmp(cmd, "run") || !strcmp(cmd, "copy") ||
		    !strcmp(cmd, "add")) {
			rc = skip_heredocs(&words, lines, nlines, &idx, line,
			                   err);
			if (rc < 0)
				goto done;
		}
		rc = parse_instruction(df, cmd, &words, p, line, err);
		if (rc == 0)
			rc = record_step(df, cmd, lines, first, idx, err);
		if (rc < 0)
			goto done;
	}
	if (!df->nstages)
		rc = te_error_set(err, TE_EINVALID,
		                  "dockerfile: no FROM instruction");
done:
	te_strvec_dispose(&words);
	te_buf_dispose(&logical);
	return rc;
}

int te_dockerfile_parse(te_dockerfile **out, const char *data, size_t len,
                        te_error *err)
{
	struct te_dockerfile *df = NULL;
	struct line *lines = NULL;
	size_t nlines = 0;
	int rc;

	*out = NULL;
	if (len > DF_MAX_SIZE)
		return te_error_set(err, TE_EINVALID,
		                    "dockerfile larger than the 1 MiB limit");
	if (memchr(data, '\0', len))
		return te_error_set(err, TE_EINVALID,
		                    "dockerfile contains a NUL byte");
	df = calloc(1, sizeof(*df));
	if (!df)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	df->escape = '\\';
	/* a UTF-8 byte order mark is allowed */
	if (len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3)) {
		data += 3;
		len -= 3;
	}
	rc = split_lines(&lines, &nlines, data, len, err);
	if (rc < 0)
		goto done;
	rc = parse_lines(df, lines, nlines, err);
	if (rc < 0)
		goto done;
	*out = df;
	df = NULL;
done:
	free(lines);
	te_dockerfile_free(df);
	return rc;
}

/* ---- inputs ---------------------------------------------------------- */

/* One ARG word "NAME[=default]": a build arg wins, then the default
 * (expanded in the scope so far), then the global ARG of that name (genv,
 * NULL in the global scope itself); otherwise it is declared but unset. */
static int stage_arg(struct env *env, const struct env *genv,
                     const te_dockerfile *df, const char *w,
                     const char *const *args, size_t nargs, te_error *err)
{
	const char *eq = strchr(w, '=');
	size_t nlen = eq ? (size_t)(eq - w) : strlen(w);
	const char *ba = build_arg(args, nargs, w, nlen);
	const struct var *g;
	bool unres = false;
	char *val;
	int rc;

	if (ba)
		return env_set(env, w, nlen, V_SET, ba, err);
	if (eq) {
		val = expand(env, df->escape, eq + 1, &unres, err);
		if (!val)
			return err_code(err);
		rc = env_set(env, w, nlen, unres ? V_UNKNOWN : V_SET, val, err);
		free(val);
		return rc;
	}
	g = genv ? env_find(genv, w, nlen) : NULL;
	if (g)
		return env_set(env, w, nlen, g->state, g->value, err);
	return env_set(env, w, nlen, V_UNSET, NULL, err);
}

/* Global ARG scope (genv NULL): defaults overridden by build args. */
static int global_env(struct env *env, const te_dockerfile *df,
                      const char *const *args, size_t nargs, te_error *err)
{
	size_t i;
	int rc;

	for (i = 0; i < df->global_args.count; i++) {
		rc = stage_arg(env, NULL, df, df->global_args.items[i], args,
		               nargs, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static long stage_ref(const te_dockerfile *df, const char *ref, size_t self,
                      bool earlier_only)
{
	size_t i, lim = earlier_only ? self : df->nstages;
	char *end;
	long n;

	for (i = 0; i < lim; i++)
		if (i != self && df->stages[i].name &&
		    !strcasecmp(df->stages[i].name, ref))
			return (long)i;
	if (earlier_only || !isdigit((unsigned char)ref[0]))
		return -1;
	n = strtol(ref, &end, 10);
	if (*end || n < 0 || (size_t)n >= self)
		return -1;
	return n;
}

struct collect {
	const te_dockerfile *df;
	const char *const *args;
	size_t nargs;
	const struct env *genv;
	bool *needed;
	size_t *stack;
	size_t nstack;
	te_strvec *bases;   /* NULL in the closure pass */
	te_strvec *sources; /* NULL in the closure pass */
	te_strvec *urls;
	struct te_strmap seen_bases, seen_sources, seen_urls;
	bool all;
	te_error *err;
};

static int need(struct collect *c, size_t idx)
{
	if (!c->needed[idx]) {
		c->needed[idx] = true;
		c->stack[c->nstack++] = idx;
	}
	return 0;
}

/* Push s onto v unless seen (the set indexes v's strings): COPY may
 * list a hundred thousand sources. */
static int push_unique(te_strvec *v, struct te_strmap *seen, const char *s,
                       te_error *err)
{
	size_t n = strlen(s);
	int rc;

	if (te_strmap_find(seen, s, n))
		return 0;
	rc = te_strvec_push(v, s, err);
	if (rc == 0)
		rc = te_strmap_put(seen, v->items[v->count - 1], n, 0, NULL,
		                   err);
	return rc;
}

/* An image or stage reference from --from / --mount from=. */
static int from_ref(struct collect *c, size_t self, const struct env *env,
                    const char *raw)
{
	bool unres = false;
	char *ref;
	long idx;
	int rc = 0;

	ref = expand(env, c->df->escape, raw, &unres, c->err);
	if (!ref)
		return err_code(c->err);
	idx = stage_ref(c->df, ref, self, false);
	if (idx >= 0)
		rc = need(c, (size_t)idx);
	else if (c->bases)
		rc = push_unique(c->bases, &c->seen_bases, ref, c->err);
	free(ref);
	return rc;
}

/* filepath.Clean of a context source; "." when it would leave the
 * context.  Leading "/" and "./" are dropped. */
static char *clean_source(const char *in, te_error *err)
{
	size_t n = strlen(in), i = 0, o = 0;
	char *out = malloc(n + 2);

	if (!out) {
		te_error_set(err, TE_ENOMEM, "out of memory");
		return NULL;
	}
	while (i < n) {
		size_t j = i;
		while (j < n && in[j] != '/')
			j++;
		if (j == i || (j - i == 1 && in[i] == '.')) {
			/* skip */
		} else if (j - i == 2 && in[i] == '.' && in[i + 1] == '.') {
			if (o == 0) {
				o = 0;
				break;
			}
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			if (o)
				out[o++] = '/';
			memcpy(out + o, in + i, j - i);
			o += j - i;
		}
		i = j + 1;
	}
	if (o == 0) {
		out[0] = '.';
		o = 1;
	}
	out[o] = '\0';
	return out;
}

static bool is_url(const char *s)
{
	return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) ||
	       !strncmp(s, "git://", 6) || !strncmp(s, "git@", 4) ||
	       !strncmp(s, "ssh://", 6);
}

static int add_source(struct collect *c, const struct env *env, const char *raw,
                      bool add)
{
	bool unres = false;
	char *s, *cl;
	int rc;

	if (!c->sources || is_heredoc_word(raw))
		return 0;
	s = expand(env, c->df->escape, raw, &unres, c->err);
	if (!s)
		return err_code(c->err);
	if (add && is_url(s)) {
		rc = push_unique(c->urls, &c->seen_urls, s, c->err);
		free(s);
		return rc;
	}
	if (unres || strchr(s, '$')) {
		c->all = true;
		free(s);
		return 0;
	}
	cl = clean_source(s, c->err);
	free(s);
	if (!cl)
		return err_code(c->err);
	if (!strcmp(cl, "."))
		c->all = true;
	rc = push_unique(c->sources, &c->seen_sources, cl, c->err);
	free(cl);
	return rc;
}

/* RUN --mount=type=bind,from=x,source=y,... */
static int run_mount(struct collect *c, size_t self, const struct env *env,
                     const char *spec)
{
	const char *p = spec;
	char type[16] = "bind";
	char *from = NULL, *source = NULL;
	int rc = 0;

	while (*p) {
		size_t n = strcspn(p, ",");
		const char *eq = memchr(p, '=', n);
		size_t klen = eq ? (size_t)(eq - p) : n;
		const char *v = eq ? eq + 1 : p + n;
		size_t vlen = (size_t)(p + n - v);
		char **dst = NULL;

		if (klen == 4 && !strncmp(p, "type", 4)) {
			snprintf(type, sizeof(type), "%.*s",
			         (int)(vlen < 15 ? vlen : 15), v);
		} else if (klen == 4 && !strncmp(p, "from", 4)) {
			dst = &from;
		} else if ((klen == 6 && !strncmp(p, "source", 6)) ||
		           (klen == 3 && !strncmp(p, "src", 3))) {
			dst = &source;
		}
		if (dst) {
			free(*dst);
			*dst = strndup(v, vlen);
			if (!*dst) {
				rc = te_error_set(c->err, TE_ENOMEM,
				                  "out of memory");
				goto done;
			}
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (from && (!strcmp(type, "bind") || !strcmp(type, "cache")))
		rc = from_ref(c, self, env, from);
	else if (!from && !strcmp(type, "bind"))
		rc = add_source(c, env, source ? source : ".", false);
done:
	free(from);
	free(source);
	return rc;
}

static int scan_stage(struct collect *c, size_t si)
{
	const struct stage *st = &c->df->stages[si];
	struct env env = ENV_INIT(c->genv->spent);
	bool unres = false;
	char *base = NULL;
	size_t i, k;
	long parent;
	int rc;

	base = expand(c->genv, c->df->escape, st->base, &unres, c->err);
	if (!base)
		return err_code(c->err);
	parent = stage_ref(c->df, base, si, true);
	if (parent >= 0)
		rc = need(c, (size_t)parent);
	else
		rc = c->bases
		         ? push_unique(c->bases, &c->seen_bases, base, c->err)
		         : 0;
	if (rc < 0)
		goto done;
	for (i = 0; i < st->ninstrs; i++) {
		const struct instr *in = &st->instrs[i];
		const char *from = NULL;

		switch (in->kind) {
		case I_ARG:
			for (k = 0; k < in->words.count; k++) {
				rc = stage_arg(&env, c->genv, c->df,
				               in->words.items[k], c->args,
				               c->nargs, c->err);
				if (rc < 0)
					goto done;
			}
			break;
		case I_ENV:
			for (k = 0; k < in->words.count; k++) {
				rc = env_set(&env, in->words.items[k],
				             strlen(in->words.items[k]),
				             V_UNKNOWN, NULL, c->err);
				if (rc < 0)
					goto done;
			}
			break;
		case I_RUN:
			for (k = 0; k < in->flags.count; k++) {
				if (strncmp(in->flags.items[k], "--mount=", 8))
					continue;
				rc = run_mount(c, si, &env,
				               in->flags.items[k] + 8);
				if (rc < 0)
					goto done;
			}
			break;
		case I_COPY:
		case I_ADD:
			for (k = 0; k < in->flags.count; k++)
				if (!strncmp(in->flags.items[k], "--from=", 7))
					from = in->flags.items[k] + 7;
			if (from) {
				rc = from_ref(c, si, &env, from);
				if (rc < 0)
					goto done;
				break;
			}
			for (k = 0; k + 1 < in->words.count; k++) {
				rc = add_source(c, &env, in->words.items[k],
				                in->kind == I_ADD);
				if (rc < 0)
					goto done;
			}
			break;
		}
	}
	rc = 0;
done:
	free(base);
	env_dispose(&env);
	return rc;
}

static int move_all(te_strvec *dst, const te_strvec *src, te_error *err)
{
	size_t i;
	int rc;

	for (i = 0; i < src->count; i++) {
		rc = te_strvec_push(dst, src->items[i], err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int te_dockerfile_inputs(te_strvec *bases, te_strvec *sources,
                         const te_dockerfile *df, const char *target,
                         const char *const *build_args, size_t nargs,
                         te_error *err)
{
	size_t spent = 0;
	struct env genv = ENV_INIT(&spent);
	te_strvec b = TE_STRVEC_INIT, s = TE_STRVEC_INIT, u = TE_STRVEC_INIT;
	struct collect c;
	size_t t, i;
	int rc;

	memset(&c, 0, sizeof(c));
	if (!df || !df->nstages)
		return te_error_set(err, TE_EINVALID,
		                    "dockerfile has no stages");
	if (target) {
		for (t = 0; t < df->nstages; t++)
			if (df->stages[t].name &&
			    !strcasecmp(df->stages[t].name, target))
				break;
		if (t == df->nstages)
			return te_error_set(err, TE_EINVALID,
			                    "target stage \"%s\" not found in "
			                    "dockerfile",
			                    target);
	} else {
		t = df->nstages - 1;
	}
	c.df = df;
	c.args = build_args;
	c.nargs = nargs;
	c.genv = &genv;
	c.urls = &u;
	c.err = err;
	c.needed = calloc(df->nstages, sizeof(*c.needed));
	c.stack = calloc(df->nstages, sizeof(*c.stack));
	if (!c.needed || !c.stack) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	rc = global_env(&genv, df, build_args, nargs, err);
	if (rc < 0)
		goto done;
	/* pass 1: dependency closure, iterative */
	need(&c, t);
	while (c.nstack) {
		rc = scan_stage(&c, c.stack[--c.nstack]);
		if (rc < 0)
			goto done;
	}
	/* pass 2: collect in stage order, for a stable result */
	c.bases = &b;
	c.sources = &s;
	for (i = 0; i < df->nstages; i++) {
		if (!c.needed[i])
			continue;
		rc = scan_stage(&c, i);
		if (rc < 0)
			goto done;
	}
	if (c.all) {
		te_strvec_dispose(&s);
		rc = te_strvec_push(&s, ".", err);
		if (rc < 0)
			goto done;
	}
	rc = move_all(bases, &b, err);
	if (rc == 0)
		rc = move_all(sources, &s, err);
	if (rc == 0)
		rc = move_all(sources, &u, err);
done:
	free(c.needed);
	free(c.stack);
	te_strmap_dispose(&c.seen_bases);
	te_strmap_dispose(&c.seen_sources);
	te_strmap_dispose(&c.seen_urls);
	env_dispose(&genv);
	te_strvec_dispose(&b);
	te_strvec_dispose(&s);
	te_strvec_dispose(&u);
	return rc;
}

size_t te_dockerfile_stage_count(const te_dockerfile *df)
{
	return df->nstages;
}

char te_dockerfile_escape(const te_dockerfile *df)
{
	return df->escape;
}

size_t te_dockerfile_step_count(const te_dockerfile *df)
{
	return df->step_texts.count;
}

const char *te_dockerfile_step(const te_dockerfile *df, size_t i,
                               const char **keyword, long *stage)
{
	if (i >= df->step_texts.count)
		return NULL;
	*keyword = df->step_keywords.items[i];
	*stage = df->step_stages[i];
	return df->step_texts.items[i];
}

bool te_dockerfile_sources_match(const te_strvec *sources, const char *path)
{
	char buf[4096];
	size_t i, n;

	if (!sources || !path)
		return false;
	n = strlen(path);
	if (n >= sizeof(buf)) {
		/* too long to test precisely: only "." can match */
		return te_strvec_contains(sources, ".");
	}
	for (i = 0; i < sources->count; i++) {
		const char *src = sources->items[i];
		char *slash;

		if (!strcmp(src, "."))
			return true;
		if (is_url(src))
			continue;
		memcpy(buf, path, n + 1);
		for (;;) {
			if (fnmatch(src, buf, FNM_PATHNAME) == 0)
				return true;
			slash = strrchr(buf, '/');
			if (!slash)
				break;
			*slash = '\0';
		}
	}
	return false;
}
