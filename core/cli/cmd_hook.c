/*
 * cmd_hook.c - `tagexport hook`: install the post-receive hook, and be it.
 *
 *   hook install --git-dir DIR --project NAME
 *                (--config FILE | --server URL --token-file FILE) [--chain]
 *   hook post-receive        (run by git; reads "<old> <new> <ref>" lines)
 *   hook run-export ...      (internal: the detached standalone export)
 *
 * The logic is in the core (tagexport/hook.h, tagexport/apiclient.h);
 * this file maps settings and the server config onto it and talks to the
 * pusher.  `hook post-receive` always exits 0: a post-receive hook cannot
 * fail a push, and tagexport never pretends it could.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hook_script.h"
#include "tagexport/apiclient.h"
#include "tagexport/fs.h"
#include "tagexport/export.h"
#include "tagexport/hook.h"
#include "tagexport/project.h"

/* The whole hook (all server requests) stays within this budget. */
#define HOOK_BUDGET_MS 15000L
#define HOOK_REQUEST_MS 5000L

static void say(const char *fmt, ...) TE_PRINTF(1, 2);
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("tagexport: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- hook install ---------------------------------------------------- */

enum {
	OPT_GIT_DIR = 256,
	OPT_PROJECT,
	OPT_CONFIG,
	OPT_SERVER,
	OPT_TOKEN_FILE,
	OPT_CHAIN,
	OPT_TAG,
	OPT_COMMIT,
	OPT_LOCK_FD,
	OPT_HELP
};

static const struct option install_options[] = {
    {"git-dir", required_argument, NULL, OPT_GIT_DIR},
    {"project", required_argument, NULL, OPT_PROJECT},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"server", required_argument, NULL, OPT_SERVER},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"chain", no_argument, NULL, OPT_CHAIN},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

static void hook_usage(FILE *out)
{
	fprintf(out,
	        "usage: tagexport hook install --git-dir DIR --project NAME\n"
	        "           (--config FILE | --server URL --token-file FILE) "
	        "[--chain]\n"
	        "       tagexport hook post-receive   (run by git)\n"
	        "\n"
	        "install writes DIR/hooks/post-receive (or "
	        "hooks/post-receive.d/tagexport\n"
	        "when that directory exists; core.hooksPath instead of "
	        "DIR/hooks when set)\n"
	        "and records the settings in DIR's git config.\n"
	        "  --config FILE      standalone: export here, with the "
	        "project's export\n"
	        "                     section of this tagexport-server "
	        "config\n"
	        "  --server URL       queue the export on tagexport-server "
	        "(admin API)\n"
	        "  --token-file FILE  its admin token\n"
	        "  --chain            keep an existing hook as "
	        "post-receive.chained,\n"
	        "                     run first with the same input\n");
}

struct install_args {
	const char *git_dir;
	const char *project;
	const char *config;
	const char *server;
	const char *token_file;
	bool chain;
};

static int parse_install(struct install_args *a, int argc, char **argv)
{
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", install_options, NULL)) !=
	       -1) {
		switch (opt) {
		case OPT_GIT_DIR:
			a->git_dir = optarg;
			break;
		case OPT_PROJECT:
			a->project = optarg;
			break;
		case OPT_CONFIG:
			a->config = optarg;
			break;
		case OPT_SERVER:
			a->server = optarg;
			break;
		case OPT_TOKEN_FILE:
			a->token_file = optarg;
			break;
		case OPT_CHAIN:
			a->chain = true;
			break;
		case 'h':
		case OPT_HELP:
			hook_usage(stdout);
			return -1;
		default:
			return cli_usage_error("unknown or incomplete option");
		}
	}
	if (optind < argc)
		return cli_usage_error("unexpected argument \"%s\"",
		                       argv[optind]);
	if (!a->git_dir || !a->project)
		return cli_usage_error("--git-dir and --project are required");
	if (!te_hook_project_name_valid(a->project))
		return cli_usage_error("--project must match [a-z0-9_-]{1,64}");
	if (!!a->config == !!a->server)
		return cli_usage_error("give exactly one of --config and "
		                       "--server");
	if (a->server && !a->token_file)
		return cli_usage_error("--server needs --token-file");
	if (a->server && strncmp(a->server, "http://", 7) != 0 &&
	    strncmp(a->server, "https://", 8) != 0)
		return cli_usage_error("--server must be an http:// or "
		                       "https:// URL");
	if (a->config && a->token_file)
		return cli_usage_error("--token-file goes with --server");
	return 0;
}

