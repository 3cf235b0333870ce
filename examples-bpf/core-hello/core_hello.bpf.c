// SPDX-License-Identifier: GPL-2.0
// A CO-RE (Compile Once - Run Everywhere) program: it reads task_struct fields through
// a minimal hand-written struct marked preserve_access_index, so clang records BTF
// relocations instead of fixed offsets, and libbpf patches the real offsets from the
// running kernel's /sys/kernel/btf/vmlinux at load time. The same .o runs on 5.10 and
// 6.x although task_struct's layout differs between them (and between configs).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
	int tgid;
	char comm[16];
} __attribute__((preserve_access_index));

/* One global in .bss, shared with the loader through the .bss map. */
struct state {
	int target_tgid;    /* set by the loader */
	int hits;
	int core_pid;       /* task->pid read with CO-RE */
	int core_tgid;      /* task->tgid read with CO-RE */
	int helper_pid;     /* the same facts from bpf_get_current_pid_tgid() */
	int helper_tgid;
	char core_comm[16]; /* task->comm read with CO-RE */
} state;

SEC("raw_tracepoint/sys_enter")
int core_hello(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct task_struct *task;

	if ((int)(id >> 32) != state.target_tgid)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	state.core_pid = BPF_CORE_READ(task, pid);
	state.core_tgid = BPF_CORE_READ(task, tgid);
	bpf_core_read_str(state.core_comm, sizeof(state.core_comm), &task->comm);
	state.helper_pid = (int)id;
	state.helper_tgid = (int)(id >> 32);
	state.hits++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
