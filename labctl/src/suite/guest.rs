//! The in-guest side of the suite: the `/bin/sh` runner script that one VM boot runs.
//! It runs every selected test in its own session (samples signal their process
//! group) under busybox `timeout`, and prints each test's output between framed
//! markers (`@@LABCTL-BEGIN name t=<uptime>` / `@@LABCTL-END name rc=N t=<uptime>`) that
//! `parse.rs` splits on the host. Every test also writes a start line to /dev/kmsg so
//! the console shows live progress. Pure text generation, unit-tested.

use std::sync::Arc;

use super::tests::SuiteTest;

/// Where the payload lives in the guest.
pub const GUEST_DIR: &str = "/labctl/suite";
/// Where the kernel's own bpftool goes in the guest.
pub const GUEST_BPFTOOL: &str = "/usr/local/sbin/bpftool";
/// Where the vng boot's payload goes (the host root is read-only in a vng guest).
pub const VNG_PAYLOAD: &str = "/tmp/labctl";

/// A file to put into the guest: the VM harness's own type.
pub use crate::vm::GuestFile;

/// Test names and sample names become shell words and file names: keep them tame.
pub fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_/.".contains(&b))
        && !s.contains("..")
}

const PRELUDE: &str = r#"#!/bin/sh
# labctl acceptance-suite runner (generated). One boot runs every test; results are
# framed on stdout for the host: @@LABCTL-BEGIN <name> t=<uptime> ... @@LABCTL-END <name> rc=<n> t=<uptime>
S=/labctl/suite
OUT=/tmp/labctl-test.out
[ -d /tmp ] || mkdir -p /tmp
grep -qs localhost /etc/hosts || printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' >> /etc/hosts
ulimit -l unlimited 2>/dev/null
ip link set lo up 2>/dev/null
PRINTK=$(cut -f1 /proc/sys/kernel/printk 2>/dev/null)
# Keep test chatter (test_bpf's 1000 lines, JIT dumps) off the slow serial console.
echo 4 > /proc/sys/kernel/printk 2>/dev/null
"#;

/// The runner's shell functions: definitions only, no side effects, so a unit test can
/// run them under the host's busybox.
const HELPERS: &str = r#"now() { read u _ < /proc/uptime; echo "$u"; }
jit() { if [ -r /proc/sys/net/core/bpf_jit_enable ]; then echo "bpf_jit_enable=$(cat /proc/sys/net/core/bpf_jit_enable)"; else echo "bpf_jit_enable=absent"; fi; }
begin() { echo "<2>labctl-suite: start $1" > /dev/kmsg 2>/dev/null; echo "@@LABCTL-BEGIN $1 t=$(now)"; }
end() { echo "@@LABCTL-END $1 rc=$2 t=$(now)"; }
# run SECS CMD...: own session, killed at SECS, output capped at 1 MB. What the command
# left running in its session (tracex2's dd of 5M writes) is killed when it ends, so it
# cannot slow the tests after it: $! is the session's leader (setsid only forks when it
# is a process group leader, and a shell without job control never makes one).
run() { t=$1; shift; setsid timeout -s KILL "$t" "$@" > $OUT 2>&1 < /dev/null & reap $!; }
# reap PID: every runner's end: wait for the session leader PID, kill what is left in its
# session, print the captured output, return its exit status.
reap() { wait $1; rc=$?; kill -KILL -$1 2>/dev/null; head -c 1000000 $OUT; return $rc; }
# run_int SECS CMD...: for programs that run until stopped: SIGINT (they flush and
# detach on it), SIGKILL 5 s later. Two timeouts, not `-k`: Debian 11's busybox (1.30)
# has no -k.
run_int() { t=$1; shift; setsid timeout -s KILL $((t + 5)) timeout -s INT "$t" "$@" > $OUT 2>&1 < /dev/null & reap $!; }
# run_until SECS ERE CMD...: run_int, and SIGINT as soon as the output matches the
# extended regex ERE: for programs whose SIGINT handler prints their totals and exits 0
# (xdp1, tracex2), so they stop once they have shown what they are judged on instead of
# looping on. examples-bpf's ptyrun puts their output on a terminal, where stdio flushes
# each line (into a file it would only come at exit); without it they run to SECS. A
# zombie counts as gone: `kill -0` would still find it.
gone() { [ ! -e /proc/$1/status ] || grep -q '^State:[[:space:]]*Z' /proc/$1/status; }
run_until() { t=$1; re=$2; shift 2; pty=; [ -x $S/bin/ptyrun ] && pty=$S/bin/ptyrun
  setsid timeout -s KILL $((t + 5)) timeout -s INT "$t" $pty "$@" > $OUT 2>&1 < /dev/null & p=$!
  while ! gone $p && ! grep -Eq -- "$re" $OUT; do sleep 0.1; done
  gone $p || kill -INT $p 2>/dev/null; reap $p; }
