//! Signatures: only signed text is trusted (kernel.org's sha256sums.asc), Debian's
//! InRelease chain (signature → Sources.xz → tarball), refusals without an opt-out, the
//! Valid-Until policy, and what is recorded about each fetch.

use super::*;

fn home_trust(home: &Path) -> serde_json::Value {
    let src = home.join("src");
    let tree = std::fs::read_dir(&src)
        .unwrap()
        .flatten()
        .find(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .expect("a tree")
        .path();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tree.join(".labctl-source.json")).unwrap()).unwrap();
    meta["trust"].clone()
}

/// A kernel.org mirror whose sha256sums.asc is really signed by the archive key, with
/// `outside` placed before (or after) the signed block. Returns (server, base, evil
/// tarball's sha).
fn kernel_org_with_outside_line(before: bool) -> (TestServer, String, String) {
    let server = TestServer::start();
    let (base, tarballs) = kernel_org_mirror(&server, &["5.10.46"], 1000);
    let real = sha256_hex(&tarballs["5.10.46"]);
    let signed = clearsign(
        &keys().0,
        format!("{real}  linux-5.10.46.tar.xz\n").as_bytes(),
    );
    // The attacker swaps in another (well-formed) tarball and a line naming its sha.
    let evil = kernel_tarball("5.10.46", 1001);
    let evil_sha = sha256_hex(&evil);
    server.add("/kernel/v5.x/linux-5.10.46.tar.xz", evil);
    let line = format!("{evil_sha}  linux-5.10.46.tar.xz\n");
    let body = if before {
        [line.as_bytes(), &signed].concat()
    } else {
        [&signed[..], b"\n", line.as_bytes()].concat()
    };
    server.add("/kernel/v5.x/sha256sums.asc", body);
    (server, base, evil_sha)
}

#[test]
fn kernel_org_checksum_lines_outside_the_signed_block_are_refused() {
    for before in [true, false] {
        let (server, base, _) = kernel_org_with_outside_line(before);
        let d = tempfile::tempdir().unwrap();
        let out = run(
            d.path(),
            &[
                "kernel",
                "fetch",
                "5.10.46",
                "--source",
                "kernel.org",
                "--kernel-org-url",
                &base,
                "--kernel-org-keyring",
                keys().0.keyring.to_str().unwrap(),
            ],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "before={before}: {err}");
        assert!(
            err.contains("must start with") || err.contains("after the signature"),
            "{err}"
        );
        assert!(
            unverified_files(d.path()).is_empty(),
            "{:?}",
            files_under(d.path())
        );
        assert!(server.hits("/kernel/v5.x/linux-5.10.46.tar.xz").is_empty());
    }
}

#[test]
fn kernel_org_without_a_keyring_says_so_and_require_signature_refuses() {
    let server = TestServer::start();
    let (base, _) = kernel_org_mirror(&server, &["5.10.46"], 1000);
    let d = tempfile::tempdir().unwrap();
    let args = [
        "kernel",
        "fetch",
        "5.10.46",
        "--source",
        "kernel.org",
        "--kernel-org-url",
        &base,
    ];
    let out = run(d.path(), &[&args[..], &["--require-signature"]].concat());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--require-signature") && err.contains("no kernel.org keyring"),
        "{err}"
    );
    assert!(unverified_files(d.path()).is_empty());
    // Without the flag: used, and said plainly.
    let out = run(d.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("trust: NOT authenticated (no kernel.org keyring"));
    assert_eq!(home_trust(d.path())["authenticated"], false);
}

fn one_suite_mirror() -> (TestServer, String, String) {
    let server = TestServer::start();
    let (a, s, _) = debian_mirror(
        &server,
        &["bookworm"],
        &[DebEntry::new("bookworm", "6.1.4")],
        1000,
    );
    (server, a, s)
}

fn fetch_deb(home: &Path, a: &str, s: &str, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec!["kernel".into(), "fetch".into(), "6.1.4".into()];
    args.extend(deb_args(a, s, "bookworm"));
    args.extend(extra.iter().map(|x| x.to_string()));
    let refs: Vec<&str> = args.iter().map(|x| x.as_str()).collect();
    run(home, &refs)
}

