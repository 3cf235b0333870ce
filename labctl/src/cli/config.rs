//! `labctl kernel config`: write a BPF-lab .config for a kernel tree and print the
//! per-symbol verification report. Also owns [`ConfigOpts`], the configuration flags
//! that `kernel build` and `vm test` flatten into their own arguments.

use std::path::PathBuf;

use anyhow::Context;
use labctl::kconfig::{self, verify, ConfigPlan, ConfigReport, KconfigError, Profile};

use super::Ctx;

const AFTER_HELP: &str = "\
Examples:
  labctl kernel config 5.10.46                       lab profile (tinyconfig + BPF fragments)
  labctl kernel config 5.10.46 --profile defconfig   x86_64 defconfig + kvm_guest.config + fragments
  labctl kernel config 5.10.46 --profile distro:/boot/config-6.1.0-13-amd64
  labctl kernel config 5.10.46 --fragment bcc        add the built-in BCC fragment (kernel headers)
  labctl kernel config 5.10.46 --fragment my.config --set CONFIG_DEBUG_INFO_BTF=n --out .config
  labctl --json kernel config 5.10.46                the report as JSON

Built-in fragments (always applied, in this order): bpf, btf, tracing, vm, samples;
with the lab profile also lean (tinyconfig defaults the lab never uses, switched off).
Opt-in built-in fragments: bcc. `docs/kconfig.md` explains every line.
The report lists every requested option with the value asked for, the final value after
olddefconfig and, when they differ, the reason read from the tree's Kconfig files.
Core options (BPF_SYSCALL, BPF_JIT, DEBUG_INFO_BTF, KPROBES, BPF_EVENTS) that do not land
are an error (exit 2); other mismatches are warnings unless --strict.";

/// Configuration flags shared by `kernel config`, `kernel build` and `vm test`.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Configuration")]
pub(crate) struct ConfigOpts {
    /// Base configuration before the fragments: lab (tinyconfig, the default and smallest),
    /// defconfig (arch defconfig + kvm_guest.config), distro[:PATH] (a distribution's config,
    /// default /boot/config-$(uname -r)) or file:PATH (any .config).
    #[arg(long, value_name = "PROFILE", default_value = "lab")]
    pub profile: String,
    /// Extra fragment applied after the built-in ones: a file of CONFIG_X=value lines, or a
    /// built-in name (bcc). Repeatable; later fragments win.
    #[arg(long = "fragment", value_name = "FILE")]
    pub fragments: Vec<PathBuf>,
    /// Set one option, applied after every fragment: CONFIG_NAME=VALUE with VALUE y, m, n,
    /// a "quoted string" or a number. Repeatable.
    #[arg(long = "set", value_name = "CONFIG_X=VALUE")]
    pub sets: Vec<String>,
    /// Treat every requested option that does not land as an error (exit 2), not only the
    /// core BPF options.
    #[arg(long)]
    pub strict: bool,
    /// Leave out the built-in fragments: only the profile, --fragment and --set.
    #[arg(long)]
    pub no_default_fragments: bool,
    /// The architecture to build for: x86_64 or arm64 (aliases amd64, aarch64) [default:
    /// this machine's]. Another one is cross-compiled (`labctl doctor --arch NAME` says
    /// what that needs) and booted under its own QEMU with TCG. `labctl matrix` takes a
    /// comma-separated list (one column per architecture).
    #[arg(long, env = "LABCTL_ARCH", value_name = "ARCH", value_delimiter = ',')]
    pub arch: Vec<String>,
}

impl ConfigOpts {
    /// The plan these flags describe; bad values are usage errors (exit 2).
    /// True when no config option was given (the default lab configuration).
    pub(crate) fn is_default(&self) -> bool {
        self.profile == "lab"
            && self.fragments.is_empty()
            && self.sets.is_empty()
            && !self.no_default_fragments
    }

