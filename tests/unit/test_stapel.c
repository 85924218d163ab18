#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/config.h"
#include "tagexport/gitsrc.h"
#include "tagexport/plan.h"
#include "tagexport/stapel.h"

#include "config_test.h"
#include "git_fixture.h"

static const char full_yaml[] =
    META "image: app\n"                                  /* 4 */
         "from: alpine:3.20\n"                           /* 5 */
         "fromCacheVersion: fc1\n"                       /* 6 */
         "cacheVersion: c1\n"                            /* 7 */
         "git:\n"                                        /* 8 */
         "- add: /src/./app/\n"                          /* 9 */
         "  to: /app\n"                                  /* 10 */
         "  owner: app\n"                                /* 11 */
         "  group: 1000\n"                               /* 12 */
         "  includePaths: ['*.go', go.mod]\n"            /* 13 */
         "  excludePaths: vendor\n"                      /* 14 */
         "  stageDependencies:\n"                        /* 15 */
         "    install: [go.mod, go.sum]\n"               /* 16 */
         "    setup: '**/*.go'\n"                        /* 17 */
         "- to: /all\n"                                  /* 18 */
         "shell:\n"                                      /* 19 */
         "  beforeInstall: apk add git\n"                /* 20 */
         "  install: [go mod download, echo ok]\n"       /* 21 */
         "  setup: [go build]\n"                         /* 22 */
         "  cacheVersion: s1\n"                          /* 23 */
         "  installCacheVersion: i1\n"                   /* 24 */
         "import:\n"                                     /* 25 */
         "- image: tools\n"                              /* 26 */
         "  add: /usr/bin/tool\n"                        /* 27 */
         "  after: install\n"                            /* 28 */
         "- from: nginx:1.25\n"                          /* 29 */
         "  add: /etc/nginx\n"                           /* 30 */
         "  to: /opt/nginx\n"                            /* 31 */
         "  before: setup\n"                             /* 32 */
         "  stage: install\n"                            /* 33 */
         "  owner: www\n"                                /* 34 */
         "  includePaths: [conf.d]\n"                    /* 35 */
         "mount:\n"                                      /* 36 */
         "- from: tmp_dir\n"                             /* 37 */
         "  to: /var/cache/apk\n"                        /* 38 */
         "- from: build_dir\n"                           /* 39 */
         "  to: /root/.cache\n"                          /* 40 */
         "dependencies:\n"                               /* 41 */
         "- image: tools\n"                              /* 42 */
         "  before: install\n"                           /* 43 */
         "  imports:\n"                                  /* 44 */
         "  - {type: ImageName, targetEnv: TOOLS}\n"     /* 45 */
         "  - {type: ImageDigest, targetEnv: TOOLS_D}\n" /* 46 */
         "docker:\n"                                     /* 47 */
         "  WORKDIR: /app\n"                             /* 48 */
         "  USER: app\n"                                 /* 49 */
         "  ENV: {B: 2, A: x}\n"                         /* 50 */
         "  LABEL: {l: v}\n"                             /* 51 */
         "  EXPOSE: ['80', 443/tcp]\n"                   /* 52 */
         "  VOLUME: /data\n"                             /* 53 */
         "  ENTRYPOINT: [/app/run, \"a \\\"b\\\"\"]\n"   /* 54 */
         "  CMD: serve --port 80\n"                      /* 55 */
         "---\n"
         "image: tools\n"
         "from: alpine\n";

static void full_document(void **state)
{
	te_werf_config *cfg;
	const te_stapel_image *s;
	const te_stapel_git *g;
	const te_stapel_import *im;

	(void)state;
	cfg = parse_ok(full_yaml);
	assert_int_equal(cfg->nimages, 2);
	assert_string_equal(cfg->images[0].name, "app");
	assert_null(cfg->images[0].dockerfile);
	s = cfg->images[0].stapel;
	assert_non_null(s);
	assert_false(s->artifact);
	assert_string_equal(s->from, "alpine:3.20");
	assert_null(s->from_image);
	assert_int_equal(s->from_line, 5);
	assert_string_equal(s->from_cache_version, "fc1");
	assert_string_equal(s->cache_version, "c1");
	assert_int_equal(s->line, 4);

	assert_int_equal(s->ngit, 2);
	g = &s->git[0];
	assert_null(g->url);
	assert_string_equal(g->add, "/src/app");
	assert_string_equal(g->to, "/app");
	assert_string_equal(g->owner, "app");
	assert_string_equal(g->group, "1000");
	assert_int_equal(g->include_paths.count, 2);
	assert_string_equal(g->include_paths.items[0], "*.go");
	assert_int_equal(g->exclude_paths.count, 1);
	assert_int_equal(g->stage_deps[TE_STAPEL_INSTALL].count, 2);
	assert_int_equal(g->stage_deps[TE_STAPEL_BEFORE_SETUP].count, 0);
	assert_string_equal(g->stage_deps[TE_STAPEL_SETUP].items[0], "**/*.go");
	assert_int_equal(g->line, 9);
	assert_string_equal(s->git[1].add, "/");
	assert_null(s->git[1].owner);

	assert_string_equal(s->shell.cmds[TE_STAPEL_BEFORE_INSTALL].items[0],
	                    "apk add git");
	assert_int_equal(s->shell.cmds[TE_STAPEL_INSTALL].count, 2);
	assert_int_equal(s->shell.cmds[TE_STAPEL_BEFORE_SETUP].count, 0);
	assert_string_equal(s->shell.cache_version, "s1");
	assert_string_equal(s->shell.stage_cache_version[TE_STAPEL_INSTALL],
	                    "i1");
	assert_null(s->shell.stage_cache_version[TE_STAPEL_SETUP]);

	assert_int_equal(s->nimports, 2);
	im = &s->imports[0];
	assert_string_equal(im->image, "tools");
	assert_null(im->external);
	assert_string_equal(im->to, "/usr/bin/tool");
	assert_int_equal(im->when, TE_STAPEL_AFTER_INSTALL_STAGE);
	im = &s->imports[1];
	assert_null(im->image);
	assert_string_equal(im->external, "nginx:1.25");
	assert_string_equal(im->to, "/opt/nginx");
	assert_string_equal(im->stage, "install");
	assert_int_equal(im->when, TE_STAPEL_BEFORE_SETUP_STAGE);

	assert_int_equal(s->nmounts, 2);
	assert_int_equal(s->mounts[0].from, TE_STAPEL_MOUNT_TMP_DIR);
	assert_int_equal(s->mounts[1].from, TE_STAPEL_MOUNT_BUILD_DIR);
	assert_string_equal(s->mounts[1].to, "/root/.cache");

	assert_int_equal(s->ndeps, 1);
	assert_int_equal(s->deps[0].when, TE_STAPEL_BEFORE_INSTALL_STAGE);
	assert_string_equal(s->deps[0].imports.items[0], "ImageName=TOOLS");
	assert_string_equal(s->deps[0].imports.items[1], "ImageDigest=TOOLS_D");

	assert_true(s->docker.set);
	assert_string_equal(s->docker.workdir, "/app");
	assert_string_equal(s->docker.env.items[0], "B=2");
	assert_string_equal(s->docker.env.items[1], "A=x");
	assert_string_equal(s->docker.label.items[0], "l=v");
	assert_int_equal(s->docker.expose.count, 2);
	assert_string_equal(s->docker.volume.items[0], "/data");
	assert_string_equal(s->docker.entrypoint,
	                    "[\"/app/run\",\"a \\\"b\\\"\"]");
	assert_string_equal(s->docker.cmd, "serve --port 80");
	assert_false(cfg->images[1].stapel->docker.set);
	te_config_free(cfg);
}

