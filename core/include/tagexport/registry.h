/*
 * registry.h - tagexport's own OCI distribution client over libcurl.
 *
 * Protocol: ../shared/reference/oci-distribution.md.  One te_registry per
 * registry host; it keeps connections alive between calls and is not
 * thread-safe (use one per thread).  Plain HTTP only when opts.insecure is
 * set or the host is loopback (loopback tries HTTPS first).  Anonymous
 * access, Basic and Bearer (docker token spec, OAuth2 refresh tokens)
 * auth with credentials from docker config.json (credHelpers, credsStore,
 * auths) then containers auth.json files; TLS against the system store
 * plus certs.d; retries with backoff (section 7 of the reference).
 * Credentials and tokens never appear in errors or logs.  All response bodies
 * are size-bounded, every blob byte is hashed as it streams and checked against
 * its digest.
 */
#ifndef TAGEXPORT_REGISTRY_H
#define TAGEXPORT_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"
#include "tagexport/log.h"

#define TE_DIGEST_STR_MAX 72 /* "sha256:" + 64 hex + NUL, rounded up */
#define TE_MANIFEST_MAX (4u * 1024 * 1024)
#define TE_CONFIG_MAX (4u * 1024 * 1024)

typedef struct te_registry te_registry;

typedef struct te_registry_opts {
	bool insecure;        /* allow plain HTTP (and no TLS verify) */
	bool skip_tls_verify; /* HTTPS without certificate verification */
	const char
	    *docker_config_dir; /* dir holding config.json, may be NULL */
	/* containers auth.json files (REGISTRY_AUTH_FILE, else
	 * ${XDG_RUNTIME_DIR}/containers/auth.json) consulted in order after
	 * config.json; missing files are skipped. */
	const char *const *auth_files;
	size_t nauth_files;
	/* certs.d roots holding HOST[:PORT] dirs (.crt, .cert, .key); NULL =
	 * /etc/containers/certs.d and /etc/docker/certs.d. */
	const char *const *certs_dirs;
	size_t ncerts_dirs;
	long timeout_seconds;   /* per request inactivity limit; 0 = 60 */
	long helper_timeout_ms; /* credential helper run time; 0 = 10000 */
	int retry_attempts;     /* tries per request or blob; 0 = 5 */
	long retry_base_ms;     /* first backoff delay; 0 = 1000 */
	long retry_total_ms;    /* retry budget per operation; 0 = 120000 */
	te_log log;
} te_registry_opts;

/*
 * Write a containers auth.json (mode 0600, created exclusively at path)
 * holding, for each of hosts, the credentials this client would use:
 * credential helpers are run here, so a child such as buildah needs none.
 * Hosts without credentials are left out.  The file is a secret: the
 * caller keeps it in a private directory and deletes it after use.
 */
int te_registry_authfile_write(const char *path, const char *const *hosts,
                               size_t nhosts, const te_registry_opts *opts,
                               te_error *err);

/* host: registry host[:port] as it appears in references ("docker.io" is
 * mapped to registry-1.docker.io). */
int te_registry_new(te_registry **out, const char *host,
                    const te_registry_opts *opts, te_error *err);
void te_registry_free(te_registry *reg);
const char *te_registry_host(const te_registry *reg);

/*
 * GET a manifest (tag or digest) with every known manifest type accepted.
 * body gets the exact bytes (bounded by TE_MANIFEST_MAX), media_type the
 * Content-Type without parameters, digest the sha256 of the bytes
 * (checked against ref when ref is a digest).  TE_ENOTFOUND if absent.
 */
int te_registry_manifest_get(te_buf *body, char media_type[128],
                             char digest[TE_DIGEST_STR_MAX], te_registry *reg,
                             const char *repo, const char *ref, te_error *err);

/* HEAD a manifest: *exists, and its digest when it exists. */
int te_registry_manifest_exists(bool *exists, char digest[TE_DIGEST_STR_MAX],
                                te_registry *reg, const char *repo,
                                const char *ref, te_error *err);

/* PUT exact bytes under ref (tag or digest) with Content-Type media_type;
 * digest_out gets the sha256 of the bytes (verified against the
 * registry's Docker-Content-Digest when it sends one). */
int te_registry_manifest_put(char digest_out[TE_DIGEST_STR_MAX],
                             te_registry *reg, const char *repo,
                             const char *ref, const char *media_type,
                             const void *data, size_t len, te_error *err);

int te_registry_blob_exists(bool *exists, te_registry *reg, const char *repo,
                            const char *digest, te_error *err);

/* GET a small blob (configs) into body, bounded by body->max, verified. */
int te_registry_blob_get(te_buf *body, te_registry *reg, const char *repo,
                         const char *digest, te_error *err);

/* Upload a small in-memory blob (configs) unless it already exists.  A
 * failed PATCH/PUT resumes the session from the registry's offset. */
int te_registry_blob_put(te_registry *reg, const char *repo, const char *digest,
                         const void *data, size_t len, te_error *err);

/* Cross-repository mount inside one registry: *mounted is false for any
 * answer but 201 (an opened upload session is cancelled). */
int te_registry_blob_mount(bool *mounted, te_registry *reg, const char *repo,
                           const char *digest, const char *from_repo,
                           te_error *err);

/*
 * Make blobs present in dst/dst_repo: skip those that exist, mount when src
 * and dst are the same registry, else stream GET from src into an upload
 * to dst without holding a blob in memory (bounded buffers), verifying the
 * digest and size.  Up to `parallel` blobs move at once (0 = 4).  A failed
 * try resumes its upload session where the registry's status says it
 * stopped (the source read with a ranged GET); tries per blob follow the
 * retry policy (opts.retry_attempts, retry_total_ms).
 * bytes_copied (may be NULL) gets the number of bytes streamed.
 */
typedef struct te_blob_desc {
	const char *digest;
	int64_t size;
} te_blob_desc;

int te_registry_blobs_copy(uint64_t *bytes_copied, te_registry *dst,
                           const char *dst_repo, te_registry *src,
                           const char *src_repo, const te_blob_desc *blobs,
                           size_t nblobs, int parallel, te_error *err);

#endif
