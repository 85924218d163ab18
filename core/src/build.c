/*
 * build.c - build an image with buildah and push it.
 *
 * Three buildah runs, each a fork + execvpe of an argv built here (never a
 * shell):
 *
 *   buildah <global> build <isolation> --layers=<bool> --force-rm
 *           --identity-label=false --format docker -f <job>/Dockerfile
 *           --ignorefile <job>/ignore [--add-host H:IP].. [--target T]
 *           [--build-arg A=B].. [--platform P] [--label k=v]..
 *           [--ssh ID=SOURCE] [--secret id=ID,src=<job>/secrets/ID,
 *           type=file].. [--volume HOST:CTR[:OPTS]].. --tag <local>
 *           [--authfile F]
 *           [--tls-verify=false] -- <context>
 *   buildah <global> push [--authfile F] [--tls-verify=false]
 *           --digestfile <job>/digest <local> docker://<image_ref>
 *   buildah <global> rmi <local>     (best effort; not with --layers)
 *
 * With a config edit (edit_config), between build and push:
 *
 *   buildah <global> push --quiet -- <local> dir:<job>/image
 *   (the config file there is rewritten, manifest.json updated)
 *   buildah <global> pull --quiet -- dir:<job>/image
 *
 * and the push sends the pulled image (its ID is the new config's
 * digest), so no image with the unedited config leaves the machine.
 * Secret values live in <job>/secrets (0700, files 0600) for the build
 * only.
 *
 * with <global> = --root <state>/buildah/root --runroot <state>/buildah/run
 * (root-chroot and run-chroot for chroot isolation: a store of its own)
 * --storage-driver <overlay|vfs> (te_build_storage_driver: one driver per
 * store, recorded in the state dir).  --layers=true (opts->layers) keeps
 * buildah's layer cache in that store between builds; buildah looks a
 * cached layer up by its parent, the instruction and, for COPY/ADD, the
 * digest of the copied content, so the cache never stands in for content
 * the context does not hold (buildah-build(1), --layers).  --format docker
 * gives the Docker v2s2 manifests and configs werf's own builds produce (OCI
 * would drop HEALTHCHECK);
 * --identity-label=false keeps buildah's io.buildah.version label out of
 * exported images; --force-rm drops the working container of a failed
 * build (a full rootfs copy under vfs).
 *
 * <isolation> is, by default (buildah-build(1), --isolation, --runtime,
 * --network, --pid, --ipc, --uts, --userns-uid-map):
 *
 *   --isolation oci --runtime <runc> --runtime-flag root=<job>/runc
 *   --pid private --ipc private --uts private --network private|none
 *   [--userns-uid-map 0:100000:65536 --userns-gid-map 0:100000:65536]
 *
 * (network none with a user namespace: --userns /proc/P/ns/user
 * --network ns:/proc/P/ns/net of a process holding both, see
 * struct ns_holder)
 *
 * Every RUN is a runc container with its own namespaces; the private
 * network is buildah's default (CNI) bridge, so a RUN reaches the outside
 * but not the machine's loopback services.  The user namespace is used
 * when the kernel lets us create one (probed before each build).
 * "--isolation chroot" (opt-in only) is no boundary at all: a RUN can
 * escape the chroot and read the machine.
 *
 * The Dockerfile buildah reads is <job>/Dockerfile, written from the bytes
 * tagexport hashed, outside the context: its name never ends in ".in", so
 * buildah never runs cpp on it.  --ignorefile points at an empty file, so
 * a .dockerignore or .containerignore in the context changes nothing: the
 * context holds exactly the files the content-based tag covers.
 *
 * The build is time-limited.  On expiry buildah gets SIGTERM (it stops the
 * running container and, with --force-rm, removes its working container),
 * then after a grace period SIGKILL for its whole process group; a runc
 * container then still alive (runc puts it in its own session) is deleted
 * through the job's own runc state root, which holds only this build's
 * containers.
 *
 * Each job gets a private directory <state>/buildah/jobs/XXXXXX holding
 * the Dockerfile, the empty ignore file, the runc root, the digest file
 * and, for insecure hosts, a registries.conf handed to the child through
 * CONTAINERS_REGISTRIES_CONF.  The child environment is built before fork:
 * after fork in a threaded process only async-signal-safe calls are
 * allowed (te_proc_spawn, proc.c: the child only dup2s, closes fds,
 * setpgid()s and execs).
 *
 * buildah's stdout and stderr share one pipe; every line goes to the log
 * at debug level and the last TE_BUILD_TAIL_LINES are kept for the error
 * message.
 */
#include "tagexport/build.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc_int.h"
#include "tagexport/buf.h"
#include "tagexport/fs.h"
#include "tagexport/image.h"

#define TE_BUILD_TAIL_LINES 20
#define TE_BUILD_LINE_MAX 400
/* After SIGTERM, how long buildah gets to stop its container. */
#define TE_BUILD_GRACE_MS 15000
/* The user namespace of RUN: container root is host uid 100000, never
 * host root (user_namespaces(7)). */
#define TE_BUILD_USERNS_MAP "0:100000:65536"

struct run_output {
	const te_log *log;
	char tail[TE_BUILD_TAIL_LINES][TE_BUILD_LINE_MAX];
	size_t ntail; /* lines stored so far (ring index = ntail % N) */
	char line[TE_BUILD_LINE_MAX];
	size_t linelen;
	bool auth_failure; /* the output mentioned a refused credential */
	bool pull_failure; /* a base image could not be fetched */
	bool pull_missing; /* ... because it does not exist */
};

static bool has_any(const char *s, const char *const *needles)
{
	for (; *needles; needles++)
		if (strstr(s, *needles))
			return true;
	return false;
}

/* buildah's FROM pull fails with "creating build container: ..." and the
 * error of containers/image; a missing image is permanent, the rest
 * (refused connections, DNS, TLS, 5xx) is the network. */
static void classify_line(struct run_output *o, const char *line)
{
	static const char *const auth[] = {
	    "unauthorized", "authentication required", "denied", NULL};
	static const char *const missing[] = {"manifest unknown",
	                                      "name unknown", "not found",
	                                      "no image found", NULL};

	if (has_any(line, auth))
		o->auth_failure = true;
	if (!strstr(line, "creating build container"))
		return;
	o->pull_failure = true;
	if (has_any(line, missing))
		o->pull_missing = true;
}

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
	classify_line(o, o->line);
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

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The limits of one run: deadline_ms is CLOCK_MONOTONIC, 0 = none;
 * cancel, when set and non-zero, stops the run like an expiry. */
struct run_limit {
	int64_t deadline_ms;
	const atomic_int *cancel;
	bool expired;   /* out: the time ran out and the run was killed */
	bool cancelled; /* out: cancel was raised and the run was killed */
};

/* How often a run watches its cancel flag. */
#define TE_BUILD_CANCEL_POLL_MS 100

/* SIGTERM now (buildah stops its container and cleans up), SIGKILL for
 * the group once the grace period is over. */
static void terminate(pid_t pid, struct run_limit *lim, bool *terminated)
{
	kill(pid, SIGTERM);
	*terminated = true;
	lim->deadline_ms = now_ms() + TE_BUILD_GRACE_MS;
}

