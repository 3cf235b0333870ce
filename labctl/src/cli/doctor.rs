//! `labctl doctor`: host checks for building and booting lab kernels, with the install
//! command for this distribution; `--install [--yes]` runs it.

use std::io::{BufRead, Write};

use labctl::doctor::{self, Options, Status};
use labctl::version::VersionReq;

use super::Ctx;

const AFTER_HELP: &str = "\
Examples:
  labctl doctor                       check this host
  labctl doctor --kernel 5.10.46      also check pahole against that release
  labctl doctor --install             install what is missing (asks first)
  labctl doctor --install --yes       ... without asking (CI)
  labctl doctor --json                machine-readable report

Exit codes: 0 everything a build and a VM run need is present (warnings allowed),
2 something required is missing.";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct DoctorArgs {
    /// Check the host against this kernel release (pahole version, known fixes), e.g. 5.10.46.
    #[arg(long, value_name = "VERSION")]
    pub kernel: Option<String>,
    /// Run the install command for what is missing (asks for confirmation unless --yes).
    #[arg(long)]
    pub install: bool,
    /// With --install: do not ask.
    #[arg(long, requires = "install")]
    pub yes: bool,
}

pub fn run(a: DoctorArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let kernel = match &a.kernel {
        Some(k) => match k.parse::<VersionReq>()? {
            VersionReq::Exact(v) => Some(v),
            VersionReq::Series(x, y) => Some(labctl::KernelVersion::new(x, y, 0)),
        },
        None => None,
    };
    let home = ctx.home.ensure(ctx.home.root().to_path_buf())?;
    let report = doctor::run(&home, &Options { kernel }, ctx.sink());
    if ctx.global.json {
        ctx.print_json(&report)?;
    } else {
        let how = report.distro.manager.map(|m| format!("packages via {}", format!("{m:?}").to_lowercase())).unwrap_or_else(|| "unknown package manager".into());
        ctx.out(format!("labctl doctor: {} ({how}){}", report.distro.name, kernel.map(|k| format!(", target linux {k}")).unwrap_or_default()));
        for c in &report.checks {
            let s = match c.status {
                Status::Ok => "ok",
                Status::Warn => "warn",
                Status::Missing => "MISSING",
            };
            ctx.out(format!("  {s:<8} {:<26} {}", c.title, c.detail));
        }
        match (report.install_line(), report.pip.is_empty()) {
            (None, true) => ctx.out("Nothing to install."),
            (line, _) => {
                ctx.out("To install what is missing:");
                if let Some(l) = line {
                    ctx.out(format!("  {l}"));
                }
                if !report.pip.is_empty() {
                    ctx.out(format!("  pipx install {}    (or: pip install --user {})", report.pip.join(" "), report.pip.join(" ")));
                }
            }
        }
    }
    if a.install {
        if let Some(argv) = report.install.clone() {
            let line = report.install_line().unwrap_or_default();
            if !a.yes {
                ctx.renderer.suspend(|| {
                    eprint!("Run `{line}` now? [y/N] ");
                    let _ = std::io::stderr().flush();
                });
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    ctx.out("Not installing.");
                    return Ok(if report.has_missing() { super::EXIT_INFRA } else { super::EXIT_OK });
                }
            }
            let root = unsafe { libc::geteuid() } == 0;
            let mut cmd = if root { labctl::process::Cmd::new(&argv[0]).args(&argv[1..]) } else { labctl::process::Cmd::new("sudo").args(&argv) };
            if argv[0] == "apt-get" {
                cmd = cmd.env("DEBIAN_FRONTEND", "noninteractive");
            }
            let out = cmd.inherit_stdio().run(ctx.sink())?;
            if !out.success() {
                anyhow::bail!("`{line}` failed ({}); install the packages by hand", labctl::process::status_text(out.code));
            }
            let again = doctor::run(&home, &Options { kernel }, ctx.sink());
            ctx.out(format!("After installing: {} check(s) still missing.", again.checks.iter().filter(|c| c.status == Status::Missing).count()));
            return Ok(if again.has_missing() { super::EXIT_INFRA } else { super::EXIT_OK });
        } else {
            ctx.out("No distribution packages to install.");
        }
    }
    Ok(if report.has_missing() { super::EXIT_INFRA } else { super::EXIT_OK })
}
