#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/config.h"

#include "regression.h"

#include "config_test.h"

static void minimal(void **state)
{
	te_werf_config *cfg;

	(void)state;
	cfg = parse_ok("project: werf-test-e2e-export-simple\n"
	               "configVersion: 1\n"
	               "---\n"
	               "image: alpine\n"
	               "dockerfile: Dockerfile\n");
	assert_string_equal(cfg->project, "werf-test-e2e-export-simple");
	assert_int_equal(cfg->nimages, 1);
	assert_string_equal(cfg->images[0].name, "alpine");
	assert_string_equal(cfg->images[0].dockerfile, "Dockerfile");
	assert_string_equal(cfg->images[0].context, "");
	assert_null(cfg->images[0].target);
	assert_true(cfg->images[0].final);
	assert_int_equal(cfg->images[0].line, 4);
	assert_int_equal(cfg->images[0].args.count, 0);
	assert_int_equal(cfg->images[0].platforms.count, 0);
	te_config_free(cfg);
}

static void full_image(void **state)
{
	te_werf_config *cfg;
	te_image_config *img;

	(void)state;
	cfg =
	    parse_ok(META "image: [backend, worker]\n"
	                  "dockerfile: ./docker/../Dockerfile.app\n"
	                  "context: ./app/\n"
	                  "target: prod\n"
	                  "args: {B: true, A: 1, A1: yes, C: \"x y\", "
	                  "D: ~, E: 010}\n"
	                  "final: false\n"
	                  "platform: [linux/amd64, linux/arm64]\n"
	                  "staged: on\n"
	                  "cacheVersion: 3\n"
	                  "fromCacheVersion: x\n"
	                  "addHost: [\"a:1.2.3.4\", \"b.c:::1\"]\n"
	                  "network: none\n"
	                  "secrets: []\n"
	                  "dependencies:\n"
	                  "- image: other\n"
	                  "  imports: [{type: ImageName, targetBuildArg: X}]\n"
	                  "imageSpec:\n"
	                  "  author: me\n"
	                  "  config: {labels: {a: b}, user: root}\n"
	                  "---\nimage: other\ndockerfile: D\n");
	assert_int_equal(cfg->nimages, 3);
	assert_string_equal(cfg->images[0].name, "backend");
	assert_string_equal(cfg->images[1].name, "worker");
	img = &cfg->images[1];
	assert_string_equal(img->dockerfile, "Dockerfile.app");
	assert_string_equal(img->context, "app");
	assert_string_equal(img->target, "prod");
	assert_false(img->final);
	assert_int_equal(img->line, 4);
	assert_int_equal(img->args.count, 6);
	/* sorted by name: "A" before "A1" even though '1' < '=' */
	assert_string_equal(img->args.items[0], "A=1");
	assert_string_equal(img->args.items[1], "A1=true");
	assert_string_equal(img->args.items[2], "B=true");
	assert_string_equal(img->args.items[3], "C=x y");
	assert_string_equal(img->args.items[4], "D=");
	assert_string_equal(img->args.items[5], "E=010");
	assert_null(img->args.items[6]);
	assert_int_equal(img->platforms.count, 2);
	assert_string_equal(img->platforms.items[1], "linux/arm64");
	assert_true(img->staged);
	assert_string_equal(img->cache_version, "3");
	assert_null(img->build_cache_version);
	assert_int_equal(img->ndeps, 1);
	assert_string_equal(img->deps[0].image, "other");
	assert_int_equal(img->deps[0].nimports, 1);
	assert_int_equal(img->deps[0].imports[0].type, TE_IMPORT_IMAGE_NAME);
	assert_string_equal(img->deps[0].imports[0].build_arg, "X");
	assert_false(cfg->images[2].staged);
	assert_int_equal(cfg->images[2].ndeps, 0);
	assert_string_equal(img->network, "none");
	assert_int_equal(img->add_hosts.count, 2);
	assert_string_equal(img->add_hosts.items[1], "b.c:::1");
	assert_string_equal(img->imagespec.author, "me");
	assert_string_equal(img->imagespec.user, "root");
	assert_int_equal(img->imagespec.labels.count, 2);
	te_config_free(cfg);
}

/* build.cacheVersion and build.staged reach every image; the image's
 * own staged wins. */
static void build_defaults(void **state)
{
	te_werf_config *cfg;

	(void)state;
	cfg = parse_ok("project: demo\nconfigVersion: 1\n"
	               "build: {cacheVersion: v7, staged: true}\n---\n"
	               "image: a\ndockerfile: D\n---\nimage: b\n"
	               "dockerfile: D\nstaged: false\n"
	               "dependencies:\n- image: a\n  imports:\n"
	               "  - {type: ImageDigest, targetBuildArg: A_DIGEST}\n"
	               "  - {type: ImageRepo, targetBuildArg: A_REPO}\n"
	               "  - {type: ImageTag, targetBuildArg: A_TAG}\n");
	assert_true(cfg->images[0].staged);
	assert_false(cfg->images[1].staged);
	assert_string_equal(cfg->images[0].build_cache_version, "v7");
	assert_null(cfg->images[0].cache_version);
	assert_int_equal(cfg->images[1].deps[0].nimports, 3);
	assert_int_equal(cfg->images[1].deps[0].imports[2].type,
	                 TE_IMPORT_IMAGE_TAG);
	te_config_free(cfg);
}

