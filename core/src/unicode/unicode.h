/*
 * unicode.h - Go's Unicode data for the core (internal), one copy for the
 * regex and render modules.  Everything here is generated from Go's own
 * unicode package (https://pkg.go.dev/unicode), so that Sprig's string
 * functions and Go's regexp answer here as they do in werf:
 *   - tables.c (gen_tables.go): every general category and script as
 *     sorted [lo, hi] pairs, and unicode.SimpleFold's orbits;
 *   - unicode_case.c (gen_unicode_case.go): unicode.CaseRanges and the
 *     White_Space class unicode.IsSpace uses.
 * unicode_lookup.c answers as unicode.ToUpper, ToLower, ToTitle, IsUpper,
 * IsLower, IsTitle, IsLetter, IsSpace, IsDigit, IsNumber and IsPunct do.
 * Pure functions over constant data, no allocation.
 */
#ifndef TE_UNICODE_H
#define TE_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A category or script ("Lu", "Greek"): n sorted [lo, hi] pairs in r. */
struct te_unicode_table {
	const char *name;
	const uint32_t *r;
	size_t n;
};
/* Sorted by name (strcmp order). */
extern const struct te_unicode_table te_unicode_tables[];
extern const size_t te_unicode_tables_len;
/* unicode.SimpleFold: {rune, next rune of its orbit}, sorted by rune. */
extern const uint32_t te_unicode_fold[][2];
extern const size_t te_unicode_fold_len;

/* The table named by name[0..len) (not NUL-terminated), or NULL. */
const struct te_unicode_table *te_unicode_table_find(const char *name,
                                                     size_t len);
bool te_unicode_table_has(const struct te_unicode_table *t, uint32_t r);

/* unicode.CaseRange: Delta[UpperCase, LowerCase, TitleCase]; a delta of
 * TE_UCASE_UPPER_LOWER marks alternating upper/lower pairs. */
#define TE_UCASE_UPPER_LOWER (0x10FFFF + 1)
struct te_ucase_range {
	int32_t lo, hi;
	int32_t delta[3];
};

struct te_urange {
	int32_t lo, hi;
};

extern const char te_ucase_version[];
extern const struct te_ucase_range te_ucase_ranges[];
extern const size_t te_ucase_ranges_len;
/* unicode.IsSpace's runes: Latin-1's six plus White_Space. */
extern const struct te_urange te_uclass_space[];
extern const size_t te_uclass_space_len;

int32_t te_unicode_to_upper(int32_t r);
int32_t te_unicode_to_lower(int32_t r);
int32_t te_unicode_to_title(int32_t r);
bool te_unicode_is_upper(int32_t r);
bool te_unicode_is_lower(int32_t r);
bool te_unicode_is_title(int32_t r);
bool te_unicode_is_letter(int32_t r);
bool te_unicode_is_space(int32_t r);
bool te_unicode_is_digit(int32_t r);
bool te_unicode_is_number(int32_t r);
bool te_unicode_is_punct(int32_t r);

#endif
