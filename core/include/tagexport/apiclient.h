/*
 * apiclient.h - the client side of tagexport-server's admin API, as the
 * post-receive hook uses it:
 *
 *   POST <server>/api/v1/projects/<project>/exports
 *   Authorization: Bearer <admin token>
 *   {"ref":"refs/tags/<tag>","commit":"<40 hex>"}
 *
 * answered 202 {"job":"<id>","status":"queued"} or 200
 * {"ignored":"<reason>"}, errors as {"error":"<message>"}.
 *
 * One attempt, bounded in time, never retried (a hook must not make a
 * push wait; the pusher can push the tag again).  The token is read from
 * its file for the request only, wiped afterwards, and never appears in
 * an error message.  Text taken from the server's answer is reduced to
 * printable ASCII before it is returned.
 */
#ifndef TAGEXPORT_APICLIENT_H
#define TAGEXPORT_APICLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/error.h"

typedef struct te_api_opts {
	unsigned int version;
	const char *server;     /* base URL, http:// or https:// */
	const char *token_file; /* admin token: the file minus trailing
	                           whitespace */
	long timeout_ms;        /* whole request; 0 = 5000 */
	bool skip_tls_verify;
} te_api_opts;

#define TE_API_OPTS_VERSION 1
#define TE_API_OPTS_INIT                                                       \
	{                                                                      \
		.version = TE_API_OPTS_VERSION                                 \
	}

typedef struct te_api_reply {
	bool queued;       /* 202: a job was queued (or already existed) */
	char job[65];      /* its id */
	char status[33];   /* "queued", or the state of the existing job */
	char ignored[129]; /* 200: why the server ignored the tag */
} te_api_reply;

/**
 * Ask the server to export tag at commit.
 *
 * @param[out] out  filled on success
 * @param project   tagexport-server project name ([a-z0-9_-]{1,64})
 * @param tag       validated tag name (te_mirror_tag_valid)
 * @param commit    40 hex digits
 * @return 0 (queued or ignored, see out); TE_ENET when the server cannot
 *         be reached, times out or fails (5xx), message "server
 *         unreachable (<why>)" or "server answered <status>: <error>";
 *         TE_EAUTH for 401/403; TE_EINVALID for bad arguments and other
 *         answers; TE_EIO when the token file cannot be read
 */
int te_api_submit_export(te_api_reply *out, const te_api_opts *opts,
                         const char *project, const char *tag,
                         const char *commit, te_error *err);

/**
 * Interpret an answer (exposed for the unit tests).  Pure.
 * @return as te_api_submit_export, for the HTTP part
 */
int te_api_parse_reply(te_api_reply *out, long status, const char *body,
                       size_t len, te_error *err);

#endif
