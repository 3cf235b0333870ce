//! Careful installs for `labctl doctor --install`: turn "these packages are missing"
//! into a [`Plan`] of exact commands that installs them and changes nothing else, then
//! run it.
//!
//! Rules (apt, where the plan is simulated first):
//! - refresh the package lists when there are none, or when apt does not know a package;
//! - never recommended packages (`--no-install-recommends`);
//! - never remove or downgrade: when apt's simulated plan would, the planner looks for a
//!   plan that does not — today one case: an installed package is a `~bpo` build of the
//!   distribution's backports suite, so the packages that conflict with it are installed
//!   from that same suite (adding the suite, on the mirror the host already uses, when it
//!   is not configured). Everything is simulated, with a private copy of the package
//!   lists, before anything changes. When no such plan exists it stops with
//!   [`InstallError::Conflict`], naming the package and what to do.
//!
//! dnf (without `--allowerasing`), pacman (`--needed`, `--noconfirm` answers "no" to
//! removals) and zypper (`--non-interactive` cancels on conflicts) refuse removals by
//! themselves; their plans are the single install command.
//!
//! Python tools (`pip = [...]` in requirements.toml) go into labctl's own virtual
//! environment ([`crate::process::tools_venv`]), never the system Python.
//!
//! The package manager is reached through [`PackageTool`] so planning is tested with a
//! fake; [`SystemTool`] is the real one (through `process::Cmd`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::events::{Event, EventSink, Level};
use crate::process::{Cmd, Output, ProcessError};

use super::{Distro, Manager};

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("installing {wanted} would remove {}{}; labctl never removes or downgrades packages, so nothing was changed. {advice}", removes.iter().map(|(p, v)| format!("{p} ({v})")).collect::<Vec<_>>().join(", "), if downgrades.is_empty() { String::new() } else { format!(" and downgrade {}", downgrades.join(", ")) })]
    Conflict {
        wanted: String,
        removes: Vec<(String, String)>,
        downgrades: Vec<String>,
        advice: String,
    },
    #[error("the package manager does not know {}, even after refreshing its lists; check the repositories in your apt sources (Debian/Ubuntu need `main`; Ubuntu also `universe`)", packages.join(", "))]
    Unknown { packages: Vec<String> },
    #[error("`{command}` failed ({status}){}", if tail.is_empty() { String::new() } else { format!(":\n{tail}") })]
    Failed {
        command: String,
        status: String,
        tail: String,
    },
    #[error("labctl does not know this distribution's package manager; install by hand: {}", packages.join(" "))]
    NoManager { packages: Vec<String> },
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// Writing an apt source file (atomically) failed.
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> InstallError + 'a {
    move |source| InstallError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One step of a plan: a command, or an apt source file to add.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Step {
    /// Refresh the package lists (`apt-get update`).
    Refresh { argv: Vec<String> },
    /// Write an apt sources file (deb822), with the reason.
    AddSource {
        path: PathBuf,
        text: String,
        why: String,
    },
    /// Install distribution packages.
    Install { argv: Vec<String> },
    /// Create labctl's tools venv.
    Venv { argv: Vec<String> },
    /// Install Python tools into it (runs as the user, never with sudo).
    Pip { argv: Vec<String> },
}

impl Step {
    /// The step as the user would type it.
    pub fn describe(&self) -> String {
        match self {
            Step::Refresh { argv } | Step::Install { argv } => shell_line(argv, true),
            Step::Venv { argv } | Step::Pip { argv } => shell_line(argv, false),
            Step::AddSource { path, why, .. } => format!("add {} ({why})", path.display()),
        }
    }
}

/// What `doctor --install` will do, in order, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Explanations printed before the steps (e.g. why a backports suite is used).
    pub notes: Vec<String>,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// One shell line for an argv, with `sudo ` in front when `privileged` and not root.
pub fn shell_line(argv: &[String], privileged: bool) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|a| crate::process::shell_quote(std::ffi::OsStr::new(a)))
        .collect();
    format!(
        "{}{}",
        if privileged && !is_root() {
            "sudo "
        } else {
            ""
        },
        words.join(" ")
    )
}

/// The package manager as planning sees it.
pub trait PackageTool {
    /// Run a command that only reads (a simulation, `apt-get update` into a private
    /// list folder); its output is returned whatever the exit code.
    fn query(&self, argv: &[String]) -> Result<Output, ProcessError>;
    /// Refresh the system's package lists (changes only apt's index).
    fn refresh(&self, sink: &dyn EventSink) -> Result<(), InstallError>;
    /// Whether the system has package lists at all (a fresh container has none).
    fn lists_present(&self) -> bool;
    /// The host's apt entries (`/etc/apt/...`).
    fn apt_entries(&self) -> Vec<crate::source::apt::AptEntry>;
    /// The host's apt source files (copied into the private configuration).
    fn apt_source_files(&self) -> Vec<PathBuf>;
}

/// The real package manager of this host.
pub struct SystemTool<'a> {
    pub sink: &'a dyn EventSink,
}

const APT_LISTS: &str = "/var/lib/apt/lists";

