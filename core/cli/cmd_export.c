/*
 * cmd_export.c - `tagexport export`: werf export's flags and environment
 * variables mapped onto te_export_opts.  Flags win over environment.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "tagexport/buf.h"
#include "tagexport/export.h"
#include "tagexport/fs.h"
#include "tagexport/gitsrc.h"
#include "tagexport/labels.h"
#include "tagexport/registry.h"

extern char **environ;

enum {
	OPT_REPO = 256,
	OPT_TAG,
	OPT_ADD_LABEL,
	OPT_ADD_LABEL_SEPARATOR,
	OPT_DIR,
	OPT_COMMIT,
	OPT_GIT_TAG,
	OPT_CONFIG,
	OPT_INSECURE_REGISTRY,
	OPT_SKIP_TLS_VERIFY,
	OPT_DOCKER_CONFIG,
	OPT_REPORT_PATH,
	OPT_SSH_KEY,
	OPT_PARALLEL_TASKS_LIMIT,
	OPT_STATE_DIR,
	OPT_BUILDAH,
	OPT_MAX_FILE_SIZE,
	OPT_MAX_CONTEXT_SIZE,
	OPT_ISOLATION,
	OPT_BUILD_TIMEOUT,
	OPT_VERBOSE,
	OPT_HELP
};

static const struct option long_options[] = {
    {"repo", required_argument, NULL, OPT_REPO},
    {"tag", required_argument, NULL, OPT_TAG},
    {"add-label", required_argument, NULL, OPT_ADD_LABEL},
    {"add-label-separator", required_argument, NULL, OPT_ADD_LABEL_SEPARATOR},
    {"dir", required_argument, NULL, OPT_DIR},
    {"commit", required_argument, NULL, OPT_COMMIT},
    {"git-tag", required_argument, NULL, OPT_GIT_TAG},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"insecure-registry", optional_argument, NULL, OPT_INSECURE_REGISTRY},
    {"skip-tls-verify-registry", optional_argument, NULL, OPT_SKIP_TLS_VERIFY},
    {"docker-config", required_argument, NULL, OPT_DOCKER_CONFIG},
    {"report-path", required_argument, NULL, OPT_REPORT_PATH},
    {"ssh-key", required_argument, NULL, OPT_SSH_KEY},
    {"parallel-tasks-limit", required_argument, NULL, OPT_PARALLEL_TASKS_LIMIT},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"buildah", required_argument, NULL, OPT_BUILDAH},
    {"max-file-size", required_argument, NULL, OPT_MAX_FILE_SIZE},
    {"max-context-size", required_argument, NULL, OPT_MAX_CONTEXT_SIZE},
    {"isolation", required_argument, NULL, OPT_ISOLATION},
    {"build-timeout", required_argument, NULL, OPT_BUILD_TIMEOUT},
    CLI_RENDER_OPTIONS,
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

static void export_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: tagexport export [IMAGE_NAME...] --repo REPO --tag "
	    "TEMPLATE\n"
	    "                        [--tag TEMPLATE...] [options]\n"
	    "\n"
	    "Build the images of werf.yaml at a git commit (if the stages repo "
	    "lacks\n"
	    "them) and publish them under every --tag, with werf's labels "
	    "removed.\n"
	    "IMAGE_NAME arguments are globs; !PATTERN excludes.\n"
	    "\n"
	    "  --repo REPO                   stages repository ($WERF_REPO)\n"
	    "  --tag TEMPLATE                target reference; %%image%%, "
	    "%%image_slug%%,\n"
	    "                                %%image_safe_slug%%, "
	    "%%image_content_based_tag%%,\n"
	    "                                %%git_tag%%, %%git_commit%% are "
	    "expanded\n"
	    "  --add-label NAME=VALUE        extra label "
	    "($WERF_EXPORT_ADD_LABEL_*)\n"
	    "  --add-label-separator SEP     separator inside --add-label "
	    "values\n"
	    "                                "
	    "($WERF_EXPORT_ADD_LABEL_SEPARATOR, default \\n)\n"
	    "  --dir DIR                     project directory in a git "
	    "repository\n"
	    "                                ($WERF_DIR, default .)\n"
	    "  --commit REV                  revision to export (default "
	    "HEAD)\n"
	    "  --git-tag NAME                value of %%git_tag%% (default: "
	    "--commit if it\n"
	    "                                names a tag)\n"
	    "  --config PATH                 werf.yaml path in the commit "
	    "($WERF_CONFIG)\n"
	    "  --insecure-registry           allow plain HTTP "
	    "($WERF_INSECURE_REGISTRY)\n"
	    "  --skip-tls-verify-registry    do not verify TLS certificates\n"
	    "                                ($WERF_SKIP_TLS_VERIFY_REGISTRY)\n"
	    "  --docker-config DIR           dir with config.json "
	    "($WERF_DOCKER_CONFIG,\n"
	    "                                $DOCKER_CONFIG, ~/.docker)\n"
	    "  --report-path FILE            write a JSON report\n"
	    "  --ssh-key FILE                private key for werf.yaml's ssh:\n"
	    "                                (repeatable; default: the agent "
	    "of\n"
	    "                                $SSH_AUTH_SOCK)\n"
	    "  --parallel-tasks-limit N      images built at once (default 5, "
	    "-1: no limit)\n"
	    "                                and blobs copied at once (default "
	    "4, max 32)\n"
	    "                                ($WERF_PARALLEL_TASKS_LIMIT)\n"
	    "  --state-dir DIR               build storage "
	    "($TAGEXPORT_STATE_DIR,\n"
	    "                                default ~/.cache/tagexport)\n"
	    "  --max-file-size SIZE          largest file of a build context "
	    "(default 2GiB)\n"
	    "  --max-context-size SIZE       all files of a build context "
	    "(default 8GiB);\n"
	    "                                SIZE: bytes, or with B, KiB, MiB, "
	    "GiB, TiB\n"
	    "  --isolation oci|chroot        how RUN is isolated (default oci: "
	    "runc with\n"
	    "                                its own namespaces; chroot is NOT "
	    "isolated\n"
	    "                                from this machine)\n"
	    "  --build-timeout DURATION      limit of each image build, e.g. "
	    "30s, 10m,\n"
	    "                                1h30m (default "
	    "1h)\n" CLI_RENDER_USAGE
	    "  --verbose                     show build output\n"
	    "\n"
	    "stdout: one line per exported reference, REF@sha256:...\n"
	    "exit: 0 success, 1 export failed, 2 usage or configuration "
	    "error\n");
}

struct export_args {
	te_strvec tags;
	te_strvec label_flags;
	te_strvec patterns;
	te_strvec ssh_keys;
	const char *repo;
	const char *separator;
	const char *dir;
	const char *commit;
	const char *git_tag;
	const char *config;
	const char *docker_config;
	const char *report_path;
	const char *state_dir;
	const char *buildah;
	te_build_isolation isolation;
	unsigned build_timeout;
	bool insecure;
	bool skip_tls_verify;
	int parallel;
	int verbose;
	uint64_t max_file_size;
	uint64_t max_context_size;
	te_werfcfg_opts render;
};

static bool parse_int(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < -1 || v > 1024)
		return false;
	*out = (int)v;
	return true;
}

static int parse_args(struct export_args *a, int argc, char **argv)
{
	te_error err = TE_ERROR_INIT;
	const char *env;
	int opt;

	a->repo = getenv("WERF_REPO");
	a->dir = getenv("WERF_DIR");
	a->config = getenv("WERF_CONFIG");
	a->insecure = cli_env_true("WERF_INSECURE_REGISTRY");
	a->skip_tls_verify = cli_env_true("WERF_SKIP_TLS_VERIFY_REGISTRY");
	env = getenv("WERF_PARALLEL_TASKS_LIMIT");
	if (env && *env && !parse_int(env, &a->parallel))
		return cli_usage_error(
		    "invalid WERF_PARALLEL_TASKS_LIMIT \"%s\"", env);

	cli_render_opts_init(&a->render);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		int r = cli_render_opt(&a->render, opt, optarg);

		if (r != 0) {
			if (r != 1)
				return r;
			continue;
		}
		switch (opt) {
		case OPT_REPO:
			a->repo = optarg;
			break;
		case OPT_TAG:
			if (te_strvec_push(&a->tags, optarg, &err) < 0)
				return cli_fail(&err);
			break;
		case OPT_ADD_LABEL:
			if (te_strvec_push(&a->label_flags, optarg, &err) < 0)
				return cli_fail(&err);
			break;
		case OPT_ADD_LABEL_SEPARATOR:
			a->separator = optarg;
			break;
		case OPT_DIR:
			a->dir = optarg;
			break;
		case OPT_COMMIT:
			a->commit = optarg;
			break;
		case OPT_GIT_TAG:
			a->git_tag = optarg;
			break;
		case OPT_CONFIG:
			a->config = optarg;
			break;
		case OPT_INSECURE_REGISTRY:
			if (!cli_flag_bool(optarg, &a->insecure))
				return cli_usage_error(
				    "invalid --insecure-registry value");
			break;
		case OPT_SKIP_TLS_VERIFY:
			if (!cli_flag_bool(optarg, &a->skip_tls_verify))
				return cli_usage_error(
				    "invalid --skip-tls-verify-registry "
				    "value");
			break;
		case OPT_DOCKER_CONFIG:
			a->docker_config = optarg;
			break;
		case OPT_REPORT_PATH:
			a->report_path = optarg;
			break;
		case OPT_SSH_KEY:
			if (te_strvec_push(&a->ssh_keys, optarg, &err) < 0)
				return cli_usage_error("%s", err.msg);
			break;
		case OPT_PARALLEL_TASKS_LIMIT:
			if (!parse_int(optarg, &a->parallel))
				return cli_usage_error(
				    "invalid --parallel-tasks-limit \"%s\" "
				    "(an integer from -1 to 1024)",
				    optarg);
			break;
		case OPT_STATE_DIR:
			a->state_dir = optarg;
			break;
		case OPT_BUILDAH:
			a->buildah = optarg;
			break;
		case OPT_MAX_FILE_SIZE:
		case OPT_MAX_CONTEXT_SIZE:
			if (te_gitsrc_size_parse(opt == OPT_MAX_FILE_SIZE
			                             ? &a->max_file_size
			                             : &a->max_context_size,
			                         optarg, &err) < 0)
				return cli_usage_error("--%s: %s",
				                       opt == OPT_MAX_FILE_SIZE
				                           ? "max-file-size"
				                           : "max-context-size",
				                       err.msg);
			break;
		case OPT_ISOLATION:
			if (strcmp(optarg, "oci") && strcmp(optarg, "chroot"))
				return cli_usage_error("invalid --isolation "
				                       "\"%s\" (oci or chroot)",
				                       optarg);
			a->isolation = strcmp(optarg, "oci")
			                   ? TE_BUILD_ISOLATION_CHROOT
			                   : TE_BUILD_ISOLATION_OCI;
			break;
		case OPT_BUILD_TIMEOUT:
			if (te_build_timeout_parse(&a->build_timeout, optarg,
			                           &err) < 0)
				return cli_fail(&err);
			break;
		case OPT_VERBOSE:
			a->verbose = 1;
			break;
		case 'h':
		case OPT_HELP:
			export_usage(stdout);
			return -1;
		default:
			return cli_usage_error("unknown or incomplete option");
		}
	}
	/* GNU getopt permutes argv: positionals may stand anywhere, as
	 * with werf's flags. */
	for (; optind < argc; optind++)
		if (te_strvec_push(&a->patterns, argv[optind], &err) < 0)
			return cli_fail(&err);
	return 0;
}

