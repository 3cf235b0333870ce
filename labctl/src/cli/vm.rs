//! `labctl vm boot` and `labctl vm run`.

use super::{not_implemented, Ctx};

#[derive(clap::Args, Debug)]
pub struct BootArgs {
    /// Kernel version of a labctl build (or use --kernel).
    pub version: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Kernel version of a labctl build (or use --kernel).
    pub version: Option<String>,
    /// The command to run in the guest, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
}

pub fn run_boot(_a: BootArgs, _ctx: &Ctx) -> anyhow::Result<u8> {
    not_implemented("vm boot")
}
pub fn run_run(_a: RunArgs, _ctx: &Ctx) -> anyhow::Result<u8> {
    not_implemented("vm run")
}
