//! HTTP downloads: a blocking reqwest (rustls) client, small capped GETs for indexes and
//! signed files, and the resumable, verifying tarball download: bytes go to
//! `<name>.part` (hashed as they arrive), an interrupted transfer resumes with
//! `Range: bytes=N-` (a `206` must answer with a `Content-Range` starting exactly there,
//! for the size the index gives; anything else starts over), failures are retried a
//! bounded number of times with backoff, and the file is fsynced and renamed into place
//! only after its size and sha256 match. A mismatch deletes the part file and names both
//! hashes; a failed transfer that wrote nothing leaves no part file.
//!
//! Every request runs on a worker thread; the caller waits for each piece in 100 ms
//! slices, so `--read-timeout` is an idle timeout (a slow but steady link is never cut)
//! and Ctrl-C ([`crate::process::interrupted`]) ends any wait within a fraction of a
//! second with [`SourceError::Interrupted`].

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::SourceError;
use crate::events::{EventSink, SinkExt, Stage, Unit};

/// Network limits (all configurable so tests can use short ones).
#[derive(Debug, Clone)]
pub struct NetOptions {
    pub connect_timeout: Duration,
    /// No byte for this long on an open transfer counts as a stall.
    pub read_timeout: Duration,
    /// Attempts after the first one, for transient failures (cut connection, stall, 5xx).
    pub retries: u32,
    /// First backoff delay; doubles each retry.
    pub backoff: Duration,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retries: 4,
            backoff: Duration::from_millis(500),
        }
    }
}

pub struct Http {
    client: reqwest::blocking::Client,
    pub net: NetOptions,
}

/// An error and its causes on one line, without repeats.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        src = s.source();
    }
    msg
}

/// A GET that did not produce a body.
fn net_error(url: &str, e: &reqwest::Error) -> SourceError {
    let msg = error_chain(e);
    if e.is_timeout() {
        SourceError::Timeout {
            url: url.to_string(),
            message: msg,
        }
    } else {
        SourceError::Network {
            url: url.to_string(),
            message: msg,
        }
    }
}

impl Http {
    pub fn new(net: NetOptions) -> Result<Self, SourceError> {
        // reqwest's blocking `timeout` bounds the wait for headers and each body read;
        // it is only a backstop here (a worker thread whose reader gave up dies by it):
        // the idle timeout and Ctrl-C are watched by `Body::next`, in short slices.
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(net.connect_timeout)
            .timeout(net.read_timeout + Duration::from_secs(5))
            .user_agent(concat!("labctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Network {
                url: String::new(),
                message: format!("cannot build HTTP client: {e}"),
            })?;
        Ok(Http { client, net })
    }

