//! ELF inspection for the guest image: is a binary static, which interpreter and shared
//! libraries (`DT_NEEDED`, transitively) does it need, and where are they on this host.
//!
//! Resolution follows the dynamic linker's order closely enough for a lab guest:
//! `DT_RPATH` (when there is no `DT_RUNPATH`), `DT_RUNPATH` (with `$ORIGIN`), the
//! directories of `/etc/ld.so.conf` (with its `include` globs) and the standard
//! directories. A candidate is only accepted when its ELF class and machine match the
//! binary's (so a 64-bit program never picks a library from `/usr/lib32`).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::Endianness;

/// What we need to know about one ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub class64: bool,
    pub machine: u16,
    /// `PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`. None for static binaries.
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
}

impl ElfInfo {
    /// Static: no interpreter and no needed libraries.
    pub fn is_static(&self) -> bool {
        self.interpreter.is_none() && self.needed.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("{}: not an ELF file we can read: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("{}: needs `{lib}`, which was not found in {searched} (install the package that provides it, or build the program static)", path.display())]
    Missing {
        path: PathBuf,
        lib: String,
        searched: String,
    },
    #[error("read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Is `data` an ELF file at all (cheap magic check)?
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

/// Parse the dynamic-linking facts out of an ELF image.
pub fn inspect(data: &[u8]) -> Result<ElfInfo, String> {
    if !is_elf(data) || data.len() < 5 {
        return Err("no ELF magic".into());
    }
    match data[4] {
        elf::ELFCLASS64 => inspect_generic::<elf::FileHeader64<Endianness>>(data, true),
        elf::ELFCLASS32 => inspect_generic::<elf::FileHeader32<Endianness>>(data, false),
        c => Err(format!("unknown ELF class {c}")),
    }
}

fn inspect_generic<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
    class64: bool,
) -> Result<ElfInfo, String> {
    let hdr = H::parse(data).map_err(|e| e.to_string())?;
    let endian = hdr.endian().map_err(|e| e.to_string())?;
    let machine = hdr.e_machine(endian);
    let mut interpreter = None;
    for ph in hdr
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?
    {
        if let Some(interp) = ph.interpreter(endian, data).map_err(|e| e.to_string())? {
            interpreter = Some(String::from_utf8_lossy(interp).into_owned());
        }
    }
    let mut needed = Vec::new();
    let mut rpath = Vec::new();
    let mut runpath = Vec::new();
    let sections = hdr.sections(endian, data).map_err(|e| e.to_string())?;
    if let Some((dyns, link)) = sections.dynamic(endian, data).map_err(|e| e.to_string())? {
        let strings = sections
            .strings(endian, data, link)
            .map_err(|e| e.to_string())?;
        for d in dyns {
            let tag = d.tag32(endian);
            let Some(tag) = tag else { continue };
            let want = matches!(tag, elf::DT_NEEDED | elf::DT_RPATH | elf::DT_RUNPATH);
            if !want {
                continue;
            }
            let s = d.string(endian, strings).map_err(|e| e.to_string())?;
            let s = String::from_utf8_lossy(s).into_owned();
            match tag {
                elf::DT_NEEDED => needed.push(s),
                elf::DT_RPATH => {
                    rpath.extend(s.split(':').filter(|p| !p.is_empty()).map(String::from))
                }
                _ => runpath.extend(s.split(':').filter(|p| !p.is_empty()).map(String::from)),
            }
        }
    }
    Ok(ElfInfo {
        class64,
        machine,
        interpreter,
        needed,
        rpath,
        runpath,
    })
}

/// Parse `ld.so.conf` text: plain directories and `include GLOB` lines (resolved by
/// `include`, which the caller supplies so this stays a pure function).
pub fn parse_ld_so_conf(text: &str, include: &mut dyn FnMut(&str) -> Vec<String>) -> Vec<String> {
    let mut dirs = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(pat) = line
            .strip_prefix("include")
            .filter(|r| r.starts_with(char::is_whitespace))
        {
            for p in pat.split_whitespace() {
                dirs.extend(include(p));
            }
        } else if line.starts_with('/') {
            dirs.push(line.to_string());
        }
    }
    dirs
}

/// Expand a `dir/*.conf`-style glob (only `*` in the last component is supported, which
/// is what distributions use) and parse each file in name order. `pattern` is a path of
/// the system at `root` (`/` = the host), and so are the includes of the files it names.
fn include_glob(root: &Path, pattern: &str, depth: u32) -> Vec<String> {
    if depth > 4 {
        return Vec::new();
    }
    let inside = root.join(pattern.trim_start_matches('/'));
    let p = inside.as_path();
    let (Some(dir), Some(name)) = (
        p.parent(),
        p.file_name().map(|n| n.to_string_lossy().into_owned()),
    ) else {
        return Vec::new();
    };
    let (pre, post) = match name.split_once('*') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (name.clone(), String::new()),
    };
    let exact = !name.contains('*');
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|f| {
                    let n = f
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if exact {
                        n == name
                    } else {
                        n.starts_with(&pre)
                            && n.ends_with(&post)
                            && n.len() >= pre.len() + post.len()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        if let Ok(text) = std::fs::read_to_string(&f) {
            out.extend(parse_ld_so_conf(&text, &mut |g| {
                include_glob(root, g, depth + 1)
            }));
        }
    }
    out
}

/// The host's library search path: ld.so.conf directories, then the standard ones.
pub fn host_search_dirs() -> Vec<PathBuf> {
    search_dirs_in(Path::new("/"))
}

/// One file the guest needs: where it lives on the host and where it goes in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibFile {
    pub host: PathBuf,
    pub guest: String,
}

