/*
 * build.c - build an image with buildah and push it.
 *
 * Three buildah runs, each a fork + execvpe of an argv built here (never a
 * shell):
 *
 *   buildah <global> build --isolation chroot --layers=false --force-rm
 *           --identity-label=false --format docker -f <dockerfile> [--target T]
 * [--build-arg A=B]..
 *           [--platform P] [--label k=v].. --tag <local> [--authfile F]
 *           [--tls-verify=false] <context>
 *   buildah <global> push [--authfile F] [--tls-verify=false]
 *           --digestfile <job>/digest <local> docker://<image_ref>
 *   buildah <global> rmi <local>                  (best effort)
 *
 * with <global> = --root <state>/buildah/root --runroot <state>/buildah/run
 * --storage-driver vfs.  --format docker gives the Docker v2s2 manifests
 * and configs werf's own builds produce (OCI would drop HEALTHCHECK);
 * --identity-label=false keeps buildah's io.buildah.version label out of
 * exported images; --force-rm drops the working container of a failed
 * build (a full rootfs copy under vfs).
 *
 * Each job gets a private directory <state>/buildah/jobs/XXXXXX holding
 * the digest file and, for insecure hosts, a registries.conf handed to the
 * child through CONTAINERS_REGISTRIES_CONF.  The child environment is
 * built before fork: after fork in a threaded process only
 * async-signal-safe calls are allowed (te_proc_spawn, proc.c: the child
 * only dup2s, closes fds, setpgid()s and execs).
 *
 * buildah's stdout and stderr share one pipe; every line goes to the log
 * at debug level and the last TE_BUILD_TAIL_LINES are kept for the error
 * message.
 */
#include "tagexport/build.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_int.h"
#include "tagexport/buf.h"
#include "tagexport/fs.h"

#define TE_BUILD_TAIL_LINES 20
#define TE_BUILD_LINE_MAX 400

struct run_output {
	const te_log *log;
	char tail[TE_BUILD_TAIL_LINES][TE_BUILD_LINE_MAX];
	size_t ntail; /* lines stored so far (ring index = ntail % N) */
	char line[TE_BUILD_LINE_MAX];
	size_t linelen;
	bool auth_failure; /* the output mentioned a refused credential */
};

static void output_line(struct run_output *o)
{
	char *dst;
	size_t i;

	o->line[o->linelen] = '\0';
	for (i = 0; i < o->linelen; i++)
		if ((unsigned char)o->line[i] < 0x20 && o->line[i] != '\t')
			o->line[i] = ' ';
	if (o->linelen == 0)
		return;
	te_log_emit(o->log, TE_LOG_DEBUG, "buildah: %s", o->line);
	if (strstr(o->line, "unauthorized") ||
	    strstr(o->line, "authentication required") ||
	    strstr(o->line, "denied"))
		o->auth_failure = true;
	dst = o->tail[o->ntail % TE_BUILD_TAIL_LINES];
	memcpy(dst, o->line, o->linelen + 1);
	o->ntail++;
	o->linelen = 0;
}

static void output_feed(struct run_output *o, const char *data, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (data[i] == '\n' || data[i] == '\r') {
			output_line(o);
			o->linelen = 0;
		} else if (o->linelen < TE_BUILD_LINE_MAX - 1) {
			o->line[o->linelen++] = data[i];
		}
	}
}

/* The last lines, newest last, " | "-joined, cut from the front to fit. */
static void output_tail(char *out, size_t outsz, const struct run_output *o)
{
	size_t n =
	    o->ntail < TE_BUILD_TAIL_LINES ? o->ntail : TE_BUILD_TAIL_LINES;
	size_t first = o->ntail - n, i, len = 0, take = 0;

	out[0] = '\0';
	/* Count how many of the newest lines fit. */
	for (i = o->ntail; i > first; i--) {
		size_t l = strlen(o->tail[(i - 1) % TE_BUILD_TAIL_LINES]) + 3;

		if (len + l >= outsz)
			break;
		len += l;
		take++;
	}
	if (take == 0 && n) {
		snprintf(out, outsz, "%s",
		         o->tail[(o->ntail - 1) % TE_BUILD_TAIL_LINES]);
		return;
	}
	len = 0;
	for (i = o->ntail - take; i < o->ntail; i++) {
		int w =
		    snprintf(out + len, outsz - len, "%s%s", len ? " | " : "",
		             o->tail[i % TE_BUILD_TAIL_LINES]);

		if (w < 0 || (size_t)w >= outsz - len)
			break;
		len += (size_t)w;
	}
}

