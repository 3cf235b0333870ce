//! Typed progress events. Engines emit them through an [`EventSink`]; only the CLI
//! renders them (indicatif bars on a terminal, plain lines otherwise, nothing with -q).
//! Engines must never write to stdout/stderr themselves.

use std::time::Duration;

/// What a progress counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Bytes,
    Objects,
    Tests,
    Items,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
}

/// Result of one acceptance test, as the suite reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestResult {
    Pass,
    Fail,
    Skip,
}

/// Why a test was skipped. Only [`SkipKind::Setup`] says the lab was not verified.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SkipKind {
    /// The host or the build could not provide what the test needs (a missing package,
    /// a failed samples/bpf build, a missing artifact): the run is a setup failure.
    Setup,
    /// The user asked for it (`--no-bcc`).
    Requested,
    /// Data says the test cannot exist on this kernel version.
    NotApplicable,
}

impl SkipKind {
    /// The word the table, the summary and the JSON use: `setup`, `requested`, `n/a`.
    pub fn word(self) -> &'static str {
        match self {
            SkipKind::Setup => "setup",
            SkipKind::Requested => "requested",
            SkipKind::NotApplicable => "n/a",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A named stage of an engine begins (e.g. "fetch", "config", "compile", "boot").
    StageStarted { stage: String, detail: String },
    /// A stage ended; `ok` false means the error follows as the engine's return value.
    StageFinished {
        stage: String,
        ok: bool,
        duration: Duration,
    },
    /// Progress inside the current stage. `total` is None when unknown.
    Progress {
        stage: String,
        done: u64,
        total: Option<u64>,
        unit: Unit,
    },
    /// A human-readable remark (a fallback taken, a fix applied, a warning).
    Message { level: Level, text: String },
    /// A remark that is the same for every boot of one labctl run (why KVM is not used):
    /// renderers show the first one per `topic` at info level, repeats only with -v.
    Notice { topic: String, text: String },
    /// A child process is about to run; `command` reproduces it in a shell.
    Command { command: String },
    /// QEMU is about to start with its gdb stub on `address` (`vm run --gdb`); `command`
    /// attaches gdb with the kernel's symbols, pasted into a shell as it is. `wait`: the
    /// guest stays stopped until gdb continues it.
    GdbStub {
        address: String,
        wait: bool,
        command: String,
    },
    /// One line of the guest's console as the VM runner reads it (`vm::runner`), for
    /// consumers that follow the guest live (the suite's test progress).
    ConsoleLine { line: String },
    /// One acceptance test started / finished.
    TestStarted { name: String },
    /// `skip` says why when `result` is `Skip`.
    TestFinished {
        name: String,
        result: TestResult,
        skip: Option<SkipKind>,
        duration: Duration,
        reason: String,
    },
}

pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// A sink that drops everything (library callers that do not care, and tests).
pub struct NullSink;
impl EventSink for NullSink {
    fn emit(&self, _event: Event) {}
}

/// A sink that records events; handy in tests.
#[derive(Default)]
pub struct VecSink(pub std::sync::Mutex<Vec<Event>>);
impl EventSink for VecSink {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}
impl VecSink {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

/// Convenience helpers so engines stay terse.
pub trait SinkExt: EventSink {
    fn info(&self, text: impl Into<String>) {
        self.emit(Event::Message {
            level: Level::Info,
            text: text.into(),
        })
    }
    fn warn(&self, text: impl Into<String>) {
        self.emit(Event::Message {
            level: Level::Warn,
            text: text.into(),
        })
    }
    fn debug(&self, text: impl Into<String>) {
        self.emit(Event::Message {
            level: Level::Debug,
            text: text.into(),
        })
    }
    fn progress(&self, stage: &str, done: u64, total: Option<u64>, unit: Unit) {
        self.emit(Event::Progress {
            stage: stage.to_string(),
            done,
            total,
            unit,
        })
    }
}
impl<T: EventSink + ?Sized> SinkExt for T {}

impl dyn EventSink + '_ {
    /// Emit `StageStarted` now and `StageFinished` when the timer is dropped.
    pub fn stage(&self, stage: &str, detail: impl Into<String>) -> StageTimer<'_> {
        self.emit(Event::StageStarted {
            stage: stage.to_string(),
            detail: detail.into(),
        });
        StageTimer {
            sink: self,
            stage: stage.to_string(),
            start: std::time::Instant::now(),
            ok: false,
        }
    }
}

/// Emits `StageFinished` when dropped; call [`StageTimer::ok`] on success.
pub struct StageTimer<'a> {
    sink: &'a dyn EventSink,
    stage: String,
    start: std::time::Instant,
    ok: bool,
}
impl StageTimer<'_> {
    pub fn ok(mut self) -> Duration {
        self.ok = true;
        self.start.elapsed()
    }
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}
impl Drop for StageTimer<'_> {
    fn drop(&mut self) {
        self.sink.emit(Event::StageFinished {
            stage: std::mem::take(&mut self.stage),
            ok: self.ok,
            duration: self.start.elapsed(),
        });
    }
}
