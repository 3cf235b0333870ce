//! QEMU command lines as pure functions (unit-tested argv, no I/O here), for the
//! architecture a run boots ([`crate::arch::Arch`]: binary, machine, CPU, console and
//! how the results channel is attached).
//!
//! Layout of a run: `-nodefaults -no-reboot -display none`, the first serial port (ttyS0
//! on a PC, ttyAMA0 on arm64's virt) = the console on QEMU's stdout (captured to
//! `console.log` and scanned by the watchdog), the results channel written to a file (a
//! second serial port, ttyS1, on a PC; a virtio console, hvc0, on virt, which has one
//! UART), `panic=-1` so a panicking guest reboots and `-no-reboot` turns that (and the
//! init's `reboot -f`) into QEMU exiting.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::arch::{Arch, ResultsDevice};

/// The accelerator actually used for a boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
    /// `-accel kvm -cpu host` or `-accel tcg -cpu max` (every feature TCG can emulate,
    /// so BPF JIT paths that test CPU features behave as on real hardware), with the CPU
    /// model `arch`'s file names for each.
    pub fn args(self, arch: &Arch) -> Vec<String> {
        let (accel, cpu) = match self {
            Accel::Kvm => ("kvm", &arch.qemu.cpu_kvm),
            Accel::Tcg => ("tcg", &arch.qemu.cpu_tcg),
        };
        vec!["-accel".into(), accel.into(), "-cpu".into(), cpu.clone()]
    }
}

/// Where the console goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    /// Console on QEMU's stdout (a pipe the watchdog reads); stdin unused.
    Captured,
    /// Console and QEMU monitor multiplexed on the terminal (`vm boot`; Ctrl-A X quits,
    /// Ctrl-C reaches the guest).
    Interactive,
}

/// Everything one QEMU invocation needs.
#[derive(Debug, Clone)]
pub struct QemuArgs {
    pub arch: &'static Arch,
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub append: String,
    pub memory_mb: u32,
    pub cpus: u32,
    pub accel: Accel,
    pub console: Console,
    /// File that receives the results channel. None: the channel exists but is discarded.
    pub results: Option<PathBuf>,
    /// QEMU writes its pid here (the watchdog uses it to stop a guest that hangs).
    pub pidfile: Option<PathBuf>,
}

/// The kernel command line: console on the architecture's first UART, reboot at once on
/// panic, our init. `quiet` keeps the serial console (slow under TCG) to warnings and
/// worse; panics, oopses, BUGs, RCU stalls and soft lockups still print.
pub fn kernel_cmdline(arch: &Arch, quiet: bool, extra: &[String]) -> String {
    let mut parts: Vec<String> = vec![
        format!("console={}", arch.qemu.console),
        "panic=-1".into(),
        "rdinit=/init".into(),
    ];
    if quiet {
        parts.push("quiet".into());
    }
    parts.extend(extra.iter().cloned());
    parts.join(" ")
}

/// Kernel arguments that skip probes the guest does not need, from the architecture's
/// file (why each is there is written next to it): `boot_args` for every boot, then
/// `tcg_kernel_args` under TCG (x86's `noapictimer`).
pub fn accel_kernel_args(arch: &Arch, accel: Accel) -> Vec<String> {
    let mut v = arch.qemu.boot_args.clone();
    if accel == Accel::Tcg {
        v.extend(arch.qemu.tcg_kernel_args.iter().cloned());
    }
    v
}

