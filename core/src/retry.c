/*
 * retry.c - the retry policy shared by every HTTP client (see retry.h).
 * Pure: the clock and the random bits come from the caller.
 */
#include "tagexport/retry.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant,
 * http://howardhinnant.github.io/date_algorithms.html). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

/* IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" -> epoch seconds. */
static bool parse_http_date(const char *s, long long *out)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4];
	int d, y, hh, mm, ss, used = 0;
	const char *m;

	s = strchr(s, ',');
	if (!s)
		return false;
	if (sscanf(s + 1, " %2d %3s %4d %2d:%2d:%2d GMT%n", &d, mon, &y, &hh,
	           &mm, &ss, &used) != 6 ||
	    used == 0)
		return false;
	m = strstr(months, mon);
	if (!m || strlen(mon) != 3 || (m - months) % 3 != 0 || d < 1 ||
	    d > 31 || y < 1970 || hh > 23 || mm > 59 || ss > 60 || hh < 0 ||
	    mm < 0 || ss < 0)
		return false;
	*out =
	    days_from_civil(y, (unsigned)((m - months) / 3 + 1), (unsigned)d) *
	        86400LL +
	    hh * 3600LL + mm * 60LL + ss;
	return true;
}

long te_retry_after_ms(const char *value, time_t now)
{
	long long secs = 0, at;
	const char *p = value;

	if (!p)
		return -1;
	while (*p == ' ')
		p++;
	if (*p >= '0' && *p <= '9') {
		for (; *p >= '0' && *p <= '9'; p++) {
			secs = secs * 10 + (*p - '0');
			if (secs > 86400LL * 365)
				return -1;
		}
		while (*p == ' ')
			p++;
		return *p ? -1 : (long)(secs * 1000);
	}
	if (!parse_http_date(p, &at))
		return -1;
	if (at <= (long long)now)
		return 0;
	if (at - (long long)now > 86400LL * 365)
		return -1;
	return (long)((at - (long long)now) * 1000);
}

te_retry_net te_retry_curl_net(int curl_code)
{
	switch (curl_code) {
	case CURLE_OK:
		return TE_RETRY_NET_OK;
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return TE_RETRY_NET_TRANSIENT;
	default:
		return TE_RETRY_NET_FATAL;
	}
}

bool te_retry_status_transient(long s)
{
	return s == 408 || s == 429 ||
	       (s >= 500 && s <= 599 && s != 501 && s != 505);
}

static bool worth_another(const te_retry_policy *p, const te_retry_try *t)
{
	if (t->net != TE_RETRY_NET_OK)
		return t->net == TE_RETRY_NET_TRANSIENT;
	if (te_retry_status_transient(t->status) || t->transient)
		return true;
	return p->retry_403_with_retry_after && t->status == 403 &&
	       t->retry_after_ms >= 0;
}

/* base * 2^(attempt-1), capped, spread by +-jitter_pct so that parallel
 * clients do not retry in lockstep. */
static long backoff(const te_retry_policy *p, const te_retry_try *t)
{
	long delay = p->base_ms;
	long long pct = p->jitter_pct;
	int i;

	for (i = 1; i < t->attempt && delay < p->max_delay_ms; i++)
		delay *= 2;
	if (delay > p->max_delay_ms)
		delay = p->max_delay_ms;
	if (pct <= 0)
		return delay;
	return (long)((long long)delay * (100 - pct) / 100 +
	              (long long)delay * 2 * pct / 100 * (t->jitter % 1001) /
	                  1000);
}

long te_retry_decide(const te_retry_policy *p, const te_retry_try *t)
{
	long delay;

	if (!worth_another(p, t) || t->attempt >= p->attempts)
		return -1;
	delay = backoff(p, t);
	if (t->net == TE_RETRY_NET_OK && t->retry_after_ms >= 0)
		delay = t->retry_after_ms > p->retry_after_cap_ms
		            ? p->retry_after_cap_ms
		            : t->retry_after_ms;
	if (p->total_ms > 0 && t->elapsed_ms + delay > p->total_ms)
		return -1;
	return delay;
}
