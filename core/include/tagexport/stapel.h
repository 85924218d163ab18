/*
 * stapel.h - Stapel images: werf's stage conveyor
 * (https://werf.io/docs/v2/usage/build/stapel/overview.html).
 *
 * A Stapel document of werf.yaml (`image:` or the deprecated `artifact:`
 * without `dockerfile:`) is parsed by config.c's document splitter and
 * handed to te_stapel__parse (private), which fills a te_stapel_image
 * hanging off its te_image_config.  Every field is typed here; YAML never
 * leaves the config module.  A te_stapel_image owns all its strings and is
 * freed with the te_image_config that holds it (te_config_free).
 *
 * Refused while parsing (TE_EUNSUPPORTED, "<file>:<line>: image \"x\":
 * <key> ..."): `ansible` only (werf's Ansible builder has no equivalent
 * here).  `imageSpec` is read by config.c
 * into te_image_config.imagespec (merged with build.imageSpec for final
 * images) and applied to the config of the image's last stage, as werf's
 * imageSpec stage follows dockerInstructions.  `fromLatest`, `mount: from:
 * build_dir` and `fromPath` are refused by te_stapel_plan_add unless
 * werf-giterminism.yaml allows them (config.stapel.allowFromLatest,
 * config.stapel.mount.allowBuildDir and allowFromPaths, or --loose-giterminism)
 * and, where the export runs for a server or hook, the operator's
 * te_stapel_policy allows the mounts too; so is a remote git mapping
 * (`url`) by branch or without a ref (config.stapel.git.allowBranch).  Remote
 * mappings are fetched while planning (te_stapel_remotes, stapel/remote.c).
 * `secrets` are config.c's (te_image_config.secrets).
 */
#ifndef TAGEXPORT_STAPEL_H
#define TAGEXPORT_STAPEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"
#include "tagexport/build.h"
#include "tagexport/gitsrc.h"
#include "tagexport/log.h"
#include "tagexport/plan.h"
#include "tagexport/registry.h"

/* The four user stages, in conveyor order. */
typedef enum te_stapel_user {
	TE_STAPEL_BEFORE_INSTALL,
	TE_STAPEL_INSTALL,
	TE_STAPEL_BEFORE_SETUP,
	TE_STAPEL_SETUP,
	TE_STAPEL_NUSER
} te_stapel_user;

/* Where an import or a dependency lands: `before:`/`after:` install or
 * setup (werf accepts only those two stages). */
typedef enum te_stapel_when {
	TE_STAPEL_BEFORE_INSTALL_STAGE, /* dependenciesBeforeInstall */
	TE_STAPEL_AFTER_INSTALL_STAGE,  /* dependenciesAfterInstall */
	TE_STAPEL_BEFORE_SETUP_STAGE,   /* dependenciesBeforeSetup */
	TE_STAPEL_AFTER_SETUP_STAGE,    /* dependenciesAfterSetup */
	TE_STAPEL_NWHEN
} te_stapel_when;

/* One `git:` mapping. */
typedef struct te_stapel_git {
	/* NULL: the project repository; else a remote one, checked by
	 * te_stapel__url_check (https, http, git, ssh; no password in it) */
	char *url;
	char *branch; /* remote mappings only; NULL when unset */
	char *tag;
	char *commit; /* 7..40 lowercase hex */
	/* basicAuth: username and where the password comes from (kind as
	 * build secrets: env, src or value); NULL when unset.  The password
	 * (or its env name or file) never reaches a message, a label or a
	 * digest; wiped when freed. */
	char *auth_user;
	int auth_kind; /* a te_secret_kind (config.h includes this file) */
	char *auth_password;
	char *add;   /* "/"-rooted path in the repository, cleaned; "/" */
	char *to;    /* absolute path in the image, cleaned */
	char *owner; /* NULL when unset */
	char *group;
	te_strvec include_paths; /* globs relative to add */
	te_strvec exclude_paths;
	/* stageDependencies: globs relative to add, for install,
	 * beforeSetup, setup (index TE_STAPEL_BEFORE_INSTALL stays empty:
	 * werf has no such key) */
	te_strvec stage_deps[TE_STAPEL_NUSER];
	int line;
} te_stapel_git;

