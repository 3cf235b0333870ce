//! placeholder
#[derive(clap::Args, Debug)]
pub struct PackageArgs {}
pub fn run(_a: PackageArgs, _ctx: &super::Ctx) -> anyhow::Result<u8> {
    Ok(0)
}
