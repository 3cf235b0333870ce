//! Verification: compares every requested symbol with the final `.config` and, for each
//! mismatch, finds the reason in the tree's Kconfig files (unknown symbol, unmet
//! `depends on` with the unmet symbols and their values, forced by a `select`, not
//! user-settable, a `choice` that picked another member, a bool asked to be a module).

use super::dotconfig::{same_value, DotConfig};
use super::lang::{tri, KconfigDb, Kind};
use super::merge::Requested;

/// How a requested symbol ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The final value is the requested one.
    Ok,
    /// Satisfied, but the symbol has no prompt: a select or a default set it, not us.
    OkNotSettable,
    /// No Kconfig file of this tree defines the symbol.
    Unknown,
    /// A `depends on` (own, or of an enclosing if/menu/choice) is not met.
    UnmetDependency,
    /// Asked lower, but a `select` from another enabled symbol forces it up.
    ForcedBySelect,
    /// No prompt: only `select`s or defaults can set it, and none did.
    NotSettable,
    /// A member of a `choice` block, and another member was chosen.
    ChoiceOther,
    /// A bool symbol asked to be `m`: it became `y`.
    BoolNotModule,
    /// Something else changed it (a `range`, a default); see the Kconfig location.
    Changed,
}

impl Status {
    pub fn satisfied(self) -> bool {
        matches!(self, Status::Ok | Status::OkNotSettable)
    }
}

/// One row of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SymbolRow {
    pub symbol: String,
    pub requested: String,
    /// Final value (`n` when absent).
    #[serde(rename = "final")]
    pub final_value: String,
    pub status: Status,
    /// Why, in words; empty when satisfied and settable.
    pub reason: String,
    /// The fragment (or `--set`) that asked for it.
    pub source: String,
    /// Symbols whose values explain the outcome (unmet dependencies, selectors).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<String>,
    /// Where the symbol is defined (`lib/Kconfig.debug:1960`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defined_at: Option<String>,
    /// Core options must land: their failure is an error, not a warning.
    pub core: bool,
}

/// Core BPF-lab options: a lab without them is not a BPF lab, so not landing is an error.
pub const CORE: &[&str] = &[
    "BPF_SYSCALL",
    "BPF_JIT",
    "DEBUG_INFO_BTF",
    "KPROBES",
    "BPF_EVENTS",
];

/// Build one row per requested symbol.
pub fn verify(requested: &[Requested], fin: &DotConfig, db: &KconfigDb) -> Vec<SymbolRow> {
    requested.iter().map(|r| row(r, fin, db)).collect()
}

