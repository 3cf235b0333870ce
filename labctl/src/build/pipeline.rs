//! The build pipeline: key → lock → (no-op if built) → doctor preflight → private tree
//! → fixes → olddefconfig → `make bzImage` → modules → headers → gdb scripts →
//! samples/bpf → artifacts → build.json.
//!
//! The fetched source tree is shared and must stay read-only, but some fixes edit
//! files. Each build therefore gets a private tree `builds/<key>/src/`: a hard-link
//! farm of the source tree (`cp -al`, about 2 s and no extra space for 70 000 files;
//! a plain copy when the home spans filesystems). Fixes rewrite a file through
//! temp + rename, which replaces the link instead of writing through it; kbuild and
//! samples/bpf only ever create new files in the tree. The kernel itself is built out of
//! tree with `O=builds/<key>/obj/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::catalogue::{self, Applied, Catalogue, Facts};
use super::diagnose::{self, FailureReport};
use super::gdb;
use super::metadata::{now_unix, BuildJson, BuildResult, ObjectStats, SourceInfo, StageRecord};
use super::toolchain::Toolchain;
use super::{BuildError, BuildOutput, BuildRequest, PackageFormat, Packages};
use crate::events::{EventSink, SinkExt, Stage, StageTimer, Unit};
use crate::home::{free_space, human_bytes, write_atomic, CacheKey, Home};
use crate::process::{Cmd, LineAction};

/// Fixed so that ccache hits and two builds of the same input are identical.
const BUILD_ENV: &[(&str, &str)] = &[
    ("KBUILD_BUILD_TIMESTAMP", "Thu Jan  1 00:00:00 UTC 2026"),
    ("KBUILD_BUILD_USER", "labctl"),
    ("KBUILD_BUILD_HOST", "labctl"),
    ("KBUILD_BUILD_VERSION", "1"),
    // Error texts must be English for the catalogue's detectors. The kernel's Makefile
    // unexports LC_ALL, so set the individual categories.
    ("LANG", "C"),
    ("LC_MESSAGES", "C"),
    ("LC_CTYPE", "C"),
];

/// The catalogue entry whose (builtin) remedy builds samples/bpf in an in-tree copy.
const IN_TREE_SAMPLES: &str = "samples-bpf-o-userprogs";

/// Where samples/bpf put the selftests helpers they link (relative to the object folder).
const SAMPLES_HELPER_DIR: &str = "tools/testing/selftests/bpf";

struct Ctx<'a> {
    home: &'a Home,
    req: &'a BuildRequest,
    sink: &'a dyn EventSink,
    dir: PathBuf,
    src: PathBuf,
    obj: PathBuf,
    /// samples/bpf built in-tree here instead of `O=obj` (catalogue entry
    /// samples-bpf-o-userprogs); None = out of tree.
    samples_src: Option<PathBuf>,
    jobs: usize,
    /// The guest userland root of a cross build (the cross compiler's SYSROOT for
    /// samples/bpf, the guest's libraries); None for a native build.
    guest_root: Option<PathBuf>,
    /// Variables for every kernel make (CC wrapper, PAHOLE wrapper, fix variables).
    vars: Vec<(String, String)>,
    samples_vars: Vec<(String, String)>,
    env: Vec<(String, String)>,
    meta: BuildJson,
    step_no: usize,
}

/// Build (or reuse) the kernel described by `req`. See the module docs for the steps.
pub fn build(
    home: &Home,
    req: &BuildRequest,
    sink: &dyn EventSink,
) -> Result<BuildOutput, BuildError> {
    let version = req.tree.version;
    let cat = Catalogue::builtin();
    let Planned {
        toolchain,
        config_text,
        plan,
        key,
    } = plan_build(req, sink)?;
    let builds = home.ensure(home.builds())?;
    let dir = builds.join(&key);

    let _lock = home.lock(&CacheKey::Build(key.clone()))?;
    if let Some(done) = BuildJson::read(&dir) {
        // Complete for *this* request: a build whose samples failed or were skipped is
        // continued (incrementally) when samples are wanted now.
        if done.is_complete() && (!req.options.samples || done.samples_ok == Some(true)) {
            let mut out = done.output.clone().expect("complete builds have an output");
            out.reused = true;
            sink.info(format!(
                "linux {version} is already built with this config and toolchain ({key}): nothing to do (artifacts in {})",
                out.dir.display()
            ));
            return Ok(out);
        }
    }

    if req.options.preflight && !req.userland.spec().is_host() {
        // A Debian toolchain root holds doctor's build + samples packages by construction
        // (mmdebstrap fails otherwise); what can still be wrong is a version.
        let (min, why) = crate::doctor::pahole_minimum(version);
        let have = toolchain
            .pahole
            .as_deref()
            .and_then(catalogue::DottedVersion::parse);
        if have
            .as_ref()
            .is_none_or(|h| h.cmp_to(&min) == std::cmp::Ordering::Less)
        {
            return Err(BuildError::Preflight {
                version: version.to_string(),
                advice: format!(
                    "toolchain {}: pahole {} is too old for linux {version} (needs {min}: {why}); pick a newer Debian release with --toolchain",
                    req.userland.spec(),
                    toolchain.pahole.as_deref().unwrap_or("missing"),
                ),
            });
        }
    } else if req.options.preflight {
        let mut report = crate::doctor::preflight(version, &config_text, req.options.samples, sink);
        let cross = crate::doctor::missing_for_arch(req.config.arch, sink);
        if !cross.is_empty() {
            report.push_str(&format!(
                "{}for {} on this {} host:\n{cross}\n(`labctl doctor --arch {} --install` installs them)",
                if report.is_empty() { "" } else { "\n" },
                req.config.arch,
                crate::arch::Arch::host(),
                req.config.arch
            ));
        }
        if !report.is_empty() {
            return Err(BuildError::Preflight {
                version: version.to_string(),
                advice: report,
            });
        }
    }
    let need = disk_need(&config_text, req.options.samples);
    if let Ok(avail) = free_space(&builds) {
        // A partly built folder already holds most of what it needs.
        if avail < need && !dir.join("obj").join("vmlinux.o").exists() {
            return Err(BuildError::Disk {
                path: builds.clone(),
                need: human_bytes(need),
                available: human_bytes(avail),
            });
        }
    }

    let jobs = if req.options.jobs == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        req.options.jobs
    };
    for d in ["logs", "artifacts", "obj", "tools"] {
        std::fs::create_dir_all(dir.join(d))
            .map_err(|e| BuildError::io("create directory", dir.join(d), e))?;
    }
    let meta = BuildJson {
        schema: super::metadata::SCHEMA,
        key: key.clone(),
        version,
        source: SourceInfo {
            path: req.tree.path.clone(),
            sha256: req.tree.sha256.clone(),
            source: req.tree.source.clone(),
            url: req.tree.url.clone(),
            verified: req.tree.verified.clone(),
            trust: crate::source::tree_trust(&req.tree.path),
        },
        profile: req.profile.clone(),
        fragments: req.fragments.clone(),
        config_hash: req.config.hash.clone(),
        toolchain: toolchain.clone(),
        cc_wrapper: String::new(),
        jobs,
        fixes_enabled: req.options.fixes,
        plan: plan.clone(),
        fixes_applied: Vec::new(),
        stages: Vec::new(),
        objects: 0,
        result: BuildResult::Running,
        samples_ok: None,
        gdb_scripts: None,
        make_vars: Vec::new(),
        make_env: Vec::new(),
        error: None,
        diagnosis: Vec::new(),
        started_unix: now_unix(),
        finished_unix: None,
        output: None,
        origin: None,
    };
    let mut cx = Ctx {
        home,
        req,
        sink,
        src: dir.join("src"),
        obj: dir.join("obj"),
        samples_src: plan
            .notes
            .iter()
            .any(|id| id == IN_TREE_SAMPLES)
            .then(|| dir.join("samples-src")),
        dir: dir.clone(),
        jobs,
        guest_root: crate::userland::guest_root(home, req.config.arch, sink)?,
        vars: Vec::new(),
        samples_vars: Vec::new(),
        env: base_env(),
        meta,
        step_no: 0,
    };
    cx.meta.write(&dir)?;
    let _ = std::fs::remove_file(dir.join("build.log"));
    match run(&mut cx, cat, &plan, &config_text) {
        Ok(out) => Ok(out),
        Err(e) => {
            cx.meta.result = BuildResult::Failed;
            cx.meta.finished_unix = Some(now_unix());
            cx.meta.error = Some(e.to_string());
            if let Some(r) = e.report() {
                cx.meta.diagnosis = r.diagnosis.clone();
            }
            let _ = cx.meta.write(&dir);
            Err(e)
        }
    }
}

