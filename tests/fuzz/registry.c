/*
 * registry.c - what a registry answers besides documents (the private
 * helpers of core/src/registry_http.c and registry_util.c): response
 * headers as libcurl hands them over (te_reg__header_cb), then the
 * WWW-Authenticate challenge, the Location resolved against the request
 * URL and the upload URL made of it, Retry-After and the retry decision,
 * the error body, auths keys.
 * Input: request URL NUL response header lines NUL error body.
 */
#include "fuzz.h"
#include "registry_int.h"

#define DIGEST                                                                 \
	"sha256:"                                                              \
	"0000000000000000000000000000000000000000000000000000000000000000"
#define NOW 1700000000

/* Each line (with its CRLF) in one call, as libcurl does. */
static void headers(struct te_reg_resp *r, char *block)
{
	char *line = block, *eol;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	while (*line) {
		eol = strchr(line, '\n');
		eol = eol ? eol + 1 : line + strlen(line);
		(void)te_reg__header_cb(line, 1, (size_t)(eol - line), r);
		line = eol;
	}
}

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

static void retry(const struct te_reg_resp *r, const char *code, size_t size)
{
	te_retry_policy p = {5,  100,  30000, 600000, TE_REG_RETRY_AFTER_CAP_MS,
	                     10, false};
	struct te_reg_retry_in in = {0};
	long delay;

	(void)te_retry_after_ms(r->retry_after, NOW);
	in.attempt = 1 + (int)(size % 6);
	in.status = r->status;
	in.error_code = code;
	in.retry_after = r->retry_after;
	in.now = NOW;
	in.elapsed_ms = (long)(size * 97 % 700000);
	in.jitter = (uint32_t)size * 2654435761u;
	delay = te_reg__retry_decide(&p, &in);
	if (delay > p.total_ms)
		abort(); /* never waits past the total budget */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct te_reg_challenge chal;
	struct te_reg_resp resp;
	te_error err = TE_ERROR_INIT;
	char *f[3], *copy, code[64], host[256];
	size_t body_len;

	copy = fuzz_split(data, size, f, 3, &body_len);
	if (!copy)
		return 0;
	headers(&resp, f[1]);
	memset(&chal, 0, sizeof(chal));
	(void)te_reg__parse_challenge(&chal, resp.www_auth, &err);
	location(f[0], resp.location);
	(void)te_reg__digest_valid(resp.docker_digest);
	te_reg__error_code(code, f[2], body_len);
	retry(&resp, code, size);
	err = (te_error)TE_ERROR_INIT;
	(void)te_reg__http_error(&err, resp.status, f[2], body_len,
	                         "get manifest");
	te_reg__norm_host(host, sizeof(host), f[0]);
	(void)te_reg__helper_server(host);
	(void)te_reg__host_is_loopback(host);
	free(copy);
	return 0;
}
