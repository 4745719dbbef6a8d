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
    assert!(result.is_ok(), "{P_ALLOWLIST}: {call:?} returned {result:?}");
    assert_eq!(stopped, Ok(()));
    let after = status(&jet, instance);
    assert_eq!(after.phase, Phase::Stopped);
    assert_eq!(after.gated_calls_in_flight + after.ungated_calls_in_flight, 0);
    assert_eq!(after.open_transactions, 0);
    match call {
        Allowlisted::Rollback => {
            let info = jet.get_session_info(session).expect("session lives");
            assert_eq!(info.transaction_level, 0);
            assert_eq!(jet.end_session(session), Ok(()));
        }
        Allowlisted::EndSession => {
            assert_eq!(after.sessions, 0);
            assert_eq!(jet.get_session_info(session).err(), Some(JetError::InvalidSesid));
        }
    }
}

#[test]
fn allowlist_rollback_vs_stop() {
    let executions = explore(None, || allowlist_model(Allowlisted::Rollback, Mutations::NONE));
    assert_eq!(executions, 0);
}

#[test]
fn allowlist_end_session_vs_stop() {
    let executions = explore(None, || allowlist_model(Allowlisted::EndSession, Mutations::NONE));
    assert_eq!(executions, 0);
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
            assert!(matches!(at_stop.phase, Phase::Stopped | Phase::Terminating));
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
    assert_eq!(executions, 0);
}

#[test]
fn term_waits_for_calls() {
    let executions = explore(None, || term_waits_model(Mutations::NONE));
    assert_eq!(executions, 0);
}

#[test]
fn call_vs_stop_vs_term_unbounded() {
    let executions = explore(None, || call_stop_term_model(Mutations::NONE));
    assert_eq!(executions, 0);
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
        assert_eq!(phase, Phase::Stopped, "a stop returned before the instance was stopped");
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
            StopStep::VersionCleanupSignalled { before, after }
                if before != after => "cleanup",
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
    assert_eq!(executions, 0);
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

#[test]
fn session_context_across_threads() {
    let executions = explore(None, || context_model(Mutations::NONE));
    assert_eq!(executions, 0);
}

// ---------------------------------------------------------------------------------------------
// Model 6: partial stop and resume racing a full stop.

/// 4 loom threads: main; a `BackgroundUserTasks` partial stop; a `Resume`; a full stop. After
/// the full stop returned, defrag stays parked and a resume is refused.
fn partial_model(mutations: Mutations) {
    let (jet, instance) = engine(options(mutations));
    jet.set_system_parameter(instance, SystemParameter::OnlineDefrag, 1)
        .expect("online defrag on");
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
            (invoked_at, jet.stop_service_instance2(instance, stop_grbit::RESUME))
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
        matches!(resumed, Ok(()) | Err(JetError::ClientRequestToStopJetService)),
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

#[test]
fn partial_stop_resume_vs_full_stop() {
    let executions = explore(None, || partial_model(Mutations::NONE));
    assert_eq!(executions, 0);
}
