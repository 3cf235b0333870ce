//! Host checks: which tools, headers and resources a build and a VM run need, what is
//! missing, and the install command for the host's distribution (apt, dnf/yum, pacman,
//! zypper; detected from /etc/os-release). Package names per check are data
//! (`doctor/packages.toml`). Gathering facts from the host ([`HostFacts::gather`]) is
//! kept apart from judging them ([`evaluate`]) so the judgement is tested on fixtures.
//! `kernel build` runs the same checks first ([`preflight`]) and stops with the advice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::build::catalogue::{Catalogue, DottedVersion, Facts};
use crate::build::toolchain::Toolchain;
use crate::events::EventSink;
use crate::home::human_bytes;
use crate::version::KernelVersion;

const PACKAGES: &str = include_str!("packages.toml");

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

/// What a check is needed for; preflight only stops on what the build needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    Build,
    Samples,
    Vm,
    Optional,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub id: String,
    pub title: String,
    pub status: Status,
    pub detail: String,
    pub need: Need,
    /// Packages that provide it on this host's distribution (empty when unknown).
    pub packages: Vec<String>,
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
    fn family(self) -> &'static str {
        match self {
            Manager::Apt => "apt",
            Manager::Dnf | Manager::Yum => "dnf",
            Manager::Pacman => "pacman",
            Manager::Zypper => "zypper",
        }
    }
    /// The install argv for these packages (without sudo).
    pub fn install_argv(self, pkgs: &[String], assume_yes: bool) -> Vec<String> {
        let mut v: Vec<String> = match self {
            Manager::Apt => vec!["apt-get".into(), "install".into()],
            Manager::Dnf => vec!["dnf".into(), "install".into()],
            Manager::Yum => vec!["yum".into(), "install".into()],
            Manager::Pacman => vec!["pacman".into(), "-S".into(), "--needed".into()],
            Manager::Zypper => vec!["zypper".into(), "install".into()],
        };
        if assume_yes {
            v.push(if self == Manager::Pacman { "--noconfirm".into() } else { "-y".into() });
        }
        v.extend(pkgs.iter().cloned());
        v
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Distro {
    pub id: String,
    pub name: String,
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
    let words: Vec<&str> = std::iter::once(id.as_str()).chain(like.split_whitespace()).collect();
    let manager = words.iter().find_map(|w| match *w {
        "debian" | "ubuntu" => Some(Manager::Apt),
        "fedora" | "rhel" | "centos" => Some(if has_dnf { Manager::Dnf } else { Manager::Yum }),
        "arch" => Some(Manager::Pacman),
        "opensuse" | "suse" | "sles" | "opensuse-leap" | "opensuse-tumbleweed" => Some(Manager::Zypper),
        _ => None,
    });
    Distro { name: kv.get("PRETTY_NAME").cloned().unwrap_or_else(|| id.clone()), id, manager }
}

/// Everything read from the host, in one plain value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostFacts {
    /// Program name → found on PATH.
    pub programs: BTreeMap<String, bool>,
    pub toolchain: Toolchain,
    /// Header id (libelf, openssl, zlib, libc32) → present.
    pub headers: BTreeMap<String, bool>,
    pub busybox_static: Option<bool>,
    /// /dev/kvm: None = absent, Some(opens read-write).
    pub kvm_rw: Option<bool>,
    /// The VM engine's cached KVM probe verdict for this boot (see [`kvm_probe_hook`]).
    pub kvm_probe: Option<Result<String, String>>,
    pub mem_total: Option<u64>,
    pub disk_free: Option<u64>,
    pub disk_path: PathBuf,
    pub distro: Distro,
}

const PROGRAMS: &[&str] = &["make", "gcc", "ld", "flex", "bison", "bc", "perl", "rsync", "cpio", "depmod", "pahole", "clang", "llc", "qemu-system-x86_64", "busybox", "vng", "ccache"];

