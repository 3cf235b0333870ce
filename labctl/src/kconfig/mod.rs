//! Kernel configuration: profiles (the base), `kconfig/` fragments and `--set` values
//! merged with merge_config.sh's rules, `olddefconfig`, then verification of every
//! requested symbol with a reason read from the tree's Kconfig files. Owns
//! [`ConfigPlan`] and [`ConfigReport`] (including the config hash used as build key).
//!
//! The source tree is never written: every `make` runs with `O=` pointing at a scratch
//! folder under `configs/.work/`. The result is stored atomically at
//! `configs/<version>-<hash8>/.config` with `report.json` beside it.

pub mod dotconfig;
pub mod lang;
pub mod merge;
pub mod profile;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use dotconfig::DotConfig;
pub use merge::{BaseFix, Override};
pub use profile::{
    default_fragments, embedded_fragment, embedded_fragments, fragments_for, Fragment, Profile,
};
pub use verify::{Status, SymbolRow, CORE};

use crate::arch::Arch;
use crate::events::{EventSink, SinkExt, Stage};
use crate::home::{write_atomic, CacheKey, Home};
use crate::process::{Cmd, ProcessError};
use crate::source::SourceTree;
use crate::version::KernelVersion;

#[derive(Debug, thiserror::Error)]
pub enum KconfigError {
    #[error("cannot read fragment {}: {source} (pass a readable file, or one of the built-in names: bpf, btf, tracing, vm, samples, lean, bcc)", path.display())]
    FragmentRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("fragment {name}: {source}")]
    FragmentParse {
        name: String,
        #[source]
        source: dotconfig::ParseError,
    },
    #[error("bad --set value {value:?}: {message}")]
    BadSet { value: String, message: String },
    #[error("cannot read the base config {}: {source}{hint}", path.display())]
    BaseRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
        hint: String,
    },
    #[error("{} is not a kernel source tree (no Makefile and Kconfig at its top)", .0.display())]
    NotATree(PathBuf),
    #[error("cannot read the Kconfig files of {}: {source}", path.display())]
    KconfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kernel configuration step failed: {0}")]
    Make(#[from] ProcessError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The cache (its folders, locks, atomic writes) failed.
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    /// The configuration was written and verified, but requested options did not land:
    /// a core option (always an error) or, with `--strict`, any option.
    #[error("{}", unsatisfied_text(report))]
    Unsatisfied { report: Box<ConfigReport> },
}

fn unsatisfied_text(r: &ConfigReport) -> String {
    let rows: Vec<String> = r
        .failures()
        .map(|s| {
            format!(
                "  CONFIG_{}: asked {}, got {} — {}",
                s.symbol, s.requested, s.final_value, s.reason
            )
        })
        .collect();
    let what = if r.core_failed.is_empty() {
        "requested options did not land (--strict)"
    } else {
        "core BPF options did not land"
    };
    format!(
        "{what}; the .config is at {}:\n{}",
        r.config_path.display(),
        rows.join("\n")
    )
}

impl KconfigError {
    /// True for Ctrl-C, from the make step or a lock wait.
    pub fn is_interrupted(&self) -> bool {
        match self {
            KconfigError::Home(h) => h.is_interrupted(),
            KconfigError::Make(p) => p.is_interrupted(),
            _ => false,
        }
    }
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> KconfigError + 'a {
    move |source| KconfigError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What to configure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigPlan {
    pub profile: Profile,
    /// Extra fragment files, after the default ones. A path that does not exist but names a
    /// built-in fragment (`bcc`, `bcc.config`) selects that one.
    pub fragments: Vec<PathBuf>,
    /// `CONFIG_X=value` pairs from `--set`, applied last: (symbol without `CONFIG_`, value).
    pub sets: Vec<(String, String)>,
    /// Any requested option that does not land is an error (not only core ones).
    pub strict: bool,
    /// Leave out the built-in fragments (only the profile, `--fragment`s and `--set`s).
    #[serde(default)]
    pub no_default_fragments: bool,
    /// The architecture configured for (its `ARCH=`, its fragment lines, `SRCARCH` for
    /// the Kconfig reader). Default: x86_64.
    #[serde(
        with = "crate::arch::serde_name",
        default = "crate::arch::serde_name::default"
    )]
    pub arch: &'static Arch,
}

