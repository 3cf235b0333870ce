//! Reading what the guest runner printed: splitting the framed output into per-test
//! records, and the judges that turn one test's output into a [`Verdict`]: pass, fail or
//! a typed skip ([`SkipKind`]), a short reason in words for the table, and the long
//! detail (regexes, matched lines, full advice) for the JSON and the per-test log. All
//! pure functions over text, unit-tested on fixture outputs (including the failures a
//! broken kernel produces).

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;

use crate::events::{SkipKind, TestResult};

use super::catalog::{JitCount, Sample, TestBpfExpect};

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
fn tail(out: &str, n: usize) -> String {
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// `key: value` lines the example loaders print.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

fn timed_out(rc: Option<i32>) -> bool {
    rc == Some(RC_KILLED)
}

/// Common shape of the example loaders: `result: ok` + exit 0, else the `error:` line.
fn loader_verdict(out: &str, rc: Option<i32>, what: &str) -> Result<(), Verdict> {
    if rc.is_none() {
        return Err(Verdict::fail(format!(
            "{what} did not finish (the guest stopped during this test)"
        )));
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

/// kernel/btf: btf-check parsed /sys/kernel/btf/vmlinux and found the core structs.
pub fn judge_btf(out: &str, rc: Option<i32>) -> Verdict {
    match loader_verdict(out, rc, "btf-check") {
        Ok(()) => Verdict::pass(format!(
            "vmlinux BTF parses: {} types",
            field(out, "types").unwrap_or("?")
        ))
        .detail(tail(out, 6)),
        Err(v) => v,
    }
}

/// kernel/jit: the runner prints `bpf_jit_enable=<value or "absent">`.
pub fn judge_jit(out: &str) -> Verdict {
    match out
        .lines()
        .find_map(|l| l.trim().strip_prefix("bpf_jit_enable="))
    {
        Some("1") => Verdict::pass("JIT on: net.core.bpf_jit_enable = 1"),
        Some("absent") | None => Verdict::fail("no bpf_jit_enable: built without CONFIG_BPF_JIT")
            .detail(
                "net.core.bpf_jit_enable is absent: the kernel was built without CONFIG_BPF_JIT",
            ),
        Some(v) => {
            Verdict::fail(format!("net.core.bpf_jit_enable = {v}, expected 1")).detail(format!(
            "net.core.bpf_jit_enable = {v}, expected 1 (set CONFIG_BPF_JIT_DEFAULT_ON or sysctl it)"
        ))
        }
    }
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

/// kernel/config: every requested `SYMBOL=value` holds in the running kernel's config.
/// `expected` uses symbols without `CONFIG_` and values as in .config (`y`, `m`, `n`, `"text"`).
pub fn judge_config(out: &str, rc: Option<i32>, expected: &[(String, String)]) -> Verdict {
    let running = parse_config(out);
    if running.is_empty() {
        return Verdict::fail("no /proc/config.gz: needs CONFIG_IKCONFIG_PROC").detail(format!(
            "no /proc/config.gz in the guest (exit {}): the kernel needs CONFIG_IKCONFIG and CONFIG_IKCONFIG_PROC; output: {}",
            rc.map(|c| c.to_string()).unwrap_or_else(|| "none".into()),
            tail(out, 3)
        ));
    }
    if expected.is_empty() {
        return Verdict::skip(
            SkipKind::NotApplicable,
            "no requested options known for this kernel",
        )
        .detail("kernel/config compares /proc/config.gz with the requested options; none were known (no build config)");
    }
    let mut bad = Vec::new();
    for (k, want) in expected {
        let have = running.get(k).map(String::as_str).unwrap_or("n");
        if have != want {
            bad.push(format!("{k}={have} (wanted {want})"));
        }
    }
    if bad.is_empty() {
        let names: Vec<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
        Verdict::pass(format!("{} requested options match", expected.len()))
            .detail(format!("checked in /proc/config.gz: {}", names.join(", ")))
    } else {
        let shown: Vec<_> = bad.iter().take(3).cloned().collect();
        Verdict::fail(format!(
            "{} option(s) differ: {}{}",
            bad.len(),
            shown.join(", "),
            if bad.len() > 3 { ", ..." } else { "" }
        ))
        .detail(format!(
            "{} of {} requested options differ in /proc/config.gz: {}",
            bad.len(),
            expected.len(),
            bad.join(", ")
        ))
    }
}

/// hello: loaded, attached, "Hello, World!" seen in trace_pipe, program gone after detach.
pub fn judge_hello(out: &str, rc: Option<i32>) -> Verdict {
    if let Err(v) = loader_verdict(out, rc, "hello") {
        return v;
    }
    let trace = field(out, "trace").unwrap_or("");
    if !trace.contains("Hello, World!") {
        return Verdict::fail("loader said ok but printed no trace_pipe line with Hello, World!");
    }
    if field(out, "detached").is_none_or(|d| !d.contains("gone")) {
        return Verdict::fail("loader said ok but did not prove the program was unloaded");
    }
    Verdict::pass("kprobe fired: Hello, World!; unloaded after detach").detail(format!(
        "attached: {}; trace_pipe: {}; detached: {}",
        field(out, "attached").unwrap_or("?"),
        trace,
        field(out, "detached").unwrap_or("?")
    ))
}

/// JIT report of cbpf-port80: Some(true) JIT-compiled, Some(false) interpreted, None unknown.
pub fn cbpf_jitted(out: &str) -> Option<bool> {
    let j = field(out, "jit")?;
    if j.starts_with("yes") {
        Some(true)
    } else if j.starts_with("no") {
        Some(false)
    } else {
        None
    }
}

/// cbpf-port80: the filtered socket saw only port-80 packets (TCP and UDP, and IPv6 when
/// the guest has it) while the unfiltered control socket saw the port-81 traffic too.
pub fn judge_cbpf(out: &str, rc: Option<i32>) -> Verdict {
    let jit = field(out, "jit").unwrap_or("unknown").to_string();
    // The short form: `yes`, `no, interpreted`, `no` or `unknown`.
    let jit_short = match jit.split_whitespace().next().unwrap_or("unknown") {
        "no" if jit.contains("interpreted") => "no, interpreted".to_string(),
        w => w.to_string(),
    };
    let counts = format!(
        "control: {}; filtered: {}; JIT: {jit}",
        field(out, "control").unwrap_or("?"),
        field(out, "filtered").unwrap_or("?")
    );
    match loader_verdict(out, rc, "cbpf-port80") {
        Ok(()) => {
            let v6 = field(out, "ipv6").is_some_and(|s| s.starts_with("yes"));
            Verdict::pass(format!(
                "port 80 only (TCP+UDP, IPv4{}); JIT: {jit_short}",
                if v6 { "+IPv6" } else { "" }
            ))
            .detail(counts)
        }
        Err(v) => Verdict::fail(format!("{}; JIT: {jit_short}", v.reason))
            .detail(format!("{}; {counts}", v.detail.unwrap_or(v.reason))),
    }
}

/// core-hello: CO-RE reads of task_struct matched the helper and getpid().
pub fn judge_core(out: &str, rc: Option<i32>) -> Verdict {
    match loader_verdict(out, rc, "core-hello") {
        Ok(()) => Verdict::pass("CO-RE task_struct reads match the kernel's").detail(format!(
            "core: {}; helper: {}",
            field(out, "core").unwrap_or("?"),
            field(out, "helper").unwrap_or("?")
        )),
        Err(v) => v,
    }
}

/// hello-bcc: hello.py printed the greeting.
pub fn judge_bcc(out: &str, rc: Option<i32>) -> Verdict {
    match loader_verdict(out, rc, "hello.py") {
        Ok(()) => Verdict::pass("BCC kprobe fired: Hello, World!").detail(format!(
            "attached: {}; trace: {}",
            field(out, "attached").unwrap_or("?"),
            field(out, "trace").unwrap_or("?")
        )),
        Err(_) if out.contains("Unable to find kernel headers") => Verdict::fail(
            "BCC found no kernel headers (CONFIG_IKHEADERS=m?)",
        )
        .detail(
            "BCC found no kernel headers: build the kernel with CONFIG_IKHEADERS=m, or keep its build tree outside /tmp and /var/tmp so vng shares it",
        ),
        Err(v) => v,
    }
}

/// The `== name` sections of a multi-step test's output (bpftool, bpftrace): name →
/// its lines; `== name rc=N` lines become `name rc` → `N`.
fn sections(out: &str) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    let mut cur = String::new();
    for l in out.lines() {
        if let Some(h) = l.strip_prefix("== ") {
            match h.rsplit_once(" rc=") {
                Some((name, rc)) => {
                    m.insert(format!("{name} rc"), rc.trim().to_string());
                }
                None => {
                    cur = h.trim().to_string();
                    m.entry(cur.clone()).or_default();
                }
            }
        } else if !cur.is_empty() {
            let e = m.entry(cur.clone()).or_default();
            e.push_str(l);
            e.push('\n');
        }
    }
    m
}

/// bpftool: the held hello program is in `prog list` (by id, as a kprobe named hello),
/// gone after it detached; `btf dump` of vmlinux has task_struct; a missing id fails.
pub fn judge_bpftool(out: &str, rc: Option<i32>) -> Verdict {
    if rc.is_none() {
        return Verdict::fail("bpftool did not finish (the guest stopped during this test)");
    }
    if out.contains("labctl: missing bpftool") {
        return Verdict::fail("the kernel's bpftool is not in the guest");
    }
    let sec = sections(out);
    let get = |k: &str| sec.get(k).map(String::as_str).unwrap_or("");
    let Some(id) = get("hello").lines().find_map(|l| {
        l.strip_prefix("holding: prog id ")
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    }) else {
        return Verdict::fail("hello did not stay attached for the listing")
            .detail(format!("hello --hold printed: {}", tail(get("hello"), 5)));
    };
    let listed = |text: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with(&format!("{id}:")) && l.contains("name hello"))
    };
    if get("attached rc") != "0" {
        return Verdict::fail(format!("bpftool prog list exited {}", get("attached rc")))
            .detail(tail(get("attached"), 5));
    }
    if !listed(get("attached")) {
        return Verdict::fail(format!(
            "prog list does not show hello (id {id}) while attached"
        ))
        .detail(tail(get("attached"), 8));
    }
    if get("hello rc") != "0" {
        return Verdict::fail(format!("hello exited {} after detaching", get("hello rc")))
            .detail(tail(get("hello"), 5));
    }
    if get("detached rc") != "0" || listed(get("detached")) {
        return Verdict::fail(format!(
            "prog list still shows hello (id {id}) after detach"
        ))
        .detail(tail(get("detached"), 8));
    }
    let types: u32 = get("btf")
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    if get("btf rc") != "0" || types == 0 {
        return Verdict::fail("bpftool btf dump of /sys/kernel/btf/vmlinux has no task_struct")
            .detail(format!("rc {}: {}", get("btf rc"), tail(get("btf"), 3)));
    }
    let missing = get("missing");
    if get("missing rc") == "0" || get("missing rc").is_empty() {
        return Verdict::fail("bpftool prog show of a missing id did not fail")
            .detail(tail(missing, 3));
    }
    Verdict::pass(format!(
        "hello (id {id}) listed while attached, gone after; btf dump finds task_struct"
    ))
    .detail(format!(
        "missing id: rc {}: {}",
        get("missing rc"),
        tail(missing, 1)
    ))
}

/// bpftrace: the one-liner counted exactly the test's 5 openat calls of its marker file
/// and exited on the stop file; a kprobe on a missing symbol failed with bpftrace's own
/// error.
pub fn judge_bpftrace(out: &str, rc: Option<i32>) -> Verdict {
    if rc.is_none() {
        return Verdict::fail("bpftrace did not finish (the guest stopped during this test)");
    }
    let sec = sections(out);
    let get = |k: &str| sec.get(k).map(String::as_str).unwrap_or("");
    let count = get("count");
    let n: Option<u64> = count.lines().find_map(|l| {
        l.trim()
            .strip_prefix("@opens:")
            .and_then(|v| v.trim().parse().ok())
    });
    if get("count rc") != "0" || n != Some(5) {
        return Verdict::fail(match n {
            Some(n) => format!("bpftrace counted {n} openat calls, the test made 5"),
            None => format!("bpftrace printed no count (exit {})", get("count rc")),
        })
        .detail(tail(count, 6));
    }
    let missing = get("missing");
    if get("missing rc") == "0" || get("missing rc").is_empty() {
        return Verdict::fail("bpftrace attached a kprobe to a missing symbol without an error")
            .detail(tail(missing, 4));
    }
    if !missing.contains("ERROR") {
        return Verdict::fail("bpftrace failed on the missing symbol without its own error")
            .detail(tail(missing, 4));
    }
    Verdict::pass("one-liner counted the 5 openat calls; missing kprobe refused").detail(format!(
        "missing kprobe: {}",
        missing
            .lines()
            .find(|l| l.contains("ERROR"))
            .unwrap_or("")
            .trim()
    ))
}

/// One `test_bpf: [suite: ]Summary: N PASSED, M FAILED[, [J/K JIT'ed]]` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestBpfSummary {
    pub passed: u32,
    pub failed: u32,
    pub jit: Option<(u32, u32)>,
}

