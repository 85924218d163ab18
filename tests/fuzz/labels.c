/*
 * labels.c - --add-label flags and WERF_EXPORT_ADD_LABEL_* variables:
 * te_labels_parse_werf, then every accessor of the result.
 * Input: separator NUL environment entries (one a line) NUL flag values
 * (one a line; "\x01" inside a value stands for a newline).  An empty
 * separator means "none given".
 */
#include "fuzz.h"
#include "tagexport/labels.h"

#define MAX_LIST 16

static size_t lines(const char **out, char *s)
{
	char *save = NULL, *line, *p;
	size_t n = 0;

	for (line = strtok_r(s, "\n", &save); line && n < MAX_LIST;
	     line = strtok_r(NULL, "\n", &save)) {
		for (p = line; (p = strchr(p, '\x01')); p++)
			*p = '\n';
		out[n++] = line;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[3], *copy = fuzz_split(data, size, f, 3, NULL);
	const char *env[MAX_LIST + 1], *flags[MAX_LIST];
	te_labels *labels = NULL;
	te_error err = TE_ERROR_INIT;
	size_t i, nflags;

	if (!copy)
		return 0;
	env[lines(env, f[1])] = NULL;
	nflags = lines(flags, f[2]);
	if (te_labels_parse_werf(&labels, env, flags, nflags,
	                         *f[0] ? f[0] : NULL, &err) == 0) {
		for (i = 0; i < te_labels_count(labels); i++)
			if (te_labels_get(labels, te_labels_key(labels, i)) !=
			    te_labels_value(labels, i))
				abort(); /* keys are unique */
	}
	te_labels_free(labels);
	free(copy);
	return 0;
}