impl Default for ConfigPlan {
    fn default() -> Self {
        ConfigPlan {
            profile: Profile::Lab,
            fragments: Vec::new(),
            sets: Vec::new(),
            strict: false,
            no_default_fragments: false,
            arch: Arch::x86_64(),
        }
    }
}

impl ConfigPlan {
    /// Parse `--set` values strictly (`CONFIG_X=y`); the error names the bad value.
    pub fn parse_sets<S: AsRef<str>>(values: &[S]) -> Result<Vec<(String, String)>, KconfigError> {
        values
            .iter()
            .map(|v| {
                dotconfig::parse_assignment(v.as_ref()).map_err(|message| KconfigError::BadSet {
                    value: v.as_ref().to_string(),
                    message,
                })
            })
            .collect()
    }
}

/// A fragment as the report lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FragmentInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Lines applied.
    pub applied: usize,
    /// Lines skipped because their version guard excludes this kernel (`CONFIG_X [>=5.18]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_for_version: Vec<String>,
}

/// The outcome of `configure`: where the .config is, its hash, and per-symbol rows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigReport {
    /// The final .config.
    pub config_path: PathBuf,
    /// Hash over the final .config, ignoring comments and order (sha256 hex).
    pub hash: String,
    pub version: KernelVersion,
    pub tree: PathBuf,
    pub profile: String,
    /// How the base was made (`make tinyconfig ...`, or the file it came from).
    pub base: String,
    pub fragments: Vec<FragmentInfo>,
    /// `--set` values as given.
    pub sets: Vec<String>,
    /// Every requested symbol: requested vs final value, status and reason.
    pub symbols: Vec<SymbolRow>,
    /// Base fixes (e.g. distro trusted-key paths blanked).
    pub base_fixes: Vec<BaseFix>,
    /// Values a later fragment redefined (merge_config.sh's warning).
    pub overrides: Vec<Override>,
    /// Everything worth a warning, in words (overrides, base fixes, mismatches).
    pub warnings: Vec<String>,
    /// Core options (BPF_SYSCALL, BPF_JIT, DEBUG_INFO_BTF, KPROBES, BPF_EVENTS) that did not land.
    pub core_failed: Vec<String>,
    pub strict: bool,
    /// Options set (not `n`) in the final .config: the size of the kernel.
    pub options_set: usize,
    /// The compiler Kconfig saw (`CONFIG_CC_VERSION_TEXT`): the build must use the same
    /// one for its `olddefconfig` to be a no-op.
    pub cc_version_text: String,
    pub duration_secs: f64,
    /// The architecture this config is for.
    #[serde(serialize_with = "crate::arch::serde_name::serialize")]
    pub arch: &'static Arch,
}

impl ConfigReport {
    /// A report for a .config that labctl did not write (tests, a user's finished config):
    /// no requested symbols, hash computed the same way as `configure` does.
    pub fn for_existing(
        config_path: &Path,
        version: KernelVersion,
        tree: &Path,
    ) -> Result<ConfigReport, KconfigError> {
        let text = std::fs::read_to_string(config_path).map_err(|source| KconfigError::Io {
            op: "read",
            path: config_path.to_path_buf(),
            source,
        })?;
        let dot = dotconfig::DotConfig::parse(&text);
        Ok(ConfigReport {
            config_path: config_path.to_path_buf(),
            hash: dot.hash(),
            version,
            tree: tree.to_path_buf(),
            profile: "file".into(),
            base: format!("{} (as is)", config_path.display()),
            fragments: vec![],
            sets: vec![],
            symbols: vec![],
            base_fixes: vec![],
            overrides: vec![],
            warnings: vec![],
            core_failed: vec![],
            strict: false,
            options_set: dot.iter().filter(|(_, v)| *v != "n").count(),
            cc_version_text: dot.get("CC_VERSION_TEXT").trim_matches('"').to_string(),
            duration_secs: 0.0,
            arch: Arch::of_config(&text).unwrap_or_else(Arch::x86_64),
        })
    }

