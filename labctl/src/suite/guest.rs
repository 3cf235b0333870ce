//! The in-guest side of the suite: the `/bin/sh` runner script that one VM boot runs.
//! It runs every selected test in its own session (samples signal their process
//! group) under busybox `timeout`, and prints each test's output between framed
//! markers (`@@LABCTL-BEGIN name t=<uptime>` / `@@LABCTL-END name rc=N t=<uptime>`) that
//! `parse.rs` splits on the host. Every test also writes a start line to /dev/kmsg so
//! the console shows live progress. Pure text generation, unit-tested.

use crate::process::shell_quote;

use super::catalog::{Kind, TestDef};

/// Where the payload lives in the guest.
pub const GUEST_DIR: &str = "/labctl/suite";
/// Where the kernel's own bpftool goes in the guest.
pub const GUEST_BPFTOOL: &str = "/usr/local/sbin/bpftool";

/// A file to put into the guest: the VM harness's own type.
pub use crate::vm::GuestFile;

fn q(s: &str) -> String {
    shell_quote(std::ffi::OsStr::new(s))
}

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
now() { read u _ < /proc/uptime; echo "$u"; }
jit() { if [ -r /proc/sys/net/core/bpf_jit_enable ]; then echo "bpf_jit_enable=$(cat /proc/sys/net/core/bpf_jit_enable)"; else echo "bpf_jit_enable=absent"; fi; }
begin() { echo "<2>labctl-suite: start $1" > /dev/kmsg 2>/dev/null; echo "@@LABCTL-BEGIN $1 t=$(now)"; }
end() { echo "@@LABCTL-END $1 rc=$2 t=$(now)"; }
# run SECS CMD...: own session, killed at SECS, output capped at 1 MB.
run() { t=$1; shift; setsid timeout -s KILL "$t" "$@" > $OUT 2>&1 < /dev/null; rc=$?; head -c 1000000 $OUT; return $rc; }
# run_int SECS CMD...: for programs that run until stopped: SIGINT (they flush and
# detach on it), SIGKILL 5 s later. Two timeouts, not `-k`: Debian 11's busybox (1.30)
# has no -k.
run_int() { t=$1; shift; setsid timeout -s KILL $((t + 5)) timeout -s INT "$t" "$@" > $OUT 2>&1 < /dev/null; rc=$?; head -c 1000000 $OUT; return $rc; }
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

/// Extra facts the script needs.
#[derive(Debug, Clone, Default)]
pub struct ScriptCtx {
    /// test_bpf.ko payload path in the guest, if the host supplied one.
    pub test_bpf_ko: Option<String>,
    /// Faults to inject before the first test.
    pub inject: Vec<Fault>,
}

