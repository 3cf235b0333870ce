//! The suite's host side end to end against a fake guest (no QEMU): planning (files,
//! skips), the one-boot runner, judging canned guest output, per-test logs, results.json,
//! junit.xml, events, and infrastructure failures.

use std::path::PathBuf;
use std::sync::Mutex;

use labctl::events::{Event, EventSink, SkipKind, TestResult, VecSink};
use labctl::suite::{
    self, Bcc, BccMissing, Guest, GuestReply, GuestRequest, SamplesFailure, SuiteError, SuiteInput,
    SuiteStatus, ToolInput,
};
use labctl::{Home, KernelVersion};

/// Replies with canned output and remembers the request.
struct FakeGuest {
    output: String,
    fail: Option<String>,
    seen: Mutex<Vec<GuestRequest>>,
}

impl Guest for FakeGuest {
    fn run(&self, req: &GuestRequest, _sink: &dyn EventSink) -> Result<GuestReply, SuiteError> {
        self.seen.lock().unwrap().push(req.clone());
        if let Some(f) = &self.fail {
            return Err(SuiteError::Vm(Box::new(labctl::vm::VmError::Vng {
                detail: f.clone(),
            })));
        }
        Ok(GuestReply {
            exit_code: 0,
            output: self.output.clone(),
            console_log: None,
            accel: "tcg".into(),
        })
    }
}

fn input(dir: &std::path::Path, filter: &str, samples: Option<PathBuf>) -> SuiteInput {
    SuiteInput {
        kernel: KernelVersion::new(5, 10, 46),
        release: "5.10.46".into(),
        samples_dir: samples,
        samples_sysroot: None,
        samples_failure: None,
        test_bpf_ko: None,
        expected_config: vec![("BPF".into(), "y".into()), ("KPROBES".into(), "y".into())],
        filter: filter.into(),
        skip: String::new(),
        full: false,
        bcc: Bcc::Missing(BccMissing::PythonModule),
        bpftool: ToolInput::missing("no bpftool here", "a fake guest has none"),
        bpftrace: ToolInput::missing("no bpftrace here", "a fake guest has none"),
        inject: vec![],
        run_dir: dir.join("runs/1-5.10.46"),
        allow_skip: false,
        examples: None,
        arch: labctl::arch::Arch::host(),
        guest_root: None,
    }
}

