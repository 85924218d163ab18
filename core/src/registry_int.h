/*
 * registry_int.h - private pieces of the registry client.
 *
 * registry_util.c holds the pure helpers (challenge parsing, Location
 * resolution, digests, error bodies, the retry decision) so the unit
 * tests can reach them without a server.  registry_auth.c finds
 * credentials (config.json, auth.json, credential helpers) and TLS
 * material (certs.d).  registry.c owns the te_registry handle and the
 * manifest and small-blob operations, registry_http.c the request engine
 * and the token flow; registry_copy.c streams blobs between two
 * registries with one curl multi handle.
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
#include "tagexport/retry.h"

#define TE_REG_HDR_MAX 4096      /* one captured header value */
#define TE_REG_LOCATION_MAX 8192 /* Location header / upload URL */
#define TE_REG_ERRBODY_MAX 65536 /* registry error JSON */
#define TE_REG_TOKEN_BODY_MAX (1024 * 1024)
#define TE_REG_TOKEN_MAX 16384
#define TE_REG_STREAM_BUF (2u * 1024 * 1024) /* ring per streamed blob */
#define TE_REG_CURL_BUF (512L * 1024)
#define TE_REG_TOKENS 16
#define TE_REG_CA_PEM_MAX (8u * 1024 * 1024) /* system bundle + certs.d */
#define TE_REG_HELPER_OUT_MAX (64 * 1024)    /* credential helper stdout */
#define TE_REG_HELPER_NAME_MAX 128
#define TE_REG_RETRY_AFTER_CAP_MS 60000L
#define TE_REG_BACKOFF_CAP_MS 30000L
#define TE_REG_CHUNK_DEFAULT (16L * 1024 * 1024)
#define TE_REG_CHUNK_MAX (1024L * 1024 * 1024)

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

/*
 * The Range header of an upload session (OCI distribution spec, "Get
 * upload status": "Range: 0-<end-of-range>", end inclusive; "bytes="
 * tolerated): *offset gets how many bytes the registry holds, i.e. where
 * the upload continues.  docker/distribution writes "0-0" for an empty
 * session as well as for one holding a single byte (it sends
 * "0-<size-1>" but never "0--1"); "0-0" is taken as 0: the continuation
 * then carries Content-Range 0-..., which a registry holding one byte
 * refuses (416) or catches at the digest check, rather than a guess that
 * would skip a byte.  TE_EINVALID for anything else (a start other than
 * 0, signs, junk, overflow).
 */
int te_reg__upload_range_parse(int64_t *offset, const char *value);

/* The first byte of a 206 answer's Content-Range "bytes <first>-<last>/
 * <total or *>" (RFC 9110 section 14.4); TE_EINVALID when malformed. */
int te_reg__content_range_first(int64_t *first, const char *value);

/* Append "digest=<d>" to an upload URL with ? or & as needed (heap). */
int te_reg__url_add_digest(char **out, const char *url, const char *digest,
                           te_error *err);

/* What a registry accepts as proof of identity; any member may be NULL. */
struct te_reg_creds {
	char *user, *pass;    /* Basic, and Basic to a token realm */
	char *identity_token; /* OAuth2 refresh token (docker login) */
	char *registry_token; /* bearer token sent as is */
};

void te_reg__creds_clear(struct te_reg_creds *c);
bool te_reg__creds_empty(const struct te_reg_creds *c);

/* Docker's normalization of an auths/credHelpers key (ConvertToHostname):
 * scheme and path dropped, lowercased, Docker Hub aliases -> docker.io. */
void te_reg__norm_host(char *dst, size_t cap, const char *key);

/* The server URL a credential helper is asked about: Docker Hub's is
 * "https://index.docker.io/v1/", any other the host[:port]. */
const char *te_reg__helper_server(const char *host);

/*
 * Look host up in one config.json / auth.json document.  helper gets the
 * credential helper to ask first (credHelpers[host], else credsStore) or
 * "" for none; out gets the "auths" entry ("auth" base64 user:password,
 * else username/password; identitytoken; registrytoken), empty when there
 * is none: that is not an error.  Names are validated: [a-zA-Z0-9_.-].
 * TE_EINVALID for malformed JSON, a broken "auth" value or a bad helper
 * name; the message never contains a secret.
 */
