//! loom models of the stop protocol, run on the engine's own code (`Jet<LoomRuntime>`).
//!
//! Every model builds its engine inside the `loom::model` closure (a fresh in-memory
//! environment per execution; nothing loom-visible is created outside), does its
//! single-threaded set-up on the model's main thread, spawns the racing threads, joins them and
//! checks the properties. Properties are asserted with a message that starts with one of the
//! [`Property`] messages, so a failure names the property loom found violated.
//!
//! [`StopModel::check`] runs one model with a set of planted bugs ([`Mutations`]) and a
//! preemption bound, and returns either the number of executions loom explored ([`Explored`])
//! or the execution at which a property first failed ([`Failure`]). loom's search order is
//! fixed, so both numbers are deterministic: `tests/loom_stop.rs` pins them, and the mutation
//! catalogue ([`crate::catalogue`]) reports them.
//!
//! Preemption bounds: `None` means the full interleaving space (DPOR-reduced) was explored.
//! Where a bound is used, the reason is written beside the model ([`StopModel::bound`]).
//!
//! Models (loom threads counted with main; "racing" excludes main):
//! - gate: `begin_session` / `begin_transaction` / `commit_transaction` vs a full stop
//!   (unbounded); the same with the stop on main (unbounded); two calls vs stop (bound 3).
//! - allowlist: `rollback` / `end_session` vs stop, both must succeed (unbounded).
//! - term: stop vs term, `begin_transaction` vs term (unbounded); call vs stop vs term and two
//!   stops vs term (bound 3).
//! - two concurrent stops (unbounded); session contexts across threads (bound 4); partial
//!   stop and resume vs a full stop (bound 3); the stop parking the engine's own background
//!   defrag thread (bound 2).
//! - concurrency inside the engine: group commit (bound 3); two readers and a writer under
//!   the shared latch (bound 2); two staged writers splitting one leaf (bound 2); a stop's
//!   flush against the background worker's write-back batch, whose I/O runs with no latch
//!   held (bound 2); record writes that need cache room against the same batch (bound 1).

use crate::LoomRuntime;
use jetsim_engine::env::{Io, ManualClock, MemIo};
use jetsim_engine::{
    stop_grbit, DefragStatus, Environment, InstanceHandle, InstanceOptions, InstanceStatus, Jet,
    JetError, JetResult, Mutations, Phase, SeekMode, SessionHandle, StopStep, SystemParameter,
    TableHandle, TermOutcome,
};
use loom::sync::atomic::{AtomicU64, Ordering};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;

type Engine = Jet<LoomRuntime>;

// ---------------------------------------------------------------------------------------------
// Properties (panic messages start with these).

/// A gated call invoked after `stop_service_instance` returned was admitted.
const P_ADMITTED_AFTER_STOP: &str =
    "GATE: a gated call invoked after the stop returned was admitted";
/// When the stop returned, a gated call was still inside the engine.
const P_IN_FLIGHT_AT_STOP: &str = "GATE: a gated call was in flight when the stop returned";
/// A gated call succeeded, but its effect was not there when the stop returned: it finished
/// after the stop.
const P_FINISHED_AFTER_STOP: &str =
    "GATE: a gated call that succeeded finished after the stop returned";
/// After a full stop returned, dirty pages remained or the checkpoint was behind the log tip.
const P_NOT_QUIESCED: &str =
    "QUIESCE: the checkpoint was not at the log tip when the stop returned";
/// An allowlisted call failed because of a concurrent stop.
const P_ALLOWLIST: &str = "ALLOWLIST: an allowlisted call was refused across a stop";
/// A concurrent stop re-ran the preparation, or a stop record lacks a step.
const P_ONE_STOP_RECORD: &str = "STOP: two concurrent stops did not leave exactly one stop's steps";
/// A thread reset (or lost) a session context it did not own / own.
const P_CONTEXT: &str = "CONTEXT: session context ownership was violated";
/// `term` ended an instance while a call it had to wait for was still inside.
const P_TERM_WAITS: &str = "TERM: term finished while an admitted call was still in flight";
/// After a full stop, resume undid something or defrag was not parked.
const P_RESUME_AFTER_STOP: &str = "PARTIAL: a resume undid a full stop";
/// The engine's own assertion in `Gate::finish_term` (engine/src/instance/gate.rs).
const E_TERM_IN_FLIGHT: &str = "term finished with calls still in flight";
/// A stop that failed validation changed something.
const P_VALIDATION: &str = "VALIDATE: a stop that failed validation changed the instance";
/// When the stop returned, online defrag was not parked.
const P_DEFRAG_NOT_PARKED: &str = "DEFRAG: not parked when the stop returned";
/// A defrag pass freed pages after the stop returned.
const P_DEFRAG_RAN: &str = "DEFRAG: a defrag pass ran after the stop returned";

/// A commit returned success, yet after a crash recovery did not find it.
const P_COMMIT_DURABLE: &str = "DURABLE: an acknowledged commit was lost by a crash";
/// A read-only call under the shared instance latch saw something other than the committed
/// record (or failed).
const P_SHARED_READ: &str = "READ: a reader under the shared latch saw a wrong answer";
/// Two record writes into one leaf, or a write and a defrag step, both returned success and
/// the writes were committed, yet a record (theirs or one already there) is missing or
/// wrong afterwards.
const P_WRITES_KEPT: &str = "WRITES: a committed record write was lost beside other work";
/// A stop flushed every dirty page (or evictions wrote pages back) and term ended the
/// instance cleanly, yet the disk lacks the last committed change (an older image landed
/// over it).
const P_PAGES_KEPT: &str = "PAGES: the disk lost a committed change written back";
/// The engine's own lock-order assertion (`engine/src/runtime/sync.rs`).
const E_LOCK_RANK: &str = "lock rank: taking";
/// The engine's own assertion that I/O beside calls holds no lock
/// (`engine/src/runtime/sync.rs`, `unlatched`).
const E_LOCK_ACROSS_IO: &str = jetsim_engine::runtime::sync::LOCK_ACROSS_IO;
/// The engine's own assertion that no I/O is made holding a latch shared
/// (`engine/src/runtime/sync.rs`, `assert_no_shared_latch_io`).
const E_IO_UNDER_SHARED_LATCH: &str = jetsim_engine::runtime::sync::IO_UNDER_SHARED_LATCH;

/// A property a model asserts, recognised in the panic message of a failing execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    /// A gated call invoked after `stop_service_instance` returned was admitted.
    AdmittedAfterStop,
    /// When the stop returned, a gated call was still inside the engine.
    InFlightAtStop,
    /// A gated call succeeded, but its effect was not there when the stop returned.
    FinishedAfterStop,
    /// After a full stop returned, the checkpoint was behind the log tip.
    NotQuiesced,
    /// An allowlisted call was refused across a stop.
    Allowlist,
    /// Two concurrent stops did not leave exactly one stop's preparation steps.
    OneStopRecord,
    /// Session context ownership was violated.
    Context,
    /// `term` finished while an admitted call was still in flight (the model's check).
    TermWaits,
    /// The engine's own assertion in `Gate::finish_term`: term finished with calls in flight.
    EngineTermInFlight,
    /// A resume undid a full stop.
    ResumeAfterStop,
    /// A stop that failed validation changed the instance.
    Validation,
    /// Online defrag was not parked when the stop returned.
    DefragNotParked,
    /// A defrag pass ran after the stop returned.
    DefragRan,
    /// An acknowledged commit was not durable.
    CommitDurable,
    /// A reader under the shared latch saw a wrong answer.
    SharedRead,
    /// A committed record write was lost beside another.
    WritesKept,
    /// The engine's own assertion: a lock taken against its rank.
    EngineLockRank,
    /// The engine's own assertion: I/O made beside calls while holding a lock.
    EngineLockAcrossIo,
    /// The engine's own assertion: I/O made while holding a latch shared.
    EngineIoUnderSharedLatch,
    /// A committed change the stop's flush wrote back was not on the disk after term.
    PagesKept,
}

impl Property {
    pub const ALL: &'static [Property] = &[
        Property::AdmittedAfterStop,
        Property::InFlightAtStop,
        Property::FinishedAfterStop,
        Property::NotQuiesced,
        Property::Allowlist,
        Property::OneStopRecord,
        Property::Context,
        Property::TermWaits,
        Property::EngineTermInFlight,
        Property::ResumeAfterStop,
        Property::Validation,
        Property::DefragNotParked,
        Property::DefragRan,
        Property::CommitDurable,
        Property::SharedRead,
        Property::WritesKept,
        Property::EngineLockRank,
        Property::EngineLockAcrossIo,
        Property::EngineIoUnderSharedLatch,
        Property::PagesKept,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Property::AdmittedAfterStop => "admitted-after-stop",
            Property::InFlightAtStop => "in-flight-at-stop",
            Property::FinishedAfterStop => "finished-after-stop",
            Property::NotQuiesced => "not-quiesced",
            Property::Allowlist => "allowlist",
            Property::OneStopRecord => "one-stop-record",
            Property::Context => "context-owner",
            Property::TermWaits => "term-waits",
            Property::EngineTermInFlight => "engine-term-assert",
            Property::ResumeAfterStop => "resume-after-stop",
            Property::Validation => "validate-first",
            Property::DefragNotParked => "defrag-parked",
            Property::DefragRan => "defrag-ran",
            Property::CommitDurable => "commit-durable",
            Property::SharedRead => "shared-read",
            Property::WritesKept => "writes-kept",
            Property::EngineLockRank => "engine-lock-rank",
            Property::EngineLockAcrossIo => "engine-lock-across-io",
            Property::EngineIoUnderSharedLatch => "engine-io-under-shared-latch",
            Property::PagesKept => "pages-kept",
        }
    }

    /// The text a violation's panic message contains.
    pub fn message(self) -> &'static str {
        match self {
            Property::AdmittedAfterStop => P_ADMITTED_AFTER_STOP,
            Property::InFlightAtStop => P_IN_FLIGHT_AT_STOP,
            Property::FinishedAfterStop => P_FINISHED_AFTER_STOP,
            Property::NotQuiesced => P_NOT_QUIESCED,
            Property::Allowlist => P_ALLOWLIST,
            Property::OneStopRecord => P_ONE_STOP_RECORD,
            Property::Context => P_CONTEXT,
            Property::TermWaits => P_TERM_WAITS,
            Property::EngineTermInFlight => E_TERM_IN_FLIGHT,
            Property::ResumeAfterStop => P_RESUME_AFTER_STOP,
            Property::Validation => P_VALIDATION,
            Property::DefragNotParked => P_DEFRAG_NOT_PARKED,
            Property::DefragRan => P_DEFRAG_RAN,
            Property::CommitDurable => P_COMMIT_DURABLE,
            Property::SharedRead => P_SHARED_READ,
            Property::WritesKept => P_WRITES_KEPT,
            Property::EngineLockRank => E_LOCK_RANK,
            Property::EngineLockAcrossIo => E_LOCK_ACROSS_IO,
            Property::EngineIoUnderSharedLatch => E_IO_UNDER_SHARED_LATCH,
            Property::PagesKept => P_PAGES_KEPT,
        }
    }

    /// The property a panic message reports, if it is one of the named ones.
    pub fn of_message(message: &str) -> Option<Property> {
        Property::ALL
            .iter()
            .copied()
            .find(|p| message.contains(p.message()))
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// Harness.

/// Whether `JETSIM_LOOM_HEAVY=1` asks for the heavy variants (bounds lifted).
pub fn heavy() -> bool {
    std::env::var("JETSIM_LOOM_HEAVY").is_ok_and(|v| v == "1")
}

/// A loom builder independent of the `LOOM_*` environment variables, so pinned counts cannot
/// be changed from outside.
fn builder(preemption_bound: Option<usize>) -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = preemption_bound;
    builder.max_permutations = None;
    builder.max_duration = None;
    builder.checkpoint_file = None;
    builder.max_branches = 100_000;
    builder.log = false;
    builder.location = false;
    builder
}

