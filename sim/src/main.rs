//! `jetsim`: the simulation campaign's command line.
//!
//! - `explore --seeds N [--start S] [--strategy random|pct|mix] [--json PATH] [--check-determinism]`
//! - `replay SEED [--trace] [--strategy ...] [--html PATH] [--faults | --crash-at OP]`
//! - `sweep --seeds N [--start S] [--mutant NAME]`: crash every run at each disk operation
//! - `shrink SEED [--strategy ...] [--mutant NAME] [--faults | --crash-at OP] [--out DIR]`:
//!   shrink a failing seed to a
//!   regression scenario under `scenarios/regressions/`
//! - `scenario FILE [--html PATH] [--find-seed N]`: run a scenario file, print its transitions
//!
//! Every failure is reported with its seed and the exact command that replays it.

use clap::{Parser, Subcommand};
use jetsim::campaign::{self, CampaignOptions};
use jetsim::config::{FaultMode, Scheduling};
use jetsim::scenario::Scenario;
use jetsim::shrink::{self, ShrinkLimits};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "jetsim",
    about = "Seeded simulation of concurrent Jet calls racing JetStopServiceInstance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a campaign of seeds and print a summary.
    Explore {
        /// How many seeds to run.
        #[arg(long, default_value_t = 1000)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Which shuttle schedulers the seeds draw from.
        #[arg(long, value_enum, default_value_t = Scheduling::Mix)]
        strategy: Scheduling,
        /// Also write every run's result as JSON to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Run every seed twice and compare trace hashes.
        #[arg(long)]
        check_determinism: bool,
        /// Plant a bug (see `jetsim mutants`) to watch the checkers catch it.
        #[arg(long)]
        mutant: Option<String>,
        /// Worker threads (default: the machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Shrink the first failing seed to a regression scenario (see `shrink`).
        #[arg(long)]
        shrink: bool,
        /// Inject seeded disk faults (I/O errors, a power cut) and end every run in a crash
        /// and a recovery that must find exactly the committed data.
        #[arg(long)]
        faults: bool,
    },
    /// Crash each seed's run at every one of its disk operations in turn (no I/O errors,
    /// the power cut exactly there), recover, and check that exactly the committed data
    /// survived.
    Sweep {
        /// How many seeds (workloads) to sweep.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
        #[arg(long, value_enum, default_value_t = Scheduling::Mix)]
        strategy: Scheduling,
        /// Plant a bug (see `jetsim mutants`), e.g. CommitAckBeforeLogSync.
        #[arg(long)]
        mutant: Option<String>,
        /// Worker threads (default: the machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Re-run one seed exactly, printing its configuration and history.
    Replay {
        seed: u64,
        #[arg(long, value_enum, default_value_t = Scheduling::Mix)]
        strategy: Scheduling,
        /// Print every call with its invocation and response steps.
        #[arg(long)]
        trace: bool,
        #[arg(long)]
        mutant: Option<String>,
        /// Also write the run's timeline as one self-contained HTML file.
        #[arg(long)]
        html: Option<PathBuf>,
        /// The run had disk faults (`explore --faults`).
        #[arg(long, conflicts_with = "crash_at")]
        faults: bool,
        /// The run is one point of a crash-point sweep (`sweep`): the power fails at this
        /// mutating disk operation after setup, or `end` (after the final term).
        #[arg(long)]
        crash_at: Option<CrashAt>,
    },
    /// Shrink a failing seed's workload (same schedule) and write it as a regression scenario.
    Shrink {
        seed: u64,
        #[arg(long, value_enum, default_value_t = Scheduling::Mix)]
        strategy: Scheduling,
        #[arg(long)]
        mutant: Option<String>,
        /// Where the scenario file goes.
        #[arg(long, default_value = "scenarios/regressions")]
        out: PathBuf,
        /// Candidate runs spent in proptest's value tree.
        #[arg(long, default_value_t = ShrinkLimits::default().tree_runs_max)]
        tree_runs: u64,
        /// The run had disk faults (`explore --faults`).
        #[arg(long, conflicts_with = "crash_at")]
        faults: bool,
        /// The run is a crash-point sweep's point (`sweep`, `replay --crash-at`).
        #[arg(long)]
        crash_at: Option<CrashAt>,
    },
    /// Run one scenario file: print its state transitions and check its expectations.
    Scenario {
        file: PathBuf,
        /// Also write the run's timeline as one self-contained HTML file.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Instead, search this many schedule seeds (from the file's) for one that meets every
        /// expectation, and print it.
        #[arg(long)]
        find_seed: Option<u64>,
    },
    /// List the planted bugs.
    Mutants,
}

/// `--crash-at N` or `--crash-at end`.
#[derive(Debug, Clone, Copy)]
struct CrashAt(Option<u64>);

/// The fault mode `--faults` / `--crash-at` name.
fn fault_mode(faults: bool, crash_at: Option<CrashAt>) -> FaultMode {
    match (faults, crash_at) {
        (_, Some(CrashAt(op))) => FaultMode::CrashAt(op),
        (true, None) => FaultMode::Seeded,
        (false, None) => FaultMode::Off,
    }
}

