//! The bounded campaign `cargo test` runs: a few hundred seeds must pass every checker, the
//! same seed must give the same trace, and every checker must be seen catching a planted bug.
//!
//! `JETSIM_SEEDS` raises the campaign (default 1000, enough to hit every coverage mark);
//! `JETSIM_START` moves it.
//!
//! `JETSIM_SEED=N` replays exactly seed N instead (as madsim's `MADSIM_TEST_SEED` does), under
//! `JETSIM_STRATEGY` (random, pct, mix; default mix), `JETSIM_MUTANT` and `JETSIM_FAULTS=1`,
//! printing its configuration and trace; the other tests then skip. Every failure here prints
//! that line for its seed:
//! `JETSIM_SEED=34 JETSIM_MUTANT=StopFlagLast cargo test -p jetsim --test campaign -- --nocapture`.

use clap::ValueEnum;
use jetsim::campaign::{
    cargo_test_replay_command, first_detection, mutations_named, replay_text, run_campaign,
    CampaignOptions, CampaignSummary,
};
use jetsim::check::Rule;
use jetsim::config::{FaultMode, Scheduling, WorkloadSize};
use jetsim::simulation::{replay_command_with, run_seed, run_seed_with};
use jetsim_engine::{Mutant, Mutations};

/// The seed `JETSIM_SEED` names, with `JETSIM_STRATEGY`, `JETSIM_MUTANT`, `JETSIM_FAULTS`.
struct SeedFromEnv {
    seed: u64,
    scheduling: Scheduling,
    mutant: Option<String>,
    faults: FaultMode,
}

fn seed_from_env() -> Option<SeedFromEnv> {
    let seed = std::env::var("JETSIM_SEED").ok()?;
    let seed = seed
        .parse()
        .unwrap_or_else(|_| panic!("JETSIM_SEED={seed:?} is not a seed (a u64)"));
    let scheduling = match std::env::var("JETSIM_STRATEGY") {
        Ok(name) => Scheduling::from_str(&name, true)
            .unwrap_or_else(|_| panic!("JETSIM_STRATEGY={name:?}: expected random, pct or mix")),
        Err(_) => Scheduling::Mix,
    };
    let faults = match std::env::var("JETSIM_FAULTS").as_deref() {
        Ok("1") | Ok("true") => FaultMode::Seeded,
        _ => FaultMode::Off,
    };
    Some(SeedFromEnv {
        seed,
        scheduling,
        mutant: std::env::var("JETSIM_MUTANT")
            .ok()
            .filter(|m| !m.is_empty()),
        faults,
    })
}

/// True (after saying so) when `JETSIM_SEED` asks for one seed only: the other tests skip.
fn replaying_one_seed(test: &str) -> bool {
    let replaying = std::env::var_os("JETSIM_SEED").is_some();
    if replaying {
        eprintln!("{test}: skipped, JETSIM_SEED replays one seed");
    }
    replaying
}

/// A failing seed's two replay lines: the command line and `cargo test`.
fn replay_lines(
    seed: u64,
    scheduling: Scheduling,
    mutant: Option<&str>,
    faults: FaultMode,
) -> String {
    let mut lines = format!(
        "  reproduce: {}",
        replay_command_with(seed, scheduling, mutant, faults)
    );
    if let Some(command) = cargo_test_replay_command(seed, scheduling, mutant, faults) {
        lines.push_str(&format!("\n  in cargo test: {command}"));
    }
    lines
}

