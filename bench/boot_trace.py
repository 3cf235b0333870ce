#!/usr/bin/env python3
"""Where a labctl guest boot spends its time, from the arrival times of console lines.

usage: bench/boot_trace.py COMMANDS_LOG N

Takes the newest `qemu-system-x86_64` line of labctl's command log (the boot that
`labctl vm run` just made: same kernel, initrd, memory, CPUs, command line) and reruns it
N times in three ways, printing medians:

  quiet    the command line as labctl ran it (its QEMU wall time);
  traced   without `quiet`, with `earlyprintk=serial`, and SeaBIOS's debug port muxed onto
           the console, so every phase has a line whose arrival on the host marks it:
             QEMU start .... "SeaBIOS (version"   firmware ....... "Booting from ROM"
             kernel load + decompression ........ "Linux version"
             kernel init ........................ "Run /init as init process"
             init (busybox, mounts, env) ........ "labctl-init: running"
             the command ........................ "labctl-init: done"
             power-off .......................... QEMU's exit
           (the initramfs unpack, inside kernel init, from the kernel's own timestamps);
  bare     QEMU with a 64 KiB firmware whose reset vector writes to isa-debug-exit:
           starting and ending QEMU itself, same accelerator, memory and CPUs.

Benchmarks print numbers; nothing here judges them.
"""
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import os

MARKS = [
    ("QEMU start (process to firmware)", None, "SeaBIOS (version"),
    ("firmware (SeaBIOS, linuxboot_dma)", "SeaBIOS (version", "Booting from ROM"),
    ("kernel load + decompression", "Booting from ROM", "Linux version"),
    ("kernel init to /init", "Linux version", "Run /init as init process"),
    ("init: busybox, mounts, env", "Run /init as init process", "labctl-init: running"),
    ("the command (true)", "labctl-init: running", "labctl-init: done"),
    ("power-off (reboot -f to QEMU exit)", "labctl-init: done", "<exit>"),
]


def qemu_argv(log):
    line = None
    with open(log, errors="replace") as f:
        for raw in f:
            if "qemu-system-x86_64 " in raw:
                line = raw
    if line is None:
        sys.exit(f"no qemu-system-x86_64 line in {log}")
    words = shlex.split(line)
    return words[words.index("qemu-system-x86_64"):]


def value(argv, flag):
    return argv[argv.index(flag) + 1]


def traced_argv(argv):
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a == "-serial" and argv[i + 1] == "stdio":
            out += ["-chardev", "stdio,id=c0,mux=on,signal=off", "-serial", "chardev:c0",
                    "-device", "isa-debugcon,iobase=0x402,chardev=c0"]
            i += 2
            continue
        if a == "-append":
            words = [w for w in argv[i + 1].split() if w != "quiet"]
            out += ["-append", " ".join(words + ["earlyprintk=serial,ttyS0,115200", "printk.time=1"])]
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def run_lines(argv):
    """Run argv; (arrival time of each console line, wall time to exit)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    lines, buf, fd = [], b"", p.stdout.fileno()
    while True:
        b = os.read(fd, 65536)
        now = time.monotonic() - t0
        if not b:
            break
        buf += b
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            lines.append((now, line.decode(errors="replace").rstrip("\r")))
    p.wait()
    return lines, time.monotonic() - t0


def first(lines, needle):
    for t, l in lines:
        if needle in l:
            return t
    return None


def printk_span(lines, start, end):
    """Seconds between two kernel messages by the kernel's own timestamps."""
    ts = {}
    for _, l in lines:
        m = re.match(r"\[\s*(\d+\.\d+)\]\s(.*)", l)
        if m:
            for key in (start, end):
                if key in m.group(2) and key not in ts:
                    ts[key] = float(m.group(1))
    if start in ts and end in ts:
        return ts[end] - ts[start]
    return None


def bare_qemu(argv, tmp):
    rom = os.path.join(tmp, "exit.rom")
    b = bytearray(b"\xf4" * 65536)
    b[0xFFF0:0xFFF5] = b"\xb0\x00\xe6\xf4\xf4"  # mov al,0; out 0xf4,al; hlt
    with open(rom, "wb") as f:
        f.write(bytes(b))
    bare = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
            "-accel", value(argv, "-accel"), "-cpu", value(argv, "-cpu"),
            "-m", value(argv, "-m"), "-smp", value(argv, "-smp"),
            "-bios", rom, "-device", "isa-debug-exit,iobase=0xf4,iosize=1"]
    t0 = time.monotonic()
    subprocess.run(bare, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    log, n = sys.argv[1], int(sys.argv[2])
    argv = qemu_argv(log)
    traced = traced_argv(argv)
    phases = {name: [] for name, _, _ in MARKS}
    unpack, quiet, traced_wall, bare = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(n):
            bare.append(bare_qemu(argv, tmp))
            quiet.append(run_lines(argv)[1])
            lines, wall = run_lines(traced)
            traced_wall.append(wall)
            for name, a, b in MARKS:
                ta = 0.0 if a is None else first(lines, a)
                tb = wall if b == "<exit>" else first(lines, b)
                phases[name].append(tb - ta if ta is not None and tb is not None else None)
            u = printk_span(lines, "Unpacking initramfs", "Freeing initrd memory")
            if u is None:  # 5.11+ unpacks asynchronously
                u = printk_span(lines, "Trying to unpack rootfs image", "Freeing initrd memory")
            unpack.append(u)
    ap = value(argv, "-append")
    print(f"kernel {value(argv, '-kernel')}")
    print(f"initrd {os.path.getsize(value(argv, '-initrd'))} bytes; -m {value(argv, '-m')} -smp {value(argv, '-smp')}; append: {ap}")
    print(f"{'phase (TCG, median of ' + str(n) + ', traced boot)':44} seconds")
    for name, _, _ in MARKS:
        m = med(phases[name])
        print(f"  {name:42} {m:7.3f}" if m is not None else f"  {name:42}     n/a")
    m = med(unpack)
    if m is not None:
        print(f"    of kernel init: initramfs unpack          {m:7.3f}  (kernel timestamps)")
    print(f"  {'traced boot, QEMU wall':42} {med(traced_wall):7.3f}  (a verbose console costs time)")
    print(f"{'QEMU as labctl ran it (quiet), wall':44} {med(quiet):7.3f}  runs: {' '.join(f'{x:.3f}' for x in quiet)}")
    print(f"{'bare QEMU start + exit (no firmware, no kernel)':44} {med(bare):7.3f}")


if __name__ == "__main__":
    main()
