//! The VM library under TCG with a real kernel: payload programs bring their shared
//! libraries, modules load at boot, the watchdog reports panics and boot timeouts, and a
//! KVM that hangs is caught by the probe (simulated with a fake QEMU).

mod vm_support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use labctl::events::NullSink;
use labctl::vm::{self, AccelChoice, Alarm, GuestFile, VmError, VmSpec};

fn spec(k: &vm_support::TestKernel, run_dir: PathBuf, script: &str) -> VmSpec {
    let mut s = VmSpec::new(&k.bzimage, run_dir, script);
    s.accel = AccelChoice::Tcg;
    s
}

#[test]
fn a_dynamic_program_runs_with_its_libraries() {
    // Like samples/bpf user programs: dynamic, needs libelf + libz + libc.
    let k = vm_support::kernel();
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("p.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <libelf.h>\n#include <zlib.h>\nint main(void){printf(\"libelf ok=%d zlib %s\\n\", elf_version(EV_CURRENT)!=EV_NONE, zlibVersion());return 3;}\n",
    )
    .unwrap();
    let bin = d.path().join("p");
    assert!(std::process::Command::new("cc")
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .args(["-lelf", "-lz"])
        .status()
        .unwrap()
        .success());
    let mut s = spec(&k, d.path().join("run"), "/opt/p");
    s.files = vec![GuestFile {
        host: bin,
        guest: "/opt/p".into(),
        with_libs: true,
        sysroot: None,
    }];
    let out = vm::run(&vm_support::home(), &s, &NullSink).unwrap();
    let text = String::from_utf8_lossy(&out.output);
    assert_eq!(out.exit_code, 3, "{text}");
    assert!(text.starts_with("libelf ok=1 zlib 1."), "{text}");
    assert_eq!(out.release.as_deref(), Some(k.release.as_str()));
    assert_eq!(out.accel, "tcg");
}

#[test]
fn modules_load_at_boot_even_without_modules_dep() {
    // A one-module staging dir without modules.dep: the guest's depmod makes one.
    let k = vm_support::debian();
    let tree = k.modules_tree.clone().unwrap();
    let d = tempfile::tempdir().unwrap();
    let staging = d.path().join("mods");
    let rel_dir = staging
        .join("lib/modules")
        .join(&k.release)
        .join("kernel/drivers/net");
    std::fs::create_dir_all(&rel_dir).unwrap();
    std::fs::copy(
        tree.join("kernel/drivers/net/dummy.ko"),
        rel_dir.join("dummy.ko"),
    )
    .unwrap();
    let mut s = spec(
        &k,
        d.path().join("run"),
        "grep -c '^dummy ' /proc/modules; ip link show dummy0 >/dev/null && echo has-dummy0",
    );
    s.modules = Some(staging);
    s.load_modules = vec!["dummy".into()];
    let out = vm::run(&vm_support::home(), &s, &NullSink).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.output), "1\nhas-dummy0\n");
    assert_eq!(out.exit_code, 0);
}

#[test]
fn a_lab_build_loads_test_bpf_and_it_passes() {
    // The lab profile builds test_bpf as a module (a Debian kernel has none).
    let k = vm_support::lab_kernel();
    let d = tempfile::tempdir().unwrap();
    let mut s = spec(
        &k,
        d.path().join("run"),
        "dmesg | grep 'test_bpf: Summary'; lsmod | grep -c '^test_bpf'",
    );
    s.modules = k.modules.clone();
    s.load_modules = vec!["test_bpf".into()];
    let out = vm::run(&vm_support::home(), &s, &NullSink).unwrap();
    let text = String::from_utf8_lossy(&out.output);
    assert!(
        text.contains("test_bpf: Summary:") && text.contains(" 0 FAILED"),
        "{text}"
    );
    assert!(text.ends_with("1\n"), "module stays loaded: {text}");
}

