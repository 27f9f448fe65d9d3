/*
 * A distinctive syscall as the very last call before exit_group, with no other
 * syscall in between, so the process is gone microseconds after making it.
 */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	gid_t real, effective, saved;

	printf("exiting\n");
	fflush(stdout);
	syscall(SYS_getresgid, &real, &effective, &saved);
	syscall(SYS_exit_group, 0);
	return 1;
}
