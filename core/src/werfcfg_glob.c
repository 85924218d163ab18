/*
 * werfcfg_glob.c - the patterns of .Files.Glob, as werf matches them with
 * doublestar (https://github.com/bmatcuk/doublestar#patterns): `*` and `?`
 * inside a path segment, `**` across segments, `[abc]`, `[a-z]`, `[!a]`
 * or `[^a]` for one character, `{a,b}` alternatives (nested too), `\`
 * quoting the next character.
 */
#include <stdlib.h>
#include <string.h>

#include "werfcfg_int.h"

#define GLOB_ALTS_MAX 256 /* patterns one {..} pattern may expand to */

/* The index of the `}` closing the `{` at p[open], or -1. */
static long brace_end(const char *p, size_t open)
{
	size_t i;
	int depth = 0;

	for (i = open; p[i]; i++) {
		if (p[i] == '\\' && p[i + 1])
			i++;
		else if (p[i] == '{')
			depth++;
		else if (p[i] == '}' && --depth == 0)
			return (long)i;
	}
	return -1;
}

/* The first `{` outside a class or a quote, or -1. */
static long brace_start(const char *p)
{
	size_t i;

	for (i = 0; p[i]; i++) {
		if (p[i] == '\\' && p[i + 1])
			i++;
		else if (p[i] == '{')
			return (long)i;
	}
	return -1;
}

static int expand(te_strvec *out, const char *p, te_error *err);

/* p with its first {..} replaced by each alternative in turn. */
static int expand_first(te_strvec *out, const char *p, size_t open,
                        size_t close, te_error *err)
{
	size_t i = open + 1, start = open + 1;
	int depth = 0, rc = 0;
	te_buf alt = TE_BUF_INIT(TE_WERFCFG_YAML_MAX);

	for (; i <= close && rc == 0; i++) {
		if (p[i] == '\\' && i + 1 < close) {
			i++;
			continue;
		}
		if (p[i] == '{')
			depth++;
		else if (p[i] == '}' && depth > 0 && i < close)
			depth--;
		if (!(i == close || (p[i] == ',' && depth == 0)))
			continue;
		te_buf_clear(&alt);
		if ((rc = te_buf_put(&alt, p, open, err)) < 0 ||
		    (rc = te_buf_put(&alt, p + start, i - start, err)) < 0 ||
		    (rc = te_buf_puts(&alt, p + close + 1, err)) < 0)
			break;
		rc = expand(out, alt.ptr, err);
		start = i + 1;
	}
	te_buf_dispose(&alt);
	return rc;
}

static int expand(te_strvec *out, const char *p, te_error *err)
{
	long open = brace_start(p), close;

	if (open < 0 || (close = brace_end(p, (size_t)open)) < 0) {
		if (out->count >= GLOB_ALTS_MAX)
			return te_error_set(err, TE_EINVALID,
			                    "glob pattern: more than %d "
			                    "alternatives",
			                    GLOB_ALTS_MAX);
		return te_strvec_push(out, p, err);
	}
	return expand_first(out, p, (size_t)open, (size_t)close, err);
}

int te_werfcfg__glob_expand(te_strvec *out, const char *pattern, te_error *err)
{
	return expand(out, pattern, err);
}

/* [..] at *pp (just past the `[`) against c; *pp is left past the `]`.
 * false with *bad set for a class that never closes. */
static bool class_match(const char **pp, char c, bool *bad)
{
	const char *p = *pp;
	bool neg = false, hit = false;

	if (*p == '!' || *p == '^') {
		neg = true;
		p++;
	}
	do {
		char lo, hi;

		if (!*p) {
			*bad = true;
			return false;
		}
		if (*p == '\\' && p[1])
			p++;
		lo = hi = *p++;
		if (p[0] == '-' && p[1] && p[1] != ']') {
			p++;
			if (*p == '\\' && p[1])
				p++;
			hi = *p++;
		}
		if ((unsigned char)lo <= (unsigned char)c &&
		    (unsigned char)c <= (unsigned char)hi)
			hit = true;
	} while (*p != ']');
	*pp = p + 1;
	return hit != neg && c != '/';
}

bool te_werfcfg__glob_match(const char *p, const char *s, unsigned long *steps)
{
	bool bad = false, quoted;

	while (*p) {
		if (++*steps > TE_WERFCFG_GLOB_STEPS_MAX)
			return false;
		if (p[0] == '*' && p[1] == '*') {
			p += 2;
			if (*p == '/') { /* zero or more whole directories */
				p++;
				for (;;) {
					if (te_werfcfg__glob_match(p, s, steps))
						return true;
					s = strchr(s, '/');
					if (!s)
						return false;
					s++;
				}
			}
			for (;; s++) {
				if (te_werfcfg__glob_match(p, s, steps))
					return true;
				if (!*s)
					return false;
			}
		}
		if (*p == '*') {
			for (p++;; s++) {
				if (te_werfcfg__glob_match(p, s, steps))
					return true;
				if (!*s || *s == '/')
					return false;
			}
		}
		if (!*s)
			return false;
		if (*p == '[') {
			p++;
			if (!class_match(&p, *s, &bad))
				return false;
			s++;
			continue;
		}
		quoted = *p == '\\' && p[1];
		if (quoted)
			p++;
		if (*p == '?' && !quoted ? *s == '/' : *p != *s)
			return false;
		p++;
		s++;
	}
	return !*s;
}
