#include "tagexport/fs.h"

#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tagexport/buf.h"

int te_fs_mkdirs(const char *dir, te_error *err)
{
	te_buf path = TE_BUF_INIT(4096);
	char *p;
	int rc;

	if (!dir || !*dir)
		return te_error_set(err, TE_EINVALID, "empty directory name");
	rc = te_buf_puts(&path, dir, err);
	if (rc < 0)
		goto done;
	for (p = path.ptr + 1;; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(path.ptr, 0700) < 0 && errno != EEXIST) {
			rc = te_error_set_errno(err, TE_EIO, errno,
			                        "cannot create %s", path.ptr);
			goto done;
		}
		*p = c;
		if (c == '\0')
			break;
	}
done:
	te_buf_dispose(&path);
	return rc;
}

/* write(2) when off is negative, else pwrite(2) at off: until all of
 * data is out, through short writes and EINTR. */
static int write_loop(int fd, const void *data, size_t len, off_t off)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n =
		    off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}

int te_fs_write_all(int fd, const void *data, size_t len)
{
	return write_loop(fd, data, len, -1);
}

int te_fs_pwrite_all(int fd, const void *data, size_t len, off_t off)
{
	if (off < 0) {
		errno = EINVAL;
		return -1;
	}
	return write_loop(fd, data, len, off);
}

int te_fs_read_all(te_buf *out, int fd, bool *too_big)
{
	char chunk[16384];
	ssize_t n;

	if (too_big)
		*too_big = false;
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : 0;
		if ((size_t)n > out->max - out->len) {
			if (!too_big) {
				errno = EFBIG;
				return -1;
			}
			*too_big = true;
			return 0;
		}
		if (te_buf_put(out, chunk, (size_t)n, NULL) < 0) {
			errno = ENOMEM;
			return -1;
		}
	}
}

/* The directory part of path ("." for a bare name), into dir. */
static int parent_of(te_buf *dir, const char *path, te_error *err)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return te_buf_puts(dir, ".", err);
	if (slash == path)
		return te_buf_puts(dir, "/", err);
	return te_buf_put(dir, path, (size_t)(slash - path), err);
}

/* fsync the directory holding path, so that a rename into it is durable
 * (fsync(2): syncing a file does not sync its directory entry). */
static int sync_parent(const char *path, te_error *err)
{
	te_buf dir = TE_BUF_INIT(4096);
	int fd = -1, rc;

	rc = parent_of(&dir, path, err);
	if (rc < 0)
		goto done;
	fd = open(dir.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		rc = te_error_set_errno(err, TE_EIO, errno, "cannot sync %s",
		                        dir.ptr);
done:
	if (fd >= 0)
		close(fd);
	te_buf_dispose(&dir);
	return rc;
}

int te_fs_write_atomic(const char *path, const void *data, size_t len,
                       mode_t mode, te_error *err)
{
	te_buf tmp = TE_BUF_INIT(4096);
	int fd = -1, rc;

	rc = te_buf_printf(&tmp, err, "%s.tmp.%ld", path, (long)getpid());
	if (rc < 0)
		goto done;
	fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	          mode);
	if (fd < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "cannot create %s",
		                        tmp.ptr);
		te_buf_clear(&tmp); /* not ours: not removed */
		goto done;
	}
	/* fchmod: the umask must not narrow or widen what was asked. */
	if (te_fs_write_all(fd, data, len) < 0 || fchmod(fd, mode) < 0 ||
	    fsync(fd) < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "cannot write %s",
		                        tmp.ptr);
		goto done;
	}
	rc = close(fd);
	fd = -1;
	if (rc < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "cannot write %s",
		                        tmp.ptr);
		goto done;
	}
	if (rename(tmp.ptr, path) < 0) {
		rc =
		    te_error_set_errno(err, TE_EIO, errno,
		                       "cannot rename %s to %s", tmp.ptr, path);
		goto done;
	}
	te_buf_clear(&tmp);
	rc = sync_parent(path, err);
done:
	if (fd >= 0)
		close(fd);
	if (tmp.len)
		unlink(tmp.ptr);
	te_buf_dispose(&tmp);
	return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void te_fs_remove_tree(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
