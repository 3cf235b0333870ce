//! cbpf-port80: tcpdump's `port 80` classic BPF filter on a raw socket, and the JIT report.

use std::time::Duration;

use crate::suite::guest::ScriptCtx;
use crate::suite::parse::{field, loader_verdict, Verdict};

use super::{run_example, JudgeCtx, Needs, SuiteTest};

#[derive(Debug)]
pub struct CbpfPort80;

impl SuiteTest for CbpfPort80 {
    fn id(&self) -> &str {
        "cbpf-port80"
    }
    fn about(&self) -> &str {
        "tcpdump's `port 80` classic BPF filter on a raw socket; JIT report"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn needs(&self) -> Needs {
        Needs::examples()
    }
    fn guest_script(&self, _ctx: &ScriptCtx) -> String {
        // Console loglevel 1 while it runs: the JIT image it has the kernel log
        // (bpf_jit_enable=2) stays in kmsg, off the serial console.
        format!(
            "echo 1 > /proc/sys/kernel/printk 2>/dev/null\n{}echo 4 > /proc/sys/kernel/printk 2>/dev/null\n",
            run_example(self.timeout().as_secs().max(1), "./cbpf-port80")
        )
    }
    fn judge(&self, out: &str, rc: Option<i32>, _ctx: &JudgeCtx) -> Verdict {
        judge_cbpf(out, rc)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TestResult;

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
}
