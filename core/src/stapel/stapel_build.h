/*
 * stapel_build.h - building Stapel stages (private to core/src/stapel/).
 */
#ifndef TAGEXPORT_STAPEL_BUILD_H
#define TAGEXPORT_STAPEL_BUILD_H

#include "stapel/stapel_int.h"

/* The directory of the build context bind-mounted (read-only) into shell
 * stages: the static bash, busybox and the stage's script.  Mounted, so
 * none of it ends up in the image. */
#define TE_STAPEL_TOOLS ".tagexport-stapel"

/* The label that records which commit the git files of an image come
 * from; a later patch starts there.  werf-prefixed, so export drops it. */
#define TE_STAPEL_GIT_LABEL "werf-git-commit"

int te_stapel__df_from(te_buf *df, const char *base, te_error *err);
/* COPY ["<src>", "<to>/"] with --chown when owner or group is set. */
int te_stapel__df_copy(te_buf *df, const char *src, const char *to,
                       const char *owner, const char *group, te_error *err);
/* COPY --from=<from> of one import. */
int te_stapel__df_import(te_buf *df, const char *from,
                         const te_stapel_import *im, te_error *err);
/* RUN the tools directory's script under `bash -e`, with img's tmp_dir
 * mounts (img may be NULL: none). */
int te_stapel__df_script(te_buf *df, const char *script,
                         const te_stapel_image *img, te_error *err);
int te_stapel__df_docker(te_buf *df, const te_stapel_docker *dk, te_error *err);

#endif
