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
#include "stapel/stapel_int.h"
#include "git_fixture.h"
#include "stapel/stapel_build.h"

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
	/* secrets: the Dockerfile images' schema and checks */
	expect_err(META "image: a\nfrom: alpine\nsecrets:\n- env: X\n  "
	                "src: /y\n",
	           TE_EINVALID,
	           "werf.yaml:7: a secret needs exactly one of env, src and "
	           "value");
	expect_err(META "image: a\nfrom: alpine\nsecrets:\n- evn: X\n",
	           TE_EINVALID, "werf.yaml:7: unknown field \"evn\"");
	expect_err(META "image: a\nfrom: alpine\nsecrets:\n- env: X\n"
	                "- env: X\n",
	           TE_EINVALID, "werf.yaml:8: duplicate secret id \"X\"");
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
	/* werf's import config takes only a user stage */
	expect_err(META "image: a\nfrom: x\nimport:\n- image: b\n  add: /o\n"
	                "  stage: gitLatestPatch\n  after: setup\n---\n"
	                "image: b\nfrom: x\n",
	           TE_EINVALID,
	           "werf.yaml:9: image \"a\": import: stage must be "
	           "beforeInstall, install, beforeSetup or setup");
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
	expect_err(META "image: a\nfrom: x\nmount:\n- fromPath: cache\n"
	                "  to: /c\n",
	           TE_EUNSUPPORTED,
	           "werf.yaml:7: image \"a\": mount fromPath must be an "
	           "absolute path");
	expect_err(META "image: a\nfrom: x\nmount:\n- fromPath: /a:b\n"
	                "  to: /c\n",
	           TE_EUNSUPPORTED,
	           "werf.yaml:7: image \"a\": mount fromPath must not hold");
	expect_err(META "image: a\nfrom: x\nmount:\n- fromPath: /a\n"
	                "  from: tmp_dir\n  to: /c\n",
	           TE_EINVALID, "mount: specify only one of from and fromPath");
	expect_err(META "image: a\nfrom: x\nmount:\n- from: build_dir\n"
	                "  to: /c,ro\n",
	           TE_EINVALID,
	           "werf.yaml:8: image \"a\": mount to must not be / or hold");
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

	(void)state;
	cfg = parse_ok(META "image: a\nfrom: x\ngit:\n- url: "
	                    "https://example.com/r.git\n  tag: v1\n  to: /r\n");
	assert_string_equal(cfg->images[0].stapel->git[0].url,
	                    "https://example.com/r.git");
	assert_string_equal(cfg->images[0].stapel->git[0].tag, "v1");
	te_config_free(cfg);
	/* secrets on a Stapel image land in its te_image_config */
	cfg = parse_ok(META "image: a\nfrom: x\nsecrets:\n- env: TOKEN\n"
	                    "- id: npmrc\n  src: /home/u/.npmrc\n"
	                    "- id: plain\n  value: v\n");
	assert_int_equal(cfg->images[0].nsecrets, 3);
	assert_string_equal(cfg->images[0].secrets[0].id, "TOKEN");
	assert_int_equal(cfg->images[0].secrets[1].kind, TE_SECRET_SRC);
	assert_string_equal(cfg->images[0].secrets[1].id, "npmrc");
	assert_int_equal(cfg->images[0].secrets[2].kind, TE_SECRET_VALUE);
	assert_int_equal(cfg->images[0].secrets[2].line, 10);
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
		    te_stapel_stage_name(st.items[i].kind),
		    st.items[i].input,
		    no_build,
		    NULL,
		    NULL,
		    NULL};
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
		te_stapel_inputs in = {"sha256:1111", NULL, NULL, NULL, NULL};
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
		te_stapel_inputs cv = {NULL, "2", NULL, NULL, NULL};
		te_stapel_inputs pl = {NULL, NULL, "linux/arm64", NULL, NULL};

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

	/* a file no stage depends on: no stage's own input (it reaches the
	 * image through gitLatestPatch's patch, resolved by the plan:
	 * git_latest_patch_digest) */
	change(c1, &r, "README", "r2");
	digests(b, &r, c1);
	assert_int_equal(changed(a, b), 0);

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
	assert_int_equal(changed(a, b), 0);

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
	    /* mounts are the from stage's (stages.yml), whatever their kind;
	     * what they hold is not hashed */
	    {"from: alpine\n",
	     "from: alpine\nmount:\n- from: build_dir\n  to: /c\n", all},
	    {"from: alpine\n",
	     "from: alpine\nmount:\n- fromPath: /srv/c\n  to: /c\n", all},
	    {"from: alpine\n",
	     "from: alpine\nmount:\n- from: tmp_dir\n  to: /c\n", all},
	    /* secrets are no stage input in werf's stages.yml: a new secret
	     * (or value) rebuilds nothing */
	    {"from: alpine\n", "from: alpine\nsecrets:\n- env: TOKEN\n", 0},
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
	te_stapel_inputs in = {NULL, NULL, NULL, "{\"author\":\"x\"}", NULL};
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
/* url, ref and basicAuth of remote mappings, and the urls refused. */
static void remote_mappings(void **state)
{
	te_werf_config *cfg;
	const te_stapel_git *g;

	(void)state;
	cfg = parse_ok(META "image: a\nfrom: x\ngit:\n"
	                    "- url: http://h.example/r.git\n" /* 7 */
	                    "  commit: 0123abcdef\n  to: /r\n"
	                    "  basicAuth:\n    username: u\n"
	                    "    password: {value: s3cret}\n"
	                    "- url: git@h.example:g/r.git\n  branch: main\n"
	                    "  to: /s\n"
	                    "- url: https://h.example/x\n  to: /x\n"
	                    "  basicAuth:\n    username: u\n"
	                    "    password: {env: TOKEN}\n");
	g = &cfg->images[0].stapel->git[0];
	assert_string_equal(g->commit, "0123abcdef");
	assert_string_equal(g->auth_user, "u");
	assert_int_equal(g->auth_kind, TE_SECRET_VALUE);
	assert_string_equal(g->auth_password, "s3cret");
	assert_string_equal(g[1].branch, "main");
	assert_null(g[1].auth_user);
	assert_int_equal(g[2].auth_kind, TE_SECRET_ENV);
	assert_string_equal(g[2].auth_password, "TOKEN");
	te_config_free(cfg);
	expect_err(META "image: a\nfrom: x\ngit:\n- url: file:///srv/r\n"
	                "  tag: v1\n  to: /r\n",
	           TE_EINVALID,
	           "werf.yaml:7: image \"a\": git url scheme \"file\" is "
	           "refused");
	expect_err(META "image: a\nfrom: x\ngit:\n- url: /srv/r.git\n"
	                "  tag: v1\n  to: /r\n",
	           TE_EINVALID, "git url: local paths are refused");
	expect_err(META "image: a\nfrom: x\ngit:\n- url: ftp://h/r\n"
	                "  tag: v1\n  to: /r\n",
	           TE_EINVALID, "git url scheme \"ftp\" is refused");
	expect_err(META "image: a\nfrom: x\ngit:\n"
	                "- url: https://u:pw@h/r\n  tag: v1\n  to: /r\n",
	           TE_EINVALID, "git url must not hold credentials");
	expect_err(META "image: a\nfrom: x\ngit:\n"
	                "- url: https://ghp_token@h/r\n  tag: v1\n  to: /r\n",
	           TE_EINVALID, "git url must not hold credentials");
	expect_err(META "image: a\nfrom: x\ngit:\n- url: https://h/r\n"
	                "  tag: v1\n  commit: abcdef0\n  to: /r\n",
	           TE_EINVALID,
	           "werf.yaml:7: image \"a\": git url: give one of");
	expect_err(META "image: a\nfrom: x\ngit:\n- url: https://h/r\n"
	                "  commit: HEAD~1\n  to: /r\n",
	           TE_EINVALID, "git commit must be 7 to 40");
	expect_err(META "image: a\nfrom: x\ngit:\n- url: https://h/r\n"
	                "  tag: 'v1..2'\n  to: /r\n",
	           TE_EINVALID, "not a valid ref name");
	expect_err(META "image: a\nfrom: x\ngit:\n- url: https://h/r\n"
	                "  tag: v1\n  to: /r\n  basicAuth: {username: u}\n",
	           TE_EINVALID, "git basicAuth needs \"username\"");
	expect_err(META "image: a\nfrom: x\ngit:\n- url: ssh://h/r\n"
	                "  tag: v1\n  to: /r\n  basicAuth:\n    username: u\n"
	                "    password: {value: s3cret}\n",
	           TE_EINVALID, "git basicAuth is for http and https urls");
	expect_err(META "image: a\nfrom: x\ngit:\n- to: /r\n  tag: v1\n",
	           TE_EINVALID, "need \"url\"");
}

