//! The known-fix catalogue: one TOML file per entry in `labctl/fixes/`, embedded at
//! compile time. Owns the entry schema ([`Fix`]), the applicability predicates
//! ([`When`], evaluated against a [`Facts`] value: kernel version, toolchain versions,
//! .config text, host paths), the fix plan for a build ([`plan`]), applying remedies to
//! the build's private tree ([`apply`]) and matching a failed build's log against every
//! entry ([`diagnose_log`]).
//!
//! Remedy kinds (see `docs/troubleshooting.md` for each entry):
//! - `edit`: replace a literal text in one file of the build's *private* tree copy (the
//!   hard-link farm, see `pipeline.rs`); the file is rewritten through temp + rename, which
//!   breaks the hard link, so the shared source tree is never modified.
//! - `make-var`: a `NAME=value` on make's command line (appended to an earlier value of
//!   the same name with a space); `{obj}` and `{src}` expand to the build's folders.
//! - `pahole-flags`: make runs pahole through a wrapper script in the build folder that
//!   adds the given flags whenever pahole encodes BTF (`-J`).
//! - `config`: `CONFIG_X=value` lines merged into the build's .config before olddefconfig.
//! - `package`: a host package per distro; cannot be applied by a build, the doctor
//!   checks for it first and prints the install command.
//! - `builtin`: labctl's pipeline always does this (e.g. `headers_install` before samples).
//! - `advice`: a runtime or manual step explained in the diagnosis (e.g. memlock).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::version::KernelVersion;

