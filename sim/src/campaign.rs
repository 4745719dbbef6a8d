//! The campaign: many seeds on a few OS threads, a progress bar, a summary table, failures
//! reported with the command that replays them; and `replay` of one seed.

use crate::check::Rule;
use crate::config::{FaultMode, Scheduling};
use crate::simulation::{
    replay_command_with, run_seed, run_seed_with, scheduling_name, SeedReport,
};
use jetsim_engine::{Mutant, Mutations};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// What `explore` was asked to do.
#[derive(Debug, Clone)]
pub struct CampaignOptions {
    pub seeds: u64,
    pub start: u64,
    pub scheduling: Scheduling,
    pub json: Option<std::path::PathBuf>,
    pub check_determinism: bool,
    pub mutant: Option<String>,
    pub jobs: usize,
    pub progress: bool,
    /// Disk faults and a crash with recovery in every run.
    pub faults: bool,
}

impl CampaignOptions {
    /// `seeds 0..1000 (mix strategy, mutant X)`, for summaries.
    pub fn heading(&self) -> String {
        format!(
            "seeds {}..{} ({} strategy{})",
            self.start,
            self.start + self.seeds,
            scheduling_name(self.scheduling),
            self.mutant
                .as_ref()
                .map(|m| format!(", mutant {m}"))
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
    pub nondeterministic: Vec<u64>,
    /// Failing seeds, lowest first.
    pub failures: Vec<SeedReport>,
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
pub fn run_campaign(options: &CampaignOptions) -> Result<CampaignSummary, String> {
    let mutations = mutations_named(options.mutant.as_deref())?;
    let results: Mutex<Vec<(u64, SeedReport, bool)>> = Mutex::new(Vec::new());
    let bar = progress_bar(options.progress, options.seeds, "seeds");
    let failed = AtomicU64::new(0);
    let started = std::time::Instant::now();
    run_pool(options.jobs, options.seeds, |index| {
        let seed = options.start.wrapping_add(index);
        let report = run_seed_with(seed, options.scheduling, options.fault_mode(), mutations);
        let panicked = report.history.is_none();
        let deterministic = !options.check_determinism || {
            let again = run_seed_with(seed, options.scheduling, options.fault_mode(), mutations);
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
    let wall_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let mut results = results.into_inner().expect("results lock");
    results.sort_by_key(|(seed, _, _)| *seed);
    let mut summary = CampaignSummary {
        wall_micros,
        ..CampaignSummary::default()
    };
    if let Some(path) = &options.json {
        let runs: Vec<serde_json::Value> = results
            .iter()
            .map(|(seed, report, deterministic)| {
                serde_json::json!({
                    "seed": seed,
                    "passed": report.passed(),
                    "deterministic": deterministic,
                    "trace_hash": format!("{:016x}", report.trace_hash),
                    "calls": report.calls(),
                    "violations": report.verdict.violations,
                    "config": report.config,
                    "disk_ops": report.history.as_ref().map(|h| h.disk_ops),
                    "crash_point": report.history.as_ref().and_then(|h| h.crash_point.clone()),
                    "replay": replay_command_with(*seed, options.scheduling, options.mutant.as_deref(), options.fault_mode()),
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&runs).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    for (seed, report, deterministic) in results {
        summary.seeds_run += 1;
        summary.calls += report.calls() as u64;
        summary.check_micros += report.check_micros;
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
                summary.stops_landed[slot] += 1;
            }
            None => summary.runs_without_stop += 1,
        }
        if let Some(history) = report.history.as_ref().filter(|h| h.io_faults) {
            summary.disk_ops += history.disk_ops;
            summary.recovery.add(history.recovery_work.as_ref());
            match &history.crash_point {
                Some(point) => {
                    *summary
                        .power_cuts_met_by
                        .entry(point.met_by.clone())
                        .or_insert(0) += 1;
                    *summary
                        .power_cuts_by_file
                        .entry(point.file_kind())
                        .or_insert(0) += 1;
                }
                None => summary.crashes_at_end += 1,
            }
        }
        if !deterministic {
            summary.nondeterministic.push(seed);
        }
        if !report.passed() {
            summary.seeds_failed += 1;
            let rules: std::collections::BTreeSet<Rule> =
                report.verdict.violations.iter().map(|v| v.rule).collect();
            for rule in rules {
                *summary.failures_by_rule.entry(rule).or_insert(0) += 1;
            }
            summary.failures.push(report);
        }
    }
    Ok(summary)
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

/// Prints the summary table and the first failures with their replay commands.
pub fn print_summary(options: &CampaignOptions, summary: &CampaignSummary) {
    let seconds = summary.wall_micros as f64 / 1e6;
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
    println!("  calls checked          {:>10}", summary.calls);
    println!("  wall time              {:>9.2}s", seconds);
    println!(
        "  interleavings / s      {:>10.0}",
        per_second(summary.seeds_run, summary.wall_micros)
    );
    println!(
        "  calls / s              {:>10.0}",
        per_second(summary.calls, summary.wall_micros)
    );
    println!(
        "  checker share          {:>9.1}%  (of summed run time)",
        100.0 * summary.check_micros as f64
            / (summary.wall_micros as f64 * options.jobs.max(1) as f64).max(1.0)
    );
    println!(
        "  stop landed            {:>10} before other calls, {} during, {} after; {} runs without a successful stop",
        summary.stops_landed[0], summary.stops_landed[1], summary.stops_landed[2], summary.runs_without_stop
    );
    if options.faults {
        let power_cuts: u64 = summary.power_cuts_met_by.values().sum();
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
    for seed in &summary.nondeterministic {
        println!("\nseed {seed} is NOT deterministic: two runs gave different traces.");
        println!(
            "  reproduce: {}",
            replay_command_with(
                *seed,
                options.scheduling,
                options.mutant.as_deref(),
                options.fault_mode()
            )
        );
    }
    for report in summary.failures.iter().take(5) {
        print_failure(
            &format!("seed {}", report.config.seed),
            &report.verdict.violations,
            &replay_command_with(
                report.config.seed,
                options.scheduling,
                options.mutant.as_deref(),
                options.fault_mode(),
            ),
        );
    }
    if summary.failures.len() > 5 {
        println!(
            "\n... and {} more failing seeds (see --json)",
            summary.failures.len() - 5
        );
    }
}

/// One failure: what failed, every violation, and the command that replays it.
pub fn print_failure(what: &str, violations: &[crate::check::Violation], command: &str) {
    println!("\nFAILED {what}:");
    for violation in violations {
        println!("  {violation}");
    }
    println!("  reproduce: {command}");
}

/// `explore`: run, print, and say whether everything passed.
pub fn explore(options: &CampaignOptions) -> Result<bool, String> {
    let summary = run_campaign(options)?;
    print_summary(options, &summary);
    Ok(summary.seeds_failed == 0 && summary.nondeterministic.is_empty())
}

/// `replay`: one seed, its configuration, its history, its verdict; with `html`, also the
/// run's timeline as one self-contained HTML file.
pub fn replay(
    seed: u64,
    scheduling: Scheduling,
    trace: bool,
    mutant: Option<&str>,
    html: Option<&std::path::Path>,
    faults: FaultMode,
) -> Result<bool, String> {
    let mutations = mutations_named(mutant)?;
    let report = run_seed_with(seed, scheduling, faults, mutations);
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
            ),
        ];
        crate::timeline::write_report_html(
            &format!("jetsim replay {seed}"),
            details,
            &report,
            path,
        )?;
        println!("timeline written to {}", path.display());
    }
    println!(
        "jetsim replay {seed} ({} strategy)",
        scheduling_name(scheduling)
    );
    println!(
        "configuration: {}",
        serde_json::to_string_pretty(&report.config).map_err(|e| e.to_string())?
    );
    println!("workload:");
    for (thread, program) in report.workload.threads.iter().enumerate() {
        println!("  thread {thread}: {} calls", program.len());
        for call in program {
            println!("    {call:?}");
        }
    }
    if let Some(history) = &report.history {
        println!(
            "history: {} calls, trace hash {:016x}",
            history.events.len(),
            report.trace_hash
        );
        if trace {
            let mut events = history.events.clone();
            events.sort_by_key(|e| e.invoked);
            for e in &events {
                println!(
                    "  [{:>4}..{:>4}] t{} {:?} -> {:?}",
                    e.invoked, e.returned, e.thread, e.call, e.outcome
                );
            }
            for after in &history.after_stops {
                println!(
                    "  after the stop at step {}: {}",
                    after.stop_returned,
                    after.steps.join("; ")
                );
            }
        }
        if history.io_faults {
            println!(
                "disk operations after setup: {} (a crash-point sweep of this run tries each: `jetsim sweep --start {seed} --seeds 1`)",
                history.disk_ops
            );
            match &history.crash_point {
                Some(point) => println!(
                    "power cut at disk operation {} ({}), met by {}",
                    point.op_index,
                    point.operation.as_deref().unwrap_or("between operations"),
                    point.met_by
                ),
                None => println!("no power cut during the run: the crash came at its end"),
            }
            println!("disk faults: {} injected", history.injected_faults.len());
            for fault in &history.injected_faults {
                println!("  {fault}");
            }
            if let Some(work) = &history.recovery_work {
                println!("recovery: {work}");
            }
            match &history.recovered {
                Some(Ok(tables)) => println!("recovered after the crash: {tables:?}"),
                Some(Err(why)) => println!("recovery after the crash failed: {why}"),
                None => {}
            }
        }
    }
    if report.passed() {
        println!(
            "verdict: passed ({} model states explored)",
            report.verdict.states_explored
        );
    } else {
        println!("verdict: FAILED");
        for violation in &report.verdict.violations {
            println!("  {violation}");
        }
        println!(
            "reproduce: {}",
            replay_command_with(seed, scheduling, mutant, faults)
        );
    }
    Ok(report.passed())
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
