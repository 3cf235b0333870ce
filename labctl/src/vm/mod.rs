//! The VM harness: a hermetic initramfs guest (newc cpio written here), QEMU argv as
//! pure functions, accelerator probing (KVM only when it proves alive, else TCG),
//! console + results channels, watchdog, gdb stub ([`gdb`]). Owns [`VmSpec`],
//! [`VmOutcome`], [`VmError`] and the typed backend choice [`Backend`].
//!
//! A run: decide the accelerator ([`accel`]) → prepare the chosen backend (a
//! [`runner::Backend`] impl: [`qemu_backend`] builds or reuses the base image, appends
//! the per-run archive ([`initramfs`]) and fixes QEMU's argv ([`qemu`]); [`vng`] lays out
//! virtme-ng's shared folder) → [`runner::run`], the one run loop: console streamed into
//! `console.log`, scanned by [`watchdog`] and emitted line by line, deadlines, results
//! read back and classified. A new backend is one impl. See docs/vm.md.

pub mod accel;
pub mod cpio;
pub mod elf;
pub mod gdb;
pub mod initramfs;
pub mod programs;
pub mod qemu;
pub mod qemu_backend;
pub mod runner;
pub mod share;
pub mod tsc;
pub mod vng;
pub mod watchdog;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use accel::{AccelChoice, AccelVerdict};
pub use qemu::Accel;
pub use watchdog::Alarm;

use crate::events::EventSink;
use crate::home::Home;
use crate::process::ProcessError;

/// Which program boots the guest: the typed choice (CLI `--backend`, the suite's
/// requests); each variant's [`runner::Backend`] impl does the booting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// labctl's own initramfs guest under QEMU (hermetic, fast).
    #[default]
    Qemu,
    /// virtme-ng: the host's root filesystem shared read-only over 9p.
    Vng,
}

/// Guest memory in MiB for a plain boot (`vm run --memory`, [`VmSpec::new`]). The
/// acceptance suite asks for more: [`crate::lab_suite::DEFAULT_MEMORY_MB`].
pub const DEFAULT_MEMORY_MB: u32 = 512;

/// A file (or directory tree) copied into the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFile {
    pub host: PathBuf,
    /// Absolute path in the guest.
    pub guest: String,
    /// Also copy the shared libraries the ELF programs among these files need.
    pub with_libs: bool,
    /// Look those libraries up in this root filesystem (the one whose tools built the
    /// programs, `--toolchain debian:<suite>`) instead of the host. Libraries from a
    /// root win over the host's copy of the same file in the guest.
    pub sysroot: Option<PathBuf>,
}

/// What to boot and what to run.
#[derive(Debug, Clone)]
pub struct VmSpec {
    /// The boot image (bzImage, arm64's Image).
    pub kernel: PathBuf,
    /// The guest's architecture: QEMU binary, machine, console, results channel, and
    /// where busybox and the programs' libraries come from.
    pub arch: &'static crate::arch::Arch,
    /// The guest userland root of a foreign architecture (busybox, the C library);
    /// None: the host's.
    pub guest_root: Option<PathBuf>,
    /// modules_install staging dir (contains lib/modules/<release>).
    pub modules: Option<PathBuf>,
    /// insmod (paths, `*.ko`) or modprobe (names) these at boot, before the script.
    pub load_modules: Vec<String>,
    /// Payload.
    pub files: Vec<GuestFile>,
    /// /bin/sh script run by the init as the command (its cwd is /root).
    pub script: String,
    pub accel: AccelChoice,
    pub memory_mb: u32,
    pub cpus: u32,
    /// None = defaults scaled for TCG ([`default_timeouts`]).
    pub boot_timeout: Option<Duration>,
    pub timeout: Option<Duration>,
    /// console.log, results.bin, initrd.img, result.json go here.
    pub run_dir: PathBuf,
    pub backend: Backend,
    /// `vm boot`: shell on the console, terminal handed to QEMU.
    pub interactive: bool,
    /// Extra kernel command-line words.
    pub kernel_args: Vec<String>,
    /// Full kernel log on the console instead of `quiet`.
    pub verbose_console: bool,
    /// How long a KVM probe guest may stay silent (auto only).
    pub probe_timeout: Duration,
    /// QEMU program; None = `$LABCTL_QEMU`, else `qemu-system-x86_64` (tests use a fake).
    pub qemu: Option<PathBuf>,
    /// The KVM device `auto` checks (default /dev/kvm; tests point it elsewhere).
    pub kvm_device: PathBuf,
    /// Host folders mounted in the guest (`--share`).
    pub shares: Vec<share::Share>,
    /// Where the command (and `vm boot`'s shell) starts; None = /root (QEMU) or /tmp (vng).
    pub workdir: Option<String>,
    /// QEMU's gdb stub (`--gdb`): adds `nokaslr`, and the boot and command limits
    /// default to none.
    pub gdb: Option<gdb::GdbStub>,
}

