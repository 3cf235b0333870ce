//! The acceptance suite on a lab kernel: everything between "here is a kernel" and
//! [`suite::run`]. It owns the kernel under test ([`Kernel`], made from a labctl
//! [`BuildOutput`] or from `--kernel`/`--obj` paths: where the modules, `test_bpf.ko`,
//! samples/bpf and the build tree are), the host probes that fill [`SuiteInput`]
//! (hello-bcc's python with `import bcc`, the kernel's bpftool, the host's bpftrace, the
//! expected config), and [`VmGuest`], the [`suite::Guest`] that boots the kernel with
//! [`vm::run`] (QEMU, or virtme-ng for the host-userland tests). `labctl vm test` and
//! [`crate::matrix::run`] both go through [`run`]; the CLI only parses flags and renders.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::build::BuildOutput;
use crate::events::EventSink;
use crate::home::Home;
use crate::suite::{
    self, Bcc, BccMissing, Guest, GuestReply, GuestRequest, SamplesFailure, SuiteError, SuiteInput,
    SuiteResult, ToolInput,
};
use crate::userland::ToolchainSpec;
use crate::vm::{self, AccelChoice, Backend, VmSpec};
use crate::{KernelVersion, VersionReq};

/// The suite's guest memory in MiB (`vm test --memory`, `matrix --memory`). More than a
/// plain `vm run` ([`vm::DEFAULT_MEMORY_MB`]): test_bpf and the samples load many programs.
pub const DEFAULT_MEMORY_MB: u32 = 1024;
/// The suite's guest CPUs (`--cpus`).
pub const DEFAULT_CPUS: u32 = 2;

/// The kernel under test, wherever it came from.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub version: KernelVersion,
    pub release: String,
    /// The boot image QEMU's `-kernel` takes.
    pub image: PathBuf,
    pub arch: &'static crate::arch::Arch,
    /// A folder with `lib/modules/<release>` (None: no modules, or a vng boot).
    pub modules: Option<PathBuf>,
    pub samples: Option<PathBuf>,
    pub test_bpf_ko: Option<PathBuf>,
    /// The kernel's build folder (O=), for BCC's headers and (with `--kernel`) bpftool.
    pub build_tree: Option<PathBuf>,
    /// Why samples/bpf programs may be missing (a failed samples build).
    pub samples_failure: Option<SamplesFailure>,
    /// The toolchain root whose libraries the samples need (`--toolchain debian:…`).
    pub sysroot: Option<PathBuf>,
    /// The labctl build (None with `--kernel`).
    pub build: Option<BuildOutput>,
    /// examples-bpf programs that came with a pulled build.
    pub examples: Option<suite::examples::Prebuilt>,
}

impl Kernel {
    /// A labctl build (made, reused or pulled). `req` names the version when the
    /// release string does not parse.
    pub fn from_build(b: BuildOutput, req: &VersionReq) -> Kernel {
        let version = KernelVersion::from_release(&b.release).unwrap_or(match *req {
            VersionReq::Exact(v) => v,
            VersionReq::Series(x, y) => KernelVersion::new(x, y, 0),
        });
        let modules = b
            .modules
            .join("lib/modules")
            .is_dir()
            .then(|| b.modules.clone());
        let test_bpf_ko = modules
            .as_ref()
            .and_then(|m| first_match(&m.join("lib/modules"), "test_bpf.ko", 6));
        // The build tree is where include/generated lives: the artifacts folder or a sibling.
        let build_tree = b.build_tree();
        Kernel {
            version,
            release: b.release.clone(),
            image: b.image.clone(),
            arch: b.arch,
            modules,
            samples: Some(b.samples.clone()).filter(|p| p.is_dir()),
            test_bpf_ko,
            build_tree,
            samples_failure: SamplesFailure::from_build_dir(&b.dir),
            sysroot: b.sysroot.clone(),
            examples: suite::examples::prebuilt(&b.dir),
            build: Some(b),
        }
    }

