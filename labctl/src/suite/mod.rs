//! The acceptance suite behind `labctl vm test`: which tests exist (one [`SuiteTest`]
//! impl each, listed in [`tests::all`]; their data files in `examples-bpf/`, see
//! [`catalog`]), the planner that turns each test's [`Needs`] into guest payload or a
//! typed skip ([`run`]), building the examples for the guest
//! ([`examples`]), the runner script that runs them all in ONE VM boot ([`guest`]),
//! judging each test's framed output ([`parse`]), the skips decided on the host with
//! what to do about them ([`skip`]), and reporting as a table, JSON and JUnit
//! ([`report`]). Owns [`SuiteResult`] and its [`SuiteStatus`]: a failed test makes the
//! run failed; a setup skip (the host or the build could not provide what a test needs)
//! makes it not verified unless `allow_skip`; requested and not-applicable skips are
//! allowed.
//!
//! The VM itself is reached through the small [`Guest`] trait so this module can be
//! tested without QEMU; the CLI implements it with the VM harness (`vm::run`).

pub mod catalog;
pub mod examples;
pub mod guest;
pub mod parse;
pub mod report;
pub mod skip;
pub mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::{Event, EventSink, SinkExt, SkipKind, TestResult};
use crate::home::{write_atomic, Home};
use crate::version::KernelVersion;
use crate::vm::Backend;

pub use guest::GuestFile;
use parse::Verdict;
pub use skip::{BccMissing, SamplesFailure, ToolInput};
pub use tests::{HostTool, JudgeCtx, Needs, SampleFiles, SuiteTest};

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("invalid suite data in {file}: {message}")]
    Data { file: &'static str, message: String },
    /// The host cannot build the examples (message names the missing package).
    #[error("{0}")]
    Toolchain(String),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rename {} -> {}: {source}", from.display(), to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The cache (its locks, atomic writes) failed.
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    /// A make of examples-bpf could not run or was interrupted.
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error("preparing BCC headers: {0}")]
    BccHeaders(#[source] crate::process::ProcessError),
    /// Boot failure, panic, timeout, ... (the VM harness's error, with its log).
    #[error(transparent)]
    Vm(Box<crate::vm::VmError>),
    /// The guest stopped before the suite finished, with no crash to blame.
    #[error("the guest stopped during `{test}` before the suite finished; results so far: {}", results.display())]
    Incomplete { test: String, results: PathBuf },
    /// The guest kernel crashed (panic, Oops, BUG) while the suite ran: the message
    /// with the console excerpt. The suite judges what finished from the results
    /// channel the VM harness wrote (`results.bin`) and fails the test that was running.
    #[error("{0}")]
    GuestCrashed(String),
    #[error("no test matches --filter {0:?}; `labctl vm test --list` shows the test ids")]
    NoTests(String),
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TestOutcome {
    pub name: String,
    pub result: TestResult,
    /// Why it was skipped (`setup`, `requested`, `not_applicable`); null unless skipped.
    #[serde(default, rename = "skip_kind")]
    pub skip: Option<SkipKind>,
    pub duration_s: f64,
    /// What was seen, in words (the table shows it, shortened to fit).
    pub reason: String,
    /// The long form: regexes, matched lines, counts, advice. Also in the per-test log.
    #[serde(default)]
    pub detail: Option<String>,
    /// Per-test log in the run folder.
    pub log: Option<PathBuf>,
}

impl TestOutcome {
    fn new(name: &str, v: Verdict, duration: Duration, log: Option<PathBuf>) -> Self {
        TestOutcome {
            name: name.to_string(),
            result: v.result,
            skip: v.skip,
            duration_s: round(duration),
            reason: v.reason,
            detail: v.detail,
            log,
        }
    }
    /// A setup skip: the host or the build could not provide what this test needs.
    pub fn is_setup_skip(&self) -> bool {
        self.result == TestResult::Skip && self.skip == Some(SkipKind::Setup)
    }
}

/// The verdict on a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuiteStatus {
    /// No test failed and no setup skip counts (none, or `allow_skip`).
    Passed,
    /// No test failed, but setup skips mean the lab is not verified.
    NotVerified,
    /// A test failed (whatever else was skipped).
    Failed,
}