/// A model loom explored completely (up to its bound) without a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explored {
    /// Executions loom ran (counted by the harness: `Builder::check` does not report it).
    pub executions: usize,
    /// The model's coverage counters (how often it reached each interleaving class it is
    /// about); empty for models without any. See [`StopModel::coverage_classes`].
    pub coverage: Vec<usize>,
}

/// The first execution of a model that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Executions run up to and including the failing one.
    pub execution: usize,
    /// The property the panic message names; `None` for any other panic (an `expect`, an
    /// unnamed `assert_eq!`, a loom deadlock report).
    pub property: Option<Property>,
    /// The panic message.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.property {
            Some(property) => write!(
                f,
                "{property} at execution {}: {}",
                self.execution, self.message
            ),
            None => write!(f, "execution {}: {}", self.execution, self.message),
        }
    }
}

/// The stack of the thread a model runs on (mapped lazily by the generator loom runs it on).
const MODEL_STACK_BYTES: usize = 1 << 20;

/// What one loom run of a model gave.
pub type Outcome = Result<Explored, Failure>;

/// Runs `model` under loom with `preemption_bound`, on a fresh OS thread (loom keeps
/// per-thread state that a panicking execution may leave behind), and returns the executions
/// explored, or the first failing execution. loom's `Builder::check` panics on a failing
/// execution; the panic is caught here (the panic hook still prints it).
pub fn explore(
    preemption_bound: Option<usize>,
    model: impl Fn() + Sync + Send + 'static,
) -> Outcome {
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executions);
    let model = Arc::new(model);
    let outcome = std::thread::spawn(move || {
        catch_unwind(AssertUnwindSafe(|| {
            builder(preemption_bound).check(move || {
                counter.fetch_add(1, StdOrdering::SeqCst);
                // loom runs its first thread on a 32 KiB generator stack it offers no way to
                // change, which the engine's init and term overflow in release builds: the
                // model runs on a thread of its own with a larger one, the first thread only
                // waiting for it.
                let model = Arc::clone(&model);
                loom::thread::Builder::new()
                    .stack_size(MODEL_STACK_BYTES)
                    .spawn(move || model())
                    .expect("loom spawns the model's thread")
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            })
        }))
    })
    .join()
    .unwrap_or_else(Err);
    let executions = executions.load(StdOrdering::SeqCst);
    match outcome {
        Ok(()) => Ok(Explored {
            executions,
            coverage: Vec::new(),
        }),
        Err(payload) => {
            let message = jetsim_engine::runtime::panic_message(&*payload);
            Err(Failure {
                execution: executions,
                property: Property::of_message(&message),
                message,
            })
        }
    }
}

/// [`explore`], then read the model's coverage counters (shared with the model through
/// `Arc`s of std atomics: outside loom) into the result.
fn explore_covered<C: Send + Sync + 'static>(
    preemption_bound: Option<usize>,
    counters: C,
    read: impl Fn(&C) -> Vec<usize>,
    model: impl Fn(&C) + Sync + Send + 'static,
) -> Outcome {
    let counters = Arc::new(counters);
    let seen = Arc::clone(&counters);
    explore(preemption_bound, move || model(&seen)).map(|explored| Explored {
        coverage: read(&counters),
        ..explored
    })
}

/// [`explore_covered`] for a model that sorts each execution into one of two classes.
fn explore_two_classes(
    preemption_bound: Option<usize>,
    model: impl Fn(&AtomicUsize, &AtomicUsize) + Sync + Send + 'static,
) -> Outcome {
    explore_covered(
        preemption_bound,
        [AtomicUsize::new(0), AtomicUsize::new(0)],
        |counters| {
            counters
                .each_ref()
                .map(|c| c.load(StdOrdering::SeqCst))
                .to_vec()
        },
        move |[first, second]| model(first, second),
    )
}

// ---------------------------------------------------------------------------------------------
// The models, by name.

/// One loom model of the stop protocol. Each runs the engine's own code; see the model
/// functions below for the threads and properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StopModel {
    /// `begin_session` vs a full stop (3 loom threads). Coverage: [refused, admitted and
    /// drained by the stop, admitted and done before the stop].
    GateBeginSession,
    /// `begin_transaction` on a prepared session vs a full stop. Coverage as above.
    GateBeginTransaction,
    /// `commit_transaction` of a transaction that inserted a record vs a full stop. Coverage as
    /// above.
    GateCommit,
    /// `begin_session` vs a full stop made by main (2 loom threads).
    GateMainStops,
    /// Two `begin_transaction`s vs a full stop (4 loom threads).
    GateTwoCalls,
    /// `rollback` vs a full stop: both succeed.
    AllowlistRollback,
    /// `end_session` vs a full stop: both succeed.
    AllowlistEndSession,
    /// A full stop vs term.
    StopVsTerm,
    /// `begin_transaction` vs term: term waits for the call.
    TermWaits,
    /// `begin_transaction` vs a full stop vs term.
    CallVsStopVsTerm,
    /// Two concurrent full stops: the preparation runs once.
    TwoStops,
    /// Two full stops vs term.
    TwoStopsVsTerm,
    /// Session contexts set, reset and ended from two threads.
    SessionContext,
    /// A partial stop and a resume vs a full stop.
    PartialStopResume,
    /// The stop parking online defrag run by the engine's own background thread. Coverage:
    /// [pages freed before the stop, none freed before the stop].
    DefragPark,
    /// Two sessions commit at once (group commit: one writes the log with the instance lock
    /// released, the other waits for it or writes the next flush); after both returned, a
    /// crash and recovery must find both commits. Coverage: [the commits overlapped, they
    /// ran one after the other].
    GroupCommit,
    /// Two readers (seek, retrieve) on one table under the shared instance latch, and a
    /// writer inserting into it under the shared latch too (it stages under the store latch
    /// held shared and installs holding it exclusively). Both readers find the committed
    /// record and not the uncommitted one. Coverage: [the readers were inside the engine at
    /// the same time, they were not].
    SharedReaders,
    /// Two record writes into one full leaf under the shared instance latch: one splits it
    /// (allocating from the header), the other inserts beside it; each plans under the store
    /// latch held shared and installs holding it exclusively only if no page it read
    /// changed. After both commit, every record is there. Coverage: [the writes were inside
    /// the engine at the same time, they were not].
    StagedWriters,
    /// A stop's flush racing the engine's own background worker, whose checkpoint write-back
    /// batch does its I/O with no latch held; after the stop and a clean term the disk holds
    /// the last committed change. Coverage: [a worker's write landed after the stop began,
    /// none did].
    StopFlushVsWriteBack,
    /// Writes that need cache room racing the background worker's write-back batch: eviction
    /// must skip the pages the batch has in flight; after a clean term the disk holds the
    /// last committed change. Coverage: [a worker's write landed after the writes began,
    /// none did].
    EvictionsVsWriteBack,
    /// A record write and a commit racing the engine's own background worker's online
    /// defrag, whose steps are staged under the shared latches and installed under the
    /// store latch held exclusively only if no page they read changed; after both, every
    /// record is there with its last committed value. Coverage: [a defrag step landed
    /// while the write was in progress, none did].
    DefragBesideWriter,
}

