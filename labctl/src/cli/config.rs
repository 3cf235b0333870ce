//! `labctl kernel config`.

use super::{not_implemented, Ctx};

#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// Kernel version: 5.16.10, v5.16.10, or a series like 5.10.
    pub version: String,
}

pub fn run(_a: ConfigArgs, _ctx: &Ctx) -> anyhow::Result<u8> {
    not_implemented("kernel config")
}
