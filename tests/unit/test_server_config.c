/*
 * test_server_config.c - tagexport-server's YAML config: a full valid
 * file, and each kind of mistake reported with its line number.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rm_rf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "regression.h"

static char dir[] = "/tmp/te-srvcfg.XXXXXX";
static char cfgpath[300];

static int setup(void **state)
{
	char path[300];
	FILE *f;

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/shop.secret", dir);
	f = fopen(path, "w");
	fputs("s3cret-value\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/admin.token", dir);
	f = fopen(path, "w");
	fputs("admin-token\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/empty.secret", dir);
	f = fopen(path, "w");
	fputs("\n", f);
	fclose(f);
	snprintf(cfgpath, sizeof(cfgpath), "%s/server.yaml", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rm_rf(dir) == 0 ? 0 : -1;
}

static const char good[] =
    "listen: 127.0.0.1:9090\n"
    "state_dir: /var/lib/tagexport\n"
    "workers: 3\n"
    "admin_token_file: admin.token\n"
    "log_format: json\n"
    "projects:\n"
    "  - name: shop\n"
    "    forge: github\n"
    "    repository: acme/shop\n"
    "    secret_file: shop.secret\n"
    "    git_url: https://git.example.com/acme/shop.git\n"
    "    tags: [\"v*\"]\n"
    "    export:\n"
    "      repo: registry.example.com/shop/stages\n"
    "      tag: [\"registry.example.com/shop/%image%:%git_tag%\"]\n"
    "      add_label: {org.opencontainers.image.source: "
    "https://git.example.com/acme/shop}\n"
    "      images: [backend]\n"
    "      insecure_registry: false\n"
    "  - name: infra_2\n"
    "    forge: forgejo\n"
    "    repository: infra/edge\n"
    "    secret_env: TE_TEST_SECRET\n"
    "    git_url: ssh://git@git.example.com/infra/edge.git\n"
    "    git_ssh_key_file: /etc/tagexport/edge.key\n"
    "    git_known_hosts_file: known_hosts\n"
    "    export:\n"
    "      repo: r.example.com/edge/stages\n"
    "      tag: r.example.com/edge/%image%:%semver_major%\n"
    "      max_file_size: 512MiB\n"
    "      max_context_size: 4294967296\n";

static void parses_full_config(void **state)
{
	te_export_opts opts = TE_EXPORT_OPTS_INIT;
	struct ts_config *cfg = NULL;
	const te_project *p;
	te_error err = TE_ERROR_INIT;

	(void)state;
	setenv("TE_TEST_SECRET", "from-env", 1);
	assert_int_equal(
	    ts_config_parse(&cfg, good, strlen(good), cfgpath, &err), 0);
	assert_string_equal(cfg->host, "127.0.0.1");
	assert_int_equal(cfg->port, 9090);
	assert_int_equal(cfg->workers, 3);
	assert_int_equal(cfg->log_format, TS_LOG_JSON);
	assert_string_equal(cfg->admin_token, "admin-token");
	assert_int_equal(cfg->max_body, 25 * 1024 * 1024);
	assert_int_equal(cfg->nprojects, 2);
	p = ts_config_project(cfg, "shop");
	assert_non_null(p);
	assert_int_equal(p->forge, TE_FORGE_GITHUB);
	assert_string_equal(p->secret, "s3cret-value");
	assert_int_equal(p->secret_len, strlen("s3cret-value"));
	assert_int_equal(p->tags.count, 1);
	assert_string_equal(p->tag_templates.items[0],
	                    "registry.example.com/shop/%image%:%git_tag%");
	assert_string_equal(
	    te_labels_get(p->add_labels, "org.opencontainers.image.source"),
	    "https://git.example.com/acme/shop");
	assert_string_equal(p->images.items[0], "backend");
	assert_int_equal(p->line, 7);
	p = ts_config_project(cfg, "infra_2");
	assert_non_null(p);
	assert_int_equal(p->forge, TE_FORGE_GITEA);
	assert_string_equal(p->secret, "from-env");
	assert_string_equal(p->git_ssh_key_file, "/etc/tagexport/edge.key");
	/* Relative paths are the config file's neighbours. */
	assert_non_null(strstr(p->git_known_hosts_file, "/known_hosts"));
	assert_true(p->git_known_hosts_file[0] == '/');
	assert_null(ts_config_project(cfg, "shop")->git_known_hosts_file);
	assert_int_equal(p->tag_templates.count, 1);
	te_project_export_opts(&opts, p);
	assert_int_equal(opts.max_file_size, (uint64_t)512 << 20);
	assert_int_equal(opts.max_context_size, (uint64_t)4 << 30);
	te_project_export_opts(&opts, ts_config_project(cfg, "shop"));
	assert_int_equal(opts.max_file_size, 0); /* the core's default */
	assert_int_equal(opts.max_context_size, 0);
	assert_null(ts_config_project(cfg, "nope"));
	ts_config_unref(cfg);
}

