/*
 * unicode_case_lookup.c - Go's unicode.To*, unicode.Is* over the tables
 * gen_unicode_case.go writes into unicode_case.c (Go's unicode/letter.go
 * and unicode/graphic.go: binary searches of sorted ranges).
 */
#include "unicode/unicode_case.h"

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

#define CLASS(name)                                                            \
	bool te_unicode_is_##name(int32_t r)                                   \
	{                                                                      \
		return in_class(te_uclass_##name, te_uclass_##name##_len, r);  \
	}
CLASS(upper)
CLASS(lower)
CLASS(title)
CLASS(letter)
CLASS(space)
CLASS(digit)
CLASS(number)
CLASS(punct)
