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

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>

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

/* The escaping links of setup(): kept, they fail materialize. */
static bool is_escaping(const char *path)
{
	return strcmp(path, "evil") == 0 || strcmp(path, "abs") == 0 ||
	       strcmp(path, "deep/bad") == 0;
}

static bool keep_safe(const char *path, void *payload)
{
	(void)payload;
	return !is_escaping(path);
}

static bool skip_b(const char *path, void *payload)
{
	return strcmp(path, "b") != 0 && keep_safe(path, payload);
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
	    te_gitsrc_materialize(src, c2, "", dest, skip_b, NULL, NULL, &err),
	    0);
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
	/* links nobody keeps are not created */
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
	    te_gitsrc_materialize(src, c2, "a", dest, NULL, NULL, NULL, &err),
	    0);
	if (snprintf(p, sizeof(p), "%s/x", dest) >= (int)sizeof(p))
		abort();
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(
	    te_gitsrc_materialize(src, c2, "a", dest, NULL, NULL, NULL, &err),
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
	assert_int_equal(te_gitsrc_materialize(src, c2, "", dest, keep_safe,
	                                       NULL, NULL, &err),
	                 TE_EIO);
	assert_non_null(strstr(err.msg, "opening directory for 'a/x'"));
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
	te_gitsrc *src = NULL, *root = NULL;
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
	/* its root handle (Stapel's git mappings) reads the same tree */
	assert_int_equal(te_gitsrc_open_root(&root, src, &err), 0);
	te_buf_clear(&b);
	assert_int_equal(
	    te_gitsrc_read_file(&b, root, commit, "proj/Dockerfile", &err), 0);
	assert_string_equal(b.ptr, "FROM bare\n");
	te_gitsrc_free(root);
	te_gitsrc_free(src);

	assert_int_equal(te_gitsrc_open(&src, dir, &err), TE_ENOTFOUND);
	assert_null(src);
	te_buf_dispose(&b);
	th_rm_rf(dir);
	free(dir);
}

/* ---- symlink chains, limits, streaming (a repository of their own) ---- */

static char *ctx_dir;
static git_repository *ctx_repo;
static char ctx_commit[41];
static char *big_data; /* 20 MiB + 3 bytes of pseudo-random non-NUL bytes */
#define BIG_SIZE ((size_t)20 * 1024 * 1024 + 3)

static int setup_ctx(void **state)
{
	const th_file links[] = {
	    {"ctx/d/f", "file\n", 0},
	    {"ctx/in1", "d/f", 0120000},
	    {"ctx/in2", "in1", 0120000},
	    {"ctx/in3", "./d/../in2", 0120000},
	    {"ctx/dir/inner", "../d/f", 0120000},
	    {"ctx/todir", "d", 0120000},
	    {"ctx/viadir", "todir/f", 0120000},
	    {"ctx/dangling", "nothing/here", 0120000},
	    {"ctx/notdir", "d/f/..", 0120000},
	    {"ctx/step1", "../outside", 0120000},
	    {"ctx/b", "../..", 0120000},
	    {"ctx/a", "b/..", 0120000},
	    {"ctx/l/up", "..", 0120000},
	    {"ctx/x2", "l/up/..", 0120000},
	    {"ctx/x", "y", 0120000},
	    {"ctx/y", "z", 0120000},
	    {"ctx/z", "../etc", 0120000},
	    {"ctx/loop1", "loop2", 0120000},
	    {"ctx/loop2", "loop1", 0120000},
	    {"ctx/self", "self/x", 0120000},
	    {"ctx/abs", "/etc/passwd", 0120000},
	    {"ctx/toabs", "dir/../abs", 0120000},
	    {"ctx/small", "0123456789", 0},
	    {"ctx/mid", NULL, 0}, /* filled below */
	    {"ctx/run.sh", "#!/bin/sh\n", 0100755},
	    {"ctx/big.bin", NULL, 0100755},
	};
	th_file files[sizeof(links) / sizeof(links[0]) + 41];
	char chain[41][16], target[41][16], *mid;
	uint32_t x = 12345;
	size_t i, n = 0;

	(void)state;
	mid = malloc(1001);
	big_data = malloc(BIG_SIZE + 1);
	if (!mid || !big_data)
		abort();
	memset(mid, 'm', 1000);
	mid[1000] = '\0';
	for (i = 0; i < BIG_SIZE; i++) {
		x = x * 1103515245u + 12345u;
		big_data[i] = (char)(1 + (x >> 16) % 255);
	}
	big_data[BIG_SIZE] = '\0';
	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		files[n] = links[i];
		if (strcmp(files[n].path, "ctx/mid") == 0)
			files[n].data = mid;
		else if (strcmp(files[n].path, "ctx/big.bin") == 0)
			files[n].data = big_data;
		n++;
	}
	/* k00 -> k01 -> ... -> k40 -> d/f: 41 links from k00, 40 from k01 */
	for (i = 0; i <= 40; i++) {
		snprintf(chain[i], sizeof(chain[i]), "ctx/k%02zu", i);
		if (i < 40)
			snprintf(target[i], sizeof(target[i]), "k%02zu", i + 1);
		else
			snprintf(target[i], sizeof(target[i]), "d/f");
		files[n++] = (th_file){chain[i], target[i], 0120000};
	}
	ctx_dir = th_tmpdir();
	ctx_repo = th_init(ctx_dir);
	th_commit(ctx_commit, ctx_repo, files, n, "context");
	free(mid);
	return 0;
}

