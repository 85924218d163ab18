/*
 * queue.c - submits/s of ts_queue_submit, single-threaded and with many
 * threads, into a queue directory on the real disk (every accepted job is
 * durable).  Built and run by bench/queue.sh; not part of the build.
 *
 * usage: queue-bench <dir> <threads> <submits per thread>
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "queue/journal_queue.h"
#include "queue/queue.h"

struct worker {
	ts_queue *q;
	int index;
	int count;
	int failures;
};

static void *run(void *arg)
{
	struct worker *w = arg;
	int i;

	for (i = 0; i < w->count; i++) {
		char tag[48], delivery[48];
		ts_job_request req = {
		    "bench", tag, "0123456789abcdef0123456789abcdef01234567",
		    delivery, "api"};
		te_error err = TE_ERROR_INIT;
		char id[TS_JOB_ID_MAX];
		ts_submit_outcome existed = TS_SUBMIT_NEW;

		snprintf(tag, sizeof(tag), "v%d.%d.0", w->index, i);
		snprintf(delivery, sizeof(delivery), "d-%d-%d", w->index, i);
		if (ts_queue_submit(id, &existed, w->q, &req, 1700000000,
		                    &err) < 0 ||
		    existed)
			w->failures++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	te_error err = TE_ERROR_INIT;
	struct worker *w = NULL;
	pthread_t *th = NULL;
	struct timespec t0, t1;
	ts_queue *q = NULL;
	int threads, per, t, failures = 0, rc = 1;
	double secs;

	if (argc != 4) {
		fprintf(stderr, "usage: %s DIR THREADS PER_THREAD\n", argv[0]);
		return 2;
	}
	threads = atoi(argv[2]);
	per = atoi(argv[3]);
	if (threads < 1 || per < 1)
		return 2;
	if (ts_queue_open_journal(&q, argv[1], &err) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		return 1;
	}
	w = calloc((size_t)threads, sizeof(*w));
	th = calloc((size_t)threads, sizeof(*th));
	if (!w || !th)
		goto done;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (t = 0; t < threads; t++) {
		w[t].q = q;
		w[t].index = t;
		w[t].count = per;
		if (pthread_create(&th[t], NULL, run, &w[t]) != 0)
			goto done;
	}
	for (t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		failures += w[t].failures;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("threads=%-3d submits=%-6d failures=%d %.0f submits/s "
	       "syncs=%zu\n",
	       threads, threads * per, failures, threads * per / secs,
	       ts_queue__sync_count(q));
	rc = failures ? 1 : 0;
done:
	ts_queue_free(q);
	free(w);
	free(th);
	return rc;
}
