//! `labctl kernel config` as a user runs it: bad `--set` values, a bad profile and an
//! unreadable fragment exit 2 with a clear message (before any make runs); a real run on
//! the 5.10.46 tree prints the report table, `--json` the report, `--out` the .config.

mod common;

use std::path::PathBuf;
use std::process::Command;

use labctl::events::NullSink;
use labctl::source::{FetchOptions, SourceSpec};

/// 5.10.46 from Debian's archive in the persistent test home (downloaded once, then reused).
fn tree() -> PathBuf {
    let home = labctl::Home::new(common::persistent_test_home());
    let req: labctl::VersionReq = "5.10.46".parse().unwrap();
    labctl::source::fetch(
        &home,
        &req,
        &SourceSpec::Debian,
        &FetchOptions::default(),
        &NullSink,
    )
    .expect("fetch 5.10.46")
    .path
}

/// Run labctl against the persistent test home; `--source debian` unless args name a source.
fn labctl(args: &[&str]) -> (i32, String, String) {
    let _ = tree();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_labctl"));
    cmd.arg("--home")
        .arg(common::persistent_test_home())
        .arg("--color")
        .arg("never")
        .args(args)
        .env_remove("LABCTL_HOME");
    if !args.contains(&"--source") {
        cmd.args(["--source", "debian"]);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_set_values_exit_2_with_a_clear_error() {
    for (bad, says) in [
        ("CONFIG_", "no `=`"),
        ("FOO", "must start with CONFIG_"),
        ("CONFIG_X=maybe", "value must be y, m, n"),
        ("", "must start with CONFIG_"),
        ("CONFIG_X=", "empty value"),
    ] {
        let (code, stdout, stderr) = labctl(&["kernel", "config", "5.10.46", "--set", bad]);
        assert_eq!(code, 2, "{bad:?}: {stderr}");
        assert!(
            stderr.contains("bad --set value") && stderr.contains(says),
            "{bad:?}: {stderr}"
        );
        assert!(stdout.is_empty(), "no report for bad input: {stdout}");
    }
}

#[test]
fn unreadable_fragment_and_bad_profile_exit_2() {
    let (code, _, stderr) = labctl(&[
        "kernel",
        "config",
        "5.10.46",
        "--fragment",
        "/nonexistent/lab.config",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot read fragment /nonexistent/lab.config"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.config");
    std::fs::write(&bad, "CONFIG_BPF=y\nthis is not a config line\n").unwrap();
    let (code, _, stderr) = labctl(&[
        "kernel",
        "config",
        "5.10.46",
        "--fragment",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");

    let (code, _, stderr) = labctl(&["kernel", "config", "5.10.46", "--profile", "tiny"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("unknown profile") && stderr.contains("defconfig"),
        "{stderr}"
    );

    let t = tree();
    let (code, _, stderr) = labctl(&[
        "kernel",
        "config",
        "5.11.1",
        "--source",
        t.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "a tree of another version is refused: {stderr}");
}

#[test]
fn report_table_json_and_out_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lab.config");
    let (code, stdout, stderr) = labctl(&[
        "kernel",
        "config",
        "5.10.46",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("CONFIG_BPF_SYSCALL*") && stdout.contains("config hash "),
        "{stdout}"
    );
    assert!(
        stdout.contains("0 not"),
        "every fragment symbol is satisfied on 5.10.46: {stdout}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("CONFIG_DEBUG_INFO_BTF=y"));

    let (code, stdout, stderr) = labctl(&[
        "--json",
        "kernel",
        "config",
        "5.10.46",
        "--fragment",
        "bcc",
        "--set",
        "CONFIG_LABCTL_NOPE=y",
    ]);
    assert_eq!(code, 0, "an unknown non-core symbol is a warning: {stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rows = v["symbols"].as_array().unwrap();
    let nope = rows.iter().find(|r| r["symbol"] == "LABCTL_NOPE").unwrap();
    assert_eq!(nope["status"], "unknown");
    assert_eq!(nope["final"], "n");
    let ik = rows.iter().find(|r| r["symbol"] == "IKHEADERS").unwrap();
    assert_eq!(ik["final"], "y", "the opt-in bcc fragment applied");
    assert!(
        stderr.contains("CONFIG_LABCTL_NOPE"),
        "the mismatch is also a warning on stderr: {stderr}"
    );

    let (code, _, stderr) = labctl(&[
        "kernel",
        "config",
        "5.10.46",
        "--set",
        "CONFIG_LABCTL_NOPE=y",
        "--strict",
    ]);
    assert_eq!(code, 2, "--strict makes it an error: {stderr}");
    assert!(stderr.contains("CONFIG_LABCTL_NOPE"), "{stderr}");
}
