/*
 * metrics.c - in-memory counters for /metrics (metrics.h).  One mutex:
 * an increment is a few nanoseconds next to an HMAC.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES 512
#define LABEL_MAX 72

static const double buckets[] = {1, 5, 10, 30, 60, 120, 300, 600, 1800};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct series {
	char project[LABEL_MAX];
	char forge[16];
	char result[24];
	uint64_t count;
};

struct ts_metrics {
	pthread_mutex_t lock;
	struct series req[MAX_SERIES];
	size_t nreq;
	uint64_t dropped;
	uint64_t hist[NBUCKETS + 1];
	double hist_sum;
	uint64_t hist_count;
	uint64_t bytes;
	uint64_t ok, failed;
};

int ts_metrics_new(struct ts_metrics **out, te_error *err)
{
	struct ts_metrics *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return 0;
}

void ts_metrics_free(struct ts_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static void copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void ts_metrics_request(struct ts_metrics *m, const char *project,
                        const char *forge, const char *result)
{
	size_t i;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->nreq; i++) {
		struct series *s = &m->req[i];
		if (!strcmp(s->result, result) && !strcmp(s->forge, forge) &&
		    !strncmp(s->project, project, LABEL_MAX - 1)) {
			s->count++;
			goto done;
		}
	}
	if (m->nreq == MAX_SERIES) {
		m->dropped++;
		goto done;
	}
	copy(m->req[m->nreq].project, LABEL_MAX, project);
	copy(m->req[m->nreq].forge, sizeof(m->req[0].forge), forge);
	copy(m->req[m->nreq].result, sizeof(m->req[0].result), result);
	m->req[m->nreq].count = 1;
	m->nreq++;
done:
	pthread_mutex_unlock(&m->lock);
}

void ts_metrics_export(struct ts_metrics *m, double seconds, uint64_t bytes,
                       bool success)
{
	size_t i;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < NBUCKETS && seconds > buckets[i]; i++)
		;
	m->hist[i]++;
	m->hist_sum += seconds;
	m->hist_count++;
	m->bytes += bytes;
	if (success)
		m->ok++;
	else
		m->failed++;
	pthread_mutex_unlock(&m->lock);
}

int ts_metrics_render(te_buf *out, struct ts_metrics *m, te_queue *q,
                      te_error *err)
{
	size_t counts[4] = {0, 0, 0, 0}, i;
	uint64_t cum = 0;
	int rc = 0;

	if (q)
		te_queue_counts(counts, q);
	pthread_mutex_lock(&m->lock);
	rc = te_buf_puts(out,
	                 "# HELP tagexport_webhook_requests_total Webhook "
	                 "deliveries by project, forge and result.\n"
	                 "# TYPE tagexport_webhook_requests_total counter\n",
	                 err);
	for (i = 0; rc == 0 && i < m->nreq; i++)
		rc = te_buf_printf(
		    out, err,
		    "tagexport_webhook_requests_total{project=\"%s\","
		    "forge=\"%s\",result=\"%s\"} %llu\n",
		    m->req[i].project, m->req[i].forge, m->req[i].result,
		    (unsigned long long)m->req[i].count);
	if (rc == 0)
		rc = te_buf_printf(
		    out, err,
		    "# HELP tagexport_jobs Jobs in the queue by state.\n"
		    "# TYPE tagexport_jobs gauge\n"
		    "tagexport_jobs{state=\"queued\"} %zu\n"
		    "tagexport_jobs{state=\"running\"} %zu\n"
		    "tagexport_jobs{state=\"succeeded\"} %zu\n"
		    "tagexport_jobs{state=\"failed\"} %zu\n"
		    "# HELP tagexport_exports_total Finished export runs.\n"
		    "# TYPE tagexport_exports_total counter\n"
		    "tagexport_exports_total{result=\"success\"} %llu\n"
		    "tagexport_exports_total{result=\"failure\"} %llu\n"
		    "# HELP tagexport_export_bytes_copied_total Blob bytes "
		    "copied by exports.\n"
		    "# TYPE tagexport_export_bytes_copied_total counter\n"
		    "tagexport_export_bytes_copied_total %llu\n"
		    "# HELP tagexport_export_duration_seconds Duration of "
		    "export runs.\n"
		    "# TYPE tagexport_export_duration_seconds histogram\n",
		    counts[TE_JOB_QUEUED], counts[TE_JOB_RUNNING],
		    counts[TE_JOB_SUCCEEDED], counts[TE_JOB_FAILED],
		    (unsigned long long)m->ok, (unsigned long long)m->failed,
		    (unsigned long long)m->bytes);
	for (i = 0; rc == 0 && i < NBUCKETS; i++) {
		cum += m->hist[i];
		rc = te_buf_printf(
		    out, err,
		    "tagexport_export_duration_seconds_bucket{le=\""
		    "%g\"} %llu\n",
		    buckets[i], (unsigned long long)cum);
	}
	if (rc == 0)
		rc = te_buf_printf(
		    out, err,
		    "tagexport_export_duration_seconds_bucket{le=\"+Inf\"} "
		    "%llu\n"
		    "tagexport_export_duration_seconds_sum %.3f\n"
		    "tagexport_export_duration_seconds_count %llu\n",
		    (unsigned long long)m->hist_count, m->hist_sum,
		    (unsigned long long)m->hist_count);
	pthread_mutex_unlock(&m->lock);
	return rc;
}
