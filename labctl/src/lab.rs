//! The loop for one kernel as one call — fetch → config → fixes + build — so that
//! `kernel build`, `vm test` (which builds when no build exists) and `matrix` run the
//! same pipeline with the same stages and the same cache keys.

use crate::build::{self, BuildOptions, BuildOutput, BuildRequest};
use crate::error::Result;
use crate::events::EventSink;
use crate::home::Home;
use crate::kconfig::{self, ConfigPlan, ConfigReport};
use crate::source::{self, FetchOptions, SourceSpec, SourceTree};
use crate::version::VersionReq;

/// Everything one kernel's build needs.
#[derive(Debug, Clone)]
pub struct LabBuild {
    pub version: VersionReq,
    pub spec: SourceSpec,
    pub fetch: FetchOptions,
    pub plan: ConfigPlan,
    /// How to build (the same type the build request embeds).
    pub options: BuildOptions,
}

/// What the pipeline produced.
#[derive(Debug, Clone)]
pub struct Built {
    pub tree: SourceTree,
    pub config: ConfigReport,
    pub output: BuildOutput,
}

/// Fetch (or reuse) the tree, write and verify the .config, then build (a no-op when a
/// build with the same version, config hash and toolchain already finished).
pub fn build(home: &Home, req: &LabBuild, sink: &dyn EventSink) -> Result<Built> {
    let (tree, config, b) = prepare(home, req, sink)?;
    let output = build::build(home, &b, sink)?;
    Ok(Built {
        tree,
        config,
        output,
    })
}

/// [`build`], then distribution packages of that build (`kernel package`): see
/// [`build::package`].
pub fn package(
    home: &Home,
    req: &LabBuild,
    format: build::PackageFormat,
    dest: Option<&std::path::Path>,
    sink: &dyn EventSink,
) -> Result<build::Packages> {
    let (_, _, b) = prepare(home, req, sink)?;
    Ok(build::package(home, &b, format, dest, sink)?)
}

/// Fetch and configure: the build request for one kernel.
fn prepare(
    home: &Home,
    req: &LabBuild,
    sink: &dyn EventSink,
) -> Result<(SourceTree, ConfigReport, BuildRequest)> {
    // Opened first: a toolchain that cannot be prepared fails before any download.
    let userland = crate::userland::Userland::open(home, &req.options.toolchain, sink)?;
    // The engines open their own stages (fetch, config, ...): none is opened here.
    let tree = source::fetch(home, &req.version, &req.spec, &req.fetch, sink)?;
    let config = kconfig::configure_in(home, &tree, &req.plan, &userland, sink)
        .map_err(explain_config_error)?;
    let mut b = BuildRequest::new(tree.clone(), config.clone());
    b.profile = profile_name(&req.plan);
    b.fragments = req.plan.fragments.clone();
    b.options = req.options.clone();
    b.userland = userland;
    Ok((tree, config, b))
}

/// A config whose requested options did not land (e.g. BTF with a too-old pahole from
/// `--toolchain debian:bullseye`) names the catalogue entries its reasons match.
fn explain_config_error(e: kconfig::KconfigError) -> crate::Error {
    if !matches!(e, kconfig::KconfigError::Unsatisfied { .. }) {
        return e.into();
    }
    let known = build::Catalogue::builtin().diagnose_log(&e.to_string());
    if known.is_empty() {
        e.into()
    } else {
        crate::Error::KconfigExplained { source: e, known }
    }
}

fn profile_name(plan: &ConfigPlan) -> String {
    plan.profile.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, Stage, VecSink};

    /// A local 5.10.46 "tree" whose make does nothing and whose Kconfig knows one symbol:
    /// fetch takes it as it is, config runs (olddefconfig) and fails verification.
    #[test]
    fn fetch_and_config_are_each_opened_once() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("linux-5.10.46");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(
            tree.join("Makefile"),
            "VERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 46\nEXTRAVERSION =\n\nolddefconfig:\n\t@true\n",
        )
        .unwrap();
        std::fs::write(tree.join("Kconfig"), "config BPF\n\tbool \"BPF\"\n").unwrap();
        let base = tmp.path().join("base.config");
        std::fs::write(&base, "CONFIG_BPF=y\n").unwrap();
        let home = Home::new(tmp.path().join("home"));
        let req = LabBuild {
            version: "5.10.46".parse().unwrap(),
            spec: SourceSpec::Path(tree.clone()),
            fetch: FetchOptions::default(),
            plan: ConfigPlan {
                profile: kconfig::Profile::File(base),
                ..ConfigPlan::default()
            },
            options: build::BuildOptions::default(),
        };
        let sink = VecSink::default();
        let r = build(&home, &req, &sink);
        assert!(
            r.is_err(),
            "the lab's core options cannot land in this tree"
        );
        let started: Vec<Stage> = sink
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::StageStarted { stage, .. } => Some(stage),
                _ => None,
            })
            .collect();
        assert_eq!(started, [Stage::Fetch, Stage::Config]);
    }
}