    /// The architecture `--arch` names (this machine's when absent); usage error for an
    /// unknown name or a list.
    pub(crate) fn arch(&self) -> anyhow::Result<&'static labctl::arch::Arch> {
        match self.arches()?.as_slice() {
            [] => Ok(labctl::arch::Arch::host()),
            [one] => Ok(one),
            _ => Err(labctl::Error::Usage(
                "--arch takes one architecture here (`labctl matrix --arch x86_64,arm64` takes several)".into(),
            )
            .into()),
        }
    }

    /// Every architecture `--arch` names, in order (empty when absent).
    pub(crate) fn arches(&self) -> anyhow::Result<Vec<&'static labctl::arch::Arch>> {
        self.arch
            .iter()
            .map(|n| super::opts::parse_arch(n))
            .collect()
    }

    pub(crate) fn plan(&self) -> anyhow::Result<ConfigPlan> {
        let profile: Profile = self
            .profile
            .parse()
            .map_err(|e: String| labctl::Error::Usage(format!("--profile: {e}")))?;
        let sets = ConfigPlan::parse_sets(&self.sets)?;
        // A fragment file must be a regular file of sane size: a FIFO or a device
        // would hang the reader or never end.
        for f in &self.fragments {
            // A built-in name wins over a folder of that name here (`vm/` in this
            // repository); the library reads it from the binary.
            let builtin = f.components().count() == 1
                && !f.is_file()
                && labctl::kconfig::embedded_fragment(&f.to_string_lossy()).is_some();
            if !builtin && std::fs::symlink_metadata(f).is_ok() {
                labctl::home::regular_file(f, "--fragment", MAX_FRAGMENT)?;
            }
        }
        Ok(ConfigPlan {
            profile,
            fragments: self.fragments.clone(),
            sets,
            strict: self.strict,
            no_default_fragments: self.no_default_fragments,
            arch: self.arch()?,
        })
    }
}

/// The largest `--fragment` file accepted (kernel fragments are a few KiB).
const MAX_FRAGMENT: u64 = 1 << 20;

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub(crate) source: super::opts::SourceArgs,
    #[command(flatten)]
    pub(crate) opts: ConfigOpts,
    /// Also copy the final .config to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(a: ConfigArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let plan = a.opts.plan()?;
    let tree = a.source.fetch(ctx)?;
    let result = kconfig::configure(&ctx.home, &tree, &plan, ctx.sink());
    let report = match &result {
        Ok(r) => r,
        Err(KconfigError::Unsatisfied { report }) => report.as_ref(),
        Err(_) => return Err(result.unwrap_err().into()),
    };
    if let Some(out) = &a.out {
        let text = std::fs::read(&report.config_path)
            .with_context(|| format!("read {}", report.config_path.display()))?;
        labctl::home::write_atomic(out, &text)?;
    }
    if ctx.global.json {
        ctx.print_json(report)?;
    } else {
        ctx.out(render_report(report, ctx.global.quiet > 0));
    }
    result?;
    Ok(super::EXIT_OK)
}

/// The human report: a header, one row per requested symbol, then the warnings.
pub(crate) fn render_report(r: &ConfigReport, only_problems: bool) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "linux-{}  profile {}  base: {}\n",
        r.version, r.profile, r.base
    ));
    let frags: Vec<String> = r
        .fragments
        .iter()
        .map(|f| {
            if f.skipped_for_version.is_empty() {
                format!("{} ({})", f.name, f.applied)
            } else {
                format!(
                    "{} ({}, {} not for this version)",
                    f.name,
                    f.applied,
                    f.skipped_for_version.len()
                )
            }
        })
        .collect();
    s.push_str(&format!(
        "fragments: {}\n",
        if frags.is_empty() {
            "none".into()
        } else {
            frags.join(", ")
        }
    ));
    if !r.sets.is_empty() {
        s.push_str(&format!("--set: {}\n", r.sets.join(" ")));
    }
    let w = r
        .symbols
        .iter()
        .map(|x| x.symbol.len() + 7)
        .max()
        .unwrap_or(10)
        .max(10);
    let vw = r
        .symbols
        .iter()
        .map(|x| x.requested.len().max(x.final_value.len()))
        .max()
        .unwrap_or(5)
        .clamp(5, 24);
    s.push_str(&format!(
        "\n{:<w$}  {:<vw$}  {:<vw$}  {:<9}  {:<15}  {}\n",
        "OPTION", "ASKED", "FINAL", "STATUS", "FROM", "REASON"
    ));
    for x in &r.symbols {
        if only_problems && x.status.satisfied() {
            continue;
        }
        let name = format!("CONFIG_{}{}", x.symbol, if x.core { "*" } else { "" });
        s.push_str(&format!(
            "{:<w$}  {:<vw$}  {:<vw$}  {:<9}  {:<15}  {}\n",
            name,
            x.requested,
            x.final_value,
            verify::status_word(x.status),
            x.source,
            x.reason
        ));
    }
    let bad = r.mismatches().count();
    s.push_str(&format!(
        "\n{} requested, {} as asked, {} not; * = core option. {} options set in the final .config.\n",
        r.symbols.len(),
        r.symbols.len() - bad,
        bad,
        r.options_set
    ));
    for f in &r.base_fixes {
        s.push_str(&format!(
            "base fix: CONFIG_{} {} -> {} ({})\n",
            f.symbol, f.old_value, f.new_value, f.reason
        ));
    }
    for o in &r.overrides {
        s.push_str(&format!("override: {o}\n"));
    }
    s.push_str(&format!(
        "config hash {}\n{}",
        r.hash,
        r.config_path.display()
    ));
    s
}
