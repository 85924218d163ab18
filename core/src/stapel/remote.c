/*
 * stapel/remote.c - git mappings of remote repositories (`url`), as werf
 * has them (https://werf.io/docs/v2/usage/build/stapel/git.html, "Working
 * with remote repositories").
 *
 * Invariants:
 *  1. Only https, http, git and ssh (also scp-like user@host:path) reach
 *     libgit2: file:// and local paths would read the build machine's own
 *     repositories, which a hostile werf.yaml must not.  A password in the
 *     url, or any userinfo of an http(s) url (a token alone is a common
 *     form), is refused: basicAuth carries them, so the url as written is
 *     safe to print (an ssh user name such as git@ stays).
 *  2. Each url has one bare cache, <state>/git-remotes/<sha256 of the
 *     normalized url>, reused by later exports; mirror.c locks it (flock)
 *     while fetching, so concurrent exports take turns.
 *  3. A mapping is fetched once per run (te_stapel__remote_resolve, while
 *     planning) and then read through its own te_gitsrc at that commit.
 *  4. The password (a value, or a build secret by env or src) lives only
 *     for the fetch and is wiped after it.
 */
#include "stapel/stapel_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/fs.h"
#include "tagexport/image.h"
#include "tagexport/mirror.h"

#define PASSWORD_MAX 4096

/* ---- urls -------------------------------------------------------------- */

static bool scheme_is(const char *url, size_t n, const char *name)
{
	return strlen(name) == n && !strncasecmp(url, name, n);
}

int te_stapel__url_check(const char *url, char *why, size_t cap)
{
	static const char *const ok[] = {"https", "http",    "git",
	                                 "ssh",   "git+ssh", "ssh+git"};
	const char *sep = strstr(url, "://"), *auth, *end, *at;
	size_t n, i;

	for (i = 0; url[i]; i++)
		if (iscntrl((unsigned char)url[i]) || url[i] == ' ') {
			snprintf(why, cap,
			         "git url must not hold spaces or "
			         "control characters");
			return -1;
		}
	if (!sep) {
		/* scp-like [user@]host:path is ssh; anything else a path */
		at = strchr(url, '@');
		if (at && memchr(url, ':', (size_t)(at - url))) {
			snprintf(why, cap,
			         "git url must not hold credentials "
			         "(use basicAuth)");
			return -1;
		}
		n = strcspn(url, ":/");
		if (n && url[n] == ':' && url[0] != '-')
			return 0;
		snprintf(why, cap,
		         "git url: local paths are refused (they "
		         "would read the build machine's "
		         "repositories); use https, http, git or "
		         "ssh");
		return -1;
	}
	n = (size_t)(sep - url);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (scheme_is(url, n, ok[i]))
			break;
	if (i == sizeof(ok) / sizeof(ok[0])) {
		bool plain = n && n <= 16 &&
		             strspn(url, "abcdefghijklmnopqrst"
		                         "uvwxyzABCDEFGHIJKLMN"
		                         "OPQRSTUVWXYZ0123456789"
		                         "+.-") >= n;
		snprintf(why, cap,
		         "git url scheme \"%.*s\" is refused (https, http, git "
		         "and ssh are allowed%s)",
		         plain ? (int)n : 1, plain ? url : "?",
		         scheme_is(url, n, "file") ? "; file:// would read the "
		                                     "build machine's "
		                                     "repositories"
		                                   : "");
		return -1;
	}
	auth = sep + 3;
	end = auth + strcspn(auth, "/");
	at = memrchr(auth, '@', (size_t)(end - auth));
	/* a password, or an http user name (often a token on its own) */
	if (at && (memchr(auth, ':', (size_t)(at - auth)) ||
	           !strncasecmp(url, "http", 4))) {
		snprintf(why, cap,
		         "git url must not hold credentials (use basicAuth)");
		return -1;
	}
	if ((at ? at + 1 : auth) == end) {
		snprintf(why, cap, "git url names no host");
		return -1;
	}
	return 0;
}

