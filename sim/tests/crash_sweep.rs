//! The simulator's crash-point sweep (`jetsim sweep`): every disk operation of each seed's run
//! in turn gets the power cut, then a crash, recovery and every checker. The unmutated engine
//! must pass every point; the planted durability bugs must be caught at a point the printed
//! command replays exactly.
//!
//! `JETSIM_SWEEP_SEEDS` raises the sweep (default 40 workloads).

use jetsim::campaign::CampaignOptions;
use jetsim::check::Rule;
use jetsim::config::{FaultMode, Scheduling};
use jetsim::simulation::run_seed_with;
use jetsim::sweep::{replay_point_command, run_sweep, SweepOptions};
use jetsim_engine::{Mutant, Mutations};
use std::process::Command;

fn options(seeds: u64, start: u64, mutant: Option<&str>) -> SweepOptions {
    CampaignOptions {
        seeds,
        start,
        scheduling: Scheduling::Mix,
        json: None,
        check_determinism: false,
        mutant: mutant.map(str::to_owned),
        jobs: 2,
        progress: false,
        faults: true,
        ..CampaignOptions::default()
    }
}

#[test]
fn every_crash_point_of_every_workload_recovers_exactly_the_committed_data() {
    let seeds = std::env::var("JETSIM_SWEEP_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let options = options(seeds, 0, None);
    let summary = run_sweep(&options).unwrap();
    println!(
        "sweep: {} workloads, {} crash points; met by {:?}; at {:?}",
        summary.workloads, summary.crash_points, summary.met_by, summary.by_file
    );
    let failures: Vec<String> = summary
        .failures
        .iter()
        .map(|f| {
            format!(
                "seed {} crash at {:?}: {:?}\n  reproduce: {}",
                f.seed,
                f.crash_at,
                f.violations,
                replay_point_command(&options, f.seed, f.crash_at)
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The sweep reached the moments that matter: more points than workloads, and power cuts
    // met inside commits, stops, the background checkpoint flush and the final term, in the
    // log, the database files and the checkpoint file.
    assert!(summary.crash_points > 5 * seeds, "{}", summary.crash_points);
    for met in [
        "JetCommitTransaction",
        "JetStopServiceInstance",
        "JetTerm",
        "checkpoint flush",
    ] {
        assert!(summary.met_by.contains_key(met), "no cut met by {met}");
    }
    for file in ["log", "database file", "checkpoint file"] {
        assert!(summary.by_file.contains_key(file), "no cut in the {file}");
    }
}

/// Sweeps seeds from 0 one at a time until a crash point fails the durability rule (the
/// recovery after the cut: other rules, such as commit-durable, may fail every point of a
/// seed without a crash); returns (seed, point, points failing it).
fn first_failing_point(mutant: &str, seeds_max: u64) -> (u64, Option<u64>, usize) {
    for seed in 0..seeds_max {
        let summary = run_sweep(&options(1, seed, Some(mutant))).unwrap();
        let durability: Vec<_> = summary
            .failures
            .iter()
            .filter(|f| f.violations.iter().any(|v| v.rule == Rule::Durability))
            .collect();
        if let Some(failure) = durability.first() {
            return (seed, failure.crash_at, durability.len());
        }
    }
    panic!("{mutant}: no crash point of seeds 0..{seeds_max} failed");
}

/// The failing point replays: in process with the same trace, and through the binary with
/// exactly the printed command.
fn assert_replays(mutant: Mutant, seed: u64, crash_at: Option<u64>) {
    let name = format!("{mutant:?}");
    let mutations = Mutations::NONE.with(mutant);
    let first = run_seed_with(
        seed,
        Scheduling::Mix,
        FaultMode::CrashAt(crash_at),
        mutations,
    );
    let again = run_seed_with(
        seed,
        Scheduling::Mix,
        FaultMode::CrashAt(crash_at),
        mutations,
    );
    assert!(!first.passed());
    assert_eq!(first.trace_hash, again.trace_hash);
    assert_eq!(first.verdict, again.verdict);

    let command = replay_point_command(&options(1, seed, Some(&name)), seed, crash_at);
    let arguments: Vec<&str> = command
        .split_whitespace()
        .skip_while(|w| *w != "--")
        .skip(1)
        .collect();
    assert!(arguments.contains(&"--crash-at"), "{command}");
    let output = Command::new(env!("CARGO_BIN_EXE_jetsim"))
        .args(&arguments)
        .output()
        .expect("run jetsim");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("[durability]"), "{stdout}");
    assert!(
        stdout.contains(&format!("trace hash {:016x}", first.trace_hash)),
        "{stdout}"
    );
    assert!(stdout.contains(&command), "{stdout}");
}

#[test]
fn the_sweep_catches_a_commit_acknowledged_before_its_log_sync() {
    let (seed, crash_at, failing) = first_failing_point("CommitAckBeforeLogSync", 20);
    println!(
        "CommitAckBeforeLogSync: seed {seed}, crash at {crash_at:?}, {failing} failing points"
    );
    assert_replays(Mutant::CommitAckBeforeLogSync, seed, crash_at);
}

#[test]
fn the_sweep_catches_a_page_written_before_its_log() {
    let (seed, crash_at, failing) = first_failing_point("PageBeforeLog", 100);
    println!("PageBeforeLog: seed {seed}, crash at {crash_at:?}, {failing} failing points");
    assert_replays(Mutant::PageBeforeLog, seed, crash_at);
}

#[test]
fn a_run_with_disk_faults_replays_byte_for_byte() {
    // Determinism with faults: the disk's errors, the power cut, the crash's losses and
    // tears and recovery all come from the seed; two runs give the same trace hash (which
    // covers the injected faults, the crash point and what recovery found).
    let mut cuts = 0;
    for seed in 0..40 {
        for mode in [FaultMode::Seeded, FaultMode::CrashAt(Some(seed % 7))] {
            let a = run_seed_with(seed, Scheduling::Mix, mode, Mutations::NONE);
            let b = run_seed_with(seed, Scheduling::Mix, mode, Mutations::NONE);
            assert_ne!(a.trace_hash, 0, "seed {seed} {mode:?} recorded nothing");
            assert_eq!(
                a.trace_hash, b.trace_hash,
                "seed {seed} {mode:?} is not deterministic"
            );
            let history = a.history.expect("completed");
            assert!(history.io_faults && history.recovery_work.is_some());
            cuts += usize::from(history.crash_point.is_some());
        }
    }
    assert!(
        cuts > 20,
        "only {cuts} runs had their power cut during the run"
    );
}