static void defaults(void **state)
{
	static const char min[] = "state_dir: /tmp/x\n";
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(ts_config_parse(&cfg, min, strlen(min), cfgpath, &err),
	                 0);
	assert_string_equal(cfg->host, "127.0.0.1");
	assert_int_equal(cfg->port, 8080);
	assert_int_equal(cfg->workers, 2);
	assert_null(cfg->admin_token);
	assert_int_equal(cfg->nprojects, 0);
	assert_int_equal(cfg->job_retention_days, 90);
	assert_false(cfg->allow_chroot);
	ts_config_unref(cfg);
}

/* Replace the first occurrence of from with to in good, parse, and
 * expect an error mentioning "<file>:<line>:" and what. */
static void expect_error(const char *from, const char *to, int line,
                         const char *what)
{
	char text[4096], want[400];
	const char *at = strstr(good, from);
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	size_t pre;

	assert_non_null(at);
	pre = (size_t)(at - good);
	snprintf(text, sizeof(text), "%.*s%s%s", (int)pre, good, to,
	         at + strlen(from));
	assert_int_equal(
	    ts_config_parse(&cfg, text, strlen(text), cfgpath, &err),
	    TE_EINVALID);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s:%d: ", cfgpath, line);
	if (strncmp(err.msg, want, strlen(want)) != 0 || !strstr(err.msg, what))
		fail_msg("got \"%s\", want \"%s...%s\"", err.msg, want, what);
}

/* The hostile-load keys: defaults, values, bounds, the metrics token. */
static void load_limits(void **state)
{
	static const char min[] = "state_dir: /tmp/x\n";
	static const char set[] = "state_dir: /tmp/x\n"
	                          "max_pending_body_bytes: 1048576\n"
	                          "max_connections_per_ip: 0\n"
	                          "metrics_token_file: admin.token\n";
	static const char *const bad[][2] = {
	    {"max_pending_body_bytes: 1000\n", "max_pending_body_bytes must"},
	    {"max_pending_body_bytes: -1\n", "max_pending_body_bytes must"},
	    {"max_connections_per_ip: 1001\n", "max_connections_per_ip must"},
	    {"max_connections_per_ip: many\n", "max_connections_per_ip must"},
	    {"metrics_token_file: empty.secret\n", "is empty"},
	    {"metrics_token_file: missing.token\n", "cannot read"},
	};
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	char text[256];
	size_t i;

	(void)state;
	assert_int_equal(ts_config_parse(&cfg, min, strlen(min), cfgpath, &err),
	                 0);
	assert_int_equal(cfg->max_pending_body, 64 * 1024 * 1024);
	assert_int_equal(cfg->max_connections_per_ip, 64);
	assert_null(cfg->metrics_token);
	ts_config_unref(cfg);
	assert_int_equal(ts_config_parse(&cfg, set, strlen(set), cfgpath, &err),
	                 0);
	assert_int_equal(cfg->max_pending_body, 1024 * 1024);
	assert_int_equal(cfg->max_connections_per_ip, 0);
	assert_string_equal(cfg->metrics_token, "admin-token");
	assert_int_equal(cfg->metrics_token_len, strlen("admin-token"));
	ts_config_unref(cfg);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "state_dir: /tmp/x\n%s",
		         bad[i][0]);
		te_error_clear(&err);
		assert_int_equal(
		    ts_config_parse(&cfg, text, strlen(text), cfgpath, &err),
		    TE_EINVALID);
		assert_null(cfg);
		if (!strstr(err.msg, ":2: ") || !strstr(err.msg, bad[i][1]))
			fail_msg("%s: got \"%s\"", bad[i][0], err.msg);
	}
}

