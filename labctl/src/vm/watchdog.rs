//! Console scanning: what a console line tells the watchdog (the guest finished booting,
//! a module failed to load, or the kernel is dying) and the excerpt shown to the user.

/// A kernel failure the console shows; QEMU is stopped and the run fails (exit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Alarm {
    KernelPanic,
    Bug,
    Oops,
    RcuStall,
    SoftLockup,
    HungTask,
}

impl Alarm {
    pub fn describe(self) -> &'static str {
        match self {
            Alarm::KernelPanic => "kernel panic",
            Alarm::Bug => "kernel BUG",
            Alarm::Oops => "kernel Oops",
            Alarm::RcuStall => "RCU stall",
            Alarm::SoftLockup => "soft lockup",
            Alarm::HungTask => "hung task",
        }
    }
}

/// What one console line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleEvent {
    /// Our init is running (`labctl-init: up <release>`): the boot phase is over.
    Booted {
        release: String,
    },
    /// `labctl-init: module NAME failed to load (exit N)`.
    ModuleFailed {
        line: String,
    },
    Alarm(Alarm),
    /// The end marker of a panic/oops report: nothing useful follows.
    EndOfReport,
}

/// Classify a console line (None: ordinary output).
pub fn scan(line: &str) -> Option<ConsoleEvent> {
    // Console lines may carry a "[    1.234567] " timestamp and \r.
    let l = line.trim_end_matches('\r');
    if let Some(rest) = l.split("labctl-init: up ").nth(1) {
        return Some(ConsoleEvent::Booted {
            release: rest.trim().to_string(),
        });
    }
    if l.contains("labctl-init: module ") && l.contains("failed to load") {
        return Some(ConsoleEvent::ModuleFailed {
            line: l[l.find("labctl-init:").unwrap_or(0)..].to_string(),
        });
    }
    if l.contains("---[ end Kernel panic") || l.contains("---[ end trace") {
        return Some(ConsoleEvent::EndOfReport);
    }
    let alarm = if l.contains("Kernel panic - not syncing") {
        Alarm::KernelPanic
    } else if l.contains("soft lockup - CPU#") {
        Alarm::SoftLockup
    } else if l.contains("rcu_sched self-detected stall")
        || l.contains("rcu_preempt self-detected stall")
        || l.contains("detected stalls on CPUs/tasks")
        || l.contains("rcu: INFO: rcu_sched detected stall")
        || l.contains("rcu: INFO: rcu_preempt detected stall")
        || l.contains("INFO: rcu_sched detected stall")
    {
        Alarm::RcuStall
    } else if l.contains("blocked for more than") && l.contains("INFO: task") {
        Alarm::HungTask
    } else if l.contains("BUG: ") && !l.contains("labctl-init") {
        Alarm::Bug
    } else if l.contains("Oops: ") || l.contains("Oops#") || l.contains("] Oops") {
        Alarm::Oops
    } else {
        return None;
    };
    Some(ConsoleEvent::Alarm(alarm))
}

/// The lines worth showing for a failure: from a few lines before the first alarm line
/// (or the last `n` lines when there is none), at most `n` lines.
pub fn excerpt(console: &str, n: usize) -> String {
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    let first_alarm = lines
        .iter()
        .position(|l| matches!(scan(l), Some(ConsoleEvent::Alarm(_))));
    let (from, to) = match first_alarm {
        Some(i) => {
            let from = i.saturating_sub(3);
            (from, (from + n).min(lines.len()))
        }
        None => (lines.len().saturating_sub(n), lines.len()),
    };
    lines[from..to].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_kernel_failure_lines() {
        let cases = [
            (
                "[    2.5] Kernel panic - not syncing: sysrq triggered crash",
                Alarm::KernelPanic,
            ),
            (
                "[   30.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [sh:1]",
                Alarm::SoftLockup,
            ),
            (
                "[    3.0] BUG: kernel NULL pointer dereference, address: 0000000000000000",
                Alarm::Bug,
            ),
            ("[    3.0] Oops: 0002 [#1] SMP NOPTI", Alarm::Oops),
            (
                "[   60.0] rcu: INFO: rcu_sched self-detected stall on CPU",
                Alarm::RcuStall,
            ),
            (
                "[   60.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
                Alarm::RcuStall,
            ),
            (
                "[  250.0] INFO: task sh:1 blocked for more than 120 seconds.",
                Alarm::HungTask,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(scan(line), Some(ConsoleEvent::Alarm(want)), "{line}");
        }
    }

    #[test]
    fn ordinary_lines_and_markers() {
        assert_eq!(
            scan("[    0.000000] Linux version 5.10.46 (root@x) #1"),
            None
        );
        assert_eq!(scan("Run /init as init process"), None);
        assert_eq!(
            scan("labctl-init: up 5.10.46\r"),
            Some(ConsoleEvent::Booted {
                release: "5.10.46".into()
            })
        );
        assert_eq!(
            scan("[ 1.0] labctl-init: module test_bpf failed to load (exit 1)"),
            Some(ConsoleEvent::ModuleFailed {
                line: "labctl-init: module test_bpf failed to load (exit 1)".into()
            })
        );
        assert_eq!(
            scan("[ 2.6] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---"),
            Some(ConsoleEvent::EndOfReport)
        );
    }

    #[test]
    fn excerpt_starts_near_the_first_alarm() {
        let mut text = String::new();
        for i in 0..50 {
            text.push_str(&format!("line {i}\n"));
        }
        text.push_str("Kernel panic - not syncing: boom\nCall Trace:\n x\n");
        let e = excerpt(&text, 5);
        assert!(
            e.starts_with("line 47\nline 48\nline 49\nKernel panic"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 5);
        let plain = excerpt("a\nb\nc\n", 2);
        assert_eq!(plain, "b\nc");
    }
}
