/*
 * fs.h - small filesystem helpers shared by the core and the front ends.
 */
#ifndef TAGEXPORT_FS_H
#define TAGEXPORT_FS_H

#include "tagexport/error.h"

/* mkdir -p: create dir and its missing parents with mode 0700 (state
 * directories hold credentials and build storage).  Existing directories
 * are left as they are. */
int te_fs_mkdirs(const char *dir, te_error *err);

#endif
