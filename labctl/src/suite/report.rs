//! Suite reports: the final table for people (TEST, RESULT, TIME, REASON in at most
//! [`TABLE_WIDTH`] columns, reasons shortened with an ellipsis), the summary with the
//! next step for setup skips, JSON (the whole result plus `status` and skip counts) and
//! JUnit XML for CI (setup skips are `<error>`s unless allowed). Pure functions over
//! [`SuiteResult`](super::SuiteResult), unit-tested.

use crate::events::{SkipKind, TestResult};

use super::{SuiteResult, SuiteStatus, TestOutcome};

/// The table and the summary fit a terminal this wide (paths on their own line aside).
pub const TABLE_WIDTH: usize = 100;
/// Longer test ids are shortened in the table.
const MAX_NAME: usize = 40;

pub fn result_word(r: TestResult) -> &'static str {
    match r {
        TestResult::Pass => "pass",
        TestResult::Fail => "fail",
        TestResult::Skip => "skip",
    }
}

/// The RESULT cell: PASS, FAIL, `SKIP setup`, `SKIP asked`, `SKIP n/a`.
fn result_cell(t: &TestOutcome) -> String {
    match (t.result, t.skip) {
        (TestResult::Skip, Some(SkipKind::Setup) | None) => "SKIP setup".into(),
        (TestResult::Skip, Some(SkipKind::Requested)) => "SKIP asked".into(),
        (TestResult::Skip, Some(SkipKind::NotApplicable)) => "SKIP n/a".into(),
        (r, _) => result_word(r).to_uppercase(),
    }
}

/// `s` cut to at most `n` characters, ending in `…` when cut.
pub fn ellipsize(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut o: String = s.chars().take(n.saturating_sub(1)).collect();
    o.push('…');
    o
}

/// Words of `text` in lines of at most `width` characters; lines after the first start
/// with `indent`. A single word longer than a line (a path) gets a line of its own.
fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        let len = cur.chars().count();
        if !cur.is_empty() && len + 1 + w.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if cur.is_empty() {
            if !lines.is_empty() {
                cur.push_str(indent);
            }
        } else {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// "2 skipped (1 setup, 1 on request)": the skips by kind, non-zero ones only.
fn skipped_text(res: &SuiteResult) -> String {
    let k = res.counts().2;
    let parts: Vec<String> = [
        (SkipKind::Setup, "setup"),
        (SkipKind::Requested, "on request"),
        (SkipKind::NotApplicable, "not applicable"),
    ]
    .into_iter()
    .filter_map(|(kind, word)| {
        let n = res.skipped(kind);
        (n > 0).then(|| format!("{n} {word}"))
    })
    .collect();
    if parts.is_empty() {
        format!("{k} skipped")
    } else {
        format!("{k} skipped ({})", parts.join(", "))
    }
}

/// The setup skips grouped by what to do: (test names, the advice).
fn setup_groups(res: &SuiteResult) -> Vec<(Vec<&str>, &str)> {
    let mut groups: Vec<(Vec<&str>, &str)> = Vec::new();
    for t in res.tests.iter().filter(|t| t.is_setup_skip()) {
        let why = t.detail.as_deref().unwrap_or(&t.reason);
        match groups.iter_mut().find(|(_, w)| *w == why) {
            Some((names, _)) => names.push(&t.name),
            None => groups.push((vec![&t.name], why)),
        }
    }
    groups
}

/// The final table: test, result, duration, reason (shortened to fit [`TABLE_WIDTH`]);
/// then the summary line, what to do about setup skips, and the run folder.
pub fn table(res: &SuiteResult) -> String {
    let w = res
        .tests
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, MAX_NAME);
    const RW: usize = 10; // "SKIP setup"
    const TW: usize = 7; // " 150.3s"
    let reason_w = TABLE_WIDTH.saturating_sub(w + 2 + RW + 2 + TW + 2).max(10);
    let mut s = format!(
        "{:<w$}  {:<RW$}  {:>TW$}  REASON\n",
        "TEST", "RESULT", "TIME"
    );
    for t in &res.tests {
        let line = format!(
            "{:<w$}  {:<RW$}  {:>6.1}s  {}",
            ellipsize(&t.name, w),
            result_cell(t),
            t.duration_s,
            ellipsize(&t.reason, reason_w)
        );
        s.push_str(line.trim_end());
        s.push('\n');
    }
    let (p, f, _) = res.counts();
    let status = res.status();
    let setup = res.skipped(SkipKind::Setup);
    let verdict = match status {
        SuiteStatus::Failed => "lab BROKEN",
        SuiteStatus::NotVerified => "lab NOT VERIFIED",
        SuiteStatus::Passed if setup > 0 => "lab OK (--allow-skip)",
        SuiteStatus::Passed => "lab OK",
    };
    s.push_str(&format!(
        "\n{verdict} on {} ({}): {p} passed, {f} failed, {} in {:.1}s\n",
        res.kernel,
        res.accel,
        skipped_text(res),
        res.duration_s,
    ));
    if setup > 0 {
        s.push_str(if res.allow_skip {
            "Setup skips, allowed by --allow-skip (these tests did not run):\n"
        } else {
            "Setup skips (the host or the build kept these tests from running):\n"
        });
        for (names, why) in setup_groups(res) {
            let who = match names.len() {
                1..=3 => names.join(", "),
                n => format!("{} and {} more", names[..2].join(", "), n - 2),
            };
            for l in wrap(&format!("- {who}: {why}"), TABLE_WIDTH, "    ") {
                s.push_str(&l);
                s.push('\n');
            }
        }
        if status == SuiteStatus::NotVerified {
            for l in wrap(
                "Next: do what each line says and run it again, or accept these skips with \
                 --allow-skip.",
                TABLE_WIDTH,
                "",
            ) {
                s.push_str(&l);
                s.push('\n');
            }
        }
    }
    if let Some(d) = &res.run_dir {
        s.push_str(&format!("logs: {}\n", d.display()));
    }
    s
}

