/*
 * regex.c - Go regexp syntax and the Pike VM: te_regex_compile and every
 * matching function, with the invariants Go's regexp guarantees.
 * Input: flags byte, pattern NUL text NUL replacement.  Flags: bit 0
 * leftmost-longest, bits 1-3 the n of find_all and split (-1..6).
 */
#include "fuzz.h"
#include "tagexport/regex.h"

/* enough for any input of run.sh's max_len on a big program */
#define STEPS 20000000u

struct walk {
	size_t len, groups, count;
	ptrdiff_t prev_end;
};

/* Every match lies inside the text after the previous one; every group
 * is unset or inside its match. */
static int check_match(void *payload, const ptrdiff_t *c)
{
	struct walk *w = payload;
	size_t g;

	if (c[0] < w->prev_end || c[0] > c[1] || (size_t)c[1] > w->len)
		abort();
	for (g = 1; g < w->groups; g++)
		if (c[2 * g] >= 0 &&
		    (c[2 * g] < c[0] || c[2 * g] > c[2 * g + 1] ||
		     c[2 * g + 1] > c[1]))
			abort();
	w->prev_end = c[1];
	w->count++;
	return 0;
}

static int count_piece(void *payload, const char *p, size_t len)
{
	(void)p;
	(void)len;
	((struct walk *)payload)->count++;
	return 0;
}

/* QuoteMeta(text) is a pattern matching exactly the text (valid UTF-8:
 * Go refuses other patterns). */
static void check_quote(const char *text, size_t len)
{
	te_error err = TE_ERROR_INIT;
	te_buf q = TE_BUF_INIT(4 * len + 16);
	te_regex *re = NULL;
	ptrdiff_t c[2];
	int rc;

	if (te_regex_quote_meta(&q, text, len, &err) < 0)
		abort();
	rc = te_regex_compile(&re, q.ptr, q.len, 0, &err);
	if (rc == 0 &&
	    (te_regex_find(c, 1, re, text, len, 0, NULL, &err) != 1 ||
	     c[0] != 0 || (size_t)c[1] != len))
		abort();
	if (rc < 0 && !strstr(err.msg, "invalid UTF-8") &&
	    !strstr(err.msg, "exceeds the limit"))
		abort();
	te_regex_free(re);
	te_buf_dispose(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[3], *copy;
	size_t rlen = 0, tlen;
	te_error err = TE_ERROR_INIT;
	te_regex *re = NULL;
	te_buf out = TE_BUF_INIT(1 << 20);
	uint64_t steps = STEPS;
	struct walk w = {0, 0, 0, 0};
	unsigned flags;
	long n;
	bool m;
	int rc;

	if (size < 1)
		return 0;
	flags = data[0];
	n = (long)((flags >> 1) & 7) - 1;
	copy = fuzz_split(data + 1, size - 1, f, 3, &rlen);
	if (!copy)
		return 0;
	tlen = strlen(f[1]);
	if (te_regex_compile(&re, f[0], strlen(f[0]), flags & 1, &err) < 0) {
		if (re || err.code == 0)
			abort();
		goto done;
	}
	w.len = tlen;
	w.groups = te_regex_groups(re);
	rc =
	    te_regex_find_all(re, f[1], tlen, n, check_match, &w, &steps, &err);
	if (rc == 0 && n >= 0 && w.count > (size_t)n)
		abort();
	if (rc == 0 && te_regex_match(&m, re, f[1], tlen, &steps, &err) == 0 &&
	    m != (w.count > 0) && n != 0)
		abort();
	err = (te_error)TE_ERROR_INIT;
	(void)te_regex_replace_all(&out, re, f[1], tlen, f[2], rlen, false,
	                           &steps, &err);
	te_buf_clear(&out);
	err = (te_error)TE_ERROR_INIT;
	(void)te_regex_replace_all(&out, re, f[1], tlen, f[2], rlen, true,
	                           &steps, &err);
	w.count = 0;
	err = (te_error)TE_ERROR_INIT;
	if (te_regex_split(re, f[1], tlen, n, count_piece, &w, &steps, &err) ==
	        0 &&
	    n > 0 && w.count > (size_t)n)
		abort();
done:
	check_quote(f[1], tlen);
	te_regex_free(re);
	te_buf_dispose(&out);
	free(copy);
	return 0;
}
