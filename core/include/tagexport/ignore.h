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

typedef struct te_ignore te_ignore;

int te_ignore_parse(te_ignore **out, const char *data, size_t len,
                    te_error *err);
void te_ignore_free(te_ignore *ig);

/* True when the context-relative path is excluded (NULL ig: never). */
bool te_ignore_match(const te_ignore *ig, const char *path);

#endif
