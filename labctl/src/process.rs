//! The one place that spawns child processes (make, qemu, clang, vng, ...), through duct.
//!
//! Invariants: argv lists only (never `sh -c` with interpolated input); every child runs
//! in its own process group so a timeout or Ctrl-C kills the whole tree (make's
//! children, QEMU); stderr is captured into the error; every run is announced as an
//! [`Event::Command`](crate::events::Event) and appended to the command log with a
//! shell-quoted line that reproduces it.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::events::{Event, EventSink};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(
        "cannot run `{program}`: {source} (is it installed? `labctl doctor` lists what is missing)"
    )]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`{command}` exited with {status}{}{}",
        log_hint(log),
        stderr_hint(stderr_tail)
    )]
    Failed {
        command: String,
        status: String,
        stderr_tail: String,
        log: Option<PathBuf>,
    },
    #[error("`{command}` did not finish within {}s and was killed{}", timeout.as_secs(), log_hint(log))]
    Timeout {
        command: String,
        timeout: Duration,
        log: Option<PathBuf>,
    },
    #[error("`{command}` was interrupted")]
    Interrupted { command: String },
    #[error("I/O error while running `{command}`: {source}")]
    Io {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

impl ProcessError {
    /// True when Ctrl-C (or SIGTERM) ended the child.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, ProcessError::Interrupted { .. })
    }
}

fn log_hint(log: &Option<PathBuf>) -> String {
    log.as_ref()
        .map(|p| format!(" (full log: {})", p.display()))
        .unwrap_or_default()
}
fn stderr_hint(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\n{}", tail.trim_end())
    }
}