/// argv (without the program) for a guest run.
pub fn argv(q: &QemuArgs) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    for s in [
        "-nodefaults",
        "-no-user-config",
        "-no-reboot",
        "-display",
        "none",
        "-nic",
        "none",
    ] {
        push(s);
    }
    if !q.arch.qemu.machine.is_empty() {
        push("-machine");
        push(&q.arch.qemu.machine);
    }
    for s in q.accel.args(q.arch) {
        push(&s);
    }
    push("-m");
    push(&q.memory_mb.to_string());
    push("-smp");
    push(&q.cpus.max(1).to_string());
    match q.console {
        Console::Captured => {
            push("-serial");
            push("stdio");
        }
        Console::Interactive => {
            // Like `mon:stdio`, but with signal=off: Ctrl-C goes to the guest's shell
            // instead of killing QEMU. Ctrl-A X quits, Ctrl-A C toggles the monitor.
            for s in [
                "-chardev",
                "stdio,id=con0,mux=on,signal=off",
                "-serial",
                "chardev:con0",
                "-mon",
                "chardev=con0,mode=readline",
            ] {
                push(s);
            }
        }
    }
    let backend = match &q.results {
        Some(p) => {
            let mut s = OsString::from("file:");
            s.push(p.as_os_str());
            s
        }
        None => "null".into(),
    };
    match q.arch.qemu.results_device {
        ResultsDevice::Serial => {
            a.push("-serial".into());
            a.push(backend);
        }
        ResultsDevice::Virtconsole => {
            // A virtio-serial bus on the machine's virtio-mmio transport, one console
            // port on it (the guest's hvc0), its other end a file.
            let mut chardev = match &q.results {
                Some(p) => {
                    let mut s = OsString::from("file,id=results,path=");
                    s.push(p.as_os_str());
                    s
                }
                None => OsString::from("null,id=results"),
            };
            if q.results.is_none() {
                chardev = OsString::from("null,id=results");
            }
            for s in ["-device", "virtio-serial-device", "-chardev"] {
                a.push(s.into());
            }
            a.push(chardev);
            a.push("-device".into());
            a.push("virtconsole,chardev=results".into());
        }
    }
    a.push("-kernel".into());
    a.push(q.kernel.clone().into_os_string());
    if let Some(i) = &q.initrd {
        a.push("-initrd".into());
        a.push(i.clone().into_os_string());
    }
    a.push("-append".into());
    a.push(q.append.clone().into());
    if let Some(p) = &q.pidfile {
        a.push("-pidfile".into());
        a.push(p.clone().into_os_string());
    }
    a
}

/// argv for the KVM probe: the kernel alone (no initrd) under KVM with early printk on
/// ttyS0. A live guest prints `Linux version` within a fraction of a second; a KVM that
/// hangs prints nothing. Without an initrd the kernel panics at the root mount and
/// `panic=-1` + `-no-reboot` end QEMU by themselves.
pub fn probe_argv(
    arch: &'static Arch,
    kernel: &std::path::Path,
    pidfile: Option<&std::path::Path>,
) -> Vec<OsString> {
    let q = QemuArgs {
        arch,
        kernel: kernel.to_path_buf(),
        initrd: None,
        append: format!(
            "console={} {} panic=-1",
            arch.qemu.console, arch.qemu.earlycon
        ),
        memory_mb: 256,
        cpus: 1,
        accel: Accel::Kvm,
        console: Console::Captured,
        results: None,
        pidfile: pidfile.map(|p| p.to_path_buf()),
    };
    argv(&q)
}