/* `shell:` */
typedef struct te_stapel_shell {
	te_strvec cmds[TE_STAPEL_NUSER];
	char *cache_version;                        /* NULL when unset */
	char *stage_cache_version[TE_STAPEL_NUSER]; /* <stage>CacheVersion */
} te_stapel_shell;

/* One `import:` record. */
typedef struct te_stapel_import {
	char *image;    /* werf image (from/image/artifact), or NULL */
	char *external; /* `from:` naming an external image (has ':' or '@') */
	char *stage;    /* source stage, NULL: the image's last stage */
	te_stapel_when when;
	char *add; /* absolute, cleaned */
	char *to;  /* absolute, cleaned; add when unset */
	char *owner;
	char *group;
	te_strvec include_paths;
	te_strvec exclude_paths;
	int line;
} te_stapel_import;

typedef enum te_stapel_mount_from {
	TE_STAPEL_MOUNT_TMP_DIR,
	TE_STAPEL_MOUNT_BUILD_DIR,
	TE_STAPEL_MOUNT_PATH /* fromPath */
} te_stapel_mount_from;

/* One `mount:` record. */
typedef struct te_stapel_mount {
	te_stapel_mount_from from;
	char *from_path; /* fromPath only: absolute, cleaned, no ':' or ',' */
	char *to;        /* absolute, cleaned */
	int line;
} te_stapel_mount;

/* One `dependencies:` record; imports are "TYPE=ENV" with TYPE one of
 * ImageName, ImageDigest, ImageRepo, ImageTag. */
typedef struct te_stapel_dependency {
	char *image;
	te_stapel_when when;
	te_strvec imports;
	int line;
} te_stapel_dependency;

/* `docker:` (deprecated in werf, still honoured). */
typedef struct te_stapel_docker {
	bool set;
	te_strvec volume;
	te_strvec expose;
	te_strvec env;   /* "NAME=VALUE", in file order */
	te_strvec label; /* "NAME=VALUE", in file order */
	char *workdir;   /* NULL when unset */
	char *user;
	char *entrypoint; /* shell form, or exec form as a JSON array */
	char *cmd;
	char *healthcheck;
} te_stapel_docker;

typedef struct te_stapel_image {
	bool artifact;    /* declared with the deprecated `artifact:` */
	char *from;       /* registry image, NULL when fromImage */
	bool from_latest; /* fromLatest */
	char *from_image; /* werf image (fromImage, fromArtifact) */
	char *from_cache_version;
	char *cache_version; /* image-level cacheVersion */
	bool disable_git_after_patch;
	te_stapel_git *git;
	size_t ngit;
	te_stapel_shell shell;
	te_stapel_import *imports;
	size_t nimports;
	te_stapel_mount *mounts;
	size_t nmounts;
	te_stapel_dependency *deps;
	size_t ndeps;
	te_stapel_docker docker;
	int line;             /* line of the document's first key */
	int from_line;        /* line of from/fromImage/fromArtifact */
	int from_latest_line; /* line of fromLatest */
} te_stapel_image;

/* Free img and everything it owns; NULL is fine. */
void te_stapel_image_free(te_stapel_image *img);

/* ---- the conveyor ---------------------------------------------------- */

