//! `labctl kernel push` and `labctl kernel pull`, and the registry options `vm test` and
//! `kernel build` take (`--registry`, `--no-pull`): parse, call `labctl::share`, print.

use std::io::Read;

use labctl::events::SinkExt;
use labctl::share::{self, Access, Credentials, Reference, Repository};

use super::Ctx;

const PUSH_HELP: &str = "\
Examples:
  labctl kernel push 5.10.46 127.0.0.1:5000/lab/kernels:5.10.46
                                      one finished build, one tag
  labctl kernel push 5.10 registry.example.org/team/lab-kernels:5.10 registry.example.org/team/lab-kernels:latest
                                      the newest 5.10.y build under two tags
  labctl kernel push 5.10.46 --registry registry.example.org/team/lab-kernels
                                      the tags `vm test --registry` looks up (5.10.46-lab-<hash>)
  echo \"$TOKEN\" | labctl kernel push 5.10.46 REF --username ci --password-stdin

What goes in: bzImage, vmlinux (with BTF), .config, System.map, modules, installed headers,
the samples/bpf programs, the examples-bpf programs the suite runs (built here if needed),
the shared libraries the dynamic ones need, and build.log/reproduce.sh. Media types:
application/vnd.labctl.kernel.v1+json (config), application/vnd.labctl.kernel.layer.v1.tar+gzip
(layers). Blobs the registry has already are not uploaded again.

Credentials: --username with --password-stdin, else ~/.docker/config.json ($DOCKER_CONFIG)
`auths`. Plain HTTP only for a registry on 127.0.0.1/localhost/[::1] or with --insecure.";

const PULL_HELP: &str = "\
Examples:
  labctl kernel pull 127.0.0.1:5000/lab/kernels:5.10.46
  labctl kernel pull registry.example.org/team/lab-kernels@sha256:<digest>
                                      exactly the bytes of that manifest
  labctl vm test --from 127.0.0.1:5000/lab/kernels:5.10.46
                                      pull and run the suite in one command

Every blob is checked against the manifest's sha256 while it arrives; the build lands in
$LABCTL_HOME/builds/<key>/ only when all of them matched, with build.json's `origin`
naming the reference and manifest digest. A host that only pulls needs no compiler:
`labctl doctor --pull-only` checks what it does need.";

/// Credentials and transport for a registry.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Registry access")]
pub(crate) struct AccessOpts {
    /// User name for the registry (with --password-stdin); else ~/.docker/config.json is read.
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password or token from standard input (with --username).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Allow plain HTTP to a registry that is not on this machine's loopback.
    #[arg(long)]
    pub insecure: bool,
}

impl AccessOpts {
    pub(crate) fn access(&self) -> anyhow::Result<Access> {
        let credentials = match &self.username {
            Some(u) if self.password_stdin => {
                let mut p = String::new();
                std::io::stdin().read_to_string(&mut p)?;
                let p = p.trim_end_matches(['\n', '\r']).to_string();
                if p.is_empty() {
                    return Err(labctl::Error::Usage(
                        "--password-stdin: standard input was empty".into(),
                    )
                    .into());
                }
                Some(Credentials {
                    username: u.clone(),
                    password: p,
                })
            }
            _ => None,
        };
        Ok(Access {
            credentials,
            insecure: self.insecure,
        })
    }
}

/// Where `vm test VERSION` and `kernel build VERSION` look for a ready kernel first.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Registry")]
pub(crate) struct RegistryOpts {
    /// Look the lab kernel up here before building (tag VERSION-lab-<fragments hash>,
    /// as `kernel push --registry` writes it); a miss builds as usual.
    #[arg(long, env = "LABCTL_REGISTRY", value_name = "HOST/REPO")]
    pub registry: Option<String>,
    /// Do not look in the registry; build (or reuse a local build) as usual.
    #[arg(long)]
    pub no_pull: bool,
    #[command(flatten)]
    pub access: AccessOpts,
}

impl RegistryOpts {
    /// Pull the lab kernel `version` from the registry, when one is configured and the
    /// request is the plain lab profile. None: build here.
    pub(crate) fn lookup(
        &self,
        ctx: &Ctx,
        version: &str,
        default_config: bool,
        toolchain: &labctl::userland::ToolchainSpec,
        arch: &labctl::arch::Arch,
    ) -> anyhow::Result<Option<share::Pulled>> {
        let Some(repo) = self.registry.as_deref().filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        if self.no_pull {
            return Ok(None);
        }
        if !default_config {
            ctx.sink().info(format!(
                "not looking in {repo}: config options were given (the registry holds lab-profile kernels)"
            ));
            return Ok(None);
        }
        let repo: Repository = repo
            .parse()
            .map_err(|e| labctl::Error::Usage(format!("--registry / LABCTL_REGISTRY: {e}")))?;
        Ok(share::lookup(
            &ctx.home,
            &repo,
            version,
            toolchain,
            arch,
            &self.access.access()?,
            ctx.sink(),
        )?)
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = PUSH_HELP)]
pub struct PushArgs {
    /// The finished build: an exact release (5.10.46) or a series (its newest build).
    #[arg(value_name = "VERSION")]
    pub version: String,
    /// Where to push: HOST[:PORT]/NAME[:TAG] (the tag defaults to the kernel release).
    /// Several references push one manifest under several tags of one repository.
    #[arg(value_name = "REF", required_unless_present = "registry")]
    pub refs: Vec<String>,
    /// Push under the tags `vm test --registry` looks up: VERSION-lab-<fragments hash>
    /// and RELEASE-lab-<fragments hash> (lab-profile builds only).
    #[arg(long, env = "LABCTL_REGISTRY", value_name = "HOST/REPO")]
    pub registry: Option<String>,
    /// Which toolchain's build (`host` or `debian:<suite>`).
    #[arg(long, default_value = "host", value_name = "TOOLCHAIN")]
    pub toolchain: labctl::userland::ToolchainSpec,
    /// Which architecture's build (x86_64, arm64) [default: this machine's].
    #[arg(long, env = "LABCTL_ARCH", value_name = "ARCH")]
    pub arch: Option<String>,
    #[command(flatten)]
    pub access: AccessOpts,
}