/// A whole suite run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SuiteResult {
    /// Kernel version tested.
    pub kernel: String,
    /// Its release string (`uname -r`).
    pub release: String,
    /// Accelerator the VM used.
    pub accel: String,
    pub duration_s: f64,
    pub run_dir: Option<PathBuf>,
    pub tests: Vec<TestOutcome>,
    /// `--allow-skip`: setup skips are reported but do not make the run not verified.
    #[serde(default)]
    pub allow_skip: bool,
}

impl SuiteResult {
    /// (passed, failed, skipped)
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |r| self.tests.iter().filter(|t| t.result == r).count();
        (
            n(TestResult::Pass),
            n(TestResult::Fail),
            n(TestResult::Skip),
        )
    }
    /// Skipped tests of one kind. A skip without a kind (an old results.json) counts as
    /// a setup skip: nothing says it was allowed.
    pub fn skipped(&self, kind: SkipKind) -> usize {
        self.tests
            .iter()
            .filter(|t| t.result == TestResult::Skip && t.skip.unwrap_or(SkipKind::Setup) == kind)
            .count()
    }
    /// Failed beats not verified: a failed test is a broken lab whatever was skipped.
    pub fn status(&self) -> SuiteStatus {
        if self.tests.iter().any(|t| t.result == TestResult::Fail) {
            SuiteStatus::Failed
        } else if !self.allow_skip && self.skipped(SkipKind::Setup) > 0 {
            SuiteStatus::NotVerified
        } else {
            SuiteStatus::Passed
        }
    }
}

/// What the suite asks of the VM: files, the runner script, a timeout.
#[derive(Debug, Clone)]
pub struct GuestRequest {
    pub files: Vec<GuestFile>,
    pub script: String,
    /// Whole-run timeout (the sum of the per-test timeouts plus boot slack).
    pub timeout: Duration,
    /// Where the VM writes console.log, results and the run's files.
    pub run_dir: PathBuf,
    /// Which backend boots it: QEMU with labctl's initramfs, or virtme-ng (the host's
    /// userland over 9p) for hello-bcc and bpftrace.
    pub backend: Backend,
    /// More guest memory/CPUs help BCC's in-guest LLVM.
    pub memory_mb: Option<u32>,
    pub cpus: Option<u32>,
}

/// What came back from the guest.
#[derive(Debug, Clone)]
pub struct GuestReply {
    pub exit_code: i32,
    /// The runner's stdout+stderr.
    pub output: String,
    pub console_log: Option<PathBuf>,
    pub accel: String,
}

/// Boots a kernel and runs a script in it. The CLI implements this with `vm::run`.
pub trait Guest: Sync {
    fn run(&self, req: &GuestRequest, sink: &dyn EventSink) -> Result<GuestReply, SuiteError>;
}

/// Whether hello-bcc can run here.
#[derive(Debug, Clone, PartialEq)]
pub enum Bcc {
    /// `--no-bcc`: a requested skip.
    NotRequested,
    /// The host lacks BCC or vng: a setup skip that says what to install.
    Missing(BccMissing),
    /// Run hello.py with this python (one that imports bcc); `kernel_source` is the
    /// kernel build folder BCC takes its headers from (`BCC_KERNEL_SOURCE`) when the
    /// kernel has no CONFIG_IKHEADERS.
    Run {
        python: PathBuf,
        kernel_source: Option<PathBuf>,
    },
}

