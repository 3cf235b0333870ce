//! Starter projects (`labctl new DIR --template libbpf|core|bcc|bpftrace`): a learner's
//! first BPF program, made for one lab kernel.
//!
//! This module owns the templates (plain files under `labctl/templates/<name>/`,
//! embedded at compile time, each with a `template.toml` manifest saying its files, what
//! builds it on the host, what runs it in the guest, which backend and which line a
//! working program prints), the choice of the lab build a project is made for, the
//! project's `vmlinux.h` (the host's `bpftool btf dump file VMLINUX format c`), BCC's
//! header folder for kernels without `CONFIG_IKHEADERS`, the project's README with the
//! exact commands, and writing it all atomically: into a temporary sibling folder that is
//! renamed into place, never over an existing non-empty folder.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::build::{BuildJson, BuildOutput};
use crate::events::{Event, EventSink, Stage};
use crate::home::Home;
use crate::process::{shell_quote, Cmd};
use crate::userland::ToolchainSpec;
use crate::version::{KernelVersion, VersionReq};

/// One template's files, embedded: (name, manifest, README body, [(file, contents)]).
struct Embedded {
    name: &'static str,
    manifest: &'static str,
    readme: &'static str,
    files: &'static [(&'static str, &'static str)],
}

macro_rules! template {
    ($name:literal, [$($file:literal),* $(,)?]) => {
        Embedded {
            name: $name,
            manifest: include_str!(concat!("../templates/", $name, "/template.toml")),
            readme: include_str!(concat!("../templates/", $name, "/README.md.in")),
            files: &[$(($file, include_str!(concat!("../templates/", $name, "/", $file)))),*],
        }
    };
}

const EMBEDDED: &[Embedded] = &[
    template!(
        "libbpf",
        ["Makefile", "hello.bpf.c", "hello.c", ".gitignore"]
    ),
    template!(
        "core",
        [
            "Makefile",
            "hello.bpf.c",
            "hello.c",
            "hello.h",
            ".gitignore"
        ]
    ),
    template!("bcc", ["Makefile", "hello.py"]),
    template!("bpftrace", ["Makefile", "hello.bt"]),
];

/// Who boots the guest a template's program runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateBackend {
    /// labctl's hermetic guest (`vm run`'s default).
    Qemu,
    /// virtme-ng with the host's userland (`--backend vng`).
    Vng,
}

/// `template.toml`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// One line: what the template is.
    pub about: String,
    /// Files copied into the project.
    pub files: Vec<String>,
    /// Those of `files` whose placeholders are filled in: `@KERNEL@`, `@PYTHON@` (the
    /// host's python3 that imports bcc), `@BCC_KERNEL_SOURCE@` (BCC's headers for a
    /// kernel without `CONFIG_IKHEADERS`, else empty).
    #[serde(default)]
    pub render: Vec<String>,
    /// Generate `vmlinux.h` from the kernel's BTF into the project.
    pub vmlinux_h: bool,
    /// Shell command run on the host in the project folder; empty: nothing to build.
    pub build: String,
    /// Shell command run in the guest in the project folder.
    pub run: String,
    pub backend: TemplateBackend,
    /// Host programs the guest needs besides the command's own (`vm run --with`), e.g.
    /// what a Makefile's recipe calls.
    #[serde(default)]
    pub with: Vec<String>,
    /// Text of a line the program prints when it works.
    pub expect: String,
}

/// A starter-project template.
#[derive(Debug)]
pub struct Template {
    pub name: &'static str,
    pub manifest: Manifest,
    readme: &'static str,
    files: &'static [(&'static str, &'static str)],
}

impl Template {
    /// (file name, contents) of the files copied as they are.
    pub fn files(&self) -> &'static [(&'static str, &'static str)] {
        self.files
    }
}

/// Every template, in the order `--help` lists them.
pub fn templates() -> &'static [Template] {
    static T: OnceLock<Vec<Template>> = OnceLock::new();
    T.get_or_init(|| {
        EMBEDDED
            .iter()
            .map(|e| Template {
                name: e.name,
                // A broken manifest is a bug in this binary, caught by the unit tests.
                manifest: toml::from_str(e.manifest).unwrap_or_else(|err| {
                    panic!("labctl/templates/{}/template.toml: {err}", e.name)
                }),
                readme: e.readme,
                files: e.files,
            })
            .collect()
    })
}