fn row(r: &Requested, fin: &DotConfig, db: &KconfigDb) -> SymbolRow {
    let final_value = fin.get(&r.symbol).to_string();
    let sym = db.get(&r.symbol);
    let mut row = SymbolRow {
        symbol: r.symbol.clone(),
        requested: r.value.clone(),
        final_value: final_value.clone(),
        status: Status::Ok,
        reason: String::new(),
        source: r.source.clone(),
        blockers: Vec::new(),
        defined_at: sym
            .and_then(|s| s.defs.first())
            .map(|d| format!("{}:{}", d.file, d.line)),
        core: CORE.contains(&r.symbol.as_str()),
    };
    let Some(sym) = sym else {
        row.status = Status::Unknown;
        row.reason = format!("CONFIG_{} is not defined in any Kconfig file of this tree (removed, renamed, or never existed in this version)", r.symbol);
        if same_value(&r.value, &final_value) && r.value == "n" {
            // Asking for n of a symbol that does not exist is harmless.
            row.status = Status::Ok;
            row.reason = "not defined in this tree (asked for n, so nothing is lost)".into();
        }
        return row;
    };
    if same_value(&r.value, &final_value) {
        if !sym.user_settable() {
            row.status = Status::OkNotSettable;
            let sel = active_selectors(db, &r.symbol, fin);
            row.reason = if sel.is_empty() {
                "not user-settable (no prompt); set by its default".into()
            } else {
                format!(
                    "not user-settable (no prompt); selected by {}",
                    sel.join(", ")
                )
            };
            row.blockers = sel;
        }
        return row;
    }

    let want = tri(&r.value);
    let got = tri(&final_value);
    let is_tri = matches!(sym.kind, Kind::Bool | Kind::Tristate);

    // Asked higher than we got (for string/int/hex: the symbol vanished from the .config,
    // which means it is not visible).
    let vanished = !is_tri && !fin.mentions(&r.symbol);
    let want = if vanished { 1 } else { want };
    if (is_tri && want > got) || vanished {
        // A bool asked to be m ends up y (or n when blocked).
        // Dependencies: the best definition's unmet deps.
        let mut best: Option<(u8, Vec<String>, String)> = None;
        for d in &sym.defs {
            let deps = d.all_deps();
            let lim = deps.iter().map(|e| db.eval(e, fin)).min().unwrap_or(2);
            let unmet: Vec<String> = deps.iter().flat_map(|e| db.unmet(e, want, fin)).collect();
            let text = deps
                .iter()
                .filter(|e| db.eval(e, fin) < want)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" && ");
            if best.as_ref().is_none_or(|(b, _, _)| lim > *b) {
                best = Some((lim, unmet, text));
            }
        }
        if let Some((lim, unmet, text)) = best {
            if lim == 1 && want == 2 && got == 1 {
                row.status = Status::UnmetDependency;
                row.reason =
                    format!("can only be a module: `depends on {text}` limits it to m; ask for m");
                row.blockers = unmet
                    .into_iter()
                    .filter(|b| !b.starts_with("constant"))
                    .collect();
                return row;
            }
            if lim < want {
                row.status = Status::UnmetDependency;
                let mut blockers = unmet;
                if r.value == "m"
                    && fin.get("MODULES") != "y"
                    && !blockers.iter().any(|b| b.starts_with("MODULES="))
                {
                    blockers.insert(0, format!("MODULES={}", fin.get("MODULES")));
                }
                row.reason = format!(
                    "`depends on {}` is not met: {}",
                    if text.is_empty() {
                        "m".to_string()
                    } else {
                        text
                    },
                    if blockers.is_empty() {
                        "the dependencies evaluate too low".to_string()
                    } else {
                        blockers.join(", ")
                    }
                );
                row.blockers = blockers;
                return row;
            }
        }
        if r.value == "m" && fin.get("MODULES") != "y" {
            row.status = Status::UnmetDependency;
            row.reason = format!(
                "asked for a module but modules are disabled (MODULES={})",
                fin.get("MODULES")
            );
            row.blockers = vec![format!("MODULES={}", fin.get("MODULES"))];
            return row;
        }
        let prompt_visible = sym.defs.iter().any(|d| match &d.prompt {
            Some(None) => true,
            Some(Some(c)) => db.eval(c, fin) > 0,
            None => false,
        });
        if sym.defs.iter().any(|d| d.in_choice) {
            let chosen = choice_siblings(db, &r.symbol, fin);
            row.status = Status::ChoiceOther;
            row.reason = if chosen.is_empty() {
                "member of a `choice`; another member was chosen".into()
            } else {
                format!("member of a `choice`; {} was chosen instead (set it to n in the same fragment)", chosen.join(", "))
            };
            row.blockers = chosen;
            return row;
        }
        if !prompt_visible {
            let all: Vec<String> = db
                .selected_by
                .get(&r.symbol)
                .map(|v| {
                    v.iter()
                        .filter(|s| !s.imply)
                        .map(|s| format!("{}={}", s.by, fin.get(&s.by)))
                        .collect()
                })
                .unwrap_or_default();
            row.status = Status::NotSettable;
            let hidden_by: Vec<String> = sym
                .defs
                .iter()
                .filter_map(|d| d.prompt.as_ref().and_then(|p| p.as_ref()))
                .flat_map(|c| db.unmet(c, 1, fin))
                .collect();
            row.reason = if !hidden_by.is_empty() {
                format!(
                    "its prompt is hidden ({}); only a `select` can set it",
                    hidden_by.join(", ")
                )
            } else if all.is_empty() {
                "not user-settable (no prompt) and nothing selects it; it follows its default"
                    .into()
            } else {
                format!(
                    "not user-settable (no prompt); only a `select` sets it and no selector is enabled: {}",
                    shorten(&all, 8)
                )
            };
            row.blockers = if hidden_by.is_empty() { all } else { hidden_by };
            return row;
        }
    }

    // Asked lower than we got.
    if is_tri && want < got {
        let sel = active_selectors(db, &r.symbol, fin);
        if !sel.is_empty() {
            row.status = Status::ForcedBySelect;
            row.reason = format!(
                "forced to {} by `select` from {}",
                final_value,
                sel.join(", ")
            );
            row.blockers = sel;
            return row;
        }
        if sym.kind == Kind::Bool && want == 1 {
            row.status = Status::BoolNotModule;
            row.reason = "a bool option cannot be a module; it is built in (y)".into();
            return row;
        }
        if !sym.user_settable() {
            row.status = Status::NotSettable;
            row.reason =
                format!("not user-settable (no prompt); its default makes it {final_value}");
            return row;
        }
        if sym.defs.iter().any(|d| d.in_choice) {
            row.status = Status::ChoiceOther;
            row.reason = "member of a `choice`: one member must be y; pick another member to turn this one off".into();
            return row;
        }
    }

    row.status = Status::Changed;
    row.reason = format!(
        "olddefconfig changed {} to {} (check its `range`/`default` lines{})",
        r.value,
        final_value,
        row.defined_at
            .as_ref()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default()
    );
    row
}

