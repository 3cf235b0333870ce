//! Debian root filesystems, built and cached, and sessions that run commands inside one.
//!
//! This module owns three things, each usable on its own:
//!
//! - **Building** a root filesystem tarball with `mmdebstrap` from a [`RootfsSpec`]
//!   (suite, variant, extra packages) against the Debian archive named in the host's apt
//!   configuration ([`Mirror::from_host`], via [`crate::source::apt`]); no mirror host is
//!   ever written into labctl.
//! - **Caching** those tarballs in a [`RootfsCache`] folder, keyed by (suite, variant,
//!   sorted includes, apt lines, architecture), rebuilt when older than a maximum age
//!   (default 3 days) so a "fresh" system really is fresh. A build writes `NAME.tar.part`
//!   and renames it into place; a flock per entry keeps two runs from building the same
//!   one; `NAME.json` records how it was built and `NAME.log` mmdebstrap's output.
//! - **Sessions** ([`Session`]): a [`Rootfs`] unpacked into a folder gets the host's
//!   `/etc/resolv.conf` and locally added CA certificates (the network's, not the
//!   system's), `/proc`, `/sys`, `/dev` (with `/dev/pts` and `/dev/shm`, so
//!   `/dev/kvm` is there for the KVM probe) and any extra bind mounts; commands run inside
//!   with `chroot` under a cleared environment (PATH, HOME, TERM, LANG only), streamed to a
//!   log with a timeout. Dropping the session kills every process still inside, unmounts
//!   everything in reverse order (lazily as a last resort) and, when asked, deletes the
//!   folder, but only once `/proc/self/mountinfo` shows nothing mounted below it.
//!
//! Expired archives: snapshot mirrors serve `InRelease` files whose `Valid-Until` has
//! passed (sid, forky, experimental on a frozen snapshot). A build first runs without
//! overrides; when mmdebstrap's log shows apt's "Release file ... is expired" it is
//! retried once with `--aptopt='Acquire::Check-Valid-Until "false"'` (which mmdebstrap
//! also keeps in the image's `/etc/apt/apt.conf.d/99mmdebstrap`, so `apt-get update`
//! inside keeps working). Detecting beats a suite list: a fresh mirror never needs the
//! override and a stale one may need it for any suite.
//!
//! Everything is spawned through [`crate::process::Cmd`] as argv lists. Building in
//! [`Mode::Root`] and sessions need root (mount, chroot); [`Mode::Unshare`] builds as an
//! ordinary user when `newuidmap` (package `uidmap`) and user namespaces are available.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::events::{EventSink, NullSink, SinkExt, Stage};
use crate::process::{Cmd, LineAction, ProcessError, StreamOutput};
use crate::source::apt::DebianBases;

