/*
 * proc_int.h - running child processes (private plumbing, not public API).
 *
 * One fork + exec path for everything tagexport runs: buildah (build.c),
 * the detached hook runner (hook.c) and docker-credential helpers
 * (registry_auth.c).  The caller owns every descriptor it passes in and
 * does its own reading and writing; this module only wires the child's
 * descriptors, starts it and reports whether exec worked.
 *
 * Between fork and exec the child makes only async-signal-safe calls
 * (fcntl, dup2, close, setpgid, setsid, chdir, signal, fork, write,
 * prctl, getppid, execvpe, _exit): the server is multi-threaded, so everything
 * the child needs (argv, envp, descriptors) must exist before te_proc_spawn.
 *
 * The child's descriptors are exactly:
 *   0        stdin_fd   (-1: /dev/null)
 *   1        stdout_fd  (-1: /dev/null)
 *   2        stderr_fd  (-1: /dev/null; may equal stdout_fd)
 *   3        keep_fd, when it is not -1
 * every other descriptor is closed, the signal disposition of SIGPIPE is
 * reset to the default.  Descriptors the caller passes may be any numbers
 * (0-2 included); they are not closed in the parent.
 */
#ifndef TAGEXPORT_PROC_INT_H
#define TAGEXPORT_PROC_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "tagexport/error.h"

struct te_proc_opts {
	/* Program to run: NULL means argv[0].  Searched in PATH unless it
	 * contains a '/' (execvpe). */
	const char *file;
	/* NULL-terminated argument vector, argv[0] first.  Borrowed. */
	char *const *argv;
	/* NULL-terminated environment; NULL means the caller's environ. */
	char *const *envp;
	int stdin_fd;  /* -1: /dev/null */
	int stdout_fd; /* -1: /dev/null */
	int stderr_fd; /* -1: /dev/null */
	int keep_fd;   /* dup'd to 3 in the child; -1: none */
	/* The child becomes the leader of a new process group, so that
	 * te_proc_kill reaches everything it starts. */
	bool new_pgrp;
	/* Daemon-style: fork twice with setsid() in between, so the program
	 * runs in a new session, is not our child (reparented to init, no
	 * need to wait for it), has "/" as its cwd and ignores SIGHUP. */
	bool detach;
	/* The child gets SIGTERM when the thread that started it ends
	 * (prctl(2) PR_SET_PDEATHSIG), e.g. when the server exits with a
	 * build still running; not with detach. */
	bool term_with_parent;
};

#define TE_PROC_OPTS_INIT                                                      \
	{                                                                      \
		NULL, NULL, NULL, -1, -1, -1, -1, false, false, false          \
	}

/**
 * Start a program and wait until it has been exec'd.
 *
 * @param[out] pid_out the child's pid.  Unless o->detach, the caller must
 *             reap it with te_proc_wait.  With o->detach it is the
 *             detached grandchild's pid, for information only (it is not
 *             our child and must not be waited for).
 * @param o    what to run and the child's descriptors; only read.
 * @param err  TE_EIO "cannot run '<file>': <strerror>" when exec failed
 *             (the child has been reaped then), TE_EIO with the failing
 *             call for pipe, fork and setsid failures.
 * @return 0 once exec succeeded, or a negative te_code.
 */
int te_proc_spawn(pid_t *pid_out, const struct te_proc_opts *o, te_error *err);

/**
 * Reap a child started by te_proc_spawn (not a detached one).
 *
 * @param[out] status_out the waitpid status; also set after a timeout
 *             (then the child was killed by SIGKILL).
 * @param pid        the child.
 * @param timeout_ms -1 waits forever; otherwise after timeout_ms the
 *             child (its process group with new_pgrp) is killed with
 *             SIGKILL and reaped.
 * @param err  TE_EIO "process <pid> timed out after <n> ms" on timeout,
 *             TE_EIO "waitpid: ..." when waiting failed.
 * @return 0 when the child ended by itself, or a negative te_code.
 */
int te_proc_wait(int *status_out, pid_t pid, int timeout_ms, te_error *err);

/* SIGKILL the process group led by pid, or pid alone when it leads none.
 * The child still has to be reaped with te_proc_wait. */
void te_proc_kill(pid_t pid);

#endif
