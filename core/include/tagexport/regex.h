/*
 * regex.h - regular expressions with Go's regexp syntax and semantics
 * (RE2 syntax, https://github.com/google/re2/wiki/Syntax; Go's package
 * regexp, https://pkg.go.dev/regexp and regexp/syntax).
 *
 * Guarantees:
 *  1. Syntax is Go's regexp.Compile (syntax.Perl flags): classes, Perl and
 *     POSIX classes, Unicode categories and scripts (Unicode 13, as Go
 *     1.19), (?flags), named groups, \Q..\E, lazy and counted repetition.
 *     A bad pattern fails with Go's message, e.g.
 *     "error parsing regexp: missing closing ): `(a`".
 *  2. Matching is leftmost-first (Perl's; TE_REGEX_LONGEST gives Go's
 *     leftmost-longest) on UTF-8 text; an invalid byte is U+FFFD of width
 *     one, as Go decodes it.
 *  3. Matching runs a Pike VM: time is linear in text length times
 *     program size, memory is bounded by the program.  Patterns are
 *     bounded: TE_REGEX_PATTERN_MAX bytes, repetition counts up to 1000
 *     (Go's limit, nested counts multiplied), TE_REGEX_PROG_MAX
 *     instructions, group nesting 1000, 256 Ki rune ranges in all
 *     classes (\pL alone holds 600-odd).  Go accepts some patterns
 *     beyond these ("expression too large" here).
 *  4. Every matching function takes an optional work budget (*steps, the
 *     VM steps left; NULL = none): it is decremented as the VM works and a
 *     call that would exceed it fails with TE_EINVALID.
 *
 * Offsets are byte offsets into the text; an unset group is -1.
 * A te_regex is immutable after compilation: threads may share one.
 */
#ifndef TAGEXPORT_REGEX_H
#define TAGEXPORT_REGEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"

#define TE_REGEX_PATTERN_MAX (64 * 1024)
#define TE_REGEX_PROG_MAX 100000

/* Flags of te_regex_compile. */
#define TE_REGEX_LONGEST (1u << 0) /* leftmost-longest (Go's Longest) */

typedef struct te_regex te_regex;

/**
 * Compile a pattern.
 *
 * @param[out] out  the program; free with te_regex_free
 * @param pat       pattern bytes (need not be NUL-terminated)
 * @return 0, TE_EINVALID (err holds Go's message), TE_ENOMEM
 */
int te_regex_compile(te_regex **out, const char *pat, size_t len,
                     unsigned flags, te_error *err);

void te_regex_free(te_regex *re);

/* Number of groups, the whole match (group 0) included. */
size_t te_regex_groups(const te_regex *re);

/* Name of group i ("" when unnamed), borrowed from re. */
const char *te_regex_group_name(const te_regex *re, size_t i);

/**
 * Find the leftmost match in text[0, len) that starts at or after pos
 * (the text before pos still counts for ^ and \b, as in Go).
 *
 * @param[out] caps  2 * ncaps offsets (start, end of each group) when a
 *                   match is found; ncaps may be 0 (match only) and is
 *                   clamped to te_regex_groups
 * @return 1 found, 0 none, or a negative te_code (budget, memory)
 */
int te_regex_find(ptrdiff_t *caps, size_t ncaps, const te_regex *re,
                  const char *text, size_t len, size_t pos, uint64_t *steps,
                  te_error *err);

/* Go's Regexp.MatchString: *out says whether text has a match. */
int te_regex_match(bool *out, const te_regex *re, const char *text, size_t len,
                   uint64_t *steps, te_error *err);

/*
 * Called for each match of te_regex_find_all with all groups' offsets
 * (2 * te_regex_groups entries, borrowed for the call); a nonzero return
 * stops the walk and is returned.
 */
typedef int (*te_regex_match_fn)(void *payload, const ptrdiff_t *caps);

/**
 * Go's Regexp.FindAll...: the successive non-overlapping matches, at most
 * n (n < 0: all); an empty match right after the previous match is
 * skipped, as Go does.
 *
 * @return 0, the callback's nonzero value, or a negative te_code
 */
int te_regex_find_all(const te_regex *re, const char *text, size_t len, long n,
                      te_regex_match_fn fn, void *payload, uint64_t *steps,
                      te_error *err);

/**
 * Go's Regexp.Expand: append tmpl to out with $1, ${1}, $name, ${name}
 * replaced by the groups of caps in src, and $$ by "$".
 */
int te_regex_expand(te_buf *out, const te_regex *re, const char *tmpl,
                    size_t tlen, const char *src, const ptrdiff_t *caps,
                    te_error *err);

/**
 * Go's ReplaceAllString (literal false: repl is an Expand template) and
 * ReplaceAllLiteralString (literal true): appends the result to out.
 */
int te_regex_replace_all(te_buf *out, const te_regex *re, const char *text,
                         size_t len, const char *repl, size_t rlen,
                         bool literal, uint64_t *steps, te_error *err);

/* Called for each piece of te_regex_split, borrowed for the call. */
typedef int (*te_regex_piece_fn)(void *payload, const char *p, size_t len);

/**
 * Go's Regexp.Split(s, n): n == 0 gives no pieces, n < 0 all of them,
 * else at most n (the last is the unsplit rest).
 */
int te_regex_split(const te_regex *re, const char *text, size_t len, long n,
                   te_regex_piece_fn fn, void *payload, uint64_t *steps,
                   te_error *err);

/* Go's regexp.QuoteMeta: appends s with \ before each metacharacter. */
int te_regex_quote_meta(te_buf *out, const char *s, size_t len, te_error *err);

#endif