/// Outcome of a finished child.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; None when killed by a signal.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub duration: Duration,
}
impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A command to run: program + argv + environment + limits. Build it, then call
/// [`Cmd::run`] (captured), [`Cmd::run_checked`] (error on non-zero exit) or
/// [`Cmd::run_streaming`] (line callback + log file, for make and QEMU).
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    timeout: Option<Duration>,
    stdin: Option<Vec<u8>>,
    inherit_stdio: bool,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            env_remove: Vec::new(),
            timeout: None,
            stdin: None,
            inherit_stdio: false,
        }
    }
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }
    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(it.into_iter().map(|s| s.as_ref().to_owned()));
        self
    }
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }
    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.env_remove.push(k.as_ref().to_owned());
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    pub fn stdin_bytes(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }
    /// Give the child this process's terminal (interactive QEMU console).
    pub fn inherit_stdio(mut self) -> Self {
        self.inherit_stdio = true;
        self
    }
    pub fn get_cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }
    pub fn program(&self) -> &OsStr {
        &self.program
    }
    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    /// The same command run inside the root filesystem `root`:
    /// `chroot ROOT /usr/bin/env -i VARS --chdir=DIR PROG ARGS`. The environment inside
    /// is `base_env` plus the variables set on this command (later ones win) minus the
    /// removed ones; nothing is inherited from labctl's own environment. Timeout, stdin
    /// and terminal handling are kept. Paths (cwd, arguments) are taken as they are:
    /// the caller mounts what they name at the same place inside.
    pub fn in_root(self, root: &Path, base_env: &[(String, String)]) -> Cmd {
        let mut args: Vec<OsString> = vec![root.into(), "/usr/bin/env".into(), "-i".into()];
        if let Some(d) = &self.cwd {
            let mut a = OsString::from("--chdir=");
            a.push(d);
            args.push(a);
        }
        let removed = |k: &OsStr| self.env_remove.iter().any(|r| r == k);
        for (k, v) in base_env {
            if !removed(OsStr::new(k)) {
                args.push(format!("{k}={v}").into());
            }
        }
        for (k, v) in &self.env {
            if !removed(k) {
                let mut a = k.clone();
                a.push("=");
                a.push(v);
                args.push(a);
            }
        }
        args.push(self.program);
        args.extend(self.args);
        Cmd {
            program: "chroot".into(),
            args,
            cwd: None,
            env: Vec::new(),
            env_remove: Vec::new(),
            timeout: self.timeout,
            stdin: self.stdin,
            inherit_stdio: self.inherit_stdio,
        }
    }

    /// A shell line that reproduces this run (`cd DIR && ENV=.. prog 'arg' ..`).
    pub fn reproducer(&self) -> String {
        let mut out = String::new();
        if let Some(d) = &self.cwd {
            out.push_str("cd ");
            out.push_str(&shell_quote(d.as_os_str()));
            out.push_str(" && ");
        }
        for k in &self.env_remove {
            out.push_str("env -u ");
            out.push_str(&shell_quote(k));
            out.push(' ');
        }
        for (k, v) in &self.env {
            out.push_str(&k.to_string_lossy());
            out.push('=');
            out.push_str(&shell_quote(v));
            out.push(' ');
        }
        out.push_str(&shell_quote(&self.program));
        for a in &self.args {
            out.push(' ');
            out.push_str(&shell_quote(a));
        }
        out
    }

    fn expression(&self) -> duct::Expression {
        let mut e = duct::cmd(&self.program, &self.args).unchecked();
        if let Some(d) = &self.cwd {
            e = e.dir(d);
        }
        for (k, v) in &self.env {
            e = e.env(k, v);
        }
        for k in &self.env_remove {
            e = e.env_remove(k);
        }
        if let Some(data) = &self.stdin {
            e = e.stdin_bytes(data.clone());
        } else if !self.inherit_stdio {
            e = e.stdin_null();
        }
        // Own process group: a kill reaches make's and QEMU's children too.
        let foreground = self.inherit_stdio && stdin_is_tty();
        e.before_spawn(move |c| {
            c.process_group(0);
            if foreground {
                // An interactive child (QEMU's console for `vm boot`) in its own process
                // group must become the terminal's foreground group, or its first read
                // stops it with SIGTTIN. [`Cmd::run`] takes the terminal back afterwards.
                // SAFETY: only async-signal-safe calls between fork and exec.
                unsafe {
                    c.pre_exec(|| {
                        libc::setpgid(0, 0);
                        libc::signal(libc::SIGTTOU, libc::SIG_IGN);
                        libc::tcsetpgrp(0, libc::getpgrp());
                        libc::signal(libc::SIGTTOU, libc::SIG_DFL);
                        Ok(())
                    });
                }
            }
            Ok(())
        })
    }

    fn announce(&self, sink: &dyn EventSink) -> String {
        let line = self.reproducer();
        sink.emit(Event::Command {
            command: line.clone(),
        });
        log_command(&line);
        line
    }

    /// Run to completion capturing stdout and stderr. A non-zero exit is *not* an error.
    pub fn run(&self, sink: &dyn EventSink) -> Result<Output, ProcessError> {
        let line = self.announce(sink);
        let start = Instant::now();
        let mut e = self.expression();
        if !self.inherit_stdio {
            e = e.stdout_capture().stderr_capture();
        }
        let handle = e.start().map_err(|source| self.spawn_error(source))?;
        let pid = handle.pids().first().copied().unwrap_or(0) as i32;
        let _guard = ChildGuard::register(pid);
        let _terminal = (self.inherit_stdio && stdin_is_tty()).then_some(TerminalBack);
        let deadline = self.timeout.map(|t| start + t);
        loop {
            if let Some(out) = handle.try_wait().map_err(|source| ProcessError::Io {
                command: line.clone(),
                source,
            })? {
                return Ok(Output {
                    code: out.status.code(),
                    stdout: out.stdout.clone(),
                    stderr: out.stderr.clone(),
                    duration: start.elapsed(),
                });
            }
            if interrupted() {
                kill_group(pid);
                let _ = handle.wait();
                return Err(ProcessError::Interrupted { command: line });
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                kill_group(pid);
                let _ = handle.wait();
                return Err(ProcessError::Timeout {
                    command: line,
                    timeout: self.timeout.unwrap(),
                    log: None,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Run and turn a non-zero exit into [`ProcessError::Failed`] with stderr's tail.
    pub fn run_checked(&self, sink: &dyn EventSink) -> Result<Output, ProcessError> {
        let out = self.run(sink)?;
        if out.success() {
            Ok(out)
        } else {
            Err(ProcessError::Failed {
                command: self.reproducer(),
                status: status_text(out.code),
                stderr_tail: tail_lines(&out.stderr_str(), 30),
                log: None,
            })
        }
    }

    /// Run with stdout and stderr merged, calling `on_line` for each line and
    /// appending everything to `log` (created/truncated). Returns the exit code and
    /// the last 30 lines. A non-zero exit is not an error; a timeout is.
    /// `on_line` returning `LineAction::Kill` stops the child (watchdogs use this).
    pub fn run_streaming(
        &self,
        sink: &dyn EventSink,
        log: &Path,
        mut on_line: impl FnMut(&str) -> LineAction,
    ) -> Result<StreamOutput, ProcessError> {
        let line = self.announce(sink);
        let io_err = |source| ProcessError::Io {
            command: line.clone(),
            source,
        };
        let mut logf = std::fs::File::create(log).map_err(io_err)?;
        writeln!(logf, "# {line}").map_err(io_err)?;
        let start = Instant::now();
        let reader = self
            .expression()
            .stderr_to_stdout()
            .reader()
            .map_err(|source| self.spawn_error(source))?;
        let pid = reader.pids().first().copied().unwrap_or(0) as i32;
        let _guard = ChildGuard::register(pid);
        // Watchdog thread: kills the group at the deadline or on Ctrl-C, which ends our read.
        let done = Arc::new(AtomicBool::new(false));
        let timed_out = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let (done, timed_out) = (done.clone(), timed_out.clone());
            let deadline = self.timeout.map(|t| start + t);
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    if interrupted() || deadline.is_some_and(|d| Instant::now() >= d) {
                        timed_out.store(!interrupted(), Ordering::SeqCst);
                        kill_group(pid);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        let mut tail: std::collections::VecDeque<String> = Default::default();
        let mut killed_by_callback = false;
        let mut buf = Vec::new();
        let mut r = BufReader::new(&reader);
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    let _ = logf.write_all(&buf);
                    let text = String::from_utf8_lossy(&buf);
                    let text = text.trim_end_matches(['\n', '\r']);
                    if tail.len() == 30 {
                        tail.pop_front();
                    }
                    tail.push_back(text.to_string());
                    if !killed_by_callback && on_line(text) == LineAction::Kill {
                        killed_by_callback = true;
                        kill_group(pid);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break, // the group was killed
            }
        }
        done.store(true, Ordering::SeqCst);
        let _ = watchdog.join();
        let _ = logf.flush();
        let status = loop {
            match reader.try_wait() {
                Ok(Some(out)) => break out.status.code(),
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break None,
            }
        };
        if interrupted() {
            return Err(ProcessError::Interrupted { command: line });
        }
        if timed_out.load(Ordering::SeqCst) {
            return Err(ProcessError::Timeout {
                command: line,
                timeout: self.timeout.unwrap_or_default(),
                log: Some(log.to_owned()),
            });
        }
        Ok(StreamOutput {
            code: if killed_by_callback { None } else { status },
            killed: killed_by_callback,
            tail: tail.into_iter().collect(),
            duration: start.elapsed(),
            log: log.to_owned(),
        })
    }

    fn spawn_error(&self, source: std::io::Error) -> ProcessError {
        ProcessError::Spawn {
            program: self.program.to_string_lossy().into_owned(),
            source,
        }
    }
}

/// What a streaming line callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineAction {
    Continue,
    Kill,
}

#[derive(Debug, Clone)]
pub struct StreamOutput {
    /// Exit code; None when killed (by a signal or by the callback).
    pub code: Option<i32>,
    /// The line callback asked for the child to be killed.
    pub killed: bool,
    /// Last 30 lines of merged output.
    pub tail: Vec<String>,
    pub duration: Duration,
    pub log: PathBuf,
}

impl StreamOutput {
    /// Turn a non-zero exit into [`ProcessError::Failed`] naming the log.
    pub fn check(self, command: &Cmd) -> Result<StreamOutput, ProcessError> {
        if self.code == Some(0) {
            Ok(self)
        } else {
            Err(ProcessError::Failed {
                command: command.reproducer(),
                status: status_text(self.code),
                stderr_tail: self.tail.join("\n"),
                log: Some(self.log.clone()),
            })
        }
    }
}

pub fn status_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit status {c}"),
        None => "a signal".to_string(),
    }
}

/// The last `n` lines of `s`.
pub fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Quote for a POSIX shell; plain words stay unquoted.
pub fn shell_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Find a program on PATH, then in labctl's own tools folder ([`tools_venv`]`/bin`,
/// where `labctl doctor --install` puts Python tools such as virtme-ng).
pub fn which(program: &str) -> Option<PathBuf> {
    which_in(program, &std::env::var_os("PATH").unwrap_or_default())
}

/// [`which`] with this search path instead of `$PATH` (so callers can be tested with a
/// folder of fake programs).
pub fn which_in(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
        .or_else(|| Some(tools_venv().join("bin").join(program)).filter(|p| is_executable(p)))
}

/// A regular file with an execute bit (what `which` accepts).
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// labctl's private Python virtual environment for tools no distribution ships
/// reliably (virtme-ng, check-jsonschema): `$LABCTL_TOOLS`, else
/// `$XDG_DATA_HOME/labctl/venv`, else `~/.local/share/labctl/venv`. Never the system
/// Python's site-packages.
pub fn tools_venv() -> PathBuf {
    if let Some(t) = std::env::var_os("LABCTL_TOOLS").filter(|v| !v.is_empty()) {
        return PathBuf::from(t);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    data.join("labctl").join("venv")
}

// ---- child registry, Ctrl-C and the command log ---------------------------------

static LIVE: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static COMMAND_LOG: OnceLock<PathBuf> = OnceLock::new();

fn live() -> &'static Mutex<HashSet<i32>> {
    LIVE.get_or_init(Default::default)
}

/// True once Ctrl-C (or SIGTERM) arrived; long loops in engines should stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Install the SIGINT/SIGTERM handler: mark interrupted and kill every live child group.
/// The running engine then returns `Interrupted` and the CLI exits non-zero.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        for pid in live().lock().unwrap().iter() {
            kill_group(*pid);
        }
    });
}