/// The library search path of the system installed at `root` (a Debian root filesystem
/// whose tools built a program): its ld.so.conf directories, then the standard ones, as
/// paths *inside* that system (give them to [`resolve_closure_in`] with the same root).
pub fn search_dirs_in(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<String> = std::fs::read_to_string(root.join("etc/ld.so.conf"))
        .map(|t| parse_ld_so_conf(&t, &mut |g| include_glob(root, g, 0)))
        // A root that was extracted, not installed, has no ld.so.conf (libc-bin's), but
        // libc6's ld.so.conf.d/<triplet>.conf is there.
        .unwrap_or_else(|_| {
            parse_ld_so_conf("include /etc/ld.so.conf.d/*.conf\n", &mut |g| {
                include_glob(root, g, 0)
            })
        });
    for d in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ] {
        dirs.push(d.to_string());
    }
    let mut seen = std::collections::HashSet::new();
    dirs.into_iter()
        .filter(|d| seen.insert(d.clone()))
        .map(PathBuf::from)
        .collect()
}

/// Where `inside` (an absolute path in the system at `root`) really is on this host:
/// every symbolic link on the way is followed *within* the root, so an absolute link
/// such as bullseye's `/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-2.31.so`
/// never lands on the host's file of that name. None when it does not exist (or loops).
pub fn host_path_in(root: &Path, inside: &Path) -> Option<PathBuf> {
    if root == Path::new("/") {
        return inside.exists().then(|| inside.to_path_buf());
    }
    let mut todo: Vec<std::ffi::OsString> = names_and_parents(inside);
    todo.reverse();
    let mut cur: Vec<std::ffi::OsString> = Vec::new();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            cur.pop();
            continue;
        }
        let mut here = root.to_path_buf();
        here.extend(&cur);
        here.push(&part);
        match std::fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = std::fs::read_link(&here).ok()?;
                if target.is_absolute() {
                    cur.clear();
                }
                todo.extend(names_and_parents(&target).into_iter().rev());
            }
            Ok(_) => cur.push(part),
            Err(_) => return None,
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&cur);
    Some(out)
}

/// A path's file names and `..`s, in order (root and `.` dropped).
fn names_and_parents(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_owned()),
            std::path::Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Resolve the interpreter and all shared libraries `binary` needs, transitively.
