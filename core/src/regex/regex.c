/*
 * regex.c - the public API of the regex module: compilation, and Go's
 * Regexp methods built on the Pike VM (regexp.go: allMatches,
 * replaceAll, expand, Split, QuoteMeta), with Go's rules for empty
 * matches.
 */
#include <stdlib.h>
#include <string.h>

#include "regex/regex_int.h"
#include "utf8_int.h"

int te_regex_compile(te_regex **out, const char *pat, size_t len,
                     unsigned flags, te_error *err)
{
	struct te_re_ast ast;
	struct te_re_node *root;
	te_regex *re = NULL;
	int rc;

	*out = NULL;
	rc = te_re__parse(&ast, pat, len, err);
	if (rc < 0)
		goto done;
	re = calloc(1, sizeof(*re));
	root = re ? te_re__simplify(&ast.nodes, ast.root) : NULL;
	if (!root) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	re->flags = flags;
	re->ngroups = ast.ngroups;
	re->names = ast.names;
	re->names_cap = ast.names_cap;
	re->expr_len = len;
	ast.names = NULL;
	ast.names_cap = 0;
	rc = te_re__compile(re, root, pat, len, err);
	if (rc < 0)
		goto done;
	*out = re;
	re = NULL;
done:
	te_re__ast_dispose(&ast);
	te_regex_free(re);
	return rc;
}

void te_regex_free(te_regex *re)
{
	size_t i;

	if (!re)
		return;
	for (i = 0; i < re->names_cap; i++)
		free(re->names[i]);
	free(re->names);
	free(re->inst);
	free(re->pool);
	free(re);
}

size_t te_regex_groups(const te_regex *re)
{
	return re->ngroups;
}

const char *te_regex_group_name(const te_regex *re, size_t i)
{
	if (i >= re->ngroups || i >= re->names_cap || !re->names[i])
		return "";
	return re->names[i];
}

int te_regex_find(ptrdiff_t *caps, size_t ncaps, const te_regex *re,
                  const char *text, size_t len, size_t pos, uint64_t *steps,
                  te_error *err)
{
	return te_re__exec(caps, ncaps, re, text, len, pos, steps, err);
}

int te_regex_match(bool *out, const te_regex *re, const char *text, size_t len,
                   uint64_t *steps, te_error *err)
{
	int rc = te_re__exec(NULL, 0, re, text, len, 0, steps, err);

	*out = rc == 1;
	return rc < 0 ? rc : 0;
}

/* Width of the rune at pos, 0 at the end (Go's DecodeRuneInString). */
static size_t width_at(const char *s, size_t len, size_t pos)
{
	uint32_t r;

	if (pos >= len)
		return 0;
	return te__utf8_next((const unsigned char *)s + pos, len - pos, &r);
}

int te_regex_find_all(const te_regex *re, const char *text, size_t len, long n,
                      te_regex_match_fn fn, void *payload, uint64_t *steps,
                      te_error *err)
{
	size_t pos = 0, w, count = 0, max;
	ptrdiff_t prev_end = -1, *caps;
	struct te_re_vm *vm = NULL;
	bool accept;
	int rc = 0;

	max = n < 0 ? len + 1 : (size_t)n;
	caps = malloc(2 * re->ngroups * sizeof(*caps));
	if (!caps)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	rc = te_re__vm_new(&vm, re, re->ngroups, err);
	while (rc == 0 && count < max && pos <= len) {
		rc = te_re__vm_exec(caps, vm, text, len, pos, steps, err);
		if (rc <= 0)
			break;
		rc = 0;
		accept = true;
		if (caps[1] == (ptrdiff_t)pos) {
			/* no empty match right after the previous match */
			if (caps[0] == prev_end)
				accept = false;
			w = width_at(text, len, pos);
			pos = w ? pos + w : len + 1;
		} else {
			pos = (size_t)caps[1];
		}
		prev_end = caps[1];
		if (accept) {
			count++;
			rc = fn(payload, caps);
			if (rc)
				break;
		}
	}
	te_re__vm_free(vm);
	free(caps);
	return rc;
}

static bool is_letter_or_digit(uint32_t r)
{
	const struct te_unicode_table *l = te_unicode_table_find("L", 1),
	                              *d = te_unicode_table_find("Nd", 2);

	return te_re__class_has(l->r, l->n, r) ||
	       te_re__class_has(d->r, d->n, r);
}

/* Go's extract: a group reference after '$' at t ("1", "{name}"). */
static bool extract(const char *t, size_t tlen, size_t *name, size_t *nlen,
                    long *num, size_t *rest)
{
	size_t i = 0, w;
	bool brace = false;
	uint32_t r;

	if (tlen == 0)
		return false;
	if (t[0] == '{') {
		brace = true;
		i = 1;
	}
	*name = i;
	while (i < tlen) {
		w = te__utf8_next((const unsigned char *)t + i, tlen - i, &r);
		if (!is_letter_or_digit(r) && r != '_')
			break;
		i += w;
	}
	*nlen = i - *name;
	if (*nlen == 0)
		return false;
	if (brace) {
		if (i >= tlen || t[i] != '}')
			return false;
		i++;
	}
	*num = 0;
	for (w = 0; w < *nlen; w++) {
		char c = t[*name + w];

		if (c < '0' || c > '9' || *num >= 100000000) {
			*num = -1;
			break;
		}
		*num = *num * 10 + (c - '0');
	}
	/* no leading zeros */
	if (t[*name] == '0' && *nlen > 1)
		*num = -1;
	*rest = i;
	return true;
}

