//! Architectures as data: one TOML file per architecture in `labctl/arch/`, embedded at
//! compile time. Owns [`Arch`] (the kernel's `ARCH`, the boot image, the cross prefix,
//! the QEMU machine, console and results channel, the guest userland's Debian
//! architecture, the lab-fragment lines only this architecture gets) and the lookup by
//! name ([`Arch::by_name`], [`Arch::host`]).
//!
//! Every engine that used to hold an x86 literal asks the [`Arch`] instead: kconfig (make
//! `ARCH=`, the Kconfig evaluator's `SRCARCH`, the fragment lines), build (make variables,
//! image target and path, cross compiler), vm (QEMU binary, machine, CPU, console, how the
//! results channel is attached, the guest's ELF machine and loader) and the suite (which
//! tests need the host's own userland). Adding an architecture is one file here, one line
//! in [`FILES`], doctor requirements (group `cross`) for its cross compiler and QEMU, and
//! catalogue entries for its fixes (see docs/ARCHITECTURE.md). What a host needs for a foreign
//! architecture (its cross compiler, its QEMU) is in doctor's requirements, group
//! `cross`, each naming the architecture it serves.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Every architecture file; `tests::every_file_is_listed` keeps this in sync with the folder.
macro_rules! arches {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../arch/", $name, ".toml")))),*]
    };
}
pub const FILES: &[(&str, &str)] = arches!["x86_64", "arm64"];

/// How the guest's results channel is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultsDevice {
    /// A second serial port (`-serial file:...`): ttyS1 on a PC.
    Serial,
    /// A virtio console (`virtio-serial-device` + `virtconsole`): hvc0.
    Virtconsole,
}

/// QEMU's side of an architecture.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QemuArch {
    pub binary: String,
    /// `-machine` value; empty = QEMU's default machine.
    pub machine: String,
    pub cpu_tcg: String,
    pub cpu_kvm: String,
    /// The console device name in the guest (`console=`).
    pub console: String,
    /// The results channel's device node in the guest.
    pub results: String,
    pub results_device: ResultsDevice,
    /// The kernel argument that prints from the first instruction (the KVM probe).
    pub earlycon: String,
    /// Kernel arguments every boot gets (probes the guest does not need).
    pub boot_args: Vec<String>,
    /// Kernel arguments added under TCG.
    pub tcg_kernel_args: Vec<String>,
    /// Under TCG, pass the host's TSC rate (`vm::tsc`) to a guest of the host's own
    /// architecture.
    pub tcg_host_tsc: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KconfigArch {
    /// `CONFIG_<symbol>=y` in every .config of this architecture.
    pub symbol: String,
    /// Fragment lines (the `kconfig/*.config` syntax) applied after the shared fragments.
    pub fragment: String,
}

/// One architecture, as its file describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Arch {
    /// labctl's name (`--arch NAME`, build keys, reports).
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub title: String,
    /// `uname -m` (and Rust's `std::env::consts::ARCH`) on this architecture.
    pub machine: String,
    pub kernel_arch: String,
    pub srcarch: String,
    pub image_target: String,
    /// The boot image, relative to the object folder.
    pub image: String,
    pub image_name: String,
    pub cross_compile: String,
    /// Debian's multiarch triplet (`x86_64-linux-gnu`): library and pkg-config dirs.
    pub multiarch: String,
    pub debian_arch: String,
    pub elf_machine: u16,
    pub interpreter: String,
    pub kvm_guest_configs: Vec<String>,
    /// The Debian release and packages of the guest userland root (foreign builds).
    pub guest_suite: String,
    pub guest_packages: Vec<String>,
    pub qemu: QemuArch,
    pub kconfig: KconfigArch,
}

/// A `--arch` value that names no architecture file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture {name:?}: labctl knows {}", known.join(", "))]
pub struct UnknownArch {
    pub name: String,
    pub known: Vec<String>,
}