impl PackageTool for SystemTool<'_> {
    fn query(&self, argv: &[String]) -> Result<Output, ProcessError> {
        Cmd::new(&argv[0])
            .args(&argv[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LC_ALL", "C")
            .timeout(Duration::from_secs(600))
            .run(self.sink)
    }
    fn refresh(&self, sink: &dyn EventSink) -> Result<(), InstallError> {
        let argv = apt_update_argv(&[]);
        sink.emit(Event::Message {
            level: Level::Info,
            text: format!("refreshing the package lists: {}", shell_line(&argv, true)),
        });
        run_changing(&argv, sink)
    }
    fn lists_present(&self) -> bool {
        std::fs::read_dir(APT_LISTS)
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
            })
            .unwrap_or(false)
    }
    fn apt_entries(&self) -> Vec<crate::source::apt::AptEntry> {
        crate::source::apt::read_entries(Path::new("/"))
    }
    fn apt_source_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "sources" || x == "list"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn apt_update_argv(opts: &[String]) -> Vec<String> {
    let mut v = vec!["apt-get".to_string()];
    v.extend(opts.iter().cloned());
    v.extend(["update".to_string(), "-q".to_string()]);
    v
}

fn apt_sim_argv(opts: &[String], target: Option<&str>, pkgs: &[String]) -> Vec<String> {
    let mut v = vec!["apt-get".to_string()];
    v.extend(opts.iter().cloned());
    v.extend(
        [
            "-o",
            "Debug::NoLocking=1",
            "-s",
            "install",
            "--no-install-recommends",
        ]
        .map(String::from),
    );
    if let Some(t) = target {
        v.extend(["-t".to_string(), t.to_string()]);
    }
    v.extend(pkgs.iter().cloned());
    v
}

fn apt_install_argv(target: Option<&str>, pkgs: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ["apt-get", "install", "-y", "--no-install-recommends"]
        .map(String::from)
        .to_vec();
    if let Some(t) = target {
        v.extend(["-t".to_string(), t.to_string()]);
    }
    v.extend(pkgs.iter().cloned());
    v
}

/// What apt's simulation (`apt-get -s install`) says it would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simulation {
    /// Packages it would install or upgrade.
    pub installs: Vec<String>,
    /// (package, installed version) it would remove.
    pub removes: Vec<(String, String)>,
    /// Packages it would downgrade.
    pub downgrades: Vec<String>,
    /// Requested packages apt does not know.
    pub unknown: Vec<String>,
    /// apt's own error lines (E: ...), when it found no solution.
    pub errors: Vec<String>,
    /// When it found no solution: the installed backports builds (`~bpo`) in its way,
    /// from its "unmet dependencies" lines (`qemu-system-arm : Depends:
    /// qemu-system-common (= 1:7.2…) but 1:10.0.2+ds-2+deb13u1~bpo12+1 is to be
    /// installed`): (package, version).
    pub bpo_blockers: Vec<(String, String)>,
}

impl Simulation {
    /// It would remove something or found no solution: what makes a package one of
    /// those that need installing from backports.
    fn blocked(&self) -> bool {
        !self.removes.is_empty() || !self.errors.is_empty()
    }
    pub fn is_clean(&self) -> bool {
        self.removes.is_empty()
            && self.downgrades.is_empty()
            && self.unknown.is_empty()
            && self.errors.is_empty()
    }
}

