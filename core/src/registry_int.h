/*
 * registry_int.h - private pieces of the registry client.
 *
 * registry_util.c holds the pure helpers (challenge parsing, Location
 * resolution, docker config.json lookup, digests, error bodies) so the
 * unit tests can reach them without a server.  registry.c owns the
 * te_registry handle and the request engine; registry_copy.c streams
 * blobs between two registries with one curl multi handle.
 *
 * Invariants:
 *  1. Credentials live only in te_registry (user/pass/tokens) and in
 *     libcurl options; they never reach a te_error or a log line.
 *  2. Every value taken from a response header is length-capped
 *     (TE_REG_HDR_MAX, TE_REG_LOCATION_MAX) and every body is read into
 *     a bounded te_buf.
 *  3. A digest from the network is used only after te_reg__digest_valid.
 */
#ifndef TAGEXPORT_REGISTRY_INT_H
#define TAGEXPORT_REGISTRY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <time.h>

#include <curl/curl.h>

#include "tagexport/registry.h"

#define TE_REG_HDR_MAX 4096      /* one captured header value */
#define TE_REG_LOCATION_MAX 8192 /* Location header / upload URL */
#define TE_REG_ERRBODY_MAX 65536 /* registry error JSON */
#define TE_REG_TOKEN_BODY_MAX (1024 * 1024)
#define TE_REG_TOKEN_MAX 16384
#define TE_REG_STREAM_BUF (2u * 1024 * 1024) /* ring per streamed blob */
#define TE_REG_CURL_BUF (512L * 1024)
#define TE_REG_TOKENS 16

/* ---- pure helpers (registry_util.c) ---- */

/* "sha256:" + 64 lowercase hex, nothing else. */
bool te_reg__digest_valid(const char *digest);

/* out = "sha256:" + hex(sha256(data)). */
void te_reg__sha256(char out[TE_DIGEST_STR_MAX], const void *data, size_t len);

/* Format a finished EVP sha256 (32 bytes) as a digest string. */
void te_reg__digest_fmt(char out[TE_DIGEST_STR_MAX],
                        const unsigned char md[32]);

/* localhost, 127.0.0.0/8, [::1] (port ignored). */
bool te_reg__host_is_loopback(const char *host);

/* Parsed WWW-Authenticate challenge; only the first Bearer or Basic
 * challenge is kept (Bearer preferred). */
enum te_reg_auth_scheme {
	TE_REG_AUTH_NONE = 0,
	TE_REG_AUTH_BASIC,
	TE_REG_AUTH_BEARER
};

struct te_reg_challenge {
	enum te_reg_auth_scheme scheme;
	char realm[1024];
	char service[512];
	char scope[1024];
	char error[64];
};

/* Parse one (possibly multi-challenge) header value.  Unknown schemes are
 * skipped; returns TE_EINVALID when nothing usable was found. */
int te_reg__parse_challenge(struct te_reg_challenge *out, const char *value,
                            te_error *err);

/* Resolve Location (absolute or relative, RFC 3986) against base; *out is
 * heap (free()).  Only http/https results are accepted. */
int te_reg__resolve_location(char **out, const char *base, const char *location,
                             te_error *err);

/* Append "digest=<d>" to an upload URL with ? or & as needed (heap). */
int te_reg__url_add_digest(char **out, const char *url, const char *digest,
                           te_error *err);

/*
 * Look up Basic credentials for host in config.json text (the "auths"
 * map; keys are normalized like docker's ConvertToHostname, so
 * "https://host/v1/" matches "host").  *user and *pass are heap strings
 * (free(), wipe first) or NULL when there is no entry: that is not an
 * error.  TE_EINVALID for malformed JSON or a broken "auth" value.
 */
int te_reg__config_lookup(char **user, char **pass, const char *json,
                          size_t len, const char *host, te_error *err);

/* Same, reading dir/config.json; a missing file means no credentials. */
int te_reg__config_load(char **user, char **pass, const char *dir,
                        const char *host, te_error *err);

