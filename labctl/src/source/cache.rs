//! Listing and pruning every kind of entry under the labctl home: downloads, indexes,
//! src, configs, builds, guests, runs, examples, toolchains. Each top-level item of those
//! folders is one entry, with its size and age (`configs/.work/` counts each scratch
//! folder inside it as one entry, `toolchains/` each unpacked root).
//!
//! Pruning never deletes something another labctl is using: before deleting an entry
//! it takes that entry's lock without waiting, by the same [`CacheKey`] its writer holds
//! ([`entry_key`]), and skips the entry when the lock is held; a dry run lists such an
//! entry as in use, not as removable. An entry with a mount point at or below it (a
//! toolchain root in use) is never deleted either. A kind folder that is a symlink is not
//! followed: it is reported and left alone. One failed delete does not stop the others:
//! each failure is reported and the caller exits 2 at the end.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::events::{EventSink, SinkExt};
use crate::home::{CacheKey, Home};
use crate::source::SourceError;

/// The kinds of cache entries, in display order.
pub const KINDS: [&str; 9] = [
    "downloads",
    "indexes",
    "src",
    "configs",
    "builds",
    "guests",
    "runs",
    "examples",
    "toolchains",
];

#[derive(Debug, Clone, serde::Serialize)]
pub struct CacheEntry {
    pub kind: String,
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    /// Seconds since the entry was last modified.
    pub age_secs: u64,
    /// A `.part` download or a `.tmp-` extraction left by an interrupted run.
    pub partial: bool,
}

fn kind_dir(home: &Home, kind: &str) -> Option<PathBuf> {
    Some(match kind {
        "downloads" => home.downloads(),
        "indexes" => home.indexes(),
        "src" => home.src(),
        "configs" => home.configs(),
        "builds" => home.builds(),
        "guests" => home.guests(),
        "runs" => home.runs(),
        "examples" => home.examples(),
        "toolchains" => home.toolchains(),
        _ => return None,
    })
}

/// Check a `--kind` value.
pub fn parse_kind(k: &str) -> Result<String, String> {
    if KINDS.contains(&k) {
        Ok(k.to_string())
    } else {
        Err(format!(
            "unknown cache kind {k:?}: one of {}",
            KINDS.join(", ")
        ))
    }
}

/// The key an entry's writer locks (see the module doc); None for files no writer
/// locks (`guests/accel.json`, written atomically).
pub fn entry_key(kind: &str, name: &str) -> Option<CacheKey> {
    // A leftover temp of an atomic write: `.<name>.tmp-<pid>-<n>`.
    let base = name.trim_start_matches('.');
    let base = base.split(".tmp-").next().unwrap_or(base);
    Some(match kind {
        "src" => {
            // linux-<ver>-<sha8> (or a leftover .linux-<ver>-<sha8>.tmp-<pid>)
            let n = base.strip_prefix("linux-").unwrap_or(base);
            CacheKey::Tree(n.split('-').next().unwrap_or(n).to_string())
        }
        "downloads" => CacheKey::Download(base.split('.').next().unwrap_or(base).to_string()),
        "indexes" => CacheKey::Index,
        "configs" => match name.strip_prefix(".work/") {
            Some(w) => CacheKey::ConfigWork(w.to_string()),
            None => CacheKey::Config(base.to_string()),
        },
        "builds" => CacheKey::Build(base.to_string()),
        // `.cpio.gz`: the gzip images of labctl before 2026-12-02.
        "guests" => match base
            .strip_suffix(".cpio")
            .or_else(|| base.strip_suffix(".cpio.gz"))
        {
            Some(h) => CacheKey::Guest(h.to_string()),
            None => return None,
        },
        "runs" => CacheKey::Run(base.to_string()),
        "examples" if base == "bcc-headers" => CacheKey::BccHeaders,
        "examples" => CacheKey::Examples,
        "toolchains" => CacheKey::Toolchain(base.to_string()),
        _ => return None,
    })
}

