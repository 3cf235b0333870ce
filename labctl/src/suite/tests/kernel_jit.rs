//! kernel/jit: `net.core.bpf_jit_enable` is 1 (the runner's `jit` prints it).

use std::time::Duration;

use crate::suite::guest::ScriptCtx;
use crate::suite::parse::Verdict;

use super::{JudgeCtx, SuiteTest};

#[derive(Debug)]
pub struct KernelJit;

impl SuiteTest for KernelJit {
    fn id(&self) -> &str {
        "kernel/jit"
    }
    fn about(&self) -> &str {
        "net.core.bpf_jit_enable is 1"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn guest_script(&self, _ctx: &ScriptCtx) -> String {
        "jit; rc=0\n".to_string()
    }
    fn judge(&self, out: &str, _rc: Option<i32>, _ctx: &JudgeCtx) -> Verdict {
        judge_jit(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TestResult;

    #[test]
    fn jit_check_passes_only_on_one() {
        assert_eq!(judge_jit("bpf_jit_enable=1\n").result, TestResult::Pass);
        let v = judge_jit("bpf_jit_enable=absent\n");
        assert_eq!(v.result, TestResult::Fail);
        assert!(v.reason.contains("CONFIG_BPF_JIT"), "{}", v.reason);
        assert_eq!(judge_jit("bpf_jit_enable=0\n").result, TestResult::Fail);
    }
}
