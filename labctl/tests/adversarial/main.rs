//! The adversarial suite (issue "Trust"): hostile mirrors, crafted archives and indexes,
//! a throwaway signing key, signals. Every case asserts the exit code, the message, that
//! the home holds nothing unverified, and that nothing outside it changed. One module per
//! defect class; see docs/security.md for the threat model these cases pin down.

#[path = "../common/mod.rs"]
mod common;

mod archives;
mod cache;
mod downloads;
mod input;
mod interrupts;
mod kit;
mod signatures;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;

/// `labctl --home HOME ARGS` with no labctl variables from the environment, kernel.org
/// pointed at a port nothing listens on, and short network limits.
pub fn labctl(home: &Path, args: &[&str]) -> Command {
    let mut c = labctl_clean(home, args);
    c.env("LABCTL_READ_TIMEOUT", "2");
    c
}

pub fn run(home: &Path, args: &[&str]) -> Output {
    labctl(home, args).output().expect("run labctl")
}

/// [`run`] with the unsigned-index opt-out (`LABCTL_ALLOW_UNSIGNED`), for cases about
/// something else on loopback mirrors that publish no InRelease.
pub fn run_unsigned(home: &Path, args: &[&str]) -> Output {
    labctl(home, args)
        .env("LABCTL_ALLOW_UNSIGNED", "true")
        .output()
        .expect("run labctl")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Files under `dir` whose names say they are not verified results: `.part` files,
/// temporaries. The home must hold none of these after a refusal.
pub fn unverified_files(home: &Path) -> Vec<String> {
    files_under(home)
        .into_iter()
        .filter(|f| f.starts_with("downloads/") || f.starts_with("src/"))
        .collect()
}

/// The Debian flags for a loopback mirror.
pub fn deb_args(a: &str, s: &str, suites: &str) -> Vec<String> {
    [
        "--source",
        "debian",
        "--debian-url",
        a,
        "--debian-security-url",
        s,
        "--debian-suites",
        suites,
    ]
    .iter()
    .map(|x| x.to_string())
    .collect()
}

/// A throwaway signing key (one per test binary): its GNUPGHOME and exported keyring.
pub struct TestKey {
    pub gnupghome: PathBuf,
    pub keyring: PathBuf,
    pub fingerprint: String,
}

fn make_key(dir: &Path, name: &str) -> TestKey {
    let gh = dir.join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&gh).unwrap();
    std::fs::set_permissions(&gh, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    gpg(
        &gh,
        &[
            "--quick-gen-key",
            &format!("labctl {name} <{name}@example.invalid>"),
            "ed25519",
            "sign",
            "never",
        ],
    );
    let keyring = dir.join(format!("{name}.gpg"));
    std::fs::write(&keyring, gpg(&gh, &["--export"])).unwrap();
    let colons = text(&gpg(&gh, &["--with-colons", "--list-keys"]));
    let fingerprint = colons
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .and_then(|l| l.split(':').nth(9))
        .unwrap()
        .to_string();
    TestKey {
        gnupghome: gh,
        keyring,
        fingerprint,
    }
}

/// Two throwaway keys: the archive's (trusted, its keyring is given) and a stranger's.
pub fn keys() -> &'static (TestKey, TestKey) {
    static K: OnceLock<(TestKey, TestKey)> = OnceLock::new();
    K.get_or_init(|| {
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        (
            make_key(dir.path(), "archive"),
            make_key(dir.path(), "stranger"),
        )
    })
}

/// Clearsign `data` with `key`.
pub fn clearsign(key: &TestKey, data: &[u8]) -> Vec<u8> {
    // One at a time: the agent is stopped after each signature.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), data).unwrap();
    let out = gpg(
        &key.gnupghome,
        &["--clearsign", "--output", "-", f.path().to_str().unwrap()],
    );
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &key.gnupghome)
        .args(["--kill", "gpg-agent"])
        .status();
    out
}

/// Publish a signed `InRelease` for `suite` on a [`debian_mirror`] server: it names the
/// suite and lists the served Sources.xz's sha256 and size (or `sources_sha` instead).
pub fn publish_inrelease(
    server: &TestServer,
    suite: &str,
    key: &TestKey,
    valid_until: Option<&str>,
    sources_sha: Option<&str>,
) -> Vec<u8> {
    let base = if deb_is_security(suite) {
        "/debian-security"
    } else {
        "/debian"
    };
    let sources = server
        .body(&format!("{base}/dists/{suite}/main/source/Sources.xz"))
        .expect("the suite's Sources.xz is served");
    let mut rel = format!(
        "Origin: Debian\nLabel: Debian\nSuite: {suite}\nCodename: {suite}\nDate: Fri, 30 Oct 2026 08:08:01 UTC\n"
    );
    if let Some(v) = valid_until {
        rel.push_str(&format!("Valid-Until: {v}\n"));
    }
    rel.push_str(&format!(
        "SHA256:\n {} {} main/source/Sources\n {} {} main/source/Sources.xz\n",
        "ab".repeat(32),
        sources.len() * 9,
        sources_sha
            .map(|s| s.to_string())
            .unwrap_or_else(|| sha256_hex(&sources)),
        sources.len()
    ));
    let signed = clearsign(key, rel.as_bytes());
    server.add(&format!("{base}/dists/{suite}/InRelease"), signed.clone());
    signed
}
