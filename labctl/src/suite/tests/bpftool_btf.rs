//! bpftool/btf: the kernel's own bpftool dumps the running kernel's BTF
//! (`btf dump file /sys/kernel/btf/vmlinux`) and the dump holds `task_struct` with a size
//! and members. Split from `bpftool` so it runs in the parallel batch: unlike `prog list`
//! of a held hello it reads no shared state (trace_pipe), so nothing else waits for it.

use std::time::Duration;

use crate::suite::guest::ScriptCtx;
use crate::suite::parse::{tail, Verdict};

use super::bpftool::sections;
use super::{bpftool_missing, with_bpftool, JudgeCtx, Needs, SuiteTest};

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
    /// Parses all of vmlinux's BTF: CPU, nothing timed.
    fn nice(&self) -> bool {
        true
    }
    fn needs(&self) -> Needs {
        Needs {
            bpftool: true,
            ..Needs::default()
        }
    }
    /// The dump streams into `grep -m1`, which stops it at task_struct: the whole dump
    /// is never written or held (4 MB on 5.10, 5.6 MB on 7.1.8, where task_struct is type
    /// 52518 at line 124731, past `run`'s 1 MB output cap). bpftool parses the whole BTF
    /// before it prints a line, so a BTF it cannot read still fails here. Writing the dump
    /// to a file and searching it took 11.5 s of a 5.10 suite under TCG; the stream, 0.1 s.
    fn guest_script(&self, _ctx: &ScriptCtx) -> String {
        let secs = self.timeout().as_secs().max(1);
        with_bpftool(&format!(
            r#"echo "== btf"; timeout -s KILL {secs} "$B" btf dump file /sys/kernel/btf/vmlinux 2> /tmp/labctl-btf.err < /dev/null | grep -m1 "STRUCT 'task_struct'"; r=$?; echo "== btf rc=$r"
[ $r = 0 ] || tail -n 3 /tmp/labctl-btf.err; rm -f /tmp/labctl-btf.err
"#
        ))
    }
    fn judge(&self, out: &str, rc: Option<i32>, _ctx: &JudgeCtx) -> Verdict {
        judge_bpftool_btf(out, rc)
    }
}

/// grep found task_struct in the dump (`== btf rc=0`), as bpftool prints a struct:
/// `[124] STRUCT 'task_struct' size=6144 vlen=145`, with a size and members.
pub fn judge_bpftool_btf(out: &str, rc: Option<i32>) -> Verdict {
    if let Some(v) = bpftool_missing(out, rc, "bpftool btf dump") {
        return v;
    }
    let sec = sections(out);
    let get = |k: &str| sec.get(k).map(String::as_str).unwrap_or("");
    let line = get("btf")
        .lines()
        .find(|l| l.contains("STRUCT 'task_struct'"))
        .unwrap_or("");
    let num = |key: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let id = line
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map(|(id, _)| id);
    let (size, vlen) = (num("size="), num("vlen="));
    match id {
        Some(id) if get("btf rc") == "0" && size > 0 && vlen > 0 => Verdict::pass(format!(
            "btf dump of vmlinux: task_struct is type {id} ({size} bytes, {vlen} members)"
        )),
        _ => Verdict::fail("bpftool btf dump of /sys/kernel/btf/vmlinux has no task_struct")
            .detail(format!("rc {}: {}", get("btf rc"), tail(get("btf"), 3))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TestResult;

    #[test]
    fn btf_judge_needs_task_struct_with_a_size_and_members() {
        let good = "== btf\n[124] STRUCT 'task_struct' size=6144 vlen=145\n== btf rc=0\n";
        let v = judge_bpftool_btf(good, Some(0));
        assert_eq!(v.result, TestResult::Pass, "{v:?}");
        assert!(
            v.reason.contains("type 124 (6144 bytes, 145 members)"),
            "{}",
            v.reason
        );
        // grep found nothing: no task_struct in the dump.
        let none = "== btf\n== btf rc=1\n";
        assert!(judge_bpftool_btf(none, Some(0))
            .reason
            .contains("task_struct"));
        // A BTF bpftool cannot load (the seed's error): nothing dumped, its stderr shown.
        let failed = "== btf\n== btf rc=1\nError: failed to load BTF from /sys/kernel/btf/vmlinux: No such file or directory\n";
        let v = judge_bpftool_btf(failed, Some(0));
        assert_eq!(v.result, TestResult::Fail);
        assert!(v.detail.unwrap().contains("failed to load BTF"));
        // An empty struct is not the kernel's task_struct.
        let empty = good.replace("size=6144 vlen=145", "size=0 vlen=0");
        assert_eq!(judge_bpftool_btf(&empty, Some(0)).result, TestResult::Fail);
        assert_eq!(
            judge_bpftool_btf("labctl: missing bpftool\n", Some(0)).result,
            TestResult::Fail
        );
        assert_eq!(judge_bpftool_btf(good, None).result, TestResult::Fail);
    }
}