/// Everything that can go wrong building, unpacking or using a root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the host's apt configuration (/etc/apt/sources.list, /etc/apt/sources.list.d/) names no Debian archive for mmdebstrap")]
    NoMirror,
    #[error("mmdebstrap could not build the {suite} root filesystem (log: {}): {source}", log.display())]
    Build {
        suite: String,
        log: PathBuf,
        #[source]
        source: Box<ProcessError>,
    },
    #[error("`{path}` cannot be used inside a root filesystem: {reason}")]
    BadInsidePath { path: String, reason: &'static str },
    #[error("{} is still mounted; refusing to delete {} (try `umount -R {}`)", mount.display(), root.display(), root.display())]
    StillMounted { root: PathBuf, mount: PathBuf },
    #[error("no Debian architecture name for `{0}`")]
    UnknownArch(String),
    #[error("{what} needs root (mount and chroot); this process runs as uid {uid}")]
    NotRoot { what: &'static str, uid: u32 },
}

pub type Result<T, E = RootfsError> = std::result::Result<T, E>;

impl RootfsError {
    /// True when Ctrl-C ended a child (mmdebstrap, tar, a command in a chroot).
    pub fn is_interrupted(&self) -> bool {
        match self {
            RootfsError::Process(p) => p.is_interrupted(),
            RootfsError::Build { source, .. } => source.is_interrupted(),
            _ => false,
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RootfsError {
    let path = path.to_owned();
    move |source| RootfsError::Io { op, path, source }
}

// ---- what to build ----------------------------------------------------------------------

/// A Debian root filesystem to build: `mmdebstrap --variant=VARIANT --include=... SUITE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsSpec {
    /// A release code name or alias: bullseye, bookworm, trixie, forky, sid, ...
    pub suite: String,
    /// mmdebstrap's variant; `minbase` (Essential + apt, what container images ship).
    pub variant: String,
    /// Extra packages, as mmdebstrap's `--include` takes them.
    pub include: Vec<String>,
    /// The Debian architecture (`arm64`); None = this machine's. A foreign one with the
    /// `extract` variant needs no emulator: nothing inside is run.
    pub architecture: Option<String>,
}

impl RootfsSpec {
    pub fn new(suite: impl Into<String>) -> Self {
        RootfsSpec {
            suite: suite.into(),
            variant: "minbase".into(),
            include: Vec::new(),
            architecture: None,
        }
    }
    pub fn architecture(mut self, a: impl Into<String>) -> Self {
        self.architecture = Some(a.into());
        self
    }
    /// The Debian architecture this spec builds for.
    pub fn arch(&self) -> Result<String> {
        match &self.architecture {
            Some(a) => Ok(a.clone()),
            None => debian_arch().map(str::to_string),
        }
    }
    pub fn variant(mut self, v: impl Into<String>) -> Self {
        self.variant = v.into();
        self
    }
    pub fn include<I, S>(mut self, pkgs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.include.extend(pkgs.into_iter().map(Into::into));
        self
    }
    /// Includes sorted and deduplicated: the order they were given in does not matter.
    pub fn includes_normalized(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .include
            .iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Suites that have `-updates` and `-security` companions (every named release);
/// unstable and experimental do not.
pub fn has_updates(suite: &str) -> bool {
    !matches!(suite, "sid" | "unstable" | "experimental" | "rc-buggy")
}

/// Debian base URLs (from the host's apt configuration) a root filesystem is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub archive: String,
    pub security: Option<String>,
}

impl Mirror {
    /// The first archive and security base of an apt configuration.
    pub fn from_bases(b: &DebianBases) -> Result<Mirror> {
        let archive = b
            .primary_archive()
            .ok_or(RootfsError::NoMirror)?
            .to_string();
        Ok(Mirror {
            archive,
            security: b.primary_security().map(str::to_string),
        })
    }
    /// The host's apt configuration under `/`.
    pub fn from_host() -> Result<Mirror> {
        Mirror::from_bases(&crate::source::apt::read_host(Path::new("/")))
    }
    /// The one-line apt sources the image gets (mmdebstrap writes them into its
    /// `/etc/apt/sources.list`): the suite, plus `-updates` and `-security` for releases.
    pub fn apt_lines(&self, suite: &str) -> Vec<String> {
        let mut v = vec![format!("deb {} {suite} main", self.archive)];
        if has_updates(suite) {
            v.push(format!("deb {} {suite}-updates main", self.archive));
            if let Some(s) = &self.security {
                v.push(format!("deb {s} {suite}-security main"));
            }
        }
        v
    }
}

/// Debian's name for this machine's architecture.
pub fn debian_arch() -> Result<&'static str> {
    debian_arch_of(std::env::consts::ARCH)
}

fn debian_arch_of(rust_arch: &str) -> Result<&'static str> {
    Ok(match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => return Err(RootfsError::UnknownArch(other.to_string())),
    })
}

/// The cache key: sha256 over every input that changes the image, first 16 hex digits.
pub fn cache_key(spec: &RootfsSpec, apt_lines: &[String], arch: &str) -> String {
    let text = format!(
        "suite={}\nvariant={}\ninclude={}\napt={}\narch={arch}\n",
        spec.suite,
        spec.variant,
        spec.includes_normalized().join(","),
        apt_lines.join("|"),
    );
    hex::encode(Sha256::digest(text.as_bytes()))[..16].to_string()
}

/// How mmdebstrap gets privileges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Root when running as root, else unshare.
    Auto,
    /// Real root: `--mode=root`.
    Root,
    /// User namespaces as an ordinary user (`uidmap` package): `--mode=unshare`.
    Unshare,
}

impl Mode {
    fn resolve(self) -> Mode {
        match self {
            Mode::Auto if euid() == 0 => Mode::Root,
            Mode::Auto => Mode::Unshare,
            m => m,
        }
    }
    fn flag(self) -> &'static str {
        match self.resolve() {
            Mode::Unshare => "--mode=unshare",
            _ => "--mode=root",
        }
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and no memory effects.
    unsafe { libc::geteuid() }
}

/// The apt option that accepts an `InRelease` past its `Valid-Until`.
pub const NO_VALID_UNTIL: &str = "Acquire::Check-Valid-Until \"false\"";

/// mmdebstrap's argv (without the program) for one build into `out`.
pub fn mmdebstrap_args(
    spec: &RootfsSpec,
    mode: Mode,
    arch: &str,
    apt_lines: &[String],
    out: &Path,
    ignore_valid_until: bool,
) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        format!("--variant={}", spec.variant).into(),
        mode.flag().into(),
        "--format=tar".into(),
        format!("--architectures={arch}").into(),
    ];
    let inc = spec.includes_normalized();
    if !inc.is_empty() {
        a.push(format!("--include={}", inc.join(",")).into());
    }
    if ignore_valid_until {
        a.push(format!("--aptopt={NO_VALID_UNTIL}").into());
    }
    a.push(spec.suite.clone().into());
    a.push(out.into());
    a.extend(apt_lines.iter().map(OsString::from));
    a
}

