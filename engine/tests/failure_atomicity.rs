//! Property: single-threaded call sequences, with valid, stale, foreign, nil and wrong-kind
//! handles mixed in, never panic, and every failed call leaves the instance's observable state
//! exactly as it was. A small model of sessions and transaction levels predicts the results
//! of the transaction calls, and the stop rule is checked after every successful stop.
//!
//! Cases default to 64; `PROPTEST_CASES` raises them. A failure shrinks to a minimal sequence.

mod common;

use common::{start_session, DB};
use jetsim_engine::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Picks a handle from what the run has produced so far, or a bad one.
#[derive(Debug, Clone, Copy)]
enum Pick {
    /// The n-th handle ever produced (modulo): may be live, closed or stale.
    Nth(u8),
    Nil,
    /// A live handle of the same kind from another instance.
    Foreign,
    /// A handle of another kind reinterpreted.
    WrongKind,
}

#[derive(Debug, Clone)]
enum Op {
    BeginSession,
    EndSession(Pick),
    SetContext(Pick, u64),
    ResetContext(Pick),
    BeginTransaction(Pick),
    Commit(Pick),
    Rollback(Pick),
    OpenDatabase(Pick),
    CloseDatabase(Pick, Pick),
    DetachDatabase(Pick),
    AttachDatabase(Pick),
    OpenTable(Pick, Pick, bool),
    CreateTable(Pick, Pick, bool),
    DeleteTable(Pick, Pick, bool),
    CloseTable(Pick, Pick),
    Insert(Pick, Pick, u8),
    Replace(Pick, Pick),
    Delete(Pick, Pick),
    Seek(Pick, Pick, u8),
    Move(Pick, Pick, u8),
    Retrieve(Pick, Pick),
    Count(Pick, Pick),
    Stop(u32),
    SetParameter(u8, u64),
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        8 => any::<u8>().prop_map(Pick::Nth),
        1 => Just(Pick::Nil),
        1 => Just(Pick::Foreign),
        1 => Just(Pick::WrongKind),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let stop_grbits = prop_oneof![
        Just(0u32),
        Just(2),
        Just(4),
        Just(6),
        Just(0x8000_0000),
        Just(1),
        Just(0x40)
    ];
    prop_oneof![
        3 => Just(Op::BeginSession),
        1 => pick().prop_map(Op::EndSession),
        1 => (pick(), prop_oneof![Just(0u64), Just(7), Just(u64::MAX)]).prop_map(|(s, c)| Op::SetContext(s, c)),
        1 => pick().prop_map(Op::ResetContext),
        3 => pick().prop_map(Op::BeginTransaction),
        2 => pick().prop_map(Op::Commit),
        2 => pick().prop_map(Op::Rollback),
        2 => pick().prop_map(Op::OpenDatabase),
        1 => (pick(), pick()).prop_map(|(s, d)| Op::CloseDatabase(s, d)),
        1 => pick().prop_map(Op::DetachDatabase),
        1 => pick().prop_map(Op::AttachDatabase),
        3 => (pick(), pick(), any::<bool>()).prop_map(|(s, d, n)| Op::OpenTable(s, d, n)),
        1 => (pick(), pick(), any::<bool>()).prop_map(|(s, d, n)| Op::CreateTable(s, d, n)),
        1 => (pick(), pick(), any::<bool>()).prop_map(|(s, d, n)| Op::DeleteTable(s, d, n)),
        1 => (pick(), pick()).prop_map(|(s, t)| Op::CloseTable(s, t)),
        5 => (pick(), pick(), 0u8..8).prop_map(|(s, t, k)| Op::Insert(s, t, k)),
        2 => (pick(), pick()).prop_map(|(s, t)| Op::Replace(s, t)),
        2 => (pick(), pick()).prop_map(|(s, t)| Op::Delete(s, t)),
        2 => (pick(), pick(), 0u8..8).prop_map(|(s, t, k)| Op::Seek(s, t, k)),
        2 => (pick(), pick(), 0u8..4).prop_map(|(s, t, m)| Op::Move(s, t, m)),
        1 => (pick(), pick()).prop_map(|(s, t)| Op::Retrieve(s, t)),
        1 => (pick(), pick()).prop_map(|(s, t)| Op::Count(s, t)),
        1 => stop_grbits.prop_map(Op::Stop),
        1 => (0u8..4, prop_oneof![Just(0u64), Just(1), Just(8), Just(1 << 30)]).prop_map(|(p, v)| Op::SetParameter(p, v)),
    ]
}