const OUTPUT: &str = "\
@@LABCTL-BEGIN kernel/jit t=1.00
bpf_jit_enable=1
@@LABCTL-END kernel/jit rc=0 t=1.01
@@LABCTL-BEGIN kernel/config t=1.01
CONFIG_BPF=y
# CONFIG_KPROBES is not set
@@LABCTL-END kernel/config rc=0 t=1.10
@@LABCTL-BEGIN test_bpf t=1.10
bpf_jit_enable=1
test_bpf: Summary: 286 PASSED, 0 FAILED, [279/279 JIT'ed]
@@LABCTL-END test_bpf rc=0 t=5.10
@@LABCTL-BEGIN samples/sockex1 t=5.10
TCP 0 UDP 0 ICMP 392 bytes
@@LABCTL-END samples/sockex1 rc=0 t=10.20
@@LABCTL-DONE
";

#[test]
fn judges_canned_output_and_writes_logs_json_and_junit() {
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    let samples = d.path().join("samples");
    std::fs::create_dir_all(&samples).unwrap();
    std::fs::write(samples.join("sockex1"), b"\x7fELF").unwrap();
    std::fs::write(samples.join("sockex1_kern.o"), b"obj").unwrap();
    let g = FakeGuest {
        output: OUTPUT.into(),
        fail: None,
        seen: Mutex::new(vec![]),
    };
    let sink = VecSink::default();
    let inp = input(
        d.path(),
        "kernel/jit,kernel/config,test_bpf,samples/sockex1,samples/sockex2,hello-bcc",
        Some(samples.clone()),
    );
    let res = suite::run(&home, &inp, &g, &sink).unwrap();

    let by = |n: &str| {
        res.tests
            .iter()
            .find(|t| t.name == n)
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    assert_eq!(by("kernel/jit").result, TestResult::Pass);
    // KPROBES is not set in the canned config: kernel/config must fail and say why.
    assert_eq!(by("kernel/config").result, TestResult::Fail);
    assert!(
        by("kernel/config").reason.contains("KPROBES=n (wanted y)"),
        "{}",
        by("kernel/config").reason
    );
    assert_eq!(by("test_bpf").result, TestResult::Pass);
    assert!((by("test_bpf").duration_s - 4.0).abs() < 1e-6);
    assert_eq!(by("samples/sockex1").result, TestResult::Pass);
    // sockex2 was not built: skipped on the host, never sent to the guest.
    assert_eq!(by("samples/sockex2").result, TestResult::Skip);
    assert_eq!(by("hello-bcc").result, TestResult::Skip);
    assert_eq!(by("hello-bcc").skip, Some(SkipKind::Setup));
    assert_eq!(by("samples/sockex2").skip, Some(SkipKind::Setup));
    assert_eq!(res.counts(), (3, 1, 2));
    assert_eq!(res.status(), SuiteStatus::Failed, "a failed test wins");
    // The pass reason is words; the regex and the matched line are detail.
    assert_eq!(by("samples/sockex1").reason, "ICMP bytes counted");
    assert!(by("samples/sockex1")
        .detail
        .as_deref()
        .unwrap()
        .contains("TCP 0 UDP 0 ICMP 392 bytes"));

    // One boot; the payload holds the sample and its object, with libs for the program.
    let reqs = g.seen.lock().unwrap();
    assert_eq!(reqs.len(), 1);
    let prog = reqs[0]
        .files
        .iter()
        .find(|f| f.guest == "/labctl/suite/samples/sockex1")
        .unwrap();
    assert!(prog.with_libs);
    assert!(reqs[0]
        .files
        .iter()
        .any(|f| f.guest == "/labctl/suite/samples/sockex1_kern.o"));
    assert!(!reqs[0].script.contains("samples/sockex2"));
    assert_eq!(reqs[0].backend, labctl::vm::Backend::Qemu);

    // Run folder: per-test logs, runner, results.json, junit.xml.
    let run = &inp.run_dir;
    let log = std::fs::read_to_string(by("test_bpf").log.as_ref().unwrap()).unwrap();
    assert!(log.contains("286 PASSED"));
    assert!(log.starts_with("labctl: test_bpf: pass\n"), "{log}");
    assert!(
        log.contains("labctl: detail: 286 PASSED, 0 FAILED, [279/279 JIT'ed]; expected all JIT'ed"),
        "{log}"
    );
    // Host-side skips get a log with what to do.
    let log = std::fs::read_to_string(by("hello-bcc").log.as_ref().unwrap()).unwrap();
    assert!(
        log.contains("hello-bcc: skip (setup)") && log.contains("python3-bpfcc"),
        "{log}"
    );
    assert!(run.join("runner.sh").is_file());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["tests"].as_array().unwrap().len(), 6);
    assert_eq!(json["status"], "failed");
    assert_eq!(json["skipped"]["setup"], 2);
    let sk = json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "hello-bcc")
        .unwrap();
    assert_eq!(sk["skip_kind"], "setup");
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    assert!(
        junit.contains("failures=\"1\" errors=\"2\" skipped=\"0\""),
        "{junit}"
    );

    // Events: every test finished once.
    let finished: Vec<String> = sink
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::TestFinished { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(finished.len(), 6, "{finished:?}");
    assert!(sink.events().iter().any(|e| matches!(e,
        Event::TestFinished { name, skip: Some(SkipKind::Setup), .. } if name == "hello-bcc")));
}

/// The canned output of the passing tests only (kernel/config with KPROBES=y).
fn passing_output() -> String {
    OUTPUT.replace("# CONFIG_KPROBES is not set", "CONFIG_KPROBES=y")
}

#[test]
fn setup_skips_alone_make_the_run_not_verified_unless_allowed() {
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    let samples = d.path().join("samples");
    std::fs::create_dir_all(&samples).unwrap();
    std::fs::write(samples.join("sockex1"), b"\x7fELF").unwrap();
    let g = FakeGuest {
        output: passing_output(),
        fail: None,
        seen: Mutex::new(vec![]),
    };
    let filter = "kernel/jit,kernel/config,test_bpf,samples/sockex1,samples/sockex2,hello-bcc";
    let mut inp = input(d.path(), filter, Some(samples.clone()));
    inp.samples_failure = Some(SamplesFailure {
        first_error: Some("error: unknown type name 'u64'".into()),
        log: Some(d.path().join("logs/08-samples.log")),
        catalogue: vec![(
            "samples-bpf-o-userprogs".into(),
            "samples-bpf-o-userprogs".into(),
        )],
    });
    let res = suite::run(&home, &inp, &g, &labctl::events::NullSink).unwrap();
    assert_eq!(res.counts(), (4, 0, 2));
    assert_eq!(res.status(), SuiteStatus::NotVerified);
    let sockex2 = res
        .tests
        .iter()
        .find(|t| t.name == "samples/sockex2")
        .unwrap();
    assert!(
        sockex2.reason.contains("samples-bpf-o-userprogs"),
        "{}",
        sockex2.reason
    );
    assert!(sockex2
        .detail
        .as_deref()
        .unwrap()
        .contains("08-samples.log"));
    let table = suite::report::table(&res);
    assert!(
        table
            .contains("lab NOT VERIFIED on 5.10.46 (tcg): 4 passed, 0 failed, 2 skipped (2 setup)"),
        "{table}"
    );
    assert!(!table.contains("lab OK"), "{table}");
    assert!(table.contains("labctl doctor --install"), "{table}");

    // --allow-skip: the same skips are reported, the run passes.
    inp.allow_skip = true;
    inp.run_dir = d.path().join("runs/2-5.10.46");
    let res = suite::run(&home, &inp, &g, &labctl::events::NullSink).unwrap();
    assert_eq!(res.status(), SuiteStatus::Passed);
    assert!(suite::report::table(&res).contains("lab OK (--allow-skip)"));

    // --no-bcc is a skip on request: allowed without --allow-skip.
    let mut inp = input(d.path(), "kernel/jit,hello-bcc", None);
    inp.bcc = Bcc::NotRequested;
    inp.run_dir = d.path().join("runs/3-5.10.46");
    let res = suite::run(&home, &inp, &g, &labctl::events::NullSink).unwrap();
    assert_eq!(res.tests[1].skip, Some(SkipKind::Requested));
    assert_eq!(res.status(), SuiteStatus::Passed);
    let table = suite::report::table(&res);
    assert!(
        table.contains("lab OK on 5.10.46 (tcg): 1 passed, 0 failed, 1 skipped (1 on request)"),
        "{table}"
    );
}

#[test]
fn missing_bpftool_and_bpftrace_are_setup_skips_and_skip_is_on_request() {
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    let g = FakeGuest {
        output: passing_output(),
        fail: None,
        seen: Mutex::new(vec![]),
    };
    // Neither tool: two setup skips with what to do; the run is not verified.
    let mut inp = input(d.path(), "kernel/jit,bpftool,bpftrace", None);
    inp.bpftool = ToolInput::missing("the kernel's bpftool did not build", "see tool-bpftool.log");
    let res = suite::run(&home, &inp, &g, &labctl::events::NullSink).unwrap();
    let by = |n: &str| res.tests.iter().find(|t| t.name == n).unwrap().clone();
    assert_eq!(by("bpftool").skip, Some(SkipKind::Setup));
    assert!(by("bpftool").detail.unwrap().contains("tool-bpftool.log"));
    assert_eq!(by("bpftrace").skip, Some(SkipKind::Setup));
    assert_eq!(res.status(), SuiteStatus::NotVerified);
    // bpftrace present but no vng: still a setup skip, naming virtme-ng.
    inp.bpftrace = ToolInput::Ready {
        path: "/usr/bin/bpftrace".into(),
        sysroot: None,
    };
    inp.bcc = Bcc::Missing(BccMissing::Vng);
    inp.run_dir = d.path().join("runs/2-5.10.46");
    let res = suite::run(&home, &inp, &g, &labctl::events::NullSink).unwrap();
    let t = res.tests.iter().find(|t| t.name == "bpftrace").unwrap();
    assert_eq!(t.skip, Some(SkipKind::Setup));
    assert!(t.reason.contains("virtme-ng"), "{}", t.reason);
    // --skip: requested skips, the run passes, nothing of them reaches the guest.
    let mut inp = input(d.path(), "kernel/jit,bpftool,bpftrace", None);
    inp.skip = "bpf*".into();
    inp.run_dir = d.path().join("runs/3-5.10.46");
    let res = suite::run(&home, &inp, &g, &labctl::events::NullSink).unwrap();
    assert_eq!(res.status(), SuiteStatus::Passed);
    for n in ["bpftool", "bpftrace"] {
        let t = res.tests.iter().find(|t| t.name == n).unwrap();
        assert_eq!(t.skip, Some(SkipKind::Requested), "{n}");
    }
    let reqs = g.seen.lock().unwrap();
    assert!(reqs
        .iter()
        .all(|r| !r.files.iter().any(|f| f.guest.contains("bpftool"))));
}

/// OUTPUT as a guest leaves it when it stops inside samples/sockex1 (BEGIN, no END).
fn output_stopped_in_sockex1() -> String {
    OUTPUT
        .split("@@LABCTL-BEGIN samples")
        .next()
        .unwrap()
        .to_string()
        + "@@LABCTL-BEGIN samples/sockex1 t=5.10\n"
}

#[test]
fn a_guest_that_stops_midway_is_an_infrastructure_failure() {
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    let cut = output_stopped_in_sockex1();
    let samples = d.path().join("samples");
    std::fs::create_dir_all(&samples).unwrap();
    std::fs::write(samples.join("sockex1"), b"x").unwrap();
    let g = FakeGuest {
        output: cut,
        fail: None,
        seen: Mutex::new(vec![]),
    };
    let inp = input(
        d.path(),
        "kernel/jit,test_bpf,samples/sockex1",
        Some(samples),
    );
    let e = suite::run(&home, &inp, &g, &labctl::events::NullSink).unwrap_err();
    assert!(e.to_string().contains("samples/sockex1"), "{e}");
    // What finished is still reported.
    let json = std::fs::read_to_string(inp.run_dir.join("results.json")).unwrap();
    assert!(json.contains("\"kernel/jit\""));
}

#[test]
fn vm_errors_propagate_and_bad_filters_are_usage_errors() {
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    let g = FakeGuest {
        output: String::new(),
        fail: Some("the guest hit a kernel panic".into()),
        seen: Mutex::new(vec![]),
    };
    let e = suite::run(
        &home,
        &input(d.path(), "kernel/jit", None),
        &g,
        &labctl::events::NullSink,
    )
    .unwrap_err();
    assert!(
        matches!(e, SuiteError::Vm(ref v) if v.to_string().contains("panic")),
        "{e}"
    );
    let e = suite::run(
        &home,
        &input(d.path(), "nosuchtest", None),
        &g,
        &labctl::events::NullSink,
    )
    .unwrap_err();
    assert!(matches!(e, SuiteError::NoTests(_)), "{e}");
}

/// A test that crashes the guest kernel (7.1.8's samples did): the harness reports a
/// panic, the suite reads what finished from the results channel (`results.bin`), fails
/// the test that was running with the crash, marks the rest not run, and returns a
/// result (exit 1, "lab BROKEN"), not an infrastructure error.
struct CrashingGuest {
    output: String,
}

impl Guest for CrashingGuest {
    fn run(&self, req: &GuestRequest, _sink: &dyn EventSink) -> Result<GuestReply, SuiteError> {
        std::fs::write(req.run_dir.join("results.bin"), &self.output).unwrap();
        Err(SuiteError::GuestCrashed("the guest hit a kernel Oops; QEMU was stopped. Console excerpt:\nBUG: kernel NULL pointer dereference, address: 0000000000000000".into()))
    }
}

#[test]
fn a_test_that_crashes_the_kernel_fails_and_the_rest_are_reported() {
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    let samples = d.path().join("samples");
    std::fs::create_dir_all(&samples).unwrap();
    std::fs::write(samples.join("sockex1"), b"x").unwrap();
    std::fs::write(samples.join("sockex2"), b"x").unwrap();
    let cut = output_stopped_in_sockex1();
    let g = CrashingGuest { output: cut };
    let inp = input(
        d.path(),
        "kernel/jit,test_bpf,samples/sockex1,samples/sockex2",
        Some(samples),
    );
    let res =
        suite::run(&home, &inp, &g, &labctl::events::NullSink).expect("a crash is a test result");
    let by = |n: &str| res.tests.iter().find(|t| t.name == n).unwrap();
    assert_eq!(by("kernel/jit").result, TestResult::Pass);
    assert_eq!(by("test_bpf").result, TestResult::Pass);
    let crashed = by("samples/sockex1");
    assert_eq!(crashed.result, TestResult::Fail);
    assert!(crashed.reason.contains("crashed"), "{}", crashed.reason);
    let detail = crashed.detail.clone().unwrap_or_default();
    assert!(detail.contains("NULL pointer dereference"), "{detail}");
    let after = by("samples/sockex2");
    assert_eq!(after.result, TestResult::Fail);
    assert!(after.reason.contains("not run"), "{}", after.reason);
    assert_eq!(res.status(), SuiteStatus::Failed);
    assert!(inp.run_dir.join("results.json").is_file());
}

/// A guest (or a sink) that panics while the console tail runs.
struct PanickingGuest;
impl Guest for PanickingGuest {
    fn run(&self, _req: &GuestRequest, _sink: &dyn EventSink) -> Result<GuestReply, SuiteError> {
        panic!("the guest adapter panicked (e.g. writing progress to a closed stderr)");
    }
}

#[test]
fn a_panic_inside_the_guest_run_ends_the_suite_instead_of_hanging_it() {
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    let inp = input(d.path(), "kernel/jit", None);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            suite::run(&home, &inp, &PanickingGuest, &labctl::events::NullSink)
        }));
        let _ = tx.send(r.is_err());
    });
    // Before the fix the scoped console tail never stopped and this waited for ever.
    let panicked = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("suite::run hung after the guest panicked");
    assert!(panicked, "the panic propagates");
}

