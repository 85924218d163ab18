/*
 * mirror_refs.h - read the tags of a bare mirror without libgit2: the
 * loose refs under refs/tags and packed-refs (git's "files" ref backend).
 *
 * The directory is walked and names are compared as strings, so a tag
 * name from a payload never becomes a path.
 */
#ifndef TS_MIRROR_REFS_H
#define TS_MIRROR_REFS_H

#include "tagexport/buf.h"
#include "tagexport/error.h"

/*
 * Every tag of the repository at git_dir: names[i] ("v1.2.0") has the
 * ref value oids[i] (40 hex; the tag object for annotated tags).  A loose
 * ref wins over a packed one.  A missing refs/tags is not an error.
 */
int ts_mirror_tags(te_strvec *names, te_strvec *oids, const char *git_dir,
                   te_error *err);

#endif
