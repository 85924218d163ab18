#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_int.h"

/* Read fd to EOF into buf (NUL-terminated). */
static size_t slurp_fd(char *buf, size_t cap, int fd)
{
	size_t len = 0;
	ssize_t n;

	while (len < cap - 1) {
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return len;
}

static void test_missing_program(void **state)
{
	char *argv[] = {(char *)"/nonexistent/te-proc-test", NULL};
	struct te_proc_opts o = TE_PROC_OPTS_INIT;
	te_error err = TE_ERROR_INIT;
	pid_t pid = 123;

	(void)state;
	o.argv = argv;
	assert_int_equal(te_proc_spawn(&pid, &o, &err), TE_EIO);
	assert_int_equal(pid, -1);
	assert_string_equal(err.msg, "cannot run '/nonexistent/te-proc-test': "
	                             "No such file or directory");
	/* The failed child was reaped. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);

	/* Searched in PATH when it has no '/'. */
	te_error_clear(&err);
	argv[0] = (char *)"te-proc-no-such-program";
	assert_int_equal(te_proc_spawn(&pid, &o, &err), TE_EIO);
	assert_non_null(
	    strstr(err.msg, "cannot run 'te-proc-no-such-program'"));
}

static void test_exit_status(void **state)
{
	char *argv[] = {(char *)"sh", (char *)"-c", (char *)"exit 7", NULL};
	struct te_proc_opts o = TE_PROC_OPTS_INIT;
	te_error err = TE_ERROR_INIT;
	int status = 0;
	pid_t pid;

	(void)state;
	o.file = "/bin/sh";
	o.argv = argv;
	assert_int_equal(te_proc_spawn(&pid, &o, &err), 0);
	assert_true(pid > 0);
	assert_int_equal(te_proc_wait(&status, pid, -1, &err), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 7);
}

static void test_stdout_pipe_and_env(void **state)
{
	char *argv[] = {(char *)"/bin/sh", (char *)"-c",
	                (char *)"read x; echo \"got $x $TE_PROC_T\"; "
	                        "echo err >&2; ls /proc/$$/fd",
	                NULL};
	char *envp[] = {(char *)"TE_PROC_T=hello", NULL};
	struct te_proc_opts o = TE_PROC_OPTS_INIT;
	te_error err = TE_ERROR_INIT;
	int in[2], out[2], status = 0;
	char buf[512];
	pid_t pid;

	(void)state;
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(write(in[1], "line\n", 5), 5);
	close(in[1]);
	o.argv = argv;
	o.envp = envp;
	o.stdin_fd = in[0];
	o.stdout_fd = out[1];
	o.new_pgrp = true;
	assert_int_equal(te_proc_spawn(&pid, &o, &err), 0);
	close(in[0]);
	close(out[1]);
	slurp_fd(buf, sizeof(buf), out[0]);
	close(out[0]);
	assert_int_equal(te_proc_wait(&status, pid, 5000, &err), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* stderr went to /dev/null; only 0-2 are open in the child. */
	assert_string_equal(buf, "got line hello\n0\n1\n2\n");
}

static void test_timeout_kills_group(void **state)
{
	char *argv[] = {(char *)"/bin/sleep", (char *)"5", NULL};
	struct te_proc_opts o = TE_PROC_OPTS_INIT;
	te_error err = TE_ERROR_INIT;
	int status = 0;
	pid_t pid;

	(void)state;
	o.argv = argv;
	o.new_pgrp = true;
	assert_int_equal(te_proc_spawn(&pid, &o, &err), 0);
	assert_int_equal(getpgid(pid), pid);
	assert_int_equal(te_proc_wait(&status, pid, 200, &err), TE_EIO);
	assert_non_null(strstr(err.msg, "timed out after 200 ms"));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(kill(pid, 0), -1);
}

static void test_detach_and_keep_fd(void **state)
{
	char *argv[] = {(char *)"/bin/sh", (char *)"-c",
	                (char *)"pwd; ls /proc/$$/fd; echo END; "
	                        "exec sleep 5",
	                NULL};
	struct te_proc_opts o = TE_PROC_OPTS_INIT;
	te_error err = TE_ERROR_INIT;
	int out[2], keep, status;
	size_t len;
	char buf[512], link[64], target[256];
	ssize_t n;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	keep = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	assert_true(keep >= 0);
	o.argv = argv;
	o.stdout_fd = out[1];
	o.stderr_fd = out[1];
	o.keep_fd = keep;
	o.detach = true;
	assert_int_equal(te_proc_spawn(&pid, &o, &err), 0);
	close(out[1]);
	close(keep);
	assert_true(pid > 0);
	/* Not our child, but alive, in its own session. */
	assert_int_equal(waitpid(pid, &status, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	assert_int_equal(kill(pid, 0), 0);
	assert_true(getsid(pid) != getsid(0));
	/* Its output up to the sleep: cwd "/", only 0-3 open. */
	len = 0;
	while (len < sizeof(buf) - 1) {
		n = read(out[0], buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "END\n"))
			break;
	}
	buf[len] = '\0';
	/* keep_fd is fd 3 in the program (sleep now). */
	snprintf(link, sizeof(link), "/proc/%ld/fd/3", (long)pid);
	n = readlink(link, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, "/dev/zero");
	kill(pid, SIGKILL);
	close(out[0]);
	assert_string_equal(buf, "/\n0\n1\n2\n3\nEND\n");
}

static void test_detach_missing_program(void **state)
{
	char *argv[] = {(char *)"nope", NULL};
	struct te_proc_opts o = TE_PROC_OPTS_INIT;
	te_error err = TE_ERROR_INIT;
	pid_t pid;

	(void)state;
	o.file = "/nonexistent/bin";
	o.argv = argv;
	o.stdout_fd = 2;
	o.stderr_fd = 2;
	o.keep_fd = 2;
	o.detach = true;
	assert_int_equal(te_proc_spawn(&pid, &o, &err), TE_EIO);
	assert_string_equal(err.msg, "cannot run '/nonexistent/bin': "
	                             "No such file or directory");
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_missing_program),
	    cmocka_unit_test(test_exit_status),
	    cmocka_unit_test(test_stdout_pipe_and_env),
	    cmocka_unit_test(test_timeout_kills_group),
	    cmocka_unit_test(test_detach_and_keep_fd),
	    cmocka_unit_test(test_detach_missing_program),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
