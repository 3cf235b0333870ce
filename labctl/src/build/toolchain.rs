//! Host toolchain probes: the versions of gcc, binutils (ld), pahole, clang, llc (with
//! its bpf target), glibc and make, parsed from their `--version` output by pure
//! functions. The probed versions feed the catalogue predicates and the build key.
//! [`Toolchain::probe_in`] probes where the build runs ([`crate::userland::Userland`]:
//! the host, or a Debian root filesystem), so the catalogue sees the compiler actually
//! used.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::catalogue::DottedVersion;
use crate::events::EventSink;
use crate::process::Cmd;

/// Versions of the tools that shape a kernel build. `None` = not installed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toolchain {
    pub gcc: Option<String>,
    pub binutils: Option<String>,
    pub pahole: Option<String>,
    pub clang: Option<String>,
    pub llc_bpf: Option<bool>,
    pub glibc: Option<String>,
    pub make: Option<String>,
    /// Where these tools live (`host`, `debian:trixie`).
    #[serde(default)]
    pub userland: crate::userland::ToolchainSpec,
}

impl Toolchain {
    /// Probe the host (a handful of `--version` runs, well under a second).
    pub fn probe(sink: &dyn EventSink) -> Toolchain {
        Self::probe_in(&crate::userland::Userland::host(), sink)
    }

    /// Probe the tools of `userland` (the host's, or those inside a Debian root).
    pub fn probe_in(userland: &crate::userland::Userland, sink: &dyn EventSink) -> Toolchain {
        Self::probe_for(userland, crate::arch::Arch::host(), sink)
    }

    /// Probe the tools that build for `arch`: a cross build's gcc and binutils are the
    /// `CROSS_COMPILE`-prefixed ones (their versions feed the catalogue and the key);
    /// pahole, clang and make are the same for every target.
    pub fn probe_for(
        userland: &crate::userland::Userland,
        arch: &crate::arch::Arch,
        sink: &dyn EventSink,
    ) -> Toolchain {
        let prefix = arch.cross_prefix().unwrap_or("");
        let out = |prog: &str, args: &[&str]| -> Option<String> {
            let path = userland.which(prog)?;
            let o = userland
                .wrap(Cmd::new(path).args(args))
                .timeout(std::time::Duration::from_secs(20))
                .run(sink)
                .ok()?;
            o.success()
                .then(|| format!("{}{}", o.stdout_str(), o.stderr_str()))
        };
        Toolchain {
            gcc: out(&format!("{prefix}gcc"), &["-dumpfullversion"])
                .and_then(|s| first_version(&s)),
            binutils: out(&format!("{prefix}ld"), &["--version"]).and_then(|s| parse_binutils(&s)),
            pahole: out("pahole", &["--version"]).and_then(|s| first_version(&s)),
            clang: out("clang", &["--version"]).and_then(|s| parse_after(&s, "clang version")),
            llc_bpf: out("llc", &["--version"]).map(|s| llc_has_bpf(&s)),
            glibc: out("getconf", &["GNU_LIBC_VERSION"]).and_then(|s| first_version(&s)),
            make: out("make", &["--version"]).and_then(|s| parse_after(&s, "GNU Make")),
            userland: userland.spec().clone(),
        }
    }

    /// Tool name → version, as the catalogue predicates want them.
    pub fn facts(&self) -> BTreeMap<String, DottedVersion> {
        let mut m = BTreeMap::new();
        for (k, v) in [
            ("gcc", &self.gcc),
            ("binutils", &self.binutils),
            ("pahole", &self.pahole),
            ("clang", &self.clang),
            ("glibc", &self.glibc),
        ] {
            if let Some(d) = v.as_deref().and_then(DottedVersion::parse) {
                m.insert(k.to_string(), d);
            }
        }
        m
    }

    /// The part of the build key that depends on the toolchain (gcc, binutils, pahole,
    /// clang) and on the applied fixes: 8 hex digits.
    pub fn key(&self, fixes: &[String]) -> String {
        self.key_with(fixes, &[])
    }

    /// [`Toolchain::key`] with make variables that change what the compiler emits
    /// (`--debug-info lean`'s `KCFLAGS`); none hashes exactly as [`Toolchain::key`].
    pub fn key_with(&self, fixes: &[String], vars: &[(&str, &str)]) -> String {
        let mut h = Sha256::new();
        for (k, v) in [
            ("gcc", &self.gcc),
            ("binutils", &self.binutils),
            ("pahole", &self.pahole),
            ("clang", &self.clang),
        ] {
            h.update(format!("{k}={}\n", v.as_deref().unwrap_or("-")));
        }
        for f in fixes {
            h.update(format!("fix={f}\n"));
        }
        for (k, v) in vars {
            h.update(format!("var {k}={v}\n"));
        }
        // Only a non-host userland is hashed, so host keys stay what they always were.
        if !self.userland.is_host() {
            h.update(format!("userland={}\n", self.userland));
        }
        hex::encode(h.finalize())[..8].to_string()
    }

