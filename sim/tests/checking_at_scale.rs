//! The linearizability check at the workload sizes `explore --threads 8 --calls 50` runs:
//! every run gets a verdict (no `search-bound`) and passes. The seed count is small by
//! default and raised with `JETSIM_SCALE_SEEDS`; check times are measured by `explore`'s
//! summary ("check time per run"), never asserted here. Regression seeds found only at
//! this size are replayed here too.

use jetsim::check::Rule;
use jetsim::drive::campaign::{run_campaign, run_seed_sized, CampaignOptions};
use jetsim::model::Outcome;
use jetsim::simulation::replay_command;
use jetsim::workload::config::{FaultMode, Scheduling, WorkloadSize};
use jetsim::workload::Call;
use jetsim_engine::{stop_grbit, Mutations};

#[test]
fn eight_threads_of_fifty_calls_get_a_verdict() {
    let options = CampaignOptions {
        seeds: std::env::var("JETSIM_SCALE_SEEDS").map_or(24, |n| n.parse().expect("a number")),
        start: std::env::var("JETSIM_SCALE_START").map_or(0, |n| n.parse().expect("a number")),
        scheduling: Scheduling::Mix,
        jobs: 2,
        size: WorkloadSize {
            threads: Some(8),
            calls_per_thread_max: Some(50),
        },
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).expect("campaign runs");
    assert_eq!(summary.seeds_run, options.seeds);
    let bounded: Vec<String> = summary
        .failures
        .iter()
        .map(|r| {
            format!(
                "seed {}: {:?}\n  reproduce: {}",
                r.config.seed,
                r.verdict.violations,
                options.replay_command(r.config.seed)
            )
        })
        .collect();
    assert_eq!(
        summary.failures_by_rule.get(&Rule::SearchBound).copied(),
        None,
        "{}",
        bounded.join("\n")
    );
    assert!(bounded.is_empty(), "{}", bounded.join("\n"));
}

/// Seeds where a `StopAndEmitLog` returned while a level-1 commit waited for its log sync
/// (its record appended, its versions unpublished, no latch held). The stop makes the record
/// durable and publishes the commit itself; before it did, the commit took effect only when
/// its committer woke, and meanwhile other sessions saw `LogServiceStopped` and the
/// transaction uncommitted: with the workloads of that time seeds 2686 and 8751 failed the
/// linearizability check (about 2 runs in 20,000 of this size). Since nested transactions
/// joined the workloads those seeds draw other programs, and no seed in 0..30,000 fails
/// without the fix, so the defect's own regression is the engine's step-by-step test
/// (`stop_and_emit_log_publishes_a_commit_held_at_its_log_sync` in
/// `engine/tests/concurrency.rs`). These seeds keep the window in the campaign's checking:
/// each history must show a commit that succeeded across the return of a successful
/// `StopAndEmitLog` (91 and 369 the first two in 0..600 of this size, as of the size edges
/// and the attaches of a missing file; the seeds are found again whenever schedules move), so a seed
/// that drifted away fails here instead of passing without checking anything.
#[test]
fn commits_held_across_stop_and_emit_log_take_effect_before_it_returns() {
    let size = WorkloadSize {
        threads: Some(8),
        calls_per_thread_max: Some(50),
    };
    for seed in [91, 369] {
        let reproduce = replay_command(seed, Scheduling::Mix, None) + &size.arguments();
        let report = run_seed_sized(seed, Scheduling::Mix, FaultMode::Off, Mutations::NONE, size);
        assert!(
            report.passed(),
            "seed {seed}: {:?}\n  reproduce: {reproduce}",
            report.verdict.violations
        );
        let history = report.history.expect("a run that passed was recorded");
        let stops_returned: Vec<u64> = history
            .events
            .iter()
            .filter(|e| {
                matches!(e.call, Call::StopService { grbit, .. } if grbit == stop_grbit::STOP_AND_EMIT_LOG)
                    && e.outcome == Outcome::Ok
            })
            .map(|e| e.returned)
            .collect();
        let raced = history.events.iter().any(|e| {
            matches!(e.call, Call::CommitTransaction { .. })
                && e.outcome == Outcome::Ok
                && stops_returned
                    .iter()
                    .any(|stop| e.invoked < *stop && *stop < e.returned)
        });
        assert!(
            raced,
            "seed {seed} no longer has a commit that succeeded across a StopAndEmitLog's return: \
             the regression reaches nothing; find another seed with that race\n  reproduce: {reproduce}"
        );
    }
}
