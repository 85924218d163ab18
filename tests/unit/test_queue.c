#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "queue/journal_queue.h"
#include "queue/map.h"
#include "queue/queue.h"

/*
 * The tests of the queue's interface run against both drivers: the
 * journal always, postgres when TE_TEST_PG_DSN names a database (ctest's
 * unit.test_queue_postgres starts one: tests/integration/pg_lib.sh run).
 * The journal's own behaviour (files, segments, syncs, crash recovery at
 * open) and the postgres driver's (leases, replicas) have their own tests.
 */
static const char *pg_dsn; /* NULL: the journal run */

static bool journal(void)
{
	return pg_dsn == NULL;
}

/* Each postgres test starts from an empty database. */
static void pg_reset(void)
{
	PGconn *c = PQconnectdb(pg_dsn);
	PGresult *r;

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("postgres: %s", PQerrorMessage(c));
	r = PQexec(c, "SET client_min_messages = warning;"
	              "DROP TABLE IF EXISTS tagexport_jobs, tagexport_schema");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("postgres: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

#define C1 "1111111111111111111111111111111111111111"
#define C2 "2222222222222222222222222222222222222222"
#define C3 "3333333333333333333333333333333333333333"
#define CA "abcdefabcdefabcdefabcdefabcdefabcdefabcd"
#define CA_UPPER "ABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCD"

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	char tmpl[] = "/tmp/te-queue-XXXXXX";
	char *d = mkdtemp(tmpl);

	if (!d)
		return -1;
	*state = strdup(d);
	if (!journal())
		pg_reset();
	return 0;
}

static int teardown(void **state)
{
	nftw(*state, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(*state);
	return 0;
}

static ts_queue *open_q(const char *dir)
{
	te_error err = TE_ERROR_INIT;
	ts_queue *q = NULL;

	if ((journal() ? ts_queue_open_journal(&q, dir, &err)
	               : ts_queue_open_postgres(&q, pg_dsn, 60, &err)) < 0 ||
	    ts_queue_set_instance(q, "replica-a", &err) < 0)
		fail_msg("open: %s", err.msg);
	return q;
}

static void submit(char id[TS_JOB_ID_MAX], ts_submit_outcome *existed,
                   ts_queue *q, const char *tag, const char *commit,
                   const char *delivery, int64_t now)
{
	ts_job_request req = {"shop", tag, commit, delivery, "github"};
	te_error err = TE_ERROR_INIT;
	ts_submit_outcome e = TS_SUBMIT_NEW;

	if (ts_queue_submit(id, &e, q, &req, now, &err) < 0)
		fail_msg("submit: %s", err.msg);
	if (existed)
		*existed = e;
}

static size_t count_files(const char *dir, const char *sub)
{
	char path[512];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Bytes in all journal segments. */
static off_t journal_bytes(const char *dir)
{
	char path[512];
	struct dirent *de;
	struct stat st;
	off_t n = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "journal", 7) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		n += st.st_size;
	}
	closedir(d);
	return n;
}

/* Journal segment files, and the path of the newest one. */
static size_t journal_files(const char *dir, char newest[512])
{
	struct dirent *de;
	char best[256] = "";
	size_t n = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "journal", 7) != 0)
			continue;
		n++;
		if (strcmp(de->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	closedir(d);
	if (newest)
		snprintf(newest, 512, "%s/%s", dir, best);
	return n;
}

/* Bytes of a segment before its preallocated zeros. */
static size_t data_len(const char *path)
{
	char buf[65536];
	size_t n, total = 0;
	char *z;
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		z = memchr(buf, '\0', n);
		if (z) {
			total += (size_t)(z - buf);
			break;
		}
		total += n;
	}
	fclose(f);
	return total;
}

/* A crash in the middle of the last write: its last n bytes never made
 * it (zeros, as in a preallocated segment). */
static void tear_tail(const char *path, size_t n)
{
	size_t len = data_len(path);
	char zeros[64] = {0};
	FILE *f = fopen(path, "r+b");

	assert_true(n <= sizeof(zeros) && len >= n);
	assert_non_null(f);
	assert_int_equal(fseek(f, (long)(len - n), SEEK_SET), 0);
	assert_int_equal(fwrite(zeros, 1, n, f), n);
	fclose(f);
}

static bool job_file_exists(const char *dir, const char *id)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/jobs/%s.json", dir, id);
	return stat(path, &st) == 0;
}

