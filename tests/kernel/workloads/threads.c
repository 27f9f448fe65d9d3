/*
 * Four threads, each making one syscall no other part of the program makes,
 * then blocking until the main thread ends the process with exit_group.
 *
 * The threads report to the main thread over a pipe and are never joined, so
 * the program makes the same syscalls however its threads are scheduled
 * (pthread_join would call futex only when a thread had not yet ended).
 * Exit status 2 with a message on stderr when a thread cannot be created.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <unistd.h>

#define THREADS 4

static int done_pipe[2];

static void report_and_block(char thread_tag)
{
	if (write(done_pipe[1], &thread_tag, 1) != 1)
		_exit(3);
	for (;;)
		pause();
}

static void *call_getcpu(void *unused)
{
	unsigned int cpu, node;

	(void)unused;
	syscall(SYS_getcpu, &cpu, &node, NULL);
	report_and_block('c');
	return NULL;
}

static void *call_sysinfo(void *unused)
{
	struct sysinfo info;

	(void)unused;
	syscall(SYS_sysinfo, &info);
	report_and_block('s');
	return NULL;
}

static void *call_getpriority(void *unused)
{
	(void)unused;
	syscall(SYS_getpriority, 0 /* PRIO_PROCESS */, 0);
	report_and_block('p');
	return NULL;
}

static void *call_times(void *unused)
{
	struct tms buffer;

	(void)unused;
	syscall(SYS_times, &buffer);
	report_and_block('t');
	return NULL;
}

int main(void)
{
	void *(*bodies[THREADS])(void *) = {
		call_getcpu, call_sysinfo, call_getpriority, call_times,
	};
	pthread_t threads[THREADS];
	char reports[THREADS];
	size_t received = 0;

	if (pipe(done_pipe) != 0) {
		perror("pipe");
		return 2;
	}
	for (int i = 0; i < THREADS; i++) {
		int error = pthread_create(&threads[i], NULL, bodies[i], NULL);

		if (error != 0) {
			fprintf(stderr, "pthread_create: %s\n", strerror(error));
			return 2;
		}
	}
	while (received < THREADS) {
		ssize_t count = read(done_pipe[0], reports + received, THREADS - received);

		if (count <= 0) {
			perror("read");
			return 2;
		}
		received += (size_t)count;
	}
	printf("threads done: %d\n", THREADS);
	return 0;
}