impl StopModel {
    pub const ALL: &'static [StopModel] = &[
        StopModel::GateBeginSession,
        StopModel::GateBeginTransaction,
        StopModel::GateCommit,
        StopModel::GateMainStops,
        StopModel::GateTwoCalls,
        StopModel::AllowlistRollback,
        StopModel::AllowlistEndSession,
        StopModel::StopVsTerm,
        StopModel::TermWaits,
        StopModel::CallVsStopVsTerm,
        StopModel::TwoStops,
        StopModel::TwoStopsVsTerm,
        StopModel::SessionContext,
        StopModel::PartialStopResume,
        StopModel::DefragPark,
        StopModel::GroupCommit,
        StopModel::SharedReaders,
        StopModel::StagedWriters,
        StopModel::StopFlushVsWriteBack,
        StopModel::EvictionsVsWriteBack,
        StopModel::DefragBesideWriter,
    ];

    /// The model's name in tables and test names.
    pub fn name(self) -> &'static str {
        match self {
            StopModel::GateBeginSession => "gate_begin_session_vs_stop",
            StopModel::GateBeginTransaction => "gate_begin_transaction_vs_stop",
            StopModel::GateCommit => "gate_commit_vs_stop",
            StopModel::GateMainStops => "gate_main_stops",
            StopModel::GateTwoCalls => "gate_two_calls_vs_stop",
            StopModel::AllowlistRollback => "allowlist_rollback_vs_stop",
            StopModel::AllowlistEndSession => "allowlist_end_session_vs_stop",
            StopModel::StopVsTerm => "stop_vs_term",
            StopModel::TermWaits => "term_waits_for_calls",
            StopModel::CallVsStopVsTerm => "call_vs_stop_vs_term",
            StopModel::TwoStops => "two_concurrent_stops",
            StopModel::TwoStopsVsTerm => "two_stops_vs_term",
            StopModel::SessionContext => "session_context_across_threads",
            StopModel::PartialStopResume => "partial_stop_resume_vs_full_stop",
            StopModel::DefragPark => "stop_parks_background_defrag",
            StopModel::GroupCommit => "group_commit_two_committers",
            StopModel::SharedReaders => "shared_readers_and_a_writer",
            StopModel::StagedWriters => "staged_writers_split_one_leaf",
            StopModel::StopFlushVsWriteBack => "stop_flush_vs_background_write_back",
            StopModel::EvictionsVsWriteBack => "evictions_vs_background_write_back",
            StopModel::DefragBesideWriter => "defrag_step_beside_a_writer",
        }
    }

    /// The preemption bound the model is explored with by default (`None`: unbounded). The
    /// reason for each bound is written beside its constant.
    pub fn bound(self) -> Option<usize> {
        match self {
            StopModel::GateBeginSession
            | StopModel::GateBeginTransaction
            | StopModel::GateCommit
            | StopModel::GateMainStops
            | StopModel::AllowlistRollback
            | StopModel::AllowlistEndSession
            | StopModel::StopVsTerm
            | StopModel::TermWaits
            | StopModel::TwoStops => None,
            StopModel::GroupCommit => GROUP_COMMIT_BOUND,
            StopModel::SharedReaders => SHARED_READERS_BOUND,
            StopModel::StagedWriters => STAGED_WRITERS_BOUND,
            StopModel::StopFlushVsWriteBack => WRITE_BACK_BOUND,
            StopModel::EvictionsVsWriteBack => EVICTIONS_BOUND,
            StopModel::GateTwoCalls => TWO_CALLS_BOUND,
            StopModel::CallVsStopVsTerm => CALL_STOP_TERM_BOUND,
            StopModel::TwoStopsVsTerm => STOPS_TERM_BOUND,
            StopModel::SessionContext => CONTEXT_BOUND,
            StopModel::PartialStopResume => PARTIAL_BOUND,
            StopModel::DefragPark => DEFRAG_BOUND,
            StopModel::DefragBesideWriter => DEFRAG_WRITER_BOUND,
        }
    }

    /// The bound of the heavy variant (`JETSIM_LOOM_HEAVY=1`): the model's own bound lifted
    /// by one or more (executions measured there are noted beside the heavy tests in
    /// `tests/loom_stop.rs`); unbounded models keep `None`.
    pub fn heavy_bound(self) -> Option<usize> {
        match self {
            StopModel::GateTwoCalls => Some(4),
            StopModel::CallVsStopVsTerm => Some(4),
            StopModel::TwoStopsVsTerm => Some(5),
            StopModel::SessionContext => Some(6),
            StopModel::PartialStopResume => Some(4),
            StopModel::DefragPark => Some(4),
            StopModel::GroupCommit => Some(4),
            StopModel::SharedReaders => Some(3),
            StopModel::StagedWriters => Some(3),
            StopModel::StopFlushVsWriteBack => Some(3),
            StopModel::EvictionsVsWriteBack => Some(2),
            StopModel::DefragBesideWriter => Some(3),
            _ => self.bound(),
        }
    }

    /// What the entries of [`Explored::coverage`] count, for the models that count anything.
    pub fn coverage_classes(self) -> &'static [&'static str] {
        match self {
            StopModel::GateBeginSession
            | StopModel::GateBeginTransaction
            | StopModel::GateCommit => &["refused", "drained", "before"],
            StopModel::DefragPark => &["freed before stop", "none freed before stop"],
            StopModel::GroupCommit => &["overlapped", "one after the other"],
            StopModel::SharedReaders => &["readers overlapped", "readers apart"],
            StopModel::StagedWriters => &["writes overlapped", "writes apart"],
            StopModel::StopFlushVsWriteBack => &["batch landed after stop began", "before"],
            StopModel::EvictionsVsWriteBack => &["batch landed after writes began", "before"],
            StopModel::DefragBesideWriter => &["step landed during the write", "none did"],
            _ => &[],
        }
    }

    /// Runs the model under loom with `mutations` planted and `preemption_bound`.
    pub fn check(self, mutations: Mutations, preemption_bound: Option<usize>) -> Outcome {
        let gate = |call: Gated| {
            explore_covered(
                preemption_bound,
                GateCoverage::default(),
                |coverage: &GateCoverage| coverage.counts().to_vec(),
                move |coverage| gate_model_covered(call, mutations, coverage),
            )
        };
        match self {
            StopModel::GateBeginSession => gate(Gated::BeginSession),
            StopModel::GateBeginTransaction => gate(Gated::BeginTransaction),
            StopModel::GateCommit => gate(Gated::Commit),
            StopModel::GateMainStops => {
                explore(preemption_bound, move || gate_main_stops_model(mutations))
            }
            StopModel::GateTwoCalls => {
                explore(preemption_bound, move || two_calls_model(mutations))
            }
            StopModel::AllowlistRollback => explore(preemption_bound, move || {
                allowlist_model(Allowlisted::Rollback, mutations)
            }),
            StopModel::AllowlistEndSession => explore(preemption_bound, move || {
                allowlist_model(Allowlisted::EndSession, mutations)
            }),
            StopModel::StopVsTerm => explore(preemption_bound, move || stop_term_model(mutations)),
            StopModel::TermWaits => explore(preemption_bound, move || term_waits_model(mutations)),
            StopModel::CallVsStopVsTerm => {
                explore(preemption_bound, move || call_stop_term_model(mutations))
            }
            StopModel::TwoStops => explore(preemption_bound, move || two_stops_model(mutations)),
            StopModel::TwoStopsVsTerm => {
                explore(preemption_bound, move || stops_term_model(mutations))
            }
            StopModel::SessionContext => {
                explore(preemption_bound, move || context_model(mutations))
            }
            StopModel::PartialStopResume => {
                explore(preemption_bound, move || partial_model(mutations))
            }
            StopModel::GroupCommit => {
                explore_two_classes(preemption_bound, move |first, second| {
                    group_commit_model(mutations, first, second)
                })
            }
            StopModel::SharedReaders => {
                explore_two_classes(preemption_bound, move |first, second| {
                    shared_readers_model(mutations, first, second)
                })
            }
            StopModel::StagedWriters => {
                explore_two_classes(preemption_bound, move |overlapped, apart| {
                    staged_writers_model(mutations, overlapped, apart)
                })
            }
            StopModel::StopFlushVsWriteBack => {
                explore_two_classes(preemption_bound, move |during, outside| {
                    write_back_model(WriteBackRacer::Stop, mutations, during, outside)
                })
            }
            StopModel::EvictionsVsWriteBack => {
                explore_two_classes(preemption_bound, move |during, outside| {
                    write_back_model(WriteBackRacer::Evictions, mutations, during, outside)
                })
            }
            StopModel::DefragPark => explore_two_classes(preemption_bound, move |some, none| {
                defrag_park_model(mutations, some, none)
            }),
            StopModel::DefragBesideWriter => {
                explore_two_classes(preemption_bound, move |during, apart| {
                    defrag_writer_model(mutations, during, apart)
                })
            }
        }
    }

    /// [`StopModel::check`] at the model's own bound.
    pub fn check_default(self, mutations: Mutations) -> Outcome {
        self.check(mutations, self.bound())
    }
}

impl fmt::Display for StopModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces of the models.

fn options(mutations: Mutations) -> InstanceOptions {
    InstanceOptions {
        mutations,
        ..InstanceOptions::manual()
    }
}

/// An instance of `jet` with its own background thread and `mutations` planted, its
/// `parameters` set before init, initialized.
fn initialized_with_worker(
    jet: &Engine,
    mutations: Mutations,
    parameters: &[(SystemParameter, u64)],
) -> InstanceHandle {
    let options = InstanceOptions {
        mutations,
        ..InstanceOptions::default()
    };
    let instance = jet
        .create_instance_with("model", options)
        .expect("create_instance");
    for &(parameter, value) in parameters {
        jet.set_system_parameter(instance, parameter, value)
            .expect("set_system_parameter");
    }
    jet.init(instance).expect("init");
    instance
}

/// A fresh engine with one initialized instance (no background thread unless asked).
fn engine(options: InstanceOptions) -> (Arc<Engine>, InstanceHandle) {
    let jet = Arc::new(Engine::new(Environment::in_memory()));
    let instance = jet
        .create_instance_with("model", options)
        .expect("create_instance");
    jet.init(instance).expect("init");
    (jet, instance)
}

fn status(jet: &Engine, instance: InstanceHandle) -> InstanceStatus {
    jet.instance_status(instance).expect("live instance")
}

/// The handle names nothing any more.
fn assert_stale(jet: &Engine, instance: InstanceHandle, session: Option<SessionHandle>) {
    assert_eq!(
        jet.instance_status(instance).err(),
        Some(JetError::InvalidParameter)
    );
    assert_eq!(
        jet.begin_session(instance).err(),
        Some(JetError::InvalidParameter)
    );
    assert_eq!(
        jet.stop_service_instance(instance),
        Err(JetError::InvalidParameter)
    );
    assert_eq!(jet.term(instance), Err(JetError::InvalidParameter));
    if let Some(session) = session {
        assert_eq!(
            jet.get_session_info(session).err(),
            Some(JetError::InvalidSesid)
        );
    }
}

/// Ticks of a sequence counter the model's threads share: `stamp()` before a call means "the
/// call was invoked at", after a return "returned at". Only the order matters.
#[derive(Clone)]
struct Sequence(Arc<AtomicU64>);

