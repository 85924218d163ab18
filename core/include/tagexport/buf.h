/*
 * buf.h - growable byte buffer with a hard size cap, and a string vector.
 *
 * te_buf invariants: ptr is never NULL (it starts at a static ""), ptr[len]
 * is always '\0', len never exceeds max.  Appending past max fails with
 * TE_EINVALID and leaves the buffer unchanged; allocation failure is
 * TE_ENOMEM.  The buffer owns ptr; te_buf_detach hands it to the caller
 * (free() it), te_buf_dispose frees it and resets the buffer.
 */
#ifndef TAGEXPORT_BUF_H
#define TAGEXPORT_BUF_H

#include <stddef.h>

#include "tagexport/error.h"

typedef struct te_buf {
	char *ptr;
	size_t len;
	size_t cap;
	size_t max;
} te_buf;

extern char te_buf__empty[];
#define TE_BUF_INIT(limit)                                                     \
	{                                                                      \
		te_buf__empty, 0, 0, (limit)                                   \
	}

void te_buf_init(te_buf *buf, size_t max);
int te_buf_put(te_buf *buf, const void *data, size_t len, te_error *err);
int te_buf_puts(te_buf *buf, const char *s, te_error *err);
int te_buf_printf(te_buf *buf, te_error *err, const char *fmt, ...)
    TE_PRINTF(3, 4);
void te_buf_clear(te_buf *buf);
/* Returns the heap string (caller frees) or NULL if nothing was allocated
 * and a fresh empty string cannot be made; resets buf. */
char *te_buf_detach(te_buf *buf);
void te_buf_dispose(te_buf *buf);

/*
 * te_strvec: NULL-terminated vector of heap strings it owns.  items is
 * NULL until the first push; items[count] is NULL afterwards, so it can be
 * passed to execv as an argv.
 */
typedef struct te_strvec {
	char **items;
	size_t count;
	size_t cap;
} te_strvec;

#define TE_STRVEC_INIT                                                         \
	{                                                                      \
		NULL, 0, 0                                                     \
	}

int te_strvec_push(te_strvec *vec, const char *s, te_error *err);
int te_strvec_pushf(te_strvec *vec, te_error *err, const char *fmt, ...)
    TE_PRINTF(3, 4);
/* Takes ownership of s (freed on failure too). */
int te_strvec_push_owned(te_strvec *vec, char *s, te_error *err);
int te_strvec_contains(const te_strvec *vec, const char *s);
void te_strvec_sort(te_strvec *vec);
void te_strvec_dispose(te_strvec *vec);

/* strdup that reports through err. */
char *te_strdup(const char *s, te_error *err);

#endif
