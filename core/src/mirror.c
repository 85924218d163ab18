/*
 * mirror.c - bare per-project mirrors, one forced tag fetch at a time.
 *
 * The fetch is split into connect / ls / download / update_tips instead of
 * one git_remote_fetch so that a tag the remote no longer advertises is
 * reported as missing (TE_ENOTFOUND) instead of silently resolving to a
 * stale local copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "tagexport/buf.h"
#include "tagexport/fs.h"
#include "tagexport/known_hosts.h"
#include "tagexport/mirror.h"

#include "mirror_int.h"

#define TOKEN_MAX 4096
#define CRED_CALLS_MAX 4

struct cred_state {
	const te_mirror_auth *auth;
	int calls;
	unsigned int offered;  /* GIT_CREDENTIAL_* already handed out */
	unsigned int ssh_port; /* the URL's, for the host key lookup */
	te_error *err;         /* where the callback records its own failures */
};

/* The authority of a scheme://authority/path URL, [*start, *end); false
 * for scp-like user@host:path URLs and local paths. */
static bool url_authority(const char *url, const char **start, const char **end)
{
	const char *p = strstr(url, "://");

	if (!p)
		return false;
	*start = p + 3;
	*end = *start + strcspn(*start, "/");
	return true;
}

/* Bytes of the "user:password" before the authority's last '@' (0 when
 * none).  The last: an unencoded '@' in a password stays inside. */
static size_t userinfo_len(const char **start, const char *url)
{
	const char *end, *at;

	if (!url_authority(url, start, &end))
		return 0;
	at = memrchr(*start, '@', (size_t)(end - *start));
	return at ? (size_t)(at - *start) : 0;
}

/* One left-to-right pass (mirror_int.h): a replacement is never searched
 * again, so a userinfo that is itself "***" cannot loop; n >= 3, so the
 * result fits in place. */
void te_mirror__redact(char *msg, const char *url)
{
	const char *ui = NULL;
	size_t n = url ? userinfo_len(&ui, url) : 0;
	size_t len, in = 0, out = 0;
	char *hit;

	if (n < 3)
		return;
	len = strlen(msg);
	while ((hit = memmem(msg + in, len - in, ui, n)) != NULL) {
		size_t keep = (size_t)(hit - (msg + in));

		memmove(msg + out, msg + in, keep);
		out += keep;
		memcpy(msg + out, "***", 3);
		out += 3;
		in += keep + n;
	}
	memmove(msg + out, msg + in, len - in + 1);
}

/* Copy libgit2's message at once: the next libgit2 call may overwrite it. */
static int git_fail(te_error *err, int gerr, te_code code, const char *url,
                    const char *what)
{
	const git_error *e = git_error_last();
	char msg[TE_ERROR_MSG_MAX];

	if (err->code != TE_OK) {
		git_error_clear();
		return err->code;
	}
	if (gerr == GIT_EAUTH)
		code = TE_EAUTH;
	snprintf(msg, sizeof(msg), "%s",
	         e && e->message && *e->message ? e->message : "libgit2 error");
	te_mirror__redact(msg, url);
	git_error_clear();
	return te_error_set(err, code, "mirror: %s: %s", what, msg);
}

