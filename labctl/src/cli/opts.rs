//! The option groups several commands flatten in, defined once: [`SourceArgs`] (VERSION +
//! `--source ...`, for `kernel fetch|config|build|package`), [`SourceOpts`] (the same
//! without VERSION, for `vm test` and `matrix`), [`BuildOpts`] (how to build) and
//! [`lab_request`], which turns them into the library's [`labctl::lab::LabBuild`].
//! The command files import from here, never from each other.

use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use labctl::build::{BuildOptions, CcWrapper};
use labctl::source::{self, FetchOptions, NetOptions, SourceSpec, SourceTree};
use labctl::VersionReq;

use super::Ctx;

/// Where a kernel tree comes from: the VERSION argument and the `--source` options.
/// Flatten it into any command that needs a tree and call [`SourceArgs::fetch`].
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct SourceArgs {
    /// Kernel version: 5.16.10, v5.16.10, or a series like 5.10 (its newest release).
    #[arg(value_name = "VERSION", allow_negative_numbers = true)]
    pub version: String,
    #[command(flatten)]
    pub opts: SourceOpts,
}

impl SourceArgs {
    /// The parsed VERSION (a one-line usage error naming the accepted forms otherwise).
    pub fn req(&self) -> anyhow::Result<VersionReq> {
        Ok(self.version.parse::<VersionReq>()?)
    }
    /// Resolve, download (or reuse), verify and extract VERSION.
    pub fn fetch(&self, ctx: &Ctx) -> anyhow::Result<SourceTree> {
        let req = self.req()?;
        self.opts.fetch_version(ctx, &req)
    }
}

/// The `--source ...` options without a VERSION (for commands whose VERSION is optional
/// or a list, like `vm test` and `matrix`).
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Kernel source")]
pub(crate) struct SourceOpts {
    /// Where to get it: auto, kernel.org, debian, an http(s) URL, or a local tarball/tree PATH.
    #[arg(long, value_name = "SOURCE", default_value = "auto")]
    pub source: String,
    /// kernel.org mirror base URL (the folder holding v5.x/, v6.x/).
    #[arg(long, env = "LABCTL_KERNEL_ORG_URL", value_name = "URL")]
    pub kernel_org_url: Option<String>,
    /// Keyring with the kernel.org signing keys; gpgv then checks sha256sums.asc's signature.
    #[arg(long, env = "LABCTL_KERNEL_ORG_KEYRING", value_name = "FILE")]
    pub kernel_org_keyring: Option<PathBuf>,
    /// Keyring for Debian's InRelease signature (repeatable) [default:
    /// /usr/share/keyrings/debian-archive-keyring.gpg and /etc/apt/trusted.gpg.d/*].
    #[arg(
        long,
        env = "LABCTL_DEBIAN_KEYRING",
        value_name = "FILE",
        value_delimiter = ':'
    )]
    pub debian_keyring: Vec<PathBuf>,
    /// Use a source whose published signature is bad or missing (recorded and reported
    /// as NOT authenticated). Without it such a source is refused (exit 2).
    #[arg(
        long,
        env = "LABCTL_ALLOW_UNSIGNED",
        conflicts_with = "require_signature"
    )]
    pub allow_unsigned: bool,
    /// Refuse any source no signature authenticates: kernel.org without a keyring, a URL
    /// or local tarball without --sha256, a local tree.
    #[arg(long, env = "LABCTL_REQUIRE_SIGNATURE")]
    pub require_signature: bool,
    /// Refuse a Debian suite whose signed Release is past its Valid-Until (by default an
    /// expired one is used, with a warning naming the date).
    #[arg(long, env = "LABCTL_REQUIRE_FRESH")]
    pub require_fresh: bool,
    /// Debian archive base URL (default: read from this host's apt configuration).
    #[arg(long, env = "LABCTL_DEBIAN_URL", value_name = "URL")]
    pub debian_url: Option<String>,
    /// Debian security archive base URL (default: from apt, else <debian-url>-security).
    #[arg(long, env = "LABCTL_DEBIAN_SECURITY_URL", value_name = "URL")]
    pub debian_security_url: Option<String>,
    /// Debian suites to search, in order, comma-separated [default: bullseye,
    /// bullseye-security, bookworm, bookworm-security, bookworm-backports, trixie, forky,
    /// sid; add experimental for release candidates].
    #[arg(
        long,
        env = "LABCTL_DEBIAN_SUITES",
        value_name = "SUITES",
        value_delimiter = ','
    )]
    pub debian_suites: Vec<String>,
    /// Expected sha256 of the tarball for --source URL or PATH.
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Seconds to wait for a connection.
    #[arg(
        long,
        env = "LABCTL_CONNECT_TIMEOUT",
        value_name = "SECS",
        default_value_t = 10.0
    )]
    pub connect_timeout: f64,
    /// Seconds without data before a transfer counts as stalled (then it is retried).
    #[arg(
        long,
        env = "LABCTL_READ_TIMEOUT",
        value_name = "SECS",
        default_value_t = 30.0
    )]
    pub read_timeout: f64,
    /// Retries after a cut, stalled or failed transfer (resuming where it stopped).
    #[arg(long, env = "LABCTL_RETRIES", value_name = "N", default_value_t = 4)]
    pub retries: u32,
}

