//! Skips decided on the host, typed and with what to do: what the host lacks for
//! hello-bcc ([`BccMissing`]), the bpftool and bpftrace programs ([`ToolInput`]), why the build's samples/bpf programs may be missing
//! ([`SamplesFailure`], read from the build's `build.json` and logs), and the verdicts
//! for a build without samples/bpf or a test the data marks as not applicable. Setup
//! skips name the next step (`labctl doctor --install`, the log, the catalogue entry).

use std::path::{Path, PathBuf};

use crate::build::BuildJson;
use crate::events::SkipKind;

use super::parse::Verdict;

/// What the host lacks for hello-bcc (decided by the caller, which probes the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BccMissing {
    /// No python3 on the host imports `bcc`.
    PythonModule,
    /// No `vng` (virtme-ng) on PATH.
    Vng,
}

impl BccMissing {
    /// A setup skip that names the package and `labctl doctor --install`.
    pub fn verdict(self) -> Verdict {
        match self {
            BccMissing::PythonModule => Verdict::skip(
                SkipKind::Setup,
                "no BCC for python3: labctl doctor --install",
            )
            .detail(
                "hello-bcc needs BCC's python3 module on the host (Debian/Ubuntu package \
                 python3-bpfcc, Fedora python3-bcc): install it with `labctl doctor --install`, \
                 or skip the test on purpose with --no-bcc",
            ),
            BccMissing::Vng => Verdict::skip(
                SkipKind::Setup,
                "no virtme-ng (vng): labctl doctor --install",
            )
            .detail(
                "hello-bcc boots under virtme-ng (`vng`, PyPI package virtme-ng): install it \
                 with `labctl doctor --install` (or `pip install virtme-ng`), or skip the test \
                 on purpose with --no-bcc",
            ),
        }
    }
}

/// A program a test needs beside the kernel (the kernel's own bpftool, the host's
/// bpftrace), as the caller found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolInput {
    /// Here; its libraries come from `sysroot` (a toolchain root) or the host.
    Ready {
        path: PathBuf,
        sysroot: Option<PathBuf>,
    },
    /// Not available: a setup skip with this short reason and what to do.
    Missing { reason: String, fix: String },
}

impl ToolInput {
    pub fn missing(reason: impl Into<String>, fix: impl Into<String>) -> ToolInput {
        ToolInput::Missing {
            reason: reason.into(),
            fix: fix.into(),
        }
    }
    /// The setup skip of a missing tool (None when it is ready).
    pub fn verdict(&self) -> Option<Verdict> {
        match self {
            ToolInput::Ready { .. } => None,
            ToolInput::Missing { reason, fix } => {
                Some(Verdict::skip(SkipKind::Setup, reason.clone()).detail(fix.clone()))
            }
        }
    }
}

/// `--skip`.
pub fn skip_requested() -> Verdict {
    Verdict::skip(SkipKind::Requested, "--skip").detail("skipped on request (--skip)")
}

/// `--no-bcc`.
pub fn bcc_not_requested() -> Verdict {
    Verdict::skip(SkipKind::Requested, "--no-bcc")
        .detail("hello-bcc was skipped on request (--no-bcc)")
}

/// Data says the test cannot exist on this kernel (`why` from the catalogue).
pub fn not_applicable(why: &str) -> Verdict {
    Verdict::skip(SkipKind::NotApplicable, why.to_string())
        .detail(format!("not applicable to this kernel version: {why}"))
}

/// A test that runs the host's own userland in the guest (virtme-ng shares the host's
/// root), for a guest of another architecture: it cannot run there.
pub fn not_on_arch(test: &str, arch: &crate::arch::Arch) -> Verdict {
    let host = crate::arch::Arch::host();
    Verdict::skip(
        SkipKind::NotApplicable,
        format!("runs the host's {host} userland, which an {arch} guest cannot execute"),
    )
    .detail(format!(
        "{test} boots under virtme-ng with this host's root filesystem shared into the guest          (BCC, bpftrace and their libraries are the host's {host} programs); an {arch} guest          cannot execute them. On an {arch} host the test runs as it does on {host}          (`labctl vm test VERSION --arch {arch}` there)."
    ))
}

/// The kernel under test came without a samples/bpf folder.
pub fn no_samples_dir() -> Verdict {
    Verdict::skip(SkipKind::Setup, "no samples/bpf in this build").detail(
        "the kernel under test has no samples/bpf programs: for a labctl build, rebuild it \
         (`labctl vm test VERSION --rebuild`) and read its logs/*samples.log; for --kernel, \
         pass --obj with the O= folder whose samples/bpf was built",
    )
}

/// The build's `make M=samples/bpf` step failed: its first error, its log and the known
/// problems (fix catalogue entries) it matched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SamplesFailure {
    pub first_error: Option<String>,
    pub log: Option<PathBuf>,
    /// Catalogue entries whose detectors matched the samples log: (id, docs anchor).
    pub catalogue: Vec<(String, String)>,
}