impl VmSpec {
    /// A spec with the defaults `labctl vm run` uses.
    pub fn new(
        kernel: impl Into<PathBuf>,
        run_dir: impl Into<PathBuf>,
        script: impl Into<String>,
    ) -> Self {
        VmSpec {
            kernel: kernel.into(),
            arch: crate::arch::Arch::host(),
            guest_root: None,
            modules: None,
            load_modules: Vec::new(),
            files: Vec::new(),
            script: script.into(),
            accel: AccelChoice::Auto,
            memory_mb: DEFAULT_MEMORY_MB,
            cpus: 2,
            boot_timeout: None,
            timeout: None,
            run_dir: run_dir.into(),
            backend: Backend::Qemu,
            interactive: false,
            kernel_args: Vec::new(),
            verbose_console: false,
            probe_timeout: accel::DEFAULT_PROBE_TIMEOUT,
            qemu: None,
            kvm_device: PathBuf::from("/dev/kvm"),
            shares: Vec::new(),
            workdir: None,
            gdb: None,
        }
    }
}

/// The result of a run whose guest reported back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VmOutcome {
    pub exit_code: i32,
    /// The script's stdout+stderr via the results channel.
    #[serde(skip)]
    pub output: Vec<u8>,
    pub console_log: PathBuf,
    pub accel: String,
    pub accel_reason: String,
    pub duration: Duration,
    /// `uname -r` of the guest as the init reported it.
    pub release: Option<String>,
    /// From QEMU start to the init running.
    pub boot_time: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("kernel image {} not found (build one with `labctl kernel build VERSION`, or pass --kernel PATH to a bzImage)", path.display())]
    KernelMissing { path: PathBuf },
    #[error("no usable static busybox: {detail}; install it (Debian/Ubuntu: `apt install busybox-static`, Fedora: `dnf install busybox`) or point LABCTL_BUSYBOX at one")]
    BusyboxMissing { detail: String },
    #[error(transparent)]
    Elf(#[from] elf::ElfError),
    #[error("modules dir {}: {detail}", path.display())]
    Modules { path: PathBuf, detail: String },
    #[error("guest file {}: {detail}", path.display())]
    Payload { path: PathBuf, detail: String },
    #[error("cannot write the guest image: {detail}")]
    Image { detail: String },
    /// The guest image's lock or one of the run's files could not be had or written.
    #[error("cannot write the guest image: {source}")]
    ImageHome {
        #[source]
        source: crate::home::HomeError,
    },
    #[error("--accel kvm: {reason}; use --accel auto or tcg")]
    KvmUnavailable { reason: String },
    #[error("cannot run `{program}`: {detail} (Debian: `apt install qemu-system-x86`; `labctl doctor` checks the host)")]
    QemuMissing { program: String, detail: String },
    #[error("the guest hit a {}; QEMU was stopped. Console excerpt:\n{excerpt}\n(full console: {})", kind.describe(), log.display())]
    Panic {
        kind: Alarm,
        excerpt: String,
        log: PathBuf,
    },
    #[error("the guest did not finish booting within {}s (no `labctl-init: up` on the console); raise --boot-timeout or check the kernel's console options (SERIAL_8250_CONSOLE, BLK_DEV_INITRD, DEVTMPFS). Console excerpt:\n{excerpt}\n(full console: {})", timeout.as_secs(), log.display())]
    BootTimeout {
        timeout: Duration,
        excerpt: String,
        log: PathBuf,
    },
    #[error("the command did not finish within {}s and QEMU was stopped (raise --timeout). Output so far:\n{output}\n(full console: {})", timeout.as_secs(), log.display())]
    CommandTimeout {
        timeout: Duration,
        output: String,
        log: PathBuf,
    },
    #[error("the guest ended without reporting an exit status on the results channel (ttyS1: does the kernel have SERIAL_8250_NR_UARTS >= 2 and SERIAL_8250_RUNTIME_UARTS >= 2?). Console excerpt:\n{excerpt}\n(full console: {})", log.display())]
    NoResult { excerpt: String, log: PathBuf },
    #[error("QEMU failed ({status}) before the guest reported back:\n{excerpt}\n(full log: {})", log.display())]
    QemuFailed {
        status: String,
        excerpt: String,
        log: PathBuf,
    },
    #[error("virtme-ng: {detail}")]
    Vng { detail: String },
    #[error("--gdb needs the QEMU backend (virtme-ng starts QEMU itself); drop --backend vng")]
    GdbNeedsQemu,
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl VmError {
    /// True for Ctrl-C: a child (QEMU, a tool) interrupted, or the guest image's lock wait.
    pub fn is_interrupted(&self) -> bool {
        match self {
            VmError::Process(e) => e.is_interrupted(),
            VmError::ImageHome { source } => source.is_interrupted(),
            _ => false,
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> VmError + 'a {
    move |source| VmError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// (boot, command) timeouts when the spec leaves them unset: generous under TCG,
/// where everything runs 5-20x slower than under KVM.
pub fn default_timeouts(accel: Accel) -> (Duration, Duration) {
    match accel {
        Accel::Kvm => (Duration::from_secs(30), Duration::from_secs(120)),
        Accel::Tcg => (Duration::from_secs(120), Duration::from_secs(600)),
    }
}

/// Find the framed exit status for `nonce` and split off the output before it.
pub fn parse_results(bytes: &[u8], nonce: &str) -> Option<(Vec<u8>, i32)> {
    let marker = format!("\n<<<labctl-exit {nonce} ");
    let m = marker.as_bytes();
    let pos = bytes.windows(m.len()).rposition(|w| w == m)?;
    let rest = &bytes[pos + m.len()..];
    let end = rest.windows(3).position(|w| w == b">>>")?;
    let code: i32 = std::str::from_utf8(&rest[..end])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some((bytes[..pos].to_vec(), code))
}

pub(crate) fn new_nonce() -> String {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}{:x}", hex::encode(b), t as u64 & 0xffff)
}

/// Boot the guest described by `spec` and run its script (or a shell, for `vm boot`).
pub fn run(home: &Home, spec: &VmSpec, sink: &dyn EventSink) -> Result<VmOutcome, VmError> {
    if !spec.kernel.is_file() {
        return Err(VmError::KernelMissing {
            path: spec.kernel.clone(),
        });
    }
    std::fs::create_dir_all(&spec.run_dir)
        .map_err(io_err("create run directory", &spec.run_dir))?;
    let qemu_prog = spec
        .qemu
        .clone()
        .unwrap_or_else(|| qemu::qemu_program(spec.arch));
    let verdict = accel::decide(
        home,
        &accel::Decide {
            choice: spec.accel,
            arch: spec.arch,
            kernel: &spec.kernel,
            qemu: &qemu_prog,
            kvm_dev: &spec.kvm_device,
            probe_timeout: spec.probe_timeout,
            probe_log: spec.run_dir.join("kvm-probe.log"),
        },
        sink,
    )?;
    if verdict.accel == Accel::Tcg && spec.accel == AccelChoice::Auto {
        // The same for every boot of a run: a notice, shown once.
        sink.emit(crate::events::Event::Notice {
            topic: "accel".into(),
            text: format!(
                "using TCG (no KVM): {}{}",
                verdict.reason,
                if verdict.cached {
                    " [cached for this host boot]"
                } else {
                    ""
                }
            ),
        });
    }
    let start = Instant::now();
    let settings = runner::RunSettings {
        run_dir: &spec.run_dir,
        interactive: spec.interactive,
        boot_timeout: spec.boot_timeout,
        timeout: spec.timeout,
        gdb: spec.gdb.is_some(),
        start,
    };
    match spec.backend {
        Backend::Vng if spec.gdb.is_some() => Err(VmError::GdbNeedsQemu),
        Backend::Vng => {
            let b = vng::VngBackend::prepare(spec, &verdict, sink)?;
            runner::run(&b, &settings, &verdict, sink)
        }
        Backend::Qemu => {
            let b = qemu_backend::QemuBackend::prepare(home, spec, &verdict, &qemu_prog, sink)?;
            runner::run(&b, &settings, &verdict, sink)
        }
    }
}

/// Guest memory for an image that unpacks to `image_bytes`: what was asked, or enough
/// for the kernel, the unpacked files and the compressed copy during unpacking plus
/// room to run (384 MiB + twice the image), whichever is more.
pub fn memory_for(asked_mb: u32, image_bytes: u64) -> u32 {
    let need = 384 + 2 * (image_bytes >> 20);
    asked_mb.max(u32::try_from(need).unwrap_or(u32::MAX))
}

/// The script the guest runs: the shares' mount lines, `cd` to the work folder, then
/// the command.
pub(crate) fn guest_script(spec: &VmSpec) -> String {
    let mut s = share::mount_script(&spec.shares);
    if let Some(w) = &spec.workdir {
        let q = crate::process::shell_quote(std::ffi::OsStr::new(w));
        s.push_str(&format!("cd {q} || exit 2\n"));
    }
    s.push_str(&spec.script);
    s
}

/// Turn `vm run -- CMD...` words into the guest script: one word is a shell command
/// line (`-- 'dmesg | tail'`), several are an argv (quoted, run as-is).
pub fn script_from_words(words: &[String]) -> String {
    match words {
        [] => String::from("true\n"),
        [one] => format!("{one}\n"),
        many => {
            let q: Vec<String> = many
                .iter()
                .map(|w| crate::process::shell_quote(std::ffi::OsStr::new(w)))
                .collect();
            format!("exec {}\n", q.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn big_images_get_more_memory() {
        assert_eq!(super::memory_for(512, 20 << 20), 512);
        assert_eq!(super::memory_for(512, 207 << 20), 384 + 414);
        assert_eq!(super::memory_for(2048, 207 << 20), 2048);
    }

    use super::*;

    #[test]
    fn results_frame_parsing() {
        let b = b"5.10.46\n\n<<<labctl-exit abc 7>>>\n";
        assert_eq!(parse_results(b, "abc"), Some((b"5.10.46\n".to_vec(), 7)));
        // A forged frame with another nonce in the output does not count.
        let b = b"\n<<<labctl-exit zzz 0>>>\nreal\n<<<labctl-exit abc 3>>>\n";
        assert_eq!(
            parse_results(b, "abc"),
            Some((b"\n<<<labctl-exit zzz 0>>>\nreal".to_vec(), 3))
        );
        assert_eq!(parse_results(b"output only", "abc"), None);
        assert_eq!(
            parse_results(b"\n<<<labctl-exit abc 1", "abc"),
            None,
            "cut-off frame"
        );
    }

    #[test]
    fn words_become_a_script() {
        assert_eq!(script_from_words(&["uname -r".into()]), "uname -r\n");
        assert_eq!(
            script_from_words(&["sh".into(), "-c".into(), "exit 7".into()]),
            "exec sh -c 'exit 7'\n"
        );
        assert_eq!(script_from_words(&[]), "true\n");
    }

    #[test]
    fn tcg_timeouts_are_longer() {
        let (kb, kc) = default_timeouts(Accel::Kvm);
        let (tb, tc) = default_timeouts(Accel::Tcg);
        assert!(tb > kb && tc > kc);
    }
}