    /// A kernel built by hand: `bzimage`, and optionally its build folder `obj` (O=)
    /// with `.config`, `lib/test_bpf.ko` and `samples/bpf`.
    pub fn from_paths(version: KernelVersion, bzimage: &Path, obj: Option<&Path>) -> Kernel {
        let release = obj
            .and_then(|o| std::fs::read_to_string(o.join("include/config/kernel.release")).ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| version.to_string());
        // The architecture its .config names (this machine's when there is none).
        let arch = obj
            .and_then(|o| std::fs::read_to_string(o.join(".config")).ok())
            .and_then(|c| crate::arch::Arch::of_config(&c))
            .unwrap_or_else(crate::arch::Arch::host);
        Kernel {
            version,
            release,
            image: bzimage.to_path_buf(),
            arch,
            modules: None,
            samples: obj.map(|o| o.join("samples/bpf")).filter(|p| p.is_dir()),
            test_bpf_ko: obj.and_then(|o| Some(o.join("lib/test_bpf.ko")).filter(|p| p.is_file())),
            build_tree: obj.map(Path::to_path_buf),
            samples_failure: None,
            sysroot: None,
            build: None,
            examples: None,
        }
    }
}

impl Kernel {
    /// The guest userland root of a foreign architecture's kernel (its sysroot: busybox,
    /// the C library, the loaders' libraries); None for the host's architecture, whose
    /// guests take them from the host.
    pub fn guest_root(&self) -> Option<PathBuf> {
        self.sysroot.clone().filter(|_| !self.arch.is_host())
    }
}

fn first_match(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let rd = std::fs::read_dir(dir).ok()?;
    let mut subdirs = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy() == name && p.is_file() {
            return Some(p);
        }
        if depth > 0
            && e.file_type()
                .map(|t| t.is_dir() && !t.is_symlink())
                .unwrap_or(false)
        {
            subdirs.push(p);
        }
    }
    subdirs
        .into_iter()
        .find_map(|d| first_match(&d, name, depth - 1))
}

/// Where the host probes look for programs: a search path and the pythons to try for
/// BCC (distro BCC, python3-bpfcc, lives in the system python, which may not be the
/// first on PATH).
#[derive(Debug, Clone)]
pub struct HostTools {
    pub path: OsString,
    pub pythons: Vec<String>,
}

impl HostTools {
    /// `$PATH`, then `/usr/bin/python3` before the `python3` on PATH.
    pub fn from_env() -> HostTools {
        HostTools {
            path: std::env::var_os("PATH").unwrap_or_default(),
            pythons: vec!["/usr/bin/python3".into(), "python3".into()],
        }
    }

    fn which(&self, program: &str) -> Option<PathBuf> {
        crate::process::which_in(program, &self.path)
    }
}

/// How to run the suite on a kernel: the `vm test` options that are not about which
/// kernel.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// `--filter` patterns ("" = the default selection).
    pub filter: String,
    /// `--skip` patterns.
    pub skip: String,
    pub full: bool,
    pub inject: Vec<suite::guest::Fault>,
    /// `--no-bcc`: hello-bcc is a skip on request.
    pub no_bcc: bool,
    pub allow_skip: bool,
    pub accel: AccelChoice,
    pub memory_mb: u32,
    pub cpus: u32,
    /// Whose compilers make the kernel's bpftool (`--toolchain`).
    pub toolchain: ToolchainSpec,
    /// `--fragment` files and `--set` pairs: kernel/config checks them on top of the
    /// lab's core options.
    pub fragments: Vec<PathBuf>,
    pub sets: Vec<(String, String)>,
    pub host: HostTools,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            filter: String::new(),
            skip: String::new(),
            full: false,
            inject: Vec::new(),
            no_bcc: false,
            allow_skip: false,
            accel: AccelChoice::Auto,
            memory_mb: DEFAULT_MEMORY_MB,
            cpus: DEFAULT_CPUS,
            toolchain: ToolchainSpec::Host,
            fragments: Vec::new(),
            sets: Vec::new(),
            host: HostTools::from_env(),
        }
    }
}

/// What kernel/config checks: the lab's core options, then the fragments, then the
/// `--set` pairs; a later request for the same symbol overrides an earlier one.
pub fn expected_config(
    fragments: &[PathBuf],
    sets: &[(String, String)],
) -> crate::Result<Vec<(String, String)>> {
    let mut expected = suite::catalog::fragment_pairs(suite::catalog::LAB_CONFIG);
    for f in fragments {
        let text =
            std::fs::read_to_string(f).map_err(|e| crate::Error::io("read fragment", f, e))?;
        expected.extend(suite::catalog::fragment_pairs(&text));
    }
    for (k, v) in sets {
        expected.push((k.trim_start_matches("CONFIG_").to_string(), v.clone()));
    }
    let mut seen = std::collections::BTreeMap::new();
    for (k, v) in expected {
        seen.insert(k, v);
    }
    Ok(seen.into_iter().collect())
}

