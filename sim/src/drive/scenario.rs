//! Named scenarios: a run written down as data (`scenarios/*.json`), run by one generic
//! runner, with expectations that fail the run when missed (the way FoundationDB's test files
//! name a workload and what must hold).
//!
//! # Schema
//!
//! ```json
//! {
//!   "name": "stop-racing-commit",
//!   "description": "why this scenario exists, what it pins",
//!   "engine": { "cache_size_pages": 16, "checkpoint_depth_max_bytes": 65536,
//!               "version_store_max_versions": 65536, "online_defrag": true,
//!               "background_thread": false },
//!   "initial_records": [[0, 1], [3, 4]],
//!   "threads": [
//!     [ {"BeginSession": {"bind": 0}}, {"BeginTransaction": {"ses": {"Var": 0}}} ],
//!     [ {"StopService": {"instance": "Main", "grbit": 0}} ]
//!   ],
//!   "schedule": { "scheduler": "Random", "schedule_seed": 7 },
//!   "mutant": null,
//!   "expect": { "hold": null, "fail": [], "marks": ["stop_waited_for_calls"] }
//! }
//! ```
//!
//! - `name`, `description`: what the scenario is and why (a regression's story goes here).
//! - `engine`: [`EngineParameters`] (cache size, checkpoint depth, version store bound, online
//!   defrag, background thread).
//! - `initial_records` (default none): `(key, value)` pairs committed in table `t0` during
//!   setup. The harness's setup is always the same: database `db/main.edb` attached with
//!   tables `t0` and `t1`, a foreign instance, an uninitialized one and a terminated one.
//! - `setup_deleted_keys` (default none): keys of `initial_records` the setup then deletes in
//!   a second committed transaction (a shrunk big table, for online defrag to merge).
//! - `threads`: one program per simulated thread, in the [`Call`] JSON form (handles are
//!   symbolic: `{"Var": n}`, `"Nil"`, `"Foreign"`, `{"PeerCreated": {"thread": t, "n": n}}`,
//!   instances `"Main"`, `"Nil"`, `"Uninitialized"`, `"Terminated"`). Each thread is followed by
//!   the harness's wind-down, and the harness terms the instance at the end.
//! - `schedule`: how the interleaving is fixed. `scheduler` is `"Random"` or
//!   `{"Pct": {"depth": d}}`, and `schedule_seed` is shuttle's seed: the same file runs the same
//!   interleaving. Ordering points are pinned by choosing the seed: `jetsim scenario FILE
//!   --find-seed N` searches seeds for one meeting every expectation.
//! - `mutant` (default none): a planted bug (`jetsim mutants` lists them) switched on for the
//!   instance under test.
//! - `expect`:
//!   - `fail` (default empty): rules ([`Rule`], by the names the summary prints, e.g. `"stop-rule"`) that must be violated; a
//!     regression scenario names the rule its planted bug breaks.
//!   - `hold` (default: every rule when `fail` is empty, none otherwise): rules that must not
//!     be violated.
//!   - `marks` (default empty): coverage marks ([`Mark`]) the run must hit: evidence it took
//!     the path it was written for.
//!
//! # Coverage marks
//!
//! Computed from the run's [`History`] and its replay on the model ([`Replay`]); "workload
//! call" excludes the harness's wind-down and final term. Each is named in snake case:
//!
//! | mark | hit when |
//! |---|---|
//! | `stop_succeeded` | a full stop of the instance under test returned success |
//! | `stop_waited_for_calls` | a stop record's GateClosed step drained more than 0 calls |
//! | `call_in_flight_during_stop` | a gated workload call overlapped a successful full stop and succeeded |
//! | `commit_raced_stop` | a `commit_transaction` overlapped a successful full stop and succeeded (admitted before the gate closed) |
//! | `begin_session_raced_stop` | a `begin_session` overlapped a successful full stop |
//! | `defrag_parked_from_running` | a stop record shows defrag running -> parked |
//! | `cleanup_signalled` | a stop record shows version cleanup idle -> signalled |
//! | `checkpoint_flushed_pages` | a stop record's quiesce started with dirty pages and ended with none |
//! | `refused_after_stop` | a gated workload call returned ClientRequestToStopJetService |
//! | `allowlisted_call_after_stop_succeeded` | an allowlisted workload call invoked after a stop returned succeeded |
//! | `stop_failed_state_unchanged` | a stop returned an error and changed neither defrag nor the caches |
//! | `stop_invalid_grbit` | a stop returned InvalidGrbit |
//! | `second_stop_succeeded` | a second full stop of the instance succeeded |
//! | `term_raced_stop` | a workload term of the instance overlapped a full stop of it |
//! | `term_after_stop_succeeded` | a workload term invoked after a successful stop returned succeeded |
//! | `partial_stop_succeeded` | `stop_service_instance2` with BackgroundUserTasks and/or QuiesceCaches succeeded |
//! | `resume_succeeded` | a Resume succeeded |
//! | `resume_refused_after_stop` | a Resume returned ClientRequestToStopJetService |
//! | `end_session_refused_context_set` | `end_session` returned SessionInUse |
//! | `rollback_closed_tables` | a successful rollback closed cursors (in the model's replay) |
//! | `detach_refused_in_use` | `detach_database` returned DatabaseInUse |
//! | `long_call_aborted_by_stop` | `index_record_count` overlapping a stop returned ClientRequestToStopJetService |

