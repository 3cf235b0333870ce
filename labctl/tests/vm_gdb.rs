//! Kernel debugging with gdb (`labctl vm run --gdb`).
//!
//! Real kernels: `labctl vm run VERSION --gdb-wait` runs the examples' hello loader
//! (which calls bpf()) in a guest stopped at entry; gdb attaches in batch mode with the
//! exact command labctl printed, sets a hardware breakpoint on the bpf() syscall path,
//! continues, prints a backtrace, `lx-dmesg` and `lx-ps` (the kernel's gdb scripts),
//! deletes the breakpoint and detaches; the guest then finishes and labctl exits 0 with
//! hello's output. On the 5.10.46 lab build (host toolchain) and the newest 6.12.y lab
//! build made with the debian:trixie toolchain (the very build tests/toolchain_real.rs
//! makes: both ask for `6.12`, so they name one build whichever 6.12.y the mirror
//! serves), both in the persistent test home and built there when missing (`labctl
//! kernel build`, which is a no-op when the build exists).
//!
//! Without a kernel: a fake QEMU records its argv, so the stub's arguments, `nokaslr`
//! and the printed command are checked in a second; `--backend vng` is refused.

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use labctl::build::BuildOutput;
use labctl::events::NullSink;
use labctl::process::{Cmd, LineAction};

const LABCTL: &str = env!("CARGO_BIN_EXE_labctl");

/// Split a line the way a POSIX shell splits plain and single-quoted words (what
/// `process::shell_quote` writes), so the printed command runs as printed without a
/// shell.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[test]
fn shell_words_undo_shell_quote() {
    for w in ["plain", "two words", "it's", "file /a b/vmlinux", ""] {
        let q = labctl::process::shell_quote(std::ffi::OsStr::new(w));
        assert_eq!(shell_words(&format!("x {q} y")), ["x", w, "y"], "{q}");
    }
}

/// The finished lab build of `version` made with `toolchain`, built first when missing.
fn lab_build(home: &Path, version: &str, toolchain: &str) -> BuildOutput {
    let t = Instant::now();
    let out = Cmd::new(LABCTL)
        .arg("--home")
        .arg(home)
        .args(["kernel", "build", version, "--toolchain", toolchain])
        .timeout(Duration::from_secs(3 * 3600))
        .run(&NullSink)
        .unwrap();
    assert_eq!(
        out.code,
        Some(0),
        "kernel build {version} --toolchain {toolchain}:\n{}",
        out.stderr_str()
    );
    eprintln!(
        "gdb: kernel build {version} --toolchain {toolchain} (no-op when built) took {:.0}s",
        t.elapsed().as_secs_f64()
    );
    labctl::build::find_build_for(
        &labctl::Home::new(home),
        &version.parse().unwrap(),
        &toolchain.parse().unwrap(),
        labctl::arch::Arch::host(),
    )
    .expect("a finished build after `kernel build`")
}

/// The function of the bpf() syscall path to stop in: `__sys_bpf` where the kernel has
/// it (5.14+), else the syscall's own entry `__x64_sys_bpf`.
fn bpf_symbol(system_map: &Path) -> &'static str {
    let map = std::fs::read_to_string(system_map).unwrap();
    let has = |name: &str| {
        map.lines()
            .any(|l| l.split_whitespace().nth(2) == Some(name))
    };
    if has("__sys_bpf") {
        "__sys_bpf"
    } else {
        assert!(
            has("__x64_sys_bpf"),
            "no bpf syscall in {}",
            system_map.display()
        );
        "__x64_sys_bpf"
    }
}

struct Outcome {
    gdb: String,
    labctl_code: Option<i32>,
    labctl_output: String,
    /// Start of `vm run` → the gdb command printed; → gdb done; → labctl done.
    printed: Duration,
    gdb_done: Duration,
    total: Duration,
}