static void test_submit_persists(void **state)
{
	const char *dir = *state;
	char id[TS_JOB_ID_MAX], path[512];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL;
	ts_submit_outcome existed = TS_SUBMIT_EXISTING;
	struct stat st;

	submit(id, &existed, q, "v1.0.0", C1, "d-1", 1700000000);
	assert_false(existed);
	assert_int_equal(strlen(id), 19);
	assert_memory_equal(id, "1700000000-", 11);
	/* Durable through the journal alone: no job file yet. */
	if (journal())
		assert_false(job_file_exists(dir, id));
	if (journal())
		assert_true(journal_bytes(dir) > 0);
	ts_queue_free(q);

	q = open_q(dir);
	assert_int_equal(ts_queue_get(&job, q, id, &err), 0);
	assert_string_equal(job->id, id);
	assert_string_equal(job->project, "shop");
	assert_string_equal(job->tag, "v1.0.0");
	assert_string_equal(job->commit, C1);
	assert_string_equal(job->delivery_id, "d-1");
	assert_string_equal(job->source, "github");
	assert_int_equal(job->state, TS_JOB_QUEUED);
	assert_int_equal(job->attempts, 0);
	assert_int_equal(job->created_at, 1700000000);
	assert_int_equal(job->started_at, 0);
	assert_null(job->error);
	assert_int_equal(job->results.count, 0);
	ts_job_free(job);
	assert_int_equal(ts_queue_get(&job, q, "1700000000-00000000", &err),
	                 TE_ENOTFOUND);
	assert_null(job);
	te_error_clear(&err);
	assert_int_equal(ts_queue_get(&job, q, "../../etc/passwd", &err),
	                 TE_ENOTFOUND);
	assert_int_equal(ts_queue_corrupt_count(q), 0);
	/* The first update writes the job file. */
	assert_int_equal(ts_queue_claim(&job, q, 1700000001, &err), 0);
	assert_string_equal(job->id, id);
	assert_int_equal(job->started_at, 1700000001);
	ts_job_free(job);
	snprintf(path, sizeof(path), "%s/jobs/%s.json", dir, id);
	if (journal()) {
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	ts_queue_free(q);
	/* When it started is kept in the job file. */
	q = open_q(dir);
	assert_int_equal(ts_queue_get(&job, q, id, &err), 0);
	assert_int_equal(job->started_at, 1700000001);
	ts_job_free(job);
	ts_queue_free(q);
}

static void test_find(void **state)
{
	const char *dir = *state;
	char id[TS_JOB_ID_MAX], found_id[TS_JOB_ID_MAX];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_submit_outcome existed;
	ts_job *job = NULL;
	bool found = true;

	assert_int_equal(
	    ts_queue_find(found_id, &found, q, "shop", "v1", CA, &err), 0);
	assert_false(found);
	submit(id, &existed, q, "v1", CA, NULL, 100);
	/* the commit in either case */
	assert_int_equal(
	    ts_queue_find(found_id, &found, q, "shop", "v1", CA_UPPER, &err),
	    0);
	assert_true(found);
	assert_string_equal(found_id, id);
	/* a failed job is found, and left failed */
	assert_int_equal(ts_queue_claim(&job, q, 101, &err), 0);
	ts_job_free(job);
	assert_int_equal(
	    ts_queue_finish(q, id, false, "boom", NULL, "", 0, 102, &err), 0);
	assert_int_equal(
	    ts_queue_find(found_id, &found, q, "shop", "v1", CA, &err), 0);
	assert_true(found);
	assert_int_equal(ts_queue_get(&job, q, id, &err), 0);
	assert_int_equal(job->state, TS_JOB_FAILED);
	ts_job_free(job);
	/* another tag, project or commit is another job */
	assert_int_equal(
	    ts_queue_find(found_id, &found, q, "shop", "v2", CA, &err), 0);
	assert_false(found);
	assert_int_equal(
	    ts_queue_find(found_id, &found, q, "other", "v1", CA, &err), 0);
	assert_false(found);
	assert_int_equal(
	    ts_queue_find(found_id, &found, q, "shop", "v1", "not-hex", &err),
	    TE_EINVALID);
	ts_queue_free(q);
}

static void test_origin(void **state)
{
	(void)state;
	assert_string_equal(ts_job_origin("github"), "webhook");
	assert_string_equal(ts_job_origin("gitlab"), "webhook");
	assert_string_equal(ts_job_origin("gitea"), "webhook");
	assert_string_equal(ts_job_origin("poll"), "poll");
	assert_string_equal(ts_job_origin("api"), "api");
	assert_string_equal(ts_job_origin("hook"), "hook");
	assert_string_equal(ts_job_origin(NULL), "unknown");
}

static void test_dedupe(void **state)
{
	const char *dir = *state;
	char id1[TS_JOB_ID_MAX], id2[TS_JOB_ID_MAX], id3[TS_JOB_ID_MAX];
	ts_queue *q = open_q(dir);
	ts_submit_outcome existed;
	size_t counts[4];

	submit(id1, &existed, q, "v1.0.0", C1, "d-1", 100);
	assert_false(existed);
	/* Same delivery id: the same job, whatever the body says. */
	submit(id2, &existed, q, "v1.0.0", C1, "d-1", 101);
	assert_true(existed);
	assert_string_equal(id1, id2);
	/* Another delivery of the same project + tag + commit. */
	submit(id2, &existed, q, "v1.0.0", C1, "d-2", 102);
	assert_true(existed);
	assert_string_equal(id1, id2);
	/* No delivery id (API), commit in upper case: still the same. */
	submit(id2, &existed, q, "v1.0.0",
	       "1111111111111111111111111111111111111111", NULL, 103);
	assert_true(existed);
	/* The tag moved: a new job. */
	submit(id3, &existed, q, "v1.0.0", C2, "d-3", 104);
	assert_false(existed);
	assert_string_not_equal(id1, id3);
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_QUEUED], 2);
	ts_queue_free(q);

	/* The indexes are rebuilt on open. */
	q = open_q(dir);
	submit(id2, &existed, q, "v1.0.0", C1, "d-1", 200);
	assert_true(existed);
	assert_string_equal(id1, id2);
	submit(id2, &existed, q, "v1.0.0", C2, "other", 200);
	assert_true(existed);
	assert_string_equal(id3, id2);
	if (journal())
		assert_int_equal(count_files(dir, "jobs"), 0); /* not run yet */
	ts_queue_free(q);
}

static void test_invalid_requests(void **state)
{
	const char *dir = *state;
	ts_queue *q = open_q(dir);
	static const ts_job_request bad[] = {
	    {NULL, "v1", C1, NULL, "api"},
	    {"", "v1", C1, NULL, "api"},
	    {"shop", "", C1, NULL, "api"},
	    {"shop", "v1\n", C1, NULL, "api"},
	    {"shop", "v\xff", C1, NULL, "api"},
	    {"shop", "v1", "123", NULL, "api"},
	    {"shop", "v1", "zz11111111111111111111111111111111111111", NULL,
	     "api"},
	    {"shop", "v1", C1, "a\x01", "api"},
	    {"shop", "v1", C1, NULL, NULL},
	};
	size_t i, counts[4];

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		te_error err = TE_ERROR_INIT;
		char id[TS_JOB_ID_MAX];
		ts_submit_outcome existed;

		assert_int_equal(
		    ts_queue_submit(id, &existed, q, &bad[i], 1, &err),
		    TE_EINVALID);
	}
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_QUEUED], 0);
	if (journal())
		assert_int_equal(count_files(dir, "jobs"), 0);
	ts_queue_free(q);
}

static void test_hostile_tag_is_data(void **state)
{
	const char *dir = *state;
	const char *tag = "../../x\"; rm -rf / #$(id)`\\";
	char id[TS_JOB_ID_MAX];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL;

	submit(id, NULL, q, tag, C1, NULL, 5);
	ts_queue_free(q);
	q = open_q(dir);
	assert_int_equal(ts_queue_get(&job, q, id, &err), 0);
	assert_string_equal(job->tag, tag);
	ts_job_free(job);
	/* jobs/, corrupt/, the segment holding the job and the new one. */
	if (journal())
		assert_int_equal(count_files(dir, ""), 4);
	if (journal())
		assert_int_equal(count_files(dir, "jobs"), 0);
	ts_queue_free(q);
}

static void test_claim_order(void **state)
{
	const char *dir = *state;
	char a[TS_JOB_ID_MAX], b[TS_JOB_ID_MAX], c[TS_JOB_ID_MAX];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL;

	assert_int_equal(ts_queue_claim(&job, q, 1000, &err), 0);
	assert_null(job);
	submit(b, NULL, q, "v2", C2, NULL, 20);
	submit(a, NULL, q, "v1", C1, NULL, 10);
	submit(c, NULL, q, "v3", C3, NULL, 30);

	assert_int_equal(ts_queue_claim(&job, q, 1000, &err), 0);
	assert_non_null(job);
	assert_string_equal(job->id, a);
	assert_int_equal(job->state, TS_JOB_RUNNING);
	assert_int_equal(job->attempts, 1);
	ts_job_free(job);

	/* b fails transiently: back to queued, but not before t=2000. */
	assert_int_equal(ts_queue_claim(&job, q, 1000, &err), 0);
	assert_string_equal(job->id, b);
	ts_job_free(job);
	assert_int_equal(ts_queue_finish(q, b, false, "registry 503", NULL,
	                                 "log", 2000, 1001, &err),
	                 0);
	assert_int_equal(ts_queue_claim(&job, q, 1002, &err), 0);
	assert_string_equal(job->id, c);
	ts_job_free(job);
	assert_int_equal(ts_queue_claim(&job, q, 1999, &err), 0);
	assert_null(job);
	assert_int_equal(ts_queue_claim(&job, q, 2000, &err), 0);
	assert_non_null(job);
	assert_string_equal(job->id, b);
	assert_int_equal(job->attempts, 2);
	assert_string_equal(job->error, "registry 503");
	ts_job_free(job);
	assert_int_equal(ts_queue_claim(&job, q, 5000, &err), 0);
	assert_null(job);
	ts_queue_free(q);
}

