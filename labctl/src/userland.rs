//! Where the build tools run: the host ([`ToolchainSpec::Host`], the default) or a cached
//! minimal Debian root filesystem of a chosen release ([`ToolchainSpec::Debian`],
//! `--toolchain debian:bullseye`), so a kernel can be built with the compiler, pahole and
//! clang its distribution ships without touching the host or running a daemon.
//!
//! This module owns [`ToolchainSpec`] (parsed from `--toolchain`, recorded in build.json
//! and the build key) and [`Userland`], the handle the config and build engines spawn
//! their tools through: [`Userland::wrap`] turns a host [`Cmd`] into the same command run
//! inside the root filesystem, [`Userland::which`] looks a program up there, and
//! [`Userland::sysroot`] tells the VM harness where the shared libraries of programs
//! built inside (samples/bpf) come from.
//!
//! A Debian userland is made of three parts, each cached:
//! - the tarball: `mmdebstrap --variant=minbase --include=<packages>` from the host's apt
//!   mirror ([`crate::rootfs`]), where the packages are the apt names of doctor's
//!   `build` and `samples` groups (`doctor/requirements.toml`, the one list of what a
//!   build needs), kept for [`TARBALL_MAX_AGE`];
//! - the unpacked folder `$LABCTL_HOME/toolchains/<name>/root`, unpacked once into a
//!   temporary folder and renamed into place;
//! - a session: while a [`Userland`] is open the labctl home is bind-mounted inside at
//!   the same absolute path (so trees, build folders, ccache and logs have one name on
//!   both sides), with `/proc`, `/sys` and `/dev`. An exclusive lock per root makes a
//!   second labctl using the same toolchain wait; the mounts go when the last clone of
//!   the handle is dropped.
//!
//! Commands inside run under `chroot ROOT /usr/bin/env -i VARS --chdir=DIR PROG ARGS`:
//! only the variables the caller set (plus PATH, HOME, TERM, LANG) reach the tools, so the
//! host's environment cannot leak into the build. Needs root (mount, chroot).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::doctor::{Group, Manager};
use crate::events::{EventSink, SinkExt, Stage};
use crate::home::{CacheKey, Home, LockGuard};
use crate::process::Cmd;
use crate::rootfs::{
    Bind, Mirror, Rootfs, RootfsCache, RootfsError, RootfsSpec, Session, SessionOptions,
};

/// How long a toolchain tarball is reused before it is rebuilt from the mirror. Long:
/// a toolchain should stay the same between builds (the build key names its versions, so
/// a rebuilt tarball with a newer compiler is a new key, never a wrong reuse).
pub const TARBALL_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Which compilers build the kernel: `host` or `debian:<suite>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum ToolchainSpec {
    /// The tools on this machine's PATH.
    #[default]
    Host,
    /// The tools of a Debian release, in a cached root filesystem (`debian:trixie`).
    Debian(String),
}

/// A `--toolchain` value that is not `host` or `debian:<suite>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown toolchain `{0}`: use `host` (this machine's compilers) or `debian:<suite>` (a Debian release's, e.g. debian:bullseye for GCC 10, debian:trixie for GCC 14)")]
pub struct BadToolchain(pub String);

impl FromStr for ToolchainSpec {
    type Err = BadToolchain;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "host" {
            return Ok(ToolchainSpec::Host);
        }
        let suite = s
            .strip_prefix("debian:")
            .ok_or_else(|| BadToolchain(s.to_string()))?;
        // A code name or alias: it becomes a file name and an mmdebstrap argument.
        let ok = !suite.is_empty()
            && suite.len() <= 32
            && suite.starts_with(|c: char| c.is_ascii_lowercase())
            && suite
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(ToolchainSpec::Debian(suite.to_string()))
        } else {
            Err(BadToolchain(s.to_string()))
        }
    }
}

impl std::fmt::Display for ToolchainSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolchainSpec::Host => f.write_str("host"),
            ToolchainSpec::Debian(s) => write!(f, "debian:{s}"),
        }
    }
}

impl serde::Serialize for ToolchainSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ToolchainSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl ToolchainSpec {
    pub fn is_host(&self) -> bool {
        matches!(self, ToolchainSpec::Host)
    }
}

