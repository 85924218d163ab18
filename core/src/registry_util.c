/*
 * registry_util.c - pure helpers of the registry client: digests,
 * WWW-Authenticate parsing, Location resolution, registry error bodies
 * and the retry decision.  No I/O.
 */
#include "registry_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

bool te_reg__digest_valid(const char *digest)
{
	size_t i;

	if (!digest || strncmp(digest, "sha256:", 7) != 0)
		return false;
	for (i = 0; i < 64; i++) {
		char c = digest[7 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return digest[71] == '\0';
}

void te_reg__digest_fmt(char out[TE_DIGEST_STR_MAX], const unsigned char md[32])
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	memcpy(out, "sha256:", 7);
	for (i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[71] = '\0';
}

void te_reg__sha256(char out[TE_DIGEST_STR_MAX], const void *data, size_t len)
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	te_reg__digest_fmt(out, md);
}

bool te_reg__host_is_loopback(const char *host)
{
	char name[256];
	size_t n;
	const char *colon;

	if (!host)
		return false;
	if (strncmp(host, "[::1]", 5) == 0 &&
	    (host[5] == '\0' || host[5] == ':'))
		return true;
	colon = strchr(host, ':');
	n = colon ? (size_t)(colon - host) : strlen(host);
	if (n == 0 || n >= sizeof(name))
		return false;
	memcpy(name, host, n);
	name[n] = '\0';
	if (strcasecmp(name, "localhost") == 0)
		return true;
	if (strncmp(name, "127.", 4) == 0) {
		/* must be a dotted quad of digits */
		int dots = 0;
		const char *p;

		for (p = name; *p; p++) {
			if (*p == '.')
				dots++;
			else if (*p < '0' || *p > '9')
				return false;
		}
		return dots == 3;
	}
	return false;
}

/* ---- WWW-Authenticate ---- */

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool is_tchar(char c)
{
	return c && c != ' ' && c != '\t' && c != ',' && c != '=' && c != '"';
}

static void skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

/* Copies a token or quoted-string value into dst (truncating). */
static void read_value(const char **p, char *dst, size_t cap)
{
	size_t n = 0;
	const char *s = *p;

	if (*s == '"') {
		s++;
		while (*s && *s != '"') {
			if (*s == '\\' && s[1])
				s++;
			if (n + 1 < cap)
				dst[n++] = *s;
			s++;
		}
		if (*s == '"')
			s++;
	} else {
		while (*s && *s != ',' && *s != ' ' && *s != '\t') {
			if (n + 1 < cap)
				dst[n++] = *s;
			s++;
		}
	}
	if (cap)
		dst[n] = '\0';
	*p = s;
}

int te_reg__parse_challenge(struct te_reg_challenge *out, const char *value,
                            te_error *err)
{
	struct te_reg_challenge cur;
	const char *p = value ? value : "";
	bool have_cur = false;

	memset(out, 0, sizeof(*out));
	memset(&cur, 0, sizeof(cur));
	while (*p) {
		char tok[64];
		size_t n = 0;
		const char *start;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		start = p;
		while (is_tchar(*p)) {
			if (n + 1 < sizeof(tok))
				tok[n++] = *p;
			p++;
		}
		tok[n] = '\0';
		if (p == start) {
			if (*p)
				p++; /* stray '=' or '"' */
			continue;
		}
		skip_ws(&p);
		if (*p == '=') {
			char val[1024];

			p++;
			while (*p == '=') /* token68 padding */
				p++;
			skip_ws(&p);
			read_value(&p, val, sizeof(val));
			if (!have_cur)
				continue;
			if (strcasecmp(tok, "realm") == 0)
				copy_str(cur.realm, sizeof(cur.realm), val);
			else if (strcasecmp(tok, "service") == 0)
				copy_str(cur.service, sizeof(cur.service), val);
			else if (strcasecmp(tok, "scope") == 0)
				copy_str(cur.scope, sizeof(cur.scope), val);
			else if (strcasecmp(tok, "error") == 0)
				copy_str(cur.error, sizeof(cur.error), val);
			continue;
		}
		/* a new challenge starts: keep the previous if it wins */
		if (have_cur && cur.scheme != TE_REG_AUTH_NONE &&
		    (out->scheme == TE_REG_AUTH_NONE ||
		     (out->scheme == TE_REG_AUTH_BASIC &&
		      cur.scheme == TE_REG_AUTH_BEARER)))
			*out = cur;
		memset(&cur, 0, sizeof(cur));
		have_cur = true;
		if (strcasecmp(tok, "bearer") == 0)
			cur.scheme = TE_REG_AUTH_BEARER;
		else if (strcasecmp(tok, "basic") == 0)
			cur.scheme = TE_REG_AUTH_BASIC;
	}
	if (have_cur && cur.scheme != TE_REG_AUTH_NONE &&
	    (out->scheme == TE_REG_AUTH_NONE ||
	     (out->scheme == TE_REG_AUTH_BASIC &&
	      cur.scheme == TE_REG_AUTH_BEARER)))
		*out = cur;
	if (out->scheme == TE_REG_AUTH_NONE)
		return te_error_set(err, TE_EINVALID,
		                    "unsupported authentication challenge");
	if (out->scheme == TE_REG_AUTH_BEARER && !out->realm[0])
		return te_error_set(err, TE_EINVALID,
		                    "bearer challenge without realm");
	return 0;
}

/* ---- URLs ---- */

int te_reg__resolve_location(char **out, const char *base, const char *location,
                             te_error *err)
{
	CURLU *u = NULL;
	char *url = NULL, *scheme = NULL;
	int rc = 0;

	*out = NULL;
	if (!location || !location[0] ||
	    strlen(location) >= TE_REG_LOCATION_MAX) {
		rc = te_error_set(err, TE_EINVALID,
		                  "missing or oversized location header");
		goto done;
	}
	u = curl_url();
	if (!u) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_URL, location, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
		rc = te_error_set(err, TE_EINVALID,
		                  "registry sent an invalid location");
		goto done;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		rc =
		    te_error_set(err, TE_EINVALID,
		                 "registry location uses scheme %.16s", scheme);
		goto done;
	}
	*out = te_strdup(url, err);
	if (!*out)
		rc = TE_ENOMEM;
done:
	curl_free(scheme);
	curl_free(url);
	curl_url_cleanup(u);
	return rc;
}