/* queue: and instance: defaults, values, and each mistake; the DSN is
 * read from its file and never appears in a message. */
static void queue_and_instance(void **state)
{
	static const char min[] = "state_dir: /tmp/x\n";
	static const char pg[] = "state_dir: /tmp/x\n"
	                         "listen: 127.0.0.1:9090\n"
	                         "queue: {driver: postgres, dsn_file: "
	                         "admin.token, lease: 30}\n"
	                         "instance: build-1\n";
	static const char *const bad[][2] = {
	    {"queue: {driver: redis}\n", "queue.driver must be journal or"},
	    {"queue: {driver: postgres}\n", "needs queue.dsn_file"},
	    {"queue: {dsn_file: admin.token}\n", "go with driver: postgres"},
	    {"queue: {driver: postgres, dsn_file: admin.token, lease: 1}\n",
	     "queue.lease must be an integer from 5 to 3600"},
	    {"queue: {driver: postgres, dsn_file: missing.dsn}\n",
	     "cannot read"},
	    {"queue: {driver: postgres, dsn_file: empty.secret}\n", "is empty"},
	    {"queue: {drivers: journal}\n", "unknown key \"drivers\" in queue"},
	    {"queue: postgres\n", "queue must be a mapping"},
	    {"instance: \"a b\"\n", "instance must be 1..128 of"},
	};
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	char text[256];
	size_t i;

	(void)state;
	assert_int_equal(ts_config_parse(&cfg, min, strlen(min), cfgpath, &err),
	                 0);
	assert_int_equal(cfg->queue_driver, TS_QUEUE_JOURNAL);
	assert_null(cfg->queue_dsn);
	assert_string_equal(cfg->instance, "127.0.0.1:8080");
	ts_config_unref(cfg);
	assert_int_equal(ts_config_parse(&cfg, pg, strlen(pg), cfgpath, &err),
	                 0);
	assert_int_equal(cfg->queue_driver, TS_QUEUE_POSTGRES);
	assert_string_equal(cfg->queue_dsn, "admin-token");
	assert_int_equal(cfg->queue_lease, 30);
	assert_string_equal(cfg->instance, "build-1");
	ts_config_unref(cfg);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "state_dir: /tmp/x\n%s",
		         bad[i][0]);
		te_error_clear(&err);
		assert_int_equal(
		    ts_config_parse(&cfg, text, strlen(text), cfgpath, &err),
		    TE_EINVALID);
		assert_null(cfg);
		if (!strstr(err.msg, ":2: ") || !strstr(err.msg, bad[i][1]) ||
		    strstr(err.msg, "admin-token"))
			fail_msg("%s: got \"%s\"", bad[i][0], err.msg);
	}
}

/* poll_interval (per project) and ui_public (top level): defaults, values,
 * bounds. */
