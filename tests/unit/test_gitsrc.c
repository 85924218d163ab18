/*
 * test_gitsrc.c - te_gitsrc against real repositories built with libgit2
 * in mkdtemp directories.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "git_fixture.h"
}

#include "tagexport/gitsrc.h"

static char *base_dir;
static git_repository *repo;
static char c1[41], c2[41];

static int setup(void **state)
{
	te_error err = TE_ERROR_INIT;
	const th_file first[] = {
	    {"proj/Dockerfile", "FROM scratch\n", 0},
	    {"proj/run.sh", "#!/bin/sh\necho hi\n", 0100755},
	    {"proj/b", "b\n", 0},
	    {"proj/a.txt", "a\n", 0},
	    {"proj/a/x", "ax\n", 0},
	    {"proj/a-b", "ab\n", 0},
	    {"proj/a0", "a0\n", 0},
	    {"proj/link", "a/x", 0120000},
	    {"proj/evil", "../../etc", 0120000},
	    {"proj/abs", "/etc/passwd", 0120000},
	    {"proj/deep/ok", "../a/x", 0120000},
	    {"proj/deep/bad", "../../x", 0120000},
	    {"top.txt", "top\n", 0},
	};
	const th_file second[] = {
	    {"proj/b", "b2\n", 0},
	};
	git_object *obj;
	git_signature *sig;
	git_oid tag_id;
	git_index *index;
	git_index_entry e;
	git_reference *branch;

	(void)state;
	assert_int_equal(te_gitsrc_global_init(&err), 0);
	base_dir = th_tmpdir();
	repo = th_init(base_dir);
	th_commit(c1, repo, first, sizeof(first) / sizeof(first[0]), "one");

	/* a gitlink (submodule) entry: skipped by walk */
	th_check(git_repository_index(&index, repo), "index");
	memset(&e, 0, sizeof(e));
	e.path = "proj/sub";
	e.mode = 0160000;
	git_oid_fromstr(&e.id, c1);
	th_check(git_index_add(index, &e), "gitlink");
	th_check(git_index_write(index), "index write");
	git_index_free(index);

	th_check(git_revparse_single(&obj, repo, c1), "rev");
	th_check(git_signature_new(&sig, "t", "t@e", 1700000000, 0), "sig");
	th_check(git_tag_create(&tag_id, repo, "v1.0", obj, sig, "release", 0),
	         "tag");
	th_check(
	    git_branch_create(&branch, repo, "feature", (git_commit *)obj, 0),
	    "branch");
	git_reference_free(branch);
	git_signature_free(sig);
	git_object_free(obj);
	th_commit(c2, repo, second, 1, "two");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	git_repository_free(repo);
	th_rm_rf(base_dir);
	free(base_dir);
	return 0;
}

static te_gitsrc *open_proj(void)
{
	te_error err = TE_ERROR_INIT;
	te_gitsrc *src = NULL;
	char dir[4096];

	if (snprintf(dir, sizeof(dir), "%s/proj", base_dir) >= (int)sizeof(dir))
		abort();
	mkdir(dir, 0755);
	assert_int_equal(te_gitsrc_open(&src, dir, &err), 0);
	return src;
}

