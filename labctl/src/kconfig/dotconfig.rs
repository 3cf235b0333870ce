//! `.config` and fragment text: parsing (`CONFIG_X=v`, `# CONFIG_X is not set`, labctl's
//! trailing `# [>=5.18] why` comments), normalised values, rendering back to `.config`
//! text, and the config hash (sha256 over the set options, ignoring comments and order).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::version::KernelVersion;

/// One `CONFIG_` assignment read from a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Symbol name without the `CONFIG_` prefix.
    pub symbol: String,
    /// Normalised value: `y`, `m`, `n`, a quoted string (`"..."`), a decimal or a `0x` hex number.
    pub value: String,
    /// 1-based line number in its file.
    pub line: usize,
    /// Version guard from a labctl fragment comment (`# [>=5.18] ...`); None = all versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<VersionGuard>,
    /// The comment after the value (labctl fragments explain every line there).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
}

/// A bad line in a fragment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}: {text:?}")]
pub struct ParseError {
    pub line: usize,
    pub text: String,
    pub message: String,
}

/// `[>=5.18]`, `[<5.18]`, `[>=5.15,<6.0]`: which kernel versions a fragment line is for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VersionGuard {
    pub min: Option<KernelVersion>,
    /// Exclusive upper bound.
    pub below: Option<KernelVersion>,
}

impl VersionGuard {
    pub fn parse(s: &str) -> Option<VersionGuard> {
        let mut g = VersionGuard {
            min: None,
            below: None,
        };
        for part in s.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix(">=") {
                g.min = Some(KernelVersion::parse_plain(v.trim())?);
            } else if let Some(v) = part.strip_prefix('<') {
                g.below = Some(KernelVersion::parse_plain(v.trim())?);
            } else {
                return None;
            }
        }
        (g.min.is_some() || g.below.is_some()).then_some(g)
    }
    pub fn matches(&self, v: &KernelVersion) -> bool {
        self.min.as_ref().is_none_or(|m| v >= m) && self.below.as_ref().is_none_or(|b| v < b)
    }
}

impl std::fmt::Display for VersionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(m) = &self.min {
            parts.push(format!(">={m}"));
        }
        if let Some(b) = &self.below {
            parts.push(format!("<{b}"));
        }
        write!(f, "[{}]", parts.join(","))
    }
}

fn valid_symbol(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Split `value  # comment` (a `#` inside a quoted string does not start a comment).
fn split_comment(rest: &str) -> (&str, &str) {
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if c == '#' {
            return (rest[..i].trim(), rest[i + 1..].trim());
        }
    }
    (rest.trim(), "")
}

/// Check and normalise a value: tristates lower-case, strings quoted with escapes kept,
/// decimal and hex numbers as written. A control character (a newline above all: it
/// would add lines to the written `.config`) is refused; only a tab is kept.
pub fn normalise_value(v: &str) -> Result<String, String> {
    let v = v.trim();
    if let Some(c) = v.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(format!(
            "control character {c:?} in the value (it would be written into the .config as is; use the \\n escape inside a quoted string instead)"
        ));
    }
    match v {
        "y" | "Y" => return Ok("y".into()),
        "m" | "M" => return Ok("m".into()),
        "n" | "N" => return Ok("n".into()),
        _ => {}
    }
    if let Some(inner) = v.strip_prefix('"') {
        let Some(body) = inner.strip_suffix('"') else {
            return Err("unterminated string (missing closing \")".into());
        };
        let mut escaped = false;
        for c in body.chars() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                return Err("unescaped \" inside a string value".into());
            }
        }
        if escaped {
            return Err("string value ends in a lone backslash".into());
        }
        return Ok(v.to_string());
    }
    if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(format!("0x{h}"));
        }
    }
    let digits = v.strip_prefix('-').unwrap_or(v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(v.to_string());
    }
    if v.is_empty() {
        return Err("empty value (use n, or \"\" for an empty string)".into());
    }
    Err("value must be y, m, n, a \"quoted string\", a decimal or a 0x hex number".into())
}

/// Parse one `CONFIG_X=value` assignment (as given to `--set`); returns (symbol, value).
pub fn parse_assignment(s: &str) -> Result<(String, String), String> {
    let t = s.trim();
    let Some(rest) = t.strip_prefix("CONFIG_") else {
        return Err("expected CONFIG_NAME=VALUE (it must start with CONFIG_)".into());
    };
    let Some((name, value)) = rest.split_once('=') else {
        return Err("expected CONFIG_NAME=VALUE (no `=` found)".into());
    };
    if !valid_symbol(name) {
        return Err(format!(
            "bad symbol name {name:?} (letters, digits and _ only)"
        ));
    }
    Ok((name.to_string(), normalise_value(value)?))
}

