//! `labctl vm test` on a real lab kernel under QEMU: the whole suite passes, and with
//! faults injected (JIT off, kprobes disarmed, BTF hidden) the tests that must catch
//! them fail with the right reasons while the rest still pass.
//!
//! The kernel: a labctl build of 5.10.46 in the persistent test home
//! (`$LABCTL_TEST_HOME`, default `~/.cache/labctl-test`; `labctl vm test` builds it when
//! missing), or a hand-built one given by `LABCTL_TEST_KERNEL` (bzImage),
//! `LABCTL_TEST_OBJ` (its O= folder with samples/bpf) and `LABCTL_TEST_VERSION`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use labctl::events::NullSink;
use labctl::process::Cmd;

fn test_home() -> PathBuf {
    common::persistent_test_home()
}

fn vm_test(extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut c = Cmd::new(env!("CARGO_BIN_EXE_labctl"))
        .args(["--home"])
        .arg(test_home())
        .args(["--json", "vm", "test", "--accel", "tcg", "--no-bcc"]);
    match std::env::var_os("LABCTL_TEST_KERNEL") {
        Some(k) => {
            let v = std::env::var("LABCTL_TEST_VERSION").unwrap_or_else(|_| "5.10.46".into());
            c = c.arg(v).arg("--kernel").arg(k);
            if let Some(o) = std::env::var_os("LABCTL_TEST_OBJ") {
                c = c.arg("--obj").arg(o);
            }
        }
        None => c = c.arg("5.10.46"),
    }
    let out = c
        .args(extra)
        .timeout(Duration::from_secs(3600))
        .run(&NullSink)
        .unwrap();
    let json = serde_json::from_str(&out.stdout_str()).unwrap_or(serde_json::Value::Null);
    (out.code, json, out.stderr_str())
}

fn result_of<'a>(j: &'a serde_json::Value, name: &str) -> (&'a str, &'a str) {
    let t = j["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {j}"));
    (t["result"].as_str().unwrap(), t["reason"].as_str().unwrap())
}

#[test]
fn the_lab_kernel_passes_every_test_and_catches_injected_faults() {
    let (code, j, err) = vm_test(&[]);
    assert_eq!(code, Some(0), "suite did not pass:\n{j:#}\n{err}");
    let tests = j["tests"].as_array().unwrap();
    assert!(tests.len() >= 14, "{j:#}");
    for t in tests {
        let expect = if t["name"] == "hello-bcc" {
            "skip"
        } else {
            "pass"
        };
        assert_eq!(t["result"], expect, "{t}");
    }
    // 5.10's default run: tests #0-#285, every one JIT-ed (the whole set is --full).
    assert!(result_of(&j, "test_bpf")
        .1
        .contains("286 PASSED, 0 FAILED, [279/279 JIT'ed]"));
    assert!(result_of(&j, "cbpf-port80").1.contains("JIT: yes"));
    let samples = tests
        .iter()
        .filter(|t| t["name"].as_str().unwrap().starts_with("samples/"))
        .count();
    assert!(samples >= 6, "{samples} samples ran");

    let (code, j, err) = vm_test(&[
        "--inject",
        "jit-off,kprobes-off,btf-hidden",
        "--filter",
        "kernel/*,hello,cbpf-port80,core-hello,bpftool/btf,test_bpf",
    ]);
    assert_eq!(code, Some(1), "faults must fail the suite:\n{j:#}\n{err}");
    assert_eq!(result_of(&j, "kernel/jit").0, "fail");
    assert!(result_of(&j, "kernel/jit").1.contains("= 0"));
    assert_eq!(result_of(&j, "kernel/btf").0, "fail");
    assert_eq!(result_of(&j, "core-hello").0, "fail");
    // bpftool's own dump of the hidden BTF fails too (libbpf: "failed to load BTF").
    assert_eq!(result_of(&j, "bpftool/btf").0, "fail");
    let (r, why) = result_of(&j, "hello");
    assert_eq!(r, "fail");
    assert!(why.contains("Hello, World!"), "{why}");
    // With the JIT off test_bpf still passes, but must have JIT'ed nothing.
    let (r, why) = result_of(&j, "test_bpf");
    assert_eq!(r, "pass");
    assert!(why.contains("[0/"), "{why}");
    assert!(result_of(&j, "cbpf-port80").1.contains("interpreted"));
    assert_eq!(result_of(&j, "kernel/config").0, "pass");
}
