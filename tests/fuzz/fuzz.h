/*
 * fuzz.h - what every libFuzzer harness of tests/fuzz shares: the entry
 * points' prototypes (the build uses -Wmissing-prototypes), the split
 * of one input into several NUL-terminated fields, and the split of a
 * field into lines.
 *
 * Harnesses that take more than one string read them from one input
 * separated by NUL bytes, so a seed is a plain file and libFuzzer's
 * mutations can move, grow or drop any field.
 */
#ifndef TE_FUZZ_H
#define TE_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * Copy data into a heap block (free() it; NULL when out of memory) cut
 * into n NUL-terminated fields at its first n-1 NUL bytes; fields the
 * input does not reach are "".  The last field keeps any further NULs,
 * so it is also given as bytes: *last_len is its length.
 */
static inline char *fuzz_split(const uint8_t *data, size_t size, char **fields,
                               size_t n, size_t *last_len)
{
	char *copy = malloc(size + 1), *p, *end, *nul;
	size_t i;

	if (!copy)
		return NULL;
	if (size)
		memcpy(copy, data, size);
	copy[size] = '\0';
	p = copy;
	end = copy + size;
	for (i = 0; i < n; i++)
		fields[i] = end; /* "" */
	for (i = 0; i + 1 < n && p < end; i++) {
		nul = memchr(p, '\0', (size_t)(end - p));
		fields[i] = p;
		if (!nul) {
			p = end;
			break;
		}
		p = nul + 1;
	}
	if (i + 1 == n)
		fields[n - 1] = p;
	if (last_len)
		*last_len = (size_t)(end - fields[n - 1]);
	return copy;
}

/* Cut s in place at its newlines into at most max non-empty lines stored
 * in out (borrowed from s); returns how many. */
static inline size_t fuzz_lines(const char **out, size_t max, char *s)
{
	char *save = NULL, *line;
	size_t n = 0;

	for (line = strtok_r(s, "\n", &save); line && n < max;
	     line = strtok_r(NULL, "\n", &save))
		out[n++] = line;
	return n;
}
#endif
