//! Listing and pruning every kind of entry under the labctl home: downloads, indexes,
//! src, configs, builds, guests, runs. Each top-level item of those folders is one entry,
//! with its size and age.
//!
//! Pruning never deletes something another labctl is using: before deleting an entry
//! it takes that entry's lock without waiting ([`lock_name`]), and skips the entry when
//! the lock is held. Lock names: `src-<version>` for trees, `dl-<sha256>` for downloads,
//! `index` for indexes, `<kind>-<entry name>` for everything else.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::events::{EventSink, SinkExt};
use crate::home::Home;

/// The kinds of cache entries, in display order.
pub const KINDS: [&str; 7] = [
    "downloads",
    "indexes",
    "src",
    "configs",
    "builds",
    "guests",
    "runs",
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

/// The lock an entry is protected by (see the module doc).
pub fn lock_name(kind: &str, name: &str) -> String {
    match kind {
        "src" => {
            // linux-<ver>-<sha8> (or a leftover .linux-<ver>-<sha8>.tmp-<pid>)
            let n = name.trim_start_matches('.');
            let n = n.strip_prefix("linux-").unwrap_or(n);
            let ver = n.split('-').next().unwrap_or(n);
            format!("src-{ver}")
        }
        "downloads" => {
            let sha = name.split('.').next().unwrap_or(name);
            if let Some(u) = sha.strip_prefix("url-") {
                format!("dl-url-{u}")
            } else {
                format!("dl-{sha}")
            }
        }
        "indexes" => "index".to_string(),
        k => format!("{k}-{name}"),
    }
}

/// Every entry of the given kinds (all kinds when empty), sorted by kind then name.
pub fn list(home: &Home, kinds: &[String]) -> Vec<CacheEntry> {
    let now = SystemTime::now();
    let mut out = Vec::new();
    for kind in KINDS {
        if !kinds.is_empty() && !kinds.iter().any(|k| k == kind) {
            continue;
        }
        let Some(dir) = kind_dir(home, kind) else {
            continue;
        };
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<CacheEntry> = rd
            .flatten()
            .map(|e| {
                let path = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                let age = e
                    .metadata()
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
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(entries);
    }
    out
}

/// What to prune.
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    pub all: bool,
    pub kinds: Vec<String>,
    pub older_than: Option<Duration>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    pub removed: Vec<CacheEntry>,
    /// Entries whose lock was held by another labctl (left alone).
    pub busy: Vec<CacheEntry>,
    pub freed: u64,
    pub dry_run: bool,
}

/// Delete the selected entries, each under its own lock (taken without waiting).
pub fn prune(
    home: &Home,
    f: &PruneFilter,
    dry_run: bool,
    sink: &dyn EventSink,
) -> Result<PruneReport, crate::error::Error> {
    if !f.all && f.kinds.is_empty() && f.older_than.is_none() {
        return Err(crate::error::Error::Usage(
            "say what to prune: --all, --kind KIND (downloads, indexes, src, configs, builds, guests, runs) and/or --older-than DAYS".into(),
        ));
    }
    let mut report = PruneReport {
        dry_run,
        ..Default::default()
    };
    for e in list(home, &f.kinds) {
        if f.older_than.is_some_and(|d| e.age_secs < d.as_secs()) {
            continue;
        }
        let Some(guard) = home.try_lock(&lock_name(&e.kind, &e.name))? else {
            sink.warn(format!(
                "{} is in use by another labctl; skipped",
                e.path.display()
            ));
            report.busy.push(e);
            continue;
        };
        if !dry_run {
            remove(&e.path).map_err(|err| crate::error::Error::io("remove", &e.path, err))?;
        }
        drop(guard);
        report.freed += e.size;
        report.removed.push(e);
    }
    Ok(report)
}

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
    fn lock_names() {
        assert_eq!(lock_name("src", "linux-5.10.46-abcdef12"), "src-5.10.46");
        assert_eq!(
            lock_name("src", ".linux-5.10.46-abcdef12.tmp-77"),
            "src-5.10.46"
        );
        assert_eq!(lock_name("downloads", "abc.tar.xz.part"), "dl-abc");
        assert_eq!(lock_name("builds", "5.10.46-x-y"), "builds-5.10.46-x-y");
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
        let held = home.lock("src-5.10.46").unwrap();
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
