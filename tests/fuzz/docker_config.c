/*
 * docker_config.c - registry credentials: a docker config.json or
 * containers auth.json (te_reg__config_lookup) and a credential helper's
 * stdout (te_reg__helper_parse), both private to core/src/registry_auth.c.
 * Input: registry host NUL the JSON document.
 */
#include "fuzz.h"
#include "registry_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct te_reg_creds creds = {0};
	char helper[TE_REG_HELPER_NAME_MAX];
	te_error err = TE_ERROR_INIT;
	char *f[2], *copy;
	size_t len;

	copy = fuzz_split(data, size, f, 2, &len);
	if (!copy)
		return 0;
	(void)te_reg__config_lookup(&creds, helper, f[1], len, f[0], &err);
	(void)te_reg__creds_empty(&creds);
	te_reg__creds_clear(&creds);
	err = (te_error)TE_ERROR_INIT;
	(void)te_reg__helper_parse(&creds, f[1], len, &err);
	te_reg__creds_clear(&creds);
	free(copy);
	return 0;
}
