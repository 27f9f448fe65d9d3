/*
 * A thread that makes a distinctive syscall and then ends the whole process
 * with exit_group while the main thread is blocked in pause().
 *
 * The thread first waits until /proc shows the main thread inside pause, so
 * both runs of a comparison make the same calls whatever the scheduling (the
 * wait always sleeps at least once and reads the file at least once).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static pid_t main_thread_id;

static int main_thread_in_pause(void)
{
	char path[64];
	char text[32] = "";
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)main_thread_id);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	if (read(fd, text, sizeof(text) - 1) < 0)
		text[0] = '\0';
	close(fd);
	return atol(text) == SYS_pause;
}

static void *call_getitimer_then_exit_group(void *unused)
{
	struct itimerval timer;

	(void)unused;
	do
		usleep(1000);
	while (!main_thread_in_pause());

	syscall(SYS_getitimer, ITIMER_REAL, &timer);
	syscall(SYS_exit_group, 0);
	return NULL;
}

int main(void)
{
	pthread_t thread;
	int error;

	main_thread_id = getpid();
	error = pthread_create(&thread, NULL, call_getitimer_then_exit_group, NULL);
	if (error != 0) {
		fprintf(stderr, "pthread_create: %s\n", strerror(error));
		return 2;
	}
	for (;;)
		pause();
}
