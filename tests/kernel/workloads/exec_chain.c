/*
 * A fork/exec chain three levels deep: level 1 forks and executes this program
 * as level 2, which does the same for level 3. Each level makes one syscall
 * that no other level makes, and waits for its child before it exits.
 *
 * Usage: exec_chain [LEVEL], LEVEL 1 by default. The program must be run by a
 * path that execve accepts, because it executes itself through argv[0].
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEVELS 3

static void make_distinctive_call(int level)
{
	struct rusage usage;

	switch (level) {
	case 1:
		syscall(SYS_umask, 022);
		break;
	case 2:
		syscall(SYS_getrusage, RUSAGE_SELF, &usage);
		break;
	default:
		syscall(SYS_sched_getscheduler, 0);
		break;
	}
}

int main(int argc, char **argv)
{
	int level = argc > 1 ? atoi(argv[1]) : 1;
	char next[16];
	int status;
	pid_t child;

	make_distinctive_call(level);
	if (level >= LEVELS)
		return 0;

	snprintf(next, sizeof(next), "%d", level + 1);
	child = fork();
	if (child < 0) {
		perror("fork");
		return 2;
	}
	if (child == 0) {
		execl(argv[0], argv[0], next, (char *)NULL);
		perror("execl");
		_exit(2);
	}
	if (waitpid(child, &status, 0) != child) {
		perror("waitpid");
		return 2;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
