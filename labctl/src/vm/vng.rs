//! The virtme-ng backend (`--backend vng`): `vng --run <kernel> --exec ...` with the
//! host's root filesystem shared read-only over 9p (`--force-9p`: virtiofs is reported
//! to panic 5.4/5.10 guests), for programs that need the host's userland (BCC, python).
//!
//! Results do not depend on vng's virtio-serial script ports (they need udevd in the
//! guest and VIRTIO_CONSOLE in the kernel): the run directory is shared read-write
//! (`--rwdir`) and a small wrapper writes the command's output and exit status there
//! (exit status last, by rename, so a half-finished run never looks finished).
//! `--verbose` puts the guest console on vng's stdout, which goes through the same
//! watchdog scan as the QEMU backend (the run loop is [`super::runner`]; this is one
//! [`Backend`] impl). A kernel without ACPI halts instead of powering off and QEMU keeps
//! running; the console's `reboot: System halted` ends the run. vng gives labctl no pid
//! to stop its QEMU by, so boot and command share one deadline (the process timeout).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::runner::{Backend, LineVerdict};
use super::{Accel, AccelVerdict, VmError, VmSpec};
use crate::events::{EventSink, SinkExt};
use crate::process::{shell_quote, Cmd, ProcessError};

/// `vng` on PATH (PyPI package `virtme-ng`).
pub fn find_vng() -> Result<PathBuf, VmError> {
    crate::process::which("vng").ok_or(VmError::Vng {
        detail: "`vng` not found on PATH: install it with `pip install virtme-ng` (it also needs the host's `kmod`/depmod and busybox); `labctl doctor` checks this".into(),
    })
}

/// The shell wrapper run in the guest: copy payload, load modules, run the script with
/// its output to `dir/output`, then publish the exit status as `dir/exit`.
pub fn wrapper(dir: &Path, spec: &VmSpec) -> String {
    let d = shell_quote(dir.as_os_str());
    let mut s =
        String::from("#!/bin/sh\n# labctl: vng backend wrapper\nulimit -l unlimited 2>/dev/null\n");
    for (i, f) in spec.files.iter().enumerate() {
        if f.host.to_string_lossy() != f.guest {
            let src = shell_quote(dir.join("files").join(i.to_string()).as_os_str());
            let g = shell_quote(std::ffi::OsStr::new(&f.guest));
            s.push_str(&format!("mkdir -p \"$(dirname {g})\" && cp -a {src} {g}\n"));
        }
    }
    for m in &spec.load_modules {
        let q = shell_quote(std::ffi::OsStr::new(m));
        if m.contains('/') || m.ends_with(".ko") {
            s.push_str(&format!(
                "insmod {q} || echo \"labctl-init: module {m} failed to load (exit $?)\" > /dev/console\n"
            ));
        } else {
            s.push_str(&format!(
                "modprobe {q} || echo \"labctl-init: module {m} failed to load (exit $?)\" > /dev/console\n"
            ));
        }
    }
    s.push_str("echo \"labctl-init: up $(uname -r)\" > /dev/console\n");
    s.push_str(&format!(
        "(cd {w} && sh {d}/run.sh) < /dev/null > {d}/output 2>&1\n",
        w = shell_quote(std::ffi::OsStr::new(
            spec.workdir.as_deref().unwrap_or("/tmp")
        )),
    ));
    s.push_str(&format!(
        "echo $? > {d}/exit.tmp && mv {d}/exit.tmp {d}/exit\nsync\n"
    ));
    s
}

/// vng argv (without the program).
pub fn argv(spec: &VmSpec, accel: Accel, dir: &Path) -> Vec<String> {
    let mut a: Vec<String> = vec!["--run".into(), spec.kernel.to_string_lossy().into_owned()];
    if accel == Accel::Tcg {
        a.push("--disable-kvm".into());
    }
    for s in ["--force-9p", "--force-initramfs", "--verbose"] {
        a.push(s.into());
    }
    a.push("--cpus".into());
    a.push(spec.cpus.max(1).to_string());
    a.push("--memory".into());
    a.push(format!("{}M", spec.memory_mb));
    a.push("--rwdir".into());
    a.push(dir.to_string_lossy().into_owned());
    a.extend(share_args(spec));
    for w in &spec.kernel_args {
        a.push("--append".into());
        a.push(w.clone());
    }
    // Short on purpose: vng passes --exec on the kernel command line.
    a.push("--exec".into());
    a.push(format!(
        "sh {}",
        shell_quote(dir.join("wrap.sh").as_os_str())
    ));
    a
}