static void resolve_revisions(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_gitsrc *src = open_proj();
	char commit[41];
	char *tag = NULL;

	(void)state;
	assert_int_equal(te_gitsrc_resolve(commit, &tag, src, NULL, &err), 0);
	assert_string_equal(commit, c2);
	assert_null(tag);
	assert_int_equal(te_gitsrc_resolve(commit, &tag, src, "feature", &err),
	                 0);
	assert_string_equal(commit, c1);
	assert_null(tag);
	assert_int_equal(te_gitsrc_resolve(commit, &tag, src, "v1.0", &err), 0);
	assert_string_equal(commit, c1); /* annotated tag peeled */
	assert_string_equal(tag, "v1.0");
	free(tag);
	assert_int_equal(
	    te_gitsrc_resolve(commit, &tag, src, "refs/tags/v1.0", &err), 0);
	assert_string_equal(commit, c1);
	assert_string_equal(tag, "v1.0");
	free(tag);
	assert_int_equal(te_gitsrc_resolve(commit, &tag, src, c1, &err), 0);
	assert_string_equal(commit, c1);
	assert_null(tag);
	assert_int_equal(te_gitsrc_resolve(commit, &tag, src, "HEAD~1", &err),
	                 0);
	assert_string_equal(commit, c1);
	assert_int_equal(
	    te_gitsrc_resolve(commit, &tag, src, "no-such-rev", &err),
	    TE_ENOTFOUND);
	assert_null(tag);
	assert_non_null(strstr(err.msg, "no-such-rev"));
	te_gitsrc_free(src);
}