static void test_finish(void **state)
{
	const char *dir = *state;
	char a[TS_JOB_ID_MAX], b[TS_JOB_ID_MAX];
	te_error err = TE_ERROR_INIT;
	te_strvec results = TE_STRVEC_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL, **list = NULL;
	size_t counts[4], n;
	ts_job_state st;
	char *big;

	submit(a, NULL, q, "v1", C1, NULL, 10);
	submit(b, NULL, q, "v2", C2, NULL, 20);
	assert_int_equal(ts_queue_state(&st, q, a, &err), 0);
	assert_int_equal(st, TS_JOB_QUEUED);
	assert_int_equal(ts_queue_state(&st, q, "1700000000-deadbeef", &err),
	                 TE_ENOTFOUND);
	te_error_clear(&err);
	/* Not running yet. */
	assert_int_equal(
	    ts_queue_finish(q, a, true, NULL, NULL, NULL, 0, 11, &err),
	    TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(ts_queue_finish(q, "1700000000-deadbeef", true, NULL,
	                                 NULL, NULL, 0, 11, &err),
	                 TE_ENOTFOUND);
	te_error_clear(&err);

	assert_int_equal(ts_queue_claim(&job, q, 100, &err), 0);
	ts_job_free(job);
	assert_int_equal(ts_queue_claim(&job, q, 100, &err), 0);
	ts_job_free(job);
	assert_int_equal(ts_queue_state(&st, q, a, &err), 0);
	assert_int_equal(st, TS_JOB_RUNNING);

	assert_int_equal(te_strvec_push(&results, "reg/app:v1@sha256:aa", &err),
	                 0);
	assert_int_equal(te_strvec_push(&results, "reg/web:v1@sha256:bb", &err),
	                 0);
	assert_int_equal(ts_queue_finish(q, a, true, NULL, &results,
	                                 "built\nexported\n", 0, 101, &err),
	                 0);

	/* Permanent failure with a log far over the bound: tail kept. */
	big = malloc(TS_JOB_LOG_MAX * 2 + 1);
	assert_non_null(big);
	memset(big, 'x', TS_JOB_LOG_MAX * 2);
	memcpy(big + TS_JOB_LOG_MAX * 2 - 4, "END\n", 4);
	big[0] = 'S';
	big[TS_JOB_LOG_MAX * 2] = '\0';
	assert_int_equal(ts_queue_finish(q, b, false, "bad\xffutf8", NULL, big,
	                                 0, 102, &err),
	                 0);
	free(big);
	assert_int_equal(ts_queue_state(&st, q, a, &err), 0);
	assert_int_equal(st, TS_JOB_SUCCEEDED);
	assert_int_equal(ts_queue_state(&st, q, b, &err), 0);
	assert_int_equal(st, TS_JOB_FAILED);
	ts_queue_free(q);

	q = open_q(dir);
	assert_int_equal(ts_queue_get(&job, q, a, &err), 0);
	assert_int_equal(job->state, TS_JOB_SUCCEEDED);
	assert_int_equal(job->results.count, 2);
	assert_string_equal(job->results.items[1], "reg/web:v1@sha256:bb");
	assert_string_equal(job->log, "built\nexported\n");
	assert_int_equal(job->updated_at, 101);
	ts_job_free(job);
	assert_int_equal(ts_queue_get(&job, q, b, &err), 0);
	assert_int_equal(job->state, TS_JOB_FAILED);
	assert_string_equal(job->error, "bad?utf8");
	assert_true(strlen(job->log) <= TS_JOB_LOG_MAX);
	assert_true(strlen(job->log) > TS_JOB_LOG_MAX - 64);
	assert_int_equal(strncmp(job->log, "[log truncated]", 15), 0);
	assert_string_equal(job->log + strlen(job->log) - 4, "END\n");
	assert_null(strchr(job->log, 'S'));
	ts_job_free(job);

	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_SUCCEEDED], 1);
	assert_int_equal(counts[TS_JOB_FAILED], 1);
	assert_int_equal(counts[TS_JOB_QUEUED] + counts[TS_JOB_RUNNING], 0);

	assert_int_equal(ts_queue_list(&list, &n, q, 0, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0]->id, b); /* newest first */
	assert_string_equal(list[1]->id, a);
	ts_queue_list_free(list, n);
	assert_int_equal(ts_queue_list(&list, &n, q, 1, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0]->id, b);
	ts_queue_list_free(list, n);
	te_strvec_dispose(&results);
	ts_queue_free(q);
}

static void test_retry_and_requeue(void **state)
{
	const char *dir = *state;
	char a[TS_JOB_ID_MAX];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL;

	submit(a, NULL, q, "v1", C1, NULL, 10);
	/* Queued jobs cannot be retried; unknown ids are not found. */
	assert_int_equal(ts_queue_retry(q, a, 11, &err), TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(ts_queue_retry(q, "0000000000-00000000", 11, &err),
	                 TE_ENOTFOUND);
	te_error_clear(&err);

	assert_int_equal(ts_queue_claim(&job, q, 20, &err), 0);
	ts_job_free(job);
	/* Shutdown: back to queued, the attempt does not count. */
	assert_int_equal(ts_queue_requeue(q, a, 21, &err), 0);
	assert_int_equal(ts_queue_get(&job, q, a, &err), 0);
	assert_int_equal(job->state, TS_JOB_QUEUED);
	assert_int_equal(job->attempts, 0);
	ts_job_free(job);
	assert_int_equal(ts_queue_requeue(q, a, 21, &err), TE_EINVALID);
	te_error_clear(&err);

	assert_int_equal(ts_queue_claim(&job, q, 30, &err), 0);
	ts_job_free(job);
	assert_int_equal(
	    ts_queue_finish(q, a, false, "boom", NULL, NULL, 0, 31, &err), 0);
	assert_int_equal(ts_queue_retry(q, a, 40, &err), 0);
	ts_queue_free(q);

	q = open_q(dir);
	assert_int_equal(ts_queue_get(&job, q, a, &err), 0);
	assert_int_equal(job->state, TS_JOB_QUEUED);
	assert_int_equal(job->attempts, 1);
	assert_int_equal(job->updated_at, 40);
	ts_job_free(job);
	assert_int_equal(ts_queue_claim(&job, q, 41, &err), 0);
	assert_non_null(job);
	assert_int_equal(job->attempts, 2);
	ts_job_free(job);
	ts_queue_free(q);
}

/* Claim the oldest runnable job and finish it. */
static void run_one(ts_queue *q, const char *want, bool success, int64_t now)
{
	te_error err = TE_ERROR_INIT;
	ts_job *job = NULL;

	assert_int_equal(ts_queue_claim(&job, q, now, &err), 0);
	assert_non_null(job);
	assert_string_equal(job->id, want);
	ts_job_free(job);
	assert_int_equal(
	    ts_queue_finish(q, want, success, "boom", NULL, NULL, 0, now, &err),
	    0);
}

/* A new delivery of a failed job queues it again (the same job); one of a
 * succeeded, queued or running job does not. */
static void test_redelivery_requeues_failed(void **state)
{
	const char *dir = *state;
	char a[TS_JOB_ID_MAX], b[TS_JOB_ID_MAX], id[TS_JOB_ID_MAX];
	ts_submit_outcome outcome;
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL;
	ts_job_state st;

	submit(a, NULL, q, "v1", C1, "d-1", 10);
	submit(b, NULL, q, "v2", C2, "d-2", 11);
	run_one(q, a, false, 20);
	run_one(q, b, true, 21);

	/* Same delivery id, or same tag + commit: the failed job is queued
	 * again, once. */
	submit(id, &outcome, q, "v1", C1, "d-1", 30);
	assert_int_equal(outcome, TS_SUBMIT_REQUEUED);
	assert_string_equal(id, a);
	assert_int_equal(ts_queue_state(&st, q, a, &err), 0);
	assert_int_equal(st, TS_JOB_QUEUED);
	submit(id, &outcome, q, "v1", C1, "d-9", 31);
	assert_int_equal(outcome, TS_SUBMIT_EXISTING);
	assert_string_equal(id, a);
	/* Running: still the same job, left running. */
	assert_int_equal(ts_queue_claim(&job, q, 32, &err), 0);
	assert_string_equal(job->id, a);
	ts_job_free(job);
	submit(id, &outcome, q, "v1", C1, "d-1", 33);
	assert_int_equal(outcome, TS_SUBMIT_EXISTING);
	assert_int_equal(ts_queue_state(&st, q, a, &err), 0);
	assert_int_equal(st, TS_JOB_RUNNING);
	/* Succeeded: deduplicated as before. */
	submit(id, &outcome, q, "v2", C2, "d-2", 34);
	assert_int_equal(outcome, TS_SUBMIT_EXISTING);
	assert_string_equal(id, b);
	assert_int_equal(ts_queue_state(&st, q, b, &err), 0);
	assert_int_equal(st, TS_JOB_SUCCEEDED);
	ts_queue_free(q);
	if (!journal())
		return; /* postgres: a's lease keeps it running (test_pg_*) */

	/* On disk: the re-queued job ran again (attempt 2, interrupted by
	 * the close), and once it fails a delivery re-queues it again. */
	q = open_q(dir);
	assert_int_equal(ts_queue_get(&job, q, a, &err), 0);
	assert_int_equal(job->state, TS_JOB_QUEUED);
	assert_int_equal(job->attempts, 2);
	ts_job_free(job);
	run_one(q, a, false, 40);
	submit(id, &outcome, q, "v1", C1, NULL, 41);
	assert_int_equal(outcome, TS_SUBMIT_REQUEUED);
	assert_int_equal(ts_queue_get(&job, q, a, &err), 0);
	assert_int_equal(job->state, TS_JOB_QUEUED);
	assert_int_equal(job->attempts, 3);
	assert_int_equal(job->updated_at, 41);
	ts_job_free(job);
	ts_queue_free(q);
}

static void test_running_requeued_on_open(void **state)
{
	const char *dir = *state;
	char a[TS_JOB_ID_MAX];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL;
	size_t counts[4];

	submit(a, NULL, q, "v1", C1, NULL, 10);
	assert_int_equal(ts_queue_claim(&job, q, 20, &err), 0);
	ts_job_free(job);
	/* "Crash": drop the queue without finishing the running job. */
	ts_queue_free(q);

	q = open_q(dir);
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_RUNNING], 0);
	assert_int_equal(counts[TS_JOB_QUEUED], 1);
	assert_int_equal(ts_queue_claim(&job, q, 30, &err), 0);
	assert_non_null(job);
	assert_string_equal(job->id, a);
	assert_int_equal(job->attempts, 2); /* the interrupted run counts */
	ts_job_free(job);
	ts_queue_free(q);

	/* And the on-disk state was rewritten, not just memory. */
	q = open_q(dir);
	ts_queue_free(q);
}