impl SamplesFailure {
    /// Read a build folder (`builds/<key>/`): `Some` only when its samples/bpf step failed.
    pub fn from_build_dir(dir: &Path) -> Option<SamplesFailure> {
        let meta = BuildJson::read(dir)?;
        if meta.samples_ok != Some(false) {
            return None;
        }
        // The samples steps' logs are `NN-samples*.log` (in-tree builds have three:
        // samples-config, samples-prepare, samples); the failed one ran last.
        let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.join("logs"))
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.split_once('-')
                        .is_some_and(|(_, rest)| rest.starts_with("samples"))
                        && n.ends_with(".log")
                })
            })
            .collect();
        logs.sort();
        let log = logs.pop();
        let first_error = log
            .as_ref()
            .and_then(|l| std::fs::read_to_string(l).ok())
            .and_then(|t| {
                t.lines()
                    .find(|l| l.contains("error:") || l.starts_with("Error:"))
                    .map(|l| l.trim().chars().take(200).collect::<String>())
            });
        Some(SamplesFailure {
            first_error,
            log,
            catalogue: meta
                .diagnosis
                .iter()
                .map(|d| (d.id.clone(), d.docs.clone()))
                .collect(),
        })
    }

    /// The setup skip for a program missing because of this failure (the same for every
    /// program of the build, so the summary can group them).
    pub fn verdict(&self) -> Verdict {
        let reason = match self.catalogue.first() {
            Some((id, _)) => format!("samples/bpf failed: {id}"),
            None => "not built: the samples/bpf build failed".to_string(),
        };
        let mut d = String::from("not built: `make M=samples/bpf` failed for this build");
        if let Some(e) = &self.first_error {
            d.push_str(&format!(" (first error: {e})"));
        }
        for (id, docs) in &self.catalogue {
            d.push_str(&format!(
                "; known problem: catalogue entry {id}, see docs/troubleshooting.md#{docs}"
            ));
        }
        if let Some(l) = &self.log {
            d.push_str(&format!("; log: {}", l.display()));
        }
        Verdict::skip(SkipKind::Setup, reason).detail(d)
    }
}

/// A program missing from a samples/bpf folder with no recorded build failure.
/// (The detail names the folder, not the program, so the summary can group them.)
pub fn sample_not_built(dir: &Path) -> Verdict {
    Verdict::skip(SkipKind::Setup, "not built in this kernel's samples/bpf").detail(format!(
        "not in {}: the build's samples/bpf step did not produce it; rebuild \
         (`labctl vm test VERSION --rebuild`) and read the build's logs/*samples.log",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TestResult;

    #[test]
    fn missing_bcc_and_vng_name_doctor_install_and_the_package() {
        let v = BccMissing::PythonModule.verdict();
        assert_eq!(
            (v.result, v.skip),
            (TestResult::Skip, Some(SkipKind::Setup))
        );
        assert!(v.reason.contains("labctl doctor --install"), "{}", v.reason);
        assert!(v.detail.as_deref().unwrap().contains("python3-bpfcc"));
        let v = BccMissing::Vng.verdict();
        assert!(v.reason.contains("labctl doctor --install"), "{}", v.reason);
        assert!(v.detail.as_deref().unwrap().contains("virtme-ng"));
        assert_eq!(bcc_not_requested().skip, Some(SkipKind::Requested));
        assert_eq!(
            not_applicable("gone in 6.1").skip,
            Some(SkipKind::NotApplicable)
        );
    }

    #[test]
    fn a_failed_samples_build_names_its_log_and_catalogue_entry() {
        let f = SamplesFailure {
            first_error: Some("error: unknown type name '__u64'".into()),
            log: Some(PathBuf::from("/h/builds/6.1.187-x/logs/07-samples.log")),
            catalogue: vec![(
                "samples-bpf-o-userprogs".into(),
                "samples-bpf-o-userprogs".into(),
            )],
        };
        let v = f.verdict();
        assert_eq!(v.skip, Some(SkipKind::Setup));
        assert!(v.reason.contains("samples-bpf-o-userprogs"), "{}", v.reason);
        let d = v.detail.unwrap();
        for want in [
            "M=samples/bpf",
            "__u64",
            "07-samples.log",
            "troubleshooting.md#samples-bpf-o-userprogs",
        ] {
            assert!(d.contains(want), "{want} missing in {d}");
        }
        let v = SamplesFailure::default().verdict();
        assert!(
            v.reason.contains("samples/bpf build failed"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn samples_failure_comes_from_build_json_only_when_the_step_failed() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            SamplesFailure::from_build_dir(d.path()),
            None,
            "no build.json"
        );
    }
}