/* Check the standalone config now rather than at the first push. */
static int check_config(const char *path, const char *project, te_error *err)
{
	te_project_file *cfg = NULL;
	int rc;

	rc = te_project_file_load(&cfg, path, NULL, NULL, err);
	if (rc == 0 && !te_project_file_find(cfg, project))
		rc = te_error_set(err, TE_EINVALID, "%s has no project %s",
		                  path, project);
	te_project_file_free(cfg);
	return rc;
}

static int hook_install(int argc, char **argv)
{
	struct install_args a = {0};
	te_hook_settings set = TE_HOOK_SETTINGS_INIT;
	te_hook_install_result result;
	te_hook_repo *repo = NULL;
	te_error err = TE_ERROR_INIT;
	char cfg[PATH_MAX], tok[PATH_MAX], exe[PATH_MAX];
	char *path = NULL, *hooks_dir = NULL;
	ssize_t n;
	int rc;

	rc = parse_install(&a, argc, argv);
	if (rc != 0)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (a.config && !realpath(a.config, cfg))
		return cli_usage_error("--config %s: %s", a.config,
		                       strerror(errno));
	if (a.token_file && !realpath(a.token_file, tok))
		return cli_usage_error("--token-file %s: %s", a.token_file,
		                       strerror(errno));
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		te_error_set_errno(&err, TE_EIO, errno, "/proc/self/exe");
		return cli_fail(&err);
	}
	exe[n] = '\0';
	if ((a.config && check_config(cfg, a.project, &err) < 0) ||
	    te_hook_repo_open(&repo, a.git_dir, &err) < 0 ||
	    te_hook_repo_hooks_dir(&hooks_dir, repo, &err) < 0 ||
	    te_hook_install(&result, &path, hooks_dir, te_hook_script, a.chain,
	                    &err) < 0) {
		rc = cli_fail(&err);
		goto done;
	}
	set.project = (char *)(uintptr_t)a.project;
	set.config = a.config ? cfg : NULL;
	set.server = (char *)(uintptr_t)a.server;
	set.token_file = a.token_file ? tok : NULL;
	set.bin = exe;
	if (te_hook_settings_write(repo, &set, &err) < 0) {
		rc = cli_fail(&err);
		goto done;
	}
	switch (result) {
	case TE_HOOK_INSTALL_NEW:
		printf("installed %s\n", path);
		break;
	case TE_HOOK_INSTALL_SAME:
		printf("%s already installed; settings updated\n", path);
		break;
	case TE_HOOK_INSTALL_UPDATED:
		printf("updated %s\n", path);
		break;
	case TE_HOOK_INSTALL_CHAINED:
		printf("installed %s; the previous hook is now %s.chained "
		       "and runs first\n",
		       path, path);
		break;
	}
	rc = CLI_EXIT_OK;
done:
	free(path);
	free(hooks_dir);
	te_hook_repo_free(repo);
	return rc;
}

/* ---- hook post-receive -------------------------------------------------- */

struct pr_ctx {
	te_hook_repo *repo;
	te_hook_settings set;
	char git_dir[PATH_MAX];
	/* standalone */
	te_project_file *cfg;
	const te_project *project;
	/* server */
	long deadline_ms;
	te_error down; /* set once the server was unreachable */
};