static void write_file(const char *dir, const char *name, const char *data)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/jobs/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

static void test_corrupt_moved_aside(void **state)
{
	const char *dir = *state;
	char a[TS_JOB_ID_MAX], b[TS_JOB_ID_MAX];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL;
	size_t counts[4];

	submit(a, NULL, q, "v1", C1, NULL, 10);
	ts_queue_free(q);
	write_file(dir, "1700000000-0badf00d.json", "{\"version\":1,\"id\":");
	write_file(dir, "1700000001-0badf00d.json", "[]");
	write_file(dir, "garbage.json", "{}");
	/* Valid JSON, but the id does not match the file name. */
	write_file(dir, "1700000002-0badf00d.json",
	           "{\"version\":1,\"id\":\"1700000003-0badf00d\"}");
	/* An interrupted write: removed silently. */
	write_file(dir, "1700000004-0badf00d.tmp", "{");
	write_file(dir, "README", "ignored? no: moved");

	q = open_q(dir);
	assert_int_equal(ts_queue_corrupt_count(q), 5);
	assert_int_equal(count_files(dir, "corrupt"), 5);
	assert_int_equal(count_files(dir, "jobs"), 0);
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_QUEUED], 1);
	assert_int_equal(ts_queue_get(&job, q, a, &err), 0);
	ts_job_free(job);
	/* Still fully usable. */
	submit(b, NULL, q, "v2", C2, NULL, 20);
	ts_queue_free(q);
}

#define THREADS 8
#define PER_THREAD 50

struct worker {
	ts_queue *q;
	int index;
	int count; /* 0: PER_THREAD */
	char ids[PER_THREAD][TS_JOB_ID_MAX];
	int failures;
};

static void *submit_many(void *arg)
{
	struct worker *w = arg;
	int i;

	for (i = 0; i < (w->count ? w->count : PER_THREAD); i++) {
		char tag[32], delivery[32];
		ts_job_request req = {"shop", tag, C1, delivery, "github"};
		te_error err = TE_ERROR_INIT;
		ts_submit_outcome existed = TS_SUBMIT_NEW;

		snprintf(tag, sizeof(tag), "v%d.%d.0", w->index, i);
		snprintf(delivery, sizeof(delivery), "d-%d-%d", w->index, i);
		if (ts_queue_submit(w->ids[i], &existed, w->q, &req, 1000 + i,
		                    &err) < 0 ||
		    existed)
			w->failures++;
	}
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_concurrent_group_commit(void **state)
{
	const char *dir = *state;
	static struct worker w[THREADS];
	static char all[THREADS * PER_THREAD][TS_JOB_ID_MAX];
	pthread_t th[THREADS];
	ts_queue *q = open_q(dir);
	size_t counts[4], syncs, writes, i, n = 0;
	int t;

	for (t = 0; t < THREADS; t++) {
		memset(&w[t], 0, sizeof(w[t]));
		w[t].q = q;
		w[t].index = t;
		assert_int_equal(
		    pthread_create(&th[t], NULL, submit_many, &w[t]), 0);
	}
	for (t = 0; t < THREADS; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_int_equal(w[t].failures, 0);
		for (i = 0; i < PER_THREAD; i++)
			memcpy(all[n++], w[t].ids[i], TS_JOB_ID_MAX);
	}
	syncs = ts_queue__sync_count(q);
	writes = ts_queue__write_count(q);
	print_message("group commit: %zu submits, %zu job writes, %zu "
	              "syncs\n",
	              n, writes, syncs);
	/* Submits write no job file and sync only the journal, at most one
	 * fdatasync each.  How many share one here is the scheduler's call (a
	 * loaded 2-core CI machine once got 205 syncs for 400 submits), so
	 * the sharing itself is pinned by test_nowait_and_one_wait. */
	assert_int_equal(writes, 0);
	assert_int_equal(ts_queue__fsync_count(q), 0);
	assert_true(syncs >= 1);
	assert_true(syncs <= n);

	qsort(all, n, TS_JOB_ID_MAX, cmp_str);
	for (i = 1; i < n; i++)
		assert_string_not_equal(all[i - 1], all[i]);
	ts_queue_free(q);

	q = open_q(dir);
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_QUEUED], THREADS * PER_THREAD);
	for (i = 0; i < n; i++) {
		te_error err = TE_ERROR_INIT;
		ts_job *job = NULL;

		assert_int_equal(ts_queue_get(&job, q, all[i], &err), 0);
		ts_job_free(job);
	}
	assert_int_equal(ts_queue_corrupt_count(q), 0);
	ts_queue_free(q);
}

