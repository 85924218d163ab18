#include "tagexport/log.h"

#include <stdarg.h>
#include <stdio.h>

void te_log_emit(const te_log *log, te_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	char *p;

	if (!log || !log->fn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	log->fn(log->payload, level, line);
}
