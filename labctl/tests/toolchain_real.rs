//! A real kernel built with another Debian release's compilers (`--toolchain
//! debian:trixie`: GCC 14, pahole 1.30, clang 19) and tested as a user runs it:
//! `labctl vm test 6.12 --toolchain debian:trixie`. This is CI's build with a non-host
//! toolchain and its ≥ 6.x suite with samples/bpf (built in the in-tree copy, linked
//! against trixie's libraries, which the guest gets from the toolchain root).
//!
//! Uses the persistent test home (`LABCTL_TEST_HOME`, default `~/.cache/labctl-test`):
//! the toolchain tarball, the 6.12 tree and the build are made once per machine.
//! Needs root (chroot, bind mounts) and mmdebstrap, like the fresh-machine test.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn labctl(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_labctl"));
    c.arg("--home").arg(home).env_remove("LABCTL_HOME");
    c
}

#[test]
fn linux_6_12_built_by_debian_trixie_passes_the_whole_suite_with_samples() {
    let home = common::persistent_test_home();
    let t = Instant::now();
    let out = labctl(&home)
        .args([
            "--json",
            "vm",
            "test",
            "6.12",
            "--toolchain",
            "debian:trixie",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "toolchain: vm test 6.12 --toolchain debian:trixie took {:.0}s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "vm test failed\nstdout:\n{stdout}\nstderr (tail):\n{}",
        stderr
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let res: labctl::suite::SuiteResult = serde_json::from_str(stdout.trim()).unwrap();
    let not_passed: Vec<String> = res
        .tests
        .iter()
        .filter(|t| t.result != labctl::events::TestResult::Pass)
        .map(|t| format!("{} {:?}: {}", t.name, t.result, t.reason))
        .collect();
    assert!(not_passed.is_empty(), "{}", not_passed.join("\n"));
    let samples = res
        .tests
        .iter()
        .filter(|t| t.name.starts_with("samples/"))
        .count();
    assert!(samples >= 6, "only {samples} samples/bpf programs ran");

    // The build really used trixie's tools, and says so.
    let v: labctl::VersionReq = "6.12".parse().unwrap();
    let trixie = labctl::userland::ToolchainSpec::Debian("trixie".into());
    let b = labctl::build::find_build_for(
        &labctl::Home::new(home.clone()),
        &v,
        &trixie,
        labctl::arch::Arch::host(),
    )
    .expect("a finished 6.12 build with the trixie toolchain");
    let meta = labctl::build::BuildJson::read(&b.dir).unwrap();
    assert_eq!(meta.toolchain.userland, trixie);
    let gcc = meta.toolchain.gcc.clone().unwrap_or_default();
    assert!(
        gcc.starts_with("14."),
        "trixie's GCC is 14, build.json says {gcc}"
    );
    let sysroot = b
        .sysroot
        .clone()
        .expect("build.json names the toolchain root");
    assert!(
        sysroot.starts_with(home.join("toolchains")),
        "{}",
        sysroot.display()
    );
    let config = std::fs::read_to_string(&b.config).unwrap();
    assert!(
        config.contains("CONFIG_GCC_VERSION=14"),
        "the config was made with trixie's compiler"
    );
    // The same version with the host's tools is another build folder.
    assert!(!b.key.is_empty());
    if let Some(host) = labctl::build::find_build(&labctl::Home::new(home.clone()), &v) {
        assert_ne!(host.key, b.key);
    }
    let repro = std::fs::read_to_string(&b.reproduce).unwrap();
    assert!(repro.contains("chroot"), "reproduce.sh says where make ran");
}

#[test]
fn an_unknown_debian_release_is_a_setup_error_that_names_it() {
    let home = tempfile::tempdir().unwrap();
    let out = labctl(home.path())
        .args([
            "kernel",
            "build",
            "5.10.46",
            "--toolchain",
            "debian:nosuchrelease",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("debian:nosuchrelease"), "{stderr}");
    // Nothing was downloaded or built for a toolchain that does not exist.
    assert!(!home.path().join("builds").exists());
    assert!(!home.path().join("downloads").exists());

    let out = labctl(home.path())
        .args(["kernel", "build", "5.10.46", "--toolchain", "gcc-10"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("debian:<suite>"), "{stderr}");
}