/* Zero and free a secret string. */
void te_reg__secret_free(char *s);

/*
 * Map an HTTP failure to a te_error: 401/403 TE_EAUTH, 404 TE_ENOTFOUND,
 * 5xx/429 TE_ENET, else TE_ERROR.  Message "<what>: <status> CODE:
 * message" from a distribution error body when it parses, else
 * "<what>: HTTP <status>".  Body is untrusted; only printable ASCII of
 * the first error is kept.
 */
int te_reg__http_error(te_error *err, long status, const char *body, size_t len,
                       const char *what);

/* ---- engine shared by registry.c and registry_copy.c ---- */

/* Response metadata captured by the header callback; reset at each new
 * status line (redirects, 100 Continue). */
struct te_reg_resp {
	long status;
	char content_type[128];
	char docker_digest[TE_DIGEST_STR_MAX];
	char location[TE_REG_LOCATION_MAX];
	char www_auth[TE_REG_HDR_MAX];
	int64_t content_length;
	bool overflow; /* some header was too long and got truncated */
};

struct te_reg_token {
	char *scope;
	char *token;
	time_t expires;
};

struct te_registry {
	char *host; /* as given by the caller */
	char *base; /* scheme://api-host */
	bool https;
	bool verify;
	long timeout;
	te_log log;
	char *config_dir;
	CURL *easy;
	bool pinged;
	struct te_reg_challenge chal;
	char *user, *pass;
	struct te_reg_token tokens[TE_REG_TOKENS];
	unsigned int token_next;
};

struct te_reg_req {
	const char *method;
	const char *url;
	const char *scope;
	const char *accept;
	const char *content_type;
	const void *body;
	size_t body_len;
	size_t body_off;
	bool follow;
	bool no_auth;
	bool realm_creds; /* token request: Basic creds to the realm */
	te_buf *out;      /* 2xx body sink; NULL discards */
	bool out_overflow;
	long body_status;
	te_buf errbody;
	struct te_reg_resp resp;
};

/* A sync request on reg->easy: 0 once any HTTP answer arrived (check
 * r->resp.status), < 0 on transport failure.  Retries idempotent requests
 * on network errors / 429 / 502-504, re-authenticates once on a Bearer
 * 401.  r->errbody must be initialised (bounded) by the caller. */
int te_reg__request(struct te_reg_req *r, te_registry *reg, te_error *err);

/* te_reg__http_error for r with "<what> host/repo:ref" context. */
int te_reg__fail_status(struct te_reg_req *r, te_registry *reg,
                        const char *what, const char *repo, const char *ref,
                        te_error *err);

void te_reg__token_clear(struct te_reg_token *t);

size_t te_reg__header_cb(char *data, size_t size, size_t n, void *payload);

/* Prepare an easy handle with the common options (timeouts, TLS, buffer
 * sizes, protocols) for reg. */
int te_reg__easy_setup(CURL *easy, te_registry *reg, te_error *err);

/*
 * Attach credentials for scope ("repository:name:pull,push"; several
 * scopes are space-separated) to easy, about to request url (nothing is
 * attached when url is not under the registry's origin): Basic via
 * CURLOPT_USERNAME/PASSWORD, Bearer by appending an Authorization header to
 * *hdrs.  Pings lazily first.
 */
int te_reg__auth_apply(CURL *easy, struct curl_slist **hdrs, te_registry *reg,
                       const char *url, const char *scope, te_error *err);

const te_log *te_reg__log(const te_registry *reg);

/* base URL "http(s)://host" (no trailing slash) and display host. */
const char *te_reg__base(const te_registry *reg);

/* Start an upload session: POST /v2/<repo>/blobs/uploads/ (+query),
 * 202 -> *location (absolute, heap); 201 -> *location NULL, *created. */
int te_reg__upload_start(char **location, bool *created, te_registry *reg,
                         const char *repo, const char *query, const char *scope,
                         te_error *err);

/* DELETE an upload session, best effort. */
void te_reg__upload_cancel(te_registry *reg, const char *location,
                           const char *repo);

#endif
