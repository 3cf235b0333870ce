//! Debian's `Release` file (the text of `InRelease` once its signature is checked): the
//! suite's names (`Suite`, `Codename`), `Date`, `Valid-Until`, and the `SHA256:` list of
//! the index files with their sizes. Dates are RFC 2822 in UTC, as the archive writes
//! them (`Fri, 06 Nov 2026 08:08:01 UTC`).

/// The fields labctl uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseFile {
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub date: Option<String>,
    pub valid_until: Option<String>,
    /// (sha256, size, path relative to `dists/<suite>/`).
    pub sha256: Vec<(String, u64, String)>,
}

impl ReleaseFile {
    /// True when this Release describes `suite` (by `Suite:` or `Codename:`), so a signed
    /// Release of another suite cannot be replayed in its place.
    pub fn is_for(&self, suite: &str) -> bool {
        self.suite.as_deref() == Some(suite) || self.codename.as_deref() == Some(suite)
    }
    /// sha256 and size of one index file, e.g. `main/source/Sources.xz`.
    pub fn file(&self, path: &str) -> Option<(&str, u64)> {
        self.sha256
            .iter()
            .find(|(_, _, p)| p == path)
            .map(|(s, n, _)| (s.as_str(), *n))
    }
    /// `Valid-Until` as Unix seconds (None when absent or unreadable).
    pub fn valid_until_unix(&self) -> Option<i64> {
        self.valid_until.as_deref().and_then(parse_date)
    }
}

pub fn parse_release(text: &str) -> ReleaseFile {
    let mut r = ReleaseFile::default();
    let mut in_sha256 = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(' ') {
            if in_sha256 {
                let w: Vec<&str> = rest.split_whitespace().collect();
                if let [sha, size, path] = w.as_slice() {
                    if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                        if let Ok(n) = size.parse() {
                            r.sha256.push((sha.to_lowercase(), n, path.to_string()));
                        }
                    }
                }
            }
            continue;
        }
        in_sha256 = false;
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k {
            "Suite" => r.suite = Some(v),
            "Codename" => r.codename = Some(v),
            "Date" => r.date = Some(v),
            "Valid-Until" => r.valid_until = Some(v),
            "SHA256" => in_sha256 = true,
            _ => {}
        }
    }
    r
}

/// `Fri, 06 Nov 2026 08:08:01 UTC` (weekday optional; `UTC`, `GMT`, `Z` or `+0000`) →
/// Unix seconds.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = match s.split_once(", ") {
        Some((_, rest)) => rest,
        None => s,
    };
    let w: Vec<&str> = s.split_whitespace().collect();
    let [day, mon, year, time, zone] = w.as_slice() else {
        return None;
    };
    if !matches!(*zone, "UTC" | "GMT" | "Z" | "+0000") {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| x == mon)? as i64 + 1;
    let (d, y): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [hh, mm, ss] = t.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&d) || *hh > 23 || *mm > 59 || *ss > 60 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_date("Fri, 06 Nov 2026 08:08:01 UTC"),
            Some(1_793_952_481)
        );
        assert_eq!(parse_date("06 Nov 2026 08:08:01 GMT"), Some(1_793_952_481));
        assert_eq!(parse_date("Fri, 06 Nov 2026 08:08:01 +0200"), None);
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn fields_and_hashes() {
        let r = parse_release(
            "Origin: Debian\nSuite: testing\nCodename: forky\nDate: Fri, 30 Oct 2026 08:08:01 UTC\n\
             Valid-Until: Fri, 06 Nov 2026 08:08:01 UTC\nMD5Sum:\n 0ed6d4c8891eb86358b94bb35d9e4da4 10 main/source/Sources.xz\n\
             SHA256:\n 1111111111111111111111111111111111111111111111111111111111111111 99 main/source/Sources\n \
             AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA 12 main/source/Sources.xz\n",
        );
        assert!(r.is_for("forky") && r.is_for("testing") && !r.is_for("sid"));
        assert_eq!(
            r.file("main/source/Sources.xz"),
            Some(("a".repeat(64).as_str(), 12))
        );
        assert_eq!(r.valid_until_unix(), Some(1_793_952_481));
    }
}
