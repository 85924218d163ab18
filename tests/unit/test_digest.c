/*
 * test_digest.c - content-based tags over real repositories built with
 * libgit2 in mkdtemp directories.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "git_fixture.h"

#include "tagexport/digest.h"

static const char dockerfile[] = "FROM alpine:3.19 AS base\n"
                                 "ARG V=1\n"
                                 "COPY src/ /src/\n"
                                 "COPY main.c cfg /app/\n"
                                 "FROM base AS test\n"
                                 "COPY tests/ /tests/\n"
                                 "FROM base AS final\n"
                                 "RUN echo \"$V\"\n";

static const th_file project[] = {
    {"werf.yaml", "project: p\nconfigVersion: 1\n", 0},
    {"app/Dockerfile", dockerfile, 0},
    {"app/.dockerignore", "**/*.log\n", 0},
    {"app/main.c", "int main(void) { return 0; }\n", 0},
    {"app/README.md", "readme\n", 0},
    {"app/src/a.c", "a\n", 0},
    {"app/src/b.sh", "b\n", 0100755},
    {"app/src/debug.log", "log\n", 0},
    {"app/tests/t.c", "t\n", 0},
    {"app/cfg", "conf/real.txt", 0120000},
    {"app/conf/real.txt", "real\n", 0},
    {"app/conf/other.txt", "other\n", 0},
    {"outside.txt", "x\n", 0},
};
#define NPROJECT (sizeof(project) / sizeof(project[0]))

struct fixture {
	char *dir;
	git_repository *repo;
	te_gitsrc *src;
	char base[41];
};

static void fixture_init(struct fixture *f, const char *msg)
{
	te_error err = TE_ERROR_INIT;

	assert_int_equal(te_gitsrc_global_init(&err), 0);
	f->dir = th_tmpdir();
	f->repo = th_init(f->dir);
	th_commit(f->base, f->repo, project, NPROJECT, msg);
	assert_int_equal(te_gitsrc_open(&f->src, f->dir, &err), 0);
}

static void fixture_dispose(struct fixture *f)
{
	te_gitsrc_free(f->src);
	git_repository_free(f->repo);
	th_rm_rf(f->dir);
	free(f->dir);
	git_libgit2_shutdown();
}

static void image_init(te_image_config *img)
{
	te_error err = TE_ERROR_INIT;

	memset(img, 0, sizeof(*img));
	img->name = (char *)"app";
	img->dockerfile = (char *)"Dockerfile";
	img->context = (char *)"app";
	img->final = true;
	assert_int_equal(te_strvec_push(&img->args, "V=1", &err), 0);
}

/* Tag of img at commit (asserts success). */
static void tag_of(char out[TE_CONTENT_TAG_LEN + 1], te_gitsrc *src,
                   const char *commit, const te_image_config *img,
                   const char *platform)
{
	te_image_inputs in = TE_IMAGE_INPUTS_INIT;
	te_error err = TE_ERROR_INIT;
	size_t i;

	if (te_digest_image(&in, src, commit, img, platform, &err) != 0)
		fail_msg("te_digest_image: %s", err.msg);
	assert_int_equal(strlen(in.content_tag), TE_CONTENT_TAG_LEN);
	for (i = 0; i < TE_CONTENT_TAG_LEN; i++)
		assert_non_null(strchr("0123456789abcdef", in.content_tag[i]));
	memcpy(out, in.content_tag, TE_CONTENT_TAG_LEN + 1);
	te_image_inputs_dispose(&in);
}

static void hasher_joins_with_colons(void **state)
{
	te_error err = TE_ERROR_INIT;
	char out[TE_CONTENT_TAG_LEN + 1];
	te_digest *d;

	(void)state;
	assert_int_equal(te_digest_new(&d, &err), 0);
	assert_int_equal(te_digest_field(d, "a", 1, &err), 0);
	assert_int_equal(te_digest_field(d, "b", 1, &err), 0);
	assert_int_equal(te_digest_final(out, d, &err), 0);
	/* python3: hashlib.sha3_224(b"a:::b").hexdigest() */
	assert_string_equal(
	    out, "79dd04f1b62d7ca1423b75bc1f7b37a2a8f2b79d7e2f56f549ecd632");
	te_digest_free(d);
}

