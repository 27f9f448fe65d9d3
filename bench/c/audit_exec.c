// SPDX-License-Identifier: Apache-2.0
/*
 * Execute a command in a new audit session, optionally under a seccomp filter
 * whose only action is SECCOMP_RET_LOG (libseccomp's SCMP_ACT_LOG).
 *
 *     audit_exec [--log] [--session-file FILE] -- PROGRAM [ARGS...]
 *
 * Writing /proc/self/loginuid gives the process a fresh audit session id,
 * which every descendant inherits across fork, execve and namespaces (runc's
 * containers included) and which every AUDIT_SECCOMP record carries as `ses=`.
 * The benchmark uses it to pick its own records out of the audit multicast
 * group, which also carries those of every other process on the machine.
 * --session-file receives that id in decimal.
 *
 * With --log, the filter is a single `return SECCOMP_RET_LOG`: every later call
 * is allowed and logged, the execve of PROGRAM first. Nothing else runs
 * between the filter and that execve. Needs root (CAP_AUDIT_CONTROL for the
 * session, CAP_SYS_ADMIN to install a filter without no_new_privs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "audit_exec: %s: %s\n", what, strerror(errno));
	return 125;
}

static int copy_session_id(const char *path)
{
	char buffer[32];
	ssize_t length;
	int in, out;

	in = open("/proc/self/sessionid", O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	length = read(in, buffer, sizeof(buffer));
	close(in);
	if (length <= 0)
		return -1;
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return -1;
	if (write(out, buffer, (size_t)length) != length) {
		close(out);
		return -1;
	}
	return close(out);
}

int main(int argc, char **argv)
{
	const char *session_file = NULL;
	int log_calls = 0;
	int index = 1;
	int loginuid;

	for (; index < argc; index++) {
		if (strcmp(argv[index], "--log") == 0) {
			log_calls = 1;
		} else if (strcmp(argv[index], "--session-file") == 0 && index + 1 < argc) {
			session_file = argv[++index];
		} else if (strcmp(argv[index], "--") == 0) {
			index++;
			break;
		} else {
			break;
		}
	}
	if (index >= argc) {
		fprintf(stderr,
			"usage: audit_exec [--log] [--session-file FILE] -- PROGRAM [ARGS...]\n");
		return 2;
	}

	/* Any uid starts a new session; 0 keeps the records readable as root's. */
	loginuid = open("/proc/self/loginuid", O_WRONLY | O_CLOEXEC);
	if (loginuid < 0 || write(loginuid, "0", 1) != 1)
		return fail("cannot start an audit session through /proc/self/loginuid");
	close(loginuid);
	if (session_file != NULL && copy_session_id(session_file) != 0)
		return fail("cannot write the audit session id");

	if (log_calls) {
		struct sock_filter log_everything[] = {
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_LOG),
		};
		struct sock_fprog program = {
			.len = 1,
			.filter = log_everything,
		};

		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0)
			return fail("cannot install the SECCOMP_RET_LOG filter");
	}

	execv(argv[index], &argv[index]);
	return fail(argv[index]);
}
