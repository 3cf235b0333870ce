//! The host's TSC rate, given to TCG guests as `tsc_early_khz=`.
//!
//! Under TCG a guest's `rdtsc` reads the host's TSC (QEMU's `cpu_get_host_ticks`), and
//! a lab kernel (no ACPI) has neither HPET nor PM timer to calibrate it against. On a
//! busy host the PIT calibration then fails ("tsc: Unable to calibrate against PIT",
//! ~0.25 s of trying), the TSC is marked unstable and the guest runs on the jiffies
//! clocksource (4 ms steps in `bpf_ktime_get_ns`, `/proc/uptime`). Measured once per
//! process on a host whose TSC is constant (`constant_tsc` in /proc/cpuinfo); nothing is
//! added elsewhere (KVM brings kvm-clock, another host architecture has no TSC).
//!
//! With the rate known the only clocksource left to "verify" the TSC against is
//! refined-jiffies, whose ticks a busy TCG host loses: the watchdog then marks the (host,
//! constant) TSC unstable a second into the boot and switches to jiffies after all.
//! `tsc=reliable` tells the kernel what the host's `constant_tsc` already says.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::qemu::Accel;

/// `tsc_early_khz=N tsc=reliable` under TCG on a host with a constant TSC, else nothing.
pub fn kernel_args(accel: Accel) -> Vec<String> {
    match (accel, host_tsc_khz()) {
        (Accel::Tcg, Some(khz)) => vec![format!("tsc_early_khz={khz}"), "tsc=reliable".into()],
        _ => Vec::new(),
    }
}

/// The host's TSC rate in kHz, measured once (3 windows of 10 ms, the median).
pub fn host_tsc_khz() -> Option<u32> {
    static KHZ: OnceLock<Option<u32>> = OnceLock::new();
    *KHZ.get_or_init(|| {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        if !constant_tsc(&cpuinfo) {
            return None;
        }
        let mut v: Vec<u32> = (0..3)
            .filter_map(|_| {
                let (ticks, elapsed) = sample(Duration::from_millis(10))?;
                khz(ticks, elapsed)
            })
            .collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    })
}

/// The first `flags` line of /proc/cpuinfo has `constant_tsc`.
fn constant_tsc(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .is_some_and(|(_, f)| f.split_whitespace().any(|w| w == "constant_tsc"))
}

/// kHz from ticks counted over `elapsed`; None outside 100 MHz..20 GHz (a TSC that
/// stopped, or a window the scheduler stretched beyond recognition).
fn khz(ticks: u64, elapsed: Duration) -> Option<u32> {
    let ns = elapsed.as_nanos();
    if ns == 0 {
        return None;
    }
    let khz = u128::from(ticks) * 1_000_000 / ns;
    (100_000..=20_000_000).contains(&khz).then_some(khz as u32)
}

#[cfg(target_arch = "x86_64")]
fn sample(window: Duration) -> Option<(u64, Duration)> {
    let rdtsc = || {
        // SAFETY: rdtsc has no preconditions on x86_64; it only reads the counter.
        unsafe { std::arch::x86_64::_rdtsc() }
    };
    let (t0, c0) = (Instant::now(), rdtsc());
    std::thread::sleep(window);
    let (c1, t1) = (rdtsc(), Instant::now());
    Some((c1.checked_sub(c0)?, t1 - t0))
}

#[cfg(not(target_arch = "x86_64"))]
fn sample(_window: Duration) -> Option<(u64, Duration)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn khz_is_ticks_per_millisecond_within_sane_bounds() {
        assert_eq!(khz(26_000_000, Duration::from_millis(10)), Some(2_600_000));
        assert_eq!(khz(0, Duration::from_millis(10)), None);
        assert_eq!(khz(10, Duration::ZERO), None);
        assert_eq!(khz(u64::MAX, Duration::from_millis(1)), None);
    }

    #[test]
    fn only_a_constant_tsc_counts() {
        assert!(constant_tsc(
            "processor\t: 0\nflags\t\t: fpu tsc constant_tsc nonstop_tsc\n"
        ));
        assert!(!constant_tsc("flags\t\t: fpu tsc\nflags : constant_tsc\n"));
        assert!(!constant_tsc("processor : 0\n"));
    }

    #[test]
    fn kvm_gets_nothing() {
        assert!(kernel_args(Accel::Kvm).is_empty());
    }
}
