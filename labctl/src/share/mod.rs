//! Sharing finished builds through OCI registries: `kernel push` packs a build folder
//! (kernel, vmlinux with BTF, modules, headers, samples/bpf, the examples-bpf programs
//! and the shared libraries the dynamic ones need, build records) into an OCI artifact
//! with labctl's own media types and uploads it to any OCI-distribution registry;
//! `kernel pull` (and `vm test --from`, and the `--registry` lookup before a build)
//! downloads one, checks every blob against its digest while it arrives, and lands it
//! in the home exactly like a local build: `builds/<key>/`, with a build.json that says
//! where it came from (`origin`).
//!
//! This module owns the reference syntax ([`reference`]), credentials ([`auth`]), the
//! registry client ([`registry`]), the artifact format ([`artifact`]) and
//! [`OciError`]. Invariants: nothing half-written is trusted (a pull works in a
//! temporary folder under `builds/` and is renamed into `builds/<key>` only after every
//! digest matched and every layer unpacked, under the build's [`CacheKey::Build`] lock,
//! the same lock the build pipeline takes); plain HTTP only for a loopback registry or
//! with `--insecure`; no default registry.

pub mod artifact;
pub mod auth;
pub mod reference;
pub mod registry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::build::metadata::{now_unix, BuildJson, BuildResult, Origin};
use crate::build::BuildOutput;
use crate::events::{EventSink, SinkExt, Stage, Unit};
use crate::home::{CacheKey, Home};

pub use artifact::{KernelConfig, Manifest};
pub use auth::Credentials;
pub use reference::{BadReference, Reference, Repository};
pub use registry::{Connect, Registry};

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(transparent)]
    Reference(#[from] BadReference),
    #[error(transparent)]
    AuthFile(#[from] auth::AuthFileError),
    #[error("cannot reach {url}: {}{}", error_chain(source), if source.is_connect() { " (is the registry running, and is the host:port right?)" } else { "" })]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("reading {url} failed: {source}")]
    Read {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{registry} refused access: {why}; {}", if *had_credentials { "check the user name and token (a push needs write access to the package)" } else { "log in (`docker login`, which writes ~/.docker/config.json) or pass --username and --password-stdin" })]
    Unauthorized {
        registry: String,
        why: String,
        had_credentials: bool,
    },
    #[error("could not {what}: {url} answered HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        what: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{reference} does not exist in the registry (push it first: `labctl kernel push VERSION {reference}`)")]
    NotFound { reference: String },
    #[error("{reference} is not a labctl kernel: {why}")]
    BadManifest { reference: String, why: String },
    #[error("{what} does not match its digest: expected {expected}, got {actual}. The registry (or something between) changed the bytes; nothing was kept. Push the build again, or pull by a digest you trust")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what} has {actual} bytes, the manifest says {expected}; nothing was kept")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("layer `{layer}` holds {path}: {why}; refused, nothing was kept")]
    UnsafeEntry {
        layer: String,
        path: String,
        why: String,
    },
    #[error("the artifact's config is not usable: {0}; nothing was kept")]
    BadConfig(String),
    #[error("the artifact's config is not usable: {0}; nothing was kept")]
    ConfigJson(#[source] serde_json::Error),
    #[error("{} holds an unfinished build of the same key; finish it (`labctl kernel build`) or remove it (`labctl cache prune --kind builds`) before pulling", path.display())]
    Unfinished { path: PathBuf },
    #[error("no finished build of linux {version}{} in {}: build it first (`labctl kernel build {version}`)", if toolchain.is_empty() { String::new() } else { format!(" with toolchain {toolchain}") }, home.display())]
    NoBuild {
        version: String,
        toolchain: String,
        home: PathBuf,
    },
    #[error("every reference of one push must name the same repository: {0}")]
    MixedRepositories(String),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The cache (its folders, locks, atomic writes) failed.
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    #[error("not enough free space in {} to pull {reference}: about {} needed, {} available", path.display(), crate::home::human_bytes(*needed), crate::home::human_bytes(*available))]
    DiskSpace {
        path: PathBuf,
        reference: String,
        needed: u64,
        available: u64,
    },
    #[error("interrupted")]
    Interrupted,
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

impl OciError {
    /// True for Ctrl-C, during a transfer or a lock wait.
    pub fn is_interrupted(&self) -> bool {
        match self {
            OciError::Interrupted => true,
            OciError::Home(h) => h.is_interrupted(),
            _ => false,
        }
    }

    /// A registry miss (no such tag or repository), which a lookup before a build treats
    /// as "build it here".
    pub fn is_not_found(&self) -> bool {
        matches!(self, OciError::NotFound { .. })
    }
}

/// The credentials for `registry`: the explicit ones, else the docker config file's.
pub fn credentials(
    registry: &str,
    explicit: Option<Credentials>,
) -> Result<Option<Credentials>, OciError> {
    if explicit.is_some() {
        return Ok(explicit);
    }
    match auth::docker_config_path() {
        Some(p) => Ok(auth::from_docker_config(&p, registry)?),
        None => Ok(None),
    }
}

/// How to reach a registry for one command: explicit credentials (else the docker
/// config file's) and whether plain HTTP is allowed off the loopback.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub credentials: Option<Credentials>,
    pub insecure: bool,
}

impl Access {
    fn connect(&self, r: &Reference) -> Result<Registry, OciError> {
        Registry::connect(
            r,
            &Connect {
                credentials: credentials(&r.registry, self.credentials.clone())?,
                insecure: self.insecure,
            },
        )
    }
}

/// A layer of a push, after packing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushedLayer {
    pub name: String,
    pub digest: String,
    pub size: u64,
    pub files: u64,
    /// False when the registry had it already.
    pub uploaded: bool,
}

/// What a push did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    /// Each reference pushed, pinned to the manifest digest.
    pub references: Vec<String>,
    pub digest: String,
    pub key: String,
    pub release: String,
    pub layers: Vec<PushedLayer>,
    pub total_bytes: u64,
    pub uploaded_bytes: u64,
    pub pack_seconds: f64,
    pub upload_seconds: f64,
    /// Why the examples-bpf programs are not in the artifact (the host could not build
    /// them); a pulling host then builds them itself.
    pub examples_missing: Option<String>,
}

/// Removes a temporary folder when dropped.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(home: &Home, what: &str) -> Result<TempDir, OciError> {
    let builds = home.ensure(home.builds())?;
    // `.<name>.tmp-<pid>`: `home::clean_stale_temps` removes it if this process dies.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let p = builds.join(format!(
        ".{what}.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir(&p).map_err(|source| OciError::Io {
        op: "create directory",
        path: p.clone(),
        source,
    })?;
    Ok(TempDir(p))
}