/*
 * Run argv with envp; output goes to o.  *status_out gets the wait status.
 * Returns <0 only when the program could not be run at all.
 */
static int run(int *status_out, char *const *argv, char *const *envp,
               struct run_output *o, te_error *err)
{
	struct te_proc_opts po = TE_PROC_OPTS_INIT;
	int out[2] = {-1, -1};
	char buf[4096];
	pid_t pid = -1;
	int status = 0, rc = 0;
	ssize_t n;

	if (pipe2(out, O_CLOEXEC) < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "pipe");
		goto done;
	}
	po.argv = argv;
	po.envp = envp;
	po.stdout_fd = out[1];
	po.stderr_fd = out[1];
	po.new_pgrp = true;
	if ((rc = te_proc_spawn(&pid, &po, err)) < 0)
		goto done;
	close(out[1]);
	out[1] = -1;
	for (;;) {
		n = read(out[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		output_feed(o, buf, (size_t)n);
	}
	if (o->linelen)
		output_line(o);
	if ((rc = te_proc_wait(&status, pid, -1, err)) < 0)
		goto done;
	*status_out = status;
done:
	if (out[0] >= 0)
		close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
	return rc;
}

/* Run and turn a failed exit into code with "<what> failed (...)". */
static int run_checked(char *const *argv, char *const *envp, const te_log *log,
                       te_code code, const char *what, te_error *err)
{
	struct run_output *o;
	char tail[TE_ERROR_MSG_MAX];
	int status = 0, rc;

	o = calloc(1, sizeof(*o));
	if (!o)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	o->log = log;
	if ((rc = run(&status, argv, envp, o, err)) < 0)
		goto done;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		goto done;
	output_tail(tail, sizeof(tail) - 80, o);
	if (code == TE_ENET && o->auth_failure)
		code = TE_EAUTH;
	if (WIFSIGNALED(status))
		rc = te_error_set(err, code, "%s failed (signal %d): %s", what,
		                  WTERMSIG(status), tail);
	else
		rc = te_error_set(err, code, "%s failed (exit %d): %s", what,
		                  WEXITSTATUS(status), tail);
done:
	free(o);
	return rc;
}

static int mkdir_p(const char *path, te_error *err)
{
	te_buf b = TE_BUF_INIT(4096);
	char *p;
	int rc;

	if ((rc = te_buf_puts(&b, path, err)) < 0)
		goto done;
	for (p = b.ptr + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(b.ptr, 0700) < 0 && errno != EEXIST) {
			rc = te_error_set_errno(err, TE_EIO, errno,
			                        "creating '%s'", b.ptr);
			goto done;
		}
		*p = '/';
	}
	if (mkdir(b.ptr, 0700) < 0 && errno != EEXIST)
		rc = te_error_set_errno(err, TE_EIO, errno, "creating '%s'",
		                        b.ptr);
done:
	te_buf_dispose(&b);
	return rc;
}