/// True when an mmdebstrap log shows apt refusing an expired `Release` file.
pub fn log_shows_expired_release(log: &str) -> bool {
    log.lines()
        .any(|l| l.contains("Release file for") && l.contains("is expired"))
}

// ---- the cache ----------------------------------------------------------------------------

/// What `NAME.json` next to a cached tarball records.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildRecord {
    pub suite: String,
    pub variant: String,
    pub include: Vec<String>,
    pub arch: String,
    pub apt_lines: Vec<String>,
    pub key: String,
    /// The build needed `Acquire::Check-Valid-Until "false"`.
    pub check_valid_until_disabled: bool,
    pub built_at_unix: u64,
    pub build_seconds: f64,
}

/// A folder of root filesystem tarballs: `SUITE-VARIANT-KEY.tar` (+ `.json`, `.log`,
/// `.lock`; `.tar.part` only while mmdebstrap writes).
#[derive(Debug, Clone)]
pub struct RootfsCache {
    dir: PathBuf,
    max_age: Duration,
    mode: Mode,
    timeout: Duration,
}

impl RootfsCache {
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3 * 24 * 3600);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RootfsCache {
            dir: dir.into(),
            max_age: Self::DEFAULT_MAX_AGE,
            mode: Mode::Auto,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
    /// Tarballs older than this are rebuilt.
    pub fn max_age(mut self, d: Duration) -> Self {
        self.max_age = d;
        self
    }
    pub fn mode(mut self, m: Mode) -> Self {
        self.mode = m;
        self
    }
    /// mmdebstrap's time limit per attempt.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the tarball for `spec` from `mirror` lives (built or not).
    pub fn tarball_path(&self, spec: &RootfsSpec, mirror: &Mirror, arch: &str) -> PathBuf {
        let key = cache_key(spec, &mirror.apt_lines(&spec.suite), arch);
        self.dir.join(format!("{}.tar", entry_name(spec, &key)))
    }

    /// The cached tarball for `spec`, building it first when missing or older than the
    /// maximum age. Concurrent callers for the same entry wait for one build.
    pub fn get(&self, spec: &RootfsSpec, mirror: &Mirror, sink: &dyn EventSink) -> Result<PathBuf> {
        let arch = spec.arch()?;
        let arch = arch.as_str();
        let lines = mirror.apt_lines(&spec.suite);
        let key = cache_key(spec, &lines, arch);
        let name = entry_name(spec, &key);
        std::fs::create_dir_all(&self.dir).map_err(io_err("create directory", &self.dir))?;
        let lock_path = self.dir.join(format!("{name}.lock"));
        let _lock = lock(&lock_path)?;
        let tar = self.dir.join(format!("{name}.tar"));
        if let Some(age) = age_of(&tar) {
            if age <= self.max_age {
                sink.info(format!(
                    "root filesystem {} {}: cached {}",
                    spec.suite,
                    spec.variant,
                    tar.display()
                ));
                return Ok(tar);
            }
            sink.info(format!(
                "root filesystem {} is {} h old (max {} h): rebuilding",
                tar.display(),
                age.as_secs() / 3600,
                self.max_age.as_secs() / 3600
            ));
        }
        let stage = sink.stage(
            Stage::Rootfs,
            format!("mmdebstrap {} {} ({arch})", spec.suite, spec.variant),
        );
        let part = self.dir.join(format!("{name}.tar.part"));
        let log = self.dir.join(format!("{name}.log"));
        let start = Instant::now();
        let mut ignore_valid_until = false;
        loop {
            remove_if_exists(&part)?;
            let cmd = Cmd::new("mmdebstrap")
                .args(mmdebstrap_args(
                    spec,
                    self.mode,
                    arch,
                    &lines,
                    &part,
                    ignore_valid_until,
                ))
                .timeout(self.timeout);
            let result = cmd
                .run_streaming(sink, &log, |_| LineAction::Continue)
                .and_then(|o| o.check(&cmd));
            match result {
                Ok(_) => break,
                Err(e) => {
                    let _ = std::fs::remove_file(&part);
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if !ignore_valid_until
                        && matches!(e, ProcessError::Failed { .. })
                        && log_shows_expired_release(&text)
                    {
                        sink.warn(format!(
                            "the {} archive's Release file is past its Valid-Until; retrying with {NO_VALID_UNTIL}",
                            spec.suite
                        ));
                        ignore_valid_until = true;
                        continue;
                    }
                    return Err(RootfsError::Build {
                        suite: spec.suite.clone(),
                        log,
                        source: Box::new(e),
                    });
                }
            }
        }
        std::fs::rename(&part, &tar).map_err(io_err("rename into place", &tar))?;
        let record = BuildRecord {
            suite: spec.suite.clone(),
            variant: spec.variant.clone(),
            include: spec.includes_normalized(),
            arch: arch.to_string(),
            apt_lines: lines,
            key,
            check_valid_until_disabled: ignore_valid_until,
            built_at_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            build_seconds: start.elapsed().as_secs_f64(),
        };
        let json = serde_json::to_vec_pretty(&record).expect("serializable");
        write_atomic(&self.dir.join(format!("{name}.json")), &json)?;
        stage.ok();
        Ok(tar)
    }
}