/// Handles the run has produced, in order, and the other instance's live ones.
struct Pools {
    sessions: Vec<SessionHandle>,
    databases: Vec<DatabaseHandle>,
    tables: Vec<TableHandle>,
    foreign_session: SessionHandle,
    foreign_database: DatabaseHandle,
    foreign_table: TableHandle,
}

/// A handle of one kind as `pick` says: one of `pool`, nil, another instance's, or a handle
/// of another kind.
fn pick_from<H: Copy>(pick: Pick, pool: &[H], nil: H, foreign: H, wrong_kind: H) -> H {
    match pick {
        Pick::Nth(n) if !pool.is_empty() => pool[usize::from(n) % pool.len()],
        Pick::Nth(_) | Pick::Nil => nil,
        Pick::Foreign => foreign,
        Pick::WrongKind => wrong_kind,
    }
}

// One picker per handle kind: each names its pool and what a wrong-kind handle is (the
// handle newtypes share no trait to write it once).
impl Pools {
    fn session(&self, pick: Pick) -> SessionHandle {
        let wrong_kind = SessionHandle(self.tables.first().map_or(1, |t| t.0));
        pick_from(
            pick,
            &self.sessions,
            SessionHandle::NIL,
            self.foreign_session,
            wrong_kind,
        )
    }
    fn database(&self, pick: Pick) -> DatabaseHandle {
        let wrong_kind = DatabaseHandle(self.sessions.first().map_or(1, |s| s.0));
        pick_from(
            pick,
            &self.databases,
            DatabaseHandle::NIL,
            self.foreign_database,
            wrong_kind,
        )
    }
    fn table(&self, pick: Pick) -> TableHandle {
        let wrong_kind = TableHandle(self.databases.first().map_or(1, |d| d.0));
        pick_from(
            pick,
            &self.tables,
            TableHandle::NIL,
            self.foreign_table,
            wrong_kind,
        )
    }
}

/// What the model knows of one session of the main instance.
#[derive(Debug, Clone, Default)]
struct ModelSession {
    alive: bool,
    level: u8,
    context: bool,
}

