//! The kernel matrix: the default kernel list (data file `ci/matrix.toml`), one row per
//! kernel (build + suite outcome, or the reason it could not be built or booted), the
//! kernel × test table, and the exit code: the worst of the kernels' `vm test` codes
//! (setup skips count as `vm test` counts them). Pure data and rendering; the CLI drives
//! the builds and VM runs.

use crate::events::{SkipKind, TestResult};
use crate::suite::{SuiteResult, SuiteStatus};

/// The embedded default list.
pub const DEFAULT_LIST: &str = include_str!("../../ci/matrix.toml");

#[derive(Debug, thiserror::Error)]
#[error("bad matrix list: {0}")]
pub struct MatrixListError(String);

/// Kernel versions from `ci/matrix.toml`-style text (`kernels = [..]`).
pub fn parse_list(text: &str) -> Result<Vec<String>, MatrixListError> {
    #[derive(serde::Deserialize)]
    struct File {
        kernels: Vec<String>,
    }
    let f: File = toml::from_str(text).map_err(|e| MatrixListError(e.to_string()))?;
    if f.kernels.is_empty() {
        return Err(MatrixListError("`kernels` is empty".into()));
    }
    for k in &f.kernels {
        k.parse::<crate::VersionReq>()
            .map_err(|e| MatrixListError(e.to_string()))?;
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
    /// toolchain (`5.10.46/bullseye`).
    pub fn heading(&self) -> String {
        let v = self
            .version
            .clone()
            .unwrap_or_else(|| self.requested.clone());
        match &self.toolchain {
            crate::userland::ToolchainSpec::Host => v,
            crate::userland::ToolchainSpec::Debian(s) => format!("{v}/{s}"),
        }
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
}