impl HostFacts {
    pub fn gather(home: &Path, sink: &dyn EventSink) -> HostFacts {
        let programs = PROGRAMS.iter().map(|p| (p.to_string(), crate::process::which(p).is_some())).collect();
        let any = |ps: &[&str]| ps.iter().any(|p| Path::new(p).exists());
        let mut headers = BTreeMap::new();
        headers.insert("libelf".into(), any(&["/usr/include/libelf.h", "/usr/include/libelf/libelf.h"]));
        headers.insert("openssl".into(), any(&["/usr/include/openssl/bio.h"]));
        headers.insert("zlib".into(), any(&["/usr/include/zlib.h"]));
        headers.insert("libc32".into(), any(&["/usr/include/gnu/stubs-32.h", "/usr/include/x86_64-linux-gnu/gnu/stubs-32.h"]));
        let busybox_static = crate::process::which("busybox").and_then(|p| std::fs::read(p).ok()).map(|data| is_static_elf(&data));
        let kvm_rw = Path::new("/dev/kvm").exists().then(|| crate::vm::accel::kvm_openable(Path::new("/dev/kvm")).is_ok());
        let kvm_probe = kvm_probe_hook(home);
        let mem_total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| parse_meminfo_total(&t));
        let disk_free = crate::home::free_space(home).ok();
        let os = std::fs::read_to_string("/etc/os-release").or_else(|_| std::fs::read_to_string("/usr/lib/os-release")).unwrap_or_default();
        let distro = parse_os_release(&os, crate::process::which("dnf").is_some());
        HostFacts { programs, toolchain: Toolchain::probe(sink), headers, busybox_static, kvm_rw, kvm_probe, mem_total, disk_free, disk_path: home.to_path_buf(), distro }
    }
    fn has(&self, p: &str) -> bool {
        self.programs.get(p).copied().unwrap_or(false)
    }
    fn header(&self, h: &str) -> bool {
        self.headers.get(h).copied().unwrap_or(false)
    }
}

/// A static ELF has no PT_INTERP (no `.interp` section).
pub fn is_static_elf(data: &[u8]) -> bool {
    use object::{Object, ObjectSection};
    match object::File::parse(data) {
        Ok(f) => f.sections().all(|s| s.name().map(|n| n != ".interp").unwrap_or(true)),
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
        (DottedVersion(vec![1, 19]), "module BTF (5.11+) needs pahole >= 1.19")
    } else if k >= KernelVersion::new(5, 8, 0) {
        (DottedVersion(vec![1, 16]), "BTF on 5.8+ needs pahole >= 1.16")
    } else {
        (DottedVersion(vec![1, 13]), "BTF before 5.8 needs pahole >= 1.13")
    }
}

fn packages_for(id: &str, distro: &Distro) -> Vec<String> {
    static TABLE: std::sync::OnceLock<BTreeMap<String, BTreeMap<String, Vec<String>>>> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| toml::from_str(PACKAGES).expect("doctor/packages.toml is valid"));
    let Some(per) = t.get(id) else { return Vec::new() };
    if let Some(p) = per.get("pip") {
        return p.clone();
    }
    distro.manager.and_then(|m| per.get(m.family()).cloned()).unwrap_or_default()
}

/// Options that change the judgement.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The kernel the user wants to build (pahole requirement, catalogue notes).
    pub kernel: Option<KernelVersion>,
}

