//! The campaign: many seeds on a few OS threads, a progress bar, a summary table, failures
//! reported with the command that replays them; and `replay` of one seed.

use crate::check::Rule;
use crate::drive::simulation::{
    replay_command_with, run_seed, run_workload_here, scheduling_name, SeedReport,
};
use crate::history::History;
use crate::report::{CommandInfo, Report, RunRecord, Shard, Summary};
use crate::workload::config::{FaultMode, RunConfig, Scheduling, WorkloadSize};
use jetsim_engine::{Mark, Mutant, Mutations};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// What `explore` was asked to do.
#[derive(Debug, Clone)]
pub struct CampaignOptions {
    pub seeds: u64,
    pub start: u64,
    pub scheduling: Scheduling,
    /// Also write the report (`crate::report::Report`) as JSON here.
    pub json: Option<std::path::PathBuf>,
    /// Also write the runs as JUnit XML here.
    pub junit: Option<std::path::PathBuf>,
    pub check_determinism: bool,
    pub mutant: Option<String>,
    pub jobs: usize,
    pub progress: bool,
    /// Disk faults and a crash with recovery in every run.
    pub faults: bool,
    /// Run only this share of `start..start + seeds`.
    pub shard: Option<Shard>,
    /// The command line, recorded in the report.
    pub command_line: String,
    /// `--threads N --calls M`: a workload size replacing the seeds' draws.
    pub size: WorkloadSize,
}

impl Default for CampaignOptions {
    fn default() -> Self {
        CampaignOptions {
            seeds: 1000,
            start: 0,
            scheduling: Scheduling::Mix,
            json: None,
            junit: None,
            check_determinism: false,
            mutant: None,
            jobs: 1,
            progress: false,
            faults: false,
            shard: None,
            command_line: String::new(),
            size: WorkloadSize::default(),
        }
    }
}

impl CampaignOptions {
    /// `seeds 0..1000 (mix strategy, mutant X)`, for summaries.
    pub fn heading(&self) -> String {
        format!(
            "seeds {}..{} ({} strategy{}{})",
            self.start,
            self.start.saturating_add(self.seeds),
            scheduling_name(self.scheduling),
            self.mutant
                .as_ref()
                .map(|m| format!(", mutant {m}"))
                .unwrap_or_default(),
            self.shard
                .map(|s| format!(", shard {s}: {} of the seeds", s.len(self.seeds)))
                .unwrap_or_default()
        )
    }

    pub fn fault_mode(&self) -> FaultMode {
        if self.faults {
            FaultMode::Seeded
        } else {
            FaultMode::Off
        }
    }

    /// Refuses a campaign that would run nothing, a range past the last seed, no worker
    /// threads, or an unknown mutant: a CI job must not pass a campaign that never ran.
    pub fn validate(&self) -> Result<(), String> {
        if self.seeds == 0 {
            return Err("--seeds 0 runs nothing; give at least 1".into());
        }
        if self.start.checked_add(self.seeds).is_none() {
            return Err(format!(
                "--start {} --seeds {} goes past the last seed ({}); the range must end by then",
                self.start,
                self.seeds,
                u64::MAX
            ));
        }
        if let Some(threads) = self.size.threads {
            if !(2..=THREADS_MAX).contains(&threads) {
                return Err(format!(
                    "--threads {threads}: a run has 2 to {THREADS_MAX} threads (one stops, others race it)"
                ));
            }
        }
        if self
            .size
            .calls_per_thread_max
            .is_some_and(|calls| calls > CALLS_MAX)
        {
            return Err(format!("--calls: at most {CALLS_MAX} calls a thread"));
        }
        if self.jobs == 0 {
            return Err("--jobs 0 gives no worker thread; give at least 1".into());
        }
        if let Some(shard) = self.shard {
            if shard.len(self.seeds) == 0 {
                return Err(format!(
                    "shard {shard} of {} seeds is empty: use at most {} shards",
                    self.seeds, self.seeds
                ));
            }
        }
        mutations_named(self.mutant.as_deref()).map(|_| ())
    }

    /// The seeds this campaign (or its shard) runs, in order.
    pub fn seed_list(&self) -> Vec<u64> {
        let shard = self.shard.unwrap_or(Shard { index: 1, count: 1 });
        shard
            .offsets(self.seeds)
            .map(|offset| self.start + offset)
            .collect()
    }

    /// The command that replays `seed` of this campaign exactly.
    pub fn replay_command(&self, seed: u64) -> String {
        replay_command_with(
            seed,
            self.scheduling,
            self.mutant.as_deref(),
            self.fault_mode(),
        ) + &self.size.arguments()
            + &crate::check::search_bound_argument()
    }

