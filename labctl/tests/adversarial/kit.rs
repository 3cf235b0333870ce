//! Helpers the adversarial cases share: the real binary with a clean environment, a
//! canary folder outside the home whose contents are compared before and after, and
//! the "nothing unverified in the home" check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `labctl --home <home> <args>` with no inherited labctl settings; kernel.org is
/// unreachable at once (nothing listens on port 1).
pub fn labctl(home: &Path, args: &[&str]) -> Command {
    let mut c = super::common::labctl_clean(home, args);
    // Never the host's apt mirror: a case that reaches a fetch by mistake fails fast.
    c.env("LABCTL_DEBIAN_URL", "http://127.0.0.1:1/debian");
    c.env(
        "LABCTL_DEBIAN_SECURITY_URL",
        "http://127.0.0.1:1/debian-security",
    );
    c.env("LABCTL_READ_TIMEOUT", "5");
    c
}

pub fn run(home: &Path, args: &[&str]) -> Output {
    labctl(home, args).output().expect("run labctl")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A scratch area: `home/` (labctl's), `canary/` (must never change) and `in/`
/// (inputs the test writes).
pub struct Scene {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    pub canary: PathBuf,
    pub input: PathBuf,
    before: BTreeMap<String, String>,
}

impl Scene {
    pub fn new() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let (home, canary, input) = (root.join("home"), root.join("canary"), root.join("in"));
        for d in [&home, &canary, &input] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(canary.join("victim"), "original\n").unwrap();
        std::fs::create_dir_all(canary.join("sub")).unwrap();
        std::fs::write(canary.join("sub/keep.txt"), "keep me\n").unwrap();
        let before = snapshot(&root, &[&home, &input]);
        Scene {
            _dir: dir,
            root,
            home,
            canary,
            input,
            before,
        }
    }

    /// Nothing outside the home changed (the canary, the inputs, the scratch root).
    pub fn assert_outside_unchanged(&self) {
        let now = snapshot(&self.root, &[&self.home, &self.input]);
        assert_eq!(self.before, now, "something outside the home changed");
    }

    /// No tree, no temporary extraction and no partial download in the home.
    pub fn assert_nothing_unverified(&self) {
        let src = self.home.join("src");
        let trees: Vec<_> = std::fs::read_dir(&src)
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(trees.is_empty(), "src/ holds {trees:?}");
        let leftovers: Vec<String> = walk(&self.home)
            .into_iter()
            .filter(|p| p.contains(".tmp-") || p.ends_with(".part"))
            .collect();
        assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    }
}

/// Every path below `root` except those under `skip` (the home, the inputs), with a description of what it is
/// (file contents, link target, "dir") and its mode; links are not followed.
fn snapshot(root: &Path, skip: &[&PathBuf]) -> BTreeMap<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    fn go(root: &Path, d: &Path, skip: &[&PathBuf], out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if skip.contains(&&p) {
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode();
            if m.file_type().is_symlink() {
                out.insert(rel, format!("link {:?}", std::fs::read_link(&p).unwrap()));
            } else if m.is_dir() {
                out.insert(rel, format!("dir {mode:o}"));
                go(root, &p, skip, out);
            } else {
                let b = std::fs::read(&p).unwrap();
                out.insert(
                    rel,
                    format!("file {mode:o} {}", String::from_utf8_lossy(&b)),
                );
            }
        }
    }
    go(root, root, skip, &mut out);
    out
}

/// Every path below `dir` (links not followed), relative.
pub fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn go(root: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                go(root, &p, out);
            }
        }
    }
    go(dir, dir, &mut out);
    out.sort();
    out
}
