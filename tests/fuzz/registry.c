/*
 * registry.c - what a registry answers besides documents (the private
 * helpers of core/src/registry_util.c): WWW-Authenticate challenges,
 * Location and upload URLs, Retry-After and the retry decision, error
 * bodies, auths keys.
 * Input: WWW-Authenticate NUL base URL NUL Location NUL Retry-After NUL
 * error body.
 */
#include "fuzz.h"
#include "registry_int.h"

#define DIGEST                                                                 \
	"sha256:"                                                              \
	"0000000000000000000000000000000000000000000000000000000000000000"

static void location(const char *base, const char *loc)
{
	te_error err = TE_ERROR_INIT;
	char *url = NULL, *with = NULL;

	if (te_reg__resolve_location(&url, base, loc, &err) == 0) {
		if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
			abort(); /* only http(s) results are accepted */
		(void)te_reg__url_add_digest(&with, url, DIGEST, &err);
	}
	free(url);
	free(with);
}

static void retry(const char *retry_after, const char *code, size_t size)
{
	struct te_reg_retry_policy p = {5, 100, 30000, 600000,
	                                TE_REG_RETRY_AFTER_CAP_MS};
	struct te_reg_retry_in in = {0};
	long delay;

	(void)te_reg__retry_after_ms(retry_after, 1700000000);
	in.attempt = 1 + (int)(size % 6);
	in.status = 400 + (long)(size % 200);
	in.error_code = code;
	in.retry_after = retry_after;
	in.now = 1700000000;
	in.elapsed_ms = (long)(size * 97 % 700000);
	in.jitter = (uint32_t)size * 2654435761u;
	delay = te_reg__retry_decide(&p, &in);
	if (delay > p.total_ms)
		abort(); /* never waits past the total budget */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct te_reg_challenge chal;
	te_error err = TE_ERROR_INIT;
	char *f[5], *copy, code[64], host[256];
	size_t body_len;

	copy = fuzz_split(data, size, f, 5, &body_len);
	if (!copy)
		return 0;
	memset(&chal, 0, sizeof(chal));
	(void)te_reg__parse_challenge(&chal, f[0], &err);
	location(f[1], f[2]);
	te_reg__error_code(code, f[4], body_len);
	retry(f[3], code, size);
	err = (te_error)TE_ERROR_INIT;
	(void)te_reg__http_error(&err, 400 + (long)(size % 200), f[4], body_len,
	                         "get manifest");
	te_reg__norm_host(host, sizeof(host), f[1]);
	(void)te_reg__helper_server(host);
	(void)te_reg__host_is_loopback(f[1]);
	(void)te_reg__digest_valid(f[0]);
	free(copy);
	return 0;
}