static bool utf8_valid(const unsigned char *s)
{
	while (*s) {
		unsigned char c = *s;
		size_t n, i;
		unsigned int cp;

		if (c < 0x80) {
			s++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

/* A byte git check-ref-format never allows in a ref name
 * (git-check-ref-format(1) rules 4 and 5: controls, space, ~ ^ : ? * [ \). */
static bool ref_byte_bad(unsigned char c)
{
	return c <= ' ' || c == 0x7f || strchr("~^:?*[\\", c) != NULL;
}

/*
 * git-check-ref-format(1) for "refs/tags/<tag>", without libgit2 (whose
 * git_reference_name_is_valid needs the library initialised, which cost
 * milliseconds per name): every '/'-separated component is non-empty,
 * does not start with '.' and does not end with ".lock"; no "..", no "@{",
 * no bad byte; the name does not end with '.'.  test_mirror checks it
 * against git_reference_name_is_valid.
 */
static bool ref_format_ok(const char *tag, size_t len)
{
	size_t i, start = 0;

	if (tag[len - 1] == '.')
		return false;
	for (i = 0; i <= len; i++) {
		if (i < len && tag[i] != '/') {
			if (ref_byte_bad((unsigned char)tag[i]) ||
			    (tag[i] == '{' && i > start && tag[i - 1] == '@') ||
			    (tag[i] == '.' && i > start && tag[i - 1] == '.'))
				return false;
			continue;
		}
		if (i == start || tag[start] == '.' ||
		    (i - start >= 5 && !memcmp(tag + i - 5, ".lock", 5)))
			return false;
		start = i + 1;
	}
	return true;
}

bool te_mirror_tag_valid(const char *tag)
{
	size_t len, i;

	if (!tag)
		return false;
	len = strlen(tag);
	if (len == 0 || len > TE_MIRROR_TAG_MAX || tag[0] == '-' ||
	    strstr(tag, ".."))
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)tag[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return utf8_valid((const unsigned char *)tag) &&
	       ref_format_ok(tag, len);
}

/* Read the token file into buf (NUL-terminated, trailing space trimmed). */
static int read_token(char *buf, size_t size, const char *path, te_error *err)
{
	size_t len = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return te_error_set_errno(err, TE_EAUTH, errno,
		                          "mirror: cannot open token file");
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = te_error_set_errno(err, TE_EAUTH, errno,
			                        "mirror: cannot read token "
			                        "file");
			goto done;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
	                   buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	if (len == 0 || len == size - 1)
		rc = te_error_set(err, TE_EAUTH,
		                  "mirror: token file is empty or too large");
done:
	close(fd);
	return rc;
}

static int refused(struct cred_state *st)
{
	te_error_set(st->err, TE_EAUTH,
	             "mirror: the remote refused our credentials");
	return GIT_EAUTH;
}

static int cred_cb(git_credential **out, const char *url,
                   const char *username_from_url, unsigned int allowed,
                   void *payload)
{
	struct cred_state *st = payload;
	const te_mirror_auth *auth = st->auth;
	const char *user;
	char token[TOKEN_MAX];
	int rc;

	(void)url;
	if (!auth)
		return GIT_PASSTHROUGH;
	if (++st->calls > CRED_CALLS_MAX)
		return refused(st);
	user = auth->username && *auth->username         ? auth->username
	       : username_from_url && *username_from_url ? username_from_url
	                                                 : "git";
	/* A key or token is offered once: asked again, the remote refused
	 * it, and offering it again only feeds lockout counters (and sshd
	 * hangs up after a few tries, hiding why). */
	if ((allowed & GIT_CREDENTIAL_SSH_KEY) && auth->ssh_key_file) {
		if (st->offered & GIT_CREDENTIAL_SSH_KEY)
			return refused(st);
		st->offered |= GIT_CREDENTIAL_SSH_KEY;
		return git_credential_ssh_key_new(out, user, NULL,
		                                  auth->ssh_key_file, NULL);
	}
	if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && auth->token_file) {
		if (st->offered & GIT_CREDENTIAL_USERPASS_PLAINTEXT)
			return refused(st);
		st->offered |= GIT_CREDENTIAL_USERPASS_PLAINTEXT;
		rc =
		    read_token(token, sizeof(token), auth->token_file, st->err);
		if (rc == 0)
			rc = git_credential_userpass_plaintext_new(out, user,
			                                           token);
		else
			rc = GIT_EUSER;
		explicit_bzero(token, sizeof(token));
		return rc;
	}
	if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && auth->password) {
		if (st->offered & GIT_CREDENTIAL_USERPASS_PLAINTEXT)
			return refused(st);
		st->offered |= GIT_CREDENTIAL_USERPASS_PLAINTEXT;
		return git_credential_userpass_plaintext_new(out, user,
		                                             auth->password);
	}
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	return GIT_PASSTHROUGH;
}

/* The port of an ssh:// URL (22 when it names none, and for scp-like
 * user@host:path URLs, which cannot name one).  libgit2 hands the host
 * key callback the host alone. */
static unsigned int ssh_port(const char *url)
{
	const char *p, *end, *colon;
	unsigned long port;
	size_t userinfo = userinfo_len(&p, url);
	char *stop;

	if (!url_authority(url, &p, &end))
		return 22;
	if (userinfo)
		p += userinfo + 1;
	if (*p == '[') { /* [v6 address]:port */
		p = memchr(p, ']', (size_t)(end - p));
		if (!p)
			return 22;
	}
	colon = memchr(p, ':', (size_t)(end - p));
	if (!colon)
		return 22;
	errno = 0;
	port = strtoul(colon + 1, &stop, 10);
	if (errno || stop != end || port == 0 || port > 65535)
		return 22;
	return (unsigned int)port;
}

static int read_known_hosts(te_buf *out, const char *path, te_error *err)
{
	bool too_big = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return te_error_set_errno(err, TE_EAUTH, errno,
		                          "mirror: cannot open %s", path);
	if (te_fs_read_all(out, fd, &too_big) < 0)
		rc = te_error_set_errno(err, TE_EAUTH, errno,
		                        "mirror: cannot read %s", path);
	else if (too_big)
		rc = te_error_set(err, TE_EAUTH,
		                  "mirror: %s is larger than %d bytes", path,
		                  TE_KNOWN_HOSTS_MAX);
	close(fd);
	return rc;
}

/* With a known_hosts file configured, it alone decides on SSH host
 * keys; everything else (TLS, or no file) keeps libgit2's own check. */
static int hostkey_cb(git_cert *cert, int valid, const char *host,
                      void *payload)
{
	static const char *const why[] = {
	    [TE_HOSTKEY_UNKNOWN] = "is not listed in",
	    [TE_HOSTKEY_MISMATCH] = "does not match the one listed in",
	    [TE_HOSTKEY_REVOKED] = "is revoked in"};
	struct cred_state *st = payload;
	const char *file = st->auth ? st->auth->known_hosts_file : NULL;
	te_buf text = TE_BUF_INIT(TE_KNOWN_HOSTS_MAX);
	char fp[TE_HOSTKEY_FINGERPRINT_MAX], type[64];
	const git_cert_hostkey *hk;
	te_hostkey_result res;

	(void)valid;
	if (!file || cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2)
		return GIT_PASSTHROUGH;
	hk = (const git_cert_hostkey *)cert;
	if (!(hk->type & GIT_CERT_SSH_RAW)) {
		te_error_set(st->err, TE_EAUTH,
		             "mirror: no host key from %s to check", host);
		return GIT_ECERTIFICATE;
	}
	if (read_known_hosts(&text, file, st->err) < 0) {
		te_buf_dispose(&text);
		return GIT_ECERTIFICATE;
	}
	res = te_known_hosts_check(text.ptr, text.len, host, st->ssh_port,
	                           (const unsigned char *)hk->hostkey,
	                           hk->hostkey_len);
	te_buf_dispose(&text);
	if (res == TE_HOSTKEY_MATCH)
		return 0;
	te_known_hosts_fingerprint(fp, (const unsigned char *)hk->hostkey,
	                           hk->hostkey_len);
	te_known_hosts_key_type(type, sizeof(type),
	                        (const unsigned char *)hk->hostkey,
	                        hk->hostkey_len);
	te_error_set(st->err, TE_EAUTH,
	             "mirror: the host key of %s port %u (%s %s) %s %s", host,
	             st->ssh_port, type, fp, why[res], file);
	return GIT_ECERTIFICATE;
}

/* Take the mirror's flock; *fd_out must be closed to release it. */
static int lock_mirror(int *fd_out, const char *mirror_dir, te_error *err)
{
	te_buf path = TE_BUF_INIT(4096);
	int fd = -1, rc;

	rc = te_buf_printf(&path, err, "%s/tagexport.lock", mirror_dir);
	if (rc < 0)
		goto done;
	fd = open(path.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "mirror: cannot open lock file");
		goto done;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		rc = te_error_set_errno(err, TE_EIO, errno,
		                        "mirror: cannot lock mirror");
		goto done;
	}
	*fd_out = fd;
	fd = -1;
done:
	if (fd >= 0)
		close(fd);
	te_buf_dispose(&path);
	return rc;
}

