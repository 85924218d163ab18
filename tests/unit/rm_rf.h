/*
 * rm_rf.h - remove a test's scratch directory without running a shell.
 */
#ifndef TE_TEST_RM_RF_H
#define TE_TEST_RM_RF_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int rm_rf_one(const char *path, const struct stat *st, int flag,
                            struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* 0 when dir and everything below it is gone. */
static inline int rm_rf(const char *dir)
{
	return nftw(dir, rm_rf_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
