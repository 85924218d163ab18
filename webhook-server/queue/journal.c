/*
 * journal.c - the queue's segmented submit journal
 * (queue/journal.h).
 *
 * Invariants:
 *  1. Generations: every appended line takes the next generation; lines
 *     of older segments have smaller generations than lines of newer
 *     ones.  synced_gen is the highest generation known to be on disk.
 *  2. Group commit: a caller of ts_journal_sync that finds no sync
 *     running becomes the leader: it samples appended_gen, marks the
 *     segments holding unsynced lines (at most SYNC_BATCH, oldest first)
 *     as syncing, drops the lock, fdatasyncs them, and publishes the
 *     sample (or the last line of the last segment it synced) as
 *     synced_gen.  Followers wait; one fdatasync covers every line
 *     appended before it started.
 *  3. A segment's descriptor is closed only when the segment is sealed,
 *     synced and not being synced; its file is deleted only after that,
 *     once nothing holds a line in it.  So no descriptor is closed under
 *     a leader, and a deleted segment holds nothing a restart needs.
 *  4. A new segment is durable (created, then the directory fsync'd)
 *     before its first line is appended.
 *  5. A new segment is preallocated to the limit (fallocate, size fixed)
 *     and lines are written at their offset, not appended: an fdatasync
 *     then has no file size to write back, which on ext4 makes it about a
 *     quarter cheaper in time and CPU.  So a segment is lines, then zeros
 *     (or, where fallocate is not supported, just lines): replay stops at
 *     the first NUL, which no line contains.  A failed write leaves the
 *     offset where it was, so the next line overwrites its bytes; what is
 *     left after the last "\n" is a torn tail, skipped at replay.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/journal.h"
#include "tagexport/fs.h"

#define SEGMENT_LIMIT (8 * 1024 * 1024)
#define SYNC_BATCH 8
#define LEGACY_NAME "journal" /* the single journal of earlier versions */
#define SEG_PREFIX "journal."
#define SEG_DIGITS 10 /* at least; zero-padded */
#define SEG_NAME_MAX 32

struct ts_journal_seg {
	uint64_t num; /* 0 = LEGACY_NAME */
	int fd;       /* -1 once sealed and synced (invariant 3) */
	size_t size;
	size_t held;
	uint64_t last_gen; /* of its last line, 0 when none */
	bool sealed;       /* no more appends */
	bool syncing;      /* a leader is in fdatasync on fd */
	ts_journal_seg *next;
};

struct ts_journal {
	int dirfd;
	pthread_mutex_t *mu;
	pthread_cond_t cv;           /* synced_gen and syncing */
	ts_journal_seg *head, *tail; /* oldest first; tail takes appends */
	size_t nsegs;
	uint64_t next_num;
	uint64_t appended_gen, synced_gen;
	bool syncing, rotating;
	size_t limit;
	size_t sync_count;
};

static void seg_name(char name[SEG_NAME_MAX], uint64_t num)
{
	if (num == 0)
		snprintf(name, SEG_NAME_MAX, "%s", LEGACY_NAME);
	else
		snprintf(name, SEG_NAME_MAX, "%s%0*llu", SEG_PREFIX, SEG_DIGITS,
		         (unsigned long long)num);
}

/* "journal" -> 0, "journal.<10 digits>" -> the number, else false. */
static bool seg_parse(uint64_t *num, const char *name)
{
	const char *p;
	uint64_t n = 0;

	if (!strcmp(name, LEGACY_NAME)) {
		*num = 0;
		return true;
	}
	if (strncmp(name, SEG_PREFIX, sizeof(SEG_PREFIX) - 1) != 0)
		return false;
	p = name + sizeof(SEG_PREFIX) - 1;
	if (strlen(p) < SEG_DIGITS || strlen(p) > 19)
		return false;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (n == 0)
		return false;
	*num = n;
	return true;
}

static void seg_link(ts_journal *j, ts_journal_seg *seg)
{
	if (j->tail)
		j->tail->next = seg;
	else
		j->head = seg;
	j->tail = seg;
	j->nsegs++;
	if (seg->num >= j->next_num)
		j->next_num = seg->num + 1;
}

/* ---- open: replay --------------------------------------------------- */