#[test]
fn jetsim_seed_replays_exactly_that_seed() {
    if let Some(wanted) = seed_from_env() {
        let mutations = mutations_named(wanted.mutant.as_deref()).unwrap();
        let report = run_seed_with(wanted.seed, wanted.scheduling, wanted.faults, mutations);
        let text = replay_text(
            &report,
            wanted.scheduling,
            true,
            wanted.mutant.as_deref(),
            wanted.faults,
            WorkloadSize::default(),
        )
        .unwrap();
        println!("{text}");
        assert!(
            report.passed(),
            "seed {} failed (trace above):\n{}",
            wanted.seed,
            replay_lines(
                wanted.seed,
                wanted.scheduling,
                wanted.mutant.as_deref(),
                wanted.faults
            )
        );
        return;
    }
    // Without JETSIM_SEED: this very test, run with it as a child process, replays the seed
    // a failing run names, with its trace and the hash the campaign saw.
    let mutant = "StopFlagLast";
    let mutations = Mutations::NONE.with(Mutant::StopFlagLast);
    let detection = first_detection(mutations, Scheduling::Pct, 0, 600)
        .expect("StopFlagLast is caught within 600 PCT seeds");
    let seed = detection.seed;
    let expected = run_seed(seed, Scheduling::Pct, mutations);
    let line =
        cargo_test_replay_command(seed, Scheduling::Pct, Some(mutant), FaultMode::Off).unwrap();
    assert_eq!(
        line,
        format!("JETSIM_SEED={seed} JETSIM_STRATEGY=pct JETSIM_MUTANT={mutant} cargo test -p jetsim --test campaign -- --nocapture")
    );
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "jetsim_seed_replays_exactly_that_seed",
            "--nocapture",
        ])
        .env("JETSIM_SEED", seed.to_string())
        .env("JETSIM_STRATEGY", "pct")
        .env("JETSIM_MUTANT", mutant)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the failing seed fails:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "jetsim replay {seed} (pct strategy, mutant {mutant})"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("trace hash {:016x}", expected.trace_hash)),
        "{stdout}"
    );
    assert!(
        stdout.contains("] wd  "),
        "the trace names the wd lane:\n{stdout}"
    );
    // The replayed trace names every rule the campaign's run broke.
    for rule in &detection.rules {
        assert!(stdout.contains(&format!("[{rule}]")), "[{rule}]:\n{stdout}");
    }
    assert!(
        stderr.contains(&line),
        "the failure prints its own line:\n{stderr}"
    );
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fails with every failing seed of a Mix campaign, each with its violations and the lines
/// that replay it.
fn assert_no_failures(summary: &CampaignSummary, faults: FaultMode) {
    let failures: Vec<String> = summary
        .failures
        .iter()
        .map(|r| {
            format!(
                "seed {}: {:?}\n{}",
                r.config.seed,
                r.verdict.violations,
                replay_lines(r.config.seed, Scheduling::Mix, None, faults)
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_bounded_campaign_passes_every_checker() {
    if replaying_one_seed("a_bounded_campaign_passes_every_checker") {
        return;
    }
    let options = CampaignOptions {
        seeds: env_u64("JETSIM_SEEDS", 1000),
        start: env_u64("JETSIM_START", 0),
        jobs: 2,
        faults: false,
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).unwrap();
    assert_no_failures(&summary, FaultMode::Off);
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
    // The campaign reaches where bugs live: every coverage mark of the engine is hit (the
    // marks are the engine's `marks` feature, which jetsim enables).
    let missed: Vec<&str> = jetsim_engine::Mark::ALL
        .iter()
        .map(|mark| mark.name())
        .filter(|name| !summary.runs_by_mark.contains_key(*name))
        .collect();
    assert!(
        missed.is_empty(),
        "coverage marks no run hit: {missed:?} (runs by mark: {:?}); the workload no longer \
         reaches those paths",
        summary.runs_by_mark
    );
}

/// Coverage marks count per instance: they are in every completed run's history, and the
/// same seed counts the same marks (they are part of the trace).
#[test]
fn coverage_marks_are_counted_per_run() {
    if replaying_one_seed("coverage_marks_are_counted_per_run") {
        return;
    }
    const {
        assert!(
            jetsim_engine::Marks::ENABLED,
            "jetsim builds the engine with marks"
        )
    };
    let hit = (0..50)
        .map(|seed| run_seed(seed, Scheduling::Mix, Mutations::NONE))
        .filter(|report| !report.history.as_ref().unwrap().marks.is_empty())
        .count();
    assert!(hit > 0, "no run of 50 hit any coverage mark");
    let a = run_seed(7, Scheduling::Mix, Mutations::NONE);
    let b = run_seed(7, Scheduling::Mix, Mutations::NONE);
    assert_eq!(a.history.unwrap().marks, b.history.unwrap().marks);
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    if replaying_one_seed("the_same_seed_gives_the_same_trace") {
        return;
    }
    for seed in 0..env_u64("JETSIM_DETERMINISM_SEEDS", 40) {
        for scheduling in [Scheduling::Random, Scheduling::Pct] {
            let a = run_seed(seed, scheduling, Mutations::NONE);
            let b = run_seed(seed, scheduling, Mutations::NONE);
            assert_ne!(a.trace_hash, 0, "seed {seed} recorded nothing");
            assert_eq!(
                a.trace_hash,
                b.trace_hash,
                "seed {seed} ({scheduling:?}) is not deterministic\n{}",
                replay_lines(seed, scheduling, None, FaultMode::Off)
            );
            assert_eq!(a.history, b.history);
        }
    }
}

#[test]
fn different_seeds_give_different_runs() {
    if replaying_one_seed("different_seeds_give_different_runs") {
        return;
    }
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
        600,
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
        Mutant::StopCheckpointNotPersisted,
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
        Rule::Linearizability,
        Mutant::CheckThenActGate,
        Scheduling::Random,
        3000,
    ),
    // A term that does not wait for calls in flight trips the engine's own assertion in
    // `Gate::finish_term`: the run panics.
    (
        Rule::NoPanic,
        Mutant::TermDoesNotWait,
        Scheduling::Pct,
        1500,
    ),
    // The shared-contexts switch: another thread resets a context it did not set.
    (
        Rule::Linearizability,
        Mutant::ResetContextFromAnyThread,
        Scheduling::Mix,
        400,
    ),
    // The crash switch: a page written back before its log records, found by a power cut
    // right after a database-file write or sync; a commit acknowledged before its log sync,
    // lost by a power cut right after the acknowledgement.
    (
        Rule::Durability,
        Mutant::PageBeforeLog,
        Scheduling::Mix,
        500,
    ),
    (
        Rule::Durability,
        Mutant::CommitAckBeforeLogSync,
        Scheduling::Mix,
        COMMIT_ACK_MAX,
    ),
    // An operation logged page by page: page-image records after a full stop that outnumber
    // the changes the rollbacks undid, which the harness counts in the log. (No eviction
    // tears a record write's split any more: an install makes its room before it logs.)
    // First detection from 0 at seed 808 (11 of 10,000 seeds; it moves with any change of
    // the runs' schedules: 2,489 before the size edges, 638, then 808 before the detach's
    // record was flushed).
    (
        Rule::DefragParked,
        Mutant::OperationLoggedPerPage,
        Scheduling::Mix,
        3000,
    ),
    // The harness's checkpoint audit: a checkpoint taken from the newest dirty page passes
    // a change the durable database file lacks.
    (
        Rule::Durability,
        Mutant::CheckpointFromNewestDirtyPage,
        Scheduling::Mix,
        400,
    ),
    // The harness's write-ahead audit at every database write (no crash): a page written
    // before the log record that changed it is durable.
    (Rule::WriteAhead, Mutant::PageBeforeLog, Scheduling::Mix, 10),
    // The same audit: an older image of a page lands over a newer one (a writer evicted a
    // page the background flusher's batch still had out). First seen by this rule at seed
    // 529 since commits append under the log's own lock (durability sees it at 114).
    (
        Rule::StaleWrite,
        Mutant::FrameEvictedDuringWriteBack,
        Scheduling::Mix,
        700,
    ),
    // The same audit on the main log's writes: a group-commit flush's end set the durable
    // end back, and the next flush wrote over durable records (first at seed 702 since the
    // size edges; 319 since the defrag-at-stop runs set OnlineDefrag after their stop, 34
    // before). In a debug build the engine's own assertion that page LSNs only grow fails
    // first, at the install that takes the first LSN given twice, before any flush writes:
    // there the teeth are that assertion's (no-panic, earlier). The rule's decision is
    // tested on its own too (`the_log_append_only_rule_reports_the_taps_first_rewrite`,
    // and the tap's `the_log_append_audit_flags_only_different_bytes_over_durable_ones`).
    (
        if cfg!(debug_assertions) {
            Rule::NoPanic
        } else {
            Rule::LogAppendOnly
        },
        Mutant::GroupFlushEndRewindsLog,
        Scheduling::Mix,
        1000,
    ),
    // The end state of a run that ends on its partial stop (stop plan `PartialOnly`): a
    // partial stop of both bits left online defrag running (first at seed 7).
    (
        Rule::FailureAtomicity,
        Mutant::PartialStopBitTestedAlone,
        Scheduling::Mix,
        100,
    ),
    // The database file alone after the final term, attached by an instance with a log of
    // its own: a detach left it owned by the run's log (first at seed 13).
    (
        Rule::TermDisk,
        Mutant::DetachLeavesDatabaseDirty,
        Scheduling::Mix,
        200,
    ),
    // Counts with a limit (one in three): a count that went one past it (first at seed 21).
    (
        Rule::Linearizability,
        Mutant::RecordCountOnePastLimit,
        Scheduling::Mix,
        50,
    ),
    // The harness's probe after the wind-down: another instance attached the database file
    // the instance under test still had attached (first at seed 1).
    (
        Rule::DatabaseSharing,
        Mutant::DatabaseSharingUnchecked,
        Scheduling::Mix,
        20,
    ),
    // The harness's count of the durable log's Detach records at each successful detach: a
    // detach that returned before its record was durable (first at seed 7).
    (
        Rule::DetachDurable,
        Mutant::DetachRecordNotFlushed,
        Scheduling::Mix,
        100,
    ),
    // The small-version-store runs (one in three, where the setup fits): a write the full
    // store should refuse with VersionStoreOutOfMemory succeeds (first at seed 51).
    (
        Rule::Linearizability,
        Mutant::VersionStoreOneOverLimit,
        Scheduling::Mix,
        200,
    ),
    // Online defrag's internal-node merges, reached in the shrunk big tables: a wrong
    // separator hides committed records from reads (first at seed 201).
    (
        Rule::Linearizability,
        Mutant::InternalMergeWrongSeparator,
        Scheduling::Mix,
        400,
    ),
    // A stop invoked after a call answered InstanceUnavailable must refuse unchanged: a
    // partial stop that skips its availability check parks defrag and quiesces the caches,
    // then fails (first at seed 269).
    (
        Rule::FailureAtomicity,
        Mutant::PartialStopSkipsAvailabilityCheck,
        Scheduling::Mix,
        500,
    ),
    // The disk read at a StopAndEmitLog after a full stop: its marker must not leave the
    // checkpoint behind (first at seed 424).
    (
        Rule::Preparation,
        Mutant::EmitLogLeavesCheckpointBehind,
        Scheduling::Mix,
        600,
    ),
    // Tables opened in a nested level (half the table-opened-in-transaction pieces): a
    // nested commit that leaves them at its level has a later rollback close them.
    (
        Rule::Linearizability,
        Mutant::NestedCommitKeepsTableLevels,
        Scheduling::Mix,
        100,
    ),
    // The harness's watch of the database file from a detach's success to the next attach:
    // a detach that did not wait for the background write-back out has the batch land on
    // the file after it returned (first at seed 4,872, 2 of 10,000: the window is narrow;
    // stale-write sees the same bug at 261).
    (
        Rule::DetachedUnwritten,
        Mutant::DetachBesideWriteBack,
        Scheduling::Mix,
        5000,
    ),
    // The defrag-at-stop runs set OnlineDefrag again after their stop: a set that unparks
    // defrag has it move pages after the stop, read in the log (first at seed 308).
    (
        Rule::DefragParked,
        Mutant::DefragParameterUnparks,
        Scheduling::Mix,
        400,
    ),
    // Keys and values moved onto their size limits (one write or seek in eight): a record
    // of exactly the limit refused as too big (first at seed 4).
    (
        Rule::Linearizability,
        Mutant::RecordLimitsExclusive,
        Scheduling::Mix,
        50,
    ),
    // Half the attaches name a path where no file is; the other instance's attach of it
    // after the wind-down finds the failed attach's claim kept (first at seed 206).
    (
        Rule::DatabaseSharing,
        Mutant::FailedAttachKeepsClaim,
        Scheduling::Mix,
        300,
    ),
    // Half the two-stop runs race their stops from two threads: the second returned while
    // the first was still preparing, and the disk read at its response was not prepared
    // (first at seed 5).
    (
        Rule::Preparation,
        Mutant::ConcurrentStopReturnsEarly,
        Scheduling::Mix,
        300,
    ),
    // The wind-down that ends every session (half the runs): an ended session's outer
    // levels left open reach the disk at the clean final term (first at seed 343).
    (
        Rule::TermDisk,
        Mutant::EndSessionRollsBackOneLevel,
        Scheduling::Mix,
        1000,
    ),
    // The harness's count of the durable log's Commit records at each acknowledgement (no
    // crash): a commit that finds another's flush in flight answers before the flush that
    // covers its record.
    (
        Rule::CommitDurable,
        Mutant::GroupCommitTrustsFlushInFlight,
        Scheduling::Mix,
        200,
    ),
    (
        Rule::CommitDurable,
        Mutant::CommitAckBeforeLogSync,
        Scheduling::Mix,
        50,
    ),
    // The harness's read-back of the disk the final term left (no crash): a clean term that
    // leaves its checkpoint behind the log's end has recovery replay page images.
    (
        Rule::TermDisk,
        Mutant::TermCheckpointNotPersisted,
        Scheduling::Mix,
        50,
    ),
    // The same read-back: a term trusting the stop's flush leaves the rollbacks after the
    // stop off the disk, which then holds a record no order of the calls commits.
    (
        Rule::TermDisk,
        Mutant::TermTrustsStopFlush,
        Scheduling::Mix,
        200,
    ),
    // The harness's meter on the version store's memory, read when the first full stop
    // returns: with no transaction open, the stop's cleanup leaves no version.
    (
        Rule::VersionCleanup,
        Mutant::VersionCleanupNotSignalled,
        Scheduling::Mix,
        50,
    ),
    // Lock ranks are asserted in every simulated run (`Runtime::CHECKS_LOCK_RANKS`): a call
    // that takes the instance latch while holding its session claim panics at once.
    (
        Rule::NoPanic,
        Mutant::SessionClaimBeforeLatch,
        Scheduling::Mix,
        10,
    ),
];

/// See TEETH.
const COMMIT_ACK_MAX: u64 = 600;

#[test]
fn every_checker_catches_its_planted_bug() {
    if replaying_one_seed("every_checker_catches_its_planted_bug") {
        return;
    }
    for &(rule, mutant, scheduling, max_seeds) in TEETH {
        // The first detection by this rule (another rule may catch the same bug earlier).
        let mut start = 0;
        let detection = loop {
            let detection = first_detection(
                Mutations::NONE.with(mutant),
                scheduling,
                start,
                max_seeds - start,
            )
            .unwrap_or_else(|| {
                panic!("{mutant:?} not caught by {rule:?} within {max_seeds} {scheduling:?} seeds")
            });
            if detection.rules.contains(&rule) || detection.seed + 1 >= max_seeds {
                break detection;
            }
            start = detection.seed + 1;
        };
        assert!(
            detection.rules.contains(&rule),
            "{mutant:?} was caught at seed {} by {:?}, not by {rule:?}\n{}",
            detection.seed,
            detection.rules,
            replay_lines(
                detection.seed,
                scheduling,
                Some(&format!("{mutant:?}")),
                FaultMode::Off
            )
        );
        // The unmutated engine passes the very seed that caught the bug.
        let clean = run_seed(detection.seed, scheduling, Mutations::NONE);
        assert!(
            clean.passed(),
            "seed {} fails without the mutant: {:?}\n{}",
            detection.seed,
            clean.verdict.violations,
            replay_lines(detection.seed, scheduling, None, FaultMode::Off)
        );
    }
}

#[test]
fn the_checkpoint_audit_finds_a_checkpoint_past_a_change_the_disk_lacks() {
    if replaying_one_seed("the_checkpoint_audit_finds_a_checkpoint_past_a_change_the_disk_lacks") {
        return;
    }
    // Goal: the harness's own audit of the durable files (not a crash's recovery, not the
    // engine's buffers) reports the planted checkpoint bug and names the page it passed;
    // the real engine's run of the same seed audits its checkpoints and finds nothing.
    let mutations = Mutations::NONE.with(Mutant::CheckpointFromNewestDirtyPage);
    let detection =
        first_detection(mutations, Scheduling::Mix, 0, 400).expect("caught within 400 seeds");
    let caught = run_seed(detection.seed, Scheduling::Mix, mutations);
    assert!(
        caught
            .verdict
            .violations
            .iter()
            .any(|v| v.rule == Rule::Durability
                && v.message.contains("which is not in the database file")),
        "seed {} was not caught by the audit: {:?}\n{}",
        detection.seed,
        caught.verdict.violations,
        replay_lines(
            detection.seed,
            Scheduling::Mix,
            Some("CheckpointFromNewestDirtyPage"),
            FaultMode::Off
        )
    );
    let clean = run_seed(detection.seed, Scheduling::Mix, Mutations::NONE);
    let audited = &clean
        .history
        .as_ref()
        .expect("a completed run")
        .checkpoint_audit;
    assert!(
        audited.checkpoints > 0 && audited.page_changes > 0,
        "{audited:?}"
    );
    assert!(audited.breaches.is_empty(), "{audited:?}");
    assert!(clean.passed(), "{:?}", clean.verdict.violations);
}

#[test]
fn a_bounded_fault_campaign_recovers_exactly_the_committed_data() {
    if replaying_one_seed("a_bounded_fault_campaign_recovers_exactly_the_committed_data") {
        return;
    }
    // Seeded I/O errors, power cuts, a crash with lost and torn unsynced writes, recovery.
    let options = CampaignOptions {
        seeds: env_u64("JETSIM_FAULT_SEEDS", 200),
        start: 0,
        jobs: 2,
        faults: true,
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).unwrap();
    assert_no_failures(&summary, FaultMode::Seeded);
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

#[test]
fn the_commit_durable_rule_counts_level_one_commits_against_the_durable_log() {
    use jetsim::check::rules::check_run;
    use jetsim::history::{CommitAck, Event, History};
    use jetsim::model::{ModelState, Outcome};
    use jetsim::workload::{Call, Ref};
    // One session (thread 0's first), a nested transaction then a level-1 one: only the
    // commits that end a level-1 transaction log a Commit record.
    let ses = Ref::Var(0);
    let calls = [
        Call::BeginSession { bind: 0 },
        Call::BeginTransaction { ses },
        Call::BeginTransaction { ses },
        Call::CommitTransaction { ses },
        Call::CommitTransaction { ses },
    ];
    let events: Vec<Event> = calls
        .iter()
        .enumerate()
        .map(|(i, call)| Event {
            thread: 0,
            call: call.clone(),
            invoked: 2 * i as u64,
            returned: 2 * i as u64 + 1,
            outcome: Outcome::Ok,
        })
        .collect();
    let history = |nested_ack: u64, level_one_ack: u64| History {
        workers: 1,
        events: events.clone(),
        durable_commit_records_at_start: 5,
        commit_acks: vec![
            CommitAck {
                returned: 7,
                durable_commit_records: nested_ack,
            },
            CommitAck {
                returned: 9,
                durable_commit_records: level_one_ack,
            },
        ],
        ..History::default()
    };
    let commit_durable = |history: &History| -> Vec<String> {
        check_run(history, &ModelState::initial(&[]))
            .violations
            .into_iter()
            .filter(|v| v.rule == Rule::CommitDurable)
            .map(|v| v.message)
            .collect()
    };
    // The nested commit logs nothing; the level-1 commit's record is durable: passes.
    assert!(commit_durable(&history(5, 6)).is_empty());
    // The level-1 commit answered with only the setup's records durable.
    let early = commit_durable(&history(5, 5));
    assert!(
        early.len() == 1 && early[0].contains("steps 8..9") && early[0].contains("1 level-1"),
        "{early:?}"
    );
    // Another thread's begin on the session, in flight across the commits: which level each
    // commit ended is not known, so none is judged; each is counted unobservable.
    let mut overlapped = history(5, 5);
    overlapped.workers = 2;
    overlapped.events.push(Event {
        thread: 1,
        call: Call::BeginTransaction {
            ses: Ref::PeerCreated { thread: 0, n: 0 },
        },
        invoked: 4,
        returned: 10,
        outcome: Outcome::Ok,
    });
    assert!(commit_durable(&overlapped).is_empty());
    let verdict = check_run(&overlapped, &ModelState::initial(&[]));
    assert_eq!(
        verdict
            .observability
            .unobservable
            .iter()
            .filter(|u| u.rule == Rule::CommitDurable)
            .count(),
        2
    );
}

#[test]
fn the_term_disk_rule_decides_from_the_disk_read_back_after_the_term() {
    use jetsim::check::rules::check_run;
    use jetsim::history::{EndState, Event, History, TermDisk};
    use jetsim::model::{ModelState, Outcome};
    use jetsim::workload::{Call, InstanceRef};
    // The model committed k0=1 in t0 before the run, and the engine's own end state agrees:
    // only the disk the harness read back after the term can disagree.
    let initial = ModelState::initial(&[(0, 1)]);
    let with_disk = |found, page_images_replayed| History {
        end_state: Some(EndState {
            phase: "Running".into(),
            committed: Some(vec![vec![(0, 1)], vec![]]),
            sessions: Vec::new(),
            defrag_parked: false,
            caches_quiesced: false,
        }),
        term_disk: Some(TermDisk {
            found,
            page_images_replayed,
            pages_redone: 0,
            // Read alone, the file is not judged here: the term is not clean (there is
            // none) and the database ends attached.
            database_alone: Err("never read".into()),
        }),
        ..History::default()
    };
    let term_disk_messages_from = |history: &History, initial: &ModelState| -> Vec<String> {
        check_run(history, initial)
            .violations
            .into_iter()
            .filter(|v| v.rule == Rule::TermDisk)
            .map(|v| v.message)
            .collect()
    };
    let term_disk_messages = |history: &History| term_disk_messages_from(history, &initial);
    assert!(term_disk_messages(&with_disk(Ok(vec![vec![(0, 1)], vec![]]), 0)).is_empty());
    let lost = term_disk_messages(&with_disk(Ok(vec![vec![], vec![]]), 0));
    assert!(
        lost.iter().any(|m| m.contains("t0.k0=v1 committed, lost")),
        "{lost:?}"
    );
    let invented = term_disk_messages(&with_disk(Ok(vec![vec![(0, 1)], vec![(3, 3)]]), 0));
    assert!(
        invented
            .iter()
            .any(|m| m.contains("t1.k3=v3 recovered, never committed")),
        "{invented:?}"
    );
    let unreadable = term_disk_messages(&with_disk(
        Err("init (recovery): DatabaseCorrupted".into()),
        0,
    ));
    assert!(
        unreadable.iter().any(|m| m.contains("could not read")),
        "{unreadable:?}"
    );
    // Replayed page images count against a clean term only: this history has none.
    assert!(term_disk_messages(&with_disk(Ok(vec![vec![(0, 1)], vec![]]), 3)).is_empty());
    // With disk faults the run crashed instead, and durability judges the recovery.
    let crashed = History {
        io_faults: true,
        recovered: Some(Ok(vec![vec![(0, 1)], vec![]])),
        ..with_disk(Ok(vec![vec![], vec![]]), 0)
    };
    assert!(term_disk_messages(&crashed).is_empty());
    // The same disk, with what the fresh instance found in the database file read alone.
    let read_alone = |database_alone| {
        let mut history = with_disk(Ok(vec![vec![(0, 1)], vec![]]), 0);
        history
            .term_disk
            .as_mut()
            .expect("with_disk reads the disk")
            .database_alone = database_alone;
        history
    };
    // After a clean final term the file alone must hold the committed records too.
    let clean_term = |database_alone| {
        let mut history = read_alone(database_alone);
        history.events.push(Event {
            thread: history.workers,
            call: Call::Term {
                instance: InstanceRef::Main,
                grbit: jetsim_engine::term_grbit::ABRUPT,
            },
            invoked: 1,
            returned: 2,
            outcome: Outcome::Terminated { dirty: false },
        });
        history
    };
    let committed_alone = || Ok(vec![vec![(0, 1)], vec![]]);
    assert!(term_disk_messages(&clean_term(committed_alone())).is_empty());
    let lost_alone = term_disk_messages(&clean_term(Ok(vec![vec![], vec![]])));
    assert!(
        lost_alone.len() == 1 && lost_alone[0].contains("the database file alone"),
        "{lost_alone:?}"
    );
    let refused = term_disk_messages(&clean_term(Err("DatabaseDirtyShutdown".into())));
    assert!(
        refused.len() == 1 && refused[0].contains("the final term succeeded cleanly, yet a fresh instance with a log of its own could not attach"),
        "{refused:?}"
    );
    // A run that ended with the database detached: the file alone, attached by an instance
    // with a log of its own, must hold exactly what was committed.
    let mut detached = ModelState::initial(&[(0, 1)]);
    detached.attached = false;
    let ended_detached = |database_alone| {
        let mut history = read_alone(database_alone);
        history
            .end_state
            .as_mut()
            .expect("with_disk sets it")
            .committed = None;
        history
    };
    let alone_messages = |history: &History| term_disk_messages_from(history, &detached);
    assert!(alone_messages(&ended_detached(Ok(vec![vec![(0, 1)], vec![]]))).is_empty());
    let dirty = alone_messages(&ended_detached(Err(
        "attach_database after recovery: DatabaseDirtyShutdown".into(),
    )));
    assert!(
        dirty
            .iter()
            .any(|m| m.contains("ended with the database detached")
                && m.contains("could not attach the database file alone")),
        "{dirty:?}"
    );
    let lost_alone = alone_messages(&ended_detached(Ok(vec![vec![], vec![]])));
    assert!(
        lost_alone.iter().any(
            |m| m.contains("the database file alone") && m.contains("t0.k0=v1 committed, lost")
        ),
        "{lost_alone:?}"
    );
}

#[test]
fn the_log_append_only_rule_reports_the_taps_first_rewrite() {
    use jetsim::check::rules::check_run;
    use jetsim::history::{History, WriteAheadAudited};
    use jetsim::model::ModelState;
    let initial = ModelState::initial(&[]);
    let with_audit = |write_ahead| History {
        write_ahead,
        ..History::default()
    };
    let log_append_only = |history: &History| -> Vec<String> {
        check_run(history, &initial)
            .violations
            .into_iter()
            .filter(|v| v.rule == Rule::LogAppendOnly)
            .map(|v| v.message)
            .collect()
    };
    let clean = WriteAheadAudited {
        log_writes: 40,
        ..WriteAheadAudited::default()
    };
    assert!(log_append_only(&with_audit(clean.clone())).is_empty());
    let rewritten = WriteAheadAudited {
        first_log_rewrite: Some("main/jet.log took a write at step 9".into()),
        log_rewrites: 3,
        ..clean
    };
    assert_eq!(
        log_append_only(&with_audit(rewritten)),
        ["main/jet.log took a write at step 9; 2 more such writes"]
    );
}

#[test]
fn the_models_allowlist_is_its_own_documented_list() {
    use jetsim::workload::{Call, Ref};
    use jetsim_engine::{Admission, JetCall};
    // The literal list, from Microsoft's page and ESE's source (each entry says where).
    let names: Vec<JetCall> = jetsim::model::ALLOWED_AFTER_STOP
        .iter()
        .map(|&(call, _)| call)
        .collect();
    assert_eq!(
        names,
        [
            JetCall::Rollback,
            JetCall::CloseTable,
            JetCall::EndSession,
            JetCall::CloseDatabase,
            JetCall::DetachDatabase,
            JetCall::ResetSessionContext,
            JetCall::GetSessionInfo,
            JetCall::Term,
            JetCall::GetSystemParameter,
            JetCall::SetSystemParameter,
        ]
    );
    assert!(jetsim::model::ALLOWED_AFTER_STOP
        .iter()
        .all(|(_, source)| !source.is_empty()));
    let ses = Ref::Var(0);
    assert!(!Call::Rollback { ses }.is_gated());
    assert!(Call::CommitTransaction { ses }.is_gated());
    // A planted allowlist bug changes the engine's table only: the model does not follow.
    let missing = Mutations::NONE.with(Mutant::AllowlistMissingRollback);
    let extra = Mutations::NONE.with(Mutant::AllowlistExtraCommit);
    assert_eq!(JetCall::Rollback.admission(missing), Admission::Gated);
    assert_eq!(
        JetCall::CommitTransaction.admission(extra),
        Admission::Allowlisted
    );
}

#[test]
fn an_engine_allowlist_bug_changes_the_verdict_because_the_model_keeps_its_own_list() {
    if replaying_one_seed(
        "an_engine_allowlist_bug_changes_the_verdict_because_the_model_keeps_its_own_list",
    ) {
        return;
    }
    for (mutant, rules) in [
        (
            Mutant::AllowlistMissingRollback,
            [Rule::StopRule, Rule::Linearizability],
        ),
        (
            Mutant::AllowlistExtraCommit,
            [Rule::Linearizability, Rule::StopRule],
        ),
    ] {
        let detection = first_detection(Mutations::NONE.with(mutant), Scheduling::Pct, 0, 100)
            .unwrap_or_else(|| panic!("{mutant:?} not caught within 100 PCT seeds"));
        assert!(
            detection.rules.iter().any(|r| rules.contains(r)),
            "{mutant:?} caught by {:?}",
            detection.rules
        );
        // Same seed, same model, only the engine's table differs: the verdict flips.
        let clean = run_seed(detection.seed, Scheduling::Pct, Mutations::NONE);
        assert!(
            clean.passed(),
            "{:?}\n{}",
            clean.verdict.violations,
            replay_lines(detection.seed, Scheduling::Pct, None, FaultMode::Off)
        );
    }
}

/// A run's history with one call, for the checkers alone.
fn one_call_history(
    call: jetsim::workload::Call,
    outcome: jetsim::model::Outcome,
) -> jetsim::history::History {
    jetsim::history::History {
        events: vec![jetsim::history::Event {
            thread: 0,
            call,
            invoked: 0,
            returned: 1,
            outcome,
        }],
        workers: 1,
        io_faults: true,
        ..jetsim::history::History::default()
    }
}

#[test]
fn instance_unavailable_is_accepted_only_after_a_disk_failure_the_harness_saw() {
    use jetsim::check::rules::check_run;
    use jetsim::model::{ModelState, Outcome};
    use jetsim::workload::Call;
    let initial = ModelState::initial(&[]);
    let unavailable = Outcome::err(jetsim_engine::JetError::InstanceUnavailable);
    let mut history = one_call_history(Call::BeginSession { bind: 0 }, unavailable);
    let linearizability = |history: &jetsim::history::History| {
        check_run(history, &initial)
            .violations
            .iter()
            .any(|v| v.rule == Rule::Linearizability)
    };
    // No failure injected: a fail-stop refusal has nothing to explain it.
    assert!(linearizability(&history));
    // The disk failed only after the call returned: still unexplained.
    history.first_disk_failure_at = Some(2);
    assert!(linearizability(&history));
    // The disk failed before: the refusal is the fail-stop it should be.
    history.first_disk_failure_at = Some(1);
    assert!(
        !linearizability(&history),
        "{:?}",
        check_run(&history, &initial).violations
    );
}

/// A stop observation on a disk that is (or is not) quiesced.
fn observed_stop(
    prepared: bool,
    gated_records_after: Option<Vec<String>>,
) -> jetsim::history::StopObservation {
    jetsim::history::StopObservation {
        thread: 0,
        grbit: 0,
        stop_invoked: 10,
        stop_returned: 11,
        disk: jetsim::history::DiskAtStop {
            checkpoint_lsn: Some(if prepared { 500 } else { 300 }),
            log_end_lsn: 500,
            unsynced_files: Vec::new(),
            crash_copy_pages_redone: Ok(0),
        },
        versions_held: 0,
        first_write_at: Some(10),
        page_changes_after: gated_records_after
            .as_ref()
            .map(|_| jetsim::history::PageChangesAfter::default()),
        gated_records_after,
        log_read_whole: true,
    }
}

#[test]
fn version_cleanup_decides_from_the_meter_and_counts_open_transactions() {
    use jetsim::check::rules::Observability;
    use jetsim::check::version_cleanup::{unobservable_reason, version_cleanup};
    use jetsim::history::Event;
    use jetsim::model::Outcome;
    use jetsim::workload::{Call, Ref};
    let event = |thread, call, invoked, returned, outcome| Event {
        thread,
        call,
        invoked,
        returned,
        outcome,
    };
    let mut history = jetsim::history::History {
        workers: 2,
        ..jetsim::history::History::default()
    };
    // t0 begins a session and a transaction; t1 nests one on t0's session (by peer).
    history.events = vec![
        event(0, Call::BeginSession { bind: 3 }, 1, 2, Outcome::Ok),
        event(
            0,
            Call::BeginTransaction { ses: Ref::Var(3) },
            3,
            4,
            Outcome::Ok,
        ),
        event(
            1,
            Call::BeginTransaction {
                ses: Ref::PeerCreated { thread: 0, n: 0 },
            },
            4,
            5,
            Outcome::Ok,
        ),
        event(
            0,
            Call::CommitTransaction { ses: Ref::Var(3) },
            6,
            7,
            Outcome::Ok,
        ),
        event(
            0,
            Call::StopService {
                instance: jetsim::workload::InstanceRef::Main,
                grbit: 0,
            },
            10,
            11,
            Outcome::Ok,
        ),
    ];
    let mut stop = observed_stop(true, Some(Vec::new()));
    stop.versions_held = 2;
    history.stop_observations = vec![stop];
    // One level of the two is still open: the versions may be needed, so no verdict, counted.
    let mut seen = Observability::default();
    assert!(version_cleanup(&history, &mut seen).is_empty());
    assert_eq!(seen.unobservable.len(), 1);
    assert_eq!(
        seen.unobservable[0].reason,
        unobservable_reason::TRANSACTION_OPEN
    );
    assert!(
        seen.unobservable[0].detail.contains("t0's session #0"),
        "{:?}",
        seen.unobservable
    );
    // Committed by its creator through `Created`: nothing open, and versions held.
    history.events.insert(
        4,
        event(
            0,
            Call::CommitTransaction {
                ses: Ref::Created(0),
            },
            8,
            9,
            Outcome::Ok,
        ),
    );
    let mut seen = Observability::default();
    let violations = version_cleanup(&history, &mut seen);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].rule, Rule::VersionCleanup);
    assert!(violations[0].message.contains("with 2 versions still"));
    assert_eq!(seen.observed.get(&Rule::VersionCleanup), Some(&1));
    // A failed commit changes nothing: the level it would have closed stays open.
    history.events[4].outcome = Outcome::Err("NotInTransaction".into());
    let mut seen = Observability::default();
    assert!(version_cleanup(&history, &mut seen).is_empty());
    assert_eq!(seen.unobservable.len(), 1);
    history.events[4].outcome = Outcome::Ok;
    // A rollback that did something while the stop ran may have ended a transaction after
    // the stop's cleanup: unobservable, counted; a refused one changes nothing.
    history.events.push(event(
        1,
        Call::Rollback { ses: Ref::Var(0) },
        10,
        12,
        Outcome::Err("NotInTransaction".into()),
    ));
    let mut seen = Observability::default();
    assert_eq!(version_cleanup(&history, &mut seen).len(), 1);
    history.events.last_mut().expect("pushed").outcome = Outcome::Ok;
    let mut seen = Observability::default();
    assert!(version_cleanup(&history, &mut seen).is_empty());
    assert_eq!(
        seen.unobservable[0].reason,
        unobservable_reason::TRANSACTION_ENDED
    );
    // With no version held the stop passes.
    history.events.pop();
    history.stop_observations[0].versions_held = 0;
    let mut seen = Observability::default();
    assert!(version_cleanup(&history, &mut seen).is_empty());
    assert_eq!(seen.observed.get(&Rule::VersionCleanup), Some(&1));
    // t1's begin on t0's session overlapping t0's begin: the order they took effect in is not
    // the order they returned in, so no level is known; counted, never judged.
    history.stop_observations[0].versions_held = 2;
    history.events[2].invoked = 3;
    let mut seen = Observability::default();
    assert!(version_cleanup(&history, &mut seen).is_empty());
    assert_eq!(
        seen.unobservable[0].reason,
        unobservable_reason::LEVELS_AMBIGUOUS
    );
}

#[test]
fn stop_checks_decide_from_the_disk_and_count_what_they_cannot_see() {
    use jetsim::check::rules::{stop_effects, Observability};
    use jetsim::model::Outcome;
    use jetsim::workload::{Call, Ref};
    let mut history = jetsim::history::History {
        workers: 2,
        ..jetsim::history::History::default()
    };
    history.stop_observations = vec![observed_stop(false, Some(vec!["Commit@512".into()]))];
    let mut seen = Observability::default();
    let violations = stop_effects(&history, &mut seen);
    let rules: Vec<Rule> = violations.iter().map(|v| v.rule).collect();
    assert_eq!(
        rules,
        [Rule::Preparation, Rule::StopDrained],
        "{violations:?}"
    );
    assert!(violations[0]
        .message
        .contains("durable checkpoint is at LSN 300"));
    assert_eq!(seen.observed.get(&Rule::Preparation), Some(&1));
    // A rollback overlapping the stop may have written: preparation is unobservable, counted.
    history.events.push(jetsim::history::Event {
        thread: 1,
        call: Call::Rollback { ses: Ref::Var(0) },
        invoked: 9,
        returned: 12,
        outcome: Outcome::Ok,
    });
    // The log's tail never reached the disk whole: stop-drained is unobservable, counted.
    history.stop_observations = vec![observed_stop(false, None)];
    let mut seen = Observability::default();
    assert!(stop_effects(&history, &mut seen).is_empty());
    let unobservable: Vec<Rule> = seen.unobservable.iter().map(|u| u.rule).collect();
    assert_eq!(
        unobservable,
        [Rule::Preparation, Rule::StopDrained, Rule::DefragParked]
    );
    assert!(seen.unobservable[0].detail.contains("Rollback"));
    // A gated call invoked after the stop began preparing, and admitted.
    history.events = vec![jetsim::history::Event {
        thread: 1,
        call: Call::BeginSession { bind: 0 },
        invoked: 10,
        returned: 13,
        outcome: Outcome::Ok,
    }];
    history.stop_observations = vec![observed_stop(true, Some(Vec::new()))];
    let mut seen = Observability::default();
    let violations = stop_effects(&history, &mut seen);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].rule, Rule::StopDrained);
    assert!(seen.unobservable.is_empty());
    // A log read before its tail was flushed: what it holds still counts, its silence not.
    history.events.clear();
    let mut partial = observed_stop(true, Some(vec!["Undo@640".into()]));
    partial.log_read_whole = false;
    history.stop_observations = vec![partial.clone()];
    let mut seen = Observability::default();
    assert_eq!(stop_effects(&history, &mut seen).len(), 1);
    partial.gated_records_after = Some(Vec::new());
    history.stop_observations = vec![partial];
    let mut seen = Observability::default();
    assert!(stop_effects(&history, &mut seen).is_empty());
    let unobservable: Vec<Rule> = seen.unobservable.iter().map(|u| u.rule).collect();
    assert_eq!(unobservable, [Rule::StopDrained, Rule::DefragParked]);
}

