//! Image references: `HOST[:PORT]/NAME[:TAG][@sha256:DIGEST]`, parsed strictly. labctl
//! has no default registry: the host is always written out, so a reference never
//! silently means a registry the user did not name.

use std::fmt;
use std::str::FromStr;

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host` or `host:port`.
    pub registry: String,
    /// The repository path (`team/lab-kernels`), lowercase components.
    pub repository: String,
    /// The tag, when given (`5.10.46`).
    pub tag: Option<String>,
    /// The manifest digest, when given (`sha256:<64 hex>`).
    pub digest: Option<String>,
}

/// A reference that is not `HOST/NAME[:TAG][@DIGEST]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an image reference: {why} (write HOST[:PORT]/NAME[:TAG][@sha256:DIGEST], e.g. 127.0.0.1:5000/lab/kernels:5.10.46)")]
pub struct BadReference {
    pub text: String,
    pub why: &'static str,
}

fn bad(text: &str, why: &'static str) -> BadReference {
    BadReference {
        text: text.to_string(),
        why,
    }
}

/// `sha256:` followed by 64 lowercase hex digits.
pub fn is_sha256_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A tag as the distribution spec allows: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn is_path_component(c: &str) -> bool {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    if !c
        .bytes()
        .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(&x))
    {
        return false;
    }
    !(c.contains("..") || c.contains("___") || c.contains("._") || c.contains("_."))
}

fn is_host(h: &str) -> bool {
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || h.starts_with('[') => (n, Some(p)),
        _ => (h, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !name.is_empty()
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl FromStr for Reference {
    type Err = BadReference;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim();
        if s.is_empty() {
            return Err(bad(text, "it is empty"));
        }
        if s.contains("://") {
            return Err(bad(text, "leave out the scheme (http:// or https://)"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !is_sha256_digest(d) {
                    return Err(bad(text, "the digest must be sha256: and 64 hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let Some((registry, path)) = rest.split_once('/') else {
            return Err(bad(text, "it names no registry host"));
        };
        let first_is_host =
            registry.contains('.') || registry.contains(':') || registry == "localhost";
        if !first_is_host || !is_host(registry) {
            return Err(bad(
                text,
                "the first part must be the registry host (with a dot or a port, or localhost)",
            ));
        }
        // The tag is after the last ':' of the last path component.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => {
                if !is_tag(t) {
                    return Err(bad(
                        text,
                        "the tag may hold letters, digits, '.', '_' and '-' (at most 128)",
                    ));
                }
                (r, Some(t.to_string()))
            }
            _ => (path, None),
        };
        if repository.is_empty() || !repository.split('/').all(is_path_component) {
            return Err(bad(
                text,
                "the repository name must be lowercase letters, digits and . _ - between slashes",
            ));
        }
        if repository.len() > 255 {
            return Err(bad(
                text,
                "the repository name is longer than 255 characters",
            ));
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl Reference {
    /// What the manifest endpoint is asked for: the digest when given, else the tag.
    pub fn manifest_ref(&self) -> Option<&str> {
        self.digest.as_deref().or(self.tag.as_deref())
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        }
    }

    /// The same repository pinned to a manifest digest (the tag kept for reading).
    pub fn pinned(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// The registry's host without the port (for loopback checks).
    pub fn host(&self) -> &str {
        let r = self.registry.as_str();
        if let Some(end) = r.find(']') {
            return &r[..=end];
        }
        r.rsplit_once(':').map(|(h, _)| h).unwrap_or(r)
    }

    /// Plain HTTP is only ever used for a registry on this machine's loopback.
    pub fn is_loopback(&self) -> bool {
        let h = self.host();
        h == "localhost"
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// A registry repository without a tag (`--registry`, `LABCTL_REGISTRY`): the place a
/// lab kernel of version V is looked up as `REPO:V`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository(pub Reference);

impl FromStr for Repository {
    type Err = BadReference;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let r: Reference = text.trim().trim_end_matches('/').parse()?;
        if r.tag.is_some() || r.digest.is_some() {
            return Err(bad(
                text,
                "a registry for lookups is a repository without a tag or digest (labctl adds the version as the tag)",
            ));
        }
        Ok(Repository(r))
    }
}

impl Repository {
    /// `REPO:<tag>` for a version text (`5.10.46`, `5.10`).
    pub fn for_tag(&self, tag: &str) -> Reference {
        self.0.with_tag(tag)
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_host_port_name_tag_and_digest() {
        let r: Reference = "127.0.0.1:5000/lab/kernels:5.10.46".parse().unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "lab/kernels");
        assert_eq!(r.tag.as_deref(), Some("5.10.46"));
        assert_eq!(r.digest, None);
        assert_eq!(r.manifest_ref(), Some("5.10.46"));
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "127.0.0.1:5000/lab/kernels:5.10.46");

        let r: Reference = format!("registry.example.org/a/b/c@{D}").parse().unwrap();
        assert_eq!(r.repository, "a/b/c");
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), Some(D));
        assert!(!r.is_loopback());

        let r: Reference = format!("localhost/k:v1@{D}").parse().unwrap();
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (Some("v1"), Some(D))
        );
        assert_eq!(r.manifest_ref(), Some(D), "the digest wins");
        assert!(r.is_loopback());

        let r: Reference = "[::1]:5000/k:1".parse().unwrap();
        assert_eq!(r.host(), "[::1]");
        assert!(r.is_loopback());
        let r: Reference = "reg.example:443/k".parse().unwrap();
        assert_eq!((r.host(), r.tag.as_deref()), ("reg.example", None));
    }

    #[test]
    fn refuses_what_is_not_a_reference() {
        for (text, why) in [
            ("", "empty"),
            ("kernels:5.10", "registry host"),
            ("lab/kernels:5.10", "registry host"),
            ("https://reg.example/k:1", "scheme"),
            ("reg.example/K:1", "lowercase"),
            ("reg.example/a//b", "lowercase"),
            ("reg.example/a/../b", "lowercase"),
            ("reg.example/k:bad/tag", "lowercase"),
            ("reg.example/k:-x", "tag"),
            ("reg.example/k@sha256:abc", "digest"),
            ("reg.example/k@md5:0123", "digest"),
            ("reg.example:99999x/k", "registry host"),
        ] {
            let e = text.parse::<Reference>().unwrap_err();
            assert!(e.to_string().contains(why), "{text}: {e}");
            assert!(e.to_string().contains("HOST[:PORT]/NAME"), "{e}");
        }
    }

    #[test]
    fn a_lookup_registry_has_no_tag_and_adds_the_version() {
        let r: Repository = "127.0.0.1:5000/lab/kernels/".parse().unwrap();
        assert_eq!(
            r.for_tag("5.10").to_string(),
            "127.0.0.1:5000/lab/kernels:5.10"
        );
        assert!("127.0.0.1:5000/lab/kernels:5.10"
            .parse::<Repository>()
            .is_err());
    }
}
