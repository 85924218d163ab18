/*
 * journal_queue.c - the journal driver of the job queue (queue.h), the
 * default: one machine, no database.  One JSON file per job that has run,
 * plus a journal of submits (journal.c); one job's fields and JSON form
 * are in job.c.
 *
 * Layout: <dir>/jobs/<id>.json (the jobs), <dir>/jobs/<id>.tmp (a write in
 * progress, removed at open), <dir>/corrupt/ (unreadable files moved aside
 * at open), <dir>/journal.<n> (journal segments: one line per submitted
 * job, the job file's JSON and "\n").  Ids are "<10-digit unix
 * seconds>-<8 hex from getrandom>", generated here: no byte of a request
 * ever reaches a path.
 *
 * Invariants (besides those of queue.h):
 *  1. Memory never runs ahead of disk: a change is applied to a copy, the
 *     copy is written, and only then swapped in.  Updates (claim, finish,
 *     requeue, retry) write temp, fsync, rename and then wait for a
 *     directory fsync (invariant 3).
 *  2. A job being written is "busy": one write per job at a time, so the
 *     temp name <id>.tmp is private to that writer and renames of one job
 *     land in order.  Updaters wait for busy to clear; claim skips busy
 *     jobs.
 *  3. Group commit of updates: every completed update rename takes a
 *     generation number (renamed_gen).  A writer then needs synced_gen >=
 *     its generation.  If nobody is syncing it becomes the leader: it
 *     samples renamed_gen, drops the lock, fsyncs the directory once, and
 *     publishes the sample as synced_gen, which releases every follower
 *     whose rename it covered.  Followers just wait on sync_cv.
 *  4. A submit writes no job file: under the lock it appends its line to
 *     the journal and indexes the job, then waits for the journal's group
 *     commit.  Creating a file per submit in one directory is what
 *     limited intake before (inode allocation and the directory lock);
 *     one write and a shared fdatasync is all a submit costs now.  The
 *     line is "held" (queue/journal.h) while it is the job's only record:
 *     the first update writes the job file, and once that is durable the
 *     line is released, so a journal segment lives until the jobs it
 *     recorded have run (or forever with no workers, which is still one
 *     line per job, less than a file per job).
 *  5. Open replays the journal first (a torn or garbled line is skipped),
 *     then loads the job files: a job file that parses wins over its line
 *     (it is a newer state of the job) and releases it; a job file that
 *     does not parse is garbage when the journal has the job, else it is
 *     moved to corrupt/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/journal.h"
#include "queue/job.h"
#include "tagexport/fs.h"
#include "queue/map.h"
#include "queue/journal_queue.h"
#include "queue/driver.h"
#include "queue/queue.h"

#define JOB_FILE_MAX (4 * 1024 * 1024)
#define RANDOM_POOL 64

struct qjob {
	ts_job job;
	uint64_t gen;        /* renamed_gen of the last update write */
	uint64_t jgen;       /* journal generation of its submit line */
	ts_journal_seg *seg; /* holds its line while that is its only record */
	ts_journal_pos jpos; /* where its submit line is, when has_jpos */
	bool has_jpos;
	bool busy;
	bool dirty; /* loaded as running, must be rewritten as queued */
};

typedef struct jqueue jqueue;

/* The journal driver: base first, so a ts_queue * of this driver is a
 * jqueue *. */
struct jqueue {
	struct ts_queue base;
	char *jobs_path;
	int jobs_fd;
	int dir_fd; /* <dir>: the journal's segments */
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* busy changes */
	pthread_cond_t sync_cv; /* synced_gen changes */
	struct qjob **jobs;
	size_t njobs, cap_jobs;
	struct ts_qmap by_id;
	struct ts_qmap by_delivery; /* "project\ndelivery" */
	struct ts_qmap by_triple;   /* "project\ntag\ncommit" */
	uint64_t renamed_gen;
	uint64_t synced_gen;
	bool syncing;
	ts_journal *journal;
	uint32_t random[RANDOM_POOL]; /* for job ids; under mu */
	size_t random_left;
	size_t sync_count; /* job-file fsyncs after open (journal's apart) */
	size_t fsync_count;
	size_t write_count;
	size_t corrupt_count;
};

/* ---- indexes ------------------------------------------------------------ */

static int delivery_key(te_buf *key, const char *project, const char *delivery,
                        te_error *err)
{
	te_buf_clear(key);
	return te_buf_printf(key, err, "%s\n%s", project, delivery);
}

static int triple_key(te_buf *key, const char *project, const char *tag,
                      const char *commit, te_error *err)
{
	te_buf_clear(key);
	return te_buf_printf(key, err, "%s\n%s\n%s", project, tag, commit);
}

/* Index job (not yet in any map) by id, delivery and triple.  On failure
 * nothing stays indexed. */
