//! Host requirements: what labctl's main job (kernel build, samples/bpf, the
//! examples-bpf loaders, the VM, every default suite test) and its test suite need from
//! the host, whether the host has it, and how to install what it lacks.
//!
//! The requirements are data — `doctor/requirements.toml`, the only place host
//! requirements are written — each with a check that looks for the real thing (a
//! program, a header, a library, a Python module, a file) and its package names per
//! package-manager family. Gathering facts from the host ([`HostFacts::gather`]) is
//! kept apart from judging them ([`evaluate`]) so the judgement is tested on fixtures;
//! [`install`] plans and runs careful installs (refresh lists, no recommends, never
//! remove or downgrade). `kernel build` runs the build checks first ([`preflight`]) and
//! the suite runs the examples checks before building the loaders ([`missing_advice`]).

pub mod install;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::build::catalogue::{Catalogue, DottedVersion, Facts};
use crate::build::toolchain::Toolchain;
use crate::events::EventSink;
use crate::home::human_bytes;
use crate::version::KernelVersion;

const REQUIREMENTS: &str = include_str!("requirements.toml");

/// Bytes the lab profile needs (source tree ≈ 1.2 GiB + build with debug info and BTF ≈ 3 GiB),
/// and the defconfig profile.
pub const LAB_DISK_NEED: u64 = 4 << 30;
pub const DEFCONFIG_DISK_NEED: u64 = 10 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Missing,
}

/// What a requirement is needed for. The main job needs every group but `Test`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Building the kernel, modules and headers.
    Build,
    /// Building samples/bpf.
    Samples,
    /// Building the examples-bpf programs and loaders the suite runs.
    Examples,
    /// Booting lab kernels.
    Vm,
    /// Default suite tests that use host tools (hello-bcc).
    Suite,
    /// `kernel package`: the distributions' package builders.
    Package,
    /// `cargo test --workspace`.
    Test,
    /// A foreign architecture (`--arch`): its cross compiler, QEMU and guest userland.
    /// Each requirement names its architecture; `doctor --arch NAME` checks that one's.
    Cross,
    /// Resources (disk, memory) and the accelerator: not packages.
    Host,
}

impl Group {
    /// The groups `labctl doctor` checks by default: everything the main job
    /// (`labctl vm test` on a fresh home) uses.
    pub const MAIN_JOB: &'static [Group] = &[
        Group::Build,
        Group::Samples,
        Group::Examples,
        Group::Vm,
        Group::Suite,
    ];
    /// What a host that only pulls ready kernels (`vm test --from`, `--registry`) uses:
    /// no compiler, clang or pahole.
    pub const PULL_ONLY: &'static [Group] = &[Group::Vm, Group::Suite];
}

/// Required: missing fails `doctor` (exit 2); optional: missing is a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    #[default]
    Required,
    Optional,
}

/// One entry of `requirements.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub id: String,
    pub title: String,
    pub group: Group,
    /// Group `cross` only: the architecture (`labctl/arch/NAME.toml`) it serves.
    #[serde(default)]
    pub arch: Option<String>,
    #[serde(default)]
    pub need: Need,
    pub why: String,
    #[serde(default)]
    pub program: Option<String>,
    #[serde(default)]
    pub header: Vec<String>,
    #[serde(default)]
    pub library: Vec<String>,
    #[serde(default)]
    pub python: Option<String>,
    #[serde(default)]
    pub file: Vec<String>,
    #[serde(default)]
    pub special: Option<Special>,
    #[serde(default)]
    pub apt: Vec<String>,
    #[serde(default)]
    pub dnf: Vec<String>,
    #[serde(default)]
    pub pacman: Vec<String>,
    #[serde(default)]
    pub zypper: Vec<String>,
    #[serde(default)]
    pub pip: Vec<String>,
}

/// Checks that need more than "is it there".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Special {
    /// pahole, new enough for the target kernel.
    Pahole,
    /// clang and an llc with the bpf target.
    ClangBpf,
    /// A statically linked busybox.
    BusyboxStatic,
    /// What virtme-ng's guest needs for its script ports: nothing from 1.39 on (Python
    /// 3.10+), the host's udevd before (the last release for older Pythons is 1.38).
    VngScriptPorts,
}

#[derive(Deserialize)]
struct RequirementsFile {
    req: Vec<Requirement>,
}

/// Every requirement, in file order.
pub fn requirements() -> &'static [Requirement] {
    static R: std::sync::OnceLock<Vec<Requirement>> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        toml::from_str::<RequirementsFile>(REQUIREMENTS)
            .expect("doctor/requirements.toml is valid")
            .req
    })
}

/// The requirement with this id.
pub fn requirement(id: &str) -> Option<&'static Requirement> {
    requirements().iter().find(|r| r.id == id)
}

