//! Debian's archive as a kernel source: the `linux` source package's
//! `linux_<ver>.orig.tar.xz`, found through `dists/<suite>/main/source/Sources.xz`
//! (deb822 paragraphs: `Package`, `Version`, `Directory`, `Checksums-Sha256`).
//!
//! The chain: `dists/<suite>/InRelease` (else `Release` + `Release.gpg`) is checked
//! with gpgv against the archive keyring ([`super::signature`]); its signed text must
//! name the suite, gives `Valid-Until` (expired: a warning, or refused with
//! `require_fresh`) and the sha256 and size of `main/source/Sources.xz`, which the
//! downloaded index must match; the index then gives the tarball's sha256 and size. A
//! bad or missing signature stops the fetch unless `allow_unsigned`; a suite with no
//! Release at all is skipped.
//!
//! Base URLs come from the host's apt configuration ([`super::apt`]) or from flags/env;
//! suites ending in `-security` are looked up under the security base. Parsed indexes
//! are cached briefly under `home.indexes()` (only the `linux` entries, as JSON), so a
//! repeated series lookup within the TTL needs no network. An index entry is not proof
//! that the pool serves the file: a 404 makes the caller try the next candidate.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::apt::{paragraphs, DebianBases};
use super::download::Http;
use super::{release, signature, FetchOptions, SourceError, Trust};
use crate::events::{EventSink, SinkExt};
use crate::home::Home;
use crate::version::{KernelVersion, VersionReq};

/// The suites searched by default, in order: stable releases first, so that for the same
/// kernel version a stable suite wins; then testing (forky) and unstable (sid), which carry
/// the newest kernels. experimental (release candidates) only when asked
/// (`--debian-suites experimental`).
pub const DEFAULT_SUITES: [&str; 8] = [
    "bullseye",
    "bullseye-security",
    "bookworm",
    "bookworm-security",
    "bookworm-backports",
    "trixie",
    "forky",
    "sid",
];

/// How long a parsed Sources index is trusted.
pub const INDEX_TTL: Duration = Duration::from_secs(3600);

/// One `linux_<ver>.orig.tar.xz` listed by an index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrigEntry {
    pub version: KernelVersion,
    /// `Directory:` relative to the base, e.g. `pool/main/l/linux`.
    pub directory: String,
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

/// A download candidate: an entry plus where it is served and what vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub entry: OrigEntry,
    pub suite: String,
    pub base: String,
    /// The suite's signed Release facts.
    pub trust: Trust,
}

impl Candidate {
    pub fn url(&self) -> String {
        format!(
            "{}/{}/{}",
            self.base.trim_end_matches('/'),
            self.entry.directory.trim_matches('/'),
            self.entry.file
        )
    }
}

/// Largest decompressed `Sources` index accepted (bookworm's main is about 50 MB).
pub const MAX_INDEX_BYTES: u64 = 256 << 20;

/// Decompress an `.xz` index, refusing more than `limit` bytes of output (an xz bomb
/// would otherwise be read into memory whole).
pub fn decompress_index(body: &[u8], limit: u64) -> Result<String, String> {
    let mut out = Vec::new();
    xz2::read::XzDecoder::new_multi_decoder(body)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not a valid xz-compressed Sources file: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!(
            "it decompresses to more than {} (the limit for a Sources index); refusing it",
            crate::home::human_bytes(limit)
        ));
    }
    String::from_utf8(out).map_err(|e| format!("not a valid Sources file (not UTF-8): {e}"))
}

/// A `Directory:` value that stays below the archive base: relative, no `..`, no
/// empty or odd characters. Anything else is not followed.
fn directory_ok(dir: &str) -> bool {
    !dir.is_empty()
        && !dir.starts_with('/')
        && dir
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'))
        && dir
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._+~-".contains(&b))
}

/// Extract the `linux` package's orig tarballs from (decompressed) Sources text.
/// Paragraphs whose `Directory:` would leave the archive base (absolute, `..`) are
/// skipped (see [`parse_sources_checked`]).
pub fn parse_sources(text: &str) -> Vec<OrigEntry> {
    parse_sources_checked(text).0
}

