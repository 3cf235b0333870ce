//! Benchmark: "zero to a passing suite" (issue 15, item 4). The README's main job,
//! `cargo install --locked --path labctl && labctl doctor --install --yes && labctl vm test`, run
//! cold on a bare Debian root filesystem and timed command by command. Run it through
//! `bench/zero.sh`, which documents the knobs; it needs root (mount, chroot) and mmdebstrap.
//!
//! The machine: a minbase root filesystem from `labctl::rootfs` (cached under the test
//! home's `rootfs/`, like tests/fresh_machine.rs), unpacked into a scratch folder. The
//! prerequisites the README names, timed as their own phase and not part of zero-to-pass:
//! the host's Rust toolchain bind-mounted read-only at `/opt/rust` (cargo, rustc and
//! rustdoc linked into `/usr/local/bin`), and `gcc libc6-dev ca-certificates` from apt
//! (the session copies the host's locally added CA certificates in first, so the bundle
//! ca-certificates builds trusts the network the crate registry is reached through).
//! Then a `git clone` of the checkout at `/root/labctl`, and nothing else: CARGO_HOME,
//! the labctl home and its ccache start empty, so crates and the kernel are downloaded
//! and everything is compiled.
//!
//! Each command runs inside with `chroot` and a cleared environment, as an argv (no
//! shell): `env -C /root/labctl PATH=/root/.cargo/bin:... <command>`, the PATH rustup's
//! setup gives a Rust user. `vm test` is split into fetch / build (kernel, bpftool) / examples / suite by
//! the stage lines labctl prints (their `[ 12.3s]` stamps), the build further by the
//! build's build.json `stages`; the pass count comes from the run's results.json.
//!
//! Prints a table; exits 0 when the main job passed, 1 when one of its commands failed
//! (with the tail of its log), 2 when the bench itself could not run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use labctl::events::NullSink;
use labctl::process::{Cmd, LineAction};
use labctl::rootfs::{Bind, Mirror, Rootfs, RootfsCache, RootfsSpec, Session, SessionOptions};

const TOOLCHAIN_INSIDE: &str = "/opt/rust";
const CHECKOUT_INSIDE: &str = "/root/labctl";
const LABCTL_HOME_INSIDE: &str = "/root/.cache/labctl";
const PATH_INSIDE: &str =
    "PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const USAGE: &str = "usage: zero_to_pass --checkout DIR --toolchain DIR [--suite bookworm] \
[--logs DIR] [--target SECONDS] [--rootfs-cache DIR]";

