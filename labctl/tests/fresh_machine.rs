//! The README's main job on a fresh machine: a bare Debian bookworm (mmdebstrap minbase,
//! what a container image ships) gets only the labctl binary, then runs, in order and
//! without a shell, `labctl doctor --install --yes` and `labctl vm test`. Both must exit
//! 0, and the suite's results.json must list every test as passed, none skipped, with
//! hello-bcc among them.
//!
//! The root filesystem comes from `labctl::rootfs` and is cached (3 days) under the
//! persistent test home's `rootfs/`. The chroot shares only what cannot hide a missing
//! package: the verified kernel tarballs (`downloads/`) and the compiler cache
//! (`ccache/`) of the persistent test home, bind-mounted into its labctl home. Everything
//! else (apt lists, packages, python tools, the kernel build, guests) starts from
//! nothing. Logs and the results are kept in `<test home>/rootfs/logs/`.
//!
//! Needs root (mount, chroot), mmdebstrap and the Debian archive of the host's apt
//! configuration; takes a cold kernel build (see docs/testing.md for measured times).
//!
//! Other releases, by hand: `LABCTL_FRESH_SUITE=trixie` (any suite mmdebstrap can build
//! from the mirror) and `LABCTL_FRESH_BINARY=PATH` (the labctl binary to copy in, e.g.
//! `dist/labctl-*-x86_64-linux-gnu.2.28` from ci/release.sh for bullseye, whose glibc is
//! older than the test build's) run the same main job there; logs then go to
//! `<test home>/rootfs/logs/fresh-<suite>/`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labctl::events::NullSink;
use labctl::process::LineAction;
use labctl::rootfs::{Bind, Mirror, Rootfs, RootfsCache, RootfsSpec, Session, SessionOptions};

const DOCTOR_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const VM_TEST_TIMEOUT: Duration = Duration::from_secs(40 * 60);
const LABCTL_HOME_INSIDE: &str = "/root/.cache/labctl";

fn minutes(d: Duration) -> String {
    format!("{:.1} min", d.as_secs_f64() / 60.0)
}

/// Run one README command inside; panic with its output's tail unless it exits 0.
fn run_phase(
    session: &Session,
    rootfs: &Rootfs,
    argv: &[&str],
    timeout: Duration,
    log: &Path,
) -> Duration {
    let start = Instant::now();
    let out = session.run(argv, timeout, log, &NullSink, |_| LineAction::Continue);
    let took = start.elapsed();
    if !matches!(&out, Ok(o) if o.code == Some(0)) {
        keep_command_log(rootfs, log);
    }
    let out = out.unwrap_or_else(|e| {
        panic!(
            "`{}` did not finish: {e}\nlog: {}",
            argv.join(" "),
            log.display()
        )
    });
    eprintln!(
        "fresh-machine: `{}` exited {:?} after {}",
        argv.join(" "),
        out.code,
        minutes(took)
    );
    assert_eq!(
        out.code,
        Some(0),
        "`{}` must exit 0 on a fresh machine; last lines:\n{}\nfull log: {}",
        argv.join(" "),
        out.tail.join("\n"),
        log.display()
    );
    took
}

/// The chroot is deleted when the test ends: keep its labctl command log next to `log`.
fn keep_command_log(rootfs: &Rootfs, log: &Path) {
    if let Ok(src) = rootfs.host_path(&format!("{LABCTL_HOME_INSIDE}/logs/commands.log")) {
        let _ = std::fs::copy(src, log.with_extension("commands.log"));
    }
}

/// The newest `runs/*/results.json` under the chroot's labctl home.
fn newest_results(rootfs: &Rootfs) -> PathBuf {
    let runs = rootfs
        .host_path(&format!("{LABCTL_HOME_INSIDE}/runs"))
        .unwrap();
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&runs)
        .unwrap_or_else(|e| panic!("no run folder in {}: {e}", runs.display()))
        .flatten()
        .map(|e| e.path().join("results.json"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("no results.json under {}", runs.display()))
        .1
}

fn require_root_and_mmdebstrap() {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "the fresh-machine test needs root (mmdebstrap --mode=root, mount, chroot)"
    );
    assert!(
        labctl::process::which("mmdebstrap").is_some(),
        "the fresh-machine test needs mmdebstrap (apt-get install --no-install-recommends mmdebstrap)"
    );
}

