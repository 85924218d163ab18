/*
 * registry_auth.c - where credentials and TLS material come from.
 *
 * Credentials (reference section 2.3/2.4), in docker's then podman's
 * order: <docker config dir>/config.json -- credHelpers[host], else
 * credsStore, else the "auths" entry -- then the containers auth.json
 * files the caller lists (REGISTRY_AUTH_FILE, else
 * ${XDG_RUNTIME_DIR}/containers/auth.json).  The first source that yields
 * anything wins.
 *
 * Credential helpers run as "docker-credential-<name> get" through
 * execvp: no shell, the name restricted to [a-zA-Z0-9_.-], the server URL
 * on stdin (written into the pipe before fork, so no SIGPIPE), stdout
 * bounded to TE_REG_HELPER_OUT_MAX, stderr discarded (helpers print
 * secrets there on failure), a wall-clock timeout after which the whole
 * process group is killed.
 *
 * Invariant: a secret never reaches a te_error, a log line or an argv;
 * every buffer that held one is cleansed before it is freed.
 *
 * TLS: certs.d (containers-certs.d(5), docker's certs.d) roots hold
 * HOST[:PORT] directories with .crt CAs and .cert/.key client pairs.
 */
#include "proc_int.h"
#include "registry_int.h"
#include "tagexport/base64.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#define CONFIG_JSON_MAX (4u * 1024 * 1024)
#define CERT_FILE_MAX (1024u * 1024)
#define HUB_KEY "https://index.docker.io/v1/"

void te_reg__creds_clear(struct te_reg_creds *c)
{
	te_reg__secret_free(c->user);
	te_reg__secret_free(c->pass);
	te_reg__secret_free(c->identity_token);
	te_reg__secret_free(c->registry_token);
	memset(c, 0, sizeof(*c));
}

bool te_reg__creds_empty(const struct te_reg_creds *c)
{
	return !c->user && !c->identity_token && !c->registry_token;
}

void te_reg__secret_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

void te_reg__norm_host(char *dst, size_t cap, const char *key)
{
	size_t n = 0;

	if (strncasecmp(key, "https://", 8) == 0)
		key += 8;
	else if (strncasecmp(key, "http://", 7) == 0)
		key += 7;
	while (*key && *key != '/' && n + 1 < cap) {
		char c = *key++;

		dst[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	dst[n] = '\0';
	if (strcmp(dst, "index.docker.io") == 0 ||
	    strcmp(dst, "registry-1.docker.io") == 0)
		snprintf(dst, cap, "docker.io");
}

const char *te_reg__helper_server(const char *host)
{
	char n[256];

	te_reg__norm_host(n, sizeof(n), host);
	return strcmp(n, "docker.io") == 0 ? HUB_KEY : host;
}

static bool helper_name_ok(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' ||
		      *s == '-'))
			return false;
	return n > 0 && n < TE_REG_HELPER_NAME_MAX;
}

static int dup_secret(char **dst, const char *src, te_error *err)
{
	*dst = te_strdup(src, err);
	return *dst ? 0 : TE_ENOMEM;
}

static int decode_auth(struct te_reg_creds *out, const char *b64, te_error *err)
{
	size_t len = strlen(b64), cap = len / 4 * 3 + 3;
	unsigned char *tmp = NULL;
	char *colon;
	long n;
	int rc = 0;

	if (len > 64 * 1024)
		return te_error_set(err, TE_EINVALID, "oversized auth entry");
	tmp = malloc(cap + 1);
	if (!tmp)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	n = te_base64_decode(tmp, cap, b64, len);
	if (n < 0) {
		rc = te_error_set(err, TE_EINVALID,
		                  "auth entry is not valid base64");
		goto done;
	}
	tmp[n] = '\0';
	colon = strchr((char *)tmp, ':');
	if (!colon) {
		rc = te_error_set(err, TE_EINVALID,
		                  "auth entry is not user:password");
		goto done;
	}
	/* docker strips trailing NULs from the password: a C string
	 * ends at the first one anyway */
	*colon = '\0';
	rc = dup_secret(&out->user, (char *)tmp, err);
	if (rc == 0)
		rc = dup_secret(&out->pass, colon + 1, err);
done:
	OPENSSL_cleanse(tmp, cap + 1);
	free(tmp);
	return rc;
}

