/*
 * export.h - the export pipeline of one run (DESIGN.md "The export
 * pipeline"): resolve the commit, read werf.yaml from it, select images,
 * compute content-based tags, build what the stages repo lacks, then
 * publish every selected final image under every --tag template with
 * werf's labels removed and the extra labels added.
 *
 * Validation of templates and labels happens before anything is built or
 * pushed.  The result is owned by the caller (te_export_result_free).
 */
#ifndef TAGEXPORT_EXPORT_H
#define TAGEXPORT_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/build.h"
#include "tagexport/config.h"
#include "tagexport/error.h"
#include "tagexport/labels.h"
#include "tagexport/log.h"
#include "tagexport/werfcfg.h"

struct te_registry_opts;

/*
 * The value of build secret id into out (bounded by out->max): werf.yaml
 * says kind TE_SECRET_ENV (ref names a variable) or TE_SECRET_SRC (ref
 * names a file); a front end may look values up by id instead (the
 * server's project secrets).  TE_ENOTFOUND when there is none.  Messages
 * never hold the value.
 */
typedef int (*te_export_secret_fn)(te_buf *out, const char *id,
                                   te_secret_kind kind, const char *ref,
                                   void *payload, te_error *err);

typedef struct te_export_opts {
	unsigned int version;
	const char *dir;         /* project dir inside a git repo; NULL = "." */
	const char *commit;      /* revision; NULL = HEAD */
	const char *git_tag;     /* value for %git_tag%; NULL = from commit */
	const char *config_path; /* project-relative; NULL = werf.yaml|yml */
	const char *repo;        /* stages repository, required */
	const char *const *tags; /* --tag templates */
	size_t ntags;
	const char *const *patterns; /* positional image globs */
	size_t npatterns;
	const te_labels *add_labels; /* extra labels, may be NULL */
	bool insecure_registry;
	bool skip_tls_verify;
	const char *docker_config; /* dir with config.json, may be NULL */
	const char *state_dir;     /* buildah storage, temp contexts */
	const char *buildah;       /* NULL = "buildah" from PATH */
	int parallel;              /* blob transfers at once; 0 = 4 */
	/* Bounds of each build context (gitsrc.h), checked for every image
	 * before anything is built or pushed; 0 = 2 GiB / 8 GiB. */
	uint64_t max_file_size;
	uint64_t max_context_size;
	/* registry options from the environment (auth files, certs.d,
	 * retries); insecure_registry, skip_tls_verify and docker_config
	 * override theirs.  May be NULL. */
	const struct te_registry_opts *registry;
	te_log log;
	/* version 2 */
	te_build_isolation isolation; /* OCI unless chroot is asked for */
	unsigned build_timeout;       /* seconds per build; 0 = 1h */
	/* version 3: how werf.yaml is rendered (werfcfg.h), borrowed; its
	 * config_path is ignored (config_path above decides).  NULL: no
	 * environment variable is visible, .Env is "". */
	const te_werfcfg_opts *render;
	/* version 4: where the values of werf.yaml's env and src secrets come
	 * from (a value secret's is in werf.yaml).  NULL: a werf.yaml with
	 * such secrets fails before anything is built. */
	te_export_secret_fn secret;
	void *secret_payload;
	/* What `ssh:` of werf.yaml gives RUN --mount=type=ssh: these private
	 * key files (an agent holding them is made for the build), else the
	 * agent socket ssh_agent.  Neither: such a werf.yaml fails before
	 * anything is built. */
	const char *const *ssh_keys;
	size_t nssh_keys;
	const char *ssh_agent;
	/* version 4: one build per stage among exports that share the stages
	 * repo (several processes or machines).  Before a stage missing from
	 * the repo is built, lock(&held, payload, repo, tag) is called (it
	 * blocks while another holder builds that tag; repo is opts->repo,
	 * tag the stage's), the repo is looked at again, and
	 * unlock(payload, held) follows the build: the holder's build is
	 * then found instead of made twice.  Called from several build
	 * threads at once (one per image building): both must be
	 * thread-safe.  lock returns 0 or a te_code with err set.  NULL
	 * lock: no locking. */
	struct te_export_content_lock {
		int (*lock)(void **held, void *payload, const char *repo,
		            const char *tag, te_error *err);
		void (*unlock)(void *payload, void *held);
		void *payload;
	} content_lock;
	/* What a Stapel image may reach on this machine and from it: the
	 * mounts build_dir and fromPath, on top of werf-giterminism.yaml's
	 * allowance, and the urls of remote git mappings (stapel.h); the
	 * server and the hook always set it (project.h, stapel_mounts: and
	 * stapel_git_urls:, deny by default).  NULL: werf-giterminism.yaml
	 * alone decides, as werf does (the CLI: the user's own machine). */
	const te_stapel_policy *stapel_policy;
} te_export_opts;

#define TE_EXPORT_OPTS_VERSION 4
#define TE_EXPORT_OPTS_INIT                                                    \
	{                                                                      \
		.version = TE_EXPORT_OPTS_VERSION                              \
	}

typedef struct te_exported_ref {
	char *reference; /* rendered --tag */
	char *digest;    /* manifest digest in the target repo */
} te_exported_ref;

/* One image of an exported multi-platform index. */
typedef struct te_export_platform {
	char *platform; /* "os/arch[/variant]" of the index entry, or "" */
	char *digest;   /* its manifest digest in every target repo */
} te_export_platform;

typedef struct te_export_image {
	char *name;
	char *content_based_tag;
	char *stages_ref; /* repo:content-based-tag */
	bool built;       /* false when the stages repo already had it */
	size_t nrefs;
	te_exported_ref *refs;
	size_t nplatforms; /* non-zero only when an index was exported */
	te_export_platform *platforms;
} te_export_image;

typedef struct te_export_result {
	char commit[41];
	char *git_tag;
	size_t nimages;
	te_export_image *images;
	uint64_t bytes_copied;
} te_export_result;

int te_export_run(te_export_result **out, const te_export_opts *opts,
                  te_error *err);
void te_export_result_free(te_export_result *res);

/* The --report-path JSON document (heap string, caller frees). */
int te_export_report_json(char **out, const te_export_result *res,
                          te_error *err);

#endif
