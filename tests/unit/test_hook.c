#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "tagexport/gitsrc.h"
#include "tagexport/hook.h"
#include "tagexport/semver.h"

#include "regression.h"

#define Z40 "0000000000000000000000000000000000000000"
#define A40 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B40 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const char script[] = "#!/bin/sh\n" TE_HOOK_SCRIPT_MARKER "\n"
                             "exec tagexport hook post-receive\n";

struct sandbox {
	char root[64];
	char git_dir[128];
	git_repository *repo;
	char commit[41];
	char tag_obj[41]; /* annotated tag object of "v2.0.0" */
	char tree[41];
};

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int sandbox_setup(void **state)
{
	struct sandbox *s = calloc(1, sizeof(*s));
	git_signature *sig = NULL;
	git_treebuilder *tb = NULL;
	git_object *target = NULL;
	git_oid tree_id, commit_id, tag_id;
	git_tree *tree = NULL;
	te_error err = TE_ERROR_INIT;

	assert_non_null(s);
	assert_int_equal(te_gitsrc_global_init(&err), 0);
	snprintf(s->root, sizeof(s->root), "/tmp/te-hook-test.XXXXXX");
	assert_non_null(mkdtemp(s->root));
	snprintf(s->git_dir, sizeof(s->git_dir), "%s/repo.git", s->root);
	assert_int_equal(git_repository_init(&s->repo, s->git_dir, 1), 0);
	assert_int_equal(git_signature_new(&sig, "t", "t@example.com", 1, 0),
	                 0);
	assert_int_equal(git_treebuilder_new(&tb, s->repo, NULL), 0);
	assert_int_equal(git_treebuilder_write(&tree_id, tb), 0);
	assert_int_equal(git_tree_lookup(&tree, s->repo, &tree_id), 0);
	assert_int_equal(git_commit_create(&commit_id, s->repo, "HEAD", sig,
	                                   sig, NULL, "init", tree, 0, NULL),
	                 0);
	git_oid_tostr(s->commit, sizeof(s->commit), &commit_id);
	git_oid_tostr(s->tree, sizeof(s->tree), &tree_id);
	assert_int_equal(
	    git_object_lookup(&target, s->repo, &commit_id, GIT_OBJECT_COMMIT),
	    0);
	assert_int_equal(
	    git_tag_create_lightweight(&tag_id, s->repo, "v1.0.0", target, 0),
	    0);
	assert_int_equal(git_tag_create(&tag_id, s->repo, "v2.0.0", target, sig,
	                                "release", 0),
	                 0);
	git_oid_tostr(s->tag_obj, sizeof(s->tag_obj), &tag_id);
	git_object_free(target);
	git_tree_free(tree);
	git_treebuilder_free(tb);
	git_signature_free(sig);
	*state = s;
	return 0;
}