use crate::check::Rule;
use crate::drive::campaign::mutations_named;
use crate::drive::simulation::{run_workload, SeedReport};
use crate::history::{Event, History};
use crate::model::ModelState;
use crate::report::transitions::{self, Replay};
use crate::workload::config::{EngineParameters, FaultSettings, RunConfig, Schedule, WindDown};
use crate::workload::{Call, InstanceRef, StopPlan, Workload, WorkloadShape};
use jetsim_engine::JetError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub engine: EngineParameters,
    #[serde(default)]
    pub initial_records: Vec<(u8, u8)>,
    /// Keys of `initial_records` the setup then deletes in a second committed transaction
    /// (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup_deleted_keys: Vec<u8>,
    pub threads: Vec<Vec<Call>>,
    pub schedule: ScenarioSchedule,
    #[serde(default)]
    pub mutant: Option<String>,
    #[serde(default)]
    pub expect: Expectations,
    /// Disk faults and the final crash (a shrunk `explore --faults` or `sweep` failure);
    /// absent for a run on a perfect disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<FaultSettings>,
    /// How the sessions' work ends after the threads (absent: rolled back).
    #[serde(default, skip_serializing_if = "WindDown::is_roll_back")]
    pub wind_down: WindDown,
}

/// How the interleaving is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSchedule {
    pub scheduler: Schedule,
    pub schedule_seed: u64,
}

/// What must be true of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Vec<Rule>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
}

/// A coverage mark: see the module documentation for when each is hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    StopSucceeded,
    StopWaitedForCalls,
    CallInFlightDuringStop,
    CommitRacedStop,
    BeginSessionRacedStop,
    DefragParkedFromRunning,
    CleanupSignalled,
    CheckpointFlushedPages,
    RefusedAfterStop,
    AllowlistedCallAfterStopSucceeded,
    StopFailedStateUnchanged,
    StopInvalidGrbit,
    SecondStopSucceeded,
    TermRacedStop,
    TermAfterStopSucceeded,
    PartialStopSucceeded,
    ResumeSucceeded,
    ResumeRefusedAfterStop,
    EndSessionRefusedContextSet,
    RollbackClosedTables,
    DetachRefusedInUse,
    LongCallAbortedByStop,
}

