//! The campaign: many seeds on a few OS threads, a progress bar, a summary table, failures
//! reported with the command that replays them; and `replay` of one seed.

use crate::check::Rule;
use crate::config::Scheduling;
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
    pub nondeterministic: Vec<u64>,
    /// Failing seeds, lowest first.
    pub failures: Vec<SeedReport>,
}

/// Runs the campaign; returns the summary (for tests) and prints it when `progress` is set.
pub fn run_campaign(options: &CampaignOptions) -> Result<CampaignSummary, String> {
    let mutations = mutations_named(options.mutant.as_deref())?;
    let next = AtomicU64::new(0);
    let results: Mutex<Vec<(u64, SeedReport, bool)>> = Mutex::new(Vec::new());
    let bar = if options.progress {
        let bar = indicatif::ProgressBar::new(options.seeds);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}  {msg}",
            )
            .expect("valid template"),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let failed = AtomicU64::new(0);
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| {
                // Seeds run on a worker OS thread rather than a fresh thread each (50 us a
                // seed); a run that panicked retires its thread, since shuttle may leave
                // per-thread state behind, and a fresh one carries on.
                let mut finished = false;
                while !finished {
                    finished = std::thread::scope(|inner| {
                        inner
                            .spawn(|| loop {
                                let index = next.fetch_add(1, Ordering::SeqCst);
                                if index >= options.seeds {
                                    return true;
                                }
                                let seed = options.start.wrapping_add(index);
                                let report = run_seed_with(
                                    seed,
                                    options.scheduling,
                                    options.faults,
                                    mutations,
                                );
                                let panicked = report.history.is_none();
                                let deterministic = !options.check_determinism || {
                                    let again = run_seed_with(
                                        seed,
                                        options.scheduling,
                                        options.faults,
                                        mutations,
                                    );
                                    again.trace_hash == report.trace_hash
                                        && again.verdict == report.verdict
                                };
                                if !report.passed() || !deterministic {
                                    let count = failed.fetch_add(1, Ordering::SeqCst) + 1;
                                    bar.set_message(format!("{count} failing"));
                                }
                                results.lock().expect("results lock").push((
                                    seed,
                                    report,
                                    deterministic,
                                ));
                                bar.inc(1);
                                if panicked {
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
                    "replay": replay_command_with(*seed, options.scheduling, options.mutant.as_deref(), options.faults),
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

/// Prints the summary table and the first failures with their replay commands.
pub fn print_summary(options: &CampaignOptions, summary: &CampaignSummary) {
    let seconds = summary.wall_micros as f64 / 1e6;
    println!(
        "jetsim explore: seeds {}..{} ({} strategy{})",
        options.start,
        options.start + options.seeds,
        scheduling_name(options.scheduling),
        options
            .mutant
            .as_ref()
            .map(|m| format!(", mutant {m}"))
            .unwrap_or_default()
    );
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
    for seed in &summary.nondeterministic {
        println!("\nseed {seed} is NOT deterministic: two runs gave different traces.");
        println!(
            "  reproduce: {}",
            replay_command_with(
                *seed,
                options.scheduling,
                options.mutant.as_deref(),
                options.faults
            )
        );
    }
    for report in summary.failures.iter().take(5) {
        println!("\nFAILED seed {}:", report.config.seed);
        for violation in &report.verdict.violations {
            println!("  {violation}");
        }
        println!(
            "  reproduce: {}",
            replay_command_with(
                report.config.seed,
                options.scheduling,
                options.mutant.as_deref(),
                options.faults
            )
        );
    }
    if summary.failures.len() > 5 {
        println!(
            "\n... and {} more failing seeds (see --json)",
            summary.failures.len() - 5
        );
    }
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
    faults: bool,
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
            println!("disk faults: {} injected", history.injected_faults.len());
            for fault in &history.injected_faults {
                println!("  {fault}");
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
