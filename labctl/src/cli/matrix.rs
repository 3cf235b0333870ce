//! `labctl matrix`.

use super::{not_implemented, Ctx};

#[derive(clap::Args, Debug)]
pub struct MatrixArgs {}

pub fn run(_a: MatrixArgs, _ctx: &Ctx) -> anyhow::Result<u8> {
    not_implemented("matrix")
}