/// Every catalogue file, embedded so an installed binary needs no checkout.
/// `tests::every_file_is_listed` keeps this list in sync with `labctl/fixes/`.
macro_rules! fixes {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../fixes/", $name, ".toml")))),*]
    };
}
pub const FILES: &[(&str, &str)] = fixes![
    "disk-full",
    "pahole-missing",
    "pahole-too-old",
    "bpf-options-missing",
    "samples-bpf-headers-u32",
    "samples-bpf-vmlinux-btf",
    "samples-bpf-o-depfile",
    "samples-bpf-o-userprogs",
    "samples-bpf-ms-extensions",
    "samples-bpf-sockex3-prog-type",
    "samples-bpf-arm64-syscall-prefix",
    "samples-bpf-arm64-no-open-syscall",
    "ftrace-jmp-odd-callback",
    "gnu-stubs-32",
    "gcc12-libsubcmd-use-after-free",
    "gcc12-objtool-format-truncation",
    "pahole-enum64",
    "libelf-missing",
    "gcc10-yylloc-fcommon",
    "gcc10-force-order",
    "distro-trusted-keys",
    "samples-asm-types-h",
    "samples-memlock",
    "binutils-236-objtool-symtab",
    "glibc-238-strlcpy",
    "werror-new-warnings",
    "openssl-headers-missing",
    "rsync-missing",
    "clang-llc-bpf-missing",
    "flex-bison-missing",
    "module-btf-mismatch",
];

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("catalogue file fixes/{file}.toml is invalid: {message}")]
    Invalid { file: String, message: String },
    #[error("catalogue file fixes/{file}.toml is invalid: {source}")]
    Toml {
        file: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("fix {id}: cannot edit {}: {source}", path.display())]
    Edit {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One catalogue entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    pub id: String,
    pub title: String,
    /// Regexes matched against each line of a build log (any one matches).
    pub patterns: Vec<String>,
    /// Plain-words cause.
    pub cause: String,
    /// What a person does by hand without labctl.
    pub manual: String,
    /// Anchor in docs/troubleshooting.md.
    pub docs: String,
    /// True when the fact was checked by hand on a real tree; false = from reports only.
    #[serde(default = "yes")]
    pub verified: bool,
    #[serde(default)]
    pub when: When,
    pub remedy: Remedy,
    /// Fixture for the entry's own test: a log line the detector must match and, for
    /// edits, the file text the remedy must change.
    pub test: FixTest,
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Kernel version sets, any may match: `">=5.10, <5.10.102"`.
    #[serde(default)]
    pub kernel: Vec<String>,
    #[serde(default)]
    pub gcc: Option<String>,
    #[serde(default)]
    pub binutils: Option<String>,
    #[serde(default)]
    pub pahole: Option<String>,
    #[serde(default)]
    pub clang: Option<String>,
    #[serde(default)]
    pub glibc: Option<String>,
    /// Regexes that must all match some line of the .config.
    #[serde(default)]
    pub config: Vec<String>,
    /// Regexes none of which may match a line of the .config.
    #[serde(default)]
    pub config_lacks: Vec<String>,
    /// Host paths that must exist / must not exist.
    #[serde(default)]
    pub host_has: Vec<String>,
    #[serde(default)]
    pub host_lacks: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Remedy {
    Edit {
        file: String,
        find: String,
        replace: String,
    },
    MakeVar {
        name: String,
        value: String,
        /// Which make step gets it: "kernel" (every kernel make) or "samples".
        #[serde(default = "kernel_step")]
        step: String,
    },
    PaholeFlags {
        flags: Vec<String>,
    },
    /// samples/bpf's clang runs through a wrapper that adds these flags (one program
    /// path for `CLANG=`: 5.10's Makefile checks `which -- "$(CLANG)"`).
    ClangFlags {
        flags: Vec<String>,
    },
    Config {
        set: Vec<String>,
    },
    Package {
        packages: BTreeMap<String, Vec<String>>,
    },
    Builtin {
        does: String,
    },
    Advice {
        does: String,
    },
}
fn kernel_step() -> String {
    "kernel".into()
}

impl Remedy {
    pub fn kind(&self) -> &'static str {
        match self {
            Remedy::Edit { .. } => "edit",
            Remedy::MakeVar { .. } => "make-var",
            Remedy::PaholeFlags { .. } => "pahole-flags",
            Remedy::ClangFlags { .. } => "clang-flags",
            Remedy::Config { .. } => "config",
            Remedy::Package { .. } => "package",
            Remedy::Builtin { .. } => "builtin",
            Remedy::Advice { .. } => "advice",
        }
    }
    /// Whether a build applies this remedy itself (before compiling).
    pub fn is_applied_by_build(&self) -> bool {
        matches!(
            self,
            Remedy::Edit { .. }
                | Remedy::MakeVar { .. }
                | Remedy::PaholeFlags { .. }
                | Remedy::ClangFlags { .. }
                | Remedy::Config { .. }
        )
    }
    /// One sentence: what labctl does about it.
    pub fn labctl_does(&self) -> String {
        match self {
            Remedy::Edit { file, .. } => format!("edits `{file}` in the build's private copy of the tree (the fetched tree stays untouched)"),
            Remedy::MakeVar { name, value, step } => format!("passes `{name}={value}` to make ({step} step)"),
            Remedy::PaholeFlags { flags } => format!("runs pahole through a wrapper that adds `{}` when encoding BTF", flags.join(" ")),
            Remedy::ClangFlags { flags } => format!("runs samples/bpf's clang through a wrapper that adds `{}`", flags.join(" ")),
            Remedy::Config { set } => format!("sets {} in the build's .config before olddefconfig", set.join(", ")),
            Remedy::Package { packages } => format!(
                "`labctl doctor` checks for it before the build and prints the install command ({})",
                packages.iter().map(|(d, p)| format!("{d}: {}", p.join(" "))).collect::<Vec<_>>().join("; ")
            ),
            Remedy::Builtin { does } | Remedy::Advice { does } => does.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FixTest {
    pub log: String,
    /// For `edit`: a file text containing `find`.
    #[serde(default)]
    pub before: Option<String>,
    /// Facts under which the entry must apply (for entries with predicates).
    #[serde(default)]
    pub kernel: Option<String>,
    #[serde(default)]
    pub tools: BTreeMap<String, String>,
    #[serde(default)]
    pub config: Option<String>,
}

/// A loaded catalogue with compiled regexes.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub fixes: Vec<Fix>,
    patterns: Vec<Vec<Regex>>,
}

impl Catalogue {
    /// The embedded catalogue (panics only if a shipped file is invalid, which the tests catch).
    pub fn builtin() -> &'static Catalogue {
        static C: std::sync::OnceLock<Catalogue> = std::sync::OnceLock::new();
        C.get_or_init(|| Catalogue::parse(FILES).expect("the embedded fix catalogue is valid"))
    }

    pub fn parse(files: &[(&str, &str)]) -> Result<Catalogue, CatalogueError> {
        let mut fixes = Vec::new();
        let mut patterns = Vec::new();
        for (name, text) in files {
            let bad = |message: String| CatalogueError::Invalid {
                file: name.to_string(),
                message,
            };
            let fix: Fix = toml::from_str(text).map_err(|source| CatalogueError::Toml {
                file: name.to_string(),
                source: Box::new(source),
            })?;
            if fix.id != *name {
                return Err(bad(format!("id {:?} differs from the file name", fix.id)));
            }
            let res = fix
                .patterns
                .iter()
                .map(|p| Regex::new(p).map_err(|e| bad(format!("pattern {p:?}: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            for s in fix
                .when
                .kernel
                .iter()
                .chain(fix.when.gcc.iter())
                .chain(fix.when.binutils.iter())
                .chain(fix.when.pahole.iter())
                .chain(fix.when.clang.iter())
                .chain(fix.when.glibc.iter())
            {
                VersionSet::parse(s).map_err(&bad)?;
            }
            for r in fix.when.config.iter().chain(&fix.when.config_lacks) {
                Regex::new(r).map_err(|e| bad(format!("config regex {r:?}: {e}")))?;
            }
            patterns.push(res);
            fixes.push(fix);
        }
        Ok(Catalogue { fixes, patterns })
    }

    pub fn get(&self, id: &str) -> Option<&Fix> {
        self.fixes.iter().find(|f| f.id == id)
    }

    /// Entries whose detector matches `line`.
    pub fn matching_line<'a>(&'a self, line: &str) -> impl Iterator<Item = &'a Fix> + 'a {
        let line = normalize(line);
        self.fixes
            .iter()
            .zip(&self.patterns)
            .filter(move |(_, ps)| ps.iter().any(|p| p.is_match(&line)))
            .map(|(f, _)| f)
    }

    /// Match a whole log: each entry that matched once, with the first line that matched.
    pub fn diagnose_log(&self, log: &str) -> Vec<Diagnosis> {
        let mut out: Vec<Diagnosis> = Vec::new();
        for raw in log.lines() {
            let line = normalize(raw);
            let line = line.as_str();
            for (f, ps) in self.fixes.iter().zip(&self.patterns) {
                if out.iter().any(|d| d.id == f.id) {
                    continue;
                }
                if ps.iter().any(|p| p.is_match(line)) {
                    out.push(Diagnosis {
                        id: f.id.clone(),
                        title: f.title.clone(),
                        line: line.trim().to_string(),
                        docs: f.docs.clone(),
                    });
                }
            }
        }
        out
    }
}

/// Make a log line comparable whatever the locale: typographic quotes (GCC in a UTF-8
/// locale) become ASCII quotes and terminal colour codes are removed.
pub fn normalize(line: &str) -> String {
    strip_ansi(line).replace(['\u{2018}', '\u{2019}'], "'")
}

/// Remove ANSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            if it.peek() == Some(&'[') {
                it.next();
                for d in it.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// One catalogue entry that explains a failed build's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub id: String,
    pub title: String,
    /// The first log line the entry's detector matched.
    pub line: String,
    pub docs: String,
}

// ---- predicates ---------------------------------------------------------------------

/// A dotted version of any length (`12.2.0`, `1.24`, `2.40`), compared numerically
/// with missing parts as zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DottedVersion(pub Vec<u32>);

impl DottedVersion {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().trim_start_matches('v');
        let parts: Option<Vec<u32>> = s.split('.').map(|p| p.parse().ok()).collect();
        parts.filter(|p| !p.is_empty()).map(DottedVersion)
    }
    pub fn from_kernel(v: &KernelVersion) -> Self {
        DottedVersion(vec![v.major, v.minor, v.patch])
    }
    /// Numeric comparison, missing parts as zero (`1.24` is `1.24.0`).
    pub fn cmp_to(&self, other: &Self) -> std::cmp::Ordering {
        let n = self.0.len().max(other.0.len());
        for i in 0..n {
            let a = self.0.get(i).copied().unwrap_or(0);
            let b = other.0.get(i).copied().unwrap_or(0);
            if a != b {
                return a.cmp(&b);
            }
        }
        std::cmp::Ordering::Equal
    }
}

impl std::fmt::Display for DottedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s: Vec<String> = self.0.iter().map(|n| n.to_string()).collect();
        f.write_str(&s.join("."))
    }
}

