//! `labctl::source::fetch` against loopback kernel.org- and Debian-layout mirrors built
//! from small synthetic tarballs: series resolution, auto fallback, resume, checksum and
//! size mismatches, 404s, stalls, malicious tarballs, concurrency, the disk-space check,
//! and "no network I/O on a warm fetch".

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use labctl::events::{Event, Level, NullSink, VecSink};
use labctl::source::{self, FetchOptions, NetOptions, SourceError, SourceSpec};
use labctl::{Home, KernelVersion, VersionReq};

fn quick_net() -> NetOptions {
    NetOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(800),
        retries: 2,
        backoff: Duration::from_millis(20),
    }
}

fn deb_opts(archive: &str, security: &str, suites: &[&str]) -> FetchOptions {
    FetchOptions {
        debian_bases: vec![archive.to_string()],
        debian_security_bases: vec![security.to_string()],
        debian_suites: suites.iter().map(|s| s.to_string()).collect(),
        kernel_org_base: Some("http://127.0.0.1:1/kernel".into()), // nothing listens on port 1
        net: Some(quick_net()),
        // These loopback mirrors publish no InRelease (tests/adversarial/ signs them).
        allow_unsigned: true,
        ..Default::default()
    }
}

fn req(s: &str) -> VersionReq {
    s.parse().unwrap()
}

fn assert_nothing_cached(home: &Home) {
    let dl = files_under(&home.downloads());
    assert!(dl.is_empty(), "downloads should be empty: {dl:?}");
    let src = files_under(&home.src());
    assert!(src.is_empty(), "src should be empty: {src:?}");
}

const SUITES: [&str; 3] = ["bullseye", "bullseye-security", "bookworm"];

fn std_debian(server: &TestServer) -> (String, String) {
    let (a, s, _) = debian_mirror(
        server,
        &SUITES,
        &[
            DebEntry::new("bullseye", "5.10.13"),
            DebEntry::new("bullseye", "5.10.46"),
            DebEntry::new("bullseye-security", "5.10.251"),
            DebEntry::new("bookworm", "6.1.4"),
        ],
        2000,
    );
    (a, s)
}

#[test]
fn debian_series_resolves_to_the_newest_and_verifies() {
    let server = TestServer::start();
    let (a, s) = std_debian(&server);
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let t = source::fetch(
        &home,
        &req("5.10"),
        &SourceSpec::Debian,
        &deb_opts(&a, &s, &SUITES),
        &NullSink,
    )
    .unwrap();
    assert_eq!(t.version, KernelVersion::new(5, 10, 251));
    assert_eq!(t.source, "debian bullseye-security");
    assert!(
        t.url
            .ends_with("/debian-security/pool/updates/main/l/linux/linux_5.10.251.orig.tar.xz"),
        "{}",
        t.url
    );
    assert_eq!(
        source::makefile_version(&t.path),
        Some(KernelVersion::new(5, 10, 251))
    );
    assert!(t.path.join("kernel/bpf.c").is_file());
    assert_eq!(
        std::fs::read_link(t.path.join("scripts/readme-link")).unwrap(),
        Path::new("../README")
    );
    assert_eq!(
        t.path,
        home.src()
            .join(format!("linux-5.10.251-{}", &t.sha256[..8]))
    );
    assert!(home
        .downloads()
        .join(format!("{}.tar.xz", t.sha256))
        .is_file());
    assert!(t.verified.contains("bullseye-security"), "{}", t.verified);
    // An exact older version comes from its own suite.
    let t2 = source::fetch(
        &home,
        &req("v5.10.46"),
        &SourceSpec::Debian,
        &deb_opts(&a, &s, &SUITES),
        &NullSink,
    )
    .unwrap();
    assert_eq!(t2.source, "debian bullseye");
    assert_eq!(source::local_trees(&home).len(), 2);
}