/// An `--arch` value: a name or alias of a file in labctl/arch/ (usage error otherwise).
pub(crate) fn parse_arch(name: &str) -> anyhow::Result<&'static labctl::arch::Arch> {
    labctl::arch::Arch::by_name(name)
        .map_err(|e| labctl::Error::Usage(format!("--arch: {e}")).into())
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    if !(s > 0.0 && s < 86400.0) {
        return Err(labctl::Error::Usage(format!(
            "{what} must be a number of seconds between 0 and 86400"
        ))
        .into());
    }
    Ok(Duration::from_secs_f64(s))
}

impl SourceOpts {
    pub fn spec(&self) -> anyhow::Result<SourceSpec> {
        Ok(self.source.parse::<SourceSpec>()?)
    }
    pub fn options(&self) -> anyhow::Result<FetchOptions> {
        if let Some(h) = &self.sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(labctl::Error::Usage("--sha256 takes 64 hex digits".into()).into());
            }
        }
        let url_ok = |u: &Option<String>, flag: &str| -> anyhow::Result<()> {
            match u {
                Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => Err(
                    labctl::Error::Usage(format!("{flag} must be an http(s) URL, got {u:?}"))
                        .into(),
                ),
                _ => Ok(()),
            }
        };
        url_ok(&self.kernel_org_url, "--kernel-org-url")?;
        url_ok(&self.debian_url, "--debian-url")?;
        url_ok(&self.debian_security_url, "--debian-security-url")?;
        Ok(FetchOptions {
            kernel_org_base: self.kernel_org_url.clone(),
            debian_bases: self.debian_url.iter().cloned().collect(),
            debian_security_bases: self.debian_security_url.iter().cloned().collect(),
            debian_suites: self
                .debian_suites
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            kernel_org_keyring: self.kernel_org_keyring.clone(),
            debian_keyrings: self.debian_keyring.clone(),
            allow_unsigned: self.allow_unsigned,
            require_signature: self.require_signature,
            require_fresh: self.require_fresh,
            sha256: self.sha256.as_ref().map(|s| s.to_lowercase()),
            net: Some(NetOptions {
                connect_timeout: secs(self.connect_timeout, "--connect-timeout")?,
                read_timeout: secs(self.read_timeout, "--read-timeout")?,
                retries: self.retries.min(20),
                ..NetOptions::default()
            }),
            ..FetchOptions::default()
        })
    }
    /// Resolve, download (or reuse), verify and extract `req` (e.g. one item of a matrix) and these source options.
    pub fn fetch_version(&self, ctx: &Ctx, req: &VersionReq) -> anyhow::Result<SourceTree> {
        let spec = self.spec()?;
        let opts = self.options()?;
        Ok(source::fetch(&ctx.home, req, &spec, &opts, ctx.sink())?)
    }
}

