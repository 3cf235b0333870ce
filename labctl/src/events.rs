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

/// A stage of an engine: what [`Event::StageStarted`], [`Event::StageFinished`] and
/// [`Event::Progress`] name and build.json's `stages` record. Each stage is opened by the
/// one engine that does the work (`source` fetch, `kconfig` config, ...), never again by
/// a caller around it. Serialized as [`Stage::name`], the words of the JSON output and of
/// build.json files written before this type existed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// `source::fetch`: resolve, download (or reuse), verify and extract a tree.
    Fetch,
    /// A tarball download (`source`).
    Download,
    /// Unpacking a tarball into a tree (`source`).
    Extract,
    /// `kconfig::configure`, and the build's `make olddefconfig`.
    Config,
    /// A `--toolchain debian:<suite>` root prepared (`userland`).
    Toolchain,
    /// An mmdebstrap root filesystem (`rootfs`).
    Rootfs,
    /// Known fixes applied to the private tree (`build`).
    Fixes,
    /// `make <image>`: compiling objects.
    Compile,
    /// `make <image>`: linking vmlinux.
    Link,
    /// `make <image>`: BTF generation.
    #[serde(rename = "BTF")]
    Btf,
    /// `make modules` + `modules_install`.
    Modules,
    /// `make headers_install`.
    Headers,
    /// `make scripts_gdb`.
    Gdb,
    /// samples/bpf.
    Samples,
    /// The kernel's own tools (bpftool) made from a build's tree.
    Tools,
    /// Distribution packages (`kernel package`).
    Package,
    /// A build packed into OCI layers (`share`).
    Pack,
    /// Layers uploaded to a registry (`share`).
    Push,
    /// A build downloaded from a registry (`share`).
    Pull,
    /// The guest initramfs (`vm`).
    Image,
    /// A guest boot (`vm::runner`).
    Boot,
    /// The accelerator probe (`vm::accel`).
    Probe,
    /// Host-side builds of examples-bpf (`suite`).
    Examples,
    /// `vmlinux.h` from a build's BTF (`new`).
    #[serde(rename = "vmlinux.h")]
    VmlinuxH,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 24] = [
        Stage::Fetch,
        Stage::Download,
        Stage::Extract,
        Stage::Config,
        Stage::Toolchain,
        Stage::Rootfs,
        Stage::Fixes,
        Stage::Compile,
        Stage::Link,
        Stage::Btf,
        Stage::Modules,
        Stage::Headers,
        Stage::Gdb,
        Stage::Samples,
        Stage::Tools,
        Stage::Package,
        Stage::Pack,
        Stage::Push,
        Stage::Pull,
        Stage::Image,
        Stage::Boot,
        Stage::Probe,
        Stage::Examples,
        Stage::VmlinuxH,
    ];

    /// The word the renderer, the JSON events and build.json use (`fetch`, `BTF`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Download => "download",
            Stage::Extract => "extract",
            Stage::Config => "config",
            Stage::Toolchain => "toolchain",
            Stage::Rootfs => "rootfs",
            Stage::Fixes => "fixes",
            Stage::Compile => "compile",
            Stage::Link => "link",
            Stage::Btf => "BTF",
            Stage::Modules => "modules",
            Stage::Headers => "headers",
            Stage::Gdb => "gdb",
            Stage::Samples => "samples",
            Stage::Tools => "tools",
            Stage::Package => "package",
            Stage::Pack => "pack",
            Stage::Push => "push",
            Stage::Pull => "pull",
            Stage::Image => "image",
            Stage::Boot => "boot",
            Stage::Probe => "probe",
            Stage::Examples => "examples",
            Stage::VmlinuxH => "vmlinux.h",
        }
    }
}

impl std::fmt::Display for Stage {
    /// [`Stage::name`], honouring width and alignment (`{stage:>9}`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A stage of an engine begins.
    StageStarted { stage: Stage, detail: String },
    /// A stage ended; `ok` false means the error follows as the engine's return value.
    StageFinished {
        stage: Stage,
        ok: bool,
        duration: Duration,
    },
    /// Progress inside the current stage. `total` is None when unknown.
    Progress {
        stage: Stage,
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
    fn progress(&self, stage: Stage, done: u64, total: Option<u64>, unit: Unit) {
        self.emit(Event::Progress {
            stage,
            done,
            total,
            unit,
        })
    }
}
impl<T: EventSink + ?Sized> SinkExt for T {}

impl dyn EventSink + '_ {
    /// Emit `StageStarted` now and `StageFinished` when the timer is dropped.
    pub fn stage(&self, stage: Stage, detail: impl Into<String>) -> StageTimer<'_> {
        self.emit(Event::StageStarted {
            stage,
            detail: detail.into(),
        });
        StageTimer {
            sink: self,
            stage,
            start: std::time::Instant::now(),
            ok: false,
        }
    }
}

/// Emits `StageFinished` when dropped; call [`StageTimer::ok`] on success.
pub struct StageTimer<'a> {
    sink: &'a dyn EventSink,
    stage: Stage,
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
    /// The stage this timer closes.
    pub fn stage(&self) -> Stage {
        self.stage
    }
}
impl Drop for StageTimer<'_> {
    fn drop(&mut self) {
        self.sink.emit(Event::StageFinished {
            stage: self.stage,
            ok: self.ok,
            duration: self.start.elapsed(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names_are_the_serde_names_and_round_trip() {
        for s in Stage::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
            assert_eq!(serde_json::from_str::<Stage>(&json).unwrap(), s);
        }
        // The words build.json files and `--json` consumers already know.
        for w in [
            "fetch",
            "config",
            "compile",
            "link",
            "BTF",
            "modules",
            "vmlinux.h",
        ] {
            let s: Stage = serde_json::from_str(&format!("\"{w}\"")).unwrap();
            assert_eq!(s.name(), w);
        }
        let mut names: Vec<_> = Stage::ALL.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Stage::ALL.len());
    }

    #[test]
    fn stage_events_serialize_with_the_stage_word() {
        let sink = VecSink::default();
        {
            let d: &dyn EventSink = &sink;
            d.stage(Stage::Btf, "BTF .btf.vmlinux.bin.o").ok();
        }
        let ev = sink.events();
        assert_eq!(ev.len(), 2);
        let v = serde_json::to_value(&ev[0]).unwrap();
        assert_eq!(v["event"], "stage_started");
        assert_eq!(v["stage"], "BTF");
        assert!(matches!(
            ev[1],
            Event::StageFinished {
                stage: Stage::Btf,
                ok: true,
                ..
            }
        ));
        assert_eq!(format!("{:>9}|", Stage::Fetch), "    fetch|");
    }
}
