//! `labctl doctor`.

use super::{not_implemented, Ctx};

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {}

pub fn run(_a: DoctorArgs, _ctx: &Ctx) -> anyhow::Result<u8> {
    not_implemented("doctor")
}
