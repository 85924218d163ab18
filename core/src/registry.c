/*
 * registry.c - the te_registry handle: request engine, authentication
 * (anonymous, Basic from docker config.json, Bearer token flow) and the
 * manifest and small-blob operations.  Protocol notes:
 * ../../shared/reference/oci-distribution.md sections 1 and 2.
 *
 * Every request goes through do_request on the handle's one easy handle
 * (so connections are kept alive between calls).  Authentication is set
 * up lazily: the first request pings GET /v2/ and remembers the
 * challenge; Basic credentials are then sent only to URLs under the
 * registry's own origin, Bearer tokens are cached per scope.
 */
#include "registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#define ACCEPT_MANIFESTS                                                       \
	"Accept: application/vnd.oci.image.manifest.v1+json, "                 \
	"application/vnd.oci.image.index.v1+json, "                            \
	"application/vnd.docker.distribution.manifest.v2+json, "               \
	"application/vnd.docker.distribution.manifest.list.v2+json"

struct reg_token {
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
	struct reg_token tokens[TE_REG_TOKENS];
	unsigned int token_next;
};

struct req {
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

const char *te_registry_host(const te_registry *reg)
{
	return reg->host;
}

const char *te_reg__base(const te_registry *reg)
{
	return reg->base;
}

/* ---- header capture ---- */

static void set_capped(char *dst, size_t cap, const char *v, size_t n,
                       bool *overflow)
{
	if (n >= cap) {
		*overflow = true;
		dst[0] = '\0';
		return;
	}
	memcpy(dst, v, n);
	dst[n] = '\0';
}

size_t te_reg__header_cb(char *data, size_t size, size_t n, void *payload)
{
	struct te_reg_resp *r = payload;
	size_t len = size * n, nlen, vlen;
	const char *colon, *v;

	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		const char *sp = memchr(data, ' ', len);

		memset(r, 0, sizeof(*r));
		r->content_length = -1;
		if (sp && (size_t)(sp - data) + 4 <= len)
			r->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 +
			            (sp[3] - '0');
		return len;
	}
	colon = memchr(data, ':', len);
	if (!colon)
		return len;
	nlen = (size_t)(colon - data);
	v = colon + 1;
	vlen = len - nlen - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
	                v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
#define IS(name) (nlen == sizeof(name) - 1 && !strncasecmp(data, name, nlen))
	if (IS("location")) {
		set_capped(r->location, sizeof(r->location), v, vlen,
		           &r->overflow);
	} else if (IS("docker-content-digest")) {
		set_capped(r->docker_digest, sizeof(r->docker_digest), v, vlen,
		           &r->overflow);
	} else if (IS("content-type")) {
		const char *semi = memchr(v, ';', vlen);

		if (semi)
			vlen = (size_t)(semi - v);
		while (vlen && v[vlen - 1] == ' ')
			vlen--;
		set_capped(r->content_type, sizeof(r->content_type), v, vlen,
		           &r->overflow);
	} else if (IS("content-length")) {
		char tmp[32];
		bool ov = false;

		set_capped(tmp, sizeof(tmp), v, vlen, &ov);
		if (!ov && tmp[0] >= '0' && tmp[0] <= '9')
			r->content_length = strtoll(tmp, NULL, 10);
	} else if (IS("www-authenticate")) {
		size_t have = strlen(r->www_auth);

		if (have + vlen + 3 >= sizeof(r->www_auth)) {
			r->overflow = true;
		} else {
			if (have) {
				memcpy(r->www_auth + have, ", ", 2);
				have += 2;
			}
			memcpy(r->www_auth + have, v, vlen);
			r->www_auth[have + vlen] = '\0';
		}
	}
#undef IS
	return len;
}

static size_t write_cb(char *data, size_t size, size_t n, void *payload)
{
	struct req *r = payload;
	size_t len = size * n;
	te_error e = TE_ERROR_INIT;

	if (r->resp.status >= 200 && r->resp.status < 300) {
		if (!r->out)
			return len;
		if (te_buf_put(r->out, data, len, &e) < 0) {
			r->out_overflow = true;
			return 0;
		}
		return len;
	}
	if (r->body_status != r->resp.status) {
		te_buf_clear(&r->errbody);
		r->body_status = r->resp.status;
	}
	(void)te_buf_put(&r->errbody, data, len, &e); /* truncation is ok */
	return len;
}

static size_t read_cb(char *dst, size_t size, size_t n, void *payload)
{
	struct req *r = payload;
	size_t want = size * n, left = r->body_len - r->body_off;

	if (want > left)
		want = left;
	if (want)
		memcpy(dst, (const char *)r->body + r->body_off, want);
	r->body_off += want;
	return want;
}

/* ---- setup and auth ---- */

