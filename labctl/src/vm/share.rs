//! Shared folders (`--share HOST[:GUEST][:ro]`): a host folder mounted in the hermetic
//! guest over 9p (QEMU's `virtio-9p-pci` with `security_model=none`, the kernel's
//! `NET_9P_VIRTIO` + `9P_FS`, both in the lab fragments), read-write unless `:ro`.
//! Edit on the host, run in the guest; what the guest writes is on the host when the
//! run ends.
//!
//! This module owns the option's syntax, the QEMU arguments, the guest-side mount lines
//! (prepended to the run's script, shell-quoted) and the list of ELF programs found in
//! a share at boot, whose shared libraries the guest image then carries (a loader built
//! on the host runs in the guest). Programs built inside the guest afterwards are not
//! scanned: link them statically, or build them on the host.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::process::shell_quote;

/// One shared folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Absolute, canonical host folder.
    pub host: PathBuf,
    /// Where the guest mounts it (absolute).
    pub guest: String,
    pub readonly: bool,
}

/// A `--share` value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error("--share {arg}: {detail} (syntax: HOST_DIR[:GUEST_DIR][:ro], e.g. --share .:/work or --share ~/src:ro)")]
    Syntax { arg: String, detail: String },
    #[error("--share {arg}: {} is not a folder: {source}", host.display())]
    NotAFolder {
        arg: String,
        host: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--share: two shares mount at {guest}")]
    SameGuestPath { guest: String },
}

impl FromStr for Share {
    type Err = ShareError;

    /// `HOST[:GUEST][:ro|:rw]`. GUEST defaults to the host folder's absolute path, so
    /// paths agree on both sides.
    fn from_str(arg: &str) -> Result<Self, ShareError> {
        let syntax = |detail: &str| ShareError::Syntax {
            arg: arg.to_string(),
            detail: detail.to_string(),
        };
        let mut parts: Vec<&str> = arg.split(':').collect();
        let mut readonly = false;
        if parts.len() > 1 {
            match *parts.last().unwrap_or(&"") {
                "ro" => {
                    readonly = true;
                    parts.pop();
                }
                "rw" => {
                    parts.pop();
                }
                _ => {}
            }
        }
        let (host, guest) = match parts.as_slice() {
            [h] => (*h, None),
            [h, g] => (*h, Some(*g)),
            _ => {
                return Err(syntax(
                    "too many ':' (host paths with ':' cannot be shared)",
                ))
            }
        };
        if host.is_empty() {
            return Err(syntax("the host folder is empty"));
        }
        let host_path = std::fs::canonicalize(host).map_err(|source| ShareError::NotAFolder {
            arg: arg.to_string(),
            host: PathBuf::from(host),
            source,
        })?;
        if !host_path.is_dir() {
            return Err(ShareError::NotAFolder {
                arg: arg.to_string(),
                host: host_path,
                source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
            });
        }
        let guest = match guest {
            Some(g) if g.starts_with('/') && g.len() > 1 => g.trim_end_matches('/').to_string(),
            Some(_) => {
                return Err(syntax(
                    "the guest folder must be an absolute path other than /",
                ))
            }
            None => host_path.to_string_lossy().into_owned(),
        };
        if guest.contains(['\n', '\0']) {
            return Err(syntax("the guest folder has a newline or NUL"));
        }
        Ok(Share {
            host: host_path,
            guest,
            readonly,
        })
    }
}

/// Refuse two shares at one guest path.
pub fn check_distinct(shares: &[Share]) -> Result<(), ShareError> {
    for (i, s) in shares.iter().enumerate() {
        if shares[..i].iter().any(|o| o.guest == s.guest) {
            return Err(ShareError::SameGuestPath {
                guest: s.guest.clone(),
            });
        }
    }
    Ok(())
}

/// The 9p mount tag of the i-th share.
pub fn tag(i: usize) -> String {
    format!("labctl{i}")
}

/// QEMU's option syntax doubles a comma inside a value.
fn qemu_value(p: &Path) -> OsString {
    let s = p.as_os_str().to_string_lossy().replace(',', ",,");
    OsString::from(s)
}

/// `-fsdev local,… -device virtio-9p-pci,…` for every share.
pub fn qemu_args(shares: &[Share]) -> Vec<OsString> {
    let mut a = Vec::new();
    for (i, s) in shares.iter().enumerate() {
        let mut fsdev = OsString::from(format!("local,id=fs{i},path="));
        fsdev.push(qemu_value(&s.host));
        fsdev.push(",security_model=none");
        if s.readonly {
            fsdev.push(",readonly=on");
        }
        a.push("-fsdev".into());
        a.push(fsdev);
        a.push("-device".into());
        a.push(format!("virtio-9p-pci,fsdev=fs{i},mount_tag={}", tag(i)).into());
    }
    a
}

