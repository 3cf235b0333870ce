//! The kernel matrix: the default kernel list (data file `ci/matrix.toml`), one row per
//! kernel (build + suite outcome, or the reason it could not be built or booted), and the
//! kernel × test table. Pure data and rendering; the CLI drives the builds and VM runs.

use crate::events::TestResult;
use crate::suite::SuiteResult;

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
        k.parse::<crate::VersionReq>().map_err(|e| MatrixListError(e.to_string()))?;
    }
    Ok(f.kernels)
}

/// What happened to one kernel of the matrix.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatrixRow {
    /// As asked (`5.10`), and as resolved (`5.10.262`) once known.
    pub requested: String,
    pub version: Option<String>,
    pub build_s: Option<f64>,
    pub test_s: Option<f64>,
    /// Set when the kernel never reached a test result (fetch, build or boot failed).
    pub error: Option<String>,
    pub suite: Option<SuiteResult>,
}

impl MatrixRow {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.suite.as_ref().is_some_and(|s| s.all_passed())
    }
    fn cell(&self, test: &str) -> &'static str {
        match &self.suite {
            None => "-",
            Some(s) => match s.tests.iter().find(|t| t.name == test).map(|t| t.result) {
                Some(TestResult::Pass) => "pass",
                Some(TestResult::Fail) => "FAIL",
                Some(TestResult::Skip) => "skip",
                None => "n/a",
            },
        }
    }
}

/// The whole matrix as a table: one line per test, one column per kernel, then build and
/// test durations, then every failure, skip and error reason underneath.
pub fn table(rows: &[MatrixRow]) -> String {
    let mut tests: Vec<String> = Vec::new();
    for r in rows {
        for t in r.suite.iter().flat_map(|s| &s.tests) {
            if !tests.contains(&t.name) {
                tests.push(t.name.clone());
            }
        }
    }
    let heads: Vec<String> = rows.iter().map(|r| r.version.clone().unwrap_or_else(|| r.requested.clone())).collect();
    let w0 = tests.iter().map(String::len).chain([5]).max().unwrap_or(5);
    let widths: Vec<usize> = heads.iter().map(|h| h.len().max(8)).collect();
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
    line("verdict", rows.iter().map(|r| if r.passed() { "OK".into() } else { "NOT OK".into() }).collect());
    let mut notes = Vec::new();
    for (r, h) in rows.iter().zip(&heads) {
        if let Some(e) = &r.error {
            notes.push(format!("{h}: {}", e.lines().next().unwrap_or("")));
        }
        for t in r.suite.iter().flat_map(|s| &s.tests) {
            if t.result != TestResult::Pass && !t.reason.is_empty() {
                notes.push(format!("{h} {}: {} ({})", t.name, t.reason, if t.result == TestResult::Fail { "fail" } else { "skip" }));
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

/// 0 when every kernel passed, 1 when a test failed somewhere, 2 when a kernel never got
/// to its tests (fetch, build, boot) — the same meaning as `vm test`'s exit codes.
pub fn exit_code(rows: &[MatrixRow]) -> u8 {
    if rows.iter().any(|r| r.error.is_some()) {
        2
    } else if rows.iter().all(MatrixRow::passed) {
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::TestOutcome;

    fn suite(kernel: &str, results: &[(&str, TestResult, &str)]) -> SuiteResult {
        SuiteResult {
            kernel: kernel.into(),
            release: kernel.into(),
            accel: "tcg".into(),
            duration_s: 10.0,
            run_dir: None,
            tests: results
                .iter()
                .map(|(n, r, why)| TestOutcome { name: n.to_string(), result: *r, duration_s: 1.0, reason: why.to_string(), log: None })
                .collect(),
        }
    }

    fn row(req: &str, s: Option<SuiteResult>, error: Option<&str>) -> MatrixRow {
        MatrixRow { requested: req.into(), version: s.as_ref().map(|s| s.kernel.clone()), build_s: Some(300.0), test_s: Some(20.0), error: error.map(str::to_string), suite: s }
    }

    #[test]
    fn default_list_parses_and_junk_is_refused() {
        let l = parse_list(DEFAULT_LIST).unwrap();
        assert!(l.len() >= 4 && l.contains(&"5.10.46".to_string()), "{l:?}");
        assert!(parse_list("kernels = []").is_err());
        assert!(parse_list("kernels = [\"5.x\"]").unwrap_err().to_string().contains("accepted forms"));
        assert!(parse_list("nope").is_err());
    }

    #[test]
    fn table_has_a_column_per_kernel_and_explains_every_non_pass() {
        let rows = vec![
            row("5.10.46", Some(suite("5.10.46", &[("hello", TestResult::Pass, ""), ("test_bpf", TestResult::Pass, "")])), None),
            row("6.1", Some(suite("6.1.158", &[("hello", TestResult::Fail, "no Hello in trace_pipe"), ("samples/xdp1", TestResult::Skip, "not built")])), None),
            row("6.12", None, Some("build failed: pahole ...")),
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("TEST") && lines[0].contains("5.10.46") && lines[0].contains("6.1.158") && lines[0].contains("6.12"), "{t}");
        let hello = lines.iter().find(|l| l.starts_with("hello")).unwrap();
        assert_eq!(hello.split_whitespace().collect::<Vec<_>>(), ["hello", "pass", "FAIL", "-"]);
        let tb = lines.iter().find(|l| l.starts_with("test_bpf")).unwrap();
        assert_eq!(tb.split_whitespace().collect::<Vec<_>>(), ["test_bpf", "pass", "n/a", "-"]);
        assert!(t.contains("6.1.158 hello: no Hello in trace_pipe (fail)"), "{t}");
        assert!(t.contains("6.1.158 samples/xdp1: not built (skip)"), "{t}");
        assert!(t.contains("6.12: build failed"), "{t}");
        assert_eq!(exit_code(&rows), 2);
        assert_eq!(exit_code(&rows[..2]), 1);
        assert_eq!(exit_code(&rows[..1]), 0);
    }
}
