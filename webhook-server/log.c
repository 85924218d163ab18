/*
 * log.c - text or JSON log lines for tagexport-server (slog.h).
 *
 * Text:  2026-11-27T10:00:00Z info job queued project="shop" tag="v1.0.0"
 * JSON:  {"time":"2026-11-27T10:00:00Z","level":"info","msg":"job queued",
 *         "project":"shop","tag":"v1.0.0"}
 * One write(2) per line, so lines from several threads never interleave.
 */
#include "slog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static ts_log_format log_format = TS_LOG_TEXT;
static te_log_level log_min = TE_LOG_INFO;

void ts_log_set_format(ts_log_format format)
{
	log_format = format;
}

void ts_log_set_level(te_log_level min)
{
	log_min = min;
}

/* JSON has no \x escape: there the backslash itself is escaped, so the
 * value reads "\\x1b" and decodes to the text \x1b. */
static void escape(char *dst, size_t cap, const char *src, bool json)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (!cap)
		return;
	for (; src && *src; src++) {
		unsigned char c = (unsigned char)*src;
		char tmp[5];
		size_t k = 0;
		if (c < 0x20 || c >= 0x7f) {
			tmp[k++] = '\\';
			if (json)
				tmp[k++] = '\\';
			tmp[k++] = 'x';
			tmp[k++] = hex[c >> 4];
			tmp[k++] = hex[c & 15];
		} else if (c == '"' || c == '\\') {
			tmp[k++] = '\\';
			tmp[k++] = (char)c;
		} else {
			tmp[k++] = (char)c;
		}
		if (n + k >= cap)
			break;
		memcpy(dst + n, tmp, k);
		n += k;
	}
	dst[n] = '\0';
}

void ts_escape(char *dst, size_t cap, const char *src)
{
	escape(dst, cap, src, false);
}

static const char *level_name(te_log_level level)
{
	switch (level) {
	case TE_LOG_DEBUG:
		return "debug";
	case TE_LOG_INFO:
		return "info";
	case TE_LOG_WARN:
		return "warn";
	case TE_LOG_ERROR:
		return "error";
	}
	return "info";
}

static void append(char *line, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + n >= LINE_MAX_BYTES - 2)
		n = LINE_MAX_BYTES - 2 - *len;
	memcpy(line + *len, s, n);
	*len += n;
}

static void vlogkv(te_log_level level, const char *msg, va_list ap)
{
	char line[LINE_MAX_BYTES], esc[1024], stamp[32];
	const char *key, *val;
	size_t len = 0;
	struct tm tm;
	time_t now;
	bool json = log_format == TS_LOG_JSON;

	if (level < log_min)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	escape(esc, sizeof(esc), msg, json);
	if (json) {
		append(line, &len, "{\"time\":\"");
		append(line, &len, stamp);
		append(line, &len, "\",\"level\":\"");
		append(line, &len, level_name(level));
		append(line, &len, "\",\"msg\":\"");
		append(line, &len, esc);
		append(line, &len, "\"");
	} else {
		append(line, &len, stamp);
		append(line, &len, " ");
		append(line, &len, level_name(level));
		append(line, &len, " ");
		append(line, &len, esc);
	}
	while ((key = va_arg(ap, const char *))) {
		val = va_arg(ap, const char *);
		append(line, &len, json ? ",\"" : " ");
		escape(esc, sizeof(esc), key, json);
		append(line, &len, esc);
		append(line, &len, json ? "\":\"" : "=\"");
		escape(esc, sizeof(esc), val ? val : "", json);
		append(line, &len, esc);
		append(line, &len, "\"");
	}
	if (json)
		append(line, &len, "}");
	line[len++] = '\n';
	/* stderr is unbuffered; one write keeps the line whole. */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

void ts_logkv(te_log_level level, const char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	vlogkv(level, msg, ap);
	va_end(ap);
}

void ts_log_core(void *payload, te_log_level level, const char *msg)
{
	ts_logkv(level, msg, "job", (const char *)payload, NULL);
}
