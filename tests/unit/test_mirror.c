#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "tagexport/mirror.h"

#include "mirror_int.h"
#include "regression.h"

/*
 * libgit2 1.5's git_regexp_match (src/util/regexp.c) returns early on
 * PCRE2_ERROR_NOMATCH without pcre2_match_data_free; fetching hits it.
 * That leak is libgit2's, not ours: tell LeakSanitizer (this weak hook is
 * only read by sanitized builds).
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libpcre2-8.so\n";
}

struct fixture {
	char root[64];
	char src[128]; /* source repository (non-bare) */
	char mirror[128];
	char url[160]; /* file:// form of src */
	git_repository *repo;
	char c1[41], c2[41];
};

static void check(int rc, const char *what)
{
	if (rc < 0) {
		const git_error *e = git_error_last();

		fail_msg("%s: %s", what, e ? e->message : "?");
	}
}

/* Commit one file on HEAD; returns the commit id in out. */
static void commit_file(char out[41], git_repository *repo, const char *data)
{
	git_signature *sig = NULL;
	git_index *index = NULL;
	git_tree *tree = NULL;
	git_object *head = NULL;
	git_oid blob, tree_id, id;
	git_index_entry e;
	const git_commit *parents[1];
	size_t nparents = 0;

	check(git_blob_create_from_buffer(&blob, repo, data, strlen(data)),
	      "blob");
	check(git_repository_index(&index, repo), "index");
	memset(&e, 0, sizeof(e));
	e.path = "file.txt";
	e.mode = 0100644;
	git_oid_cpy(&e.id, &blob);
	check(git_index_add(index, &e), "add");
	check(git_index_write_tree(&tree_id, index), "write tree");
	check(git_tree_lookup(&tree, repo, &tree_id), "tree");
	check(git_signature_new(&sig, "t", "t@example.com", 1700000000, 0),
	      "sig");
	if (git_revparse_single(&head, repo, "HEAD^{commit}") == 0) {
		parents[0] = (const git_commit *)head;
		nparents = 1;
	}
	git_error_clear();
	check(git_commit_create(&id, repo, "HEAD", sig, sig, NULL, data, tree,
	                        nparents, parents),
	      "commit");
	git_oid_tostr(out, 41, &id);
	git_object_free(head);
	git_tree_free(tree);
	git_index_free(index);
	git_signature_free(sig);
}

static void lightweight(git_repository *repo, const char *name,
                        const char *commit)
{
	git_object *obj = NULL;
	git_oid id;

	check(git_revparse_single(&obj, repo, commit), "lookup");
	check(git_tag_create_lightweight(&id, repo, name, obj, 1), "tag");
	git_object_free(obj);
}