impl std::str::FromStr for CrashAt {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "end" {
            return Ok(CrashAt(None));
        }
        text.parse()
            .map(|op| CrashAt(Some(op)))
            .map_err(|_| format!("expected a disk operation index or `end`, got {text:?}"))
    }
}

/// `explore`, and with `--shrink` the first failure shrunk to a regression scenario.
fn explore(options: &CampaignOptions, shrink: bool) -> Result<bool, String> {
    let summary = campaign::run_campaign(options)?;
    campaign::print_summary(options, &summary);
    if let (true, Some(first)) = (shrink, summary.failures.first()) {
        println!();
        shrink_seed(
            first.config.seed,
            options.scheduling,
            options.fault_mode(),
            options.mutant.as_deref(),
            Path::new("scenarios/regressions"),
            ShrinkLimits::default().tree_runs_max,
        )?;
    }
    Ok(summary.seeds_failed == 0 && summary.nondeterministic.is_empty())
}

/// `shrink`: prints the story and writes the scenario. Succeeds when it wrote one.
fn shrink_seed(
    seed: u64,
    strategy: Scheduling,
    faults: FaultMode,
    mutant: Option<&str>,
    out: &Path,
    tree_runs_max: u64,
) -> Result<bool, String> {
    println!(
        "jetsim shrink {seed}: shrinking the failing workload (this runs it a few hundred times)"
    );
    let limits = ShrinkLimits {
        tree_runs_max,
        ..ShrinkLimits::default()
    };
    let shrunk = shrink::shrink_seed(seed, strategy, faults, mutant, limits)?;
    println!(
        "rule {}: {} calls in {} threads -> {} calls after the value tree ({} runs) -> {} calls in {} threads after dropping ({} runs)",
        shrunk.rule,
        shrunk.original.call_count(),
        shrunk.original.threads.len(),
        shrunk.after_tree.call_count(),
        shrunk.tree_runs,
        shrunk.minimal.call_count(),
        shrunk.minimal.threads.len(),
        shrunk.drop_runs
    );
    let path = shrink::write_regression(&shrunk.scenario(), out)?;
    println!("regression scenario written to {}", path.display());
    println!("it runs in `cargo test -p jetsim --test scenarios` from now on; accept its snapshot with `cargo insta review` (or INSTA_UPDATE=always)");
    Ok(true)
}

/// `scenario`: run one file, print its transitions, say what it missed.
fn run_scenario(file: &Path, html: Option<&Path>, find_seed: Option<u64>) -> Result<bool, String> {
    let scenario = Scenario::load(file)?;
    if let Some(count) = find_seed {
        let start = scenario.schedule.schedule_seed;
        return match jetsim::scenario::find_schedule_seed(&scenario, start, count) {
            Some((seed, runs)) => {
                println!("schedule_seed {seed} meets every expectation (found after {runs} runs)");
                Ok(true)
            }
            None => {
                println!(
                    "no schedule seed in {start}..{} meets every expectation",
                    start + count
                );
                Ok(false)
            }
        };
    }
    let run = scenario.run()?;
    print!("{}", run.render());
    if let Some(path) = html {
        jetsim::timeline::write_report_html(
            &format!("jetsim scenario {}", scenario.name),
            vec![
                scenario.description.clone(),
                format!("file: {}", file.display()),
            ],
            &run.report,
            path,
        )?;
        println!("timeline written to {}", path.display());
    }
    let missed = run.missed_expectations();
    if missed.is_empty() {
        println!("\nexpectations: all met");
        Ok(true)
    } else {
        println!("\nexpectations MISSED:");
        for m in &missed {
            println!("  {m}");
        }
        Ok(false)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Explore {
            seeds,
            start,
            strategy,
            json,
            check_determinism,
            mutant,
            jobs,
            shrink,
            faults,
        } => explore(
            &CampaignOptions {
                seeds,
                start,
                scheduling: strategy,
                json,
                check_determinism,
                mutant,
                jobs: jobs
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                progress: true,
                faults,
            },
            shrink,
        ),
        Command::Sweep {
            seeds,
            start,
            strategy,
            mutant,
            jobs,
        } => jetsim::sweep::sweep(&CampaignOptions {
            seeds,
            start,
            scheduling: strategy,
            json: None,
            check_determinism: false,
            mutant,
            jobs: jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            progress: true,
            faults: true,
        }),
        Command::Replay {
            seed,
            strategy,
            trace,
            mutant,
            html,
            faults,
            crash_at,
        } => campaign::replay(
            seed,
            strategy,
            trace,
            mutant.as_deref(),
            html.as_deref(),
            fault_mode(faults, crash_at),
        ),
        Command::Shrink {
            seed,
            strategy,
            mutant,
            out,
            tree_runs,
            faults,
            crash_at,
        } => shrink_seed(
            seed,
            strategy,
            fault_mode(faults, crash_at),
            mutant.as_deref(),
            &out,
            tree_runs,
        ),
        Command::Scenario {
            file,
            html,
            find_seed,
        } => run_scenario(&file, html.as_deref(), find_seed),
        Command::Mutants => {
            for mutant in jetsim_engine::Mutant::ALL {
                println!("{mutant:?}");
            }
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("jetsim: {error}");
            ExitCode::from(2)
        }
    }
}
