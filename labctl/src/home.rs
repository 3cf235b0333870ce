//! The labctl home (cache) directory and its layout, plus cross-process file locks.
//!
//! ```text
//! $LABCTL_HOME/                       (default: $XDG_CACHE_HOME/labctl, else ~/.cache/labctl)
//!   downloads/<sha256>.tar.xz         verified tarballs only (.part files while downloading)
//!   indexes/                          cached release indexes (Debian Sources, kernel.org sums)
//!   src/linux-<ver>-<sha8>/           extracted trees, renamed into place when complete
//!   configs/                          `kernel config` outputs
//!   builds/<ver>-<cfg8>-<tool8>/      build tree, artifacts/, build.json, build.log, reproduce.sh
//!   guests/<hash>.cpio.gz             initramfs images
//!   runs/<time>-<ver>/                console.log, results.json, junit.xml, per-test logs
//!   examples/<key>/, bcc-headers/     host-side builds of examples-bpf/, merged BCC headers
//!   toolchains/tarballs/, <name>/root `--toolchain debian:<suite>` tarballs and unpacked roots
//!   locks/                            flock files, one per [`CacheKey`]
//!   logs/commands.log                 every child command line, reproducible
//! ```
//! Invariant: a step writes into a temporary sibling and renames into place, so nothing
//! under these folders is ever a half-written output that a later run could trust.
//!
//! Locks are named by [`CacheKey`] only: the writer of an entry (fetch, kconfig, build,
//! guest images, runs, examples, toolchain roots) and `cache prune` take the same typed
//! key, so their lock names cannot disagree.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// One cache entry (or a family of them) as a lock: what a writer holds while it makes or
/// uses the entry, and what `cache prune` must take (without waiting) before deleting it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CacheKey {
    /// `downloads/<sha256>.tar.xz` (and its `.part`); or `url-<16 hex>` for a URL
    /// without a published checksum.
    Download(String),
    /// `indexes/`: the cached Debian and kernel.org indexes.
    Index,
    /// `src/linux-<version>-*`: the trees of one version.
    Tree(String),
    /// `configs/.work/<version>-<tree key>/`: one scratch `O=` folder of `kernel config`.
    ConfigWork(String),
    /// `configs/<version>-<hash8>/`: one stored `kernel config` output.
    Config(String),
    /// `builds/<key>/`: one build folder.
    Build(String),
    /// `guests/<hash16>.cpio.gz`: one guest image.
    Guest(String),
    /// `runs/<name>/`: one `vm test` / `vm run` folder, held while the run writes it.
    Run(String),
    /// `examples/` (except the BCC headers): the examples-bpf builds.
    Examples,
    /// `examples/bcc-headers/`.
    BccHeaders,
    /// `toolchains/<name>/`: an unpacked Debian root, held while it is mounted and used.
    Toolchain(String),
}

