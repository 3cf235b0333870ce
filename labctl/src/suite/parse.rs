//! Reading what the guest runner printed: splitting the framed output into per-test
//! records, the [`Verdict`] a judge gives (pass, fail or a typed skip ([`SkipKind`]), a
//! short reason in words for the table, and the long detail (regexes, matched lines,
//! full advice) for the JSON and the per-test log), and the helpers the judges share
//! (loader output fields, tails, `.config` text). Each test's judge lives with its impl
//! in `suite/tests/`. All pure functions over text, unit-tested on fixture outputs.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::events::{SkipKind, TestResult};

/// Marker lines the runner script prints around each test (see `guest.rs`).
pub const BEGIN: &str = "@@LABCTL-BEGIN ";
pub const END: &str = "@@LABCTL-END ";
pub const DONE: &str = "@@LABCTL-DONE";

/// Exit status busybox's `timeout -s KILL` leaves: killed by SIGKILL.
pub const RC_KILLED: i32 = 137;

/// One test's raw result from the guest.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    /// Exit status of the test command; None when the END marker is missing.
    pub rc: Option<i32>,
    pub output: String,
    /// From the guest's /proc/uptime at begin and end.
    pub duration: Duration,
}

/// The runner's whole output, split up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frames {
    pub records: Vec<Record>,
    /// Output outside any test (the runner's own notes).
    pub preamble: String,
    /// The runner reached its end (`@@LABCTL-DONE`).
    pub done: bool,
}

fn uptime(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

/// Split the runner output into records. A test whose END never came (the guest died
/// or hung) gets `rc: None` and keeps whatever it printed.
pub fn split_frames(out: &str) -> Frames {
    let mut f = Frames::default();
    let mut cur: Option<(Record, Option<f64>)> = None;
    for line in out.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix(BEGIN) {
            if let Some((r, _)) = cur.take() {
                f.records.push(r);
            }
            let mut it = rest.split_whitespace();
            let name = it.next().unwrap_or("").to_string();
            let t0 = it.find_map(|kv| kv.strip_prefix("t=")).and_then(uptime);
            cur = Some((
                Record {
                    name,
                    rc: None,
                    output: String::new(),
                    duration: Duration::ZERO,
                },
                t0,
            ));
        } else if let Some(rest) = line.strip_prefix(END) {
            let mut it = rest.split_whitespace();
            let name = it.next().unwrap_or("");
            let mut rc = None;
            let mut t1 = None;
            for kv in it {
                if let Some(v) = kv.strip_prefix("rc=") {
                    rc = v.parse().ok();
                } else if let Some(v) = kv.strip_prefix("t=") {
                    t1 = uptime(v);
                }
            }
            if let Some((mut r, t0)) = cur.take() {
                if r.name == name {
                    r.rc = rc;
                    if let (Some(a), Some(b)) = (t0, t1) {
                        r.duration = Duration::from_secs_f64((b - a).max(0.0));
                    }
                }
                f.records.push(r);
            }
        } else if line.starts_with(DONE) {
            f.done = true;
        } else if let Some((r, _)) = cur.as_mut() {
            r.output.push_str(line);
            r.output.push('\n');
        } else {
            f.preamble.push_str(line);
            f.preamble.push('\n');
        }
    }
    if let Some((r, _)) = cur.take() {
        f.records.push(r);
    }
    f
}

/// A judge's decision. Built only through the constructors, so `skip` is set exactly
/// when `result` is [`TestResult::Skip`].
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub result: TestResult,
    /// Why it was skipped (only for skips).
    pub skip: Option<SkipKind>,
    /// What was seen, in words, short enough for the table.
    pub reason: String,
    /// The long form (regexes, matched lines, counts, advice) for the JSON and the log.
    pub detail: Option<String>,
}

impl Verdict {
    pub fn pass(reason: impl Into<String>) -> Self {
        Verdict {
            result: TestResult::Pass,
            skip: None,
            reason: reason.into(),
            detail: None,
        }
    }
    pub fn fail(reason: impl Into<String>) -> Self {
        Verdict {
            result: TestResult::Fail,
            skip: None,
            reason: reason.into(),
            detail: None,
        }
    }
    pub fn skip(kind: SkipKind, reason: impl Into<String>) -> Self {
        Verdict {
            result: TestResult::Skip,
            skip: Some(kind),
            reason: reason.into(),
            detail: None,
        }
    }
    /// The same verdict with the long form attached.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        let d = detail.into();
        self.detail = (!d.is_empty()).then_some(d);
        self
    }
}

