//! The build pipeline on a fake kernel tree the test writes: a tiny Makefile that
//! answers kbuild's targets (olddefconfig, bzImage, modules, modules_install,
//! headers_install, M=samples/bpf, kernelrelease) with kbuild-like output, and fails
//! like 5.10.46 on GCC 12 unless the catalogue's libsubcmd fix was applied to the
//! build's private tree. Covers fixes, artifacts, build.json, reproduce.sh, no-op
//! rebuilds, failure diagnosis, soft samples failures, the gdb scripts step (and making
//! them on demand) and find_build. Runs in seconds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use labctl::build::{self, BuildRequest, BuildResult, CcWrapper, Toolchain};
use labctl::events::{Event, Stage, VecSink};
use labctl::kconfig::ConfigReport;
use labctl::source::SourceTree;
use labctl::version::{KernelVersion, VersionReq};
use labctl::Home;

const MAKEFILE: &str = r##"VERSION = 5
PATCHLEVEL = 10
SUBLEVEL = 46
O ?= .
ifdef M
all:
	@echo "  CLANG-bpf  $(M)/sockex1_kern.o"
	@if grep -q CONFIG_FAKE_FAIL_SAMPLES=y $(O)/.config; then echo "samples/bpf/sockex1_kern.c:3:10: fatal error: 'gnu/stubs-32.h' file not found"; exit 2; fi
	@mkdir -p $(O)/$(M)
	@printf 'bpf' > $(O)/$(M)/sockex1_kern.o
	@printf '#!/bin/sh\necho sockex1\n' > $(O)/$(M)/sockex1 && chmod +x $(O)/$(M)/sockex1
	@echo "VMLINUX_BTF=$(VMLINUX_BTF)" > $(O)/$(M)/vars.txt
else
all: bzImage
endif

olddefconfig:
	@test -f $(O)/.config
	@echo "# configuration written to .config"

bzImage:
	@for i in 1 2 3; do echo "  CC      kernel/f$$i.o"; done
	@if grep -q 'ret = realloc(ptr, 1);' tools/lib/subcmd/subcmd-util.h; then \
	  echo "In function 'xrealloc',"; \
	  echo "subcmd-util.h:56:23: error: pointer may be used after 'realloc' [-Werror=use-after-free]"; \
	  echo "cc1: all warnings being treated as errors"; \
	  echo "make[4]: *** [Makefile.build:97: help.o] Error 1"; exit 2; fi
	@for i in 4 5 6; do echo "  CC      kernel/f$$i.o"; done
	@echo "  AS      arch/x86/entry/entry_64.o"
	@echo "  LD      vmlinux.o"
	@echo "  BTF     .btf.vmlinux.bin.o"
	@echo "  BTFIDS  vmlinux"
	@echo "PAHOLE=$(PAHOLE)" > $(O)/pahole.txt
	@mkdir -p $(O)/arch/x86/boot
	@echo kernel > $(O)/arch/x86/boot/bzImage
	@echo vmlinux > $(O)/vmlinux
	@echo "ffffffff81000000 T _text" > $(O)/System.map
	@echo built >> $(O)/count.txt

modules:
	@echo "  CC [M]  lib/test_bpf.o"

modules_install:
	@mkdir -p $(INSTALL_MOD_PATH)/lib/modules/5.10.46-lab/kernel/lib
	@echo ko > $(INSTALL_MOD_PATH)/lib/modules/5.10.46-lab/kernel/lib/test_bpf.ko

headers_install:
	@mkdir -p $(O)/usr/include/linux
	@echo "/* uapi */" > $(O)/usr/include/linux/bpf.h

kernelrelease:
	@echo 5.10.46-lab
"##;

const SUBCMD: &str = "static inline void *xrealloc(void *ptr, size_t size)\n{\n\tvoid *ret = realloc(ptr, size);\n\tif (!ret && !size)\n\t\tret = realloc(ptr, 1);\n\tif (!ret) {\n\t\tret = realloc(ptr, size);\n\t\tif (!ret && !size)\n\t\t\tret = realloc(ptr, 1);\n\t\tif (!ret)\n\t\t\tdie(\"Out of memory, realloc failed\");\n\t}\n\treturn ret;\n}\n";

const CONFIG: &str = "CONFIG_64BIT=y\nCONFIG_MODULES=y\nCONFIG_BPF_SYSCALL=y\nCONFIG_DEBUG_INFO=y\nCONFIG_DEBUG_INFO_BTF=y\n";