struct Args {
    checkout: PathBuf,
    toolchain: PathBuf,
    suite: String,
    logs: Option<PathBuf>,
    target: f64,
    rootfs_cache: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut checkout = None;
    let mut toolchain = None;
    let mut suite = "bookworm".to_string();
    let mut logs = None;
    let mut target = 300.0;
    let mut rootfs_cache = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--checkout" => checkout = Some(PathBuf::from(value()?)),
            "--toolchain" => toolchain = Some(PathBuf::from(value()?)),
            "--suite" => suite = value()?,
            "--logs" => logs = Some(PathBuf::from(value()?)),
            "--rootfs-cache" => rootfs_cache = Some(PathBuf::from(value()?)),
            "--target" => {
                let v = value()?;
                target = v
                    .parse()
                    .map_err(|_| format!("--target {v}: not a number"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(Args {
        checkout: checkout.ok_or(USAGE)?,
        toolchain: toolchain.ok_or(USAGE)?,
        suite,
        logs,
        target,
        rootfs_cache,
    })
}

/// One timed row of the table.
struct Row {
    phase: String,
    seconds: Option<f64>,
    note: String,
}

fn row(phase: impl Into<String>, seconds: Option<f64>, note: impl Into<String>) -> Row {
    Row {
        phase: phase.into(),
        seconds,
        note: note.into(),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A stage line of labctl's plain output: `[  92.3s]     tools make ...` → (92.3, "tools").
fn stage_line(line: &str) -> Option<(f64, &str)> {
    let rest = line.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once("s]")?;
    let t: f64 = stamp.trim().parse().ok()?;
    let word = rest.trim_start().split(' ').next()?;
    const STAGES: [&str; 12] = [
        "fetch", "download", "extract", "config", "fixes", "compile", "tools", "examples", "probe",
        "image", "boot", "samples",
    ];
    STAGES.contains(&word).then_some((t, word))
}

/// fetch / build (kernel, bpftool) / examples / suite from the first stamp of each group's first stage.
fn split_vm_test(marks: &[(f64, String)], total: f64) -> Vec<(&'static str, Option<f64>)> {
    let first = |names: &[&str]| {
        marks
            .iter()
            .find(|(_, w)| names.contains(&w.as_str()))
            .map(|(t, _)| *t)
    };
    let starts = [
        ("fetch", Some(0.0)),
        ("build (kernel)", first(&["config", "fixes", "compile"])),
        ("build (bpftool)", first(&["tools"])),
        ("examples", first(&["examples"])),
        ("suite", first(&["probe", "image", "boot"])),
    ];
    starts
        .iter()
        .enumerate()
        .map(|(i, (name, start))| {
            let end = starts[i + 1..]
                .iter()
                .find_map(|(_, s)| *s)
                .unwrap_or(total);
            (*name, start.map(|s| (end - s).max(0.0)))
        })
        .collect()
}

/// The newest `<dir>/*/<file>` below a folder of the chroot.
fn newest(dir: &Path, file: &str) -> Option<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path().join(file))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

struct Bench {
    args: Args,
    logs: PathBuf,
    rows: Vec<Row>,
}

enum Failure {
    /// A command of the main job failed: exit 1.
    MainJob(String),
    /// The bench could not set up or clean up: exit 2.
    Setup(String),
}

impl Bench {
    /// Run one command inside and record its row; Err (with the log's tail) unless it exits 0.
    fn phase(
        &mut self,
        session: &Session,
        name: &str,
        argv: &[&str],
        timeout: Duration,
        log: &str,
        mut on_line: impl FnMut(&str),
    ) -> Result<f64, String> {
        let log = self.logs.join(log);
        eprintln!("zero: {name} (log {})", log.display());
        let start = Instant::now();
        let out = session.run(argv, timeout, &log, &NullSink, |l| {
            on_line(l);
            LineAction::Continue
        });
        let took = start.elapsed().as_secs_f64();
        let code = out.as_ref().ok().and_then(|o| o.code);
        eprintln!("zero: {name}: exit {code:?} after {took:.1} s");
        self.rows.push(row(
            name,
            Some(took),
            if code == Some(0) {
                String::new()
            } else {
                format!("FAILED (exit {code:?})")
            },
        ));
        match out {
            Ok(o) if o.code == Some(0) => Ok(took),
            Ok(o) => {
                self.keep_command_log(session, &log);
                Err(format!(
                    "`{name}` exited {:?}; last lines of {}:\n{}",
                    o.code,
                    log.display(),
                    o.tail.join("\n")
                ))
            }
            Err(e) => {
                self.keep_command_log(session, &log);
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Err(format!(
                    "`{name}` did not finish: {e}; last lines of {}:\n{}",
                    log.display(),
                    tail.join("\n")
                ))
            }
        }
    }

    /// labctl's own command log inside, kept next to `log` (the chroot is deleted).
    fn keep_command_log(&self, session: &Session, log: &Path) {
        let inside = format!("{LABCTL_HOME_INSIDE}/logs/commands.log");
        let src = session.root().join(inside.trim_start_matches('/'));
        let _ = std::fs::copy(src, log.with_extension("commands.log"));
    }

    fn run(&mut self) -> Result<String, Failure> {
        let setup = Failure::Setup;
        let a = &self.args;
        let toolchain = a
            .toolchain
            .canonicalize()
            .map_err(|e| setup(format!("toolchain {}: {e}", a.toolchain.display())))?;
        for bin in ["cargo", "rustc"] {
            if !toolchain.join("bin").join(bin).is_file() {
                return Err(setup(format!(
                    "{} has no bin/{bin} (give the rustup toolchain folder, e.g. $(dirname $(dirname $(rustup which cargo))))",
                    toolchain.display()
                )));
            }
        }

        // The machine: the cached minbase tarball, unpacked.
        let t = Instant::now();
        let mirror = Mirror::from_host().map_err(|e| setup(e.to_string()))?;
        let cache_dir = a.rootfs_cache.clone().unwrap_or_else(default_rootfs_cache);
        let tarball = RootfsCache::new(&cache_dir)
            .get(&RootfsSpec::new(&a.suite), &mirror, &NullSink)
            .map_err(|e| setup(format!("{} minbase root filesystem: {e}", a.suite)))?;
        let dir = std::env::temp_dir().join(format!("labctl-zero-{}", std::process::id()));
        let rootfs = Rootfs::unpack(&tarball, &dir, &NullSink)
            .map_err(|e| setup(format!("unpack {}: {e}", tarball.display())))?;
        // From here on the folder must go, whatever happens: the session's drop removes
        // it; until the session exists, this guard does.
        let mut guard = RemoveDir(Some(rootfs.dir().to_owned()));
        self.rows.push(row(
            format!("root filesystem ({} minbase)", a.suite),
            Some(t.elapsed().as_secs_f64()),
            format!("cached tarball, unpacked: {}", tarball.display()),
        ));

        // The checkout: a clone of its HEAD.
        let t = Instant::now();
        let dest = rootfs
            .host_path(CHECKOUT_INSIDE)
            .map_err(|e| setup(e.to_string()))?;
        Cmd::new("git")
            .args(["clone", "--quiet", "--no-hardlinks"])
            .arg(&a.checkout)
            .arg(&dest)
            .timeout(Duration::from_secs(600))
            .run_checked(&NullSink)
            .map_err(|e| setup(format!("git clone {}: {e}", a.checkout.display())))?;
        let head = Cmd::new("git")
            .args(["-C"])
            .arg(&dest)
            .args(["log", "-1", "--format=%h %s"])
            .timeout(Duration::from_secs(60))
            .run_checked(&NullSink)
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        self.rows.push(row(
            "checkout (git clone)",
            Some(t.elapsed().as_secs_f64()),
            head.clone(),
        ));

        // Prerequisites: Rust (the host's, read-only) and a C compiler.
        let t = Instant::now();
        for bin in ["cargo", "rustc", "rustdoc"] {
            let link = rootfs
                .create_dir_all("/usr/local/bin")
                .map_err(|e| setup(e.to_string()))?
                .join(bin);
            std::os::unix::fs::symlink(format!("{TOOLCHAIN_INSIDE}/bin/{bin}"), &link)
                .map_err(|e| setup(format!("symlink {}: {e}", link.display())))?;
        }
        let session = Session::enter(
            &rootfs,
            SessionOptions {
                binds: vec![Bind::new(&toolchain, TOOLCHAIN_INSIDE).read_only()],
                remove_on_drop: true,
                term: None,
            },
            &NullSink,
        )
        .map_err(|e| setup(format!("prepare the chroot in {}: {e}", dir.display())))?;
        guard.0 = None;
        let apt = |args: &[&str]| {
            let mut v = vec!["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"];
            v.extend_from_slice(args);
            v.into_iter().map(String::from).collect::<Vec<_>>()
        };
        let prereqs = [
            apt(&["update"]),
            apt(&[
                "install",
                "-y",
                "--no-install-recommends",
                "gcc",
                "libc6-dev",
                "ca-certificates",
            ]),
        ];
        for (argv, log) in prereqs.iter().zip(["apt-update.log", "apt-install.log"]) {
            let log = self.logs.join(log);
            let out = session
                .run(argv, Duration::from_secs(20 * 60), &log, &NullSink, |_| {
                    LineAction::Continue
                })
                .map_err(|e| setup(format!("{}: {e}", argv.join(" "))))?;
            if out.code != Some(0) {
                return Err(setup(format!(
                    "`{}` exited {:?}:\n{}",
                    argv.join(" "),
                    out.code,
                    out.tail.join("\n")
                )));
            }
        }
        let rustc = Cmd::new(toolchain.join("bin/rustc"))
            .arg("--version")
            .timeout(Duration::from_secs(60))
            .run_checked(&NullSink)
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        self.rows.push(row(
            "prerequisites (Rust bind, apt gcc)",
            Some(t.elapsed().as_secs_f64()),
            format!("{rustc}; apt-get install gcc libc6-dev ca-certificates"),
        ));

        // The main job, one command at a time, from the checkout.
        let inside = |cmd: &[&'static str]| {
            let mut v = vec!["env", "-C", CHECKOUT_INSIDE, PATH_INSIDE];
            v.extend_from_slice(cmd);
            v
        };
        let load_before = loadavg();
        let result = self.main_job(&session, &inside);
        let load_after = loadavg();

        // Keep the results and the build record before the chroot goes.
        let home = rootfs
            .host_path(LABCTL_HOME_INSIDE)
            .map_err(|e| setup(e.to_string()))?;
        let results = newest(&home.join("runs"), "results.json")
            .and_then(|p| std::fs::read_to_string(p).ok());
        if let Some(text) = &results {
            let _ = std::fs::write(self.logs.join("results.json"), text);
        }
        let build_json = newest(&home.join("builds"), "build.json")
            .and_then(|p| std::fs::read_to_string(p).ok());
        if let Some(text) = &build_json {
            let _ = std::fs::write(self.logs.join("build.json"), text);
        }
        let closed = session.close();

        let summary = self.summary(
            result.as_ref().ok(),
            results.as_deref(),
            build_json.as_deref(),
            &load_before,
            &load_after,
            &head,
        );
        closed.map_err(|e| setup(format!("{summary}\ncleanup failed: {e}")))?;
        match result {
            Ok(_) => Ok(summary),
            Err(e) => Err(Failure::MainJob(format!("{summary}\n{e}"))),
        }
    }

    /// The three commands; Ok(the vm test split) when all exited 0.
    fn main_job(
        &mut self,
        session: &Session,
        inside: &dyn Fn(&[&'static str]) -> Vec<&'static str>,
    ) -> Result<MainJob, String> {
        let install = self.phase(
            session,
            "cargo install --locked --path labctl",
            &inside(&["cargo", "install", "--locked", "--path", "labctl"]),
            Duration::from_secs(45 * 60),
            "cargo-install.log",
            |_| {},
        )?;
        let doctor = self.phase(
            session,
            "labctl doctor --install --yes",
            &inside(&["labctl", "doctor", "--install", "--yes"]),
            Duration::from_secs(30 * 60),
            "doctor.log",
            |_| {},
        )?;
        let mut marks: Vec<(f64, String)> = Vec::new();
        let vm_test = self.phase(
            session,
            "labctl vm test",
            &inside(&["labctl", "vm", "test"]),
            Duration::from_secs(90 * 60),
            "vm-test.log",
            |l| {
                if let Some((t, w)) = stage_line(l) {
                    marks.push((t, w.to_string()));
                }
            },
        );
        // The split is worth having even when the suite failed.
        let vm_secs = self.rows.last().and_then(|r| r.seconds).unwrap_or(0.0);
        let split = split_vm_test(&marks, vm_secs);
        let vm_row = self.rows.len() - 1;
        for (name, s) in split.iter().rev() {
            self.rows.insert(
                vm_row + 1,
                row(format!("  vm test: {name}"), *s, String::new()),
            );
        }
        let vm_test = vm_test?;
        Ok(MainJob {
            total: install + doctor + vm_test,
        })
    }

    fn summary(
        &self,
        job: Option<&MainJob>,
        results: Option<&str>,
        build_json: Option<&str>,
        load_before: &str,
        load_after: &str,
        head: &str,
    ) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let w = self
            .rows
            .iter()
            .map(|r| r.phase.len())
            .max()
            .unwrap_or(10)
            .max(34);
        let _ = writeln!(s, "zero to a passing suite: {} ({head})", self.args.suite);
        let _ = writeln!(s, "{:<w$} {:>9}  note", "phase", "seconds");
        for r in &self.rows {
            let secs = r.seconds.map_or("-".to_string(), |x| format!("{x:.1}"));
            let _ = writeln!(s, "{:<w$} {secs:>9}  {}", r.phase, r.note);
        }
        if let Some(b) = build_json.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        {
            let stages: Vec<String> = b["stages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|st| {
                    Some(format!(
                        "{} {:.0}",
                        st["stage"].as_str()?,
                        st["seconds"].as_f64()?
                    ))
                })
                .collect();
            let _ = writeln!(s, "  build.json stages (s): {}", stages.join(", "));
        }
        match job {
            Some(j) => {
                let _ = writeln!(
                    s,
                    "{:<w$} {:>9.1}  target ≤ {:.0} s: {:.2}× the target",
                    "zero to pass (the three commands)",
                    j.total,
                    self.args.target,
                    j.total / self.args.target
                );
            }
            None => {
                let _ = writeln!(s, "{:<w$} {:>9}  the main job failed", "zero to pass", "-");
            }
        }
        let _ = writeln!(
            s,
            "load average before the main job: {load_before}; after: {load_after} ({} cores)",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        match results.and_then(|t| serde_json::from_str::<labctl::suite::SuiteResult>(t).ok()) {
            Some(r) => {
                let (p, f, k) = r.counts();
                let _ = writeln!(
                    s,
                    "suite: {p} passed, {f} failed, {k} skipped of {} on {} ({}), suite time {:.1} s",
                    r.tests.len(),
                    r.release,
                    r.accel,
                    r.duration_s
                );
            }
            None => {
                let _ = writeln!(s, "suite: no results.json");
            }
        }
        let _ = write!(s, "logs: {}", self.logs.display());
        s
    }
}

struct MainJob {
    total: f64,
}

/// Removes an unpacked folder that never got a session (nothing is mounted in it yet).
struct RemoveDir(Option<PathBuf>);
impl Drop for RemoveDir {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn default_rootfs_cache() -> PathBuf {
    let home = std::env::var_os("LABCTL_TEST_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/labctl-test")
        });
    home.join("rootfs")
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("zero_to_pass needs root (mmdebstrap, mount, chroot)");
        return ExitCode::from(2);
    }
    // Ctrl-C kills the children; the session then unmounts and removes the chroot.
    labctl::process::install_interrupt_handler();
    let logs = match &args.logs {
        Some(l) => l.clone(),
        None => std::env::temp_dir().join(format!(
            "labctl-zero-logs-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        )),
    };
    if let Err(e) = std::fs::create_dir_all(&logs) {
        eprintln!("create {}: {e}", logs.display());
        return ExitCode::from(2);
    }
    let mut bench = Bench {
        args,
        logs,
        rows: Vec::new(),
    };
    match bench.run() {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(Failure::MainJob(text)) => {
            println!("{text}");
            ExitCode::from(1)
        }
        Err(Failure::Setup(text)) => {
            println!("{}", bench.summary(None, None, None, "-", "-", ""));
            eprintln!("zero_to_pass: {text}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_lines_and_the_split() {
        assert_eq!(
            stage_line("[  92.3s]     tools make tools/bpf/bpftool"),
            Some((92.3, "tools"))
        );
        assert_eq!(stage_line("[   3.2s] extract: 0 B / 116.5 MiB (0%)"), None);
        assert_eq!(stage_line("[ 112.3s] using TCG (no KVM)"), None);
        let marks: Vec<(f64, String)> = [
            (0.0, "fetch"),
            (14.0, "config"),
            (92.3, "tools"),
            (111.4, "examples"),
            (112.2, "probe"),
        ]
        .iter()
        .map(|(t, w)| (*t, w.to_string()))
        .collect();
        let s = split_vm_test(&marks, 151.0);
        assert_eq!(s[0], ("fetch", Some(14.0)));
        assert_eq!(s[2].0, "build (bpftool)");
        assert_eq!(s[4].0, "suite");
        assert!((s[4].1.unwrap() - 38.8).abs() < 1e-9);
        // Without a build (a cached one), its rows are empty and fetch runs to the next mark.
        let s = split_vm_test(&marks[3..], 151.0);
        assert_eq!(s[0], ("fetch", Some(111.4)));
        assert_eq!(s[1], ("build (kernel)", None));
    }
}