/// The shell lines of one test (between begin and end). Sets `rc`.
fn body(t: &TestDef, ctx: &ScriptCtx) -> String {
    let secs = t.timeout.as_secs().max(1);
    match &t.kind {
        Kind::Btf => format!("run {secs} $S/bin/btf-check; rc=$?\n"),
        Kind::Jit => "jit; rc=0\n".to_string(),
        Kind::Config => format!("run {secs} zcat /proc/config.gz; rc=$?\n"),
        Kind::Hello => format!("cd $S/bin && run {secs} ./hello hello.bpf.o; rc=$?; cd /\n"),
        Kind::CbpfPort80 => format!(
            "echo 1 > /proc/sys/kernel/printk 2>/dev/null\ncd $S/bin && run {secs} ./cbpf-port80; rc=$?; cd /\necho 4 > /proc/sys/kernel/printk 2>/dev/null\n"
        ),
        Kind::CoreHello => format!("cd $S/bin && run {secs} ./core-hello core_hello.bpf.o; rc=$?; cd /\n"),
        Kind::HelloBcc => "echo 'labctl: hello-bcc runs in its own vng boot'; rc=0\n".to_string(),
        Kind::Bpftrace => "echo 'labctl: bpftrace runs in the vng boot'; rc=0\n".to_string(),
        Kind::Bpftool => format!(
            r#"B={bpftool}
if [ ! -x "$B" ]; then echo "labctl: missing bpftool"; rc=127
else
rm -f /tmp/labctl-hold /tmp/labctl-hold.out; mkfifo /tmp/labctl-hold
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
echo "== btf"; run {secs} "$B" btf dump file /sys/kernel/btf/vmlinux > /tmp/labctl-btf.txt; echo "== btf rc=$?"
grep -c "STRUCT 'task_struct'" /tmp/labctl-btf.txt; rm -f /tmp/labctl-btf.txt
echo "== missing"; run 20 "$B" prog show id 4000000000
echo "== missing rc=$?"
rc=0
fi
"#,
            bpftool = GUEST_BPFTOOL,
        ),
        Kind::TestBpf(e) => {
            let params: Vec<String> = e.params.iter().map(|p| q(p)).collect();
            let find = match &ctx.test_bpf_ko {
                Some(p) => format!("M={}\n[ -r \"$M\" ] || M=$(find /lib/modules -name 'test_bpf.ko*' 2>/dev/null | head -n 1)\n", q(p)),
                None => "M=$(find /lib/modules -name 'test_bpf.ko*' 2>/dev/null | head -n 1)\n".to_string(),
            };
            format!(
                "jit\ndmesg -c > /dev/null 2>&1\n{find}\
if [ -z \"$M\" ]; then echo \"labctl: test_bpf.ko not found (kernel without CONFIG_TEST_BPF=m?)\"; rc=127\n\
else run {secs} insmod \"$M\"{}{} > /dev/null; rc=$?; dmesg | grep 'test_bpf:'; rmmod test_bpf 2>/dev/null; fi\n",
                if params.is_empty() { "" } else { " " },
                params.join(" ")
            )
        }
        Kind::Sample(s) => {
            let args: Vec<String> = s.args.iter().map(|a| q(a)).collect();
            let runner = if s.runs_forever { "run_int" } else { "run" };
            let name = format!("./{}", s.name);
            if s.netns {
                // A namespace held by a sleeping process; `pre` and the program enter it.
                let pre = s
                    .pre
                    .as_deref()
                    .map(|p| format!("nsenter -t $NS -n sh -c {}\n", q(p)))
                    .unwrap_or_default();
                return format!(
                    "cd $S/samples\nif [ ! -x {name} ]; then echo \"labctl: missing {n}\"; rc=127\n\
elif ! netns {hold}; then echo \"labctl: no network namespace for {n} (CONFIG_NET_NS)\"; rc=127; kill $NS 2>/dev/null\n\
else\n{pre}{runner} {secs} nsenter -t $NS -n {name}{sp}{args}; rc=$?; kill $NS 2>/dev/null\nfi\ncd /\n",
                    n = s.name,
                    hold = secs + 30,
                    sp = if args.is_empty() { "" } else { " " },
                    args = args.join(" ")
                );
            }
            let pre = s.pre.as_deref().map(|p| format!("{p}\n")).unwrap_or_default();
            format!(
                "cd $S/samples\nif [ ! -x {name} ]; then echo \"labctl: missing {n}\"; rc=127\nelse\n{pre}{runner} {secs} {name}{sp}{args}; rc=$?\nfi\ncd /\n",
                n = s.name,
                sp = if args.is_empty() { "" } else { " " },
                args = args.join(" ")
            )
        }
    }
}

/// The vng boot's script (host userland): a small prelude, then each test's part.
pub fn vng_script(parts: &[String]) -> String {
    let mut s = String::from(
        "#!/bin/sh\nnow() { read u _ < /proc/uptime; echo \"$u\"; }\nmountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null\nmountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null\nulimit -l unlimited 2>/dev/null\n",
    );
    for p in parts {
        s.push_str(p);
    }
    s.push_str("echo @@LABCTL-DONE\n");
    s
}

/// hello-bcc's part of the vng script. `kernel_source`: the kernel build folder for
/// BCC's headers (`BCC_KERNEL_SOURCE`).
pub fn bcc_part(
    python: &str,
    hello_py: &str,
    kernel_source: Option<&str>,
    timeout_s: u64,
) -> String {
    let env = kernel_source
        .map(|k| format!("BCC_KERNEL_SOURCE={} ", q(k)))
        .unwrap_or_default();
    format!(
        "echo \"@@LABCTL-BEGIN hello-bcc t=$(now)\"\n{env}timeout -s KILL {timeout_s} {} {} 2>&1; rc=$?\necho \"@@LABCTL-END hello-bcc rc=$rc t=$(now)\"\n",
        q(python),
        q(hello_py)
    )
}