/// The main suite's summary plus any sub-suite summaries (tail calls, skb segment).
pub fn parse_test_bpf(out: &str) -> (Option<TestBpfSummary>, Vec<(String, TestBpfSummary)>) {
    let re = Regex::new(
        r"test_bpf: (?:(\w+): )?Summary: (\d+) PASSED, (\d+) FAILED(?:, \[(\d+)/(\d+) JIT'ed\])?",
    )
    .unwrap();
    let mut main = None;
    let mut subs = Vec::new();
    for c in re.captures_iter(out) {
        let n = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
        let s = TestBpfSummary {
            passed: n(2).unwrap_or(0),
            failed: n(3).unwrap_or(0),
            jit: n(4).zip(n(5)),
        };
        match c.get(1) {
            None => main = Some(s),
            Some(name) => subs.push((name.as_str().to_string(), s)),
        }
    }
    (main, subs)
}

/// test_bpf: no failures, and the JIT count is what this kernel is known to JIT
/// (J = 0 when the runner reports the JIT off).
pub fn judge_test_bpf(out: &str, rc: Option<i32>, expect: &TestBpfExpect) -> Verdict {
    let jit_on = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("bpf_jit_enable="))
        .map(|v| v != "0" && v != "absent");
    let (main, subs) = parse_test_bpf(out);
    let Some(s) = main else {
        if out
            .lines()
            .any(|l| l.starts_with("labctl: test_bpf.ko not found"))
        {
            return Verdict::skip(SkipKind::Setup, "no test_bpf.ko in this kernel's modules")
                .detail(
                    "the guest found no test_bpf.ko: build the kernel with CONFIG_TEST_BPF=m (the lab profile sets it) and its modules; for --kernel, pass --obj with lib/test_bpf.ko",
                );
        }
        if timed_out(rc) {
            return Verdict::fail("test_bpf did not finish before its timeout");
        }
        let why = out
            .lines()
            .find(|l| l.contains("insmod") || l.contains("modprobe") || l.contains("not found"))
            .unwrap_or("no summary line in the kernel log");
        return Verdict::fail(format!("no `test_bpf: Summary:` line: {}", why.trim()));
    };
    let sub_text: Vec<String> = subs
        .iter()
        .map(|(n, s)| format!("{n}: {} PASSED, {} FAILED", s.passed, s.failed))
        .collect();
    let sub_detail = if sub_text.is_empty() {
        String::new()
    } else {
        format!("; sub-suites: {}", sub_text.join(", "))
    };
    let sub_failed: Vec<String> = subs
        .iter()
        .filter(|(_, s)| s.failed > 0)
        .map(|(n, s)| format!("{n}: {} FAILED", s.failed))
        .collect();
    if s.failed > 0 || !sub_failed.is_empty() {
        let mut r = format!("{} PASSED, {} FAILED", s.passed, s.failed);
        for x in sub_failed {
            r.push_str("; ");
            r.push_str(&x);
        }
        return Verdict::fail(r).detail(format!(
            "test_bpf: {} PASSED, {} FAILED{sub_detail}",
            s.passed, s.failed
        ));
    }
    let shown = format!(
        "{} PASSED, 0 FAILED, [{} JIT'ed]",
        s.passed,
        s.jit
            .map(|(j, k)| format!("{j}/{k}"))
            .unwrap_or_else(|| "?".into())
    );
    let Some((j, k)) = s.jit else {
        return Verdict::fail(format!("{shown}: the summary has no JIT count"));
    };
    let detail = |want: &str| format!("{shown}; expected {want} JIT'ed{sub_detail}");
    match jit_on {
        Some(false) => {
            if j == 0 {
                Verdict::pass(format!("{shown} (JIT off)")).detail(detail("0 (JIT off)"))
            } else {
                Verdict::fail(format!("{shown}, but the JIT is off: expected 0 JIT'ed"))
                    .detail(detail("0 (JIT off)"))
            }
        }
        _ => {
            let ok = match expect.jit {
                JitCount::All => j == k,
                JitCount::Exact { jited, total } => j == jited && k == total,
            };
            let want = expect.jit.to_string();
            if ok {
                Verdict::pass(shown.clone()).detail(detail(&want))
            } else {
                Verdict::fail(format!("{shown}, expected {want} JIT'ed for this kernel"))
                    .detail(detail(&want))
            }
        }
    }
}