int te_reg__config_lookup(struct te_reg_creds *out,
                          char helper[TE_REG_HELPER_NAME_MAX], const char *json,
                          size_t len, const char *host, te_error *err);

/* A credential helper's stdout {"Username":..,"Secret":..}: "<token>" as
 * the user means Secret is an identity token. */
int te_reg__helper_parse(struct te_reg_creds *out, const char *json, size_t len,
                         te_error *err);

/* Run "docker-credential-<name> get" (execvp, no shell) with server on
 * stdin; stdout (bounded) is parsed.  A helper that reports "credentials
 * not found" leaves out empty.  The child is killed after timeout_ms. */
int te_reg__helper_get(struct te_reg_creds *out, const char *name,
                       const char *server, long timeout_ms, te_error *err);

/* Credentials for host: docker_dir/config.json first (helper, then
 * auths), then each auth file in order; the first source that has
 * something wins.  Missing files are skipped. */
int te_reg__creds_resolve(struct te_reg_creds *out, const char *docker_dir,
                          const char *const *auth_files, size_t nauth_files,
                          const char *host, long helper_timeout_ms,
                          te_error *err);

/* certs.d lookup for host under each root: every *.crt is appended to
 * ca_pem (PEM text), the first *.cert with a matching *.key becomes the
 * client pair (heap paths, NULL when none). */