#[test]
fn kernel_org_series_and_exact_with_checksum_only_notice() {
    let server = TestServer::start();
    let (base, tarballs) = kernel_org_mirror(&server, &["5.10", "5.10.9", "5.10.46"], 1000);
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let opts = FetchOptions {
        kernel_org_base: Some(base.clone()),
        net: Some(quick_net()),
        ..Default::default()
    };
    let t = source::fetch(
        &home,
        &req("5.10"),
        &SourceSpec::KernelOrg,
        &opts,
        &NullSink,
    )
    .unwrap();
    assert_eq!(t.version, KernelVersion::new(5, 10, 46));
    assert_eq!(t.sha256, sha256_hex(&tarballs["5.10.46"]));
    assert_eq!(t.source, "kernel.org");
    assert!(
        t.verified
            .contains("checksum only, signature not checked ("),
        "{}",
        t.verified
    );
    let t0 = source::fetch(
        &home,
        &req("5.10.9"),
        &SourceSpec::KernelOrg,
        &opts,
        &NullSink,
    )
    .unwrap();
    assert_eq!(t0.version, KernelVersion::new(5, 10, 9));
    let e = source::fetch(
        &home,
        &req("5.10.47"),
        &SourceSpec::KernelOrg,
        &opts,
        &NullSink,
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, SourceError::NotFound { .. }), "{e:?}");
    assert!(
        msg.contains("kernel.org: has no 5.10.47")
            && msg.contains("nearest versions that exist: ")
            && msg.contains("5.10.46"),
        "{msg}"
    );
}

#[test]
fn auto_falls_back_to_debian_quickly_with_one_line_for_kernel_org() {
    let server = TestServer::start();
    let (a, s) = std_debian(&server);
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let sink = VecSink::default();
    let start = Instant::now();
    let t = source::fetch(
        &home,
        &req("6.1"),
        &SourceSpec::Auto,
        &deb_opts(&a, &s, &SUITES),
        &sink,
    )
    .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "fallback took {:?}",
        start.elapsed()
    );
    assert_eq!(t.version, KernelVersion::new(6, 1, 4));
    assert_eq!(t.source, "debian bookworm");
    let warns: Vec<String> = sink
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message {
                level: Level::Warn,
                text,
            } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(
        warns[0].starts_with("kernel.org: ") && !warns[0].contains('\n'),
        "{warns:?}"
    );
}

#[test]
fn auto_not_found_lists_every_source_and_nearest_versions() {
    let server = TestServer::start();
    let (a, s) = std_debian(&server);
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let e = source::fetch(
        &home,
        &req("5.10.50"),
        &SourceSpec::Auto,
        &deb_opts(&a, &s, &SUITES),
        &NullSink,
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("\n  kernel.org: ") && msg.contains("\n  debian: has no 5.10.50"),
        "{msg}"
    );
    assert!(
        msg.contains("nearest versions that exist: 5.10.13, 5.10.46, 5.10.251"),
        "{msg}"
    );
    assert_nothing_cached(&home);
}

#[test]
fn resumes_after_the_server_cuts_the_transfer() {
    let server = TestServer::start();
    let pad = 400_000;
    let (a, s, tarballs) = debian_mirror(
        &server,
        &SUITES,
        &[DebEntry {
            behavior: Behavior::CutOnce(150_000),
            ..DebEntry::new("bullseye", "5.10.46")
        }],
        pad,
    );
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let t = source::fetch(
        &home,
        &req("5.10.46"),
        &SourceSpec::Debian,
        &deb_opts(&a, &s, &SUITES),
        &NullSink,
    )
    .unwrap();
    assert_eq!(t.sha256, sha256_hex(&tarballs["5.10.46"]));
    let hits = server.hits(&deb_path("bullseye", "5.10.46"));
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0].range, None);
    let r = hits[1]
        .range
        .as_deref()
        .expect("second request resumes with Range");
    let from: u64 = r
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(from > 0 && from <= 150_000, "resumed from {from}");
    assert!(!files_under(&home.downloads())
        .iter()
        .any(|f| f.ends_with(".part")));
}

#[test]
fn resumes_a_part_file_left_by_an_earlier_run() {
    let server = TestServer::start();
    let (a, s, tarballs) = debian_mirror(
        &server,
        &SUITES,
        &[DebEntry::new("bullseye", "5.10.46")],
        100_000,
    );
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let tb = &tarballs["5.10.46"];
    let sha = sha256_hex(tb);
    std::fs::create_dir_all(home.downloads()).unwrap();
    std::fs::write(
        home.downloads().join(format!("{sha}.tar.xz.part")),
        &tb[..tb.len() / 3],
    )
    .unwrap();
    source::fetch(
        &home,
        &req("5.10.46"),
        &SourceSpec::Debian,
        &deb_opts(&a, &s, &SUITES),
        &NullSink,
    )
    .unwrap();
    let hits = server.hits(&deb_path("bullseye", "5.10.46"));
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].range.as_deref(),
        Some(format!("bytes={}-", tb.len() / 3).as_str())
    );
}