static void multiplatform_tag_sorts_by_platform(void **state)
{
	static const char a[] =
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	static const char b[] =
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	const char *platforms[] = {"linux/arm64", "linux/amd64"};
	const char *tags[] = {a, b};
	const char *rplatforms[] = {"linux/amd64", "linux/arm64"};
	const char *rtags[] = {b, a};
	const char *dup[] = {"linux/amd64", "linux/amd64"};
	const char *bad[] = {a, "B"};
	char out[TE_CONTENT_TAG_LEN + 1], again[TE_CONTENT_TAG_LEN + 1];
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(te_digest_multiplatform(out, platforms, tags, 2, &err),
	                 0);
	/* python3: hashlib.sha3_224((b * 56 + ":::" + a * 56).encode()) */
	assert_string_equal(
	    out, "0fbb9250bfbb10682a6e6bd8a55708ff8f3992ac11e356b57a71e5d3");
	assert_int_equal(
	    te_digest_multiplatform(again, rplatforms, rtags, 2, &err), 0);
	assert_string_equal(out, again);
	assert_int_equal(te_digest_multiplatform(out, platforms, tags, 1, &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_digest_multiplatform(out, dup, tags, 2, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "listed twice"));
	te_error_clear(&err);
	assert_int_equal(te_digest_multiplatform(out, platforms, bad, 2, &err),
	                 TE_EINVALID);
}

static void inputs_are_the_read_files(void **state)
{
	static const char *const want[] = {
	    ".dockerignore", "Dockerfile", "cfg",     "conf/real.txt",
	    "main.c",        "src/a.c",    "src/b.sh"};
	struct fixture f;
	te_image_config img;
	te_image_inputs in = TE_IMAGE_INPUTS_INIT;
	te_error err = TE_ERROR_INIT;
	size_t i;

	(void)state;
	fixture_init(&f, "one");
	image_init(&img);
	if (te_digest_image(&in, f.src, f.base, &img, NULL, &err) != 0)
		fail_msg("te_digest_image: %s", err.msg);
	assert_string_equal(in.context_dir, "app");
	assert_string_equal(in.dockerfile_path, "Dockerfile");
	assert_int_equal(in.files.count, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < in.files.count; i++)
		assert_string_equal(in.files.items[i], want[i]);
	assert_int_equal(in.bases.count, 1);
	assert_string_equal(in.bases.items[0], "alpine:3.19");
	te_image_inputs_dispose(&in);

	img.dockerfile = (char *)"Missing.Dockerfile";
	assert_int_equal(te_digest_image(&in, f.src, f.base, &img, NULL, &err),
	                 TE_ENOTFOUND);
	te_error_clear(&err);
	img.dockerfile = (char *)"../werf.yaml";
	assert_int_equal(te_digest_image(&in, f.src, f.base, &img, NULL, &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	img.dockerfile = (char *)"Dockerfile";
	img.target = (char *)"no-such-stage";
	assert_int_equal(te_digest_image(&in, f.src, f.base, &img, NULL, &err),
	                 TE_EINVALID);
	te_strvec_dispose(&img.args);
	fixture_dispose(&f);
}

/* A .dockerignore whose patterns would take too long on a path is an
 * error naming the file and the limit, not a wrong set of files. */
static void dockerignore_budget(void **state)
{
	te_buf ig = TE_BUF_INIT(2 * 1024 * 1024);
	te_image_inputs in = TE_IMAGE_INPUTS_INIT;
	te_error err = TE_ERROR_INIT;
	struct fixture f;
	te_image_config img;
	char commit[41], name[256];
	th_file files[2];
	int i, j;

	(void)state;
	fixture_init(&f, "one");
	image_init(&img);
	for (i = 0; i < 250; i++) {
		assert_int_equal(te_buf_puts(&ig, "src/", &err), 0);
		for (j = 0; j < 2040; j++)
			assert_int_equal(te_buf_puts(&ig, "*a", &err), 0);
		assert_int_equal(te_buf_puts(&ig, "\n", &err), 0);
	}
	snprintf(name, sizeof(name), "app/src/%0200d", 0);
	memset(name + 8, 'a', 200);
	files[0] = (th_file){"app/.dockerignore", ig.ptr, 0};
	files[1] = (th_file){name, "x\n", 0};
	th_commit(commit, f.repo, files, 2, "hostile");
	assert_int_equal(te_digest_image(&in, f.src, commit, &img, NULL, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, ".dockerignore"));
	assert_non_null(strstr(err.msg, "more than 4194304 steps"));
	te_buf_dispose(&ig);
	te_strvec_dispose(&img.args);
	fixture_dispose(&f);
}

static void same_content_same_tag(void **state)
{
	struct fixture a, b;
	te_image_config img;
	char t1[TE_CONTENT_TAG_LEN + 1], t2[TE_CONTENT_TAG_LEN + 1];
	char t3[TE_CONTENT_TAG_LEN + 1];

	(void)state;
	fixture_init(&a, "first repository");
	image_init(&img);
	tag_of(t1, a.src, a.base, &img, NULL);
	tag_of(t2, a.src, a.base, &img, NULL);
	assert_string_equal(t1, t2);
	fixture_init(&b, "another message, another commit id");
	assert_string_not_equal(a.base, b.base);
	tag_of(t3, b.src, b.base, &img, NULL);
	assert_string_equal(t1, t3);
	te_strvec_dispose(&img.args);
	fixture_dispose(&b);
	fixture_dispose(&a);
}

static void only_real_inputs_change_the_tag(void **state)
{
	struct fixture f;
	te_image_config img;
	char base[TE_CONTENT_TAG_LEN + 1], t[TE_CONTENT_TAG_LEN + 1];
	char commit[41], path[4096];
	th_file change;

	(void)state;
	fixture_init(&f, "one");
	image_init(&img);
	tag_of(base, f.src, f.base, &img, NULL);

#define SAME_AFTER(path, data)                                                 \
	do {                                                                   \
		change = (th_file){path, data, 0};                             \
		th_commit(commit, f.repo, &change, 1, path);                   \
		tag_of(t, f.src, commit, &img, NULL);                          \
		assert_string_equal(t, base);                                  \
	} while (0)
#define CHANGED_AFTER(path, data)                                              \
	do {                                                                   \
		change = (th_file){path, data, 0};                             \
		th_commit(commit, f.repo, &change, 1, path);                   \
		tag_of(t, f.src, commit, &img, NULL);                          \
		assert_string_not_equal(t, base);                              \
		memcpy(base, t, sizeof(base));                                 \
	} while (0)

	SAME_AFTER("app/README.md", "changed, but no COPY reads it\n");
	SAME_AFTER("app/src/debug.log", "ignored by .dockerignore\n");
	SAME_AFTER("app/tests/t.c", "only the test stage reads it\n");
	SAME_AFTER("app/conf/other.txt", "not behind the cfg symlink\n");
	SAME_AFTER("outside.txt", "outside the context\n");
	if (snprintf(path, sizeof(path), "%s/app", f.dir) >= (int)sizeof(path))
		abort();
	assert_int_equal(mkdir(path, 0755), 0);
	th_write(f.dir, "app/main.c", "uncommitted\n");
	SAME_AFTER("werf.yaml", "project: p\nconfigVersion: 1\n# c\n");

	CHANGED_AFTER("app/src/a.c", "a2\n");
	CHANGED_AFTER("app/src/new.c", "new file under a COPYed dir\n");
	CHANGED_AFTER("app/main.c", "int main(void) { return 1; }\n");
	CHANGED_AFTER("app/conf/real.txt", "behind the cfg symlink\n");
	CHANGED_AFTER("app/Dockerfile", "FROM alpine:3.20 AS base\n"
	                                "COPY src/ /src/\n");
	CHANGED_AFTER("app/.dockerignore", "");
	CHANGED_AFTER("app/src/debug.log", "no longer ignored\n");
	CHANGED_AFTER("app/Dockerfile.dockerignore", "src/a.c\n");
	SAME_AFTER("app/src/a.c", "now ignored by the Dockerfile's own file\n");
	te_strvec_dispose(&img.args);
	fixture_dispose(&f);
}

static void build_settings_change_the_tag(void **state)
{
	struct fixture f;
	te_image_config img;
	char base[TE_CONTENT_TAG_LEN + 1], t[TE_CONTENT_TAG_LEN + 1];
	te_error err = TE_ERROR_INIT;

	(void)state;
	fixture_init(&f, "one");
	image_init(&img);
	tag_of(base, f.src, f.base, &img, NULL);

	tag_of(t, f.src, f.base, &img, "linux/arm64");
	assert_string_not_equal(t, base);
	tag_of(t, f.src, f.base, &img, "linux/amd64");
	assert_string_not_equal(t, base);

	img.target = (char *)"test";
	tag_of(t, f.src, f.base, &img, NULL);
	assert_string_not_equal(t, base);
	img.target = NULL;

	te_strvec_dispose(&img.args);
	assert_int_equal(te_strvec_push(&img.args, "V=2", &err), 0);
	tag_of(t, f.src, f.base, &img, NULL);
	assert_string_not_equal(t, base);
	te_strvec_dispose(&img.args);
	tag_of(t, f.src, f.base, &img, NULL);
	assert_string_not_equal(t, base);
	assert_int_equal(te_strvec_push(&img.args, "V=1", &err), 0);
	tag_of(t, f.src, f.base, &img, NULL);
	assert_string_equal(t, base);

	/* the same files seen through a different context spelling */
	img.context = (char *)"./app/";
	tag_of(t, f.src, f.base, &img, NULL);
	assert_string_equal(t, base);
	te_strvec_dispose(&img.args);
	fixture_dispose(&f);
}

/* cacheVersion, build.cacheVersion and dependency imports are in the tag
 * when set; unset, the tag is the one it always was. */
static void werf_keys_change_the_tag(void **state)
{
	struct fixture f;
	te_image_config img;
	te_image_import imp = {TE_IMPORT_IMAGE_NAME, (char *)"BASE"};
	te_image_dependency dep = {(char *)"base", &imp, 1, 1};
	char base[TE_CONTENT_TAG_LEN + 1], t[TE_CONTENT_TAG_LEN + 1];
	char t2[TE_CONTENT_TAG_LEN + 1];

	(void)state;
	fixture_init(&f, "one");
	image_init(&img);
	tag_of(base, f.src, f.base, &img, NULL);
	img.cache_version = (char *)"1";
	tag_of(t, f.src, f.base, &img, NULL);
	assert_string_not_equal(t, base);
	img.cache_version = NULL;
	img.build_cache_version = (char *)"1";
	tag_of(t2, f.src, f.base, &img, NULL);
	assert_string_not_equal(t2, base);
	assert_string_not_equal(t2, t); /* build's and the image's differ */
	img.build_cache_version = NULL;
	img.deps = &dep;
	img.ndeps = 1;
	tag_of(t, f.src, f.base, &img, NULL);
	assert_string_not_equal(t, base);
	imp.type = TE_IMPORT_IMAGE_TAG;
	tag_of(t2, f.src, f.base, &img, NULL);
	assert_string_not_equal(t2, t);
	img.deps = NULL;
	img.ndeps = 0;
	tag_of(t, f.src, f.base, &img, NULL);
	assert_string_equal(t, base);
	te_strvec_dispose(&img.args);
	fixture_dispose(&f);
}

static void target_stage_reads_more(void **state)
{
	struct fixture f;
	te_image_config img;
	char base[TE_CONTENT_TAG_LEN + 1], t[TE_CONTENT_TAG_LEN + 1];
	char commit[41];
	th_file change = {"app/tests/t.c", "t2\n", 0};

	(void)state;
	fixture_init(&f, "one");
	image_init(&img);
	img.target = (char *)"test";
	tag_of(base, f.src, f.base, &img, NULL);
	th_commit(commit, f.repo, &change, 1, "tests");
	tag_of(t, f.src, commit, &img, NULL);
	assert_string_not_equal(t, base);
	te_strvec_dispose(&img.args);
	fixture_dispose(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(hasher_joins_with_colons),
	    cmocka_unit_test(multiplatform_tag_sorts_by_platform),
	    cmocka_unit_test(inputs_are_the_read_files),
	    cmocka_unit_test(same_content_same_tag),
	    cmocka_unit_test(only_real_inputs_change_the_tag),
	    cmocka_unit_test(build_settings_change_the_tag),
	    cmocka_unit_test(werf_keys_change_the_tag),
	    cmocka_unit_test(target_stage_reads_more),
	    cmocka_unit_test(dockerignore_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
