/*
 * registry_http.c - the request engine of te_registry: header capture,
 * easy-handle setup, lazy authentication (ping GET /v2/, Basic from
 * docker config.json, Bearer token flow with a per-scope cache) and
 * te_reg__request with its small retry policy.  Protocol notes:
 * ../../shared/reference/oci-distribution.md sections 1 and 2.
 *
 * Credentials are attached only to URLs under the registry's own origin
 * (upload Locations may point elsewhere); libcurl drops them on
 * cross-host redirects (CURLOPT_UNRESTRICTED_AUTH stays off).
 */
#include "registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

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

static struct te_reg_token *token_find(te_registry *reg, const char *scope)
{
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < TE_REG_TOKENS; i++) {
		struct te_reg_token *t = &reg->tokens[i];

		if (t->scope && strcmp(t->scope, scope) == 0 &&
		    t->expires > now)
			return t;
	}
	return NULL;
}

void te_reg__token_clear(struct te_reg_token *t)
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
			te_reg__token_clear(&reg->tokens[i]);
}

static bool token_ok(const char *t)
{
	size_t n = 0;

	for (; *t; t++, n++)
		if (*t <= 0x20 || *t >= 0x7f || n >= TE_REG_TOKEN_MAX)
			return false;
	return n > 0;
}

/* Docker token spec GET: realm?service=..&scope=..(per scope). */
static int token_fetch(te_registry *reg, const char *scope, te_error *err)
{
	te_buf url = TE_BUF_INIT(TE_REG_LOCATION_MAX);
	te_buf body = TE_BUF_INIT(TE_REG_TOKEN_BODY_MAX);
	struct te_reg_req r;
	json_t *root = NULL, *tok;
	struct te_reg_token *slot;
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
	rc = te_reg__request(&r, reg, err);
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
	te_reg__token_clear(slot);
	slot->scope = te_strdup(scope, err);
	slot->token = te_strdup(json_string_value(tok), err);
	if (!slot->scope || !slot->token) {
		te_reg__token_clear(slot);
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
	struct te_reg_req r;
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
	rc = te_reg__request(&r, reg, err);
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
	struct te_reg_token *t;
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

static int perform_once(struct te_reg_req *r, te_registry *reg, te_error *err)
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
int te_reg__request(struct te_reg_req *r, te_registry *reg, te_error *err)
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

int te_reg__fail_status(struct te_reg_req *r, te_registry *reg,
                        const char *what, const char *repo, const char *ref,
                        te_error *err)
{
	char w[600];

	snprintf(w, sizeof(w), "%s %s/%s%s%s", what, reg->host, repo,
	         strncmp(ref, "sha256:", 7) == 0 ? "@" : ":", ref);
	return te_reg__http_error(err, r->resp.status, r->errbody.ptr,
	                          r->errbody.len, w);
}
