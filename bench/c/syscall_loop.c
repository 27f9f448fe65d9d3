// SPDX-License-Identifier: Apache-2.0
/*
 * A syscall micro-benchmark: make one cheap syscall CALLS times and print the
 * mean cost of one call in nanoseconds.
 *
 *     syscall_loop getppid|read CALLS
 *
 * `getppid` is about the cheapest call there is, so the loop's time is mostly
 * the kernel's entry and exit path and whatever is attached to it. `read`
 * reads one byte from /dev/zero, a call that also goes through the VFS.
 *
 * The clock is read with clock_gettime(CLOCK_MONOTONIC) around the loop only,
 * after a warm-up of CALLS/100 calls, so process start-up, dynamic linking and
 * anything a tracer does at exec time are not counted. clock_gettime itself
 * runs in the vDSO and makes no syscall.
 *
 * Output, one line on stdout:  ns_per_call=<float> calls=<n> elapsed_ns=<n>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * syscall() rather than getppid(): glibc does not cache getppid today, but the
 * raw call makes sure that every iteration enters the kernel.
 */
static void getppid_calls(long calls)
{
	for (long i = 0; i < calls; i++)
		syscall(SYS_getppid);
}

static int read_calls(int fd, long calls)
{
	char byte;

	for (long i = 0; i < calls; i++) {
		if (read(fd, &byte, 1) != 1)
			return -1;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: syscall_loop getppid|read CALLS (CALLS >= 100)\n");
	return 2;
}

int main(int argc, char **argv)
{
	long long start, elapsed;
	char *end;
	long calls;
	int fd = -1;

	if (argc != 3)
		return usage();
	calls = strtol(argv[2], &end, 10);
	if (*end != '\0' || calls < 100)
		return usage();

	if (strcmp(argv[1], "getppid") == 0) {
		getppid_calls(calls / 100);
		start = now_ns();
		getppid_calls(calls);
		elapsed = now_ns() - start;
	} else if (strcmp(argv[1], "read") == 0) {
		fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "syscall_loop: cannot open /dev/zero: %s\n", strerror(errno));
			return 1;
		}
		if (read_calls(fd, calls / 100) != 0)
			goto read_failed;
		start = now_ns();
		if (read_calls(fd, calls) != 0)
			goto read_failed;
		elapsed = now_ns() - start;
		close(fd);
	} else {
		return usage();
	}

	printf("ns_per_call=%.3f calls=%ld elapsed_ns=%lld\n", (double)elapsed / (double)calls,
	       calls, elapsed);
	return 0;

read_failed:
	fprintf(stderr, "syscall_loop: read of /dev/zero failed: %s\n", strerror(errno));
	return 1;
}