/// A conjunction of comparisons: `">=5.10, <5.10.102"`.
#[derive(Debug, Clone)]
pub struct VersionSet(Vec<(Op, DottedVersion)>);

#[derive(Debug, Clone, Copy)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
}

impl VersionSet {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in s.split(',') {
            let p = part.trim();
            let (op, rest) = if let Some(r) = p.strip_prefix(">=") {
                (Op::Ge, r)
            } else if let Some(r) = p.strip_prefix("<=") {
                (Op::Le, r)
            } else if let Some(r) = p.strip_prefix('>') {
                (Op::Gt, r)
            } else if let Some(r) = p.strip_prefix('<') {
                (Op::Lt, r)
            } else if let Some(r) = p.strip_prefix('=') {
                (Op::Eq, r)
            } else {
                (Op::Eq, p)
            };
            let v = DottedVersion::parse(rest).ok_or_else(|| {
                format!("bad version range {s:?} (use e.g. \">=5.10, <5.10.102\")")
            })?;
            out.push((op, v));
        }
        Ok(VersionSet(out))
    }
    pub fn contains(&self, v: &DottedVersion) -> bool {
        use std::cmp::Ordering::*;
        self.0.iter().all(|(op, b)| {
            let c = v.cmp_to(b);
            match op {
                Op::Ge => c != Less,
                Op::Gt => c == Greater,
                Op::Le => c != Greater,
                Op::Lt => c == Less,
                Op::Eq => c == Equal,
            }
        })
    }
}

