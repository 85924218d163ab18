/*
 * unicode_lookup.c - Go's unicode.To*, unicode.Is* over the generated
 * tables (Go's unicode/letter.go and unicode/graphic.go: binary searches
 * of sorted ranges).  unicode.IsUpper and friends test a general
 * category (Go checks a Latin-1 property table first, which agrees with
 * the categories), so they read the categories of tables.c.
 */
#include "unicode/unicode.h"

#include <string.h>

const struct te_unicode_table *te_unicode_table_find(const char *name,
                                                     size_t len)
{
	size_t lo = 0, hi = te_unicode_tables_len, mid, k;
	int d;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		k = strlen(te_unicode_tables[mid].name);
		d = strncmp(name, te_unicode_tables[mid].name,
		            len < k ? len : k);
		if (d == 0)
			d = len < k ? -1 : (len > k ? 1 : 0);
		if (d == 0)
			return &te_unicode_tables[mid];
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

bool te_unicode_table_has(const struct te_unicode_table *t, uint32_t r)
{
	size_t lo = 0, hi = t ? t->n : 0, m;

	while (lo < hi) {
		m = lo + (hi - lo) / 2;
		if (r < t->r[2 * m])
			hi = m;
		else if (r > t->r[2 * m + 1])
			lo = m + 1;
		else
			return true;
	}
	return false;
}

/* unicode.To: binary search of the case ranges (unicode/letter.go). */
static int32_t to_case(int c, int32_t r)
{
	size_t lo = 0, hi = te_ucase_ranges_len, m;
	const struct te_ucase_range *cr;

	while (lo < hi) {
		m = lo + (hi - lo) / 2;
		cr = &te_ucase_ranges[m];
		if (cr->lo <= r && r <= cr->hi) {
			/* alternating pairs: even offsets upper, odd lower */
			if (cr->delta[c] == TE_UCASE_UPPER_LOWER)
				return cr->lo + (((r - cr->lo) & ~1) | (c & 1));
			return r + cr->delta[c];
		}
		if (r < cr->lo)
			hi = m;
		else
			lo = m + 1;
	}
	return r;
}

int32_t te_unicode_to_upper(int32_t r)
{
	return to_case(0, r);
}

int32_t te_unicode_to_lower(int32_t r)
{
	return to_case(1, r);
}

int32_t te_unicode_to_title(int32_t r)
{
	return to_case(2, r);
}

static bool in_class(const struct te_urange *t, size_t n, int32_t r)
{
	size_t lo = 0, hi = n, m;

	while (lo < hi) {
		m = lo + (hi - lo) / 2;
		if (r < t[m].lo)
			hi = m;
		else if (r > t[m].hi)
			lo = m + 1;
		else
			return true;
	}
	return false;
}

static bool in_category(const char *name, int32_t r)
{
	return r >= 0 &&
	       te_unicode_table_has(te_unicode_table_find(name, strlen(name)),
	                            (uint32_t)r);
}

#define CATEGORY(fn, cat)                                                      \
	bool te_unicode_is_##fn(int32_t r)                                     \
	{                                                                      \
		return in_category(cat, r);                                    \
	}
CATEGORY(upper, "Lu")
CATEGORY(lower, "Ll")
CATEGORY(title, "Lt")
CATEGORY(letter, "L")
CATEGORY(digit, "Nd")
CATEGORY(number, "N")
CATEGORY(punct, "P")

bool te_unicode_is_space(int32_t r)
{
	return in_class(te_uclass_space, te_uclass_space_len, r);
}
