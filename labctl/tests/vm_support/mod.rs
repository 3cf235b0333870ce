//! Shared helpers for the VM tests: the persistent test home and a real kernel to boot.
//!
//! Kernel choice, first that exists: a finished 5.10 labctl build in the test home
//! (`build::find_build`), else a Debian cloud kernel package fetched once with
//! `apt-get download` into `<test home>/vm-test-kernel/` (uses the host's apt sources).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use labctl::Home;

#[path = "../common/mod.rs"]
mod common;

/// `LABCTL_TEST_HOME`, default `$HOME/.cache/labctl-test` (never deleted by tests).
pub fn test_home() -> PathBuf {
    common::persistent_test_home()
}

pub fn home() -> Home {
    Home::new(test_home())
}

#[derive(Debug, Clone)]
pub struct TestKernel {
    pub bzimage: PathBuf,
    /// modules_install staging dir of a lab build.
    pub modules: Option<PathBuf>,
    /// Where the kernel's own modules live (lib/modules/<release>), lab or Debian.
    pub modules_tree: Option<PathBuf>,
    pub release: String,
    pub is_lab_build: bool,
}

fn lab_build(home: &Home) -> Option<TestKernel> {
    let req: labctl::VersionReq = "5.10".parse().unwrap();
    let b = labctl::build::find_build(home, &req).filter(|b| b.image.is_file())?;
    let tree = b.modules.join("lib/modules").join(&b.release);
    Some(TestKernel {
        bzimage: b.image.clone(),
        modules: tree.is_dir().then(|| b.modules.clone()),
        modules_tree: tree.is_dir().then_some(tree),
        release: b.release,
        is_lab_build: true,
    })
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn debian_kernel(home: &Home) -> TestKernel {
    let dir = home.root().join("vm-test-kernel");
    std::fs::create_dir_all(&dir).unwrap();
    let _lock = home.lock_other("vm-test-kernel").unwrap();
    let done = dir.join("complete");
    if !done.is_file() {
        let deps = run(Command::new("apt-cache").args(["depends", "linux-image-cloud-amd64"]));
        let pkg = deps
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Depends: ")
                    .filter(|p| p.starts_with("linux-image-"))
            })
            .expect("apt-cache knows linux-image-cloud-amd64 (Debian archive in the apt sources)")
            .trim()
            .to_string();
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        run(Command::new("apt-get")
            .arg("download")
            .arg(&pkg)
            .current_dir(&dir));
        let deb = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .unwrap();
        let x = dir.join("x");
        let _ = std::fs::remove_dir_all(&x);
        run(Command::new("dpkg").arg("-x").arg(&deb).arg(&x));
        let vmlinuz = std::fs::read_dir(x.join("boot"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("vmlinuz-")
            })
            .unwrap();
        let release = vmlinuz
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("vmlinuz-")
            .to_string();
        std::fs::write(&done, release).unwrap();
    }
    let release = std::fs::read_to_string(&done).unwrap();
    let x = dir.join("x");
    TestKernel {
        bzimage: x.join("boot").join(format!("vmlinuz-{release}")),
        modules: None,
        modules_tree: Some(x.join("lib/modules").join(&release)),
        release,
        is_lab_build: false,
    }
}

/// `LABCTL_TEST_LAB_KERNEL=<bzImage>` (+ `LABCTL_TEST_LAB_MODULES=<modules_install dir>`)
/// stands in for the e2e build, e.g. a hand-built lab kernel.
fn lab_override() -> Option<TestKernel> {
    let k = PathBuf::from(std::env::var_os("LABCTL_TEST_LAB_KERNEL").filter(|v| !v.is_empty())?);
    let modules = std::env::var_os("LABCTL_TEST_LAB_MODULES")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let tree = modules.as_ref().and_then(|m| {
        std::fs::read_dir(m.join("lib/modules"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.is_dir())
    });
    let release = tree
        .as_ref()
        .map(|t| t.file_name().unwrap().to_string_lossy().into_owned())
        .or_else(|| std::env::var("LABCTL_TEST_LAB_RELEASE").ok())
        .expect("LABCTL_TEST_LAB_KERNEL needs LABCTL_TEST_LAB_MODULES or LABCTL_TEST_LAB_RELEASE");
    Some(TestKernel {
        bzimage: k,
        modules,
        modules_tree: tree,
        release,
        is_lab_build: true,
    })
}

/// The kernel the VM tests boot: the lab build if there is one, else a Debian kernel.
pub fn kernel() -> TestKernel {
    let home = home();
    lab_override()
        .or_else(|| lab_build(&home))
        .unwrap_or_else(|| debian_kernel(&home))
}

/// The 5.10 lab build (tests that need lab-profile features: test_bpf.ko, vng's 9p).
/// It comes from the e2e build test, which shares the persistent test home.
pub fn lab_kernel() -> TestKernel {
    let home = home();
    lab_override().or_else(|| lab_build(&home)).unwrap_or_else(|| {
        panic!(
            "no finished 5.10 lab build in {}/builds: run the e2e build test first (it shares LABCTL_TEST_HOME), \
             or set LABCTL_TEST_LAB_KERNEL=<bzImage> and LABCTL_TEST_LAB_MODULES=<modules_install dir>",
            home.root().display()
        )
    })
}

/// A Debian cloud kernel (for tests that need a module Debian ships, e.g. `dummy`).
pub fn debian() -> TestKernel {
    debian_kernel(&home())
}

/// Is the process `pid` still running (not gone, not a zombie)?
pub fn running(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("X")
        .to_string();
    !matches!(state.as_str(), "Z" | "X")
}

/// The pid QEMU wrote into a run directory.
pub fn qemu_pid(run_dir: &Path) -> Option<i32> {
    std::fs::read_to_string(run_dir.join("qemu.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Assert QEMU of this run is gone (polls briefly: the kill is asynchronous).
pub fn assert_no_qemu_left(run_dir: &Path) {
    let pid = qemu_pid(run_dir).expect("QEMU wrote its pidfile");
    for _ in 0..50 {
        if !running(pid) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("QEMU pid {pid} of {} is still running", run_dir.display());
}