static int open_or_init(git_repository **out, const char *mirror_dir,
                        te_error *err)
{
	int gerr;

	gerr = git_repository_open_bare(out, mirror_dir);
	if (gerr == GIT_ENOTFOUND) {
		git_error_clear();
		gerr = git_repository_init(out, mirror_dir, 1);
	}
	if (gerr < 0)
		return git_fail(err, gerr, TE_EIO, NULL,
		                "cannot open mirror repository");
	return 0;
}

/* Connect remote with auth's credentials and list what it advertises
 * (borrowed from remote until it is freed).  cbs and cs must outlive
 * the remote's use: a later download calls them again.  redirects: 0
 * for libgit2's default (http.followRedirects, else initial only). */
static int connect_and_ls(const git_remote_head ***heads, size_t *nheads,
                          git_remote *remote, git_remote_callbacks *cbs,
                          struct cred_state *cs, const char *url,
                          const te_mirror_auth *auth,
                          git_remote_redirect_t redirects, te_error *err)
{
	git_remote_connect_options co;
	int gerr;

	cs->auth = auth;
	cs->calls = 0;
	cs->offered = 0;
	cs->ssh_port = ssh_port(url);
	cs->err = err;
	cbs->credentials = cred_cb;
	cbs->certificate_check = hostkey_cb;
	cbs->payload = cs;
	git_remote_connect_options_init(&co,
	                                GIT_REMOTE_CONNECT_OPTIONS_VERSION);
	co.callbacks = *cbs;
	co.follow_redirects = redirects;
	gerr = git_remote_connect_ext(remote, GIT_DIRECTION_FETCH, &co);
	if (gerr < 0)
		return git_fail(err, gerr, TE_ENET, url, "cannot connect");
	gerr = git_remote_ls(heads, nheads, remote);
	if (gerr < 0)
		return git_fail(err, gerr, TE_ENET, url, "cannot list refs");
	return 0;
}

