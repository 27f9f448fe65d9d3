"""The eBPF syscall recorder: the BPF program, its libbpf loader and the collection of results."""
