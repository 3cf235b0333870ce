//! The one VM run loop every backend goes through: the interactive branch, the boot and
//! command deadlines, the console scan ([`watchdog`]) with one typed
//! [`Event::ConsoleLine`] per console line, and the classification of how a run ended
//! (panic, boot timeout, command timeout, no result, the backend failing) into a
//! [`VmOutcome`] or a [`VmError`].
//!
//! A backend is one [`Backend`] impl: the command that boots the guest, where its results
//! come back and how they are read, the console line that ends a run, whether a boot
//! deadline applies (and how to stop the guest when one fires). QEMU with labctl's
//! initramfs is [`super::qemu_backend`], virtme-ng is [`super::vng`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{default_timeouts, gdb, watchdog, Accel, AccelVerdict, Alarm, VmError, VmOutcome};
use crate::events::{Event, EventSink, Stage};
use crate::home::write_atomic;
use crate::process::{Cmd, LineAction, ProcessError};

/// What a backend makes of one console line, before the runner's own scan.
#[derive(Debug)]
pub enum LineVerdict {
    /// Ordinary output (the runner still scans it for boot, alarms and modules).
    Continue,
    /// The guest has stopped for good although its program keeps running (vng's
    /// `reboot: System halted`): stop it and read the results.
    EndOfRun,
    /// The run cannot succeed (vng without script ports): stop it and fail with this.
    Fail(VmError),
}

/// One way to boot a guest. The runner owns everything that is the same for all of them.
pub trait Backend: Sync {
    /// The command that boots the guest (prepared: images and files are in place). For an
    /// interactive run the terminal is handed to it.
    fn command(&self) -> Cmd;
    /// The `boot` stage's detail line.
    fn boot_detail(&self) -> String;
    /// Whether the runner enforces a boot deadline of its own (until `labctl-init: up`),
    /// then a command deadline, and stops the guest a moment after a kernel alarm, all
    /// through [`Backend::stop`]; the process timeout is then only a backstop. Without
    /// one, the whole run (boot + command) has one deadline: the process timeout.
    fn boot_deadline(&self) -> bool;
    /// Stop the guest from outside the console loop; false when it cannot (yet).
    fn stop(&self) -> bool {
        false
    }
    /// A look at a console line before the runner scans it.
    fn on_line(&self, _line: &str, _booted: bool) -> LineVerdict {
        LineVerdict::Continue
    }
    /// The script's output and exit status, when the guest reported them.
    fn result(&self) -> Option<(Vec<u8>, i32)>;
    /// The output so far, for a command that timed out.
    fn partial_output(&self) -> String;
    /// The error for a guest that ended without reporting; `code`: its program's exit code.
    fn no_result(&self, _code: Option<i32>, excerpt: String, log: PathBuf) -> VmError {
        VmError::NoResult { excerpt, log }
    }
    /// The error for a program that could not run (or failed in the process layer).
    fn spawn_error(&self, e: ProcessError) -> VmError {
        VmError::Process(e)
    }
}

/// What the runner needs besides the backend: the run's knobs from the [`super::VmSpec`].
pub struct RunSettings<'a> {
    pub run_dir: &'a Path,
    pub interactive: bool,
    pub boot_timeout: Option<Duration>,
    pub timeout: Option<Duration>,
    /// QEMU's gdb stub is on: the limits default to none.
    pub gdb: bool,
    /// When the run began (before the backend's preparation).
    pub start: Instant,
}

