//! The lab kernel as an OCI artifact: media types, the manifest and config documents,
//! and the layers (tar + gzip) packed from a build folder and unpacked into one, entry
//! by entry, refusing anything that could land outside the folder.
//!
//! Layout (every path in a layer is relative to the build folder `builds/<key>/`):
//!
//! | layer (title annotation) | holds |
//! |---|---|
//! | `kernel`   | `artifacts/{bzImage,vmlinux,config,System.map}` |
//! | `modules`  | `artifacts/modules/lib/modules/<release>/…` (links into the build tree left out) |
//! | `headers`  | `artifacts/headers/include/…` (`make headers_install`) |
//! | `samples`  | `artifacts/samples/…` (samples/bpf programs and BPF objects) |
//! | `examples` | `artifacts/examples/{bin/…,link.json}`: examples-bpf built on the pushing host |
//! | `sysroot`  | `artifacts/sysroot/…`: the shared libraries the dynamic samples need |
//! | `examples-sysroot` | `artifacts/examples/sysroot/…`: the same for dynamic example loaders |
//! | `bcc-headers` | `artifacts/bcc-headers/…`: source + generated headers for hello-bcc (`BCC_KERNEL_SOURCE`) |
//! | `tools`    | `artifacts/tools/bpftool`: the kernel's own bpftool (its libraries go into `sysroot`) |
//! | `records`  | `build.log`, `reproduce.sh`, `config.input` |
//!
//! `build.json` is never in a layer: the puller writes it from the config document, with
//! its own paths and an `origin`.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::OciError;

/// The config document's media type (what makes the artifact a labctl kernel).
pub const KERNEL_CONFIG: &str = "application/vnd.labctl.kernel.v1+json";
/// The artifact type (OCI 1.1 `artifactType`).
pub const ARTIFACT_TYPE: &str = "application/vnd.labctl.kernel.v1";
/// Every layer: a tar archive compressed with gzip.
pub const LAYER_TAR_GZIP: &str = "application/vnd.labctl.kernel.layer.v1.tar+gzip";
/// The annotation naming a layer.
pub const TITLE: &str = "org.opencontainers.image.title";

/// The layers labctl knows, and the path prefixes each may write.
pub const LAYERS: &[(&str, &[&str])] = &[
    (
        "kernel",
        &[
            "artifacts/bzImage",
            "artifacts/vmlinux",
            "artifacts/config",
            "artifacts/System.map",
        ],
    ),
    ("modules", &["artifacts/modules"]),
    ("headers", &["artifacts/headers"]),
    ("samples", &["artifacts/samples"]),
    (
        "examples",
        &["artifacts/examples/bin", "artifacts/examples/link.json"],
    ),
    ("sysroot", &["artifacts/sysroot"]),
    ("examples-sysroot", &["artifacts/examples/sysroot"]),
    ("bcc-headers", &["artifacts/bcc-headers"]),
    ("tools", &["artifacts/tools"]),
    ("records", &["build.log", "reproduce.sh", "config.input"]),
];

/// The prefixes layer `name` may write; None for a layer labctl does not know.
pub fn layer_prefixes(name: &str) -> Option<&'static [&'static str]> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// A blob's descriptor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Descriptor {
    pub fn title(&self) -> Option<&str> {
        self.annotations.get(TITLE).map(String::as_str)
    }
}

/// An OCI image manifest (the fields labctl writes and checks).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// The config document: what was built, and the build's own record.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KernelConfig {
    pub schema: u32,
    /// The build key (`<ver>-<cfg8>-<tool8>`), the folder name under `builds/`.
    pub key: String,
    pub version: crate::KernelVersion,
    /// `make kernelrelease`.
    pub release: String,
    pub profile: String,
    pub config_hash: String,
    /// `host` or `debian:<suite>`.
    pub toolchain: String,
    /// The pushing host's build.json, as it was.
    pub build: crate::build::BuildJson,
}

