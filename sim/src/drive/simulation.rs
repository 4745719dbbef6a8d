//! One seed, end to end: derive the configuration, generate the workload, run it under
//! shuttle, check it. What `explore` runs thousands of times and `replay` runs once.

use crate::check::{check_run, RunVerdict};
use crate::check::{Rule, Violation};
use crate::history::History;
use crate::model::ModelState;
use crate::workload::config::{FaultMode, RunConfig, Scheduling};
use crate::workload::Workload;
use crate::world::harness::{self, RunEnd};
use jetsim_engine::Mutations;

/// Everything about one run.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub config: RunConfig,
    pub workload: Workload,
    pub history: Option<History>,
    pub verdict: RunVerdict,
    /// Hash of the recorded history (0 when the run panicked): equal for equal runs.
    pub trace_hash: u64,
    /// Time spent in the checkers, in microseconds of wall time (reporting only: never part
    /// of a run's behaviour).
    pub check_micros: u64,
}

impl SeedReport {
    pub fn passed(&self) -> bool {
        self.verdict.violations.is_empty()
    }
    pub fn calls(&self) -> usize {
        self.history.as_ref().map_or(0, |h| h.events.len())
    }
}

/// Runs `workload` as run `config` describes and checks it.
pub fn run_workload(config: &RunConfig, workload: &Workload, mutations: Mutations) -> SeedReport {
    check_end(config, workload, harness::run(config, workload, mutations))
}

/// Like [`run_workload`], on the calling thread (see [`harness::run_here`]).
pub fn run_workload_here(
    config: &RunConfig,
    workload: &Workload,
    mutations: Mutations,
) -> SeedReport {
    check_end(
        config,
        workload,
        harness::run_here(config, workload, mutations),
    )
}

/// Checks how a run ended.
fn check_end(config: &RunConfig, workload: &Workload, end: RunEnd) -> SeedReport {
    let check_start = std::time::Instant::now();
    let (history, verdict, trace_hash) = match end {
        RunEnd::Completed(history) => {
            let initial = ModelState::for_run(config);
            let verdict = check_run(&history, &initial);
            let hash = history.trace_hash();
            (Some(*history), verdict, hash)
        }
        RunEnd::Panicked(message) => (
            None,
            RunVerdict {
                violations: vec![Violation {
                    rule: Rule::NoPanic,
                    message: format!("the run panicked or deadlocked: {message}"),
                }],
                ..RunVerdict::default()
            },
            0,
        ),
    };
    SeedReport {
        config: config.clone(),
        workload: workload.clone(),
        history,
        verdict,
        trace_hash,
        check_micros: u64::try_from(check_start.elapsed().as_micros()).unwrap_or(u64::MAX),
    }
}

/// Runs and checks seed `seed` on the calling thread.
pub fn run_seed_here(seed: u64, scheduling: Scheduling, mutations: Mutations) -> SeedReport {
    let config = RunConfig::derive(seed, scheduling);
    let workload = config.workload();
    run_workload_here(&config, &workload, mutations)
}

/// Runs and checks seed `seed`.
pub fn run_seed(seed: u64, scheduling: Scheduling, mutations: Mutations) -> SeedReport {
    let config = RunConfig::derive(seed, scheduling);
    let workload = config.workload();
    run_workload(&config, &workload, mutations)
}

/// Runs and checks seed `seed` on the calling thread, with the disk faults `faults` asks for.
pub fn run_seed_with(
    seed: u64,
    scheduling: Scheduling,
    faults: FaultMode,
    mutations: Mutations,
) -> SeedReport {
    let config = RunConfig::derive_with(seed, scheduling, faults);
    let workload = config.workload();
    run_workload_here(&config, &workload, mutations)
}

/// The command that reproduces a seed exactly.
pub fn replay_command(seed: u64, scheduling: Scheduling, mutant: Option<&str>) -> String {
    replay_command_with(seed, scheduling, mutant, FaultMode::Off)
}

/// [`replay_command`] for a run with the disk faults `faults`.
pub fn replay_command_with(
    seed: u64,
    scheduling: Scheduling,
    mutant: Option<&str>,
    faults: FaultMode,
) -> String {
    let mut command = format!("cargo run --release -p jetsim -- replay {seed}");
    match faults {
        FaultMode::Off => {}
        FaultMode::Seeded => command.push_str(" --faults"),
        FaultMode::CrashAt(Some(op)) => command.push_str(&format!(" --crash-at {op}")),
        FaultMode::CrashAt(None) => command.push_str(" --crash-at end"),
    }
    if scheduling != Scheduling::Mix {
        command.push_str(&format!(" --strategy {}", scheduling_name(scheduling)));
    }
    if let Some(mutant) = mutant {
        command.push_str(&format!(" --mutant {mutant}"));
    }
    command
}

pub fn scheduling_name(scheduling: Scheduling) -> &'static str {
    match scheduling {
        Scheduling::Random => "random",
        Scheduling::Pct => "pct",
        Scheduling::Urw => "urw",
        Scheduling::Mix => "mix",
    }
}
