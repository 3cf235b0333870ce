//! A small client of the OCI distribution API over blocking HTTP (reqwest, as labctl's
//! downloads use): manifests by tag or digest, blobs (HEAD, GET streamed into a file
//! while its sha256 is computed, POST + monolithic PUT uploads streamed from a file),
//! and the registry's token or Basic authentication on its first 401.
//!
//! Plain HTTP is used only for a registry on this machine's loopback or when the caller
//! allows it (`--insecure`); everything else is HTTPS.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::auth::{parse_challenge, Challenge, Credentials};
use super::reference::Reference;
use super::OciError;

/// The manifest media types labctl reads and writes.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// How to talk to one repository.
pub struct Registry {
    client: reqwest::blocking::Client,
    /// `http://host:port` or `https://host`.
    base: String,
    reference: Reference,
    creds: Option<Credentials>,
    /// The `Authorization` value that worked (a Bearer token or Basic).
    auth: Mutex<Option<String>>,
}

/// Options for a connection.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    pub credentials: Option<Credentials>,
    /// Allow plain HTTP to a registry that is not on the loopback.
    pub insecure: bool,
}

/// A manifest as the registry served it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`, computed here.
    pub digest: String,
    pub media_type: Option<String>,
}

/// The most a manifest may weigh (the spec suggests registries accept 4 MiB).
const MANIFEST_MAX: usize = 4 << 20;

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn excerpt(body: &str) -> String {
    let t: String = body.trim().chars().take(300).collect();
    t.replace(['\n', '\r'], " ")
}

