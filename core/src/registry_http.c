/*
 * registry_http.c - the request engine of te_registry: header capture,
 * easy-handle setup (TLS material from certs.d), lazy authentication
 * (ping GET /v2/ -- for loopback and insecure hosts an https probe that
 * falls back to http only when the peer does not speak TLS --, the
 * challenge, credentials from registry_auth.c, the Bearer token flow
 * with a realm+service+scope cache and one re-authentication per request
 * after a 401) and te_reg__request, whose retries follow
 * te_reg__retry_decide.  Protocol notes:
 * ../../shared/reference/oci-distribution.md sections 1 and 2.
 *
 * Credentials are attached only to URLs under the registry's own origin
 * (upload Locations may point elsewhere); libcurl drops them on
 * cross-host redirects (CURLOPT_UNRESTRICTED_AUTH stays off).
 */
#include "registry_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

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
	} else if (IS("retry-after")) {
		set_capped(r->retry_after, sizeof(r->retry_after), v, vlen,
		           &r->overflow);
	} else if (IS("oci-chunk-min-length")) {
		char tmp[32];
		bool ov = false;

		set_capped(tmp, sizeof(tmp), v, vlen, &ov);
		if (!ov && tmp[0] >= '0' && tmp[0] <= '9')
			r->chunk_min = strtoll(tmp, NULL, 10);
	} else if (IS("range")) {
		set_capped(r->range, sizeof(r->range), v, vlen, &r->overflow);
	} else if (IS("content-range")) {
		set_capped(r->content_range, sizeof(r->content_range), v, vlen,
		           &r->overflow);
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
	struct te_reg_req *r = payload;
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
	struct te_reg_req *r = payload;
	size_t want = size * n, left = r->body_len - r->body_off;

	if (want > left)
		want = left;
	if (want)
		memcpy(dst, (const char *)r->body + r->body_off, want);
	r->body_off += want;
	return want;
}

/* ---- clocks ---- */

int64_t te_reg__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void te_reg__sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

uint32_t te_reg__jitter(void)
{
	uint32_t v = 0;

	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		v = (uint32_t)te_reg__now_ms();
	return v;
}

/* ---- setup ---- */

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
	if (reg->verify && reg->ca_pem.len) {
		/* system bundle + certs.d CAs; the blob outlives the handle */
		struct curl_blob blob = {reg->ca_pem.ptr, reg->ca_pem.len,
		                         CURL_BLOB_NOCOPY};

		SET(CURLOPT_CAINFO_BLOB, &blob);
	}
	if (reg->client_cert) {
		SET(CURLOPT_SSLCERT, reg->client_cert);
		SET(CURLOPT_SSLKEY, reg->client_key);
	}
#undef SET
	if (c != CURLE_OK)
		return te_error_set(err, TE_ERROR, "curl setup: %s",
		                    curl_easy_strerror(c));
	return 0;
}

/* ---- token cache: key = realm \n service \n scope ---- */

static int token_key(te_buf *key, const te_registry *reg, const char *scope,
                     te_error *err)
{
	return te_buf_printf(key, err, "%s\n%s\n%s", reg->chal.realm,
	                     reg->chal.service, scope ? scope : "");
}

static struct te_reg_token *token_find(te_registry *reg, const char *scope)
{
	te_buf key = TE_BUF_INIT(4096);
	te_error e = TE_ERROR_INIT;
	struct te_reg_token *hit = NULL;
	time_t now = time(NULL);
	size_t i;

	if (token_key(&key, reg, scope, &e) < 0)
		return NULL;
	for (i = 0; i < TE_REG_TOKENS && !hit; i++) {
		struct te_reg_token *t = &reg->tokens[i];

		if (t->key && strcmp(t->key, key.ptr) == 0 && t->expires > now)
			hit = t;
	}
	te_buf_dispose(&key);
	return hit;
}

void te_reg__token_clear(struct te_reg_token *t)
{
	free(t->key);
	te_reg__secret_free(t->token);
	t->key = t->token = NULL;
	t->expires = 0;
}

static void token_drop(te_registry *reg, const char *scope)
{
	struct te_reg_token *t;

	while ((t = token_find(reg, scope)) != NULL)
		te_reg__token_clear(t);
}

static bool token_ok(const char *t)
{
	size_t n = 0;

	for (; *t; t++, n++)
		if (*t <= 0x20 || *t >= 0x7f || n >= TE_REG_TOKEN_MAX)
			return false;
	return n > 0;
}