/// Append every command line to this file (the CLI points it into the home dir).
pub fn set_command_log(path: PathBuf) {
    let _ = COMMAND_LOG.set(path);
}

fn log_command(line: &str) {
    if let Some(p) = COMMAND_LOG.get() {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            let _ = writeln!(f, "{} {line}", unix_time());
        }
    }
}

fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn kill_group(pid: i32) {
    if pid > 0 {
        // SAFETY: plain syscall; the group id equals the child's pid (process_group(0)).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

fn stdin_is_tty() -> bool {
    // SAFETY: isatty on fd 0 has no memory effects.
    unsafe { libc::isatty(0) == 1 }
}

/// Makes our own process group the terminal's foreground group again when dropped
/// (after an interactive child that took the terminal has ended).
struct TerminalBack;
impl Drop for TerminalBack {
    fn drop(&mut self) {
        // SAFETY: plain syscalls; SIGTTOU is ignored so a background tcsetpgrp does not stop us.
        unsafe {
            let old = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
            libc::tcsetpgrp(0, libc::getpgrp());
            libc::signal(libc::SIGTTOU, old);
        }
    }
}

struct ChildGuard(i32);
impl ChildGuard {
    fn register(pid: i32) -> Self {
        live().lock().unwrap().insert(pid);
        ChildGuard(pid)
    }
}
impl Drop for ChildGuard {
    fn drop(&mut self) {
        live().lock().unwrap().remove(&self.0);
        // Leave nothing behind: a group whose leader exited may still hold children.
        kill_group(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::NullSink;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(shell_quote(OsStr::new("make")), "make");
        assert_eq!(shell_quote(OsStr::new("O=/tmp/b")), "O=/tmp/b");
        assert_eq!(shell_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(shell_quote(OsStr::new("it's")), "'it'\\''s'");
        assert_eq!(shell_quote(OsStr::new("$(rm -rf /)")), "'$(rm -rf /)'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
    }

    #[test]
    fn in_root_runs_the_same_command_with_only_the_given_environment() {
        let c = Cmd::new("make")
            .cwd("/home/b/src")
            .env("LANG", "C")
            .env("KCFLAGS", "-O2 -g")
            .env_remove("LC_ALL")
            .arg("O=/home/b/obj")
            .arg("-j2")
            .timeout(Duration::from_secs(7))
            .in_root(
                Path::new("/tc/root"),
                &[
                    ("PATH".into(), "/usr/bin:/bin".into()),
                    ("LANG".into(), "C.UTF-8".into()),
                    ("LC_ALL".into(), "C".into()),
                ],
            );
        assert_eq!(c.program(), "chroot");
        let args: Vec<String> = c
            .get_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "/tc/root",
                "/usr/bin/env",
                "-i",
                "--chdir=/home/b/src",
                "PATH=/usr/bin:/bin",
                "LANG=C.UTF-8",
                "LANG=C",
                "KCFLAGS=-O2 -g",
                "make",
                "O=/home/b/obj",
                "-j2"
            ]
        );
        // The cwd moved into the argv (chroot starts in /), the timeout stayed.
        assert_eq!(c.get_cwd(), None);
        assert_eq!(c.timeout, Some(Duration::from_secs(7)));
    }

    #[test]
    fn reproducer_has_cwd_env_and_args() {
        let c = Cmd::new("make")
            .cwd("/src dir")
            .env("KCFLAGS", "-O2 -g")
            .arg("-j2")
            .arg("a;b");
        assert_eq!(
            c.reproducer(),
            "cd '/src dir' && KCFLAGS='-O2 -g' make -j2 'a;b'"
        );
    }

    #[test]
    fn captures_exit_code_and_output() {
        let out = Cmd::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 7"])
            .run(&NullSink)
            .unwrap();
        assert_eq!(out.code, Some(7));
        assert_eq!(out.stdout_str(), "out\n");
        assert_eq!(out.stderr_str(), "err\n");
        let e = Cmd::new("sh")
            .args(["-c", "echo boom >&2; exit 3"])
            .run_checked(&NullSink)
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("exit status 3") && msg.contains("boom"),
            "{msg}"
        );
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let e = Cmd::new("/nonexistent/prog").run(&NullSink).unwrap_err();
        assert!(matches!(e, ProcessError::Spawn { .. }), "{e:?}");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        // The shell starts a grandchild that would outlive a plain kill of the shell.
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let start = Instant::now();
        let e = Cmd::new("sh")
            .args(["-c", &script])
            .timeout(Duration::from_millis(500))
            .run(&NullSink)
            .unwrap_err();
        assert!(matches!(e, ProcessError::Timeout { .. }), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(10));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // Gone, or a zombie waiting for its reaper: either way no longer running.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next().map(str::to_string))
            });
        assert!(
            matches!(state.as_deref(), None | Some("Z") | Some("X")),
            "grandchild {pid} survived the timeout: state {state:?}"
        );
    }

    #[test]
    fn streaming_logs_lines_and_callback_can_kill() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let mut seen = Vec::new();
        let out = Cmd::new("sh")
            .args([
                "-c",
                "echo one; echo two >&2; echo PANIC; sleep 30; echo never",
            ])
            .timeout(Duration::from_secs(20))
            .run_streaming(&NullSink, &log, |l| {
                seen.push(l.to_string());
                if l == "PANIC" {
                    LineAction::Kill
                } else {
                    LineAction::Continue
                }
            })
            .unwrap();
        assert!(out.killed);
        assert_eq!(out.code, None);
        assert_eq!(seen, ["one", "two", "PANIC"]);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("one\ntwo\nPANIC\n"), "{text}");
        assert!(out.duration < Duration::from_secs(15));
    }

    #[test]
    fn streaming_timeout_is_an_error_naming_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("t.log");
        let e = Cmd::new("sh")
            .args(["-c", "echo start; sleep 30"])
            .timeout(Duration::from_millis(300))
            .run_streaming(&NullSink, &log, |_| LineAction::Continue)
            .unwrap_err();
        match e {
            ProcessError::Timeout { log: Some(l), .. } => assert_eq!(l, log),
            other => panic!("{other:?}"),
        }
    }
}
