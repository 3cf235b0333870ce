//! Validates the GitHub Actions workflow users copy from `ci/github/`: it must satisfy the
//! GitHub workflow schema (check-jsonschema's vendored copy, offline), and every `labctl`
//! command line in it must parse with the current CLI (so a renamed flag breaks this test,
//! not a user's CI). Also the contract between README.md and `.ci/run`: CI runs the
//! README's two command blocks and keeps no package list of its own.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn workflow() -> (PathBuf, String) {
    let p = repo().join("ci/github/labctl-matrix.yml");
    let text = std::fs::read_to_string(&p).unwrap();
    (p, text)
}

#[test]
fn workflow_matches_the_github_schema() {
    let (path, _) = workflow();
    let prog = labctl::process::which("check-jsonschema").expect("check-jsonschema is missing: `labctl doctor --tests --install` installs it (the README's test command does)");
    let out = Command::new(prog)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "schema check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `labctl ARGS` parses with the current CLI (parse-only mode runs nothing).
fn assert_parses(args: &[String]) {
    let out = Command::new(env!("CARGO_BIN_EXE_labctl"))
        .args(args)
        .env("LABCTL_PARSE_ONLY", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`labctl {}` does not parse:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Split a shell command line into words (quotes, no expansion), stopping at a redirection or pipe.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut has = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                has = true;
            }
            None if c.is_whitespace() => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            None if c == '>' || c == '|' || c == ';' || c == '&' => break,
            None => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[test]
fn every_labctl_command_in_the_workflow_parses() {
    let (_, text) = workflow();
    let expr = regex::Regex::new(r"\$\{\{[^}]*\}\}").unwrap();
    let mut checked = 0;
    for raw in text.lines() {
        let line = raw.trim().trim_start_matches("run:").trim();
        // Only direct invocations (not `cargo install ... labctl` and not `$(...)` captures).
        let Some(rest) = line.strip_prefix("labctl ") else {
            continue;
        };
        let rest = expr.replace_all(rest, "5.10");
        let args = words(&rest);
        assert_parses(&args);
        checked += 1;
    }
    assert!(
        checked >= 5,
        "expected the workflow to run labctl at least 5 times, found {checked}"
    );
}

/// The sharing contract: the default branch pushes each matrix kernel to the repository's
/// container package under the tags `--registry` lookups use; pull requests (and only
/// they) set LABCTL_REGISTRY so `kernel build` pulls before building; the job may write
/// packages; labctl gets credentials from the docker config the login step writes.
#[test]
fn the_default_branch_pushes_and_pull_requests_pull_first() {
    let (_, text) = workflow();
    assert!(
        text.contains("packages: write"),
        "the job must be allowed to push packages"
    );
    let push = text
        .lines()
        .position(|l| l.contains("run: labctl kernel push"))
        .expect("the workflow pushes the kernel");
    let lines: Vec<&str> = text.lines().collect();
    let step = lines[..push]
        .iter()
        .rposition(|l| l.trim_start().starts_with("- name:"))
        .unwrap();
    let cond = lines[step..push].join("\n");
    assert!(
        cond.contains("github.event_name != 'pull_request'")
            && cond.contains("github.event.repository.default_branch"),
        "the push step must run on the default branch only:\n{cond}"
    );
    assert!(
        lines[push].contains("--registry \"$KERNEL_REPO\""),
        "{}",
        lines[push]
    );
    let build = lines
        .iter()
        .position(|l| l.contains("run: labctl kernel build"))
        .unwrap();
    let test = lines
        .iter()
        .position(|l| l.contains("labctl vm test"))
        .unwrap();
    assert!(build < test && test < push, "build, test, then push");
    // LABCTL_REGISTRY (the lookup before building) is set for pull requests only, and
    // before the build step.
    let reg = lines
        .iter()
        .position(|l| l.contains("LABCTL_REGISTRY=$repo"))
        .expect("pull requests set LABCTL_REGISTRY");
    assert!(reg < build);
    assert!(
        lines[reg.saturating_sub(2)..reg]
            .iter()
            .any(|l| l.contains("= pull_request")),
        "LABCTL_REGISTRY must be set only on pull requests"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains("docker login") && l.contains("--password-stdin")));
}

#[test]
fn word_splitting_handles_quotes_and_redirects() {
    assert_eq!(
        words(r#"vm test "5.10" --junit 'a b.xml' --json > out.json"#),
        ["vm", "test", "5.10", "--junit", "a b.xml", "--json"]
    );
    assert_eq!(words(r#"x "" y"#), ["x", "", "y"]);
}

#[test]
fn parse_only_mode_still_rejects_unknown_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_labctl"))
        .args(["kernel", "fetch", "5.10", "--no-such-flag"])
        .env("LABCTL_PARSE_ONLY", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// The ```sh block after `<!-- ci: MARKER -->` in README.md (what .ci/run runs).
fn readme_block(marker: &str) -> String {
    let text = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let after = text
        .split(&format!("<!-- ci: {marker} -->"))
        .nth(1)
        .unwrap_or_else(|| panic!("README.md has no `<!-- ci: {marker} -->` block"));
    let body = after.split("```sh\n").nth(1).unwrap();
    body.split("\n```").next().unwrap().trim().to_string()
}

#[test]
fn the_readme_commands_are_what_ci_runs_and_they_parse() {
    let main = readme_block("main job");
    assert_eq!(
        main,
        "cargo install --locked --path labctl && labctl doctor --install --yes && labctl vm test"
    );
    let tests = readme_block("tests");
    assert!(tests.ends_with("cargo test --workspace"), "{tests}");
    // Formatting and lints are part of the test command.
    assert!(tests.contains("cargo fmt --check"), "{tests}");
    assert!(
        tests.contains("cargo clippy -q --all-targets -- -D warnings"),
        "{tests}"
    );
    // .ci/run runs both blocks verbatim, as `step "<marker>" '<command>'` lines.
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    for (marker, cmd) in [("main job", &main), ("tests", &tests)] {
        let line = format!("step \"{marker}\" '{cmd}'");
        assert!(
            ci.lines().any(|l| l == line),
            ".ci/run must run the README's {marker} block as `{line}`:\n{ci}"
        );
    }
    // Every labctl invocation in them parses with the current CLI.
    let mut checked = 0;
    for block in [&main, &tests] {
        for part in block.split("&&") {
            let w = words(part.trim());
            let args: Vec<String> = match w.iter().position(|a| a == "--") {
                // `cargo run -p labctl -- ARGS` (not `cargo clippy -- -D warnings`).
                Some(i) if w[0] == "cargo" && w[1] == "run" => w[i + 1..].to_vec(),
                _ if w[0] == "labctl" => w[1..].to_vec(),
                _ => continue,
            };
            assert_parses(&args);
            checked += 1;
        }
    }
    assert_eq!(checked, 3);
}

#[test]
fn ci_keeps_no_package_list_of_its_own() {
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    let code: Vec<&str> = ci
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let data = std::fs::read_to_string(repo().join("labctl/src/doctor/requirements.toml")).unwrap();
    let v: toml::Value = toml::from_str(&data).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for r in v["req"].as_array().unwrap() {
        for fam in ["apt", "dnf", "pacman", "zypper", "pip"] {
            for p in r.get(fam).and_then(|x| x.as_array()).into_iter().flatten() {
                names.insert(p.as_str().unwrap().to_string());
            }
        }
    }
    assert!(names.len() > 30, "{names:?}");
    for line in &code {
        for w in line.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.+".contains(c))) {
            assert!(!names.contains(w), ".ci/run names the package `{w}` ({line}); host requirements belong in doctor/requirements.toml");
        }
        for tool in [
            "apt-get", "apt ", "dnf ", "pip ", "pip3", "pipx", "yum ", "zypper", "pacman",
        ] {
            assert!(!line.contains(tool), ".ci/run installs by itself ({line})");
        }
    }
}