/// Everything the suite needs to know about the kernel under test.
#[derive(Debug, Clone)]
pub struct SuiteInput {
    pub kernel: KernelVersion,
    pub release: String,
    /// The build's samples/bpf artifacts folder (programs and objects).
    pub samples_dir: Option<PathBuf>,
    /// The root filesystem whose libraries the samples were linked against
    /// (`--toolchain debian:<suite>` builds); None = the host's.
    pub samples_sysroot: Option<PathBuf>,
    /// Why programs may be missing from it: the build's samples/bpf step failed (its
    /// first error, log and catalogue entries go into a missing sample's skip detail).
    pub samples_failure: Option<SamplesFailure>,
    /// lib/test_bpf.ko from the build.
    pub test_bpf_ko: Option<PathBuf>,
    /// `SYMBOL=value` pairs /proc/config.gz must agree with (without `CONFIG_`).
    pub expected_config: Vec<(String, String)>,
    /// `--filter` (comma-separated globs), empty for all.
    pub filter: String,
    /// `--skip` (comma-separated globs): tests not to run, reported as requested skips.
    pub skip: String,
    /// `--full`: the whole test_bpf set.
    pub full: bool,
    pub bcc: Bcc,
    /// The kernel's own bpftool (the `bpftool` test, hermetic guest).
    pub bpftool: ToolInput,
    /// The host's bpftrace (the `bpftrace` test, in the vng boot with hello-bcc).
    pub bpftrace: ToolInput,
    /// Faults to inject in the guest before the tests (`--inject`).
    pub inject: Vec<guest::Fault>,
    /// `home.runs()/<time>-<ver>/`.
    pub run_dir: PathBuf,
    /// `--allow-skip`: setup skips do not make the run not verified.
    pub allow_skip: bool,
    /// examples-bpf programs that came with the build (a pulled build): used instead
    /// of building them on this host.
    pub examples: Option<examples::Prebuilt>,
    /// The kernel's architecture (its test_bpf counts, the loaders' target, which
    /// tests need the host's own userland).
    pub arch: &'static crate::arch::Arch,
    /// A foreign architecture's guest userland root (the loaders' sysroot and
    /// libraries); None: the host's.
    pub guest_root: Option<PathBuf>,
}

/// The selected tests for `input` (what `--list` prints).
pub fn selected(
    input_kernel: &KernelVersion,
    full: bool,
    filter: &str,
    arch: &crate::arch::Arch,
) -> Result<Vec<Arc<dyn SuiteTest>>, SuiteError> {
    let sel: Vec<Arc<dyn SuiteTest>> = tests::all(input_kernel, full, arch)?
        .into_iter()
        .filter(|t| catalog::matches_filter(t.id(), filter))
        .collect();
    if sel.is_empty() {
        return Err(SuiteError::NoTests(filter.to_string()));
    }
    Ok(sel)
}

/// A new run folder name: `<unix time>-<version>`.
pub fn run_dir_name(kernel: &KernelVersion) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{t}-{kernel}")
}

fn log_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir
        .join("tests")
        .join(format!("{}.log", name.replace('/', "__")))
}

/// A per-test log: the verdict (result, reason, detail) on top, then the test's output.
pub fn log_text(name: &str, v: &Verdict, output: &str) -> String {
    let result = report::result_word(v.result);
    let mut s = match v.skip {
        Some(k) => format!("labctl: {name}: {result} ({})\n", k.word()),
        None => format!("labctl: {name}: {result}\n"),
    };
    s.push_str(&format!("labctl: reason: {}\n", v.reason));
    if let Some(d) = &v.detail {
        s.push_str(&format!("labctl: detail: {d}\n"));
    }
    s.push_str("---- output ----\n");
    s.push_str(output);
    s
}

/// Maps an `io::Error` into a [`SuiteError::Io`] that names the operation and the path.
pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SuiteError {
    let path = path.to_path_buf();
    move |source| SuiteError::Io { op, path, source }
}

impl SuiteError {
    /// True for Ctrl-C, while building the examples, waiting for a lock or in the VM.
    pub fn is_interrupted(&self) -> bool {
        match self {
            SuiteError::Home(e) => e.is_interrupted(),
            SuiteError::Process(e) | SuiteError::BccHeaders(e) => e.is_interrupted(),
            SuiteError::Vm(e) => e.is_interrupted(),
            _ => false,
        }
    }
}

