//! `labctl vm boot` on a pseudo-terminal: the busybox shell answers on the console,
//! `exit` ends QEMU, and the terminal settings are the same afterwards as before.

mod vm_support;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn termios(fd: i32) -> libc::termios {
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0);
        t
    }
}

fn same(a: &libc::termios, b: &libc::termios) -> bool {
    a.c_iflag == b.c_iflag
        && a.c_oflag == b.c_oflag
        && a.c_cflag == b.c_cflag
        && a.c_lflag == b.c_lflag
}

#[test]
fn boot_gives_a_shell_and_restores_the_terminal() {
    let k = vm_support::kernel();
    let home = tempfile::tempdir().unwrap();
    let (mut master, mut slave) = (0, 0);
    unsafe {
        assert_eq!(
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null()
            ),
            0
        );
    }
    let before = termios(slave);
    let slave_fd = slave;
    let dup = |fd: i32| unsafe { Stdio::from(OwnedFd::from_raw_fd(libc::dup(fd))) };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_labctl"));
    cmd.arg("--home").arg(home.path()).args([
        "--color",
        "never",
        "vm",
        "boot",
        "--accel",
        "tcg",
        "--kernel",
        k.bzimage.to_str().unwrap(),
    ]);
    cmd.stdin(dup(slave)).stdout(dup(slave)).stderr(dup(slave));
    unsafe {
        cmd.pre_exec(move || {
            // A session of its own with the pty as controlling terminal, like a login shell.
            libc::setsid();
            libc::ioctl(slave_fd, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut m = unsafe { std::fs::File::from_raw_fd(master) };
    unsafe {
        libc::fcntl(
            master,
            libc::F_SETFL,
            libc::fcntl(master, libc::F_GETFL) | libc::O_NONBLOCK,
        );
    }
    let mut out = Vec::new();
    let read_until = |m: &mut std::fs::File, needle: &[u8], secs: u64, out: &mut Vec<u8>| -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            let mut buf = [0u8; 4096];
            match m.read(&mut buf) {
                Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
            if out.windows(needle.len()).any(|w| w == needle) {
                return true;
            }
        }
        false
    };
    assert!(
        read_until(&mut m, b"~ # ", 120, &mut out),
        "no shell prompt: {}",
        String::from_utf8_lossy(&out)
    );
    let during = termios(slave);
    // Ctrl-C interrupts the guest's `sleep`, not QEMU.
    m.write_all(b"sleep 100\r").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    m.write_all(b"\x03").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    m.write_all(b"echo MARK-$((6*7)); uname -r\r").unwrap();
    assert!(
        read_until(&mut m, b"MARK-42", 30, &mut out),
        "{}",
        String::from_utf8_lossy(&out)
    );
    m.write_all(b"exit\r").unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let mut buf = [0u8; 4096];
        let _ = m.read(&mut buf);
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "QEMU did not end after `exit`");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", String::from_utf8_lossy(&out));
    assert!(String::from_utf8_lossy(&out).contains(&k.release));
    assert!(
        !same(&before, &during),
        "QEMU should have put the terminal in raw mode"
    );
    assert!(
        same(&before, &termios(slave)),
        "terminal settings not restored"
    );
    unsafe {
        libc::close(slave);
    }
}