static void annotated(git_repository *repo, const char *name,
                      const char *commit)
{
	git_signature *sig = NULL;
	git_object *obj = NULL;
	git_oid id;

	check(git_signature_new(&sig, "t", "t@example.com", 1700000000, 0),
	      "sig");
	check(git_revparse_single(&obj, repo, commit), "lookup");
	check(git_tag_create(&id, repo, name, obj, sig, "release", 1), "tag");
	git_object_free(obj);
	git_signature_free(sig);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	git_libgit2_init();
	snprintf(f->root, sizeof(f->root), "/tmp/te-mirror-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->src, sizeof(f->src), "%s/src", f->root);
	snprintf(f->mirror, sizeof(f->mirror), "%s/mirrors/shop", f->root);
	snprintf(f->url, sizeof(f->url), "file://%s", f->src);
	check(git_repository_init(&f->repo, f->src, 0), "init");
	commit_file(f->c1, f->repo, "one\n");
	commit_file(f->c2, f->repo, "two\n");
	annotated(f->repo, "v1.0.0", f->c1);
	lightweight(f->repo, "light", f->c2);
	*state = f;
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	git_repository_free(f->repo);
	nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	git_libgit2_shutdown();
	free(f);
	return 0;
}

static void test_fetch_annotated_and_lightweight(void **state)
{
	struct fixture *f = *state;
	te_error err = TE_ERROR_INIT;
	char commit[41];

	assert_int_equal(te_mirror_fetch_tag(commit, f->mirror, f->url,
	                                     "v1.0.0", NULL, &err),
	                 0);
	assert_string_equal(commit, f->c1);
	/* A plain local path works too, and the mirror is reused. */
	assert_int_equal(
	    te_mirror_fetch_tag(commit, f->mirror, f->src, "light", NULL, &err),
	    0);
	assert_string_equal(commit, f->c2);
	assert_int_equal(err.code, TE_OK);
	assert_int_equal(access(f->mirror, F_OK), 0);
	{
		char head[256];

		/* It is a bare repository. */
		snprintf(head, sizeof(head), "%s/HEAD", f->mirror);
		assert_int_equal(access(head, F_OK), 0);
	}
}

static void test_moved_tag_refetched(void **state)
{
	struct fixture *f = *state;
	te_error err = TE_ERROR_INIT;
	char commit[41];

	lightweight(f->repo, "moving", f->c1);
	annotated(f->repo, "amoving", f->c1);
	assert_int_equal(te_mirror_fetch_tag(commit, f->mirror, f->url,
	                                     "moving", NULL, &err),
	                 0);
	assert_string_equal(commit, f->c1);
	assert_int_equal(te_mirror_fetch_tag(commit, f->mirror, f->url,
	                                     "amoving", NULL, &err),
	                 0);
	assert_string_equal(commit, f->c1);
	lightweight(f->repo, "moving", f->c2);
	annotated(f->repo, "amoving", f->c2);
	assert_int_equal(te_mirror_fetch_tag(commit, f->mirror, f->url,
	                                     "moving", NULL, &err),
	                 0);
	assert_string_equal(commit, f->c2);
	assert_int_equal(te_mirror_fetch_tag(commit, f->mirror, f->url,
	                                     "amoving", NULL, &err),
	                 0);
	assert_string_equal(commit, f->c2);
}

static void test_missing_tag(void **state)
{
	struct fixture *f = *state;
	te_error err = TE_ERROR_INIT;
	char commit[41] = "x";

	assert_int_equal(te_mirror_fetch_tag(commit, f->mirror, f->url,
	                                     "v9.9.9", NULL, &err),
	                 TE_ENOTFOUND);
	assert_string_equal(commit, "");

	/* Deleted at the source after being mirrored: not found either. */
	lightweight(f->repo, "gone", f->c1);
	te_error_clear(&err);
	assert_int_equal(
	    te_mirror_fetch_tag(commit, f->mirror, f->url, "gone", NULL, &err),
	    0);
	check(git_tag_delete(f->repo, "gone"), "delete");
	assert_int_equal(
	    te_mirror_fetch_tag(commit, f->mirror, f->url, "gone", NULL, &err),
	    TE_ENOTFOUND);
}

static void test_tag_on_tree(void **state)
{
	struct fixture *f = *state;
	te_error err = TE_ERROR_INIT;
	char commit[41], spec[64];

	snprintf(spec, sizeof(spec), "%s^{tree}", f->c1);
	lightweight(f->repo, "tree-tag", spec);
	assert_int_equal(te_mirror_fetch_tag(commit, f->mirror, f->url,
	                                     "tree-tag", NULL, &err),
	                 TE_EINVALID);
}

static void test_list_tags(void **state)
{
	struct fixture *f = *state;
	te_strvec names = TE_STRVEC_INIT, commits = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;
	bool more = true;
	size_t i;
	int found = 0;
	char longname[TE_MIRROR_TAG_MAX + 8];

	/* git takes it, te_mirror_tag_valid does not: left out */
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	lightweight(f->repo, longname, f->c2);
	assert_int_equal(te_mirror_list_tags(&names, &commits, &more, f->url,
	                                     NULL, 100, &err),
	                 0);
	assert_false(more);
	assert_int_equal(names.count, 2);
	assert_int_equal(commits.count, 2);
	for (i = 0; i < names.count; i++) {
		/* The annotated tag is given as its commit, peeled. */
		if (!strcmp(names.items[i], "v1.0.0"))
			found += !strcmp(commits.items[i], f->c1);
		if (!strcmp(names.items[i], "light"))
			found += !strcmp(commits.items[i], f->c2);
	}
	assert_int_equal(found, 2);
	/* Nothing was fetched: the mirror does not even exist. */
	assert_int_not_equal(access(f->mirror, F_OK), 0);
	te_strvec_dispose(&names);
	te_strvec_dispose(&commits);

	/* Bounded: the first one only, and told there was more. */
	assert_int_equal(
	    te_mirror_list_tags(&names, &commits, &more, f->src, NULL, 1, &err),
	    0);
	assert_true(more);
	assert_int_equal(names.count, 1);
	te_strvec_dispose(&names);
	te_strvec_dispose(&commits);
}

static void test_list_tags_bad_remote(void **state)
{
	struct fixture *f = *state;
	te_strvec names = TE_STRVEC_INIT, commits = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;
	char url[256];
	bool more;

	snprintf(url, sizeof(url), "https://user:s3cret@127.0.0.1:1/%s",
	         f->root);
	assert_true(te_mirror_list_tags(&names, &commits, &more, url, NULL, 100,
	                                &err) < 0);
	assert_int_equal(err.code, TE_ENET);
	assert_null(strstr(err.msg, "s3cret"));
	assert_int_equal(names.count, 0);
	te_strvec_dispose(&names);
	te_strvec_dispose(&commits);
}

static void test_bad_remote(void **state)
{
	struct fixture *f = *state;
	te_error err = TE_ERROR_INIT;
	char commit[41], url[256];

	snprintf(url, sizeof(url), "%s/nonexistent", f->root);
	assert_true(te_mirror_fetch_tag(commit, f->mirror, url, "v1.0.0", NULL,
	                                &err) < 0);
	assert_true(strlen(err.msg) > 0);
}

static void test_hostile_names(void **state)
{
	static const char *bad[] = {
	    "",
	    "-v1",
	    "--upload-pack=touch /tmp/pwned",
	    "a..b",
	    "../../etc/passwd",
	    "a\nb",
	    "a\tb",
	    "a\x7f",
	    "a b",
	    "a~1",
	    "a^{}",
	    "a:b",
	    "a?",
	    "a*",
	    "a[",
	    "a\\b",
	    "a.lock",
	    "/abs",
	    "a/",
	    "a//b",
	    "a@{1}",
	    ".hidden",
	    "a.",
	    "\xff\xfe",
	    "\xc0\xaf",
	    NULL,
	};
	struct fixture *f = *state;
	char long_name[TE_MIRROR_TAG_MAX + 2];
	size_t i;

	for (i = 0; bad[i]; i++) {
		te_error err = TE_ERROR_INIT;
		char commit[41];

		assert_false(te_mirror_tag_valid(bad[i]));
		assert_int_equal(te_mirror_fetch_tag(commit, f->mirror, f->url,
		                                     bad[i], NULL, &err),
		                 TE_EINVALID);
	}
	assert_false(te_mirror_tag_valid(NULL));
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_false(te_mirror_tag_valid(long_name));
	long_name[TE_MIRROR_TAG_MAX] = '\0';
	assert_true(te_mirror_tag_valid(long_name));

	assert_true(te_mirror_tag_valid("v1.2.3"));
	assert_true(te_mirror_tag_valid("release/2024-01"));
	assert_true(te_mirror_tag_valid("v1.2.3-rc.1+build"));
	assert_true(te_mirror_tag_valid("\xd0\xb2\xd0\xb5\xd1\x80"));
}

static void test_token_file_unreadable(void **state)
{
	struct fixture *f = *state;
	te_mirror_auth auth = TE_MIRROR_AUTH_INIT;
	te_error err = TE_ERROR_INIT;
	char commit[41];

	/* Local transports never ask for credentials: auth is unused. */
	auth.token_file = "/nonexistent/token";
	assert_int_equal(te_mirror_fetch_tag(commit, f->mirror, f->url,
	                                     "v1.0.0", &auth, &err),
	                 0);
	assert_string_equal(commit, f->c1);
}

/* What a URL's userinfo holds may be a token: errors never show it, an
 * unencoded '@' in it included. */
static void test_url_credentials_redacted(void **state)
{
	static const char *const urls[] = {
	    "http://user:s3cret-tok@127.0.0.1:1/%zz/x.git",
	    "http://user:s3cret@tok@127.0.0.1:1/%zz/x.git",
	    "http://s3cret-tok@127.0.0.1:1/%zz/x.git",
	    "http://***@127.0.0.1:1/%zz/x.git",
	};
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		te_error err = TE_ERROR_INIT;
		char commit[41];

		assert_true(te_mirror_fetch_tag(commit, f->mirror, urls[i],
		                                "v1.0.0", NULL, &err) < 0);
		assert_null(strstr(err.msg, "s3cret"));
		assert_null(strstr(err.msg, "tok@"));
	}
}