static int write_file(const char *path, const char *data, size_t len,
                      te_error *err)
{
	int fd = open(
	    path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return te_error_set_errno(err, TE_EIO, errno, "creating '%s'",
		                          path);
	if (te_fs_write_all(fd, data, len) < 0) {
		int e = errno;

		close(fd);
		return te_error_set_errno(err, TE_EIO, e, "writing '%s'", path);
	}
	if (close(fd) < 0)
		return te_error_set_errno(err, TE_EIO, errno, "writing '%s'",
		                          path);
	return 0;
}

/* A host[:port] fit for a TOML string: no quotes, spaces or controls. */
static bool plain_host(const char *h)
{
	if (!*h)
		return false;
	for (; *h; h++)
		if (!isalnum((unsigned char)*h) && !strchr(".-:[]_", *h))
			return false;
	return true;
}

static int write_registries_conf(const char *path, const te_build_opts *opts,
                                 te_error *err)
{
	te_buf conf = TE_BUF_INIT(65536);
	size_t i;
	int rc;

	/* No short-name search: "FROM busybox" must not reach the network. */
	if ((rc = te_buf_puts(&conf, "unqualified-search-registries = []\n",
	                      err)) < 0)
		goto done;
	for (i = 0; i < opts->ninsecure_hosts; i++) {
		const char *h = opts->insecure_hosts[i];

		if (!plain_host(h)) {
			rc = te_error_set(err, TE_EINVALID,
			                  "invalid insecure registry host '%s'",
			                  h);
			goto done;
		}
		if ((rc = te_buf_printf(&conf, err,
		                        "\n[[registry]]\nlocation = \"%s\"\n"
		                        "insecure = true\n",
		                        h)) < 0)
			goto done;
	}
	rc = write_file(path, conf.ptr, conf.len, err);
done:
	te_buf_dispose(&conf);
	return rc;
}

/* environ plus the entries in extra (which win). */
static int make_env(te_strvec *env, const char *const *extra, size_t nextra,
                    te_error *err)
{
	char **e;
	size_t i;
	int rc;

	for (e = environ; e && *e; e++) {
		bool shadowed = false;

		for (i = 0; i < nextra; i++) {
			size_t k = strcspn(extra[i], "=") + 1;

			if (strncmp(*e, extra[i], k) == 0)
				shadowed = true;
		}
		if (!shadowed && (rc = te_strvec_push(env, *e, err)) < 0)
			return rc;
	}
	for (i = 0; i < nextra; i++)
		if ((rc = te_strvec_push(env, extra[i], err)) < 0)
			return rc;
	if (!env->items) /* an empty, still NULL-terminated environment */
		return te_strvec_push(env, "TE_EMPTY_ENV=1", err);
	return 0;
}

static int global_args(te_strvec *argv, const te_build_opts *opts,
                       te_error *err)
{
	int rc;

	if ((rc = te_strvec_push(
	         argv, opts->buildah ? opts->buildah : "buildah", err)) < 0 ||
	    (rc = te_strvec_push(argv, "--root", err)) < 0 ||
	    (rc = te_strvec_pushf(argv, err, "%s/buildah/root",
	                          opts->state_dir)) < 0 ||
	    (rc = te_strvec_push(argv, "--runroot", err)) < 0 ||
	    (rc = te_strvec_pushf(argv, err, "%s/buildah/run",
	                          opts->state_dir)) < 0 ||
	    (rc = te_strvec_push(argv, "--storage-driver", err)) < 0 ||
	    (rc = te_strvec_push(argv, "vfs", err)) < 0)
		return rc;
	return 0;
}

static int registry_args(te_strvec *argv, const te_build_opts *opts,
                         te_error *err)
{
	int rc;

	if (opts->authfile &&
	    ((rc = te_strvec_push(argv, "--authfile", err)) < 0 ||
	     (rc = te_strvec_push(argv, opts->authfile, err)) < 0))
		return rc;
	if (opts->skip_tls_verify &&
	    (rc = te_strvec_push(argv, "--tls-verify=false", err)) < 0)
		return rc;
	return 0;
}

static int build_argv(te_strvec *argv, const te_build_opts *opts,
                      const char *local, te_error *err)
{
	size_t i;
	int rc;

	if ((rc = global_args(argv, opts, err)) < 0 ||
	    (rc = te_strvec_push(argv, "build", err)) < 0 ||
	    (rc = te_strvec_push(argv, "--isolation", err)) < 0 ||
	    (rc = te_strvec_push(argv, "chroot", err)) < 0 ||
	    (rc = te_strvec_push(argv, "--layers=false", err)) < 0 ||
	    (rc = te_strvec_push(argv, "--force-rm", err)) < 0 ||
	    (rc = te_strvec_push(argv, "--identity-label=false", err)) < 0 ||
	    (rc = te_strvec_push(argv, "--format", err)) < 0 ||
	    (rc = te_strvec_push(argv, "docker", err)) < 0 ||
	    (rc = te_strvec_push(argv, "-f", err)) < 0)
		return rc;
	if (opts->dockerfile[0] == '/')
		rc = te_strvec_push(argv, opts->dockerfile, err);
	else
		rc = te_strvec_pushf(argv, err, "%s/%s", opts->context_dir,
		                     opts->dockerfile);
	if (rc < 0)
		return rc;
	if (opts->target &&
	    ((rc = te_strvec_push(argv, "--target", err)) < 0 ||
	     (rc = te_strvec_push(argv, opts->target, err)) < 0))
		return rc;
	for (i = 0; i < opts->nbuild_args; i++)
		if ((rc = te_strvec_push(argv, "--build-arg", err)) < 0 ||
		    (rc = te_strvec_push(argv, opts->build_args[i], err)) < 0)
			return rc;
	if (opts->platform &&
	    ((rc = te_strvec_push(argv, "--platform", err)) < 0 ||
	     (rc = te_strvec_push(argv, opts->platform, err)) < 0))
		return rc;
	for (i = 0; opts->labels && i < te_labels_count(opts->labels); i++)
		if ((rc = te_strvec_push(argv, "--label", err)) < 0 ||
		    (rc = te_strvec_pushf(
		         argv, err, "%s=%s", te_labels_key(opts->labels, i),
		         te_labels_value(opts->labels, i))) < 0)
			return rc;
	if ((rc = te_strvec_push(argv, "--tag", err)) < 0 ||
	    (rc = te_strvec_push(argv, local, err)) < 0 ||
	    (rc = registry_args(argv, opts, err)) < 0)
		return rc;
	/* "--" so a context path can never be read as a flag. */
	if ((rc = te_strvec_push(argv, "--", err)) < 0 ||
	    (rc = te_strvec_push(argv, opts->context_dir, err)) < 0)
		return rc;
	return 0;
}

static int read_digest(char digest_out[72], const char *path, te_error *err)
{
	char buf[128];
	size_t len = 0, i;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return te_error_set_errno(err, TE_EIO, errno,
		                          "reading push digest");
	while (len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	buf[len] = '\0';
	if (len != 71 || strncmp(buf, "sha256:", 7) != 0)
		goto bad;
	for (i = 7; i < len; i++)
		if (!isxdigit((unsigned char)buf[i]) ||
		    isupper((unsigned char)buf[i]))
			goto bad;
	memcpy(digest_out, buf, 72);
	return 0;
bad:
	return te_error_set(err, TE_EBUILD,
	                    "buildah push wrote an invalid digest");
}

static int remove_job_dir(const char *dir, const char *const *names, size_t n)
{
	te_buf p = TE_BUF_INIT(8192);
	te_error err = TE_ERROR_INIT;
	size_t i;

	for (i = 0; i < n; i++) {
		te_buf_clear(&p);
		if (te_buf_printf(&p, &err, "%s/%s", dir, names[i]) == 0)
			unlink(p.ptr);
	}
	te_buf_dispose(&p);
	return rmdir(dir);
}

int te_build_and_push(char digest_out[72], const te_build_opts *opts,
                      te_error *err)
{
	static const char *const job_files[] = {"digest", "registries.conf"};
	te_strvec argv = TE_STRVEC_INIT, env = TE_STRVEC_INIT;
	te_buf path = TE_BUF_INIT(8192);
	char *job = NULL, *local = NULL, *conf = NULL, *digestfile = NULL;
	char *envextra[1];
	const char *suffix;
	bool built = false;
	size_t i, nextra = 0;
	int rc;

	digest_out[0] = '\0';
	if (!opts || !opts->state_dir || !opts->context_dir ||
	    !opts->dockerfile || !opts->image_ref || !*opts->image_ref)
		return te_error_set(err, TE_EINVALID,
		                    "build needs state dir, context, "
		                    "dockerfile and image reference");

	/* Private job directory. */
	if ((rc = te_buf_printf(&path, err, "%s/buildah/jobs",
	                        opts->state_dir)) < 0 ||
	    (rc = mkdir_p(path.ptr, err)) < 0 ||
	    (rc = te_buf_puts(&path, "/XXXXXX", err)) < 0)
		goto done;
	if (!mkdtemp(path.ptr)) {
		rc = te_error_set_errno(err, TE_EIO, errno, "creating '%s'",
		                        path.ptr);
		goto done;
	}
	job = te_buf_detach(&path);
	te_buf_init(&path, 8192);
	if (!job) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	suffix = strrchr(job, '/') + 1;
	if ((rc = te_buf_puts(&path, "localhost/tagexport-build:", err)) < 0)
		goto done;
	for (i = 0; suffix[i]; i++) {
		char c = (char)tolower((unsigned char)suffix[i]);

		if ((rc = te_buf_put(&path, &c, 1, err)) < 0)
			goto done;
	}
	local = te_buf_detach(&path);
	te_buf_init(&path, 8192);
	if (!local) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	if ((rc = te_buf_printf(&path, err, "%s/digest", job)) < 0)
		goto done;
	digestfile = te_buf_detach(&path);
	te_buf_init(&path, 8192);
	if (!digestfile) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}

	if (opts->ninsecure_hosts) {
		if ((rc = te_buf_printf(&path, err, "%s/registries.conf",
		                        job)) < 0)
			goto done;
		conf = te_buf_detach(&path);
		te_buf_init(&path, 8192);
		if (!conf) {
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
			goto done;
		}
		if ((rc = write_registries_conf(conf, opts, err)) < 0 ||
		    (rc = te_buf_printf(&path, err,
		                        "CONTAINERS_REGISTRIES_CONF=%s",
		                        conf)) < 0)
			goto done;
		envextra[nextra++] = path.ptr;
	}
	if ((rc = make_env(&env, (const char *const *)envextra, nextra, err)) <
	    0)
		goto done;

	/* build */
	if ((rc = build_argv(&argv, opts, local, err)) < 0)
		goto done;
	te_log_emit(&opts->log, TE_LOG_INFO, "building %s", opts->image_ref);
	rc = run_checked(argv.items, env.items, &opts->log, TE_EBUILD,
	                 "buildah build", err);
	if (rc < 0)
		goto done;
	built = true;

	/* push */
	te_strvec_dispose(&argv);
	if ((rc = global_args(&argv, opts, err)) < 0 ||
	    (rc = te_strvec_push(&argv, "push", err)) < 0 ||
	    (rc = registry_args(&argv, opts, err)) < 0 ||
	    (rc = te_strvec_push(&argv, "--digestfile", err)) < 0 ||
	    (rc = te_strvec_push(&argv, digestfile, err)) < 0 ||
	    (rc = te_strvec_push(&argv, "--", err)) < 0 ||
	    (rc = te_strvec_push(&argv, local, err)) < 0 ||
	    (rc = te_strvec_pushf(&argv, err, "docker://%s", opts->image_ref)) <
	        0)
		goto done;
	te_log_emit(&opts->log, TE_LOG_INFO, "pushing %s", opts->image_ref);
	rc = run_checked(argv.items, env.items, &opts->log, TE_ENET,
	                 "buildah push", err);
	if (rc < 0)
		goto done;
	rc = read_digest(digest_out, digestfile, err);
done:
	if (built) {
		te_error ignored = TE_ERROR_INIT;

		/* best effort: the image stays in the local store otherwise */
		te_strvec_dispose(&argv);
		if (global_args(&argv, opts, &ignored) == 0 &&
		    te_strvec_push(&argv, "rmi", &ignored) == 0 &&
		    te_strvec_push(&argv, local, &ignored) == 0 &&
		    run_checked(argv.items, env.items, &opts->log, TE_EIO,
		                "buildah rmi", &ignored) < 0)
			te_log_emit(&opts->log, TE_LOG_WARN,
			            "removing local image: %s", ignored.msg);
	}
	if (job)
		remove_job_dir(job, job_files,
		               sizeof(job_files) / sizeof(job_files[0]));
	te_strvec_dispose(&argv);
	te_strvec_dispose(&env);
	te_buf_dispose(&path);
	free(job);
	free(local);
	free(conf);
	free(digestfile);
	return rc;
}