impl Registry {
    pub fn connect(reference: &Reference, opts: &Connect) -> Result<Registry, OciError> {
        let scheme = if reference.is_loopback() || opts.insecure {
            "http"
        } else {
            "https"
        };
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("labctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| OciError::Http {
                url: reference.registry.clone(),
                source,
            })?;
        Ok(Registry {
            client,
            base: format!("{scheme}://{}", reference.registry),
            reference: reference.clone(),
            creds: opts.credentials.clone(),
            auth: Mutex::new(None),
        })
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.reference.repository)
    }

    /// Send the request `make` builds (called again after authenticating), with the
    /// authorization that worked so far. A 401 is answered once: a token from the
    /// challenge's realm (with the credentials, when there are any) or Basic.
    fn send(
        &self,
        url: &str,
        make: &dyn Fn(
            &reqwest::blocking::Client,
        ) -> Result<reqwest::blocking::RequestBuilder, OciError>,
    ) -> Result<reqwest::blocking::Response, OciError> {
        if crate::process::interrupted() {
            return Err(OciError::Interrupted);
        }
        let http = |source| OciError::Http {
            url: url.to_string(),
            source,
        };
        let mut req = make(&self.client)?;
        if let Some(a) = self.auth.lock().unwrap().clone() {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        let resp = req.send().map_err(http)?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_challenge);
        let value = match challenge {
            Some(Challenge::Basic) => match &self.creds {
                Some(c) => c.basic(),
                None => return Err(self.unauthorized("it asks for a user name and password")),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => format!(
                "Bearer {}",
                self.token(&realm, service.as_deref(), scope.as_deref())?
            ),
            None => {
                return Err(
                    self.unauthorized("it answered 401 without a challenge labctl understands")
                )
            }
        };
        *self.auth.lock().unwrap() = Some(value.clone());
        let resp = make(&self.client)?
            .header(reqwest::header::AUTHORIZATION, value)
            .send()
            .map_err(http)?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized("the credentials were refused"));
        }
        Ok(resp)
    }

    fn unauthorized(&self, why: &str) -> OciError {
        OciError::Unauthorized {
            registry: self.reference.registry.clone(),
            why: why.to_string(),
            had_credentials: self.creds.is_some(),
        }
    }

    fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String, OciError> {
        let mut url = reqwest::Url::parse(realm)
            .map_err(|_| self.unauthorized("its token realm is not a URL"))?;
        // Credentials go to a plain-HTTP token service only when the registry itself is
        // reached over plain HTTP (loopback or --insecure).
        if url.scheme() != "https" && !self.base.starts_with("http://") {
            return Err(self.unauthorized("its token realm is not HTTPS"));
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            if let Some(s) = scope {
                q.append_pair("scope", s);
            }
        }
        let mut req = self.client.get(url.clone());
        if let Some(c) = &self.creds {
            req = req.header(reqwest::header::AUTHORIZATION, c.basic());
        }
        let resp = req.send().map_err(|source| OciError::Http {
            url: url.to_string(),
            source,
        })?;
        if !resp.status().is_success() {
            return Err(self.unauthorized(&format!("its token service answered {}", resp.status())));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let text = resp.text().map_err(|source| OciError::Http {
            url: url.to_string(),
            source,
        })?;
        let t: Token = serde_json::from_str(&text).map_err(|_| {
            self.unauthorized("its token service answered something that is not a token")
        })?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.unauthorized("its token service gave no token"))
    }

    fn status_error(&self, what: &str, url: &str, resp: reqwest::blocking::Response) -> OciError {
        let status = resp.status().as_u16();
        let body = resp.text().unwrap_or_default();
        OciError::Status {
            what: what.to_string(),
            url: url.to_string(),
            status,
            body: excerpt(&body),
        }
    }

    /// The manifest for `r` (its tag or digest). `Ok(None)` when the registry does not
    /// know it (404: a miss, not an error).
    pub fn get_manifest(&self, r: &str) -> Result<Option<FetchedManifest>, OciError> {
        let url = self.url(&format!("manifests/{r}"));
        let resp = self.send(&url, &|c| {
            Ok(c.get(&url).header(reqwest::header::ACCEPT, OCI_MANIFEST))
        })?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error("get the manifest", &url, resp));
        }
        let media_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let claimed = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut bytes = Vec::new();
        resp.take(MANIFEST_MAX as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| OciError::Read {
                url: url.clone(),
                source,
            })?;
        if bytes.len() > MANIFEST_MAX {
            return Err(OciError::BadManifest {
                reference: self.reference.to_string(),
                why: format!("it is larger than {MANIFEST_MAX} bytes"),
            });
        }
        let digest = sha256_digest(&bytes);
        // What the registry says it served must be what arrived.
        if let Some(c) = claimed.filter(|c| c.starts_with("sha256:")) {
            if c != digest {
                return Err(OciError::DigestMismatch {
                    what: format!("the manifest of {}", self.reference),
                    expected: c,
                    actual: digest,
                });
            }
        }
        Ok(Some(FetchedManifest {
            bytes,
            digest,
            media_type,
        }))
    }

    /// Store a manifest under `tag`; returns its digest.
    pub fn put_manifest(&self, tag: &str, bytes: &[u8]) -> Result<String, OciError> {
        let url = self.url(&format!("manifests/{tag}"));
        let body = bytes.to_vec();
        let resp = self.send(&url, &|c| {
            Ok(c.put(&url)
                .header(reqwest::header::CONTENT_TYPE, OCI_MANIFEST)
                .body(body.clone()))
        })?;
        if !resp.status().is_success() {
            return Err(self.status_error("store the manifest", &url, resp));
        }
        let digest = sha256_digest(bytes);
        if let Some(c) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if c.starts_with("sha256:") && c != digest {
                return Err(OciError::DigestMismatch {
                    what: format!("the manifest stored as {}", self.reference.with_tag(tag)),
                    expected: digest,
                    actual: c.to_string(),
                });
            }
        }
        Ok(digest)
    }

    /// Whether the repository already has this blob.
    pub fn has_blob(&self, digest: &str) -> Result<bool, OciError> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send(&url, &|c| Ok(c.head(&url)))?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error("check for a blob", &url, resp)),
        }
    }

    /// Upload the file `path` (of `size` bytes, digest `digest`) as a blob: POST to
    /// start, then one PUT with the whole body, streamed; `progress` gets bytes sent.
    pub fn put_blob(
        &self,
        digest: &str,
        path: &Path,
        size: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), OciError> {
        let start = self.url("blobs/uploads/");
        let resp = self.send(&start, &|c| {
            Ok(c.post(&start).header(reqwest::header::CONTENT_LENGTH, "0"))
        })?;
        if resp.status().as_u16() != 202 {
            return Err(self.status_error("start a blob upload", &start, resp));
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| OciError::Status {
                what: "start a blob upload".into(),
                url: start.clone(),
                status: 202,
                body: "no Location header".into(),
            })?
            .to_string();
        let mut url = reqwest::Url::parse(&self.base)
            .and_then(|b| b.join(&location))
            .map_err(|_| OciError::Status {
                what: "start a blob upload".into(),
                url: start.clone(),
                status: 202,
                body: format!("Location `{location}` is not a URL"),
            })?;
        url.query_pairs_mut().append_pair("digest", digest);
        let url = url.to_string();
        // A slow link gets time: at least 10 minutes, else 1 MiB/s.
        let timeout = Duration::from_secs((size >> 20).max(600));
        let sent = Arc::new(AtomicU64::new(0));
        let finished = AtomicBool::new(false);
        let resp = std::thread::scope(|s| {
            // Reports the bytes the body reader has handed to the connection so far.
            s.spawn(|| {
                let mut reported = 0;
                loop {
                    let stop = finished.load(Ordering::SeqCst);
                    let now = sent.load(Ordering::SeqCst);
                    if now > reported {
                        progress(now - reported);
                        reported = now;
                    }
                    if stop {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
            let r = self.send(&url, &|c| {
                let f = std::fs::File::open(path).map_err(|source| OciError::Io {
                    op: "open",
                    path: path.to_owned(),
                    source,
                })?;
                sent.store(0, Ordering::SeqCst);
                let reader = Counting {
                    inner: f,
                    sent: sent.clone(),
                };
                Ok(c.put(&url)
                    .timeout(timeout)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(reqwest::blocking::Body::sized(reader, size)))
            });
            finished.store(true, Ordering::SeqCst);
            r
        })?;
        if resp.status().as_u16() != 201 {
            return Err(self.status_error("upload a blob", &url, resp));
        }
        Ok(())
    }

    /// Download a blob into `dest` (created new), checking its size and sha256 while it
    /// arrives. On any error the file is removed.
    pub fn get_blob(
        &self,
        digest: &str,
        size: u64,
        dest: &Path,
        progress: &dyn Fn(u64),
    ) -> Result<(), OciError> {
        let r = self.get_blob_inner(digest, size, dest, progress);
        if r.is_err() {
            let _ = std::fs::remove_file(dest);
        }
        r
    }

    fn get_blob_inner(
        &self,
        digest: &str,
        size: u64,
        dest: &Path,
        progress: &dyn Fn(u64),
    ) -> Result<(), OciError> {
        let url = self.url(&format!("blobs/{digest}"));
        let mut resp = self.send(&url, &|c| Ok(c.get(&url)))?;
        if !resp.status().is_success() {
            return Err(self.status_error("download a blob", &url, resp));
        }
        let io = |op, source| OciError::Io {
            op,
            path: dest.to_owned(),
            source,
        };
        let mut f = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(dest)
            .map_err(|e| io("create", e))?;
        let mut h = Sha256::new();
        let mut done: u64 = 0;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            if crate::process::interrupted() {
                return Err(OciError::Interrupted);
            }
            let n = resp.read(&mut buf).map_err(|source| OciError::Read {
                url: url.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            done += n as u64;
            if done > size {
                return Err(OciError::SizeMismatch {
                    what: format!("blob {digest}"),
                    expected: size,
                    actual: done,
                });
            }
            h.update(&buf[..n]);
            f.write_all(&buf[..n]).map_err(|e| io("write", e))?;
            progress(n as u64);
        }
        if done != size {
            return Err(OciError::SizeMismatch {
                what: format!("blob {digest}"),
                expected: size,
                actual: done,
            });
        }
        let actual = format!("sha256:{}", hex::encode(h.finalize()));
        if actual != digest {
            return Err(OciError::DigestMismatch {
                what: format!("blob {digest}"),
                expected: digest.to_string(),
                actual,
            });
        }
        f.sync_all().map_err(|e| io("fsync", e))?;
        Ok(())
    }
}

/// A file reader that counts what it has handed out.
struct Counting {
    inner: std::fs::File,
    sent: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if crate::process::interrupted() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "interrupted",
            ));
        }
        let n = self.inner.read(buf)?;
        self.sent.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}
