//! Renders library events for a person: indicatif bars and spinners on a terminal,
//! plain timestamped lines otherwise (CI logs), nothing but errors with -qq.
//! Everything goes to stderr; stdout is reserved for results (tables, JSON).
//! A [`Event::Notice`] is shown once per topic per labctl run at normal verbosity
//! (e.g. why KVM is not used, though every boot decides it); repeats only with -v.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use labctl::events::{Event, EventSink, Level, SkipKind, Stage, TestResult, Unit};

use super::{ColorChoice, Global};

pub struct Renderer {
    fancy: bool,
    color: bool,
    quiet: u8,
    verbose: u8,
    start: Instant,
    state: Mutex<State>,
    multi: MultiProgress,
}

#[derive(Default)]
struct State {
    bar: Option<(Stage, ProgressBar)>,
    /// Plain mode: last time/percentage a progress line was printed, per stage.
    last_plain: Option<(Stage, Instant, u64)>,
    /// Notice topics already shown in this run.
    noticed: std::collections::BTreeSet<String>,
}

impl Renderer {
    pub fn new(g: &Global) -> Self {
        let tty = std::io::stderr().is_terminal();
        let fancy = match g.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                tty && std::env::var_os("NO_COLOR").is_none()
                    && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true)
            }
        } && g.quiet == 0;
        let multi = MultiProgress::with_draw_target(if fancy {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Renderer {
            fancy,
            color: fancy,
            quiet: g.quiet,
            verbose: g.verbose,
            start: Instant::now(),
            state: Mutex::new(State::default()),
            multi,
        }
    }

    /// Run `f` (which prints) without tearing the progress bars.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    fn line(&self, text: &str) {
        if self.fancy {
            let _ = self.multi.println(text);
        } else {
            // A closed stderr (`labctl ... 2>&1 | head`) must not abort the work.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "[{:>6.1}s] {text}",
                self.start.elapsed().as_secs_f64()
            );
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn error(&self, e: &anyhow::Error) {
        self.finish();
        let mut msg = format!("{} {e}", self.paint("1;31", "error:"));
        for cause in e.chain().skip(1) {
            let c = cause.to_string();
            if !msg.contains(&c) {
                msg.push_str(&format!("\n  caused by: {c}"));
            }
        }
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{msg}");
    }

    pub fn finish(&self) {
        if let Some((_, bar)) = self.state.lock().unwrap().bar.take() {
            bar.finish_and_clear();
        }
    }

    fn bar_style(unit: Unit, known_total: bool) -> ProgressStyle {
        let t = match (unit, known_total) {
            (Unit::Bytes, true) => {
                "{spinner} {prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
            }
            (Unit::Bytes, false) => "{spinner} {prefix:>9} {bytes} {bytes_per_sec}",
            (_, true) => "{spinner} {prefix:>9} [{bar:30}] {pos}/{len} eta {eta} {msg}",
            (_, false) => "{spinner} {prefix:>9} {pos} {msg}",
        };
        ProgressStyle::with_template(t)
            .unwrap()
            .progress_chars("=> ")
    }

    /// Whether a notice on `topic` is shown: the first per run unless -q, repeats with -v.
    fn show_notice(&self, topic: &str) -> bool {
        let first = self.state.lock().unwrap().noticed.insert(topic.to_string());
        self.quiet == 0 && (first || self.verbose >= 1)
    }

    fn progress(&self, stage: Stage, done: u64, total: Option<u64>, unit: Unit) {
        if self.quiet > 0 {
            return;
        }
        let mut st = self.state.lock().unwrap();
        if self.fancy {
            let need_new = !matches!(&st.bar, Some((s, b)) if *s == stage && b.length() == total);
            if need_new {
                if let Some((_, old)) = st.bar.take() {
                    old.finish_and_clear();
                }
                let bar = self.multi.add(match total {
                    Some(t) => ProgressBar::new(t),
                    None => ProgressBar::no_length(),
                });
                bar.set_style(Self::bar_style(unit, total.is_some()));
                bar.set_prefix(stage.name());
                bar.enable_steady_tick(Duration::from_millis(120));
                st.bar = Some((stage, bar));
            }
            if let Some((_, b)) = &st.bar {
                b.set_position(done);
            }
            return;
        }
        // Plain: a line every 10 s or every 10 %, and at the end.
        let pct = total.map(|t| (done * 100).checked_div(t).unwrap_or(100));
        let due = match &st.last_plain {
            Some((s, at, last_pct)) if *s == stage => {
                at.elapsed() >= Duration::from_secs(10)
                    || pct.is_some_and(|p| p >= last_pct + 10)
                    || pct == Some(100) && *last_pct != 100
            }
            _ => true,
        };
        if due {
            st.last_plain = Some((stage, Instant::now(), pct.unwrap_or(0)));
            drop(st);
            let amount = |n: u64| {
                if unit == Unit::Bytes {
                    labctl::home::human_bytes(n)
                } else {
                    n.to_string()
                }
            };
            let text = match total {
                Some(t) => format!(
                    "{stage}: {} / {} ({}%)",
                    amount(done),
                    amount(t),
                    pct.unwrap_or(0)
                ),
                None => format!("{stage}: {}", amount(done)),
            };
            self.line(&text);
        }
    }
}