fn shorten(items: &[String], n: usize) -> String {
    if items.len() <= n {
        items.join(", ")
    } else {
        format!("{} and {} more", items[..n].join(", "), items.len() - n)
    }
}

/// Enabled symbols that `select` this one under `cfg` (with their values).
fn active_selectors(db: &KconfigDb, symbol: &str, cfg: &DotConfig) -> Vec<String> {
    db.selected_by
        .get(symbol)
        .map(|v| {
            v.iter()
                .filter(|s| {
                    !s.imply
                        && tri(cfg.get(&s.by)) > 0
                        && s.cond.as_ref().is_none_or(|c| db.eval(c, cfg) > 0)
                })
                .map(|s| format!("{}={}", s.by, cfg.get(&s.by)))
                .collect()
        })
        .unwrap_or_default()
}

/// Other members of the choice that holds `symbol` that are y.
fn choice_siblings(db: &KconfigDb, symbol: &str, cfg: &DotConfig) -> Vec<String> {
    let Some(sym) = db.get(symbol) else {
        return Vec::new();
    };
    let mine: Vec<(&str, usize)> = sym
        .defs
        .iter()
        .filter(|d| d.in_choice)
        .map(|d| (d.file.as_str(), d.line))
        .collect();
    let mut out = Vec::new();
    for s in db.symbols.values() {
        if s.name == symbol || cfg.get(&s.name) != "y" {
            continue;
        }
        // Same file and near: members of one choice block sit together.
        if s.defs.iter().any(|d| {
            d.in_choice
                && mine
                    .iter()
                    .any(|(f, l)| *f == d.file && d.line.abs_diff(*l) < 200)
        }) {
            out.push(format!("{}=y", s.name));
        }
    }
    out.sort();
    out
}

/// Words for a status (the report table).
pub fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::OkNotSettable => "ok*",
        Status::Unknown => "unknown",
        Status::UnmetDependency => "unmet-dep",
        Status::ForcedBySelect => "selected",
        Status::NotSettable => "no-prompt",
        Status::ChoiceOther => "choice",
        Status::BoolNotModule => "bool",
        Status::Changed => "changed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const KCONFIG: &str = r#"
config MODULES
	bool "modules"
config NET
	bool "net"
menuconfig RUNTIME_TESTING_MENU
	bool "Runtime Testing"
if RUNTIME_TESTING_MENU
config TEST_BPF
	tristate "Test BPF"
	depends on m && NET
endif
config BPF
	bool
config BPF_SYSCALL
	bool "syscall"
	select BPF
config SLOW
	bool "slow"
	select CRC if NET
config CRC
	tristate "crc"
config HIDDEN
	bool
config FLAG
	bool "flag"
choice
	prompt "c"
config A_ONE
	bool "one"
config A_TWO
	bool "two"
endchoice
config NR
	int "nr"
	range 1 4
