/* SPDX-License-Identifier: GPL-2.0 */
/* What the BPF program sends to the loader for each exec, through the ring buffer.
 * Both sides include this file, so they agree on the layout. */
#ifndef HELLO_H
#define HELLO_H

struct event {
	int pid;       /* the process that called exec (its tgid) */
	int ppid;      /* its parent: task->real_parent->tgid */
	char comm[16]; /* its new name: task->comm */
};

#endif