static int sandbox_teardown(void **state)
{
	struct sandbox *s = *state;

	git_repository_free(s->repo);
	nftw(s->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(s);
	git_libgit2_shutdown();
	return 0;
}

/* ---- parsing ---------------------------------------------------------- */

static void parse_ok(te_hook_updates *u, const char *text)
{
	te_error err = TE_ERROR_INIT;

	assert_int_equal(te_hook_parse(u, text, strlen(text), &err), 0);
}

static void test_parse_kinds(void **state)
{
	te_hook_updates u = TE_HOOK_UPDATES_INIT;
	const char *in = Z40 " " A40 " refs/tags/v1.2.0\n" /* created */
	    A40 " " B40 " refs/tags/release/2\n"           /* moved */
	    A40 " " Z40 " refs/tags/v0.9\n"                /* deleted */
	    Z40 " " A40 " refs/heads/main\n"               /* branch */
	    A40 " " Z40 " refs/heads/old\n"                /* deleted */
	    Z40 " " A40 " refs/notes/commits\n"            /* not a tag */
	    Z40 " " A40 " refs/tagsX/v1\n";                /* not a tag */

	(void)state;
	parse_ok(&u, in);
	assert_int_equal(u.count, 7);
	assert_int_equal(u.items[0].kind, TE_HOOK_TAG);
	assert_string_equal(u.items[0].tag, "v1.2.0");
	assert_string_equal(u.items[0].old_oid, Z40);
	assert_string_equal(u.items[0].new_oid, A40);
	assert_int_equal(u.items[0].line, 1);
	assert_int_equal(u.items[1].kind, TE_HOOK_TAG);
	assert_string_equal(u.items[1].tag, "release/2");
	assert_int_equal(u.items[2].kind, TE_HOOK_DELETED);
	assert_null(u.items[2].tag);
	assert_int_equal(u.items[3].kind, TE_HOOK_NOT_TAG);
	assert_null(u.items[3].tag);
	assert_int_equal(u.items[4].kind, TE_HOOK_DELETED);
	assert_int_equal(u.items[5].kind, TE_HOOK_NOT_TAG);
	assert_int_equal(u.items[6].kind, TE_HOOK_NOT_TAG);
	assert_int_equal(u.items[6].line, 7);
	te_hook_updates_dispose(&u);
}

static void test_parse_last_line_and_blanks(void **state)
{
	te_hook_updates u = TE_HOOK_UPDATES_INIT;

	(void)state;
	/* No final LF; blank lines skipped but counted; upper-case hex is
	 * normalised. */
	parse_ok(&u, "\n\n" Z40 " AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA "
	             "refs/tags/v1");
	assert_int_equal(u.count, 1);
	assert_int_equal(u.items[0].line, 3);
	assert_int_equal(u.items[0].kind, TE_HOOK_TAG);
	assert_string_equal(u.items[0].new_oid, A40);
	te_hook_updates_dispose(&u);

	parse_ok(&u, "");
	assert_int_equal(u.count, 0);
	te_hook_updates_dispose(&u);
}

static void test_parse_malformed(void **state)
{
	static const char *const bad[] = {
	    "garbage",
	    Z40 " " A40,                  /* no ref */
	    Z40 " " A40 " ",              /* empty ref */
	    Z40 "  " A40 " refs/tags/v1", /* two spaces */
	    Z40 " " A40 "\trefs/tags/v1", /* tab */
	    "0000 " A40 " refs/tags/v1",  /* short id */
	    Z40 " " A40 "a refs/tags/v1", /* long id */
	    Z40 " gggggggggggggggggggggggggggggggggggggggg refs/tags/v1",
	    Z40 " " A40 " refs/tags/v1\r", /* CR is part of the name */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		te_hook_updates u = TE_HOOK_UPDATES_INIT;
		parse_ok(&u, bad[i]);
		assert_int_equal(u.count, 1);
		if (i == 8)
			/* well-formed line, but "v1\r" is no tag name */
			assert_int_equal(u.items[0].kind, TE_HOOK_BAD_NAME);
		else
			assert_int_equal(u.items[0].kind, TE_HOOK_MALFORMED);
		assert_null(u.items[0].tag);
		te_hook_updates_dispose(&u);
	}
}

static void test_parse_hostile_names(void **state)
{
	static const char *const refused[] = {
	    "refs/tags/-rf",
	    "refs/tags/../../etc/passwd",
	    "refs/tags/a..b",
	    "refs/tags/x y",
	    "refs/tags/a\x1b[31mred",
	    "refs/tags/a~1",
	    "refs/tags/a^{}",
	    "refs/tags/a:b",
	    "refs/tags/*",
	    "refs/tags/a\\b",
	    "refs/tags/.hidden",
	    "refs/tags/x.lock",
	    "refs/tags/a//b",
	    "refs/tags/@{1}",
	    "refs/tags/a?",
	    "refs/tags/[x]",
	};
	te_error err = TE_ERROR_INIT;
	char line[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		te_hook_updates u = TE_HOOK_UPDATES_INIT;
		snprintf(line, sizeof(line), Z40 " " A40 " %s\n", refused[i]);
		assert_int_equal(te_hook_parse(&u, line, strlen(line), &err),
		                 0);
		assert_int_equal(u.count, 1);
		if (u.items[0].kind != TE_HOOK_BAD_NAME)
			fail_msg("accepted %s", refused[i]);
		assert_null(u.items[0].tag);
		te_hook_updates_dispose(&u);
	}

	/* Shell metacharacters are valid ref names: accepted as data (they
	 * only ever travel as argv or JSON), and their files are hashes. */
	{
		te_hook_updates u = TE_HOOK_UPDATES_INIT;
		char stem[TE_HOOK_STEM_LEN + 1];
		parse_ok(&u, Z40 " " A40 " refs/tags/v1;touch>pwned$(id)\n");
		assert_int_equal(u.items[0].kind, TE_HOOK_TAG);
		assert_string_equal(u.items[0].tag, "v1;touch>pwned$(id)");
		assert_int_equal(
		    te_hook_job_stem(stem, A40, u.items[0].tag, &err), 0);
		assert_int_equal(strspn(stem, "0123456789abcdef-"),
		                 TE_HOOK_STEM_LEN);
		te_hook_updates_dispose(&u);
	}

	/* A NUL inside the line. */
	{
		te_hook_updates u = TE_HOOK_UPDATES_INIT;
		char nul[] = Z40 " " A40 " refs/tags/v1\0x\n";
		assert_int_equal(te_hook_parse(&u, nul, sizeof(nul) - 1, &err),
		                 0);
		assert_int_equal(u.count, 1);
		assert_int_equal(u.items[0].kind, TE_HOOK_MALFORMED);
		te_hook_updates_dispose(&u);
	}
}

static void test_parse_bounds(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_hook_updates u = TE_HOOK_UPDATES_INIT;
	size_t head = strlen(Z40 " " A40 " refs/tags/"), i, len;
	char *line, *many;
	const char *one = Z40 " " A40 " refs/heads/main\n";

	(void)state;
	/* A line of exactly TE_HOOK_LINE_MAX bytes is parsed (its name is
	 * too long to be a tag), one byte more is malformed. */
	line = malloc(TE_HOOK_LINE_MAX + 2);
	assert_non_null(line);
	memcpy(line, Z40 " " A40 " refs/tags/", head);
	memset(line + head, 'v', TE_HOOK_LINE_MAX - head);
	assert_int_equal(te_hook_parse(&u, line, TE_HOOK_LINE_MAX, &err), 0);
	assert_int_equal(u.items[0].kind, TE_HOOK_BAD_NAME);
	te_hook_updates_dispose(&u);
	line[TE_HOOK_LINE_MAX] = 'v';
	assert_int_equal(te_hook_parse(&u, line, TE_HOOK_LINE_MAX + 1, &err),
	                 0);
	assert_int_equal(u.items[0].kind, TE_HOOK_MALFORMED);
	te_hook_updates_dispose(&u);
	free(line);

	/* TE_HOOK_LINES_MAX lines are fine, one more refuses the input. */
	len = strlen(one);
	many = malloc(len * (TE_HOOK_LINES_MAX + 1));
	assert_non_null(many);
	for (i = 0; i < TE_HOOK_LINES_MAX + 1; i++)
		memcpy(many + i * len, one, len);
	assert_int_equal(te_hook_parse(&u, many, len * TE_HOOK_LINES_MAX, &err),
	                 0);
	assert_int_equal(u.count, TE_HOOK_LINES_MAX);
	te_hook_updates_dispose(&u);
	assert_int_equal(
	    te_hook_parse(&u, many, len * (TE_HOOK_LINES_MAX + 1), &err),
	    TE_EINVALID);
	assert_int_equal(u.count, 0);
	assert_null(u.items);
	assert_non_null(strstr(err.msg, "10000"));
	te_hook_updates_dispose(&u);
	free(many);
}

/* Fuzzer finds (tests/fuzz/regressions/hook): a last line without its LF
 * once had no slot in the array (heap overflow); many tag lines once
 * initialised libgit2 once per tag. */
static void test_parse_regressions(void **state)
{
	te_hook_updates u = TE_HOOK_UPDATES_INIT;
	te_buf in = TE_BUF_INIT(0);
	te_error err = TE_ERROR_INIT;
	char *many;
	size_t i, len;

	(void)state;
	read_regression(&in, "hook", "crash-two-lines-no-final-newline");
	assert_int_equal(te_hook_parse(&u, in.ptr, in.len, &err), 0);
	assert_int_equal(u.count, 2);
	assert_int_equal(u.items[0].kind, TE_HOOK_MALFORMED);
	assert_int_equal(u.items[1].kind, TE_HOOK_MALFORMED);
	assert_int_equal(u.items[1].line, 2);
	te_hook_updates_dispose(&u);
	te_buf_dispose(&in);

	/* every line but the first unterminated, blank lines between */
	parse_ok(&u, "x\n\ny\n\n\nz");
	assert_int_equal(u.count, 3);
	assert_int_equal(u.items[2].line, 6);
	te_hook_updates_dispose(&u);

	/* slow-1000-tag-lines, regenerated: 1,000 created tags */
	for (i = 0; i < 1000; i++)
		assert_int_equal(te_buf_printf(&in, &err,
		                               Z40 " 0123456789abcdef0123456789"
		                                   "abcdef01234567 "
		                                   "refs/tags/v%zu\n",
		                               i),
		                 0);
	assert_int_equal(te_hook_parse(&u, in.ptr, in.len, &err), 0);
	assert_int_equal(u.count, 1000);
	for (i = 0; i < 1000; i++)
		assert_int_equal(u.items[i].kind, TE_HOOK_TAG);
	assert_string_equal(u.items[999].tag, "v999");
	te_hook_updates_dispose(&u);
	te_buf_dispose(&in);

	/* TE_HOOK_LINES_MAX lines, the last without its LF */
	len = TE_HOOK_LINES_MAX * 2 - 1;
	many = malloc(len);
	assert_non_null(many);
	for (i = 0; i < len; i++)
		many[i] = i % 2 ? '\n' : 'q';
	assert_int_equal(te_hook_parse(&u, many, len, &err), 0);
	assert_int_equal(u.count, TE_HOOK_LINES_MAX);
	te_hook_updates_dispose(&u);
	free(many);
}

static void test_read_bounded(void **state)
{
	struct sandbox *s = *state;
	te_error err = TE_ERROR_INIT;
	te_buf b = TE_BUF_INIT(0);
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/input", s->root);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc\n", 4), 4);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(te_hook_read(&b, fd, &err), 0);
	assert_string_equal(b.ptr, "abc\n");
	te_buf_dispose(&b);
	/* One byte over the limit. */
	assert_int_equal(ftruncate(fd, (off_t)TE_HOOK_INPUT_MAX + 1), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(te_hook_read(&b, fd, &err), TE_EINVALID);
	te_buf_dispose(&b);
	close(fd);
}