static void bad_dependencies(void **state)
{
	(void)state;
	expect_err(META "image: a\ndockerfile: D\ndependencies:\n"
	                "- image: nope\n",
	           TE_EINVALID,
	           "werf.yaml:7: image \"a\": dependency on unknown image "
	           "\"nope\"");
	expect_err(META "image: b\ndockerfile: D\n---\nimage: a\n"
	                "dockerfile: D\ndependencies:\n"
	                "- image: b\n  imports:\n"
	                "  - {type: ImageFoo, targetBuildArg: X}\n",
	           TE_EINVALID,
	           "werf.yaml:12: unknown import type \"ImageFoo\"");
	expect_err(META "image: b\ndockerfile: D\n---\nimage: a\n"
	                "dockerfile: D\ndependencies:\n"
	                "- image: b\n  imports:\n  - {type: ImageName}\n",
	           TE_EINVALID, "werf.yaml:12: import needs targetBuildArg");
	expect_err(META "image: b\ndockerfile: D\n---\nimage: a\n"
	                "dockerfile: D\ndependencies:\n"
	                "- image: b\n  before: install\n",
	           TE_EINVALID,
	           "werf.yaml:10: dependency before/after apply "
	           "to Stapel images");
}

/* imageSpec fields reach te_imagespec; build.imageSpec goes under the
 * image's own for final images only. */
static void imagespec_keys(void **state)
{
	te_werf_config *cfg;
	const te_imagespec *s;

	(void)state;
	cfg = parse_ok("project: p\nconfigVersion: 1\n"
	               "build:\n  imageSpec:\n    author: g\n"
	               "    clearHistory: true\n"
	               "    config:\n      labels: {a: ga, g: gg}\n"
	               "      removeLabels: [x, /y.*/]\n"
	               "      keepEssentialWerfLabels: true\n"
	               "---\nimage: f\ndockerfile: D\n"
	               "imageSpec:\n  config:\n    labels: {a: ia}\n"
	               "    removeLabels: [x, z]\n"
	               "    env: {A: \"${B}:1\", E: ~}\n"
	               "    removeEnv: [/T_.*/]\n"
	               "    volumes: [/v]\n    removeVolumes: [/w]\n"
	               "    expose: []\n    user: u\n    workingDir: /d\n"
	               "    stopSignal: SIGINT\n    cmd: [c]\n"
	               "    entrypoint: [e, f]\n"
	               "    healthcheck: {test: [CMD, t], interval: 1m30s,\n"
	               "      timeout: 5, startPeriod: 2s, retries: 4}\n"
	               "    clearCmd: yes\n    clearEntrypoint: true\n"
	               "    clearUser: true\n    clearWorkingDir: true\n"
	               "---\nimage: nf\ndockerfile: D\nfinal: false\n");
	s = &cfg->images[0].imagespec;
	assert_string_equal(s->author, "g");
	assert_true(s->clear_history);
	assert_true(s->keep_essential_werf_labels);
	assert_int_equal(s->labels.count, 4);
	assert_string_equal(s->labels.items[0], "a");
	assert_string_equal(s->labels.items[1], "ia");
	assert_string_equal(s->labels.items[2], "g");
	assert_int_equal(s->remove_labels.count, 3);
	assert_string_equal(s->remove_labels.items[2], "/y.*/");
	assert_string_equal(s->env.items[1], "${B}:1");
	assert_string_equal(s->env.items[3], "");
	assert_string_equal(s->remove_env.items[0], "/T_.*/");
	assert_string_equal(s->volumes.items[0], "/v");
	assert_string_equal(s->remove_volumes.items[0], "/w");
	assert_true(s->has_expose);
	assert_int_equal(s->expose.count, 0);
	assert_string_equal(s->user, "u");
	assert_string_equal(s->working_dir, "/d");
	assert_string_equal(s->stop_signal, "SIGINT");
	assert_true(s->has_cmd && s->has_entrypoint);
	assert_string_equal(s->entrypoint.items[1], "f");
	assert_true(s->has_healthcheck);
	assert_int_equal(s->hc_interval, 90);
	assert_int_equal(s->hc_timeout, 5);
	assert_int_equal(s->hc_start_period, 2);
	assert_int_equal(s->hc_retries, 4);
	assert_true(s->clear_cmd && s->clear_entrypoint && s->clear_user &&
	            s->clear_working_dir);
	/* not final: the global imageSpec does not apply */
	assert_true(te_imagespec_is_empty(&cfg->images[1].imagespec));
	te_config_free(cfg);

	/* label templates are filled in per image: one document, two
	 * images, two different specs (and content tags) */
	cfg = parse_ok(META "image: [one, two]\ndockerfile: D\n"
	                    "imageSpec: {config: {labels: "
	                    "{\"%project%-name\": \"%image%\"}}}\n");
	assert_string_equal(cfg->images[0].imagespec.labels.items[0],
	                    "demo-name");
	assert_string_equal(cfg->images[0].imagespec.labels.items[1], "one");
	assert_string_equal(cfg->images[1].imagespec.labels.items[1], "two");
	te_config_free(cfg);

	expect_err(META "image: a\ndockerfile: D\nimageSpec:\n  config:\n"
	                "    removeLabels: [ok, \"/(/\"]\n",
	           TE_EINVALID,
	           "werf.yaml:8: removeLabels: invalid regular expression");
	expect_err(
	    META "image: a\ndockerfile: D\nimageSpec:\n  config:\n"
	         "    removeEnv: [\"/a(?z)/\"]\n",
	    TE_EINVALID,
	    "werf.yaml:8: removeEnv: invalid regular expression /a(?z)/: "
	    "error parsing regexp: invalid or unsupported Perl syntax");
	expect_err(META "image: a\ndockerfile: D\nimageSpec:\n  config:\n"
	                "    healthcheck: {test: [x], interval: 5d}\n",
	           TE_EINVALID, "werf.yaml:8: healthcheck interval: invalid");
	expect_err(META "image: a\ndockerfile: D\nimageSpec:\n  config:\n"
	                "    healthcheck: {interval: 5}\n",
	           TE_EINVALID, "non-empty \"test\"");
	expect_err(META "image: a\ndockerfile: D\nimageSpec:\n  config:\n"
	                "    env: {\"A=B\": x}\n",
	           TE_EINVALID, "werf.yaml:8: invalid env name \"A=B\"");
	expect_err(META "image: a\ndockerfile: D\nimageSpec:\n  config:\n"
	                "    clearWerfLabels: true\n",
	           TE_EINVALID, "werf.yaml:8: clearWerfLabels is deprecated");
	expect_err("project: p\nconfigVersion: 1\nbuild:\n  imageSpec:\n"
	           "    config: {env: {A: b}}\n",
	           TE_EINVALID,
	           "werf.yaml:5: unknown field \"env\" in "
	           "\"config\"");
}

