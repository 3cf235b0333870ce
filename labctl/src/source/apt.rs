//! Reading Debian archive base URLs from the host's apt configuration, so no mirror host
//! is ever written into labctl: deb822 `*.sources` files (`Types:`, `URIs:`, `Suites:`,
//! `Enabled:`) and legacy one-line `deb URL suite component...` entries in
//! `sources.list` / `*.list`. Disabled files (other extensions, `Enabled: no`) and
//! non-deb types are ignored. The security archive is the URI whose suites end in
//! `-security`; everything else that looks like a Debian archive (has a `main` component
//! and a Debian-style suite) is an archive base.

use std::path::Path;

/// One usable apt entry: a base URL and the suites it was configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptEntry {
    pub uri: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
}

/// Base URLs for Debian's main archive and its security archive, in preference order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebianBases {
    pub archive: Vec<String>,
    pub security: Vec<String>,
}

impl DebianBases {
    pub fn is_empty(&self) -> bool {
        self.archive.is_empty() && self.security.is_empty()
    }
    /// The preferred main archive base (the first one apt is configured with).
    pub fn primary_archive(&self) -> Option<&str> {
        self.archive.first().map(String::as_str)
    }
    /// The preferred security archive base.
    pub fn primary_security(&self) -> Option<&str> {
        self.security.first().map(String::as_str)
    }
}