/// Judge the host facts. Pure: fixtures in, checks out.
pub fn evaluate(h: &HostFacts, opts: &Options) -> Vec<Check> {
    let mut out = Vec::new();
    let mut push = |id: &str, title: &str, ok: bool, detail: String, need: Need| {
        let status = if ok { Status::Ok } else if need == Need::Optional { Status::Warn } else { Status::Missing };
        out.push(Check { id: id.into(), title: title.into(), status, detail, need, packages: if ok { vec![] } else { packages_for(id, &h.distro) } });
    };
    let tc = &h.toolchain;
    let ver = |v: &Option<String>| v.clone().unwrap_or_default();
    push("make", "make", h.has("make"), if h.has("make") { format!("GNU Make {}", ver(&tc.make)) } else { "not found on PATH".into() }, Need::Build);
    push("gcc", "gcc", h.has("gcc"), if h.has("gcc") { format!("gcc {}", ver(&tc.gcc)) } else { "not found on PATH".into() }, Need::Build);
    push("binutils", "binutils (ld)", h.has("ld"), if h.has("ld") { format!("binutils {}", ver(&tc.binutils)) } else { "ld not found on PATH".into() }, Need::Build);
    for (id, why) in [("flex", "Kconfig and dtc parsers"), ("bison", "Kconfig and dtc parsers"), ("bc", "kernel/time constants"), ("perl", "header and build scripts"), ("rsync", "`make headers_install` (5.10+) copies with rsync"), ("cpio", "initramfs and kheaders")] {
        let ok = h.has(id);
        push(id, id, ok, if ok { format!("found ({why})") } else { format!("not found on PATH; needed for {why}") }, Need::Build);
    }
    let dm = h.has("depmod");
    push("kmod", "depmod (kmod)", dm, if dm { "found (`modules_install` runs depmod)".into() } else { "not found; `make modules_install` runs depmod".into() }, Need::Build);
    for (id, title, why) in [("libelf", "libelf headers", "objtool, resolve_btfids, samples/bpf"), ("openssl", "OpenSSL headers", "sign-file and extract-cert")] {
        let ok = h.header(id);
        push(id, title, ok, if ok { format!("found ({why})") } else { format!("headers missing; needed for {why}") }, Need::Build);
    }

    // pahole against the target kernel.
    match (&tc.pahole, h.has("pahole")) {
        (Some(v), true) => {
            let pv = DottedVersion::parse(v).unwrap_or(DottedVersion(vec![0]));
            let k = opts.kernel;
            let (min, why) = pahole_minimum(k.unwrap_or(KernelVersion::new(5, 11, 0)));
            let too_old = crate::build::catalogue::VersionSet::parse(&format!("<{min}")).map(|s| s.contains(&pv)).unwrap_or(false);
            let mut detail = format!("pahole {v}");
            match k {
                Some(k) => detail.push_str(&format!("; linux {k}: {why}")),
                None => detail.push_str(&format!("; {why} (pass --kernel VERSION to check one release)")),
            }
            if let Some(k) = k {
                let facts = Facts::for_host(k, tc.facts(), "CONFIG_DEBUG_INFO_BTF=y\n".into());
                let plan = crate::build::catalogue::plan(Catalogue::builtin(), &facts, true);
                if plan.apply.iter().any(|id| id == "pahole-enum64") {
                    detail.push_str("; this pahole emits ENUM64, which linux ");
                    detail.push_str(&k.to_string());
                    detail.push_str(" predates: `kernel build` applies fix pahole-enum64 (--skip_encoding_btf_enum64)");
                }
            }
            push("pahole", "pahole (dwarves)", !too_old, if too_old { format!("{detail} — too old") } else { detail }, Need::Build);
        }
        _ => push("pahole", "pahole (dwarves)", false, "not found; BTF (CONFIG_DEBUG_INFO_BTF) cannot be generated".into(), Need::Build),
    }

    // samples/bpf
    let clang_ok = h.has("clang") && h.has("llc") && tc.llc_bpf == Some(true);
    let clang_detail = match (h.has("clang"), h.has("llc"), tc.llc_bpf) {
        (true, true, Some(true)) => format!("clang {}, llc with the bpf target", ver(&tc.clang)),
        (true, true, _) => "llc lacks the bpf target".into(),
        (false, _, _) => "clang not found".into(),
        (true, false, _) => "llc not found".into(),
    };
    push("clang", "clang + llc (bpf target)", clang_ok, clang_detail, Need::Samples);
    let z = h.header("zlib");
    push("zlib", "zlib headers", z, if z { "found (libbpf, samples/bpf)".into() } else { "headers missing; libbpf and samples/bpf link with -lz".into() }, Need::Samples);
    let c32 = h.header("libc32");
    push("libc32", "32-bit libc headers", c32, if c32 { "found (gnu/stubs-32.h)".into() } else { "gnu/stubs-32.h missing: BPF objects that include glibc headers fail (fix gnu-stubs-32)".into() }, Need::Optional);

    // VM
    let q = h.has("qemu-system-x86_64");
    push("qemu", "qemu-system-x86_64", q, if q { "found".into() } else { "not found; `labctl vm` boots kernels with it".into() }, Need::Vm);
    let (bb_ok, bb_detail) = match (h.has("busybox"), h.busybox_static) {
        (true, Some(true)) => (true, "static busybox found (guest userland)".to_string()),
        (true, _) => (false, "busybox is dynamically linked; the guest needs a static one".to_string()),
        (false, _) => (false, "not found; the guest initramfs uses a static busybox".to_string()),
    };
    push("busybox", "busybox (static)", bb_ok, bb_detail, Need::Vm);
    let (kvm_ok, kvm_detail) = match (h.kvm_rw, h.kvm_probe.clone()) {
        (None, _) => (false, "/dev/kvm absent: guests run under TCG (slower, still works)".to_string()),
        (Some(false), _) => (false, "/dev/kvm is not read-write for this user: guests run under TCG".to_string()),
        (Some(true), Some(Ok(s))) => (true, s),
        (Some(true), Some(Err(s))) => (false, s),
        (Some(true), None) => (true, "/dev/kvm opens read-write; whether a KVM guest really runs is probed by `labctl vm` at its first boot (it falls back to TCG)".to_string()),
    };
    out.push(Check { id: "kvm".into(), title: "KVM".into(), status: if kvm_ok { Status::Ok } else { Status::Warn }, detail: kvm_detail, need: Need::Optional, packages: vec![] });
    let vng = h.has("vng");
    out.push(Check {
        id: "virtme-ng".into(),
        title: "virtme-ng (vng)".into(),
        status: if vng { Status::Ok } else { Status::Warn },
        detail: if vng { "found (`--backend vng`)".into() } else { "not found; only needed for `labctl vm --backend vng`".into() },
        need: Need::Optional,
        packages: if vng { vec![] } else { packages_for("virtme-ng", &h.distro) },
    });
    let cc = h.has("ccache");
    out.push(Check {
        id: "ccache".into(),
        title: "ccache".into(),
        status: if cc { Status::Ok } else { Status::Warn },
        detail: if cc { "found; rebuilds of the same sources hit its cache".into() } else { "not found; rebuilds compile everything again".into() },
        need: Need::Optional,
        packages: if cc { vec![] } else { packages_for("ccache", &h.distro) },
    });

    // Resources
    match h.disk_free {
        Some(free) => {
            let (status, detail) = if free < LAB_DISK_NEED {
                (Status::Missing, format!("{} free in {}; the lab profile needs about {}", human_bytes(free), h.disk_path.display(), human_bytes(LAB_DISK_NEED)))
            } else if free < DEFCONFIG_DISK_NEED {
                (Status::Warn, format!("{} free in {}: enough for the lab profile ({}), not for defconfig ({})", human_bytes(free), h.disk_path.display(), human_bytes(LAB_DISK_NEED), human_bytes(DEFCONFIG_DISK_NEED)))
            } else {
                (Status::Ok, format!("{} free in {} (lab needs about {}, defconfig {})", human_bytes(free), h.disk_path.display(), human_bytes(LAB_DISK_NEED), human_bytes(DEFCONFIG_DISK_NEED)))
            };
            out.push(Check { id: "disk".into(), title: "free disk".into(), status, detail, need: Need::Build, packages: vec![] });
        }
        None => out.push(Check { id: "disk".into(), title: "free disk".into(), status: Status::Warn, detail: "could not measure".into(), need: Need::Build, packages: vec![] }),
    }
    if let Some(m) = h.mem_total {
        let ok = m >= 2 << 30;
        out.push(Check {
            id: "ram".into(),
            title: "RAM".into(),
            status: if ok { Status::Ok } else { Status::Warn },
            detail: if ok { format!("{} (a BTF link needs about 1-2 GiB)", human_bytes(m)) } else { format!("{}: linking vmlinux with BTF needs about 2 GiB; use --jobs 1", human_bytes(m)) },
            need: Need::Optional,
            packages: vec![],
        });
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
    let reason = v["verdict"]["reason"].as_str().unwrap_or_default().to_string();
    match v["verdict"]["accel"].as_str()? {
        "kvm" => Some(Ok(format!("KVM guests run (probed by `labctl vm` this boot: {reason})"))),
        _ => Some(Err(format!("guests use TCG (probed by `labctl vm` this boot: {reason})"))),
    }
}

/// The whole doctor report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub distro: Distro,
    pub kernel: Option<KernelVersion>,
    pub checks: Vec<Check>,
    /// argv that installs every missing distro package (None: nothing to install or unknown distro).
    pub install: Option<Vec<String>>,
    /// Python packages to install with pip/pipx.
    pub pip: Vec<String>,
}