static void remote_urls(void **state)
{
	te_buf b = TE_BUF_INIT(4096);
	te_error err = TE_ERROR_INIT;
	char why[200];

	(void)state;
	assert_int_equal(te_stapel__url_check("git://127.0.0.1:9418/x.git", why,
	                                      sizeof(why)),
	                 0);
	assert_int_equal(
	    te_stapel__url_check("GIT+SSH://git@h/x", why, sizeof(why)), 0);
	assert_int_equal(te_stapel__url_check("h:x.git", why, sizeof(why)), 0);
	assert_int_equal(
	    te_stapel__url_check("git:pw@h:x.git", why, sizeof(why)), -1);
	assert_string_equal(
	    why, "git url must not hold credentials (use basicAuth)");
	assert_int_equal(te_stapel__url_check("x.git", why, sizeof(why)), -1);
	assert_int_equal(te_stapel__url_check("./h:x", why, sizeof(why)), -1);
	assert_int_equal(te_stapel__url_check("-oProxy=x:y", why, sizeof(why)),
	                 -1);
	assert_int_equal(te_stapel__url_check("ssh://u@/x", why, sizeof(why)),
	                 -1);
	assert_string_equal(why, "git url names no host");
	/* a scheme with odd bytes is not echoed */
	assert_int_equal(te_stapel__url_check("a@b:c://h/x", why, sizeof(why)),
	                 -1);
	assert_non_null(strstr(why, "scheme \"?\""));
	assert_true(te_stapel__url_scheme_ssh("git@h:x"));
	assert_true(te_stapel__url_scheme_ssh("ssh://h/x"));
	assert_false(te_stapel__url_scheme_ssh("git://h/x"));
	assert_int_equal(te_stapel__url_normalize(&b,
	                                          "HTTPS://User@Host.EX/"
	                                          "Repo.git//",
	                                          &err),
	                 0);
	assert_string_equal(b.ptr, "https://host.ex/Repo.git");
	assert_int_equal(te_stapel__url_normalize(&b, "git@h:g/r", &err), 0);
	assert_string_equal(b.ptr, "ssh://git@h:g/r");
	te_buf_dispose(&b);
}

