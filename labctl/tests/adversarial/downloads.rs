//! Downloads: the read timeout is an idle timeout (a slow steady index arrives), a 206
//! that restarts at byte 0 is not appended, a 404 leaves no `.part`, temporaries of dead
//! runs are cleaned, and FIFOs are refused as `--source` and `--fragment`.

use std::time::{Duration, Instant};

use super::*;

#[test]
fn a_slow_but_steady_index_is_not_cut_by_the_read_timeout() {
    let server = TestServer::start();
    let (a, s, _) = debian_mirror(
        &server,
        &["bookworm"],
        &[DebEntry::new("bookworm", "6.1.4")],
        1000,
    );
    let path = "/debian/dists/bookworm/main/source/Sources.xz";
    let body = server.body(path).unwrap();
    // ~2.5 s in all, never more than 0.3 s without a byte; the read timeout is 1 s.
    let chunk = body.len().div_ceil(8);
    server.add_with(
        path,
        body,
        Behavior::Trickle {
            chunk,
            delay_ms: 300,
        },
    );
    let d = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec!["kernel".into(), "fetch".into(), "6.1.4".into()];
    args.extend(deb_args(&a, &s, "bookworm"));
    args.extend([
        "--read-timeout".into(),
        "1".into(),
        "--retries".into(),
        "0".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(|x| x.as_str()).collect();
    let out = run_unsigned(d.path(), &refs);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(server.hits(path).len(), 1, "one request, never cut");
}

#[test]
fn a_206_that_restarts_at_byte_0_is_not_appended() {
    let server = TestServer::start();
    let t = kernel_tarball("5.10.46", 200_000);
    server.add_with(
        "/x/linux-5.10.46.tar.xz",
        t.clone(),
        Behavior::CutThenRangeFromZero(50_000),
    );
    let d = tempfile::tempdir().unwrap();
    let url = server.url("/x/linux-5.10.46.tar.xz");
    let out = run(d.path(), &["kernel", "fetch", "5.10.46", "--source", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The one download kept is the real tarball, not cut part + whole file.
    let dl = files_under(&d.path().join("downloads"));
    assert_eq!(dl, [format!("{}.tar.xz", sha256_hex(&t))], "{dl:?}");
    assert!(text(&out.stdout).contains(&sha256_hex(&t)));
}

#[test]
fn a_404_leaves_no_empty_part_file() {
    let server = TestServer::start();
    let mut e = DebEntry::new("bookworm", "6.1.4");
    e.served = false;
    let (a, s, _) = debian_mirror(&server, &["bookworm"], &[e], 1000);
    let d = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec!["kernel".into(), "fetch".into(), "6.1.4".into()];
    args.extend(deb_args(&a, &s, "bookworm"));
    let refs: Vec<&str> = args.iter().map(|x| x.as_str()).collect();
    let out = run_unsigned(d.path(), &refs);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("listed but not served"), "{err}");
    let dl = files_under(&d.path().join("downloads"));
    assert!(dl.is_empty(), "{dl:?}");
}

#[test]
fn temporaries_of_dead_runs_are_cleaned_and_live_ones_kept() {
    let server = TestServer::start();
    let (a, s, _) = debian_mirror(
        &server,
        &["bookworm"],
        &[DebEntry::new("bookworm", "6.1.4")],
        1000,
    );
    let d = tempfile::tempdir().unwrap();
    // pid_max is at most 2^22: pid 4999999 cannot be alive.
    let dead_tree = d.path().join("src/.linux-6.1.4-deadbeef.tmp-4999999");
    std::fs::create_dir_all(dead_tree.join("kernel")).unwrap();
    let dead_file = d.path().join("downloads/.x.json.tmp-4999999-0");
    std::fs::create_dir_all(d.path().join("downloads")).unwrap();
    std::fs::write(&dead_file, b"half").unwrap();
    let live = d.path().join(format!(
        "src/.linux-6.1.4-cafecafe.tmp-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&live).unwrap();
    let mut args: Vec<String> = vec!["kernel".into(), "fetch".into(), "6.1.4".into()];
    args.extend(deb_args(&a, &s, "bookworm"));
    let refs: Vec<&str> = args.iter().map(|x| x.as_str()).collect();
    let out = run_unsigned(d.path(), &refs);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!dead_tree.exists() && !dead_file.exists());
    assert!(live.exists(), "a live run's temporary stays");
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success());
}

/// Runs `cmd`, killing it after `secs`: a hang is a failure, not a stuck test.
fn run_bounded(mut cmd: Command, secs: u64) -> (Option<i32>, String, Duration) {
    let t0 = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (st.code(), err, t0.elapsed());
        }
        if t0.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            return (None, "killed: it hung".into(), t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_fifo_as_source_or_fragment_is_refused_at_once() {
    let d = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let fifo = outside.path().join("linux-5.10.46.tar.xz");
    mkfifo(&fifo);
    let (code, err, took) = run_bounded(
        labctl(
            d.path(),
            &[
                "kernel",
                "fetch",
                "5.10.46",
                "--source",
                fifo.to_str().unwrap(),
            ],
        ),
        10,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is a FIFO"), "{err}");
    assert!(took < Duration::from_secs(5));
    let frag = outside.path().join("my.config");
    mkfifo(&frag);
    let (code, err, _) = run_bounded(
        labctl(
            d.path(),
            &[
                "kernel",
                "config",
                "5.10.46",
                "--source",
                outside.path().to_str().unwrap(),
                "--fragment",
                frag.to_str().unwrap(),
            ],
        ),
        10,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is a FIFO"), "{err}");
    assert!(unverified_files(d.path()).is_empty());
    let mut names: Vec<String> = files_under(outside.path());
    names.sort();
    assert_eq!(
        names,
        ["linux-5.10.46.tar.xz", "my.config"],
        "nothing outside the home changed"
    );
}