static int put_group(te_buf *out, const char *src, const ptrdiff_t *caps,
                     size_t g, te_error *err)
{
	if (caps[2 * g] < 0)
		return 0;
	return te_buf_put(out, src + caps[2 * g],
	                  (size_t)(caps[2 * g + 1] - caps[2 * g]), err);
}

int te_regex_expand(te_buf *out, const te_regex *re, const char *tmpl,
                    size_t tlen, const char *src, const ptrdiff_t *caps,
                    te_error *err)
{
	size_t i = 0, d, name, nlen, rest, g;
	const char *dollar;
	long num;
	int rc = 0;

	while (i < tlen && rc == 0) {
		dollar = memchr(tmpl + i, '$', tlen - i);
		if (!dollar)
			break;
		d = (size_t)(dollar - tmpl);
		rc = te_buf_put(out, tmpl + i, d - i, err);
		i = d + 1;
		if (rc < 0)
			break;
		if (i < tlen && tmpl[i] == '$') {
			rc = te_buf_put(out, "$", 1, err);
			i++;
			continue;
		}
		if (!extract(tmpl + i, tlen - i, &name, &nlen, &num, &rest)) {
			rc = te_buf_put(out, "$", 1, err);
			continue;
		}
		if (num >= 0) {
			if ((size_t)num < re->ngroups)
				rc =
				    put_group(out, src, caps, (size_t)num, err);
		} else {
			for (g = 0; g < re->ngroups; g++) {
				const char *gn = te_regex_group_name(re, g);

				if (strlen(gn) == nlen &&
				    !memcmp(gn, tmpl + i + name, nlen) &&
				    caps[2 * g] >= 0) {
					rc = put_group(out, src, caps, g, err);
					break;
				}
			}
		}
		i += rest;
	}
	if (rc == 0 && i < tlen)
		rc = te_buf_put(out, tmpl + i, tlen - i, err);
	return rc;
}

int te_regex_replace_all(te_buf *out, const te_regex *re, const char *text,
                         size_t len, const char *repl, size_t rlen,
                         bool literal, uint64_t *steps, te_error *err)
{
	size_t last_end = 0, search = 0, w, ncaps = 1;
	struct te_re_vm *vm = NULL;
	ptrdiff_t *caps;
	int rc = 0;

	if (!literal && memchr(repl, '$', rlen))
		ncaps = re->ngroups;
	caps = malloc(2 * ncaps * sizeof(*caps));
	if (!caps)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	rc = te_re__vm_new(&vm, re, ncaps, err);
	while (rc == 0 && search <= len) {
		rc = te_re__vm_exec(caps, vm, text, len, search, steps, err);
		if (rc <= 0)
			break;
		rc = te_buf_put(out, text + last_end,
		                (size_t)caps[0] - last_end, err);
		/* no replacement for an empty match right after a match */
		if (rc == 0 && (caps[1] > (ptrdiff_t)last_end || caps[0] == 0))
			rc = literal ? te_buf_put(out, repl, rlen, err)
			             : te_regex_expand(out, re, repl, rlen,
			                               text, caps, err);
		if (rc < 0)
			break;
		last_end = (size_t)caps[1];
		w = width_at(text, len, search);
		if (search + w > (size_t)caps[1])
			search += w;
		else if (search + 1 > (size_t)caps[1])
			search++;
		else
			search = (size_t)caps[1];
	}
	if (rc == 0)
		rc = te_buf_put(out, text + last_end, len - last_end, err);
	te_re__vm_free(vm);
	free(caps);
	return rc;
}

struct split_state {
	const char *text;
	long n;
	size_t count, beg, end;
	te_regex_piece_fn fn;
	void *payload;
	bool stopped; /* n pieces reached */
};

static int split_match(void *payload, const ptrdiff_t *caps)
{
	struct split_state *s = payload;
	int rc = 0;

	if (s->n > 0 && s->count >= (size_t)s->n - 1) {
		s->stopped = true;
		return 1;
	}
	s->end = (size_t)caps[0];
	if (caps[1] != 0) {
		s->count++;
		rc = s->fn(s->payload, s->text + s->beg, s->end - s->beg);
	}
	s->beg = (size_t)caps[1];
	return rc;
}

int te_regex_split(const te_regex *re, const char *text, size_t len, long n,
                   te_regex_piece_fn fn, void *payload, uint64_t *steps,
                   te_error *err)
{
	struct split_state s = {text, n, 0, 0, 0, fn, payload, false};
	int rc;

	if (n == 0)
		return 0;
	if (re->expr_len > 0 && len == 0)
		return fn(payload, text, 0);
	rc = te_regex_find_all(re, text, len, n, split_match, &s, steps, err);
	if (rc == 1 && s.stopped)
		rc = 0;
	if (rc)
		return rc;
	if (s.end != len)
		return fn(payload, text + s.beg, len - s.beg);
	return 0;
}

static bool special(unsigned char c)
{
	return c && strchr("\\.+*?()|[]{}^$", c) != NULL;
}

int te_regex_quote_meta(te_buf *out, const char *s, size_t len, te_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < len && rc == 0; i++) {
		if (special((unsigned char)s[i]))
			rc = te_buf_put(out, "\\", 1, err);
		if (rc == 0)
			rc = te_buf_put(out, s + i, 1, err);
	}
	return rc;
}
