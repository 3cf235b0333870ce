//! `labctl vm test`: resolve the kernel (a labctl build, or --kernel + --obj), probe the
//! host for hello-bcc, boot once and run the acceptance suite, then print the table (or
//! `--json`), write `--junit`, and map the suite's status to the exit code: 0 passed,
//! 1 a test failed, 2 setup skips without `--allow-skip` or an infrastructure failure.
//! The VM is reached through [`labctl::suite::Guest`], implemented here with
//! `labctl::vm::run`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use labctl::events::EventSink;
use labctl::suite::{
    self, Bcc, BccMissing, Guest, GuestReply, GuestRequest, SamplesFailure, SuiteError, SuiteInput,
    SuiteStatus, ToolInput,
};
use labctl::vm::{self, AccelChoice, Backend, VmSpec};
use labctl::{KernelVersion, VersionReq};

use super::vm::AccelArg;
use super::{Ctx, EXIT_INFRA, EXIT_OK, EXIT_TESTS_FAILED};

const HELP: &str = "\
Examples:
  labctl vm test                      the default 5.x lab: newest 5.10.y build
  labctl vm test 5.10.46              one boot, every test, one table
  labctl vm test 5.10 --filter 'kernel/*,hello'
  labctl vm test 6.12 --full          the whole test_bpf set (~150 s under TCG on 6.12)
  labctl vm test 5.10 --json --junit results.xml
  labctl vm test --list 5.10          the test ids and what each proves
  labctl vm test 5.10 --inject jit-off,kprobes-off
                                      see the suite fail for known reasons
  labctl vm test 5.10.46 --kernel obj/arch/x86/boot/bzImage --obj obj
                                      a kernel built by hand (O=obj with samples/bpf)
  labctl vm test --from 127.0.0.1:5000/lab/kernels:5.10.46
                                      a kernel pushed with `kernel push`: pulled, checked
                                      blob by blob, tested; no compiler on this host
  LABCTL_REGISTRY=HOST/REPO labctl vm test 5.10.46
                                      pull the lab kernel if the registry has it, else build

Tests: kernel/btf, kernel/jit, kernel/config, hello, hello-bcc, cbpf-port80, core-hello,
test_bpf, samples/<program> (examples-bpf/samples.toml). Results, per-test logs,
console.log, results.json and junit.xml are kept in $LABCTL_HOME/runs/<time>-<version>/.

Skips: `setup` (the host lacks a package such as BCC or virtme-ng, or the build lacks
samples/bpf programs or test_bpf.ko; the reason says what to do), `asked` (--no-bcc) and
`n/a` (the test cannot exist on this kernel). Only setup skips count against the run.

