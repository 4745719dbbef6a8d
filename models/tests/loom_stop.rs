//! loom models of the stop protocol, run on the engine's own code (`Jet<LoomRuntime>`).
//!
//! Every model builds its engine inside the `loom::model` closure (a fresh in-memory
//! environment per execution; nothing loom-visible is created outside), does its single-threaded
//! set-up on the model's main thread, spawns the racing threads, joins them and checks the
//! properties. Properties are asserted with a message that starts with one of the `P_*`
//! constants below, so the mutant tests can check that loom found *that* violation.
//!
//! Each model pins the number of executions loom explores (counted by the harness, since
//! `Builder::check` does not report it). A change in a pinned count means the search space
//! changed (engine code gained or lost a scheduling point, or the model changed) and must be
//! reviewed: re-measure, check the model still reaches the interleavings it is about, and
//! update the number.
//!
//! Preemption bounds: `None` means the full interleaving space (DPOR-reduced) was explored.
//! Where a bound is used, the reason is written beside the model.
//!
//! Heavier variants (larger thread counts or data, bounds lifted) run only with
//! `JETSIM_LOOM_HEAVY=1 cargo test -p jetsim-models --release -- --nocapture`; they print their
//! counts instead of pinning them (see `heavy_*` tests).

use jetsim_engine::{
    stop_grbit, DefragStatus, Environment, InstanceHandle, InstanceOptions, InstanceStatus, Jet,
    JetError, JetResult, Mutant, Mutations, Phase, SessionHandle, StopStep, SystemParameter,
    TermOutcome,
};
use jetsim_models::LoomRuntime;
use loom::sync::atomic::{AtomicU64, Ordering};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;

type Engine = Jet<LoomRuntime>;

// ---------------------------------------------------------------------------------------------
// Properties (panic messages start with these).

/// A gated call invoked after `stop_service_instance` returned was admitted.
const P_ADMITTED_AFTER_STOP: &str = "GATE: a gated call invoked after the stop returned was admitted";
/// When the stop returned, a gated call was still inside the engine.
const P_IN_FLIGHT_AT_STOP: &str = "GATE: a gated call was in flight when the stop returned";
/// A gated call succeeded, but its effect was not there when the stop returned: it finished
/// after the stop.
const P_FINISHED_AFTER_STOP: &str = "GATE: a gated call that succeeded finished after the stop returned";
/// After a full stop returned, dirty pages remained or the checkpoint was behind the log tip.
const P_NOT_QUIESCED: &str = "QUIESCE: the checkpoint was not at the log tip when the stop returned";
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

// ---------------------------------------------------------------------------------------------
// Harness.

fn heavy() -> bool {
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

/// Runs `model` under loom and returns the number of executions explored.
fn explore(preemption_bound: Option<usize>, model: impl Fn() + Sync + Send + 'static) -> usize {
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executions);
    builder(preemption_bound).check(move || {
        counter.fetch_add(1, StdOrdering::SeqCst);
        model();
    });
    executions.load(StdOrdering::SeqCst)
}

/// What loom reported when a model failed.
#[derive(Debug)]
struct Violation {
    /// Executions run up to and including the failing one.
    executions: usize,
    message: String,
}

/// Runs `model` under loom expecting it to fail; `None` if loom explored everything without a
/// failure.
fn find_violation(
    preemption_bound: Option<usize>,
    model: impl Fn() + Sync + Send + 'static,
) -> Option<Violation> {
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executions);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        builder(preemption_bound).check(move || {
            counter.fetch_add(1, StdOrdering::SeqCst);
            model();
        })
    }));
    let payload = outcome.err()?;
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "<non-string panic payload>".to_owned());
    Some(Violation {
        executions: executions.load(StdOrdering::SeqCst),
        message,
    })
}

/// Asserts loom finds a violation of `property` in `model` and returns it.
fn assert_caught(
    what: &str,
    preemption_bound: Option<usize>,
    property: &str,
    model: impl Fn() + Sync + Send + 'static,
) -> Violation {
    let violation = find_violation(preemption_bound, model)
        .unwrap_or_else(|| panic!("{what}: loom explored every execution and found no violation"));
    assert!(
        violation.message.starts_with(property),
        "{what}: loom failed on something else than `{property}`: {violation:?}"
    );
    violation
}

fn options(mutations: Mutations) -> InstanceOptions {
    InstanceOptions {
        mutations,
        ..InstanceOptions::manual()
    }
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
    assert_eq!(jet.instance_status(instance).err(), Some(JetError::InvalidParameter));
    assert_eq!(jet.begin_session(instance).err(), Some(JetError::InvalidParameter));
    assert_eq!(jet.stop_service_instance(instance), Err(JetError::InvalidParameter));
    assert_eq!(jet.term(instance), Err(JetError::InvalidParameter));
    if let Some(session) = session {
        assert_eq!(jet.get_session_info(session).err(), Some(JetError::InvalidSesid));
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
            jet.insert(session, table, b"key", b"value").expect("insert");
            Prepared {
                session: Some(session),
            }
        }
    }
}

fn invoke(jet: &Engine, instance: InstanceHandle, prepared: &Prepared, call: Gated) -> JetResult<()> {
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

/// The gate properties, given when the call was invoked and what it returned.
fn check_gate(call: Gated, invoked_at: u64, result: JetResult<()>, stop: &StopSide) {
    assert_eq!(stop.result, Ok(()), "a stop on a running instance succeeds");
    if stop.returned_at < invoked_at {
        assert!(
            result == Err(JetError::ClientRequestToStopJetService),
            "{P_ADMITTED_AFTER_STOP}: {call:?} returned {result:?}"
        );
    }
    assert!(
        stop.status.gated_calls_in_flight == 0,
        "{P_IN_FLIGHT_AT_STOP}: {call:?}, status {:?}",
        stop.status
    );
    if result.is_ok() {
        assert!(
            effect_visible(&stop.status, call),
            "{P_FINISHED_AFTER_STOP}: {call:?}, status at stop return {:?}",
            stop.status
        );
    } else {
        assert_eq!(result, Err(JetError::ClientRequestToStopJetService));
    }
    assert_eq!(stop.status.phase, Phase::Stopped);
    assert!(
        stop.status.dirty_pages == 0 && stop.status.checkpoint_depth_bytes == 0,
        "{P_NOT_QUIESCED}: {:?}",
        stop.status
    );
}

/// 3 loom threads: main (set-up, then blocked in `join`), the caller, the stopper.
fn gate_model(call: Gated, mutations: Mutations) {
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

#[test]
fn gate_begin_session_vs_stop() {
    // Unbounded: 3 loom threads, tiny space.
    let executions = explore(None, || gate_model(Gated::BeginSession, Mutations::NONE));
    // Pinned: a change means the search changed; review it.
    assert_eq!(executions, 351);
}

#[test]
fn gate_begin_transaction_vs_stop() {
    let executions = explore(None, || gate_model(Gated::BeginTransaction, Mutations::NONE));
    assert_eq!(executions, 351);
}

#[test]
fn gate_commit_vs_stop() {
    let executions = explore(None, || gate_model(Gated::Commit, Mutations::NONE));
    assert_eq!(executions, 351);
}

#[test]
fn gate_main_stops() {
    let executions = explore(None, || gate_main_stops_model(Mutations::NONE));
    assert_eq!(executions, 265);
}