/// The last `n` non-empty lines of `out`, joined with ` | ` (for details).
pub(crate) fn tail(out: &str, n: usize) -> String {
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// `key: value` lines the example loaders print.
pub(crate) fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

pub(crate) fn timed_out(rc: Option<i32>) -> bool {
    rc == Some(RC_KILLED)
}

/// The failure of a test whose END marker never came (`rc` None): the guest stopped
/// during `what`.
pub(crate) fn unfinished(rc: Option<i32>, what: &str) -> Option<Verdict> {
    rc.is_none().then(|| {
        Verdict::fail(format!(
            "{what} did not finish (the guest stopped during this test)"
        ))
    })
}

/// Common shape of the example loaders: `result: ok` + exit 0, else the `error:` line.
pub(crate) fn loader_verdict(out: &str, rc: Option<i32>, what: &str) -> Result<(), Verdict> {
    if let Some(v) = unfinished(rc, what) {
        return Err(v);
    }
    if timed_out(rc) {
        return Err(Verdict::fail(format!("{what} timed out")));
    }
    if rc == Some(0) && field(out, "result") == Some("ok") {
        return Ok(());
    }
    if let Some(e) = field(out, "error") {
        return Err(Verdict::fail(e.to_string()).detail(format!(
            "{what} exited with {}; last lines: {}",
            rc.unwrap_or(-1),
            tail(out, 5)
        )));
    }
    if let Some(l) = out.lines().rev().find(|l| !l.trim().is_empty()) {
        return Err(Verdict::fail(format!(
            "{what} exited with {} : {}",
            rc.unwrap_or(-1),
            l.trim()
        )));
    }
    Err(Verdict::fail(format!(
        "{what} exited with {} and printed nothing",
        rc.unwrap_or(-1)
    )))
}

/// Parse `.config` text (or /proc/config.gz) into symbol → value ("n" for `is not set`).
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for l in text.lines() {
        let l = l.trim();
        if let Some(rest) = l
            .strip_prefix("# CONFIG_")
            .and_then(|r| r.strip_suffix(" is not set"))
        {
            m.insert(rest.to_string(), "n".to_string());
        } else if let Some(rest) = l.strip_prefix("CONFIG_") {
            if let Some((k, v)) = rest.split_once('=') {
                m.insert(k.to_string(), v.to_string());
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "\
runner: start
@@LABCTL-BEGIN kernel/jit t=1.50
bpf_jit_enable=1
@@LABCTL-END kernel/jit rc=0 t=1.52
@@LABCTL-BEGIN hello t=1.52
loaded: prog id 4, jited 76 bytes
attached: kprobe do_sys_openat2
trace:            hello-26      [000] d...     1.304055: bpf_trace_printk: Hello, World!
detached: prog id 4 is gone
result: ok
@@LABCTL-END hello rc=0 t=2.02
@@LABCTL-BEGIN test_bpf t=2.02
bpf_jit_enable=1
";

    #[test]
    fn frames_split_and_time_and_keep_unfinished_tests() {
        let f = split_frames(RUN);
        assert_eq!(f.preamble, "runner: start\n");
        assert!(!f.done);
        assert_eq!(f.records.len(), 3);
        assert_eq!(f.records[0].name, "kernel/jit");
        assert_eq!(f.records[0].rc, Some(0));
        assert_eq!(f.records[0].output, "bpf_jit_enable=1\n");
        assert!((f.records[1].duration.as_secs_f64() - 0.5).abs() < 1e-6);
        assert_eq!(f.records[2].name, "test_bpf");
        assert_eq!(
            f.records[2].rc, None,
            "no END marker: the guest died in this test"
        );
        let full = format!("{RUN}@@LABCTL-END test_bpf rc=0 t=3.00\n@@LABCTL-DONE\n");
        let f = split_frames(&full);
        assert!(f.done);
        assert_eq!(f.records[2].rc, Some(0));
    }
}