static void artifacts_and_bases(void **state)
{
	te_werf_config *cfg;

	(void)state;
	cfg = parse_ok(META "artifact: builder\nfrom: golang\n---\n"
	                    "image: [a, b]\nfromArtifact: builder\n"
	                    "import:\n- artifact: builder\n  add: /out\n"
	                    "  before: install\n---\n"
	                    "image: c\nfrom: a\nfinal: false\n---\n"
	                    "image: d\nfromImage: c\nfromLatest: false\n");
	assert_int_equal(cfg->nimages, 5);
	assert_true(cfg->images[0].stapel->artifact);
	assert_false(cfg->images[0].final);
	assert_string_equal(cfg->images[1].name, "a");
	assert_string_equal(cfg->images[2].name, "b");
	assert_string_equal(cfg->images[2].stapel->from_image, "builder");
	assert_null(cfg->images[2].stapel->from);
	assert_string_equal(cfg->images[2].stapel->imports[0].image, "builder");
	/* from: naming an image of werf.yaml builds on that image */
	assert_string_equal(cfg->images[3].stapel->from_image, "a");
	assert_null(cfg->images[3].stapel->from);
	assert_false(cfg->images[3].final);
	assert_string_equal(cfg->images[4].stapel->from_image, "c");
	te_config_free(cfg);
	/* nameless Stapel image */
	cfg = parse_ok(META "image: ~\nfrom: alpine\n");
	assert_string_equal(cfg->images[0].name, "");
	te_config_free(cfg);
}

static void refused_keys(void **state)
{
	(void)state;
	expect_err(META "image: a\nfrom: alpine\nansible:\n  install: []\n",
	           TE_EUNSUPPORTED,
	           "werf.yaml:6: image \"a\": ansible is not supported");
	/* imageSpec is read with the Dockerfile image's schema */
	expect_err(META "image: a\nfrom: alpine\nimageSpec:\n  authr: x\n",
	           TE_EINVALID,
	           "werf.yaml:7: unknown field \"authr\" in \"imageSpec\"");
	expect_err(META "image: a\nfrom: alpine\nimageSpec:\n  config:\n"
	                "    removeEnv: [\"/(/\"]\n",
	           TE_EINVALID,
	           "werf.yaml:8: removeEnv: invalid regular expression");
	expect_err(META "image: a\nfrom: alpine\nsecrets:\n- env: X\n",
	           TE_EUNSUPPORTED, "werf.yaml:6: image \"a\": secrets");
	expect_err(META "image: a\nfrom: alpine\nshell:\n  instal: [x]\n",
	           TE_EINVALID,
	           "werf.yaml:7: unknown field \"instal\" in \"shell\"");
	expect_err(META "image: a\nfrom: alpine\nfromm: x\n", TE_EINVALID,
	           "werf.yaml:6: unknown field \"fromm\"");
	expect_err(META "image: a\nfrom: alpine\ngit:\n- to: /x\n  "
	                "stageDependencies: {install: x, build: y}\n",
	           TE_EINVALID,
	           "werf.yaml:8: unknown field \"build\" in "
	           "\"stageDependencies\"");
	expect_err(META "image: a\nfrom: alpine\ndocker:\n  ENV: [a]\n",
	           TE_EINVALID, "werf.yaml:7: field \"ENV\" must be a mapping");
}

