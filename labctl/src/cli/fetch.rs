//! `labctl kernel fetch`, `kernel list` and `cache ls|prune`.

use super::{not_implemented, Ctx};

#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// Kernel version: 5.16.10, v5.16.10, or a series like 5.10 (its newest release).
    pub version: String,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Ask the sources which versions they offer (optionally only one series, e.g. 5.10).
    #[arg(long)]
    pub remote: bool,
    pub series: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct CacheLsArgs {}

#[derive(clap::Args, Debug)]
pub struct CachePruneArgs {}

pub fn run_fetch(_a: FetchArgs, _ctx: &Ctx) -> anyhow::Result<u8> {
    not_implemented("kernel fetch")
}
pub fn run_list(_a: ListArgs, _ctx: &Ctx) -> anyhow::Result<u8> {
    not_implemented("kernel list")
}
pub fn run_cache_ls(_a: CacheLsArgs, _ctx: &Ctx) -> anyhow::Result<u8> {
    not_implemented("cache ls")
}
pub fn run_cache_prune(_a: CachePruneArgs, _ctx: &Ctx) -> anyhow::Result<u8> {
    not_implemented("cache prune")
}
