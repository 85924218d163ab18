/*
 * cli.h - shared pieces of the `tagexport` front end.  The core never
 * prints; everything a user sees is written here.
 */
#ifndef TAGEXPORT_CLI_H
#define TAGEXPORT_CLI_H

#include <stdbool.h>

#include "tagexport/error.h"
#include "tagexport/log.h"
#include "tagexport/werfcfg.h"

/* Exit codes, one table for the whole command. */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILED = 1, /* the export itself failed */
	CLI_EXIT_USAGE = 2   /* bad flags, werf.yaml or input */
};

extern const char *cli_progname;
/* The sub-command being run ("export", "hook"), for usage hints. */
extern const char *cli_command;

/* Map a core error to an exit code, printing it to stderr. */
int cli_fail(const te_error *err);
int cli_usage_error(const char *fmt, ...) TE_PRINTF(1, 2);

/* werf's boolean environment parsing: true only for 1, true, yes. */
bool cli_env_true(const char *name);

/* werf's flag booleans: no value, true or 1; false or 0. */
bool cli_flag_bool(const char *value, bool *out);

/*
 * werf.yaml rendering flags shared by export and config: --env ENV,
 * --loose-giterminism[=BOOL], --config-templates-dir DIR, defaulting to
 * $WERF_ENV, $WERF_LOOSE_GITERMINISM, $WERF_CONFIG_TEMPLATES_DIR.  The
 * templates' `env` sees this process's environment.
 */
enum {
	CLI_OPT_ENV = 200,
	CLI_OPT_LOOSE_GITERMINISM,
	CLI_OPT_CONFIG_TEMPLATES_DIR
};
#define CLI_RENDER_OPTIONS                                                     \
	{"env", required_argument, NULL, CLI_OPT_ENV},                         \
	    {"loose-giterminism", optional_argument, NULL,                     \
	     CLI_OPT_LOOSE_GITERMINISM},                                       \
	{                                                                      \
		"config-templates-dir", required_argument, NULL,               \
		    CLI_OPT_CONFIG_TEMPLATES_DIR                               \
	}
#define CLI_RENDER_USAGE                                                       \
	"  --env ENV                     .Env of werf.yaml templates "         \
	"($WERF_ENV)\n"                                                        \
	"  --loose-giterminism           env in templates may read any "       \
	"variable\n"                                                           \
	"                                ($WERF_LOOSE_GITERMINISM)\n"          \
	"  --config-templates-dir DIR    *.tmpl templates (default .werf,\n"   \
	"                                $WERF_CONFIG_TEMPLATES_DIR)\n"
void cli_render_opts_init(te_werfcfg_opts *o);
/* 1: opt was a rendering flag and is applied; 0: not one; CLI_EXIT_USAGE
 * (message printed) for a bad value. */
int cli_render_opt(te_werfcfg_opts *o, int opt, const char *arg);

/* te_log sink writing "tagexport: msg" lines to stderr. */
void cli_log_stderr(void *payload, te_log_level level, const char *msg);

int cmd_export(int argc, char **argv);
int cmd_hook(int argc, char **argv);
int cmd_config(int argc, char **argv);

#endif