impl EventSink for Renderer {
    fn emit(&self, event: Event) {
        match event {
            Event::StageStarted { stage, detail } => {
                if self.quiet == 0 {
                    self.line(&format!(
                        "{} {detail}",
                        self.paint("1;36", &format!("{stage:>9}"))
                    ));
                }
            }
            Event::StageFinished {
                stage,
                ok,
                duration,
            } => {
                let mut st = self.state.lock().unwrap();
                if matches!(&st.bar, Some((s, _)) if *s == stage) {
                    if let Some((_, b)) = st.bar.take() {
                        b.finish_and_clear();
                    }
                }
                drop(st);
                if self.quiet == 0 && (self.verbose > 0 || !ok) {
                    let verdict = if ok {
                        self.paint("32", "done")
                    } else {
                        self.paint("31", "failed")
                    };
                    self.line(&format!(
                        "{stage:>9} {verdict} in {:.1}s",
                        duration.as_secs_f64()
                    ));
                }
            }
            Event::Progress {
                stage,
                done,
                total,
                unit,
            } => self.progress(stage, done, total, unit),
            Event::Message { level, text } => {
                let show = match level {
                    Level::Warn => self.quiet < 2,
                    Level::Info => self.quiet == 0,
                    Level::Debug => self.verbose >= 2,
                };
                if show {
                    let text = match level {
                        Level::Warn => format!("{} {text}", self.paint("1;33", "warning:")),
                        _ => text,
                    };
                    self.line(&text);
                }
            }
            Event::Notice { topic, text } => {
                if self.show_notice(&topic) {
                    self.line(&text);
                }
            }
            Event::Command { command } => {
                if self.verbose >= 1 {
                    self.line(&format!("{} {command}", self.paint("2", "$")));
                }
            }
            Event::GdbStub {
                address,
                wait,
                command,
            } => {
                // What the user asked --gdb for: shown unless -qq, like a warning.
                if self.quiet < 2 {
                    let how = if wait {
                        "the guest is stopped before its first instruction until gdb continues it"
                    } else {
                        "the guest runs; attach at any time"
                    };
                    self.line(&format!(
                        "{} QEMU's gdb stub listens on {address} ({how}). Attach with:\n  {command}",
                        self.paint("1;36", "      gdb")
                    ));
                }
            }
            // The console is in the run's console.log; the renderer does not echo it.
            Event::ConsoleLine { .. } => {}
            Event::TestStarted { name } => {
                if self.quiet == 0 && self.verbose >= 1 {
                    self.line(&format!("{:>9} {name}", "test"));
                }
            }
            Event::TestFinished {
                name,
                result,
                skip,
                duration,
                reason,
            } => {
                if self.quiet == 0 {
                    let r = match (result, skip) {
                        (TestResult::Pass, _) => self.paint("32", "PASS"),
                        (TestResult::Fail, _) => self.paint("1;31", "FAIL"),
                        (TestResult::Skip, Some(SkipKind::Setup) | None) => {
                            self.paint("1;33", "SKIP (setup)")
                        }
                        (TestResult::Skip, Some(k)) => {
                            self.paint("33", &format!("SKIP ({})", k.word()))
                        }
                    };
                    let reason = if reason.is_empty() {
                        String::new()
                    } else {
                        format!("  {reason}")
                    };
                    self.line(&format!(
                        "{r} {name} ({:.1}s){reason}",
                        duration.as_secs_f64()
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renderer(verbose: u8, quiet: u8) -> Renderer {
        Renderer::new(&Global {
            json: false,
            quiet,
            verbose,
            color: ColorChoice::Never,
            home: None,
        })
    }

    #[test]
    fn a_notice_is_shown_once_per_topic_and_repeats_only_with_v() {
        let r = renderer(0, 0);
        assert!(r.show_notice("accel"));
        assert!(
            !r.show_notice("accel"),
            "the second boot's explanation is not repeated"
        );
        assert!(r.show_notice("other"));
        let v = renderer(1, 0);
        assert!(
            v.show_notice("accel") && v.show_notice("accel"),
            "-v shows every one"
        );
        assert!(!renderer(0, 1).show_notice("accel"), "-q shows none");
    }
}
