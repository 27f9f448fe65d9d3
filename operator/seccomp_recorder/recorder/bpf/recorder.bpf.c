// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * The syscall recorder: one raw tracepoint on sys_enter marks every syscall a
 * recorded task makes in a byte map keyed by mount namespace, by the task's
 * phase relative to the runtime's seccomp filter point, and by the syscall ABI.
 * Three scheduler tracepoints keep the per-task phase: fork copies it, exec
 * moves it to WORKLOAD, exit forgets the task.
 *
 * Everything is written in the kernel at the moment of the syscall, so calls
 * made before user space knows a container, by children that exit within
 * microseconds, and right before exit_group are all kept.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "recorder.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Filled in by user space before load; the verifier prunes the mode not taken. */
const volatile struct recorder_config config = {};

/* The x86 thread status bit set while a task runs a 32-bit (int 0x80 or sysenter) syscall. */
#define X86_TS_COMPAT 0x0002
/*
 * arm64 thread flag of AArch32 tasks.
 * NOTE: TIF_32BIT is a #define, not in BTF, so this number cannot be relocated;
 * it is 22 in arm64's asm/thread_info.h up to at least Linux 6.x. Untested here.
 */
#define ARM64_TIF_32BIT 22
/* Bit of task_struct.atomic_flags for no_new_privs (PFA_NO_NEW_PRIVS). */
#define PFA_NO_NEW_PRIVS 0

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); /* thread id */
	__type(value, struct task_state);
} task_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct syscall_key);
	__type(value, struct syscall_set);
} syscall_sets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct odd_syscall_key);
	__type(value, __u8);
} odd_syscalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* mount namespace */
	__type(value, struct exec_info);
} exec_infos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* A zeroed syscall_set to insert new keys from: too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syscall_set);
} empty_set SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *counter = bpf_map_lookup_elem(&stats, &index);

	if (counter)
		*counter += 1;
}

/*
 * Field reads of a task. `direct` is a constant at every inlined call. It is true in
 * the tp_btf program, whose task pointer the verifier types from BTF, so the reads are
 * plain loads. It is false in the raw_tp programs, which must use probe reads. CO-RE
 * relocates the offsets either way.
 */
static __always_inline __u32 mount_namespace_read(struct task_struct *task, bool direct)
{
	if (direct)
		return task->nsproxy->mnt_ns->ns.inum;
	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

static __always_inline __u64 seccomp_filter_read(struct task_struct *task, bool direct)
{
	if (direct)
		return (__u64)task->seccomp.filter;
	return (__u64)BPF_CORE_READ(task, seccomp.filter);
}

static __always_inline __u32 mount_namespace_of(struct task_struct *task)
{
	return mount_namespace_read(task, false);
}

static __always_inline __u64 seccomp_filter_of(struct task_struct *task)
{
	return seccomp_filter_read(task, false);
}

static __always_inline void emit_event(__u32 type, __u32 mntns, __u32 pid)
{
	struct event *event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);

	if (!event) {
		count(STAT_EVENT_DROPPED);
		return;
	}
	event->type = type;
	event->mntns = mntns;
	event->pid = pid;
	event->reserved = 0;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	{
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		const char *name = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, name);

		event->cgroup[0] = 0;
		if (name)
			bpf_probe_read_kernel_str(event->cgroup, sizeof(event->cgroup), name);
	}
	bpf_ringbuf_submit(event, 0);
}

static __always_inline __u8 abi_of(struct task_struct *task, long nr, bool direct)
{
#if defined(__TARGET_ARCH_x86)
	__u32 status = direct ? task->thread_info.status : BPF_CORE_READ(task, thread_info.status);

	if (status & X86_TS_COMPAT)
		return ABI_COMPAT;
	if (nr & X32_SYSCALL_BIT)
		return ABI_X32;
#elif defined(__TARGET_ARCH_arm64)
	unsigned long flags = direct ? task->thread_info.flags : BPF_CORE_READ(task, thread_info.flags);

	if (flags & (1UL << ARM64_TIF_32BIT))
		return ABI_COMPAT;
#endif
	return ABI_NATIVE;
}