static int cmp_num(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The numbers of the segments in the directory, sorted. */
static int list_segments(uint64_t **out, size_t *count, int dirfd,
                         te_error *err)
{
	uint64_t *nums = NULL, *p, num;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = NULL;
	int fd, rc = 0;

	fd = dup(dirfd);
	if (fd >= 0) {
		d = fdopendir(fd);
		if (!d)
			close(fd);
	}
	if (!d)
		return te_error_set_errno(err, TE_EIO, errno,
		                          "queue: cannot list the journal");
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!seg_parse(&num, de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			p = realloc(nums, cap * sizeof(*nums));
			if (!p) {
				rc = te_error_set(err, TE_ENOMEM,
				                  "queue: out of memory");
				goto done;
			}
			nums = p;
		}
		nums[n++] = num;
	}
	if (n > 1)
		qsort(nums, n, sizeof(*nums), cmp_num);
	*out = nums;
	*count = n;
	nums = NULL;
done:
	free(nums);
	closedir(d);
	return rc;
}

/* Feed the complete lines of seg's file to fn, up to its end or its first
 * NUL (invariant 5).  What is left after the last "\n" is a torn write
 * and is skipped, as is a line longer than TS_JOURNAL_LINE_MAX. */
static int replay_file(ts_journal_seg *seg, int fd, ts_journal_line_fn fn,
                       void *ctx, te_error *err)
{
	char *buf, *nl;
	size_t used = 0, start;
	off_t off = 0;
	bool skipping = false, at_end = false;
	int rc = 0;

	buf = malloc(TS_JOURNAL_LINE_MAX);
	if (!buf)
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	for (;;) {
		ssize_t n =
		    pread(fd, buf + used, TS_JOURNAL_LINE_MAX - used, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = te_error_set_errno(err, TE_EIO, errno,
			                        "queue: cannot read journal");
			break;
		}
		if (n == 0)
			break;
		nl = memchr(buf + used, '\0', (size_t)n);
		if (nl) {
			n = nl - (buf + used); /* the preallocated zeros */
			at_end = true;
		}
		off += n;
		used += (size_t)n;
		start = 0;
		while ((nl = memchr(buf + start, '\n', used - start)) != NULL) {
			size_t end = (size_t)(nl - buf);

			if (!skipping && end > start) {
				ts_journal_pos pos = {
				    seg->num, (uint64_t)off - used + start};
				rc = fn(ctx, seg, &pos, buf + start,
				        end - start, err);
				if (rc < 0)
					goto done;
				if (rc > 0)
					seg->held++;
				rc = 0;
			}
			skipping = false;
			start = end + 1;
		}
		if (at_end)
			break;
		memmove(buf, buf + start, used - start);
		used -= start;
		if (used == TS_JOURNAL_LINE_MAX) {
			skipping = true; /* too long to be ours */
			used = 0;
		}
	}
done:
	free(buf);
	return rc;
}

/* Replay one old segment.  Its lines may not have been synced by the
 * process that wrote them (killed before its fdatasync): sync them now,
 * before anything is built on them. */
static int replay_segment(ts_journal *j, uint64_t num, ts_journal_line_fn fn,
                          void *ctx, te_error *err)
{
	char name[SEG_NAME_MAX];
	ts_journal_seg *seg;
	int fd, rc;

	seg = calloc(1, sizeof(*seg));
	if (!seg)
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	seg->num = num;
	seg->fd = -1;
	seg->sealed = true;
	seg_link(j, seg);
	seg_name(name, num);
	fd = openat(j->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return te_error_set_errno(err, TE_EIO, errno,
		                          "queue: cannot open %s", name);
	rc = replay_file(seg, fd, fn, ctx, err);
	if (rc == 0 && seg->held > 0 && fdatasync(fd) < 0)
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "queue: cannot sync %s", name);
	close(fd);
	return rc;
}

