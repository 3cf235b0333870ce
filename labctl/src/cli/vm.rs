//! `labctl vm boot` and `labctl vm run`: argument parsing, resolving VERSION or
//! --kernel to a bzImage, and printing the guest's output / mapping its exit code.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use labctl::vm::{self, AccelChoice, Backend, GuestFile, VmSpec};

use super::Ctx;

const RUN_HELP: &str = "\
Examples:
  labctl vm run 5.10.46 -- uname -r                 a labctl build, one argv
  labctl vm run --kernel bzImage -- 'dmesg | tail'   one word = a shell command line
  labctl vm run 5.10 --module test_bpf -- 'dmesg | grep test_bpf'
  labctl vm run 5.10 --file ./prog:/root/prog -- /root/prog
  labctl vm run 5.10 --backend vng -- python3 -c 'print(1)'   host userland over 9p
  labctl vm run 6.12 --share ./myprog -- ./loader    a host folder, read-write, the command
                                                    starts in it (its programs bring their libraries)
  labctl vm run 6.12 --share ~/data:/data:ro --share ./out:/out -- 'wc -l /data/* > /out/n'
  labctl vm run 5.10 --gdb-wait -- /root/prog      stopped at entry: attach with the printed gdb line

The command's stdout+stderr arrive over a second serial port (ttyS1) and are printed on
stdout; labctl exits with the command's exit code. Kernel panics, boot and command
timeouts exit 2 with a console excerpt. The run's console.log, results.bin and
result.json are kept in $LABCTL_HOME/runs/.

--gdb: QEMU's gdb stub on 127.0.0.1 (a free port, or --gdb=PORT), the kernel booted with
nokaslr, and a gdb command line printed on stderr that loads the build's vmlinux and its
gdb scripts (lx-symbols, lx-dmesg, lx-ps; made on demand for older builds). Run it in
another terminal; it needs gdb on this host. With --gdb the boot and command timeouts
default to none (a guest stopped at a breakpoint waits for you); --timeout and
--boot-timeout still apply when given.";

const BOOT_HELP: &str = "\
Examples:
  labctl vm boot 5.10.46                   busybox shell on the serial console
  labctl vm boot --kernel arch/x86/boot/bzImage --modules /tmp/mods
  labctl vm boot 6.12 --share .            this folder at the same path; the shell starts there

  labctl vm boot 5.10 --gdb-wait          stopped at entry; attach with the printed gdb command

Leave with `exit` (or Ctrl-D): the guest reboots and QEMU ends. Ctrl-A X kills QEMU,
Ctrl-A C switches to the QEMU monitor. The terminal is restored afterwards.