int te_reg__easy_setup(CURL *easy, te_registry *reg, te_error *err)
{
	CURLcode c = CURLE_OK;

#define SET(opt, val)                                                          \
	do {                                                                   \
		if (c == CURLE_OK)                                             \
			c = curl_easy_setopt(easy, opt, val);                  \
	} while (0)
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT, 10L);
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, reg->timeout);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, reg->https ? "https" : "http,https");
	SET(CURLOPT_MAXREDIRS, 10L);
	SET(CURLOPT_UNRESTRICTED_AUTH, 0L);
	SET(CURLOPT_BUFFERSIZE, TE_REG_CURL_BUF);
	SET(CURLOPT_UPLOAD_BUFFERSIZE, TE_REG_CURL_BUF);
	SET(CURLOPT_USERAGENT, "tagexport/0.1");
	SET(CURLOPT_SSL_VERIFYPEER, reg->verify ? 1L : 0L);
	SET(CURLOPT_SSL_VERIFYHOST, reg->verify ? 2L : 0L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
#undef SET
	if (c != CURLE_OK)
		return te_error_set(err, TE_ERROR, "curl setup: %s",
		                    curl_easy_strerror(c));
	return 0;
}

static struct reg_token *token_find(te_registry *reg, const char *scope)
{
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < TE_REG_TOKENS; i++) {
		struct reg_token *t = &reg->tokens[i];

		if (t->scope && strcmp(t->scope, scope) == 0 &&
		    t->expires > now)
			return t;
	}
	return NULL;
}

static void token_clear(struct reg_token *t)
{
	free(t->scope);
	te_reg__secret_free(t->token);
	t->scope = t->token = NULL;
	t->expires = 0;
}

static void token_drop(te_registry *reg, const char *scope)
{
	size_t i;

	for (i = 0; i < TE_REG_TOKENS; i++)
		if (reg->tokens[i].scope &&
		    strcmp(reg->tokens[i].scope, scope) == 0)
			token_clear(&reg->tokens[i]);
}

static bool token_ok(const char *t)
{
	size_t n = 0;

	for (; *t; t++, n++)
		if (*t <= 0x20 || *t >= 0x7f || n >= TE_REG_TOKEN_MAX)
			return false;
	return n > 0;
}

static int do_request(struct req *r, te_registry *reg, te_error *err);

/* Docker token spec GET: realm?service=..&scope=..(per scope). */
static int token_fetch(te_registry *reg, const char *scope, te_error *err)
{
	te_buf url = TE_BUF_INIT(TE_REG_LOCATION_MAX);
	te_buf body = TE_BUF_INIT(TE_REG_TOKEN_BODY_MAX);
	struct req r;
	json_t *root = NULL, *tok;
	struct reg_token *slot;
	const char *s, *sp;
	long long expires = 60;
	char *esc;
	int rc;

	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	if (strncmp(reg->chal.realm, "https://", 8) != 0 &&
	    !(strncmp(reg->chal.realm, "http://", 7) == 0 && !reg->https)) {
		rc = te_error_set(err, TE_EAUTH,
		                  "%s: refusing token realm that is not https",
		                  reg->host);
		goto done;
	}
	rc = te_buf_puts(&url, reg->chal.realm, err);
	if (rc < 0)
		goto done;
	if (reg->chal.service[0]) {
		esc = curl_easy_escape(NULL, reg->chal.service, 0);
		rc = esc ? te_buf_printf(&url, err, "%cservice=%s",
		                         strchr(url.ptr, '?') ? '&' : '?', esc)
		         : te_error_set(err, TE_ENOMEM, "out of memory");
		curl_free(esc);
		if (rc < 0)
			goto done;
	}
	for (s = scope; s && *s; s = sp ? sp + 1 : s + strlen(s)) {
		char one[1024];
		size_t n;

		sp = strchr(s, ' ');
		n = sp ? (size_t)(sp - s) : strlen(s);
		if (n == 0 || n >= sizeof(one))
			continue;
		memcpy(one, s, n);
		one[n] = '\0';
		esc = curl_easy_escape(NULL, one, 0);
		rc = esc ? te_buf_printf(&url, err, "%cscope=%s",
		                         strchr(url.ptr, '?') ? '&' : '?', esc)
		         : te_error_set(err, TE_ENOMEM, "out of memory");
		curl_free(esc);
		if (rc < 0)
			goto done;
	}
	r.method = "GET";
	r.url = url.ptr;
	r.out = &body;
	r.follow = true;
	r.no_auth = true; /* never a token, Basic creds only */
	r.realm_creds = true;
	rc = do_request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status != 200) {
		rc = te_reg__http_error(err, r.resp.status, r.errbody.ptr,
		                        r.errbody.len, "token request");
		if (rc == TE_ENOTFOUND || rc == TE_ERROR)
			err->code = rc = TE_EAUTH;
		goto done;
	}
	root = json_loadb(body.ptr, body.len, 0, NULL);
	tok = json_object_get(root, "token");
	if (!json_string_value(tok) || !json_string_value(tok)[0])
		tok = json_object_get(root, "access_token");
	if (!json_string_value(tok) || !token_ok(json_string_value(tok))) {
		rc = te_error_set(err, TE_EAUTH,
		                  "%s: token server sent no usable token",
		                  reg->host);
		goto done;
	}
	if (json_is_integer(json_object_get(root, "expires_in")))
		expires =
		    json_integer_value(json_object_get(root, "expires_in"));
	if (expires < 60)
		expires = 60;
	if (expires > 86400)
		expires = 86400;
	slot = &reg->tokens[reg->token_next++ % TE_REG_TOKENS];
	token_clear(slot);
	slot->scope = te_strdup(scope, err);
	slot->token = te_strdup(json_string_value(tok), err);
	if (!slot->scope || !slot->token) {
		token_clear(slot);
		rc = TE_ENOMEM;
		goto done;
	}
	slot->expires = time(NULL) + (time_t)expires - 10;