impl Requirement {
    /// The programs its check looks for (its own, or the special check's).
    pub fn programs(&self) -> Vec<&str> {
        let special: &[&str] = match self.special {
            Some(Special::Pahole) => &["pahole"],
            Some(Special::ClangBpf) => &["clang", "llc"],
            Some(Special::BusyboxStatic) => &["busybox"],
            Some(Special::VngScriptPorts) | None => &[],
        };
        self.program
            .as_deref()
            .into_iter()
            .chain(special.iter().copied())
            .collect()
    }
    /// Distribution packages for this manager (empty for pip tools).
    pub fn packages(&self, m: Manager) -> &[String] {
        match m.family() {
            "apt" => &self.apt,
            "dnf" => &self.dnf,
            "pacman" => &self.pacman,
            _ => &self.zypper,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub id: String,
    pub title: String,
    pub status: Status,
    pub detail: String,
    pub group: Group,
    /// Distribution packages that provide it on this host's distribution (empty when
    /// present or unknown).
    pub packages: Vec<String>,
    /// Python packages labctl installs into its tools venv.
    #[serde(default)]
    pub pip: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    Apt,
    Dnf,
    Yum,
    Pacman,
    Zypper,
}

impl Manager {
    pub fn family(self) -> &'static str {
        match self {
            Manager::Apt => "apt",
            Manager::Dnf | Manager::Yum => "dnf",
            Manager::Pacman => "pacman",
            Manager::Zypper => "zypper",
        }
    }
    /// The install argv for these packages (without sudo): never recommended or weak
    /// dependencies, never removals (apt is simulated first, see [`install`]; dnf
    /// without `--allowerasing`, pacman's and zypper's non-interactive defaults refuse
    /// conflicts).
    pub fn install_argv(self, pkgs: &[String]) -> Vec<String> {
        let mut v: Vec<String> = match self {
            Manager::Apt => ["apt-get", "install", "-y", "--no-install-recommends"]
                .map(String::from)
                .to_vec(),
            Manager::Dnf => ["dnf", "install", "-y", "--setopt=install_weak_deps=False"]
                .map(String::from)
                .to_vec(),
            Manager::Yum => ["yum", "install", "-y", "--setopt=install_weak_deps=False"]
                .map(String::from)
                .to_vec(),
            Manager::Pacman => ["pacman", "-S", "--needed", "--noconfirm"]
                .map(String::from)
                .to_vec(),
            Manager::Zypper => ["zypper", "--non-interactive", "install", "--no-recommends"]
                .map(String::from)
                .to_vec(),
        };
        v.extend(pkgs.iter().cloned());
        v
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Distro {
    pub id: String,
    pub name: String,
    /// `VERSION_CODENAME` (bookworm, noble, ...), when given.
    #[serde(default)]
    pub codename: Option<String>,
    pub manager: Option<Manager>,
}

/// Parse /etc/os-release: ID and ID_LIKE decide the package manager.
pub fn parse_os_release(text: &str, has_dnf: bool) -> Distro {
    let mut kv = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            kv.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
        }
    }
    let id = kv.get("ID").cloned().unwrap_or_default();
    let like = kv.get("ID_LIKE").cloned().unwrap_or_default();
    let words: Vec<&str> = std::iter::once(id.as_str())
        .chain(like.split_whitespace())
        .collect();
    let manager = words.iter().find_map(|w| match *w {
        "debian" | "ubuntu" => Some(Manager::Apt),
        "fedora" | "rhel" | "centos" => Some(if has_dnf { Manager::Dnf } else { Manager::Yum }),
        "arch" => Some(Manager::Pacman),
        "opensuse" | "suse" | "sles" | "opensuse-leap" | "opensuse-tumbleweed" => {
            Some(Manager::Zypper)
        }
        _ => None,
    });
    Distro {
        name: kv.get("PRETTY_NAME").cloned().unwrap_or_else(|| id.clone()),
        codename: kv
            .get("VERSION_CODENAME")
            .cloned()
            .filter(|c| !c.is_empty()),
        id,
        manager,
    }
}

/// Everything read from the host, in one plain value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostFacts {
    /// Program name → found on PATH (or in labctl's tools venv).
    pub programs: BTreeMap<String, bool>,
    pub toolchain: Toolchain,
    /// Header (as included, `bpf/libbpf.h`) → found under an include folder.
    pub headers: BTreeMap<String, bool>,
    /// Library file (`libbpf.a`) → found under a library folder.
    pub libraries: BTreeMap<String, bool>,
    /// Python module → importable by the system python3.
    pub python: BTreeMap<String, bool>,
    /// File path → exists.
    pub files: BTreeMap<String, bool>,
    pub busybox_static: Option<bool>,
    /// The system python3's `major.minor` (None: no python3 yet).
    #[serde(default)]
    pub python_version: Option<String>,
    /// /dev/kvm: None = absent, Some(opens read-write).
    pub kvm_rw: Option<bool>,
    /// The VM engine's cached KVM probe verdict for this boot (see [`kvm_probe_hook`]).
    pub kvm_probe: Option<Result<String, String>>,
    pub mem_total: Option<u64>,
    pub disk_free: Option<u64>,
    pub disk_path: PathBuf,
    pub distro: Distro,
}