/// What decides a build's key: the toolchain, the config and the fixes planned for them.
struct Planned {
    toolchain: Toolchain,
    config_text: String,
    plan: catalogue::FixPlan,
    key: String,
}

fn plan_build(req: &BuildRequest, sink: &dyn EventSink) -> Result<Planned, BuildError> {
    let version = req.tree.version;
    let cat = Catalogue::builtin();
    let arch = req.config.arch;
    let toolchain = req
        .toolchain
        .clone()
        .unwrap_or_else(|| Toolchain::probe_for(&req.userland, arch, sink));
    let config_text = std::fs::read_to_string(&req.config.config_path)
        .map_err(|e| BuildError::io("read config", &req.config.config_path, e))?;
    let mut facts = Facts::for_host(version, toolchain.facts(), config_text.clone());
    // The catalogue's `host_has`/`host_lacks` paths are those of the system the tools run
    // in: a Debian toolchain root's own /usr/include, not the host's.
    if let Some(root) = req.userland.sysroot() {
        facts.host_root = root.to_path_buf();
    }
    let plan = catalogue::plan(cat, &facts, req.options.fixes);
    let cfg8: String = req.config.hash.chars().take(8).collect();
    // x86_64 keys carry no arch part (they predate the arch axis); others do.
    let key = format!(
        "{version}{}-{cfg8}-{}",
        arch.key_part(),
        toolchain.key_with(&plan.apply, req.options.debug_info.make_vars())
    );
    Ok(Planned {
        toolchain,
        config_text,
        plan,
        key,
    })
}

/// Build (or reuse) the kernel of `req`, then make distribution packages of it with the
/// kernel's own targets (`make bindeb-pkg` / `binrpm-pkg` / `tar-pkg`) in the same
/// private tree, `O=` folder, make variables (compiler wrapper, PAHOLE wrapper, fix
/// variables) and userland as the build, so nothing is compiled again. The packages
/// are moved to `dest` (default: the build's `artifacts/packages/`).
pub fn package(
    home: &Home,
    req: &BuildRequest,
    format: PackageFormat,
    dest: Option<&Path>,
    sink: &dyn EventSink,
) -> Result<Packages, BuildError> {
    let out = build(home, req, sink)?;
    let version = req.tree.version;
    let missing: Vec<String> = format
        .requirements()
        .iter()
        .filter_map(|id| crate::doctor::requirement(id))
        .filter(|r| {
            r.program
                .as_deref()
                .is_some_and(|p| req.userland.which(p).is_none())
        })
        .map(|r| {
            format!(
                "  {} (apt: {}; dnf: {}): {}",
                r.title,
                r.packages(crate::doctor::Manager::Apt).join(" "),
                r.packages(crate::doctor::Manager::Dnf).join(" "),
                r.why
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(BuildError::Preflight {
            version: version.to_string(),
            advice: format!(
                "`kernel package --format {}` needs:\n{}\n(`labctl doctor --packages --install` installs them)",
                format.name(),
                missing.join("\n")
            ),
        });
    }
    let cat = Catalogue::builtin();
    let p = plan_build(req, sink)?;
    let dir = home.builds().join(&p.key);
    let _lock = home.lock(&CacheKey::Build(p.key.clone()))?;
    let meta = BuildJson::read(&dir)
        .filter(|m| m.is_complete() && m.origin.is_none())
        .ok_or_else(|| BuildError::NothingToPackage {
            dir: dir.clone(),
            version: version.to_string(),
        })?;
    let jobs = if req.options.jobs == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        req.options.jobs
    };
    let mut cx = Ctx {
        home,
        req,
        sink,
        src: dir.join("src"),
        obj: dir.join("obj"),
        samples_src: None,
        dir: dir.clone(),
        jobs,
        guest_root: None,
        vars: Vec::new(),
        samples_vars: Vec::new(),
        env: BUILD_ENV
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        meta,
        step_no: 0,
    };
    // The same edits (already in place) and variables as the build.
    let applied = catalogue::apply(cat, &p.plan, &cx.src, &cx.obj)?;
    setup_vars(&mut cx, &applied)?;
    let started = std::time::SystemTime::now() - Duration::from_secs(2);
    let log = dir
        .join("logs")
        .join(format!("package-{}.log", format.name()));
    let mut cmd = req.userland.wrap(kmake(
        &cx,
        &[format!("-j{jobs}"), format.make_target().to_string()],
        &cx.vars,
    ));
    if let Some(t) = req.options.step_timeout {
        cmd = cmd.timeout(t);
    }
    let t = sink.stage(
        Stage::Package,
        format!("make {} for linux {}", format.make_target(), out.release),
    );
    let r = cmd.run_streaming(sink, &log, |_| LineAction::Continue)?;
    if r.code != Some(0) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(BuildError::Failed(Box::new(FailureReport {
            version: version.to_string(),
            step: format.make_target().to_string(),
            command: cmd.reproducer(),
            status: crate::process::status_text(r.code),
            first_error: diagnose::first_error_line(&text).map(|l| catalogue::normalize(&l)),
            tail: r.tail.iter().map(|l| catalogue::strip_ansi(l)).collect(),
            log: log.clone(),
            diagnosis: cat.diagnose_log(&text),
            applied: p.plan.apply.clone(),
            fixes_enabled: req.options.fixes,
        })));
    }
    t.ok();
    let dest = match dest {
        Some(d) => d.to_path_buf(),
        None => dir.join("artifacts").join("packages"),
    };
    std::fs::create_dir_all(&dest).map_err(|e| BuildError::io("create directory", &dest, e))?;
    let mut files = Vec::new();
    for f in format.find_outputs(&dir, &cx.obj, started) {
        let to = dest.join(f.file_name().expect("a file"));
        if std::fs::rename(&f, &to).is_err() {
            std::fs::copy(&f, &to).map_err(|e| BuildError::io("copy package", &to, e))?;
            let _ = std::fs::remove_file(&f);
        }
        files.push(to);
    }
    if files.is_empty() {
        return Err(BuildError::MissingArtifact {
            version: version.to_string(),
            what: format!("the {} package(s)", format.name()),
            path: dir.clone(),
            log,
        });
    }
    files.sort();
    sink.info(format!(
        "{} package(s) of linux {} in {}",
        files.len(),
        out.release,
        dest.display()
    ));
    Ok(Packages {
        format,
        release: out.release.clone(),
        files,
        log,
    })
}

