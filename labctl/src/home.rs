//! The labctl home (cache) directory and its layout, plus cross-process file locks.
//!
//! ```text
//! $LABCTL_HOME/                       (default: $XDG_CACHE_HOME/labctl, else ~/.cache/labctl)
//!   downloads/<sha256>.tar.xz         verified tarballs only (.part files while downloading)
//!   indexes/                          cached release indexes (Debian Sources, kernel.org sums)
//!   src/linux-<ver>-<sha8>/           extracted trees, renamed into place when complete
//!   configs/                          `kernel config` outputs
//!   builds/<ver>-<cfg8>-<tool8>/      build tree, artifacts/, build.json, build.log, reproduce.sh
//!   guests/<hash>.cpio                initramfs images
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
//!
//! Everything here fails with [`HomeError`]; engines wrap it in their own error enums
//! (`#[from]`), never as text.

use std::fs::File;
use std::path::{Path, PathBuf};

/// What the cache layout, its locks and its file helpers fail with.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// A filesystem call on `path` failed (creating a folder, opening or taking a lock,
    /// writing a file atomically, statvfs).
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Neither `--home`, `LABCTL_HOME`, `XDG_CACHE_HOME` nor `HOME` says where the cache is.
    #[error("cannot find a home for labctl's cache: set LABCTL_HOME or pass --home DIR")]
    NoHome,
    /// Ctrl-C (or SIGTERM) arrived while waiting for another labctl's lock.
    #[error("interrupted")]
    Interrupted,
    /// A path given where a regular file is expected names something else.
    #[error("{what} {} is {kind}: give a regular file", path.display())]
    NotARegularFile {
        what: String,
        path: PathBuf,
        kind: &'static str,
    },
    /// A file larger than its reader accepts.
    #[error("{what} {} is {}, more than the {} accepted", path.display(), human_bytes(*size), human_bytes(*max))]
    TooLarge {
        what: String,
        path: PathBuf,
        size: u64,
        max: u64,
    },
    /// A path that cannot be handed to the C library.
    #[error("path contains NUL: {}", path.display())]
    NulInPath { path: PathBuf },
}

impl HomeError {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HomeError::Io {
            op,
            path: path.into(),
            source,
        }
    }
    /// True for Ctrl-C (the CLI maps it to exit code 130).
    pub fn is_interrupted(&self) -> bool {
        matches!(self, HomeError::Interrupted)
    }
}

pub type Result<T, E = HomeError> = std::result::Result<T, E>;

/// Maps an `io::Result` into a [`HomeError::Io`] that names the operation and the path.
trait Ctx<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> Ctx<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| HomeError::io(op, path, e))
    }
}

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
    /// `guests/<hash16>.cpio`: one guest image.
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
            None => Err(HomeError::NoHome),
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

    /// Take the exclusive lock of `key`, waiting for another holder. Held until the guard
    /// drops. Used so two concurrent labctl processes never write the same cache entry.
    /// The wait polls (every 50 ms) so Ctrl-C ends it at once with [`HomeError::Interrupted`].
    pub fn lock(&self, key: &CacheKey) -> Result<LockGuard> {
        wait_lock(self.lock_path(&sanitize(&key.lock_name()))?)
    }

    /// A lock that guards no cache entry (shared test fixtures, tools): `name` must not
    /// look like a [`CacheKey`]'s lock name, which only [`Home::lock`] takes. Waits like
    /// [`Home::lock`], interruptible.
    pub fn lock_other(&self, name: &str) -> Result<LockGuard> {
        wait_lock(self.lock_path(&format!("other-{}", sanitize(name)))?)
    }

    /// Like [`Home::lock`] but never waits: `Ok(None)` when another holder has it
    /// (cache pruning skips entries that are in use).
    pub fn try_lock(&self, key: &CacheKey) -> Result<Option<LockGuard>> {
        let path = self.lock_path(&sanitize(&key.lock_name()))?;
        let f = open_lock_file(&path)?;
        Ok(flock_now(&f, &path)?.then_some(LockGuard { _file: f, path }))
    }

    /// `locks/<name>.lock` (the folder created).
    fn lock_path(&self, name: &str) -> Result<PathBuf> {
        Ok(self.ensure(self.locks())?.join(format!("{name}.lock")))
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ctx("open lock", path)
}

/// Take the flock on `f` now: false when another process holds it.
fn flock_now(f: &File, path: &Path) -> Result<bool> {
    match f.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(HomeError::io("lock", path, e)),
    }
}