#[test]
fn checksum_mismatch_names_both_hashes_and_leaves_nothing() {
    let server = TestServer::start();
    let wrong = "0123456789abcdef".repeat(4);
    let (a, s, tarballs) = debian_mirror(
        &server,
        &SUITES,
        &[DebEntry {
            listed_sha: Some(wrong.clone()),
            ..DebEntry::new("bullseye", "5.10.46")
        }],
        1000,
    );
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let e = source::fetch(
        &home,
        &req("5.10.46"),
        &SourceSpec::Debian,
        &deb_opts(&a, &s, &SUITES),
        &NullSink,
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, SourceError::ChecksumMismatch { .. }), "{e:?}");
    assert!(
        msg.contains(&wrong) && msg.contains(&sha256_hex(&tarballs["5.10.46"])),
        "{msg}"
    );
    assert_nothing_cached(&home);
}

#[test]
fn truncated_file_is_a_size_mismatch_and_leaves_nothing() {
    let server = TestServer::start();
    let (a, s, tarballs) = debian_mirror(
        &server,
        &SUITES,
        &[DebEntry::new("bullseye", "5.10.46")],
        5000,
    );
    // The index keeps the full size and hash; the server has only the first half.
    let full = tarballs["5.10.46"].clone();
    server.add(
        &deb_path("bullseye", "5.10.46"),
        full[..full.len() / 2].to_vec(),
    );
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let e = source::fetch(
        &home,
        &req("5.10.46"),
        &SourceSpec::Debian,
        &deb_opts(&a, &s, &SUITES),
        &NullSink,
    )
    .unwrap_err();
    assert!(
        matches!(e, SourceError::SizeMismatch { expected, actual, .. } if expected == full.len() as u64 && actual == (full.len() / 2) as u64),
        "{e:?}"
    );
    assert_nothing_cached(&home);
}

#[test]
fn listed_but_not_served_falls_back_to_the_next_candidate() {
    let server = TestServer::start();
    let (a, s, _) = debian_mirror(
        &server,
        &SUITES,
        &[
            DebEntry::new("bullseye", "5.10.46"),
            DebEntry {
                served: false,
                ..DebEntry::new("bullseye-security", "5.10.251")
            },
        ],
        1000,
    );
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let sink = VecSink::default();
    let t = source::fetch(
        &home,
        &req("5.10"),
        &SourceSpec::Debian,
        &deb_opts(&a, &s, &SUITES),
        &sink,
    )
    .unwrap();
    assert_eq!(t.version, KernelVersion::new(5, 10, 46));
    assert!(sink.events().iter().any(|e| matches!(e, Event::Message { level: Level::Warn, text } if text.contains("listed but not served"))));
    // An exact version that is only listed: a clear not-found that says so.
    let e = source::fetch(
        &home,
        &req("5.10.251"),
        &SourceSpec::Debian,
        &deb_opts(&a, &s, &SUITES),
        &NullSink,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("listed but not served (HTTP 404"),
        "{e}"
    );
}