/// Parse `apt-get -s install` output (stdout and stderr together, `LC_ALL=C`).
pub fn parse_apt_simulation(text: &str) -> Simulation {
    let mut s = Simulation::default();
    let mut in_downgrades = false;
    static UNMET: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?:Pre-Depends|Depends|Breaks|Conflicts): (\S+)[^\n]* but (\S+~bpo\S*) is (?:to be )?installed",
        )
        .expect("valid regex")
    });
    for line in text.lines() {
        if let Some(c) = UNMET.captures(line) {
            let item = (c[1].to_string(), c[2].to_string());
            if !s.bpo_blockers.contains(&item) {
                s.bpo_blockers.push(item);
            }
        }
        if in_downgrades {
            if line.starts_with("  ") {
                s.downgrades
                    .extend(line.split_whitespace().map(String::from));
                continue;
            }
            in_downgrades = false;
        }
        if line.starts_with("The following packages will be DOWNGRADED") {
            in_downgrades = true;
        } else if let Some(rest) = line.strip_prefix("Inst ") {
            if let Some(name) = rest.split_whitespace().next() {
                s.installs.push(name.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("Remv ") {
            let mut w = rest.split_whitespace();
            let name = w.next().unwrap_or_default().to_string();
            let ver = w
                .next()
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_string();
            s.removes.push((name, ver));
        } else if let Some(e) = line.strip_prefix("E: ") {
            let quoted = || e.split('\'').nth(1).map(String::from);
            if let Some(p) = e.strip_prefix("Unable to locate package ") {
                s.unknown.push(p.trim().to_string());
            } else if e.contains("has no installation candidate")
                || e.starts_with("Couldn't find any package")
            {
                s.unknown.extend(quoted());
            } else {
                s.errors.push(e.to_string());
            }
        }
    }
    s
}

fn simulate(
    tool: &dyn PackageTool,
    opts: &[String],
    target: Option<&str>,
    pkgs: &[String],
) -> Result<Simulation, InstallError> {
    let out = tool.query(&apt_sim_argv(opts, target, pkgs))?;
    Ok(parse_apt_simulation(&format!(
        "{}\n{}",
        out.stdout_str(),
        out.stderr_str()
    )))
}

/// Plan the install of `packages` (distribution) and `pip` (Python tools) on this
/// distribution. Only reads the system, except refreshing the package lists when apt
/// has none or does not know a package.
pub fn plan(
    tool: &dyn PackageTool,
    distro: &Distro,
    packages: &[String],
    pip: &[String],
    sink: &dyn EventSink,
) -> Result<Plan, InstallError> {
    let mut plan = Plan::default();
    if !packages.is_empty() {
        match distro.manager {
            None => {
                return Err(InstallError::NoManager {
                    packages: packages.to_vec(),
                })
            }
            Some(Manager::Apt) => plan = plan_apt(tool, distro, packages, sink)?,
            Some(m) => plan.steps.push(Step::Install {
                argv: m.install_argv(packages),
            }),
        }
    }
    if !pip.is_empty() {
        let venv = crate::process::tools_venv();
        let py = venv.join("bin").join("python3");
        if !py.is_file() {
            plan.steps.push(Step::Venv {
                argv: vec![
                    super::system_python().display().to_string(),
                    "-m".into(),
                    "venv".into(),
                    venv.display().to_string(),
                ],
            });
        }
        let mut argv = vec![
            py.display().to_string(),
            "-m".into(),
            "pip".into(),
            "install".into(),
            "--disable-pip-version-check".into(),
            "--no-input".into(),
        ];
        argv.extend(pip.iter().cloned());
        plan.steps.push(Step::Pip { argv });
    }
    Ok(plan)
}

fn plan_apt(
    tool: &dyn PackageTool,
    distro: &Distro,
    pkgs: &[String],
    sink: &dyn EventSink,
) -> Result<Plan, InstallError> {
    let mut refreshed = false;
    if !tool.lists_present() {
        tool.refresh(sink)?;
        refreshed = true;
    }
    let mut sim = simulate(tool, &[], None, pkgs)?;
    if !sim.unknown.is_empty() && !refreshed {
        tool.refresh(sink)?;
        sim = simulate(tool, &[], None, pkgs)?;
    }
    if !sim.unknown.is_empty() {
        return Err(InstallError::Unknown {
            packages: sim.unknown,
        });
    }
    if sim.is_clean() {
        return Ok(Plan {
            steps: vec![Step::Install {
                argv: apt_install_argv(None, pkgs),
            }],
            notes: vec![],
        });
    }
    // backports_plan says None at once when no backports build is in the way.
    match backports_plan(tool, distro, pkgs, &sim, sink)? {
        Some(p) => Ok(p),
        None if sim.removes.is_empty() && sim.downgrades.is_empty() => Err(InstallError::Failed {
            command: shell_line(&apt_sim_argv(&[], None, pkgs), false),
            status: "apt found no solution".into(),
            tail: sim.errors.join("\n"),
        }),
        None => Err(conflict(pkgs, &sim, distro)),
    }
}

fn conflict(pkgs: &[String], sim: &Simulation, distro: &Distro) -> InstallError {
    let names: Vec<&str> = sim.removes.iter().map(|(p, _)| p.as_str()).collect();
    let bpo = sim.removes.iter().any(|(_, v)| v.contains("~bpo"));
    let advice = match (&distro.codename, bpo) {
        (Some(c), true) => format!("{} is a {c}-backports build; the packages labctl needs conflict with it and {c}-backports does not have matching ones on your mirror. Either remove it yourself (`apt-get remove {}`) and run `labctl doctor --install` again, or install the needed packages from where it came from.", names.join(", "), names.join(" ")),
        _ => format!("Resolve the conflict yourself — e.g. remove {} (`apt-get remove {}`) if you do not need it, or install the needed packages from the same source as it — then run `labctl doctor --install` again. See what apt would do with: apt-get -s install --no-install-recommends {}", names.join(", "), names.join(" "), pkgs.join(" ")),
    };
    InstallError::Conflict {
        wanted: "the missing packages".into(),
        removes: sim.removes.clone(),
        downgrades: sim.downgrades.clone(),
        advice,
    }
}

/// A private apt configuration (sources + lists + cache) in a temp folder, removed on drop.
struct PrivateApt {
    dir: PathBuf,
}

impl PrivateApt {
    fn new(
        tool: &dyn PackageTool,
        extra_name: &str,
        extra: &str,
    ) -> Result<PrivateApt, InstallError> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "labctl-apt-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let parts = dir.join("sources.list.d");
        for d in [
            parts.clone(),
            dir.join("lists/partial"),
            dir.join("cache/archives/partial"),
        ] {
            std::fs::create_dir_all(&d).map_err(io("create directory", &d))?;
        }
        let me = PrivateApt { dir };
        for f in tool.apt_source_files() {
            if let Some(name) = f.file_name() {
                let to = parts.join(name);
                std::fs::copy(&f, &to).map_err(io("copy apt source", &f))?;
            }
        }
        let to = parts.join(extra_name);
        std::fs::write(&to, extra).map_err(io("write apt source", &to))?;
        Ok(me)
    }
    fn opts(&self) -> Vec<String> {
        let o = |k: &str, v: PathBuf| ["-o".to_string(), format!("{k}={}", v.display())];
        let mut v = Vec::new();
        v.extend(o("Dir::Etc::SourceParts", self.dir.join("sources.list.d")));
        v.extend(o("Dir::State::Lists", self.dir.join("lists")));
        v.extend(o("Dir::Cache", self.dir.join("cache")));
        v.extend(["-o".to_string(), "Debug::NoLocking=1".to_string()]);
        v
    }
}

impl Drop for PrivateApt {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The deb822 text of a backports entry on `base`.
pub fn backports_source(base: &str, suite: &str) -> String {
    format!("# Added by `labctl doctor --install`: packages matching an installed {suite} build.\nTypes: deb\nURIs: {base}\nSuites: {suite}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
}

/// When the removals are of `~bpo` builds: install the packages that conflict with them
/// from the backports suite instead, if that plan is clean.
fn backports_plan(
    tool: &dyn PackageTool,
    distro: &Distro,
    pkgs: &[String],
    sim: &Simulation,
    sink: &dyn EventSink,
) -> Result<Option<Plan>, InstallError> {
    let Some(codename) = distro.codename.as_deref() else {
        return Ok(None);
    };
    // What is in the way: the builds apt would remove, or (no solution) the installed
    // builds the new packages' dependencies do not match. All must be backports builds.
    let in_the_way = if sim.removes.is_empty() {
        &sim.bpo_blockers
    } else {
        &sim.removes
    };
    if in_the_way.is_empty()
        || !in_the_way.iter().all(|(_, v)| v.contains("~bpo"))
        || !sim.downgrades.is_empty()
    {
        return Ok(None);
    }
    let suite = format!("{codename}-backports");
    let entries = tool.apt_entries();
    let configured = entries.iter().any(|e| e.suites.iter().any(|s| s == &suite));
    let Some(base) = entries
        .iter()
        .find(|e| {
            e.suites.iter().any(|s| s == codename) && e.components.iter().any(|c| c == "main")
        })
        .map(|e| e.uri.clone())
    else {
        return Ok(None);
    };
    let file_name = format!("labctl-{suite}.sources");
    let text = backports_source(&base, &suite);
    let private = if configured {
        None
    } else {
        Some(PrivateApt::new(tool, &file_name, &text)?)
    };
    let opts = private.as_ref().map(PrivateApt::opts).unwrap_or_default();
    if private.is_some() {
        sink.emit(Event::Message { level: Level::Info, text: format!("checking {suite} on your mirror for packages that match the installed {} (private package lists; nothing changes yet)", in_the_way.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", ")) });
        let out = tool.query(&apt_update_argv(&opts))?;
        if !out.success() {
            return Ok(None);
        }
    }
    // Which requested packages cause the removal or the conflict on their own?
    let mut group = Vec::new();
    blocking_packages(tool, pkgs, &mut group)?;
    let rest: Vec<String> = pkgs
        .iter()
        .filter(|p| !group.contains(p))
        .cloned()
        .collect();
    if group.is_empty() {
        return Ok(None);
    }
    if !rest.is_empty() && !simulate(tool, &[], None, &rest)?.is_clean() {
        return Ok(None);
    }
    if !simulate(tool, &opts, Some(&suite), &group)?.is_clean() {
        return Ok(None);
    }
    let mut plan = Plan::default();
    let installed: Vec<String> = in_the_way.iter().map(|(p, v)| format!("{p} {v}")).collect();
    plan.notes.push(format!(
        "{} from {codename} would {} the installed {} (a {suite} build); labctl installs {} from {suite} instead, which removes nothing.",
        group.join(", "),
        if sim.removes.is_empty() { "not install beside" } else { "remove" },
        installed.join(", "),
        group.join(", ")
    ));
    if !configured {
        let path = PathBuf::from("/etc/apt/sources.list.d").join(&file_name);
        plan.notes.push(format!("{suite} is not in your apt sources: labctl adds {} (the mirror your {codename} entry uses).", path.display()));
        plan.steps.push(Step::AddSource {
            path,
            text,
            why: format!("{suite} on your {codename} mirror"),
        });
        plan.steps.push(Step::Refresh {
            argv: apt_update_argv(&[]),
        });
    }
    if !rest.is_empty() {
        plan.steps.push(Step::Install {
            argv: apt_install_argv(None, &rest),
        });
    }
    plan.steps.push(Step::Install {
        argv: apt_install_argv(Some(&suite), &group),
    });
    Ok(Some(plan))
}

/// The packages of `set` (whose install as a whole removes something or finds no
/// solution) that do so on their own, found by halving: a half whose simulation is not
/// blocked holds none (more packages in one apt install do not take a removal or a
/// conflict back), so only blocked halves are split. One culprit among the 18 packages
/// of a bookworm host takes 10 simulations instead of 18, at about 1.7 s each.
fn blocking_packages(
    tool: &dyn PackageTool,
    set: &[String],
    out: &mut Vec<String>,
) -> Result<(), InstallError> {
    if let [one] = set {
        out.push(one.clone());
        return Ok(());
    }
    let (a, b) = set.split_at(set.len() / 2);
    for half in [a, b] {
        if !half.is_empty() && simulate(tool, &[], None, half)?.blocked() {
            blocking_packages(tool, half, out)?;
        }
    }
    Ok(())
}

/// `argv` as root (through sudo when labctl is not), apt non-interactive.
fn privileged(argv: &[String]) -> Cmd {
    let cmd = if is_root() {
        Cmd::new(&argv[0]).args(&argv[1..])
    } else {
        Cmd::new("sudo").args(argv)
    };
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
}

fn run_changing(argv: &[String], sink: &dyn EventSink) -> Result<(), InstallError> {
    let out = privileged(argv).inherit_stdio().run(sink)?;
    if out.success() {
        Ok(())
    } else {
        Err(InstallError::Failed {
            command: shell_line(argv, true),
            status: crate::process::status_text(out.code),
            tail: String::new(),
        })
    }
}

/// The system's CA bundle: the first file of requirement `ca-certificates` that exists.
fn system_ca_bundle() -> Option<PathBuf> {
    super::requirement("ca-certificates")?
        .file
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Packages whose file the mirror answered with 404 in apt's output (`Failed to fetch
/// …/pool/…/libbpf-dev_0.3-2%2bdeb11u1_amd64.deb  404  Not Found`): (package, version).
pub fn unserved_packages(apt_output: &str) -> Vec<(String, String)> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"Failed to fetch \S*/([A-Za-z0-9.+-]+)_([^_/\s]+)_[A-Za-z0-9]+\.deb\s+404",
        )
        .expect("valid regex")
    });
    let mut out: Vec<(String, String)> = Vec::new();
    for c in RE.captures_iter(apt_output) {
        let version = c[2]
            .replace("%2b", "+")
            .replace("%2B", "+")
            .replace("%3a", ":")
            .replace("%3A", ":");
        let item = (c[1].to_string(), version);
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The install argv with each unserved package taken from the release's own suite
/// (`libbpf-dev/bullseye`): named ones rewritten in place, dependencies added.
pub fn from_release_suite(
    argv: &[String],
    unserved: &[(String, String)],
    codename: &str,
) -> Vec<String> {
    let mut v = argv.to_vec();
    for (pkg, _) in unserved {
        let pinned = format!("{pkg}/{codename}");
        match v.iter().position(|a| a == pkg) {
            Some(i) => v[i] = pinned,
            None => v.push(pinned),
        }
    }
    v
}

fn run_captured(
    argv: &[String],
    sink: &dyn EventSink,
) -> Result<crate::process::Output, InstallError> {
    Ok(privileged(argv).env("LC_ALL", "C").run(sink)?)
}

/// Fetch an apt install's packages first (`--download-only`: nothing changes). A mirror
/// that lists a package it does not serve (HTTP 404: a security update missing from a
/// partial mirror or snapshot) would fail the whole install; those packages are then
/// taken from the release's own suite, with a warning naming what was not served. Any
/// other download failure stops here with apt's words.
fn fetch_first(argv: &[String], sink: &dyn EventSink) -> Result<Vec<String>, InstallError> {
    let download = |a: &[String]| {
        let mut d = a.to_vec();
        if let Some(i) = d.iter().position(|x| x == "install") {
            d.insert(i + 1, "--download-only".into());
        }
        d
    };
    let failed = |a: &[String], out: &crate::process::Output| InstallError::Failed {
        command: shell_line(&download(a), true),
        status: crate::process::status_text(out.code),
        tail: crate::process::tail_lines(&format!("{}{}", out.stdout_str(), out.stderr_str()), 12),
    };
    let out = run_captured(&download(argv), sink)?;
    if out.success() {
        return Ok(argv.to_vec());
    }
    let text = format!("{}{}", out.stdout_str(), out.stderr_str());
    let unserved = unserved_packages(&text);
    let codename = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| super::parse_os_release(&t, false).codename);
    let (Some(codename), false) = (codename, unserved.is_empty()) else {
        return Err(failed(argv, &out));
    };
    let names: Vec<String> = unserved.iter().map(|(p, v)| format!("{p} {v}")).collect();
    sink.emit(Event::Message {
        level: Level::Warn,
        text: format!(
            "the package mirror lists but does not serve {} (HTTP 404); taking {} from {codename}'s own release instead (an older build than the missing update: point apt at a complete mirror to get it)",
            names.join(", "),
            if unserved.len() == 1 { "it" } else { "them" }
        ),
    });
    let retry = from_release_suite(argv, &unserved, &codename);
    let out = run_captured(&download(&retry), sink)?;
    if out.success() {
        Ok(retry)
    } else {
        Err(failed(&retry, &out))
    }
}