static void giterminism_allowed(void **state)
{
	static const char yes[] = "giterminismConfigVersion: 1\nconfig:\n"
	                          "  stapel:\n    allowFromLatest: true\n";
	static const char no[] = "giterminismConfigVersion: 1\nconfig:\n"
	                         "  goTemplateRendering: {}\n";
	static const char bad[] = "config:\n  stapel:\n"
	                          "    allowFromLatest: sometimes\n";
	static const char branch[] = "config:\n  stapel:\n    git:\n"
	                             "      allowBranch: true\n";
	static const char bad_branch[] = "config:\n  stapel:\n    git:\n"
	                                 "      allowBranch: [x]\n";
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
	assert_int_equal(
	    te_stapel_allowed_parse(&a, branch, sizeof(branch) - 1, &err), 0);
	assert_true(a.git_branch);
	assert_false(a.from_latest);
	assert_int_equal(
	    te_stapel_allowed_parse(&a, yes, sizeof(yes) - 1, &err), 0);
	assert_false(a.git_branch);
	assert_int_equal(te_stapel_allowed_parse(&a, bad_branch,
	                                         sizeof(bad_branch) - 1, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "werf-giterminism.yaml:4: "
	                                "config.stapel.git.allowBranch must "
	                                "be a boolean"));
	te_error_clear(&err);
	te_stapel_allowed_dispose(&a);
}