impl Mark {
    // `tests/scenarios.rs` spells most of this list out again on purpose: there it is the
    // set of marks the scenarios must demand, decided mark by mark.
    pub const ALL: &'static [Mark] = &[
        Mark::StopSucceeded,
        Mark::StopWaitedForCalls,
        Mark::CallInFlightDuringStop,
        Mark::CommitRacedStop,
        Mark::BeginSessionRacedStop,
        Mark::DefragParkedFromRunning,
        Mark::CleanupSignalled,
        Mark::CheckpointFlushedPages,
        Mark::RefusedAfterStop,
        Mark::AllowlistedCallAfterStopSucceeded,
        Mark::StopFailedStateUnchanged,
        Mark::StopInvalidGrbit,
        Mark::SecondStopSucceeded,
        Mark::TermRacedStop,
        Mark::TermAfterStopSucceeded,
        Mark::PartialStopSucceeded,
        Mark::ResumeSucceeded,
        Mark::ResumeRefusedAfterStop,
        Mark::EndSessionRefusedContextSet,
        Mark::RollbackClosedTables,
        Mark::DetachRefusedInUse,
        Mark::LongCallAbortedByStop,
    ];

    /// The mark's name in scenario files.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

impl Scenario {
    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let scenario: Scenario =
            serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?;
        scenario
            .validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(scenario)
    }

    /// Checks what serde cannot: at least one thread, a known mutant, consistent expectations.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads.is_empty() {
            return Err("a scenario needs at least one thread".into());
        }
        if self.threads.len() > 8 {
            return Err("at most 8 threads".into());
        }
        mutations_named(self.mutant.as_deref())?;
        let mut deleted = std::collections::BTreeSet::new();
        for &key in &self.setup_deleted_keys {
            if !self.initial_records.iter().any(|&(k, _)| k == key) || !deleted.insert(key) {
                return Err(format!(
                    "setup_deleted_keys names key {key}, which is not an initial record's key or is named twice"
                ));
            }
        }
        if let Some(hold) = &self.expect.hold {
            if let Some(rule) = hold.iter().find(|r| self.expect.fail.contains(r)) {
                return Err(format!(
                    "rule {rule} is both in expect.hold and expect.fail"
                ));
            }
        }
        Ok(())
    }

    /// The run configuration: the schedule from the file; the workload shape is only
    /// descriptive (the workload is the file's, not generated).
    pub fn run_config(&self) -> RunConfig {
        RunConfig {
            seed: self.schedule.schedule_seed,
            schedule: self.schedule.scheduler,
            engine: self.engine,
            shape: WorkloadShape {
                threads: self.threads.len(),
                calls_per_thread_max: self.threads.iter().map(Vec::len).max().unwrap_or(0),
                stop_plan: StopPlan::Once,
                committed_writes: false,
                reach: crate::workload::Reach::default(),
            },
            initial_records: self.initial_records.clone(),
            setup_deleted_keys: self.setup_deleted_keys.clone(),
            schedule_seed: self.schedule.schedule_seed,
            faults: self.faults,
            read_latency_ops: 0,
            write_latency_ops: 0,
            wind_down: self.wind_down,
        }
    }

    /// The file's text: pretty JSON with each call on one line, ending with a newline.
    pub fn to_json(&self) -> Result<String, String> {
        fn compact<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
            serde_json::to_string(value).map_err(|e| e.to_string())
        }
        let mut out = String::from("{\n");
        let _ = writeln!(out, "  \"name\": {},", compact(&self.name)?);
        let _ = writeln!(out, "  \"description\": {},", compact(&self.description)?);
        let _ = writeln!(out, "  \"engine\": {},", compact(&self.engine)?);
        let _ = writeln!(
            out,
            "  \"initial_records\": {},",
            compact(&self.initial_records)?
        );
        if !self.setup_deleted_keys.is_empty() {
            let _ = writeln!(
                out,
                "  \"setup_deleted_keys\": {},",
                compact(&self.setup_deleted_keys)?
            );
        }
        out.push_str("  \"threads\": [\n");
        for (t, program) in self.threads.iter().enumerate() {
            let comma = if t + 1 < self.threads.len() { "," } else { "" };
            if program.is_empty() {
                let _ = writeln!(out, "    []{comma}");
                continue;
            }
            out.push_str("    [\n");
            for (i, call) in program.iter().enumerate() {
                let comma = if i + 1 < program.len() { "," } else { "" };
                let _ = writeln!(out, "      {}{comma}", compact(call)?);
            }
            let _ = writeln!(out, "    ]{comma}");
        }
        out.push_str("  ],\n");
        let _ = writeln!(out, "  \"schedule\": {},", compact(&self.schedule)?);
        let _ = writeln!(out, "  \"mutant\": {},", compact(&self.mutant)?);
        if let Some(faults) = &self.faults {
            let _ = writeln!(out, "  \"faults\": {},", compact(faults)?);
        }
        if !self.wind_down.is_roll_back() {
            let _ = writeln!(out, "  \"wind_down\": {},", compact(&self.wind_down)?);
        }
        let _ = writeln!(out, "  \"expect\": {}", compact(&self.expect)?);
        out.push_str("}\n");
        Ok(out)
    }

    pub fn workload(&self) -> Workload {
        Workload {
            threads: self.threads.clone(),
        }
    }

    /// The rules that must hold.
    pub fn rules_that_must_hold(&self) -> Vec<Rule> {
        match &self.expect.hold {
            Some(hold) => hold.clone(),
            None if self.expect.fail.is_empty() => Rule::ALL.to_vec(),
            None => Vec::new(),
        }
    }

    /// Runs the scenario and checks its expectations.
    pub fn run(&self) -> Result<ScenarioRun, String> {
        let mutations = mutations_named(self.mutant.as_deref())?;
        let config = self.run_config();
        let report = run_workload(&config, &self.workload(), mutations);
        let replay = report.history.as_ref().map(|history| {
            transitions::replay(history, &ModelState::for_run(&config), self.threads.len())
        });
        let marks = match (&report.history, &replay) {
            (Some(history), Some(replay)) => marks_hit(history, replay, self.threads.len()),
            _ => BTreeSet::new(),
        };
        let run = ScenarioRun {
            scenario: self.clone(),
            report,
            replay,
            marks,
        };
        Ok(run)
    }
}

