/*
 * mirror.h - per-project bare git mirrors, fetched one tag at a time.
 *
 * The server never trusts a payload's idea of where the code is: it
 * fetches the tag itself from the configured git_url into a bare
 * repository it owns, and reads the commit there.
 *
 * Invariants:
 *  1. The tag name is validated before anything else (te_mirror_tag_valid);
 *     it only ever appears inside a refspec, never in a path or a shell.
 *  2. The fetch is forced ("+refs/tags/T:refs/tags/T"): a tag moved at the
 *     source is seen moved here, never masked by an older local copy.
 *     A tag that the remote does not advertise is TE_ENOTFOUND even when
 *     an old local copy exists.
 *  3. Calls on the same mirror_dir are serialised by an flock on
 *     <mirror_dir>/tagexport.lock, so several workers may share a mirror.
 *  4. Secrets (the token, the key passphrase) never reach te_error
 *     messages, and the token buffer is wiped after use.
 */
#ifndef TAGEXPORT_MIRROR_H
#define TAGEXPORT_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"

/* Longest tag name accepted, in bytes. */
#define TE_MIRROR_TAG_MAX 200

/*
 * Credentials for the remote, all optional (borrowed strings).
 *  - token_file: HTTPS user/password auth; the password is the file's
 *    content with trailing whitespace removed.  The user name is username,
 *    else the one in the URL, else "git" (GitHub and Gitea accept any user
 *    name with a token; GitLab OAuth tokens need username "oauth2").
 *  - ssh_key_file: private key for ssh:// and scp-like URLs (no
 *    passphrase); the public key is derived by libssh2.  User name as
 *    above ("git" by default).
 *  - known_hosts_file: an OpenSSH known_hosts file (known_hosts.h) that
 *    alone decides whether an SSH server's host key is trusted: a host
 *    not listed there, listed with another key, or with a @revoked key
 *    fails the fetch with TE_EAUTH and a message naming the host, the key
 *    type and its SHA256 fingerprint.  Without it, libgit2 checks
 *    ~/.ssh/known_hosts of the user the process runs as.
 */
typedef struct te_mirror_auth {
	const char *token_file;
	const char *ssh_key_file;
	const char *username;
	const char *known_hosts_file;
	/* HTTPS password given as a value (werf.yaml's git basicAuth),
	 * used when token_file is NULL; never copied into a message */
	const char *password;
} te_mirror_auth;

#define TE_MIRROR_AUTH_INIT                                                    \
	{                                                                      \
		NULL, NULL, NULL, NULL, NULL                                   \
	}

/**
 * Is tag an acceptable tag name?  Rules: 1..TE_MIRROR_TAG_MAX bytes, no
 * leading '-', no "..", no control characters or DEL, and
 * "refs/tags/<tag>" passes git-check-ref-format(1) as libgit2's
 * git_reference_name_is_valid decides it (checked here without libgit2,
 * so it needs no initialisation and costs O(length)).  Pure; never fails
 * otherwise.
 */
bool te_mirror_tag_valid(const char *tag);

/**
 * Fetch refs/tags/<tag> from url into the bare mirror at mirror_dir
 * (created with git init --bare semantics when missing) and return the
 * commit the tag points to (annotated tags are peeled).
 *
 * @param[out] commit_out  40 lowercase hex + NUL on success, "" on failure
 * @param mirror_dir       directory of the bare repository (owned by us)
 * @param url              https://, ssh://, file:// or a local path
 * @param tag              tag name without "refs/tags/", e.g. "v1.2.0"
 * @param auth             credentials, may be NULL
 * @return 0; TE_EINVALID for a bad tag name or a tag not pointing at a
 *         commit; TE_ENOTFOUND when the remote has no such tag; TE_EAUTH
 *         when credentials are refused or unreadable; TE_ENET for
 *         transport failures (retryable); TE_EIO for local repository
 *         failures
 */
int te_mirror_fetch_tag(char commit_out[41], const char *mirror_dir,
                        const char *url, const char *tag,
                        const te_mirror_auth *auth, te_error *err);

/* What te_mirror_fetch_ref fetches. */
typedef enum te_mirror_ref_kind {
	TE_MIRROR_REF_TAG,     /* refs/tags/<name>, annotated tags peeled */
	TE_MIRROR_REF_BRANCH,  /* refs/heads/<name> */
	TE_MIRROR_REF_DEFAULT, /* the branch the remote's HEAD names */
	TE_MIRROR_REF_COMMIT   /* name: 7..40 lowercase hex */
} te_mirror_ref_kind;

/* Bounds of one fetch; zero fields take the defaults. */
typedef struct te_mirror_limits {
	uint64_t max_bytes; /* pack bytes received; default 1 GiB */
	unsigned timeout;   /* seconds of transfer; default 600 */
} te_mirror_limits;

/**
 * Fetch what kind and name designate from url into the bare mirror at
 * mirror_dir (created when missing; flock'ed as te_mirror_fetch_tag) and
 * return its commit.  A commit already in the mirror is returned without
 * network access; one that is not is looked for in every branch and tag
 * of the remote.  Redirects to another host are not followed (the
 * credentials would go along).  The bounds of lim are enforced from
 * libgit2's transfer
 * progress (libgit2 1.5 has no connect or read timeout: a server that
 * accepts and then stays silent is only stopped by the OS).
 *
 * @param[out] commit_out  40 lowercase hex + NUL; "" on failure
 * @param lim   may be NULL: defaults
 * @return 0; TE_ENOTFOUND (no such tag, branch, default branch or
 *         commit), TE_EINVALID (bad name or url), TE_EAUTH, TE_ENET,
 *         TE_EINVALID (too large), TE_ETIMEDOUT, TE_EIO; messages never
 *         hold credentials
 */
int te_mirror_fetch_ref(char commit_out[41], const char *mirror_dir,
                        const char *url, te_mirror_ref_kind kind,
                        const char *name, const te_mirror_auth *auth,
                        const te_mirror_limits *lim, te_error *err);

/**
 * List the tags url advertises, without any local repository (git
 * ls-remote --tags): names[i] ("v1.2.0") points at commits[i] (40
 * lowercase hex; an annotated tag is given as the commit of its peeled
 * "^{}" entry; a lightweight tag by its own value).  Tags failing
 * te_mirror_tag_valid are left out, and so is everything after the
 * first max.
 *
 * @param[out] names    tag names, appended (the caller disposes)
 * @param[out] commits  their commits, appended, same order
 * @param[out] more     set when the remote advertised more than max tags
 * @return 0; TE_EAUTH, TE_ENET (retryable), TE_EINVALID for a bad url
 */
int te_mirror_list_tags(te_strvec *names, te_strvec *commits, bool *more,
                        const char *url, const te_mirror_auth *auth, size_t max,
                        te_error *err);

#endif