/* config.stapel.mount of werf-giterminism.yaml, and the check of each
 * mount against it (https://werf.io/docs/v2/usage/project_configuration/
 * giterminism.html#mount: build_dir and fromPath denied by default). */
static void giterminism_mounts(void **state)
{
	static const char yes[] =
	    "giterminismConfigVersion: 1\nconfig:\n"
	    "  stapel:\n    mount:\n"
	    "      allowBuildDir: true\n"
	    "      allowFromPaths: [/srv/cache/*, /opt]\n";
	static const char bad[] = "config:\n  stapel:\n    mount:\n"
	                          "      allowFromPaths: /srv\n";
	static const char bad_bool[] = "config:\n  stapel:\n    mount:\n"
	                               "      allowBuildDir: [x]\n";
	static char dir_to[] = "/cache", p1[] = "/srv/cache/a",
	            p2[] = "/srv/other";
	te_stapel_mount bd = {TE_STAPEL_MOUNT_BUILD_DIR, NULL, dir_to, 12};
	te_stapel_mount tmp = {TE_STAPEL_MOUNT_TMP_DIR, NULL, dir_to, 13};
	te_stapel_mount fp1 = {TE_STAPEL_MOUNT_PATH, p1, dir_to, 14};
	te_stapel_mount fp2 = {TE_STAPEL_MOUNT_PATH, p2, dir_to, 15};
	te_stapel_allowed a;
	te_error err = TE_ERROR_INIT;

	(void)state;
	/* no file: tmp_dir only */
	assert_int_equal(te_stapel_allowed_parse(&a, NULL, 0, &err), 0);
	assert_int_equal(
	    te_stapel_mount_check(&tmp, &a, NULL, "werf.yaml", "app", &err), 0);
	assert_int_equal(
	    te_stapel_mount_check(&bd, &a, NULL, "werf.yaml", "app", &err),
	    TE_EINVALID);
	assert_string_equal(err.msg,
	                    "werf.yaml:12: image \"app\": mount from: "
	                    "build_dir is not allowed by werf-giterminism.yaml "
	                    "(config.stapel.mount.allowBuildDir)");
	te_error_clear(&err);
	assert_int_equal(
	    te_stapel_mount_check(&fp1, &a, NULL, "werf.yaml", "app", &err),
	    TE_EINVALID);
	assert_string_equal(err.msg,
	                    "werf.yaml:14: image \"app\": mount fromPath "
	                    "\"/srv/cache/a\" is not allowed by "
	                    "werf-giterminism.yaml "
	                    "(config.stapel.mount.allowFromPaths)");
	te_error_clear(&err);
	te_stapel_allowed_dispose(&a);
	/* allowed: build_dir, and fromPaths matching a glob */
	assert_int_equal(
	    te_stapel_allowed_parse(&a, yes, sizeof(yes) - 1, &err), 0);
	assert_true(a.build_dir);
	assert_false(a.from_latest);
	assert_int_equal(a.from_paths.count, 2);
	assert_int_equal(
	    te_stapel_mount_check(&bd, &a, NULL, "werf.yaml", "app", &err), 0);
	assert_int_equal(
	    te_stapel_mount_check(&fp1, &a, NULL, "werf.yaml", "app", &err), 0);
	assert_int_equal(
	    te_stapel_mount_check(&fp2, &a, NULL, "werf.yaml", "app", &err),
	    TE_EINVALID);
	assert_non_null(strstr(err.msg, "werf.yaml:15: image \"app\": mount "
	                                "fromPath \"/srv/other\""));
	te_error_clear(&err);
	te_stapel_allowed_dispose(&a);
	/* loose giterminism (a NULL): allowed without a file */
	assert_int_equal(
	    te_stapel_mount_check(&bd, NULL, NULL, "werf.yaml", "app", &err),
	    0);
	assert_int_equal(
	    te_stapel_mount_check(&fp2, NULL, NULL, "werf.yaml", "app", &err),
	    0);
	/* bad rules name their line */
	assert_int_equal(
	    te_stapel_allowed_parse(&a, bad, sizeof(bad) - 1, &err),
	    TE_EINVALID);
	assert_non_null(strstr(err.msg, "werf-giterminism.yaml:4: "
	                                "config.stapel.mount.allowFromPaths "
	                                "must be a list of globs"));
	te_error_clear(&err);
	te_stapel_allowed_dispose(&a);
	assert_int_equal(
	    te_stapel_allowed_parse(&a, bad_bool, sizeof(bad_bool) - 1, &err),
	    TE_EINVALID);
	assert_non_null(strstr(err.msg, "werf-giterminism.yaml:4: "
	                                "config.stapel.mount.allowBuildDir "
	                                "must be a boolean"));
	te_stapel_allowed_dispose(&a);
}