/// How to build: flattened into `kernel build`, `vm test` and `matrix`.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Build")]
pub(crate) struct BuildOpts {
    /// Parallel make jobs (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Do not apply the known-fix catalogue; a failure then names the entry that fixes it.
    #[arg(long)]
    pub no_fixes: bool,
    /// Compiler wrapper for CC/HOSTCC: auto = ccache when installed (cache kept in the labctl home).
    #[arg(long, value_enum, default_value_t = WrapperArg::Auto, value_name = "WRAPPER")]
    pub cc_wrapper: WrapperArg,
    /// Do not build samples/bpf (headers are still installed).
    #[arg(long)]
    pub no_samples: bool,
    /// Do not build or stage modules.
    #[arg(long)]
    pub no_modules: bool,
    /// Skip the host checks (`labctl doctor`) that normally run first.
    #[arg(long)]
    pub skip_doctor: bool,
    /// Whose compilers build the kernel: `host` (this machine's PATH) or `debian:<suite>`
    /// (that Debian release's gcc, binutils, pahole and clang in a cached minimal root
    /// filesystem made with mmdebstrap from the host's apt mirror; needs root). Part of the
    /// build key: each toolchain has its own build folder.
    #[arg(long, default_value = "host", value_name = "TOOLCHAIN")]
    pub toolchain: labctl::userland::ToolchainSpec,
    /// DWARF detail: `lean` (default) compiles without GCC's variable-location tracking
    /// (`KCFLAGS=-fno-var-tracking`; BTF is unchanged; 4-8% less compile time over a
    /// sample of the lab's objects, a third on the largest); `full` keeps the kernel's own
    /// flags, for gdb sessions that print local variables. Part of the build key.
    #[arg(long, value_enum, default_value_t = DebugInfoArg::Lean, value_name = "DETAIL")]
    pub debug_info: DebugInfoArg,
}

impl BuildOpts {
    /// The library's build knobs: the one place the flags become [`BuildOptions`].
    pub(crate) fn options(&self) -> BuildOptions {
        BuildOptions {
            jobs: self.jobs.unwrap_or(0),
            fixes: !self.no_fixes,
            cc_wrapper: self.cc_wrapper.into(),
            modules: !self.no_modules,
            samples: !self.no_samples,
            preflight: !self.skip_doctor,
            toolchain: self.toolchain.clone(),
            debug_info: self.debug_info.into(),
            ..BuildOptions::default()
        }
    }
}

/// The library request for one kernel from the flattened option groups.
pub(crate) fn lab_request(
    version: labctl::VersionReq,
    source: &SourceOpts,
    config: &super::config::ConfigOpts,
    build: &BuildOpts,
) -> anyhow::Result<labctl::lab::LabBuild> {
    Ok(labctl::lab::LabBuild {
        version,
        spec: source.spec()?,
        fetch: source.options()?,
        plan: config.plan()?,
        options: build.options(),
    })
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DebugInfoArg {
    Lean,
    Full,
}

impl From<DebugInfoArg> for labctl::build::DebugInfo {
    fn from(d: DebugInfoArg) -> Self {
        match d {
            DebugInfoArg::Lean => labctl::build::DebugInfo::Lean,
            DebugInfoArg::Full => labctl::build::DebugInfo::Full,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum WrapperArg {
    Auto,
    Ccache,
    Sccache,
    Distcc,
    None,
}

impl From<WrapperArg> for CcWrapper {
    fn from(w: WrapperArg) -> Self {
        match w {
            WrapperArg::Auto => CcWrapper::Auto,
            WrapperArg::Ccache => CcWrapper::Ccache,
            WrapperArg::Sccache => CcWrapper::Sccache,
            WrapperArg::Distcc => CcWrapper::Distcc,
            WrapperArg::None => CcWrapper::None,
        }
    }
}