done:
	json_decref(root);
	if (body.len)
		OPENSSL_cleanse(body.ptr, body.len);
	te_buf_dispose(&body);
	te_buf_dispose(&url);
	te_buf_dispose(&r.errbody);
	return rc;
}

static int ping(te_registry *reg, te_error *err)
{
	struct req r;
	te_buf url = TE_BUF_INIT(4096);
	int rc;

	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	rc = te_buf_printf(&url, err, "%s/v2/", reg->base);
	if (rc < 0)
		goto done;
	r.method = "GET";
	r.url = url.ptr;
	r.no_auth = true;
	rc = do_request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status == 401) {
		rc = te_reg__parse_challenge(&reg->chal, r.resp.www_auth, err);
		if (rc < 0) {
			te_error_wrap(err, "%s", reg->host);
			goto done;
		}
		rc = te_reg__config_load(&reg->user, &reg->pass,
		                         reg->config_dir, reg->host, err);
		if (rc < 0)
			goto done;
		te_log_emit(
		    &reg->log, TE_LOG_DEBUG, "%s: %s auth, %s", reg->host,
		    reg->chal.scheme == TE_REG_AUTH_BASIC ? "basic" : "bearer",
		    reg->user ? "credentials found" : "no credentials");
	} else if (r.resp.status < 200 || r.resp.status >= 300) {
		rc = te_reg__http_error(err, r.resp.status, r.errbody.ptr,
		                        r.errbody.len, "ping");
		te_error_wrap(err, "%s", reg->host);
		goto done;
	}
	reg->pinged = true;
done:
	te_buf_dispose(&url);
	te_buf_dispose(&r.errbody);
	return rc;
}

/* Ping and fetch a token if needed; leaves reg->easy reset-able. */
static int auth_prepare(te_registry *reg, const char *scope, te_error *err)
{
	int rc;

	if (!reg->pinged) {
		rc = ping(reg, err);
		if (rc < 0)
			return rc;
	}
	if (reg->chal.scheme == TE_REG_AUTH_BEARER && scope &&
	    !token_find(reg, scope))
		return token_fetch(reg, scope, err);
	return 0;
}

static bool same_origin(const te_registry *reg, const char *url)
{
	size_t n = strlen(reg->base);

	return strncmp(url, reg->base, n) == 0 &&
	       (url[n] == '/' || url[n] == '\0');
}

static int apply_creds(CURL *easy, struct curl_slist **hdrs, te_registry *reg,
                       const char *scope, te_error *err)
{
	struct reg_token *t;
	struct curl_slist *l;
	te_buf h = TE_BUF_INIT(TE_REG_TOKEN_MAX + 64);
	int rc = 0;

	if (reg->chal.scheme == TE_REG_AUTH_BASIC && reg->user) {
		if (curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC) ||
		    curl_easy_setopt(easy, CURLOPT_USERNAME, reg->user) ||
		    curl_easy_setopt(easy, CURLOPT_PASSWORD, reg->pass))
			return te_error_set(err, TE_ERROR, "curl setup failed");
		return 0;
	}
	if (reg->chal.scheme != TE_REG_AUTH_BEARER || !scope)
		return 0;
	t = token_find(reg, scope);
	if (!t)
		return 0;
	rc = te_buf_printf(&h, err, "Authorization: Bearer %s", t->token);
	if (rc < 0)
		goto done;
	l = curl_slist_append(*hdrs, h.ptr);
	if (!l) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	*hdrs = l;
done:
	OPENSSL_cleanse(h.ptr, h.len);
	te_buf_dispose(&h);
	return rc;
}

int te_reg__auth_apply(CURL *easy, struct curl_slist **hdrs, te_registry *reg,
                       const char *url, const char *scope, te_error *err)
{
	int rc = auth_prepare(reg, scope, err);

	if (rc < 0)
		return rc;
	if (!same_origin(reg, url))
		return 0; /* never hand credentials to another origin */
	return apply_creds(easy, hdrs, reg, scope, err);
}

/* ---- the request engine ---- */

static void path_for_log(char *dst, size_t cap, const char *url)
{
	size_t n = strcspn(url, "?");

	snprintf(dst, cap, "%.*s", (int)(n < 300 ? n : 300), url);
}