/* ---- which stages the images an image uses enter ------------------- */

static const char uses_yaml[] = META "image: app\n"
                                     "from: alpine\n"
                                     "shell:\n"
                                     "  beforeInstall: [echo b]\n"
                                     "  install: [echo i]\n"
                                     "  setup: [echo s]\n"
                                     "import:\n"
                                     "- image: src\n"
                                     "  add: /x\n"
                                     "  after: install\n"
                                     "dependencies:\n"
                                     "- image: tool\n"
                                     "  before: setup\n"
                                     "  imports:\n"
                                     "  - {type: ImageName, targetEnv: T}\n"
                                     "---\n"
                                     "image: src\n"
                                     "from: alpine\n"
                                     "shell:\n"
                                     "  install: [echo SRC1]\n"
                                     "---\n"
                                     "image: tool\n"
                                     "from: alpine\n"
                                     "shell:\n"
                                     "  install: [echo TOOL1]\n";

/* app's stage digests by kind through te_stapel_plan_add (as export
 * plans it); the plan builds src and tool before app. */
static void app_digests(char out[TE_STAPEL_NSTAGES][TE_PLAN_DIGEST_LEN + 1],
                        struct repo *r, const char *yaml, size_t ndeps)
{
	te_error err = TE_ERROR_INIT;
	te_stapel_env env;
	te_plan *plan = NULL;
	te_plan_image *app = NULL;
	size_t i, k;

	memset(out, 0, TE_STAPEL_NSTAGES * (TE_PLAN_DIGEST_LEN + 1));
	memset(&env, 0, sizeof(env));
	env.src = r->src;
	env.commit = r->head;
	env.file = "werf.yaml";
	te_config_free(r->cfg);
	r->cfg = parse_ok(yaml);
	assert_int_equal(te_plan_new(&plan, "r.example", "stages", &err), 0);
	if (te_stapel_plan_add(&app, plan, r->cfg->images, r->cfg->nimages, 0,
	                       &env, &err) < 0 ||
	    te_plan_seal(plan, &err) < 0)
		fail_msg("plan: %s", err.msg);
	assert_int_equal(te_plan_image_dep_count(app), ndeps);
	assert_ptr_equal(te_plan_image_ordered(plan, ndeps), app);
	for (i = 0; i < te_plan_stage_count(app); i++) {
		const te_plan_stage *st = te_plan_stage_at(app, i);

		for (k = 0; k < TE_STAPEL_NSTAGES; k++)
			if (!strcmp(te_stapel_stage_name(k),
			            te_plan_stage_name(st)))
				strcpy(out[k], te_plan_stage_digest(st));
	}
	te_plan_free(plan);
}

