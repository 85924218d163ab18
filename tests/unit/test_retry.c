/*
 * test_retry.c - the shared retry policy: curl-code and status classes,
 * Retry-After parsing (delta-seconds and IMF-fixdate), the doubling
 * back-off with its cap and jitter, Retry-After caps, the attempt and
 * time budgets, and the opt-in 403-with-Retry-After rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <curl/curl.h>

#include "tagexport/retry.h"

/* A policy without jitter or time budget (the forge status sender's
 * shape): every delay is exact. */
static const te_retry_policy plain = {
    .attempts = 5,
    .base_ms = 4000,
    .max_delay_ms = 32000,
    .total_ms = 0,
    .retry_after_cap_ms = 60000,
    .jitter_pct = 0,
    .retry_403_with_retry_after = true,
};

static te_retry_try answer(int attempt, long status, long retry_after_ms)
{
	te_retry_try t;

	memset(&t, 0, sizeof(t));
	t.attempt = attempt;
	t.net = TE_RETRY_NET_OK;
	t.status = status;
	t.retry_after_ms = retry_after_ms;
	return t;
}

static long decide(const te_retry_policy *p, te_retry_try t)
{
	return te_retry_decide(p, &t);
}

static void curl_classes(void **state)
{
	(void)state;
	assert_int_equal(te_retry_curl_net(CURLE_OK), TE_RETRY_NET_OK);
	assert_int_equal(te_retry_curl_net(CURLE_COULDNT_CONNECT),
	                 TE_RETRY_NET_TRANSIENT);
	assert_int_equal(te_retry_curl_net(CURLE_OPERATION_TIMEDOUT),
	                 TE_RETRY_NET_TRANSIENT);
	assert_int_equal(te_retry_curl_net(CURLE_GOT_NOTHING),
	                 TE_RETRY_NET_TRANSIENT);
	assert_int_equal(te_retry_curl_net(CURLE_SSL_CONNECT_ERROR),
	                 TE_RETRY_NET_TRANSIENT);
	assert_int_equal(te_retry_curl_net(CURLE_COULDNT_RESOLVE_HOST),
	                 TE_RETRY_NET_FATAL);
	assert_int_equal(te_retry_curl_net(CURLE_PEER_FAILED_VERIFICATION),
	                 TE_RETRY_NET_FATAL);
	assert_int_equal(te_retry_curl_net(CURLE_URL_MALFORMAT),
	                 TE_RETRY_NET_FATAL);
	assert_int_equal(te_retry_curl_net(-7), TE_RETRY_NET_FATAL);
}

static void status_classes(void **state)
{
	(void)state;
	assert_true(te_retry_status_transient(408));
	assert_true(te_retry_status_transient(429));
	assert_true(te_retry_status_transient(500));
	assert_true(te_retry_status_transient(503));
	assert_true(te_retry_status_transient(599));
	assert_false(te_retry_status_transient(501));
	assert_false(te_retry_status_transient(505));
	assert_false(te_retry_status_transient(600));
	assert_false(te_retry_status_transient(404));
	assert_false(te_retry_status_transient(403));
	assert_false(te_retry_status_transient(200));
	assert_false(te_retry_status_transient(0));
}

static void retry_after_parse(void **state)
{
	time_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */

	(void)state;
	assert_int_equal(te_retry_after_ms("120", now), 120000);
	assert_int_equal(te_retry_after_ms(" 7 ", now), 7000);
	assert_int_equal(te_retry_after_ms("0", now), 0);
	assert_int_equal(
	    te_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now), 0);
	assert_int_equal(
	    te_retry_after_ms("Sun, 06 Nov 1994 08:50:37 GMT", now), 60000);
	assert_int_equal(
	    te_retry_after_ms("Mon, 07 Nov 1994 08:49:37 GMT", now), 86400000);
	assert_int_equal(
	    te_retry_after_ms("Sat, 05 Nov 1994 08:49:37 GMT", now), 0);
	assert_int_equal(
	    te_retry_after_ms("Thu, 01 Mar 2024 00:00:00 GMT", 1709251200 - 5),
	    5000);
	assert_int_equal(te_retry_after_ms(NULL, now), -1);
	assert_int_equal(te_retry_after_ms("", now), -1);
	assert_int_equal(te_retry_after_ms("-1", now), -1);
	assert_int_equal(te_retry_after_ms("12abc", now), -1);
	assert_int_equal(
	    te_retry_after_ms("Sun, 06 Foo 1994 08:49:37 GMT", now), -1);
	assert_int_equal(te_retry_after_ms("99999999999999", now), -1);
}