/// The QEMU binary: `$LABCTL_QEMU` if set (tests point it at a fake), else the
/// architecture's (`qemu-system-x86_64`, `qemu-system-aarch64`) from PATH.
pub fn qemu_program(arch: &Arch) -> PathBuf {
    std::env::var_os("LABCTL_QEMU")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(&arch.qemu.binary))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    fn base() -> QemuArgs {
        QemuArgs {
            arch: Arch::x86_64(),
            kernel: "/b/bzImage".into(),
            initrd: Some("/r/initrd.img".into()),
            append: kernel_cmdline(Arch::x86_64(), true, &[]),
            memory_mb: 512,
            cpus: 2,
            accel: Accel::Tcg,
            console: Console::Captured,
            results: Some("/r/results.bin".into()),
            pidfile: Some("/r/qemu.pid".into()),
        }
    }

    /// The value that follows `flag` (first occurrence).
    fn after(v: &[String], flag: &str) -> Vec<String> {
        v.iter()
            .enumerate()
            .filter(|(_, s)| *s == flag)
            .map(|(i, _)| v[i + 1].clone())
            .collect()
    }

    #[test]
    fn run_argv_has_the_hermetic_basics() {
        let v = strs(&argv(&base()));
        for f in ["-nodefaults", "-no-reboot", "-no-user-config"] {
            assert!(v.contains(&f.to_string()), "{f} missing: {v:?}");
        }
        assert_eq!(after(&v, "-display"), ["none"]);
        assert_eq!(after(&v, "-m"), ["512"]);
        assert_eq!(after(&v, "-smp"), ["2"]);
        assert_eq!(after(&v, "-kernel"), ["/b/bzImage"]);
        assert_eq!(after(&v, "-initrd"), ["/r/initrd.img"]);
        assert_eq!(after(&v, "-pidfile"), ["/r/qemu.pid"]);
        // ttyS0 = console on stdout, ttyS1 = results file, in this order.
        assert_eq!(after(&v, "-serial"), ["stdio", "file:/r/results.bin"]);
        assert_eq!(after(&v, "-accel"), ["tcg"]);
        assert_eq!(after(&v, "-cpu"), ["max"]);
    }

    #[test]
    fn kvm_uses_host_cpu_and_interactive_muxes_the_monitor() {
        let mut q = base();
        q.accel = Accel::Kvm;
        q.console = Console::Interactive;
        q.results = None;
        q.initrd = None;
        q.pidfile = None;
        q.cpus = 0;
        let v = strs(&argv(&q));
        assert_eq!(after(&v, "-accel"), ["kvm"]);
        assert_eq!(after(&v, "-cpu"), ["host"]);
        assert_eq!(after(&v, "-serial"), ["chardev:con0", "null"]);
        assert_eq!(after(&v, "-chardev"), ["stdio,id=con0,mux=on,signal=off"]);
        assert_eq!(after(&v, "-mon"), ["chardev=con0,mode=readline"]);
        assert_eq!(after(&v, "-smp"), ["1"]);
        assert!(!v.contains(&"-initrd".to_string()) && !v.contains(&"-pidfile".to_string()));
    }

    #[test]
    fn cmdline_panics_to_reboot_on_ttys0() {
        let c = kernel_cmdline(Arch::x86_64(), true, &["8250.nr_uarts=4".to_string()]);
        assert_eq!(
            c,
            "console=ttyS0 panic=-1 rdinit=/init quiet 8250.nr_uarts=4"
        );
        assert!(!kernel_cmdline(Arch::x86_64(), false, &[]).contains("quiet"));
    }

    #[test]
    fn tcg_skips_the_apic_timer_calibration() {
        let x = Arch::x86_64();
        assert_eq!(
            accel_kernel_args(x, Accel::Tcg),
            ["i8042.noaux", "i8042.nokbd", "noapictimer"]
        );
        assert_eq!(
            accel_kernel_args(x, Accel::Kvm),
            ["i8042.noaux", "i8042.nokbd"]
        );
        // arm64's virt machine has no PS/2 controller and no APIC.
        let a = Arch::by_name("arm64").unwrap();
        assert!(accel_kernel_args(a, Accel::Tcg).is_empty());
    }

    #[test]
    fn append_stays_one_argument() {
        let v = strs(&argv(&base()));
        assert_eq!(
            after(&v, "-append"),
            ["console=ttyS0 panic=-1 rdinit=/init quiet"]
        );
    }

    #[test]
    fn probe_is_kvm_without_initrd() {
        let v = strs(&probe_argv(
            Arch::x86_64(),
            std::path::Path::new("/k"),
            None,
        ));
        assert_eq!(after(&v, "-accel"), ["kvm"]);
        assert!(!v.contains(&"-initrd".to_string()));
        assert!(after(&v, "-append")[0].contains("earlyprintk=serial"));
        assert!(v.contains(&"-no-reboot".to_string()));
        let a = Arch::by_name("arm64").unwrap();
        let v = strs(&probe_argv(a, std::path::Path::new("/k"), None));
        assert_eq!(
            after(&v, "-append"),
            ["console=ttyAMA0 earlycon=pl011,0x9000000 panic=-1"]
        );
    }

    #[test]
    fn arm64_boots_virt_with_the_results_on_a_virtio_console() {
        let mut q = base();
        q.arch = Arch::by_name("arm64").unwrap();
        q.append = kernel_cmdline(q.arch, true, &[]);
        let v = strs(&argv(&q));
        assert_eq!(after(&v, "-machine"), ["virt"]);
        assert_eq!(after(&v, "-cpu"), ["max,pauth-impdef=on,lpa2=off"]);
        // One UART (the console); the results on a virtconsole backed by the file.
        assert_eq!(after(&v, "-serial"), ["stdio"]);
        assert_eq!(
            after(&v, "-chardev"),
            ["file,id=results,path=/r/results.bin"]
        );
        assert_eq!(
            after(&v, "-device"),
            ["virtio-serial-device", "virtconsole,chardev=results"]
        );
        assert_eq!(
            after(&v, "-append"),
            ["console=ttyAMA0 panic=-1 rdinit=/init quiet"]
        );
        // x86 has no -machine (QEMU's default) and no virtio console.
        let x = strs(&argv(&base()));
        assert!(after(&x, "-machine").is_empty() && after(&x, "-device").is_empty());
    }
}