static int perform_once(struct req *r, te_registry *reg, te_error *err)
{
	struct curl_slist *hdrs = NULL, *l;
	CURL *e = reg->easy;
	CURLcode c = CURLE_OK;
	char ctype[160];
	char logurl[320];
	int rc = 0;

	curl_easy_reset(e);
	rc = te_reg__easy_setup(e, reg, err);
	if (rc < 0)
		goto done;
	memset(&r->resp, 0, sizeof(r->resp));
	r->body_off = 0;
	r->body_status = 0;
	r->out_overflow = false;
	te_buf_clear(&r->errbody);
	if (r->out)
		te_buf_clear(r->out);
#define SET(opt, val)                                                          \
	do {                                                                   \
		if (c == CURLE_OK)                                             \
			c = curl_easy_setopt(e, opt, val);                     \
	} while (0)
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_HEADERFUNCTION, te_reg__header_cb);
	SET(CURLOPT_HEADERDATA, &r->resp);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_FOLLOWLOCATION, r->follow ? 1L : 0L);
	if (strcmp(r->method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "PUT") == 0) {
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_READFUNCTION, read_cb);
		SET(CURLOPT_READDATA, r);
		SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
	} else if (strcmp(r->method, "POST") == 0) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		SET(CURLOPT_POSTFIELDS, r->body ? r->body : "");
	} else if (strcmp(r->method, "GET") != 0) {
		SET(CURLOPT_CUSTOMREQUEST, r->method);
	}
	if (c != CURLE_OK) {
		rc = te_error_set(err, TE_ERROR, "curl setup: %s",
		                  curl_easy_strerror(c));
		goto done;
	}
	l = curl_slist_append(hdrs, "Expect:");
	if (l && r->accept)
		l = curl_slist_append(hdrs = l, r->accept);
	if (l && r->content_type) {
		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
		         r->content_type);
		l = curl_slist_append(hdrs = l, ctype);
	}
	if (!l) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	hdrs = l;
	if (!r->no_auth && same_origin(reg, r->url)) {
		rc = apply_creds(e, &hdrs, reg, r->scope, err);
		if (rc < 0)
			goto done;
	} else if (r->realm_creds && reg->user) {
		/* token request: Basic credentials to the token realm */
		if (curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC) ||
		    curl_easy_setopt(e, CURLOPT_USERNAME, reg->user) ||
		    curl_easy_setopt(e, CURLOPT_PASSWORD, reg->pass)) {
			rc = te_error_set(err, TE_ERROR, "curl setup failed");
			goto done;
		}
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	c = curl_easy_perform(e);
	path_for_log(logurl, sizeof(logurl), r->url);
	if (r->out_overflow) {
		rc = te_error_set(err, TE_EINVALID,
		                  "%s %s: response exceeds %zu bytes",
		                  r->method, logurl, r->out->max);
		goto done;
	}
	if (c != CURLE_OK) {
		rc = te_error_set(err, TE_ENET, "%s %s: %s", r->method, logurl,
		                  curl_easy_strerror(c));
		goto done;
	}
	te_log_emit(&reg->log, TE_LOG_DEBUG, "%s %s -> %ld", r->method, logurl,
	            r->resp.status);
done:
	/* drop pointers to our stack before the handle is reused */
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(e, CURLOPT_USERNAME, NULL);
	curl_easy_setopt(e, CURLOPT_PASSWORD, NULL);
	curl_slist_free_all(hdrs);
	return rc;
}

static bool retryable(te_error *e, long status, bool idempotent)
{
	if (!idempotent)
		return false;
	if (e->code == TE_ENET)
		return true;
	return status == 429 || status == 502 || status == 503 || status == 504;
}

/*
 * Run r; returns 0 when any HTTP answer arrived (caller checks status),
 * < 0 on transport failure.  Retries idempotent requests on network
 * errors / 429 / 502-504 and re-authenticates once on a Bearer 401.
 */
static int do_request(struct req *r, te_registry *reg, te_error *err)
{
	bool idem = strcmp(r->method, "POST") != 0 &&
	            (strcmp(r->method, "PUT") != 0 || r->body);
	bool reauthed = false;
	int attempt, rc = 0;

	for (attempt = 0; attempt < 3; attempt++) {
		te_error e = TE_ERROR_INIT;

		if (!r->no_auth) {
			rc = auth_prepare(reg, r->scope, err);
			if (rc < 0)
				return rc;
		}
		rc = perform_once(r, reg, &e);
		if (rc == 0 && r->resp.status == 401 && !r->no_auth &&
		    reg->chal.scheme == TE_REG_AUTH_BEARER && r->scope &&
		    !reauthed) {
			reauthed = true;
			token_drop(reg, r->scope);
			attempt--;
			continue;
		}
		if (!retryable(&e, rc == 0 ? r->resp.status : 0, idem) ||
		    attempt == 2) {
			if (rc < 0)
				return te_error_set(err, e.code, "%s", e.msg);
			return 0;
		}
		{
			struct timespec ts = {0, 250000000L * (attempt + 1)};

			nanosleep(&ts, NULL);
		}
	}
	return rc;
}

static int fail_status(struct req *r, te_registry *reg, const char *what,
                       const char *repo, const char *ref, te_error *err)
{
	char w[600];

	snprintf(w, sizeof(w), "%s %s/%s%s%s", what, reg->host, repo,
	         strncmp(ref, "sha256:", 7) == 0 ? "@" : ":", ref);
	return te_reg__http_error(err, r->resp.status, r->errbody.ptr,
	                          r->errbody.len, w);
}

/* ---- validation ---- */