/* werf's stages of a Stapel image, in conveyor order. */
typedef enum te_stapel_stage_kind {
	TE_STAPEL_STAGE_FROM,
	TE_STAPEL_STAGE_BEFORE_INSTALL,
	TE_STAPEL_STAGE_DEPS_BEFORE_INSTALL,
	TE_STAPEL_STAGE_GIT_ARCHIVE,
	TE_STAPEL_STAGE_INSTALL,
	TE_STAPEL_STAGE_DEPS_AFTER_INSTALL,
	TE_STAPEL_STAGE_BEFORE_SETUP,
	TE_STAPEL_STAGE_DEPS_BEFORE_SETUP,
	TE_STAPEL_STAGE_SETUP,
	TE_STAPEL_STAGE_DEPS_AFTER_SETUP,
	TE_STAPEL_STAGE_GIT_CACHE,
	TE_STAPEL_STAGE_GIT_LATEST_PATCH,
	TE_STAPEL_STAGE_DOCKER, /* dockerInstructions */
	TE_STAPEL_NSTAGES
} te_stapel_stage_kind;

#define TE_STAPEL_INPUT_LEN 56 /* SHA3-224 hex, as TE_CONTENT_TAG_LEN */

/* One present stage: what its digest depends on besides the stages
 * before it (the plan's stage input, plan.h). */
typedef struct te_stapel_stage {
	te_stapel_stage_kind kind;
	char input[TE_STAPEL_INPUT_LEN + 1];
} te_stapel_stage;

typedef struct te_stapel_stages {
	te_stapel_stage items[TE_STAPEL_NSTAGES];
	size_t count;
} te_stapel_stages;

/* What a stage list needs beyond werf.yaml and the commit. */
typedef struct te_stapel_inputs {
	/* fromLatest: the base image's manifest digest in its registry
	 * (werf: "actual digest from registry"); NULL otherwise */
	const char *from_digest;
	/* meta build.cacheVersion; NULL when unset */
	const char *cache_version;
	/* the one platform built ("linux/arm64"), NULL: native */
	const char *platform;
	/* te_imagespec_serialize of the image's merged imageSpec, hashed
	 * into the last stage's input (that stage's config carries it);
	 * NULL or "": none */
	const char *imagespec;
	/* the remote mappings' sources and commits, resolved
	 * (te_stapel_plan_add); NULL: the image has none */
	struct te_stapel_remotes *remotes;
} te_stapel_inputs;

/**
 * The stages of img at commit, in conveyor order, empty ones left out,
 * each with its input (stapel/stages.c lists the fields).  Images img
 * uses (fromImage, import, dependencies) are not hashed here: the caller
 * makes them plan dependencies (plan.h), whose digests the plan chains
 * in.  gitCache is not listed here: whether it exists depends on the
 * stages repo, so te_stapel_plan_add adds it to the plan with a resolver
 * (plan.h); gitLatestPatch is listed with an input that covers no file
 * (and the imageSpec when it is last): its resolver adds the patch.  src
 * reads the mappings' `add` from the repository root
 * (te_stapel_env.root).
 *
 * Pure over the commit's tree: the same img, commit and in give the same
 * inputs on every machine.
 *
 * @param in  may be NULL when img has no fromLatest
 * @return 0; TE_EINVALID (fromLatest without in->from_digest, a bad
 *         glob); errors of te_gitsrc_walk; TE_ENOMEM
 */
int te_stapel_stages_compute(te_stapel_stages *out, const te_stapel_image *img,
                             te_gitsrc *src, const char *commit,
                             const te_stapel_inputs *in, te_error *err);

/* ---- building: Stapel images in a plan ------------------------------ */

struct te_image_config; /* config.h */

/* The stages being built by a run's stage builders (several threads): a
 * stage two images share is built once.  Free with
 * te_stapel_inflight_free after the last build. */
typedef struct te_stapel_inflight te_stapel_inflight;
int te_stapel_inflight_new(te_stapel_inflight **out, te_error *err);
void te_stapel_inflight_free(te_stapel_inflight *f);

/* Remote repositories of `git:` mappings with `url` (stapel/remote.c):
 * fetched while planning into bare caches under
 * <state_dir>/git-remotes/, one per url, reused by later exports.  Free
 * with te_stapel_remotes_free after the last build. */