/// The kind's folder when it is a real directory; `Err` says why it is not used (a
/// symlink is never followed).
fn real_dir(dir: &Path) -> Result<bool, String> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "{} is a symlink; labctl does not follow it (remove the link, or point --home at the real folder)",
            dir.display()
        )),
        Ok(m) if m.is_dir() => Ok(true),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(_) => Ok(false),
    }
}

fn entry(kind: &str, name: String, path: PathBuf, now: SystemTime) -> CacheEntry {
    let age = std::fs::symlink_metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| now.duration_since(t).ok())
        .unwrap_or_default();
    CacheEntry {
        kind: kind.to_string(),
        partial: name.ends_with(".part") || name.contains(".tmp-"),
        size: crate::home::disk_usage(&path),
        age_secs: age.as_secs(),
        name,
        path,
    }
}

/// Every entry of the given kinds (all kinds when empty), sorted by kind then name, and
/// one line per kind folder that was not read (a symlink, not a directory).
pub fn list_checked(home: &Home, kinds: &[String]) -> (Vec<CacheEntry>, Vec<String>) {
    let now = SystemTime::now();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for kind in KINDS {
        if !kinds.is_empty() && !kinds.iter().any(|k| k == kind) {
            continue;
        }
        let Some(dir) = kind_dir(home, kind) else {
            continue;
        };
        match real_dir(&dir) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(p) => {
                problems.push(p);
                continue;
            }
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if kind == "configs" && name == ".work" && is_dir {
                for w in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                    let wn = format!(".work/{}", w.file_name().to_string_lossy());
                    entries.push(entry(kind, wn, w.path(), now));
                }
                continue;
            }
            // toolchains/tarballs/ is the root filesystem cache (its own locks and ages).
            if kind == "toolchains" && name == "tarballs" {
                continue;
            }
            entries.push(entry(kind, name, path, now));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(entries);
    }
    (out, problems)
}

/// [`list_checked`] without the problems.
pub fn list(home: &Home, kinds: &[String]) -> Vec<CacheEntry> {
    list_checked(home, kinds).0
}

/// What to prune.
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    pub all: bool,
    pub kinds: Vec<String>,
    pub older_than: Option<Duration>,
}

/// `--older-than DAYS` as a duration; Err (a usage message) when it does not fit.
pub fn older_than_days(days: u64) -> Result<Duration, SourceError> {
    days.checked_mul(86_400)
        .filter(|s| *s <= i64::MAX as u64)
        .map(Duration::from_secs)
        .ok_or_else(|| {
            SourceError::Usage(format!(
                "--older-than {days}: too many days (at most {})",
                i64::MAX as u64 / 86_400
            ))
        })
}

/// One entry (or kind folder) that could not be pruned.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PruneFailure {
    pub path: PathBuf,
    pub error: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    pub removed: Vec<CacheEntry>,
    /// Entries whose lock was held by another labctl, or with a mount below them (left alone).
    pub busy: Vec<CacheEntry>,
    /// Deletes that failed and kind folders not followed; prune went on with the rest.
    pub failed: Vec<PruneFailure>,
    pub freed: u64,
    pub dry_run: bool,
}

/// Mount points (from `/proc/self/mountinfo`, octal escapes decoded).
fn mount_points() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    parse_mount_points(&text)
}

/// The mount points (field 5, octal escapes like `\040` decoded) of mountinfo text.
fn parse_mount_points(text: &str) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| {
            let b = m.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'\\' && b.len() >= i + 4 {
                    let oct = std::str::from_utf8(&b[i + 1..i + 4]).ok();
                    if let Some(v) = oct.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                }
                out.push(b[i]);
                i += 1;
            }
            PathBuf::from(std::ffi::OsString::from_vec(out))
        })
        .collect()
}

/// Is something mounted at `path` or below it?
fn has_mount_below(path: &Path, mounts: &[PathBuf]) -> bool {
    let Ok(real) = path.canonicalize() else {
        return false;
    };
    mounts.iter().any(|m| m.starts_with(&real))
}

