//! Safe, streaming extraction of a `.tar.xz` (xz2 + tar) into a temporary folder beside
//! the target, renamed into place only when complete.
//!
//! Before writing anything the uncompressed size (read from the xz index at the end of
//! the file) is compared with the free space on the target's filesystem. Every entry is
//! checked first and the archive is refused, naming the entry, when it has an absolute
//! path, a `..` component, a symlink or hardlink that points outside the tree (or a path
//! that goes through an earlier symlink), a device/fifo/sparse entry, or a name the
//! caller reserves ([`ExtractOptions::reserved`], the tree's metadata file). GNU
//! long-name/long-link and PAX members are read here with size caps ([`MAX_LONG_NAME`],
//! [`MAX_PAX_HEADER`]), never whole into memory. Modes keep only the plain permission
//! bits minus group/world write (no setuid, setgid or sticky). When every entry is
//! written, each symlink is followed through the final tree (a link created later can
//! change where an earlier one leads) and the archive is refused if one leaves it.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use super::SourceError;
use crate::events::{EventSink, SinkExt, Stage, Unit};

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SourceError + 'a {
    move |source| SourceError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

// ---- xz index: uncompressed size without decompressing ----------------------------

fn read_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Sum of the uncompressed sizes in an `.xz` file's index (all streams). None if the
/// file is not a well-formed xz file.
pub fn xz_uncompressed_size(path: &Path) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    let mut end = f.metadata().ok()?.len();
    let mut total = 0u64;
    loop {
        // Skip stream padding (multiples of 4 zero bytes).
        loop {
            if end < 12 {
                return None;
            }
            f.seek(SeekFrom::Start(end - 4)).ok()?;
            let mut w = [0u8; 4];
            f.read_exact(&mut w).ok()?;
            if w == [0, 0, 0, 0] {
                end -= 4;
            } else {
                break;
            }
        }
        let mut footer = [0u8; 12];
        f.seek(SeekFrom::Start(end - 12)).ok()?;
        f.read_exact(&mut footer).ok()?;
        if &footer[10..12] != b"YZ" {
            return None;
        }
        let backward = (u32::from_le_bytes(footer[4..8].try_into().ok()?) as u64 + 1) * 4;
        let index_start = end.checked_sub(12 + backward)?;
        let mut index = vec![0u8; backward as usize];
        f.seek(SeekFrom::Start(index_start)).ok()?;
        f.read_exact(&mut index).ok()?;
        if index.first() != Some(&0) {
            return None;
        }
        let mut pos = 1;
        let records = read_varint(&index, &mut pos)?;
        let mut unpadded_sum = 0u64;
        for _ in 0..records {
            let unpadded = read_varint(&index, &mut pos)?;
            let uncompressed = read_varint(&index, &mut pos)?;
            unpadded_sum += unpadded.div_ceil(4) * 4;
            total += uncompressed;
        }
        // Walk back over this stream: header (12) + blocks + index + footer (12).
        let stream_start = index_start.checked_sub(unpadded_sum + 12)?;
        if stream_start == 0 {
            return Some(total);
        }
        end = stream_start;
    }
}

/// Bytes a tree of `uncompressed` tar bytes needs on disk: the content plus a margin
/// for per-file block rounding and directories.
pub fn needed_bytes(uncompressed: u64) -> u64 {
    // Saturating: a hostile index's `Size:` near u64::MAX must read as "too big", never
    // wrap around to a small need that passes the check.
    uncompressed
        .saturating_add(uncompressed / 5)
        .saturating_add(64 << 20)
}

/// Compare need with availability; the error says both and what to do.
pub fn check_space(dir: &Path, needed: u64, available: u64) -> Result<(), SourceError> {
    if available < needed {
        return Err(SourceError::DiskSpace {
            path: dir.to_owned(),
            needed,
            available,
        });
    }
    Ok(())
}

// ---- entry validation ---------------------------------------------------------------

