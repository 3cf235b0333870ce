//! `build.json`: what was asked, what ran, with which toolchain and fixes, how long each
//! stage took, and the result. Written atomically: `running` when a build starts,
//! `success` (last, after every artifact is in place) or `failed` at the end. Only
//! `success` makes a build folder count as finished. Also the per-series object counts
//! (`builds/objects.json`) that size the next compile bar.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::catalogue::{Diagnosis, FixPlan};
use super::toolchain::Toolchain;
use super::BuildOutput;
use crate::version::KernelVersion;

pub const FILE: &str = "build.json";
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildResult {
    Running,
    Success,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceInfo {
    pub path: PathBuf,
    pub sha256: String,
    pub source: String,
    pub url: String,
    /// How the tarball was verified, in words (the tree's `verified`).
    #[serde(default)]
    pub verified: String,
    /// The signature facts recorded with the tree (`source::tree_trust`).
    #[serde(default)]
    pub trust: crate::source::Trust,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage: crate::events::Stage,
    pub seconds: f64,
    pub ok: bool,
}

/// How `make scripts_gdb` went; a failure never fails the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GdbScriptsRecord {
    pub ok: bool,
    /// Why not, in one line (the first error, or the missing output).
    #[serde(default)]
    pub error: Option<String>,
    /// The step's log.
    #[serde(default)]
    pub log: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildJson {
    pub schema: u32,
    /// `<ver>-<cfg8>-<tool8>`, the folder name.
    pub key: String,
    pub version: KernelVersion,
    pub source: SourceInfo,
    pub profile: String,
    pub fragments: Vec<PathBuf>,
    pub config_hash: String,
    pub toolchain: Toolchain,
    pub cc_wrapper: String,
    pub jobs: usize,
    pub fixes_enabled: bool,
    pub plan: FixPlan,
    /// Per applied entry: what was done.
    pub fixes_applied: Vec<(String, String)>,
    pub stages: Vec<StageRecord>,
    /// Objects `make bzImage` compiled (0 when everything was up to date).
    pub objects: u64,
    pub result: BuildResult,
    /// samples/bpf built (None = not requested).
    pub samples_ok: Option<bool>,
    /// `make scripts_gdb` (gdb's lx- commands, `vm run --gdb`): None = not attempted
    /// (a build made before labctl had the step, or a kernel without the target).
    #[serde(default)]
    pub gdb_scripts: Option<GdbScriptsRecord>,
    /// The `NAME=value` arguments and the environment every kernel make ran with, so a
    /// later make against the same O= folder (`scripts_gdb` on demand) sees the same
    /// compiler and flags and rebuilds nothing. Empty in builds made before labctl
    /// recorded them.
    #[serde(default)]
    pub make_vars: Vec<(String, String)>,
    #[serde(default)]
    pub make_env: Vec<(String, String)>,
    pub error: Option<String>,
    pub diagnosis: Vec<Diagnosis>,
    pub started_unix: u64,
    pub finished_unix: Option<u64>,
    pub output: Option<BuildOutput>,
    /// Set when the folder was pulled from a registry (`kernel pull`) instead of built
    /// here: the reference and the manifest digest every blob was checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// Where a pulled build came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The reference as given (`host/repo:tag` or `…@sha256:…`).
    pub reference: String,
    /// The manifest's digest (`sha256:…`): `kernel pull host/repo@<digest>` gets the same bytes.
    pub digest: String,
    pub pulled_unix: u64,
}

impl BuildJson {
    pub fn read(dir: &Path) -> Option<BuildJson> {
        let text = std::fs::read_to_string(dir.join(FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
    pub fn write(&self, dir: &Path) -> Result<(), crate::home::HomeError> {
        let data = serde_json::to_vec_pretty(self).expect("serializable");
        crate::home::write_atomic(&dir.join(FILE), &data)
    }
    /// A finished, successful build whose artifacts are still there.
    pub fn is_complete(&self) -> bool {
        self.result == BuildResult::Success
            && self
                .output
                .as_ref()
                .is_some_and(|o| o.image.is_file() && o.vmlinux.is_file() && o.config.is_file())
    }
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Objects compiled by earlier builds: `series → config hash → objects`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ObjectStats(pub BTreeMap<String, BTreeMap<String, u64>>);

impl ObjectStats {
    fn path(builds: &Path) -> PathBuf {
        builds.join("objects.json")
    }
    pub fn load(builds: &Path) -> ObjectStats {
        std::fs::read_to_string(Self::path(builds))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }
    /// Exact config first, else None (a different config of the series says little).
    pub fn expected(&self, series: &str, config_hash: &str) -> Option<u64> {
        self.0.get(series)?.get(config_hash).copied()
    }
    pub fn record(builds: &Path, series: &str, config_hash: &str, objects: u64) {
        if objects == 0 {
            return;
        }
        let mut s = Self::load(builds);
        // An incremental run (after a failure) compiles only what was left: keep the largest.
        let e =
            s.0.entry(series.to_string())
                .or_default()
                .entry(config_hash.to_string())
                .or_insert(0);
        *e = (*e).max(objects);
        let _ = crate::home::write_atomic(
            &Self::path(builds),
            &serde_json::to_vec_pretty(&s).expect("serializable"),
        );
    }
}