typedef struct te_stapel_remotes te_stapel_remotes;

/* Borrowed strings; must outlive the te_stapel_remotes. */
typedef struct te_stapel_remote_opts {
	const char *state_dir;
	const char *ssh_key; /* private key for ssh urls; NULL: refused */
	const char *known_hosts_file; /* NULL: libgit2's ~/.ssh/known_hosts */
	/* basicAuth passwords from env or src, as te_export_secret_fn
	 * (export.h; kind is a te_secret_kind); NULL: only `value` works */
	int (*secret)(te_buf *out, const char *id, int kind, const char *ref,
	              void *payload, te_error *err);
	void *secret_payload;
	uint64_t max_bytes; /* per fetch; 0: 1 GiB */
	unsigned timeout;   /* seconds per fetch; 0: 600 */
} te_stapel_remote_opts;

int te_stapel_remotes_new(te_stapel_remotes **out,
                          const te_stapel_remote_opts *o, te_error *err);
void te_stapel_remotes_free(te_stapel_remotes *r);

/*
 * The operator's word on what a Stapel image may reach (project.h,
 * stapel_mounts: and stapel_git_urls:): a server or hook builds hostile
 * commits, whose own werf-giterminism.yaml must not be enough to mount
 * the build machine's files or to make it fetch from any host it can
 * reach (internal services included).  Borrowed.
 */
typedef struct te_stapel_policy {
	bool build_dir;                /* mount from: build_dir */
	const char *const *from_paths; /* globs (fnmatch(3), no flags) */
	size_t nfrom_paths;
	/* remote git mappings: globs (fnmatch(3), no flags) on the url as
	 * werf.yaml writes it; none: no remote mapping */
	const char *const *git_urls;
	size_t ngit_urls;
	/* The operator's project name: build_dir lives under it, not under
	 * werf.yaml's `project`, which a commit could set to another
	 * project's name to reach that project's build_dir.  NULL:
	 * werf.yaml's. */
	const char *project;
} te_stapel_policy;

/*
 * Add a werf image that is not a Stapel image (a Dockerfile image) to
 * plan, for the platform a Stapel image using it is built for (NULL:
 * native), and return its plan image (owned by the plan).  The Stapel
 * module never learns how such an image is built; the caller does
 * (export_build.c).  Errors need not name the werf.yaml line: the
 * caller prefixes it.
 */
typedef int (*te_stapel_add_other_fn)(te_plan_image **out, void *payload,
                                      const struct te_image_config *image,
                                      const char *platform, te_error *err);

