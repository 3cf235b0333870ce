//! Profiles (the base `.config` before the fragments) and the embedded fragment files
//! (`kconfig/*.config`, compiled into the binary so an installed labctl needs no checkout).
//!
//! - `lab` (default): `make tinyconfig`, the smallest kernel, plus the fragments.
//! - `defconfig`: `make defconfig` plus the tree's `kvm_guest.config` (`make kvmconfig` on
//!   trees that lack the file).
//! - `distro[:PATH]`: a distribution's config (default `/boot/config-$(uname -r)`).
//! - `file:PATH`: any config.

use std::path::{Path, PathBuf};

use super::dotconfig::{self, Entry};
use crate::version::KernelVersion;

/// The base a configuration starts from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Lab,
    Defconfig,
    Distro(Option<PathBuf>),
    File(PathBuf),
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s {
            "lab" => return Ok(Profile::Lab),
            "defconfig" => return Ok(Profile::Defconfig),
            "distro" => return Ok(Profile::Distro(None)),
            _ => {}
        }
        if let Some(p) = s.strip_prefix("distro:") {
            if p.is_empty() {
                return Err("distro: needs a path (distro:/boot/config-6.1.0-13-amd64), or use plain `distro`".into());
            }
            return Ok(Profile::Distro(Some(PathBuf::from(p))));
        }
        if let Some(p) = s.strip_prefix("file:") {
            if p.is_empty() {
                return Err("file: needs a path (file:./my.config)".into());
            }
            return Ok(Profile::File(PathBuf::from(p)));
        }
        Err(format!(
            "unknown profile {s:?}: use lab, defconfig, distro, distro:PATH or file:PATH"
        ))
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Profile::Lab => write!(f, "lab"),
            Profile::Defconfig => write!(f, "defconfig"),
            Profile::Distro(None) => write!(f, "distro"),
            Profile::Distro(Some(p)) => write!(f, "distro:{}", p.display()),
            Profile::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

/// The running kernel's release (`uname -r`).
pub fn running_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The config file a `distro`/`file` profile reads; None for make-generated bases.
pub fn base_file(p: &Profile) -> Option<PathBuf> {
    match p {
        Profile::Distro(Some(path)) | Profile::File(path) => Some(path.clone()),
        Profile::Distro(None) => Some(PathBuf::from(format!(
            "/boot/config-{}",
            running_release().unwrap_or_else(|| "UNKNOWN".into())
        ))),
        _ => None,
    }
}

/// How the base is made from the tree: make targets to run, then fragment files of the
/// tree to merge (what `make kvm_guest.config` itself merges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRecipe {
    pub make_targets: Vec<String>,
    pub tree_fragments: Vec<PathBuf>,
    /// Words for the report.
    pub description: String,
}

/// The tree's `kvm_guest.config` files, in the order `make kvm_guest.config` merges them
/// (kernel/configs, then the architecture's own, as its file lists them).
pub fn kvm_guest_fragments(tree: &Path, arch: &crate::arch::Arch) -> Vec<PathBuf> {
    arch.kvm_guest_configs
        .iter()
        .map(|p| tree.join(p))
        .filter(|p| p.is_file())
        .collect()
}

pub fn base_recipe(p: &Profile, tree: &Path, arch: &crate::arch::Arch) -> Option<BaseRecipe> {
    match p {
        Profile::Lab => Some(BaseRecipe {
            make_targets: vec!["tinyconfig".into()],
            tree_fragments: vec![],
            description: "make tinyconfig (allnoconfig + tiny.config)".into(),
        }),
        Profile::Defconfig => {
            let files = kvm_guest_fragments(tree, arch);
            Some(if files.is_empty() {
                BaseRecipe {
                    make_targets: vec!["defconfig".into(), "kvmconfig".into()],
                    tree_fragments: vec![],
                    description:
                        "make defconfig kvmconfig (this tree has no kvm_guest.config file)".into(),
                }
            } else {
                BaseRecipe {
                    description: format!(
                        "make defconfig + {} (what `make kvm_guest.config` merges)",
                        files
                            .iter()
                            .map(|f| f.strip_prefix(tree).unwrap_or(f).display().to_string())
                            .collect::<Vec<_>>()
                            .join(" + ")
                    ),
                    make_targets: vec!["defconfig".into()],
                    tree_fragments: files,
                }
            })
        }
        _ => None,
    }
}

