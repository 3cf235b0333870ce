//! The examples build everywhere: `examples-bpf/` (hello, cbpf-port80, core-hello and
//! the checks) is built inside Debian 11 (bullseye), 12 (bookworm) and 13 (trixie) root
//! filesystems that hold what labctl's doctor installs there, and the loaders then run
//! in the hermetic guest on the lab kernel.
//!
//! For each release:
//! 1. **Root filesystem.** `labctl::rootfs` builds it with mmdebstrap (minbase) from the
//!    host's apt mirror with the apt packages of doctor's requirement groups build,
//!    samples and examples (plus vm where labctl runs inside), read from
//!    `doctor/requirements.toml` through `labctl::doctor::requirements()` — no list of
//!    its own. mmdebstrap installs no Recommends, as `doctor --install` does not. The
//!    tarball is cached in `<test home>/rootfs/` (3 days).
//! 2. **By hand.** The Makefiles as their headers document: `make OUT=...` (static,
//!    flags from `pkg-config --static --libs libbpf`), and where that fails
//!    `make LINK=dynamic`. Every loader must be static, or its whole closure (interpreter
//!    and every library) must resolve inside that root filesystem (`ldd` there).
//! 3. **In the guest.** bookworm and trixie: the test's labctl binary runs
//!    `labctl vm test 5.10.46 --kernel ...` inside the chroot, so labctl's own examples
//!    build (static where it links, else dynamic) and guest image (the libraries of
//!    dynamic loaders come from that root filesystem) are what is tested; every test
//!    of the filter must pass, the guest image must hold each dynamic loader's closure,
//!    and `link.json` must say what the files are. bullseye: labctl needs glibc ≥ 2.34
//!    and does not start there yet, so the by-hand (static) loaders run through the
//!    host's `labctl vm run` with the suite's own runner script and judges.
//!
//! The kernel is the 5.10.46 lab build of the persistent test home (built first when
//! missing, as `tests/suite_real.rs` would). Needs root, mmdebstrap and the Debian
//! archive of the host's apt configuration; see docs/testing.md for measured times.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use labctl::doctor::{Group, Manager};
use labctl::events::NullSink;
use labctl::process::{Cmd, LineAction};
use labctl::rootfs::SessionOptions;
use labctl::rootfs::{Mirror, Rootfs, RootfsCache, RootfsSpec, Session};
use labctl::suite::examples;

/// The suite tests that run the examples' programs.
const FILTER: &str = "kernel/btf,hello,cbpf-port80,core-hello";
const KERNEL: &str = "5.10.46";
const LABCTL_HOME_INSIDE: &str = "/root/.cache/labctl";
const SRC_INSIDE: &str = "/root/examples-bpf";
const BYHAND_INSIDE: &str = "/root/byhand";
/// One release at a time: each boots QEMU and unpacks about 1 GB.
static SERIAL: Mutex<()> = Mutex::new(());

/// The loaders and the example directory that makes each.
const LOADERS: &[(&str, &str)] = &[
    ("hello", "hello"),
    ("cbpf-port80", "cbpf-port80"),
    ("core-hello", "core-hello"),
    ("btf-check", "checks"),
    ("ptyrun", "checks"),
];

fn require_root_and_mmdebstrap() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root (mmdebstrap --mode=root, mount, chroot)"
    );
    assert!(
        labctl::process::which("mmdebstrap").is_some(),
        "this test needs mmdebstrap (apt-get install --no-install-recommends mmdebstrap)"
    );
}

/// doctor's apt packages for these groups, from requirements.toml.
fn doctor_packages(groups: &[Group]) -> Vec<String> {
    let mut v: Vec<String> = labctl::doctor::requirements()
        .iter()
        .filter(|r| groups.contains(&r.group))
        .flat_map(|r| r.packages(Manager::Apt).iter().cloned())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// True when an mmdebstrap log shows a 404 from the security archive.
fn security_404(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|t| {
        t.lines()
            .any(|l| l.contains("404") && l.contains("-security"))
    })
}