/* ---- names, paths, templates ------------------------------------------------
 */

static void test_job_stem(void **state)
{
	te_error err = TE_ERROR_INIT;
	char stem[TE_HOOK_STEM_LEN + 1];

	(void)state;
	assert_int_equal(te_hook_job_stem(stem, A40, "v1.0.0", &err), 0);
	assert_int_equal(strlen(stem), TE_HOOK_STEM_LEN);
	assert_memory_equal(stem, A40 "-", 41);
	assert_int_equal(strspn(stem + 41, "0123456789abcdef"), 16);
	{
		char other[TE_HOOK_STEM_LEN + 1];
		assert_int_equal(te_hook_job_stem(other, A40, "v1.0.1", &err),
		                 0);
		assert_string_not_equal(stem, other);
	}
	assert_int_equal(te_hook_job_stem(stem, "../etc", "v1", &err),
	                 TE_EINVALID);
}

static void test_project_names(void **state)
{
	(void)state;
	assert_true(te_hook_project_name_valid("shop-api_2"));
	assert_false(te_hook_project_name_valid(""));
	assert_false(te_hook_project_name_valid("Shop"));
	assert_false(te_hook_project_name_valid("../x"));
	assert_false(te_hook_project_name_valid(
	    "a234567890123456789012345678901234567890123456789012345678901234"
	    "5"));
}

