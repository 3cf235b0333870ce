//! `labctl vm test`.

use super::{not_implemented, Ctx};

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Kernel version (default: the newest 5.10.y).
    pub version: Option<String>,
}

pub fn run(_a: TestArgs, _ctx: &Ctx) -> anyhow::Result<u8> {
    not_implemented("vm test")
}
