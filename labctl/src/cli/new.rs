//! `labctl new DIR --template T`: parses the arguments, picks the lab build, lets
//! `labctl::new` write the starter project and prints its build and run commands.

use std::path::PathBuf;

use labctl::new::{self, NewRequest};

use super::Ctx;

const AFTER_HELP: &str = "\
Templates:
  libbpf     a kprobe in C (bpf_printk) and its libbpf loader; `make`, then `make run` in the guest
  core       CO-RE in C: task_struct fields read with BPF_CORE_READ, sent through a ring buffer
  bcc        a Python BCC script (runs with --backend vng: BCC needs the host's userland)
  bpftrace   a bpftrace script

Examples:
  labctl new ~/first-bpf                            libbpf template, newest lab build
  labctl new ~/first-bpf --kernel 5.10              for the newest 5.10.y you built
  labctl new ~/core-bpf --template core --kernel 6.12.107
  labctl new ~/hello-bt --template bpftrace

Then build on the host and run in the guest (the README in DIR has the exact commands):
  cd ~/first-bpf && make
  labctl vm run 6.12 --share ~/first-bpf -- make run

libbpf and core get a vmlinux.h made from the chosen build's BTF (host bpftool), so
they are made for that kernel: run `labctl new` again with --kernel for another.
DIR must be new or empty: nothing is ever overwritten. Walkthrough: docs/first-program.md.";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct NewArgs {
    /// The project folder to create (new, or an empty folder).
    pub dir: PathBuf,
    /// What to start from.
    #[arg(long, short = 't', default_value = "libbpf", value_name = "TEMPLATE",
        value_parser = clap::builder::PossibleValuesParser::new(["libbpf", "core", "bcc", "bpftrace"]))]
    pub template: String,
    /// The lab build to make it for: a version you built (6.12.107, or 6.12 for the
    /// newest 6.12.y). Default: the newest finished build.
    #[arg(long, value_name = "VERSION")]
    pub kernel: Option<String>,
}

pub fn run(a: NewArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let template = new::template(&a.template)?;
    let req = a
        .kernel
        .as_deref()
        .map(str::parse::<labctl::VersionReq>)
        .transpose()?;
    let kernel = new::choose_build(&ctx.home, req.as_ref())?;
    let request = NewRequest {
        dir: a.dir,
        template,
        kernel,
        // A home given by --home or $LABCTL_HOME must be named again by `vm run`.
        home_arg: ctx
            .global
            .home
            .as_ref()
            .map(|_| ctx.home.root().to_path_buf()),
    };
    let p = new::create(&ctx.home, &request, ctx.sink())?;
    ctx.renderer.finish();
    if ctx.global.json {
        ctx.print_json(&p)?;
        return Ok(super::EXIT_OK);
    }
    let tc = if p.toolchain == "host" {
        String::new()
    } else {
        format!(", --toolchain {}", p.toolchain)
    };
    ctx.out(format!(
        "created {} ({} template for linux {}{tc}): {}",
        p.dir.display(),
        p.template,
        p.kernel,
        p.files.join(" ")
    ));
    if let Some(b) = &p.build_command {
        ctx.out(format!("build:  {b}"));
    }
    ctx.out(format!("run:    {}", p.run_command));
    ctx.out(format!("expect: a line with \"{}\"", p.expect));
    Ok(super::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn help_and_values_list_exactly_the_templates() {
        let cmd = super::super::Cli::command();
        let new = cmd.find_subcommand("new").expect("labctl new");
        let arg = new
            .get_arguments()
            .find(|a| a.get_id() == "template")
            .unwrap();
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_string())
            .collect();
        let names: Vec<String> = labctl::new::templates()
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        assert_eq!(values, names);
        for n in &names {
            assert!(
                super::AFTER_HELP.contains(&format!("\n  {n} ")),
                "--help lists {n}"
            );
        }
    }
}
