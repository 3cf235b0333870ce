//! The real `labctl` binary on the fetch/list/cache paths, against a loopback Debian
//! mirror: exit codes, one-line errors for bad versions, the printed result and `--json`,
//! two concurrent processes fetching one version, and cache ls/prune.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn labctl(home: &Path, args: &[&str]) -> Command {
    let mut c = labctl_clean(home, args);
    c.env("LABCTL_READ_TIMEOUT", "2");
    // The loopback mirrors here publish no InRelease (tests/adversarial/ signs them).
    c.env("LABCTL_ALLOW_UNSIGNED", "true");
    c
}

fn run(home: &Path, args: &[&str]) -> Output {
    labctl(home, args).output().expect("run labctl")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const SUITES: &str = "bullseye,bullseye-security,bookworm";

fn mirror(server: &TestServer) -> (String, String) {
    let (a, s, _) = debian_mirror(
        server,
        &["bullseye", "bullseye-security", "bookworm"],
        &[
            DebEntry::new("bullseye", "5.10.46"),
            DebEntry::new("bullseye-security", "5.10.251"),
            DebEntry::new("bookworm", "6.1.4"),
        ],
        200_000,
    );
    (a, s)
}

#[test]
fn bad_versions_exit_2_with_one_line_naming_the_accepted_forms() {
    let d = tempfile::tempdir().unwrap();
    let long = "5".repeat(300);
    for bad in [
        "5",
        "5.x",
        "abc",
        "5.10.1.1",
        "-1",
        "",
        &long,
        "5.10;rm -rf /",
        "$(reboot)",
        "5.10 && id",
        "`id`",
    ] {
        let out = run(
            d.path(),
            &[
                "kernel",
                "fetch",
                bad,
                "--source",
                "debian",
                "--debian-url",
                "http://127.0.0.1:1/debian",
            ],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{bad:?}: not one line: {err}"
        );
        assert!(
            err.contains("accepted forms") && err.len() < 250,
            "{bad:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    assert!(!d.path().join("src").exists() && !d.path().join("downloads").exists());
}

#[test]
fn fetch_prints_version_sha_and_path_then_json_and_list() {
    let server = TestServer::start();
    let (a, s) = mirror(&server);
    let d = tempfile::tempdir().unwrap();
    let out = run(
        d.path(),
        &[
            "kernel",
            "fetch",
            "5.10",
            "--source",
            "debian",
            "--debian-url",
            &a,
            "--debian-security-url",
            &s,
            "--debian-suites",
            SUITES,
        ],
    );
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{so}\n{se}");
    assert!(
        so.starts_with("linux 5.10.251 (debian bullseye-security)\nsha256 "),
        "{so}"
    );
    let tree = so
        .lines()
        .find_map(|l| l.strip_prefix("tree "))
        .expect("tree line");
    assert!(Path::new(tree).join("Makefile").is_file(), "{so}");
    assert!(
        se.contains("download: ") && se.contains("extract: "),
        "progress lines on stderr: {se}"
    );

    let out = run(
        d.path(),
        &[
            "--json",
            "kernel",
            "fetch",
            "v5.10.251",
            "--source",
            "debian",
            "--debian-url",
            &a,
            "--debian-security-url",
            &s,
            "--debian-suites",
            SUITES,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let j: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(j["path"], tree);
    assert_eq!(j["version"], "5.10.251");
    assert_eq!(j["reused"], true);
    assert_eq!(j["sha256"].as_str().unwrap().len(), 64);

    let out = run(d.path(), &["kernel", "list"]);
    assert!(
        text(&out.stdout).contains("5.10.251") && text(&out.stdout).contains(tree),
        "{}",
        text(&out.stdout)
    );
    let out = run(
        d.path(),
        &[
            "kernel",
            "list",
            "--remote",
            "5.10",
            "--source",
            "debian",
            "--debian-url",
            &a,
            "--debian-security-url",
            &s,
            "--debian-suites",
            SUITES,
        ],
    );
    let so = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{so}{}", text(&out.stderr));
    assert!(
        so.contains("debian bullseye: 5.10.46")
            && so.contains("debian bullseye-security: 5.10.251")
            && so.contains("debian bookworm: (none)"),
        "{so}"
    );
}

#[test]
fn not_found_and_download_failures_exit_2() {
    let server = TestServer::start();
    let (a, s) = mirror(&server);
    let d = tempfile::tempdir().unwrap();
    let out = run(
        d.path(),
        &[
            "kernel",
            "fetch",
            "5.10.47",
            "--debian-url",
            &a,
            "--debian-security-url",
            &s,
            "--debian-suites",
            SUITES,
        ],
    );
    let se = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{se}");
    assert!(
        se.contains("kernel 5.10.47 not found:")
            && se.contains("  kernel.org: ")
            && se.contains("  debian: has no 5.10.47"),
        "{se}"
    );
    assert!(
        se.contains("nearest versions that exist: 5.10.46, 5.10.251"),
        "{se}"
    );
    server.remove(&deb_path("bookworm", "6.1.4"));
    let out = run(
        d.path(),
        &[
            "kernel",
            "fetch",
            "6.1.4",
            "--source",
            "debian",
            "--debian-url",
            &a,
            "--debian-security-url",
            &s,
            "--debian-suites",
            SUITES,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("listed but not served"),
        "{}",
        text(&out.stderr)
    );
    let out = run(d.path(), &["kernel", "fetch", "5.10", "--source", "gentoo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid --source"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn two_processes_fetching_one_version_share_one_download() {
    let server = TestServer::start();
    let (a, s) = mirror(&server);
    let d = tempfile::tempdir().unwrap();
    let args = [
        "--json",
        "kernel",
        "fetch",
        "5.10.46",
        "--source",
        "debian",
        "--debian-url",
        &a,
        "--debian-security-url",
        &s,
        "--debian-suites",
        SUITES,
    ];
    let c1 = labctl(d.path(), &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let c2 = labctl(d.path(), &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (o1, o2) = (
        c1.wait_with_output().unwrap(),
        c2.wait_with_output().unwrap(),
    );
    assert_eq!(o1.status.code(), Some(0), "{}", text(&o1.stderr));
    assert_eq!(o2.status.code(), Some(0), "{}", text(&o2.stderr));
    let j1: serde_json::Value = serde_json::from_slice(&o1.stdout).unwrap();
    let j2: serde_json::Value = serde_json::from_slice(&o2.stdout).unwrap();
    assert_eq!(j1["path"], j2["path"]);
    assert_eq!(
        server.hits(&deb_path("bullseye", "5.10.46")).len(),
        1,
        "downloaded twice"
    );
    assert_eq!(std::fs::read_dir(d.path().join("src")).unwrap().count(), 1);
}

#[test]
fn cache_ls_and_prune() {
    let server = TestServer::start();
    let (a, s) = mirror(&server);
    let d = tempfile::tempdir().unwrap();
    let out = run(
        d.path(),
        &[
            "kernel",
            "fetch",
            "6.1.4",
            "--source",
            "debian",
            "--debian-url",
            &a,
            "--debian-security-url",
            &s,
            "--debian-suites",
            SUITES,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(d.path(), &["--json", "cache", "ls"]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"downloads") && kinds.contains(&"src") && kinds.contains(&"indexes"),
        "{kinds:?}"
    );
    assert!(j["total"].as_u64().unwrap() > 200_000);
    let out = run(d.path(), &["cache", "ls"]);
    assert!(
        text(&out.stdout).contains("linux-6.1.4-"),
        "{}",
        text(&out.stdout)
    );

    let out = run(d.path(), &["cache", "prune"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "prune without a selector must refuse"
    );
    let out = run(
        d.path(),
        &["cache", "prune", "--kind", "downloads", "--dry-run"],
    );
    assert!(
        text(&out.stdout).contains("would remove downloads"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        std::fs::read_dir(d.path().join("downloads"))
            .unwrap()
            .count(),
        1
    );
    let out = run(d.path(), &["cache", "prune", "--kind", "downloads"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_dir(d.path().join("downloads"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(d.path().join("src")).unwrap().count(),
        1,
        "trees stay"
    );
    let out = run(d.path(), &["cache", "prune", "--kind", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(d.path(), &["cache", "prune", "--all"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_dir(d.path().join("src")).unwrap().count(), 0);
}