/// What can go wrong preparing a toolchain root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum UserlandError {
    #[error("toolchain {spec}: {source}")]
    Rootfs {
        spec: ToolchainSpec,
        /// Boxed: keeps every error that wraps this one small (clippy `result_large_err`).
        #[source]
        source: Box<RootfsError>,
    },
    #[error("toolchain {spec}: {source}")]
    Home {
        spec: ToolchainSpec,
        #[source]
        source: crate::home::HomeError,
    },
    #[error("toolchain {spec} needs mmdebstrap to build its Debian root filesystem: install it (`apt-get install --no-install-recommends mmdebstrap`, or `labctl doctor --tests --install`), or use --toolchain host")]
    NoMmdebstrap { spec: ToolchainSpec },
    #[error("the {arch} guest userland (a Debian root used as the cross compiler's sysroot and the guest's libraries): {source}")]
    GuestRoot {
        arch: String,
        #[source]
        source: Box<RootfsError>,
    },
    #[error("the {arch} guest userland: {source}")]
    GuestRootHome {
        arch: String,
        #[source]
        source: crate::home::HomeError,
    },
    #[error("the {arch} guest userland is a Debian root filesystem that mmdebstrap builds: install it (`apt-get install --no-install-recommends mmdebstrap`, or `labctl doctor --arch {arch} --install`)")]
    GuestRootNoMmdebstrap { arch: String },
    #[error("toolchain {spec} needs root (it mounts the labctl home into a Debian root filesystem and runs the build there with chroot); run labctl as root, or use --toolchain host")]
    NotRoot { spec: ToolchainSpec },
}

impl UserlandError {
    /// True for Ctrl-C, while building the root filesystem or waiting for its lock.
    pub fn is_interrupted(&self) -> bool {
        match self {
            UserlandError::Rootfs { source, .. } => source.is_interrupted(),
            UserlandError::Home { source, .. } => source.is_interrupted(),
            UserlandError::GuestRoot { source, .. } => source.is_interrupted(),
            UserlandError::GuestRootHome { source, .. } => source.is_interrupted(),
            _ => false,
        }
    }
}

