//! Kernel builds: the known-fix catalogue (data in `labctl/fixes/`), the out-of-tree
//! build keyed by version + config hash + toolchain, artifacts, build.json and
//! reproduce.sh, and failure diagnosis. Owns [`BuildOutput`].
//!
//! (Skeleton: filled in by the build issue.)

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("`labctl kernel build` is not implemented yet")]
    NotImplemented,
}

/// A finished build's artifacts folder.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BuildOutput {
    pub dir: PathBuf,
    pub bzimage: PathBuf,
    pub vmlinux: PathBuf,
    pub config: PathBuf,
    /// `modules_install INSTALL_MOD_PATH` staging dir (holds lib/modules/<release>).
    pub modules: PathBuf,
    pub headers: PathBuf,
    pub samples: PathBuf,
    /// `make kernelrelease`.
    pub release: String,
}
