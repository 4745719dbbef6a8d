//! `jetsim`: the simulation campaign's command line.
//!
//! - `explore --seeds N [--start S] [--strategy random|pct|urw|mix] [--json PATH] [--junit PATH]
//!   [--shard K/N] [--check-determinism] [--shrink [--out DIR]]`
//! - `merge A.json B.json ... --json OUT [--junit PATH]`: join shard reports
//! - `replay SEED [--trace] [--strategy ...] [--html PATH] [--faults | --crash-at OP]`
//! - `sweep --seeds N [--start S] [--mutant NAME]`: crash every run at each disk operation
//! - `shrink SEED [--strategy ...] [--mutant NAME] [--faults | --crash-at OP] [--out DIR]`:
//!   shrink a failing seed to a
//!   regression scenario under `scenarios/regressions/`
//! - `scenario FILE [--html PATH] [--find-seed N]`: run a scenario file, print its transitions
//!
//! Every failure is reported with its seed and the exact command that replays it.

use clap::{Parser, Subcommand};
use jetsim::drive::campaign::{self, CampaignOptions};
use jetsim::drive::scenario::Scenario;
use jetsim::report::{Report, Shard};
use jetsim::workload::config::{FaultMode, Scheduling, WorkloadSize};
use jetsim::workload::shrink::{self, ShrinkLimits, REGRESSION_CALLS_MAX};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit codes, for `jetsim --help`.
const EXIT_CODES: &str =
    "Exit codes: 0 every run passed (every expectation met); 1 a run failed a rule, \
a scenario missed an expectation, or shrinking could not reach its goal; 2 bad input or an I/O \
error (also clap's usage errors).";