Exit codes: 0 every test passed (skips on request or not applicable allowed; setup skips
too with --allow-skip), 1 a test failed (whatever was skipped), 2 setup skips without
--allow-skip, or a setup/boot/timeout failure.";

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = HELP)]
pub struct TestArgs {
    /// Kernel version: an exact release (5.10.46) or a series (5.10 = its newest build). Default 5.10.
    pub version: Option<String>,
    /// Print the test ids for that version and what each proves; run nothing.
    #[arg(long)]
    pub list: bool,
    /// Run only these tests: comma-separated ids or globs (`kernel/*`, `samples`, `hello*`).
    #[arg(long, value_name = "PATTERNS", default_value = "")]
    pub filter: String,
    /// Run test_bpf's whole set instead of the per-version default subset.
    #[arg(long)]
    pub full: bool,
    /// Also write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Pull this kernel (`kernel push` made it) and test it: HOST[:PORT]/NAME:TAG or
    /// …@sha256:DIGEST. Every blob is checked; no compiler is needed.
    #[arg(long, value_name = "REF", conflicts_with_all = ["kernel", "rebuild"])]
    pub from: Option<String>,
    /// Boot this bzImage instead of a labctl build (VERSION then names its version).
    #[arg(long, value_name = "BZIMAGE", requires = "version")]
    pub kernel: Option<PathBuf>,
    /// With --kernel: the kernel's build folder (O=): .config, lib/test_bpf.ko, samples/bpf.
    #[arg(long, value_name = "DIR", requires = "kernel")]
    pub obj: Option<PathBuf>,
    /// Run fetch → config → build first even when a finished build exists (a no-op when
    /// nothing changed). Implied by any config option (--profile, --fragment, --set).
    #[arg(long)]
    pub rebuild: bool,
    #[command(flatten)]
    pub(crate) source: super::fetch::SourceOpts,
    #[command(flatten)]
    pub(crate) config: super::config::ConfigOpts,
    #[command(flatten)]
    pub(crate) build: super::build::BuildOpts,
    #[command(flatten)]
    pub(crate) registry: super::share::RegistryOpts,
    /// Break the guest on purpose before the tests, to see the suite catch it:
    /// jit-off (bpf_jit_enable=0), kprobes-off (kprobes disarmed), btf-hidden (empty
    /// /sys/kernel/btf/vmlinux). Comma-separated or repeated.
    #[arg(long, value_name = "FAULT", value_delimiter = ',')]
    pub inject: Vec<suite::guest::Fault>,
    /// Do not run hello-bcc even when the host has BCC and virtme-ng (a skip on request).
    #[arg(long)]
    pub no_bcc: bool,
    /// Do not run these tests (comma-separated names or globs, as for --filter): each is
    /// reported as a skip on request, e.g. `--skip bpftrace` on a host without bpftrace.
    #[arg(long, value_name = "TESTS", default_value = "")]
    pub skip: String,
    /// Report setup skips (missing host package, failed samples/bpf build, missing
    /// artifact) without failing the run: exit 0 instead of 2 when nothing failed.
    #[arg(long)]
    pub allow_skip: bool,
    /// Accelerator.
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    pub accel: AccelArg,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub memory: u32,
    /// Guest CPUs.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
}

/// The kernel under test, wherever it came from.
pub(crate) struct Kernel {
    pub(crate) version: KernelVersion,
    release: String,
    bzimage: PathBuf,
    modules: Option<PathBuf>,
    samples: Option<PathBuf>,
    test_bpf_ko: Option<PathBuf>,
    /// The kernel's build folder (O=), for BCC's headers.
    build_tree: Option<PathBuf>,
    /// Why samples/bpf programs may be missing (a failed samples build).
    samples_failure: Option<SamplesFailure>,
    /// The toolchain root whose libraries the samples need (`--toolchain debian:…`).
    sysroot: Option<PathBuf>,
    /// The labctl build (None with --kernel).
    build: Option<labctl::build::BuildOutput>,
    /// examples-bpf programs that came with a pulled build.
    examples: Option<suite::examples::Prebuilt>,
}

struct VmGuest<'a> {
    ctx: &'a Ctx,
    kernel: &'a Kernel,
    accel: AccelChoice,
    memory: u32,
    cpus: u32,
}

impl VmGuest<'_> {
    /// The VM spec for one of the suite's boots. The vng boot uses the host's
    /// /lib/modules, so it gets no modules folder (and no "--modules is ignored" warning
    /// for an option the user never passed).
    fn spec(&self, req: &GuestRequest) -> VmSpec {
        let mut spec = VmSpec::new(&self.kernel.bzimage, &req.run_dir, req.script.clone());
        spec.modules = if req.vng {
            None
        } else {
            self.kernel.modules.clone()
        };
        spec.files = req
            .files
            .iter()
            .map(|f| vm::GuestFile {
                host: f.host.clone(),
                guest: f.guest.clone(),
                with_libs: f.with_libs,
                sysroot: f.sysroot.clone(),
            })
            .collect();
        spec.accel = self.accel;
        spec.memory_mb = req.memory_mb.unwrap_or(self.memory).max(self.memory);
        spec.cpus = req.cpus.unwrap_or(self.cpus).max(self.cpus);
        spec.timeout = Some(req.timeout);
        spec.backend = if req.vng { Backend::Vng } else { Backend::Qemu };
        spec
    }
}