static int teardown_ctx(void **state)
{
	(void)state;
	git_repository_free(ctx_repo);
	th_rm_rf(ctx_dir);
	free(ctx_dir);
	free(big_data);
	return 0;
}

static te_gitsrc *open_ctx(void)
{
	te_error err = TE_ERROR_INIT;
	te_gitsrc *src = NULL;

	assert_int_equal(te_gitsrc_open(&src, ctx_dir, &err), 0);
	return src;
}

/* keep exactly the path given as payload */
static bool keep_one(const char *path, void *payload)
{
	return strcmp(path, (const char *)payload) == 0;
}

static bool keep_no_links(const char *path, void *payload)
{
	(void)payload;
	return strcmp(path, "small") == 0 || strcmp(path, "mid") == 0 ||
	       strcmp(path, "run.sh") == 0 || strcmp(path, "big.bin") == 0 ||
	       strcmp(path, "d/f") == 0;
}

/* Check one kept link; returns the code, err keeps the message. */
static int check_one(te_gitsrc *src, const char *link, te_error *err)
{
	te_error_clear(err);
	return te_gitsrc_check(NULL, src, ctx_commit, "ctx", keep_one,
	                       (void *)link, NULL, err);
}

static void assert_refused(te_gitsrc *src, const char *link, const char *step)
{
	te_error err = TE_ERROR_INIT;
	char name[64];

	if (check_one(src, link, &err) != TE_EINVALID)
		fail_msg("%s not refused: %s", link, err.msg);
	snprintf(name, sizeof(name), "symlink '%s'", link);
	if (!strstr(err.msg, name) || !strstr(err.msg, step))
		fail_msg("%s: unexpected message: %s", link, err.msg);
}

static void symlink_chains(void **state)
{
	static const char *const inside[] = {
	    "in1",    "in2",      "in3",    "dir/inner", "todir",
	    "viadir", "dangling", "notdir", "l/up",      "k01"};
	te_error err = TE_ERROR_INIT;
	te_gitsrc *src = open_ctx();
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(inside) / sizeof(inside[0]); i++)
		if (check_one(src, inside[i], &err) != 0)
			fail_msg("%s refused: %s", inside[i], err.msg);
	/* escaping at the first, second and third link */
	assert_refused(src, "step1", "'step1' -> '../outside' climbs above");
	assert_refused(src, "b", "'b' -> '../..' climbs above");
	assert_refused(src, "a", "'b' -> '../..' climbs above");
	/* lexically inside (x2 -> l/up/.. is "l"), not once l/up is followed */
	assert_refused(src, "x2", "'l/up' -> '..' climbs above");
	assert_refused(src, "x", "'z' -> '../etc' climbs above");
	/* absolute, directly and through a chain */
	assert_refused(src, "abs", "'abs' -> '/etc/passwd' is absolute");
	assert_refused(src, "toabs", "'abs' -> '/etc/passwd' is absolute");
	/* loops, and one link past Linux's 40 */
	assert_refused(src, "loop1", "more than 40 symlinks");
	assert_refused(src, "self", "more than 40 symlinks");
	assert_refused(src, "k00", "more than 40 symlinks");
	te_gitsrc_free(src);
}

