/*
 * labels.h - ordered key/value label sets and werf's --add-label parsing.
 *
 * A te_labels owns its strings.  Setting an existing key replaces its value
 * in place (so order is first-insertion order).
 */
#ifndef TAGEXPORT_LABELS_H
#define TAGEXPORT_LABELS_H

#include <stddef.h>

#include "tagexport/error.h"

typedef struct te_labels te_labels;

int te_labels_new(te_labels **out, te_error *err);
void te_labels_free(te_labels *labels);
int te_labels_set(te_labels *labels, const char *key, const char *value,
                  te_error *err);
size_t te_labels_count(const te_labels *labels);
const char *te_labels_key(const te_labels *labels, size_t i);
const char *te_labels_value(const te_labels *labels, size_t i);
/* NULL when absent. */
const char *te_labels_get(const te_labels *labels, const char *key);

/*
 * werf export's extra labels (werf-export.md 4.4): first the values of the
 * environment entries named WERF_EXPORT_ADD_LABEL_* (but not
 * WERF_EXPORT_ADD_LABEL_SEPARATOR*), sorted as whole "NAME=VALUE" strings,
 * then each flag value in order.  Each value is split by the separator,
 * each piece at its first '='.
 *
 * envp: NULL-terminated "NAME=VALUE" array (the core never reads the
 * process environment itself); may be NULL.
 * separator: the --add-label-separator value, or NULL to use a non-empty
 * WERF_EXPORT_ADD_LABEL_SEPARATOR from envp, else "\n".
 */
int te_labels_parse_werf(te_labels **out, const char *const *envp,
                         const char *const *flag_values, size_t nflags,
                         const char *separator, te_error *err);

#endif