--gdb prints the gdb command line (run it in another terminal; it needs gdb on this
host) before QEMU takes the terminal.";

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccelArg {
    /// KVM if /dev/kvm works (probed once per host boot), else TCG.
    Auto,
    /// Force KVM (fails if /dev/kvm cannot be opened).
    Kvm,
    /// Force TCG software emulation (-cpu max).
    Tcg,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendArg {
    /// labctl's hermetic initramfs guest under QEMU.
    Qemu,
    /// virtme-ng (`pip install virtme-ng`): host root shared over 9p.
    Vng,
}

/// Options shared by `vm boot` and `vm run`.
#[derive(clap::Args, Debug, Clone)]
pub struct GuestArgs {
    /// Kernel version of a labctl build (5.10.46, or 5.10 for the newest built 5.10.y); or use --kernel.
    pub version: Option<String>,
    /// Boot this bzImage instead of a labctl build.
    #[arg(long, value_name = "PATH", conflicts_with = "version")]
    pub kernel: Option<PathBuf>,
    /// modules_install staging dir (holds lib/modules/<release>) to put into the guest.
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
    /// Load this module at boot (name for modprobe, or a guest path to a .ko). Repeatable.
    #[arg(long = "module", value_name = "NAME")]
    pub load_modules: Vec<String>,
    /// Copy HOST[:GUEST] into the guest (default guest path: /root/<name>); ELF programs bring their shared libraries. Repeatable.
    #[arg(long = "file", value_name = "HOST[:GUEST]")]
    pub files: Vec<String>,
    /// Mount the host folder HOST in the guest over 9p at GUEST (default: the same
    /// absolute path), read-write unless `:ro`; what the guest writes lands on the host.
    /// The command (and vm boot's shell) starts in the first share. Repeatable.
    #[arg(long = "share", value_name = "HOST[:GUEST][:ro]")]
    pub shares: Vec<labctl::vm::share::Share>,
    /// Start the command (or vm boot's shell) in this guest folder (default: the first
    /// --share, else /root).
    #[arg(long, value_name = "GUEST_DIR")]
    pub workdir: Option<String>,
    /// The architecture of the build to boot (x86_64, arm64) [default: this machine's]; a
    /// foreign one boots under its own QEMU with TCG.
    #[arg(long, env = "LABCTL_ARCH", value_name = "ARCH")]
    pub arch: Option<String>,
    /// Accelerator.
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    pub accel: AccelArg,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = labctl::vm::DEFAULT_MEMORY_MB, value_name = "MIB")]
    pub memory: u32,
    /// Guest CPUs (default 1: under TCG a second vCPU's bring-up made `vm run -- true`
    /// about 0.1-0.5 s slower, bench/boot.sh; the suite asks for its own).
    #[arg(long, default_value_t = 1)]
    pub cpus: u32,
    /// Who boots the guest.
    #[arg(long, value_enum, default_value_t = BackendArg::Qemu)]
    pub backend: BackendArg,
    /// Extra kernel command-line word. Repeatable.
    #[arg(long = "append", value_name = "WORD")]
    pub append: Vec<String>,
    /// Show the full kernel log on the console (default: quiet, warnings and worse).
    #[arg(long)]
    pub verbose_console: bool,
    /// Use the build made with this toolchain (`host`, or `debian:<suite>` as given to
    /// `kernel build --toolchain`).
    #[arg(long, default_value = "host", value_name = "TOOLCHAIN")]
    pub toolchain: labctl::userland::ToolchainSpec,
    /// Start QEMU's gdb stub on 127.0.0.1:PORT (--gdb alone: a free port), boot with
    /// nokaslr and print the gdb command that attaches with the kernel's vmlinux and gdb
    /// scripts (needs gdb on this host). Timeouts then default to none.
    #[arg(long, value_name = "PORT", num_args = 0..=1, require_equals = true, default_missing_value = "0")]
    pub gdb: Option<u16>,
    /// Like --gdb, with the guest stopped before its first instruction until gdb
    /// continues it (QEMU -S).
    #[arg(long)]
    pub gdb_wait: bool,
}

#[derive(clap::Args, Debug)]
#[command(after_help = BOOT_HELP)]
pub struct BootArgs {
    #[command(flatten)]
    pub guest: GuestArgs,
    /// Bring this host program into the guest's shell (with its libraries; `bpftool` is
    /// the kernel's own). Repeatable.
    #[arg(long = "with", value_name = "PROGRAM")]
    pub with: Vec<String>,
}

#[derive(clap::Args, Debug)]
#[command(after_help = RUN_HELP)]
pub struct RunArgs {
    #[command(flatten)]
    pub guest: GuestArgs,
    /// Seconds the command may run after boot (default 120 under KVM, 600 under TCG).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Seconds the guest may take to boot (default 30 under KVM, 120 under TCG).
    #[arg(long, value_name = "SECS")]
    pub boot_timeout: Option<u64>,
    /// Also bring this host program into the guest (with its libraries; `bpftool` is the
    /// kernel's own), for commands that call it (e.g. a Makefile's recipe). The
    /// command's own program is brought automatically. Repeatable.
    #[arg(long = "with", value_name = "PROGRAM")]
    pub with: Vec<String>,
    /// The command to run in the guest, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

impl GuestArgs {
    /// The architecture `--arch` names (this machine's when absent).
    fn arch(&self) -> anyhow::Result<&'static labctl::arch::Arch> {
        match &self.arch {
            None => Ok(labctl::arch::Arch::host()),
            Some(n) => super::opts::parse_arch(n),
        }
    }
}