    /// True when no core option failed and (with --strict) nothing else did.
    pub fn ok(&self) -> bool {
        self.core_failed.is_empty() && !(self.strict && self.mismatches().next().is_some())
    }
    pub fn core_ok(&self) -> bool {
        self.core_failed.is_empty()
    }
    /// Rows whose final value is not the requested one.
    pub fn mismatches(&self) -> impl Iterator<Item = &SymbolRow> {
        self.symbols.iter().filter(|s| !s.status.satisfied())
    }
    /// Rows that make the run fail: core mismatches, or every mismatch with --strict.
    pub fn failures(&self) -> impl Iterator<Item = &SymbolRow> {
        self.symbols
            .iter()
            .filter(move |s| !s.status.satisfied() && (s.core || self.strict))
    }
    pub fn row(&self, symbol: &str) -> Option<&SymbolRow> {
        self.symbols.iter().find(|s| s.symbol == symbol)
    }
}

const MAKE_TIMEOUT: Duration = Duration::from_secs(20 * 60);

fn make(tree: &Path, out: &Path, target: &str, arch: &Arch) -> Cmd {
    Cmd::new("make")
        .arg("-C")
        .arg(tree)
        .arg(format!("O={}", out.display()))
        .args(arch_make_vars(arch).iter().map(|(k, v)| format!("{k}={v}")))
        .arg(target)
        // Only our .config: a stray KCONFIG_* in the caller's environment would redirect it.
        .env_remove("KCONFIG_CONFIG")
        .env_remove("KCONFIG_ALLCONFIG")
        .timeout(MAKE_TIMEOUT)
}

/// `ARCH=` and `CROSS_COMPILE=` for make when `arch` is not this machine's (none for a
/// native build: make's own default is the host's architecture).
pub fn arch_make_vars(arch: &Arch) -> Vec<(String, String)> {
    match arch.cross_prefix() {
        Some(prefix) => vec![
            ("ARCH".into(), arch.kernel_arch.clone()),
            ("CROSS_COMPILE".into(), prefix.to_string()),
        ],
        None => Vec::new(),
    }
}

/// The lines `arch`'s file adds to the built-in fragments, as a fragment of its own.
pub fn arch_fragment(arch: &Arch) -> Fragment {
    Fragment {
        name: format!("arch/{}.toml", arch.name),
        path: None,
        text: arch.kconfig.fragment.clone(),
    }
}

/// Read the fragments of a plan: the built-in ones for its profile and the architecture's
/// lines, then `--fragment`s (files, or built-in names).
pub fn plan_fragments(plan: &ConfigPlan) -> Result<Vec<Fragment>, KconfigError> {
    let mut out = if plan.no_default_fragments {
        Vec::new()
    } else {
        let mut v = fragments_for(&plan.profile);
        v.push(arch_fragment(plan.arch));
        v
    };
    for p in &plan.fragments {
        // A built-in name (`vm`, `bcc.config`) unless a regular file of that name is
        // here: a folder `vm/` in the working directory (this repository has one) is
        // never a fragment.
        let is_name = p.components().count() == 1 && !p.is_file();
        if is_name {
            if let Some(f) = embedded_fragment(&p.to_string_lossy()) {
                out.push(f);
                continue;
            }
        }
        let text = std::fs::read(p).map_err(|source| KconfigError::FragmentRead {
            path: p.clone(),
            source,
        })?;
        let text = String::from_utf8(text).map_err(|_| KconfigError::FragmentRead {
            path: p.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
        })?;
        out.push(Fragment {
            name: p.display().to_string(),
            path: Some(p.clone()),
            text,
        });
    }
    Ok(out)
}