    /// One line for messages: `gcc 12.2.0, binutils 2.40, pahole 1.24, clang 14.0.6`.
    pub fn summary(&self) -> String {
        let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "missing".into());
        let place = if self.userland.is_host() {
            String::new()
        } else {
            format!(" ({})", self.userland)
        };
        format!(
            "gcc {}, binutils {}, pahole {}, clang {}{place}",
            s(&self.gcc),
            s(&self.binutils),
            s(&self.pahole),
            s(&self.clang)
        )
    }
}

/// The first `N.N[.N…]` in the text (accepts a leading `v`).
pub fn first_version(s: &str) -> Option<String> {
    let re = regex::Regex::new(r"v?(\d+\.\d+(?:\.\d+)*)").unwrap();
    re.captures(s).map(|c| c[1].to_string())
}

/// `GNU ld (GNU Binutils for Debian) 2.40` → 2.40 (the version is the last word of line one).
pub fn parse_binutils(s: &str) -> Option<String> {
    let line = s.lines().next()?;
    line.split_whitespace().rev().find_map(|w| {
        first_version(w).filter(|v| w.trim_start_matches('v').starts_with(v.as_str()))
    })
}

/// The version that follows `marker` (`Debian clang version 14.0.6` → 14.0.6).
pub fn parse_after(s: &str, marker: &str) -> Option<String> {
    let i = s.find(marker)?;
    first_version(&s[i + marker.len()..])
}

/// `llc --version` lists registered targets; the BPF backend shows as `bpf`.
pub fn llc_has_bpf(s: &str) -> bool {
    s.lines()
        .any(|l| l.split_whitespace().next() == Some("bpf"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_version_outputs() {
        assert_eq!(first_version("12.2.0\n").as_deref(), Some("12.2.0"));
        assert_eq!(first_version("v1.24\n").as_deref(), Some("1.24"));
        assert_eq!(
            parse_binutils("GNU ld (GNU Binutils for Debian) 2.40\nCopyright (C) 2023").as_deref(),
            Some("2.40")
        );
        assert_eq!(
            parse_binutils("GNU ld version 2.35.2-43.el9\n").as_deref(),
            Some("2.35.2")
        );
        assert_eq!(
            parse_after(
                "Debian clang version 14.0.6\nTarget: x86_64-pc-linux-gnu",
                "clang version"
            )
            .as_deref(),
            Some("14.0.6")
        );
        assert_eq!(
            parse_after("GNU Make 4.3\nBuilt for x86_64", "GNU Make").as_deref(),
            Some("4.3")
        );
        assert_eq!(first_version("glibc 2.36\n").as_deref(), Some("2.36"));
        let llc = "LLVM (http://llvm.org/):\n  LLVM version 14.0.6\n\n  Registered Targets:\n    bpf     - BPF (host endian)\n    bpfeb   - BPF (big endian)\n    x86-64  - 64-bit X86: EM_X86_64\n";
        assert!(llc_has_bpf(llc));
        assert!(!llc_has_bpf(
            "  Registered Targets:\n    x86-64  - 64-bit X86\n"
        ));
    }

    #[test]
    fn key_changes_with_toolchain_and_fixes() {
        let t = Toolchain {
            gcc: Some("12.2.0".into()),
            pahole: Some("1.24".into()),
            ..Default::default()
        };
        let k = t.key(&[]);
        assert_eq!(k.len(), 8);
        assert_eq!(k, t.key(&[]));
        assert_ne!(k, t.key(&["pahole-enum64".into()]));
        assert_eq!(k, t.key_with(&[], &[]));
        assert_ne!(k, t.key_with(&[], &[("KCFLAGS", "-fno-var-tracking")]));
        let t2 = Toolchain {
            pahole: Some("1.25".into()),
            ..t.clone()
        };
        assert_ne!(k, t2.key(&[]));
        // glibc and make do not change the key.
        let t3 = Toolchain {
            glibc: Some("2.38".into()),
            ..t.clone()
        };
        assert_eq!(k, t3.key(&[]));
        // The same versions from a Debian root are another build.
        let t4 = Toolchain {
            userland: crate::userland::ToolchainSpec::Debian("bookworm".into()),
            ..t.clone()
        };
        assert_ne!(k, t4.key(&[]));
        assert!(
            t4.summary().ends_with("(debian:bookworm)"),
            "{}",
            t4.summary()
        );
    }
}
