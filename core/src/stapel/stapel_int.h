/*
 * stapel_int.h - the Stapel module's private entry points.
 */
#ifndef TAGEXPORT_STAPEL_INT_H
#define TAGEXPORT_STAPEL_INT_H

#include "config_int.h"
#include "tagexport/config.h"
#include "tagexport/ignore.h"
#include "tagexport/stapel.h"

/*
 * Validate the Stapel document root (a mapping) and parse it into *out
 * (the caller frees it with te_stapel_image_free).  name (borrowed, ""
 * for `image: ~`) only appears in messages.  Errors are
 * "<file>:<line>: ..." through c.
 */
int te_stapel__parse(te_stapel_image **out, struct ctx *c,
                     const yaml_node_t *root, const char *name);

/*
 * Checks across the images of one werf.yaml, once all documents are
 * parsed: `from:` naming a werf image becomes from_image; fromImage,
 * import and dependency images must exist and not form a cycle.
 */
int te_stapel__link(te_image_config *images, size_t n, const char *file,
                    te_error *err);

/* The index of the image called name in images[0..n), or n. */
size_t te_stapel__find_image(const te_image_config *images, size_t n,
                             const char *name);

/* A matcher for werf masks (a path matches a mask or lies under a
 * directory one matches); *out is NULL for an empty list. */
int te_stapel__matcher(te_ignore **out, const te_strvec *globs, te_error *err);

/* Does a git mapping with these include/exclude matchers (NULL: none)
 * keep the add-relative path? */
bool te_stapel__git_keeps(const te_ignore *include, const te_ignore *exclude,
                          const char *path);

/* Is url a remote werf may fetch (stapel/remote.c, invariant 1)?  0, or
 * -1 with why (never holding a credential) in why[0..cap). */
int te_stapel__url_check(const char *url, char *why, size_t cap);

/* Does a checked url use ssh (ssh://, git+ssh://, scp-like)? */
bool te_stapel__url_scheme_ssh(const char *url);

/* url with the scheme and host lowercased, userinfo and trailing '/'
 * dropped (scp-like: "ssh://" + url): what names its cache. */
int te_stapel__url_normalize(te_buf *out, const char *url, te_error *err);

/* Fetch remote mapping g (once per run) and open it for reading.
 * Errors: "<file>:<line>: image \"<image>\": git url <url>: <cause>". */
int te_stapel__remote_resolve(te_stapel_remotes *r, const te_stapel_git *g,
                              const char *file, const char *image,
                              te_error *err);

/* The source and commit of resolved remote mapping g (borrowed from r);
 * false when g is not one (the project's mapping). */
bool te_stapel__remote_get(te_gitsrc **src, const char **commit,
                           te_stapel_remotes *r, const te_stapel_git *g);

#endif
