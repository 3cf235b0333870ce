//! `labctl doctor` through the binary: the report on this host (JSON shape, exit code
//! consistent with what is missing), `--kernel` judging pahole, and bad input.

use std::process::Command;

fn labctl(args: &[&str]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_labctl"))
        .arg("--home")
        .arg(home.path())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn json_report_is_complete_and_matches_the_exit_code() {
    let out = labctl(&["doctor", "--json", "--kernel", "5.10.46"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let checks = v["checks"].as_array().unwrap();
    let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    for want in [
        "make",
        "gcc",
        "binutils",
        "flex",
        "bison",
        "bc",
        "perl",
        "rsync",
        "libelf",
        "openssl",
        "pahole",
        "clang",
        "libc32",
        "qemu",
        "kvm",
        "busybox",
        "virtme-ng",
        "disk",
        "ram",
    ] {
        assert!(ids.contains(&want), "check {want} missing from {ids:?}");
    }
    for c in checks {
        assert!(
            ["ok", "warn", "missing"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        assert!(!c["detail"].as_str().unwrap().is_empty());
    }
    let missing = checks.iter().any(|c| c["status"] == "missing");
    assert_eq!(
        out.status.code(),
        Some(if missing { 2 } else { 0 }),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Missing distro packages come with an install argv.
    let pkgs: usize = checks
        .iter()
        .filter(|c| c["status"] != "ok" && c["id"] != "virtme-ng")
        .map(|c| c["packages"].as_array().unwrap().len())
        .sum();
    if pkgs > 0 && !v["distro"]["manager"].is_null() {
        assert!(v["install"].is_array(), "{v}");
    }
    assert_eq!(v["kernel"], "5.10.46");
}

#[test]
fn text_report_names_the_distro_and_pahole_verdict() {
    let out = labctl(&["doctor", "--kernel", "5.10.46"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("labctl doctor: "), "{text}");
    let pahole = text
        .lines()
        .find(|l| l.contains("pahole (dwarves)"))
        .unwrap();
    if labctl::process::which("pahole").is_some() {
        assert!(
            pahole.contains("5.10.46") && pahole.contains("1.16"),
            "{pahole}"
        );
    }
}

#[test]
fn bad_kernel_version_is_a_usage_error() {
    let out = labctl(&["doctor", "--kernel", "5.x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("accepted forms"));
}