#[test]
fn a_foreign_architecture_makes_the_host_userland_tests_not_applicable_not_setup_skips() {
    // hello-bcc and bpftrace share the host's root with the guest: on an arm64 guest
    // from an x86_64 host (or the other way round) they cannot run, and that is not a
    // missing package.
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    let host = labctl::arch::Arch::host();
    let foreign = labctl::arch::Arch::all()
        .iter()
        .find(|a| a.name != host.name)
        .expect("a second architecture file");
    let g = FakeGuest {
        output: "@@LABCTL-DONE\n".into(),
        fail: None,
        seen: Mutex::new(vec![]),
    };
    let mut inp = input(d.path(), "hello-bcc,bpftrace", None);
    inp.arch = foreign;
    // What the host lacks does not matter: the verdict is about the architecture.
    inp.bcc = Bcc::Missing(BccMissing::PythonModule);
    let res = suite::run(&home, &inp, &g, &VecSink::default()).unwrap();
    for name in ["hello-bcc", "bpftrace"] {
        let t = res.tests.iter().find(|t| t.name == name).unwrap();
        assert_eq!(t.result, TestResult::Skip, "{name}");
        assert_eq!(t.skip, Some(SkipKind::NotApplicable), "{name}");
        assert!(t.reason.contains("cannot execute"), "{name}: {}", t.reason);
        assert!(t.reason.contains(&foreign.name), "{name}: {}", t.reason);
    }
    // Nothing was booted for them.
    assert!(g.seen.lock().unwrap().is_empty());
    // The same input for the host's own architecture: a setup skip (BCC missing).
    let mut native = input(d.path(), "hello-bcc", None);
    native.bcc = Bcc::Missing(BccMissing::PythonModule);
    let res = suite::run(&home, &native, &g, &VecSink::default()).unwrap();
    assert_eq!(res.tests[0].skip, Some(SkipKind::Setup));
}

