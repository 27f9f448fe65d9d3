/*
 * A child that makes one syscall and ends itself at once with the plain exit
 * syscall (not exit_group), a few microseconds after fork returns in it: far
 * sooner than user space could notice the new process.
 */
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	int status;
	pid_t child = fork();

	if (child < 0) {
		perror("fork");
		return 2;
	}
	if (child == 0) {
		syscall(SYS_getpgid, 0);
		syscall(SYS_exit, 0);
	}
	if (waitpid(child, &status, 0) != child) {
		perror("waitpid");
		return 2;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
