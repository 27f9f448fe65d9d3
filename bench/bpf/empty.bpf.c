// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * The floor of any eBPF syscall recorder: a program on the same BTF-enabled
 * tracepoint as the project's recorder (tp_btf/sys_enter) that returns at once.
 * What it costs per syscall is what the kernel charges for running any BPF
 * program there, before the program does any work of its own.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sys_enter")
int empty_sys_enter(void *ctx)
{
	return 0;
}
