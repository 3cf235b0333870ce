//! `labctl vm run` end to end under TCG with a real kernel (a lab build from the test
//! home, else a Debian cloud kernel): output and exit codes propagate, a hanging
//! command hits its timeout and leaves no QEMU behind, a guest panic exits 2.

mod vm_support;

use std::path::Path;
use std::process::{Command, Output};

fn labctl(run_home: &Path, args: &[&str]) -> Output {
    // Guest images and the accelerator verdict are cached in the persistent test home.
    Command::new(env!("CARGO_BIN_EXE_labctl"))
        .arg("--home")
        .arg(run_home)
        .args(args)
        .output()
        .unwrap()
}

fn runs_dirs(home: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(home.join("runs"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn uname_prints_the_release_and_exit_codes_propagate() {
    let k = vm_support::kernel();
    let home = vm_support::test_home();
    let kernel = k.bzimage.to_str().unwrap();
    let out = labctl(
        &home,
        &["vm", "run", "--kernel", kernel, "--", "uname", "-r"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", k.release),
        "{stderr}"
    );

    let out = labctl(
        &home,
        &[
            "-q",
            "vm",
            "run",
            "--kernel",
            kernel,
            "--",
            "echo seven; echo to-stderr >&2; exit 7",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "seven\nto-stderr\n");
}

#[test]
fn json_reports_accel_and_release() {
    let k = vm_support::kernel();
    let home = vm_support::test_home();
    let out = labctl(
        &home,
        &[
            "--json",
            "-q",
            "vm",
            "run",
            "--accel",
            "tcg",
            "--kernel",
            k.bzimage.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "exit 0",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["accel"], "tcg");
    assert_eq!(v["release"], k.release.as_str());
    assert!(Path::new(v["console_log"].as_str().unwrap()).is_file());
}

#[test]
fn a_hanging_command_times_out_and_leaves_no_qemu() {
    let k = vm_support::kernel();
    let home = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let out = labctl(
        home.path(),
        &[
            "vm",
            "run",
            "--accel",
            "tcg",
            "--timeout",
            "3",
            "--kernel",
            k.bzimage.to_str().unwrap(),
            "--",
            "echo started; sleep 600",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did not finish within 3s"), "{stderr}");
    assert!(
        stderr.contains("started"),
        "output so far is shown: {stderr}"
    );
    assert!(start.elapsed().as_secs() < 120);
    let runs = runs_dirs(home.path());
    assert_eq!(runs.len(), 1);
    vm_support::assert_no_qemu_left(&runs[0]);
    let result = std::fs::read_to_string(runs[0].join("result.json")).unwrap();
    assert!(
        result.contains("no-result"),
        "pre-written failure status stays: {result}"
    );
}

#[test]
fn a_guest_panic_exits_2_with_the_console_excerpt() {
    let k = vm_support::kernel();
    let home = tempfile::tempdir().unwrap();
    let out = labctl(
        home.path(),
        &[
            "vm",
            "run",
            "--accel",
            "tcg",
            "--kernel",
            k.bzimage.to_str().unwrap(),
            "--",
            "echo c > /proc/sysrq-trigger; sleep 60",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("kernel panic"), "{stderr}");
    assert!(
        stderr.contains("Kernel panic - not syncing"),
        "excerpt shown: {stderr}"
    );
    assert!(stderr.contains("console.log"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let out = labctl(
        home.path(),
        &[
            "vm",
            "run",
            "--kernel",
            "/nonexistent/bzImage",
            "--",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    let out = labctl(home.path(), &["vm", "run", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kernel PATH"));
    let out = labctl(home.path(), &["vm", "run", "9.99.1", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("labctl kernel build 9.99.1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ctrl_c_stops_qemu_and_exits_130() {
    let k = vm_support::kernel();
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_labctl"))
        .arg("--home")
        .arg(home.path())
        .args([
            "-q",
            "vm",
            "run",
            "--accel",
            "tcg",
            "--kernel",
            k.bzimage.to_str().unwrap(),
            "--",
            "sleep 600",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the guest runs the command.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let run_dir = loop {
        let ready = runs_dirs(home.path()).into_iter().find(|d| {
            std::fs::read_to_string(d.join("console.log"))
                .is_ok_and(|c| c.contains("labctl-init: running"))
        });
        if let Some(d) = ready {
            break d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "guest never started the command"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    vm_support::assert_no_qemu_left(&run_dir);
}