/* Where the build storage lives unless --state-dir says otherwise. */
static int default_state_dir(te_buf *out, te_error *err)
{
	const char *env = getenv("TAGEXPORT_STATE_DIR");
	const char *home = getenv("HOME");
	const char *xdg = getenv("XDG_CACHE_HOME");

	if (env && *env)
		return te_buf_puts(out, env, err);
	if (xdg && *xdg)
		return te_buf_printf(out, err, "%s/tagexport", xdg);
	if (home && *home)
		return te_buf_printf(out, err, "%s/.cache/tagexport", home);
	return te_error_set(err, TE_EINVALID,
	                    "no state directory: set --state-dir or HOME");
}

/* --docker-config, $WERF_DOCKER_CONFIG, $DOCKER_CONFIG, ~/.docker. */
static int docker_config_dir(te_buf *out, const char *flag, te_error *err)
{
	const char *v = flag;
	const char *home = getenv("HOME");

	if (!v || !*v)
		v = getenv("WERF_DOCKER_CONFIG");
	if (!v || !*v)
		v = getenv("DOCKER_CONFIG");
	if (v && *v)
		return te_buf_puts(out, v, err);
	if (home && *home)
		return te_buf_printf(out, err, "%s/.docker", home);
	return 0;
}

/*
 * Registry options from the environment, as podman and skopeo read them:
 * REGISTRY_AUTH_FILE, else ${XDG_RUNTIME_DIR}/containers/auth.json (both
 * after config.json); TAGEXPORT_REGISTRY_CERTS_DIRS, colon-separated
 * certs.d roots replacing /etc/containers/certs.d and /etc/docker/certs.d;
 * TAGEXPORT_REGISTRY_RETRY_TIMEOUT, the retry budget in seconds.
 */
