#include "tagexport/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Newlines would break log lines and let hostile input forge them. */
static void flatten(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

int te_error_set(te_error *err, te_code code, const char *fmt, ...)
{
	va_list ap;

	if (code == TE_OK)
		code = TE_ERROR;
	if (!err)
		return code;
	if (err->code != TE_OK)
		return err->code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	flatten(err->msg);
	return code;
}

int te_error_set_errno(te_error *err, te_code code, int errno_value,
                       const char *fmt, ...)
{
	char head[TE_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	return te_error_set(err, code, "%s: %s", head, strerror(errno_value));
}

int te_error_wrap(te_error *err, const char *fmt, ...)
{
	char head[TE_ERROR_MSG_MAX];
	size_t hlen, olen;
	va_list ap;

	if (!err)
		return TE_ERROR;
	if (err->code == TE_OK)
		err->code = TE_ERROR;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head) - 2, fmt, ap);
	va_end(ap);
	hlen = strlen(head);
	memcpy(head + hlen, ": ", 3);
	hlen += 2;
	/* Keep the root cause: the tail is cut, never the head. */
	olen = strnlen(err->msg, sizeof(err->msg) - 1);
	if (hlen + olen > sizeof(err->msg) - 1)
		olen = sizeof(err->msg) - 1 - hlen;
	memmove(err->msg + hlen, err->msg, olen);
	memcpy(err->msg, head, hlen);
	err->msg[hlen + olen] = '\0';
	flatten(err->msg);
	return err->code;
}

void te_error_clear(te_error *err)
{
	if (!err)
		return;
	err->code = TE_OK;
	err->msg[0] = '\0';
}

const char *te_code_str(te_code code)
{
	switch (code) {
	case TE_OK:
		return "ok";
	case TE_ERROR:
		return "error";
	case TE_ENOTFOUND:
		return "not found";
	case TE_EINVALID:
		return "invalid input";
	case TE_EAUTH:
		return "authentication failed";
	case TE_ENET:
		return "network error";
	case TE_ENOMEM:
		return "out of memory";
	case TE_EUNSUPPORTED:
		return "not supported";
	case TE_EBUILD:
		return "build failed";
	case TE_EIO:
		return "i/o error";
	case TE_ETIMEDOUT:
		return "timed out";
	}
	return "unknown error";
}
