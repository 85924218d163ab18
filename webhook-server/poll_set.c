/*
 * poll_set.c - the seen-tags file of a project's poller (poll_set.h).
 */
#include "poll_set.h"
#include "forge.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tagexport/fs.h"
#include "tagexport/mirror.h"

/* 40 hex + ' ' + a tag + '\n', for every tag */
#define SET_FILE_MAX ((size_t)TS_POLL_TAGS_MAX * (TE_MIRROR_TAG_MAX + 42))

static bool hex40(const char *s, size_t n)
{
	size_t i;

	if (n != 40)
		return false;
	for (i = 0; i < 40; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int parse_line(te_strvec *names, te_strvec *commits, const char *line,
                      size_t n, size_t lineno, te_error *err)
{
	char name[TE_MIRROR_TAG_MAX + 1], hex[41];
	size_t tag_len = n > 41 ? n - 41 : 0;

	if (n < 42 || line[40] != ' ' || !hex40(line, 40) ||
	    tag_len > TE_MIRROR_TAG_MAX)
		return te_error_set(err, TE_EINVALID,
		                    "poll set: line %zu is not \"<commit> "
		                    "<tag>\"",
		                    lineno);
	memcpy(hex, line, 40);
	hex[40] = '\0';
	memcpy(name, line + 41, tag_len);
	name[tag_len] = '\0';
	if (memchr(name, '\0', tag_len) || !ts_tag_name_valid(name))
		return te_error_set(
		    err, TE_EINVALID,
		    "poll set: line %zu has an invalid tag name", lineno);
	if (te_strvec_push(names, name, err) < 0 ||
	    te_strvec_push(commits, hex, err) < 0)
		return err->code;
	return 0;
}

int ts_poll_set_parse(te_strvec *names, te_strvec *commits, const char *data,
                      size_t len, te_error *err)
{
	size_t off = 0, lineno = 0;
	int rc;

	while (off < len) {
		const char *nl = memchr(data + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (data + off)) : len - off;

		if (!nl)
			return te_error_set(err, TE_EINVALID,
			                    "poll set: last line is cut");
		if (++lineno > TS_POLL_TAGS_MAX)
			return te_error_set(err, TE_EINVALID,
			                    "poll set: more than %d tags",
			                    TS_POLL_TAGS_MAX);
		rc = parse_line(names, commits, data + off, n, lineno, err);
		if (rc < 0)
			return rc;
		off += n + 1;
	}
	return 0;
}

int ts_poll_set_format(te_buf *out, const te_strvec *names,
                       const te_strvec *commits, te_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < names->count; i++)
		rc = te_buf_printf(out, err, "%s %s\n", commits->items[i],
		                   names->items[i]);
	return rc;
}

struct pair {
	char *name, *commit;
};

static int pair_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pair *)a)->name,
	              ((const struct pair *)b)->name);
}

void ts_poll_set_sort(te_strvec *names, te_strvec *commits)
{
	struct pair *p = calloc(names->count ? names->count : 1, sizeof(*p));
	size_t i;

	if (!p)
		return; /* unsorted: lookups miss, tags look new (deduped) */
	for (i = 0; i < names->count; i++) {
		p[i].name = names->items[i];
		p[i].commit = commits->items[i];
	}
	qsort(p, names->count, sizeof(*p), pair_cmp);
	for (i = 0; i < names->count; i++) {
		names->items[i] = p[i].name;
		commits->items[i] = p[i].commit;
	}
	free(p);
}

bool ts_poll_set_has(const te_strvec *names, const te_strvec *commits,
                     const char *name, const char *commit)
{
	size_t lo = 0, hi = names->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(names->items[mid], name);
		if (c == 0)
			return !strcmp(commits->items[mid], commit);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

int ts_poll_set_load(te_strvec *names, te_strvec *commits, bool *found,
                     const char *dir, const char *project, te_error *err)
{
	te_buf path = TE_BUF_INIT(4096), text = TE_BUF_INIT(SET_FILE_MAX);
	int fd = -1, rc;

	*found = false;
	rc = te_buf_printf(&path, err, "%s/%s.tags", dir, project);
	if (rc < 0)
		goto done;
	fd = open(path.ptr, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		goto done;
	if (fd < 0 || te_fs_read_all(&text, fd, NULL) < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "cannot read %s",
		                        path.ptr);
		goto done;
	}
	*found = true;
	rc = ts_poll_set_parse(names, commits, text.ptr, text.len, err);
	if (rc < 0)
		te_error_wrap(err, "%s", path.ptr);
	else
		ts_poll_set_sort(names, commits);
done:
	if (fd >= 0)
		close(fd);
	te_buf_dispose(&path);
	te_buf_dispose(&text);
	return rc;
}

int ts_poll_set_save(const char *dir, const char *project,
                     const te_strvec *names, const te_strvec *commits,
                     te_error *err)
{
	te_buf path = TE_BUF_INIT(4096), text = TE_BUF_INIT(SET_FILE_MAX);
	int rc;

	if ((rc = te_fs_mkdirs(dir, err)) < 0 ||
	    (rc = te_buf_printf(&path, err, "%s/%s.tags", dir, project)) < 0 ||
	    (rc = ts_poll_set_format(&text, names, commits, err)) < 0)
		goto done;
	rc = te_fs_write_atomic(path.ptr, text.ptr, text.len, 0600, err);
done:
	te_buf_dispose(&path);
	te_buf_dispose(&text);
	return rc;
}