/// Wait for the flock on `path`, polling every 50 ms so Ctrl-C ends the wait at once.
fn wait_lock(path: PathBuf) -> Result<LockGuard> {
    let f = open_lock_file(&path)?;
    loop {
        if crate::process::interrupted() {
            return Err(HomeError::Interrupted);
        }
        if flock_now(&f, &path)? {
            return Ok(LockGuard { _file: f, path });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
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
    write_atomic_with(path, |f| f.write_all(data))
}

/// [`write_atomic`] with `fill` writing the temporary file, for contents streamed from
/// elsewhere (a copy of another file) rather than held in memory.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
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
    fill(&mut f).ctx("write", &tmp)?;
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
        .map_err(|_| HomeError::NulInPath { path: p.clone() })?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid C string and st a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(HomeError::io("statvfs", p, std::io::Error::last_os_error()));
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// True when a process with this pid exists (ours included). `EPERM` means it exists
/// under another user.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence; no memory is touched.
    let rc = unsafe { libc::kill(p, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The pid in a temporary name labctl writes: `.<name>.tmp-<pid>` or
/// `.<name>.tmp-<pid>-<n>` (hidden, so listings skip them).
pub fn temp_owner(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, tail) = name.rsplit_once(".tmp-")?;
    let pid = tail.split('-').next()?;
    let rest: Vec<&str> = tail.split('-').skip(1).collect();
    if rest.len() > 1
        || rest
            .iter()
            .any(|r| r.is_empty() || !r.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    pid.parse().ok()
}

/// Remove the temporary files and folders in `dir` left by labctl runs that died (their
/// pid no longer exists); a live run's are left alone. Returns what was removed.
/// (A home shared across machines or pid namespaces cannot tell; those are kept when
/// the pid happens to be in use here.)
pub fn clean_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_owner(&name) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        let p = e.path();
        let removed = match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p).is_ok(),
            Ok(_) => std::fs::remove_file(&p).is_ok(),
            Err(_) => false,
        };
        if removed {
            out.push(p);
        }
    }
    out
}

/// Check that `path` is a regular file (after symlinks) of at most `max` bytes, and
/// return its size: a FIFO, a device or a directory given where a file is expected
/// would hang a reader or be read without end.
pub fn regular_file(path: &Path, what: &str, max: u64) -> Result<u64> {
    let m = std::fs::metadata(path).ctx("read", path)?;
    if !m.is_file() {
        let kind = {
            use std::os::unix::fs::FileTypeExt;
            let t = m.file_type();
            if t.is_dir() {
                "a directory"
            } else if t.is_fifo() {
                "a FIFO"
            } else if t.is_char_device() || t.is_block_device() {
                "a device"
            } else if t.is_socket() {
                "a socket"
            } else {
                "not a regular file"
            }
        };
        return Err(HomeError::NotARegularFile {
            what: what.to_string(),
            path: path.to_path_buf(),
            kind,
        });
    }
    if m.len() > max {
        return Err(HomeError::TooLarge {
            what: what.to_string(),
            path: path.to_path_buf(),
            size: m.len(),
            max,
        });
    }
    Ok(m.len())
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
    fn temp_names_and_dead_owners() {
        assert_eq!(temp_owner(".linux-5.10.46-abcd1234.tmp-4242"), Some(4242));
        assert_eq!(temp_owner(".x.json.tmp-17-3"), Some(17));
        assert_eq!(temp_owner("linux-5.10.46.tmp-17"), None);
        assert_eq!(temp_owner(".x.tmp-a"), None);
        assert_eq!(temp_owner(".x.tmp-1-2-3"), None);
        let d = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22: this pid cannot exist.
        let dead = d.path().join(".linux-5.10.46-abcd1234.tmp-4999999");
        std::fs::create_dir_all(dead.join("sub")).unwrap();
        let live = d
            .path()
            .join(format!(".b.json.tmp-{}-0", std::process::id()));
        std::fs::write(&live, b"x").unwrap();
        let kept = d.path().join("linux-5.10.46-abcd1234");
        std::fs::create_dir(&kept).unwrap();
        assert_eq!(clean_stale_temps(d.path()), vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && kept.exists());
    }

    #[test]
    fn only_regular_files_are_read() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("frag.config");
        std::fs::write(&f, b"CONFIG_BPF=y\n").unwrap();
        assert_eq!(regular_file(&f, "--fragment", 100).unwrap(), 13);
        let e = regular_file(&f, "--fragment", 5).unwrap_err().to_string();
        assert!(e.contains("more than"), "{e}");
        let e = regular_file(Path::new("/dev/null"), "--fragment", 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a device"), "{e}");
        let e = regular_file(d.path(), "--fragment", 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