#[derive(Default)]
struct Watch {
    booted_at: Option<Instant>,
    release: Option<String>,
    alarm: Option<(Alarm, Instant)>,
    fired: Option<Fired>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fired {
    Boot,
    Command,
    Alarm,
}

/// Boot the guest through `backend` and classify how the run ended.
pub fn run(
    backend: &dyn Backend,
    run: &RunSettings,
    verdict: &AccelVerdict,
    sink: &dyn EventSink,
) -> Result<VmOutcome, VmError> {
    let console_log = run.run_dir.join("console.log");
    let outcome = |exit_code, output, release, boot_time| VmOutcome {
        exit_code,
        output,
        console_log: console_log.clone(),
        accel: verdict.accel.name().into(),
        accel_reason: verdict.reason.clone(),
        duration: run.start.elapsed(),
        release,
        boot_time,
    };
    if run.interactive {
        let st = sink.stage(Stage::Boot, backend.boot_detail());
        let out = backend
            .command()
            .inherit_stdio()
            .run(sink)
            .map_err(|e| backend.spawn_error(e))?;
        st.ok();
        return Ok(outcome(out.code.unwrap_or(-1), Vec::new(), None, None));
    }

    let result_json = run.run_dir.join("result.json");
    // Pre-write a failure: a guest that dies without reporting is never a pass.
    write_atomic(&result_json, br#"{"status":"no-result","exit_code":null}"#)
        .map_err(|source| VmError::ImageHome { source })?;
    let (def_boot, def_cmd) = if run.gdb {
        // A guest stopped in gdb waits for the user, not for a watchdog.
        (gdb::NO_LIMIT, gdb::NO_LIMIT)
    } else {
        default_timeouts(verdict.accel)
    };
    let boot_timeout = run.boot_timeout.unwrap_or(def_boot);
    let cmd_timeout = run.timeout.unwrap_or(def_cmd);
    let phased = backend.boot_deadline();
    // Phased: the runner's watchdog enforces each deadline, the process timeout is a
    // backstop in case the guest cannot be stopped. Otherwise it is the one deadline.
    let process_timeout = if phased {
        boot_timeout + cmd_timeout + Duration::from_secs(30)
    } else {
        boot_timeout + cmd_timeout
    };
    // After an alarm, give the kernel a moment to print the whole report.
    let alarm_grace = Duration::from_secs(if verdict.accel == Accel::Tcg { 3 } else { 1 });
    let watch = Mutex::new(Watch::default());
    let done = AtomicBool::new(false);
    let mut failure: Option<VmError> = None;
    let stage = sink.stage(Stage::Boot, backend.boot_detail());
    let spawned = Instant::now();
    let streamed = std::thread::scope(|s| {
        if phased {
            s.spawn(|| {
                while !done.load(Ordering::SeqCst) {
                    let now = Instant::now();
                    let fire = {
                        let w = watch.lock().unwrap();
                        if w.fired.is_some() {
                            None
                        } else if let Some((_, at)) = w.alarm {
                            (now >= at + alarm_grace).then_some(Fired::Alarm)
                        } else if let Some(b) = w.booted_at {
                            (now >= b + cmd_timeout).then_some(Fired::Command)
                        } else {
                            (now >= spawned + boot_timeout).then_some(Fired::Boot)
                        }
                    };
                    if let Some(f) = fire {
                        if backend.stop() {
                            watch.lock().unwrap().fired = Some(f);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
        let r =
            backend
                .command()
                .timeout(process_timeout)
                .run_streaming(sink, &console_log, |line| {
                    sink.emit(Event::ConsoleLine { line: line.into() });
                    let booted = watch.lock().unwrap().booted_at.is_some();
                    match backend.on_line(line, booted) {
                        LineVerdict::Continue => {}
                        LineVerdict::EndOfRun => return LineAction::Kill,
                        LineVerdict::Fail(e) => {
                            failure.get_or_insert(e);
                            return LineAction::Kill;
                        }
                    }
                    match watchdog::scan(line) {
                        Some(watchdog::ConsoleEvent::Booted { release }) => {
                            let mut w = watch.lock().unwrap();
                            w.booted_at = Some(Instant::now());
                            w.release = Some(release);
                        }
                        Some(watchdog::ConsoleEvent::ModuleFailed { line }) => {
                            crate::events::SinkExt::warn(sink, line)
                        }
                        Some(watchdog::ConsoleEvent::Alarm(a)) => {
                            let mut w = watch.lock().unwrap();
                            if w.alarm.is_none() {
                                w.alarm = Some((a, Instant::now()));
                            }
                        }
                        Some(watchdog::ConsoleEvent::EndOfReport)
                            if watch.lock().unwrap().alarm.is_some() =>
                        {
                            return LineAction::Kill
                        }
                        _ => {}
                    }
                    LineAction::Continue
                });
        done.store(true, Ordering::SeqCst);
        r
    });
    let w = watch.into_inner().unwrap();
    if let Some(e) = failure {
        return Err(e);
    }
    let console_text =
        || String::from_utf8_lossy(&std::fs::read(&console_log).unwrap_or_default()).into_owned();
    let boot_timed_out = |timeout| VmError::BootTimeout {
        timeout,
        excerpt: watchdog::excerpt(&console_text(), 25),
        log: console_log.clone(),
    };
    let command_timed_out = || VmError::CommandTimeout {
        timeout: cmd_timeout,
        output: backend.partial_output(),
        log: console_log.clone(),
    };
    let out = match streamed {
        Ok(o) => o,
        Err(ProcessError::Timeout { .. }) => {
            // The process timeout fired: classify like the watchdog would have.
            return Err(match (w.booted_at.is_some(), phased) {
                (true, _) => command_timed_out(),
                (false, true) => boot_timed_out(boot_timeout),
                (false, false) => boot_timed_out(process_timeout),
            });
        }
        Err(e) => return Err(backend.spawn_error(e)),
    };
    if let Some((kind, _)) = w.alarm {
        return Err(VmError::Panic {
            kind,
            excerpt: watchdog::excerpt(&console_text(), 40),
            log: console_log,
        });
    }
    match w.fired {
        Some(Fired::Boot) => return Err(boot_timed_out(boot_timeout)),
        Some(Fired::Command) => return Err(command_timed_out()),
        _ => {}
    }
    let Some((output, exit_code)) = backend.result() else {
        return Err(backend.no_result(
            out.code,
            watchdog::excerpt(&console_text(), 25),
            console_log,
        ));
    };
    stage.ok();
    let boot_time = w
        .booted_at
        .map(|b| b.duration_since(spawned))
        .filter(|d| *d > Duration::ZERO);
    let outcome = outcome(exit_code, output, w.release, boot_time);
    let json = serde_json::json!({"status": "exited", "exit_code": exit_code, "accel": outcome.accel, "accel_reason": outcome.accel_reason,
        "duration_s": outcome.duration.as_secs_f64(), "boot_s": boot_time.map(|d| d.as_secs_f64()), "release": outcome.release});
    let _ = write_atomic(
        &result_json,
        serde_json::to_string_pretty(&json)
            .unwrap_or_default()
            .as_bytes(),
    );
    Ok(outcome)
}

/// Kill the process (and its group) whose pid is in `pidfile`; false when there is none.
pub(crate) fn kill_pidfile(pidfile: &Path) -> bool {
    let pid: i32 = match std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        Some(p) if p > 1 => p,
        _ => return false,
    };
    // SAFETY: plain syscalls. The child leads its own process group (Cmd starts every
    // child in a new group), so the group kill also reaches anything it started.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    true
}

/// The last `n` lines of `bytes`, as text.
pub(crate) fn tail_text(bytes: &[u8], n: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::VecSink;

    /// A backend that is a shell script: it writes its pid (so the watchdog can stop
    /// it), prints the console lines it is given, reports through `result` (`CODE` on
    /// the first line, then output), then sleeps.
    struct Fake {
        dir: PathBuf,
        script: String,
        phased: bool,
        end_line: Option<&'static str>,
    }

    impl Fake {
        fn new(dir: &Path, body: &str) -> Fake {
            Fake {
                dir: dir.to_path_buf(),
                script: format!("echo $$ > {}/pid\n{body}\n", dir.display()),
                phased: true,
                end_line: None,
            }
        }
    }

    impl Backend for Fake {
        fn command(&self) -> Cmd {
            Cmd::new("sh").arg("-c").arg(&self.script)
        }
        fn boot_detail(&self) -> String {
            "fake".into()
        }
        fn boot_deadline(&self) -> bool {
            self.phased
        }
        fn stop(&self) -> bool {
            kill_pidfile(&self.dir.join("pid"))
        }
        fn on_line(&self, line: &str, _booted: bool) -> LineVerdict {
            match self.end_line {
                Some(end) if line.contains(end) => LineVerdict::EndOfRun,
                _ if line.contains("no ports") => LineVerdict::Fail(VmError::Vng {
                    detail: "no ports".into(),
                }),
                _ => LineVerdict::Continue,
            }
        }
        fn result(&self) -> Option<(Vec<u8>, i32)> {
            let s = std::fs::read_to_string(self.dir.join("result")).ok()?;
            let (code, out) = s.split_once('\n')?;
            Some((out.as_bytes().to_vec(), code.trim().parse().ok()?))
        }
        fn partial_output(&self) -> String {
            "partial".into()
        }
    }

    fn go(fake: &Fake, boot: u64, cmd: u64) -> (Result<VmOutcome, VmError>, Duration, VecSink) {
        let sink = VecSink::default();
        let verdict = AccelVerdict {
            accel: Accel::Kvm,
            reason: "test".into(),
            cached: false,
        };
        let start = Instant::now();
        let settings = RunSettings {
            run_dir: &fake.dir,
            interactive: false,
            boot_timeout: Some(Duration::from_secs(boot)),
            timeout: Some(Duration::from_secs(cmd)),
            gdb: false,
            start,
        };
        let r = run(fake, &settings, &verdict, &sink);
        (r, start.elapsed(), sink)
    }

    #[test]
    fn a_reported_result_is_the_outcome_and_every_console_line_is_an_event() {
        let d = tempfile::tempdir().unwrap();
        let f = Fake::new(
            d.path(),
            &format!(
                "echo 'labctl-init: up 5.10.1'; printf '3\\nhello\\n' > {}/result; echo bye",
                d.path().display()
            ),
        );
        let (r, _, sink) = go(&f, 20, 20);
        let o = r.unwrap();
        assert_eq!((o.exit_code, o.output), (3, b"hello\n".to_vec()));
        assert_eq!(o.release.as_deref(), Some("5.10.1"));
        assert!(o.boot_time.is_some());
        let lines: Vec<String> = sink
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::ConsoleLine { line } => Some(line),
                _ => None,
            })
            .collect();
        assert_eq!(lines, ["labctl-init: up 5.10.1", "bye"]);
        let json = std::fs::read_to_string(d.path().join("result.json")).unwrap();
        assert!(json.contains("\"exited\""), "{json}");
    }

    #[test]
    fn a_silent_guest_hits_the_boot_deadline() {
        let d = tempfile::tempdir().unwrap();
        let f = Fake::new(d.path(), "sleep 60");
        let (r, took, _) = go(&f, 1, 60);
        assert!(
            matches!(r, Err(VmError::BootTimeout { timeout, .. }) if timeout == Duration::from_secs(1)),
            "{r:?}"
        );
        assert!(took < Duration::from_secs(20), "{took:?}");
        let json = std::fs::read_to_string(d.path().join("result.json")).unwrap();
        assert!(json.contains("no-result"), "{json}");
    }

    #[test]
    fn without_a_boot_deadline_boot_and_command_share_one() {
        let d = tempfile::tempdir().unwrap();
        let mut f = Fake::new(d.path(), "sleep 60");
        f.phased = false;
        // Past the boot limit alone, the guest still runs: the one deadline is 1 + 2 s.
        let (r, took, _) = go(&f, 1, 2);
        assert!(
            matches!(r, Err(VmError::BootTimeout { timeout, .. }) if timeout == Duration::from_secs(3)),
            "{r:?}"
        );
        assert!(took >= Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn a_booted_guest_hits_the_command_deadline_with_its_output_so_far() {
        let d = tempfile::tempdir().unwrap();
        let f = Fake::new(d.path(), "echo 'labctl-init: up 5.10.1'; sleep 60");
        let (r, took, _) = go(&f, 60, 1);
        match r {
            Err(VmError::CommandTimeout {
                timeout, output, ..
            }) => {
                assert_eq!(timeout, Duration::from_secs(1));
                assert_eq!(output, "partial");
            }
            other => panic!("{other:?}"),
        }
        assert!(took < Duration::from_secs(20), "{took:?}");
    }

    #[test]
    fn a_panic_stops_the_guest_at_the_end_of_its_report() {
        let d = tempfile::tempdir().unwrap();
        let f = Fake::new(
            d.path(),
            "echo 'labctl-init: up 5.10.1'; echo 'Kernel panic - not syncing: boom'; \
             echo '---[ end Kernel panic - not syncing: boom ]---'; sleep 60",
        );
        let (r, took, _) = go(&f, 60, 60);
        assert!(
            matches!(
                r,
                Err(VmError::Panic {
                    kind: Alarm::KernelPanic,
                    ..
                })
            ),
            "{r:?}"
        );
        assert!(took < Duration::from_secs(20), "{took:?}");
    }

    #[test]
    fn a_panic_without_an_end_marker_is_stopped_after_the_grace() {
        let d = tempfile::tempdir().unwrap();
        let f = Fake::new(d.path(), "echo 'Oops: 0002 [#1] SMP'; sleep 60");
        let (r, took, _) = go(&f, 60, 60);
        assert!(
            matches!(
                r,
                Err(VmError::Panic {
                    kind: Alarm::Oops,
                    ..
                })
            ),
            "{r:?}"
        );
        assert!(took < Duration::from_secs(20), "{took:?}");
    }

    #[test]
    fn the_end_of_run_line_stops_a_lingering_guest_and_its_result_counts() {
        let d = tempfile::tempdir().unwrap();
        let mut f = Fake::new(
            d.path(),
            &format!(
                "printf '0\\nok\\n' > {}/result; echo 'reboot: System halted'; sleep 60",
                d.path().display()
            ),
        );
        f.end_line = Some("reboot: System halted");
        let (r, took, _) = go(&f, 60, 60);
        assert_eq!(r.unwrap().exit_code, 0);
        assert!(took < Duration::from_secs(20), "{took:?}");
    }

    #[test]
    fn a_backend_failure_line_wins_and_no_report_is_no_result() {
        let d = tempfile::tempdir().unwrap();
        let f = Fake::new(d.path(), "echo 'no ports'; sleep 60");
        let (r, took, _) = go(&f, 60, 60);
        assert!(matches!(r, Err(VmError::Vng { .. })), "{r:?}");
        assert!(took < Duration::from_secs(20), "{took:?}");
        let f = Fake::new(d.path(), "echo 'labctl-init: up 5.10.1'; exit 0");
        let (r, _, _) = go(&f, 60, 60);
        assert!(matches!(r, Err(VmError::NoResult { .. })), "{r:?}");
    }
}
