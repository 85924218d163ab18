/*
 * regression.h - read an input the fuzzers found, kept under
 * tests/fuzz/regressions/<harness>/, so the normal suite replays it.
 * Unit tests run in tests/unit (tests/CMakeLists.txt).
 */
#ifndef TE_TEST_REGRESSION_H
#define TE_TEST_REGRESSION_H

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "tagexport/buf.h"
#include "tagexport/fs.h"

#define TE_REGRESSION_DIR "../fuzz/regressions"

/* The whole file into out (fails the test when it cannot be read). */
static inline void read_regression(te_buf *out, const char *harness,
                                   const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%s", TE_REGRESSION_DIR, harness,
	         name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("cannot open %s", path);
	out->max = 16 * 1024 * 1024;
	if (te_fs_read_all(out, fd, NULL) < 0)
		fail_msg("cannot read %s", path);
	close(fd);
}

#endif