/// Like [`parse_sources`], plus the `Directory:` values of `linux` paragraphs that were
/// refused because they would leave the archive base.
pub fn parse_sources_checked(text: &str) -> (Vec<OrigEntry>, Vec<String>) {
    let mut out: Vec<OrigEntry> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    for chunk in text.split("\n\n") {
        let chunk = chunk.trim_start_matches('\n');
        // Cheap filter first: the index is tens of MB and has one `linux` paragraph per version.
        if !(chunk.starts_with("Package: linux\n") || chunk.contains("\nPackage: linux\n")) {
            continue;
        }
        for para in paragraphs(chunk) {
            let field = |n: &str| para.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
            if field("Package") != Some("linux") {
                continue;
            }
            let Some(dir) = field("Directory") else {
                continue;
            };
            if !directory_ok(dir) {
                refused.push(dir.to_string());
                continue;
            }
            let Some(sums) = field("Checksums-Sha256") else {
                continue;
            };
            for line in sums.lines() {
                let w: Vec<&str> = line.split_whitespace().collect();
                let [sha, size, file] = w.as_slice() else {
                    continue;
                };
                let Some(ver) = file
                    .strip_prefix("linux_")
                    .and_then(|r| r.strip_suffix(".orig.tar.xz"))
                else {
                    continue;
                };
                let (Some(version), Ok(size)) =
                    (KernelVersion::parse_plain(ver), size.parse::<u64>())
                else {
                    continue;
                };
                if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    continue;
                }
                let e = OrigEntry {
                    version,
                    directory: dir.to_string(),
                    file: file.to_string(),
                    sha256: sha.to_lowercase(),
                    size,
                };
                if !out.contains(&e) {
                    out.push(e);
                }
            }
        }
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.version));
    (out, refused)
}

pub fn is_security_suite(suite: &str) -> bool {
    suite.ends_with("-security") || suite.ends_with("/updates")
}

/// Bases for a suite. When only the main archive is configured and it ends in `/debian`,
/// its `-security` sibling is assumed for security suites (the archive's usual layout).
pub fn bases_for(bases: &DebianBases, suite: &str) -> Vec<String> {
    if is_security_suite(suite) {
        if !bases.security.is_empty() {
            return bases.security.clone();
        }
        return bases
            .archive
            .iter()
            .filter(|b| b.ends_with("/debian"))
            .map(|b| format!("{b}-security"))
            .collect();
    }
    bases.archive.clone()
}