/// Skip counts by kind, for the JSON.
#[derive(serde::Serialize)]
struct SkipCounts {
    setup: usize,
    requested: usize,
    not_applicable: usize,
}

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    res: &'a SuiteResult,
    status: SuiteStatus,
    skipped: SkipCounts,
}

/// `--json`: the whole result; `tests` holds one object per test with `name`, `result`
/// (pass|fail|skip), `skip_kind` (setup|requested|not_applicable, null unless skipped),
/// `duration_s`, `reason`, `detail` and `log`. Top level adds `allow_skip`, `status`
/// (passed|not_verified|failed) and `skipped` (counts by kind).
pub fn json(res: &SuiteResult) -> String {
    let r = JsonReport {
        res,
        status: res.status(),
        skipped: SkipCounts {
            setup: res.skipped(SkipKind::Setup),
            requested: res.skipped(SkipKind::Requested),
            not_applicable: res.skipped(SkipKind::NotApplicable),
        },
    };
    serde_json::to_string_pretty(&r).expect("serializable")
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

/// A setup skip is a JUnit `<error>` (CI notices it) unless the run allows setup skips.
fn is_error(t: &TestOutcome, allow_skip: bool) -> bool {
    t.result == TestResult::Skip
        && t.skip.unwrap_or(SkipKind::Setup) == SkipKind::Setup
        && !allow_skip
}

fn testcase(t: &TestOutcome, kernel: &str, allow_skip: bool) -> String {
    let (class, name) = match t.name.rsplit_once('/') {
        Some((a, b)) => (format!("labctl.{kernel}.{a}"), b.to_string()),
        None => (format!("labctl.{kernel}"), t.name.clone()),
    };
    let mut s = format!(
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
        xml_escape(&class),
        xml_escape(&name),
        t.duration_s
    );
    let body = |tag: &str, extra: &str| match &t.detail {
        Some(d) => format!(
            "\n      <{tag}{extra} message=\"{}\">{}</{tag}>\n    ",
            xml_escape(&t.reason),
            xml_escape(d)
        ),
        None => format!(
            "\n      <{tag}{extra} message=\"{}\"/>\n    ",
            xml_escape(&t.reason)
        ),
    };
    match t.result {
        TestResult::Pass => {}
        TestResult::Fail => s.push_str(&body("failure", "")),
        TestResult::Skip if is_error(t, allow_skip) => {
            s.push_str(&body("error", " type=\"setup\""))
        }
        TestResult::Skip => s.push_str(&body("skipped", "")),
    }
    if let Some(l) = &t.log {
        s.push_str(&format!(
            "<system-out>log: {}</system-out>",
            xml_escape(&l.display().to_string())
        ));
    }
    s.push_str("</testcase>\n");
    s
}

/// JUnit XML (the dialect Jenkins/GitLab/GitHub test reporters read).
pub fn junit(res: &SuiteResult) -> String {
    let (_, f, k) = res.counts();
    let errors = res
        .tests
        .iter()
        .filter(|t| is_error(t, res.allow_skip))
        .count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<testsuites>\n  <testsuite name=\"labctl vm test {}\" tests=\"{}\" failures=\"{f}\" errors=\"{errors}\" skipped=\"{}\" time=\"{:.3}\">\n",
        xml_escape(&res.kernel),
        res.tests.len(),
        k - errors,
        res.duration_s
    ));
    for t in &res.tests {
        s.push_str(&testcase(t, &res.kernel.replace('.', "_"), res.allow_skip));
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn outcome(
        name: &str,
        result: TestResult,
        skip: Option<SkipKind>,
        reason: &str,
    ) -> TestOutcome {
        TestOutcome {
            name: name.into(),
            result,
            skip,
            duration_s: 1.25,
            reason: reason.into(),
            detail: None,
            log: None,
        }
    }

    fn res() -> SuiteResult {
        SuiteResult {
            kernel: "5.10.46".into(),
            release: "5.10.46".into(),
            accel: "tcg".into(),
            duration_s: 9.5,
            run_dir: None,
            tests: vec![
                outcome(
                    "kernel/jit",
                    TestResult::Pass,
                    None,
                    "JIT on: net.core.bpf_jit_enable = 1",
                ),
                outcome(
                    "hello",
                    TestResult::Fail,
                    None,
                    "attach kprobe do_sys_openat2: <No such file> & \"KPROBES\"",
                ),
                outcome(
                    "hello-bcc",
                    TestResult::Skip,
                    Some(SkipKind::Requested),
                    "--no-bcc",
                ),
            ],
            allow_skip: false,
        }
    }

    /// Every catalogue test of 6.12 with the long reasons real runs give, the samples
    /// skipped because their build failed.
    fn full_run() -> SuiteResult {
        let long = "attach kprobe do_sys_openat2: No such file or directory (the kernel needs KPROBES and KPROBE_EVENTS) and a very long tail of text after it";
        let tests = crate::suite::tests::all(
            &crate::KernelVersion::new(6, 12, 107),
            false,
            crate::arch::Arch::x86_64(),
        )
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let mut o = match (t.id(), i % 3) {
                    ("hello-bcc", _) => {
                        let v = crate::suite::BccMissing::PythonModule.verdict();
                        let mut o = outcome(t.id(), v.result, v.skip, &v.reason);
                        o.detail = v.detail;
                        o
                    }
                    (n, _) if n.starts_with("samples/") => {
                        let f = crate::suite::SamplesFailure {
                            first_error: Some(format!("samples/bpf/Makefile:231: error: {long}")),
                            log: Some(PathBuf::from("/home/someone/.cache/labctl/builds/6.12.107-0123abcd-4567ef01/logs/09-samples.log")),
                            catalogue: vec![("samples-bpf-o-userprogs".into(), "samples-bpf-o-userprogs".into())],
                        };
                        let v = f.verdict();
                        let mut o = outcome(t.id(), v.result, v.skip, &v.reason);
                        o.detail = v.detail;
                        o
                    }
                    (_, 0) => outcome(t.id(), TestResult::Fail, None, long),
                    _ => outcome(t.id(), TestResult::Pass, None, "port 80 only (TCP+UDP, IPv4+IPv6); JIT: no, interpreted"),
                };
                o.duration_s = 150.25;
                o
            })
            .collect();
        SuiteResult {
            kernel: "6.12.107".into(),
            release: "6.12.107".into(),
            accel: "tcg".into(),
            duration_s: 1234.5,
            run_dir: Some(PathBuf::from(
                "/home/someone/.cache/labctl/runs/1795701491-6.12.107",
            )),
            tests,
            allow_skip: false,
        }
    }

    #[test]
    fn table_has_every_test_and_a_verdict() {
        let s = table(&res());
        assert!(s.lines().next().unwrap().starts_with("TEST"));
        assert!(s.contains("kernel/jit  PASS"));
        let row = s.lines().find(|l| l.starts_with("hello ")).unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cols[..3], ["hello", "FAIL", "1.2s"], "{s}");
        assert!(row.contains("attach kprobe"));
        assert!(
            s.lines()
                .any(|l| l.starts_with("hello-bcc") && l.contains("SKIP asked")),
            "{s}"
        );
        assert!(
            s.contains("lab BROKEN on 5.10.46 (tcg): 1 passed, 1 failed, 1 skipped (1 on request)"),
            "{s}"
        );
    }

    #[test]
    fn a_full_run_with_long_reasons_fits_100_columns() {
        let r = full_run();
        assert!(r.tests.len() >= 15, "{}", r.tests.len());
        let s = table(&r);
        for l in s.lines() {
            assert!(
                l.chars().count() <= TABLE_WIDTH,
                "{} columns: {l}\n{s}",
                l.chars().count()
            );
        }
        // Every test has its row, long reasons are cut with an ellipsis.
        for t in &r.tests {
            assert!(
                s.lines().any(|l| l.starts_with(&format!("{} ", t.name))),
                "{} missing\n{s}",
                t.name
            );
        }
        assert!(s.lines().any(|l| l.ends_with('…')), "{s}");
        assert!(s.contains("lab BROKEN on 6.12.107 (tcg): "), "{s}");
        // Without the failures: not verified, the setup skips grouped with the advice.
        let mut r = r;
        r.tests.retain(|t| t.result != TestResult::Fail);
        let s = table(&r);
        for l in s.lines() {
            assert!(
                l.chars().count() <= TABLE_WIDTH,
                "{} columns: {l}\n{s}",
                l.chars().count()
            );
        }
        let setup = r.tests.iter().filter(|t| t.is_setup_skip()).count();
        assert!(setup >= 2, "{s}");
        assert!(s.contains("lab NOT VERIFIED on 6.12.107 (tcg): "), "{s}");
        assert!(s.contains(&format!("skipped ({setup} setup)")), "{s}");
        assert!(!s.contains("lab OK"), "{s}");
        assert!(s.contains("labctl doctor --install"), "{s}");
        assert!(
            s.contains("samples-bpf-o-userprogs") && s.contains("09-samples.log"),
            "{s}"
        );
        assert!(s.contains("--allow-skip"), "{s}");
        assert_eq!(
            s.matches("- samples/").count(),
            1,
            "one line for all the samples: {s}"
        );
    }

    #[test]
    fn setup_skips_make_a_run_not_verified_unless_allowed_and_failures_win() {
        let mut r = full_run();
        assert_eq!(
            r.status(),
            SuiteStatus::Failed,
            "a failed test wins over setup skips"
        );
        r.tests.retain(|t| t.result != TestResult::Fail);
        assert_eq!(r.status(), SuiteStatus::NotVerified);
        r.allow_skip = true;
        assert_eq!(r.status(), SuiteStatus::Passed);
        let s = table(&r);
        assert!(s.contains("lab OK (--allow-skip) on 6.12.107"), "{s}");
        assert!(s.contains("allowed by --allow-skip"), "{s}");
        // Requested and not-applicable skips are allowed without --allow-skip.
        let mut r = res();
        r.tests.retain(|t| t.result != TestResult::Fail);
        r.tests.push(outcome(
            "samples/x",
            TestResult::Skip,
            Some(SkipKind::NotApplicable),
            "gone in 6.1",
        ));
        assert_eq!(r.status(), SuiteStatus::Passed);
        assert!(table(&r).contains("lab OK on 5.10.46 (tcg): 1 passed, 0 failed, 2 skipped (1 on request, 1 not applicable)"));
    }

    #[test]
    fn ellipsize_counts_characters() {
        assert_eq!(ellipsize("abc", 3), "abc");
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("ééééé", 3).chars().count(), 3);
        assert_eq!(wrap("aa bb cc", 5, "  "), ["aa bb", "  cc"]);
    }

    #[test]
    fn json_objects_have_the_documented_fields() {
        let v: serde_json::Value = serde_json::from_str(&json(&res())).unwrap();
        let t = &v["tests"][1];
        assert_eq!(t["name"], "hello");
        assert_eq!(t["result"], "fail");
        assert_eq!(t["skip_kind"], serde_json::Value::Null);
        assert_eq!(t["duration_s"], 1.25);
        assert!(t["reason"].as_str().unwrap().contains("KPROBES"));
        assert_eq!(v["tests"][2]["result"], "skip");
        assert_eq!(v["tests"][2]["skip_kind"], "requested");
        assert_eq!(v["status"], "failed");
        assert_eq!(v["skipped"]["requested"], 1);
        let v: serde_json::Value = serde_json::from_str(&json(&full_run())).unwrap();
        let s = v["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "samples/sockex1")
            .unwrap();
        assert_eq!(s["skip_kind"], "setup");
        assert!(s["detail"].as_str().unwrap().contains("09-samples.log"));
        // Old results.json (no skip_kind, detail, allow_skip) still reads back.
        let old = r#"{"kernel":"5.10.46","release":"5.10.46","accel":"tcg","duration_s":1.0,"run_dir":null,
            "tests":[{"name":"hello-bcc","result":"skip","duration_s":0.0,"reason":"no BCC","log":null}]}"#;
        let r: SuiteResult = serde_json::from_str(old).unwrap();
        assert_eq!(
            r.status(),
            SuiteStatus::NotVerified,
            "an untyped skip is not an allowed one"
        );
    }

    #[test]
    fn junit_is_escaped_counts_match_and_setup_skips_are_errors() {
        let x = junit(&res());
        assert!(
            x.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("<failure message=\"attach kprobe do_sys_openat2: &lt;No such file&gt; &amp; &quot;KPROBES&quot;\"/>"), "{x}");
        assert!(x.contains("classname=\"labctl.5_10_46.kernel\" name=\"jit\""));
        assert!(x.contains("<skipped message=\"--no-bcc\"/>"));
        assert_eq!(x.matches("<testcase ").count(), 3);
        assert_eq!(xml_escape("a\u{1}b"), "a?b");
        let mut r = full_run();
        let x = junit(&r);
        let setup = r.tests.iter().filter(|t| t.is_setup_skip()).count();
        assert!(
            x.contains(&format!("errors=\"{setup}\" skipped=\"0\"")),
            "{x}"
        );
        assert!(
            x.contains(
                "<error type=\"setup\" message=\"samples/bpf failed: samples-bpf-o-userprogs\">"
            ),
            "{x}"
        );
        r.allow_skip = true;
        let x = junit(&r);
        assert!(
            x.contains(&format!("errors=\"0\" skipped=\"{setup}\"")) && !x.contains("<error"),
            "{x}"
        );
    }
}
