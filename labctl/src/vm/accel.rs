//! Choosing the accelerator. `auto` uses KVM only when `/dev/kvm` opens read-write AND a
//! probe guest shows life within a short timeout; otherwise TCG (`-cpu max`) with a
//! one-line reason. Some hosts (nested virtualisation) expose a `/dev/kvm` whose guests
//! hang silently; the probe catches that. The verdict is cached per host boot (keyed by
//! `/proc/sys/kernel/random/boot_id` and the QEMU program) in `guests/accel.json`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::qemu::{self, Accel};
use super::VmError;
use crate::events::{EventSink, Stage};
use crate::home::{write_atomic, Home};
use crate::process::{Cmd, LineAction, ProcessError};

/// What the user asked for (`--accel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccelChoice {
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// The decision and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccelVerdict {
    pub accel: Accel,
    pub reason: String,
    /// Taken from the per-boot cache rather than probed now.
    #[serde(default)]
    pub cached: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CacheEntry {
    boot_id: String,
    qemu: String,
    verdict: AccelVerdict,
}

/// How long a KVM guest may stay silent before we call KVM broken.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(6);

/// Can this process open the KVM device read-write?
pub fn kvm_openable(dev: &Path) -> Result<(), String> {
    match std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "{} does not exist (no KVM on this host)",
            dev.display()
        )),
        Err(e) => Err(format!(
            "cannot open {} read-write: {e} (add yourself to the `kvm` group)",
            dev.display()
        )),
    }
}

/// This host boot's id (None where /proc does not have it).
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Result of booting the probe guest under KVM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Alive,
    /// No sign of life within the timeout (QEMU was killed).
    Silent(Duration),
    /// QEMU ended without the guest printing anything (e.g. KVM refused).
    Failed(String),
}

/// Boot `kernel` under KVM and wait for `Linux version` on the console.
pub fn probe_kvm(
    qemu_prog: &Path,
    arch: &'static crate::arch::Arch,
    kernel: &Path,
    timeout: Duration,
    log: &Path,
    sink: &dyn EventSink,
) -> Result<ProbeResult, VmError> {
    let cmd = Cmd::new(qemu_prog)
        .args(qemu::probe_argv(arch, kernel, None))
        .timeout(timeout);
    let mut alive = false;
    let r = cmd.run_streaming(sink, log, |line| {
        if line.contains("Linux version") {
            alive = true;
            LineAction::Kill
        } else {
            LineAction::Continue
        }
    });
    match r {
        Ok(_) if alive => Ok(ProbeResult::Alive),
        Ok(out) => Ok(ProbeResult::Failed(format!(
            "QEMU exited ({}) before the guest printed anything: {}",
            crate::process::status_text(out.code),
            out.tail
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .cloned()
                .unwrap_or_default()
        ))),
        Err(ProcessError::Timeout { .. }) => Ok(ProbeResult::Silent(timeout)),
        Err(ProcessError::Spawn { program, source }) => Err(VmError::QemuMissing {
            program,
            detail: source.to_string(),
        }),
        Err(e) => Err(VmError::Process(e)),
    }
}

/// Decide pure from the facts (unit-tested).
pub fn verdict_from(kvm_dev: Result<(), String>, probe: Option<&ProbeResult>) -> AccelVerdict {
    let tcg = |reason: String| AccelVerdict {
        accel: Accel::Tcg,
        reason,
        cached: false,
    };
    match (kvm_dev, probe) {
        (Err(why), _) => tcg(why),
        (Ok(()), Some(ProbeResult::Alive)) => AccelVerdict {
            accel: Accel::Kvm,
            reason: "/dev/kvm works (probe guest booted)".into(),
            cached: false,
        },
        (Ok(()), Some(ProbeResult::Silent(t))) => tcg(format!(
            "/dev/kvm opens but a KVM probe guest showed no life within {}s (KVM hangs on this host)",
            t.as_secs()
        )),
        (Ok(()), Some(ProbeResult::Failed(why))) => tcg(format!("/dev/kvm opens but the KVM probe failed: {why}")),
        (Ok(()), None) => tcg("KVM was not probed".into()),
    }
}

/// Settings for [`decide`].
pub struct Decide<'a> {
    pub choice: AccelChoice,
    /// The guest's architecture: KVM only for this machine's own.
    pub arch: &'static crate::arch::Arch,
    pub kernel: &'a Path,
    pub qemu: &'a Path,
    pub kvm_dev: &'a Path,
    pub probe_timeout: Duration,
    /// Where the probe's console goes.
    pub probe_log: PathBuf,
}