fn is_program(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::process::is_executable(p) && !name.contains('.')
}

/// The shared libraries (and interpreter) the dynamic programs in `files` need, read
/// from `root` (`/` = this host): guest path → file on this host.
fn library_closure(files: &[PathBuf], root: &Path) -> Result<BTreeMap<String, PathBuf>, OciError> {
    let search = crate::vm::elf::search_dirs_in(root);
    let mut out = BTreeMap::new();
    for f in files {
        let libs = crate::vm::elf::resolve_closure_in(f, root, &search)
            .map_err(|e| OciError::BadConfig(format!("the libraries of {}: {e}", f.display())))?;
        for l in libs {
            // The file itself: a link (`/lib64/ld-linux-x86-64.so.2`, `libelf.so.1`)
            // would not survive in the layer.
            let host = std::fs::canonicalize(&l.host).map_err(|source| OciError::Io {
                op: "resolve",
                path: l.host.clone(),
                source,
            })?;
            out.insert(l.guest, host);
        }
    }
    Ok(out)
}

/// A sysroot layer's sources: each library at its guest path under `prefix`, and an
/// `etc/ld.so.conf` listing their folders (written into `tmp`).
fn sysroot_sources(
    libs: &BTreeMap<String, PathBuf>,
    prefix: &str,
    tmp: &Path,
) -> Result<Vec<artifact::Source>, OciError> {
    let mut v: Vec<artifact::Source> = libs
        .iter()
        .map(|(guest, host)| artifact::Source::new(host, format!("{prefix}{guest}")))
        .collect();
    let dirs = crate::vm::elf::lib_dirs(
        libs.iter()
            .map(|(g, h)| crate::vm::elf::LibFile {
                host: h.clone(),
                guest: g.clone(),
            })
            .collect::<Vec<_>>()
            .iter(),
    );
    let conf = tmp.join(format!("{}-ld.so.conf", prefix.replace('/', "_")));
    crate::home::write_atomic(&conf, format!("{}\n", dirs.join("\n")).as_bytes())?;
    v.push(artifact::Source::new(
        conf,
        format!("{prefix}/etc/ld.so.conf"),
    ));
    Ok(v)
}

