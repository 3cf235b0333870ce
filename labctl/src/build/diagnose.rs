//! Failure diagnosis for a make run: the first real error line of a log, progress
//! parsing of kbuild's output (objects compiled, which stage a line belongs to), and
//! the failure report shown to the user (first error, last 30 lines, log path, the
//! catalogue entries that explain it and whether labctl applied them).

use std::path::PathBuf;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::catalogue::Diagnosis;
use crate::events::Stage;

/// The first line that is a real error (not a warning, not make's own trailer), else
/// the first `make: ***` line, else None.
pub fn first_error_line(log: &str) -> Option<String> {
    static RES: std::sync::OnceLock<(Vec<Regex>, Regex)> = std::sync::OnceLock::new();
    let (real, make_star) = RES.get_or_init(|| {
        (
            [
                r"(^|\s|:)(fatal )?error:",
                r"^Error: ",
                r"FAILED[: ]",
                r"undefined reference to",
                r"multiple definition of",
                r": not found$",
                r"command not found",
                r"No rule to make target",
                r"No space left on device",
                r"is not available$",
                r"\*\*\* .*Stop\.$",
            ]
            .iter()
            .map(|r| Regex::new(r).unwrap())
            .collect(),
            Regex::new(r"^make(\[\d+\])?: \*\*\*").unwrap(),
        )
    });
    // Lines such as "cc1: all warnings being treated as errors" or a "make: ***" trailer
    // are consequences, never the cause.
    let is_trailer = |l: &str| {
        l.contains("all warnings being treated as errors")
            || make_star.is_match(l)
            || l.starts_with("# ")
    };
    log.lines()
        .find(|l| !is_trailer(l) && real.iter().any(|r| r.is_match(l)))
        .or_else(|| log.lines().find(|l| make_star.is_match(l)))
        .map(|l| l.trim().to_string())
}

/// Which kbuild stage a line of `make bzImage` output announces, if any.
pub fn stage_of_line(line: &str) -> Option<Stage> {
    let t = line.trim_start();
    let mut words = t.split_whitespace();
    let (a, b) = (words.next()?, words.next().unwrap_or(""));
    match (a, b) {
        ("LD", "vmlinux.o")
        | ("MODPOST", "vmlinux.o")
        | ("LD", "vmlinux")
        | ("LD", ".tmp_vmlinux.btf")
        | ("LD", ".tmp_vmlinux1") => Some(Stage::Link),
        ("BTF", _) | ("BTFIDS", _) => Some(Stage::Btf),
        _ => None,
    }
}

/// True for a kbuild line that reports one compiled object (`  CC      kernel/fork.o`,
/// `  CC [M]  lib/test_bpf.o`, `  AS      arch/x86/entry/entry_64.o`).
pub fn is_object_line(line: &str) -> bool {
    let t = line.trim_start();
    if t.len() == line.len() {
        return false; // kbuild's quiet lines are indented
    }
    let mut w = t.split_whitespace();
    let verb = w.next().unwrap_or("");
    if !matches!(verb, "CC" | "AS") {
        return false;
    }
    let mut target = w.next().unwrap_or("");
    if target == "[M]" {
        target = w.next().unwrap_or("");
    }
    target.ends_with(".o")
}

/// Estimate how many objects `make bzImage` compiles from the number of enabled
/// options. Measured on this project's machine (5.10.257): tinyconfig + lab options
/// 601 options → 994 objects; defconfig + kvm_guest 1410 → 2708.
pub fn estimate_objects(config: &str) -> u64 {
    let n = config
        .lines()
        .filter(|l| l.starts_with("CONFIG_") && (l.ends_with("=y") || l.ends_with("=m")))
        .count() as u64;
    (n * 17 / 10).max(50)
}

/// Everything the user needs when a build step fails.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureReport {
    pub version: String,
    pub step: String,
    pub command: String,
    pub status: String,
    pub first_error: Option<String>,
    pub tail: Vec<String>,
    pub log: PathBuf,
    pub diagnosis: Vec<Diagnosis>,
    /// Catalogue entries applied to this build (to tell "applied but still failing"
    /// from "would fix it").
    pub applied: Vec<String>,
    pub fixes_enabled: bool,
}