fn run(
    cx: &mut Ctx,
    cat: &Catalogue,
    plan: &catalogue::FixPlan,
    config_text: &str,
) -> Result<BuildOutput, BuildError> {
    let version = cx.req.tree.version;
    let started = Instant::now();
    let sink = cx.sink;

    // ---- fixes: private tree, edits, variables, wrappers ----
    let t = sink.stage(
        Stage::Fixes,
        format!(
            "{} fix(es) for linux {version}: {}",
            plan.apply.len(),
            if plan.apply.is_empty() {
                "none needed".to_string()
            } else {
                plan.apply.join(", ")
            }
        ),
    );
    let mut repro: Vec<String> = Vec::new();
    make_private_tree(cx, &mut repro)?;
    let applied = catalogue::apply(cat, plan, &cx.src, &cx.obj)?;
    for (id, what) in &applied.log {
        cx.sink.info(format!("fix {id}: {what}"));
        if let Some(catalogue::Remedy::Edit { file, .. }) = cat.get(id).map(|f| &f.remedy) {
            if what == "edited" || what == "already in place" {
                let keep = cx.dir.join("fixes").join(id).join(file);
                std::fs::create_dir_all(keep.parent().unwrap())
                    .map_err(|e| BuildError::io("create directory", &keep, e))?;
                std::fs::copy(cx.src.join(file), &keep)
                    .map_err(|e| BuildError::io("copy", &keep, e))?;
                repro.push(format!("# fix {id}: replace {file} in the private tree (never write through the hard link)"));
                repro.push(format!(
                    "rm -f {} && cp {} {}",
                    q(&cx.src.join(file)),
                    q(&keep),
                    q(&cx.src.join(file))
                ));
            }
        }
    }
    for n in &plan.notes {
        if let Some(f) = cat.get(n) {
            cx.sink.debug(format!("note {n}: {}", f.title));
        }
    }
    cx.meta.fixes_applied = applied.log.clone();
    setup_vars(cx, &applied)?;
    cx.meta.make_vars = cx.vars.clone();
    cx.meta.make_env = cx.env.clone();
    let merged = catalogue::merge_config(config_text, &applied.config);
    let cfg_path = cx.obj.join(".config");
    if std::fs::read_to_string(&cfg_path).ok().as_deref() != Some(merged.as_str()) {
        write_atomic(&cfg_path, merged.as_bytes())?;
    }
    std::fs::copy(&cx.req.config.config_path, cx.dir.join("config.input"))
        .map_err(|e| BuildError::io("copy", cx.dir.join("config.input"), e))?;
    repro.push(format!(
        "cp {} {}",
        q(&cx.dir.join("config.input")),
        q(&cfg_path)
    ));
    if !applied.config.is_empty() {
        repro.push(format!(
            "# config lines from fixes: {}",
            applied.config.join(" ")
        ));
        for line in &applied.config {
            repro.push(format!(
                "printf '%s\\n' {} >> {}",
                q(Path::new(line)),
                q(&cfg_path)
            ));
        }
    }
    record(cx, Stage::Fixes, t.ok());

    // reproduce.sh is written before the first make, like tuxmake's reproducer.
    let steps = make_steps(cx, config_text);
    write_reproducer(cx, &repro, &steps)?;
    cx.meta.write(&cx.dir)?;

    for step in &steps {
        run_step(cx, step, plan)?;
    }

    // ---- artifacts ----
    let release = cx
        .req
        .userland
        .wrap(
            Cmd::new("make")
                .cwd(&cx.src)
                .arg(format!("O={}", cx.obj.display()))
                .args(["-s", "kernelrelease"])
                .envs(&cx.env),
        )
        .run(cx.sink)
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout_str().trim().to_string())
        .unwrap_or_else(|| version.to_string());
    let out = collect_artifacts(cx, &release)?;
    let total = started.elapsed();
    cx.meta.result = BuildResult::Success;
    cx.meta.finished_unix = Some(now_unix());
    cx.meta.output = Some(out.clone());
    // Last: only now does the folder count as finished.
    cx.meta.write(&cx.dir)?;
    cx.sink.info(format!(
        "built linux {release} in {:.0}s: {}",
        total.as_secs_f64(),
        out.dir.display()
    ));
    Ok(out)
}

