//! docs/first-program.md, followed step by step: every ```sh test block of the page runs
//! in order (through bash, as a reader would type it), with the page's `~/` replaced by a
//! fresh temporary folder and its kernel `6.12` by the kernel under test, against the
//! persistent test home (`$LABCTL_HOME`) with this build's labctl first on PATH. Each
//! `<!-- expect: TEXT -->` after a block is a line the page promises: the block's output
//! must contain it. The page must also run every template `labctl new` has and promise
//! each template's own expected line, so neither can drift from the other.
//!
//! Kernels: `$LABCTL_FIRST_PROGRAM_KERNELS` (comma separated), default 5.10.46 (the build
//! the other real tests share; CI's cold budget has no room for a second host 6.12 build
//! besides toolchain_real's trixie one), by hand also 6.12.107; the page's first block (`labctl kernel build`) builds one that the test home
//! lacks (about 10–30 minutes, once). Needs the host tools of `labctl doctor` (clang,
//! libbpf, bpftool, make, BCC, virtme-ng, bpftrace).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labctl::events::NullSink;
use labctl::process::{shell_quote, Cmd};

const PAGE: &str = include_str!("../../docs/first-program.md");
/// The kernel the page is written for.
const PAGE_KERNEL: &str = "6.12";

#[derive(Debug)]
struct Step {
    /// 1-based line of the block's opening fence.
    line: usize,
    script: String,
    expect: Vec<String>,
}

/// The page's ```sh test blocks and the `<!-- expect: ... -->` lines after each.
fn steps(page: &str) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut lines = page.lines().enumerate();
    while let Some((i, l)) = lines.next() {
        if l.trim_end() == "```sh test" {
            let mut script = String::new();
            for (_, l) in lines.by_ref() {
                if l.trim_end() == "```" {
                    break;
                }
                script.push_str(l);
                script.push('\n');
            }
            out.push(Step {
                line: i + 1,
                script,
                expect: Vec::new(),
            });
        } else if let Some(rest) = l.trim().strip_prefix("<!-- expect:") {
            let text = rest.trim_end_matches("-->").trim().to_string();
            out.last_mut()
                .unwrap_or_else(|| panic!("line {}: an expect before any test block", i + 1))
                .expect
                .push(text);
        }
    }
    out
}

/// `6.12` as a whole version word (not inside `6.12.107`) → `kernel`.
fn substitute_kernel(script: &str, kernel: &str) -> String {
    let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit() || c == '.');
    let mut out = String::new();
    let mut rest = script;
    while let Some(at) = rest.find(PAGE_KERNEL) {
        out.push_str(&rest[..at]);
        rest = &rest[at + PAGE_KERNEL.len()..];
        let inside = part(out.chars().last()) || part(rest.chars().next());
        out.push_str(if inside { PAGE_KERNEL } else { kernel });
    }
    out.push_str(rest);
    out
}

fn run_page(kernel: &str, home: &Path) -> Result<Vec<(usize, Duration)>, String> {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_labctl"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut times = Vec::new();
    for step in steps(PAGE) {
        let script = substitute_kernel(&step.script, kernel)
            .replace("~/", &format!("{}/", shell_quote(root.as_os_str())));
        let started = Instant::now();
        let out = Cmd::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .cwd(&root)
            .env("PATH", &path)
            .env("LABCTL_HOME", home)
            .timeout(Duration::from_secs(3 * 3600))
            .run(&NullSink)
            .map_err(|e| format!("line {}: {e}", step.line))?;
        times.push((step.line, started.elapsed()));
        let (so, se) = (out.stdout_str(), out.stderr_str());
        if !out.success() {
            return Err(format!(
                "{kernel}: the block at docs/first-program.md line {} exited {:?}:\n{script}\nstdout:\n{so}\nstderr:\n{se}",
                step.line, out.code
            ));
        }
        for e in &step.expect {
            if !so.lines().any(|l| l.contains(e.as_str())) {
                return Err(format!(
                    "{kernel}: the block at docs/first-program.md line {} printed no line with {e:?}:\n{script}\nstdout:\n{so}\nstderr:\n{se}",
                    step.line
                ));
            }
        }
    }
    Ok(times)
}

#[test]
fn the_page_runs_every_template_and_promises_its_line() {
    let steps = steps(PAGE);
    assert!(steps.len() >= 8, "{steps:#?}");
    for t in labctl::new::templates() {
        let flag = format!("--template {}", t.name);
        let i = steps
            .iter()
            .position(|s| s.script.contains(&flag))
            .unwrap_or_else(|| panic!("no test block runs `labctl new {flag}`"));
        // The first expect at or after `labctl new` is the template's line.
        let promised = steps[i..]
            .iter()
            .flat_map(|s| s.expect.iter())
            .next()
            .unwrap_or_else(|| panic!("nothing expected after {flag}"));
        assert!(
            promised.starts_with(&t.manifest.expect),
            "{}: the page expects {promised:?}, the template prints {:?}",
            t.name,
            t.manifest.expect
        );
    }
    assert_eq!(
        substitute_kernel(
            "vm run 6.12 -- x; new --kernel 6.12\n6.12.107 16.12",
            "5.10.46"
        ),
        "vm run 5.10.46 -- x; new --kernel 5.10.46\n6.12.107 16.12"
    );
}

#[test]
fn the_first_program_page_works_on_each_kernel() {
    let home = common::persistent_test_home();
    let kernels = std::env::var("LABCTL_FIRST_PROGRAM_KERNELS")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "5.10.46".into());
    let mut failures = Vec::new();
    for kernel in kernels.split(',').map(str::trim) {
        let started = Instant::now();
        match run_page(kernel, &home) {
            Ok(times) => eprintln!(
                "first-program.md on {kernel}: {:.0}s ({})",
                started.elapsed().as_secs_f64(),
                times
                    .iter()
                    .map(|(l, d)| format!("line {l} {:.1}s", d.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