/// A fragment: embedded (`bpf.config`) or a user's file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Fragment {
    /// `bpf.config`, or the path as given.
    pub name: String,
    /// None for embedded fragments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(skip)]
    pub text: String,
}

impl Fragment {
    /// Parse (strictly) and keep the lines whose version guard matches `version`.
    /// Returns (kept, skipped-for-this-version).
    pub fn entries(
        &self,
        version: &KernelVersion,
    ) -> Result<(Vec<Entry>, Vec<Entry>), dotconfig::ParseError> {
        let all = dotconfig::parse(&self.text, true)?;
        Ok(all
            .into_iter()
            .partition(|e| e.guard.as_ref().is_none_or(|g| g.matches(version))))
    }
}

/// Which configurations get an embedded fragment without being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applies {
    /// Every profile (the BPF options and what the VM needs).
    Always,
    /// The `lab` profile only: trims of tinyconfig's defaults that a conventional base
    /// (defconfig, a distribution's config) should keep.
    Lab,
    /// Only with `--fragment NAME`.
    OptIn,
}

const EMBEDDED: &[(&str, &str, Applies)] = &[
    (
        "bpf.config",
        include_str!("../../../kconfig/bpf.config"),
        Applies::Always,
    ),
    (
        "btf.config",
        include_str!("../../../kconfig/btf.config"),
        Applies::Always,
    ),
    (
        "tracing.config",
        include_str!("../../../kconfig/tracing.config"),
        Applies::Always,
    ),
    (
        "vm.config",
        include_str!("../../../kconfig/vm.config"),
        Applies::Always,
    ),
    (
        "samples.config",
        include_str!("../../../kconfig/samples.config"),
        Applies::Always,
    ),
    (
        "lean.config",
        include_str!("../../../kconfig/lean.config"),
        Applies::Lab,
    ),
    (
        "bcc.config",
        include_str!("../../../kconfig/bcc.config"),
        Applies::OptIn,
    ),
];

fn fragment(e: &(&str, &str, Applies)) -> Fragment {
    Fragment {
        name: e.0.to_string(),
        path: None,
        text: e.1.to_string(),
    }
}

/// The fragments every configuration gets, whatever its profile, in the order they apply.
pub fn default_fragments() -> Vec<Fragment> {
    EMBEDDED
        .iter()
        .filter(|e| e.2 == Applies::Always)
        .map(fragment)
        .collect()
}

/// The built-in fragments a configuration of `profile` gets, in the order they apply:
/// [`default_fragments`], then for `lab` the trims of `lean.config`.
pub fn fragments_for(profile: &Profile) -> Vec<Fragment> {
    EMBEDDED
        .iter()
        .filter(|e| match e.2 {
            Applies::Always => true,
            Applies::Lab => *profile == Profile::Lab,
            Applies::OptIn => false,
        })
        .map(fragment)
        .collect()
}

/// Every embedded fragment (defaults and opt-in ones like `bcc.config`).
pub fn embedded_fragments() -> Vec<Fragment> {
    EMBEDDED.iter().map(fragment).collect()
}

