//! arm64 on this (x86_64) host, as a user runs it: `labctl kernel build VERSION --arch
//! arm64` cross-compiles the lab kernel, its modules and samples/bpf (SYSROOT = the arm64
//! guest userland root), then `labctl vm test VERSION --arch arm64` boots it under
//! `qemu-system-aarch64 -M virt` with TCG and runs the whole suite there: kernel checks,
//! hello and core-hello (loaders cross-built against arm64 libbpf; the BPF objects are
//! the host's), cbpf-port80, test_bpf with arm64's own JIT counts (examples-bpf/test_bpf.toml),
//! bpftool (the kernel's own, cross-built) and the samples. hello-bcc and bpftrace run the
//! host's x86_64 userland under virtme-ng and are "not applicable" on an arm64 guest: the
//! test checks they say so, and that nothing else is skipped.
//!
//! CI builds 5.10.46 (the smallest, ≈ 5 min cold); `LABCTL_ARM64_KERNEL=6.12.107` runs
//! the same checks on 6.12 by hand. Uses the persistent test home. On an arm64 host the
//! x86_64 side would be the foreign one; this file then checks nothing (it says so).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use labctl::events::{SkipKind, TestResult};

fn labctl(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_labctl"));
    c.arg("--home")
        .arg(home)
        .env_remove("LABCTL_HOME")
        .env_remove("LABCTL_ARCH");
    c
}

fn tail(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

#[test]
fn an_arm64_lab_kernel_cross_built_here_passes_the_suite_under_qemu_system_aarch64() {
    if labctl::arch::Arch::host().name == "arm64" {
        eprintln!("arm64 host: the arm64 lab is native here; this cross test does not apply");
        return;
    }
    let version = std::env::var("LABCTL_ARM64_KERNEL").unwrap_or_else(|_| "5.10.46".into());
    let home = common::persistent_test_home();

    let t = Instant::now();
    let out = labctl(&home)
        .args(["kernel", "build", &version, "--arch", "arm64"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "arm64: kernel build {version} --arch arm64 took {:.0}s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "kernel build --arch arm64 failed:\n{}",
        tail(&stderr, 60)
    );

    // The build is an arm64 one, keyed and recorded as such.
    let req: labctl::VersionReq = version.parse().unwrap();
    let arm64 = labctl::arch::Arch::by_name("arm64").unwrap();
    let b = labctl::build::find_build_for(
        &labctl::Home::new(home.clone()),
        &req,
        &labctl::userland::ToolchainSpec::Host,
        arm64,
    )
    .expect("an arm64 build after kernel build --arch arm64");
    assert!(b.key.contains("-arm64-"), "{}", b.key);
    assert!(b.image.ends_with("Image"), "{}", b.image.display());
    let config = std::fs::read_to_string(&b.config).unwrap();
    assert!(config.lines().any(|l| l == "CONFIG_ARM64=y"));
    assert!(config
        .lines()
        .any(|l| l == "CONFIG_SERIAL_AMBA_PL011_CONSOLE=y"));
    let image = std::fs::read(&b.image).unwrap();
    // arm64's Image header: "ARM\x64" at offset 56.
    assert_eq!(&image[56..60], b"ARM\x64", "not an arm64 Image");
    // The samples are arm64 programs.
    let sample = b.samples.join("sockex1");
    let head = std::fs::read(&sample).unwrap_or_default();
    assert!(
        head.len() > 20 && u16::from_le_bytes([head[18], head[19]]) == 183,
        "{} is not an AArch64 ELF program",
        sample.display()
    );

    let t = Instant::now();
    let out = labctl(&home)
        .args(["--json", "vm", "test", &version, "--arch", "arm64"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "arm64: vm test {version} --arch arm64 took {:.0}s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "vm test --arch arm64 failed\nstdout:\n{stdout}\nstderr (tail):\n{}",
        tail(&stderr, 60)
    );
    let res: labctl::suite::SuiteResult = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(res.accel, "tcg");
    let mut bad = Vec::new();
    for t in &res.tests {
        let host_userland = matches!(t.name.as_str(), "hello-bcc" | "bpftrace");
        match (t.result, t.skip, host_userland) {
            (TestResult::Pass, _, false) => {}
            (TestResult::Skip, Some(SkipKind::NotApplicable), true)
                if t.reason.contains("cannot execute") => {}
            _ => bad.push(format!(
                "{} {:?} {:?}: {}",
                t.name, t.result, t.skip, t.reason
            )),
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let passed = |n: &str| {
        res.tests
            .iter()
            .any(|t| t.name == n && t.result == TestResult::Pass)
    };
    for n in [
        "kernel/btf",
        "kernel/jit",
        "kernel/config",
        "hello",
        "cbpf-port80",
        "core-hello",
        "test_bpf",
        "bpftool",
    ] {
        assert!(passed(n), "{n} did not pass");
    }
    let samples = res
        .tests
        .iter()
        .filter(|t| t.name.starts_with("samples/") && t.result == TestResult::Pass)
        .count();
    assert!(samples >= 6, "only {samples} samples/bpf programs passed");
}