impl Manifest {
    /// The manifest for a config and layers.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>, kc: &KernelConfig) -> Manifest {
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert("dev.labctl.kernel.key".into(), kc.key.clone());
        annotations.insert("dev.labctl.kernel.release".into(), kc.release.clone());
        annotations.insert("dev.labctl.kernel.profile".into(), kc.profile.clone());
        Manifest {
            schema_version: 2,
            media_type: Some(super::registry::OCI_MANIFEST.into()),
            artifact_type: Some(ARTIFACT_TYPE.into()),
            config,
            layers,
            annotations,
        }
    }

    /// The manifest's bytes (stable: serde writes fields in declaration order).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("serializable")
    }

    /// Parse and check that this is a labctl kernel whose every layer labctl knows.
    pub fn parse(bytes: &[u8], reference: &str) -> Result<Manifest, OciError> {
        let bad = |why: String| OciError::BadManifest {
            reference: reference.to_string(),
            why,
        };
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("it is not an OCI image manifest ({e})")))?;
        if m.schema_version != 2 {
            return Err(bad(format!("schemaVersion is {}, not 2", m.schema_version)));
        }
        if let Some(t) = &m.media_type {
            if t != super::registry::OCI_MANIFEST {
                return Err(bad(format!(
                    "its media type is {t}, not {}",
                    super::registry::OCI_MANIFEST
                )));
            }
        }
        if m.config.media_type != KERNEL_CONFIG {
            return Err(bad(format!(
                "its config is {}, not a labctl kernel ({KERNEL_CONFIG}): is this reference a container image?",
                m.config.media_type
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in std::iter::once(&m.config).chain(&m.layers) {
            if !super::reference::is_sha256_digest(&d.digest) {
                return Err(bad(format!("`{}` is not a sha256 digest", d.digest)));
            }
        }
        for l in &m.layers {
            if l.media_type != LAYER_TAR_GZIP {
                return Err(bad(format!(
                    "layer {} is {}, not {LAYER_TAR_GZIP}",
                    l.digest, l.media_type
                )));
            }
            let Some(name) = l.title() else {
                return Err(bad(format!("layer {} has no {TITLE} annotation", l.digest)));
            };
            if layer_prefixes(name).is_none() {
                return Err(bad(format!(
                    "layer `{name}` is not one labctl knows (a newer labctl pushed it?)"
                )));
            }
            if !seen.insert(name.to_string()) {
                return Err(bad(format!("layer `{name}` appears twice")));
            }
        }
        if !seen.contains("kernel") {
            return Err(bad("it has no `kernel` layer".into()));
        }
        Ok(m)
    }
}

/// A build key as a folder name: `<version>-<8 hex>-<8 hex>`, nothing else.
pub fn is_build_key(key: &str) -> bool {
    let parts: Vec<&str> = key.rsplitn(3, '-').collect();
    parts.len() == 3
        && parts[..2]
            .iter()
            .all(|p| p.len() == 8 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        && crate::KernelVersion::parse_plain(parts[2]).is_some()
}

/// One file (or folder, walked) to put into a layer under `name`.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub name: String,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, name: impl Into<String>) -> Source {
        Source {
            path: path.into(),
            name: name.into(),
        }
    }
}

/// What packing one layer made.
#[derive(Debug, Clone)]
pub struct Packed {
    pub path: PathBuf,
    pub digest: String,
    pub size: u64,
    pub files: u64,
    /// Symbolic links left out (absolute, or leading out of their folder).
    pub skipped_links: Vec<String>,
}

/// Sha256 and byte count of what passes through.
struct HashWriter<W> {
    inner: W,
    hash: Sha256,
    n: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Whether a relative link target stays inside the folder it is written in (lexically).
fn link_stays_inside(entry: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = entry.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::CurDir => {}
            _ => return false,
        }
    }
    true
}

