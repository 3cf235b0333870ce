//! `labctl kernel fetch`, `kernel list` and `cache ls|prune`. The VERSION + `--source ...`
//! arguments ([`SourceArgs`]) live in `opts.rs` with the other shared option groups.

use anyhow::Context;
use labctl::home::human_bytes;
use labctl::source::{self, cache, SourceTree};

use super::opts::{SourceArgs, SourceOpts};
use super::Ctx;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  labctl kernel fetch 5.10                      newest 5.10.y (kernel.org, else Debian)
  labctl kernel fetch 5.10.46 --source debian   Debian's orig tarball, verified against its index
  labctl kernel fetch v5.16.10 --source ./linux-5.16.10.tar.xz
  labctl --json kernel fetch 6.1                JSON object with version, sha256, path

The tree lands in $LABCTL_HOME/src/linux-<ver>-<sha8>/ (read-only by convention: build with O=).
A second fetch of an exact version reuses it without touching the network.

Sources:
  auto         kernel.org first, then Debian's archive (each failure is one line)
  kernel.org   https://cdn.kernel.org/pub/linux/kernel (override: --kernel-org-url)
  debian       the linux source package in Debian's archive; base URLs from this host's
               apt configuration (override: --debian-url, --debian-security-url)
  URL          an http(s) URL of a linux-<ver>.tar.xz (pin it with --sha256)
  PATH         a local linux-<ver>.tar.xz, or an already extracted tree (used in place)")]