static bool repo_ok(const char *repo)
{
	size_t n = 0;
	const char *p;

	if (!repo || !repo[0] || repo[0] == '/')
		return false;
	for (p = repo; *p; p++, n++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '/'))
			return false;
		if (c == '/' && (p[1] == '/' || p[1] == '\0'))
			return false;
	}
	return n <= 255;
}

static bool tag_ok(const char *tag)
{
	size_t n = 0;
	const char *p;

	if (!tag || !tag[0] || tag[0] == '.' || tag[0] == '-')
		return false;
	for (p = tag; *p; p++, n++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return n <= 128;
}

static int check_ref(const char *repo, const char *ref, te_error *err)
{
	if (!repo_ok(repo))
		return te_error_set(err, TE_EINVALID,
		                    "invalid repository name '%.300s'",
		                    repo ? repo : "");
	if (ref && !te_reg__digest_valid(ref) && !tag_ok(ref))
		return te_error_set(err, TE_EINVALID,
		                    "invalid tag or digest '%.200s'", ref);
	return 0;
}

static int check_digest(const char *digest, te_error *err)
{
	if (!te_reg__digest_valid(digest))
		return te_error_set(err, TE_EINVALID,
		                    "invalid or unsupported digest '%.100s'",
		                    digest ? digest : "");
	return 0;
}

static int scope_for(char *out, size_t cap, const char *repo,
                     const char *actions, te_error *err)
{
	int n = snprintf(out, cap, "repository:%s:%s", repo, actions);

	if (n < 0 || (size_t)n >= cap)
		return te_error_set(err, TE_EINVALID,
		                    "repository name too long");
	return 0;
}

static int url_for(te_buf *url, te_registry *reg, const char *repo,
                   const char *kind, const char *ref, te_error *err)
{
	te_buf_clear(url);
	return te_buf_printf(url, err, "%s/v2/%s/%s/%s", reg->base, repo, kind,
	                     ref);
}

/* ---- lifecycle ---- */

int te_registry_new(te_registry **out, const char *host,
                    const te_registry_opts *opts, te_error *err)
{
	te_registry *reg = NULL;
	const char *api;
	te_buf base = TE_BUF_INIT(1024);
	size_t i;
	int rc = 0;

	*out = NULL;
	if (!host || !host[0] || strlen(host) > 255 ||
	    strcspn(host, "/?#@ \t\r\n\\") != strlen(host)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "invalid registry host '%.300s'",
		                  host ? host : "");
		goto done;
	}
	for (i = 0; host[i]; i++)
		if ((unsigned char)host[i] < 0x21 ||
		    (unsigned char)host[i] > 0x7e) {
			rc = te_error_set(err, TE_EINVALID,
			                  "invalid registry host");
			goto done;
		}
	reg = calloc(1, sizeof(*reg));
	if (!reg) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	api = strcmp(host, "docker.io") == 0 ||
	              strcmp(host, "index.docker.io") == 0
	          ? "registry-1.docker.io"
	          : host;
	reg->https =
	    !(opts && opts->insecure) && !te_reg__host_is_loopback(host);
	reg->verify = reg->https && !(opts && opts->skip_tls_verify);
	reg->timeout =
	    opts && opts->timeout_seconds > 0 ? opts->timeout_seconds : 60;
	if (opts)
		reg->log = opts->log;
	rc = te_buf_printf(&base, err, "%s://%s", reg->https ? "https" : "http",
	                   api);
	if (rc < 0)
		goto done;
	reg->base = te_buf_detach(&base);
	reg->host = te_strdup(host, err);
	if (!reg->base || !reg->host) {
		rc = TE_ENOMEM;
		goto done;
	}
	if (opts && opts->docker_config_dir) {
		reg->config_dir = te_strdup(opts->docker_config_dir, err);
		if (!reg->config_dir) {
			rc = TE_ENOMEM;
			goto done;
		}
	}
	reg->easy = curl_easy_init();
	if (!reg->easy) {
		rc = te_error_set(err, TE_ERROR, "curl_easy_init failed");
		goto done;
	}
	*out = reg;
	reg = NULL;
done:
	te_buf_dispose(&base);
	te_registry_free(reg);
	return rc;
}

void te_registry_free(te_registry *reg)
{
	size_t i;

	if (!reg)
		return;
	for (i = 0; i < TE_REG_TOKENS; i++)
		token_clear(&reg->tokens[i]);
	te_reg__secret_free(reg->user);
	te_reg__secret_free(reg->pass);
	if (reg->easy)
		curl_easy_cleanup(reg->easy);
	free(reg->config_dir);
	free(reg->base);
	free(reg->host);
	free(reg);
}

const te_log *te_reg__log(const te_registry *reg)
{
	return &reg->log;
}

/* ---- manifests ---- */

static bool is_manifest_type(const char *t)
{
	return strcmp(t, "application/vnd.oci.image.manifest.v1+json") == 0 ||
	       strcmp(t, "application/vnd.oci.image.index.v1+json") == 0 ||
	       strcmp(t,
	              "application/vnd.docker.distribution.manifest.v2+json") ==
	           0 ||
	       strcmp(t, "application/vnd.docker.distribution.manifest.list.v2+"
	                 "json") == 0;
}