/// Split a line comment into its optional `[>=5.18]` guard and the explanation.
fn guard_and_why(comment: &str, strict: bool) -> Result<(Option<VersionGuard>, String), String> {
    match comment.strip_prefix('[').and_then(|c| c.split_once(']')) {
        Some((g, why)) => match VersionGuard::parse(g) {
            Some(g) => Ok((Some(g), why.trim().to_string())),
            None if strict => Err(format!(
                "bad version guard [{g}] (use [>=5.18], [<6.0] or [>=5.15,<6.0])"
            )),
            None => Ok((None, comment.to_string())),
        },
        None => Ok((None, comment.to_string())),
    }
}

/// Parse fragment or `.config` text. `strict` makes unknown lines an error (fragments);
/// otherwise they are skipped, as Kconfig itself does for `.config` files.
pub fn parse(text: &str, strict: bool) -> Result<Vec<Entry>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        let err = |message: String| ParseError {
            line,
            text: raw.to_string(),
            message,
        };
        if l.is_empty() {
            continue;
        }
        if let Some(c) = l.strip_prefix('#') {
            let c = c.trim();
            if let Some(rest) = c.strip_prefix("CONFIG_") {
                if let Some((name, after)) = rest.split_once(" is not set") {
                    let after = after.trim();
                    if valid_symbol(name) && (after.is_empty() || after.starts_with('#')) {
                        let (guard, why) =
                            guard_and_why(after.trim_start_matches('#').trim(), strict)
                                .map_err(err)?;
                        out.push(Entry {
                            symbol: name.into(),
                            value: "n".into(),
                            line,
                            guard,
                            why,
                        });
                        continue;
                    }
                }
            }
            continue; // a plain comment
        }
        let Some(rest) = l.strip_prefix("CONFIG_") else {
            if strict {
                return Err(err(
                    "expected CONFIG_NAME=VALUE, `# CONFIG_NAME is not set` or a # comment".into(),
                ));
            }
            continue;
        };
        let Some((name, value)) = rest.split_once('=') else {
            if strict {
                return Err(err("no `=` in assignment".into()));
            }
            continue;
        };
        if !valid_symbol(name) {
            if strict {
                return Err(err(format!("bad symbol name {name:?}")));
            }
            continue;
        }
        let (value, comment) = split_comment(value);
        let value = match normalise_value(value) {
            Ok(v) => v,
            Err(m) if strict => return Err(err(m)),
            Err(_) => continue,
        };
        let (guard, why) = guard_and_why(comment, strict).map_err(err)?;
        out.push(Entry {
            symbol: name.into(),
            value,
            line,
            guard,
            why,
        });
    }
    Ok(out)
}

/// A parsed `.config`: symbol → value, in file order for rendering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotConfig {
    order: Vec<String>,
    values: BTreeMap<String, String>,
}

impl DotConfig {
    pub fn parse(text: &str) -> DotConfig {
        let mut c = DotConfig::default();
        for e in parse(text, false).expect("lenient parsing never fails") {
            c.set(&e.symbol, &e.value);
        }
        c
    }
    /// The value of a symbol; `n` when absent or `# ... is not set`.
    pub fn get(&self, symbol: &str) -> &str {
        self.values.get(symbol).map(String::as_str).unwrap_or("n")
    }
    /// Whether the file mentions the symbol at all (set or `is not set`).
    pub fn mentions(&self, symbol: &str) -> bool {
        self.values.contains_key(symbol)
    }
    pub fn set(&mut self, symbol: &str, value: &str) {
        if self
            .values
            .insert(symbol.to_string(), value.to_string())
            .is_none()
        {
            self.order.push(symbol.to_string());
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.order
            .iter()
            .map(|s| (s.as_str(), self.values[s].as_str()))
    }
    /// Number of options set to something other than `n`.
    pub fn set_count(&self) -> usize {
        self.values.values().filter(|v| v.as_str() != "n").count()
    }
    /// Render as `.config` text (`# CONFIG_X is not set` for n).
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (k, v) in self.iter() {
            if v == "n" {
                s.push_str(&format!("# CONFIG_{k} is not set\n"));
            } else {
                s.push_str(&format!("CONFIG_{k}={v}\n"));
            }
        }
        s
    }
    /// The config hash: sha256 hex over the sorted `CONFIG_X=v` lines of every option
    /// that is set (not `n`). Comments, `is not set` lines and order do not count, so two
    /// files that configure the same kernel hash the same.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for (k, v) in &self.values {
            if v != "n" {
                h.update(format!("CONFIG_{k}={v}\n"));
            }
        }
        hex::encode(h.finalize())
    }
}

