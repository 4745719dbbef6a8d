//! The bounded campaign `cargo test` runs: a few hundred seeds must pass every checker, the
//! same seed must give the same trace, and every checker must be seen catching a planted bug.
//!
//! `JETSIM_SEEDS` raises the campaign (default 300); `JETSIM_START` moves it.

use jetsim::campaign::{first_detection, run_campaign, CampaignOptions};
use jetsim::check::Rule;
use jetsim::config::Scheduling;
use jetsim::simulation::{replay_command, run_seed};
use jetsim_engine::{Mutant, Mutations};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn a_bounded_campaign_passes_every_checker() {
    let options = CampaignOptions {
        seeds: env_u64("JETSIM_SEEDS", 300),
        start: env_u64("JETSIM_START", 0),
        scheduling: Scheduling::Mix,
        json: None,
        check_determinism: false,
        mutant: None,
        jobs: 2,
        progress: false,
        faults: false,
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).unwrap();
    let failures: Vec<String> = summary
        .failures
        .iter()
        .map(|r| {
            format!(
                "seed {}: {:?}\n  reproduce: {}",
                r.config.seed,
                r.verdict.violations,
                replay_command(r.config.seed, Scheduling::Mix, None)
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(summary.seeds_run, options.seeds);
    // The campaign is not vacuous: stops land before, during and after other calls.
    assert!(
        summary.stops_landed.iter().all(|&n| n > 0),
        "stop landings {:?}",
        summary.stops_landed
    );
    assert!(
        summary.calls > 10 * options.seeds,
        "too few calls: {}",
        summary.calls
    );
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for seed in 0..env_u64("JETSIM_DETERMINISM_SEEDS", 40) {
        for scheduling in [Scheduling::Random, Scheduling::Pct] {
            let a = run_seed(seed, scheduling, Mutations::NONE);
            let b = run_seed(seed, scheduling, Mutations::NONE);
            assert_ne!(a.trace_hash, 0, "seed {seed} recorded nothing");
            assert_eq!(
                a.trace_hash, b.trace_hash,
                "seed {seed} ({scheduling:?}) is not deterministic"
            );
            assert_eq!(a.history, b.history);
        }
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let hashes: std::collections::BTreeSet<u64> = (0..20)
        .map(|s| run_seed(s, Scheduling::Mix, Mutations::NONE).trace_hash)
        .collect();
    assert!(
        hashes.len() >= 19,
        "seeds collapse onto the same trace: {hashes:?}"
    );
}

/// Each rule, with a planted bug it catches and the most seeds it may take. The bounds are
/// generous multiples of what was measured (see `cargo run --release -p jetsim-models --bin
/// mutants`); a bug found later than this means a checker lost its teeth.
const TEETH: &[(Rule, Mutant, Scheduling, u64)] = &[
    (
        Rule::StopDrained,
        Mutant::StopFlagLast,
        Scheduling::Pct,
        200,
    ),
    (
        Rule::StopRule,
        Mutant::AllowlistMissingRollback,
        Scheduling::Pct,
        50,
    ),
    (
        Rule::Linearizability,
        Mutant::AllowlistExtraCommit,
        Scheduling::Pct,
        100,
    ),
    (
        Rule::Linearizability,
        Mutant::EndSessionIgnoresContext,
        Scheduling::Random,
        400,
    ),
    (
        Rule::FailureAtomicity,
        Mutant::DefragStoppedBeforeValidation,
        Scheduling::Pct,
        100,
    ),
    (
        Rule::FailureAtomicity,
        Mutant::RollbackLeavesTablesOpen,
        Scheduling::Random,
        600,
    ),
    (
        Rule::Preparation,
        Mutant::VersionCleanupNotSignalled,
        Scheduling::Random,
        50,
    ),
    (
        Rule::Preparation,
        Mutant::CheckpointQuiesceSkipped,
        Scheduling::Pct,
        50,
    ),
    (
        Rule::NoPanic,
        Mutant::CheckThenActGate,
        Scheduling::Random,
        3000,
    ),
];

#[test]
fn every_checker_catches_its_planted_bug() {
    for &(rule, mutant, scheduling, max_seeds) in TEETH {
        let detection = first_detection(Mutations::NONE.with(mutant), scheduling, 0, max_seeds)
            .unwrap_or_else(|| {
                panic!("{mutant:?} not caught by any rule within {max_seeds} {scheduling:?} seeds")
            });
        assert!(
            detection.rules.contains(&rule),
            "{mutant:?} was caught at seed {} by {:?}, not by {rule:?}",
            detection.seed,
            detection.rules
        );
        // The unmutated engine passes the very seed that caught the bug.
        let clean = run_seed(detection.seed, scheduling, Mutations::NONE);
        assert!(
            clean.passed(),
            "seed {} fails without the mutant: {:?}",
            detection.seed,
            clean.verdict.violations
        );
    }
}

#[test]
fn a_bounded_fault_campaign_recovers_exactly_the_committed_data() {
    // Seeded I/O errors, power cuts, a crash with lost and torn unsynced writes, recovery.
    let options = CampaignOptions {
        seeds: env_u64("JETSIM_FAULT_SEEDS", 200),
        start: 0,
        scheduling: Scheduling::Mix,
        json: None,
        check_determinism: false,
        mutant: None,
        jobs: 2,
        progress: false,
        faults: true,
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).unwrap();
    let failures: Vec<String> = summary
        .failures
        .iter()
        .map(|r| {
            format!(
                "seed {}: {:?}\n  reproduce: cargo run --release -p jetsim -- replay {} --faults",
                r.config.seed, r.verdict.violations, r.config.seed
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_durability_rule_catches_lost_or_unrecoverable_data() {
    use jetsim::check::rules::check_run;
    use jetsim::history::History;
    use jetsim::model::ModelState;
    // The model committed k0=1 in t0 before the run; recovery finding nothing is data loss.
    let initial = ModelState::initial(&[(0, 1)]);
    let lost = History {
        io_faults: true,
        recovered: Some(Ok(vec![vec![], vec![]])),
        ..History::default()
    };
    let verdict = check_run(&lost, &initial);
    assert!(
        verdict
            .violations
            .iter()
            .any(|v| v.rule == Rule::Durability && v.message.contains("t0.k0=v1 committed, lost")),
        "{:?}",
        verdict.violations
    );
    let invented = History {
        io_faults: true,
        recovered: Some(Ok(vec![vec![(0, 1)], vec![(3, 3)]])),
        ..History::default()
    };
    assert!(check_run(&invented, &initial)
        .violations
        .iter()
        .any(|v| v.message.contains("t1.k3=v3 recovered, never committed")));
    let kept = History {
        io_faults: true,
        recovered: Some(Ok(vec![vec![(0, 1)], vec![]])),
        ..History::default()
    };
    assert!(check_run(&kept, &initial).violations.is_empty());
    let unrecoverable = History {
        io_faults: true,
        recovered: Some(Err("init (recovery): DatabaseCorrupted".into())),
        ..History::default()
    };
    assert!(check_run(&unrecoverable, &initial)
        .violations
        .iter()
        .any(|v| v.rule == Rule::Durability));
}