/* The value of map[host] with exact keys first, then normalized ones. */
static json_t *find_host(json_t *map, const char *host)
{
	json_t *val, *hit = NULL;
	const char *key;
	char want[256], have[256];

	if (!json_is_object(map))
		return NULL;
	te_reg__norm_host(want, sizeof(want), host);
	json_object_foreach(map, key, val)
	{
		if (strcmp(key, host) == 0)
			return val;
		te_reg__norm_host(have, sizeof(have), key);
		if (!hit && strcmp(have, want) == 0)
			hit = val;
	}
	return hit;
}

int te_reg__config_lookup(struct te_reg_creds *out,
                          char helper[TE_REG_HELPER_NAME_MAX], const char *json,
                          size_t len, const char *host, te_error *err)
{
	json_t *root = NULL, *entry;
	const char *a, *u, *p, *h, *t;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	helper[0] = '\0';
	root = json_loadb(json, len, 0, NULL);
	if (!root || !json_is_object(root)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "credentials file is not a json object");
		goto done;
	}
	h = json_string_value(
	    find_host(json_object_get(root, "credHelpers"), host));
	if (!h || !h[0])
		h = json_string_value(json_object_get(root, "credsStore"));
	if (h && h[0]) {
		if (!helper_name_ok(h)) {
			rc = te_error_set(err, TE_EINVALID,
			                  "invalid credential helper name");
			goto done;
		}
		snprintf(helper, TE_REG_HELPER_NAME_MAX, "%s", h);
	}
	entry = find_host(json_object_get(root, "auths"), host);
	if (!json_is_object(entry))
		goto done;
	a = json_string_value(json_object_get(entry, "auth"));
	u = json_string_value(json_object_get(entry, "username"));
	p = json_string_value(json_object_get(entry, "password"));
	if (a && a[0])
		rc = decode_auth(out, a, err);
	else if (u && p && u[0])
		rc = dup_secret(&out->user, u, err) < 0
		         ? TE_ENOMEM
		         : dup_secret(&out->pass, p, err);
	t = json_string_value(json_object_get(entry, "identitytoken"));
	if (rc == 0 && t && t[0])
		rc = dup_secret(&out->identity_token, t, err);
	t = json_string_value(json_object_get(entry, "registrytoken"));
	if (rc == 0 && t && t[0])
		rc = dup_secret(&out->registry_token, t, err);
done:
	if (rc < 0)
		te_reg__creds_clear(out);
	json_decref(root);
	return rc;
}

int te_reg__helper_parse(struct te_reg_creds *out, const char *json, size_t len,
                         te_error *err)
{
	json_t *root;
	const char *u, *s;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	root = json_loadb(json, len, 0, NULL);
	u = json_string_value(json_object_get(root, "Username"));
	s = json_string_value(json_object_get(root, "Secret"));
	if (!json_is_object(root) || !s) {
		rc = te_error_set(err, TE_EAUTH,
		                  "credential helper output is not "
		                  "{\"Username\",\"Secret\"} json");
		goto done;
	}
	if (u && strcmp(u, "<token>") == 0)
		rc = dup_secret(&out->identity_token, s, err);
	else if (u && u[0])
		rc = dup_secret(&out->user, u, err) < 0
		         ? TE_ENOMEM
		         : dup_secret(&out->pass, s, err);
done:
	if (rc < 0)
		te_reg__creds_clear(out);
	json_decref(root);
	return rc;
}

/* ---- credential helpers ---- */

static int64_t now_ms(void)
{
	return te_reg__now_ms();
}