int te_reg__url_add_digest(char **out, const char *url, const char *digest,
                           te_error *err)
{
	te_buf b = TE_BUF_INIT(TE_REG_LOCATION_MAX + 128);
	int rc;

	*out = NULL;
	rc = te_buf_printf(&b, err, "%s%sdigest=sha256%%3A%s", url,
	                   strchr(url, '?') ? "&" : "?", digest + 7);
	if (rc == 0)
		*out = te_buf_detach(&b);
	te_buf_dispose(&b);
	return rc;
}

/* ---- byte ranges ---- */

/* Decimal digits at *p into *out (no sign, no overflow); *p moves past
 * them.  false when there are none or the value exceeds INT64_MAX. */
static bool parse_dec(int64_t *out, const char **p)
{
	const char *s = *p;
	int64_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (INT64_MAX - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	*p = s;
	return true;
}

int te_reg__upload_range_parse(int64_t *offset, const char *value)
{
	const char *p = value;
	int64_t first = 0, last = 0;

	*offset = -1;
	if (!p)
		return TE_EINVALID;
	if (strncasecmp(p, "bytes=", 6) == 0)
		p += 6;
	if (!parse_dec(&first, &p) || first != 0 || *p++ != '-' ||
	    !parse_dec(&last, &p) || *p != '\0' || last == INT64_MAX)
		return TE_EINVALID;
	*offset = last == 0 ? 0 : last + 1;
	return 0;
}

int te_reg__content_range_first(int64_t *first, const char *value)
{
	const char *p = value;
	int64_t a = 0, b = 0, total = 0;

	*first = -1;
	if (!p || strncasecmp(p, "bytes ", 6) != 0)
		return TE_EINVALID;
	p += 6;
	if (!parse_dec(&a, &p) || *p++ != '-' || !parse_dec(&b, &p) || b < a ||
	    *p++ != '/')
		return TE_EINVALID;
	if (!(p[0] == '*' && p[1] == '\0') &&
	    (!parse_dec(&total, &p) || *p != '\0' || total <= b))
		return TE_EINVALID;
	*first = a;
	return 0;
}

/* ---- errors ---- */

static void sanitize(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	for (; src && *src && n + 1 < cap; src++)
		dst[n++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
	dst[n] = '\0';
}

int te_reg__http_error(te_error *err, long status, const char *body, size_t len,
                       const char *what)
{
	te_code code = TE_ERROR;
	json_t *root = NULL, *errors, *first;
	char ecode[64] = "", emsg[256] = "";
	size_t nerr = 0;

	if (status == 401 || status == 403)
		code = TE_EAUTH;
	else if (status == 404)
		code = TE_ENOTFOUND;
	else if (status == 408 || status == 429 || status >= 500 || status == 0)
		code = TE_ENET;
	if (body && len > 0 && len <= TE_REG_ERRBODY_MAX)
		root = json_loadb(body, len, 0, NULL);
	errors = root ? json_object_get(root, "errors") : NULL;
	first = json_is_array(errors) ? json_array_get(errors, 0) : NULL;
	if (json_is_object(first)) {
		nerr = json_array_size(errors);
		sanitize(ecode, sizeof(ecode),
		         json_string_value(json_object_get(first, "code")));
		sanitize(emsg, sizeof(emsg),
		         json_string_value(json_object_get(first, "message")));
	}
	json_decref(root);
	if (ecode[0] && emsg[0])
		return te_error_set(err, code, "%s: %ld %s: %s%s", what, status,
		                    ecode, emsg, nerr > 1 ? " (and more)" : "");
	if (ecode[0])
		return te_error_set(err, code, "%s: %ld %s", what, status,
		                    ecode);
	/* HEAD answers have no body: say what a bare 401/403 means. */
	if (status == 401)
		return te_error_set(err, code,
		                    "%s: HTTP 401 (no credentials for this "
		                    "registry, or they were refused)",
		                    what);
	if (status == 403)
		return te_error_set(
		    err, code, "%s: HTTP 403 (the credentials lack access)",
		    what);
	return te_error_set(err, code, "%s: HTTP %ld", what, status);
}

void te_reg__error_code(char out[64], const char *body, size_t len)
{
	json_t *root = NULL, *first;

	out[0] = '\0';
	if (body && len > 0 && len <= TE_REG_ERRBODY_MAX)
		root = json_loadb(body, len, 0, NULL);
	first = json_array_get(json_object_get(root, "errors"), 0);
	sanitize(out, 64, json_string_value(json_object_get(first, "code")));
	json_decref(root);
}

/* ---- retries ---- */

/* OCI distribution spec, "Error Codes": the codes that name a passing
 * condition of the registry rather than a fault of the request. */
static bool code_transient(const char *c)
{
	return c &&
	       (strcmp(c, "TOOMANYREQUESTS") == 0 ||
	        strcmp(c, "UNAVAILABLE") == 0 || strcmp(c, "UNKNOWN") == 0 ||
	        strcmp(c, "BLOB_UPLOAD_INVALID") == 0);
}

long te_reg__retry_decide(const te_retry_policy *p,
                          const struct te_reg_retry_in *in)
{
	te_retry_try t;

	memset(&t, 0, sizeof(t));
	t.attempt = in->attempt;
	t.net = te_retry_curl_net(in->curl_code);
	t.status = in->status;
	t.transient = code_transient(in->error_code);
	t.retry_after_ms = in->curl_code == 0
	                       ? te_retry_after_ms(in->retry_after, in->now)
	                       : -1;
	t.elapsed_ms = in->elapsed_ms;
	t.jitter = in->jitter;
	return te_retry_decide(p, &t);
}
