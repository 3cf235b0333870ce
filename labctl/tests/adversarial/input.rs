//! User input that would be written into files: a `--set` or fragment value with a
//! newline (or another control character) would add lines to the stored `.config`.
//! Refused before anything is fetched or written.

use crate::kit::{run, text, Scene};

#[test]
fn a_set_value_with_a_newline_is_refused_before_anything_is_written() {
    for bad in [
        "CONFIG_CMDLINE=\"a\nCONFIG_MODULE_SIG_FORCE=y\"",
        "CONFIG_CMDLINE=\"a\rb\"",
        "CONFIG_LOCALVERSION=\"\u{1b}]0;x\u{7}\"",
    ] {
        let s = Scene::new();
        let out = run(&s.home, &["kernel", "config", "5.10.46", "--set", bad]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {err}");
        assert!(
            err.contains("bad --set value") && err.contains("control character"),
            "{bad:?}: {err}"
        );
        assert!(out.stdout.is_empty());
        assert!(
            !s.home.join("configs").exists() && !s.home.join("src").exists(),
            "nothing configured or fetched"
        );
        s.assert_nothing_unverified();
        s.assert_outside_unchanged();
    }
}

#[test]
fn a_fragment_value_with_a_control_character_is_refused() {
    let s = Scene::new();
    let frag = s.input.join("evil.config");
    std::fs::write(&frag, "CONFIG_BPF=y\nCONFIG_LOCALVERSION=\"-x\u{1b}[2J\"\n").unwrap();
    // A local tree (used in place, nothing fetched): only its top Makefile is read
    // before the fragments are.
    let tree = s.input.join("linux-5.10.46");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("Makefile"), crate::common::makefile("5.10.46")).unwrap();
    std::fs::write(tree.join("Kconfig"), "mainmenu \"Linux\"\n").unwrap();
    let out = run(
        &s.home,
        &[
            "kernel",
            "config",
            "5.10.46",
            "--source",
            tree.to_str().unwrap(),
            "--fragment",
            frag.to_str().unwrap(),
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("control character"), "{err}");
    assert!(!s.home.join("configs").exists(), "nothing configured");
    s.assert_nothing_unverified();
    s.assert_outside_unchanged();
}