static int append_param(te_buf *b, const char *name, const char *value,
                        te_error *err)
{
	char *esc = curl_easy_escape(NULL, value, 0);
	int rc;

	if (!esc)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	rc = te_buf_printf(
	    b, err, "%s%s=%s",
	    b->len == 0                                                ? ""
	    : (b->ptr[b->len - 1] == '?' || b->ptr[b->len - 1] == '&') ? ""
	                                                               : "&",
	    name, esc);
	curl_free(esc);
	return rc;
}

/* Copy the n-th (0-based) space-separated scope into one; false past the
 * end. */
static bool nth_scope(char *one, size_t cap, const char *scope, size_t idx)
{
	const char *s = scope, *sp;
	size_t i = 0, n;

	while (s && *s) {
		sp = strchr(s, ' ');
		n = sp ? (size_t)(sp - s) : strlen(s);
		if (n && i++ == idx) {
			if (n >= cap)
				n = cap - 1;
			memcpy(one, s, n);
			one[n] = '\0';
			return true;
		}
		s = sp ? sp + 1 : s + n;
	}
	return false;
}

static bool realm_allowed(const te_registry *reg, const char *realm)
{
	char host[300];
	const char *p;
	size_t n;

	if (strncmp(realm, "https://", 8) == 0)
		return true;
	if (strncmp(realm, "http://", 7) != 0)
		return false;
	if (!reg->https)
		return true;
	/* a plain-http token server only on loopback */
	p = realm + 7;
	n = strcspn(p, "/?#");
	if (n >= sizeof(host))
		return false;
	memcpy(host, p, n);
	host[n] = '\0';
	return te_reg__host_is_loopback(host);
}

/*
 * Docker token spec: GET realm?service=&scope=..(one per scope) with
 * Basic credentials or anonymous; with an identity token the OAuth2 POST
 * (grant_type=refresh_token, scopes space-separated), falling back to
 * GET when the server does not do OAuth2 (404/405).
 */