int te_mirror_fetch_tag(char commit_out[41], const char *mirror_dir,
                        const char *url, const char *tag,
                        const te_mirror_auth *auth, te_error *err)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_reference *ref = NULL;
	git_object *commit = NULL;
	git_fetch_options fopts;
	git_remote_callbacks cbs;
	const git_remote_head **heads = NULL;
	git_oid advertised;
	te_buf refname = TE_BUF_INIT(512), spec = TE_BUF_INIT(1024);
	struct cred_state cs;
	git_strarray specs;
	char *spec_items[1];
	bool inited = false, found = false;
	size_t nheads = 0, i;
	int lockfd = -1, gerr, rc = 0;

	commit_out[0] = '\0';
	/* The _INIT macros leave fields implicit (-Wmissing-field-...). */
	git_fetch_options_init(&fopts, GIT_FETCH_OPTIONS_VERSION);
	git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
	if (!te_mirror_tag_valid(tag))
		return te_error_set(err, TE_EINVALID,
		                    "mirror: invalid tag name");
	if (!mirror_dir || !*mirror_dir || !url || !*url)
		return te_error_set(err, TE_EINVALID,
		                    "mirror: directory and url are required");
	rc = te_buf_printf(&refname, err, "refs/tags/%s", tag);
	if (rc < 0)
		goto done;
	rc = te_buf_printf(&spec, err, "+%s:%s", refname.ptr, refname.ptr);
	if (rc < 0)
		goto done;

	gerr = git_libgit2_init();
	if (gerr < 0) {
		rc =
		    git_fail(err, gerr, TE_ERROR, NULL, "initializing libgit2");
		goto done;
	}
	inited = true;

	rc = te_fs_mkdirs(mirror_dir, err);
	if (rc < 0)
		goto done;
	rc = lock_mirror(&lockfd, mirror_dir, err);
	if (rc < 0)
		goto done;
	rc = open_or_init(&repo, mirror_dir, err);
	if (rc < 0)
		goto done;

	gerr = git_remote_create_anonymous(&remote, repo, url);
	if (gerr < 0) {
		rc = git_fail(err, gerr, TE_EINVALID, url, "bad remote url");
		goto done;
	}
	rc = connect_and_ls(&heads, &nheads, remote, &cbs, &cs, url, auth, 0,
	                    err);
	if (rc < 0)
		goto done;
	for (i = 0; i < nheads; i++) {
		if (strcmp(heads[i]->name, refname.ptr) == 0) {
			git_oid_cpy(&advertised, &heads[i]->oid);
			found = true;
			break;
		}
	}
	if (!found) {
		rc = te_error_set(err, TE_ENOTFOUND,
		                  "mirror: the remote has no such tag");
		goto done;
	}

	spec_items[0] = spec.ptr;
	specs.strings = spec_items;
	specs.count = 1;
	fopts.callbacks = cbs;
	fopts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fopts.prune = GIT_FETCH_NO_PRUNE;
	fopts.update_fetchhead = 0;
	gerr = git_remote_download(remote, &specs, &fopts);
	if (gerr < 0) {
		rc = git_fail(err, gerr, TE_ENET, url, "cannot download");
		goto done;
	}
	gerr = git_remote_update_tips(remote, &cbs, 0,
	                              GIT_REMOTE_DOWNLOAD_TAGS_NONE,
	                              "tagexport: fetch tag");
	if (gerr < 0) {
		rc = git_fail(err, gerr, TE_EIO, url, "cannot update tag");
		goto done;
	}
	git_remote_disconnect(remote);

	gerr = git_reference_lookup(&ref, repo, refname.ptr);
	if (gerr < 0) {
		rc =
		    git_fail(err, gerr, TE_EIO, url, "tag missing after fetch");
		goto done;
	}
	if (!git_reference_target(ref) ||
	    !git_oid_equal(git_reference_target(ref), &advertised)) {
		rc = te_error_set(err, TE_EIO,
		                  "mirror: local tag differs from the remote "
		                  "after fetch");
		goto done;
	}
	gerr = git_reference_peel(&commit, ref, GIT_OBJECT_COMMIT);
	if (gerr < 0) {
		rc = git_fail(err, gerr, TE_EINVALID, url,
		              "tag does not point at a commit");
		goto done;
	}
	git_oid_tostr(commit_out, 41, git_object_id(commit));
