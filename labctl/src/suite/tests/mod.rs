//! The suite's tests, one [`SuiteTest`] impl each, and the registry ([`all`]): the one
//! list, in run and report order. A fixed test is one file here (its id, `--list` line,
//! timeout, what it needs from the host, its in-guest shell lines and its judge, with
//! the judge's unit tests); the samples/bpf programs are one generic impl
//! ([`samples::SampleTest`]) over `examples-bpf/samples.toml`. The planner
//! (`suite::run`) works from [`SuiteTest::needs`] only, so a new test is its file plus
//! one line in [`all`].

pub mod bpftool;
pub mod bpftool_btf;
pub mod bpftrace;
pub mod cbpf_port80;
pub mod core_hello;
pub mod hello;
pub mod hello_bcc;
pub mod kernel_btf;
pub mod kernel_config;
pub mod kernel_jit;
pub mod samples;
pub mod test_bpf;

use std::sync::Arc;
use std::time::Duration;

use crate::arch::Arch;
use crate::version::KernelVersion;

use super::guest::{ScriptCtx, GUEST_BPFTOOL};
use super::parse::Verdict;
use super::SuiteError;

/// One test of the suite.
pub trait SuiteTest: Send + Sync + std::fmt::Debug {
    /// Stable id: `kernel/btf`, `hello`, `samples/sockex1`, ... (a plain shell word:
    /// [`safe_name`](super::guest::safe_name)).
    fn id(&self) -> &str;
    /// One line for `--list`.
    fn about(&self) -> &str;
    /// Per-test timeout inside the guest.
    fn timeout(&self) -> Duration;
    /// May run concurrently with every other test: the parallel batch starts first, in
    /// the background, and the serial tests run one after another alongside it.
    fn parallel(&self) -> bool {
        false
    }
    /// CPU-bound with nothing timed: in the parallel batch it runs at nice 19, so the
    /// tests that sleep between steps (the samples' one-second loops) and the serial
    /// tests get the CPU as soon as they wake; it takes the rest. The lab kernels are
    /// uniprocessor, so the batch shares one CPU (bench/suite.sh on 5.10.262: 8.9 → 8.1
    /// s). Ignored for serial tests.
    fn nice(&self) -> bool {
        false
    }
    /// What the host must provide for it (payload, tools, the vng boot).
    fn needs(&self) -> Needs {
        Needs::default()
    }
    /// Data says this test cannot exist on this kernel: why. Such a test is not run; it
    /// is reported as a [`SkipKind::NotApplicable`](crate::events::SkipKind) skip.
    fn not_applicable(&self, _kernel: &KernelVersion, _arch: &Arch) -> Option<String> {
        None
    }
    /// The shell lines that run it in the guest (between the runner's framing markers);
    /// they must set `rc`.
    fn guest_script(&self, ctx: &ScriptCtx) -> String;
    /// Its verdict on its framed output; `rc` is None when the END marker never came.
    fn judge(&self, out: &str, rc: Option<i32>, ctx: &JudgeCtx) -> Verdict;
}

/// What a test needs from the host. The planner turns each into guest payload (or a
/// setup skip that says what is missing) without knowing which test asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Needs {
    /// The examples-bpf programs (built on the host) under `$S/bin`.
    pub examples: bool,
    /// The kernel's own bpftool at [`GUEST_BPFTOOL`](super::guest::GUEST_BPFTOOL).
    pub bpftool: bool,
    /// lib/test_bpf.ko from the build ([`ScriptCtx::test_bpf_ko`]).
    pub test_bpf_ko: bool,
    /// One samples/bpf program from the build, under `$S/samples`.
    pub sample: Option<SampleFiles>,
    /// Runs in the virtme-ng boot on the host's userland, with this host program.
    pub host: Option<HostTool>,
}

impl Needs {
    /// Only the examples-bpf programs (hello, cbpf-port80, core-hello).
    pub fn examples() -> Needs {
        Needs {
            examples: true,
            ..Needs::default()
        }
    }
}

/// The guest lines that run one examples-bpf program (`argv`, from `$S/bin`) under
/// `run`'s `secs` timeout and set `rc` to its exit code.
pub(crate) fn run_example(secs: u64, argv: &str) -> String {
    format!("cd $S/bin && run {secs} {argv}; rc=$?; cd /\n")
}

/// The guest lines of a bpftool test: `body` (newline-terminated) runs only when the
/// kernel's bpftool is at `$B`; without it the test prints `labctl: missing bpftool` and
/// sets rc=127, which [`bpftool_missing`] turns into the failure.
pub(crate) fn with_bpftool(body: &str) -> String {
    format!(
        "B={GUEST_BPFTOOL}\nif [ ! -x \"$B\" ]; then echo \"labctl: missing bpftool\"; rc=127\nelse\n{body}rc=0\nfi\n"
    )
}

/// The failures every bpftool test shares: the guest stopped during `what`, or the
/// kernel's bpftool was not in the guest ([`with_bpftool`]).
pub(crate) fn bpftool_missing(out: &str, rc: Option<i32>, what: &str) -> Option<Verdict> {
    if let Some(v) = super::parse::unfinished(rc, what) {
        return Some(v);
    }
    if out.contains("labctl: missing bpftool") {
        return Some(Verdict::fail("the kernel's bpftool is not in the guest"));
    }
    None
}

/// A samples/bpf program and the files it opens, by name in the build's samples folder.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleFiles {
    pub program: String,
    /// Its BPF objects: those that exist go in too.
    pub objects: Vec<String>,
}

/// A host program a vng-boot test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostTool {
    /// BCC for a python3 (`suite::Bcc`): [`ScriptCtx::python`], hello-bcc's sources in
    /// the payload, BCC's headers.
    Bcc,
    /// The host's bpftrace: [`ScriptCtx::bpftrace`].
    Bpftrace,
}

/// What a judge may need besides the output.
#[derive(Debug, Clone, Copy, Default)]
pub struct JudgeCtx<'a> {
    /// `SYMBOL=value` pairs /proc/config.gz must agree with (without `CONFIG_`).
    pub expected_config: &'a [(String, String)],
}

/// Every test for kernel `v` on `arch`, in run order (`full`: test_bpf's whole set).
/// Samples outside their version range are left out (they do not exist in that kernel).
pub fn all(
    v: &KernelVersion,
    full: bool,
    arch: &Arch,
) -> Result<Vec<Arc<dyn SuiteTest>>, SuiteError> {
    let mut out: Vec<Arc<dyn SuiteTest>> = vec![
        Arc::new(kernel_btf::KernelBtf),
        Arc::new(kernel_jit::KernelJit),
        Arc::new(kernel_config::KernelConfig),
        Arc::new(hello::Hello),
        Arc::new(cbpf_port80::CbpfPort80),
        Arc::new(core_hello::CoreHello),
        Arc::new(bpftool::Bpftool),
        Arc::new(bpftool_btf::BpftoolBtf),
        Arc::new(hello_bcc::HelloBcc),
        Arc::new(bpftrace::Bpftrace),
        Arc::new(test_bpf::TestBpf::for_kernel(v, full, arch)?),
    ];
    out.extend(samples::for_kernel(v)?);
    Ok(out)
}
