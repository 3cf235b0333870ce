//! Kernel builds: the known-fix catalogue (data in `labctl/fixes/`), the out-of-tree
//! build keyed by version + config hash + toolchain, artifacts, build.json and
//! reproduce.sh, and failure diagnosis. Owns [`BuildRequest`], [`BuildOutput`] and
//! [`BuildError`].
//!
//! Entry points: [`build`] (the pipeline, see `pipeline.rs`), [`find_build`] (newest
//! successful build matching a version, for `vm run` / `vm test`), [`local_builds`]
//! (`kernel list`) and [`gdb::ensure`] (a build's gdb scripts, made on demand for
//! `vm run --gdb`).

pub mod catalogue;
pub mod diagnose;
pub mod gdb;
pub mod metadata;
mod pipeline;
pub mod toolchain;
pub mod tools;

use std::path::PathBuf;
use std::time::Duration;

use crate::home::Home;
use crate::kconfig::ConfigReport;
use crate::source::SourceTree;
use crate::version::VersionReq;

pub use catalogue::{Catalogue, Diagnosis, FixPlan};
pub use diagnose::FailureReport;
pub use metadata::{BuildJson, BuildResult};
pub use pipeline::{build, package};
pub use toolchain::Toolchain;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The host lacks something the build needs (the doctor's advice follows).
    #[error("this host is not ready to build linux {version}:\n{advice}\n(run `labctl doctor --kernel {version}` for the full report, or pass --skip-doctor to try anyway)")]
    Preflight { version: String, advice: String },
    /// Not enough free disk space for the build.
    #[error("not enough free space in {}: the build needs about {need}, {available} is available (free space, or use --home on a bigger disk; `labctl cache prune` removes old builds)", path.display())]
    Disk {
        path: PathBuf,
        need: String,
        available: String,
    },
    /// A make step failed; the report has the first error, the tail, the log and the diagnosis.
    #[error("{0}")]
    Failed(Box<FailureReport>),
    #[error("build of linux {version} finished but {what} is missing at {} (see {})", path.display(), log.display())]
    MissingArtifact {
        version: String,
        what: String,
        path: PathBuf,
        log: PathBuf,
    },
    #[error(transparent)]
    Catalogue(#[from] catalogue::CatalogueError),
    #[error(transparent)]
    Userland(#[from] crate::userland::UserlandError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The cache (its folders, locks, atomic writes) failed.
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    /// `kernel package` on a build folder without a finished local build.
    #[error("{} holds no finished local build to package (a pulled build has no build tree: build it here with `labctl kernel build {version}`)", dir.display())]
    NothingToPackage { dir: PathBuf, version: String },
    /// `--cc-wrapper` names a program this userland does not have.
    #[error("--cc-wrapper {wrapper}: `{wrapper}` is not installed (install it or pass --cc-wrapper none)")]
    NoCcWrapper { wrapper: String },
}

impl BuildError {
    /// True for Ctrl-C, from a make step, a toolchain root or a lock wait.
    pub fn is_interrupted(&self) -> bool {
        match self {
            BuildError::Home(h) => h.is_interrupted(),
            BuildError::Process(p) => p.is_interrupted(),
            BuildError::Userland(u) => u.is_interrupted(),
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BuildError::Io {
            op,
            path: path.into(),
            source,
        }
    }
    /// The failure report, when a make step failed.
    pub fn report(&self) -> Option<&FailureReport> {
        match self {
            BuildError::Failed(r) => Some(r),
            _ => None,
        }
    }
}

/// The compiler wrapper for make's CC/HOSTCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CcWrapper {
    /// ccache when installed, else none.
    #[default]
    Auto,
    Ccache,
    Sccache,
    Distcc,
    None,
}

impl CcWrapper {
    /// The wrapper program to use, after resolving `auto` against PATH.
    pub fn resolve(self) -> Option<&'static str> {
        match self {
            CcWrapper::Auto => crate::process::which("ccache").map(|_| "ccache"),
            CcWrapper::Ccache => Some("ccache"),
            CcWrapper::Sccache => Some("sccache"),
            CcWrapper::Distcc => Some("distcc"),
            CcWrapper::None => None,
        }
    }
}

/// How much DWARF the kernel's objects carry (`--debug-info`). BTF (pahole's input)
/// needs the types of every object; it does not need GCC's variable-location tracking,
/// which took a third of the compile time of the lab's largest object (verifier.c:
/// 3.9 s with it, 2.6 s without, 2.4 s with no `-g` at all; GCC 12, 2 cores) and 4-8%
/// over a sample of 32 of its objects (A/B, both orders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DebugInfo {
    /// The kernel's `-g` with `KCFLAGS=-fno-var-tracking`: the half of the kernel's own
    /// `DEBUG_INFO_REDUCED` that keeps BTF whole (the other half,
    /// `-femit-struct-debug-baseonly`, would drop types, which is why `DEBUG_INFO_BTF`
    /// refuses `DEBUG_INFO_REDUCED`). gdb still breaks, steps and prints backtraces and
    /// globals; locals kept in registers show as `<optimized out>`.
    #[default]
    Lean,
    /// The kernel's own flags: full variable locations for gdb, the slower compile.
    Full,
}