static void network_and_hosts(void **state)
{
	te_werf_config *cfg;

	(void)state;
	expect_err(META "image: a\ndockerfile: D\nnetwork: host\n", TE_EINVALID,
	           "werf.yaml:6: network \"host\" is refused");
	expect_err(META "image: a\ndockerfile: D\nnetwork: bridge\n",
	           TE_EINVALID, "werf.yaml:6: invalid network \"bridge\"");
	expect_err(META "image: a\ndockerfile: D\naddHost: a:b\n", TE_EINVALID,
	           "werf.yaml:6: invalid addHost \"a:b\"");
	expect_err(META "image: a\ndockerfile: D\naddHost: [\"a b:1.2.3.4\"]\n",
	           TE_EINVALID, "invalid addHost");
	expect_err(META "image: a\ndockerfile: D\nssh: default=/etc/key\n",
	           TE_EINVALID,
	           "werf.yaml:6: ssh \"default=/etc/key\": a socket or key "
	           "path in werf.yaml is refused");
	expect_err(META "image: a\ndockerfile: D\nssh: \"a b\"\n", TE_EINVALID,
	           "werf.yaml:6: invalid ssh id");
	cfg = parse_ok(META "image: a\ndockerfile: D\n\nssh: default\n");
	assert_string_equal(cfg->images[0].ssh, "default");
	assert_int_equal(cfg->images[0].ssh_line, 7);
	te_config_free(cfg);
}