int te_registry_manifest_get(te_buf *body, char media_type[128],
                             char digest[TE_DIGEST_STR_MAX], te_registry *reg,
                             const char *repo, const char *ref, te_error *err)
{
	te_buf url = TE_BUF_INIT(4096);
	te_buf raw = TE_BUF_INIT(TE_MANIFEST_MAX);
	char scope[600], type[128], dg[TE_DIGEST_STR_MAX];
	json_t *root = NULL;
	const char *mt;
	struct req r;
	int rc;

	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	rc = check_ref(repo, ref, err);
	if (rc < 0)
		goto done;
	rc = scope_for(scope, sizeof(scope), repo, "pull", err);
	if (rc < 0)
		goto done;
	rc = url_for(&url, reg, repo, "manifests", ref, err);
	if (rc < 0)
		goto done;
	r.method = "GET";
	r.url = url.ptr;
	r.scope = scope;
	r.accept = ACCEPT_MANIFESTS;
	r.out = &raw;
	r.follow = true;
	rc = do_request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status != 200) {
		rc = fail_status(&r, reg, "GET manifest", repo, ref, err);
		goto done;
	}
	te_reg__sha256(dg, raw.ptr, raw.len);
	if (te_reg__digest_valid(ref) && strcmp(ref, dg) != 0) {
		rc =
		    te_error_set(err, TE_EINVALID,
		                 "GET manifest %s/%s@%s: content has digest %s",
		                 reg->host, repo, ref, dg);
		goto done;
	}
	snprintf(type, sizeof(type), "%s", r.resp.content_type);
	root = json_loadb(raw.ptr, raw.len, 0, NULL);
	mt = json_string_value(json_object_get(root, "mediaType"));
	if (!root || !json_is_object(root)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "GET manifest %s/%s:%s: not a json object",
		                  reg->host, repo, ref);
		goto done;
	}
	if (mt && (!type[0] || !is_manifest_type(type)) &&
	    is_manifest_type(mt) && strlen(mt) < sizeof(type))
		snprintf(type, sizeof(type), "%s", mt);
	if (!is_manifest_type(type)) {
		rc = te_error_set(err, TE_EUNSUPPORTED,
		                  "GET manifest %s/%s:%s: unsupported media "
		                  "type '%.100s'",
		                  reg->host, repo, ref, type);
		goto done;
	}
	if (mt && strcmp(mt, type) != 0) {
		rc = te_error_set(err, TE_EINVALID,
		                  "GET manifest %s/%s:%s: mediaType %.100s "
		                  "does not match content type %s",
		                  reg->host, repo, ref, mt, type);
		goto done;
	}
	te_buf_clear(body);
	rc = te_buf_put(body, raw.ptr, raw.len, err);
	if (rc < 0)
		goto done;
	memcpy(media_type, type, sizeof(type));
	memcpy(digest, dg, sizeof(dg));
done:
	json_decref(root);
	te_buf_dispose(&raw);
	te_buf_dispose(&url);
	te_buf_dispose(&r.errbody);
	return rc;
}

int te_registry_manifest_exists(bool *exists, char digest[TE_DIGEST_STR_MAX],
                                te_registry *reg, const char *repo,
                                const char *ref, te_error *err)
{
	te_buf url = TE_BUF_INIT(4096);
	char scope[600];
	struct req r;
	int rc;

	*exists = false;
	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	rc = check_ref(repo, ref, err);
	if (rc < 0)
		goto done;
	rc = scope_for(scope, sizeof(scope), repo, "pull", err);
	if (rc < 0)
		goto done;
	rc = url_for(&url, reg, repo, "manifests", ref, err);
	if (rc < 0)
		goto done;
	r.method = "HEAD";
	r.url = url.ptr;
	r.scope = scope;
	r.accept = ACCEPT_MANIFESTS;
	r.follow = true;
	rc = do_request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status == 404)
		goto done;
	if (r.resp.status != 200) {
		rc = fail_status(&r, reg, "HEAD manifest", repo, ref, err);
		goto done;
	}
	if (te_reg__digest_valid(ref)) {
		snprintf(digest, TE_DIGEST_STR_MAX, "%s", ref);
	} else if (te_reg__digest_valid(r.resp.docker_digest)) {
		snprintf(digest, TE_DIGEST_STR_MAX, "%s", r.resp.docker_digest);
	} else {
		/* no usable header: hash the real bytes */
		te_buf b = TE_BUF_INIT(TE_MANIFEST_MAX);
		char mt[128];

		rc = te_registry_manifest_get(&b, mt, digest, reg, repo, ref,
		                              err);
		te_buf_dispose(&b);
		if (rc == TE_ENOTFOUND) {
			te_error_clear(err);
			rc = 0;
			goto done;
		}
		if (rc < 0)
			goto done;
	}
	*exists = true;
done:
	te_buf_dispose(&url);
	te_buf_dispose(&r.errbody);
	return rc;
}