impl Report {
    pub fn from_checks(distro: Distro, kernel: Option<KernelVersion>, checks: Vec<Check>) -> Report {
        let mut pkgs: Vec<String> = Vec::new();
        let mut pip = Vec::new();
        for c in checks.iter().filter(|c| c.status != Status::Ok) {
            for p in &c.packages {
                if c.id == "virtme-ng" {
                    if !pip.contains(p) {
                        pip.push(p.clone());
                    }
                } else if !pkgs.contains(p) {
                    pkgs.push(p.clone());
                }
            }
        }
        let install = (!pkgs.is_empty()).then_some(()).and(distro.manager).map(|m| m.install_argv(&pkgs, true));
        Report { distro, kernel, checks, install, pip }
    }
    /// Something a build or VM run needs is missing.
    pub fn has_missing(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Missing)
    }
    /// The install command as one shell line (with sudo when not root).
    pub fn install_line(&self) -> Option<String> {
        let argv = self.install.as_ref()?;
        let root = unsafe { libc::geteuid() } == 0;
        let words: Vec<String> = argv.iter().map(|a| crate::process::shell_quote(std::ffi::OsStr::new(a))).collect();
        Some(format!("{}{}", if root { "" } else { "sudo " }, words.join(" ")))
    }
}

/// Gather and judge.
pub fn run(home: &Path, opts: &Options, sink: &dyn EventSink) -> Report {
    let h = HostFacts::gather(home, sink);
    let checks = evaluate(&h, opts);
    Report::from_checks(h.distro.clone(), opts.kernel, checks)
}

