/*
 * test_project.c - the projects of a tagexport-server config file as the
 * standalone hook reads them (no server keys), the caller's key hook, and
 * the tag globs.  The server's own keys are pinned by test_server_config.
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
#include <sys/stat.h>
#include <unistd.h>

#include "tagexport/project.h"

static char dir[] = "/tmp/te-project.XXXXXX";
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
	if (!f)
		return -1;
	fputs("s3cret-value\n", f);
	fclose(f);
	snprintf(cfgpath, sizeof(cfgpath), "%s/server.yaml", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rm_rf(dir) == 0 ? 0 : -1;
}

static const char server_file[] =
    "listen: 127.0.0.1:9090\n"
    "workers: 3\n"
    "queue: {driver: journal}\n"
    "state_dir: state\n"
    "allow_chroot_isolation: true\n"
    "projects:\n"
    "  - name: shop\n"
    "    forge: gitea\n"
    "    repository: acme/shop\n"
    "    secret_file: shop.secret\n"
    "    git_url: https://git.example.com/acme/shop.git\n"
    "    tags: [\"v*\"]\n"
    "    export:\n"
    "      repo: registry.example.com/shop/stages\n"
    "      tag: registry.example.com/shop/%image%:%git_tag%\n";

/* The hook passes no key function: the server's keys are not its
 * business, the projects are read and checked in full. */
static void hook_skips_server_keys(void **state)
{
	te_export_opts opts = TE_EXPORT_OPTS_INIT;
	te_project_file *f = NULL;
	const te_project *pr;
	te_error err = TE_ERROR_INIT;
	char want[400];

	(void)state;
	assert_int_equal(te_project_file_parse(&f, server_file,
	                                       strlen(server_file), cfgpath,
	                                       NULL, NULL, &err),
	                 0);
	snprintf(want, sizeof(want), "%s/state", dir);
	assert_string_equal(f->state_dir, want);
	pr = te_project_file_find(f, "shop");
	assert_non_null(pr);
	assert_null(te_project_file_find(f, "nope"));
	assert_int_equal(pr->forge, TE_FORGE_GITEA);
	assert_string_equal(te_forge_name(pr->forge), "gitea");
	assert_string_equal(pr->secret, "s3cret-value");
	assert_int_equal(pr->allow_chroot, 1);
	te_project_export_opts(&opts, pr);
	assert_string_equal(opts.repo, "registry.example.com/shop/stages");
	assert_int_equal(opts.ntags, 1);
	assert_int_equal(opts.isolation, TE_BUILD_ISOLATION_CHROOT);
	te_project_file_free(f);
}

struct seen {
	int keys, finished;
};

/* Owns "listen" and "workers"; everything else is unknown. */
static int caller_key(void *payload, const te_project_yaml *y, const char *key,
                      const yaml_node_t *value, te_error *err)
{
	struct seen *s = payload;

	(void)y;
	(void)value;
	(void)err;
	if (!key) {
		s->finished++;
		return 0;
	}
	if (strcmp(key, "listen") && strcmp(key, "workers"))
		return TE_ENOTFOUND;
	s->keys++;
	return 0;
}

static void caller_keys_and_unknown_keys(void **state)
{
	static const char typo[] = "state_dir: /s\nlisten: x\nworkerz: 2\n";
	te_project_file *f = NULL;
	te_error err = TE_ERROR_INIT;
	struct seen s = {0, 0};
	char want[400];

	(void)state;
	assert_int_equal(te_project_file_parse(&f, typo, strlen(typo), cfgpath,
	                                       caller_key, &s, &err),
	                 TE_EINVALID);
	assert_null(f);
	snprintf(want, sizeof(want), "%s:3: unknown key \"workerz\"", cfgpath);
	assert_string_equal(err.msg, want);
	assert_int_equal(s.keys, 1);
	assert_int_equal(s.finished, 0);

	memset(&s, 0, sizeof(s));
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(te_project_file_parse(&f, server_file,
	                                       strlen(server_file), cfgpath,
	                                       caller_key, &s, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, ":3: unknown key \"queue\""));

	memset(&s, 0, sizeof(s));
	assert_int_equal(
	    te_project_file_parse(&f, typo, 24, cfgpath, caller_key, &s, &err),
	    0);
	assert_int_equal(s.keys, 1);
	assert_int_equal(s.finished, 1);
	assert_int_equal(f->nprojects, 0);
	te_project_file_free(f);
}

static void state_dir_required(void **state)
{
	static const char none[] = "projects: []\n";
	te_project_file *f = NULL;
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(te_project_file_parse(&f, none, strlen(none), "x.yaml",
	                                       NULL, NULL, &err),
	                 TE_EINVALID);
	assert_string_equal(err.msg, "x.yaml:1: state_dir is required");
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(
	    te_project_file_load(&f, "/nonexistent/x.yaml", NULL, NULL, &err),
	    TE_EIO);
	assert_null(f);
}