int te_reg__helper_get(struct te_reg_creds *out, const char *name,
                       const char *server, long timeout_ms, te_error *err)
{
	struct te_proc_opts po = TE_PROC_OPTS_INIT;
	te_buf prog = TE_BUF_INIT(256);
	te_buf text = TE_BUF_INIT(TE_REG_HELPER_OUT_MAX);
	te_error spawn_err = TE_ERROR_INIT, wait_err = TE_ERROR_INIT;
	int in[2] = {-1, -1}, outp[2] = {-1, -1};
	char *argv[3] = {NULL, NULL, NULL};
	char chunk[4096];
	pid_t pid = -1;
	int64_t deadline;
	int status = 0, rc = 0;
	bool timed_out = false, too_big = false;

	memset(out, 0, sizeof(*out));
	if (!helper_name_ok(name)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "invalid credential helper name");
		goto done;
	}
	rc = te_buf_printf(&prog, err, "docker-credential-%s", name);
	if (rc < 0)
		goto done;
	argv[0] = prog.ptr;
	argv[1] = (char *)"get";
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "pipe");
		goto done;
	}
	/* the server URL fits the pipe buffer: write it before fork */
	if (write(in[1], server, strlen(server)) != (ssize_t)strlen(server) ||
	    write(in[1], "\n", 1) != 1) {
		rc = te_error_set_errno(err, TE_EIO, errno, "pipe write");
		goto done;
	}
	close(in[1]);
	in[1] = -1;
	po.argv = argv;
	po.stdin_fd = in[0];
	po.stdout_fd = outp[1];
	po.stderr_fd = -1; /* discarded: helpers print secrets there */
	po.new_pgrp = true;
	if (te_proc_spawn(&pid, &po, &spawn_err) < 0) {
		rc = te_error_set(err, TE_EAUTH,
		                  "credential helper %s not found or not "
		                  "runnable (%s)",
		                  prog.ptr, spawn_err.msg);
		goto done;
	}
	close(outp[1]);
	outp[1] = -1;
	deadline = now_ms() + timeout_ms;
	for (;;) {
		struct pollfd pfd = {outp[0], POLLIN, 0};
		int64_t left = deadline - now_ms();
		ssize_t n;
		int pr;

		if (left <= 0) {
			timed_out = true;
			break;
		}
		pr = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		n = read(outp[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (te_buf_put(&text, chunk, (size_t)n, err) < 0) {
			te_error_clear(err);
			too_big = true;
			break;
		}
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	if (timed_out || too_big)
		te_proc_kill(pid);
	/* waitpid failures were never fatal here: status stays 0 */
	(void)te_proc_wait(&status, pid, -1, &wait_err);
	pid = -1;
	if (timed_out) {
		rc = te_error_set(err, TE_EAUTH,
		                  "credential helper %s timed out after %ld ms",
		                  prog.ptr, timeout_ms);
		goto done;
	}
	if (too_big) {
		rc = te_error_set(
		    err, TE_EAUTH,
		    "credential helper %s: output exceeds %d bytes", prog.ptr,
		    TE_REG_HELPER_OUT_MAX);
		goto done;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && text.len == 0) {
		rc = te_error_set(
		    err, TE_EAUTH,
		    "credential helper %s not found or not runnable", prog.ptr);
		goto done;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* docker-credential-helpers' "not found" message */
		if (text.len && strstr(text.ptr, "credentials not found"))
			goto done;
		rc = te_error_set(
		    err, TE_EAUTH, "credential helper %s failed (%s %d)",
		    prog.ptr, WIFEXITED(status) ? "exit" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		goto done;
	}
	rc = te_reg__helper_parse(out, text.ptr, text.len, err);
	if (rc < 0)
		te_error_wrap(err, "%s", prog.ptr);
done:
	if (pid > 0) {
		te_proc_kill(pid);
		(void)te_proc_wait(&status, pid, -1, &wait_err);
	}
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (outp[0] >= 0)
		close(outp[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	if (text.len)
		OPENSSL_cleanse(text.ptr, text.len);
	te_buf_dispose(&text);
	te_buf_dispose(&prog);
	return rc;
}

/* ---- files ---- */

/* Read path into text; *missing when it does not exist. */
static int read_file(te_buf *text, bool *missing, const char *path,
                     te_error *err)
{
	char chunk[8192];
	FILE *f;
	size_t n;
	int rc = 0;

	*missing = false;
	f = fopen(path, "rb");
	if (!f) {
		if (errno == ENOENT || errno == ENOTDIR)
			*missing = true;
		else
			rc = te_error_set_errno(err, TE_EIO, errno, "open %s",
			                        path);
		return rc;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		rc = te_buf_put(text, chunk, n, err);
		if (rc < 0)
			break;
	}
	if (rc == 0 && ferror(f))
		rc = te_error_set(err, TE_EIO, "read %s failed", path);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	fclose(f);
	if (rc < 0 && err->code == TE_EINVALID)
		te_error_wrap(err, "%s", path);
	return rc;
}

/* One credentials file: helper first (when named), then its auths. */
static int creds_from_file(struct te_reg_creds *out, const char *path,
                           const char *host, long helper_timeout_ms,
                           te_error *err)
{
	te_buf text = TE_BUF_INIT(CONFIG_JSON_MAX);
	struct te_reg_creds fromfile = {0};
	char helper[TE_REG_HELPER_NAME_MAX];
	bool missing = false;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = read_file(&text, &missing, path, err);
	if (rc < 0 || missing)
		goto done;
	rc = te_reg__config_lookup(&fromfile, helper, text.ptr, text.len, host,
	                           err);
	if (rc < 0) {
		te_error_wrap(err, "%s", path);
		goto done;
	}
	if (helper[0]) {
		rc =
		    te_reg__helper_get(out, helper, te_reg__helper_server(host),
		                       helper_timeout_ms, err);
		if (rc < 0 || !te_reg__creds_empty(out))
			goto done;
	}
	*out = fromfile;
	memset(&fromfile, 0, sizeof(fromfile));
done:
	te_reg__creds_clear(&fromfile);
	if (text.len)
		OPENSSL_cleanse(text.ptr, text.len);
	te_buf_dispose(&text);
	return rc;
}

int te_reg__creds_resolve(struct te_reg_creds *out, const char *docker_dir,
                          const char *const *auth_files, size_t nauth_files,
                          const char *host, long helper_timeout_ms,
                          te_error *err)
{
	te_buf path = TE_BUF_INIT(4096);
	size_t i;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (docker_dir && docker_dir[0]) {
		rc = te_buf_printf(&path, err, "%s/config.json", docker_dir);
		if (rc == 0)
			rc = creds_from_file(out, path.ptr, host,
			                     helper_timeout_ms, err);
		if (rc < 0 || !te_reg__creds_empty(out))
			goto done;
	}
	for (i = 0; i < nauth_files; i++) {
		if (!auth_files[i] || !auth_files[i][0])
			continue;
		rc = creds_from_file(out, auth_files[i], host,
		                     helper_timeout_ms, err);
		if (rc < 0 || !te_reg__creds_empty(out))
			goto done;
	}
done:
	if (rc < 0)
		te_reg__creds_clear(out);
	te_buf_dispose(&path);
	return rc;
}

/* ---- certs.d ---- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One HOST:PORT directory: sorted so the chosen pair is stable. */
static int certs_dir(te_buf *ca_pem, char **cert, char **key, const char *dir,
                     te_error *err)
{
	te_buf p = TE_BUF_INIT(4096);
	DIR *d = NULL;
	struct dirent *de;
	char *names[256];
	size_t n = 0, i;
	bool missing;
	int rc = 0;

	d = opendir(dir);
	if (!d)
		return 0; /* nothing configured for this host */
	while ((de = readdir(d)) != NULL && n < 256) {
		if (de->d_name[0] == '.')
			continue;
		names[n] = te_strdup(de->d_name, err);
		if (!names[n]) {
			rc = TE_ENOMEM;
			goto done;
		}
		n++;
	}
	qsort(names, n, sizeof(names[0]), cmp_names);
	for (i = 0; i < n; i++) {
		te_buf_clear(&p);
		rc = te_buf_printf(&p, err, "%s/%s", dir, names[i]);
		if (rc < 0)
			goto done;
		if (ends_with(names[i], ".crt")) {
			te_buf one = TE_BUF_INIT(CERT_FILE_MAX);

			rc = read_file(&one, &missing, p.ptr, err);
			if (rc == 0 && one.len)
				rc = te_buf_put(ca_pem, one.ptr, one.len, err);
			if (rc == 0)
				rc = te_buf_puts(ca_pem, "\n", err);
			te_buf_dispose(&one);
			if (rc < 0)
				goto done;
		} else if (ends_with(names[i], ".cert") && !*cert) {
			te_buf k = TE_BUF_INIT(4096);
			struct stat st;

			rc = te_buf_put(&k, p.ptr, p.len - 5, err);
			if (rc == 0)
				rc = te_buf_puts(&k, ".key", err);
			if (rc == 0 && stat(k.ptr, &st) == 0) {
				*cert = te_strdup(p.ptr, err);
				*key = te_buf_detach(&k);
				if (!*cert || !*key)
					rc = TE_ENOMEM;
			} else if (rc == 0) {
				rc = te_error_set(err, TE_EINVALID,
				                  "%s has no matching .key",
				                  p.ptr);
			}
			te_buf_dispose(&k);
			if (rc < 0)
				goto done;
		}
	}
done:
	for (i = 0; i < n; i++)
		free(names[i]);
	if (d)
		closedir(d);
	te_buf_dispose(&p);
	return rc;
}

int te_reg__certs_find(te_buf *ca_pem, char **client_cert, char **client_key,
                       const char *const *roots, size_t nroots,
                       const char *host, te_error *err)
{
	te_buf dir = TE_BUF_INIT(4096);
	size_t i;
	int rc = 0;

	*client_cert = *client_key = NULL;
	for (i = 0; i < nroots; i++) {
		if (!roots[i] || !roots[i][0])
			continue;
		te_buf_clear(&dir);
		rc = te_buf_printf(&dir, err, "%s/%s", roots[i], host);
		if (rc == 0)
			rc = certs_dir(ca_pem, client_cert, client_key, dir.ptr,
			               err);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		free(*client_cert);
		free(*client_key);
		*client_cert = *client_key = NULL;
	}
	te_buf_dispose(&dir);
	return rc;
}

/* ---- auth.json for child processes ---- */

static int b64_userpass(char **out, const char *user, const char *pass,
                        te_error *err)
{
	size_t ul = strlen(user), pl = strlen(pass), n = ul + 1 + pl;
	unsigned char *in = malloc(n + 1);
	char *enc = malloc(TE_BASE64_LEN(n) + 1);
	int rc = 0;

	if (!in || !enc) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	memcpy(in, user, ul);
	in[ul] = ':';
	memcpy(in + ul + 1, pass, pl);
	te_base64_encode(enc, in, n);
	*out = enc;
	enc = NULL;
done:
	if (in) {
		OPENSSL_cleanse(in, n);
		free(in);
	}
	free(enc);
	return rc;
}

static int authfile_entry(json_t *auths, const char *host,
                          const struct te_reg_creds *c, te_error *err)
{
	json_t *e = json_object();
	char *b64 = NULL;
	int rc = 0;

	if (!e)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if (c->user) {
		rc = b64_userpass(&b64, c->user, c->pass ? c->pass : "", err);
		if (rc == 0 && json_object_set_new(e, "auth", json_string(b64)))
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
	}
	if (rc == 0 && c->identity_token &&
	    json_object_set_new(e, "identitytoken",
	                        json_string(c->identity_token)))
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
	if (rc == 0 && c->registry_token &&
	    json_object_set_new(e, "registrytoken",
	                        json_string(c->registry_token)))
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
	if (rc == 0 && json_object_set(auths, host, e))
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
	if (b64) {
		OPENSSL_cleanse(b64, strlen(b64));
		free(b64);
	}
	json_decref(e);
	return rc;
}

int te_registry_authfile_write(const char *path, const char *const *hosts,
                               size_t nhosts, const te_registry_opts *opts,
                               te_error *err)
{
	json_t *root = json_object(), *auths = json_object();
	struct te_reg_creds c = {0};
	char *text = NULL;
	long helper_timeout = opts && opts->helper_timeout_ms > 0
	                          ? opts->helper_timeout_ms
	                          : 10000;
	size_t i, len;
	int fd = -1, rc = 0;

	if (!root || !auths || json_object_set(root, "auths", auths)) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < nhosts; i++) {
		if (!hosts[i] || json_object_get(auths, hosts[i]))
			continue;
		rc = te_reg__creds_resolve(
		    &c, opts ? opts->docker_config_dir : NULL,
		    opts ? opts->auth_files : NULL,
		    opts ? opts->nauth_files : 0, hosts[i], helper_timeout,
		    err);
		if (rc == 0 && !te_reg__creds_empty(&c))
			rc = authfile_entry(auths, hosts[i], &c, err);
		te_reg__creds_clear(&c);
		if (rc < 0)
			goto done;
	}
	text = json_dumps(root, JSON_COMPACT);
	if (!text) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	len = strlen(text);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "write %s", path);
		if (fd >= 0)
			unlink(path);
	}
done:
	if (fd >= 0)
		close(fd);
	if (text) {
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	json_decref(auths);
	json_decref(root);
	return rc;
}
