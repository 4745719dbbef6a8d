//! The calls a simulated thread makes, in a symbolic form both the engine harness and the
//! reference model understand, and the proptest strategies that generate whole programs.
//!
//! Handles are symbolic: a call that creates a session, an open database or an open table
//! binds a per-thread variable; later calls name the variable ([`Ref::Var`]), a nil handle, or
//! a handle from another instance. The harness maps variables to the engine's real handles,
//! the model to its own objects, so neither depends on handle numbering.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// Variables per kind a thread can bind.
pub const VARS_PER_KIND: u8 = 2;
/// Record keys are `k0`..`k{KEYS-1}`: few, so transactions collide.
pub const KEYS: u8 = 6;
/// Tables created in setup: `t0`, `t1`; `t2` never exists.
pub const TABLES: u8 = 2;

/// A handle argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Ref {
    /// The thread's variable (nil if never bound).
    Var(u8),
    /// ESE's nil handle.
    Nil,
    /// A handle from the other instance: a stale session there, a live database or table.
    Foreign,
    /// The n-th session this thread created, whatever variable it was bound to (used by the
    /// wind-down, so sessions whose variable was rebound are not left with open transactions).
    Created(u8),
    /// The session the next thread (in thread order, wrapping) has bound to this variable.
    /// Resolved by the harness at call time into [`Ref::PeerCreated`] (or [`Ref::Nil`]), and
    /// recorded resolved, so the model sees exactly the session the engine was given.
    Peer(u8),
    /// Thread `thread`'s `n`-th created session.
    PeerCreated { thread: u8, n: u8 },
}

/// An instance handle argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InstanceRef {
    /// The instance under test.
    Main,
    Nil,
    /// Created in setup and never initialized.
    Uninitialized,
    /// Created, initialized and terminated in setup.
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Seek {
    Equal,
    GreaterOrEqual,
    LessOrEqual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Move {
    First,
    Previous,
    Next,
    Last,
}

/// One Jet call with symbolic arguments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Call {
    BeginSession {
        bind: u8,
    },
    EndSession {
        ses: Ref,
    },
    SetSessionContext {
        ses: Ref,
        context: u64,
    },
    ResetSessionContext {
        ses: Ref,
    },
    GetSessionInfo {
        ses: Ref,
    },
    OpenDatabase {
        ses: Ref,
        bind: u8,
    },
    CloseDatabase {
        ses: Ref,
        db: Ref,
    },
    AttachDatabase {
        ses: Ref,
    },
    DetachDatabase {
        ses: Ref,
    },
    Defragment {
        ses: Ref,
        db: Ref,
        grbit: u32,
    },
    OpenTable {
        ses: Ref,
        db: Ref,
        table: u8,
        bind: u8,
    },
    CloseTable {
        ses: Ref,
        table: Ref,
    },
    BeginTransaction {
        ses: Ref,
    },
    CommitTransaction {
        ses: Ref,
    },
    Rollback {
        ses: Ref,
    },
    Insert {
        ses: Ref,
        table: Ref,
        key: u8,
        value: u8,
    },
    Replace {
        ses: Ref,
        table: Ref,
        value: u8,
    },
    Delete {
        ses: Ref,
        table: Ref,
    },
    Seek {
        ses: Ref,
        table: Ref,
        key: u8,
        mode: Seek,
    },
    Move {
        ses: Ref,
        table: Ref,
        to: Move,
    },
    Retrieve {
        ses: Ref,
        table: Ref,
    },
    IndexRecordCount {
        ses: Ref,
        table: Ref,
    },
    StopService {
        instance: InstanceRef,
        grbit: u32,
    },
    Term {
        instance: InstanceRef,
        grbit: u32,
    },
}

impl Call {
    /// The session argument, for the calls that take one (all but begin_session, stop and
    /// term). The one list of which field that is: the harness and the model both use it.
    pub fn session(&self) -> Option<Ref> {
        let mut call = self.clone();
        call.session_mut().map(|ses| *ses)
    }