/// defrag-parked decides from the log the harness read: page images after a full stop that
/// its rollbacks' undone changes do not cover are a violation; covered ones are not; a log
/// read before its tail was flushed proves nothing by its silence, nor by the page images
/// after its last Rollback record (their rollback's record may be in that tail); a disk
/// that failed an operation makes the check unobservable (a rollback may have stopped half
/// way).
#[test]
fn defrag_parked_counts_page_changes_against_the_rollbacks_after_the_stop() {
    use jetsim::check::rules::{stop_effects, Observability};
    use jetsim::check::Rule;
    use jetsim::history::{History, PageChangesAfter};
    let changes = |lsns: &[u64], rolled_back_changes| PageChangesAfter {
        page_image_lsns: lsns.to_vec(),
        rolled_back_changes,
        images_after_last_rollback: 0,
    };
    // Page images after the last Rollback record read.
    let trailing = |lsns: &[u64], rolled_back_changes, after_last_rollback| PageChangesAfter {
        images_after_last_rollback: after_last_rollback,
        ..changes(lsns, rolled_back_changes)
    };
    let verdict = |changes: PageChangesAfter, read_whole: bool, disk_failed: bool| {
        let mut history = History {
            workers: 2,
            ..History::default()
        };
        let mut stop = observed_stop(true, Some(Vec::new()));
        stop.page_changes_after = Some(changes);
        stop.log_read_whole = read_whole;
        history.stop_observations = vec![stop];
        history.first_disk_failure_at = disk_failed.then_some(40);
        let mut seen = Observability::default();
        let violations: Vec<Rule> = stop_effects(&history, &mut seen)
            .iter()
            .map(|v| v.rule)
            .collect();
        let unobservable = seen
            .unobservable
            .iter()
            .any(|u| u.rule == Rule::DefragParked);
        (violations, unobservable)
    };
    // A defrag step after the stop: one page image, no rollback.
    assert_eq!(
        verdict(changes(&[600], 0), true, false),
        (vec![Rule::DefragParked], false)
    );
    // Two rollbacks' undone changes cover their page images.
    assert_eq!(
        verdict(changes(&[600, 700], 2), true, false),
        (vec![], false)
    );
    // One more page image than the rollbacks undid.
    assert_eq!(
        verdict(changes(&[600, 700, 800], 2), true, false),
        (vec![Rule::DefragParked], false)
    );
    // Found in a log read before its tail was flushed: still a violation; silence is not a pass.
    assert_eq!(
        verdict(changes(&[600], 0), false, false),
        (vec![Rule::DefragParked], false)
    );
    assert_eq!(verdict(changes(&[], 0), false, false), (vec![], true));
    // A rollback under the exclusive latch whose undo images an eviction wrote, its Rollback
    // record still in the tail no clean term wrote: unjudgeable, not a violation (the
    // 8-thread fault campaign's seed 7548). Read whole, the same log is a violation, and
    // images before the last Rollback record read still count.
    assert_eq!(
        verdict(trailing(&[600, 700, 800], 1, 2), false, false),
        (vec![], true)
    );
    assert_eq!(
        verdict(trailing(&[600, 700, 800], 1, 2), true, false),
        (vec![Rule::DefragParked], false)
    );
    assert_eq!(
        verdict(trailing(&[600, 700, 800], 0, 2), false, false),
        (vec![Rule::DefragParked], false)
    );
    // The disk failed an operation: a rollback may have logged half its changes.
    assert!(verdict(changes(&[600], 0), true, true).1);
}