static void secrets(void **state)
{
	te_secrets_allowed allowed;
	te_error err = TE_ERROR_INIT;
	te_werf_config *cfg;
	const te_secret_config *s;
	static const char giterminism[] =
	    "giterminismConfigVersion: 1\nconfig:\n  secrets:\n"
	    "    allowEnvVariables: [A, /B_.*/]\n"
	    "    allowFiles: [\"~/.aws/*\"]\n    allowValueIds: [v]\n";

	(void)state;
	cfg = parse_ok(META "image: a\ndockerfile: D\nsecrets:\n"
	                    "- env: A\n- {id: b, env: B_1}\n"
	                    "- src: ~/.aws/credentials\n- {id: v, value: x}\n"
	                    "- {id: w, value: y}\n- env: C\n");
	assert_int_equal(cfg->images[0].nsecrets, 6);
	s = cfg->images[0].secrets;
	assert_string_equal(s[0].id, "A");
	assert_int_equal(s[0].kind, TE_SECRET_ENV);
	assert_int_equal(s[0].line, 7);
	assert_string_equal(s[1].id, "b");
	assert_string_equal(s[1].ref, "B_1");
	assert_string_equal(s[2].id, "credentials");
	assert_int_equal(s[2].kind, TE_SECRET_SRC);
	assert_int_equal(s[3].kind, TE_SECRET_VALUE);
	assert_string_equal(s[3].ref, "x");

	memset(&allowed, 0, sizeof(allowed));
	assert_int_equal(te_config_secrets_allowed(&allowed, giterminism,
	                                           strlen(giterminism), &err),
	                 0);
	assert_int_equal(
	    te_config_secret_check(&allowed, &s[0], "werf.yaml", &err), 0);
	assert_int_equal(
	    te_config_secret_check(&allowed, &s[1], "werf.yaml", &err), 0);
	assert_int_equal(
	    te_config_secret_check(&allowed, &s[2], "werf.yaml", &err), 0);
	assert_int_equal(
	    te_config_secret_check(&allowed, &s[3], "werf.yaml", &err), 0);
	assert_int_equal(
	    te_config_secret_check(&allowed, &s[4], "werf.yaml", &err),
	    TE_EINVALID);
	assert_string_equal(err.msg,
	                    "werf.yaml:11: secret value id \"w\" is not "
	                    "allowed by werf-giterminism.yaml "
	                    "(config.secrets.allowValueIds)");
	/* the message never holds a value */
	assert_null(strstr(err.msg, "\"y\""));
	te_error_clear(&err);
	assert_int_equal(
	    te_config_secret_check(&allowed, &s[5], "werf.yaml", &err),
	    TE_EINVALID);
	assert_non_null(strstr(err.msg, "secret env \"C\""));
	te_strvec_dispose(&allowed.env_variables);
	te_strvec_dispose(&allowed.files);
	te_strvec_dispose(&allowed.value_ids);
	te_config_free(cfg);
	/* no file: nothing allowed */
	memset(&allowed, 0, sizeof(allowed));
	assert_int_equal(te_config_secrets_allowed(&allowed, NULL, 0, &err), 0);
	assert_int_equal(allowed.value_ids.count, 0);
	memset(&allowed, 0, sizeof(allowed));
	te_error_clear(&err);
	assert_int_equal(
	    te_config_secrets_allowed(
	        &allowed, "config: {secrets: {allowFiles: x}}\n", 35, &err),
	    TE_EINVALID);

	expect_err(META "image: a\ndockerfile: D\nsecrets: [{value: x}]\n",
	           TE_EINVALID, "werf.yaml:6: a secret value needs an id");
	expect_err(META
	           "image: a\ndockerfile: D\nsecrets: [{env: A, src: b}]\n",
	           TE_EINVALID, "exactly one of env, src and value");
	expect_err(META "image: a\ndockerfile: D\nsecrets: [{id: a}]\n",
	           TE_EINVALID, "exactly one of env, src and value");
	expect_err(META "image: a\ndockerfile: D\nsecrets: [{env: A}, "
	                "{id: A, value: x}]\n",
	           TE_EINVALID, "duplicate secret id \"A\"");
	expect_err(META "image: a\ndockerfile: D\nsecrets: [{id: \"a,b\", "
	                "value: x}]\n",
	           TE_EINVALID, "invalid secret id \"a,b\"");
	expect_err(META "image: a\ndockerfile: D\nsecrets: [{env: \"A-B\"}]\n",
	           TE_EINVALID, "secret env \"A-B\" is not a variable name");
}

static void args_stringified(void **state)
{
	te_werf_config *cfg;

	(void)state;
	cfg = parse_ok(META "image: a\ndockerfile: D\n"
	                    "args: {A: 1, B: true}\n");
	assert_int_equal(cfg->images[0].args.count, 2);
	assert_string_equal(cfg->images[0].args.items[0], "A=1");
	assert_string_equal(cfg->images[0].args.items[1], "B=true");
	te_config_free(cfg);
	expect_err(META "image: a\ndockerfile: D\nargs: {A: [1]}\n",
	           TE_EINVALID, "werf.yaml:6: args value of \"A\" must be");
	expect_err(META "image: a\ndockerfile: D\nargs: [A]\n", TE_EINVALID,
	           "werf.yaml:6: field \"args\" must be a mapping");
	expect_err(META "image: a\ndockerfile: D\nargs: {\"A=B\": 1}\n",
	           TE_EINVALID, "invalid build arg name");
}

static void final_bools(void **state)
{
	static const char *const no[] = {"false", "no", "off", "N", "OFF"};
	static const char *const yes[] = {"true", "yes", "on", "Y", "True"};
	char yaml[256];
	te_werf_config *cfg;
	size_t i;

	(void)state;
	for (i = 0; i < 5; i++) {
		snprintf(yaml, sizeof(yaml),
		         META "image: a\ndockerfile: D\nfinal: %s\n", no[i]);
		cfg = parse_ok(yaml);
		assert_false(cfg->images[0].final);
		te_config_free(cfg);
		snprintf(yaml, sizeof(yaml),
		         META "image: a\ndockerfile: D\nfinal: %s\n", yes[i]);
		cfg = parse_ok(yaml);
		assert_true(cfg->images[0].final);
		te_config_free(cfg);
	}
	expect_err(META "image: a\ndockerfile: D\nfinal: \"false\"\n",
	           TE_EINVALID,
	           "werf.yaml:6: field \"final\" must be a boolean");
	expect_err(META "image: a\ndockerfile: D\nfinal: 0\n", TE_EINVALID,
	           "must be a boolean");
}