    /// The report of `summary`'s runs.
    pub fn report(&self, summary: &CampaignSummary) -> Report {
        Report {
            schema_version: crate::report::SCHEMA_VERSION,
            jetsim_version: crate::report::JETSIM_VERSION.to_owned(),
            command: CommandInfo {
                name: "explore".into(),
                line: self.command_line.clone(),
                start: self.start,
                seeds: self.seeds,
                strategy: scheduling_name(self.scheduling).into(),
                mutant: self.mutant.clone(),
                faults: self.faults,
                check_determinism: self.check_determinism,
                shard: self.shard,
                merged_from: Vec::new(),
            },
            summary: Summary::of_runs(
                &summary.runs,
                summary.wall_micros as f64 / 1e6,
                self.check_determinism,
            ),
            runs: summary.runs.clone(),
        }
    }
}

/// Most threads `--threads` accepts (the model names objects by thread in 15 bits, sessions'
/// creators in a byte).
pub const THREADS_MAX: usize = 64;
/// Most calls a thread `--calls` accepts (a thread's objects are numbered in 16 bits).
pub const CALLS_MAX: usize = 1000;

/// Runs and checks seed `seed` on the calling thread, with the disk faults `faults` asks for
/// and the workload size `size` (the seed's own draw where `size` says nothing).
pub fn run_seed_sized(
    seed: u64,
    scheduling: Scheduling,
    faults: FaultMode,
    mutations: Mutations,
    size: WorkloadSize,
) -> SeedReport {
    let config = RunConfig::derive_with(seed, scheduling, faults).resized(size);
    let workload = config.workload();
    run_workload_here(&config, &workload, mutations)
}

/// The planted bug named `name`, as `Mutations`.
pub fn mutations_named(name: Option<&str>) -> Result<Mutations, String> {
    let Some(name) = name else {
        return Ok(Mutations::NONE);
    };
    let mutant = Mutant::ALL
        .iter()
        .find(|m| format!("{m:?}").eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("no mutant named {name:?}; `jetsim mutants` lists them"))?;
    Ok(Mutations::NONE.with(*mutant))
}

/// Aggregated results of a campaign.
#[derive(Debug, Clone, Default)]
pub struct CampaignSummary {
    pub seeds_run: u64,
    pub seeds_failed: u64,
    pub failures_by_rule: BTreeMap<Rule, u64>,
    pub calls: u64,
    pub wall_micros: u64,
    pub check_micros: u64,
    /// Each run's checking time (microseconds) and linearizability states explored, for the
    /// summary's median and p99 (reporting only).
    pub check_micros_per_run: Vec<u64>,
    pub states_explored_per_run: Vec<u64>,
    pub stops_landed: [u64; 3],
    pub runs_without_stop: u64,
    /// Fault runs: where the power cuts landed, by what met them and by file kind.
    pub power_cuts_met_by: BTreeMap<String, u64>,
    pub power_cuts_by_file: BTreeMap<&'static str, u64>,
    /// Fault runs whose crash came at the end (no power cut met during the run).
    pub crashes_at_end: u64,
    /// Mutating disk operations of all fault runs (after setup).
    pub disk_ops: u64,
    /// What recovery did, over all fault runs.
    pub recovery: RecoveryTotals,
    /// The checkpoint audit over all runs: checkpoints checked and page changes checked.
    pub checkpoints_audited: u64,
    pub page_changes_audited: u64,
    /// Database page writes the write-ahead audit checked against the durable log.
    pub write_ahead_pages: u64,
    /// Main log writes the append-only audit checked against the log's durable bytes.
    pub log_writes_audited: u64,
    /// Runs without faults whose disk the harness read back after the final term, and the
    /// records it found there (see `History::term_disk`).
    pub term_disks_read: u64,
    pub term_disk_records: u64,
    /// Stop checks made from the harness's own observations, per rule: stops observed, and
    /// stops the check could not be made for, by reason.
    pub stops_observed: BTreeMap<Rule, u64>,
    pub stops_unobservable: BTreeMap<Rule, BTreeMap<&'static str, u64>>,
    pub nondeterministic: Vec<u64>,
    /// Failing seeds, lowest first.
    pub failures: Vec<SeedReport>,
    /// Every run, in seed order, as the report records it.
    pub runs: Vec<RunRecord>,
    /// Coverage: for each engine mark hit, the runs that hit it.
    pub runs_by_mark: BTreeMap<String, u64>,
    /// Checks that could not be made, by why (see `History::unobservable`).
    pub unobservable: BTreeMap<String, u64>,
    /// Calls inside the engine at once, from the histories.
    pub concurrency: crate::report::concurrency::Overlap,
}