pub struct FetchArgs {
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  labctl kernel list                     extracted trees (and builds, once built)
  labctl kernel list --remote 5.10       every 5.10.y each source offers
  labctl kernel list --remote 7          every 7.x release (Debian: forky, sid)
  labctl kernel list --remote --source debian")]
pub struct ListArgs {
    /// Ask the sources which versions they offer (optionally only one series, e.g. 5.10).
    #[arg(long)]
    pub remote: bool,
    /// Only this major (7) or series (5.10).
    #[arg(value_name = "MAJOR|SERIES")]
    pub series: Option<String>,
    /// Which sources to ask with --remote (`--source auto` asks them all) and how.
    #[command(flatten)]
    pub source: SourceOpts,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  labctl cache ls                  every entry with its size and age
  labctl cache ls --kind src       only extracted trees
  labctl --json cache ls

Kinds: downloads, indexes, src, configs, builds, guests, runs.")]
pub struct CacheLsArgs {
    /// Only entries of this kind (repeatable): downloads, indexes, src, configs, builds, guests, runs.
    #[arg(long, value_name = "KIND", value_parser = cache::parse_kind)]
    pub kind: Vec<String>,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  labctl cache prune --kind downloads            drop verified tarballs (trees stay)
  labctl cache prune --older-than 30 --dry-run   what a 30-day cleanup would free
  labctl cache prune --all                       everything

Entries another labctl is using (its lock is held) are skipped, never deleted.")]
pub struct CachePruneArgs {
    /// Delete every entry (of the --kind given, if any).
    #[arg(long)]
    pub all: bool,
    /// Only entries of this kind (repeatable): downloads, indexes, src, configs, builds, guests, runs.
    #[arg(long, value_name = "KIND", value_parser = cache::parse_kind)]
    pub kind: Vec<String>,
    /// Only entries not modified for this many days.
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<u64>,
    /// Show what would be deleted and how much it would free; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run_fetch(a: FetchArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let t = a.source.fetch(ctx)?;
    let trust = source::tree_trust(&t.path);
    if ctx.global.json {
        let mut v = serde_json::to_value(&t).expect("serializable");
        v["trust"] = serde_json::to_value(&trust).expect("serializable");
        ctx.print_json(&v)?;
    } else {
        ctx.out(format!(
            "linux {} ({}){}",
            t.version,
            t.source,
            if t.reused { ", already extracted" } else { "" }
        ));
        if !t.sha256.is_empty() {
            ctx.out(format!("sha256 {}", t.sha256));
        }
        ctx.out(format!("verified: {}", t.verified));
        ctx.out(format!("trust: {}", trust.summary()));
        ctx.out(format!("tree {}", t.path.display()));
    }
    Ok(super::EXIT_OK)
}

pub fn run_list(a: ListArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let filter = match &a.series {
        None => source::ListFilter::All,
        Some(s) => source::ListFilter::parse(s).ok_or_else(|| {
            labctl::Error::Usage(format!(
                "list takes a major (7) or a series (5.10), not {s:?}"
            ))
        })?,
    };
    if !a.remote {
        let trees: Vec<SourceTree> = source::local_trees(&ctx.home)
            .into_iter()
            .filter(|t| filter.keeps(&t.version))
            .collect();
        let builds: Vec<labctl::build::BuildJson> = labctl::build::local_builds(&ctx.home)
            .into_iter()
            .filter(|b| filter.keeps(&b.version))
            .collect();
        if ctx.global.json {
            return ctx
                .print_json(&serde_json::json!({ "trees": trees, "builds": builds }))
                .map(|_| 0);
        }
        if trees.is_empty() {
            ctx.out("no kernel trees fetched yet (try `labctl kernel fetch 5.10`)");
        }
        for t in &trees {
            ctx.out(format!(
                "{:<10} {:<26} {}",
                t.version.to_string(),
                t.source,
                t.path.display()
            ));
        }
        super::build::print_builds(&builds, ctx);
        return Ok(0);
    }
    let spec = a.source.spec()?;
    let opts = a.source.options()?;
    let listings = source::list_remote(&ctx.home, &spec, filter, &opts, ctx.sink());
    if ctx.global.json {
        ctx.print_json(&listings)?;
    } else {
        for l in &listings {
            match &l.error {
                Some(e) => ctx.out(format!("{}: unavailable: {e}", l.source)),
                None if l.detail.is_empty() => {
                    ctx.out(format!("{}: {}", l.source, join(&l.versions)))
                }
                None => {
                    for (suite, v) in &l.detail {
                        ctx.out(format!("{} {suite}: {}", l.source, join(v)));
                    }
                }
            }
        }
    }
    if listings.iter().all(|l| l.error.is_some()) {
        anyhow::bail!("no source could be listed");
    }
    Ok(0)
}

fn join(v: &[labctl::KernelVersion]) -> String {
    if v.is_empty() {
        return "(none)".into();
    }
    v.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

pub fn run_cache_ls(a: CacheLsArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let (entries, problems) = cache::list_checked(&ctx.home, &a.kind);
    for p in problems {
        labctl::events::SinkExt::warn(ctx.sink(), p);
    }
    let total: u64 = entries.iter().map(|e| e.size).sum();
    if ctx.global.json {
        ctx.print_json(
            &serde_json::json!({ "home": ctx.home.root(), "entries": entries, "total": total }),
        )?;
        return Ok(0);
    }
    ctx.out(format!("{:<10} {:>10} {:>5}  NAME", "KIND", "SIZE", "AGE"));
    for e in &entries {
        let partial = if e.partial { "  (partial)" } else { "" };
        ctx.out(format!(
            "{:<10} {:>10} {:>5}  {}{partial}",
            e.kind,
            human_bytes(e.size),
            age(e.age_secs),
            e.name
        ));
    }
    ctx.out(format!(
        "{} entries, {} in {}",
        entries.len(),
        human_bytes(total),
        ctx.home.root().display()
    ));
    Ok(0)
}

pub fn run_cache_prune(a: CachePruneArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let filter = cache::PruneFilter {
        all: a.all,
        kinds: a.kind.clone(),
        older_than: a.older_than.map(cache::older_than_days).transpose()?,
    };
    let r = cache::prune(&ctx.home, &filter, a.dry_run, ctx.sink()).context("cache prune")?;
    // Every entry was tried; a failure anywhere makes the whole prune exit 2.
    let code = if r.failed.is_empty() { 0 } else { 2 };
    if ctx.global.json {
        ctx.print_json(&r)?;
        return Ok(code);
    }
    let verb = if a.dry_run { "would remove" } else { "removed" };
    for e in &r.removed {
        ctx.out(format!(
            "{verb} {:<10} {:>10}  {}",
            e.kind,
            human_bytes(e.size),
            e.name
        ));
    }
    for e in &r.busy {
        ctx.out(format!(
            "in use, kept {:<10} {:>10}  {}",
            e.kind,
            human_bytes(e.size),
            e.name
        ));
    }
    for f in &r.failed {
        ctx.out(format!("FAILED {}: {}", f.path.display(), f.error));
    }
    ctx.out(format!(
        "{verb} {} entries, {} freed{}{}",
        r.removed.len(),
        human_bytes(r.freed),
        if a.dry_run { " (dry run)" } else { "" },
        if r.failed.is_empty() {
            String::new()
        } else {
            format!("; {} failed", r.failed.len())
        }
    ));
    Ok(code)
}
