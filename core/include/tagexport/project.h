/*
 * project.h - the projects of a tagexport-server configuration file: what
 * the server and the standalone hook (`tagexport hook`) both read.
 *
 * The file is YAML (README "Configuration").  te_project_file_parse reads
 * state_dir, allow_chroot_isolation and projects:, and hands every other
 * top-level key to the caller's te_project_key_fn (the server's listen,
 * workers, tokens, ...); without one, those keys are skipped, so the hook
 * reads only what it uses.  Errors read "<file>:<line>: <what>"; secrets
 * (webhook secrets, status tokens) are read from their files or variables
 * at parse time and never appear in an error.  Relative paths are relative
 * to the file's directory.
 *
 * Ownership: a te_project_file owns everything it points to; a te_project
 * never moves once parsed (its render options point into it).
 */
#ifndef TAGEXPORT_PROJECT_H
#define TAGEXPORT_PROJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"
#include "tagexport/export.h"
#include "tagexport/labels.h"
#include "tagexport/werfcfg.h"

/* Budgets: a hostile or broken file is refused cheaply, with an error that
 * names the limit (and te_config_yaml_scan's depth, node count and
 * duplicate-key checks before a tree is built). */
#define TE_PROJECT_FILE_MAX_SIZE (4 * 1024 * 1024) /* bytes of the file */
#define TE_PROJECT_MAX 1000                        /* entries of projects: */
#define TE_PROJECT_NAME_MAX 64
#define TE_PROJECT_SECRET_MAX 4096 /* bytes of one secret */

typedef enum {
	TE_FORGE_GITHUB = 0,
	TE_FORGE_GITLAB = 1,
	TE_FORGE_GITEA = 2
} te_forge;

/* "github", "gitlab", "gitea". */
const char *te_forge_name(te_forge forge);

typedef struct te_project_status {
	bool enabled;
	char *token; /* from token_file (never logged) */
	size_t token_len;
	char *api_url; /* http(s), no trailing '/' */
	char *context; /* status name; "tagexport/export" */
} te_project_status;

typedef struct te_project {
	char *name; /* [a-z0-9_-]{1,64}: URL segment and mirror dir name */
	te_forge forge;
	char *repository; /* full name the forge sends, e.g. "acme/shop" */
	char *secret;     /* webhook secret (never logged) */
	size_t secret_len;
	char *git_url;
	char *git_token_file;       /* optional HTTPS token */
	char *git_ssh_key_file;     /* optional SSH private key */
	char *git_known_hosts_file; /* optional; else ~/.ssh/known_hosts */
	char *git_username;         /* optional */
	char *docker_config;        /* optional dir with config.json */
	te_strvec tags;             /* globs on the tag name; empty = all */
	unsigned poll_interval;     /* seconds between tag polls; 0 = off */
	/* export: the knobs of `tagexport export` */
	char *repo;
	te_strvec tag_templates;
	te_labels *add_labels; /* never NULL */
	te_strvec images;      /* image patterns; empty = all final images */
	bool insecure_registry;
	bool skip_tls_verify;
	uint64_t max_file_size;    /* bytes; 0 = the core's default (2 GiB) */
	uint64_t max_context_size; /* bytes; 0 = the core's default (8 GiB) */
	unsigned build_timeout;    /* export.build_timeout, seconds; 0 = 1h */
	/* export.parallel_tasks_limit: images built at once; 0 = werf's
	 * default (5), -1 = no limit */
	int parallel_tasks_limit;
	/* allow_chroot_isolation: builds run in a chroot, NOT isolated from
	 * the machine; -1 while parsing = the top-level value */
	int allow_chroot;
	/* werf.yaml templates (werfcfg.h): env: NAME: VALUE is all their
	 * `env` sees ("NAME=VALUE"; never the process environment; values
	 * are never logged), werf_env: is .Env, loose_giterminism: lets env
	 * read any of them; render points into this project */
	te_strvec env;
	/* secrets: werf.yaml build secrets by id: {env: NAME} (of env:
	 * above) or {file: PATH}; values are read per build, never logged */
	struct te_project_secret {
		char *id;
		char *env;
		char *file;
	} * build_secrets;
	size_t nbuild_secrets;
	/* ssh_key_files: keys for werf.yaml's ssh: (RUN --mount=type=ssh);
	 * the process's own agent is never used */
	te_strvec ssh_keys;
	char *werf_env;
	bool loose_giterminism;
	/* stapel_mounts: {build_dir: bool, from_paths: [absolute globs]}:
	 * the Stapel mounts of the machine a commit may use, on top of its
	 * werf-giterminism.yaml (which the commit itself carries);
	 * stapel_git_urls: [globs]: the remote git mappings it may fetch.
	 * Absent: none.  The policy's lists point into the strvecs. */
	te_stapel_policy stapel_policy;
	te_strvec stapel_from_paths;
	te_strvec stapel_git_urls;
	te_werfcfg_opts render;
	/* status: commit statuses on the forge; off when the section is
	 * absent */
	te_project_status status;
	int line; /* where the project starts in the file */
} te_project;

