//! Programs a `vm run` command needs that the hermetic guest (busybox only) lacks, and
//! where they come from: `labctl vm run 6.12 -- bpftool prog list` gets the kernel's own
//! bpftool (built from that build's tree, see `build::tools`), `-- bpftrace -e …` or
//! `-- make run` the host's program, each with its shared-library closure, at the same
//! path in the guest. Only the command's first program word is looked at (plus the
//! names given with `--with`); a name busybox provides stays busybox's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::build::tools::KernelTool;
use crate::events::NullSink;

/// Where a program the command names comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramSource {
    /// A path (`./loader`, `/root/x`): the guest has it or it comes with a share/--file.
    Path,
    /// A busybox applet: already in the guest.
    Busybox,
    /// Built from the kernel's tree for this build.
    Kernel(KernelTool),
    /// The host's program (found on PATH).
    Host(PathBuf),
    /// Nowhere: the guest will say "not found".
    Unknown,
}

/// The first program word of a command: the one word of a shell line (its first token
/// after `VAR=value` assignments and `exec`/`env`), or argv[0].
pub fn command_program(words: &[String]) -> Option<String> {
    let first_line_words: Vec<&str> = match words {
        [] => return None,
        [one] => one.split_whitespace().collect(),
        many => many.iter().map(String::as_str).collect(),
    };
    first_line_words
        .into_iter()
        .find(|w| (!w.contains('=') || w.starts_with('=')) && !matches!(*w, "exec" | "env"))
        .map(|w| w.trim_start_matches(['(', '{']).to_string())
        .filter(|w| !w.is_empty())
}