/// Compare a requested and a final value: `n` matches an absent symbol; strings compare
/// as written; numbers compare numerically (so `0x10` = `0x0010`).
pub fn same_value(requested: &str, actual: &str) -> bool {
    if requested == actual {
        return true;
    }
    let num = |s: &str| -> Option<i128> {
        if let Some(h) = s.strip_prefix("0x") {
            i128::from_str_radix(h, 16).ok()
        } else {
            s.parse().ok()
        }
    };
    matches!((num(requested), num(actual)), (Some(a), Some(b)) if a == b && requested.starts_with("0x") == actual.starts_with("0x"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_assignments_unset_lines_and_comments() {
        let text = "# header\nCONFIG_BPF=y\n# CONFIG_FOO is not set   # [<6.0] off\nCONFIG_NAME=\"a # b\"  # why here\n\
                    CONFIG_NR=4 # [>=5.18] four uarts\nCONFIG_HEX=0x1F\n\n";
        let e = parse(text, true).unwrap();
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.symbol.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("BPF", "y"),
                ("FOO", "n"),
                ("NAME", "\"a # b\""),
                ("NR", "4"),
                ("HEX", "0x1F")
            ]
        );
        assert_eq!(e[2].why, "why here");
        assert_eq!(e[3].why, "four uarts");
        let g = e[3].guard.as_ref().unwrap();
        assert!(
            g.matches(&KernelVersion::new(5, 18, 0)) && g.matches(&KernelVersion::new(6, 12, 3))
        );
        assert!(!g.matches(&KernelVersion::new(5, 10, 46)));
        assert_eq!(e[1].line, 3);
        assert_eq!(e[1].why, "off");
        assert!(e[1].guard.as_ref().unwrap().below.is_some());
    }

    #[test]
    fn strict_parsing_rejects_junk_with_line_numbers() {
        for (bad, needle) in [
            ("CONFIG_X=maybe", "value must be"),
            ("BPF=y", "expected CONFIG_NAME"),
            ("CONFIG_X", "no `=`"),
            ("CONFIG_=y", "bad symbol"),
            ("CONFIG_S=\"open", "unterminated"),
            ("CONFIG_X=y # [>=five] x", "bad version guard"),
        ] {
            let e = parse(&format!("CONFIG_OK=y\n{bad}\n"), true).unwrap_err();
            assert_eq!(e.line, 2, "{bad}");
            assert!(e.to_string().contains(needle), "{bad}: {e}");
        }
        // Lenient mode (a .config from elsewhere) skips them.
        assert_eq!(
            parse("junk\nCONFIG_X=maybe\nCONFIG_Y=m\n", false)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn set_values_are_strict() {
        assert_eq!(
            parse_assignment("CONFIG_BPF=y").unwrap(),
            ("BPF".into(), "y".into())
        );
        assert_eq!(
            parse_assignment("CONFIG_S=\"\"").unwrap(),
            ("S".into(), "\"\"".into())
        );
        assert_eq!(parse_assignment("CONFIG_N=-3").unwrap().1, "-3");
        for bad in [
            "CONFIG_",
            "FOO",
            "CONFIG_X=maybe",
            "",
            "CONFIG_X=",
            "CONFIG_A B=y",
            "BPF=y",
        ] {
            assert!(parse_assignment(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hash_ignores_comments_order_and_unset_lines() {
        let a = DotConfig::parse("# c\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\n");
        let b = DotConfig::parse("CONFIG_B=m\n\n# other comment\nCONFIG_A=y\n");
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.hash().len(), 64);
        let c = DotConfig::parse("CONFIG_B=y\nCONFIG_A=y\n");
        assert_ne!(a.hash(), c.hash());
        // Later lines win, like Kconfig.
        let d = DotConfig::parse("CONFIG_A=n\nCONFIG_B=m\nCONFIG_A=y\n");
        assert_eq!(d.hash(), a.hash());
        assert_eq!(a.set_count(), 2);
    }

    #[test]
    fn control_characters_in_values_are_refused() {
        for bad in [
            "CONFIG_X=\"a\nCONFIG_Y=y\"",
            "CONFIG_X=\"a\rb\"",
            "CONFIG_X=\"\u{1b}[2J\"",
            "CONFIG_X=y\u{0}",
        ] {
            let e = parse_assignment(bad).unwrap_err();
            assert!(e.contains("control character"), "{bad:?}: {e}");
        }
        assert!(
            parse_assignment("CONFIG_X=\"a\\nb\"").is_ok(),
            "the escape is fine"
        );
        assert!(parse("CONFIG_X=\"a\u{7}\"\n", true).is_err());
    }

    #[test]
    fn render_round_trips() {
        let a = DotConfig::parse("CONFIG_A=y\n# CONFIG_C is not set\nCONFIG_S=\"x\"\n");
        assert_eq!(
            a.render(),
            "CONFIG_A=y\n# CONFIG_C is not set\nCONFIG_S=\"x\"\n"
        );
        assert_eq!(DotConfig::parse(&a.render()), a);
        assert_eq!(a.get("MISSING"), "n");
    }

    #[test]
    fn value_comparison() {
        assert!(same_value("n", "n"));
        assert!(same_value("0x10", "0x0010"));
        assert!(!same_value("16", "0x10"));
        assert!(!same_value("y", "m"));
    }
}
