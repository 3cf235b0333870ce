//! Kernel sources: resolve a version against kernel.org / Debian's archive / a URL / a
//! local tarball or tree, download with resume and verification, cache by sha256, and
//! extract safely into `src/linux-<ver>-<sha8>/`. Owns [`Release`] and [`SourceTree`].
//!
//! Sub-modules: [`apt`] (host apt config → Debian base URLs), [`debian`] (signed
//! Release → Sources indexes), [`release`] (Release file fields: suite, Valid-Until,
//! hashes), [`kernel_org`] (directory index + sha256sums.asc), [`signature`] (gpgv on
//! clearsigned and detached signatures), [`download`] (resumable verified HTTP),
//! [`extract`] (safe tar.xz extraction), [`cache`] (listing and pruning every kind of
//! cache entry).
//!
//! Trust policy (docs/security.md): every [`Release`] carries a [`Trust`] saying which
//! signature (file, key fingerprint, keyring) its checksum is tied to, or why none is.
//! A bad or missing signature where one is published (Debian's InRelease, kernel.org's
//! sha256sums.asc when a keyring is given) is refused unless
//! [`FetchOptions::allow_unsigned`]; a source that cannot be authenticated at all
//! (kernel.org without a keyring, a URL or local tarball without `--sha256`) is used with
//! a plain statement, or refused with [`FetchOptions::require_signature`]. An expired
//! `Valid-Until` is a warning naming the date, or refused with
//! [`FetchOptions::require_fresh`]. The facts are recorded next to the tree
//! ([`TREE_META`], [`tree_trust`]) and in build.json.
//!
//! Locks: `src-<version>` is held while a version's tree is resolved, downloaded and
//! extracted; `dl-<sha256>` while a tarball is downloaded. A fetch of an exact version
//! whose tree is already extracted does no network I/O.

pub mod apt;
pub mod cache;
pub mod debian;
pub mod download;
pub mod extract;
pub mod kernel_org;
pub mod release;
pub mod signature;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::events::{EventSink, SinkExt, Stage};
use crate::home::{CacheKey, Home};
use crate::version::{KernelVersion, VersionReq};

pub use download::NetOptions;

/// The metadata file written into every extracted tree (before it is renamed into place).
pub const TREE_META: &str = ".labctl-source.json";

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "kernel {req} not found:{}{}",
        attempts_text(attempts),
        nearest_text(nearest)
    )]
    NotFound {
        req: String,
        attempts: Vec<String>,
        nearest: Vec<KernelVersion>,
    },
    #[error("HTTP {status} for {url}")]
    Http { url: String, status: u16 },
    #[error("cannot reach {url}: {message}")]
    Network { url: String, message: String },
    #[error("timed out on {url}: {message}")]
    Timeout { url: String, message: String },
    #[error("checksum mismatch for {url}: expected sha256 {expected}, got {actual}; the partial download was deleted (retry, or pick another --source)")]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch for {url}: expected {expected} bytes, the server sent {actual}; the partial download was deleted")]
    SizeMismatch {
        url: String,
        expected: u64,
        actual: u64,
    },
    #[error("not enough disk space in {}: need {}, available {} (free some with `labctl cache prune`, or use --home on a bigger disk)", path.display(), crate::home::human_bytes(*needed), crate::home::human_bytes(*available))]
    DiskSpace {
        path: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("refusing to extract {}: entry {entry:?} {reason}", archive.display())]
    UnsafeEntry {
        archive: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("cannot extract {}: {message}", path.display())]
    Archive { path: PathBuf, message: String },
    /// Reading the archive (or unpacking `entry` from it) failed.
    #[error("cannot extract {}: {}{source}", path.display(), entry.as_ref().map(|e| format!("{}: ", e.display())).unwrap_or_default())]
    ArchiveIo {
        path: PathBuf,
        entry: Option<PathBuf>,
        #[source]
        source: std::io::Error,
    },
    /// The tree's metadata file could not be written (atomically) into the extracted tree.
    #[error("cannot extract {}: cannot write {TREE_META}: {source}", path.display())]
    TreeMeta {
        path: PathBuf,
        #[source]
        source: crate::home::HomeError,
    },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad index {url}: {message}")]
    Index { url: String, message: String },
    #[error("no Debian archive URL: none found in the host's apt configuration (/etc/apt/sources.list, /etc/apt/sources.list.d/); pass --debian-url URL or set LABCTL_DEBIAN_URL")]
    NoDebianMirror,
    #[error("PGP signature check failed: {message}")]
    Signature { message: String },
    #[error("refusing {what}: {why} (--require-signature)")]
    Unverified { what: String, why: String },
    #[error("refusing {what}: its Valid-Until ({until}) has passed (--require-fresh)")]
    Stale { what: String, until: String },
    #[error("{0}")]
    Usage(String),
    /// The cache (its folders, locks, free space) failed.
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    /// The tree streamed while downloading is void (the download failed or restarted):
    /// the verified file is extracted the ordinary way instead.
    #[error("download failed or restarted")]
    StreamVoid,
    /// No archive URL is configured for a Debian suite (the suite is skipped).
    #[error("no archive URL configured for it")]
    NoSuiteUrl,
    /// A thread reading a Debian suite's index panicked (the suite is skipped).
    #[error("index reader panicked")]
    IndexReaderPanicked,
    #[error("interrupted")]
    Interrupted,
}

