//! Seeds keep their meaning: a handful of seeds (mix, random, PCT, URW, disk faults) must derive
//! the same configuration and workload (proptest's draws) and give the same trace (shuttle's
//! schedule and the engine's behaviour) as when this table was last blessed. A `cargo
//! update` of proptest or shuttle, a change to the generators or to the engine's behaviour
//! fails here, so a published seed ("replay 431 --strategy pct") changes what it means only
//! on purpose.
//!
//! The first hash covers the derived configuration and workload, the second the recorded
//! history: when only the second moved, the schedule or the engine changed, not the draws.
//!
//! To change what seeds mean on purpose: `JETSIM_BLESS_SEEDS=1 cargo test -p jetsim --test
//! seed_meaning -- --nocapture` prints the new table (a failing run prints it too); paste it
//! over `GOLDEN` below and say in the commit why seeds changed meaning.

use jetsim::config::{FaultMode, Scheduling};
use jetsim::simulation::{run_seed_with, scheduling_name};
use jetsim_engine::Mutations;

/// (seed, strategy, faults, configuration-and-workload hash, trace hash).
const GOLDEN: &[(u64, &str, bool, &str, &str)] = &[
    (0, "mix", false, "711856a63bf20afe", "3bd2283b44ca6bed"),
    (1, "mix", false, "e1ade17deaaeebc3", "108bd069ea7758a1"),
    (2, "mix", false, "c0e2d86e073c1690", "97443c98be35e579"),
    (431, "mix", false, "990cd0ef223475f7", "31b374e52cb7b791"),
    (3, "random", false, "2bccaa3ab64b7606", "dc1df0bd1ccf8746"),
    (4, "random", false, "c2da4917c5143df6", "215948dfc09c3258"),
    (5, "pct", false, "8770d670a396faed", "26d0f9ddcd7bdc46"),
    (6, "pct", false, "04b7960cc36886d8", "01b2fdd4d48ecbc8"),
    (7, "mix", true, "b17a04511c89a947", "e266a4b7399bb82b"),
    (8, "pct", true, "e7a10cc56670c205", "a573d392785ea57d"),
    (9, "urw", false, "031ac6412d58cf68", "4b47becd3f3d71b0"),
];

/// The seeds the table pins.
const PINNED: &[(u64, Scheduling, bool)] = &[
    (0, Scheduling::Mix, false),
    (1, Scheduling::Mix, false),
    (2, Scheduling::Mix, false),
    (431, Scheduling::Mix, false),
    (3, Scheduling::Random, false),
    (4, Scheduling::Random, false),
    (5, Scheduling::Pct, false),
    (6, Scheduling::Pct, false),
    (7, Scheduling::Mix, true),
    (8, Scheduling::Pct, true),
    (9, Scheduling::Urw, false),
];

/// FNV-1a over the canonical JSON: the same on every machine.
fn fnv(value: &impl serde::Serialize) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in serde_json::to_vec(value).unwrap() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn observe() -> Vec<(u64, &'static str, bool, String, String)> {
    PINNED
        .iter()
        .map(|&(seed, scheduling, faults)| {
            let mode = if faults {
                FaultMode::Seeded
            } else {
                FaultMode::Off
            };
            let report = run_seed_with(seed, scheduling, mode, Mutations::NONE);
            (
                seed,
                scheduling_name(scheduling),
                faults,
                fnv(&(&report.config, &report.workload)),
                format!("{:016x}", report.trace_hash),
            )
        })
        .collect()
}

fn table(rows: &[(u64, &str, bool, String, String)]) -> String {
    let mut text = String::from("const GOLDEN: &[(u64, &str, bool, &str, &str)] = &[\n");
    for (seed, strategy, faults, drawn, trace) in rows {
        text.push_str(&format!(
            "    ({seed}, \"{strategy}\", {faults}, \"{drawn}\", \"{trace}\"),\n"
        ));
    }
    text.push_str("];\n");
    text
}

#[test]
fn pinned_seeds_derive_the_same_workloads_and_traces() {
    let observed = observe();
    // Every pinned seed ran to the end and passed: a golden hash of a panic means nothing.
    for (seed, strategy, faults, _, trace) in &observed {
        assert_ne!(
            trace, "0000000000000000",
            "seed {seed} ({strategy}, faults {faults}) panicked"
        );
    }
    if std::env::var_os("JETSIM_BLESS_SEEDS").is_some() {
        println!(
            "JETSIM_BLESS_SEEDS: the table for sim/tests/seed_meaning.rs:\n{}",
            table(&observed)
        );
        return;
    }
    let golden: Vec<(u64, &str, bool, String, String)> = GOLDEN
        .iter()
        .map(|&(seed, strategy, faults, drawn, trace)| {
            (seed, strategy, faults, drawn.to_owned(), trace.to_owned())
        })
        .collect();
    let mut changed = Vec::new();
    for (now, then) in observed.iter().zip(&golden) {
        if now != then {
            let what = if now.3 != then.3 {
                "its configuration or workload (proptest's draws, the generators)"
            } else {
                "its trace (shuttle's schedule or the engine's behaviour)"
            };
            changed.push(format!(
                "seed {} ({}, faults {}): {what} changed",
                now.0, now.1, now.2
            ));
        }
    }
    if golden.len() != observed.len() {
        changed.push(format!(
            "the table has {} rows for {} pinned seeds",
            golden.len(),
            observed.len()
        ));
    }
    assert!(
        changed.is_empty(),
        "seeds changed meaning:\n  {}\n\nIf that is on purpose (say why in the commit), paste this over GOLDEN in \
         sim/tests/seed_meaning.rs:\n\n{}",
        changed.join("\n  "),
        table(&observed)
    );
}