impl DebugInfo {
    /// Make variables this choice adds to every kernel make (merged with the fix
    /// catalogue's). Hashed into the build key, so the two never share a build folder.
    pub fn make_vars(self) -> &'static [(&'static str, &'static str)] {
        match self {
            DebugInfo::Lean => &[("KCFLAGS", "-fno-var-tracking")],
            DebugInfo::Full => &[],
        }
    }
}

/// How to build, apart from what (tree, config): the one set of build knobs. The CLI's
/// `BuildOpts` converts into it in one place; [`crate::lab::LabBuild`] and
/// [`BuildRequest`] embed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// make -j; 0 = number of CPUs.
    pub jobs: usize,
    /// Apply the catalogue's fixes (false = `--no-fixes`).
    pub fixes: bool,
    pub cc_wrapper: CcWrapper,
    /// Build modules and stage them (when the config enables modules).
    pub modules: bool,
    /// `headers_install` + `make M=samples/bpf`.
    pub samples: bool,
    /// Run the doctor's checks first and stop with its advice.
    pub preflight: bool,
    /// Upper bound for each make step.
    pub step_timeout: Option<Duration>,
    /// Where the compilers come from (`--toolchain`); [`crate::lab`] opens it as the
    /// request's [`BuildRequest::userland`].
    pub toolchain: crate::userland::ToolchainSpec,
    /// DWARF detail (`--debug-info lean|full`).
    pub debug_info: DebugInfo,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            jobs: 0,
            fixes: true,
            cc_wrapper: CcWrapper::Auto,
            modules: true,
            samples: true,
            preflight: true,
            step_timeout: Some(Duration::from_secs(4 * 3600)),
            toolchain: crate::userland::ToolchainSpec::Host,
            debug_info: DebugInfo::Lean,
        }
    }
}

/// What to build and how.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub tree: SourceTree,
    pub config: ConfigReport,
    /// Profile name and fragments, recorded in build.json.
    pub profile: String,
    pub fragments: Vec<PathBuf>,
    /// The build knobs.
    pub options: BuildOptions,
    /// Toolchain to assume instead of probing the host (tests).
    pub toolchain: Option<Toolchain>,
    /// Where make and the compilers run: `options.toolchain`, opened (the host, or a
    /// Debian root).
    pub userland: crate::userland::Userland,
}

impl BuildRequest {
    pub fn new(tree: SourceTree, config: ConfigReport) -> Self {
        BuildRequest {
            tree,
            config,
            profile: "lab".into(),
            fragments: Vec::new(),
            options: BuildOptions::default(),
            toolchain: None,
            userland: crate::userland::Userland::host(),
        }
    }
}