/// The environment of every kernel make before the compiler wrapper's own
/// ([`BUILD_ENV`]).
pub(super) fn base_env() -> Vec<(String, String)> {
    BUILD_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The environment a compiler wrapper gets: its cache folder in the labctl home.
pub(super) fn wrapper_env(home: &Home, wrapper: &str) -> Vec<(String, String)> {
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    match wrapper {
        "ccache" => vec![
            ("CCACHE_DIR".into(), path(home.root().join("ccache"))),
            // Paths under builds/ become relative, so another build folder of the same
            // input still hits; the working directory is not hashed (debug info only).
            ("CCACHE_BASEDIR".into(), path(home.builds())),
            ("CCACHE_NOHASHDIR".into(), "true".into()),
            ("CCACHE_MAXSIZE".into(), "10G".into()),
            // Depend mode: a miss hashes the compiler's own -MMD list (kbuild's
            // `-Wp,-MMD,…`) instead of preprocessing every file a second time. Measured
            // on 122 objects of 5.10 (kernel/bpf, net/core, net/ipv4), cold, -j2: 57-62 s,
            // against 82-85 s in ccache's default mode and 64-70 s without ccache; a
            // second build of the same sources hits every object (3.7 s).
            ("CCACHE_DEPEND".into(), "true".into()),
        ],
        "sccache" => vec![("SCCACHE_DIR".into(), path(home.root().join("sccache")))],
        _ => Vec::new(),
    }
}

/// Rough disk need: debug info dominates (measured: lab ≈ 3 GiB, defconfig ≈ 8 GiB).
fn disk_need(config: &str, samples: bool) -> u64 {
    let opts = config
        .lines()
        .filter(|l| l.starts_with("CONFIG_") && (l.ends_with("=y") || l.ends_with("=m")))
        .count() as u64;
    let per = if config.lines().any(|l| l == "CONFIG_DEBUG_INFO=y") {
        6 << 20
    } else {
        1 << 20
    };
    (opts * per).max(512 << 20) + if samples { 300 << 20 } else { 0 }
}

fn q(p: &Path) -> String {
    crate::process::shell_quote(p.as_os_str())
}

fn record(cx: &mut Ctx, stage: Stage, d: Duration) {
    cx.meta.stages.push(StageRecord {
        stage,
        seconds: (d.as_secs_f64() * 10.0).round() / 10.0,
        ok: true,
    });
}

fn make_private_tree(cx: &mut Ctx, repro: &mut Vec<String>) -> Result<(), BuildError> {
    let tree = &cx.req.tree.path;
    repro.push("# private tree: a hard-link farm of the fetched tree (edits replace links, never write through)".to_string());
    repro.push(format!(
        "[ -d {src} ] || cp -al {} {src}",
        q(tree),
        src = q(&cx.src)
    ));
    if cx.src.join("Makefile").exists() {
        return Ok(());
    }
    let tmp = cx.dir.join(".src.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let linked = Cmd::new("cp").arg("-al").arg(tree).arg(&tmp).run(cx.sink)?;
    if !linked.success() {
        // Another filesystem: a real copy (reflinked where the filesystem can).
        let _ = std::fs::remove_dir_all(&tmp);
        cx.sink
            .info("the source tree is on another filesystem: copying it instead of hard-linking");
        Cmd::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(tree)
            .arg(&tmp)
            .run_checked(cx.sink)?;
    }
    make_dirs_writable(&tmp);
    std::fs::rename(&tmp, &cx.src).map_err(|e| BuildError::io("rename into place", &cx.src, e))?;
    Ok(())
}

/// The in-tree copy for samples/bpf: a hard-link farm of the build's private tree (so the
/// fixes' edits are there too), made once, with the build's current `.config`.
fn prepare_samples_tree(cx: &mut Ctx) -> Result<(), BuildError> {
    let Some(tree) = cx.samples_src.clone() else {
        return Ok(());
    };
    if !tree.join("Makefile").exists() {
        let tmp = cx.dir.join(".samples-src.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let linked = Cmd::new("cp")
            .arg("-al")
            .arg(&cx.src)
            .arg(&tmp)
            .run(cx.sink)?;
        if !linked.success() {
            let _ = std::fs::remove_dir_all(&tmp);
            Cmd::new("cp")
                .args(["-a", "--reflink=auto"])
                .arg(&cx.src)
                .arg(&tmp)
                .run_checked(cx.sink)?;
        }
        make_dirs_writable(&tmp);
        std::fs::rename(&tmp, &tree).map_err(|e| BuildError::io("rename into place", &tree, e))?;
    }
    let from = cx.obj.join(".config");
    let to = tree.join(".config");
    let text = std::fs::read(&from).map_err(|e| BuildError::io("read", &from, e))?;
    if std::fs::read(&to).ok().as_deref() != Some(text.as_slice()) {
        // Replace, never write through a link.
        let _ = std::fs::remove_file(&to);
        write_atomic(&to, &text)?;
    }
    Ok(())
}

/// Directories of the farm are our own (cp creates them); files are shared links and
/// keep their modes. A read-only source tree must still accept new build outputs.
fn make_dirs_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::symlink_metadata(dir) {
        if m.is_dir() {
            let mode = m.permissions().mode();
            if mode & 0o200 == 0 {
                let _ =
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o200));
            }
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        make_dirs_writable(&e.path());
                    }
                }
            }
        }
    }
}