# netns SECS: a network namespace held by a sleeping process $NS for SECS, its lo up.
# Fails unless $NS really is in another namespace than this shell (never the shared lo).
netns() { unshare -n sleep "$1" & NS=$!; i=0; me=$(readlink /proc/$$/ns/net)
  while [ "$(readlink /proc/$NS/ns/net 2>/dev/null)" = "$me" ] && [ $i -lt 100 ]; do sleep 0.02; i=$((i+1)); done
  ns=$(readlink /proc/$NS/ns/net 2>/dev/null); [ -n "$ns" ] && [ "$ns" != "$me" ] && nsenter -t $NS -n ip link set lo up; }
"#;

/// A fault injected into the guest before the tests, to see the suite fail for a
/// known reason without building a broken kernel (`labctl vm test --inject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// net.core.bpf_jit_enable=0: kernel/jit fails, test_bpf must report 0 JIT'ed, cbpf-port80 reports "interpreted".
    JitOff,
    /// /sys/kernel/debug/kprobes/enabled=0: kprobes attach but never fire, so hello fails.
    KprobesOff,
    /// An empty file bind-mounted over /sys/kernel/btf/vmlinux: kernel/btf and core-hello fail.
    BtfHidden,
}

impl Fault {
    pub const ALL: [Fault; 3] = [Fault::JitOff, Fault::KprobesOff, Fault::BtfHidden];
    pub fn name(self) -> &'static str {
        match self {
            Fault::JitOff => "jit-off",
            Fault::KprobesOff => "kprobes-off",
            Fault::BtfHidden => "btf-hidden",
        }
    }
    fn shell(self) -> &'static str {
        match self {
            Fault::JitOff => "echo 0 > /proc/sys/net/core/bpf_jit_enable",
            Fault::KprobesOff => "echo 0 > /sys/kernel/debug/kprobes/enabled",
            Fault::BtfHidden => ": > /tmp/labctl-empty-btf && mount -o bind /tmp/labctl-empty-btf /sys/kernel/btf/vmlinux",
        }
    }
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown fault {s:?}; known: jit-off, kprobes-off, btf-hidden"))
    }
}

/// Extra facts the scripts need.
#[derive(Debug, Clone, Default)]
pub struct ScriptCtx {
    /// test_bpf.ko payload path in the guest, if the host supplied one.
    pub test_bpf_ko: Option<String>,
    /// Faults to inject before the first test.
    pub inject: Vec<Fault>,
    /// The vng boot: a python that imports bcc ([`HostTool::Bcc`](super::tests::HostTool)).
    pub python: Option<String>,
    /// The vng boot: the kernel build folder BCC takes its headers from
    /// (`BCC_KERNEL_SOURCE`), when the kernel has no CONFIG_IKHEADERS.
    pub bcc_kernel_source: Option<String>,
    /// The vng boot: the host's bpftrace ([`HostTool::Bpftrace`](super::tests::HostTool)).
    pub bpftrace: Option<String>,
}

/// A batch subshell lowers its own priority (and so its test's): `read` is a builtin,
/// so /proc/self is the subshell itself.
const NICE: &str = "read -r me _ < /proc/self/stat; renice -n 19 -p $me > /dev/null 2>&1; ";

/// The vng boot's script (host userland): a small prelude, then each test's lines
/// framed like the runner's, one test after another.
pub fn vng_script(tests: &[Arc<dyn SuiteTest>], ctx: &ScriptCtx) -> String {
    let mut s = String::from(
        "#!/bin/sh\nnow() { read u _ < /proc/uptime; echo \"$u\"; }\nmountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null\nmountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null\nulimit -l unlimited 2>/dev/null\n",
    );
    for t in tests {
        debug_assert!(safe_name(t.id()));
        s.push_str(&format!("echo \"@@LABCTL-BEGIN {} t=$(now)\"\n", t.id()));
        s.push_str(&t.guest_script(ctx));
        s.push_str(&format!(
            "echo \"@@LABCTL-END {} rc=$rc t=$(now)\"\n",
            t.id()
        ));
    }
    s.push_str("echo @@LABCTL-DONE\n");
    s
}

