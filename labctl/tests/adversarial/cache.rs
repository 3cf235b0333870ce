//! `cache prune` against a hostile or busy home: a kind folder that is a symlink out of
//! the home, a `--older-than` that overflows, a delete that fails, entries whose writer
//! holds its lock (by the same `CacheKey` the writer uses), and a toolchain root with a
//! filesystem mounted inside it.

use std::path::{Path, PathBuf};
use std::process::Command;

use labctl::home::CacheKey;
use labctl::Home;

use crate::kit::{run, text, Scene};

fn put(p: &Path, data: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn prune_never_follows_a_symlinked_kind_folder() {
    let s = Scene::new();
    put(&s.home.join("downloads/aa.tar.xz"), "tarball");
    // runs/ is a link to a folder outside the home.
    std::os::unix::fs::symlink(&s.canary, s.home.join("runs")).unwrap();
    for args in [
        &["cache", "prune", "--all"][..],
        &["cache", "prune", "--kind", "runs"][..],
        &["cache", "prune", "--older-than", "0"][..],
    ] {
        let out = run(&s.home, args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("is a symlink; labctl does not follow it"),
            "{args:?}: {err}"
        );
        s.assert_outside_unchanged();
    }
    assert!(
        !s.home.join("downloads/aa.tar.xz").exists(),
        "the rest was pruned"
    );
    assert!(
        s.home.join("runs").is_symlink(),
        "the link itself is left alone"
    );
    let out = run(&s.home, &["cache", "ls"]);
    assert!(text(&out.stderr).contains("is a symlink"), "ls says so too");
    assert!(!text(&out.stdout).contains("victim"));
    s.assert_outside_unchanged();
}

#[test]
fn a_huge_older_than_is_refused_not_wrapped_to_zero() {
    let s = Scene::new();
    put(&s.home.join("downloads/aa.tar.xz"), "tarball");
    put(&s.home.join("builds/5.10.46-a-b/build.json"), "{}");
    for days in ["18446744073709551615", "213503982334602"] {
        let out = run(&s.home, &["cache", "prune", "--older-than", days]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{days}: {err}");
        assert!(err.contains("too many days"), "{days}: {err}");
    }
    assert!(s.home.join("downloads/aa.tar.xz").exists());
    assert!(s.home.join("builds/5.10.46-a-b/build.json").exists());
    s.assert_outside_unchanged();
}

/// Makes a file undeletable for the test's life (immutable as root, else a read-only
/// parent folder), and undoes it on drop.
struct Stuck(PathBuf, bool);
impl Stuck {
    fn new(file: &Path) -> Stuck {
        if is_root() {
            let ok = Command::new("chattr").arg("+i").arg(file).status();
            assert!(
                ok.is_ok_and(|s| s.success()),
                "chattr +i (ext4 or similar needed)"
            );
            Stuck(file.to_owned(), true)
        } else {
            use std::os::unix::fs::PermissionsExt;
            let dir = file.parent().unwrap();
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
            Stuck(dir.to_owned(), false)
        }
    }
}
impl Drop for Stuck {
    fn drop(&mut self) {
        if self.1 {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
        }
    }
}

#[test]
fn one_failed_delete_does_not_stop_the_prune() {
    let s = Scene::new();
    put(&s.home.join("builds/5.10.46-a-b/obj/stuck.o"), "x");
    put(&s.home.join("downloads/aa.tar.xz"), "tarball");
    put(&s.home.join("runs/20250101-5.10/results.json"), "{}");
    put(&s.home.join("src/linux-5.10.46-abcdef12/Makefile"), "x");
    let _stuck = Stuck::new(&s.home.join("builds/5.10.46-a-b/obj/stuck.o"));
    let out = run(&s.home, &["cache", "prune", "--all"]);
    let (o, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{o}{err}");
    assert!(
        err.contains("cannot remove") && err.contains("5.10.46-a-b"),
        "{err}"
    );
    assert!(o.contains("FAILED") && o.contains("1 failed"), "{o}");
    // Builds come before runs and after downloads and src: all the others went.
    for gone in [
        "downloads/aa.tar.xz",
        "runs/20250101-5.10",
        "src/linux-5.10.46-abcdef12",
    ] {
        assert!(!s.home.join(gone).exists(), "{gone} was pruned: {o}");
    }
    s.assert_outside_unchanged();
}

#[test]
fn prune_and_dry_run_skip_entries_whose_writer_holds_the_lock() {
    let s = Scene::new();
    let home = Home::new(&s.home);
    let build = "5.10.46-aabbccdd-11223344";
    let run_name = "1700000000-5.10.46";
    put(
        &s.home.join(format!("builds/{build}/obj/vmlinux.o")),
        "half",
    );
    put(
        &s.home.join(format!("runs/{run_name}/console.log")),
        "booting",
    );
    put(&s.home.join("guests/0123456789abcdef.cpio"), "img");
    put(
        &s.home.join("configs/.work/5.10.46-0a0b0c0d/.config"),
        "CONFIG_BPF=y\n",
    );
    put(&s.home.join("examples/abcd/bin/hello"), "elf");
    put(&s.home.join("downloads/aa.tar.xz"), "tarball");
    // The keys the build pipeline, the suite runner, the guest image writer, kconfig
    // and the examples build take while they write.
    let held = [
        home.lock(&CacheKey::Build(build.into())).unwrap(),
        home.lock(&CacheKey::Run(run_name.into())).unwrap(),
        home.lock(&CacheKey::Guest("0123456789abcdef".into()))
            .unwrap(),
        home.lock(&CacheKey::ConfigWork("5.10.46-0a0b0c0d".into()))
            .unwrap(),
        home.lock(&CacheKey::Examples).unwrap(),
    ];
    let busy = [
        format!("builds/{build}"),
        format!("runs/{run_name}"),
        "guests/0123456789abcdef.cpio".into(),
        "configs/.work/5.10.46-0a0b0c0d".into(),
        "examples/abcd".into(),
    ];
    let out = run(&s.home, &["cache", "prune", "--all", "--dry-run"]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}{}", text(&out.stderr));
    for b in &busy {
        let name = b.rsplit_once('/').unwrap().1;
        let line = o
            .lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("{b} listed: {o}"));
        assert!(
            line.starts_with("in use, kept"),
            "dry run lists {b} as removable: {o}"
        );
    }
    assert!(o.contains("would remove downloads"), "{o}");
    let out = run(&s.home, &["cache", "prune", "--all"]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}{}", text(&out.stderr));
    for b in &busy {
        assert!(
            s.home.join(b).exists(),
            "{b} was deleted while its writer held the lock"
        );
    }
    assert!(!s.home.join("downloads/aa.tar.xz").exists());
    drop(held);
    let out = run(&s.home, &["cache", "prune", "--all"]);
    assert_eq!(out.status.code(), Some(0));
    for b in &busy {
        assert!(!s.home.join(b).exists(), "{b} goes once the writer is done");
    }
    s.assert_outside_unchanged();
}

/// A bind mount undone on drop.
struct Bind(PathBuf);
impl Drop for Bind {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn prune_keeps_a_toolchain_root_with_a_mount_inside_and_one_whose_lock_is_held() {
    let s = Scene::new();
    let home = Home::new(&s.home);
    let mounted = s.home.join("toolchains/bookworm-aaaa/root");
    put(&mounted.join("usr/bin/gcc"), "elf");
    std::fs::create_dir_all(mounted.join(s.canary.strip_prefix("/").unwrap())).unwrap();
    put(
        &s.home.join("toolchains/bullseye-bbbb/root/usr/bin/gcc"),
        "elf",
    );
    put(
        &s.home.join("toolchains/trixie-cccc/root/usr/bin/gcc"),
        "elf",
    );
    put(&s.home.join("toolchains/tarballs/bookworm-aaaa.tar"), "tar");
    let _bind = if is_root() {
        // As a toolchain session does: a host folder bind-mounted inside the root.
        let target = mounted.join(s.canary.strip_prefix("/").unwrap());
        let ok = Command::new("mount")
            .arg("--bind")
            .arg(&s.canary)
            .arg(&target)
            .status();
        assert!(ok.is_ok_and(|st| st.success()), "mount --bind");
        Some(Bind(target))
    } else {
        eprintln!("not root: the mount half of this case is not exercised");
        None
    };
    let held = home
        .lock(&CacheKey::Toolchain("bullseye-bbbb".into()))
        .unwrap();
    let out = run(&s.home, &["cache", "prune", "--kind", "toolchains"]);
    let (o, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{o}{err}");
    if _bind.is_some() {
        assert!(err.contains("mounted at or below it"), "{err}");
        assert!(
            mounted.join("usr/bin/gcc").exists(),
            "the mounted root stays"
        );
    }
    assert!(
        s.home
            .join("toolchains/bullseye-bbbb/root/usr/bin/gcc")
            .exists(),
        "locked root stays"
    );
    assert!(
        !s.home.join("toolchains/trixie-cccc").exists(),
        "an idle root goes: {o}"
    );
    assert!(
        s.home
            .join("toolchains/tarballs/bookworm-aaaa.tar")
            .exists(),
        "tarballs are not entries"
    );
    drop(held);
    drop(_bind);
    s.assert_outside_unchanged();
}
