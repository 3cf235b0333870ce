//! The kernel matrix: the default kernel list (data file `ci/matrix.toml`), the
//! scheduler ([`run`]: every kernel × toolchain cell built or reused, then tested with
//! [`crate::lab_suite::run`], a bounded number at a time, each reported with a typed
//! [`MatrixEvent`]), one row per cell (build + suite outcome, or the reason it could not
//! be built or booted), the kernel × test table, and the exit code: the worst of the
//! kernels' `vm test` codes (setup skips count as `vm test` counts them). The CLI only
//! parses flags, says how a cell's kernel is built ([`Builder`]) and renders.

use std::path::PathBuf;
use std::time::Instant;

use crate::build::BuildOutput;
use crate::events::EventSink;
use crate::events::{SkipKind, TestResult};
use crate::home::Home;
use crate::lab_suite::{self, Kernel, SuiteOptions};
use crate::suite::{SuiteResult, SuiteStatus};
use crate::userland::ToolchainSpec;
use crate::VersionReq;

/// The embedded default list.
pub const DEFAULT_LIST: &str = include_str!("../../ci/matrix.toml");

#[derive(Debug, thiserror::Error)]
pub enum MatrixListError {
    #[error("bad matrix list: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("bad matrix list: `kernels` is empty")]
    Empty,
    #[error("bad matrix list: {0}")]
    Version(#[from] crate::version::VersionError),
}

/// Kernel versions from `ci/matrix.toml`-style text (`kernels = [..]`).
pub fn parse_list(text: &str) -> Result<Vec<String>, MatrixListError> {
    #[derive(serde::Deserialize)]
    struct File {
        kernels: Vec<String>,
    }
    let f: File = toml::from_str(text)?;
    if f.kernels.is_empty() {
        return Err(MatrixListError::Empty);
    }
    for k in &f.kernels {
        k.parse::<crate::VersionReq>()?;
    }
    Ok(f.kernels)
}

/// What happened to one kernel of the matrix.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatrixRow {
    /// As asked (`5.10`), and as resolved (`5.10.262`) once known.
    pub requested: String,
    /// Whose compilers built it (`--toolchains`).
    pub toolchain: crate::userland::ToolchainSpec,
    /// Which architecture (`--arch`).
    #[serde(serialize_with = "crate::arch::serde_name::serialize")]
    pub arch: &'static crate::arch::Arch,
    pub version: Option<String>,
    pub build_s: Option<f64>,
    pub test_s: Option<f64>,
    /// Set when the kernel never reached a test result (fetch, build or boot failed).
    pub error: Option<String>,
    pub suite: Option<SuiteResult>,
}

impl MatrixRow {
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self
                .suite
                .as_ref()
                .is_some_and(|s| s.status() == SuiteStatus::Passed)
    }
    /// This kernel's `vm test` exit code: 2 never tested or not verified (setup skips),
    /// 1 a test failed, 0 passed.
    pub fn exit_code(&self) -> u8 {
        match (&self.error, self.suite.as_ref().map(SuiteResult::status)) {
            (Some(_), _) | (None, None) => 2,
            (None, Some(SuiteStatus::Failed)) => 1,
            (None, Some(SuiteStatus::NotVerified)) => 2,
            (None, Some(SuiteStatus::Passed)) => 0,
        }
    }
    /// The column heading: the version, with the Debian release for a non-host
    /// toolchain (`5.10.46/bullseye`) and the architecture when it is not x86_64
    /// (`6.12.107/arm64`).
    pub fn heading(&self) -> String {
        let mut v = self
            .version
            .clone()
            .unwrap_or_else(|| self.requested.clone());
        if let crate::userland::ToolchainSpec::Debian(s) = &self.toolchain {
            v = format!("{v}/{s}");
        }
        if !self.arch.is_default() {
            v = format!("{v}/{}", self.arch);
        }
        v
    }
    fn verdict(&self) -> &'static str {
        match (&self.error, self.suite.as_ref().map(SuiteResult::status)) {
            (Some(_), _) | (None, None) => "ERROR",
            (None, Some(SuiteStatus::Failed)) => "BROKEN",
            (None, Some(SuiteStatus::NotVerified)) => "UNVERIFIED",
            (None, Some(SuiteStatus::Passed)) => "OK",
        }
    }
    fn cell(&self, test: &str) -> &'static str {
        match &self.suite {
            None => "-",
            Some(s) => match s.tests.iter().find(|t| t.name == test) {
                Some(t) if t.is_setup_skip() => "SKIP",
                Some(t) => match t.result {
                    TestResult::Pass => "pass",
                    TestResult::Fail => "FAIL",
                    TestResult::Skip => "skip",
                },
                None => "n/a",
            },
        }
    }
}