/// A scenario's run: the report, the replay on the model, the marks hit.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    pub scenario: Scenario,
    pub report: SeedReport,
    pub replay: Option<Replay>,
    pub marks: BTreeSet<Mark>,
}

impl ScenarioRun {
    pub fn violated(&self) -> BTreeSet<Rule> {
        self.report
            .verdict
            .violations
            .iter()
            .map(|v| v.rule)
            .collect()
    }

    /// Every missed expectation, in words; empty when the scenario passed.
    pub fn missed_expectations(&self) -> Vec<String> {
        let mut missed = Vec::new();
        let violated = self.violated();
        for rule in self.scenario.rules_that_must_hold() {
            for v in self
                .report
                .verdict
                .violations
                .iter()
                .filter(|v| v.rule == rule)
            {
                missed.push(format!("rule {rule} must hold, but: {}", v.message));
            }
        }
        for rule in &self.scenario.expect.fail {
            if !violated.contains(rule) {
                missed.push(format!(
                    "rule {rule} must fail{}, but it held",
                    self.scenario
                        .mutant
                        .as_deref()
                        .map(|m| format!(" (mutant {m})"))
                        .unwrap_or_default()
                ));
            }
        }
        for mark in &self.scenario.expect.marks {
            if !self.marks.contains(mark) {
                missed.push(format!(
                    "coverage mark {} was not hit (marks hit: {}); the run did not take the path \
                     this scenario is for: pick another schedule_seed (`jetsim scenario FILE \
                     --find-seed 500`) or change the programs",
                    mark.name(),
                    self.marks_text()
                ));
            }
        }
        missed
    }