#[test]
fn the_guest_has_the_bpf_lab_environment() {
    let k = vm_support::kernel();
    let d = tempfile::tempdir().unwrap();
    let script = "grep -q ' /sys/fs/bpf bpf' /proc/mounts && grep -q ' /sys/kernel/debug debugfs' /proc/mounts && grep -q ' /tmp tmpfs' /proc/mounts && test -c /dev/zero && ip link show lo | grep -q UP && ulimit -l";
    let out = vm::run(
        &vm_support::home(),
        &spec(&k, d.path().join("run"), script),
        &NullSink,
    )
    .unwrap();
    assert_eq!(
        (out.exit_code, String::from_utf8_lossy(&out.output).as_ref()),
        (0, "unlimited\n")
    );
}

#[test]
fn sysrq_crash_is_a_panic_and_qemu_is_gone() {
    let k = vm_support::kernel();
    let d = tempfile::tempdir().unwrap();
    let run_dir = d.path().join("run");
    let e = vm::run(
        &vm_support::home(),
        &spec(&k, run_dir.clone(), "echo c > /proc/sysrq-trigger"),
        &NullSink,
    )
    .unwrap_err();
    match &e {
        VmError::Panic {
            kind: Alarm::KernelPanic,
            excerpt,
            log,
        } => {
            assert!(excerpt.contains("sysrq"), "{excerpt}");
            assert!(log.is_file());
        }
        other => panic!("expected a panic, got {other}"),
    }
    if let Some(pid) = vm_support::qemu_pid(&run_dir) {
        assert!(!vm_support::running(pid));
    }
}

#[test]
fn boot_timeout_stops_qemu() {
    let k = vm_support::kernel();
    let d = tempfile::tempdir().unwrap();
    let run_dir = d.path().join("run");
    let mut s = spec(&k, run_dir.clone(), "true");
    s.boot_timeout = Some(Duration::from_millis(1));
    let e = vm::run(&vm_support::home(), &s, &NullSink).unwrap_err();
    assert!(matches!(e, VmError::BootTimeout { .. }), "{e}");
    vm_support::assert_no_qemu_left(&run_dir);
}

#[test]
fn a_hanging_kvm_is_detected_by_the_probe_and_tcg_is_used() {
    // A fake QEMU: under KVM it hangs silently (as KVM does on some nested hosts),
    // otherwise it runs the real QEMU. The KVM device is a plain file we can open.
    let k = vm_support::kernel();
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("kvm-probe.pid");
    let fake = d.path().join("fake-qemu");
    let real = labctl::process::which("qemu-system-x86_64").expect("qemu-system-x86 installed");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ncase \" $* \" in *' kvm '*) echo $$ > '{}'; exec sleep 600;; esac\nexec '{}' \"$@\"\n",
            marker.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kvm = d.path().join("kvm");
    std::fs::write(&kvm, b"").unwrap();
    let home = labctl::Home::new(d.path().join("home"));
    let mut s = spec(&k, d.path().join("run"), "echo alive");
    s.accel = AccelChoice::Auto;
    s.qemu = Some(fake);
    s.kvm_device = kvm;
    s.probe_timeout = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let out = vm::run(&home, &s, &NullSink).unwrap();
    assert_eq!(out.accel, "tcg");
    assert!(
        out.accel_reason.contains("no life within 2s"),
        "{}",
        out.accel_reason
    );
    assert_eq!(String::from_utf8_lossy(&out.output), "alive\n");
    // The hung probe was killed, not left behind.
    let pid: i32 = std::fs::read_to_string(&marker)
        .expect("the probe ran under KVM")
        .trim()
        .parse()
        .unwrap();
    assert!(!vm_support::running(pid), "probe {pid} survived");
    assert!(started.elapsed() < Duration::from_secs(120));
    // The verdict is cached for this host boot: a second run does not probe again.
    std::fs::remove_file(&marker).unwrap();
    let out = vm::run(&home, &s, &NullSink).unwrap();
    assert_eq!(out.accel, "tcg");
    assert!(!marker.exists(), "second run probed again");
}