/// What the predicates are evaluated against.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub kernel: Option<KernelVersion>,
    /// Tool name (gcc, binutils, pahole, clang, glibc) → version; absent = not installed.
    pub tools: BTreeMap<String, DottedVersion>,
    /// The .config text.
    pub config: String,
    /// Root for `host_has`/`host_lacks` paths (tests point it at a temp dir).
    pub host_root: PathBuf,
}

impl Facts {
    pub fn for_host(
        kernel: KernelVersion,
        tools: BTreeMap<String, DottedVersion>,
        config: String,
    ) -> Self {
        Facts {
            kernel: Some(kernel),
            tools,
            config,
            host_root: PathBuf::from("/"),
        }
    }
}

impl When {
    /// Why the entry applies (`Ok`) or the first predicate that does not hold (`Err`).
    pub fn check(&self, f: &Facts) -> Result<(), String> {
        if !self.kernel.is_empty() {
            let Some(k) = f.kernel else {
                return Err("kernel version unknown".into());
            };
            let kv = DottedVersion::from_kernel(&k);
            let hit = self.kernel.iter().any(|s| {
                VersionSet::parse(s)
                    .map(|vs| vs.contains(&kv))
                    .unwrap_or(false)
            });
            if !hit {
                return Err(format!("kernel {k} is outside {}", self.kernel.join(" | ")));
            }
        }
        for (tool, range) in [
            ("gcc", &self.gcc),
            ("binutils", &self.binutils),
            ("pahole", &self.pahole),
            ("clang", &self.clang),
            ("glibc", &self.glibc),
        ] {
            let Some(range) = range else { continue };
            let Some(v) = f.tools.get(tool) else {
                return Err(format!("{tool} not found"));
            };
            if !VersionSet::parse(range)
                .map(|vs| vs.contains(v))
                .unwrap_or(false)
            {
                return Err(format!("{tool} {v} is outside {range}"));
            }
        }
        for r in &self.config {
            let re = Regex::new(&format!("(?m){r}")).map_err(|e| e.to_string())?;
            if !re.is_match(&f.config) {
                return Err(format!(".config lacks {r}"));
            }
        }
        for r in &self.config_lacks {
            let re = Regex::new(&format!("(?m){r}")).map_err(|e| e.to_string())?;
            if re.is_match(&f.config) {
                return Err(format!(".config has {r}"));
            }
        }
        for p in &self.host_has {
            if !host_path(&f.host_root, p).exists() {
                return Err(format!("host lacks {p}"));
            }
        }
        for p in &self.host_lacks {
            if host_path(&f.host_root, p).exists() {
                return Err(format!("host has {p}"));
            }
        }
        Ok(())
    }
}

fn host_path(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

// ---- plan and apply ----------------------------------------------------------------

/// The entries a build applies, and why the others were skipped.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FixPlan {
    /// Entries whose predicates hold and whose remedy the build applies.
    pub apply: Vec<String>,
    /// Entries whose predicates hold but that the build cannot apply (packages, advice).
    pub notes: Vec<String>,
}

/// Select the entries whose predicates hold. `enabled` false = `--no-fixes` (nothing applied).
pub fn plan(cat: &Catalogue, facts: &Facts, enabled: bool) -> FixPlan {
    let mut p = FixPlan::default();
    for f in &cat.fixes {
        // An entry with no predicate at all is a diagnosis-only entry.
        let has_predicate = !(f.when.kernel.is_empty()
            && f.when.gcc.is_none()
            && f.when.binutils.is_none()
            && f.when.pahole.is_none()
            && f.when.clang.is_none()
            && f.when.glibc.is_none()
            && f.when.config.is_empty()
            && f.when.config_lacks.is_empty()
            && f.when.host_has.is_empty()
            && f.when.host_lacks.is_empty());
        if !has_predicate || f.when.check(facts).is_err() {
            continue;
        }
        if f.remedy.is_applied_by_build() {
            if enabled {
                p.apply.push(f.id.clone());
            }
        } else {
            p.notes.push(f.id.clone());
        }
    }
    p
}

