/*
 * mirror_url.c - a project's git_url as the mirror handles it: the
 * redaction of its userinfo from libgit2's messages (te_mirror__redact)
 * and the SSH port (static in core/src/mirror.c, which is therefore
 * compiled into this harness), and te_mirror_tag_valid on the same text.
 * Input: the URL (up to the first NUL).
 */
#include "fuzz.h"

#include "../../core/src/mirror.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[1], *copy = fuzz_split(data, size, f, 1, NULL);
	char msg[TE_ERROR_MSG_MAX];

	if (!copy)
		return 0;
	/* libgit2's messages quote the URL, often more than once. */
	snprintf(msg, sizeof(msg), "failed to connect to %s: %s refused", copy,
	         copy);
	te_mirror__redact(msg, copy);
	(void)ssh_port(copy);
	(void)te_mirror_tag_valid(copy);
	free(copy);
	return 0;
}
