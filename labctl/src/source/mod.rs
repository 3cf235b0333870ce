//! Kernel sources: resolve a version against kernel.org / Debian's archive / a URL / a
//! local tarball, download with resume and verification, cache by sha256, and extract
//! safely into `src/linux-<ver>-<sha8>/`. Owns [`Release`] and [`SourceTree`].
//!
//! (Skeleton: filled in by the sources issue.)

use std::path::PathBuf;

use crate::events::EventSink;
use crate::home::Home;
use crate::version::{KernelVersion, VersionReq};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("`labctl kernel fetch` is not implemented yet")]
    NotImplemented,
}

/// Where to get a tarball from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    Auto,
    KernelOrg,
    Debian,
    Url(String),
    Path(PathBuf),
}

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// kernel.org base URL override (mirrors, tests).
    pub kernel_org_base: Option<String>,
    /// Debian archive base URLs override (else read from the host's apt configuration).
    pub debian_bases: Vec<String>,
    /// Debian suites to search, in order.
    pub debian_suites: Vec<String>,
}

/// A resolved, not yet downloaded release.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Release {
    pub version: KernelVersion,
    pub source: String,
    pub url: String,
    pub sha256: Option<String>,
    pub size: Option<u64>,
}

/// A verified, extracted kernel tree (read-only after extraction).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SourceTree {
    pub version: KernelVersion,
    pub path: PathBuf,
    pub sha256: String,
    pub source: String,
    pub url: String,
}

/// Resolve, download (or reuse), verify and extract.
pub fn fetch(
    _home: &Home,
    _req: &VersionReq,
    _spec: &SourceSpec,
    _opts: &FetchOptions,
    _sink: &dyn EventSink,
) -> Result<SourceTree, SourceError> {
    Err(SourceError::NotImplemented)
}
