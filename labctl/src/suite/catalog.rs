//! The suite's data: the samples/bpf programs read from `examples-bpf/samples.toml`
//! ([`Sample`], with their version ranges and `absent` ranges), test_bpf's per-version
//! expectations from `examples-bpf/test_bpf.toml`, and the options `kernel/config`
//! checks (`examples-bpf/lab-config.frag`). The data files are embedded, so an installed
//! binary needs no checkout. The tests themselves are the impls in `suite/tests/`. Also
//! owns `--filter` matching.

use std::time::Duration;

use serde::Deserialize;

use crate::version::KernelVersion;

use super::SuiteError;

pub const SAMPLES_TOML: &str = include_str!("../../../examples-bpf/samples.toml");
pub const TEST_BPF_TOML: &str = include_str!("../../../examples-bpf/test_bpf.toml");
/// The options `kernel/config` checks by default (fragment syntax).
pub const LAB_CONFIG: &str = include_str!("../../../examples-bpf/lab-config.frag");

/// `SYMBOL=value` pairs (without `CONFIG_`) from fragment text; `# CONFIG_X is not set` is `n`.
pub fn fragment_pairs(text: &str) -> Vec<(String, String)> {
    super::parse::parse_config(text).into_iter().collect()
}

/// A version range in which a sample is known to be absent (samples.toml `absent`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absent {
    /// First version of the range (inclusive).
    pub from: String,
    /// Last version of the range (inclusive); open-ended when missing.
    #[serde(default)]
    pub to: Option<String>,
    /// Why it cannot run there, in words (shown as the skip reason).
    pub why: String,
}

/// One samples/bpf program from samples.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// The user program's file name in samples/bpf (also the test id suffix).
    pub name: String,
    /// What kind of BPF program it exercises (socket filter, kprobe, ...).
    pub kind: String,
    /// First kernel version it exists in (and works self-contained in the guest).
    pub since: String,
    /// Last kernel version it exists in (inclusive), if it was removed or renamed.
    #[serde(default)]
    pub until: Option<String>,
    /// Extra files from samples/bpf the program opens (its BPF objects), any that exist.
    #[serde(default)]
    pub objects: Vec<String>,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// How it is triggered (for people; the program or `pre` does it).
    pub trigger: String,
    /// Shell commands run in the guest before the program (e.g. start a load).
    #[serde(default)]
    pub pre: Option<String>,
    pub timeout_s: u64,
    /// Regex the program's output must match.
    pub expect: String,
    /// What a match shows, in words (the table's reason on a pass).
    #[serde(default)]
    pub shows: Option<String>,
    /// Version ranges inside since..until where the program cannot run (reported as
    /// not-applicable skips rather than left out, so a matrix shows why).
    #[serde(default)]
    pub absent: Vec<Absent>,
    /// Regex the program's output must not match.
    #[serde(default)]
    pub reject: Option<String>,
    /// The program runs until killed: reaching the timeout is fine if `expect` matched.
    #[serde(default)]
    pub runs_forever: bool,
    /// An extended regex (busybox `grep -E` in the guest): once the output matches, the
    /// program gets SIGINT, which it must handle by printing its totals and exiting 0.
    /// The judge is unchanged; the program just stops once it has shown its result.
    #[serde(default)]
    pub stop_on: Option<String>,
    /// Safe to run concurrently with test_bpf and the other parallel samples.
    #[serde(default)]
    pub parallel: bool,
    /// CPU-bound with nothing timed: runs at nice 19 in the parallel batch
    /// ([`SuiteTest::nice`](super::tests::SuiteTest::nice)).
    #[serde(default)]
    pub nice: bool,
    /// Runs (with `pre`) in a network namespace of its own whose lo is up: a program
    /// that drops every packet on lo (xdp1) then leaves the other samples' lo alone.
    #[serde(default)]
    pub netns: bool,
}