    pub fn marks_text(&self) -> String {
        if self.marks.is_empty() {
            return "none".to_owned();
        }
        self.marks
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The snapshot text: a header (scenario, schedule, verdict, marks) and the transitions.
    pub fn render(&self) -> String {
        let s = &self.scenario;
        let mut out = String::new();
        let _ = writeln!(out, "scenario: {}", s.name);
        let schedule = match s.schedule.scheduler {
            Schedule::Random => "random".to_owned(),
            Schedule::Pct { depth } => format!("pct depth {depth}"),
            Schedule::Urw => "urw".to_owned(),
        };
        let _ = writeln!(
            out,
            "schedule: {schedule}, seed {}; mutant: {}",
            s.schedule.schedule_seed,
            s.mutant.as_deref().unwrap_or("none")
        );
        let violated = self.violated();
        if violated.is_empty() {
            let _ = writeln!(out, "verdict: every rule holds");
        } else {
            let names: Vec<&str> = violated.iter().map(|r| r.name()).collect();
            let _ = writeln!(out, "verdict: violated {}", names.join(", "));
        }
        let _ = writeln!(out, "marks: {}", self.marks_text());
        let _ = writeln!(out);
        match &self.replay {
            Some(replay) => out.push_str(&replay.render()),
            None => {
                let _ = writeln!(out, "-- the run did not complete; no history");
            }
        }
        if let Some(history) = self.report.history.as_ref().filter(|h| h.io_faults) {
            out.push_str(&crash_text(history));
        }
        if !self.report.verdict.violations.is_empty() {
            let _ = writeln!(out);
            for v in &self.report.verdict.violations {
                let _ = writeln!(out, "violation: {v}");
            }
        }
        out
    }
}

/// A run with disk faults: where the power was cut, what the disk injected, what recovery
/// found after the crash.
fn crash_text(history: &History) -> String {
    // Shaped like `replay`'s crash lines (`campaign::disk_text`) but worded for the snapshots,
    // which pin these words; the lines both print are one function.
    let mut out = String::from("\n");
    match &history.crash_point {
        Some(point) => {
            let _ = writeln!(
                out,
                "crash: power cut at disk operation {} of {} ({}), met by {}",
                point.op_index,
                history.disk_ops,
                point.operation.as_deref().unwrap_or("between operations"),
                point.met_by
            );
        }
        None => {
            let _ = writeln!(
                out,
                "crash: at the end of the run, after {} disk operations",
                history.disk_ops
            );
        }
    }
    out.push_str(&crate::drive::campaign::faults_and_recovery_work(history));
    match &history.recovered {
        Some(Ok(tables)) => {
            let contents: Vec<String> = tables
                .iter()
                .enumerate()
                .map(|(t, rows)| {
                    let rows: Vec<String> =
                        rows.iter().map(|(k, v)| format!("k{k}=v{v}")).collect();
                    format!("t{t} {{{}}}", rows.join(", "))
                })
                .collect();
            let _ = writeln!(out, "recovered: {}", contents.join(", "));
        }
        Some(Err(why)) => {
            let _ = writeln!(out, "recovery failed: {why}");
        }
        None => {}
    }
    out
}

/// A workload call of the instance under test that is a full stop and succeeded.
fn successful_stops(history: &History) -> Vec<(u64, u64)> {
    crate::check::rules::successful_full_stops(history)
        .map(|e| (e.invoked, e.returned))
        .collect()
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The coverage marks one run hit. `threads` is the number of workload threads. Each step
/// finds one group of marks: the stops' own records, then each workload call's.
pub fn marks_hit(history: &History, replay: &Replay, threads: usize) -> BTreeSet<Mark> {
    let mut marks = BTreeSet::new();
    let stops = successful_stops(history);
    if !stops.is_empty() {
        marks.insert(Mark::StopSucceeded);
    }
    if stops.len() >= 2 {
        marks.insert(Mark::SecondStopSucceeded);
    }
    stop_record_marks(history, &mut marks);
    let first_stop_returned = stops.iter().map(|s| s.1).min();
    for e in history.events.iter().filter(|e| e.thread < threads) {
        race_marks(e, &stops, first_stop_returned, &mut marks);
        call_kind_marks(history, e, first_stop_returned, &mut marks);
    }
    if replay.rollback_closed_tables() {
        marks.insert(Mark::RollbackClosedTables);
    }
    marks
}

/// Marks read off what each stop did after it returned (its record's steps).
fn stop_record_marks(history: &History, marks: &mut BTreeSet<Mark>) {
    for after in &history.after_stops {
        for step in &after.steps {
            if let Some(drained) = step
                .strip_prefix("gate closed, ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u32>().ok())
            {
                if drained > 0 {
                    marks.insert(Mark::StopWaitedForCalls);
                }
            }
            if step == "defrag running -> parked" {
                marks.insert(Mark::DefragParkedFromRunning);
            }
            if step == "version cleanup idle -> signalled" {
                marks.insert(Mark::CleanupSignalled);
            }
            if let Some(rest) = step.strip_prefix("dirty pages ") {
                let counts: Vec<&str> =
                    rest.split(';').next().unwrap_or("").split(" -> ").collect();
                if counts.len() == 2 && counts[0].trim() != "0" && counts[1].trim() == "0" {
                    marks.insert(Mark::CheckpointFlushedPages);
                }
            }
        }
    }
}

/// Marks of a workload call `e` by where it fell against the successful full stops
/// (`stops`, as `(invoked, returned)`): overlapping one, refused, or after the first.
fn race_marks(
    e: &Event,
    stops: &[(u64, u64)],
    first_stop_returned: Option<u64>,
    marks: &mut BTreeSet<Mark>,
) {
    let refused = e
        .outcome
        .is_err_named(JetError::ClientRequestToStopJetService);
    let overlaps_a_stop = stops
        .iter()
        .any(|&stop| stop != (e.invoked, e.returned) && overlaps(stop, (e.invoked, e.returned)));
    let lifecycle = matches!(e.call, Call::StopService { .. } | Call::Term { .. });
    if e.call.is_gated() && e.outcome.is_ok() && overlaps_a_stop {
        marks.insert(Mark::CallInFlightDuringStop);
    }
    if matches!(e.call, Call::CommitTransaction { .. }) && e.outcome.is_ok() && overlaps_a_stop {
        marks.insert(Mark::CommitRacedStop);
    }
    if matches!(e.call, Call::BeginSession { .. }) && overlaps_a_stop {
        marks.insert(Mark::BeginSessionRacedStop);
    }
    if matches!(e.call, Call::IndexRecordCount { .. }) && refused && overlaps_a_stop {
        marks.insert(Mark::LongCallAbortedByStop);
    }
    if e.call.is_gated() && refused {
        marks.insert(Mark::RefusedAfterStop);
    }
    if !lifecycle
        && !e.call.is_gated()
        && e.outcome.is_ok()
        && first_stop_returned.is_some_and(|r| e.invoked > r)
    {
        marks.insert(Mark::AllowlistedCallAfterStopSucceeded);
    }
}

/// Marks of a workload call `e` by its kind and result: stops, resumes, terms, and the
/// refusals of end_session and detach_database.
fn call_kind_marks(
    history: &History,
    e: &Event,
    first_stop_returned: Option<u64>,
    marks: &mut BTreeSet<Mark>,
) {
    match e.call {
        Call::StopService { grbit, .. } if !e.outcome.is_ok() => {
            if history.failed_stop_effects.is_empty() {
                marks.insert(Mark::StopFailedStateUnchanged);
            }
            if e.outcome.is_err_named(JetError::InvalidGrbit) {
                marks.insert(Mark::StopInvalidGrbit);
            }
            if grbit & 0x8000_0000 != 0
                && e.outcome
                    .is_err_named(JetError::ClientRequestToStopJetService)
            {
                marks.insert(Mark::ResumeRefusedAfterStop);
            }
        }
        Call::StopService { grbit, .. } if grbit & 0x8000_0000 != 0 => {
            marks.insert(Mark::ResumeSucceeded);
        }
        Call::StopService { grbit, .. } if grbit & 0x6 != 0 => {
            marks.insert(Mark::PartialStopSucceeded);
        }
        Call::Term {
            instance: InstanceRef::Main,
            ..
        } => {
            let raced = history.events.iter().any(|s| {
                s.call.is_full_stop_of_main()
                    && overlaps((s.invoked, s.returned), (e.invoked, e.returned))
            });
            if raced {
                marks.insert(Mark::TermRacedStop);
            }
            if e.outcome.is_ok() && first_stop_returned.is_some_and(|r| e.invoked > r) {
                marks.insert(Mark::TermAfterStopSucceeded);
            }
        }
        Call::EndSession { .. } if e.outcome.is_err_named(JetError::SessionInUse) => {
            marks.insert(Mark::EndSessionRefusedContextSet);
        }
        Call::DetachDatabase { .. } if e.outcome.is_err_named(JetError::DatabaseInUse) => {
            marks.insert(Mark::DetachRefusedInUse);
        }
        _ => {}
    }
}

/// Searches schedule seeds `start..start + count` for one that meets every expectation;
/// returns the first, with the runs it took.
pub fn find_schedule_seed(scenario: &Scenario, start: u64, count: u64) -> Option<(u64, u64)> {
    (0..count).find_map(|i| {
        let mut candidate = scenario.clone();
        candidate.schedule.schedule_seed = start.wrapping_add(i);
        let run = candidate.run().ok()?;
        run.missed_expectations()
            .is_empty()
            .then_some((candidate.schedule.schedule_seed, i + 1))
    })
}

/// The `scenario` command: run `file`, print its transitions (and write its timeline to
/// `html`), say what it missed; with `find_seed`, instead search that many schedule seeds
/// from the file's for one that meets every expectation.
pub fn run_file(file: &Path, html: Option<&Path>, find_seed: Option<u64>) -> Result<bool, String> {
    let scenario = Scenario::load(file)?;
    if let Some(count) = find_seed {
        let start = scenario.schedule.schedule_seed;
        return match find_schedule_seed(&scenario, start, count) {
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
        crate::report::timeline::write_report_html(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mark_has_a_distinct_snake_case_name() {
        let names: BTreeSet<String> = Mark::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Mark::ALL.len());
        assert!(names.contains("stop_waited_for_calls"));
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    }

    #[test]
    fn a_scenario_parses_and_unknown_fields_are_refused() {
        let text = r#"{
            "name": "x", "description": "y",
            "engine": {"cache_size_pages": 16, "checkpoint_depth_max_bytes": 0,
                       "version_store_max_versions": 65536, "online_defrag": false,
                       "background_thread": false},
            "threads": [[{"StopService": {"instance": "Main", "grbit": 0}}]],
            "schedule": {"scheduler": {"Pct": {"depth": 2}}, "schedule_seed": 3},
            "expect": {"marks": ["stop_succeeded"], "fail": ["stop-rule"]}
        }"#;
        let scenario: Scenario = serde_json::from_str(text).unwrap();
        assert_eq!(scenario.schedule.scheduler, Schedule::Pct { depth: 2 });
        assert_eq!(scenario.expect.marks, vec![Mark::StopSucceeded]);
        assert!(scenario.rules_that_must_hold().is_empty());
        assert!(scenario.validate().is_ok());
        let typo = text.replace("\"marks\"", "\"markz\"");
        assert!(serde_json::from_str::<Scenario>(&typo).is_err());
        // Inside a call, an engine block or a schedule too: a misspelt argument is refused
        // rather than defaulted.
        for (from, to) in [
            ("\"grbit\": 0", "\"grbit\": 0, \"grbits\": 1"),
            (
                "\"online_defrag\"",
                "\"online_defrag_x\": 1, \"online_defrag\"",
            ),
            ("\"depth\": 2", "\"depth\": 2, \"width\": 1"),
        ] {
            let typo = text.replace(from, to);
            assert_ne!(typo, text);
            let error = serde_json::from_str::<Scenario>(&typo).unwrap_err();
            assert!(error.to_string().contains("unknown field"), "{error}");
        }
        let stray_delete = Scenario {
            setup_deleted_keys: vec![250],
            ..scenario.clone()
        };
        assert!(stray_delete.validate().unwrap_err().contains("key 250"));
        let bad_mutant = Scenario {
            mutant: Some("NoSuchBug".into()),
            ..scenario
        };
        assert!(bad_mutant.validate().unwrap_err().contains("NoSuchBug"));
    }
}