/// A finished build's artifacts folder.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BuildOutput {
    pub dir: PathBuf,
    /// The boot image (`bzImage`, arm64's `Image`): what QEMU's `-kernel` takes.
    #[serde(alias = "bzimage")]
    pub image: PathBuf,
    /// The architecture it was built for (x86_64 in build.json files from before the
    /// arch axis).
    #[serde(
        with = "crate::arch::serde_name",
        default = "crate::arch::serde_name::default"
    )]
    pub arch: &'static crate::arch::Arch,
    pub vmlinux: PathBuf,
    pub config: PathBuf,
    /// `modules_install INSTALL_MOD_PATH` staging dir (holds lib/modules/<release>).
    pub modules: PathBuf,
    pub headers: PathBuf,
    pub samples: PathBuf,
    /// `make kernelrelease`.
    pub release: String,
    /// The build key (`<ver>-<cfg8>-<tool8>`, the folder name under `builds/`).
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub system_map: PathBuf,
    #[serde(default)]
    pub build_json: PathBuf,
    #[serde(default)]
    pub log: PathBuf,
    #[serde(default)]
    pub reproduce: PathBuf,
    /// True when this call found the key already built and did nothing.
    #[serde(default)]
    pub reused: bool,
    /// Where the guest's programs take their shared libraries: the guest userland root of
    /// a cross build, or the root filesystem whose tools built it (`--toolchain
    /// debian:<suite>`). None = the host's.
    #[serde(default)]
    pub sysroot: Option<PathBuf>,
}

impl BuildOutput {
    /// The kernel build folder (where `include/generated` lives): the artifacts folder
    /// or a sibling (`obj/`, `build/`), or a pulled build's merged
    /// `artifacts/bcc-headers`. BCC takes its headers from there.
    pub fn build_tree(&self) -> Option<PathBuf> {
        [
            self.dir.clone(),
            self.dir.join("build"),
            self.dir.join("obj"),
            // A pulled build brings the merged headers instead (`artifacts/bcc-headers`).
            self.dir.join("artifacts/bcc-headers"),
        ]
        .into_iter()
        .chain(
            self.dir
                .parent()
                .into_iter()
                .flat_map(|p| [p.join("obj"), p.join("build")]),
        )
        .find(|d| d.join("include/generated").is_dir())
    }
}

/// A distribution package format for `kernel package`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    /// `make bindeb-pkg`: linux-image-REL (and -dbg, linux-headers, linux-libc-dev) .debs.
    Deb,
    /// `make binrpm-pkg`: kernel (and kernel-headers) .rpms.
    Rpm,
    /// `make tar-pkg`: linux-REL-x86.tar with boot/ and lib/modules/.
    Tar,
}

impl PackageFormat {
    pub fn name(self) -> &'static str {
        match self {
            PackageFormat::Deb => "deb",
            PackageFormat::Rpm => "rpm",
            PackageFormat::Tar => "tar",
        }
    }
    /// The kernel's make target.
    pub fn make_target(self) -> &'static str {
        match self {
            PackageFormat::Deb => "bindeb-pkg",
            PackageFormat::Rpm => "binrpm-pkg",
            PackageFormat::Tar => "tar-pkg",
        }
    }
    /// doctor requirement ids the target runs (besides the build's own tools).
    pub fn requirements(self) -> &'static [&'static str] {
        match self {
            PackageFormat::Deb => &["dpkg-buildpackage", "fakeroot", "rsync", "kmod", "cpio"],
            PackageFormat::Rpm => &["rpmbuild", "rsync", "kmod", "cpio"],
            PackageFormat::Tar => &["kmod"],
        }
    }
    fn is_output(self, name: &str) -> bool {
        match self {
            PackageFormat::Deb => name.ends_with(".deb"),
            PackageFormat::Rpm => name.ends_with(".rpm") && !name.ends_with(".src.rpm"),
            PackageFormat::Tar => name.starts_with("linux-") && name.contains(".tar"),
        }
    }
    /// The packages the target wrote after `since`: bindeb-pkg writes next to the `O=`
    /// folder (the build folder), binrpm-pkg under `rpmbuild/RPMS/` (of the object folder,
    /// or of $HOME on older kernels), tar-pkg into the object folder.
    pub fn find_outputs(
        self,
        build_dir: &std::path::Path,
        obj: &std::path::Path,
        since: std::time::SystemTime,
    ) -> Vec<PathBuf> {
        let mut dirs = vec![build_dir.to_path_buf(), obj.to_path_buf()];
        let mut rpm_roots = vec![obj.join("rpmbuild/RPMS")];
        if let Some(h) = std::env::var_os("HOME") {
            rpm_roots.push(PathBuf::from(h).join("rpmbuild/RPMS"));
        }
        for r in rpm_roots {
            if let Ok(rd) = std::fs::read_dir(&r) {
                dirs.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
        }
        let mut out = Vec::new();
        for d in dirs {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let fresh = e
                    .metadata()
                    .ok()
                    .filter(|m| m.is_file())
                    .and_then(|m| m.modified().ok())
                    .is_some_and(|t| t >= since);
                if fresh && self.is_output(&name) {
                    out.push(e.path());
                }
            }
        }
        out
    }
}