static void load_poll_and_pages(void **state)
{
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	char text[sizeof(good) + 64];
	const char *at = strstr(good, "    tags:");

	(void)state;
	setenv("TE_TEST_SECRET", "from-env", 1);
	assert_int_equal(
	    ts_config_parse(&cfg, good, strlen(good), cfgpath, &err), 0);
	assert_false(cfg->ui_public);
	assert_int_equal(cfg->projects[0].poll_interval, 0);
	ts_config_unref(cfg);
	snprintf(text, sizeof(text),
	         "ui_public: true\n%.*s"
	         "    poll_interval: 300\n%s",
	         (int)(at - good), good, at);
	assert_int_equal(
	    ts_config_parse(&cfg, text, strlen(text), cfgpath, &err), 0);
	assert_true(cfg->ui_public);
	assert_int_equal(cfg->projects[0].poll_interval, 300);
	assert_int_equal(cfg->projects[1].poll_interval, 0);
	ts_config_unref(cfg);
	expect_error("tags: [\"v*\"]", "poll_interval: 86401", 12,
	             "poll_interval must be");
	expect_error("tags: [\"v*\"]", "poll_interval: -1", 12,
	             "poll_interval must be");
	expect_error("workers: 3", "ui_public: maybe", 3, "ui_public must be");
}

static void errors_have_lines(void **state)
{
	(void)state;
	setenv("TE_TEST_SECRET", "from-env", 1);
	expect_error("workers: 3", "workerz: 3", 3, "unknown key \"workerz\"");
	expect_error("workers: 3", "workers: lots", 3, "workers must be");
	expect_error("workers: 3", "workers: 65", 3, "workers must be");
	expect_error("listen: 127.0.0.1:9090", "listen: example.com:80", 1,
	             "listen must be");
	expect_error("listen: 127.0.0.1:9090", "listen: 127.0.0.1:99999", 1,
	             "listen must be");
	expect_error("log_format: json", "log_format: xml", 5,
	             "log_format must be");
	expect_error("name: shop", "name: Shop/../x", 7, "project name");
	expect_error("forge: github", "forge: bitbucket", 8,
	             "forge must be github");
	expect_error("secret_file: shop.secret", "secret_file: missing.secret",
	             10, "cannot read");
	expect_error("secret_file: shop.secret", "secret_file: empty.secret",
	             10, "is empty");
	expect_error("secret_env: TE_TEST_SECRET", "secret_env: TE_NOT_SET_X",
	             22, "TE_NOT_SET_X is not set");
	expect_error("      repo: registry.example.com/shop/stages\n", "", 14,
	             "export.repo is required");
	expect_error("insecure_registry: false", "insecure_registry: maybe", 18,
	             "true or false");
	expect_error("      images: [backend]", "      imagez: [backend]", 17,
	             "unknown key \"imagez\" in export");
	expect_error("name: infra_2", "name: shop", 19,
	             "duplicate project name");
	expect_error("    git_url: ssh://git@git.example.com/infra/edge.git\n",
	             "", 19, "needs a git_url");
	expect_error("max_file_size: 512MiB", "max_file_size: 1GB", 29,
	             "export.max_file_size: invalid size \"1GB\"");
	expect_error("max_context_size: 4294967296", "max_context_size: [1]",
	             30, "export.max_context_size: must be a size");
	/* YAML syntax errors carry the line of the construct libyaml was
	 * parsing (the unclosed '['), as werf.yaml's do */
	expect_error("    tags: [\"v*\"]", "    tags: [\"v*\"", 12,
	             "flow sequence");
}

static void retention(void **state)
{
	static const char keep_all[] = "state_dir: /tmp/x\n"
	                               "job_retention_days: 0\n";
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(
	    ts_config_parse(&cfg, keep_all, strlen(keep_all), cfgpath, &err),
	    0);
	assert_int_equal(cfg->job_retention_days, 0);
	ts_config_unref(cfg);
	expect_error("workers: 3", "job_retention_days: 99999", 3,
	             "job_retention_days must be");
}

/* allow_chroot_isolation: a project's own value, else the top-level one;
 * export.build_timeout reaches the export options. */