int te_registry_manifest_put(char digest_out[TE_DIGEST_STR_MAX],
                             te_registry *reg, const char *repo,
                             const char *ref, const char *media_type,
                             const void *data, size_t len, te_error *err)
{
	te_buf url = TE_BUF_INIT(4096);
	char scope[600], dg[TE_DIGEST_STR_MAX];
	struct req r;
	int rc;

	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	rc = check_ref(repo, ref, err);
	if (rc < 0)
		goto done;
	if (!media_type || !is_manifest_type(media_type) ||
	    len > TE_MANIFEST_MAX) {
		rc = te_error_set(err, TE_EINVALID,
		                  "PUT manifest %s/%s: bad media type or size",
		                  reg->host, repo);
		goto done;
	}
	te_reg__sha256(dg, data, len);
	if (te_reg__digest_valid(ref) && strcmp(ref, dg) != 0) {
		rc =
		    te_error_set(err, TE_EINVALID,
		                 "PUT manifest %s/%s@%s: content has digest %s",
		                 reg->host, repo, ref, dg);
		goto done;
	}
	rc = scope_for(scope, sizeof(scope), repo, "pull,push", err);
	if (rc < 0)
		goto done;
	rc = url_for(&url, reg, repo, "manifests", ref, err);
	if (rc < 0)
		goto done;
	r.method = "PUT";
	r.url = url.ptr;
	r.scope = scope;
	r.content_type = media_type;
	r.body = data ? data : "";
	r.body_len = len;
	rc = do_request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status != 201 && r.resp.status != 200) {
		rc = fail_status(&r, reg, "PUT manifest", repo, ref, err);
		goto done;
	}
	if (r.resp.docker_digest[0] && strcmp(r.resp.docker_digest, dg) != 0) {
		rc = te_error_set(err, TE_EINVALID,
		                  "PUT manifest %s/%s:%s: registry stored "
		                  "digest '%.80s', expected %s",
		                  reg->host, repo, ref, r.resp.docker_digest,
		                  dg);
		goto done;
	}
	memcpy(digest_out, dg, sizeof(dg));
done:
	te_buf_dispose(&url);
	te_buf_dispose(&r.errbody);
	return rc;
}

/* ---- blobs ---- */

int te_registry_blob_exists(bool *exists, te_registry *reg, const char *repo,
                            const char *digest, te_error *err)
{
	te_buf url = TE_BUF_INIT(4096);
	char scope[600];
	struct req r;
	int rc;

	*exists = false;
	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	rc = check_ref(repo, NULL, err);
	if (rc == 0)
		rc = check_digest(digest, err);
	if (rc == 0)
		rc = scope_for(scope, sizeof(scope), repo, "pull", err);
	if (rc == 0)
		rc = url_for(&url, reg, repo, "blobs", digest, err);
	if (rc < 0)
		goto done;
	r.method = "HEAD";
	r.url = url.ptr;
	r.scope = scope;
	r.follow = true;
	rc = do_request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status == 200)
		*exists = true;
	else if (r.resp.status != 404)
		rc = fail_status(&r, reg, "HEAD blob", repo, digest, err);
done:
	te_buf_dispose(&url);
	te_buf_dispose(&r.errbody);
	return rc;
}

int te_registry_blob_get(te_buf *body, te_registry *reg, const char *repo,
                         const char *digest, te_error *err)
{
	te_buf url = TE_BUF_INIT(4096);
	char scope[600], dg[TE_DIGEST_STR_MAX];
	struct req r;
	int rc;

	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	rc = check_ref(repo, NULL, err);
	if (rc == 0)
		rc = check_digest(digest, err);
	if (rc == 0)
		rc = scope_for(scope, sizeof(scope), repo, "pull", err);
	if (rc == 0)
		rc = url_for(&url, reg, repo, "blobs", digest, err);
	if (rc < 0)
		goto done;
	r.method = "GET";
	r.url = url.ptr;
	r.scope = scope;
	r.follow = true;
	r.out = body;
	rc = do_request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status != 200) {
		rc = fail_status(&r, reg, "GET blob", repo, digest, err);
		goto done;
	}
	te_reg__sha256(dg, body->ptr, body->len);
	if (strcmp(dg, digest) != 0) {
		te_buf_clear(body);
		rc = te_error_set(err, TE_EINVALID,
		                  "GET blob %s/%s@%s: content has digest %s",
		                  reg->host, repo, digest, dg);
	}
done:
	te_buf_dispose(&url);
	te_buf_dispose(&r.errbody);
	return rc;
}

int te_reg__upload_start(char **location, bool *created, te_registry *reg,
                         const char *repo, const char *query, const char *scope,
                         te_error *err)
{
	te_buf url = TE_BUF_INIT(4096);
	struct req r;
	int rc;

	*location = NULL;
	*created = false;
	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	rc = te_buf_printf(&url, err, "%s/v2/%s/blobs/uploads/%s%s", reg->base,
	                   repo, query ? "?" : "", query ? query : "");
	if (rc < 0)
		goto done;
	r.method = "POST";
	r.url = url.ptr;
	r.scope = scope;
	rc = do_request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status == 201) {
		*created = true;
		goto done;
	}
	if (r.resp.status != 202) {
		char w[400];

		snprintf(w, sizeof(w), "POST blob upload %s/%s", reg->host,
		         repo);
		rc = te_reg__http_error(err, r.resp.status, r.errbody.ptr,
		                        r.errbody.len, w);
		goto done;
	}
	if (r.resp.overflow && !r.resp.location[0]) {
		rc = te_error_set(err, TE_EINVALID,
		                  "POST blob upload %s/%s: oversized location",
		                  reg->host, repo);
		goto done;
	}
	rc = te_reg__resolve_location(location, url.ptr, r.resp.location, err);
	if (rc < 0)
		te_error_wrap(err, "POST blob upload %s/%s", reg->host, repo);