/* Duplicates racing each other still make one job. */
struct dup_arg {
	ts_queue *q;
	char id[TS_JOB_ID_MAX];
	ts_submit_outcome existed;
	int rc;
};

static void *submit_dup(void *arg)
{
	struct dup_arg *d = arg;
	ts_job_request req = {"shop", "v9.9.9", C3, "same-delivery", "github"};
	te_error err = TE_ERROR_INIT;

	d->rc = ts_queue_submit(d->id, &d->existed, d->q, &req, 7, &err);
	return NULL;
}

static void test_concurrent_duplicates(void **state)
{
	const char *dir = *state;
	struct dup_arg d[THREADS];
	pthread_t th[THREADS];
	ts_queue *q = open_q(dir);
	int t, fresh = 0;
	size_t counts[4];

	for (t = 0; t < THREADS; t++) {
		memset(&d[t], 0, sizeof(d[t]));
		d[t].q = q;
		assert_int_equal(
		    pthread_create(&th[t], NULL, submit_dup, &d[t]), 0);
	}
	for (t = 0; t < THREADS; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_int_equal(d[t].rc, 0);
		assert_string_equal(d[t].id, d[0].id);
		fresh += !d[t].existed;
	}
	assert_int_equal(fresh, 1);
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_QUEUED], 1);
	ts_queue_free(q);
}

/* Until a job first changes state its journal line is its only record;
 * a job file torn by a crash during its first update is dropped. */
static void test_journal_is_the_submit_record(void **state)
{
	const char *dir = *state;
	char a[TS_JOB_ID_MAX], b[TS_JOB_ID_MAX], c[TS_JOB_ID_MAX];
	char path[512];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL;
	size_t counts[4];
	ts_submit_outcome existed;
	FILE *f;

	submit(a, NULL, q, "v1", C1, "d-1", 10);
	submit(b, NULL, q, "v2", C2, "d-2", 11);
	/* A duplicate of a job without a file is still the same job. */
	submit(c, &existed, q, "v2", C2, "d-2", 12);
	assert_true(existed);
	assert_string_equal(b, c);
	assert_int_equal(ts_queue_claim(&job, q, 13, &err), 0);
	assert_string_equal(job->id, a);
	ts_job_free(job);
	assert_true(job_file_exists(dir, a));
	assert_false(job_file_exists(dir, b));
	ts_queue_free(q);
	/* An empty file for b: its first update was torn by a crash. */
	snprintf(path, sizeof(path), "%s/jobs/%s.json", dir, b);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);

	q = open_q(dir);
	assert_false(job_file_exists(dir, b));
	assert_int_equal(ts_queue_corrupt_count(q), 0);
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_QUEUED], 2); /* a was running */
	assert_int_equal(ts_queue_get(&job, q, b, &err), 0);
	assert_string_equal(job->tag, "v2");
	assert_string_equal(job->commit, C2);
	assert_string_equal(job->delivery_id, "d-2");
	assert_int_equal(job->created_at, 11);
	ts_job_free(job);
	assert_int_equal(ts_queue_get(&job, q, a, &err), 0);
	assert_string_equal(job->tag, "v1");
	assert_int_equal(job->attempts, 1);
	ts_job_free(job);
	/* Dedupe knows the replayed job. */
	submit(c, &existed, q, "v2", C2, "d-9", 20);
	assert_true(existed);
	assert_string_equal(b, c);
	ts_queue_free(q);
}

/* Append lines that are no job: garbage, a job with a bad id, a line
 * longer than the 1 MiB bound, and a last line without "\n". */
static void f_append_garbage(const char *dir)
{
	char path[512];
	FILE *f;
	size_t i;

	/* The name of the single journal of earlier versions; written where
	 * its lines end, before any preallocated zeros. */
	snprintf(path, sizeof(path), "%s/journal", dir);
	f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, (long)data_len(path), SEEK_SET), 0);
	fputs("not json\n{\"id\":\"../../x\"}\n\n", f);
	for (i = 0; i < 1100 * 1024; i++)
		fputc('x', f);
	fputs("\n{\"version\":1,\"id\":\"1700000000-0badf00d\",\"pro", f);
	fclose(f);
}

/* A torn last line (crash during the append) is ignored. */
static void test_journal_torn_line(void **state)
{
	const char *dir = *state;
	char a[TS_JOB_ID_MAX], b[TS_JOB_ID_MAX], c[TS_JOB_ID_MAX];
	char path[512], legacy[512];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL;
	size_t counts[4];

	submit(a, NULL, q, "v1", C1, NULL, 10);
	submit(b, NULL, q, "v2", C1, NULL, 11);
	submit(c, NULL, q, "v3", C1, NULL, 12);
	ts_queue_free(q);
	assert_int_equal(journal_files(dir, path), 1);
	tear_tail(path, 20);

	q = open_q(dir);
	assert_int_equal(ts_queue_corrupt_count(q), 0);
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_QUEUED], 2);
	assert_int_equal(ts_queue_get(&job, q, a, &err), 0);
	ts_job_free(job);
	assert_int_equal(ts_queue_get(&job, q, b, &err), 0);
	ts_job_free(job);
	assert_int_equal(ts_queue_get(&job, q, c, &err), TE_ENOTFOUND);
	te_error_clear(&err);
	/* The torn segment is kept (it holds a and b); appends go to a
	 * new one. */
	assert_int_equal(journal_files(dir, NULL), 2);
	submit(c, NULL, q, "v4", C2, NULL, 13);
	ts_queue_free(q);

	/* An earlier version's journal is replayed too: rename the torn
	 * segment to that name, and add garbage, a huge line and a line
	 * without its end. */
	snprintf(legacy, sizeof(legacy), "%s/journal", dir);
	assert_int_equal(rename(path, legacy), 0);
	f_append_garbage(dir);
	q = open_q(dir);
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_QUEUED], 3);
	assert_int_equal(ts_queue_get(&job, q, a, &err), 0);
	ts_job_free(job);
	assert_int_equal(ts_queue_get(&job, q, c, &err), 0);
	assert_string_equal(job->tag, "v4");
	ts_job_free(job);
	assert_int_equal(ts_queue_corrupt_count(q), 0);
	ts_queue_free(q);
}

/* A job file newer than its journal line is not overwritten. */
static void test_journal_newer_file_wins(void **state)
{
	const char *dir = *state;
	char a[TS_JOB_ID_MAX], b[TS_JOB_ID_MAX];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL;

	submit(a, NULL, q, "v1", C1, NULL, 10);
	submit(b, NULL, q, "v2", C1, NULL, 11);
	assert_int_equal(ts_queue_claim(&job, q, 20, &err), 0);
	assert_string_equal(job->id, a);
	ts_job_free(job);
	assert_int_equal(
	    ts_queue_finish(q, a, true, NULL, NULL, "ok", 0, 30, &err), 0);
	assert_int_equal(ts_queue_claim(&job, q, 40, &err), 0);
	assert_string_equal(job->id, b);
	ts_job_free(job);
	ts_queue_free(q);

	q = open_q(dir);
	/* Both have files: the old segment held nothing and is gone. */
	assert_int_equal(journal_files(dir, NULL), 1);
	assert_int_equal(ts_queue__journal_segments(q), 1);
	assert_int_equal(ts_queue_get(&job, q, a, &err), 0);
	assert_int_equal(job->state, TS_JOB_SUCCEEDED);
	assert_int_equal(job->attempts, 1);
	assert_string_equal(job->log, "ok");
	ts_job_free(job);
	/* Running at the crash: back to queued, the attempt kept. */
	assert_int_equal(ts_queue_get(&job, q, b, &err), 0);
	assert_int_equal(job->state, TS_JOB_QUEUED);
	assert_int_equal(job->attempts, 1);
	ts_job_free(job);
	ts_queue_free(q);
}