/// Parse deb822 `.sources` text.
pub fn parse_deb822(text: &str) -> Vec<AptEntry> {
    let mut out = Vec::new();
    for para in paragraphs(text) {
        let field = |name: &str| -> Option<String> {
            para.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let words = |name: &str| -> Vec<String> {
            field(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        if field("Enabled").is_some_and(|v| v.trim().eq_ignore_ascii_case("no")) {
            continue;
        }
        let types = words("Types");
        if !types.iter().any(|t| t == "deb" || t == "deb-src") {
            continue;
        }
        let suites = words("Suites");
        let components = words("Components");
        for uri in words("URIs") {
            if let Some(uri) = usable_uri(&uri) {
                out.push(AptEntry {
                    uri,
                    suites: suites.clone(),
                    components: components.clone(),
                });
            }
        }
    }
    out
}

/// Parse legacy one-line `sources.list` text.
pub fn parse_list(text: &str) -> Vec<AptEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words: Vec<&str> = Vec::new();
        // Options in brackets may contain spaces: `deb [ arch=amd64 signed-by=... ] URL ...`.
        let mut rest = line;
        while !rest.is_empty() {
            rest = rest.trim_start();
            if rest.starts_with('[') {
                match rest.find(']') {
                    Some(end) => {
                        rest = &rest[end + 1..];
                        continue;
                    }
                    None => break,
                }
            }
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if end > 0 {
                words.push(&rest[..end]);
            }
            rest = &rest[end..];
        }
        match words.as_slice() {
            [ty, uri, suite, comps @ ..] if *ty == "deb" || *ty == "deb-src" => {
                if let Some(uri) = usable_uri(uri) {
                    out.push(AptEntry {
                        uri,
                        suites: vec![suite.to_string()],
                        components: comps.iter().map(|c| c.to_string()).collect(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

fn usable_uri(uri: &str) -> Option<String> {
    let u = uri.trim();
    let u = u.strip_prefix("mirror+").unwrap_or(u);
    if u.starts_with("http://") || u.starts_with("https://") {
        Some(u.trim_end_matches('/').to_string())
    } else {
        None
    }
}

/// deb822 paragraphs as (field, value) lists; continuation lines are joined with spaces.
pub(crate) fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, v)) = cur.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn is_debian_suite(s: &str) -> bool {
    const NAMES: [&str; 10] = [
        "buster",
        "bullseye",
        "bookworm",
        "trixie",
        "forky",
        "duke",
        "sid",
        "stable",
        "oldstable",
        "testing",
    ];
    let base = s.split(['-', '/']).next().unwrap_or("");
    NAMES.contains(&base)
}

/// Sort entries into archive and security bases (deduplicated, in file order).
pub fn classify(entries: &[AptEntry]) -> DebianBases {
    let mut b = DebianBases::default();
    for e in entries {
        if !e.suites.iter().any(|s| is_debian_suite(s)) || !e.components.iter().any(|c| c == "main")
        {
            continue;
        }
        let security = e
            .suites
            .iter()
            .any(|s| s.ends_with("-security") || s.ends_with("/updates"));
        let list = if security {
            &mut b.security
        } else {
            &mut b.archive
        };
        if !list.contains(&e.uri) {
            list.push(e.uri.clone());
        }
    }
    b
}

/// Read the apt configuration under `root` (normally `/`): `etc/apt/sources.list` and
/// `etc/apt/sources.list.d/*.{list,sources}`.
pub fn read_host(root: &Path) -> DebianBases {
    classify(&read_entries(root))
}

/// Every usable apt entry under `root`, in apt's file order.
pub fn read_entries(root: &Path) -> Vec<AptEntry> {
    let mut entries = Vec::new();
    let main = root.join("etc/apt/sources.list");
    if let Ok(t) = std::fs::read_to_string(&main) {
        entries.extend(parse_list(&t));
    }
    let dir = root.join("etc/apt/sources.list.d");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        let Ok(t) = std::fs::read_to_string(&f) else {
            continue;
        };
        match f.extension().and_then(|e| e.to_str()) {
            Some("sources") => entries.extend(parse_deb822(&t)),
            Some("list") => entries.extend(parse_list(&t)),
            _ => {} // .disabled, .save, .dpkg-old, ...: apt ignores them, so do we
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "\
Types: deb
# a comment
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb
URIs: http://off.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
URIs: https://thirdparty.example/linux/debian
Suites: bookworm
Components: stable

Types: deb
URIs: cdrom:[Debian]/
Suites: bookworm
Components: main
";

    #[test]
    fn deb822_archive_and_security() {
        let b = classify(&parse_deb822(DEB822));
        assert_eq!(b.archive, ["http://mirror.example/debian"]);
        assert_eq!(b.security, ["http://mirror.example/debian-security"]);
    }

    #[test]
    fn legacy_lines_with_options_and_comments() {
        let t = "\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/x.gpg] http://a.example/debian bookworm main contrib
deb-src http://a.example/debian bookworm main
deb http://s.example/debian-security bullseye-security main # trailing
deb http://s.example/debian-security/ bullseye/updates main
rpm http://nope.example/ x main
deb http://ppa.example/ubuntu jammy main
";
        let b = classify(&parse_list(t));
        assert_eq!(b.archive, ["http://a.example/debian"]);
        assert_eq!(b.security, ["http://s.example/debian-security"]);
    }

    #[test]
    fn host_reader_ignores_disabled_files() {
        let d = tempfile::tempdir().unwrap();
        let sl = d.path().join("etc/apt/sources.list.d");
        std::fs::create_dir_all(&sl).unwrap();
        std::fs::write(sl.join("debian.sources"), DEB822).unwrap();
        std::fs::write(
            sl.join("old.list.disabled"),
            "deb http://disabled.example/debian bookworm main\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/apt/sources.list"),
            "deb http://legacy.example/debian bullseye main\n",
        )
        .unwrap();
        let b = read_host(d.path());
        assert_eq!(
            b.archive,
            [
                "http://legacy.example/debian",
                "http://mirror.example/debian"
            ]
        );
        assert_eq!(b.security, ["http://mirror.example/debian-security"]);
    }

    #[test]
    fn empty_config_gives_nothing() {
        let d = tempfile::tempdir().unwrap();
        let b = read_host(d.path());
        assert!(b.is_empty());
        assert_eq!((b.primary_archive(), b.primary_security()), (None, None));
    }

    #[test]
    fn primary_bases_are_the_first_configured() {
        let b = classify(&parse_deb822(DEB822));
        assert_eq!(b.primary_archive(), Some("http://mirror.example/debian"));
        assert_eq!(
            b.primary_security(),
            Some("http://mirror.example/debian-security")
        );
    }
}