static int index_job(jqueue *q, struct qjob *j, te_error *err)
{
	te_buf key = TE_BUF_INIT(4 * TS_JOB_FIELD_MAX);
	bool by_id = false, by_delivery = false;
	int rc;

	rc = ts_qmap_put(&q->by_id, j->job.id, j, err);
	if (rc < 0)
		goto done;
	by_id = true;
	if (j->job.delivery_id) {
		rc =
		    delivery_key(&key, j->job.project, j->job.delivery_id, err);
		if (rc == 0 && !ts_qmap_get(&q->by_delivery, key.ptr)) {
			rc = ts_qmap_put(&q->by_delivery, key.ptr, j, err);
			by_delivery = rc == 0;
		}
		if (rc < 0)
			goto done;
	}
	rc = triple_key(&key, j->job.project, j->job.tag, j->job.commit, err);
	if (rc == 0 && !ts_qmap_get(&q->by_triple, key.ptr))
		rc = ts_qmap_put(&q->by_triple, key.ptr, j, err);
done:
	if (rc < 0) {
		if (by_id)
			ts_qmap_del(&q->by_id, j->job.id);
		if (by_delivery && delivery_key(&key, j->job.project,
		                                j->job.delivery_id, err) == 0)
			ts_qmap_del(&q->by_delivery, key.ptr);
	}
	te_buf_dispose(&key);
	return rc;
}

/* Remove j from the maps where it is the indexed job. */
static void unindex_job(jqueue *q, struct qjob *j)
{
	te_error err = TE_ERROR_INIT;
	te_buf key = TE_BUF_INIT(4 * TS_JOB_FIELD_MAX);

	if (ts_qmap_get(&q->by_id, j->job.id) == j)
		ts_qmap_del(&q->by_id, j->job.id);
	if (j->job.delivery_id &&
	    delivery_key(&key, j->job.project, j->job.delivery_id, &err) == 0 &&
	    ts_qmap_get(&q->by_delivery, key.ptr) == j)
		ts_qmap_del(&q->by_delivery, key.ptr);
	if (triple_key(&key, j->job.project, j->job.tag, j->job.commit, &err) ==
	        0 &&
	    ts_qmap_get(&q->by_triple, key.ptr) == j)
		ts_qmap_del(&q->by_triple, key.ptr);
	te_buf_dispose(&key);
}

static int add_job(jqueue *q, struct qjob *j, te_error *err)
{
	int rc;

	if (q->njobs == q->cap_jobs) {
		size_t cap = q->cap_jobs ? q->cap_jobs * 2 : 64;
		struct qjob **p = realloc(q->jobs, cap * sizeof(*p));

		if (!p)
			return te_error_set(err, TE_ENOMEM,
			                    "queue: out of memory");
		q->jobs = p;
		q->cap_jobs = cap;
	}
	rc = index_job(q, j, err);
	if (rc < 0)
		return rc;
	q->jobs[q->njobs++] = j;
	return 0;
}

static void remove_job(jqueue *q, struct qjob *j)
{
	size_t i;

	unindex_job(q, j);
	for (i = 0; i < q->njobs; i++) {
		if (q->jobs[i] == j) {
			q->jobs[i] = q->jobs[--q->njobs];
			break;
		}
	}
}

static void qjob_free(struct qjob *j)
{
	if (!j)
		return;
	ts_job__dispose(&j->job);
	free(j);
}

/* ---- disk --------------------------------------------------------------- */

/* Write <id>.tmp, fsync it, rename it to <id>.json.  Called without the
 * lock; the job's busy flag makes the temp name ours alone. */
static int write_job_file(jqueue *q, const char *id, const char *data,
                          size_t len, te_error *err)
{
	char tmp[TS_JOB_ID_MAX + 8], final[TS_JOB_ID_MAX + 8];
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", id);
	snprintf(final, sizeof(final), "%s.json", id);
	fd = openat(q->jobs_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	            0600);
	if (fd < 0)
		return te_error_set_errno(err, TE_EIO, errno,
		                          "queue: cannot create job file");
	if (te_fs_write_all(fd, data, len) < 0 ||
	    te_fs_write_all(fd, "\n", 1) < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "queue: cannot write job file");
		goto done;
	}
	if (fsync(fd) < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "queue: cannot fsync job file");
		goto done;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "queue: cannot close job file");
		goto done;
	}
	fd = -1;
	if (renameat(q->jobs_fd, tmp, q->jobs_fd, final) < 0)
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "queue: cannot rename job file");
done:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlinkat(q->jobs_fd, tmp, 0);
	return rc;
}

/*
 * Group commit (invariant 3).  Called with q->mu held; returns with it
 * held once a directory fsync that started after rename generation gen
 * completed.
 */
static int sync_dir(jqueue *q, uint64_t gen, te_error *err)
{
	while (q->synced_gen < gen) {
		uint64_t target;
		int r, saved;

		if (q->syncing) {
			pthread_cond_wait(&q->sync_cv, &q->mu);
			continue;
		}
		target = q->renamed_gen;
		q->syncing = true;
		pthread_mutex_unlock(&q->mu);
		r = fsync(q->jobs_fd);
		saved = errno;
		pthread_mutex_lock(&q->mu);
		q->syncing = false;
		q->fsync_count++;
		q->sync_count++;
		if (r == 0 && target > q->synced_gen)
			q->synced_gen = target;
		pthread_cond_broadcast(&q->sync_cv);
		if (r < 0)
			return te_error_set_errno(err, TE_EIO, saved,
			                          "queue: cannot fsync job "
			                          "directory");
	}
	return 0;
}

