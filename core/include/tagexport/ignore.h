/*
 * ignore.h - .dockerignore rules (moby/patternmatcher semantics): one
 * pattern per line, '#' comments, "!" re-includes, "**" any depth, last
 * match wins, patterns cleaned like filepath.Clean and anchored at the
 * context root.  Pure; owns its strings.
 */
#ifndef TAGEXPORT_IGNORE_H
#define TAGEXPORT_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/error.h"

/* Budgets; the error of each names it.  Matching one path costs time
 * O(path length x states alive), bounded by TE_IGNORE_MAX_STEPS, and
 * memory O(longest pattern). */
#define TE_IGNORE_MAX_SIZE (1024 * 1024) /* bytes of .dockerignore */
#define TE_IGNORE_MAX_PATTERNS 10000     /* patterns (non-comment lines) */
#define TE_IGNORE_MAX_LINE 4096          /* bytes of one pattern */
/* A path longer than this is never excluded (no context path is). */
#define TE_IGNORE_MAX_PATH 4096
/* Matcher states looked at for one path, all patterns together: ordinary
 * patterns keep one or two alive, hostile ones ("*a*a*a...") thousands. */
#define TE_IGNORE_MAX_STEPS (1 << 22)

typedef struct te_ignore te_ignore;

int te_ignore_parse(te_ignore **out, const char *data, size_t len,
                    te_error *err);
void te_ignore_free(te_ignore *ig);

/**
 * Is the context-relative path excluded (NULL ig: never)?
 *
 * @param[out] excluded  false on failure
 * @return 0; TE_EINVALID when the patterns would take more than
 *         TE_IGNORE_MAX_STEPS steps on this path; TE_ENOMEM
 */
int te_ignore_check(bool *excluded, const te_ignore *ig, const char *path,
                    te_error *err);

/* te_ignore_check without the error: false when it fails. */
bool te_ignore_match(const te_ignore *ig, const char *path);

#endif
