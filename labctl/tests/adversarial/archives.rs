//! Crafted archives and indexes: symlink chains that only escape in the final tree,
//! setuid and world-writable modes, labctl's own metadata name shipped in the archive,
//! oversized GNU long-name and PAX members, an xz bomb for a Debian `Sources` index,
//! and a `Directory:` that leaves the archive base.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::common::{makefile, sha256_hex, xz, TestServer};
use crate::kit::{labctl, run, text, Scene};

const V: &str = "5.10.46";

/// A tar stream written header by header (paths and link names verbatim).
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        let mut t = Tar(tar::Builder::new(Vec::new()));
        t.dir(&format!("linux-{V}/"));
        t.file(
            &format!("linux-{V}/Makefile"),
            makefile(V).as_bytes(),
            0o644,
        );
        t
    }
    fn raw(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        data: &[u8],
        link: Option<&str>,
        mode: u32,
    ) {
        let mut h = tar::Header::new_gnu();
        {
            let name = &mut h.as_old_mut().name;
            name.fill(0);
            let n = path.len().min(100);
            name[..n].copy_from_slice(&path.as_bytes()[..n]);
        }
        if let Some(l) = link {
            let ln = &mut h.as_old_mut().linkname;
            ln.fill(0);
            ln[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
    }
    fn file(&mut self, p: &str, d: &[u8], mode: u32) {
        self.raw(p, tar::EntryType::Regular, d, None, mode);
    }
    fn dir(&mut self, p: &str) {
        self.raw(p, tar::EntryType::Directory, &[], None, 0o755);
    }
    fn symlink(&mut self, p: &str, target: &str) {
        self.raw(p, tar::EntryType::Symlink, &[], Some(target), 0o777);
    }
    fn finish(self) -> Vec<u8> {
        xz(&self.0.into_inner().unwrap())
    }
}

/// One PAX record: `<len> <key>=<value>\n`, where len counts itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut n = body.len() + 1;
    while format!("{n}{body}").len() != n {
        n += 1;
    }
    format!("{n}{body}").into_bytes()
}

/// Write the archive as `in/linux-<V>.tar.xz` and `kernel fetch` it.
fn fetch_local(s: &Scene, archive: &[u8]) -> std::process::Output {
    let p = s.input.join(format!("linux-{V}.tar.xz"));
    std::fs::write(&p, archive).unwrap();
    run(
        &s.home,
        &["kernel", "fetch", V, "--source", p.to_str().unwrap()],
    )
}

fn refused(s: &Scene, out: &std::process::Output, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    s.assert_nothing_unverified();
    s.assert_outside_unchanged();
}

fn the_tree(s: &Scene) -> PathBuf {
    let src = s.home.join("src");
    let trees: Vec<_> = std::fs::read_dir(&src).unwrap().flatten().collect();
    assert_eq!(trees.len(), 1, "one tree");
    trees[0].path()
}

#[test]
fn a_symlink_that_escapes_only_through_a_later_link_is_refused() {
    let s = Scene::new();
    let mut t = Tar::new();
    let top = format!("linux-{V}");
    // Created first, checked alone it stays inside: d1/d2/d3/d4/p/../../.. is d1 lexically.
    t.symlink(&format!("{top}/esc"), "d1/d2/d3/d4/p/../../../canary");
    for d in ["d1/", "d1/d2/", "d1/d2/d3/", "d1/d2/d3/d4/"] {
        t.dir(&format!("{top}/{d}"));
    }
    // Then p becomes the tree's top: esc now leads three levels above it.
    t.symlink(&format!("{top}/d1/d2/d3/d4/p"), "../../../..");
    let out = fetch_local(&s, &t.finish());
    refused(&s, &out, "leads outside the tree");
}