/// The kernel (and modules) to boot.
fn resolve_kernel(g: &GuestArgs, ctx: &Ctx) -> anyhow::Result<Resolved> {
    if let Some(k) = &g.kernel {
        return Ok(Resolved {
            bzimage: k.clone(),
            modules: g.modules.clone(),
            label: k
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "kernel".into()),
            build: None,
        });
    }
    let Some(v) = &g.version else {
        return Err(labctl::Error::Usage(
            "say which kernel: a VERSION of a labctl build (e.g. 5.10.46) or --kernel PATH to a bzImage".into(),
        )
        .into());
    };
    let req: labctl::VersionReq = v.parse()?;
    let b = labctl::build::find_build_for(&ctx.home, &req, &g.toolchain, g.arch()?).ok_or_else(|| {
        // Say so when the kernel exists, built with another toolchain.
        let others: Vec<String> = labctl::build::local_builds(&ctx.home)
            .into_iter()
            .filter(|b| b.is_complete() && req.matches(&b.version) && b.toolchain.userland != g.toolchain)
            .map(|b| format!("--toolchain {}", b.toolchain.userland))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let hint = if others.is_empty() {
            String::new()
        } else {
            format!(" (there are builds of it with {})", others.join(", "))
        };
        let tc = if g.toolchain.is_host() {
            String::new()
        } else {
            format!(" --toolchain {}", g.toolchain)
        };
        labctl::Error::Usage(format!(
            "no finished labctl build of {req}{tc} in {}{hint}: run `labctl kernel build {req}{tc}` first, or pass --kernel PATH",
            ctx.home.builds().display()
        ))
    })?;
    // The build's modules go into a QEMU guest; vng boots with the host's /lib/modules,
    // so only an explicit --modules reaches it (and its "ignored" warning).
    let modules = g.modules.clone().or_else(|| {
        (g.backend == BackendArg::Qemu && b.modules.join("lib/modules").is_dir())
            .then(|| b.modules.clone())
    });
    Ok(Resolved {
        bzimage: b.image.clone(),
        modules,
        label: b.release.clone(),
        build: Some(b),
    })
}

/// The kernel to boot: a labctl build (VERSION) or a bzImage (--kernel).
struct Resolved {
    bzimage: PathBuf,
    modules: Option<PathBuf>,
    label: String,
    build: Option<labctl::build::BuildOutput>,
}

fn parse_file(s: &str) -> anyhow::Result<GuestFile> {
    let (host, guest) = match s.rsplit_once(':') {
        Some((h, g)) if g.starts_with('/') => (PathBuf::from(h), g.to_string()),
        _ => {
            let h = PathBuf::from(s);
            let name = h
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .context("--file needs a file name")?;
            (h, format!("/root/{name}"))
        }
    };
    Ok(GuestFile {
        host,
        guest,
        with_libs: true,
        sysroot: None,
    })
}

fn spec_from(g: &GuestArgs, ctx: &Ctx, script: String) -> anyhow::Result<(VmSpec, Resolved)> {
    let r = resolve_kernel(g, ctx)?;
    let (kernel, modules, label) = (r.bzimage.clone(), r.modules.clone(), r.label.clone());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let safe: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let run_name = format!("{stamp}-vm-{safe}");
    let run_dir = ctx.home.runs().join(&run_name);
    // Held while the run writes its folder: `cache prune` skips it.
    let _run_lock = ctx.home.lock(&labctl::home::CacheKey::Run(run_name))?;
    let mut spec = VmSpec::new(kernel, run_dir, script);
    spec.arch = match &r.build {
        Some(b) => b.arch,
        None => g.arch()?,
    };
    if !spec.arch.is_host() {
        spec.guest_root = match r.build.as_ref().and_then(|b| b.sysroot.clone()) {
            Some(root) => Some(root),
            None => labctl::userland::guest_root(&ctx.home, spec.arch, ctx.sink())?,
        };
    }
    spec.modules = modules;
    spec.load_modules = g.load_modules.clone();
    spec.files = g
        .files
        .iter()
        .map(|f| parse_file(f))
        .collect::<anyhow::Result<_>>()?;
    spec.accel = match g.accel {
        AccelArg::Auto => AccelChoice::Auto,
        AccelArg::Kvm => AccelChoice::Kvm,
        AccelArg::Tcg => AccelChoice::Tcg,
    };
    spec.backend = match g.backend {
        BackendArg::Qemu => Backend::Qemu,
        BackendArg::Vng => Backend::Vng,
    };
    labctl::vm::share::check_distinct(&g.shares)?;
    spec.shares = g.shares.clone();
    spec.workdir = g
        .workdir
        .clone()
        .or_else(|| g.shares.first().map(|s| s.guest.clone()));
    spec.memory_mb = g.memory;
    spec.cpus = g.cpus;
    spec.kernel_args = g.append.clone();
    spec.verbose_console = g.verbose_console;
    spec.gdb = gdb_stub(g, ctx, &spec.kernel)?;
    Ok((spec, r))
}

