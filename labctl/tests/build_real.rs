//! The acceptance build on a real kernel: 5.10.46 with the lab profile on this host
//! (GCC 12, pahole 1.24) needs the catalogue's libsubcmd and ENUM64 fixes; with them
//! it builds a vmlinux with BTF, modules, headers and samples/bpf. Without them it fails
//! and names the entry. Uses the persistent test home (`LABCTL_TEST_HOME`, default
//! `~/.cache/labctl-test`) so the cold build (minutes) happens once per machine and
//! later runs are no-ops.
//!
//! The tree comes from `source::fetch` (Debian archive) and the config from
//! `kconfig::configure` (lab profile).

mod common;

use std::time::{Duration, Instant};

use labctl::build::{self, BuildRequest, BuildResult};
use labctl::events::NullSink;
use labctl::kconfig::ConfigReport;
use labctl::source::SourceTree;
use labctl::version::{KernelVersion, VersionReq};
use labctl::Home;

fn test_home() -> Home {
    Home::new(common::persistent_test_home())
}

fn tree_and_config(home: &Home, v: KernelVersion) -> (SourceTree, ConfigReport) {
    let tree = labctl::source::fetch(
        home,
        &VersionReq::Exact(v),
        &labctl::source::SourceSpec::Debian,
        &Default::default(),
        &NullSink,
    )
    .expect("fetch 5.10.46 from Debian's archive");
    let plan = labctl::kconfig::ConfigPlan {
        profile: labctl::kconfig::Profile::Lab,
        fragments: vec![],
        sets: vec![],
        strict: false,
        no_default_fragments: false,
        arch: labctl::arch::Arch::host(),
    };
    let config =
        labctl::kconfig::configure(home, &tree, &plan, &NullSink).expect("lab config for 5.10.46");
    (tree, config)
}

fn has_btf_section(vmlinux: &std::path::Path) -> bool {
    use object::{Object, ObjectSection};
    let data = std::fs::read(vmlinux).unwrap();
    let f = object::File::parse(&*data).unwrap();
    f.sections()
        .any(|s| s.name() == Ok(".BTF") && s.size() > 1000)
}

#[test]
fn real_5_10_46_builds_with_fixes_fails_without_and_rebuilds_as_a_noop() {
    let home = test_home();
    let v = KernelVersion::new(5, 10, 46);
    let (tree, config) = tree_and_config(&home, v);

    // --no-fixes: GCC 12 stops it early; the error names the entry.
    let mut req = BuildRequest::new(tree.clone(), config.clone());
    req.options.fixes = false;
    let err = build::build(&home, &req, &NullSink)
        .expect_err("5.10.46 without fixes must fail on GCC 12");
    let msg = err.to_string();
    assert!(msg.contains("gcc12-libsubcmd-use-after-free"), "{msg}");
    assert!(msg.contains("--no-fixes"), "{msg}");

    // With fixes: builds (cold: minutes; later: a no-op from the persistent home).
    let req = BuildRequest::new(tree, config);
    let out = build::build(&home, &req, &NullSink)
        .unwrap_or_else(|e| panic!("5.10.46 with fixes must build:\n{e}"));
    let meta = build::BuildJson::read(&out.dir).unwrap();
    assert_eq!(meta.result, BuildResult::Success);
    let ids: Vec<&str> = meta.fixes_applied.iter().map(|(i, _)| i.as_str()).collect();
    assert!(
        ids.contains(&"gcc12-libsubcmd-use-after-free") && ids.contains(&"pahole-enum64"),
        "{ids:?}"
    );
    assert!(has_btf_section(&out.vmlinux), "vmlinux lacks .BTF");
    if labctl::process::which("bpftool").is_some() {
        let o = labctl::process::Cmd::new("bpftool")
            .args(["btf", "dump", "file"])
            .arg(&out.vmlinux)
            .run(&NullSink)
            .unwrap();
        assert!(
            o.success() && o.stdout.len() > 100_000,
            "bpftool btf dump failed: {}",
            o.stderr_str()
        );
    }
    let samples: Vec<String> = std::fs::read_dir(&out.samples)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let objs = samples.iter().filter(|n| n.ends_with("_kern.o")).count();
    let progs = samples.iter().filter(|n| !n.contains('.')).count();
    assert!(
        objs >= 20 && progs >= 20,
        "samples/bpf: {objs} objects, {progs} programs: {samples:?}"
    );
    assert!(out.headers.join("include/linux/bpf.h").is_file());
    assert_eq!(meta.samples_ok, Some(true));

    // Same key again: a no-op in well under 15 s.
    let t = Instant::now();
    let again = build::build(&home, &req, &NullSink).unwrap();
    assert!(again.reused);
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "no-op took {:?}",
        t.elapsed()
    );
    assert_eq!(
        build::find_build(&home, &VersionReq::Exact(v)).unwrap().dir,
        out.dir
    );
}