/// The template called `name`.
pub fn template(name: &str) -> Result<&'static Template, NewError> {
    templates()
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| NewError::UnknownTemplate {
            name: name.to_string(),
            known: template_names(),
        })
}

fn template_names() -> String {
    templates()
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("no template `{name}`: the templates are {known}")]
    UnknownTemplate { name: String, known: String },
    #[error("no finished lab build{} in {}: run `labctl kernel build {}` first", .req.as_ref().map(|r| format!(" of {r}")).unwrap_or_default(), .builds.display(), .req.as_deref().unwrap_or("6.12"))]
    NoBuild {
        req: Option<String>,
        builds: PathBuf,
    },
    #[error("{} exists and is not empty: labctl new writes only a new or empty folder (nothing was written)", .0.display())]
    NotEmpty(PathBuf),
    #[error("{} exists and is not a folder (nothing was written)", .0.display())]
    NotAFolder(PathBuf),
    #[error("cannot generate vmlinux.h from {}: {source} (bpftool comes with `labctl doctor --install`)", .vmlinux.display())]
    Bpftool {
        vmlinux: PathBuf,
        #[source]
        source: crate::process::ProcessError,
    },
    #[error("{} has no BTF for vmlinux.h (bpftool printed no types): was it built with CONFIG_DEBUG_INFO_BTF?", .0.display())]
    NoBtf(PathBuf),
    #[error("preparing BCC's kernel headers: {0}")]
    BccHeaders(#[source] crate::suite::SuiteError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NewError {
    let path = path.to_path_buf();
    move |source| NewError::Io { op, path, source }
}

/// The lab build a project is made for.
#[derive(Debug, Clone)]
pub struct KernelChoice {
    pub version: KernelVersion,
    pub toolchain: ToolchainSpec,
    pub output: BuildOutput,
}

impl KernelChoice {
    /// `vm run`'s words that name this build: `6.12.107`, plus `--toolchain X` when it
    /// was not built with the host's tools.
    pub fn vm_args(&self) -> String {
        if self.toolchain.is_host() {
            self.version.to_string()
        } else {
            format!("{} --toolchain {}", self.version, self.toolchain)
        }
    }
}

/// The build `labctl new` uses: the highest finished version matching `req` (any when
/// None) that `vm run` would boot (samples/bpf not failed), host-toolchain builds before
/// others of the same version, then the most recent.
pub fn choose_build(home: &Home, req: Option<&VersionReq>) -> Result<KernelChoice, NewError> {
    choose_from(crate::build::local_builds(home), req).ok_or_else(|| NewError::NoBuild {
        req: req.map(|r| r.to_string()),
        builds: home.builds(),
    })
}

fn choose_from(builds: Vec<BuildJson>, req: Option<&VersionReq>) -> Option<KernelChoice> {
    let mut ok: Vec<BuildJson> = builds
        .into_iter()
        .filter(|b| {
            b.is_complete()
                && b.samples_ok != Some(false)
                && req.is_none_or(|r| r.matches(&b.version))
        })
        .collect();
    ok.sort_by(|a, b| {
        b.version
            .cmp(&a.version)
            .then(
                b.toolchain
                    .userland
                    .is_host()
                    .cmp(&a.toolchain.userland.is_host()),
            )
            .then(b.finished_unix.cmp(&a.finished_unix))
    });
    let b = ok.into_iter().next()?;
    Some(KernelChoice {
        version: b.version,
        toolchain: b.toolchain.userland.clone(),
        output: b.output?,
    })
}

/// What to make.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// The project folder (created; may exist when empty).
    pub dir: PathBuf,
    pub template: &'static Template,
    pub kernel: KernelChoice,
    /// `--home` words to repeat in the printed `labctl` commands (a home that is not
    /// the default); None: none.
    pub home_arg: Option<PathBuf>,
}

/// A project that was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Project {
    /// Absolute path of the project folder.
    pub dir: PathBuf,
    pub template: String,
    /// `6.12.107`.
    pub kernel: String,
    pub release: String,
    pub toolchain: String,
    /// Files written, relative to `dir`.
    pub files: Vec<String>,
    /// The shell command that builds it on the host (None: nothing to build).
    pub build_command: Option<String>,
    /// The shell command that runs it in the lab guest.
    pub run_command: String,
    /// A line the run prints when the program works.
    pub expect: String,
}

fn q(p: &Path) -> String {
    shell_quote(p.as_os_str())
}