fn attempts_text(a: &[String]) -> String {
    a.iter().map(|l| format!("\n  {l}")).collect()
}
fn nearest_text(n: &[KernelVersion]) -> String {
    if n.is_empty() {
        String::new()
    } else {
        format!(
            "\nnearest versions that exist: {}",
            n.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl SourceError {
    /// True for Ctrl-C, whether it came from a download, a child process or a lock wait.
    pub fn is_interrupted(&self) -> bool {
        match self {
            SourceError::Interrupted => true,
            SourceError::Home(h) | SourceError::TreeMeta { source: h, .. } => h.is_interrupted(),
            _ => false,
        }
    }
}

/// Where to get a tarball from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// kernel.org first, then Debian's archive.
    Auto,
    KernelOrg,
    Debian,
    /// A direct tarball URL (http/https).
    Url(String),
    /// A local `.tar.xz`, or an already extracted tree (a folder with the top Makefile).
    Path(PathBuf),
}

impl std::str::FromStr for SourceSpec {
    type Err = SourceError;
    fn from_str(s: &str) -> Result<Self, SourceError> {
        Ok(match s {
            "auto" => SourceSpec::Auto,
            "kernel.org" | "kernelorg" | "kernel-org" => SourceSpec::KernelOrg,
            "debian" => SourceSpec::Debian,
            u if u.starts_with("http://") || u.starts_with("https://") => SourceSpec::Url(u.to_string()),
            p if p.contains('/') || p.ends_with(".tar.xz") || Path::new(p).exists() => SourceSpec::Path(PathBuf::from(p)),
            other => {
                return Err(SourceError::Usage(format!(
                    "invalid --source {other:?}: use auto, kernel.org, debian, an http(s) URL of a .tar.xz, or a path to a .tar.xz or an extracted tree"
                )))
            }
        })
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Auto => f.write_str("auto"),
            SourceSpec::KernelOrg => f.write_str("kernel.org"),
            SourceSpec::Debian => f.write_str("debian"),
            SourceSpec::Url(u) => f.write_str(u),
            SourceSpec::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// kernel.org base URL override (mirrors, tests); default [`kernel_org::DEFAULT_BASE`].
    pub kernel_org_base: Option<String>,
    /// Debian archive base URLs override (else read from the host's apt configuration).
    pub debian_bases: Vec<String>,
    /// Debian security archive base URLs override.
    pub debian_security_bases: Vec<String>,
    /// Debian suites to search, in order (default [`debian::DEFAULT_SUITES`]).
    pub debian_suites: Vec<String>,
    /// Root for reading the apt configuration (default `/`).
    pub apt_root: Option<PathBuf>,
    /// Keyring for checking kernel.org's sha256sums.asc signature with gpgv.
    pub kernel_org_keyring: Option<PathBuf>,
    /// Keyrings for Debian's InRelease (default [`signature::default_debian_keyrings`]).
    pub debian_keyrings: Vec<PathBuf>,
    /// Use a source whose published signature is bad or missing (recorded as not
    /// authenticated, with a warning). Off: such a source is refused.
    pub allow_unsigned: bool,
    /// Refuse a source that cannot be authenticated by a signature or `--sha256`.
    pub require_signature: bool,
    /// Refuse a Debian suite whose signed Release is past its Valid-Until.
    pub require_fresh: bool,
    /// Expected sha256 for `--source URL|PATH`.
    pub sha256: Option<String>,
    /// Timeouts and retries; `None` means the defaults.
    pub net: Option<NetOptions>,
    /// How long a Debian index is reused (default 1 h).
    pub index_ttl: Option<Duration>,
    /// Pretend the filesystem has this many free bytes (tests of the space check).
    pub assume_free_bytes: Option<u64>,
}

impl FetchOptions {
    fn net(&self) -> NetOptions {
        self.net.clone().unwrap_or_default()
    }
    fn suites(&self) -> Vec<String> {
        if self.debian_suites.is_empty() {
            debian::DEFAULT_SUITES
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            self.debian_suites.clone()
        }
    }
    fn kernel_org_base(&self) -> String {
        self.kernel_org_base
            .clone()
            .unwrap_or_else(|| kernel_org::DEFAULT_BASE.to_string())
    }
    /// Debian bases: the overrides, else the host's apt configuration.
    pub fn debian_bases(&self) -> Result<apt::DebianBases, SourceError> {
        let mut b = if self.debian_bases.is_empty() && self.debian_security_bases.is_empty() {
            apt::read_host(self.apt_root.as_deref().unwrap_or(Path::new("/")))
        } else {
            apt::DebianBases::default()
        };
        if !self.debian_bases.is_empty() {
            b.archive = self
                .debian_bases
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect();
        }
        if !self.debian_security_bases.is_empty() {
            b.security = self
                .debian_security_bases
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect();
        }
        if b.is_empty() {
            return Err(SourceError::NoDebianMirror);
        }
        Ok(b)
    }
    pub(crate) fn index_ttl(&self) -> Duration {
        self.index_ttl.unwrap_or(debian::INDEX_TTL)
    }
    /// The keyrings Debian's InRelease is checked against.
    pub fn debian_keyrings(&self) -> Vec<PathBuf> {
        if self.debian_keyrings.is_empty() {
            signature::default_debian_keyrings(Path::new("/"))
        } else {
            self.debian_keyrings.clone()
        }
    }
    /// Refuse `rel` when it is not authenticated and a signature is required.
    fn enforce(&self, rel: &Release) -> Result<(), SourceError> {
        if self.require_signature && !rel.trust.authenticated && !rel.trust.pinned {
            return Err(SourceError::Unverified {
                what: format!("linux {} from {}", rel.version, rel.source),
                why: rel
                    .trust
                    .not_authenticated
                    .clone()
                    .unwrap_or_else(|| "no signature covers its checksum".into()),
            });
        }
        Ok(())
    }
}

/// What a tree's bytes are tied to: recorded in the tree's metadata ([`TREE_META`]) and
/// in build.json, printed by every fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trust {
    /// True when a good signature from a key in `keyring` covers the tarball's checksum.
    #[serde(default)]
    pub authenticated: bool,
    /// The checksum came from the user (`--sha256`), not from a signature.
    #[serde(default)]
    pub pinned: bool,
    /// The signed file that was checked (a URL), when one was.
    #[serde(default)]
    pub signed_file: Option<String>,
    /// The keyring file that held the signing key.
    #[serde(default)]
    pub keyring: Option<PathBuf>,
    /// The signing key's primary fingerprint.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The signing key's user id.
    #[serde(default)]
    pub signer: Option<String>,
    /// Debian: the signed Release's `Valid-Until`, and whether it had passed.
    #[serde(default)]
    pub valid_until: Option<String>,
    #[serde(default)]
    pub expired: bool,
    /// Why the source is not authenticated (None when it is).
    #[serde(default)]
    pub not_authenticated: Option<String>,
}

impl Trust {
    /// A good signature.
    pub fn signed(file: &str, v: &signature::Verified) -> Trust {
        Trust {
            authenticated: true,
            signed_file: Some(file.to_string()),
            keyring: Some(v.keyring.clone()),
            fingerprint: Some(v.fingerprint.clone()),
            signer: Some(v.signer.clone()),
            ..Trust::default()
        }
    }
    /// No (usable) signature, and why.
    pub fn unsigned(why: impl Into<String>) -> Trust {
        Trust {
            not_authenticated: Some(why.into()),
            ..Trust::default()
        }
    }
    /// "signed by <fpr> (<uid>) in <keyring>", or "NOT authenticated (why)".
    pub fn summary(&self) -> String {
        if self.authenticated {
            format!(
                "signature checked with gpgv: {} has a good signature by key {} ({}) from keyring {}",
                self.signed_file.as_deref().unwrap_or("the index"),
                self.fingerprint.as_deref().unwrap_or("?"),
                self.signer.as_deref().unwrap_or("?"),
                self.keyring
                    .as_ref()
                    .map(|k| k.display().to_string())
                    .unwrap_or_default()
            )
        } else if self.pinned {
            "sha256 pinned with --sha256".into()
        } else {
            format!(
                "NOT authenticated ({})",
                self.not_authenticated.as_deref().unwrap_or("no signature")
            )
        }
    }
}

/// The tree metadata file's content: the tree and its trust facts.
#[derive(serde::Serialize, serde::Deserialize)]
struct TreeMeta {
    #[serde(flatten)]
    tree: SourceTree,
    /// Absent in trees extracted by a labctl that did not record trust yet.
    #[serde(default)]
    trust: Option<Trust>,
}

/// The trust facts recorded with an extracted tree (default: nothing authenticated, for
/// trees extracted before they were recorded, or not extracted by labctl, and then the
/// reason says which).
pub fn tree_trust(tree: &Path) -> Trust {
    let meta = std::fs::read(tree.join(TREE_META))
        .ok()
        .and_then(|b| serde_json::from_slice::<TreeMeta>(&b).ok());
    match meta {
        Some(TreeMeta { trust: Some(t), .. }) => t,
        Some(_) => Trust {
            not_authenticated: Some(
                "extracted by an older labctl that did not record how it was verified; fetch it into a fresh home (or remove it with `labctl cache prune --kind src --all`) to verify it again".into(),
            ),
            ..Trust::default()
        },
        None => Trust {
            not_authenticated: Some("not extracted by labctl".into()),
            ..Trust::default()
        },
    }
}

/// A resolved, not yet downloaded release.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Release {
    pub version: KernelVersion,
    /// `kernel.org`, `debian <suite>`, `url` or `path`.
    pub source: String,
    pub url: String,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// What the checksum comes from and what was (not) checked.
    pub verified: String,
    /// The signature facts behind the checksum.
    pub trust: Trust,
}

/// A verified, extracted kernel tree (read-only after extraction).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SourceTree {
    pub version: KernelVersion,
    pub path: PathBuf,
    pub sha256: String,
    pub source: String,
    pub url: String,
    /// How the tarball was verified (e.g. "sha256 and size from Debian's bullseye index").
    #[serde(default)]
    pub verified: String,
    /// True when this fetch reused an existing tree (no download, no extraction).
    #[serde(default, skip_deserializing)]
    pub reused: bool,
}