static void backoff_doubles_to_cap(void **state)
{
	(void)state;
	assert_int_equal(decide(&plain, answer(1, 503, -1)), 4000);
	assert_int_equal(decide(&plain, answer(2, 503, -1)), 8000);
	assert_int_equal(decide(&plain, answer(3, 500, -1)), 16000);
	assert_int_equal(decide(&plain, answer(4, 429, -1)), 32000);
	/* attempts bound the tries */
	assert_int_equal(decide(&plain, answer(5, 503, -1)), -1);
	/* a cap below the doubling holds */
	{
		te_retry_policy p = plain;

		p.attempts = 20;
		p.max_delay_ms = 10000;
		assert_int_equal(decide(&p, answer(3, 503, -1)), 10000);
		assert_int_equal(decide(&p, answer(19, 503, -1)), 10000);
	}
}

static void jitter_spreads(void **state)
{
	te_retry_policy p = plain;

	(void)state;
	p.jitter_pct = 25;
	/* jitter % 1001 spans [-25%, +25%] of 4000 */
	assert_int_equal(decide(&p, (te_retry_try){1, TE_RETRY_NET_OK, 503,
	                                           false, -1, 0, 0}),
	                 3000);
	assert_int_equal(decide(&p, (te_retry_try){1, TE_RETRY_NET_OK, 503,
	                                           false, -1, 0, 500}),
	                 4000);
	assert_int_equal(decide(&p, (te_retry_try){1, TE_RETRY_NET_OK, 503,
	                                           false, -1, 0, 1000}),
	                 5000);
	assert_int_equal(decide(&p, (te_retry_try){1, TE_RETRY_NET_OK, 503,
	                                           false, -1, 0, 1001}),
	                 3000);
}

static void network_failures(void **state)
{
	te_retry_try t = answer(1, 0, -1);

	(void)state;
	t.net = TE_RETRY_NET_TRANSIENT;
	assert_int_equal(decide(&plain, t), 4000);
	/* a Retry-After without an answer is ignored */
	t.retry_after_ms = 1000;
	assert_int_equal(decide(&plain, t), 4000);
	t.net = TE_RETRY_NET_FATAL;
	assert_int_equal(decide(&plain, t), -1);
	/* the status of a failed transfer does not matter */
	t.status = 503;
	assert_int_equal(decide(&plain, t), -1);
}

static void retry_after_rules(void **state)
{
	te_retry_policy p = plain;
	te_retry_try t;

	(void)state;
	/* Retry-After replaces the back-off, capped */
	assert_int_equal(decide(&plain, answer(1, 503, 1000)), 1000);
	assert_int_equal(decide(&plain, answer(4, 503, 0)), 0);
	assert_int_equal(decide(&plain, answer(1, 429, 3600000)), 60000);
	/* 403: only with Retry-After, and only when the policy says so */
	assert_int_equal(decide(&plain, answer(1, 403, 5000)), 5000);
	assert_int_equal(decide(&plain, answer(1, 403, -1)), -1);
	p.retry_403_with_retry_after = false;
	assert_int_equal(decide(&p, answer(1, 403, 5000)), -1);
	/* a transient answer by the caller's protocol */
	t = answer(1, 403, -1);
	t.transient = true;
	assert_int_equal(decide(&p, t), 4000);
	/* requests the retry cannot fix */
	assert_int_equal(decide(&plain, answer(1, 400, -1)), -1);
	assert_int_equal(decide(&plain, answer(1, 401, 5000)), -1);
	assert_int_equal(decide(&plain, answer(1, 404, -1)), -1);
	assert_int_equal(decide(&plain, answer(1, 422, -1)), -1);
	assert_int_equal(decide(&plain, answer(1, 501, -1)), -1);
}

static void time_budget(void **state)
{
	te_retry_policy p = plain;
	te_retry_try t = answer(2, 503, -1);

	(void)state;
	/* total_ms 0: no budget */
	t.elapsed_ms = 86400000;
	assert_int_equal(decide(&plain, t), 8000);
	p.total_ms = 100000;
	t.elapsed_ms = 92000;
	assert_int_equal(decide(&p, t), 8000);
	t.elapsed_ms = 92001;
	assert_int_equal(decide(&p, t), -1);
	/* a Retry-After that ends past the budget stops too */
	t = answer(1, 429, 50000);
	t.elapsed_ms = 60000;
	assert_int_equal(decide(&p, t), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(curl_classes),
	    cmocka_unit_test(status_classes),
	    cmocka_unit_test(retry_after_parse),
	    cmocka_unit_test(backoff_doubles_to_cap),
	    cmocka_unit_test(jitter_spreads),
	    cmocka_unit_test(network_failures),
	    cmocka_unit_test(retry_after_rules),
	    cmocka_unit_test(time_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