/* One wait with a merged ticket makes many submits durable, with one
 * sync. */
static void test_nowait_and_one_wait(void **state)
{
	const char *dir = *state;
	char ids[10][TS_JOB_ID_MAX], id[TS_JOB_ID_MAX], tag[16];
	te_error err = TE_ERROR_INIT;
	ts_queue_ticket all = {0, 0, 0, 0}, t;
	ts_queue *q = open_q(dir);
	size_t counts[4], syncs;
	ts_submit_outcome existed;
	int i;

	for (i = 0; i < 10; i++) {
		ts_job_request req = {"shop", tag, C1, NULL, "api"};

		snprintf(tag, sizeof(tag), "v%d", i);
		assert_int_equal(ts_queue_submit_nowait(ids[i], &existed, &t, q,
		                                        &req, 50, &err),
		                 0);
		assert_false(existed);
		assert_true(t.journal_gen > all.journal_gen);
		ts_queue_ticket_merge(&all, &t);
	}
	/* Visible before it is durable; a duplicate gets the same job. */
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_QUEUED], 10);
	{
		ts_job_request req = {"shop", "v3", C1, NULL, "api"};

		assert_int_equal(
		    ts_queue_submit_nowait(id, &existed, &t, q, &req, 51, &err),
		    0);
		assert_true(existed);
		assert_string_equal(id, ids[3]);
		assert_true(t.journal_gen <= all.journal_gen);
	}
	syncs = ts_queue__sync_count(q);
	assert_int_equal(ts_queue_wait(q, &all, &err), 0);
	assert_int_equal(ts_queue__sync_count(q), syncs + 1);
	/* Already durable: no sync at all. */
	assert_int_equal(ts_queue_wait(q, &t, &err), 0);
	assert_int_equal(ts_queue__sync_count(q), syncs + 1);
	ts_queue_free(q);

	q = open_q(dir);
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_QUEUED], 10);
	ts_queue_free(q);
}

/* Finished jobs older than the cut are forgotten, files and all;
 * queued, running and recent ones stay. */
static void test_prune(void **state)
{
	const char *dir = *state;
	char a[TS_JOB_ID_MAX], b[TS_JOB_ID_MAX], c[TS_JOB_ID_MAX],
	    d[TS_JOB_ID_MAX], e[TS_JOB_ID_MAX];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL;
	size_t counts[4], removed = 99;
	ts_submit_outcome existed;

	submit(a, NULL, q, "v1", C1, "d-1", 10);
	submit(b, NULL, q, "v2", C2, "d-2", 11);
	submit(c, NULL, q, "v3", C3, "d-3", 12);
	submit(e, NULL, q, "v4", C3, "d-4", 13);
	assert_int_equal(ts_queue_claim(&job, q, 20, &err), 0);
	assert_string_equal(job->id, a);
	ts_job_free(job);
	assert_int_equal(
	    ts_queue_finish(q, a, true, NULL, NULL, "ok", 0, 100, &err), 0);
	assert_int_equal(ts_queue_claim(&job, q, 150, &err), 0);
	assert_string_equal(job->id, b);
	ts_job_free(job);
	assert_int_equal(
	    ts_queue_finish(q, b, false, "boom", NULL, "log", 0, 200, &err), 0);
	assert_int_equal(ts_queue_claim(&job, q, 150, &err), 0);
	assert_string_equal(job->id, c); /* running: never pruned */
	ts_job_free(job);
	if (journal())
		assert_true(job_file_exists(dir, a));

	assert_int_equal(ts_queue_prune(&removed, q, 150, &err), 0);
	assert_int_equal(removed, 1);
	if (journal())
		assert_false(job_file_exists(dir, a));
	assert_int_equal(ts_queue_get(&job, q, a, &err), TE_ENOTFOUND);
	te_error_clear(&err);
	/* The same delivery now makes a new job. */
	submit(d, &existed, q, "v1", C1, "d-1", 300);
	assert_false(existed);
	assert_string_not_equal(a, d);

	assert_int_equal(ts_queue_prune(&removed, q, 1000, &err), 0);
	assert_int_equal(removed, 1); /* b failed; c runs, d and e wait */
	if (journal())
		assert_false(job_file_exists(dir, b));
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_RUNNING], 1);
	assert_int_equal(counts[TS_JOB_QUEUED], 2);
	assert_int_equal(counts[TS_JOB_SUCCEEDED] + counts[TS_JOB_FAILED], 0);
	assert_int_equal(ts_queue_prune(&removed, q, 1000, &err), 0);
	assert_int_equal(removed, 0);
	ts_queue_free(q);

	q = open_q(dir);
	ts_queue_counts(counts, q);
	/* journal: c was running, it runs again; postgres: its lease holds */
	assert_int_equal(counts[TS_JOB_QUEUED], journal() ? 3 : 2);
	assert_int_equal(ts_queue_get(&job, q, a, &err), TE_ENOTFOUND);
	te_error_clear(&err);
	assert_int_equal(ts_queue_get(&job, q, b, &err), TE_ENOTFOUND);
	te_error_clear(&err);
	assert_int_equal(ts_queue_corrupt_count(q), 0);
	ts_queue_free(q);
}

/* One submitter: each segment stops at the first line past the limit. */
static void test_journal_segment_limit(void **state)
{
	const char *dir = *state;
	char id[TS_JOB_ID_MAX], tag[16], path[512];
	struct dirent *de;
	ts_queue *q = open_q(dir);
	size_t files = 0;
	DIR *d;
	int i;

	ts_queue__set_journal_limit(q, 2048);
	for (i = 0; i < 20; i++) {
		snprintf(tag, sizeof(tag), "v%d", i);
		submit(id, NULL, q, tag, C1, NULL, 10 + i);
	}
	/* ~300-byte lines: 7 fill 2 KiB, so 20 make 3 segments. */
	assert_int_equal(ts_queue__journal_segments(q), 3);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "journal.", 8) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		assert_true(data_len(path) < 2048 + 512);
		files++;
	}
	closedir(d);
	assert_int_equal(files, 3);
	ts_queue_free(q);
}

/* The maps grow a step at a time: every key stays findable while both
 * tables are live, deletions included, and nothing leaks (ASan). */
static void test_map_grows_in_steps(void **state)
{
	enum { N = 20000 };
	static char present[N];
	struct ts_qmap m;
	te_error err = TE_ERROR_INIT;
	char key[32];
	size_t live = 0;
	int i, k;

	(void)state;
	memset(&m, 0, sizeof(m));
	memset(present, 0, sizeof(present));
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "project\nd-%d", i);
		assert_int_equal(ts_qmap_put(&m, key, &present[i], &err), 0);
		present[i] = 1;
		live++;
		/* Delete an older key now and then, often mid-growth. */
		if (i % 3 == 2) {
			k = i / 2;
			snprintf(key, sizeof(key), "project\nd-%d", k);
			if (present[k]) {
				ts_qmap_del(&m, key);
				present[k] = 0;
				live--;
			}
			assert_null(ts_qmap_get(&m, key));
		}
		if (i % 997 == 0) {
			for (k = 0; k <= i; k++) {
				snprintf(key, sizeof(key), "project\nd-%d", k);
				if (present[k])
					assert_ptr_equal(ts_qmap_get(&m, key),
					                 &present[k]);
				else
					assert_null(ts_qmap_get(&m, key));
			}
		}
	}
	assert_int_equal(m.count, live);
	/* A deleted key can come back. */
	snprintf(key, sizeof(key), "project\nd-%d", 1);
	assert_false(present[1]);
	assert_int_equal(ts_qmap_put(&m, key, &present[1], &err), 0);
	assert_ptr_equal(ts_qmap_get(&m, key), &present[1]);
	ts_qmap_free(&m);
	assert_int_equal(m.count, 0);
}