fn run(ops: &[Op], mutations: Mutations) -> Result<(), TestCaseError> {
    let jet = Jet::<StdRuntime>::new(Environment::in_memory());
    let options = InstanceOptions {
        mutations,
        ..InstanceOptions::manual()
    };
    let instance = jet.create_instance_with("main", options).unwrap();
    jet.init(instance).unwrap();
    let setup = jet.begin_session(instance).unwrap();
    let db = jet.create_database(setup, DB).unwrap();
    jet.create_table(setup, db, "a").unwrap();
    jet.end_session(setup).unwrap();
    let (other, foreign_session) = start_session(&jet, "other");
    let foreign_database = jet
        .create_database(foreign_session, "db/other.edb")
        .unwrap();
    let foreign_table = jet
        .create_table(foreign_session, foreign_database, "a")
        .unwrap();
    let mut pools = Pools {
        sessions: vec![setup],
        databases: vec![db],
        tables: Vec::new(),
        foreign_session,
        foreign_database,
        foreign_table,
    };
    let mut model: BTreeMap<SessionHandle, ModelSession> = BTreeMap::new();
    let mut stopped = false;
    for (step, op) in ops.iter().enumerate() {
        let before = jet.observe(instance).unwrap();
        let (mut new_session, mut new_database, mut new_table) = (None, None, None);
        let session_of = |p: Pick| pools.session(p);
        let result: JetResult<()> = match *op {
            Op::BeginSession => jet.begin_session(instance).map(|s| new_session = Some(s)),
            Op::EndSession(s) => jet.end_session(session_of(s)),
            Op::SetContext(s, c) => jet.set_session_context(session_of(s), c),
            Op::ResetContext(s) => jet.reset_session_context(session_of(s)),
            Op::BeginTransaction(s) => jet.begin_transaction(session_of(s)),
            Op::Commit(s) => jet.commit_transaction(session_of(s)),
            Op::Rollback(s) => jet.rollback(session_of(s)),
            Op::OpenDatabase(s) => jet
                .open_database(session_of(s), DB)
                .map(|d| new_database = Some(d)),
            Op::CloseDatabase(s, d) => jet.close_database(session_of(s), pools.database(d)),
            Op::DetachDatabase(s) => jet.detach_database(session_of(s), DB),
            Op::AttachDatabase(s) => jet.attach_database(session_of(s), DB).map(|_| ()),
            Op::OpenTable(s, d, n) => jet
                .open_table(session_of(s), pools.database(d), if n { "a" } else { "b" })
                .map(|t| new_table = Some(t)),
            Op::CreateTable(s, d, n) => jet
                .create_table(session_of(s), pools.database(d), if n { "a" } else { "b" })
                .map(|t| new_table = Some(t)),
            Op::DeleteTable(s, d, n) => {
                jet.delete_table(session_of(s), pools.database(d), if n { "a" } else { "b" })
            }
            Op::CloseTable(s, t) => jet.close_table(session_of(s), pools.table(t)),
            Op::Insert(s, t, k) => jet.insert(session_of(s), pools.table(t), &[b'k', k], &[k; 40]),
            Op::Replace(s, t) => jet.replace(session_of(s), pools.table(t), b"replaced"),
            Op::Delete(s, t) => jet.delete(session_of(s), pools.table(t)),
            Op::Seek(s, t, k) => jet.seek(
                session_of(s),
                pools.table(t),
                &[b'k', k],
                SeekMode::GreaterOrEqual,
            ),
            Op::Move(s, t, m) => {
                let to =
                    [MoveTo::First, MoveTo::Next, MoveTo::Previous, MoveTo::Last][usize::from(m)];
                jet.move_cursor(session_of(s), pools.table(t), to)
            }
            Op::Retrieve(s, t) => jet.retrieve(session_of(s), pools.table(t)).map(|_| ()),
            Op::Count(s, t) => jet
                .index_record_count(session_of(s), pools.table(t), 0)
                .map(|_| ()),
            Op::Stop(grbit) => jet.stop_service_instance2(instance, grbit),
            Op::SetParameter(p, v) => {
                jet.set_system_parameter(instance, SystemParameter::ALL[usize::from(p)], v)
            }
        };
        if let Some(s) = new_session {
            pools.sessions.push(s);
            model.insert(
                s,
                ModelSession {
                    alive: true,
                    ..Default::default()
                },
            );
        }
        pools.databases.extend(new_database);
        pools.tables.extend(new_table);
        let session_of = |p: Pick| pools.session(p);
        let after = jet.observe(instance).unwrap();
        if result.is_err() {
            prop_assert_eq!(
                &after,
                &before,
                "step {}: {:?} failed with {:?} but changed the instance",
                step,
                op,
                result
            );
        }
        // The model of sessions and levels, for the calls whose outcome it can predict.
        let target = match *op {
            Op::EndSession(s)
            | Op::BeginTransaction(s)
            | Op::Commit(s)
            | Op::Rollback(s)
            | Op::SetContext(s, _)
            | Op::ResetContext(s) => Some(session_of(s)),
            _ => None,
        };
        if let Some(sesid) = target {
            let known = model.get(&sesid).cloned();
            let expected: Option<JetResult<()>> = match (op, known) {
                (_, None) if sesid.parts().is_none() => Some(Err(JetError::InvalidSesid)),
                (_, Some(m)) if !m.alive => None, // stale: gate or handle error, checked by atomicity
                (Op::BeginTransaction(_), Some(m)) if !stopped => Some(if m.level == 7 {
                    Err(JetError::TransTooDeep)
                } else {
                    Ok(())
                }),
                (Op::BeginTransaction(_), Some(_)) => {
                    Some(Err(JetError::ClientRequestToStopJetService))
                }
                (Op::Commit(_), Some(_)) if stopped => {
                    Some(Err(JetError::ClientRequestToStopJetService))
                }
                (Op::Commit(_), Some(m)) => Some(if m.level == 0 {
                    Err(JetError::NotInTransaction)
                } else {
                    Ok(())
                }),
                (Op::Rollback(_), Some(m)) => Some(if m.level == 0 {
                    Err(JetError::NotInTransaction)
                } else {
                    Ok(())
                }),
                (Op::EndSession(_), Some(m)) => Some(if m.context {
                    Err(JetError::SessionInUse)
                } else {
                    Ok(())
                }),
                (Op::ResetContext(_), Some(m)) => Some(if m.context {
                    Ok(())
                } else {
                    Err(JetError::SessionContextNotSetByThisThread)
                }),
                _ => None,
            };
            if let Some(expected) = expected {
                prop_assert_eq!(
                    result,
                    expected,
                    "step {}: {:?} (model: {:?})",
                    step,
                    op,
                    model.get(&sesid)
                );
            }
            if result.is_ok() {
                if let Some(m) = model.get_mut(&sesid) {
                    match op {
                        Op::BeginTransaction(_) => m.level += 1,
                        Op::Commit(_) | Op::Rollback(_) => m.level -= 1,
                        Op::EndSession(_) => *m = ModelSession::default(),
                        Op::SetContext(..) => m.context = true,
                        Op::ResetContext(_) => m.context = false,
                        _ => {}
                    }
                }
            }
        }
        // The stop rule: after a full stop, the phase is Stopped for good and gated calls are
        // refused even with stale or wrong handles of this instance.
        if matches!(op, Op::Stop(0)) && result.is_ok() {
            stopped = true;
        }
        if stopped {
            prop_assert_eq!(after.phase, Phase::Stopped);
            if let Op::Insert(s, _, _) | Op::BeginTransaction(s) = *op {
                if session_of(s)
                    .parts()
                    .is_some_and(|p| p.instance_slot == instance.parts().unwrap().instance_slot)
                {
                    prop_assert_eq!(
                        result,
                        Err(JetError::ClientRequestToStopJetService),
                        "step {}: {:?}",
                        step,
                        op
                    );
                }
            }
        }
    }
    // Whatever happened, the instance can be wound down and terminated.
    let mut everyone = pools.sessions.clone();
    everyone.push(pools.foreign_session);
    for sesid in everyone {
        while jet.rollback(sesid).is_ok() {}
        let _ = jet.reset_session_context(sesid);
    }
    prop_assert_eq!(jet.term(instance), Ok(TermOutcome::Clean));
    prop_assert_eq!(jet.term(other), Ok(TermOutcome::Clean));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn failed_calls_change_nothing(ops in proptest::collection::vec(op(), 1..60)) {
        run(&ops, Mutations::NONE)?;
    }
}