static void isolation_and_timeout(void **state)
{
	static const char text[] =
	    "state_dir: /tmp/x\n"
	    "projects:\n"
	    "  - name: a\n"
	    "    forge: github\n"
	    "    repository: o/a\n"
	    "    secret_env: TE_TEST_SECRET\n"
	    "    git_url: https://g.example.com/o/a.git\n"
	    "    export: {repo: r.example.com/a, tag: r.example.com/a:x, "
	    "build_timeout: 1h30m, parallel_tasks_limit: -1}\n"
	    "  - name: b\n"
	    "    forge: github\n"
	    "    repository: o/b\n"
	    "    secret_env: TE_TEST_SECRET\n"
	    "    git_url: https://g.example.com/o/b.git\n"
	    "    allow_chroot_isolation: false\n"
	    "    export: {repo: r.example.com/b, tag: r.example.com/b:x}\n"
	    "allow_chroot_isolation: true\n";
	te_export_opts a = TE_EXPORT_OPTS_INIT, b = TE_EXPORT_OPTS_INIT;
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;

	(void)state;
	setenv("TE_TEST_SECRET", "from-env", 1);
	assert_int_equal(
	    ts_config_parse(&cfg, text, strlen(text), cfgpath, &err), 0);
	te_project_export_opts(&a, ts_config_project(cfg, "a"));
	te_project_export_opts(&b, ts_config_project(cfg, "b"));
	assert_int_equal(a.isolation, TE_BUILD_ISOLATION_CHROOT);
	assert_int_equal(a.build_timeout, 5400);
	assert_int_equal(b.isolation, TE_BUILD_ISOLATION_OCI);
	assert_int_equal(b.build_timeout, 0);
	assert_int_equal(a.parallel, -1);
	assert_int_equal(b.parallel, 0); /* werf's default */
	ts_config_unref(cfg);
	expect_error("insecure_registry: false", "build_timeout: 2d", 18,
	             "invalid build timeout \"2d\"");
	expect_error("insecure_registry: false", "parallel_tasks_limit: 0", 18,
	             "invalid parallel tasks limit \"0\"");
}

/* secrets: werf.yaml build secrets by id, from the project's env: map or
 * a file, never from the server's environment. */
static void build_secrets(void **state)
{
	static const char text[] =
	    "state_dir: /tmp/x\n"
	    "projects:\n"
	    "  - name: a\n"
	    "    forge: github\n"
	    "    repository: o/a\n"
	    "    secret_env: TE_TEST_SECRET\n"
	    "    git_url: https://g.example.com/o/a.git\n"
	    "    ssh_key_files: [keys/id_a, /abs/id_b]\n"
	    "    secrets: {TOKEN: {env: TOK}, cred.txt: {file: cred.txt},\n"
	    "      SRV: {env: TE_TEST_SECRET}}\n"
	    "    env: {TOK: \"t-value\"}\n"
	    "    export: {repo: r.example.com/a, tag: r.example.com/a:x}\n";
	te_export_opts a = TE_EXPORT_OPTS_INIT;
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	te_buf v = TE_BUF_INIT(4096);
	char path[4096];
	FILE *f;

	(void)state;
	setenv("TE_TEST_SECRET", "from-env", 1);
	snprintf(path, sizeof(path), "%s", cfgpath);
	*strrchr(path, '/') = '\0';
	strcat(path, "/cred.txt");
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("file-value", f);
	fclose(f);
	assert_int_equal(
	    ts_config_parse(&cfg, text, strlen(text), cfgpath, &err), 0);
	te_project_export_opts(&a, ts_config_project(cfg, "a"));
	assert_non_null(a.secret);
	assert_int_equal(a.nssh_keys, 2);
	assert_string_equal(a.ssh_keys[1], "/abs/id_b");
	assert_non_null(strstr(a.ssh_keys[0], "/keys/id_a"));
	assert_true(a.ssh_keys[0][0] == '/');
	assert_null(a.ssh_agent);
	assert_int_equal(
	    a.secret(&v, "TOKEN", TE_SECRET_ENV, "X", a.secret_payload, &err),
	    0);
	assert_string_equal(v.ptr, "t-value");
	te_buf_clear(&v);
	assert_int_equal(a.secret(&v, "cred.txt", TE_SECRET_SRC, "~/c",
	                          a.secret_payload, &err),
	                 0);
	assert_string_equal(v.ptr, "file-value");
	te_buf_clear(&v);
	/* the server's own environment is never a source */
	assert_int_equal(a.secret(&v, "SRV", TE_SECRET_ENV, "TE_TEST_SECRET",
	                          a.secret_payload, &err),
	                 TE_ENOTFOUND);
	assert_null(strstr(err.msg, "from-env"));
	te_error_clear(&err);
	assert_int_equal(
	    a.secret(&v, "NOPE", TE_SECRET_ENV, "NOPE", a.secret_payload, &err),
	    TE_ENOTFOUND);
	assert_non_null(strstr(err.msg, "no secret \"NOPE\""));
	te_buf_dispose(&v);
	ts_config_unref(cfg);
	unlink(path);
	expect_error("insecure_registry: false",
	             "insecure_registry: false\n"
	             "    secrets: {A: {value: x}}",
	             19, "a secret is {env: NAME} or {file: PATH}");
	expect_error("insecure_registry: false",
	             "insecure_registry: false\n"
	             "    secrets: {\"a/b\": {env: X}}",
	             19, "secret ids must match");
}

