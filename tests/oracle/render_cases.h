/*
 * render_cases.h - compare the C template engine with the Go oracle's
 * recorded results (render_cases.c).
 */
#ifndef TE_RENDER_CASES_H
#define TE_RENDER_CASES_H

#include <stddef.h>
#include <stdio.h>

/* Returns the number of mismatching cases (0: all equal, -1: a file
 * could not be read); mismatches are described on report (may be NULL);
 * *checked counts the cases compared. */
int render_cases_check(const char *data_path, const char *cases_path,
                       const char *expected_path, FILE *report,
                       size_t *checked);

#endif