impl Sequence {
    fn new() -> Self {
        Sequence(Arc::new(AtomicU64::new(0)))
    }
    fn stamp(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

/// The stopping side of a gate model: stop, stamp the return, then look at the instance.
struct StopSide {
    result: JetResult<()>,
    returned_at: u64,
    status: InstanceStatus,
}

fn stop_and_look(jet: &Engine, instance: InstanceHandle, sequence: &Sequence) -> StopSide {
    let result = jet.stop_service_instance(instance);
    let returned_at = sequence.stamp();
    StopSide {
        result,
        returned_at,
        status: status(jet, instance),
    }
}

// ---------------------------------------------------------------------------------------------
// Model 1: a gated call racing a full stop.

/// Which gated call races the stop, on what prepared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gated {
    /// `begin_session` on the instance; its effect is one more session.
    BeginSession,
    /// `begin_transaction` on a prepared session; its effect is an open transaction.
    BeginTransaction,
    /// `commit_transaction` of a transaction that inserted a record (dirty pages before the
    /// stop); its effect is no open transaction.
    Commit,
}

struct Prepared {
    session: Option<SessionHandle>,
}

fn prepare(jet: &Engine, instance: InstanceHandle, call: Gated) -> Prepared {
    match call {
        Gated::BeginSession => Prepared { session: None },
        Gated::BeginTransaction => Prepared {
            session: Some(jet.begin_session(instance).expect("begin_session")),
        },
        Gated::Commit => {
            let session = jet.begin_session(instance).expect("begin_session");
            let db = jet.create_database(session, "db").expect("create_database");
            let table = jet.create_table(session, db, "t").expect("create_table");
            jet.begin_transaction(session).expect("begin_transaction");
            jet.insert(session, table, b"key", b"value")
                .expect("insert");
            Prepared {
                session: Some(session),
            }
        }
    }
}

fn invoke(
    jet: &Engine,
    instance: InstanceHandle,
    prepared: &Prepared,
    call: Gated,
) -> JetResult<()> {
    match call {
        Gated::BeginSession => jet.begin_session(instance).map(drop),
        Gated::BeginTransaction => jet.begin_transaction(prepared.session.expect("prepared")),
        Gated::Commit => jet.commit_transaction(prepared.session.expect("prepared")),
    }
}

/// Whether the call's effect shows in `status`.
fn effect_visible(status: &InstanceStatus, call: Gated) -> bool {
    match call {
        Gated::BeginSession => status.sessions == 1,
        Gated::BeginTransaction => status.open_transactions == 1,
        Gated::Commit => status.open_transactions == 0,
    }
}

/// The gate properties, given when the call was invoked, what it returned, and whether its
/// effect showed in the status read just after the stop returned.
fn check_gate_common(
    invoked_at: u64,
    result: &JetResult<()>,
    effect_at_stop: bool,
    stop: &StopSide,
) {
    assert_eq!(stop.result, Ok(()), "a stop on a running instance succeeds");
    if stop.returned_at < invoked_at {
        assert!(
            *result == Err(JetError::ClientRequestToStopJetService),
            "{P_ADMITTED_AFTER_STOP}: the call returned {result:?}"
        );
    }
    assert!(
        stop.status.gated_calls_in_flight == 0,
        "{P_IN_FLIGHT_AT_STOP}: status {:?}",
        stop.status
    );
    match result {
        Ok(()) => assert!(
            effect_at_stop,
            "{P_FINISHED_AFTER_STOP}: status at stop return {:?}",
            stop.status
        ),
        Err(error) => assert_eq!(*error, JetError::ClientRequestToStopJetService),
    }
    assert_eq!(stop.status.phase, Phase::Stopped);
    assert!(
        stop.status.dirty_pages == 0 && stop.status.checkpoint_depth_bytes == 0,
        "{P_NOT_QUIESCED}: {:?}",
        stop.status
    );
}

fn check_gate(call: Gated, invoked_at: u64, result: JetResult<()>, stop: &StopSide) {
    let effect = effect_visible(&stop.status, call);
    check_gate_common(invoked_at, &result, effect, stop);
}

/// How often a model reached the interleavings it is about (std atomics: outside loom).
#[derive(Default)]
struct GateCoverage {
    /// The call was refused by the closed gate.
    refused: AtomicUsize,
    /// The call was admitted and the stop had to wait for it to leave.
    drained: AtomicUsize,
    /// The call was admitted and left before the stop closed the gate.
    before: AtomicUsize,
}

impl GateCoverage {
    fn counts(&self) -> [usize; 3] {
        [&self.refused, &self.drained, &self.before].map(|c| c.load(StdOrdering::SeqCst))
    }
}

/// 3 loom threads: main (set-up, then blocked in `join`), the caller, the stopper.
fn gate_model_covered(call: Gated, mutations: Mutations, coverage: &GateCoverage) {
    let (jet, instance) = engine(options(mutations));
    let prepared = prepare(&jet, instance, call);
    let sequence = Sequence::new();
    let caller = {
        let (jet, sequence) = (Arc::clone(&jet), sequence.clone());
        loom::thread::spawn(move || {
            let invoked_at = sequence.stamp();
            (invoked_at, invoke(&jet, instance, &prepared, call))
        })
    };
    let stopper = {
        let (jet, sequence) = (Arc::clone(&jet), sequence.clone());
        loom::thread::spawn(move || stop_and_look(&jet, instance, &sequence))
    };
    let (invoked_at, result) = caller.join().expect("caller");
    let stop = stopper.join().expect("stopper");
    check_gate(call, invoked_at, result, &stop);
    let reached = match (result, stop.status.stops_that_waited) {
        (Err(_), _) => &coverage.refused,
        (Ok(()), 0) => &coverage.before,
        (Ok(()), _) => &coverage.drained,
    };
    reached.fetch_add(1, StdOrdering::SeqCst);
    let after = status(&jet, instance);
    assert_eq!(after.gated_calls_in_flight, 0);
    assert_eq!(after.phase, Phase::Stopped);
    // Nothing ran after the stop: the instance is as the stop left it.
    assert!(
        after.dirty_pages == 0 && after.log_tip_lsn == stop.status.log_tip_lsn,
        "{P_NOT_QUIESCED}: written after the stop: {after:?}"
    );
}

/// The same race with the stop on the model's main thread: 2 loom threads. Here main is
/// runnable while the caller runs, so every switch between them is a preemption: slipping the
/// whole stop between the caller's check and its count takes two (into the caller, back out
/// of it).
fn gate_main_stops_model(mutations: Mutations) {
    let (jet, instance) = engine(options(mutations));
    let sequence = Sequence::new();
    let caller = {
        let (jet, sequence) = (Arc::clone(&jet), sequence.clone());
        loom::thread::spawn(move || {
            let invoked_at = sequence.stamp();
            (invoked_at, jet.begin_session(instance).map(drop))
        })
    };
    let stop = stop_and_look(&jet, instance, &sequence);
    let (invoked_at, result) = caller.join().expect("caller");
    check_gate(Gated::BeginSession, invoked_at, result, &stop);
}

// ---------------------------------------------------------------------------------------------
// Model 2: an allowlisted call racing a full stop.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allowlisted {
    /// `rollback` of an open transaction.
    Rollback,
    /// `end_session` of a session with an open transaction.
    EndSession,
}