/// `--share` as vng's own `--rwdir GUEST=HOST` / `--rodir GUEST=HOST`.
fn share_args(spec: &VmSpec) -> Vec<String> {
    let mut a = Vec::new();
    for s in &spec.shares {
        a.push(if s.readonly { "--rodir" } else { "--rwdir" }.to_string());
        a.push(format!("{}={}", s.guest, s.host.to_string_lossy()));
    }
    a
}

/// vng argv for an interactive shell (`vm boot --backend vng`).
pub fn boot_argv(spec: &VmSpec, accel: Accel) -> Vec<String> {
    let mut a: Vec<String> = vec!["--run".into(), spec.kernel.to_string_lossy().into_owned()];
    if accel == Accel::Tcg {
        a.push("--disable-kvm".into());
    }
    for s in ["--force-9p", "--force-initramfs"] {
        a.push(s.into());
    }
    a.extend([
        "--cpus".into(),
        spec.cpus.max(1).to_string(),
        "--memory".into(),
        format!("{}M", spec.memory_mb),
    ]);
    a.extend(share_args(spec));
    for w in &spec.kernel_args {
        a.push("--append".into());
        a.push(w.clone());
    }
    a
}

/// A prepared virtme-ng boot: the shared run folder holds the payload, the script and
/// the wrapper; results come back as `vng/output` and `vng/exit`.
pub struct VngBackend {
    cmd: Cmd,
    detail: String,
    dir: PathBuf,
    /// "cannot find script I/O ports" was on the console.
    ports_missing: AtomicBool,
}

impl VngBackend {
    /// Find `vng` and, for a captured run, lay out the shared run folder.
    pub fn prepare(
        spec: &VmSpec,
        verdict: &AccelVerdict,
        sink: &dyn EventSink,
    ) -> Result<VngBackend, VmError> {
        let vng = find_vng()?;
        let dir = spec.run_dir.join("vng");
        if spec.interactive {
            return Ok(VngBackend {
                cmd: vng_cmd(&vng).args(boot_argv(spec, verdict.accel)),
                detail: format!(
                    "{} with virtme-ng under {} (host root over 9p)",
                    spec.kernel.display(),
                    verdict.accel.name()
                ),
                dir,
                ports_missing: AtomicBool::new(false),
            });
        }
        let io = |op: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| VmError::Io {
                op,
                path: p,
                source,
            }
        };
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("files")).map_err(io("create", &dir))?;
        for (i, f) in spec.files.iter().enumerate() {
            if f.host.to_string_lossy() != f.guest {
                let dst = dir.join("files").join(i.to_string());
                std::fs::copy(&f.host, &dst).map_err(io("copy payload to", &dst))?;
            }
        }
        std::fs::write(dir.join("run.sh"), &spec.script)
            .map_err(io("write", &dir.join("run.sh")))?;
        std::fs::write(dir.join("wrap.sh"), wrapper(&dir, spec))
            .map_err(io("write", &dir.join("wrap.sh")))?;
        // Callers set `modules` only when the user passed --modules (the suite's vng boot
        // and `vm run --backend vng` without it leave it unset), so this warns about a
        // real option.
        if spec.modules.is_some() {
            sink.warn("--backend vng boots with the host's /lib/modules; --modules is ignored (load .ko files by path instead)");
        }
        Ok(VngBackend {
            cmd: vng_cmd(&vng).args(argv(spec, verdict.accel, &dir)),
            detail: format!(
                "{} with virtme-ng under {}",
                spec.kernel.display(),
                verdict.accel.name()
            ),
            dir,
            ports_missing: AtomicBool::new(false),
        })
    }
}

impl Backend for VngBackend {
    fn command(&self) -> Cmd {
        self.cmd.clone()
    }
    fn boot_detail(&self) -> String {
        self.detail.clone()
    }
    /// vng starts QEMU itself and gives labctl no pid to stop it by: one deadline.
    fn boot_deadline(&self) -> bool {
        false
    }
    fn on_line(&self, line: &str, booted: bool) -> LineVerdict {
        // Missing script ports: virtme-ng 1.39+ falls back to the console ("starting
        // script (console fallback)"); 1.38 starts an interactive shell instead and waits
        // for ever.
        if no_script_ports(line) {
            self.ports_missing.store(true, Ordering::SeqCst);
        } else if self.ports_missing.load(Ordering::SeqCst)
            && !booted
            && line.contains("CTRL+d to exit")
        {
            return LineVerdict::Fail(VmError::Vng {
                detail: format!(
                    "this virtme-ng (before 1.39, the last release for Python < 3.10) finds its \
                     script ports through udev's /dev/virtio-ports links and the host has no \
                     udevd for the guest to run: install udev (Debian: `apt-get install udev`; \
                     `labctl doctor --install` does it). Console: {}",
                    self.dir
                        .parent()
                        .unwrap_or(&self.dir)
                        .join("console.log")
                        .display()
                ),
            });
        }
        // A kernel without ACPI halts on poweroff and QEMU would keep running.
        if guest_stopped(line) {
            return LineVerdict::EndOfRun;
        }
        LineVerdict::Continue
    }
    fn result(&self) -> Option<(Vec<u8>, i32)> {
        let code = std::fs::read_to_string(self.dir.join("exit"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())?;
        Some((
            std::fs::read(self.dir.join("output")).unwrap_or_default(),
            code,
        ))
    }
    fn partial_output(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.join("output")).unwrap_or_default())
            .into_owned()
    }
    fn spawn_error(&self, e: ProcessError) -> VmError {
        match e {
            ProcessError::Spawn { program, source } => VmError::Vng {
                detail: format!("cannot run {program}: {source}"),
            },
            e => VmError::Process(e),
        }
    }
}