fn setup_vars(cx: &mut Ctx, applied: &Applied) -> Result<(), BuildError> {
    let wrapper = cx.req.options.cc_wrapper.resolve();
    cx.meta.cc_wrapper = wrapper.unwrap_or("none").to_string();
    if let Some(w) = wrapper {
        if cx.req.userland.which(w).is_none() {
            return Err(BuildError::NoCcWrapper {
                wrapper: w.to_string(),
            });
        }
        cx.vars
            .push(("CC".into(), format!("{w} {}", cx.req.config.arch.gcc())));
        cx.vars.push(("HOSTCC".into(), format!("{w} gcc")));
        cx.env.extend(wrapper_env(cx.home, w));
    }
    // A cross build: the kernel's ARCH and the cross compiler's prefix on every make.
    cx.vars
        .extend(crate::kconfig::arch_make_vars(cx.req.config.arch));
    if !applied.pahole_flags.is_empty() {
        if let Some(real) = cx.req.userland.which("pahole") {
            let path = cx.dir.join("tools").join("pahole");
            let script = format!(
                "#!/bin/sh\n# Written by labctl: pahole with extra flags whenever it encodes BTF (-J).\n# Fix entries: see build.json fixes_applied.\ncase \" $* \" in\n  *\" -J \"*) exec {} {} \"$@\" ;;\nesac\nexec {} \"$@\"\n",
                q(&real),
                applied.pahole_flags.join(" "),
                q(&real)
            );
            write_wrapper(&path, &script)?;
            cx.vars
                .push(("PAHOLE".into(), path.to_string_lossy().into_owned()));
        }
    }
    for (k, v) in cx.req.options.debug_info.make_vars() {
        catalogue::add_var(&mut cx.vars, k, v);
    }
    for (k, v) in &applied.kernel_vars {
        catalogue::add_var(&mut cx.vars, k, v);
    }
    cx.samples_vars = applied.samples_vars.clone();
    if !applied.clang_flags.is_empty() {
        if let Some(real) = cx.req.userland.which("clang") {
            let path = cx.dir.join("tools").join("clang");
            let script = format!(
                "#!/bin/sh\n# Written by labctl: samples/bpf's clang with extra flags.\n# Fix entries: see build.json fixes_applied.\nexec {} {} \"$@\"\n",
                q(&real),
                applied.clang_flags.iter().map(|f| crate::process::shell_quote(std::ffi::OsStr::new(f))).collect::<Vec<_>>().join(" "),
            );
            write_wrapper(&path, &script)?;
            catalogue::add_var(&mut cx.samples_vars, "CLANG", &path.to_string_lossy());
        }
    }
    Ok(())
}

/// Write one of the build's tool wrappers (`tools/pahole`, `tools/clang`): atomically,
/// executable.
fn write_wrapper(path: &Path, script: &str) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    write_atomic(path, script.as_bytes())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| BuildError::io("chmod", path, e))
}

struct Step {
    name: &'static str,
    stage: Stage,
    detail: String,
    cmd: Cmd,
    /// Count compiled objects against this total and switch to link/BTF stages.
    compile: Option<Option<u64>>,
    /// A failure here is reported but does not fail the build (samples/bpf).
    soft: bool,
}

fn kmake(cx: &Ctx, extra: &[String], vars: &[(String, String)]) -> Cmd {
    let mut c = Cmd::new("make")
        .cwd(&cx.src)
        .env_remove("LC_ALL")
        .arg(format!("O={}", cx.obj.display()));
    for (k, v) in &cx.env {
        c = c.env(k, v);
    }
    for (k, v) in vars {
        c = c.arg(format!("{k}={v}"));
    }
    c.args(extra)
}

trait CmdEnvs {
    fn envs(self, env: &[(String, String)]) -> Self;
}
impl CmdEnvs for Cmd {
    fn envs(mut self, env: &[(String, String)]) -> Self {
        for (k, v) in env {
            self = self.env(k, v);
        }
        self
    }
}

fn make_steps(cx: &Ctx, config: &str) -> Vec<Step> {
    let j = format!("-j{}", cx.jobs);
    let has = |sym: &str| config.lines().any(|l| l == format!("{sym}=y"));
    let series = format!(
        "{}.{}",
        cx.req.tree.version.major, cx.req.tree.version.minor
    );
    let expected = ObjectStats::load(&cx.home.builds())
        .expected(&series, &cx.req.config.hash)
        .unwrap_or_else(|| diagnose::estimate_objects(config));
    let image_target = cx.req.config.arch.image_target.as_str();
    let mut steps = vec![
        Step {
            name: "olddefconfig",
            stage: Stage::Config,
            detail: "make olddefconfig".into(),
            cmd: kmake(cx, &["olddefconfig".into()], &cx.vars),
            compile: None,
            soft: false,
        },
        Step {
            name: image_target,
            stage: Stage::Compile,
            detail: format!("make {j} {image_target} (about {expected} objects)"),
            cmd: kmake(cx, &[j.clone(), image_target.into()], &cx.vars),
            compile: Some(Some(expected)),
            soft: false,
        },
    ];
    if cx.req.options.modules && has("CONFIG_MODULES") {
        let staging = cx.dir.join("artifacts").join("modules");
        steps.push(Step {
            name: "modules",
            stage: Stage::Modules,
            detail: format!("make {j} modules"),
            cmd: kmake(cx, &[j.clone(), "modules".into()], &cx.vars),
            compile: None,
            soft: false,
        });
        steps.push(Step {
            name: "modules_install",
            stage: Stage::Modules,
            detail: format!(
                "make modules_install INSTALL_MOD_PATH={}",
                staging.display()
            ),
            cmd: kmake(
                cx,
                &[
                    "modules_install".into(),
                    format!("INSTALL_MOD_PATH={}", staging.display()),
                ],
                &cx.vars,
            ),
            compile: None,
            soft: false,
        });
    }
    // With the build's -j: one header check per uapi header, 12.6 s one after another
    // on 5.10 (2 cores, a fresh machine).
    steps.push(Step {
        name: "headers_install",
        stage: Stage::Headers,
        detail: format!("make {j} headers_install"),
        cmd: kmake(cx, &[j.clone(), "headers_install".into()], &cx.vars),
        compile: None,
        soft: false,
    });
    if gdb::has_target(&cx.src) {
        // gdb's lx- commands for `vm run --gdb`; a failure is recorded, never fatal.
        steps.push(Step {
            name: gdb::TARGET,
            stage: Stage::Gdb,
            detail: "make scripts_gdb (vmlinux-gdb.py: lx-symbols, lx-dmesg, lx-ps)".into(),
            cmd: kmake(cx, &[gdb::TARGET.into()], &cx.vars),
            compile: None,
            soft: false,
        });
    }
    if cx.req.options.samples {
        let mut vars = samples_make_vars(&cx.vars, &cx.samples_vars);
        if let Some(root) = &cx.guest_root {
            // samples/bpf's own variable: --sysroot for its user programs and libbpf.
            vars.push(("SYSROOT".into(), root.display().to_string()));
            // SYSROOT gives the links only `-L$(SYSROOT)/usr/lib`; without --sysroot the
            // cross linker finds neither the root's crti.o nor its multiarch libelf and
            // zlib (5.10 links libbpf.so: "cannot find crti.o", "cannot find -lelf"). One
            // word: 5.10 passes it to libbpf's make unquoted (`LDFLAGS=$(TPROGS_LDFLAGS)`).
            vars.push((
                "TPROGS_LDFLAGS".into(),
                format!("--sysroot={}", root.display()),
            ));
            // The samples' own hook for user flags: xdp_sample_user.o (6.x) replaces
            // TPROGS_CFLAGS with its own list, which keeps only TPROGS_USER_CFLAGS, so
            // without it that file compiles against the host's headers ("asm/socket.h:
            // No such file or directory" once the host has no /usr/include/asm).
            vars.push((
                "TPROGS_USER_CFLAGS".into(),
                format!("--sysroot={}", root.display()),
            ));
        }
        match &cx.samples_src {
            None => steps.push(Step {
                name: "samples",
                stage: Stage::Samples,
                detail: format!("make {j} M=samples/bpf"),
                cmd: kmake(cx, &[j, "M=samples/bpf".into()], &vars),
                compile: None,
                soft: true,
            }),
            Some(tree) => {
                // In-tree, as samples/bpf/README.rst documents (see IN_TREE_SAMPLES).
                let mut svars = vars.clone();
                if !svars.iter().any(|(k, _)| k == "VMLINUX_BTF") {
                    svars.push((
                        "VMLINUX_BTF".into(),
                        cx.obj.join("vmlinux").display().to_string(),
                    ));
                }
                let tm = |extra: &[String], vars: &[(String, String)]| {
                    let mut c = Cmd::new("make")
                        .cwd(tree)
                        .env_remove("LC_ALL")
                        .envs(&cx.env);
                    for (k, v) in vars {
                        c = c.arg(format!("{k}={v}"));
                    }
                    c.args(extra)
                };
                steps.push(Step {
                    name: "samples-config",
                    stage: Stage::Samples,
                    detail: format!("in-tree copy {}: make olddefconfig", tree.display()),
                    cmd: tm(&["olddefconfig".into()], &vars),
                    compile: None,
                    soft: true,
                });
                steps.push(Step {
                    name: "samples-prepare",
                    stage: Stage::Samples,
                    detail: format!("make {j} prepare headers_install (in-tree copy)"),
                    cmd: tm(
                        &[j.clone(), "prepare".into(), "headers_install".into()],
                        &vars,
                    ),
                    compile: None,
                    soft: true,
                });
                steps.push(Step {
                    name: "samples",
                    stage: Stage::Samples,
                    detail: format!("make {j} M=samples/bpf (in-tree copy)"),
                    cmd: tm(&[j, "M=samples/bpf".into()], &svars),
                    compile: None,
                    soft: true,
                });
            }
        }
    }
    steps
}

