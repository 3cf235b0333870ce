//! `labctl doctor`: check the host against labctl's requirements (the data file
//! `labctl/src/doctor/requirements.toml`), print what is missing with the install
//! command for this distribution; `--install [--yes]` plans a careful install
//! (`labctl::doctor::install`), shows it, asks, runs it and checks again.

use std::io::{BufRead, IsTerminal, Write};

use labctl::doctor::{self, install, Group, Options, Status};
use labctl::version::VersionReq;

use super::Ctx;

const AFTER_HELP: &str = "\
What is checked: everything `labctl vm test` on a fresh home uses — the kernel build
(compiler, pahole, xz, headers), samples/bpf (clang with the bpf target), the
examples-bpf loaders (libbpf headers, static libbpf/libelf/zlib/libc), the VM (QEMU,
static busybox) and the default tests' host tools (BCC for python3 and virtme-ng for
hello-bcc). --tests adds what `cargo test --workspace` needs (including the arm64 cross
toolchain, QEMU and guest userland its cross tests use); --arch NAME adds what building
and booting that architecture here needs. The list is data:
labctl/src/doctor/requirements.toml.

How --install installs:
  - refreshes the package lists when there are none or a package is unknown;
  - never installs recommended packages;
  - never removes or downgrades a package: apt's plan is simulated first and, if it
    would remove something, labctl finds a plan that does not (an installed backports
    build is matched from backports) or stops, names the package and says what to do;
  - prints every command before it runs, and asks on a terminal unless --yes;
  - installs Python tools (virtme-ng) into its own venv, ~/.local/share/labctl/venv
    ($LABCTL_TOOLS), never into the system Python;
  - checks again afterwards and exits 2 if anything is still missing.

Examples:
  labctl doctor                       check this host
  labctl doctor --kernel 5.10.46      also check pahole against that release
  labctl doctor --install             install what is missing (shows the plan, asks first)
  labctl doctor --install --yes       ... without asking (CI, scripts)
  labctl doctor --tests --install --yes
                                      also what `cargo test --workspace` needs
  labctl doctor --pull-only           a host that only pulls kernels (`vm test --from`): no compiler
  labctl doctor --packages            also what `kernel package` needs
  labctl doctor --arch arm64 --install
                                      also the arm64 cross compiler, qemu-system-aarch64
                                      and the arm64 guest userland's tool
  labctl doctor --json                machine-readable report

Exit codes: 0 everything required is present (warnings allowed), 2 something required
is missing, or the install could not be done safely.";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct DoctorArgs {
    /// Check the host against this kernel release (pahole version, known fixes), e.g. 5.10.46.
    #[arg(long, value_name = "VERSION")]
    pub kernel: Option<String>,
    /// Also check what labctl's own test suite (`cargo test --workspace`) needs.
    #[arg(long)]
    pub tests: bool,
    /// Check only what a host that pulls ready kernels needs (`vm test --from`,
    /// `--registry`): QEMU, busybox and the suite's host tools, no compiler.
    #[arg(long, conflicts_with = "kernel")]
    pub pull_only: bool,
    /// Also check what `kernel package` needs (dpkg-buildpackage, fakeroot, rpmbuild).
    #[arg(long)]
    pub packages: bool,
    /// Also check what building and booting for this architecture needs on this host
    /// (x86_64, arm64; a cross compiler and QEMU for a foreign one). Repeatable.
    #[arg(long = "arch", value_name = "ARCH", value_delimiter = ',')]
    pub arches: Vec<String>,
    /// Install what is missing (shows the plan and asks unless --yes).
    #[arg(long)]
    pub install: bool,
    /// With --install: do not ask.
    #[arg(long, requires = "install")]
    pub yes: bool,
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Warn => "warn",
        Status::Missing => "MISSING",
    }
}

