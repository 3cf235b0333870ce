//! `labctl matrix`: build and test a list of kernels (default `ci/matrix.toml`), one
//! after another or a bounded number at a time, then print the kernel × test table.
//! Each kernel goes through exactly what `labctl vm test VERSION --rebuild` does.

use std::time::Instant;

use labctl::matrix::{self, MatrixRow};
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

fn one(
    a: &MatrixArgs,
    ctx: &Ctx,
    requested: &str,
    toolchain: &labctl::userland::ToolchainSpec,
    cpus_share: usize,
) -> MatrixRow {
    let mut row = MatrixRow {
        requested: requested.to_string(),
        toolchain: toolchain.clone(),
        version: None,
        build_s: None,
        test_s: None,
        error: None,
        suite: None,
    };
    let mut t = a.test.clone();
    t.version = Some(requested.to_string());
    t.rebuild = true;
    t.junit = None;
    t.build.toolchain = toolchain.clone();
    if t.build.jobs.is_none() && cpus_share > 0 {
        t.build.jobs = Some(cpus_share);
    }
    let result = (|| -> anyhow::Result<()> {
        let req: VersionReq = requested.parse()?;
        let start = Instant::now();
        let kernel = super::test::resolve(&t, ctx, &req)?;
        row.build_s = Some(start.elapsed().as_secs_f64());
        row.version = Some(kernel.version.to_string());
        let start = Instant::now();
        let res = super::test::suite_on(&t, ctx, &kernel)?;
        row.test_s = Some(start.elapsed().as_secs_f64());
        if let Some(dir) = &a.test.junit {
            let dir = ctx.home.ensure(dir.clone())?;
            labctl::home::write_atomic(
                &dir.join(match toolchain {
                    labctl::userland::ToolchainSpec::Host => {
                        format!("junit-{}.xml", kernel.version)
                    }
                    labctl::userland::ToolchainSpec::Debian(s) => {
                        format!("junit-{}-{s}.xml", kernel.version)
                    }
                }),
                labctl::suite::report::junit(&res).as_bytes(),
            )?;
        }
        row.suite = Some(res);
        Ok(())
    })();
    if let Err(e) = result {
        row.error = Some(format!("{e:#}"));
    }
    row
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
    // Kernel-major order: one kernel's toolchains side by side in the table.
    let cells: Vec<(String, labctl::userland::ToolchainSpec)> = kernels
        .iter()
        .flat_map(|k| toolchains.iter().map(move |t| (k.clone(), t.clone())))
        .collect();
    let parallel = a.parallel.clamp(1, cells.len());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let share = if parallel > 1 {
        (cpus / parallel).max(1)
    } else {
        0
    };
    let mut rows: Vec<Option<MatrixRow>> = vec![None; cells.len()];
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots = std::sync::Mutex::new(&mut rows);
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= cells.len() || labctl::process::interrupted() {
                    break;
                }
                let row = one(&a, ctx, &cells[i].0, &cells[i].1, share);
                slots.lock().unwrap()[i] = Some(row);
            });
        }
    });
    if labctl::process::interrupted() {
        anyhow::bail!("interrupted");
    }
    let rows: Vec<MatrixRow> = rows.into_iter().flatten().collect();
    if ctx.global.json {
        ctx.print_json(
            &serde_json::json!({ "kernels": rows, "exit_code": matrix::exit_code(&rows) }),
        )?;
    } else {
        ctx.out(matrix::table(&rows).trim_end());
    }
    Ok(matrix::exit_code(&rows))
}
