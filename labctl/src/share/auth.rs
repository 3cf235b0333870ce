//! Registry credentials and challenges: the docker client's config file
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, `auths.<host>.auth` =
//! base64 of `user:password`), credentials given on the command line, and the
//! `WWW-Authenticate` challenges (Bearer token service or Basic) a registry answers 401 with.

use std::path::{Path, PathBuf};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(
            f,
            "Credentials {{ username: {:?}, password: <hidden> }}",
            self.username
        )
    }
}

/// Why a docker config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid JSON: {source} (fix it, or pass --username and --password-stdin)", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: auths.\"{host}\".auth is not base64 of `user:password` (log in again, or pass --username and --password-stdin)", path.display())]
    BadAuth { path: PathBuf, host: String },
}

/// The docker config file labctl reads: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The credentials for `registry` (`host[:port]`) in the docker config file at `path`;
/// `Ok(None)` when the file does not exist or has no entry for that registry. Entries
/// may be keyed `host`, `host:port` or `https://host/...` (older clients).
pub fn from_docker_config(
    path: &Path,
    registry: &str,
) -> Result<Option<Credentials>, AuthFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthFileError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    parse_docker_config(&text, registry).map_err(|e| match e {
        ParseError::Json(source) => AuthFileError::Json {
            path: path.to_owned(),
            source,
        },
        ParseError::BadAuth(host) => AuthFileError::BadAuth {
            path: path.to_owned(),
            host,
        },
    })
}

#[derive(Debug)]
enum ParseError {
    Json(serde_json::Error),
    BadAuth(String),
}

/// The host part of an `auths` key (`https://host:5000/v1/` → `host:5000`).
fn auth_key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn parse_docker_config(text: &str, registry: &str) -> Result<Option<Credentials>, ParseError> {
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        auth: Option<String>,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        auths: std::collections::BTreeMap<String, Entry>,
    }
    let f: File = serde_json::from_str(text).map_err(ParseError::Json)?;
    let Some((key, e)) = f.auths.iter().find(|(k, _)| auth_key_host(k) == registry) else {
        return Ok(None);
    };
    if let Some(a) = e.auth.as_deref().filter(|a| !a.is_empty()) {
        let raw = base64_decode(a.trim()).ok_or_else(|| ParseError::BadAuth(key.clone()))?;
        let s = String::from_utf8(raw).map_err(|_| ParseError::BadAuth(key.clone()))?;
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| ParseError::BadAuth(key.clone()))?;
        return Ok(Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        }));
    }
    match (&e.username, &e.password) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        })),
        _ => Ok(None),
    }
}

/// Standard base64 (with or without padding).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

impl Credentials {
    /// The `Authorization: Basic …` value.
    pub fn basic(&self) -> String {
        format!(
            "Basic {}",
            base64_encode(format!("{}:{}", self.username, self.password).as_bytes())
        )
    }
}

/// What a 401 asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Get a token from `realm` (with `service` and `scope` as query parameters).
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// Send the credentials with every request.
    Basic,
}

/// Parse a `WWW-Authenticate` header value; None for schemes labctl does not speak.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let h = header.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `k="v", k2=v2` (quoted values may hold commas).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            val.push(n);
                        }
                    }
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_string(), val.trim().to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "user:pa:ss", "ü✓"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).unwrap(), s.as_bytes(), "{s} {e}");
        }
        assert_eq!(base64_encode(b"lab:secret"), "bGFiOnNlY3JldA==");
        assert_eq!(base64_decode("bGFiOnNlY3JldA").unwrap(), b"lab:secret");
        assert!(base64_decode("not base64!").is_none());
    }

    #[test]
    fn docker_config_auths_by_host_and_by_url() {
        let text = r#"{
            "auths": {
                "127.0.0.1:5000": {"auth": "bGFiOnNlY3JldA=="},
                "https://reg.example/v1/": {"auth": "YWxpY2U6dG9rOmVu"},
                "other.example": {"username": "bob", "password": "pw"},
                "broken.example": {"auth": "bm9jb2xvbg=="}
            },
            "credsStore": "desktop"
        }"#;
        let c = parse_docker_config(text, "127.0.0.1:5000")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("lab", "secret")
        );
        let c = parse_docker_config(text, "reg.example").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "tok:en")
        );
        let c = parse_docker_config(text, "other.example").unwrap().unwrap();
        assert_eq!(c.username, "bob");
        assert!(parse_docker_config(text, "none.example").unwrap().is_none());
        assert!(matches!(
            parse_docker_config(text, "broken.example"),
            Err(ParseError::BadAuth(h)) if h == "broken.example"
        ));
        assert!(matches!(
            parse_docker_config("{", "x"),
            Err(ParseError::Json(_))
        ));
        assert!(parse_docker_config("{}", "x").unwrap().is_none());
        // The secret never shows in debug output.
        assert!(!format!("{c:?}").contains("pw"));
    }

    #[test]
    fn a_missing_config_file_is_no_credentials() {
        let d = tempfile::tempdir().unwrap();
        assert!(from_docker_config(&d.path().join("config.json"), "h")
            .unwrap()
            .is_none());
        std::fs::write(d.path().join("config.json"), "[").unwrap();
        let e = from_docker_config(&d.path().join("config.json"), "h").unwrap_err();
        assert!(e.to_string().contains("--password-stdin"), "{e}");
    }

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="reg.example",scope="repository:lab/k:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg.example".into()),
                scope: Some("repository:lab/k:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "a bearer challenge needs a realm"
        );
        assert_eq!(
            Credentials {
                username: "lab".into(),
                password: "secret".into()
            }
            .basic(),
            "Basic bGFiOnNlY3JldA=="
        );
    }
}
