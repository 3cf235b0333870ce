//! QEMU command lines as pure functions (unit-tested argv, no I/O here).
//!
//! Layout of a run: `-nodefaults -no-reboot -display none`, ttyS0 = the console on
//! QEMU's stdout (captured to `console.log` and scanned by the watchdog), ttyS1 = the
//! results channel written to a file, `panic=-1` so a panicking guest reboots and
//! `-no-reboot` turns that (and the init's `reboot -f`) into QEMU exiting.

use std::ffi::OsString;
use std::path::PathBuf;

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
    /// so BPF JIT paths that test CPU features behave as on real hardware).
    pub fn args(self) -> Vec<&'static str> {
        match self {
            Accel::Kvm => vec!["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => vec!["-accel", "tcg", "-cpu", "max"],
        }
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
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub append: String,
    pub memory_mb: u32,
    pub cpus: u32,
    pub accel: Accel,
    pub console: Console,
    /// File that receives ttyS1 (the results channel). None: ttyS1 exists but is discarded.
    pub results: Option<PathBuf>,
    /// QEMU writes its pid here (the watchdog uses it to stop a guest that hangs).
    pub pidfile: Option<PathBuf>,
}

/// The kernel command line: console on ttyS0, reboot at once on panic, our init.
/// `quiet` keeps the serial console (slow under TCG) to warnings and worse; panics,
/// oopses, BUGs, RCU stalls and soft lockups still print.
pub fn kernel_cmdline(quiet: bool, extra: &[String]) -> String {
    let mut parts: Vec<String> = vec![
        "console=ttyS0".into(),
        "panic=-1".into(),
        "rdinit=/init".into(),
    ];
    if quiet {
        parts.push("quiet".into());
    }
    parts.extend(extra.iter().cloned());
    parts.join(" ")
}

/// The data file of boot-time kernel words (`vm/kernel-args`: `<accel> <word>` lines).
const KERNEL_ARGS: &str = include_str!("../../../vm/kernel-args");

/// Kernel arguments that skip probes the guest does not need, for this accelerator:
/// the `all` and the accelerator's lines of `vm/kernel-args` (why each is there is
/// written next to it), e.g. `noapictimer` under TCG only.
pub fn accel_kernel_args(accel: Accel) -> Vec<String> {
    parse_kernel_args(KERNEL_ARGS, accel)
}

fn parse_kernel_args(text: &str, accel: Accel) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|l| l.split_once(char::is_whitespace))
        .filter(|(scope, _)| *scope == "all" || *scope == accel.name())
        .map(|(_, word)| word.trim().to_string())
        .collect()
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
    for s in q.accel.args() {
        push(s);
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
    push("-serial");
    match &q.results {
        Some(p) => {
            let mut s = OsString::from("file:");
            s.push(p.as_os_str());
            a.push(s);
        }
        None => a.push("null".into()),
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
pub fn probe_argv(kernel: &std::path::Path, pidfile: Option<&std::path::Path>) -> Vec<OsString> {
    let q = QemuArgs {
        kernel: kernel.to_path_buf(),
        initrd: None,
        append: "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1".into(),
        memory_mb: 256,
        cpus: 1,
        accel: Accel::Kvm,
        console: Console::Captured,
        results: None,
        pidfile: pidfile.map(|p| p.to_path_buf()),
    };
    argv(&q)
}

/// The QEMU binary: `$LABCTL_QEMU` if set (tests point it at a fake), else
/// `qemu-system-x86_64` from PATH.
pub fn qemu_program() -> PathBuf {
    std::env::var_os("LABCTL_QEMU")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    fn base() -> QemuArgs {
        QemuArgs {
            kernel: "/b/bzImage".into(),
            initrd: Some("/r/initrd.img".into()),
            append: kernel_cmdline(true, &[]),
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
        let c = kernel_cmdline(true, &["8250.nr_uarts=4".to_string()]);
        assert_eq!(
            c,
            "console=ttyS0 panic=-1 rdinit=/init quiet 8250.nr_uarts=4"
        );
        assert!(!kernel_cmdline(false, &[]).contains("quiet"));
    }

    #[test]
    fn tcg_skips_the_apic_timer_calibration_and_no_guest_probes_ps2() {
        assert_eq!(
            accel_kernel_args(Accel::Tcg),
            ["i8042.noaux", "i8042.nokbd", "noapictimer"]
        );
        assert_eq!(
            accel_kernel_args(Accel::Kvm),
            ["i8042.noaux", "i8042.nokbd"]
        );
    }

    #[test]
    fn kernel_args_lines_are_scoped_and_commented() {
        let text = "# header\n\nall a=1   # why\ntcg b\nkvm c\n  all   d  \n";
        assert_eq!(parse_kernel_args(text, Accel::Tcg), ["a=1", "b", "d"]);
        assert_eq!(parse_kernel_args(text, Accel::Kvm), ["a=1", "c", "d"]);
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
        let v = strs(&probe_argv(std::path::Path::new("/k"), None));
        assert_eq!(after(&v, "-accel"), ["kvm"]);
        assert!(!v.contains(&"-initrd".to_string()));
        assert!(after(&v, "-append")[0].contains("earlyprintk=serial"));
        assert!(v.contains(&"-no-reboot".to_string()));
    }
}
