//! `kernel push` / `kernel pull` / `vm test --from` against a real OCI registry: Debian's
//! `docker-registry` binary, run directly on 127.0.0.1 with a temporary filesystem store
//! (`labctl doctor --tests --install` installs it). The 5.10.46 lab build of the
//! persistent test home is pushed; an EMPTY home whose PATH holds only QEMU and busybox
//! pulls it and passes the whole suite (hello-bcc skipped on request: it needs the host
//! userland through vng); tampered blobs and manifests are refused with nothing kept.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use labctl::events::NullSink;
use labctl::process::Cmd;

/// A `docker-registry serve` on a free loopback port, killed on drop.
struct Registry {
    child: Child,
    addr: String,
    storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let prog = labctl::process::which("docker-registry").expect(
            "docker-registry is missing: `labctl doctor --tests --install` installs it (Debian: docker-registry)",
        );
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                storage.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(prog)
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let r = Registry {
            child,
            addr,
            storage,
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&r.addr).is_err() {
            assert!(
                Instant::now() < until,
                "docker-registry did not listen on {}",
                r.addr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }

    /// The file holding blob `digest` in the registry's filesystem store.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn labctl(home: &Path, args: &[&str]) -> Cmd {
    Cmd::new(env!("CARGO_BIN_EXE_labctl"))
        .arg("--home")
        .arg(home)
        .args(args)
        .timeout(Duration::from_secs(3600))
}

/// The 5.10.46 lab build in the persistent test home (built when missing, else a no-op).
fn ensure_build() -> PathBuf {
    let home = common::persistent_test_home();
    let out = labctl(&home, &["kernel", "build", "5.10.46"])
        .run(&NullSink)
        .unwrap();
    assert!(
        out.success(),
        "kernel build 5.10.46 failed:\n{}",
        out.stderr_str()
    );
    home
}

fn push(home: &Path, reference: &str) -> serde_json::Value {
    let out = labctl(home, &["--json", "kernel", "push", "5.10.46", reference])
        .run(&NullSink)
        .unwrap();
    assert!(out.success(), "push failed:\n{}", out.stderr_str());
    serde_json::from_str(&out.stdout_str()).unwrap()
}

/// A PATH folder with only what a pull and `vm test` use: no make, gcc, cc, clang,
/// pahole or pkg-config.
fn pull_only_path(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for p in ["qemu-system-x86_64", "busybox"] {
        let real = labctl::process::which(p).unwrap_or_else(|| panic!("{p} is missing"));
        std::os::unix::fs::symlink(real, bin.join(p)).unwrap();
    }
    bin
}

/// Every path under `dir` (recursively), relative.
fn everything(dir: &Path) -> Vec<String> {
    common::files_under(dir)
}

#[test]
fn a_pushed_lab_kernel_passes_the_suite_from_an_empty_home_without_a_compiler() {
    let test_home = ensure_build();
    let reg = Registry::start();
    let reference = format!("{}/lab/kernels:5.10.46", reg.addr);
    let t = Instant::now();
    let pushed = push(&test_home, &reference);
    let push_s = t.elapsed().as_secs_f64();
    let digest = pushed["digest"].as_str().unwrap().to_string();
    let total = pushed["total_bytes"].as_u64().unwrap();
    let names: Vec<&str> = pushed["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    for must in [
        "kernel", "modules", "headers", "samples", "examples", "records",
    ] {
        assert!(names.contains(&must), "{must} not in {names:?}");
    }
    assert!(pushed["examples_missing"].is_null(), "{pushed:#}");

    // A second push uploads nothing new.
    let again = push(&test_home, &format!("{}/lab/kernels:again", reg.addr));
    assert_eq!(again["digest"], pushed["digest"]);
    assert_eq!(again["uploaded_bytes"], 0, "{again:#}");

    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path().join("home");
    let path = pull_only_path(scratch.path());
    for tool in ["make", "gcc", "cc", "clang", "pahole", "pkg-config", "ld"] {
        assert!(!path.join(tool).exists());
    }
    let t = Instant::now();
    let out = labctl(
        &home,
        &[
            "--json", "vm", "test", "--from", &reference, "--no-bcc", "--skip", "bpftrace",
            "--accel", "tcg",
        ],
    )
    .env("PATH", &path)
    .env_remove("LABCTL_REGISTRY")
    .run(&NullSink)
    .unwrap();
    let from_empty_s = t.elapsed().as_secs_f64();
    let j: serde_json::Value =
        serde_json::from_str(&out.stdout_str()).unwrap_or(serde_json::Value::Null);
    assert_eq!(
        out.code,
        Some(0),
        "suite did not pass:\n{j:#}\n{}",
        out.stderr_str()
    );
    let tests = j["tests"].as_array().unwrap();
    assert!(tests.len() >= 14, "{j:#}");
    for t in tests {
        // hello-bcc and bpftrace need the host's userland (BCC, bpftrace, virtme-ng),
        // which a pull-only host need not have: skipped on request.
        let expect = if t["name"] == "hello-bcc" || t["name"] == "bpftrace" {
            "skip"
        } else {
            "pass"
        };
        assert_eq!(t["result"], expect, "{t}");
    }
    let samples = tests
        .iter()
        .filter(|t| t["name"].as_str().unwrap().starts_with("samples/"))
        .count();
    assert!(samples >= 6, "{samples} samples ran");

    // No compiler ran: every child labctl started is in the command log.
    let log = std::fs::read_to_string(home.join("logs/commands.log")).unwrap_or_default();
    for tool in ["make", "gcc", "cc", "clang", "pahole", "pkg-config"] {
        assert!(
            !log.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(tool)),
            "{tool} ran in the pull-only home:\n{log}"
        );
    }
    // It landed like a local build, saying where it came from.
    let builds: Vec<_> = std::fs::read_dir(home.join("builds"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert_eq!(builds[0], pushed["key"].as_str().unwrap());
    let bj: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.join("builds").join(&builds[0]).join("build.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(bj["origin"]["digest"], digest.as_str());
    assert_eq!(bj["origin"]["reference"], reference.as_str());
    assert_eq!(bj["result"], "success");
    // And `vm test 5.10.46` (no --from) now finds it as a local build.
    let out = labctl(&home, &["kernel", "list"]).run(&NullSink).unwrap();
    assert!(
        out.stdout_str().contains(&builds[0]),
        "{}",
        out.stdout_str()
    );
    // Pulling again downloads nothing.
    let out = labctl(&home, &["--json", "kernel", "pull", &reference])
        .env("PATH", &path)
        .run(&NullSink)
        .unwrap();
    assert!(out.success(), "{}", out.stderr_str());
    let p: serde_json::Value = serde_json::from_str(&out.stdout_str()).unwrap();
    assert_eq!(p["reused"], true);
    eprintln!(
        "oci_real: pushed {} MiB in {push_s:.0}s; empty home to suite results in {from_empty_s:.0}s ({} min)",
        total >> 20,
        from_empty_s / 60.0
    );
}

/// Pull `reference` into a fresh home: the exit code, stderr and what the home holds
/// under builds/ afterwards (temporary folders included).
fn pull_fresh(reference: &str) -> (Option<i32>, String, Vec<String>) {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("home");
    let out = labctl(&home, &["kernel", "pull", reference])
        .run(&NullSink)
        .unwrap();
    let builds = home.join("builds");
    let left = if builds.exists() {
        everything(&builds)
    } else {
        vec![]
    };
    // A refused pull leaves nothing anywhere in the home but locks and logs.
    for f in everything(&home).into_iter().filter(|_| !out.success()) {
        assert!(
            f.starts_with("locks/") || f.starts_with("logs/"),
            "{f} was left in the home after a refused pull"
        );
    }
    (out.code, out.stderr_str(), left)
}

#[test]
fn tampered_blobs_and_manifests_are_refused_and_nothing_is_kept() {
    let test_home = ensure_build();
    let reg = Registry::start();
    let reference = format!("{}/lab/tamper:5.10.46", reg.addr);
    let pushed = push(&test_home, &reference);
    let digest = pushed["digest"].as_str().unwrap().to_string();
    let layer = |name: &str| {
        pushed["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // One byte of the samples layer changed in the registry's store.
    let blob = reg.blob_file(&layer("samples"));
    let original = std::fs::read(&blob).unwrap();
    let mut bad = original.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(&blob, &bad).unwrap();
    let (code, err, left) = pull_fresh(&reference);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("does not match its digest"), "{err}");
    assert!(err.contains(&layer("samples")), "{err}");
    assert!(left.is_empty(), "left behind: {left:?}");

    // Truncated: a size mismatch.
    std::fs::write(&blob, &original[..original.len() - 100]).unwrap();
    let (code, err, left) = pull_fresh(&reference);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bytes, the manifest says"), "{err}");
    assert!(left.is_empty(), "left behind: {left:?}");
    std::fs::write(&blob, &original).unwrap();

    // The manifest itself changed in the store: by tag and by digest.
    let mfile = reg.blob_file(&digest);
    let morig = std::fs::read(&mfile).unwrap();
    let text = String::from_utf8(morig.clone()).unwrap();
    let forged = text.replacen("\"kernel\"", "\"kernel\" ", 1);
    assert_ne!(forged, text);
    std::fs::write(&mfile, forged.as_bytes()).unwrap();
    for r in [
        reference.clone(),
        format!("{}/lab/tamper@{digest}", reg.addr),
    ] {
        let (code, err, left) = pull_fresh(&r);
        assert_eq!(code, Some(2), "{r}: {err}");
        assert!(err.contains("does not match its digest"), "{r}: {err}");
        assert!(left.is_empty(), "left behind: {left:?}");
    }
    std::fs::write(&mfile, &morig).unwrap();

    // Restored: the same reference pulls.
    let (code, err, left) = pull_fresh(&reference);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        left.iter().any(|f| f.ends_with("artifacts/bzImage")),
        "{left:?}"
    );

    // A tag the registry does not have is a clear miss.
    let (code, err, _) = pull_fresh(&format!("{}/lab/tamper:9.9.9", reg.addr));
    assert_eq!(code, Some(2));
    assert!(err.contains("does not exist in the registry"), "{err}");
}