/// Normalise an archive entry path: relative, no `..`, no root/prefix; `.` dropped.
fn clean_entry_path(p: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("has a `..` component"),
            Component::RootDir | Component::Prefix(_) => return Err("has an absolute path"),
        }
    }
    Ok(out)
}

/// Does `p` (relative to the root) pass through a symlink this archive created?
fn through_symlink(p: &Path, links: &HashSet<PathBuf>) -> bool {
    let mut cur = PathBuf::new();
    let comps: Vec<_> = p.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        cur.push(c);
        if links.contains(&cur) {
            return true;
        }
    }
    false
}

/// Check that a symlink at `entry` with target `target` stays inside the tree.
fn symlink_ok(entry: &Path, target: &Path, links: &HashSet<PathBuf>) -> Result<(), &'static str> {
    if target.is_absolute() {
        return Err("is a symlink to an absolute path");
    }
    let mut stack: Vec<std::ffi::OsString> = entry
        .parent()
        .map(|p| p.components().map(|c| c.as_os_str().to_owned()).collect())
        .unwrap_or_default();
    for c in target.components() {
        match c {
            Component::Normal(n) => stack.push(n.to_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                let here: PathBuf = stack.iter().collect();
                if !stack.is_empty() && links.contains(&here) {
                    return Err("is a symlink whose target goes through another symlink");
                }
                if stack.pop().is_none() {
                    return Err("is a symlink pointing outside the tree");
                }
            }
            _ => return Err("is a symlink pointing outside the tree"),
        }
    }
    Ok(())
}

struct Counting<R> {
    inner: R,
    n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}
impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n
            .fetch_add(k as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(k)
    }
}