/// samples/<prog>: the expected-output regex matched; the program exited 0, or (for
/// programs that run until stopped) reached its timeout. The reason says in words what
/// the sample's `shows` field says it proves; the regex and the matched line are detail.
pub fn judge_sample(out: &str, rc: Option<i32>, s: &Sample) -> Verdict {
    if out.lines().any(|l| l.starts_with("labctl: missing ")) {
        return Verdict::skip(SkipKind::Setup, "not built in this kernel's samples/bpf").detail(
            format!(
                "{} was not in the guest: it was not built in this kernel's samples/bpf",
                s.name
            ),
        );
    }
    let re = match Regex::new(&s.expect) {
        Ok(r) => r,
        Err(e) => return Verdict::fail(format!("bad expect regex in samples.toml: {e}")),
    };
    if let Some(bad) = s
        .reject
        .as_deref()
        .and_then(|r| Regex::new(r).ok())
        .and_then(|r| r.find(out).map(|m| m.as_str().to_string()))
    {
        let line = out
            .lines()
            .find(|l| l.contains(&bad))
            .unwrap_or(&bad)
            .trim();
        return Verdict::fail(format!("failure seen: {line}")).detail(format!(
            "output matched the failure pattern /{}/: {line}",
            s.reject.as_deref().unwrap_or("")
        ));
    }
    let matched = re.is_match(out);
    // Programs that run until stopped end on SIGINT (exit 0 after their handler, or 130)
    // or SIGKILL.
    let finished_ok =
        rc == Some(0) || (s.runs_forever && matches!(rc, Some(130) | Some(RC_KILLED)));
    let matched_line = || {
        re.find(out)
            .map(|m| {
                let first = m.as_str().lines().next().unwrap_or("");
                out.lines()
                    .find(|l| !first.is_empty() && l.contains(first))
                    .unwrap_or(first)
                    .trim()
                    .to_string()
            })
            .unwrap_or_default()
    };
    match (matched, finished_ok) {
        (true, true) => Verdict::pass(
            s.shows
                .clone()
                .unwrap_or_else(|| "the expected output was seen".into()),
        )
        .detail(format!("output matched /{}/: {}", s.expect, matched_line())),
        (false, _) => {
            let last = out
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("(no output)")
                .trim();
            let how = match rc {
                None => "did not finish".to_string(),
                Some(RC_KILLED) => format!("timed out after {}s", s.timeout_s),
                Some(c) => format!("exit {c}"),
            };
            Verdict::fail(format!(
                "{how}, expected output not seen; last line: {last}"
            ))
            .detail(format!(
                "{how}, output did not match /{}/; last lines: {}",
                s.expect,
                tail(out, 5)
            ))
        }
        (true, false) => {
            let how = match rc {
                None => "did not finish".to_string(),
                Some(RC_KILLED) => format!("timed out after {}s", s.timeout_s),
                Some(c) => format!("exited with {c}"),
            };
            Verdict::fail(format!("expected output seen, but it {how}")).detail(format!(
                "output matched /{}/ ({}), but the program {how}",
                s.expect,
                matched_line()
            ))
        }
    }
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

    #[test]
    fn jit_check_passes_only_on_one() {
        assert_eq!(judge_jit("bpf_jit_enable=1\n").result, TestResult::Pass);
        let v = judge_jit("bpf_jit_enable=absent\n");
        assert_eq!(v.result, TestResult::Fail);
        assert!(v.reason.contains("CONFIG_BPF_JIT"), "{}", v.reason);
        assert_eq!(judge_jit("bpf_jit_enable=0\n").result, TestResult::Fail);
    }

    #[test]
    fn btf_check() {
        let ok = "types: 126610\nstruct task_struct: id 114, 3264 bytes, 248 members\nresult: ok\n";
        let v = judge_btf(ok, Some(0));
        assert_eq!(v.result, TestResult::Pass);
        assert_eq!(v.reason, "vmlinux BTF parses: 126610 types");
        assert!(v.detail.unwrap().contains("task_struct"));
        let bad = "error: cannot parse /sys/kernel/btf/vmlinux: No such file or directory (kernel built without CONFIG_DEBUG_INFO_BTF)\n";
        let v = judge_btf(bad, Some(1));
        assert_eq!(v.result, TestResult::Fail);
        assert!(v.reason.contains("DEBUG_INFO_BTF"));
        // exit 0 without "result: ok" is not a pass
        assert_eq!(judge_btf("types: 3\n", Some(0)).result, TestResult::Fail);
    }

    #[test]
    fn config_agreement() {
        let running =
            "CONFIG_BPF=y\nCONFIG_BPF_JIT=y\n# CONFIG_KPROBES is not set\nCONFIG_TEST_BPF=m\n";
        let want = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            judge_config(running, Some(0), &want(&[("BPF", "y"), ("TEST_BPF", "m")])).result,
            TestResult::Pass
        );
        let v = judge_config(
            running,
            Some(0),
            &want(&[("BPF", "y"), ("KPROBES", "y"), ("DEBUG_INFO_BTF", "y")]),
        );
        assert_eq!(v.result, TestResult::Fail);
        assert!(
            v.reason.contains("KPROBES=n (wanted y)") && v.reason.contains("DEBUG_INFO_BTF=n"),
            "{}",
            v.reason
        );
        // "not set" asked and absent is fine
        assert_eq!(
            judge_config(running, Some(0), &want(&[("FOO", "n")])).result,
            TestResult::Pass
        );
        let v = judge_config(
            "zcat: can't open '/proc/config.gz'\n",
            Some(1),
            &want(&[("BPF", "y")]),
        );
        assert!(v.reason.contains("IKCONFIG_PROC"), "{}", v.reason);
    }

    #[test]
    fn hello_pass_and_the_failures_a_broken_kernel_gives() {
        let f = split_frames(RUN);
        let v = judge_hello(&f.records[1].output, Some(0));
        assert_eq!(v.result, TestResult::Pass, "{}", v.reason);
        assert_eq!(
            v.reason,
            "kprobe fired: Hello, World!; unloaded after detach"
        );
        let d = v.detail.unwrap();
        assert!(
            d.contains("do_sys_openat2") && d.contains("bpf_trace_printk"),
            "{d}"
        );
        // kernel without KPROBES: attach fails
        let nokp = "loaded: prog id 4, jited 76 bytes\nlibbpf: failed to create kprobe 'do_sys_openat2+0x0' perf event: No such file or directory\nerror: attach kprobe do_sys_openat2: No such file or directory (the kernel needs KPROBES and KPROBE_EVENTS)\n";
        let v = judge_hello(nokp, Some(1));
        assert_eq!(v.result, TestResult::Fail);
        assert!(v.reason.contains("KPROBES"), "{}", v.reason);
        // program left loaded
        let v = judge_hello("attached: kprobe do_sys_open\ntrace: x: Hello, World!\nerror: prog id 7 is still loaded after detach\n", Some(1));
        assert!(v.reason.contains("still loaded"));
        // a lying loader (ok without the evidence) fails
        assert_eq!(
            judge_hello("result: ok\n", Some(0)).result,
            TestResult::Fail
        );
        // timeout and missing END
        assert!(judge_hello("", Some(RC_KILLED))
            .reason
            .contains("timed out"));
        assert!(judge_hello("", None).reason.contains("did not finish"));
    }

    const CBPF_OK: &str = "bpf_jit_enable: 1\nipv6: yes\ncontrol: total=32 port80=12 tcp81=8 udp81=4 ipv6=16\nfiltered: total=12 port80=12 other=0 tcp80=8 udp80=4 ipv6=6\njit: yes (JIT image logged for this pid)\nresult: ok\n";

    #[test]
    fn cbpf_filter_and_jit_report() {
        let v = judge_cbpf(CBPF_OK, Some(0));
        assert_eq!(v.result, TestResult::Pass);
        assert!(
            v.reason.contains("IPv4+IPv6") && v.reason.contains("JIT: yes"),
            "{}",
            v.reason
        );
        assert!(v.detail.unwrap().contains("port80=12 tcp81=8"));
        let off = CBPF_OK.replace(
            "jit: yes (JIT image logged for this pid)",
            "jit: no (net.core.bpf_jit_enable=0: interpreted)",
        );
        assert!(judge_cbpf(&off, Some(0))
            .reason
            .ends_with("JIT: no, interpreted"));
        assert_eq!(cbpf_jitted(CBPF_OK), Some(true));
        // kernel without BPF_JIT: still passes the filter, but the JIT report changes
        let nojit = "bpf_jit_enable: absent (kernel built without CONFIG_BPF_JIT)\nipv6: no (no ::1 on lo)\njit: no (no BPF JIT in this kernel)\nresult: ok\n";
        assert_eq!(cbpf_jitted(nojit), Some(false));
        let v = judge_cbpf(nojit, Some(0));
        assert!(v.reason.ends_with("JIT: no"), "{}", v.reason);
        assert!(v.detail.unwrap().contains("JIT: no (no BPF JIT"));
        // filter leaking port 81
        let leak = "filtered: total=20 port80=12 other=8\njit: yes (JIT image logged for this pid)\nerror: the filter let through 8 non-port-80 packets (tcp80=8 udp80=4 ipv6=6)\n";
        let v = judge_cbpf(leak, Some(1));
        assert_eq!(v.result, TestResult::Fail);
        assert!(v.reason.contains("8 non-port-80"), "{}", v.reason);
    }

    #[test]
    fn core_hello() {
        let ok = "loaded: CO-RE relocations applied\ncore: pid=28 tgid=28 comm=core-hello\nhelper: pid=28 tgid=28 hits=5\nresult: ok\n";
        let v = judge_core(ok, Some(0));
        assert_eq!(v.result, TestResult::Pass);
        assert!(
            v.detail.unwrap().contains("pid=28 tgid=28 comm=core-hello"),
            "the values read go into the detail"
        );
        let nobtf = "note: /sys/kernel/btf/vmlinux missing\nlibbpf: failed to find valid kernel BTF\nerror: load core_hello.bpf.o: No such process (CO-RE needs the kernel's BTF at /sys/kernel/btf/vmlinux)\n";
        let v = judge_core(nobtf, Some(1));
        assert_eq!(v.result, TestResult::Fail);
        assert!(v.reason.contains("BTF"));
    }

    #[test]
    fn bcc_hello() {
        let ok = "attached: kprobe do_sys_openat2\ntrace: python3 Hello, World!\nresult: ok\n";
        assert_eq!(judge_bcc(ok, Some(0)).result, TestResult::Pass);
        // the notes' unfixed script: BCC cannot find fn_name="hello_world"
        let notes = "Traceback (most recent call last):\n  File \"hello.py\", line 9, in <module>\nException: Failed to load BPF program b'hello_world': No such file or directory\n";
        let v = judge_bcc(notes, Some(1));
        assert_eq!(v.result, TestResult::Fail);
        assert!(v.reason.contains("hello_world"), "{}", v.reason);
        let noheaders = "Unable to find kernel headers. Try rebuilding kernel with CONFIG_IKHEADERS=m\nException: Failed to compile BPF module b'hello.c'\n";
        let v = judge_bcc(noheaders, Some(1));
        assert!(v.reason.contains("IKHEADERS"));
        assert!(v.detail.unwrap().contains("outside /tmp"));
    }

    fn exp(jit: JitCount) -> TestBpfExpect {
        TestBpfExpect {
            params: vec![],
            jit,
            full: false,
        }
    }

    #[test]
    fn test_bpf_summary_judged_against_the_expected_jit_count() {
        let out = "bpf_jit_enable=1\ntest_bpf: #1 TXA jited:1 65 39 39 PASS\ntest_bpf: Summary: 378 PASSED, 0 FAILED, [365/366 JIT'ed]\ntest_bpf: test_skb_segment: Summary: 2 PASSED, 0 FAILED\n";
        let (m, subs) = parse_test_bpf(out);
        assert_eq!(
            m,
            Some(TestBpfSummary {
                passed: 378,
                failed: 0,
                jit: Some((365, 366))
            })
        );
        assert_eq!(subs.len(), 1);
        let v = judge_test_bpf(
            out,
            Some(0),
            &exp(JitCount::Exact {
                jited: 365,
                total: 366,
            }),
        );
        assert_eq!(v.result, TestResult::Pass, "{}", v.reason);
        assert_eq!(v.reason, "378 PASSED, 0 FAILED, [365/366 JIT'ed]");
        let d = v.detail.unwrap();
        assert!(
            d.contains("expected 365/366") && d.contains("test_skb_segment: 2 PASSED"),
            "{d}"
        );
        // a JIT that compiles fewer programs than this kernel is known to
        let v = judge_test_bpf(
            &out.replace("365/366", "300/366"),
            Some(0),
            &exp(JitCount::Exact {
                jited: 365,
                total: 366,
            }),
        );
        assert_eq!(v.result, TestResult::Fail);
        assert!(v.reason.contains("expected 365/366"));
        // "all" on 6.x
        let six =
            "bpf_jit_enable=1\ntest_bpf: Summary: 1049 PASSED, 0 FAILED, [1037/1037 JIT'ed]\n";
        assert_eq!(
            judge_test_bpf(six, Some(0), &exp(JitCount::All)).result,
            TestResult::Pass
        );
        // a failure
        let v = judge_test_bpf(
            "bpf_jit_enable=1\ntest_bpf: Summary: 377 PASSED, 1 FAILED, [365/366 JIT'ed]\n",
            Some(1),
            &exp(JitCount::All),
        );
        assert_eq!(v.result, TestResult::Fail);
        assert!(v.reason.contains("1 FAILED"));
        // JIT off: J must be 0
        let off = "bpf_jit_enable=0\ntest_bpf: Summary: 378 PASSED, 0 FAILED, [0/366 JIT'ed]\n";
        assert_eq!(
            judge_test_bpf(
                off,
                Some(0),
                &exp(JitCount::Exact {
                    jited: 365,
                    total: 366
                })
            )
            .result,
            TestResult::Pass
        );
        let v = judge_test_bpf(
            &off.replace("[0/366", "[365/366"),
            Some(0),
            &exp(JitCount::All),
        );
        assert_eq!(v.result, TestResult::Fail);
        // a kernel without BPF_JIT: absent sysctl counts as off
        assert_eq!(
            judge_test_bpf(&off.replace("=0", "=absent"), Some(0), &exp(JitCount::All)).result,
            TestResult::Pass
        );
        // sub-suite failure
        let v = judge_test_bpf("bpf_jit_enable=1\ntest_bpf: Summary: 3 PASSED, 0 FAILED, [3/3 JIT'ed]\ntest_bpf: test_tail_calls: Summary: 7 PASSED, 1 FAILED, [8/8 JIT'ed]\n", Some(0), &exp(JitCount::All));
        assert!(
            v.reason.contains("test_tail_calls: 1 FAILED"),
            "{}",
            v.reason
        );
        // no module in the guest: the build, not the kernel, is at fault
        let v = judge_test_bpf(
            "bpf_jit_enable=1\nlabctl: test_bpf.ko not found (kernel without CONFIG_TEST_BPF=m?)\n",
            Some(127),
            &exp(JitCount::All),
        );
        assert_eq!(
            (v.result, v.skip),
            (TestResult::Skip, Some(SkipKind::Setup))
        );
        assert!(v.detail.unwrap().contains("CONFIG_TEST_BPF=m"));
        // insmod failing is a failure
        let v = judge_test_bpf(
            "bpf_jit_enable=1\nmodprobe: module test_bpf not found in modules.dep\n",
            Some(1),
            &exp(JitCount::All),
        );
        assert!(v.reason.contains("not found"), "{}", v.reason);
    }

    fn sample(expect: &str, forever: bool) -> Sample {
        Sample {
            name: "sockex1".into(),
            kind: "socket filter".into(),
            since: "5.4".into(),
            until: None,
            objects: vec![],
            args: vec![],
            trigger: "t".into(),
            pre: None,
            timeout_s: 10,
            expect: expect.into(),
            shows: Some("ICMP bytes counted".into()),
            absent: vec![],
            reject: None,
            runs_forever: forever,
            parallel: false,
            netns: false,
        }
    }

    #[test]
    fn samples_regex_exit_and_timeout() {
        let s = sample(r"ICMP \d+ bytes", false);
        let v = judge_sample("ready\nTCP 0 UDP 0 ICMP 84 bytes\n", Some(0), &s);
        assert_eq!(v.result, TestResult::Pass);
        assert_eq!(
            v.reason, "ICMP bytes counted",
            "the reason is words, no regex"
        );
        assert_eq!(
            v.detail.unwrap(),
            r"output matched /ICMP \d+ bytes/: TCP 0 UDP 0 ICMP 84 bytes"
        );
        let v = judge_sample("failed to load\n", Some(1), &s);
        assert_eq!(v.result, TestResult::Fail);
        assert!(
            v.reason.contains("exit 1") && v.reason.contains("failed to load"),
            "{}",
            v.reason
        );
        assert_eq!(
            judge_sample("TCP 0 UDP 0 ICMP 84 bytes\n", Some(RC_KILLED), &s).result,
            TestResult::Fail
        );
        let forever = sample("ping", true);
        assert_eq!(
            judge_sample("ping-30 ...\n", Some(RC_KILLED), &forever).result,
            TestResult::Pass
        );
        let v = judge_sample("labctl: missing sockex1\n", Some(127), &s);
        assert_eq!(
            (v.result, v.skip),
            (TestResult::Skip, Some(SkipKind::Setup))
        );
        let v = judge_sample("nothing\n", Some(1), &s);
        assert!(
            !v.reason.contains('\\'),
            "no regex in the reason: {}",
            v.reason
        );
        assert!(v.detail.unwrap().contains(r"/ICMP \d+ bytes/"));
        let mut tp = sample(r"prog #0: map ids \d+ \d+", false);
        tp.reject = Some("failed|returns value 0".into());
        assert_eq!(
            judge_sample("prog #0: map ids 4 5\n", Some(0), &tp).result,
            TestResult::Pass
        );
        let v = judge_sample(
            "prog #0: map ids 4 5\nfailed: map #4 returns value 0\n",
            Some(0),
            &tp,
        );
        assert_eq!(v.result, TestResult::Fail);
        assert!(v.reason.contains("map #4 returns value 0"), "{}", v.reason);
    }

    #[test]
    fn bpftool_judge_needs_the_listing_while_attached_and_its_absence_after() {
        let good = "== hello\nloaded: prog id 7, jited 80 bytes\nholding: prog id 7 attached until standard input ends\n== attached\n3: tracing  name x\n7: kprobe  name hello  tag ab  gpl\n== attached rc=0\n== hello rc=0\n== detached\n3: tracing  name x\n== detached rc=0\n== btf\n1\n== btf rc=0\n== missing\nError: get by id (4000000000): No such file or directory\n== missing rc=255\n";
        let v = judge_bpftool(good, Some(0));
        assert_eq!(v.result, crate::events::TestResult::Pass, "{v:?}");
        // Still listed after detach.
        let still = good.replace(
            "== detached\n3: tracing  name x\n",
            "== detached\n7: kprobe  name hello\n",
        );
        assert!(judge_bpftool(&still, Some(0))
            .reason
            .contains("after detach"));
        // Never listed while attached.
        let never = good.replace("7: kprobe  name hello  tag ab  gpl\n", "");
        assert!(judge_bpftool(&never, Some(0))
            .reason
            .contains("while attached"));
        // A missing id that "works" is wrong.
        let neg = good.replace("== missing rc=255", "== missing rc=0");
        assert!(judge_bpftool(&neg, Some(0)).reason.contains("missing id"));
        // No task_struct in the BTF dump.
        let nobtf = good.replace("== btf\n1\n", "== btf\n0\n");
        assert!(judge_bpftool(&nobtf, Some(0))
            .reason
            .contains("task_struct"));
        assert_ne!(
            judge_bpftool("labctl: missing bpftool\n", Some(0)).result,
            crate::events::TestResult::Pass
        );
    }

    #[test]
    fn bpftrace_judge_counts_exactly_and_wants_the_error() {
        let good = "== count\nAttaching 3 probes...\nlabctl-ready\n\n\n@opens: 5\n\n== count rc=0\n== missing\nAttaching 1 probe...\nERROR: Error attaching probe: 'kprobe:labctl_no_such_function'\n== missing rc=255\n";
        assert_eq!(
            judge_bpftrace(good, Some(0)).result,
            crate::events::TestResult::Pass
        );
        let six = good.replace("@opens: 5", "@opens: 6");
        assert!(judge_bpftrace(&six, Some(0)).reason.contains("counted 6"));
        let none = good.replace("@opens: 5\n", "");
        assert!(judge_bpftrace(&none, Some(0)).reason.contains("no count"));
        let attached = good.replace("== missing rc=255", "== missing rc=0");
        assert!(judge_bpftrace(&attached, Some(0))
            .reason
            .contains("without an error"));
        let killed = good.replace(
            "ERROR: Error attaching probe: 'kprobe:labctl_no_such_function'\n",
            "",
        );
        assert!(judge_bpftrace(&killed, Some(0))
            .reason
            .contains("own error"));
    }
}
