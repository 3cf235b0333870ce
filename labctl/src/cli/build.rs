//! `labctl kernel build`: fetch → config → fixes → compile → modules → headers →
//! samples/bpf, through `labctl::build::build`. Prints the artifacts on success; on
//! failure the error carries the first error line, the last 30 lines, the log path and
//! the known-fix catalogue's diagnosis (exit 2).

use labctl::build;

use super::opts::{lab_request, BuildOpts};
use super::Ctx;

const AFTER_HELP: &str = "\
Examples:
  labctl kernel build 5.10.46                 fetch, configure (lab profile), fix, build
  labctl kernel build 5.10 --jobs 8           newest 5.10.y with 8 make jobs
  labctl kernel build 5.10.46 --no-fixes      show what breaks without the known fixes
  labctl kernel build 5.10.46 --profile defconfig --fragment bcc
  labctl kernel build 5.16.10 --cc-wrapper none --no-samples
  labctl kernel build 5.10.46 --toolchain debian:bullseye   with Debian 11's GCC 10 and pahole 1.20
  labctl kernel build 5.10.46 --registry HOST/REPO   pull the lab kernel if pushed there, else build

The build folder is $LABCTL_HOME/builds/<version>-<config8>-<toolchain8>/ with artifacts/
(bzImage, vmlinux, config, System.map, modules/, headers/, samples/), build.json, build.log,
logs/ and reproduce.sh. Building the same version, config and toolchain again does nothing.
Known fixes and their manual equivalents: docs/troubleshooting.md.";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct BuildArgs {
    #[command(flatten)]
    pub(crate) source: super::opts::SourceArgs,
    #[command(flatten)]
    pub(crate) config: super::config::ConfigOpts,
    #[command(flatten)]
    pub(crate) build: BuildOpts,
    #[command(flatten)]
    pub(crate) registry: super::share::RegistryOpts,
}

pub fn run(a: BuildArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let req = lab_request(a.source.req()?, &a.source.opts, &a.config, &a.build)?;
    let pulled = a.registry.lookup(
        ctx,
        &a.source.version,
        a.config.is_default(),
        &a.build.toolchain,
        a.config.arch()?,
    )?;
    let out = match pulled {
        Some(p) => {
            ctx.out(format!(
                "linux {} from {} ({})",
                p.output.release,
                p.reference,
                if p.reused {
                    "in the home already"
                } else {
                    "pulled, nothing built"
                }
            ));
            p.output
        }
        None => labctl::lab::build(&ctx.home, &req, ctx.sink())?.output,
    };
    if ctx.global.json {
        let meta = build::BuildJson::read(&out.dir);
        ctx.print_json(&serde_json::json!({ "output": out, "build": meta }))?;
        return Ok(super::EXIT_OK);
    }
    let meta = build::BuildJson::read(&out.dir);
    ctx.out(format!(
        "linux {} {}",
        out.release,
        if out.reused {
            "(already built, nothing to do)"
        } else {
            "built"
        }
    ));
    ctx.out(format!("  folder       {}", out.dir.display()));
    ctx.out(format!(
        "  {:<12} {}",
        out.arch.image_name,
        out.image.display()
    ));
    ctx.out(format!("  vmlinux      {}", out.vmlinux.display()));
    ctx.out(format!("  config       {}", out.config.display()));
    ctx.out(format!("  modules      {}", out.modules.display()));
    ctx.out(format!("  headers      {}", out.headers.display()));
    ctx.out(format!("  samples/bpf  {}", out.samples.display()));
    ctx.out(format!("  log          {}", out.log.display()));
    ctx.out(format!("  reproduce    {}", out.reproduce.display()));
    if let Some(m) = meta {
        let fixes: Vec<&str> = m.fixes_applied.iter().map(|(id, _)| id.as_str()).collect();
        ctx.out(format!(
            "  fixes        {}",
            if fixes.is_empty() {
                "none".to_string()
            } else {
                fixes.join(", ")
            }
        ));
        let stages: Vec<String> = m
            .stages
            .iter()
            .map(|s| format!("{} {:.0}s", s.stage, s.seconds))
            .collect();
        if !stages.is_empty() {
            ctx.out(format!("  stages       {}", stages.join(", ")));
        }
        if m.samples_ok == Some(false) {
            ctx.out("  warning      samples/bpf did not build completely (see build.log)");
        }
    }
    Ok(super::EXIT_OK)
}

/// The local builds section of `labctl kernel list`.
pub(crate) fn print_builds(builds: &[build::BuildJson], ctx: &Ctx) {
    if builds.is_empty() {
        ctx.out("no local builds yet (try `labctl kernel build 5.10`)");
        return;
    }
    ctx.out("builds:");
    for b in builds {
        let result = match b.result {
            build::BuildResult::Success => "ok",
            build::BuildResult::Failed => "failed",
            build::BuildResult::Running => "unfinished",
        };
        let fixes: Vec<&str> = b.fixes_applied.iter().map(|(id, _)| id.as_str()).collect();
        let secs: f64 = b.stages.iter().map(|s| s.seconds).sum();
        ctx.out(format!(
            "{:<10} {:<10} {:<28} {:<10} {:<16} {:>6.0}s  fixes: {}",
            b.version.to_string(),
            result,
            b.key,
            b.profile,
            b.toolchain.userland.to_string(),
            secs,
            if fixes.is_empty() {
                "none".to_string()
            } else {
                fixes.join(", ")
            }
        ));
    }
}