/// Pack `sources` into `out` (a new file) as tar + gzip: folders walked in name order,
/// owner root, mtime 0, modes kept as 0755/0644, so the same files give the same digest.
pub fn pack(sources: &[Source], out: &Path) -> Result<Packed, OciError> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| OciError::Io { op, path, source }
    };
    let f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(io("create", out))?;
    let hw = HashWriter {
        inner: std::io::BufWriter::new(f),
        hash: Sha256::new(),
        n: 0,
    };
    let gz = flate2::write::GzEncoder::new(hw, flate2::Compression::new(6));
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut files = 0u64;
    let mut skipped = Vec::new();
    let mut todo: Vec<(PathBuf, String)> = sources
        .iter()
        .rev()
        .map(|s| (s.path.clone(), s.name.clone()))
        .collect();
    while let Some((path, name)) = todo.pop() {
        let m = std::fs::symlink_metadata(&path).map_err(io("read", &path))?;
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        if m.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(io("read link", &path))?;
            if !link_stays_inside(Path::new(&name), &target) {
                skipped.push(name);
                continue;
            }
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            tar.append_link(&mut h, &name, &target)
                .map_err(io("write", out))?;
        } else if m.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            h.set_mode(0o755);
            tar.append_data(&mut h, format!("{name}/"), std::io::empty())
                .map_err(io("write", out))?;
            let mut kids: Vec<_> = std::fs::read_dir(&path)
                .map_err(io("list", &path))?
                .flatten()
                .map(|e| e.file_name())
                .collect();
            kids.sort();
            for k in kids.into_iter().rev() {
                todo.push((path.join(&k), format!("{name}/{}", k.to_string_lossy())));
            }
        } else if m.is_file() {
            use std::os::unix::fs::PermissionsExt;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(m.len());
            h.set_mode(if m.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            });
            let f = std::fs::File::open(&path).map_err(io("open", &path))?;
            tar.append_data(&mut h, &name, f)
                .map_err(io("write", out))?;
            files += 1;
        }
        if crate::process::interrupted() {
            return Err(OciError::Interrupted);
        }
    }
    let gz = tar.into_inner().map_err(io("write", out))?;
    let mut hw = gz.finish().map_err(io("write", out))?;
    hw.flush().map_err(io("write", out))?;
    let digest = format!("sha256:{}", hex::encode(hw.hash.finalize()));
    let size = hw.n;
    hw.inner
        .into_inner()
        .map_err(|e| OciError::Io {
            op: "write",
            path: out.to_owned(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(io("fsync", out))?;
    Ok(Packed {
        path: out.to_owned(),
        digest,
        size,
        files,
        skipped_links: skipped,
    })
}

/// An entry's path as plain components, refusing absolute paths, `..` and the like.
fn plain_path(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Whether `rel` is one of `prefixes` or below one.
fn under_prefixes(rel: &Path, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| rel.starts_with(p))
        || prefixes.iter().any(|p| Path::new(p).starts_with(rel))
}

/// Unpack the verified layer `blob` (named `layer`) into `dest`: only regular files,
/// folders and links that stay inside; only below the layer's own prefixes; never
/// through a link; never over an existing file. Returns the number of files.
pub fn unpack(blob: &Path, layer: &str, dest: &Path) -> Result<u64, OciError> {
    let prefixes = layer_prefixes(layer).ok_or_else(|| OciError::UnsafeEntry {
        layer: layer.to_string(),
        path: String::new(),
        why: "an unknown layer".into(),
    })?;
    let io = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| OciError::Io { op, path, source }
    };
    let refuse = |path: &Path, why: &str| OciError::UnsafeEntry {
        layer: layer.to_string(),
        path: path.display().to_string(),
        why: why.to_string(),
    };
    let f = std::fs::File::open(blob).map_err(io("open", blob))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    let mut files = 0;
    let entries = ar
        .entries()
        .map_err(|e| refuse(blob, &format!("not a tar archive: {e}")))?;
    for entry in entries {
        if crate::process::interrupted() {
            return Err(OciError::Interrupted);
        }
        let mut e = entry.map_err(|e| refuse(blob, &format!("a broken tar archive: {e}")))?;
        let raw = e
            .path()
            .map_err(|_| refuse(blob, "a path that is not text"))?
            .into_owned();
        let Some(rel) = plain_path(&raw) else {
            return Err(refuse(&raw, "an absolute path or `..`"));
        };
        if !under_prefixes(&rel, prefixes) {
            return Err(refuse(
                &rel,
                "a path outside this layer's place in the build folder",
            ));
        }
        // Never through a link unpacked earlier (or planted): every parent must be a folder.
        let mut cur = dest.to_path_buf();
        for c in rel.parent().into_iter().flat_map(|p| p.components()) {
            cur.push(c);
            match std::fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(refuse(&rel, "a path through a link or a file")),
                Err(_) => std::fs::create_dir(&cur).map_err(io("create directory", &cur))?,
            }
        }
        let target = dest.join(&rel);
        match e.header().entry_type() {
            tar::EntryType::Directory => match std::fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(refuse(&rel, "a folder over a file or link")),
                Err(_) => std::fs::create_dir(&target).map_err(io("create directory", &target))?,
            },
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                use std::os::unix::fs::OpenOptionsExt;
                let mode = e.header().mode().unwrap_or(0o644);
                let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                let mut out = std::fs::File::options()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&target)
                    .map_err(|err| {
                        if err.kind() == std::io::ErrorKind::AlreadyExists {
                            refuse(&rel, "the same path twice")
                        } else {
                            OciError::Io {
                                op: "create",
                                path: target.clone(),
                                source: err,
                            }
                        }
                    })?;
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = e
                        .read(&mut buf)
                        .map_err(|err| refuse(&rel, &format!("a broken entry: {err}")))?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n]).map_err(io("write", &target))?;
                }
                files += 1;
            }
            tar::EntryType::Symlink => {
                let link = e
                    .link_name()
                    .ok()
                    .flatten()
                    .ok_or_else(|| refuse(&rel, "a link without a target"))?
                    .into_owned();
                if !link_stays_inside(&rel, &link) {
                    return Err(refuse(&rel, "a link that leads out of the build folder"));
                }
                std::os::unix::fs::symlink(&link, &target).map_err(|err| {
                    if err.kind() == std::io::ErrorKind::AlreadyExists {
                        refuse(&rel, "the same path twice")
                    } else {
                        OciError::Io {
                            op: "create link",
                            path: target.clone(),
                            source: err,
                        }
                    }
                })?;
            }
            other => {
                return Err(refuse(
                    &rel,
                    &format!(
                        "an entry of type {other:?} (only files, folders and links are allowed)"
                    ),
                ));
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn desc(title: &str) -> Descriptor {
        let mut a = std::collections::BTreeMap::new();
        a.insert(TITLE.to_string(), title.to_string());
        Descriptor {
            media_type: LAYER_TAR_GZIP.into(),
            digest: D.into(),
            size: 10,
            annotations: a,
        }
    }

    fn manifest(layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(super::super::registry::OCI_MANIFEST.into()),
            artifact_type: Some(ARTIFACT_TYPE.into()),
            config: Descriptor {
                media_type: KERNEL_CONFIG.into(),
                digest: D.into(),
                size: 5,
                annotations: Default::default(),
            },
            layers,
            annotations: Default::default(),
        }
    }

    #[test]
    fn manifests_round_trip_and_are_checked() {
        let m = manifest(vec![desc("kernel"), desc("modules")]);
        let bytes = m.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.labctl.kernel.v1","config":{"mediaType":"application/vnd.labctl.kernel.v1+json""#), "{text}");
        assert!(
            text.contains(r#""annotations":{"org.opencontainers.image.title":"kernel"}"#),
            "{text}"
        );
        assert_eq!(Manifest::parse(&bytes, "r").unwrap(), m);

        let cases: Vec<(Manifest, &str)> = vec![
            (manifest(vec![desc("modules")]), "no `kernel` layer"),
            (
                manifest(vec![desc("kernel"), desc("kernel")]),
                "appears twice",
            ),
            (
                manifest(vec![desc("kernel"), desc("rootkit")]),
                "not one labctl knows",
            ),
            (
                {
                    let mut m = manifest(vec![desc("kernel")]);
                    m.config.media_type = "application/vnd.oci.image.config.v1+json".into();
                    m
                },
                "container image",
            ),
            (
                {
                    let mut m = manifest(vec![desc("kernel")]);
                    m.layers[0].digest = "sha256:abc".into();
                    m
                },
                "not a sha256 digest",
            ),
            (
                {
                    let mut m = manifest(vec![desc("kernel")]);
                    m.layers[0].media_type = "application/vnd.oci.image.layer.v1.tar".into();
                    m
                },
                "not application/vnd.labctl",
            ),
            (
                {
                    let mut m = manifest(vec![desc("kernel")]);
                    m.layers[0].annotations.clear();
                    m
                },
                "no org.opencontainers.image.title",
            ),
        ];
        for (m, why) in cases {
            let e = Manifest::parse(&m.to_bytes(), "reg/x:1")
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        let e = Manifest::parse(b"{\"schemaVersion\":1}", "r")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an OCI image manifest"), "{e}");
    }

    #[test]
    fn build_keys() {
        assert!(is_build_key("5.10.46-3f99967b-159baf33"));
        assert!(is_build_key("6.12.107-965476f0-80cfd443"));
        for bad in [
            "",
            "5.10.46",
            "../x-3f99967b-159baf33",
            "5.10.46-3f99967b-159baf3/",
            "5.10.46-3f99967b-159baf33/..",
            "x-3f99967b-159baf33",
        ] {
            assert!(!is_build_key(bad), "{bad}");
        }
    }

    #[test]
    fn link_targets_must_stay_inside() {
        assert!(link_stays_inside(Path::new("a/b/l"), Path::new("c")));
        assert!(link_stays_inside(Path::new("a/b/l"), Path::new("../../x")));
        assert!(!link_stays_inside(
            Path::new("a/b/l"),
            Path::new("../../../x")
        ));
        assert!(!link_stays_inside(
            Path::new("a/l"),
            Path::new("/etc/passwd")
        ));
    }

    #[test]
    fn pack_is_deterministic_and_unpack_restores_it() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("b/artifacts/modules/lib/modules/5.10.46");
        std::fs::create_dir_all(src.join("kernel")).unwrap();
        std::fs::write(src.join("kernel/test_bpf.ko"), b"ko").unwrap();
        std::fs::write(src.join("modules.dep"), b"dep").unwrap();
        std::os::unix::fs::symlink("/work/obj", src.join("build")).unwrap();
        std::os::unix::fs::symlink("modules.dep", src.join("dep-link")).unwrap();
        let sources = [Source::new(
            d.path().join("b/artifacts/modules"),
            "artifacts/modules",
        )];
        let a = pack(&sources, &d.path().join("a.tgz")).unwrap();
        let b = pack(&sources, &d.path().join("b.tgz")).unwrap();
        assert_eq!(a.digest, b.digest, "same files, same digest");
        assert_eq!(
            a.size,
            std::fs::metadata(d.path().join("a.tgz")).unwrap().len()
        );
        assert_eq!(
            a.digest,
            super::super::registry::sha256_digest(&std::fs::read(d.path().join("a.tgz")).unwrap())
        );
        assert_eq!(a.files, 2);
        assert_eq!(
            a.skipped_links,
            ["artifacts/modules/lib/modules/5.10.46/build"]
        );
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        assert_eq!(unpack(&a.path, "modules", &out).unwrap(), 2);
        let m = out.join("artifacts/modules/lib/modules/5.10.46");
        assert_eq!(std::fs::read(m.join("kernel/test_bpf.ko")).unwrap(), b"ko");
        assert_eq!(
            std::fs::read_link(m.join("dep-link")).unwrap(),
            Path::new("modules.dep")
        );
        assert!(!m.join("build").exists());
        // The same layer again: nothing is overwritten.
        let e = unpack(&a.path, "modules", &out).unwrap_err().to_string();
        assert!(e.contains("the same path twice"), "{e}");
        // A layer may only write its own place.
        let out2 = d.path().join("out2");
        std::fs::create_dir(&out2).unwrap();
        let e = unpack(&a.path, "kernel", &out2).unwrap_err().to_string();
        assert!(e.contains("outside this layer's place"), "{e}");
    }

    /// A raw tar.gz with one entry whose header says exactly this.
    fn hostile(path: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
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
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, data).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&b.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn unpack_refuses_hostile_entries() {
        let d = tempfile::tempdir().unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                hostile("../../etc/x", tar::EntryType::Regular, None, b"x"),
                "`..`",
            ),
            (
                hostile("/etc/x", tar::EntryType::Regular, None, b"x"),
                "`..`",
            ),
            (
                hostile(
                    "artifacts/samples/l",
                    tar::EntryType::Symlink,
                    Some("/etc"),
                    b"",
                ),
                "leads out",
            ),
            (
                hostile(
                    "artifacts/samples/l",
                    tar::EntryType::Symlink,
                    Some("../../../x"),
                    b"",
                ),
                "leads out",
            ),
            (
                hostile("artifacts/samples/dev", tar::EntryType::Char, None, b""),
                "only files",
            ),
            (
                hostile(
                    "artifacts/samples/h",
                    tar::EntryType::Link,
                    Some("build.json"),
                    b"",
                ),
                "only files",
            ),
            (
                hostile("build.json", tar::EntryType::Regular, None, b"{}"),
                "outside this layer",
            ),
        ];
        for (i, (blob, why)) in cases.into_iter().enumerate() {
            let p = d.path().join(format!("{i}.tgz"));
            std::fs::write(&p, blob).unwrap();
            let out = d.path().join(format!("out{i}"));
            std::fs::create_dir(&out).unwrap();
            let e = unpack(&p, "samples", &out).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        // Through a link unpacked before: refused.
        let out = d.path().join("through");
        std::fs::create_dir_all(out.join("artifacts/samples")).unwrap();
        std::os::unix::fs::symlink(d.path(), out.join("artifacts/samples/l")).unwrap();
        let p = d.path().join("t.tgz");
        std::fs::write(
            &p,
            hostile("artifacts/samples/l/x", tar::EntryType::Regular, None, b"x"),
        )
        .unwrap();
        let e = unpack(&p, "samples", &out).unwrap_err().to_string();
        assert!(e.contains("through a link"), "{e}");
        assert!(!d.path().join("x").exists());
        // Not gzip at all.
        std::fs::write(&p, b"plain bytes").unwrap();
        assert!(unpack(&p, "samples", &out).is_err());
    }
}
