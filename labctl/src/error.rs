//! The library's top-level error type. Each engine owns its own error enum (with the
//! path, command or exit status that explains it); this type only wraps them so the
//! CLI can render any failure and map it to exit code 2 (infrastructure/setup failure).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    #[error(transparent)]
    Version(#[from] crate::version::VersionError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Kconfig(#[from] crate::kconfig::KconfigError),
    /// A configuration that could not be made, explained by fix-catalogue entries.
    #[error("{source}{}", explain(.known))]
    KconfigExplained {
        #[source]
        source: crate::kconfig::KconfigError,
        known: Vec<crate::build::Diagnosis>,
    },
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    #[error(transparent)]
    Vm(#[from] crate::vm::VmError),
    #[error(transparent)]
    Suite(#[from] crate::suite::SuiteError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Userland(#[from] crate::userland::UserlandError),
    #[error(transparent)]
    New(#[from] crate::new::NewError),
    #[error(transparent)]
    Oci(#[from] crate::share::OciError),
    #[error(transparent)]
    MatrixList(#[from] crate::matrix::MatrixListError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Bad user input: the message says which forms are accepted.
    #[error("{0}")]
    Usage(String),
    /// Ctrl-C (or SIGTERM) arrived while waiting (e.g. for another labctl's lock).
    #[error("interrupted")]
    Interrupted,
    #[error("`{0}` is not implemented yet")]
    NotImplemented(&'static str),
}

impl Error {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl Error {
    /// True for Ctrl-C (or SIGTERM), however deep the engine that saw it wrapped it: a
    /// lock wait ([`crate::home::HomeError::Interrupted`]), a child process, a download.
    pub fn is_interrupted(&self) -> bool {
        match self {
            Error::Interrupted => true,
            Error::Home(e) => e.is_interrupted(),
            Error::Process(e) => e.is_interrupted(),
            Error::Source(e) => e.is_interrupted(),
            Error::Kconfig(e) | Error::KconfigExplained { source: e, .. } => e.is_interrupted(),
            Error::Build(e) => e.is_interrupted(),
            Error::Vm(e) => e.is_interrupted(),
            Error::Rootfs(e) => e.is_interrupted(),
            Error::Userland(e) => e.is_interrupted(),
            Error::Oci(e) => e.is_interrupted(),
            Error::Suite(e) => e.is_interrupted(),
            _ => false,
        }
    }
}

/// True when `e` or any error in its `source()` chain is an interruption (Ctrl-C): the
/// CLI maps that to exit code 130 whichever engine's error wraps it.
pub fn is_interrupted(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        macro_rules! check {
            ($($t:ty),*) => {
                $(if c.downcast_ref::<$t>().is_some_and(|x| x.is_interrupted()) {
                    return true;
                })*
            };
        }
        check!(
            Error,
            crate::home::HomeError,
            crate::process::ProcessError,
            crate::source::SourceError,
            crate::kconfig::KconfigError,
            crate::build::BuildError,
            crate::build::tools::ToolError,
            crate::rootfs::RootfsError,
            crate::userland::UserlandError,
            crate::share::OciError,
            crate::suite::SuiteError,
            crate::vm::VmError
        );
        cur = c.source();
    }
    false
}

/// Shorthand for mapping an `io::Result` into an error that names the path.
pub trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}

fn explain(known: &[crate::build::Diagnosis]) -> String {
    known
        .iter()
        .map(|d| {
            let manual = crate::build::Catalogue::builtin()
                .get(&d.id)
                .map(|f| format!("\n  what to do: {}", f.manual))
                .unwrap_or_default();
            format!(
                "\nknown problem {}: {}{manual}\n  docs: docs/troubleshooting.md#{}",
                d.id, d.title, d.docs
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::HomeError;

    #[test]
    fn interruptions_are_found_through_wrapping() {
        // Transparent wrappers (matched by variant) and #[source] ones (walked).
        let e = Error::from(crate::kconfig::KconfigError::Home(HomeError::Interrupted));
        assert!(e.is_interrupted() && is_interrupted(&e));
        let e = Error::from(crate::vm::VmError::ImageHome {
            source: HomeError::Interrupted,
        });
        assert!(is_interrupted(&e));
        assert_eq!(e.to_string(), "cannot write the guest image: interrupted");
        let e = Error::from(crate::suite::SuiteError::Vm(Box::new(
            crate::vm::VmError::ImageHome {
                source: HomeError::Interrupted,
            },
        )));
        assert!(e.is_interrupted() && is_interrupted(&e));
        let e = crate::userland::UserlandError::Home {
            spec: crate::userland::ToolchainSpec::Debian("trixie".into()),
            source: HomeError::Interrupted,
        };
        assert!(is_interrupted(&e));
        let e = Error::from(crate::build::BuildError::Home(HomeError::io(
            "lock",
            "/x/locks/a.lock",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        )));
        assert!(!is_interrupted(&e));
        assert!(e.to_string().starts_with("lock /x/locks/a.lock: "), "{e}");
    }
}
