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
//! Models (loom threads counted with main; "racing" excludes main):
//! - gate: `begin_session` / `begin_transaction` / `commit_transaction` vs a full stop
//!   (unbounded); the same with the stop on main (unbounded); two calls vs stop (bound 3).
//! - allowlist: `rollback` / `end_session` vs stop, both must succeed (unbounded).
//! - term: stop vs term, `begin_transaction` vs term (unbounded); call vs stop vs term and two
//!   stops vs term (bound 3).
//! - two concurrent stops (unbounded); session contexts across threads (bound 4); partial
//!   stop and resume vs a full stop (bound 3); the stop parking the engine's own background
//!   defrag thread (bound 2).
//! - teeth: every mutant a model catches, with the executions until loom found it pinned.
//!
//! The default run takes about 15 s on two cores. Heavier variants (bounds lifted) run only
//! with `JETSIM_LOOM_HEAVY=1 cargo test -p jetsim-models -- --nocapture heavy_` (all six:
//! ~90 s); without the variable they return at once. They print their counts instead of pinning them.

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
    assert_caught_any(what, preemption_bound, &[property], model)
}

/// Like [`assert_caught`], for a bug that either a model property or one of the engine's own
/// invariant assertions (named by a fragment of its message) reports, whichever loom's search
/// reaches first.
fn assert_caught_any(
    what: &str,
    preemption_bound: Option<usize>,
    accepted: &[&str],
    model: impl Fn() + Sync + Send + 'static,
) -> Violation {
    let violation = find_violation(preemption_bound, model)
        .unwrap_or_else(|| panic!("{what}: loom explored every execution and found no violation"));
    assert!(
        accepted.iter().any(|m| violation.message.contains(m)),
        "{what}: loom failed on something else than {accepted:?}: {violation:?}"
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
fn gate_model(call: Gated, mutations: Mutations) {
    gate_model_covered(call, mutations, &GateCoverage::default());
}

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

#[test]
fn gate_begin_session_vs_stop() {
    // Unbounded: 3 loom threads (main blocked in join), small space.
    let coverage = Arc::new(GateCoverage::default());
    let seen = Arc::clone(&coverage);
    let executions = explore(None, move || {
        gate_model_covered(Gated::BeginSession, Mutations::NONE, &seen)
    });
    // Pinned: a change in the count means the search changed and must be reviewed.
    assert_eq!(executions, 351);
    // [refused, admitted and drained by the stop, admitted and done before the stop]
    assert_eq!(coverage.counts(), [216, 27, 108]);
}

#[test]
fn gate_begin_transaction_vs_stop() {
    // Unbounded: 3 loom threads (main blocked in join), small space.
    let coverage = Arc::new(GateCoverage::default());
    let seen = Arc::clone(&coverage);
    let executions = explore(None, move || {
        gate_model_covered(Gated::BeginTransaction, Mutations::NONE, &seen)
    });
    // Pinned: a change in the count means the search changed and must be reviewed.
    assert_eq!(executions, 351);
    // [refused, admitted and drained by the stop, admitted and done before the stop]
    assert_eq!(coverage.counts(), [216, 27, 108]);
}

#[test]
fn gate_commit_vs_stop() {
    // Unbounded: 3 loom threads (main blocked in join), small space.
    let coverage = Arc::new(GateCoverage::default());
    let seen = Arc::clone(&coverage);
    let executions = explore(None, move || {
        gate_model_covered(Gated::Commit, Mutations::NONE, &seen)
    });
    // Pinned: a change in the count means the search changed and must be reviewed.
    assert_eq!(executions, 351);
    // [refused, admitted and drained by the stop, admitted and done before the stop]
    assert_eq!(coverage.counts(), [216, 27, 108]);
}

#[test]
fn gate_main_stops() {
    let executions = explore(None, || gate_main_stops_model(Mutations::NONE));
    assert_eq!(executions, 265);
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

#[test]
fn allowlist_rollback_vs_stop() {
    let executions = explore(None, || {
        allowlist_model(Allowlisted::Rollback, Mutations::NONE)
    });
    assert_eq!(executions, 42504);
}

#[test]
fn allowlist_end_session_vs_stop() {
    let executions = explore(None, || {
        allowlist_model(Allowlisted::EndSession, Mutations::NONE)
    });
    assert_eq!(executions, 996);
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

#[test]
fn stop_vs_term() {
    let executions = explore(None, || stop_term_model(Mutations::NONE));
    assert_eq!(executions, 321);
}

#[test]
fn term_waits_for_calls() {
    let executions = explore(None, || term_waits_model(Mutations::NONE));
    assert_eq!(executions, 108);
}

/// Bound 3: three racing threads; unbounded it runs past 600,000 executions (150 s) without
/// finishing. Bound 3 (22,328 executions) covers every order of the three calls with one
/// preemption inside a call to spare. `heavy_call_vs_stop_vs_term` lifts it to 4.
const CALL_STOP_TERM_BOUND: Option<usize> = Some(3);

#[test]
fn call_vs_stop_vs_term() {
    let executions = explore(CALL_STOP_TERM_BOUND, || {
        call_stop_term_model(Mutations::NONE)
    });
    assert_eq!(executions, 22328);
}

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

#[test]
fn two_concurrent_stops() {
    let executions = explore(None, || two_stops_model(Mutations::NONE));
    assert_eq!(executions, 7479);
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

#[test]
fn session_context_across_threads() {
    let executions = explore(CONTEXT_BOUND, || context_model(Mutations::NONE));
    assert_eq!(executions, 9653);
}

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

#[test]
fn partial_stop_resume_vs_full_stop() {
    let executions = explore(PARTIAL_BOUND, || partial_model(Mutations::NONE));
    assert_eq!(executions, 16153);
}

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
    let seed = jet
        .create_instance_with("model", InstanceOptions::manual())
        .expect("create seed");
    jet.init(seed).expect("init seed");
    let session = jet.begin_session(seed).expect("begin_session");
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
fn defrag_park_model(freed_before_stop: &AtomicUsize, freed_after_stop: &AtomicUsize) {
    let jet = Arc::new(Engine::new(Environment::in_memory()));
    seed_fragmented_database(&jet);
    let instance = jet
        .create_instance_with("model", InstanceOptions::default())
        .expect("create_instance");
    jet.init(instance).expect("init");
    let session = jet.begin_session(instance).expect("begin_session");
    jet.attach_database(session, "db").expect("attach");
    jet.set_system_parameter(instance, SystemParameter::OnlineDefrag, 1)
        .expect("online defrag on");
    assert_eq!(jet.stop_service_instance(instance), Ok(()));
    let at_stop = status(&jet, instance);
    assert_eq!(at_stop.phase, Phase::Stopped);
    assert!(
        at_stop.defrag == DefragStatus::Parked,
        "DEFRAG: not parked when the stop returned: {at_stop:?}"
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
        "DEFRAG: a defrag pass ran after the stop returned: {at_stop:?} then {last:?}"
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

/// Bound 2: every execution replays the seeding (~5 ms of B+tree work), and the worker's pass
/// interleaves with each of main's calls; bound 2 is 249 executions (~1.5 s), bound 3 2,045
/// (~10 s, `heavy_stop_parks_background_defrag`). Two preemptions let the stop land before,
/// inside, or after the pass's steps.
const DEFRAG_BOUND: Option<usize> = Some(2);

#[test]
fn stop_parks_background_defrag() {
    let some_freed = Arc::new(AtomicUsize::new(0));
    let none_freed = Arc::new(AtomicUsize::new(0));
    let (a, b) = (Arc::clone(&some_freed), Arc::clone(&none_freed));
    let executions = explore(DEFRAG_BOUND, move || defrag_park_model(&a, &b));
    assert_eq!(executions, 249);
    // Coverage, pinned: stops that parked defrag after the pass had freed pages, and stops that
    // parked it before the pass got anything done.
    assert_eq!(
        [&some_freed, &none_freed].map(|c| c.load(StdOrdering::SeqCst)),
        [60, 189]
    );
}

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

// ---------------------------------------------------------------------------------------------
// Teeth: each planted bug is found by the model that is about it, in a pinned number of
// executions (deterministic: loom's search order is fixed). The unmutated engine passes the
// same models above.

fn planted(mutant: Mutant) -> Mutations {
    Mutations::NONE.with(mutant)
}

#[test]
fn catches_stop_flag_last() {
    let violation = assert_caught("StopFlagLast", None, P_IN_FLIGHT_AT_STOP, || {
        gate_model(Gated::BeginSession, planted(Mutant::StopFlagLast))
    });
    assert_eq!(violation.executions, 10);
}

#[test]
fn catches_check_then_act_gate() {
    let violation = assert_caught("CheckThenActGate", None, P_FINISHED_AFTER_STOP, || {
        gate_model(Gated::BeginSession, planted(Mutant::CheckThenActGate))
    });
    assert_eq!(violation.executions, 22);
}

/// The check-then-act race needs two preemptions when the stopper is runnable throughout (the
/// stop on main): one into the caller, one out of it while it sits between its check and its
/// count. A bound of 1 explores everything else and misses it; a bound of 2 finds it.
#[test]
fn check_then_act_needs_preemption_bound_2() {
    let model = || gate_main_stops_model(planted(Mutant::CheckThenActGate));
    let missed = find_violation(Some(1), model);
    assert!(missed.is_none(), "bound 1 found {missed:?}");
    // With both racing threads spawned (main blocked in `join`), the first switch is free and
    // bound 1 is enough: the shape of the model decides the bound a race needs.
    let spawned = find_violation(Some(1), || {
        gate_model(Gated::BeginSession, planted(Mutant::CheckThenActGate))
    });
    assert_eq!(spawned.map(|v| v.executions), Some(5));
    // Pinned: all executions of the mutated model with at most one preemption.
    assert_eq!(explore(Some(1), model), 7);
    let violation = assert_caught(
        "CheckThenActGate, bound 2",
        Some(2),
        P_FINISHED_AFTER_STOP,
        model,
    );
    assert_eq!(violation.executions, 23);
    // The unmutated engine passes at both bounds (and unbounded: `gate_main_stops`).
    assert_eq!(
        explore(Some(1), || gate_main_stops_model(Mutations::NONE)),
        7
    );
    assert_eq!(
        explore(Some(2), || gate_main_stops_model(Mutations::NONE)),
        32
    );
}

#[test]
fn catches_allowlist_extra_commit() {
    // The commit, wrongly allowlisted, is not waited for: loom first finds it finishing after
    // the stop returned (it would also be admitted after the stop, the next property).
    let violation = assert_caught("AllowlistExtraCommit", None, P_FINISHED_AFTER_STOP, || {
        gate_model(Gated::Commit, planted(Mutant::AllowlistExtraCommit))
    });
    assert_eq!(violation.executions, 1111);
}

#[test]
fn catches_checkpoint_quiesce_skipped() {
    let violation = assert_caught("CheckpointQuiesceSkipped", None, P_NOT_QUIESCED, || {
        gate_model(Gated::Commit, planted(Mutant::CheckpointQuiesceSkipped))
    });
    assert_eq!(violation.executions, 1);
}

#[test]
fn catches_allowlist_missing_rollback() {
    let violation = assert_caught("AllowlistMissingRollback", None, P_ALLOWLIST, || {
        allowlist_model(
            Allowlisted::Rollback,
            planted(Mutant::AllowlistMissingRollback),
        )
    });
    assert_eq!(violation.executions, 22);
}

#[test]
fn catches_term_does_not_wait() {
    // The engine's `Gate::finish_term` asserts no call is in flight; loom reaches that
    // assertion (execution 37) before this model's own property (which, before the engine had
    // the assertion, caught the mutant at execution 64).
    let violation = assert_caught_any(
        "TermDoesNotWait",
        None,
        &[P_TERM_WAITS, E_TERM_IN_FLIGHT],
        || term_waits_model(planted(Mutant::TermDoesNotWait)),
    );
    assert!(
        violation.message.contains(E_TERM_IN_FLIGHT),
        "{violation:?}"
    );
    assert_eq!(violation.executions, 37);
}

#[test]
fn catches_version_cleanup_not_signalled() {
    let violation = assert_caught(
        "VersionCleanupNotSignalled",
        None,
        P_ONE_STOP_RECORD,
        || two_stops_model(planted(Mutant::VersionCleanupNotSignalled)),
    );
    assert_eq!(violation.executions, 1);
}

#[test]
fn catches_reset_context_from_any_thread() {
    let violation = assert_caught(
        "ResetContextFromAnyThread",
        CONTEXT_BOUND,
        P_CONTEXT,
        || context_model(planted(Mutant::ResetContextFromAnyThread)),
    );
    assert_eq!(violation.executions, 59);
}

#[test]
fn catches_end_session_ignores_context() {
    let violation = assert_caught("EndSessionIgnoresContext", CONTEXT_BOUND, P_CONTEXT, || {
        context_model(planted(Mutant::EndSessionIgnoresContext))
    });
    assert_eq!(violation.executions, 59);
}

#[test]
fn catches_defrag_stopped_before_validation() {
    let violation = assert_caught(
        "DefragStoppedBeforeValidation",
        PARTIAL_BOUND,
        P_VALIDATION,
        || partial_model(planted(Mutant::DefragStoppedBeforeValidation)),
    );
    assert_eq!(violation.executions, 1);
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

#[test]
fn gate_two_calls_vs_stop() {
    let executions = explore(TWO_CALLS_BOUND, || two_calls_model(Mutations::NONE));
    assert_eq!(executions, 11204);
}

/// Bound 3: three racing threads (5,894 executions); bound 4 is 30,471, bound 5 117,740.
const STOPS_TERM_BOUND: Option<usize> = Some(3);

#[test]
fn two_stops_vs_term() {
    let executions = explore(STOPS_TERM_BOUND, || stops_term_model(Mutations::NONE));
    assert_eq!(executions, 5894);
}

// ---------------------------------------------------------------------------------------------
// Heavy variants: `JETSIM_LOOM_HEAVY=1`. Bounds lifted; counts printed, not pinned (measured
// where noted).

fn heavy_run(name: &str, bound: Option<usize>, model: impl Fn() + Sync + Send + 'static) {
    if !heavy() {
        eprintln!("{name}: skipped (set JETSIM_LOOM_HEAVY=1)");
        return;
    }
    let executions = explore(bound, model);
    eprintln!("{name}: bound {bound:?}, {executions} executions");
}

#[test]
fn heavy_call_vs_stop_vs_term() {
    // Measured: bound 4, 187,929 executions (~30 s).
    heavy_run("call vs stop vs term", Some(4), || {
        call_stop_term_model(Mutations::NONE)
    });
}

#[test]
fn heavy_two_calls_vs_stop() {
    // Measured: bound 4, 72,698 executions.
    heavy_run("two calls vs stop", Some(4), || {
        two_calls_model(Mutations::NONE)
    });
}

#[test]
fn heavy_two_stops_vs_term() {
    // Measured: bound 5, 117,740 executions (~15 s).
    heavy_run("two stops vs term", Some(5), || {
        stops_term_model(Mutations::NONE)
    });
}

#[test]
fn heavy_session_context_across_threads() {
    // Measured: bound 6, 118,384 executions (~19 s).
    heavy_run("session context", Some(6), || {
        context_model(Mutations::NONE)
    });
}

#[test]
fn heavy_partial_stop_resume_vs_full_stop() {
    // Measured: bound 4, 107,913 executions.
    heavy_run("partial stop", Some(4), || partial_model(Mutations::NONE));
}

#[test]
fn heavy_stop_parks_background_defrag() {
    // Measured: bound 3, 2,045 executions (~10 s).
    heavy_run("background defrag", Some(3), || {
        let (a, b) = (AtomicUsize::new(0), AtomicUsize::new(0));
        defrag_park_model(&a, &b)
    });
}
