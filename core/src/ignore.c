/*
 * ignore.c - .dockerignore rules, following moby/patternmatcher and
 * buildkit's dockerignore.ReadAll:
 *
 *  1. A line starting with '#' is a comment (checked before trimming, so
 *     " #x" is a pattern), then the line is trimmed and empties dropped.
 *  2. A leading '!' re-includes; the rest is trimmed again, cleaned like
 *     filepath.Clean and a leading '/' is dropped: patterns are anchored
 *     at the context root.
 *  3. Each pattern becomes an anchored regular expression: '*' and '?'
 *     never cross '/', "**" matches any number of directories, '\' quotes
 *     the next character, "[...]" passes through.
 *  4. A path matches a pattern when the pattern matches the path itself or
 *     one of its parent directories (MatchesOrParentMatches); the last
 *     matching pattern decides.
 */
#include "tagexport/ignore.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/buf.h"

#define IG_MAX_SIZE (1024 * 1024)
#define IG_MAX_PATTERNS 10000
#define IG_MAX_PATH 4096

struct pattern {
	bool exclusion;
	regex_t re;
};

struct te_ignore {
	struct pattern *items;
	size_t count;
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

/* Translates a cleaned pattern into a POSIX extended regex. */
static int compile(regex_t *re, const char *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(64 * 1024);
	size_t i = 0, n = strlen(p);
	int rc;

	rc = te_buf_puts(&b, "^", err);
	while (rc == 0 && i < n) {
		char ch = p[i++];

		if (ch == '*') {
			if (i < n && p[i] == '*') {
				i++;
				if (i < n && p[i] == '/')
					i++;
				if (i >= n)
					rc = te_buf_puts(&b, ".*", err);
				else
					rc = te_buf_puts(&b, "(.*/)?", err);
			} else {
				rc = te_buf_puts(&b, "[^/]*", err);
			}
		} else if (ch == '?') {
			rc = te_buf_puts(&b, "[^/]", err);
		} else if (strchr(".+()|{}$^", ch)) {
			char e[2] = {'\\', ch};
			rc = te_buf_put(&b, e, 2, err);
		} else if (ch == '\\') {
			if (i < n) {
				char e[2] = {'\\', p[i++]};
				/* inside ERE, "\x" for an ordinary x is
				 * undefined: only quote what needs it */
				if (strchr(".[]*+?()|{}$^\\", e[1]))
					rc = te_buf_put(&b, e, 2, err);
				else
					rc = te_buf_put(&b, e + 1, 1, err);
			} else {
				rc = te_buf_puts(&b, "\\\\", err);
			}
		} else {
			rc = te_buf_put(&b, &ch, 1, err);
		}
	}
	if (rc == 0)
		rc = te_buf_puts(&b, "$", err);
	if (rc == 0 && regcomp(re, b.ptr, REG_EXTENDED | REG_NOSUB) != 0)
		rc = te_error_set(err, TE_EINVALID,
		                  ".dockerignore: syntax error in pattern "
		                  "\"%.200s\"",
		                  p);
	te_buf_dispose(&b);
	return rc;
}

void te_ignore_free(te_ignore *ig)
{
	size_t i;

	if (!ig)
		return;
	for (i = 0; i < ig->count; i++)
		regfree(&ig->items[i].re);
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
	if (ig->count >= IG_MAX_PATTERNS)
		return te_error_set(err, TE_EINVALID,
		                    ".dockerignore: more than %d patterns",
		                    IG_MAX_PATTERNS);
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
	rc = compile(&ig->items[ig->count].re, p, err);
	if (rc < 0)
		goto done;
	ig->items[ig->count].exclusion = invert;
	ig->count++;
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
	if (len > IG_MAX_SIZE)
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

static bool pattern_match(const struct pattern *p, const char *path,
                          char *parent, size_t plen)
{
	size_t i;

	if (regexec(&p->re, path, 0, NULL, 0) == 0)
		return true;
	if (!plen)
		return false;
	/* every parent prefix: "a", "a/b", ... */
	for (i = 0; i <= plen; i++) {
		if (i == plen || parent[i] == '/') {
			char save = parent[i];
			bool m;

			parent[i] = '\0';
			m = regexec(&p->re, parent, 0, NULL, 0) == 0;
			parent[i] = save;
			if (m)
				return true;
		}
	}
	return false;
}

bool te_ignore_match(const te_ignore *ig, const char *path)
{
	char *file = NULL, *parent = NULL, *slash;
	size_t plen = 0, i;
	bool matched = false;
	te_error err = TE_ERROR_INIT;

	if (!ig || !path || !ig->count)
		return false;
	if (strlen(path) > IG_MAX_PATH)
		return false;
	file = clean_path(path, strlen(path), &err);
	if (!file)
		return false;
	parent = strdup(file);
	if (!parent)
		goto done;
	slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		plen = (size_t)(slash - parent);
	}
	for (i = 0; i < ig->count; i++) {
		const struct pattern *p = &ig->items[i];

		/* only a rule that can flip the result is worth testing */
		if (p->exclusion != matched)
			continue;
		if (pattern_match(p, file, parent, plen))
			matched = !p->exclusion;
	}
done:
	free(parent);
	free(file);
	return matched;
}