/// The python3 labctl asks about modules: the distribution's (where python3-bpfcc
/// lives), which may not be the first python3 on PATH.
pub fn system_python() -> PathBuf {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| crate::process::which("python3"))
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// Folders headers are looked up in (what gcc and clang search by default).
pub fn include_dirs(multiarch: &str) -> Vec<PathBuf> {
    [
        "/usr/local/include".to_string(),
        format!("/usr/include/{multiarch}"),
        "/usr/include".to_string(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// Folders static libraries are looked up in.
pub fn library_dirs(multiarch: &str) -> Vec<PathBuf> {
    [
        "/usr/local/lib".to_string(),
        format!("/usr/lib/{multiarch}"),
        format!("/lib/{multiarch}"),
        "/usr/lib64".to_string(),
        "/usr/lib".to_string(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// The host's multiarch triplet (`x86_64-linux-gnu`).
fn multiarch(sink: &dyn EventSink) -> String {
    crate::process::which("gcc")
        .and_then(|_| {
            crate::process::Cmd::new("gcc")
                .arg("-dumpmachine")
                .timeout(Duration::from_secs(20))
                .run(sink)
                .ok()
        })
        .filter(|o| o.success())
        .map(|o| o.stdout_str().trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{}-linux-gnu", std::env::consts::ARCH))
}

impl HostFacts {
    /// Gather the facts every requirement of `groups` asks about.
    pub fn gather(home: &Path, groups: &[Group], sink: &dyn EventSink) -> HostFacts {
        let reqs: Vec<&Requirement> = requirements()
            .iter()
            .filter(|r| groups.contains(&r.group))
            .collect();
        let mut programs = BTreeMap::new();
        for p in reqs.iter().flat_map(|r| r.programs()) {
            programs.insert(p.to_string(), crate::process::which(p).is_some());
        }
        let ma = multiarch(sink);
        let inc = include_dirs(&ma);
        let libs = library_dirs(&ma);
        let mut headers = BTreeMap::new();
        for h in reqs.iter().flat_map(|r| r.header.iter()) {
            headers.insert(h.clone(), inc.iter().any(|d| d.join(h).is_file()));
        }
        let mut libraries = BTreeMap::new();
        for l in reqs.iter().flat_map(|r| r.library.iter()) {
            libraries.insert(l.clone(), libs.iter().any(|d| d.join(l).is_file()));
        }
        let py = system_python();
        let mut python = BTreeMap::new();
        for m in reqs.iter().filter_map(|r| r.python.as_deref()) {
            let ok = crate::process::Cmd::new(&py)
                .args(["-c", &format!("import {m}")])
                .timeout(Duration::from_secs(60))
                .run(sink)
                .map(|o| o.success())
                .unwrap_or(false);
            python.insert(m.to_string(), ok);
        }
        let mut files = BTreeMap::new();
        for f in reqs.iter().flat_map(|r| r.file.iter()) {
            files.insert(f.clone(), Path::new(f).exists());
        }
        let python_version = crate::process::Cmd::new(&py)
            .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
            .timeout(Duration::from_secs(60))
            .run(sink)
            .ok()
            .filter(|o| o.success())
            .map(|o| o.stdout_str().trim().to_string())
            .filter(|v| !v.is_empty());
        let busybox_static = crate::process::which("busybox")
            .and_then(|p| std::fs::read(p).ok())
            .map(|data| is_static_elf(&data));
        let kvm_rw = Path::new("/dev/kvm")
            .exists()
            .then(|| crate::vm::accel::kvm_openable(Path::new("/dev/kvm")).is_ok());
        let kvm_probe = kvm_probe_hook(home);
        let mem_total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| parse_meminfo_total(&t));
        let disk_free = crate::home::free_space(home).ok();
        let os = std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .unwrap_or_default();
        let distro = parse_os_release(&os, crate::process::which("dnf").is_some());
        HostFacts {
            programs,
            toolchain: Toolchain::probe(sink),
            headers,
            libraries,
            python,
            files,
            busybox_static,
            python_version,
            kvm_rw,
            kvm_probe,
            mem_total,
            disk_free,
            disk_path: home.to_path_buf(),
            distro,
        }
    }
    fn has(&self, p: &str) -> bool {
        self.programs.get(p).copied().unwrap_or(false)
    }
}

/// A static ELF has no PT_INTERP (no `.interp` section).
pub fn is_static_elf(data: &[u8]) -> bool {
    use object::{Object, ObjectSection};
    match object::File::parse(data) {
        Ok(f) => f
            .sections()
            .all(|s| s.name().map(|n| n != ".interp").unwrap_or(true)),
        Err(_) => false,
    }
}

pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Minimum pahole for a kernel, and why.
pub fn pahole_minimum(k: KernelVersion) -> (DottedVersion, &'static str) {
    if k >= KernelVersion::new(5, 11, 0) {
        (
            DottedVersion(vec![1, 19]),
            "module BTF (5.11+) needs pahole >= 1.19",
        )
    } else if k >= KernelVersion::new(5, 8, 0) {
        (
            DottedVersion(vec![1, 16]),
            "BTF on 5.8+ needs pahole >= 1.16",
        )
    } else {
        (
            DottedVersion(vec![1, 13]),
            "BTF before 5.8 needs pahole >= 1.13",
        )
    }
}

/// Options that change the judgement.
#[derive(Debug, Clone)]
pub struct Options {
    /// The kernel the user wants to build (pahole requirement, catalogue notes).
    pub kernel: Option<KernelVersion>,
    /// Which requirement groups to check.
    pub groups: Vec<Group>,
    /// The architectures whose `cross` requirements count (with [`Group::Cross`]).
    pub arches: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kernel: None,
            groups: Group::MAIN_JOB.to_vec(),
            arches: Vec::new(),
        }
    }
}

/// [`Special::VngScriptPorts`]: pip gives Python < 3.10 virtme-ng 1.38, whose guest init
/// needs udev's `/dev/virtio-ports/` links (made by the host's udevd, run in the guest).
fn judge_vng_script_ports(r: &Requirement, h: &HostFacts) -> (bool, String) {
    let Some(v) = &h.python_version else {
        return (true, "judged once python3 is installed".into());
    };
    let ver: Vec<u32> = v.split('.').filter_map(|x| x.parse().ok()).collect();
    if ver.len() >= 2 && (ver[0], ver[1]) >= (3, 10) {
        return (
            true,
            format!("not needed: Python {v} gets virtme-ng 1.39+, which makes its own ports"),
        );
    }
    let present = r
        .file
        .iter()
        .any(|f| h.files.get(f).copied().unwrap_or(false));
    if present {
        (true, format!("udevd found (Python {v}: virtme-ng 1.38)"))
    } else {
        (
            false,
            format!("udevd not found; Python {v} gets virtme-ng 1.38: {}", r.why),
        )
    }
}

/// The verdict of one requirement's own check: (present, detail).
fn judge(r: &Requirement, h: &HostFacts, opts: &Options) -> (bool, String) {
    let tc = &h.toolchain;
    let ver = |v: &Option<String>| v.clone().unwrap_or_default();
    if let Some(s) = r.special {
        return match s {
            Special::Pahole => judge_pahole(h, opts),
            Special::ClangBpf => match (h.has("clang"), h.has("llc"), tc.llc_bpf) {
                (true, true, Some(true)) => (
                    true,
                    format!("clang {}, llc with the bpf target", ver(&tc.clang)),
                ),
                (true, true, _) => (false, "llc lacks the bpf target".into()),
                (false, _, _) => (false, format!("clang not found; needed: {}", r.why)),
                (true, false, _) => (false, format!("llc not found; needed: {}", r.why)),
            },
            Special::BusyboxStatic => match (h.has("busybox"), h.busybox_static) {
                (true, Some(true)) => (true, "static busybox found (guest userland)".into()),
                (true, _) => (
                    false,
                    "busybox is dynamically linked; the guest needs a static one".into(),
                ),
                (false, _) => (false, format!("not found; {}", r.why)),
            },
            Special::VngScriptPorts => judge_vng_script_ports(r, h),
        };
    }
    let mut missing: Vec<String> = Vec::new();
    if let Some(p) = &r.program {
        if !h.has(p) {
            missing.push(format!("{p} not found on PATH"));
        }
    }
    let absent = |m: &BTreeMap<String, bool>, k: &str| !m.get(k).copied().unwrap_or(false);
    let hs: Vec<&str> = r
        .header
        .iter()
        .filter(|x| absent(&h.headers, x))
        .map(String::as_str)
        .collect();
    if !hs.is_empty() {
        missing.push(format!("<{}> not found", hs.join(">, <")));
    }
    let ls: Vec<&str> = r
        .library
        .iter()
        .filter(|x| absent(&h.libraries, x))
        .map(String::as_str)
        .collect();
    if !ls.is_empty() {
        missing.push(format!("{} not found", ls.join(", ")));
    }
    if let Some(m) = &r.python {
        if absent(&h.python, m) {
            missing.push(format!("python3 cannot import {m}"));
        }
    }
    if !r.file.is_empty() && r.file.iter().all(|f| absent(&h.files, f)) {
        missing.push(format!("{} not found", r.file[0]));
    }
    if !missing.is_empty() {
        return (false, format!("{}; needed: {}", missing.join("; "), r.why));
    }
    let version = match r.id.as_str() {
        "make" => tc.make.as_ref().map(|v| format!("GNU Make {v}")),
        "gcc" => tc.gcc.as_ref().map(|v| format!("gcc {v}")),
        "binutils" => tc.binutils.as_ref().map(|v| format!("binutils {v}")),
        _ => None,
    };
    (
        true,
        match version {
            Some(v) => format!("{v} ({})", r.why),
            None => format!("found ({})", r.why),
        },
    )
}

fn judge_pahole(h: &HostFacts, opts: &Options) -> (bool, String) {
    let tc = &h.toolchain;
    let (Some(v), true) = (&tc.pahole, h.has("pahole")) else {
        return (
            false,
            "not found; BTF (CONFIG_DEBUG_INFO_BTF) cannot be generated".into(),
        );
    };
    let pv = DottedVersion::parse(v).unwrap_or(DottedVersion(vec![0]));
    let k = opts.kernel;
    let (min, why) = pahole_minimum(k.unwrap_or(KernelVersion::new(5, 11, 0)));
    let too_old = crate::build::catalogue::VersionSet::parse(&format!("<{min}"))
        .map(|s| s.contains(&pv))
        .unwrap_or(false);
    let mut detail = format!("pahole {v}");
    match k {
        Some(k) => detail.push_str(&format!("; linux {k}: {why}")),
        None => detail.push_str(&format!(
            "; {why} (pass --kernel VERSION to check one release)"
        )),
    }
    if let Some(k) = k {
        let facts = Facts::for_host(k, tc.facts(), "CONFIG_DEBUG_INFO_BTF=y\n".into());
        let plan = crate::build::catalogue::plan(Catalogue::builtin(), &facts, true);
        if plan.apply.iter().any(|id| id == "pahole-enum64") {
            detail.push_str(&format!("; this pahole emits ENUM64, which linux {k} predates: `kernel build` applies fix pahole-enum64 (--skip_encoding_btf_enum64)"));
        }
    }
    if too_old {
        detail.push_str(" — too old");
    }
    (!too_old, detail)
}

/// Judge the host facts. Pure: fixtures in, checks out.
pub fn evaluate(h: &HostFacts, opts: &Options) -> Vec<Check> {
    let mut out = Vec::new();
    for r in requirements().iter().filter(|r| {
        opts.groups.contains(&r.group) && r.arch.as_ref().is_none_or(|a| opts.arches.contains(a))
    }) {
        let (ok, detail) = judge(r, h, opts);
        let status = if ok {
            Status::Ok
        } else if r.need == Need::Optional {
            Status::Warn
        } else {
            Status::Missing
        };
        let (packages, pip) = match (ok, h.distro.manager) {
            (true, _) => (vec![], vec![]),
            (false, m) => (
                m.map(|m| r.packages(m).to_vec()).unwrap_or_default(),
                r.pip.clone(),
            ),
        };
        out.push(Check {
            id: r.id.clone(),
            title: r.title.clone(),
            status,
            detail,
            group: r.group,
            packages,
            pip,
        });
    }
    if opts.groups.contains(&Group::Vm) {
        let (kvm_ok, kvm_detail) = match (h.kvm_rw, h.kvm_probe.clone()) {
            (None, _) => (false, "/dev/kvm absent: guests run under TCG (slower, still works)".to_string()),
            (Some(false), _) => (false, "/dev/kvm is not read-write for this user: guests run under TCG".to_string()),
            (Some(true), Some(Ok(s))) => (true, s),
            (Some(true), Some(Err(s))) => (false, s),
            (Some(true), None) => (true, "/dev/kvm opens read-write; whether a KVM guest really runs is probed by `labctl vm` at its first boot (it falls back to TCG)".to_string()),
        };
        out.push(Check {
            id: "kvm".into(),
            title: "KVM".into(),
            status: if kvm_ok { Status::Ok } else { Status::Warn },
            detail: kvm_detail,
            group: Group::Host,
            packages: vec![],
            pip: vec![],
        });
    }
    if opts.groups.contains(&Group::Build) {
        match h.disk_free {
            Some(free) => {
                let (status, detail) = if free < LAB_DISK_NEED {
                    (
                        Status::Missing,
                        format!(
                            "{} free in {}; the lab profile needs about {}",
                            human_bytes(free),
                            h.disk_path.display(),
                            human_bytes(LAB_DISK_NEED)
                        ),
                    )
                } else if free < DEFCONFIG_DISK_NEED {
                    (Status::Warn, format!("{} free in {}: enough for the lab profile ({}), not for defconfig ({})", human_bytes(free), h.disk_path.display(), human_bytes(LAB_DISK_NEED), human_bytes(DEFCONFIG_DISK_NEED)))
                } else {
                    (
                        Status::Ok,
                        format!(
                            "{} free in {} (lab needs about {}, defconfig {})",
                            human_bytes(free),
                            h.disk_path.display(),
                            human_bytes(LAB_DISK_NEED),
                            human_bytes(DEFCONFIG_DISK_NEED)
                        ),
                    )
                };
                out.push(Check {
                    id: "disk".into(),
                    title: "free disk".into(),
                    status,
                    detail,
                    group: Group::Host,
                    packages: vec![],
                    pip: vec![],
                });
            }
            None => out.push(Check {
                id: "disk".into(),
                title: "free disk".into(),
                status: Status::Warn,
                detail: "could not measure".into(),
                group: Group::Host,
                packages: vec![],
                pip: vec![],
            }),
        }
        if let Some(m) = h.mem_total {
            let ok = m >= 2 << 30;
            out.push(Check {
                id: "ram".into(),
                title: "RAM".into(),
                status: if ok { Status::Ok } else { Status::Warn },
                detail: if ok {
                    format!("{} (a BTF link needs about 1-2 GiB)", human_bytes(m))
                } else {
                    format!(
                        "{}: linking vmlinux with BTF needs about 2 GiB; use --jobs 1",
                        human_bytes(m)
                    )
                },
                group: Group::Host,
                packages: vec![],
                pip: vec![],
            });
        }
    }
    out
}

/// KVM usability as the VM engine last measured it: `labctl vm` boots a probe guest
/// under KVM with a timeout and caches the verdict per host boot in
/// `guests/accel.json`. `Some(Ok)` = KVM guests run, `Some(Err)` = they do not (TCG is
/// used), `None` = not probed during this boot yet.
pub fn kvm_probe_hook(home: &Path) -> Option<Result<String, String>> {
    let text = std::fs::read_to_string(home.join("guests").join("accel.json")).ok()?;
    kvm_verdict_from_cache(&text, crate::vm::accel::boot_id().as_deref()?)
}

/// Pure part of [`kvm_probe_hook`]: the cached verdict if it belongs to this boot.
pub fn kvm_verdict_from_cache(text: &str, boot_id: &str) -> Option<Result<String, String>> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v["boot_id"].as_str()? != boot_id {
        return None;
    }
    let reason = v["verdict"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match v["verdict"]["accel"].as_str()? {
        "kvm" => Some(Ok(format!(
            "KVM guests run (probed by `labctl vm` this boot: {reason})"
        ))),
        _ => Some(Err(format!(
            "guests use TCG (probed by `labctl vm` this boot: {reason})"
        ))),
    }
}

/// The whole doctor report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub distro: Distro,
    pub kernel: Option<KernelVersion>,
    pub groups: Vec<Group>,
    pub checks: Vec<Check>,
    /// Distribution packages that provide what is missing or warned about, in order.
    pub packages: Vec<String>,
    /// The plain install argv for them (None: nothing to install or unknown distro);
    /// `doctor --install` plans more carefully (see [`install`]).
    pub install: Option<Vec<String>>,
    /// Python packages labctl installs into its tools venv.
    pub pip: Vec<String>,
}

impl Report {
    pub fn from_checks(
        distro: Distro,
        kernel: Option<KernelVersion>,
        groups: Vec<Group>,
        checks: Vec<Check>,
    ) -> Report {
        let mut pkgs: Vec<String> = Vec::new();
        let mut pip = Vec::new();
        for c in checks.iter().filter(|c| c.status != Status::Ok) {
            for p in &c.packages {
                if !pkgs.contains(p) {
                    pkgs.push(p.clone());
                }
            }
            for p in &c.pip {
                if !pip.contains(p) {
                    pip.push(p.clone());
                }
            }
        }
        let install = (!pkgs.is_empty())
            .then_some(())
            .and(distro.manager)
            .map(|m| m.install_argv(&pkgs));
        Report {
            distro,
            kernel,
            groups,
            checks,
            packages: pkgs,
            install,
            pip,
        }
    }
    /// Something required is missing.
    pub fn has_missing(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Missing)
    }
    pub fn missing(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Missing)
    }
    /// The install command as one shell line (with sudo when not root).
    pub fn install_line(&self) -> Option<String> {
        self.install
            .as_ref()
            .map(|argv| install::shell_line(argv, true))
    }
    /// What to run, in words, for whatever is missing: the distribution command and the
    /// venv for Python tools, or `labctl doctor --install` which does both.
    pub fn advice(&self) -> String {
        let mut s = String::new();
        if let Some(l) = self.install_line() {
            s.push_str(&format!("install with: {l}"));
        } else if !self.packages.is_empty() {
            s.push_str(&format!(
                "install with your distribution's package manager: {}",
                self.packages.join(" ")
            ));
        }
        if !self.pip.is_empty() {
            if !s.is_empty() {
                s.push_str("; ");
            }
            s.push_str(&format!(
                "Python tools: {} (into {})",
                self.pip.join(" "),
                crate::process::tools_venv().display()
            ));
        }
        if !s.is_empty() {
            s.push_str("; or run `labctl doctor --install`, which does it");
        }
        s
    }
}

/// Gather and judge.
pub fn run(home: &Path, opts: &Options, sink: &dyn EventSink) -> Report {
    let h = HostFacts::gather(home, &opts.groups, sink);
    let checks = evaluate(&h, opts);
    Report::from_checks(h.distro.clone(), opts.kernel, opts.groups.clone(), checks)
}

/// The checks `kernel build` needs, as advice text; empty when the host is ready.
pub fn preflight(
    kernel: KernelVersion,
    config: &str,
    samples: bool,
    sink: &dyn EventSink,
) -> String {
    let home = std::env::temp_dir();
    let mut groups = vec![Group::Build];
    if samples {
        groups.push(Group::Samples);
    }
    let h = HostFacts::gather(&home, &groups, sink);
    preflight_from(&h, kernel, config, samples)
}

/// Pure part of [`preflight`].
pub fn preflight_from(h: &HostFacts, kernel: KernelVersion, config: &str, samples: bool) -> String {
    let btf = config.lines().any(|l| l == "CONFIG_DEBUG_INFO_BTF=y");
    let mut groups = vec![Group::Build];
    if samples {
        groups.push(Group::Samples);
    }
    let checks: Vec<Check> = evaluate(
        h,
        &Options {
            kernel: Some(kernel),
            groups: groups.clone(),
            arches: Vec::new(),
        },
    )
    .into_iter()
    .filter(|c| c.status == Status::Missing)
    .filter(|c| c.id != "disk" && (c.id != "pahole" || btf))
    .collect();
    advice_for(h, Some(kernel), groups, checks)
}

fn advice_for(
    h: &HostFacts,
    kernel: Option<KernelVersion>,
    groups: Vec<Group>,
    checks: Vec<Check>,
) -> String {
    if checks.is_empty() {
        return String::new();
    }
    let mut s = String::new();
    for c in &checks {
        s.push_str(&format!("  missing: {} — {}\n", c.title, c.detail));
    }
    s.push_str(&Report::from_checks(h.distro.clone(), kernel, groups, checks).advice());
    s
}

/// What is missing from these groups, as advice text naming the packages and the
/// install command; empty when the host has everything. Used by the suite before it
/// builds the examples.
pub fn missing_advice(groups: &[Group], sink: &dyn EventSink) -> String {
    let h = HostFacts::gather(&std::env::temp_dir(), groups, sink);
    let opts = Options {
        kernel: None,
        groups: groups.to_vec(),
        arches: Vec::new(),
    };
    let checks: Vec<Check> = evaluate(&h, &opts)
        .into_iter()
        .filter(|c| c.status == Status::Missing && c.group != Group::Host)
        .collect();
    advice_for(&h, None, groups.to_vec(), checks)
}

/// What a host lacks to build and boot the foreign architecture `arch` (its `cross`
/// requirements), as advice text; empty when it has everything or `arch` is the host's.
pub fn missing_for_arch(arch: &crate::arch::Arch, sink: &dyn EventSink) -> String {
    if arch.is_host() {
        return String::new();
    }
    let ids: Vec<&str> = requirements()
        .iter()
        .filter(|r| r.group == Group::Cross && r.arch.as_deref() == Some(arch.name.as_str()))
        .map(|r| r.id.as_str())
        .collect();
    missing_advice_for(&ids, sink)
}

/// [`missing_advice`] for single requirements by id (a feature that needs one tool:
/// `vm run --gdb` needs `gdb`); empty when they are there.
pub fn missing_advice_for(ids: &[&str], sink: &dyn EventSink) -> String {
    // The common case in a breath: every program there (a full gather probes compilers).
    let reqs: Vec<&Requirement> = ids.iter().filter_map(|id| requirement(id)).collect();
    let simple = reqs.iter().all(|r| {
        r.special.is_none()
            && r.header.is_empty()
            && r.library.is_empty()
            && r.python.is_none()
            && r.file.is_empty()
    });
    if simple
        && reqs
            .iter()
            .flat_map(|r| r.programs())
            .all(|p| crate::process::which(p).is_some())
    {
        return String::new();
    }
    let groups: Vec<Group> = ids
        .iter()
        .filter_map(|id| requirement(id).map(|r| r.group))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let h = HostFacts::gather(&std::env::temp_dir(), &groups, sink);
    let opts = Options {
        kernel: None,
        groups: groups.clone(),
        // Asked for by id: whatever architecture they serve.
        arches: ids
            .iter()
            .filter_map(|id| requirement(id).and_then(|r| r.arch.clone()))
            .collect(),
    };
    let checks: Vec<Check> = evaluate(&h, &opts)
        .into_iter()
        .filter(|c| c.status != Status::Ok && ids.contains(&c.id.as_str()))
        .collect();
    if checks.is_empty() {
        return String::new();
    }
    advice_for(&h, None, groups, checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_all_good() -> HostFacts {
        let mut programs: BTreeMap<String, bool> = BTreeMap::new();
        let mut headers = BTreeMap::new();
        let mut libraries = BTreeMap::new();
        let mut python = BTreeMap::new();
        let mut files = BTreeMap::new();
        for r in requirements() {
            for p in r.programs() {
                programs.insert(p.to_string(), true);
            }
            for x in &r.header {
                headers.insert(x.clone(), true);
            }
            for x in &r.library {
                libraries.insert(x.clone(), true);
            }
            if let Some(m) = &r.python {
                python.insert(m.clone(), true);
            }
            for x in &r.file {
                files.insert(x.clone(), true);
            }
        }
        HostFacts {
            programs,
            toolchain: Toolchain {
                gcc: Some("12.2.0".into()),
                binutils: Some("2.40".into()),
                pahole: Some("1.24".into()),
                clang: Some("14.0.6".into()),
                llc_bpf: Some(true),
                glibc: Some("2.36".into()),
                make: Some("4.3".into()),
                ..Default::default()
            },
            headers,
            libraries,
            python,
            files,
            busybox_static: Some(true),
            python_version: Some("3.11".into()),
            kvm_rw: Some(true),
            kvm_probe: None,
            mem_total: Some(24 << 30),
            disk_free: Some(70 << 30),
            disk_path: "/root/.cache/labctl".into(),
            distro: parse_os_release("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_CODENAME=bookworm\n", false),
        }
    }

    fn all_groups() -> Options {
        let mut o = Options::default();
        o.groups.push(Group::Test);
        o
    }

    #[test]
    fn os_release_picks_the_manager() {
        assert_eq!(
            parse_os_release("ID=ubuntu\nID_LIKE=debian\n", false).manager,
            Some(Manager::Apt)
        );
        assert_eq!(
            parse_os_release("ID=fedora\n", true).manager,
            Some(Manager::Dnf)
        );
        assert_eq!(
            parse_os_release("ID=\"centos\"\nID_LIKE=\"rhel fedora\"\n", false).manager,
            Some(Manager::Yum)
        );
        assert_eq!(
            parse_os_release("ID=arch\n", false).manager,
            Some(Manager::Pacman)
        );
        assert_eq!(
            parse_os_release(
                "ID=\"opensuse-tumbleweed\"\nID_LIKE=\"opensuse suse\"\n",
                false
            )
            .manager,
            Some(Manager::Zypper)
        );
        assert_eq!(parse_os_release("ID=gentoo\n", false).manager, None);
        assert_eq!(
            parse_os_release("ID=debian\nVERSION_CODENAME=bookworm\n", false)
                .codename
                .as_deref(),
            Some("bookworm")
        );
    }

    #[test]
    fn a_complete_host_passes_and_reports_enum64() {
        let h = host_all_good();
        let checks = evaluate(
            &h,
            &Options {
                kernel: KernelVersion::parse_plain("5.10.46"),
                ..all_groups()
            },
        );
        assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:#?}");
        let pahole = checks.iter().find(|c| c.id == "pahole").unwrap();
        assert!(pahole.detail.contains("pahole-enum64"), "{}", pahole.detail);
        let later = evaluate(
            &h,
            &Options {
                kernel: KernelVersion::parse_plain("5.10.251"),
                ..Options::default()
            },
        );
        assert!(!later
            .iter()
            .find(|c| c.id == "pahole")
            .unwrap()
            .detail
            .contains("enum64"));
        assert_eq!(
            preflight_from(
                &h,
                KernelVersion::new(5, 10, 46),
                "CONFIG_DEBUG_INFO_BTF=y\n",
                true
            ),
            ""
        );
        let r = Report::from_checks(h.distro.clone(), None, vec![], checks);
        assert!(r.install.is_none() && !r.has_missing() && r.advice().is_empty());
    }

    #[test]
    fn every_missing_thing_names_its_package() {
        // What a new user met: no libbpf-dev, no BCC, no virtme-ng, no xz.
        let mut h = host_all_good();
        h.headers.insert("bpf/bpf_helpers.h".into(), false);
        h.libraries.insert("libbpf.so".into(), false);
        h.libraries.insert("libbpf.a".into(), false);
        h.programs.insert("pkg-config".into(), false);
        h.python.insert("bcc".into(), false);
        h.programs.insert("vng".into(), false);
        h.programs.insert("xz".into(), false);
        let checks = evaluate(&h, &Options::default());
        let r = Report::from_checks(
            h.distro.clone(),
            None,
            Group::MAIN_JOB.to_vec(),
            checks.clone(),
        );
        assert!(r.has_missing());
        let missing: Vec<&str> = r.missing().map(|c| c.id.as_str()).collect();
        assert_eq!(
            missing,
            [
                "xz",
                "libbpf",
                "pkg-config",
                "shared-libs",
                "bcc",
                "virtme-ng"
            ]
        );
        // Static libraries are optional (the loaders then link dynamically): a warning
        // whose packages are still installed.
        let st = checks.iter().find(|c| c.id == "static-libs").unwrap();
        assert_eq!(st.status, Status::Warn);
        assert!(
            r.packages.iter().any(|p| p == "pkg-config"),
            "{:?}",
            r.packages
        );
        let libbpf = checks.iter().find(|c| c.id == "libbpf").unwrap();
        assert!(
            libbpf.detail.contains("<bpf/bpf_helpers.h> not found"),
            "{}",
            libbpf.detail
        );
        let argv = r.install.clone().unwrap();
        assert_eq!(
            &argv[..4],
            ["apt-get", "install", "-y", "--no-install-recommends"]
        );
        for p in ["xz-utils", "libbpf-dev", "python3-bpfcc"] {
            assert!(argv.contains(&p.to_string()), "{argv:?}");
        }
        assert_eq!(
            argv.iter().filter(|p| *p == "libbpf-dev").count(),
            1,
            "each package once: {argv:?}"
        );
        assert_eq!(r.pip, ["virtme-ng"]);
        assert!(
            r.advice().contains("labctl doctor --install"),
            "{}",
            r.advice()
        );
        // The test group is not part of the main job.
        assert!(!checks.iter().any(|c| c.group == Group::Test));
    }

    #[test]
    fn missing_tools_give_distro_install_commands() {
        let mut h = host_all_good();
        h.programs.insert("pahole".into(), false);
        h.programs.insert("rsync".into(), false);
        h.headers.insert("libelf.h".into(), false);
        h.headers.insert("gnu/stubs-32.h".into(), false);
        let checks = evaluate(&h, &Options::default());
        assert_eq!(
            checks.iter().find(|c| c.id == "libc32").unwrap().status,
            Status::Warn,
            "optional"
        );
        let r = Report::from_checks(h.distro.clone(), None, vec![], checks);
        let argv = r.install.clone().unwrap();
        for p in ["dwarves", "rsync", "libelf-dev", "libc6-dev-i386"] {
            assert!(argv.contains(&p.to_string()), "{argv:?}");
        }
        // Fedora names.
        h.distro = parse_os_release("ID=fedora\n", true);
        let r = Report::from_checks(
            h.distro.clone(),
            None,
            vec![],
            evaluate(&h, &Options::default()),
        );
        let argv = r.install.unwrap();
        assert!(
            argv.contains(&"elfutils-libelf-devel".to_string())
                && argv.contains(&"glibc-devel.i686".to_string()),
            "{argv:?}"
        );
        assert!(
            argv.contains(&"--setopt=install_weak_deps=False".to_string()),
            "{argv:?}"
        );
        // Preflight: stops for pahole (BTF config) and rsync, not for 32-bit headers.
        let advice = preflight_from(
            &h,
            KernelVersion::new(5, 10, 46),
            "CONFIG_DEBUG_INFO_BTF=y\n",
            true,
        );
        assert!(
            advice.contains("pahole")
                && advice.contains("rsync")
                && advice.contains("dnf install -y"),
            "{advice}"
        );
        assert!(!advice.contains("32-bit"), "{advice}");
        // Without BTF, pahole is not needed.
        let advice = preflight_from(
            &h,
            KernelVersion::new(5, 10, 46),
            "# CONFIG_DEBUG_INFO_BTF is not set\n",
            false,
        );
        assert!(!advice.contains("pahole"), "{advice}");
    }

    #[test]
    fn pahole_too_old_for_the_kernel() {
        let mut h = host_all_good();
        h.toolchain.pahole = Some("1.15".into());
        let k = |v| Options {
            kernel: KernelVersion::parse_plain(v),
            ..Options::default()
        };
        let c = evaluate(&h, &k("5.10.46"));
        let p = c.iter().find(|c| c.id == "pahole").unwrap();
        assert_eq!(p.status, Status::Missing, "{p:?}");
        assert!(p.detail.contains("1.16"));
        h.toolchain.pahole = Some("1.17".into());
        assert_eq!(
            evaluate(&h, &k("5.10.46"))
                .iter()
                .find(|c| c.id == "pahole")
                .unwrap()
                .status,
            Status::Ok
        );
        assert_eq!(
            evaluate(&h, &k("5.15.1"))
                .iter()
                .find(|c| c.id == "pahole")
                .unwrap()
                .status,
            Status::Missing
        );
    }

    #[test]
    fn resources_and_vm_checks() {
        let mut h = host_all_good();
        h.disk_free = Some(2 << 30);
        h.busybox_static = Some(false);
        h.kvm_rw = None;
        let c = evaluate(&h, &Options::default());
        assert_eq!(
            c.iter().find(|c| c.id == "disk").unwrap().status,
            Status::Missing
        );
        assert_eq!(
            c.iter().find(|c| c.id == "busybox").unwrap().status,
            Status::Missing
        );
        assert_eq!(
            c.iter().find(|c| c.id == "kvm").unwrap().status,
            Status::Warn
        );
        let mut h2 = host_all_good();
        h2.kvm_probe = kvm_verdict_from_cache(
            r#"{"boot_id":"b1","qemu":"q","verdict":{"accel":"tcg","reason":"KVM hangs","cached":false}}"#,
            "b1",
        );
        let k = evaluate(&h2, &Options::default())
            .into_iter()
            .find(|c| c.id == "kvm")
            .unwrap();
        assert_eq!(k.status, Status::Warn);
        assert!(k.detail.contains("KVM hangs"), "{}", k.detail);
        assert!(
            kvm_verdict_from_cache(
                r#"{"boot_id":"old","qemu":"q","verdict":{"accel":"kvm","reason":"ok"}}"#,
                "b1"
            )
            .is_none(),
            "a verdict from another boot is stale"
        );
        assert!(matches!(
            kvm_verdict_from_cache(
                r#"{"boot_id":"b1","qemu":"q","verdict":{"accel":"kvm","reason":"ok"}}"#,
                "b1"
            ),
            Some(Ok(_))
        ));
        assert_eq!(
            parse_meminfo_total("MemTotal:       24603912 kB\nMemFree: 1 kB\n"),
            Some(24603912 * 1024)
        );
    }

    #[test]
    fn old_pythons_need_udev_for_virtme_ng() {
        let r = requirement("udev-for-old-vng").unwrap();
        let mut h = host_all_good();
        for f in &r.file {
            h.files.insert(f.clone(), false);
        }
        h.python_version = Some("3.11".into());
        assert!(judge(r, &h, &all_groups()).0, "3.11 gets virtme-ng 1.39+");
        h.python_version = Some("3.9".into());
        let (ok, detail) = judge(r, &h, &all_groups());
        assert!(!ok && detail.contains("1.38"), "{detail}");
        h.files.insert(r.file[0].clone(), true);
        assert!(judge(r, &h, &all_groups()).0, "udevd present");
        // No python3 yet: the first install round brings it, the second judges.
        h.python_version = None;
        assert!(judge(r, &h, &all_groups()).0);
    }

    #[test]
    fn every_requirement_is_installable_everywhere() {
        let mut ids = std::collections::BTreeSet::new();
        for r in requirements() {
            assert!(ids.insert(r.id.clone()), "duplicate id {}", r.id);
            let checks = r.program.is_some() as usize
                + (!r.header.is_empty()) as usize
                + (!r.library.is_empty()) as usize
                + r.python.is_some() as usize
                + (!r.file.is_empty() && r.special != Some(Special::VngScriptPorts)) as usize
                + r.special.is_some() as usize;
            assert_eq!(checks, 1, "{}: exactly one check", r.id);
            if r.special == Some(Special::VngScriptPorts) {
                assert!(!r.file.is_empty(), "{}: the files it looks for", r.id);
            }
            if !r.pip.is_empty() {
                continue;
            }
            for m in [Manager::Apt, Manager::Dnf, Manager::Pacman, Manager::Zypper] {
                assert!(!r.packages(m).is_empty(), "{} lacks {}", r.id, m.family());
            }
        }
    }

    /// Every `#include <...>` in examples-bpf resolves to a header some requirement of
    /// the main job checks for (or one the compiler itself ships).
    #[test]
    fn every_example_include_is_a_listed_requirement() {
        const COMPILER_HEADERS: &[&str] = &["stdarg.h", "stddef.h", "stdint.h", "stdbool.h"];
        let listed: Vec<&str> = requirements()
            .iter()
            .filter(|r| Group::MAIN_JOB.contains(&r.group))
            .flat_map(|r| r.header.iter().map(String::as_str))
            .collect();
        let mut seen = 0;
        for (path, text) in crate::suite::examples::SOURCES {
            for line in text.lines() {
                let Some(rest) = line.trim().strip_prefix("#include <") else {
                    continue;
                };
                let h = rest.split('>').next().unwrap();
                seen += 1;
                assert!(listed.contains(&h) || COMPILER_HEADERS.contains(&h), "examples-bpf/{path} includes <{h}>, which no requirement in doctor/requirements.toml checks for");
            }
        }
        assert!(seen > 20, "read the examples' includes ({seen})");
    }

    /// Every program labctl's library spawns by name is a listed requirement (or part
    /// of every base system).
    #[test]
    fn every_spawned_program_is_a_listed_requirement() {
        // Part of every base system, or installed with a listed requirement (cc with gcc).
        const BASE: &[&str] = &[
            "sh",
            "cp",
            "sudo",
            "getconf",
            "cc",
            "apt-get",
            "apt-cache",
            "dpkg-query",
            "env",
            "tar",
            "mount",
            "umount",
        ];
        let programs: Vec<&str> = requirements().iter().flat_map(|r| r.programs()).collect();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src.clone()];
        let mut found = 0;
        while let Some(d) = files.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    files.push(p);
                    continue;
                }
                if p.extension().is_none_or(|x| x != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                for part in text.split("Cmd::new(\"").skip(1) {
                    let name = part.split('"').next().unwrap();
                    if name.starts_with('/') {
                        continue;
                    }
                    found += 1;
                    assert!(
                        programs.contains(&name) || BASE.contains(&name),
                        "{} spawns `{name}`, which doctor/requirements.toml does not list",
                        p.display()
                    );
                }
            }
        }
        assert!(found >= 5, "{found}");
    }
}
