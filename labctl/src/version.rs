//! Kernel version text: parsing what users type (`5.16.10`, `v5.16.10`, `5.10`) into a
//! [`VersionReq`], and the ordered [`KernelVersion`] every engine keys on.

use std::fmt;
use std::str::FromStr;

/// Text that is not a kernel version labctl accepts (the message lists the forms).
#[derive(Debug, thiserror::Error)]
#[error("invalid kernel version {shown:?}: {ACCEPTED_FORMS}")]
pub struct VersionError {
    /// The text as given, cut to 40 characters.
    pub shown: String,
}

/// A concrete kernel release, e.g. 5.10.46. `patch` 0 is the x.y release itself
/// (kernel.org names it `linux-5.10.tar.xz`).
/// Serialized as its text (`"5.10.46"`); older metadata files that stored the three
/// numbers as an object are still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KernelVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        KernelVersion {
            major,
            minor,
            patch,
        }
    }
    /// The `M.m` series this release belongs to.
    pub fn series(&self) -> (u32, u32) {
        (self.major, self.minor)
    }
    /// Name as kernel.org and `make kernelversion` write it (no `.0`).
    pub fn to_kernel_string(&self) -> String {
        self.to_string()
    }
    /// The version at the front of a `make kernelrelease` string (`5.10.46-lab` → 5.10.46).
    pub fn from_release(release: &str) -> Option<Self> {
        release
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .and_then(KernelVersion::parse_plain)
    }
    /// Parse a strict `M.m.p` or `M.m` (as found in indexes and file names).
    pub fn parse_plain(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('.').collect();
        let num = |p: &str| -> Option<u32> {
            if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        match parts.as_slice() {
            [a, b] => Some(KernelVersion::new(num(a)?, num(b)?, 0)),
            [a, b, c] => Some(KernelVersion::new(num(a)?, num(b)?, num(c)?)),
            _ => None,
        }
    }
}

impl serde::Serialize for KernelVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for KernelVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Parts { major: u32, minor: u32, patch: u32 },
        }
        match Repr::deserialize(d)? {
            Repr::Text(t) => KernelVersion::parse_plain(&t)
                .ok_or_else(|| serde::de::Error::custom(format!("not a kernel version: {t:?}"))),
            Repr::Parts {
                major,
                minor,
                patch,
            } => Ok(KernelVersion::new(major, minor, patch)),
        }
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.patch == 0 {
            write!(f, "{}.{}", self.major, self.minor)
        } else {
            write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum VersionReq {
    /// An exact release (`5.16.10`).
    Exact(KernelVersion),
    /// The newest release of a series (`5.10` → newest 5.10.y the source has).
    Series(u32, u32),
}

pub const ACCEPTED_FORMS: &str =
    "accepted forms: an exact release like 5.16.10 or v5.16.10, or a series like 5.10 (its newest 5.10.y)";

impl VersionReq {
    pub fn matches(&self, v: &KernelVersion) -> bool {
        match self {
            VersionReq::Exact(e) => e == v,
            VersionReq::Series(a, b) => v.series() == (*a, *b),
        }
    }
    pub fn series(&self) -> (u32, u32) {
        match self {
            VersionReq::Exact(v) => v.series(),
            VersionReq::Series(a, b) => (*a, *b),
        }
    }
    /// Pick what this request resolves to among `available`.
    pub fn pick<'a>(
        &self,
        available: impl IntoIterator<Item = &'a KernelVersion>,
    ) -> Option<KernelVersion> {
        available
            .into_iter()
            .filter(|v| self.matches(v))
            .max()
            .copied()
    }
}

impl fmt::Display for VersionReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionReq::Exact(v) => write!(f, "{v}"),
            VersionReq::Series(a, b) => write!(f, "{a}.{b}"),
        }
    }
}

impl FromStr for VersionReq {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, VersionError> {
        let shown: String = if s.chars().count() > 40 {
            format!("{}…", s.chars().take(40).collect::<String>())
        } else {
            s.to_string()
        };
        let bad = || VersionError {
            shown: shown.clone(),
        };
        let t = s.strip_prefix('v').unwrap_or(s);
        if t.is_empty() || t.len() > 16 {
            return Err(bad());
        }
        let v = KernelVersion::parse_plain(t).ok_or_else(bad)?;
        if !(2..=9).contains(&v.major) {
            return Err(bad());
        }
        if t.split('.').count() == 2 {
            Ok(VersionReq::Series(v.major, v.minor))
        } else {
            Ok(VersionReq::Exact(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exact_prefixed_and_series() {
        assert_eq!(
            "5.16.10".parse::<VersionReq>().unwrap(),
            VersionReq::Exact(KernelVersion::new(5, 16, 10))
        );
        assert_eq!(
            "v5.16.10".parse::<VersionReq>().unwrap(),
            VersionReq::Exact(KernelVersion::new(5, 16, 10))
        );
        assert_eq!(
            "5.10".parse::<VersionReq>().unwrap(),
            VersionReq::Series(5, 10)
        );
        assert_eq!(
            "6.12".parse::<VersionReq>().unwrap(),
            VersionReq::Series(6, 12)
        );
    }

    #[test]
    fn rejects_junk_with_the_accepted_forms() {
        let long = "5".repeat(300);
        for bad in [
            "5",
            "5.x",
            "abc",
            "5.10.1.1",
            "-1",
            "",
            "5.10;rm -rf /",
            "$(id)",
            "5..1",
            "5.10.",
            " 5.10",
            "vv5.10",
            "5.10.-1",
            "0.1",
            &long,
        ] {
            let e = bad.parse::<VersionReq>().unwrap_err().to_string();
            assert!(e.contains("accepted forms"), "{bad:?}: {e}");
            assert!(
                e.len() < 200,
                "error for a long input stays one short line: {e}"
            );
        }
    }

    #[test]
    fn serializes_as_text_and_reads_both_forms() {
        let v = KernelVersion::new(5, 10, 46);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"5.10.46\"");
        assert_eq!(
            serde_json::from_str::<KernelVersion>("\"5.10.46\"").unwrap(),
            v
        );
        assert_eq!(
            serde_json::from_str::<KernelVersion>(r#"{"major":5,"minor":10,"patch":46}"#).unwrap(),
            v
        );
        assert!(serde_json::from_str::<KernelVersion>("\"5.x\"").is_err());
    }

    #[test]
    fn orders_numerically_and_picks_newest_of_series() {
        let vs: Vec<KernelVersion> = ["5.10.9", "5.10.46", "5.10.251", "5.11.2", "5.10"]
            .iter()
            .map(|s| KernelVersion::parse_plain(s).unwrap())
            .collect();
        assert_eq!(
            VersionReq::Series(5, 10).pick(&vs),
            Some(KernelVersion::new(5, 10, 251))
        );
        assert_eq!(
            VersionReq::Exact(KernelVersion::new(5, 10, 46)).pick(&vs),
            Some(KernelVersion::new(5, 10, 46))
        );
        assert_eq!(VersionReq::Series(6, 1).pick(&vs), None);
        assert_eq!(KernelVersion::new(5, 10, 0).to_string(), "5.10");
    }
}