/// The make variables for `make M=samples/bpf`: the kernel's, minus a compiler wrapper
/// given as a two-word `CC`/`HOSTCC` (`ccache gcc`). samples/bpf (5.15+) builds bpftool's
/// bootstrap through tools/ sub-makes that split such a value and fail with
/// `ccache: invalid option -- 'E'` / `No rule to make target 'gcc'` (seen on 6.1); the
/// samples are small, so they compile without the wrapper. Then the catalogue's variables.
fn samples_make_vars(
    kernel_vars: &[(String, String)],
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = kernel_vars
        .iter()
        .filter(|(k, v)| !(matches!(k.as_str(), "CC" | "HOSTCC") && v.trim().contains(' ')))
        .cloned()
        .collect();
    for (k, v) in extra {
        catalogue::add_var(&mut vars, k, v);
    }
    vars
}

/// One `# ...` line (or several) of reproduce.sh: a control character in the text (a
/// newline in a path or a tool's version string) would end the comment and make the
/// rest a command, so each becomes `?`.
fn push_comment(s: &mut String, text: &str) {
    for line in text.split_terminator('\n') {
        s.push_str("# ");
        s.extend(line.chars().map(|c| if c.is_control() { '?' } else { c }));
        s.push('\n');
    }
}

fn write_reproducer(cx: &Ctx, prep: &[String], steps: &[Step]) -> Result<(), BuildError> {
    let mut s = String::new();
    s.push_str("#!/bin/sh\n");
    push_comment(
        &mut s,
        &format!(
            "Repeats labctl's build {} of linux {} by hand.",
            cx.meta.key, cx.req.tree.version
        ),
    );
    push_comment(
        &mut s,
        &format!(
            "Toolchain when it was built: {}.",
            cx.meta.toolchain.summary().replace('\n', " ")
        ),
    );
    push_comment(
        &mut s,
        "Fixes applied and why: build.json (fixes_applied) and docs/troubleshooting.md.",
    );
    if let Some(root) = cx.req.userland.sysroot() {
        // Two comment lines on purpose; anything else in the text is neutralised.
        push_comment(
            &mut s,
            &format!(
                "Every make below ran inside the {} root filesystem {} with the labctl home{}mounted at the same path: `chroot {} /usr/bin/env -i PATH=/usr/bin:/bin ... make ...`.",
                cx.req.userland.spec(),
                q(root).replace('\n', "?"),
                '\n',
                q(root).replace('\n', "?")
            ),
        );
    }
    s.push_str("set -eu\n\n");
    for l in prep {
        s.push_str(l);
        s.push('\n');
    }
    if let Some(p) = cx.vars.iter().find(|(k, _)| k == "PAHOLE") {
        push_comment(
            &mut s,
            &format!(
                "{} is a small wrapper labctl wrote (see the file).",
                p.1.replace('\n', "?")
            ),
        );
    }
    s.push_str("\n# Environment of every make run (fixed so builds reproduce and ccache hits).\n");
    s.push_str("unset LC_ALL\n");
    for (k, v) in &cx.env {
        s.push_str(&format!(
            "export {k}={}\n",
            crate::process::shell_quote(std::ffi::OsStr::new(v))
        ));
    }
    s.push_str(&format!("cd {}\n\n", q(&cx.src)));
    for st in steps {
        if st.name == "modules_install" {
            s.push_str(&format!(
                "rm -rf {}\n",
                q(&cx.dir.join("artifacts").join("modules"))
            ));
        }
        push_comment(&mut s, st.stage.name());
        if st.name == "samples" {
            s.push_str(&format!(
                "mkdir -p {}\n",
                q(&cx.obj.join(SAMPLES_HELPER_DIR))
            ));
        }
        let args: Vec<String> = st
            .cmd
            .get_args()
            .iter()
            .map(|a| crate::process::shell_quote(a))
            .collect();
        match st.cmd.get_cwd().filter(|d| *d != cx.src.as_path()) {
            // The in-tree samples copy: labctl makes it with `cp -al` of the private tree
            // and copies the build's .config into it (see build.json's plan).
            Some(d) => s.push_str(&format!(
                "( [ -d {d} ] || cp -al {src} {d}; cp {cfg} {d}/.config; cd {d} && make {} )\n",
                args.join(" "),
                d = q(d),
                src = q(&cx.src),
                cfg = q(&cx.obj.join(".config"))
            )),
            None => s.push_str(&format!("make {}\n", args.join(" "))),
        }
    }
    let path = cx.dir.join("reproduce.sh");
    write_atomic(&path, s.as_bytes())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| BuildError::io("chmod", &path, e))?;
    Ok(())
}