impl std::fmt::Display for FailureReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "building linux {} failed in step `{}` ({})",
            self.version, self.step, self.status
        )?;
        if let Some(e) = &self.first_error {
            writeln!(f, "first error: {e}")?;
        }
        if !self.tail.is_empty() {
            writeln!(f, "last {} lines of output:", self.tail.len())?;
            for l in &self.tail {
                writeln!(f, "  | {l}")?;
            }
        }
        writeln!(f, "full log: {}", self.log.display())?;
        writeln!(f, "command: {}", self.command)?;
        if self.diagnosis.is_empty() {
            write!(f, "diagnosis: no known-fix catalogue entry matches this log; see docs/troubleshooting.md")?;
        } else {
            for d in &self.diagnosis {
                let cat = super::catalogue::Catalogue::builtin();
                let fix = cat.get(&d.id);
                writeln!(f, "diagnosis: [{}] {}", d.id, d.title)?;
                writeln!(f, "  matched: {}", d.line)?;
                if let Some(fix) = fix {
                    writeln!(f, "  cause: {}", fix.cause)?;
                    let state = if self.applied.contains(&d.id) {
                        "labctl applied this fix, yet the build still failed: the tree or toolchain differs from what the catalogue expects".to_string()
                    } else if fix.remedy.is_applied_by_build() && !self.fixes_enabled {
                        format!("labctl fixes this automatically ({}), but --no-fixes was given: rerun without --no-fixes", fix.remedy.labctl_does())
                    } else if fix.remedy.is_applied_by_build() {
                        format!("labctl can fix this ({}) but the entry's conditions did not match this build", fix.remedy.labctl_does())
                    } else {
                        fix.remedy.labctl_does()
                    };
                    writeln!(f, "  labctl: {state}")?;
                    writeln!(f, "  by hand: {}", fix.manual)?;
                }
                write!(f, "  docs: docs/troubleshooting.md#{}", d.docs)?;
                if d.id != self.diagnosis.last().map(|x| x.id.as_str()).unwrap_or("") {
                    writeln!(f)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_real_error_not_the_trailer() {
        let log = "  CC      kernel/fork.o\nwarning: something harmless\nIn function 'xrealloc',\nsubcmd-util.h:56:23: error: pointer may be used after 'realloc' [-Werror=use-after-free]\ncc1: all warnings being treated as errors\nmake[4]: *** [Makefile.build:97: help.o] Error 1\nmake: *** [Makefile:1] Error 2\n";
        assert_eq!(first_error_line(log).unwrap(), "subcmd-util.h:56:23: error: pointer may be used after 'realloc' [-Werror=use-after-free]");
        let log2 = "  BTFIDS  vmlinux\nFAILED: load BTF from vmlinux: Unknown error -22\nmake: *** [Makefile:1179: vmlinux] Error 255\n";
        assert_eq!(
            first_error_line(log2).unwrap(),
            "FAILED: load BTF from vmlinux: Unknown error -22"
        );
        let log3 = "  CC foo.o\nmake: *** [Makefile:1] Error 2\n";
        assert_eq!(
            first_error_line(log3).unwrap(),
            "make: *** [Makefile:1] Error 2"
        );
        assert_eq!(first_error_line("  CC foo.o\n"), None);
        let log4 = "BTF: .tmp_vmlinux.btf: pahole (pahole) is not available\nFailed to generate BTF for vmlinux\n";
        assert!(first_error_line(log4).unwrap().contains("is not available"));
    }

    #[test]
    fn parses_kbuild_lines() {
        assert!(is_object_line("  CC      kernel/fork.o"));
        assert!(is_object_line("  CC [M]  lib/test_bpf.o"));
        assert!(is_object_line("  AS      arch/x86/entry/entry_64.o"));
        assert!(!is_object_line("  CC      kernel/bounds.s"));
        assert!(!is_object_line("  HOSTCC  scripts/kallsyms"));
        assert!(!is_object_line("CC kernel/fork.o"));
        assert_eq!(stage_of_line("  LD      vmlinux.o"), Some(Stage::Link));
        assert_eq!(
            stage_of_line("  BTF     .btf.vmlinux.bin.o"),
            Some(Stage::Btf)
        );
        assert_eq!(stage_of_line("  BTFIDS  vmlinux"), Some(Stage::Btf));
        assert_eq!(stage_of_line("  CC      init/main.o"), None);
    }

    #[test]
    fn estimates_from_enabled_options() {
        let cfg: String = (0..601)
            .map(|i| format!("CONFIG_X{i}=y\n"))
            .collect::<String>()
            + "# CONFIG_Y is not set\nCONFIG_S=\"a\"\n";
        let e = estimate_objects(&cfg);
        assert!((900..1100).contains(&e), "{e}");
    }
}