impl CacheKey {
    /// The lock file's name (without `.lock`).
    pub fn lock_name(&self) -> String {
        match self {
            CacheKey::Download(d) => format!("dl-{d}"),
            CacheKey::Index => "index".into(),
            CacheKey::Tree(v) => format!("src-{v}"),
            CacheKey::ConfigWork(w) => format!("config-work-{w}"),
            CacheKey::Config(c) => format!("config-{c}"),
            CacheKey::Build(b) => format!("build-{b}"),
            CacheKey::Guest(g) => format!("guest-{g}"),
            CacheKey::Run(r) => format!("run-{r}"),
            CacheKey::Examples => "examples".into(),
            CacheKey::BccHeaders => "bcc-headers".into(),
            CacheKey::Toolchain(t) => format!("toolchain-{t}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    /// `--home`/`LABCTL_HOME` if given, else the XDG cache dir.
    pub fn resolve(explicit: Option<PathBuf>) -> Result<Self> {
        if let Some(p) = explicit {
            return Ok(Home::new(p));
        }
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            return Ok(Home::new(PathBuf::from(x).join("labctl")));
        }
        match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => Ok(Home::new(PathBuf::from(h).join(".cache").join("labctl"))),
            None => Err(Error::Usage(
                "cannot find a home for labctl's cache: set LABCTL_HOME or pass --home DIR".into(),
            )),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    fn sub(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    pub fn downloads(&self) -> PathBuf {
        self.sub("downloads")
    }
    pub fn indexes(&self) -> PathBuf {
        self.sub("indexes")
    }
    pub fn src(&self) -> PathBuf {
        self.sub("src")
    }
    pub fn configs(&self) -> PathBuf {
        self.sub("configs")
    }
    pub fn builds(&self) -> PathBuf {
        self.sub("builds")
    }
    pub fn guests(&self) -> PathBuf {
        self.sub("guests")
    }
    pub fn runs(&self) -> PathBuf {
        self.sub("runs")
    }
    pub fn locks(&self) -> PathBuf {
        self.sub("locks")
    }
    pub fn logs(&self) -> PathBuf {
        self.sub("logs")
    }
    pub fn examples(&self) -> PathBuf {
        self.sub("examples")
    }
    pub fn toolchains(&self) -> PathBuf {
        self.sub("toolchains")
    }

    /// Create `dir` (and parents) and return it.
    pub fn ensure(&self, dir: PathBuf) -> Result<PathBuf> {
        std::fs::create_dir_all(&dir).ctx("create directory", &dir)?;
        Ok(dir)
    }

    /// Take the exclusive lock of `key` (blocking). Held until the guard drops.
    /// Used so two concurrent labctl processes never write the same cache entry.
    pub fn lock(&self, key: &CacheKey) -> Result<LockGuard> {
        let dir = self.ensure(self.locks())?;
        let path = dir.join(format!("{}.lock", sanitize(&key.lock_name())));
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx("open lock", &path)?;
        f.lock().ctx("lock", &path)?;
        Ok(LockGuard { _file: f, path })
    }

    /// A lock that guards no cache entry (shared test fixtures, tools): `name` must not
    /// look like a [`CacheKey`]'s lock name, which only [`Home::lock`] takes.
    pub fn lock_other(&self, name: &str) -> Result<LockGuard> {
        let dir = self.ensure(self.locks())?;
        let path = dir.join(format!("other-{}.lock", sanitize(name)));
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx("open lock", &path)?;
        f.lock().ctx("lock", &path)?;
        Ok(LockGuard { _file: f, path })
    }

    /// Like [`Home::lock`] but never waits: `Ok(None)` when another holder has it
    /// (cache pruning skips entries that are in use).
    pub fn try_lock(&self, key: &CacheKey) -> Result<Option<LockGuard>> {
        let dir = self.ensure(self.locks())?;
        let path = dir.join(format!("{}.lock", sanitize(&key.lock_name())));
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx("open lock", &path)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(LockGuard { _file: f, path })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
        }
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An held flock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
    pub path: PathBuf,
}

/// Write `data` to `path` atomically: temp file in the same dir, fsync, rename. The temp
/// file is created new (`O_EXCL`, which never follows a symlink) and the rename replaces
/// whatever `path` is (a symlink included) instead of writing through it.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).ctx("create directory", dir)?;
    // pid + a per-process counter: two threads writing the same path never share a temp file.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let create = || File::options().write(true).create_new(true).open(&tmp);
    let mut f = match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // A leftover (or planted) name: remove it, never open it.
            std::fs::remove_file(&tmp).ctx("remove stale", &tmp)?;
            create().ctx("create", &tmp)?
        }
        r => r.ctx("create", &tmp)?,
    };
    f.write_all(data).ctx("write", &tmp)?;
    f.sync_all().ctx("fsync", &tmp)?;
    std::fs::rename(&tmp, path).ctx("rename into place", path)?;
    Ok(())
}

/// Total size in bytes of a file or directory tree (symlinks not followed).
pub fn disk_usage(path: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    walk(path)
}

/// Free bytes available to us on the filesystem holding `path` (nearest existing ancestor).
pub fn free_space(path: &Path) -> Result<u64> {
    let mut p = path.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            break;
        }
    }
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Usage("path contains NUL".into()))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid C string and st a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(Error::io("statvfs", p, std::io::Error::last_os_error()));
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// "1.2 GiB" style sizes for reports.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_under_root() {
        let h = Home::new("/x");
        assert_eq!(h.downloads(), Path::new("/x/downloads"));
        assert_eq!(h.builds(), Path::new("/x/builds"));
    }

    #[test]
    fn atomic_write_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b.json");
        write_atomic(&p, b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn lock_excludes_a_second_holder() {
        let d = tempfile::tempdir().unwrap();
        let h = Home::new(d.path());
        let g = h.lock(&CacheKey::Tree("5.10".into())).unwrap();
        let f = File::options().write(true).open(&g.path).unwrap();
        assert!(
            f.try_lock().is_err(),
            "second lock must fail while the first is held"
        );
        drop(g);
        assert!(f.try_lock().is_ok());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