/// The cached root filesystem of `suite` with `pkgs`. When the archive's security
/// suite lacks a file the release needs (this machine's mirror misses bullseye's
/// libbpf-dev 0.3-2+deb11u1), it is built from the release and -updates alone, and says
/// so; that failure is remembered (its mmdebstrap log) for the cache's maximum age.
fn tarball(suite: &str, pkgs: &[String]) -> PathBuf {
    let mirror = Mirror::from_host().expect("a Debian archive in the host's apt configuration");
    let cache = RootfsCache::new(common::persistent_rootfs_dir());
    let spec = RootfsSpec::new(suite).include(pkgs.iter().cloned());
    let arch = labctl::rootfs::debian_arch().unwrap();
    let full_log = cache
        .tarball_path(&spec, &mirror, arch)
        .with_extension("log");
    let recent_404 = !cache.tarball_path(&spec, &mirror, arch).exists()
        && security_404(&full_log)
        && std::fs::metadata(&full_log)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() < RootfsCache::DEFAULT_MAX_AGE);
    let result = if recent_404 {
        Err(None)
    } else {
        cache.get(&spec, &mirror, &NullSink).map_err(Some)
    };
    match result {
        Ok(t) => t,
        Err(e) if mirror.security.is_some() && security_404(&full_log) => {
            eprintln!(
                "examples-userlands: {suite}: the security archive lacks a package file{} (see {}); using {suite} and {suite}-updates only",
                if e.is_none() { " (remembered)" } else { "" },
                full_log.display()
            );
            let plain = Mirror {
                security: None,
                ..mirror
            };
            cache
                .get(&spec, &plain, &NullSink)
                .unwrap_or_else(|e| panic!("{suite} root filesystem: {e}"))
        }
        Err(Some(e)) => panic!("{suite} root filesystem: {e}"),
        Err(None) => unreachable!("a remembered 404 is a 404"),
    }
}

/// The 5.10.46 lab build of the persistent test home, built when missing.
fn lab_kernel() -> PathBuf {
    let home = labctl::Home::new(common::persistent_test_home());
    let req: labctl::VersionReq = KERNEL.parse().unwrap();
    if let Some(b) = labctl::build::find_build(&home, &req) {
        return b.image;
    }
    let out = Cmd::new(env!("CARGO_BIN_EXE_labctl"))
        .arg("--home")
        .arg(home.root())
        .args(["kernel", "build", KERNEL])
        .timeout(Duration::from_secs(3600))
        .run(&NullSink)
        .unwrap();
    assert!(
        out.success(),
        "labctl kernel build {KERNEL}: {}",
        out.stderr_str()
    );
    labctl::build::find_build(&home, &req)
        .expect("a finished build after kernel build")
        .image
}

/// Run `argv` inside; its merged output lines and exit code.
fn run_inside(
    session: &Session,
    argv: &[&str],
    timeout: Duration,
    log: &Path,
) -> (Option<i32>, Vec<String>) {
    let mut lines = Vec::new();
    let out = session
        .run(argv, timeout, log, &NullSink, |l| {
            lines.push(l.to_string());
            LineAction::Continue
        })
        .unwrap_or_else(|e| panic!("`{}` did not finish: {e}", argv.join(" ")));
    (out.code, lines)
}

/// What one loader is: static, or dynamic with the closure `ldd` resolved inside.
#[derive(Debug)]
enum Linked {
    Static,
    /// (interpreter, library file names)
    Dynamic(String, Vec<String>),
}

/// Is the ELF at `inside` static, or does its whole closure resolve in the rootfs?
/// Panics (the test fails) when neither.
fn closure_inside(session: &Session, rootfs: &Rootfs, inside: &str, log: &Path) -> Linked {
    let data = std::fs::read(rootfs.host_path(inside).unwrap())
        .unwrap_or_else(|e| panic!("{inside} was not built: {e}"));
    let info = labctl::vm::elf::inspect(&data).unwrap_or_else(|e| panic!("{inside}: {e}"));
    if info.is_static() {
        return Linked::Static;
    }
    let interp = info
        .interpreter
        .clone()
        .expect("a dynamic loader has PT_INTERP");
    assert!(
        rootfs.host_path(&interp).unwrap().exists(),
        "{inside}: its interpreter {interp} is not in the root filesystem"
    );
    let (code, lines) = run_inside(session, &["ldd", inside], Duration::from_secs(60), log);
    let missing: Vec<&String> = lines.iter().filter(|l| l.contains("not found")).collect();
    assert!(
        code == Some(0) && missing.is_empty(),
        "{inside}: its closure does not resolve inside the root filesystem:\n{}",
        lines.join("\n")
    );
    let libs: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let (name, path) = l.trim().split_once(" => ")?;
            path.starts_with('/').then(|| name.trim().to_string())
        })
        .collect();
    for n in &info.needed {
        assert!(
            libs.contains(n),
            "{inside} needs {n}; ldd resolved {libs:?}"
        );
    }
    Linked::Dynamic(interp, libs)
}

