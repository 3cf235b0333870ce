//! Suite reports: the final table for people, JSON (one object per test) and JUnit XML
//! for CI. Pure functions over [`SuiteResult`](super::SuiteResult), unit-tested.

use crate::events::TestResult;

use super::{SuiteResult, TestOutcome};

pub fn result_word(r: TestResult) -> &'static str {
    match r {
        TestResult::Pass => "pass",
        TestResult::Fail => "fail",
        TestResult::Skip => "skip",
    }
}

/// The final table: test, result, duration, reason; then a one-line summary.
pub fn table(res: &SuiteResult) -> String {
    let w = res
        .tests
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = format!(
        "{:<w$}  {:<6}  {:>8}  {}\n",
        "TEST", "RESULT", "TIME", "REASON"
    );
    for t in &res.tests {
        s.push_str(&format!(
            "{:<w$}  {:<6}  {:>7.1}s  {}\n",
            t.name,
            result_word(t.result).to_uppercase(),
            t.duration_s,
            t.reason
        ));
    }
    let (p, f, k) = res.counts();
    s.push_str(&format!(
        "\n{} on {} ({}): {p} passed, {f} failed, {k} skipped in {:.1}s{}\n",
        if f == 0 { "lab OK" } else { "lab BROKEN" },
        res.kernel,
        res.accel,
        res.duration_s,
        res.run_dir
            .as_ref()
            .map(|d| format!("; logs: {}", d.display()))
            .unwrap_or_default()
    ));
    s
}

/// `--json`: the whole result; `tests` holds one object per test with `name`,
/// `result` (pass|fail|skip), `duration_s`, `reason` and `log`.
pub fn json(res: &SuiteResult) -> String {
    serde_json::to_string_pretty(res).expect("serializable")
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

fn testcase(t: &TestOutcome, kernel: &str) -> String {
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
    match t.result {
        TestResult::Pass => {}
        TestResult::Fail => s.push_str(&format!(
            "\n      <failure message=\"{}\"/>\n    ",
            xml_escape(&t.reason)
        )),
        TestResult::Skip => s.push_str(&format!(
            "\n      <skipped message=\"{}\"/>\n    ",
            xml_escape(&t.reason)
        )),
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
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<testsuites>\n  <testsuite name=\"labctl vm test {}\" tests=\"{}\" failures=\"{f}\" errors=\"0\" skipped=\"{k}\" time=\"{:.3}\">\n",
        xml_escape(&res.kernel),
        res.tests.len(),
        res.duration_s
    ));
    for t in &res.tests {
        s.push_str(&testcase(t, &res.kernel.replace('.', "_")));
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res() -> SuiteResult {
        let t = |name: &str, result, reason: &str| TestOutcome {
            name: name.into(),
            result,
            duration_s: 1.25,
            reason: reason.into(),
            log: None,
        };
        SuiteResult {
            kernel: "5.10.46".into(),
            release: "5.10.46".into(),
            accel: "tcg".into(),
            duration_s: 9.5,
            run_dir: None,
            tests: vec![
                t(
                    "kernel/jit",
                    TestResult::Pass,
                    "net.core.bpf_jit_enable = 1",
                ),
                t(
                    "hello",
                    TestResult::Fail,
                    "attach kprobe do_sys_openat2: <No such file> & \"KPROBES\"",
                ),
                t("hello-bcc", TestResult::Skip, "no BCC on the host"),
            ],
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
            s.contains("lab BROKEN on 5.10.46 (tcg): 1 passed, 1 failed, 1 skipped"),
            "{s}"
        );
    }

    #[test]
    fn json_objects_have_the_documented_fields() {
        let v: serde_json::Value = serde_json::from_str(&json(&res())).unwrap();
        let t = &v["tests"][1];
        assert_eq!(t["name"], "hello");
        assert_eq!(t["result"], "fail");
        assert_eq!(t["duration_s"], 1.25);
        assert!(t["reason"].as_str().unwrap().contains("KPROBES"));
        assert_eq!(v["tests"][2]["result"], "skip");
    }

    #[test]
    fn junit_is_escaped_and_counts_match() {
        let x = junit(&res());
        assert!(
            x.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("<failure message=\"attach kprobe do_sys_openat2: &lt;No such file&gt; &amp; &quot;KPROBES&quot;\"/>"), "{x}");
        assert!(x.contains("classname=\"labctl.5_10_46.kernel\" name=\"jit\""));
        assert!(x.contains("<skipped message=\"no BCC on the host\"/>"));
        assert_eq!(x.matches("<testcase ").count(), 3);
        assert_eq!(xml_escape("a\u{1}b"), "a?b");
    }
}
