//! Host-side builds of `examples-bpf/` for the guest: the BPF objects (clang
//! `-target bpf`) and the loaders against the host's libbpf, made by each example's own
//! Makefile from sources embedded in the binary, with the link flags pkg-config gives.
//! Each loader is linked static where that works (`pkg-config --static --libs libbpf`),
//! else dynamic (`pkg-config --libs libbpf`): Debian 13's libelf.a (elfutils 0.192)
//! cannot be linked statically at all. A dynamic loader goes into the guest with its
//! shared-library closure and interpreter (the VM harness copies them). Cached in
//! `$LABCTL_HOME/examples/<key>/` keyed by the sources, the compilers' versions and the
//! link inputs ([`BuildInputs`]), with `link.json` saying how each directory was linked,
//! and renamed into place only when every example built.
//!
//! For a foreign architecture ([`Target`]) the loaders are cross-compiled with that
//! architecture's gcc and `--sysroot` set to its guest userland root (whose libbpf,
//! libelf, zlib and C library, static and shared, are Debian's for that architecture);
//! pkg-config is asked inside the root. The BPF objects are the same as on the host:
//! they use no architecture's register layout (`-D__TARGET_ARCH_x86` is unused by
//! them) and both architectures are little-endian, so one CO-RE object runs on either.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::events::{EventSink, Stage};
use crate::home::Home;
use crate::process::Cmd;

use super::{io_err, SuiteError};

/// (relative path, contents) of every example source labctl builds for the guest.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "hello/Makefile",
        include_str!("../../../examples-bpf/hello/Makefile"),
    ),
    (
        "hello/hello.bpf.c",
        include_str!("../../../examples-bpf/hello/hello.bpf.c"),
    ),
    (
        "hello/hello.c",
        include_str!("../../../examples-bpf/hello/hello.c"),
    ),
    (
        "cbpf-port80/Makefile",
        include_str!("../../../examples-bpf/cbpf-port80/Makefile"),
    ),
    (
        "cbpf-port80/cbpf_port80.c",
        include_str!("../../../examples-bpf/cbpf-port80/cbpf_port80.c"),
    ),
    (
        "core-hello/Makefile",
        include_str!("../../../examples-bpf/core-hello/Makefile"),
    ),
    (
        "core-hello/core_hello.bpf.c",
        include_str!("../../../examples-bpf/core-hello/core_hello.bpf.c"),
    ),
    (
        "core-hello/core_hello.c",
        include_str!("../../../examples-bpf/core-hello/core_hello.c"),
    ),
    (
        "checks/Makefile",
        include_str!("../../../examples-bpf/checks/Makefile"),
    ),
    (
        "checks/btf_check.c",
        include_str!("../../../examples-bpf/checks/btf_check.c"),
    ),
    (
        "checks/ptyrun.c",
        include_str!("../../../examples-bpf/checks/ptyrun.c"),
    ),
];

/// BCC's hello world (run from the host's filesystem over vng's 9p root).
pub const BCC_SOURCES: &[(&str, &str)] = &[
    (
        "hello-bcc/hello.c",
        include_str!("../../../examples-bpf/hello-bcc/hello.c"),
    ),
    (
        "hello-bcc/hello.py",
        include_str!("../../../examples-bpf/hello-bcc/hello.py"),
    ),
];

/// The example directories built (each has a Makefile taking OUT=).
const DIRS: &[&str] = &["hello", "cbpf-port80", "core-hello", "checks"];

/// Files the guest needs, all in one flat `bin` folder.
pub const OUTPUTS: &[&str] = &[
    "hello",
    "hello.bpf.o",
    "cbpf-port80",
    "core-hello",
    "core_hello.bpf.o",
    "btf-check",
    "ptyrun",
];

/// How a loader is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    /// `-static` with `pkg-config --static --libs libbpf`: one self-contained file.
    Static,
    /// Against the shared libraries (`pkg-config --libs libbpf`): the guest gets the
    /// loader's shared-library closure and interpreter too.
    Dynamic,
}

impl Link {
    /// The Makefiles' `LINK=` value.
    pub fn make_value(self) -> &'static str {
        match self {
            Link::Static => "static",
            Link::Dynamic => "dynamic",
        }
    }
}

/// How one example directory was linked (`link.json` next to `bin/`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkRecord {
    pub dir: String,
    pub link: Link,
    /// Why the static link failed, when it did (the linker's first error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_failure: Option<String>,
}

