//! HTTP downloads: a blocking reqwest (rustls) client with connect/read timeouts, small
//! GETs for indexes, and the resumable, verifying tarball download: bytes go to
//! `<name>.part` (hashed as they arrive), an interrupted transfer resumes with
//! `Range: bytes=N-`, failures are retried a bounded number of times with backoff, and
//! the file is fsynced and renamed into place only after its size and sha256 match.
//! A mismatch deletes the part file and names both hashes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::SourceError;
use crate::events::{EventSink, SinkExt, Unit};

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
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(net.connect_timeout)
            .timeout(net.read_timeout)
            .user_agent(concat!("labctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Network {
                url: String::new(),
                message: format!("cannot build HTTP client: {e}"),
            })?;
        Ok(Http { client, net })
    }

    /// GET a small document fully into memory (indexes, checksum files). 404 and other
    /// non-success statuses are [`SourceError::Http`]; not retried.
    pub fn get_bytes(&self, url: &str) -> Result<Vec<u8>, SourceError> {
        let mut attempt = 0;
        loop {
            let r = self.client.get(url).send().and_then(|r| {
                let status = r.status();
                r.bytes().map(|b| (status, b))
            });
            match r {
                Ok((status, body)) if status.is_success() => return Ok(body.to_vec()),
                Ok((status, _)) if status.is_server_error() && attempt < self.net.retries => {}
                Ok((status, _)) => {
                    return Err(SourceError::Http {
                        url: url.to_string(),
                        status: status.as_u16(),
                    })
                }
                // A refused connection or an unknown host will not change in a second: fail fast.
                Err(e) if e.is_connect() || attempt >= self.net.retries => {
                    return Err(net_error(url, &e))
                }
                Err(_) => {}
            }
            std::thread::sleep(self.net.backoff * 2u32.pow(attempt.min(6)));
            attempt += 1;
        }
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
                std::thread::sleep(delay);
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
    let mut req = http.client.get(url);
    if *have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={}-", *have));
    }
    let mut resp = match req.send() {
        Ok(r) => r,
        Err(e) if e.is_connect() && *have == 0 => return Err(net_error(url, &e)),
        Err(e) => return Ok(Attempt::Retry(net_error(url, &e))),
    };
    let status = resp.status().as_u16();
    let mut file = match status {
        206 if *have > 0 => {
            let mut f = File::options()
                .append(true)
                .open(part)
                .map_err(io_err("open", part))?;
            f.seek(SeekFrom::End(0)).map_err(io_err("seek", part))?;
            f
        }
        200 | 206 => {
            // Full body (the server ignored our Range, or nothing to resume): start over.
            if *have > 0 {
                sink.info(format!(
                    "{url}: server does not resume; downloading from the start"
                ));
            }
            if *have > 0 {
                mark_restart(expect);
            }
            *hasher = Sha256::new();
            *have = 0;
            File::create(part).map_err(io_err("create", part))?
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
        *total = resp.content_length().map(|l| l + *have);
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut last = Instant::now();
    sink.progress("download", *have, *total, Unit::Bytes);
    loop {
        if crate::process::interrupted() {
            return Err(SourceError::Interrupted);
        }
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = file.flush();
                let timed_out = e.kind() == std::io::ErrorKind::TimedOut
                    || e.get_ref()
                        .and_then(|i| i.downcast_ref::<reqwest::Error>())
                        .is_some_and(|r| r.is_timeout());
                let err = if timed_out {
                    SourceError::Timeout {
                        url: url.to_string(),
                        message: format!(
                            "no data for {}s after {} (stalled)",
                            http.net.read_timeout.as_secs_f64(),
                            crate::home::human_bytes(*have)
                        ),
                    }
                } else {
                    SourceError::Network {
                        url: url.to_string(),
                        message: format!(
                            "transfer cut after {}: {}",
                            crate::home::human_bytes(*have),
                            error_chain(&e)
                        ),
                    }
                };
                return Ok(Attempt::Retry(err));
            }
        };
        file.write_all(&buf[..n]).map_err(io_err("write", part))?;
        hasher.update(&buf[..n]);
        *have += n as u64;
        if last.elapsed() >= Duration::from_millis(100) {
            sink.progress("download", *have, *total, Unit::Bytes);
            last = Instant::now();
        }
    }
    file.flush().map_err(io_err("write", part))?;
    sink.progress("download", *have, *total, Unit::Bytes);
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