int ts_journal_open(ts_journal **out, int dirfd, pthread_mutex_t *mu,
                    ts_journal_line_fn fn, void *ctx, te_error *err)
{
	ts_journal *j;
	uint64_t *nums = NULL;
	size_t n = 0, i;
	int rc;

	*out = NULL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return te_error_set(err, TE_ENOMEM, "queue: out of memory");
	j->dirfd = dirfd;
	j->mu = mu;
	j->limit = SEGMENT_LIMIT;
	j->next_num = 1;
	pthread_cond_init(&j->cv, NULL);
	rc = list_segments(&nums, &n, dirfd, err);
	for (i = 0; rc == 0 && i < n; i++)
		rc = replay_segment(j, nums[i], fn, ctx, err);
	free(nums);
	if (rc < 0) {
		ts_journal_free(j);
		return rc;
	}
	*out = j;
	return 0;
}

/* ---- segments ------------------------------------------------------- */

/* Close and delete what invariant 3 allows.  With the lock held. */
static void reap(ts_journal *j)
{
	ts_journal_seg **link = &j->head, *seg;
	char name[SEG_NAME_MAX];

	while ((seg = *link) != NULL) {
		if (!seg->sealed || seg->syncing) {
			link = &seg->next;
			continue;
		}
		if (seg->fd >= 0 && seg->last_gen <= j->synced_gen) {
			close(seg->fd);
			seg->fd = -1;
		}
		if (seg->fd >= 0 || seg->held > 0 || seg == j->tail) {
			link = &seg->next;
			continue;
		}
		/* Not synced: if this is lost in a crash, the segment comes
		 * back with lines whose job files win. */
		seg_name(name, seg->num);
		if (unlinkat(j->dirfd, name, 0) < 0 && errno != ENOENT) {
			link = &seg->next;
			continue;
		}
		*link = seg->next;
		j->nsegs--;
		free(seg);
	}
}

/* Create the next segment and make its name durable (invariant 4).
 * Without the lock. */