    /// [`Self::session`], mutable (the harness resolves [`Ref::Peer`] through it).
    pub fn session_mut(&mut self) -> Option<&mut Ref> {
        match self {
            Call::EndSession { ses }
            | Call::SetSessionContext { ses, .. }
            | Call::ResetSessionContext { ses }
            | Call::GetSessionInfo { ses }
            | Call::OpenDatabase { ses, .. }
            | Call::CloseDatabase { ses, .. }
            | Call::AttachDatabase { ses }
            | Call::DetachDatabase { ses }
            | Call::Defragment { ses, .. }
            | Call::OpenTable { ses, .. }
            | Call::CloseTable { ses, .. }
            | Call::BeginTransaction { ses }
            | Call::CommitTransaction { ses }
            | Call::Rollback { ses }
            | Call::Insert { ses, .. }
            | Call::Replace { ses, .. }
            | Call::Delete { ses, .. }
            | Call::Seek { ses, .. }
            | Call::Move { ses, .. }
            | Call::Retrieve { ses, .. }
            | Call::IndexRecordCount { ses, .. } => Some(ses),
            Call::BeginSession { .. } | Call::StopService { .. } | Call::Term { .. } => None,
        }
    }

    /// The engine's name for this call (for the allowlist and reports).
    pub fn jet_call(&self) -> jetsim_engine::JetCall {
        use jetsim_engine::JetCall as J;
        match self {
            Call::BeginSession { .. } => J::BeginSession,
            Call::EndSession { .. } => J::EndSession,
            Call::SetSessionContext { .. } => J::SetSessionContext,
            Call::ResetSessionContext { .. } => J::ResetSessionContext,
            Call::GetSessionInfo { .. } => J::GetSessionInfo,
            Call::OpenDatabase { .. } => J::OpenDatabase,
            Call::CloseDatabase { .. } => J::CloseDatabase,
            Call::AttachDatabase { .. } => J::AttachDatabase,
            Call::DetachDatabase { .. } => J::DetachDatabase,
            Call::Defragment { .. } => J::Defragment,
            Call::OpenTable { .. } => J::OpenTable,
            Call::CloseTable { .. } => J::CloseTable,
            Call::BeginTransaction { .. } => J::BeginTransaction,
            Call::CommitTransaction { .. } => J::CommitTransaction,
            Call::Rollback { .. } => J::Rollback,
            Call::Insert { .. } => J::Insert,
            Call::Replace { .. } => J::Replace,
            Call::Delete { .. } => J::Delete,
            Call::Seek { .. } => J::Seek,
            Call::Move { .. } => J::Move,
            Call::Retrieve { .. } => J::Retrieve,
            Call::IndexRecordCount { .. } => J::IndexRecordCount,
            Call::StopService { .. } => J::StopServiceInstance,
            Call::Term { .. } => J::Term,
        }
    }

    /// Refused once a full stop has begun: the reference model's own allowlist decides
    /// ([`crate::model::is_gated`]), never the engine's table.
    pub fn is_gated(&self) -> bool {
        crate::model::is_gated(self)
    }

    /// A full, successful-if-valid stop of the main instance.
    pub fn is_full_stop_of_main(&self) -> bool {
        matches!(
            self,
            Call::StopService {
                instance: InstanceRef::Main,
                grbit: 0
            }
        )
    }
}

/// Record key bytes for key number `key`.
pub fn key_bytes(key: u8) -> Vec<u8> {
    vec![b'k', b'0' + key]
}

/// Record value bytes for value number `value`.
pub fn value_bytes(value: u8) -> Vec<u8> {
    format!("v{value}").into_bytes()
}

/// Table name for table number `table`.
pub fn table_name(table: u8) -> String {
    format!("t{table}")
}

/// What the simulated threads run, plus where the stop goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// One program per thread.
    pub threads: Vec<Vec<Call>>,
}

impl Workload {
    pub fn call_count(&self) -> usize {
        self.threads.iter().map(Vec::len).sum()
    }
}

/// Shape of the generated workload (drawn from the seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadShape {
    pub threads: usize,
    pub calls_per_thread_max: usize,
    /// How the stop is placed: see [`StopPlan`].
    pub stop_plan: StopPlan,
    /// Mix whole transactions on the warm-up's session and table (begin, one to three
    /// writes, commit) into the programs: runs with disk faults need acknowledged commits for
    /// a crash to lose. Random calls alone rarely line up into one.
    #[serde(default)]
    pub committed_writes: bool,
}

/// Where and how the stop thread calls the stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopPlan {
    /// One full stop.
    Once,
    /// Two full stops.
    Twice,
    /// A stop on a bad handle first, then a real one.
    BadHandleFirst,
    /// A stop on the never-initialized instance, then a real one.
    UninitializedFirst,
    /// A stop, and another thread terms the instance.
    RacingTerm,
    /// `stop_service_instance2` with a partial grbit (and maybe resume), then a full stop.
    PartialThenFull,
}

