/*
 * metrics.h - counters behind GET /metrics (Prometheus text format 0.0.4).
 *
 *   tagexport_webhook_requests_total{project,forge,result}
 *   tagexport_jobs{state}                    (gauge, from the queue)
 *   tagexport_export_duration_seconds        (histogram, per finished run)
 *   tagexport_webhook_accept_seconds         (histogram, per accepted push:
 *                                             body received -> job durable)
 *   tagexport_export_bytes_copied_total
 *   tagexport_exports_total{result}
 * Label values come from the configuration or fixed strings, never from a
 * request (an unknown project counts as "_unknown").
 */
#ifndef TS_METRICS_H
#define TS_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"
#include "queue/queue.h"

struct ts_metrics;

int ts_metrics_new(struct ts_metrics **out, te_error *err);
void ts_metrics_free(struct ts_metrics *m);

/* result: "accepted", "duplicate", "ignored", "unauthorized", ... */
void ts_metrics_request(struct ts_metrics *m, const char *project,
                        const char *forge, const char *result);
void ts_metrics_export(struct ts_metrics *m, double seconds, uint64_t bytes,
                       bool success);
void ts_metrics_accept(struct ts_metrics *m, double seconds);

int ts_metrics_render(te_buf *out, struct ts_metrics *m, ts_queue *q,
                      te_error *err);

#endif