done:
	git_object_free(commit);
	git_reference_free(ref);
	git_remote_free(remote);
	git_repository_free(repo);
	if (lockfd >= 0)
		close(lockfd);
	if (inited)
		git_libgit2_shutdown();
	te_buf_dispose(&refname);
	te_buf_dispose(&spec);
	return rc;
}

/* One advertised ref into the lists: "refs/tags/T" as T's value, and
 * "refs/tags/T^{}" (the peeled commit of an annotated tag, advertised
 * right after T: gitprotocol-pack(5), "Reference Discovery") in its place. */
static int add_head(te_strvec *names, te_strvec *commits, bool *more,
                    const git_remote_head *head, size_t max, te_error *err)
{
	char name[TE_MIRROR_TAG_MAX + 4], hex[41];
	size_t n;

	if (strncmp(head->name, "refs/tags/", 10) != 0)
		return 0;
	n = strlen(head->name + 10);
	if (n >= sizeof(name))
		return 0;
	memcpy(name, head->name + 10, n + 1);
	git_oid_tostr(hex, sizeof(hex), &head->oid);
	if (n > 3 && !strcmp(name + n - 3, "^{}")) {
		name[n - 3] = '\0';
		if (names->count > 0 &&
		    !strcmp(names->items[names->count - 1], name))
			memcpy(commits->items[commits->count - 1], hex, 41);
		return 0;
	}
	if (!te_mirror_tag_valid(name))
		return 0;
	if (names->count >= max) {
		*more = true;
		return 0;
	}
	if (te_strvec_push(names, name, err) < 0 ||
	    te_strvec_push(commits, hex, err) < 0)
		return err->code;
	return 0;
}