/// Push the finished build `out` to every reference in `refs` (one repository, one or
/// more tags): pack the layers, upload what the registry lacks, store the manifest
/// under each tag.
pub fn push(
    home: &Home,
    out: &BuildOutput,
    refs: &[Reference],
    access: &Access,
    sink: &dyn EventSink,
) -> Result<Pushed, OciError> {
    let first = refs
        .first()
        .ok_or_else(|| OciError::MixedRepositories("no reference given".into()))?;
    for r in refs {
        if r.registry != first.registry || r.repository != first.repository {
            return Err(OciError::MixedRepositories(format!("{first} and {r}")));
        }
    }
    let meta = BuildJson::read(&out.dir)
        .filter(|b| b.is_complete())
        .ok_or_else(|| OciError::NoBuild {
            version: out.release.clone(),
            toolchain: String::new(),
            home: home.root().to_path_buf(),
        })?;
    let key = meta.key.clone();
    let tmp = temp_dir(home, &format!("push-{key}"))?;

    // The kernel's own bpftool (the suite's bpftool test): a pulled build has no tree
    // to make it from.
    let bpftool = match crate::build::tools::ensure(
        home,
        out,
        &meta.toolchain.userland,
        crate::build::tools::KernelTool::Bpftool,
        sink,
    ) {
        Ok(p) => Some(p),
        Err(e) => {
            sink.warn(format!("the kernel's bpftool is not in the artifact (the bpftool test then skips on a pulling host): {e}"));
            None
        }
    };

    // The examples the suite runs: a pulling host needs no compiler for them.
    let (examples, examples_missing) = match crate::suite::examples::build(
        home,
        &crate::suite::examples::Target::host(),
        sink,
    ) {
        Ok(ex) => (Some(ex), None),
        Err(e) => {
            sink.warn(format!("the examples-bpf programs are not in the artifact (a pulling host builds them itself): {e}"));
            (None, Some(e.to_string()))
        }
    };

    let t = sink.stage(Stage::Pack, format!("packing build {key} into layers"));
    let mut packed: Vec<(String, artifact::Packed)> = Vec::new();
    {
        // Held while packing: the build pipeline and `cache prune` take the same lock.
        let _lock = home.lock(&CacheKey::Build(key.clone()))?;
        let d = &out.dir;
        let mut layers: Vec<(&str, Vec<artifact::Source>)> = vec![(
            "kernel",
            ["bzImage", "vmlinux", "config", "System.map"]
                .iter()
                .map(|f| {
                    artifact::Source::new(d.join("artifacts").join(f), format!("artifacts/{f}"))
                })
                .collect(),
        )];
        for (name, dir) in [
            ("modules", &out.modules),
            ("headers", &out.headers),
            ("samples", &out.samples),
        ] {
            if dir.is_dir() {
                layers.push((
                    name,
                    vec![artifact::Source::new(dir, format!("artifacts/{name}"))],
                ));
            }
        }
        if let Some(b) = &bpftool {
            layers.push((
                "tools",
                vec![artifact::Source::new(b, "artifacts/tools/bpftool")],
            ));
        }
        // The samples' (and bpftool's) shared libraries, from the root whose tools built them.
        let programs: Vec<PathBuf> = std::fs::read_dir(&out.samples)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| is_program(p))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .chain(bpftool.clone())
            .collect();
        let root = out.sysroot.clone().unwrap_or_else(|| PathBuf::from("/"));
        let libs = library_closure(&programs, &root)?;
        if !libs.is_empty() {
            layers.push((
                "sysroot",
                sysroot_sources(&libs, "artifacts/sysroot", &tmp.0)?,
            ));
        }
        if let Some(ex) = &examples {
            let exdir = ex.bin.parent().unwrap_or(&ex.bin).to_path_buf();
            layers.push((
                "examples",
                vec![
                    artifact::Source::new(&ex.bin, "artifacts/examples/bin"),
                    artifact::Source::new(exdir.join("link.json"), "artifacts/examples/link.json"),
                ],
            ));
            let loaders: Vec<PathBuf> = crate::suite::examples::OUTPUTS
                .iter()
                .map(|o| ex.bin.join(o))
                .filter(|p| is_program(p))
                .collect();
            let libs = library_closure(&loaders, Path::new("/"))?;
            if !libs.is_empty() {
                layers.push((
                    "examples-sysroot",
                    sysroot_sources(&libs, "artifacts/examples/sysroot", &tmp.0)?,
                ));
            }
        }
        // The headers hello-bcc compiles against (a pulled build has no build tree).
        let obj = d.join("obj");
        if obj.join("include/generated").is_dir() {
            match crate::suite::examples::bcc_headers(home, &obj, &out.release, sink) {
                Ok(h) => layers.push((
                    "bcc-headers",
                    vec![artifact::Source::new(h, "artifacts/bcc-headers")],
                )),
                Err(e) => sink.warn(format!("no BCC headers in the artifact (hello-bcc then has none on a pulling host): {e}")),
            }
        }
        let records: Vec<artifact::Source> = ["build.log", "reproduce.sh", "config.input"]
            .iter()
            .filter(|f| d.join(f).is_file())
            .map(|f| artifact::Source::new(d.join(f), *f))
            .collect();
        if !records.is_empty() {
            layers.push(("records", records));
        }
        for (name, sources) in layers {
            let p = artifact::pack(&sources, &tmp.0.join(format!("{name}.tar.gz")))?;
            if !p.skipped_links.is_empty() {
                sink.debug(format!(
                    "layer {name}: left out {} link(s) into the build tree: {}",
                    p.skipped_links.len(),
                    p.skipped_links.join(", ")
                ));
            }
            sink.info(format!(
                "layer {name}: {} files, {}",
                p.files,
                crate::home::human_bytes(p.size)
            ));
            packed.push((name.to_string(), p));
        }
    }
    let kc = KernelConfig {
        schema: 1,
        key: key.clone(),
        version: meta.version,
        release: out.release.clone(),
        profile: meta.profile.clone(),
        config_hash: meta.config_hash.clone(),
        toolchain: meta.toolchain.userland.to_string(),
        build: meta.clone(),
    };
    let config_bytes = serde_json::to_vec_pretty(&kc).expect("serializable");
    let config_path = tmp.0.join("config.json");
    crate::home::write_atomic(&config_path, &config_bytes)?;
    let pack_seconds = t.ok().as_secs_f64();

    let reg = access.connect(first)?;
    let total: u64 = packed.iter().map(|(_, p)| p.size).sum::<u64>() + config_bytes.len() as u64;
    let t = sink.stage(
        Stage::Push,
        format!("uploading {} to {first}", crate::home::human_bytes(total)),
    );
    let up_start = Instant::now();
    let done = std::sync::atomic::AtomicU64::new(0);
    let report = |n: u64| {
        let d = done.fetch_add(n, std::sync::atomic::Ordering::SeqCst) + n;
        sink.progress(Stage::Push, d, Some(total), Unit::Bytes);
    };
    let mut uploaded_bytes = 0;
    let mut layers_out = Vec::new();
    let config_digest = registry::sha256_digest(&config_bytes);
    let blobs: Vec<(Option<&str>, &str, &Path, u64, u64)> = packed
        .iter()
        .map(|(n, p)| {
            (
                Some(n.as_str()),
                p.digest.as_str(),
                p.path.as_path(),
                p.size,
                p.files,
            )
        })
        .chain(std::iter::once((
            None,
            config_digest.as_str(),
            config_path.as_path(),
            config_bytes.len() as u64,
            0,
        )))
        .collect();
    for (name, digest, path, size, files) in blobs {
        let have = reg.has_blob(digest)?;
        if have {
            report(size);
            sink.debug(format!("{digest} is in the registry already"));
        } else {
            reg.put_blob(digest, path, size, &report)?;
            uploaded_bytes += size;
        }
        if let Some(name) = name {
            layers_out.push(PushedLayer {
                name: name.to_string(),
                digest: digest.to_string(),
                size,
                files,
                uploaded: !have,
            });
        }
    }
    let descs: Vec<artifact::Descriptor> = layers_out
        .iter()
        .map(|l| artifact::Descriptor {
            media_type: artifact::LAYER_TAR_GZIP.into(),
            digest: l.digest.clone(),
            size: l.size,
            annotations: [(artifact::TITLE.to_string(), l.name.clone())]
                .into_iter()
                .collect(),
        })
        .collect();
    let manifest = Manifest::new(
        artifact::Descriptor {
            media_type: artifact::KERNEL_CONFIG.into(),
            digest: config_digest.clone(),
            size: config_bytes.len() as u64,
            annotations: Default::default(),
        },
        descs,
        &kc,
    );
    let bytes = manifest.to_bytes();
    let mut digest = String::new();
    let mut references = Vec::new();
    for r in refs {
        let tag = r.tag.clone().unwrap_or_else(|| out.release.clone());
        digest = reg.put_manifest(&tag, &bytes)?;
        references.push(r.with_tag(&tag).pinned(&digest).to_string());
    }
    let upload_seconds = up_start.elapsed().as_secs_f64();
    t.ok();
    sink.info(format!(
        "pushed linux {} ({key}) as {}: {} uploaded of {} in {:.0}s",
        out.release,
        references.join(", "),
        crate::home::human_bytes(uploaded_bytes),
        crate::home::human_bytes(total),
        upload_seconds
    ));
    Ok(Pushed {
        references,
        digest,
        key,
        release: out.release.clone(),
        layers: layers_out,
        total_bytes: total,
        uploaded_bytes,
        pack_seconds,
        upload_seconds,
        examples_missing,
    })
}