/// Configure `tree` for a BPF lab: base (profile) + fragments + `--set`, `olddefconfig`,
/// verification. Stores `.config` and `report.json` under `configs/<version>-<hash8>/`.
/// Returns the report; a core option that did not land (or any mismatch with
/// `plan.strict`) returns [`KconfigError::Unsatisfied`] carrying the report.
pub fn configure(
    home: &Home,
    tree: &SourceTree,
    plan: &ConfigPlan,
    sink: &dyn EventSink,
) -> Result<ConfigReport, KconfigError> {
    configure_in(home, tree, plan, &crate::userland::Userland::host(), sink)
}

/// [`configure`] with make run by `userland`'s tools (the compiler is part of a kernel
/// config: `CONFIG_CC_VERSION_TEXT`, the `CC_HAS_*` probes), e.g. inside a Debian root
/// for `--toolchain debian:<suite>`.
pub fn configure_in(
    home: &Home,
    tree: &SourceTree,
    plan: &ConfigPlan,
    userland: &crate::userland::Userland,
    sink: &dyn EventSink,
) -> Result<ConfigReport, KconfigError> {
    let start = Instant::now();
    let src = tree.path.as_path();
    if !src.join("Makefile").is_file() || !src.join("Kconfig").is_file() {
        return Err(KconfigError::NotATree(src.to_path_buf()));
    }
    let version = tree.version;

    // Inputs first, so bad input fails before any make runs.
    let fragments = plan_fragments(plan)?;
    let mut layers = Vec::new();
    let mut infos = Vec::new();
    for f in &fragments {
        let (kept, skipped) =
            f.entries(&version)
                .map_err(|source| KconfigError::FragmentParse {
                    name: f.name.clone(),
                    source,
                })?;
        infos.push(FragmentInfo {
            name: f.name.clone(),
            path: f.path.clone(),
            applied: kept.len(),
            skipped_for_version: skipped
                .iter()
                .map(|e| {
                    format!(
                        "CONFIG_{} {}",
                        e.symbol,
                        e.guard.as_ref().map(|g| g.to_string()).unwrap_or_default()
                    )
                })
                .collect(),
        });
        layers.push(merge::Layer {
            name: f.name.clone(),
            entries: kept,
        });
    }
    if !plan.sets.is_empty() {
        let mut entries = Vec::new();
        for (i, (s, v)) in plan.sets.iter().enumerate() {
            let v = dotconfig::normalise_value(v).map_err(|message| KconfigError::BadSet {
                value: format!("CONFIG_{s}={v}"),
                message,
            })?;
            entries.push(dotconfig::Entry {
                symbol: s.clone(),
                value: v,
                line: i + 1,
                guard: None,
                why: "--set".into(),
            });
        }
        layers.push(merge::Layer {
            name: "--set".into(),
            entries,
        });
    }
    let base_path = profile::base_file(&plan.profile);
    let base_text = match &base_path {
        Some(p) => Some(std::fs::read_to_string(p).map_err(|source| KconfigError::BaseRead {
            path: p.clone(),
            source,
            hint: match plan.profile {
                Profile::Distro(None) => " (this host has no config for its running kernel in /boot: pass distro:PATH, e.g. a config-* file from a linux-image package extracted with dpkg-deb)".into(),
                _ => String::new(),
            },
        })?),
        None => None,
    };

    // Scratch O= folder, one per tree, reused so scripts/kconfig is built once.
    let configs = home.ensure(home.configs())?;
    // Per tree and userland: scripts/kconfig built by one C library must not run in another.
    let mut tk = src.as_os_str().as_encoded_bytes().to_vec();
    if !userland.spec().is_host() {
        tk.extend_from_slice(format!("\0{}", userland.spec()).as_bytes());
    }
    if !plan.arch.is_default() {
        tk.extend_from_slice(format!("\0arch={}", plan.arch.name).as_bytes());
    }
    let tree_key = hex::encode(&Sha256::digest(&tk)[..4]);
    let work = configs.join(".work").join(format!("{version}-{tree_key}"));
    let _lock = home.lock(&CacheKey::ConfigWork(format!("{version}-{tree_key}")))?;
    std::fs::create_dir_all(&work).map_err(io_err("create directory", &work))?;
    let dot = work.join(".config");
    let _ = std::fs::remove_file(&dot);

    let stage = sink.stage(
        Stage::Config,
        format!("linux-{version}: profile {}", plan.profile),
    );
    // 1. The base.
    let mut base_desc = String::new();
    let mut tree_layers = Vec::new();
    if let Some(recipe) = profile::base_recipe(&plan.profile, src, plan.arch) {
        for t in &recipe.make_targets {
            userland
                .wrap(make(src, &work, t, plan.arch))
                .run_checked(sink)?;
        }
        for f in &recipe.tree_fragments {
            let text = std::fs::read_to_string(f).map_err(io_err("read", f))?;
            let name = f.strip_prefix(src).unwrap_or(f).display().to_string();
            let entries = dotconfig::parse(&text, false).expect("lenient");
            tree_layers.push(merge::Layer { name, entries });
        }
        base_desc = recipe.description;
    }
    let mut base = match &base_text {
        Some(t) => {
            base_desc = format!("{}", base_path.as_ref().expect("file profile").display());
            DotConfig::parse(t)
        }
        None => DotConfig::parse(&std::fs::read_to_string(&dot).map_err(io_err("read", &dot))?),
    };
    // The tree's own fragments (kvm_guest.config) are part of the base.
    if !tree_layers.is_empty() {
        base = merge::merge(&base, &tree_layers).config;
    }
    let base_fixes = merge::fix_base(&mut base, src);

    // 2. Merge and olddefconfig.
    let merged = merge::merge(&base, &layers);
    write_atomic(&dot, merged.config.render().as_bytes())?;
    userland
        .wrap(make(src, &work, "olddefconfig", plan.arch))
        .run_checked(sink)?;
    let final_text = std::fs::read_to_string(&dot).map_err(io_err("read", &dot))?;
    let fin = DotConfig::parse(&final_text);

    // 3. Verify against the tree's Kconfig.
    let env = lang::Env {
        srcarch: plan.arch.srcarch.clone(),
        arch: plan.arch.kernel_arch.clone(),
    };
    let db = lang::KconfigDb::load(src, &env).map_err(|source| KconfigError::KconfigRead {
        path: src.to_path_buf(),
        source,
    })?;
    sink.debug(format!(
        "read {} Kconfig files, {} symbols",
        db.files_read,
        db.symbols.len()
    ));
    let rows = verify::verify(&merged.requested, &fin, &db);

    let mut warnings = Vec::new();
    for f in &base_fixes {
        warnings.push(format!(
            "base fix: CONFIG_{} {} -> {}: {}",
            f.symbol, f.old_value, f.new_value, f.reason
        ));
    }
    for o in &merged.overrides {
        warnings.push(o.to_string());
    }
    for r in rows.iter().filter(|r| !r.status.satisfied()) {
        warnings.push(format!(
            "CONFIG_{}: asked {}, got {}: {}",
            r.symbol, r.requested, r.final_value, r.reason
        ));
    }
    for w in &warnings {
        sink.warn(w.clone());
    }
    let core_failed: Vec<String> = rows
        .iter()
        .filter(|r| r.core && !r.status.satisfied())
        .map(|r| r.symbol.clone())
        .collect();

    // 4. Store.
    let hash = fin.hash();
    let name = format!("{version}{}-{}", plan.arch.key_part(), &hash[..8]);
    let dir = configs.join(&name);
    let config_path = dir.join(".config");
    // Held until the report is stored too (`cache prune` takes the same key).
    let _stored = home.lock(&CacheKey::Config(name))?;
    write_atomic(&config_path, final_text.as_bytes())?;
    let report = ConfigReport {
        config_path,
        hash,
        version,
        tree: src.to_path_buf(),
        profile: plan.profile.to_string(),
        base: base_desc,
        fragments: infos,
        sets: plan
            .sets
            .iter()
            .map(|(s, v)| format!("CONFIG_{s}={v}"))
            .collect(),
        symbols: rows,
        base_fixes,
        overrides: merged.overrides,
        warnings,
        core_failed,
        strict: plan.strict,
        options_set: fin.set_count(),
        cc_version_text: fin.get("CC_VERSION_TEXT").trim_matches('"').to_string(),
        duration_secs: start.elapsed().as_secs_f64(),
        arch: plan.arch,
    };
    let json = serde_json::to_vec_pretty(&report).expect("serializable");
    write_atomic(&dir.join("report.json"), &json)?;
    sink.info(format!(
        "config {} ({} options set, {} requested, {} not as asked) -> {}",
        &report.hash[..8],
        report.options_set,
        report.symbols.len(),
        report.mismatches().count(),
        report.config_path.display()
    ));
    if !report.ok() {
        return Err(KconfigError::Unsatisfied {
            report: Box::new(report),
        });
    }
    stage.ok();
    Ok(report)
}

