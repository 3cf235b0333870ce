//! The acceptance suite behind `labctl vm test`: which tests exist (data files in
//! `examples-bpf/`, see [`catalog`]), building the examples for the guest
//! ([`examples`]), the runner script that runs them all in ONE VM boot ([`guest`]),
//! judging each test's framed output ([`parse`]), and reporting as a table, JSON and
//! JUnit ([`report`]). Owns [`SuiteResult`].
//!
//! The VM itself is reached through the small [`Guest`] trait so this module can be
//! tested without QEMU; the CLI implements it with the VM harness (`vm::run`).

pub mod catalog;
pub mod examples;
pub mod guest;
pub mod parse;
pub mod report;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::events::{Event, EventSink, SinkExt, TestResult};
use crate::home::{write_atomic, Home};
use crate::version::KernelVersion;

use catalog::{Kind, TestDef};
pub use guest::GuestFile;
use parse::Verdict;

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("invalid suite data in {file}: {message}")]
    Data { file: &'static str, message: String },
    /// The host cannot build the examples (message names the missing package).
    #[error("{0}")]
    Toolchain(String),
    #[error("{0}")]
    Io(String),
    /// Boot failure, panic, timeout, ... (the VM harness's message, with its log).
    #[error("{0}")]
    Vm(String),
    #[error("no test matches --filter {0:?}; `labctl vm test --list` shows the test ids")]
    NoTests(String),
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TestOutcome {
    pub name: String,
    pub result: TestResult,
    pub duration_s: f64,
    pub reason: String,
    /// Per-test log in the run folder.
    pub log: Option<PathBuf>,
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
    pub fn all_passed(&self) -> bool {
        self.counts().1 == 0
    }
}

/// What the suite asks of the VM: files, the runner script, a timeout.
#[derive(Debug, Clone)]
pub struct GuestRequest {
    pub files: Vec<GuestFile>,
    pub script: String,
    /// Whole-run timeout (the sum of the per-test timeouts plus boot slack).
    pub timeout: Duration,
    /// Where the VM writes console.log (the suite tails it for live progress).
    pub run_dir: PathBuf,
    /// Use the virtme-ng backend (host userland over 9p), for hello-bcc.
    pub vng: bool,
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
pub trait Guest {
    fn run(&self, req: &GuestRequest, sink: &dyn EventSink) -> Result<GuestReply, SuiteError>;
}

/// Whether hello-bcc can run here.
#[derive(Debug, Clone, PartialEq)]
pub enum Bcc {
    /// Run hello.py with this python (one that imports bcc); `kernel_source` is the
    /// kernel build folder BCC takes its headers from (`BCC_KERNEL_SOURCE`) when the
    /// kernel has no CONFIG_IKHEADERS.
    Run {
        python: PathBuf,
        kernel_source: Option<PathBuf>,
    },
    Skip(String),
}

/// Everything the suite needs to know about the kernel under test.
#[derive(Debug, Clone)]
pub struct SuiteInput {
    pub kernel: KernelVersion,
    pub release: String,
    /// The build's samples/bpf artifacts folder (programs and objects).
    pub samples_dir: Option<PathBuf>,
    /// Why programs may be missing from it (e.g. the samples/bpf build failed, with its
    /// first error and log), appended to a missing sample's skip reason.
    pub samples_note: Option<String>,
    /// lib/test_bpf.ko from the build.
    pub test_bpf_ko: Option<PathBuf>,
    /// `SYMBOL=value` pairs /proc/config.gz must agree with (without `CONFIG_`).
    pub expected_config: Vec<(String, String)>,
    /// `--filter` (comma-separated globs), empty for all.
    pub filter: String,
    /// `--full`: the whole test_bpf set.
    pub full: bool,
    pub bcc: Bcc,
    /// Faults to inject in the guest before the tests (`--inject`).
    pub inject: Vec<guest::Fault>,
    /// `home.runs()/<time>-<ver>/`.
    pub run_dir: PathBuf,
}

/// The selected tests for `input` (what `--list` prints).
pub fn selected(
    input_kernel: &KernelVersion,
    full: bool,
    filter: &str,
) -> Result<Vec<TestDef>, SuiteError> {
    let all = catalog::tests_for(input_kernel, full)?;
    let sel: Vec<TestDef> = all
        .into_iter()
        .filter(|t| catalog::matches_filter(&t.name, filter))
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

fn io(e: impl std::fmt::Display) -> SuiteError {
    SuiteError::Io(e.to_string())
}

/// Tails `console.log` in the run folder while the VM runs and turns the runner's
/// `labctl-suite: start NAME` kmsg lines into live `TestStarted` events.
struct ConsoleTail<'a> {
    stop: AtomicBool,
    seen: std::sync::Mutex<Vec<String>>,
    sink: &'a dyn EventSink,
}

impl ConsoleTail<'_> {
    fn run(&self, dir: &Path) {
        let mut offset = 0usize;
        let mut partial = String::new();
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(250));
            let Ok(bytes) = std::fs::read(dir.join("console.log")) else {
                continue;
            };
            if bytes.len() <= offset {
                continue;
            }
            partial.push_str(&String::from_utf8_lossy(&bytes[offset..]));
            offset = bytes.len();
            while let Some(i) = partial.find('\n') {
                let line: String = partial.drain(..=i).collect();
                if let Some(name) = line.split("labctl-suite: start ").nth(1) {
                    let name = name.trim().to_string();
                    self.seen.lock().unwrap().push(name.clone());
                    self.sink.emit(Event::TestStarted { name });
                }
            }
        }
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
    let start = Instant::now();
    let tests = selected(&input.kernel, input.full, &input.filter)?;
    std::fs::create_dir_all(input.run_dir.join("tests")).map_err(io)?;

    // Decide on the host what cannot run in the guest.
    let mut host_verdicts: Vec<(String, Verdict)> = Vec::new();
    let mut in_guest: Vec<TestDef> = Vec::new();
    let mut bcc_test: Option<TestDef> = None;
    let mut files: Vec<GuestFile> = Vec::new();
    for t in &tests {
        match &t.kind {
            Kind::HelloBcc => match &input.bcc {
                Bcc::Run { .. } => bcc_test = Some(t.clone()),
                Bcc::Skip(why) => host_verdicts.push((t.name.clone(), Verdict::skip(why.clone()))),
            },
            Kind::Sample(s) => {
                let Some(dir) = &input.samples_dir else {
                    host_verdicts.push((
                        t.name.clone(),
                        Verdict::skip("this build has no samples/bpf"),
                    ));
                    continue;
                };
                let prog = dir.join(&s.name);
                if !prog.is_file() {
                    host_verdicts.push((
                        t.name.clone(),
                        Verdict::skip(match &input.samples_note {
                            Some(why) => format!("{} was not built in this kernel's samples/bpf: {why}", s.name),
                            None => format!("{} was not built in this kernel's samples/bpf", s.name),
                        }),
                    ));
                    continue;
                }
                files.push(GuestFile {
                    host: prog,
                    guest: format!("{}/samples/{}", guest::GUEST_DIR, s.name),
                    with_libs: true,
                });
                for o in &s.objects {
                    let p = dir.join(o);
                    if p.is_file() {
                        files.push(GuestFile {
                            host: p,
                            guest: format!("{}/samples/{o}", guest::GUEST_DIR),
                            with_libs: false,
                        });
                    }
                }
                in_guest.push(t.clone());
            }
            _ => in_guest.push(t.clone()),
        }
    }
    let needs_examples = in_guest.iter().any(|t| {
        matches!(
            t.kind,
            Kind::Btf | Kind::Hello | Kind::CbpfPort80 | Kind::CoreHello
        )
    });
    if needs_examples {
        let ex = examples::build(home, sink)?;
        for o in examples::OUTPUTS {
            files.push(GuestFile {
                host: ex.bin.join(o),
                guest: format!("{}/bin/{o}", guest::GUEST_DIR),
                with_libs: false,
            });
        }
    }
    let mut ctx = guest::ScriptCtx {
        test_bpf_ko: None,
        inject: input.inject.clone(),
    };
    if let Some(ko) = &input.test_bpf_ko {
        if in_guest.iter().any(|t| matches!(t.kind, Kind::TestBpf(_))) && ko.is_file() {
            let g = format!("{}/modules/test_bpf.ko", guest::GUEST_DIR);
            files.push(GuestFile {
                host: ko.clone(),
                guest: g.clone(),
                with_libs: false,
            });
            ctx.test_bpf_ko = Some(g);
        }
    }

    let mut outcomes: Vec<TestOutcome> = Vec::new();
    let mut accel = String::from("-");
    let mut incomplete: Option<String> = None;
    if !in_guest.is_empty() {
        let script = guest::runner_script(&in_guest, &ctx);
        write_atomic(&input.run_dir.join("runner.sh"), script.as_bytes()).map_err(io)?;
        let timeout =
            in_guest.iter().map(|t| t.timeout).sum::<Duration>() + Duration::from_secs(120);
        let req = GuestRequest {
            files,
            script,
            timeout,
            run_dir: input.run_dir.clone(),
            vng: false,
            memory_mb: None,
            cpus: None,
        };
        let tail = ConsoleTail {
            stop: AtomicBool::new(false),
            seen: Default::default(),
            sink,
        };
        let reply = std::thread::scope(|s| {
            s.spawn(|| tail.run(&input.run_dir));
            let r = guest.run(&req, sink);
            tail.stop.store(true, Ordering::SeqCst);
            r
        })?;
        accel = reply.accel.clone();
        write_atomic(&input.run_dir.join("output.txt"), reply.output.as_bytes()).map_err(io)?;
        let frames = parse::split_frames(&reply.output);
        let seen = tail.seen.lock().unwrap().clone();
        for t in &in_guest {
            let rec = frames.records.iter().find(|r| r.name == t.name);
            let (verdict, dur, out) = match rec {
                Some(r) => (
                    judge(t, r, &input.expected_config),
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
            if !frames.done && incomplete.is_none() && rec.is_none_or(|r| r.rc.is_none()) {
                incomplete = Some(t.name.clone());
            }
            let log = log_path(&input.run_dir, &t.name);
            write_atomic(&log, out.as_bytes()).map_err(io)?;
            if !seen.contains(&t.name) {
                sink.emit(Event::TestStarted {
                    name: t.name.clone(),
                });
            }
            sink.emit(Event::TestFinished {
                name: t.name.clone(),
                result: verdict.result,
                duration: dur,
                reason: verdict.reason.clone(),
            });
            outcomes.push(TestOutcome {
                name: t.name.clone(),
                result: verdict.result,
                duration_s: round(dur),
                reason: verdict.reason,
                log: Some(log),
            });
        }
    }

    if let Some(t) = bcc_test {
        sink.emit(Event::TestStarted {
            name: t.name.clone(),
        });
        let (o, bcc_accel) = run_bcc(home, input, &t, guest, sink)?;
        if accel == "-" {
            accel = bcc_accel.unwrap_or(accel);
        }
        sink.emit(Event::TestFinished {
            name: o.name.clone(),
            result: o.result,
            duration: Duration::from_secs_f64(o.duration_s),
            reason: o.reason.clone(),
        });
        outcomes.push(o);
    }
    for (name, v) in host_verdicts {
        sink.emit(Event::TestFinished {
            name: name.clone(),
            result: v.result,
            duration: Duration::ZERO,
            reason: v.reason.clone(),
        });
        outcomes.push(TestOutcome {
            name,
            result: v.result,
            duration_s: 0.0,
            reason: v.reason,
            log: None,
        });
    }
    // Report in catalogue order.
    outcomes.sort_by_key(|o| {
        tests
            .iter()
            .position(|t| t.name == o.name)
            .unwrap_or(usize::MAX)
    });
    let res = SuiteResult {
        kernel: input.kernel.to_string(),
        release: input.release.clone(),
        accel,
        duration_s: round(start.elapsed()),
        run_dir: Some(input.run_dir.clone()),
        tests: outcomes,
    };
    write_atomic(
        &input.run_dir.join("results.json"),
        report::json(&res).as_bytes(),
    )
    .map_err(io)?;
    write_atomic(
        &input.run_dir.join("junit.xml"),
        report::junit(&res).as_bytes(),
    )
    .map_err(io)?;
    if let Some(name) = incomplete {
        return Err(SuiteError::Vm(format!(
            "the guest stopped during `{name}` before the suite finished; results so far: {}",
            input.run_dir.join("results.json").display()
        )));
    }
    Ok(res)
}

fn round(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Apply the test's judge to its record.
pub fn judge(t: &TestDef, r: &parse::Record, expected_config: &[(String, String)]) -> Verdict {
    let (out, rc) = (r.output.as_str(), r.rc);
    match &t.kind {
        Kind::Btf => parse::judge_btf(out, rc),
        Kind::Jit => parse::judge_jit(out),
        Kind::Config => parse::judge_config(out, rc, expected_config),
        Kind::Hello => parse::judge_hello(out, rc),
        Kind::CbpfPort80 => parse::judge_cbpf(out, rc),
        Kind::CoreHello => parse::judge_core(out, rc),
        Kind::HelloBcc => parse::judge_bcc(out, rc),
        Kind::TestBpf(e) => parse::judge_test_bpf(out, rc, e),
        Kind::Sample(s) => parse::judge_sample(out, rc, s),
    }
}

/// hello-bcc in its own vng boot: BCC and python come from the host over 9p; the
/// example's two files go in as payload. Returns the outcome and the accelerator.
fn run_bcc(
    home: &Home,
    input: &SuiteInput,
    t: &TestDef,
    g: &dyn Guest,
    sink: &dyn EventSink,
) -> Result<(TestOutcome, Option<String>), SuiteError> {
    let src = home.root().join("examples");
    examples::write_sources(&src, examples::BCC_SOURCES).map_err(io)?;
    let files: Vec<GuestFile> = examples::BCC_SOURCES
        .iter()
        // The host root is read-only in a vng guest: the payload goes under /tmp.
        .map(|(rel, _)| GuestFile {
            host: src.join(rel),
            guest: format!("/tmp/labctl/{rel}"),
            with_libs: false,
        })
        .collect();
    let Bcc::Run {
        python,
        kernel_source,
    } = &input.bcc
    else {
        unreachable!("run_bcc without Bcc::Run")
    };
    let kernel_source = match kernel_source {
        Some(k) => Some(examples::bcc_headers(home, k, &input.release, sink)?),
        None => None,
    };
    let hello_py = "/tmp/labctl/hello-bcc/hello.py".to_string();
    let script = guest::bcc_script(
        &python.display().to_string(),
        &hello_py,
        kernel_source
            .as_ref()
            .map(|p| p.display().to_string())
            .as_deref(),
        t.timeout.as_secs(),
    );
    let run_dir = input.run_dir.join("vng");
    std::fs::create_dir_all(&run_dir).map_err(io)?;
    let req = GuestRequest {
        files,
        script,
        timeout: t.timeout + Duration::from_secs(120),
        run_dir,
        vng: true,
        memory_mb: Some(2048),
        cpus: Some(2),
    };
    let log = log_path(&input.run_dir, &t.name);
    let mut accel = None;
    let (verdict, dur, out) = match g.run(&req, sink) {
        Ok(reply) => {
            accel = Some(reply.accel.clone());
            let f = parse::split_frames(&reply.output);
            match f.records.into_iter().find(|r| r.name == t.name) {
                Some(r) => (judge(t, &r, &[]), r.duration, r.output),
                None => (
                    Verdict::fail("hello.py produced no framed result under vng"),
                    Duration::ZERO,
                    reply.output,
                ),
            }
        }
        Err(e) => {
            sink.warn(format!("hello-bcc: the vng boot failed: {e}"));
            (
                Verdict::fail(format!("vng boot failed: {e}")),
                Duration::ZERO,
                e.to_string(),
            )
        }
    };
    write_atomic(&log, out.as_bytes()).map_err(io)?;
    Ok((
        TestOutcome {
            name: t.name.clone(),
            result: verdict.result,
            duration_s: round(dur),
            reason: verdict.reason,
            log: Some(log),
        },
        accel,
    ))
}