/* What building Stapel stages needs; borrowed, must outlive the plan. */
typedef struct te_stapel_env {
	te_gitsrc *src; /* the project: werf-giterminism.yaml */
	/* the repository from its root (te_gitsrc_open_root): the git
	 * mappings' `add`; NULL: src (the project is the repository root) */
	te_gitsrc *root;
	const char *commit;  /* 40 hex */
	const char *project; /* werf's project name, for the werf label */
	const char *file;    /* werf.yaml's name, for messages */
	/* buildah, state_dir, isolation, runtime, timeout, authfile,
	 * insecure hosts, log; per stage the builder sets context_dir,
	 * dockerfile, labels, image_ref and name */
	const te_build_opts *build;
	/* the stages repo: its registry host, the options of a client
	 * (each build makes its own: a te_registry is not thread-safe) */
	const char *registry_host;
	const te_registry_opts *registry_opts;
	const char *repo_path; /* the stages repo on that registry */
	/* held while a builder reads the commit (libgit2 objects are not
	 * shared between threads); NULL: single-threaded */
	pthread_mutex_t *src_mu;
	te_stapel_inflight *inflight; /* NULL: builds are not shared */
	const char *bash;             /* static bash; NULL: /bin/bash-static */
	const char *busybox;          /* static busybox; NULL: /bin/busybox */
	const te_gitsrc_limits *limits; /* for git files; NULL: defaults */
	/* remote git mappings; NULL: refused */
	te_stapel_remotes *remotes;
	/* --loose-giterminism: werf-giterminism.yaml is not consulted */
	bool loose_giterminism;
	/* The operator's allowance of build_dir and fromPath mounts and of
	 * remote git urls (a server's or hook's project settings), checked
	 * on top of werf-giterminism.yaml, which the commit being built
	 * controls; NULL: giterminism alone decides (the CLI: the user's
	 * machine). */
	const te_stapel_policy *policy;
	/* The values of image ic's build secrets (werf.yaml `secrets`) for
	 * RUN --mount=type=secret, held by *held until secrets_put(held);
	 * NULL: an image with secrets fails to build. */
	int (*secrets_get)(void **held, const te_build_secret **items,
	                   size_t *n, const struct te_image_config *ic,
	                   void *payload, te_error *err);
	void (*secrets_put)(void *held);
	void *secrets_payload;
	te_log log;
	/* Dockerfile images used by Stapel images; NULL: refused */
	te_stapel_add_other_fn add_other;
	void *add_other_payload;
	/* the machine's platform ("linux/amd64"); NULL: unknown */
	const char *native_platform;
	/* the architectures (GOARCH names) whose binaries this machine can
	 * run, natively or emulated (binfmt_misc); NULL: not checked */
	const te_strvec *runnable_archs;
} te_stapel_env;

/* werf-giterminism.yaml's config.stapel
 * (https://werf.io/docs/v2/reference/werf_giterminism_yaml.html). */
typedef struct te_stapel_allowed {
	bool from_latest; /* allowFromLatest */
	bool git_branch;  /* git.allowBranch */
	bool build_dir;   /* mount.allowBuildDir */
	/* mount.allowFromPaths: globs (fnmatch(3), no flags, as
	 * config.secrets.allowFiles) on fromPath as written */
	te_strvec from_paths;
} te_stapel_allowed;

/**
 * Read config.stapel of werf-giterminism.yaml text; data NULL: no file,
 * nothing allowed.  Dispose *out with te_stapel_allowed_dispose, also
 * after an error.
 *
 * @return 0; TE_EINVALID naming the file, line and key; TE_ENOMEM
 */
int te_stapel_allowed_parse(te_stapel_allowed *out, const char *data,
                            size_t len, te_error *err);
void te_stapel_allowed_dispose(te_stapel_allowed *a);

/**
 * May the remote git mapping g be fetched?  With an operator policy op (a
 * server or hook), its url must match one of op->git_urls; without one
 * (the CLI), any url werf.yaml may name is fetched.
 *
 * @param file, name  werf.yaml's name and the image's, for the message
 * @return 0; TE_EINVALID "<file>:<line>: image \"<name>\": git url ... is
 *         not allowed by the operator's project settings
 *         (stapel_git_urls)"
 */
int te_stapel_git_url_check(const te_stapel_git *g, const te_stapel_policy *op,
                            const char *file, const char *name, te_error *err);

/**
 * May mount m of an image be built?  build_dir needs a->build_dir,
 * fromPath a glob of a->from_paths matching it (a NULL: loose
 * giterminism, both allowed), and, with an operator policy op, its
 * allowance too: op->build_dir, or a glob of op->from_paths matching
 * the fromPath's real path (symlinks resolved, so an allowed directory
 * cannot lead elsewhere; it must exist).  tmp_dir is always allowed.
 *
 * @param file, name  werf.yaml's name and the image's, for the message
 * @return 0; TE_EINVALID "<file>:<line>: image \"<name>\": mount ... is
 *         not allowed by <which> (<key>)"; TE_ENOTFOUND for a fromPath
 *         that does not exist (with op)
 */
int te_stapel_mount_check(const te_stapel_mount *m, const te_stapel_allowed *a,
                          const te_stapel_policy *op, const char *file,
                          const char *name, te_error *err);