/// The kernel's own bpftool for the `bpftool` test: made from the build's tree on first
/// use (with `--kernel`, the one in the build folder's tools/bpf/bpftool if built there).
pub fn bpftool_plan(
    home: &Home,
    kernel: &Kernel,
    opts: &SuiteOptions,
    sink: &dyn EventSink,
) -> ToolInput {
    let wanted = suite::selected(&kernel.version, opts.full, &opts.filter, kernel.arch)
        .map(|ts| {
            ts.iter().any(|t| {
                t.needs().bpftool
                    && (opts.skip.is_empty() || !suite::catalog::matches_filter(t.id(), &opts.skip))
            })
        })
        .unwrap_or(false);
    if !wanted {
        return ToolInput::missing("not selected", "not selected by --filter");
    }
    match &kernel.build {
        Some(b) => match crate::build::tools::ensure(
            home,
            b,
            &opts.toolchain,
            crate::build::tools::KernelTool::Bpftool,
            sink,
        ) {
            Ok(path) => ToolInput::Ready {
                path,
                sysroot: b.sysroot.clone(),
            },
            Err(e) => ToolInput::missing(
                "the kernel's bpftool did not build",
                format!("{e}; `labctl doctor --install` installs what it needs"),
            ),
        },
        None => match kernel
            .build_tree
            .as_ref()
            .map(|o| o.join("tools/bpf/bpftool/bpftool"))
            .filter(|p| crate::process::is_executable(p))
        {
            Some(path) => ToolInput::Ready {
                path,
                sysroot: None,
            },
            None => ToolInput::missing(
                "no bpftool for --kernel",
                "with --kernel the bpftool test needs the kernel's own bpftool: build it with `make O=<obj> tools/bpf/bpftool` and pass --obj <obj>",
            ),
        },
    }
}

/// The host's bpftrace for the `bpftrace` test (run in the vng boot).
pub fn bpftrace_plan(host: &HostTools) -> ToolInput {
    match host.which("bpftrace") {
        Some(path) => ToolInput::Ready {
            path,
            sysroot: None,
        },
        None => ToolInput::missing(
            "no bpftrace: labctl doctor --install",
            "the bpftrace test runs the host's bpftrace in the vng boot: install it with `labctl doctor --install` (Debian/Ubuntu package bpftrace)",
        ),
    }
}

/// hello-bcc runs only when the host has BCC for a python3 and virtme-ng.
pub fn bcc_plan(kernel: &Kernel, opts: &SuiteOptions, sink: &dyn EventSink) -> Bcc {
    if opts.no_bcc {
        return Bcc::NotRequested;
    }
    let python = opts.host.pythons.iter().find_map(|p| {
        let path = opts.host.which(p)?;
        crate::process::Cmd::new(&path)
            .args(["-c", "import bcc"])
            .timeout(Duration::from_secs(30))
            .run(sink)
            .map(|o| o.success())
            .unwrap_or(false)
            .then_some(path)
    });
    let Some(python) = python else {
        return Bcc::Missing(BccMissing::PythonModule);
    };
    if opts.host.which("vng").is_none() {
        return Bcc::Missing(BccMissing::Vng);
    }
    Bcc::Run {
        python,
        kernel_source: kernel.build_tree.clone(),
    }
}

/// The suite's input for `kernel`, written to `run_dir`: the host probes run here.
pub fn input(
    home: &Home,
    kernel: &Kernel,
    opts: &SuiteOptions,
    run_dir: PathBuf,
    sink: &dyn EventSink,
) -> crate::Result<SuiteInput> {
    Ok(SuiteInput {
        kernel: kernel.version,
        release: kernel.release.clone(),
        samples_dir: kernel.samples.clone(),
        samples_sysroot: kernel.sysroot.clone(),
        samples_failure: kernel.samples_failure.clone(),
        test_bpf_ko: kernel.test_bpf_ko.clone(),
        expected_config: expected_config(&opts.fragments, &opts.sets)?,
        filter: opts.filter.clone(),
        skip: opts.skip.clone(),
        full: opts.full,
        bcc: bcc_plan(kernel, opts, sink),
        bpftool: bpftool_plan(home, kernel, opts, sink),
        bpftrace: bpftrace_plan(&opts.host),
        inject: opts.inject.clone(),
        run_dir,
        allow_skip: opts.allow_skip,
        examples: kernel.examples.clone(),
        arch: kernel.arch,
        guest_root: kernel.guest_root(),
    })
}