#[derive(clap::Args, Debug)]
#[command(after_help = PULL_HELP)]
pub struct PullArgs {
    /// HOST[:PORT]/NAME:TAG or HOST[:PORT]/NAME@sha256:DIGEST.
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub access: AccessOpts,
}

pub fn run_push(a: PushArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let req: labctl::VersionReq = a.version.parse()?;
    let arch = match &a.arch {
        Some(n) => super::opts::parse_arch(n)?,
        None => labctl::arch::Arch::host(),
    };
    let out =
        labctl::build::find_build_for(&ctx.home, &req, &a.toolchain, arch).ok_or_else(|| {
            share::OciError::NoBuild {
                version: a.version.clone(),
                toolchain: if a.toolchain.is_host() {
                    String::new()
                } else {
                    a.toolchain.to_string()
                },
                home: ctx.home.root().to_path_buf(),
            }
        })?;
    let mut refs: Vec<Reference> = a.refs.iter().map(|r| r.parse()).collect::<Result<_, _>>()?;
    if refs.is_empty() {
        let repo: Repository = a
            .registry
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|e| labctl::Error::Usage(format!("--registry / LABCTL_REGISTRY: {e}")))?;
        let meta = labctl::build::BuildJson::read(&out.dir);
        if meta
            .as_ref()
            .is_none_or(|m| m.profile != "lab" || !m.fragments.is_empty())
        {
            return Err(labctl::Error::Usage(format!(
                "the build in {} is not a plain lab-profile build: push it under an explicit REF",
                out.dir.display()
            ))
            .into());
        }
        let mut tags = vec![share::lab_tag(&out.release, out.arch)];
        if a.version != out.release {
            tags.push(share::lab_tag(&a.version, out.arch));
        }
        refs = tags.iter().map(|t| repo.for_tag(t)).collect();
    }
    let pushed = share::push(&ctx.home, &out, &refs, &a.access.access()?, ctx.sink())?;
    if ctx.global.json {
        ctx.print_json(&pushed)?;
        return Ok(super::EXIT_OK);
    }
    ctx.out(format!("pushed linux {} ({})", pushed.release, pushed.key));
    for r in &pushed.references {
        ctx.out(format!("  {r}"));
    }
    for l in &pushed.layers {
        ctx.out(format!(
            "  {:<17} {:>10}  {:>6} files  {}",
            l.name,
            labctl::home::human_bytes(l.size),
            l.files,
            if l.uploaded {
                "uploaded"
            } else {
                "already there"
            }
        ));
    }
    ctx.out(format!(
        "  {} uploaded of {}, packed in {:.0}s, uploaded in {:.0}s",
        labctl::home::human_bytes(pushed.uploaded_bytes),
        labctl::home::human_bytes(pushed.total_bytes),
        pushed.pack_seconds,
        pushed.upload_seconds
    ));
    if let Some(why) = &pushed.examples_missing {
        ctx.out(format!(
            "  warning: no examples-bpf programs in the artifact ({why})"
        ));
    }
    Ok(super::EXIT_OK)
}

pub fn run_pull(a: PullArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let r: Reference = a.reference.parse()?;
    let p = share::pull(&ctx.home, &r, &a.access.access()?, ctx.sink())?;
    if ctx.global.json {
        ctx.print_json(&p)?;
        return Ok(super::EXIT_OK);
    }
    ctx.out(format!(
        "linux {} {}",
        p.output.release,
        if p.reused {
            "(in the home already, nothing downloaded)"
        } else {
            "pulled"
        }
    ));
    ctx.out(format!("  from         {}", p.reference));
    ctx.out(format!("  digest       {}", p.digest));
    ctx.out(format!("  folder       {}", p.output.dir.display()));
    ctx.out(format!(
        "  {:<12} {}",
        p.output.arch.image_name,
        p.output.image.display()
    ));
    if !p.reused {
        ctx.out(format!(
            "  downloaded   {} in {:.0}s",
            labctl::home::human_bytes(p.bytes),
            p.seconds
        ));
    }
    ctx.out(format!(
        "  next         labctl vm test {}",
        p.output.release
    ));
    Ok(super::EXIT_OK)
}