int te_mirror_list_tags(te_strvec *names, te_strvec *commits, bool *more,
                        const char *url, const te_mirror_auth *auth, size_t max,
                        te_error *err)
{
	git_remote *remote = NULL;
	git_remote_callbacks cbs;
	const git_remote_head **heads = NULL;
	struct cred_state cs;
	size_t nheads = 0, i;
	int gerr, rc = 0;

	*more = false;
	git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
	if (!url || !*url)
		return te_error_set(err, TE_EINVALID,
		                    "mirror: url is required");
	gerr = git_libgit2_init();
	if (gerr < 0)
		return git_fail(err, gerr, TE_ERROR, NULL,
		                "initializing libgit2");
	gerr = git_remote_create_detached(&remote, url);
	if (gerr < 0) {
		rc = git_fail(err, gerr, TE_EINVALID, url, "bad remote url");
		goto done;
	}
	rc = connect_and_ls(&heads, &nheads, remote, &cbs, &cs, url, auth, 0,
	                    err);
	for (i = 0; rc == 0 && i < nheads; i++)
		rc = add_head(names, commits, more, heads[i], max, err);
	git_remote_disconnect(remote);
done:
	git_remote_free(remote);
	git_libgit2_shutdown();
	return rc;
}

/* ---- te_mirror_fetch_ref: a remote's tag, branch or commit ------------- */

#define FETCH_MAX_BYTES_DEFAULT ((uint64_t)1 << 30)
#define FETCH_TIMEOUT_DEFAULT 600u

/* What the transfer callbacks check; cs first, so the credential and
 * host key callbacks (payload = &fs->cs) keep working. */
struct fetch_state {
	struct cred_state cs;
	uint64_t max_bytes;
	time_t deadline;
};

static int over_bounds(struct fetch_state *fs, size_t received)
{
	if (received > fs->max_bytes) {
		te_error_set(fs->cs.err, TE_EINVALID,
		             "mirror: the remote sent more than %" PRIu64
		             " bytes",
		             fs->max_bytes);
		return GIT_EUSER;
	}
	if (time(NULL) > fs->deadline) {
		te_error_set(fs->cs.err, TE_ETIMEDOUT,
		             "mirror: the fetch took longer than allowed");
		return GIT_EUSER;
	}
	return 0;
}

static int transfer_cb(const git_indexer_progress *stats, void *payload)
{
	return over_bounds(payload, stats->received_bytes);
}

static int sideband_cb(const char *str, int len, void *payload)
{
	(void)str;
	(void)len;
	return over_bounds(payload, 0);
}

/* The ref to fetch for a tag, a branch or the default branch, and the
 * commit the remote advertises for it. */
static int pick_ref(te_buf *refname, git_oid *advertised, git_remote *remote,
                    const git_remote_head **heads, size_t nheads,
                    te_mirror_ref_kind kind, const char *name, te_error *err)
{
	git_buf def = {NULL, 0, 0};
	size_t i;
	int rc = 0;

	if (kind == TE_MIRROR_REF_DEFAULT) {
		if (git_remote_default_branch(&def, remote) < 0) {
			git_error_clear();
			return te_error_set(err, TE_ENOTFOUND,
			                    "mirror: the remote has no default "
			                    "branch");
		}
		rc = te_buf_puts(refname, def.ptr, err);
		git_buf_dispose(&def);
	} else {
		rc = te_buf_printf(refname, err, "refs/%s/%s",
		                   kind == TE_MIRROR_REF_TAG ? "tags" : "heads",
		                   name);
	}
	for (i = 0; rc == 0 && i < nheads; i++)
		if (!strcmp(heads[i]->name, refname->ptr)) {
			git_oid_cpy(advertised, &heads[i]->oid);
			return 0;
		}
	if (rc == 0)
		rc = te_error_set(err, TE_ENOTFOUND,
		                  "mirror: the remote has no %s %s",
		                  kind == TE_MIRROR_REF_TAG ? "tag" : "branch",
		                  name ? name : refname->ptr);
	return rc;
}

