/*
 * slug.c - werf's slug rules (pkg/slug, common-go pkg/util/hashsum.go),
 * see ../shared/reference/werf-export.md section 1.
 *
 * Inputs are walked per Unicode code point exactly as Go's range loop does:
 * a malformed UTF-8 sequence yields U+FFFD and advances one byte, and since
 * U+FFFD is not in the table it simply vanishes.
 */
#include "tagexport/slug.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/buf.h"
#include "slug_map.h"
#include "utf8_int.h"

/* werf's DockerTag limit, from the registry's tag grammar. */
#define DOCKER_TAG_MAX 128

static uint32_t rotl32(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

uint32_t te_slug_murmur3(const void *data, size_t len, uint32_t seed)
{
	const unsigned char *p = data;
	const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
	uint32_t h = seed, k;
	size_t i, nblocks = len / 4;

	for (i = 0; i < nblocks; i++, p += 4) {
		k = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		k *= c1;
		k = rotl32(k, 15);
		k *= c2;
		h ^= k;
		h = rotl32(h, 13);
		h = h * 5 + 0xe6546b64;
	}
	k = 0;
	if ((len & 3) == 3)
		k ^= (uint32_t)p[2] << 16;
	if ((len & 3) >= 2)
		k ^= (uint32_t)p[1] << 8;
	if ((len & 3) >= 1) {
		k ^= (uint32_t)p[0];
		k *= c1;
		k = rotl32(k, 15);
		k *= c2;
		h ^= k;
	}
	/* The length is mixed in modulo 2^32, as the reference does. */
	h ^= (uint32_t)len;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static const char *map_lookup(uint32_t cp)
{
	size_t lo = 0, hi = TE_SLUG_MAP_LEN;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (te_slug_map[mid].cp == cp)
			return te_slug_map[mid].repl;
		if (te_slug_map[mid].cp < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int slugify_buf(te_buf *out, const char *in, te_error *err)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t len = strlen(in), i = 0;
	bool last_dash = false; /* last non-dropped cursor was "-" */
	int rc;

	if (len > TE_SLUG_INPUT_MAX)
		return te_error_set(err, TE_EINVALID,
		                    "cannot slugify more than %d bytes",
		                    TE_SLUG_INPUT_MAX);
	while (i < len) {
		uint32_t cp;
		const char *cur;
		bool dash;

		i += te__utf8_next(s + i, len - i, &cp);
		cur = map_lookup(cp);
		if (!cur || !*cur)
			continue;
		dash = strcmp(cur, "-") == 0;
		if (dash && (out->len == 0 || last_dash)) {
			last_dash = true;
			continue;
		}
		if ((rc = te_buf_puts(out, cur, err)) < 0)
			return rc;
		last_dash = dash;
	}
	if (out->len > 0 && last_dash)
		out->ptr[--out->len] = '\0';
	return 0;
}

int te_slug_slugify(char **out, const char *in, te_error *err)
{
	te_buf b = TE_BUF_INIT(4 * (size_t)TE_SLUG_INPUT_MAX);
	int rc;

	*out = NULL;
	if ((rc = slugify_buf(&b, in, err)) < 0)
		goto done;
	if (!(*out = te_buf_detach(&b)))
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
done:
	te_buf_dispose(&b);
	return rc;
}

/* Go's regexp ^[\w][\w.-]*$ (ASCII \w) plus werf's length limit. */
static bool is_docker_tag(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		bool word = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		            (c >= 'A' && c <= 'Z') || c == '_';

		if (!word && (i == 0 || (c != '.' && c != '-')))
			return false;
		if (i >= DOCKER_TAG_MAX)
			return false;
	}
	return true;
}

/* werf's internal slug(data, maxSize), legacy crop quirk included. */
static int slug_limited(te_buf *out, const char *in, size_t max_size,
                        te_error *err)
{
	char hash[9];
	size_t hlen, max_len;
	int n, rc;

	if ((rc = slugify_buf(out, in, err)) < 0)
		return rc;
	n = snprintf(hash, sizeof(hash), "%x",
	             (unsigned)te_slug_murmur3(in, strlen(in), 0));
	hlen = (size_t)n;
	if (out->len == 0)
		return te_buf_put(out, hash, hlen, err);
	/*
	 * werf then drops the last char only if the crop *starts* with '-',
	 * which slugify output never does: a crop ending on '-' is kept and
	 * the result reads "...--<hash>".
	 */
	max_len = max_size - hlen - 1;
	if (out->len > max_len) {
		out->len = max_len;
		out->ptr[max_len] = '\0';
	}
	if ((rc = te_buf_puts(out, "-", err)) < 0)
		return rc;
	return te_buf_put(out, hash, hlen, err);
}

int te_slug_docker_tag(char **out, const char *in, te_error *err)
{
	te_buf b = TE_BUF_INIT(4 * (size_t)TE_SLUG_INPUT_MAX + 16);
	int rc = 0;

	*out = NULL;
	if (!*in || is_docker_tag(in)) {
		if (!(*out = te_strdup(in, err)))
			rc = TE_ENOMEM;
		goto done;
	}
	if ((rc = slug_limited(&b, in, DOCKER_TAG_MAX, err)) < 0)
		goto done;
	if (!(*out = te_buf_detach(&b)))
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
done:
	te_buf_dispose(&b);
	return rc;
}
