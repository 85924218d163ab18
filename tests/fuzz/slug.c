/*
 * slug.c - image names and git tags turned into docker tags, and image
 * selection by pattern: te_slug_slugify, te_slug_docker_tag,
 * te_slug_murmur3, te_select_images.
 * Input: the text NUL image names (one a line) NUL patterns (one a line).
 */
#include "fuzz.h"
#include "tagexport/reference.h"
#include "tagexport/select.h"
#include "tagexport/slug.h"

#define MAX_LIST 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[3], *copy = fuzz_split(data, size, f, 3, NULL);
	const char *names[MAX_LIST], *patterns[MAX_LIST];
	bool selected[MAX_LIST];
	size_t nnames, npatterns;
	te_error err = TE_ERROR_INIT;
	char *out = NULL;

	if (!copy)
		return 0;
	(void)te_slug_murmur3(data, size, 0);
	(void)te_slug_slugify(&out, f[0], &err);
	free(out);
	out = NULL;
	err = (te_error)TE_ERROR_INIT;
	if (te_slug_docker_tag(&out, f[0], &err) == 0 && *f[0] &&
	    !te_ref_tag_valid(out))
		abort(); /* %image_safe_slug% of a name is a valid tag */
	free(out);
	nnames = fuzz_lines(names, MAX_LIST, f[1]);
	npatterns = fuzz_lines(patterns, MAX_LIST, f[2]);
	err = (te_error)TE_ERROR_INIT;
	(void)te_select_images(selected, names, nnames, patterns, npatterns,
	                       &err);
	free(copy);
	return 0;
}
