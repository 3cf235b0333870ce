//! Command-line interface: the clap command tree, global flags, the context handed to
//! each command, and the mapping from outcomes to documented exit codes:
//! 0 = success / all tests passed, 1 = a test failed, 2 = infrastructure or setup failure
//! (bad input, download, build, boot, timeout), 130 = interrupted.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod build;
mod config;
mod doctor;
mod fetch;
mod matrix;
mod new;
mod opts;
mod package;
pub mod render;
mod share;
mod test;
mod vm;

pub const EXIT_OK: u8 = 0;
pub const EXIT_TESTS_FAILED: u8 = 1;
pub const EXIT_INFRA: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

const AFTER_HELP: &str = "\
Examples:
  labctl doctor                      check this host, print what to install
  labctl kernel fetch 5.10           newest 5.10.y from kernel.org, else Debian's archive
  labctl kernel build 5.16.10        fetch, configure for BPF, apply known fixes, build
  labctl vm test 5.10                boot it under QEMU and run the BPF acceptance suite
  labctl kernel push 5.10.46 HOST/REPO:TAG    share the build; elsewhere:
  labctl vm test --from HOST/REPO:TAG         pull (verified) and test, no compiler needed
  labctl new ~/first-bpf             a starter project for that kernel (docs/first-program.md)

Exit codes: 0 success, 1 a test failed, 2 setup/infrastructure failure, 130 interrupted.
Cache: --home, $LABCTL_HOME, else $XDG_CACHE_HOME/labctl (~/.cache/labctl).";

#[derive(Parser, Debug)]
#[command(name = "labctl", version, about = "Build and test 5.x/6.x kernels as an eBPF lab, in one command",
    long_about = "labctl fetches a kernel release, configures it for BPF (BTF, JIT, kprobes), applies the \
known fixes for your toolchain, builds it with samples/bpf, boots it under QEMU and proves the \
BPF lab works with an acceptance suite.", after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Less output: only errors and the final result (-qq: only errors).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// More output: -v shows every command run, -vv debug details.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Colour and progress bars: auto (only on a terminal), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Cache and state directory (downloads, sources, builds, runs).
    #[arg(long, global = true, env = "LABCTL_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check this host for everything a build and a VM run need; print how to install it.
    Doctor(doctor::DoctorArgs),
    /// Fetch, configure, build and list kernels.
    #[command(subcommand)]
    Kernel(KernelCmd),
    /// Boot a kernel under QEMU: a shell, one command, or the acceptance suite.
    #[command(subcommand)]
    Vm(VmCmd),
    /// Start a BPF project for a lab kernel: libbpf, CO-RE, BCC or bpftrace template.
    New(new::NewArgs),
    /// Build and test a list of kernels; print a kernel × test matrix.
    Matrix(Box<matrix::MatrixArgs>),
    /// Show or free labctl's cache (downloads, sources, builds, guests, runs).
    #[command(subcommand)]
    Cache(CacheCmd),
}

#[derive(Subcommand, Debug)]
pub enum KernelCmd {
    /// Download, verify and extract a kernel release (e.g. 5.16.10, v5.16.10, or 5.10 for the newest 5.10.y).
    Fetch(fetch::FetchArgs),
    /// List local builds and fetched trees; with --remote, the versions each source offers.
    List(fetch::ListArgs),
    /// Write a BPF-lab .config and verify every requested option landed.
    Config(config::ConfigArgs),
    /// Fetch, configure, apply known fixes and build kernel, modules, headers and samples/bpf.
    Build(build::BuildArgs),
    /// Push a finished build to an OCI registry as a verified, ready-to-boot artifact.
    Push(share::PushArgs),
    /// Pull a kernel pushed with `kernel push` into the home, checked blob by blob.
    Pull(share::PullArgs),
    /// Make .deb, .rpm or .tar packages of a lab build to install on a real machine.
    Package(package::PackageArgs),
}

#[derive(Subcommand, Debug)]
pub enum VmCmd {
    /// Boot a kernel with an interactive shell on the serial console.
    Boot(vm::BootArgs),
    /// Boot a kernel, run one command in the guest, print its output, exit with its code.
    Run(vm::RunArgs),
    /// Boot a kernel and run the BPF acceptance suite (hello, cBPF, test_bpf, samples/bpf).
    Test(Box<test::TestArgs>),
}

#[derive(Subcommand, Debug)]
pub enum CacheCmd {
    /// List cache entries with their sizes.
    Ls(fetch::CacheLsArgs),
    /// Delete cache entries (all, or by kind / age).
    Prune(fetch::CachePruneArgs),
}

/// What every command gets.
pub struct Ctx {
    pub global: Global,
    pub home: labctl::Home,
    pub renderer: render::Renderer,
}

