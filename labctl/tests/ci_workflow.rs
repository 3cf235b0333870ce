//! Validates the GitHub Actions workflow users copy from `ci/github/`: it must satisfy the
//! GitHub workflow schema (check-jsonschema's vendored copy, offline), and every `labctl`
//! command line in it must parse with the current CLI (so a renamed flag breaks this test,
//! not a user's CI).

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn workflow() -> (PathBuf, String) {
    let p = repo().join("ci/github/labctl-matrix.yml");
    let text = std::fs::read_to_string(&p).unwrap();
    (p, text)
}

#[test]
fn workflow_matches_the_github_schema() {
    let (path, _) = workflow();
    let out = Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(&path)
        .output()
        .expect("check-jsonschema must be installed (pip install check-jsonschema; .ci/run does it)");
    assert!(out.status.success(), "schema check failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
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
        let Some(rest) = line.strip_prefix("labctl ") else { continue };
        let rest = expr.replace_all(rest, "5.10");
        let args = words(&rest);
        let out = Command::new(env!("CARGO_BIN_EXE_labctl"))
            .args(&args)
            .env("LABCTL_PARSE_ONLY", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "`labctl {}` does not parse:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        checked += 1;
    }
    assert!(checked >= 4, "expected the workflow to run labctl at least 4 times, found {checked}");
}

#[test]
fn word_splitting_handles_quotes_and_redirects() {
    assert_eq!(words(r#"vm test "5.10" --junit 'a b.xml' --json > out.json"#), ["vm", "test", "5.10", "--junit", "a b.xml", "--json"]);
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