/// Refuse an existing non-empty folder, a file, or a link, before any work is done.
fn check_target(dir: &Path) -> Result<bool, NewError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("inspect", dir)(e)),
        Ok(m) if !m.is_dir() => Err(NewError::NotAFolder(dir.to_path_buf())),
        Ok(_) => {
            let mut rd = std::fs::read_dir(dir).map_err(io("read", dir))?;
            if rd.next().is_some() {
                Err(NewError::NotEmpty(dir.to_path_buf()))
            } else {
                Ok(true)
            }
        }
    }
}

/// Absolute form of `dir` without requiring it to exist (its parent is created).
fn absolute(dir: &Path) -> Result<PathBuf, NewError> {
    let name = dir
        .file_name()
        .ok_or_else(|| NewError::NotAFolder(dir.to_path_buf()))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io("create", &parent))?;
    let parent = std::fs::canonicalize(&parent).map_err(io("resolve", &parent))?;
    Ok(parent.join(name))
}

/// Make the project: check the target, prepare everything in a temporary sibling
/// folder, rename it into place.
pub fn create(home: &Home, req: &NewRequest, sink: &dyn EventSink) -> Result<Project, NewError> {
    let dir = absolute(&req.dir)?;
    let existed_empty = check_target(&dir)?;
    let tmp = dir.with_file_name(format!(
        ".{}.labctl-new-{}",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(io("create", &tmp))?;
    let result = fill(home, req, &dir, &tmp, sink).and_then(|project| {
        if existed_empty {
            // rename(2) replaces an empty folder, and fails if it filled up meanwhile.
            std::fs::remove_dir(&dir)
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|_| NewError::NotEmpty(dir.clone()))?;
        }
        std::fs::rename(&tmp, &dir).map_err(|e| {
            if dir.exists() {
                NewError::NotEmpty(dir.clone())
            } else {
                io("rename into place", &dir)(e)
            }
        })?;
        Ok(project)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn write(path: &Path, data: &[u8], executable: bool) -> Result<(), NewError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, data).map_err(io("write", path))?;
    if executable {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(io("chmod", path))?;
    }
    Ok(())
}

fn fill(
    home: &Home,
    req: &NewRequest,
    dir: &Path,
    tmp: &Path,
    sink: &dyn EventSink,
) -> Result<Project, NewError> {
    let t = req.template;
    let m = &t.manifest;
    let k = &req.kernel;
    let bcc = if t
        .files
        .iter()
        .any(|(n, c)| m.render.iter().any(|r| r == n) && c.contains("@BCC_KERNEL_SOURCE@"))
    {
        Some(bcc_headers(home, k, sink)?)
    } else {
        None
    };
    let mut files = Vec::new();
    for (name, text) in t.files {
        let text = if m.render.iter().any(|r| r == name) {
            render_file(text, k, bcc.as_ref())
        } else {
            text.to_string()
        };
        write(&tmp.join(name), text.as_bytes(), text.starts_with("#!"))?;
        files.push(name.to_string());
    }
    if m.vmlinux_h {
        let started = Instant::now();
        sink.emit(Event::StageStarted {
            stage: Stage::VmlinuxH,
            detail: format!("from the BTF of {}", k.output.vmlinux.display()),
        });
        let r = vmlinux_h(&k.output.vmlinux, sink);
        sink.emit(Event::StageFinished {
            stage: Stage::VmlinuxH,
            ok: r.is_ok(),
            duration: started.elapsed(),
        });
        write(&tmp.join("vmlinux.h"), &r?, false)?;
        files.push("vmlinux.h".into());
    }
    let bcc_note = match bcc.as_ref().and_then(|b| b.headers.as_ref()) {
        Some(h) => format!(
            ", pointing BCC at the lab build's headers (`BCC_KERNEL_SOURCE={}`: linux {} was built without `CONFIG_IKHEADERS`)",
            h.display(),
            k.version
        ),
        None => String::new(),
    };
    let home_words = req
        .home_arg
        .as_ref()
        .map(|h| format!(" --home {}", q(h)))
        .unwrap_or_default();
    let backend = match m.backend {
        TemplateBackend::Qemu => "",
        TemplateBackend::Vng => " --backend vng",
    };
    let dq = q(dir);
    let with: String = m.with.iter().map(|p| format!(" --with {p}")).collect();
    let run_command = format!(
        "labctl{home_words} vm run {}{backend}{with} --share {dq} -- {}",
        k.vm_args(),
        m.run
    );
    let build_command = (!m.build.is_empty()).then(|| format!("cd {dq} && {}", m.build));
    let project = Project {
        dir: dir.to_path_buf(),
        template: t.name.to_string(),
        kernel: k.version.to_string(),
        release: k.output.release.clone(),
        toolchain: k.toolchain.to_string(),
        files: {
            let mut f = files.clone();
            f.push("README.md".into());
            f
        },
        build_command,
        run_command,
        expect: m.expect.clone(),
    };
    let readme = readme(t, &project, k, &home_words, &bcc_note);
    write(&tmp.join("README.md"), readme.as_bytes(), false)?;
    Ok(project)
}

/// What a BCC project runs with.
#[derive(Debug, Clone)]
struct BccSetup {
    python: PathBuf,
    /// `BCC_KERNEL_SOURCE` for a kernel without `CONFIG_IKHEADERS`.
    headers: Option<PathBuf>,
}

/// BCC compiles against the kernel's headers: from the kernel itself with
/// `CONFIG_IKHEADERS=y`, else from the build's header folder (merged once, visible in a
/// vng guest).
fn bcc_headers(home: &Home, k: &KernelChoice, sink: &dyn EventSink) -> Result<BccSetup, NewError> {
    let headers = match k.output.build_tree() {
        Some(tree) if !ikheaders(&k.output.config) => Some(
            crate::suite::examples::bcc_headers(home, &tree, &k.output.release, sink)
                .map_err(NewError::BccHeaders)?,
        ),
        _ => None,
    };
    Ok(BccSetup {
        python: crate::doctor::system_python(),
        headers,
    })
}

/// Fill a rendered file's placeholders (see [`Manifest::render`]).
fn render_file(text: &str, k: &KernelChoice, bcc: Option<&BccSetup>) -> String {
    let path = |p: Option<&PathBuf>| p.map(|p| p.display().to_string()).unwrap_or_default();
    text.replace("@KERNEL@", &k.version.to_string())
        .replace("@PYTHON@", &path(bcc.map(|b| &b.python)))
        .replace(
            "@BCC_KERNEL_SOURCE@",
            &path(bcc.and_then(|b| b.headers.as_ref())),
        )
}

/// `bpftool btf dump file VMLINUX format c`.
fn vmlinux_h(vmlinux: &Path, sink: &dyn EventSink) -> Result<Vec<u8>, NewError> {
    let out = Cmd::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(vmlinux)
        .args(["format", "c"])
        .timeout(Duration::from_secs(300))
        .run_checked(sink)
        .map_err(|source| NewError::Bpftool {
            vmlinux: vmlinux.to_path_buf(),
            source,
        })?;
    if !String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(1 << 20)])
        .contains("struct task_struct {")
    {
        return Err(NewError::NoBtf(vmlinux.to_path_buf()));
    }
    Ok(out.stdout)
}