#[test]
fn a_stalled_server_times_out() {
    let server = TestServer::start();
    let (a, s, _) = debian_mirror(
        &server,
        &SUITES,
        &[DebEntry {
            behavior: Behavior::Stall(1000),
            ..DebEntry::new("bullseye", "5.10.46")
        }],
        50_000,
    );
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let mut opts = deb_opts(&a, &s, &SUITES);
    opts.net = Some(NetOptions {
        read_timeout: Duration::from_millis(500),
        retries: 1,
        ..quick_net()
    });
    let start = Instant::now();
    let e = source::fetch(
        &home,
        &req("5.10.46"),
        &SourceSpec::Debian,
        &opts,
        &NullSink,
    )
    .unwrap_err();
    assert!(matches!(e, SourceError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("stalled"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        server.hits(&deb_path("bullseye", "5.10.46")).len(),
        2,
        "one retry"
    );
    assert!(files_under(&home.src()).is_empty());
}

#[test]
fn a_warm_fetch_does_no_network_io() {
    let server = TestServer::start();
    let (a, s) = std_debian(&server);
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let opts = deb_opts(&a, &s, &SUITES);
    let t1 = source::fetch(
        &home,
        &req("5.10.46"),
        &SourceSpec::Debian,
        &opts,
        &NullSink,
    )
    .unwrap();
    let n = server.requests().len();
    let t2 = source::fetch(
        &home,
        &req("5.10.46"),
        &SourceSpec::Debian,
        &opts,
        &NullSink,
    )
    .unwrap();
    assert_eq!(
        server.requests().len(),
        n,
        "exact warm fetch touched the network"
    );
    assert!(t2.reused && !t1.reused);
    assert_eq!(t1.path, t2.path);
    // A series uses the cached index (1 h) and the extracted tree: no requests either.
    let t3 = source::fetch(&home, &req("5.10"), &SourceSpec::Debian, &opts, &NullSink).unwrap();
    assert_eq!(t3.version, KernelVersion::new(5, 10, 251));
    let n = server.requests().len();
    source::fetch(&home, &req("5.10"), &SourceSpec::Debian, &opts, &NullSink).unwrap();
    assert_eq!(server.requests().len(), n);
    // The tarball survives a pruned tree: re-extraction without downloading.
    std::fs::remove_dir_all(&t1.path).unwrap();
    let t4 = source::fetch(
        &home,
        &req("5.10.46"),
        &SourceSpec::Debian,
        &opts,
        &NullSink,
    )
    .unwrap();
    assert!(t4.path.join("Makefile").is_file());
    assert!(server.requests()[n..]
        .iter()
        .all(|r| !r.path.ends_with(".orig.tar.xz")));
}

#[test]
fn two_concurrent_fetches_of_one_version_download_once() {
    let server = TestServer::start();
    let (a, s, _) = debian_mirror(
        &server,
        &SUITES,
        &[DebEntry::new("bullseye", "5.10.46")],
        300_000,
    );
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let opts = deb_opts(&a, &s, &SUITES);
    let results: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                sc.spawn(|| {
                    source::fetch(
                        &home,
                        &req("5.10.46"),
                        &SourceSpec::Debian,
                        &opts,
                        &NullSink,
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    assert_eq!(results[0].path, results[1].path);
    assert_eq!(server.hits(&deb_path("bullseye", "5.10.46")).len(), 1);
    assert_eq!(
        std::fs::read_dir(home.src()).unwrap().count(),
        1,
        "no temp folder left"
    );
}

#[test]
fn not_enough_disk_space_stops_before_writing() {
    let server = TestServer::start();
    let (a, s) = std_debian(&server);
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let mut opts = deb_opts(&a, &s, &SUITES);
    opts.assume_free_bytes = Some(4096);
    let e = source::fetch(
        &home,
        &req("5.10.46"),
        &SourceSpec::Debian,
        &opts,
        &NullSink,
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            SourceError::DiskSpace {
                available: 4096,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        msg.contains("need ") && msg.contains("available 4.0 KiB"),
        "{msg}"
    );
    assert_nothing_cached(&home); // checked before downloading, too
}

fn local_tarball(dir: &Path, name: &str, data: &[u8]) -> SourceSpec {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    SourceSpec::Path(p)
}

#[test]
fn each_kind_of_malicious_tarball_is_refused_naming_the_entry() {
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    let mk = makefile("5.10.46");
    let mf = ("linux-5.10.46/Makefile", mk.as_bytes());
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
        (
            "absolute path",
            vec![
                Entry::File(mf.0, mf.1),
                Entry::File("/tmp/labctl-evil", b"x"),
            ],
            "absolute path",
        ),
        (
            "dotdot",
            vec![
                Entry::File(mf.0, mf.1),
                Entry::File("linux-5.10.46/../../evil", b"x"),
            ],
            "`..`",
        ),
        (
            "absolute symlink",
            vec![
                Entry::File(mf.0, mf.1),
                Entry::Symlink("linux-5.10.46/etc", "/etc"),
            ],
            "symlink to an absolute path",
        ),
        (
            "escaping symlink",
            vec![
                Entry::File(mf.0, mf.1),
                Entry::Symlink("linux-5.10.46/up", "../.."),
            ],
            "pointing outside the tree",
        ),
        (
            "write through a symlink",
            vec![
                Entry::File(mf.0, mf.1),
                Entry::Symlink("linux-5.10.46/here", "."),
                Entry::File("linux-5.10.46/here/x", b"x"),
            ],
            "goes through a symlink",
        ),
        (
            "escaping hardlink",
            vec![
                Entry::File(mf.0, mf.1),
                Entry::Hardlink("linux-5.10.46/pw", "../../etc/passwd"),
            ],
            "hardlink pointing outside",
        ),
        (
            "absolute hardlink",
            vec![
                Entry::File(mf.0, mf.1),
                Entry::Hardlink("linux-5.10.46/pw", "/etc/passwd"),
            ],
            "hardlink pointing outside",
        ),
        (
            "char device",
            vec![Entry::File(mf.0, mf.1), Entry::Char("linux-5.10.46/null")],
            "character device",
        ),
        (
            "block device",
            vec![Entry::File(mf.0, mf.1), Entry::Block("linux-5.10.46/sda")],
            "block device",
        ),
        (
            "fifo",
            vec![Entry::File(mf.0, mf.1), Entry::Fifo("linux-5.10.46/pipe")],
            "fifo",
        ),
    ];
    for (what, entries, reason) in cases {
        let spec = local_tarball(d.path(), "linux-5.10.46.tar.xz", &tarball(&entries));
        let e = source::fetch(
            &home,
            &req("5.10.46"),
            &spec,
            &FetchOptions::default(),
            &NullSink,
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, SourceError::UnsafeEntry { .. }),
            "{what}: {e:?}"
        );
        assert!(
            msg.contains(reason)
                && (msg.contains("entry \"linux-5.10.46/") || msg.contains("entry \"/tmp")),
            "{what}: {msg}"
        );
        assert!(
            files_under(&home.src()).is_empty(),
            "{what}: left {:?}",
            files_under(&home.src())
        );
    }
    assert!(!Path::new("/tmp/labctl-evil").exists());
}

#[test]
fn local_tarball_and_tree_sources() {
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    let tb = kernel_tarball("5.16.10", 100);
    let spec = local_tarball(d.path(), "linux-5.16.10.tar.xz", &tb);
    let t = source::fetch(
        &home,
        &req("5.16.10"),
        &spec,
        &FetchOptions::default(),
        &NullSink,
    )
    .unwrap();
    assert_eq!(t.sha256, sha256_hex(&tb));
    assert_eq!(t.source, "path");
    // A tree used in place.
    let t2 = source::fetch(
        &home,
        &req("5.16"),
        &SourceSpec::Path(t.path.clone()),
        &FetchOptions::default(),
        &NullSink,
    )
    .unwrap();
    assert_eq!(t2.path, t.path.canonicalize().unwrap());
    // The wrong version is refused.
    let e = source::fetch(
        &home,
        &req("5.15"),
        &spec,
        &FetchOptions::default(),
        &NullSink,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("5.16.10, but 5.15 was asked for"),
        "{e}"
    );
    // A pinned hash that does not match.
    let opts = FetchOptions {
        sha256: Some("f".repeat(64)),
        ..Default::default()
    };
    let other = local_tarball(
        d.path(),
        "linux-5.16.11.tar.xz",
        &kernel_tarball("5.16.11", 10),
    );
    assert!(matches!(
        source::fetch(&home, &req("5.16.11"), &other, &opts, &NullSink),
        Err(SourceError::ChecksumMismatch { .. })
    ));
    // A tarball whose Makefile disagrees with its name.
    let liar = local_tarball(
        d.path(),
        "linux-5.16.12.tar.xz",
        &kernel_tarball("5.16.13", 10),
    );
    let e = source::fetch(
        &home,
        &req("5.16.12"),
        &liar,
        &FetchOptions::default(),
        &NullSink,
    )
    .unwrap_err();
    assert!(e.to_string().contains("top Makefile says 5.16.13"), "{e}");
}

#[test]
fn url_source_downloads_and_reports_the_computed_hash() {
    let server = TestServer::start();
    let tb = kernel_tarball("6.1.8", 1000);
    server.add("/x/linux-6.1.8.tar.xz", tb.clone());
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let url = server.url("/x/linux-6.1.8.tar.xz");
    let opts = FetchOptions {
        net: Some(quick_net()),
        ..Default::default()
    };
    let t = source::fetch(
        &home,
        &req("6.1.8"),
        &SourceSpec::Url(url.clone()),
        &opts,
        &NullSink,
    )
    .unwrap();
    assert_eq!(t.sha256, sha256_hex(&tb));
    assert!(t.verified.contains("nothing verified"), "{}", t.verified);
    let e = source::fetch(
        &home,
        &req("6.1.8"),
        &SourceSpec::Url(server.url("/x/linux-6.1.9.tar.xz")),
        &opts,
        &NullSink,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("6.1.9, but 6.1.8 was asked for"),
        "{e}"
    );
    let e = source::fetch(
        &home,
        &req("6.1.7"),
        &SourceSpec::Url(server.url("/x/linux-6.1.7.tar.xz")),
        &opts,
        &NullSink,
    )
    .unwrap_err();
    assert!(matches!(e, SourceError::Http { status: 404, .. }), "{e:?}");
}

#[test]
fn remote_listing_per_source() {
    let server = TestServer::start();
    let (a, s) = std_debian(&server);
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let l = source::list_remote(
        &home,
        &SourceSpec::Auto,
        source::ListFilter::Series(5, 10),
        &deb_opts(&a, &s, &SUITES),
        &NullSink,
    );
    assert_eq!(l.len(), 2);
    assert!(
        l[0].error.is_some(),
        "kernel.org is unreachable in this test"
    );
    let v: Vec<String> = l[1].versions.iter().map(|v| v.to_string()).collect();
    assert_eq!(v, ["5.10.13", "5.10.46", "5.10.251"]);
}

#[test]
fn extracts_while_downloading_and_survives_a_server_restarting_from_zero() {
    let server = TestServer::start();
    let (a, s, tarballs) = debian_mirror(
        &server,
        &SUITES,
        &[DebEntry {
            behavior: Behavior::IgnoreRange,
            ..DebEntry::new("bullseye", "5.10.46")
        }],
        300_000,
    );
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let tb = &tarballs["5.10.46"];
    let sha = sha256_hex(tb);
    // A stale part file full of junk: the server ignores Range, the download starts over,
    // and what the extractor had streamed from the junk must not survive.
    std::fs::create_dir_all(home.downloads()).unwrap();
    std::fs::write(
        home.downloads().join(format!("{sha}.tar.xz.part")),
        vec![0x5a; 70_000],
    )
    .unwrap();
    let sink = VecSink::default();
    let t = source::fetch(
        &home,
        &req("5.10.46"),
        &SourceSpec::Debian,
        &deb_opts(&a, &s, &SUITES),
        &sink,
    )
    .unwrap();
    assert_eq!(t.sha256, sha);
    assert_eq!(
        source::makefile_version(&t.path),
        Some(KernelVersion::new(5, 10, 46))
    );
    assert_eq!(
        std::fs::metadata(t.path.join("kernel/filler.bin"))
            .unwrap()
            .len(),
        300_000
    );
    assert!(sink.events().iter().any(|e| matches!(e, Event::StageStarted { detail, .. } if detail.contains("extracting as it arrives"))));
    assert_eq!(
        std::fs::read_dir(home.src()).unwrap().count(),
        1,
        "no temp folder left"
    );
    assert!(home.downloads().join(format!("{sha}.tar.xz")).is_file());
}

#[test]
fn auto_falls_back_to_debian_when_the_kernel_org_download_fails() {
    let server = TestServer::start();
    let (kbase, _) = kernel_org_mirror(&server, &["5.10.46"], 1000);
    server.set_behavior("/kernel/v5.x/linux-5.10.46.tar.xz", Behavior::Status(503));
    let (a, s) = std_debian(&server);
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path());
    let mut opts = deb_opts(&a, &s, &SUITES);
    opts.kernel_org_base = Some(kbase);
    let t = source::fetch(&home, &req("5.10.46"), &SourceSpec::Auto, &opts, &NullSink).unwrap();
    assert_eq!(t.source, "debian bullseye");
    assert!(!server.hits("/kernel/v5.x/linux-5.10.46.tar.xz").is_empty());
    // kernel.org alone: the failure is the error.
    let e = source::fetch(
        &home,
        &req("5.10.46"),
        &SourceSpec::KernelOrg,
        &opts,
        &NullSink,
    )
    .unwrap_err();
    assert!(matches!(e, SourceError::Http { status: 503, .. }), "{e:?}");
}