/// Follows the guest's console while the VM runs: a sink in front of the caller's that
/// turns the runner's `labctl-suite: start NAME` kmsg lines (typed
/// [`Event::ConsoleLine`]s from the VM runner) into live `TestStarted` events, and
/// passes every event on.
struct ConsoleTail<'a> {
    seen: std::sync::Mutex<Vec<String>>,
    sink: &'a dyn EventSink,
}

impl EventSink for ConsoleTail<'_> {
    fn emit(&self, event: Event) {
        if let Event::ConsoleLine { line } = &event {
            if let Some(name) = line.split("labctl-suite: start ").nth(1) {
                let name = name.trim().to_string();
                self.seen.lock().unwrap().push(name.clone());
                self.sink.emit(Event::TestStarted { name });
            }
        }
        self.sink.emit(event);
    }
}

/// Plan, run (one boot), judge and report. `Err` only for infrastructure failures
/// (cannot build the examples, the VM failed); failed tests are in the result.
pub fn run(
    home: &Home,
    input: &SuiteInput,
    guest: &dyn Guest,
    sink: &dyn EventSink,
) -> Result<SuiteResult, SuiteError> {
    let tests = selected(&input.kernel, input.full, &input.filter, input.arch)?;
    run_tests(home, input, &tests, guest, sink)
}

/// Why `t` cannot run with what the host has, as the skip to report; None: it can.
fn host_verdict(t: &dyn SuiteTest, input: &SuiteInput) -> Option<Verdict> {
    if let Some(why) = t.not_applicable(&input.kernel, input.arch) {
        return Some(skip::not_applicable(&why));
    }
    // A test that runs the host's own userland (virtme-ng shares the host's root) can
    // only run on a guest of the host's architecture.
    if t.needs().host.is_some() && !input.arch.is_host() {
        return Some(skip::not_on_arch(t.id(), input.arch));
    }
    if !input.skip.is_empty() && catalog::matches_filter(t.id(), &input.skip) {
        return Some(skip::skip_requested());
    }
    let needs = t.needs();
    if needs.bpftool {
        if let Some(v) = input.bpftool.verdict() {
            return Some(v);
        }
    }
    if let Some(s) = &needs.sample {
        let Some(dir) = &input.samples_dir else {
            return Some(skip::no_samples_dir());
        };
        if !dir.join(&s.program).is_file() {
            return Some(match &input.samples_failure {
                Some(f) => f.verdict(),
                None => skip::sample_not_built(dir),
            });
        }
    }
    match needs.host {
        Some(HostTool::Bcc) => match &input.bcc {
            Bcc::Run { .. } => None,
            Bcc::NotRequested => Some(skip::bcc_not_requested()),
            Bcc::Missing(m) => Some(m.verdict()),
        },
        Some(HostTool::Bpftrace) => match (input.bpftrace.verdict(), vng_ready(&input.bcc)) {
            (None, Ok(())) => None,
            (None, Err(v)) => Some(v),
            (Some(v), _) => Some(v),
        },
        None => None,
    }
}