/// Reads from `inner` on its own thread, handing over 1 MiB chunks through a bounded
/// channel. Dropping the reader stops the thread at its next send.
struct ThreadedReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl ThreadedReader {
    fn spawn<R: Read + Send + 'static>(mut inner: R) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(8);
        std::thread::spawn(move || loop {
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0;
            // Fill the chunk (short reads are common from a decoder).
            while n < buf.len() {
                match inner.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
            if n == 0 {
                return; // EOF: dropping tx ends the stream
            }
            buf.truncate(n);
            if tx.send(Ok(buf)).is_err() {
                return;
            }
        });
        ThreadedReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Options for one extraction.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Use this as the free space instead of asking the filesystem (tests).
    pub assume_free_bytes: Option<u64>,
    /// Strip this many leading path components (1 for `linux-5.10.46/...`).
    pub strip_components: usize,
    /// Paths (after stripping) the archive may not contain: the caller's own metadata.
    pub reserved: Vec<PathBuf>,
}

/// Extract `archive` (tar.xz) to `dest`, which must not exist. Works in
/// `<dest>.tmp-<pid>` and renames at the end; on any error the temp folder is removed.
/// `before_rename` may add files (metadata) to the temp folder.
pub fn extract_tar_xz(
    archive: &Path,
    dest: &Path,
    opts: &ExtractOptions,
    sink: &dyn EventSink,
    before_rename: impl FnOnce(&Path) -> Result<(), SourceError>,
) -> Result<u64, SourceError> {
    let compressed = std::fs::metadata(archive)
        .map_err(io_err("stat", archive))?
        .len();
    let uncompressed = xz_uncompressed_size(archive).unwrap_or(compressed.saturating_mul(10));
    let f = File::open(archive).map_err(io_err("open", archive))?;
    extract_stream(
        f,
        archive,
        compressed,
        uncompressed,
        dest,
        opts,
        sink,
        before_rename,
    )
}

/// Like [`extract_tar_xz`] but reading the compressed bytes from `input` (e.g. a file
/// that is still being downloaded). `label` names the archive in errors; `compressed`
/// is its expected size (progress) and `uncompressed` the size the space check uses.
#[allow(clippy::too_many_arguments)]
pub fn extract_stream<R: Read + Send + 'static>(
    input: R,
    label: &Path,
    compressed: u64,
    uncompressed: u64,
    dest: &Path,
    opts: &ExtractOptions,
    sink: &dyn EventSink,
    before_rename: impl FnOnce(&Path) -> Result<(), SourceError>,
) -> Result<u64, SourceError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
    let needed = needed_bytes(uncompressed);
    let available = match opts.assume_free_bytes {
        Some(a) => a,
        None => crate::home::free_space(parent)?,
    };
    check_space(parent, needed, available)?;

    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        dest.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err("remove stale", &tmp))?;
    }
    std::fs::create_dir(&tmp).map_err(io_err("create directory", &tmp))?;
    let result = unpack_into(input, label, &tmp, compressed, opts, sink)
        .and_then(|n| before_rename(&tmp).map(|_| n));
    match result {
        Ok(n) => {
            std::fs::rename(&tmp, dest).map_err(|e| {
                let _ = std::fs::remove_dir_all(&tmp);
                SourceError::Io {
                    op: "rename into place",
                    path: dest.to_owned(),
                    source: e,
                }
            })?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Largest GNU long-name / long-link member accepted (a path is at most 4 KiB on Linux).
pub const MAX_LONG_NAME: u64 = 64 << 10;
/// Largest PAX extended header accepted (`path`, `linkpath`, a commit id comment).
pub const MAX_PAX_HEADER: u64 = 1 << 20;
/// Mode bits never kept from an archive: setuid, setgid, sticky, group and world write.
const MODE_MASK: u32 = 0o7022;

/// The member a long-name, long-link or PAX header describes, read with a size cap.
#[derive(Default)]
struct Pending {
    name: Option<PathBuf>,
    link: Option<PathBuf>,
}

fn bytes_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    PathBuf::from(std::ffi::OsStr::from_bytes(&b[..end]))
}

/// `path` / `linkpath` from PAX records (`<len> <key>=<value>\n`).
fn pax_paths(data: &[u8], p: &mut Pending) {
    for ext in tar::PaxExtensions::new(data).flatten() {
        match ext.key() {
            Ok("path") => p.name = Some(bytes_path(ext.value_bytes())),
            Ok("linkpath") => p.link = Some(bytes_path(ext.value_bytes())),
            _ => {}
        }
    }
}

fn unpack_into<R: Read + Send + 'static>(
    f: R,
    archive: &Path,
    root: &Path,
    compressed: u64,
    opts: &ExtractOptions,
    sink: &dyn EventSink,
) -> Result<u64, SourceError> {
    let read_bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = Counting {
        inner: BufReader::with_capacity(1 << 20, f),
        n: read_bytes.clone(),
    };
    let xz = xz2::read::XzDecoder::new_multi_decoder(counting);
    // Decompress on a second thread so xz and the file writes overlap (as `tar xJf`'s
    // two processes do).
    let mut ar = tar::Archive::new(ThreadedReader::spawn(xz));
    ar.set_preserve_mtime(true);
    // Plain permission bits only, minus group/world write: no setuid/setgid/sticky.
    ar.set_preserve_permissions(false);
    ar.set_mask(MODE_MASK);
    ar.set_unpack_xattrs(false);
    let bad = |entry: &Path, reason: &str| SourceError::UnsafeEntry {
        archive: archive.to_owned(),
        entry: entry.display().to_string(),
        reason: reason.to_string(),
    };
    let arch_err = |source: std::io::Error| SourceError::ArchiveIo {
        path: archive.to_owned(),
        entry: None,
        source,
    };
    let mut links: HashSet<PathBuf> = HashSet::new();
    let mut made_dirs: HashSet<PathBuf> = HashSet::new();
    let mut files = 0u64;
    let mut last = Instant::now();
    let mut pending = Pending::default();
    sink.progress(Stage::Extract, 0, Some(compressed), Unit::Bytes);
    // Raw entries: the long-name and PAX members are read here, each with a size cap
    // (the tar crate would read any size into memory).
    for (index, entry) in ar.entries().map_err(arch_err)?.raw(true).enumerate() {
        if crate::process::interrupted() {
            return Err(SourceError::Interrupted);
        }
        let mut entry = entry.map_err(arch_err)?;
        let kind = entry.header().entry_type();
        let header_limit = match kind {
            tar::EntryType::GNULongName => Some(("a GNU long-name header", MAX_LONG_NAME)),
            tar::EntryType::GNULongLink => Some(("a GNU long-link header", MAX_LONG_NAME)),
            tar::EntryType::XHeader => Some(("a PAX header", MAX_PAX_HEADER)),
            tar::EntryType::XGlobalHeader => Some(("a PAX global header", MAX_PAX_HEADER)),
            _ => None,
        };
        if let Some((what, limit)) = header_limit {
            let size = entry.header().entry_size().map_err(arch_err)?;
            let label = PathBuf::from(format!("member #{}", index + 1));
            if size > limit {
                return Err(bad(
                    &label,
                    &format!(
                        "is {what} of {} (the limit is {})",
                        crate::home::human_bytes(size),
                        crate::home::human_bytes(limit)
                    ),
                ));
            }
            let mut data = Vec::with_capacity(size as usize);
            (&mut entry)
                .take(limit)
                .read_to_end(&mut data)
                .map_err(arch_err)?;
            match kind {
                tar::EntryType::GNULongName => pending.name = Some(bytes_path(&data)),
                tar::EntryType::GNULongLink => pending.link = Some(bytes_path(&data)),
                tar::EntryType::XHeader => pax_paths(&data, &mut pending),
                _ => {}
            }
            continue;
        }
        let this = std::mem::take(&mut pending);
        let raw = match this.name {
            Some(n) => n,
            None => entry.path().map_err(arch_err)?.into_owned(),
        };
        let link_name = match this.link {
            Some(l) => Some(l),
            None => entry.link_name().map_err(arch_err)?.map(|l| l.into_owned()),
        };
        let rel = clean_entry_path(&raw).map_err(|r| bad(&raw, r))?;
        let rel: PathBuf = rel.components().skip(opts.strip_components).collect();
        if rel.as_os_str().is_empty() {
            continue; // the top folder itself
        }
        if opts.reserved.iter().any(|r| r == &rel) {
            return Err(bad(&raw, "has a name labctl reserves for its own metadata"));
        }
        if through_symlink(&rel, &links) {
            return Err(bad(&raw, "goes through a symlink in the archive"));
        }
        if links.contains(&rel) {
            return Err(bad(&raw, "overwrites a symlink in the archive"));
        }
        let target = root.join(&rel);
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Directory => {}
            tar::EntryType::GNUSparse => return Err(bad(&raw, "is a sparse file (not supported)")),
            tar::EntryType::Symlink => {
                let t = link_name.ok_or_else(|| bad(&raw, "is a symlink without a target"))?;
                if t.as_os_str().is_empty() {
                    return Err(bad(&raw, "is a symlink without a target"));
                }
                symlink_ok(&rel, &t, &links).map_err(|r| bad(&raw, r))?;
                make_parent(&target, &mut made_dirs)?;
                if std::fs::symlink_metadata(&target).is_ok() {
                    return Err(bad(&raw, "replaces an earlier entry"));
                }
                std::os::unix::fs::symlink(&t, &target).map_err(io_err("symlink", &target))?;
                links.insert(rel.clone());
                files += 1;
                continue;
            }
            tar::EntryType::Link => {
                let t = link_name.ok_or_else(|| bad(&raw, "is a hardlink without a target"))?;
                let t = clean_entry_path(&t)
                    .map_err(|_| bad(&raw, "is a hardlink pointing outside the tree"))?;
                let t: PathBuf = t.components().skip(opts.strip_components).collect();
                if t.as_os_str().is_empty() || through_symlink(&t, &links) || links.contains(&t) {
                    return Err(bad(&raw, "is a hardlink pointing outside the tree"));
                }
                let src = root.join(&t);
                if !std::fs::symlink_metadata(&src).is_ok_and(|m| m.is_file()) {
                    return Err(bad(
                        &raw,
                        "is a hardlink to a file not (yet) in the archive",
                    ));
                }
                make_parent(&target, &mut made_dirs)?;
                std::fs::hard_link(&src, &target).map_err(io_err("hardlink", &target))?;
                continue;
            }
            tar::EntryType::Char => return Err(bad(&raw, "is a character device")),
            tar::EntryType::Block => return Err(bad(&raw, "is a block device")),
            tar::EntryType::Fifo => return Err(bad(&raw, "is a fifo")),
            other => return Err(bad(&raw, &format!("has an unsupported type {other:?}"))),
        }
        make_parent(&target, &mut made_dirs)?;
        entry
            .unpack(&target)
            .map_err(|source| SourceError::ArchiveIo {
                path: archive.to_owned(),
                entry: Some(raw.clone()),
                source,
            })?;
        if kind == tar::EntryType::Directory {
            made_dirs.insert(target);
        }
        files += 1;
        if last.elapsed() >= Duration::from_millis(100) {
            sink.progress(
                Stage::Extract,
                read_bytes.load(std::sync::atomic::Ordering::Relaxed),
                Some(compressed),
                Unit::Bytes,
            );
            last = Instant::now();
        }
    }
    if pending.name.is_some() || pending.link.is_some() {
        return Err(arch_err(std::io::Error::other(
            "a long-name or PAX header describes a member that is missing",
        )));
    }
    // Each symlink was checked against the links seen before it; a link created later
    // can still change where an earlier one leads. Check every link in the final tree.
    for rel in &links {
        let t = std::fs::read_link(root.join(rel)).map_err(io_err("read link", &root.join(rel)))?;
        resolve_inside(root, rel, &t).map_err(|r| bad(rel, r))?;
    }
    sink.progress(Stage::Extract, compressed, Some(compressed), Unit::Bytes);
    Ok(files)
}

