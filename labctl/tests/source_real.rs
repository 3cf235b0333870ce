//! Real network: `labctl kernel fetch 5.10.46 --source debian` against Debian's archive
//! (base URLs from this host's apt configuration), into the persistent test home
//! (`LABCTL_TEST_HOME`, default `~/.cache/labctl-test`) so CI downloads it once. The
//! fetch must report bullseye's InRelease verified by the host's archive keyring.

mod common;

use std::process::Command;

#[test]
fn real_debian_5_10_46_has_the_right_makefile() {
    let home = common::persistent_test_home();
    let out = Command::new(env!("CARGO_BIN_EXE_labctl"))
        .arg("--home")
        .arg(&home)
        // --require-signature: a tree recorded without a good signature is not reused, so
        // bullseye's InRelease is checked against the archive keyring on every run.
        .args([
            "--json",
            "kernel",
            "fetch",
            "5.10.46",
            "--source",
            "debian",
            "--debian-suites",
            "bullseye",
            "--require-signature",
        ])
        .env_remove("LABCTL_HOME")
        .output()
        .expect("run labctl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(j["source"].as_str().unwrap().starts_with("debian "), "{j}");
    assert_eq!(j["sha256"].as_str().unwrap().len(), 64);
    // The chain: InRelease signed by a key of the host's Debian archive keyring.
    let t = &j["trust"];
    assert_eq!(t["authenticated"], true, "{j}");
    assert!(
        t["signed_file"]
            .as_str()
            .unwrap()
            .ends_with("/dists/bullseye/InRelease"),
        "{t}"
    );
    let keyring = t["keyring"].as_str().unwrap();
    assert!(
        keyring.starts_with("/usr/share/keyrings/")
            || keyring.starts_with("/etc/apt/trusted.gpg.d/"),
        "{keyring}"
    );
    assert_eq!(t["fingerprint"].as_str().unwrap().len(), 40, "{t}");
    assert!(
        j["verified"]
            .as_str()
            .unwrap()
            .contains("signature checked with gpgv"),
        "{j}"
    );
    let tree = std::path::PathBuf::from(j["path"].as_str().unwrap());
    assert!(tree.starts_with(home.join("src")), "{}", tree.display());
    let mk = std::fs::read_to_string(tree.join("Makefile")).unwrap();
    let head: Vec<&str> = mk.lines().take(6).collect();
    for want in ["VERSION = 5", "PATCHLEVEL = 10", "SUBLEVEL = 46"] {
        assert!(
            head.contains(&want),
            "Makefile head lacks {want:?}: {head:?}"
        );
    }
    assert!(tree.join("kernel/bpf/verifier.c").is_file());
    assert!(tree.join("samples/bpf").is_dir());
    // A second fetch of the exact version reuses the tree (no network I/O).
    let again = Command::new(env!("CARGO_BIN_EXE_labctl"))
        .arg("--home")
        .arg(&home)
        .args(["--json", "kernel", "fetch", "5.10.46", "--source", "debian"])
        .env_remove("LABCTL_HOME")
        .output()
        .expect("run labctl");
    assert_eq!(again.status.code(), Some(0));
    let j2: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(j2["reused"], true);
    assert_eq!(j2["path"], j["path"]);
    assert_eq!(j2["sha256"], j["sha256"]);
}
