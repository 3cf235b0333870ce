//! kernel.org as a kernel source: `{base}/v{M}.x/linux-{ver}.tar.xz`, verified against
//! `sha256sums.asc` in the same directory; versions come from the directory index HTML.
//! The clearsigned checksum file's PGP signature is checked with `gpgv`
//! ([`super::signature`]) when both gpgv and a keyring are available; otherwise the
//! caller is told plainly that only the checksum was checked, and why. Checksums are
//! read only from the signed block, never from text around it.

use super::download::Http;
use super::signature::{self, Check};
use super::{SourceError, Trust};
use crate::events::{EventSink, SinkExt};
use crate::home::Home;
use crate::version::KernelVersion;

pub const DEFAULT_BASE: &str = "https://cdn.kernel.org/pub/linux/kernel";

pub fn dir_url(base: &str, major: u32) -> String {
    format!("{}/v{}.x/", base.trim_end_matches('/'), major)
}
pub fn tarball_name(v: &KernelVersion) -> String {
    format!("linux-{v}.tar.xz")
}
pub fn tarball_url(base: &str, v: &KernelVersion) -> String {
    format!("{}{}", dir_url(base, v.major), tarball_name(v))
}
pub fn sums_url(base: &str, major: u32) -> String {
    format!("{}sha256sums.asc", dir_url(base, major))
}

/// `<sha256>  <file>` lines of a (possibly clearsigned) sha256sums file.
pub fn parse_sha256sums(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (sha, file) = (w.next()?, w.next()?);
            (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) && w.next().is_none())
                .then(|| (sha.to_lowercase(), file.trim_start_matches('*').to_string()))
        })
        .collect()
}

/// Versions offered by a `v{M}.x/` directory index page (`href="linux-5.10.46.tar.xz"`).
pub fn parse_index_html(html: &str) -> Vec<KernelVersion> {
    let re = regex::Regex::new(r#"href="linux-([0-9]+\.[0-9]+(?:\.[0-9]+)?)\.tar\.xz""#)
        .expect("valid regex");
    let mut v: Vec<KernelVersion> = re
        .captures_iter(html)
        .filter_map(|c| KernelVersion::parse_plain(&c[1]))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Versions in one major's directory.
pub fn list(http: &Http, base: &str, major: u32) -> Result<Vec<KernelVersion>, SourceError> {
    let url = dir_url(base, major);
    let body = http.get_bytes(&url)?;
    Ok(parse_index_html(&String::from_utf8_lossy(&body)))
}

/// Fetch `sha256sums.asc`, check its signature when a keyring is given, and return the
/// sha256 of the version's tarball with the trust facts. The checksum is read only from
/// the signed text: gpgv's verified output when the signature was checked, else the
/// strictly parsed clearsigned body (a file with text outside its signed block is
/// refused either way). With a keyring, a bad or missing signature is refused unless
/// `allow_unsigned`; without one (or without gpgv) the result says "not checked".
pub fn checksum_for(
    home: &Home,
    http: &Http,
    base: &str,
    v: &KernelVersion,
    opts: &super::FetchOptions,
    sink: &dyn EventSink,
) -> Result<(String, Trust), SourceError> {
    let url = sums_url(base, v.major);
    let body = http.get_bytes(&url)?;
    let (text, trust) = match &opts.kernel_org_keyring {
        None => unchecked(
            &url,
            &body,
            "no kernel.org keyring given (--kernel-org-keyring or LABCTL_KERNEL_ORG_KEYRING)",
        )?,
        Some(k) => {
            let what = "kernel.org's sha256sums.asc";
            match signature::verify_clearsigned(home, &body, std::slice::from_ref(k), what, sink)? {
                Check::Good(verified) => {
                    let t = Trust::signed(&url, &verified);
                    (verified.text, t)
                }
                Check::Unverifiable(why) if crate::process::which("gpgv").is_none() => {
                    unchecked(&url, &body, &why)?
                }
                Check::Bad(why) | Check::Unverifiable(why) => {
                    if !opts.allow_unsigned {
                        return Err(SourceError::Signature {
                            message: format!("{why} (--allow-unsigned to use it anyway)"),
                        });
                    }
                    sink.warn(format!("{why}; using it anyway (--allow-unsigned)"));
                    unchecked(&url, &body, &why)?
                }
            }
        }
    };
    let name = tarball_name(v);
    let sha = parse_sha256sums(&String::from_utf8_lossy(&text))
        .into_iter()
        .find(|(_, f)| *f == name)
        .map(|(s, _)| s)
        .ok_or_else(|| SourceError::Index {
            url: url.clone(),
            message: format!("does not list {name} in its signed part"),
        })?;
    Ok((sha, trust))
}

/// The strictly parsed body of an unchecked sha256sums.asc.
fn unchecked(url: &str, body: &[u8], why: &str) -> Result<(Vec<u8>, Trust), SourceError> {
    let text = signature::clearsigned_body(body).map_err(|e| SourceError::Signature {
        message: format!("kernel.org's sha256sums.asc ({url}) is {e}"),
    })?;
    Ok((text, Trust::unsigned(why)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let v = KernelVersion::new(5, 16, 10);
        assert_eq!(
            tarball_url(DEFAULT_BASE, &v),
            "https://cdn.kernel.org/pub/linux/kernel/v5.x/linux-5.16.10.tar.xz"
        );
        assert_eq!(sums_url("http://h/k/", 6), "http://h/k/v6.x/sha256sums.asc");
        assert_eq!(
            tarball_name(&KernelVersion::new(5, 10, 0)),
            "linux-5.10.tar.xz"
        );
    }

    #[test]
    fn sums_from_a_clearsigned_file() {
        let t = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n\
                 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  linux-5.10.46.tar.xz\n\
                 ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789  linux-5.10.46.tar.gz\n\
                 -----BEGIN PGP SIGNATURE-----\niQIzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n";
        let s = parse_sha256sums(t);
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[1].0,
            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
        );
        assert_eq!(s[0].1, "linux-5.10.46.tar.xz");
    }

    #[test]
    fn versions_from_index_html() {
        let h = r#"<a href="../">../</a>
<a href="linux-5.10.tar.xz">linux-5.10.tar.xz</a>  13-Dec-2020 17:30  112M
<a href="linux-5.10.46.tar.xz">linux-5.10.46.tar.xz</a>
<a href="linux-5.10.46.tar.sign">linux-5.10.46.tar.sign</a>
<a href="linux-5.10.9.tar.xz">x</a><a href="patch-5.10.46.xz">p</a>"#;
        let v: Vec<String> = parse_index_html(h).iter().map(|v| v.to_string()).collect();
        assert_eq!(v, ["5.10", "5.10.9", "5.10.46"]);
    }
}
