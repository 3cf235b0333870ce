//! docs/coverage.md's "on paper" table (the kernel.org-only series: 5.4, 5.15 and the
//! seed's 5.16.10, which Debian's archive does not serve) is what the fix catalogue
//! plans for those kernels with the three measured toolchains. This test recomputes it
//! from the catalogue so the page cannot drift from the data; on a mismatch it prints
//! the table to paste.

use std::collections::BTreeMap;

use labctl::build::catalogue::{self, Catalogue, DottedVersion, Facts};
use labctl::version::KernelVersion;

const START: &str = "<!-- on-paper:start -->";
const END: &str = "<!-- on-paper:end -->";

/// The versions probed in each toolchain (build.json of the measured builds).
const TOOLCHAINS: &[(&str, &[(&str, &str)])] = &[
    (
        "host (Debian 12)",
        &[
            ("gcc", "12.2.0"),
            ("binutils", "2.40"),
            ("pahole", "1.24"),
            ("clang", "14.0.6"),
            ("glibc", "2.36"),
        ],
    ),
    (
        "debian:bullseye",
        &[
            ("gcc", "10.2.1"),
            ("binutils", "2.35.2"),
            ("pahole", "1.20"),
            ("clang", "11.0.1"),
            ("glibc", "2.31"),
        ],
    ),
    (
        "debian:trixie",
        &[
            ("gcc", "14.2.0"),
            ("binutils", "2.44"),
            ("pahole", "1.30"),
            ("clang", "19.1.7"),
            ("glibc", "2.41"),
        ],
    ),
];

/// Representative releases: before and after the stable fixes that matter.
const KERNELS: &[(u32, u32, u32)] = &[
    (5, 4, 180),
    (5, 4, 181),
    (5, 15, 24),
    (5, 15, 66),
    (5, 16, 10),
];

/// What the lab profile sets that the catalogue's config predicates look at.
const LAB_CONFIG: &str = "CONFIG_CC_IS_GCC=y\nCONFIG_BPF_SYSCALL=y\nCONFIG_DEBUG_INFO=y\nCONFIG_DEBUG_INFO_BTF=y\nCONFIG_CC_OPTIMIZE_FOR_SIZE=y\n";

fn table() -> String {
    let cat = Catalogue::builtin();
    let mut out = String::from("| kernel |");
    for (name, _) in TOOLCHAINS {
        out.push_str(&format!(" {name} |"));
    }
    out.push_str("\n|---|");
    for _ in TOOLCHAINS {
        out.push_str("---|");
    }
    out.push('\n');
    for &(a, b, c) in KERNELS {
        let k = KernelVersion::new(a, b, c);
        out.push_str(&format!("| {k} |"));
        for (_, tools) in TOOLCHAINS {
            let tools: BTreeMap<String, DottedVersion> = tools
                .iter()
                .map(|(t, v)| (t.to_string(), DottedVersion::parse(v).unwrap()))
                .collect();
            let facts = Facts::for_host(k, tools, LAB_CONFIG.to_string());
            let plan = catalogue::plan(cat, &facts, true);
            let link = |ids: &[String]| {
                ids.iter()
                    .map(|id| format!("[`{id}`](troubleshooting.md#{id})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut cell = if plan.apply.is_empty() {
                "no fix".to_string()
            } else {
                format!("fixes {}", link(&plan.apply))
            };
            if !plan.notes.is_empty() {
                cell.push_str(&format!("; notes {}", link(&plan.notes)));
            }
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_on_paper_table_is_what_the_catalogue_plans() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/coverage.md"))
        .unwrap();
    let (Some(s), Some(e)) = (doc.find(START), doc.find(END)) else {
        panic!("docs/coverage.md lacks the {START} … {END} block");
    };
    let have = doc[s + START.len()..e].trim();
    let want = table();
    assert_eq!(
        have,
        want.trim(),
        "docs/coverage.md's on-paper table is stale; it should be:\n\n{want}"
    );
}
