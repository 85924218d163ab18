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

#define MAX_BUCKETS 12

static const double export_buckets[] = {1, 5, 10, 30, 60, 120, 300, 600, 1800};
static const double accept_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,  0.1,    0.25,  1};

struct histogram {
	const double *bounds;
	size_t nbounds;
	uint64_t counts[MAX_BUCKETS + 1]; /* the last one: above all */
	double sum;
	uint64_t count;
};

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
	struct histogram export, accept;
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
	m->export.bounds = export_buckets;
	m->export.nbounds = sizeof(export_buckets) / sizeof(export_buckets[0]);
	m->accept.bounds = accept_buckets;
	m->accept.nbounds = sizeof(accept_buckets) / sizeof(accept_buckets[0]);
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

/* With the lock held. */
static void observe(struct histogram *h, double v)
{
	size_t i;

	for (i = 0; i < h->nbounds && v > h->bounds[i]; i++)
		;
	h->counts[i]++;
	h->sum += v;
	h->count++;
}

static int render_histogram(te_buf *out, const char *name, const char *help,
                            const struct histogram *h, te_error *err)
{
	uint64_t cum = 0;
	size_t i;
	int rc;

	rc = te_buf_printf(out, err, "# HELP %s %s\n# TYPE %s histogram\n",
	                   name, help, name);
	for (i = 0; rc == 0 && i < h->nbounds; i++) {
		cum += h->counts[i];
		rc = te_buf_printf(out, err, "%s_bucket{le=\"%g\"} %llu\n",
		                   name, h->bounds[i], (unsigned long long)cum);
	}
	if (rc == 0)
		rc = te_buf_printf(out, err,
		                   "%s_bucket{le=\"+Inf\"} %llu\n"
		                   "%s_sum %.6f\n%s_count %llu\n",
		                   name, (unsigned long long)h->count, name,
		                   h->sum, name, (unsigned long long)h->count);
	return rc;
}

void ts_metrics_accept(struct ts_metrics *m, double seconds)
{
	pthread_mutex_lock(&m->lock);
	observe(&m->accept, seconds);
	pthread_mutex_unlock(&m->lock);
}

void ts_metrics_export(struct ts_metrics *m, double seconds, uint64_t bytes,
                       bool success)
{
	pthread_mutex_lock(&m->lock);
	observe(&m->export, seconds);
	m->bytes += bytes;
	if (success)
		m->ok++;
	else
		m->failed++;
	pthread_mutex_unlock(&m->lock);
}

int ts_metrics_render(te_buf *out, struct ts_metrics *m, ts_queue *q,
                      te_error *err)
{
	size_t counts[4] = {0, 0, 0, 0}, i;
	int rc = 0;

	if (q)
		ts_queue_counts(counts, q);
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
		    "tagexport_export_bytes_copied_total %llu\n",
		    counts[TS_JOB_QUEUED], counts[TS_JOB_RUNNING],
		    counts[TS_JOB_SUCCEEDED], counts[TS_JOB_FAILED],
		    (unsigned long long)m->ok, (unsigned long long)m->failed,
		    (unsigned long long)m->bytes);
	if (rc == 0)
		rc = render_histogram(out, "tagexport_export_duration_seconds",
		                      "Duration of export runs.", &m->export,
		                      err);
	if (rc == 0)
		rc =
		    render_histogram(out, "tagexport_webhook_accept_seconds",
		                     "Time from a tag push's last body byte to "
		                     "its job being on disk (its 202).",
		                     &m->accept, err);
	pthread_mutex_unlock(&m->lock);
	return rc;
}
