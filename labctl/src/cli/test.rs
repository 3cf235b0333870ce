//! `labctl vm test`: resolve the kernel (a labctl build, or --kernel + --obj), probe the
//! host for hello-bcc, boot once and run the acceptance suite, then print the table (or
//! `--json`), write `--junit`, and map the suite's status to the exit code: 0 passed,
//! 1 a test failed, 2 setup skips without `--allow-skip` or an infrastructure failure.
//! The kernel-under-test type, the host probes and the VM guest live in
//! [`labctl::lab_suite`]; this file parses flags, picks the build and renders.

use std::path::PathBuf;

use labctl::lab_suite::{self, Kernel, SuiteOptions};
use labctl::suite::{self, SuiteStatus};
use labctl::vm::AccelChoice;
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
    pub(crate) source: super::opts::SourceOpts,
    #[command(flatten)]
    pub(crate) config: super::config::ConfigOpts,
    #[command(flatten)]
    pub(crate) build: super::opts::BuildOpts,
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
    #[arg(long, default_value_t = lab_suite::DEFAULT_MEMORY_MB, value_name = "MIB")]
    pub memory: u32,
    /// Guest CPUs.
    #[arg(long, default_value_t = lab_suite::DEFAULT_CPUS)]
    pub cpus: u32,
}

fn default_version(a: &TestArgs) -> anyhow::Result<VersionReq> {
    Ok(a.version.as_deref().unwrap_or("5.10").parse()?)
}

fn resolve(a: &TestArgs, ctx: &Ctx, req: &VersionReq) -> anyhow::Result<Kernel> {
    if let Some(bz) = &a.kernel {
        let VersionReq::Exact(version) = *req else {
            return Err(labctl::Error::Usage(
                "with --kernel, VERSION must be the exact release of that bzImage (e.g. 5.10.46)"
                    .into(),
            )
            .into());
        };
        return Ok(Kernel::from_paths(version, bz, a.obj.as_deref()));
    }
    Ok(Kernel::from_build(obtain_build(a, ctx, req)?, req))
}

/// The labctl build to test: pulled (`--from`), found (a finished build, or the
/// registry's), or made now.
pub(crate) fn obtain_build(
    a: &TestArgs,
    ctx: &Ctx,
    req: &VersionReq,
) -> anyhow::Result<labctl::build::BuildOutput> {
    let existing = if let Some(r) = &a.from {
        let r: labctl::share::Reference = r.parse()?;
        let access = a.registry.access.access()?;
        Some(labctl::share::pull(&ctx.home, &r, &access, ctx.sink())?.output)
    } else if a.rebuild || !a.config.is_default() {
        None
    } else {
        labctl::build::find_build_for(&ctx.home, req, &a.build.toolchain, a.config.arch()?)
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
                a.config.arch()?,
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
            // A build from before labctl's lab fragments changed: say so, reuse it anyway.
            let stale = labctl::build::missing_lab_options(&b);
            if !stale.is_empty() {
                let shown: Vec<&str> = stale.iter().take(4).map(String::as_str).collect();
                ctx.sink().emit(labctl::Event::Message {
                    level: labctl::events::Level::Warn,
                    text: format!(
                        "that build predates this labctl's lab fragments ({}{} not in its configuration); `labctl vm test {} --rebuild` builds it with them",
                        shown.join(", "),
                        if stale.len() > shown.len() {
                            format!(" and {} more", stale.len() - shown.len())
                        } else {
                            String::new()
                        },
                        b.release
                    ),
                });
            }
            b
        }
        None => {
            let lab = super::opts::lab_request(*req, &a.source, &a.config, &a.build)?;
            labctl::lab::build(&ctx.home, &lab, ctx.sink())?.output
        }
    };
    Ok(b)
}

pub fn run(a: TestArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let req = default_version(&a)?;
    if a.list {
        let v = match req {
            VersionReq::Exact(v) => v,
            VersionReq::Series(x, y) => KernelVersion::new(x, y, 0),
        };
        let tests = suite::selected(&v, a.full, &a.filter, a.config.arch()?)?;
        if ctx.global.json {
            let list: Vec<_> = tests.iter().map(|t| serde_json::json!({"name": t.id(), "timeout_s": t.timeout().as_secs(), "about": t.about()})).collect();
            ctx.print_json(&list)?;
        } else {
            let w = tests.iter().map(|t| t.id().len()).max().unwrap_or(4);
            for t in &tests {
                ctx.out(format!("{:<w$}  {}", t.id(), t.about()));
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

impl TestArgs {
    /// The suite's options for these flags (the kernel aside).
    pub(crate) fn suite_options(&self) -> anyhow::Result<SuiteOptions> {
        Ok(SuiteOptions {
            filter: self.filter.clone(),
            skip: self.skip.clone(),
            full: self.full,
            inject: self.inject.clone(),
            no_bcc: self.no_bcc,
            allow_skip: self.allow_skip,
            accel: match self.accel {
                AccelArg::Auto => AccelChoice::Auto,
                AccelArg::Kvm => AccelChoice::Kvm,
                AccelArg::Tcg => AccelChoice::Tcg,
            },
            memory_mb: self.memory,
            cpus: self.cpus,
            toolchain: self.build.toolchain.clone(),
            fragments: self.config.fragments.clone(),
            sets: self.config.plan()?.sets,
            host: lab_suite::HostTools::from_env(),
        })
    }
}

/// Boot `kernel` once and run the selected tests on it.
fn suite_on(a: &TestArgs, ctx: &Ctx, kernel: &Kernel) -> anyhow::Result<suite::SuiteResult> {
    let opts = a.suite_options()?;
    Ok(lab_suite::run(&ctx.home, kernel, &opts, ctx.sink())?)
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
}
