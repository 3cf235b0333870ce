//! The release binary starts on an old distribution: `ci/release.sh` builds labctl linked
//! against glibc 2.28 (cargo-zigbuild and zig), and a bare Debian 11 bullseye (glibc
//! 2.31; mmdebstrap minbase from `labctl::rootfs`, cached under the persistent test
//! home's `rootfs/`) gets only that file as `/usr/local/bin/labctl`. Inside, without a
//! shell, `labctl --version` must print the version and `labctl doctor` its report (exit
//! 0 or 2: a bare system lacks the packages). As a control, the test's own binary, built
//! against the host's glibc, must fail to start in the same chroot with
//! `version 'GLIBC_2.xx' not found`: the root filesystem really is older than the host.
//!
//! Needs root (mount, chroot), mmdebstrap, the Debian archive of the host's apt
//! configuration, and cargo-zigbuild with zig in labctl's tools venv at the pinned
//! versions (requirement `cargo-zigbuild`, test group: `labctl doctor --tests
//! --install`). Fails, never skips, when one is missing. The release build keeps its
//! target folder in `<test home>/release/`, so a run recompiles only what changed; the
//! script's log is `<test home>/release/release.log` (see docs/testing.md for times).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labctl::events::NullSink;
use labctl::process::{Cmd, LineAction};
use labctl::rootfs::{Rootfs, RootfsCache, RootfsSpec, Session, SessionOptions};
use object::read::elf::FileHeader;

const RELEASE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const GLIBC: (u32, u32) = (2, 28);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn require_tools() {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "the old-glibc test needs root (mmdebstrap --mode=root, mount, chroot)"
    );
    assert!(
        labctl::process::which("mmdebstrap").is_some(),
        "the old-glibc test needs mmdebstrap (apt-get install --no-install-recommends mmdebstrap)"
    );
    let venv = labctl::process::tools_venv();
    assert!(
        venv.join("bin/cargo-zigbuild").is_file(),
        "the old-glibc test needs cargo-zigbuild and zig (PyPI's ziglang) in labctl's tools venv \
         {}: `cargo run -q -p labctl -- doctor --tests --install --yes` installs them \
         (requirement `cargo-zigbuild` in labctl/src/doctor/requirements.toml)",
        venv.display()
    );
}

