/*
 * retry.h - the one retry policy of every HTTP client in tagexport (the
 * registry client, the forge commit-status sender).
 *
 * A caller describes one failed try (a te_retry_try) and its policy (a
 * te_retry_policy); te_retry_decide answers with the delay before the
 * next try or -1 to stop.  Everything here is pure: no clock, no random
 * source, no I/O; the caller passes the wall clock and the random bits,
 * so the unit tests pin every branch.  Nothing is allocated, so nothing
 * is freed.
 *
 * What is worth another try:
 *  1. A transfer that failed at the connection level (te_retry_curl_net):
 *     refused or reset connections, timeouts, truncated answers.  Name
 *     resolution and certificate trust are not: a retry cannot fix them.
 *  2. An answer of 408, 429 or 5xx but 501 and 505 (RFC 9110 sections
 *     15.5.9, 15.6; RFC 6585 section 4): the others are about the
 *     request, which a retry repeats unchanged.
 *  3. An answer the caller's protocol marks transient (te_retry_try.
 *     transient: e.g. the OCI distribution spec's TOOMANYREQUESTS).
 *  4. With retry_403_with_retry_after, a 403 that carries Retry-After:
 *     GitHub's secondary rate limit
 *     (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
 */
#ifndef TAGEXPORT_RETRY_H
#define TAGEXPORT_RETRY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* How a transfer ended below HTTP. */
typedef enum te_retry_net {
	TE_RETRY_NET_OK = 0,    /* an answer arrived: judge its status */
	TE_RETRY_NET_TRANSIENT, /* connection-level failure: try again */
	TE_RETRY_NET_FATAL      /* anything else (DNS, TLS trust, local) */
} te_retry_net;

/* Bounds of one kind of request; plain values, no ownership. */
typedef struct te_retry_policy {
	int attempts;            /* tries in total, >= 1 */
	long base_ms;            /* delay after the first try */
	long max_delay_ms;       /* cap on the doubling back-off */
	long total_ms;           /* no retry ends after this; <= 0: none */
	long retry_after_cap_ms; /* cap on a server's Retry-After */
	int jitter_pct;          /* back-off +- this percent (0..100) */
	bool retry_403_with_retry_after; /* rule 4 above */
} te_retry_policy;

/* One failed try. */
typedef struct te_retry_try {
	int attempt;         /* 1 = the first try just failed */
	te_retry_net net;    /* TE_RETRY_NET_OK when an answer arrived */
	long status;         /* its HTTP status (ignored unless net is OK) */
	bool transient;      /* the protocol layer calls the answer transient */
	long retry_after_ms; /* the answer's Retry-After, -1: none */
	long elapsed_ms;     /* since the operation's first try began */
	uint32_t jitter;     /* random bits (used when jitter_pct > 0) */
} te_retry_try;

/* Classify a libcurl CURLcode (an int here: libcurl types stay out of
 * public headers).  0 (CURLE_OK) gives TE_RETRY_NET_OK. */
te_retry_net te_retry_curl_net(int curl_code);

/* Rule 2: whether an HTTP status alone is worth another try. */
bool te_retry_status_transient(long status);

/*
 * A Retry-After value (RFC 9110 section 10.2.3): delta-seconds ("120") or
 * an IMF-fixdate relative to now, in ms; a date in the past gives 0.
 * -1 for NULL, junk, obsolete date formats or more than a year away.
 */
long te_retry_after_ms(const char *value, time_t now);

/*
 * Whether and when to try again after t: the delay in ms (>= 0), or -1
 * to stop.  The delay is base_ms * 2^(attempt-1) capped at max_delay_ms,
 * then spread by +-jitter_pct; a Retry-After (only on an answer) replaces
 * it, capped at retry_after_cap_ms.  Stops when the try is not worth
 * repeating, after p->attempts tries, or when the delay would end past
 * total_ms.
 */
long te_retry_decide(const te_retry_policy *p, const te_retry_try *t);

#endif