impl Guest for VmGuest<'_> {
    fn run(&self, req: &GuestRequest, sink: &dyn EventSink) -> Result<GuestReply, SuiteError> {
        let spec = self.spec(req);
        let out = vm::run(&self.ctx.home, &spec, sink).map_err(|e| match e {
            // The kernel crashed under a test: the suite judges what finished.
            vm::VmError::Panic { .. } if !req.vng => SuiteError::GuestCrashed(e.to_string()),
            other => SuiteError::Vm(other.to_string()),
        })?;
        Ok(GuestReply {
            exit_code: out.exit_code,
            output: String::from_utf8_lossy(&out.output).into_owned(),
            console_log: Some(out.console_log),
            accel: out.accel,
        })
    }
}

fn default_version(a: &TestArgs) -> anyhow::Result<VersionReq> {
    Ok(a.version.as_deref().unwrap_or("5.10").parse()?)
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

fn version_of_release(release: &str) -> Option<KernelVersion> {
    release
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .and_then(KernelVersion::parse_plain)
}

pub(crate) fn resolve(a: &TestArgs, ctx: &Ctx, req: &VersionReq) -> anyhow::Result<Kernel> {
    if let Some(bz) = &a.kernel {
        let VersionReq::Exact(version) = *req else {
            return Err(labctl::Error::Usage(
                "with --kernel, VERSION must be the exact release of that bzImage (e.g. 5.10.46)"
                    .into(),
            )
            .into());
        };
        let obj = a.obj.as_deref();
        let release = obj
            .and_then(|o| std::fs::read_to_string(o.join("include/config/kernel.release")).ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| version.to_string());
        return Ok(Kernel {
            version,
            release,
            bzimage: bz.clone(),
            modules: None,
            samples: obj.map(|o| o.join("samples/bpf")).filter(|p| p.is_dir()),
            test_bpf_ko: obj.and_then(|o| Some(o.join("lib/test_bpf.ko")).filter(|p| p.is_file())),
            build_tree: obj.map(Path::to_path_buf),
            samples_failure: None,
            sysroot: None,
            build: None,
            examples: None,
        });
    }
    let existing = if let Some(r) = &a.from {
        let r: labctl::share::Reference = r.parse()?;
        let access = a.registry.access.access()?;
        Some(labctl::share::pull(&ctx.home, &r, &access, ctx.sink())?.output)
    } else if a.rebuild || !a.config.is_default() {
        None
    } else {
        labctl::build::find_build_for(&ctx.home, req, &a.build.toolchain)
    };
    let existing = match existing {
        Some(b) => Some(b),
        None if !a.rebuild => a
            .registry
            .lookup(
                ctx,
                a.version.as_deref().unwrap_or("5.10"),
                a.config.is_default(),
                &a.build.toolchain,
            )?
            .map(|p| p.output),
        None => None,
    };
    let b = match existing {
        Some(b) => {
            ctx.sink().emit(labctl::Event::Message {
                level: labctl::events::Level::Info,
                text: format!(
                    "using the finished build of linux {} in {} (--rebuild to refresh)",
                    b.release,
                    b.dir.display()
                ),
            });
            b
        }
        None => {
            let lab = super::build::lab_request(*req, &a.source, &a.config, &a.build)?;
            labctl::lab::build(&ctx.home, &lab, ctx.sink())?.output
        }
    };
    let version = version_of_release(&b.release).unwrap_or(match *req {
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
    Ok(Kernel {
        version,
        release: b.release.clone(),
        bzimage: b.bzimage.clone(),
        modules,
        samples: Some(b.samples.clone()).filter(|p| p.is_dir()),
        test_bpf_ko,
        build_tree,
        samples_failure: SamplesFailure::from_build_dir(&b.dir),
        sysroot: b.sysroot.clone(),
        examples: suite::examples::prebuilt(&b.dir),
        build: Some(b),
    })
}

/// The kernel's own bpftool for the `bpftool` test: made from the build's tree on first
/// use (with --kernel, the one in --obj's tools/bpf/bpftool if it was built there).
fn bpftool_plan(a: &TestArgs, ctx: &Ctx, kernel: &Kernel) -> ToolInput {
    let wanted = suite::selected(&kernel.version, a.full, &a.filter)
        .map(|ts| ts.iter().any(|t| t.name == "bpftool"))
        .unwrap_or(false)
        && (a.skip.is_empty() || !suite::catalog::matches_filter("bpftool", &a.skip));
    if !wanted {
        return ToolInput::missing("not selected", "not selected by --filter");
    }
    match &kernel.build {
        Some(b) => match labctl::build::tools::ensure(
            &ctx.home,
            b,
            &a.build.toolchain,
            labctl::build::tools::KernelTool::Bpftool,
            ctx.sink(),
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
        None => match a
            .obj
            .as_ref()
            .map(|o| o.join("tools/bpf/bpftool/bpftool"))
            .filter(|p| labctl::process::is_executable(p))
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
fn bpftrace_plan() -> ToolInput {
    match labctl::process::which("bpftrace") {
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

/// hello-bcc runs only when the host has BCC for a python3 and virtme-ng. Distro BCC
/// (python3-bpfcc) lives in the system python, which may not be the first on PATH.
fn bcc_plan(a: &TestArgs, ctx: &Ctx, kernel: &Kernel) -> Bcc {
    if a.no_bcc {
        return Bcc::NotRequested;
    }
    let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        labctl::process::Cmd::new(p)
            .args(["-c", "import bcc"])
            .timeout(Duration::from_secs(30))
            .run(ctx.sink())
            .map(|o| o.success())
            .unwrap_or(false)
    });
    let Some(python) = python else {
        return Bcc::Missing(BccMissing::PythonModule);
    };
    if labctl::process::which("vng").is_none() {
        return Bcc::Missing(BccMissing::Vng);
    }
    let python = labctl::process::which(python).unwrap_or_else(|| PathBuf::from(python));
    Bcc::Run {
        python,
        kernel_source: kernel.build_tree.clone(),
    }
}

pub fn run(a: TestArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let req = default_version(&a)?;
    if a.list {
        let v = match req {
            VersionReq::Exact(v) => v,
            VersionReq::Series(x, y) => KernelVersion::new(x, y, 0),
        };
        let tests = suite::selected(&v, a.full, &a.filter)?;
        if ctx.global.json {
            let list: Vec<_> = tests.iter().map(|t| serde_json::json!({"name": t.name, "timeout_s": t.timeout.as_secs(), "about": t.about})).collect();
            ctx.print_json(&list)?;
        } else {
            let w = tests.iter().map(|t| t.name.len()).max().unwrap_or(4);
            for t in &tests {
                ctx.out(format!("{:<w$}  {}", t.name, t.about));
            }
        }
        return Ok(EXIT_OK);
    }
    let kernel = resolve(&a, ctx, &req)?;
    let res = suite_on(&a, ctx, &kernel)?;
    if let Some(j) = &a.junit {
        labctl::home::write_atomic(j, suite::report::junit(&res).as_bytes())?;
    }
    if ctx.global.json {
        ctx.renderer
            .suspend(|| println!("{}", suite::report::json(&res)));
    } else {
        ctx.out(suite::report::table(&res).trim_end());
    }
    Ok(exit_code(res.status()))
}

/// A failed test is 1 whatever was skipped; setup skips (not allowed) with no failure
/// are a setup failure, 2.
pub(crate) fn exit_code(status: SuiteStatus) -> u8 {
    match status {
        SuiteStatus::Passed => EXIT_OK,
        SuiteStatus::Failed => EXIT_TESTS_FAILED,
        SuiteStatus::NotVerified => EXIT_INFRA,
    }
}

/// Boot `kernel` once and run the selected tests on it (shared with `matrix`).
pub(crate) fn suite_on(
    a: &TestArgs,
    ctx: &Ctx,
    kernel: &Kernel,
) -> anyhow::Result<suite::SuiteResult> {
    // kernel/config checks the lab's core options plus whatever the user asked for.
    let mut expected = suite::catalog::fragment_pairs(suite::catalog::LAB_CONFIG);
    for f in &a.config.fragments {
        let text =
            std::fs::read_to_string(f).map_err(|e| labctl::Error::io("read fragment", f, e))?;
        expected.extend(suite::catalog::fragment_pairs(&text));
    }
    for (k, v) in a.config.plan()?.sets {
        expected.push((k.trim_start_matches("CONFIG_").to_string(), v));
    }
    // A later request overrides an earlier one for the same symbol (user over lab default).
    let mut seen = std::collections::BTreeMap::new();
    for (k, v) in expected {
        seen.insert(k, v);
    }
    let expected: Vec<(String, String)> = seen.into_iter().collect();
    let run_name = suite::run_dir_name(&kernel.version);
    let run_dir = ctx.home.ensure(ctx.home.runs())?.join(&run_name);
    // Held while the suite writes its folder: `cache prune` skips it.
    let _run_lock = ctx.home.lock(&labctl::home::CacheKey::Run(run_name))?;
    let input = SuiteInput {
        kernel: kernel.version,
        release: kernel.release.clone(),
        samples_dir: kernel.samples.clone(),
        samples_sysroot: kernel.sysroot.clone(),
        samples_failure: kernel.samples_failure.clone(),
        test_bpf_ko: kernel.test_bpf_ko.clone(),
        expected_config: expected,
        filter: a.filter.clone(),
        skip: a.skip.clone(),
        full: a.full,
        bcc: bcc_plan(a, ctx, kernel),
        bpftool: bpftool_plan(a, ctx, kernel),
        bpftrace: bpftrace_plan(),
        inject: a.inject.clone(),
        run_dir,
        allow_skip: a.allow_skip,
        examples: kernel.examples.clone(),
    };
    let accel = match a.accel {
        AccelArg::Auto => AccelChoice::Auto,
        AccelArg::Kvm => AccelChoice::Kvm,
        AccelArg::Tcg => AccelChoice::Tcg,
    };
    let guest = VmGuest {
        ctx,
        kernel,
        accel,
        memory: a.memory,
        cpus: a.cpus,
    };
    Ok(suite::run(&ctx.home, &input, &guest, ctx.sink())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        t: TestArgs,
    }

    #[test]
    fn exit_codes_follow_the_suite_status() {
        assert_eq!(exit_code(SuiteStatus::Passed), 0);
        assert_eq!(exit_code(SuiteStatus::Failed), 1);
        assert_eq!(exit_code(SuiteStatus::NotVerified), 2);
        assert!(Wrap::parse_from(["x", "--allow-skip"]).t.allow_skip);
        assert!(!Wrap::parse_from(["x"]).t.allow_skip);
    }

    #[test]
    fn the_vng_boot_gets_no_modules_folder() {
        let home = labctl::Home::new("/nonexistent/labctl-home");
        let g = super::super::Global {
            json: false,
            quiet: 0,
            verbose: 0,
            color: super::super::ColorChoice::Never,
            home: None,
        };
        let ctx = Ctx {
            global: g.clone(),
            home,
            renderer: super::super::render::Renderer::new(&g),
        };
        let kernel = Kernel {
            version: KernelVersion::new(5, 10, 46),
            release: "5.10.46".into(),
            bzimage: "/b/bzImage".into(),
            modules: Some("/b/modules".into()),
            samples: None,
            test_bpf_ko: None,
            build_tree: None,
            samples_failure: None,
            sysroot: None,
            build: None,
            examples: None,
        };
        let guest = VmGuest {
            ctx: &ctx,
            kernel: &kernel,
            accel: AccelChoice::Tcg,
            memory: 1024,
            cpus: 2,
        };
        let mut req = GuestRequest {
            files: vec![],
            script: "true".into(),
            timeout: Duration::from_secs(10),
            run_dir: "/r".into(),
            vng: false,
            memory_mb: None,
            cpus: None,
        };
        assert_eq!(guest.spec(&req).modules, Some(PathBuf::from("/b/modules")));
        req.vng = true;
        let spec = guest.spec(&req);
        assert_eq!(
            spec.modules, None,
            "vng must not trigger the --modules warning"
        );
        assert_eq!(spec.backend, Backend::Vng);
    }
}