/* Fuzzer find (tests/fuzz/regressions/mirror_url): a userinfo of "***"
 * was replaced by "***" and searched again, forever. */
static void test_redact_single_pass(void **state)
{
	te_buf url = TE_BUF_INIT(0);
	char msg[128];

	(void)state;
	read_regression(&url, "mirror_url", "timeout-userinfo-triple-star");
	snprintf(msg, sizeof(msg), "cannot fetch %s: *** denied", url.ptr);
	te_mirror__redact(msg, url.ptr);
	assert_string_equal(msg, "cannot fetch https://***@git.example.com/"
	                         "acme/shop.git: *** denied");
	te_buf_dispose(&url);

	snprintf(msg, sizeof(msg), "a s3cret b s3crets3cret s3cre");
	te_mirror__redact(msg, "https://s3cret@h/x.git");
	assert_string_equal(msg, "a *** b ****** s3cre");
	/* a replacement is not searched again, overlaps are not rescanned */
	snprintf(msg, sizeof(msg), "aaaa aaaaaa");
	te_mirror__redact(msg, "https://aaa@h/");
	assert_string_equal(msg, "***a ******");
	snprintf(msg, sizeof(msg), "u:*** and ***");
	te_mirror__redact(msg, "https://u:***@h/");
	assert_string_equal(msg, "*** and ***");
	/* no userinfo, or shorter than the mask: unchanged */
	snprintf(msg, sizeof(msg), "ab at https://ab@h/");
	te_mirror__redact(msg, "https://ab@h/");
	assert_string_equal(msg, "ab at https://ab@h/");
	te_mirror__redact(msg, "https://h/");
	te_mirror__redact(msg, NULL);
	assert_string_equal(msg, "ab at https://ab@h/");
}