/// [`run`] over a given list of tests (in report order), e.g. [`selected`]'s.
pub fn run_tests(
    home: &Home,
    input: &SuiteInput,
    tests: &[Arc<dyn SuiteTest>],
    guest: &dyn Guest,
    sink: &dyn EventSink,
) -> Result<SuiteResult, SuiteError> {
    let start = Instant::now();
    let tests_dir = input.run_dir.join("tests");
    std::fs::create_dir_all(&tests_dir).map_err(io_err("create directory", &tests_dir))?;

    // Decide on the host what cannot run, and where the rest runs: the hermetic QEMU
    // guest, or the vng boot for the tests that need a host program.
    let mut host_verdicts: Vec<(String, Verdict)> = Vec::new();
    let mut in_guest: Vec<Arc<dyn SuiteTest>> = Vec::new();
    let mut vng_tests: Vec<Arc<dyn SuiteTest>> = Vec::new();
    for t in tests {
        match host_verdict(t.as_ref(), input) {
            Some(v) => host_verdicts.push((t.id().to_string(), v)),
            None if t.needs().host.is_some() => vng_tests.push(t.clone()),
            None => in_guest.push(t.clone()),
        }
    }

    // The hermetic guest's payload, from what its tests need.
    let needs: Vec<tests::Needs> = in_guest.iter().map(|t| t.needs()).collect();
    let mut files: Vec<GuestFile> = Vec::new();
    if needs.iter().any(|n| n.bpftool) {
        if let ToolInput::Ready { path, sysroot } = &input.bpftool {
            files.push(GuestFile {
                host: path.clone(),
                guest: guest::GUEST_BPFTOOL.into(),
                with_libs: true,
                sysroot: sysroot.clone(),
            });
        }
    }
    if let Some(dir) = &input.samples_dir {
        for s in needs.iter().filter_map(|n| n.sample.as_ref()) {
            files.push(GuestFile {
                host: dir.join(&s.program),
                guest: format!("{}/samples/{}", guest::GUEST_DIR, s.program),
                with_libs: true,
                sysroot: input.samples_sysroot.clone(),
            });
            for o in &s.objects {
                let p = dir.join(o);
                if p.is_file() {
                    files.push(GuestFile {
                        host: p,
                        guest: format!("{}/samples/{o}", guest::GUEST_DIR),
                        with_libs: false,
                        sysroot: None,
                    });
                }
            }
        }
    }
    if needs.iter().any(|n| n.examples) {
        let (bin, sysroot) = match &input.examples {
            Some(p) => (p.bin.clone(), p.sysroot.clone()),
            None => {
                let root = input.guest_root.as_deref();
                let target = examples::Target {
                    arch: input.arch,
                    root,
                };
                (
                    examples::build(home, &target, sink)?.bin,
                    root.map(Path::to_path_buf),
                )
            }
        };
        for o in examples::OUTPUTS {
            files.push(GuestFile {
                host: bin.join(o),
                guest: format!("{}/bin/{o}", guest::GUEST_DIR),
                // A loader linked dynamically (where the host's static libraries do
                // not link) brings its shared libraries; static files bring nothing.
                with_libs: true,
                sysroot: sysroot.clone(),
            });
        }
    }
    let mut ctx = guest::ScriptCtx {
        inject: input.inject.clone(),
        ..guest::ScriptCtx::default()
    };
    if let Some(ko) = &input.test_bpf_ko {
        if needs.iter().any(|n| n.test_bpf_ko) && ko.is_file() {
            let g = format!("{}/modules/test_bpf.ko", guest::GUEST_DIR);
            files.push(GuestFile {
                host: ko.clone(),
                guest: g.clone(),
                with_libs: false,
                sysroot: None,
            });
            ctx.test_bpf_ko = Some(g);
        }
    }
    let judge_ctx = tests::JudgeCtx {
        expected_config: &input.expected_config,
    };

    // The vng boot (hello-bcc, bpftrace) runs beside the hermetic guest: each is one
    // TCG guest on one host core, and the vng boot (BCC compiling its C) is the longer
    // of the two. One after the other, a 5.10 `vm test` took 39 s, 10 s of it the
    // hermetic guest.
    std::thread::scope(|scope| {
        let vng = (!vng_tests.is_empty())
            .then(|| scope.spawn(|| run_vng(home, input, &vng_tests, guest, sink)));
        let hermetic = run_hermetic(input, &in_guest, files, &ctx, &judge_ctx, guest, sink);
        let vng = vng.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        finish(
            input,
            tests,
            start,
            hermetic?,
            vng.transpose()?,
            host_verdicts,
            sink,
        )
    })
}

/// What the hermetic guest gave: outcomes, accelerator, the test it stopped in (an
/// incomplete run) and the crash message (a kernel crash under a test).
struct Hermetic {
    outcomes: Vec<TestOutcome>,
    accel: String,
    incomplete: Option<String>,
    crashed: Option<String>,
}