/// Convenience for callers holding only a path (tests, `--tree`): a [`SourceTree`] for
/// an existing extracted tree, its version read from the top Makefile.
pub fn tree_at(path: &Path) -> Result<SourceTree, KconfigError> {
    let mk = path.join("Makefile");
    let text =
        std::fs::read_to_string(&mk).map_err(|_| KconfigError::NotATree(path.to_path_buf()))?;
    let field = |name: &str| -> Option<u32> {
        text.lines().take(12).find_map(|l| {
            l.strip_prefix(name)
                .and_then(|r| r.trim_start().strip_prefix('='))
                .and_then(|v| v.trim().parse().ok())
        })
    };
    match (field("VERSION"), field("PATCHLEVEL"), field("SUBLEVEL")) {
        (Some(a), Some(b), Some(c)) => Ok(SourceTree {
            version: KernelVersion::new(a, b, c),
            path: path.to_path_buf(),
            sha256: String::new(),
            source: "path".into(),
            url: String::new(),
            verified: "not verified: a tree given by path".into(),
            reused: true,
        }),
        _ => Err(KconfigError::NotATree(path.to_path_buf())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_parse_strictly() {
        let ok = ConfigPlan::parse_sets(&["CONFIG_BPF=y", "CONFIG_NAME=\"x\""]).unwrap();
        assert_eq!(
            ok,
            [
                ("BPF".to_string(), "y".to_string()),
                ("NAME".into(), "\"x\"".into())
            ]
        );
        for bad in ["CONFIG_", "FOO", "CONFIG_X=maybe", ""] {
            let e = ConfigPlan::parse_sets(&[bad]).unwrap_err();
            assert!(matches!(e, KconfigError::BadSet { .. }), "{bad:?}: {e}");
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn unreadable_fragment_is_named() {
        let plan = ConfigPlan {
            fragments: vec![PathBuf::from("/nonexistent/x.config")],
            ..Default::default()
        };
        let e = plan_fragments(&plan).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.config"), "{e}");
        let plan = ConfigPlan {
            fragments: vec![PathBuf::from("bcc")],
            no_default_fragments: true,
            ..Default::default()
        };
        let f = plan_fragments(&plan).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name, "bcc.config");
    }

    #[test]
    fn tree_version_from_makefile() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("Makefile"),
            "# SPDX\nVERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 46\nEXTRAVERSION =\n",
        )
        .unwrap();
        assert_eq!(
            tree_at(d.path()).unwrap().version,
            KernelVersion::new(5, 10, 46)
        );
        assert!(tree_at(&d.path().join("nope")).is_err());
    }
}