"#;

    fn req(sym: &str, v: &str) -> Requested {
        Requested {
            symbol: sym.into(),
            value: v.into(),
            source: "t.config".into(),
            why: String::new(),
        }
    }

    fn check(final_cfg: &str, asks: &[(&str, &str)]) -> Vec<SymbolRow> {
        let db = KconfigDb::from_text(KCONFIG, Path::new("/nonexistent"));
        let fin = DotConfig::parse(final_cfg);
        let r: Vec<Requested> = asks.iter().map(|(s, v)| req(s, v)).collect();
        verify(&r, &fin, &db)
    }

    #[test]
    fn reasons_for_each_kind_of_mismatch() {
        let fin = "CONFIG_MODULES=y\nCONFIG_NET=y\n# CONFIG_RUNTIME_TESTING_MENU is not set\nCONFIG_BPF=y\nCONFIG_BPF_SYSCALL=y\n\
                   CONFIG_SLOW=y\nCONFIG_CRC=y\nCONFIG_A_ONE=y\nCONFIG_NR=4\n";
        let rows = check(
            fin,
            &[
                ("TEST_BPF", "m"),
                ("NO_SUCH_THING", "y"),
                ("BPF_SYSCALL", "y"),
                ("BPF", "y"),
                ("CRC", "m"),
                ("HIDDEN", "y"),
                ("A_TWO", "y"),
                ("NR", "9"),
                ("GONE", "n"),
            ],
        );
        let st: Vec<Status> = rows.iter().map(|r| r.status).collect();
        assert_eq!(
            st,
            [
                Status::UnmetDependency,
                Status::Unknown,
                Status::Ok,
                Status::OkNotSettable,
                Status::ForcedBySelect,
                Status::NotSettable,
                Status::ChoiceOther,
                Status::Changed,
                Status::Ok,
            ]
        );
        assert_eq!(rows[0].blockers, ["RUNTIME_TESTING_MENU=n"]);
        assert!(
            rows[0].reason.contains("RUNTIME_TESTING_MENU=n"),
            "{}",
            rows[0].reason
        );
        assert!(rows[1].reason.contains("not defined"));
        assert_eq!(rows[3].blockers, ["BPF_SYSCALL=y"]);
        assert!(
            rows[4].reason.contains("select") && rows[4].reason.contains("SLOW=y"),
            "{}",
            rows[4].reason
        );
        assert!(
            rows[5].reason.contains("nothing selects it"),
            "{}",
            rows[5].reason
        );
        assert_eq!(rows[6].blockers, ["A_ONE=y"]);
        assert!(rows[2].core && !rows[0].core);
        assert_eq!(rows[0].final_value, "n");
    }

    #[test]
    fn a_string_option_behind_an_unmet_dependency() {
        let db = KconfigDb::from_text("config CMDLINE_BOOL\n\tbool \"cmdline\"\nconfig CMDLINE\n\tstring \"c\"\n\tdepends on CMDLINE_BOOL\n", Path::new("/x"));
        let fin = DotConfig::parse("# CONFIG_CMDLINE_BOOL is not set\n");
        let rows = verify(&[req("CMDLINE", "\"console=ttyS0\"")], &fin, &db);
        assert_eq!(
            rows[0].status,
            Status::UnmetDependency,
            "{}",
            rows[0].reason
        );
        assert_eq!(rows[0].blockers, ["CMDLINE_BOOL=n"]);
    }

    #[test]
    fn a_module_only_option_asked_as_y() {
        let rows = check(
            "CONFIG_MODULES=y\nCONFIG_NET=y\nCONFIG_RUNTIME_TESTING_MENU=y\nCONFIG_TEST_BPF=m\n",
            &[("TEST_BPF", "y")],
        );
        assert_eq!(rows[0].status, Status::UnmetDependency);
        assert!(
            rows[0].reason.contains("can only be a module"),
            "{}",
            rows[0].reason
        );
    }

    #[test]
    fn modules_off_blocks_m() {
        let rows = check(
            "CONFIG_NET=y\nCONFIG_RUNTIME_TESTING_MENU=y\n",
            &[("TEST_BPF", "m")],
        );
        assert_eq!(rows[0].status, Status::UnmetDependency);
        assert!(
            rows[0].blockers.iter().any(|b| b == "MODULES=n"),
            "{:?}",
            rows[0].blockers
        );
    }
}
