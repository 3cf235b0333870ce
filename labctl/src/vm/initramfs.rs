//! Guest image assembly: the base initramfs (our init, static busybox, the build's
//! modules, payload files with the shared libraries they need), cached in
//! `home.guests()/<hash>.cpio` by a hash of its content, plus a tiny per-run archive
//! (`/labctl/env`, `/labctl/run.sh`) appended. The kernel unpacks concatenated archives
//! in order, so the cached part never changes between runs. Both are uncompressed: under
//! TCG the guest's gunzip of the ~7.5 MB image cost 0.5 s of every suite boot (17.7 MB of
//! cpio unpacks faster than it inflates), and the host's disk pays 10 MB per image.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cpio::CpioWriter;
use super::elf;
use super::{GuestFile, VmError};
use crate::home::{write_atomic, write_atomic_with, Home};

/// The guest's PID 1 (busybox sh script), kept in the repository's top-level `vm/`.
pub const INIT_SCRIPT: &str = include_str!("../../../vm/init");

/// Bumped when the image layout changes, so old cache entries are not reused.
const LAYOUT_VERSION: &str = "labctl-guest-v2";

/// Where one image entry's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Host(PathBuf),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File {
        guest: String,
        mode: u32,
        source: Source,
    },
    Dir {
        guest: String,
        mode: u32,
    },
    Symlink {
        guest: String,
        target: String,
    },
    CharDev {
        guest: String,
        mode: u32,
        major: u32,
        minor: u32,
    },
}

impl Entry {
    fn guest(&self) -> &str {
        match self {
            Entry::File { guest, .. }
            | Entry::Dir { guest, .. }
            | Entry::Symlink { guest, .. }
            | Entry::CharDev { guest, .. } => guest,
        }
    }
}

/// A cached base image and what the per-run part must know about it.
#[derive(Debug, Clone)]
pub struct GuestImage {
    pub path: PathBuf,
    pub hash: String,
    /// Directories holding copied shared libraries (the guest's LD_LIBRARY_PATH).
    pub ld_path: Vec<String>,
    pub entries: usize,
    /// The files' total size unpacked (what the guest's RAM holds after unpacking).
    pub bytes: u64,
    /// True when this run built the image (false: reused from the cache).
    pub built: bool,
}

