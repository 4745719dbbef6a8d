//! The stop protocol under shuttle: the engine's own code (gate, stop, worker, storage) on
//! shuttle's controlled threads, with explicit seeds and both the random and the PCT scheduler,
//! at sizes loom cannot explore exhaustively (4–6 threads, several calls each).
//!
//! Every shuttle run happens on a fresh OS thread: shuttle installs a panic hook per process and
//! a failing run panics, which the teeth tests catch on the join.
//!
//! Iterations per seed default to values that keep `cargo test -p jetsim` well under a minute;
//! `JETSIM_SHUTTLE_ITERATIONS` overrides them (and `JETSIM_SHUTTLE_TEETH_SEEDS` the number of
//! seeds the teeth tests measure detection over). No sleeps, no wall clock.

use jetsim::ShuttleRuntime;
use jetsim_engine::{
    stop_grbit, Admission, CleanupStatus, DatabaseHandle, DefragStatus, Environment,
    InstanceHandle, InstanceOptions, InstanceStatus, Jet, JetCall, JetError, JetResult, MoveTo,
    Mutant, Mutations, Observation, Phase, SeekMode, SessionHandle, StopStep, SystemParameter,
    TermOutcome,
};
use shuttle::rand::{thread_rng, Rng};
use shuttle::scheduler::{PctScheduler, RandomScheduler};
use shuttle::sync::atomic::{AtomicU64, Ordering};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::sync::{Arc, Mutex as StdMutex};

type SimJet = Jet<ShuttleRuntime>;

const DB: &str = "db/main.edb";
const TABLE: &str = "t";

// ---------------------------------------------------------------------------------------------
// Running shuttle
// ---------------------------------------------------------------------------------------------

/// Which shuttle scheduler drives a run.
#[derive(Debug, Clone, Copy)]
enum Sched {
    Random,
    /// PCT with this bug depth (preemptions).
    Pct(usize),
}

impl Sched {
    /// Most yields a stopper makes before stopping, to land at a random point among the
    /// workers' calls. Under PCT every yield drops the yielding thread to the lowest priority,
    /// so many yields would push the stop past all the work: PCT gets few.
    fn stopper_max_yields(self) -> u32 {
        match self {
            Sched::Random => 32,
            Sched::Pct(_) => 4,
        }
    }
}

/// `JETSIM_SHUTTLE_ITERATIONS`, or `default`.
fn iterations(default: usize) -> usize {
    env_usize("JETSIM_SHUTTLE_ITERATIONS").unwrap_or(default)
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

/// Outcome of one shuttle run.
#[derive(Debug)]
enum RunOutcome {
    /// Every execution passed; this many ran.
    Passed(usize),
    /// Execution number `at` (1-based) failed with `message`.
    Failed { at: usize, message: String },
}

/// Runs `body` under `sched` with `seed` for up to `iterations` executions, on a fresh OS
/// thread. `quiet` drops shuttle's schedule printout (for runs expected to fail).
fn run_shuttle<F>(sched: Sched, seed: u64, iterations: usize, quiet: bool, body: F) -> RunOutcome
where
    F: Fn() + Send + Sync + 'static,
{
    let started = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&started);
    let joined = std::thread::spawn(move || {
        let mut config = shuttle::Config::new();
        // Headroom: the engine is not optimised in dev builds and recurses in its B+tree;
        // shuttle's default continuation stack is 60 KiB (enough today, with little margin).
        config.stack_size = 1 << 20;
        if quiet {
            config.failure_persistence = shuttle::FailurePersistence::None;
        }
        let body = move || {
            counter.fetch_add(1, StdOrdering::Relaxed);
            body();
        };
        match sched {
            Sched::Random => {
                shuttle::Runner::new(RandomScheduler::new_from_seed(seed, iterations), config)
                    .run(body)
            }
            Sched::Pct(depth) => {
                shuttle::Runner::new(PctScheduler::new_from_seed(seed, depth, iterations), config)
                    .run(body)
            }
        }
    })
    .join();
    match joined {
        Ok(ran) => RunOutcome::Passed(ran),
        Err(payload) => RunOutcome::Failed {
            at: started.load(StdOrdering::Relaxed),
            message: jetsim_engine::runtime::panic_message(payload.as_ref()),
        },
    }
}

