/*
 * apiclient.c - tagexport-server's answers to the post-receive hook:
 * te_api_parse_reply.
 * Input: two bytes of HTTP status (big endian, modulo 1000), then the body.
 */
#include "fuzz.h"
#include "tagexport/apiclient.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	te_api_reply reply;
	te_error err = TE_ERROR_INIT;
	long status;
	size_t i;

	if (size < 2)
		return 0;
	status = ((long)data[0] << 8 | data[1]) % 1000;
	memset(&reply, 0, sizeof(reply));
	if (te_api_parse_reply(&reply, status, (const char *)data + 2, size - 2,
	                       &err) == 0) {
		/* Text from the server is printable ASCII once returned. */
		for (i = 0; reply.job[i]; i++)
			if (reply.job[i] < 0x20 || reply.job[i] > 0x7e)
				abort();
		for (i = 0; reply.ignored[i]; i++)
			if (reply.ignored[i] < 0x20 || reply.ignored[i] > 0x7e)
				abort();
	}
	for (i = 0; err.msg[i]; i++)
		if (err.msg[i] < 0x20 || err.msg[i] > 0x7e)
			abort();
	return 0;
}