static void tag_globs(void **state)
{
	te_strvec globs = TE_STRVEC_INIT;

	(void)state;
	assert_true(te_project_tag_selected(&globs, "anything"));
	assert_int_equal(te_strvec_push(&globs, "v*", NULL), 0);
	assert_int_equal(te_strvec_push(&globs, "release/*", NULL), 0);
	assert_true(te_project_tag_selected(&globs, "v1.0.0"));
	assert_true(te_project_tag_selected(&globs, "release/1/2"));
	assert_false(te_project_tag_selected(&globs, "1.0.0"));
	assert_false(te_project_tag_selected(&globs, "nightly"));
	te_strvec_dispose(&globs);
}

/* The project's file with its lines after "export:" replaced by extra. */
static int parse_with(te_project_file **f, const char *extra, te_error *err)
{
	char text[2048];

	snprintf(text, sizeof(text), "%s%s", server_file, extra);
	return te_project_file_parse(f, text, strlen(text), cfgpath, NULL, NULL,
	                             err);
}

/* A Stapel mount (stapel.h) checked the way an export of the project
 * checks it, with giterminism allowing everything. */
static int mount_ok(const te_export_opts *opts, te_stapel_mount_from from,
                    char *path, te_error *err)
{
	static char to[] = "/cache";
	te_stapel_allowed all;
	te_stapel_mount m = {from, path, to, 7};
	int rc;

	assert_int_equal(te_stapel_allowed_parse(&all, NULL, 0, err), 0);
	all.build_dir = true;
	assert_int_equal(te_strvec_push(&all.from_paths, "*", err), 0);
	rc = te_stapel_mount_check(&m, &all, opts->stapel_policy, "werf.yaml",
	                           "app", err);
	te_stapel_allowed_dispose(&all);
	return rc;
}

/* stapel_git_urls: the remote git mappings a pushed commit may make the
 * machine fetch; absent, none (werf.yaml could name any host the server
 * reaches).  Without a policy (the CLI) every url passes. */