/// The packages a toolchain root filesystem gets: the apt names of doctor's `build`
/// and `samples` groups, sorted and deduplicated.
pub fn toolchain_packages() -> Vec<String> {
    let mut v: Vec<String> = crate::doctor::requirements()
        .iter()
        .filter(|r| matches!(r.group, Group::Build | Group::Samples))
        .flat_map(|r| r.packages(Manager::Apt).iter().cloned())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The root filesystem a `debian:<suite>` toolchain is built from.
pub fn rootfs_spec(suite: &str) -> RootfsSpec {
    RootfsSpec::new(suite).include(toolchain_packages())
}

/// Unpack `tarball` once into `dir/<its name>/root` (into a temporary folder, then renamed
/// into place), again only when the tarball changed. Returns the root and the lock of its
/// [`CacheKey::Toolchain`] entry (held by the caller while it uses the root).
fn unpack_once(
    home: &Home,
    dir: &Path,
    tarball: &Path,
    fallback: &str,
    sink: &dyn EventSink,
    rf: &dyn Fn(RootfsError) -> UserlandError,
    hm: &dyn Fn(crate::home::HomeError) -> UserlandError,
) -> Result<(PathBuf, LockGuard), UserlandError> {
    let name = tarball
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| fallback.to_string());
    let lock = home.lock(&CacheKey::Toolchain(name.clone())).map_err(hm)?;
    let unpacked = dir.join(&name);
    let root = unpacked.join("root");
    let stamp = unpacked.join("unpacked-from");
    let current = std::fs::read_to_string(&stamp).ok();
    // The tarball's path and age: a rebuilt tarball (same name) is unpacked again.
    let mtime = std::fs::metadata(tarball)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let want = format!("{} {mtime}", tarball.display());
    if current.as_deref() != Some(want.as_str()) || !root.is_dir() {
        sink.info(format!(
            "unpacking {} into {}",
            tarball.display(),
            root.display()
        ));
        let tmp = unpacked.join(format!(".root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        Rootfs::unpack(tarball, &tmp, sink).map_err(rf)?;
        // Nothing is mounted below an old root while we hold the lock (sessions
        // unmount before they release it), so replacing it is safe.
        if root.exists() {
            std::fs::remove_dir_all(&root).map_err(|e| {
                rf(RootfsError::Io {
                    op: "remove",
                    path: root.clone(),
                    source: e,
                })
            })?;
        }
        std::fs::rename(&tmp, &root).map_err(|e| {
            rf(RootfsError::Io {
                op: "rename into place",
                path: root.clone(),
                source: e,
            })
        })?;
        std::fs::write(&stamp, &want).map_err(|e| {
            rf(RootfsError::Io {
                op: "write",
                path: stamp.clone(),
                source: e,
            })
        })?;
    }
    Ok((root, lock))
}

/// The userland of `arch`'s guests when it is not this machine's architecture: a Debian
/// root of `arch.guest_suite` for `arch.debian_arch` with `arch.guest_packages`, made by
/// `mmdebstrap --variant=extract` (no emulator: nothing in it runs here) and unpacked once
/// under `toolchains/`. It is the cross compiler's `--sysroot` (samples/bpf, the
/// examples, bpftool) and where the guest image takes busybox and the loaders' libraries.
/// None for the host's own architecture (the host's userland is the guest's).
pub fn guest_root(
    home: &Home,
    arch: &crate::arch::Arch,
    sink: &dyn EventSink,
) -> Result<Option<PathBuf>, UserlandError> {
    if arch.is_host() {
        return Ok(None);
    }
    if crate::process::which("mmdebstrap").is_none() {
        return Err(UserlandError::GuestRootNoMmdebstrap {
            arch: arch.name.clone(),
        });
    }
    let rf = |source: RootfsError| UserlandError::GuestRoot {
        arch: arch.name.clone(),
        source: Box::new(source),
    };
    let hm = |source: crate::home::HomeError| UserlandError::GuestRootHome {
        arch: arch.name.clone(),
        source,
    };
    let mirror = Mirror::from_host().map_err(rf)?;
    let dir = home.root().join("toolchains");
    let spec = RootfsSpec::new(&arch.guest_suite)
        .variant("extract")
        .architecture(&arch.debian_arch)
        .include(arch.guest_packages.iter().cloned());
    let cache = RootfsCache::new(dir.join("tarballs")).max_age(TARBALL_MAX_AGE);
    let tarball = cache.get(&spec, &mirror, sink).map_err(rf)?;
    let (root, _lock) = unpack_once(home, &dir, &tarball, &arch.name, sink, &rf, &hm)?;
    Ok(Some(root))
}

/// The programs' search path inside a toolchain root (also the session's PATH).
const INSIDE_PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

#[derive(Debug)]
struct Inside {
    // Field order is drop order: unmount first, then release the lock.
    session: Session,
    _lock: LockGuard,
}

/// The place build tools run; cheap to clone (a Debian root stays mounted until the last
/// clone is dropped).
#[derive(Debug, Clone, Default)]
pub struct Userland {
    spec: ToolchainSpec,
    inside: Option<Arc<Inside>>,
}

impl Userland {
    /// This machine's own tools.
    pub fn host() -> Userland {
        Userland::default()
    }

    /// Prepare `spec`: for `debian:<suite>`, build or reuse the root filesystem, unpack it
    /// once, and mount the labctl home inside. Reports its stages to `sink`.
    pub fn open(
        home: &Home,
        spec: &ToolchainSpec,
        sink: &dyn EventSink,
    ) -> Result<Userland, UserlandError> {
        let ToolchainSpec::Debian(suite) = spec else {
            return Ok(Userland::host());
        };
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(UserlandError::NotRoot { spec: spec.clone() });
        }
        if crate::process::which("mmdebstrap").is_none() {
            return Err(UserlandError::NoMmdebstrap { spec: spec.clone() });
        }
        let rf = |source: RootfsError| UserlandError::Rootfs {
            spec: spec.clone(),
            source: Box::new(source),
        };
        let hm = |source: crate::home::HomeError| UserlandError::Home {
            spec: spec.clone(),
            source,
        };
        let t = sink.stage(
            Stage::Toolchain,
            format!("Debian {suite} root filesystem with its compilers"),
        );
        let mirror = Mirror::from_host().map_err(rf)?;
        let dir = home.root().join("toolchains");
        let cache = RootfsCache::new(dir.join("tarballs")).max_age(TARBALL_MAX_AGE);
        let rspec = rootfs_spec(suite);
        let tarball = cache.get(&rspec, &mirror, sink).map_err(rf)?;
        let (root, lock) = unpack_once(home, &dir, &tarball, suite, sink, &rf, &hm)?;
        let rootfs = Rootfs::open(&root).map_err(rf)?;
        let home_inside = home.root().to_string_lossy().into_owned();
        let session = Session::enter(
            &rootfs,
            SessionOptions {
                binds: vec![Bind::new(home.root(), home_inside)],
                remove_on_drop: false,
                term: None,
            },
            sink,
        )
        .map_err(rf)?;
        t.ok();
        Ok(Userland {
            spec: spec.clone(),
            inside: Some(Arc::new(Inside {
                session,
                _lock: lock,
            })),
        })
    }

    pub fn spec(&self) -> &ToolchainSpec {
        &self.spec
    }

    /// Where programs built inside find their shared libraries (None: the host's).
    pub fn sysroot(&self) -> Option<&Path> {
        self.inside.as_deref().map(|i| i.session.root())
    }

    /// The same command, run where the tools are (unchanged on the host).
    pub fn wrap(&self, cmd: Cmd) -> Cmd {
        match &self.inside {
            None => cmd,
            Some(i) => cmd.in_root(i.session.root(), i.session.env()),
        }
    }

    /// A program on the tools' PATH: the path the tools see it under (inside a Debian
    /// root that is the path inside it).
    pub fn which(&self, program: &str) -> Option<PathBuf> {
        let Some(i) = &self.inside else {
            return crate::process::which(program);
        };
        if program.contains('/') {
            let inside = PathBuf::from(program);
            let on_host = i
                .session
                .root()
                .join(inside.strip_prefix("/").unwrap_or(&inside));
            return crate::process::is_executable(&on_host).then_some(inside);
        }
        INSIDE_PATH.iter().find_map(|d| {
            let inside = Path::new(d).join(program);
            let on_host = i.session.root().join(inside.strip_prefix("/").unwrap());
            crate::process::is_executable(&on_host).then_some(inside)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_toolchains() {
        assert_eq!("host".parse::<ToolchainSpec>(), Ok(ToolchainSpec::Host));
        assert_eq!(
            "debian:bullseye".parse::<ToolchainSpec>(),
            Ok(ToolchainSpec::Debian("bullseye".into()))
        );
        assert_eq!(
            ToolchainSpec::Debian("trixie".into()).to_string(),
            "debian:trixie"
        );
        for bad in [
            "",
            "gcc-10",
            "debian:",
            "debian:../etc",
            "debian:Trixie",
            "debian:a b",
            "ubuntu:jammy",
        ] {
            let e = bad.parse::<ToolchainSpec>().unwrap_err();
            assert!(e.to_string().contains("debian:<suite>"), "{bad}: {e}");
        }
        let j = serde_json::to_string(&ToolchainSpec::Debian("forky".into())).unwrap();
        assert_eq!(j, "\"debian:forky\"");
        assert_eq!(
            serde_json::from_str::<ToolchainSpec>(&j).unwrap(),
            ToolchainSpec::Debian("forky".into())
        );
    }

    #[test]
    fn toolchain_root_gets_what_doctor_says_a_build_needs() {
        let p = toolchain_packages();
        for must in [
            "gcc",
            "make",
            "dwarves",
            "clang",
            "libelf-dev",
            "bc",
            "flex",
            "bison",
        ] {
            assert!(p.iter().any(|x| x == must), "{must} missing from {p:?}");
        }
        // Only build tools: nothing to boot or test with.
        assert!(!p.iter().any(|x| x.starts_with("qemu")), "{p:?}");
        let mut sorted = p.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(p, sorted);
        assert_eq!(rootfs_spec("trixie").variant, "minbase");
    }

    #[test]
    fn host_userland_leaves_commands_alone() {
        let u = Userland::host();
        let c = u.wrap(Cmd::new("make").arg("-C").arg("/x").cwd("/y"));
        assert_eq!(c.program(), "make");
        assert_eq!(c.get_cwd(), Some(Path::new("/y")));
        assert!(u.sysroot().is_none());
    }
}
