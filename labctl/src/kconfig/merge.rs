//! Merging a base `.config` with fragments and `--set` values, with the rules of the
//! kernel's `scripts/kconfig/merge_config.sh`: later layers win, and a value that a later
//! fragment redefines is reported (merge_config.sh's "Value of CONFIG_X is redefined by
//! fragment"). Also the base fixes every profile gets (the distro trusted-keys trap).

use std::collections::BTreeMap;
use std::path::Path;

use super::dotconfig::{DotConfig, Entry};

/// One layer on top of the base: a fragment or the `--set` list.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Shown in warnings and reports: `bpf.config`, `/path/my.config`, `--set`.
    pub name: String,
    pub entries: Vec<Entry>,
}

/// A symbol one layer set and a later layer set differently.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Override {
    pub symbol: String,
    pub old_value: String,
    pub old_source: String,
    pub new_value: String,
    pub new_source: String,
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CONFIG_{} is redefined by {}: {} (from {}) -> {}",
            self.symbol, self.new_source, self.old_value, self.old_source, self.new_value
        )
    }
}

/// What a layer asked for, after later layers had their say.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Requested {
    pub symbol: String,
    pub value: String,
    /// The layer whose value won.
    pub source: String,
    pub why: String,
}

#[derive(Debug, Clone)]
pub struct Merged {
    /// Base with every layer applied: the input to `olddefconfig`.
    pub config: DotConfig,
    /// Every symbol a layer named, in first-mention order, with the winning value.
    pub requested: Vec<Requested>,
    /// Overrides between layers (warnings). Changes to base values are not overrides:
    /// changing the base is what fragments are for.
    pub overrides: Vec<Override>,
}

pub fn merge(base: &DotConfig, layers: &[Layer]) -> Merged {
    let mut config = base.clone();
    let mut order: Vec<String> = Vec::new();
    let mut won: BTreeMap<String, Requested> = BTreeMap::new();
    let mut overrides = Vec::new();
    for layer in layers {
        for e in &layer.entries {
            match won.get(&e.symbol) {
                Some(prev) if prev.value != e.value => overrides.push(Override {
                    symbol: e.symbol.clone(),
                    old_value: prev.value.clone(),
                    old_source: prev.source.clone(),
                    new_value: e.value.clone(),
                    new_source: layer.name.clone(),
                }),
                Some(_) => {}
                None => order.push(e.symbol.clone()),
            }
            let why = if e.why.is_empty() {
                won.get(&e.symbol)
                    .map(|p| p.why.clone())
                    .unwrap_or_default()
            } else {
                e.why.clone()
            };
            won.insert(
                e.symbol.clone(),
                Requested {
                    symbol: e.symbol.clone(),
                    value: e.value.clone(),
                    source: layer.name.clone(),
                    why,
                },
            );
            config.set(&e.symbol, &e.value);
        }
    }
    let requested = order
        .into_iter()
        .map(|s| won.remove(&s).expect("recorded"))
        .collect();
    Merged {
        config,
        requested,
        overrides,
    }
}

/// A fix applied to the base before merging.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BaseFix {
    pub symbol: String,
    pub old_value: String,
    pub new_value: String,
    pub reason: String,
}

/// Certificate and key options that name files. A distro config points them at files
/// that exist only in the distro's packaging tree (`debian/certs/...`), and the build
/// then stops with "No rule to make target 'debian/canonical-certs.pem'".
/// (symbol, value to reset to)
const KEY_FILE_OPTIONS: &[(&str, &str)] = &[
    ("SYSTEM_TRUSTED_KEYS", "\"\""),
    ("SYSTEM_REVOCATION_KEYS", "\"\""),
    ("SYSTEM_BLACKLIST_HASH_LIST", "\"\""),
    ("EXTRA_FIRMWARE", "\"\""),
    // The kernel generates certs/signing_key.pem itself when this is the default.
    ("MODULE_SIG_KEY", "\"certs/signing_key.pem\""),
];

