//! Host-side builds of `examples-bpf/` for the guest: the BPF objects (clang
//! `-target bpf`) and static loaders (the host's libbpf.a + libelf.a + libz.a), made by
//! each example's own Makefile from sources embedded in the binary. Cached in
//! `$LABCTL_HOME/examples/<key>/` keyed by the sources and the compilers' versions, and
//! renamed into place only when every example built.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::IoContext;
use crate::events::EventSink;
use crate::home::Home;
use crate::process::Cmd;

use super::SuiteError;

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
];

/// Built examples.
#[derive(Debug, Clone)]
pub struct Examples {
    /// Folder holding [`OUTPUTS`].
    pub bin: PathBuf,
    /// Whether this call built them (false: cache hit).
    pub built: bool,
}

fn first_line(cmd: Cmd, sink: &dyn EventSink) -> String {
    cmd.timeout(Duration::from_secs(20))
        .run(sink)
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout_str().lines().next().unwrap_or("").to_string())
        .unwrap_or_else(|| "missing".into())
}

/// Cache key: sources + clang and cc versions.
pub fn key(clang_version: &str, cc_version: &str) -> String {
    let mut h = Sha256::new();
    for (p, c) in SOURCES {
        h.update(p.as_bytes());
        h.update([0]);
        h.update(c.as_bytes());
        h.update([0]);
    }
    h.update(clang_version.as_bytes());
    h.update([0]);
    h.update(cc_version.as_bytes());
    hex::encode(&h.finalize()[..6])
}

/// Write the embedded sources under `dir`.
pub fn write_sources(dir: &Path, sources: &[(&str, &str)]) -> Result<(), crate::Error> {
    for (rel, text) in sources {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap())
            .ctx("create directory", p.parent().unwrap())?;
        std::fs::write(&p, text).ctx("write", &p)?;
    }
    Ok(())
}

/// Build (or reuse) the examples for the guest.
pub fn build(home: &Home, sink: &dyn EventSink) -> Result<Examples, SuiteError> {
    let clang = first_line(Cmd::new("clang").arg("--version"), sink);
    let cc = first_line(Cmd::new("cc").arg("--version"), sink);
    let root = home.root().join("examples");
    let final_dir = root.join(key(&clang, &cc));
    let bin = final_dir.join("bin");
    if OUTPUTS.iter().all(|o| bin.join(o).is_file()) {
        return Ok(Examples { bin, built: false });
    }
    let _lock = home
        .lock("examples")
        .map_err(|e| SuiteError::Io(e.to_string()))?;
    if OUTPUTS.iter().all(|o| bin.join(o).is_file()) {
        return Ok(Examples { bin, built: false });
    }
    // What the examples need is doctor's data (requirements.toml, groups samples +
    // examples): check it before building so a missing package is named, not met as a
    // compiler error. Only here: a cached build needs nothing from the host.
    let advice = crate::doctor::missing_advice(
        &[
            crate::doctor::Group::Samples,
            crate::doctor::Group::Examples,
        ],
        sink,
    );
    if !advice.is_empty() {
        return Err(SuiteError::Toolchain(format!(
            "the host cannot build examples-bpf:\n{advice}"
        )));
    }
    let timer = sink.stage(
        "examples",
        "building examples-bpf (clang -target bpf, static libbpf loaders)",
    );
    let tmp = root.join(format!(".tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let src = tmp.join("src");
    let out = tmp.join("bin");
    write_sources(&src, SOURCES).map_err(|e| SuiteError::Io(e.to_string()))?;
    std::fs::create_dir_all(&out)
        .map_err(|e| SuiteError::Io(format!("create {}: {e}", out.display())))?;
    for d in DIRS {
        let cmd = Cmd::new("make")
            .arg("-C")
            .arg(src.join(d))
            .arg(format!("OUT={}", out.display()))
            .timeout(Duration::from_secs(300));
        let o = cmd
            .run(sink)
            .map_err(|e| SuiteError::Toolchain(e.to_string()))?;
        if !o.success() {
            let stderr = o.stderr_str();
            let tail: Vec<&str> = stderr
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let text = tail.join("\n");
            let hint = if text.contains("bpf/")
                || text.contains("-lbpf")
                || text.contains("-lelf")
                || text.contains("-lz")
            {
                "\nhint: the loaders include <bpf/...> and link the host's static libbpf, libelf and zlib; `labctl doctor` checks for them"
            } else if text.contains("asm/types.h") || text.contains("stubs-32.h") {
                "\nhint: BPF objects need the multiarch headers: install gcc-multilib (Debian/Ubuntu)"
            } else {
                ""
            };
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(SuiteError::Toolchain(format!(
                "building examples-bpf/{d} failed: `{}`\n{text}{hint}",
                cmd.reproducer()
            )));
        }
    }
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&tmp, &final_dir).map_err(|e| {
        SuiteError::Io(format!(
            "rename {} -> {}: {e}",
            tmp.display(),
            final_dir.display()
        ))
    })?;
    timer.ok();
    Ok(Examples { bin, built: true })
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
    let _lock = home
        .lock("bcc-headers")
        .map_err(|e| SuiteError::Io(e.to_string()))?;
    let tmp = root.join(format!(".tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("arch/x86"))
        .map_err(|e| SuiteError::Io(format!("create {}: {e}", tmp.display())))?;
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
        std::fs::create_dir_all(if from.is_dir() { &dest } else { &to })
            .map_err(|e| SuiteError::Io(e.to_string()))?;
        Cmd::new("cp")
            .arg("-a")
            .arg(&arg)
            .arg(&dest)
            .timeout(Duration::from_secs(300))
            .run_checked(sink)
            .map_err(|e| SuiteError::Io(format!("preparing BCC headers: {e}")))?;
    }
    let _ = std::fs::copy(build_tree.join(".config"), tmp.join(".config"));
    std::fs::write(tmp.join(".complete"), b"").map_err(|e| SuiteError::Io(e.to_string()))?;
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::rename(&tmp, &dst).map_err(|e| {
        SuiteError::Io(format!(
            "rename {} -> {}: {e}",
            tmp.display(),
            dst.display()
        ))
    })?;
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_the_toolchain() {
        assert_ne!(key("clang 14", "gcc 12"), key("clang 15", "gcc 12"));
        assert_eq!(key("clang 14", "gcc 12"), key("clang 14", "gcc 12"));
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