static __always_inline void mark_syscall(__u32 mntns, __u8 phase, __u8 abi, long nr)
{
	struct syscall_key key = { .mntns = mntns, .phase = phase, .abi = abi };
	struct syscall_set *set;
	__u32 zero = 0;
	long slot = nr;

	if (abi == ABI_X32)
		slot = nr & ~X32_SYSCALL_BIT;

	if (slot < 0 || slot >= SYSCALL_SLOTS) {
		struct odd_syscall_key odd = {
			.mntns = mntns, .phase = phase, .abi = abi, .nr = nr,
		};
		__u8 one = 1;

		if (bpf_map_update_elem(&odd_syscalls, &odd, &one, BPF_ANY))
			count(STAT_ODD_FULL);
		return;
	}

	set = bpf_map_lookup_elem(&syscall_sets, &key);
	if (!set) {
		struct syscall_set *empty = bpf_map_lookup_elem(&empty_set, &zero);

		if (!empty)
			return;
		/* Another CPU may have inserted the key meanwhile: NOEXIST keeps its marks. */
		bpf_map_update_elem(&syscall_sets, &key, empty, BPF_NOEXIST);
		set = bpf_map_lookup_elem(&syscall_sets, &key);
		if (!set) {
			count(STAT_SET_FULL);
			return;
		}
	}
	/* Read before write: a store to an already-set byte would only dirty the cache line. */
	if (!set->seen[slot & (SYSCALL_SLOTS - 1)])
		set->seen[slot & (SYSCALL_SLOTS - 1)] = 1;
}

/* Put a task at the start of SETUP in the mount namespace it just entered. */
static __always_inline void enter_mount_namespace(struct task_state *state,
						  struct task_struct *task, __u32 mntns,
						  __u32 pid, bool direct)
{
	state->mntns = mntns;
	state->phase = PHASE_SETUP;
	state->flags = 0;
	state->base_filter = seccomp_filter_read(task, direct);
	bpf_get_current_comm(state->comm, sizeof(state->comm));
	if (mntns != config.host_mntns)
		emit_event(EVENT_MNTNS_ENTERED, mntns, pid);
}

static __always_inline int on_sys_enter(struct task_struct *task, long nr, bool direct)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct task_state *state;
	__u32 mntns;

	/* -1 is not a syscall: it marks a call skipped by ptrace or seccomp. */
	if (nr == -1)
		return 0;

	if (config.all_containers) {
		/* The node agent's mode: the host's own tasks cost three loads and no map lookup. */
		mntns = mount_namespace_read(task, direct);
		if (mntns == config.host_mntns)
			return 0;
		state = bpf_map_lookup_elem(&task_states, &tid);
		if (!state) {
			/*
			 * A task that existed before recording began: its phase is unknown,
			 * so its calls are kept as the workload's (a superset, never a loss).
			 */
			struct task_state fresh = {
				.mntns = mntns, .phase = PHASE_WORKLOAD,
			};

			bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
			if (bpf_map_update_elem(&task_states, &tid, &fresh, BPF_NOEXIST))
				count(STAT_TASK_STATE_FULL);
			emit_event(EVENT_MNTNS_ENTERED, mntns, pid_tgid >> 32);
			mark_syscall(mntns, PHASE_WORKLOAD, abi_of(task, nr, direct), nr);
			return 0;
		}
	} else {
		/* The command line's mode: only registered tasks and their descendants. */
		state = bpf_map_lookup_elem(&task_states, &tid);
		if (!state)
			return 0;
		mntns = mount_namespace_read(task, direct);
	}

	if (state->mntns != mntns)
		enter_mount_namespace(state, task, mntns, pid_tgid >> 32, direct);

	if (state->phase == PHASE_SETUP) {
		__u64 filter = seccomp_filter_read(task, direct);

		if (state->flags & TASK_NEEDS_BASE_FILTER) {
			state->base_filter = filter;
			state->flags &= ~TASK_NEEDS_BASE_FILTER;
		} else if (filter != state->base_filter) {
			/*
			 * A new seccomp filter sits on top of the one the task entered with:
			 * the runtime installed the container's filter, from here on every call
			 * is filtered. A TSYNC install reaches sibling threads the same way.
			 */
			state->phase = PHASE_FILTERED;
		}
	}

	mark_syscall(mntns, state->phase, abi_of(task, nr, direct), nr);
	return 0;
}

/*
 * The fast entry point: a BTF-enabled tracepoint, whose task reads are plain loads.
 * It needs the running kernel's own BTF at /sys/kernel/btf/vmlinux.
 */
SEC("tp_btf/sys_enter")
int record_sys_enter(__u64 *ctx)
{
	return on_sys_enter(bpf_get_current_task_btf(), (long)ctx[1], true);
}