static void separators(void **state)
{
	te_werf_config *cfg;

	(void)state;
	/* "--- # c", "---\t\r", and a final separator split */
	cfg = parse_ok("configVersion: 1\nproject: p\n--- # comment\n"
	               "image: a\ndockerfile: D\n---\t\r\n"
	               "# only a comment\n\n---\n"
	               "image: b\ndockerfile: D\n---\n");
	assert_int_equal(cfg->nimages, 2);
	assert_int_equal(cfg->images[0].line, 4);
	assert_int_equal(cfg->images[1].line, 10);
	te_config_free(cfg);
	/* "----" is content: the YAML parser sees it */
	expect_err(META "image: a\ndockerfile: D\n----\nimage: b\n",
	           TE_EINVALID, "werf.yaml:6: yaml:");
	/* "--- foo" is content too, which makes a second YAML document */
	expect_err(META "image: a\ndockerfile: D\n--- foo\n", TE_EINVALID,
	           "werf.yaml:6: more than one yaml document");
	/* "---x" is content */
	expect_err(META "---x\n", TE_EINVALID, "werf.yaml:4: ");
	/* a section that is only "--- foo" is a scalar document */
	expect_err(META "--- foo\n", TE_EINVALID,
	           "werf.yaml:4: config section must be a mapping");
}

static void line_numbers(void **state)
{
	(void)state;
	expect_err(META "image: a\ndockerfile: D\n\n# c\nbogus: 1\n",
	           TE_EINVALID, "werf.yaml:8: unknown field \"bogus\"");
	expect_err("project: p\nconfigVersion: 1\nbuild:\n  platfrom: [x]\n",
	           TE_EINVALID,
	           "werf.yaml:4: unknown field \"platfrom\" in \"build\"");
	expect_err(META "image: a\ndockerfile: D\nimage: b\n", TE_EINVALID,
	           "werf.yaml:6: duplicate key \"image\"");
	expect_err(META "image: a\ndockerfile: D\nimageSpec:\n  config:\n"
	                "    labels: {a: 1, a: 2}\n",
	           TE_EINVALID, "werf.yaml:8: duplicate key \"a\"");
	expect_err(META "image: a\n\tdockerfile: D\n", TE_EINVALID,
	           "werf.yaml:");
}

static void meta_rules(void **state)
{
	te_werf_config *cfg;

	(void)state;
	expect_err("image: a\ndockerfile: D\n", TE_EINVALID,
	           "\"configVersion: 1\" and \"project: <name>\"");
	expect_err("", TE_EINVALID, "meta config section not found");
	expect_err("project: p\nconfigVersion: 2\n", TE_EINVALID,
	           "werf.yaml:2: configVersion must be 1");
	expect_err("project: p\nconfigVersion: \"1\"\n", TE_EINVALID,
	           "configVersion must be 1");
	expect_err("configVersion: 1\n", TE_EINVALID,
	           "werf.yaml:1: project is required");
	expect_err("configVersion: 1\nproject: My_App\n", TE_EINVALID,
	           "werf.yaml:2: invalid project name \"My_App\"");
	expect_err("configVersion: 1\nproject: -a\n", TE_EINVALID,
	           "invalid project name");
	expect_err("configVersion: 1\nproject: "
	           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	           TE_EINVALID, "invalid project name");
	expect_err("configVersion: 1\nproject: p\n---\n"
	           "configVersion: 1\nproject: q\n",
	           TE_EINVALID, "werf.yaml:4: duplicate meta config section");
	expect_err("configVersion: 1\nproject: p\nbuild: {staged: maybe}\n",
	           TE_EINVALID,
	           "werf.yaml:3: field \"staged\" must be a "
	           "boolean");
	expect_err("configVersion: 1\nproject: p\n"
	           "build: {platform: [\"linux/amd64,linux/arm64\"]}\n",
	           TE_EINVALID, "werf.yaml:3: platform");
	cfg =
	    parse_ok("configVersion: 1\nproject: a\n"
	             "build:\n  cacheVersion: 1\n  staged: true\n"
	             "  platform: [linux/amd64]\n"
	             "  imageSpec: {author: x, clearHistory: yes,\n"
	             "    config: {removeLabels: [a, /b.*/]}}\n"
	             "deploy: {helmRelease: x, namespaceSlug: true}\n"
	             "cleanup:\n  keepPolicies:\n"
	             "  - references: {branch: /.*/, limit: {last: 10}}\n"
	             "    imagesPerReference: {last: 2}\n"
	             "gitWorktree: {forceShallowClone: true}\n"
	             "---\nimage: x\ndockerfile: D\n"
	             "---\nimage: z\ndockerfile: D\nplatform: [linux/s390x]\n");
	assert_string_equal(cfg->project, "a");
	assert_int_equal(cfg->nimages, 2);
	/* meta build.platform feeds images that have none */
	assert_int_equal(cfg->images[0].platforms.count, 1);
	assert_string_equal(cfg->images[0].platforms.items[0], "linux/amd64");
	assert_string_equal(cfg->images[1].platforms.items[0], "linux/s390x");
	assert_int_equal(cfg->images[1].platforms.count, 1);
	te_config_free(cfg);
	/* meta may come after the images */
	cfg = parse_ok("image: x\ndockerfile: D\n---\n"
	               "configVersion: 1\nproject: a\n");
	assert_int_equal(cfg->nimages, 1);
	te_config_free(cfg);
}