/// Runs `work(0..items)` on `jobs` worker OS threads, each item once, in no fixed order
/// (callers sort their results). Items run on a worker thread rather than a fresh thread each
/// (50 us an item); `work` returns true when its run panicked, which retires the thread
/// (shuttle may leave per-thread state behind) and a fresh one carries on.
pub fn run_pool(jobs: usize, items: u64, work: impl Fn(u64) -> bool + Sync) {
    let next = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                let mut finished = false;
                while !finished {
                    finished = std::thread::scope(|inner| {
                        inner
                            .spawn(|| loop {
                                let index = next.fetch_add(1, Ordering::SeqCst);
                                if index >= items {
                                    return true;
                                }
                                if work(index) {
                                    return false;
                                }
                            })
                            .join()
                            .unwrap_or(false)
                    });
                }
            });
        }
    });
}

/// A progress bar over `len` items (hidden unless `shown`).
pub fn progress_bar(shown: bool, len: u64, unit: &str) -> indicatif::ProgressBar {
    if !shown {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}  {{msg}}"
        ))
        .expect("valid template"),
    );
    bar
}

/// Runs the campaign; returns the summary (for tests) and prints it when `progress` is set.
/// Writes the JSON report and the JUnit file when asked to.
pub fn run_campaign(options: &CampaignOptions) -> Result<CampaignSummary, String> {
    options.validate()?;
    let mutations = mutations_named(options.mutant.as_deref())?;
    let started = std::time::Instant::now();
    let results = run_seeds(options, mutations);
    let wall_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let mut summary = CampaignSummary {
        wall_micros,
        ..CampaignSummary::default()
    };
    summary.runs = results
        .iter()
        .map(|(seed, report, deterministic)| run_record(options, *seed, report, *deterministic))
        .collect();
    for (seed, report, deterministic) in results {
        summary.add(seed, report, deterministic);
    }
    if options.json.is_some() || options.junit.is_some() {
        let report = options.report(&summary);
        if let Some(path) = &options.json {
            report.write_json(path)?;
        }
        if let Some(path) = &options.junit {
            report.write_junit(path)?;
        }
    }
    Ok(summary)
}

/// Runs every seed of the campaign on the worker pool (twice with `check_determinism`), with
/// the progress bar; returns each seed's report and whether its two runs agreed, by seed.
fn run_seeds(options: &CampaignOptions, mutations: Mutations) -> Vec<(u64, SeedReport, bool)> {
    let seeds = options.seed_list();
    let results: Mutex<Vec<(u64, SeedReport, bool)>> = Mutex::new(Vec::new());
    let bar = progress_bar(options.progress, seeds.len() as u64, "seeds");
    let failed = AtomicU64::new(0);
    run_pool(options.jobs, seeds.len() as u64, |index| {
        let seed = seeds[usize::try_from(index).expect("seed index fits")];
        let run = || {
            run_seed_sized(
                seed,
                options.scheduling,
                options.fault_mode(),
                mutations,
                options.size,
            )
        };
        let report = run();
        let panicked = report.history.is_none();
        let deterministic = !options.check_determinism || {
            let again = run();
            again.trace_hash == report.trace_hash && again.verdict == report.verdict
        };
        if !report.passed() || !deterministic {
            let count = failed.fetch_add(1, Ordering::SeqCst) + 1;
            bar.set_message(format!("{count} failing"));
        }
        results
            .lock()
            .expect("results lock")
            .push((seed, report, deterministic));
        bar.inc(1);
        panicked
    });
    bar.finish_and_clear();
    let mut results = results.into_inner().expect("results lock");
    results.sort_by_key(|(seed, _, _)| *seed);
    results
}

/// One run as the JSON report records it.
fn run_record(
    options: &CampaignOptions,
    seed: u64,
    report: &SeedReport,
    deterministic: bool,
) -> RunRecord {
    RunRecord {
        seed,
        passed: report.passed(),
        deterministic: options.check_determinism.then_some(deterministic),
        trace_hash: format!("{:016x}", report.trace_hash),
        calls: report.calls() as u64,
        violations: report.verdict.violations.clone(),
        config: report.config.clone(),
        disk_ops: report.history.as_ref().map(|h| h.disk_ops),
        crash_point: report.history.as_ref().and_then(|h| h.crash_point.clone()),
        replay: options.replay_command(seed),
    }
}