/// Boot `kernel` once and run the selected tests on it, in a new folder of
/// `$LABCTL_HOME/runs` (locked while the suite writes it: `cache prune` skips it).
pub fn run(
    home: &Home,
    kernel: &Kernel,
    opts: &SuiteOptions,
    sink: &dyn EventSink,
) -> crate::Result<SuiteResult> {
    // Read before the run folder exists: a missing fragment fails first.
    expected_config(&opts.fragments, &opts.sets)?;
    let run_name = suite::run_dir_name(&kernel.version);
    let run_dir = home.ensure(home.runs())?.join(&run_name);
    let _run_lock = home.lock(&crate::home::CacheKey::Run(run_name))?;
    let input = input(home, kernel, opts, run_dir, sink)?;
    let guest = VmGuest {
        home,
        kernel,
        accel: opts.accel,
        memory: opts.memory_mb,
        cpus: opts.cpus,
    };
    Ok(suite::run(home, &input, &guest, sink)?)
}

/// The suite's [`Guest`] over [`vm::run`]: QEMU with the kernel's modules, or virtme-ng
/// (the host's userland) when the suite asks for it.
pub struct VmGuest<'a> {
    pub home: &'a Home,
    pub kernel: &'a Kernel,
    pub accel: AccelChoice,
    /// The floor for every boot; a request may ask for more.
    pub memory: u32,
    pub cpus: u32,
}

impl VmGuest<'_> {
    /// The VM spec for one of the suite's boots. The vng boot uses the host's
    /// /lib/modules, so it gets no modules folder (and no "--modules is ignored" warning
    /// for an option the user never passed).
    pub fn spec(&self, req: &GuestRequest) -> VmSpec {
        let mut spec = VmSpec::new(&self.kernel.image, &req.run_dir, req.script.clone());
        spec.arch = self.kernel.arch;
        spec.guest_root = self.kernel.guest_root();
        spec.modules = match req.backend {
            Backend::Vng => None,
            Backend::Qemu => self.kernel.modules.clone(),
        };
        spec.files = req.files.clone();
        spec.accel = self.accel;
        spec.memory_mb = req.memory_mb.unwrap_or(self.memory).max(self.memory);
        spec.cpus = req.cpus.unwrap_or(self.cpus).max(self.cpus);
        spec.timeout = Some(req.timeout);
        spec.backend = req.backend;
        spec
    }
}

impl Guest for VmGuest<'_> {
    fn run(&self, req: &GuestRequest, sink: &dyn EventSink) -> Result<GuestReply, SuiteError> {
        let spec = self.spec(req);
        let out = vm::run(self.home, &spec, sink).map_err(|e| vm_error(e, req.backend))?;
        Ok(GuestReply {
            exit_code: out.exit_code,
            output: String::from_utf8_lossy(&out.output).into_owned(),
            console_log: Some(out.console_log),
            accel: out.accel,
        })
    }
}