/// Shell lines that mount every share in the guest (before the user's command); a share
/// that does not mount ends the run with exit 2 and says why.
pub fn mount_script(shares: &[Share]) -> String {
    let mut s = String::new();
    for (i, sh) in shares.iter().enumerate() {
        let g = shell_quote(std::ffi::OsStr::new(&sh.guest));
        let opts = format!(
            "trans=virtio,version=9p2000.L,msize=262144,cache=none{}",
            if sh.readonly { ",ro" } else { "" }
        );
        let host = sh.host.to_string_lossy().replace(['\'', '\n'], "?");
        s.push_str(&format!(
            "mkdir -p {g} && mount -t 9p -o {opts} {tag} {g} || {{ echo 'labctl: cannot mount the share of {host} at '{g}' (9p; does the kernel have NET_9P_VIRTIO and 9P_FS?)' >&2; exit 2; }}\n",
            tag = tag(i),
        ));
    }
    s
}

/// ELF programs (executable regular files) in the shares, at most `limit` of them, for
/// their shared-library closures; folders named `.git` are skipped.
pub fn elf_programs(shares: &[Share], limit: usize) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack: Vec<(PathBuf, u32)> = shares.iter().map(|s| (s.host.clone(), 0)).collect();
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                if depth < 6 && e.file_name() != ".git" {
                    stack.push((p, depth + 1));
                }
            } else if t.is_file() {
                let exec = e
                    .metadata()
                    .map(|m| m.permissions().mode() & 0o111 != 0)
                    .unwrap_or(false);
                if exec && is_elf(&p) {
                    out.push(p);
                    if out.len() >= limit {
                        return out;
                    }
                }
            }
        }
    }
    out
}

fn is_elf(p: &Path) -> bool {
    use std::io::Read;
    let mut b = [0u8; 4];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut b))
        .map(|_| &b == b"\x7fELF")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_and_defaults() {
        let d = tempfile::tempdir().unwrap();
        let h = std::fs::canonicalize(d.path()).unwrap();
        let hs = h.to_string_lossy().into_owned();
        let s: Share = hs.parse().unwrap();
        assert_eq!((s.guest.as_str(), s.readonly), (hs.as_str(), false));
        let s: Share = format!("{hs}:/work").parse().unwrap();
        assert_eq!((s.guest.as_str(), s.readonly), ("/work", false));
        let s: Share = format!("{hs}:/work/:ro").parse().unwrap();
        assert_eq!((s.guest.as_str(), s.readonly), ("/work", true));
        let s: Share = format!("{hs}:ro").parse().unwrap();
        assert_eq!((s.guest.as_str(), s.readonly), (hs.as_str(), true));
        assert!(format!("{hs}:work").parse::<Share>().is_err());
        assert!(format!("{hs}:/").parse::<Share>().is_err());
        assert!(format!("{hs}:/a:/b").parse::<Share>().is_err());
        let e = "/no/such/folder".parse::<Share>().unwrap_err();
        assert!(e.to_string().contains("not a folder"), "{e}");
        let f = h.join("file");
        std::fs::write(&f, "x").unwrap();
        assert!(f.to_string_lossy().parse::<Share>().is_err());
        let a: Share = format!("{hs}:/w").parse().unwrap();
        assert!(check_distinct(&[a.clone(), a.clone()]).is_err());
        assert!(check_distinct(&[a, s]).is_ok());
    }

    #[test]
    fn qemu_arguments_escape_commas_and_mark_read_only() {
        let shares = [
            Share {
                host: "/h/a,b".into(),
                guest: "/w".into(),
                readonly: false,
            },
            Share {
                host: "/h/c".into(),
                guest: "/r".into(),
                readonly: true,
            },
        ];
        let a: Vec<String> = qemu_args(&shares)
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            a,
            [
                "-fsdev",
                "local,id=fs0,path=/h/a,,b,security_model=none",
                "-device",
                "virtio-9p-pci,fsdev=fs0,mount_tag=labctl0",
                "-fsdev",
                "local,id=fs1,path=/h/c,security_model=none,readonly=on",
                "-device",
                "virtio-9p-pci,fsdev=fs1,mount_tag=labctl1",
            ]
        );
        let m = mount_script(&shares);
        assert!(
            m.contains(
                "mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none labctl0 /w "
            ),
            "{m}"
        );
        assert!(m.contains(",ro labctl1 /r "), "{m}");
        assert!(m.contains("exit 2"), "{m}");
    }

    #[test]
    fn finds_elf_programs_but_not_scripts_or_data() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("build");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::create_dir_all(d.path().join(".git")).unwrap();
        let bin = sub.join("loader");
        std::fs::copy("/bin/true", &bin).unwrap();
        std::fs::copy("/bin/true", d.path().join(".git/hook")).unwrap();
        std::fs::write(d.path().join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            d.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(d.path().join("prog.bpf.o"), b"\x7fELF....").unwrap();
        let s: Share = d.path().to_string_lossy().parse().unwrap();
        let found = elf_programs(&[s], 10);
        assert_eq!(found, [std::fs::canonicalize(&bin).unwrap()]);
    }
}
