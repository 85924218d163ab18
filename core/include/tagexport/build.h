/*
 * build.h - build an image with buildah and push it to the stages repo.
 *
 * buildah is exec'd with an argv array (never a shell), with its own
 * storage under state_dir and vfs storage so it works without a daemon or
 * overlay support.  Every RUN runs in an OCI runtime container (runc) with
 * private mount, PID, IPC, UTS and network namespaces, and a user
 * namespace where the machine allows one; chroot isolation is only used
 * when the caller asks for it.  The build is time-limited.  Output lines
 * of buildah go to the te_log at debug level.  Credentials reach buildah
 * through --authfile (a docker config.json), never through argv.
 */
#ifndef TAGEXPORT_BUILD_H
#define TAGEXPORT_BUILD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"
#include "tagexport/labels.h"
#include "tagexport/log.h"

typedef enum {
	/* RUN in an OCI runtime container: the default */
	TE_BUILD_ISOLATION_OCI = 0,
	/* RUN in a chroot: NOT a boundary, whoever writes the Dockerfile can
	 * read and change the machine (explicit opt-in only) */
	TE_BUILD_ISOLATION_CHROOT = 1
} te_build_isolation;

#define TE_BUILD_TIMEOUT_DEFAULT 3600u /* seconds: werf-like "1h" */
#define TE_BUILD_TIMEOUT_MAX (7u * 24 * 3600)

/*
 * Rewrite an image config (JSON bytes) into out before the image is
 * pushed; the image pushed carries out's bytes as its config, and no
 * image with the unedited config is pushed anywhere.  payload is the
 * caller's.  A failure fails the build with the callback's error.
 */
typedef int (*te_build_config_edit)(te_buf *out, const void *config, size_t len,
                                    void *payload, te_error *err);

/* A build secret: RUN --mount=type=secret,id=<id> sees value.  The value
 * is written 0600 into the job's private directory for the build only. */
typedef struct te_build_secret {
	const char *id; /* [A-Za-z0-9_.-]+ */
	const char *value;
	size_t len;
} te_build_secret;

typedef struct te_build_opts {
	const char *buildah;     /* program name or path; NULL = "buildah" */
	const char *state_dir;   /* storage root lives in <state_dir>/buildah */
	const char *context_dir; /* materialized build context */
	/* The Dockerfile bytes tagexport parsed and hashed: written to the
	 * job's private directory as "Dockerfile", so buildah never reads a
	 * Dockerfile of the context and never preprocesses one (.in). */
	const char *dockerfile;
	size_t dockerfile_len;
	const char *target;            /* NULL: last stage */
	const char *const *build_args; /* "NAME=VALUE" */
	size_t nbuild_args;
	const char *platform;    /* NULL: native */
	const te_labels *labels; /* werf metadata labels for the stages image */
	const char *name;        /* image name for messages; NULL: image_ref */
	const char *image_ref;   /* push destination, "host/repo:tag" */
	const char *authfile;    /* config.json with auths, may be NULL */
	const char *const *insecure_hosts; /* "host[:port]": plain HTTP, no TLS
	                                      verification, for pull and push */
	size_t ninsecure_hosts;
	bool skip_tls_verify; /* https without verification everywhere */
	/* RUN's network: NULL or "default" is the private network, "none"
	 * no network at all. */
	const char *network;
	const char *const *add_hosts; /* "host:ip" for RUN's /etc/hosts */
	size_t nadd_hosts;
	const te_build_secret *secrets;
	size_t nsecrets;
	/* buildah build --volume HOST:CTR[:OPTIONS] (buildah-build(1)): a host
	 * directory mounted into every RUN of the build, never into the
	 * image (only the empty mount point is).  Paths are absolute and
	 * hold no ':' or ','; OPTIONS as buildah takes them ("rw,U"). */
	const char *const *volumes;
	size_t nvolumes;
	/* RUN --mount=type=ssh,id=<ssh_id>: ssh_source is an agent socket
	 * or comma-separated private key files (buildah-build(1), --ssh) */
	const char *ssh_id;
	const char *ssh_source;
	te_build_config_edit edit_config; /* NULL: config as built */
	void *edit_payload;
	te_build_isolation isolation;
	const char *runtime; /* OCI runtime name or path; NULL = "runc" */
	unsigned timeout;    /* seconds for `buildah build`; 0 = default */
	/* Keep and reuse buildah's layer cache in the state dir (buildah
	 * build --layers): buildah keys each cached layer on the parent
	 * layer, the instruction and the content of the files it copies. */
	bool layers;
	/* Keep the built image in the local store after the push (its blobs
	 * make a later pull of it cheap); always so with layers. */
	bool keep_image;
	/* "overlay" or "vfs" (NULL): see te_build_storage_driver. */
	const char *storage_driver;
	/* When non-NULL and it becomes non-zero, the running buildah is
	 * stopped (SIGTERM, then SIGKILL for its group), nothing is pushed
	 * and the call fails with "... cancelled". */
	const atomic_int *cancel;
	te_log log;
} te_build_opts;

/*
 * Build and push; digest_out gets the pushed manifest digest
 * ("sha256:<64 hex>").  Errors: TE_EBUILD (the build failed), TE_ENET (a
 * base image or the push could not reach its registry), TE_EAUTH,
 * TE_ETIMEDOUT "build of image <ref> timed out after <d>" (the whole
 * build was killed, nothing pushed), TE_EUNSUPPORTED (OCI isolation asked
 * for and the runtime is missing), TE_EIO, TE_ENOMEM.
 */
int te_build_and_push(char digest_out[72], const te_build_opts *opts,
                      te_error *err);

/*
 * The storage driver of buildah's store in <state_dir>/buildah: the one
 * recorded in <state_dir>/buildah/driver when there is one (buildah
 * refuses to open a store with another driver), else "vfs" for a store
 * made before the choice was recorded, else "overlay" when a probe in a
 * scratch store (`buildah from scratch` + `buildah mount`, see
 * containers-storage.conf(5)) works on this machine, else "vfs".  The
 * choice is recorded.  out holds at least 16 bytes.
 * @return 0; TE_EIO (the state dir cannot be written); TE_ENOMEM
 */
int te_build_storage_driver(char *out, size_t outsz, const char *buildah,
                            const char *state_dir, const te_log *log,
                            te_error *err);

/*
 * Parse a build timeout: Go-style "30s", "10m", "1h", "1h30m" (units h, m,
 * s, each at most once, in that order).  *out gets seconds, between 1 and
 * TE_BUILD_TIMEOUT_MAX.  TE_EINVALID names the text otherwise.
 */
int te_build_timeout_parse(unsigned *out, const char *text, te_error *err);

/* "1h30m" for 5400: the form te_build_timeout_parse reads; out must hold
 * at least 32 bytes. */
void te_build_timeout_format(char *out, size_t outsz, unsigned seconds);

#endif