/// The Makefiles by hand, as their headers say: static first, `LINK=dynamic` if that
/// fails. Returns each loader's link.
fn build_by_hand(session: &Session, rootfs: &Rootfs, logs: &Path) -> Vec<(String, Linked)> {
    let mut out = Vec::new();
    for (loader, dir) in LOADERS {
        let src = format!("{SRC_INSIDE}/{dir}");
        let o = format!("OUT={BYHAND_INSIDE}");
        let log = logs.join(format!("make-{dir}.log"));
        let (code, lines) = run_inside(
            session,
            &["make", "-C", &src, &o],
            Duration::from_secs(300),
            &log,
        );
        if code != Some(0) {
            let (code, dyn_lines) = run_inside(
                session,
                &["make", "-C", &src, &o, "LINK=dynamic"],
                Duration::from_secs(300),
                &logs.join(format!("make-{dir}-dynamic.log")),
            );
            assert_eq!(
                code,
                Some(0),
                "make -C {dir} failed static and LINK=dynamic:\n{}\n---\n{}",
                lines.join("\n"),
                dyn_lines.join("\n")
            );
        }
        let linked = closure_inside(
            session,
            rootfs,
            &format!("{BYHAND_INSIDE}/{loader}"),
            &logs.join("ldd.log"),
        );
        out.push((loader.to_string(), linked));
    }
    for obj in ["hello.bpf.o", "core_hello.bpf.o"] {
        assert!(
            rootfs
                .host_path(&format!("{BYHAND_INSIDE}/{obj}"))
                .unwrap()
                .is_file(),
            "{obj} was not built"
        );
    }
    out
}