/* What te_mirror_tag_valid accepted when it asked libgit2: its own checks,
 * then git_reference_name_is_valid("refs/tags/<tag>"). */
static bool tag_valid_by_libgit2(const char *tag)
{
	char ref[64];
	int valid = 0;
	size_t i;

	if (!*tag || tag[0] == '-' || strstr(tag, ".."))
		return false;
	for (i = 0; tag[i]; i++)
		if ((unsigned char)tag[i] < 0x20 || tag[i] == 0x7f)
			return false;
	snprintf(ref, sizeof(ref), "refs/tags/%s", tag);
	if (git_reference_name_is_valid(&valid, ref) < 0)
		valid = 0;
	return valid != 0;
}

/* Every name of up to 4 bytes over the bytes the rules talk about (and a
 * few ordinary ones): the libgit2-free check decides exactly as libgit2. */
static void test_tag_valid_as_libgit2(void **state)
{
	static const char alpha[] = "a.-/@{}*~^:?[\\ lock_\x7f\x01";
	const size_t na = sizeof(alpha) - 1;
	char tag[8];
	size_t total = 1, n, i, k, v;

	(void)state;
	git_libgit2_init();
	for (n = 1; n <= 4; n++) {
		total *= na;
		for (i = 0; i < total; i++) {
			for (k = 0, v = i; k < n; k++, v /= na)
				tag[k] = alpha[v % na];
			tag[n] = '\0';
			if (te_mirror_tag_valid(tag) !=
			    tag_valid_by_libgit2(tag))
				fail_msg("\"%s\": libgit2 says %d", tag,
				         tag_valid_by_libgit2(tag));
		}
	}
	static const char *const more[] = {
	    "x.lock", "a/b.lock", "a.lock/b", "a.lockx", "lock", ".lock",
	    "a/.b",   "a/b.",     "v1@",      "@",       "@{",   "a@b{c",
	    "HEAD",   "A_B/c",    "a/B_C",    "x/y/z",   "é/ü",  NULL,
	};
	for (i = 0; more[i]; i++)
		if (te_mirror_tag_valid(more[i]) !=
		    tag_valid_by_libgit2(more[i]))
			fail_msg("\"%s\": libgit2 says %d", more[i],
			         tag_valid_by_libgit2(more[i]));
	git_libgit2_shutdown();
}

/* te_mirror_fetch_ref: a tag, the default branch, a branch, a commit
 * (fetched, then found without the network), and what is missing. */