/// Delete the selected entries, each under its own lock (taken without waiting).
pub fn prune(
    home: &Home,
    f: &PruneFilter,
    dry_run: bool,
    sink: &dyn EventSink,
) -> Result<PruneReport, SourceError> {
    if !f.all && f.kinds.is_empty() && f.older_than.is_none() {
        return Err(SourceError::Usage(format!(
            "say what to prune: --all, --kind KIND ({}) and/or --older-than DAYS",
            KINDS.join(", ")
        )));
    }
    let mut report = PruneReport {
        dry_run,
        ..Default::default()
    };
    let (entries, problems) = list_checked(home, &f.kinds);
    for p in problems {
        sink.warn(p.clone());
        report.failed.push(PruneFailure {
            path: home.root().to_owned(),
            error: p,
        });
    }
    let mounts = mount_points();
    for e in entries {
        if f.older_than.is_some_and(|d| e.age_secs < d.as_secs()) {
            continue;
        }
        let guard = match entry_key(&e.kind, &e.name) {
            None => None,
            Some(key) => match home.try_lock(&key)? {
                Some(g) => Some(g),
                None => {
                    sink.warn(format!(
                        "{} is in use by another labctl; kept",
                        e.path.display()
                    ));
                    report.busy.push(e);
                    continue;
                }
            },
        };
        if has_mount_below(&e.path, &mounts) {
            sink.warn(format!(
                "{} has a filesystem mounted at or below it (a toolchain root in use?); kept",
                e.path.display()
            ));
            report.busy.push(e);
            continue;
        }
        if !dry_run {
            if let Err(err) = remove(&e.path) {
                sink.warn(format!("cannot remove {}: {err}", e.path.display()));
                report.failed.push(PruneFailure {
                    path: e.path.clone(),
                    error: err.to_string(),
                });
                continue;
            }
        }
        drop(guard);
        report.freed += e.size;
        report.removed.push(e);
    }
    Ok(report)
}