/// Every `GLIBC_x.y` version the ELF file at `path` requires (its SHT_GNU_VERNEED).
fn glibc_versions_needed(path: &Path) -> Vec<(u32, u32)> {
    let data = std::fs::read(path).unwrap();
    let hdr = object::elf::FileHeader64::<object::Endianness>::parse(&*data).unwrap();
    let endian = hdr.endian().unwrap();
    let sections = hdr.sections(endian, &*data).unwrap();
    let (mut needs, link) = sections
        .gnu_verneed(endian, &*data)
        .unwrap()
        .expect("a dynamically linked binary has version needs");
    let strings = sections.strings(endian, &*data, link).unwrap();
    let mut out = Vec::new();
    while let Some((_, mut aux)) = needs.next().unwrap() {
        while let Some(a) = aux.next().unwrap() {
            let name = String::from_utf8_lossy(a.name(endian, strings).unwrap()).into_owned();
            if let Some(v) = name.strip_prefix("GLIBC_") {
                let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap());
                out.push((parts.next().unwrap(), parts.next().unwrap_or(0)));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Build the release artifact with the real script, into the persistent test home.
fn release_binary() -> PathBuf {
    let dir = common::persistent_test_home().join("release");
    let out = dir.join("dist");
    std::fs::create_dir_all(&out).unwrap();
    let log = dir.join("release.log");
    let start = Instant::now();
    let res = Cmd::new("bash")
        .arg(repo_root().join("ci/release.sh"))
        .arg("--out")
        .arg(&out)
        .cwd(repo_root())
        .env("CARGO_TARGET_DIR", &dir)
        .timeout(RELEASE_TIMEOUT)
        .run_streaming(&NullSink, &log, |_| LineAction::Continue)
        .unwrap_or_else(|e| panic!("ci/release.sh did not finish: {e}\nlog: {}", log.display()));
    assert_eq!(
        res.code,
        Some(0),
        "ci/release.sh failed; last lines:\n{}\nfull log: {}",
        res.tail.join("\n"),
        log.display()
    );
    eprintln!(
        "old-glibc: ci/release.sh took {:.1} min",
        start.elapsed().as_secs_f64() / 60.0
    );
    let name = format!("labctl-{}-x86_64-linux-gnu.2.28", env!("CARGO_PKG_VERSION"));
    let bin = out.join(&name);
    assert!(bin.is_file(), "ci/release.sh wrote no {}", bin.display());
    // The .sha256 file is `sha256sum -c` input for the binary next to it.
    let sums = std::fs::read_to_string(out.join(format!("{name}.sha256"))).unwrap();
    let digest = common::sha256_hex(&std::fs::read(&bin).unwrap());
    assert_eq!(sums, format!("{digest}  {name}\n"));
    bin
}

#[test]
fn release_binary_starts_on_bare_bullseye() {
    require_tools();
    let bin = release_binary();

    let needed = glibc_versions_needed(&bin);
    let max = *needed.last().expect("GLIBC_ version needs");
    eprintln!(
        "old-glibc: {} ({} MiB) needs GLIBC_{}.{} at most",
        bin.display(),
        std::fs::metadata(&bin).unwrap().len() / (1024 * 1024),
        max.0,
        max.1
    );
    assert!(
        max <= GLIBC,
        "the release binary needs GLIBC_{}.{}, more than 2.28: {needed:?}",
        max.0,
        max.1
    );
    let host_max = *glibc_versions_needed(Path::new(env!("CARGO_BIN_EXE_labctl")))
        .last()
        .unwrap();

    let mirror = labctl::rootfs::Mirror::from_host()
        .expect("a Debian archive in the host's apt configuration");
    let tarball = RootfsCache::new(common::persistent_rootfs_dir())
        .get(&RootfsSpec::new("bullseye"), &mirror, &NullSink)
        .unwrap_or_else(|e| panic!("bullseye minbase root filesystem: {e}"));
    let dir = std::env::temp_dir().join(format!("labctl-old-glibc-{}", std::process::id()));
    let rootfs = Rootfs::unpack(&tarball, &dir, &NullSink)
        .unwrap_or_else(|e| panic!("unpack {}: {e}", tarball.display()));
    rootfs
        .install_file(&bin, "/usr/local/bin/labctl", 0o755)
        .unwrap();
    rootfs
        .install_file(
            Path::new(env!("CARGO_BIN_EXE_labctl")),
            "/usr/local/bin/labctl-host-build",
            0o755,
        )
        .unwrap();
    let session = Session::enter(
        &rootfs,
        SessionOptions {
            binds: vec![],
            remove_on_drop: true,
            term: None,
        },
        &NullSink,
    )
    .unwrap_or_else(|e| panic!("prepare the chroot in {}: {e}", dir.display()));
    let logs = tempfile::tempdir().unwrap();
    let run = |argv: &[&str]| {
        let log = logs.path().join("run.log");
        let out = session
            .run(argv, RUN_TIMEOUT, &log, &NullSink, |_| LineAction::Continue)
            .unwrap_or_else(|e| panic!("`{}` did not finish: {e}", argv.join(" ")));
        let text = std::fs::read_to_string(&log).unwrap();
        (out.code, text)
    };

    // The chroot's C library: older than the host's build needs, not older than 2.28.
    let (code, text) = run(&["getconf", "GNU_LIBC_VERSION"]);
    assert_eq!(code, Some(0), "{text}");
    let inside = text
        .lines()
        .find_map(|l| l.strip_prefix("glibc "))
        .unwrap_or_else(|| panic!("no glibc version in:\n{text}"));
    let mut parts = inside.trim().split('.').map(|p| p.parse::<u32>().unwrap());
    let inside = (parts.next().unwrap(), parts.next().unwrap());
    eprintln!(
        "old-glibc: bullseye has glibc {}.{}; the host build needs GLIBC_{}.{}",
        inside.0, inside.1, host_max.0, host_max.1
    );
    assert!(inside >= GLIBC, "{inside:?}");

    // Control: the host build does not start here (when the host needs a newer glibc).
    if host_max > inside {
        let (code, text) = run(&["labctl-host-build", "--version"]);
        assert_ne!(code, Some(0), "the host build started on bullseye:\n{text}");
        assert!(
            text.contains("not found") && text.contains("GLIBC_"),
            "the host build failed for another reason than its glibc:\n{text}"
        );
        let why = text.lines().find(|l| l.contains("GLIBC_")).unwrap_or("");
        eprintln!(
            "old-glibc: control, the host build on bullseye: {}",
            why.trim()
        );
    } else {
        eprintln!("old-glibc: no control, the host build runs on glibc {inside:?} too");
    }

    let (code, text) = run(&["labctl", "--version"]);
    assert_eq!(code, Some(0), "labctl --version on bullseye:\n{text}");
    assert!(
        text.contains(&format!("labctl {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );

    // doctor on a bare system: it runs, recognises Debian 11 and reports what is missing
    // (exit 2); it must not fail to start or crash.
    let (code, text) = run(&["labctl", "doctor"]);
    eprintln!("old-glibc: `labctl doctor` on bullseye exited {code:?}");
    assert!(
        matches!(code, Some(0) | Some(2)),
        "labctl doctor on bullseye exited {code:?}:\n{text}"
    );
    assert!(
        text.contains("labctl doctor: Debian GNU/Linux 11 (bullseye)"),
        "doctor did not report on Debian 11:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("MISSING") && l.contains("make"))
            && text.contains("apt-get install"),
        "doctor's report names no missing package or install command:\n{text}"
    );
    session.close().expect("the chroot unmounts and is removed");
}