/*
 * Make next the new content of j (invariant 1) on disk, the directory
 * fsync aside: durable once sync_dir(j->gen) returned.  Called with q->mu
 * held and j->busy set by the caller; clears busy.  next is consumed
 * (moved into j on success, disposed on failure).
 */
static int commit_write(jqueue *q, struct qjob *j, ts_job *next, te_error *err)
{
	char *json = NULL;
	size_t len = 0;
	int rc;

	rc = ts_job__to_json(&json, &len, next, err);
	if (rc == 0) {
		pthread_mutex_unlock(&q->mu);
		rc = write_job_file(q, next->id, json, len, err);
		pthread_mutex_lock(&q->mu);
	}
	if (rc == 0) {
		q->sync_count++; /* the job file's fsync */
		ts_job__dispose(&j->job);
		j->job = *next;
		memset(next, 0, sizeof(*next));
		j->gen = ++q->renamed_gen;
		q->write_count++;
	} else {
		ts_job__dispose(next);
	}
	j->busy = false;
	pthread_cond_broadcast(&q->cv);
	free(json);
	return rc;
}

/* commit_write, then wait until the rename is durable (invariant 3). */
static int commit_update(jqueue *q, struct qjob *j, ts_job *next, te_error *err)
{
	int rc = commit_write(q, j, next, err);

	if (rc == 0)
		rc = sync_dir(q, j->gen, err);
	if (rc == 0 && j->seg) {
		/* The job file is durable: its line is not needed. */
		ts_journal_release(q->journal, j->seg);
		j->seg = NULL;
	}
	return rc;
}

static int read_job_file(char **out, size_t *len, int dirfd, const char *name)
{
	struct stat st;
	char *data = NULL;
	size_t got = 0;
	int fd, rc = -1;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > JOB_FILE_MAX)
		goto done;
	data = malloc((size_t)st.st_size + 1);
	if (!data)
		goto done;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto done;
		got += (size_t)n;
	}
	data[got] = '\0';
	*out = data;
	*len = got;
	data = NULL;
	rc = 0;
done:
	free(data);
	close(fd);
	return rc;
}

/* Move a bad file to <dir>/corrupt/<name>-<random> (never overwrites). */
static void move_corrupt(jqueue *q, int corrupt_fd, const char *name)
{
	char target[NAME_MAX + 16];
	uint32_t r = 0;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)time(NULL);
	snprintf(target, sizeof(target), "%.*s-%08x", NAME_MAX - 10, name,
	         (unsigned)r);
	if (corrupt_fd >= 0 &&
	    renameat(q->jobs_fd, name, corrupt_fd, target) == 0)
		q->corrupt_count++;
}

static int load_one(jqueue *q, int corrupt_fd, const char *name, bool *rewrite,
                    te_error *err)
{
	char id[TS_JOB_ID_MAX];
	te_error jerr = TE_ERROR_INIT;
	struct qjob *j = NULL, *known;
	char *data = NULL;
	size_t len = 0, n = strlen(name);
	int rc = 0;

	*rewrite = false;
	if (n < 5 || strcmp(name + n - 5, ".json") != 0 ||
	    n - 5 >= sizeof(id)) {
		move_corrupt(q, corrupt_fd, name);
		return 0;
	}
	memcpy(id, name, n - 5);
	id[n - 5] = '\0';
	j = calloc(1, sizeof(*j));
	if (!j)
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	known = ts_job__id_valid(id) ? ts_qmap_get(&q->by_id, id) : NULL;
	if (known && !known->seg) {
		move_corrupt(q, corrupt_fd, name); /* two files, one id */
		goto done;
	}
	if (!ts_job__id_valid(id) ||
	    read_job_file(&data, &len, q->jobs_fd, name) < 0 ||
	    ts_job__from_json(&j->job, data, len, id, &jerr) < 0) {
		if (jerr.code == TE_ENOMEM) {
			rc = te_error_set(err, TE_ENOMEM,
			                  "queue: out of memory");
			goto done;
		}
		/* With the journal's line, a bad file is only an update
		 * that never completed (invariant 5). */
		if (known)
			unlinkat(q->jobs_fd, name, 0);
		else
			move_corrupt(q, corrupt_fd, name);
		goto done;
	}
	if (j->job.state == TS_JOB_RUNNING) {
		j->job.state = TS_JOB_QUEUED;
		j->dirty = true;
		*rewrite = true;
	}
	if (known) {
		/* The file is the newer state of the journal's job. */
		ts_job__dispose(&known->job);
		known->job = j->job;
		memset(&j->job, 0, sizeof(j->job));
		known->dirty = j->dirty;
		ts_journal_release(q->journal, known->seg);
		known->seg = NULL;
		goto done;
	}
	rc = add_job(q, j, err);
	if (rc == 0)
		j = NULL;
done:
	qjob_free(j);
	free(data);
	return rc;
}

