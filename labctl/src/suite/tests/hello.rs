//! hello: the examples-bpf kprobe hello world: load, attach, `Hello, World!` in trace_pipe, detach.

use std::time::Duration;

use crate::suite::guest::ScriptCtx;
use crate::suite::parse::{field, loader_verdict, Verdict};

use super::{run_example, JudgeCtx, Needs, SuiteTest};

#[derive(Debug)]
pub struct Hello;

impl SuiteTest for Hello {
    fn id(&self) -> &str {
        "hello"
    }
    fn about(&self) -> &str {
        "kprobe hello world: load, attach, Hello, World! in trace_pipe, detach"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn needs(&self) -> Needs {
        Needs::examples()
    }
    fn guest_script(&self, _ctx: &ScriptCtx) -> String {
        run_example(self.timeout().as_secs().max(1), "./hello hello.bpf.o")
    }
    fn judge(&self, out: &str, rc: Option<i32>, _ctx: &JudgeCtx) -> Verdict {
        judge_hello(out, rc)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TestResult;

    const HELLO_OK: &str = "\
loaded: prog id 4, jited 76 bytes
attached: kprobe do_sys_openat2
trace:            hello-26      [000] d...     1.304055: bpf_trace_printk: Hello, World!
detached: prog id 4 is gone
result: ok
";

    #[test]
    fn hello_pass_and_the_failures_a_broken_kernel_gives() {
        let v = judge_hello(HELLO_OK, Some(0));
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
        assert!(judge_hello("", Some(crate::suite::parse::RC_KILLED))
            .reason
            .contains("timed out"));
        assert!(judge_hello("", None).reason.contains("did not finish"));
    }
}