/// The unpacked size of the files among `entries`.
fn unpacked_bytes(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .map(|e| match e {
            Entry::File {
                source: Source::Bytes(b),
                ..
            } => b.len() as u64,
            Entry::File {
                source: Source::Host(p),
                ..
            } => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// The busybox of a foreign architecture's guest userland root (`bin/busybox` there, from
/// Debian's busybox-static), or the host's ([`find_busybox`]) when `root` is None.
pub fn find_busybox_in(root: Option<&Path>) -> Result<PathBuf, VmError> {
    let Some(root) = root else {
        return find_busybox();
    };
    ["bin/busybox", "usr/bin/busybox"]
        .iter()
        .map(|p| root.join(p))
        .find(|p| p.is_file())
        .ok_or_else(|| VmError::BusyboxMissing {
            detail: format!(
                "the guest userland root {} has no bin/busybox (its busybox-static package is missing: delete the folder and run again)",
                root.display()
            ),
        })
}

/// Find the host's busybox and check it can run in an empty initramfs.
pub fn find_busybox() -> Result<PathBuf, VmError> {
    let candidates = [
        PathBuf::from("/bin/busybox"),
        PathBuf::from("/usr/bin/busybox"),
    ];
    let found = std::env::var_os("LABCTL_BUSYBOX")
        .map(PathBuf::from)
        .into_iter()
        .chain(candidates)
        .chain(crate::process::which("busybox"))
        .find(|p| p.is_file());
    found.ok_or(VmError::BusyboxMissing {
        detail: "no busybox found in /bin, /usr/bin or PATH".into(),
    })
}

/// The base image's entries (pure except for reading ELF headers of host files).
/// `lib_users`: host programs that stay outside the image (in a shared folder) and need
/// only their shared libraries in it. `guest_root`: a foreign architecture's userland
/// root, where every library is looked up instead of the host's folders.
pub fn base_entries(
    busybox: &Path,
    modules: Option<&Path>,
    files: &[GuestFile],
    lib_users: &[PathBuf],
    guest_root: Option<&Path>,
) -> Result<(Vec<Entry>, Vec<String>), VmError> {
    let mut entries = vec![
        Entry::File {
            guest: "/init".into(),
            mode: 0o755,
            source: Source::Bytes(INIT_SCRIPT.as_bytes().to_vec()),
        },
        Entry::Dir {
            guest: "/dev".into(),
            mode: 0o755,
        },
        Entry::CharDev {
            guest: "/dev/console".into(),
            mode: 0o600,
            major: 5,
            minor: 1,
        },
        Entry::CharDev {
            guest: "/dev/null".into(),
            mode: 0o666,
            major: 1,
            minor: 3,
        },
        Entry::Dir {
            guest: "/root".into(),
            mode: 0o700,
        },
        Entry::Dir {
            guest: "/tmp".into(),
            mode: 0o1777,
        },
        Entry::Dir {
            guest: "/labctl".into(),
            mode: 0o755,
        },
    ];
    for d in [
        "/proc",
        "/sys",
        "/run",
        "/etc",
        "/bin",
        "/sbin",
        "/usr/bin",
        "/usr/sbin",
    ] {
        entries.push(Entry::Dir {
            guest: d.into(),
            mode: 0o755,
        });
    }
    entries.push(Entry::File {
        guest: "/etc/passwd".into(),
        mode: 0o644,
        source: Source::Bytes(b"root:x:0:0:root:/root:/bin/sh\n".to_vec()),
    });
    // `ping localhost` in the samples: older busybox builds (Debian 11's) resolve names
    // only through /etc/hosts.
    entries.push(Entry::File {
        guest: "/etc/hosts".into(),
        mode: 0o644,
        source: Source::Bytes(b"127.0.0.1 localhost\n::1 localhost ip6-localhost\n".to_vec()),
    });
    // Name lookups in a static glibc program (busybox's ping) read nsswitch.conf; "files"
    // is the only source a guest has.
    entries.push(Entry::File {
        guest: "/etc/nsswitch.conf".into(),
        mode: 0o644,
        source: Source::Bytes(b"hosts: files\npasswd: files\ngroup: files\n".to_vec()),
    });
    entries.push(Entry::File {
        guest: "/etc/group".into(),
        mode: 0o644,
        source: Source::Bytes(b"root:x:0:\n".to_vec()),
    });

    let mut libs: Vec<elf::LibFile> = Vec::new();
    let mut root_libs: Vec<elf::LibFile> = Vec::new();
    let (lib_root, search) = match guest_root {
        Some(r) => (r, elf::search_dirs_in(r)),
        None => (Path::new("/"), elf::host_search_dirs()),
    };
    // busybox: must be static, or we carry its libraries.
    let data = std::fs::read(busybox).map_err(|e| VmError::BusyboxMissing {
        detail: format!("cannot read {}: {e}", busybox.display()),
    })?;
    let info = elf::inspect(&data).map_err(|e| VmError::BusyboxMissing {
        detail: format!("{} is not an ELF program: {e}", busybox.display()),
    })?;
    if !info.is_static() {
        libs.extend(elf::resolve_closure_in(busybox, lib_root, &search).map_err(VmError::Elf)?);
    } else if needs_nss_files_module(&data) {
        libs.extend(nss_files_module(lib_root, &search)?);
    }
    entries.push(Entry::File {
        guest: "/bin/busybox".into(),
        mode: 0o755,
        source: Source::Host(busybox.to_path_buf()),
    });
    entries.push(Entry::Symlink {
        guest: "/bin/sh".into(),
        target: "busybox".into(),
    });

    if let Some(m) = modules {
        let root = m.join("lib/modules");
        if !root.is_dir() {
            return Err(VmError::Modules {
                path: m.to_path_buf(),
                detail: "has no lib/modules/<release> (pass the modules_install INSTALL_MOD_PATH)"
                    .into(),
            });
        }
        walk(&root, "/lib/modules", &mut entries, &mut |p| {
            // modules_install leaves `build`/`source` symlinks into the build tree.
            !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("build" | "source")
            )
        })?;
    }

    for f in files {
        if !f.guest.starts_with('/') {
            return Err(VmError::Payload {
                path: f.host.clone(),
                detail: format!("guest path {:?} must be absolute", f.guest),
            });
        }
        let meta = std::fs::metadata(&f.host).map_err(|e| VmError::Payload {
            path: f.host.clone(),
            detail: e.to_string(),
        })?;
        if meta.is_dir() {
            walk(&f.host, &f.guest, &mut entries, &mut |_| true)?;
            if f.with_libs {
                for p in files_under(&f.host) {
                    add_libs_for(f, &p, lib_root, &search, &mut libs, &mut root_libs)?;
                }
            }
        } else {
            use std::os::unix::fs::PermissionsExt;
            entries.push(Entry::File {
                guest: f.guest.clone(),
                mode: meta.permissions().mode() & 0o7777,
                source: Source::Host(f.host.clone()),
            });
            if f.with_libs {
                add_libs_for(f, &f.host, lib_root, &search, &mut libs, &mut root_libs)?;
            }
        }
    }
    // Host programs that stay outside the image (in a shared folder) bring their
    // libraries only.
    for p in lib_users {
        add_libs(p, lib_root, &search, &mut libs)?;
    }
    // A toolchain root's libraries come last so they win over the host's copy of the
    // same path (the programs that need them were linked against those).
    for l in root_libs {
        if !libs.contains(&l) {
            libs.push(l);
        }
    }
    let ld_path = elf::lib_dirs(&libs);
    for l in libs {
        entries.push(Entry::File {
            guest: l.guest,
            mode: 0o755,
            source: Source::Host(l.host),
        });
    }
    Ok((dedup_last_wins(entries), ld_path))
}

/// True for a static glibc program that resolves names through NSS but lacks the
/// built-in "files" module: glibc before 2.34 (Debian 11's busybox-static 1.30) dlopens
/// `libnss_files.so.2` at the first lookup, so without it `ping localhost` fails with
/// "bad address" even though /etc/hosts is there. glibc 2.34+ builds that module in.
fn needs_nss_files_module(static_program: &[u8]) -> bool {
    let has = |needle: &[u8]| static_program.windows(needle.len()).any(|w| w == needle);
    has(b"/etc/nsswitch.conf") && !has(b"_nss_files_gethostbyname4_r")
}

/// `libnss_files.so.2` from the busybox's system (the first search folder that has it)
/// and its shared-library closure, for [`needs_nss_files_module`] programs.
fn nss_files_module(root: &Path, search: &[PathBuf]) -> Result<Vec<elf::LibFile>, VmError> {
    // `search` holds paths inside `root` (the host's own folders when it is /).
    let Some(lib) = search
        .iter()
        .filter_map(|d| elf::host_path_in(root, &d.join("libnss_files.so.2")))
        .find(|p| p.is_file())
    else {
        return Err(VmError::BusyboxMissing {
            detail: "the static busybox resolves names through glibc's libnss_files.so.2 \
                     (glibc < 2.34), which is not in the library folders; install the C \
                     library's package (Debian: libc6) or a newer busybox-static"
                .into(),
        });
    };
    let guest = Path::new("/").join(lib.strip_prefix(root).unwrap_or(&lib));
    let mut out = vec![elf::LibFile {
        host: lib.clone(),
        guest: guest.to_string_lossy().into_owned(),
    }];
    out.extend(elf::resolve_closure_in(&lib, root, search).map_err(VmError::Elf)?);
    Ok(out)
}

/// The libraries of `p` (one of `f`'s files), from the host or from `f`'s sysroot.
fn add_libs_for(
    f: &GuestFile,
    p: &Path,
    lib_root: &Path,
    host_search: &[PathBuf],
    host_libs: &mut Vec<elf::LibFile>,
    root_libs: &mut Vec<elf::LibFile>,
) -> Result<(), VmError> {
    match &f.sysroot {
        None => add_libs(p, lib_root, host_search, host_libs),
        Some(root) => add_libs(p, root, &elf::search_dirs_in(root), root_libs),
    }
}

fn add_libs(
    p: &Path,
    root: &Path,
    search: &[PathBuf],
    libs: &mut Vec<elf::LibFile>,
) -> Result<(), VmError> {
    let head = read_head(p);
    if !elf::is_elf(&head) {
        return Ok(());
    }
    let data = std::fs::read(p).map_err(|e| VmError::Payload {
        path: p.to_path_buf(),
        detail: e.to_string(),
    })?;
    match elf::inspect(&data) {
        Ok(i) if i.is_static() => Ok(()),
        Ok(_) => {
            for l in elf::resolve_closure_in(p, root, search).map_err(VmError::Elf)? {
                if !libs.contains(&l) {
                    libs.push(l);
                }
            }
            Ok(())
        }
        Err(_) => Ok(()), // an ELF we cannot parse (e.g. a BPF object): no libraries
    }
}

fn read_head(p: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut b = vec![0u8; 4];
    match std::fs::File::open(p).and_then(|mut f| f.read_exact(&mut b)) {
        Ok(()) => b,
        Err(_) => Vec::new(),
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => out.extend(files_under(&p)),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Add a host directory tree under `guest` (files, dirs and symlinks), sorted for a
/// deterministic archive.
fn walk(
    host: &Path,
    guest: &str,
    entries: &mut Vec<Entry>,
    keep: &mut dyn FnMut(&Path) -> bool,
) -> Result<(), VmError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |p: &Path, e: std::io::Error| VmError::Payload {
        path: p.to_path_buf(),
        detail: e.to_string(),
    };
    entries.push(Entry::Dir {
        guest: guest.to_string(),
        mode: 0o755,
    });
    let mut items: Vec<_> = std::fs::read_dir(host)
        .map_err(|e| err(host, e))?
        .flatten()
        .collect();
    items.sort_by_key(|e| e.file_name());
    for e in items {
        let p = e.path();
        if !keep(&p) {
            continue;
        }
        let g = format!(
            "{}/{}",
            guest.trim_end_matches('/'),
            e.file_name().to_string_lossy()
        );
        let meta = std::fs::symlink_metadata(&p).map_err(|x| err(&p, x))?;
        if meta.file_type().is_symlink() {
            let t = std::fs::read_link(&p).map_err(|x| err(&p, x))?;
            entries.push(Entry::Symlink {
                guest: g,
                target: t.to_string_lossy().into_owned(),
            });
        } else if meta.is_dir() {
            walk(&p, &g, entries, keep)?;
        } else if meta.is_file() {
            entries.push(Entry::File {
                guest: g,
                mode: meta.permissions().mode() & 0o7777,
                source: Source::Host(p),
            });
        }
    }
    Ok(())
}

fn dedup_last_wins(entries: Vec<Entry>) -> Vec<Entry> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<Entry> = entries
        .into_iter()
        .rev()
        .filter(|e| seen.insert(e.guest().trim_end_matches('/').to_string()))
        .collect();
    out.reverse();
    out
}

/// Content hash of an entry list (file bytes included, mtimes excluded).
pub fn content_hash(entries: &[Entry]) -> Result<String, VmError> {
    let mut h = Sha256::new();
    h.update(LAYOUT_VERSION);
    for e in entries {
        match e {
            Entry::File {
                guest,
                mode,
                source,
            } => {
                h.update(format!("\0F{guest}\0{mode:o}\0"));
                match source {
                    Source::Bytes(b) => h.update(b),
                    Source::Host(p) => {
                        let mut f = std::fs::File::open(p).map_err(|x| VmError::Payload {
                            path: p.clone(),
                            detail: x.to_string(),
                        })?;
                        std::io::copy(&mut f, &mut h).map_err(|x| VmError::Payload {
                            path: p.clone(),
                            detail: x.to_string(),
                        })?;
                    }
                }
            }
            Entry::Dir { guest, mode } => h.update(format!("\0D{guest}\0{mode:o}")),
            Entry::Symlink { guest, target } => h.update(format!("\0L{guest}\0{target}")),
            Entry::CharDev {
                guest,
                mode,
                major,
                minor,
            } => h.update(format!("\0C{guest}\0{mode:o}\0{major}:{minor}")),
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Write entries as a newc archive into `out`.
pub fn write_cpio<W: Write>(entries: &[Entry], out: W) -> Result<W, VmError> {
    let io = |e: std::io::Error| VmError::Image {
        detail: e.to_string(),
    };
    let mut w = CpioWriter::new(out);
    for e in entries {
        match e {
            Entry::File {
                guest,
                mode,
                source,
            } => {
                let data = match source {
                    Source::Bytes(b) => std::borrow::Cow::Borrowed(b.as_slice()),
                    Source::Host(p) => {
                        std::borrow::Cow::Owned(std::fs::read(p).map_err(|x| VmError::Payload {
                            path: p.clone(),
                            detail: x.to_string(),
                        })?)
                    }
                };
                w.file(guest, *mode, &data).map_err(io)?;
            }
            Entry::Dir { guest, mode } => w.dir(guest, *mode).map_err(io)?,
            Entry::Symlink { guest, target } => w.symlink(guest, target).map_err(io)?,
            Entry::CharDev {
                guest,
                mode,
                major,
                minor,
            } => w.char_dev(guest, *mode, *major, *minor).map_err(io)?,
        }
    }
    w.finish().map_err(io)
}

/// Build (or reuse) the cached base image for these inputs.
pub fn base_image(
    home: &Home,
    busybox: &Path,
    modules: Option<&Path>,
    files: &[GuestFile],
    lib_users: &[PathBuf],
    guest_root: Option<&Path>,
) -> Result<GuestImage, VmError> {
    let (entries, ld_path) = base_entries(busybox, modules, files, lib_users, guest_root)?;
    let hash = content_hash(&entries)?;
    let bytes = unpacked_bytes(&entries);
    let dir = home.guests();
    let path = dir.join(format!("{}.cpio", &hash[..16]));
    let n = entries.len();
    if path.is_file() {
        return Ok(GuestImage {
            path,
            hash,
            ld_path,
            entries: n,
            bytes,
            built: false,
        });
    }
    let _lock = home
        .lock(&crate::home::CacheKey::Guest(hash[..16].to_string()))
        .map_err(|source| VmError::ImageHome { source })?;
    if path.is_file() {
        return Ok(GuestImage {
            path,
            hash,
            ld_path,
            entries: n,
            bytes,
            built: false,
        });
    }
    let bytes_out = write_cpio(&entries, Vec::new())?;
    write_atomic(&path, &bytes_out).map_err(|source| VmError::ImageHome { source })?;
    Ok(GuestImage {
        path,
        hash,
        ld_path,
        entries: n,
        bytes,
        built: true,
    })
}

/// The per-run settings the init reads from `/labctl/env`.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub interactive: bool,
    pub nonce: String,
    pub modules: Vec<String>,
    pub ld_path: Vec<String>,
    pub script: String,
    /// `vm boot`'s shell starts here (default /root).
    pub workdir: Option<String>,
    /// The results channel's device node (the architecture's: /dev/ttyS1, /dev/hvc0).
    pub results: String,
}

/// `/labctl/env` text: shell assignments with single-quoted values.
pub fn env_text(s: &RunSettings) -> String {
    let q = |v: &str| format!("'{}'", v.replace('\'', r"'\''"));
    format!(
        "LABCTL_MODE={}\nLABCTL_NONCE={}\nLABCTL_MODULES={}\nLABCTL_LD_PATH={}\nLABCTL_WORKDIR={}\nLABCTL_RESULTS={}\n",
        if s.interactive { "boot" } else { "run" },
        q(&s.nonce),
        q(&s.modules.join(" ")),
        q(&s.ld_path.join(":")),
        q(s.workdir.as_deref().unwrap_or("/root")),
        q(&s.results),
    )
}

/// The small uncompressed archive appended after the cached image.
pub fn run_archive(s: &RunSettings) -> Result<Vec<u8>, VmError> {
    let entries = vec![
        Entry::File {
            guest: "/labctl/env".into(),
            mode: 0o644,
            source: Source::Bytes(env_text(s).into_bytes()),
        },
        Entry::File {
            guest: "/labctl/run.sh".into(),
            mode: 0o755,
            source: Source::Bytes(s.script.clone().into_bytes()),
        },
    ];
    write_cpio(&entries, Vec::new())
}

/// Write `run_dir/initrd.img` = cached base image + per-run archive.
/// The base image is copied file to file (copy_file_range on Linux), not read into
/// memory: it is 18–36 MB uncompressed, and this runs on every boot.
pub fn assemble_initrd(base: &GuestImage, s: &RunSettings, out: &Path) -> Result<(), VmError> {
    let run = run_archive(s)?;
    let mut src = std::fs::File::open(&base.path).map_err(|e| VmError::Image {
        detail: format!("read {}: {e}", base.path.display()),
    })?;
    write_atomic_with(out, |f| {
        let n = std::io::copy(&mut src, f)?;
        // Keep the appended archive 4-byte aligned (newc's alignment).
        f.write_all(&[0u8; 3][..(n.next_multiple_of(4) - n) as usize])?;
        f.write_all(&run)
    })
    .map_err(|source| VmError::ImageHome { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(archive: &Path) -> Vec<String> {
        let out = std::process::Command::new("cpio")
            .args(["-t", "--quiet", "-F"])
            .arg(archive)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn init_script_is_embedded_and_uses_reboot() {
        assert!(INIT_SCRIPT.starts_with("#!/bin/busybox sh"));
        assert!(INIT_SCRIPT.contains("reboot -f"));
        assert!(INIT_SCRIPT.contains("ulimit -l unlimited"));
        assert!(INIT_SCRIPT.contains("<<<labctl-exit"));
    }

    #[test]
    fn env_quotes_values() {
        let s = RunSettings {
            interactive: false,
            nonce: "ab12".into(),
            modules: vec!["test_bpf".into(), "x'y".into()],
            ld_path: vec!["/lib/x".into()],
            script: String::new(),
            workdir: Some("/w'x".into()),
            results: "/dev/hvc0".into(),
        };
        let t = env_text(&s);
        assert!(t.contains("LABCTL_MODE=run\n"), "{t}");
        assert!(t.contains("LABCTL_MODULES='test_bpf x'\\''y'\n"), "{t}");
        assert!(t.contains("LABCTL_LD_PATH='/lib/x'"), "{t}");
        assert!(t.contains("LABCTL_WORKDIR='/w'\\''x'"), "{t}");
        assert!(t.contains("LABCTL_RESULTS='/dev/hvc0'\n"), "{t}");
    }

    #[test]
    fn image_is_cached_by_content_and_payload_brings_its_libs() {
        let d = tempfile::tempdir().unwrap();
        let home = Home::new(d.path().join("home"));
        let mods = d.path().join("mods/lib/modules/5.10.46");
        std::fs::create_dir_all(mods.join("kernel/lib")).unwrap();
        std::fs::write(mods.join("kernel/lib/test_bpf.ko"), b"fake module").unwrap();
        std::fs::write(mods.join("modules.dep"), b"kernel/lib/test_bpf.ko:\n").unwrap();
        std::os::unix::fs::symlink("/nonexistent/build", mods.join("build")).unwrap();
        let files = vec![
            GuestFile {
                host: "/bin/ls".into(),
                guest: "/usr/local/bin/ls".into(),
                with_libs: true,
                sysroot: None,
            },
            GuestFile {
                host: mods.join("modules.dep"),
                guest: "/data/dep.txt".into(),
                with_libs: false,
                sysroot: None,
            },
        ];
        let bb = find_busybox().unwrap();
        let img = base_image(&home, &bb, Some(&d.path().join("mods")), &files, &[], None).unwrap();
        assert!(img.built);
        assert!(
            img.ld_path.iter().any(|p| p.ends_with("x86_64-linux-gnu")),
            "{:?}",
            img.ld_path
        );
        let again =
            base_image(&home, &bb, Some(&d.path().join("mods")), &files, &[], None).unwrap();
        assert!(!again.built);
        assert_eq!(again.path, img.path);
        // Changing content changes the key.
        std::fs::write(mods.join("modules.dep"), b"changed\n").unwrap();
        let changed =
            base_image(&home, &bb, Some(&d.path().join("mods")), &files, &[], None).unwrap();
        assert!(changed.built && changed.hash != img.hash);

        // cpio -t: the layout the init expects.
        let names = list(&changed.path);
        for want in [
            "init",
            "bin/busybox",
            "bin/sh",
            "dev/console",
            "lib/modules/5.10.46/kernel/lib/test_bpf.ko",
            "usr/local/bin/ls",
            "data/dep.txt",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        assert!(names.iter().any(|n| n.ends_with("libc.so.6")), "{names:?}");
        assert!(
            !names.iter().any(|n| n.ends_with("5.10.46/build")),
            "build symlink must be skipped"
        );

        // The per-run part appended to the image.
        let s = RunSettings {
            interactive: false,
            nonce: "n".into(),
            modules: vec![],
            ld_path: changed.ld_path.clone(),
            script: "uname -r\n".into(),
            workdir: None,
            results: "/dev/ttyS1".into(),
        };
        let initrd = d.path().join("run/initrd.img");
        assemble_initrd(&changed, &s, &initrd).unwrap();
        let all = std::fs::read(&initrd).unwrap();
        let base_len = std::fs::metadata(&changed.path).unwrap().len() as usize;
        let tail = &all[base_len.div_ceil(4) * 4..];
        let tail_path = d.path().join("tail.cpio");
        std::fs::write(&tail_path, tail).unwrap();
        assert_eq!(list(&tail_path), ["labctl", "labctl/env", "labctl/run.sh"]);
    }

    #[test]
    fn static_glibc_before_2_34_needs_the_nss_files_module() {
        // Debian 11's busybox-static 1.30: NSS present, "files" loaded at run time.
        let old = b"..libnss_%s.so.%d.%d../etc/nsswitch.conf..".to_vec();
        assert!(needs_nss_files_module(&old));
        // Debian 12's 1.35 (glibc 2.36): the files module is built in.
        let new = b"/etc/nsswitch.conf.._nss_files_gethostbyname4_r..".to_vec();
        assert!(!needs_nss_files_module(&new));
        // A static program without NSS (musl, or no name lookups).
        assert!(!needs_nss_files_module(b"just code"));
        // This host's static busybox, which the lab's samples' ping runs on.
        let bb = std::fs::read(find_busybox().unwrap()).unwrap();
        let libc_has_builtin = std::path::Path::new("/lib/x86_64-linux-gnu/libc.so.6").exists()
            && std::fs::read("/lib/x86_64-linux-gnu/libc.so.6")
                .unwrap()
                .windows(27)
                .any(|w| w == b"_nss_files_gethostbyname4_r");
        if libc_has_builtin {
            assert!(!needs_nss_files_module(&bb));
        }
    }

    #[test]
    fn the_nss_files_module_comes_with_its_closure_or_a_clear_error() {
        let search = elf::host_search_dirs();
        if search.iter().any(|d| d.join("libnss_files.so.2").is_file()) {
            let libs = nss_files_module(Path::new("/"), &search).unwrap();
            assert!(libs[0].guest.ends_with("/libnss_files.so.2"), "{libs:?}");
            assert!(
                libs.iter().any(|l| l.guest.ends_with("/libc.so.6")),
                "{libs:?}"
            );
        }
        let empty = tempfile::tempdir().unwrap();
        let e = nss_files_module(Path::new("/"), &[empty.path().to_path_buf()]).unwrap_err();
        assert!(e.to_string().contains("libnss_files.so.2"), "{e}");
    }

    #[test]
    fn relative_guest_path_is_refused() {
        let files = vec![GuestFile {
            host: "/bin/ls".into(),
            guest: "usr/bin/ls".into(),
            with_libs: false,
            sysroot: None,
        }];
        let e = base_entries(&find_busybox().unwrap(), None, &files, &[], None).unwrap_err();
        assert!(e.to_string().contains("must be absolute"), "{e}");
    }
}