fn ses() -> impl Strategy<Value = Ref> {
    prop_oneof![
        12 => (0..VARS_PER_KIND).prop_map(Ref::Var),
        1 => Just(Ref::Nil),
        1 => Just(Ref::Foreign),
        2 => (0..VARS_PER_KIND).prop_map(Ref::Peer),
    ]
}

fn any_ref() -> impl Strategy<Value = Ref> {
    prop_oneof![12 => (0..VARS_PER_KIND).prop_map(Ref::Var), 1 => Just(Ref::Nil), 1 => Just(Ref::Foreign)]
}

/// A call a worker thread makes (no stop, no term).
pub fn worker_call() -> impl Strategy<Value = Call> {
    let bind = 0..VARS_PER_KIND;
    prop_oneof![
        4 => bind.clone().prop_map(|bind| Call::BeginSession { bind }),
        2 => ses().prop_map(|ses| Call::EndSession { ses }),
        2 => (ses(), prop_oneof![1 => Just(0u64), 3 => Just(7), 3 => Just(8)]).prop_map(|(ses, context)| Call::SetSessionContext { ses, context }),
        1 => ses().prop_map(|ses| Call::ResetSessionContext { ses }),
        1 => ses().prop_map(|ses| Call::GetSessionInfo { ses }),
        3 => (ses(), bind.clone()).prop_map(|(ses, bind)| Call::OpenDatabase { ses, bind }),
        1 => (ses(), any_ref()).prop_map(|(ses, db)| Call::CloseDatabase { ses, db }),
        1 => ses().prop_map(|ses| Call::AttachDatabase { ses }),
        1 => ses().prop_map(|ses| Call::DetachDatabase { ses }),
        1 => (ses(), any_ref(), prop_oneof![Just(1u32), Just(2), Just(4)]).prop_map(|(ses, db, grbit)| Call::Defragment { ses, db, grbit }),
        4 => (ses(), any_ref(), 0..=TABLES, bind.clone()).prop_map(|(ses, db, table, bind)| Call::OpenTable { ses, db, table, bind }),
        1 => (ses(), any_ref()).prop_map(|(ses, table)| Call::CloseTable { ses, table }),
        5 => ses().prop_map(|ses| Call::BeginTransaction { ses }),
        3 => ses().prop_map(|ses| Call::CommitTransaction { ses }),
        2 => ses().prop_map(|ses| Call::Rollback { ses }),
        6 => (ses(), any_ref(), 0..KEYS, 0u8..10).prop_map(|(ses, table, key, value)| Call::Insert { ses, table, key, value }),
        2 => (ses(), any_ref(), 0u8..10).prop_map(|(ses, table, value)| Call::Replace { ses, table, value }),
        2 => (ses(), any_ref()).prop_map(|(ses, table)| Call::Delete { ses, table }),
        3 => (ses(), any_ref(), 0..KEYS, prop_oneof![Just(Seek::Equal), Just(Seek::GreaterOrEqual), Just(Seek::LessOrEqual)])
            .prop_map(|(ses, table, key, mode)| Call::Seek { ses, table, key, mode }),
        3 => (ses(), any_ref(), prop_oneof![Just(Move::First), Just(Move::Next), Just(Move::Previous), Just(Move::Last)])
            .prop_map(|(ses, table, to)| Call::Move { ses, table, to }),
        2 => (ses(), any_ref()).prop_map(|(ses, table)| Call::Retrieve { ses, table }),
        1 => (ses(), any_ref()).prop_map(|(ses, table)| Call::IndexRecordCount { ses, table }),
    ]
}

/// A transaction on the warm-up's session and table that commits one to three writes.
fn committed_transaction() -> impl Strategy<Value = Vec<Call>> {
    let (ses, table) = (Ref::Var(0), Ref::Var(0));
    let write = prop_oneof![
        3 => (0..KEYS, 0u8..10).prop_map(move |(key, value)| Call::Insert { ses, table, key, value }),
        1 => (0u8..10).prop_map(move |value| Call::Replace { ses, table, value }),
        1 => Just(Call::Delete { ses, table }),
    ];
    proptest::collection::vec(write, 1..=3).prop_map(move |writes| {
        let mut calls = vec![Call::BeginTransaction { ses }];
        calls.extend(writes);
        calls.push(Call::CommitTransaction { ses });
        calls
    })
}