/// Run the plan's steps in order, stopping at the first failure.
pub fn execute(plan: &Plan, sink: &dyn EventSink) -> Result<(), InstallError> {
    for step in &plan.steps {
        sink.emit(Event::Message {
            level: Level::Info,
            text: format!("$ {}", step.describe()),
        });
        match step {
            Step::Install { argv } if argv.first().is_some_and(|a| a == "apt-get") => {
                let argv = fetch_first(argv, sink)?;
                run_changing(&argv, sink)?
            }
            Step::Refresh { argv } | Step::Install { argv } => run_changing(argv, sink)?,
            Step::AddSource { path, text, .. } => {
                if is_root() {
                    crate::home::write_atomic(path, text.as_bytes())?;
                } else {
                    let tmp =
                        std::env::temp_dir().join(format!("labctl-{}.sources", std::process::id()));
                    std::fs::write(&tmp, text).map_err(io("write", &tmp))?;
                    let r = run_changing(
                        &[
                            "install".into(),
                            "-m".into(),
                            "0644".into(),
                            tmp.display().to_string(),
                            path.display().to_string(),
                        ],
                        sink,
                    );
                    let _ = std::fs::remove_file(&tmp);
                    r?;
                }
            }
            Step::Venv { argv } | Step::Pip { argv } => {
                let mut cmd = Cmd::new(&argv[0])
                    .args(&argv[1..])
                    .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
                // pip trusts its own bundled CA list; use the system's store (what apt and
                // curl trust, including CAs the administrator added) unless told otherwise.
                if std::env::var_os("PIP_CERT").is_none() {
                    if let Some(bundle) = system_ca_bundle() {
                        cmd = cmd.env("PIP_CERT", bundle);
                    }
                }
                let out = cmd.inherit_stdio().run(sink)?;
                if !out.success() {
                    return Err(InstallError::Failed {
                        command: shell_line(argv, false),
                        status: crate::process::status_text(out.code),
                        tail: String::new(),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::NullSink;
    use std::cell::RefCell;

    const BOOKWORM: &str = "ID=debian\nVERSION_CODENAME=bookworm\n";

    /// The fake's rule: (argv, lists present) → what apt prints.
    type Answer = Box<dyn Fn(&[String], bool) -> String>;

    /// A fake apt: answers simulations from a rule, records every call.
    struct FakeApt {
        lists: RefCell<bool>,
        calls: RefCell<Vec<String>>,
        refreshes: RefCell<usize>,
        entries: Vec<crate::source::apt::AptEntry>,
        answer: Answer,
    }

    impl FakeApt {
        fn new(answer: impl Fn(&[String], bool) -> String + 'static) -> FakeApt {
            FakeApt {
                lists: RefCell::new(true),
                calls: RefCell::default(),
                refreshes: RefCell::new(0),
                entries: crate::source::apt::parse_deb822("Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"),
                answer: Box::new(answer),
            }
        }
    }

    impl PackageTool for FakeApt {
        fn query(&self, argv: &[String]) -> Result<Output, ProcessError> {
            self.calls.borrow_mut().push(argv.join(" "));
            let text = (self.answer)(argv, *self.lists.borrow());
            Ok(Output {
                code: Some(0),
                stdout: text.into_bytes(),
                stderr: vec![],
                duration: Duration::ZERO,
            })
        }
        fn refresh(&self, _: &dyn EventSink) -> Result<(), InstallError> {
            *self.refreshes.borrow_mut() += 1;
            *self.lists.borrow_mut() = true;
            Ok(())
        }
        fn lists_present(&self) -> bool {
            *self.lists.borrow()
        }
        fn apt_entries(&self) -> Vec<crate::source::apt::AptEntry> {
            self.entries.clone()
        }
        fn apt_source_files(&self) -> Vec<PathBuf> {
            vec![]
        }
    }

    fn pkgs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// `plan` for the apt packages `p` on Debian 12, no Python tools.
    fn plan_bookworm(apt: &FakeApt, p: &[&str]) -> Result<Plan, InstallError> {
        plan(
            apt,
            &super::super::parse_os_release(BOOKWORM, false),
            &pkgs(p),
            &[],
            &NullSink,
        )
    }

    fn installs(p: &Plan) -> Vec<String> {
        p.steps
            .iter()
            .filter_map(|s| {
                if let Step::Install { argv } = s {
                    Some(argv.join(" "))
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn packages_the_mirror_does_not_serve_come_from_the_release_suite() {
        let out = "Fetched 179 MB in 6s (29.2 MB/s)\nE: Failed to fetch http://mirror.invalid/debian-security/pool/updates/main/libb/libbpf/libbpf-dev_0.3-2%2bdeb11u1_amd64.deb  404  Not Found [IP: 192.0.2.1 80]\nE: Failed to fetch http://mirror.invalid/debian-security/pool/updates/main/libb/libbpf/libbpf0_1%3a0.3-2%2bdeb11u1_amd64.deb  404  Not Found\nE: Unable to fetch some archives, maybe run apt-get update or try with --fix-missing?\n";
        let u = unserved_packages(out);
        assert_eq!(
            u,
            [
                ("libbpf-dev".to_string(), "0.3-2+deb11u1".to_string()),
                ("libbpf0".to_string(), "1:0.3-2+deb11u1".to_string())
            ]
        );
        let argv = pkgs(&[
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            "make",
            "libbpf-dev",
            "clang",
        ]);
        assert_eq!(
            from_release_suite(&argv, &u, "bullseye"),
            pkgs(&[
                "apt-get",
                "install",
                "-y",
                "--no-install-recommends",
                "make",
                "libbpf-dev/bullseye",
                "clang",
                "libbpf0/bullseye"
            ])
        );
        // Other failures (a network error, a 403) are not taken for a missing file.
        assert!(unserved_packages(
            "E: Failed to fetch http://x/pool/a_1_amd64.deb  Could not resolve 'x'\n"
        )
        .is_empty());
        assert!(unserved_packages(
            "E: Failed to fetch http://x/pool/a_1_amd64.deb  403  Forbidden\n"
        )
        .is_empty());
    }

    #[test]
    fn parses_apt_simulations() {
        let s = parse_apt_simulation("Reading package lists...\nThe following packages will be REMOVED:\n  qemu-utils\nThe following packages will be DOWNGRADED:\n  libfoo1 libbar\n0 upgraded\nRemv qemu-utils [1:10.0.2+ds-2+deb13u1~bpo12+1]\nInst seabios (1.16.2-1 Debian:12.15/oldstable [all])\nInst qemu-system-x86 [1:7.0] (1:7.2+dfsg-7 Debian [amd64])\n");
        assert_eq!(
            s.removes,
            [(
                "qemu-utils".to_string(),
                "1:10.0.2+ds-2+deb13u1~bpo12+1".to_string()
            )]
        );
        assert_eq!(s.downgrades, ["libfoo1", "libbar"]);
        assert_eq!(s.installs, ["seabios", "qemu-system-x86"]);
        let u = parse_apt_simulation("E: Unable to locate package make\nE: Package 'busybox-static' has no installation candidate\nE: Unable to correct problems, you have held broken packages.\n");
        assert_eq!(u.unknown, ["make", "busybox-static"]);
        assert_eq!(u.errors.len(), 1);
        assert!(
            parse_apt_simulation("Inst make (4.3-4.1 Debian:12 [amd64])\nConf make\n").is_clean()
        );
    }

    #[test]
    fn a_clean_plan_installs_without_recommends() {
        let apt = FakeApt::new(|_, _| "Inst libbpf-dev (1:1.1.2 Debian [amd64])\n".into());
        let p = plan_bookworm(&apt, &["libbpf-dev", "python3-bpfcc"]).unwrap();
        assert_eq!(
            installs(&p),
            ["apt-get install -y --no-install-recommends libbpf-dev python3-bpfcc"]
        );
        assert_eq!(
            *apt.refreshes.borrow(),
            0,
            "lists were present and knew every package"
        );
        assert!(
            apt.calls.borrow().iter().all(|c| c.contains(" -s ")),
            "only simulations: {:?}",
            apt.calls.borrow()
        );
    }

    #[test]
    fn missing_or_stale_lists_are_refreshed_once() {
        // A fresh container: no lists; apt knows nothing until refreshed.
        let apt = FakeApt::new(|argv, lists| {
            if lists {
                format!("Inst {} (1 Debian [amd64])\n", argv.last().unwrap())
            } else {
                format!("E: Unable to locate package {}\n", argv.last().unwrap())
            }
        });
        *apt.lists.borrow_mut() = false;
        let p = plan_bookworm(&apt, &["make"]).unwrap();
        assert_eq!(*apt.refreshes.borrow(), 1);
        assert_eq!(installs(&p).len(), 1);
        // Lists present but stale: the unknown package triggers one refresh, then it is found.
        let seen = std::rc::Rc::new(std::cell::Cell::new(0));
        let s2 = seen.clone();
        let apt = FakeApt::new(move |_, _| {
            s2.set(s2.get() + 1);
            if s2.get() == 1 {
                "E: Unable to locate package bpftool\n".into()
            } else {
                "Inst bpftool (7 Debian [amd64])\n".into()
            }
        });
        plan_bookworm(&apt, &["bpftool"]).unwrap();
        assert_eq!(*apt.refreshes.borrow(), 1);
        // Still unknown after the refresh: a clear error naming it.
        let apt = FakeApt::new(|_, _| "E: Unable to locate package nosuchpkg\n".into());
        let e = plan_bookworm(&apt, &["nosuchpkg"]).unwrap_err();
        assert!(
            matches!(&e, InstallError::Unknown { packages } if packages == &["nosuchpkg"]),
            "{e}"
        );
    }

    #[test]
    fn a_removal_is_refused_naming_the_package() {
        // A package from a third-party source conflicts: no plan removes it.
        let apt = FakeApt::new(|argv, _| {
            if argv.iter().any(|a| a == "qemu-system-x86") {
                "Remv qemu-utils [1:10.0.2+custom1]\nInst qemu-system-x86 (1:7.2 Debian [amd64])\n"
                    .into()
            } else {
                "Inst make (4.3 Debian [amd64])\n".into()
            }
        });
        let e = plan_bookworm(&apt, &["make", "qemu-system-x86"]).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, InstallError::Conflict { .. }), "{msg}");
        assert!(
            msg.contains("qemu-utils (1:10.0.2+custom1)")
                && msg.contains("nothing was changed")
                && msg.contains("apt-get remove qemu-utils"),
            "{msg}"
        );
        assert!(
            apt.calls.borrow().iter().all(|c| c.contains(" -s ")),
            "nothing but simulations ran: {:?}",
            apt.calls.borrow()
        );
    }

    #[test]
    fn a_backports_build_is_matched_from_backports() {
        // The installed qemu-utils is a ~bpo12 build; bookworm's qemu-system-x86 would
        // remove it, bookworm-backports' does not.
        let apt = FakeApt::new(|argv, _| {
            let from_bpo = argv
                .windows(2)
                .any(|w| w[0] == "-t" && w[1] == "bookworm-backports");
            if argv.iter().any(|a| a == "update") {
                String::new()
            } else if argv.iter().any(|a| a == "qemu-system-x86") && !from_bpo {
                "Remv qemu-utils [1:10.0.2+ds-2+deb13u1~bpo12+1]\n".into()
            } else {
                "Inst x (1 Debian [amd64])\n".into()
            }
        });
        let many = [
            "make",
            "flex",
            "bison",
            "rsync",
            "cpio",
            "kmod",
            "clang",
            "qemu-system-x86",
            "llvm",
            "busybox-static",
        ];
        let p = plan_bookworm(&apt, &many).unwrap();
        assert_eq!(
            installs(&p),
            [
                "apt-get install -y --no-install-recommends make flex bison rsync cpio kmod clang llvm busybox-static",
                "apt-get install -y --no-install-recommends -t bookworm-backports qemu-system-x86"
            ]
        );
        // The culprit was found by halving, not one simulation per package: the whole
        // set, 6 for the halving (5+5, then 2+3, then 1+2), the rest together and the
        // group from backports: 9, where one per package made 13.
        let sims = apt
            .calls
            .borrow()
            .iter()
            .filter(|c| c.contains(" -s "))
            .count();
        assert_eq!(sims, 9, "{:#?}", apt.calls.borrow());
        let Step::AddSource { path, text, .. } = &p.steps[0] else {
            panic!("{:?}", p.steps)
        };
        assert_eq!(
            path,
            Path::new("/etc/apt/sources.list.d/labctl-bookworm-backports.sources")
        );
        assert!(
            text.contains("URIs: http://mirror.invalid/debian")
                && text.contains("Suites: bookworm-backports"),
            "{text}"
        );
        assert!(matches!(p.steps[1], Step::Refresh { .. }));
        assert!(
            p.notes[0].contains("qemu-utils 1:10.0.2+ds-2+deb13u1~bpo12+1"),
            "{:?}",
            p.notes
        );
        // The check ran against private lists, never the system's.
        let calls = apt.calls.borrow();
        assert!(
            calls
                .iter()
                .any(|c| c.contains("Dir::State::Lists=") && c.ends_with("update -q")),
            "{calls:?}"
        );
        assert!(
            calls
                .iter()
                .filter(|c| !c.contains(" -s "))
                .all(|c| c.contains("Dir::State::Lists=")),
            "{calls:?}"
        );
    }

    #[test]
    fn a_package_that_cannot_install_beside_a_backports_build_comes_from_backports() {
        // qemu-x86 came from bookworm-backports (the main job's doctor did that); the
        // test group's qemu-system-arm from bookworm needs bookworm's qemu-system-common,
        // and apt finds no solution: it comes from backports too. Backports is already
        // in the sources here, so there is no private list and no new source.
        let mut apt = FakeApt::new(|argv, _| {
            let from_bpo = argv
                .windows(2)
                .any(|w| w[0] == "-t" && w[1] == "bookworm-backports");
            if argv.iter().any(|a| a == "qemu-system-arm") && !from_bpo {
                "The following packages have unmet dependencies:\n qemu-system-arm : Depends: qemu-system-common (= 1:7.2+dfsg-7+deb12u18+b3) but 1:10.0.2+ds-2+deb13u1~bpo12+1 is to be installed\nE: Unable to correct problems, you have held broken packages.\n".into()
            } else {
                "Inst x (1 Debian [amd64])\n".into()
            }
        });
        apt.entries = crate::source::apt::parse_deb822("Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates bookworm-backports\nComponents: main\n");
        let s = parse_apt_simulation(&(apt.answer)(
            &pkgs(&["apt-get", "-s", "install", "qemu-system-arm"]),
            true,
        ));
        assert_eq!(
            s.bpo_blockers,
            [(
                "qemu-system-common".to_string(),
                "1:10.0.2+ds-2+deb13u1~bpo12+1".to_string()
            )]
        );
        let p = plan_bookworm(
            &apt,
            &[
                "rpm",
                "docker-registry",
                "mmdebstrap",
                "gcc-aarch64-linux-gnu",
                "qemu-system-arm",
            ],
        )
        .unwrap();
        assert_eq!(
            installs(&p),
            [
                "apt-get install -y --no-install-recommends rpm docker-registry mmdebstrap gcc-aarch64-linux-gnu",
                "apt-get install -y --no-install-recommends -t bookworm-backports qemu-system-arm"
            ]
        );
        assert!(
            !p.steps.iter().any(|s| matches!(s, Step::AddSource { .. })),
            "{:?}",
            p.steps
        );
        assert!(
            p.notes[0].contains(
                "not install beside the installed qemu-system-common 1:10.0.2+ds-2+deb13u1~bpo12+1"
            ),
            "{:?}",
            p.notes
        );
        // No solution without a backports build in the way stays apt's error.
        let stuck = FakeApt::new(|argv, _| {
            if argv.iter().any(|a| a == "qemu-system-arm") {
                "E: Unable to correct problems, you have held broken packages.\n".into()
            } else {
                String::new()
            }
        });
        let e = plan_bookworm(&stuck, &["qemu-system-arm"]).unwrap_err();
        assert!(e.to_string().contains("apt found no solution"), "{e}");
    }

    #[test]
    fn python_tools_go_into_the_tools_venv() {
        let apt = FakeApt::new(|_, _| String::new());
        let p = plan(
            &apt,
            &super::super::parse_os_release(BOOKWORM, false),
            &[],
            &pkgs(&["virtme-ng"]),
            &NullSink,
        )
        .unwrap();
        let last = p.steps.last().unwrap();
        let Step::Pip { argv } = last else {
            panic!("{last:?}")
        };
        assert!(
            argv[0].starts_with(&crate::process::tools_venv().display().to_string()),
            "{argv:?}"
        );
        assert_eq!(argv.last().unwrap(), "virtme-ng");
        assert!(
            p.steps
                .iter()
                .all(|s| matches!(s, Step::Venv { .. } | Step::Pip { .. })),
            "only the user's venv changes: {:?}",
            p.steps
        );
        assert!(apt.calls.borrow().is_empty(), "no package manager involved");
    }
}
