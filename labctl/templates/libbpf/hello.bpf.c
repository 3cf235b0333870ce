// SPDX-License-Identifier: GPL-2.0
// Your first BPF program: a kprobe. The kernel runs hello() each time any process
// enters the kernel function named in SEC("kprobe/<function>"), and hello() prints one
// line into the kernel's trace buffer with bpf_printk. The loader (hello.c) loads this
// object, attaches it, makes the kernel call the function (it opens and removes a file)
// and prints what arrived in /sys/kernel/tracing/trace_pipe.
//
// vmlinux.h holds every type of the lab kernel this project was made for (generated
// from its BTF by `labctl new`); the bpf/ headers come from the host's libbpf.
//
// Try it: probe vfs_unlink instead (the SEC line) and say "Bye, file!" instead of
// "Hello, BPF!" (the bpf_printk line); then `make` on the host and run it again.
// Which functions exist? `grep -w vfs_unlink /proc/kallsyms` in the guest.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("kprobe/do_sys_openat2")
int hello(void *ctx)
{
	char comm[16];
	int pid = bpf_get_current_pid_tgid() >> 32;

	bpf_get_current_comm(comm, sizeof(comm));
	bpf_printk("Hello, BPF! %s (pid %d) opened a file", comm, pid);
	return 0;
}

// bpf_printk and kprobes are only for GPL-compatible programs.
char LICENSE[] SEC("license") = "GPL";