impl CampaignSummary {
    /// Counts one seed's run into the totals; a failing run is kept whole in `failures`.
    fn add(&mut self, seed: u64, report: SeedReport, deterministic: bool) {
        self.seeds_run += 1;
        self.calls += report.calls() as u64;
        self.check_micros += report.check_micros;
        self.check_micros_per_run.push(report.check_micros);
        self.states_explored_per_run
            .push(report.verdict.states_explored);
        let seen = &report.verdict.observability;
        for (rule, stops) in &seen.observed {
            *self.stops_observed.entry(*rule).or_insert(0) += stops;
        }
        for unobservable in &seen.unobservable {
            *self
                .stops_unobservable
                .entry(unobservable.rule)
                .or_default()
                .entry(unobservable.reason)
                .or_insert(0) += 1;
        }
        if let Some(history) = &report.history {
            for mark in history.marks.keys() {
                *self.runs_by_mark.entry(mark.clone()).or_insert(0) += 1;
            }
            for (check, count) in &history.unobservable {
                *self.unobservable.entry(check.clone()).or_insert(0) += count;
            }
            self.checkpoints_audited += history.checkpoint_audit.checkpoints;
            self.write_ahead_pages += history.write_ahead.pages;
            self.log_writes_audited += history.write_ahead.log_writes;
            if let Some(disk) = &history.term_disk {
                self.term_disks_read += 1;
                if let Ok(tables) = &disk.found {
                    self.term_disk_records += tables.iter().map(|t| t.len() as u64).sum::<u64>();
                }
            }
            self.page_changes_audited += history.checkpoint_audit.page_changes;
            self.concurrency
                .add(crate::report::concurrency::Overlap::of(history));
        }
        match report.verdict.landing {
            Some(landing) => {
                // Classify the run by where most other calls fell relative to the stop.
                let slot = if landing.during > 0 {
                    1
                } else if landing.after > landing.before {
                    2
                } else {
                    0
                };
                self.stops_landed[slot] += 1;
            }
            None => self.runs_without_stop += 1,
        }
        if let Some(history) = report.history.as_ref().filter(|h| h.io_faults) {
            self.add_crash(history);
        }
        if !deterministic {
            self.nondeterministic.push(seed);
        }
        if !report.passed() {
            self.seeds_failed += 1;
            let rules: std::collections::BTreeSet<Rule> =
                report.verdict.violations.iter().map(|v| v.rule).collect();
            for rule in rules {
                *self.failures_by_rule.entry(rule).or_insert(0) += 1;
            }
            self.failures.push(report);
        }
    }

    /// Counts a run with disk faults: its disk operations, recovery's work, where the power
    /// was cut.
    fn add_crash(&mut self, history: &History) {
        self.disk_ops += history.disk_ops;
        self.recovery.add(history.recovery_work.as_ref());
        match &history.crash_point {
            Some(point) => {
                *self
                    .power_cuts_met_by
                    .entry(point.met_by.clone())
                    .or_insert(0) += 1;
                *self
                    .power_cuts_by_file
                    .entry(point.file_kind())
                    .or_insert(0) += 1;
            }
            None => self.crashes_at_end += 1,
        }
    }
}

fn per_second(count: u64, micros: u64) -> f64 {
    if micros == 0 {
        0.0
    } else {
        count as f64 * 1e6 / micros as f64
    }
}

/// Recovery's work summed over the runs of a campaign or sweep: evidence that redo, torn-page
/// repair, undo, torn-tail cutting and the checkpoint's fallback slot were all exercised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryTotals {
    pub recoveries: u64,
    pub pages_redone: u64,
    pub pages_repaired: u64,
    pub transactions_undone: u64,
    pub runs_with_torn_log_tail: u64,
    pub runs_with_damaged_checkpoint: u64,
}

impl RecoveryTotals {
    pub fn add(&mut self, work: Option<&crate::history::RecoveryWork>) {
        let Some(work) = work else { return };
        self.recoveries += 1;
        self.pages_redone += work.pages_redone;
        self.pages_repaired += work.pages_repaired;
        self.transactions_undone += work.transactions_undone;
        self.runs_with_torn_log_tail += u64::from(work.torn_tail_bytes > 0);
        self.runs_with_damaged_checkpoint += u64::from(work.checkpoint_slots_damaged > 0);
    }
}

impl std::fmt::Display for RecoveryTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} recoveries: {} pages redone ({} torn pages repaired), {} transactions undone, torn log tail cut in {}, damaged checkpoint slot in {}",
            self.recoveries,
            self.pages_redone,
            self.pages_repaired,
            self.transactions_undone,
            self.runs_with_torn_log_tail,
            self.runs_with_damaged_checkpoint
        )
    }
}

/// `a 3, b 1`, largest first (ties by name).
pub fn counts_line<K: std::fmt::Display + Ord>(counts: &BTreeMap<K, u64>) -> String {
    let mut sorted: Vec<(&K, &u64)> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = sorted.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The `percent`th percentile of `values` (nearest rank; 0 when empty).
fn percentile(values: &[u64], percent: usize) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    match sorted.len() {
        0 => 0,
        n => sorted[(n * percent).div_ceil(100).clamp(1, n) - 1],
    }
}

