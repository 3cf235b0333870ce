//! Real-tree tests for `kconfig::configure` on linux 5.10.46: every profile gives a
//! .config in which every bpf.config symbol holds, the build's own `olddefconfig` is a
//! no-op on it, the source tree is left untouched, and a fragment with an unknown symbol
//! and one with an unmet dependency get the right reasons.
//!
//! The tree: 5.10.46 fetched from Debian's archive (`--source debian`) into the persistent
//! test home (`$LABCTL_TEST_HOME`, default ~/.cache/labctl-test), downloaded once and reused.

mod common;

use std::path::{Path, PathBuf};

use labctl::events::NullSink;
use labctl::kconfig::{self, ConfigPlan, DotConfig, KconfigError, Profile, Status};
use labctl::process::Cmd;
use labctl::source::{FetchOptions, SourceSpec};
use labctl::version::KernelVersion;
use labctl::Home;

fn test_home() -> Home {
    Home::new(common::persistent_test_home())
}

fn tree_5_10() -> labctl::source::SourceTree {
    let req: labctl::VersionReq = "5.10.46".parse().unwrap();
    let t = labctl::source::fetch(
        &test_home(),
        &req,
        &SourceSpec::Debian,
        &FetchOptions::default(),
        &NullSink,
    )
    .expect("fetch 5.10.46 from Debian");
    assert_eq!(t.version, KernelVersion::new(5, 10, 46));
    t
}

fn bpf_symbols() -> Vec<(String, String)> {
    let f = kconfig::embedded_fragment("bpf").unwrap();
    let (e, _) = f.entries(&KernelVersion::new(5, 10, 46)).unwrap();
    e.into_iter().map(|e| (e.symbol, e.value)).collect()
}

/// Every bpf.config symbol holds in the final .config and in the report.
fn assert_bpf_holds(report: &kconfig::ConfigReport) {
    let fin = DotConfig::parse(&std::fs::read_to_string(&report.config_path).unwrap());
    for (sym, want) in bpf_symbols() {
        assert_eq!(
            fin.get(&sym),
            want,
            "CONFIG_{sym} in {} ({})",
            report.config_path.display(),
            report.profile
        );
        let row = report
            .row(&sym)
            .unwrap_or_else(|| panic!("no report row for {sym}"));
        assert!(
            row.status.satisfied(),
            "{sym}: {:?} {}",
            row.status,
            row.reason
        );
    }
    assert!(report.core_ok());
    for core in kconfig::CORE {
        assert_ne!(fin.get(core), "n", "core CONFIG_{core}");
    }
}

/// The build engine copies the .config into its own O= folder and runs olddefconfig:
/// that must change nothing.
fn assert_olddefconfig_is_noop(tree: &Path, config: &Path) {
    let out = tempfile::tempdir().unwrap();
    std::fs::copy(config, out.path().join(".config")).unwrap();
    Cmd::new("make")
        .arg("-C")
        .arg(tree)
        .arg(format!("O={}", out.path().display()))
        .arg("olddefconfig")
        .run_checked(&NullSink)
        .unwrap();
    let before = DotConfig::parse(&std::fs::read_to_string(config).unwrap());
    let after = DotConfig::parse(&std::fs::read_to_string(out.path().join(".config")).unwrap());
    assert_eq!(
        before.hash(),
        after.hash(),
        "olddefconfig changed the stored .config"
    );
}