bool te_stapel__url_scheme_ssh(const char *url)
{
	const char *sep = strstr(url, "://");

	if (!sep)
		return true; /* scp-like (te_stapel__url_check) */
	return scheme_is(url, (size_t)(sep - url), "ssh") ||
	       scheme_is(url, (size_t)(sep - url), "git+ssh") ||
	       scheme_is(url, (size_t)(sep - url), "ssh+git");
}

int te_stapel__url_normalize(te_buf *out, const char *url, te_error *err)
{
	const char *sep = strstr(url, "://"), *auth, *host, *end, *at;
	size_t n;
	int rc = 0;

	te_buf_clear(out);
	if (!sep)
		return te_buf_printf(out, err, "ssh://%s", url);
	auth = sep + 3;
	end = auth + strcspn(auth, "/");
	at = memrchr(auth, '@', (size_t)(end - auth));
	host = at ? at + 1 : auth;
	for (n = 0; rc == 0 && url + n < sep; n++)
		rc = te_buf_printf(out, err, "%c",
		                   tolower((unsigned char)url[n]));
	if (rc == 0)
		rc = te_buf_puts(out, "://", err);
	for (; rc == 0 && host < end; host++)
		rc = te_buf_printf(out, err, "%c",
		                   tolower((unsigned char)*host));
	if (rc == 0)
		rc = te_buf_puts(out, end, err);
	while (rc == 0 && out->len && out->ptr[out->len - 1] == '/')
		out->ptr[--out->len] = '\0';
	return rc;
}

/* ---- the run's remotes --------------------------------------------------- */

struct remote {
	const te_stapel_git *git; /* the mapping, borrowed from the config */
	te_gitsrc *src;
	char commit[41];
};

struct te_stapel_remotes {
	te_stapel_remote_opts o;
	pthread_mutex_t mu;
	struct remote *items;
	size_t count, cap;
};

int te_stapel_remotes_new(te_stapel_remotes **out,
                          const te_stapel_remote_opts *o, te_error *err)
{
	te_stapel_remotes *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	r->o = *o;
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return 0;
}