typedef struct te_project_file {
	char *path;
	char *state_dir;
	bool allow_chroot; /* the top-level allow_chroot_isolation */
	size_t nprojects;
	te_project *projects;
} te_project_file;

/*
 * Reading YAML nodes with the file's rules, for the caller's own keys.
 * Each returns 0 or TE_EINVALID "<file>:<line>: <key> must be ..." (or
 * TE_ENOMEM); an out string is replaced (the old one freed).
 */
typedef struct te_project_yaml {
	yaml_document_t *doc;
	const char *file;
	char *dir; /* directory of the file, for relative paths; NULL: cwd */
} te_project_yaml;

int te_project_yaml_fail(const te_project_yaml *y, const yaml_node_t *node,
                         te_error *err, const char *what);
yaml_node_t *te_project_yaml_node(const te_project_yaml *y, int idx);
/* The node's text, NULL unless it is a scalar. */
const char *te_project_yaml_scalar(const yaml_node_t *node);
/* A non-empty string without NUL bytes. */
int te_project_yaml_str(char **out, const te_project_yaml *y,
                        const yaml_node_t *node, const char *key,
                        te_error *err);
/* A string; relative paths joined to the file's directory. */
int te_project_yaml_path(char **out, const te_project_yaml *y,
                         const yaml_node_t *node, const char *key,
                         te_error *err);
/* An http(s) URL with a host; trailing '/' dropped. */
int te_project_yaml_url(char **out, const te_project_yaml *y,
                        const yaml_node_t *node, const char *key,
                        te_error *err);
int te_project_yaml_bool(bool *out, const te_project_yaml *y,
                         const yaml_node_t *node, const char *key,
                         te_error *err);
int te_project_yaml_uint(unsigned long *out, const te_project_yaml *y,
                         const yaml_node_t *node, const char *key,
                         unsigned long min, unsigned long max, te_error *err);
/* A secret from file (or, when file is NULL, the variable env): its
 * content minus trailing whitespace, at most TE_PROJECT_SECRET_MAX bytes;
 * the error names node's line and the file or variable, never the value.
 * *out is the caller's (explicit_bzero it before freeing). */
int te_project_yaml_secret(char **out, size_t *len, const te_project_yaml *y,
                           const yaml_node_t *node, const char *file,
                           const char *env, te_error *err);

/*
 * A top-level key the projects module does not read: return 0 when it is
 * the caller's, TE_ENOTFOUND when it is not (the parse then fails with
 * "unknown key"), or another error.  Called once more at the end with key
 * NULL and value the root node, before the document is freed, for checks
 * that span keys.
 */
typedef int (*te_project_key_fn)(void *payload, const te_project_yaml *y,
                                 const char *key, const yaml_node_t *value,
                                 te_error *err);

/*
 * Parse config text; filename is used in messages and to resolve relative
 * paths (its directory).  key_fn may be NULL: other keys are skipped.
 * *out is the caller's (te_project_file_free).
 */
int te_project_file_parse(te_project_file **out, const char *data, size_t len,
                          const char *filename, te_project_key_fn key_fn,
                          void *payload, te_error *err);
/* Read path (at most TE_PROJECT_FILE_MAX_SIZE bytes) and parse it. */
int te_project_file_load(te_project_file **out, const char *path,
                         te_project_key_fn key_fn, void *payload,
                         te_error *err);
void te_project_file_free(te_project_file *file);

/* Borrowed project by name, NULL when not configured. */
const te_project *te_project_file_find(const te_project_file *file,
                                       const char *name);

/* Project names: [a-z0-9_-]{1,64}. */
bool te_project_name_valid(const char *name);

/* Does tag match one of the globs (fnmatch, '*' crosses '/')?  An empty
 * list selects every tag. */
bool te_project_tag_selected(const te_strvec *globs, const char *tag);

/*
 * The build state directory of project pr under the server's state_dir:
 * "<state_dir>/build/projects/<name>", created (0700 components) when
 * missing.  One per project because buildah's layer cache is keyed on the
 * parent image and the instruction, not on a RUN's secrets or what its
 * network returned: a shared store would hand one project's cached layer
 * (built with its secrets) to another project's identical RUN.
 * @param[out] out  cleared first; the caller disposes it
 * @return 0; TE_EINVALID (invalid project name); TE_EIO; TE_ENOMEM
 */
int te_project_build_dir(te_buf *out, const char *state_dir,
                         const te_project *pr, te_error *err);

/* The project's export section into opts (borrowed from pr: keep the file
 * while opts is in use); the caller sets the source (dir, commit,
 * git_tag), state_dir and log.  The server's workers and the standalone
 * hook export the same way. */
void te_project_export_opts(te_export_opts *opts, const te_project *pr);

#endif