static int token_fetch(te_registry *reg, const char *scope, te_error *err)
{
	te_buf url = TE_BUF_INIT(TE_REG_LOCATION_MAX);
	te_buf form = TE_BUF_INIT(TE_REG_TOKEN_MAX * 2);
	te_buf body = TE_BUF_INIT(TE_REG_TOKEN_BODY_MAX);
	te_buf key = TE_BUF_INIT(4096);
	struct te_reg_req r;
	json_t *root = NULL, *tok;
	struct te_reg_token *slot;
	long long expires = 60;
	char one[1024];
	size_t i;
	bool oauth = reg->creds.identity_token != NULL;
	int rc;

	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	if (!realm_allowed(reg, reg->chal.realm)) {
		rc = te_error_set(err, TE_EAUTH,
		                  "%s: refusing token realm that is not https",
		                  reg->host);
		goto done;
	}
again:
	te_buf_clear(&url);
	rc = te_buf_puts(&url, reg->chal.realm, err);
	if (rc == 0 && !oauth)
		rc = te_buf_puts(&url, strchr(url.ptr, '?') ? "&" : "?", err);
	if (rc == 0 && !oauth && reg->chal.service[0])
		rc = append_param(&url, "service", reg->chal.service, err);
	for (i = 0; rc == 0 && !oauth && nth_scope(one, sizeof(one), scope, i);
	     i++)
		rc = append_param(&url, "scope", one, err);
	if (rc == 0 && oauth) {
		te_buf scopes = TE_BUF_INIT(4096);

		rc = append_param(&form, "grant_type", "refresh_token", err);
		if (rc == 0)
			rc = append_param(&form, "refresh_token",
			                  reg->creds.identity_token, err);
		if (rc == 0)
			rc = append_param(&form, "client_id", "tagexport", err);
		if (rc == 0 && reg->chal.service[0])
			rc = append_param(&form, "service", reg->chal.service,
			                  err);
		for (i = 0; rc == 0 && nth_scope(one, sizeof(one), scope, i);
		     i++)
			rc = te_buf_printf(&scopes, err, "%s%s", i ? " " : "",
			                   one);
		if (rc == 0 && scopes.len)
			rc = append_param(&form, "scope", scopes.ptr, err);
		te_buf_dispose(&scopes);
	}
	if (rc < 0)
		goto done;
	r.method = oauth ? "POST" : "GET";
	r.url = url.ptr;
	r.out = &body;
	r.follow = !oauth;
	r.no_auth = true; /* never a token, Basic creds only */
	r.realm_creds = !oauth;
	if (oauth) {
		r.body = form.ptr;
		r.body_len = form.len;
		r.content_type = "application/x-www-form-urlencoded";
	}
	rc = te_reg__request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (oauth && (r.resp.status == 404 || r.resp.status == 405)) {
		oauth = false;
		OPENSSL_cleanse(form.ptr, form.len);
		te_buf_clear(&form);
		memset(&r.resp, 0, sizeof(r.resp));
		r.body = NULL;
		r.body_len = 0;
		r.content_type = NULL;
		goto again;
	}
	if (r.resp.status != 200) {
		rc = te_reg__http_error(err, r.resp.status, r.errbody.ptr,
		                        r.errbody.len, "token request");
		te_error_wrap(err, "%s", reg->host);
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
	rc = token_key(&key, reg, scope, err);
	if (rc < 0)
		goto done;
	slot = &reg->tokens[reg->token_next++ % TE_REG_TOKENS];
	te_reg__token_clear(slot);
	slot->key = te_buf_detach(&key);
	slot->token = te_strdup(json_string_value(tok), err);
	if (!slot->key || !slot->token) {
		te_reg__token_clear(slot);
		rc = TE_ENOMEM;
		goto done;
	}
	slot->expires = time(NULL) + (time_t)expires - 10;
	te_log_emit(&reg->log, TE_LOG_DEBUG, "%s: token for %s (%lld s)",
	            reg->host, scope ? scope : "-", expires);
done:
	json_decref(root);
	if (body.len)
		OPENSSL_cleanse(body.ptr, body.len);
	if (form.len)
		OPENSSL_cleanse(form.ptr, form.len);
	te_buf_dispose(&body);
	te_buf_dispose(&form);
	te_buf_dispose(&key);
	te_buf_dispose(&url);
	te_buf_dispose(&r.errbody);
	return rc;
}

static int creds_load(te_registry *reg, te_error *err)
{
	int rc;

	if (reg->creds_loaded)
		return 0;
	rc = te_reg__creds_resolve(
	    &reg->creds, reg->config_dir, (const char *const *)reg->auth_files,
	    reg->nauth_files, reg->host, reg->helper_timeout, err);
	if (rc < 0)
		return rc;
	reg->creds_loaded = true;
	te_log_emit(&reg->log, TE_LOG_DEBUG, "%s: %s auth, %s", reg->host,
	            reg->chal.scheme == TE_REG_AUTH_BASIC ? "basic" : "bearer",
	            te_reg__creds_empty(&reg->creds) ? "no credentials"
	                                             : "credentials found");
	return 0;
}

/* Switch a host that may speak http to it after a failed https probe. */
static int use_http(te_registry *reg, te_error *err)
{
	te_buf base = TE_BUF_INIT(1024);
	int rc;

	rc = te_buf_printf(&base, err, "http://%s", reg->api_host);
	if (rc < 0)
		return rc;
	free(reg->base);
	reg->base = te_buf_detach(&base);
	reg->https = false;
	reg->verify = false;
	reg->http_fallback = false;
	te_log_emit(&reg->log, TE_LOG_DEBUG, "%s: no TLS, using plain http",
	            reg->host);
	return 0;
}

static int use_https(te_registry *reg, te_error *err)
{
	te_buf base = TE_BUF_INIT(1024);
	int rc;

	rc = te_buf_printf(&base, err, "https://%s", reg->api_host);
	if (rc < 0)
		return rc;
	free(reg->base);
	reg->base = te_buf_detach(&base);
	reg->https = true;
	te_log_emit(&reg->log, TE_LOG_DEBUG, "%s: speaks TLS, using https",
	            reg->host);
	return 0;
}

static int ping(te_registry *reg, te_error *err)
{
	struct te_reg_req r;
	te_buf url = TE_BUF_INIT(4096);
	te_error e = TE_ERROR_INIT;
	int rc;

	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
again:
	te_buf_clear(&url);
	rc = te_buf_printf(&url, err, "%s/v2/", reg->base);
	if (rc < 0)
		goto done;
	r.method = "GET";
	r.url = url.ptr;
	r.no_auth = true;
	r.probe = reg->http_fallback && reg->https;
	rc = te_reg__request(&r, reg, &e);
	if (rc < 0 && r.probe && r.curl_code == CURLE_SSL_CONNECT_ERROR) {
		te_error_clear(&e);
		rc = use_http(reg, err);
		if (rc < 0)
			goto done;
		goto again;
	}
	if (rc < 0) {
		rc = te_error_set(err, e.code, "%s", e.msg);
		goto done;
	}
	if (reg->https_upgrade && r.resp.status == 400 &&
	    memmem(r.errbody.ptr, r.errbody.len, "HTTPS server", 12)) {
		/* Go's answer to plain http on a TLS port. */
		reg->https_upgrade = false;
		rc = use_https(reg, err);
		if (rc < 0)
			goto done;
		te_buf_clear(&r.errbody);
		goto again;
	}
	if (r.resp.status == 401) {
		rc = te_reg__parse_challenge(&reg->chal, r.resp.www_auth, err);
		if (rc < 0) {
			te_error_wrap(err, "%s", reg->host);
			goto done;
		}
		rc = creds_load(reg, err);
		if (rc < 0)
			goto done;
	} else if (r.resp.status < 200 || r.resp.status >= 300) {
		rc = te_reg__http_error(err, r.resp.status, r.errbody.ptr,
		                        r.errbody.len, "ping");
		te_error_wrap(err, "%s", reg->host);
		if (r.attempts > 1)
			te_error_wrap(err, "gave up after %d tries",
			              r.attempts);
		goto done;
	}
	reg->pinged = true;
done:
	te_buf_dispose(&url);
	te_buf_dispose(&r.errbody);
	return rc;
}

int te_reg__ready(te_registry *reg, te_error *err)
{
	return reg->pinged ? 0 : ping(reg, err);
}

/* Ping and fetch a token if needed; leaves reg->easy reset-able. */
static int auth_prepare(te_registry *reg, const char *scope, te_error *err)
{
	int rc = te_reg__ready(reg, err);

	if (rc < 0)
		return rc;
	if (reg->chal.scheme == TE_REG_AUTH_BEARER && scope &&
	    !reg->creds.registry_token && !token_find(reg, scope))
		return token_fetch(reg, scope, err);
	return 0;
}

bool te_reg__auth_refresh(te_registry *reg, const char *www_auth,
                          const char *scope)
{
	struct te_reg_challenge c;
	te_error e = TE_ERROR_INIT;
	bool changed;

	if (te_reg__parse_challenge(&c, www_auth, &e) < 0)
		return false;
	changed = c.scheme != reg->chal.scheme ||
	          strcmp(c.realm, reg->chal.realm) != 0 ||
	          strcmp(c.service, reg->chal.service) != 0;
	if (scope)
		token_drop(reg, scope);
	if (changed) {
		reg->chal = c;
		te_log_emit(&reg->log, TE_LOG_DEBUG,
		            "%s: new %s challenge after 401", reg->host,
		            c.scheme == TE_REG_AUTH_BASIC ? "basic" : "bearer");
	}
	if (!reg->creds_loaded) {
		if (creds_load(reg, &e) < 0)
			return false;
		changed = true;
	}
	/* a fresh token may carry what the old one lacked; Basic with the
	 * same credentials would only fail again */
	return changed || (c.scheme == TE_REG_AUTH_BEARER && scope &&
	                   !reg->creds.registry_token);
}

static bool same_origin(const te_registry *reg, const char *url)
{
	size_t n = strlen(reg->base);

	return strncmp(url, reg->base, n) == 0 &&
	       (url[n] == '/' || url[n] == '\0');
}

static int add_bearer(struct curl_slist **hdrs, const char *token,
                      te_error *err)
{
	te_buf h = TE_BUF_INIT(TE_REG_TOKEN_MAX + 64);
	struct curl_slist *l;
	int rc;

	rc = te_buf_printf(&h, err, "Authorization: Bearer %s", token);
	if (rc < 0)
		goto done;
	l = curl_slist_append(*hdrs, h.ptr);
	if (!l) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	*hdrs = l;
done:
	if (h.len)
		OPENSSL_cleanse(h.ptr, h.len);
	te_buf_dispose(&h);
	return rc;
}

static int apply_basic(CURL *easy, const te_registry *reg, te_error *err)
{
	if (curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC) ||
	    curl_easy_setopt(easy, CURLOPT_USERNAME, reg->creds.user) ||
	    curl_easy_setopt(easy, CURLOPT_PASSWORD,
	                     reg->creds.pass ? reg->creds.pass : ""))
		return te_error_set(err, TE_ERROR, "curl setup failed");
	return 0;
}

