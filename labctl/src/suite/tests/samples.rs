//! samples/<prog>: one generic impl over the samples/bpf programs that
//! `examples-bpf/samples.toml` lists ([`Sample`]): the program and its objects from the
//! build, `pre` commands, an own network namespace (`netns`), and a judge by regex.

use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use crate::arch::Arch;
use crate::events::SkipKind;
use crate::process::shell_quote;
use crate::suite::catalog::{parse_samples, Sample, SAMPLES_TOML};
use crate::suite::guest::ScriptCtx;
use crate::suite::parse::{tail, Verdict, RC_KILLED};
use crate::suite::SuiteError;
use crate::version::KernelVersion;

use super::{JudgeCtx, Needs, SampleFiles, SuiteTest};

fn q(s: &str) -> String {
    shell_quote(std::ffi::OsStr::new(s))
}

/// One samples/bpf program as a test.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleTest {
    pub sample: Sample,
    id: String,
    about: String,
}

impl SampleTest {
    pub fn new(sample: Sample) -> Self {
        SampleTest {
            id: format!("samples/{}", sample.name),
            about: format!("{}: {}", sample.kind, sample.trigger),
            sample,
        }
    }
}

/// The embedded list's programs that exist in kernel `v`, in file order.
pub fn for_kernel(v: &KernelVersion) -> Result<Vec<Arc<dyn SuiteTest>>, SuiteError> {
    let mut out: Vec<Arc<dyn SuiteTest>> = Vec::new();
    for s in parse_samples(SAMPLES_TOML)? {
        if s.exists_in(v)? {
            out.push(Arc::new(SampleTest::new(s)));
        }
    }
    Ok(out)
}

impl SuiteTest for SampleTest {
    fn id(&self) -> &str {
        &self.id
    }
    fn about(&self) -> &str {
        &self.about
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.sample.timeout_s)
    }
    /// Mostly-sleeping samples (5 s loops of `sleep 1`) overlap with the serial tests.
    fn parallel(&self) -> bool {
        self.sample.parallel
    }
    fn nice(&self) -> bool {
        self.sample.nice
    }
    /// A sample stopped on its output (`stop_on`) needs examples-bpf's ptyrun.
    fn needs(&self) -> Needs {
        Needs {
            sample: Some(SampleFiles {
                program: self.sample.name.clone(),
                objects: self.sample.objects.clone(),
            }),
            examples: self.sample.stop_on.is_some(),
            ..Needs::default()
        }
    }
    /// An `absent` range covering `kernel` (versions were checked by `parse_samples`).
    fn not_applicable(&self, kernel: &KernelVersion, _arch: &Arch) -> Option<String> {
        self.sample
            .absent_in(kernel)
            .ok()
            .flatten()
            .map(str::to_string)
    }
    fn guest_script(&self, _ctx: &ScriptCtx) -> String {
        let secs = self.timeout().as_secs().max(1);
        let s = &self.sample;
        {
            let args: Vec<String> = s.args.iter().map(|a| q(a)).collect();
            let runner = match (&s.stop_on, s.runs_forever) {
                (Some(re), _) => format!("run_until {secs} {}", q(re)),
                (None, true) => format!("run_int {secs}"),
                (None, false) => format!("run {secs}"),
            };
            let name = format!("./{}", s.name);
            if s.netns {
                // A namespace held by a sleeping process; `pre` and the program enter it.
                let pre = s
                    .pre
                    .as_deref()
                    .map(|p| format!("nsenter -t $NS -n sh -c {}\n", q(p)))
                    .unwrap_or_default();
                return format!(
                    "cd $S/samples\nif [ ! -x {name} ]; then echo \"labctl: missing {n}\"; rc=127\n\
elif ! netns {hold}; then echo \"labctl: no network namespace for {n} (CONFIG_NET_NS)\"; rc=127; kill $NS 2>/dev/null\n\
else\n{pre}{runner} nsenter -t $NS -n {name}{sp}{args}; rc=$?; kill $NS 2>/dev/null\nfi\ncd /\n",
                    n = s.name,
                    hold = secs + 30,
                    sp = if args.is_empty() { "" } else { " " },
                    args = args.join(" ")
                );
            }
            let pre = s
                .pre
                .as_deref()
                .map(|p| format!("{p}\n"))
                .unwrap_or_default();
            format!(
                "cd $S/samples\nif [ ! -x {name} ]; then echo \"labctl: missing {n}\"; rc=127\nelse\n{pre}{runner} {name}{sp}{args}; rc=$?\nfi\ncd /\n",
                n = s.name,
                sp = if args.is_empty() { "" } else { " " },
                args = args.join(" ")
            )
        }
    }
    fn judge(&self, out: &str, rc: Option<i32>, _ctx: &JudgeCtx) -> Verdict {
        judge_sample(out, rc, &self.sample)
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
    use crate::events::SkipKind;
    use crate::events::TestResult;

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
            stop_on: None,
            parallel: false,
            nice: false,
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
}
