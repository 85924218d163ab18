/*
 * registry_util.c - pure helpers of the registry client: digests,
 * WWW-Authenticate parsing, Location resolution, docker config.json
 * credential lookup and registry error bodies.  No I/O except
 * te_reg__config_load reading one file.
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

#define CONFIG_JSON_MAX (4u * 1024 * 1024)

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

/* ---- docker config.json ---- */

void te_reg__secret_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* Normalize "https://Host:5000/v1/" -> "host:5000"; docker.io aliases ->
 * "docker.io". */
static void norm_host(char *dst, size_t cap, const char *key)
{
	size_t n = 0;

	if (strncasecmp(key, "https://", 8) == 0)
		key += 8;
	else if (strncasecmp(key, "http://", 7) == 0)
		key += 7;
	while (*key && *key != '/' && n + 1 < cap) {
		char c = *key++;

		dst[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	dst[n] = '\0';
	if (strcmp(dst, "index.docker.io") == 0 ||
	    strcmp(dst, "registry-1.docker.io") == 0)
		snprintf(dst, cap, "docker.io");
}

static int decode_auth(char **user, char **pass, const char *b64, te_error *err)
{
	size_t len = strlen(b64), padded, pad = 0, outlen;
	unsigned char *tmp = NULL;
	char *in = NULL, *colon;
	int n, rc = 0;

	if (len > 64 * 1024) {
		rc = te_error_set(err, TE_EINVALID, "oversized auth entry");
		goto done;
	}
	padded = (len + 3) / 4 * 4;
	in = malloc(padded + 1);
	tmp = malloc(padded / 4 * 3 + 1);
	if (!in || !tmp) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	memcpy(in, b64, len);
	memset(in + len, '=', padded - len);
	in[padded] = '\0';
	n = padded ? EVP_DecodeBlock(tmp, (unsigned char *)in, (int)padded) : 0;
	if (n < 0) {
		rc = te_error_set(err, TE_EINVALID,
		                  "auth entry is not valid base64");
		goto done;
	}
	while (padded && in[padded - 1 - pad] == '=' && pad < 2)
		pad++;
	outlen = (size_t)n - pad;
	tmp[outlen] = '\0';
	if (memchr(tmp, '\0', outlen)) {
		/* docker strips trailing NULs from the password */
		outlen = strlen((char *)tmp);
	}
	colon = strchr((char *)tmp, ':');
	if (!colon) {
		rc = te_error_set(err, TE_EINVALID,
		                  "auth entry is not user:password");
		goto done;
	}
	*colon = '\0';
	*user = te_strdup((char *)tmp, err);
	*pass = te_strdup(colon + 1, err);
	if (!*user || !*pass) {
		te_reg__secret_free(*user);
		te_reg__secret_free(*pass);
		*user = *pass = NULL;
		rc = TE_ENOMEM;
	}
done:
	if (tmp) {
		OPENSSL_cleanse(tmp, padded / 4 * 3 + 1);
		free(tmp);
	}
	if (in) {
		OPENSSL_cleanse(in, padded);
		free(in);
	}
	return rc;
}

int te_reg__config_lookup(char **user, char **pass, const char *json,
                          size_t len, const char *host, te_error *err)
{
	json_t *root = NULL, *auths, *val, *entry = NULL;
	json_error_t jerr;
	const char *key, *a, *u, *p;
	char want[256], have[256];
	int rc = 0;

	*user = *pass = NULL;
	norm_host(want, sizeof(want), host);
	root = json_loadb(json, len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "docker config is not a json object");
		goto done;
	}
	auths = json_object_get(root, "auths");
	if (!json_is_object(auths))
		goto done;
	json_object_foreach(auths, key, val)
	{
		if (!json_is_object(val))
			continue;
		if (strcmp(key, host) == 0) {
			entry = val;
			break;
		}
		norm_host(have, sizeof(have), key);
		if (!entry && strcmp(have, want) == 0)
			entry = val;
	}
	if (!entry)
		goto done;
	a = json_string_value(json_object_get(entry, "auth"));
	if (a && a[0]) {
		rc = decode_auth(user, pass, a, err);
		goto done;
	}
	u = json_string_value(json_object_get(entry, "username"));
	p = json_string_value(json_object_get(entry, "password"));
	if (u && p && u[0]) {
		*user = te_strdup(u, err);
		*pass = te_strdup(p, err);
		if (!*user || !*pass) {
			te_reg__secret_free(*user);
			te_reg__secret_free(*pass);
			*user = *pass = NULL;
			rc = TE_ENOMEM;
		}
	}
done:
	json_decref(root);
	return rc;
}

int te_reg__config_load(char **user, char **pass, const char *dir,
                        const char *host, te_error *err)
{
	te_buf path = TE_BUF_INIT(4096);
	te_buf text = TE_BUF_INIT(CONFIG_JSON_MAX);
	FILE *f = NULL;
	char chunk[8192];
	size_t n;
	int rc;

	*user = *pass = NULL;
	if (!dir || !dir[0])
		return 0;
	rc = te_buf_printf(&path, err, "%s/config.json", dir);
	if (rc < 0)
		goto done;
	f = fopen(path.ptr, "rb");
	if (!f) {
		if (errno != ENOENT)
			rc = te_error_set_errno(err, TE_EIO, errno,
			                        "open docker config");
		goto done;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		rc = te_buf_put(&text, chunk, n, err);
		if (rc < 0)
			goto done;
	}
	if (ferror(f)) {
		rc = te_error_set(err, TE_EIO, "read docker config failed");
		goto done;
	}
	rc = te_reg__config_lookup(user, pass, text.ptr, text.len, host, err);
done:
	if (rc < 0)
		te_error_wrap(err, "%s", path.ptr);
	if (f)
		fclose(f);
	if (text.len)
		OPENSSL_cleanse(text.ptr, text.len);
	te_buf_dispose(&text);
	te_buf_dispose(&path);
	return rc;
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
	return te_error_set(err, code, "%s: HTTP %ld", what, status);
}