/// Boot the hermetic guest with `in_guest`'s runner and judge each test's frame.
fn run_hermetic(
    input: &SuiteInput,
    in_guest: &[Arc<dyn SuiteTest>],
    files: Vec<GuestFile>,
    ctx: &guest::ScriptCtx,
    judge_ctx: &tests::JudgeCtx,
    guest: &dyn Guest,
    sink: &dyn EventSink,
) -> Result<Hermetic, SuiteError> {
    let mut outcomes: Vec<TestOutcome> = Vec::new();
    let mut accel = String::from("-");
    let mut incomplete: Option<String> = None;
    let mut crashed: Option<String> = None;
    if !in_guest.is_empty() {
        let script = guest::runner_script(in_guest, ctx);
        write_atomic(&input.run_dir.join("runner.sh"), script.as_bytes())?;
        let timeout =
            in_guest.iter().map(|t| t.timeout()).sum::<Duration>() + Duration::from_secs(120);
        let req = GuestRequest {
            files,
            script,
            timeout,
            run_dir: input.run_dir.clone(),
            backend: Backend::Qemu,
            memory_mb: None,
            cpus: None,
        };
        let tail = ConsoleTail {
            seen: Default::default(),
            sink,
        };
        let reply = match guest.run(&req, &tail) {
            Ok(r) => r,
            // A test crashed the kernel: what finished is on the results channel; the
            // test that was running fails with the crash, the rest were not run.
            Err(SuiteError::GuestCrashed(message)) => {
                crashed = Some(message);
                GuestReply {
                    exit_code: -1,
                    output: std::fs::read(input.run_dir.join("results.bin"))
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default(),
                    console_log: Some(input.run_dir.join("console.log")),
                    accel: "-".into(),
                }
            }
            Err(e) => return Err(e),
        };
        accel = reply.accel.clone();
        write_atomic(&input.run_dir.join("output.txt"), reply.output.as_bytes())?;
        let frames = parse::split_frames(&reply.output);
        let seen = tail.seen.lock().unwrap().clone();
        for t in in_guest {
            let rec = frames.records.iter().find(|r| r.name == t.id());
            let (verdict, dur, out) = match rec {
                Some(r) => (
                    t.judge(&r.output, r.rc, judge_ctx),
                    r.duration,
                    r.output.clone(),
                ),
                None => {
                    let why = if frames.done {
                        "the runner did not run it"
                    } else {
                        "not run: the guest stopped before reaching it"
                    };
                    (Verdict::fail(why), Duration::ZERO, String::new())
                }
            };
            let mut verdict = verdict;
            if !frames.done && incomplete.is_none() && rec.is_none_or(|r| r.rc.is_none()) {
                incomplete = Some(t.id().to_string());
                if let (Some(msg), Some(_)) = (&crashed, rec) {
                    verdict =
                        Verdict::fail("the guest kernel crashed while it ran").detail(msg.clone());
                }
            }
            let log = log_path(&input.run_dir, t.id());
            write_atomic(&log, log_text(t.id(), &verdict, &out).as_bytes())?;
            if !seen.iter().any(|s| s == t.id()) {
                sink.emit(Event::TestStarted {
                    name: t.id().to_string(),
                });
            }
            sink.emit(finished(t.id(), &verdict, dur));
            outcomes.push(TestOutcome::new(t.id(), verdict, dur, Some(log)));
        }
    }
    Ok(Hermetic {
        outcomes,
        accel,
        incomplete,
        crashed,
    })
}

