#include "tagexport/fs.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

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