fn debug_hello(version: &str, toolchain: &str) -> Outcome {
    let home = common::persistent_test_home();
    let build = lab_build(&home, version, toolchain);
    let sym = bpf_symbol(&build.system_map);
    let ex = labctl::suite::examples::build(
        &labctl::Home::new(&home),
        &labctl::suite::examples::Target::host(),
        &NullSink,
    )
    .expect("examples-bpf build");
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("labctl.log");
    let (tx, rx) = mpsc::channel::<String>();
    let start = Instant::now();
    let run = Cmd::new(LABCTL)
        .arg("--home")
        .arg(&home)
        .args(["vm", "run", version, "--toolchain", toolchain, "--gdb-wait"])
        // Explicit limits: with --gdb they default to none.
        .args(["--boot-timeout", "900", "--timeout", "900"])
        .arg("--file")
        .arg(ex.bin.join("hello"))
        .arg("--file")
        .arg(ex.bin.join("hello.bpf.o"))
        .args(["--", "/root/hello", "/root/hello.bpf.o"])
        .timeout(Duration::from_secs(2400));
    let vm = std::thread::spawn(move || {
        run.run_streaming(&NullSink, &log, |line| {
            let _ = tx.send(line.to_string());
            LineAction::Continue
        })
        .map(|o| (o.code, std::fs::read_to_string(&o.log).unwrap_or_default()))
    });
    // The attach command: the line after "Attach with:", printed before QEMU starts.
    let mut seen = String::new();
    let command = loop {
        match rx.recv_timeout(Duration::from_secs(900)) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.trim_start().starts_with("gdb ") {
                    break line.trim().to_string();
                }
            }
            Err(_) => {
                let r = vm.join().unwrap();
                panic!("labctl printed no gdb command:\n{seen}\n{r:?}");
            }
        }
    };
    let printed = start.elapsed();
    let obj = build.dir.join("obj");
    assert!(
        command.contains(&format!("file {}", obj.join("vmlinux").display()))
            && command.contains(&format!("add-auto-load-safe-path {}", build.dir.display()))
            && command.contains("target remote 127.0.0.1:"),
        "{command}"
    );
    assert!(
        obj.join("vmlinux-gdb.py").is_file(),
        "the build has no gdb scripts after --gdb:\n{seen}"
    );
    let words = shell_words(&command);
    let gdb = Cmd::new(&words[0])
        .args(&words[1..])
        .arg("-batch")
        .args(["-ex", &format!("hbreak {sym}")])
        .args(["-ex", "continue"])
        .args(["-ex", "bt"])
        .args(["-ex", "lx-dmesg"])
        .args(["-ex", "lx-ps"])
        .args(["-ex", "delete"])
        .args(["-ex", "detach"])
        .timeout(Duration::from_secs(1200))
        .run(&NullSink)
        .unwrap();
    let gdb_done = start.elapsed();
    let gdb_text = format!(
        "gdb exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        gdb.code,
        gdb.stdout_str(),
        gdb.stderr_str()
    );
    let (labctl_code, labctl_output) = vm.join().unwrap().expect("vm run ran");
    let total = start.elapsed();
    assert_eq!(gdb.code, Some(0), "{gdb_text}\n--- labctl\n{labctl_output}");
    Outcome {
        gdb: gdb_text,
        labctl_code,
        labctl_output,
        printed,
        gdb_done,
        total,
    }
    .check(version, sym)
}

impl Outcome {
    fn check(self, version: &str, sym: &str) -> Outcome {
        let g = &self.gdb;
        let all = format!("{g}\n--- labctl\n{}", self.labctl_output);
        // The breakpoint hit in the bpf() path, reached from a system call.
        let frames: Vec<&str> = g.lines().filter(|l| l.starts_with('#')).collect();
        assert!(
            frames.first().is_some_and(|f| f.contains(sym)),
            "frame #0 is not {sym}:\n{all}"
        );
        assert!(
            frames.iter().any(|f| f.contains("do_syscall_64")),
            "the backtrace does not come from a system call:\n{all}"
        );
        // lx-dmesg read the kernel's log buffer, lx-ps its task list: the scripts loaded.
        assert!(
            g.lines()
                .any(|l| l.starts_with('[') && l.contains("Linux version") && l.contains(version)),
            "no kernel log from lx-dmesg:\n{all}"
        );
        assert!(
            g.lines()
                .any(|l| l.split_whitespace().last() == Some("hello")),
            "lx-ps does not list the hello loader:\n{all}"
        );
        // The guest went on after gdb left and the loader did its whole job.
        assert_eq!(self.labctl_code, Some(0), "{all}");
        assert!(
            self.labctl_output.contains("result: ok"),
            "hello did not finish:\n{all}"
        );
        eprintln!(
            "gdb: linux {version}: command printed after {:.1}s, gdb done after {:.1}s, vm run done after {:.1}s",
            self.printed.as_secs_f64(),
            self.gdb_done.as_secs_f64(),
            self.total.as_secs_f64()
        );
        self
    }
}

#[test]
fn gdb_stops_linux_5_10_in_the_bpf_syscall_and_the_guest_finishes() {
    debug_hello("5.10.46", "host");
}

#[test]
fn gdb_stops_linux_6_12_in_the_bpf_syscall_and_the_guest_finishes() {
    debug_hello("6.12", "debian:trixie");
}