struct Fixture {
    _tmp: tempfile::TempDir,
    home: Home,
    tree: PathBuf,
    config: PathBuf,
}

fn fixture(config: &str) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("linux-5.10.46");
    std::fs::create_dir_all(tree.join("tools/lib/subcmd")).unwrap();
    std::fs::create_dir_all(tree.join("samples/bpf")).unwrap();
    std::fs::write(tree.join("Makefile"), MAKEFILE).unwrap();
    std::fs::write(tree.join("tools/lib/subcmd/subcmd-util.h"), SUBCMD).unwrap();
    let cfg = tmp.path().join("lab.config");
    std::fs::write(&cfg, config).unwrap();
    Fixture {
        home: Home::new(tmp.path().join("home")),
        tree,
        config: cfg,
        _tmp: tmp,
    }
}

fn gcc12() -> Toolchain {
    Toolchain {
        gcc: Some("12.2.0".into()),
        binutils: Some("2.40".into()),
        pahole: Some("1.24".into()),
        clang: Some("14.0.6".into()),
        llc_bpf: Some(true),
        glibc: Some("2.36".into()),
        make: Some("4.3".into()),
        ..Default::default()
    }
}

fn request(f: &Fixture, hash: &str) -> BuildRequest {
    let tree = SourceTree {
        version: KernelVersion::new(5, 10, 46),
        path: f.tree.clone(),
        sha256: "0".repeat(64),
        source: "test".into(),
        url: "file:///fake".into(),
        verified: "test fixture".into(),
        reused: true,
    };
    let mut config = ConfigReport::for_existing(&f.config, tree.version, &f.tree).unwrap();
    config.hash = hash.into();
    let mut r = BuildRequest::new(tree, config);
    r.options.jobs = 2;
    r.options.cc_wrapper = CcWrapper::None;
    r.options.preflight = false;
    r.toolchain = Some(gcc12());
    r.options.step_timeout = Some(Duration::from_secs(60));
    r
}

