/*
 * select.h - werf's image selection by positional glob patterns
 * (werf-export.md 4.5): fnmatch-style globs without '**', "!pattern"
 * excludes, an exclude never removes a name listed verbatim, an include
 * that matches nothing is an error.
 */
#ifndef TAGEXPORT_SELECT_H
#define TAGEXPORT_SELECT_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/error.h"

/*
 * names: all image names in werf.yaml order; selected: out array of
 * nnames bools set true for chosen images.  No patterns selects all.
 */
int te_select_images(bool *selected, const char *const *names, size_t nnames,
                     const char *const *patterns, size_t npatterns,
                     te_error *err);

#endif