/// The whole matrix as a table: one line per test, one column per kernel, then build and
/// test durations and the verdict (OK, BROKEN, UNVERIFIED, ERROR), then every failure,
/// skip and error reason underneath. A cell is `pass`, `FAIL`, `SKIP` (a setup skip),
/// `skip` (on request or not applicable), `n/a` (not in that kernel's list) or `-`.
pub fn table(rows: &[MatrixRow]) -> String {
    let mut tests: Vec<String> = Vec::new();
    for r in rows {
        for t in r.suite.iter().flat_map(|s| &s.tests) {
            if !tests.contains(&t.name) {
                tests.push(t.name.clone());
            }
        }
    }
    let heads: Vec<String> = rows.iter().map(MatrixRow::heading).collect();
    let w0 = tests.iter().map(String::len).chain([5]).max().unwrap_or(5);
    let widths: Vec<usize> = heads.iter().map(|h| h.len().max(10)).collect();
    let mut out = String::new();
    let mut line = |first: &str, cells: Vec<String>| {
        let mut l = format!("{first:<w0$}");
        for (c, w) in cells.iter().zip(&widths) {
            l.push_str(&format!("  {c:<w$}"));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line("TEST", heads.clone());
    for t in &tests {
        line(t, rows.iter().map(|r| r.cell(t).to_string()).collect());
    }
    let secs = |v: Option<f64>| v.map(|s| format!("{s:.0}s")).unwrap_or_else(|| "-".into());
    line("build", rows.iter().map(|r| secs(r.build_s)).collect());
    line("test", rows.iter().map(|r| secs(r.test_s)).collect());
    line(
        "verdict",
        rows.iter().map(|r| r.verdict().to_string()).collect(),
    );
    let mut notes = Vec::new();
    for (r, h) in rows.iter().zip(&heads) {
        if let Some(e) = &r.error {
            notes.push(format!("{h}: {}", e.lines().next().unwrap_or("")));
            // The catalogue entries that explain it, one line each.
            for known in e.lines().filter(|l| l.starts_with("known problem ")) {
                notes.push(format!("{h}: {known}"));
            }
        }
        for t in r.suite.iter().flat_map(|s| &s.tests) {
            if t.result != TestResult::Pass && !t.reason.is_empty() {
                let what = match (t.result, t.skip) {
                    (TestResult::Fail, _) => "fail".to_string(),
                    (_, k) => format!("skip: {}", k.unwrap_or(SkipKind::Setup).word()),
                };
                notes.push(format!("{h} {}: {} ({what})", t.name, t.reason));
            }
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}

/// The worst of the kernels' `vm test` exit codes ([`MatrixRow::exit_code`]): 2 when a
/// kernel never got to its tests (fetch, build, boot) or has setup skips that were not
/// allowed, else 1 when a test failed somewhere, else 0.
pub fn exit_code(rows: &[MatrixRow]) -> u8 {
    rows.iter().map(MatrixRow::exit_code).max().unwrap_or(0)
}

/// One cell of the matrix: a kernel as asked (`5.10` or `5.10.46`) with one toolchain,
/// for one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixCell {
    pub requested: String,
    pub toolchain: ToolchainSpec,
    pub arch: &'static crate::arch::Arch,
}

/// Every kernel with every toolchain and architecture, kernel-major: one kernel's
/// columns side by side in the table.
pub fn cells(
    kernels: &[String],
    toolchains: &[ToolchainSpec],
    arches: &[&'static crate::arch::Arch],
) -> Vec<MatrixCell> {
    let mut out = Vec::new();
    for k in kernels {
        for a in arches {
            for t in toolchains {
                out.push(MatrixCell {
                    requested: k.clone(),
                    toolchain: t.clone(),
                    arch: a,
                });
            }
        }
    }
    out
}

/// An error from a [`Builder`], kept with its chain of causes.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How one cell's kernel is fetched, configured and built (or reused). `jobs` is the
/// cell's share of the CPUs when several cells run at once, 0 when they run one by one.
pub trait Builder: Sync {
    fn build(
        &self,
        cell: &MatrixCell,
        jobs: usize,
        sink: &dyn EventSink,
    ) -> Result<BuildOutput, BoxError>;
}

impl<F> Builder for F
where
    F: Fn(&MatrixCell, usize, &dyn EventSink) -> Result<BuildOutput, BoxError> + Sync,
{
    fn build(
        &self,
        cell: &MatrixCell,
        jobs: usize,
        sink: &dyn EventSink,
    ) -> Result<BuildOutput, BoxError> {
        self(cell, jobs, sink)
    }
}

/// The builder that runs [`crate::lab::build`] with the cell's version and toolchain.
pub struct LabBuilder {
    pub home: Home,
    /// Source, config and build options for every cell (its version is replaced).
    pub template: crate::lab::LabBuild,
    /// Give each cell its share of the CPUs (no `--jobs` was given).
    pub split_jobs: bool,
}

impl Builder for LabBuilder {
    fn build(
        &self,
        cell: &MatrixCell,
        jobs: usize,
        sink: &dyn EventSink,
    ) -> Result<BuildOutput, BoxError> {
        let mut req = self.template.clone();
        req.version = cell.requested.parse()?;
        req.options.toolchain = cell.toolchain.clone();
        req.plan.arch = cell.arch;
        if self.split_jobs && jobs > 0 {
            req.options.jobs = jobs;
        }
        Ok(crate::lab::build(&self.home, &req, sink)?.output)
    }
}

/// What [`run`] does, in order per cell.
#[derive(Debug, Clone)]
pub struct MatrixPlan {
    pub cells: Vec<MatrixCell>,
    /// How many cells at a time (at least 1).
    pub parallel: usize,
    /// The suite's options for every cell (the toolchain is the cell's).
    pub suite: SuiteOptions,
    /// Write one JUnit file per cell here (`junit-<version>[-<suite>].xml`).
    pub junit_dir: Option<PathBuf>,
}

/// Progress of [`run`], one cell at a time (`index` into [`MatrixPlan::cells`]).
#[derive(Debug, Clone)]
pub enum MatrixEvent {
    Started {
        index: usize,
        cell: MatrixCell,
    },
    /// The kernel is built (or reused): its release is known, the suite starts.
    Built {
        index: usize,
        version: String,
        seconds: f64,
    },
    Finished {
        index: usize,
        row: Box<MatrixRow>,
    },
}

impl MatrixRow {
    /// A row for a cell that has not produced anything yet.
    pub fn new(cell: &MatrixCell) -> MatrixRow {
        MatrixRow {
            requested: cell.requested.clone(),
            toolchain: cell.toolchain.clone(),
            arch: cell.arch,
            version: None,
            build_s: None,
            test_s: None,
            error: None,
            suite: None,
        }
    }

    /// A cell that failed before anything ran, for this reason.
    pub fn failed(cell: &MatrixCell, error: impl Into<String>) -> MatrixRow {
        MatrixRow {
            error: Some(error.into()),
            ..MatrixRow::new(cell)
        }
    }
}

/// An error and its causes on one line, `outer: cause: cause` (as the CLI prints them).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

/// Build and test every cell, `plan.parallel` at a time (each build then gets a share
/// of the CPUs), and return one row per cell in the plan's order. A cell that cannot be
/// built or booted is a row with its error, not a failure of the run; Ctrl-C stops
/// starting cells and returns [`crate::Error::Interrupted`].
pub fn run(
    home: &Home,
    plan: &MatrixPlan,
    builder: &dyn Builder,
    on_event: &(dyn Fn(MatrixEvent) + Sync),
    sink: &dyn EventSink,
) -> crate::Result<Vec<MatrixRow>> {
    if plan.cells.is_empty() {
        return Ok(Vec::new());
    }
    let parallel = plan.parallel.clamp(1, plan.cells.len());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let share = if parallel > 1 {
        (cpus / parallel).max(1)
    } else {
        0
    };
    let mut rows: Vec<Option<MatrixRow>> = vec![None; plan.cells.len()];
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots = std::sync::Mutex::new(&mut rows);
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= plan.cells.len() || crate::process::interrupted() {
                    break;
                }
                let cell = &plan.cells[i];
                on_event(MatrixEvent::Started {
                    index: i,
                    cell: cell.clone(),
                });
                let row = one(home, plan, builder, i, share, on_event, sink);
                on_event(MatrixEvent::Finished {
                    index: i,
                    row: Box::new(row.clone()),
                });
                slots.lock().unwrap()[i] = Some(row);
            });
        }
    });
    if crate::process::interrupted() {
        return Err(crate::Error::Interrupted);
    }
    Ok(rows.into_iter().flatten().collect())
}

