/*
 * main.c - `tagexport` entry point: process-wide initialisation and
 * sub-command dispatch.
 */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "tagexport/gitsrc.h"

const char *cli_progname = "tagexport";
const char *cli_command = "export";

int cli_fail(const te_error *err)
{
	fprintf(stderr, "%s: error: %s\n", cli_progname,
	        err->msg[0] ? err->msg : te_code_str(err->code));
	if (err->code == TE_EINVALID || err->code == TE_EUNSUPPORTED)
		return CLI_EXIT_USAGE;
	return CLI_EXIT_FAILED;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: error: ", cli_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s %s --help'.\n", cli_progname, cli_command);
	return CLI_EXIT_USAGE;
}

bool cli_env_true(const char *name)
{
	const char *v = getenv(name);

	return v && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 ||
	             strcasecmp(v, "yes") == 0);
}

bool cli_flag_bool(const char *value, bool *out)
{
	if (!value || strcmp(value, "true") == 0 || strcmp(value, "1") == 0) {
		*out = true;
		return true;
	}
	if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0) {
		*out = false;
		return true;
	}
	return false;
}

static bool lookup_process_env(const char **value, const char *name,
                               void *payload)
{
	(void)payload;
	*value = getenv(name);
	return *value != NULL;
}

void cli_render_opts_init(te_werfcfg_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->env = getenv("WERF_ENV");
	o->templates_dir = getenv("WERF_CONFIG_TEMPLATES_DIR");
	if (o->templates_dir && !*o->templates_dir)
		o->templates_dir = NULL;
	o->loose_giterminism = cli_env_true("WERF_LOOSE_GITERMINISM");
	o->lookup_env = lookup_process_env;
}

int cli_render_opt(te_werfcfg_opts *o, int opt, const char *arg)
{
	switch (opt) {
	case CLI_OPT_ENV:
		o->env = arg;
		return 1;
	case CLI_OPT_CONFIG_TEMPLATES_DIR:
		o->templates_dir = arg;
		return 1;
	case CLI_OPT_LOOSE_GITERMINISM:
		if (!cli_flag_bool(arg, &o->loose_giterminism))
			return cli_usage_error(
			    "invalid --loose-giterminism value");
		return 1;
	default:
		return 0;
	}
}

void cli_log_stderr(void *payload, te_log_level level, const char *msg)
{
	int verbose = payload ? *(const int *)payload : 0;

	if (level == TE_LOG_DEBUG && !verbose)
		return;
	fprintf(stderr, "%s: %s%s\n", cli_progname,
	        level >= TE_LOG_WARN ? "warning: " : "", msg);
}

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: tagexport <command> [options]\n"
	    "\n"
	    "commands:\n"
	    "  export    build the images of werf.yaml at a git commit and\n"
	    "            publish them under --tag templates (werf export)\n"
	    "  hook      install or run the git post-receive hook\n"
	    "  config    render werf.yaml or list its images (config render\n"
	    "            [IMAGE...], config list [--final-images-only])\n"
	    "  version   print the version\n"
	    "\n"
	    "Run 'tagexport export --help' for the export options.\n");
}

int main(int argc, char **argv)
{
	te_error err = TE_ERROR_INIT;
	int rc;

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "version") == 0 ||
	    strcmp(argv[1], "--version") == 0) {
		printf("tagexport %s\n", TE_VERSION);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "export") != 0 && strcmp(argv[1], "hook") != 0 &&
	    strcmp(argv[1], "config") != 0) {
		fprintf(stderr, "%s: unknown command \"%s\"\n", cli_progname,
		        argv[1]);
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    te_gitsrc_global_init(&err) < 0) {
		te_error_set(&err, TE_ERROR, "library initialisation failed");
		rc = cli_fail(&err);
		/* A post-receive hook never reports failure to git. */
		if (argc > 2 && strcmp(argv[1], "hook") == 0 &&
		    strcmp(argv[2], "post-receive") == 0)
			rc = CLI_EXIT_OK;
		return rc;
	}
	cli_command = argv[1];
	if (strcmp(argv[1], "hook") == 0)
		rc = cmd_hook(argc - 1, argv + 1);
	else if (strcmp(argv[1], "config") == 0)
		rc = cmd_config(argc - 1, argv + 1);
	else
		rc = cmd_export(argc - 1, argv + 1);
	curl_global_cleanup();
	return rc;
}