static int apply_creds(CURL *easy, struct curl_slist **hdrs, te_registry *reg,
                       const char *scope, te_error *err)
{
	struct te_reg_token *t;

	if (reg->chal.scheme == TE_REG_AUTH_BASIC && reg->creds.user)
		return apply_basic(easy, reg, err);
	if (reg->chal.scheme != TE_REG_AUTH_BEARER)
		return 0;
	if (reg->creds.registry_token)
		return add_bearer(hdrs, reg->creds.registry_token, err);
	if (!scope)
		return 0;
	t = token_find(reg, scope);
	return t ? add_bearer(hdrs, t->token, err) : 0;
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

static int perform_once(struct te_reg_req *r, te_registry *reg, te_error *err)
{
	struct curl_slist *hdrs = NULL, *l;
	CURL *e = reg->easy;
	CURLcode c = CURLE_OK;
	char ctype[160];
	char logurl[320];
	int rc = 0;

	curl_easy_reset(e);
	r->curl_code = 0;
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
	} else if (strcmp(r->method, "PUT") == 0 ||
	           strcmp(r->method, "PATCH") == 0) {
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_READFUNCTION, read_cb);
		SET(CURLOPT_READDATA, r);
		SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
		if (strcmp(r->method, "PATCH") == 0)
			SET(CURLOPT_CUSTOMREQUEST, "PATCH");
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
	if (l && r->content_range[0])
		l = curl_slist_append(hdrs = l, r->content_range);
	if (!l) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	hdrs = l;
	if (!r->no_auth && same_origin(reg, r->url)) {
		rc = apply_creds(e, &hdrs, reg, r->scope, err);
		if (rc < 0)
			goto done;
	} else if (r->realm_creds && reg->creds.user) {
		/* token request: Basic credentials to the token realm */
		rc = apply_basic(e, reg, err);
		if (rc < 0)
			goto done;
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	c = curl_easy_perform(e);
	r->curl_code = (int)c;
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

int te_reg__request(struct te_reg_req *r, te_registry *reg, te_error *err)
{
	int64_t start = te_reg__now_ms();
	bool reauthed = false;
	int rc = 0;

	r->attempts = 0;
	for (;;) {
		struct te_reg_retry_in in;
		te_error e = TE_ERROR_INIT;
		char code[64];
		long delay;

		if (!r->no_auth) {
			rc = auth_prepare(reg, r->scope, err);
			if (rc < 0)
				return rc;
		}
		r->attempts++;
		rc = perform_once(r, reg, &e);
		if (rc == 0 && r->resp.status == 401 && !r->no_auth &&
		    !reauthed) {
			reauthed = true;
			if (te_reg__auth_refresh(reg, r->resp.www_auth,
			                         r->scope)) {
				r->attempts--;
				continue;
			}
		}
		if (rc < 0 &&
		    (e.code != TE_ENET || r->no_retry ||
		     (r->probe && r->curl_code == CURLE_SSL_CONNECT_ERROR)))
			return te_error_set(err, e.code, "%s", e.msg);
		if (r->no_retry)
			return 0;
		te_reg__error_code(code, r->errbody.ptr, r->errbody.len);
		memset(&in, 0, sizeof(in));
		in.attempt = r->attempts;
		in.status = rc == 0 ? r->resp.status : 0;
		in.curl_code = rc < 0 ? r->curl_code : 0;
		in.error_code = rc == 0 ? code : NULL;
		in.retry_after = rc == 0 ? r->resp.retry_after : NULL;
		in.now = time(NULL);
		in.elapsed_ms = (long)(te_reg__now_ms() - start);
		in.jitter = te_reg__jitter();
		delay = te_reg__retry_decide(&reg->retry, &in);
		if (delay < 0) {
			if (rc < 0 && r->attempts > 1)
				return te_error_set(
				    err, e.code, "%s (gave up after %d tries)",
				    e.msg, r->attempts);
			if (rc < 0)
				return te_error_set(err, e.code, "%s", e.msg);
			return 0;
		}
		te_log_emit(&reg->log, TE_LOG_DEBUG,
		            "%s: retrying %s in %ld ms (try %d: %s)", reg->host,
		            r->method, delay, r->attempts,
		            rc < 0 ? e.msg : "server error");
		te_reg__sleep_ms(delay);
	}
}

int te_reg__fail_status(struct te_reg_req *r, te_registry *reg,
                        const char *what, const char *repo, const char *ref,
                        te_error *err)
{
	char w[600];
	int rc;

	snprintf(w, sizeof(w), "%s %s/%s%s%s", what, reg->host, repo,
	         strncmp(ref, "sha256:", 7) == 0 ? "@" : ":", ref);
	rc = te_reg__http_error(err, r->resp.status, r->errbody.ptr,
	                        r->errbody.len, w);
	if (r->attempts > 1)
		te_error_wrap(err, "gave up after %d tries", r->attempts);
	return rc;
}