/**
 * Add the Stapel image images[index] to plan, with the images it uses
 * (fromImage, import, dependencies) first, Dockerfile ones through
 * env->add_other; an image already in the plan is returned as it is.
 * Refuses what is not allowed (werf-giterminism.yaml, the operator's
 * mount policy) before anything is built.  fromImage enters the `from`
 * stage's digest; an import's source and a dependency enter the digest of
 * the dependencies<When><Stage> stage where they land
 * (te_plan_add_dependency_at).  An image with git mappings gets a
 * gitCache stage with a resolver (plan.h): te_plan_seal then asks the
 * stages repo (env->registry_host) for the commit of the stage before it.
 * gitLatestPatch has one too: it leaves the chain when the patch from
 * that commit is empty for every mapping (unless it is the last stage and
 * carries the imageSpec), else its input covers the patch.
 * An image with more than one platform is refused: each platform is
 * added with te_stapel_plan_add_for.
 *
 * @param[out] out  the plan image, owned by the plan
 * @return 0; TE_EUNSUPPORTED; errors of te_stapel_stages_compute and of
 *         te_plan_add_*
 */
int te_stapel_plan_add(te_plan_image **out, te_plan *plan,
                       const struct te_image_config *images, size_t n,
                       size_t index, const te_stapel_env *env, te_error *err);

/**
 * te_stapel_plan_add for one platform of the image: its conveyor built
 * with `--platform platform`, the platform hashed into the from stage,
 * the images it uses taken for that platform; the plan image is called
 * "<name> (<platform>)".  platform NULL is te_stapel_plan_add.  Shell
 * commands for a platform whose architecture is not in
 * env->runnable_archs are refused (TE_EUNSUPPORTED) before any build.
 */
int te_stapel_plan_add_for(te_plan_image **out, te_plan *plan,
                           const struct te_image_config *images, size_t n,
                           size_t index, const char *platform,
                           const te_stapel_env *env, te_error *err);

/**
 * Which platform of an image serves a user built for want (NULL: the
 * native one).  have: the image's platforms (empty: native only).
 * *out: NULL for the image's own single build, else the entry of have
 * (or want itself when any_platform and have is empty: a Stapel image
 * can be built for any platform).  Pure.
 *
 * @return 0; TE_EUNSUPPORTED "is built for linux/amd64, not linux/arm64"
 */
int te_stapel_pick_platform(const char **out, const te_strvec *have,
                            const char *want, const char *native,
                            bool any_platform, te_error *err);

/* The GOARCH name of a uname(2) machine ("x86_64" -> "amd64"); NULL
 * when unknown. */
const char *te_stapel_goarch(const char *machine);

/* The binfmt_misc entry qemu-user-static registers for a GOARCH
 * ("arm64" -> "qemu-aarch64"); NULL when there is none. */
const char *te_stapel_binfmt_name(const char *goarch);

/**
 * The architectures (GOARCH) whose binaries this machine runs: its own
 * (machine: uname(2)'s, may be unknown) first, then each one whose
 * qemu-user binfmt_misc entry binfmt_enabled says is usable.
 *
 * @param[out] out  appended to; the caller disposes it
 * @return 0; TE_ENOMEM
 */
int te_stapel_runnable(te_strvec *out, const char *machine,
                       bool (*binfmt_enabled)(const char *name), te_error *err);

/* Does img run commands of its base (shell stages)?  Those need the
 * platform's binaries to run; from, git, imports and docker: do not
 * (the bash and busybox stapel/build.c mounts are the machine's own). */
bool te_stapel_runs_commands(const te_stapel_image *img);

/* werf's name of a stage: "from", "gitArchive", "dockerInstructions"... */
const char *te_stapel_stage_name(te_stapel_stage_kind k);

/* The user stage's werf name: "beforeInstall", "install", ... */
const char *te_stapel_user_name(te_stapel_user u);

#endif