static bool dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n == 0;
}

static void materialize_link_chains(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_gitsrc *src = open_ctx();
	char *dest = th_tmpdir();
	char p[4200], buf[16];
	ssize_t n;
	int fd;

	(void)state;
	/* a link inside works, also through a chain of links */
	assert_int_equal(te_gitsrc_materialize(src, ctx_commit, "ctx", dest,
	                                       keep_one, (void *)"in3", NULL,
	                                       &err),
	                 0);
	snprintf(p, sizeof(p), "%s/in3", dest);
	n = readlink(p, buf, sizeof(buf) - 1);
	assert_int_equal(n, 10);
	th_rm_rf(dest);
	free(dest);

	/* an escaping link fails before anything is written */
	dest = th_tmpdir();
	assert_int_equal(te_gitsrc_materialize(src, ctx_commit, "ctx", dest,
	                                       NULL, NULL, NULL, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "leads outside the build context"));
	assert_true(dir_is_empty(dest));
	te_error_clear(&err);

	/* the links the build reads are what is checked */
	assert_int_equal(te_gitsrc_materialize(src, ctx_commit, "ctx", dest,
	                                       keep_no_links, NULL, NULL, &err),
	                 0);
	snprintf(p, sizeof(p), "%s/d/f", dest);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 5);
	close(fd);
	th_rm_rf(dest);
	free(dest);
	te_gitsrc_free(src);
}

static void limits_name_file_and_total(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_gitsrc *src = open_ctx();
	te_gitsrc_limits lim = {0};
	te_buf b = TE_BUF_INIT(1024 * 1024);
	uint64_t total = 0, expect = 10 + 1000 + 10 + 5 + BIG_SIZE;
	char *dest = th_tmpdir(), want[128];

	(void)state;
	assert_int_equal(te_gitsrc_check(&total, src, ctx_commit, "ctx",
	                                 keep_no_links, NULL, NULL, &err),
	                 0);
	assert_int_equal(total, expect);

	lim.max_file_size = BIG_SIZE - 1;
	assert_int_equal(te_gitsrc_materialize(src, ctx_commit, "ctx", dest,
	                                       keep_no_links, NULL, &lim, &err),
	                 TE_EINVALID);
	snprintf(want, sizeof(want),
	         "context file 'big.bin' is %zu bytes, over the max file size "
	         "of %zu bytes",
	         BIG_SIZE, BIG_SIZE - 1);
	assert_string_equal(err.msg, want);
	assert_true(dir_is_empty(dest));
	te_error_clear(&err);

	lim.max_file_size = BIG_SIZE;
	lim.max_context_size = expect - 1;
	assert_int_equal(te_gitsrc_check(&total, src, ctx_commit, "ctx",
	                                 keep_no_links, NULL, &lim, &err),
	                 TE_EINVALID);
	snprintf(want, sizeof(want),
	         "build context is %llu bytes, over the max context size of "
	         "%llu bytes",
	         (unsigned long long)expect, (unsigned long long)expect - 1);
	assert_string_equal(err.msg, want);
	te_error_clear(&err);

	lim.max_context_size = expect;
	assert_int_equal(te_gitsrc_check(&total, src, ctx_commit, "ctx",
	                                 keep_no_links, NULL, &lim, &err),
	                 0);

	/* reads into a bounded buffer are refused from the object header */
	assert_int_equal(
	    te_gitsrc_read_file(&b, src, ctx_commit, "ctx/big.bin", &err),
	    TE_EINVALID);
	assert_string_equal(err.msg, "'ctx/big.bin' exceeds the limit of "
	                             "1048576 bytes");
	assert_int_equal(b.len, 0);
	te_error_clear(&err);
	assert_int_equal(
	    te_gitsrc_read_file(&b, src, ctx_commit, "ctx/mid", &err), 0);
	assert_int_equal(b.len, 1000);
	te_buf_dispose(&b);
	th_rm_rf(dest);
	free(dest);
	te_gitsrc_free(src);
}