/// Prints the summary table and the first failures with their replay commands.
pub fn print_summary(options: &CampaignOptions, summary: &CampaignSummary) {
    println!("jetsim explore: {}", options.heading());
    println!();
    println!("  seeds run              {:>10}", summary.seeds_run);
    println!("  seeds failed           {:>10}", summary.seeds_failed);
    for rule in Rule::ALL {
        println!(
            "    {:<20} {:>10}",
            rule.name(),
            summary.failures_by_rule.get(rule).copied().unwrap_or(0)
        );
    }
    if options.check_determinism {
        println!(
            "  nondeterministic seeds {:>10}",
            summary.nondeterministic.len()
        );
    }
    print_throughput(options, summary);
    print_stops_and_crashes(options, summary);
    println!(
        "  checks unobservable    {}",
        counts_line(&summary.unobservable)
    );
    print!("{}", coverage_table(summary));
    for seed in &summary.nondeterministic {
        println!("\nseed {seed} is NOT deterministic: two runs gave different traces.");
        println!("  reproduce: {}", options.replay_command(*seed));
    }
    for report in summary.failures.iter().take(5) {
        print_failure(
            &format!("seed {}", report.config.seed),
            &report.verdict.violations,
            &options.replay_command(report.config.seed),
        );
    }
    if summary.failures.len() > 5 {
        println!(
            "\n... and {} more failing seeds (see --json)",
            summary.failures.len() - 5
        );
    }
}

/// The summary's middle: calls, time, rates, concurrency and the checker's cost.
fn print_throughput(options: &CampaignOptions, summary: &CampaignSummary) {
    let seconds = summary.wall_micros as f64 / 1e6;
    println!("  calls checked          {:>10}", summary.calls);
    println!("  wall time              {:>9.2}s", seconds);
    println!(
        "  interleavings / s      {:>10.0}",
        per_second(summary.seeds_run, summary.wall_micros)
    );
    println!(
        "    per worker           {:>10.0}  ({} workers)",
        per_second(summary.seeds_run, summary.wall_micros) / options.jobs.max(1) as f64,
        options.jobs.max(1)
    );
    println!(
        "  calls / s              {:>10.0}",
        per_second(summary.calls, summary.wall_micros)
    );
    println!("  calls in flight at once {}", summary.concurrency.line());
    println!(
        "  checker share          {:>9.1}%  (of summed run time)",
        100.0 * summary.check_micros as f64
            / (summary.wall_micros as f64 * options.jobs.max(1) as f64).max(1.0)
    );
    println!(
        "  check time per run     {:>8.1}ms  median, {:.1}ms p99, {:.1}ms max",
        percentile(&summary.check_micros_per_run, 50) as f64 / 1e3,
        percentile(&summary.check_micros_per_run, 99) as f64 / 1e3,
        percentile(&summary.check_micros_per_run, 100) as f64 / 1e3,
    );
    println!(
        "  states searched / run  {:>10}  median, {} p99, {} max (bound {})",
        percentile(&summary.states_explored_per_run, 50),
        percentile(&summary.states_explored_per_run, 99),
        percentile(&summary.states_explored_per_run, 100),
        crate::check::search_states_max()
    );
}

/// What `rule` checked over the campaign: how many checks it made, how many it could not,
/// and those by why (`-` for none).
fn rule_counts(summary: &CampaignSummary, rule: Rule) -> (u64, u64, String) {
    let unobservable = summary.stops_unobservable.get(&rule);
    (
        summary.stops_observed.get(&rule).copied().unwrap_or(0),
        unobservable.map_or(0, |u| u.values().sum::<u64>()),
        unobservable.map_or_else(|| "-".to_owned(), counts_line),
    )
}