fn one(
    home: &Home,
    plan: &MatrixPlan,
    builder: &dyn Builder,
    index: usize,
    share: usize,
    on_event: &(dyn Fn(MatrixEvent) + Sync),
    sink: &dyn EventSink,
) -> MatrixRow {
    let cell = &plan.cells[index];
    let mut row = MatrixRow::new(cell);
    let result = (|| -> Result<(), BoxError> {
        let req: VersionReq = cell.requested.parse()?;
        let start = Instant::now();
        let b = builder.build(cell, share, sink)?;
        let kernel = Kernel::from_build(b, &req);
        let seconds = start.elapsed().as_secs_f64();
        row.build_s = Some(seconds);
        row.version = Some(kernel.version.to_string());
        on_event(MatrixEvent::Built {
            index,
            version: kernel.version.to_string(),
            seconds,
        });
        let start = Instant::now();
        let opts = SuiteOptions {
            toolchain: cell.toolchain.clone(),
            ..plan.suite.clone()
        };
        let res = lab_suite::run(home, &kernel, &opts, sink)?;
        row.test_s = Some(start.elapsed().as_secs_f64());
        if let Some(dir) = &plan.junit_dir {
            let dir = home.ensure(dir.clone())?;
            let mut name = format!("junit-{}", kernel.version);
            if let ToolchainSpec::Debian(s) = &cell.toolchain {
                name.push_str(&format!("-{s}"));
            }
            if !cell.arch.is_default() {
                name.push_str(&format!("-{}", cell.arch));
            }
            name.push_str(".xml");
            crate::home::write_atomic(
                &dir.join(name),
                crate::suite::report::junit(&res).as_bytes(),
            )?;
        }
        row.suite = Some(res);
        Ok(())
    })();
    if let Err(e) = result {
        row.error = Some(error_chain(e.as_ref()));
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::TestOutcome;

    fn outcome(n: &str, r: TestResult, why: &str) -> TestOutcome {
        let skip = (r == TestResult::Skip).then_some(SkipKind::Setup);
        TestOutcome {
            name: n.to_string(),
            result: r,
            skip,
            duration_s: 1.0,
            reason: why.to_string(),
            detail: None,
            log: None,
        }
    }

    fn suite(kernel: &str, results: &[(&str, TestResult, &str)]) -> SuiteResult {
        SuiteResult {
            kernel: kernel.into(),
            release: kernel.into(),
            accel: "tcg".into(),
            duration_s: 10.0,
            run_dir: None,
            tests: results
                .iter()
                .map(|(n, r, why)| outcome(n, *r, why))
                .collect(),
            allow_skip: false,
        }
    }

    fn row(req: &str, s: Option<SuiteResult>, error: Option<&str>) -> MatrixRow {
        MatrixRow {
            requested: req.into(),
            toolchain: crate::userland::ToolchainSpec::Host,
            arch: crate::arch::Arch::x86_64(),
            version: s.as_ref().map(|s| s.kernel.clone()),
            build_s: Some(300.0),
            test_s: Some(20.0),
            error: error.map(str::to_string),
            suite: s,
        }
    }

    #[test]
    fn default_list_parses_and_junk_is_refused() {
        let l = parse_list(DEFAULT_LIST).unwrap();
        assert!(l.len() >= 4 && l.contains(&"5.10.46".to_string()), "{l:?}");
        assert!(parse_list("kernels = []").is_err());
        assert!(parse_list("kernels = [\"5.x\"]")
            .unwrap_err()
            .to_string()
            .contains("accepted forms"));
        assert!(parse_list("nope").is_err());
    }

    #[test]
    fn table_has_a_column_per_kernel_and_explains_every_non_pass() {
        let rows = vec![
            row(
                "5.10.46",
                Some(suite(
                    "5.10.46",
                    &[
                        ("hello", TestResult::Pass, ""),
                        ("test_bpf", TestResult::Pass, ""),
                    ],
                )),
                None,
            ),
            row(
                "6.1",
                Some(suite(
                    "6.1.158",
                    &[
                        ("hello", TestResult::Fail, "no Hello in trace_pipe"),
                        ("samples/xdp1", TestResult::Skip, "not built"),
                    ],
                )),
                None,
            ),
            row("6.12", None, Some("build failed: pahole ...")),
            {
                let mut r = row(
                    "7.1",
                    None,
                    Some("core BPF options did not land\n  CONFIG_DEBUG_INFO_BTF: asked y, got n\nknown problem pahole-too-old: pahole is too old for this kernel\n  what to do: install pahole >= 1.22"),
                );
                r.toolchain = crate::userland::ToolchainSpec::Debian("bullseye".into());
                r
            },
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("TEST")
                && lines[0].contains("5.10.46")
                && lines[0].contains("6.1.158")
                && lines[0].contains("6.12"),
            "{t}"
        );
        let hello = lines.iter().find(|l| l.starts_with("hello")).unwrap();
        assert_eq!(
            hello.split_whitespace().collect::<Vec<_>>(),
            ["hello", "pass", "FAIL", "-", "-"]
        );
        let tb = lines.iter().find(|l| l.starts_with("test_bpf")).unwrap();
        assert_eq!(
            tb.split_whitespace().collect::<Vec<_>>(),
            ["test_bpf", "pass", "n/a", "-", "-"]
        );
        assert!(
            t.contains("6.1.158 hello: no Hello in trace_pipe (fail)"),
            "{t}"
        );
        assert!(
            t.contains("6.1.158 samples/xdp1: not built (skip: setup)"),
            "{t}"
        );
        assert!(t.contains("6.12: build failed"), "{t}");
        // A toolchain's column is named after it; the catalogue entry that explains an
        // error is shown, not only the error's first line.
        assert!(lines[0].contains("7.1/bullseye"), "{t}");
        assert!(
            t.contains("7.1/bullseye: known problem pahole-too-old: pahole is too old"),
            "{t}"
        );
        assert!(
            !t.contains("what to do: install pahole"),
            "one line per entry: {t}"
        );
        let verdicts = lines.iter().find(|l| l.starts_with("verdict")).unwrap();
        assert_eq!(
            verdicts.split_whitespace().collect::<Vec<_>>(),
            ["verdict", "OK", "BROKEN", "ERROR", "ERROR"]
        );
        assert_eq!(exit_code(&rows), 2);
        assert_eq!(exit_code(&rows[..2]), 1);
        assert_eq!(exit_code(&rows[..1]), 0);
    }

    #[test]
    fn setup_skips_make_a_kernel_unverified_unless_allowed() {
        let skipped = || {
            suite(
                "6.1.158",
                &[
                    ("hello", TestResult::Pass, ""),
                    ("samples/xdp1", TestResult::Skip, "samples/bpf build failed"),
                ],
            )
        };
        let mut rows = vec![
            row(
                "5.10.46",
                Some(suite("5.10.46", &[("hello", TestResult::Pass, "")])),
                None,
            ),
            row("6.1", Some(skipped()), None),
        ];
        let t = table(&rows);
        assert!(
            t.lines().any(
                |l| l.split_whitespace().collect::<Vec<_>>() == ["samples/xdp1", "n/a", "SKIP"]
            ),
            "{t}"
        );
        assert!(
            t.lines().any(
                |l| l.split_whitespace().collect::<Vec<_>>() == ["verdict", "OK", "UNVERIFIED"]
            ),
            "{t}"
        );
        assert_eq!(exit_code(&rows), 2, "a setup skip is a setup failure");
        // A failed test on one kernel and a setup skip on another: the worst code, 2.
        rows.push(row(
            "6.12",
            Some(suite(
                "6.12.107",
                &[("hello", TestResult::Fail, "no Hello")],
            )),
            None,
        ));
        assert_eq!(exit_code(&rows), 2);
        rows.pop();
        rows[1].suite.as_mut().unwrap().allow_skip = true;
        assert_eq!(exit_code(&rows), 0, "--allow-skip");
        assert!(table(&rows)
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["verdict", "OK", "OK"]));
        // Skips on request are allowed.
        let mut s = skipped();
        s.tests[1].skip = Some(SkipKind::Requested);
        assert_eq!(exit_code(&[row("6.1", Some(s), None)]), 0);
    }

    #[test]
    fn the_arch_axis_makes_columns_named_after_the_architecture() {
        let arm = crate::arch::Arch::by_name("arm64").unwrap();
        let x86 = crate::arch::Arch::x86_64();
        let c = cells(
            &["6.12".to_string(), "7.1".to_string()],
            &[ToolchainSpec::Host],
            &[x86, arm],
        );
        let names: Vec<(String, String)> = c
            .iter()
            .map(|c| (c.requested.clone(), c.arch.name.clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("6.12".into(), "x86_64".into()),
                ("6.12".into(), "arm64".into()),
                ("7.1".into(), "x86_64".into()),
                ("7.1".into(), "arm64".into()),
            ]
        );
        let mut r = row("6.12", None, Some("x"));
        r.version = Some("6.12.107".into());
        assert_eq!(r.heading(), "6.12.107");
        r.arch = arm;
        assert_eq!(r.heading(), "6.12.107/arm64");
        r.toolchain = ToolchainSpec::Debian("trixie".into());
        assert_eq!(r.heading(), "6.12.107/trixie/arm64");
    }

    #[test]
    fn run_keeps_the_plan_order_and_turns_build_errors_into_rows() {
        let d = tempfile::tempdir().unwrap();
        let home = Home::new(d.path());
        let kernels = vec!["5.10".to_string(), "6.1.2".to_string()];
        let toolchains = vec![
            ToolchainSpec::Host,
            ToolchainSpec::Debian("bullseye".into()),
        ];
        let plan = MatrixPlan {
            cells: cells(&kernels, &toolchains, &[crate::arch::Arch::x86_64()]),
            parallel: 3,
            suite: SuiteOptions::default(),
            junit_dir: None,
        };
        assert_eq!(plan.cells.len(), 4);
        assert_eq!(plan.cells[1].requested, "5.10");
        assert_eq!(plan.cells[1].toolchain, toolchains[1]);
        #[derive(Debug, thiserror::Error)]
        #[error("build of {0} failed")]
        struct Outer(String, #[source] std::io::Error);
        let builder =
            |cell: &MatrixCell, jobs: usize, _: &dyn EventSink| -> Result<BuildOutput, BoxError> {
                assert!(jobs >= 1, "three at a time share the CPUs");
                Err(Box::new(Outer(
                    cell.requested.clone(),
                    std::io::Error::other("no compiler"),
                )))
            };
        let events = std::sync::Mutex::new(Vec::new());
        let rows = run(
            &home,
            &plan,
            &builder,
            &|e| events.lock().unwrap().push(e),
            &crate::events::NullSink,
        )
        .unwrap();
        let got: Vec<_> = rows.iter().map(|r| r.heading()).collect();
        assert_eq!(got, ["5.10", "5.10/bullseye", "6.1.2", "6.1.2/bullseye"]);
        assert_eq!(
            rows[2].error.as_deref(),
            Some("build of 6.1.2 failed: no compiler")
        );
        assert!(rows
            .iter()
            .all(|r| r.suite.is_none() && r.build_s.is_none()));
        assert_eq!(exit_code(&rows), 2);
        let events = events.into_inner().unwrap();
        let started = events
            .iter()
            .filter(|e| matches!(e, MatrixEvent::Started { .. }))
            .count();
        let finished = events
            .iter()
            .filter(|e| matches!(e, MatrixEvent::Finished { row, .. } if row.error.is_some()))
            .count();
        assert_eq!((started, finished), (4, 4));
    }
}
