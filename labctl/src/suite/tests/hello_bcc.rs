//! hello-bcc: the notes' BCC hello.py (fixed), in the vng boot on the host's userland
//! (BCC and python from the host; hello.py in the payload under
//! [`VNG_PAYLOAD`](crate::suite::guest::VNG_PAYLOAD)).

use std::time::Duration;

use crate::process::shell_quote;
use crate::suite::guest::{ScriptCtx, VNG_PAYLOAD};
use crate::suite::parse::{field, loader_verdict, Verdict};

use super::{HostTool, JudgeCtx, Needs, SuiteTest};

#[derive(Debug)]
pub struct HelloBcc;

impl SuiteTest for HelloBcc {
    fn id(&self) -> &str {
        "hello-bcc"
    }
    fn about(&self) -> &str {
        "the notes' BCC hello.py (fixed), vng backend, needs BCC on the host"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(600)
    }
    fn needs(&self) -> Needs {
        Needs {
            host: Some(HostTool::Bcc),
            ..Needs::default()
        }
    }
    fn guest_script(&self, ctx: &ScriptCtx) -> String {
        match &ctx.python {
            Some(python) => body(
                python,
                &format!("{VNG_PAYLOAD}/hello-bcc/hello.py"),
                ctx.bcc_kernel_source.as_deref(),
                self.timeout().as_secs(),
            ),
            None => "echo 'labctl: hello-bcc runs in its own vng boot'; rc=0\n".to_string(),
        }
    }
    fn judge(&self, out: &str, rc: Option<i32>, _ctx: &JudgeCtx) -> Verdict {
        judge_bcc(out, rc)
    }
}

fn q(s: &str) -> String {
    shell_quote(std::ffi::OsStr::new(s))
}

/// hello-bcc's lines in the vng script. `kernel_source`: the kernel build folder for
/// BCC's headers (`BCC_KERNEL_SOURCE`).
fn body(python: &str, hello_py: &str, kernel_source: Option<&str>, timeout_s: u64) -> String {
    let env = kernel_source
        .map(|k| format!("BCC_KERNEL_SOURCE={} ", q(k)))
        .unwrap_or_default();
    format!(
        "{env}timeout -s KILL {timeout_s} {} {} 2>&1; rc=$?\n",
        q(python),
        q(hello_py)
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TestResult;

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
}