/* The commit named by a 7..40 hex prefix in repo; TE_ENOTFOUND when it is
 * not there (or the prefix is ambiguous: more history will not help). */
static int find_commit(char out[41], git_repository *repo, const char *hex,
                       te_error *err)
{
	git_oid oid;
	git_commit *c = NULL;
	size_t n = strlen(hex);

	if (n < 7 || n > 40 || strspn(hex, "0123456789abcdef") != n ||
	    git_oid_fromstrn(&oid, hex, n) < 0) {
		git_error_clear();
		return te_error_set(err, TE_EINVALID,
		                    "mirror: invalid commit id");
	}
	if (git_commit_lookup_prefix(&c, repo, &oid, n) < 0) {
		git_error_clear();
		return te_error_set(err, TE_ENOTFOUND,
		                    "mirror: commit %s is not in the remote "
		                    "repository (no branch or tag reaches it)",
		                    hex);
	}
	git_oid_tostr(out, 41, git_commit_id(c));
	git_commit_free(c);
	return 0;
}

/* Download specs and update the mirror's refs. */
static int download(git_remote *remote, const char *const *spec, size_t n,
                    git_remote_callbacks *cbs, const char *url, te_error *err)
{
	git_fetch_options fopts;
	git_strarray specs;
	int gerr;

	git_fetch_options_init(&fopts, GIT_FETCH_OPTIONS_VERSION);
	specs.strings = (char **)spec;
	specs.count = n;
	fopts.callbacks = *cbs;
	fopts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fopts.prune = GIT_FETCH_NO_PRUNE;
	fopts.update_fetchhead = 0;
	fopts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	gerr = git_remote_download(remote, &specs, &fopts);
	if (gerr < 0)
		return git_fail(err, gerr, TE_ENET, url, "cannot download");
	gerr = git_remote_update_tips(
	    remote, cbs, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE, "tagexport: fetch");
	if (gerr < 0)
		return git_fail(err, gerr, TE_EIO, url, "cannot update refs");
	return 0;
}

/* The fetched ref, checked against what was advertised, peeled. */
static int ref_commit(char out[41], git_repository *repo, const char *refname,
                      const git_oid *advertised, const char *url, te_error *err)
{
	git_reference *ref = NULL;
	git_object *commit = NULL;
	int gerr, rc = 0;

	gerr = git_reference_lookup(&ref, repo, refname);
	if (gerr < 0)
		return git_fail(err, gerr, TE_EIO, url,
		                "ref missing after fetch");
	if (!git_reference_target(ref) ||
	    !git_oid_equal(git_reference_target(ref), advertised))
		rc = te_error_set(err, TE_EIO,
		                  "mirror: local ref differs from the remote "
		                  "after fetch");
	gerr =
	    rc == 0 ? git_reference_peel(&commit, ref, GIT_OBJECT_COMMIT) : 0;
	if (gerr < 0)
		rc = git_fail(err, gerr, TE_EINVALID, url,
		              "the ref does not point at a commit");
	if (rc == 0)
		git_oid_tostr(out, 41, git_object_id(commit));
	git_object_free(commit);
	git_reference_free(ref);
	return rc;
}