/// A suite test defined outside the library: the extension point is one `SuiteTest` impl.
#[derive(Debug)]
struct Answer {
    /// What its judge says of a correct answer (false: it fails anyway).
    pass: bool,
}

impl suite::SuiteTest for Answer {
    fn id(&self) -> &str {
        "extra/answer"
    }
    fn about(&self) -> &str {
        "prints the answer"
    }
    fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(7)
    }
    fn needs(&self) -> suite::Needs {
        suite::Needs {
            sample: Some(suite::SampleFiles {
                program: "answer".into(),
                objects: vec!["answer_kern.o".into()],
            }),
            ..suite::Needs::default()
        }
    }
    fn guest_script(&self, _ctx: &suite::guest::ScriptCtx) -> String {
        "printf 'answer=%s\\n' $((6 * 7)); rc=$?\n".into()
    }
    fn judge(&self, out: &str, rc: Option<i32>, _ctx: &suite::JudgeCtx) -> suite::parse::Verdict {
        match (out.contains("answer=42") && rc == Some(0), self.pass) {
            (true, true) => suite::parse::Verdict::pass("the answer is 42"),
            (true, false) => suite::parse::Verdict::fail("the judge says no"),
            (false, _) => suite::parse::Verdict::fail(format!("no answer: {out}")),
        }
    }
}

