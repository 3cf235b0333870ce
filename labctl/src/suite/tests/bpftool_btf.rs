//! bpftool/btf: the kernel's own bpftool dumps the running kernel's BTF
//! (`btf dump file /sys/kernel/btf/vmlinux`) and the dump holds `task_struct`. Split from
//! `bpftool` so it runs in the parallel batch: the dump is the CPU-bound part (about 2 s
//! under TCG on 5.10, 49k types), and unlike `prog list` of a held hello it reads no
//! shared state (trace_pipe), so nothing else has to wait for it.

use std::time::Duration;

use crate::suite::guest::{ScriptCtx, GUEST_BPFTOOL};
use crate::suite::parse::{tail, Verdict};

use super::bpftool::sections;
use super::{JudgeCtx, Needs, SuiteTest};

#[derive(Debug)]
pub struct BpftoolBtf;

impl SuiteTest for BpftoolBtf {
    fn id(&self) -> &str {
        "bpftool/btf"
    }
    fn about(&self) -> &str {
        "the kernel's bpftool: btf dump of /sys/kernel/btf/vmlinux holds task_struct"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn parallel(&self) -> bool {
        true
    }
    fn needs(&self) -> Needs {
        Needs {
            bpftool: true,
            ..Needs::default()
        }
    }
    /// The whole dump is searched in the guest, not through `run`'s 1 MB output cap: on
    /// 7.1.8 the dump is 5.6 MB and task_struct is type 52518, at line 124731.
    fn guest_script(&self, _ctx: &ScriptCtx) -> String {
        let secs = self.timeout().as_secs().max(1);
        format!(
            r#"B={bpftool}
if [ ! -x "$B" ]; then echo "labctl: missing bpftool"; rc=127
else
echo "== btf"; timeout -s KILL {secs} "$B" btf dump file /sys/kernel/btf/vmlinux > /tmp/labctl-btf.txt 2>&1 < /dev/null; r=$?; echo "== btf rc=$r"
[ $r = 0 ] || tail -n 3 /tmp/labctl-btf.txt
grep -c "STRUCT 'task_struct'" /tmp/labctl-btf.txt; rm -f /tmp/labctl-btf.txt
rc=0
fi
"#,
            bpftool = GUEST_BPFTOOL,
        )
    }
    fn judge(&self, out: &str, rc: Option<i32>, _ctx: &JudgeCtx) -> Verdict {
        judge_bpftool_btf(out, rc)
    }
}

/// The dump exited 0 and its last line (grep's count of `STRUCT 'task_struct'`) is > 0.
pub fn judge_bpftool_btf(out: &str, rc: Option<i32>) -> Verdict {
    if rc.is_none() {
        return Verdict::fail("bpftool btf dump did not finish (the guest stopped during it)");
    }
    if out.contains("labctl: missing bpftool") {
        return Verdict::fail("the kernel's bpftool is not in the guest");
    }
    let sec = sections(out);
    let get = |k: &str| sec.get(k).map(String::as_str).unwrap_or("");
    let found: u32 = get("btf")
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    if get("btf rc") != "0" || found == 0 {
        return Verdict::fail("bpftool btf dump of /sys/kernel/btf/vmlinux has no task_struct")
            .detail(format!("rc {}: {}", get("btf rc"), tail(get("btf"), 3)));
    }
    Verdict::pass("btf dump of vmlinux finds task_struct")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TestResult;

    #[test]
    fn btf_judge_needs_a_clean_dump_with_task_struct() {
        let good = "== btf\n== btf rc=0\n1\n";
        assert_eq!(judge_bpftool_btf(good, Some(0)).result, TestResult::Pass);
        // The count line comes after the rc line: the last line of the section.
        let none = "== btf\n== btf rc=0\n0\n";
        assert!(judge_bpftool_btf(none, Some(0))
            .reason
            .contains("task_struct"));
        let failed = "== btf\nError: failed to load BTF\n== btf rc=255\n0\n";
        assert_eq!(judge_bpftool_btf(failed, Some(0)).result, TestResult::Fail);
        assert_eq!(
            judge_bpftool_btf("labctl: missing bpftool\n", Some(0)).result,
            TestResult::Fail
        );
        assert_eq!(judge_bpftool_btf(good, None).result, TestResult::Fail);
    }
}