/// Built examples.
#[derive(Debug, Clone)]
pub struct Examples {
    /// Folder holding [`OUTPUTS`].
    pub bin: PathBuf,
    /// Whether this call built them (false: cache hit).
    pub built: bool,
    /// How each example directory was linked.
    pub links: Vec<LinkRecord>,
}

fn first_line(cmd: Cmd, sink: &dyn EventSink) -> String {
    cmd.timeout(Duration::from_secs(20))
        .run(sink)
        .ok()
        .filter(|o| o.success())
        .map(|o| {
            o.stdout_str()
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| "missing".into())
}

/// Which architecture the loaders are built for, and its guest userland root (None for
/// the host's own: its compiler and libraries).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub arch: &'static crate::arch::Arch,
    pub root: Option<&'a Path>,
}

impl Target<'_> {
    pub fn host() -> Target<'static> {
        Target {
            arch: crate::arch::Arch::host(),
            root: None,
        }
    }
    /// The loaders' C compiler as make's `CC` (one word per argv element is not
    /// needed: make splits it).
    fn cc(&self) -> String {
        match (self.arch.cross_prefix(), self.root) {
            (Some(_), Some(root)) => self.arch.sysroot_cc(root),
            _ => "cc".to_string(),
        }
    }
    /// pkg-config for the target: inside the root for a foreign one.
    fn pkg_config(&self, args: &[&str]) -> Cmd {
        let c = Cmd::new("pkg-config").args(args);
        match self.root.filter(|_| !self.arch.is_host()) {
            None => c,
            Some(root) => {
                let triplet = self.arch.multiarch.as_str();
                let libdir = format!(
                    "{0}/usr/lib/{triplet}/pkgconfig:{0}/usr/share/pkgconfig:{0}/usr/lib/pkgconfig",
                    root.display()
                );
                c.env("PKG_CONFIG_SYSROOT_DIR", root)
                    .env("PKG_CONFIG_LIBDIR", libdir)
                    .env_remove("PKG_CONFIG_PATH")
            }
        }
    }
}

/// Everything besides the sources that decides what the build makes: the compilers,
/// the link flags (from pkg-config) and what decides whether a static link can work
/// (the libraries' versions, which static archives exist). All of it is in the key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildInputs {
    pub clang: String,
    pub cc: String,
    /// `pkg-config --static --libs libbpf` (what LINK=static links with).
    pub static_libs: String,
    /// `pkg-config --libs libbpf` (what LINK=dynamic links with).
    pub shared_libs: String,
    /// `pkg-config --modversion` of libbpf, libelf and zlib.
    pub lib_versions: String,
    /// For each `-lNAME` of `static_libs`: the `libNAME.a` found, or `NAME=-`.
    pub archives: String,
}

impl BuildInputs {
    /// Ask the host's compilers and pkg-config.
    pub fn probe(sink: &dyn EventSink) -> BuildInputs {
        Self::probe_for(&Target::host(), sink)
    }

    /// Ask the compilers and pkg-config that build for `target`.
    pub fn probe_for(target: &Target, sink: &dyn EventSink) -> BuildInputs {
        let clang = first_line(Cmd::new("clang").arg("--version"), sink);
        let cc_prog = match target.arch.cross_prefix() {
            Some(_) => target.arch.gcc(),
            None => "cc".to_string(),
        };
        let cc = first_line(Cmd::new(&cc_prog).arg("--version"), sink);
        let pc = |args: &[&str]| first_line(target.pkg_config(args), sink);
        let static_libs = pc(&["--static", "--libs", "libbpf"]);
        let shared_libs = pc(&["--libs", "libbpf"]);
        let lib_versions = ["libbpf", "libelf", "zlib"]
            .iter()
            .map(|m| format!("{m}={}", pc(&["--modversion", m])))
            .collect::<Vec<_>>()
            .join(" ");
        let multiarch = first_line(Cmd::new(&cc_prog).arg("-dumpmachine"), sink);
        let mut dirs = crate::doctor::library_dirs(&multiarch);
        if let Some(root) = target.root.filter(|_| !target.arch.is_host()) {
            dirs = dirs
                .iter()
                .map(|d| root.join(d.strip_prefix("/").unwrap_or(d)))
                .collect();
        }
        let archives = static_archives(&static_libs, &dirs);
        BuildInputs {
            clang,
            cc,
            static_libs,
            shared_libs,
            lib_versions,
            archives,
        }
    }