impl Sample {
    pub fn exists_in(&self, v: &KernelVersion) -> Result<bool, SuiteError> {
        let since = parse_ver(&self.since)?;
        let until = self.until.as_deref().map(parse_ver).transpose()?;
        Ok(*v >= since && until.is_none_or(|u| *v <= u))
    }
    /// Why the program cannot run on `v` when an `absent` range covers it.
    pub fn absent_in(&self, v: &KernelVersion) -> Result<Option<&str>, SuiteError> {
        for a in &self.absent {
            let from = parse_ver(&a.from)?;
            let to = a.to.as_deref().map(parse_ver).transpose()?;
            if *v >= from && to.is_none_or(|t| *v <= t) {
                return Ok(Some(&a.why));
            }
        }
        Ok(None)
    }
}

#[derive(Debug, Deserialize)]
struct SamplesFile {
    sample: Vec<Sample>,
}

/// Parse samples.toml text; checks every regex compiles.
pub fn parse_samples(text: &str) -> Result<Vec<Sample>, SuiteError> {
    let f: SamplesFile = toml::from_str(text).map_err(|e| SuiteError::Data {
        file: "samples.toml",
        message: e.to_string(),
    })?;
    for s in &f.sample {
        regex::Regex::new(&s.expect).map_err(|e| SuiteError::Data {
            file: "samples.toml",
            message: format!("{}: bad expect regex: {e}", s.name),
        })?;
        if let Some(r) = &s.reject {
            regex::Regex::new(r).map_err(|e| SuiteError::Data {
                file: "samples.toml",
                message: format!("{}: bad reject regex: {e}", s.name),
            })?;
        }
        if let Some(r) = &s.stop_on {
            // POSIX ERE in the guest: no Perl classes (\d, \s), which glibc's ERE lacks.
            let perl = ["\\d", "\\s", "\\w", "\\D", "\\S", "\\W"];
            if r.is_empty() || perl.iter().any(|c| r.contains(c)) {
                return Err(SuiteError::Data {
                    file: "samples.toml",
                    message: format!(
                        "{}: stop_on {r:?} must be a non-empty POSIX extended regex (use [0-9], [[:space:]])",
                        s.name
                    ),
                });
            }
            regex::Regex::new(r).map_err(|e| SuiteError::Data {
                file: "samples.toml",
                message: format!("{}: bad stop_on regex: {e}", s.name),
            })?;
        }
        if !super::guest::safe_name(&s.name) || s.name.contains('/') {
            return Err(SuiteError::Data {
                file: "samples.toml",
                message: format!("sample name {:?} must be a plain file name", s.name),
            });
        }
        parse_ver(&s.since)?;
        if let Some(u) = &s.until {
            parse_ver(u)?;
        }
        for a in &s.absent {
            parse_ver(&a.from)?;
            if let Some(t) = &a.to {
                parse_ver(t)?;
            }
        }
    }
    Ok(f.sample)
}

fn parse_ver(s: &str) -> Result<KernelVersion, SuiteError> {
    KernelVersion::parse_plain(s).ok_or_else(|| SuiteError::Data {
        file: "data",
        message: format!("bad kernel version {s:?}"),
    })
}

/// Expected JIT count: an exact `J/K`, or "all" (J = K).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JitCount {
    Exact { jited: u32, total: u32 },
    All,
}

impl std::str::FromStr for JitCount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "all" {
            return Ok(JitCount::All);
        }
        let (a, b) = s
            .split_once('/')
            .ok_or_else(|| format!("expected \"J/K\" or \"all\", got {s:?}"))?;
        Ok(JitCount::Exact {
            jited: a.trim().parse().map_err(|_| format!("bad J in {s:?}"))?,
            total: b.trim().parse().map_err(|_| format!("bad K in {s:?}"))?,
        })
    }
}

impl std::fmt::Display for JitCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JitCount::Exact { jited, total } => write!(f, "{jited}/{total}"),
            JitCount::All => write!(f, "all"),
        }
    }
}

