/*
 * test_slog.c - tagexport-server's log lines (slog.h): hostile values
 * (newlines, quotes, terminal escapes) are escaped in text and JSON, so
 * they can neither forge a line nor a key; levels below the minimum are
 * dropped; the rate limit for lines an attacker can trigger counts what it
 * drops.
 *
 * stderr is pointed at a pipe for each test; its read end is non-blocking,
 * so "nothing written yet" is a read that finds the pipe empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "slog.h"

struct capture {
	int rd;        /* the pipe's read end */
	int saved_err; /* stderr before the test */
	char text[256 * 1024];
	size_t len;
};

static int setup(void **state)
{
	struct capture *c = calloc(1, sizeof(*c));
	int fds[2];

	assert_non_null(c);
	assert_int_equal(pipe(fds), 0);
	/* Room for every test's output without blocking the writer. */
	fcntl(fds[1], F_SETPIPE_SZ, 1024 * 1024);
	assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	c->saved_err = dup(STDERR_FILENO);
	assert_true(c->saved_err >= 0);
	assert_int_equal(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
	close(fds[1]);
	c->rd = fds[0];
	ts_log_set_format(TS_LOG_TEXT);
	ts_log_set_level(TE_LOG_INFO);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct capture *c = *state;

	dup2(c->saved_err, STDERR_FILENO);
	close(c->saved_err);
	close(c->rd);
	free(c);
	return 0;
}

/* Append what the pipe holds now to c->text; returns the bytes read. */
static size_t drain(struct capture *c)
{
	size_t got = 0;
	ssize_t n;

	for (;;) {
		n = read(c->rd, c->text + c->len, sizeof(c->text) - 1 - c->len);
		if (n <= 0)
			break;
		c->len += (size_t)n;
		got += (size_t)n;
	}
	assert_true(n == 0 || errno == EAGAIN);
	c->text[c->len] = '\0';
	return got;
}

static void test_line_text_escapes_hostile_values(void **state)
{
	struct capture *c = *state;

	ts_logkv(TE_LOG_WARN, "delivery refused", "tag",
	         "v1\n2026 forged=\"x\"", "esc", "\x1b[31mred", NULL);
	assert_true(drain(c) > 0);
	/* One line: the newline in the value did not make a second one. */
	assert_non_null(strstr(c->text, " warn delivery refused "));
	assert_non_null(
	    strstr(c->text, "tag=\"v1\\x0a2026 forged=\\\"x\\\"\""));
	assert_non_null(strstr(c->text, "esc=\"\\x1b[31mred\""));
	assert_ptr_equal(strchr(c->text, '\n'), c->text + c->len - 1);
}

static void test_line_json_is_one_object(void **state)
{
	struct capture *c = *state;

	ts_log_set_format(TS_LOG_JSON);
	ts_logkv(TE_LOG_INFO, "job queued", "tag", "a\"b\\c\x01", NULL);
	drain(c);
	assert_true(c->len > 2);
	assert_int_equal(c->text[0], '{');
	assert_memory_equal(c->text + c->len - 2, "}\n", 2);
	assert_non_null(strstr(c->text, "\"level\":\"info\""));
	assert_non_null(strstr(c->text, "\"tag\":\"a\\\"b\\\\c\\\\x01\""));
}

static void test_below_level_is_dropped(void **state)
{
	struct capture *c = *state;

	ts_logkv(TE_LOG_DEBUG, "delivery ignored", NULL);
	assert_int_equal(drain(c), 0);
	ts_log_set_level(TE_LOG_DEBUG);
	ts_logkv(TE_LOG_DEBUG, "delivery ignored", NULL);
	assert_true(drain(c) > 0);
}

/* Wait for the start of a second, so a burst fits in one. */
static time_t next_second(void)
{
	time_t t = time(NULL);

	while (time(NULL) == t)
		usleep(1000);
	return time(NULL);
}

static void test_rate_limit_counts_what_it_drops(void **state)
{
	unsigned long suppressed = 99;
	time_t start;
	int i, allowed = 0;

	(void)state;
	start = next_second();
	for (i = 0; i < TS_LOG_BURST + 5; i++)
		allowed += ts_log_allow(TS_LOG_KEY_MALFORMED, &suppressed);
	assert_int_equal(time(NULL), start); /* one second's burst */
	assert_int_equal(allowed, TS_LOG_BURST);
	/* Another key has its own budget. */
	assert_true(ts_log_allow(TS_LOG_KEY_FOREIGN, &suppressed));
	assert_int_equal(suppressed, 0);
	/* The next second's first line reports the five dropped. */
	next_second();
	assert_true(ts_log_allow(TS_LOG_KEY_MALFORMED, &suppressed));
	assert_int_equal(suppressed, 5);
	assert_true(ts_log_allow(TS_LOG_KEY_MALFORMED, &suppressed));
	assert_int_equal(suppressed, 0);
	/* Keys outside the table are never limited. */
	assert_true(ts_log_allow(TS_LOG_KEYS, &suppressed));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_line_text_escapes_hostile_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_line_json_is_one_object, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_below_level_is_dropped, setup,
	                                    teardown),
	    cmocka_unit_test(test_rate_limit_counts_what_it_drops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