/* env:, werf_env:, loose_giterminism: reach the export's werf.yaml
 * rendering; templates see only env:, never the server's environment. */
static void template_env(void **state)
{
	static const char text[] =
	    "state_dir: /tmp/x\n"
	    "projects:\n"
	    "  - name: a\n"
	    "    forge: github\n"
	    "    repository: o/a\n"
	    "    secret_env: TE_TEST_SECRET\n"
	    "    git_url: https://g.example.com/o/a.git\n"
	    "    env: {VERSION: \"1.2\", EMPTY: \"\", NIL: ~}\n"
	    "    werf_env: production\n"
	    "    loose_giterminism: true\n"
	    "    export: {repo: r.example.com/a, tag: r.example.com/a:x}\n"
	    "  - name: b\n"
	    "    forge: github\n"
	    "    repository: o/b\n"
	    "    secret_env: TE_TEST_SECRET\n"
	    "    git_url: https://g.example.com/o/b.git\n"
	    "    export: {repo: r.example.com/b, tag: r.example.com/b:x}\n";
	te_export_opts a = TE_EXPORT_OPTS_INIT, b = TE_EXPORT_OPTS_INIT;
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	const char *v = NULL;

	(void)state;
	setenv("TE_TEST_SECRET", "from-env", 1);
	assert_int_equal(
	    ts_config_parse(&cfg, text, strlen(text), cfgpath, &err), 0);
	te_project_export_opts(&a, ts_config_project(cfg, "a"));
	te_project_export_opts(&b, ts_config_project(cfg, "b"));
	assert_non_null(a.render);
	assert_string_equal(a.render->env, "production");
	assert_true(a.render->loose_giterminism);
	assert_true(
	    a.render->lookup_env(&v, "VERSION", a.render->lookup_payload));
	assert_string_equal(v, "1.2");
	assert_true(a.render->lookup_env(&v, "NIL", a.render->lookup_payload));
	assert_string_equal(v, "");
	assert_false(
	    a.render->lookup_env(&v, "VERSION=1", a.render->lookup_payload));
	/* the server's own environment is never visible */
	assert_false(a.render->lookup_env(&v, "TE_TEST_SECRET",
	                                  a.render->lookup_payload));
	assert_null(b.render->env);
	assert_false(b.render->loose_giterminism);
	assert_false(
	    b.render->lookup_env(&v, "VERSION", b.render->lookup_payload));
	ts_config_unref(cfg);
	expect_error("insecure_registry: false",
	             "insecure_registry: false\n"
	             "    env: [A]",
	             19, "env must be a mapping");
	expect_error("insecure_registry: false",
	             "insecure_registry: false\n"
	             "    env: {1A: x}",
	             19, "env names must match");
	expect_error("insecure_registry: false",
	             "insecure_registry: false\n"
	             "    env: {A: [x]}",
	             19, "env values must be strings");
}

