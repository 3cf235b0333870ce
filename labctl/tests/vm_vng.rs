//! `--backend vng`: virtme-ng boots the 5.10 lab build with the host root over 9p and
//! runs a command from the host's userland; output and exit code come back.
//! Needs `vng` (PyPI `virtme-ng`), `depmod` (Debian `kmod`) and the e2e lab build.

mod vm_support;

use labctl::events::NullSink;
use labctl::vm::{self, AccelChoice, Backend, VmSpec};

#[test]
fn vng_runs_uname_on_the_lab_kernel() {
    let k = vm_support::lab_kernel();
    let d = tempfile::tempdir().unwrap();
    let mut s = VmSpec::new(
        &k.bzimage,
        d.path().join("run"),
        "uname -r; python3 -c 'print(6*7)'; exit 7",
    );
    s.backend = Backend::Vng;
    s.accel = AccelChoice::Tcg;
    let out = vm::run(&vm_support::home(), &s, &NullSink).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.output),
        format!("{}\n42\n", k.release)
    );
    assert_eq!(out.exit_code, 7);
    assert_eq!(out.release.as_deref(), Some(k.release.as_str()));
}