#define SEGMENT_THREADS 4
#define SEGMENT_PER_THREAD 25

/* Segments at a tiny limit lose nothing, and go once their jobs ran. */
static void test_journal_segments(void **state)
{
	const char *dir = *state;
	static struct worker w[SEGMENT_THREADS];
	pthread_t th[SEGMENT_THREADS];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	size_t counts[4], i, n = SEGMENT_THREADS * SEGMENT_PER_THREAD;
	ts_job *job = NULL;
	int t;

	ts_queue__set_journal_limit(q, 2048);
	for (t = 0; t < SEGMENT_THREADS; t++) {
		memset(&w[t], 0, sizeof(w[t]));
		w[t].q = q;
		w[t].index = t;
		w[t].count = SEGMENT_PER_THREAD;
		assert_int_equal(
		    pthread_create(&th[t], NULL, submit_many, &w[t]), 0);
	}
	for (t = 0; t < SEGMENT_THREADS; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_int_equal(w[t].failures, 0);
	}
	/* 100 lines of ~300 bytes in segments of 2 KiB: how many depends
	 * on how many lines land in a full segment while the next one is
	 * being created, but more than one. */
	assert_true(ts_queue__journal_segments(q) >= 2);
	assert_int_equal(journal_files(dir, NULL),
	                 ts_queue__journal_segments(q));
	ts_queue_free(q);

	q = open_q(dir);
	ts_queue__set_journal_limit(q, 2048);
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_QUEUED], n);
	for (t = 0; t < SEGMENT_THREADS; t++) {
		for (i = 0; i < SEGMENT_PER_THREAD; i++) {
			assert_int_equal(
			    ts_queue_get(&job, q, w[t].ids[i], &err), 0);
			ts_job_free(job);
		}
	}
	/* Every job runs: each line is released, each old segment goes. */
	for (i = 0; i < n; i++) {
		assert_int_equal(ts_queue_claim(&job, q, 100, &err), 0);
		assert_non_null(job);
		assert_int_equal(ts_queue_finish(q, job->id, true, NULL, NULL,
		                                 "ok", 0, 101, &err),
		                 0);
		ts_job_free(job);
	}
	assert_int_equal(ts_queue__journal_segments(q), 1);
	assert_int_equal(journal_files(dir, NULL), 1);
	ts_queue_free(q);

	q = open_q(dir);
	ts_queue_counts(counts, q);
	assert_int_equal(counts[TS_JOB_SUCCEEDED], n);
	assert_int_equal(ts_queue_corrupt_count(q), 0);
	ts_queue_free(q);
}

/* Each attempt names the instance that ran it; a given-back attempt
 * (shutdown) leaves none behind. */
