//! The crash-point sweep: for each seed, its workload runs once on a disk with no I/O errors
//! to count the mutating disk operations it makes after setup (writes, syncs, truncations);
//! then once more for every one of them, with the power cut exactly there, followed by the
//! crash (the seed's own mix of lost and torn unsynced writes), recovery, and every checker,
//! durability included: recovery must find exactly the committed data. A last point crashes
//! after the final term. Each point replays alone: `jetsim replay SEED --crash-at OP`.
//!
//! The same seed and the same schedule make the same calls up to the cut, so the power fails
//! at the same operation of the same call in every run of a point, and the sweep covers every
//! moment of the run at which the disk was touched: inside a commit's log sync, a stop's
//! flush, the checkpoint file's write, a background flush or defrag pass, the final term.

use crate::check::{Rule, Violation};
use crate::drive::campaign::{mutations_named, progress_bar, run_pool, CampaignOptions};
use crate::drive::simulation::{replay_command_with, run_seed_with};
use crate::workload::config::FaultMode;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What `sweep` was asked to do: the seeds, strategy, mutant and jobs of a campaign.
pub type SweepOptions = CampaignOptions;

/// One crash point that failed a checker.
#[derive(Debug, Clone)]
pub struct SweepFailure {
    pub seed: u64,
    /// The disk operation the power failed at (`None`: the crash after the final term).
    pub crash_at: Option<u64>,
    pub violations: Vec<Violation>,
}

/// What a sweep found.
#[derive(Debug, Clone, Default)]
pub struct SweepSummary {
    pub workloads: u64,
    /// Runs with a crash: one per disk operation of each workload, plus one at each end.
    pub crash_points: u64,
    pub failures: Vec<SweepFailure>,
    pub failures_by_rule: BTreeMap<Rule, u64>,
    /// Where the power cuts landed: what met them, which file they cut.
    pub met_by: BTreeMap<String, u64>,
    pub by_file: BTreeMap<&'static str, u64>,
    pub recovery: crate::drive::campaign::RecoveryTotals,
    pub wall_micros: u64,
}

/// Runs the sweep (see the module documentation).
pub fn run_sweep(options: &SweepOptions) -> Result<SweepSummary, String> {
    let mutations = mutations_named(options.mutant.as_deref())?;
    let started = std::time::Instant::now();
    let run_point = |seed: u64, crash_at: Option<u64>| {
        run_seed_with(
            seed,
            options.scheduling,
            FaultMode::CrashAt(crash_at),
            mutations,
        )
    };

    // Pass 1: every seed crashed after its final term; its disk operations are its points.
    let ends: Mutex<Vec<(u64, crate::drive::simulation::SeedReport)>> = Mutex::new(Vec::new());
    run_pool(options.jobs, options.seeds, |index| {
        let seed = options.start.wrapping_add(index);
        let report = run_point(seed, None);
        let panicked = report.history.is_none();
        ends.lock().expect("ends lock").push((seed, report));
        panicked
    });
    let mut ends = ends.into_inner().expect("ends lock");
    ends.sort_by_key(|(seed, _)| *seed);
    let points: Vec<(u64, u64)> = ends
        .iter()
        .flat_map(|(seed, report)| {
            let ops = report.history.as_ref().map_or(0, |h| h.disk_ops);
            (0..ops).map(move |op| (*seed, op))
        })
        .collect();

    // Pass 2: every (seed, operation) point.
    let bar = progress_bar(options.progress, points.len() as u64, "crash points");
    let cuts: Mutex<Vec<(u64, u64, crate::drive::simulation::SeedReport)>> = Mutex::new(Vec::new());
    run_pool(options.jobs, points.len() as u64, |index| {
        let (seed, op) = points[usize::try_from(index).expect("fits")];
        let report = run_point(seed, Some(op));
        let panicked = report.history.is_none();
        if !report.passed() {
            bar.set_message("failing".to_owned());
        }
        cuts.lock().expect("cuts lock").push((seed, op, report));
        bar.inc(1);
        panicked
    });
    bar.finish_and_clear();
    let mut cuts = cuts.into_inner().expect("cuts lock");
    cuts.sort_by_key(|(seed, op, _)| (*seed, *op));

    let mut summary = SweepSummary {
        workloads: options.seeds,
        wall_micros: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        ..SweepSummary::default()
    };
    let all = ends
        .into_iter()
        .map(|(seed, report)| (seed, None, report))
        .chain(
            cuts.into_iter()
                .map(|(seed, op, report)| (seed, Some(op), report)),
        );
    for (seed, crash_at, report) in all {
        summary.crash_points += 1;
        summary.recovery.add(
            report
                .history
                .as_ref()
                .and_then(|h| h.recovery_work.as_ref()),
        );
        if let Some(point) = report.history.as_ref().and_then(|h| h.crash_point.as_ref()) {
            *summary.met_by.entry(point.met_by.clone()).or_insert(0) += 1;
            *summary.by_file.entry(point.file_kind()).or_insert(0) += 1;
        }
        if !report.passed() {
            let rules: std::collections::BTreeSet<Rule> =
                report.verdict.violations.iter().map(|v| v.rule).collect();
            for rule in rules {
                *summary.failures_by_rule.entry(rule).or_insert(0) += 1;
            }
            summary.failures.push(SweepFailure {
                seed,
                crash_at,
                violations: report.verdict.violations,
            });
        }
    }
    summary.failures.sort_by_key(|f| (f.seed, f.crash_at));
    Ok(summary)
}

/// The command that replays one crash point.
pub fn replay_point_command(options: &SweepOptions, seed: u64, crash_at: Option<u64>) -> String {
    replay_command_with(
        seed,
        options.scheduling,
        options.mutant.as_deref(),
        FaultMode::CrashAt(crash_at),
    )
}

/// Prints the summary and the first failures with the commands that replay them.
pub fn print_sweep(options: &SweepOptions, summary: &SweepSummary) {
    println!(
        "jetsim sweep: {}: a crash at every disk operation of each run",
        options.heading()
    );
    println!();
    println!("  workloads              {:>10}", summary.workloads);
    println!(
        "  crash points tried     {:>10}  (every write, sync and truncation after setup, and one after the final term)",
        summary.crash_points
    );
    println!("  crash points failed    {:>10}", summary.failures.len());
    for rule in Rule::ALL {
        if let Some(count) = summary.failures_by_rule.get(rule) {
            println!("    {:<20} {:>10}", rule.name(), count);
        }
    }
    println!(
        "  power cut met by       {}",
        crate::drive::campaign::counts_line(&summary.met_by)
    );
    println!(
        "  power cut at           {}",
        crate::drive::campaign::counts_line(&summary.by_file)
    );
    println!("  recovery               {}", summary.recovery);
    println!(
        "  wall time              {:>9.2}s",
        summary.wall_micros as f64 / 1e6
    );
    for failure in summary.failures.iter().take(5) {
        let point = failure
            .crash_at
            .map_or_else(|| "the end".to_owned(), |op| format!("disk operation {op}"));
        crate::drive::campaign::print_failure(
            &format!("seed {}, crash at {point}", failure.seed),
            &failure.violations,
            &replay_point_command(options, failure.seed, failure.crash_at),
        );
    }
    if summary.failures.len() > 5 {
        println!(
            "\n... and {} more failing crash points",
            summary.failures.len() - 5
        );
    }
}

/// `sweep`: run, print, and say whether every crash point passed.
pub fn sweep(options: &SweepOptions) -> Result<bool, String> {
    let summary = run_sweep(options)?;
    print_sweep(options, &summary);
    Ok(summary.failures.is_empty())
}