done:
	te_buf_dispose(&url);
	te_buf_dispose(&r.errbody);
	return rc;
}

void te_reg__upload_cancel(te_registry *reg, const char *location,
                           const char *repo)
{
	te_error e = TE_ERROR_INIT;
	char scope[600];
	struct req r;

	if (!location)
		return;
	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	if (scope_for(scope, sizeof(scope), repo, "pull,push", &e) == 0) {
		r.method = "DELETE";
		r.url = location;
		r.scope = scope;
		(void)do_request(&r, reg, &e);
	}
	te_buf_dispose(&r.errbody);
}

int te_registry_blob_put(te_registry *reg, const char *repo, const char *digest,
                         const void *data, size_t len, te_error *err)
{
	char scope[600], dg[TE_DIGEST_STR_MAX];
	char *loc = NULL, *put = NULL;
	bool exists = false, created = false;
	struct req r;
	int rc;

	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	rc = te_registry_blob_exists(&exists, reg, repo, digest, err);
	if (rc < 0 || exists)
		goto done;
	te_reg__sha256(dg, data ? data : "", len);
	if (strcmp(dg, digest) != 0) {
		rc = te_error_set(err, TE_EINVALID,
		                  "PUT blob %s: content has digest %s", digest,
		                  dg);
		goto done;
	}
	rc = scope_for(scope, sizeof(scope), repo, "pull,push", err);
	if (rc == 0)
		rc = te_reg__upload_start(&loc, &created, reg, repo, NULL,
		                          scope, err);
	if (rc == 0 && !created)
		rc = te_reg__url_add_digest(&put, loc, digest, err);
	if (rc < 0 || created)
		goto done;
	r.method = "PUT";
	r.url = put;
	r.scope = scope;
	r.content_type = "application/octet-stream";
	r.body = data ? data : "";
	r.body_len = len;
	rc = do_request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status != 201) {
		rc = fail_status(&r, reg, "PUT blob", repo, digest, err);
		goto done;
	}
	if (r.resp.docker_digest[0] &&
	    strcmp(r.resp.docker_digest, digest) != 0) {
		rc =
		    te_error_set(err, TE_EINVALID,
		                 "PUT blob %s/%s@%s: registry stored '%.80s'",
		                 reg->host, repo, digest, r.resp.docker_digest);
		goto done;
	}
	free(loc);
	loc = NULL; /* committed: nothing to cancel */
done:
	if (rc < 0 && loc)
		te_reg__upload_cancel(reg, loc, repo);
	free(loc);
	free(put);
	te_buf_dispose(&r.errbody);
	return rc;
}

int te_registry_blob_mount(bool *mounted, te_registry *reg, const char *repo,
                           const char *digest, const char *from_repo,
                           te_error *err)
{
	te_buf query = TE_BUF_INIT(1024);
	char scope[1200];
	char *loc = NULL, *from = NULL;
	bool created = false;
	te_error e = TE_ERROR_INIT;
	int rc, n;

	*mounted = false;
	rc = check_ref(repo, NULL, err);
	if (rc == 0)
		rc = check_ref(from_repo, NULL, err);
	if (rc == 0)
		rc = check_digest(digest, err);
	if (rc < 0)
		goto done;
	n = snprintf(scope, sizeof(scope),
	             "repository:%s:pull,push repository:%s:pull", repo,
	             from_repo);
	from = curl_easy_escape(NULL, from_repo, 0);
	if (n < 0 || (size_t)n >= sizeof(scope) || !from) {
		rc = te_error_set(err, TE_EINVALID, "repository name too long");
		goto done;
	}
	rc = te_buf_printf(&query, err, "mount=sha256%%3A%s&from=%s",
	                   digest + 7, from);
	if (rc < 0)
		goto done;
	rc = te_reg__upload_start(&loc, &created, reg, repo, query.ptr, scope,
	                          &e);
	if (rc < 0) {
		/* any failure means "upload normally": a dead connection
		 * shows up again on the upload itself */
		if (e.code == TE_ENOMEM) {
			rc = te_error_set(err, e.code, "%s", e.msg);
			goto done;
		}
		te_log_emit(&reg->log, TE_LOG_DEBUG, "mount refused: %s",
		            e.msg);
		rc = 0;
		goto done;
	}
	*mounted = created;
	if (loc)
		te_reg__upload_cancel(reg, loc, repo);
done:
	curl_free(from);
	free(loc);
	te_buf_dispose(&query);
	return rc;
}
