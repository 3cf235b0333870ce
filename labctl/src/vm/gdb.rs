//! Kernel debugging with gdb (`vm run --gdb`, `vm boot --gdb`): QEMU's gdb stub on a
//! loopback TCP port, optionally with the guest stopped before its first instruction,
//! and the exact `gdb` command line that attaches with the kernel's vmlinux and, when the
//! build has them, its gdb scripts (lx-symbols, lx-dmesg, lx-ps; see
//! [`crate::build::gdb`]).
//!
//! Owns [`GdbStub`] (what the run asks for), the QEMU arguments it adds
//! ([`qemu_args`], pure like the rest of the argv in [`super::qemu`]), the kernel
//! arguments (`nokaslr`, so vmlinux's addresses are the running kernel's), the free
//! port choice and the attach command ([`attach_argv`], [`attach_command`]).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::build::BuildOutput;
use crate::events::{EventSink, SinkExt};
use crate::home::Home;

/// The stub listens here only: anyone who reaches the port controls the guest.
pub const HOST: &str = "127.0.0.1";

/// The boot and command limit of a run with a gdb stub when none is given: a guest that
/// sits at a breakpoint waits as long as the user debugs (about 10 years).
pub const NO_LIMIT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// What gdb loads when it attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbols {
    /// The unstripped kernel image (`vmlinux`) the guest runs.
    pub vmlinux: PathBuf,
    /// A folder to allow with `add-auto-load-safe-path`, so gdb auto-loads
    /// `vmlinux-gdb.py` (None: no gdb scripts next to this vmlinux).
    pub safe_path: Option<PathBuf>,
}

/// QEMU's gdb stub for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GdbStub {
    /// TCP port on [`HOST`].
    pub port: u16,
    /// Start QEMU with `-S`: the CPUs wait until gdb says `continue`.
    pub wait: bool,
    /// What the printed command loads; None = gdb attaches without symbols (a bzImage
    /// with no vmlinux beside it).
    pub symbols: Option<Symbols>,
}

impl GdbStub {
    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("{HOST}:{}", self.port)
    }
}

