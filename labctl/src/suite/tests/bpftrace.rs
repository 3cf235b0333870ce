//! bpftrace: the host's bpftrace in the vng boot (with hello-bcc): a one-liner counts
//! the openat calls the test makes; a kprobe on a missing symbol fails.

use std::time::Duration;

use crate::process::shell_quote;
use crate::suite::guest::ScriptCtx;
use crate::suite::parse::{tail, unfinished, Verdict};

use super::bpftool::sections;
use super::{HostTool, JudgeCtx, Needs, SuiteTest};

#[derive(Debug)]
pub struct Bpftrace;

impl SuiteTest for Bpftrace {
    fn id(&self) -> &str {
        "bpftrace"
    }
    fn about(&self) -> &str {
        "a bpftrace one-liner counts openat calls; a missing kprobe fails (vng)"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(300)
    }
    fn needs(&self) -> Needs {
        Needs {
            host: Some(HostTool::Bpftrace),
            ..Needs::default()
        }
    }
    fn guest_script(&self, ctx: &ScriptCtx) -> String {
        match &ctx.bpftrace {
            Some(b) => body(b, self.timeout().as_secs()),
            None => "echo 'labctl: bpftrace runs in the vng boot'; rc=0\n".to_string(),
        }
    }
    fn judge(&self, out: &str, rc: Option<i32>, _ctx: &JudgeCtx) -> Verdict {
        judge_bpftrace(out, rc)
    }
}

fn q(s: &str) -> String {
    shell_quote(std::ffi::OsStr::new(s))
}

/// bpftrace's lines in the vng script: a one-liner on `kprobe:do_sys_openat2` (5.6+; no
/// headers needed, unlike tracepoint arguments on kernels whose bpftrace needs them)
/// counts the openat calls of a marker file (the test makes exactly 5) and exits when
/// the stop file is opened; then a kprobe
/// on a symbol that does not exist must fail. Each bpftrace is bounded by `timeout`.
fn body(bpftrace: &str, timeout_s: u64) -> String {
    let b = q(bpftrace);
    let half = (timeout_s / 2).max(10);
    format!(
        r#"D=/tmp/labctl-bpftrace; rm -rf $D; mkdir -p $D; echo x > $D/marker; echo x > $D/stop; echo x > $D/ping
timeout -s KILL {half} {b} -B line -e 'kprobe:do_sys_openat2 /@ready == 0 && str(uptr(arg1)) == "'$D'/ping"/ {{ printf("labctl-ready\n"); @ready = 1; }} kprobe:do_sys_openat2 /str(uptr(arg1)) == "'$D'/marker"/ {{ @opens = count(); }} kprobe:do_sys_openat2 /str(uptr(arg1)) == "'$D'/stop"/ {{ exit(); }} END {{ clear(@ready); }}' > $D/out 2>&1 &
BP=$!
# Probes attach after bpftrace starts (BEGIN would fire before them): open the ping
# file until a probe answers (a whole line: bpftrace echoes the program in warnings).
i=0; while [ $i -lt {polls} ] && ! grep -qx labctl-ready $D/out 2>/dev/null && kill -0 $BP 2>/dev/null; do cat $D/ping > /dev/null 2>&1; sleep 0.2; i=$((i+1)); done
for n in 1 2 3 4 5; do cat $D/marker > /dev/null; done
cat $D/stop > /dev/null
wait $BP; brc=$?
echo "== count"; cat $D/out
echo "== count rc=$brc"
echo "== missing"; timeout -s KILL {half} {b} -e 'kprobe:labctl_no_such_function {{ exit(); }}' 2>&1 < /dev/null
echo "== missing rc=$?"
rc=0
"#,
        polls = half * 5,
    )
}

/// bpftrace: the one-liner counted exactly the test's 5 openat calls of its marker file
/// and exited on the stop file; a kprobe on a missing symbol failed with bpftrace's own
/// error.
pub fn judge_bpftrace(out: &str, rc: Option<i32>) -> Verdict {
    if let Some(v) = unfinished(rc, "bpftrace") {
        return v;
    }
    let sec = sections(out);
    let get = |k: &str| sec.get(k).map(String::as_str).unwrap_or("");
    let count = get("count");
    let n: Option<u64> = count.lines().find_map(|l| {
        l.trim()
            .strip_prefix("@opens:")
            .and_then(|v| v.trim().parse().ok())
    });
    if get("count rc") != "0" || n != Some(5) {
        return Verdict::fail(match n {
            Some(n) => format!("bpftrace counted {n} openat calls, the test made 5"),
            None => format!("bpftrace printed no count (exit {})", get("count rc")),
        })
        .detail(tail(count, 6));
    }
    let missing = get("missing");
    if get("missing rc") == "0" || get("missing rc").is_empty() {
        return Verdict::fail("bpftrace attached a kprobe to a missing symbol without an error")
            .detail(tail(missing, 4));
    }
    if !missing.contains("ERROR") {
        return Verdict::fail("bpftrace failed on the missing symbol without its own error")
            .detail(tail(missing, 4));
    }
    Verdict::pass("one-liner counted the 5 openat calls; missing kprobe refused").detail(format!(
        "missing kprobe: {}",
        missing
            .lines()
            .find(|l| l.contains("ERROR"))
            .unwrap_or("")
            .trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpftrace_judge_counts_exactly_and_wants_the_error() {
        let good = "== count\nAttaching 3 probes...\nlabctl-ready\n\n\n@opens: 5\n\n== count rc=0\n== missing\nAttaching 1 probe...\nERROR: Error attaching probe: 'kprobe:labctl_no_such_function'\n== missing rc=255\n";
        assert_eq!(
            judge_bpftrace(good, Some(0)).result,
            crate::events::TestResult::Pass
        );
        let six = good.replace("@opens: 5", "@opens: 6");
        assert!(judge_bpftrace(&six, Some(0)).reason.contains("counted 6"));
        let none = good.replace("@opens: 5\n", "");
        assert!(judge_bpftrace(&none, Some(0)).reason.contains("no count"));
        let attached = good.replace("== missing rc=255", "== missing rc=0");
        assert!(judge_bpftrace(&attached, Some(0))
            .reason
            .contains("without an error"));
        let killed = good.replace(
            "ERROR: Error attaching probe: 'kprobe:labctl_no_such_function'\n",
            "",
        );
        assert!(judge_bpftrace(&killed, Some(0))
            .reason
            .contains("own error"));
    }
}