pub fn index_url(base: &str, suite: &str) -> String {
    format!(
        "{}/dists/{}/main/source/Sources.xz",
        base.trim_end_matches('/'),
        suite
    )
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CachedIndex {
    url: String,
    entries: Vec<OrigEntry>,
    /// What authenticated this index when it was read (absent: nothing did).
    #[serde(default)]
    trust: Trust,
}

/// `dists/<suite>/InRelease` (and its `Release` + `Release.gpg` fallback).
pub fn release_url(base: &str, suite: &str, file: &str) -> String {
    format!("{}/dists/{}/{}", base.trim_end_matches('/'), suite, file)
}

/// Why a suite's index was not used.
#[derive(Debug)]
pub enum Refusal {
    /// A signature problem: the whole fetch stops (exit 2).
    Fatal(SourceError),
    /// The suite is skipped (unreachable, absent, or expired under --require-fresh).
    Skip(SourceError),
}

impl From<SourceError> for Refusal {
    fn from(e: SourceError) -> Self {
        match e {
            e @ SourceError::Signature { .. } => Refusal::Fatal(e),
            e => Refusal::Skip(e),
        }
    }
}

/// The suite's signed Release: fetched (`InRelease`, else `Release` + `Release.gpg`),
/// its signature checked against the keyrings, its suite name and `Valid-Until`
/// checked. Returns the expected sha256 and size of `main/source/Sources.xz` (None only
/// when unsigned indexes are allowed and none is published) and the trust facts.
fn signed_release(
    home: &Home,
    http: &Http,
    base: &str,
    suite: &str,
    opts: &FetchOptions,
    sink: &dyn EventSink,
) -> Result<(Option<(String, u64)>, Trust), SourceError> {
    let keyrings = opts.debian_keyrings();
    let inrelease = release_url(base, suite, "InRelease");
    let (checked, signed_url, text) = match http.get_limited(&inrelease, 64 << 20) {
        Ok(body) => {
            let c = signature::verify_clearsigned(
                home,
                &body,
                &keyrings,
                &format!("{suite}'s InRelease"),
                sink,
            )?;
            (
                c,
                inrelease.clone(),
                signature::clearsigned_body(&body).ok(),
            )
        }
        Err(SourceError::Http { status: 404, .. }) => {
            let rel_url = release_url(base, suite, "Release");
            match http.get_limited(&rel_url, 64 << 20) {
                Ok(rel) => {
                    let sig_url = release_url(base, suite, "Release.gpg");
                    let c = match http.get_limited(&sig_url, 1 << 20) {
                        Ok(sig) => signature::verify_detached(
                            home,
                            &rel,
                            &sig,
                            &keyrings,
                            &format!("{suite}'s Release"),
                            sink,
                        )?,
                        Err(SourceError::Http { status: 404, .. }) => {
                            signature::Check::Unverifiable(format!(
                                "{suite}'s Release has no Release.gpg signature"
                            ))
                        }
                        Err(e) => return Err(e),
                    };
                    (c, rel_url, Some(rel))
                }
                Err(SourceError::Http { status: 404, .. }) if opts.allow_unsigned => {
                    return Ok((
                        None,
                        Trust::unsigned(format!(
                            "{suite} publishes no InRelease or Release; --allow-unsigned"
                        )),
                    ))
                }
                Err(SourceError::Http { status: 404, url }) => {
                    return Err(SourceError::Index {
                        url,
                        message: format!(
                            "no InRelease or Release for {suite}: its index is not signed, not used (--allow-unsigned uses it)"
                        ),
                    })
                }
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let (text, mut trust) = match checked {
        signature::Check::Good(v) => (v.text.clone(), Trust::signed(&signed_url, &v)),
        signature::Check::Bad(why) | signature::Check::Unverifiable(why) => {
            if !opts.allow_unsigned {
                return Err(SourceError::Signature {
                    message: format!(
                        "{why}; refusing {suite}'s index (install debian-archive-keyring or pass --debian-keyring; --allow-unsigned uses it anyway)"
                    ),
                });
            }
            sink.warn(format!(
                "{why}; using {suite}'s index anyway (--allow-unsigned)"
            ));
            let t = Trust::unsigned(format!("{why}; --allow-unsigned"));
            match text {
                Some(t2) => (t2, t),
                None => return Ok((None, t)),
            }
        }
    };
    let rf = release::parse_release(&String::from_utf8_lossy(&text));
    if !rf.is_for(suite) {
        return Err(SourceError::Signature {
            message: format!(
                "{signed_url} describes suite {} / codename {}, not {suite}: refused",
                rf.suite.as_deref().unwrap_or("?"),
                rf.codename.as_deref().unwrap_or("?")
            ),
        });
    }
    trust.valid_until = rf.valid_until.clone();
    if let (Some(until), Some(u)) = (rf.valid_until_unix(), &rf.valid_until) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if now > until {
            trust.expired = true;
            if opts.require_fresh {
                return Err(SourceError::Stale {
                    what: format!("{suite}'s Release ({signed_url})"),
                    until: u.clone(),
                });
            }
        }
    }
    let sources = rf
        .file("main/source/Sources.xz")
        .map(|(s, n)| (s.to_string(), n));
    if sources.is_none() && trust.authenticated {
        return Err(SourceError::Signature {
            message: format!(
                "{signed_url} does not list main/source/Sources.xz: nothing ties the index to the signature"
            ),
        });
    }
    Ok((sources, trust))
}

fn cache_path(home: &Home, url: &str) -> PathBuf {
    let h = hex::encode(Sha256::digest(url.as_bytes()));
    home.indexes().join(format!("debian-{}.json", &h[..16]))
}

/// The `linux` entries of one suite's index, from the cache if fresh, else downloaded.
/// A stale cache is used (with a warning) when the network fails.
pub fn load_index(
    home: &Home,
    http: &Http,
    base: &str,
    suite: &str,
    opts: &FetchOptions,
    sink: &dyn EventSink,
) -> Result<(Vec<OrigEntry>, Trust), SourceError> {
    let ttl = opts.index_ttl();
    let url = index_url(base, suite);
    let path = cache_path(home, &url);
    let cached = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<CachedIndex>(&b).ok())
        .filter(|c| c.url == url)
        // An index read without a good signature is not reused unless that is allowed.
        .filter(|c| c.trust.authenticated || opts.allow_unsigned);
    let age = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    if let (Some(c), Some(age)) = (&cached, age) {
        if age < ttl && fresh_enough(&c.trust, opts, suite)? {
            return Ok((c.entries.clone(), c.trust.clone()));
        }
    }
    sink.debug(format!("GET {url}"));
    let fetched = signed_release(home, http, base, suite, opts, sink).and_then(|(want, trust)| {
        let body = match &want {
            Some((_, size)) => http.get_limited(&url, *size)?,
            None => http.get_bytes(&url)?,
        };
        if let Some((sha, size)) = &want {
            if body.len() as u64 != *size {
                return Err(SourceError::Signature {
                    message: format!(
                        "{url} is {} bytes, its signed Release says {size}: refused",
                        body.len()
                    ),
                });
            }
            let got = hex::encode(Sha256::digest(&body));
            if !got.eq_ignore_ascii_case(sha) {
                return Err(SourceError::Signature {
                    message: format!(
                        "{url} has sha256 {got}, its signed Release says {sha}: refused"
                    ),
                });
            }
        }
        Ok((body, trust))
    });
    let (body, trust) = match fetched {
        Ok(b) => b,
        Err(e) => {
            if let Some(c) = cached {
                if matches!(e, SourceError::Network { .. } | SourceError::Timeout { .. })
                    && fresh_enough(&c.trust, opts, suite)?
                {
                    sink.warn(format!("{e}; using the cached copy of {suite}'s index"));
                    return Ok((c.entries, c.trust));
                }
            }
            return Err(e);
        }
    };
    let text = decompress_index(&body, MAX_INDEX_BYTES).map_err(|message| SourceError::Index {
        url: url.clone(),
        message,
    })?;
    let (entries, refused) = parse_sources_checked(&text);
    if let Some(dir) = refused.first() {
        return Err(SourceError::Index {
            url,
            message: format!(
                "a `linux` paragraph has `Directory: {dir}`, which leaves the archive base (absolute or `..`); refusing the whole index"
            ),
        });
    }
    let data = serde_json::to_vec(&CachedIndex {
        url: url.clone(),
        entries: entries.clone(),
        trust: trust.clone(),
    })
    .expect("serializable");
    if let Err(e) = crate::home::write_atomic(&path, &data) {
        sink.warn(format!("cannot cache {suite}'s index: {e}"));
    }
    Ok((entries, trust))
}

/// A cached index's Release must still be within its Valid-Until under --require-fresh.
fn fresh_enough(t: &Trust, opts: &FetchOptions, suite: &str) -> Result<bool, SourceError> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let expired = t.expired
        || t.valid_until
            .as_deref()
            .and_then(release::parse_date)
            .is_some_and(|u| now > u);
    if expired && opts.require_fresh {
        return Err(SourceError::Stale {
            what: format!("{suite}'s Release"),
            until: t.valid_until.clone().unwrap_or_default(),
        });
    }
    Ok(true)
}

/// What the configured suites offer: per suite, its base and entries; plus one line per
/// suite that could not be read.
pub struct Listing {
    pub suites: Vec<(String, String, Vec<OrigEntry>)>,
    /// The trust facts per suite, in the order of `suites`.
    pub trust: Vec<Trust>,
    pub problems: Vec<String>,
    /// Suites refused for a signature problem (bad, missing, not ours): the fetch stops.
    pub refused: Vec<String>,
}

impl Listing {
    pub fn versions(&self) -> Vec<KernelVersion> {
        let mut v: Vec<KernelVersion> = self
            .suites
            .iter()
            .flat_map(|(_, _, e)| e.iter().map(|e| e.version))
            .collect();
        v.sort();
        v.dedup();
        v
    }
    /// Download candidates for `req`: newest version first, suites in configured order.
    pub fn candidates(&self, req: &VersionReq) -> Vec<Candidate> {
        let mut c: Vec<(usize, Candidate)> = Vec::new();
        for (i, (suite, base, entries)) in self.suites.iter().enumerate() {
            for e in entries.iter().filter(|e| req.matches(&e.version)) {
                c.push((
                    i,
                    Candidate {
                        entry: e.clone(),
                        suite: suite.clone(),
                        base: base.clone(),
                        trust: self.trust.get(i).cloned().unwrap_or_default(),
                    },
                ));
            }
        }
        c.sort_by(|(ia, a), (ib, b)| b.entry.version.cmp(&a.entry.version).then(ia.cmp(ib)));
        c.into_iter().map(|(_, c)| c).collect()
    }
}

/// Read every suite's index (first base that answers wins for that suite).
pub fn list(
    home: &Home,
    http: &Http,
    bases: &DebianBases,
    suites: &[String],
    opts: &FetchOptions,
    sink: &dyn EventSink,
) -> Listing {
    // One thread per suite: downloading and decompressing the big indexes (tens of MB of
    // text each) in parallel halves a cold lookup on two cores.
    type SuiteResult = Result<(String, Vec<OrigEntry>, Trust), Refusal>;
    let results: Vec<SuiteResult> = std::thread::scope(|sc| {
        let handles: Vec<_> = suites
            .iter()
            .map(|suite| {
                sc.spawn(move || {
                    let bs = bases_for(bases, suite);
                    if bs.is_empty() {
                        return Err(Refusal::Skip(SourceError::NoSuiteUrl));
                    }
                    let mut last_err = None;
                    for base in &bs {
                        match load_index(home, http, base, suite, opts, sink) {
                            Ok((entries, trust)) => return Ok((base.clone(), entries, trust)),
                            Err(e @ SourceError::Signature { .. }) => {
                                return Err(Refusal::Fatal(e))
                            }
                            Err(e) => last_err = Some(e),
                        }
                    }
                    Err(Refusal::from(last_err.expect("at least one base")))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(Err(Refusal::Skip(SourceError::IndexReaderPanicked)))
            })
            .collect()
    });
    let mut out = Listing {
        suites: Vec::new(),
        trust: Vec::new(),
        problems: Vec::new(),
        refused: Vec::new(),
    };
    for (suite, r) in suites.iter().zip(results) {
        match r {
            Ok((base, entries, trust)) => {
                out.suites.push((suite.clone(), base, entries));
                out.trust.push(trust);
            }
            Err(Refusal::Fatal(e)) => out.refused.push(format!("{suite}: {e}")),
            Err(Refusal::Skip(e @ SourceError::Stale { .. })) => {
                sink.warn(format!("debian {suite}: {e}"));
                out.problems.push(format!("{suite}: {e}"))
            }
            Err(Refusal::Skip(e)) => out.problems.push(format!("{suite}: {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_cli_help_names_the_default_suites() {
        let help = include_str!("../cli/opts.rs");
        let text: String = help
            .split("Debian suites to search")
            .nth(1)
            .unwrap()
            .split("#[arg")
            .next()
            .unwrap()
            .replace("///", " ");
        let words: Vec<&str> = text
            .split(|c: char| c == ',' || c.is_whitespace() || c == '[' || c == ']' || c == ';')
            .filter(|w| !w.is_empty())
            .collect();
        for s in DEFAULT_SUITES {
            assert!(
                words.contains(&s),
                "--debian-suites help must list {s}: {text}"
            );
        }
    }
    use super::*;

    const SOURCES: &str = "\
Package: linux-signed-amd64
Version: 5.10.46+4
Directory: pool/main/l/linux-signed-amd64
Checksums-Sha256:
 1111111111111111111111111111111111111111111111111111111111111111 100 linux_5.10.46.orig.tar.xz

Package: linux
Binary: linux-doc,
 linux-headers
Version: 5.10.46-4
Directory: pool/main/l/linux
Checksums-Sha256:
 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 209429 linux_5.10.46-4.dsc
 BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB 122143548 linux_5.10.46.orig.tar.xz
 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc 1000 linux_5.10.46-4.debian.tar.xz

Package: linux
Version: 6.1~rc7-1~exp1
Directory: pool/main/l/linux
Checksums-Sha256:
 dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd 5 linux_6.1~rc7.orig.tar.xz

Package: linux
Version: 5.10.251-1
Directory: pool/updates/main/l/linux
Checksums-Sha256:
 eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee 122000000 linux_5.10.251.orig.tar.xz
";

    #[test]
    fn directories_must_stay_below_the_base() {
        for ok in ["pool/main/l/linux", "pool/updates/main/l/linux"] {
            assert!(directory_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "/pool",
            "../x",
            "pool/../../x",
            "pool//x",
            "pool/./x",
            "pool/x y",
        ] {
            assert!(!directory_ok(bad), "{bad}");
        }
        let text = "Package: linux\nVersion: 5.10.46-1\nDirectory: ../../up\nChecksums-Sha256:\n \
                    aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 9 linux_5.10.46.orig.tar.xz\n";
        let (entries, refused) = parse_sources_checked(text);
        assert!(entries.is_empty());
        assert_eq!(refused, vec!["../../up".to_string()]);
    }

    #[test]
    fn index_decompression_is_capped() {
        let mut enc = xz2::write::XzEncoder::new(Vec::new(), 1);
        std::io::Write::write_all(&mut enc, &[b'\n'; 5000]).unwrap();
        let body = enc.finish().unwrap();
        assert_eq!(decompress_index(&body, 5000).unwrap().len(), 5000);
        let e = decompress_index(&body, 4999).unwrap_err();
        assert!(e.contains("more than 4.9 KiB"), "{e}");
    }

    #[test]
    fn parses_only_the_linux_package_orig_tarballs() {
        let e = parse_sources(SOURCES);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].version, KernelVersion::new(5, 10, 251));
        assert_eq!(e[0].directory, "pool/updates/main/l/linux");
        assert_eq!(e[1].version, KernelVersion::new(5, 10, 46));
        assert_eq!(e[1].sha256, "b".repeat(64));
        assert_eq!(e[1].size, 122143548);
    }

    #[test]
    fn security_suites_use_the_security_base() {
        let b = DebianBases {
            archive: vec!["http://m.example/debian".into()],
            security: vec![],
        };
        assert_eq!(
            bases_for(&b, "bullseye-security"),
            ["http://m.example/debian-security"]
        );
        assert_eq!(bases_for(&b, "bookworm"), ["http://m.example/debian"]);
        let b2 = DebianBases {
            archive: vec!["http://m.example/debian".into()],
            security: vec!["http://s.example/sec".into()],
        };
        assert_eq!(
            bases_for(&b2, "bookworm-security"),
            ["http://s.example/sec"]
        );
        assert_eq!(
            index_url("http://m.example/debian/", "trixie"),
            "http://m.example/debian/dists/trixie/main/source/Sources.xz"
        );
    }

    #[test]
    fn candidates_newest_first_then_suite_order() {
        let e = |p: u32| OrigEntry {
            version: KernelVersion::new(5, 10, p),
            directory: "pool/x".into(),
            file: format!("linux_5.10.{p}.orig.tar.xz"),
            sha256: "0".repeat(64),
            size: 1,
        };
        let l = Listing {
            trust: vec![],
            refused: vec![],
            suites: vec![
                ("bullseye".into(), "http://a".into(), vec![e(46), e(13)]),
                (
                    "bullseye-security".into(),
                    "http://s".into(),
                    vec![e(251), e(46)],
                ),
            ],
            problems: vec![],
        };
        let c = l.candidates(&VersionReq::Series(5, 10));
        let got: Vec<(u32, &str)> = c
            .iter()
            .map(|c| (c.entry.version.patch, c.suite.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (251, "bullseye-security"),
                (46, "bullseye"),
                (46, "bullseye-security"),
                (13, "bullseye")
            ]
        );
        assert_eq!(c[0].url(), "http://s/pool/x/linux_5.10.251.orig.tar.xz");
        assert_eq!(l.versions().len(), 3);
    }
}
