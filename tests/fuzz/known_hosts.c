/*
 * known_hosts.c - a project's known_hosts file and the host key an SSH
 * server offers: te_known_hosts_check, te_known_hosts_fingerprint,
 * te_known_hosts_key_type and te_base64_decode/encode (the key field).
 * Input: host NUL port NUL base64 key NUL known_hosts text.
 */
#include "fuzz.h"
#include "tagexport/base64.h"
#include "tagexport/known_hosts.h"

#define KEY_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char key[KEY_MAX];
	static char again[TE_BASE64_LEN(KEY_MAX) + 1];
	char fp[TE_HOSTKEY_FINGERPRINT_MAX], type[64];
	char *f[4], *copy;
	size_t text_len;
	long key_len;

	copy = fuzz_split(data, size, f, 4, &text_len);
	if (!copy)
		return 0;
	key_len = te_base64_decode(key, sizeof(key), f[2], strlen(f[2]));
	if (key_len < 0)
		key_len = 0;
	/* Decoding what was encoded gives the same bytes. */
	te_base64_encode(again, key, (size_t)key_len);
	if (te_base64_decode(key, sizeof(key), again, strlen(again)) != key_len)
		abort();
	(void)te_known_hosts_check(f[3], text_len, f[0],
	                           (unsigned int)strtoul(f[1], NULL, 10), key,
	                           (size_t)key_len);
	te_known_hosts_fingerprint(fp, key, (size_t)key_len);
	te_known_hosts_key_type(type, sizeof(type), key, (size_t)key_len);
	free(copy);
	return 0;
}
