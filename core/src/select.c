/*
 * select.c - werf's image selection (pkg/config/images_to_process.go,
 * werf-export.md 4.5) with a port of Go's path/filepath.Match for '/'
 * as separator: '*' and '?' never match '/', classes are [abc], [a-z] and
 * [^...], '\\' escapes, and a malformed pattern is an error.
 */
#include "tagexport/select.h"

#include <string.h>

#include "utf8_int.h"

#define PATTERN_MAX 100

typedef struct {
	const char *p;
	size_t n;
} slice;

static void advance(slice *s, size_t k)
{
	s->p += k;
	s->n -= k;
}

static uint32_t next_rune(slice *s)
{
	uint32_t r;

	advance(s, te__utf8_next((const unsigned char *)s->p, s->n, &r));
	return r;
}

/* Split off the leading stars and the chunk up to the next unbracketed '*'. */
static void scan_chunk(slice *pattern, bool *star, slice *chunk)
{
	bool inrange = false;
	size_t i;

	*star = false;
	while (pattern->n > 0 && pattern->p[0] == '*') {
		advance(pattern, 1);
		*star = true;
	}
	for (i = 0; i < pattern->n; i++) {
		char c = pattern->p[i];

		if (c == '\\') {
			if (i + 1 < pattern->n)
				i++;
		} else if (c == '[') {
			inrange = true;
		} else if (c == ']') {
			inrange = false;
		} else if (c == '*' && !inrange) {
			break;
		}
	}
	chunk->p = pattern->p;
	chunk->n = i;
	advance(pattern, i);
}

/* One class bound, possibly escaped.  -1: bad pattern. */
static int get_esc(slice *chunk, uint32_t *r)
{
	size_t n;

	if (chunk->n == 0 || chunk->p[0] == '-' || chunk->p[0] == ']')
		return -1;
	if (chunk->p[0] == '\\') {
		advance(chunk, 1);
		if (chunk->n == 0)
			return -1;
	}
	n = te__utf8_next((const unsigned char *)chunk->p, chunk->n, r);
	if (*r == TE_UTF8_INVALID && n == 1)
		return -1;
	advance(chunk, n);
	return chunk->n == 0 ? -1 : 0;
}

/*
 * Match chunk against the start of s.  On a match *ok is set and *rest is
 * what is left of s.  After a mismatch the chunk is still parsed to the
 * end, so a malformed pattern is reported either way.  -1: bad pattern.
 */
static int match_chunk(slice chunk, slice s, slice *rest, bool *ok)
{
	bool failed = false;

	*ok = false;
	while (chunk.n > 0) {
		if (!failed && s.n == 0)
			failed = true;
		switch (chunk.p[0]) {
		case '[': {
			uint32_t r = 0, lo, hi;
			bool negated = false, match = false;
			int nrange = 0;

			if (!failed)
				r = next_rune(&s);
			advance(&chunk, 1);
			if (chunk.n > 0 && chunk.p[0] == '^') {
				negated = true;
				advance(&chunk, 1);
			}
			for (;;) {
				if (chunk.n > 0 && chunk.p[0] == ']' &&
				    nrange > 0) {
					advance(&chunk, 1);
					break;
				}
				if (get_esc(&chunk, &lo) < 0)
					return -1;
				hi = lo;
				if (chunk.p[0] == '-') {
					advance(&chunk, 1);
					if (get_esc(&chunk, &hi) < 0)
						return -1;
				}
				if (lo <= r && r <= hi)
					match = true;
				nrange++;
			}
			if (match == negated)
				failed = true;
			break;
		}
		case '?':
			if (!failed) {
				if (s.p[0] == '/')
					failed = true;
				next_rune(&s);
			}
			advance(&chunk, 1);
			break;
		default:
			if (chunk.p[0] == '\\') {
				advance(&chunk, 1);
				if (chunk.n == 0)
					return -1;
			}
			if (!failed) {
				if (chunk.p[0] != s.p[0])
					failed = true;
				advance(&s, 1);
			}
			advance(&chunk, 1);
			break;
		}
	}
	if (!failed) {
		*rest = s;
		*ok = true;
	}
	return 0;
}

