#include "tagexport/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char te_buf__empty[1];

void te_buf_init(te_buf *buf, size_t max)
{
	buf->ptr = te_buf__empty;
	buf->len = 0;
	buf->cap = 0;
	buf->max = max;
}

static int grow(te_buf *buf, size_t need, te_error *err)
{
	size_t cap;
	char *p;

	if (need > buf->max - buf->len)
		return te_error_set(err, TE_EINVALID,
		                    "data exceeds the limit of %zu bytes",
		                    buf->max);
	if (buf->len + need + 1 <= buf->cap)
		return 0;
	cap = buf->cap ? buf->cap : 64;
	while (cap < buf->len + need + 1)
		cap = cap > SIZE_MAX / 2 ? buf->len + need + 1 : cap * 2;
	p = realloc(buf->cap ? buf->ptr : NULL, cap);
	if (!p)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if (!buf->cap)
		p[0] = '\0';
	buf->ptr = p;
	buf->cap = cap;
	return 0;
}

int te_buf_put(te_buf *buf, const void *data, size_t len, te_error *err)
{
	int rc = grow(buf, len, err);

	if (rc < 0)
		return rc;
	if (len)
		memcpy(buf->ptr + buf->len, data, len);
	buf->len += len;
	buf->ptr[buf->len] = '\0';
	return 0;
}

int te_buf_puts(te_buf *buf, const char *s, te_error *err)
{
	return te_buf_put(buf, s, strlen(s), err);
}

int te_buf_printf(te_buf *buf, te_error *err, const char *fmt, ...)
{
	va_list ap;
	int n;
	int rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return te_error_set(err, TE_ERROR, "bad format string");
	rc = grow(buf, (size_t)n, err);
	if (rc < 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(buf->ptr + buf->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf->len += (size_t)n;
	return 0;
}

void te_buf_clear(te_buf *buf)
{
	buf->len = 0;
	/* The shared static "" is never written: threads share it. */
	if (buf->cap)
		buf->ptr[0] = '\0';
}

char *te_buf_detach(te_buf *buf)
{
	char *p = buf->cap ? buf->ptr : strdup("");

	te_buf_init(buf, buf->max);
	return p;
}

void te_buf_dispose(te_buf *buf)
{
	if (buf->cap)
		free(buf->ptr);
	te_buf_init(buf, buf->max);
}

int te_strvec_push_owned(te_strvec *vec, char *s, te_error *err)
{
	char **items;
	size_t cap;

	if (!s)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if (vec->count + 2 > vec->cap) {
		cap = vec->cap ? vec->cap * 2 : 8;
		items = realloc(vec->items, cap * sizeof(*items));
		if (!items) {
			free(s);
			return te_error_set(err, TE_ENOMEM, "out of memory");
		}
		vec->items = items;
		vec->cap = cap;
	}
	vec->items[vec->count++] = s;
	vec->items[vec->count] = NULL;
	return 0;
}

int te_strvec_push(te_strvec *vec, const char *s, te_error *err)
{
	return te_strvec_push_owned(vec, strdup(s), err);
}

int te_strvec_pushf(te_strvec *vec, te_error *err, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return te_error_set(err, TE_ERROR, "bad format string");
	s = malloc((size_t)n + 1);
	if (s) {
		va_start(ap, fmt);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	return te_strvec_push_owned(vec, s, err);
}

int te_strvec_contains(const te_strvec *vec, const char *s)
{
	size_t i;

	for (i = 0; i < vec->count; i++)
		if (strcmp(vec->items[i], s) == 0)
			return 1;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void te_strvec_sort(te_strvec *vec)
{
	if (vec->count > 1)
		qsort(vec->items, vec->count, sizeof(char *), cmp_str);
}

void te_strvec_dispose(te_strvec *vec)
{
	size_t i;

	for (i = 0; i < vec->count; i++)
		free(vec->items[i]);
	free(vec->items);
	vec->items = NULL;
	vec->count = vec->cap = 0;
}

char *te_strdup(const char *s, te_error *err)
{
	char *d = strdup(s ? s : "");

	if (!d)
		te_error_set(err, TE_ENOMEM, "out of memory");
	return d;
}