static void test_runners(void **state)
{
	const char *dir = *state;
	char a[TS_JOB_ID_MAX];
	te_error err = TE_ERROR_INIT;
	ts_queue *q = open_q(dir);
	ts_job *job = NULL;

	assert_int_equal(ts_queue_set_instance(q, "bad name", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	submit(a, NULL, q, "v1", C1, NULL, 10);
	assert_int_equal(ts_queue_claim(&job, q, 20, &err), 0);
	assert_int_equal(job->runners.count, 1);
	assert_string_equal(job->runners.items[0], "replica-a");
	ts_job_free(job);
	assert_int_equal(ts_queue_requeue(q, a, 21, &err), 0);
	assert_int_equal(ts_queue_get(&job, q, a, &err), 0);
	assert_int_equal(job->runners.count, 0);
	ts_job_free(job);
	assert_int_equal(ts_queue_set_instance(q, "build-2:8080", &err), 0);
	run_one(q, a, false, 30);
	assert_int_equal(ts_queue_retry(q, a, 31, &err), 0);
	assert_int_equal(ts_queue_set_instance(q, "[::1]:9", &err), 0);
	run_one(q, a, true, 32);
	ts_queue_free(q);

	q = open_q(dir);
	assert_int_equal(ts_queue_get(&job, q, a, &err), 0);
	assert_int_equal(job->attempts, 2);
	assert_int_equal(job->runners.count, 2);
	assert_string_equal(job->runners.items[0], "build-2:8080");
	assert_string_equal(job->runners.items[1], "[::1]:9");
	ts_job_free(job);
	ts_queue_free(q);
}

/* Content tag locks exclude each other per repo + tag, not across tags. */
struct lock_arg {
	ts_queue *q;
	const char *tag;
	int *inside;
	int overlaps;
	int rc;
};

static void *lock_loop(void *arg)
{
	struct lock_arg *a = arg;
	te_error err = TE_ERROR_INIT;
	ts_queue_lock *l = NULL;
	int i;

	for (i = 0; i < 20 && a->rc == 0; i++) {
		a->rc = ts_queue_content_lock(&l, a->q, "reg/x/stages", a->tag,
		                              &err);
		if (a->rc < 0)
			break;
		/* only this thread may be between lock and unlock */
		if (__atomic_add_fetch(a->inside, 1, __ATOMIC_SEQ_CST) != 1)
			a->overlaps++;
		sched_yield();
		__atomic_sub_fetch(a->inside, 1, __ATOMIC_SEQ_CST);
		ts_queue_content_unlock(l);
	}
	return NULL;
}

static void test_content_lock(void **state)
{
	ts_queue *q = open_q(*state);
	int inside_a = 0, inside_b = 0, i;
	struct lock_arg a[4];
	pthread_t th[4];

	for (i = 0; i < 4; i++) {
		a[i] = (struct lock_arg){q, i < 3 ? "tag-a" : "tag-b",
		                         i < 3 ? &inside_a : &inside_b, 0, 0};
		assert_int_equal(pthread_create(&th[i], NULL, lock_loop, &a[i]),
		                 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(a[i].rc, 0);
		assert_int_equal(a[i].overlaps, 0);
	}
	ts_queue_free(q);
}

/* ---- postgres: several replicas on one database ----------------------- */

/* One value from the database, through a session of its own; a static
 * buffer. */
static const char *sql_value(const char *query)
{
	static char value[64];
	PGconn *c = PQconnectdb(pg_dsn);
	PGresult *r = PQexec(c, query);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("postgres: %s", PQerrorMessage(c));
	snprintf(value, sizeof(value), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return value;
}

static ts_queue *open_replica(const char *instance, unsigned lease)
{
	te_error err = TE_ERROR_INIT;
	ts_queue *q = NULL;

	if (ts_queue_open_postgres(&q, pg_dsn, lease, &err) < 0 ||
	    ts_queue_set_instance(q, instance, &err) < 0)
		fail_msg("open: %s", err.msg);
	assert_string_equal(ts_queue_driver_name(q), "postgres");
	assert_int_equal(ts_queue_health(q, &err), 0);
	return q;
}

struct replica_arg {
	ts_queue *q;
	int n; /* submits */
	int fresh;
	int rc;
};

/* n deliveries; each of them sent to every replica. */
static void *replica_submits(void *arg)
{
	struct replica_arg *r = arg;
	te_error err = TE_ERROR_INIT;
	char id[TS_JOB_ID_MAX], tag[32], delivery[32];
	ts_submit_outcome out;
	int i;

	for (i = 0; i < r->n && r->rc == 0; i++) {
		ts_job_request req = {"shop", tag, C1, delivery, "github"};

		snprintf(tag, sizeof(tag), "v1.0.%d", i);
		snprintf(delivery, sizeof(delivery), "d-%d", i);
		r->rc = ts_queue_submit(id, &out, r->q, &req, 100 + i, &err);
		r->fresh += out == TS_SUBMIT_NEW;
	}
	return NULL;
}

/* The same deliveries sent to three replicas at once: one job each
 * (unique constraints, no check-then-insert race). */
static void test_pg_replicas_dedupe(void **state)
{
	struct replica_arg r[3];
	pthread_t th[3];
	size_t counts[4];
	int i, fresh = 0;

	(void)state;
	for (i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "replica-%d", i);
		r[i] = (struct replica_arg){open_replica(name, 60), 50, 0, 0};
	}
	for (i = 0; i < 3; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, replica_submits, &r[i]), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(r[i].rc, 0);
		fresh += r[i].fresh;
	}
	assert_int_equal(fresh, 50);
	ts_queue_counts(counts, r[1].q);
	assert_int_equal(counts[TS_JOB_QUEUED], 50);
	for (i = 0; i < 3; i++)
		ts_queue_free(r[i].q);
}

/* A replica that dies with a running job: once its lease runs out
 * another claims the job as a new attempt, and the dead one's claim
 * cannot finish it any more. */
static void test_pg_lease_expires(void **state)
{
	te_error err = TE_ERROR_INIT;
	ts_queue *a = open_replica("build-1", 1);
	ts_queue *b = open_replica("build-2", 60);
	ts_job *job = NULL;
	char id[TS_JOB_ID_MAX];
	int tries;

	(void)state;
	submit(id, NULL, a, "v1", C1, "d-1", 10);
	/* durable when submit returned: committed, seen by another session */
	assert_string_equal(sql_value("SELECT count(*) FROM tagexport_jobs"),
	                    "1");
	assert_int_equal(ts_queue_claim(&job, a, 20, &err), 0);
	assert_non_null(job);
	ts_job_free(job);
	job = NULL;
	/* a's heartbeat keeps it while a lives */
	assert_int_equal(ts_queue_claim(&job, b, 21, &err), 0);
	assert_null(job);
	ts_queue_free(a); /* "kill -9": no finish, no give-back */
	for (tries = 0; tries < 100 && !job; tries++) {
		assert_int_equal(ts_queue_claim(&job, b, 22, &err), 0);
		if (!job)
			usleep(100 * 1000);
	}
	assert_non_null(job);
	assert_string_equal(job->id, id);
	assert_int_equal(job->attempts, 2);
	assert_int_equal(job->runners.count, 2);
	assert_string_equal(job->runners.items[0], "build-1");
	assert_string_equal(job->runners.items[1], "build-2");
	ts_job_free(job);
	/* a claim of another queue (a restarted build-1) cannot finish it */
	a = open_replica("build-1", 60);
	assert_int_equal(
	    ts_queue_finish(a, id, true, NULL, NULL, "", 0, 30, &err),
	    TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(
	    ts_queue_finish(b, id, true, NULL, NULL, "", 0, 30, &err), 0);
	assert_int_equal(ts_queue_get(&job, a, id, &err), 0);
	assert_int_equal(job->state, TS_JOB_SUCCEEDED);
	ts_job_free(job);
	ts_queue_free(a);
	ts_queue_free(b);
}

static void *open_close(void *arg)
{
	te_error err = TE_ERROR_INIT;
	ts_queue *q = NULL;

	*(int *)arg = ts_queue_open_postgres(&q, pg_dsn, 60, &err);
	ts_queue_free(q);
	return NULL;
}

static int open_close_rc(void)
{
	int rc;

	open_close(&rc);
	return rc;
}

/* Replicas that start together create the schema once. */
static void test_pg_schema_once(void **state)
{
	pthread_t th[6];
	int rc[6], i;
	PGconn *c;
	PGresult *r;

	(void)state;
	for (i = 0; i < 6; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, open_close, &rc[i]), 0);
	for (i = 0; i < 6; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(rc[i], 0);
	}
	c = PQconnectdb(pg_dsn);
	r = PQexec(c, "SELECT count(*), max(version) FROM tagexport_schema");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "1");
	assert_string_equal(PQgetvalue(r, 0, 1), "1");
	PQclear(r);
	/* a schema newer than this server is refused, not used */
	PQclear(PQexec(c, "INSERT INTO tagexport_schema VALUES (99)"));
	PQfinish(c);
	assert_int_equal(open_close_rc(), TE_EUNSUPPORTED);
}

/* An unreachable database is TE_ENET, and the DSN's password is in no
 * message. */
static void test_pg_unreachable(void **state)
{
	te_error err = TE_ERROR_INIT;
	ts_queue *q = NULL;

	(void)state;
	assert_int_equal(ts_queue_open_postgres(
	                     &q,
	                     "host=127.0.0.1 port=1 user=u password=s3cr3t-pw "
	                     "dbname=d connect_timeout=2",
	                     60, &err),
	                 TE_ENET);
	assert_null(q);
	assert_null(strstr(err.msg, "s3cr3t-pw"));
	assert_non_null(strstr(err.msg, "database unreachable"));
}

int main(void)
{
	/* The interface's tests, run against each driver. */
	const struct CMUnitTest generic[] = {
	    cmocka_unit_test_setup_teardown(test_find, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_submit_persists, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_dedupe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_requests, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_tag_is_data, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_claim_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_finish, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retry_and_requeue, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_redelivery_requeues_failed,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_duplicates, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_runners, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_content_lock, setup, teardown),
	};
	const struct CMUnitTest journal_only[] = {
	    cmocka_unit_test(test_origin),
	    cmocka_unit_test_setup_teardown(test_running_requeued_on_open,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_moved_aside, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_group_commit, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_journal_is_the_submit_record,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_journal_torn_line, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_journal_newer_file_wins, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_nowait_and_one_wait, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_journal_segment_limit, setup,
	                                    teardown),
	    cmocka_unit_test(test_map_grows_in_steps),
	    cmocka_unit_test_setup_teardown(test_journal_segments, setup,
	                                    teardown),
	};
	const struct CMUnitTest pg_only[] = {
	    cmocka_unit_test_setup_teardown(test_pg_replicas_dedupe, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_pg_lease_expires, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_pg_schema_once, setup,
	                                    teardown),
	    cmocka_unit_test(test_pg_unreachable),
	};
	const char *dsn = getenv("TE_TEST_PG_DSN");

	if (!dsn || !*dsn)
		return cmocka_run_group_tests_name("journal", generic, NULL,
		                                   NULL) |
		       cmocka_run_group_tests_name("journal only", journal_only,
		                                   NULL, NULL);
	pg_dsn = dsn;
	return cmocka_run_group_tests_name("postgres", generic, NULL, NULL) |
	       cmocka_run_group_tests_name("postgres only", pg_only, NULL,
	                                   NULL);
}