/* The fallback for a BTF file given by hand, which tp_btf programs cannot use. */
SEC("raw_tp/sys_enter")
int record_sys_enter_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_sys_enter((struct task_struct *)bpf_get_current_task(), (long)ctx->args[1], false);
}

SEC("raw_tp/sched_process_fork")
int record_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 parent_tid = BPF_CORE_READ(parent, pid);
	__u32 child_tid = BPF_CORE_READ(child, pid);
	struct task_state *parent_state;
	struct task_state child_state = {};

	parent_state = bpf_map_lookup_elem(&task_states, &parent_tid);
	if (parent_state) {
		/* The child's first syscall resets it to SETUP if it starts in a new mount namespace. */
		child_state = *parent_state;
	} else if (config.all_containers) {
		/*
		 * Every fork is tracked in the agent's mode, so a child that the host's
		 * runtime creates in a new mount namespace starts in SETUP rather than
		 * being taken for a task that predates the recording.
		 */
		__u32 mntns = mount_namespace_of(parent);

		child_state.mntns = mntns;
		child_state.phase = mntns == config.host_mntns ? PHASE_SETUP : PHASE_WORKLOAD;
		child_state.base_filter = seccomp_filter_of(parent);
		BPF_CORE_READ_STR_INTO(&child_state.comm, parent, comm);
	} else {
		return 0;
	}

	if (bpf_map_update_elem(&task_states, &child_tid, &child_state, BPF_ANY))
		count(STAT_TASK_STATE_FULL);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int record_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	__u32 old_tid = (__u32)ctx->args[1];
	__u32 tid = BPF_CORE_READ(task, pid);
	struct task_state *state;
	struct exec_info info = {};

	state = bpf_map_lookup_elem(&task_states, &tid);
	if (!state && old_tid != tid) {
		/* A non-leader thread called execve and took over the leader's thread id. */
		struct task_state *moved = bpf_map_lookup_elem(&task_states, &old_tid);

		if (!moved)
			return 0;
		if (bpf_map_update_elem(&task_states, &tid, moved, BPF_ANY)) {
			count(STAT_TASK_STATE_FULL);
			return 0;
		}
		bpf_map_delete_elem(&task_states, &old_tid);
		state = bpf_map_lookup_elem(&task_states, &tid);
	}
	if (!state || state->phase == PHASE_WORKLOAD)
		return 0;
	if (state->mntns == config.host_mntns) {
		/* Tasks of the host (the command line's launcher) need only the phase change. */
		state->phase = PHASE_WORKLOAD;
		return 0;
	}

	info.pid = BPF_CORE_READ(task, tgid);
	info.filtered = state->phase == PHASE_FILTERED;
	info.no_new_privs = (BPF_CORE_READ(task, atomic_flags) >> PFA_NO_NEW_PRIVS) & 1;
	__builtin_memcpy(info.runtime_comm, state->comm, sizeof(info.runtime_comm));
	/* The first execve of a mount namespace is its entrypoint; later ones keep it. */
	if (!bpf_map_update_elem(&exec_infos, &state->mntns, &info, BPF_NOEXIST))
		emit_event(EVENT_CONTAINER_STARTED, state->mntns, info.pid);

	state->phase = PHASE_WORKLOAD;
	return 0;
}

SEC("raw_tp/sched_process_exit")
int record_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	__u32 tid = BPF_CORE_READ(task, pid);
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct task_state *state = bpf_map_lookup_elem(&task_states, &tid);
	__u32 mntns;

	if (!state)
		return 0;
	mntns = state->mntns;
	bpf_map_delete_elem(&task_states, &tid);

	if (tid != tgid || mntns == config.host_mntns)
		return 0;

	/* The init process of a pid namespace ending means its container ended. */
	{
		struct pid *pid = BPF_CORE_READ(task, thread_pid);
		unsigned int level = BPF_CORE_READ(pid, level);
		int nr_in_namespace = 0;
		void *upid = (void *)pid + bpf_core_field_offset(struct pid, numbers) +
			     (__u64)(level & 31) * bpf_core_type_size(struct upid);

		bpf_probe_read_kernel(&nr_in_namespace, sizeof(nr_in_namespace),
				      upid + bpf_core_field_offset(struct upid, nr));
		if (level > 0 && nr_in_namespace == 1)
			emit_event(EVENT_CONTAINER_EXITED, mntns, tgid);
	}
	return 0;
}
