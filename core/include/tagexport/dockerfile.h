/*
 * dockerfile.h - the parts of a Dockerfile that decide what a build reads.
 *
 * Enough of the Dockerfile grammar to know, for a target stage: the base
 * image references of the stages it depends on, and the build-context
 * sources its COPY/ADD instructions (without --from) can read.  Handles
 * line continuations, comments, parser directives (escape), heredocs
 * (skipped), JSON and shell forms, ARG defaults and ${VAR} expansion with
 * build args.  Pure; owns its strings.
 */
#ifndef TAGEXPORT_DOCKERFILE_H
#define TAGEXPORT_DOCKERFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"

/*
 * Budgets: hostile Dockerfiles stay cheap; each error names its limit.
 * A logical line (continuations joined) and the words of one instruction
 * are bounded by the size only: COPY may list a hundred thousand sources,
 * and duplicates are found by hashing, so te_dockerfile_inputs is linear
 * in its input plus its expansions.
 */
#define TE_DOCKERFILE_MAX_SIZE (1024 * 1024) /* bytes of the file */
#define TE_DOCKERFILE_MAX_STAGES 1000        /* FROM instructions */
#define TE_DOCKERFILE_MAX_INSTRUCTIONS 10000 /* instructions, all stages */
#define TE_DOCKERFILE_MAX_WORD (64 * 1024)   /* bytes of a word, expanded */
/* Bytes that all variable expansions of one te_dockerfile_inputs call
 * may produce together. */
#define TE_DOCKERFILE_MAX_EXPANSION (16 * 1024 * 1024)

typedef struct te_dockerfile te_dockerfile;

int te_dockerfile_parse(te_dockerfile **out, const char *data, size_t len,
                        te_error *err);
void te_dockerfile_free(te_dockerfile *df);

/*
 * For target (NULL = last stage) with build args "NAME=VALUE":
 * bases: base image references (after ARG expansion) of every stage the
 *        target depends on, "scratch" included, stage aliases excluded;
 * sources: cleaned context-relative source patterns of COPY/ADD in those
 *        stages ("." means the whole context).  A source that still holds
 *        an unexpanded variable makes sources contain just ".".  ADD URLs
 *        are returned as-is in sources (they are not context files).
 * Unknown target: TE_EINVALID.
 */
int te_dockerfile_inputs(te_strvec *bases, te_strvec *sources,
                         const te_dockerfile *df, const char *target,
                         const char *const *build_args, size_t nargs,
                         te_error *err);

/* FROM instructions, and the escape character (parser directive). */
size_t te_dockerfile_stage_count(const te_dockerfile *df);
char te_dockerfile_escape(const te_dockerfile *df);

/*
 * Every instruction in file order, as written: the lines it spans
 * (continuation lines, comments between them and heredoc bodies
 * included), each ending in "\n".  *keyword gets its lowercase name
 * ("from", "run", ...), *stage the index of its FROM (-1 for an ARG
 * before the first FROM).  Borrowed from df; NULL past the end.  For
 * builds that run one instruction at a time (staged: true).
 */
size_t te_dockerfile_step_count(const te_dockerfile *df);
const char *te_dockerfile_step(const te_dockerfile *df, size_t i,
                               const char **keyword, long *stage);

/* Does a context-relative file path fall under one of the sources (a
 * source matches the path itself or any of its parent directories, with
 * fnmatch path semantics)? */
bool te_dockerfile_sources_match(const te_strvec *sources, const char *path);

#endif
