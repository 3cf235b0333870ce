#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# A BCC kprobe: BCC compiles the C text below with its own LLVM when the script starts
# (against the running kernel's headers), loads it and attaches it to the kernel function
# do_sys_openat2 (every open). The script then opens a file itself and prints the
# greetings its own opens produced, read from the kernel's trace buffer.
#
# Run it as root on the lab kernel: labctl vm run VERSION --backend vng --share DIR -- make run
# (README.md has the exact command for the kernel this project was made for.)
#
# Try it: greet on vfs_unlink instead (EVENT below; os.unlink is already called), and
# change the text in bpf_trace_printk.
import os
import sys
import time

from bcc import BPF

EVENT = "do_sys_openat2"

PROGRAM = r"""
#include <linux/sched.h>

int hello(struct pt_regs *ctx)
{
    char comm[TASK_COMM_LEN];

    bpf_get_current_comm(&comm, sizeof(comm));
    bpf_trace_printk("Hello, BCC! %s opened a file\n", comm);
    return 0;
}
"""

b = BPF(text=PROGRAM)
b.attach_kprobe(event=EVENT, fn_name="hello")
print("attached hello at kprobe %s" % EVENT, flush=True)

# The trigger: open, write and remove a file.
path = "/tmp/labctl-hello-bcc"
with open(path, "w") as f:
    f.write("hi\n")
os.unlink(path)

# Print this process's lines from the trace buffer (other processes may open files too).
me = os.getpid()
deadline = time.monotonic() + 5
seen = 0
while time.monotonic() < deadline:
    (task, pid, cpu, flags, ts, msg) = b.trace_fields(nonblocking=True)
    if msg is None:
        time.sleep(0.05)
        if seen:
            break
        continue
    if pid == me:
        print(msg.decode(errors="replace"), flush=True)
        seen += 1
if not seen:
    print("no line from the program within 5 s: does opening a file call %s?" % EVENT, file=sys.stderr)
    sys.exit(1)
