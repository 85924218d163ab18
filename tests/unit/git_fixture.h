/*
 * git_fixture.h - test repositories built with libgit2 in mkdtemp
 * directories, shared by the unit tests that need real commits.  Header
 * only (static functions) so each test program stays one file.
 */
#ifndef TE_TEST_GIT_FIXTURE_H
#define TE_TEST_GIT_FIXTURE_H
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

typedef struct th_file {
	const char *path;
	const char *data;  /* NULL: remove the path from the index */
	unsigned int mode; /* 0100644, 0100755, 0120000 (data = target) */
} th_file;

static inline void th_check(int rc, const char *what)
{
	if (rc < 0) {
		const git_error *e = git_error_last();

		fprintf(stderr, "%s: %s\n", what, e ? e->message : "?");
		abort();
	}
}

static inline char *th_tmpdir(void)
{
	char tmpl[] = "/tmp/te-test-XXXXXX";
	char *d = mkdtemp(tmpl);

	if (!d)
		abort();
	return strdup(d);
}

static inline git_repository *th_init(const char *dir)
{
	git_repository *repo;
	git_config *cfg;

	th_check(git_repository_init(&repo, dir, 0), "init");
	th_check(git_repository_config(&cfg, repo), "config");
	th_check(git_config_set_string(cfg, "user.name", "t"), "cfg");
	th_check(git_config_set_string(cfg, "user.email", "t@e"), "cfg");
	git_config_free(cfg);
	return repo;
}

/* Stage files (on top of the current index) and commit on HEAD; out gets
 * the 40-hex commit id. */
static inline void th_commit(char out[41], git_repository *repo,
                             const th_file *files, size_t n, const char *msg)
{
	git_signature *sig;
	git_index *index;
	git_tree *tree;
	git_oid tree_id, commit_id;
	git_commit *parent = NULL;
	git_object *head = NULL;
	size_t i;

	th_check(git_repository_index(&index, repo), "index");
	for (i = 0; i < n; i++) {
		git_index_entry e;

		if (!files[i].data) {
			th_check(git_index_remove_bypath(index, files[i].path),
			         "remove");
			continue;
		}
		memset(&e, 0, sizeof(e));
		e.path = files[i].path;
		e.mode = files[i].mode ? files[i].mode : 0100644;
		th_check(git_index_add_from_buffer(index, &e, files[i].data,
		                                   strlen(files[i].data)),
		         "add");
	}
	th_check(git_index_write(index), "index write");
	th_check(git_index_write_tree(&tree_id, index), "write tree");
	th_check(git_tree_lookup(&tree, repo, &tree_id), "tree");
	th_check(git_signature_new(&sig, "t", "t@e", 1700000000, 0), "sig");
	if (git_revparse_single(&head, repo, "HEAD^{commit}") == 0)
		parent = (git_commit *)head;
	th_check(git_commit_create_v(&commit_id, repo, "HEAD", sig, sig, NULL,
	                             msg, tree, parent ? 1 : 0, parent),
	         "commit");
	git_oid_tostr(out, 41, &commit_id);
	git_object_free(head);
	git_signature_free(sig);
	git_tree_free(tree);
	git_index_free(index);
}

static inline void th_write(const char *dir, const char *name, const char *data)
{
	char path[4096];
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		abort();
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(data, f);
	fclose(f);
}

static inline int th_rm_one(const char *path, const struct stat *st, int flag,
                            struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static inline void th_rm_rf(const char *dir)
{
	nftw(dir, th_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