#[test]
fn a_link_to_a_link_that_escapes_is_refused() {
    let s = Scene::new();
    let mut t = Tar::new();
    let top = format!("linux-{V}");
    // esc -> hop -> d1/d2/p/../.. ; each checked alone stays inside, until p -> ../..
    // (the top) arrives: then hop, and esc through it, lead two levels above the top.
    t.symlink(&format!("{top}/esc"), "hop");
    t.symlink(&format!("{top}/hop"), "d1/d2/p/../..");
    t.dir(&format!("{top}/d1/"));
    t.dir(&format!("{top}/d1/d2/"));
    t.symlink(&format!("{top}/d1/d2/p"), "../..");
    let out = fetch_local(&s, &t.finish());
    refused(&s, &out, "leads outside the tree");
}

#[test]
fn setuid_setgid_sticky_and_world_writable_modes_are_masked() {
    let s = Scene::new();
    let mut t = Tar::new();
    let top = format!("linux-{V}");
    t.raw(
        &format!("{top}/wide/"),
        tar::EntryType::Directory,
        &[],
        None,
        0o3777,
    );
    t.file(&format!("{top}/wide/suid"), b"#!/bin/sh\n", 0o4777);
    t.file(&format!("{top}/sgid"), b"x", 0o2755);
    t.file(&format!("{top}/plain"), b"x", 0o666);
    let out = fetch_local(&s, &t.finish());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let tree = the_tree(&s);
    for (p, want) in [
        ("wide", 0o755),
        ("wide/suid", 0o755),
        ("sgid", 0o755),
        ("plain", 0o644),
    ] {
        let mode = std::fs::metadata(tree.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(mode, want, "{p}: mode {mode:o}");
    }
    s.assert_outside_unchanged();
}

#[test]
fn the_metadata_name_in_the_archive_is_refused_and_never_written_through() {
    let s = Scene::new();
    let mut t = Tar::new();
    let top = format!("linux-{V}");
    // With the later-link trick this resolves to <scratch>/canary/victim.
    t.symlink(
        &format!("{top}/.labctl-source.json"),
        "d1/d2/d3/d4/p/../../../canary/victim",
    );
    for d in ["d1/", "d1/d2/", "d1/d2/d3/", "d1/d2/d3/d4/"] {
        t.dir(&format!("{top}/{d}"));
    }
    t.symlink(&format!("{top}/d1/d2/d3/d4/p"), "../../../..");
    let out = fetch_local(&s, &t.finish());
    refused(&s, &out, "reserves for its own metadata");

    // A plain file of that name (a forged "verified" record) is refused too.
    let s = Scene::new();
    let mut t = Tar::new();
    t.file(
        &format!("{top}/.labctl-source.json"),
        b"{\"forged\":true}",
        0o644,
    );
    let out = fetch_local(&s, &t.finish());
    refused(&s, &out, "reserves for its own metadata");
}

#[test]
fn an_oversized_gnu_long_name_is_refused_before_it_is_read() {
    let s = Scene::new();
    let mut t = Tar::new();
    let name = format!("linux-{V}/{}\0", "a".repeat(8 << 20));
    t.raw(
        "././@LongLink",
        tar::EntryType::GNULongName,
        name.as_bytes(),
        None,
        0o644,
    );
    t.file("linux-5.10.46/short", b"x", 0o644);
    let out = fetch_local(&s, &t.finish());
    refused(
        &s,
        &out,
        "GNU long-name header of 8.0 MiB (the limit is 64.0 KiB)",
    );
}

#[test]
fn an_oversized_pax_header_is_refused() {
    let s = Scene::new();
    let mut t = Tar::new();
    let rec = pax_record("path", &format!("linux-{V}/{}", "b".repeat(2 << 20)));
    t.raw("pax", tar::EntryType::XHeader, &rec, None, 0o644);
    t.file("linux-5.10.46/short", b"x", 0o644);
    let out = fetch_local(&s, &t.finish());
    refused(&s, &out, "PAX header of 2.0 MiB (the limit is 1.0 MiB)");
}

#[test]
fn long_names_within_the_limits_still_extract() {
    let s = Scene::new();
    let mut t = Tar::new();
    let long_dir = "d".repeat(120);
    let gnu = format!("linux-{V}/{long_dir}/gnu-file");
    t.raw(
        "././@LongLink",
        tar::EntryType::GNULongName,
        format!("{gnu}\0").as_bytes(),
        None,
        0o644,
    );
    t.file(&gnu[..100], b"gnu", 0o644);
    let pax = format!("linux-{V}/{long_dir}/pax-file");
    let mut rec = pax_record("comment", "a commit id");
    rec.extend(pax_record("path", &pax));
    t.raw("pax", tar::EntryType::XHeader, &rec, None, 0o644);
    t.file(&pax[..100], b"pax", 0o644);
    t.raw(
        "pax-link",
        tar::EntryType::XHeader,
        &pax_record("linkpath", &format!("{long_dir}/gnu-file")),
        None,
        0o644,
    );
    t.symlink(&format!("linux-{V}/to-gnu"), "short-name-ignored");
    let out = fetch_local(&s, &t.finish());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let tree = the_tree(&s);
    assert_eq!(
        std::fs::read(tree.join(&long_dir).join("gnu-file")).unwrap(),
        b"gnu"
    );
    assert_eq!(
        std::fs::read(tree.join(&long_dir).join("pax-file")).unwrap(),
        b"pax"
    );
    assert_eq!(std::fs::read(tree.join("to-gnu")).unwrap(), b"gnu");
    s.assert_outside_unchanged();
}

/// A Debian archive whose bookworm index is `sources` (xz-compressed) and which serves
/// the 5.10.46 tarball at `tarball_at`.
fn debian(server: &TestServer, sources: &[u8], tarball_at: &str, tarball: &[u8]) -> String {
    server.add("/debian/dists/bookworm/main/source/Sources.xz", xz(sources));
    server.add(tarball_at, tarball.to_vec());
    server.url("/debian")
}

fn paragraph(dir: &str, tarball: &[u8]) -> String {
    format!(
        "Package: linux\nVersion: {V}-1\nDirectory: {dir}\nChecksums-Sha256:\n {} {} linux_{V}.orig.tar.xz\n\n",
        sha256_hex(tarball),
        tarball.len()
    )
}

/// The loopback mirror publishes no InRelease: these cases are about the index's
/// contents, so they take the unsigned opt-out (signatures.rs covers the signatures).
fn fetch_debian(s: &Scene, base: &str) -> std::process::Output {
    labctl(
        &s.home,
        &[
            "kernel",
            "fetch",
            V,
            "--source",
            "debian",
            "--debian-url",
            base,
            "--debian-security-url",
            base,
            "--debian-suites",
            "bookworm",
        ],
    )
    .env("LABCTL_ALLOW_UNSIGNED", "true")
    .output()
    .expect("run labctl")
}

#[test]
fn a_directory_field_that_leaves_the_archive_base_is_refused() {
    for dir in [
        "../outside/pool",
        "/outside/pool",
        "pool/../../outside/pool",
    ] {
        let s = Scene::new();
        let server = TestServer::start();
        let tb = crate::common::kernel_tarball(V, 1000);
        // Where a client that follows the `..` would end up (URLs collapse dot segments).
        let base = debian(
            &server,
            paragraph(dir, &tb).as_bytes(),
            &format!("/outside/pool/linux_{V}.orig.tar.xz"),
            &tb,
        );
        let out = fetch_debian(&s, &base);
        refused(&s, &out, "leaves the archive base");
        assert!(
            server
                .requests()
                .iter()
                .all(|r| !r.path.contains("outside")),
            "{dir}: nothing outside the base was requested"
        );
    }
}

#[test]
fn an_xz_bomb_for_a_sources_index_is_refused_with_its_limit() {
    let s = Scene::new();
    let server = TestServer::start();
    let tb = crate::common::kernel_tarball(V, 1000);
    let mut text_ = paragraph("pool/main/l/linux", &tb).into_bytes();
    // Blank lines compress to almost nothing; 257 MiB of them is over the 256 MiB cap.
    text_.resize(text_.len() + (257 << 20), b'\n');
    let base = debian(
        &server,
        &text_,
        &format!("/debian/pool/main/l/linux/linux_{V}.orig.tar.xz"),
        &tb,
    );
    drop(text_);
    let out = fetch_debian(&s, &base);
    refused(&s, &out, "decompresses to more than 256.0 MiB");
}