static void used_images_enter_their_stage(void **state)
{
	char a[TE_STAPEL_NSTAGES][TE_PLAN_DIGEST_LEN + 1];
	char b[TE_STAPEL_NSTAGES][TE_PLAN_DIGEST_LEN + 1];
	char yaml[2048];
	const char *at;
	struct repo r;

	(void)state;
	repo_open(&r, uses_yaml);
	app_digests(a, &r, uses_yaml, 2);
	assert_true(a[TE_STAPEL_STAGE_DEPS_AFTER_INSTALL][0] != '\0');
	assert_true(a[TE_STAPEL_STAGE_DEPS_BEFORE_SETUP][0] != '\0');

	/* the imported image changed: from dependenciesAfterInstall on */
	at = strstr(uses_yaml, "SRC1");
	snprintf(yaml, sizeof(yaml), "%.*sSRC2%s", (int)(at - uses_yaml),
	         uses_yaml, at + 4);
	app_digests(b, &r, yaml, 2);
	assert_int_equal(changed(a, b), BIT(DEPS_AFTER_INSTALL) |
	                                    BIT(DEPS_BEFORE_SETUP) |
	                                    BIT(SETUP));

	/* the dependency changed: from dependenciesBeforeSetup on */
	at = strstr(uses_yaml, "TOOL1");
	snprintf(yaml, sizeof(yaml), "%.*sTOOL2%s", (int)(at - uses_yaml),
	         uses_yaml, at + 5);
	app_digests(b, &r, yaml, 2);
	assert_int_equal(changed(a, b), BIT(DEPS_BEFORE_SETUP) | BIT(SETUP));

	/* the same again: nothing moves */
	app_digests(b, &r, uses_yaml, 2);
	assert_int_equal(changed(a, b), 0);
	repo_close(&r);
}

static const char stage_import_yaml[] = META "image: app\n"
                                             "from: alpine\n"
                                             "shell:\n"
                                             "  install: [echo i]\n"
                                             "import:\n"
                                             "- image: src\n"
                                             "  add: /x\n"
                                             "  stage: install\n"
                                             "  after: install\n"
                                             "---\n"
                                             "image: src\n"
                                             "from: alpine\n"
                                             "shell:\n"
                                             "  install: [echo SRC1]\n"
                                             "  setup: [echo SET1]\n";

/* A variant of stage_import_yaml with `from` replaced by `to`. */
static void variant(char *out, size_t n, const char *from, const char *to)
{
	const char *at = strstr(stage_import_yaml, from);

	snprintf(out, n, "%.*s%s%s", (int)(at - stage_import_yaml),
	         stage_import_yaml, to, at + strlen(from));
}

/* An import of a named stage depends on that stage only. */
static void stage_import_enters_with_its_stage(void **state)
{
	char a[TE_STAPEL_NSTAGES][TE_PLAN_DIGEST_LEN + 1];
	char b[TE_STAPEL_NSTAGES][TE_PLAN_DIGEST_LEN + 1];
	te_error err = TE_ERROR_INIT;
	te_stapel_env env;
	te_plan *plan = NULL;
	te_plan_image *app = NULL;
	char yaml[2048];
	struct repo r;

	(void)state;
	repo_open(&r, stage_import_yaml);
	app_digests(a, &r, stage_import_yaml, 1);
	/* the source's setup changed: not what app imports */
	variant(yaml, sizeof(yaml), "SET1", "SET2");
	app_digests(b, &r, yaml, 1);
	assert_int_equal(changed(a, b), 0);
	/* its install changed: dependenciesAfterInstall moves */
	variant(yaml, sizeof(yaml), "SRC1", "SRC2");
	app_digests(b, &r, yaml, 1);
	assert_int_equal(changed(a, b), BIT(DEPS_AFTER_INSTALL));

	/* a stage the source lacks: refused while planning */
	variant(yaml, sizeof(yaml), "stage: install", "stage: beforeSetup");
	te_config_free(r.cfg);
	r.cfg = parse_ok(yaml);
	memset(&env, 0, sizeof(env));
	env.src = r.src;
	env.commit = r.head;
	env.file = "werf.yaml";
	assert_int_equal(te_plan_new(&plan, "r.example", "stages", &err), 0);
	assert_int_equal(te_stapel_plan_add(&app, plan, r.cfg->images,
	                                    r.cfg->nimages, 0, &env, &err),
	                 TE_EINVALID);
	assert_string_equal(err.msg,
	                    "werf.yaml:9: image \"app\": import: image \"src\" "
	                    "has no stage \"beforeSetup\" (empty stages are "
	                    "left out)");
	te_plan_free(plan);
	repo_close(&r);
}

