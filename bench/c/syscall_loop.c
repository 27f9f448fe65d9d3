// SPDX-License-Identifier: Apache-2.0
/*
 * A syscall micro-benchmark: make one cheap syscall CALLS times and print the
 * cost of one call in nanoseconds.
 *
 *     syscall_loop getppid|read CALLS
 *
 * `getppid` is about the cheapest call there is, so the loop's time is mostly
 * the kernel's entry and exit path and whatever is attached to it. `read`
 * reads one byte from /dev/zero, a call that also goes through the VFS.
 *
 * The clock is read with clock_gettime(CLOCK_MONOTONIC) around the calls only,
 * after a warm-up of CALLS/100 calls, so process start-up, dynamic linking and
 * anything a tracer does at exec time are not counted. clock_gettime itself
 * runs in the vDSO and makes no syscall. The calls are timed in CHUNKS equal
 * chunks: on a shared machine a chunk during which the process was preempted
 * is an outlier, so the median chunk is the figure that reflects the call, and
 * the mean over all calls is printed beside it.
 *
 * Output, one line on stdout:
 *     ns_per_call=<median chunk> mean_ns_per_call=<mean> calls=<n> elapsed_ns=<n>
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

#define CHUNKS 100

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

static int compare_doubles(const void *left, const void *right)
{
	double a = *(const double *)left, b = *(const double *)right;

	return (a > b) - (a < b);
}

static int usage(void)
{
	fprintf(stderr, "usage: syscall_loop getppid|read CALLS (CALLS >= %d)\n", CHUNKS);
	return 2;
}

int main(int argc, char **argv)
{
	double chunk_ns[CHUNKS];
	long long elapsed = 0;
	long calls, per_chunk;
	int use_read, fd = -1;
	char *end;

	if (argc != 3)
		return usage();
	calls = strtol(argv[2], &end, 10);
	if (*end != '\0' || calls < CHUNKS)
		return usage();
	if (strcmp(argv[1], "getppid") == 0)
		use_read = 0;
	else if (strcmp(argv[1], "read") == 0)
		use_read = 1;
	else
		return usage();
	per_chunk = calls / CHUNKS;

	if (use_read) {
		fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "syscall_loop: cannot open /dev/zero: %s\n", strerror(errno));
			return 1;
		}
	}

	for (int chunk = -1; chunk < CHUNKS; chunk++) {
		/* Chunk -1 is the warm-up, of the same size as the others. */
		long long start = now_ns(), took;

		if (!use_read) {
			getppid_calls(per_chunk);
		} else if (read_calls(fd, per_chunk) != 0) {
			fprintf(stderr, "syscall_loop: read of /dev/zero failed: %s\n",
				strerror(errno));
			return 1;
		}
		took = now_ns() - start;
		if (chunk >= 0) {
			chunk_ns[chunk] = (double)took / (double)per_chunk;
			elapsed += took;
		}
	}
	if (fd >= 0)
		close(fd);

	qsort(chunk_ns, CHUNKS, sizeof(chunk_ns[0]), compare_doubles);
	printf("ns_per_call=%.3f mean_ns_per_call=%.3f calls=%ld elapsed_ns=%lld\n",
	       (chunk_ns[CHUNKS / 2 - 1] + chunk_ns[CHUNKS / 2]) / 2,
	       (double)elapsed / (double)(per_chunk * CHUNKS), per_chunk * CHUNKS, elapsed);
	return 0;
}