fn run_step(cx: &mut Ctx, step: &Step, plan: &catalogue::FixPlan) -> Result<(), BuildError> {
    cx.step_no += 1;
    let log = cx
        .dir
        .join("logs")
        .join(format!("{:02}-{}.log", cx.step_no, step.name));
    if step.name == "modules_install" {
        let _ = std::fs::remove_dir_all(cx.dir.join("artifacts").join("modules"));
    }
    if step.soft && cx.meta.samples_ok == Some(false) {
        // An earlier samples step failed in this run: the later ones cannot succeed.
        return Ok(());
    }
    if step.name == "samples-config" {
        prepare_samples_tree(cx)?;
    }
    if step.name == "samples" && cx.samples_src.is_none() {
        // Catalogue entry samples-bpf-o-depfile: kbuild does not create this folder with O=.
        let d = cx.obj.join(SAMPLES_HELPER_DIR);
        std::fs::create_dir_all(&d).map_err(|e| BuildError::io("create directory", &d, e))?;
    }
    let sink = cx.sink;
    let mut objects: u64 = 0;
    let mut cmd = cx.req.userland.wrap(step.cmd.clone());
    if let Some(t) = cx.req.options.step_timeout {
        cmd = cmd.timeout(t);
    }
    let mut timers: Vec<(Stage, Instant)> = Vec::new();
    let result = {
        let mut current: Option<StageTimer> = Some(sink.stage(step.stage, step.detail.clone()));
        let mut current_name = step.stage;
        let mut current_start = Instant::now();
        let r = cmd.run_streaming(sink, &log, |line| {
            if let Some(total) = step.compile {
                if diagnose::is_object_line(line) {
                    objects += 1;
                    let shown_total = total.map(|t| t.max(objects));
                    if current_name == Stage::Compile {
                        sink.progress(Stage::Compile, objects, shown_total, Unit::Objects);
                    }
                }
                if let Some(next) = diagnose::stage_of_line(line) {
                    let order = |s: Stage| {
                        [Stage::Compile, Stage::Link, Stage::Btf]
                            .iter()
                            .position(|x| *x == s)
                            .unwrap_or(0)
                    };
                    if order(next) > order(current_name) {
                        if let Some(t) = current.take() {
                            t.ok();
                            timers.push((current_name, current_start));
                        }
                        current_name = next;
                        current_start = Instant::now();
                        current = Some(sink.stage(next, line.trim().to_string()));
                    }
                }
            }
            LineAction::Continue
        });
        let ok = matches!(&r, Ok(o) if o.code == Some(0));
        if let Some(t) = current.take() {
            if ok {
                t.ok();
            } else {
                drop(t);
            }
        }
        timers.push((current_name, current_start));
        r
    };
    // Stage durations for build.json (consecutive starts; the last ends now).
    let now = Instant::now();
    for (i, (name, start)) in timers.iter().enumerate() {
        let end = timers.get(i + 1).map(|(_, s)| *s).unwrap_or(now);
        let ok = i + 1 < timers.len() || matches!(&result, Ok(o) if o.code == Some(0));
        let secs = ((end - *start).as_secs_f64() * 10.0).round() / 10.0;
        match cx.meta.stages.last_mut() {
            // modules + modules_install are one stage.
            Some(last) if last.stage == *name => {
                last.seconds = ((last.seconds + secs) * 10.0).round() / 10.0;
                last.ok &= ok;
            }
            _ => cx.meta.stages.push(StageRecord {
                stage: *name,
                seconds: secs,
                ok,
            }),
        }
    }
    append_log(&cx.dir.join("build.log"), &log);
    let out = result?;
    if step.name == gdb::TARGET {
        let rec = gdb::judge(out.code, &cx.obj, &out.tail, &log);
        if let Some(e) = &rec.error {
            sink.warn(format!(
                "the kernel's gdb scripts did not build (the kernel is fine and the build continues; `vm run --gdb` works without the lx- commands): {e} (log: {})",
                log.display()
            ));
        }
        if let Some(last) = cx.meta.stages.last_mut() {
            last.ok = rec.ok;
        }
        cx.meta.gdb_scripts = Some(rec);
        return Ok(());
    }
    if step.compile.is_some() && out.code == Some(0) {
        cx.meta.objects = objects;
        let v = cx.req.tree.version;
        ObjectStats::record(
            &cx.home.builds(),
            &format!("{}.{}", v.major, v.minor),
            &cx.req.config.hash,
            objects,
        );
    }
    if out.code == Some(0) {
        if step.soft {
            cx.meta.samples_ok = Some(true);
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let report = FailureReport {
        version: cx.req.tree.version.to_string(),
        step: step.name.to_string(),
        command: step.cmd.reproducer(),
        status: crate::process::status_text(out.code),
        first_error: diagnose::first_error_line(&text).map(|l| catalogue::normalize(&l)),
        tail: out.tail.iter().map(|l| catalogue::strip_ansi(l)).collect(),
        log: log.clone(),
        diagnosis: Catalogue::builtin().diagnose_log(&text),
        applied: plan.apply.clone(),
        fixes_enabled: cx.req.options.fixes,
    };
    if step.soft {
        cx.meta.samples_ok = Some(false);
        cx.meta.diagnosis.extend(report.diagnosis.clone());
        sink.warn(format!("samples/bpf did not build completely; the kernel is fine and the build continues.\n{report}"));
        return Ok(());
    }
    Err(BuildError::Failed(Box::new(report)))
}

fn append_log(all: &Path, part: &Path) {
    use std::io::Write;
    if let (Ok(mut f), Ok(data)) = (
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(all),
        std::fs::read(part),
    ) {
        let _ = f.write_all(&data);
    }
}

/// Whether an ELF vmlinux has a non-empty `.BTF` section; None when it is not an ELF
/// file at all (nothing to judge).
fn vmlinux_btf(path: &Path) -> Option<bool> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(path).ok()?;
    if !data.starts_with(b"\x7fELF") {
        return None;
    }
    let f = object::File::parse(&*data).ok()?;
    Some(f.sections().any(|s| s.name() == Ok(".BTF") && s.size() > 0))
}

/// Hard-link (or copy) `from` to `to`, replacing `to`.
fn place(from: &Path, to: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_file(to);
    std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(|_| ()))
}