/* Go's filepath.Match.  -1: bad pattern. */
static int glob_match(const char *pat, const char *str, bool *matched)
{
	slice pattern = {pat, strlen(pat)}, name = {str, strlen(str)};
	slice chunk, t;
	bool star, ok;
	size_t i;

	*matched = false;
next_chunk:
	while (pattern.n > 0) {
		scan_chunk(&pattern, &star, &chunk);
		if (star && chunk.n == 0) {
			/* a trailing '*' matches the rest unless it has '/' */
			*matched = memchr(name.p, '/', name.n) == NULL;
			return 0;
		}
		if (match_chunk(chunk, name, &t, &ok) < 0)
			return -1;
		/* the last chunk must consume the whole name */
		if (ok && (t.n == 0 || pattern.n > 0)) {
			name = t;
			continue;
		}
		if (star) {
			/* retry after skipping i+1 bytes, never a '/' */
			for (i = 0; i < name.n && name.p[i] != '/'; i++) {
				slice from = {name.p + i + 1, name.n - i - 1};

				if (match_chunk(chunk, from, &t, &ok) < 0)
					return -1;
				if (ok) {
					if (pattern.n == 0 && t.n > 0)
						continue;
					name = t;
					goto next_chunk;
				}
			}
		}
		/* no match: still reject a malformed remainder */
		while (pattern.n > 0) {
			slice empty = {"", 0};

			scan_chunk(&pattern, &star, &chunk);
			if (match_chunk(chunk, empty, &t, &ok) < 0)
				return -1;
		}
		return 0;
	}
	*matched = name.n == 0;
	return 0;
}

static int check_pattern(const char *p, te_error *err)
{
	if (strstr(p, "**"))
		return te_error_set(err, TE_EINVALID,
		                    "recursive glob (**) not supported");
	if (strlen(p) > PATTERN_MAX)
		return te_error_set(err, TE_EINVALID, "pattern too long");
	if (strpbrk(p, "&|$"))
		return te_error_set(err, TE_EINVALID,
		                    "special characters not allowed");
	return 0;
}

static int match(const char *pattern, const char *name, bool *matched,
                 te_error *err)
{
	char q[PATTERN_MAX * 4 + 8];

	if (glob_match(pattern, name, matched) == 0)
		return 0;
	te__goquote(q, sizeof(q), pattern);
	return te_error_set(err, TE_EINVALID,
	                    "invalid pattern %s: syntax error in pattern", q);
}

static bool is_exclude(const char *p)
{
	return p[0] == '!';
}

/* An exclude never removes a name that an include lists verbatim. */
static bool listed_verbatim(const char *name, const char *const *patterns,
                            size_t npatterns)
{
	size_t i;

	for (i = 0; i < npatterns; i++)
		if (!is_exclude(patterns[i]) && strcmp(patterns[i], name) == 0)
			return true;
	return false;
}

int te_select_images(bool *selected, const char *const *names, size_t nnames,
                     const char *const *patterns, size_t npatterns,
                     te_error *err)
{
	bool any_include = false, found, m;
	char q[PATTERN_MAX * 4 + 8];
	size_t i, j;
	int rc;

	for (i = 0; i < nnames; i++)
		selected[i] = false;
	for (i = 0; i < npatterns; i++) {
		if ((rc = check_pattern(patterns[i], err)) < 0)
			return rc;
		if (!is_exclude(patterns[i]))
			any_include = true;
	}
	if (!any_include)
		for (i = 0; i < nnames; i++)
			selected[i] = true;
	for (i = 0; i < npatterns; i++) {
		if (is_exclude(patterns[i]))
			continue;
		found = false;
		for (j = 0; j < nnames; j++) {
			if ((rc = match(patterns[i], names[j], &m, err)) < 0)
				goto fail;
			if (m) {
				selected[j] = true;
				found = true;
			}
		}
		if (!found) {
			te__goquote(q, sizeof(q), patterns[i]);
			rc = te_error_set(err, TE_EINVALID,
			                  "no image matches pattern %s", q);
			goto fail;
		}
	}
	for (j = 0; j < nnames; j++) {
		if (!selected[j])
			continue;
		for (i = 0; i < npatterns; i++) {
			if (!is_exclude(patterns[i]))
				continue;
			if ((rc = match(patterns[i] + 1, names[j], &m, err)) <
			    0)
				goto fail;
			if (m &&
			    !listed_verbatim(names[j], patterns, npatterns)) {
				selected[j] = false;
				break;
			}
		}
	}
	return 0;
fail:
	for (i = 0; i < nnames; i++)
		selected[i] = false;
	return rc;
}