impl Ctx {
    pub fn sink(&self) -> &dyn labctl::EventSink {
        &self.renderer
    }
    /// Print a JSON value on stdout (for --json).
    pub fn print_json<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<()> {
        self.renderer.suspend(|| {
            println!(
                "{}",
                serde_json::to_string_pretty(value).expect("serializable")
            )
        });
        Ok(())
    }
    /// Print a line of the final result on stdout (suppressed by -qq).
    pub fn out(&self, text: impl AsRef<str>) {
        if self.global.quiet < 2 {
            self.renderer.suspend(|| println!("{}", text.as_ref()));
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Used by the tests that validate command lines in docs and ci/ without running them.
    if std::env::var_os("LABCTL_PARSE_ONLY").is_some() {
        return ExitCode::SUCCESS;
    }
    labctl::process::install_interrupt_handler();
    let renderer = render::Renderer::new(&cli.global);
    let home = match labctl::Home::resolve(cli.global.home.clone()) {
        Ok(h) => h,
        Err(e) => {
            renderer.error(&anyhow::Error::from(e));
            return ExitCode::from(EXIT_INFRA);
        }
    };
    if let Ok(dir) = home.ensure(home.logs()) {
        labctl::process::set_command_log(dir.join("commands.log"));
    }
    let ctx = Ctx {
        global: cli.global.clone(),
        home,
        renderer,
    };
    let result = match cli.command {
        Command::Doctor(a) => doctor::run(a, &ctx),
        Command::Kernel(KernelCmd::Fetch(a)) => fetch::run_fetch(a, &ctx),
        Command::Kernel(KernelCmd::List(a)) => fetch::run_list(a, &ctx),
        Command::Kernel(KernelCmd::Config(a)) => config::run(a, &ctx),
        Command::Kernel(KernelCmd::Build(a)) => build::run(a, &ctx),
        Command::Kernel(KernelCmd::Push(a)) => share::run_push(a, &ctx),
        Command::Kernel(KernelCmd::Pull(a)) => share::run_pull(a, &ctx),
        Command::Kernel(KernelCmd::Package(a)) => package::run(a, &ctx),
        Command::Vm(VmCmd::Boot(a)) => vm::run_boot(a, &ctx),
        Command::Vm(VmCmd::Run(a)) => vm::run_run(a, &ctx),
        Command::Vm(VmCmd::Test(a)) => test::run(*a, &ctx),
        Command::New(a) => new::run(a, &ctx),
        Command::Matrix(a) => matrix::run(*a, &ctx),
        Command::Cache(CacheCmd::Ls(a)) => fetch::run_cache_ls(a, &ctx),
        Command::Cache(CacheCmd::Prune(a)) => fetch::run_cache_prune(a, &ctx),
    };
    ctx.renderer.finish();
    match result {
        // Ctrl-C wins: a command that went on after it (e.g. one that was waiting for a
        // lock and then found its result cached) must still say it was interrupted.
        Ok(_) if labctl::process::interrupted() => {
            ctx.renderer
                .error(&anyhow::Error::from(labctl::Error::Interrupted));
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            ctx.renderer.error(&e);
            ExitCode::from(error_exit_code(&e, labctl::process::interrupted()))
        }
    }
}

/// The exit code of a command that failed: 130 when Ctrl-C arrived (`interrupted`) or
/// the error, at any depth of its wrapping, is an interruption; else 2.
fn error_exit_code(e: &anyhow::Error, interrupted: bool) -> u8 {
    if interrupted || e.chain().any(labctl::error::is_interrupted) {
        EXIT_INTERRUPTED
    } else {
        EXIT_INFRA
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        // Catches duplicate flags between flattened option groups, bad defaults, etc.
        super::Cli::command().debug_assert();
    }

    #[test]
    fn wrapped_interruptions_exit_130() {
        use super::{error_exit_code, EXIT_INFRA, EXIT_INTERRUPTED};
        use labctl::home::HomeError;
        // A lock wait interrupted inside kconfig, inside the top-level error, with context.
        let lock = labctl::kconfig::KconfigError::Home(HomeError::Interrupted);
        let e = anyhow::Error::from(labctl::Error::from(lock)).context("kernel config 5.10");
        assert_eq!(error_exit_code(&e, false), EXIT_INTERRUPTED);
        let src = labctl::source::SourceError::Home(HomeError::Interrupted);
        let e = anyhow::Error::from(labctl::Error::from(src));
        assert_eq!(error_exit_code(&e, false), EXIT_INTERRUPTED);
        let e = anyhow::Error::from(labctl::Error::from(labctl::build::BuildError::Home(
            HomeError::Interrupted,
        )));
        assert_eq!(error_exit_code(&e, false), EXIT_INTERRUPTED);
        // Not an interruption: 2, unless Ctrl-C arrived meanwhile.
        let e = anyhow::Error::from(labctl::Error::from(labctl::build::BuildError::Home(
            HomeError::NoHome,
        )));
        assert_eq!(error_exit_code(&e, false), EXIT_INFRA);
        assert_eq!(error_exit_code(&e, true), EXIT_INTERRUPTED);
        assert!(e.to_string().contains("set LABCTL_HOME"), "{e}");
    }
}