/// An embedded fragment by name: `bcc` or `bcc.config`.
pub fn embedded_fragment(name: &str) -> Option<Fragment> {
    let want = if name.ends_with(".config") {
        name.to_string()
    } else {
        format!("{name}.config")
    };
    embedded_fragments().into_iter().find(|f| f.name == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_print() {
        for s in [
            "lab",
            "defconfig",
            "distro",
            "distro:/boot/config-6.1",
            "file:./x.config",
        ] {
            let p: Profile = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        for bad in ["", "tiny", "distro:", "file:", "lab2"] {
            let e = bad.parse::<Profile>().unwrap_err();
            assert!(e.contains("lab") || e.contains("path"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_embedded_fragment_line_parses_and_explains_itself() {
        for f in embedded_fragments() {
            let all = dotconfig::parse(&f.text, true).unwrap_or_else(|e| panic!("{}: {e}", f.name));
            assert!(!all.is_empty(), "{}", f.name);
            for e in &all {
                assert!(
                    e.why.len() > 10,
                    "{} line {}: CONFIG_{} has no comment saying why",
                    f.name,
                    e.line,
                    e.symbol
                );
            }
        }
        let names: Vec<String> = default_fragments().into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "bpf.config",
                "btf.config",
                "tracing.config",
                "vm.config",
                "samples.config"
            ]
        );
        let lab: Vec<String> = fragments_for(&Profile::Lab)
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(lab.last().map(String::as_str), Some("lean.config"));
        assert_eq!(lab.len(), names.len() + 1);
        assert_eq!(
            fragments_for(&Profile::Defconfig).len(),
            names.len(),
            "defconfig keeps tinyconfig-only trims out"
        );
        assert!(embedded_fragment("bcc").is_some() && embedded_fragment("bcc.config").is_some());
        assert!(embedded_fragment("nope").is_none());
    }

    #[test]
    fn docs_explain_every_fragment_line() {
        let doc = include_str!("../../../docs/kconfig.md");
        let arch_fragments = crate::arch::Arch::all()
            .iter()
            .map(crate::kconfig::arch_fragment);
        for f in embedded_fragments().into_iter().chain(arch_fragments) {
            assert!(
                doc.contains(&format!("### {}", f.name)),
                "docs/kconfig.md has no section for {}",
                f.name
            );
            for e in dotconfig::parse(&f.text, true).unwrap() {
                let row = format!("| `{}={}` |", e.symbol, e.value);
                assert!(
                    doc.contains(&row),
                    "docs/kconfig.md does not explain {} from {}",
                    row,
                    f.name
                );
            }
        }
    }

    #[test]
    fn seed_list_is_in_bpf_config_and_dwarf_choice_only_from_5_18() {
        let bpf = embedded_fragment("bpf").unwrap();
        let (e, _) = bpf.entries(&KernelVersion::new(5, 10, 46)).unwrap();
        for seed in [
            "CGROUP_BPF",
            "BPF",
            "BPF_SYSCALL",
            "NET_SCH_INGRESS",
            "NET_CLS_BPF",
            "NET_CLS_ACT",
            "BPF_JIT",
            "LWTUNNEL_BPF",
            "HAVE_EBPF_JIT",
            "BPF_EVENTS",
            "TEST_BPF",
        ] {
            assert!(
                e.iter().any(|x| x.symbol == seed),
                "{seed} missing from bpf.config"
            );
        }
        let btf = embedded_fragment("btf").unwrap();
        let (old, skipped) = btf.entries(&KernelVersion::new(5, 10, 46)).unwrap();
        assert!(!old
            .iter()
            .any(|x| x.symbol == "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT"));
        assert_eq!(skipped.len(), 1);
        let (new, _) = btf.entries(&KernelVersion::new(6, 12, 95)).unwrap();
        assert!(new
            .iter()
            .any(|x| x.symbol == "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT"));
    }

    #[test]
    fn defconfig_recipe_uses_the_tree_kvm_fragment_or_kvmconfig() {
        let d = tempfile::tempdir().unwrap();
        let r = base_recipe(&Profile::Defconfig, d.path(), crate::arch::Arch::x86_64()).unwrap();
        assert_eq!(r.make_targets, ["defconfig", "kvmconfig"]);
        std::fs::create_dir_all(d.path().join("kernel/configs")).unwrap();
        std::fs::write(
            d.path().join("kernel/configs/kvm_guest.config"),
            "CONFIG_VIRTIO=y\n",
        )
        .unwrap();
        let r = base_recipe(&Profile::Defconfig, d.path(), crate::arch::Arch::x86_64()).unwrap();
        assert_eq!(r.make_targets, ["defconfig"]);
        assert_eq!(
            r.tree_fragments,
            [d.path().join("kernel/configs/kvm_guest.config")]
        );
        assert_eq!(
            base_recipe(&Profile::Lab, d.path(), crate::arch::Arch::x86_64())
                .unwrap()
                .make_targets,
            ["tinyconfig"]
        );
        assert!(base_recipe(
            &Profile::File("x".into()),
            d.path(),
            crate::arch::Arch::x86_64()
        )
        .is_none());
    }
}