fn describe(links: &[(String, Linked)]) -> String {
    links
        .iter()
        .map(|(n, l)| match l {
            Linked::Static => format!("{n} static"),
            Linked::Dynamic(_, libs) => format!("{n} dynamic ({})", libs.join(" ")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// File names in a newc archive.
fn image_names(image: &Path) -> Vec<String> {
    let out = Cmd::new("cpio")
        .args(["-t", "--quiet", "-F"])
        .arg(image)
        .timeout(Duration::from_secs(60))
        .run(&NullSink)
        .unwrap();
    assert!(out.success(), "cpio -t {}", image.display());
    out.stdout_str().lines().map(String::from).collect()
}

struct Prepared {
    rootfs: Rootfs,
    session: Session,
    logs: PathBuf,
    started: Instant,
}

/// Root filesystem of `suite` with doctor's packages of `groups`, unpacked, with the
/// examples' sources (the ones embedded in labctl) at /root/examples-bpf.
fn prepare(suite: &str, groups: &[Group]) -> Prepared {
    require_root_and_mmdebstrap();
    let started = Instant::now();
    let logs = common::persistent_rootfs_dir()
        .join("logs")
        .join(format!("examples-{suite}"));
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).unwrap();
    let pkgs = doctor_packages(groups);
    for p in ["pkg-config", "libbpf-dev", "clang", "make"] {
        assert!(pkgs.iter().any(|x| x == p), "doctor lists no {p}: {pkgs:?}");
    }
    let tar = tarball(suite, &pkgs);
    let dir = std::env::temp_dir().join(format!("labctl-examples-{suite}-{}", std::process::id()));
    let rootfs = Rootfs::unpack(&tar, &dir, &NullSink)
        .unwrap_or_else(|e| panic!("unpack {}: {e}", tar.display()));
    examples::write_sources(
        &rootfs.create_dir_all(SRC_INSIDE).unwrap(),
        examples::SOURCES,
    )
    .unwrap();
    rootfs.create_dir_all(BYHAND_INSIDE).unwrap();
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
    eprintln!(
        "examples-userlands: {suite}: root filesystem ready after {:.0} s ({})",
        started.elapsed().as_secs_f64(),
        tar.display()
    );
    Prepared {
        rootfs,
        session,
        logs,
        started,
    }
}

/// labctl inside: `labctl vm test` on the lab kernel builds the examples with this
/// release's toolchain and runs them in the guest; every test must pass, and dynamic
/// loaders must reach the guest with their closure.
fn vm_test_inside(suite: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bz = lab_kernel();
    let p = prepare(
        suite,
        &[Group::Build, Group::Samples, Group::Examples, Group::Vm],
    );
    let by_hand = build_by_hand(&p.session, &p.rootfs, &p.logs);
    eprintln!(
        "examples-userlands: {suite}: by hand: {}",
        describe(&by_hand)
    );

    p.rootfs
        .install_file(
            Path::new(env!("CARGO_BIN_EXE_labctl")),
            "/usr/local/bin/labctl",
            0o755,
        )
        .unwrap();
    p.rootfs.install_file(&bz, "/root/bzImage", 0o644).unwrap();
    let t = Instant::now();
    let log = p.logs.join("vm-test.log");
    let (code, lines) = run_inside(
        &p.session,
        &[
            "labctl",
            "vm",
            "test",
            KERNEL,
            "--kernel",
            "/root/bzImage",
            "--no-bcc",
            "--accel",
            "tcg",
            "--filter",
            FILTER,
        ],
        Duration::from_secs(1800),
        &log,
    );
    let vm_secs = t.elapsed().as_secs_f64();
    let keep = |inside: &str, name: &str| {
        if let Ok(src) = p.rootfs.host_path(inside) {
            let _ = std::fs::copy(src, p.logs.join(name));
        }
    };
    keep(
        &format!("{LABCTL_HOME_INSIDE}/logs/commands.log"),
        "commands.log",
    );
    assert_eq!(
        code,
        Some(0),
        "`labctl vm test` in {suite} must pass; output:\n{}\nlog: {}",
        lines.join("\n"),
        log.display()
    );
    let runs = p
        .rootfs
        .host_path(&format!("{LABCTL_HOME_INSIDE}/runs"))
        .unwrap();
    let newest = std::fs::read_dir(&runs)
        .unwrap_or_else(|e| panic!("no runs in {}: {e}", runs.display()))
        .flatten()
        .map(|e| e.path().join("results.json"))
        .filter(|f| f.is_file())
        .max()
        .expect("a results.json from labctl vm test");
    let _ = std::fs::copy(&newest, p.logs.join("results.json"));
    let res: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&newest).unwrap()).unwrap();
    let tests = res["tests"].as_array().expect("tests in the result");
    let mut names: Vec<&str> = tests.iter().filter_map(|t| t["name"].as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["cbpf-port80", "core-hello", "hello", "kernel/btf"],
        "{res:#}"
    );
    for t in tests {
        assert_eq!(t["result"], "pass", "{suite}: {t}");
    }

    // labctl's own build: what link.json says must be what the files are, and each
    // dynamic loader's closure must be in the guest image.
    let ex_root = p
        .rootfs
        .host_path(&format!("{LABCTL_HOME_INSIDE}/examples"))
        .unwrap();
    let keys: Vec<PathBuf> = std::fs::read_dir(&ex_root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|d| d.join("link.json").is_file())
        .collect();
    assert_eq!(keys.len(), 1, "one examples build in {}", ex_root.display());
    let key = keys[0].file_name().unwrap().to_string_lossy().into_owned();
    let links: Vec<examples::LinkRecord> =
        serde_json::from_str(&std::fs::read_to_string(keys[0].join("link.json")).unwrap()).unwrap();
    keep(
        &format!("{LABCTL_HOME_INSIDE}/examples/{key}/link.json"),
        "link.json",
    );
    let images: Vec<PathBuf> = std::fs::read_dir(
        p.rootfs
            .host_path(&format!("{LABCTL_HOME_INSIDE}/guests"))
            .unwrap(),
    )
    .unwrap()
    .flatten()
    .map(|e| e.path())
    .filter(|f| f.to_string_lossy().ends_with(".cpio"))
    .collect();
    let in_image: Vec<String> = images.iter().flat_map(|i| image_names(i)).collect();
    let mut summary = Vec::new();
    for (loader, dir) in LOADERS {
        let inside = format!("{LABCTL_HOME_INSIDE}/examples/{key}/bin/{loader}");
        let linked = closure_inside(&p.session, &p.rootfs, &inside, &p.logs.join("ldd.log"));
        let rec = links
            .iter()
            .find(|l| l.dir == *dir)
            .unwrap_or_else(|| panic!("link.json has no {dir}: {links:?}"));
        match &linked {
            Linked::Static => assert_eq!(rec.link, examples::Link::Static, "{rec:?}"),
            Linked::Dynamic(interp, libs) => {
                assert_eq!(rec.link, examples::Link::Dynamic, "{rec:?}");
                assert!(
                    rec.static_failure.is_some(),
                    "a dynamic loader says why static failed: {rec:?}"
                );
                for want in std::iter::once(interp.trim_start_matches('/').to_string())
                    .chain(libs.iter().map(|l| format!("/{l}")))
                {
                    assert!(
                        in_image.iter().any(|n| n == &want || n.ends_with(&want)),
                        "{loader} needs {want}, which is not in the guest image"
                    );
                }
            }
        }
        summary.push((loader.to_string(), linked));
    }
    eprintln!(
        "examples-userlands: {suite}: labctl: {}; vm test {:.0} s; whole {:.0} s",
        describe(&summary),
        vm_secs,
        p.started.elapsed().as_secs_f64()
    );
    if let Some(why) = links.iter().find_map(|l| l.static_failure.as_deref()) {
        eprintln!("examples-userlands: {suite}: static link failed: {why}");
    }
    p.session
        .close()
        .expect("the chroot unmounts and is removed");
}

#[test]
fn trixie_builds_the_examples_and_they_pass_in_the_guest() {
    vm_test_inside("trixie");
}

#[test]
fn bookworm_builds_the_examples_and_they_pass_in_the_guest() {
    vm_test_inside("bookworm");
}

/// bullseye: labctl does not start there yet (glibc 2.31 < 2.34), so the by-hand
/// loaders run through the host's `labctl vm run` with the suite's runner and judges.
/// That carries static files only: a dynamic bullseye loader fails this test (its
/// libraries would have to come from the bullseye root filesystem).
#[test]
fn bullseye_builds_the_examples_and_they_pass_in_the_guest() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bz = lab_kernel();
    let p = prepare("bullseye", &[Group::Build, Group::Samples, Group::Examples]);
    let by_hand = build_by_hand(&p.session, &p.rootfs, &p.logs);
    eprintln!(
        "examples-userlands: bullseye: by hand: {}",
        describe(&by_hand)
    );
    let dynamic: Vec<&String> = by_hand
        .iter()
        .filter(|(_, l)| !matches!(l, Linked::Static))
        .map(|(n, _)| n)
        .collect();
    assert!(
        dynamic.is_empty(),
        "bullseye loaders {dynamic:?} are dynamic: the host's labctl cannot carry bullseye's libraries into the guest"
    );

    let version = labctl::KernelVersion::parse_plain(KERNEL).unwrap();
    let tests =
        labctl::suite::selected(&version, false, FILTER, labctl::arch::Arch::x86_64()).unwrap();
    let script = labctl::suite::guest::runner_script(&tests, &Default::default());
    let work = tempfile::tempdir().unwrap();
    let runner = work.path().join("runner.sh");
    std::fs::write(&runner, &script).unwrap();
    let mut cmd = Cmd::new(env!("CARGO_BIN_EXE_labctl"))
        .arg("--home")
        .arg(common::persistent_test_home())
        .args(["vm", "run", "--accel", "tcg", "--kernel"])
        .arg(&bz)
        .arg("--file")
        .arg(format!("{}:/root/runner.sh", runner.display()));
    for o in examples::OUTPUTS {
        let host = p.rootfs.host_path(&format!("{BYHAND_INSIDE}/{o}")).unwrap();
        cmd = cmd.arg("--file").arg(format!(
            "{}:{}/bin/{o}",
            host.display(),
            labctl::suite::guest::GUEST_DIR
        ));
    }
    let t = Instant::now();
    let out = cmd
        .args(["--", "sh /root/runner.sh"])
        .timeout(Duration::from_secs(900))
        .run(&NullSink)
        .unwrap();
    let vm_secs = t.elapsed().as_secs_f64();
    let stdout = out.stdout_str();
    let _ = std::fs::write(p.logs.join("vm-run.log"), &stdout);
    let frames = labctl::suite::parse::split_frames(&stdout);
    assert!(
        frames.done,
        "the runner did not finish (exit {:?}):\n{stdout}\n{}",
        out.code,
        out.stderr_str()
    );
    assert_eq!(tests.len(), 4, "{FILTER} selects the four example tests");
    for t in &tests {
        let r = frames
            .records
            .iter()
            .find(|r| r.name == t.id())
            .unwrap_or_else(|| panic!("{} did not run:\n{stdout}", t.id()));
        let v = labctl::suite::judge(t.as_ref(), r, &[]);
        assert_eq!(
            v.result,
            labctl::events::TestResult::Pass,
            "bullseye-built {}: {v:?}\n{}",
            t.id(),
            r.output
        );
    }
    eprintln!(
        "examples-userlands: bullseye: {} passed in the guest; vm run {:.0} s; whole {:.0} s",
        tests.len(),
        vm_secs,
        p.started.elapsed().as_secs_f64()
    );
    p.session
        .close()
        .expect("the chroot unmounts and is removed");
}