static int fetch_in(char commit_out[41], git_repository *repo, const char *url,
                    te_mirror_ref_kind kind, const char *name,
                    const te_mirror_auth *auth, struct fetch_state *fs,
                    te_error *err)
{
	static const char *const all[] = {"+refs/heads/*:refs/heads/*",
	                                  "+refs/tags/*:refs/tags/*"};
	git_remote *remote = NULL;
	git_remote_callbacks cbs;
	const git_remote_head **heads = NULL;
	te_buf refname = TE_BUF_INIT(512), spec = TE_BUF_INIT(1024);
	const char *one[1];
	git_oid advertised;
	size_t nheads = 0;
	int gerr, rc;

	git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
	cbs.transfer_progress = transfer_cb;
	cbs.sideband_progress = sideband_cb;
	gerr = git_remote_create_anonymous(&remote, repo, url);
	if (gerr < 0) {
		rc = git_fail(err, gerr, TE_EINVALID, url, "bad remote url");
		goto done;
	}
	rc = connect_and_ls(&heads, &nheads, remote, &cbs, &fs->cs, url, auth,
	                    GIT_REMOTE_REDIRECT_NONE, err);
	if (rc == 0 && kind == TE_MIRROR_REF_COMMIT) {
		rc = download(remote, all, 2, &cbs, url, err);
		if (rc == 0)
			rc = find_commit(commit_out, repo, name, err);
		goto done;
	}
	if (rc == 0)
		rc = pick_ref(&refname, &advertised, remote, heads, nheads,
		              kind, name, err);
	if (rc == 0)
		rc = te_buf_printf(&spec, err, "+%s:%s", refname.ptr,
		                   refname.ptr);
	one[0] = spec.ptr;
	if (rc == 0)
		rc = download(remote, one, 1, &cbs, url, err);
	if (rc == 0)
		rc = ref_commit(commit_out, repo, refname.ptr, &advertised, url,
		                err);
done:
	if (remote)
		git_remote_disconnect(remote);
	git_remote_free(remote);
	te_buf_dispose(&refname);
	te_buf_dispose(&spec);
	return rc;
}

int te_mirror_fetch_ref(char commit_out[41], const char *mirror_dir,
                        const char *url, te_mirror_ref_kind kind,
                        const char *name, const te_mirror_auth *auth,
                        const te_mirror_limits *lim, te_error *err)
{
	git_repository *repo = NULL;
	struct fetch_state fs;
	int lockfd = -1, gerr, rc;

	commit_out[0] = '\0';
	if (!mirror_dir || !*mirror_dir || !url || !*url ||
	    (kind != TE_MIRROR_REF_DEFAULT &&
	     (!name ||
	      (kind != TE_MIRROR_REF_COMMIT && !te_mirror_tag_valid(name)))))
		return te_error_set(err, TE_EINVALID,
		                    "mirror: directory, url or ref name "
		                    "missing or invalid");
	memset(&fs, 0, sizeof(fs));
	fs.max_bytes =
	    lim && lim->max_bytes ? lim->max_bytes : FETCH_MAX_BYTES_DEFAULT;
	fs.deadline =
	    time(NULL) + (lim && lim->timeout ? (time_t)lim->timeout
	                                      : (time_t)FETCH_TIMEOUT_DEFAULT);
	gerr = git_libgit2_init();
	if (gerr < 0)
		return git_fail(err, gerr, TE_ERROR, NULL,
		                "initializing libgit2");
	rc = te_fs_mkdirs(mirror_dir, err);
	if (rc == 0)
		rc = lock_mirror(&lockfd, mirror_dir, err);
	if (rc == 0)
		rc = open_or_init(&repo, mirror_dir, err);
	/* a pinned commit already here needs no network */
	if (rc == 0 && kind == TE_MIRROR_REF_COMMIT &&
	    find_commit(commit_out, repo, name, err) == 0)
		goto done;
	if (rc == 0) {
		te_error_clear(err);
		rc =
		    fetch_in(commit_out, repo, url, kind, name, auth, &fs, err);
	}
done:
	if (rc < 0)
		commit_out[0] = '\0';
	git_repository_free(repo);
	if (lockfd >= 0)
		close(lockfd);
	git_libgit2_shutdown();
	return rc;
}
