/*
 * reference.c - image references from --tag renderings, --repo and
 * Dockerfile FROM lines: te_ref_parse and te_ref_parse_repo, then the
 * accessors of a parsed reference, which must format back to a reference
 * that parses.
 * Input: the reference text (up to the first NUL).
 */
#include "fuzz.h"
#include "tagexport/reference.h"

static void check(const te_ref *ref)
{
	te_ref again = TE_REF_INIT;
	te_error err = TE_ERROR_INIT;
	char *s = te_ref_format(ref);

	(void)te_ref_api_host(ref);
	(void)te_ref_host_is_loopback(ref->domain);
	if (s && te_ref_parse(&again, s, &err) < 0)
		abort(); /* a normalised reference must parse again */
	te_ref_dispose(&again);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[1], *copy = fuzz_split(data, size, f, 1, NULL);
	te_ref ref = TE_REF_INIT;
	te_error err = TE_ERROR_INIT;

	if (!copy)
		return 0;
	if (te_ref_parse(&ref, copy, &err) == 0)
		check(&ref);
	te_ref_dispose(&ref);
	err = (te_error)TE_ERROR_INIT;
	if (te_ref_parse_repo(&ref, copy, &err) == 0)
		(void)te_ref_api_host(&ref);
	te_ref_dispose(&ref);
	(void)te_ref_tag_valid(copy);
	(void)te_ref_host_is_loopback(copy);
	free(copy);
	return 0;
}