/// Pick the accelerator for a run.
pub fn decide(home: &Home, d: &Decide, sink: &dyn EventSink) -> Result<AccelVerdict, VmError> {
    match d.choice {
        AccelChoice::Tcg => {
            return Ok(AccelVerdict {
                accel: Accel::Tcg,
                reason: "--accel tcg".into(),
                cached: false,
            })
        }
        AccelChoice::Kvm if !d.arch.is_host() => {
            return Err(VmError::KvmUnavailable {
                reason: format!(
                    "KVM runs guests of this machine's architecture ({}) only, not {}: use --accel tcg (or auto)",
                    crate::arch::Arch::host(),
                    d.arch
                ),
            })
        }
        AccelChoice::Kvm => {
            kvm_openable(d.kvm_dev).map_err(|reason| VmError::KvmUnavailable { reason })?;
            return Ok(AccelVerdict {
                accel: Accel::Kvm,
                reason: "--accel kvm".into(),
                cached: false,
            });
        }
        AccelChoice::Auto => {}
    }
    if !d.arch.is_host() {
        return Ok(AccelVerdict {
            accel: Accel::Tcg,
            reason: format!(
                "an {} guest on an {} host (KVM runs only its own architecture)",
                d.arch,
                crate::arch::Arch::host()
            ),
            cached: false,
        });
    }
    let dev = kvm_openable(d.kvm_dev);
    if dev.is_err() {
        return Ok(verdict_from(dev, None));
    }
    let cache = home.guests().join("accel.json");
    let qemu_key = d.qemu.display().to_string();
    let id = boot_id();
    if let Some(id) = &id {
        if let Some(e) = std::fs::read(&cache)
            .ok()
            .and_then(|b| serde_json::from_slice::<CacheEntry>(&b).ok())
        {
            if &e.boot_id == id && e.qemu == qemu_key {
                return Ok(AccelVerdict {
                    cached: true,
                    ..e.verdict
                });
            }
        }
    }
    let _stage = sink.stage(
        Stage::Probe,
        format!(
            "is KVM alive? (boot the kernel under KVM, {}s limit)",
            d.probe_timeout.as_secs()
        ),
    );
    let probe = probe_kvm(
        d.qemu,
        d.arch,
        d.kernel,
        d.probe_timeout,
        &d.probe_log,
        sink,
    )?;
    _stage.ok();
    let v = verdict_from(Ok(()), Some(&probe));
    if let Some(id) = id {
        let e = CacheEntry {
            boot_id: id,
            qemu: qemu_key,
            verdict: v.clone(),
        };
        let _ = write_atomic(&cache, &serde_json::to_vec_pretty(&e).unwrap_or_default());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(
            verdict_from(Err("no /dev/kvm".into()), None).accel,
            Accel::Tcg
        );
        assert_eq!(
            verdict_from(Ok(()), Some(&ProbeResult::Alive)).accel,
            Accel::Kvm
        );
        let v = verdict_from(Ok(()), Some(&ProbeResult::Silent(Duration::from_secs(6))));
        assert_eq!(v.accel, Accel::Tcg);
        assert!(v.reason.contains("no life within 6s"), "{}", v.reason);
        assert_eq!(
            verdict_from(Ok(()), Some(&ProbeResult::Failed("x".into()))).accel,
            Accel::Tcg
        );
    }

    #[test]
    fn missing_device_is_explained() {
        let e = kvm_openable(Path::new("/nonexistent/kvm")).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn forced_choices_skip_the_probe() {
        let d = tempfile::tempdir().unwrap();
        let home = Home::new(d.path());
        let dec = Decide {
            choice: AccelChoice::Tcg,
            arch: crate::arch::Arch::host(),
            kernel: Path::new("/nonexistent"),
            qemu: Path::new("/nonexistent/qemu"),
            kvm_dev: Path::new("/dev/kvm"),
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            probe_log: d.path().join("p.log"),
        };
        let v = decide(&home, &dec, &crate::events::NullSink).unwrap();
        assert_eq!((v.accel, v.reason.as_str()), (Accel::Tcg, "--accel tcg"));
        let dec = Decide {
            choice: AccelChoice::Kvm,
            kvm_dev: Path::new("/nonexistent/kvm"),
            ..dec
        };
        assert!(matches!(
            decide(&home, &dec, &crate::events::NullSink),
            Err(VmError::KvmUnavailable { .. })
        ));
        // auto without a device: TCG, no probe spawned (the qemu path does not exist).
        let dec = Decide {
            choice: AccelChoice::Auto,
            ..dec
        };
        let v = decide(&home, &dec, &crate::events::NullSink).unwrap();
        assert_eq!(v.accel, Accel::Tcg);
        assert!(v.reason.contains("does not exist"));
    }
}