static ts_journal_seg *new_segment(ts_journal *j, uint64_t num)
{
	char name[SEG_NAME_MAX];
	ts_journal_seg *seg = calloc(1, sizeof(*seg));

	if (!seg)
		return NULL;
	seg->num = num;
	seg_name(name, num);
	seg->fd = openat(j->dirfd, name,
	                 O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	/* Invariant 5; without fallocate lines extend the file instead. */
	if (seg->fd >= 0 && fallocate(seg->fd, 0, 0, (off_t)j->limit) == 0 &&
	    fsync(seg->fd) < 0) {
		close(seg->fd);
		seg->fd = -1;
		unlinkat(j->dirfd, name, 0);
	}
	if (seg->fd < 0 || fsync(j->dirfd) < 0) {
		if (seg->fd >= 0) {
			close(seg->fd);
			unlinkat(j->dirfd, name, 0);
		}
		free(seg);
		return NULL;
	}
	return seg;
}

int ts_journal_start(ts_journal *j, te_error *err)
{
	ts_journal_seg *seg;
	int saved;

	pthread_mutex_lock(j->mu);
	reap(j);
	pthread_mutex_unlock(j->mu);
	seg = new_segment(j, j->next_num);
	saved = errno;
	pthread_mutex_lock(j->mu);
	if (seg) {
		if (j->tail)
			j->tail->sealed = true;
		seg_link(j, seg);
		reap(j);
	}
	pthread_mutex_unlock(j->mu);
	if (!seg)
		return te_error_set_errno(err, TE_EIO, saved,
		                          "queue: cannot start a journal "
		                          "segment");
	return 0;
}

void ts_journal_rotate(ts_journal *j)
{
	ts_journal_seg *cur = j->tail, *seg;
	uint64_t num;

	if (j->rotating || !cur || (!cur->sealed && cur->size < j->limit))
		return;
	j->rotating = true;
	num = j->next_num++;
	pthread_mutex_unlock(j->mu);
	seg = new_segment(j, num);
	pthread_mutex_lock(j->mu);
	j->rotating = false;
	if (!seg)
		return;
	j->sync_count++; /* the directory fsync */
	j->tail->sealed = true;
	seg_link(j, seg);
	reap(j);
}

int ts_journal_append(ts_journal_seg **seg, ts_journal_pos *pos, uint64_t *gen,
                      ts_journal *j, const char *line, size_t len,
                      te_error *err)
{
	ts_journal_seg *cur = j->tail;

	if (!cur || cur->sealed || cur->fd < 0)
		return te_error_set(err, TE_EIO,
		                    "queue: no writable journal segment");
	if (te_fs_pwrite_all(cur->fd, line, len, (off_t)cur->size) == 0) {
		pos->seg = cur->num;
		pos->off = cur->size;
		cur->size += len;
		cur->last_gen = *gen = ++j->appended_gen;
		cur->held++;
		*seg = cur;
		return 0;
	}
	/* Invariant 5: the next line goes to the same offset. */
	return te_error_set_errno(err, TE_EIO, errno,
	                          "queue: cannot write journal");
}

int ts_journal_sync(ts_journal *j, uint64_t gen, te_error *err)
{
	while (j->synced_gen < gen) {
		ts_journal_seg *batch[SYNC_BATCH], *seg;
		uint64_t target = j->appended_gen;
		size_t n = 0, i;
		int r = 0, saved = 0;

		if (j->syncing) {
			pthread_cond_wait(&j->cv, j->mu);
			continue;
		}
		for (seg = j->head; seg; seg = seg->next) {
			if (seg->fd < 0 || seg->last_gen <= j->synced_gen)
				continue;
			if (n == SYNC_BATCH) {
				target = batch[n - 1]->last_gen;
				break;
			}
			seg->syncing = true;
			batch[n++] = seg;
		}
		j->syncing = true;
		pthread_mutex_unlock(j->mu);
		for (i = 0; i < n && r == 0; i++) {
			r = fdatasync(batch[i]->fd);
			saved = errno;
		}
		pthread_mutex_lock(j->mu);
		j->syncing = false;
		j->sync_count += i;
		for (i = 0; i < n; i++)
			batch[i]->syncing = false;
		if (r == 0 && target > j->synced_gen)
			j->synced_gen = target;
		pthread_cond_broadcast(&j->cv);
		reap(j);
		if (r < 0)
			return te_error_set_errno(err, TE_EIO, saved,
			                          "queue: cannot sync journal");
	}
	return 0;
}

void ts_journal_release(ts_journal *j, ts_journal_seg *seg)
{
	if (seg->held > 0)
		seg->held--;
	if (seg->held == 0 && seg->sealed)
		reap(j);
}

static int cmp_pos(const void *a, const void *b)
{
	const ts_journal_pos *x = a, *y = b;

	if (x->seg != y->seg)
		return x->seg < y->seg ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Cancel the lines of one segment: pos[0..n) all in pos[0].seg. */
static int cancel_in(ts_journal *j, const ts_journal_pos *pos, size_t n,
                     te_error *err)
{
	char name[SEG_NAME_MAX];
	size_t i;
	int fd, rc = 0;

	seg_name(name, pos[0].seg);
	fd = openat(j->dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0; /* deleted: its lines are gone */
	if (fd < 0)
		return te_error_set_errno(err, TE_EIO, errno,
		                          "queue: cannot open %s", name);
	for (i = 0; i < n && rc == 0; i++)
		if (pwrite(fd, "x", 1, (off_t)pos[i].off) != 1)
			rc = te_error_set_errno(err, TE_EIO, errno,
			                        "queue: cannot write %s", name);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "queue: cannot sync %s", name);
	close(fd);
	return rc;
}

int ts_journal_cancel(ts_journal *j, ts_journal_pos *pos, size_t n,
                      te_error *err)
{
	size_t i = 0, k;
	int rc = 0;

	if (n > 1)
		qsort(pos, n, sizeof(*pos), cmp_pos);
	while (rc == 0 && i < n) {
		for (k = i; k < n && pos[k].seg == pos[i].seg; k++)
			;
		rc = cancel_in(j, pos + i, k - i, err);
		i = k;
	}
	return rc;
}

void ts_journal_free(ts_journal *j)
{
	ts_journal_seg *seg, *next;

	if (!j)
		return;
	for (seg = j->head; seg; seg = next) {
		next = seg->next;
		if (seg->fd >= 0)
			close(seg->fd);
		free(seg);
	}
	pthread_cond_destroy(&j->cv);
	free(j);
}

void ts_journal__set_limit(ts_journal *j, size_t limit)
{
	j->limit = limit;
}

size_t ts_journal__sync_count(const ts_journal *j)
{
	return j->sync_count;
}

size_t ts_journal__segments(const ts_journal *j)
{
	return j->nsegs;
}