/*
 * Wait for output until the limit runs out or cancel is raised; then
 * terminate().  Returns false when reading should stop (the group was
 * killed: an orphan holding the pipe must not keep us waiting).
 */
static bool wait_readable(int fd, pid_t pid, struct run_limit *lim,
                          bool *terminated)
{
	struct pollfd pfd = {fd, POLLIN, 0};
	int64_t left;
	int n;

	if (!lim || (!lim->deadline_ms && !lim->cancel))
		return true;
	for (;;) {
		if (!*terminated && lim->cancel && atomic_load(lim->cancel)) {
			lim->cancelled = true;
			terminate(pid, lim, terminated);
		}
		left = lim->deadline_ms ? lim->deadline_ms - now_ms()
		                        : TE_BUILD_CANCEL_POLL_MS;
		if (left > 0) {
			if (lim->cancel && left > TE_BUILD_CANCEL_POLL_MS)
				left = TE_BUILD_CANCEL_POLL_MS;
			n = poll(&pfd, 1,
			         left > INT32_MAX ? INT32_MAX : (int)left);
			if (n > 0 || (n < 0 && errno != EINTR))
				return true; /* the read says what it is */
			continue;
		}
		if (*terminated) {
			te_proc_kill(pid);
			return false;
		}
		lim->expired = true;
		terminate(pid, lim, terminated);
	}
}

/*
 * Run argv with envp; output goes to o.  *status_out gets the wait status.
 * With lim, the run is killed when lim->deadline_ms passes.  Returns <0
 * only when the program could not be run at all.
 */
static int run(int *status_out, char *const *argv, char *const *envp,
               struct run_output *o, struct run_limit *lim, te_error *err)
{
	struct te_proc_opts po = TE_PROC_OPTS_INIT;
	int out[2] = {-1, -1};
	char buf[4096];
	pid_t pid = -1;
	int status = 0, rc = 0;
	bool terminated = false;
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
	po.term_with_parent = true; /* a server exit stops its builds */
	if ((rc = te_proc_spawn(&pid, &po, err)) < 0)
		goto done;
	close(out[1]);
	out[1] = -1;
	while (wait_readable(out[0], pid, lim, &terminated)) {
		n = read(out[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		output_feed(o, buf, (size_t)n);
	}
	if (o->linelen)
		output_line(o);
	if (terminated) {
		/* The rest of the grace period, then SIGKILL for the group;
		 * its "timed out" error is ours already (lim->expired). */
		int64_t left = lim->deadline_ms - now_ms();
		te_error late = TE_ERROR_INIT;

		te_proc_wait(&status, pid, left > 0 ? (int)left : 0, &late);
	} else {
		rc = te_proc_wait(&status, pid, -1, err);
	}
	if (rc < 0)
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
                       te_code code, const char *what, struct run_limit *lim,
                       te_error *err)
{
	struct run_output *o;
	char tail[TE_ERROR_MSG_MAX];
	int status = 0, rc;

	o = calloc(1, sizeof(*o));
	if (!o)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	o->log = log;
	if ((rc = run(&status, argv, envp, o, lim, err)) < 0)
		goto done;
	if (lim && lim->expired) {
		rc = TE_ETIMEDOUT; /* the caller words the message */
		goto done;
	}
	if (lim && lim->cancelled) {
		rc = te_error_set(err, TE_ERROR, "%s cancelled", what);
		goto done;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		goto done;
	output_tail(tail, sizeof(tail) - 80, o);
	if (code == TE_EBUILD && o->pull_failure && !o->pull_missing)
		code = TE_ENET; /* a base image pull: retried like the push */
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

/* Builds in a chroot get a store of their own: a layer one of them made
 * (RUN could read the machine) must never be a cached layer of an
 * isolated build, whose Dockerfile could only have seen the container. */
static int global_args(te_strvec *argv, const te_build_opts *opts,
                       te_error *err)
{
	const char *suffix =
	    opts->isolation == TE_BUILD_ISOLATION_CHROOT ? "-chroot" : "";
	int rc;

	if ((rc = te_strvec_push(
	         argv, opts->buildah ? opts->buildah : "buildah", err)) < 0 ||
	    (rc = te_strvec_push(argv, "--root", err)) < 0 ||
	    (rc = te_strvec_pushf(argv, err, "%s/buildah/root%s",
	                          opts->state_dir, suffix)) < 0 ||
	    (rc = te_strvec_push(argv, "--runroot", err)) < 0 ||
	    (rc = te_strvec_pushf(argv, err, "%s/buildah/run%s",
	                          opts->state_dir, suffix)) < 0 ||
	    (rc = te_strvec_push(argv, "--storage-driver", err)) < 0 ||
	    (rc = te_strvec_push(
	         argv, opts->storage_driver ? opts->storage_driver : "vfs",
	         err)) < 0)
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

/* Where a program is: name itself when it holds a '/', else the first
 * executable PATH entry (execvp(3)'s search) of the child environment. */
static int find_program(char **out, const char *name, const te_strvec *env,
                        te_error *err)
{
	static const char defpath[] =
	    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	te_buf cand = TE_BUF_INIT(8192);
	const char *path = defpath, *p, *end;
	size_t i;
	int rc = TE_ENOTFOUND;

	*out = NULL;
	if (strchr(name, '/')) {
		if (access(name, X_OK) != 0)
			return TE_ENOTFOUND;
		*out = te_strdup(name, err);
		return *out ? 0 : TE_ENOMEM;
	}
	for (i = 0; i < env->count; i++)
		if (strncmp(env->items[i], "PATH=", 5) == 0)
			path = env->items[i] + 5;
	for (p = path; rc == TE_ENOTFOUND && *p; p = *end ? end + 1 : end) {
		end = p + strcspn(p, ":");
		te_buf_clear(&cand);
		if (end == p)
			continue;
		if (te_buf_printf(&cand, err, "%.*s/%s", (int)(end - p), p,
		                  name) < 0)
			rc = err->code;
		else if (access(cand.ptr, X_OK) == 0)
			rc = (*out = te_buf_detach(&cand)) ? 0 : TE_ENOMEM;
	}
	if (rc == TE_ENOMEM)
		te_error_set(err, rc, "out of memory");
	te_buf_dispose(&cand);
	return rc;
}

/* Whether this process may create a user namespace: a child tries
 * unshare(CLONE_NEWUSER) (user_namespaces(7); off with
 * user.max_user_namespaces=0 or in some sandboxes).  *errno_out gets why
 * not. */
static bool userns_works(int *errno_out)
{
	int status = 0;
	pid_t pid;

	*errno_out = 0;
	pid = fork();
	if (pid < 0) {
		*errno_out = errno;
		return false;
	}
	if (pid == 0)
		_exit(unshare(CLONE_NEWUSER) == 0 ? 0 : errno & 0x7f);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return false;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return true;
	*errno_out = WIFEXITED(status) ? WEXITSTATUS(status) : EPERM;
	return false;
}

static bool no_network(const te_build_opts *opts)
{
	return opts->network && strcmp(opts->network, "none") == 0;
}

/*
 * A process holding an empty network namespace owned by a user namespace
 * with RUN's mapping.  buildah 1.28 sets up its CNI network even for
 * "--network none" when it creates the user namespace itself (buildah
 * issue 4227), so for network "none" RUN joins these two namespaces
 * instead (buildah-build(1): --userns <path>, --network ns:<path>).  The
 * namespaces live as long as the holder, which exits when release_fd is
 * closed (or its parent dies).
 */
struct ns_holder {
	pid_t pid;
	int release_fd;
};

static int write_map(pid_t pid, const char *which, te_error *err)
{
	/* TE_BUILD_USERNS_MAP in user_namespaces(7)'s uid_map format */
	static const char map[] = "0 100000 65536\n";
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, which);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || te_fs_write_all(fd, map, sizeof(map) - 1) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		return te_error_set_errno(err, TE_EIO, e, "writing %s", path);
	}
	close(fd);
	return 0;
}

/* The child: async-signal-safe calls only (it is forked from a possibly
 * threaded process). */
static void holder_child(const int ready[2], const int go[2], const int hold[2])
{
	char b = 0;

	/* Only the parent may hold the other ends: the hold pipe's EOF is
	 * what ends this process. */
	close(ready[0]);
	close(go[1]);
	close(hold[1]);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWUSER) != 0 || write(ready[1], "u", 1) != 1 ||
	    read(go[0], &b, 1) != 1 || unshare(CLONE_NEWNET) != 0 ||
	    write(ready[1], "n", 1) != 1)
		_exit(1);
	while (read(hold[0], &b, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

static int holder_start(struct ns_holder *h, te_error *err)
{
	int ready[2] = {-1, -1}, go[2] = {-1, -1}, hold[2] = {-1, -1};
	char b;
	int rc = 0;

	h->pid = -1;
	h->release_fd = -1;
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0 ||
	    pipe2(hold, O_CLOEXEC) < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "pipe");
		goto done;
	}
	h->pid = fork();
	if (h->pid < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "fork");
		goto done;
	}
	if (h->pid == 0)
		holder_child(ready, go, hold);
	close(ready[1]);
	ready[1] = -1;
	if (read(ready[0], &b, 1) != 1) {
		rc = te_error_set(err, TE_EUNSUPPORTED,
		                  "network none: cannot create a user "
		                  "namespace for RUN");
		goto done;
	}
	if ((rc = write_map(h->pid, "uid_map", err)) < 0 ||
	    (rc = write_map(h->pid, "gid_map", err)) < 0)
		goto done;
	if (write(go[1], "g", 1) != 1 || read(ready[0], &b, 1) != 1) {
		rc = te_error_set(err, TE_EUNSUPPORTED,
		                  "network none: cannot create a network "
		                  "namespace for RUN");
		goto done;
	}
	h->release_fd = hold[1];
	hold[1] = -1;
done:
	for (int i = 0; i < 2; i++) {
		if (ready[i] >= 0)
			close(ready[i]);
		if (go[i] >= 0)
			close(go[i]);
		if (hold[i] >= 0)
			close(hold[i]);
	}
	if (rc < 0 && h->pid > 0) {
		kill(h->pid, SIGKILL);
		waitpid(h->pid, NULL, 0);
		h->pid = -1;
	}
	return rc;
}

static void holder_stop(struct ns_holder *h)
{
	if (h->release_fd >= 0)
		close(h->release_fd);
	h->release_fd = -1;
	if (h->pid > 0)
		while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
			;
	h->pid = -1;
}

/* The user namespace flags of RUN as root: buildah's own, or, for network
 * none, the holder's namespaces. */
static int userns_args(te_strvec *argv, const te_build_opts *opts,
                       struct ns_holder *h, te_error *err)
{
	int rc;