#[derive(Parser)]
#[command(
    name = "jetsim",
    version,
    about = "Seeded simulation of concurrent Jet calls racing JetStopServiceInstance",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--seeds`: at least 1, so a campaign that runs nothing cannot pass.
fn seeds_parser() -> clap::builder::RangedU64ValueParser<u64> {
    clap::builder::RangedU64ValueParser::<u64>::new().range(1..)
}

/// `--jobs`: at least 1 worker thread.
fn jobs_parser() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

#[derive(Subcommand)]
enum Command {
    /// Run a campaign of seeds and print a summary.
    #[command(after_help = EXIT_CODES)]
    Explore {
        /// How many seeds to run (at least 1): seeds START..START+SEEDS.
        #[arg(long, default_value_t = 1000, value_parser = seeds_parser())]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Which shuttle schedulers the seeds draw from (mix: each seed draws one).
        #[arg(long, value_enum, default_value_t = Scheduling::Mix)]
        strategy: Scheduling,
        /// Write the report (summary and every run; schema in sim/report.schema.json) as JSON
        /// to this file.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
        /// Write every run as a JUnit XML test case (failures carry the replay command).
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Run every seed twice and compare trace hashes.
        #[arg(long)]
        check_determinism: bool,
        /// Plant a bug (see `jetsim mutants`) to watch the checkers catch it.
        #[arg(long, value_name = "NAME")]
        mutant: Option<String>,
        /// Worker threads, at least 1 (default: the machine's cores).
        #[arg(long, value_parser = jobs_parser())]
        jobs: Option<usize>,
        /// Run only shard K of N (1-based, e.g. 2/4): seed START+i belongs to shard i%N+1.
        /// `jetsim merge` joins the shards' --json reports.
        #[arg(long, value_name = "K/N")]
        shard: Option<Shard>,
        /// Shrink the first failing seed to a regression scenario (see `shrink`).
        #[arg(long)]
        shrink: bool,
        /// With --shrink: where the regression scenario goes.
        #[arg(long, value_name = "DIR", default_value = REGRESSIONS_DIR, requires = "shrink")]
        out: PathBuf,
        /// Inject seeded disk faults (I/O errors, a power cut) and end every run in a crash
        /// and a recovery that must find exactly the committed data.
        #[arg(long)]
        faults: bool,
        /// Threads per run (2 to 64), replacing each seed's draw (2-6): bigger workloads.
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// Most random calls per thread after its warm-up (up to 1000), replacing each seed's
        /// draw (4-12).
        #[arg(long, value_name = "M")]
        calls: Option<usize>,
    },
    /// Join the --json reports of `explore --shard` runs into one report of the whole range;
    /// fails when shards overlap or a seed is missing.
    #[command(after_help = EXIT_CODES)]
    Merge {
        /// The shard reports (`explore --shard K/N --json PATH`).
        #[arg(required = true, value_name = "REPORT")]
        reports: Vec<PathBuf>,
        /// Where the merged report goes.
        #[arg(long, value_name = "PATH")]
        json: PathBuf,
        /// Also write the merged runs as JUnit XML.
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
    },
    /// Crash each seed's run at every one of its disk operations in turn (no I/O errors,
    /// the power cut exactly there), recover, and check that exactly the committed data
    /// survived.
    Sweep {
        /// How many seeds (workloads) to sweep, at least 1.
        #[arg(long, default_value_t = 100, value_parser = seeds_parser())]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Which shuttle schedulers the seeds draw from.
        #[arg(long, value_enum, default_value_t = Scheduling::Mix)]
        strategy: Scheduling,
        /// Plant a bug (see `jetsim mutants`), e.g. CommitAckBeforeLogSync.
        #[arg(long, value_name = "NAME")]
        mutant: Option<String>,
        /// Worker threads, at least 1 (default: the machine's cores).
        #[arg(long, value_parser = jobs_parser())]
        jobs: Option<usize>,
    },
    /// Re-run one seed exactly, printing its configuration, workload, history and verdict.
    Replay {
        /// The seed to replay (as a failure or the JSON report names it).
        seed: u64,
        /// The strategy the seed ran under (as in its replay command; default mix).
        #[arg(long, value_enum, default_value_t = Scheduling::Mix)]
        strategy: Scheduling,
        /// Print every call with its invocation and response steps (always shown for a
        /// failing run).
        #[arg(long)]
        trace: bool,
        /// The planted bug the seed ran with (see `jetsim mutants`).
        #[arg(long, value_name = "NAME")]
        mutant: Option<String>,
        /// Also write the run's timeline as one self-contained HTML file.
        #[arg(long, value_name = "PATH")]
        html: Option<PathBuf>,
        /// The run had disk faults (`explore --faults`).
        #[arg(long, conflicts_with = "crash_at")]
        faults: bool,
        /// The run is one point of a crash-point sweep (`sweep`): the power fails at this
        /// mutating disk operation after setup, or `end` (after the final term).
        #[arg(long, value_name = "OP|end")]
        crash_at: Option<CrashAt>,
        /// The run's `explore --threads N`.
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// The run's `explore --calls M`.
        #[arg(long, value_name = "M")]
        calls: Option<usize>,
    },
    /// Shrink a failing seed's workload (same schedule) and write it as a regression scenario
    /// of at most REGRESSION_CALLS_MAX calls, or say that it could not.
    #[command(after_help = EXIT_CODES)]
    Shrink {
        /// The failing seed.
        seed: u64,
        /// The strategy the seed failed under.
        #[arg(long, value_enum, default_value_t = Scheduling::Mix)]
        strategy: Scheduling,
        /// The planted bug the seed failed with (see `jetsim mutants`).
        #[arg(long, value_name = "NAME")]
        mutant: Option<String>,
        /// Where the scenario file goes (scenarios/regressions runs in `cargo test`).
        #[arg(long, value_name = "DIR", default_value = REGRESSIONS_DIR)]
        out: PathBuf,
        /// Candidate runs spent in proptest's value tree.
        #[arg(long, default_value_t = ShrinkLimits::default().tree_runs_max)]
        tree_runs: u64,
        /// The run had disk faults (`explore --faults`).
        #[arg(long, conflicts_with = "crash_at")]
        faults: bool,
        /// The run is a crash-point sweep's point (`sweep`, `replay --crash-at`).
        #[arg(long, value_name = "OP|end")]
        crash_at: Option<CrashAt>,
    },
    /// Run one scenario file: print its state transitions and check its expectations.
    Scenario {
        /// The scenario file (schema in scenarios/README.md).
        file: PathBuf,
        /// Also write the run's timeline as one self-contained HTML file.
        #[arg(long, value_name = "PATH")]
        html: Option<PathBuf>,
        /// Instead, search this many schedule seeds (from the file's) for one that meets every
        /// expectation, and print it.
        #[arg(long, value_name = "N")]
        find_seed: Option<u64>,
    },
    /// List the planted bugs.
    Mutants,
}

/// Where regression scenarios live: `cargo test -p jetsim --test scenarios` runs them.
const REGRESSIONS_DIR: &str = "scenarios/regressions";

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

/// `explore`, and with `--shrink` the first failure shrunk to a regression scenario in `out`.
fn explore(options: &CampaignOptions, shrink: Option<&Path>) -> Result<bool, String> {
    let summary = campaign::run_campaign(options)?;
    campaign::print_summary(options, &summary);
    for (what, path) in [("report", &options.json), ("JUnit file", &options.junit)] {
        if let Some(path) = path {
            println!("{what} written to {}", path.display());
        }
    }
    let mut passed = summary.seeds_failed == 0 && summary.nondeterministic.is_empty();
    if let (Some(out), Some(first)) = (shrink, summary.failures.first()) {
        println!();
        passed &= shrink_seed(
            first.config.seed,
            options.scheduling,
            options.fault_mode(),
            options.mutant.as_deref(),
            out,
            ShrinkLimits::default().tree_runs_max,
        )?;
    }
    Ok(passed)
}

/// `merge`: joins shard reports, prints the merged summary, writes the merged report.
fn merge(reports: &[PathBuf], json: &Path, junit: Option<&Path>) -> Result<bool, String> {
    let loaded = reports
        .iter()
        .map(|path| Report::load(path).map(|r| (path.display().to_string(), r)))
        .collect::<Result<Vec<_>, String>>()?;
    let merged = jetsim::report::merge(&loaded, command_line())?;
    let s = &merged.summary;
    let c = &merged.command;
    println!(
        "jetsim merge: {} reports, seeds {}..{} ({} strategy{})",
        loaded.len(),
        c.start,
        c.start + c.seeds,
        c.strategy,
        c.mutant
            .as_deref()
            .map(|m| format!(", mutant {m}"))
            .unwrap_or_default()
    );
    println!();
    println!("  seeds run              {:>10}", s.seeds_run);
    println!("  seeds failed           {:>10}", s.seeds_failed);
    // In the order `explore` prints them (the report's map is alphabetical).
    let mut by_rule: Vec<(&str, u64)> = jetsim::check::Rule::ALL
        .iter()
        .filter_map(|rule| {
            let name = rule.name();
            s.failures_by_rule.get(name).map(|&count| (name, count))
        })
        .collect();
    for (name, &count) in &s.failures_by_rule {
        if !by_rule.iter().any(|(known, _)| known == name) {
            by_rule.push((name, count));
        }
    }
    for (rule, count) in by_rule {
        println!("    {rule:<20} {count:>10}");
    }
    if let Some(seeds) = &s.nondeterministic_seeds {
        println!("  nondeterministic seeds {:>10}", seeds.len());
    }
    println!("  calls checked          {:>10}", s.calls);
    println!("  wall time (shards)     {:>9.2}s", s.wall_seconds);
    for run in merged.runs.iter().filter(|r| !r.passed).take(5) {
        let violations: Vec<String> = run.violations.iter().map(ToString::to_string).collect();
        println!("\nFAILED seed {}:\n  {}", run.seed, violations.join("\n  "));
        println!("  reproduce: {}", run.replay);
    }
    merged.write_json(json)?;
    println!("report written to {}", json.display());
    if let Some(path) = junit {
        merged.write_junit(path)?;
        println!("JUnit file written to {}", path.display());
    }
    Ok(s.passed)
}

/// The command line as given, for the report (arguments with spaces quoted).
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("{a:?}")
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `out` is the folder `cargo test` runs regressions from.
fn is_regressions_dir(out: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    out == Path::new(REGRESSIONS_DIR)
        || (canonical(out).is_some() && canonical(out) == canonical(Path::new(REGRESSIONS_DIR)))
}

/// `shrink`: prints the story and writes the scenario. Succeeds when it wrote one that the
/// suite accepts as a regression (at most `REGRESSION_CALLS_MAX` calls).
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
    println!("{}", shrunk.story());
    let calls = shrunk.minimal.call_count();
    if calls > REGRESSION_CALLS_MAX {
        let aside = std::env::temp_dir();
        let path = shrink::write_regression(&shrunk.scenario(), &aside)?;
        println!(
            "could not shrink seed {seed} to a regression: {calls} calls remain and a regression \
             may have at most {REGRESSION_CALLS_MAX} (REGRESSION_CALLS_MAX, which \
             regressions_are_small_and_fail_under_their_mutant enforces), so nothing was written \
             to {}. The shrunk scenario is at {} for reading; try another failing seed or a \
             larger --tree-runs.",
            out.display(),
            path.display()
        );
        return Ok(false);
    }
    let path = shrink::write_regression(&shrunk.scenario(), out)?;
    println!(
        "regression scenario written to {} ({})",
        path.display(),
        campaign::plural(calls, "call", "calls")
    );
    if is_regressions_dir(out) {
        println!("it runs in `cargo test -p jetsim --test scenarios` from now on; accept its snapshot with `cargo insta test -p jetsim --test scenarios --review` (or INSTA_UPDATE=always and `git diff snapshots/`)");
    } else {
        println!(
            "it is not part of the test suite there; move it to {REGRESSIONS_DIR}/ to make it one"
        );
    }
    Ok(true)
}

/// `scenario`: run one file, print its transitions, say what it missed.
fn run_scenario(file: &Path, html: Option<&Path>, find_seed: Option<u64>) -> Result<bool, String> {
    let scenario = Scenario::load(file)?;
    if let Some(count) = find_seed {
        let start = scenario.schedule.schedule_seed;
        return match jetsim::drive::scenario::find_schedule_seed(&scenario, start, count) {
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
        jetsim::report::timeline::write_report_html(
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
    let jobs = |jobs: Option<usize>| {
        jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    };
    let result = match cli.command {
        Command::Explore {
            seeds,
            start,
            strategy,
            json,
            junit,
            check_determinism,
            mutant,
            jobs: job_count,
            shard,
            shrink,
            out,
            faults,
            threads,
            calls,
        } => {
            let options = CampaignOptions {
                seeds,
                start,
                scheduling: strategy,
                json,
                junit,
                check_determinism,
                mutant,
                jobs: jobs(job_count),
                progress: true,
                faults,
                shard,
                command_line: command_line(),
                size: WorkloadSize {
                    threads,
                    calls_per_thread_max: calls,
                },
            };
            options
                .validate()
                .and_then(|()| explore(&options, shrink.then_some(out.as_path())))
        }
        Command::Merge {
            reports,
            json,
            junit,
        } => merge(&reports, &json, junit.as_deref()),
        Command::Sweep {
            seeds,
            start,
            strategy,
            mutant,
            jobs: job_count,
        } => {
            let options = CampaignOptions {
                seeds,
                start,
                scheduling: strategy,
                mutant,
                jobs: jobs(job_count),
                progress: true,
                faults: true,
                command_line: command_line(),
                ..CampaignOptions::default()
            };
            options
                .validate()
                .and_then(|()| jetsim::drive::sweep::sweep(&options))
        }
        Command::Replay {
            seed,
            strategy,
            trace,
            mutant,
            html,
            faults,
            crash_at,
            threads,
            calls,
        } => campaign::replay_sized(
            seed,
            strategy,
            trace,
            mutant.as_deref(),
            html.as_deref(),
            fault_mode(faults, crash_at),
            WorkloadSize {
                threads,
                calls_per_thread_max: calls,
            },
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