static void classification(void **state)
{
	te_werf_config *cfg;

	(void)state;
	/* image or artifact without dockerfile: a Stapel document */
	cfg = parse_ok(META "image: a\nfrom: alpine\n---\nartifact: b\n"
	                    "from: alpine\n");
	assert_non_null(cfg->images[0].stapel);
	assert_true(cfg->images[0].final);
	assert_true(cfg->images[1].stapel->artifact);
	assert_false(cfg->images[1].final);
	assert_null(cfg->images[1].dockerfile);
	te_config_free(cfg);
	expect_err(META "image: a\n", TE_EINVALID,
	           "werf.yaml:4: image \"a\": a base image is required");
	expect_err(META "foo: bar\n", TE_EINVALID,
	           "werf.yaml:4: cannot recognize type of config section");
	expect_err(META "- a\n- b\n", TE_EINVALID,
	           "werf.yaml:4: config section must be a mapping");
	expect_err(META "~\n", TE_EINVALID, "cannot recognize type");
}

/* The text is already rendered (werfcfg.c): braces left in it are data. */
static void rendered_braces(void **state)
{
	te_werf_config *cfg;

	(void)state;
	cfg = parse_ok(META "image: a\ndockerfile: D\nargs: {A: "
	                    "\"{{ .Env }}\"}\n");
	assert_int_equal(cfg->nimages, 1);
	assert_string_equal(cfg->images[0].args.items[0], "A={{ .Env }}");
	te_config_free(cfg);
}

static void image_names(void **state)
{
	te_werf_config *cfg;
	char yaml[600];

	(void)state;
	expect_err(META "image: a\ndockerfile: D\n---\nimage: [b, a]\n"
	                "dockerfile: D\n",
	           TE_EINVALID,
	           "werf.yaml:7: conflict between images names "
	           "\"a\"");
	expect_err(META "image: [a, a]\ndockerfile: D\n", TE_EINVALID,
	           "conflict between images names \"a\"");
	expect_err(META "image: \"\"\ndockerfile: D\n", TE_EINVALID,
	           "werf.yaml:4: image name is empty");
	expect_err(META "image: \"a\\tb\"\ndockerfile: D\n", TE_EINVALID,
	           "control character");
	expect_err(META "image: 12\ndockerfile: D\n", TE_EINVALID,
	           "image name must be a string");
	expect_err(META "image: [a, [b]]\ndockerfile: D\n", TE_EINVALID,
	           "werf.yaml:4: field \"image\" must be a string or a list");
	expect_err(META "image: {a: b}\ndockerfile: D\n", TE_EINVALID,
	           "field \"image\" must be a string or a list");
	memset(yaml, 0, sizeof(yaml));
	strcpy(yaml, META "image: ");
	memset(yaml + strlen(yaml), 'x', 256);
	strcat(yaml, "\ndockerfile: D\n");
	expect_err(yaml, TE_EINVALID, "longer than 255 bytes");
	/* nameless image: only when alone */
	cfg = parse_ok(META "image: ~\ndockerfile: D\n");
	assert_int_equal(cfg->nimages, 1);
	assert_string_equal(cfg->images[0].name, "");
	te_config_free(cfg);
	expect_err(META "image: ~\ndockerfile: D\n---\nimage: b\n"
	                "dockerfile: D\n",
	           TE_EINVALID, "nameless image");
	/* "yes" quoted is a name, unquoted it is a boolean */
	cfg = parse_ok(META "image: \"yes\"\ndockerfile: D\n");
	assert_string_equal(cfg->images[0].name, "yes");
	te_config_free(cfg);
	expect_err(META "image: yes\ndockerfile: D\n", TE_EINVALID,
	           "image name must be a string");
}

static void paths(void **state)
{
	te_werf_config *cfg;

	(void)state;
	cfg = parse_ok(META "image: a\ndockerfile:\ncontext: .\n");
	assert_string_equal(cfg->images[0].dockerfile, "Dockerfile");
	assert_string_equal(cfg->images[0].context, "");
	te_config_free(cfg);
	expect_err(META "image: a\ndockerfile: /etc/Dockerfile\n", TE_EINVALID,
	           "werf.yaml:5: dockerfile \"/etc/Dockerfile\" "
	           "must be a relative path");
	expect_err(META "image: a\ndockerfile: ../Dockerfile\n", TE_EINVALID,
	           "must not leave the project directory");
	expect_err(META "image: a\ndockerfile: D\ncontext: a/../../b\n",
	           TE_EINVALID, "werf.yaml:6: context \"a/../../b\" must not");
	expect_err(META "image: a\ndockerfile: D\ncontext: /abs\n", TE_EINVALID,
	           "must be a relative path");
	expect_err(META "image: a\ndockerfile: [D]\n", TE_EINVALID,
	           "field \"dockerfile\" must be a string");
	expect_err(META "image: a\ndockerfile: D\ncontextAddFiles: [x]\n",
	           TE_EINVALID,
	           "werf.yaml:6: contextAddFiles is refused: the build "
	           "context is the commit's tree");
	expect_err(META "image: a\ndockerfile: D\ncontextAddFile: x\n",
	           TE_EINVALID, "nothing outside the commit");
}

