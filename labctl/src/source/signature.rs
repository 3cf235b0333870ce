//! OpenPGP signatures on index files, checked with `gpgv` (never with our own crypto):
//! clearsigned files (kernel.org's `sha256sums.asc`, Debian's `InRelease`) and detached
//! ones (Debian's `Release` + `Release.gpg`).
//!
//! What is trusted afterwards is only the text the signature covers: for a clearsigned
//! file, gpgv's `--output` (the verified plaintext, dash-escaping undone). The file must
//! also be exactly one clearsigned message — nothing before its
//! `-----BEGIN PGP SIGNED MESSAGE-----` line, nothing but blank lines after its
//! `-----END PGP SIGNATURE-----` — so text outside the signed block can never be mistaken
//! for signed text, even by a reader that does not use gpgv's output.
//!
//! Keyrings are tried one file at a time, so the result names the keyring file that
//! held the signing key, with the key's fingerprint and user id (from gpgv's
//! `--status-fd` lines). A signature is good when gpgv reports at least one `GOODSIG`
//! and no `BADSIG`; signatures by keys not in the keyring (`NO_PUBKEY`) are ignored
//! when another one is good, as apt does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::SourceError;
use crate::events::EventSink;
use crate::home::Home;
use crate::process::Cmd;

/// A good signature: the text it covers and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed text (for a detached signature, the data itself).
    pub text: Vec<u8>,
    /// The keyring file that held the key.
    pub keyring: PathBuf,
    /// The signing key's primary fingerprint (40 hex digits).
    pub fingerprint: String,
    /// The key's user id, as gpgv printed it.
    pub signer: String,
}

/// What checking a signature concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Good(Verified),
    /// A signature that does not match, or a file that is not one clearsigned message.
    Bad(String),
    /// No usable signature could be checked (no gpgv, no keyring, no key of ours signed it).
    Unverifiable(String),
}

/// The body of a clearsigned message, parsed strictly: the file must start with the
/// `BEGIN PGP SIGNED MESSAGE` line, have only `Hash:` armor headers, dash-escaped body
/// lines, one signature block, and nothing but blank lines after it. Used to refuse
/// malformed files before gpgv runs, and as the text when no signature can be checked.
pub fn clearsigned_body(data: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not UTF-8 text".to_string())?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    if lines.next() != Some("-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(
            "not clearsigned: it must start with -----BEGIN PGP SIGNED MESSAGE-----".into(),
        );
    }
    // Armor headers until the blank line.
    loop {
        match lines.next() {
            None => return Err("not clearsigned: no body".into()),
            Some("") => break,
            Some(h) if h.starts_with("Hash: ") => {}
            Some(h) => return Err(format!("unexpected armor header {h:?}")),
        }
    }
    let mut body: Vec<&str> = Vec::new();
    let mut unescaped: Vec<String> = Vec::new();
    loop {
        match lines.next() {
            None => return Err("not clearsigned: no signature block".into()),
            Some("-----BEGIN PGP SIGNATURE-----") => break,
            Some(l) if l.starts_with("- ") => unescaped.push(l[2..].to_string()),
            Some(l) if l.starts_with('-') => {
                return Err(format!("a body line starts with an unescaped dash: {l:?}"))
            }
            Some(l) => unescaped.push(l.to_string()),
        }
    }
    body.extend(unescaped.iter().map(|s| s.as_str()));
    let mut ended = false;
    for l in lines.by_ref() {
        if l == "-----END PGP SIGNATURE-----" {
            ended = true;
            break;
        }
        if l.starts_with("-----") {
            return Err(format!("unexpected armor line in the signature: {l:?}"));
        }
    }
    if !ended {
        return Err("the signature block does not end".into());
    }
    if let Some(extra) = lines.find(|l| !l.trim().is_empty()) {
        return Err(format!(
            "text after the signature, outside the signed part: {:?}",
            extra.chars().take(60).collect::<String>()
        ));
    }
    // The signed text has no line ending after its last line; the body as a file does.
    let mut out = body.join("\n");
    out.push('\n');
    Ok(out.into_bytes())
}

/// The keyrings labctl checks Debian's `InRelease` against when none is given: the
/// `debian-archive-keyring` package's file, then every key apt itself trusts in
/// `/etc/apt/trusted.gpg.d/` (`*.gpg`, `*.asc`), under `root` (`/` on a real host).
pub fn default_debian_keyrings(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("usr/share/keyrings/debian-archive-keyring.gpg")];
    if let Ok(rd) = std::fs::read_dir(root.join("etc/apt/trusted.gpg.d")) {
        let mut extra: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "gpg" || x == "asc"))
            .collect();
        extra.sort();
        out.extend(extra);
    }
    out.retain(|p| p.is_file());
    out
}