static void secret_not_in_messages(void **state)
{
	static const char text[] = "state_dir: /x\n"
	                           "admin_token_file: shop.secret\n"
	                           "projects: {}\n";
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(
	    ts_config_parse(&cfg, text, strlen(text), cfgpath, &err),
	    TE_EINVALID);
	assert_null(strstr(err.msg, "s3cret"));
	assert_non_null(strstr(err.msg, ":3: projects must be a list"));
}

/* A project of the given forge with a status section (line 8 on). */
static int parse_status(struct ts_config **cfg, te_error *err,
                        const char *forge, const char *status)
{
	char text[1024];

	snprintf(text, sizeof(text),
	         "state_dir: /tmp/x\n"
	         "public_url: https://te.example.com/\n"
	         "projects:\n"
	         "  - name: shop\n"
	         "    forge: %s\n"
	         "    repository: acme/shop\n"
	         "    secret_file: shop.secret\n"
	         "    status:\n"
	         "%s"
	         "    git_url: https://git.example.com/acme/shop.git\n"
	         "    export: {repo: r.example.com/s, tag: r.example.com/x}\n",
	         forge, status);
	te_error_clear(err);
	return ts_config_parse(cfg, text, strlen(text), cfgpath, err);
}

static void status_section(void **state)
{
	static const char *const bad[][3] = {
	    {"github", "      api_url: https://api.github.com\n", "token_file"},
	    {"gitlab", "      token_file: admin.token\n",
	     "status.api_url is required for gitlab and gitea"},
	    {"gitea", "      token_file: admin.token\n",
	     "status.api_url is required"},
	    {"github",
	     "      token_file: admin.token\n      api_url: ftp://x\n",
	     "status.api_url must be an http:// or https:// URL"},
	    {"github",
	     "      token_file: admin.token\n      api_url: https://\n",
	     "status.api_url must be"},
	    {"github", "      token_file: empty.secret\n", "is empty"},
	    {"github", "      token_file: admin.token\n      contxt: x\n",
	     "unknown key \"contxt\" in status"},
	};
	struct ts_config *cfg = NULL;
	const te_project *p;
	te_error err = TE_ERROR_INIT;
	size_t i;

	(void)state;
	/* GitHub: the API address and the context have defaults. */
	assert_int_equal(parse_status(&cfg, &err, "github",
	                              "      token_file: admin.token\n"),
	                 0);
	assert_string_equal(cfg->public_url, "https://te.example.com");
	p = ts_config_project(cfg, "shop");
	assert_true(p->status.enabled);
	assert_string_equal(p->status.token, "admin-token");
	assert_string_equal(p->status.api_url, "https://api.github.com");
	assert_string_equal(p->status.context, "tagexport/export");
	ts_config_unref(cfg);
	assert_int_equal(
	    parse_status(&cfg, &err, "gitlab",
	                 "      token_file: admin.token\n"
	                 "      api_url: https://gl.example.com/api/v4/\n"
	                 "      context: ci/images\n"),
	    0);
	p = ts_config_project(cfg, "shop");
	assert_string_equal(p->status.api_url, "https://gl.example.com/api/v4");
	assert_string_equal(p->status.context, "ci/images");
	ts_config_unref(cfg);
	/* No section: off. */
	assert_int_equal(
	    ts_config_parse(&cfg, good, strlen(good), cfgpath, &err), 0);
	assert_false(ts_config_project(cfg, "shop")->status.enabled);
	assert_null(cfg->public_url);
	ts_config_unref(cfg);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse_status(&cfg, &err, bad[i][0], bad[i][1]),
		                 TE_EINVALID);
		assert_null(cfg);
		/* the status: line, or the line of the offending key */
		if ((!strstr(err.msg, ":8: ") && !strstr(err.msg, ":9: ") &&
		     !strstr(err.msg, ":10: ")) ||
		    !strstr(err.msg, bad[i][2]))
			fail_msg("%zu: got \"%s\"", i, err.msg);
		assert_null(strstr(err.msg, "admin-token"));
	}
	expect_error("log_format: json", "public_url: te.example.com", 5,
	             "public_url must be an http:// or https:// URL");
}