/// Merge the hermetic guest's and the vng boot's outcomes with the host's verdicts,
/// write results.json and junit.xml, and say how the run ended.
fn finish(
    input: &SuiteInput,
    tests: &[Arc<dyn SuiteTest>],
    start: Instant,
    hermetic: Hermetic,
    vng: Option<(Vec<TestOutcome>, Option<String>)>,
    host_verdicts: Vec<(String, Verdict)>,
    sink: &dyn EventSink,
) -> Result<SuiteResult, SuiteError> {
    let Hermetic {
        mut outcomes,
        mut accel,
        incomplete,
        crashed,
    } = hermetic;
    if let Some((os, vng_accel)) = vng {
        if accel == "-" {
            accel = vng_accel.unwrap_or(accel);
        }
        outcomes.extend(os);
    }
    for (name, v) in host_verdicts {
        let log = log_path(&input.run_dir, &name);
        write_atomic(&log, log_text(&name, &v, "").as_bytes())?;
        sink.emit(finished(&name, &v, Duration::ZERO));
        outcomes.push(TestOutcome::new(&name, v, Duration::ZERO, Some(log)));
    }
    // Report in catalogue order.
    outcomes.sort_by_key(|o| {
        tests
            .iter()
            .position(|t| t.id() == o.name)
            .unwrap_or(usize::MAX)
    });
    let res = SuiteResult {
        kernel: input.kernel.to_string(),
        release: input.release.clone(),
        accel,
        duration_s: round(start.elapsed()),
        run_dir: Some(input.run_dir.clone()),
        tests: outcomes,
        allow_skip: input.allow_skip,
    };
    write_atomic(
        &input.run_dir.join("results.json"),
        report::json(&res).as_bytes(),
    )?;
    write_atomic(
        &input.run_dir.join("junit.xml"),
        report::junit(&res).as_bytes(),
    )?;
    if crashed.is_some() {
        // A kernel crash under a test is that test failing, not the harness.
        return Ok(res);
    }
    if let Some(name) = incomplete {
        return Err(SuiteError::Incomplete {
            test: name,
            results: input.run_dir.join("results.json"),
        });
    }
    Ok(res)
}

fn finished(name: &str, v: &Verdict, duration: Duration) -> Event {
    Event::TestFinished {
        name: name.to_string(),
        result: v.result,
        skip: v.skip,
        duration,
        reason: v.reason.clone(),
    }
}

