/*
 * stapel_build.h - building Stapel stages (private to core/src/stapel/).
 */
#ifndef TAGEXPORT_STAPEL_BUILD_H
#define TAGEXPORT_STAPEL_BUILD_H

#include "stapel/stapel_int.h"
#include "tagexport/digest.h"
#include "tagexport/labels.h"

/* The directory of the build context bind-mounted (read-only) into shell
 * stages: the static bash, busybox and the stage's script.  Mounted, so
 * none of it ends up in the image. */
#define TE_STAPEL_TOOLS ".tagexport-stapel"

/* The label that records which commit the git files of an image come
 * from; a later patch starts there.  werf-prefixed, so export drops it. */
#define TE_STAPEL_GIT_LABEL "werf-git-commit"
/* The commit of remote mapping i (werf keeps one per mapping) is in
 * label TE_STAPEL_GIT_LABEL "-<i>": a patch of that mapping goes from
 * there to its new commit. */
#define TE_STAPEL_GIT_LABEL_MAX 64

int te_stapel__df_from(te_buf *df, const char *base, te_error *err);
/* COPY ["<src>", "<to>/"] with --chown when owner or group is set. */
int te_stapel__df_copy(te_buf *df, const char *src, const char *to,
                       const char *owner, const char *group, te_error *err);
/* ENV "<name>"="<value>", nothing expanded. */
int te_stapel__df_env(te_buf *df, const char *name, const char *value,
                      te_error *err);
/* COPY --from=<from> of one import. */
int te_stapel__df_import(te_buf *df, const char *from,
                         const te_stapel_import *im, te_error *err);
/*
 * An import with includePaths/excludePaths (werf selects with rsync
 * filters): a stage "te-import-<i>" FROM the source, where the tools
 * directory's `imports` script copies what the filters keep of add into
 * /TE_STAPEL_IMPORT_DIR (written to df before the image's FROM); then
 * the image COPYs that directory's contents to `to`.
 */
#define TE_STAPEL_IMPORT_DIR ".tagexport-import"
int te_stapel__df_import_stage(te_buf *df, const char *from, size_t i,
                               te_error *err);
int te_stapel__df_import_filtered(te_buf *df, size_t i,
                                  const te_stapel_import *im, te_error *err);
/* RUN the tools directory's script under `bash -e`, with the tmp_dir
 * ones of mounts and the secrets (ids only) at /run/secrets/<id>.
 * build_dir and fromPath mounts are the build's volumes (build.h), not
 * the Dockerfile's. */
int te_stapel__df_script(te_buf *df, const char *script,
                         const te_stapel_mount *const *mounts, size_t nmounts,
                         const te_secret_config *secrets, size_t nsecrets,
                         te_error *err);
int te_stapel__df_docker(te_buf *df, const te_stapel_docker *dk, te_error *err);

/* Claim a stage digest for building (stapel/inflight.c); *waited: another
 * builder had it and is done.  f NULL: nothing shared. */
int te_stapel__claim(bool *waited, te_stapel_inflight *f, const char *digest,
                     te_error *err);
void te_stapel__release(te_stapel_inflight *f, const char *digest);

/* One changed or added file of a git patch. */
typedef struct te_stapel_patch_file {
	char *path; /* absolute in the image */
	char oid[41];
	unsigned mode; /* git mode */
	unsigned uid, gid;
	te_gitsrc *src; /* a remote mapping's repository; NULL: the project */
} te_stapel_patch_file;

typedef struct te_stapel_patchset {
	te_stapel_patch_file *files; /* sorted by path */
	size_t nfiles, cap;
	te_strvec removed;    /* absolute paths, whited out */
	te_strvec known_dirs; /* absolute directories the base has */
} te_stapel_patchset;

/* Where the patch layer goes and what it builds on (all borrowed). */
typedef struct te_stapel_layer_target {
	te_gitsrc *src;
	const te_buf *base_manifest;
	const char *media_type;
	const te_buf *base_config;
	const te_labels *labels;
	te_registry *reg;
	const char *repo;
	const char *tag;
	const char *stage; /* werf's name, in the layer's history entry */
} te_stapel_layer_target;

/* Put the base stage plus one layer with ps (none when ps is empty) under
 * t->tag.  TE_EUNSUPPORTED when buildah must do it (stapel/layer.c). */
int te_stapel__layer_push(char digest_out[TE_DIGEST_STR_MAX],
                          const te_stapel_patchset *ps,
                          const te_stapel_layer_target *t, te_error *err);
/* f's uid and gid from the mapping's owner and group: numbers only
 * (TE_EUNSUPPORTED for names). */
int te_stapel__patch_owner(te_stapel_patch_file *f, const te_stapel_git *g,
                           te_error *err);

/* werf's gitCache step (werf/werf pkg/build/stage/git_cache.go): the
 * stage exists from a patch of this size on, and its digest covers the
 * size in these steps. */
#define TE_STAPEL_GIT_CACHE_STEP ((uint64_t)1 << 20)

/* The size of img's git patch from commit `from` to `to`: the bytes of
 * the files its mappings change or add (what the patch layer holds). */
int te_stapel__patch_size(uint64_t *out, const te_stapel_image *img,
                          te_gitsrc *src, const char *from, const char *to,
                          const te_gitsrc_limits *lim, te_error *err);

/* gitLatestPatch's patch digest of img from commit `from` to `to` (the
 * mappings' files changed, added and removed; werf/werf
 * pkg/build/stage/git_latest_patch.go), and *empty when no mapping
 * changes: the stage is then absent. */
int te_stapel__patch_digest(char out[TE_CONTENT_TAG_LEN + 1], bool *empty,
                            const te_stapel_image *img, te_gitsrc *src,
                            const char *from, const char *to, te_error *err);

#endif