/// What stops a gdb stub from being set up.
#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    #[error("--gdb: no free TCP port on {HOST} for QEMU's gdb stub: {0}")]
    Port(#[source] std::io::Error),
    #[error("--gdb: making the build's gdb scripts: {0}")]
    Scripts(#[from] crate::build::BuildError),
}

/// The kernel a stub is for.
#[derive(Debug, Clone, Copy)]
pub enum Kernel<'a> {
    /// A labctl build: its O= folder's vmlinux and gdb scripts (made now if missing).
    Build(&'a BuildOutput),
    /// Any bzImage: a vmlinux beside it or in the tree it came from, if there is one.
    Image(&'a Path),
}

/// The stub for a run: `port` (None or 0: a free one), `wait` (`-S`), and the symbols
/// for the attach command. Warns (never fails) when the lx- commands or the symbols
/// will be missing, and when the host has no gdb.
pub fn stub(
    home: &Home,
    kernel: Kernel,
    port: Option<u16>,
    wait: bool,
    sink: &dyn EventSink,
) -> Result<GdbStub, GdbError> {
    let port = match port {
        Some(p) if p != 0 => p,
        _ => free_port().map_err(GdbError::Port)?,
    };
    let symbols = match kernel {
        Kernel::Build(b) => {
            let files = crate::build::gdb::ensure(home, b, sink)?;
            if let Some(why) = &files.missing {
                sink.warn(format!(
                    "--gdb: this build has no gdb scripts, so gdb will lack lx-symbols, lx-dmesg and lx-ps: {why}"
                ));
            }
            Some(Symbols {
                vmlinux: files.vmlinux,
                safe_path: files.safe_path,
            })
        }
        Kernel::Image(k) => {
            let s = symbols_near(k);
            if s.is_none() {
                sink.warn(format!(
                    "--gdb: no vmlinux beside {} or in its kernel tree: gdb attaches without symbols (load them with `file PATH/vmlinux`)",
                    k.display()
                ));
            }
            s
        }
    };
    let advice = crate::doctor::missing_advice_for(&["gdb"], sink);
    if !advice.is_empty() {
        sink.warn(format!(
            "--gdb: the command below needs gdb on this host, which is missing:\n{advice}"
        ));
    }
    Ok(GdbStub {
        port,
        wait,
        symbols,
    })
}

/// A TCP port on [`HOST`] that is free now (the kernel picks it; QEMU binds it a moment
/// later). Parallel runs each get their own, unlike gdb's customary fixed 1234.
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind((HOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// QEMU arguments for the stub: `-gdb tcp:127.0.0.1:PORT`, and `-S` when the guest waits.
pub fn qemu_args(stub: &GdbStub) -> Vec<String> {
    let mut a = vec!["-gdb".to_string(), format!("tcp:{}", stub.address())];
    if stub.wait {
        a.push("-S".into());
    }
    a
}

/// Kernel arguments for a debugged guest: no address-space randomisation, so the
/// symbols of vmlinux are where the kernel runs.
pub fn kernel_args() -> Vec<String> {
    vec!["nokaslr".to_string()]
}

/// The gdb argv (program first) that attaches to `stub`: allow the scripts' folder,
/// load vmlinux (gdb then auto-loads `vmlinux-gdb.py` beside it), connect.
pub fn attach_argv(stub: &GdbStub) -> Vec<String> {
    let mut a = vec!["gdb".to_string(), "-q".to_string()];
    let mut ex = |cmd: String| {
        a.push("-ex".into());
        a.push(cmd);
    };
    if let Some(s) = &stub.symbols {
        if let Some(p) = &s.safe_path {
            ex(format!("add-auto-load-safe-path {}", p.display()));
        }
        ex(format!("file {}", s.vmlinux.display()));
    }
    ex(format!("target remote {}", stub.address()));
    a
}

/// [`attach_argv`] as one line to paste into a shell.
pub fn attach_command(stub: &GdbStub) -> String {
    attach_argv(stub)
        .iter()
        .map(|w| crate::process::shell_quote(OsStr::new(w)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Symbols for a bzImage that is not a labctl build: the `vmlinux` of the kernel tree
/// or O= folder it was built in (`<dir>/arch/x86/boot/bzImage` → `<dir>/vmlinux`, or a
/// `vmlinux` in the same folder), with that folder as the scripts' safe path when
/// `vmlinux-gdb.py` is there too.
pub fn symbols_near(bzimage: &Path) -> Option<Symbols> {
    let dir = bzimage.parent()?;
    let candidates = [
        Some(dir),
        dir.parent().and_then(Path::parent).and_then(Path::parent),
    ];
    candidates.into_iter().flatten().find_map(|d| {
        let vmlinux = d.join("vmlinux");
        vmlinux.is_file().then(|| Symbols {
            vmlinux,
            safe_path: d.join("vmlinux-gdb.py").is_file().then(|| d.to_path_buf()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stub(wait: bool, symbols: Option<Symbols>) -> GdbStub {
        GdbStub {
            port: 40123,
            wait,
            symbols,
        }
    }

    #[test]
    fn qemu_gets_a_loopback_stub_and_s_only_when_waiting() {
        assert_eq!(
            qemu_args(&stub(false, None)),
            ["-gdb", "tcp:127.0.0.1:40123"]
        );
        assert_eq!(
            qemu_args(&stub(true, None)),
            ["-gdb", "tcp:127.0.0.1:40123", "-S"]
        );
        assert_eq!(kernel_args(), ["nokaslr"]);
    }

    #[test]
    fn the_attach_command_loads_vmlinux_and_its_scripts_then_connects() {
        let s = stub(
            true,
            Some(Symbols {
                vmlinux: "/h/builds/5.10.46-a b/obj/vmlinux".into(),
                safe_path: Some("/h/builds/5.10.46-a b".into()),
            }),
        );
        assert_eq!(
            attach_argv(&s),
            [
                "gdb",
                "-q",
                "-ex",
                "add-auto-load-safe-path /h/builds/5.10.46-a b",
                "-ex",
                "file /h/builds/5.10.46-a b/obj/vmlinux",
                "-ex",
                "target remote 127.0.0.1:40123"
            ]
        );
        assert_eq!(
            attach_command(&s),
            "gdb -q -ex 'add-auto-load-safe-path /h/builds/5.10.46-a b' -ex 'file /h/builds/5.10.46-a b/obj/vmlinux' -ex 'target remote 127.0.0.1:40123'"
        );
        assert_eq!(
            attach_command(&stub(false, None)),
            "gdb -q -ex 'target remote 127.0.0.1:40123'"
        );
    }

    #[test]
    fn free_ports_are_real_and_differ_from_the_customary_one() {
        let p = free_port().unwrap();
        assert!(p > 0);
        // Bindable right away (nobody holds it).
        drop(std::net::TcpListener::bind((HOST, p)).unwrap());
    }

    #[test]
    fn a_kernel_trees_vmlinux_is_found_from_its_bzimage() {
        let d = tempfile::tempdir().unwrap();
        let boot = d.path().join("arch/x86/boot");
        std::fs::create_dir_all(&boot).unwrap();
        std::fs::write(boot.join("bzImage"), "").unwrap();
        assert_eq!(symbols_near(&boot.join("bzImage")), None);
        std::fs::write(d.path().join("vmlinux"), "").unwrap();
        assert_eq!(
            symbols_near(&boot.join("bzImage")),
            Some(Symbols {
                vmlinux: d.path().join("vmlinux"),
                safe_path: None
            })
        );
        std::fs::write(d.path().join("vmlinux-gdb.py"), "").unwrap();
        assert_eq!(
            symbols_near(&boot.join("bzImage")).unwrap().safe_path,
            Some(d.path().to_path_buf())
        );
        // A labctl artifacts folder: vmlinux beside the bzImage.
        let art = d.path().join("artifacts");
        std::fs::create_dir_all(&art).unwrap();
        std::fs::write(art.join("bzImage"), "").unwrap();
        std::fs::write(art.join("vmlinux"), "").unwrap();
        assert_eq!(
            symbols_near(&art.join("bzImage")).unwrap().vmlinux,
            art.join("vmlinux")
        );
    }
}