/// Check a clearsigned file against the keyrings, one file at a time.
pub fn verify_clearsigned(
    home: &Home,
    data: &[u8],
    keyrings: &[PathBuf],
    what: &str,
    sink: &dyn EventSink,
) -> Result<Check, SourceError> {
    if let Err(why) = clearsigned_body(data) {
        return Ok(Check::Bad(format!("{what} is {why}")));
    }
    run_gpgv(home, data, None, keyrings, what, sink)
}

/// Check `data` against the detached signature `sig`.
pub fn verify_detached(
    home: &Home,
    data: &[u8],
    sig: &[u8],
    keyrings: &[PathBuf],
    what: &str,
    sink: &dyn EventSink,
) -> Result<Check, SourceError> {
    run_gpgv(home, data, Some(sig), keyrings, what, sink)
}

/// What gpgv's status lines said about one run.
#[derive(Debug, Default, PartialEq, Eq)]
struct Status {
    /// (primary fingerprint, user id) per good signature.
    good: Vec<(String, String)>,
    bad: Vec<String>,
    no_pubkey: Vec<String>,
    plaintexts: usize,
}

fn parse_status(out: &str) -> Status {
    let mut s = Status::default();
    let mut uid = String::new();
    for l in out.lines() {
        let Some(rest) = l.strip_prefix("[GNUPG:] ") else {
            continue;
        };
        let mut w = rest.splitn(3, ' ');
        let (kw, a, b) = (
            w.next().unwrap_or(""),
            w.next().unwrap_or(""),
            w.next().unwrap_or(""),
        );
        match kw {
            "GOODSIG" => uid = b.to_string(),
            // VALIDSIG <fpr> <date> ... <primary fpr>: follows its GOODSIG.
            "VALIDSIG" if !uid.is_empty() => {
                let primary = rest.split(' ').next_back().unwrap_or(a).to_string();
                s.good.push((primary, std::mem::take(&mut uid)));
            }
            "BADSIG" => s.bad.push(format!("{a} {b}")),
            "NO_PUBKEY" => s.no_pubkey.push(a.to_string()),
            "PLAINTEXT" => s.plaintexts += 1,
            _ => {}
        }
    }
    s
}

