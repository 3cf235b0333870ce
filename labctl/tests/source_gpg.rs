//! kernel.org's signature check: a throwaway key signs a kernel.org-layout
//! sha256sums.asc served from the loopback server; gpgv must accept it with the key's
//! keyring, reject a tampered copy, and labctl must say plainly when it only checked the
//! checksum. Needs gpg (package gnupg) to make the key, gpgv to check it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use labctl::events::NullSink;
use labctl::source::{self, FetchOptions, NetOptions, SourceError, SourceSpec};
use labctl::Home;

#[test]
fn kernel_org_signature_is_checked_with_gpgv_when_a_keyring_is_given() {
    let d = tempfile::tempdir().unwrap();
    let gh = d.path().join("gnupg");
    std::fs::create_dir(&gh).unwrap();
    std::fs::set_permissions(&gh, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    gpg(
        &gh,
        &[
            "--quick-gen-key",
            "labctl test <test@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ],
    );
    let keyring = d.path().join("kernel.org.gpg");
    std::fs::write(&keyring, gpg(&gh, &["--export"])).unwrap();

    let server = TestServer::start();
    let (base, tarballs) = kernel_org_mirror(&server, &["5.10.46"], 1000);
    let sums = format!(
        "{}  linux-5.10.46.tar.xz\n",
        sha256_hex(&tarballs["5.10.46"])
    );
    let plain = d.path().join("sums");
    std::fs::write(&plain, &sums).unwrap();
    let signed = gpg(
        &gh,
        &["--clearsign", "--output", "-", plain.to_str().unwrap()],
    );
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &gh)
        .args(["--kill", "gpg-agent"])
        .status();
    server.add("/kernel/v5.x/sha256sums.asc", signed.clone());

    let net = NetOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
        retries: 1,
        backoff: Duration::from_millis(10),
    };
    let with_key = FetchOptions {
        kernel_org_base: Some(base.clone()),
        kernel_org_keyring: Some(keyring.clone()),
        net: Some(net.clone()),
        ..Default::default()
    };
    let home = Home::new(d.path().join("home"));
    let t = source::fetch(
        &home,
        &"5.10.46".parse().unwrap(),
        &SourceSpec::KernelOrg,
        &with_key,
        &NullSink,
    )
    .unwrap();
    assert!(
        t.verified.contains("signature checked with gpgv"),
        "{}",
        t.verified
    );

    // Without a keyring: said plainly.
    let home2 = Home::new(d.path().join("home2"));
    let no_key = FetchOptions {
        kernel_org_keyring: None,
        ..with_key.clone()
    };
    let t = source::fetch(
        &home2,
        &"5.10.46".parse().unwrap(),
        &SourceSpec::KernelOrg,
        &no_key,
        &NullSink,
    )
    .unwrap();
    assert!(
        t.verified
            .contains("checksum only, signature not checked (no kernel.org keyring"),
        "{}",
        t.verified
    );

    // A tampered checksum line breaks the signature: an error, nothing extracted.
    let real = sha256_hex(&tarballs["5.10.46"]);
    let forged = format!(
        "{}{}",
        if real.starts_with('0') { "1" } else { "0" },
        &real[1..]
    );
    let tampered = String::from_utf8(signed)
        .unwrap()
        .replacen(&real, &forged, 1);
    server.add("/kernel/v5.x/sha256sums.asc", tampered);
    let home3 = Home::new(d.path().join("home3"));
    let e = source::fetch(
        &home3,
        &"5.10.46".parse().unwrap(),
        &SourceSpec::KernelOrg,
        &with_key,
        &NullSink,
    )
    .unwrap_err();
    assert!(matches!(e, SourceError::Signature { .. }), "{e:?}");
    assert!(files_under(&home3.src()).is_empty() && files_under(&home3.downloads()).is_empty());

    // An unsigned file while a keyring was given: refused.
    server.add("/kernel/v5.x/sha256sums.asc", sums);
    let e = source::fetch(
        &home3,
        &"5.10.46".parse().unwrap(),
        &SourceSpec::KernelOrg,
        &with_key,
        &NullSink,
    )
    .unwrap_err();
    assert!(e.to_string().contains("not clearsigned"), "{e}");
}
