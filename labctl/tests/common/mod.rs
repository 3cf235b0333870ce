//! Shared test helpers: a loopback HTTP/1.1 server that serves in-memory files and can
//! misbehave on purpose (cut a transfer midway, stall, trickle, ignore Range, restart
//! from byte 0 under a 206, answer 404 or any status), synthetic kernel tarballs (good and malicious), kernel.org- and
//! Debian-layout mirrors, and the persistent test home for real-network tests.
//!
//! Each integration test file includes this with `mod common;`; not every file uses
//! every helper.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How a route answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// 200 (or 206 for a Range request).
    Normal,
    /// The first full (non-Range) request announces the whole length but the connection
    /// is closed after this many body bytes; later requests behave normally.
    CutOnce(usize),
    /// Send this many body bytes, then go silent (holding the connection open).
    Stall(usize),
    /// Always send the whole body with 200, ignoring Range.
    IgnoreRange,
    /// Answer with this status and an empty body.
    Status(u16),
    /// Send the body `chunk` bytes at a time with `delay_ms` between pieces: a slow but
    /// steady link.
    Trickle { chunk: usize, delay_ms: u64 },
    /// Like `CutOnce`, then answer every Range request with `206` but the whole body from
    /// byte 0 (`Content-Range: bytes 0-…`): a server that restarts under a 206.
    CutThenRangeFromZero(usize),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub range: Option<String>,
}

struct Route {
    body: Arc<Vec<u8>>,
    behavior: Behavior,
    cut_done: bool,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    log: Vec<Request>,
}

/// A loopback HTTP server living as long as the value.
pub struct TestServer {
    pub base: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl TestServer {
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let state: Arc<Mutex<State>> = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, sp) = (st.clone(), sp.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, &st, &sp);
                });
            }
        });
        TestServer {
            base: format!("http://{addr}"),
            state,
            stop,
            addr,
        }
    }

    /// Serve `body` at `path` (starting with `/`).
    pub fn add(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.add_with(path, body, Behavior::Normal);
    }
    pub fn add_with(&self, path: &str, body: impl Into<Vec<u8>>, behavior: Behavior) {
        self.state.lock().unwrap().routes.insert(
            path.to_string(),
            Route {
                body: Arc::new(body.into()),
                behavior,
                cut_done: false,
            },
        );
    }
    pub fn set_behavior(&self, path: &str, behavior: Behavior) {
        if let Some(r) = self.state.lock().unwrap().routes.get_mut(path) {
            r.behavior = behavior;
            r.cut_done = false;
        }
    }
    pub fn remove(&self, path: &str) {
        self.state.lock().unwrap().routes.remove(path);
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
    /// The body served at `path`.
    pub fn body(&self, path: &str) -> Option<Vec<u8>> {
        self.state
            .lock()
            .unwrap()
            .routes
            .get(path)
            .map(|r| r.body.to_vec())
    }
    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }
    /// Requests for one path.
    pub fn hits(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

fn handle(mut conn: TcpStream, state: &Mutex<State>, stop: &AtomicBool) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("/").to_string(),
    );
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let (body, behavior) = {
        let mut st = state.lock().unwrap();
        st.log.push(Request {
            path: path.clone(),
            range: range.clone(),
        });
        match st.routes.get_mut(&path) {
            None => (None, Behavior::Status(404)),
            Some(r) => {
                let mut b = r.behavior.clone();
                if let Behavior::CutOnce(_) = b {
                    if r.cut_done || range.is_some() {
                        b = Behavior::Normal;
                    } else {
                        r.cut_done = true;
                    }
                }
                if let Behavior::CutThenRangeFromZero(n) = b {
                    b = if range.is_some() {
                        Behavior::CutThenRangeFromZero(0)
                    } else if r.cut_done {
                        Behavior::Normal
                    } else {
                        r.cut_done = true;
                        Behavior::CutOnce(n)
                    };
                }
                (Some(r.body.clone()), b)
            }
        }
    };
    let head_only = method == "HEAD";
    let write_head = |conn: &mut TcpStream,
                      status: &str,
                      len: usize,
                      extra: &str|
     -> std::io::Result<()> {
        write!(conn, "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\nAccept-Ranges: bytes\r\n{extra}\r\n")
    };
    let body = match (body, &behavior) {
        (_, Behavior::Status(s)) => {
            write_head(&mut conn, &format!("{s} Status"), 0, "")?;
            return Ok(());
        }
        (Some(b), _) => b,
        (None, _) => unreachable!(),
    };
    // Range: only the `bytes=N-` form labctl sends.
    let start = match (&behavior, &range) {
        (Behavior::IgnoreRange, _) | (_, None) => None,
        (Behavior::CutThenRangeFromZero(_), Some(_)) => Some(0),
        (_, Some(r)) => r
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok()),
    };
    let (status, from, extra) = match start {
        Some(s) if s >= body.len() => {
            write_head(
                &mut conn,
                "416 Range Not Satisfiable",
                0,
                &format!("Content-Range: bytes */{}\r\n", body.len()),
            )?;
            return Ok(());
        }
        Some(s) => (
            "206 Partial Content",
            s,
            format!(
                "Content-Range: bytes {}-{}/{}\r\n",
                s,
                body.len() - 1,
                body.len()
            ),
        ),
        None => ("200 OK", 0, String::new()),
    };
    let part = &body[from..];
    write_head(&mut conn, status, part.len(), &extra)?;
    if head_only {
        return Ok(());
    }
    match behavior {
        Behavior::CutOnce(n) if start.is_none() => {
            conn.write_all(&part[..n.min(part.len())])?;
            conn.flush()?;
            let _ = conn.shutdown(Shutdown::Both);
        }
        Behavior::Stall(n) => {
            conn.write_all(&part[..n.min(part.len())])?;
            conn.flush()?;
            let until = Instant::now() + Duration::from_secs(60);
            conn.set_nonblocking(true)?;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                // Stop holding the socket once the client gave up.
                let mut probe = [0u8; 1];
                if let Ok(0) = conn.peek(&mut probe) {
                    break;
                }
            }
        }
        Behavior::Trickle { chunk, delay_ms } => {
            for piece in part.chunks(chunk.max(1)) {
                conn.write_all(piece)?;
                conn.flush()?;
                std::thread::sleep(Duration::from_millis(delay_ms));
            }
        }
        _ => conn.write_all(part)?,
    }
    let _ = reader.read(&mut [0u8; 0]);
    Ok(())
}