static void invalid_values(void **state)
{
	(void)state;
	expect_err(META "image: a\nfrom: x\nfromImage: y\n", TE_EINVALID,
	           "werf.yaml:6: image \"a\": specify only one of from");
	expect_err(META "image: a\nfromImage: a\n", TE_EINVALID,
	           "werf.yaml:5: image \"a\": fromImage names the image "
	           "itself");
	expect_err(META "image: a\nfromImage: zz\n", TE_EINVALID,
	           "werf.yaml:5: image \"a\": fromImage \"zz\" is not "
	           "defined");
	expect_err(META "image: a\nfromImage: b\nfromLatest: true\n---\n"
	                "image: b\nfrom: alpine\n",
	           TE_EINVALID, "werf.yaml:6: image \"a\": fromLatest needs");
	expect_err(META "image: a\nfromImage: b\n---\nimage: b\n"
	                "fromImage: a\n",
	           TE_EINVALID, "makes a cycle of images");
	expect_err(META "image: a\nfrom: x\ngit:\n- add: /src\n", TE_EINVALID,
	           "werf.yaml:7: image \"a\": git mapping needs \"to");
	expect_err(META "image: a\nfrom: x\ngit:\n- add: src\n  to: /a\n",
	           TE_EINVALID,
	           "werf.yaml:7: image \"a\": add must be an "
	           "absolute path");
	expect_err(META "image: a\nfrom: x\ngit:\n- to: /../a\n", TE_EINVALID,
	           "to must not climb above /");
	expect_err(META "image: a\nfrom: x\ngit:\n- to: /a\n  branch: main\n",
	           TE_EINVALID, "need \"url\"");
	expect_err(META "image: a\nfrom: x\nimport:\n- from: b\n  add: /x\n"
	                "---\nimage: b\nfrom: x\n",
	           TE_EINVALID,
	           "werf.yaml:7: image \"a\": import needs \"before\" or "
	           "\"after\"");
	expect_err(META "image: a\nfrom: x\nimport:\n- from: b\n  add: /x\n"
	                "  after: build\n",
	           TE_EINVALID,
	           "werf.yaml:9: image \"a\": import: after "
	           "\"build\" must be install or setup");
	expect_err(META "image: a\nfrom: x\nimport:\n- from: b\n  after: "
	                "setup\n",
	           TE_EINVALID, "import needs \"add");
	expect_err(META "image: a\nfrom: x\nimport:\n- from: nope\n  add: /x\n"
	                "  after: setup\n",
	           TE_EINVALID, "import \"nope\" is not defined");
	expect_err(META "image: a\nfrom: x\nmount:\n- from: home\n  to: /x\n",
	           TE_EINVALID, "werf.yaml:7: image \"a\": mount from must be");
	expect_err(META "image: a\nfrom: x\nmount:\n- from: tmp_dir\n",
	           TE_EINVALID, "mount needs \"to");
	expect_err(META "image: a\nfrom: x\ndependencies:\n- image: b\n"
	                "  after: setup\n  imports:\n  - type: ImageSize\n"
	                "    targetEnv: X\n---\nimage: b\nfrom: x\n",
	           TE_EINVALID,
	           "werf.yaml:10: image \"a\": dependencies "
	           "import type must be");
	expect_err(META "image: a\nfrom: x\ndependencies:\n- image: b\n"
	                "  after: setup\n",
	           TE_EINVALID, "dependency \"b\" is not defined");
	expect_err(META "image: a\nartifact: b\nfrom: x\n", TE_EINVALID,
	           "specify only one of image and artifact");
	expect_err(META "image: a\nfrom: x\ngit:\n- to: /a\n  "
	                "stageDependencies:\n    setup: ['!x']\n",
	           TE_EINVALID,
	           "werf.yaml:9: image \"a\": setup: mask \"!x\" must not");
	expect_err(META "artifact: b\nfrom: x\nfinal: true\n", TE_EINVALID,
	           "werf.yaml:6: an artifact cannot be final");
}

static void buildable(void **state)
{
	te_werf_config *cfg;
	te_error err = TE_ERROR_INIT;

	(void)state;
	cfg = parse_ok(META "image: a\nfrom: x\ngit:\n- url: "
	                    "https://example.com/r.git\n  tag: v1\n  to: /r\n");
	assert_string_equal(cfg->images[0].stapel->git[0].url,
	                    "https://example.com/r.git");
	assert_string_equal(cfg->images[0].stapel->git[0].tag, "v1");
	assert_int_equal(te_stapel_check_buildable(cfg->images[0].stapel,
	                                           "werf.yaml", "a", &err),
	                 TE_EUNSUPPORTED);
	assert_string_equal(err.msg, "werf.yaml:7: image \"a\": git url (a "
	                             "remote repository) is not supported "
	                             "yet");
	te_config_free(cfg);
	te_error_clear(&err);
	/* parsed, not built yet: refused by key and line */
	cfg = parse_ok(full_yaml);
	assert_int_equal(te_stapel_check_buildable(cfg->images[0].stapel,
	                                           "werf.yaml", "app", &err),
	                 TE_EUNSUPPORTED);
	/* import includePaths/excludePaths are built (line 29): the
	 * build_dir mount is the first refusal */
	assert_string_equal(err.msg,
	                    "werf.yaml:39: image \"app\": building mount "
	                    "other than from: tmp_dir is not supported yet");
	assert_int_equal(te_stapel_check_buildable(cfg->images[1].stapel,
	                                           "werf.yaml", "tools", &err),
	                 0);
	te_config_free(cfg);
	te_error_clear(&err);
	cfg = parse_ok(META "image: a\nfrom: x\nmount:\n- from: tmp_dir\n"
	                    "  to: /t\n- from: build_dir\n  to: /b\n");
	assert_int_equal(te_stapel_check_buildable(cfg->images[0].stapel,
	                                           "werf.yaml", "a", &err),
	                 TE_EUNSUPPORTED);
	assert_string_equal(err.msg, "werf.yaml:9: image \"a\": building "
	                             "mount other than from: tmp_dir is not "
	                             "supported yet");
	te_config_free(cfg);
	assert_string_equal(te_stapel_user_name(TE_STAPEL_BEFORE_SETUP),
	                    "beforeSetup");
}

/* ---- stage lists and digests over real commits ---------------------- */

static const char conveyor_yaml[] = META "image: app\n"
                                         "from: alpine\n"
                                         "git:\n"
                                         "- add: /\n"
                                         "  to: /app\n"
                                         "  excludePaths: [secret]\n"
                                         "  stageDependencies:\n"
                                         "    install: ['deps/*.txt']\n"
                                         "    setup: [src]\n"
                                         "shell:\n"
                                         "  install: [echo i]\n"
                                         "  setup: [echo s]\n"
                                         "docker:\n"
                                         "  WORKDIR: /app\n";