/// Guest paths mirror the host paths at which the linker would find them, so the
/// guest's `ld.so` finds them via `LD_LIBRARY_PATH` set to [`lib_dirs`].
pub fn resolve_closure(binary: &Path, search: &[PathBuf]) -> Result<Vec<LibFile>, ElfError> {
    resolve_closure_in(binary, Path::new("/"), search)
}

/// [`resolve_closure`] for a program built in the system installed at `root` (`/` = the
/// host): the interpreter and libraries are looked up in `search` (paths inside that
/// system, see [`search_dirs_in`]) and read from the root; guest paths are the paths
/// inside it.
pub fn resolve_closure_in(
    binary: &Path,
    root_dir: &Path,
    search: &[PathBuf],
) -> Result<Vec<LibFile>, ElfError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| ElfError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    let data = read(binary)?;
    let root = inspect(&data).map_err(|reason| ElfError::Parse {
        path: binary.to_path_buf(),
        reason,
    })?;
    let mut out: BTreeMap<String, LibFile> = BTreeMap::new();
    let sysroot = root_dir;
    if let Some(interp) = &root.interpreter {
        let host =
            host_path_in(sysroot, Path::new(interp)).unwrap_or_else(|| PathBuf::from(interp));
        out.insert(
            interp.clone(),
            LibFile {
                host,
                guest: interp.clone(),
            },
        );
    }
    let mut queue: VecDeque<(PathBuf, ElfInfo)> = VecDeque::new();
    queue.push_back((binary.to_path_buf(), root.clone()));
    let mut done_names = std::collections::HashSet::new();
    while let Some((path, info)) = queue.pop_front() {
        let origin = path
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let expand =
            |d: &String| PathBuf::from(d.replace("$ORIGIN", &origin).replace("${ORIGIN}", &origin));
        let mut dirs: Vec<PathBuf> = Vec::new();
        if info.runpath.is_empty() {
            dirs.extend(info.rpath.iter().map(expand));
        }
        dirs.extend(info.runpath.iter().map(expand));
        dirs.extend(search.iter().cloned());
        for name in &info.needed {
            if !done_names.insert(name.clone()) {
                continue;
            }
            // The interpreter is also listed as needed by libc; already handled.
            if root.interpreter.as_deref().is_some_and(|i| {
                Path::new(i)
                    .file_name()
                    .map(|f| f.to_string_lossy() == name.as_str())
                    .unwrap_or(false)
            }) {
                continue;
            }
            // (path inside the system, where it is on this host)
            let found = if name.contains('/') {
                host_path_in(sysroot, Path::new(name)).map(|h| (PathBuf::from(name), h))
            } else {
                dirs.iter()
                    .filter_map(|d| {
                        let inside = d.join(name);
                        host_path_in(sysroot, &inside).map(|h| (inside, h))
                    })
                    .find(|(_, c)| {
                        std::fs::read(c)
                            .ok()
                            .and_then(|d| inspect(&d).ok())
                            .is_some_and(|i| i.class64 == root.class64 && i.machine == root.machine)
                    })
            };
            let Some(found) = found else {
                return Err(ElfError::Missing {
                    path: path.clone(),
                    lib: name.clone(),
                    searched: dirs
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":"),
                });
            };
            let (inside, found) = found;
            let ldata = read(&found)?;
            let linfo = inspect(&ldata).map_err(|reason| ElfError::Parse {
                path: found.clone(),
                reason,
            })?;
            let guest = inside.to_string_lossy().into_owned();
            out.insert(
                guest.clone(),
                LibFile {
                    host: found.clone(),
                    guest,
                },
            );
            queue.push_back((inside, linfo));
        }
    }
    Ok(out.into_values().collect())
}