/// The summary's stop and crash lines: where stops landed, what the stop rules could check,
/// and (when runs crashed) where the power cuts met the run and what recovery did.
fn print_stops_and_crashes(options: &CampaignOptions, summary: &CampaignSummary) {
    println!(
        "  stop landed            {:>10} before other calls, {} during, {} after; {} without a successful stop",
        summary.stops_landed[0],
        summary.stops_landed[1],
        summary.stops_landed[2],
        plural(summary.runs_without_stop as usize, "run", "runs")
    );
    for rule in [
        Rule::Preparation,
        Rule::StopDrained,
        Rule::VersionCleanup,
        Rule::DefragParked,
    ] {
        let (observed, unobservable, why) = rule_counts(summary, rule);
        println!(
            "  {:<22} {observed:>10} stops checked, {unobservable} unobservable ({why})",
            format!("{} observed", rule.name()),
        );
    }
    println!(
        "  checkpoints audited    {:>10} durable checkpoints against the database file, {} page changes checked",
        summary.checkpoints_audited, summary.page_changes_audited
    );
    let (observed, unobservable, why) = rule_counts(summary, Rule::CommitDurable);
    println!(
        "  commit-durable         {observed:>10} level-1 commits checked against the durable log, {unobservable} unobservable ({why})",
    );
    let (observed, _, _) = rule_counts(summary, Rule::DetachDurable);
    println!("  detach-durable         {observed:>10} detaches checked against the durable log");
    let (observed, unobservable, why) = rule_counts(summary, Rule::DetachedUnwritten);
    println!(
        "  detached-unwritten     {observed:>10} detached files watched until the next attach, {unobservable} unobservable ({why})",
    );
    println!(
        "  write-ahead audited    {:>10} database page writes against the durable log, {} log writes against its durable bytes",
        summary.write_ahead_pages, summary.log_writes_audited
    );
    let (observed, unobservable, why) = rule_counts(summary, Rule::TermDisk);
    println!(
        "  term disks read back   {:>10} runs' disks after the final term, {} committed records found; {observed} database files read alone after a clean term or a detach, {unobservable} unobservable ({why})",
        summary.term_disks_read,
        summary.term_disk_records,
    );
    let (observed, unobservable, why) = rule_counts(summary, Rule::DatabaseSharing);
    println!(
        "  database sharing       {observed:>10} runs' database files attached by another instance after the wind-down, {unobservable} unobservable ({why})",
    );
    let power_cuts: u64 = summary.power_cuts_met_by.values().sum();
    // Default runs crash too (the seed's crash switch).
    if options.faults || power_cuts + summary.crashes_at_end > 0 {
        println!(
            "  crashes                {:>10} power cuts during the run, {} at its end; {:.1} disk operations a run",
            power_cuts,
            summary.crashes_at_end,
            summary.disk_ops as f64 / summary.seeds_run.max(1) as f64
        );
        println!(
            "    power cut met by     {}",
            counts_line(&summary.power_cuts_met_by)
        );
        println!(
            "    power cut at         {}",
            counts_line(&summary.power_cuts_by_file)
        );
        println!("  recovery               {}", summary.recovery);
    }
}

/// The coverage table: every engine mark, the runs that hit it and their share. Marks are
/// compiled in only with the engine's `marks` feature (jetsim enables it).
pub fn coverage_table(summary: &CampaignSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "  coverage marks (runs that hit each):");
    for mark in Mark::ALL {
        let runs = summary.runs_by_mark.get(mark.name()).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "    {:<32} {:>8}  {:>6.2}%{}",
            mark.name(),
            runs,
            100.0 * runs as f64 / summary.seeds_run.max(1) as f64,
            if runs == 0 { "  NOT HIT" } else { "" }
        );
    }
    out
}

/// One failure: what failed, every violation, and the command that replays it.
pub fn print_failure(what: &str, violations: &[crate::check::Violation], command: &str) {
    println!("\nFAILED {what}:");
    for violation in violations {
        println!("  {violation}");
    }
    println!("  reproduce: {command}");
}

/// `explore`: run, print, and say whether everything passed; with `shrink`, also shrink the
/// first failure to a regression scenario in that folder.
pub fn explore(
    options: &CampaignOptions,
    shrink: Option<&std::path::Path>,
) -> Result<bool, String> {
    let summary = run_campaign(options)?;
    print_summary(options, &summary);
    for (what, path) in [("report", &options.json), ("JUnit file", &options.junit)] {
        if let Some(path) = path {
            println!("{what} written to {}", path.display());
        }
    }
    let mut passed = summary.seeds_failed == 0 && summary.nondeterministic.is_empty();
    if let (Some(out), Some(first)) = (shrink, summary.failures.first()) {
        println!();
        passed &= crate::drive::regression::shrink_to_regression(
            first.config.seed,
            options.scheduling,
            options.fault_mode(),
            options.mutant.as_deref(),
            out,
            crate::workload::shrink::ShrinkLimits::default().tree_runs_max,
        )?;
    }
    Ok(passed)
}

/// `replay`: one seed, its configuration, its history, its verdict; with `html`, also the
/// run's timeline as one self-contained HTML file. `size` is the run's `explore --threads N
/// --calls M` (default: the seed's own draw).
pub fn replay(
    seed: u64,
    scheduling: Scheduling,
    trace: bool,
    mutant: Option<&str>,
    html: Option<&std::path::Path>,
    faults: FaultMode,
    size: WorkloadSize,
) -> Result<bool, String> {
    let mutations = mutations_named(mutant)?;
    let report = run_seed_sized(seed, scheduling, faults, mutations, size);
    if let Some(path) = html {
        let details = vec![
            format!(
                "seed {seed}, {} strategy, mutant {}",
                scheduling_name(scheduling),
                mutant.unwrap_or("none")
            ),
            format!(
                "reproduce: {}",
                replay_command_with(seed, scheduling, mutant, faults)
                    + &size.arguments()
                    + &crate::check::search_bound_argument()
            ),
        ];
        crate::report::timeline::write_report_html(
            &format!("jetsim replay {seed}"),
            details,
            &report,
            path,
        )?;
        println!("timeline written to {}", path.display());
    }
    print!(
        "{}",
        replay_text(&report, scheduling, trace, mutant, faults, size)?
    );
    Ok(report.passed())
}