static int load_all(jqueue *q, const char *dir, te_error *err)
{
	te_buf path = TE_BUF_INIT(PATH_MAX);
	DIR *d = NULL;
	struct dirent *de;
	int corrupt_fd = -1, fd, rc;
	size_t i;
	bool rewrite, any_rewrite = false;

	rc = te_buf_printf(&path, err, "%s/corrupt", dir);
	if (rc < 0)
		goto done;
	rc = te_fs_mkdirs(path.ptr, err);
	if (rc < 0)
		goto done;
	corrupt_fd = open(path.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fd = dup(q->jobs_fd);
	if (fd >= 0) {
		d = fdopendir(fd);
		if (!d)
			close(fd);
	}
	if (!d) {
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "queue: cannot list jobs");
		goto done;
	}
	rewinddir(d);
	for (errno = 0, de = readdir(d); de; errno = 0, de = readdir(d)) {
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0) {
			/* An interrupted write: the old file is intact. */
			unlinkat(q->jobs_fd, de->d_name, 0);
			continue;
		}
		rc = load_one(q, corrupt_fd, de->d_name, &rewrite, err);
		if (rc < 0)
			goto done;
		any_rewrite = any_rewrite || rewrite;
	}
	/* Interrupted jobs run again (queue.h invariant 3).  If writing
	 * fails, the file still says running and the next open retries. */
	for (i = 0; any_rewrite && i < q->njobs; i++) {
		struct qjob *j = q->jobs[i];
		te_error werr = TE_ERROR_INIT;
		char *json = NULL;
		size_t len = 0;

		if (!j->dirty)
			continue;
		j->dirty = false;
		if (ts_job__to_json(&json, &len, &j->job, &werr) == 0)
			(void)write_job_file(q, j->job.id, json, len, &werr);
		free(json);
	}
	if (fsync(q->jobs_fd) < 0 ||
	    (corrupt_fd >= 0 && fsync(corrupt_fd) < 0)) {
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "queue: cannot fsync job directory");
		goto done;
	}
done:
	if (d)
		closedir(d);
	if (corrupt_fd >= 0)
		close(corrupt_fd);
	te_buf_dispose(&path);
	return rc;
}

/* One journal line at open (invariant 5): the job it recorded, held
 * until its file is loaded or written.  A line that is not a valid job,
 * or repeats a known id, is dropped. */
static int replay_line(void *ctx, ts_journal_seg *seg,
                       const ts_journal_pos *pos, const char *line, size_t len,
                       te_error *err)
{
	jqueue *q = ctx;
	te_error jerr = TE_ERROR_INIT;
	struct qjob *j;

	j = calloc(1, sizeof(*j));
	if (!j)
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	if (ts_job__from_json(&j->job, line, len, NULL, &jerr) < 0 ||
	    j->job.state != TS_JOB_QUEUED ||
	    ts_qmap_get(&q->by_id, j->job.id)) {
		qjob_free(j);
		if (jerr.code == TE_ENOMEM)
			return te_error_set(err, TE_ENOMEM,
			                    "queue: out of memory");
		return 0;
	}
	if (add_job(q, j, err) < 0) {
		qjob_free(j);
		return err->code;
	}
	j->seg = seg;
	j->jpos = *pos;
	j->has_jpos = true;
	return 1;
}

static const struct ts_queue_ops jq_ops;
static void jq_free(ts_queue *base);

/* ---- API ---------------------------------------------------------------- */

int ts_queue_open_journal(ts_queue **out, const char *dir, te_error *err)
{
	jqueue *q = NULL;
	te_buf path = TE_BUF_INIT(PATH_MAX);
	int rc;

	*out = NULL;
	if (!dir || !*dir)
		return te_error_set(err, TE_EINVALID,
		                    "queue: a directory is required");
	q = calloc(1, sizeof(*q));
	if (!q)
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	q->base.ops = &jq_ops;
	q->jobs_fd = -1;
	q->dir_fd = -1;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	pthread_cond_init(&q->sync_cv, NULL);

	rc = te_buf_printf(&path, err, "%s/jobs", dir);
	if (rc < 0)
		goto done;
	rc = te_fs_mkdirs(path.ptr, err);
	if (rc < 0)
		goto done;
	q->jobs_path = te_buf_detach(&path);
	q->jobs_fd = open(q->jobs_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->jobs_fd < 0) {
		rc =
		    te_error_set_errno(err, TE_EIO, errno,
		                       "queue: cannot open '%s'", q->jobs_path);
		goto done;
	}
	q->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dir_fd < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "queue: cannot open '%s'", dir);
		goto done;
	}
	/* Invariant 5: the journal, then the files, which win. */
	rc = ts_journal_open(&q->journal, q->dir_fd, &q->mu, replay_line, q,
	                     err);
	if (rc == 0)
		rc = load_all(q, dir, err);
	/* Segments nothing holds go; the new one makes jobs/ and corrupt/
	 * durable too (the fsync of <dir>). */
	if (rc == 0)
		rc = ts_journal_start(q->journal, err);
	if (rc < 0)
		goto done;
	*out = &q->base;
	q = NULL;
done:
	te_buf_dispose(&path);
	if (q)
		jq_free(&q->base);
	if (rc < 0)
		te_error_wrap(err, "opening job queue");
	return rc;
}

