//! `labctl kernel package 5.10.46 --format deb` on the persistent test home's lab build
//! (the kernel's `make bindeb-pkg` in the build's own tree and O= folder, nothing
//! compiled again), then `dpkg -i` of the linux-image package in a bare Debian root
//! filesystem (`labctl::rootfs`, bookworm minbase from the host's apt mirror, cached in
//! the persistent test home's `rootfs/`): the kernel, System.map and config land in
//! /boot and the modules in /lib/modules/<release>, where grub and depmod look.
//! Needs root (chroot) and mmdebstrap, like tests/fresh_machine.rs.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labctl::events::NullSink;
use labctl::process::{Cmd, LineAction};
use labctl::rootfs::{Bind, Mirror, Rootfs, RootfsCache, RootfsSpec, Session, SessionOptions};

fn require_root_and_mmdebstrap() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root (chroot)"
    );
    assert!(
        labctl::process::which("mmdebstrap").is_some(),
        "this test needs mmdebstrap (`labctl doctor --tests --install`)"
    );
}

fn bookworm_tarball() -> PathBuf {
    let mirror = Mirror::from_host().expect("a Debian archive in the host's apt configuration");
    RootfsCache::new(common::persistent_rootfs_dir())
        .get(&RootfsSpec::new("bookworm"), &mirror, &NullSink)
        .unwrap_or_else(|e| panic!("bookworm minbase root filesystem: {e}"))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn the_lab_deb_installs_into_a_bare_debian_where_grub_and_depmod_look() {
    require_root_and_mmdebstrap();
    let home = common::persistent_test_home();
    let out_dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let out = Cmd::new(env!("CARGO_BIN_EXE_labctl"))
        .arg("--home")
        .arg(&home)
        .args([
            "--json", "kernel", "package", "5.10.46", "--format", "deb", "--output",
        ])
        .arg(out_dir.path())
        .timeout(Duration::from_secs(5400))
        .run(&NullSink)
        .unwrap();
    let package_s = t.elapsed().as_secs_f64();
    assert!(
        out.success(),
        "kernel package failed:\n{}",
        out.stderr_str()
    );
    let j: serde_json::Value = serde_json::from_str(&out.stdout_str()).unwrap();
    let release = j["release"].as_str().unwrap().to_string();
    let files: Vec<PathBuf> = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(f.as_str().unwrap()))
        .collect();
    assert!(
        files
            .iter()
            .all(|f| f.starts_with(out_dir.path()) && f.is_file()),
        "{files:?}"
    );
    let image = files
        .iter()
        .find(|f| {
            let n = f.file_name().unwrap().to_string_lossy();
            n.starts_with(&format!("linux-image-{release}_")) && n.ends_with(".deb")
        })
        .unwrap_or_else(|| panic!("no linux-image-{release} package in {files:?}"))
        .clone();
    // Nothing was compiled again: the make log shows no compiler step for kernel objects.
    let log = std::fs::read_to_string(j["log"].as_str().unwrap()).unwrap();
    assert!(
        !log.lines()
            .any(|l| l.trim_start().starts_with("CC ") && l.contains("kernel/")),
        "bindeb-pkg recompiled the kernel:\n{}",
        log.lines()
            .filter(|l| l.trim_start().starts_with("CC "))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );

    let tarball = bookworm_tarball();
    let dir = std::env::temp_dir().join(format!("labctl-package-deb-{}", std::process::id()));
    let rootfs = Rootfs::unpack(&tarball, &dir, &NullSink).unwrap();
    let session = Session::enter(
        &rootfs,
        SessionOptions {
            binds: vec![Bind::new(out_dir.path(), "/root/pkgs").read_only()],
            remove_on_drop: true,
            term: None,
        },
        &NullSink,
    )
    .unwrap();
    let deb = format!(
        "/root/pkgs/{}",
        image.file_name().unwrap().to_string_lossy()
    );
    let logs = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let r = session
        .run(
            &["dpkg", "-i", &deb],
            Duration::from_secs(600),
            &logs.path().join("dpkg.log"),
            &NullSink,
            |_| LineAction::Continue,
        )
        .unwrap();
    let install_s = t.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(logs.path().join("dpkg.log")).unwrap();
    assert_eq!(r.code, Some(0), "dpkg -i failed:\n{text}");
    let root = session.root().to_path_buf();
    let boot = names(&root.join("boot"));
    for f in [
        format!("vmlinuz-{release}"),
        format!("System.map-{release}"),
        format!("config-{release}"),
    ] {
        assert!(boot.contains(&f), "/boot lacks {f}: {boot:?}");
    }
    // The kernel in /boot is the build's bzImage; the config is the build's .config.
    // The build that was packaged: its log is builds/<key>/logs/package-deb.log (the
    // shared test home may hold other 5.10.46 builds, e.g. of newer fragments).
    let build_dir = Path::new(j["log"].as_str().unwrap())
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let installed = std::fs::read_to_string(root.join(format!("boot/config-{release}"))).unwrap();
    let built = std::fs::read_to_string(build_dir.join("artifacts/config")).unwrap();
    let differ: Vec<(&str, &str)> = installed
        .lines()
        .zip(built.lines())
        .filter(|(a, b)| a != b)
        .take(5)
        .collect();
    assert!(
        differ.is_empty() && installed.lines().count() == built.lines().count(),
        "/boot/config-{release} is not the build's config ({}): {differ:?}",
        build_dir.display()
    );
    let vmlinuz = std::fs::read(root.join(format!("boot/vmlinuz-{release}"))).unwrap();
    assert_eq!(&vmlinuz[0x202..0x206], b"HdrS", "vmlinuz is not a bzImage");
    let modules = root.join(format!("lib/modules/{release}"));
    let m = names(&modules);
    for f in ["modules.dep", "modules.order", "kernel"] {
        assert!(
            m.iter().any(|x| x == f),
            "/lib/modules/{release} lacks {f}: {m:?}"
        );
    }
    let dep = std::fs::read_to_string(modules.join("modules.dep")).unwrap();
    assert!(dep.contains("test_bpf.ko"), "modules.dep: {dep}");
    // dpkg knows the package, so apt can remove it again.
    let r = session
        .run(
            &[
                "dpkg-query",
                "-W",
                "-f",
                "${Status}",
                &format!("linux-image-{release}"),
            ],
            Duration::from_secs(60),
            &logs.path().join("query.log"),
            &NullSink,
            |_| LineAction::Continue,
        )
        .unwrap();
    let q = std::fs::read_to_string(logs.path().join("query.log")).unwrap();
    assert_eq!(r.code, Some(0), "{q}");
    assert!(q.contains("install ok installed"), "{q}");
    session.close().unwrap();
    eprintln!(
        "package_real: kernel package --format deb {package_s:.0}s ({} files), dpkg -i {install_s:.0}s",
        files.len()
    );
}
