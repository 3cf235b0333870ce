//! `labctl vm run --share` end to end under TCG on the lab's 5.10.46 build in the
//! persistent test home (built there when missing): a host file is read in the guest, a
//! file the guest writes is on the host afterwards, `:ro` refuses writes, the command
//! starts in the first share, and a dynamically linked program in the share (the host's
//! bpftool, which `labctl doctor` installs) runs with its libraries.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use labctl::events::NullSink;
use labctl::process::{Cmd, Output};

fn labctl(args: &[&str]) -> Output {
    Cmd::new(env!("CARGO_BIN_EXE_labctl"))
        .arg("--home")
        .arg(common::persistent_test_home())
        .args(args)
        .timeout(Duration::from_secs(3600))
        .run(&NullSink)
        .unwrap()
}

/// `vm run 5.10.46 --accel tcg ARGS`, building 5.10.46 first when the home has none.
fn vm_run(args: &[&str]) -> Output {
    let mut all = vec!["vm", "run", "5.10.46", "--accel", "tcg"];
    all.extend_from_slice(args);
    let out = labctl(&all);
    if out.code == Some(2) && out.stderr_str().contains("no finished labctl build") {
        let b = labctl(&["kernel", "build", "5.10.46"]);
        assert_eq!(b.code, Some(0), "kernel build: {}", b.stderr_str());
        return labctl(&all);
    }
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_shared_folder_goes_both_ways_and_read_only_means_it() {
    let d = tempfile::tempdir().unwrap();
    let rw = d.path().join("work");
    let ro = d.path().join("data");
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(rw.join("from-host.txt"), "written on the host\n").unwrap();
    std::fs::write(ro.join("input.txt"), "one\ntwo\nthree\n").unwrap();
    let bpftool =
        labctl::process::which("bpftool").expect("bpftool on PATH (labctl doctor --install)");
    std::fs::copy(&bpftool, rw.join("bpftool")).unwrap();

    let rw_arg = s(&rw).to_string();
    let ro_arg = format!("{}:/data:ro", s(&ro));
    let script = "pwd; cat from-host.txt; wc -l < /data/input.txt > counted.txt; \
                  echo made in the guest > from-guest.txt; \
                  ./bpftool version | head -1; \
                  if touch /data/nope 2>/dev/null; then echo RO-WRITABLE; else echo ro-refused; fi";
    let out = vm_run(&["--share", &rw_arg, "--share", &ro_arg, "--", script]);
    let text = out.stdout_str();
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{text}\nstderr:\n{}",
        out.stderr_str()
    );
    let lines: Vec<&str> = text.lines().collect();
    // The command starts in the first share, mounted at the host's own path.
    assert_eq!(
        lines.first().copied(),
        Some(s(&std::fs::canonicalize(&rw).unwrap())),
        "{text}"
    );
    assert!(text.contains("written on the host"), "{text}");
    assert!(
        text.contains("bpftool v"),
        "bpftool ran with its libraries:\n{text}"
    );
    assert!(
        text.contains("ro-refused") && !text.contains("RO-WRITABLE"),
        "{text}"
    );
    // What the guest wrote is on the host.
    assert_eq!(
        std::fs::read_to_string(rw.join("counted.txt"))
            .unwrap()
            .trim(),
        "3"
    );
    assert_eq!(
        std::fs::read_to_string(rw.join("from-guest.txt")).unwrap(),
        "made in the guest\n"
    );
    assert!(!ro.join("nope").exists());
}

#[test]
fn bad_shares_are_refused_before_booting() {
    let d = tempfile::tempdir().unwrap();
    let f: PathBuf = d.path().join("file");
    std::fs::write(&f, "x").unwrap();
    for (arg, want) in [
        (s(&f).to_string(), "not a folder"),
        (format!("{}:relative", s(d.path())), "absolute"),
        ("/no/such/dir".to_string(), "not a folder"),
    ] {
        let out = labctl(&[
            "vm",
            "run",
            "--kernel",
            "/nonexistent",
            "--share",
            &arg,
            "--",
            "true",
        ]);
        assert_eq!(out.code, Some(2), "{arg}: {}", out.stderr_str());
        assert!(
            out.stderr_str().contains(want),
            "{arg}: {}",
            out.stderr_str()
        );
    }
}