/// The applets of this busybox (`busybox --list`); empty if it cannot say.
pub fn busybox_applets(busybox: &Path) -> BTreeSet<String> {
    crate::process::Cmd::new(busybox)
        .arg("--list")
        .timeout(Duration::from_secs(20))
        .run(&NullSink)
        .ok()
        .filter(|o| o.success())
        .map(|o| {
            o.stdout_str()
                .lines()
                .map(|l| l.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Where `word` comes from in the guest.
pub fn classify(
    word: &str,
    applets: &BTreeSet<String>,
    host_which: &dyn Fn(&str) -> Option<PathBuf>,
) -> ProgramSource {
    if word.contains('/') {
        return ProgramSource::Path;
    }
    if let Some(t) = KernelTool::named(word) {
        return ProgramSource::Kernel(t);
    }
    if applets.contains(word) {
        return ProgramSource::Busybox;
    }
    match host_which(word) {
        Some(p) => ProgramSource::Host(std::fs::canonicalize(&p).unwrap_or(p)),
        None => ProgramSource::Unknown,
    }
}

/// Why the guest cannot get a program.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("--with {0}: no such program on the host's PATH")]
    NotOnHost(String),
    /// A host program for a guest of another architecture.
    #[error("{program}: the host's {} is a {host} program and an {guest} guest cannot run it; bring an {guest} build of it with --file or --share (bpftool comes from the kernel's own tree for any architecture)", path.display())]
    ForeignHostProgram {
        program: String,
        path: PathBuf,
        host: String,
        guest: String,
    },
    #[error(transparent)]
    Tool(#[from] Box<crate::build::tools::ToolError>),
    #[error(transparent)]
    Vm(#[from] Box<super::VmError>),
}

/// The guest files for the programs `words` (a `vm run` command) and `with` name that
/// the guest lacks: the build's own tool (made now if needed) or the host's program, at
/// the host's path (kernel tools in /usr/local/sbin), with their libraries. Without a
/// build (`--kernel`), a kernel tool comes from the host, with a warning. For a guest of
/// another architecture than the host's (`arch`), a host program is refused (it could
/// not run there); the busybox applet list is the host's busybox's (Debian builds the
/// same applets for every architecture).
pub fn guest_files(
    home: &crate::Home,
    words: &[String],
    with: &[String],
    build: Option<(&crate::build::BuildOutput, &crate::userland::ToolchainSpec)>,
    arch: &crate::arch::Arch,
    sink: &dyn crate::events::EventSink,
) -> Result<Vec<super::GuestFile>, ProgramError> {
    use crate::events::SinkExt;
    let names: Vec<String> = command_program(words)
        .into_iter()
        .chain(with.iter().cloned())
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let busybox = super::initramfs::find_busybox().map_err(Box::new)?;
    let applets = busybox_applets(&busybox);
    let which = |p: &str| crate::process::which(p);
    let mut files: Vec<super::GuestFile> = Vec::new();
    for n in names {
        let f = match classify(&n, &applets, &which) {
            ProgramSource::Kernel(tool) => match build {
                Some((b, toolchain)) => {
                    let p = crate::build::tools::ensure(home, b, toolchain, tool, sink)?;
                    Some(super::GuestFile {
                        host: p,
                        guest: format!("/usr/local/sbin/{}", tool.name()),
                        with_libs: true,
                        sysroot: b.sysroot.clone(),
                    })
                }
                None => {
                    let host = which(&n);
                    match &host {
                        Some(p) => sink.warn(format!(
                            "--kernel: the host's {n} ({}) goes into the guest; with a labctl build VERSION it would be that kernel's own",
                            p.display()
                        )),
                        None if with.contains(&n) => return Err(ProgramError::NotOnHost(n)),
                        None => {}
                    }
                    host.map(host_program)
                }
            },
            ProgramSource::Host(p) if !arch.is_host() => {
                return Err(ProgramError::ForeignHostProgram {
                    program: n,
                    path: p,
                    host: crate::arch::Arch::host().name.clone(),
                    guest: arch.name.clone(),
                })
            }
            ProgramSource::Host(p) => Some(host_program(p)),
            ProgramSource::Unknown if with.contains(&n) => return Err(ProgramError::NotOnHost(n)),
            ProgramSource::Unknown | ProgramSource::Busybox | ProgramSource::Path => None,
        };
        if let Some(f) = f {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    Ok(files)
}

fn host_program(p: PathBuf) -> super::GuestFile {
    super::GuestFile {
        guest: p.to_string_lossy().into_owned(),
        host: p,
        with_libs: true,
        sysroot: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_program_word() {
        assert_eq!(
            command_program(&w(&["bpftool", "prog", "list"])).as_deref(),
            Some("bpftool")
        );
        assert_eq!(command_program(&w(&["make run"])).as_deref(), Some("make"));
        assert_eq!(
            command_program(&w(&["LANG=C FOO=1 exec bpftrace -e 'x'"])).as_deref(),
            Some("bpftrace")
        );
        assert_eq!(command_program(&w(&["(cd /x; ls)"])).as_deref(), Some("cd"));
        assert_eq!(command_program(&w(&[])), None);
        assert_eq!(command_program(&w(&["  "])), None);
    }

    #[test]
    fn sources() {
        let applets: BTreeSet<String> = ["ls", "sh"].iter().map(|s| s.to_string()).collect();
        let which = |n: &str| (n == "make").then(|| PathBuf::from("/usr/bin/make"));
        assert_eq!(classify("ls", &applets, &which), ProgramSource::Busybox);
        assert_eq!(classify("./hello", &applets, &which), ProgramSource::Path);
        assert_eq!(
            classify("bpftool", &applets, &which),
            ProgramSource::Kernel(KernelTool::Bpftool)
        );
        assert!(matches!(
            classify("make", &applets, &which),
            ProgramSource::Host(_)
        ));
        assert_eq!(classify("nosuch", &applets, &which), ProgramSource::Unknown);
    }

    #[test]
    fn this_hosts_busybox_lists_its_applets() {
        let bb = crate::vm::initramfs::find_busybox().unwrap();
        let a = busybox_applets(&bb);
        assert!(a.contains("sh") && a.contains("ls"), "{a:?}");
        assert!(!a.contains("bpftool"));
    }
}