    /// Start a GET (from byte `from` with `Range: bytes=N-` when `from > 0`) on a worker
    /// thread and wait for the response head, watching the idle timeout and Ctrl-C.
    fn open(&self, url: &str, from: u64) -> Result<Body, Opened> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(8);
        let mut req = self.client.get(url);
        if from > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        std::thread::spawn(move || {
            let mut resp = match req.send() {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Msg::SendFailed(e));
                    return;
                }
            };
            let header = |n: reqwest::header::HeaderName| {
                resp.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(|s| s.to_string())
            };
            let head = Head {
                status: resp.status().as_u16(),
                content_length: resp.content_length(),
                content_range: header(reqwest::header::CONTENT_RANGE),
            };
            if tx.send(Msg::Head(head)).is_err() {
                return;
            }
            let mut buf = vec![0u8; 256 << 10];
            loop {
                match resp.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.send(Msg::End);
                        return;
                    }
                    Ok(n) => {
                        if tx.send(Msg::Chunk(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Msg::ReadFailed(e));
                        return;
                    }
                }
            }
        });
        let mut body = Body {
            rx,
            url: url.to_string(),
            idle: self.net.read_timeout,
            head: Head::default(),
        };
        match body.next() {
            Ok(Msg::Head(h)) => {
                body.head = h;
                Ok(body)
            }
            Ok(Msg::SendFailed(e)) => Err(Opened::Failed(e)),
            Ok(_) => Err(Opened::Other(SourceError::Network {
                url: url.to_string(),
                message: "no response".into(),
            })),
            Err(e) => Err(Opened::Other(e)),
        }
    }

    /// GET a small document fully into memory (indexes, checksum files, signed
    /// Release files), at most [`MAX_DOCUMENT`] bytes. 404 and other non-success
    /// statuses are [`SourceError::Http`], not retried; a cut or stalled transfer is
    /// resumed with `Range` (the `Content-Range` answer is checked) up to `retries`
    /// times. The read timeout is an idle timeout: a slow but steady link gets the
    /// whole document.
    pub fn get_bytes(&self, url: &str) -> Result<Vec<u8>, SourceError> {
        self.get_limited(url, MAX_DOCUMENT)
    }

    /// [`Http::get_bytes`] with a size cap (a body larger than `cap` is an error).
    pub fn get_limited(&self, url: &str, cap: u64) -> Result<Vec<u8>, SourceError> {
        let mut data: Vec<u8> = Vec::new();
        let mut attempt = 0;
        loop {
            if crate::process::interrupted() {
                return Err(SourceError::Interrupted);
            }
            match self.get_into(url, &mut data, cap) {
                Ok(()) => return Ok(data),
                Err(Step::Fatal(e)) => return Err(e),
                Err(Step::Retry(e)) => {
                    if attempt >= self.net.retries {
                        return Err(e);
                    }
                    nap(self.net.backoff * 2u32.pow(attempt.min(6)))?;
                    attempt += 1;
                }
            }
        }
    }

    fn get_into(&self, url: &str, data: &mut Vec<u8>, cap: u64) -> Result<(), Step> {
        let have = data.len() as u64;
        let mut body = match self.open(url, have) {
            Ok(b) => b,
            Err(Opened::Failed(e)) if e.is_connect() && have == 0 => {
                return Err(Step::Fatal(net_error(url, &e)))
            }
            Err(Opened::Failed(e)) => return Err(Step::Retry(net_error(url, &e))),
            Err(Opened::Other(e)) => return Err(step(e)),
        };
        let status = body.head.status;
        match status {
            200 => data.clear(),
            206 => match parse_content_range(body.head.content_range.as_deref()) {
                Some((start, _, _)) if start == have => {}
                Some((0, _, _)) => data.clear(),
                other => {
                    data.clear();
                    return Err(Step::Retry(SourceError::Network {
                        url: url.to_string(),
                        message: format!(
                            "asked for bytes {have}-, the server answered {}; starting over",
                            content_range_text(other)
                        ),
                    }));
                }
            },
            416 if have > 0 => return Ok(()),
            s if s >= 500 => {
                return Err(Step::Retry(SourceError::Http {
                    url: url.to_string(),
                    status: s,
                }))
            }
            s => {
                return Err(Step::Fatal(SourceError::Http {
                    url: url.to_string(),
                    status: s,
                }))
            }
        }
        let total = body.head.content_length.map(|l| l + data.len() as u64);
        if total.is_some_and(|t| t > cap) {
            return Err(Step::Fatal(too_big(url, cap)));
        }
        loop {
            match body.next_chunk(data.len() as u64) {
                Ok(Some(c)) => {
                    data.extend_from_slice(&c);
                    if data.len() as u64 > cap {
                        return Err(Step::Fatal(too_big(url, cap)));
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(step(e)),
            }
        }
        if total.is_some_and(|t| (data.len() as u64) < t) {
            return Err(Step::Retry(SourceError::Network {
                url: url.to_string(),
                message: format!(
                    "transfer ended early at {} of {}",
                    data.len(),
                    total.unwrap()
                ),
            }));
        }
        Ok(())
    }
}

/// The most a tarball whose size no index gives (`--source URL`) may be; kernel
/// tarballs are ~150 MiB.
pub const MAX_TARBALL: u64 = 4 << 30;

/// The most an in-memory document (index, checksum file, Release) may be: Debian's
/// biggest `Sources.xz` is tens of MB.
pub const MAX_DOCUMENT: u64 = 256 << 20;

fn too_big(url: &str, cap: u64) -> SourceError {
    SourceError::Index {
        url: url.to_string(),
        message: format!(
            "larger than {}, refused (not an index)",
            crate::home::human_bytes(cap)
        ),
    }
}

/// Sleep, waking early (with [`SourceError::Interrupted`]) on Ctrl-C.
pub fn nap(d: Duration) -> Result<(), SourceError> {
    let until = Instant::now() + d;
    loop {
        if crate::process::interrupted() {
            return Err(SourceError::Interrupted);
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

/// What one attempt of a document GET concluded.
enum Step {
    Retry(SourceError),
    Fatal(SourceError),
}

/// Stalls and cuts are retried; Ctrl-C and everything else are not.
fn step(e: SourceError) -> Step {
    match e {
        SourceError::Timeout { .. } | SourceError::Network { .. } => Step::Retry(e),
        e => Step::Fatal(e),
    }
}

enum Opened {
    /// The request did not produce a response (connect error, reset, header timeout).
    Failed(reqwest::Error),
    Other(SourceError),
}

#[derive(Debug, Default)]
struct Head {
    status: u16,
    content_length: Option<u64>,
    content_range: Option<String>,
}

enum Msg {
    SendFailed(reqwest::Error),
    Head(Head),
    Chunk(Vec<u8>),
    End,
    ReadFailed(std::io::Error),
}

/// A response being read by a worker thread. [`Body::next`] waits in 100 ms slices so
/// Ctrl-C is seen at once, and counts the idle time itself (the read timeout).
struct Body {
    rx: std::sync::mpsc::Receiver<Msg>,
    url: String,
    idle: Duration,
    head: Head,
}

impl Body {
    fn next(&mut self) -> Result<Msg, SourceError> {
        use std::sync::mpsc::RecvTimeoutError;
        let since = Instant::now();
        loop {
            if crate::process::interrupted() {
                return Err(SourceError::Interrupted);
            }
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => return Ok(m),
                Err(RecvTimeoutError::Timeout) if since.elapsed() >= self.idle => {
                    return Err(SourceError::Timeout {
                        url: self.url.clone(),
                        message: format!("no data for {}s (stalled)", self.idle.as_secs_f64()),
                    })
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(SourceError::Network {
                        url: self.url.clone(),
                        message: "the transfer ended without a result".into(),
                    })
                }
            }
        }
    }

    /// The next piece of the body; `None` at its end. `have` is only for messages.
    fn next_chunk(&mut self, have: u64) -> Result<Option<Vec<u8>>, SourceError> {
        match self.next() {
            Ok(Msg::Chunk(c)) => Ok(Some(c)),
            Ok(Msg::End) => Ok(None),
            Ok(Msg::ReadFailed(e)) => {
                let timed_out = e.kind() == std::io::ErrorKind::TimedOut
                    || e.get_ref()
                        .and_then(|i| i.downcast_ref::<reqwest::Error>())
                        .is_some_and(|r| r.is_timeout());
                Err(if timed_out {
                    SourceError::Timeout {
                        url: self.url.clone(),
                        message: format!(
                            "no data for {}s after {} (stalled)",
                            self.idle.as_secs_f64(),
                            crate::home::human_bytes(have)
                        ),
                    }
                } else {
                    SourceError::Network {
                        url: self.url.clone(),
                        message: format!(
                            "transfer cut after {}: {}",
                            crate::home::human_bytes(have),
                            error_chain(&e)
                        ),
                    }
                })
            }
            Ok(_) => Err(SourceError::Network {
                url: self.url.clone(),
                message: "unexpected message from the transfer".into(),
            }),
            Err(SourceError::Timeout { url, .. }) => Err(SourceError::Timeout {
                url,
                message: format!(
                    "no data for {}s after {} (stalled)",
                    self.idle.as_secs_f64(),
                    crate::home::human_bytes(have)
                ),
            }),
            Err(e) => Err(e),
        }
    }
}

/// `Content-Range: bytes A-B/T` (T may be `*`) → (A, B, T).
pub fn parse_content_range(v: Option<&str>) -> Option<(u64, u64, Option<u64>)> {
    let r = v?.trim().strip_prefix("bytes ")?;
    let (span, total) = r.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    (a <= b).then_some((a, b, total))
}

fn content_range_text(r: Option<(u64, u64, Option<u64>)>) -> String {
    match r {
        None => "206 without a valid Content-Range".into(),
        Some((a, b, Some(t))) => format!("bytes {a}-{b}/{t}"),
        Some((a, b, None)) => format!("bytes {a}-{b}/*"),
    }
}

/// What a verified download needs to know.
#[derive(Debug, Clone)]
pub struct Expect {
    pub url: String,
    /// Lower-case hex sha256; None for a URL given without a checksum (computed, reported).
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// Set (before the `.part` file is truncated or replaced) when the download starts
    /// over from byte 0, so a reader following the part file knows its bytes are void.
    pub restarted: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Hash a file's current content (resuming a `.part`).
pub fn hash_file(path: &Path, hasher: &mut Sha256) -> std::io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        hasher.update(&buf[..k]);
        n += k as u64;
    }
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    hash_file(path, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SourceError + 'a {
    move |source| SourceError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Outcome of one transfer attempt.
enum Attempt {
    /// The server has sent everything it has (status 200/206 body ended, or 416 on resume).
    Complete,
    /// Transient: retry (resume) after a backoff.
    Retry(SourceError),
}

/// Download `expect.url` into `part`, resuming what is there, then verify and rename to
/// `dest`. Returns the sha256 (lower-case hex) and the size.
pub fn download_verified(
    http: &Http,
    expect: &Expect,
    part: &Path,
    dest_for: impl FnOnce(&str) -> PathBuf,
    sink: &dyn EventSink,
) -> Result<(PathBuf, String, u64), SourceError> {
    let r = download_inner(http, expect, part, dest_for, sink);
    if r.is_err() {
        // A `.part` with bytes is kept to resume; an empty one (a 404, a refused
        // connection) is nothing worth keeping.
        if std::fs::metadata(part).is_ok_and(|m| m.is_file() && m.len() == 0) {
            let _ = std::fs::remove_file(part);
        }
    }
    r
}

fn download_inner(
    http: &Http,
    expect: &Expect,
    part: &Path,
    dest_for: impl FnOnce(&str) -> PathBuf,
    sink: &dyn EventSink,
) -> Result<(PathBuf, String, u64), SourceError> {
    let url = expect.url.as_str();
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    }
    let mut hasher = Sha256::new();
    let mut have = if part.exists() {
        hash_file(part, &mut hasher).map_err(io_err("read", part))?
    } else {
        0
    };
    if have > 0 {
        sink.info(format!(
            "resuming {} at {}",
            url,
            crate::home::human_bytes(have)
        ));
    }
    if expect.size.is_some_and(|s| have > s) {
        // More than the index says: certainly not the file we want. Start over.
        mark_restart(expect);
        std::fs::remove_file(part).map_err(io_err("remove", part))?;
        hasher = Sha256::new();
        have = 0;
    }
    let mut attempt = 0u32;
    let mut total = expect.size;
    loop {
        if crate::process::interrupted() {
            return Err(SourceError::Interrupted);
        }
        let complete = if expect.size.is_some_and(|s| have == s) {
            Attempt::Complete
        } else {
            transfer(http, expect, part, &mut hasher, &mut have, &mut total, sink)?
        };
        match complete {
            Attempt::Complete => break,
            Attempt::Retry(e) => {
                if attempt >= http.net.retries {
                    return Err(e);
                }
                let delay = http.net.backoff * 2u32.pow(attempt.min(6));
                sink.warn(format!(
                    "{e}; retrying in {:.1}s (attempt {} of {})",
                    delay.as_secs_f64(),
                    attempt + 2,
                    http.net.retries + 1
                ));
                nap(delay)?;
                attempt += 1;
            }
        }
    }
    let actual = hex::encode(hasher.finalize());
    if let Some(size) = expect.size {
        if have != size {
            let _ = std::fs::remove_file(part);
            return Err(SourceError::SizeMismatch {
                url: url.to_string(),
                expected: size,
                actual: have,
            });
        }
    }
    if let Some(want) = &expect.sha256 {
        if !want.eq_ignore_ascii_case(&actual) {
            let _ = std::fs::remove_file(part);
            return Err(SourceError::ChecksumMismatch {
                url: url.to_string(),
                expected: want.to_lowercase(),
                actual,
            });
        }
    }
    let f = File::options()
        .write(true)
        .open(part)
        .map_err(io_err("open", part))?;
    f.sync_all().map_err(io_err("fsync", part))?;
    drop(f);
    let dest = dest_for(&actual);
    std::fs::rename(part, &dest).map_err(io_err("rename into place", &dest))?;
    if let Some(dir) = dest.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok((dest, actual, have))
}

fn mark_restart(expect: &Expect) {
    if let Some(r) = &expect.restarted {
        r.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn transfer(
    http: &Http,
    expect: &Expect,
    part: &Path,
    hasher: &mut Sha256,
    have: &mut u64,
    total: &mut Option<u64>,
    sink: &dyn EventSink,
) -> Result<Attempt, SourceError> {
    let url = expect.url.as_str();
    let mut body = match http.open(url, *have) {
        Ok(b) => b,
        Err(Opened::Failed(e)) if e.is_connect() && *have == 0 => return Err(net_error(url, &e)),
        Err(Opened::Failed(e)) => return Ok(Attempt::Retry(net_error(url, &e))),
        Err(Opened::Other(e @ (SourceError::Timeout { .. } | SourceError::Network { .. }))) => {
            return Ok(Attempt::Retry(e))
        }
        Err(Opened::Other(e)) => return Err(e),
    };
    let status = body.head.status;
    let range = parse_content_range(body.head.content_range.as_deref());
    // A 206 must continue exactly where the part file ends, and for the file the index
    // describes; a server that restarts at byte 0 (or anywhere else) under a 206 would
    // otherwise make a concatenation.
    let resumes = status == 206 && *have > 0 && range.is_some_and(|(a, _, _)| a == *have);
    if status == 206 {
        if let (Some((_, _, Some(t))), Some(size)) = (range, expect.size) {
            if t != size {
                mark_restart(expect);
                let _ = std::fs::remove_file(part);
                return Err(SourceError::SizeMismatch {
                    url: url.to_string(),
                    expected: size,
                    actual: t,
                });
            }
        }
    }
    let mut file = match status {
        206 if resumes => {
            let mut f = File::options()
                .append(true)
                .open(part)
                .map_err(io_err("open", part))?;
            f.seek(SeekFrom::End(0)).map_err(io_err("seek", part))?;
            f
        }
        200 | 206 if status == 200 || range.is_some_and(|(a, _, _)| a == 0) => {
            // The whole body (the server ignored our Range, restarted from 0, or nothing
            // to resume): start over.
            if *have > 0 {
                sink.info(format!(
                    "{url}: server does not resume; downloading from the start"
                ));
                mark_restart(expect);
            }
            *hasher = Sha256::new();
            *have = 0;
            File::create(part).map_err(io_err("create", part))?
        }
        206 => {
            // Bytes from somewhere else: nothing of this answer is usable. Start over.
            mark_restart(expect);
            let _ = std::fs::remove_file(part);
            *hasher = Sha256::new();
            let asked = *have;
            *have = 0;
            return Ok(Attempt::Retry(SourceError::Network {
                url: url.to_string(),
                message: format!(
                    "asked for bytes {asked}-, the server answered {}; starting over",
                    content_range_text(range)
                ),
            }));
        }
        416 => return Ok(Attempt::Complete), // nothing more past what we have; verification decides
        s if s >= 500 => {
            return Ok(Attempt::Retry(SourceError::Http {
                url: url.to_string(),
                status: s,
            }))
        }
        s => {
            return Err(SourceError::Http {
                url: url.to_string(),
                status: s,
            })
        }
    };
    if total.is_none() {
        *total = body.head.content_length.map(|l| l + *have);
    }
    let mut last = Instant::now();
    sink.progress(Stage::Download, *have, *total, Unit::Bytes);
    loop {
        let chunk = match body.next_chunk(*have) {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e @ (SourceError::Timeout { .. } | SourceError::Network { .. })) => {
                let _ = file.flush();
                return Ok(Attempt::Retry(e));
            }
            Err(e) => {
                let _ = file.flush();
                return Err(e);
            }
        };
        file.write_all(&chunk).map_err(io_err("write", part))?;
        hasher.update(&chunk);
        *have += chunk.len() as u64;
        if *have > expect.size.unwrap_or(MAX_TARBALL) {
            // More than the index says (or than any kernel tarball): not the file we want.
            mark_restart(expect);
            drop(file);
            let _ = std::fs::remove_file(part);
            return Err(SourceError::SizeMismatch {
                url: url.to_string(),
                expected: expect.size.unwrap_or(MAX_TARBALL),
                actual: *have,
            });
        }
        if last.elapsed() >= Duration::from_millis(100) {
            sink.progress(Stage::Download, *have, *total, Unit::Bytes);
            last = Instant::now();
        }
    }
    file.flush().map_err(io_err("write", part))?;
    sink.progress(Stage::Download, *have, *total, Unit::Bytes);
    // The body ended. If the server promised more (Content-Length) hyper reports an
    // error instead, so reaching here means the server sent all it had.
    if total.is_some_and(|t| *have < t) {
        return Ok(Attempt::Retry(SourceError::Network {
            url: url.to_string(),
            message: format!("transfer ended early at {} of {}", *have, total.unwrap()),
        }));
    }
    Ok(Attempt::Complete)
}