/// Blank (or reset to the kernel's default) every key/certificate option whose files do
/// not exist in the tree (relative paths) or on this host (absolute paths). PKCS#11 URIs
/// and the kernel's own defaults are left alone.
pub fn fix_base(base: &mut DotConfig, tree: &Path) -> Vec<BaseFix> {
    let mut fixes = Vec::new();
    for (sym, reset) in KEY_FILE_OPTIONS {
        let cur = base.get(sym).to_string();
        if cur == "n" || cur == *reset {
            continue;
        }
        let inner = cur.trim_matches('"');
        if inner.is_empty() || inner.starts_with("pkcs11:") {
            continue;
        }
        let missing: Vec<&str> = inner
            .split_whitespace()
            .filter(|p| {
                let path = Path::new(p);
                let full = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    tree.join(path)
                };
                !full.is_file()
            })
            .collect();
        if missing.is_empty() {
            continue;
        }
        base.set(sym, reset);
        fixes.push(BaseFix {
            symbol: sym.to_string(),
            old_value: cur.clone(),
            new_value: reset.to_string(),
            reason: format!(
                "the base names {} which this tree does not have (the build would stop with \"No rule to make target\")",
                missing.join(", ")
            ),
        });
    }
    fixes
}

#[cfg(test)]
mod tests {
    use super::super::dotconfig::parse;
    use super::*;

    fn layer(name: &str, text: &str) -> Layer {
        Layer {
            name: name.into(),
            entries: parse(text, true).unwrap(),
        }
    }

    #[test]
    fn later_layers_win_and_overrides_are_reported() {
        let base = DotConfig::parse("CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n");
        let m = merge(
            &base,
            &[
                layer(
                    "one.config",
                    "CONFIG_B=m # b as module\nCONFIG_C=y\nCONFIG_D=y\n",
                ),
                layer("two.config", "CONFIG_D=n\nCONFIG_C=y\n"),
                layer("--set", "CONFIG_E=\"x\"\n"),
            ],
        );
        assert_eq!(m.config.get("A"), "y");
        assert_eq!(m.config.get("B"), "m");
        assert_eq!(m.config.get("C"), "y");
        assert_eq!(m.config.get("D"), "n");
        assert_eq!(m.config.get("E"), "\"x\"");
        // Base changes are not overrides; same-value repeats are not either.
        assert_eq!(m.overrides.len(), 1, "{:?}", m.overrides);
        let o = &m.overrides[0];
        assert_eq!(
            (
                o.symbol.as_str(),
                o.old_value.as_str(),
                o.new_value.as_str()
            ),
            ("D", "y", "n")
        );
        assert_eq!(
            (o.old_source.as_str(), o.new_source.as_str()),
            ("one.config", "two.config")
        );
        assert!(o
            .to_string()
            .contains("CONFIG_D is redefined by two.config"));
        let req: Vec<(&str, &str, &str)> = m
            .requested
            .iter()
            .map(|r| (r.symbol.as_str(), r.value.as_str(), r.source.as_str()))
            .collect();
        assert_eq!(
            req,
            [
                ("B", "m", "one.config"),
                ("C", "y", "two.config"),
                ("D", "n", "two.config"),
                ("E", "\"x\"", "--set")
            ]
        );
        assert_eq!(m.requested[0].why, "b as module");
        // New symbols are appended after the base's, in order.
        assert!(m
            .config
            .render()
            .ends_with("# CONFIG_D is not set\nCONFIG_E=\"x\"\n"));
    }

    #[test]
    fn distro_key_paths_are_blanked_when_missing() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tree.path().join("certs")).unwrap();
        std::fs::write(tree.path().join("certs/mine.pem"), "x").unwrap();
        let mut base = DotConfig::parse(
            "CONFIG_SYSTEM_TRUSTED_KEYS=\"debian/certs/debian-uefi-certs.pem\"\n\
             CONFIG_SYSTEM_REVOCATION_KEYS=\"certs/mine.pem\"\n\
             CONFIG_MODULE_SIG_KEY=\"/var/lib/shim-signed/mok/MOK.priv\"\n\
             CONFIG_SYSTEM_BLACKLIST_HASH_LIST=\"\"\nCONFIG_BPF=y\n",
        );
        let fixes = fix_base(&mut base, tree.path());
        let syms: Vec<&str> = fixes.iter().map(|f| f.symbol.as_str()).collect();
        assert_eq!(syms, ["SYSTEM_TRUSTED_KEYS", "MODULE_SIG_KEY"]);
        assert_eq!(base.get("SYSTEM_TRUSTED_KEYS"), "\"\"");
        assert_eq!(base.get("MODULE_SIG_KEY"), "\"certs/signing_key.pem\"");
        assert_eq!(
            base.get("SYSTEM_REVOCATION_KEYS"),
            "\"certs/mine.pem\"",
            "an existing file is kept"
        );
        assert!(fixes[0]
            .reason
            .contains("debian/certs/debian-uefi-certs.pem"));
        // Idempotent.
        assert!(fix_base(&mut base, tree.path()).is_empty());
    }
}