int te_reg__certs_find(te_buf *ca_pem, char **client_cert, char **client_key,
                       const char *const *roots, size_t nroots,
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

/* errors[0].code of a distribution error body, "" when there is none. */
void te_reg__error_code(char out[64], const char *body, size_t len);

/* ---- retries (pure; registry_util.c) ---- */

/* One failed registry try, in the registry's own terms. */
struct te_reg_retry_in {
	int attempt;             /* 1 = the first try just failed */
	long status;             /* HTTP status, 0 when none arrived */
	int curl_code;           /* CURLcode of the transfer, 0 = CURLE_OK */
	const char *error_code;  /* errors[0].code, may be NULL */
	const char *retry_after; /* Retry-After header value, may be NULL */
	time_t now;              /* wall clock, for HTTP-date Retry-After */
	long elapsed_ms;         /* since the operation's first try began */
	uint32_t jitter;         /* random bits for the jitter */
};

/*
 * te_retry_decide (tagexport/retry.h) for a registry try: the curl code,
 * the status and Retry-After as retry.h classifies them, plus the
 * distribution error codes TOOMANYREQUESTS, UNAVAILABLE, UNKNOWN and
 * BLOB_UPLOAD_INVALID as transient answers.  The delay in ms, -1 to stop.
 */
long te_reg__retry_decide(const te_retry_policy *p,
                          const struct te_reg_retry_in *in);

/* ---- engine shared by registry.c and registry_copy.c ---- */

/* Response metadata captured by the header callback; reset at each new
 * status line (redirects, 100 Continue). */
struct te_reg_resp {
	long status;
	char content_type[128];
	char docker_digest[TE_DIGEST_STR_MAX];
	char location[TE_REG_LOCATION_MAX];
	char www_auth[TE_REG_HDR_MAX];
	char retry_after[64];
	int64_t content_length;
	int64_t chunk_min;       /* OCI-Chunk-Min-Length, 0 when absent */
	char range[64];          /* Range (upload status), "" = none */
	char content_range[128]; /* Content-Range (206), "" = none */
	bool overflow; /* some header was too long and got truncated */
};

struct te_reg_token {
	char *key; /* realm \n service \n scope */
	char *token;
	time_t expires;
};

struct te_registry {
	char *host; /* as given by the caller */
	char *base; /* scheme://api-host */
	const char *api_host;
	bool https;
	bool
	    http_fallback; /* loopback/insecure: https probe may drop to http */
	bool verify;
	bool https_upgrade; /* plain http first; https if the peer wants it */
	long timeout;
	long helper_timeout;
	te_retry_policy retry;
	te_log log;
	char *config_dir;
	char **auth_files;
	size_t nauth_files;
	te_buf ca_pem; /* system bundle + certs.d CAs, or empty */
	char *client_cert, *client_key;
	CURL *easy;
	bool pinged;
	bool creds_loaded;
	bool chunked; /* the registry refused a monolithic upload */
	struct te_reg_challenge chal;
	struct te_reg_creds creds;
	struct te_reg_token tokens[TE_REG_TOKENS];
	unsigned int token_next;
};

struct te_reg_req {
	const char *method;
	const char *url;
	const char *scope;
	const char *accept;
	const char *content_type;
	char content_range[96]; /* full header line, "" = none */
	const void *body;
	size_t body_len;
	size_t body_off;
	bool follow;
	bool no_auth;
	bool realm_creds; /* token request: Basic creds to the realm */
	bool no_retry;    /* one try only: the caller restarts (sessions) */
	bool probe;       /* the https probe of a host that may be http */
	int curl_code;    /* CURLcode of the last try */
	int attempts;     /* tries made */
	te_buf *out;      /* 2xx body sink; NULL discards */
	bool out_overflow;
	long body_status;
	te_buf errbody;
	struct te_reg_resp resp;
};

/* A sync request on reg->easy: 0 once any HTTP answer arrived (check
 * r->resp.status), < 0 on transport failure.  Retries as
 * te_reg__retry_decide says (each request here is safe to repeat: bodies
 * are in memory, a repeated POST only opens another upload session) and
 * re-authenticates once on a 401.  r->errbody must be initialised
 * (bounded) by the caller. */
int te_reg__request(struct te_reg_req *r, te_registry *reg, te_error *err);

/* te_reg__http_error for r with "<what> host/repo:ref" context. */
int te_reg__fail_status(struct te_reg_req *r, te_registry *reg,
                        const char *what, const char *repo, const char *ref,
                        te_error *err);

void te_reg__token_clear(struct te_reg_token *t);

/* Ping (lazily) so reg->base is final: https or, for loopback and
 * insecure hosts whose https probe failed at the TLS layer, http. */
int te_reg__ready(te_registry *reg, te_error *err);

/* A 401 arrived for scope with this WWW-Authenticate value: adopt the
 * challenge, load credentials, forget the cached token.  false when a
 * retry cannot help (no challenge, or nothing changed). */
bool te_reg__auth_refresh(te_registry *reg, const char *www_auth,
                          const char *scope);

/* Milliseconds of a monotonic clock. */
int64_t te_reg__now_ms(void);

/* Sleep ms (interrupted sleeps resume). */
void te_reg__sleep_ms(long ms);

/* A random 32-bit value for jitter. */
uint32_t te_reg__jitter(void);

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
 * 202 -> *location (absolute, heap); 201 -> *location NULL, *created.
 * chunk_min (may be NULL) gets OCI-Chunk-Min-Length, 0 when absent. */
int te_reg__upload_start(char **location, bool *created, int64_t *chunk_min,
                         te_registry *reg, const char *repo, const char *query,
                         const char *scope, te_error *err);

/*
 * Ask an open session how many bytes it holds (OCI "Get upload status":
 * GET on the newest Location, 204 with Range and Location).  On 0:
 * *offset >= 0 is where the upload continues and *location the newest
 * Location; *offset == -1 means the session is gone or its state is
 * unknown (404 BLOB_UPLOAD_UNKNOWN, any other non-retryable answer, no
 * or a malformed Range): the caller cancels it and opens a new one.  < 0
 * when the registry could not be asked (transport errors, 5xx after the
 * request's own retries); the error names the registry and repository.
 */
int te_reg__upload_status(int64_t *offset, char **location, te_registry *reg,
                          const char *repo, const char *scope, te_error *err);

/* Chunked upload of an in-memory body to an open session, from byte off
 * on (PATCH with Content-Range, chunks of chunk bytes, each response's
 * Location followed) and its final PUT ?digest=.  *location is updated;
 * *status gets the HTTP status of a failed request (0: none arrived). */
int te_reg__upload_chunked(char **location, long *status, te_registry *reg,
                           const char *repo, const char *scope,
                           const char *digest, const void *data, size_t len,
                           size_t off, int64_t chunk, te_error *err);

/* DELETE an upload session, best effort. */
void te_reg__upload_cancel(te_registry *reg, const char *location,
                           const char *repo);

#endif