static void sha256_of(unsigned char out[32], const void *data, size_t len)
{
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(data, len, out, &n, EVP_sha256(), NULL), 1);
	assert_int_equal(n, 32);
}

/* sha256 of a file, read in small pieces */
static void sha256_file(unsigned char out[32], const char *path)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char buf[65536];
	unsigned int n = 0;
	ssize_t got;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_non_null(md);
	assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
	while ((got = read(fd, buf, sizeof(buf))) > 0)
		assert_int_equal(EVP_DigestUpdate(md, buf, (size_t)got), 1);
	assert_int_equal(got, 0);
	assert_int_equal(EVP_DigestFinal_ex(md, out, &n), 1);
	EVP_MD_CTX_free(md);
	close(fd);
}

static void streamed_content_identical(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_gitsrc *src = open_ctx();
	te_gitsrc_limits lim = {0};
	unsigned char want[32], got[32];
	char *dest = th_tmpdir(), p[4200];
	struct stat st;
	int pass;

	(void)state;
	sha256_of(want, big_data, BIG_SIZE);
	/* pass 0: big.bin (over 8 MiB) streamed by git, the rest in
	 * process; pass 1: every file streamed */
	for (pass = 0; pass < 2; pass++) {
		lim.stream_min = pass ? 1 : 0;
		assert_int_equal(te_gitsrc_materialize(src, ctx_commit, "ctx",
		                                       dest, keep_no_links,
		                                       NULL, &lim, &err),
		                 0);
		snprintf(p, sizeof(p), "%s/big.bin", dest);
		assert_int_equal(lstat(p, &st), 0);
		assert_int_equal(st.st_size, BIG_SIZE);
		assert_int_equal(st.st_mode & 07777, 0755);
		sha256_file(got, p);
		assert_memory_equal(got, want, 32);
		snprintf(p, sizeof(p), "%s/mid", dest);
		assert_int_equal(lstat(p, &st), 0);
		assert_int_equal(st.st_size, 1000);
		assert_int_equal(st.st_mode & 07777, 0644);
		th_rm_rf(dest);
		assert_int_equal(mkdir(dest, 0700), 0);
	}
	th_rm_rf(dest);
	free(dest);
	te_gitsrc_free(src);
}

static void sizes_parse(void **state)
{
	te_error err = TE_ERROR_INIT;
	uint64_t v;

	(void)state;
	assert_int_equal(te_gitsrc_size_parse(&v, "2GiB", &err), 0);
	assert_int_equal(v, (uint64_t)2 << 30);
	assert_int_equal(te_gitsrc_size_parse(&v, "512MiB", &err), 0);
	assert_int_equal(v, (uint64_t)512 << 20);
	assert_int_equal(te_gitsrc_size_parse(&v, "1048576", &err), 0);
	assert_int_equal(v, 1048576);
	assert_int_equal(te_gitsrc_size_parse(&v, "7B", &err), 0);
	assert_int_equal(v, 7);
	assert_int_equal(te_gitsrc_size_parse(&v, "3KiB", &err), 0);
	assert_int_equal(v, 3072);
	assert_int_equal(te_gitsrc_size_parse(&v, "1TiB", &err), 0);
	assert_int_equal(v, (uint64_t)1 << 40);
	assert_int_equal(te_gitsrc_size_parse(&v, "0", &err), TE_EINVALID);
	assert_non_null(strstr(err.msg, "invalid size \"0\""));
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_size_parse(&v, "", &err), TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_size_parse(&v, "1GB", &err), TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_size_parse(&v, "-1", &err), TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_size_parse(&v, " 1MiB", &err), TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_size_parse(&v, "1 MiB", &err), TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_size_parse(&v, "18446744073709551616", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_gitsrc_size_parse(&v, "17179869184GiB", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
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
	const struct CMUnitTest ctx_tests[] = {
	    cmocka_unit_test(symlink_chains),
	    cmocka_unit_test(materialize_link_chains),
	    cmocka_unit_test(limits_name_file_and_total),
	    cmocka_unit_test(streamed_content_identical),
	    cmocka_unit_test(sizes_parse),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);

	rc |= cmocka_run_group_tests(ctx_tests, setup_ctx, teardown_ctx);
	git_libgit2_shutdown();
	return rc;
}
