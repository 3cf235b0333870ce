#!/usr/bin/env python3
# The seed notes' hello.py (section 6.3.2) with its bug fixed: the notes attach
# fn_name="hello_world" but the C function is named `hello`, so BCC cannot find it.
# Also: the probed function is do_sys_openat2 from 5.6 on and do_sys_open before, and
# the script stops after the first line (with a timeout) so it can run unattended.
import os
import sys

from bcc import BPF

HERE = os.path.dirname(os.path.abspath(__file__))

b = BPF(src_file=os.path.join(HERE, "hello.c"))
event = "do_sys_openat2" if BPF.ksymname("do_sys_openat2") != -1 else "do_sys_open"
b.attach_kprobe(event=event, fn_name="hello")  # was fn_name="hello_world"
print("attached: kprobe %s" % event, flush=True)

# Trigger an openat ourselves, then read trace_pipe until the greeting shows up.
open("/proc/self/status").close()
deadline_lines = 200
for _ in range(deadline_lines):
    (task, pid, cpu, flags, ts, msg) = b.trace_fields()
    if b"Hello, World!" in msg:
        print("trace: %s %s" % (task.decode(errors="replace"), msg.decode(errors="replace")), flush=True)
        print("result: ok", flush=True)
        sys.exit(0)
print("error: no Hello, World! in trace_pipe", flush=True)
sys.exit(1)
