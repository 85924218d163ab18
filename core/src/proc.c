/*
 * proc.c - fork + exec with wired descriptors (proc_int.h).
 *
 * Exec failures come back through a close-on-exec pipe: EOF means the
 * program was exec'd, an 8-byte message carries the errno of the call
 * that failed.  With detach the middle child also sends the grandchild's
 * pid through it.  Messages are smaller than PIPE_BUF, so writes from the
 * middle child and the grandchild never interleave.
 */
#include "proc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { MSG_ERRNO = 1, MSG_PID = 2 };

struct msg {
	int32_t kind;
	int32_t value;
};

/* Lowest fd the child parks its inputs on before wiring 0-4. */
#define PARK_FD 10

/* Close every fd from low up, in the child (async-signal-safe). */
static void close_from(int low)
{
	long max;
	int fd;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned int)low, ~0U, 0U) == 0)
		return;
#endif
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = low; fd < max; fd++)
		close(fd);
}

/* Child side: send a message, async-signal-safe. */
static void send_msg(int fd, int32_t kind, int32_t value)
{
	struct msg m;

	m.kind = kind;
	m.value = value;
	if (write(fd, &m, sizeof(m)) < 0)
		_exit(127);
}

/*
 * The process that execs, between fork and exec: only async-signal-safe
 * calls.  Parks the inputs above PARK_FD first so that wiring one never
 * overwrites another (the caller's fds may be 0-4), then wires 0-2, the
 * kept fd on 3 and the report pipe (close-on-exec) right above, closes
 * the rest and execs.
 */
static void child_exec(const struct te_proc_opts *o, const char *file,
                       char *const *envp, int in, int out, int errfd,
                       int report, pid_t parent)
{
	int keep = o->keep_fd, rfd = report, parked;
	int target = keep >= 0 ? 4 : 3;

	if (o->new_pgrp)
		setpgid(0, 0);
	/* getppid after prctl: the parent may have gone before it. */
	if (o->term_with_parent && !o->detach &&
	    (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent))
		goto fail;
	if ((in = fcntl(in, F_DUPFD, PARK_FD)) < 0 ||
	    (out = fcntl(out, F_DUPFD, PARK_FD)) < 0 ||
	    (errfd = fcntl(errfd, F_DUPFD, PARK_FD)) < 0 ||
	    (keep >= 0 && (keep = fcntl(keep, F_DUPFD, PARK_FD)) < 0) ||
	    (parked = fcntl(report, F_DUPFD_CLOEXEC, PARK_FD)) < 0)
		goto fail;
	rfd = parked;
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0 ||
	    (keep >= 0 && dup2(keep, 3) < 0) || dup2(rfd, target) < 0)
		goto fail;
	rfd = target;
	if (fcntl(rfd, F_SETFD, FD_CLOEXEC) < 0)
		goto fail;
	close_from(target + 1);
	if (o->detach) {
		if (chdir("/") < 0)
			goto fail;
		signal(SIGHUP, SIG_IGN);
	}
	signal(SIGPIPE, SIG_DFL);
	execvpe(file, o->argv, envp);
fail:
	send_msg(rfd, MSG_ERRNO, errno);
	_exit(127);
}

/* Read the report pipe to EOF: the exec errno (0: exec'd) and, from a
 * detaching middle child, the grandchild's pid. */
static void read_report(int *child_errno, pid_t *gpid, int fd)
{
	struct msg m;
	size_t got = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, (char *)&m + got, sizeof(m) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got < sizeof(m))
			continue;
		got = 0;
		if (m.kind == MSG_ERRNO && *child_errno == 0)
			*child_errno = m.value ? m.value : EIO;
		else if (m.kind == MSG_PID)
			*gpid = (pid_t)m.value;
	}
}

static int reap(int *status, pid_t pid, te_error *err)
{
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return te_error_set_errno(err, TE_EIO, errno,
			                          "waitpid");
	}
	return 0;
}

