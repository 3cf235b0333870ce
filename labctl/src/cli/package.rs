//! `labctl kernel package`: distribution packages of a lab build through
//! `labctl::lab::package` (the kernel's bindeb-pkg / binrpm-pkg / tar-pkg targets in the
//! build's own tree and O= folder); prints where they are and how to install them.

use labctl::build::PackageFormat;

use super::Ctx;

const HELP: &str = "\
Examples:
  labctl kernel package 5.10.46 --format deb          .debs in the build's artifacts/packages/
  labctl kernel package 5.10.46 --format rpm --output ~/pkgs
  labctl kernel package 6.12 --format tar             linux-<release>-x86.tar (boot/, lib/modules/)
  labctl kernel package 6.12 --profile distro --format deb
                                      a kernel for a real machine: Debian's config + the lab's

The kernel is built first when needed (the same build `kernel build` makes, same options);
packaging reuses its O= folder and make variables, so nothing is compiled again.
Needs dpkg-buildpackage and fakeroot (deb) or rpmbuild (rpm): `labctl doctor --packages`.

Install on Debian/Ubuntu:   sudo dpkg -i linux-image-<release>_*.deb && sudo update-grub
Install on Fedora/RHEL:     sudo rpm -ivh kernel-<release>-*.rpm
                            sudo grub2-set-default 0   (or grubby --set-default /boot/vmlinuz-<release>)
The lab profile is made for QEMU (virtio, no real disk controllers); for hardware use
--profile distro. Details: docs/commands/kernel-package.md.";

#[derive(clap::Args, Debug)]
#[command(after_help = HELP)]
pub struct PackageArgs {
    #[command(flatten)]
    pub(crate) source: super::opts::SourceArgs,
    /// Package format: deb (bindeb-pkg), rpm (binrpm-pkg) or tar (tar-pkg).
    #[arg(long, value_name = "FORMAT", value_parser = ["deb", "rpm", "tar"])]
    pub format: String,
    /// Move the packages here instead of the build's artifacts/packages/.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub(crate) config: super::config::ConfigOpts,
    #[command(flatten)]
    pub(crate) build: super::opts::BuildOpts,
}

pub fn run(a: PackageArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let format: PackageFormat = a
        .format
        .parse()
        .map_err(|e: String| labctl::Error::Usage(format!("--format: {e}")))?;
    let req = super::opts::lab_request(a.source.req()?, &a.source.opts, &a.config, &a.build)?;
    let p = labctl::lab::package(&ctx.home, &req, format, a.output.as_deref(), ctx.sink())?;
    if ctx.global.json {
        ctx.print_json(&p)?;
        return Ok(super::EXIT_OK);
    }
    ctx.out(format!(
        "linux {} as {} packages:",
        p.release,
        format.name()
    ));
    for f in &p.files {
        ctx.out(format!("  {}", f.display()));
    }
    ctx.out(format!("  log  {}", p.log.display()));
    match format {
        PackageFormat::Deb => ctx.out(format!(
            "install: sudo dpkg -i {}/linux-image-{}_*.deb && sudo update-grub",
            p.files[0].parent().unwrap_or(std::path::Path::new(".")).display(),
            p.release
        )),
        PackageFormat::Rpm => ctx.out(format!(
            "install: sudo rpm -ivh {}/kernel-*.rpm && sudo grub2-set-default 0",
            p.files[0].parent().unwrap_or(std::path::Path::new(".")).display()
        )),
        PackageFormat::Tar => ctx.out("install: sudo tar -C / -xf <the tar> (boot/ and lib/modules/), then update your boot loader"),
    }
    Ok(super::EXIT_OK)
}