/// 3 loom threads: main, the caller, the stopper. Both calls must succeed in every order.
fn allowlist_model(call: Allowlisted, mutations: Mutations) {
    let (jet, instance) = engine(options(mutations));
    let session = jet.begin_session(instance).expect("begin_session");
    jet.begin_transaction(session).expect("begin_transaction");
    let caller = {
        let jet = Arc::clone(&jet);
        loom::thread::spawn(move || match call {
            Allowlisted::Rollback => jet.rollback(session),
            Allowlisted::EndSession => jet.end_session(session),
        })
    };
    let stopper = {
        let jet = Arc::clone(&jet);
        loom::thread::spawn(move || jet.stop_service_instance(instance))
    };
    let result = caller.join().expect("caller");
    let stopped = stopper.join().expect("stopper");
    assert!(
        result.is_ok(),
        "{P_ALLOWLIST}: {call:?} returned {result:?}"
    );
    assert_eq!(stopped, Ok(()));
    let after = status(&jet, instance);
    assert_eq!(after.phase, Phase::Stopped);
    assert_eq!(
        after.gated_calls_in_flight + after.ungated_calls_in_flight,
        0
    );
    assert_eq!(after.open_transactions, 0);
    match call {
        Allowlisted::Rollback => {
            let info = jet.get_session_info(session).expect("session lives");
            assert_eq!(info.transaction_level, 0);
            assert_eq!(jet.end_session(session), Ok(()));
        }
        Allowlisted::EndSession => {
            assert_eq!(after.sessions, 0);
            assert_eq!(
                jet.get_session_info(session).err(),
                Some(JetError::InvalidSesid)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Model 3: term racing a stop, and term racing calls.

fn is_stop_refused_by_term(result: &JetResult<()>) -> bool {
    matches!(
        result,
        Err(JetError::TermInProgress | JetError::InvalidParameter)
    )
}

/// 3 loom threads: main, stopper, terminator. Whichever wins, term ends Clean, nothing
/// panics or hangs, and the handle is stale afterwards. A stop that loses to term fails with
/// `TermInProgress` (term running) or `InvalidParameter` (instance gone) and did nothing.
fn stop_term_model(mutations: Mutations) {
    let (jet, instance) = engine(options(mutations));
    let stopper = {
        let jet = Arc::clone(&jet);
        loom::thread::spawn(move || jet.stop_service_instance(instance))
    };
    let terminator = {
        let jet = Arc::clone(&jet);
        loom::thread::spawn(move || jet.term(instance))
    };
    let stopped = stopper.join().expect("stopper");
    let termed = terminator.join().expect("terminator");
    assert_eq!(termed, Ok(TermOutcome::Clean));
    assert!(
        stopped.is_ok() || is_stop_refused_by_term(&stopped),
        "stop racing term returned {stopped:?}"
    );
    assert_stale(&jet, instance, None);
}

/// 3 loom threads: main, a caller opening a transaction, the terminator. Term waits for the
/// call: either the call is refused (term got there first) and term ends Clean, or the call
/// finished first and term sees its transaction and refuses with `TooManyActiveUsers`. Both
/// succeeding means term looked before the call had finished.
fn term_waits_model(mutations: Mutations) {
    let (jet, instance) = engine(options(mutations));
    let session = jet.begin_session(instance).expect("begin_session");
    let caller = {
        let jet = Arc::clone(&jet);
        loom::thread::spawn(move || jet.begin_transaction(session))
    };
    let terminator = {
        let jet = Arc::clone(&jet);
        loom::thread::spawn(move || jet.term(instance))
    };
    let began = caller.join().expect("caller");
    let termed = terminator.join().expect("terminator");
    check_call_and_term(&jet, instance, session, began, termed);
}

/// A `begin_transaction` racing `term`: exactly one of them wins; then clean up and check the
/// handles are stale.
fn check_call_and_term(
    jet: &Engine,
    instance: InstanceHandle,
    session: SessionHandle,
    began: JetResult<()>,
    termed: JetResult<TermOutcome>,
) {
    match began {
        Ok(()) => {
            assert!(
                termed == Err(JetError::TooManyActiveUsers),
                "{P_TERM_WAITS}: begin_transaction succeeded, term returned {termed:?}"
            );
            let alive = status(jet, instance);
            assert!(matches!(alive.phase, Phase::Running | Phase::Stopped));
            assert_eq!(alive.open_transactions, 1);
            assert_eq!(jet.rollback(session), Ok(()));
            assert_eq!(jet.term(instance), Ok(TermOutcome::Clean));
        }
        Err(error) => {
            assert!(
                matches!(
                    error,
                    JetError::ClientRequestToStopJetService
                        | JetError::TermInProgress
                        | JetError::InvalidSesid
                ),
                "begin_transaction racing term returned {error:?}"
            );
            assert_eq!(termed, Ok(TermOutcome::Clean));
        }
    }
    assert_stale(jet, instance, Some(session));
}

/// 4 loom threads: main, a caller opening a transaction, the stopper, the terminator. The
/// gate properties hold for the stop, and term's for the call.
fn call_stop_term_model(mutations: Mutations) {
    let (jet, instance) = engine(options(mutations));
    let session = jet.begin_session(instance).expect("begin_session");
    let sequence = Sequence::new();
    let caller = {
        let (jet, sequence) = (Arc::clone(&jet), sequence.clone());
        loom::thread::spawn(move || {
            let invoked_at = sequence.stamp();
            (invoked_at, jet.begin_transaction(session))
        })
    };
    let stopper = {
        let (jet, sequence) = (Arc::clone(&jet), sequence.clone());
        loom::thread::spawn(move || {
            let result = jet.stop_service_instance(instance);
            let returned_at = sequence.stamp();
            // Term may have removed the instance by now.
            (result, returned_at, jet.instance_status(instance).ok())
        })
    };
    let terminator = {
        let jet = Arc::clone(&jet);
        loom::thread::spawn(move || jet.term(instance))
    };
    let (invoked_at, began) = caller.join().expect("caller");
    let (stopped, stop_returned_at, at_stop) = stopper.join().expect("stopper");
    let termed = terminator.join().expect("terminator");
    assert!(
        stopped.is_ok() || is_stop_refused_by_term(&stopped),
        "stop racing term returned {stopped:?}"
    );
    if stopped.is_ok() {
        if stop_returned_at < invoked_at {
            assert!(began.is_err(), "{P_ADMITTED_AFTER_STOP}: {began:?}");
        }
        if let Some(at_stop) = at_stop {
            assert!(
                at_stop.gated_calls_in_flight == 0,
                "{P_IN_FLIGHT_AT_STOP}: {at_stop:?}"
            );
            // Term may be running or just finished (the handle is removed last).
            assert!(matches!(
                at_stop.phase,
                Phase::Stopped | Phase::Terminating | Phase::Terminated
            ));
            if began.is_ok() {
                assert!(
                    at_stop.open_transactions == 1,
                    "{P_FINISHED_AFTER_STOP}: {at_stop:?}"
                );
            }
        }
    }
    check_call_and_term(&jet, instance, session, began, termed);
}

/// Bound 3: three racing threads; unbounded it runs past 600,000 executions (150 s) without
/// finishing. Bound 3 (22,328 executions) covers every order of the three calls with one
/// preemption inside a call to spare. `heavy_call_vs_stop_vs_term` lifts it to 4.
const CALL_STOP_TERM_BOUND: Option<usize> = Some(3);

// ---------------------------------------------------------------------------------------------
// Model 4: two concurrent full stops.

/// 3 loom threads: main and two stoppers. Both succeed; the preparation ran once: the record
/// left is the one of the stop that parked a *running* defrag and signalled an *idle* cleanup.
fn two_stops_model(mutations: Mutations) {
    let (jet, instance) = engine(options(mutations));
    jet.set_system_parameter(instance, SystemParameter::OnlineDefrag, 1)
        .expect("online defrag on");
    let stoppers: Vec<_> = (0..2)
        .map(|_| {
            let jet = Arc::clone(&jet);
            loom::thread::spawn(move || {
                let result = jet.stop_service_instance(instance);
                (result, status(&jet, instance).phase)
            })
        })
        .collect();
    for stopper in stoppers {
        let (result, phase) = stopper.join().expect("stopper");
        assert_eq!(result, Ok(()));
        assert_eq!(
            phase,
            Phase::Stopped,
            "a stop returned before the instance was stopped"
        );
    }
    let record = jet
        .last_stop_record(instance)
        .expect("live")
        .expect("a stop record");
    assert_eq!(record.grbit, stop_grbit::ALL);
    let shape: Vec<&str> = record
        .steps
        .iter()
        .map(|step| match step {
            StopStep::GateClosed { calls_drained: 0 } => "gate",
            StopStep::DefragParked {
                before: DefragStatus::Running,
                after: DefragStatus::Parked,
            } => "defrag",
            StopStep::VersionCleanupSignalled { before, after } if before != after => "cleanup",
            StopStep::CheckpointQuiesced {
                dirty_pages_after: 0,
                checkpoint_depth_after_bytes: 0,
                ..
            } => "quiesce",
            _ => "unexpected",
        })
        .collect();
    assert!(
        shape == ["gate", "defrag", "cleanup", "quiesce"],
        "{P_ONE_STOP_RECORD}: {record:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Model 5: session contexts across threads.

/// 3 loom threads: main; A sets a context on a shared session and resets it; B tries to reset
/// it, open a transaction on it, and end it. B never owns the context, so its reset always
/// fails; while A's context is set, B's transaction fails with `SessionSharingViolation` and
/// its end with `SessionInUse`; the context A set, A can always reset.
fn context_model(mutations: Mutations) {
    let (jet, instance) = engine(options(mutations));
    let session = jet.begin_session(instance).expect("begin_session");
    let owner = {
        let jet = Arc::clone(&jet);
        loom::thread::spawn(move || {
            let set = jet.set_session_context(session, 7);
            let reset = set.map(|()| jet.reset_session_context(session));
            (set, reset)
        })
    };
    let other = {
        let jet = Arc::clone(&jet);
        loom::thread::spawn(move || {
            let reset = jet.reset_session_context(session);
            let begin = jet.begin_transaction(session);
            let end = jet.end_session(session);
            (reset, begin, end)
        })
    };
    let (set, owner_reset) = owner.join().expect("owner");
    let (other_reset, begin, end) = other.join().expect("other");
    assert!(
        other_reset == Err(JetError::SessionContextNotSetByThisThread),
        "{P_CONTEXT}: a thread that set no context reset it: {other_reset:?}"
    );
    assert!(
        matches!(begin, Ok(()) | Err(JetError::SessionSharingViolation)),
        "begin_transaction returned {begin:?}"
    );
    assert!(
        matches!(end, Ok(()) | Err(JetError::SessionInUse)),
        "end_session returned {end:?}"
    );
    match set {
        Ok(()) => assert!(
            owner_reset == Ok(Ok(())),
            "{P_CONTEXT}: the thread that set the context could not reset it: {owner_reset:?}"
        ),
        // B ended the session before A could set a context.
        Err(error) => assert!(
            error == JetError::InvalidSesid && end == Ok(()),
            "set_session_context returned {error:?} (end_session: {end:?})"
        ),
    }
    if end.is_err() {
        // A's context was set when B tried; A has reset it since.
        assert_eq!(jet.end_session(session), Ok(()));
    }
    let after = status(&jet, instance);
    assert_eq!(after.sessions, 0);
    assert_eq!(after.open_transactions, 0);
}

/// Bound 4: two racing threads making five calls between them; the full space is beyond
/// 120,000 executions (bound 6 alone: 118,384, still growing). Every context race here needs
/// at most two preemptions (a call of one thread between two of the other's).
const CONTEXT_BOUND: Option<usize> = Some(4);

// ---------------------------------------------------------------------------------------------
// Model 6: partial stop and resume racing a full stop.

/// 4 loom threads: main; a `BackgroundUserTasks` partial stop; a `Resume`; a full stop. After
/// the full stop returned, defrag stays parked and a resume is refused.
fn partial_model(mutations: Mutations) {
    let (jet, instance) = engine(options(mutations));
    jet.set_system_parameter(instance, SystemParameter::OnlineDefrag, 1)
        .expect("online defrag on");
    // Set-up, single-threaded: an unknown grbit is refused before anything is done.
    assert_eq!(
        jet.stop_service_instance2(instance, 0x1),
        Err(JetError::InvalidGrbit)
    );
    let untouched = status(&jet, instance);
    assert!(
        untouched.defrag == DefragStatus::Running,
        "{P_VALIDATION}: {untouched:?}"
    );
    let sequence = Sequence::new();
    let partial = {
        let jet = Arc::clone(&jet);
        loom::thread::spawn(move || {
            jet.stop_service_instance2(instance, stop_grbit::BACKGROUND_USER_TASKS)
        })
    };
    let resumer = {
        let (jet, sequence) = (Arc::clone(&jet), sequence.clone());
        loom::thread::spawn(move || {
            let invoked_at = sequence.stamp();
            (
                invoked_at,
                jet.stop_service_instance2(instance, stop_grbit::RESUME),
            )
        })
    };
    let full = {
        let (jet, sequence) = (Arc::clone(&jet), sequence.clone());
        loom::thread::spawn(move || stop_and_look(&jet, instance, &sequence))
    };
    let partial = partial.join().expect("partial");
    let (resume_invoked_at, resumed) = resumer.join().expect("resumer");
    let full = full.join().expect("full");
    assert_eq!(full.result, Ok(()));
    assert_eq!(full.status.phase, Phase::Stopped);
    assert!(
        full.status.defrag == DefragStatus::Parked,
        "{P_RESUME_AFTER_STOP}: defrag not parked at stop return: {:?}",
        full.status
    );
    // A partial stop is a configuration-level call: still admitted after a full stop.
    assert_eq!(partial, Ok(()));
    assert!(
        matches!(
            resumed,
            Ok(()) | Err(JetError::ClientRequestToStopJetService)
        ),
        "resume returned {resumed:?}"
    );
    if full.returned_at < resume_invoked_at {
        assert!(
            resumed == Err(JetError::ClientRequestToStopJetService),
            "{P_RESUME_AFTER_STOP}: resume after the full stop returned {resumed:?}"
        );
    }
    let after = status(&jet, instance);
    assert!(
        after.defrag == DefragStatus::Parked,
        "{P_RESUME_AFTER_STOP}: defrag unparked after the stop: {after:?}"
    );
    assert_eq!(
        jet.stop_service_instance2(instance, stop_grbit::RESUME),
        Err(JetError::ClientRequestToStopJetService)
    );
    assert_eq!(status(&jet, instance).defrag, DefragStatus::Parked);
    assert!(jet.observe(instance).expect("observe").defrag_parked);
}

/// Bound 3: three racing threads (partial stop, resume, full stop), all serialised on the
/// stop lock; bound 2 gives 1,657 executions, bound 3 16,153 (~2 s), the full space is far
/// larger. Three preemptions allow any order of the three calls plus a preemption inside one.
const PARTIAL_BOUND: Option<usize> = Some(3);

// ---------------------------------------------------------------------------------------------
// Model 7: the stop parking online defrag run by the engine's own background thread.

/// Records in the seeded table, and how many of them are deleted again (leaving sparse leaves
/// for defrag to merge).
const SEED_RECORDS: u8 = 24;
const SEED_KEPT: u8 = 2;

/// Leaves a fragmented database "db" in `jet`'s environment, written by a first, manual run
/// of the instance "model" (single-threaded: adds no interleavings). The model's instance then
/// reopens the same log, so its LSNs continue from where this run left the database's pages.
fn seed_fragmented_database(jet: &Engine) {
    let (seed, session) = manual_instance_with_session(jet);
    let db = jet.create_database(session, "db").expect("create_database");
    let table = jet.create_table(session, db, "t").expect("create_table");
    let value = [0x5a_u8; 400];
    jet.begin_transaction(session).expect("begin_transaction");
    for key in 0..SEED_RECORDS {
        jet.insert(session, table, &[key], &value).expect("insert");
    }
    jet.commit_transaction(session).expect("commit");
    jet.begin_transaction(session).expect("begin_transaction");
    for key in SEED_KEPT..SEED_RECORDS {
        jet.seek(session, table, &[key], jetsim_engine::SeekMode::Equal)
            .expect("seek");
        jet.delete(session, table).expect("delete");
    }
    jet.commit_transaction(session).expect("commit");
    jet.close_table(session, table).expect("close_table");
    jet.end_session(session).expect("end_session");
    assert_eq!(jet.term(seed), Ok(TermOutcome::Clean));
}

/// 2 loom threads: main and the instance's own background worker (started by `init`). Main
/// attaches the fragmented database, turns online defrag on (which wakes the worker into a
/// defrag pass) and stops at once, racing the pass; then terms, which joins the worker.
/// After the stop returned: defrag is parked and no pass runs any more (the pages freed do not
/// change until term).
fn defrag_park_model(
    mutations: Mutations,
    freed_before_stop: &AtomicUsize,
    freed_after_stop: &AtomicUsize,
) {
    let jet = Arc::new(Engine::new(Environment::in_memory()));
    seed_fragmented_database(&jet);
    let instance = initialized_with_worker(&jet, mutations, &[]);
    let session = jet.begin_session(instance).expect("begin_session");
    jet.attach_database(session, "db").expect("attach");
    jet.set_system_parameter(instance, SystemParameter::OnlineDefrag, 1)
        .expect("online defrag on");
    assert_eq!(jet.stop_service_instance(instance), Ok(()));
    let at_stop = status(&jet, instance);
    assert_eq!(at_stop.phase, Phase::Stopped);
    assert!(
        at_stop.defrag == DefragStatus::Parked,
        "{P_DEFRAG_NOT_PARKED}: {at_stop:?}"
    );
    let record = jet
        .last_stop_record(instance)
        .expect("live")
        .expect("record");
    assert!(record.steps.contains(&StopStep::DefragParked {
        before: DefragStatus::Running,
        after: DefragStatus::Parked,
    }));
    // Give the worker every chance to run (loom explores all interleavings of these reads
    // with whatever the worker still does).
    let later = status(&jet, instance);
    let end_session = jet.end_session(session);
    let last = status(&jet, instance);
    assert_eq!(end_session, Ok(()));
    assert!(
        later.defrag_pages_freed == at_stop.defrag_pages_freed
            && last.defrag_pages_freed == at_stop.defrag_pages_freed,
        "{P_DEFRAG_RAN}: {at_stop:?} then {last:?}"
    );
    assert_eq!(last.defrag, DefragStatus::Parked);
    // Coverage: did the pass get anything done before the park?
    if at_stop.defrag_pages_freed > 0 {
        freed_before_stop.fetch_add(1, StdOrdering::SeqCst);
    } else {
        freed_after_stop.fetch_add(1, StdOrdering::SeqCst);
    }
    // Term joins the worker thread: loom requires every thread to finish.
    assert_eq!(jet.term(instance), Ok(TermOutcome::Clean));
    assert_stale(&jet, instance, Some(session));
}

/// Bound 2: two loom threads (main and the engine's background worker); every execution
/// replays the seeding. One preemption puts main's write between a defrag step's staging
/// and its install (the step must then plan again); the second lets the step's install
/// land between the write's plan and its install.
const DEFRAG_WRITER_BOUND: Option<usize> = Some(2);

/// 2 loom threads: main and the instance's own background worker. Main attaches the
/// fragmented database and turns online defrag on (which wakes the worker into a pass over
/// the table whose first leaf holds the kept records), then, racing the pass's steps,
/// replaces a kept record and inserts one beside it in one transaction and commits; then
/// terms (joining the worker) and reads every record back through a fresh instance: the
/// kept records with their values, the replaced one with its new value, the inserted one.
fn defrag_writer_model(mutations: Mutations, during: &AtomicUsize, apart: &AtomicUsize) {
    let jet = Arc::new(Engine::new(Environment::in_memory()));
    seed_fragmented_database(&jet);
    let instance = initialized_with_worker(&jet, mutations, &[]);
    let session = jet.begin_session(instance).expect("begin_session");
    jet.attach_database(session, "db").expect("attach");
    let table = open_table_t(&jet, session);
    jet.set_system_parameter(instance, SystemParameter::OnlineDefrag, 1)
        .expect("online defrag on");
    let (replaced, inserted) = (vec![0xa5_u8; 400], vec![0x3c_u8; 40]);
    let freed_before = status(&jet, instance).defrag_pages_freed;
    jet.begin_transaction(session).expect("begin_transaction");
    jet.seek(session, table, &[SEED_KEPT - 1], SeekMode::Equal)
        .expect("seek");
    let replace = jet.replace(session, table, &replaced);
    let insert = jet.insert(session, table, &[SEED_KEPT], &inserted);
    assert_eq!(
        (replace, insert),
        (Ok(()), Ok(())),
        "{P_WRITES_KEPT}: a write failed"
    );
    jet.commit_transaction(session).expect("commit");
    let freed_after = status(&jet, instance).defrag_pages_freed;
    jet.close_table(session, table).expect("close_table");
    jet.end_session(session).expect("end_session");
    assert_eq!(jet.term(instance), Ok(TermOutcome::Clean));
    let (reader, session) = manual_instance_with_session(&jet);
    jet.attach_database(session, "db").expect("attach");
    let table = open_table_t(&jet, session);
    for key in 0..=SEED_KEPT {
        let expected = match key {
            k if k == SEED_KEPT => inserted.clone(),
            k if k == SEED_KEPT - 1 => replaced.clone(),
            _ => vec![0x5a_u8; 400],
        };
        let found = jet
            .seek(session, table, &[key], SeekMode::Equal)
            .and_then(|()| jet.retrieve(session, table));
        assert!(
            found.as_ref().is_ok_and(|(_, found)| *found == expected),
            "{P_WRITES_KEPT}: record {key} is {:?} (defrag freed {freed_before} pages before \
             the write, {freed_after} by its commit)",
            found.map(|(_, value)| value.len())
        );
    }
    assert_eq!(jet.term(reader), Ok(TermOutcome::Clean));
    match freed_after > freed_before {
        true => during.fetch_add(1, StdOrdering::SeqCst),
        false => apart.fetch_add(1, StdOrdering::SeqCst),
    };
}

/// Bound 3: every execution replays the seeding (~5 ms of B+tree work), and the worker's pass
/// interleaves with each of main's calls; bound 3 is 6,303 executions (~12 s; 3,215 when a
/// step took the exclusive instance latch and the stop wrote its pages under it, and bound 2
/// was 324 then). Two preemptions let the stop land before, inside, or after the pass's
/// steps; the third lets the worker pass its park check and then wait, off the latch, for
/// the whole stop: the window of a stop that does not wait for the pass in progress
/// (`DefragParkSkipsPassInProgress`, execution 1,680; none at bound 2).
const DEFRAG_BOUND: Option<usize> = Some(3);

/// 4 loom threads: main, two callers (each opening a transaction on its own session), the
/// stopper. The gate properties hold for each call.
fn two_calls_model(mutations: Mutations) {
    let (jet, instance) = engine(options(mutations));
    let sessions = [
        jet.begin_session(instance).expect("begin_session"),
        jet.begin_session(instance).expect("begin_session"),
    ];
    let sequence = Sequence::new();
    let callers: Vec<_> = sessions
        .iter()
        .map(|&session| {
            let (jet, sequence) = (Arc::clone(&jet), sequence.clone());
            loom::thread::spawn(move || {
                let invoked_at = sequence.stamp();
                (invoked_at, jet.begin_transaction(session))
            })
        })
        .collect();
    let stop = {
        let (jet, sequence) = (Arc::clone(&jet), sequence.clone());
        loom::thread::spawn(move || stop_and_look(&jet, instance, &sequence))
    };
    let calls: Vec<_> = callers
        .into_iter()
        .map(|c| c.join().expect("caller"))
        .collect();
    let stop = stop.join().expect("stopper");
    let admitted = calls.iter().filter(|(_, result)| result.is_ok()).count();
    let effect = stop.status.open_transactions == admitted as u64;
    for (invoked_at, result) in calls {
        check_gate_common(invoked_at, &result, effect, &stop);
    }
}

/// 4 loom threads: main, two stoppers, the terminator.
fn stops_term_model(mutations: Mutations) {
    let (jet, instance) = engine(options(mutations));
    let stoppers: Vec<_> = (0..2)
        .map(|_| {
            let jet = Arc::clone(&jet);
            loom::thread::spawn(move || jet.stop_service_instance(instance))
        })
        .collect();
    let terminator = {
        let jet = Arc::clone(&jet);
        loom::thread::spawn(move || jet.term(instance))
    };
    for stopper in stoppers {
        let stopped = stopper.join().expect("stopper");
        assert!(
            stopped.is_ok() || is_stop_refused_by_term(&stopped),
            "stop racing term returned {stopped:?}"
        );
    }
    assert_eq!(
        terminator.join().expect("terminator"),
        Ok(TermOutcome::Clean)
    );
    assert_stale(&jet, instance, None);
}

/// Bound 3: three racing threads; unbounded it runs past 1,500,000 executions (200 s) without
/// finishing. Bound 3 is 11,204 executions.
const TWO_CALLS_BOUND: Option<usize> = Some(3);

/// Bound 3: three racing threads (5,894 executions); bound 4 is 30,471, bound 5 117,740.
const STOPS_TERM_BOUND: Option<usize> = Some(3);

// ---------------------------------------------------------------------------------------------
// Group commit: two committers and the flush they share.

/// Bound 3: each commit is dozens of loom operations (the gate, the session, the instance
/// lock released and taken again around the log write), and unbounded the model runs for many
/// minutes. Two preemptions already reach the orders that matter (the second commit appending
/// while the first writes, finding the flush in flight and waiting, or writing its own flush
/// after it: 555 executions); three cost 2 s.
const GROUP_COMMIT_BOUND: Option<usize> = Some(3);

/// 3 loom threads: main and two committers, each with a transaction that inserted its own
/// record into its own table. Both commits succeed; then the disk loses every unsynced write
/// (a power cut), a fresh engine recovers it, and both records must be there: a commit may
/// only return once a flush that began after its record was appended has synced.
fn group_commit_model(mutations: Mutations, overlapped: &AtomicUsize, apart: &AtomicUsize) {
    let disk = Arc::new(MemIo::new());
    let environment = || {
        Environment::new(
            Arc::new(ManualClock::new(0)),
            Arc::clone(&disk) as Arc<dyn Io>,
        )
    };
    let jet = Arc::new(Engine::new(environment()));
    let instance = jet
        .create_instance_with("model", options(mutations))
        .expect("create_instance");
    jet.init(instance).expect("init");
    let setup = jet.begin_session(instance).expect("begin_session");
    let db = jet.create_database(setup, "db").expect("create_database");
    // Commits inside the engine right now, and whether two ever were (harness bookkeeping:
    // loom runs one thread at a time, so plain atomics see its order).
    let in_commit = Arc::new(AtomicUsize::new(0));
    let met = Arc::new(AtomicUsize::new(0));
    let committers: Vec<_> = ["t0", "t1"]
        .into_iter()
        .map(|name| {
            jet.create_table(setup, db, name).expect("create_table");
            let session = jet.begin_session(instance).expect("begin_session");
            let db = jet.open_database(session, "db").expect("open_database");
            let table = jet.open_table(session, db, name).expect("open_table");
            jet.begin_transaction(session).expect("begin_transaction");
            jet.insert(session, table, name.as_bytes(), b"committed")
                .expect("insert");
            let (jet, in_commit, met) =
                (Arc::clone(&jet), Arc::clone(&in_commit), Arc::clone(&met));
            loom::thread::spawn(move || {
                if in_commit.fetch_add(1, StdOrdering::SeqCst) > 0 {
                    met.store(1, StdOrdering::SeqCst);
                }
                let committed = jet.commit_transaction(session);
                if in_commit.fetch_sub(1, StdOrdering::SeqCst) > 1 {
                    met.store(1, StdOrdering::SeqCst);
                }
                committed
            })
        })
        .collect();
    for committer in committers {
        assert_eq!(committer.join().expect("committer"), Ok(()));
    }
    match met.load(StdOrdering::SeqCst) {
        0 => apart.fetch_add(1, StdOrdering::SeqCst),
        _ => overlapped.fetch_add(1, StdOrdering::SeqCst),
    };
    disk.crash();
    let (recovered, session) = reopened(environment());
    let db = recovered
        .open_database(session, "db")
        .expect("open_database");
    for name in ["t0", "t1"] {
        let table = recovered.open_table(session, db, name).expect("open_table");
        let found = recovered.seek(session, table, name.as_bytes(), SeekMode::Equal);
        assert!(
            found.is_ok(),
            "{P_COMMIT_DURABLE}: the commit of {name} returned Ok, then recovery found {found:?}"
        );
    }
}

/// A fresh engine on `environment`'s disk: an instance initialized (recovering whatever the
/// log holds) with database "db" attached, and the session that attached it.
fn reopened(environment: Environment) -> (Engine, SessionHandle) {
    let jet = Engine::new(environment);
    let (_, session) = manual_instance_with_session(&jet);
    jet.attach_database(session, "db").expect("attach_database");
    (jet, session)
}

/// An instance "model" with no background thread, initialized (recovering whatever the
/// environment's log holds), and a session on it.
fn manual_instance_with_session(jet: &Engine) -> (InstanceHandle, SessionHandle) {
    let instance = jet
        .create_instance_with("model", InstanceOptions::manual())
        .expect("create_instance");
    jet.init(instance).expect("init");
    let session = jet.begin_session(instance).expect("begin_session");
    (instance, session)
}

/// An engine with database "db" holding table "t", and the session that made them.
fn engine_with_table(mutations: Mutations) -> (Arc<Engine>, InstanceHandle, SessionHandle) {
    let (jet, instance) = engine(options(mutations));
    let setup = jet.begin_session(instance).expect("begin_session");
    let db = jet.create_database(setup, "db").expect("create_database");
    jet.create_table(setup, db, "t").expect("create_table");
    (jet, instance, setup)
}

/// Opens "db" and its table "t" on `session`.
fn open_table_t(jet: &Engine, session: SessionHandle) -> TableHandle {
    let db = jet.open_database(session, "db").expect("open_database");
    jet.open_table(session, db, "t").expect("open_table")
}

// ---------------------------------------------------------------------------------------------
// The instance latch: two readers and a writer share it; the writer installs under the store
// latch.

/// Bound 2: four loom threads (main, two readers, a writer), each call dozens of loom
/// operations (the gate, the latch, the session claim); two preemptions already reach a
/// reader inside its body while the other reader enters, and the writer waiting for both.
const SHARED_READERS_BOUND: Option<usize> = Some(2);

/// 4 loom threads: main, two readers each seeking and retrieving the committed record "a"
/// through its own session and cursor, and a writer inserting "b" in an open transaction on
/// a third session. Each reader must find "a" with its committed value and must not find "b"
/// (uncommitted); the writer's insert must succeed.
fn shared_readers_model(mutations: Mutations, overlapped: &AtomicUsize, apart: &AtomicUsize) {
    let (jet, instance, setup) = engine_with_table(mutations);
    let open = |session| open_table_t(&jet, session);
    let table = open(setup);
    jet.begin_transaction(setup).expect("begin_transaction");
    jet.insert(setup, table, b"a", b"committed")
        .expect("insert");
    jet.commit_transaction(setup).expect("commit");
    let writer_session = jet.begin_session(instance).expect("begin_session");
    let writer_table = open(writer_session);
    jet.begin_transaction(writer_session)
        .expect("begin_transaction");
    // Readers inside the engine right now, and whether two ever were (harness bookkeeping:
    // loom runs one thread at a time, so plain atomics see its order).
    let in_read = Arc::new(AtomicUsize::new(0));
    let met = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let session = jet.begin_session(instance).expect("begin_session");
            let table = open(session);
            let (jet, in_read, met) = (Arc::clone(&jet), Arc::clone(&in_read), Arc::clone(&met));
            loom::thread::spawn(move || {
                if in_read.fetch_add(1, StdOrdering::SeqCst) > 0 {
                    met.store(1, StdOrdering::SeqCst);
                }
                let found = jet
                    .seek(session, table, b"a", SeekMode::Equal)
                    .and_then(|()| jet.retrieve(session, table));
                let uncommitted = jet.seek(session, table, b"b", SeekMode::Equal);
                if in_read.fetch_sub(1, StdOrdering::SeqCst) > 1 {
                    met.store(1, StdOrdering::SeqCst);
                }
                (found, uncommitted)
            })
        })
        .collect();
    let writer = {
        let jet = Arc::clone(&jet);
        loom::thread::spawn(move || jet.insert(writer_session, writer_table, b"b", b"pending"))
    };
    for reader in readers {
        let (found, uncommitted) = reader.join().expect("reader");
        assert!(
            found == Ok((b"a".to_vec(), b"committed".to_vec()))
                && uncommitted == Err(JetError::RecordNotFound),
            "{P_SHARED_READ}: found {found:?}, the uncommitted record {uncommitted:?}"
        );
    }
    assert_eq!(writer.join().expect("writer"), Ok(()));
    match met.load(StdOrdering::SeqCst) {
        0 => apart.fetch_add(1, StdOrdering::SeqCst),
        _ => overlapped.fetch_add(1, StdOrdering::SeqCst),
    };
}

// ---------------------------------------------------------------------------------------------
// Record writes: two writers stage into one leaf under the shared latches.

/// Bound 2: three loom threads (main and two writers), each write dozens of loom operations
/// (the gate, the instance latch, the claim, the store latch twice); two preemptions reach
/// one write's plan between the other's plan and install, in both orders.
const STAGED_WRITERS_BOUND: Option<usize> = Some(2);

/// Bytes of each big value: three fill a leaf, a fourth splits it.
const BIG_VALUE_BYTES: usize = 500;

/// 3 loom threads: main, which fills a table's only leaf with three committed records of
/// [`BIG_VALUE_BYTES`], and two writers in transactions of their own sessions: one inserts a
/// fourth big record (the root leaf splits: new pages from the header, a new root), the
/// other a small one into the same leaf. Both must succeed; after main commits both, a
/// fresh session must find all five records with their values. A write installed over a
/// plan whose leaf or header changed meanwhile would lose a record or the split.
fn staged_writers_model(mutations: Mutations, overlapped: &AtomicUsize, apart: &AtomicUsize) {
    let (jet, instance, setup) = engine_with_table(mutations);
    let open = |session| open_table_t(&jet, session);
    let table = open(setup);
    let big = |tag: u8| vec![tag; BIG_VALUE_BYTES];
    let mut expected: Vec<(Vec<u8>, Vec<u8>)> = [b"c", b"d", b"e"]
        .iter()
        .map(|key| (key.to_vec(), big(key[0])))
        .collect();
    jet.begin_transaction(setup).expect("begin_transaction");
    for (key, value) in &expected {
        jet.insert(setup, table, key, value).expect("insert");
    }
    jet.commit_transaction(setup).expect("commit");
    let writes = [
        (b"a".to_vec(), big(b'a')),
        (b"b".to_vec(), b"small".to_vec()),
    ];
    // Writes inside the engine right now, and whether two ever were (harness bookkeeping:
    // loom runs one thread at a time, so plain atomics see its order).
    let in_write = Arc::new(AtomicUsize::new(0));
    let met = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = writes
        .iter()
        .cloned()
        .map(|(key, value)| {
            let session = jet.begin_session(instance).expect("begin_session");
            let table = open(session);
            jet.begin_transaction(session).expect("begin_transaction");
            let (jet, in_write, met) = (Arc::clone(&jet), Arc::clone(&in_write), Arc::clone(&met));
            let thread = loom::thread::spawn(move || {
                if in_write.fetch_add(1, StdOrdering::SeqCst) > 0 {
                    met.store(1, StdOrdering::SeqCst);
                }
                let inserted = jet.insert(session, table, &key, &value);
                if in_write.fetch_sub(1, StdOrdering::SeqCst) > 1 {
                    met.store(1, StdOrdering::SeqCst);
                }
                inserted
            });
            (session, thread)
        })
        .collect();
    for (session, thread) in writers {
        let inserted = thread.join().expect("writer");
        assert_eq!(inserted, Ok(()), "{P_WRITES_KEPT}: an insert failed");
        jet.commit_transaction(session).expect("commit");
    }
    expected.extend(writes);
    let reader = jet.begin_session(instance).expect("begin_session");
    let reader_table = open(reader);
    for (key, value) in &expected {
        let found = jet
            .seek(reader, reader_table, key, SeekMode::Equal)
            .and_then(|()| jet.retrieve(reader, reader_table));
        assert!(
            found.as_ref().is_ok_and(|(_, found)| found == value),
            "{P_WRITES_KEPT}: record {:?} is {:?}",
            String::from_utf8_lossy(key),
            found.map(|(_, value)| value.len())
        );
    }
    match met.load(StdOrdering::SeqCst) {
        0 => apart.fetch_add(1, StdOrdering::SeqCst),
        _ => overlapped.fetch_add(1, StdOrdering::SeqCst),
    };
}

// ---------------------------------------------------------------------------------------------
// Background write-back: the stop's flush against a batch whose I/O is out.

/// Bound 2: two loom threads (main and the engine's background worker), main's calls dozens
/// of loom operations each; one preemption puts the worker's round between a commit and the
/// next change, and its batch's write yields (the model's disk) so main may change the page
/// again and stop before the batch lands. Bound 2 is 2,374 executions (~1 s; 550 when the
/// worker's batches and the stop's flush took the exclusive instance latch, and bound 3 was
/// 7,837 then: `heavy_stop_flush_vs_background_write_back`).
const WRITE_BACK_BOUND: Option<usize> = Some(2);

/// Bound 1: the eviction variant's main makes eight more record writes in the race, each
/// dozens of loom operations; one preemption puts the worker's round between the two
/// changes, and its batch's write yields, so main changes the page again and evicts while
/// the batch is out. Bound 1 is 128 executions; bound 2 is 8,030
/// (`heavy_evictions_vs_background_write_back`, ~25 s).
const EVICTIONS_BOUND: Option<usize> = Some(1);

/// The record's value after each committed change: seeded, then changed twice.
const WRITE_BACK_VALUES: [&[u8]; 3] = [b"seeded", b"first change", b"second change"];

/// The in-memory disk, whose database-file writes by threads other than main (the worker's
/// write-backs) yield before they land, so loom may run main while a batch's I/O is out: the
/// engine makes that I/O holding no latch, and an instantaneous write would hide the window.
/// Whether one landed after main began its racing calls is recorded (harness bookkeeping for
/// coverage only: plain std atomics, which loom does not see).
struct RaceWindowIo {
    disk: Arc<MemIo>,
    main: loom::thread::ThreadId,
    race_begun: Arc<std::sync::atomic::AtomicBool>,
    batch_landed_after_race_began: Arc<std::sync::atomic::AtomicBool>,
}

struct RaceWindowFile {
    file: Box<dyn jetsim_engine::env::IoFile>,
    database: bool,
    main: loom::thread::ThreadId,
    race_begun: Arc<std::sync::atomic::AtomicBool>,
    batch_landed_after_race_began: Arc<std::sync::atomic::AtomicBool>,
}

impl RaceWindowIo {
    fn watched(
        &self,
        path: &str,
        file: Box<dyn jetsim_engine::env::IoFile>,
    ) -> Box<dyn jetsim_engine::env::IoFile> {
        Box::new(RaceWindowFile {
            file,
            database: path == "db",
            main: self.main,
            race_begun: Arc::clone(&self.race_begun),
            batch_landed_after_race_began: Arc::clone(&self.batch_landed_after_race_began),
        })
    }
}

impl Io for RaceWindowIo {
    fn create(&self, path: &str) -> std::io::Result<Box<dyn jetsim_engine::env::IoFile>> {
        Ok(self.watched(path, self.disk.create(path)?))
    }
    fn open(&self, path: &str) -> std::io::Result<Box<dyn jetsim_engine::env::IoFile>> {
        Ok(self.watched(path, self.disk.open(path)?))
    }
    fn remove(&self, path: &str) -> std::io::Result<()> {
        self.disk.remove(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.disk.exists(path)
    }
}

impl jetsim_engine::env::IoFile for RaceWindowFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.file.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if self.database && loom::thread::current().id() != self.main {
            // A disk write takes time: other threads may run before it lands.
            loom::thread::yield_now();
            if self.race_begun.load(StdOrdering::SeqCst) {
                self.batch_landed_after_race_began
                    .store(true, StdOrdering::SeqCst);
            }
        }
        self.file.write_at(offset, data)
    }
    fn sync(&self) -> std::io::Result<()> {
        self.file.sync()
    }
    fn len(&self) -> std::io::Result<u64> {
        self.file.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)
    }
}

/// Replaces the record `key` of `table` with `value` in a transaction of its own.
fn replace_committed(jet: &Engine, session: SessionHandle, table: TableHandle, value: &[u8]) {
    jet.begin_transaction(session).expect("begin_transaction");
    jet.seek(session, table, b"a", SeekMode::Equal)
        .expect("seek");
    jet.replace(session, table, value).expect("replace");
    jet.commit_transaction(session).expect("commit");
}

/// What races the background worker's write-back in [`write_back_model`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteBackRacer {
    /// A full stop, whose flush writes every dirty page back.
    Stop,
    /// Inserts into [`EVICTION_TABLES`] other tables, in one transaction, each dirtying a
    /// root page in the smallest cache: the changed page becomes the least recently used
    /// dirty one, and eviction needs room (it takes clean pages first).
    Evictions,
}

/// Tables the eviction variant reads, one root page each: as many as the smallest cache
/// holds, so every frame is wanted again while the batch is out.
const EVICTION_TABLES: usize = 8;

/// 2 loom threads: main and the instance's own background worker, with the checkpoint depth
/// at 0 so every commit wakes the worker to write the dirty pages back (its batch's I/O runs
/// with no latch held). A seed engine leaves database "db" with record "a" in table "t" (and,
/// for the eviction variant, a record in each of [`EVICTION_TABLES`] more tables); main
/// attaches it, changes "a" twice (each committed), then races the worker's batch with
/// `racer`, and terms cleanly. A fresh instance then reads "a" from the disk: it must hold
/// the second change. A stop's flush that does not wait for a batch out, or an eviction that
/// takes a page in flight, writes the second change, then the batch's older copy lands over
/// it. Coverage: [a worker's write landed after main began its racing calls (a batch was out
/// while they ran, or began after), none did].
fn write_back_model(
    racer: WriteBackRacer,
    mutations: Mutations,
    during: &AtomicUsize,
    outside: &AtomicUsize,
) {
    let disk = Arc::new(MemIo::new());
    let race_begun = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let batch_landed_after_race_began = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let environment = || {
        let io = RaceWindowIo {
            disk: Arc::clone(&disk),
            main: loom::thread::current().id(),
            race_begun: Arc::clone(&race_begun),
            batch_landed_after_race_began: Arc::clone(&batch_landed_after_race_began),
        };
        Environment::new(Arc::new(ManualClock::new(0)), Arc::new(io))
    };
    let other_tables: Vec<String> = match racer {
        WriteBackRacer::Stop => Vec::new(),
        WriteBackRacer::Evictions => (0..EVICTION_TABLES).map(|i| format!("u{i}")).collect(),
    };
    seed_write_back_database(environment(), &other_tables);

    let jet = Engine::new(environment());
    // Checkpoint depth 0: every commit wakes the worker. The eviction variant also takes the
    // smallest cache.
    let parameters: &[(SystemParameter, u64)] = match racer {
        WriteBackRacer::Stop => &[(SystemParameter::CheckpointDepthMaxBytes, 0)],
        WriteBackRacer::Evictions => &[
            (SystemParameter::CheckpointDepthMaxBytes, 0),
            (SystemParameter::CacheSizePages, 8),
        ],
    };
    let instance = initialized_with_worker(&jet, mutations, parameters);
    let session = jet.begin_session(instance).expect("begin_session");
    jet.attach_database(session, "db").expect("attach");
    let table = open_table_t(&jet, session);
    // Opened before the worker has work, so these calls add no interleavings.
    let others: Vec<TableHandle> = {
        let db = jet.open_database(session, "db").expect("open_database");
        other_tables
            .iter()
            .map(|name| jet.open_table(session, db, name).expect("open_table"))
            .collect()
    };
    for value in &WRITE_BACK_VALUES[1..] {
        replace_committed(&jet, session, table, value);
    }
    race_begun.store(true, StdOrdering::SeqCst);
    match racer {
        WriteBackRacer::Stop => assert_eq!(jet.stop_service_instance(instance), Ok(())),
        WriteBackRacer::Evictions => {
            jet.begin_transaction(session).expect("begin_transaction");
            for &other in &others {
                jet.insert(session, other, b"n", b"new").expect("insert");
            }
            jet.commit_transaction(session).expect("commit");
        }
    }
    for table in others.into_iter().chain([table]) {
        jet.close_table(session, table).expect("close_table");
    }
    jet.end_session(session).expect("end_session");
    // Term joins the worker thread: loom requires every thread to finish.
    assert_eq!(jet.term(instance), Ok(TermOutcome::Clean));
    match batch_landed_after_race_began.load(StdOrdering::SeqCst) {
        true => during.fetch_add(1, StdOrdering::SeqCst),
        false => outside.fetch_add(1, StdOrdering::SeqCst),
    };

    let (reader, session) = reopened(environment());
    let table = open_table_t(&reader, session);
    let found = reader
        .seek(session, table, b"a", SeekMode::Equal)
        .and_then(|()| reader.retrieve(session, table));
    assert!(
        found
            .as_ref()
            .is_ok_and(|(_, value)| value == WRITE_BACK_VALUES[2]),
        "{P_PAGES_KEPT}: after {racer:?} and a clean term the disk holds {:?}",
        found.map(|(_, value)| String::from_utf8_lossy(&value).into_owned())
    );
}

/// Database "db" on `environment`'s disk, cleanly terminated: record "a" in table "t", and
/// record "k" in each of `other_tables`.
fn seed_write_back_database(environment: Environment, other_tables: &[String]) {
    let seeder = Engine::new(environment);
    let (seed, session) = manual_instance_with_session(&seeder);
    let db = seeder
        .create_database(session, "db")
        .expect("create_database");
    let records = std::iter::once(("t", b"a".as_slice(), WRITE_BACK_VALUES[0])).chain(
        other_tables
            .iter()
            .map(|name| (name.as_str(), b"k".as_slice(), b"other".as_slice())),
    );
    for (name, key, value) in records {
        let table = seeder
            .create_table(session, db, name)
            .expect("create_table");
        seeder
            .begin_transaction(session)
            .expect("begin_transaction");
        seeder.insert(session, table, key, value).expect("insert");
        seeder.commit_transaction(session).expect("commit");
        seeder.close_table(session, table).expect("close_table");
    }
    seeder.end_session(session).expect("end_session");
    assert_eq!(seeder.term(seed), Ok(TermOutcome::Clean));
}
