/*
 * fs.h - small filesystem helpers shared by the core and the front ends.
 */
#ifndef TAGEXPORT_FS_H
#define TAGEXPORT_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"

/* mkdir -p: create dir and its missing parents with mode 0700 (state
 * directories hold credentials and build storage).  Existing directories
 * are left as they are. */
int te_fs_mkdirs(const char *dir, te_error *err);

/* Write all len bytes (at the file position, or at off), retrying short
 * writes and EINTR.  0, or -1 with errno set: callers name the file in
 * their own error. */
int te_fs_write_all(int fd, const void *data, size_t len);
int te_fs_pwrite_all(int fd, const void *data, size_t len, off_t off);

/* Append everything fd has left to out, retrying EINTR, within out's max:
 * more than that is -1 with errno EFBIG, or, with too_big, 0 and
 * *too_big set (out then holds what fitted).  -1 with errno set on a read
 * error (ENOMEM when out cannot grow): callers name the file. */
int te_fs_read_all(te_buf *out, int fd, bool *too_big);

/* Replace path with len bytes of data, atomically: a reader sees the old
 * file or the new one, never a mix, and a crash leaves one of them.  The
 * data goes to "<path>.tmp.<pid>" (created O_EXCL, mode), is fsync'd,
 * renamed over path, and path's directory is fsync'd.  On failure the
 * temp file is removed and path is untouched.  TE_EIO naming the file. */
int te_fs_write_atomic(const char *path, const void *data, size_t len,
                       mode_t mode, te_error *err);

/* rm -rf dir, best effort: symlinks are removed, never followed
 * (nftw(3) FTW_PHYS), what cannot be removed stays. */
void te_fs_remove_tree(const char *dir);

#endif
