/*
 * Daemonize with the classic double fork, then wait for a release before
 * making a distinctive syscall (sched_getparam) and exiting.
 *
 * Usage: daemon PID_FILE FIFO. The command's process exits once the middle
 * child has forked the daemon and exited. The daemon waits until both are gone
 * (it has been reparented, and the command's pid no longer exists, so it was
 * reaped), writes "DAEMON_PID PARENT_PID" to PID_FILE, then blocks opening
 * FIFO for reading until a writer opens it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void run_daemon(pid_t command, pid_t middle, const char *pid_file, const char *fifo)
{
	int sched_param_buffer[4];
	FILE *out;
	int fd;

	while (getppid() == middle || kill(command, 0) == 0 || errno != ESRCH)
		usleep(1000);

	out = fopen(pid_file, "w");
	if (out == NULL)
		_exit(2);
	fprintf(out, "%d %d\n", getpid(), getppid());
	fclose(out);

	fd = open(fifo, O_RDONLY);
	if (fd < 0)
		_exit(2);
	close(fd);

	syscall(SYS_sched_getparam, 0, sched_param_buffer);
	_exit(0);
}

int main(int argc, char **argv)
{
	pid_t command = getpid();
	pid_t middle, daemon;
	int status;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PID_FILE FIFO\n", argv[0]);
		return 2;
	}
	middle = fork();
	if (middle < 0) {
		perror("fork");
		return 2;
	}
	if (middle == 0) {
		pid_t self = getpid();

		if (setsid() < 0)
			_exit(2);
		daemon = fork();
		if (daemon < 0)
			_exit(2);
		if (daemon == 0)
			run_daemon(command, self, argv[1], argv[2]);
		_exit(0);
	}
	if (waitpid(middle, &status, 0) != middle) {
		perror("waitpid");
		return 2;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
