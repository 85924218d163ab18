/*
 * error.h - the one error model of libtagexport.
 *
 * Every fallible function returns an int: 0 on success, a negative te_code
 * on failure, and fills the caller-owned te_error passed as its last
 * argument.  The first failure wins (curl's rule): a later te_error_set on
 * a dirty error keeps the root cause, callers may only prepend context with
 * te_error_wrap.  Messages are one line, lowercase, no trailing period, and
 * never contain secrets.
 */
#ifndef TAGEXPORT_ERROR_H
#define TAGEXPORT_ERROR_H

#if defined(__GNUC__)
#define TE_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define TE_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define TE_PRINTF(fmt, args)
#define TE_WARN_UNUSED
#endif

/* Values are ABI: append only, never renumber. */
typedef enum {
	TE_OK = 0,
	TE_ERROR = -1,        /* generic failure */
	TE_ENOTFOUND = -2,    /* a named thing does not exist */
	TE_EINVALID = -3,     /* bad input: flags, werf.yaml, references */
	TE_EAUTH = -4,        /* registry refused our credentials */
	TE_ENET = -5,         /* network or server failure, retryable */
	TE_ENOMEM = -6,       /* allocation failed */
	TE_EUNSUPPORTED = -7, /* valid input we do not handle yet */
	TE_EBUILD = -8,       /* the image build itself failed */
	TE_EIO = -9,          /* local filesystem or process failure */
	TE_ETIMEDOUT = -10    /* a time limit ran out (not retried) */
} te_code;

#define TE_ERROR_MSG_MAX 512

typedef struct te_error {
	te_code code;
	char msg[TE_ERROR_MSG_MAX];
} te_error;

#define TE_ERROR_INIT                                                          \
	{                                                                      \
		TE_OK, ""                                                      \
	}

/* Record code + message unless err already holds a failure; returns the
 * code that err now holds (so `return te_error_set(...)` propagates). */
int te_error_set(te_error *err, te_code code, const char *fmt, ...)
    TE_PRINTF(3, 4);

/* Like te_error_set, appending ": strerror(errno_value)". */
int te_error_set_errno(te_error *err, te_code code, int errno_value,
                       const char *fmt, ...) TE_PRINTF(4, 5);

/* Prepend "context: " to the message already in err; returns err->code. */
int te_error_wrap(te_error *err, const char *fmt, ...) TE_PRINTF(2, 3);

void te_error_clear(te_error *err);

/* Static text for a code, never NULL. */
const char *te_code_str(te_code code);

#endif
