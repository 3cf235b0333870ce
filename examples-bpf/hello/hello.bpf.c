// SPDX-License-Identifier: GPL-2.0
// The seed notes' hello world, done right: a kprobe program that calls
// bpf_trace_printk("Hello, World!") each time the kernel opens a file.
// The loader picks the probed function at run time (do_sys_openat2 from 5.6 on,
// do_sys_open before), so this object is compiled once for every kernel. The section
// names a function because older libbpf (Debian 11 ships 0.3) only knows
// "kprobe/<function>"; the loader attaches where it wants regardless.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("kprobe/do_sys_open")
int hello(void *ctx)
{
	char msg[] = "Hello, World!\n";

	bpf_trace_printk(msg, sizeof(msg));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