#[test]
fn lab_profile_is_small_and_every_bpf_symbol_holds() {
    let home = test_home();
    let tree = tree_5_10();
    let r = kconfig::configure(&home, &tree, &ConfigPlan::default(), &NullSink).unwrap();
    assert_bpf_holds(&r);
    assert_eq!(
        r.mismatches().count(),
        0,
        "{:#?}",
        r.mismatches().collect::<Vec<_>>()
    );
    // Small: the hand-made lab kernel had ~600 options, defconfig ~1400.
    assert!(
        (400..900).contains(&r.options_set),
        "lab profile has {} options",
        r.options_set
    );
    // Stored where the contract says, with the report beside it, named by the hash.
    assert!(r
        .config_path
        .ends_with(format!("configs/5.10.46-{}/.config", &r.hash[..8])));
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(r.config_path.with_file_name("report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["hash"], r.hash.as_str());
    assert_eq!(
        DotConfig::parse(&std::fs::read_to_string(&r.config_path).unwrap()).hash(),
        r.hash
    );
    // The version-guarded DWARF choice line is not applied to 5.10.
    let btf = r.fragments.iter().find(|f| f.name == "btf.config").unwrap();
    assert_eq!(btf.skipped_for_version.len(), 1);
    // Not user-settable options are reported as such.
    assert_eq!(r.row("BPF_EVENTS").unwrap().status, Status::OkNotSettable);
    assert_olddefconfig_is_noop(&tree.path, &r.config_path);
    // The source tree was not written.
    assert!(
        !tree.path.join(".config").exists(),
        "configure wrote into the source tree"
    );
    // Same input, same hash.
    let again = kconfig::configure(&home, &tree, &ConfigPlan::default(), &NullSink).unwrap();
    assert_eq!(again.hash, r.hash);
}

#[test]
fn defconfig_profile_every_bpf_symbol_holds() {
    let home = test_home();
    let tree = tree_5_10();
    let plan = ConfigPlan {
        profile: Profile::Defconfig,
        ..Default::default()
    };
    let r = kconfig::configure(&home, &tree, &plan, &NullSink).unwrap();
    assert_bpf_holds(&r);
    assert!(r.base.contains("kvm_guest.config"), "{}", r.base);
    let lab = kconfig::configure(&home, &tree, &ConfigPlan::default(), &NullSink).unwrap();
    assert!(
        r.options_set > lab.options_set * 2,
        "defconfig {} vs lab {}",
        r.options_set,
        lab.options_set
    );
    // kvm_guest.config landed (PARAVIRT is in it, not in our fragments).
    let fin = DotConfig::parse(&std::fs::read_to_string(&r.config_path).unwrap());
    assert_eq!(fin.get("KVM_GUEST"), "y");
    assert_olddefconfig_is_noop(&tree.path, &r.config_path);
}

/// A real Debian kernel config (from the linux-image-*-cloud-amd64 package, downloaded once
/// into the test home with apt-get), with Debian's certificate paths added as its
/// packaging tree sets them.
fn debian_config(home: &Home) -> PathBuf {
    let dir = home.root().join("fixtures/debian-config");
    let done = dir.join("config");
    if done.is_file() {
        return done;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let deps = Cmd::new("apt-cache")
        .args(["depends", "--important", "linux-image-cloud-amd64"])
        .run_checked(&NullSink)
        .unwrap()
        .stdout_str();
    let pkg = deps
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .map(|p| p.trim().to_string())
        .expect("linux-image-cloud-amd64 depends on a versioned image package");
    let dl = tempfile::tempdir_in(&dir).unwrap();
    Cmd::new("apt-get")
        .args(["download", &pkg])
        .cwd(dl.path())
        .run_checked(&NullSink)
        .unwrap();
    let deb = std::fs::read_dir(dl.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .unwrap();
    let x = tempfile::tempdir_in(&dir).unwrap();
    Cmd::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(x.path())
        .run_checked(&NullSink)
        .unwrap();
    let cfg = std::fs::read_dir(x.path().join("boot"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("config-")
        })
        .expect("the image package ships /boot/config-*");
    let mut text = std::fs::read_to_string(cfg).unwrap();
    text.push_str("CONFIG_SYSTEM_TRUSTED_KEYS=\"debian/certs/debian-uefi-certs.pem\"\n");
    text.push_str("CONFIG_SYSTEM_REVOCATION_KEYS=\"debian/certs/revoked-certs.pem\"\n");
    labctl::home::write_atomic(&done, text.as_bytes()).unwrap();
    done
}

#[test]
fn distro_profile_blanks_trusted_keys_and_every_bpf_symbol_holds() {
    let home = test_home();
    let tree = tree_5_10();
    let base = debian_config(&home);
    for profile in [
        Profile::Distro(Some(base.clone())),
        Profile::File(base.clone()),
    ] {
        let plan = ConfigPlan {
            profile,
            ..Default::default()
        };
        let r = kconfig::configure(&home, &tree, &plan, &NullSink).unwrap();
        assert_bpf_holds(&r);
        let fixed: Vec<&str> = r.base_fixes.iter().map(|f| f.symbol.as_str()).collect();
        assert!(
            fixed.contains(&"SYSTEM_TRUSTED_KEYS") && fixed.contains(&"SYSTEM_REVOCATION_KEYS"),
            "{fixed:?}"
        );
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("debian/certs/debian-uefi-certs.pem")),
            "{:?}",
            r.warnings
        );
        let fin = DotConfig::parse(&std::fs::read_to_string(&r.config_path).unwrap());
        assert_eq!(fin.get("SYSTEM_TRUSTED_KEYS"), "\"\"");
        assert!(!std::fs::read_to_string(&r.config_path)
            .unwrap()
            .contains("debian/certs"));
    }
}

#[test]
fn distro_without_a_config_for_the_running_kernel_says_what_to_do() {
    let home = test_home();
    let tree = tree_5_10();
    let plan = ConfigPlan {
        profile: Profile::Distro(Some(PathBuf::from("/nonexistent/config-x"))),
        ..Default::default()
    };
    let e = kconfig::configure(&home, &tree, &plan, &NullSink).unwrap_err();
    assert!(matches!(e, KconfigError::BaseRead { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/config-x"));
}

#[test]
fn unknown_symbol_and_unmet_dependency_get_their_reasons() {
    let home = test_home();
    let tree = tree_5_10();
    let dir = tempfile::tempdir().unwrap();
    let unknown = dir.path().join("unknown.config");
    std::fs::write(&unknown, "CONFIG_LABCTL_NO_SUCH_OPTION=y # made up\n").unwrap();
    let unmet = dir.path().join("unmet.config");
    // The seed notes' trap: TEST_BPF=m without RUNTIME_TESTING_MENU.
    std::fs::write(
        &unmet,
        "# CONFIG_RUNTIME_TESTING_MENU is not set\nCONFIG_TEST_BPF=m\n",
    )
    .unwrap();
    let plan = ConfigPlan {
        fragments: vec![unknown, unmet.clone()],
        ..Default::default()
    };
    let r = kconfig::configure(&home, &tree, &plan, &NullSink).unwrap();
    let u = r.row("LABCTL_NO_SUCH_OPTION").unwrap();
    assert_eq!(u.status, Status::Unknown);
    assert!(u.reason.contains("not defined"), "{}", u.reason);
    let t = r.row("TEST_BPF").unwrap();
    assert_eq!((t.requested.as_str(), t.final_value.as_str()), ("m", "n"));
    assert_eq!(t.status, Status::UnmetDependency);
    assert_eq!(t.blockers, ["RUNTIME_TESTING_MENU=n"]);
    assert!(t.reason.contains("RUNTIME_TESTING_MENU=n"), "{}", t.reason);
    // The fragment overrode bpf.config's RUNTIME_TESTING_MENU=y: reported as merge_config.sh does.
    assert!(
        r.overrides
            .iter()
            .any(|o| o.symbol == "RUNTIME_TESTING_MENU" && o.new_source.ends_with("unmet.config")),
        "{:?}",
        r.overrides
    );
    assert!(r.ok(), "non-core mismatches are warnings");

    // With --strict the same mismatches are an error that still carries the report.
    let strict = ConfigPlan {
        strict: true,
        ..plan
    };
    match kconfig::configure(&home, &tree, &strict, &NullSink) {
        Err(KconfigError::Unsatisfied { report }) => assert_eq!(report.failures().count(), 2),
        other => panic!("expected Unsatisfied, got {other:?}"),
    }
}

#[test]
fn a_core_option_that_cannot_land_is_an_error() {
    let home = test_home();
    let tree = tree_5_10();
    // KPROBES depends on MODULES.
    let plan = ConfigPlan {
        sets: vec![("MODULES".into(), "n".into())],
        ..Default::default()
    };
    match kconfig::configure(&home, &tree, &plan, &NullSink) {
        Err(KconfigError::Unsatisfied { report }) => {
            assert!(
                report.core_failed.contains(&"KPROBES".to_string()),
                "{:?}",
                report.core_failed
            );
            let k = report.row("KPROBES").unwrap();
            assert_eq!(k.status, Status::UnmetDependency);
            assert!(
                k.blockers.contains(&"MODULES=n".to_string()),
                "{:?}",
                k.blockers
            );
            assert!(
                report.config_path.is_file(),
                "the .config is kept for inspection"
            );
        }
        other => panic!("expected Unsatisfied, got {other:?}"),
    }
}

#[test]
fn kconfig_reader_reads_the_whole_5_10_tree() {
    use labctl::kconfig::lang::{Env, KconfigDb, Kind};
    let tree = tree_5_10();
    let db = KconfigDb::load(&tree.path, &Env::default()).unwrap();
    assert!(
        db.missing_files.is_empty(),
        "unresolved source lines: {:?}",
        db.missing_files
    );
    assert!(
        db.files_read > 1000 && db.symbols.len() > 10000,
        "{} files, {} symbols",
        db.files_read,
        db.symbols.len()
    );
    let t = db.get("TEST_BPF").unwrap();
    assert_eq!(t.kind, Kind::Tristate);
    let d = &t.defs[0];
    assert_eq!(d.file, "lib/Kconfig.debug");
    assert!(
        d.inherited
            .iter()
            .any(|e| e.to_string() == "RUNTIME_TESTING_MENU"),
        "{:?}",
        d.inherited
    );
    assert!(
        d.depends.iter().any(|e| e.to_string() == "m && NET"),
        "{:?}",
        d.depends
    );
    assert!(!db.get("BPF_EVENTS").unwrap().user_settable());
    assert!(db.selected_by["KALLSYMS"].iter().any(|s| s.by == "KPROBES"));
    // x86's own Kconfig was found through source "arch/$(SRCARCH)/Kconfig".
    assert!(db.selected_by["HAVE_EBPF_JIT"]
        .iter()
        .any(|s| s.by == "X86"));
}

/// 6.12.95 (bookworm-backports) in the persistent test home: the series where DEBUG_INFO
/// became a DWARF-version choice.
fn tree_6_12() -> labctl::source::SourceTree {
    let req: labctl::VersionReq = "6.12.95".parse().unwrap();
    labctl::source::fetch(
        &test_home(),
        &req,
        &SourceSpec::Debian,
        &FetchOptions::default(),
        &NullSink,
    )
    .expect("fetch 6.12.95 from Debian")
}

#[test]
fn on_6_12_the_dwarf_choice_line_applies_and_its_absence_is_explained() {
    let home = test_home();
    let tree = tree_6_12();
    let r = kconfig::configure(&home, &tree, &ConfigPlan::default(), &NullSink).unwrap();
    assert_bpf_holds(&r);
    assert_eq!(
        r.mismatches().count(),
        0,
        "{:#?}",
        r.mismatches().collect::<Vec<_>>()
    );
    assert!(
        r.fragments.iter().all(|f| f.skipped_for_version.is_empty()),
        "every guarded line applies to 6.12"
    );
    assert_eq!(
        r.row("DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT").unwrap().status,
        Status::Ok
    );
    let di = r.row("DEBUG_INFO").unwrap();
    assert_eq!(di.status, Status::OkNotSettable, "{}", di.reason);
    assert!(
        di.reason.contains("DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=y"),
        "{}",
        di.reason
    );
    assert_eq!(
        r.row("BLOCK").unwrap().final_value,
        "y",
        "samples.config's [>=5.15] BLOCK line"
    );

    // The 5.10-style list (DEBUG_INFO=y, no DWARF choice) silently loses BTF on 6.12: labctl
    // says why and fails, because DEBUG_INFO_BTF is a core option.
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old-btf.config");
    std::fs::write(
        &old,
        "CONFIG_DEBUG_KERNEL=y\nCONFIG_DEBUG_INFO=y\nCONFIG_DEBUG_INFO_BTF=y\n",
    )
    .unwrap();
    // (tinyconfig's base already chose DEBUG_INFO_NONE in the DWARF choice.)
    let plan = ConfigPlan {
        fragments: vec![embedded_path("bpf"), embedded_path("tracing"), old],
        no_default_fragments: true,
        ..Default::default()
    };
    match kconfig::configure(&home, &tree, &plan, &NullSink) {
        Err(KconfigError::Unsatisfied { report }) => {
            assert_eq!(report.core_failed, ["DEBUG_INFO_BTF"]);
            let di = report.row("DEBUG_INFO").unwrap();
            assert_eq!(di.status, Status::NotSettable, "{}", di.reason);
            assert!(
                di.blockers
                    .iter()
                    .any(|b| b == "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=n"),
                "{:?}",
                di.blockers
            );
            let btf = report.row("DEBUG_INFO_BTF").unwrap();
            assert_eq!(btf.status, Status::UnmetDependency);
            assert!(
                btf.blockers.iter().any(|b| b == "DEBUG_INFO=n"),
                "{:?}",
                btf.blockers
            );
        }
        other => panic!("expected Unsatisfied, got {other:?}"),
    }
}

/// A built-in fragment by name, for `ConfigPlan::fragments`.
fn embedded_path(name: &str) -> PathBuf {
    PathBuf::from(name)
}