static void read_files(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_gitsrc *src = open_proj();
	te_buf b = TE_BUF_INIT(1024);

	(void)state;
	assert_int_equal(te_gitsrc_read_file(&b, src, c1, "Dockerfile", &err),
	                 0);
	assert_string_equal(b.ptr, "FROM scratch\n");
	te_buf_clear(&b);
	assert_int_equal(te_gitsrc_read_file(&b, src, c1, "./a//x", &err), 0);
	assert_string_equal(b.ptr, "ax\n");
	te_buf_clear(&b);
	assert_int_equal(te_gitsrc_read_file(&b, src, c2, "b", &err), 0);
	assert_string_equal(b.ptr, "b2\n");
	te_buf_clear(&b);

	assert_int_equal(te_gitsrc_read_file(&b, src, c1, "missing", &err),
	                 TE_ENOTFOUND);
	te_error_clear(&err);
	/* project-relative: the repository root file is not reachable */
	assert_int_equal(te_gitsrc_read_file(&b, src, c1, "../top.txt", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_read_file(&b, src, c1, "a/../b", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_read_file(&b, src, c1, "/etc/passwd", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_read_file(&b, src, c1, "link", &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "symlink"));
	te_error_clear(&err);
	/* a symlink is never followed as a parent either */
	assert_int_equal(te_gitsrc_read_file(&b, src, c1, "evil/passwd", &err),
	                 TE_ENOTFOUND);
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_read_file(&b, src, c1, "a", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(
	    te_gitsrc_read_file(&b, src, "not-a-commit", "b", &err),
	    TE_EINVALID);
	te_error_clear(&err);
	assert_string_equal(b.ptr, "");
	b.max = 4;
	assert_int_equal(te_gitsrc_read_file(&b, src, c1, "run.sh", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	te_buf_dispose(&b);
	te_gitsrc_free(src);
}

static void working_tree_ignored(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_gitsrc *src;
	te_buf b = TE_BUF_INIT(1024);
	char dir[4096], commit[41];

	(void)state;
	if (snprintf(dir, sizeof(dir), "%s/proj", base_dir) >= (int)sizeof(dir))
		abort();
	th_write(dir, "b", "dirty\n");
	th_write(dir, "new-file", "untracked\n");
	src = open_proj();
	assert_int_equal(te_gitsrc_resolve(commit, NULL, src, NULL, &err), 0);
	assert_int_equal(te_gitsrc_read_file(&b, src, commit, "b", &err), 0);
	assert_string_equal(b.ptr, "b2\n");
	assert_int_equal(te_gitsrc_read_file(&b, src, commit, "new-file", &err),
	                 TE_ENOTFOUND);
	te_buf_dispose(&b);
	te_gitsrc_free(src);
}

struct collected {
	char paths[32][64];
	unsigned int modes[32];
	size_t n;
};

static int collect(const te_gitsrc_entry *e, void *payload)
{
	struct collected *c = payload;

	assert_true(c->n < 32);
	assert_int_equal(strlen(e->oid), 40);
	snprintf(c->paths[c->n], sizeof(c->paths[0]), "%s", e->path);
	c->modes[c->n++] = e->mode;
	return 0;
}

static int stop_at_two(const te_gitsrc_entry *e, void *payload)
{
	size_t *n = payload;

	(void)e;
	return ++*n == 2 ? -42 : 0;
}

static void walk_in_path_order(void **state)
{
	static const char *const want[] = {
	    "Dockerfile", "a-b",      "a.txt",   "a/x",  "a0",   "abs",
	    "b",          "deep/bad", "deep/ok", "evil", "link", "run.sh"};
	te_error err = TE_ERROR_INIT;
	te_gitsrc *src = open_proj();
	struct collected c;
	size_t i, n = 0;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(te_gitsrc_walk(src, c2, "", collect, &c, &err), 0);
	assert_int_equal(c.n, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < c.n; i++) {
		assert_string_equal(c.paths[i], want[i]);
		if (i)
			assert_true(strcmp(c.paths[i - 1], c.paths[i]) < 0);
	}
	assert_int_equal(c.modes[11], 0100755);
	assert_int_equal(c.modes[10], 0120000);
	assert_int_equal(c.modes[0], 0100644);

	memset(&c, 0, sizeof(c));
	assert_int_equal(te_gitsrc_walk(src, c2, "a", collect, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.paths[0], "x");

	assert_int_equal(te_gitsrc_walk(src, c2, "nope", collect, &c, &err),
	                 TE_ENOTFOUND);
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_walk(src, c2, "b", collect, &c, &err),
	                 TE_ENOTFOUND);
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_walk(src, c2, "", stop_at_two, &n, &err),
	                 -42);
	te_gitsrc_free(src);
}

static bool skip_b(const char *path, void *payload)
{
	(void)payload;
	return strcmp(path, "b") != 0;
}

static void materialize_safely(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_gitsrc *src = open_proj();
	char *dest = th_tmpdir();
	char p[4200], target[256];
	struct stat st;
	ssize_t n;

	(void)state;
	assert_int_equal(
	    te_gitsrc_materialize(src, c2, "", dest, skip_b, NULL, &err), 0);
	if (snprintf(p, sizeof(p), "%s/run.sh", dest) >= (int)sizeof(p))
		abort();
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	if (snprintf(p, sizeof(p), "%s/a/x", dest) >= (int)sizeof(p))
		abort();
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	if (snprintf(p, sizeof(p), "%s/a", dest) >= (int)sizeof(p))
		abort();
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	if (snprintf(p, sizeof(p), "%s/b", dest) >= (int)sizeof(p))
		abort();
	assert_int_equal(lstat(p, &st), -1); /* not kept */
	if (snprintf(p, sizeof(p), "%s/link", dest) >= (int)sizeof(p))
		abort();
	n = readlink(p, target, sizeof(target) - 1);
	assert_int_equal(n, 3);
	target[n] = '\0';
	assert_string_equal(target, "a/x");
	if (snprintf(p, sizeof(p), "%s/deep/ok", dest) >= (int)sizeof(p))
		abort();
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	/* escaping links are not created */
	if (snprintf(p, sizeof(p), "%s/evil", dest) >= (int)sizeof(p))
		abort();
	assert_int_equal(lstat(p, &st), -1);
	if (snprintf(p, sizeof(p), "%s/abs", dest) >= (int)sizeof(p))
		abort();
	assert_int_equal(lstat(p, &st), -1);
	if (snprintf(p, sizeof(p), "%s/deep/bad", dest) >= (int)sizeof(p))
		abort();
	assert_int_equal(lstat(p, &st), -1);
	th_rm_rf(dest);
	free(dest);

	/* a subdirectory, and refusing to write into a non-empty dest */
	dest = th_tmpdir();
	assert_int_equal(
	    te_gitsrc_materialize(src, c2, "a", dest, NULL, NULL, &err), 0);
	if (snprintf(p, sizeof(p), "%s/x", dest) >= (int)sizeof(p))
		abort();
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(
	    te_gitsrc_materialize(src, c2, "a", dest, NULL, NULL, &err),
	    TE_EIO);
	te_error_clear(&err);
	th_rm_rf(dest);
	free(dest);
	te_gitsrc_free(src);
}

static void materialize_never_follows_symlinks(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_gitsrc *src = open_proj();
	char *dest = th_tmpdir(), *outside = th_tmpdir();
	char p[4200];
	struct stat st;

	(void)state;
	/* a pre-planted symlink where a directory will be created */
	if (snprintf(p, sizeof(p), "%s/a", dest) >= (int)sizeof(p))
		abort();
	assert_int_equal(symlink(outside, p), 0);
	assert_int_not_equal(
	    te_gitsrc_materialize(src, c2, "", dest, NULL, NULL, &err), 0);
	te_error_clear(&err);
	if (snprintf(p, sizeof(p), "%s/x", outside) >= (int)sizeof(p))
		abort();
	assert_int_equal(lstat(p, &st), -1);
	th_rm_rf(dest);
	th_rm_rf(outside);
	free(dest);
	free(outside);
	te_gitsrc_free(src);
}

static void open_root_and_bare(void **state)
{
	te_error err = TE_ERROR_INIT;
	const th_file files[] = {{"proj/Dockerfile", "FROM bare\n", 0}};
	git_repository *bare;
	git_object *obj;
	git_reference *ref;
	te_gitsrc *src = NULL;
	te_buf b = TE_BUF_INIT(1024);
	char *dir = th_tmpdir(), commit[41], bc[41], *tag = NULL;
	char bare_dir[4200];

	(void)state;
	/* from the repository root: prefix "" */
	assert_int_equal(te_gitsrc_open(&src, base_dir, &err), 0);
	assert_int_equal(te_gitsrc_read_file(&b, src, c2, "top.txt", &err), 0);
	assert_string_equal(b.ptr, "top\n");
	te_gitsrc_free(src);

	/* a bare repository with a lightweight tag */
	if (snprintf(bare_dir, sizeof(bare_dir), "%s/bare.git", dir) >=
	    (int)sizeof(bare_dir))
		abort();
	th_check(git_repository_init(&bare, bare_dir, 1), "init bare");
	th_commit(bc, bare, files, 1, "bare");
	th_check(git_revparse_single(&obj, bare, bc), "rev");
	th_check(git_reference_create(&ref, bare, "refs/tags/light",
	                              git_object_id(obj), 0, "tag"),
	         "light tag");
	git_reference_free(ref);
	git_object_free(obj);
	git_repository_free(bare);
	assert_int_equal(te_gitsrc_open(&src, bare_dir, &err), 0);
	assert_int_equal(te_gitsrc_resolve(commit, &tag, src, "light", &err),
	                 0);
	assert_string_equal(commit, bc);
	assert_string_equal(tag, "light");
	free(tag);
	te_buf_clear(&b);
	assert_int_equal(
	    te_gitsrc_read_file(&b, src, commit, "proj/Dockerfile", &err), 0);
	assert_string_equal(b.ptr, "FROM bare\n");
	te_gitsrc_free(src);

	assert_int_equal(te_gitsrc_open(&src, dir, &err), TE_ENOTFOUND);
	assert_null(src);
	te_buf_dispose(&b);
	th_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(resolve_revisions),
	    cmocka_unit_test(read_files),
	    cmocka_unit_test(walk_in_path_order),
	    cmocka_unit_test(materialize_safely),
	    cmocka_unit_test(materialize_never_follows_symlinks),
	    cmocka_unit_test(open_root_and_bare),
	    cmocka_unit_test(working_tree_ignored),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);

	git_libgit2_shutdown();
	return rc;
}