static void test_job_paths(void **state)
{
	struct sandbox *s = *state;
	te_error err = TE_ERROR_INIT;
	te_buf log = TE_BUF_INIT(4096), lock = TE_BUF_INIT(4096);
	char state_dir[256], want[512];
	struct stat st;

	snprintf(state_dir, sizeof(state_dir), "%s/state/deep", s->root);
	assert_int_equal(te_hook_job_paths(&log, &lock, state_dir, "shop", A40,
	                                   "../../x", &err),
	                 0);
	snprintf(want, sizeof(want), "%s/hooks/shop/" A40 "-", state_dir);
	assert_memory_equal(log.ptr, want, strlen(want));
	assert_string_equal(log.ptr + log.len - 4, ".log");
	assert_string_equal(lock.ptr + lock.len - 5, ".lock");
	snprintf(want, sizeof(want), "%s/hooks/shop", state_dir);
	assert_int_equal(stat(want, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	te_buf_dispose(&log);
	te_buf_dispose(&lock);
	assert_int_equal(
	    te_hook_job_paths(&log, &lock, state_dir, "../x", A40, "v1", &err),
	    TE_EINVALID);
	te_buf_dispose(&log);
	te_buf_dispose(&lock);
}

/* The project's templates for a tag go through the core's semver rule
 * (te_export_run applies it for the hook, the server and the CLI). */
static void test_pick_templates(void **state)
{
	static const char *const tpls[] = {"r/%image%:%git_tag%",
	                                   "r/%image%:%semver_major%",
	                                   "r/%image%:%semver%"};
	static const char *const repo_tags[] = {"v1.3.0", "v1.2.9"};
	te_error err = TE_ERROR_INIT;
	bool applies[3];
	size_t i, n;

	(void)state;
	/* v1.2.9 after v1.3.0: the floating :1 is skipped. */
	for (i = 0, n = 0; i < 3; i++) {
		assert_int_equal(te_semver_template_applies(&applies[i],
		                                            tpls[i], "v1.2.9",
		                                            repo_tags, 2, &err),
		                 0);
		n += applies[i];
	}
	assert_int_equal(n, 2);
	assert_true(applies[0]);
	assert_true(applies[2]);
	/* Not semver: only the plain template. */
	for (i = 0, n = 0; i < 3; i++) {
		assert_int_equal(te_semver_template_applies(&applies[i],
		                                            tpls[i], "nightly",
		                                            repo_tags, 2, &err),
		                 0);
		n += applies[i];
	}
	assert_int_equal(n, 1);
}

/* ---- repository -------------------------------------------------------------
 */

static void test_repo_peel_and_tags(void **state)
{
	struct sandbox *s = *state;
	te_error err = TE_ERROR_INIT;
	te_hook_repo *repo = NULL;
	te_gitsrc *src = NULL;
	te_strvec tags = TE_STRVEC_INIT;
	char commit[41];

	assert_int_equal(te_hook_repo_open(&repo, s->git_dir, &err), 0);
	assert_int_equal(te_hook_repo_peel(commit, repo, s->commit, &err), 0);
	assert_string_equal(commit, s->commit);
	/* An annotated tag object peels to its commit. */
	assert_int_equal(te_hook_repo_peel(commit, repo, s->tag_obj, &err), 0);
	assert_string_equal(commit, s->commit);
	/* A tree is not a commit. */
	assert_int_equal(te_hook_repo_peel(commit, repo, s->tree, &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_hook_repo_peel(commit, repo, B40, &err),
	                 TE_ENOTFOUND);
	te_error_clear(&err);
	assert_int_equal(te_hook_repo_peel(commit, repo, "HEAD", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_hook_repo_tag_commit(commit, repo, "v2.0.0", &err),
	                 0);
	assert_string_equal(commit, s->commit);
	assert_int_equal(te_hook_repo_tag_commit(commit, repo, "nope", &err),
	                 TE_ENOTFOUND);
	te_error_clear(&err);
	te_hook_repo_free(repo);
	/* The tag list the semver rule judges by comes from gitsrc. */
	assert_int_equal(te_gitsrc_open(&src, s->git_dir, &err), 0);
	assert_int_equal(te_gitsrc_tag_names(&tags, src, &err), 0);
	assert_int_equal(tags.count, 2);
	assert_true(te_strvec_contains(&tags, "v1.0.0"));
	assert_true(te_strvec_contains(&tags, "v2.0.0"));
	te_strvec_dispose(&tags);
	te_gitsrc_free(src);

	assert_int_equal(te_hook_repo_open(&repo, s->root, &err), TE_ENOTFOUND);
	assert_null(repo);
}

static void test_settings_roundtrip(void **state)
{
	struct sandbox *s = *state;
	te_error err = TE_ERROR_INIT;
	te_hook_repo *repo = NULL;
	te_hook_settings in = TE_HOOK_SETTINGS_INIT;
	te_hook_settings out = TE_HOOK_SETTINGS_INIT;
	char project[] = "shop", config[] = "/etc/tagexport/server.yaml";
	char bin[] = "/usr/bin/tagexport", server[] = "http://127.0.0.1:8080";
	char token[] = "/etc/tagexport/token";

	assert_int_equal(te_hook_repo_open(&repo, s->git_dir, &err), 0);
	in.project = project;
	in.config = config;
	in.bin = bin;
	assert_int_equal(te_hook_settings_write(repo, &in, &err), 0);
	assert_int_equal(te_hook_settings_read(&out, repo, &err), 0);
	assert_string_equal(out.project, "shop");
	assert_string_equal(out.config, "/etc/tagexport/server.yaml");
	assert_null(out.server);
	te_hook_settings_dispose(&out);
	/* Switching to server mode drops the standalone key. */
	in.config = NULL;
	in.server = server;
	in.token_file = token;
	assert_int_equal(te_hook_settings_write(repo, &in, &err), 0);
	assert_int_equal(te_hook_settings_read(&out, repo, &err), 0);
	assert_null(out.config);
	assert_string_equal(out.server, "http://127.0.0.1:8080");
	assert_string_equal(out.token_file, "/etc/tagexport/token");
	assert_string_equal(out.bin, "/usr/bin/tagexport");
	te_hook_settings_dispose(&out);
	te_hook_repo_free(repo);
}

/* ---- install
 * ------------------------------------------------------------------- */

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Where hooks go: <git dir>/hooks, or core.hooksPath as git reads it. */
static void test_hooks_dir(void **state)
{
	struct sandbox *s = *state;
	te_error err = TE_ERROR_INIT;
	te_hook_repo *repo = NULL;
	git_config *cfg = NULL;
	char want[600], *dir = NULL;
	const char *gd;

	assert_int_equal(te_hook_repo_open(&repo, s->git_dir, &err), 0);
	gd = te_hook_repo_path(repo); /* ends in "/" */
	assert_int_equal(te_hook_repo_hooks_dir(&dir, repo, &err), 0);
	snprintf(want, sizeof(want), "%shooks", gd);
	assert_string_equal(dir, want);
	free(dir);
	te_hook_repo_free(repo);

	assert_int_equal(git_repository_config(&cfg, s->repo), 0);
	assert_int_equal(
	    git_config_set_string(cfg, "core.hooksPath", "/srv/git-hooks"), 0);
	assert_int_equal(te_hook_repo_open(&repo, s->git_dir, &err), 0);
	assert_int_equal(te_hook_repo_hooks_dir(&dir, repo, &err), 0);
	assert_string_equal(dir, "/srv/git-hooks");
	free(dir);
	te_hook_repo_free(repo);

	/* Relative: to the repository itself, since it is bare. */
	assert_int_equal(
	    git_config_set_string(cfg, "core.hooksPath", "shared-hooks"), 0);
	assert_int_equal(te_hook_repo_open(&repo, s->git_dir, &err), 0);
	assert_int_equal(te_hook_repo_hooks_dir(&dir, repo, &err), 0);
	snprintf(want, sizeof(want), "%sshared-hooks", te_hook_repo_path(repo));
	assert_string_equal(dir, want);
	free(dir);
	te_hook_repo_free(repo);
	assert_int_equal(git_config_delete_entry(cfg, "core.hooksPath"), 0);
	git_config_free(cfg);
}

static void test_install(void **state)
{
	struct sandbox *s = *state;
	te_error err = TE_ERROR_INIT;
	te_hook_install_result r;
	char dir[256], hook[300], chained[320], *path = NULL;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/inst.git", s->root);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(hook, sizeof(hook), "%s/hooks/post-receive", dir);
	/* The hooks directory of that repository. */
	strncat(dir, "/hooks", sizeof(dir) - strlen(dir) - 1);
	snprintf(chained, sizeof(chained), "%s.chained", hook);

	/* New (the hooks directory is created), then idempotent. */
	assert_int_equal(te_hook_install(&r, &path, dir, script, false, &err),
	                 0);
	assert_int_equal(r, TE_HOOK_INSTALL_NEW);
	assert_string_equal(path, hook);
	free(path);
	assert_int_equal(stat(hook, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
	assert_string_equal(slurp(hook), script);
	assert_int_equal(te_hook_install(&r, NULL, dir, script, false, &err),
	                 0);
	assert_int_equal(r, TE_HOOK_INSTALL_SAME);

	/* An older tagexport script is replaced. */
	write_file(hook, "#!/bin/sh\n" TE_HOOK_SCRIPT_MARKER "\nold\n", 0755);
	assert_int_equal(te_hook_install(&r, NULL, dir, script, false, &err),
	                 0);
	assert_int_equal(r, TE_HOOK_INSTALL_UPDATED);
	assert_string_equal(slurp(hook), script);

	/* A foreign hook is refused, untouched, with a hint... */
	write_file(hook, "#!/bin/sh\necho mine\n", 0755);
	assert_int_equal(te_hook_install(&r, NULL, dir, script, false, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "--chain"));
	assert_string_equal(slurp(hook), "#!/bin/sh\necho mine\n");
	te_error_clear(&err);
	/* ...and chained on request. */
	assert_int_equal(te_hook_install(&r, NULL, dir, script, true, &err), 0);
	assert_int_equal(r, TE_HOOK_INSTALL_CHAINED);
	assert_string_equal(slurp(chained), "#!/bin/sh\necho mine\n");
	assert_string_equal(slurp(hook), script);
	assert_int_equal(te_hook_install(&r, NULL, dir, script, true, &err), 0);
	assert_int_equal(r, TE_HOOK_INSTALL_SAME);
	/* A second foreign hook cannot take the chained name. */
	write_file(hook, "#!/bin/sh\necho other\n", 0755);
	assert_int_equal(te_hook_install(&r, NULL, dir, script, true, &err),
	                 TE_EINVALID);
	assert_string_equal(slurp(hook), "#!/bin/sh\necho other\n");
	te_error_clear(&err);

	/* A symlinked hook is foreign. */
	assert_int_equal(unlink(hook), 0);
	assert_int_equal(symlink("/bin/true", hook), 0);
	assert_int_equal(te_hook_install(&r, NULL, dir, script, false, &err),
	                 TE_EINVALID);
	te_error_clear(&err);

	/* The script must carry the marker. */
	assert_int_equal(
	    te_hook_install(&r, NULL, dir, "#!/bin/sh\n", false, &err),
	    TE_EINVALID);
	te_error_clear(&err);
}

static void test_install_gitea_layout(void **state)
{
	struct sandbox *s = *state;
	te_error err = TE_ERROR_INIT;
	te_hook_install_result r;
	char dir[256], d[300], hook[300], *path = NULL;

	snprintf(dir, sizeof(dir), "%s/gitea.git", s->root);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(d, sizeof(d), "%s/hooks", dir);
	assert_int_equal(mkdir(d, 0755), 0);
	snprintf(hook, sizeof(hook), "%s/hooks/post-receive", dir);
	write_file(hook, "#!/bin/sh\n# gitea dispatcher\n", 0755);
	snprintf(d, sizeof(d), "%s/hooks/post-receive.d", dir);
	assert_int_equal(mkdir(d, 0755), 0);
	snprintf(d, sizeof(d), "%s/hooks", dir);
	assert_int_equal(te_hook_install(&r, &path, d, script, false, &err), 0);
	assert_int_equal(r, TE_HOOK_INSTALL_NEW);
	assert_non_null(strstr(path, "/hooks/post-receive.d/tagexport"));
	free(path);
	assert_string_equal(slurp(hook), "#!/bin/sh\n# gitea dispatcher\n");
}

static void test_lock(void **state)
{
	struct sandbox *s = *state;
	te_error err = TE_ERROR_INIT;
	char path[256];
	int fd1 = -1, fd2 = -1;
	bool busy = true;

	snprintf(path, sizeof(path), "%s/x.lock", s->root);
	assert_int_equal(te_hook_lock(&fd1, &busy, path, &err), 0);
	assert_false(busy);
	assert_true(fd1 >= 0);
	assert_int_equal(te_hook_lock(&fd2, &busy, path, &err), 0);
	assert_true(busy);
	assert_int_equal(fd2, -1);
	close(fd1);
	assert_int_equal(te_hook_lock(&fd2, &busy, path, &err), 0);
	assert_false(busy);
	close(fd2);
}

static void test_spawn_detached(void **state)
{
	struct sandbox *s = *state;
	te_error err = TE_ERROR_INIT;
	char log[256], lock[256], script_path[256], cmd[600];
	const char *argv[] = {"sh", "-c", "", NULL};
	int log_fd, lock_fd = -1, fd = -1, i;
	bool busy = false;
	char *text = NULL;

	snprintf(log, sizeof(log), "%s/spawn.log", s->root);
	snprintf(lock, sizeof(lock), "%s/spawn.lock", s->root);
	snprintf(script_path, sizeof(script_path), "%s/done", s->root);
	/* Reports its cwd, its stdin and its open descriptors, then holds
	 * the lock (fd 3) for a moment. */
	snprintf(cmd, sizeof(cmd),
	         "pwd; read x || echo stdin-empty; ls /proc/$$/fd; echo END; "
	         "sleep 0.5; : >%s",
	         script_path);
	argv[2] = cmd;
	log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	assert_true(log_fd >= 0);
	assert_int_equal(te_hook_lock(&lock_fd, &busy, lock, &err), 0);
	assert_int_equal(
	    te_hook_spawn_detached("/bin/sh", argv, log_fd, lock_fd, &err), 0);
	close(log_fd);
	close(lock_fd);
	/* The child holds the lock now, not us. */
	assert_int_equal(te_hook_lock(&fd, &busy, lock, &err), 0);
	assert_true(busy);
	for (i = 0; i < 100 && access(script_path, F_OK) != 0; i++)
		usleep(50000);
	assert_int_equal(access(script_path, F_OK), 0);
	usleep(100000);
	text = slurp(log);
	assert_non_null(text);
	assert_non_null(strstr(text, "/\nstdin-empty\n0\n1\n2\n3\nEND\n"));
	assert_int_equal(te_hook_lock(&fd, &busy, lock, &err), 0);
	assert_false(busy);
	close(fd);

	argv[0] = "nope";
	assert_int_equal(
	    te_hook_spawn_detached("/nonexistent/bin", argv, 2, 2, &err),
	    TE_EIO);
	assert_non_null(strstr(err.msg, "cannot start"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_kinds),
	    cmocka_unit_test(test_parse_last_line_and_blanks),
	    cmocka_unit_test(test_parse_malformed),
	    cmocka_unit_test(test_parse_hostile_names),
	    cmocka_unit_test(test_parse_bounds),
	    cmocka_unit_test(test_parse_regressions),
	    cmocka_unit_test(test_read_bounded),
	    cmocka_unit_test(test_job_stem),
	    cmocka_unit_test(test_project_names),
	    cmocka_unit_test(test_job_paths),
	    cmocka_unit_test(test_pick_templates),
	    cmocka_unit_test(test_repo_peel_and_tags),
	    cmocka_unit_test(test_settings_roundtrip),
	    cmocka_unit_test(test_hooks_dir),
	    cmocka_unit_test(test_install),
	    cmocka_unit_test(test_install_gitea_layout),
	    cmocka_unit_test(test_lock),
	    cmocka_unit_test(test_spawn_detached),
	};

	return cmocka_run_group_tests(tests, sandbox_setup, sandbox_teardown);
}
