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
//!
//! This file is the command line only: parsing, and a dispatch to each command's handler in
//! `jetsim::drive`.

use clap::{Parser, Subcommand};
use jetsim::drive::campaign::{self, CampaignOptions};
use jetsim::drive::regression::{self, REGRESSIONS_DIR};
use jetsim::drive::scenario;
use jetsim::report::Shard;
use jetsim::workload::config::{FaultMode, Scheduling, WorkloadSize};
use jetsim::workload::shrink::ShrinkLimits;
use std::path::PathBuf;
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
    Explore(ExploreArgs),
    /// Join the --json reports of `explore --shard` runs into one report of the whole range;
    /// fails when shards overlap or a seed is missing.
    #[command(after_help = EXIT_CODES)]
    Merge(MergeArgs),
    /// Crash each seed's run at every one of its disk operations in turn (no I/O errors,
    /// the power cut exactly there), recover, and check that exactly the committed data
    /// survived.
    Sweep(SweepArgs),
    /// Re-run one seed exactly, printing its configuration, workload, history and verdict.
    Replay(ReplayArgs),
    /// Shrink a failing seed's workload (same schedule) and write it as a regression scenario
    /// of at most REGRESSION_CALLS_MAX calls, or say that it could not.
    #[command(after_help = EXIT_CODES)]
    Shrink(ShrinkArgs),
    /// Run one scenario file: print its state transitions and check its expectations.
    Scenario(ScenarioArgs),
    /// List the planted bugs.
    Mutants,
}

// `explore`'s arguments (the variant's doc comment is the command's help).
#[derive(clap::Args)]
struct ExploreArgs {
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
    // `ReplayArgs` repeats the next three on purpose: see the comment there.
    /// Threads per run (2 to 64), replacing each seed's draw (2-6): bigger workloads.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Most random calls per thread after its warm-up (up to 1000), replacing each seed's
    /// draw (4-12).
    #[arg(long, value_name = "M")]
    calls: Option<usize>,
    /// Linearizability states searched per run before the verdict is `search-bound`
    /// (unobservable, counted as a failure); default 2000000 or `JETSIM_SEARCH_BOUND`.
    #[arg(long, value_name = "N", value_parser = seeds_parser())]
    search_bound: Option<u64>,
}

// `merge`'s arguments (the variant's doc comment is the command's help).
#[derive(clap::Args)]
struct MergeArgs {
    /// The shard reports (`explore --shard K/N --json PATH`).
    #[arg(required = true, value_name = "REPORT")]
    reports: Vec<PathBuf>,
    /// Where the merged report goes.
    #[arg(long, value_name = "PATH")]
    json: PathBuf,
    /// Also write the merged runs as JUnit XML.
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
}

// `sweep`'s arguments (the variant's doc comment is the command's help).
#[derive(clap::Args)]
struct SweepArgs {
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
}

// `replay`'s arguments (the variant's doc comment is the command's help).
#[derive(clap::Args)]
struct ReplayArgs {
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
    // These three repeat explore's fields on purpose: the help says what they were for the
    // run being replayed, and a flattened struct would give both commands one help text.
    /// The run's `explore --threads N`.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// The run's `explore --calls M`.
    #[arg(long, value_name = "M")]
    calls: Option<usize>,
    /// Linearizability states searched per run before the verdict is `search-bound`
    /// (unobservable, counted as a failure); default 2000000 or `JETSIM_SEARCH_BOUND`.
    #[arg(long, value_name = "N", value_parser = seeds_parser())]
    search_bound: Option<u64>,
}

// `shrink`'s arguments (the variant's doc comment is the command's help).
#[derive(clap::Args)]
struct ShrinkArgs {
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
}

// `scenario`'s arguments (the variant's doc comment is the command's help).
#[derive(clap::Args)]
struct ScenarioArgs {
    /// The scenario file (schema in scenarios/README.md).
    file: PathBuf,
    /// Also write the run's timeline as one self-contained HTML file.
    #[arg(long, value_name = "PATH")]
    html: Option<PathBuf>,
    /// Instead, search this many schedule seeds (from the file's) for one that meets every
    /// expectation, and print it.
    #[arg(long, value_name = "N")]
    find_seed: Option<u64>,
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

/// `--jobs`, or the machine's cores.
fn jobs_or_cores(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

impl ExploreArgs {
    fn run(self) -> Result<bool, String> {
        if let Some(states_max) = self.search_bound {
            jetsim::check::set_search_states_max(states_max);
        }
        let options = CampaignOptions {
            seeds: self.seeds,
            start: self.start,
            scheduling: self.strategy,
            json: self.json,
            junit: self.junit,
            check_determinism: self.check_determinism,
            mutant: self.mutant,
            jobs: jobs_or_cores(self.jobs),
            progress: true,
            faults: self.faults,
            shard: self.shard,
            command_line: command_line(),
            size: WorkloadSize {
                threads: self.threads,
                calls_per_thread_max: self.calls,
            },
        };
        options.validate()?;
        campaign::explore(&options, self.shrink.then_some(self.out.as_path()))
    }
}

// The same options as explore's, field by field: sweep's arguments are a subset with their
// own defaults and help texts, so they are not one flattened struct.
impl SweepArgs {
    fn run(self) -> Result<bool, String> {
        let options = CampaignOptions {
            seeds: self.seeds,
            start: self.start,
            scheduling: self.strategy,
            mutant: self.mutant,
            jobs: jobs_or_cores(self.jobs),
            progress: true,
            faults: true,
            command_line: command_line(),
            ..CampaignOptions::default()
        };
        options.validate()?;
        jetsim::drive::sweep::sweep(&options)
    }
}

impl ReplayArgs {
    fn run(self) -> Result<bool, String> {
        if let Some(states_max) = self.search_bound {
            jetsim::check::set_search_states_max(states_max);
        }
        campaign::replay(
            self.seed,
            self.strategy,
            self.trace,
            self.mutant.as_deref(),
            self.html.as_deref(),
            fault_mode(self.faults, self.crash_at),
            WorkloadSize {
                threads: self.threads,
                calls_per_thread_max: self.calls,
            },
        )
    }
}

impl ShrinkArgs {
    fn run(self) -> Result<bool, String> {
        regression::shrink_to_regression(
            self.seed,
            self.strategy,
            fault_mode(self.faults, self.crash_at),
            self.mutant.as_deref(),
            &self.out,
            self.tree_runs,
        )
    }
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Explore(args) => args.run(),
        Command::Merge(args) => jetsim::drive::merge::merge_files(
            &args.reports,
            &args.json,
            args.junit.as_deref(),
            command_line(),
        ),
        Command::Sweep(args) => args.run(),
        Command::Replay(args) => args.run(),
        Command::Shrink(args) => args.run(),
        Command::Scenario(args) => {
            scenario::run_file(&args.file, args.html.as_deref(), args.find_seed)
        }
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
