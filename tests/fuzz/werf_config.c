/*
 * werf_config.c - werf.yaml as pushed in a commit: te_config_parse.
 * Input: the file's bytes.
 */
#include "fuzz.h"
#include "tagexport/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	te_werf_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;

	if (te_config_parse(&cfg, (const char *)data, size, "werf.yaml",
	                    &err) == 0 &&
	    !cfg)
		abort(); /* success must return a config */
	te_config_free(cfg);
	return 0;
}