/// What `replay` prints for `report`'s run: configuration, workload, history (every call
/// with `trace`, or when the run failed), disk faults and recovery, the verdict and the
/// command that reproduces it. Also what `JETSIM_SEED=N cargo test` prints. One step per
/// section, in the order they are printed.
pub fn replay_text(
    report: &SeedReport,
    scheduling: Scheduling,
    trace: bool,
    mutant: Option<&str>,
    faults: FaultMode,
    size: WorkloadSize,
) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "jetsim replay {} ({} strategy{})",
        report.config.seed,
        scheduling_name(scheduling),
        mutant.map(|m| format!(", mutant {m}")).unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "configuration: {}",
        serde_json::to_string_pretty(&report.config).map_err(|e| e.to_string())?
    );
    workload_text(&mut out, report);
    if let Some(history) = &report.history {
        history_text(&mut out, report, history, trace || !report.passed());
        if history.io_faults {
            disk_text(&mut out, history, report.config.seed);
        }
    }
    observability_text(&mut out, &report.verdict.observability);
    verdict_text(&mut out, report, scheduling, mutant, faults, size);
    Ok(out)
}

/// The workload: each thread's program, call by call.
fn workload_text(out: &mut String, report: &SeedReport) {
    let threads = report.workload.threads.len();
    let _ = writeln!(
        out,
        "workload: {} in {}",
        plural(report.workload.call_count(), "call", "calls"),
        plural(threads, "thread", "threads")
    );
    for (thread, program) in report.workload.threads.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}: {}",
            crate::report::transitions::thread_label(thread, threads),
            plural(program.len(), "call", "calls")
        );
        for call in program {
            let _ = writeln!(out, "    {call:?}");
        }
    }
}

/// The history's size and trace hash; with `every_call`, every call with its invocation and
/// response steps and what each stop did after it returned.
fn history_text(out: &mut String, report: &SeedReport, history: &History, every_call: bool) {
    let harness = history
        .events
        .iter()
        .filter(|e| e.thread >= history.workers)
        .count();
    let _ = writeln!(
        out,
        "history: {} ({} by the workload threads, {} by the harness's wd lane: wind-down and final term), trace hash {:016x}",
        plural(history.events.len(), "call", "calls"),
        history.events.len() - harness,
        harness,
        report.trace_hash
    );
    if !every_call {
        let _ = writeln!(
            out,
            "  (add --trace to print every call with its invocation and response steps)"
        );
        return;
    }
    let mut events = history.events.clone();
    events.sort_by_key(|e| e.invoked);
    for e in &events {
        let _ = writeln!(
            out,
            "  [{:>4}..{:>4}] {:<3} {:?} -> {:?}",
            e.invoked,
            e.returned,
            crate::report::transitions::thread_label(e.thread, history.workers),
            e.call,
            e.outcome
        );
    }
    for after in &history.after_stops {
        let _ = writeln!(
            out,
            "  after the stop at step {}: {}",
            after.stop_returned,
            after.steps.join("; ")
        );
    }
}

/// A run with disk faults: its disk operations, the power cut, the faults injected, what
/// recovery did and found.
fn disk_text(out: &mut String, history: &History, seed: u64) {
    let _ = writeln!(
        out,
        "disk operations after setup: {} (a crash-point sweep of this run tries each: `jetsim sweep --start {seed} --seeds 1`)",
        history.disk_ops
    );
    match &history.crash_point {
        Some(point) => {
            let _ = writeln!(
                out,
                "power cut at disk operation {} ({}), met by {}",
                point.op_index,
                point.operation.as_deref().unwrap_or("between operations"),
                point.met_by
            );
        }
        None => {
            let _ = writeln!(
                out,
                "no power cut during the run: the crash came at its end"
            );
        }
    }
    let _ = writeln!(
        out,
        "disk faults: {} injected",
        history.injected_faults.len()
    );
    out.push_str(&faults_and_recovery_work(history));
    match &history.recovered {
        Some(Ok(tables)) => {
            let _ = writeln!(out, "recovered after the crash: {tables:?}");
        }
        Some(Err(why)) => {
            let _ = writeln!(out, "recovery after the crash failed: {why}");
        }
        None => {}
    }
}

/// The injected faults, one a line, and the recovery's work: the lines `replay` and a
/// scenario's text both print (each words the crash and the recovered data its own way).
pub fn faults_and_recovery_work(history: &History) -> String {
    let mut out = String::new();
    for fault in &history.injected_faults {
        let _ = writeln!(out, "  {fault}");
    }
    if let Some(work) = &history.recovery_work {
        let _ = writeln!(out, "recovery: {work}");
    }
    out
}

