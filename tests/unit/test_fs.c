#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(creates_nested_private_dirs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