/// The distinct directories of `libs` (for the guest's `LD_LIBRARY_PATH`).
pub fn lib_dirs<'a>(libs: impl IntoIterator<Item = &'a LibFile>) -> Vec<String> {
    let mut v: Vec<String> = libs
        .into_iter()
        .filter_map(|l| {
            Path::new(&l.guest)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ld_so_conf_with_includes_and_comments() {
        let text = "# comment\ninclude /etc/ld.so.conf.d/*.conf\n/opt/lib  # trailing\n\ninclude  /x/y.conf\n";
        let mut seen = Vec::new();
        let dirs = parse_ld_so_conf(text, &mut |p| {
            seen.push(p.to_string());
            vec![format!("{p}-dir")]
        });
        assert_eq!(seen, ["/etc/ld.so.conf.d/*.conf", "/x/y.conf"]);
        assert_eq!(
            dirs,
            ["/etc/ld.so.conf.d/*.conf-dir", "/opt/lib", "/x/y.conf-dir"]
        );
    }

    #[test]
    fn include_glob_reads_files_in_order() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b.conf"), "/b\n").unwrap();
        std::fs::write(d.path().join("a.conf"), "/a\n# x\n").unwrap();
        std::fs::write(d.path().join("c.txt"), "/c\n").unwrap();
        let pat = format!("{}/*.conf", d.path().display());
        assert_eq!(include_glob(Path::new("/"), &pat, 0), ["/a", "/b"]);
    }

    #[test]
    fn static_busybox_and_dynamic_ls() {
        // Both come with every Debian host (busybox-static is a labctl requirement).
        let bb = std::fs::read("/bin/busybox").expect("busybox-static installed");
        let info = inspect(&bb).unwrap();
        assert!(info.is_static(), "{info:?}");
        let ls = inspect(&std::fs::read("/bin/ls").unwrap()).unwrap();
        assert!(!ls.is_static());
        assert!(
            ls.interpreter.as_deref().unwrap().contains("ld-linux"),
            "{ls:?}"
        );
        assert!(ls.needed.iter().any(|n| n.starts_with("libc.so")), "{ls:?}");
        assert!(inspect(b"#!/bin/sh\n").is_err());
    }

    #[test]
    fn closure_of_a_program_linked_against_libelf_and_zlib() {
        // Like a samples/bpf user program: needs libelf, which needs libz, plus libc.
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("p.c");
        std::fs::write(
            &src,
            "#include <libelf.h>\nint main(void){return elf_version(EV_CURRENT)==EV_NONE;}\n",
        )
        .unwrap();
        let bin = d.path().join("p");
        let st = std::process::Command::new("cc")
            .arg(&src)
            .arg("-o")
            .arg(&bin)
            .arg("-lelf")
            .status()
            .unwrap();
        assert!(st.success(), "cc with libelf-dev");
        let libs = resolve_closure(&bin, &host_search_dirs()).unwrap();
        let names: Vec<String> = libs
            .iter()
            .map(|l| {
                Path::new(&l.guest)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        for want in [
            "libelf.so.1",
            "libz.so.1",
            "libc.so.6",
            "ld-linux-x86-64.so.2",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "missing {want} in {names:?}"
            );
        }
        for l in &libs {
            assert!(l.host.exists(), "{l:?}");
        }
        // No 32-bit library sneaks in.
        assert!(libs.iter().all(|l| !l.guest.contains("lib32")), "{libs:?}");
        assert!(lib_dirs(&libs)
            .iter()
            .any(|d| d.ends_with("x86_64-linux-gnu")));
    }

    /// Compile `lib<name>.so` into `libdir` and a program `m` in `work` linked against it
    /// (with the host's cc): (library, program).
    fn program_with_own_library(work: &Path, libdir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let src = work.join("lib.c");
        std::fs::write(&src, "int f(void){return 1;}\n").unwrap();
        let so = libdir.join(format!("lib{name}.so"));
        assert!(std::process::Command::new("cc")
            .args(["-shared", "-fPIC"])
            .arg(&src)
            .arg("-o")
            .arg(&so)
            .status()
            .unwrap()
            .success());
        let main = work.join("m.c");
        std::fs::write(&main, "int f(void); int main(void){return f();}\n").unwrap();
        let bin = work.join("m");
        assert!(std::process::Command::new("cc")
            .arg(&main)
            .arg("-o")
            .arg(&bin)
            .arg(format!("-L{}", libdir.display()))
            .arg(format!("-l{name}"))
            .status()
            .unwrap()
            .success());
        (so, bin)
    }

    #[test]
    fn a_missing_library_is_named() {
        let d = tempfile::tempdir().unwrap();
        let (so, bin) = program_with_own_library(d.path(), d.path(), "onlyhere");
        let e = resolve_closure(&bin, &host_search_dirs()).unwrap_err();
        assert!(
            matches!(&e, ElfError::Missing { lib, .. } if lib == "libonlyhere.so"),
            "{e}"
        );
        // With the directory on the search path it resolves.
        let mut dirs = vec![d.path().to_path_buf()];
        dirs.extend(host_search_dirs());
        let libs = resolve_closure(&bin, &dirs).unwrap();
        assert!(libs.iter().any(|l| l.host == so), "{libs:?}");
    }

    #[test]
    fn closures_of_programs_built_in_another_root_come_from_that_root() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let multi = root.join("lib/x86_64-linux-gnu");
        let extra = root.join("opt/extra");
        std::fs::create_dir_all(&multi).unwrap();
        std::fs::create_dir_all(&extra).unwrap();
        std::fs::create_dir_all(root.join("lib64")).unwrap();
        std::fs::create_dir_all(root.join("etc/ld.so.conf.d")).unwrap();
        std::fs::write(
            root.join("etc/ld.so.conf"),
            "include /etc/ld.so.conf.d/*.conf\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/ld.so.conf.d/x.conf"), "/opt/extra\n").unwrap();
        // The root's C library and loader: the host's files under names the host lacks,
        // reached through an *absolute* link as in bullseye's /lib64.
        let host_libc = host_search_dirs()
            .into_iter()
            .map(|d| d.join("libc.so.6"))
            .find(|p| p.is_file())
            .unwrap();
        std::fs::copy(&host_libc, multi.join("libc-9.99.so")).unwrap();
        symlink("libc-9.99.so", multi.join("libc.so.6")).unwrap();
        let host_ld = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap();
        std::fs::copy(&host_ld, multi.join("ld-9.99.so")).unwrap();
        symlink(
            "/lib/x86_64-linux-gnu/ld-9.99.so",
            root.join("lib64/ld-linux-x86-64.so.2"),
        )
        .unwrap();
        // A library only the root has, in a folder only its ld.so.conf names.
        let (so, bin) = program_with_own_library(d.path(), &extra, "onlyroot");

        assert_eq!(
            host_path_in(&root, Path::new("/lib64/ld-linux-x86-64.so.2")),
            Some(multi.join("ld-9.99.so"))
        );
        assert_eq!(host_path_in(&root, Path::new("/lib/nothing.so")), None);
        // A link that climbs out with .. stays inside the root.
        symlink("../../../../../etc/passwd", multi.join("climb")).unwrap();
        assert_eq!(
            host_path_in(&root, Path::new("/lib/x86_64-linux-gnu/climb")),
            None,
            "the root has no /etc/passwd, so the link must not find the host's"
        );

        let search = search_dirs_in(&root);
        assert!(search.contains(&PathBuf::from("/opt/extra")), "{search:?}");
        let libs = resolve_closure_in(&bin, &root, &search).unwrap();
        let by_guest = |g: &str| libs.iter().find(|l| l.guest == g).map(|l| l.host.clone());
        assert_eq!(by_guest("/opt/extra/libonlyroot.so"), Some(so.clone()));
        assert_eq!(
            by_guest("/lib/x86_64-linux-gnu/libc.so.6"),
            Some(multi.join("libc-9.99.so"))
        );
        assert_eq!(
            by_guest("/lib64/ld-linux-x86-64.so.2"),
            Some(multi.join("ld-9.99.so"))
        );
        assert!(libs.iter().all(|l| l.host.starts_with(&root)), "{libs:?}");
        // The host cannot resolve it: the library exists only in the root.
        assert!(resolve_closure(&bin, &host_search_dirs()).is_err());
    }
}
