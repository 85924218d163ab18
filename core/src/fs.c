#include "tagexport/fs.h"

#include <errno.h>
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
