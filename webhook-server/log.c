/*
 * log.c - text or JSON log lines for tagexport-server (slog.h).
 *
 * Text:  2026-11-27T10:00:00Z info job queued project="shop" tag="v1.0.0"
 * JSON:  {"time":"2026-11-27T10:00:00Z","level":"info","msg":"job queued",
 *         "project":"shop","tag":"v1.0.0"}
 * One write(2) per line, so lines from several threads never interleave.
 */
#include "slog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

/* Written by main (start-up, SIGHUP), read by every thread. */
static atomic_int log_format = TS_LOG_TEXT;
static atomic_int log_min = TE_LOG_INFO;

static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	time_t second;
	unsigned int count;
	unsigned long dropped;
} limits[TS_LOG_KEYS];

bool ts_log_allow(unsigned int key, unsigned long *suppressed)
{
	time_t now = time(NULL);
	bool ok;

	*suppressed = 0;
	if (key >= TS_LOG_KEYS)
		return true;
	pthread_mutex_lock(&limit_lock);
	if (limits[key].second != now) {
		limits[key].second = now;
		limits[key].count = 0;
	}
	ok = limits[key].count < TS_LOG_BURST;
	if (ok) {
		limits[key].count++;
		*suppressed = limits[key].dropped;
		limits[key].dropped = 0;
	} else {
		limits[key].dropped++;
	}
	pthread_mutex_unlock(&limit_lock);
	return ok;
}

void ts_log_set_format(ts_log_format format)
{
	atomic_store(&log_format, (int)format);
}

void ts_log_set_level(te_log_level min)
{
	atomic_store(&log_min, (int)min);
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
	bool json = atomic_load(&log_format) == TS_LOG_JSON;

	if ((int)level < atomic_load(&log_min))
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
