/*
 * ignore.c - a .dockerignore from a pushed commit: te_ignore_parse, then
 * te_ignore_check and te_ignore_match on the paths that follow it (they
 * must agree).
 * Input: .dockerignore NUL paths, one per line.
 */
#include "fuzz.h"
#include "tagexport/ignore.h"

static void check(const te_ignore *ig, const char *path)
{
	te_error err = TE_ERROR_INIT;
	bool excluded;

	if (te_ignore_check(&excluded, ig, path, &err) < 0)
		excluded = false;
	if (te_ignore_match(ig, path) != excluded)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fixed[] = {"Dockerfile", "a/b/c.txt",
	                                    ".git/HEAD", "x"};
	char *f[2], *copy, *line, *save = NULL;
	te_ignore *ig = NULL;
	te_error err = TE_ERROR_INIT;
	size_t i, n = 0;

	copy = fuzz_split(data, size, f, 2, NULL);
	if (!copy)
		return 0;
	/* The file is the first field, which holds no NUL by construction;
	 * parse its bytes (a lone file without paths is the whole input). */
	if (te_ignore_parse(&ig, f[0], strlen(f[0]), &err) == 0) {
		for (i = 0; i < sizeof(fixed) / sizeof(*fixed); i++)
			check(ig, fixed[i]);
		for (line = strtok_r(f[1], "\n", &save); line && n < 64;
		     line = strtok_r(NULL, "\n", &save), n++)
			check(ig, line);
	}
	te_ignore_free(ig);
	free(copy);
	return 0;
}