/// The tree about to be extracted at `dest`. A folder already there without metadata is
/// not ours to trust (e.g. left by a crash mid-rename): it is removed first.
fn fresh_tree(dest: &Path, rel: &Release, sha: &str) -> Result<SourceTree, SourceError> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| SourceError::Io {
            op: "remove untrusted",
            path: dest.to_path_buf(),
            source: e,
        })?;
    }
    Ok(SourceTree {
        version: rel.version,
        path: dest.to_path_buf(),
        sha256: sha.to_string(),
        source: rel.source.clone(),
        url: rel.url.clone(),
        verified: rel.verified.clone(),
        reused: false,
    })
}

/// `src/linux-<ver>-<sha8>`.
pub fn tree_dir(home: &Home, v: &KernelVersion, sha256: &str) -> PathBuf {
    home.src()
        .join(format!("linux-{v}-{}", &sha256[..8.min(sha256.len())]))
}

/// Every extracted tree under the home (those with metadata), oldest version first.
pub fn local_trees(home: &Home) -> Vec<SourceTree> {
    let mut out: Vec<SourceTree> = std::fs::read_dir(home.src())
        .map(|rd| {
            rd.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .filter_map(|e| read_meta(&e.path()))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.version.cmp(&b.version).then(a.path.cmp(&b.path)));
    out
}

fn read_meta(dir: &Path) -> Option<SourceTree> {
    let b = std::fs::read(dir.join(TREE_META)).ok()?;
    let mut t: SourceTree = serde_json::from_slice(&b).ok()?;
    t.path = dir.to_owned();
    Some(t)
}

fn source_matches(t: &SourceTree, spec: &SourceSpec) -> bool {
    match spec {
        SourceSpec::Auto => true,
        SourceSpec::KernelOrg => t.source == "kernel.org",
        SourceSpec::Debian => t.source.starts_with("debian"),
        SourceSpec::Url(u) => t.url == *u,
        SourceSpec::Path(_) => false, // decided by hashing the local tarball
    }
}

/// Read VERSION/PATCHLEVEL/SUBLEVEL from a tree's top Makefile.
pub fn makefile_version(tree: &Path) -> Option<KernelVersion> {
    let text = std::fs::read_to_string(tree.join("Makefile")).ok()?;
    let get = |k: &str| -> Option<u32> {
        text.lines().take(20).find_map(|l| {
            let (a, b) = l.split_once('=')?;
            (a.trim() == k).then(|| b.trim().parse().ok()).flatten()
        })
    };
    Some(KernelVersion::new(
        get("VERSION")?,
        get("PATCHLEVEL")?,
        get("SUBLEVEL").unwrap_or(0),
    ))
}

/// Resolve, download (or reuse), verify and extract.
pub fn fetch(
    home: &Home,
    req: &VersionReq,
    spec: &SourceSpec,
    opts: &FetchOptions,
    sink: &dyn EventSink,
) -> Result<SourceTree, SourceError> {
    let timer = sink.stage(Stage::Fetch, format!("linux {req} from {spec}"));
    // Temporary files and folders of runs that were killed (their pid is gone).
    for dir in [home.src(), home.downloads(), home.indexes()] {
        for p in crate::home::clean_stale_temps(&dir) {
            sink.debug(format!("removed {} (left by a run that died)", p.display()));
        }
    }
    // Fast path: an exact version already extracted from a compatible source (and, with
    // --require-signature, authenticated when it was fetched).
    if let VersionReq::Exact(v) = req {
        if let Some(mut t) = local_trees(home).into_iter().find(|t| {
            t.version == *v
                && source_matches(t, spec)
                && (!opts.require_signature || {
                    let tr = tree_trust(&t.path);
                    tr.authenticated || tr.pinned
                })
        }) {
            t.reused = true;
            sink.info(format!(
                "linux {v}: using the extracted tree {}",
                t.path.display()
            ));
            timer.ok();
            return Ok(t);
        }
    }
    let r = match spec {
        SourceSpec::Path(p) => fetch_path(home, req, p, opts, sink),
        SourceSpec::Url(u) => fetch_url(home, req, u, opts, sink),
        SourceSpec::KernelOrg => fetch_from(home, req, &[Remote::KernelOrg], opts, sink),
        SourceSpec::Debian => fetch_from(home, req, &[Remote::Debian], opts, sink),
        SourceSpec::Auto => fetch_from(home, req, &[Remote::KernelOrg, Remote::Debian], opts, sink),
    };
    if r.is_ok() {
        timer.ok();
    }
    r
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Remote {
    KernelOrg,
    Debian,
}

/// Candidates for a request, every version the remote has, and per-suite problems.
type Resolved = (Vec<Release>, Vec<KernelVersion>, Vec<String>);
/// A finished download: the file, its sha256 and size.
type Downloaded = Result<(PathBuf, String, u64), SourceError>;

/// Candidates a remote offers for `req`, and all the versions it has in that series.
fn resolve_remote(
    home: &Home,
    http: &Http,
    remote: Remote,
    req: &VersionReq,
    opts: &FetchOptions,
    sink: &dyn EventSink,
) -> Result<Resolved, SourceError> {
    match remote {
        Remote::KernelOrg => {
            let base = opts.kernel_org_base();
            let (major, _) = req.series();
            let versions = kernel_org::list(http, &base, major)?;
            let mut out = Vec::new();
            if let Some(v) = req.pick(&versions) {
                let (sha, trust) = kernel_org::checksum_for(home, http, &base, &v, opts, sink)?;
                let verified = if trust.authenticated {
                    format!(
                        "sha256 from kernel.org's sha256sums.asc; {}",
                        trust.summary()
                    )
                } else {
                    format!(
                        "sha256 from kernel.org's sha256sums.asc; checksum only, signature not checked ({})",
                        trust.not_authenticated.as_deref().unwrap_or("no signature")
                    )
                };
                out.push(Release {
                    version: v,
                    source: "kernel.org".into(),
                    url: kernel_org::tarball_url(&base, &v),
                    sha256: Some(sha),
                    size: None,
                    verified,
                    trust,
                });
            }
            Ok((out, versions, Vec::new()))
        }
        Remote::Debian => {
            let bases = opts.debian_bases()?;
            let listing = debian::list(home, http, &bases, &opts.suites(), opts, sink);
            if let Some(e) = listing.refused.first() {
                return Err(SourceError::Signature { message: e.clone() });
            }
            if listing.suites.is_empty() {
                return Err(SourceError::Network {
                    url: bases
                        .archive
                        .first()
                        .or(bases.security.first())
                        .cloned()
                        .unwrap_or_default(),
                    message: format!(
                        "no Debian index could be read ({})",
                        listing.problems.join("; ")
                    ),
                });
            }
            let out = listing
                .candidates(req)
                .into_iter()
                .map(|c| Release {
                    version: c.entry.version,
                    source: format!("debian {}", c.suite),
                    url: c.url(),
                    sha256: Some(c.entry.sha256.clone()),
                    size: Some(c.entry.size),
                    verified: format!(
                        "sha256 and size from Debian's {} Sources index, whose sha256 is in the signed Release: {}{}",
                        c.suite,
                        c.trust.summary(),
                        match (&c.trust.valid_until, c.trust.expired) {
                            (Some(u), true) => format!("; Valid-Until {u} has passed"),
                            _ => String::new(),
                        }
                    ),
                    trust: c.trust.clone(),
                })
                .collect();
            Ok((out, listing.versions(), listing.problems))
        }
    }
}

fn remote_name(r: Remote) -> &'static str {
    match r {
        Remote::KernelOrg => "kernel.org",
        Remote::Debian => "debian",
    }
}

/// Up to three versions closest to what was asked (same series by patch distance, else
/// the newest of the nearest series).
pub fn nearest(req: &VersionReq, available: &[KernelVersion]) -> Vec<KernelVersion> {
    let (ma, mi) = req.series();
    let mut same: Vec<KernelVersion> = available
        .iter()
        .copied()
        .filter(|v| v.series() == (ma, mi))
        .collect();
    if !same.is_empty() {
        let target = match req {
            VersionReq::Exact(v) => v.patch as i64,
            VersionReq::Series(..) => i64::MAX,
        };
        same.sort_by_key(|v| ((v.patch as i64 - target).abs(), std::cmp::Reverse(v.patch)));
        same.truncate(3);
        same.sort();
        same.dedup();
        return same;
    }
    // Other series: the newest release of each of the 3 closest series.
    let mut series: Vec<(u32, u32)> = available.iter().map(|v| v.series()).collect();
    series.sort();
    series.dedup();
    let key = |s: &(u32, u32)| ((s.0 as i64 - ma as i64) * 1000 + (s.1 as i64 - mi as i64)).abs();
    series.sort_by_key(key);
    let mut out: Vec<KernelVersion> = series
        .iter()
        .take(3)
        .filter_map(|s| available.iter().filter(|v| v.series() == *s).max().copied())
        .collect();
    out.sort();
    out
}

use download::Http;

fn fetch_from(
    home: &Home,
    req: &VersionReq,
    remotes: &[Remote],
    opts: &FetchOptions,
    sink: &dyn EventSink,
) -> Result<SourceTree, SourceError> {
    let mut attempts: Vec<String> = Vec::new();
    let mut available: Vec<KernelVersion> = Vec::new();
    for &remote in remotes {
        let mut net = opts.net();
        if remotes.len() > 1 && remote == Remote::KernelOrg {
            // In auto mode an unreachable kernel.org must cost seconds, not minutes.
            net.connect_timeout = net.connect_timeout.min(Duration::from_secs(5));
            net.retries = net.retries.min(1);
        }
        let http = Http::new(net)?;
        let (candidates, versions, problems) =
            match resolve_remote(home, &http, remote, req, opts, sink) {
                Ok(x) => x,
                Err(e) if matches!(e, SourceError::Signature { .. }) || e.is_interrupted() => {
                    return Err(e)
                }
                Err(e) => {
                    let line = format!("{}: {e}", remote_name(remote));
                    if remotes.len() > 1 {
                        sink.warn(line.clone());
                    }
                    attempts.push(line);
                    continue;
                }
            };
        for p in &problems {
            sink.debug(format!("{}: {p}", remote_name(remote)));
        }
        available.extend(versions.iter().copied());
        if candidates.is_empty() {
            let mut line = format!("{}: has no {req}", remote_name(remote));
            if !problems.is_empty() {
                line.push_str(&format!(" (could not read: {})", problems.join("; ")));
            }
            attempts.push(line);
            continue;
        }
        for rel in candidates {
            if let Err(e) = opts.enforce(&rel) {
                let line = format!("{}: {e}", remote_name(remote));
                if remotes.len() > 1 {
                    sink.warn(line.clone());
                }
                attempts.push(line);
                break;
            }
            // (With --allow-unsigned the opt-out was already reported where it applied.)
            if !rel.trust.authenticated && !opts.allow_unsigned {
                sink.warn(format!(
                    "linux {} from {}: {}",
                    rel.version,
                    rel.source,
                    rel.trust.summary()
                ));
            }
            if let (true, Some(u)) = (rel.trust.expired, &rel.trust.valid_until) {
                sink.warn(format!(
                    "{}: its signed Release expired on {u} (Valid-Until); the signature is good but the index may be old (--require-fresh refuses it)",
                    rel.source
                ));
            }
            match obtain(home, &http, &rel, opts, sink) {
                Ok(t) => return Ok(t),
                Err(SourceError::Http { status: 404, url }) => {
                    let line = format!(
                        "{}: {} is listed but not served (HTTP 404 for {url})",
                        rel.source, rel.version
                    );
                    sink.warn(line.clone());
                    attempts.push(line);
                }
                // In auto mode a transfer that cannot complete from one source (network,
                // timeout, server error) falls through to the next source; a checksum or
                // size mismatch, an unsafe archive or a full disk never does.
                Err(
                    e @ (SourceError::Network { .. }
                    | SourceError::Timeout { .. }
                    | SourceError::Http { .. }),
                ) if remote != *remotes.last().expect("non-empty") => {
                    let line = format!("{}: {e}", remote_name(remote));
                    sink.warn(line.clone());
                    attempts.push(line);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    // Offline or gone: an extracted tree of the series still serves a series request.
    if let VersionReq::Series(..) = req {
        if let Some(mut t) = local_trees(home)
            .into_iter()
            .filter(|t| req.matches(&t.version))
            .max_by_key(|t| t.version)
        {
            sink.warn(format!(
                "no source answered; using the newest extracted {req} tree: {}",
                t.version
            ));
            t.reused = true;
            return Ok(t);
        }
    }
    available.sort();
    available.dedup();
    Err(SourceError::NotFound {
        req: req.to_string(),
        attempts,
        nearest: nearest(req, &available),
    })
}

/// Download (unless cached) and extract one release, under the version's lock.
fn obtain(
    home: &Home,
    http: &Http,
    rel: &Release,
    opts: &FetchOptions,
    sink: &dyn EventSink,
) -> Result<SourceTree, SourceError> {
    let _lock = home.lock(&CacheKey::Tree(rel.version.to_string()))?;
    if let Some(sha) = &rel.sha256 {
        let dir = tree_dir(home, &rel.version, sha);
        if let Some(mut t) = read_meta(&dir) {
            // Same sha256 as this release: its trust applies to the tree too.
            let old = tree_trust(&dir);
            if rel.trust.authenticated && !old.authenticated {
                t.verified = rel.verified.clone();
                let meta = TreeMeta {
                    tree: t.clone(),
                    trust: Some(rel.trust.clone()),
                };
                let data = serde_json::to_vec_pretty(&meta).expect("serializable");
                crate::home::write_atomic(&dir.join(TREE_META), &data)?;
            }
            t.reused = true;
            sink.info(format!(
                "linux {}: using the extracted tree {}",
                rel.version,
                t.path.display()
            ));
            return Ok(t);
        }
    }
    if let (Some(sha), Some(size)) = (&rel.sha256, rel.size) {
        return obtain_streaming(home, http, rel, &sha.to_lowercase(), size, opts, sink);
    }
    let (tarball, sha) = ensure_tarball(home, http, rel, sink)?;
    extract_release(home, rel, &tarball, &sha, opts, sink)
}

/// The verified tarball in `downloads/<sha256>.tar.xz`, downloading it if needed.
fn ensure_tarball(
    home: &Home,
    http: &Http,
    rel: &Release,
    sink: &dyn EventSink,
) -> Result<(PathBuf, String), SourceError> {
    let dl = home.ensure(home.downloads())?;
    let expect = download::Expect {
        url: rel.url.clone(),
        sha256: rel.sha256.clone(),
        size: rel.size,
        restarted: None,
    };
    match &rel.sha256 {
        Some(sha) => {
            let sha = sha.to_lowercase();
            let _l = home.lock(&CacheKey::Download(sha.clone()))?;
            let dest = dl.join(format!("{sha}.tar.xz"));
            if dest.is_file() {
                sink.info(format!("using the verified download {}", dest.display()));
                return Ok((dest, sha));
            }
            let part = dl.join(format!("{sha}.tar.xz.part"));
            let _t = sink.stage(Stage::Download, rel.url.clone());
            let (p, s, _) =
                download::download_verified(http, &expect, &part, |_| dest.clone(), sink)?;
            _t.ok();
            Ok((p, s))
        }
        None => {
            use sha2::Digest;
            let key = hex::encode(sha2::Sha256::digest(rel.url.as_bytes()));
            let _l = home.lock(&CacheKey::Download(format!("url-{}", &key[..16])))?;
            let part = dl.join(format!("url-{}.part", &key[..16]));
            let _t = sink.stage(Stage::Download, rel.url.clone());
            let (p, s, _) = download::download_verified(
                http,
                &expect,
                &part,
                |s| dl.join(format!("{s}.tar.xz")),
                sink,
            )?;
            _t.ok();
            sink.warn(format!(
                "{} has no published checksum; its sha256 is {s} (pass --sha256 to pin it)",
                rel.url
            ));
            Ok((p, s))
        }
    }
}

fn extract_release(
    home: &Home,
    rel: &Release,
    tarball: &Path,
    sha: &str,
    opts: &FetchOptions,
    sink: &dyn EventSink,
) -> Result<SourceTree, SourceError> {
    let dest = tree_dir(home, &rel.version, sha);
    if let Some(mut t) = read_meta(&dest) {
        t.reused = true;
        return Ok(t);
    }
    let tree = fresh_tree(&dest, rel, sha)?;
    let timer = sink.stage(
        Stage::Extract,
        format!("{} → {}", tarball.display(), dest.display()),
    );
    let xo = extract::ExtractOptions {
        assume_free_bytes: opts.assume_free_bytes,
        strip_components: 1,
        reserved: vec![PathBuf::from(TREE_META)],
    };
    extract::extract_tar_xz(tarball, &dest, &xo, sink, |tmp| {
        finish_tree(tmp, &tree, &rel.trust, tarball)
    })?;
    timer.ok();
    Ok(tree)
}

/// Last checks on a tree in its temporary folder: the top Makefile names the expected
/// version; then the metadata file is written (so it is renamed into place with the tree).
fn finish_tree(
    tmp: &Path,
    tree: &SourceTree,
    trust: &Trust,
    tarball: &Path,
) -> Result<(), SourceError> {
    match makefile_version(tmp) {
        Some(v) if v == tree.version => {}
        Some(v) => {
            return Err(SourceError::Archive {
                path: tarball.to_owned(),
                message: format!("its top Makefile says {v}, expected {}", tree.version),
            })
        }
        None => {
            return Err(SourceError::Archive {
                path: tarball.to_owned(),
                message: "no kernel Makefile (VERSION/PATCHLEVEL) at its top".into(),
            })
        }
    }
    // Never through a link: a new temp file (O_EXCL) renamed over the name. The archive
    // cannot ship this name (it is `reserved`), so nothing is replaced either.
    let data = serde_json::to_vec_pretty(&TreeMeta {
        tree: tree.clone(),
        trust: Some(trust.clone()),
    })
    .expect("serializable");
    crate::home::write_atomic(&tmp.join(TREE_META), &data).map_err(|source| SourceError::TreeMeta {
        path: tarball.to_owned(),
        source,
    })
}

/// Reads a `.part` file while another thread downloads into it: waits for more bytes
/// until the download has finished (then EOF) or failed/restarted (then an error).
struct FollowReader {
    file: std::fs::File,
    state: std::sync::Arc<FollowState>,
}

#[derive(Default)]
struct FollowState {
    /// 0 running, 1 finished and verified, 2 failed.
    done: std::sync::atomic::AtomicU8,
    restarted: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::io::Read for FollowReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::sync::atomic::Ordering::SeqCst;
        loop {
            if self.state.restarted.load(SeqCst) {
                return Err(std::io::Error::other("the download started over"));
            }
            // Read the flag before reading: if it says finished, the read below sees
            // every byte, so a 0 then is the real end.
            let done = self.state.done.load(SeqCst);
            let n = self.file.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            match done {
                0 => std::thread::sleep(std::time::Duration::from_millis(20)),
                1 => return Ok(0),
                _ => return Err(std::io::Error::other("the download failed")),
            }
            if crate::process::interrupted() {
                return Err(std::io::Error::other("interrupted"));
            }
        }
    }
}

/// Download and extract at the same time: the extractor follows the `.part` file as it
/// grows. The tree is renamed into place only after the download's size and sha256
/// matched (the `before_rename` step waits for that), so nothing unverified is ever
/// trusted; if the download fails, the extraction is thrown away and the download's
/// error is returned. Needs the expected sha256 and size (Debian's index gives both).
fn obtain_streaming(
    home: &Home,
    http: &Http,
    rel: &Release,
    sha: &str,
    size: u64,
    opts: &FetchOptions,
    sink: &dyn EventSink,
) -> Result<SourceTree, SourceError> {
    use std::sync::atomic::Ordering::SeqCst;
    let dl = home.ensure(home.downloads())?;
    let _l = home.lock(&CacheKey::Download(sha.to_string()))?;
    let final_path = dl.join(format!("{sha}.tar.xz"));
    if final_path.is_file() {
        return extract_release(home, rel, &final_path, sha, opts, sink);
    }
    // Room for the download and for a tree of ~10x its size, before fetching anything.
    let available = match opts.assume_free_bytes {
        Some(a) => a,
        None => crate::home::free_space(&dl)?,
    };
    extract::check_space(
        &dl,
        extract::needed_bytes(size.saturating_mul(10)).saturating_add(size),
        available,
    )?;
    let part = dl.join(format!("{sha}.tar.xz.part"));
    let io = |op: &'static str| {
        let p = part.clone();
        move |e| SourceError::Io {
            op,
            path: p,
            source: e,
        }
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .map_err(io("create"))?;
    let state = std::sync::Arc::new(FollowState::default());
    let reader = FollowReader {
        file: std::fs::File::open(&part).map_err(io("open"))?,
        state: state.clone(),
    };
    let expect = download::Expect {
        url: rel.url.clone(),
        sha256: Some(sha.to_string()),
        size: Some(size),
        restarted: Some(state.restarted.clone()),
    };
    let dest = tree_dir(home, &rel.version, sha);
    let tree = fresh_tree(&dest, rel, sha)?;
    let download_result: std::sync::Mutex<Option<Downloaded>> = Default::default();
    let quiet_extract = NoExtractProgress(sink, &state);
    let extracted = std::thread::scope(|sc| {
        let timer = sink.stage(
            Stage::Download,
            format!("{} (extracting as it arrives)", rel.url),
        );
        sc.spawn(|| {
            let r = download::download_verified(http, &expect, &part, |_| final_path.clone(), sink);
            state.done.store(if r.is_ok() { 1 } else { 2 }, SeqCst);
            *download_result.lock().unwrap() = Some(r);
        });
        let xo = extract::ExtractOptions {
            assume_free_bytes: opts.assume_free_bytes,
            strip_components: 1,
            reserved: vec![PathBuf::from(TREE_META)],
        };
        // Space check before the size is known exactly: 10x the compressed size.
        let r = extract::extract_stream(
            reader,
            &final_path,
            size,
            size.saturating_mul(10),
            &dest,
            &xo,
            &quiet_extract,
            |tmp| {
                while state.done.load(SeqCst) == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                if state.done.load(SeqCst) != 1 || state.restarted.load(SeqCst) {
                    return Err(SourceError::StreamVoid);
                }
                finish_tree(tmp, &tree, &rel.trust, &final_path)
            },
        );
        if r.is_ok() {
            timer.ok();
        }
        r
    });
    let download = download_result
        .into_inner()
        .unwrap()
        .expect("download thread finished");
    match (download, extracted) {
        (Err(e), _) => Err(e),
        (Ok(_), Ok(_)) if !state.restarted.load(SeqCst) => Ok(tree),
        (
            Ok((p, _, _)),
            Err(
                e @ (SourceError::Io { .. }
                | SourceError::Archive { .. }
                | SourceError::ArchiveIo { .. }
                | SourceError::TreeMeta { .. }
                | SourceError::StreamVoid
                | SourceError::Home(_)),
            ),
        ) if !e.is_interrupted() => {
            // The streamed copy was void (restart) or unreadable mid-download: extract
            // the verified file the ordinary way.
            extract_release(home, rel, &p, sha, opts, sink)
        }
        (Ok((p, _, _)), Ok(_)) => {
            let _ = std::fs::remove_dir_all(&dest);
            extract_release(home, rel, &p, sha, opts, sink)
        }
        (Ok(_), Err(e)) => Err(e),
    }
}

/// Drops extraction progress while the download's bar is the one being shown.
struct NoExtractProgress<'a>(&'a dyn EventSink, &'a FollowState);
impl EventSink for NoExtractProgress<'_> {
    fn emit(&self, event: crate::events::Event) {
        let downloading = self.1.done.load(std::sync::atomic::Ordering::SeqCst) == 0;
        if !(downloading
            && matches!(&event, crate::events::Event::Progress { stage, .. } if *stage == Stage::Extract))
        {
            self.0.emit(event)
        }
    }
}

/// Version from a tarball name: `linux-5.10.46.tar.xz` or `linux_5.10.46.orig.tar.xz`.
pub fn version_from_name(name: &str) -> Option<KernelVersion> {
    let base = name.rsplit('/').next()?;
    let v = base
        .strip_prefix("linux-")
        .and_then(|r| r.strip_suffix(".tar.xz"))
        .or_else(|| {
            base.strip_prefix("linux_")
                .and_then(|r| r.strip_suffix(".orig.tar.xz"))
        })?;
    KernelVersion::parse_plain(v)
}

fn check_req(req: &VersionReq, v: KernelVersion, what: &str) -> Result<(), SourceError> {
    if req.matches(&v) {
        Ok(())
    } else {
        Err(SourceError::Usage(format!(
            "{what} is linux {v}, but {req} was asked for"
        )))
    }
}

fn fetch_url(
    home: &Home,
    req: &VersionReq,
    url: &str,
    opts: &FetchOptions,
    sink: &dyn EventSink,
) -> Result<SourceTree, SourceError> {
    let v = version_from_name(url)
        .ok_or_else(|| SourceError::Usage(format!("cannot tell the kernel version from {url:?}: expected a name like linux-5.10.46.tar.xz")))?;
    check_req(req, v, url)?;
    let http = Http::new(opts.net())?;
    let verified = match &opts.sha256 {
        Some(_) => "sha256 given with --sha256".to_string(),
        None => "no checksum published for a plain URL: sha256 computed locally, nothing verified"
            .to_string(),
    };
    let trust = match &opts.sha256 {
        Some(_) => Trust {
            pinned: true,
            ..Trust::default()
        },
        None => Trust::unsigned("a plain URL: nothing publishes its checksum"),
    };
    let rel = Release {
        version: v,
        source: "url".into(),
        url: url.to_string(),
        sha256: opts.sha256.clone(),
        size: None,
        verified,
        trust,
    };
    opts.enforce(&rel)?;
    obtain(home, &http, &rel, opts, sink)
}

fn fetch_path(
    home: &Home,
    req: &VersionReq,
    p: &Path,
    opts: &FetchOptions,
    sink: &dyn EventSink,
) -> Result<SourceTree, SourceError> {
    let meta = std::fs::metadata(p).map_err(|e| SourceError::Io {
        op: "read",
        path: p.to_owned(),
        source: e,
    })?;
    if meta.is_dir() {
        if opts.require_signature {
            return Err(SourceError::Unverified {
                what: p.display().to_string(),
                why: "a local tree has no checksum or signature".into(),
            });
        }
        let v = makefile_version(p).ok_or_else(|| {
            SourceError::Usage(format!(
                "{} is not a kernel tree: its Makefile has no VERSION/PATCHLEVEL",
                p.display()
            ))
        })?;
        check_req(req, v, &p.display().to_string())?;
        let path = p.canonicalize().map_err(|e| SourceError::Io {
            op: "resolve",
            path: p.to_owned(),
            source: e,
        })?;
        return Ok(SourceTree {
            version: v,
            path: path.clone(),
            sha256: String::new(),
            source: "path".into(),
            url: path.display().to_string(),
            verified: "a local tree, used as it is (not copied, not verified)".into(),
            reused: true,
        });
    }
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let v = version_from_name(&name).ok_or_else(|| {
        SourceError::Usage(format!(
            "cannot tell the kernel version from {:?}: expected a name like linux-5.10.46.tar.xz",
            p.display()
        ))
    })?;
    check_req(req, v, &p.display().to_string())?;
    // A FIFO or a device would hang the hash or never end.
    crate::home::regular_file(p, "--source", download::MAX_TARBALL)?;
    let sha = download::sha256_file(p).map_err(|e| SourceError::Io {
        op: "read",
        path: p.to_owned(),
        source: e,
    })?;
    if let Some(want) = &opts.sha256 {
        if !want.eq_ignore_ascii_case(&sha) {
            return Err(SourceError::ChecksumMismatch {
                url: p.display().to_string(),
                expected: want.to_lowercase(),
                actual: sha,
            });
        }
    }
    let _lock = home.lock(&CacheKey::Tree(v.to_string()))?;
    if let Some(mut t) = read_meta(&tree_dir(home, &v, &sha)) {
        t.reused = true;
        return Ok(t);
    }
    let verified = if opts.sha256.is_some() {
        "sha256 given with --sha256"
    } else {
        "a local tarball: sha256 computed, nothing to verify against"
    };
    let trust = match &opts.sha256 {
        Some(_) => Trust {
            pinned: true,
            ..Trust::default()
        },
        None => Trust::unsigned("a local tarball: nothing to verify it against"),
    };
    let rel = Release {
        version: v,
        source: "path".into(),
        url: p.display().to_string(),
        sha256: Some(sha.clone()),
        size: Some(meta.len()),
        verified: verified.into(),
        trust,
    };
    opts.enforce(&rel)?;
    extract_release(home, &rel, p, &sha, opts, sink)
}

/// What one remote offers (for `kernel list --remote`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RemoteListing {
    pub source: String,
    pub versions: Vec<KernelVersion>,
    /// Set when the source could not be read at all.
    pub error: Option<String>,
    /// Per-suite detail for Debian: (suite, versions).
    pub detail: Vec<(String, Vec<KernelVersion>)>,
}

/// Which versions a listing keeps: everything, one major (`7`) or one series (`5.10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListFilter {
    #[default]
    All,
    Major(u32),
    Series(u32, u32),
}

impl ListFilter {
    pub fn keeps(&self, v: &KernelVersion) -> bool {
        match *self {
            ListFilter::All => true,
            ListFilter::Major(m) => v.major == m,
            ListFilter::Series(a, b) => v.series() == (a, b),
        }
    }
    /// Parse `7`, `v7`, `5.10` (not an exact release).
    pub fn parse(s: &str) -> Option<ListFilter> {
        let t = s.trim().trim_start_matches('v');
        if let Ok(m) = t.parse::<u32>() {
            return Some(ListFilter::Major(m));
        }
        match t.parse::<VersionReq>().ok()? {
            VersionReq::Series(a, b) => Some(ListFilter::Series(a, b)),
            VersionReq::Exact(_) => None,
        }
    }
}

/// kernel.org's `v<N>.x/` folders labctl lists when not told which major.
pub const KERNEL_ORG_MAJORS: &[u32] = &[5, 6, 7];

/// Versions each remote offers, optionally limited to one major or series.
pub fn list_remote(
    home: &Home,
    spec: &SourceSpec,
    filter: ListFilter,
    opts: &FetchOptions,
    sink: &dyn EventSink,
) -> Vec<RemoteListing> {
    let keep = |v: &KernelVersion| filter.keeps(v);
    let mut out = Vec::new();
    let remotes: &[Remote] = match spec {
        SourceSpec::KernelOrg => &[Remote::KernelOrg],
        SourceSpec::Debian => &[Remote::Debian],
        _ => &[Remote::KernelOrg, Remote::Debian],
    };
    for &r in remotes {
        let mut net = opts.net();
        if remotes.len() > 1 && r == Remote::KernelOrg {
            net.connect_timeout = net.connect_timeout.min(Duration::from_secs(5));
            net.retries = net.retries.min(1);
        }
        let http = match Http::new(net) {
            Ok(h) => h,
            Err(e) => {
                out.push(RemoteListing {
                    source: remote_name(r).into(),
                    versions: vec![],
                    error: Some(e.to_string()),
                    detail: vec![],
                });
                continue;
            }
        };
        match r {
            Remote::KernelOrg => {
                let majors: Vec<u32> = match filter {
                    ListFilter::Major(m) | ListFilter::Series(m, _) => vec![m],
                    ListFilter::All => KERNEL_ORG_MAJORS.to_vec(),
                };
                let mut versions = Vec::new();
                let mut error = None;
                for m in majors {
                    match kernel_org::list(&http, &opts.kernel_org_base(), m) {
                        Ok(v) => versions.extend(v.into_iter().filter(keep)),
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                }
                out.push(RemoteListing {
                    source: "kernel.org".into(),
                    versions,
                    error,
                    detail: vec![],
                });
            }
            Remote::Debian => {
                let bases = match opts.debian_bases() {
                    Ok(b) => b,
                    Err(e) => {
                        out.push(RemoteListing {
                            source: "debian".into(),
                            versions: vec![],
                            error: Some(e.to_string()),
                            detail: vec![],
                        });
                        continue;
                    }
                };
                let l = debian::list(home, &http, &bases, &opts.suites(), opts, sink);
                for p in l.refused.iter().chain(&l.problems) {
                    sink.warn(format!("debian {p}"));
                }
                let detail: Vec<(String, Vec<KernelVersion>)> = l
                    .suites
                    .iter()
                    .map(|(s, _, e)| {
                        let mut v: Vec<KernelVersion> =
                            e.iter().map(|e| e.version).filter(keep).collect();
                        v.sort();
                        (s.clone(), v)
                    })
                    .collect();
                let versions = l.versions().into_iter().filter(keep).collect();
                let error = l.suites.is_empty().then(|| {
                    l.refused
                        .iter()
                        .chain(&l.problems)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                });
                out.push(RemoteListing {
                    source: "debian".into(),
                    versions,
                    error,
                    detail,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_spec_parsing() {
        assert_eq!("auto".parse::<SourceSpec>().unwrap(), SourceSpec::Auto);
        assert_eq!(
            "kernel.org".parse::<SourceSpec>().unwrap(),
            SourceSpec::KernelOrg
        );
        assert_eq!("debian".parse::<SourceSpec>().unwrap(), SourceSpec::Debian);
        assert!(matches!(
            "https://x/linux-5.10.tar.xz".parse::<SourceSpec>().unwrap(),
            SourceSpec::Url(_)
        ));
        assert!(matches!(
            "./linux-5.10.46.tar.xz".parse::<SourceSpec>().unwrap(),
            SourceSpec::Path(_)
        ));
        assert!("fedora".parse::<SourceSpec>().is_err());
    }

    #[test]
    fn names_to_versions() {
        assert_eq!(
            version_from_name("http://h/p/linux_5.10.46.orig.tar.xz"),
            Some(KernelVersion::new(5, 10, 46))
        );
        assert_eq!(
            version_from_name("linux-6.1.tar.xz"),
            Some(KernelVersion::new(6, 1, 0))
        );
        assert_eq!(version_from_name("linux-6.1.tar.gz"), None);
    }

    #[test]
    fn nearest_versions() {
        let av: Vec<KernelVersion> = ["5.10.13", "5.10.46", "5.10.251", "6.1.4", "6.12.94"]
            .iter()
            .map(|s| KernelVersion::parse_plain(s).unwrap())
            .collect();
        let s = |v: Vec<KernelVersion>| {
            v.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            s(nearest(&"5.10.50".parse().unwrap(), &av)),
            "5.10.13 5.10.46 5.10.251"
        );
        assert_eq!(
            s(nearest(&"5.15".parse().unwrap(), &av)),
            "5.10.251 6.1.4 6.12.94"
        );
    }

    #[test]
    fn makefile_header() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("Makefile"),
            "# SPDX\nVERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 46\nEXTRAVERSION =\n",
        )
        .unwrap();
        assert_eq!(
            makefile_version(d.path()),
            Some(KernelVersion::new(5, 10, 46))
        );
    }
}