int te_proc_spawn(pid_t *pid_out, const struct te_proc_opts *o, te_error *err)
{
	const char *file = o->file ? o->file : o->argv[0];
	char *const *envp = o->envp ? o->envp : environ;
	int report[2] = {-1, -1}, devnull = -1, status = 0, child_errno = 0;
	int in, out, errfd, rc = 0;
	pid_t pid, gpid = -1, parent = getpid();

	*pid_out = -1;
	if (pipe2(report, O_CLOEXEC) < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "pipe");
		goto done;
	}
	if (o->stdin_fd < 0 || o->stdout_fd < 0 || o->stderr_fd < 0) {
		devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull < 0) {
			rc =
			    te_error_set_errno(err, TE_EIO, errno, "/dev/null");
			goto done;
		}
	}
	in = o->stdin_fd >= 0 ? o->stdin_fd : devnull;
	out = o->stdout_fd >= 0 ? o->stdout_fd : devnull;
	errfd = o->stderr_fd >= 0 ? o->stderr_fd : devnull;
	pid = fork();
	if (pid < 0) {
		rc = te_error_set_errno(err, TE_EIO, errno, "fork");
		goto done;
	}
	if (pid == 0) {
		if (!o->detach)
			child_exec(o, file, envp, in, out, errfd, report[1],
			           parent);
		/* The middle child: a new session, then the grandchild (not
		 * a session leader, reparented to init when we exit, so
		 * nobody has to wait for it). */
		close(report[0]);
		if (setsid() < 0) {
			send_msg(report[1], MSG_ERRNO, errno);
			_exit(127);
		}
		gpid = fork();
		if (gpid < 0) {
			send_msg(report[1], MSG_ERRNO, errno);
			_exit(127);
		}
		if (gpid == 0)
			child_exec(o, file, envp, in, out, errfd, report[1],
			           parent);
		send_msg(report[1], MSG_PID, (int32_t)gpid);
		_exit(0);
	}
	if (o->new_pgrp && !o->detach)
		setpgid(pid, pid); /* also here: no window without it */
	close(report[1]);
	report[1] = -1;
	if (o->detach) {
		/* The middle child exits at once: reap it first. */
		if ((rc = reap(&status, pid, err)) < 0)
			goto done;
		read_report(&child_errno, &gpid, report[0]);
		pid = gpid;
	} else {
		/* EOF once the child has exec'd or died. */
		read_report(&child_errno, &gpid, report[0]);
		if (child_errno && (rc = reap(&status, pid, err)) < 0)
			goto done;
	}
	if (child_errno) {
		rc = te_error_set_errno(err, TE_EIO, child_errno,
		                        "cannot run '%s'", file);
		goto done;
	}
	if (o->detach &&
	    (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || pid < 0)) {
		rc = te_error_set(err, TE_EIO, "cannot run '%s'", file);
		goto done;
	}
	*pid_out = pid;
done:
	if (report[0] >= 0)
		close(report[0]);
	if (report[1] >= 0)
		close(report[1]);
	if (devnull >= 0)
		close(devnull);
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void te_proc_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	if (kill(-pid, SIGKILL) < 0)
		kill(pid, SIGKILL);
}

int te_proc_wait(int *status_out, pid_t pid, int timeout_ms, te_error *err)
{
	struct timespec pause = {0, 1000000};
	int64_t deadline;
	int status = 0, rc;
	pid_t r;

	if (timeout_ms < 0) {
		if ((rc = reap(&status, pid, err)) == 0)
			*status_out = status;
		return rc;
	}
	deadline = now_ms() + timeout_ms;
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			*status_out = status;
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return te_error_set_errno(err, TE_EIO, errno,
			                          "waitpid");
		if (now_ms() >= deadline)
			break;
		nanosleep(&pause, NULL);
		/* 1 ms, doubling up to 50 ms. */
		if (pause.tv_nsec < 50000000)
			pause.tv_nsec = pause.tv_nsec * 2 > 50000000
			                    ? 50000000
			                    : pause.tv_nsec * 2;
	}
	te_proc_kill(pid);
	if ((rc = reap(&status, pid, err)) < 0)
		return rc;
	*status_out = status;
	return te_error_set(err, TE_EIO, "process %ld timed out after %d ms",
	                    (long)pid, timeout_ms);
}