/// The console line a guest prints when it has stopped for good without QEMU exiting:
/// `reboot: System halted` (5.10 without ACPI), `reboot: Power off not available: System
/// halted instead` (6.x), or `reboot: Power down` where QEMU lingers.
fn guest_stopped(line: &str) -> bool {
    line.contains("reboot:") && (line.contains("System halted") || line.contains("Power down"))
}

/// The line virtme-ng's guest init prints when the script ports are missing.
fn no_script_ports(line: &str) -> bool {
    line.contains("cannot find script I/O ports")
}

/// `vng` runs its helpers (`virtme-run`, ...) by name: when it lives outside `PATH`
/// (labctl's tools venv), its own folder goes at the end of the child's `PATH`.
fn vng_cmd(vng: &Path) -> Cmd {
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = vng.parent() {
        let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_path_buf());
            path = std::env::join_paths(dirs).unwrap_or(path);
        }
    }
    Cmd::new(vng).env("PATH", path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn halt_lines_of_5_10_and_6_x_end_the_run() {
        assert!(super::guest_stopped("reboot: System halted"));
        assert!(super::guest_stopped(
            "[   12.1] reboot: Power off not available: System halted instead"
        ));
        assert!(super::guest_stopped("reboot: Power down"));
        assert!(!super::guest_stopped(
            "virtme-ng-init: script exited with code 0"
        ));
        assert!(!super::guest_stopped("System halted by the user's script"));
    }

    #[test]
    fn missing_script_ports_are_recognised() {
        // virtme-ng 1.38's guest init on a host without udev.
        assert!(super::no_script_ports("virtme-ng-init: virtme-init: cannot find script I/O ports; make sure virtio-serial is available"));
        assert!(!super::no_script_ports(
            "virtme-ng-init: initialization done"
        ));
    }

    use super::*;

    #[test]
    fn argv_shares_the_run_dir_and_disables_kvm_under_tcg() {
        let mut spec = VmSpec::new("/k/bzImage", "/h/runs/1", "uname -r");
        spec.memory_mb = 768;
        let a = argv(&spec, Accel::Tcg, Path::new("/h/runs/1/vng"));
        let pos = |f: &str| {
            a.iter()
                .position(|x| x == f)
                .unwrap_or_else(|| panic!("{f} missing in {a:?}"))
        };
        assert_eq!(a[pos("--run") + 1], "/k/bzImage");
        assert_eq!(a[pos("--rwdir") + 1], "/h/runs/1/vng");
        assert_eq!(a[pos("--memory") + 1], "768M");
        assert_eq!(a[pos("--exec") + 1], "sh /h/runs/1/vng/wrap.sh");
        pos("--disable-kvm");
        pos("--force-9p");
        let a = argv(&spec, Accel::Kvm, Path::new("/d"));
        assert!(!a.contains(&"--disable-kvm".to_string()));
        let b = boot_argv(&spec, Accel::Tcg);
        assert!(
            b.contains(&"--disable-kvm".to_string())
                && !b.contains(&"--exec".to_string())
                && !b.contains(&"--verbose".to_string())
        );
    }

    #[test]
    fn wrapper_publishes_exit_status_last() {
        let mut spec = VmSpec::new("/k", "/r", "true");
        spec.load_modules = vec!["/x/test_bpf.ko".into()];
        let w = wrapper(Path::new("/r/vng"), &spec);
        let run = w.find("sh /r/vng/run.sh").unwrap();
        let exit = w.find("mv /r/vng/exit.tmp /r/vng/exit").unwrap();
        assert!(run < exit);
        assert!(w.contains("insmod /x/test_bpf.ko"));
    }
}