/* ---- gitCache: the size of the patch between real commits ---------- */

static void git_cache_patch_size(void **state)
{
	te_error err = TE_ERROR_INIT;
	const te_stapel_image *img;
	char c1[41], c2[41], c3[41], c4[41];
	char *big = malloc(TE_STAPEL_GIT_CACHE_STEP + 4097);
	uint64_t size = 0;
	struct repo r;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', TE_STAPEL_GIT_CACHE_STEP + 4096);
	big[TE_STAPEL_GIT_CACHE_STEP + 4096] = '\0';
	repo_open(&r, conveyor_yaml);
	img = r.cfg->images[0].stapel;

	/* a commit adding more than 1 MiB: gitCache */
	change(c1, &r, "data/big", big);
	assert_int_equal(
	    te_stapel__patch_size(&size, img, r.src, r.head, c1, NULL, &err),
	    0);
	assert_int_equal(size, TE_STAPEL_GIT_CACHE_STEP + 4096);
	/* then a small change: only its bytes, no gitCache from c1 */
	change(c2, &r, "README", "r2r2");
	assert_int_equal(
	    te_stapel__patch_size(&size, img, r.src, c1, c2, NULL, &err), 0);
	assert_int_equal(size, 4);
	/* from the first commit the big file is still in the patch */
	assert_int_equal(
	    te_stapel__patch_size(&size, img, r.src, r.head, c2, NULL, &err),
	    0);
	assert_int_equal(size, TE_STAPEL_GIT_CACHE_STEP + 4096 + 4);
	/* a deletion writes no bytes */
	change(c3, &r, "data/big", NULL);
	assert_int_equal(
	    te_stapel__patch_size(&size, img, r.src, c2, c3, NULL, &err), 0);
	assert_int_equal(size, 0);
	/* an excluded file is no part of the patch */
	change(c4, &r, "secret/big", big);
	assert_int_equal(
	    te_stapel__patch_size(&size, img, r.src, c3, c4, NULL, &err), 0);
	assert_int_equal(size, 0);
	repo_close(&r);
	free(big);
}

/* ---- gitLatestPatch: the patch between real commits ----------------- */

static bool patch_of(char out[TE_CONTENT_TAG_LEN + 1], const struct repo *r,
                     const char *from, const char *to)
{
	te_error err = TE_ERROR_INIT;
	bool empty = false;

	if (te_stapel__patch_digest(out, &empty, r->cfg->images[0].stapel,
	                            r->src, from, to, &err) != 0)
		fail_msg("patch %s..%s: %s", from, to, err.msg);
	return empty;
}