static void standalone_tag(struct pr_ctx *c, const char *tag,
                           const char *commit)
{
	te_buf log = TE_BUF_INIT(PATH_MAX), lock = TE_BUF_INIT(PATH_MAX);
	te_error err = TE_ERROR_INIT;
	int lock_fd = -1, log_fd = -1;
	bool busy = false;
	/* Tag and commit travel as argv elements, never through a shell. */
	const char *argv[] = {
	    "tagexport",      "hook",      "run-export",  "--git-dir",
	    c->git_dir,       "--config",  c->set.config, "--project",
	    c->project->name, "--tag",     tag,           "--commit",
	    commit,           "--lock-fd", "3",           NULL};

	if (!te_project_tag_selected(&c->project->tags, tag)) {
		say("%s ignored: tag filtered", tag);
		goto done;
	}
	if (te_hook_job_paths(&log, &lock, c->cfg->state_dir, c->project->name,
	                      commit, tag, &err) < 0 ||
	    te_hook_lock(&lock_fd, &busy, lock.ptr, &err) < 0)
		goto fail;
	if (busy) {
		say("%s export already running (log: %s)", tag, log.ptr);
		goto done;
	}
	log_fd =
	    open(log.ptr,
	         O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		te_error_set_errno(&err, TE_EIO, errno, "cannot open %s",
		                   log.ptr);
		goto fail;
	}
	if (te_hook_spawn_detached("/proc/self/exe", argv, log_fd, lock_fd,
	                           &err) < 0)
		goto fail;
	say("%s export started (log: %s)", tag, log.ptr);
	goto done;
fail:
	say("%s not exported: %s", tag, err.msg);
done:
	if (lock_fd >= 0)
		close(lock_fd);
	if (log_fd >= 0)
		close(log_fd);
	te_buf_dispose(&log);
	te_buf_dispose(&lock);
}

static void server_tag(struct pr_ctx *c, const char *tag, const char *commit)
{
	te_api_opts o = TE_API_OPTS_INIT;
	te_api_reply reply;
	te_error err = TE_ERROR_INIT;
	long left = c->deadline_ms - now_ms();

	if (c->down.code != TE_OK) {
		say("%s not queued: %s", tag, c->down.msg);
		return;
	}
	if (left <= 0) {
		say("%s not queued: the hook's time budget is used up", tag);
		return;
	}
	o.server = c->set.server;
	o.token_file = c->set.token_file;
	o.timeout_ms = left < HOOK_REQUEST_MS ? left : HOOK_REQUEST_MS;
	if (te_api_submit_export(&reply, &o, c->set.project, tag, commit,
	                         &err) < 0) {
		say("%s not queued: %s", tag, err.msg);
		if (!strncmp(err.msg, "server unreachable", 18))
			c->down = err;
	} else if (reply.queued && !strcmp(reply.status, "queued")) {
		say("%s queued (job %s)", tag, reply.job);
	} else if (reply.queued) {
		say("%s already known (job %s, %s)", tag, reply.job,
		    reply.status);
	} else {
		say("%s ignored: %s", tag, reply.ignored);
	}
}

/* Load what the mode needs; false (after telling the pusher) if the hook
 * cannot act. */
static bool pr_setup(struct pr_ctx *c)
{
	te_error err = TE_ERROR_INIT;
	const char *gd = getenv("GIT_DIR");

	if (!realpath(gd && *gd ? gd : ".", c->git_dir)) {
		say("cannot find the repository: %s; nothing exported",
		    strerror(errno));
		return false;
	}
	if (te_hook_repo_open(&c->repo, c->git_dir, &err) < 0 ||
	    te_hook_settings_read(&c->set, c->repo, &err) < 0) {
		say("%s; nothing exported", err.msg);
		return false;
	}
	if (!c->set.project || (!!c->set.config == !!c->set.server) ||
	    (c->set.server && !c->set.token_file)) {
		say("hook not configured (run tagexport hook install); "
		    "nothing exported");
		return false;
	}
	if (c->set.server) {
		c->deadline_ms = now_ms() + HOOK_BUDGET_MS;
		return true;
	}
	if (te_project_file_load(&c->cfg, c->set.config, NULL, NULL, &err) <
	    0) {
		say("%s; nothing exported", err.msg);
		return false;
	}
	c->project = te_project_file_find(c->cfg, c->set.project);
	if (!c->project || !te_hook_project_name_valid(c->project->name)) {
		say("%s has no project %s; nothing exported", c->set.config,
		    c->set.project);
		return false;
	}
	return true;
}

