//! Kernel configuration: profiles (the base), `kconfig/` fragments and `--set` values
//! merged with merge_config.sh's rules, `olddefconfig`, then verification of every
//! requested symbol with a reason read from the tree's Kconfig files. Owns
//! [`ConfigPlan`] and [`ConfigReport`] (including the config hash used as build key).
//!
//! (Skeleton: filled in by the kconfig issue.)

use std::path::PathBuf;

use crate::events::EventSink;
use crate::home::Home;
use crate::source::SourceTree;

#[derive(Debug, thiserror::Error)]
pub enum KconfigError {
    #[error("`labctl kernel config` is not implemented yet")]
    NotImplemented,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Profile {
    Lab,
    Defconfig,
    Distro(Option<PathBuf>),
    File(PathBuf),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigPlan {
    pub profile: Profile,
    /// Extra fragment files, after the default ones.
    pub fragments: Vec<PathBuf>,
    /// `CONFIG_X=value` pairs from `--set`, applied last.
    pub sets: Vec<(String, String)>,
    pub strict: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigReport {
    /// The final .config.
    pub config_path: PathBuf,
    /// Hash over the final .config, ignoring comments and order.
    pub hash: String,
}

pub fn configure(
    _home: &Home,
    _tree: &SourceTree,
    _plan: &ConfigPlan,
    _sink: &dyn EventSink,
) -> Result<ConfigReport, KconfigError> {
    Err(KconfigError::NotImplemented)
}