/// Follow the symlink at `link` (relative to `root`, with target `target`) through the
/// final tree, component by component and through any further symlinks: Err when a
/// step leaves the tree, is absolute, or the chain is too long. A component that does
/// not exist ends the walk (the rest cannot be looked up, by the kernel either).
fn resolve_inside(root: &Path, link: &Path, target: &Path) -> Result<(), &'static str> {
    let mut stack: Vec<std::ffi::OsString> = link
        .parent()
        .map(|p| p.components().map(|c| c.as_os_str().to_owned()).collect())
        .unwrap_or_default();
    // Components still to walk, last first.
    let mut todo: Vec<std::ffi::OsString> = Vec::new();
    let push_target = |todo: &mut Vec<std::ffi::OsString>, t: &Path| -> Result<(), &'static str> {
        if t.has_root() {
            return Err("is a symlink that leads to an absolute path (through other links)");
        }
        for c in t.components().rev() {
            todo.push(c.as_os_str().to_owned());
        }
        Ok(())
    };
    push_target(&mut todo, target)?;
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c == "." {
            continue;
        }
        if c == ".." {
            if stack.pop().is_none() {
                return Err("is a symlink that leads outside the tree (through other links)");
            }
            continue;
        }
        stack.push(c);
        let here: PathBuf = root.join(stack.iter().collect::<PathBuf>());
        match std::fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err("is a symlink in a chain of more than 40 links");
                }
                let t =
                    std::fs::read_link(&here).map_err(|_| "is a symlink that cannot be read")?;
                stack.pop();
                push_target(&mut todo, &t)?;
            }
            Ok(_) => {}
            Err(_) => {
                // Missing: what is left is only a lexical path below here.
                for rest in todo.iter().rev() {
                    if rest == ".." && stack.pop().is_none() {
                        return Err(
                            "is a symlink that leads outside the tree (through other links)",
                        );
                    } else if rest != ".." && rest != "." {
                        stack.push(rest.clone());
                    }
                }
                return Ok(());
            }
        }
    }
    Ok(())
}