fn round(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Apply the test's judge to its record.
pub fn judge(
    t: &dyn SuiteTest,
    r: &parse::Record,
    expected_config: &[(String, String)],
) -> Verdict {
    t.judge(&r.output, r.rc, &JudgeCtx { expected_config })
}

/// Whether the vng boot can happen: vng is there (hello-bcc's probe says so), or the
/// setup skip that says why not. `--no-bcc` only skips hello-bcc.
fn vng_ready(bcc: &Bcc) -> Result<(), Verdict> {
    match bcc {
        Bcc::Missing(BccMissing::Vng) => Err(BccMissing::Vng.verdict()),
        _ => Ok(()),
    }
}

/// The tests that need a host program (hello-bcc's BCC, bpftrace) in one vng boot: the
/// programs come from the host over 9p; hello-bcc's sources go in as payload. Returns
/// the outcomes and the accelerator.
fn run_vng(
    home: &Home,
    input: &SuiteInput,
    tests: &[Arc<dyn SuiteTest>],
    g: &dyn Guest,
    sink: &dyn EventSink,
) -> Result<(Vec<TestOutcome>, Option<String>), SuiteError> {
    let mut files: Vec<GuestFile> = Vec::new();
    let mut ctx = guest::ScriptCtx::default();
    let mut ready: Vec<HostTool> = Vec::new();
    for t in tests {
        sink.emit(Event::TestStarted {
            name: t.id().to_string(),
        });
        let Some(tool) = t.needs().host else {
            unreachable!("only tests that need a host program boot under vng")
        };
        if ready.contains(&tool) {
            continue;
        }
        ready.push(tool);
        match tool {
            HostTool::Bcc => {
                let src = home.root().join("examples");
                examples::write_sources(&src, examples::BCC_SOURCES)?;
                // The host root is read-only in a vng guest: the payload goes under /tmp.
                files.extend(examples::BCC_SOURCES.iter().map(|(rel, _)| GuestFile {
                    host: src.join(rel),
                    guest: format!("{}/{rel}", guest::VNG_PAYLOAD),
                    with_libs: false,
                    sysroot: None,
                }));
                let Bcc::Run {
                    python,
                    kernel_source,
                } = &input.bcc
                else {
                    unreachable!("a BCC test in the vng boot without Bcc::Run")
                };
                ctx.python = Some(python.display().to_string());
                ctx.bcc_kernel_source = match kernel_source {
                    Some(k) => Some(
                        examples::bcc_headers(home, k, &input.release, sink)?
                            .display()
                            .to_string(),
                    ),
                    None => None,
                };
            }
            HostTool::Bpftrace => {
                let ToolInput::Ready { path, .. } = &input.bpftrace else {
                    unreachable!("bpftrace in the vng boot without the program")
                };
                ctx.bpftrace = Some(path.display().to_string());
            }
        }
    }
    let script = guest::vng_script(tests, &ctx);
    let run_dir = input.run_dir.join("vng");
    std::fs::create_dir_all(&run_dir).map_err(io_err("create directory", &run_dir))?;
    let req = GuestRequest {
        files,
        script,
        timeout: tests.iter().map(|t| t.timeout()).sum::<Duration>() + Duration::from_secs(120),
        run_dir,
        backend: Backend::Vng,
        memory_mb: Some(2048),
        cpus: Some(2),
    };
    let reply = g.run(&req, sink);
    let mut accel = None;
    let mut outcomes = Vec::new();
    let frames = match &reply {
        Ok(r) => {
            accel = Some(r.accel.clone());
            Some(parse::split_frames(&r.output))
        }
        Err(e) => {
            sink.warn(format!(
                "{}: the vng boot failed: {e}",
                tests.iter().map(|t| t.id()).collect::<Vec<_>>().join(", ")
            ));
            None
        }
    };
    for t in tests {
        let (verdict, dur, out) = match (&reply, &frames) {
            (Ok(r), Some(f)) => match f.records.iter().find(|x| x.name == t.id()) {
                Some(rec) => (
                    judge(t.as_ref(), rec, &[]),
                    rec.duration,
                    rec.output.clone(),
                ),
                None => (
                    Verdict::fail(format!("{} produced no framed result under vng", t.id())),
                    Duration::ZERO,
                    r.output.clone(),
                ),
            },
            (Err(e), _) => (
                Verdict::fail("the vng boot failed").detail(format!("vng boot failed: {e}")),
                Duration::ZERO,
                e.to_string(),
            ),
            (Ok(r), None) => (Verdict::fail("no output"), Duration::ZERO, r.output.clone()),
        };
        let log = log_path(&input.run_dir, t.id());
        write_atomic(&log, log_text(t.id(), &verdict, &out).as_bytes())?;
        sink.emit(finished(t.id(), &verdict, dur));
        outcomes.push(TestOutcome::new(t.id(), verdict, dur, Some(log)));
    }
    Ok((outcomes, accel))
}

#[cfg(test)]
mod console_tail {
    use super::*;
    use crate::events::VecSink;

    #[test]
    fn the_console_tail_turns_start_lines_into_test_started_and_passes_all_on() {
        let out = VecSink::default();
        let tail = ConsoleTail {
            seen: Default::default(),
            sink: &out,
        };
        let sink: &dyn EventSink = &tail;
        sink.emit(Event::ConsoleLine {
            line: "[    3.1] labctl-suite: start kernel/jit".into(),
        });
        sink.emit(Event::ConsoleLine {
            line: "[    3.2] ordinary".into(),
        });
        sink.info("a message");
        assert_eq!(*tail.seen.lock().unwrap(), ["kernel/jit"]);
        let events = out.events();
        assert!(
            matches!(&events[0], Event::TestStarted { name } if name == "kernel/jit"),
            "{events:?}"
        );
        assert_eq!(events.len(), 4, "{events:?}");
        assert!(matches!(&events[3], Event::Message { text, .. } if text == "a message"));
    }
}
