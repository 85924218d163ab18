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
    "      tag: r.example.com/edge/%image%:%semver_major%\n";

static void parses_full_config(void **state)
{
	struct ts_config *cfg = NULL;
	const struct ts_project *p;
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
	assert_int_equal(p->forge, TS_FORGE_GITHUB);
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
	assert_int_equal(p->forge, TS_FORGE_GITEA);
	assert_string_equal(p->secret, "from-env");
	assert_string_equal(p->git_ssh_key_file, "/etc/tagexport/edge.key");
	/* Relative paths are the config file's neighbours. */
	assert_non_null(strstr(p->git_known_hosts_file, "/known_hosts"));
	assert_true(p->git_known_hosts_file[0] == '/');
	assert_null(ts_config_project(cfg, "shop")->git_known_hosts_file);
	assert_int_equal(p->tag_templates.count, 1);
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
	/* YAML syntax errors carry the parser's line */
	expect_error("    tags: [\"v*\"]", "    tags: [\"v*\"", 13, "");
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

static void project_names(void **state)
{
	(void)state;
	assert_true(ts_project_name_valid("shop"));
	assert_true(ts_project_name_valid("a-b_c9"));
	assert_false(ts_project_name_valid(""));
	assert_false(ts_project_name_valid("Shop"));
	assert_false(ts_project_name_valid("../x"));
	assert_false(ts_project_name_valid("a b"));
	assert_false(ts_project_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_full_config),
	    cmocka_unit_test(defaults),
	    cmocka_unit_test(retention),
	    cmocka_unit_test(load_poll_and_pages),
	    cmocka_unit_test(errors_have_lines),
	    cmocka_unit_test(load_limits),
	    cmocka_unit_test(secret_not_in_messages),
	    cmocka_unit_test(project_names),
	    cmocka_unit_test(load_from_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
