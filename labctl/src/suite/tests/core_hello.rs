//! core-hello: CO-RE reads of task_struct, one object for every kernel (examples-bpf).

use std::time::Duration;

use crate::suite::guest::ScriptCtx;
use crate::suite::parse::{field, loader_verdict, Verdict};

use super::{run_example, JudgeCtx, Needs, SuiteTest};

#[derive(Debug)]
pub struct CoreHello;

impl SuiteTest for CoreHello {
    fn id(&self) -> &str {
        "core-hello"
    }
    fn about(&self) -> &str {
        "CO-RE task_struct reads, one object for every kernel"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn needs(&self) -> Needs {
        Needs::examples()
    }
    fn guest_script(&self, _ctx: &ScriptCtx) -> String {
        run_example(
            self.timeout().as_secs().max(1),
            "./core-hello core_hello.bpf.o",
        )
    }
    fn judge(&self, out: &str, rc: Option<i32>, _ctx: &JudgeCtx) -> Verdict {
        judge_core(out, rc)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TestResult;

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
}