static void jq_free(ts_queue *base)
{
	jqueue *q = (jqueue *)base;
	size_t i;

	if (!q)
		return;
	for (i = 0; i < q->njobs; i++)
		qjob_free(q->jobs[i]);
	free(q->jobs);
	ts_qmap_free(&q->by_id);
	ts_qmap_free(&q->by_delivery);
	ts_qmap_free(&q->by_triple);
	if (q->jobs_fd >= 0)
		close(q->jobs_fd);
	ts_journal_free(q->journal);
	if (q->dir_fd >= 0)
		close(q->dir_fd);
	free(q->jobs_path);
	pthread_cond_destroy(&q->sync_cv);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

/* With q->mu held: the existing job for req, or NULL. */
static struct qjob *find_existing(jqueue *q, const ts_job_request *req,
                                  const char *commit, te_buf *key,
                                  te_error *err)
{
	struct qjob *j = NULL;

	if (req->delivery_id && *req->delivery_id &&
	    delivery_key(key, req->project, req->delivery_id, err) == 0)
		j = ts_qmap_get(&q->by_delivery, key->ptr);
	if (!j && triple_key(key, req->project, req->tag, commit, err) == 0)
		j = ts_qmap_get(&q->by_triple, key->ptr);
	return j;
}

static int new_id(char id[TS_JOB_ID_MAX], jqueue *q, int64_t now, te_error *err)
{
	long long secs = now < 0 ? 0 : now > 9999999999LL ? 9999999999LL : now;
	int tries;

	for (tries = 0; tries < 16; tries++) {
		/* One getrandom per RANDOM_POOL ids, not one per submit. */
		if (q->random_left == 0) {
			if (getrandom(q->random, sizeof(q->random), 0) !=
			    sizeof(q->random))
				return te_error_set_errno(
				    err, TE_EIO, errno,
				    "queue: getrandom failed");
			q->random_left = RANDOM_POOL;
		}
		snprintf(id, TS_JOB_ID_MAX, "%010lld-%08x", secs,
		         (unsigned)q->random[--q->random_left]);
		if (!ts_qmap_get(&q->by_id, id))
			return 0;
	}
	return te_error_set(err, TE_ERROR, "queue: cannot make a unique id");
}

/* A new queued job for req; NULL with err set on failure. */
static struct qjob *new_job(const ts_job_request *req, const char *commit,
                            int64_t now, te_error *err)
{
	struct qjob *j = calloc(1, sizeof(*j));
	int rc;

	if (!j) {
		te_error_set(err, TE_ENOMEM, "queue: out of memory");
		return NULL;
	}
	memcpy(j->job.commit, commit, 41);
	j->job.state = TS_JOB_QUEUED;
	j->job.created_at = j->job.updated_at = now;
	rc = ts_job__dup_str(&j->job.project, req->project, err);
	if (rc == 0)
		rc = ts_job__dup_str(&j->job.tag, req->tag, err);
	if (rc == 0 && req->delivery_id && *req->delivery_id)
		rc =
		    ts_job__dup_str(&j->job.delivery_id, req->delivery_id, err);
	if (rc == 0)
		rc = ts_job__dup_str(&j->job.source, req->source, err);
	if (rc < 0) {
		qjob_free(j);
		return NULL;
	}
	return j;
}

/* The journal line of j: its job file's JSON and "\n". */
static int job_line(char **out, size_t *len, const ts_job *job, te_error *err)
{
	char *json = NULL, *line;
	size_t n = 0;
	int rc;

	rc = ts_job__to_json(&json, &n, job, err);
	if (rc < 0)
		return rc;
	line = realloc(json, n + 1);
	if (!line) {
		free(json);
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	}
	line[n] = '\n';
	*out = line;
	*len = n + 1;
	return 0;
}

static int begin_update(struct qjob **out, ts_job *next, jqueue *q,
                        const char *id, te_error *err);
static void abort_update(jqueue *q, struct qjob *j, ts_job *next);

/*
 * With q->mu held: job id, which a submit found, runs again if it failed
 * (queue.h invariant 4).  Its job file is written here; the directory
 * sync is left to ts_queue_wait through ticket.  A job that changed
 * state meanwhile (a retry won the race) stays as it is.
 */
static int requeue_failed(ts_submit_outcome *outcome, ts_queue_ticket *ticket,
                          jqueue *q, const char *id, int64_t now, te_error *err)
{
	struct qjob *j = NULL;
	ts_job next;
	int rc;

	rc = begin_update(&j, &next, q, id, err);
	if (rc < 0)
		return rc;
	if (next.state != TS_JOB_FAILED) {
		abort_update(q, j, &next);
		ticket->dir_gen = j->gen;
		return 0;
	}
	ts_job__requeued(&next, now);
	rc = commit_write(q, j, &next, err);
	if (rc == 0) {
		*outcome = TS_SUBMIT_REQUEUED;
		ticket->dir_gen = j->gen;
	}
	return rc;
}

static int jq_find(char id_out[TS_JOB_ID_MAX], bool *found, ts_queue *base,
                   const char *project, const char *tag, const char *commit,
                   te_error *err)
{
	jqueue *q = (jqueue *)base;
	te_buf key = TE_BUF_INIT(4 * TS_JOB_FIELD_MAX);
	ts_job_request req = {project, tag, commit, NULL, "find"};
	struct qjob *j;
	char lower[41];
	int rc;

	id_out[0] = '\0';
	*found = false;
	rc = ts_job__request_valid(&req, err);
	if (rc < 0)
		return rc;
	ts_job__lower_commit(lower, commit);
	pthread_mutex_lock(&q->mu);
	j = find_existing(q, &req, lower, &key, err);
	if (j) {
		memcpy(id_out, j->job.id, TS_JOB_ID_MAX);
		*found = true;
	}
	pthread_mutex_unlock(&q->mu);
	te_buf_dispose(&key);
	return 0;
}

static int jq_submit_nowait(char id_out[TS_JOB_ID_MAX],
                            ts_submit_outcome *outcome, ts_queue_ticket *ticket,
                            ts_queue *base, const ts_job_request *req,
                            int64_t now, te_error *err)
{
	jqueue *q = (jqueue *)base;
	te_buf key = TE_BUF_INIT(4 * TS_JOB_FIELD_MAX);
	struct qjob *j = NULL, *found;
	char commit[41];
	char *line = NULL;
	size_t len = 0;
	uint64_t gen;
	int rc;

	id_out[0] = '\0';
	*outcome = TS_SUBMIT_NEW;
	memset(ticket, 0, sizeof(*ticket));
	rc = ts_job__request_valid(req, err);
	if (rc < 0)
		goto done;
	ts_job__lower_commit(commit, req->commit);
	j = new_job(req, commit, now, err);
	if (!j) {
		rc = err->code;
		goto done;
	}

	pthread_mutex_lock(&q->mu);
	found = find_existing(q, req, commit, &key, err);
	if (found) {
		memcpy(id_out, found->job.id, TS_JOB_ID_MAX);
		*outcome = TS_SUBMIT_EXISTING;
		/* Its journal line or its last update may not be synced. */
		ticket->journal_gen = found->jgen;
		ticket->dir_gen = found->gen;
		if (found->job.state == TS_JOB_FAILED)
			rc = requeue_failed(outcome, ticket, q, id_out, now,
			                    err);
		goto unlock;
	}
	rc = new_id(j->job.id, q, now, err);
	if (rc == 0)
		rc = job_line(&line, &len, &j->job, err);
	if (rc == 0)
		rc = add_job(q, j, err);
	if (rc < 0)
		goto unlock;
	/* Invariant 4: one write under the lock; the sync is shared. */
	rc = ts_journal_append(&j->seg, &j->jpos, &gen, q->journal, line, len,
	                       err);
	if (rc < 0) {
		remove_job(q, j);
		goto unlock;
	}
	j->has_jpos = true;
	j->jgen = ticket->journal_gen = gen;
	memcpy(id_out, j->job.id, TS_JOB_ID_MAX);
	j = NULL; /* owned by the queue now */
unlock:
	pthread_mutex_unlock(&q->mu);
done:
	qjob_free(j); /* NULL once the queue owns it */
	free(line);
	te_buf_dispose(&key);
	return rc;
}

static int jq_wait(ts_queue *base, const ts_queue_ticket *ticket, te_error *err)
{
	jqueue *q = (jqueue *)base;
	int rc;

	pthread_mutex_lock(&q->mu);
	/* A full segment is replaced here, off the submit path (and away
	 * from a torn line after a failed append). */
	ts_journal_rotate(q->journal);
	rc = ts_journal_sync(q->journal, ticket->journal_gen, err);
	if (rc == 0)
		rc = sync_dir(q, ticket->dir_gen, err);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

/* With q->mu held: the job by id, or NULL. */
static struct qjob *lookup(jqueue *q, const char *id)
{
	if (!id || !ts_job__id_valid(id))
		return NULL;
	return ts_qmap_get(&q->by_id, id);
}

static bool older(const struct qjob *a, const struct qjob *b)
{
	if (a->job.created_at != b->job.created_at)
		return a->job.created_at < b->job.created_at;
	return strcmp(a->job.id, b->job.id) < 0;
}

static int jq_claim(ts_job **out, ts_queue *base, int64_t now, te_error *err)
{
	jqueue *q = (jqueue *)base;
	struct qjob *best = NULL;
	ts_job next;
	size_t i;
	int rc;

	*out = NULL;
	memset(&next, 0, sizeof(next));
	pthread_mutex_lock(&q->mu);
	for (i = 0; i < q->njobs; i++) {
		struct qjob *j = q->jobs[i];

		if (j->busy || j->job.state != TS_JOB_QUEUED ||
		    j->job.not_before > now)
			continue;
		if (!best || older(j, best))
			best = j;
	}
	if (!best) {
		rc = 0;
		goto done;
	}
	rc = ts_job__copy(&next, &best->job, err);
	if (rc < 0) {
		ts_job__dispose(&next);
		goto done;
	}
	if ((rc = ts_job__claimed(&next, now, q->base.instance, err)) < 0) {
		ts_job__dispose(&next);
		goto done;
	}
	best->busy = true;
	rc = commit_update(q, best, &next, err);
	if (rc == 0)
		rc = ts_job__dup(out, &best->job, err);
done:
	pthread_mutex_unlock(&q->mu);
	return rc;
}

/* With q->mu held: wait until the job is idle and mark it busy; a deep
 * copy of its content goes to next.  TE_ENOTFOUND for unknown ids. */
static int begin_update(struct qjob **out, ts_job *next, jqueue *q,
                        const char *id, te_error *err)
{
	struct qjob *j;
	int rc;

	memset(next, 0, sizeof(*next));
	for (;;) {
		j = lookup(q, id);
		if (!j)
			return te_error_set(err, TE_ENOTFOUND,
			                    "queue: no such job");
		if (!j->busy)
			break;
		pthread_cond_wait(&q->cv, &q->mu);
	}
	rc = ts_job__copy(next, &j->job, err);
	if (rc < 0) {
		ts_job__dispose(next);
		return rc;
	}
	j->busy = true;
	*out = j;
	return 0;
}

/* Undo begin_update without writing. */
static void abort_update(jqueue *q, struct qjob *j, ts_job *next)
{
	ts_job__dispose(next);
	j->busy = false;
	pthread_cond_broadcast(&q->cv);
}

static int jq_finish(ts_queue *base, const char *id, bool success,
                     const char *error, const te_strvec *results,
                     const char *log, int64_t retry_at, int64_t now,
                     te_error *err)
{
	jqueue *q = (jqueue *)base;
	struct qjob *j = NULL;
	ts_job next;
	int rc;

	pthread_mutex_lock(&q->mu);
	rc = begin_update(&j, &next, q, id, err);
	if (rc < 0)
		goto done;
	if (next.state != TS_JOB_RUNNING) {
		abort_update(q, j, &next);
		rc = te_error_set(err, TE_EINVALID,
		                  "queue: job %s is not running", next.id);
		goto done;
	}
	rc = ts_job__finish(&next, success, error, results, log, retry_at, now,
	                    err);
	if (rc < 0) {
		abort_update(q, j, &next);
		goto done;
	}
	rc = commit_update(q, j, &next, err);
done:
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int jq_requeue(ts_queue *base, const char *id, int64_t now,
                      te_error *err)
{
	jqueue *q = (jqueue *)base;
	struct qjob *j = NULL;
	ts_job next;
	int rc;

	pthread_mutex_lock(&q->mu);
	rc = begin_update(&j, &next, q, id, err);
	if (rc < 0)
		goto done;
	if (next.state != TS_JOB_RUNNING) {
		abort_update(q, j, &next);
		rc = te_error_set(err, TE_EINVALID,
		                  "queue: job %s is not running", next.id);
		goto done;
	}
	ts_job__given_back(&next, now);
	rc = commit_update(q, j, &next, err);
done:
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int jq_retry(ts_queue *base, const char *id, int64_t now, te_error *err)
{
	jqueue *q = (jqueue *)base;
	struct qjob *j = NULL;
	ts_job next;
	int rc;

	pthread_mutex_lock(&q->mu);
	rc = begin_update(&j, &next, q, id, err);
	if (rc < 0)
		goto done;
	if (next.state != TS_JOB_FAILED && next.state != TS_JOB_SUCCEEDED) {
		abort_update(q, j, &next);
		rc = te_error_set(err, TE_EINVALID,
		                  "queue: job %s is %s, not finished", next.id,
		                  ts_job_state_str(next.state));
		goto done;
	}
	ts_job__requeued(&next, now);
	rc = commit_update(q, j, &next, err);
done:
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int jq_get(ts_job **out, ts_queue *base, const char *id, te_error *err)
{
	jqueue *q = (jqueue *)base;
	struct qjob *j;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&q->mu);
	j = lookup(q, id);
	if (j)
		rc = ts_job__dup(out, &j->job, err);
	else
		rc = te_error_set(err, TE_ENOTFOUND, "queue: no such job");
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int jq_state(ts_job_state *out, ts_queue *base, const char *id,
                    te_error *err)
{
	jqueue *q = (jqueue *)base;
	struct qjob *j;
	int rc = 0;

	pthread_mutex_lock(&q->mu);
	j = lookup(q, id);
	if (j)
		*out = j->job.state;
	else
		rc = te_error_set(err, TE_ENOTFOUND, "queue: no such job");
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int newest_first(const void *a, const void *b)
{
	const struct qjob *ja = *(const struct qjob *const *)a;
	const struct qjob *jb = *(const struct qjob *const *)b;

	if (older(ja, jb))
		return 1;
	if (older(jb, ja))
		return -1;
	return 0;
}

static int jq_list(ts_job ***out, size_t *count, ts_queue *base, size_t limit,
                   te_error *err)
{
	jqueue *q = (jqueue *)base;
	struct qjob **snap = NULL;
	ts_job **jobs = NULL;
	size_t n = 0, i, got = 0;
	int rc = 0;

	*out = NULL;
	*count = 0;
	pthread_mutex_lock(&q->mu);
	snap = malloc((q->njobs ? q->njobs : 1) * sizeof(*snap));
	if (!snap) {
		rc = te_error_set(err, TE_ENOMEM, "queue: out of memory");
		goto done;
	}
	for (i = 0; i < q->njobs; i++)
		snap[n++] = q->jobs[i];
	qsort(snap, n, sizeof(*snap), newest_first);
	if (limit > 0 && n > limit)
		n = limit;
	jobs = calloc(n ? n : 1, sizeof(*jobs));
	if (!jobs) {
		rc = te_error_set(err, TE_ENOMEM, "queue: out of memory");
		goto done;
	}
	for (got = 0; got < n; got++) {
		rc = ts_job__dup(&jobs[got], &snap[got]->job, err);
		if (rc < 0)
			goto done;
	}
	*out = jobs;
	*count = n;
	jobs = NULL;
done:
	pthread_mutex_unlock(&q->mu);
	ts_queue_list_free(jobs, got);
	free(snap);
	return rc;
}

static void jq_counts(size_t counts[4], ts_queue *base)
{
	jqueue *q = (jqueue *)base;
	size_t i;

	memset(counts, 0, 4 * sizeof(counts[0]));
	pthread_mutex_lock(&q->mu);
	for (i = 0; i < q->njobs; i++)
		if ((unsigned)q->jobs[i]->job.state < 4)
			counts[q->jobs[i]->job.state]++;
	pthread_mutex_unlock(&q->mu);
}

static bool prunable(const struct qjob *j, int64_t before)
{
	return !j->busy && j->job.updated_at < before &&
	       (j->job.state == TS_JOB_SUCCEEDED ||
	        j->job.state == TS_JOB_FAILED);
}

static int jq_prune(size_t *removed, ts_queue *base, int64_t before,
                    te_error *err)
{
	jqueue *q = (jqueue *)base;
	struct qjob **gone = NULL;
	ts_journal_pos *lines = NULL;
	size_t i, n = 0, nlines = 0;
	char name[TS_JOB_ID_MAX + 8];
	int rc;

	*removed = 0;
	pthread_mutex_lock(&q->mu);
	for (i = 0; i < q->njobs; i++)
		n += prunable(q->jobs[i], before);
	if (n == 0) {
		pthread_mutex_unlock(&q->mu);
		return 0;
	}
	gone = malloc(n * sizeof(*gone));
	lines = malloc(n * sizeof(*lines));
	if (!gone || !lines) {
		pthread_mutex_unlock(&q->mu);
		free(gone);
		free(lines);
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	}
	/* Out of the maps and the list under the lock; the files go after
	 * it, so a long prune never holds up a submit. */
	n = 0;
	for (i = 0; i < q->njobs;) {
		struct qjob *j = q->jobs[i];

		if (!prunable(j, before)) {
			i++;
			continue;
		}
		unindex_job(q, j);
		q->jobs[i] = q->jobs[--q->njobs];
		if (j->seg)
			ts_journal_release(q->journal, j->seg);
		if (j->has_jpos)
			lines[nlines++] = j->jpos;
		gone[n++] = j;
	}
	pthread_mutex_unlock(&q->mu);
	/* Without its file, a job's submit line would bring it back at the
	 * next open: cancel the lines first, then delete the files.  If
	 * that fails, the files stay and the jobs come back then. */
	rc = ts_journal_cancel(q->journal, lines, nlines, err);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s.json", gone[i]->job.id);
		if (rc == 0)
			unlinkat(q->jobs_fd, name, 0);
		qjob_free(gone[i]);
	}
	free(gone);
	free(lines);
	*removed = n;
	return rc;
}

/* A counter read under the lock. */
static size_t read_counter(jqueue *q, const size_t *counter)
{
	size_t n;

	pthread_mutex_lock(&q->mu);
	n = *counter;
	pthread_mutex_unlock(&q->mu);
	return n;
}

static size_t jq_corrupt_count(ts_queue *base)
{
	jqueue *q = (jqueue *)base;
	return read_counter(q, &q->corrupt_count);
}

/* The test hooks answer for the journal driver only. */
static jqueue *journal_of(ts_queue *base)
{
	return base->ops == &jq_ops ? (jqueue *)base : NULL;
}

size_t ts_queue__fsync_count(ts_queue *base)
{
	jqueue *q = journal_of(base);
	return read_counter(q, &q->fsync_count);
}

size_t ts_queue__write_count(ts_queue *base)
{
	jqueue *q = journal_of(base);
	return read_counter(q, &q->write_count);
}

size_t ts_queue__sync_count(ts_queue *base)
{
	jqueue *q = journal_of(base);
	size_t n;

	pthread_mutex_lock(&q->mu);
	n = q->sync_count + ts_journal__sync_count(q->journal);
	pthread_mutex_unlock(&q->mu);
	return n;
}

void ts_queue__set_journal_limit(ts_queue *base, size_t limit)
{
	jqueue *q = journal_of(base);
	pthread_mutex_lock(&q->mu);
	ts_journal__set_limit(q->journal, limit);
	pthread_mutex_unlock(&q->mu);
}

size_t ts_queue__journal_segments(ts_queue *base)
{
	jqueue *q = journal_of(base);
	size_t n;

	pthread_mutex_lock(&q->mu);
	n = ts_journal__segments(q->journal);
	pthread_mutex_unlock(&q->mu);
	return n;
}

static const struct ts_queue_ops jq_ops = {
    .name = "journal",
    .free = jq_free,
    .corrupt_count = jq_corrupt_count,
    .submit_nowait = jq_submit_nowait,
    .wait = jq_wait,
    .claim = jq_claim,
    .finish = jq_finish,
    .requeue = jq_requeue,
    .retry = jq_retry,
    .get = jq_get,
    .find = jq_find,
    .state = jq_state,
    .list = jq_list,
    .counts = jq_counts,
    .prune = jq_prune,
};
