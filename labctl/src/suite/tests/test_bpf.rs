//! test_bpf: lib/test_bpf.ko's self-test, judged against the JIT count this kernel is
//! known to reach (`examples-bpf/test_bpf.toml`, per architecture and version series).

use std::time::Duration;

use regex::Regex;

use crate::arch::Arch;
use crate::events::SkipKind;
use crate::process::shell_quote;
use crate::suite::catalog::{test_bpf_expect, JitCount, TestBpfExpect, TEST_BPF_TOML};
use crate::suite::guest::ScriptCtx;
use crate::suite::parse::{timed_out, Verdict};
use crate::suite::SuiteError;
use crate::version::KernelVersion;

use super::{JudgeCtx, Needs, SuiteTest};

fn q(s: &str) -> String {
    shell_quote(std::ffi::OsStr::new(s))
}

/// test_bpf with this kernel's expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct TestBpf {
    pub expect: TestBpfExpect,
    pub timeout: Duration,
    pub about: String,
}

impl TestBpf {
    /// The expectation test_bpf.toml gives for `v` on `arch` (`full`: the whole set);
    /// without one, the whole set with every program JIT'ed.
    pub fn for_kernel(v: &KernelVersion, full: bool, arch: &Arch) -> Result<Self, SuiteError> {
        let (expect, timeout) = test_bpf_expect(TEST_BPF_TOML, v, full, arch)?.unwrap_or((
            TestBpfExpect {
                params: vec![],
                jit: JitCount::All,
                full,
            },
            Duration::from_secs(300),
        ));
        Ok(Self::new(expect, timeout))
    }
    pub fn new(expect: TestBpfExpect, timeout: Duration) -> Self {
        let about = if expect.params.is_empty() {
            format!("lib/test_bpf.ko, whole set, expect {} JIT'ed", expect.jit)
        } else {
            format!(
                "lib/test_bpf.ko {}, expect {} JIT'ed",
                expect.params.join(" "),
                expect.jit
            )
        };
        TestBpf {
            expect,
            timeout,
            about,
        }
    }
}

impl SuiteTest for TestBpf {
    fn id(&self) -> &str {
        "test_bpf"
    }
    fn about(&self) -> &str {
        &self.about
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    /// CPU-bound: it overlaps with the serial tests on 2 vCPUs.
    fn parallel(&self) -> bool {
        true
    }
    /// Hundreds of programs JIT-compiled and run in the kernel: CPU, nothing timed.
    fn nice(&self) -> bool {
        true
    }
    fn needs(&self) -> Needs {
        Needs {
            test_bpf_ko: true,
            ..Needs::default()
        }
    }
    fn guest_script(&self, ctx: &ScriptCtx) -> String {
        let secs = self.timeout().as_secs().max(1);
        let e = &self.expect;
        {
            let params: Vec<String> = e.params.iter().map(|p| q(p)).collect();
            let find = match &ctx.test_bpf_ko {
                Some(p) => format!("M={}\n[ -r \"$M\" ] || M=$(find /lib/modules -name 'test_bpf.ko*' 2>/dev/null | head -n 1)\n", q(p)),
                None => "M=$(find /lib/modules -name 'test_bpf.ko*' 2>/dev/null | head -n 1)\n".to_string(),
            };
            format!(
                "jit\ndmesg -c > /dev/null 2>&1\n{find}\
if [ -z \"$M\" ]; then echo \"labctl: test_bpf.ko not found (kernel without CONFIG_TEST_BPF=m?)\"; rc=127\n\
else run {secs} insmod \"$M\"{}{} > /dev/null; rc=$?; dmesg | grep 'test_bpf:'; rmmod test_bpf 2>/dev/null; fi\n",
                if params.is_empty() { "" } else { " " },
                params.join(" ")
            )
        }
    }
    fn judge(&self, out: &str, rc: Option<i32>, _ctx: &JudgeCtx) -> Verdict {
        judge_test_bpf(out, rc, &self.expect)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::SkipKind;
    use crate::events::TestResult;

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
}