    /// Cache key: sources + every input.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        for (p, c) in SOURCES {
            h.update(p.as_bytes());
            h.update([0]);
            h.update(c.as_bytes());
            h.update([0]);
        }
        for v in [
            &self.clang,
            &self.cc,
            &self.static_libs,
            &self.shared_libs,
            &self.lib_versions,
            &self.archives,
        ] {
            h.update(v.as_bytes());
            h.update([0]);
        }
        hex::encode(&h.finalize()[..6])
    }

    /// The flags for `LDLIBS=` in this link mode.
    fn ldlibs(&self, link: Link) -> &str {
        match link {
            Link::Static => &self.static_libs,
            Link::Dynamic => &self.shared_libs,
        }
    }
}

/// Which static archive each `-lNAME` of `flags` resolves to: `-L` folders first, then
/// `dirs`. Pure but for file lookups.
pub fn static_archives(flags: &str, dirs: &[PathBuf]) -> String {
    let extra: Vec<PathBuf> = flags
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("-L"))
        .map(PathBuf::from)
        .collect();
    flags
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("-l"))
        .map(|name| {
            let file = format!("lib{name}.a");
            match extra
                .iter()
                .chain(dirs)
                .map(|d| d.join(&file))
                .find(|p| p.is_file())
            {
                Some(p) => format!("{name}={}", p.display()),
                None => format!("{name}=-"),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The linker's first complaint in a failed build's stderr, for one line of text.
pub fn first_link_error(stderr: &str) -> String {
    const MARKS: &[&str] = &[
        "undefined reference to",
        "cannot find -l",
        "error:",
        "Error",
    ];
    for m in MARKS {
        if let Some(l) = stderr.lines().find(|l| l.contains(m)) {
            let at = l.find(m).unwrap();
            let s = l[at..].trim();
            return s.chars().take(200).collect();
        }
    }
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .chars()
        .take(200)
        .collect()
}

/// The last lines of a failed command's stderr.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Write the embedded sources under `dir`.
pub fn write_sources(dir: &Path, sources: &[(&str, &str)]) -> Result<(), SuiteError> {
    for (rel, text) in sources {
        let p = dir.join(rel);
        let parent = p.parent().unwrap();
        std::fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
        std::fs::write(&p, text).map_err(io_err("write", &p))?;
    }
    Ok(())
}

const LINK_JSON: &str = "link.json";

/// A finished build folder: every output and how each directory was linked.
fn finished(dir: &Path) -> Option<Vec<LinkRecord>> {
    let bin = dir.join("bin");
    if !OUTPUTS.iter().all(|o| bin.join(o).is_file()) {
        return None;
    }
    let text = std::fs::read_to_string(dir.join(LINK_JSON)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Examples shipped inside a pulled build (`artifacts/examples/`, the `examples` layer
/// of `kernel push`): built on the pushing host, used instead of building them here, so
/// a host that only pulls needs no compiler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prebuilt {
    /// Folder holding [`OUTPUTS`].
    pub bin: PathBuf,
    /// The shared libraries of the dynamic loaders (`artifacts/examples/sysroot`), when
    /// any was linked dynamically.
    pub sysroot: Option<PathBuf>,
    pub links: Vec<LinkRecord>,
}

/// The prebuilt examples of the build folder `build_dir`, when it has a complete set.
pub fn prebuilt(build_dir: &Path) -> Option<Prebuilt> {
    let dir = build_dir.join("artifacts").join("examples");
    let links = finished(&dir)?;
    let sysroot = dir.join("sysroot");
    Some(Prebuilt {
        bin: dir.join("bin"),
        sysroot: sysroot.is_dir().then_some(sysroot),
        links,
    })
}

/// Build (or reuse) the examples for the guest. Each directory is linked static when
/// that works on this host, else dynamic (the guest then gets the loader's shared
/// libraries: its payload is marked `with_libs`).
pub fn build(home: &Home, target: &Target, sink: &dyn EventSink) -> Result<Examples, SuiteError> {
    let inputs = BuildInputs::probe_for(target, sink);
    let root = home.root().join("examples");
    let final_dir = root.join(inputs.key());
    let bin = final_dir.join("bin");
    if let Some(links) = finished(&final_dir) {
        return Ok(Examples {
            bin,
            built: false,
            links,
        });
    }
    let _lock = home.lock(&crate::home::CacheKey::Examples)?;
    if let Some(links) = finished(&final_dir) {
        return Ok(Examples {
            bin,
            built: false,
            links,
        });
    }
    // What the examples need is doctor's data (requirements.toml, groups samples +
    // examples): check it before building so a missing package is named, not met as a
    // compiler error. Only here: a cached build needs nothing from the host.
    let mut advice = crate::doctor::missing_advice(
        &[
            crate::doctor::Group::Samples,
            crate::doctor::Group::Examples,
        ],
        sink,
    );
    advice.push_str(&crate::doctor::missing_for_arch(target.arch, sink));
    if !advice.is_empty() {
        return Err(SuiteError::Toolchain(format!(
            "the host cannot build examples-bpf:\n{advice}"
        )));
    }
    if inputs.shared_libs == "missing" || inputs.static_libs == "missing" {
        return Err(SuiteError::Toolchain(
            "`pkg-config --libs libbpf` failed: pkg-config finds no libbpf.pc (Debian: libbpf-dev; elsewhere libbpf's devel package, or set PKG_CONFIG_PATH)".into(),
        ));
    }
    let timer = sink.stage(
        Stage::Examples,
        "building examples-bpf (clang -target bpf; loaders static where that links, else dynamic)",
    );
    let tmp = root.join(format!(".tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let src = tmp.join("src");
    let out = tmp.join("bin");
    write_sources(&src, SOURCES)?;
    std::fs::create_dir_all(&out).map_err(io_err("create", &out))?;
    // The BPF objects are built as on the host (see the module docs), for any target.
    let host_inc = format!(
        "ARCH_INC=/usr/include/{}",
        first_line(Cmd::new("cc").arg("-dumpmachine"), sink)
    );
    let make = |d: &str, link: Link| {
        let cmd = Cmd::new("make")
            .arg("-C")
            .arg(src.join(d))
            .arg(format!("CC={}", target.cc()))
            .arg(&host_inc)
            .arg(format!("OUT={}", out.display()))
            .arg(format!("LINK={}", link.make_value()))
            .arg(format!("LDLIBS={}", inputs.ldlibs(link)))
            .timeout(Duration::from_secs(300));
        let o = cmd.run(sink)?;
        Ok::<_, SuiteError>((cmd.reproducer(), o))
    };
    let mut links = Vec::new();
    for d in DIRS {
        let (_, st) = make(d, Link::Static)?;
        if st.success() {
            links.push(LinkRecord {
                dir: d.to_string(),
                link: Link::Static,
                static_failure: None,
            });
            continue;
        }
        let why = first_link_error(&st.stderr_str());
        let (repro, dy) = make(d, Link::Dynamic)?;
        if dy.success() {
            links.push(LinkRecord {
                dir: d.to_string(),
                link: Link::Dynamic,
                static_failure: Some(why),
            });
            continue;
        }
        let text = tail(&dy.stderr_str(), 15);
        let hint = if text.contains("bpf/")
            || text.contains("-lbpf")
            || text.contains("-lelf")
            || text.contains("-lz")
        {
            "\nhint: the loaders include <bpf/...> and link libbpf, libelf and zlib with the flags `pkg-config --libs libbpf` gives; `labctl doctor` checks for them"
        } else if text.contains("asm/types.h") || text.contains("stubs-32.h") {
            "\nhint: BPF objects need the multiarch asm/ headers: install linux-libc-dev (Debian/Ubuntu; `labctl doctor --install`)"
        } else {
            ""
        };
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(SuiteError::Toolchain(format!(
            "building examples-bpf/{d} failed: `{repro}`\n{text}{hint}\n(the static attempt failed too: {why})"
        )));
    }
    let json = serde_json::to_vec_pretty(&links).expect("serializable");
    std::fs::write(tmp.join(LINK_JSON), json).map_err(io_err("write", &tmp.join(LINK_JSON)))?;
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&tmp, &final_dir).map_err(|source| SuiteError::Rename {
        from: tmp.clone(),
        to: final_dir.clone(),
        source,
    })?;
    timer.ok();
    let dynamic: Vec<&LinkRecord> = links.iter().filter(|l| l.link == Link::Dynamic).collect();
    if let Some(first) = dynamic.first() {
        let names: Vec<&str> = dynamic.iter().map(|l| l.dir.as_str()).collect();
        sink.emit(crate::events::Event::Notice {
            topic: "examples-link".into(),
            text: format!(
                "examples-bpf: {} linked dynamically, a static link fails on this host ({}); the guest gets their shared libraries",
                names.join(", "),
                first.static_failure.as_deref().unwrap_or("?")
            ),
        });
    }
    Ok(Examples {
        bin,
        built: true,
        links,
    })
}

/// A kernel header folder BCC can use as `BCC_KERNEL_SOURCE` for a kernel without
/// CONFIG_IKHEADERS. BCC wants one folder holding both the source headers and the
/// generated ones; an `O=` build splits them (the build folder has a `source` link), so
/// they are merged once into `$LABCTL_HOME/examples/bcc-headers/<release>/`. A tree that
/// is not split is used as it is. The folder must be visible in the vng guest, which
/// shares the host root but hides /tmp and /var/tmp.
pub fn bcc_headers(
    home: &Home,
    build_tree: &Path,
    release: &str,
    sink: &dyn EventSink,
) -> Result<PathBuf, SuiteError> {
    let src = build_tree.join("source");
    if !src.join("include/linux/kconfig.h").is_file() {
        return Ok(build_tree.to_path_buf());
    }
    let safe: String = release
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let root = home.root().join("examples").join("bcc-headers");
    let dst = root.join(&safe);
    if dst.join(".complete").is_file() {
        return Ok(dst);
    }
    let _lock = home.lock(&crate::home::CacheKey::BccHeaders)?;
    let tmp = root.join(format!(".tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("arch/x86")).map_err(io_err("create", &tmp))?;
    // Source headers first, then the generated ones on top.
    let copies: [(PathBuf, PathBuf); 7] = [
        (src.join("include"), tmp.clone()),
        (src.join("Makefile"), tmp.clone()),
        (src.join("scripts"), tmp.clone()),
        (src.join("arch/x86/include"), tmp.join("arch/x86")),
        (src.join("arch/x86/Makefile"), tmp.join("arch/x86")),
        (build_tree.join("include"), tmp.clone()),
        (build_tree.join("arch/x86/include"), tmp.join("arch/x86")),
    ];
    for (from, to) in copies {
        if !from.exists() {
            continue;
        }
        // `cp -a dir/. dest/dir` merges; plain files are copied into `to`.
        let (arg, dest) = if from.is_dir() {
            (from.join("."), to.join(from.file_name().unwrap()))
        } else {
            (from.clone(), to.clone())
        };
        let dir = if from.is_dir() { &dest } else { &to };
        std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        Cmd::new("cp")
            .arg("-a")
            .arg(&arg)
            .arg(&dest)
            .timeout(Duration::from_secs(300))
            .run_checked(sink)
            .map_err(SuiteError::BccHeaders)?;
    }
    let _ = std::fs::copy(build_tree.join(".config"), tmp.join(".config"));
    let complete = tmp.join(".complete");
    std::fs::write(&complete, b"").map_err(io_err("write", &complete))?;
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::rename(&tmp, &dst).map_err(|source| SuiteError::Rename {
        from: tmp.clone(),
        to: dst.clone(),
        source,
    })?;
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_every_input() {
        let base = BuildInputs {
            clang: "clang 14".into(),
            cc: "gcc 12".into(),
            static_libs: "-lbpf -lelf -lz".into(),
            shared_libs: "-lbpf".into(),
            lib_versions: "libbpf=1.1.0 libelf=0.188 zlib=1.2.13".into(),
            archives: "bpf=/usr/lib/libbpf.a elf=/usr/lib/libelf.a z=/usr/lib/libz.a".into(),
        };
        assert_eq!(base.key(), base.clone().key());
        let changes: [fn(&mut BuildInputs); 6] = [
            |b| b.clang = "clang 15".into(),
            |b| b.cc = "gcc 13".into(),
            |b| b.static_libs = "-lbpf -lelf -lzstd -pthread -lz".into(),
            |b| b.shared_libs = "-L/opt/lib -lbpf".into(),
            |b| b.lib_versions = "libbpf=1.5.0 libelf=0.192 zlib=1.3.1".into(),
            |b| b.archives = "bpf=/usr/lib/libbpf.a elf=- z=/usr/lib/libz.a".into(),
        ];
        for change in changes {
            let mut b = base.clone();
            change(&mut b);
            assert_ne!(b.key(), base.key(), "{b:?}");
        }
    }

    #[test]
    fn static_archives_follow_minus_l_and_minus_capital_l() {
        let d = tempfile::tempdir().unwrap();
        let (sys, extra) = (d.path().join("sys"), d.path().join("extra"));
        std::fs::create_dir_all(&sys).unwrap();
        std::fs::create_dir_all(&extra).unwrap();
        std::fs::write(sys.join("libbpf.a"), b"").unwrap();
        std::fs::write(sys.join("libz.a"), b"").unwrap();
        std::fs::write(extra.join("libz.a"), b"").unwrap();
        let flags = format!("-L{} -lbpf -lelf -pthread -lz", extra.display());
        assert_eq!(
            static_archives(&flags, std::slice::from_ref(&sys)),
            format!(
                "bpf={} elf=- z={}",
                sys.join("libbpf.a").display(),
                extra.join("libz.a").display()
            )
        );
    }

    #[test]
    fn the_linkers_first_complaint_is_kept() {
        // Debian 13's libelf.a (elfutils 0.192) in a static link.
        let trixie = "/usr/bin/ld: /usr/lib/x86_64-linux-gnu/libelf.a(elf_begin.o): in function `file_read_elf':\n(.text+0x2cb): undefined reference to `eu_search_tree_init'\n/usr/bin/ld: more\ncollect2: error: ld returned 1 exit status\n";
        assert_eq!(
            first_link_error(trixie),
            "undefined reference to `eu_search_tree_init'"
        );
        assert_eq!(
            first_link_error("/usr/bin/ld: cannot find -lzstd: No such file or directory\n"),
            "cannot find -lzstd: No such file or directory"
        );
        assert_eq!(first_link_error("\nsomething odd\n\n"), "something odd");
    }

    #[test]
    fn link_records_read_back() {
        let links = vec![
            LinkRecord {
                dir: "hello".into(),
                link: Link::Dynamic,
                static_failure: Some("undefined reference to `eu_search_tree_init'".into()),
            },
            LinkRecord {
                dir: "cbpf-port80".into(),
                link: Link::Static,
                static_failure: None,
            },
        ];
        let d = tempfile::tempdir().unwrap();
        assert!(finished(d.path()).is_none());
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        for o in OUTPUTS {
            std::fs::write(d.path().join("bin").join(o), b"x").unwrap();
        }
        assert!(finished(d.path()).is_none(), "no link.json: not finished");
        std::fs::write(
            d.path().join(LINK_JSON),
            serde_json::to_vec(&links).unwrap(),
        )
        .unwrap();
        assert_eq!(finished(d.path()).unwrap(), links);
        let text = String::from_utf8(serde_json::to_vec(&links).unwrap()).unwrap();
        assert!(text.contains("\"link\":\"dynamic\""), "{text}");
    }

    #[test]
    fn bcc_headers_merges_a_split_build_and_passes_a_plain_tree_through() {
        let d = tempfile::tempdir().unwrap();
        let home = Home::new(d.path().join("home"));
        let src = d.path().join("linux");
        let obj = d.path().join("obj");
        for (p, t) in [
            (src.join("include/linux/kconfig.h"), "src"),
            (src.join("arch/x86/include/asm/ptrace.h"), "src"),
            (obj.join("include/generated/autoconf.h"), "gen"),
            (obj.join("arch/x86/include/generated/asm/x.h"), "gen"),
            (obj.join(".config"), "CONFIG_BPF=y"),
        ] {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        }
        // Not split: used as is.
        assert_eq!(
            bcc_headers(&home, &obj, "5.10.46", &crate::events::NullSink).unwrap(),
            obj
        );
        std::os::unix::fs::symlink(&src, obj.join("source")).unwrap();
        let m = bcc_headers(&home, &obj, "5.10.46", &crate::events::NullSink).unwrap();
        assert!(m.starts_with(home.root()));
        for f in [
            "include/linux/kconfig.h",
            "include/generated/autoconf.h",
            "arch/x86/include/asm/ptrace.h",
            "arch/x86/include/generated/asm/x.h",
            ".config",
        ] {
            assert!(m.join(f).is_file(), "{f} missing in {}", m.display());
        }
    }

    #[test]
    fn sources_cover_every_built_dir() {
        for d in DIRS {
            assert!(
                SOURCES.iter().any(|(p, _)| *p == format!("{d}/Makefile")),
                "{d} has no Makefile"
            );
        }
    }
}