static void test_fetch_ref(void **state)
{
	struct fixture *f = *state;
	te_error err = TE_ERROR_INIT;
	git_reference *head = NULL;
	char commit[41], prefix[11];

	assert_int_equal(te_mirror_fetch_ref(commit, f->mirror, f->url,
	                                     TE_MIRROR_REF_TAG, "v1.0.0", NULL,
	                                     NULL, &err),
	                 0);
	assert_string_equal(commit, f->c1);
	assert_int_equal(te_mirror_fetch_ref(commit, f->mirror, f->url,
	                                     TE_MIRROR_REF_DEFAULT, NULL, NULL,
	                                     NULL, &err),
	                 0);
	assert_string_equal(commit, f->c2);
	check(git_repository_head(&head, f->repo), "head");
	assert_int_equal(te_mirror_fetch_ref(
	                     commit, f->mirror, f->url, TE_MIRROR_REF_BRANCH,
	                     git_reference_shorthand(head), NULL, NULL, &err),
	                 0);
	git_reference_free(head);
	assert_string_equal(commit, f->c2);
	assert_int_equal(te_mirror_fetch_ref(commit, f->mirror, f->url,
	                                     TE_MIRROR_REF_BRANCH, "nope", NULL,
	                                     NULL, &err),
	                 TE_ENOTFOUND);
	assert_string_equal(err.msg, "mirror: the remote has no branch nope");
	te_error_clear(&err);
	snprintf(prefix, sizeof(prefix), "%.10s", f->c1);
	assert_int_equal(te_mirror_fetch_ref(commit, f->mirror, f->url,
	                                     TE_MIRROR_REF_COMMIT, prefix, NULL,
	                                     NULL, &err),
	                 0);
	assert_string_equal(commit, f->c1);
	/* present: no network (this url leads nowhere) */
	assert_int_equal(
	    te_mirror_fetch_ref(commit, f->mirror, "file:///nonexistent/te",
	                        TE_MIRROR_REF_COMMIT, f->c1, NULL, NULL, &err),
	    0);
	assert_string_equal(commit, f->c1);
	assert_int_equal(te_mirror_fetch_ref(commit, f->mirror, f->url,
	                                     TE_MIRROR_REF_COMMIT, "0000000abc",
	                                     NULL, NULL, &err),
	                 TE_ENOTFOUND);
	assert_string_equal(commit, "");
	assert_non_null(strstr(err.msg, "commit 0000000abc is not in the "
	                                "remote repository"));
	te_error_clear(&err);
	assert_int_equal(te_mirror_fetch_ref(commit, f->mirror, f->url,
	                                     TE_MIRROR_REF_TAG, "a..b", NULL,
	                                     NULL, &err),
	                 TE_EINVALID);
	te_error_clear(&err);
}

/* A remote sending more than max_bytes is stopped. */
static void test_fetch_ref_bounded(void **state)
{
	struct fixture *f = *state;
	te_error err = TE_ERROR_INIT;
	te_mirror_limits lim = {1, 0};
	char commit[41];

	assert_int_equal(te_mirror_fetch_ref(commit, f->mirror, f->url,
	                                     TE_MIRROR_REF_TAG, "v1.0.0", NULL,
	                                     &lim, &err),
	                 TE_EINVALID);
	assert_string_equal(err.msg,
	                    "mirror: the remote sent more than 1 bytes");
	te_error_clear(&err);
}

struct locked_fetch {
	struct fixture *f;
	atomic_int done;
	int rc;
	char commit[41];
};

static void *fetch_thread(void *p)
{
	struct locked_fetch *lf = p;
	te_error err = TE_ERROR_INIT;

	lf->rc =
	    te_mirror_fetch_ref(lf->commit, lf->f->mirror, lf->f->url,
	                        TE_MIRROR_REF_TAG, "v1.0.0", NULL, NULL, &err);
	atomic_store(&lf->done, 1);
	return NULL;
}

/* Another holder of the mirror's flock (a concurrent export) makes a
 * fetch wait until it lets go. */
static void test_fetch_ref_waits_for_lock(void **state)
{
	struct fixture *f = *state;
	struct locked_fetch lf;
	char lock[256];
	pthread_t t;
	int fd;

	memset(&lf, 0, sizeof(lf));
	lf.f = f;
	snprintf(lock, sizeof(lock), "%s/mirrors", f->root);
	assert_int_equal(mkdir(lock, 0700), 0);
	assert_int_equal(mkdir(f->mirror, 0700), 0);
	snprintf(lock, sizeof(lock), "%s/tagexport.lock", f->mirror);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	assert_int_equal(pthread_create(&t, NULL, fetch_thread, &lf), 0);
	usleep(300 * 1000);
	assert_int_equal(atomic_load(&lf.done), 0);
	close(fd);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(lf.rc, 0);
	assert_string_equal(lf.commit, f->c1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_fetch_annotated_and_lightweight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_moved_tag_refetched, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_missing_tag, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tag_on_tree, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_remote, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_tags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_tags_bad_remote, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_url_credentials_redacted,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_names, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_token_file_unreadable, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_fetch_ref, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fetch_ref_bounded, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_fetch_ref_waits_for_lock,
	                                    setup, teardown),
	    cmocka_unit_test(test_redact_single_pass),
	    cmocka_unit_test(test_tag_valid_as_libgit2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