impl std::str::FromStr for PackageFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "deb" => Ok(PackageFormat::Deb),
            "rpm" => Ok(PackageFormat::Rpm),
            "tar" => Ok(PackageFormat::Tar),
            _ => Err(format!("unknown package format `{s}`: use deb, rpm or tar")),
        }
    }
}

/// What `kernel package` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Packages {
    pub format: PackageFormat,
    pub release: String,
    pub files: Vec<PathBuf>,
    pub log: PathBuf,
}

/// Every build folder with a readable build.json (any result), newest first.
pub fn local_builds(home: &Home) -> Vec<BuildJson> {
    let mut out: Vec<BuildJson> = std::fs::read_dir(home.builds())
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| BuildJson::read(&e.path()))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| {
        b.finished_unix
            .unwrap_or(b.started_unix)
            .cmp(&a.finished_unix.unwrap_or(a.started_unix))
    });
    out
}

/// The newest successful build matching `req` made with the host's tools (highest
/// version, then most recent).
pub fn find_build(home: &Home, req: &VersionReq) -> Option<BuildOutput> {
    find_build_for(
        home,
        req,
        &crate::userland::ToolchainSpec::Host,
        crate::arch::Arch::host(),
    )
}

/// [`find_build`] for builds made with `toolchain` (`--toolchain debian:trixie`).
/// The lab fragments' lines (for this kernel version) that `build` was not configured
/// with: a build made before labctl's `kconfig/` fragments changed. Read from the build's
/// `config.input` (the merged configuration labctl fed to `olddefconfig`); empty when it
/// is missing (nothing to compare) or when everything is there.
pub fn missing_lab_options(build: &BuildOutput) -> Vec<String> {
    let Ok(input) = std::fs::read_to_string(build.dir.join("config.input")) else {
        return Vec::new();
    };
    let have = crate::kconfig::dotconfig::DotConfig::parse(&input);
    let version = crate::version::KernelVersion::from_release(&build.release);
    // The fragments of the build's own profile (lab builds also get lean.config).
    let profile = BuildJson::read(&build.dir)
        .and_then(|b| b.profile.parse().ok())
        .unwrap_or(crate::kconfig::Profile::Lab);
    let mut out = Vec::new();
    for f in crate::kconfig::fragments_for(&profile) {
        let Ok(entries) = crate::kconfig::dotconfig::parse(&f.text, false) else {
            continue;
        };
        for e in entries {
            let applies = match (&e.guard, &version) {
                (Some(g), Some(v)) => g.matches(v),
                _ => true,
            };
            if applies && have.get(&e.symbol) != e.value {
                out.push(format!("CONFIG_{}={}", e.symbol, e.value));
            }
        }
    }
    out
}