	if (!no_network(opts)) {
		if ((rc = te_strvec_push(argv, "--userns-uid-map", err)) < 0 ||
		    (rc = te_strvec_push(argv, TE_BUILD_USERNS_MAP, err)) < 0 ||
		    (rc = te_strvec_push(argv, "--userns-gid-map", err)) < 0 ||
		    (rc = te_strvec_push(argv, TE_BUILD_USERNS_MAP, err)) < 0)
			return rc;
		return 0;
	}
	if ((rc = holder_start(h, err)) < 0)
		return rc;
	if ((rc = te_strvec_push(argv, "--userns", err)) < 0 ||
	    (rc = te_strvec_pushf(argv, err, "/proc/%d/ns/user", (int)h->pid)) <
	        0 ||
	    (rc = te_strvec_push(argv, "--network", err)) < 0 ||
	    (rc = te_strvec_pushf(argv, err, "ns:/proc/%d/ns/net",
	                          (int)h->pid)) < 0)
		return rc;
	return 0;
}

/* The OCI isolation flags; runtime is the runc path, job the job dir. */
static int oci_args(te_strvec *argv, const te_build_opts *opts,
                    const char *runtime, const char *job, struct ns_holder *h,
                    te_error *err)
{
	static const char *const ns[] = {"--pid", "--ipc", "--uts"};
	bool userns;
	size_t i;
	int rc, uerr = 0;

	if ((rc = te_strvec_push(argv, "oci", err)) < 0 ||
	    (rc = te_strvec_push(argv, "--runtime", err)) < 0 ||
	    (rc = te_strvec_push(argv, runtime, err)) < 0 ||
	    (rc = te_strvec_push(argv, "--runtime-flag", err)) < 0 ||
	    (rc = te_strvec_pushf(argv, err, "root=%s/runc", job)) < 0)
		return rc;
	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		if ((rc = te_strvec_push(argv, ns[i], err)) < 0 ||
		    (rc = te_strvec_push(argv, "private", err)) < 0)
			return rc;
	userns = geteuid() == 0 && userns_works(&uerr);
	if (!userns || !no_network(opts)) {
		if ((rc = te_strvec_push(argv, "--network", err)) < 0 ||
		    (rc = te_strvec_push(
		         argv, no_network(opts) ? "none" : "private", err)) < 0)
			return rc;
	}
	if (geteuid() != 0) {
		/* Rootless buildah runs everything in its own user namespace
		 * (buildah(1), rootless mode): container root is our uid. */
		te_log_emit(&opts->log, TE_LOG_INFO,
		            "isolation: oci (%s), rootless: buildah's user "
		            "namespace",
		            runtime);
		return 0;
	}
	if (!userns) {
		te_log_emit(&opts->log, TE_LOG_INFO,
		            "isolation: oci (%s), no user namespace (%s): RUN "
		            "runs as host root inside its namespaces",
		            runtime, strerror(uerr));
		return 0;
	}
	te_log_emit(&opts->log, TE_LOG_INFO,
	            "isolation: oci (%s), user namespace %s%s", runtime,
	            TE_BUILD_USERNS_MAP,
	            no_network(opts) ? ", no network" : "");
	return userns_args(argv, opts, h, err);
}

static bool labels_inline(const te_build_opts *opts);
static int secret_args(te_strvec *argv, const te_build_opts *opts,
                       const char *job, te_error *err);

static int build_argv(te_strvec *argv, const te_build_opts *opts,
                      const char *local, const char *runtime, const char *job,
                      struct ns_holder *h, te_error *err)
{
	size_t i;
	int rc;