pub fn run(a: DoctorArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let kernel = match &a.kernel {
        Some(k) => match k.parse::<VersionReq>()? {
            VersionReq::Exact(v) => Some(v),
            VersionReq::Series(x, y) => Some(labctl::KernelVersion::new(x, y, 0)),
        },
        None => None,
    };
    let mut groups = if a.pull_only {
        Group::PULL_ONLY.to_vec()
    } else {
        Group::MAIN_JOB.to_vec()
    };
    if a.packages || a.tests {
        groups.push(Group::Package);
    }
    if a.tests {
        groups.push(Group::Test);
    }
    let mut arches: Vec<String> = Vec::new();
    for n in &a.arches {
        arches.push(super::opts::parse_arch(n)?.name.clone());
    }
    if a.tests {
        // The cross tests build and boot every architecture this host is not.
        arches.extend(
            labctl::arch::Arch::all()
                .iter()
                .filter(|x| !x.is_host())
                .map(|x| x.name.clone()),
        );
    }
    arches.sort();
    arches.dedup();
    if !arches.is_empty() {
        groups.push(Group::Cross);
    }
    let opts = Options {
        kernel,
        groups,
        arches,
    };
    let home = ctx.home.ensure(ctx.home.root().to_path_buf())?;
    let report = doctor::run(&home, &opts, ctx.sink());
    if ctx.global.json && !a.install {
        ctx.print_json(&report)?;
        return Ok(if report.has_missing() {
            super::EXIT_INFRA
        } else {
            super::EXIT_OK
        });
    }
    if !ctx.global.json {
        let how = report
            .distro
            .manager
            .map(|m| format!("packages via {}", m.family()))
            .unwrap_or_else(|| "unknown package manager".into());
        ctx.out(format!(
            "labctl doctor: {} ({how}){}",
            report.distro.name,
            kernel
                .map(|k| format!(", target linux {k}"))
                .unwrap_or_default()
        ));
        for c in &report.checks {
            ctx.out(format!(
                "  {:<8} {:<30} {}",
                status_word(c.status),
                c.title,
                c.detail
            ));
        }
        let advice = report.advice();
        if advice.is_empty() {
            ctx.out("Nothing to install.");
        } else if !a.install {
            ctx.out(format!("To install what is missing: {advice}"));
        }
    }
    if !a.install || (report.packages.is_empty() && report.pip.is_empty()) {
        return Ok(if report.has_missing() {
            super::EXIT_INFRA
        } else {
            super::EXIT_OK
        });
    }

    // Some requirements can only be judged once others are installed (which udev
    // virtme-ng needs depends on the Python doctor just installed), so a second round
    // installs what the first one's check newly asks for; never the same list twice.
    let tool = install::SystemTool { sink: ctx.sink() };
    let mut report = report;
    let mut tried: Vec<String> = Vec::new();
    let mut plans = Vec::new();
    let again = loop {
        let fresh = report
            .packages
            .iter()
            .chain(&report.pip)
            .any(|p| !tried.contains(p));
        if plans.len() == 2 || !fresh {
            break report;
        }
        tried.extend(report.packages.iter().chain(&report.pip).cloned());
        let plan = install::plan(
            &tool,
            &report.distro,
            &report.packages,
            &report.pip,
            ctx.sink(),
        )?;
        if !plans.is_empty() {
            ctx.out("The first round's check asks for more:");
        }
        ctx.out("labctl doctor --install will:");
        for n in &plan.notes {
            ctx.out(format!("  note: {n}"));
        }
        for s in &plan.steps {
            ctx.out(format!("  {}", s.describe()));
        }
        if !a.yes {
            if !std::io::stdin().is_terminal() {
                ctx.out("Not installing: standard input is not a terminal to ask on; pass --yes to install without asking.");
                return Ok(super::EXIT_INFRA);
            }
            ctx.renderer.suspend(|| {
                eprint!("Run these now? [y/N] ");
                let _ = std::io::stderr().flush();
            });
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                ctx.out("Not installing.");
                return Ok(super::EXIT_INFRA);
            }
        }
        install::execute(&plan, ctx.sink())?;
        plans.push(plan);
        report = doctor::run(&home, &opts, ctx.sink());
        if !report.has_missing() {
            break report;
        }
    };
    let still: Vec<_> = again.missing().collect();
    if ctx.global.json {
        ctx.print_json(
            &serde_json::json!({"plan": plans.first(), "plans": plans, "after": again}),
        )?;
    } else if still.is_empty() {
        ctx.out("After installing: everything required is present.");
    } else {
        ctx.out(format!(
            "After installing, {} requirement(s) are still missing:",
            still.len()
        ));
        for c in &still {
            ctx.out(format!("  MISSING  {:<30} {}", c.title, c.detail));
        }
    }
    Ok(if again.has_missing() {
        super::EXIT_INFRA
    } else {
        super::EXIT_OK
    })
}