static int hook_post_receive(void)
{
	struct pr_ctx c = {.set = TE_HOOK_SETTINGS_INIT, .down = TE_ERROR_INIT};
	te_hook_updates ups = TE_HOOK_UPDATES_INIT;
	te_buf in = TE_BUF_INIT(0);
	te_error err = TE_ERROR_INIT;
	size_t i, ntags = 0;

	/* The pusher may hang up; its stderr is then gone, not fatal. */
	signal(SIGPIPE, SIG_IGN);
	if (te_hook_read(&in, STDIN_FILENO, &err) < 0 ||
	    te_hook_parse(&ups, in.ptr, in.len, &err) < 0) {
		say("%s; nothing exported", err.msg);
		goto done;
	}
	for (i = 0; i < ups.count; i++) {
		const te_hook_update *u = &ups.items[i];
		if (u->kind == TE_HOOK_TAG)
			ntags++;
		else if (u->kind == TE_HOOK_MALFORMED)
			say("input line %zu is malformed; ignored", u->line);
		else if (u->kind == TE_HOOK_BAD_NAME)
			say("input line %zu: not a valid tag name; ignored",
			    u->line);
	}
	if (ntags == 0 || !pr_setup(&c))
		goto done;
	for (i = 0; i < ups.count; i++) {
		const te_hook_update *u = &ups.items[i];
		char commit[41];
		te_error perr = TE_ERROR_INIT;
		if (u->kind != TE_HOOK_TAG)
			continue;
		if (te_hook_repo_peel(commit, c.repo, u->new_oid, &perr) < 0) {
			say("%s ignored: %s", u->tag, perr.msg);
			continue;
		}
		if (c.set.server)
			server_tag(&c, u->tag, commit);
		else
			standalone_tag(&c, u->tag, commit);
	}
done:
	fflush(stderr);
	te_project_file_free(c.cfg);
	te_hook_settings_dispose(&c.set);
	te_hook_repo_free(c.repo);
	te_hook_updates_dispose(&ups);
	te_buf_dispose(&in);
	return CLI_EXIT_OK;
}

/* ---- hook run-export (the detached child) ------------------------------ */

static const struct option run_options[] = {
    {"git-dir", required_argument, NULL, OPT_GIT_DIR},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"project", required_argument, NULL, OPT_PROJECT},
    {"tag", required_argument, NULL, OPT_TAG},
    {"commit", required_argument, NULL, OPT_COMMIT},
    {"lock-fd", required_argument, NULL, OPT_LOCK_FD},
    {NULL, 0, NULL, 0}};

static void log_line(void *payload, te_log_level level, const char *msg)
{
	static const char *const names[] = {"debug", "info", "warning",
	                                    "error"};
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;

	(void)payload;
	if (level == TE_LOG_DEBUG)
		return;
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	fprintf(stderr, "%s %s: %s\n", stamp, names[level], msg);
	fflush(stderr);
}

static void logf_(te_log_level level, const char *fmt, ...) TE_PRINTF(2, 3);
static void logf_(te_log_level level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_line(NULL, level, msg);
}

struct run_args {
	const char *git_dir, *config, *project, *tag, *commit;
};