pub fn find_build_for(
    home: &Home,
    req: &VersionReq,
    toolchain: &crate::userland::ToolchainSpec,
    arch: &crate::arch::Arch,
) -> Option<BuildOutput> {
    // A build whose samples/bpf step failed is not "finished" for the suite: running the
    // pipeline again retries that step incrementally (e.g. after `doctor --install`).
    let mut ok: Vec<BuildJson> = local_builds(home)
        .into_iter()
        .filter(|b| {
            b.is_complete()
                && b.samples_ok != Some(false)
                && req.matches(&b.version)
                && &b.toolchain.userland == toolchain
                && b.output.as_ref().is_some_and(|o| o.arch.name == arch.name)
        })
        .collect();
    ok.sort_by(|a, b| {
        b.version
            .cmp(&a.version)
            .then(b.finished_unix.cmp(&a.finished_unix))
    });
    ok.into_iter().next().and_then(|b| b.output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_from_older_fragments_names_what_it_lacks() {
        let d = tempfile::tempdir().unwrap();
        let b = BuildOutput {
            dir: d.path().to_path_buf(),
            image: d.path().join("bzImage"),
            arch: crate::arch::Arch::x86_64(),
            vmlinux: d.path().join("vmlinux"),
            config: d.path().join("config"),
            modules: d.path().join("modules"),
            headers: d.path().join("headers"),
            samples: d.path().join("samples"),
            release: "5.10.46".into(),
            key: String::new(),
            system_map: PathBuf::new(),
            build_json: PathBuf::new(),
            log: PathBuf::new(),
            reproduce: PathBuf::new(),
            reused: true,
            sysroot: None,
        };
        // No config.input: nothing to compare.
        assert!(missing_lab_options(&b).is_empty());
        // Everything the fragments ask for (for 5.10: no [>=5.18] lines) is there.
        let mut all = String::new();
        for f in crate::kconfig::fragments_for(&crate::kconfig::Profile::Lab) {
            for e in crate::kconfig::dotconfig::parse(&f.text, false).unwrap() {
                let v = crate::version::KernelVersion::new(5, 10, 46);
                if e.guard.as_ref().is_none_or(|g| g.matches(&v)) {
                    if e.value == "n" {
                        all.push_str(&format!("# CONFIG_{} is not set\n", e.symbol));
                    } else {
                        all.push_str(&format!("CONFIG_{}={}\n", e.symbol, e.value));
                    }
                }
            }
        }
        std::fs::write(d.path().join("config.input"), &all).unwrap();
        assert_eq!(missing_lab_options(&b), Vec::<String>::new());
        // An older build without SIGNALFD.
        let old = all.replace("CONFIG_SIGNALFD=y\n", "");
        std::fs::write(d.path().join("config.input"), old).unwrap();
        assert_eq!(missing_lab_options(&b), ["CONFIG_SIGNALFD=y"]);
    }

    #[test]
    fn package_formats_name_their_targets_and_find_only_fresh_outputs() {
        for (text, f, target) in [
            ("deb", PackageFormat::Deb, "bindeb-pkg"),
            ("rpm", PackageFormat::Rpm, "binrpm-pkg"),
            ("tar", PackageFormat::Tar, "tar-pkg"),
        ] {
            let p: PackageFormat = text.parse().unwrap();
            assert_eq!((p, p.make_target(), p.name()), (f, target, text));
            for id in p.requirements() {
                assert!(
                    crate::doctor::requirement(id).is_some(),
                    "{id} is not in requirements.toml"
                );
            }
        }
        assert!("snap"
            .parse::<PackageFormat>()
            .unwrap_err()
            .contains("deb, rpm or tar"));
        let d = tempfile::tempdir().unwrap();
        let obj = d.path().join("obj");
        std::fs::create_dir_all(obj.join("rpmbuild/RPMS/x86_64")).unwrap();
        let before = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for f in [
            "linux-image-5.10.46_5.10.46-1_amd64.deb",
            "linux-5.10.46_5.10.46-1_amd64.changes",
            "obj/linux-5.10.46-x86.tar",
            "obj/rpmbuild/RPMS/x86_64/kernel-5.10.46-1.x86_64.rpm",
        ] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        let names = |f: PackageFormat, since| -> Vec<String> {
            let mut v: Vec<String> = f
                .find_outputs(d.path(), &obj, since)
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names(PackageFormat::Deb, before),
            ["linux-image-5.10.46_5.10.46-1_amd64.deb"]
        );
        assert_eq!(names(PackageFormat::Tar, before), ["linux-5.10.46-x86.tar"]);
        assert_eq!(
            names(PackageFormat::Rpm, before),
            ["kernel-5.10.46-1.x86_64.rpm"]
        );
        // Older files (an earlier run's) are not taken.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        assert!(names(PackageFormat::Deb, later).is_empty());
    }
}
