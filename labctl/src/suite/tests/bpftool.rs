//! bpftool: the kernel's own bpftool (made from the build's tree, in the hermetic guest):
//! `prog list` shows the hello program while it is attached and not after, and a missing
//! id is an error. Its `btf dump` half is `bpftool/btf`, in the parallel batch.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::suite::guest::ScriptCtx;
use crate::suite::parse::{tail, Verdict};

use super::{bpftool_missing, with_bpftool, JudgeCtx, Needs, SuiteTest};

#[derive(Debug)]
pub struct Bpftool;

impl SuiteTest for Bpftool {
    fn id(&self) -> &str {
        "bpftool"
    }
    fn about(&self) -> &str {
        "the kernel's bpftool: prog list while hello is attached and after, a missing id"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn needs(&self) -> Needs {
        Needs {
            examples: true,
            bpftool: true,
            ..Needs::default()
        }
    }
    fn guest_script(&self, _ctx: &ScriptCtx) -> String {
        with_bpftool(
            r#"rm -f /tmp/labctl-hold /tmp/labctl-hold.out; mkfifo /tmp/labctl-hold
(cd $S/bin && exec ./hello hello.bpf.o --hold < /tmp/labctl-hold > /tmp/labctl-hold.out 2>&1) &
HP=$!
exec 3> /tmp/labctl-hold
i=0; while [ $i -lt 200 ] && ! grep -q '^holding:' /tmp/labctl-hold.out && kill -0 $HP 2>/dev/null; do sleep 0.1; i=$((i+1)); done
echo "== hello"; cat /tmp/labctl-hold.out
echo "== attached"; run 20 "$B" prog list
echo "== attached rc=$?"
exec 3>&-
wait $HP; echo "== hello rc=$?"
echo "== detached"; run 20 "$B" prog list
echo "== detached rc=$?"
echo "== missing"; run 20 "$B" prog show id 4000000000
echo "== missing rc=$?"
"#,
        )
    }
    fn judge(&self, out: &str, rc: Option<i32>, _ctx: &JudgeCtx) -> Verdict {
        judge_bpftool(out, rc)
    }
}

/// The `== name` sections of a multi-step test's output (bpftool, bpftrace): name →
/// its lines; `== name rc=N` lines become `name rc` → `N`.
pub(crate) fn sections(out: &str) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    let mut cur = String::new();
    for l in out.lines() {
        if let Some(h) = l.strip_prefix("== ") {
            match h.rsplit_once(" rc=") {
                Some((name, rc)) => {
                    m.insert(format!("{name} rc"), rc.trim().to_string());
                }
                None => {
                    cur = h.trim().to_string();
                    m.entry(cur.clone()).or_default();
                }
            }
        } else if !cur.is_empty() {
            let e = m.entry(cur.clone()).or_default();
            e.push_str(l);
            e.push('\n');
        }
    }
    m
}

/// bpftool: the held hello program is in `prog list` (by id, as a kprobe named hello),
/// gone after it detached; a missing id fails.
pub fn judge_bpftool(out: &str, rc: Option<i32>) -> Verdict {
    if let Some(v) = bpftool_missing(out, rc, "bpftool") {
        return v;
    }
    let sec = sections(out);
    let get = |k: &str| sec.get(k).map(String::as_str).unwrap_or("");
    let Some(id) = get("hello").lines().find_map(|l| {
        l.strip_prefix("holding: prog id ")
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    }) else {
        return Verdict::fail("hello did not stay attached for the listing")
            .detail(format!("hello --hold printed: {}", tail(get("hello"), 5)));
    };
    let listed = |text: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with(&format!("{id}:")) && l.contains("name hello"))
    };
    if get("attached rc") != "0" {
        return Verdict::fail(format!("bpftool prog list exited {}", get("attached rc")))
            .detail(tail(get("attached"), 5));
    }
    if !listed(get("attached")) {
        return Verdict::fail(format!(
            "prog list does not show hello (id {id}) while attached"
        ))
        .detail(tail(get("attached"), 8));
    }
    if get("hello rc") != "0" {
        return Verdict::fail(format!("hello exited {} after detaching", get("hello rc")))
            .detail(tail(get("hello"), 5));
    }
    if get("detached rc") != "0" || listed(get("detached")) {
        return Verdict::fail(format!(
            "prog list still shows hello (id {id}) after detach"
        ))
        .detail(tail(get("detached"), 8));
    }
    let missing = get("missing");
    if get("missing rc") == "0" || get("missing rc").is_empty() {
        return Verdict::fail("bpftool prog show of a missing id did not fail")
            .detail(tail(missing, 3));
    }
    Verdict::pass(format!(
        "hello (id {id}) listed while attached, gone after; a missing id is refused"
    ))
    .detail(format!(
        "missing id: rc {}: {}",
        get("missing rc"),
        tail(missing, 1)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpftool_judge_needs_the_listing_while_attached_and_its_absence_after() {
        let good = "== hello\nloaded: prog id 7, jited 80 bytes\nholding: prog id 7 attached until standard input ends\n== attached\n3: tracing  name x\n7: kprobe  name hello  tag ab  gpl\n== attached rc=0\n== hello rc=0\n== detached\n3: tracing  name x\n== detached rc=0\n== missing\nError: get by id (4000000000): No such file or directory\n== missing rc=255\n";
        let v = judge_bpftool(good, Some(0));
        assert_eq!(v.result, crate::events::TestResult::Pass, "{v:?}");
        // Still listed after detach.
        let still = good.replace(
            "== detached\n3: tracing  name x\n",
            "== detached\n7: kprobe  name hello\n",
        );
        assert!(judge_bpftool(&still, Some(0))
            .reason
            .contains("after detach"));
        // Never listed while attached.
        let never = good.replace("7: kprobe  name hello  tag ab  gpl\n", "");
        assert!(judge_bpftool(&never, Some(0))
            .reason
            .contains("while attached"));
        // A missing id that "works" is wrong.
        let neg = good.replace("== missing rc=255", "== missing rc=0");
        assert!(judge_bpftool(&neg, Some(0)).reason.contains("missing id"));
        assert_ne!(
            judge_bpftool("labctl: missing bpftool\n", Some(0)).result,
            crate::events::TestResult::Pass
        );
    }
}