/// What a pull did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pulled {
    pub output: BuildOutput,
    pub reference: String,
    pub digest: String,
    /// The build was in the home already (same key): nothing was downloaded.
    pub reused: bool,
    pub bytes: u64,
    pub seconds: f64,
}

/// Pull `r` into the home. A reference the registry does not know is
/// [`OciError::NotFound`] ([`OciError::is_not_found`]).
pub fn pull(
    home: &Home,
    r: &Reference,
    access: &Access,
    sink: &dyn EventSink,
) -> Result<Pulled, OciError> {
    let started = Instant::now();
    let Some(wanted) = r.manifest_ref() else {
        return Err(OciError::Reference(BadReference {
            text: r.to_string(),
            why: "a pull needs a tag or a digest",
        }));
    };
    let reg = access.connect(r)?;
    let m = reg
        .get_manifest(wanted)?
        .ok_or_else(|| OciError::NotFound {
            reference: r.to_string(),
        })?;
    if let Some(d) = &r.digest {
        if &m.digest != d {
            return Err(OciError::DigestMismatch {
                what: format!("the manifest of {r}"),
                expected: d.clone(),
                actual: m.digest,
            });
        }
    }
    let manifest = Manifest::parse(&m.bytes, &r.to_string())?;
    let tmp = temp_dir(
        home,
        &format!("pull-{}", &m.digest["sha256:".len()..][..12]),
    )?;
    let blobs = tmp.0.join("blobs");
    let tree = tmp.0.join("tree");
    for d in [&blobs, &tree] {
        std::fs::create_dir(d).map_err(|source| OciError::Io {
            op: "create directory",
            path: d.clone(),
            source,
        })?;
    }
    // The config first: it names the build key.
    let cfg_path = blobs.join("config.json");
    if manifest.config.size > 16 << 20 {
        return Err(OciError::BadConfig(format!(
            "its config is {} bytes",
            manifest.config.size
        )));
    }
    reg.get_blob(
        &manifest.config.digest,
        manifest.config.size,
        &cfg_path,
        &|_| {},
    )?;
    let text = std::fs::read(&cfg_path).map_err(|source| OciError::Io {
        op: "read",
        path: cfg_path.clone(),
        source,
    })?;
    let kc: KernelConfig = serde_json::from_slice(&text).map_err(OciError::ConfigJson)?;
    if !artifact::is_build_key(&kc.key) || kc.build.key != kc.key {
        return Err(OciError::BadConfig(format!(
            "`{}` is not a build key",
            kc.key
        )));
    }
    if kc.build.result != BuildResult::Success || kc.build.version != kc.version {
        return Err(OciError::BadConfig(
            "the build it records did not succeed".into(),
        ));
    }
    let dir = home.builds().join(&kc.key);
    let _lock = home.lock(&CacheKey::Build(kc.key.clone()))?;
    if let Some(b) = BuildJson::read(&dir) {
        if b.is_complete() {
            sink.info(format!(
                "linux {} ({}) is in {} already: nothing to download",
                kc.release,
                kc.key,
                dir.display()
            ));
            let mut out = b.output.clone().expect("complete builds have an output");
            out.reused = true;
            return Ok(Pulled {
                output: out,
                reference: r.to_string(),
                digest: m.digest,
                reused: true,
                bytes: 0,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
    }
    if dir.exists() {
        return Err(OciError::Unfinished { path: dir });
    }
    let total: u64 = manifest.layers.iter().map(|l| l.size).sum();
    let t = sink.stage(
        Stage::Pull,
        format!(
            "downloading linux {} ({}) from {r}",
            kc.release,
            crate::home::human_bytes(total)
        ),
    );
    let done = std::sync::atomic::AtomicU64::new(0);
    let report = |n: u64| {
        let d = done.fetch_add(n, std::sync::atomic::Ordering::SeqCst) + n;
        sink.progress(Stage::Pull, d, Some(total), Unit::Bytes);
    };
    let free = crate::home::free_space(&tmp.0).unwrap_or(u64::MAX);
    // Compressed blobs plus what they unpack to (about 4x for vmlinux).
    if free < total.saturating_mul(5) {
        return Err(OciError::DiskSpace {
            path: tmp.0.clone(),
            reference: r.to_string(),
            needed: total.saturating_mul(5),
            available: free,
        });
    }
    for l in &manifest.layers {
        let name = l.title().expect("checked by Manifest::parse");
        let p = blobs.join(format!("{name}.tar.gz"));
        reg.get_blob(&l.digest, l.size, &p, &report)?;
        // Verified: unpack, then drop the compressed copy.
        artifact::unpack(&p, name, &tree)?;
        let _ = std::fs::remove_file(&p);
    }
    t.ok();
    let art = dir.join("artifacts");
    let arch = kc
        .build
        .output
        .as_ref()
        .map(|o| o.arch)
        .unwrap_or_else(crate::arch::Arch::x86_64);
    for f in [arch.image_name.as_str(), "vmlinux", "config"] {
        if !tree.join("artifacts").join(f).is_file() {
            return Err(OciError::BadConfig(format!(
                "its kernel layer has no artifacts/{f}"
            )));
        }
    }
    let mut build = kc.build.clone();
    build.output = Some(BuildOutput {
        dir: dir.clone(),
        image: art.join(&arch.image_name),
        arch,
        vmlinux: art.join("vmlinux"),
        config: art.join("config"),
        modules: art.join("modules"),
        headers: art.join("headers"),
        samples: art.join("samples"),
        release: kc.release.clone(),
        key: kc.key.clone(),
        system_map: art.join("System.map"),
        build_json: dir.join(crate::build::metadata::FILE),
        log: dir.join("build.log"),
        reproduce: dir.join("reproduce.sh"),
        reused: false,
        sysroot: tree
            .join("artifacts/sysroot")
            .is_dir()
            .then(|| art.join("sysroot")),
    });
    build.origin = Some(Origin {
        reference: r.to_string(),
        digest: m.digest.clone(),
        pulled_unix: now_unix(),
    });
    build.write(&tree)?;
    std::fs::rename(&tree, &dir).map_err(|source| OciError::Io {
        op: "rename into place",
        path: dir.clone(),
        source,
    })?;
    drop(tmp);
    let seconds = started.elapsed().as_secs_f64();
    sink.info(format!(
        "pulled linux {} ({}) from {r} in {seconds:.0}s: {}",
        kc.release,
        kc.key,
        dir.display()
    ));
    Ok(Pulled {
        output: build.output.clone().expect("set above"),
        reference: r.to_string(),
        digest: m.digest,
        reused: false,
        bytes: total,
        seconds,
    })
}

/// The tag a lab kernel of `version` (as asked: `5.10.46` or `5.10`) has in a lookup
/// registry: `<version>-lab-<8 hex>`, where the hex digits hash the lab profile's
/// kconfig fragments this labctl carries. A change to `kconfig/` is a new tag, so a
/// registry never hands out a kernel configured by other fragments. Another
/// architecture than x86_64 is named in the tag (`<version>-lab-arm64-<8 hex>`) and its
/// file's fragment lines are hashed too, so the two never share a tag.
pub fn lab_tag(version: &str, arch: &crate::arch::Arch) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in crate::kconfig::fragments_for(&crate::kconfig::Profile::Lab) {
        h.update(f.name.as_bytes());
        h.update([0]);
        h.update(f.text.as_bytes());
        h.update([0]);
    }
    if arch.is_default() {
        return format!("{version}-lab-{}", &hex::encode(h.finalize())[..8]);
    }
    h.update(arch.kconfig.fragment.as_bytes());
    format!(
        "{version}-lab-{}-{}",
        arch.name,
        &hex::encode(h.finalize())[..8]
    )
}

/// Whether `b` is what a lookup of the lab profile with `toolchain` may hand out.
fn fits_lookup(
    b: &BuildJson,
    toolchain: &crate::userland::ToolchainSpec,
    arch: &crate::arch::Arch,
) -> Result<(), String> {
    let built_for = b.output.as_ref().map(|o| o.arch.name.as_str());
    if built_for != Some(arch.name.as_str()) {
        return Err(format!(
            "it was built for {}, not {arch}",
            built_for.unwrap_or("an unknown architecture")
        ));
    }
    if b.profile != "lab" || !b.fragments.is_empty() {
        return Err(format!(
            "it was built with profile {} and fragments {:?}, not the lab profile",
            b.profile, b.fragments
        ));
    }
    if &b.toolchain.userland != toolchain {
        return Err(format!(
            "it was built with toolchain {}, not {toolchain}",
            b.toolchain.userland
        ));
    }
    Ok(())
}

/// Before a build: look the lab kernel `version` up in `repo` (tag [`lab_tag`]) and
/// pull it. `Ok(None)` on a miss (the caller builds as usual) or when what the registry
/// has was built otherwise (said as a warning); errors (refused access, a tampered
/// blob) are errors, never a silent fallback.
pub fn lookup(
    home: &Home,
    repo: &Repository,
    version: &str,
    toolchain: &crate::userland::ToolchainSpec,
    arch: &crate::arch::Arch,
    access: &Access,
    sink: &dyn EventSink,
) -> Result<Option<Pulled>, OciError> {
    let r = repo.for_tag(&lab_tag(version, arch));
    sink.info(format!("looking for linux {version} in {r}"));
    match pull(home, &r, access, sink) {
        Ok(p) => {
            let b = BuildJson::read(&p.output.dir);
            match b.as_ref().map(|b| fits_lookup(b, toolchain, arch)) {
                Some(Ok(())) => Ok(Some(p)),
                Some(Err(why)) => {
                    sink.warn(format!(
                        "{r} does not fit this request ({why}); building here instead"
                    ));
                    Ok(None)
                }
                None => Ok(None),
            }
        }
        Err(e) if e.is_not_found() => {
            sink.info(format!(
                "{r} is not in the registry: building linux {version} here"
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_tags_name_the_version_and_the_fragments() {
        let t = lab_tag("5.10.46", crate::arch::Arch::x86_64());
        assert!(t.starts_with("5.10.46-lab-"), "{t}");
        assert_eq!(t.len(), "5.10.46-lab-".len() + 8);
        assert!(reference::is_tag(&t));
        assert_eq!(t, lab_tag("5.10.46", crate::arch::Arch::x86_64()));
        assert_ne!(lab_tag("5.10", crate::arch::Arch::x86_64()), t);
        // Another architecture never shares a tag with x86_64's build of the version.
        let arm = lab_tag("5.10.46", crate::arch::Arch::by_name("arm64").unwrap());
        assert!(arm.starts_with("5.10.46-lab-arm64-"), "{arm}");
        assert!(reference::is_tag(&arm));
        assert!(
            !t.contains("x86_64"),
            "x86_64 tags keep their old form: {t}"
        );
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = OciError::NotFound {
            reference: "127.0.0.1:5000/k:1".into(),
        };
        assert!(e.is_not_found());
        assert!(e
            .to_string()
            .contains("labctl kernel push VERSION 127.0.0.1:5000/k:1"));
        let e = OciError::Unauthorized {
            registry: "r.example".into(),
            why: "x".into(),
            had_credentials: false,
        };
        assert!(e.to_string().contains("--password-stdin"), "{e}");
        let e = OciError::DigestMismatch {
            what: "blob".into(),
            expected: "sha256:a".into(),
            actual: "sha256:b".into(),
        };
        assert!(e.to_string().contains("nothing was kept"), "{e}");
    }
}