/// bpftrace's part of the vng script: a one-liner on `kprobe:do_sys_openat2` (5.6+; no
/// headers needed, unlike tracepoint arguments on kernels whose bpftrace needs them)
/// counts the openat calls of a marker file (the test makes exactly 5) and exits when
/// the stop file is opened; then a kprobe
/// on a symbol that does not exist must fail. Each bpftrace is bounded by `timeout`.
pub fn bpftrace_part(bpftrace: &str, timeout_s: u64) -> String {
    let b = q(bpftrace);
    let half = (timeout_s / 2).max(10);
    format!(
        r#"echo "@@LABCTL-BEGIN bpftrace t=$(now)"
D=/tmp/labctl-bpftrace; rm -rf $D; mkdir -p $D; echo x > $D/marker; echo x > $D/stop; echo x > $D/ping
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
echo "@@LABCTL-END bpftrace rc=$rc t=$(now)"
"#,
        polls = half * 5,
    )
}

fn serial(s: &mut String, t: &TestDef, ctx: &ScriptCtx) {
    debug_assert!(safe_name(&t.name));
    s.push_str(&format!("\n# --- {} ---\nbegin {}\n", t.name, t.name));
    s.push_str(&body(t, ctx));
    s.push_str(&format!("end {} $rc\n", t.name));
}