	if ((rc = global_args(argv, opts, err)) < 0 ||
	    (rc = te_strvec_push(argv, "build", err)) < 0 ||
	    (rc = te_strvec_push(argv, "--isolation", err)) < 0)
		return rc;
	if (runtime)
		rc = oci_args(argv, opts, runtime, job, h, err);
	else if (no_network(opts))
		/* buildah ignores --network with chroot (no namespaces) */
		return te_error_set(err, TE_EUNSUPPORTED,
		                    "network \"none\" cannot be enforced with "
		                    "chroot isolation: use OCI isolation");
	else
		rc = te_strvec_push(argv, "chroot", err);
	for (i = 0; rc == 0 && i < opts->nadd_hosts; i++)
		if ((rc = te_strvec_push(argv, "--add-host", err)) == 0)
			rc = te_strvec_push(argv, opts->add_hosts[i], err);
	if (rc < 0 ||
	    (rc = te_strvec_push(
	         argv, opts->layers ? "--layers=true" : "--layers=false",
	         err)) < 0 ||
	    (rc = te_strvec_push(argv, "--force-rm", err)) < 0 ||
	    (rc = te_strvec_push(argv, "--identity-label=false", err)) < 0 ||
	    (rc = te_strvec_push(argv, "--format", err)) < 0 ||
	    (rc = te_strvec_push(argv, "docker", err)) < 0 ||
	    (rc = te_strvec_push(argv, "-f", err)) < 0 ||
	    (rc = te_strvec_pushf(argv, err, "%s/Dockerfile", job)) < 0 ||
	    (rc = te_strvec_push(argv, "--ignorefile", err)) < 0 ||
	    (rc = te_strvec_pushf(argv, err, "%s/ignore", job)) < 0)
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
	for (i = 0; opts->labels && !labels_inline(opts) &&
	            i < te_labels_count(opts->labels);
	     i++)
		if ((rc = te_strvec_push(argv, "--label", err)) < 0 ||
		    (rc = te_strvec_pushf(
		         argv, err, "%s=%s", te_labels_key(opts->labels, i),
		         te_labels_value(opts->labels, i))) < 0)
			return rc;
	if (opts->ssh_id &&
	    ((rc = te_strvec_push(argv, "--ssh", err)) < 0 ||
	     (rc = te_strvec_pushf(argv, err, "%s=%s", opts->ssh_id,
	                           opts->ssh_source)) < 0))
		return rc;
	for (i = 0; i < opts->nvolumes; i++)
		if ((rc = te_strvec_push(argv, "--volume", err)) < 0 ||
		    (rc = te_strvec_push(argv, opts->volumes[i], err)) < 0)
			return rc;
	if ((rc = secret_args(argv, opts, job, err)) < 0 ||
	    (rc = te_strvec_push(argv, "--tag", err)) < 0 ||
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

/* SIGKILL every process whose command line names the job's runc root: a
 * `runc create` or `runc start` that buildah had started when it was
 * killed runs in a session of its own and would make a container after
 * the cleanup looked (t15 in CI: a RUN's sleep outlived its timeout).
 * Returns how many it found. */
static unsigned kill_runc_of(const char *root)
{
	char path[300], cmd[8192];
	unsigned found = 0;
	struct dirent *de;
	ssize_t got, i;
	DIR *d = opendir("/proc");
	int fd;

	while (d && (de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		got = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		if (got <= 0)
			continue;
		for (i = 0; i < got; i++)
			if (!cmd[i])
				cmd[i] = ' ';
		cmd[got] = '\0';
		if (strstr(cmd, root) && strstr(cmd, "runc")) {
			kill((pid_t)atol(de->d_name), SIGKILL);
			found++;
		}
	}
	if (d)
		closedir(d);
	return found;
}

/* Delete the containers runc still knows in the job's state root (one
 * directory per container id): after a killed build, a container's
 * processes live on in their own session (runc(8) delete --force). */
static void delete_containers(const char *job, const char *runtime,
                              const te_strvec *env, const te_log *log)
{
	te_strvec argv = TE_STRVEC_INIT;
	te_error ignored = TE_ERROR_INIT;
	te_buf root = TE_BUF_INIT(8192);
	struct dirent *de;
	DIR *d;

	if (te_buf_printf(&root, &ignored, "%s/runc", job) < 0 ||
	    !(d = opendir(root.ptr))) {
		te_buf_dispose(&root);
		return;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		te_strvec_dispose(&argv);
		te_error_clear(&ignored);
		te_log_emit(log, TE_LOG_WARN, "deleting runc container %s",
		            de->d_name);
		if (te_strvec_push(&argv, runtime, &ignored) < 0 ||
		    te_strvec_push(&argv, "--root", &ignored) < 0 ||
		    te_strvec_push(&argv, root.ptr, &ignored) < 0 ||
		    te_strvec_push(&argv, "delete", &ignored) < 0 ||
		    te_strvec_push(&argv, "--force", &ignored) < 0 ||
		    te_strvec_push(&argv, "--", &ignored) < 0 ||
		    te_strvec_push(&argv, de->d_name, &ignored) < 0 ||
		    run_checked(argv.items, env->items, log, TE_EIO,
		                "runc delete", NULL, &ignored) < 0)
			te_log_emit(log, TE_LOG_WARN, "%s", ignored.msg);
	}
	closedir(d);
	if (rmdir(root.ptr) < 0 && errno != ENOENT)
		te_log_emit(log, TE_LOG_WARN, "runc state left in %s",
		            root.ptr);
	te_strvec_dispose(&argv);
	te_buf_dispose(&root);
}

/* After a build: delete what runc still knows of the job.  When the build
 * was killed or failed, a runc that was starting a container may still be
 * on its way: kill those first and look again until nothing is left
 * (bounded: 20 rounds of 100 ms). */
static void cleanup_containers(const char *job, const char *runtime,
                               const te_strvec *env, bool killed,
                               const te_log *log)
{
	te_buf root = TE_BUF_INIT(8192);
	te_error ignored = TE_ERROR_INIT;
	struct stat st;
	int round;

	delete_containers(job, runtime, env, log);
	if (!killed || te_buf_printf(&root, &ignored, "%s/runc", job) < 0) {
		te_buf_dispose(&root);
		return;
	}
	for (round = 0; round < 20; round++) {
		bool busy = kill_runc_of(root.ptr) > 0;

		delete_containers(job, runtime, env, log);
		if (!busy && stat(root.ptr, &st) < 0)
			break;
		usleep(100 * 1000);
	}
	te_buf_dispose(&root);
}

/* The runtime for OCI isolation, or NULL (*out) for chroot. */
static int pick_runtime(char **out, const te_build_opts *opts,
                        const te_strvec *env, te_error *err)
{
	const char *name = opts->runtime ? opts->runtime : "runc";
	int rc;

	*out = NULL;
	if (opts->isolation == TE_BUILD_ISOLATION_CHROOT) {
		te_log_emit(&opts->log, TE_LOG_WARN,
		            "isolation: chroot: builds are NOT isolated from "
		            "this machine (a RUN can read and change its "
		            "files); use OCI isolation for untrusted "
		            "Dockerfiles");
		return 0;
	}
	rc = find_program(out, name, env, err);
	if (rc == TE_ENOTFOUND)
		rc = te_error_set(err, TE_EUNSUPPORTED,
		                  "OCI runtime '%s' not found (PATH): builds "
		                  "run every RUN in it; install runc (Debian: "
		                  "apt-get install runc), or choose chroot "
		                  "isolation explicitly (--isolation chroot, "
		                  "not isolated from this machine)",
		                  name);
	return rc;
}

/* The job directory's fixed inputs: the Dockerfile and an empty ignore
 * file (see the top of this file). */
/* A label key or value that a double-quoted Dockerfile word holds as it
 * is: printable, no quote, no backslash, no "$" (expansion). */
static bool plain_label(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"' ||
		    *s == '\\' || *s == '$' || *s == '`')
			return false;
	return true;
}

/*
 * The labels as one LABEL instruction appended to the Dockerfile, when
 * that is sure to label the image built: no --target (the last stage is
 * built), plain labels, and a last line that does not continue (ends in
 * no escape character).  buildah turns every --label into a step of its
 * own, a commit each with --layers.
 */
static bool labels_inline(const te_build_opts *opts)
{
	const char *d = opts->dockerfile;
	size_t n = opts->dockerfile_len, i;

	if (!opts->labels || !te_labels_count(opts->labels) || opts->target)
		return false;
	for (i = 0; i < te_labels_count(opts->labels); i++)
		if (!plain_label(te_labels_key(opts->labels, i)) ||
		    !plain_label(te_labels_value(opts->labels, i)))
			return false;
	while (n && strchr(" \t\r\n", d[n - 1]))
		n--;
	return n && d[n - 1] != '\\' && d[n - 1] != '`';
}

static int write_dockerfile(const char *path, const te_build_opts *opts,
                            te_error *err)
{
	te_buf df = TE_BUF_INIT(opts->dockerfile_len + 65536);
	size_t i;
	int rc;

	if (!labels_inline(opts))
		return write_file(path, opts->dockerfile, opts->dockerfile_len,
		                  err);
	rc = te_buf_put(&df, opts->dockerfile, opts->dockerfile_len, err);
	if (rc == 0)
		rc = te_buf_puts(&df, "\nLABEL", err);
	for (i = 0; rc == 0 && i < te_labels_count(opts->labels); i++)
		rc = te_buf_printf(&df, err, " \"%s\"=\"%s\"",
		                   te_labels_key(opts->labels, i),
		                   te_labels_value(opts->labels, i));
	if (rc == 0)
		rc = te_buf_puts(&df, "\n", err);
	if (rc == 0)
		rc = write_file(path, df.ptr, df.len, err);
	te_buf_dispose(&df);
	return rc;
}

static int write_job_inputs(const char *job, const te_build_opts *opts,
                            te_error *err)
{
	te_buf p = TE_BUF_INIT(8192);
	int rc;

	if ((rc = te_buf_printf(&p, err, "%s/Dockerfile", job)) < 0 ||
	    (rc = write_dockerfile(p.ptr, opts, err)) < 0)
		goto done;
	te_buf_clear(&p);
	if ((rc = te_buf_printf(&p, err, "%s/ignore", job)) < 0 ||
	    (rc = write_file(p.ptr, "", 0, err)) < 0)
		goto done;
done:
	te_buf_dispose(&p);
	return rc;
}

/* ---- secrets: 0600 files in <job>/secrets for the build only ----------- */

static int secret_path(te_buf *out, const char *job, const char *id,
                       te_error *err)
{
	te_buf_clear(out);
	if (!*id || strpbrk(id, "/,=") || !strcmp(id, ".") || !strcmp(id, ".."))
		return te_error_set(err, TE_EINVALID, "invalid secret id");
	if (strchr(job, ','))
		return te_error_set(err, TE_EINVALID,
		                    "the state dir '%s' holds a ',': buildah's "
		                    "--secret cannot name a file there",
		                    job);
	return te_buf_printf(out, err, "%s/secrets/%s", job, id);
}

static int write_secrets(const char *job, const te_build_opts *opts,
                         te_error *err)
{
	te_buf p = TE_BUF_INIT(8192);
	size_t i;
	int rc = 0;

	if (!opts->nsecrets)
		return 0;
	if ((rc = te_buf_printf(&p, err, "%s/secrets", job)) < 0)
		goto done;
	if (mkdir(p.ptr, 0700) < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "creating '%s'",
		                        p.ptr);
		goto done;
	}
	for (i = 0; i < opts->nsecrets && rc == 0; i++) {
		const te_build_secret *s = &opts->secrets[i];

		if ((rc = secret_path(&p, job, s->id, err)) == 0)
			rc = write_file(p.ptr, s->value, s->len, err);
	}
done:
	te_buf_dispose(&p);
	return rc;
}

static void remove_secrets(const char *job, const te_build_opts *opts)
{
	te_buf p = TE_BUF_INIT(8192);
	te_error ignored = TE_ERROR_INIT;
	size_t i;

	for (i = 0; i < opts->nsecrets; i++)
		if (secret_path(&p, job, opts->secrets[i].id, &ignored) == 0)
			unlink(p.ptr);
	te_buf_clear(&p);
	if (opts->nsecrets &&
	    te_buf_printf(&p, &ignored, "%s/secrets", job) == 0)
		rmdir(p.ptr);
	te_buf_dispose(&p);
}

static int secret_args(te_strvec *argv, const te_build_opts *opts,
                       const char *job, te_error *err)
{
	te_buf p = TE_BUF_INIT(8192);
	size_t i;
	int rc = 0;

	for (i = 0; i < opts->nsecrets && rc == 0; i++) {
		const char *id = opts->secrets[i].id;

		if ((rc = secret_path(&p, job, id, err)) == 0 &&
		    (rc = te_strvec_push(argv, "--secret", err)) == 0)
			/* type=file: without it buildah 1.28 prefers an
			 * environment variable named like the id */
			rc = te_strvec_pushf(
			    argv, err, "id=%s,src=%s,type=file", id, p.ptr);
	}
	te_buf_dispose(&p);
	return rc;
}

/* ---- config edit: push to dir:, rewrite the config, pull it back ------- */

static int read_small(te_buf *out, const char *path, te_error *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	bool too_big = false;
	int rc = 0;

	if (fd < 0)
		return te_error_set_errno(err, TE_EIO, errno, "reading '%s'",
		                          path);
	if (te_fs_read_all(out, fd, &too_big) < 0)
		rc = te_error_set_errno(err, TE_EIO, errno, "reading '%s'",
		                        path);
	else if (too_big)
		rc = te_error_set(err, TE_EBUILD, "'%s' is too large", path);
	close(fd);
	return rc;
}

/* The dir: layout is flat (manifest.json, version, one file per blob). */
static void remove_flat_dir(const char *dir)
{
	te_buf p = TE_BUF_INIT(8192);
	te_error ignored = TE_ERROR_INIT;
	struct dirent *de;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		te_buf_clear(&p);
		if (te_buf_printf(&p, &ignored, "%s/%s", dir, de->d_name) == 0)
			unlink(p.ptr);
	}
	if (d)
		closedir(d);
	rmdir(dir);
	te_buf_dispose(&p);
}

/* Replace dir/<old config> with dir/<new config> and point manifest.json
 * at it (containers-transports(5), dir: one file per blob, named by its
 * hex digest). */
static int rewrite_dir(char new_hex[65], const te_build_opts *opts,
                       const char *dir, te_error *err)
{
	te_buf path = TE_BUF_INIT(8192);
	te_buf manifest = TE_BUF_INIT(TE_MANIFEST_MAX);
	te_buf config = TE_BUF_INIT(TE_CONFIG_MAX);
	te_buf edited = TE_BUF_INIT(TE_CONFIG_MAX);
	te_buf newman = TE_BUF_INIT(TE_MANIFEST_MAX);
	te_image_manifest m = {0};
	char digest[TE_DIGEST_STR_MAX];
	int rc;

	if ((rc = te_buf_printf(&path, err, "%s/manifest.json", dir)) < 0 ||
	    (rc = read_small(&manifest, path.ptr, err)) < 0 ||
	    (rc = te_image_manifest_parse(&m, manifest.ptr, manifest.len,
	                                  err)) < 0)
		goto done;
	te_buf_clear(&path);
	if ((rc = te_buf_printf(&path, err, "%s/%s", dir,
	                        m.config_digest + 7)) < 0 ||
	    (rc = read_small(&config, path.ptr, err)) < 0 ||
	    (rc = opts->edit_config(&edited, config.ptr, config.len,
	                            opts->edit_payload, err)) < 0)
		goto done;
	te_image_sha256(digest, edited.ptr, edited.len);
	memcpy(new_hex, digest + 7, 65);
	if (strcmp(digest, m.config_digest) == 0)
		goto done;
	unlink(path.ptr);
	te_buf_clear(&path);
	if ((rc = te_buf_printf(&path, err, "%s/%s", dir, new_hex)) < 0 ||
	    (rc = write_file(path.ptr, edited.ptr, edited.len, err)) < 0 ||
	    (rc = te_image_manifest_set_config(&newman, manifest.ptr,
	                                       manifest.len, digest, edited.len,
	                                       err)) < 0)
		goto done;
	te_buf_clear(&path);
	if ((rc = te_buf_printf(&path, err, "%s/manifest.json", dir)) < 0)
		goto done;
	unlink(path.ptr);
	rc = write_file(path.ptr, newman.ptr, newman.len, err);
done:
	te_image_manifest_dispose(&m);
	te_buf_dispose(&path);
	te_buf_dispose(&manifest);
	te_buf_dispose(&config);
	te_buf_dispose(&edited);
	te_buf_dispose(&newman);
	return rc;
}

/* buildah <global> push|pull -q ... */
static int run_transfer(const te_build_opts *opts, const te_strvec *env,
                        const char *verb, const char *src, const char *dst,
                        te_error *err)
{
	te_strvec argv = TE_STRVEC_INIT;
	int rc;

	if ((rc = global_args(&argv, opts, err)) == 0 &&
	    (rc = te_strvec_push(&argv, verb, err)) == 0 &&
	    (rc = te_strvec_push(&argv, "--quiet", err)) == 0 &&
	    (rc = te_strvec_push(&argv, "--", err)) == 0 &&
	    (rc = te_strvec_push(&argv, src, err)) == 0 &&
	    (!dst || (rc = te_strvec_push(&argv, dst, err)) == 0))
		rc = run_checked(argv.items, env->items, &opts->log, TE_EBUILD,
		                 strcmp(verb, "pull") ? "buildah push (local)"
		                                      : "buildah pull (local)",
		                 NULL, err);
	te_strvec_dispose(&argv);
	return rc;
}

/*
 * The built image with its config edited, as a new local image whose ID
 * is the new config's hex digest (new_id): buildah copies it to a dir:
 * layout in the job dir, the config file is rewritten there, and buildah
 * reads it back (its layers are already in the store).  Nothing leaves
 * the machine before the edited image is pushed.
 */
static int edit_image(char new_id[65], const te_build_opts *opts,
                      const te_strvec *env, const char *local, const char *job,
                      te_error *err)
{
	te_buf dir = TE_BUF_INIT(8192), ref = TE_BUF_INIT(8192);
	int rc;

	if ((rc = te_buf_printf(&dir, err, "%s/image", job)) < 0 ||
	    (rc = te_buf_printf(&ref, err, "dir:%s", dir.ptr)) < 0 ||
	    (rc = run_transfer(opts, env, "push", local, ref.ptr, err)) < 0 ||
	    (rc = rewrite_dir(new_id, opts, dir.ptr, err)) < 0 ||
	    (rc = run_transfer(opts, env, "pull", ref.ptr, NULL, err)) < 0)
		goto done;
done:
	if (dir.len)
		remove_flat_dir(dir.ptr);
	te_buf_dispose(&dir);
	te_buf_dispose(&ref);
	return rc;
}

static int build(const te_build_opts *opts, const te_strvec *env,
                 const char *local, const char *job, te_error *err)
{
	te_strvec argv = TE_STRVEC_INIT;
	struct run_limit lim = {0, opts->cancel, false, false};
	unsigned timeout =
	    opts->timeout ? opts->timeout : TE_BUILD_TIMEOUT_DEFAULT;
	struct ns_holder holder = {-1, -1};
	char *runtime = NULL;
	char text[32];
	int rc;

	if ((rc = pick_runtime(&runtime, opts, env, err)) < 0 ||
	    (rc = write_job_inputs(job, opts, err)) < 0 ||
	    (rc = write_secrets(job, opts, err)) < 0 ||
	    (rc = build_argv(&argv, opts, local, runtime, job, &holder, err)) <
	        0)
		goto done;
	te_log_emit(&opts->log, TE_LOG_INFO, "building %s", opts->image_ref);
	lim.deadline_ms = now_ms() + (int64_t)timeout * 1000;
	rc = run_checked(argv.items, env->items, &opts->log, TE_EBUILD,
	                 "buildah build", &lim, err);
	if (runtime)
		cleanup_containers(job, runtime, env, rc < 0, &opts->log);
	if (lim.expired) {
		te_build_timeout_format(text, sizeof(text), timeout);
		rc = te_error_set(
		    err, TE_ETIMEDOUT, "build of image %s timed out after %s",
		    opts->name ? opts->name : opts->image_ref, text);
	}
done:
	remove_secrets(job, opts);
	holder_stop(&holder);
	te_strvec_dispose(&argv);
	free(runtime);
	return rc;
}

/* ---- one platform at a time ---------------------------------------------- */

/*
 * buildah keeps one name per pulled reference in a store, so two builds
 * that pull the same multi-platform tag for different platforms at once
 * move that name under each other, and one fails with "locating pulled
 * image ... name in containers storage: image not known" (t25 in CI).
 * Builds for different platforms of this process therefore take turns;
 * builds for the same platform (NULL: the native one) run side by side.
 * A waiting build gives up when it is cancelled.
 */
static pthread_mutex_t platform_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t platform_cv = PTHREAD_COND_INITIALIZER;
static char platform_now[128];
static unsigned platform_builds;

static int platform_enter(const te_build_opts *opts, te_error *err)
{
	const char *want = opts->platform ? opts->platform : "";
	struct timespec until;
	int rc = 0;

	if (strlen(want) >= sizeof(platform_now))
		return te_error_set(err, TE_EINVALID, "platform too long");
	pthread_mutex_lock(&platform_mu);
	while (platform_builds && strcmp(platform_now, want) != 0) {
		if (opts->cancel && atomic_load(opts->cancel)) {
			rc = te_error_set(
			    err, TE_ERROR, "build of %s cancelled",
			    opts->name ? opts->name : opts->image_ref);
			break;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += TE_BUILD_CANCEL_POLL_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&platform_cv, &platform_mu, &until);
	}
	if (rc == 0) {
		snprintf(platform_now, sizeof(platform_now), "%s", want);
		platform_builds++;
	}
	pthread_mutex_unlock(&platform_mu);
	return rc;
}

static void platform_leave(void)
{
	pthread_mutex_lock(&platform_mu);
	if (--platform_builds == 0)
		pthread_cond_broadcast(&platform_cv);
	pthread_mutex_unlock(&platform_mu);
}

int te_build_and_push(char digest_out[72], const te_build_opts *opts,
                      te_error *err)
{
	static const char *const job_files[] = {"digest", "registries.conf",
	                                        "Dockerfile", "ignore"};
	te_strvec argv = TE_STRVEC_INIT, env = TE_STRVEC_INIT;
	struct run_limit push_lim = {0, opts ? opts->cancel : NULL, false,
	                             false};
	te_buf path = TE_BUF_INIT(8192);
	char *job = NULL, *local = NULL, *conf = NULL, *digestfile = NULL;
	char *envextra[1];
	char edited_id[65] = "";
	const char *source;
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
	source = local;
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

	if ((rc = platform_enter(opts, err)) < 0)
		goto done;
	rc = build(opts, &env, local, job, err);
	platform_leave();
	if (rc < 0)
		goto done;
	built = true;
	if (opts->edit_config) {
		if ((rc = edit_image(edited_id, opts, &env, local, job, err)) <
		    0)
			goto done;
		source = edited_id;
	}

	/* push */
	te_strvec_dispose(&argv);
	if ((rc = global_args(&argv, opts, err)) < 0 ||
	    (rc = te_strvec_push(&argv, "push", err)) < 0 ||
	    (rc = registry_args(&argv, opts, err)) < 0 ||
	    (rc = te_strvec_push(&argv, "--digestfile", err)) < 0 ||
	    (rc = te_strvec_push(&argv, digestfile, err)) < 0 ||
	    (rc = te_strvec_push(&argv, "--", err)) < 0 ||
	    (rc = te_strvec_push(&argv, source, err)) < 0 ||
	    (rc = te_strvec_pushf(&argv, err, "docker://%s", opts->image_ref)) <
	        0)
		goto done;
	te_log_emit(&opts->log, TE_LOG_INFO, "pushing %s", opts->image_ref);
	rc = run_checked(argv.items, env.items, &opts->log, TE_ENET,
	                 "buildah push", &push_lim, err);
	if (rc < 0)
		goto done;
	rc = read_digest(digest_out, digestfile, err);
done:
	/* With --layers the image stays: removing it would remove the
	 * untagged intermediate images of its steps, which are the layer
	 * cache (libimage prunes an image's dangling parents); keep_image
	 * keeps it too. */
	if (built && !opts->layers && !opts->keep_image) {
		te_error ignored = TE_ERROR_INIT;

		/* best effort: the image stays in the local store otherwise */
		te_strvec_dispose(&argv);
		if (global_args(&argv, opts, &ignored) == 0 &&
		    te_strvec_push(&argv, "rmi", &ignored) == 0 &&
		    te_strvec_push(&argv, local, &ignored) == 0 &&
		    (!*edited_id ||
		     te_strvec_push(&argv, edited_id, &ignored) == 0) &&
		    run_checked(argv.items, env.items, &opts->log, TE_EIO,
		                "buildah rmi", NULL, &ignored) < 0)
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

/* ---- storage driver ---------------------------------------------------- */

/* One `buildah <probe store> <args...>`; out (may be NULL) gets the last
 * output line. */
static int probe_run(const char *buildah, const char *dir,
                     const char *const *args, char *out, size_t outsz,
                     const te_log *log)
{
	te_strvec argv = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;
	struct run_output *o = NULL;
	int status = 0, rc;

	if ((rc = te_strvec_push(&argv, buildah, &err)) < 0 ||
	    (rc = te_strvec_push(&argv, "--root", &err)) < 0 ||
	    (rc = te_strvec_pushf(&argv, &err, "%s/root", dir)) < 0 ||
	    (rc = te_strvec_push(&argv, "--runroot", &err)) < 0 ||
	    (rc = te_strvec_pushf(&argv, &err, "%s/run", dir)) < 0 ||
	    (rc = te_strvec_push(&argv, "--storage-driver", &err)) < 0 ||
	    (rc = te_strvec_push(&argv, "overlay", &err)) < 0)
		goto done;
	for (; *args; args++)
		if ((rc = strcmp(*args, "@file")
		              ? te_strvec_push(&argv, *args, &err)
		              : te_strvec_pushf(&argv, &err, "%s/probe", dir)) <
		    0)
			goto done;
	if (!(o = calloc(1, sizeof(*o)))) {
		rc = TE_ENOMEM;
		goto done;
	}
	o->log = log;
	rc = run(&status, argv.items, NULL, o, NULL, &err);
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		rc = te_error_set(&err, TE_EIO, "buildah %s failed",
		                  argv.items[7]);
	if (rc == 0 && out)
		snprintf(out, outsz, "%s",
		         o->ntail
		             ? o->tail[(o->ntail - 1) % TE_BUILD_TAIL_LINES]
		             : "");
done:
	if (rc < 0)
		te_log_emit(log, TE_LOG_DEBUG, "overlay probe: %s", err.msg);
	free(o);
	te_strvec_dispose(&argv);
	return rc;
}

/* Who owns <mnt>/probe: what a RUN container would see. */
static bool probe_owner_ok(const char *mnt, uid_t want)
{
	te_buf p = TE_BUF_INIT(8192);
	te_error err = TE_ERROR_INIT;
	struct stat st;
	bool ok;

	ok = te_buf_printf(&p, &err, "%s/probe", mnt) == 0 &&
	     lstat(p.ptr, &st) == 0 && st.st_uid == want;
	te_buf_dispose(&p);
	return ok;
}

/*
 * Does overlay work here for builds as build() runs them with --layers: a
 * file COPY'd into a container with the user namespace mapping of RUN
 * (when one is used), committed, is seen in the next step's container
 * (same mapping) as owned by the mapped root.  buildah versions that cannot
 * remap overlay layers show it as host root there, and a RUN could not write
 * what COPY created; vfs remaps by copying.  The probe store is removed
 * afterwards; "@file" in the args below is <probe dir>/probe.
 */
static bool overlay_works(const char *buildah, const char *base,
                          const te_log *log)
{
	static const char *const from[] = {"from", "--name", "te-probe",
	                                   "scratch", NULL};
	static const char *const from_mapped[] = {"from",
	                                          "--name",
	                                          "te-probe",
	                                          "--userns-uid-map",
	                                          TE_BUILD_USERNS_MAP,
	                                          "--userns-gid-map",
	                                          TE_BUILD_USERNS_MAP,
	                                          "scratch",
	                                          NULL};
	static const char *const copy[] = {"copy", "te-probe", "@file",
	                                   "/probe", NULL};
	static const char *const commit[] = {"commit", "-q", "te-probe",
	                                     "localhost/te-probe", NULL};
	static const char *const mapped[] = {"from",
	                                     "--pull=never",
	                                     "--name",
	                                     "te-probe2",
	                                     "--userns-uid-map",
	                                     TE_BUILD_USERNS_MAP,
	                                     "--userns-gid-map",
	                                     TE_BUILD_USERNS_MAP,
	                                     "localhost/te-probe",
	                                     NULL};
	static const char *const plain[] = {
	    "from",      "--pull=never",       "--name",
	    "te-probe2", "localhost/te-probe", NULL};
	static const char *const mount[] = {"mount", "te-probe2", NULL};
	static const char *const umount[] = {"umount", "-a", NULL};
	static const char *const rm[] = {"rm", "-a", NULL};
	static const char *const rmi[] = {"rmi", "-a", "-f", NULL};
	te_buf dir = TE_BUF_INIT(8192), file = TE_BUF_INIT(8192);
	te_error err = TE_ERROR_INIT;
	char mnt[TE_BUILD_LINE_MAX];
	int uerr = 0;
	bool map = geteuid() == 0 && userns_works(&uerr), ok = false;

	if (geteuid() != 0 ||
	    te_buf_printf(&dir, &err, "%s/probe-XXXXXX", base) < 0 ||
	    !mkdtemp(dir.ptr))
		goto done;
	if (te_buf_printf(&file, &err, "%s/probe", dir.ptr) < 0 ||
	    write_file(file.ptr, "", 0, &err) < 0)
		goto cleanup;
	if (probe_run(buildah, dir.ptr, map ? from_mapped : from, NULL, 0,
	              log) == 0 &&
	    probe_run(buildah, dir.ptr, copy, NULL, 0, log) == 0 &&
	    probe_run(buildah, dir.ptr, commit, NULL, 0, log) == 0 &&
	    probe_run(buildah, dir.ptr, map ? mapped : plain, NULL, 0, log) ==
	        0 &&
	    probe_run(buildah, dir.ptr, mount, mnt, sizeof(mnt), log) == 0)
		ok = probe_owner_ok(mnt, map ? 100000 : 0);
	probe_run(buildah, dir.ptr, umount, NULL, 0, log);
	probe_run(buildah, dir.ptr, rm, NULL, 0, log);
	probe_run(buildah, dir.ptr, rmi, NULL, 0, log);
cleanup:
	te_fs_remove_tree(dir.ptr);
done:
	te_buf_dispose(&dir);
	te_buf_dispose(&file);
	return ok;
}

int te_build_storage_driver(char *out, size_t outsz, const char *buildah,
                            const char *state_dir, const te_log *log,
                            te_error *err)
{
	te_buf base = TE_BUF_INIT(8192), file = TE_BUF_INIT(8192);
	te_buf data = TE_BUF_INIT(64);
	const char *driver = "vfs";
	struct stat st;
	bool too_big = false;
	int fd, rc;

	snprintf(out, outsz, "vfs");
	if ((rc = te_buf_printf(&base, err, "%s/buildah", state_dir)) < 0 ||
	    (rc = te_buf_printf(&file, err, "%s/driver", base.ptr)) < 0 ||
	    (rc = te_fs_mkdirs(base.ptr, err)) < 0)
		goto done;
	fd = open(file.ptr, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		rc = te_fs_read_all(&data, fd, &too_big);
		close(fd);
		if (rc == 0 && !too_big &&
		    (strcmp(data.ptr, "overlay\n") == 0 ||
		     strcmp(data.ptr, "vfs\n") == 0)) {
			snprintf(out, outsz, "%.*s", (int)data.len - 1,
			         data.ptr);
			goto done;
		}
		rc = te_error_set(err, TE_EIO,
		                  "%s: unreadable storage driver record "
		                  "(\"overlay\" or \"vfs\" expected)",
		                  file.ptr);
		goto done;
	}
	if (errno != ENOENT) {
		rc = te_error_set_errno(err, TE_EIO, errno, "reading '%s'",
		                        file.ptr);
		goto done;
	}
	/* A store made before the choice was recorded is a vfs one. */
	te_buf_clear(&data);
	if ((rc = te_buf_printf(&data, err, "%s/root", base.ptr)) < 0)
		goto done;
	if (stat(data.ptr, &st) != 0 &&
	    overlay_works(buildah ? buildah : "buildah", base.ptr, log))
		driver = "overlay";
	te_buf_clear(&data);
	if ((rc = te_buf_printf(&data, err, "%s\n", driver)) < 0 ||
	    (rc = te_fs_write_atomic(file.ptr, data.ptr, data.len, 0600, err)) <
	        0)
		goto done;
	snprintf(out, outsz, "%s", driver);
done:
	te_buf_dispose(&base);
	te_buf_dispose(&file);
	te_buf_dispose(&data);
	return rc;
}

int te_build_timeout_parse(unsigned *out, const char *text, te_error *err)
{
	static const char units[] = "hms";
	static const unsigned scale[] = {3600, 60, 1};
	const char *p = text;
	uint64_t total = 0;
	size_t next = 0, u;

	*out = 0;
	while (p && *p) {
		uint64_t v = 0;
		const char *digits = p;

		while (*p >= '0' && *p <= '9' && v <= TE_BUILD_TIMEOUT_MAX)
			v = v * 10 + (uint64_t)(*p++ - '0');
		if (p == digits || !*p || !strchr(units, *p))
			goto bad;
		u = (size_t)(strchr(units, *p) - units);
		if (u < next)
			goto bad; /* "10m1h", "1h1h" */
		next = u + 1;
		total += v * scale[u];
		if (total > TE_BUILD_TIMEOUT_MAX)
			goto bad;
		p++;
	}
	if (total == 0)
		goto bad;
	*out = (unsigned)total;
	return 0;
bad:
	return te_error_set(err, TE_EINVALID,
	                    "invalid build timeout \"%.64s\": use a duration "
	                    "like 30s, 10m, 1h or 1h30m (at most 168h)",
	                    text ? text : "");
}

void te_build_timeout_format(char *out, size_t outsz, unsigned seconds)
{
	unsigned h = seconds / 3600, m = seconds / 60 % 60, s = seconds % 60;
	size_t len = 0;

	out[0] = '\0';
	if (h)
		len += (size_t)snprintf(out + len, outsz - len, "%uh", h);
	if (m && len < outsz)
		len += (size_t)snprintf(out + len, outsz - len, "%um", m);
	if ((s || !seconds) && len < outsz)
		snprintf(out + len, outsz - len, "%us", s);
}
