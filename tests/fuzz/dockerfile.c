/*
 * dockerfile.c - a Dockerfile from a pushed commit: te_dockerfile_parse,
 * then te_dockerfile_inputs for the last stage and for a named target
 * with build args, and te_dockerfile_sources_match on a few paths.
 * Input: Dockerfile NUL target NUL build args (NAME=VALUE, one a line); a
 * plain Dockerfile is a valid input.
 */
#include "fuzz.h"
#include "tagexport/dockerfile.h"

#define MAX_ARGS 16

static void inputs(const te_dockerfile *df, const char *target,
                   const char *const *args, size_t nargs)
{
	static const char *const paths[] = {"Dockerfile", "src/main.c", "a/b/c",
	                                    ".", ""};
	te_strvec bases = TE_STRVEC_INIT, sources = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;
	size_t i;

	if (te_dockerfile_inputs(&bases, &sources, df, target, args, nargs,
	                         &err) == 0)
		for (i = 0; i < sizeof(paths) / sizeof(*paths); i++)
			(void)te_dockerfile_sources_match(&sources, paths[i]);
	te_strvec_dispose(&bases);
	te_strvec_dispose(&sources);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[3], *copy, *line, *save = NULL;
	const char *args[MAX_ARGS];
	size_t nargs = 0;
	te_dockerfile *df = NULL;
	te_error err = TE_ERROR_INIT;

	copy = fuzz_split(data, size, f, 3, NULL);
	if (!copy)
		return 0;
	if (te_dockerfile_parse(&df, f[0], strlen(f[0]), &err) == 0) {
		for (line = strtok_r(f[2], "\n", &save);
		     line && nargs < MAX_ARGS;
		     line = strtok_r(NULL, "\n", &save))
			args[nargs++] = line;
		inputs(df, NULL, args, nargs);
		if (*f[1])
			inputs(df, f[1], args, nargs);
	}
	te_dockerfile_free(df);
	free(copy);
	return 0;
}