static int registry_env(te_registry_opts *o, te_strvec *files, te_strvec *certs,
                        te_error *err)
{
	const char *v = getenv("REGISTRY_AUTH_FILE");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char *end, *list = NULL, *p, *save = NULL;
	long secs;
	int rc = 0;

	if (v && *v)
		rc = te_strvec_push(files, v, err);
	else if (xdg && *xdg)
		rc =
		    te_strvec_pushf(files, err, "%s/containers/auth.json", xdg);
	v = getenv("TAGEXPORT_REGISTRY_CERTS_DIRS");
	if (rc == 0 && v && *v) {
		list = te_strdup(v, err);
		if (!list)
			return TE_ENOMEM;
		for (p = strtok_r(list, ":", &save); rc == 0 && p;
		     p = strtok_r(NULL, ":", &save))
			rc = te_strvec_push(certs, p, err);
		free(list);
		o->certs_dirs = (const char *const *)certs->items;
		o->ncerts_dirs = certs->count;
	}
	v = getenv("TAGEXPORT_REGISTRY_RETRY_TIMEOUT");
	if (rc == 0 && v && *v) {
		errno = 0;
		secs = strtol(v, &end, 10);
		if (errno || *end || secs < 1 || secs > 86400)
			return te_error_set(err, TE_EINVALID,
			                    "invalid TAGEXPORT_REGISTRY_RETRY_"
			                    "TIMEOUT \"%s\"",
			                    v);
		o->retry_total_ms = secs * 1000;
	}
	o->auth_files = (const char *const *)files->items;
	o->nauth_files = files->count;
	return rc;
}

