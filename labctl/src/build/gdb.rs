//! The kernel's gdb helper scripts for a build: `make scripts_gdb` leaves
//! `vmlinux-gdb.py` (a link into the tree) and `scripts/gdb/linux/` (links plus the
//! generated `constants.py`) in the O= folder; gdb auto-loads the first as
//! `<objfile>-gdb.py` when it loads `obj/vmlinux`, which gives it lx-symbols, lx-dmesg,
//! lx-ps and the other lx- commands.
//!
//! This module owns which kernels have the target ([`has_target`]), whether a build
//! folder holds the output ([`present`]), the record in build.json
//! ([`GdbScriptsRecord`](super::metadata::GdbScriptsRecord)) and making the scripts on
//! demand for a build that has none yet ([`ensure`]: a build made before labctl had the
//! pipeline step). The pipeline runs the same make as a step after `headers_install`;
//! a failure there is recorded, never fatal: gdb works without the lx- commands.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::metadata::{BuildJson, GdbScriptsRecord};
use super::{BuildError, BuildOutput};
use crate::events::{EventSink, Stage};
use crate::home::{CacheKey, Home};
use crate::process::{Cmd, LineAction};

/// `NAME=value` pairs: make variables or environment.
type MakeArgs = Vec<(String, String)>;

/// The make target and the pipeline step's name.
pub const TARGET: &str = "scripts_gdb";

/// The kernel's Makefile has a `scripts_gdb` target (every kernel since 4.0).
pub fn has_target(src: &Path) -> bool {
    std::fs::read_to_string(src.join("Makefile"))
        .map(|t| t.lines().any(|l| l.starts_with("scripts_gdb:")))
        .unwrap_or(false)
}

/// The O= folder holds the loader and the generated part of the package it imports.
pub fn present(obj: &Path) -> bool {
    obj.join("vmlinux-gdb.py").is_file() && obj.join("scripts/gdb/linux/constants.py").is_file()
}

/// What gdb loads for a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GdbFiles {
    /// The unstripped vmlinux in the O= folder, next to `vmlinux-gdb.py`.
    pub vmlinux: PathBuf,
    /// The folder to name in gdb's `add-auto-load-safe-path`: the build folder (the O=
    /// folder and the private tree its links point into). None: no scripts.
    pub safe_path: Option<PathBuf>,
    /// Why there are no scripts, for the user (None when there are).
    pub missing: Option<String>,
}

/// Make sure the build's gdb scripts exist: nothing to do when they are there or a
/// recorded failure says they cannot be made; else `make scripts_gdb` against the build's
/// O= folder under the build's lock, with the make variables and environment the build
/// recorded, where the build ran (the host or its Debian toolchain root), and the
/// outcome recorded in build.json. A failing make is not an error: the answer says why
/// the scripts are missing. Errors are for what stops the attempt itself (the lock, the
/// toolchain root).
pub fn ensure(
    home: &Home,
    out: &BuildOutput,
    sink: &dyn EventSink,
) -> Result<GdbFiles, BuildError> {
    let obj = out.dir.join("obj");
    let src = out.dir.join("src");
    let vmlinux = if obj.join("vmlinux").is_file() {
        obj.join("vmlinux")
    } else {
        out.vmlinux.clone()
    };
    let files = |missing: Option<String>| GdbFiles {
        vmlinux: vmlinux.clone(),
        safe_path: missing.is_none().then(|| out.dir.clone()),
        missing,
    };
    if present(&obj) {
        return Ok(files(None));
    }
    if !obj.is_dir() || !has_target(&src) {
        return Ok(files(Some(format!(
            "{} has no kernel tree with a scripts_gdb target to make them from",
            out.dir.display()
        ))));
    }
    if let Some(GdbScriptsRecord {
        ok: false,
        error,
        log,
        ..
    }) = BuildJson::read(&out.dir).and_then(|m| m.gdb_scripts)
    {
        return Ok(files(Some(failure_text(error.as_deref(), log.as_deref()))));
    }
    let key = if out.key.is_empty() {
        out.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        out.key.clone()
    };
    let _lock = home.lock(&CacheKey::Build(key))?;
    let Some(mut meta) = BuildJson::read(&out.dir) else {
        return Ok(files(Some(format!(
            "{} has no readable build.json",
            out.dir.display()
        ))));
    };
    if present(&obj) {
        return Ok(files(None));
    }
    let userland = crate::userland::Userland::open(home, &meta.toolchain.userland, sink)?;
    let (vars, env) = if meta.make_vars.is_empty() && meta.make_env.is_empty() {
        reconstructed_make_args(home, &meta, &out.dir)
    } else {
        (meta.make_vars.clone(), meta.make_env.clone())
    };
    let mut cmd = Cmd::new("make")
        .cwd(&src)
        .env_remove("LC_ALL")
        .arg(format!("O={}", obj.display()));
    for (k, v) in &env {
        cmd = cmd.env(k, v);
    }
    for (k, v) in &vars {
        cmd = cmd.arg(format!("{k}={v}"));
    }
    let cmd = userland
        .wrap(cmd.arg(TARGET))
        .timeout(Duration::from_secs(1800));
    let logs = out.dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| BuildError::io("create directory", &logs, e))?;
    let log = logs.join("scripts_gdb.log");
    let t = sink.stage(
        Stage::Gdb,
        format!(
            "make scripts_gdb in {} (this build predates the step)",
            obj.display()
        ),
    );
    let r = cmd.run_streaming(sink, &log, |_| LineAction::Continue)?;
    let record = judge(r.code, &obj, &r.tail, &log);
    if record.ok {
        t.ok();
    } else {
        drop(t);
    }
    meta.gdb_scripts = Some(record.clone());
    meta.write(&out.dir)?;
    Ok(files((!record.ok).then(|| {
        failure_text(record.error.as_deref(), record.log.as_deref())
    })))
}

