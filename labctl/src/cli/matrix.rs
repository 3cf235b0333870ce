//! `labctl matrix`: build and test a list of kernels (default `ci/matrix.toml`), one
//! after another or a bounded number at a time, then print the kernel × test table.
//! Each kernel goes through exactly what `labctl vm test VERSION --rebuild` does. The
//! scheduler is [`labctl::matrix::run`]; this file parses flags, says how a cell's kernel
//! is built and renders the table.

use labctl::matrix::{self, BoxError, MatrixCell, MatrixPlan, MatrixRow};
use labctl::VersionReq;

use super::test::TestArgs;
use super::Ctx;

const HELP: &str = "\
Examples:
  labctl matrix                                the default list (ci/matrix.toml)
  labctl matrix --kernels 5.10.46,5.10,6.1     these kernels (a series means its newest release)
  labctl matrix --kernels 5.10,6.12 --json --junit out/
  labctl matrix --parallel 2                   two kernels at a time (make -j split between them)
  labctl matrix --kernels 5.10.46,6.12,7.1 --toolchains host,debian:bullseye,debian:trixie
                                               every kernel with every toolchain: one column each

Every kernel is fetched, configured, fixed, built (a no-op when already built) and booted
once to run the acceptance suite. The exit code is the worst of the kernels' `vm test`
codes: 2 when a kernel cannot be built or booted (its reason is shown under the table) or
has setup skips (cell SKIP, verdict UNVERIFIED) without --allow-skip; else 1 when a test
failed; else 0. Skips on request (--no-bcc) or not applicable (cell skip) are allowed.";

#[derive(clap::Args, Debug)]
#[command(after_help = HELP)]
pub struct MatrixArgs {
    /// Comma-separated kernel versions (default: the list in ci/matrix.toml).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub kernels: Vec<String>,
    /// Comma-separated toolchains (`host`, `debian:<suite>`): every kernel is built and
    /// tested with each, one column per pair (default: --toolchain, i.e. host).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub toolchains: Vec<labctl::userland::ToolchainSpec>,
    /// How many kernels to build and test at the same time (each build gets a share of the CPUs).
    #[arg(long = "parallel", value_name = "N", default_value_t = 1)]
    pub parallel: usize,
    /// The `vm test` options applied to every kernel (source, config, build, VM, filter).
    /// Here `--junit DIR` writes one JUnit file per kernel into DIR (junit-<version>.xml).
    #[command(flatten)]
    pub test: TestArgs,
}

/// The `vm test` options for one cell: what `vm test VERSION --rebuild` gets.
fn cell_args(a: &MatrixArgs, cell: &MatrixCell, cpus_share: usize) -> TestArgs {
    let mut t = a.test.clone();
    t.version = Some(cell.requested.clone());
    t.rebuild = true;
    t.junit = None;
    t.build.toolchain = cell.toolchain.clone();
    t.config.arch = vec![cell.arch.name.clone()];
    if t.build.jobs.is_none() && cpus_share > 0 {
        t.build.jobs = Some(cpus_share);
    }
    t
}

pub fn run(a: MatrixArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    if a.test.version.is_some() {
        return Err(labctl::Error::Usage("matrix takes its kernels from --kernels LIST (or ci/matrix.toml), not a VERSION argument".into()).into());
    }
    if a.test.kernel.is_some() || a.test.list {
        return Err(labctl::Error::Usage(
            "--kernel and --list are `vm test` options; matrix builds each kernel itself".into(),
        )
        .into());
    }
    let kernels = if a.kernels.is_empty() {
        matrix::parse_list(matrix::DEFAULT_LIST)?
    } else {
        for k in &a.kernels {
            k.parse::<VersionReq>()?;
        }
        a.kernels.clone()
    };
    let toolchains = if a.toolchains.is_empty() {
        vec![a.test.build.toolchain.clone()]
    } else {
        a.toolchains.clone()
    };
    let mut arches = a.test.config.arches()?;
    if arches.is_empty() {
        arches.push(labctl::arch::Arch::host());
    }
    let cells = matrix::cells(&kernels, &toolchains, &arches);
    let rows = match a.test.suite_options() {
        // As every cell would have failed the same way before building anything.
        Err(e) => cells
            .iter()
            .map(|c| MatrixRow::failed(c, format!("{e:#}")))
            .collect(),
        Ok(suite) => {
            let plan = MatrixPlan {
                cells,
                parallel: a.parallel,
                suite,
                junit_dir: a.test.junit.clone(),
            };
            let builder = |cell: &MatrixCell,
                           share: usize,
                           _: &dyn labctl::EventSink|
             -> Result<labctl::build::BuildOutput, BoxError> {
                let t = cell_args(&a, cell, share);
                let req: VersionReq = cell.requested.parse()?;
                super::test::obtain_build(&t, ctx, &req).map_err(|e| -> BoxError { e.into() })
            };
            matrix::run(&ctx.home, &plan, &builder, &|_| {}, ctx.sink())?
        }
    };
    if ctx.global.json {
        ctx.print_json(
            &serde_json::json!({ "kernels": rows, "exit_code": matrix::exit_code(&rows) }),
        )?;
    } else {
        ctx.out(matrix::table(&rows).trim_end());
    }
    Ok(matrix::exit_code(&rows))
}
