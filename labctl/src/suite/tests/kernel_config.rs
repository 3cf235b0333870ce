//! kernel/config: `/proc/config.gz` agrees with the requested options ([`JudgeCtx::expected_config`]).

use std::time::Duration;

use crate::events::SkipKind;
use crate::suite::guest::ScriptCtx;
use crate::suite::parse::{parse_config, tail, Verdict};

use super::{JudgeCtx, SuiteTest};

#[derive(Debug)]
pub struct KernelConfig;

impl SuiteTest for KernelConfig {
    fn id(&self) -> &str {
        "kernel/config"
    }
    fn about(&self) -> &str {
        "/proc/config.gz agrees with the requested options"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
    /// It only reads /proc/config.gz: no shared state.
    fn parallel(&self) -> bool {
        true
    }
    fn guest_script(&self, _ctx: &ScriptCtx) -> String {
        let secs = self.timeout().as_secs().max(1);
        format!("run {secs} zcat /proc/config.gz; rc=$?\n")
    }
    fn judge(&self, out: &str, rc: Option<i32>, ctx: &JudgeCtx) -> Verdict {
        judge_config(out, rc, ctx.expected_config)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TestResult;

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
}