/// Whether the build's .config has `CONFIG_IKHEADERS=y` (an `=m` module would have to
/// be loaded first; BCC is then pointed at the build's headers instead).
fn ikheaders(config: &Path) -> bool {
    std::fs::read_to_string(config)
        .map(|c| c.lines().any(|l| l.trim() == "CONFIG_IKHEADERS=y"))
        .unwrap_or(false)
}

fn readme(t: &Template, p: &Project, k: &KernelChoice, home_words: &str, bcc_note: &str) -> String {
    let m = &t.manifest;
    let tc = if k.toolchain.is_host() {
        String::new()
    } else {
        format!(", built with `--toolchain {}`", k.toolchain)
    };
    let rel = if k.output.release == k.version.to_string() {
        String::new()
    } else {
        format!(", release `{}`", k.output.release)
    };
    let types = if m.vmlinux_h {
        format!(
            " `vmlinux.h` was generated from\n`{}`.",
            k.output.vmlinux.display()
        )
    } else {
        String::new()
    };
    let mut s = format!(
        "# {name}: {about}\n\nMade by `labctl new --template {name}` for the lab kernel linux {ver}{rel}{tc}.{types}\n\n## Build and run\n\n```sh\n",
        name = t.name,
        about = m.about,
        ver = k.version,
    );
    if let Some(b) = &p.build_command {
        s.push_str(&format!("{b}    # on the host\n"));
    }
    s.push_str(&format!("{}\n```\n\n", p.run_command));
    s.push_str(&format!(
        "The run prints a line with `{}` when the program works. `labctl vm run` boots the\nkernel, mounts this folder at the same path in the guest (`--share`, read-write) and\nruns the command there; its output and exit code are the command's.\n\n",
        m.expect
    ));
    // Longest first: @KERNEL_ARGS@ before @KERNEL@. The unit tests hold every
    // README.md.in to these placeholders.
    let body = t
        .readme
        .replace("@KERNEL_ARGS@", &k.vm_args())
        .replace("@KERNEL@", &k.version.to_string())
        .replace("@HOME@", home_words)
        .replace("@VMLINUX@", &k.output.vmlinux.display().to_string())
        .replace("@DIR_ARG@", &q(&p.dir))
        .replace("@BCC_HEADERS_NOTE@", bcc_note);
    s.push_str(&body);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a README.md.in may say: the kernel version, `vm run`'s words for it, the
    /// `--home` words (with a leading space, or empty), the vmlinux the types came from, the
    /// project folder (shell-quoted), and BCC's header note.
    const PLACEHOLDERS: &[&str] = &[
        "@KERNEL_ARGS@",
        "@KERNEL@",
        "@HOME@",
        "@VMLINUX@",
        "@DIR_ARG@",
        "@BCC_HEADERS_NOTE@",
    ];

    #[test]
    fn every_template_parses_and_embeds_exactly_its_folder() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut on_disk: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut names: Vec<String> = templates().iter().map(|t| t.name.to_string()).collect();
        names.sort();
        assert_eq!(
            names, on_disk,
            "every folder under labctl/templates is a template"
        );
        for t in templates() {
            let m = &t.manifest;
            let embedded: Vec<&str> = t.files.iter().map(|(n, _)| *n).collect();
            assert_eq!(
                m.files, embedded,
                "{}: manifest files = embedded files",
                t.name
            );
            let mut dir: Vec<String> = std::fs::read_dir(root.join(t.name))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != "template.toml" && n != "README.md.in")
                .collect();
            dir.sort();
            let mut listed = m.files.clone();
            listed.sort();
            assert_eq!(
                dir, listed,
                "{}: every file in the folder is listed",
                t.name
            );
            // The expected line is printed by the template's own code, not made up.
            assert!(
                t.files.iter().any(|(_, c)| c.contains(&m.expect)),
                "{}: no file prints {:?}",
                t.name,
                m.expect
            );
            assert!(!m.run.is_empty() && !m.about.is_empty(), "{}", t.name);
            // vmlinux.h-based templates include it; the others must not need it.
            let uses = t.files.iter().any(|(_, c)| c.contains("\"vmlinux.h\""));
            assert_eq!(
                uses, m.vmlinux_h,
                "{}: vmlinux_h matches the sources",
                t.name
            );
            // Rendered files use only the known placeholders; the others none at all.
            for (name, text) in t.files {
                let mut rest = text.to_string();
                if m.render.iter().any(|r| r == name) {
                    for ph in ["@KERNEL@", "@PYTHON@", "@BCC_KERNEL_SOURCE@"] {
                        rest = rest.replace(ph, "");
                    }
                }
                let stray = rest.split('@').skip(1).any(|w| {
                    w.split('@').next().is_some_and(|x| {
                        !x.is_empty() && x.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                    })
                });
                assert!(!stray, "{}/{name}: an unfilled @PLACEHOLDER@", t.name);
            }
            assert!(m.render.iter().all(|r| m.files.contains(r)), "{}", t.name);
            let mut rest = t.readme.to_string();
            for ph in PLACEHOLDERS {
                rest = rest.replace(ph, "");
            }
            assert!(
                !rest.contains('@'),
                "{}: README.md.in has an unknown placeholder",
                t.name
            );
        }
        assert!(template("nope")
            .unwrap_err()
            .to_string()
            .contains("libbpf, core, bcc, bpftrace"));
    }

    #[test]
    fn make_run_never_compiles() {
        for t in templates().iter().filter(|t| t.manifest.build == "make") {
            let mk = t.files.iter().find(|(n, _)| *n == "Makefile").unwrap().1;
            let run_rule = mk
                .lines()
                .find(|l| l.starts_with("run:"))
                .unwrap_or_else(|| panic!("{}: no run rule", t.name));
            assert_eq!(
                run_rule.trim(),
                "run:",
                "{}: `run` has no prerequisites",
                t.name
            );
        }
    }

    fn fake_build(dir: &Path, version: &str, toolchain: &str, finished: u64) -> BuildJson {
        let out = dir.join(format!("{version}-{toolchain}-{finished}"));
        std::fs::create_dir_all(&out).unwrap();
        for f in ["bzImage", "vmlinux", "config"] {
            std::fs::write(out.join(f), "x").unwrap();
        }
        let j = serde_json::json!({
            "schema": 1, "key": "k", "version": version,
            "source": {"path": "/s", "sha256": "", "source": "kernel.org", "url": ""},
            "profile": "lab", "fragments": [], "config_hash": "h",
            "toolchain": {"gcc": "", "binutils": "", "pahole": "", "clang": "", "llc_bpf": true, "glibc": "", "make": "", "userland": toolchain},
            "cc_wrapper": "auto", "jobs": 1, "fixes_enabled": true, "plan": {"apply": [], "notes": []}, "fixes_applied": [],
            "stages": [], "objects": 0, "result": "success", "samples_ok": true, "error": null,
            "diagnosis": [], "started_unix": 1, "finished_unix": finished,
            "output": {"dir": out, "bzimage": out.join("bzImage"), "vmlinux": out.join("vmlinux"),
                "config": out.join("config"), "modules": out, "headers": out, "samples": out,
                "release": version}
        });
        serde_json::from_value(j).unwrap()
    }

    #[test]
    fn the_newest_version_wins_and_host_builds_first() {
        let d = tempfile::tempdir().unwrap();
        let b = |v, t, f| fake_build(d.path(), v, t, f);
        let all = vec![
            b("5.10.46", "host", 5),
            b("6.12.107", "debian:trixie", 9),
            b("6.12.107", "host", 3),
            b("6.1.187", "host", 10),
        ];
        let c = choose_from(all.clone(), None).unwrap();
        assert_eq!(
            (c.version.to_string(), c.vm_args()),
            ("6.12.107".into(), "6.12.107".into())
        );
        let r: VersionReq = "5.10".parse().unwrap();
        assert_eq!(
            choose_from(all.clone(), Some(&r))
                .unwrap()
                .version
                .to_string(),
            "5.10.46"
        );
        let only_trixie = vec![b("6.12.107", "debian:trixie", 9)];
        assert_eq!(
            choose_from(only_trixie, None).unwrap().vm_args(),
            "6.12.107 --toolchain debian:trixie"
        );
        let r: VersionReq = "7.1".parse().unwrap();
        assert!(choose_from(all, Some(&r)).is_none());
    }

    #[test]
    fn refuses_non_empty_folders_and_files_and_writes_atomically() {
        let d = tempfile::tempdir().unwrap();
        let full = d.path().join("full");
        std::fs::create_dir(&full).unwrap();
        std::fs::write(full.join("mine.c"), "keep me").unwrap();
        assert!(matches!(check_target(&full), Err(NewError::NotEmpty(_))));
        let file = d.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(check_target(&file), Err(NewError::NotAFolder(_))));
        let empty = d.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(check_target(&empty).unwrap());
        assert!(!check_target(&d.path().join("new")).unwrap());

        // A whole project (bpftrace: no bpftool needed) into an empty folder and a new one.
        let home = Home::new(d.path().join("home"));
        let kernel = choose_from(vec![fake_build(d.path(), "6.12.107", "host", 1)], None).unwrap();
        for target in [empty.clone(), d.path().join("a/b/new")] {
            let req = NewRequest {
                dir: target.clone(),
                template: template("bpftrace").unwrap(),
                kernel: kernel.clone(),
                home_arg: None,
            };
            let p = create(&home, &req, &crate::events::NullSink).unwrap();
            assert_eq!(p.files, ["Makefile", "hello.bt", "README.md"]);
            assert!(target.join("hello.bt").is_file());
            let readme = std::fs::read_to_string(target.join("README.md")).unwrap();
            assert!(readme.contains(&p.run_command), "{readme}");
            assert!(
                p.run_command
                    .starts_with("labctl vm run 6.12.107 --with bpftrace --share /"),
                "{}",
                p.run_command
            );
            assert!(!readme.contains('@'), "{readme}");
        }
        // No temporary folder is left next to them, and the non-empty one is untouched.
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("labctl-new"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let req = NewRequest {
            dir: full.clone(),
            template: template("bpftrace").unwrap(),
            kernel,
            home_arg: None,
        };
        assert!(matches!(
            create(&home, &req, &crate::events::NullSink),
            Err(NewError::NotEmpty(_))
        ));
        assert_eq!(
            std::fs::read_to_string(full.join("mine.c")).unwrap(),
            "keep me"
        );
        assert_eq!(std::fs::read_dir(&full).unwrap().count(), 1);
    }
}