fn entry_name(spec: &RootfsSpec, key: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}-{}-{key}", clean(&spec.suite), clean(&spec.variant))
}

fn age_of(path: &Path) -> Option<Duration> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(SystemTime::now().duration_since(m).unwrap_or_default())
}

fn remove_if_exists(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove", p)(e)),
        _ => Ok(()),
    }
}

fn lock(path: &Path) -> Result<std::fs::File> {
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err("open lock", path))?;
    // flock(2) directly: released when the file closes or the process dies.
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; flock has no memory effects.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io_err("lock", path)(std::io::Error::last_os_error()));
    }
    Ok(f)
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(data).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("fsync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("rename into place", path))
}

// ---- an unpacked root filesystem ------------------------------------------------------------

/// A root filesystem unpacked into a folder.
#[derive(Debug, Clone)]
pub struct Rootfs {
    dir: PathBuf,
}

impl Rootfs {
    /// Extract `tarball` into `dir` (created; must be empty or absent) with numeric
    /// owners, permissions and device nodes intact (GNU tar as root).
    pub fn unpack(tarball: &Path, dir: &Path, sink: &dyn EventSink) -> Result<Rootfs> {
        std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        let mut entries = std::fs::read_dir(dir).map_err(io_err("read directory", dir))?;
        if entries.next().is_some() {
            return Err(RootfsError::Io {
                op: "unpack into",
                path: dir.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "directory is not empty",
                ),
            });
        }
        Cmd::new("tar")
            .args([
                "--extract",
                "--numeric-owner",
                "--preserve-permissions",
                "--file",
            ])
            .arg(tarball)
            .arg("--directory")
            .arg(dir)
            .timeout(Duration::from_secs(600))
            .run_checked(sink)?;
        Rootfs::open(dir)
    }

    /// An already unpacked root filesystem.
    pub fn open(dir: &Path) -> Result<Rootfs> {
        let dir = dir.canonicalize().map_err(io_err("resolve", dir))?;
        Ok(Rootfs { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host path of an absolute path inside (lexically checked: absolute, no `..`).
    pub fn host_path(&self, inside: &str) -> Result<PathBuf> {
        Ok(self.dir.join(inside_relative(inside)?))
    }

    /// Create directories inside, refusing to follow a symlink out of the root.
    pub fn create_dir_all(&self, inside: &str) -> Result<PathBuf> {
        let rel = inside_relative(inside)?;
        let mut p = self.dir.clone();
        for c in rel.components() {
            p.push(c);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(RootfsError::BadInsidePath {
                        path: inside.to_string(),
                        reason: "a component is a symlink",
                    })
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(RootfsError::BadInsidePath {
                        path: inside.to_string(),
                        reason: "a component is not a directory",
                    })
                }
                Err(_) => std::fs::create_dir(&p).map_err(io_err("create directory", &p))?,
            }
        }
        Ok(p)
    }

    /// Copy a host file to `inside` with `mode` (parents created).
    pub fn install_file(&self, host: &Path, inside: &str, mode: u32) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let rel = inside_relative(inside)?;
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.create_dir_all(&format!("/{}", parent.display()))?;
        }
        let dst = self.dir.join(rel);
        if std::fs::symlink_metadata(&dst).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(&dst).map_err(io_err("remove", &dst))?;
        }
        std::fs::copy(host, &dst).map_err(io_err("copy into the root filesystem", &dst))?;
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode))
            .map_err(io_err("chmod", &dst))?;
        Ok(dst)
    }
}

/// `/a/b` → `a/b`; refuses relative paths, `..` and the root itself.
fn inside_relative(inside: &str) -> Result<PathBuf> {
    let bad = |reason| RootfsError::BadInsidePath {
        path: inside.to_string(),
        reason,
    };
    let p = Path::new(inside);
    if !p.is_absolute() {
        return Err(bad("not absolute"));
    }
    let mut rel = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => rel.push(n),
            Component::ParentDir | Component::Prefix(_) => return Err(bad("contains `..`")),
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(bad("is the root itself"));
    }
    Ok(rel)
}

// ---- sessions ----------------------------------------------------------------------------------

/// A host folder shown at `inside` during a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub host: PathBuf,
    pub inside: String,
    pub read_only: bool,
}

