//! kernel/btf: `/sys/kernel/btf/vmlinux` is present and parses (examples-bpf's btf-check).

use std::time::Duration;

use crate::suite::guest::ScriptCtx;
use crate::suite::parse::{field, loader_verdict, tail, Verdict};

use super::{JudgeCtx, Needs, SuiteTest};

#[derive(Debug)]
pub struct KernelBtf;

impl SuiteTest for KernelBtf {
    fn id(&self) -> &str {
        "kernel/btf"
    }
    fn about(&self) -> &str {
        "BTF at /sys/kernel/btf/vmlinux is present and parses"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn needs(&self) -> Needs {
        Needs {
            examples: true,
            ..Needs::default()
        }
    }
    /// btf-check only reads /sys/kernel/btf/vmlinux: no shared state.
    fn parallel(&self) -> bool {
        true
    }
    /// Parses all of vmlinux's BTF: CPU, nothing timed.
    fn nice(&self) -> bool {
        true
    }
    fn guest_script(&self, _ctx: &ScriptCtx) -> String {
        let secs = self.timeout().as_secs().max(1);
        format!("run {secs} $S/bin/btf-check; rc=$?\n")
    }
    fn judge(&self, out: &str, rc: Option<i32>, _ctx: &JudgeCtx) -> Verdict {
        judge_btf(out, rc)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TestResult;

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
}
