/*
 * mirror_refs.c - tag listing of a bare mirror (mirror_refs.h).
 */
#include "mirror_refs.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 16
#define MAX_TAGS 100000

static bool hex40(const char *s)
{
	size_t i;

	for (i = 0; i < 40; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int add(te_strvec *names, te_strvec *oids, const char *name,
               const char *oid, te_error *err)
{
	char o[41];
	size_t i;

	memcpy(o, oid, 40);
	o[40] = '\0';
	for (i = 0; i < names->count; i++)
		if (!strcmp(names->items[i], name)) {
			memcpy(oids->items[i], o, 41);
			return 0;
		}
	if (names->count >= MAX_TAGS)
		return 0;
	if (te_strvec_push(names, name, err) < 0 ||
	    te_strvec_push(oids, o, err) < 0)
		return TE_ENOMEM;
	return 0;
}

static int read_small(char *buf, size_t cap, int dirfd_, const char *name)
{
	int fd = openat(dirfd_, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

static int walk(te_strvec *names, te_strvec *oids, int dfd, const char *prefix,
                int depth, te_error *err)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (depth > MAX_DEPTH) {
		close(dfd);
		return 0;
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0;
	}
	while (rc == 0 && (de = readdir(d))) {
		char name[512], buf[128];
		size_t len = strlen(de->d_name);
		struct stat st;

		if (de->d_name[0] == '.' ||
		    (len >= 5 && !strcmp(de->d_name + len - 5, ".lock")))
			continue;
		if (snprintf(name, sizeof(name), "%s%s", prefix, de->d_name) >=
		    (int)sizeof(name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), de->d_name,
			                 O_RDONLY | O_DIRECTORY | O_CLOEXEC |
			                     O_NOFOLLOW);
			char sp[520];
			if (sub < 0)
				continue;
			snprintf(sp, sizeof(sp), "%s/", name);
			rc = walk(names, oids, sub, sp, depth + 1, err);
		} else if (S_ISREG(st.st_mode)) {
			if (read_small(buf, sizeof(buf), dirfd(d),
			               de->d_name) >= 40 &&
			    hex40(buf))
				rc = add(names, oids, name, buf, err);
		}
	}
	closedir(d);
	return rc;
}

int ts_mirror_tags(te_strvec *names, te_strvec *oids, const char *git_dir,
                   te_error *err)
{
	char path[4096], line[1024];
	FILE *f;
	int dfd, rc = 0;

	if (snprintf(path, sizeof(path), "%s/packed-refs", git_dir) >=
	    (int)sizeof(path))
		return te_error_set(err, TE_EINVALID, "mirror path too long");
	f = fopen(path, "re");
	if (f) {
		while (rc == 0 && fgets(line, sizeof(line), f)) {
			size_t len = strlen(line);
			while (len &&
			       (line[len - 1] == '\n' || line[len - 1] == '\r'))
				line[--len] = '\0';
			if (len > 51 && hex40(line) && line[40] == ' ' &&
			    !strncmp(line + 41, "refs/tags/", 10))
				rc = add(names, oids, line + 51, line, err);
		}
		fclose(f);
		if (rc < 0)
			return rc;
	}
	snprintf(path, sizeof(path), "%s/refs/tags", git_dir);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT
		           ? 0
		           : te_error_set_errno(err, TE_EIO, errno,
		                                "cannot read %s", path);
	return walk(names, oids, dfd, "", 0, err);
}
