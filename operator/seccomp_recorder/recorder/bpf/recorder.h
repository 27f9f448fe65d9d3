/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Layout of the recorder's maps and events, shared by the BPF program and
 * mirrored with ctypes in recorder/maps.py. Change both together.
 */
#ifndef SECCOMP_RECORDER_H
#define SECCOMP_RECORDER_H

/*
 * Syscall numbers below this bound are kept in a per-key byte map; others
 * (none exist on the supported architectures today) go to the odd_syscalls map.
 */
#define SYSCALL_SLOTS 1024

/* x32 syscalls on x86_64 carry this bit in their number. */
#define X32_SYSCALL_BIT 0x40000000

/*
 * Where a task stands relative to its container runtime's seccomp filter point.
 * SETUP: before the filter would be installed (the runtime's mount, pivot_root...).
 * FILTERED: after a seccomp filter was installed in this mount namespace, so every
 *   call would be filtered, but before the workload's execve.
 * WORKLOAD: after the execve into the workload.
 */
enum phase {
	PHASE_SETUP = 0,
	PHASE_FILTERED = 1,
	PHASE_WORKLOAD = 2,
};

/* The syscall ABI a call was made through. */
enum abi {
	ABI_NATIVE = 0,
	ABI_COMPAT = 1, /* i386 on x86_64, arm (AArch32) on aarch64 */
	ABI_X32 = 2,
};

/* Set when the task's base filter must be captured at its next syscall. */
#define TASK_NEEDS_BASE_FILTER 0x1

struct task_state {
	__u32 mntns;
	__u8 phase;
	__u8 flags;
	__u16 reserved;
	__u64 base_filter; /* task->seccomp.filter when the task entered SETUP */
	char comm[16];     /* task's name when it entered its mount namespace */
};

struct syscall_key {
	__u32 mntns;
	__u8 phase;
	__u8 abi;
	__u16 reserved;
};

struct syscall_set {
	__u8 seen[SYSCALL_SLOTS];
};

struct odd_syscall_key {
	__u32 mntns;
	__u8 phase;
	__u8 abi;
	__u16 reserved;
	__s64 nr;
};

/* What the first execve out of SETUP or FILTERED in a mount namespace looked like. */
struct exec_info {
	__u32 pid;
	__u8 filtered;       /* a seccomp filter was installed before the execve */
	__u8 no_new_privs;   /* no_new_privs was set at the execve */
	__u16 reserved;
	char runtime_comm[16]; /* name of the task when it entered the mount namespace */
};

enum event_type {
	EVENT_MNTNS_ENTERED = 1, /* a task entered a mount namespace being recorded */
	EVENT_CONTAINER_EXITED = 2, /* the init process of a pid namespace exited */
	EVENT_CONTAINER_STARTED = 3, /* the first execve out of setup in a mount namespace */
};

#define CGROUP_NAME_LENGTH 128

struct event {
	__u32 type;
	__u32 mntns;
	__u32 pid;
	__u32 reserved;
	char comm[16];
	/* Last component of the task's cgroup v2 path: the container id under containerd and CRI-O. */
	char cgroup[CGROUP_NAME_LENGTH];
};

/* Indexes of the per-CPU stats counters. */
enum stat {
	STAT_SET_FULL = 0,       /* syscall_sets had no room for a new key: calls lost */
	STAT_TASK_STATE_FULL = 1, /* task_states insert failed: a task was not tracked */
	STAT_EVENT_DROPPED = 2,  /* the events ring buffer was full */
	STAT_ODD_FULL = 3,       /* odd_syscalls had no room: an unusual number was lost */
	STAT_COUNT = 4,
};

/* Settings written into .rodata by user space before the program is loaded. */
struct recorder_config {
	/*
	 * 0: record only tasks registered in task_states and their descendants.
	 * 1: record every task outside host_mntns (the node agent's mode).
	 */
	__u32 all_containers;
	__u32 host_mntns;
};

#endif /* SECCOMP_RECORDER_H */