/// The release the main job runs on: bookworm (Debian 12), or `$LABCTL_FRESH_SUITE`.
fn fresh_suite() -> String {
    std::env::var("LABCTL_FRESH_SUITE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bookworm".into())
}

/// The labctl binary copied in: this test's, or `$LABCTL_FRESH_BINARY`.
fn fresh_binary() -> PathBuf {
    std::env::var_os("LABCTL_FRESH_BINARY")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_labctl")))
}

fn suite_tarball(suite: &str) -> PathBuf {
    let mirror = Mirror::from_host().expect("a Debian archive in the host's apt configuration");
    RootfsCache::new(common::persistent_rootfs_dir())
        .get(&RootfsSpec::new(suite), &mirror, &NullSink)
        .unwrap_or_else(|e| panic!("{suite} minbase root filesystem: {e}"))
}

fn bookworm_tarball() -> PathBuf {
    suite_tarball("bookworm")
}

fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    labctl::rootfs::mounts_under(
        &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        dir,
    )
}

/// The machinery alone, in seconds once the tarball is cached: the chroot sees /dev/kvm,
/// a cleared environment and its bind mounts; a timeout kills what runs inside; closing
/// unmounts everything and deletes the folder.
#[test]
fn session_runs_inside_with_a_clean_environment_and_cleans_up() {
    require_root_and_mmdebstrap();
    let tarball = bookworm_tarball();
    let dir = std::env::temp_dir().join(format!("labctl-rootfs-session-{}", std::process::id()));
    let rootfs = Rootfs::unpack(&tarball, &dir, &NullSink).unwrap();
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("marker"), "shared\n").unwrap();
    let opts = SessionOptions {
        binds: vec![Bind::new(shared.path(), "/root/shared").read_only()],
        remove_on_drop: true,
        term: None,
    };
    let session = Session::enter(&rootfs, opts, &NullSink).unwrap();
    let root = rootfs.dir().to_owned();
    assert!(mounts_below(&root).len() >= 6, "{:?}", mounts_below(&root));
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("env.log");
    let mut lines = Vec::new();
    let out = session
        .run(&["env"], Duration::from_secs(60), &log, &NullSink, |l| {
            lines.push(l.to_string());
            LineAction::Continue
        })
        .unwrap();
    assert_eq!(out.code, Some(0));
    lines.sort();
    assert_eq!(
        lines,
        [
            "HOME=/root",
            "LANG=C.UTF-8",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=dumb"
        ]
    );
    let probe = [
        "test",
        "-c",
        "/dev/kvm",
        "-a",
        "-c",
        "/dev/null",
        "-a",
        "-d",
        "/proc/self",
        "-a",
        "-d",
        "/sys/kernel",
        "-a",
        "-s",
        "/etc/resolv.conf",
        "-a",
        "-f",
        "/root/shared/marker",
    ];
    let out = session
        .run(&probe, Duration::from_secs(60), &log, &NullSink, |_| {
            LineAction::Continue
        })
        .unwrap();
    assert_eq!(
        out.code,
        Some(0),
        "/dev/kvm, /proc, /sys, resolv.conf or the bind is missing inside"
    );
    let out = session
        .run(
            &["touch", "/root/shared/x"],
            Duration::from_secs(60),
            &log,
            &NullSink,
            |_| LineAction::Continue,
        )
        .unwrap();
    assert_ne!(out.code, Some(0), "a read-only bind must not be writable");
    let start = Instant::now();
    let e = session
        .run(
            &["sleep", "600"],
            Duration::from_secs(2),
            &log,
            &NullSink,
            |_| LineAction::Continue,
        )
        .unwrap_err();
    assert!(e.to_string().contains("did not finish"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(30));
    session.close().unwrap();
    assert!(mounts_below(&root).is_empty(), "{:?}", mounts_below(&root));
    assert!(!root.exists(), "the unpacked folder is deleted");
    assert!(
        shared.path().join("marker").is_file(),
        "the shared host folder survives"
    );
}

