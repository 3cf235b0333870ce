//! Ctrl-C: while waiting for another labctl's lock, and during a stalled index or body
//! read, labctl exits 130 within a second, leaves no child and trusts nothing
//! half-written.

use std::time::{Duration, Instant};

use super::*;

/// Start `cmd`, wait `after`, send SIGINT, and return (exit code, stderr, seconds from
/// the signal to the exit). Killed after 10 s.
fn interrupt(mut cmd: Command, after: Duration) -> (Option<i32>, String, Duration) {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running when interrupted"
    );
    // SIGINT as a terminal's Ctrl-C sends it (the syscall: a bare machine has no kill(1)).
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(pid, libc::SIGINT) },
        0,
        "kill -INT {pid}"
    );
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (st.code(), err, t0.elapsed());
        }
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            return (
                None,
                "did not exit within 10 s of SIGINT".into(),
                t0.elapsed(),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn fetch_cmd(home: &Path, a: &str, s: &str, read_timeout: &str) -> Command {
    let mut args: Vec<String> = vec!["kernel".into(), "fetch".into(), "6.1.4".into()];
    args.extend(deb_args(a, s, "bookworm"));
    args.extend(["--read-timeout".into(), read_timeout.into()]);
    let refs: Vec<&str> = args.iter().map(|x| x.as_str()).collect();
    let mut c = labctl(home, &refs);
    c.env("LABCTL_ALLOW_UNSIGNED", "true");
    c
}

#[test]
fn ctrl_c_while_waiting_for_a_lock_exits_130_at_once() {
    let server = TestServer::start();
    let (a, s, _) = debian_mirror(
        &server,
        &["bookworm"],
        &[DebEntry::new("bookworm", "6.1.4")],
        1000,
    );
    let d = tempfile::tempdir().unwrap();
    // Another labctl holds the version's lock.
    let lock = labctl::Home::new(d.path())
        .lock(&labctl::home::CacheKey::Tree("6.1.4".into()))
        .unwrap();
    let (code, err, took) = interrupt(
        fetch_cmd(d.path(), &a, &s, "30"),
        Duration::from_millis(1500),
    );
    assert_eq!(code, Some(130), "{err}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(err.contains("interrupted"), "{err}");
    drop(lock);
    assert!(
        unverified_files(d.path()).is_empty(),
        "{:?}",
        files_under(d.path())
    );
}

#[test]
fn ctrl_c_during_a_stalled_index_read_exits_130_at_once() {
    let server = TestServer::start();
    let (a, s, _) = debian_mirror(
        &server,
        &["bookworm"],
        &[DebEntry::new("bookworm", "6.1.4")],
        1000,
    );
    server.set_behavior(
        "/debian/dists/bookworm/main/source/Sources.xz",
        Behavior::Stall(10),
    );
    let d = tempfile::tempdir().unwrap();
    let (code, err, took) = interrupt(
        fetch_cmd(d.path(), &a, &s, "30"),
        Duration::from_millis(1500),
    );
    assert_eq!(code, Some(130), "{err}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(files_under(&d.path().join("indexes")).is_empty());
    assert!(unverified_files(d.path()).is_empty());
}

#[test]
fn ctrl_c_during_a_stalled_body_read_exits_130_and_trusts_nothing() {
    let server = TestServer::start();
    let mut e = DebEntry::new("bookworm", "6.1.4");
    e.behavior = Behavior::Stall(20_000);
    let (a, s, _) = debian_mirror(&server, &["bookworm"], &[e], 100_000);
    let d = tempfile::tempdir().unwrap();
    let (code, err, took) = interrupt(
        fetch_cmd(d.path(), &a, &s, "30"),
        Duration::from_millis(2000),
    );
    assert_eq!(code, Some(130), "{err}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // A .part may stay (it is resumed and verified later); nothing is a verified result.
    let dl = files_under(&d.path().join("downloads"));
    assert!(dl.iter().all(|f| f.ends_with(".part")), "{dl:?}");
    let src: Vec<String> = files_under(&d.path().join("src"));
    assert!(src.is_empty(), "no tree, no temporary: {src:?}");
}