// ---- tarballs -------------------------------------------------------------------------

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut enc = xz2::write::XzEncoder::new(Vec::new(), 1);
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn header(path: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    // Write the raw name so hostile paths (`..`, absolute) survive: set_path refuses them.
    {
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
    }
    if let Some(l) = link {
        let ln = &mut h.as_old_mut().linkname;
        ln.fill(0);
        ln[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    h
}

/// An entry for [`tarball`].
pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str),
    Block(&'a str),
    Fifo(&'a str),
}

/// A `.tar.xz` with exactly these entries (paths written verbatim).
pub fn tarball(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (h, data): (tar::Header, &[u8]) = match e {
            Entry::File(p, d) => (header(p, tar::EntryType::Regular, d.len() as u64, None), d),
            Entry::Dir(p) => (header(p, tar::EntryType::Directory, 0, None), &[]),
            Entry::Symlink(p, t) => (header(p, tar::EntryType::Symlink, 0, Some(t)), &[]),
            Entry::Hardlink(p, t) => (header(p, tar::EntryType::Link, 0, Some(t)), &[]),
            Entry::Char(p) => (header(p, tar::EntryType::Char, 0, None), &[]),
            Entry::Block(p) => (header(p, tar::EntryType::Block, 0, None), &[]),
            Entry::Fifo(p) => (header(p, tar::EntryType::Fifo, 0, None), &[]),
        };
        b.append(&h, data).unwrap();
    }
    xz(&b.into_inner().unwrap())
}

pub fn makefile(v: &str) -> String {
    let p: Vec<&str> = v.split('.').collect();
    format!(
        "# SPDX-License-Identifier: GPL-2.0\nVERSION = {}\nPATCHLEVEL = {}\nSUBLEVEL = {}\nEXTRAVERSION =\nNAME = Test\n",
        p[0],
        p[1],
        p.get(2).unwrap_or(&"0")
    )
}

/// A small but kernel-shaped tarball: `linux-<v>/Makefile` etc. `pad` bytes of
/// incompressible-ish filler make transfers long enough to cut midway.
pub fn kernel_tarball(v: &str, pad: usize) -> Vec<u8> {
    let top = format!("linux-{v}");
    let mk = makefile(v);
    let mut filler = Vec::with_capacity(pad);
    let mut x: u64 = 0x9e3779b97f4a7c15 ^ v.len() as u64;
    for _ in 0..pad {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        filler.push(x as u8);
    }
    let paths = [
        format!("{top}/"),
        format!("{top}/Makefile"),
        format!("{top}/kernel/"),
        format!("{top}/kernel/bpf.c"),
        format!("{top}/README"),
        format!("{top}/kernel/filler.bin"),
        format!("{top}/scripts/"),
    ];
    tarball(&[
        Entry::Dir(&paths[0]),
        Entry::File(&paths[1], mk.as_bytes()),
        Entry::Dir(&paths[2]),
        Entry::File(&paths[3], b"// bpf\n"),
        Entry::File(&paths[4], b"Linux kernel\n"),
        Entry::File(&paths[5], &filler),
        Entry::Dir(&paths[6]),
        Entry::Symlink(&format!("{top}/scripts/readme-link"), "../README"),
    ])
}

// ---- mirrors ----------------------------------------------------------------------------

/// Publish a kernel.org-layout directory under `/kernel/v{M}.x/` for these versions
/// (all of one major): tarballs, a directory index page and a clearsigned-looking
/// sha256sums.asc. Returns the base URL (`…/kernel`) and the tarballs by version.
pub fn kernel_org_mirror(
    server: &TestServer,
    versions: &[&str],
    pad: usize,
) -> (String, HashMap<String, Vec<u8>>) {
    let mut sums = String::from("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n");
    let mut index = String::from("<html><body><pre><a href=\"../\">../</a>\n");
    let mut out = HashMap::new();
    let major = versions[0].split('.').next().unwrap();
    for v in versions {
        let t = kernel_tarball(v, pad);
        sums.push_str(&format!("{}  linux-{v}.tar.xz\n", sha256_hex(&t)));
        index.push_str(&format!(
            "<a href=\"linux-{v}.tar.xz\">linux-{v}.tar.xz</a> 01-Jan-2021 00:00 {}\n",
            t.len()
        ));
        index.push_str(&format!(
            "<a href=\"linux-{v}.tar.sign\">linux-{v}.tar.sign</a>\n"
        ));
        server.add(&format!("/kernel/v{major}.x/linux-{v}.tar.xz"), t.clone());
        out.insert(v.to_string(), t);
    }
    sums.push_str(
        "-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEEtest\n-----END PGP SIGNATURE-----\n",
    );
    index.push_str("</pre></body></html>\n");
    server.add(&format!("/kernel/v{major}.x/"), index);
    server.add(&format!("/kernel/v{major}.x/sha256sums.asc"), sums);
    (server.url("/kernel"), out)
}

/// One orig tarball listed in a Debian index.
pub struct DebEntry {
    pub suite: &'static str,
    pub version: &'static str,
    /// Serve the file (false: listed but 404).
    pub served: bool,
    /// Override what the index claims (for mismatch / truncation tests).
    pub listed_sha: Option<String>,
    pub listed_size: Option<u64>,
    pub behavior: Behavior,
}

impl DebEntry {
    pub fn new(suite: &'static str, version: &'static str) -> Self {
        DebEntry {
            suite,
            version,
            served: true,
            listed_sha: None,
            listed_size: None,
            behavior: Behavior::Normal,
        }
    }
}

pub fn deb_is_security(suite: &str) -> bool {
    suite.ends_with("-security")
}

/// Path of an orig tarball on the Debian test mirror.
pub fn deb_path(suite: &str, version: &str) -> String {
    if deb_is_security(suite) {
        format!("/debian-security/pool/updates/main/l/linux/linux_{version}.orig.tar.xz")
    } else {
        format!("/debian/pool/main/l/linux/linux_{version}.orig.tar.xz")
    }
}

/// Publish a Debian-layout archive (`/debian`) and security archive (`/debian-security`)
/// with generated xz-compressed Sources indexes for `suites`. Returns (archive base,
/// security base, tarballs by version).
pub fn debian_mirror(
    server: &TestServer,
    suites: &[&str],
    entries: &[DebEntry],
    pad: usize,
) -> (String, String, HashMap<String, Vec<u8>>) {
    let mut tarballs = HashMap::new();
    let mut per_suite: HashMap<&str, String> = HashMap::new();
    // A decoy paragraph from another package in every index.
    for s in suites {
        per_suite.insert(
            s,
            "Package: linux-signed-amd64\nVersion: 9.9.9+1\nDirectory: pool/main/l/linux-signed-amd64\nChecksums-Sha256:\n \
             0000000000000000000000000000000000000000000000000000000000000000 10 linux_5.10.999.orig.tar.xz\n\n"
                .to_string(),
        );
    }
    for e in entries {
        let t = tarballs
            .entry(e.version.to_string())
            .or_insert_with(|| kernel_tarball(e.version, pad))
            .clone();
        let sha = e.listed_sha.clone().unwrap_or_else(|| sha256_hex(&t));
        let size = e.listed_size.unwrap_or(t.len() as u64);
        let dir = if deb_is_security(e.suite) {
            "pool/updates/main/l/linux"
        } else {
            "pool/main/l/linux"
        };
        let para = format!(
            "Package: linux\nBinary: linux-doc,\n linux-headers-amd64\nVersion: {v}-1\nDirectory: {dir}\nChecksums-Sha256:\n \
             {fake} 2000 linux_{v}-1.dsc\n {sha} {size} linux_{v}.orig.tar.xz\n {fake} 1000 linux_{v}-1.debian.tar.xz\n\n",
            v = e.version,
            fake = "ab".repeat(32)
        );
        per_suite
            .get_mut(e.suite)
            .expect("suite listed")
            .push_str(&para);
        if e.served {
            server.add_with(&deb_path(e.suite, e.version), t, e.behavior.clone());
        }
    }
    for (s, text) in per_suite {
        let base = if deb_is_security(s) {
            "/debian-security"
        } else {
            "/debian"
        };
        server.add(
            &format!("{base}/dists/{s}/main/source/Sources.xz"),
            xz(text.as_bytes()),
        );
    }
    (
        server.url("/debian"),
        server.url("/debian-security"),
        tarballs,
    )
}

// ---- homes ---------------------------------------------------------------------------------

/// The persistent home real-network/real-kernel tests share (never deleted by tests):
/// `$LABCTL_TEST_HOME`, default `$HOME/.cache/labctl-test`.
pub fn persistent_test_home() -> PathBuf {
    let p = std::env::var_os("LABCTL_TEST_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache")
                .join("labctl-test")
        });
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The root filesystem cache of the persistent test home (`<test home>/rootfs/`):
/// mmdebstrap tarballs for the fresh-machine test, and its logs in `logs/`.
pub fn persistent_rootfs_dir() -> PathBuf {
    let p = persistent_test_home().join("rootfs");
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Files (recursively) under a folder, as paths relative to it.
pub fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &std::path::Path, d: &std::path::Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() && !p.is_symlink() {
                    walk(root, &p, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// ---- gpg -----------------------------------------------------------------------------------

/// `gpg ARGS` in `gnupghome`, non-interactive with an empty passphrase; panics with gpg's
/// stderr when it fails. Returns stdout.
pub fn gpg(gnupghome: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("gpg")
        .env("GNUPGHOME", gnupghome)
        .args([
            "--batch",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ])
        .args(args)
        .output()
        .expect("gpg must be installed for this test (Debian: gnupg)");
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

// ---- the binary ----------------------------------------------------------------------------

/// `labctl --home <home> <args>` with none of the caller's `LABCTL_*` settings, one try
/// per request, and kernel.org unreachable at once (nothing listens on port 1), as it is
/// on this project's machines. Callers add their own timeouts and mirrors.
pub fn labctl_clean(home: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_labctl"));
    c.arg("--home").arg(home).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("LABCTL_") {
            c.env_remove(k);
        }
    }
    c.env("LABCTL_KERNEL_ORG_URL", "http://127.0.0.1:1/kernel");
    c.env("LABCTL_RETRIES", "1");
    c
}