struct repo {
	char *dir;
	git_repository *git;
	te_gitsrc *src;
	te_werf_config *cfg;
	char head[41]; /* the first commit */
};

static void repo_open(struct repo *r, const char *yaml)
{
	te_error err = TE_ERROR_INIT;
	const th_file files[] = {
	    {"deps/a.txt", "a1", 0}, {"deps/b.md", "b1", 0},
	    {"src/main.c", "m1", 0}, {"README", "r1", 0},
	    {"secret/x", "x1", 0},
	};

	assert_int_equal(te_gitsrc_global_init(&err), 0);
	r->dir = th_tmpdir();
	r->git = th_init(r->dir);
	th_commit(r->head, r->git, files, 5, "a");
	assert_int_equal(te_gitsrc_open(&r->src, r->dir, &err), 0);
	r->cfg = parse_ok(yaml);
}

static void repo_close(struct repo *r)
{
	te_config_free(r->cfg);
	te_gitsrc_free(r->src);
	git_repository_free(r->git);
	th_rm_rf(r->dir);
	free(r->dir);
}

/* Commit one changed file; out: the new commit. */
static void change(char out[41], struct repo *r, const char *path,
                   const char *data)
{
	th_file f = {path, data, 0};

	th_commit(out, r->git, &f, 1, path);
}

static int no_build(char digest_out[TE_DIGEST_STR_MAX], const te_stage_ctx *ctx,
                    void *payload, te_error *err)
{
	(void)digest_out;
	(void)ctx;
	(void)payload;
	return te_error_set(err, TE_EINVALID, "not built in unit tests");
}

/* The stage list of image 0 at HEAD, chained by a plan: digests[k] for
 * each kind (\"\" when absent). */
static void digests(char out[TE_STAPEL_NSTAGES][TE_PLAN_DIGEST_LEN + 1],
                    struct repo *r, const char *commit)
{
	te_error err = TE_ERROR_INIT;
	te_stapel_stages st;
	te_plan *plan = NULL;
	te_plan_image *img = NULL;
	te_plan_stage *ps;
	size_t i;
	int rc;

	memset(out, 0, TE_STAPEL_NSTAGES * (TE_PLAN_DIGEST_LEN + 1));
	rc = te_stapel_stages_compute(&st, r->cfg->images[0].stapel, r->src,
	                              commit, NULL, &err);
	if (rc != 0)
		fail_msg("stages: %s", err.msg);
	assert_int_equal(te_plan_new(&plan, "r.example", "stages", &err), 0);
	assert_int_equal(te_plan_add_image(&img, plan, "app", NULL, &err), 0);
	for (i = 0; i < st.count; i++) {
		te_plan_stage_spec spec = {
		    te_stapel_stage_name(st.items[i].kind), st.items[i].input,
		    no_build, NULL, NULL};
		assert_int_equal(te_plan_add_stage(NULL, img, &spec, &err), 0);
	}
	assert_int_equal(te_plan_seal(plan, &err), 0);
	for (i = 0; i < st.count; i++) {
		ps = te_plan_stage_at(img, i);
		strcpy(out[st.items[i].kind], te_plan_stage_digest(ps));
	}
	te_plan_free(plan);
}

/* Which stages changed between a and b, as a bit set of kinds. */
static unsigned changed(char a[TE_STAPEL_NSTAGES][TE_PLAN_DIGEST_LEN + 1],
                        char b[TE_STAPEL_NSTAGES][TE_PLAN_DIGEST_LEN + 1])
{
	unsigned bits = 0;
	int k;

	for (k = 0; k < TE_STAPEL_NSTAGES; k++)
		if (strcmp(a[k], b[k]))
			bits |= 1u << k;
	return bits;
}

#define BIT(k) (1u << TE_STAPEL_STAGE_##k)