/// Runs the execution `make(sched)` for every scheduler and seed; panics with the seed and
/// message on a failure. The tests that call it are alike in shape (name, schedulers, seeds,
/// iterations, execution) and stay one `#[test]` each, so a failure names its test and each
/// can be run alone.
fn must_pass<F>(
    name: &str,
    scheds: &[Sched],
    seeds: &[u64],
    iterations: usize,
    make: impl Fn(Sched) -> F,
) where
    F: Fn() + Send + Sync + 'static,
{
    for &sched in scheds {
        for &seed in seeds {
            match run_shuttle(sched, seed, iterations, false, make(sched)) {
                RunOutcome::Passed(ran) => {
                    assert_eq!(ran, iterations, "{name}: {sched:?} seed {seed}")
                }
                RunOutcome::Failed { at, message } => {
                    panic!("{name}: {sched:?} seed {seed:#x} failed at execution {at}: {message}")
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recording calls against a global sequence
// ---------------------------------------------------------------------------------------------

/// One Jet call as a worker saw it: stamps from the global sequence just before the call and
/// just after it returned.
#[derive(Debug, Clone)]
struct CallRecord {
    thread: usize,
    call: JetCall,
    invoked: u64,
    returned: u64,
    result: Result<(), JetError>,
}

/// A worker's call log; every stamp is a `fetch_add` on the shared shuttle atomic, so stamps of
/// all threads are totally ordered consistently with the engine's own synchronisation.
struct Recorder {
    thread: usize,
    seq: Arc<AtomicU64>,
    log: Vec<CallRecord>,
}

impl Recorder {
    fn new(thread: usize, seq: &Arc<AtomicU64>) -> Self {
        Recorder {
            thread,
            seq: Arc::clone(seq),
            log: Vec::new(),
        }
    }

    fn call<T>(&mut self, call: JetCall, body: impl FnOnce() -> JetResult<T>) -> JetResult<T> {
        let invoked = self.seq.fetch_add(1, Ordering::SeqCst);
        let result = body();
        let returned = self.seq.fetch_add(1, Ordering::SeqCst);
        self.log.push(CallRecord {
            thread: self.thread,
            call,
            invoked,
            returned,
            result: result.as_ref().map(|_| ()).map_err(|e| *e),
        });
        result
    }
}

/// What the stopping thread saw.
#[derive(Debug, Clone)]
struct StopSeen {
    invoked: u64,
    returned: u64,
    result: JetResult<()>,
    /// Status read right after a successful return.
    status_at_return: Option<InstanceStatus>,
    /// The instance's observable state right after a successful return.
    observed_at_return: Option<Observation>,
}

/// Calls `stop_service_instance` after a random number of yields (a random point among the
/// workers' calls), stamping invocation and return.
fn stop_at_random_point(
    jet: &SimJet,
    instance: InstanceHandle,
    seq: &AtomicU64,
    max_yields: u32,
) -> StopSeen {
    let yields = thread_rng().gen_range(0..=max_yields);
    for _ in 0..yields {
        shuttle::thread::yield_now();
    }
    let invoked = seq.fetch_add(1, Ordering::SeqCst);
    let result = jet.stop_service_instance(instance);
    let returned = seq.fetch_add(1, Ordering::SeqCst);
    let (status_at_return, observed_at_return) = if result.is_ok() {
        let status = jet
            .instance_status(instance)
            .expect("instance alive after its stop");
        let observed = jet.observe(instance).expect("observe after stop");
        (Some(status), Some(observed))
    } else {
        (None, None)
    };
    StopSeen {
        invoked,
        returned,
        result,
        status_at_return,
        observed_at_return,
    }
}

/// Nothing only a gated call can do happened after the stop returned: compared with the
/// observation at the stop's return, no committed record changed, no session went deeper into
/// a transaction, no cursor appeared, moved or changed level. Allowlisted calls only shrink
/// these (rollback lowers levels and closes cursors; close_table closes one).
fn check_no_gated_effect_since(at_return: &Observation, now: &Observation) {
    assert_eq!(
        at_return.committed, now.committed,
        "committed data changed after the stop returned"
    );
    for (sesid, session) in &now.sessions {
        let then = at_return
            .sessions
            .get(sesid)
            .unwrap_or_else(|| panic!("a session began after the stop returned: {sesid:#x}"));
        assert!(
            session.transaction_level <= then.transaction_level,
            "a transaction began after the stop returned: session {sesid:#x}, level {} -> {}",
            then.transaction_level,
            session.transaction_level
        );
    }
    for (tableid, cursor) in &now.cursors {
        assert_eq!(
            at_return.cursors.get(tableid),
            Some(cursor),
            "a cursor opened or moved after the stop returned: {tableid:#x}"
        );
    }
}

/// Yields until `done` holds for the instance's status (the background thread finishing a
/// round it had started); bounded, so a lost wake-up fails instead of spinning.
fn yield_until(
    jet: &SimJet,
    instance: InstanceHandle,
    what: &str,
    done: impl Fn(&InstanceStatus) -> bool,
) -> InstanceStatus {
    for _ in 0..10_000 {
        let status = jet.instance_status(instance).expect("instance alive");
        if done(&status) {
            return status;
        }
        shuttle::thread::yield_now();
    }
    panic!(
        "{what}: never happened: {:?}",
        jet.instance_status(instance)
    );
}

fn gated(call: JetCall) -> bool {
    // The true classification, whatever mutant is planted.
    call.admission(Mutations::NONE) == Admission::Gated
}

/// The stop rule on the call log, given a stop that returned success. `first_stop_invoked`: the
/// earliest invocation stamp of any full stop in the execution.
fn check_stop_rule(stop: &StopSeen, calls: &[CallRecord], first_stop_invoked: u64) {
    assert_eq!(stop.result, Ok(()), "stop failed: {stop:?}");
    let status = stop.status_at_return.as_ref().expect("read at return");
    assert_eq!(
        status.phase,
        Phase::Stopped,
        "stop returned before the instance was stopped"
    );
    assert_eq!(
        status.gated_calls_in_flight, 0,
        "a gated call was still running when the stop returned: {status:?}"
    );
    for record in calls {
        let refused = record.result == Err(JetError::ClientRequestToStopJetService);
        if gated(record.call) && record.invoked > stop.returned {
            assert!(
                refused,
                "gated call invoked after the stop returned was not refused: {record:?}"
            );
        }
        if JetCall::ALLOWED_AFTER_STOP.contains(&record.call) {
            assert!(!refused, "allowlisted call refused: {record:?}");
        }
        if record.returned < first_stop_invoked {
            assert!(!refused, "call refused before the stop began: {record:?}");
        }
    }
}

/// The full stop's record: every step, the checkpoint at the log tip.
fn check_stop_record(jet: &SimJet, instance: InstanceHandle) {
    let record = jet
        .last_stop_record(instance)
        .expect("instance alive")
        .expect("a successful stop records what it did");
    assert_eq!(record.grbit, stop_grbit::ALL);
    let steps = &record.steps;
    assert!(
        matches!(steps.first(), Some(StopStep::GateClosed { .. })),
        "gate not closed first: {steps:?}"
    );
    assert!(
        steps.iter().any(|s| matches!(
            s,
            StopStep::DefragParked {
                after: DefragStatus::Parked,
                ..
            }
        )),
        "defrag not parked: {steps:?}"
    );
    assert!(
        steps.iter().any(|s| matches!(
            s,
            StopStep::VersionCleanupSignalled {
                after: CleanupStatus::Signalled,
                ..
            }
        )),
        "version cleanup not signalled: {steps:?}"
    );
    assert!(
        steps.iter().any(|s| matches!(
            s,
            StopStep::CheckpointQuiesced {
                dirty_pages_after: 0,
                checkpoint_depth_after_bytes: 0,
                ..
            }
        )),
        "checkpoint not quiesced: {steps:?}"
    );
}

/// Rolls back every open transaction of `sessions` (term refuses open transactions by design).
fn roll_back_all(jet: &SimJet, sessions: &[SessionHandle]) {
    for &sesid in sessions {
        while jet
            .get_session_info(sesid)
            .expect("allowlisted")
            .transaction_level
            > 0
        {
            jet.rollback(sesid).expect("rollback is allowlisted");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The stop rule with many sessions
// ---------------------------------------------------------------------------------------------

/// Shape of the stop-rule workload.
#[derive(Debug, Clone, Copy)]
struct Workload {
    sessions: usize,
    rounds: usize,
    background_thread: bool,
    mutations: Mutations,
    /// The stopper yields a random number of times up to this before stopping. Under PCT each
    /// yield lowers the stopper's priority, so PCT runs use few.
    stopper_max_yields: u32,
}

impl Workload {
    fn under(self, sched: Sched) -> Workload {
        Workload {
            stopper_max_yields: sched.stopper_max_yields(),
            ..self
        }
    }

    fn with_mutant(self, mutant: Mutant) -> Workload {
        Workload {
            mutations: Mutations::NONE.with(mutant),
            ..self
        }
    }
}

/// One session's rounds: open the table, begin, insert, commit or roll back, close the table.
/// Spawns one shuttle thread per `(session, database)` of `sessions`, in order, each
/// running `work` with its own recorder (its thread number is its index); returns each
/// thread's handle, whose join gives the calls it recorded.
fn spawn_recorded<F>(
    jet: &Arc<SimJet>,
    seq: &Arc<AtomicU64>,
    sessions: &[(SessionHandle, DatabaseHandle)],
    work: F,
) -> Vec<shuttle::thread::JoinHandle<Vec<CallRecord>>>
where
    F: Fn(&SimJet, SessionHandle, DatabaseHandle, &mut Recorder, usize) + Copy + Send + 'static,
{
    sessions
        .iter()
        .enumerate()
        .map(|(thread, &(sesid, dbid))| {
            let (jet, seq) = (Arc::clone(jet), Arc::clone(seq));
            shuttle::thread::spawn(move || {
                let mut rec = Recorder::new(thread, &seq);
                work(&jet, sesid, dbid, &mut rec, thread);
                rec.log
            })
        })
        .collect()
}

/// Spawns a shuttle thread that stops `instance` after up to `max_yields` yields.
fn spawn_stopper(
    jet: &Arc<SimJet>,
    seq: &Arc<AtomicU64>,
    instance: InstanceHandle,
    max_yields: u32,
) -> shuttle::thread::JoinHandle<StopSeen> {
    let (jet, seq) = (Arc::clone(jet), Arc::clone(seq));
    shuttle::thread::spawn(move || stop_at_random_point(&jet, instance, &seq, max_yields))
}

fn session_worker(
    jet: &SimJet,
    sesid: SessionHandle,
    dbid: DatabaseHandle,
    rec: &mut Recorder,
    rounds: usize,
) {
    for round in 0..rounds {
        let table = rec
            .call(JetCall::OpenTable, || jet.open_table(sesid, dbid, TABLE))
            .ok();
        let began = rec
            .call(JetCall::BeginTransaction, || jet.begin_transaction(sesid))
            .is_ok();
        if let Some(table) = table {
            let key = format!("w{}r{round}", rec.thread);
            let _ = rec.call(JetCall::Insert, || {
                jet.insert(sesid, table, key.as_bytes(), b"value")
            });
        }
        if began {
            if thread_rng().gen_bool(0.5) {
                let _ = rec.call(JetCall::CommitTransaction, || jet.commit_transaction(sesid));
            } else {
                let _ = rec.call(JetCall::Rollback, || jet.rollback(sesid));
            }
        }
        if let Some(table) = table {
            let _ = rec.call(JetCall::CloseTable, || jet.close_table(sesid, table));
        }
    }
}

/// The stop-rule execution: `sessions` workers and one stopper race; then everything the stop
/// promises is checked and the instance terminated.
/// The first session, with the database created and table `TABLE` created in it (closed).
fn first_session_with_table(
    jet: &SimJet,
    instance: InstanceHandle,
) -> (SessionHandle, DatabaseHandle) {
    let first = jet.begin_session(instance).unwrap();
    let first_db = jet.create_database(first, DB).unwrap();
    let table = jet.create_table(first, first_db, TABLE).unwrap();
    jet.close_table(first, table).unwrap();
    (first, first_db)
}

/// The stop's quiesce held: no page dirtied and no log written since it.
fn assert_nothing_written_after_stop(status: &InstanceStatus) {
    assert_eq!(
        status.dirty_pages, 0,
        "pages dirtied after the stop: {status:?}"
    );
    assert_eq!(
        status.checkpoint_depth_bytes, 0,
        "log written after the stop: {status:?}"
    );
}

fn stop_rule_execution(w: Workload) {
    let jet = Arc::new(SimJet::new(Environment::in_memory()));
    let instance = jet
        .create_instance_with(
            "stoprule",
            InstanceOptions {
                background_thread: w.background_thread,
                mutations: w.mutations,
            },
        )
        .unwrap();
    jet.init(instance).unwrap();
    let (first, first_db) = first_session_with_table(&jet, instance);
    let mut sessions = vec![(first, first_db)];
    for _ in 1..w.sessions {
        let sesid = jet.begin_session(instance).unwrap();
        let dbid = jet.open_database(sesid, DB).unwrap();
        sessions.push((sesid, dbid));
    }

    let seq = Arc::new(AtomicU64::new(0));
    let rounds = w.rounds;
    let workers = spawn_recorded(&jet, &seq, &sessions, move |jet, sesid, dbid, rec, _| {
        session_worker(jet, sesid, dbid, rec, rounds)
    });
    let stopper = spawn_stopper(&jet, &seq, instance, w.stopper_max_yields);
    let calls: Vec<CallRecord> = workers
        .into_iter()
        .flat_map(|h| h.join().expect("worker panicked"))
        .collect();
    let stop = stopper.join().expect("stopper panicked");

    let threads: std::collections::BTreeSet<usize> = calls.iter().map(|c| c.thread).collect();
    assert_eq!(threads.len(), w.sessions, "every worker made calls");
    check_stop_rule(&stop, &calls, stop.invoked);
    check_no_gated_effect_since(
        stop.observed_at_return.as_ref().expect("stop succeeded"),
        &jet.observe(instance).unwrap(),
    );
    let status = jet.instance_status(instance).unwrap();
    assert_eq!(status.phase, Phase::Stopped);
    assert_eq!(status.gated_calls_in_flight, 0);
    assert_eq!(status.defrag, DefragStatus::Parked);
    // Signalled, or taken by the background thread: a round that took the order shows neither
    // until it ends (the status has no "cleanup running"), so wait for that round.
    yield_until(&jet, instance, "version cleanup signalled or run", |s| {
        s.version_cleanup == CleanupStatus::Signalled || s.version_cleanup_runs > 0
    });
    // Only an allowlisted rollback running during or after the stop may write after the
    // quiesce.
    let wrote_after = calls
        .iter()
        .any(|c| c.call == JetCall::Rollback && c.result.is_ok() && c.returned > stop.invoked);
    if !wrote_after {
        assert_nothing_written_after_stop(&status);
    }
    check_stop_record(&jet, instance);

    let handles: Vec<SessionHandle> = sessions.iter().map(|&(s, _)| s).collect();
    roll_back_all(&jet, &handles);
    assert_eq!(jet.term(instance), Ok(TermOutcome::Clean));
    assert_eq!(
        jet.instance_status(instance),
        Err(JetError::InvalidParameter)
    );
}

const STOP_RULE: Workload = Workload {
    sessions: 4,
    rounds: 2,
    background_thread: true,
    mutations: Mutations::NONE,
    stopper_max_yields: 0,
};

const STOP_RULE_SEEDS: &[u64] = &[0x5eed_0001, 0x5eed_0002, 0x5eed_0003];

#[test]
fn stop_rule_four_sessions_random() {
    let n = iterations(400);
    must_pass("stop rule", &[Sched::Random], STOP_RULE_SEEDS, n, |sched| {
        let w = STOP_RULE.under(sched);
        move || stop_rule_execution(w)
    });
}

#[test]
fn stop_rule_four_sessions_pct() {
    let n = iterations(400);
    must_pass("stop rule", &[Sched::Pct(3)], STOP_RULE_SEEDS, n, |sched| {
        let w = STOP_RULE.under(sched);
        move || stop_rule_execution(w)
    });
}

// ---------------------------------------------------------------------------------------------
// Teeth: the same property catches the planted stop bugs
// ---------------------------------------------------------------------------------------------

const TEETH_SEED_BASE: u64 = 0x7ee7_0000;

/// One teeth seed: the execution that first failed with `mutant` planted and why, or `None`
/// if the mutant survived `budget` executions.
fn detect(
    shape: Workload,
    mutant: Mutant,
    sched: Sched,
    seed: u64,
    budget: usize,
) -> Option<(usize, String)> {
    let workload = shape.under(sched).with_mutant(mutant);
    match run_shuttle(sched, seed, budget, true, move || {
        stop_rule_execution(workload)
    }) {
        RunOutcome::Failed { at, message } => Some((at, message)),
        RunOutcome::Passed(_) => None,
    }
}

/// The check that fired, without handles and details: the assertion's own message.
fn check_name(message: &str) -> String {
    let message = message.split_once("failed: ").map_or(message, |(_, m)| m);
    message
        .split([':', '\n'])
        .next()
        .unwrap_or(message)
        .trim()
        .to_owned()
}

/// Teeth: the stop-rule property catches `mutant` on every seed of `sched` within the
/// iteration budget, and the real engine passes the same seed for as many executions.
/// Prints executions to first detection (median, max) and which checks fired.
fn teeth(mutant: Mutant, sched: Sched) {
    teeth_on(STOP_RULE, mutant, sched, usize::MAX, 1000);
}

/// [`teeth`] on a workload of another shape, required to catch `mutant` on at least
/// `caught_min` of the seeds (all of them when there are fewer) within `budget` executions
/// each (`JETSIM_SHUTTLE_ITERATIONS` overrides it).
fn teeth_on(shape: Workload, mutant: Mutant, sched: Sched, caught_min: usize, budget: usize) {
    let seeds = env_usize("JETSIM_SHUTTLE_TEETH_SEEDS").unwrap_or(4) as u64;
    let budget = iterations(budget);
    let mut at = Vec::new();
    let mut why: BTreeMap<String, usize> = BTreeMap::new();
    let mut missed = Vec::new();
    for seed in (0..seeds).map(|i| TEETH_SEED_BASE + i) {
        let Some((first, message)) = detect(shape, mutant, sched, seed, budget) else {
            missed.push(seed);
            continue;
        };
        at.push(first);
        *why.entry(check_name(&message)).or_default() += 1;
        // Control: the unmutated engine, same seed, same number of executions.
        match run_shuttle(sched, seed, first, false, {
            let w = shape.under(sched);
            move || stop_rule_execution(w)
        }) {
            RunOutcome::Passed(ran) => assert_eq!(ran, first),
            RunOutcome::Failed { at, message } => {
                panic!("real engine failed {sched:?} seed {seed:#x} at execution {at}: {message}")
            }
        }
    }
    at.sort_unstable();
    eprintln!(
        "{mutant:?} under {sched:?}: caught on {}/{seeds} seeds within {budget} executions; \
         to first detection: median {:?}, max {:?}; all {at:?}; checks {why:?}",
        at.len(),
        at.get(at.len() / 2),
        at.last(),
    );
    assert!(
        at.len() >= caught_min.min(seeds as usize),
        "{mutant:?} survived {sched:?} seeds {missed:#x?} ({budget} executions each; \
         {caught_min} of {seeds} must catch it)"
    );
}

/// The stop writing its pages beside calls makes it longer, so a call left running finishes
/// before it returns more often: random catches it on every seed within 2,000 executions
/// (the last at 1,062; within 1,000 before).
#[test]
fn stop_flag_last_is_caught_random() {
    teeth_on(
        STOP_RULE,
        Mutant::StopFlagLast,
        Sched::Random,
        usize::MAX,
        2000,
    );
}

#[test]
fn stop_flag_last_is_caught_pct() {
    teeth(Mutant::StopFlagLast, Sched::Pct(3));
}

/// Admission is lock-free, so the check-then-act window is the caller's one step between its
/// look at the phase (under the gate's mutex) and its count, and since the stop writes its
/// pages beside the calls its gate still admits, a call admitted in that window is seen only
/// if it is still running when the stop returns: while the stop held the exclusive latch
/// for its whole flush, such a call waited for it and always ran after. Uniform random
/// choices among the sessions, the stopper and the background thread no longer catch it in
/// these small shapes (0 of 4 seeds within 20,000 executions with two sessions of three
/// rounds; 2 of 4 within 4,000 before); PCT, whose priorities hold the caller still while the
/// stopper runs to its return, catches it on every seed within a few hundred, and the
/// campaign's mix in 24 of 2,000 seeds.
#[test]
fn check_then_act_gate_is_caught_pct() {
    teeth(Mutant::CheckThenActGate, Sched::Pct(3));
}

// ---------------------------------------------------------------------------------------------
// Online defrag on the background thread
// ---------------------------------------------------------------------------------------------

/// Executions (over a run) in which the background defrag had freed pages before the stop
/// returned: coverage that stops landed while defrag was doing work, not only before it.
static DEFRAG_RAN_BEFORE_STOP: AtomicUsize = AtomicUsize::new(0);

/// Deletes records `k{half*24}`..`k{half*24+21}` in one transaction, then moves and closes.
fn delete_half(
    jet: &SimJet,
    sesid: SessionHandle,
    dbid: DatabaseHandle,
    rec: &mut Recorder,
    half: u32,
) {
    let Ok(table) = rec.call(JetCall::OpenTable, || jet.open_table(sesid, dbid, TABLE)) else {
        return;
    };
    if rec
        .call(JetCall::BeginTransaction, || jet.begin_transaction(sesid))
        .is_ok()
    {
        for i in (half * 24)..(half * 24 + 22) {
            let key = format!("k{i:03}");
            let sought = rec.call(JetCall::Seek, || {
                jet.seek(sesid, table, key.as_bytes(), SeekMode::Equal)
            });
            if sought.is_err()
                || rec
                    .call(JetCall::Delete, || jet.delete(sesid, table))
                    .is_err()
            {
                break;
            }
        }
        let _ = rec.call(JetCall::CommitTransaction, || jet.commit_transaction(sesid));
    }
    let _ = rec.call(JetCall::Move, || {
        jet.move_cursor(sesid, table, MoveTo::First)
    });
    let _ = rec.call(JetCall::CloseTable, || jet.close_table(sesid, table));
}

fn defrag_execution(stopper_max_yields: u32) {
    let jet = Arc::new(SimJet::new(Environment::in_memory()));
    let instance = jet
        .create_instance_with("defrag", InstanceOptions::default())
        .unwrap();
    jet.set_system_parameter(instance, SystemParameter::OnlineDefrag, 1)
        .unwrap();
    jet.init(instance).unwrap();
    let loader = jet.begin_session(instance).unwrap();
    let dbid = jet.create_database(loader, DB).unwrap();
    let table = jet.create_table(loader, dbid, TABLE).unwrap();
    // Enough records for several leaves, so deleting most of them leaves pages to merge.
    jet.begin_transaction(loader).unwrap();
    for i in 0..48u32 {
        jet.insert(loader, table, format!("k{i:03}").as_bytes(), &[b'v'; 200])
            .unwrap();
    }
    jet.commit_transaction(loader).unwrap();
    jet.close_table(loader, table).unwrap();

    let other = jet.begin_session(instance).unwrap();
    let other_db = jet.open_database(other, DB).unwrap();
    let sessions = [(loader, dbid), (other, other_db)];

    let seq = Arc::new(AtomicU64::new(0));
    // Two deleters, each removing most of its half of the records in one transaction.
    let deleters = spawn_recorded(&jet, &seq, &sessions, |jet, sesid, dbid, rec, half| {
        delete_half(jet, sesid, dbid, rec, half as u32)
    });
    let stopper = spawn_stopper(&jet, &seq, instance, stopper_max_yields);
    let calls: Vec<CallRecord> = deleters
        .into_iter()
        .flat_map(|h| h.join().expect("deleter panicked"))
        .collect();
    let stop = stopper.join().expect("stopper panicked");
    check_stop_rule(&stop, &calls, stop.invoked);
    let at_return = stop.status_at_return.clone().expect("stop succeeded");
    assert_eq!(
        at_return.defrag,
        DefragStatus::Parked,
        "defrag not parked at return"
    );

    check_no_gated_effect_since(
        stop.observed_at_return.as_ref().expect("stop succeeded"),
        &jet.observe(instance).unwrap(),
    );
    let status = jet.instance_status(instance).unwrap();
    assert_eq!(status.defrag, DefragStatus::Parked);
    // A pass still active when the stop returned would free pages, and dirty them after the
    // quiesce (nothing here rolls back before these checks, so nothing else writes).
    assert_eq!(
        status.defrag_pages_freed, at_return.defrag_pages_freed,
        "defrag freed pages after the stop returned"
    );
    assert_nothing_written_after_stop(&status);
    check_stop_record(&jet, instance);
    if at_return.defrag_pages_freed > 0 {
        DEFRAG_RAN_BEFORE_STOP.fetch_add(1, StdOrdering::Relaxed);
    }
    roll_back_all(&jet, &[loader, other]);
    assert_eq!(jet.term(instance), Ok(TermOutcome::Clean));
}

#[test]
fn stop_parks_online_defrag_on_the_background_thread() {
    let n = iterations(60);
    must_pass(
        "defrag",
        &[Sched::Random, Sched::Pct(3)],
        &[0xdef0_0001],
        n,
        |sched| move || defrag_execution(sched.stopper_max_yields()),
    );
    let covered = DEFRAG_RAN_BEFORE_STOP.load(StdOrdering::Relaxed);
    eprintln!(
        "defrag: {covered} of {} executions freed pages before the stop",
        2 * n
    );
    assert!(
        covered > 0,
        "defrag never ran before the stop: the race was not exercised"
    );
}

// ---------------------------------------------------------------------------------------------
// Stop racing term, stop racing stop, stop before init
// ---------------------------------------------------------------------------------------------

/// Outcomes of the stop in `stop_racing_term`, over all its executions.
static STOP_VS_TERM: StdMutex<BTreeMap<String, usize>> = StdMutex::new(BTreeMap::new());

fn stop_racing_term_execution() {
    let jet = Arc::new(SimJet::new(Environment::in_memory()));
    let instance = jet
        .create_instance_with("race", InstanceOptions::default())
        .unwrap();
    jet.init(instance).unwrap();
    let sesid = jet.begin_session(instance).unwrap();
    let dbid = jet.create_database(sesid, DB).unwrap();
    let table = jet.create_table(sesid, dbid, TABLE).unwrap();
    jet.close_table(sesid, table).unwrap();

    let seq = Arc::new(AtomicU64::new(0));
    // A session doing calls outside transactions, so term never meets an open transaction.
    let worker = {
        let (jet, seq) = (Arc::clone(&jet), Arc::clone(&seq));
        shuttle::thread::spawn(move || {
            let mut rec = Recorder::new(0, &seq);
            for _ in 0..2 {
                if let Ok(t) = rec.call(JetCall::OpenTable, || jet.open_table(sesid, dbid, TABLE)) {
                    let _ = rec.call(JetCall::Move, || jet.move_cursor(sesid, t, MoveTo::First));
                    let _ = rec.call(JetCall::CloseTable, || jet.close_table(sesid, t));
                }
                let _ = rec.call(JetCall::GetSessionInfo, || jet.get_session_info(sesid));
            }
            rec.log
        })
    };
    let stopper = {
        let (jet, seq) = (Arc::clone(&jet), Arc::clone(&seq));
        shuttle::thread::spawn(move || {
            let invoked = seq.fetch_add(1, Ordering::SeqCst);
            let result = jet.stop_service_instance(instance);
            let returned = seq.fetch_add(1, Ordering::SeqCst);
            (invoked, returned, result)
        })
    };
    let terminator = {
        let jet = Arc::clone(&jet);
        shuttle::thread::spawn(move || jet.term(instance))
    };
    let calls = worker.join().unwrap();
    let (_, stop_returned, stop) = stopper.join().unwrap();
    let term = terminator.join().unwrap();

    assert_eq!(
        term,
        Ok(TermOutcome::Clean),
        "term must win or wait, never fail"
    );
    assert!(
        matches!(
            stop,
            Ok(()) | Err(JetError::InvalidParameter) | Err(JetError::TermInProgress)
        ),
        "stop racing term: {stop:?}"
    );
    for c in &calls {
        // Once the instance is going or gone, calls fail cleanly; never a stop error on an
        // allowlisted call, and no gated call admitted after a successful stop.
        if let Err(e) = c.result {
            assert!(
                matches!(
                    e,
                    JetError::ClientRequestToStopJetService
                        | JetError::TermInProgress
                        | JetError::InvalidSesid
                        | JetError::InvalidTableId
                        | JetError::NoCurrentRecord
                ),
                "unexpected error {c:?}"
            );
            if JetCall::ALLOWED_AFTER_STOP.contains(&c.call) {
                assert_ne!(e, JetError::ClientRequestToStopJetService, "{c:?}");
            }
        }
        if stop.is_ok() && gated(c.call) && c.invoked > stop_returned {
            assert!(
                c.result.is_err(),
                "gated call admitted after the stop returned: {c:?}"
            );
        }
    }
    assert_eq!(
        jet.instance_status(instance),
        Err(JetError::InvalidParameter)
    );
    assert_eq!(
        jet.stop_service_instance(instance),
        Err(JetError::InvalidParameter)
    );
    assert_eq!(jet.term(instance), Err(JetError::InvalidParameter));
    *STOP_VS_TERM
        .lock()
        .unwrap()
        .entry(format!("{stop:?}"))
        .or_default() += 1;
}

#[test]
fn stop_racing_term() {
    let n = iterations(200);
    must_pass(
        "stop vs term",
        &[Sched::Random, Sched::Pct(2)],
        &[0x7e12_0001],
        n,
        |_| stop_racing_term_execution,
    );
    let outcomes = STOP_VS_TERM.lock().unwrap().clone();
    eprintln!("stop racing term, stop outcomes: {outcomes:?}");
    assert!(
        outcomes.contains_key("Ok(())"),
        "stop never won: {outcomes:?}"
    );
    assert!(outcomes.len() > 1, "stop never lost to term: {outcomes:?}");
}

fn stop_racing_stop_execution(max_yields: u32) {
    let jet = Arc::new(SimJet::new(Environment::in_memory()));
    let instance = jet
        .create_instance_with("twostops", InstanceOptions::default())
        .unwrap();
    jet.init(instance).unwrap();
    let (first, first_db) = first_session_with_table(&jet, instance);
    let second = jet.begin_session(instance).unwrap();
    let second_db = jet.open_database(second, DB).unwrap();
    let sessions = [(first, first_db), (second, second_db)];

    let seq = Arc::new(AtomicU64::new(0));
    let workers = spawn_recorded(&jet, &seq, &sessions, |jet, sesid, dbid, rec, _| {
        session_worker(jet, sesid, dbid, rec, 2)
    });
    let stoppers: Vec<_> = (0..2)
        .map(|_| spawn_stopper(&jet, &seq, instance, max_yields))
        .collect();
    let calls: Vec<CallRecord> = workers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let stops: Vec<StopSeen> = stoppers.into_iter().map(|h| h.join().unwrap()).collect();
    // Both succeed, and each holds the whole stop rule from its own return on: a second stop
    // does not return while the first is still draining or preparing.
    let first_invoked = stops.iter().map(|s| s.invoked).min().expect("two stops");
    let now = jet.observe(instance).unwrap();
    for stop in &stops {
        check_stop_rule(stop, &calls, first_invoked);
        check_no_gated_effect_since(stop.observed_at_return.as_ref().expect("succeeded"), &now);
    }
    let status = jet.instance_status(instance).unwrap();
    assert_eq!(status.phase, Phase::Stopped);
    assert_eq!(status.defrag, DefragStatus::Parked);
    check_stop_record(&jet, instance);
    roll_back_all(&jet, &[first, second]);
    assert_eq!(jet.term(instance), Ok(TermOutcome::Clean));
}

#[test]
fn stop_racing_second_stop() {
    let n = iterations(150);
    must_pass(
        "stop vs stop",
        &[Sched::Random, Sched::Pct(3)],
        &[0x5705_0001],
        n,
        |sched| move || stop_racing_stop_execution(sched.stopper_max_yields()),
    );
}

/// Stops of every form on a created-but-never-initialized instance, racing each other and a
/// parameter read: all refused with InvalidParameter, nothing observable changes, and the
/// instance still initializes, stops and terminates afterwards.
fn stop_before_init_execution(mutations: Mutations) {
    let jet = Arc::new(SimJet::new(Environment::in_memory()));
    let instance = jet
        .create_instance_with(
            "uninit",
            InstanceOptions {
                background_thread: true,
                mutations,
            },
        )
        .unwrap();
    let before = jet.observe(instance).unwrap();
    let grbits = [
        stop_grbit::ALL,
        stop_grbit::BACKGROUND_USER_TASKS | stop_grbit::QUIESCE_CACHES,
        stop_grbit::RESUME,
    ];
    let stoppers: Vec<_> = grbits
        .iter()
        .map(|&grbit| {
            let jet = Arc::clone(&jet);
            shuttle::thread::spawn(move || (grbit, jet.stop_service_instance2(instance, grbit)))
        })
        .collect();
    let reader = {
        let jet = Arc::clone(&jet);
        shuttle::thread::spawn(move || {
            jet.get_system_parameter(instance, SystemParameter::OnlineDefrag)
        })
    };
    for h in stoppers {
        let (grbit, result) = h.join().unwrap();
        assert_eq!(
            result,
            Err(JetError::InvalidParameter),
            "stop {grbit:#x} before init"
        );
    }
    assert_eq!(reader.join().unwrap(), Ok(0));
    assert_eq!(
        jet.observe(instance).unwrap(),
        before,
        "a refused stop changed the instance"
    );
    let status = jet.instance_status(instance).unwrap();
    assert_eq!(status.phase, Phase::Created);
    assert_eq!(jet.last_stop_record(instance), Ok(None));
    jet.init(instance).unwrap();
    jet.stop_service_instance(instance).unwrap();
    check_stop_record(&jet, instance);
    assert_eq!(jet.term(instance), Ok(TermOutcome::Clean));
}

#[test]
fn stop_before_init_is_refused_and_changes_nothing() {
    let n = iterations(100);
    must_pass(
        "stop before init",
        &[Sched::Random, Sched::Pct(2)],
        &[0x0417_0001],
        n,
        |_| || stop_before_init_execution(Mutations::NONE),
    );
}

#[test]
fn defrag_stopped_before_validation_is_caught() {
    let mutations = Mutations::NONE.with(Mutant::DefragStoppedBeforeValidation);
    match run_shuttle(
        Sched::Random,
        0x0417_0002,
        iterations(100),
        true,
        move || stop_before_init_execution(mutations),
    ) {
        RunOutcome::Failed { at, message } => {
            assert!(message.contains("changed the instance"), "{message}");
            eprintln!("DefragStoppedBeforeValidation caught at execution {at}");
        }
        RunOutcome::Passed(ran) => {
            panic!("DefragStoppedBeforeValidation not caught in {ran} executions")
        }
    }
}