impl Bind {
    pub fn new(host: impl Into<PathBuf>, inside: impl Into<String>) -> Self {
        Bind {
            host: host.into(),
            inside: inside.into(),
            read_only: false,
        }
    }
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
}

/// What one mount of a session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    Proc,
    Sysfs,
    Bind { host: PathBuf, read_only: bool },
}

/// One mount at an absolute path inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub inside: String,
    pub kind: MountKind,
}

/// The mounts of a session in mount order (parents before children; unmount in reverse):
/// a fresh proc and sysfs, the host's /dev, /dev/pts and /dev/shm (a non-recursive bind
/// of /dev would show them empty), then the extra binds.
pub fn mount_plan(binds: &[Bind]) -> Vec<MountSpec> {
    let bind = |host: &str| MountKind::Bind {
        host: PathBuf::from(host),
        read_only: false,
    };
    let mut v = vec![
        MountSpec {
            inside: "/proc".into(),
            kind: MountKind::Proc,
        },
        MountSpec {
            inside: "/sys".into(),
            kind: MountKind::Sysfs,
        },
        MountSpec {
            inside: "/dev".into(),
            kind: bind("/dev"),
        },
        MountSpec {
            inside: "/dev/pts".into(),
            kind: bind("/dev/pts"),
        },
        MountSpec {
            inside: "/dev/shm".into(),
            kind: bind("/dev/shm"),
        },
    ];
    let mut extra: Vec<&Bind> = binds.iter().collect();
    // Shorter paths first, so a bind inside another bind lands on top of it.
    extra.sort_by_key(|b| Path::new(&b.inside).components().count());
    v.extend(extra.into_iter().map(|b| MountSpec {
        inside: b.inside.clone(),
        kind: MountKind::Bind {
            host: b.host.clone(),
            read_only: b.read_only,
        },
    }));
    v
}

/// The `mount` commands for one mount at `target` (a read-only bind needs a remount).
pub fn mount_commands(spec: &MountSpec, target: &Path) -> Vec<Cmd> {
    match &spec.kind {
        MountKind::Proc => vec![Cmd::new("mount").args(["-t", "proc", "proc"]).arg(target)],
        MountKind::Sysfs => vec![Cmd::new("mount").args(["-t", "sysfs", "sysfs"]).arg(target)],
        MountKind::Bind { host, read_only } => {
            let mut v = vec![Cmd::new("mount").arg("--bind").arg(host).arg(target)];
            if *read_only {
                v.push(
                    Cmd::new("mount")
                        .args(["-o", "remount,bind,ro"])
                        .arg(target),
                );
            }
            v
        }
    }
}

/// Mount points at or below `root` in `/proc/self/mountinfo` text (field 5, octal escapes).
pub fn mounts_under(mountinfo: &str, root: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(root))
        .collect()
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let n = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a session is set up.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Extra host folders to show inside (created inside when missing).
    pub binds: Vec<Bind>,
    /// Delete the unpacked folder when the session ends (only if nothing is mounted below it).
    pub remove_on_drop: bool,
    /// TERM inside (default `dumb`).
    pub term: Option<String>,
}

/// The environment commands inside a session get, and nothing else.
pub fn session_env(term: Option<&str>) -> Vec<(String, String)> {
    vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), "/root".into()),
        ("TERM".into(), term.unwrap_or("dumb").into()),
        ("LANG".into(), "C.UTF-8".into()),
    ]
}

/// A root filesystem prepared for running commands; undone when dropped.
#[derive(Debug)]
pub struct Session {
    root: PathBuf,
    /// Host paths mounted so far, in mount order.
    mounted: Vec<PathBuf>,
    remove_on_drop: bool,
    env: Vec<(String, String)>,
    closed: bool,
}

/// Where Debian-family systems keep locally added CA certificates.
const LOCAL_CA_DIR: &str = "/usr/local/share/ca-certificates";

