//! Every relative link in README.md, docs/, ci/ and examples-bpf/ points at a file that
//! exists, and every command page the README promises is there.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if !p.ends_with("target") && !p.file_name().unwrap().to_string_lossy().starts_with('.')
            {
                markdown_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
}

#[test]
fn relative_links_resolve() {
    let root = repo();
    let mut files = vec![root.join("README.md")];
    for d in ["docs", "ci", "examples-bpf", "kconfig", "vm", "bench"] {
        if root.join(d).is_dir() {
            markdown_files(&root.join(d), &mut files);
        }
    }
    let link = regex::Regex::new(r"\]\(([^)#\s]+)(#[^)]*)?\)").unwrap();
    let mut broken = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for c in link.captures_iter(&text) {
            let target = &c[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let p = f.parent().unwrap().join(target);
            if !p.exists() {
                broken.push(format!(
                    "{}: {target}",
                    f.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        files.len() > 10,
        "found only {} markdown files",
        files.len()
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_command_has_a_page() {
    let root = repo();
    for page in [
        "doctor",
        "kernel-fetch",
        "kernel-config",
        "kernel-build",
        "vm-run",
        "vm-boot",
        "vm-test",
        "matrix",
        "cache",
        "new",
    ] {
        assert!(
            root.join("docs/commands")
                .join(format!("{page}.md"))
                .is_file(),
            "docs/commands/{page}.md is missing"
        );
    }
}