/// Which stop checks could be made, and each one that could not with its reason.
fn observability_text(out: &mut String, seen: &crate::check::rules::Observability) {
    if seen.observed.is_empty() && seen.unobservable.is_empty() {
        return;
    }
    let is_stop_rule = |rule: &Rule| *rule != Rule::CommitDurable;
    let observed: BTreeMap<String, u64> = seen
        .observed
        .iter()
        .filter(|(rule, _)| is_stop_rule(rule))
        .map(|(rule, n)| (rule.name().to_owned(), *n))
        .collect();
    let (stops, commits): (Vec<_>, Vec<_>) = seen
        .unobservable
        .iter()
        .partition(|u| is_stop_rule(&u.rule));
    if !observed.is_empty() || !stops.is_empty() {
        let _ = writeln!(
            out,
            "stop checks observed: {}; unobservable: {}",
            counts_line(&observed),
            stops.len()
        );
    }
    for unobservable in stops {
        let _ = writeln!(
            out,
            "  {} for the stop that returned at step {}: unobservable, {}",
            unobservable.rule, unobservable.returned, unobservable.detail
        );
    }
    let acknowledgements = seen.observed.get(&Rule::CommitDurable).copied();
    if acknowledgements.is_some() || !commits.is_empty() {
        let _ = writeln!(
            out,
            "commit-durable: {} level-1 commits checked against the durable log; unobservable: {}",
            acknowledgements.unwrap_or(0),
            commits.len()
        );
    }
    for unobservable in commits {
        let _ = writeln!(
            out,
            "  commit-durable for the commit that returned at step {}: unobservable, {}",
            unobservable.returned, unobservable.detail
        );
    }
}

/// Passed, or every violation with the commands that reproduce the run.
fn verdict_text(
    out: &mut String,
    report: &SeedReport,
    scheduling: Scheduling,
    mutant: Option<&str>,
    faults: FaultMode,
    size: WorkloadSize,
) {
    let seed = report.config.seed;
    if report.passed() {
        let _ = writeln!(
            out,
            "verdict: passed ({} model states explored)",
            report.verdict.states_explored
        );
        return;
    }
    let _ = writeln!(out, "verdict: FAILED");
    for violation in &report.verdict.violations {
        let _ = writeln!(out, "  {violation}");
    }
    let _ = writeln!(
        out,
        "reproduce: {}",
        replay_command_with(seed, scheduling, mutant, faults)
            + &size.arguments()
            + &crate::check::search_bound_argument()
    );
    // The campaign test replays seeds at their drawn size only.
    if size != WorkloadSize::default() {
        return;
    }
    if let Some(command) = cargo_test_replay_command(seed, scheduling, mutant, faults) {
        let _ = writeln!(out, "in cargo test: {command}");
    }
}

/// The `cargo test` line that replays one seed inside the campaign test (`JETSIM_SEED`,
/// `JETSIM_STRATEGY`, `JETSIM_MUTANT`, `JETSIM_FAULTS`). A crash-point sweep's point has no
/// such line (`None`): replay it with its `jetsim replay --crash-at` command.
pub fn cargo_test_replay_command(
    seed: u64,
    scheduling: Scheduling,
    mutant: Option<&str>,
    faults: FaultMode,
) -> Option<String> {
    let mut command = format!("JETSIM_SEED={seed}");
    if scheduling != Scheduling::Mix {
        command.push_str(&format!(" JETSIM_STRATEGY={}", scheduling_name(scheduling)));
    }
    if let Some(mutant) = mutant {
        command.push_str(&format!(" JETSIM_MUTANT={mutant}"));
    }
    match faults {
        FaultMode::Off => {}
        FaultMode::Seeded => command.push_str(" JETSIM_FAULTS=1"),
        FaultMode::CrashAt(_) => return None,
    }
    command.push_str(" cargo test -p jetsim --test campaign -- --nocapture");
    Some(command)
}

/// `1 call`, `2 calls`.
pub fn plural(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// Where a planted bug was first caught.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub seed: u64,
    /// Seeds run up to and including the detecting one.
    pub runs: u64,
    pub rules: Vec<Rule>,
}

/// Runs seeds `start..start + max_seeds` in order with `mutations` until one fails; `None` if
/// none did. Single-threaded and deterministic: the answer is a function of the arguments.
pub fn first_detection(
    mutations: Mutations,
    scheduling: Scheduling,
    start: u64,
    max_seeds: u64,
) -> Option<Detection> {
    (0..max_seeds).find_map(|index| {
        let seed = start.wrapping_add(index);
        let report = run_seed(seed, scheduling, mutations);
        (!report.passed()).then(|| {
            let mut rules: Vec<Rule> = report.verdict.violations.iter().map(|v| v.rule).collect();
            rules.sort();
            rules.dedup();
            Detection {
                seed,
                runs: index + 1,
                rules,
            }
        })
    })
}
