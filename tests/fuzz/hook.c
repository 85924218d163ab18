/*
 * hook.c - what git hands the post-receive hook on stdin: te_hook_parse.
 * Input: the bytes of stdin.
 */
#include "fuzz.h"
#include "tagexport/hook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	te_hook_updates up = TE_HOOK_UPDATES_INIT;
	te_error err = TE_ERROR_INIT;
	size_t i;

	if (te_hook_parse(&up, (const char *)data, size, &err) == 0)
		for (i = 0; i < up.count; i++)
			if ((up.items[i].kind == TE_HOOK_TAG) !=
			    (up.items[i].tag != NULL))
				abort(); /* a tag name exactly for tags */
	te_hook_updates_dispose(&up);
	return 0;
}