/* Write the report next to its final name, then rename: never a
 * half-written report. */
static int write_report(const char *path, const te_export_result *res,
                        te_error *err)
{
	te_buf tmp = TE_BUF_INIT(PATH_MAX);
	char *json = NULL;
	FILE *f = NULL;
	int rc;

	rc = te_export_report_json(&json, res, err);
	if (rc == 0)
		rc = te_buf_printf(&tmp, err, "%s.tmp.%ld", path,
		                   (long)getpid());
	if (rc < 0)
		goto done;
	f = fopen(tmp.ptr, "w");
	if (!f || fputs(json, f) == EOF || fputc('\n', f) == EOF ||
	    fflush(f) == EOF || fsync(fileno(f)) < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "cannot write report %s", path);
		goto done;
	}
	if (fclose(f) != 0 || rename(tmp.ptr, path) < 0) {
		f = NULL;
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "cannot write report %s", path);
		goto done;
	}
	f = NULL;
done:
	if (f)
		fclose(f);
	if (rc < 0 && tmp.len)
		unlink(tmp.ptr);
	te_buf_dispose(&tmp);
	free(json);
	return rc;
}

/* werf's build secrets on the command line: env names this process's
 * environment, src a file of this machine ("~/" is $HOME), as werf does
 * (https://werf.io/docs/v2/usage/build/images.html#using-build-secrets). */
static int cli_secret(te_buf *out, const char *id, te_secret_kind kind,
                      const char *ref, void *payload, te_error *err)
{
	const char *v, *home;
	te_buf path = TE_BUF_INIT(PATH_MAX);
	bool too_big = false;
	int fd, rc = 0;

	(void)id;
	(void)payload;
	if (kind == TE_SECRET_ENV) {
		v = getenv(ref);
		if (!v)
			return te_error_set(
			    err, TE_ENOTFOUND,
			    "environment variable %s is not set", ref);
		return te_buf_puts(out, v, err);
	}
	home = getenv("HOME");
	if (strncmp(ref, "~/", 2) == 0 && home)
		rc = te_buf_printf(&path, err, "%s/%s", home, ref + 2);
	else
		rc = te_buf_puts(&path, ref, err);
	if (rc < 0)
		goto done;
	fd = open(path.ptr, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = te_error_set_errno(err,
		                        errno == ENOENT ? TE_ENOTFOUND : TE_EIO,
		                        errno, "reading '%s'", path.ptr);
		goto done;
	}
	if (te_fs_read_all(out, fd, &too_big) < 0 || too_big)
		rc = te_error_set(err, TE_EINVALID,
		                  "'%s' is unreadable or over %zu bytes",
		                  path.ptr, out->max);
	close(fd);
done:
	te_buf_dispose(&path);
	return rc;
}