static void project_names(void **state)
{
	(void)state;
	assert_true(te_project_name_valid("shop"));
	assert_true(te_project_name_valid("a-b_c9"));
	assert_false(te_project_name_valid(""));
	assert_false(te_project_name_valid("Shop"));
	assert_false(te_project_name_valid("../x"));
	assert_false(te_project_name_valid("a b"));
	assert_false(te_project_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	                                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static void load_from_file(void **state)
{
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	FILE *f = fopen(cfgpath, "w");

	(void)state;
	assert_non_null(f);
	fputs(good, f);
	fclose(f);
	assert_int_equal(ts_config_load(&cfg, cfgpath, &err), 0);
	assert_string_equal(cfg->path, cfgpath);
	ts_config_ref(cfg);
	ts_config_unref(cfg);
	ts_config_unref(cfg);
	assert_int_equal(ts_config_load(&cfg, "/nonexistent/x.yaml", &err),
	                 TE_EIO);
}

static void expect_parse_error(const char *text, size_t len, const char *what)
{
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;

	assert_int_equal(ts_config_parse(&cfg, text, len, cfgpath, &err),
	                 TE_EINVALID);
	assert_null(cfg);
	if (strncmp(err.msg, cfgpath, strlen(cfgpath)) != 0 ||
	    !strstr(err.msg, what))
		fail_msg("got \"%s\", want \"%s...%s\"", err.msg, cfgpath,
		         what);
}

/* Fuzzer finds (tests/fuzz/regressions/server_config): a repeated
 * "projects:" leaked the first list; 64 K '[' took seconds in libyaml.
 * A repeated key anywhere is an error naming it and its line. */
static void fuzz_regressions(void **state)
{
	te_buf in = TE_BUF_INIT(0);
	char *big;
	size_t i, n;

	(void)state;
	read_regression(&in, "server_config",
	                "leak-duplicate-projects-key.yaml");
	expect_parse_error(in.ptr, in.len, ":3: duplicate key \"projects\"");
	te_buf_dispose(&in);
	expect_error("    forge: github\n",
	             "    forge: github\n    forge: gitlab\n", 9,
	             "duplicate key \"forge\"");
	expect_error("      images: [backend]\n",
	             "      images: [backend]\n      repo: x\n", 18,
	             "duplicate key \"repo\"");
	expect_error("{org.opencontainers.image.source: ", "{a: b, a: ", 16,
	             "duplicate key \"a\"");

	/* hang-64k-open-brackets, regenerated */
	n = 65536;
	big = malloc(TE_PROJECT_FILE_MAX_SIZE + 1);
	assert_non_null(big);
	memset(big, '[', n);
	expect_parse_error(big, n, ":1: nesting deeper than 64 levels");

	/* the size and project count limits */
	memset(big, '#', TE_PROJECT_FILE_MAX_SIZE + 1);
	expect_parse_error(big, TE_PROJECT_FILE_MAX_SIZE + 1,
	                   "longer than 4194304 bytes");
	n = (size_t)snprintf(big, 64, "state_dir: /x\nprojects: [");
	for (i = 0; i <= TE_PROJECT_MAX; i++)
		n += (size_t)snprintf(big + n, 8, "{},");
	n += (size_t)snprintf(big + n, 8, "]\n");
	expect_parse_error(big, n, ":2: more than 1000 projects");
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_full_config),
	    cmocka_unit_test(defaults),
	    cmocka_unit_test(retention),
	    cmocka_unit_test(load_poll_and_pages),
	    cmocka_unit_test(errors_have_lines),
	    cmocka_unit_test(load_limits),
	    cmocka_unit_test(isolation_and_timeout),
	    cmocka_unit_test(template_env),
	    cmocka_unit_test(build_secrets),
	    cmocka_unit_test(secret_not_in_messages),
	    cmocka_unit_test(status_section),
	    cmocka_unit_test(project_names),
	    cmocka_unit_test(queue_and_instance),
	    cmocka_unit_test(load_from_file),
	    cmocka_unit_test(fuzz_regressions),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