/// A thread's calls after its warm-up: random calls, and with `committed_writes` whole
/// committed transactions among them.
fn program_body(shape: WorkloadShape) -> BoxedStrategy<Vec<Call>> {
    let calls = 0..=shape.calls_per_thread_max;
    if !shape.committed_writes {
        return proptest::collection::vec(worker_call(), calls).boxed();
    }
    let piece = prop_oneof![
        4 => worker_call().prop_map(|call| vec![call]),
        1 => committed_transaction(),
    ];
    proptest::collection::vec(piece, calls)
        .prop_map(|pieces| pieces.into_iter().flatten().collect())
        .boxed()
}

/// A realistic prefix: begin a session, open the database and a table, so that most runs get
/// past handle errors into transactions.
fn warm_up(table: u8) -> Vec<Call> {
    vec![
        Call::BeginSession { bind: 0 },
        Call::OpenDatabase {
            ses: Ref::Var(0),
            bind: 0,
        },
        Call::OpenTable {
            ses: Ref::Var(0),
            db: Ref::Var(0),
            table,
            bind: 0,
        },
    ]
}

/// The calls of the thread that stops the instance, given the plan.
fn stop_calls(plan: StopPlan, partial_grbit: u32, resume: bool) -> Vec<Call> {
    let full = Call::StopService {
        instance: InstanceRef::Main,
        grbit: 0,
    };
    match plan {
        StopPlan::Once | StopPlan::RacingTerm => vec![full],
        StopPlan::Twice => vec![full.clone(), full],
        StopPlan::BadHandleFirst => vec![
            Call::StopService {
                instance: InstanceRef::Nil,
                grbit: 0,
            },
            Call::StopService {
                instance: InstanceRef::Terminated,
                grbit: 0,
            },
            Call::StopService {
                instance: InstanceRef::Main,
                grbit: 0x10,
            },
            // StopAndEmitLog with another bit: InvalidGrbit, nothing changed.
            Call::StopService {
                instance: InstanceRef::Main,
                grbit: 0x8 | 0x2,
            },
            full,
        ],
        StopPlan::UninitializedFirst => vec![
            Call::StopService {
                instance: InstanceRef::Uninitialized,
                grbit: 0,
            },
            full,
        ],
        StopPlan::PartialThenFull => {
            let mut calls = vec![Call::StopService {
                instance: InstanceRef::Main,
                grbit: partial_grbit,
            }];
            if resume {
                calls.push(Call::StopService {
                    instance: InstanceRef::Main,
                    grbit: 0x8000_0000,
                });
            }
            calls.push(full);
            calls
        }
    }
}

/// Generates a whole workload of the given shape: worker programs (a warm-up then random
/// calls), the stop calls inserted at a random point of one thread's program, and for
/// `RacingTerm` a term at a random point of another's.
pub fn workload(shape: WorkloadShape) -> impl Strategy<Value = Workload> {
    assert!(shape.threads >= 2);
    let programs = proptest::collection::vec((0..TABLES, program_body(shape)), shape.threads);
    let placement = (
        0..shape.threads,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        // Partial stops, and JET_bitStopServiceStopAndEmitLog (valid only on its own).
        prop_oneof![Just(0x2u32), Just(0x4), Just(0x6), Just(0x8)],
        any::<bool>(),
    );
    (programs, placement).prop_map(
        move |(programs, (stopper, stop_at, term_at, partial_grbit, resume))| {
            let mut threads: Vec<Vec<Call>> = programs
                .into_iter()
                .map(|(table, body)| {
                    let mut program = warm_up(table);
                    program.extend(body);
                    program
                })
                .collect();
            let stopper_program = &mut threads[stopper];
            let at = stop_at.index(stopper_program.len() + 1);
            for (offset, call) in stop_calls(shape.stop_plan, partial_grbit, resume)
                .into_iter()
                .enumerate()
            {
                stopper_program.insert(at + offset, call);
            }
            if shape.stop_plan == StopPlan::RacingTerm {
                let terminator = (stopper + 1) % shape.threads;
                let program = &mut threads[terminator];
                let at = term_at.index(program.len() + 1);
                program.insert(
                    at,
                    Call::Term {
                        instance: InstanceRef::Main,
                        grbit: 0x2,
                    },
                );
            }
            Workload { threads }
        },
    )
}
