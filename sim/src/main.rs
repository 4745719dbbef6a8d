//! `jetsim`: the simulation campaign's command line.
//!
//! - `explore --seeds N [--start S] [--strategy random|pct|mix] [--json PATH] [--check-determinism]`
//! - `replay SEED [--trace] [--strategy ...]`
//!
//! Every failure is reported with its seed and the exact command that replays it.

use clap::{Parser, Subcommand};
use jetsim::campaign::{self, CampaignOptions};
use jetsim::config::Scheduling;
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
    },
    /// List the planted bugs.
    Mutants,
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
        } => campaign::explore(&CampaignOptions {
            seeds,
            start,
            scheduling: strategy,
            json,
            check_determinism,
            mutant,
            jobs: jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            progress: true,
        }),
        Command::Replay {
            seed,
            strategy,
            trace,
            mutant,
        } => campaign::replay(seed, strategy, trace, mutant.as_deref()),
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