/// The checks `kernel build` needs, as advice text; empty when the host is ready.
pub fn preflight(kernel: KernelVersion, config: &str, samples: bool, sink: &dyn EventSink) -> String {
    let home = std::env::temp_dir();
    let h = HostFacts::gather(&home, sink);
    preflight_from(&h, kernel, config, samples)
}

/// Pure part of [`preflight`].
pub fn preflight_from(h: &HostFacts, kernel: KernelVersion, config: &str, samples: bool) -> String {
    let btf = config.lines().any(|l| l == "CONFIG_DEBUG_INFO_BTF=y");
    let checks: Vec<Check> = evaluate(h, &Options { kernel: Some(kernel) })
        .into_iter()
        .filter(|c| c.status == Status::Missing)
        .filter(|c| match c.need {
            Need::Build => c.id != "disk" && (c.id != "pahole" || btf),
            Need::Samples => samples,
            _ => false,
        })
        .collect();
    if checks.is_empty() {
        return String::new();
    }
    let mut s = String::new();
    for c in &checks {
        s.push_str(&format!("  missing: {} — {}\n", c.title, c.detail));
    }
    let r = Report::from_checks(h.distro.clone(), Some(kernel), checks);
    match r.install_line() {
        Some(l) => s.push_str(&format!("install with: {l}")),
        None => s.push_str("install the packages above with your distribution's package manager"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_all_good() -> HostFacts {
        HostFacts {
            programs: PROGRAMS.iter().map(|p| (p.to_string(), true)).collect(),
            toolchain: Toolchain {
                gcc: Some("12.2.0".into()),
                binutils: Some("2.40".into()),
                pahole: Some("1.24".into()),
                clang: Some("14.0.6".into()),
                llc_bpf: Some(true),
                glibc: Some("2.36".into()),
                make: Some("4.3".into()),
            },
            headers: ["libelf", "openssl", "zlib", "libc32"].iter().map(|h| (h.to_string(), true)).collect(),
            busybox_static: Some(true),
            kvm_rw: Some(true),
            kvm_probe: None,
            mem_total: Some(24 << 30),
            disk_free: Some(70 << 30),
            disk_path: "/root/.cache/labctl".into(),
            distro: parse_os_release("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n", false),
        }
    }

    #[test]
    fn os_release_picks_the_manager() {
        assert_eq!(parse_os_release("ID=ubuntu\nID_LIKE=debian\n", false).manager, Some(Manager::Apt));
        assert_eq!(parse_os_release("ID=fedora\n", true).manager, Some(Manager::Dnf));
        assert_eq!(parse_os_release("ID=\"centos\"\nID_LIKE=\"rhel fedora\"\n", false).manager, Some(Manager::Yum));
        assert_eq!(parse_os_release("ID=arch\n", false).manager, Some(Manager::Pacman));
        assert_eq!(parse_os_release("ID=\"opensuse-tumbleweed\"\nID_LIKE=\"opensuse suse\"\n", false).manager, Some(Manager::Zypper));
        assert_eq!(parse_os_release("ID=gentoo\n", false).manager, None);
    }

    #[test]
    fn a_complete_host_passes_and_reports_enum64() {
        let h = host_all_good();
        let checks = evaluate(&h, &Options { kernel: KernelVersion::parse_plain("5.10.46") });
        assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:#?}");
        let pahole = checks.iter().find(|c| c.id == "pahole").unwrap();
        assert!(pahole.detail.contains("pahole-enum64"), "{}", pahole.detail);
        let later = evaluate(&h, &Options { kernel: KernelVersion::parse_plain("5.10.251") });
        assert!(!later.iter().find(|c| c.id == "pahole").unwrap().detail.contains("enum64"));
        assert_eq!(preflight_from(&h, KernelVersion::new(5, 10, 46), "CONFIG_DEBUG_INFO_BTF=y\n", true), "");
        let r = Report::from_checks(h.distro.clone(), None, checks);
        assert!(r.install.is_none() && !r.has_missing());
    }

    #[test]
    fn missing_tools_give_distro_install_commands() {
        let mut h = host_all_good();
        h.programs.insert("pahole".into(), false);
        h.programs.insert("rsync".into(), false);
        h.headers.insert("libelf".into(), false);
        h.headers.insert("libc32".into(), false);
        h.programs.insert("vng".into(), false);
        let checks = evaluate(&h, &Options::default());
        let r = Report::from_checks(h.distro.clone(), None, checks.clone());
        assert!(r.has_missing());
        let argv = r.install.clone().unwrap();
        assert_eq!(&argv[..3], ["apt-get", "install", "-y"]);
        for p in ["dwarves", "rsync", "libelf-dev", "libc6-dev-i386"] {
            assert!(argv.contains(&p.to_string()), "{argv:?}");
        }
        assert_eq!(r.pip, ["virtme-ng"]);
        // Fedora names.
        h.distro = parse_os_release("ID=fedora\n", true);
        let r = Report::from_checks(h.distro.clone(), None, evaluate(&h, &Options::default()));
        let argv = r.install.unwrap();
        assert!(argv.contains(&"elfutils-libelf-devel".to_string()) && argv.contains(&"glibc-devel.i686".to_string()), "{argv:?}");
        // Preflight: stops for pahole (BTF config) and rsync, not for 32-bit headers or vng.
        let advice = preflight_from(&h, KernelVersion::new(5, 10, 46), "CONFIG_DEBUG_INFO_BTF=y\n", true);
        assert!(advice.contains("pahole") && advice.contains("rsync") && advice.contains("dnf install -y"), "{advice}");
        assert!(!advice.contains("32-bit") && !advice.contains("virtme"), "{advice}");
        // Without BTF, pahole is not needed.
        let advice = preflight_from(&h, KernelVersion::new(5, 10, 46), "# CONFIG_DEBUG_INFO_BTF is not set\n", false);
        assert!(!advice.contains("pahole"), "{advice}");
    }

    #[test]
    fn pahole_too_old_for_the_kernel() {
        let mut h = host_all_good();
        h.toolchain.pahole = Some("1.15".into());
        let c = evaluate(&h, &Options { kernel: KernelVersion::parse_plain("5.10.46") });
        let p = c.iter().find(|c| c.id == "pahole").unwrap();
        assert_eq!(p.status, Status::Missing, "{p:?}");
        assert!(p.detail.contains("1.16"));
        h.toolchain.pahole = Some("1.17".into());
        assert_eq!(evaluate(&h, &Options { kernel: KernelVersion::parse_plain("5.10.46") }).iter().find(|c| c.id == "pahole").unwrap().status, Status::Ok);
        assert_eq!(evaluate(&h, &Options { kernel: KernelVersion::parse_plain("5.15.1") }).iter().find(|c| c.id == "pahole").unwrap().status, Status::Missing);
    }

    #[test]
    fn resources_and_vm_checks() {
        let mut h = host_all_good();
        h.disk_free = Some(2 << 30);
        h.busybox_static = Some(false);
        h.kvm_rw = None;
        let c = evaluate(&h, &Options::default());
        assert_eq!(c.iter().find(|c| c.id == "disk").unwrap().status, Status::Missing);
        assert_eq!(c.iter().find(|c| c.id == "busybox").unwrap().status, Status::Missing);
        assert_eq!(c.iter().find(|c| c.id == "kvm").unwrap().status, Status::Warn);
        let mut h2 = host_all_good();
        h2.kvm_probe = kvm_verdict_from_cache(r#"{"boot_id":"b1","qemu":"q","verdict":{"accel":"tcg","reason":"KVM hangs","cached":false}}"#, "b1");
        let k = evaluate(&h2, &Options::default()).into_iter().find(|c| c.id == "kvm").unwrap();
        assert_eq!(k.status, Status::Warn);
        assert!(k.detail.contains("KVM hangs"), "{}", k.detail);
        assert!(kvm_verdict_from_cache(r#"{"boot_id":"old","qemu":"q","verdict":{"accel":"kvm","reason":"ok"}}"#, "b1").is_none(), "a verdict from another boot is stale");
        assert!(matches!(kvm_verdict_from_cache(r#"{"boot_id":"b1","qemu":"q","verdict":{"accel":"kvm","reason":"ok"}}"#, "b1"), Some(Ok(_))));
        assert_eq!(parse_meminfo_total("MemTotal:       24603912 kB\nMemFree: 1 kB\n"), Some(24603912 * 1024));
    }

    #[test]
    fn every_check_has_packages_for_every_manager() {
        let t: BTreeMap<String, BTreeMap<String, Vec<String>>> = toml::from_str(PACKAGES).unwrap();
        for (id, per) in &t {
            if per.contains_key("pip") {
                continue;
            }
            for m in ["apt", "dnf", "pacman", "zypper"] {
                assert!(per.get(m).is_some_and(|v| !v.is_empty()), "{id} lacks {m}");
            }
        }
    }
}