/// What applying the plan produced for the make invocations.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Applied {
    /// `NAME=value` for every kernel make run.
    pub kernel_vars: Vec<(String, String)>,
    /// `NAME=value` for the samples/bpf make run.
    pub samples_vars: Vec<(String, String)>,
    /// Extra pahole flags (the pipeline writes the wrapper).
    pub pahole_flags: Vec<String>,
    /// Extra flags for samples/bpf's clang (the pipeline writes the wrapper).
    #[serde(default)]
    pub clang_flags: Vec<String>,
    /// `CONFIG_X=value` lines to merge into .config.
    pub config: Vec<String>,
    /// Per entry: what was done (or why an edit was already in place / not possible).
    pub log: Vec<(String, String)>,
}

/// Apply the planned entries: edits into `src` (the build's private tree, hard links
/// broken by rename), make variables and config lines collected into [`Applied`].
/// `{obj}`/`{src}` in make-var values expand to `obj`/`src`.
pub fn apply(
    cat: &Catalogue,
    plan: &FixPlan,
    src: &Path,
    obj: &Path,
) -> Result<Applied, CatalogueError> {
    let mut a = Applied::default();
    for id in &plan.apply {
        let Some(f) = cat.get(id) else { continue };
        match &f.remedy {
            Remedy::Edit {
                file,
                find,
                replace,
            } => {
                let path = src.join(file);
                let msg = match apply_edit(&path, find, replace) {
                    Ok(m) => m,
                    // The tree already differs (e.g. a stable release that backported the fix
                    // in its own words): record it and let the build show whether it matters.
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::InvalidData | std::io::ErrorKind::NotFound
                        ) =>
                    {
                        format!("not applied: {e}")
                    }
                    Err(source) => {
                        return Err(CatalogueError::Edit {
                            id: id.clone(),
                            path: path.clone(),
                            source,
                        })
                    }
                };
                a.log.push((id.clone(), msg));
            }
            Remedy::MakeVar { name, value, step } => {
                let v = value
                    .replace("{obj}", &obj.to_string_lossy())
                    .replace("{src}", &src.to_string_lossy());
                let vars = if step == "samples" {
                    &mut a.samples_vars
                } else {
                    &mut a.kernel_vars
                };
                add_var(vars, name, &v);
                a.log.push((id.clone(), format!("{name}={v} ({step})")));
            }
            Remedy::PaholeFlags { flags } => {
                a.pahole_flags.extend(flags.iter().cloned());
                a.log
                    .push((id.clone(), format!("pahole {}", flags.join(" "))));
            }
            Remedy::ClangFlags { flags } => {
                a.clang_flags.extend(flags.iter().cloned());
                a.log
                    .push((id.clone(), format!("samples clang {}", flags.join(" "))));
            }
            Remedy::Config { set } => {
                a.config.extend(set.iter().cloned());
                a.log.push((id.clone(), set.join(" ")));
            }
            _ => {}
        }
    }
    Ok(a)
}

/// Append `value` to an existing `name` (space-separated) or add it.
pub fn add_var(vars: &mut Vec<(String, String)>, name: &str, value: &str) {
    if let Some((_, v)) = vars.iter_mut().find(|(n, _)| n == name) {
        v.push(' ');
        v.push_str(value);
    } else {
        vars.push((name.to_string(), value.to_string()));
    }
}

/// Replace `find` by `replace` in `path`, writing a new file (temp + rename) so a hard
/// link to the pristine tree is broken rather than written through. Idempotent.
pub fn apply_edit(path: &Path, find: &str, replace: &str) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    if text.contains(find) {
        let new = text.replacen(find, replace, 1);
        let perm = std::fs::metadata(path)?.permissions();
        let tmp = path.with_file_name(format!(
            ".{}.labctl-tmp",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        std::fs::write(&tmp, new)?;
        std::fs::set_permissions(&tmp, perm)?;
        std::fs::rename(&tmp, path)?;
        Ok("edited".into())
    } else if text.contains(replace) {
        Ok("already in place".into())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the text this fix replaces is not in the file (the tree differs from what the catalogue expects)",
        ))
    }
}