fn make_parent(target: &Path, made: &mut HashSet<PathBuf>) -> Result<(), SourceError> {
    if let Some(p) = target.parent() {
        if !made.contains(p) {
            std::fs::create_dir_all(p).map_err(io_err("create directory", p))?;
            made.insert(p.to_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_needs_saturate_instead_of_wrapping() {
        assert_eq!(needed_bytes(u64::MAX), u64::MAX);
        assert_eq!(needed_bytes(u64::MAX - 10), u64::MAX);
        assert!(needed_bytes(u64::MAX / 2) > u64::MAX / 2);
        assert_eq!(needed_bytes(1000), 1000 + 200 + (64 << 20));
        // A huge index size is refused for space, whatever the disk has.
        let e = check_space(Path::new("/x"), needed_bytes(u64::MAX), u64::MAX - 1).unwrap_err();
        assert!(matches!(e, SourceError::DiskSpace { .. }), "{e}");
    }

    #[test]
    fn entry_paths() {
        assert_eq!(
            clean_entry_path(Path::new("./a/b")).unwrap(),
            Path::new("a/b")
        );
        assert!(clean_entry_path(Path::new("/etc/passwd")).is_err());
        assert!(clean_entry_path(Path::new("a/../../x")).is_err());
    }

    #[test]
    fn symlink_targets() {
        let none = HashSet::new();
        assert!(symlink_ok(Path::new("a/b/l"), Path::new("../c"), &none).is_ok());
        assert!(symlink_ok(Path::new("a/l"), Path::new("../../x"), &none).is_err());
        assert!(symlink_ok(Path::new("l"), Path::new("/etc"), &none).is_err());
        assert!(symlink_ok(Path::new("l"), Path::new(".."), &none).is_err());
        let mut links = HashSet::new();
        links.insert(PathBuf::from("dot"));
        assert!(symlink_ok(Path::new("x"), Path::new("dot/.."), &links).is_err());
        assert!(through_symlink(Path::new("dot/file"), &links));
        assert!(!through_symlink(Path::new("dot"), &links));
    }

    #[test]
    fn links_are_resolved_through_the_final_tree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("t");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink("up/x", root.join("a/b/ok")).unwrap();
        std::os::unix::fs::symlink("loop2", root.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", root.join("loop2")).unwrap();
        let r = |l: &str, t: &str| resolve_inside(&root, Path::new(l), Path::new(t));
        assert!(r("a/b/ok", "up/x").is_ok());
        assert!(r("a/b/up", "../..").is_ok());
        assert!(r("esc", "a/b/up/..").is_err(), "the top's parent");
        assert!(r("esc", "a/b/up/../t/x").is_err());
        assert!(r("l", "missing/../x").is_ok());
        assert!(r("l", "missing/../../x").is_err());
        assert!(r("loop1", "loop2").is_err());
    }

    #[test]
    fn space_check_names_both_numbers() {
        let e = check_space(Path::new("/x"), 2000, 1000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("need") && e.contains("available"), "{e}");
        assert!(check_space(Path::new("/x"), 1000, 2000).is_ok());
    }

    #[test]
    fn xz_index_size_matches_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.xz");
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut enc = xz2::write::XzEncoder::new(File::create(&p).unwrap(), 6);
        std::io::Write::write_all(&mut enc, &data).unwrap();
        enc.finish().unwrap();
        assert_eq!(xz_uncompressed_size(&p), Some(data.len() as u64));
        std::fs::write(d.path().join("junk.xz"), b"not xz at all, really").unwrap();
        assert_eq!(xz_uncompressed_size(&d.path().join("junk.xz")), None);
    }
}