/// Runs one test's lines from the runner script with `sh` on the host: the lines between
/// `begin ID` and `end ID $rc`, framed as the guest would frame them (none of the
/// runner's guest set-up runs here).
struct ShGuest {
    id: &'static str,
    seen: Mutex<Vec<GuestRequest>>,
}

impl Guest for ShGuest {
    fn run(&self, req: &GuestRequest, _sink: &dyn EventSink) -> Result<GuestReply, SuiteError> {
        self.seen.lock().unwrap().push(req.clone());
        let begin = format!("\nbegin {}\n", self.id);
        let end = format!("\nend {} $rc\n", self.id);
        let from = req.script.find(&begin).expect("the test is in the script") + begin.len();
        let to = from + req.script[from..].find(&end).expect("and its end");
        let script = format!(
            "begin() {{ echo \"@@LABCTL-BEGIN $1 t=1.0\"; }}\nend() {{ echo \"@@LABCTL-END $1 rc=$2 t=1.5\"; }}\nbegin {id}\n{body}\nend {id} $rc\necho @@LABCTL-DONE\n",
            id = self.id,
            body = &req.script[from..to],
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        Ok(GuestReply {
            exit_code: out.status.code().unwrap_or(-1),
            output: String::from_utf8_lossy(&out.stdout).into_owned(),
            console_log: None,
            accel: "tcg".into(),
        })
    }
}

#[test]
fn a_test_defined_outside_the_library_is_planned_scripted_and_judged() {
    for pass in [true, false] {
        let d = tempfile::tempdir().unwrap();
        let home = Home::new(d.path().join("home"));
        let samples = d.path().join("samples");
        std::fs::create_dir_all(&samples).unwrap();
        std::fs::write(samples.join("answer"), b"\x7fELF").unwrap();
        std::fs::write(samples.join("answer_kern.o"), b"obj").unwrap();
        let g = ShGuest {
            id: "extra/answer",
            seen: Mutex::new(vec![]),
        };
        let inp = input(d.path(), "", Some(samples));
        let tests: Vec<std::sync::Arc<dyn suite::SuiteTest>> =
            vec![std::sync::Arc::new(Answer { pass })];
        let res = suite::run_tests(&home, &inp, &tests, &g, &labctl::events::NullSink).unwrap();
        assert_eq!(res.tests.len(), 1);
        let t = &res.tests[0];
        assert_eq!(t.name, "extra/answer");
        assert!((t.duration_s - 0.5).abs() < 1e-6, "{t:?}");
        if pass {
            assert_eq!(t.result, TestResult::Pass, "{t:?}");
            assert_eq!(t.reason, "the answer is 42");
            assert_eq!(res.status(), SuiteStatus::Passed);
        } else {
            assert_eq!(t.result, TestResult::Fail, "{t:?}");
            assert_eq!(t.reason, "the judge says no");
            assert_eq!(res.status(), SuiteStatus::Failed);
        }
        // Planned from its needs: its program and object are the payload, its timeout
        // bounds the boot, and its lines ran framed with their own id.
        let reqs = g.seen.lock().unwrap();
        assert_eq!(reqs.len(), 1);
        let guests: Vec<&str> = reqs[0].files.iter().map(|f| f.guest.as_str()).collect();
        assert_eq!(
            guests,
            [
                "/labctl/suite/samples/answer",
                "/labctl/suite/samples/answer_kern.o"
            ]
        );
        assert_eq!(reqs[0].timeout, std::time::Duration::from_secs(7 + 120));
        assert!(reqs[0].script.contains(
            "\nbegin extra/answer\nprintf 'answer=%s\\n' $((6 * 7)); rc=$?\nend extra/answer $rc\n"
        ));
        let log = std::fs::read_to_string(t.log.as_ref().unwrap()).unwrap();
        assert!(log.contains("answer=42"), "{log}");
    }

    // Its needs unmet (no program in the build): a setup skip, and no boot at all.
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("samples");
    std::fs::create_dir_all(&empty).unwrap();
    let g = ShGuest {
        id: "extra/answer",
        seen: Mutex::new(vec![]),
    };
    let tests: Vec<std::sync::Arc<dyn suite::SuiteTest>> =
        vec![std::sync::Arc::new(Answer { pass: true })];
    let res = suite::run_tests(
        &Home::new(d.path().join("home")),
        &input(d.path(), "", Some(empty)),
        &tests,
        &g,
        &labctl::events::NullSink,
    )
    .unwrap();
    assert!(res.tests[0].is_setup_skip(), "{:?}", res.tests[0]);
    assert!(g.seen.lock().unwrap().is_empty());
}

#[test]
fn the_host_program_tests_share_one_vng_boot_planned_from_their_needs() {
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    let g = FakeGuest {
        output: "\
@@LABCTL-BEGIN hello-bcc t=1.0
attached: kprobe do_sys_openat2
trace: python3 Hello, World!
result: ok
@@LABCTL-END hello-bcc rc=0 t=3.0
@@LABCTL-BEGIN bpftrace t=3.0
== count
@opens: 5
== count rc=0
== missing
ERROR: Error attaching probe: 'kprobe:labctl_no_such_function'
== missing rc=255
@@LABCTL-END bpftrace rc=0 t=4.0
@@LABCTL-DONE
"
        .into(),
        fail: None,
        seen: Mutex::new(vec![]),
    };
    let mut inp = input(d.path(), "hello-bcc,bpftrace", None);
    inp.bcc = Bcc::Run {
        python: "/usr/bin/python3".into(),
        kernel_source: None,
    };
    inp.bpftrace = ToolInput::Ready {
        path: "/usr/bin/bpftrace".into(),
        sysroot: None,
    };
    let res = suite::run(&home, &inp, &g, &labctl::events::NullSink).unwrap();
    assert_eq!(res.counts(), (2, 0, 0), "{:?}", res.tests);
    let reqs = g.seen.lock().unwrap();
    assert_eq!(reqs.len(), 1, "one vng boot, no hermetic one");
    assert_eq!(reqs[0].backend, labctl::vm::Backend::Vng);
    assert!(reqs[0]
        .files
        .iter()
        .any(|f| f.guest == "/tmp/labctl/hello-bcc/hello.py"));
    let s = &reqs[0].script;
    assert!(
        s.contains("timeout -s KILL 600 /usr/bin/python3 /tmp/labctl/hello-bcc/hello.py 2>&1; rc=$?\necho \"@@LABCTL-END hello-bcc rc=$rc t=$(now)\"\n"),
        "{s}"
    );
    assert!(
        s.contains("timeout -s KILL 150 /usr/bin/bpftrace -e"),
        "{s}"
    );
    assert_eq!(
        reqs[0].timeout,
        std::time::Duration::from_secs(600 + 300 + 120)
    );
}