/// The whole runner script for `tests`. Names must pass [`safe_name`]. Order: the
/// parallel batch starts first, each test in a background subshell with its own output
/// file; the serial tests run one after another in the foreground meanwhile, their
/// frames printed as they end; then the batch's frames, in order, once all finished.
pub fn runner_script(tests: &[TestDef], ctx: &ScriptCtx) -> String {
    let mut s = String::from(PRELUDE);
    for f in &ctx.inject {
        s.push_str(&format!("if {}; then echo 'labctl: injected fault {n}'; else echo 'labctl: could not inject fault {n}'; fi\n", f.shell(), n = f.name()));
    }
    let par: Vec<&TestDef> = tests.iter().filter(|t| t.parallel).collect();
    if !par.is_empty() {
        s.push_str(
            "\n# --- parallel batch (background) ---\nP=/tmp/labctl-par\nmkdir -p $P\nPIDS=\n",
        );
        for (i, t) in par.iter().enumerate() {
            debug_assert!(safe_name(&t.name));
            s.push_str(&format!(
                "( OUT=$P/{i}.run; t0=$(now); echo \"<2>labctl-suite: start {n}\" > /dev/kmsg 2>/dev/null\n{{\n{b}}} > $P/{i}.out 2>&1\necho \"$rc $t0 $(now)\" > $P/{i}.rc ) &\nPIDS=\"$PIDS $!\"\n",
                n = t.name,
                b = body(t, ctx)
            ));
        }
    }
    for t in tests.iter().filter(|t| !t.parallel) {
        serial(&mut s, t, ctx);
    }
    if !par.is_empty() {
        // Only the batch's subshells: a serial test's leftovers (xdp1's ping) are not waited for.
        s.push_str("\nfor p in $PIDS; do wait $p; done\n");
        for (i, t) in par.iter().enumerate() {
            s.push_str(&format!(
                "rc=; t0=; t1=; read rc t0 t1 < $P/{i}.rc 2>/dev/null\necho \"@@LABCTL-BEGIN {n} t=$t0\"; cat $P/{i}.out 2>/dev/null\n[ -n \"$rc\" ] && echo \"@@LABCTL-END {n} rc=$rc t=$t1\"\n",
                n = t.name
            ));
        }
    }
    s.push_str("\n[ -n \"$PRINTK\" ] && echo \"$PRINTK\" > /proc/sys/kernel/printk 2>/dev/null\necho @@LABCTL-DONE\nexit 0\n");
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::catalog::{tests_for, JitCount, TestBpfExpect};
    use super::*;
    use crate::version::KernelVersion;

    fn all_510() -> Vec<TestDef> {
        tests_for(
            &KernelVersion::new(5, 10, 46),
            false,
            crate::arch::Arch::x86_64(),
        )
        .unwrap()
    }

    #[test]
    fn every_test_is_framed_once_and_the_script_ends_with_done() {
        let mut tests = all_510();
        tests.iter_mut().for_each(|t| t.parallel = false);
        let s = runner_script(&tests, &ScriptCtx::default());
        assert!(s.starts_with("#!/bin/sh\n"));
        for t in &tests {
            assert_eq!(
                s.matches(&format!("\nbegin {}\n", t.name)).count(),
                1,
                "{}",
                t.name
            );
            assert_eq!(
                s.matches(&format!("\nend {} $rc\n", t.name)).count(),
                1,
                "{}",
                t.name
            );
        }
        assert!(s.trim_end().ends_with("echo @@LABCTL-DONE\nexit 0"));
    }

    #[test]
    fn test_bpf_params_and_timeouts_reach_the_script() {
        let t = TestDef {
            name: "test_bpf".into(),
            kind: Kind::TestBpf(TestBpfExpect {
                params: vec!["test_suite=test_bpf".into(), "test_range=0,299".into()],
                jit: JitCount::All,
                full: false,
            }),
            timeout: Duration::from_secs(120),
            about: String::new(),
            parallel: false,
            not_applicable: None,
        };
        let s = runner_script(
            &[t],
            &ScriptCtx {
                test_bpf_ko: Some("/labctl/suite/modules/test_bpf.ko".into()),
                inject: vec![],
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
        let mut tests = all_510();
        let sample = tests.iter_mut().find_map(|t| match &mut t.kind {
            Kind::Sample(s) => Some(s),
            _ => None,
        });
        let s = sample.expect("5.10 has samples");
        s.args = vec!["-S".into(), "it's".into()];
        s.runs_forever = true;
        let name = s.name.clone();
        let script = runner_script(&tests, &ScriptCtx::default());
        assert!(
            script.contains(&format!(
                "run_int {} ./{name} -S 'it'\\''s'; rc=$?",
                tests
                    .iter()
                    .find(|t| t.name == format!("samples/{name}"))
                    .unwrap()
                    .timeout
                    .as_secs()
            )),
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
        let par: Vec<&TestDef> = tests.iter().filter(|t| t.parallel).collect();
        assert!(par.len() >= 2, "test_bpf and some samples run in parallel");
        let wait = "\nfor p in $PIDS; do wait $p; done\n";
        assert_eq!(s.matches(wait).count(), 1);
        let wait_at = s.find(wait).unwrap();
        let mut last_start = 0;
        for t in &par {
            let start = s
                .find(&format!("labctl-suite: start {}\"", t.name))
                .unwrap();
            let frame = s.find(&format!("@@LABCTL-BEGIN {} t=$t0", t.name)).unwrap();
            assert!(start < wait_at && wait_at < frame, "{}", t.name);
            last_start = last_start.max(start);
        }
        // The serial tests run in the foreground while the batch runs in the background.
        for t in tests.iter().filter(|t| !t.parallel) {
            let begin = format!("\nbegin {}\n", t.name);
            assert_eq!(s.matches(&begin).count(), 1, "{}", t.name);
            let at = s.find(&begin).unwrap();
            assert!(last_start < at && at < wait_at, "{}", t.name);
        }
    }

    #[test]
    fn a_netns_sample_and_its_pre_run_in_their_own_network_namespace() {
        let tests = all_510();
        let xdp1 = tests.iter().find(|t| t.name == "samples/xdp1").unwrap();
        assert!(
            xdp1.parallel,
            "xdp1 no longer shares lo, so it joins the batch"
        );
        let b = body(xdp1, &ScriptCtx::default());
        assert!(b.contains("elif ! netns 36; then"), "{b}");
        assert!(
            b.contains(
                "nsenter -t $NS -n sh -c '(ping -c 60 -i 0.2 127.0.0.1 > /dev/null 2>&1 &)'"
            ),
            "{b}"
        );
        assert!(
            b.contains("run_int 6 nsenter -t $NS -n ./xdp1 -S lo; rc=$?"),
            "{b}"
        );
        // The namespace must differ from the shell's before anything enters it.
        assert!(PRELUDE.contains("[ \"$ns\" != \"$me\" ] && nsenter -t $NS -n ip link set lo up"));
        let plain = tests.iter().find(|t| t.name == "samples/sockex1").unwrap();
        assert!(!body(plain, &ScriptCtx::default()).contains("nsenter"));
    }

    #[test]
    fn faults_are_injected_before_the_first_test() {
        let ctx = ScriptCtx {
            test_bpf_ko: None,
            inject: vec![Fault::JitOff, Fault::BtfHidden],
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
            },
        );
        let out = crate::process::Cmd::new("sh")
            .arg("-n")
            .stdin_bytes(s.clone())
            .run(&crate::events::NullSink)
            .unwrap();
        assert!(out.success(), "sh -n: {}", out.stderr_str());
        let b = vng_script(&[
            bcc_part("/usr/bin/python3", "/x y/hello.py", Some("/o"), 600),
            bpftrace_part("/usr/bin/bpftrace", 300),
        ]);
        assert!(
            b.contains("BCC_KERNEL_SOURCE=/o timeout -s KILL 600 /usr/bin/python3 '/x y/hello.py'"),
            "{b}"
        );
        assert!(b.contains("@@LABCTL-BEGIN bpftrace"), "{b}");
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