impl Session {
    /// Copy resolv.conf (and the host's locally added CA certificates) in and mount everything in [`mount_plan`]. A failure part-way
    /// undoes the mounts already made.
    pub fn enter(rootfs: &Rootfs, opts: SessionOptions, sink: &dyn EventSink) -> Result<Session> {
        if euid() != 0 {
            return Err(RootfsError::NotRoot {
                what: "a root filesystem session",
                uid: euid(),
            });
        }
        let mut s = Session {
            root: rootfs.dir().to_owned(),
            mounted: Vec::new(),
            remove_on_drop: opts.remove_on_drop,
            env: session_env(opts.term.as_deref()),
            closed: false,
        };
        let resolv = rootfs.host_path("/etc/resolv.conf")?;
        if std::fs::symlink_metadata(&resolv).is_ok() {
            std::fs::remove_file(&resolv).map_err(io_err("remove", &resolv))?;
        }
        if Path::new("/etc/resolv.conf").exists() {
            std::fs::copy("/etc/resolv.conf", &resolv)
                .map_err(io_err("copy resolv.conf to", &resolv))?;
        }
        // The site's network trust: CA certificates the host's administrator added
        // (a TLS-inspecting proxy, a company CA). Like resolv.conf they describe the
        // network, not the system: a fresh machine on this network would have them, and
        // `ca-certificates` (installed by doctor when needed) folds them into the bundle.
        let local_cas = Path::new(LOCAL_CA_DIR);
        if let Ok(rd) = std::fs::read_dir(local_cas) {
            let inside = rootfs.create_dir_all(LOCAL_CA_DIR)?;
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "crt") && p.is_file() {
                    let to = inside.join(e.file_name());
                    std::fs::copy(&p, &to).map_err(io_err("copy CA certificate to", &to))?;
                }
            }
        }
        for m in mount_plan(&opts.binds) {
            if let MountKind::Bind { host, .. } = &m.kind {
                if !host.is_dir() {
                    return Err(RootfsError::Io {
                        op: "bind-mount",
                        path: host.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "not a directory",
                        ),
                    });
                }
            }
            let target = rootfs.create_dir_all(&m.inside)?;
            for (i, cmd) in mount_commands(&m, &target).into_iter().enumerate() {
                // On error `s` drops here and unmounts what is already mounted.
                cmd.timeout(Duration::from_secs(60)).run_checked(sink)?;
                if i == 0 {
                    s.mounted.push(target.clone());
                }
            }
        }
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The environment commands inside get ([`session_env`]).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The command that runs `argv` inside: `env -i VARS... chroot ROOT ARGV...`
    /// (`env -i` because [`Cmd`] adds to the environment but cannot clear it).
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, argv: &[S]) -> Cmd {
        chroot_command(&self.root, &self.env, argv)
    }

    /// Run `argv` inside with output (stdout and stderr merged) streamed to `log` and
    /// `on_line`; after a timeout every process left inside is killed too.
    pub fn run<S: AsRef<std::ffi::OsStr>>(
        &self,
        argv: &[S],
        timeout: Duration,
        log: &Path,
        sink: &dyn EventSink,
        on_line: impl FnMut(&str) -> LineAction,
    ) -> Result<StreamOutput> {
        let r = self
            .command(argv)
            .timeout(timeout)
            .run_streaming(sink, log, on_line);
        if r.is_err() {
            kill_inside(&self.root);
        }
        Ok(r?)
    }

    /// End the session now, reporting what could not be undone.
    pub fn close(mut self) -> Result<()> {
        self.closed = true;
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        kill_inside(&self.root);
        for target in std::mem::take(&mut self.mounted).iter().rev() {
            let ok = Cmd::new("umount")
                .arg(target)
                .timeout(Duration::from_secs(60))
                .run(&NullSink)
                .is_ok_and(|o| o.success());
            if !ok {
                kill_inside(&self.root);
                let _ = Cmd::new("umount")
                    .arg("-l")
                    .arg(target)
                    .timeout(Duration::from_secs(60))
                    .run(&NullSink);
            }
        }
        let info = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(io_err("read", Path::new("/proc/self/mountinfo")))?;
        if let Some(m) = mounts_under(&info, &self.root).into_iter().next() {
            return Err(RootfsError::StillMounted {
                root: self.root.clone(),
                mount: m,
            });
        }
        if self.remove_on_drop {
            std::fs::remove_dir_all(&self.root).map_err(io_err("remove", &self.root))?;
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.closed {
            // Nothing to return the error to; the mountinfo check keeps the folder safe.
            let _ = self.teardown();
        }
    }
}

/// `env -i K=V... chroot ROOT ARGV...` (pure; unit-tested).
pub fn chroot_command<S: AsRef<std::ffi::OsStr>>(
    root: &Path,
    env: &[(String, String)],
    argv: &[S],
) -> Cmd {
    Cmd::new("env")
        .arg("-i")
        .args(env.iter().map(|(k, v)| format!("{k}={v}")))
        .arg("chroot")
        .arg(root)
        .args(argv)
}