static void stage_list(void **state)
{
	struct repo r;
	te_error err = TE_ERROR_INIT;
	te_stapel_stages st;
	const te_stapel_stage_kind want[] = {TE_STAPEL_STAGE_FROM,
	                                     TE_STAPEL_STAGE_GIT_ARCHIVE,
	                                     TE_STAPEL_STAGE_INSTALL,
	                                     TE_STAPEL_STAGE_SETUP,
	                                     TE_STAPEL_STAGE_GIT_LATEST_PATCH,
	                                     TE_STAPEL_STAGE_DOCKER};
	size_t i;

	(void)state;
	repo_open(&r, conveyor_yaml);
	assert_int_equal(te_stapel_stages_compute(&st, r.cfg->images[0].stapel,
	                                          r.src, r.head, NULL, &err),
	                 0);
	assert_int_equal(st.count, 6);
	for (i = 0; i < st.count; i++) {
		assert_int_equal(st.items[i].kind, want[i]);
		assert_int_equal(strlen(st.items[i].input), 56);
	}
	assert_string_equal(te_stapel_stage_name(st.items[5].kind),
	                    "dockerInstructions");
	repo_close(&r);

	/* every kind, in werf's order; no git: no git stages */
	repo_open(&r,
	          META "image: a\nfrom: x\nshell:\n  beforeInstall: [a]\n"
	               "  beforeSetup: [b]\nimport:\n- from: y:1\n  add: /a\n"
	               "  before: install\n- from: y:1\n  add: /b\n"
	               "  after: install\n- from: y:1\n  add: /c\n"
	               "  before: setup\n- from: y:1\n  add: /d\n"
	               "  after: setup\n");
	assert_int_equal(te_stapel_stages_compute(&st, r.cfg->images[0].stapel,
	                                          r.src, r.head, NULL, &err),
	                 0);
	assert_int_equal(st.count, 7);
	assert_int_equal(st.items[1].kind, TE_STAPEL_STAGE_BEFORE_INSTALL);
	assert_int_equal(st.items[2].kind, TE_STAPEL_STAGE_DEPS_BEFORE_INSTALL);
	assert_int_equal(st.items[3].kind, TE_STAPEL_STAGE_DEPS_AFTER_INSTALL);
	assert_int_equal(st.items[4].kind, TE_STAPEL_STAGE_BEFORE_SETUP);
	assert_int_equal(st.items[5].kind, TE_STAPEL_STAGE_DEPS_BEFORE_SETUP);
	assert_int_equal(st.items[6].kind, TE_STAPEL_STAGE_DEPS_AFTER_SETUP);
	repo_close(&r);

	/* disableGitAfterPatch: no gitLatestPatch; fromLatest needs the
	 * registry digest */
	repo_open(&r, META "image: a\nfrom: x\nfromLatest: true\n"
	                   "disableGitAfterPatch: true\ngit:\n- to: /a\n");
	assert_int_equal(te_stapel_stages_compute(&st, r.cfg->images[0].stapel,
	                                          r.src, r.head, NULL, &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	{
		te_stapel_inputs in = {"sha256:1111", NULL, NULL, NULL};
		assert_int_equal(
		    te_stapel_stages_compute(&st, r.cfg->images[0].stapel,
		                             r.src, r.head, &in, &err),
		    0);
	}
	assert_int_equal(st.count, 2);
	assert_int_equal(st.items[1].kind, TE_STAPEL_STAGE_GIT_ARCHIVE);
	repo_close(&r);

	/* meta build.cacheVersion and the platform move the from stage
	 * (and so, through the chain, every stage) */
	repo_open(&r, META "image: a\nfrom: x\n");
	{
		te_stapel_stages a, b, c;
		te_stapel_inputs cv = {NULL, "2", NULL, NULL};
		te_stapel_inputs pl = {NULL, NULL, "linux/arm64", NULL};

		assert_int_equal(
		    te_stapel_stages_compute(&a, r.cfg->images[0].stapel, r.src,
		                             r.head, NULL, &err),
		    0);
		assert_int_equal(
		    te_stapel_stages_compute(&b, r.cfg->images[0].stapel, r.src,
		                             r.head, &cv, &err),
		    0);
		assert_int_equal(
		    te_stapel_stages_compute(&c, r.cfg->images[0].stapel, r.src,
		                             r.head, &pl, &err),
		    0);
		assert_string_not_equal(a.items[0].input, b.items[0].input);
		assert_string_not_equal(a.items[0].input, c.items[0].input);
		assert_string_not_equal(b.items[0].input, c.items[0].input);
	}
	repo_close(&r);
}

static void digests_follow_dependencies(void **state)
{
	char a[TE_STAPEL_NSTAGES][TE_PLAN_DIGEST_LEN + 1];
	char b[TE_STAPEL_NSTAGES][TE_PLAN_DIGEST_LEN + 1];
	char c1[41], c2[41], c3[41], c4[41], c5[41], c6[41];
	const unsigned tail = BIT(GIT_LATEST_PATCH) | BIT(DOCKER);
	struct repo r;

	(void)state;
	repo_open(&r, conveyor_yaml);
	digests(a, &r, r.head);
	/* the same commit gives the same digests */
	digests(b, &r, r.head);
	assert_int_equal(changed(a, b), 0);

	/* a file no stage depends on: only gitLatestPatch (and the
	 * dockerInstructions chained after it) */
	change(c1, &r, "README", "r2");
	digests(b, &r, c1);
	assert_int_equal(changed(a, b), tail);

	/* an excluded file: nothing at all */
	change(c2, &r, "secret/x", "x2");
	digests(a, &r, c2);
	assert_int_equal(changed(a, b), 0);

	/* an install dependency: install and everything after it */
	change(c3, &r, "deps/a.txt", "a2");
	digests(b, &r, c3);
	assert_int_equal(changed(a, b), BIT(INSTALL) | BIT(SETUP) | tail);

	/* a file in deps/ that the install glob does not match */
	change(c4, &r, "deps/b.md", "b2");
	digests(a, &r, c4);
	assert_int_equal(changed(a, b), tail);

	/* a new file under a setup dependency directory */
	change(c5, &r, "src/new.c", "n1");
	digests(b, &r, c5);
	assert_int_equal(changed(a, b), BIT(SETUP) | tail);

	/* a deleted install dependency */
	change(c6, &r, "deps/a.txt", NULL);
	digests(a, &r, c6);
	assert_int_equal(changed(a, b), BIT(INSTALL) | BIT(SETUP) | tail);
	repo_close(&r);
}

/* Each config field moves its own stage and those after it. */
static void digests_follow_config(void **state)
{
	char a[TE_STAPEL_NSTAGES][TE_PLAN_DIGEST_LEN + 1];
	char b[TE_STAPEL_NSTAGES][TE_PLAN_DIGEST_LEN + 1];
	const unsigned all = BIT(FROM) | BIT(GIT_ARCHIVE) | BIT(INSTALL) |
	                     BIT(SETUP) | BIT(GIT_LATEST_PATCH) | BIT(DOCKER);
	static const struct {
		const char *from, *to;
		unsigned want;
	} cases[] = {
	    {"  install: [echo i]\n", "  install: [echo j]\n",
	     BIT(INSTALL) | BIT(SETUP) | BIT(GIT_LATEST_PATCH) | BIT(DOCKER)},
	    {"  setup: [echo s]\n",
	     "  setup: [echo s]\n  setupCacheVersion: 2\n",
	     BIT(SETUP) | BIT(GIT_LATEST_PATCH) | BIT(DOCKER)},
	    {"  WORKDIR: /app\n", "  WORKDIR: /srv\n", BIT(DOCKER)},
	    {"from: alpine\n", "from: alpine\nfromCacheVersion: 1\n", all},
	    {"from: alpine\n", "from: alpine:3\n", all},
	    {"  to: /app\n", "  to: /srv\n", all & ~BIT(FROM)},
	    {"  setup: [echo s]\n", "  setup: [echo s]\n  cacheVersion: 1\n",
	     BIT(INSTALL) | BIT(SETUP) | BIT(GIT_LATEST_PATCH) | BIT(DOCKER)},
	};
	char yaml[2048];
	struct repo r;
	size_t i;

	(void)state;
	repo_open(&r, conveyor_yaml);
	digests(a, &r, r.head);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *at = strstr(conveyor_yaml, cases[i].from);
		size_t pre = (size_t)(at - conveyor_yaml);

		snprintf(yaml, sizeof(yaml), "%.*s%s%s", (int)pre,
		         conveyor_yaml, cases[i].to,
		         at + strlen(cases[i].from));
		te_config_free(r.cfg);
		r.cfg = parse_ok(yaml);
		digests(b, &r, r.head);
		if (changed(a, b) != cases[i].want)
			fail_msg("case %zu: changed %#x, want %#x", i,
			         changed(a, b), cases[i].want);
	}
	repo_close(&r);
}

/* imageSpec: parsed as a Dockerfile image's, build.imageSpec merged under
 * it for final images; its canonical text moves the last stage only. */
static void imagespec_last_stage(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_stapel_stages a, b;
	te_stapel_inputs in = {NULL, NULL, NULL, "{\"author\":\"x\"}"};
	const te_imagespec *spec;
	struct repo r;
	size_t i;

	(void)state;
	repo_open(&r, "project: demo\nconfigVersion: 1\nbuild:\n"
	              "  imageSpec:\n    config:\n"
	              "      labels: {g: \"1\"}\n---\n"
	              "image: a\nfrom: x\nshell:\n  install: [echo i]\n"
	              "git:\n- to: /app\nimageSpec:\n  author: me\n"
	              "  config:\n    labels: {l: \"%image%\"}\n"
	              "    removeEnv: [\"/(?i)debug_\\\\w+/\"]\n"
	              "---\nartifact: b\nfrom: x\n"
	              "imageSpec: {author: art}\n");
	spec = &r.cfg->images[0].imagespec;
	assert_string_equal(spec->author, "me");
	assert_int_equal(spec->labels.count, 4); /* l=a and the global g=1 */
	assert_string_equal(spec->remove_env.items[0], "/(?i)debug_\\w+/");
	/* an artifact is not final: no global imageSpec */
	assert_int_equal(r.cfg->images[1].imagespec.labels.count, 0);
	assert_string_equal(r.cfg->images[1].imagespec.author, "art");

	assert_int_equal(te_stapel_stages_compute(&a, r.cfg->images[0].stapel,
	                                          r.src, r.head, NULL, &err),
	                 0);
	assert_int_equal(te_stapel_stages_compute(&b, r.cfg->images[0].stapel,
	                                          r.src, r.head, &in, &err),
	                 0);
	assert_int_equal(a.count, b.count);
	assert_int_equal(a.items[a.count - 1].kind,
	                 TE_STAPEL_STAGE_GIT_LATEST_PATCH);
	for (i = 0; i + 1 < a.count; i++)
		assert_string_equal(a.items[i].input, b.items[i].input);
	assert_string_not_equal(a.items[a.count - 1].input,
	                        b.items[b.count - 1].input);
	repo_close(&r);
}

/* config.stapel of werf-giterminism.yaml */
static void giterminism_allowed(void **state)
{
	static const char yes[] = "giterminismConfigVersion: 1\nconfig:\n"
	                          "  stapel:\n    allowFromLatest: true\n";
	static const char no[] = "giterminismConfigVersion: 1\nconfig:\n"
	                         "  goTemplateRendering: {}\n";
	static const char bad[] = "config:\n  stapel:\n"
	                          "    allowFromLatest: sometimes\n";
	te_stapel_allowed a;
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(te_stapel_allowed_parse(&a, NULL, 0, &err), 0);
	assert_false(a.from_latest);
	assert_int_equal(
	    te_stapel_allowed_parse(&a, yes, sizeof(yes) - 1, &err), 0);
	assert_true(a.from_latest);
	assert_int_equal(te_stapel_allowed_parse(&a, no, sizeof(no) - 1, &err),
	                 0);
	assert_false(a.from_latest);
	assert_int_equal(
	    te_stapel_allowed_parse(&a, bad, sizeof(bad) - 1, &err),
	    TE_EINVALID);
	assert_non_null(strstr(err.msg, "werf-giterminism.yaml:3: "
	                                "config.stapel.allowFromLatest must be "
	                                "a boolean"));
	te_error_clear(&err);
}

static void platform_tables(void **state)
{
	(void)state;
	assert_string_equal(te_stapel_goarch("x86_64"), "amd64");
	assert_string_equal(te_stapel_goarch("aarch64"), "arm64");
	assert_string_equal(te_stapel_goarch("armv7l"), "arm");
	assert_string_equal(te_stapel_goarch("i686"), "386");
	assert_null(te_stapel_goarch("pdp11"));
	assert_null(te_stapel_goarch(NULL));
	assert_string_equal(te_stapel_binfmt_name("arm64"), "qemu-aarch64");
	assert_string_equal(te_stapel_binfmt_name("mips64le"), "qemu-mips64el");
	assert_null(te_stapel_binfmt_name("wasm"));
}

static bool only_aarch64(const char *binfmt)
{
	return !strcmp(binfmt, "qemu-aarch64") ||
	       !strcmp(binfmt, "qemu-x86_64");
}

static void platform_runnable(void **state)
{
	te_strvec v = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;

	(void)state;
	/* its own first, then the emulated ones; its own not twice */
	assert_int_equal(te_stapel_runnable(&v, "x86_64", only_aarch64, &err),
	                 0);
	assert_int_equal(v.count, 2);
	assert_string_equal(v.items[0], "amd64");
	assert_string_equal(v.items[1], "arm64");
	te_strvec_dispose(&v);
	/* an unknown machine: only what binfmt_misc runs */
	assert_int_equal(te_stapel_runnable(&v, "pdp11", only_aarch64, &err),
	                 0);
	assert_int_equal(v.count, 2);
	assert_string_equal(v.items[0], "amd64");
	assert_string_equal(v.items[1], "arm64");
	te_strvec_dispose(&v);
}

/* pick(have..., want): the platform picked, "own" for the image's own
 * single build, or the error. */
static void expect_pick(const char *want, bool any, const char *expect,
                        const char *h1, const char *h2)
{
	te_strvec have = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;
	const char *out = "unset";
	int rc;

	if (h1)
		assert_int_equal(te_strvec_push(&have, h1, &err), 0);
	if (h2)
		assert_int_equal(te_strvec_push(&have, h2, &err), 0);
	rc = te_stapel_pick_platform(&out, &have, want, "linux/amd64", any,
	                             &err);
	if (rc == 0 && strcmp(out ? out : "own", expect))
		fail_msg("want %s, got %s", expect, out ? out : "own");
	if (rc < 0 && !strstr(err.msg, expect))
		fail_msg("want \"%s\", got \"%s\"", expect, err.msg);
	te_strvec_dispose(&have);
}

static void platform_pick(void **state)
{
	(void)state;
	/* an image without platforms: native only, unless it is Stapel */
	expect_pick(NULL, false, "own", NULL, NULL);
	expect_pick("linux/amd64", false, "own", NULL, NULL);
	expect_pick("linux/arm64", true, "linux/arm64", NULL, NULL);
	expect_pick("linux/arm64", false,
	            "is built for the native platform (linux/amd64) only, "
	            "not linux/arm64",
	            NULL, NULL);
	/* one platform: its own build when it is the one asked for */
	expect_pick("linux/arm64", false, "own", "linux/arm64", NULL);
	expect_pick(NULL, false, "is built for linux/arm64, not linux/amd64",
	            "linux/arm64", NULL);
	/* several: the matching entry, the native one by default */
	expect_pick("linux/arm64", false, "linux/arm64", "linux/amd64",
	            "linux/arm64");
	expect_pick(NULL, true, "linux/amd64", "linux/arm64", "linux/amd64");
	expect_pick("linux/arm/v7", false, "linux/arm/v7", "linux/arm/v7",
	            "linux/arm64");
	expect_pick("linux/s390x", true,
	            "is built for linux/amd64, linux/arm64, not linux/s390x",
	            "linux/amd64", "linux/arm64");
}

/* A Dockerfile image's plan image, as export_build.c's callback adds it:
 * one stage with a fixed input. */
static int fake_other(te_plan_image **out, void *payload,
                      const struct te_image_config *image, const char *platform,
                      te_error *err)
{
	te_plan *plan = payload;
	te_plan_stage_spec spec = {"dockerfile", "input", no_build, NULL, NULL};
	char name[128];

	if (platform && !strcmp(platform, "linux/s390x"))
		return te_error_set(err, TE_EUNSUPPORTED, "not for s390x");
	snprintf(name, sizeof(name), "%s%s%s", image->name, platform ? " " : "",
	         platform ? platform : "");
	*out = te_plan_image_find(plan, name);
	if (*out)
		return 0;
	assert_int_equal(te_plan_add_image(out, plan, name, NULL, err), 0);
	return te_plan_add_stage(NULL, *out, &spec, err);
}

static const char uses_df_yaml[] =
    META "image: df\ndockerfile: Dockerfile\n---\n"
         "image: app\nfromImage: df\n"
         "import:\n- image: df\n  add: /x\n  before: install\n"
         "dependencies:\n- image: df\n  before: setup\n  imports:\n"
         "  - type: ImageName\n    targetEnv: DF\n"
         "shell:\n  install: [cat /x]\n"
         "---\nimage: multi\nfrom: alpine\n"
         "platform: [linux/amd64, linux/arm64, linux/s390x]\n"
         "git:\n- add: /\n  to: /app\n"
         "---\nimage: on-multi\nfromImage: plain\n"
         "platform: [linux/amd64, linux/arm64]\n"
         "---\nimage: plain\nfrom: alpine\n";

static void plan_env(te_stapel_env *env, struct repo *r, te_plan *plan,
                     const te_strvec *runnable)
{
	memset(env, 0, sizeof(*env));
	env->src = r->src;
	env->commit = r->head;
	env->project = "demo";
	env->file = "werf.yaml";
	env->add_other = fake_other;
	env->add_other_payload = plan;
	env->native_platform = "linux/amd64";
	env->runnable_archs = runnable;
}

static void uses_dockerfile_image(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_stapel_env env;
	te_plan *plan = NULL;
	te_plan_image *app = NULL, *df;
	struct repo r;

	(void)state;
	repo_open(&r, uses_df_yaml);
	assert_int_equal(te_plan_new(&plan, "r.example", "stages", &err), 0);
	plan_env(&env, &r, plan, NULL);
	assert_int_equal(te_stapel_plan_add(&app, plan, r.cfg->images,
	                                    r.cfg->nimages, 1, &env, &err),
	                 0);
	df = te_plan_image_find(plan, "df");
	assert_non_null(df);
	/* fromImage, import and dependency: one edge */
	assert_int_equal(te_plan_image_dep_count(app), 1);
	assert_ptr_equal(te_plan_image_dep(app, 0), df);
	assert_int_equal(te_plan_seal(plan, &err), 0);
	te_plan_free(plan);

	/* without the callback: refused, naming the key */
	assert_int_equal(te_plan_new(&plan, "r.example", "stages", &err), 0);
	plan_env(&env, &r, plan, NULL);
	env.add_other = NULL;
	assert_int_equal(te_stapel_plan_add(&app, plan, r.cfg->images,
	                                    r.cfg->nimages, 1, &env, &err),
	                 TE_EUNSUPPORTED);
	assert_non_null(strstr(err.msg, "werf.yaml:8: image \"app\": "
	                                "fromImage of a Dockerfile image"));
	te_error_clear(&err);
	te_plan_free(plan);
	repo_close(&r);

	/* a Stapel stage of a Dockerfile image: refused, naming the line */
	repo_open(&r, META "image: df\ndockerfile: Dockerfile\n---\n"
	                   "image: app\nfrom: alpine\nimport:\n- image: df\n"
	                   "  add: /x\n  stage: install\n  before: install\n");
	assert_int_equal(te_plan_new(&plan, "r.example", "stages", &err), 0);
	plan_env(&env, &r, plan, NULL);
	assert_int_equal(te_stapel_plan_add(&app, plan, r.cfg->images,
	                                    r.cfg->nimages, 1, &env, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "werf.yaml:10: image \"app\": import: "
	                                "stage \"install\": \"df\" is a "
	                                "Dockerfile image"));
	te_error_clear(&err);
	te_plan_free(plan);
	repo_close(&r);
}

static void several_platforms(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_strvec runnable = TE_STRVEC_INIT;
	te_stapel_env env;
	te_plan *plan = NULL;
	te_plan_image *amd = NULL, *arm = NULL, *s390 = NULL, *again = NULL;
	struct repo r;

	(void)state;
	repo_open(&r, uses_df_yaml);
	assert_int_equal(te_strvec_push(&runnable, "amd64", &err), 0);
	assert_int_equal(te_plan_new(&plan, "r.example", "stages", &err), 0);
	plan_env(&env, &r, plan, &runnable);
	/* without a platform: refused, it has three */
	assert_int_equal(te_stapel_plan_add(&amd, plan, r.cfg->images,
	                                    r.cfg->nimages, 2, &env, &err),
	                 TE_EUNSUPPORTED);
	assert_non_null(strstr(err.msg, "is built for 3 platforms"));
	te_error_clear(&err);
	/* no shell stage: every platform, emulated or not */
	assert_int_equal(te_stapel_plan_add_for(&amd, plan, r.cfg->images,
	                                        r.cfg->nimages, 2,
	                                        "linux/amd64", &env, &err),
	                 0);
	assert_int_equal(te_stapel_plan_add_for(&arm, plan, r.cfg->images,
	                                        r.cfg->nimages, 2,
	                                        "linux/arm64", &env, &err),
	                 0);
	assert_int_equal(te_stapel_plan_add_for(&again, plan, r.cfg->images,
	                                        r.cfg->nimages, 2,
	                                        "linux/arm64", &env, &err),
	                 0);
	assert_ptr_equal(arm, again);
	assert_string_equal(te_plan_image_name(arm), "multi (linux/arm64)");
	/* app runs commands: arm64 needs emulation this machine lacks */
	assert_int_equal(te_stapel_plan_add_for(&again, plan, r.cfg->images,
	                                        r.cfg->nimages, 1,
	                                        "linux/arm64", &env, &err),
	                 TE_EUNSUPPORTED);
	assert_non_null(strstr(err.msg, "werf.yaml:7: image \"app\": shell "
	                                "commands for linux/arm64 run arm64 "
	                                "binaries; this machine runs amd64 "
	                                "(emulation"));
	te_error_clear(&err);
	/* with emulation it is planned, on df's arm64 build */
	assert_int_equal(te_strvec_push(&runnable, "arm64", &err), 0);
	assert_int_equal(te_stapel_plan_add_for(&again, plan, r.cfg->images,
	                                        r.cfg->nimages, 1,
	                                        "linux/arm64", &env, &err),
	                 0);
	assert_string_equal(te_plan_image_name(te_plan_image_dep(again, 0)),
	                    "df linux/arm64");
	/* a used image lacking the platform: named with the line */
	assert_int_equal(te_strvec_push(&runnable, "s390x", &err), 0);
	assert_int_equal(te_stapel_plan_add_for(&s390, plan, r.cfg->images,
	                                        r.cfg->nimages, 1,
	                                        "linux/s390x", &env, &err),
	                 TE_EUNSUPPORTED);
	assert_non_null(strstr(err.msg, "werf.yaml:8: image \"app\" "
	                                "(linux/s390x): fromImage \"df\": not "
	                                "for s390x"));
	te_error_clear(&err);
	/* a Stapel image it builds on: built for the same platform, its
	 * own native build for the native one */
	assert_int_equal(te_stapel_plan_add_for(&again, plan, r.cfg->images,
	                                        r.cfg->nimages, 3,
	                                        "linux/arm64", &env, &err),
	                 0);
	assert_string_equal(te_plan_image_name(te_plan_image_dep(again, 0)),
	                    "plain (linux/arm64)");
	assert_int_equal(te_stapel_plan_add_for(&again, plan, r.cfg->images,
	                                        r.cfg->nimages, 3,
	                                        "linux/amd64", &env, &err),
	                 0);
	assert_string_equal(te_plan_image_name(te_plan_image_dep(again, 0)),
	                    "plain");
	assert_int_equal(te_plan_seal(plan, &err), 0);
	/* the platform is part of the digest */
	assert_string_not_equal(te_plan_image_tag(amd), te_plan_image_tag(arm));
	te_plan_free(plan);
	te_strvec_dispose(&runnable);
	repo_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(full_document),
	    cmocka_unit_test(artifacts_and_bases),
	    cmocka_unit_test(refused_keys),
	    cmocka_unit_test(invalid_values),
	    cmocka_unit_test(buildable),
	    cmocka_unit_test(stage_list),
	    cmocka_unit_test(digests_follow_dependencies),
	    cmocka_unit_test(digests_follow_config),
	    cmocka_unit_test(imagespec_last_stage),
	    cmocka_unit_test(giterminism_allowed),
	    cmocka_unit_test(platform_tables),
	    cmocka_unit_test(platform_pick),
	    cmocka_unit_test(platform_runnable),
	    cmocka_unit_test(uses_dockerfile_image),
	    cmocka_unit_test(several_platforms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