/// The programs the command (and `--with`) names that the hermetic guest lacks.
fn guest_programs(
    words: &[String],
    with: &[String],
    g: &GuestArgs,
    r: &Resolved,
    ctx: &Ctx,
) -> anyhow::Result<Vec<GuestFile>> {
    if g.backend == BackendArg::Vng {
        return Ok(Vec::new());
    }
    let build = r.build.as_ref().map(|b| (b, &g.toolchain));
    let arch = match &r.build {
        Some(b) => b.arch,
        None => g.arch()?,
    };
    Ok(vm::programs::guest_files(
        &ctx.home,
        words,
        with,
        build,
        arch,
        ctx.sink(),
    )?)
}

/// `--gdb[=PORT]` / `--gdb-wait`: the stub, with the build's symbols and gdb scripts.
fn gdb_stub(
    g: &GuestArgs,
    ctx: &Ctx,
    kernel: &std::path::Path,
) -> anyhow::Result<Option<vm::gdb::GdbStub>> {
    if g.gdb.is_none() && !g.gdb_wait {
        return Ok(None);
    }
    if g.backend == BackendArg::Vng {
        return Err(labctl::Error::Usage(
            "--gdb needs the QEMU backend (virtme-ng starts QEMU itself); drop --backend vng"
                .into(),
        )
        .into());
    }
    let build = match (&g.kernel, &g.version) {
        (None, Some(v)) => {
            labctl::build::find_build_for(&ctx.home, &v.parse()?, &g.toolchain, g.arch()?)
        }
        _ => None,
    };
    let target = match &build {
        Some(b) => vm::gdb::Kernel::Build(b),
        None => vm::gdb::Kernel::Image(kernel),
    };
    Ok(Some(vm::gdb::stub(
        &ctx.home,
        target,
        g.gdb,
        g.gdb_wait,
        ctx.sink(),
    )?))
}

pub fn run_run(a: RunArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let (mut spec, resolved) = spec_from(&a.guest, ctx, vm::script_from_words(&a.command))?;
    let programs = guest_programs(&a.command, &a.with, &a.guest, &resolved, ctx)?;
    spec.files.extend(programs);
    spec.timeout = a.timeout.map(Duration::from_secs);
    spec.boot_timeout = a.boot_timeout.map(Duration::from_secs);
    let out = vm::run(&ctx.home, &spec, ctx.sink())?;
    ctx.renderer.finish();
    if ctx.global.json {
        let v = serde_json::json!({
            "exit_code": out.exit_code,
            "output": String::from_utf8_lossy(&out.output),
            "accel": out.accel,
            "accel_reason": out.accel_reason,
            "release": out.release,
            "duration_s": out.duration.as_secs_f64(),
            "boot_s": out.boot_time.map(|d| d.as_secs_f64()),
            "console_log": out.console_log,
        });
        ctx.print_json(&v)?;
    } else {
        ctx.renderer.suspend(|| {
            let mut so = std::io::stdout().lock();
            let _ = so.write_all(&out.output);
            let _ = so.flush();
        });
    }
    Ok(u8::try_from(out.exit_code).unwrap_or(if out.exit_code < 0 { 2 } else { 255 }))
}

pub fn run_boot(a: BootArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let (mut spec, resolved) = spec_from(&a.guest, ctx, String::new())?;
    let programs = guest_programs(&[], &a.with, &a.guest, &resolved, ctx)?;
    spec.files.extend(programs);
    spec.interactive = true;
    let saved = TermState::save();
    let r = vm::run(&ctx.home, &spec, ctx.sink());
    drop(saved);
    let out = r?;
    Ok(if out.exit_code == 0 {
        0
    } else {
        super::EXIT_INFRA
    })
}

/// Saved termios of stdin, restored on drop (QEMU puts the terminal into raw mode and
/// a killed QEMU cannot restore it).
struct TermState(Option<libc::termios>);
impl TermState {
    fn save() -> Self {
        // SAFETY: tcgetattr writes into a zeroed termios; fd 0 may not be a tty (then we keep None).
        unsafe {
            if libc::isatty(0) != 1 {
                return TermState(None);
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) == 0 {
                TermState(Some(t))
            } else {
                TermState(None)
            }
        }
    }
}
impl Drop for TermState {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            // SAFETY: restoring attributes we read from the same fd.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_args() {
        let f = parse_file("./prog:/usr/bin/prog").unwrap();
        assert_eq!(
            (f.host, f.guest.as_str()),
            (PathBuf::from("./prog"), "/usr/bin/prog")
        );
        let f = parse_file("/x/y/tool").unwrap();
        assert_eq!(f.guest, "/root/tool");
    }
}