#[test]
fn debian_signed_chain_is_verified_and_recorded() {
    let (server, a, s) = one_suite_mirror();
    let key = &keys().0;
    publish_inrelease(&server, "bookworm", key, None, None);
    let d = tempfile::tempdir().unwrap();
    let out = fetch_deb(
        d.path(),
        &a,
        &s,
        &["--debian-keyring", key.keyring.to_str().unwrap()],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("signature checked with gpgv"), "{stdout}");
    assert!(stdout.contains(&key.fingerprint), "{stdout}");
    assert!(stdout.contains(key.keyring.to_str().unwrap()), "{stdout}");
    let t = home_trust(d.path());
    assert_eq!(t["authenticated"], true);
    assert_eq!(t["fingerprint"], key.fingerprint.as_str());
    assert!(t["signed_file"]
        .as_str()
        .unwrap()
        .ends_with("/dists/bookworm/InRelease"));
}

#[test]
fn debian_without_inrelease_is_refused_unless_allowed() {
    let (_server, a, s) = one_suite_mirror();
    let d = tempfile::tempdir().unwrap();
    let k = keys().0.keyring.to_str().unwrap();
    let out = fetch_deb(d.path(), &a, &s, &["--debian-keyring", k]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not signed"), "{err}");
    assert!(
        unverified_files(d.path()).is_empty(),
        "{:?}",
        files_under(d.path())
    );
    assert!(files_under(&d.path().join("indexes")).is_empty());
    // The opt-out: used, recorded as not authenticated.
    let out = fetch_deb(
        d.path(),
        &a,
        &s,
        &["--debian-keyring", k, "--allow-unsigned"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("NOT authenticated"));
    assert_eq!(home_trust(d.path())["authenticated"], false);
}

#[test]
fn debian_bad_or_foreign_signatures_are_refused() {
    let k = keys().0.keyring.to_str().unwrap();
    // Signed by a key not in the keyring.
    let (server, a, s) = one_suite_mirror();
    publish_inrelease(&server, "bookworm", &keys().1, None, None);
    let d = tempfile::tempdir().unwrap();
    let out = fetch_deb(d.path(), &a, &s, &["--debian-keyring", k]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("none of the keyrings"), "{err}");
    assert!(unverified_files(d.path()).is_empty());
    // Signed by the right key, then edited: a BAD signature.
    let signed = publish_inrelease(&server, "bookworm", &keys().0, None, None);
    let tampered = text(&signed).replace("Label: Debian", "Label: Debiam");
    server.add("/debian/dists/bookworm/InRelease", tampered);
    let out = fetch_deb(d.path(), &a, &s, &["--debian-keyring", k]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("BAD signature"), "{err}");
    assert!(unverified_files(d.path()).is_empty());
    assert!(server
        .hits("/debian/pool/main/l/linux/linux_6.1.4.orig.tar.xz")
        .is_empty());
}

#[test]
fn debian_index_not_matching_the_signed_release_is_refused() {
    let (server, a, s) = one_suite_mirror();
    publish_inrelease(&server, "bookworm", &keys().0, None, Some(&"cd".repeat(32)));
    let d = tempfile::tempdir().unwrap();
    let out = fetch_deb(
        d.path(),
        &a,
        &s,
        &["--debian-keyring", keys().0.keyring.to_str().unwrap()],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("its signed Release says"), "{err}");
    assert!(unverified_files(d.path()).is_empty());
    assert!(files_under(&d.path().join("indexes")).is_empty());
}

#[test]
fn expired_valid_until_warns_with_the_date_and_require_fresh_refuses() {
    let (server, a, s) = one_suite_mirror();
    let until = "Fri, 06 Nov 2020 08:08:01 UTC";
    publish_inrelease(&server, "bookworm", &keys().0, Some(until), None);
    let k = keys().0.keyring.to_str().unwrap();
    let d = tempfile::tempdir().unwrap();
    let out = fetch_deb(
        d.path(),
        &a,
        &s,
        &["--debian-keyring", k, "--require-fresh"],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(until) && err.contains("--require-fresh"),
        "{err}"
    );
    assert!(unverified_files(d.path()).is_empty());
    let out = fetch_deb(d.path(), &a, &s, &["--debian-keyring", k]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("expired on {until}")), "{err}");
    let t = home_trust(d.path());
    assert_eq!(t["authenticated"], true);
    assert_eq!(t["expired"], true);
    assert_eq!(t["valid_until"], until);
}