static void platforms_and_types(void **state)
{
	(void)state;
	expect_err(META "image: a\ndockerfile: D\n"
	                "platform: [\"linux/amd64,linux/arm64\"]\n",
	           TE_EINVALID,
	           "werf.yaml:6: platform \"linux/amd64,linux/"
	           "arm64\" must not contain a comma");
	expect_err(META "image: a\ndockerfile: D\nplatform: linux/amd64\n",
	           TE_EINVALID, "field \"platform\" must be a list of strings");
	expect_err(META "image: a\ndockerfile: D\nplatform: [[x]]\n",
	           TE_EINVALID, "field \"platform\" must be a string");
	expect_err(META "image: a\ndockerfile: D\nsecrets: [{id: a, x: 1}]\n",
	           TE_EINVALID, "unknown field \"x\" in \"secrets\"");
	expect_err(META "image: a\ndockerfile: D\ndependencies: x\n",
	           TE_EINVALID, "field \"dependencies\" must be a list");
	expect_err(META "image: a\ndockerfile: D\ntarget: {a: 1}\n",
	           TE_EINVALID, "field \"target\" must be a string");
	expect_err(META "image: a\ndockerfile: D\nimageSpec: {config: "
	                "{healthcheck: {retries: x}}}\n",
	           TE_EINVALID, "field \"retries\" must be an integer");
}

static void limits(void **state)
{
	te_werf_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	char *big;
	size_t i, n;
	int rc;

	(void)state;
	/* size */
	n = 1024 * 1024 + 1;
	big = malloc(n);
	assert_non_null(big);
	memset(big, '#', n);
	rc = te_config_parse(&cfg, big, n, "werf.yaml", &err);
	assert_int_equal(rc, TE_EINVALID);
	assert_non_null(strstr(err.msg, "1 MiB"));
	free(big);

	/* nesting */
	big = malloc(4096);
	assert_non_null(big);
	strcpy(big, META "image: a\ndockerfile: D\nimageSpec: {author: ");
	for (i = 0; i < 70; i++)
		strcat(big, "[");
	for (i = 0; i < 70; i++)
		strcat(big, "]");
	strcat(big, "}\n");
	expect_err(big, TE_EINVALID, "werf.yaml:6: nesting deeper than 64");
	free(big);

	/* image count */
	big = malloc(1002 * 64 + 64);
	assert_non_null(big);
	strcpy(big, "configVersion: 1\nproject: p\n");
	for (i = 0; i < 1001; i++)
		sprintf(big + strlen(big), "---\nimage: i%zu\ndockerfile: D\n",
		        i);
	expect_err(big, TE_EINVALID, "more than 1000 images");
	free(big);

	/* recursive alias is bounded, not a crash */
	expect_err(META "image: a\ndockerfile: D\n"
	                "secrets: &a [*a]\n",
	           TE_EINVALID, "werf.yaml:");
	/* NUL inside a value */
	expect_err(META "image: \"a\\0b\"\ndockerfile: D\n", TE_EINVALID,
	           "NUL");
}

static void aliases_ok(void **state)
{
	te_werf_config *cfg;

	(void)state;
	/* anchors live inside one section, like yaml.v2 per document */
	cfg = parse_ok(META "image: &n a\ndockerfile: D\nargs: {X: *n}\n");
	assert_int_equal(cfg->nimages, 1);
	assert_string_equal(cfg->images[0].args.items[0], "X=a");
	te_config_free(cfg);
	expect_err(META "image: a\ndockerfile: D\nargs: &args {X: 1}\n"
	                "---\nimage: b\ndockerfile: D\nargs: *args\n",
	           TE_EINVALID, "werf.yaml:10: yaml: found undefined alias");
}

/* Fuzzer finds (tests/fuzz/regressions/werf_config): a configVersion
 * that is a mapping or a list was printed as a string (heap overflow). */