static void stapel_git_urls_deny_by_default(void **state)
{
	te_export_opts opts = TE_EXPORT_OPTS_INIT;
	te_project_file *f = NULL;
	te_error err = TE_ERROR_INIT;
	static char ours[] = "https://git.example.com/acme/lib.git",
	            other[] = "https://git.example.com/other/lib.git";
	te_stapel_git g;

	(void)state;
	memset(&g, 0, sizeof(g));
	g.url = ours;
	g.line = 9;
	assert_int_equal(parse_with(&f, "", &err), 0);
	te_project_export_opts(&opts, te_project_file_find(f, "shop"));
	assert_int_equal(opts.stapel_policy->ngit_urls, 0);
	assert_int_equal(te_stapel_git_url_check(&g, opts.stapel_policy,
	                                         "werf.yaml", "app", &err),
	                 TE_EINVALID);
	assert_string_equal(err.msg,
	                    "werf.yaml:9: image \"app\": git url "
	                    "https://git.example.com/acme/lib.git is not "
	                    "allowed by the operator's project settings "
	                    "(stapel_git_urls)");
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(
	    te_stapel_git_url_check(&g, NULL, "werf.yaml", "app", &err), 0);
	te_project_file_free(f);

	assert_int_equal(
	    parse_with(
	        &f,
	        "    stapel_git_urls: [\"https://git.example.com/acme/*\"]\n",
	        &err),
	    0);
	te_project_export_opts(&opts, te_project_file_find(f, "shop"));
	assert_int_equal(opts.stapel_policy->ngit_urls, 1);
	assert_int_equal(te_stapel_git_url_check(&g, opts.stapel_policy,
	                                         "werf.yaml", "app", &err),
	                 0);
	g.url = other;
	assert_int_equal(te_stapel_git_url_check(&g, opts.stapel_policy,
	                                         "werf.yaml", "app", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	/* a mapping of the project itself (no url) is never the policy's */
	g.url = NULL;
	assert_int_equal(te_stapel_git_url_check(&g, opts.stapel_policy,
	                                         "werf.yaml", "app", &err),
	                 0);
	te_project_file_free(f);

	assert_int_equal(parse_with(&f, "    stapel_git_urls: {a: b}\n", &err),
	                 TE_EINVALID);
	assert_non_null(
	    strstr(err.msg, "stapel_git_urls must be a list of strings"));
	te_error_clear(&err);
}

/* stapel_mounts: the operator's word on build_dir and fromPath, on top of
 * a commit's werf-giterminism.yaml; absent, both are refused, naming the
 * setting. */
static void stapel_mounts_deny_by_default(void **state)
{
	te_export_opts opts = TE_EXPORT_OPTS_INIT;
	te_project_file *f = NULL;
	te_error err = TE_ERROR_INIT;
	char host[400], allow[900], want[600];

	(void)state;
	assert_int_equal(parse_with(&f, "", &err), 0);
	te_project_export_opts(&opts, te_project_file_find(f, "shop"));
	assert_non_null(opts.stapel_policy);
	/* build_dir is keyed by the operator's name, not werf.yaml's */
	assert_string_equal(opts.stapel_policy->project, "shop");
	assert_false(opts.stapel_policy->build_dir);
	assert_int_equal(opts.stapel_policy->nfrom_paths, 0);
	assert_int_equal(mount_ok(&opts, TE_STAPEL_MOUNT_BUILD_DIR, NULL, &err),
	                 TE_EINVALID);
	assert_string_equal(err.msg,
	                    "werf.yaml:7: image \"app\": mount from: build_dir "
	                    "is not allowed by the operator's project "
	                    "settings (stapel_mounts.build_dir)");
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(mount_ok(&opts, TE_STAPEL_MOUNT_PATH, dir, &err),
	                 TE_EINVALID);
	snprintf(want, sizeof(want),
	         "werf.yaml:7: image \"app\": mount fromPath \"%s\" is not "
	         "allowed by the operator's project settings "
	         "(stapel_mounts.from_paths)",
	         dir);
	assert_string_equal(err.msg, want);
	/* tmp_dir is never the operator's business */
	assert_int_equal(mount_ok(&opts, TE_STAPEL_MOUNT_TMP_DIR, NULL, &err),
	                 0);
	te_project_file_free(f);

	/* allowed: build_dir, and a directory by its real path (a symlink
	 * to it is followed; one out of it is refused) */
	snprintf(host, sizeof(host), "%s/cache", dir);
	assert_int_equal(mkdir(host, 0755), 0);
	snprintf(allow, sizeof(allow),
	         "    stapel_mounts:\n"
	         "      build_dir: true\n"
	         "      from_paths: [\"%s\"]\n",
	         host);
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(parse_with(&f, allow, &err), 0);
	te_project_export_opts(&opts, te_project_file_find(f, "shop"));
	assert_true(opts.stapel_policy->build_dir);
	assert_int_equal(mount_ok(&opts, TE_STAPEL_MOUNT_BUILD_DIR, NULL, &err),
	                 0);
	assert_int_equal(mount_ok(&opts, TE_STAPEL_MOUNT_PATH, host, &err), 0);
	snprintf(want, sizeof(want), "%s/link", dir);
	assert_int_equal(symlink("/etc", want), 0);
	assert_int_equal(mount_ok(&opts, TE_STAPEL_MOUNT_PATH, want, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "stapel_mounts.from_paths"));
	err = (te_error)TE_ERROR_INIT;
	snprintf(want, sizeof(want), "%s/cache/../link", dir);
	assert_int_equal(mount_ok(&opts, TE_STAPEL_MOUNT_PATH, want, &err),
	                 TE_EINVALID);
	err = (te_error)TE_ERROR_INIT;
	snprintf(want, sizeof(want), "%s/missing", dir);
	assert_int_equal(mount_ok(&opts, TE_STAPEL_MOUNT_PATH, want, &err),
	                 TE_ENOTFOUND);
	te_project_file_free(f);

	/* bad settings name their line and key */
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(
	    parse_with(&f, "    stapel_mounts: {from_paths: [rel/*]}\n", &err),
	    TE_EINVALID);
	assert_non_null(strstr(err.msg, ":16: stapel_mounts.from_paths must be "
	                                "absolute path globs"));
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(
	    parse_with(&f, "    stapel_mounts: {build_dirs: true}\n", &err),
	    TE_EINVALID);
	assert_non_null(
	    strstr(err.msg, "unknown key \"build_dirs\" in stapel_mounts"));
	err = (te_error)TE_ERROR_INIT;
	assert_int_equal(
	    parse_with(&f, "    stapel_mounts: {build_dir: maybe}\n", &err),
	    TE_EINVALID);
	assert_non_null(strstr(err.msg, "stapel_mounts.build_dir"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(hook_skips_server_keys),
	    cmocka_unit_test(caller_keys_and_unknown_keys),
	    cmocka_unit_test(state_dir_required),
	    cmocka_unit_test(tag_globs),
	    cmocka_unit_test(stapel_mounts_deny_by_default),
	    cmocka_unit_test(stapel_git_urls_deny_by_default),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