fn stages(sink: &VecSink) -> Vec<String> {
    sink.events()
        .into_iter()
        .filter_map(|e| {
            if let Event::StageStarted { stage, .. } = e {
                Some(stage.name().to_string())
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn builds_with_fixes_into_a_keyed_folder_and_then_is_a_noop() {
    let f = fixture(CONFIG);
    let sink = VecSink::default();
    let out = build::build(&f.home, &request(&f, "abcdef0123456789"), &sink)
        .expect("fake build succeeds with fixes");

    // Folder keyed by version, config hash and toolchain.
    let name = out.dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("5.10.46-abcdef01-") && name.len() == "5.10.46-abcdef01-".len() + 8,
        "{name}"
    );
    assert_eq!(out.dir.parent().unwrap(), f.home.builds());
    assert!(!out.reused);
    assert_eq!(out.release, "5.10.46-lab");
    for p in [
        &out.image,
        &out.vmlinux,
        &out.config,
        &out.system_map,
        &out.build_json,
        &out.log,
        &out.reproduce,
    ] {
        assert!(p.is_file(), "{} missing", p.display());
    }
    assert!(out
        .modules
        .join("lib/modules/5.10.46-lab/kernel/lib/test_bpf.ko")
        .is_file());
    assert!(out.headers.join("include/linux/bpf.h").is_file());
    assert!(out.samples.join("sockex1").is_file() && out.samples.join("sockex1_kern.o").is_file());

    // The fix edited the build's private tree, never the shared one.
    assert_eq!(
        std::fs::read_to_string(f.tree.join("tools/lib/subcmd/subcmd-util.h")).unwrap(),
        SUBCMD
    );
    let private =
        std::fs::read_to_string(out.dir.join("src/tools/lib/subcmd/subcmd-util.h")).unwrap();
    assert!(
        private.contains("labctl fix gcc12-libsubcmd-use-after-free"),
        "{private}"
    );
    // ENUM64: make got a PAHOLE wrapper that adds the flag for -J.
    let pahole = std::fs::read_to_string(out.dir.join("obj/pahole.txt")).unwrap();
    let wrapper = pahole.trim().strip_prefix("PAHOLE=").unwrap();
    assert!(std::fs::read_to_string(wrapper)
        .unwrap()
        .contains("--skip_encoding_btf_enum64"));

    // build.json: success, fixes, stages, objects.
    let meta = build::BuildJson::read(&out.dir).unwrap();
    assert_eq!(meta.result, BuildResult::Success);
    let ids: Vec<&str> = meta
        .fixes_applied
        .iter()
        .map(|(i, _)| i.as_str())
        .filter(|i| !host_dependent(i))
        .collect();
    assert_eq!(ids, ["gcc12-libsubcmd-use-after-free", "pahole-enum64"]);
    assert!(meta.plan.notes.contains(&"samples-memlock".to_string()));
    assert_eq!(meta.objects, 7, "6 CC + 1 AS lines");
    assert_eq!(meta.samples_ok, Some(true));
    let st: Vec<&str> = meta.stages.iter().map(|s| s.stage.name()).collect();
    for s in [
        "fixes", "config", "compile", "link", "BTF", "modules", "headers", "samples",
    ] {
        assert!(st.contains(&s), "stage {s} not recorded: {st:?}");
    }
    assert_eq!(
        stages(&sink),
        ["fixes", "config", "compile", "link", "BTF", "modules", "modules", "headers", "samples"]
    );
    let progress: Vec<(u64, Option<u64>)> = sink
        .events()
        .into_iter()
        .filter_map(|e| {
            if let Event::Progress {
                stage, done, total, ..
            } = e
            {
                (stage == Stage::Compile).then_some((done, total))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(progress.last().unwrap().0, 7);
    // VMLINUX_BTF is a 5.11+ remedy: not passed for 5.10.
    let vars = std::fs::read_to_string(out.dir.join("obj/samples/bpf/vars.txt")).unwrap();
    assert_eq!(vars.trim(), "VMLINUX_BTF=");

    // reproduce.sh repeats it by hand.
    let repro = std::fs::read_to_string(&out.reproduce).unwrap();
    assert!(
        repro.starts_with("#!/bin/sh")
            && repro.contains("cp -al")
            && repro.contains("bzImage")
            && repro.contains("M=samples/bpf")
            && repro.contains("fixes/gcc12-libsubcmd-use-after-free"),
        "{repro}"
    );

    // Same key again: nothing runs.
    let t = Instant::now();
    let sink2 = VecSink::default();
    let again = build::build(&f.home, &request(&f, "abcdef0123456789"), &sink2).unwrap();
    assert!(again.reused && again.dir == out.dir);
    assert!(t.elapsed() < Duration::from_secs(15));
    assert!(stages(&sink2).is_empty(), "{:?}", stages(&sink2));
    assert_eq!(
        std::fs::read_to_string(out.dir.join("obj/count.txt")).unwrap(),
        "built\n"
    );

    // The next compile bar uses this build's object count.
    let stats = std::fs::read_to_string(f.home.builds().join("objects.json")).unwrap();
    assert!(stats.contains("\"5.10\"") && stats.contains("7"), "{stats}");

    // find_build / local_builds.
    let found = build::find_build(&f.home, &VersionReq::Series(5, 10)).unwrap();
    assert_eq!(found.dir, out.dir);
    assert!(
        build::find_build(&f.home, &VersionReq::Exact(KernelVersion::new(5, 10, 47))).is_none()
    );
    assert_eq!(build::local_builds(&f.home).len(), 1);

    // reproduce.sh really repeats the build (here: every make step runs again).
    let o = std::process::Command::new("sh")
        .arg(&out.reproduce)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "reproduce.sh failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out.dir.join("obj/count.txt")).unwrap(),
        "built\nbuilt\n"
    );
    assert_eq!(
        std::fs::read_to_string(f.tree.join("tools/lib/subcmd/subcmd-util.h")).unwrap(),
        SUBCMD,
        "reproduce.sh wrote through to the shared tree"
    );

    // A changed config is a new folder.
    let other = build::build(
        &f.home,
        &request(&f, "1234567890abcdef"),
        &VecSink::default(),
    )
    .unwrap();
    assert_ne!(other.dir, out.dir);
    assert!(!other.reused);
}

#[test]
fn no_fixes_fails_and_names_the_catalogue_entry() {
    let f = fixture(CONFIG);
    let mut req = request(&f, "abcdef0123456789");
    req.options.fixes = false;
    let err = build::build(&f.home, &req, &VecSink::default()).unwrap_err();
    let report = err.report().expect("a make failure carries a report");
    assert_eq!(report.step, "bzImage");
    assert_eq!(report.first_error.as_deref(), Some("subcmd-util.h:56:23: error: pointer may be used after 'realloc' [-Werror=use-after-free]"));
    assert_eq!(report.diagnosis.len(), 1);
    assert_eq!(report.diagnosis[0].id, "gcc12-libsubcmd-use-after-free");
    assert!(report.log.is_file());
    assert!(report.tail.iter().any(|l| l.contains("Error 1")));
    let msg = err.to_string();
    for want in [
        "gcc12-libsubcmd-use-after-free",
        "--no-fixes",
        "full log:",
        "first error:",
        "docs/troubleshooting.md#gcc12-libsubcmd-use-after-free",
    ] {
        assert!(msg.contains(want), "missing {want:?} in:\n{msg}");
    }
    // The folder is marked failed, never complete; find_build ignores it.
    let dir = f
        .home
        .builds()
        .read_dir()
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    let meta = build::BuildJson::read(&dir).unwrap();
    assert_eq!(meta.result, BuildResult::Failed);
    assert_eq!(meta.diagnosis[0].id, "gcc12-libsubcmd-use-after-free");
    assert!(build::find_build(&f.home, &VersionReq::Series(5, 10)).is_none());
    // No fixes: a different key from the fixed build.
    let ok = build::build(
        &f.home,
        &request(&f, "abcdef0123456789"),
        &VecSink::default(),
    )
    .unwrap();
    assert_ne!(ok.dir, dir);
}

/// Entries whose predicates are paths on this host (`host_has` / `host_lacks`, e.g. the
/// asm/ headers a cross compiler's host lacks): whether they apply depends on the
/// machine, not on the version and toolchain these tests pin.
fn host_dependent(id: &str) -> bool {
    let f = labctl::build::Catalogue::builtin()
        .get(id)
        .unwrap_or_else(|| panic!("{id} is not a catalogue entry"));
    !f.when.host_has.is_empty() || !f.when.host_lacks.is_empty()
}

#[test]
fn an_older_toolchain_does_not_get_the_gcc12_fix() {
    let f = fixture(CONFIG);
    let mut req = request(&f, "abcdef0123456789");
    req.toolchain = Some(Toolchain {
        gcc: Some("11.3.0".into()),
        pahole: Some("1.22".into()),
        ..gcc12()
    });
    // GCC 11 would not fail in reality; the fake Makefile still greps the file, so
    // this proves the plan is empty *and* the failure is the tree's, not labctl's.
    let err = build::build(&f.home, &req, &VecSink::default()).unwrap_err();
    let r = err.report().unwrap();
    assert!(
        r.applied.iter().all(|i| host_dependent(i)),
        "{:?}",
        r.applied
    );
    assert!(
        err.to_string().contains("did not match this build"),
        "{err}"
    );
}

#[test]
fn a_samples_failure_is_reported_but_keeps_the_kernel() {
    let f = fixture(&format!("{CONFIG}CONFIG_FAKE_FAIL_SAMPLES=y\n"));
    let sink = VecSink::default();
    let out = build::build(&f.home, &request(&f, "feedfacecafebeef"), &sink).unwrap();
    let meta = build::BuildJson::read(&out.dir).unwrap();
    assert_eq!(meta.result, BuildResult::Success);
    assert_eq!(meta.samples_ok, Some(false));
    assert_eq!(meta.diagnosis[0].id, "gnu-stubs-32");
    let warned = sink
        .events()
        .into_iter()
        .any(|e| matches!(e, Event::Message { text, .. } if text.contains("gnu-stubs-32")));
    assert!(warned);
}

#[test]
fn an_interrupted_build_is_never_taken_for_finished() {
    let f = fixture(CONFIG);
    let out = build::build(
        &f.home,
        &request(&f, "abcdef0123456789"),
        &VecSink::default(),
    )
    .unwrap();
    // Simulate a crash mid-build: build.json says running, an artifact is gone.
    let mut meta = build::BuildJson::read(&out.dir).unwrap();
    meta.result = BuildResult::Running;
    meta.write(&out.dir).unwrap();
    assert!(build::find_build(&f.home, &VersionReq::Series(5, 10)).is_none());
    let again = build::build(
        &f.home,
        &request(&f, "abcdef0123456789"),
        &VecSink::default(),
    )
    .unwrap();
    assert!(!again.reused, "a running/crashed folder must be rebuilt");
    std::fs::remove_file(&again.image).unwrap();
    let third = build::build(
        &f.home,
        &request(&f, "abcdef0123456789"),
        &VecSink::default(),
    )
    .unwrap();
    assert!(
        !third.reused && third.image.is_file(),
        "missing artifacts are rebuilt"
    );
}

/// From 5.18 on samples/bpf build only in-tree (catalogue entry samples-bpf-o-userprogs):
/// the fake tree refuses `M=samples/bpf` with `O=` like 6.x does, and the pipeline builds
/// the samples in an in-tree copy of the private tree instead, with the build's .config
/// and VMLINUX_BTF pointing at the out-of-tree vmlinux; the kernel stays out of tree and
/// the shared tree gets no in-tree build files.
#[test]
fn samples_build_in_an_in_tree_copy_from_5_18() {
    let f = fixture(CONFIG);
    std::fs::remove_file(f.tree.join("tools/lib/subcmd/subcmd-util.h")).unwrap();
    let mk = MAKEFILE.replace(
        "ifdef M\nall:\n",
        "ifdef M\nall:\n\t@if [ \"$(O)\" != \".\" ]; then echo \"make[3]: *** No rule to make target 'samples/bpf/Makefile'.  Stop.\"; exit 2; fi\n\t@test -f .config && test -f include/generated/prepared && test -f usr/include/linux/bpf.h\n",
    ) + "\nprepare:\n\t@test -f $(O)/.config\n\t@mkdir -p $(O)/include/generated && touch $(O)/include/generated/prepared\n";
    std::fs::write(f.tree.join("Makefile"), mk).unwrap();
    let mut req = request(&f, "0123456789abcdef");
    req.tree.version = KernelVersion::new(6, 1, 100);
    let sink = VecSink::default();
    let out = build::build(&f.home, &req, &sink).unwrap();
    let meta = build::BuildJson::read(&out.dir).unwrap();
    assert_eq!(meta.samples_ok, Some(true), "{:?}", meta.stages);
    assert!(
        meta.plan
            .notes
            .iter()
            .any(|n| n == "samples-bpf-o-userprogs"),
        "{:?}",
        meta.plan
    );
    let tree = out.dir.join("samples-src");
    assert!(
        tree.join(".config").is_file(),
        "the in-tree copy got the build's .config"
    );
    let vars = std::fs::read_to_string(tree.join("samples/bpf/vars.txt")).unwrap();
    assert_eq!(
        vars.trim(),
        format!("VMLINUX_BTF={}", out.dir.join("obj/vmlinux").display())
    );
    assert!(
        out.samples.join("sockex1").is_file() && out.samples.join("sockex1_kern.o").is_file(),
        "programs staged from the in-tree copy"
    );
    assert!(
        !f.tree.join(".config").exists() && !f.tree.join("include/generated").exists(),
        "the shared tree stays clean"
    );
    assert!(
        !out.dir.join("src/.config").exists(),
        "the kernel's private tree stays out-of-tree clean"
    );
    let repro = std::fs::read_to_string(out.dir.join("reproduce.sh")).unwrap();
    assert!(
        repro.contains("samples-src") && repro.contains("M=samples/bpf"),
        "{repro}"
    );
    // A 5.10 build keeps the out-of-tree samples step (no copy).
    let g = fixture(CONFIG);
    let out = build::build(
        &g.home,
        &request(&g, "feedfacecafe0001"),
        &VecSink::default(),
    )
    .unwrap();
    assert!(!out.dir.join("samples-src").exists());
}

/// kbuild's `scripts_gdb`: the loader link and the generated constants in O=, or a
/// failure when the config asks for one.
const SCRIPTS_GDB: &str = r##"
scripts_gdb:
	@if grep -q CONFIG_FAKE_FAIL_GDB=y $(O)/.config; then echo "scripts/gdb/linux/constants.py.in:1:10: fatal error: linux/fake.h: No such file or directory"; exit 2; fi
	@mkdir -p $(O)/scripts/gdb/linux
	@echo "  GEN     scripts/gdb/linux/constants.py"
	@echo "CC=$(CC)" > $(O)/scripts/gdb/linux/constants.py
	@echo "import linux" > $(O)/vmlinux-gdb.py
"##;

#[test]
fn gdb_scripts_are_a_recorded_step_whose_failure_keeps_the_build() {
    let f = fixture(CONFIG);
    std::fs::write(f.tree.join("Makefile"), format!("{MAKEFILE}{SCRIPTS_GDB}")).unwrap();
    let sink = VecSink::default();
    let out = build::build(&f.home, &request(&f, "0123456789abcdef"), &sink).unwrap();
    let meta = build::BuildJson::read(&out.dir).unwrap();
    let rec = meta.gdb_scripts.clone().expect("the step ran");
    assert!(rec.ok, "{rec:?}");
    assert!(stages(&sink).contains(&"gdb".to_string()));
    assert!(meta.stages.iter().any(|s| s.stage == Stage::Gdb && s.ok));
    // The make arguments are recorded for a later make against the same O= folder.
    assert!(!meta.make_env.is_empty());
    assert!(meta
        .make_env
        .iter()
        .any(|(k, _)| k == "KBUILD_BUILD_TIMESTAMP"));
    let repro = std::fs::read_to_string(&out.reproduce).unwrap();
    assert!(repro.contains(" scripts_gdb\n"), "{repro}");
    let files = build::gdb::ensure(&f.home, &out, &VecSink::default()).unwrap();
    assert_eq!(files.vmlinux, out.dir.join("obj/vmlinux"));
    assert_eq!(files.safe_path.as_deref(), Some(out.dir.as_path()));
    assert_eq!(files.missing, None);

    // A failing scripts_gdb: the kernel is still built; the record and --gdb say why.
    let f = fixture(&format!("{CONFIG}CONFIG_FAKE_FAIL_GDB=y\n"));
    std::fs::write(f.tree.join("Makefile"), format!("{MAKEFILE}{SCRIPTS_GDB}")).unwrap();
    let sink = VecSink::default();
    let out = build::build(&f.home, &request(&f, "fedcba9876543210"), &sink).unwrap();
    let meta = build::BuildJson::read(&out.dir).unwrap();
    assert_eq!(meta.result, BuildResult::Success);
    let rec = meta.gdb_scripts.clone().unwrap();
    assert!(!rec.ok);
    assert!(
        rec.error.as_deref().unwrap().contains("linux/fake.h"),
        "{rec:?}"
    );
    assert!(sink.events().into_iter().any(|e| matches!(e,
        Event::Message { text, .. } if text.contains("gdb scripts did not build"))));
    let files = build::gdb::ensure(&f.home, &out, &VecSink::default()).unwrap();
    assert!(files.safe_path.is_none());
    assert!(files.missing.unwrap().contains("linux/fake.h"));
}

#[test]
fn a_build_from_before_the_step_gets_its_gdb_scripts_on_demand() {
    let f = fixture(CONFIG);
    // A compiler wrapper, so the reconstructed make arguments have something to show.
    let mut req = request(&f, "00112233aabbccdd");
    req.options.cc_wrapper = CcWrapper::Ccache;
    let out = build::build(&f.home, &req, &VecSink::default()).unwrap();
    let meta = build::BuildJson::read(&out.dir).unwrap();
    assert!(
        meta.gdb_scripts.is_none(),
        "the fake Makefile has no scripts_gdb"
    );
    let files = build::gdb::ensure(&f.home, &out, &VecSink::default()).unwrap();
    assert!(files
        .missing
        .unwrap()
        .contains("no kernel tree with a scripts_gdb target"));
    // The tree learns the target (the private tree's Makefile is a hard link of it), and
    // build.json forgets its make arguments, like one written before labctl kept them.
    std::fs::write(f.tree.join("Makefile"), format!("{MAKEFILE}{SCRIPTS_GDB}")).unwrap();
    let mut old = meta.clone();
    old.make_vars.clear();
    old.make_env.clear();
    old.write(&out.dir).unwrap();
    let sink = VecSink::default();
    let files = build::gdb::ensure(&f.home, &out, &sink).unwrap();
    assert_eq!(files.missing, None, "{:?}", sink.events());
    assert!(out.dir.join("obj/vmlinux-gdb.py").is_file());
    let meta = build::BuildJson::read(&out.dir).unwrap();
    assert!(meta.gdb_scripts.unwrap().ok);
    // Made with the build's compiler wrapper (reconstructed from build.json).
    let constants =
        std::fs::read_to_string(out.dir.join("obj/scripts/gdb/linux/constants.py")).unwrap();
    assert_eq!(meta.cc_wrapper, "ccache");
    assert_eq!(constants, "CC=ccache gcc\n");
    // Present now: nothing runs again.
    let sink = VecSink::default();
    build::gdb::ensure(&f.home, &out, &sink).unwrap();
    assert!(!stages(&sink).contains(&"gdb".to_string()));
}