// Opens like the other campaign tests (skip when replaying one seed, options, run): kept one
// opening each because each test names itself in the skip message and raises its own seed
// count with its own variable (JETSIM_SEEDS, JETSIM_FAULT_SEEDS); a shared opener would hide
// which options a test depends on.
#[test]
fn the_campaign_prints_how_many_stop_checks_it_could_not_make() {
    if replaying_one_seed("the_campaign_prints_how_many_stop_checks_it_could_not_make") {
        return;
    }
    let options = CampaignOptions {
        seeds: env_u64("JETSIM_SEEDS", 300),
        jobs: 2,
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).unwrap();
    for rule in [Rule::Preparation, Rule::StopDrained] {
        assert!(
            summary.stops_observed.get(&rule).copied().unwrap_or(0) > 0,
            "{rule}"
        );
    }
    assert!(summary.stops_unobservable.contains_key(&Rule::Preparation));
    // The run that could not be checked says so in its own output.
    let unobservable = (0..300)
        .map(|seed| run_seed(seed, Scheduling::Mix, Mutations::NONE))
        .find(|r| !r.verdict.observability.unobservable.is_empty())
        .expect("some run in 300 has a stop check it cannot make");
    let text = replay_text(
        &unobservable,
        Scheduling::Mix,
        false,
        None,
        FaultMode::Off,
        WorkloadSize::default(),
    )
    .unwrap();
    assert!(text.contains(": unobservable, "), "{text}");
}