/// What test_bpf must report on this kernel, and how to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestBpfExpect {
    /// Module parameters (`test_range=0,299`), empty for the whole set.
    pub params: Vec<String>,
    pub jit: JitCount,
    pub full: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBpfSeries {
    /// The architecture the counts were measured on (default x86_64): each architecture's
    /// JIT differs, so its series are its own.
    #[serde(default = "x86_64_name")]
    arch: String,
    min: String,
    max: String,
    params: String,
    jit: String,
    full_params: String,
    full_jit: String,
    timeout_s: u64,
}

#[derive(Debug, Deserialize)]
struct TestBpfFile {
    series: Vec<TestBpfSeries>,
}

fn x86_64_name() -> String {
    "x86_64".into()
}

/// test_bpf's expectation for `v` on `arch` from test_bpf.toml text (`full`: the whole
/// set). Only `arch`'s series count: none means no expectation (the caller's default).
pub fn test_bpf_expect(
    text: &str,
    v: &KernelVersion,
    full: bool,
    arch: &crate::arch::Arch,
) -> Result<Option<(TestBpfExpect, Duration)>, SuiteError> {
    let f: TestBpfFile = toml::from_str(text).map_err(|e| SuiteError::Data {
        file: "test_bpf.toml",
        message: e.to_string(),
    })?;
    // The series containing `v`; for a kernel newer than every series, the newest one
    // (test_bpf only grows, and its default subset stays the same).
    let mut newest: Option<(KernelVersion, usize)> = None;
    let mut hit = None;
    for (i, s) in f.series.iter().enumerate() {
        if s.arch != arch.name {
            continue;
        }
        let (min, max) = (parse_ver(&s.min)?, parse_ver(&s.max)?);
        if *v >= min && *v <= max {
            hit = Some(i);
        }
        if newest.is_none_or(|(m, _)| max > m) {
            newest = Some((max, i));
        }
    }
    let pick = hit.or(newest.filter(|(max, _)| v > max).map(|(_, i)| i));
    let Some(s) = pick.map(|i| &f.series[i]) else {
        return Ok(None);
    };
    let (params, jit) = if full {
        (s.full_params.clone(), s.full_jit.clone())
    } else {
        (s.params.clone(), s.jit.clone())
    };
    let jit = jit.parse().map_err(|m| SuiteError::Data {
        file: "test_bpf.toml",
        message: m,
    })?;
    let timeout = Duration::from_secs(if full { s.timeout_s * 3 } else { s.timeout_s });
    Ok(Some((
        TestBpfExpect {
            params: params.split_whitespace().map(str::to_string).collect(),
            jit,
            full,
        },
        timeout,
    )))
}

/// `--filter`: comma-separated patterns; `*` matches any run of characters; a pattern
/// without `*` matches the name exactly or as a `prefix/`. Empty filter keeps everything.
pub fn matches_filter(name: &str, filter: &str) -> bool {
    let pats: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    pats.is_empty()
        || pats.iter().any(|p| {
            glob(p, name)
                || (!p.contains('*') && name.starts_with(&format!("{}/", p.trim_end_matches('/'))))
        })
}

fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KernelVersion {
        KernelVersion::parse_plain(s).unwrap()
    }

    #[test]
    fn embedded_data_parses_and_has_six_samples_for_5_10() {
        let samples = parse_samples(SAMPLES_TOML).unwrap();
        let in_510 = samples
            .iter()
            .filter(|s| s.exists_in(&v("5.10.46")).unwrap())
            .count();
        assert!(
            in_510 >= 6,
            "samples.toml must list at least 6 programs for 5.10, has {in_510}"
        );
        let names: Vec<String> =
            crate::suite::tests::all(&v("5.10.46"), false, crate::arch::Arch::x86_64())
                .unwrap()
                .iter()
                .map(|t| t.id().to_string())
                .collect();
        for want in [
            "kernel/btf",
            "kernel/jit",
            "kernel/config",
            "hello",
            "hello-bcc",
            "cbpf-port80",
            "core-hello",
            "test_bpf",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
    }

    #[test]
    fn test_bpf_expectations_per_version() {
        let (e, _) = test_bpf_expect(
            TEST_BPF_TOML,
            &v("5.10.46"),
            false,
            crate::arch::Arch::x86_64(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.jit, JitCount::All);
        assert_eq!(
            e.params,
            ["test_range=0,285"],
            "5.10 runs the classic tests by default"
        );
        let (e, _) = test_bpf_expect(
            TEST_BPF_TOML,
            &v("5.10.46"),
            true,
            crate::arch::Arch::x86_64(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            e.jit,
            JitCount::Exact {
                jited: 365,
                total: 366
            }
        );
        assert!(e.params.is_empty(), "--full: the whole set");
        let (e, _) = test_bpf_expect(
            TEST_BPF_TOML,
            &v("6.12.95"),
            false,
            crate::arch::Arch::x86_64(),
        )
        .unwrap()
        .unwrap();
        assert!(!e.params.is_empty(), "6.x runs a subset by default");
        let (e, t) = test_bpf_expect(
            TEST_BPF_TOML,
            &v("6.12.95"),
            true,
            crate::arch::Arch::x86_64(),
        )
        .unwrap()
        .unwrap();
        assert!(e.params.is_empty());
        assert_eq!(
            e.jit,
            JitCount::Exact {
                jited: 1037,
                total: 1037
            }
        );
        assert!(t >= Duration::from_secs(300));
        assert!(test_bpf_expect(
            TEST_BPF_TOML,
            &v("4.19.1"),
            false,
            crate::arch::Arch::x86_64()
        )
        .unwrap()
        .is_none());
        // 7.x runs the default subset, not the whole set.
        let (e, _) = test_bpf_expect(
            TEST_BPF_TOML,
            &v("7.1.8"),
            false,
            crate::arch::Arch::x86_64(),
        )
        .unwrap()
        .unwrap();
        assert!(!e.params.is_empty(), "7.x runs a subset by default");
        let (e, _) = test_bpf_expect(
            TEST_BPF_TOML,
            &v("7.1.8"),
            true,
            crate::arch::Arch::x86_64(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            e.jit,
            JitCount::Exact {
                jited: 1041,
                total: 1041
            }
        );
        // A kernel newer than every series gets the newest series, not nothing.
        let (e, _) = test_bpf_expect(
            TEST_BPF_TOML,
            &v("9.2.1"),
            false,
            crate::arch::Arch::x86_64(),
        )
        .unwrap()
        .unwrap();
        assert!(!e.params.is_empty());
        let older_only = "[[series]]\nmin = \"5.4\"\nmax = \"5.999\"\nparams = \"a\"\njit = \"all\"\nfull_params = \"\"\nfull_jit = \"all\"\ntimeout_s = 1\n";
        assert_eq!(
            test_bpf_expect(older_only, &v("6.1.1"), false, crate::arch::Arch::x86_64())
                .unwrap()
                .unwrap()
                .0
                .params,
            ["a"]
        );
        assert!(
            test_bpf_expect(older_only, &v("5.3.1"), false, crate::arch::Arch::x86_64())
                .unwrap()
                .is_none(),
            "older than every series: none"
        );
    }

    #[test]
    fn jit_count_text() {
        assert_eq!(
            "365/366".parse::<JitCount>().unwrap(),
            JitCount::Exact {
                jited: 365,
                total: 366
            }
        );
        assert_eq!("all".parse::<JitCount>().unwrap(), JitCount::All);
        assert!("365".parse::<JitCount>().is_err());
    }

    #[test]
    fn sample_version_ranges() {
        let s = Sample {
            name: "x".into(),
            kind: "k".into(),
            since: "5.4".into(),
            until: Some("5.15.999".into()),
            objects: vec![],
            args: vec![],
            trigger: "t".into(),
            pre: None,
            timeout_s: 1,
            expect: ".".into(),
            shows: None,
            absent: vec![],
            reject: None,
            runs_forever: false,
            stop_on: None,
            parallel: false,
            nice: false,
            netns: false,
        };
        assert!(s.exists_in(&v("5.10.46")).unwrap());
        assert!(!s.exists_in(&v("6.1.8")).unwrap());
        assert!(!s.exists_in(&v("4.19")).unwrap());
    }

    #[test]
    fn stop_on_must_be_a_posix_extended_regex() {
        let base =
            "[[sample]]\nname='a'\nkind='k'\nsince='5.4'\ntrigger='t'\ntimeout_s=1\nexpect='x'\n";
        let ok = parse_samples(&format!(
            "{base}stop_on='proto 1:[[:space:]]+[1-9][0-9]*'\n"
        ))
        .unwrap();
        assert_eq!(
            ok[0].stop_on.as_deref(),
            Some("proto 1:[[:space:]]+[1-9][0-9]*")
        );
        for bad in [r"count \d+", r"a\s+b", ""] {
            let e = parse_samples(&format!("{base}stop_on='{bad}'\n")).unwrap_err();
            assert!(e.to_string().contains("POSIX extended regex"), "{bad}: {e}");
        }
    }

    #[test]
    fn absent_ranges_mark_a_sample_not_applicable() {
        let text = "[[sample]]\nname='a'\nkind='k'\nsince='5.4'\ntrigger='t'\ntimeout_s=1\nexpect='x'\nshows='x seen'\n\
                    [[sample.absent]]\nfrom='5.8'\nto='5.10.999'\nwhy='renamed in 5.8'\n";
        let s = &parse_samples(text).unwrap()[0];
        assert_eq!(s.shows.as_deref(), Some("x seen"));
        assert_eq!(s.absent_in(&v("5.10.46")).unwrap(), Some("renamed in 5.8"));
        assert_eq!(s.absent_in(&v("5.4.1")).unwrap(), None);
        assert_eq!(s.absent_in(&v("6.1")).unwrap(), None);
        let bad = text.replace("to='5.10.999'", "to='five'");
        assert!(parse_samples(&bad).is_err());
        // The embedded list: every sample says in words what a pass shows.
        for s in parse_samples(SAMPLES_TOML).unwrap() {
            assert!(
                s.shows
                    .as_deref()
                    .is_some_and(|w| !w.is_empty() && w.len() <= 40),
                "{}: `shows` missing or long",
                s.name
            );
        }
    }

    #[test]
    fn bad_regex_in_data_is_an_error() {
        let e = parse_samples(
            "[[sample]]\nname='a'\nkind='k'\nsince='5.4'\ntrigger='t'\ntimeout_s=1\nexpect='('\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("bad expect regex"), "{e}");
    }

    #[test]
    fn lab_fragment_has_the_seed_options() {
        let p = fragment_pairs(LAB_CONFIG);
        for want in [
            "BPF",
            "BPF_SYSCALL",
            "BPF_JIT",
            "DEBUG_INFO_BTF",
            "KPROBES",
            "TEST_BPF",
        ] {
            assert!(p.iter().any(|(k, _)| k == want), "{want}");
        }
        assert!(p.contains(&("TEST_BPF".to_string(), "m".to_string())));
    }

    #[test]
    fn filters() {
        assert!(matches_filter("samples/sockex1", "samples"));
        assert!(matches_filter("samples/sockex1", "samples/*"));
        assert!(matches_filter("kernel/jit", "hello,kernel/*"));
        assert!(matches_filter("hello", "hello"));
        assert!(!matches_filter("hello-bcc", "hello"));
        assert!(matches_filter("hello-bcc", "hello*"));
        assert!(!matches_filter("test_bpf", "kernel"));
        assert!(matches_filter("anything", ""));
        assert!(matches_filter("samples/tracex1", "*trace*"));
    }
}
