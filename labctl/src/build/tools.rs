//! Programs built from a finished build's own tree, on demand: the kernel's
//! `tools/bpf/bpftool` (`make O=<obj> tools/bpf/bpftool`), so the bpftool a learner runs
//! in the guest is the one that matches that kernel (its BTF, program types and
//! features), whatever the host ships.
//!
//! A tool is made the first time something asks for it (`vm test`'s bpftool test,
//! `vm run -- bpftool …`, or `kernel build`'s last step) under the build's own lock, with
//! the build's toolchain (a `--toolchain` build makes it inside that root), logged to
//! `logs/tool-<name>.log`; afterwards it is just a file in the build's object folder.

use std::path::PathBuf;
use std::time::Duration;

use crate::events::{EventSink, Stage};
use crate::home::{CacheKey, Home};
use crate::process::Cmd;
use crate::userland::{ToolchainSpec, Userland};

use super::BuildOutput;

/// A program of the kernel tree labctl can build for a lab build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelTool {
    Bpftool,
}

impl KernelTool {
    pub fn name(self) -> &'static str {
        match self {
            KernelTool::Bpftool => "bpftool",
        }
    }
    /// The kbuild target (`make O=… TARGET` from the tree).
    fn target(self) -> &'static str {
        match self {
            KernelTool::Bpftool => "tools/bpf/bpftool",
        }
    }
    /// Variables for its make: bpftool without LLVM (6.x links libLLVM for JIT
    /// disassembly when it finds it: 100+ MiB of libraries in every guest that runs it).
    fn make_vars(self) -> &'static [&'static str] {
        match self {
            KernelTool::Bpftool => &["feature-llvm=0"],
        }
    }
    /// Where the program lands, relative to the object folder.
    fn output(self) -> &'static str {
        match self {
            KernelTool::Bpftool => "tools/bpf/bpftool/bpftool",
        }
    }
    /// The tool a command word names, if labctl builds it.
    pub fn named(word: &str) -> Option<KernelTool> {
        (word == "bpftool").then_some(KernelTool::Bpftool)
    }
}

/// Why a tool could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{tool} for linux {release}: the build folder {} has no object folder (obj/) or source tree (src/); rebuild it with `labctl kernel build VERSION --rebuild`", dir.display())]
    NoTree {
        tool: &'static str,
        release: String,
        dir: PathBuf,
    },
    #[error("{tool} for linux {release} did not build (`make {target}` {status}); last lines:\n{tail}\n(full log: {}; the host needs what doctor's samples group lists: libelf, zlib, clang)", log.display())]
    Failed {
        tool: &'static str,
        release: String,
        target: &'static str,
        status: String,
        tail: String,
        log: PathBuf,
    },
    #[error(transparent)]
    Userland(#[from] crate::userland::UserlandError),
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
}

impl ToolError {
    /// True for Ctrl-C, from make, the toolchain root or the build's lock.
    pub fn is_interrupted(&self) -> bool {
        match self {
            ToolError::Userland(e) => e.is_interrupted(),
            ToolError::Home(e) => e.is_interrupted(),
            ToolError::Process(e) => e.is_interrupted(),
            _ => false,
        }
    }
}

/// For a build of a foreign architecture: its `ARCH=` and `CROSS_COMPILE=`, and a `CC`
/// that links against its guest userland root (libelf and zlib for the target; the
/// bootstrap bpftool that generates the skeletons is built with the host's compiler).
fn cross_vars(build: &BuildOutput) -> Vec<String> {
    let mut v = crate::kconfig::arch_make_vars(build.arch);
    if let (false, Some(root)) = (v.is_empty(), &build.sysroot) {
        v.push(("CC".into(), build.arch.sysroot_cc(root)));
    }
    v.into_iter().map(|(k, val)| format!("{k}={val}")).collect()
}

/// The environment of a foreign architecture's tool build. Before bpftool built its
/// bootstrap with the host's compiler, a cross build ran a target-architecture
/// `bpftool-bootstrap` to generate its BPF skeletons ("Exec format error" on 5.10.46;
/// 6.12.107 builds). An empty `VMLINUX_BTF` in the environment turns the skeletons off
/// (bpftool's Makefile sets it with `?=` and builds them only when it is non-empty; the
/// kernel's `make tools/...` drops command-line variables for tools/, the environment
/// stays). bpftool then lacks only `prog profile` and the pids column; what the suite
/// runs is there. 6.0 is the first series assumed fixed (5.x measured broken).
fn cross_env(build: &BuildOutput) -> Vec<(&'static str, &'static str)> {
    let old = crate::version::KernelVersion::from_release(&build.release)
        .is_some_and(|k| k < crate::version::KernelVersion::new(6, 0, 0));
    if build.arch.cross_prefix().is_some() && old {
        vec![("VMLINUX_BTF", "")]
    } else {
        Vec::new()
    }
}

/// The tool's path in `build`, if it was made already (in the object folder), or came
/// with a pulled build (`artifacts/tools/<name>`).
pub fn existing(build: &BuildOutput, tool: KernelTool) -> Option<PathBuf> {
    [
        build.dir.join("obj").join(tool.output()),
        build.dir.join("artifacts/tools").join(tool.name()),
    ]
    .into_iter()
    .find(|p| crate::process::is_executable(p))
}

/// The tool for `build`, made now if needed (see the module doc).
pub fn ensure(
    home: &Home,
    build: &BuildOutput,
    toolchain: &ToolchainSpec,
    tool: KernelTool,
    sink: &dyn EventSink,
) -> Result<PathBuf, Box<ToolError>> {
    if let Some(p) = existing(build, tool) {
        return Ok(p);
    }
    let obj = build.dir.join("obj");
    let src = build.dir.join("src");
    if !obj.join(".config").is_file() || !src.join("Makefile").is_file() {
        return Err(Box::new(ToolError::NoTree {
            tool: tool.name(),
            release: build.release.clone(),
            dir: build.dir.clone(),
        }));
    }
    let _lock = home
        .lock(&CacheKey::Build(build.key.clone()))
        .map_err(|e| Box::new(ToolError::Home(e)))?;
    if let Some(p) = existing(build, tool) {
        return Ok(p);
    }
    let userland = Userland::open(home, toolchain, sink).map_err(|e| Box::new(e.into()))?;
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let log = build
        .dir
        .join("logs")
        .join(format!("tool-{}.log", tool.name()));
    let st = sink.stage(
        Stage::Tools,
        format!("make {} for linux {}", tool.target(), build.release),
    );
    let mut cmd = Cmd::new("make")
        .cwd(&src)
        .env_remove("LC_ALL")
        .env("LANG", "C")
        .arg(format!("O={}", obj.display()))
        .arg(format!("-j{jobs}"))
        .args(tool.make_vars())
        .args(cross_vars(build))
        .arg(tool.target())
        .timeout(Duration::from_secs(30 * 60));
    for (k, v) in cross_env(build) {
        cmd = cmd.env(k, v);
    }
    let out = userland
        .wrap(cmd)
        .run_streaming(sink, &log, |_| crate::process::LineAction::Continue)
        .map_err(|e| Box::new(e.into()))?;
    match existing(build, tool) {
        Some(p) if out.code == Some(0) => {
            st.ok();
            Ok(p)
        }
        _ => Err(Box::new(ToolError::Failed {
            tool: tool.name(),
            release: build.release.clone(),
            target: tool.target(),
            status: crate::process::status_text(out.code),
            tail: out.tail.join("\n"),
            log,
        })),
    }
}