static void git_latest_patch_digest(void **state)
{
	char d1[TE_CONTENT_TAG_LEN + 1], d2[TE_CONTENT_TAG_LEN + 1];
	char c1[41], c2[41], c3[41], c4[41], c5[41];
	te_error err = TE_ERROR_INIT;
	bool empty = false;
	struct repo r;

	(void)state;
	repo_open(&r, conveyor_yaml);
	/* the previous stage at our commit: absent */
	assert_true(patch_of(d1, &r, r.head, r.head));
	/* no base commit (a stage before it built now): absent */
	assert_int_equal(te_stapel__patch_digest(d1, &empty,
	                                         r.cfg->images[0].stapel, r.src,
	                                         NULL, r.head, &err),
	                 0);
	assert_true(empty);

	/* a changed file no stage depends on: a patch */
	change(c1, &r, "README", "r2");
	assert_false(patch_of(d1, &r, r.head, c1));
	assert_true(patch_of(d2, &r, c1, c1));
	/* an excluded file is no part of it: the same digest */
	change(c2, &r, "secret/x", "x2");
	assert_true(patch_of(d2, &r, c1, c2));
	assert_false(patch_of(d2, &r, r.head, c2));
	assert_string_equal(d1, d2);
	/* other content: another digest */
	change(c3, &r, "README", "r3");
	assert_false(patch_of(d2, &r, r.head, c3));
	assert_string_not_equal(d1, d2);
	/* back to the base's content: nothing to patch from the base ... */
	change(c4, &r, "README", "r1");
	assert_true(patch_of(d2, &r, r.head, c4));
	/* ... but from c1 the file changed */
	assert_false(patch_of(d2, &r, c1, c4));
	/* a removed file: a patch of its own */
	change(c5, &r, "src/main.c", NULL);
	assert_false(patch_of(d2, &r, c4, c5));
	assert_false(patch_of(d1, &r, r.head, c5));
	assert_string_equal(d1, d2); /* c4 holds what head does */
	/* a base commit the repository lacks fails, as werf's does */
	assert_int_equal(
	    te_stapel__patch_digest(d1, &empty, r.cfg->images[0].stapel, r.src,
	                            "0123456789abcdef0123456789abcdef01234567",
	                            c5, &err),
	    TE_ENOTFOUND);
	assert_non_null(strstr(
	    err.msg, "commit 0123456789abcdef0123456789abcdef01234567 of the "
	             "previous stage's image is not in the repository"));
	te_error_clear(&err);
	repo_close(&r);
}

/* ---- a project in a subdirectory of the repository ----------------- */

static void add_from_repository_root(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_buf data = TE_BUF_INIT(4096);
	te_gitsrc *sub = NULL, *root = NULL;
	char path[4200];
	struct repo r;

	(void)state;
	repo_open(&r, conveyor_yaml);
	snprintf(path, sizeof(path), "%s/deps", r.dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(te_gitsrc_open(&sub, path, &err), 0);
	/* the project source reads under deps/ ... */
	assert_int_equal(te_gitsrc_read_file(&data, sub, r.head, "a.txt", &err),
	                 0);
	assert_string_equal(data.ptr, "a1");
	assert_int_equal(
	    te_gitsrc_read_file(&data, sub, r.head, "README", &err),
	    TE_ENOTFOUND);
	te_error_clear(&err);
	/* ... its root handle from the repository's root */
	assert_int_equal(te_gitsrc_open_root(&root, sub, &err), 0);
	te_buf_clear(&data);
	assert_int_equal(
	    te_gitsrc_read_file(&data, root, r.head, "README", &err), 0);
	assert_string_equal(data.ptr, "r1");
	te_buf_clear(&data);
	assert_int_equal(
	    te_gitsrc_read_file(&data, root, r.head, "deps/a.txt", &err), 0);
	assert_string_equal(data.ptr, "a1");
	te_buf_dispose(&data);
	te_gitsrc_free(root);
	te_gitsrc_free(sub);
	repo_close(&r);
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
	te_plan_stage_spec spec = {"dockerfile", "input", no_build,
	                           NULL,         NULL,    NULL};
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
         "docker:\n  ENV: {A: b}\n"
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
	/* (no git mapping above: gitCache's resolver would ask a registry) */
	if (te_plan_seal(plan, &err) < 0)
		fail_msg("seal: %s", err.msg);
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
	    cmocka_unit_test(used_images_enter_their_stage),
	    cmocka_unit_test(stage_import_enters_with_its_stage),
	    cmocka_unit_test(git_cache_patch_size),
	    cmocka_unit_test(git_latest_patch_digest),
	    cmocka_unit_test(add_from_repository_root),
	    cmocka_unit_test(giterminism_allowed),
	    cmocka_unit_test(remote_mappings),
	    cmocka_unit_test(remote_urls),
	    cmocka_unit_test(giterminism_mounts),
	    cmocka_unit_test(platform_tables),
	    cmocka_unit_test(platform_pick),
	    cmocka_unit_test(platform_runnable),
	    cmocka_unit_test(uses_dockerfile_image),
	    cmocka_unit_test(several_platforms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