/// Runs the property with `mutant` planted and returns the minimal failing sequence found.
fn find_failure(mutant: Mutant) -> Option<Vec<Op>> {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let config = Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = proptest::collection::vec(op(), 1..60);
    match runner.run(&strategy, |ops| run(&ops, Mutations::NONE.with(mutant))) {
        Ok(()) => None,
        Err(proptest::test_runner::TestError::Fail(_, ops)) => Some(ops),
        Err(other) => panic!("{mutant:?}: {other}"),
    }
}

#[test]
fn the_model_catches_end_session_ignoring_its_context() {
    let minimal = find_failure(Mutant::EndSessionIgnoresContext).expect("planted bug not caught");
    assert!(minimal.len() <= 4, "shrunk to {minimal:?}");
    assert!(minimal.iter().any(|op| matches!(op, Op::EndSession(_))));
}

#[test]
fn the_model_catches_rollback_missing_from_the_allowlist() {
    let minimal = find_failure(Mutant::AllowlistMissingRollback).expect("planted bug not caught");
    assert!(
        minimal.iter().any(|op| matches!(op, Op::Stop(0))),
        "{minimal:?}"
    );
    // Caught either by the model (a rollback after the stop refused) or by the wind-down
    // (rollback refused, so term finds a transaction open): both need a transaction begun.
    assert!(
        minimal
            .iter()
            .any(|op| matches!(op, Op::BeginTransaction(_))),
        "{minimal:?}"
    );
    assert!(minimal.len() <= 4, "shrunk to {minimal:?}");
}
