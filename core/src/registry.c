/*
 * registry.c - the te_registry handle's lifecycle and the manifest and
 * small-blob operations (registry_http.c runs the requests,
 * registry_copy.c streams blobs).  Protocol notes:
 * ../../shared/reference/oci-distribution.md sections 1 and 4.4.
 */
#include "registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define ACCEPT_MANIFESTS                                                       \
	"Accept: application/vnd.oci.image.manifest.v1+json, "                 \
	"application/vnd.oci.image.index.v1+json, "                            \
	"application/vnd.docker.distribution.manifest.v2+json, "               \
	"application/vnd.docker.distribution.manifest.list.v2+json"

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
	int rc = te_reg__ready(reg, err); /* the scheme is known after it */

	if (rc < 0)
		return rc;
	te_buf_clear(url);
	return te_buf_printf(url, err, "%s/v2/%s/%s/%s", reg->base, repo, kind,
	                     ref);
}

/* ---- lifecycle ---- */

static const char *const default_certs_dirs[] = {"/etc/containers/certs.d",
                                                 "/etc/docker/certs.d"};

/* The system CA bundle libcurl would use, read so certs.d CAs can be
 * added to it (CURLOPT_CAINFO_BLOB replaces the bundle file). */
static int add_system_cas(te_buf *pem, CURL *easy, te_error *err)
{
	const char *path = "/etc/ssl/certs/ca-certificates.crt";
	char chunk[8192], *info = NULL;
	FILE *f;
	size_t n;
	int rc = 0;

#if LIBCURL_VERSION_NUM >= 0x075400
	if (curl_easy_getinfo(easy, CURLINFO_CAINFO, &info) == CURLE_OK &&
	    info && info[0])
		path = info;
#else
	(void)easy;
	(void)info;
#endif
	f = fopen(path, "rb");
	if (!f)
		return 0; /* no system store: certs.d CAs only */
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		rc = te_buf_put(pem, chunk, n, err);
		if (rc < 0)
			break;
	}
	fclose(f);
	return rc;
}

static int setup_tls(te_registry *reg, const te_registry_opts *opts,
                     te_error *err)
{
	const char *const *roots = default_certs_dirs;
	size_t nroots = 2;
	int rc;

	if (opts && opts->certs_dirs) {
		roots = opts->certs_dirs;
		nroots = opts->ncerts_dirs;
	}
	rc =
	    te_reg__certs_find(&reg->ca_pem, &reg->client_cert,
	                       &reg->client_key, roots, nroots, reg->host, err);
	if (rc < 0)
		return te_error_wrap(err, "certs.d for %s", reg->host);
	if (reg->ca_pem.len) {
		te_log_emit(&reg->log, TE_LOG_DEBUG,
		            "%s: CA certificates from certs.d", reg->host);
		rc = add_system_cas(&reg->ca_pem, reg->easy, err);
	}
	return rc;
}

static int copy_opts(te_registry *reg, const te_registry_opts *opts,
                     te_error *err)
{
	size_t i;

	reg->timeout =
	    opts && opts->timeout_seconds > 0 ? opts->timeout_seconds : 60;
	reg->helper_timeout = opts && opts->helper_timeout_ms > 0
	                          ? opts->helper_timeout_ms
	                          : 10000;
	reg->retry.attempts =
	    opts && opts->retry_attempts > 0 ? opts->retry_attempts : 5;
	reg->retry.base_ms =
	    opts && opts->retry_base_ms > 0 ? opts->retry_base_ms : 1000;
	reg->retry.total_ms =
	    opts && opts->retry_total_ms > 0 ? opts->retry_total_ms : 120000;
	reg->retry.max_delay_ms = TE_REG_BACKOFF_CAP_MS;
	reg->retry.retry_after_cap_ms = TE_REG_RETRY_AFTER_CAP_MS;
	reg->retry.jitter_pct = 10;
	if (!opts)
		return 0;
	reg->log = opts->log;
	if (opts->docker_config_dir) {
		reg->config_dir = te_strdup(opts->docker_config_dir, err);
		if (!reg->config_dir)
			return TE_ENOMEM;
	}
	if (opts->nauth_files) {
		reg->auth_files = calloc(opts->nauth_files, sizeof(char *));
		if (!reg->auth_files)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		reg->nauth_files = opts->nauth_files;
		for (i = 0; i < opts->nauth_files; i++) {
			reg->auth_files[i] = te_strdup(
			    opts->auth_files[i] ? opts->auth_files[i] : "",
			    err);
			if (!reg->auth_files[i])
				return TE_ENOMEM;
		}
	}
	return 0;
}