/// A kernel crash under a QEMU boot is a test failing (the suite judges what finished);
/// anything else the VM harness reports is the harness failing.
fn vm_error(e: vm::VmError, backend: Backend) -> SuiteError {
    match e {
        vm::VmError::Panic { .. } if backend == Backend::Qemu => {
            SuiteError::GuestCrashed(e.to_string())
        }
        other => SuiteError::Vm(Box::new(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(modules: Option<PathBuf>) -> Kernel {
        Kernel {
            version: KernelVersion::new(5, 10, 46),
            release: "5.10.46".into(),
            image: "/b/bzImage".into(),
            arch: crate::arch::Arch::x86_64(),
            modules,
            samples: None,
            test_bpf_ko: None,
            build_tree: None,
            samples_failure: None,
            sysroot: None,
            build: None,
            examples: None,
        }
    }

    fn exe(path: &Path, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn the_vng_boot_gets_no_modules_folder() {
        let home = Home::new("/nonexistent/labctl-home");
        let kernel = kernel(Some("/b/modules".into()));
        let guest = VmGuest {
            home: &home,
            kernel: &kernel,
            accel: AccelChoice::Tcg,
            memory: DEFAULT_MEMORY_MB,
            cpus: DEFAULT_CPUS,
        };
        let mut req = GuestRequest {
            files: vec![],
            script: "true".into(),
            timeout: Duration::from_secs(10),
            run_dir: "/r".into(),
            backend: Backend::Qemu,
            memory_mb: None,
            cpus: None,
        };
        let spec = guest.spec(&req);
        assert_eq!(spec.modules, Some(PathBuf::from("/b/modules")));
        assert_eq!(spec.memory_mb, 1024);
        req.backend = Backend::Vng;
        req.memory_mb = Some(2048);
        req.cpus = Some(1);
        let spec = guest.spec(&req);
        assert_eq!(
            spec.modules, None,
            "vng must not trigger the --modules warning"
        );
        assert_eq!(spec.backend, Backend::Vng);
        assert_eq!(
            (spec.memory_mb, spec.cpus),
            (2048, 2),
            "requests only raise"
        );
    }

    #[test]
    fn a_crash_under_qemu_is_a_guest_crash_and_the_rest_wraps_the_vm_error() {
        let panic = || vm::VmError::Panic {
            kind: vm::Alarm::KernelPanic,
            excerpt: "Kernel panic".into(),
            log: "/r/console.log".into(),
        };
        assert!(matches!(
            vm_error(panic(), Backend::Qemu),
            SuiteError::GuestCrashed(_)
        ));
        let e = vm_error(panic(), Backend::Vng);
        assert!(
            matches!(&e, SuiteError::Vm(v) if matches!(**v, vm::VmError::Panic { .. })),
            "{e}"
        );
        let e = vm_error(
            vm::VmError::Vng {
                detail: "no vng".into(),
            },
            Backend::Qemu,
        );
        assert_eq!(e.to_string(), "virtme-ng: no vng");
    }

    #[test]
    fn a_build_folder_gives_modules_test_bpf_and_samples() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("builds/5.10.46-abc");
        let ko = dir.join("modules/lib/modules/5.10.46/kernel/lib/test_bpf.ko");
        std::fs::create_dir_all(ko.parent().unwrap()).unwrap();
        std::fs::write(&ko, b"\x7fELF").unwrap();
        std::fs::create_dir_all(dir.join("samples")).unwrap();
        let b = BuildOutput {
            dir: dir.clone(),
            image: dir.join("bzImage"),
            arch: crate::arch::Arch::x86_64(),
            vmlinux: dir.join("vmlinux"),
            config: dir.join(".config"),
            modules: dir.join("modules"),
            headers: dir.join("headers"),
            samples: dir.join("samples"),
            release: "5.10.46-lab".into(),
            key: "abc".into(),
            system_map: dir.join("System.map"),
            build_json: dir.join("build.json"),
            log: dir.join("build.log"),
            reproduce: dir.join("reproduce.sh"),
            reused: true,
            sysroot: None,
        };
        let k = Kernel::from_build(b, &VersionReq::Series(5, 10));
        assert_eq!(k.version, KernelVersion::new(5, 10, 46));
        assert_eq!(k.release, "5.10.46-lab");
        assert_eq!(k.modules, Some(dir.join("modules")));
        assert_eq!(k.test_bpf_ko, Some(ko));
        assert_eq!(k.samples, Some(dir.join("samples")));
        assert!(k.samples_failure.is_none());
        assert!(k.build.is_some());
    }

    #[test]
    fn kernel_and_obj_paths_give_the_release_and_artifacts() {
        let d = tempfile::tempdir().unwrap();
        let obj = d.path();
        let v = KernelVersion::new(5, 10, 46);
        let k = Kernel::from_paths(v, &obj.join("bzImage"), None);
        assert_eq!(
            (k.release.as_str(), k.test_bpf_ko, k.samples),
            ("5.10.46", None, None)
        );
        std::fs::create_dir_all(obj.join("include/config")).unwrap();
        std::fs::write(obj.join("include/config/kernel.release"), "5.10.46-hand\n").unwrap();
        std::fs::create_dir_all(obj.join("lib")).unwrap();
        std::fs::write(obj.join("lib/test_bpf.ko"), b"").unwrap();
        std::fs::create_dir_all(obj.join("samples/bpf")).unwrap();
        let k = Kernel::from_paths(v, &obj.join("bzImage"), Some(obj));
        assert_eq!(k.release, "5.10.46-hand");
        assert_eq!(k.test_bpf_ko, Some(obj.join("lib/test_bpf.ko")));
        assert_eq!(k.samples, Some(obj.join("samples/bpf")));
        assert_eq!(k.build_tree.as_deref(), Some(obj));
        assert!(k.modules.is_none() && k.build.is_none());
    }

    #[test]
    fn expected_config_lets_later_requests_win() {
        let d = tempfile::tempdir().unwrap();
        let frag = d.path().join("x.frag");
        std::fs::write(&frag, "CONFIG_BPF_JIT=n\nCONFIG_LAB_EXTRA=y\n").unwrap();
        let sets = vec![("CONFIG_LAB_EXTRA".to_string(), "m".to_string())];
        let e = expected_config(std::slice::from_ref(&frag), &sets).unwrap();
        let get = |k: &str| e.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("BPF_JIT"), Some("n"));
        assert_eq!(get("LAB_EXTRA"), Some("m"));
        assert!(
            get("BPF_SYSCALL").is_some(),
            "the lab's core options: {e:?}"
        );
        let missing = expected_config(&[d.path().join("nope")], &[]).unwrap_err();
        assert!(
            missing.to_string().starts_with("read fragment"),
            "{missing}"
        );
    }

    #[test]
    fn host_probes_look_in_the_given_path() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let host = |pythons: &[&str]| HostTools {
            path: bin.clone().into_os_string(),
            pythons: pythons.iter().map(|p| p.to_string()).collect(),
        };
        let sink = crate::events::NullSink;
        let k = kernel(None);
        let mut opts = SuiteOptions {
            host: host(&["python3"]),
            ..SuiteOptions::default()
        };
        assert!(matches!(
            bpftrace_plan(&opts.host),
            ToolInput::Missing { .. }
        ));
        assert!(matches!(
            bcc_plan(&k, &opts, &sink),
            Bcc::Missing(BccMissing::PythonModule)
        ));
        exe(&bin.join("bpftrace"), "exit 0");
        assert!(
            matches!(bpftrace_plan(&opts.host), ToolInput::Ready { ref path, .. } if *path == bin.join("bpftrace"))
        );
        // A python without bcc, then one with it.
        exe(&bin.join("python3"), "exit 1");
        exe(&bin.join("python-bcc"), "exit 0");
        assert!(matches!(
            bcc_plan(&k, &opts, &sink),
            Bcc::Missing(BccMissing::PythonModule)
        ));
        opts.host = host(&["python3", "python-bcc"]);
        if crate::process::which_in("vng", &opts.host.path).is_none() {
            assert!(matches!(
                bcc_plan(&k, &opts, &sink),
                Bcc::Missing(BccMissing::Vng)
            ));
        }
        exe(&bin.join("vng"), "exit 0");
        assert!(
            matches!(bcc_plan(&k, &opts, &sink), Bcc::Run { ref python, .. } if *python == bin.join("python-bcc"))
        );
        opts.no_bcc = true;
        assert!(matches!(bcc_plan(&k, &opts, &sink), Bcc::NotRequested));
    }

    #[test]
    fn bpftool_for_a_hand_built_kernel_comes_from_its_build_folder() {
        let d = tempfile::tempdir().unwrap();
        let home = Home::new(d.path().join("home"));
        let sink = crate::events::NullSink;
        let obj = d.path().join("obj");
        let mut k = kernel(None);
        k.build_tree = Some(obj.clone());
        let opts = SuiteOptions {
            filter: "bpftool".into(),
            ..SuiteOptions::default()
        };
        assert!(matches!(
            bpftool_plan(&home, &k, &opts, &sink),
            ToolInput::Missing { .. }
        ));
        let tool = obj.join("tools/bpf/bpftool/bpftool");
        exe(&tool, "exit 0");
        assert!(
            matches!(bpftool_plan(&home, &k, &opts, &sink), ToolInput::Ready { ref path, .. } if *path == tool)
        );
        let skipped = SuiteOptions {
            skip: "bpftool".into(),
            ..opts
        };
        assert!(matches!(
            bpftool_plan(&home, &k, &skipped, &sink),
            ToolInput::Missing { .. }
        ));
    }
}