fn run_gpgv(
    home: &Home,
    data: &[u8],
    sig: Option<&[u8]>,
    keyrings: &[PathBuf],
    what: &str,
    sink: &dyn EventSink,
) -> Result<Check, SourceError> {
    let Some(gpgv) = crate::process::which("gpgv") else {
        return Ok(Check::Unverifiable(
            "gpgv is not installed (Debian: apt install gpgv; `labctl doctor --install`)".into(),
        ));
    };
    let usable: Vec<&PathBuf> = keyrings.iter().filter(|k| k.is_file()).collect();
    if usable.is_empty() {
        return Ok(Check::Unverifiable(if keyrings.is_empty() {
            "no keyring to check it against".into()
        } else {
            format!(
                "no keyring file found ({})",
                keyrings
                    .iter()
                    .map(|k| k.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }));
    }
    // A private scratch folder (its name holds our pid, so a killed run's is cleaned).
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = home.indexes().join(format!(
        ".gpgv.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let io = |op: &'static str, p: &Path| {
        let p = p.to_owned();
        move |e| SourceError::Io {
            op,
            path: p,
            source: e,
        }
    };
    std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
    let result = (|| {
        let data_file = dir.join("data");
        std::fs::write(&data_file, data).map_err(io("write", &data_file))?;
        let sig_file = dir.join("data.sig");
        if let Some(sig) = sig {
            std::fs::write(&sig_file, sig).map_err(io("write", &sig_file))?;
        }
        let out_file = dir.join("out");
        let mut not_ours = Vec::new();
        for k in usable {
            let k = k.canonicalize().unwrap_or_else(|_| k.clone());
            let _ = std::fs::remove_file(&out_file);
            let mut cmd = Cmd::new(&gpgv)
                .arg("--status-fd")
                .arg("1")
                .arg("--keyring")
                .arg(&k);
            cmd = match sig {
                None => cmd.arg("--output").arg(&out_file).arg(&data_file),
                Some(_) => cmd.arg(&sig_file).arg(&data_file),
            };
            let out = cmd
                .env("LC_ALL", "C")
                .timeout(Duration::from_secs(60))
                .run(sink)
                .map_err(|e| match e {
                    crate::process::ProcessError::Interrupted { .. } => SourceError::Interrupted,
                    e => SourceError::Signature {
                        message: format!("cannot run gpgv on {what}: {e}"),
                    },
                })?;
            let st = parse_status(&out.stdout_str());
            if !st.bad.is_empty() {
                return Ok(Check::Bad(format!(
                    "{what}: BAD signature ({}) checked against {}",
                    st.bad.join("; "),
                    k.display()
                )));
            }
            if sig.is_none() && st.plaintexts > 1 {
                return Ok(Check::Bad(format!(
                    "{what} holds more than one signed message"
                )));
            }
            if let Some((fpr, uid)) = st.good.first() {
                let text = match sig {
                    None => std::fs::read(&out_file).map_err(io("read", &out_file))?,
                    Some(_) => data.to_vec(),
                };
                return Ok(Check::Good(Verified {
                    text,
                    keyring: k,
                    fingerprint: fpr.clone(),
                    signer: uid.clone(),
                }));
            }
            if st.no_pubkey.is_empty() {
                // Neither good, bad nor an unknown key: gpgv could not read a signature.
                let why = out.stderr_str();
                let why = why
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                return Ok(Check::Bad(format!(
                    "{what}: no valid signature ({})",
                    why.trim().trim_start_matches("gpgv: ")
                )));
            }
            not_ours.extend(st.no_pubkey);
        }
        not_ours.sort();
        not_ours.dedup();
        Ok(Check::Unverifiable(format!(
            "{what} is signed only by keys in none of the keyrings ({}): {}",
            keyrings
                .iter()
                .map(|k| k.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            not_ours.join(", ")
        )))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\n- -dash line\nlast\n-----BEGIN PGP SIGNATURE-----\n\niQIz\n-----END PGP SIGNATURE-----\n";

    #[test]
    fn strict_clearsigned_parse() {
        assert_eq!(
            clearsigned_body(SIGNED.as_bytes()).unwrap(),
            b"Origin: Debian\n-dash line\nlast\n"
        );
        let before = format!("aaaa  linux-5.10.46.tar.xz\n{SIGNED}");
        assert!(clearsigned_body(before.as_bytes())
            .unwrap_err()
            .contains("must start"));
        let after = format!("{SIGNED}\nbbbb  linux-5.10.46.tar.xz\n");
        assert!(clearsigned_body(after.as_bytes())
            .unwrap_err()
            .contains("after the signature"));
        let twice = format!("{SIGNED}{SIGNED}");
        assert!(clearsigned_body(twice.as_bytes()).is_err());
        let undashed = SIGNED.replace("- -dash", "-dash");
        assert!(clearsigned_body(undashed.as_bytes())
            .unwrap_err()
            .contains("unescaped dash"));
        assert!(clearsigned_body(SIGNED.replace("Hash: SHA256", "Comment: x").as_bytes()).is_err());
        assert!(clearsigned_body(b"plain text\n").is_err());
        // CRLF files parse the same.
        assert_eq!(
            clearsigned_body(SIGNED.replace('\n', "\r\n").as_bytes()).unwrap(),
            b"Origin: Debian\n-dash line\nlast\n"
        );
    }

    #[test]
    fn status_lines() {
        let s = parse_status(
            "[GNUPG:] PLAINTEXT 74 0 \n[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG 6ED0E7B82643E131 1 8 01 1783765031 9 4CB5\n\
             [GNUPG:] NO_PUBKEY 6ED0E7B82643E131\n[GNUPG:] NEWSIG\n\
             [GNUPG:] GOODSIG F8D2585B8783D481 Debian Stable Release Key (12/bookworm) <debian-release@lists.debian.org>\n\
             [GNUPG:] VALIDSIG 4D64FEC119C2029067D6E791F8D2585B8783D481 2026-07-11 1783765141 0 4 0 22 8 01 4D64FEC119C2029067D6E791F8D2585B8783D481\n",
        );
        assert_eq!(s.plaintexts, 1);
        assert_eq!(s.no_pubkey, ["6ED0E7B82643E131"]);
        assert_eq!(
            s.good,
            [(
                "4D64FEC119C2029067D6E791F8D2585B8783D481".to_string(),
                "Debian Stable Release Key (12/bookworm) <debian-release@lists.debian.org>"
                    .to_string()
            )]
        );
        let b = parse_status("[GNUPG:] BADSIG 1234 Mallory\n");
        assert_eq!(b.bad, ["1234 Mallory"]);
    }
}