#[test]
fn bare_bookworm_passes_the_readme_main_job() {
    require_root_and_mmdebstrap();
    let test_home = common::persistent_test_home();
    let suite = fresh_suite();
    let logs = match suite.as_str() {
        "bookworm" => common::persistent_rootfs_dir().join("logs"),
        s => common::persistent_rootfs_dir()
            .join("logs")
            .join(format!("fresh-{s}")),
    };
    std::fs::create_dir_all(&logs).unwrap();

    // Phase 1: the root filesystem (cached for 3 days), unpacked into a scratch folder.
    let t = Instant::now();
    let tarball = suite_tarball(&suite);
    let dir = std::env::temp_dir().join(format!("labctl-fresh-machine-{}", std::process::id()));
    let rootfs = Rootfs::unpack(&tarball, &dir, &NullSink)
        .unwrap_or_else(|e| panic!("unpack {}: {e}", tarball.display()));
    rootfs
        .install_file(&fresh_binary(), "/usr/local/bin/labctl", 0o755)
        .unwrap();
    let mut binds = Vec::new();
    for shared in ["downloads", "ccache"] {
        let host = test_home.join(shared);
        std::fs::create_dir_all(&host).unwrap();
        binds.push(Bind::new(host, format!("{LABCTL_HOME_INSIDE}/{shared}")));
    }
    let session = Session::enter(
        &rootfs,
        SessionOptions {
            binds,
            remove_on_drop: true,
            term: None,
        },
        &NullSink,
    )
    .unwrap_or_else(|e| panic!("prepare the chroot in {}: {e}", dir.display()));
    let rootfs_time = t.elapsed();
    eprintln!(
        "fresh-machine: root filesystem ready in {} ({})",
        minutes(rootfs_time),
        tarball.display()
    );

    // Phases 2 and 3: the README's main job, verbatim, one argv at a time.
    let doctor_time = run_phase(
        &session,
        &rootfs,
        &["labctl", "doctor", "--install", "--yes"],
        DOCTOR_TIMEOUT,
        &logs.join("doctor.log"),
    );
    // doctor installed carefully: no recommends, nothing removed or downgraded.
    let history = std::fs::read_to_string(rootfs.host_path("/var/log/apt/history.log").unwrap())
        .unwrap_or_default();
    let installs: Vec<&str> = history
        .lines()
        .filter(|l| l.starts_with("Commandline: apt-get install"))
        .collect();
    assert!(
        !installs.is_empty(),
        "doctor installed nothing with apt:\n{history}"
    );
    for l in &installs {
        assert!(
            l.contains("--no-install-recommends"),
            "an install with recommends: {l}"
        );
    }
    for bad in ["Remove:", "Purge:", "Downgrade:"] {
        assert!(
            !history.contains(bad),
            "doctor's installs must not {bad} anything:\n{history}"
        );
    }
    let vm_test = run_phase(
        &session,
        &rootfs,
        &["labctl", "vm", "test"],
        VM_TEST_TIMEOUT,
        &logs.join("vm-test.log"),
    );

    let results_path = newest_results(&rootfs);
    let text = std::fs::read_to_string(&results_path).unwrap();
    let _ = std::fs::write(logs.join("results.json"), &text);
    eprintln!(
        "fresh-machine: rootfs {}, doctor {}, vm test {} (logs in {})",
        minutes(rootfs_time),
        minutes(doctor_time),
        minutes(vm_test),
        logs.display()
    );
    session.close().expect("the chroot unmounts and is removed");

    let res: labctl::suite::SuiteResult = serde_json::from_str(&text).unwrap();
    assert!(!res.tests.is_empty(), "no tests ran: {text}");
    let not_passed: Vec<String> = res
        .tests
        .iter()
        .filter(|t| t.result != labctl::events::TestResult::Pass)
        .map(|t| format!("{} {:?}: {}", t.name, t.result, t.reason))
        .collect();
    assert!(
        not_passed.is_empty(),
        "every test must pass and none be skipped on a fresh machine:\n{}",
        not_passed.join("\n")
    );
    assert!(
        res.tests.iter().any(|t| t.name == "hello-bcc"),
        "hello-bcc did not run: {:?}",
        res.tests.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
}
