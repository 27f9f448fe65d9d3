/*
 * A 64-bit x86 program that makes calls through the other syscall ABIs:
 * i386 getpid (number 20) through int $0x80, x32 getpid (39 with the x32 bit),
 * and numbers that no table names: 999 on i386 and 1000 natively.
 *
 * It never calls the native getpid, so a profile that allows getpid got the
 * name from the i386 or x32 table. Native number 20 is writev, which the
 * program never calls either. With the argument `probe` it only prints what
 * the i386 getpid returned, so a caller can check that IA32 emulation works.
 */
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define I386_GETPID 20
#define I386_UNNAMED 999
#define X32_SYSCALL_BIT 0x40000000L
#define X32_GETPID 39
#define NATIVE_UNNAMED 1000

static long i386_syscall(long number)
{
	long result;

	/* The kernel may clobber r8-r11 on int $0x80 from 64-bit code. */
	__asm__ volatile("int $0x80"
			 : "=a"(result)
			 : "a"(number)
			 : "memory", "r8", "r9", "r10", "r11");
	return result;
}

int main(int argc, char **argv)
{
	long i386_pid = i386_syscall(I386_GETPID);

	if (argc > 1 && strcmp(argv[1], "probe") == 0) {
		printf("%ld\n", i386_pid);
		return 0;
	}
	i386_syscall(I386_UNNAMED);
	/* ENOSYS unless the kernel has CONFIG_X86_X32_ABI, but the call is still made. */
	syscall(X32_SYSCALL_BIT | X32_GETPID);
	syscall(NATIVE_UNNAMED);
	printf("i386 getpid: %ld\n", i386_pid);
	return 0;
}