/// SIGKILL every process whose root directory is `root`, until none is left (or 5 s).
fn kill_inside(root: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = pids_rooted_at(root);
        if pids.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in pids {
            // SAFETY: plain syscall on a pid we just read from /proc.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pids_rooted_at(root: &Path) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r == root))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror() -> Mirror {
        Mirror {
            archive: "http://m.example/debian".into(),
            security: Some("http://m.example/debian-security".into()),
        }
    }

    fn strs(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn cache_key_depends_on_every_input_but_not_include_order() {
        let m = mirror();
        let base = RootfsSpec::new("bookworm");
        let k = |s: &RootfsSpec, arch: &str| cache_key(s, &m.apt_lines(&s.suite), arch);
        let k0 = k(&base, "amd64");
        assert_eq!(k0.len(), 16);
        assert_eq!(k0, k(&RootfsSpec::new("bookworm"), "amd64"), "stable");
        assert_ne!(k0, k(&RootfsSpec::new("trixie"), "amd64"));
        assert_ne!(k0, k(&base.clone().variant("apt"), "amd64"));
        assert_ne!(k0, k(&base.clone().include(["gcc"]), "amd64"));
        assert_ne!(k0, k(&base, "arm64"));
        let other = Mirror {
            archive: "http://n.example/debian".into(),
            ..m.clone()
        };
        assert_ne!(k0, cache_key(&base, &other.apt_lines("bookworm"), "amd64"));
        assert_eq!(
            k(&base.clone().include(["b", "a", "a "]), "amd64"),
            k(&base.clone().include(["a", "b"]), "amd64"),
            "includes are a set"
        );
    }

    #[test]
    fn apt_lines_add_updates_and_security_for_releases_only() {
        let m = mirror();
        assert_eq!(
            m.apt_lines("bookworm"),
            [
                "deb http://m.example/debian bookworm main",
                "deb http://m.example/debian bookworm-updates main",
                "deb http://m.example/debian-security bookworm-security main",
            ]
        );
        assert_eq!(m.apt_lines("sid"), ["deb http://m.example/debian sid main"]);
        let no_sec = Mirror {
            security: None,
            ..m
        };
        assert_eq!(no_sec.apt_lines("trixie").len(), 2);
    }

    #[test]
    fn mirror_comes_from_the_first_apt_bases() {
        let b = DebianBases {
            archive: vec!["http://a/debian".into(), "http://b/debian".into()],
            security: vec![],
        };
        assert_eq!(
            Mirror::from_bases(&b).unwrap(),
            Mirror {
                archive: "http://a/debian".into(),
                security: None
            }
        );
        assert!(matches!(
            Mirror::from_bases(&DebianBases::default()),
            Err(RootfsError::NoMirror)
        ));
    }

    #[test]
    fn mmdebstrap_argv() {
        let m = mirror();
        let spec = RootfsSpec::new("bookworm").include(["zstd", "ca-certificates"]);
        let a = strs(&mmdebstrap_args(
            &spec,
            Mode::Root,
            "amd64",
            &m.apt_lines("bookworm"),
            Path::new("/c/x.tar.part"),
            false,
        ));
        assert_eq!(
            a,
            [
                "--variant=minbase",
                "--mode=root",
                "--format=tar",
                "--architectures=amd64",
                "--include=ca-certificates,zstd",
                "bookworm",
                "/c/x.tar.part",
                "deb http://m.example/debian bookworm main",
                "deb http://m.example/debian bookworm-updates main",
                "deb http://m.example/debian-security bookworm-security main",
            ]
        );
        let a = strs(&mmdebstrap_args(
            &RootfsSpec::new("sid"),
            Mode::Unshare,
            "arm64",
            &m.apt_lines("sid"),
            Path::new("o"),
            true,
        ));
        assert_eq!(
            a,
            [
                "--variant=minbase",
                "--mode=unshare",
                "--format=tar",
                "--architectures=arm64",
                "--aptopt=Acquire::Check-Valid-Until \"false\"",
                "sid",
                "o",
                "deb http://m.example/debian sid main",
            ]
        );
    }

    #[test]
    fn expired_release_is_detected_from_the_log() {
        let log = "I: running apt-get update...\nGet:1 http://m.example/debian sid InRelease [193 kB]\n\
                   E: Release file for http://m.example/debian/dists/sid/InRelease is expired (invalid since 25d 1h 59min 0s). Updates for this repository will not be applied.\n\
                   E: mmdebstrap failed to run\n";
        assert!(log_shows_expired_release(log));
        assert!(!log_shows_expired_release(
            "E: Unable to locate package nope\nE: mmdebstrap failed to run\n"
        ));
    }

    #[test]
    fn arch_names() {
        assert_eq!(debian_arch_of("x86_64").unwrap(), "amd64");
        assert_eq!(debian_arch_of("aarch64").unwrap(), "arm64");
        assert!(debian_arch_of("mips").is_err());
    }

    #[test]
    fn entry_names_are_file_safe() {
        let spec = RootfsSpec::new("../evil suite");
        assert_eq!(entry_name(&spec, "abc"), ".._evil_suite-minbase-abc");
        let c = RootfsCache::new("/cache");
        let p = c.tarball_path(&RootfsSpec::new("bookworm"), &mirror(), "amd64");
        assert!(
            p.starts_with("/cache") && p.to_string_lossy().ends_with(".tar"),
            "{}",
            p.display()
        );
        assert!(p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("bookworm-minbase-"));
    }

    #[test]
    fn mount_plan_orders_system_mounts_then_binds_parents_first() {
        let binds = [
            Bind::new("/h/ccache", "/root/.cache/labctl/ccache"),
            Bind::new("/h/home", "/root").read_only(),
        ];
        let plan = mount_plan(&binds);
        let insides: Vec<&str> = plan.iter().map(|m| m.inside.as_str()).collect();
        assert_eq!(
            insides,
            [
                "/proc",
                "/sys",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/root",
                "/root/.cache/labctl/ccache"
            ]
        );
        assert_eq!(plan[0].kind, MountKind::Proc);
        assert_eq!(
            plan[5].kind,
            MountKind::Bind {
                host: "/h/home".into(),
                read_only: true
            }
        );
        let cmds = mount_commands(&plan[5], Path::new("/r/root"));
        let lines: Vec<String> = cmds.iter().map(Cmd::reproducer).collect();
        assert_eq!(
            lines,
            [
                "mount --bind /h/home /r/root",
                "mount -o remount,bind,ro /r/root"
            ]
        );
        assert_eq!(
            mount_commands(&plan[0], Path::new("/r/proc"))[0].reproducer(),
            "mount -t proc proc /r/proc"
        );
        assert_eq!(
            mount_commands(&plan[2], Path::new("/r/dev"))[0].reproducer(),
            "mount --bind /dev /r/dev"
        );
    }

    #[test]
    fn chroot_command_clears_the_environment() {
        let env = session_env(None);
        let c = chroot_command(Path::new("/r"), &env, &["labctl", "vm", "test"]);
        assert_eq!(
            c.reproducer(),
            "env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8 chroot /r labctl vm test"
        );
    }

    #[test]
    fn mountinfo_lists_mounts_below_the_root_only() {
        let info = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:5 / /tmp/r/dev rw shared:2 - devtmpfs udev rw
31 30 0:6 / /tmp/r/dev/pts rw - devpts devpts rw
32 22 0:7 / /tmp/r2/proc rw - proc proc rw
33 22 8:1 /x /tmp/r/with\\040space rw - ext4 /dev/vda rw
";
        assert_eq!(
            mounts_under(info, Path::new("/tmp/r")),
            [
                PathBuf::from("/tmp/r/dev"),
                PathBuf::from("/tmp/r/dev/pts"),
                PathBuf::from("/tmp/r/with space")
            ]
        );
        assert!(mounts_under(info, Path::new("/nope")).is_empty());
    }

    #[test]
    fn inside_paths_are_checked() {
        assert_eq!(
            inside_relative("/usr/local/bin/labctl").unwrap(),
            PathBuf::from("usr/local/bin/labctl")
        );
        assert!(inside_relative("usr/bin").is_err());
        assert!(inside_relative("/root/../etc").is_err());
        assert!(inside_relative("/").is_err());
    }

    #[test]
    fn create_dir_all_refuses_symlinks_out_of_the_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("root")).unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("root/escape")).unwrap();
        let r = Rootfs::open(&d.path().join("root")).unwrap();
        assert!(matches!(
            r.create_dir_all("/escape/x"),
            Err(RootfsError::BadInsidePath { .. })
        ));
        let p = r.create_dir_all("/root/.cache/labctl/downloads").unwrap();
        assert!(p.is_dir() && p.starts_with(r.dir()));
        let bin = r
            .install_file(Path::new("/bin/sh"), "/usr/local/bin/x", 0o755)
            .unwrap();
        assert!(bin.is_file());
    }

    #[test]
    fn cached_tarball_is_reused_and_a_stale_one_is_not() {
        // The fresh entry short-circuits before mmdebstrap runs at all.
        let d = tempfile::tempdir().unwrap();
        let c = RootfsCache::new(d.path());
        let spec = RootfsSpec::new("bookworm");
        let tar = c.tarball_path(&spec, &mirror(), debian_arch().unwrap());
        std::fs::write(&tar, b"tar").unwrap();
        assert_eq!(c.get(&spec, &mirror(), &NullSink).unwrap(), tar);
        assert_eq!(
            age_of(&tar).map(|a| a < Duration::from_secs(60)),
            Some(true)
        );
        let stale = RootfsCache::new(d.path()).max_age(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(20));
        // Too old: a rebuild is attempted (with a mirror that cannot work) and fails
        // without touching the old tarball or leaving a .part behind.
        let bad = Mirror {
            archive: "http://127.0.0.1:9/debian".into(),
            security: None,
        };
        let tar_bad = stale.tarball_path(&spec, &bad, debian_arch().unwrap());
        std::fs::write(&tar_bad, b"old").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let r = stale
            .timeout(Duration::from_secs(60))
            .get(&spec, &bad, &NullSink);
        assert!(r.is_err(), "{r:?}");
        assert_eq!(std::fs::read(&tar_bad).unwrap(), b"old");
        assert!(!tar_bad.with_extension("tar.part").exists());
    }
}