impl Arch {
    /// Every embedded architecture, in [`FILES`] order.
    pub fn all() -> &'static [Arch] {
        static ALL: OnceLock<Vec<Arch>> = OnceLock::new();
        ALL.get_or_init(|| {
            FILES
                .iter()
                .map(|(n, t)| {
                    toml::from_str(t)
                        .unwrap_or_else(|e| panic!("labctl/arch/{n}.toml is invalid: {e}"))
                })
                .collect()
        })
    }

    /// The architecture called `name` (or one of its aliases), case-insensitively.
    pub fn by_name(name: &str) -> Result<&'static Arch, UnknownArch> {
        let n = name.trim().to_ascii_lowercase();
        Arch::all()
            .iter()
            .find(|a| a.name == n || a.machine == n || a.aliases.contains(&n))
            .ok_or_else(|| UnknownArch {
                name: name.to_string(),
                known: Arch::all().iter().map(|a| a.name.clone()).collect(),
            })
    }

    /// This machine's architecture (x86_64 when labctl runs on one it has no file for,
    /// which then builds every kernel as a cross build).
    pub fn host() -> &'static Arch {
        Arch::by_name(std::env::consts::ARCH).unwrap_or_else(|_| Arch::x86_64())
    }

    /// The architecture labctl assumes when none is named: x86_64, which every build made
    /// before the arch axis is.
    pub fn x86_64() -> &'static Arch {
        &Arch::all()[0]
    }

    /// The architecture a .config is for (the one whose symbol it sets).
    pub fn of_config(config_text: &str) -> Option<&'static Arch> {
        Arch::all().iter().find(|a| {
            let want = format!("CONFIG_{}=y", a.kconfig.symbol);
            config_text.lines().any(|l| l.trim() == want)
        })
    }

    /// True when this machine runs this architecture's programs natively.
    pub fn is_host(&self) -> bool {
        self.machine == std::env::consts::ARCH
    }

    /// True for the default architecture, whose build keys carry no arch part.
    pub fn is_default(&self) -> bool {
        self.name == Arch::x86_64().name
    }

    /// The `CROSS_COMPILE` prefix for a build on this machine (None: native).
    pub fn cross_prefix(&self) -> Option<&str> {
        (!self.is_host()).then_some(self.cross_compile.as_str())
    }

    /// The C compiler for this architecture's programs on this machine.
    pub fn gcc(&self) -> String {
        format!("{}gcc", self.cross_prefix().unwrap_or(""))
    }

    /// The C compiler for this architecture's programs, linking against the userland
    /// installed at `root` (`aarch64-linux-gnu-gcc --sysroot=ROOT`), as make's `CC`.
    pub fn sysroot_cc(&self, root: &std::path::Path) -> String {
        format!("{} --sysroot={}", self.gcc(), root.display())
    }

    /// The part of a build key that names the architecture: empty for x86_64 (keys made
    /// before the arch axis stay valid), `-NAME` otherwise.
    pub fn key_part(&self) -> String {
        if self.is_default() {
            String::new()
        } else {
            format!("-{}", self.name)
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// serde for a `&'static Arch` field: written as its name, read back through
/// [`Arch::by_name`]; a missing field means x86_64 (files written before the arch axis).
pub mod serde_name {
    use super::Arch;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(a: &&'static Arch, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&a.name)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static Arch, D::Error> {
        let n = String::deserialize(d)?;
        Arch::by_name(&n).map_err(serde::de::Error::custom)
    }
    pub fn default() -> &'static Arch {
        Arch::x86_64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_listed_and_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("arch");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed, "labctl/arch/*.toml and arch::FILES differ");
        for a in Arch::all() {
            let file = FILES.iter().find(|(n, _)| *n == a.name);
            assert!(file.is_some(), "{} is in a file of another name", a.name);
            assert!(a.image.ends_with(&a.image_name), "{}", a.name);
            assert!(
                a.image.starts_with(&format!("arch/{}/", a.srcarch)),
                "{}",
                a.name
            );
            assert!(a.cross_compile.ends_with('-'), "{}", a.name);
            for line in crate::kconfig::dotconfig::parse(&a.kconfig.fragment, false).unwrap() {
                assert!(!line.symbol.is_empty());
            }
        }
    }

    #[test]
    fn names_and_aliases_resolve() {
        assert_eq!(Arch::by_name("arm64").unwrap().kernel_arch, "arm64");
        assert_eq!(Arch::by_name("AArch64").unwrap().name, "arm64");
        assert_eq!(Arch::by_name("amd64").unwrap().name, "x86_64");
        let e = Arch::by_name("sparc").unwrap_err();
        assert!(e.to_string().contains("x86_64, arm64"), "{e}");
        // Names and aliases never collide.
        let mut seen = std::collections::BTreeSet::new();
        for a in Arch::all() {
            for n in std::iter::once(&a.name).chain(&a.aliases) {
                assert!(seen.insert(n.clone()), "{n} is used twice");
            }
        }
    }

    #[test]
    fn a_config_names_its_architecture() {
        let x = "CONFIG_64BIT=y\nCONFIG_X86_64=y\n";
        assert_eq!(Arch::of_config(x).unwrap().name, "x86_64");
        let a = "# CONFIG_X86_64 is not set\nCONFIG_ARM64=y\n";
        assert_eq!(Arch::of_config(a).unwrap().name, "arm64");
        assert!(Arch::of_config("CONFIG_RISCV=y\n").is_none());
    }

    #[test]
    fn keys_and_cross_prefix() {
        let x = Arch::x86_64();
        let a = Arch::by_name("arm64").unwrap();
        assert_eq!(x.key_part(), "");
        assert_eq!(a.key_part(), "-arm64");
        let host = Arch::host();
        assert!(host.is_host());
        assert_eq!(host.cross_prefix(), None);
        let other = if host.name == "arm64" { x } else { a };
        assert_eq!(other.cross_prefix(), Some(other.cross_compile.as_str()));
        assert!(other.gcc().ends_with("-gcc"));
    }
}