static void print_refs(const te_export_result *res)
{
	size_t i, j;

	for (i = 0; i < res->nimages; i++)
		for (j = 0; j < res->images[i].nrefs; j++)
			printf("%s@%s\n", res->images[i].refs[j].reference,
			       res->images[i].refs[j].digest);
	fflush(stdout);
}

int cmd_export(int argc, char **argv)
{
	struct export_args a = {0};
	te_export_opts opts = TE_EXPORT_OPTS_INIT;
	te_export_result *res = NULL;
	te_labels *labels = NULL;
	te_buf state = TE_BUF_INIT(PATH_MAX);
	te_buf docker_config = TE_BUF_INIT(PATH_MAX);
	te_registry_opts ropts = {0};
	te_strvec auth_files = TE_STRVEC_INIT, certs_dirs = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;
	int rc;

	rc = parse_args(&a, argc, argv);
	if (rc != 0) {
		rc = rc < 0 ? CLI_EXIT_OK : rc;
		goto done;
	}
	/* Everything the user typed is checked before any work starts. */
	if (a.tags.count == 0) {
		rc = cli_usage_error("required at least one tag template: use "
		                     "the --tag option to specify templates");
		goto done;
	}
	if (te_labels_parse_werf(&labels, (const char *const *)environ,
	                         (const char *const *)a.label_flags.items,
	                         a.label_flags.count, a.separator, &err) < 0 ||
	    (a.state_dir ? te_buf_puts(&state, a.state_dir, &err)
	                 : default_state_dir(&state, &err)) < 0 ||
	    te_fs_mkdirs(state.ptr, &err) < 0 ||
	    docker_config_dir(&docker_config, a.docker_config, &err) < 0 ||
	    registry_env(&ropts, &auth_files, &certs_dirs, &err) < 0) {
		rc = cli_fail(&err);
		goto done;
	}

	opts.dir = a.dir;
	opts.commit = a.commit;
	opts.git_tag = a.git_tag;
	opts.config_path = a.config;
	opts.repo = a.repo;
	opts.tags = (const char *const *)a.tags.items;
	opts.ntags = a.tags.count;
	opts.patterns = (const char *const *)a.patterns.items;
	opts.npatterns = a.patterns.count;
	opts.add_labels = labels;
	opts.insecure_registry = a.insecure;
	opts.skip_tls_verify = a.skip_tls_verify;
	opts.docker_config = docker_config.len ? docker_config.ptr : NULL;
	opts.registry = &ropts;
	opts.state_dir = state.ptr;
	opts.buildah = a.buildah;
	opts.parallel = a.parallel;
	opts.max_file_size = a.max_file_size;
	opts.max_context_size = a.max_context_size;
	opts.isolation = a.isolation;
	opts.build_timeout = a.build_timeout;
	opts.render = &a.render;
	opts.secret = cli_secret;
	opts.ssh_keys = (const char *const *)a.ssh_keys.items;
	opts.nssh_keys = a.ssh_keys.count;
	opts.ssh_agent = getenv("SSH_AUTH_SOCK");
	if (opts.ssh_agent && !*opts.ssh_agent)
		opts.ssh_agent = NULL;
	opts.log.fn = cli_log_stderr;
	opts.log.payload = &a.verbose;

	if (te_export_run(&res, &opts, &err) < 0) {
		rc = cli_fail(&err);
		goto done;
	}
	print_refs(res);
	if (a.report_path && write_report(a.report_path, res, &err) < 0) {
		rc = cli_fail(&err);
		goto done;
	}
	rc = CLI_EXIT_OK;
done:
	te_export_result_free(res);
	te_labels_free(labels);
	te_buf_dispose(&state);
	te_buf_dispose(&docker_config);
	te_strvec_dispose(&auth_files);
	te_strvec_dispose(&certs_dirs);
	te_strvec_dispose(&a.tags);
	te_strvec_dispose(&a.label_flags);
	te_strvec_dispose(&a.patterns);
	te_strvec_dispose(&a.ssh_keys);
	return rc;
}
