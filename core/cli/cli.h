/*
 * cli.h - shared pieces of the `tagexport` front end.  The core never
 * prints; everything a user sees is written here.
 */
#ifndef TAGEXPORT_CLI_H
#define TAGEXPORT_CLI_H

#include <stdbool.h>

#include "tagexport/error.h"
#include "tagexport/log.h"

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

/* te_log sink writing "tagexport: msg" lines to stderr. */
void cli_log_stderr(void *payload, te_log_level level, const char *msg);

int cmd_export(int argc, char **argv);
int cmd_hook(int argc, char **argv);

#endif