static void fuzz_regressions(void **state)
{
	static const char *const files[] = {"min-configVersion-nonscalar",
	                                    "min-configVersion-sequence"};
	static const char *const want[] = {
	    "werf.yaml:1: configVersion must be 1, got a mapping",
	    "werf.yaml:1: configVersion must be 1, got a list"};
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		te_buf in = TE_BUF_INIT(0);
		te_werf_config *cfg = NULL;
		te_error err = TE_ERROR_INIT;

		read_regression(&in, "werf_config", files[i]);
		assert_int_equal(
		    te_config_parse(&cfg, in.ptr, in.len, "werf.yaml", &err),
		    TE_EINVALID);
		assert_string_equal(err.msg, want[i]);
		assert_null(cfg);
		te_buf_dispose(&in);
	}
	expect_err("project: p\nconfigVersion:\n  v: 1\n", TE_EINVALID,
	           "werf.yaml:3: configVersion must be 1, got a mapping");
	/* the other meta and image keys are type-checked before use */
	expect_err("project: [p]\nconfigVersion: 1\n", TE_EINVALID,
	           "werf.yaml:1: field \"project\" must be a string");
	expect_err("project: p\nconfigVersion: 1\nbuild: {platform: [[x]]}\n",
	           TE_EINVALID,
	           "werf.yaml:3: field \"platform\" must be a "
	           "string");
	expect_err(META "image: {a: 1}\ndockerfile: D\n", TE_EINVALID,
	           "werf.yaml:4: field \"image\" must be a string");
	expect_err(META "image: [[a]]\ndockerfile: D\n", TE_EINVALID,
	           "werf.yaml:4: field \"image\" must be a string");
	expect_err(META "image: a\ndockerfile: [D]\n", TE_EINVALID,
	           "werf.yaml:5: field \"dockerfile\" must be a string");
	expect_err(META "image: a\ndockerfile: D\nargs: [a]\n", TE_EINVALID,
	           "werf.yaml:6: field \"args\" must be a mapping");
	expect_err(META "image: a\ndockerfile: D\nargs: {X: {Y: 1}}\n",
	           TE_EINVALID, "werf.yaml:6: args value of \"X\" must be");
	expect_err(META "image: a\ndockerfile: D\nfinal: [true]\n", TE_EINVALID,
	           "werf.yaml:6: field \"final\" must be a "
	           "boolean");
}

/* The shared event scan (also the server config's): limits named,
 * duplicates found at any depth when asked for. */
static void yaml_scan(void **state)
{
	te_error err = TE_ERROR_INIT;
	const char *dup = "a: 1\nb:\n  c: 1\n  d: {x: 1, y: 2}\n  c: 2\n";
	char *deep;

	(void)state;
	assert_int_equal(
	    te_config_yaml_scan(dup, strlen(dup), "f", 1, false, &err), 0);
	assert_int_equal(
	    te_config_yaml_scan(dup, strlen(dup), "f", 1, true, &err),
	    TE_EINVALID);
	assert_string_equal(err.msg, "f:5: duplicate key \"c\"");
	te_error_clear(&err);
	assert_int_equal(
	    te_config_yaml_scan("[{a: 1}, {a: 1}]", 16, "f", 10, true, &err),
	    0);
	assert_int_equal(
	    te_config_yaml_scan("{a: 1, a: 2}", 12, "f", 10, true, &err),
	    TE_EINVALID);
	assert_string_equal(err.msg, "f:10: duplicate key \"a\"");
	te_error_clear(&err);
	/* 64 levels are fine, 65 are not */
	deep = calloc(1, 2 * (TE_CONFIG_MAX_DEPTH + 1) + 1);
	assert_non_null(deep);
	memset(deep, '[', TE_CONFIG_MAX_DEPTH);
	memset(deep + TE_CONFIG_MAX_DEPTH, ']', TE_CONFIG_MAX_DEPTH);
	assert_int_equal(
	    te_config_yaml_scan(deep, strlen(deep), "f", 1, true, &err), 0);
	memset(deep, '[', TE_CONFIG_MAX_DEPTH + 1);
	memset(deep + TE_CONFIG_MAX_DEPTH + 1, ']', TE_CONFIG_MAX_DEPTH + 1);
	assert_int_equal(
	    te_config_yaml_scan(deep, strlen(deep), "f", 1, true, &err),
	    TE_EINVALID);
	assert_string_equal(err.msg, "f:1: nesting deeper than 64 levels");
	free(deep);
	te_error_clear(&err);
	assert_int_equal(
	    te_config_yaml_scan("a: 1\n---\nb: 2\n", 14, "f", 1, true, &err),
	    TE_EINVALID);
	assert_string_equal(err.msg, "f:2: more than one yaml document");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(minimal),
	    cmocka_unit_test(full_image),
	    cmocka_unit_test(build_defaults),
	    cmocka_unit_test(bad_dependencies),
	    cmocka_unit_test(imagespec_keys),
	    cmocka_unit_test(network_and_hosts),
	    cmocka_unit_test(secrets),
	    cmocka_unit_test(args_stringified),
	    cmocka_unit_test(final_bools),
	    cmocka_unit_test(separators),
	    cmocka_unit_test(line_numbers),
	    cmocka_unit_test(meta_rules),
	    cmocka_unit_test(classification),
	    cmocka_unit_test(rendered_braces),
	    cmocka_unit_test(image_names),
	    cmocka_unit_test(paths),
	    cmocka_unit_test(platforms_and_types),
	    cmocka_unit_test(limits),
	    cmocka_unit_test(aliases_ok),
	    cmocka_unit_test(fuzz_regressions),
	    cmocka_unit_test(yaml_scan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