fn serial(s: &mut String, t: &dyn SuiteTest, ctx: &ScriptCtx) {
    debug_assert!(safe_name(t.id()));
    s.push_str(&format!("\n# --- {} ---\nbegin {}\n", t.id(), t.id()));
    s.push_str(&t.guest_script(ctx));
    s.push_str(&format!("end {} $rc\n", t.id()));
}

/// The whole runner script for `tests`. Names must pass [`safe_name`]. Order: the
/// parallel batch starts first, each test in a background subshell with its own output
/// file; the serial tests run one after another in the foreground meanwhile, their
/// frames printed as they end; then the batch's frames, in order, once all finished.
pub fn runner_script(tests: &[Arc<dyn SuiteTest>], ctx: &ScriptCtx) -> String {
    let mut s = format!("{PRELUDE}{HELPERS}");
    for f in &ctx.inject {
        s.push_str(&format!("if {}; then echo 'labctl: injected fault {n}'; else echo 'labctl: could not inject fault {n}'; fi\n", f.shell(), n = f.name()));
    }
    let par: Vec<&Arc<dyn SuiteTest>> = tests.iter().filter(|t| t.parallel()).collect();
    if !par.is_empty() {
        s.push_str(
            "\n# --- parallel batch (background) ---\nP=/tmp/labctl-par\nmkdir -p $P\nPIDS=\n",
        );
        // The niced tests start last, so the others are under way before they take any
        // CPU; frames keep the list order.
        let mut start: Vec<(usize, &&Arc<dyn SuiteTest>)> = par.iter().enumerate().collect();
        start.sort_by_key(|(_, t)| t.nice());
        for (i, t) in start {
            debug_assert!(safe_name(t.id()));
            s.push_str(&format!(
                "( OUT=$P/{i}.run; t0=$(now); {nice}echo \"<2>labctl-suite: start {n}\" > /dev/kmsg 2>/dev/null\n{{\n{b}}} > $P/{i}.out 2>&1\necho \"$rc $t0 $(now)\" > $P/{i}.rc ) &\nPIDS=\"$PIDS $!\"\n",
                n = t.id(),
                b = t.guest_script(ctx),
                nice = if t.nice() { NICE } else { "" },
            ));
        }
    }
    for t in tests.iter().filter(|t| !t.parallel()) {
        serial(&mut s, t.as_ref(), ctx);
    }
    if !par.is_empty() {
        // Only the batch's subshells: a serial test's leftovers (xdp1's ping) are not waited for.
        s.push_str("\nfor p in $PIDS; do wait $p; done\n");
        for (i, t) in par.iter().enumerate() {
            s.push_str(&format!(
                "rc=; t0=; t1=; read rc t0 t1 < $P/{i}.rc 2>/dev/null\necho \"@@LABCTL-BEGIN {n} t=$t0\"; cat $P/{i}.out 2>/dev/null\n[ -n \"$rc\" ] && echo \"@@LABCTL-END {n} rc=$rc t=$t1\"\n",
                n = t.id()
            ));
        }
    }
    s.push_str("\n[ -n \"$PRINTK\" ] && echo \"$PRINTK\" > /proc/sys/kernel/printk 2>/dev/null\necho @@LABCTL-DONE\nexit 0\n");
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::catalog::{parse_samples, JitCount, TestBpfExpect, SAMPLES_TOML};
    use super::super::tests::{all, samples::SampleTest, test_bpf::TestBpf};
    use super::*;
    use crate::version::KernelVersion;

    fn all_510() -> Vec<Arc<dyn SuiteTest>> {
        all(
            &KernelVersion::new(5, 10, 46),
            false,
            crate::arch::Arch::x86_64(),
        )
        .unwrap()
    }

    fn find<'a>(tests: &'a [Arc<dyn SuiteTest>], id: &str) -> &'a dyn SuiteTest {
        tests.iter().find(|t| t.id() == id).unwrap().as_ref()
    }

    #[test]
    fn every_test_is_framed_once_and_the_script_ends_with_done() {
        let tests = all_510();
        let s = runner_script(&tests, &ScriptCtx::default());
        assert!(s.starts_with("#!/bin/sh\n"));
        for t in &tests {
            let (begin, end) = if t.parallel() {
                (
                    format!("labctl-suite: start {}\"", t.id()),
                    format!("echo \"@@LABCTL-END {} rc=$rc t=$t1\"", t.id()),
                )
            } else {
                (
                    format!("\nbegin {}\n", t.id()),
                    format!("\nend {} $rc\n", t.id()),
                )
            };
            assert_eq!(s.matches(&begin).count(), 1, "{}", t.id());
            assert_eq!(s.matches(&end).count(), 1, "{}", t.id());
        }
        assert!(s.trim_end().ends_with("echo @@LABCTL-DONE\nexit 0"));
    }

    #[test]
    fn test_bpf_params_and_timeouts_reach_the_script() {
        let t: Arc<dyn SuiteTest> = Arc::new(TestBpf::new(
            TestBpfExpect {
                params: vec!["test_suite=test_bpf".into(), "test_range=0,299".into()],
                jit: JitCount::All,
                full: false,
            },
            Duration::from_secs(120),
        ));
        let s = runner_script(
            &[t],
            &ScriptCtx {
                test_bpf_ko: Some("/labctl/suite/modules/test_bpf.ko".into()),
                ..ScriptCtx::default()
            },
        );
        assert!(
            s.contains("run 120 insmod \"$M\" test_suite=test_bpf test_range=0,299 > /dev/null"),
            "{s}"
        );
        assert!(s.contains("M=/labctl/suite/modules/test_bpf.ko"));
    }

    #[test]
    fn sample_args_are_quoted_and_forever_programs_get_sigint() {
        let mut s = parse_samples(SAMPLES_TOML)
            .unwrap()
            .into_iter()
            .find(|s| s.exists_in(&KernelVersion::new(5, 10, 46)).unwrap())
            .expect("5.10 has samples");
        s.args = vec!["-S".into(), "it's".into()];
        s.runs_forever = true;
        let (name, secs) = (s.name.clone(), s.timeout_s);
        let tests: Vec<Arc<dyn SuiteTest>> = vec![Arc::new(SampleTest::new(s))];
        let script = runner_script(&tests, &ScriptCtx::default());
        assert!(
            script.contains(&format!("run_int {secs} ./{name} -S 'it'\\''s'; rc=$?")),
            "{script}"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(safe_name("samples/sockex1"));
        assert!(!safe_name("a;rm"));
        assert!(!safe_name("../x"));
        assert!(!safe_name(""));
    }

    #[test]
    fn parallel_tests_run_in_one_background_batch_and_are_framed_in_order() {
        let tests = all_510();
        let s = runner_script(&tests, &ScriptCtx::default());
        let par: Vec<&Arc<dyn SuiteTest>> = tests.iter().filter(|t| t.parallel()).collect();
        assert!(par.len() >= 2, "test_bpf and some samples run in parallel");
        let wait = "\nfor p in $PIDS; do wait $p; done\n";
        assert_eq!(s.matches(wait).count(), 1);
        let wait_at = s.find(wait).unwrap();
        let mut last_start = 0;
        let mut last_frame = 0;
        for t in &par {
            let start = s
                .find(&format!("labctl-suite: start {}\"", t.id()))
                .unwrap();
            let frame = s.find(&format!("@@LABCTL-BEGIN {} t=$t0", t.id())).unwrap();
            assert!(start < wait_at && wait_at < frame, "{}", t.id());
            assert!(last_frame < frame, "{}: frames in list order", t.id());
            last_start = last_start.max(start);
            last_frame = frame;
        }
        // The serial tests run in the foreground while the batch runs in the background.
        for t in tests.iter().filter(|t| !t.parallel()) {
            let begin = format!("\nbegin {}\n", t.id());
            assert_eq!(s.matches(&begin).count(), 1, "{}", t.id());
            let at = s.find(&begin).unwrap();
            assert!(last_start < at && at < wait_at, "{}", t.id());
        }
    }

    #[test]
    fn a_netns_sample_and_its_pre_run_in_their_own_network_namespace() {
        let tests = all_510();
        let xdp1 = find(&tests, "samples/xdp1");
        assert!(
            xdp1.parallel(),
            "xdp1 no longer shares lo, so it joins the batch"
        );
        let b = xdp1.guest_script(&ScriptCtx::default());
        assert!(b.contains("elif ! netns 36; then"), "{b}");
        assert!(
            b.contains(
                "nsenter -t $NS -n sh -c '(ping -c 60 -i 0.2 127.0.0.1 > /dev/null 2>&1 &)'"
            ),
            "{b}"
        );
        assert!(
            b.contains("run_until 6 'proto 1:[[:space:]]+[1-9][0-9]* pkt/s' nsenter -t $NS -n ./xdp1 -S lo; rc=$?"),
            "{b}"
        );
        // The namespace must differ from the shell's before anything enters it.
        assert!(HELPERS.contains("[ \"$ns\" != \"$me\" ] && nsenter -t $NS -n ip link set lo up"));
        let plain = find(&tests, "samples/sockex1");
        assert!(!plain
            .guest_script(&ScriptCtx::default())
            .contains("nsenter"));
    }

    /// The helpers under the host's busybox (Debian busybox-static, which doctor lists:
    /// the guest image carries it): `script` runs after them with `$D` a scratch folder.
    fn busybox_helpers(script: &str) -> String {
        busybox_helpers_in(None, script)
    }

    /// As [`busybox_helpers`], with `$S` (the payload folder, whose bin/ may hold ptyrun).
    fn busybox_helpers_in(s: Option<&std::path::Path>, script: &str) -> String {
        let d = tempfile::tempdir().unwrap();
        let s = s.unwrap_or(d.path());
        let full = format!(
            "D={}\nS={}\nOUT=$D/out\n{HELPERS}\n{script}",
            d.path().display(),
            s.display()
        );
        let out = std::process::Command::new(crate::vm::initramfs::find_busybox().unwrap())
            .args(["sh", "-c", &full])
            // Python then buffers a file as C stdio does.
            .env_remove("PYTHONUNBUFFERED")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn run_keeps_the_exit_status_and_kills_what_the_command_left_running() {
        // tracex2 leaves a `dd` of 5M writes behind; it must not outlive its test.
        let out = busybox_helpers(
            "run 20 sh -c 'sleep 30 & echo $! > $D/child; echo hi; exit 3'; echo \"rc=$?\"\n\
             c=$(cat $D/child); i=0; while ! gone $c && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done\n\
             if gone $c; then echo child-gone; else echo child-alive; kill $c; fi\n",
        );
        assert!(out.contains("hi\nrc=3\n"), "{out}");
        assert!(out.contains("child-gone"), "{out}");
        // A command that outlives its time is killed (busybox timeout: SIGKILL, 137).
        let out = busybox_helpers("run 1 sleep 10; echo \"rc=$?\"\n");
        assert!(out.contains("rc=137"), "{out}");
    }

    #[test]
    fn run_until_stops_a_program_once_its_buffered_report_shows_through_ptyrun() {
        // Like xdp1 and tracex2: a report that C stdio would keep in its buffer (python
        // buffers a file the same way), a SIGINT handler that prints totals and exits 0,
        // and a line it only reaches if nobody stops it.
        let d = tempfile::tempdir().unwrap();
        let prog = d.path().join("prog.py");
        std::fs::write(
            &prog,
            "import signal, sys, time\n\
             signal.signal(signal.SIGINT, lambda *a: (print('totals'), sys.exit(0)))\n\
             print('report 1')\ntime.sleep(3)\nprint('late')\n",
        )
        .unwrap();
        let script = format!(
            "run_until 60 'report [0-9]' python3 {}; echo \"rc=$?\"\n",
            prog.display()
        );
        // Without ptyrun the report sits in the buffer: the program runs on to the end.
        let plain = busybox_helpers(&script);
        assert!(
            plain.contains("report 1\nlate\n") && plain.contains("rc=0"),
            "{plain}"
        );

        // examples-bpf's ptyrun, built as the examples build does (C library only).
        let with = tempfile::tempdir().unwrap();
        std::fs::create_dir(with.path().join("bin")).unwrap();
        let src = with.path().join("ptyrun.c");
        let code = super::super::examples::SOURCES
            .iter()
            .find(|(p, _)| *p == "checks/ptyrun.c")
            .unwrap()
            .1;
        std::fs::write(&src, code).unwrap();
        let cc = std::process::Command::new("cc")
            .args(["-O2", "-Wall", "-o"])
            .arg(with.path().join("bin/ptyrun"))
            .arg(&src)
            .output()
            .unwrap();
        assert!(
            cc.status.success(),
            "{}",
            String::from_utf8_lossy(&cc.stderr)
        );
        let out = busybox_helpers_in(Some(with.path()), &script);
        assert!(out.contains("report 1\n"), "{out}");
        assert!(out.contains("totals\n"), "the SIGINT handler ran: {out}");
        assert!(!out.contains("late"), "stopped at its report: {out}");
        assert!(out.contains("rc=0"), "{out}");
    }

    #[test]
    fn cpu_bound_batch_tests_run_niced_and_start_after_the_others() {
        let s = runner_script(&all_510(), &ScriptCtx::default());
        let start = |id: &str| {
            s.find(&format!("start {id}\""))
                .unwrap_or_else(|| panic!("{id} not in the batch"))
        };
        let line = |id: &str| {
            let i = start(id);
            &s[s[..i].rfind("\n( OUT=").unwrap()..i]
        };
        for id in [
            "test_bpf",
            "kernel/btf",
            "bpftool/btf",
            "samples/map_perf_test",
        ] {
            assert!(line(id).contains(NICE), "{id}: {}", line(id));
            assert!(
                start(id) > start("samples/sockex1"),
                "{id} starts after the sleepers"
            );
        }
        for id in ["samples/sockex1", "samples/xdp1", "kernel/config"] {
            assert!(!line(id).contains("renice"), "{id}: {}", line(id));
        }
    }

    #[test]
    fn faults_are_injected_before_the_first_test() {
        let ctx = ScriptCtx {
            inject: vec![Fault::JitOff, Fault::BtfHidden],
            ..ScriptCtx::default()
        };
        let s = runner_script(&all_510(), &ctx);
        let first = s
            .find("\nbegin ")
            .unwrap()
            .min(s.find("# --- parallel batch").unwrap());
        let jit = s
            .find("echo 0 > /proc/sys/net/core/bpf_jit_enable")
            .unwrap();
        let btf = s
            .find("mount -o bind /tmp/labctl-empty-btf /sys/kernel/btf/vmlinux")
            .unwrap();
        assert!(jit < first && btf < first);
        assert_eq!("kprobes-off".parse::<Fault>().unwrap(), Fault::KprobesOff);
        assert!("bogus".parse::<Fault>().unwrap_err().contains("jit-off"));
    }

    /// The generated scripts are valid sh.
    #[test]
    fn script_is_valid_sh() {
        let s = runner_script(
            &all_510(),
            &ScriptCtx {
                test_bpf_ko: Some("/x".into()),
                inject: Fault::ALL.to_vec(),
                ..ScriptCtx::default()
            },
        );
        let out = crate::process::Cmd::new("sh")
            .arg("-n")
            .stdin_bytes(s.clone())
            .run(&crate::events::NullSink)
            .unwrap();
        assert!(out.success(), "sh -n: {}", out.stderr_str());
        let tests = all_510();
        let vng: Vec<Arc<dyn SuiteTest>> = tests
            .iter()
            .filter(|t| t.needs().host.is_some())
            .cloned()
            .collect();
        assert_eq!(vng.len(), 2, "hello-bcc and bpftrace boot under vng");
        let b = vng_script(
            &vng,
            &ScriptCtx {
                python: Some("/usr/bin/python3".into()),
                bcc_kernel_source: Some("/o".into()),
                bpftrace: Some("/usr/bin/bpftrace".into()),
                ..ScriptCtx::default()
            },
        );
        assert!(
            b.contains("echo \"@@LABCTL-BEGIN hello-bcc t=$(now)\"\nBCC_KERNEL_SOURCE=/o timeout -s KILL 600 /usr/bin/python3 /tmp/labctl/hello-bcc/hello.py 2>&1; rc=$?\necho \"@@LABCTL-END hello-bcc rc=$rc t=$(now)\"\n"),
            "{b}"
        );
        assert!(
            b.contains("echo \"@@LABCTL-BEGIN bpftrace t=$(now)\"\nD=/tmp/labctl-bpftrace;"),
            "{b}"
        );
        assert!(
            b.contains("rc=0\necho \"@@LABCTL-END bpftrace rc=$rc t=$(now)\"\n"),
            "{b}"
        );
        assert!(
            b.contains("timeout -s KILL 150 /usr/bin/bpftrace -e"),
            "{b}"
        );
        assert!(b.trim_end().ends_with("echo @@LABCTL-DONE"), "{b}");
        let out = crate::process::Cmd::new("sh")
            .arg("-n")
            .stdin_bytes(b)
            .run(&crate::events::NullSink)
            .unwrap();
        assert!(out.success(), "sh -n: {}", out.stderr_str());
    }
}