static int export_one(const struct run_args *a, te_error *err)
{
	te_project_file *cfg = NULL;
	const te_project *pr;
	te_hook_repo *repo = NULL;
	te_export_opts opts = TE_EXPORT_OPTS_INIT;
	te_export_result *res = NULL;
	te_buf build = TE_BUF_INIT(PATH_MAX);
	char now[41];
	size_t i, j;
	int rc;

	if ((rc = te_project_file_load(&cfg, a->config, NULL, NULL, err)) < 0)
		goto done;
	pr = te_project_file_find(cfg, a->project);
	if (!pr) {
		rc = te_error_set(err, TE_EINVALID, "%s has no project %s",
		                  a->config, a->project);
		goto done;
	}
	if ((rc = te_hook_repo_open(&repo, a->git_dir, err)) < 0 ||
	    (rc = te_hook_repo_tag_commit(now, repo, a->tag, err)) < 0)
		goto done;
	if (strcmp(now, a->commit) != 0) {
		rc = te_error_set(err, TE_EINVALID,
		                  "tag moved: it now points to %s; the push "
		                  "that moved it exports that",
		                  now);
		goto done;
	}
	if ((rc = te_project_build_dir(&build, cfg->state_dir, pr, err)) < 0)
		goto done;
	opts.dir = a->git_dir;
	opts.commit = a->commit;
	opts.git_tag = a->tag;
	te_project_export_opts(&opts, pr);
	opts.state_dir = build.ptr;
	opts.log.fn = log_line;
	if ((rc = te_export_run(&res, &opts, err)) < 0)
		goto done;
	for (i = 0; i < res->nimages; i++)
		for (j = 0; j < res->images[i].nrefs; j++)
			logf_(TE_LOG_INFO, "exported %s@%s",
			      res->images[i].refs[j].reference,
			      res->images[i].refs[j].digest);
done:
	te_export_result_free(res);
	te_buf_dispose(&build);
	te_hook_repo_free(repo);
	te_project_file_free(cfg);
	return rc;
}

static int hook_run_export(int argc, char **argv)
{
	struct run_args a = {0};
	te_error err = TE_ERROR_INIT;
	char *end;
	long fd;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", run_options, NULL)) != -1) {
		switch (opt) {
		case OPT_GIT_DIR:
			a.git_dir = optarg;
			break;
		case OPT_CONFIG:
			a.config = optarg;
			break;
		case OPT_PROJECT:
			a.project = optarg;
			break;
		case OPT_TAG:
			a.tag = optarg;
			break;
		case OPT_COMMIT:
			a.commit = optarg;
			break;
		case OPT_LOCK_FD:
			/* Held for the whole run; children must not keep
			 * it once we are gone. */
			errno = 0;
			fd = strtol(optarg, &end, 10);
			if (errno || *end || fd < 3 || fd > 1024 ||
			    fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0)
				return cli_usage_error("bad --lock-fd");
			break;
		default:
			return cli_usage_error("unknown or incomplete option");
		}
	}
	if (!a.git_dir || !a.config || !a.project || !a.tag || !a.commit)
		return cli_usage_error("run-export needs --git-dir, --config, "
		                       "--project, --tag and --commit");
	logf_(TE_LOG_INFO, "export of tag %s at commit %s (project %s) started",
	      a.tag, a.commit, a.project);
	if (export_one(&a, &err) < 0) {
		logf_(TE_LOG_ERROR, "export failed: %s", err.msg);
		return CLI_EXIT_FAILED;
	}
	logf_(TE_LOG_INFO, "export finished");
	return CLI_EXIT_OK;
}

int cmd_hook(int argc, char **argv)
{
	if (argc < 2) {
		hook_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "install"))
		return hook_install(argc - 1, argv + 1);
	if (!strcmp(argv[1], "post-receive"))
		return hook_post_receive();
	if (!strcmp(argv[1], "run-export"))
		return hook_run_export(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		hook_usage(stdout);
		return CLI_EXIT_OK;
	}
	fprintf(stderr, "%s: unknown hook command \"%s\"\n", cli_progname,
	        argv[1]);
	hook_usage(stderr);
	return CLI_EXIT_USAGE;
}