/// Remove a file, a symlink (the link itself) or a directory tree (std's removal does
/// not follow symlinks inside it).
fn remove(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::NullSink;

    fn populate(home: &Home) {
        for (dir, name, size) in [
            (home.downloads(), "aa11.tar.xz", 1000usize),
            (home.downloads(), "bb22.tar.xz.part", 10),
            (home.indexes(), "debian-x.json", 5),
            (home.runs(), "20250101-5.10", 7),
        ] {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), vec![0u8; size]).unwrap();
        }
        let t = home.src().join("linux-5.10.46-abcdef12");
        std::fs::create_dir_all(t.join("kernel")).unwrap();
        std::fs::write(t.join("kernel/a.c"), vec![1u8; 300]).unwrap();
    }

    #[test]
    fn lists_every_kind_with_sizes() {
        let d = tempfile::tempdir().unwrap();
        let home = Home::new(d.path());
        populate(&home);
        let l = list(&home, &[]);
        let names: Vec<(&str, &str, u64)> = l
            .iter()
            .map(|e| (e.kind.as_str(), e.name.as_str(), e.size))
            .collect();
        assert_eq!(names[0], ("downloads", "aa11.tar.xz", 1000));
        assert!(l.iter().any(|e| e.name == "bb22.tar.xz.part" && e.partial));
        assert!(l.iter().any(|e| e.kind == "src" && e.size == 300));
        assert!(l.iter().any(|e| e.kind == "runs"));
        assert_eq!(list(&home, &["indexes".into()]).len(), 1);
    }

    #[test]
    fn entry_keys_are_the_writers_keys() {
        let k = |kind, name| entry_key(kind, name).unwrap();
        assert_eq!(
            k("src", "linux-5.10.46-abcdef12"),
            CacheKey::Tree("5.10.46".into())
        );
        assert_eq!(
            k("src", ".linux-5.10.46-abcdef12.tmp-77"),
            CacheKey::Tree("5.10.46".into())
        );
        assert_eq!(
            k("downloads", "abc.tar.xz.part"),
            CacheKey::Download("abc".into())
        );
        assert_eq!(
            k("downloads", "url-0123456789abcdef.part"),
            CacheKey::Download("url-0123456789abcdef".into())
        );
        assert_eq!(
            k("builds", "5.10.46-x-y"),
            CacheKey::Build("5.10.46-x-y".into())
        );
        assert_eq!(
            k("guests", "0123456789abcdef.cpio.gz"),
            CacheKey::Guest("0123456789abcdef".into())
        );
        assert_eq!(
            k("guests", "0123456789abcdef.cpio"),
            CacheKey::Guest("0123456789abcdef".into())
        );
        assert_eq!(
            k("guests", ".0123456789abcdef.cpio.tmp-5-0"),
            CacheKey::Guest("0123456789abcdef".into())
        );
        assert_eq!(entry_key("guests", "accel.json"), None);
        assert_eq!(
            k("configs", ".work/5.10.46-aabbccdd"),
            CacheKey::ConfigWork("5.10.46-aabbccdd".into())
        );
        assert_eq!(k("examples", "bcc-headers"), CacheKey::BccHeaders);
        assert_eq!(
            k("toolchains", "bookworm-1a2b"),
            CacheKey::Toolchain("bookworm-1a2b".into())
        );
    }

    #[test]
    fn older_than_overflow_is_an_error() {
        assert_eq!(older_than_days(2).unwrap(), Duration::from_secs(172_800));
        assert!(older_than_days(u64::MAX).is_err());
        assert!(older_than_days(u64::MAX / 86_400).is_err());
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        let m = vec![PathBuf::from("/")];
        assert!(!has_mount_below(Path::new("/tmp"), &[]));
        assert!(!has_mount_below(Path::new("/nonexistent-labctl"), &m));
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    40 22 0:5 / /mnt/a\\040b rw - tmpfs tmpfs rw\n";
        assert_eq!(
            parse_mount_points(text),
            [PathBuf::from("/"), PathBuf::from("/mnt/a b")]
        );
        // This process's own table: /proc is mounted (in a chroot too, where the root
        // itself need not be a mount point).
        assert!(mount_points().iter().any(|p| p == Path::new("/proc")));
    }

    #[test]
    fn prune_needs_a_selector_and_respects_locks_and_dry_run() {
        let d = tempfile::tempdir().unwrap();
        let home = Home::new(d.path());
        populate(&home);
        assert!(prune(&home, &PruneFilter::default(), false, &NullSink).is_err());
        let r = prune(
            &home,
            &PruneFilter {
                all: true,
                ..Default::default()
            },
            true,
            &NullSink,
        )
        .unwrap();
        assert_eq!(r.removed.len(), 5);
        assert!(
            home.src().join("linux-5.10.46-abcdef12").exists(),
            "dry run deletes nothing"
        );
        let held = home.lock(&CacheKey::Tree("5.10.46".into())).unwrap();
        let r = prune(
            &home,
            &PruneFilter {
                all: true,
                ..Default::default()
            },
            false,
            &NullSink,
        )
        .unwrap();
        assert_eq!(r.busy.len(), 1);
        assert!(
            home.src().join("linux-5.10.46-abcdef12").exists(),
            "a locked tree survives"
        );
        assert!(!home.downloads().join("aa11.tar.xz").exists());
        assert_eq!(r.freed, 1000 + 10 + 5 + 7);
        drop(held);
        let r = prune(
            &home,
            &PruneFilter {
                kinds: vec!["src".into()],
                ..Default::default()
            },
            false,
            &NullSink,
        )
        .unwrap();
        assert_eq!(r.removed.len(), 1);
        assert!(!home.src().join("linux-5.10.46-abcdef12").exists());
    }

    #[test]
    fn older_than_keeps_fresh_entries() {
        let d = tempfile::tempdir().unwrap();
        let home = Home::new(d.path());
        populate(&home);
        let r = prune(
            &home,
            &PruneFilter {
                older_than: Some(Duration::from_secs(86400)),
                ..Default::default()
            },
            false,
            &NullSink,
        )
        .unwrap();
        assert!(r.removed.is_empty());
        assert_eq!(list(&home, &[]).len(), 5);
    }
}