int te_registry_new(te_registry **out, const char *host,
                    const te_registry_opts *opts, te_error *err)
{
	te_registry *reg = NULL;
	te_buf base = TE_BUF_INIT(1024);
	bool loopback;
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
	te_buf_init(&reg->ca_pem, TE_REG_CA_PEM_MAX);
	reg->host = te_strdup(host, err);
	if (!reg->host) {
		rc = TE_ENOMEM;
		goto done;
	}
	reg->api_host = strcmp(host, "docker.io") == 0 ||
	                        strcmp(host, "index.docker.io") == 0
	                    ? "registry-1.docker.io"
	                    : reg->host;
	loopback = te_reg__host_is_loopback(host);
	/* https first everywhere; loopback and --insecure-registry hosts
	 * drop to http when the peer does not speak TLS.  Insecure means
	 * no verification either (docker's meaning). */
	reg->https = true;
	reg->http_fallback = loopback || (opts && opts->insecure);
	reg->verify = !(opts && (opts->skip_tls_verify || opts->insecure));
	rc = copy_opts(reg, opts, err);
	if (rc < 0)
		goto done;
	rc = te_buf_printf(&base, err, "https://%s", reg->api_host);
	if (rc < 0)
		goto done;
	reg->base = te_buf_detach(&base);
	if (!reg->base) {
		rc = TE_ENOMEM;
		goto done;
	}
	reg->easy = curl_easy_init();
	if (!reg->easy) {
		rc = te_error_set(err, TE_ERROR, "curl_easy_init failed");
		goto done;
	}
	rc = setup_tls(reg, opts, err);
	if (rc < 0)
		goto done;
	/* A loopback registry without TLS settings is almost always plain
	 * http (test and CI registries): talk http at once, since a failed
	 * TLS probe costs more than the whole export of a small image.  The
	 * ping switches to https if the server turns out to speak it. */
	if (loopback && !(opts && (opts->insecure || opts->skip_tls_verify)) &&
	    !reg->ca_pem.len && !reg->client_cert) {
		free(reg->base);
		reg->base = NULL;
		rc = te_buf_printf(&base, err, "http://%s", reg->api_host);
		if (rc < 0)
			goto done;
		reg->base = te_buf_detach(&base);
		if (!reg->base) {
			rc = TE_ENOMEM;
			goto done;
		}
		reg->https = false;
		reg->http_fallback = false;
		reg->https_upgrade = true;
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
		te_reg__token_clear(&reg->tokens[i]);
	te_reg__creds_clear(&reg->creds);
	if (reg->easy)
		curl_easy_cleanup(reg->easy);
	for (i = 0; i < reg->nauth_files; i++)
		free(reg->auth_files ? reg->auth_files[i] : NULL);
	free(reg->auth_files);
	te_buf_dispose(&reg->ca_pem);
	free(reg->client_cert);
	free(reg->client_key);
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

/*
 * The common start of a request on <repo>/<kind>/<ref>: validate the
 * names (ref is a tag or digest for manifests, a digest for blobs), then
 * fill the scope and the URL.  url and scope belong to the caller and
 * must outlive the request; r->errbody must be disposed by the caller
 * whatever this returns.
 */
static int req_begin(struct te_reg_req *r, te_buf *url, char scope[600],
                     te_registry *reg, const char *method, const char *repo,
                     const char *kind, const char *ref, const char *actions,
                     te_error *err)
{
	bool blob = strcmp(kind, "blobs") == 0;
	int rc;

	memset(r, 0, sizeof(*r));
	te_buf_init(&r->errbody, TE_REG_ERRBODY_MAX);
	rc = check_ref(repo, blob ? NULL : ref, err);
	if (rc == 0 && blob)
		rc = check_digest(ref, err);
	if (rc == 0)
		rc = scope_for(scope, 600, repo, actions, err);
	if (rc == 0)
		rc = url_for(url, reg, repo, kind, ref, err);
	if (rc < 0)
		return rc;
	r->method = method;
	r->url = url->ptr;
	r->scope = scope;
	r->follow = true;
	return 0;
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
	struct te_reg_req r;
	int rc;

	rc = req_begin(&r, &url, scope, reg, "GET", repo, "manifests", ref,
	               "pull", err);
	if (rc < 0)
		goto done;
	r.accept = ACCEPT_MANIFESTS;
	r.out = &raw;
	rc = te_reg__request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status != 200) {
		rc = te_reg__fail_status(&r, reg, "GET manifest", repo, ref,
		                         err);
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
	struct te_reg_req r;
	int rc;

	*exists = false;
	rc = req_begin(&r, &url, scope, reg, "HEAD", repo, "manifests", ref,
	               "pull", err);
	if (rc < 0)
		goto done;
	r.accept = ACCEPT_MANIFESTS;
	rc = te_reg__request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status == 404)
		goto done;
	if (r.resp.status != 200) {
		rc = te_reg__fail_status(&r, reg, "HEAD manifest", repo, ref,
		                         err);
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
	struct te_reg_req r;
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
	rc = te_reg__request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status != 201 && r.resp.status != 200) {
		rc = te_reg__fail_status(&r, reg, "PUT manifest", repo, ref,
		                         err);
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
	struct te_reg_req r;
	int rc;

	*exists = false;
	rc = req_begin(&r, &url, scope, reg, "HEAD", repo, "blobs", digest,
	               "pull", err);
	if (rc < 0)
		goto done;
	rc = te_reg__request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status == 200)
		*exists = true;
	else if (r.resp.status != 404)
		rc = te_reg__fail_status(&r, reg, "HEAD blob", repo, digest,
		                         err);
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
	struct te_reg_req r;
	int rc;

	rc = req_begin(&r, &url, scope, reg, "GET", repo, "blobs", digest,
	               "pull", err);
	if (rc < 0)
		goto done;
	r.out = body;
	rc = te_reg__request(&r, reg, err);
	if (rc < 0)
		goto done;
	if (r.resp.status != 200) {
		rc =
		    te_reg__fail_status(&r, reg, "GET blob", repo, digest, err);
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

int te_reg__upload_start(char **location, bool *created, int64_t *chunk_min,
                         te_registry *reg, const char *repo, const char *query,
                         const char *scope, te_error *err)
{
	te_buf url = TE_BUF_INIT(4096);
	struct te_reg_req r;
	int rc;

	*location = NULL;
	*created = false;
	if (chunk_min)
		*chunk_min = 0;
	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	rc = te_reg__ready(reg, err);
	if (rc == 0)
		rc = te_buf_printf(&url, err, "%s/v2/%s/blobs/uploads/%s%s",
		                   reg->base, repo, query ? "?" : "",
		                   query ? query : "");
	if (rc < 0)
		goto done;
	r.method = "POST";
	r.url = url.ptr;
	r.scope = scope;
	rc = te_reg__request(&r, reg, err);
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
	if (chunk_min && r.resp.chunk_min > 0)
		*chunk_min = r.resp.chunk_min;
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
	struct te_reg_req r;

	if (!location)
		return;
	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	if (scope_for(scope, sizeof(scope), repo, "pull,push", &e) == 0) {
		r.method = "DELETE";
		r.url = location;
		r.scope = scope;
		r.no_retry = true;
		(void)te_reg__request(&r, reg, &e);
	}
	te_buf_dispose(&r.errbody);
}

/* A status a retry could change: the registry is asked again later
 * rather than its session given up (te_reg__retry_decide's list). */
static bool status_transient(long status)
{
	return status == 408 || status == 429 ||
	       (status >= 500 && status != 501 && status != 505);
}

int te_reg__upload_status(int64_t *offset, char **location, te_registry *reg,
                          const char *repo, const char *scope, te_error *err)
{
	struct te_reg_req r;
	char w[400], *next = NULL;
	int rc;

	*offset = -1;
	snprintf(w, sizeof(w), "GET upload status %s/%s", reg->host, repo);
	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	r.method = "GET";
	r.url = *location;
	r.scope = scope;
	rc = te_reg__request(&r, reg, err);
	if (rc < 0) {
		te_error_wrap(err, "%s", w);
		goto done;
	}
	if (status_transient(r.resp.status)) {
		rc = te_reg__http_error(err, r.resp.status, r.errbody.ptr,
		                        r.errbody.len, w);
		if (r.attempts > 1)
			te_error_wrap(err, "gave up after %d tries",
			              r.attempts);
		goto done;
	}
	if ((r.resp.status != 204 && r.resp.status != 200) ||
	    te_reg__upload_range_parse(offset, r.resp.range) < 0) {
		char code[64];

		te_reg__error_code(code, r.errbody.ptr, r.errbody.len);
		te_log_emit(&reg->log, TE_LOG_DEBUG,
		            "%s: session unusable (%ld %s, Range '%.40s')", w,
		            r.resp.status, code, r.resp.range);
		*offset = -1;
		goto done;
	}
	if (r.resp.location[0]) {
		rc = te_reg__resolve_location(&next, *location, r.resp.location,
		                              err);
		if (rc < 0) {
			*offset = -1;
			te_error_wrap(err, "%s", w);
			goto done;
		}
		free(*location);
		*location = next;
	}
done:
	te_buf_dispose(&r.errbody);
	return rc;
}

/* The final PUT ?digest= of a session, with an optional body. */
static int upload_finish(te_registry *reg, const char *location,
                         const char *repo, const char *scope,
                         const char *digest, const void *data, size_t len,
                         long *status, te_error *err)
{
	char *put = NULL;
	struct te_reg_req r;
	int rc;

	*status = 0;
	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	rc = te_reg__url_add_digest(&put, location, digest, err);
	if (rc < 0)
		goto done;
	r.method = "PUT";
	r.url = put;
	r.scope = scope;
	r.content_type = "application/octet-stream";
	r.body = data ? data : "";
	r.body_len = len;
	r.no_retry = true; /* a session is single-use: callers restart */
	rc = te_reg__request(&r, reg, err);
	if (rc < 0)
		goto done;
	*status = r.resp.status;
	if (r.resp.status != 201) {
		rc =
		    te_reg__fail_status(&r, reg, "PUT blob", repo, digest, err);
		goto done;
	}
	if (r.resp.docker_digest[0] &&
	    strcmp(r.resp.docker_digest, digest) != 0)
		rc =
		    te_error_set(err, TE_EINVALID,
		                 "PUT blob %s/%s@%s: registry stored '%.80s'",
		                 reg->host, repo, digest, r.resp.docker_digest);
done:
	free(put);
	te_buf_dispose(&r.errbody);
	return rc;
}

int te_reg__upload_chunked(char **location, long *status, te_registry *reg,
                           const char *repo, const char *scope,
                           const char *digest, const void *data, size_t len,
                           size_t off, int64_t chunk, te_error *err)
{
	struct te_reg_req r;
	int rc = 0;

	*status = 0;
	memset(&r, 0, sizeof(r));
	te_buf_init(&r.errbody, TE_REG_ERRBODY_MAX);
	if (chunk <= 0)
		chunk = TE_REG_CHUNK_DEFAULT;
	while (off < len) {
		size_t n = len - off;
		char *next = NULL;

		if ((int64_t)n > chunk)
			n = (size_t)chunk;
		memset(&r.resp, 0, sizeof(r.resp));
		r.method = "PATCH";
		r.url = *location;
		r.scope = scope;
		r.content_type = "application/octet-stream";
		snprintf(r.content_range, sizeof(r.content_range),
		         "Content-Range: %zu-%zu", off, off + n - 1);
		r.body = (const char *)data + off;
		r.body_len = n;
		r.no_retry = true;
		rc = te_reg__request(&r, reg, err);
		if (rc < 0)
			goto done;
		if (r.resp.status != 202) {
			*status = r.resp.status;
			rc = te_reg__fail_status(&r, reg, "PATCH blob", repo,
			                         digest, err);
			goto done;
		}
		/* always the newest Location: it carries the offset */
		if (r.resp.location[0]) {
			rc = te_reg__resolve_location(&next, *location,
			                              r.resp.location, err);
			if (rc < 0)
				goto done;
			free(*location);
			*location = next;
		}
		off += n;
	}
	rc = upload_finish(reg, *location, repo, scope, digest, NULL, 0, status,
	                   err);
done:
	te_buf_dispose(&r.errbody);
	return rc;
}

/* Whether a failed monolithic PUT says "send chunks instead". */
static bool wants_chunks(long status)
{
	return status == 400 || status == 405 || status == 411 ||
	       status == 413 || status == 416 || status == 501;
}

/*
 * Where the next try of an in-memory upload starts: *off = the byte the
 * open session *loc continues from (its status), or -1 after a fresh
 * POST (*loc replaced; a session the registry no longer knows is
 * cancelled first).  *created when the blob is there: the POST stored
 * it, or the request that ended the session had committed it.
 */
static int put_session(int64_t *off, char **loc, bool *created,
                       int64_t *chunk_min, te_registry *reg, const char *repo,
                       const char *scope, const char *digest, size_t len,
                       te_error *err)
{
	int rc;

	*off = -1;
	if (*loc) {
		rc = te_reg__upload_status(off, loc, reg, repo, scope, err);
		if (rc < 0)
			return rc;
		if (*off > (int64_t)len)
			*off = -1;
		if (*off >= 0) {
			te_log_emit(&reg->log, TE_LOG_DEBUG,
			            "%s: resuming upload of %s at byte %lld of "
			            "%zu",
			            reg->host, digest, (long long)*off, len);
			return 0;
		}
		te_reg__upload_cancel(reg, *loc, repo);
		free(*loc);
		*loc = NULL;
		/* a request that failed after the commit (the answer was
		 * lost) ended its session too */
		rc = te_registry_blob_exists(created, reg, repo, digest, err);
		if (rc < 0 || *created)
			return rc;
	}
	return te_reg__upload_start(loc, created, chunk_min, reg, repo, NULL,
	                            scope, err);
}

/* A failed request of a session that says "ask again / start over"
 * rather than "give up": 404 BLOB_UPLOAD_UNKNOWN (the session is gone:
 * the status GET confirms it) and 416 (the registry holds another
 * offset than the request claimed). */
static bool session_recoverable(long status, const char *code)
{
	return status == 416 ||
	       (status == 404 && strcmp(code, "BLOB_UPLOAD_UNKNOWN") == 0);
}

/*
 * A failed PATCH or PUT keeps its session: the next try asks the
 * registry how many bytes it holds and PATCHes the rest (the data is in
 * memory and was verified up front, so no hash state is needed), except
 * after a 416, which means the offset cannot be trusted: a new session.
 */
int te_registry_blob_put(te_registry *reg, const char *repo, const char *digest,
                         const void *data, size_t len, te_error *err)
{
	char scope[600], dg[TE_DIGEST_STR_MAX], code[64];
	char *loc = NULL;
	bool exists = false, created = false;
	int64_t start = te_reg__now_ms(), chunk_min = 0, off = -1;
	int attempt = 0, rc;

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
	if (rc < 0)
		goto done;
	for (;;) {
		struct te_reg_retry_in in;
		te_error e = TE_ERROR_INIT;
		long status = 0, delay;

		attempt++;
		rc = put_session(&off, &loc, &created, &chunk_min, reg, repo,
		                 scope, digest, len, err);
		if (rc < 0 || created)
			goto done;
		if (off >= 0 || reg->chunked || chunk_min > 0)
			rc = te_reg__upload_chunked(
			    &loc, &status, reg, repo, scope, digest, data, len,
			    off > 0 ? (size_t)off : 0,
			    chunk_min > 0 ? chunk_min : TE_REG_CHUNK_DEFAULT,
			    &e);
		else
			rc = upload_finish(reg, loc, repo, scope, digest, data,
			                   len, &status, &e);
		if (rc == 0)
			break;
		code[0] = '\0';
		if (strstr(e.msg, "BLOB_UPLOAD_INVALID"))
			snprintf(code, sizeof(code), "BLOB_UPLOAD_INVALID");
		else if (strstr(e.msg, "BLOB_UPLOAD_UNKNOWN"))
			snprintf(code, sizeof(code), "BLOB_UPLOAD_UNKNOWN");
		if (status == 416) {
			te_reg__upload_cancel(reg, loc, repo);
			free(loc);
			loc = NULL;
		}
		if (off < 0 && !reg->chunked && !chunk_min &&
		    wants_chunks(status)) {
			te_log_emit(&reg->log, TE_LOG_DEBUG,
			            "%s: monolithic upload refused (%ld), "
			            "switching to chunked uploads",
			            reg->host, status);
			reg->chunked = true;
			continue;
		}
		memset(&in, 0, sizeof(in));
		in.attempt = attempt;
		in.status =
		    e.code == TE_ENET || session_recoverable(status, code)
		        ? 503
		        : 400;
		in.error_code = code;
		in.now = time(NULL);
		in.elapsed_ms = (long)(te_reg__now_ms() - start);
		in.jitter = te_reg__jitter();
		delay = te_reg__retry_decide(&reg->retry, &in);
		if (delay < 0) {
			rc = te_error_set(err, e.code, "%s", e.msg);
			if (attempt > 1)
				te_error_wrap(err, "gave up after %d tries",
				              attempt);
			goto done;
		}
		te_log_emit(&reg->log, TE_LOG_DEBUG,
		            "%s: upload of %s failed, retrying in %ld ms: %s",
		            reg->host, digest, delay, e.msg);
		te_reg__sleep_ms(delay);
	}
	free(loc);
	loc = NULL; /* committed: nothing to cancel */
done:
	if (rc < 0 && loc)
		te_reg__upload_cancel(reg, loc, repo);
	free(loc);
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
	rc = te_reg__upload_start(&loc, &created, NULL, reg, repo, query.ptr,
	                          scope, &e);
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