/// Merge `CONFIG_X=value` lines into a .config text: later lines replace earlier ones
/// (including `# CONFIG_X is not set`).
pub fn merge_config(config: &str, set: &[String]) -> String {
    let mut out: Vec<String> = config.lines().map(str::to_string).collect();
    for line in set {
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        let unset = format!("# {name} is not set");
        let prefix = format!("{name}=");
        out.retain(|l| l.trim() != unset && !l.starts_with(&prefix));
        if !line.ends_with("=n") {
            out.push(line.clone());
        } else {
            out.push(unset);
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_left_without_btf_by_an_old_pahole_names_pahole_too_old() {
        // The kconfig check's own wording, as `--toolchain debian:bullseye` (pahole 1.20)
        // produced it for 7.1.8 and 6.12.107.
        let cat = Catalogue::builtin();
        for line in [
            "  CONFIG_DEBUG_INFO_BTF: asked y, got n — `depends on PAHOLE_VERSION>=122` is not met: PAHOLE_VERSION>=122 (PAHOLE_VERSION=120)",
            "  CONFIG_DEBUG_INFO_BTF: asked y, got n — `depends on DEBUG_INFO_DWARF4 || PAHOLE_VERSION>=121` is not met: DEBUG_INFO_DWARF4=n, PAHOLE_VERSION>=121 (PAHOLE_VERSION=120)",
        ] {
            let ids: Vec<&str> = cat.matching_line(line).map(|f| f.id.as_str()).collect();
            assert_eq!(ids, ["pahole-too-old"], "{line}");
        }
        assert_eq!(
            cat.matching_line("  CONFIG_BPF_JIT: asked y, got n — `depends on NET` is not met")
                .count(),
            0
        );
    }

    #[test]
    fn every_file_is_listed_and_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixes");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".toml"))
                    .map(str::to_string)
            })
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "labctl/fixes/*.toml and catalogue::FILES differ"
        );
        let c = Catalogue::parse(FILES).unwrap();
        assert!(c.fixes.len() >= 20);
    }

    #[test]
    fn version_sets() {
        let s = VersionSet::parse(">=5.10, <5.10.102").unwrap();
        assert!(s.contains(&DottedVersion::parse("5.10.46").unwrap()));
        assert!(s.contains(&DottedVersion::parse("5.10").unwrap()));
        assert!(!s.contains(&DottedVersion::parse("5.10.102").unwrap()));
        assert!(!s.contains(&DottedVersion::parse("5.9.9").unwrap()));
        assert!(VersionSet::parse(">=1.24")
            .unwrap()
            .contains(&DottedVersion::parse("v1.24").unwrap()));
        assert!(!VersionSet::parse(">=1.24")
            .unwrap()
            .contains(&DottedVersion::parse("1.22").unwrap()));
        assert!(VersionSet::parse("12")
            .unwrap()
            .contains(&DottedVersion::parse("12.0").unwrap()));
        assert!(VersionSet::parse(">=x").is_err());
    }

    fn facts(kernel: &str, tools: &[(&str, &str)], config: &str) -> Facts {
        Facts {
            kernel: KernelVersion::parse_plain(kernel),
            tools: tools
                .iter()
                .map(|(k, v)| (k.to_string(), DottedVersion::parse(v).unwrap()))
                .collect(),
            config: config.into(),
            host_root: PathBuf::from("/nonexistent-root"),
        }
    }

    const HOST: &[(&str, &str)] = &[
        ("gcc", "12.2.0"),
        ("binutils", "2.40"),
        ("pahole", "1.24"),
        ("clang", "14.0.6"),
        ("glibc", "2.36"),
    ];

    #[test]
    fn plan_for_5_10_46_on_gcc12_pahole124() {
        let c = Catalogue::builtin();
        let p = plan(
            c,
            &facts(
                "5.10.46",
                HOST,
                "CONFIG_BPF_SYSCALL=y\nCONFIG_DEBUG_INFO_BTF=y\n",
            ),
            true,
        );
        assert!(
            p.apply
                .contains(&"gcc12-libsubcmd-use-after-free".to_string()),
            "{p:?}"
        );
        assert!(p.apply.contains(&"pahole-enum64".to_string()), "{p:?}");
        assert!(!p
            .apply
            .contains(&"gcc12-objtool-format-truncation".to_string()));
        assert!(!p.apply.contains(&"gcc10-yylloc-fcommon".to_string()));
        // Fixed releases need neither.
        let p = plan(
            c,
            &facts(
                "5.10.251",
                HOST,
                "CONFIG_BPF_SYSCALL=y\nCONFIG_DEBUG_INFO_BTF=y\n",
            ),
            true,
        );
        assert!(
            !p.apply
                .contains(&"gcc12-libsubcmd-use-after-free".to_string()),
            "{p:?}"
        );
        assert!(!p.apply.contains(&"pahole-enum64".to_string()), "{p:?}");
        // Old toolchain: neither.
        let p = plan(
            c,
            &facts(
                "5.10.46",
                &[("gcc", "10.2.1"), ("pahole", "1.21")],
                "CONFIG_BPF_SYSCALL=y\nCONFIG_DEBUG_INFO_BTF=y\n",
            ),
            true,
        );
        assert!(p.apply.is_empty(), "{p:?}");
        // --no-fixes applies nothing.
        let p = plan(
            c,
            &facts("5.10.46", HOST, "CONFIG_DEBUG_INFO_BTF=y\n"),
            false,
        );
        assert!(p.apply.is_empty());
        // Without BTF the ENUM64 entry does not apply.
        let p = plan(c, &facts("5.16.5", HOST, "CONFIG_BPF=y\n"), true);
        assert!(!p.apply.contains(&"pahole-enum64".to_string()), "{p:?}");
        assert!(
            p.apply
                .contains(&"gcc12-objtool-format-truncation".to_string()),
            "{p:?}"
        );
    }

    /// Every entry: its detector matches its fixture log line and no unrelated
    /// entry claims the same line as its *only* explanation; its predicates hold on its
    /// fixture facts; its remedy does what it says on a fixture tree.
    #[test]
    fn every_entry_detects_and_remedies_its_fixture() {
        let c = Catalogue::builtin();
        for f in &c.fixes {
            let hits: Vec<&str> = c
                .matching_line(&f.test.log)
                .map(|x| x.id.as_str())
                .collect();
            assert!(
                hits.contains(&f.id.as_str()),
                "{}: detector does not match its fixture log {:?} (matched {hits:?})",
                f.id,
                f.test.log
            );
            let d = c.diagnose_log(&format!(
                "  CC foo.o\n{}\nmake: *** [Makefile:1] Error 2\n",
                f.test.log
            ));
            assert!(
                d.iter().any(|x| x.id == f.id),
                "{}: diagnose_log misses it",
                f.id
            );
            assert!(
                !f.docs.is_empty()
                    && f.docs
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'),
                "{}: docs anchor",
                f.id
            );

            let tmp = tempfile::tempdir().unwrap();
            let mut fx = facts(
                f.test.kernel.as_deref().unwrap_or("5.10.46"),
                &[],
                f.test.config.as_deref().unwrap_or(""),
            );
            fx.tools = f
                .test
                .tools
                .iter()
                .map(|(k, v)| (k.clone(), DottedVersion::parse(v).unwrap()))
                .collect();
            for (k, v) in HOST {
                fx.tools
                    .entry(k.to_string())
                    .or_insert_with(|| DottedVersion::parse(v).unwrap());
            }
            fx.host_root = tmp.path().join("host");
            for p in &f.when.host_has {
                let hp = host_path(&fx.host_root, p);
                std::fs::create_dir_all(hp.parent().unwrap()).unwrap();
                std::fs::write(&hp, "").unwrap();
            }
            if let Err(why) = f.when.check(&fx) {
                panic!("{}: predicates do not hold on its own fixture: {why}", f.id);
            }
            let p = plan(c, &fx, true);
            let src = tmp.path().join("src");
            let obj = tmp.path().join("obj");
            // This entry alone, applied to the fixture tree.
            let only = FixPlan {
                apply: vec![f.id.clone()],
                notes: vec![],
            };
            let apply_only = || apply(c, &only, &src, &obj).unwrap();
            match &f.remedy {
                Remedy::Edit {
                    file,
                    find,
                    replace,
                } => {
                    assert!(p.apply.contains(&f.id), "{}: not planned", f.id);
                    let before = f
                        .test
                        .before
                        .as_deref()
                        .unwrap_or_else(|| panic!("{}: edit needs test.before", f.id));
                    assert!(
                        before.contains(find.as_str()),
                        "{}: fixture lacks the find text",
                        f.id
                    );
                    let path = src.join(file);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    // The fixture file is a hard link to a "pristine" copy that must survive.
                    let pristine = tmp.path().join("pristine");
                    std::fs::write(&pristine, before).unwrap();
                    std::fs::hard_link(&pristine, &path).unwrap();
                    let a = apply_only();
                    assert_eq!(a.log[0].1, "edited", "{}", f.id);
                    let after = std::fs::read_to_string(&path).unwrap();
                    assert!(
                        after.contains(replace.as_str()) && after != before,
                        "{}: edit not applied",
                        f.id
                    );
                    assert_eq!(
                        std::fs::read_to_string(&pristine).unwrap(),
                        before,
                        "{}: pristine file was written through",
                        f.id
                    );
                    let again = apply_only();
                    assert_eq!(
                        again.log[0].1, "already in place",
                        "{}: not idempotent",
                        f.id
                    );
                }
                Remedy::MakeVar { name, step, .. } => {
                    assert!(p.apply.contains(&f.id), "{}: not planned", f.id);
                    let a = apply_only();
                    let vars = if step == "samples" {
                        &a.samples_vars
                    } else {
                        &a.kernel_vars
                    };
                    let v = &vars
                        .iter()
                        .find(|(n, _)| n == name)
                        .unwrap_or_else(|| panic!("{}: no {name}", f.id))
                        .1;
                    assert!(
                        !v.contains("{obj}") && !v.contains("{src}"),
                        "{}: unexpanded {v}",
                        f.id
                    );
                }
                Remedy::PaholeFlags { flags } => {
                    assert!(p.apply.contains(&f.id), "{}: not planned", f.id);
                    let a = apply_only();
                    assert_eq!(&a.pahole_flags, flags);
                }
                Remedy::ClangFlags { flags } => {
                    assert!(p.apply.contains(&f.id), "{}: not planned", f.id);
                    let a = apply_only();
                    assert_eq!(&a.clang_flags, flags);
                }
                Remedy::Config { set } => {
                    assert!(p.apply.contains(&f.id), "{}: not planned", f.id);
                    let a = apply_only();
                    let merged = merge_config(&fx.config, &a.config);
                    for s in set {
                        let shown = if s.ends_with("=n") {
                            format!("# {} is not set", s.trim_end_matches("=n"))
                        } else {
                            s.clone()
                        };
                        assert!(
                            merged.lines().any(|l| l == shown),
                            "{}: {s} not merged:\n{merged}",
                            f.id
                        );
                    }
                    // After the merge the entry no longer applies (the remedy removes its cause).
                    let mut fx2 = fx.clone();
                    fx2.config = merged;
                    assert!(
                        f.when.check(&fx2).is_err(),
                        "{}: still applies after its own remedy",
                        f.id
                    );
                }
                Remedy::Package { packages } => {
                    assert!(
                        packages.contains_key("apt") && packages.contains_key("dnf"),
                        "{}: packages for apt and dnf",
                        f.id
                    );
                    assert!(!p.apply.contains(&f.id));
                }
                Remedy::Builtin { does } | Remedy::Advice { does } => {
                    assert!(!does.is_empty());
                    assert!(!p.apply.contains(&f.id));
                }
            }
        }
    }

    #[test]
    fn troubleshooting_doc_has_one_entry_per_catalogue_item() {
        let doc = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/troubleshooting.md"),
        )
        .unwrap();
        for f in &Catalogue::builtin().fixes {
            let anchor = format!("<a id=\"{}\"></a>", f.docs);
            assert_eq!(
                doc.matches(&anchor).count(),
                1,
                "docs/troubleshooting.md needs exactly one {anchor}"
            );
            let section = doc
                .split(&anchor)
                .nth(1)
                .unwrap()
                .split("<a id=")
                .next()
                .unwrap();
            for part in [
                "**Error text**",
                "**Cause.**",
                "**What labctl does.**",
                "**Manual fix.**",
                f.title.as_str(),
            ] {
                assert!(section.contains(part), "{}: section lacks {part:?}", f.id);
            }
        }
    }

    #[test]
    fn edit_refuses_a_tree_that_differs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.c");
        std::fs::write(&p, "something else\n").unwrap();
        let e = apply_edit(&p, "old", "new").unwrap_err();
        assert!(e.to_string().contains("not in the file"));
    }

    #[test]
    fn merge_config_replaces_and_unsets() {
        let c = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x\"\n";
        let m = merge_config(
            c,
            &[
                "CONFIG_B=y".into(),
                "CONFIG_C=\"\"".into(),
                "CONFIG_A=n".into(),
            ],
        );
        assert_eq!(m, "CONFIG_B=y\nCONFIG_C=\"\"\n# CONFIG_A is not set\n");
    }

    #[test]
    fn diagnosis_of_the_real_5_10_46_gcc12_failure() {
        let log = "  HOSTCC  scripts/kallsyms\nIn file included from help.c:12:\nIn function 'xrealloc',\n    inlined from 'add_cmdname' at help.c:24:2:\nsubcmd-util.h:56:23: error: pointer may be used after 'realloc' [-Werror=use-after-free]\n   56 |                 ret = realloc(ptr, size);\ncc1: all warnings being treated as errors\nmake[4]: *** [/x/tools/build/Makefile.build:97: /x/obj/tools/objtool/help.o] Error 1\n";
        let d = Catalogue::builtin().diagnose_log(log);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].id, "gcc12-libsubcmd-use-after-free");
        assert!(d[0].line.starts_with("subcmd-util.h:56:23"));
        // The same line from GCC in a UTF-8 locale (typographic quotes), as seen on this host.
        let utf8 = "subcmd-util.h:56:23: error: pointer may be used after \u{2018}realloc\u{2019} [-Werror=use-after-free]";
        assert_eq!(
            Catalogue::builtin().diagnose_log(utf8)[0].id,
            "gcc12-libsubcmd-use-after-free"
        );
        assert_eq!(
            strip_ansi("libelf: [ \u{1b}[32mon\u{1b}[m  ]"),
            "libelf: [ on  ]"
        );
    }
}
