#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tagexport/fs.h"

static void creates_nested_private_dirs(void **state)
{
	char base[] = "/tmp/te-fs-XXXXXX", path[256];
	te_error err = TE_ERROR_INIT;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(path, sizeof(path), "%s/a/b/c/", base);
	assert_int_equal(te_fs_mkdirs(path, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	/* Existing directories are fine. */
	assert_int_equal(te_fs_mkdirs(path, &err), 0);

	/* A file in the way is an error naming it. */
	snprintf(path, sizeof(path), "%s/file", base);
	fclose(fopen(path, "w"));
	snprintf(path, sizeof(path), "%s/file/sub", base);
	assert_int_equal(te_fs_mkdirs(path, &err), TE_EIO);
	assert_non_null(strstr(err.msg, "/file"));
	te_error_clear(&err);
	assert_int_equal(te_fs_mkdirs("", &err), TE_EINVALID);

	snprintf(path, sizeof(path), "%s/file", base);
	unlink(path);
	for (int depth = 3; depth > 0; depth--) {
		snprintf(path, sizeof(path), "%s/%.*s", base, 2 * depth - 1,
		         "a/b/c");
		rmdir(path);
	}
	rmdir(base);
}

static void writes_all_and_reads_back(void **state)
{
	char path[] = "/tmp/te-fs-file-XXXXXX";
	te_buf got = TE_BUF_INIT(64);
	bool too_big = true;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(te_fs_write_all(fd, "hello, ", 7), 0);
	assert_int_equal(te_fs_write_all(fd, "world", 5), 0);
	/* At an offset, leaving the file position alone. */
	assert_int_equal(te_fs_pwrite_all(fd, "W", 1, 7), 0);
	assert_int_equal(te_fs_pwrite_all(fd, "!", 1, 12), 0);
	assert_int_equal(te_fs_pwrite_all(fd, "x", 1, -1), -1);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 12);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(te_fs_read_all(&got, fd, &too_big), 0);
	assert_false(too_big);
	assert_int_equal(got.len, 13);
	assert_memory_equal(got.ptr, "hello, World!", 13);
	/* Past the buffer's limit: flagged, not an error. */
	te_buf_dispose(&got);
	te_buf_init(&got, 4);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(te_fs_read_all(&got, fd, &too_big), 0);
	assert_true(too_big);
	te_buf_dispose(&got);
	close(fd);
	unlink(path);
}

static void writes_atomically(void **state)
{
	char base[] = "/tmp/te-fs-atomic-XXXXXX", path[256], tmp[300];
	te_buf got = TE_BUF_INIT(64);
	te_error err = TE_ERROR_INIT;
	struct stat st;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(path, sizeof(path), "%s/f", base);
	assert_int_equal(te_fs_write_atomic(path, "one", 3, 0600, &err), 0);
	assert_int_equal(te_fs_write_atomic(path, "two!", 4, 0640, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(te_fs_read_all(&got, fd, NULL), 0);
	close(fd);
	assert_int_equal(got.len, 4);
	assert_memory_equal(got.ptr, "two!", 4);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	assert_int_not_equal(access(tmp, F_OK), 0);
	/* A directory in the way: an error naming the file, path kept. */
	assert_int_equal(mkdir(tmp, 0700), 0);
	assert_int_equal(te_fs_write_atomic(path, "x", 1, 0600, &err), TE_EIO);
	assert_non_null(strstr(err.msg, tmp));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 4);
	rmdir(tmp);
	unlink(path);
	rmdir(base);
	te_buf_dispose(&got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(creates_nested_private_dirs),
	    cmocka_unit_test(writes_all_and_reads_back),
	    cmocka_unit_test(writes_atomically),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