void te_stapel_remotes_free(te_stapel_remotes *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->count; i++)
		te_gitsrc_free(r->items[i].src);
	free(r->items);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static struct remote *find(const te_stapel_remotes *r, const te_stapel_git *g)
{
	size_t i;

	for (i = 0; r && i < r->count; i++)
		if (r->items[i].git == g)
			return &r->items[i];
	return NULL;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* A mapping of another image with the same url and ref: the run sees one
 * commit per ref, even if the remote moves it meanwhile. */
static struct remote *find_same(const te_stapel_remotes *r,
                                const te_stapel_git *g)
{
	size_t i;

	for (i = 0; i < r->count; i++) {
		const te_stapel_git *o = r->items[i].git;
		if (!strcmp(o->url, g->url) && same_str(o->tag, g->tag) &&
		    same_str(o->commit, g->commit) &&
		    same_str(o->branch, g->branch))
			return &r->items[i];
	}
	return NULL;
}

bool te_stapel__remote_get(te_gitsrc **src, const char **commit,
                           te_stapel_remotes *r, const te_stapel_git *g)
{
	struct remote *x;

	if (!r)
		return false;
	pthread_mutex_lock(&r->mu);
	x = find(r, g);
	pthread_mutex_unlock(&r->mu);
	if (!x)
		return false;
	*src = x->src;
	*commit = x->commit;
	return true;
}

/* <state>/git-remotes/<sha256 hex of the normalized url> */
static int cache_dir(te_buf *out, const te_stapel_remotes *r, const char *url,
                     te_error *err)
{
	te_buf norm = TE_BUF_INIT(16384);
	char digest[TE_DIGEST_STR_MAX];
	int rc = te_stapel__url_normalize(&norm, url, err);

	if (rc == 0) {
		te_image_sha256(digest, norm.ptr, norm.len);
		rc = te_buf_printf(out, err, "%s/git-remotes/%s",
		                   r->o.state_dir, strchr(digest, ':') + 1);
	}
	te_buf_dispose(&norm);
	return rc;
}

/* basicAuth's password: its value, or a build secret (env or src) the
 * front end hands out (te_stapel_remote_opts.secret). */
static int password(te_buf *out, const te_stapel_remotes *r,
                    const te_stapel_git *g, te_error *err)
{
	const char *id;

	if (g->auth_kind == TE_SECRET_VALUE)
		return te_buf_puts(out, g->auth_password, err);
	if (!r->o.secret)
		return te_error_set(err, TE_EUNSUPPORTED,
		                    "basicAuth password from env or src needs "
		                    "secrets from the front end");
	id = g->auth_kind == TE_SECRET_SRC && strrchr(g->auth_password, '/')
	         ? strrchr(g->auth_password, '/') + 1
	         : g->auth_password;
	return r->o.secret(out, id, g->auth_kind, g->auth_password,
	                   r->o.secret_payload, err);
}

static int fetch(char commit[41], const te_stapel_remotes *r,
                 const te_stapel_git *g, const char *dir, te_error *err)
{
	te_buf pw = TE_BUF_INIT(PASSWORD_MAX);
	te_mirror_auth auth = TE_MIRROR_AUTH_INIT;
	te_mirror_limits lim = {r->o.max_bytes, r->o.timeout};
	te_mirror_ref_kind kind = g->tag      ? TE_MIRROR_REF_TAG
	                          : g->commit ? TE_MIRROR_REF_COMMIT
	                          : g->branch ? TE_MIRROR_REF_BRANCH
	                                      : TE_MIRROR_REF_DEFAULT;
	const char *name = g->tag ? g->tag : g->commit ? g->commit : g->branch;
	int rc = 0;

	if (te_stapel__url_scheme_ssh(g->url)) {
		if (!r->o.ssh_key)
			return te_error_set(
			    err, TE_EUNSUPPORTED,
			    "an ssh url needs a private key: "
			    "configure ssh keys for the project "
			    "(--ssh-key, or ssh_keys: on the "
			    "server)");
		auth.ssh_key_file = r->o.ssh_key;
		auth.known_hosts_file = r->o.known_hosts_file;
	}
	if (g->auth_user) {
		rc = password(&pw, r, g, err);
		auth.username = g->auth_user;
		auth.password = pw.ptr;
	}
	if (rc == 0)
		rc = te_mirror_fetch_ref(commit, dir, g->url, kind, name, &auth,
		                         &lim, err);
	if (pw.ptr)
		explicit_bzero(pw.ptr, pw.cap);
	te_buf_dispose(&pw);
	return rc;
}

int te_stapel__remote_resolve(te_stapel_remotes *r, const te_stapel_git *g,
                              const char *file, const char *image,
                              te_error *err)
{
	te_buf dir = TE_BUF_INIT(8192);
	struct remote x;
	int rc = 0;

	memset(&x, 0, sizeof(x));
	x.git = g;
	if (!r)
		return te_error_set(err, TE_EUNSUPPORTED,
		                    "%s:%d: image \"%s\": git url %s: remote "
		                    "repositories are not available here",
		                    file, g->line, image, g->url);
	pthread_mutex_lock(&r->mu);
	if (find(r, g))
		goto done;
	rc = cache_dir(&dir, r, g->url, err);
	if (rc == 0 && find_same(r, g))
		memcpy(x.commit, find_same(r, g)->commit, sizeof(x.commit));
	else if (rc == 0)
		rc = fetch(x.commit, r, g, dir.ptr, err);
	if (rc == 0)
		rc = te_gitsrc_open(&x.src, dir.ptr, err);
	if (rc == 0 && r->count == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 4;
		struct remote *items = realloc(r->items, cap * sizeof(*items));
		if (!items)
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
		else {
			r->items = items;
			r->cap = cap;
		}
	}
	if (rc == 0) {
		r->items[r->count++] = x;
		x.src = NULL;
	}
done:
	pthread_mutex_unlock(&r->mu);
	te_gitsrc_free(x.src);
	te_buf_dispose(&dir);
	if (rc < 0)
		te_error_wrap(err, "%s:%d: image \"%s\": git url %s", file,
		              g->line, image, g->url);
	return rc;
}