fn collect_artifacts(cx: &mut Ctx, release: &str) -> Result<BuildOutput, BuildError> {
    let art = cx.dir.join("artifacts");
    let log = cx.dir.join("build.log");
    let version = cx.req.tree.version.to_string();
    let missing = |what: &str, path: &Path| BuildError::MissingArtifact {
        version: version.clone(),
        what: what.into(),
        path: path.to_owned(),
        log: log.clone(),
    };
    let arch = cx.req.config.arch;
    let pairs = [
        (
            arch.image_name.as_str(),
            cx.obj.join(&arch.image),
            art.join(&arch.image_name),
        ),
        ("vmlinux", cx.obj.join("vmlinux"), art.join("vmlinux")),
        (".config", cx.obj.join(".config"), art.join("config")),
        (
            "System.map",
            cx.obj.join("System.map"),
            art.join("System.map"),
        ),
    ];
    for (what, from, to) in &pairs {
        if !from.is_file() {
            return Err(missing(what, from));
        }
        place(from, to).map_err(|e| BuildError::io("place artifact", to, e))?;
    }
    // Installed headers (headers_install writes obj/usr/include).
    let headers = art.join("headers");
    let _ = std::fs::remove_dir_all(&headers);
    let inc = cx.obj.join("usr").join("include");
    if inc.is_dir() {
        std::fs::create_dir_all(&headers)
            .map_err(|e| BuildError::io("create directory", &headers, e))?;
        Cmd::new("cp")
            .arg("-al")
            .arg(&inc)
            .arg(headers.join("include"))
            .run_checked(cx.sink)?;
    }
    // samples/bpf: user programs (executables) and BPF objects.
    let samples = art.join("samples");
    let _ = std::fs::remove_dir_all(&samples);
    std::fs::create_dir_all(&samples)
        .map_err(|e| BuildError::io("create directory", &samples, e))?;
    let sdir = cx
        .samples_src
        .as_ref()
        .unwrap_or(&cx.obj)
        .join("samples")
        .join("bpf");
    let mut n_samples = 0;
    if let Ok(rd) = std::fs::read_dir(&sdir) {
        use std::os::unix::fs::PermissionsExt;
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(m) = e.metadata() else { continue };
            if !m.is_file() {
                continue;
            }
            let is_bpf_obj = name.ends_with("_kern.o") || name.ends_with(".bpf.o");
            let is_prog = m.permissions().mode() & 0o111 != 0 && !name.contains('.');
            if is_bpf_obj || is_prog {
                place(&p, &samples.join(&name))
                    .map_err(|e| BuildError::io("place artifact", samples.join(&name), e))?;
                n_samples += 1;
            }
        }
    }
    if cx.req.options.samples {
        cx.sink.debug(format!(
            "{n_samples} samples/bpf files staged in {}",
            samples.display()
        ));
    }
    let wants_btf = std::fs::read_to_string(art.join("config"))
        .map(|c| c.lines().any(|l| l == "CONFIG_DEBUG_INFO_BTF=y"))
        .unwrap_or(false);
    if wants_btf && vmlinux_btf(&art.join("vmlinux")) == Some(false) {
        return Err(missing(
            "the .BTF section of vmlinux (CONFIG_DEBUG_INFO_BTF=y)",
            &art.join("vmlinux"),
        ));
    }
    Ok(BuildOutput {
        dir: cx.dir.clone(),
        image: art.join(&arch.image_name),
        arch,
        vmlinux: art.join("vmlinux"),
        config: art.join("config"),
        modules: art.join("modules"),
        headers,
        samples,
        release: release.to_string(),
        key: cx.meta.key.clone(),
        system_map: art.join("System.map"),
        build_json: cx.dir.join("build.json"),
        log,
        reproduce: cx.dir.join("reproduce.sh"),
        reused: false,
        sysroot: cx
            .guest_root
            .clone()
            .or_else(|| cx.req.userland.sysroot().map(Path::to_path_buf)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_drop_a_two_word_compiler_wrapper_but_keep_the_rest() {
        let kv = |a: &str, b: &str| (a.to_string(), b.to_string());
        let kernel = vec![
            kv("CC", "ccache gcc"),
            kv("HOSTCC", "ccache gcc"),
            kv("PAHOLE", "/x/pahole"),
        ];
        let extra = vec![kv("VMLINUX_BTF", "/b/vmlinux")];
        let v = samples_make_vars(&kernel, &extra);
        assert!(!v.iter().any(|(k, _)| k == "CC" || k == "HOSTCC"), "{v:?}");
        assert!(
            v.contains(&kv("PAHOLE", "/x/pahole")) && v.contains(&kv("VMLINUX_BTF", "/b/vmlinux")),
            "{v:?}"
        );
        // A plain compiler choice is kept.
        let v = samples_make_vars(&[kv("CC", "clang")], &[]);
        assert_eq!(v, vec![kv("CC", "clang")]);
    }

    #[test]
    fn btf_check_judges_elf_files_only() {
        // This test binary is an ELF without .BTF.
        let me = std::env::current_exe().unwrap();
        assert_eq!(vmlinux_btf(&me), Some(false));
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("vmlinux");
        std::fs::write(&p, "not an elf").unwrap();
        assert_eq!(vmlinux_btf(&p), None);
    }

    #[test]
    fn disk_need_grows_with_debug_info() {
        let small = "CONFIG_A=y\n".repeat(600);
        let with_dbg = format!("{small}CONFIG_DEBUG_INFO=y\n");
        assert!(disk_need(&with_dbg, true) > disk_need(&small, true));
        assert!(
            disk_need(&with_dbg, false) >= 3 << 30,
            "lab profile with BTF needs about 3 GiB"
        );
    }
}