/// A kernel tree with a fake bzImage, vmlinux and vmlinux-gdb.py, and a fake QEMU that
/// writes its argv (one per line) and exits 1.
fn fake_tree(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let tree = d.join("linux");
    std::fs::create_dir_all(tree.join("arch/x86/boot")).unwrap();
    let bz = tree.join("arch/x86/boot/bzImage");
    std::fs::write(&bz, "not a kernel").unwrap();
    std::fs::write(tree.join("vmlinux"), "").unwrap();
    std::fs::write(tree.join("vmlinux-gdb.py"), "").unwrap();
    let argv = d.join("argv");
    let qemu = d.join("fake-qemu");
    std::fs::write(
        &qemu,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{}'\nexit 1\n",
            argv.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).unwrap();
    (tree, qemu, argv)
}

fn fake_run(d: &Path, qemu: &Path, args: &[&str]) -> labctl::process::Output {
    Cmd::new(LABCTL)
        .arg("--home")
        .arg(d.join("home"))
        .env("LABCTL_QEMU", qemu)
        .args(args)
        .timeout(Duration::from_secs(120))
        .run(&NullSink)
        .unwrap()
}

#[test]
fn the_stub_nokaslr_and_the_attach_command_reach_qemu_and_the_user() {
    let d = tempfile::tempdir().unwrap();
    let (tree, qemu, argv) = fake_tree(d.path());
    let bz = tree.join("arch/x86/boot/bzImage");
    let bz = bz.to_str().unwrap();

    // --gdb-wait alone: a free port, -S, nokaslr.
    let out = fake_run(
        d.path(),
        &qemu,
        &[
            "vm",
            "run",
            "--kernel",
            bz,
            "--accel",
            "tcg",
            "--gdb-wait",
            "--",
            "true",
        ],
    );
    let err = out.stderr_str();
    assert_eq!(out.code, Some(2), "the fake QEMU fails the run:\n{err}");
    let args: Vec<String> = std::fs::read_to_string(&argv)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let at = args.iter().position(|a| a == "-gdb").expect("-gdb");
    let endpoint = &args[at + 1];
    let port: u16 = endpoint
        .strip_prefix("tcp:127.0.0.1:")
        .unwrap_or_else(|| panic!("{endpoint}"))
        .parse()
        .unwrap();
    assert!(port > 0 && port != 1234, "{port}");
    assert!(args.iter().any(|a| a == "-S"), "{args:?}");
    let append = &args[args.iter().position(|a| a == "-append").unwrap() + 1];
    assert!(append.split(' ').any(|w| w == "nokaslr"), "{append}");
    let printed = err
        .lines()
        .find(|l| l.trim_start().starts_with("gdb "))
        .unwrap_or_else(|| panic!("no gdb command:\n{err}"));
    assert_eq!(
        shell_words(printed),
        [
            "gdb".to_string(),
            "-q".into(),
            "-ex".into(),
            format!("add-auto-load-safe-path {}", tree.display()),
            "-ex".into(),
            format!("file {}", tree.join("vmlinux").display()),
            "-ex".into(),
            format!("target remote 127.0.0.1:{port}"),
        ],
        "{err}"
    );
    assert!(
        err.contains("stopped before its first instruction"),
        "{err}"
    );

    // --gdb=PORT without waiting; and no stub at all without --gdb.
    let out = fake_run(
        d.path(),
        &qemu,
        &[
            "vm",
            "run",
            "--kernel",
            bz,
            "--accel",
            "tcg",
            "--gdb=40999",
            "--",
            "true",
        ],
    );
    let args = std::fs::read_to_string(&argv).unwrap();
    assert!(args.contains("\n-gdb\ntcp:127.0.0.1:40999\n"), "{args}");
    assert!(!args.lines().any(|a| a == "-S"), "{args}");
    assert!(out.stderr_str().contains("target remote 127.0.0.1:40999"));
    fake_run(
        d.path(),
        &qemu,
        &["vm", "run", "--kernel", bz, "--accel", "tcg", "--", "true"],
    );
    let args = std::fs::read_to_string(&argv).unwrap();
    assert!(
        !args.contains("-gdb") && !args.contains("nokaslr"),
        "{args}"
    );
}

#[test]
fn gdb_with_the_vng_backend_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    let (tree, qemu, _) = fake_tree(d.path());
    let bz = tree.join("arch/x86/boot/bzImage");
    let out = fake_run(
        d.path(),
        &qemu,
        &[
            "vm",
            "run",
            "--kernel",
            bz.to_str().unwrap(),
            "--backend",
            "vng",
            "--gdb",
            "--",
            "true",
        ],
    );
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr_str().contains("--gdb needs the QEMU backend"),
        "{}",
        out.stderr_str()
    );
}