/// The record for a finished `make scripts_gdb`: exit 0 and the files there.
pub(crate) fn judge(
    code: Option<i32>,
    obj: &Path,
    tail: &[String],
    log: &Path,
) -> GdbScriptsRecord {
    let error = if code != Some(0) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        Some(
            super::diagnose::first_error_line(&text)
                .or_else(|| tail.last().cloned())
                .map(|l| {
                    format!(
                        "make scripts_gdb: {}: {l}",
                        crate::process::status_text(code)
                    )
                })
                .unwrap_or_else(|| {
                    format!("make scripts_gdb: {}", crate::process::status_text(code))
                }),
        )
    } else if !present(obj) {
        Some(format!(
            "make scripts_gdb left no vmlinux-gdb.py and scripts/gdb/linux/constants.py in {}",
            obj.display()
        ))
    } else {
        None
    };
    GdbScriptsRecord {
        ok: error.is_none(),
        error,
        log: Some(log.to_path_buf()),
    }
}

fn failure_text(error: Option<&str>, log: Option<&Path>) -> String {
    let mut s = error.unwrap_or("make scripts_gdb failed").to_string();
    if let Some(l) = log {
        s.push_str(&format!(" (log: {})", l.display()));
    }
    s
}

/// Make arguments for a build whose build.json predates `make_vars`: the compiler
/// wrapper and the pahole wrapper as the pipeline sets them up, and the fixed build
/// environment. A fix's own make variable is not reconstructed; at worst make redoes a
/// part of `prepare` for it.
fn reconstructed_make_args(home: &Home, meta: &BuildJson, dir: &Path) -> (MakeArgs, MakeArgs) {
    let mut vars = Vec::new();
    let mut env = super::pipeline::base_env();
    let w = meta.cc_wrapper.as_str();
    if !w.is_empty() && w != "none" {
        vars.push(("CC".to_string(), format!("{w} gcc")));
        vars.push(("HOSTCC".to_string(), format!("{w} gcc")));
        env.extend(super::pipeline::wrapper_env(home, w));
    }
    let pahole = dir.join("tools").join("pahole");
    if pahole.is_file() {
        vars.push(("PAHOLE".into(), pahole.to_string_lossy().into_owned()));
    }
    (vars, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_found_in_the_makefile() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("Makefile"),
            "PHONY += scripts_gdb\nscripts_gdb: prepare0\n\t$(Q)$(MAKE) $(build)=scripts/gdb\n",
        )
        .unwrap();
        assert!(has_target(d.path()));
        std::fs::write(
            d.path().join("Makefile"),
            "all: vmlinux\n# scripts_gdb: no\n",
        )
        .unwrap();
        assert!(!has_target(d.path()));
        assert!(!has_target(&d.path().join("missing")));
    }

    #[test]
    fn output_needs_the_loader_and_the_generated_constants() {
        let d = tempfile::tempdir().unwrap();
        let obj = d.path();
        let log = obj.join("x.log");
        std::fs::write(&log, "  GEN     scripts/gdb/linux/constants.py\n").unwrap();
        assert!(!present(obj));
        let r = judge(Some(0), obj, &[], &log);
        assert!(!r.ok && r.error.unwrap().contains("left no vmlinux-gdb.py"));
        std::fs::write(obj.join("vmlinux-gdb.py"), "").unwrap();
        std::fs::create_dir_all(obj.join("scripts/gdb/linux")).unwrap();
        std::fs::write(obj.join("scripts/gdb/linux/constants.py"), "").unwrap();
        assert!(present(obj));
        assert_eq!(
            judge(Some(0), obj, &[], &log),
            GdbScriptsRecord {
                ok: true,
                error: None,
                log: Some(log.clone())
            }
        );
        std::fs::write(&log, "scripts/gdb/linux/constants.py.in:1: error: boom\n").unwrap();
        let r = judge(Some(2), obj, &["make: *** [Makefile] Error 2".into()], &log);
        assert!(!r.ok);
        assert!(r
            .error
            .as_deref()
            .unwrap()
            .starts_with("make scripts_gdb: exit status 2:"));
    }

    #[test]
    fn a_build_without_a_tree_says_why_it_has_no_scripts() {
        let d = tempfile::tempdir().unwrap();
        let home = Home::new(d.path().join("home"));
        let dir = d.path().join("builds/5.10.46-x");
        std::fs::create_dir_all(dir.join("artifacts")).unwrap();
        let out = BuildOutput {
            dir: dir.clone(),
            image: dir.join("artifacts/bzImage"),
            arch: crate::arch::Arch::x86_64(),
            vmlinux: dir.join("artifacts/vmlinux"),
            config: dir.join("artifacts/config"),
            modules: dir.join("artifacts/modules"),
            headers: dir.join("artifacts/headers"),
            samples: dir.join("artifacts/samples"),
            release: "5.10.46".into(),
            key: "5.10.46-x".into(),
            system_map: PathBuf::new(),
            build_json: PathBuf::new(),
            log: PathBuf::new(),
            reproduce: PathBuf::new(),
            reused: false,
            sysroot: None,
        };
        let f = ensure(&home, &out, &crate::events::NullSink).unwrap();
        assert_eq!(f.vmlinux, dir.join("artifacts/vmlinux"));
        assert!(f.safe_path.is_none());
        assert!(f.missing.unwrap().contains("scripts_gdb target"));
    }
}
