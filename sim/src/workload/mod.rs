//! The calls a simulated thread makes, in a symbolic form both the engine harness and the
//! reference model understand, and the proptest strategies that generate whole programs.
//!
//! Handles are symbolic: a call that creates a session, an open database or an open table
//! binds a per-thread variable; later calls name the variable ([`Ref::Var`]), a nil handle, or
//! a handle from another instance. The harness maps variables to the engine's real handles,
//! the model to its own objects, so neither depends on handle numbering.
//!
//! The folder holds what else a seed decides before anything runs: [`config`] (the engine
//! parameters, fault mode, scheduler and workload size drawn from the seed) and [`shrink`]
//! (a failing workload made smaller, written as a regression scenario).

pub mod config;
pub mod shrink;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// Variables per kind a thread can bind.
pub const VARS_PER_KIND: u8 = 2;
/// Record keys are `0..KEYS` in most runs: few, so transactions collide. Runs with a wide key
/// range ([`Reach::key_range`]) use up to [`KEY_RANGE_MAX`] keys.
pub const KEYS: u8 = 6;
/// The widest key range a run draws: with long keys and values, enough records for B+trees of
/// three levels.
pub const KEY_RANGE_MAX: u8 = 240;
/// Runs with the widest key range start with about three in four of the keys below this in
/// table `t0` (about 150 records); the keys above are room to grow.
pub const BIG_TABLE_KEYS: u8 = 200;
/// From this key range on, a table may hold more records than `index_record_count` reads in
/// one step under the instance lock, so a count is no longer one atomic read: such runs count
/// only inside the counting session's own transaction (a stable snapshot), and no thread
/// names another's sessions. The engine's step is `RECORD_COUNT_STEP_RECORDS` (16).
pub const WIDE_KEY_RANGE: u8 = 16;
/// Tables created in setup: `t0`, `t1`; `t2` exists only when a run's DDL creates it.
pub const TABLES: u8 = 2;
/// The table DDL creates and deletes (the end state and recovery compare `t0` and `t1`).
pub const DDL_TABLE: u8 = TABLES;

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

impl Seek {
    pub fn engine(self) -> jetsim_engine::SeekMode {
        use jetsim_engine::SeekMode as M;
        match self {
            Seek::Equal => M::Equal,
            Seek::GreaterOrEqual => M::GreaterOrEqual,
            Seek::LessOrEqual => M::LessOrEqual,
        }
    }
}

impl Move {
    pub fn engine(self) -> jetsim_engine::MoveTo {
        use jetsim_engine::MoveTo as M;
        match self {
            Move::First => M::First,
            Move::Previous => M::Previous,
            Move::Next => M::Next,
            Move::Last => M::Last,
        }
    }
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
        /// The run's database file, or a path where there is none ([`attach_missing_files`]).
        /// Left out of the JSON for the run's.
        #[serde(default, skip_serializing_if = "DatabaseFile::is_run")]
        file: DatabaseFile,
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
    /// `JetCreateTable` of table number `table`; the new table is open as `bind`.
    CreateTable {
        ses: Ref,
        db: Ref,
        table: u8,
        bind: u8,
    },
    DeleteTable {
        ses: Ref,
        db: Ref,
        table: u8,
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
        /// `crecMax`: count at most this many (0: no limit). Set by [`limit_record_counts`]
        /// from the call's place in its program, not drawn, so no other draw moves. Left out
        /// of the JSON when 0.
        #[serde(default, skip_serializing_if = "is_zero")]
        max_records: u64,
    },
    StopService {
        instance: InstanceRef,
        grbit: u32,
    },
    Term {
        instance: InstanceRef,
        grbit: u32,
    },
    GetSystemParameter {
        instance: InstanceRef,
        parameter: Parameter,
    },
    SetSystemParameter {
        instance: InstanceRef,
        parameter: Parameter,
        value: u64,
    },
}

/// Which file a `JetAttachDatabase` names.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum DatabaseFile {
    /// The run's database.
    #[default]
    Run,
    /// A path with no file: the attach fails with `JET_errFileNotFound`, after it claimed the
    /// path for its instance, so the claim must be given back.
    Missing,
}

impl DatabaseFile {
    fn is_run(&self) -> bool {
        *self == DatabaseFile::Run
    }
}

/// The system parameters the workload reads and sets (`JET_param*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Parameter {
    CheckpointDepthMaxBytes,
    CacheSizePages,
    VersionStoreMaxVersions,
    OnlineDefrag,
}

impl Parameter {
    pub fn engine(self) -> jetsim_engine::SystemParameter {
        use jetsim_engine::SystemParameter as P;
        match self {
            Parameter::CheckpointDepthMaxBytes => P::CheckpointDepthMaxBytes,
            Parameter::CacheSizePages => P::CacheSizePages,
            Parameter::VersionStoreMaxVersions => P::VersionStoreMaxVersions,
            Parameter::OnlineDefrag => P::OnlineDefrag,
        }
    }
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
            | Call::AttachDatabase { ses, .. }
            | Call::DetachDatabase { ses }
            | Call::Defragment { ses, .. }
            | Call::OpenTable { ses, .. }
            | Call::CloseTable { ses, .. }
            | Call::CreateTable { ses, .. }
            | Call::DeleteTable { ses, .. }
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
            Call::BeginSession { .. }
            | Call::StopService { .. }
            | Call::Term { .. }
            | Call::GetSystemParameter { .. }
            | Call::SetSystemParameter { .. } => None,
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
            Call::CreateTable { .. } => J::CreateTable,
            Call::DeleteTable { .. } => J::DeleteTable,
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
            Call::GetSystemParameter { .. } => J::GetSystemParameter,
            Call::SetSystemParameter { .. } => J::SetSystemParameter,
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

/// Record key bytes for key number `key`, in number order: `k0`..`k9`, then `k9` and one byte
/// `key - 9`; keys of wide ranges then take filler up to 100 to 127 bytes in all: long keys
/// make internal nodes hold about 16 children, so trees reach three levels with a hundred
/// records and internal nodes split.
/// [`KEY_AT_MAX`] and [`KEY_TOO_LONG`] are the size edges: the longest key there may be, and
/// one byte more.
pub fn key_bytes(key: u8) -> Vec<u8> {
    let mut bytes = match key {
        0..=9 => vec![b'k', b'0' + key],
        _ => vec![b'k', b'9', key - 9],
    };
    match key {
        KEY_AT_MAX => bytes.resize(crate::model::KEY_BYTES_MAX, b'-'),
        KEY_TOO_LONG => bytes.resize(crate::model::KEY_BYTES_MAX + 1, b'-'),
        _ if key >= WIDE_KEY_RANGE => bytes.resize(100 + usize::from(key) * 29 % 28, b'-'),
        _ => {}
    }
    bytes
}

/// Key number whose bytes are exactly the longest key a record may have: accepted. Above
/// every key range a run draws ([`KEY_RANGE_MAX`]), so only [`put_sizes_at_edges`] writes
/// it, and it sorts after every other key.
pub const KEY_AT_MAX: u8 = 253;
/// Key number one byte longer than the longest key: an insert or seek with it is refused with
/// `JET_errRecordTooBig`.
pub const KEY_TOO_LONG: u8 = 254;
const _: () = assert!(KEY_RANGE_MAX < KEY_AT_MAX && KEY_AT_MAX < KEY_TOO_LONG);
/// Value number whose bytes are exactly the longest value a record may have: accepted (a
/// run with large values draws it too).
pub const VALUE_AT_MAX: u8 = 253;
/// Value number one byte longer than the longest value: a write with it is refused.
pub const VALUE_TOO_LONG: u8 = 254;

/// Value numbers whose bytes are 200 to 499 bytes long, and [`VALUE_AT_MAX`]
/// ([`value_bytes`]); [`VALUE_TOO_LONG`] is left to [`put_sizes_at_edges`], so the records
/// set up and the long transactions' inserts are all accepted.
pub const LARGE_VALUES: std::ops::Range<u8> = 10..VALUE_TOO_LONG;

/// Record value bytes for value number `value`: `v` and the number, then, for values from 10
/// on, 200 to 499 filler bytes (up to a quarter page), so leaves hold a few records and
/// split often; [`VALUE_AT_MAX`] and [`VALUE_TOO_LONG`] fill to the longest value there may
/// be, and one byte more.
pub fn value_bytes(value: u8) -> Vec<u8> {
    let mut bytes = format!("v{value}").into_bytes();
    match value {
        VALUE_AT_MAX => bytes.resize(crate::model::VALUE_BYTES_MAX, b'.'),
        VALUE_TOO_LONG => bytes.resize(crate::model::VALUE_BYTES_MAX + 1, b'.'),
        10.. => bytes.resize(bytes.len() + 200 + usize::from(value - 10) * 37 % 300, b'.'),
        _ => {}
    }
    bytes
}

/// The key and value numbers back from record bytes ([`key_bytes`], [`value_bytes`]);
/// `u8::MAX` for bytes that are not one.
pub fn record_numbers(key: &[u8], value: &[u8]) -> (u8, u8) {
    let key = match key {
        [b'k', digit @ b'0'..=b'9'] => digit - b'0',
        [b'k', b'9', above, ..] => above.saturating_add(9),
        _ => u8::MAX,
    };
    let number = |bytes: &[u8]| {
        let digits: Vec<u8> = bytes
            .iter()
            .skip(1)
            .copied()
            .take_while(u8::is_ascii_digit)
            .collect();
        std::str::from_utf8(&digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(u8::MAX)
    };
    (key, number(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_bytes_sort_as_their_numbers_and_decode_back() {
        for key in 0..u8::MAX {
            assert!(key_bytes(key) < key_bytes(key + 1), "{key}");
            for value in [0, 9, 10, 200, 254] {
                assert_eq!(
                    record_numbers(&key_bytes(key), &value_bytes(value)),
                    (key, value)
                );
            }
        }
        for value in 0..VALUE_TOO_LONG {
            assert!(value_bytes(value).len() <= jetsim_engine::storage::MAX_VALUE_BYTES);
        }
        for key in 0..KEY_TOO_LONG {
            assert!(key_bytes(key).len() <= jetsim_engine::storage::MAX_KEY_BYTES);
        }
    }

    /// The model's limits are the engine's documented ones, and the edges sit on them.
    #[test]
    fn size_edges_sit_on_the_documented_limits() {
        use jetsim_engine::storage::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
        assert_eq!(crate::model::KEY_BYTES_MAX, MAX_KEY_BYTES);
        assert_eq!(crate::model::VALUE_BYTES_MAX, MAX_VALUE_BYTES);
        assert_eq!(key_bytes(KEY_AT_MAX).len(), MAX_KEY_BYTES);
        assert_eq!(key_bytes(KEY_TOO_LONG).len(), MAX_KEY_BYTES + 1);
        assert_eq!(value_bytes(VALUE_AT_MAX).len(), MAX_VALUE_BYTES);
        assert_eq!(value_bytes(VALUE_TOO_LONG).len(), MAX_VALUE_BYTES + 1);
    }

    #[test]
    fn size_edges_reach_inserts_replaces_and_seeks() {
        let ses = Ref::Var(0);
        let table = Ref::Var(0);
        let program: Vec<Call> = (0..400)
            .map(|i| match i % 3 {
                0 => Call::Insert {
                    ses,
                    table,
                    key: 1,
                    value: 1,
                },
                1 => Call::Replace {
                    ses,
                    table,
                    value: 1,
                },
                _ => Call::Seek {
                    ses,
                    table,
                    key: 1,
                    mode: Seek::Equal,
                },
            })
            .collect();
        let mut threads = vec![program];
        put_sizes_at_edges(&mut threads);
        let edged = |call: &Call| match *call {
            Call::Insert { key, value, .. } => [key, value].iter().any(|n| *n >= KEY_AT_MAX),
            Call::Replace { value, .. } => value >= VALUE_AT_MAX,
            Call::Seek { key, .. } => key >= KEY_AT_MAX,
            _ => false,
        };
        let count = threads[0].iter().filter(|call| edged(call)).count();
        // One in SIZE_EDGES_IN, with room for the draw.
        assert!(
            (20..=90).contains(&count),
            "{count} of 400 calls at an edge"
        );
        for edge in [KEY_AT_MAX, KEY_TOO_LONG] {
            assert!(threads[0]
                .iter()
                .any(|c| matches!(c, Call::Insert { key, .. } if *key == edge)));
        }
        for edge in [VALUE_AT_MAX, VALUE_TOO_LONG] {
            assert!(threads[0]
                .iter()
                .any(|c| matches!(c, Call::Replace { value, .. } if *value == edge)));
        }
    }
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
    /// a crash to lose, and committed transactions racing each other are what makes
    /// `WriteConflict`. Random calls alone rarely line up into one.
    #[serde(default)]
    pub committed_writes: bool,
    /// The swarm's other switches (each run turns some on).
    #[serde(default)]
    pub reach: Reach,
}

/// Features a run switches on or off (swarm testing, FoundationDB's BUGGIFY knobs): each
/// takes the workload somewhere the default one never goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reach {
    /// Record keys are `0..key_range`. From [`WIDE_KEY_RANGE`] on, keys are long and the
    /// initial table holds up to a few hundred records: B+trees of three levels that split
    /// (and, with deletes and defrag, merge), and `index_record_count` calls long enough to
    /// be in flight when the gate closes.
    pub key_range: u8,
    /// Values up to about a quarter page (`value_bytes` of numbers from 10 on).
    pub large_values: bool,
    /// Threads besides the stop plan's make stop and stop2 calls (every grbit, unknown bits
    /// among known ones, Resume), so several threads stop, partially stop and resume at once.
    pub extra_stops: bool,
    /// Terms with every grbit (valid or not) from any thread, racing the stop.
    pub racing_terms: bool,
    /// `get/set_system_parameter` calls (cache size, checkpoint depth, online defrag, version
    /// store size) racing the stop; shrinking the cache forces evictions.
    pub parameters: bool,
    /// Every thread ends by closing its table and database, one in two inside a transaction
    /// with a write, then detaches and re-attaches: detach races the others' transactions.
    #[serde(default)]
    pub detach_race: bool,
    /// `JetCreateTable`/`JetDeleteTable` of table `t2` racing the stop and each other.
    #[serde(default)]
    pub ddl: bool,
    /// Threads set contexts on their own sessions and keep them, and the other threads reach
    /// for those sessions (reset, set or read the context, end the session): only the thread
    /// that set a context may reset it, and no one may end a session with a context set.
    /// Never with a wide key range (no thread names another's sessions there).
    #[serde(default)]
    pub shared_contexts: bool,
    /// In runs with wide key ranges: every thread starts with a long transaction of large
    /// inserts at neighbouring keys, and no stop or term comes before the stopper's (or the
    /// term's thread's) own long transaction ends. More pages are dirtied between two log
    /// flushes than a small cache holds, so a split's new page evicts a page whose log is not
    /// yet durable: the log is flushed in the middle of the split (see
    /// `config::crash_switch`). Left out of
    /// the JSON when off, so configurations without it print (and hash) as before it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub long_transactions: bool,
    /// The nested-transaction piece nests up to eight levels below its outer one, past ESE's
    /// seven (`JET_errTransTooDeep` from the eighth `BeginTransaction`; the ends then outnumber
    /// the levels and close the outer one early), and its innermost level writes its record
    /// twice (two versions of one record at one level). Drawn from a stream of its own and
    /// left out of the JSON when off, so other seeds keep their meaning.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deep_nesting: bool,
    /// The stopper works on table `t0` (the one set up with records) and, right before its
    /// stop calls, commits a transaction that deletes a run of neighbouring records: leaves
    /// empty, online defrag is ordered to merge them, and the stop comes while the background
    /// worker's pass may be moving pages, which the stop must park and wait for (see
    /// `config::DEFRAG_AT_STOP_RUNS_IN`). Left out of the JSON when off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub defrag_at_stop: bool,
}

impl Default for Reach {
    fn default() -> Self {
        Reach {
            key_range: KEYS,
            large_values: false,
            extra_stops: false,
            racing_terms: false,
            parameters: false,
            detach_race: false,
            ddl: false,
            shared_contexts: false,
            long_transactions: false,
            deep_nesting: false,
            defrag_at_stop: false,
        }
    }
}

impl Reach {
    /// See [`WIDE_KEY_RANGE`].
    pub fn wide(&self) -> bool {
        self.key_range >= WIDE_KEY_RANGE
    }

    /// Value numbers a write draws from.
    pub fn values(&self) -> std::ops::Range<u8> {
        if self.large_values {
            0..LARGE_VALUES.end
        } else {
            0..10
        }
    }
}

/// Where and how the stop thread calls the stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopPlan {
    /// One full stop.
    Once,
    /// Two full stops: one after the other on the stopping thread, or (half these runs) the
    /// second on another thread at the same point of its program, racing the first.
    Twice,
    /// A stop on a bad handle first, then a real one.
    BadHandleFirst,
    /// A stop on the never-initialized instance, then a real one.
    UninitializedFirst,
    /// A stop, and another thread terms the instance.
    RacingTerm,
    /// `stop_service_instance2` with a partial grbit (and maybe resume), then a full stop.
    /// Half of these runs are [`StopPlan::PartialOnly`] instead (a stream of their own).
    PartialThenFull,
    /// A full stop, then Resume (refused) and a partial stop (no change).
    FullThenResumeAndPartial,
    /// `stop_service_instance2` with a partial grbit (and maybe resume), and no full stop:
    /// the run ends with what the partial stop (or the resume) left, which the end state
    /// holds to the model's: defrag parked, caches quiesced, or both undone. Behind a full
    /// stop those are the full stop's, so a partial stop or resume that parks, quiesces or
    /// undoes the wrong thing only shows in runs that end on it.
    PartialOnly,
}

fn ses(reach: Reach) -> BoxedStrategy<Ref> {
    if reach.wide() {
        // No thread names another's sessions: see WIDE_KEY_RANGE.
        return prop_oneof![
            12 => (0..VARS_PER_KIND).prop_map(Ref::Var),
            1 => Just(Ref::Nil),
            1 => Just(Ref::Foreign),
        ]
        .boxed();
    }
    prop_oneof![
        12 => (0..VARS_PER_KIND).prop_map(Ref::Var),
        1 => Just(Ref::Nil),
        1 => Just(Ref::Foreign),
        2 => (0..VARS_PER_KIND).prop_map(Ref::Peer),
    ]
    .boxed()
}

fn any_ref() -> impl Strategy<Value = Ref> {
    prop_oneof![12 => (0..VARS_PER_KIND).prop_map(Ref::Var), 1 => Just(Ref::Nil), 1 => Just(Ref::Foreign)]
}

/// A call a worker thread makes in a default run (no stop, no term).
pub fn worker_call() -> impl Strategy<Value = Call> {
    worker_call_in(Reach::default())
}

/// Every `stop_service_instance2` grbit worth trying: none (full), each partial, both,
/// StopAndEmitLog, Resume alone and with each partial, and unknown bits alone and mixed with
/// known ones.
const STOP_GRBITS: [u32; 14] = [
    0,
    0x2,
    0x4,
    0x6,
    0x8,
    0x8000_0000,
    0x8000_0002,
    0x8000_0004,
    0x8000_0006,
    0x8000_0008,
    0x1,
    0x10,
    0x20 | 0x2,
    0x4000_0000 | 0x8000_0000,
];

/// Every `term2` grbit worth trying: each known bit, some together, and unknown bits.
const TERM_GRBITS: [u32; 9] = [0, 0x1, 0x2, 0x4, 0x8, 0x2 | 0x8, 0xF, 0x10, 0x20 | 0x2];

fn instance_ref() -> impl Strategy<Value = InstanceRef> {
    prop_oneof![
        12 => Just(InstanceRef::Main),
        1 => Just(InstanceRef::Nil),
        1 => Just(InstanceRef::Terminated),
    ]
}

fn parameter_call() -> impl Strategy<Value = Call> {
    let parameter = prop_oneof![
        Just(Parameter::CheckpointDepthMaxBytes),
        Just(Parameter::CacheSizePages),
        Just(Parameter::VersionStoreMaxVersions),
        Just(Parameter::OnlineDefrag),
    ];
    let value = |parameter: Parameter| -> BoxedStrategy<u64> {
        match parameter {
            Parameter::CheckpointDepthMaxBytes => {
                prop_oneof![Just(0u64), Just(4 << 10), Just(1 << 20)].boxed()
            }
            // The smallest caches force evictions; 0 and 7 are refused.
            Parameter::CacheSizePages => {
                prop_oneof![Just(8u64), Just(9), Just(64), Just(0), Just(7)].boxed()
            }
            Parameter::VersionStoreMaxVersions => Just(1u64 << 16).boxed(),
            Parameter::OnlineDefrag => prop_oneof![Just(0u64), Just(1), Just(2)].boxed(),
        }
    };
    prop_oneof![
        1 => (instance_ref(), parameter.clone()).prop_map(|(instance, parameter)| Call::GetSystemParameter { instance, parameter }),
        2 => (instance_ref(), parameter.prop_flat_map(move |p| (Just(p), value(p))))
            .prop_map(|(instance, (parameter, value))| Call::SetSystemParameter { instance, parameter, value }),
    ]
}

/// A call a worker thread makes in a run with these switches (no stop, no term: those are
/// placed by [`workload`]).
pub fn worker_call_in(reach: Reach) -> impl Strategy<Value = Call> {
    let bind = 0..VARS_PER_KIND;
    let keys = 0..reach.key_range;
    let values = reach.values();
    let mut arms: Vec<(u32, BoxedStrategy<Call>)> = Vec::new();
    // Counting outside a transaction is one atomic read only over few records.
    if !reach.wide() {
        arms.push((
            1,
            (ses(reach), any_ref())
                .prop_map(|(ses, table)| Call::IndexRecordCount {
                    ses,
                    table,
                    max_records: 0,
                })
                .boxed(),
        ));
    }
    if reach.parameters {
        arms.push((2, parameter_call().boxed()));
    }
    if reach.ddl {
        let table = DDL_TABLE;
        arms.push((
            2,
            (ses(reach), any_ref(), 0..VARS_PER_KIND)
                .prop_map(move |(ses, db, bind)| Call::CreateTable {
                    ses,
                    db,
                    table,
                    bind,
                })
                .boxed(),
        ));
        arms.push((
            1,
            (ses(reach), any_ref())
                .prop_map(move |(ses, db)| Call::DeleteTable { ses, db, table })
                .boxed(),
        ));
    }
    let common = prop_oneof![
        4 => bind.clone().prop_map(|bind| Call::BeginSession { bind }),
        2 => ses(reach).prop_map(|ses| Call::EndSession { ses }),
        2 => (ses(reach), prop_oneof![1 => Just(0u64), 3 => Just(7), 3 => Just(8)]).prop_map(|(ses, context)| Call::SetSessionContext { ses, context }),
        1 => ses(reach).prop_map(|ses| Call::ResetSessionContext { ses }),
        1 => ses(reach).prop_map(|ses| Call::GetSessionInfo { ses }),
        3 => (ses(reach), bind.clone()).prop_map(|(ses, bind)| Call::OpenDatabase { ses, bind }),
        1 => (ses(reach), any_ref()).prop_map(|(ses, db)| Call::CloseDatabase { ses, db }),
        1 => ses(reach).prop_map(|ses| Call::AttachDatabase { ses, file: DatabaseFile::Run }),
        1 => ses(reach).prop_map(|ses| Call::DetachDatabase { ses }),
        1 => (ses(reach), any_ref(), prop_oneof![Just(1u32), Just(2), Just(4)]).prop_map(|(ses, db, grbit)| Call::Defragment { ses, db, grbit }),
        4 => (ses(reach), any_ref(), 0..=TABLES, bind.clone()).prop_map(|(ses, db, table, bind)| Call::OpenTable { ses, db, table, bind }),
        1 => (ses(reach), any_ref()).prop_map(|(ses, table)| Call::CloseTable { ses, table }),
        5 => ses(reach).prop_map(|ses| Call::BeginTransaction { ses }),
        3 => ses(reach).prop_map(|ses| Call::CommitTransaction { ses }),
        2 => ses(reach).prop_map(|ses| Call::Rollback { ses }),
        6 => (ses(reach), any_ref(), keys.clone(), values.clone()).prop_map(|(ses, table, key, value)| Call::Insert { ses, table, key, value }),
        2 => (ses(reach), any_ref(), values).prop_map(|(ses, table, value)| Call::Replace { ses, table, value }),
        2 => (ses(reach), any_ref()).prop_map(|(ses, table)| Call::Delete { ses, table }),
        3 => (ses(reach), any_ref(), keys, prop_oneof![Just(Seek::Equal), Just(Seek::GreaterOrEqual), Just(Seek::LessOrEqual)])
            .prop_map(|(ses, table, key, mode)| Call::Seek { ses, table, key, mode }),
        3 => (ses(reach), any_ref(), prop_oneof![Just(Move::First), Just(Move::Next), Just(Move::Previous), Just(Move::Last)])
            .prop_map(|(ses, table, to)| Call::Move { ses, table, to }),
        2 => (ses(reach), any_ref()).prop_map(|(ses, table)| Call::Retrieve { ses, table }),
    ];
    // The common calls' weights sum to 61.
    arms.insert(0, (61, common.boxed()));
    proptest::strategy::Union::new_weighted(arms)
}

/// A transaction on the warm-up's session and table that commits one to three writes.
fn committed_transaction(reach: Reach) -> impl Strategy<Value = Vec<Call>> {
    let (ses, table) = (Ref::Var(0), Ref::Var(0));
    let write = prop_oneof![
        3 => (0..reach.key_range, reach.values()).prop_map(move |(key, value)| Call::Insert { ses, table, key, value }),
        1 => reach.values().prop_map(move |value| Call::Replace { ses, table, value }),
        1 => Just(Call::Delete { ses, table }),
        // Position the cursor, so the next replace or delete has a record.
        1 => (0..reach.key_range).prop_map(move |key| Call::Seek { ses, table, key, mode: Seek::GreaterOrEqual }),
    ];
    proptest::collection::vec(write, 1..=3).prop_map(move |writes| {
        let mut calls = vec![Call::BeginTransaction { ses }];
        calls.extend(writes);
        calls.push(Call::CommitTransaction { ses });
        calls
    })
}

/// In runs with wide key ranges: a transaction that inserts several records (leaves split,
/// and with three levels internal nodes too) or deletes a run of neighbours, walking up or
/// down from a seek (leaves empty, so defrag has siblings to merge, and every later move in
/// that direction must step over the empty leaves to the next record).
fn bulk_transaction(reach: Reach) -> impl Strategy<Value = Vec<Call>> {
    let (ses, table) = (Ref::Var(0), Ref::Var(0));
    // Neighbouring keys, so the splits pile up under one internal node.
    let range = reach.key_range;
    // In the big table, mostly past its initial keys: the tree grows at its right edge.
    let first = if range == KEY_RANGE_MAX {
        prop_oneof![1 => 0..range, 3 => BIG_TABLE_KEYS..range].boxed()
    } else {
        (0..range).boxed()
    };
    let inserts = (first, proptest::collection::vec(reach.values(), 3..=10)).prop_map(
        move |(first, values)| {
            (first..range)
                .zip(values)
                .map(|(key, value)| Call::Insert {
                    ses,
                    table,
                    key,
                    value,
                })
                .collect::<Vec<Call>>()
        },
    );
    prop_oneof![inserts, neighbour_deletes(reach, 3..=12)].prop_map(in_committed_transaction)
}

/// On the warm-up's session and table: a seek to a random key, then `counts` times a delete
/// and a move on, all up or all down from it.
fn neighbour_deletes(
    reach: Reach,
    counts: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Vec<Call>> {
    let (ses, table) = (Ref::Var(0), Ref::Var(0));
    (0..reach.key_range, counts, any::<bool>()).prop_map(move |(key, count, downwards)| {
        let (mode, to) = if downwards {
            (Seek::LessOrEqual, Move::Previous)
        } else {
            (Seek::GreaterOrEqual, Move::Next)
        };
        let mut calls = vec![Call::Seek {
            ses,
            table,
            key,
            mode,
        }];
        for _ in 0..count {
            calls.push(Call::Delete { ses, table });
            calls.push(Call::Move { ses, table, to });
        }
        calls
    })
}

/// `writes` on the warm-up's session, between a begin and a commit.
fn in_committed_transaction(writes: Vec<Call>) -> Vec<Call> {
    let ses = Ref::Var(0);
    let mut calls = vec![Call::BeginTransaction { ses }];
    calls.extend(writes);
    calls.push(Call::CommitTransaction { ses });
    calls
}

/// [`Reach::defrag_at_stop`]: the stopper's transaction right before its stop, deleting
/// enough neighbours to empty whole leaves (or nothing when the switch is off, drawing no
/// randomness, so other runs keep their meaning).
fn deletes_before_stop(reach: Reach) -> BoxedStrategy<Vec<Call>> {
    if !reach.defrag_at_stop {
        return Just(Vec::new()).boxed();
    }
    neighbour_deletes(reach, DEFRAG_AT_STOP_DELETES)
        .prop_map(in_committed_transaction)
        .boxed()
}

/// [`Reach::defrag_at_stop`]'s call right after the stopper's stop calls: `OnlineDefrag`
/// set to 1 again (the run has it on), with the merges its deletes left still to do. ESE
/// takes the parameter after a stop, and the stop's parking of online defragmentation
/// stands: a set that started defrag again would move pages after the stop, which the
/// defrag-parked rule reads in the log. Placed, not drawn: other runs keep their meaning.
fn defrag_switched_on_after_stop(reach: Reach) -> Option<Call> {
    reach.defrag_at_stop.then_some(Call::SetSystemParameter {
        instance: InstanceRef::Main,
        parameter: Parameter::OnlineDefrag,
        value: 1,
    })
}

/// How many records [`deletes_before_stop`] deletes: with large values, a leaf holds a few.
const DEFRAG_AT_STOP_DELETES: std::ops::RangeInclusive<usize> = 6..=16;

/// [`Reach::long_transactions`]: a transaction on the warm-up's session and table that
/// inserts 12 to 32 large records at neighbouring keys from a random one (wrapping; keys that
/// exist fail with `KeyDuplicate`), then commits: the leaf it fills splits again and again,
/// and the pages it dirties outgrow a small cache before anything flushes the log.
fn long_transaction(reach: Reach) -> impl Strategy<Value = Vec<Call>> {
    let (ses, table) = (Ref::Var(0), Ref::Var(0));
    let range = reach.key_range;
    let values = proptest::collection::vec(LARGE_VALUES, 12..=32);
    (0..range, values).prop_map(move |(first, values)| {
        let mut calls = vec![Call::BeginTransaction { ses }];
        let keys = (first..range).chain(0..first);
        calls.extend(keys.zip(values).map(|(key, value)| Call::Insert {
            ses,
            table,
            key,
            value,
        }));
        calls.push(Call::CommitTransaction { ses });
        calls
    })
}

/// A write at level 1, then a nested level that writes too and commits or rolls back, then a
/// read of the first write's record, then the outer level's end: a nested level's end moves
/// or undoes its own writes and never the enclosing level's.
fn nested_transaction(reach: Reach) -> BoxedStrategy<Vec<Call>> {
    if !reach.deep_nesting {
        return nested_once(reach).boxed();
    }
    (
        nested_once(reach),
        prop::sample::select(NESTED_LEVELS_DEEP.as_slice()),
        reach.values(),
    )
        .prop_map(|(calls, nested_levels, value)| {
            rewrite_innermost(deepen(calls, nested_levels), value)
        })
        .boxed()
}

/// The innermost level writes its record a second time (a seek to its key and a replace),
/// so it holds two versions of one record at one level: its commit must carry both down to
/// the enclosing level, and a rollback there must undo both.
fn rewrite_innermost(mut calls: Vec<Call>, value: u8) -> Vec<Call> {
    let end = nested_end(&calls);
    let key = calls[..end]
        .iter()
        .rev()
        .find_map(|call| match call {
            Call::Insert { key, .. } | Call::Seek { key, .. } => Some(*key),
            _ => None,
        })
        .expect("the nested level writes");
    calls.splice(end..end, seek_and_replace(key, value));
    calls
}

/// Where the nested piece ends its innermost level: its first commit or rollback.
fn nested_end(calls: &[Call]) -> usize {
    calls
        .iter()
        .position(|call| matches!(call, Call::CommitTransaction { .. } | Call::Rollback { .. }))
        .expect("the piece ends its nested level")
}

/// A write of `key`'s record by the piece's session on its table: a seek to the key, then a
/// replace of the record it lands on.
fn seek_and_replace(key: u8, value: u8) -> [Call; 2] {
    let (ses, table) = (Ref::Var(0), Ref::Var(0));
    [
        Call::Seek {
            ses,
            table,
            key,
            mode: Seek::GreaterOrEqual,
        },
        Call::Replace { ses, table, value },
    ]
}

/// How many levels [`Reach::deep_nesting`] nests below the outer one: two, or around ESE's
/// limit of seven in all (six: the deepest allowed; seven and eight: refused once or twice),
/// where an off-by-one in the limit shows.
const NESTED_LEVELS_DEEP: [usize; 4] = [2, 6, 7, 8];

/// The nested piece with its one nested level made `nested_levels`: more `BeginTransaction`
/// calls after the first nested one, and as many more of its end after that end.
fn deepen(mut calls: Vec<Call>, nested_levels: usize) -> Vec<Call> {
    let is_begin = |call: &Call| matches!(call, Call::BeginTransaction { .. });
    let nested_begin = calls
        .iter()
        .enumerate()
        .filter(|(_, call)| is_begin(call))
        .nth(1)
        .map(|(at, _)| at)
        .expect("the piece nests one level");
    let nested_end = nested_end(&calls);
    let (begin, end) = (calls[nested_begin].clone(), calls[nested_end].clone());
    let extra = nested_levels - 1;
    calls.splice(nested_end..nested_end, std::iter::repeat_n(end, extra));
    calls.splice(
        nested_begin..nested_begin,
        std::iter::repeat_n(begin, extra),
    );
    calls
}

/// [`nested_transaction`] with one nested level.
fn nested_once(reach: Reach) -> impl Strategy<Value = Vec<Call>> {
    let (ses, table) = (Ref::Var(0), Ref::Var(0));
    let write = move |(key, value, replace): (u8, u8, bool)| {
        if replace {
            seek_and_replace(key, value).to_vec()
        } else {
            vec![Call::Insert {
                ses,
                table,
                key,
                value,
            }]
        }
    };
    let one_write = (0..reach.key_range, reach.values(), any::<bool>());
    (one_write.clone(), one_write, any::<bool>(), any::<bool>()).prop_map(
        move |(outer, inner, inner_commits, outer_commits)| {
            let outer_key = outer.0;
            let mut calls = vec![Call::BeginTransaction { ses }];
            calls.extend(write(outer));
            calls.push(Call::BeginTransaction { ses });
            calls.extend(write(inner));
            calls.push(if inner_commits {
                Call::CommitTransaction { ses }
            } else {
                Call::Rollback { ses }
            });
            calls.push(Call::Seek {
                ses,
                table,
                key: outer_key,
                mode: Seek::GreaterOrEqual,
            });
            calls.push(Call::Retrieve { ses, table });
            calls.push(if outer_commits {
                Call::CommitTransaction { ses }
            } else {
                Call::Rollback { ses }
            });
            calls
        },
    )
}

/// A table opened inside a transaction (bound to the second variable), used, then the
/// transaction rolled back or committed: rolling back the level that opened it closes it.
fn table_opened_in_transaction(reach: Reach) -> impl Strategy<Value = Vec<Call>> {
    let (ses, db, table) = (Ref::Var(0), Ref::Var(0), Ref::Var(1));
    (
        0..=TABLES,
        0..reach.key_range,
        reach.values(),
        any::<bool>(),
    )
        .prop_map(move |(number, key, value, commit)| {
            vec![
                Call::BeginTransaction { ses },
                Call::OpenTable {
                    ses,
                    db,
                    table: number,
                    bind: 1,
                },
                Call::Insert {
                    ses,
                    table,
                    key,
                    value,
                },
                if commit {
                    Call::CommitTransaction { ses }
                } else {
                    Call::Rollback { ses }
                },
                Call::Move {
                    ses,
                    table,
                    to: Move::First,
                },
            ]
        })
}

/// [`Reach::detach_race`]'s end of a thread's program.
fn detach_tail(write: bool, key: u8) -> Vec<Call> {
    let (ses, table, db) = (Ref::Var(0), Ref::Var(0), Ref::Var(0));
    let mut calls = Vec::new();
    if write {
        calls.push(Call::BeginTransaction { ses });
        calls.push(Call::Insert {
            ses,
            table,
            key,
            value: 1,
        });
    }
    calls.push(Call::CloseTable { ses, table });
    calls.push(Call::CloseDatabase { ses, db });
    calls.push(Call::DetachDatabase { ses });
    if write {
        calls.push(Call::CommitTransaction { ses });
    }
    calls.push(Call::DetachDatabase { ses });
    calls.push(Call::AttachDatabase {
        ses,
        file: DatabaseFile::Run,
    });
    calls
}

/// A count of the warm-up's table inside the session's own transaction (a stable snapshot,
/// however many steps the count takes), then the transaction's end.
fn counted_in_transaction() -> impl Strategy<Value = Vec<Call>> {
    let (ses, table) = (Ref::Var(0), Ref::Var(0));
    any::<bool>().prop_map(move |commit| {
        vec![
            Call::BeginTransaction { ses },
            Call::IndexRecordCount {
                ses,
                table,
                max_records: 0,
            },
            if commit {
                Call::CommitTransaction { ses }
            } else {
                Call::Rollback { ses }
            },
        ]
    })
}

/// [`Reach::shared_contexts`]: a context set on the thread's own warm-up session (kept until
/// the wind-down), or a call on the next thread's warm-up session that only its context's
/// setter may make.
fn context_sharing_call() -> impl Strategy<Value = Call> {
    let (own, peer) = (Ref::Var(0), Ref::Peer(0));
    prop_oneof![
        3 => prop_oneof![Just(7u64), Just(8)].prop_map(move |context| Call::SetSessionContext { ses: own, context }),
        3 => Just(Call::ResetSessionContext { ses: peer }),
        1 => Just(Call::EndSession { ses: peer }),
        1 => prop_oneof![Just(7u64), Just(8)].prop_map(move |context| Call::SetSessionContext { ses: peer, context }),
        1 => Just(Call::GetSessionInfo { ses: peer }),
        1 => Just(Call::ResetSessionContext { ses: own }),
    ]
}

/// A thread's calls after its warm-up: random calls, and with `committed_writes` whole
/// committed transactions among them; in runs with wide key ranges, counts in transactions.
fn program_body(shape: WorkloadShape) -> BoxedStrategy<Vec<Call>> {
    let calls = 0..=shape.calls_per_thread_max;
    let reach = shape.reach;
    let mut body = program_pieces(shape, calls);
    if reach.long_transactions && reach.wide() {
        // Each thread starts with one, so the stop (placed after the stopper's, see
        // `workload`) finds the trees grown and the cache full of dirty pages.
        body = (long_transaction(reach), body)
            .prop_map(|(mut calls, body)| {
                calls.extend(body);
                calls
            })
            .boxed();
    }
    if !reach.detach_race {
        return body;
    }
    (body, any::<bool>(), 0..reach.key_range)
        .prop_map(|(mut body, write, key)| {
            body.extend(detach_tail(write, key));
            body
        })
        .boxed()
}

fn program_pieces(
    shape: WorkloadShape,
    calls: std::ops::RangeInclusive<usize>,
) -> BoxedStrategy<Vec<Call>> {
    let reach = shape.reach;
    let mut pieces: Vec<(u32, BoxedStrategy<Vec<Call>>)> = vec![
        (
            12,
            worker_call_in(reach).prop_map(|call| vec![call]).boxed(),
        ),
        (1, table_opened_in_transaction(reach).boxed()),
        (1, nested_transaction(reach).boxed()),
    ];
    if shape.committed_writes {
        pieces.push((4, committed_transaction(reach).boxed()));
    }
    if reach.shared_contexts && !reach.wide() {
        pieces.push((
            8,
            context_sharing_call().prop_map(|call| vec![call]).boxed(),
        ));
    }
    if reach.wide() {
        pieces.push((2, counted_in_transaction().boxed()));
        let bulk_weight = if reach.key_range == KEY_RANGE_MAX {
            8
        } else {
            4
        };
        pieces.push((bulk_weight, bulk_transaction(reach).boxed()));
    }
    let piece = proptest::strategy::Union::new_weighted(pieces);
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

/// The partial stops a planned resume names, beside `Resume` itself: none (it undoes every
/// partial stop), defrag's, the caches', or both. Naming one of two in force must undo only
/// that one: a resume that always named none never showed a resume undoing too much.
const RESUME_NAMES: [u32; 4] = [0, 0x2, 0x4, 0x6];

/// The calls of the thread that stops the instance, given the plan. `resume` is the named
/// part of a partial-stop plan's resume ([`RESUME_NAMES`]), or `None` for no resume.
fn stop_calls(plan: StopPlan, partial_grbit: u32, resume: Option<u32>) -> Vec<Call> {
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
        StopPlan::FullThenResumeAndPartial => vec![
            full,
            // Refused with ClientRequestToStopJetService: Resume cannot undo a full stop.
            Call::StopService {
                instance: InstanceRef::Main,
                grbit: 0x8000_0000 | (partial_grbit & 0x6),
            },
            // A partial stop after the full one: nothing more to do.
            Call::StopService {
                instance: InstanceRef::Main,
                grbit: partial_grbit,
            },
        ],
        StopPlan::PartialThenFull | StopPlan::PartialOnly => {
            let mut calls = vec![Call::StopService {
                instance: InstanceRef::Main,
                grbit: partial_grbit,
            }];
            if let Some(named) = resume {
                calls.push(Call::StopService {
                    instance: InstanceRef::Main,
                    grbit: 0x8000_0000 | named,
                });
            }
            if plan == StopPlan::PartialThenFull {
                calls.push(full);
            }
            calls
        }
    }
}

/// A stop, stop2 or term call another thread adds ([`Reach::extra_stops`],
/// [`Reach::racing_terms`]).
fn extra_lifecycle_call(reach: Reach) -> impl Strategy<Value = Call> {
    let mut arms: Vec<(u32, BoxedStrategy<Call>)> = Vec::new();
    if reach.extra_stops {
        arms.push((
            3,
            proptest::sample::select(STOP_GRBITS.to_vec())
                .prop_map(|grbit| Call::StopService {
                    instance: InstanceRef::Main,
                    grbit,
                })
                .boxed(),
        ));
    }
    if reach.racing_terms {
        arms.push((
            1,
            proptest::sample::select(TERM_GRBITS.to_vec())
                .prop_map(|grbit| Call::Term {
                    instance: InstanceRef::Main,
                    grbit,
                })
                .boxed(),
        ));
    }
    if arms.is_empty() {
        // Never drawn from (no extra calls without either switch); a strategy all the same.
        arms.push((
            1,
            Just(Call::StopService {
                instance: InstanceRef::Main,
                grbit: 0,
            })
            .boxed(),
        ));
    }
    proptest::strategy::Union::new_weighted(arms)
}

/// With [`Reach::long_transactions`], the position just after a program's first commit (the
/// end of the long transaction it starts with), where its stops and terms may go first: a
/// stop before it would refuse the writes the run is shaped for. 0 otherwise.
fn first_long_transaction_end(program: &[Call], reach: Reach) -> usize {
    if !(reach.long_transactions && reach.wide()) {
        return 0;
    }
    program
        .iter()
        .position(|call| matches!(call, Call::CommitTransaction { .. }))
        .map_or(0, |index| index + 1)
}

/// Generates a whole workload of the given shape: worker programs (a warm-up then random
/// calls), the stop calls inserted at a random point of one thread's program, for
/// `RacingTerm` a term at a random point of another's, and the [`Reach`] switches' stops,
/// stop2s, resumes and terms at random points of random threads.
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
    let reach = shape.reach;
    let extra_count = if reach.extra_stops || reach.racing_terms {
        1..=3usize
    } else {
        0..=0
    };
    let extras = proptest::collection::vec(
        (
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            extra_lifecycle_call(reach),
        ),
        extra_count,
    );
    let deletes = deletes_before_stop(reach);
    (programs, placement, extras, deletes).prop_map(
        move |(programs, (stopper, stop_at, term_at, partial_grbit, resume), extras, deletes)| {
            let mut threads: Vec<Vec<Call>> = programs
                .into_iter()
                .enumerate()
                .map(|(thread, (table, body))| {
                    // The defrag switch's deletes need the table set up with records.
                    let table = match reach.defrag_at_stop && thread == stopper {
                        true => 0,
                        false => table,
                    };
                    let mut program = warm_up(table);
                    program.extend(body);
                    program
                })
                .collect();
            let stopper_program = &mut threads[stopper];
            let stopper_len = stopper_program.len();
            let earliest = first_long_transaction_end(stopper_program, reach);
            let at = earliest + stop_at.index(stopper_len - earliest + 1);
            let before_stop = deletes.into_iter();
            // `term_at` places only a racing term's calls, so the other plans take the
            // resume's names from it: no draw of its own, and other runs keep their meaning.
            // The same draw, unused by `Twice`, makes half its runs race their two stops.
            let racing_stops = shape.stop_plan == StopPlan::Twice && resume;
            let resume = resume.then(|| RESUME_NAMES[term_at.index(RESUME_NAMES.len())]);
            let mut stop = stop_calls(shape.stop_plan, partial_grbit, resume);
            let raced_stop = racing_stops.then(|| stop.pop().expect("two full stops"));
            let after_stop = defrag_switched_on_after_stop(reach);
            for (offset, call) in before_stop.chain(stop).chain(after_stop).enumerate() {
                stopper_program.insert(at + offset, call);
            }
            // As far into another thread's program as the stop is into the stopper's, give or
            // take a call: threads move at about the same pace, so the call placed there is
            // often in flight together with the stop.
            let beside_stop = |program: &mut Vec<Call>, call: Call| {
                let aligned = at * (program.len() + 1) / (stopper_len + 1);
                let at = (aligned + term_at.index(3))
                    .saturating_sub(1)
                    .min(program.len());
                program.insert(at, call);
            };
            if shape.stop_plan == StopPlan::RacingTerm {
                // A term on the next thread and, with three threads or more, another on the
                // one after: a term meets the stop (or the other term's decision) in
                // progress.
                let terminators = if shape.threads > 2 { 2 } else { 1 };
                for offset in 1..=terminators {
                    beside_stop(
                        &mut threads[(stopper + offset) % shape.threads],
                        Call::Term {
                            instance: InstanceRef::Main,
                            grbit: 0x2,
                        },
                    );
                }
            }
            if let Some(second) = raced_stop {
                // The second full stop on the next thread: it meets the first one draining
                // or preparing, waits for it, and must return only once the instance is
                // prepared. Without it two full stops were seldom in flight together, and a
                // stop that returned while another was still preparing went unseen.
                beside_stop(&mut threads[(stopper + 1) % shape.threads], second);
            }
            place_extra_lifecycle_calls(&mut threads, extras, reach);
            reshape_by_place(&mut threads);
            Workload { threads }
        },
    )
}

/// The [`Reach`] switches' extra stops and terms, each at its drawn thread and point (not
/// before a long transaction's end).
fn place_extra_lifecycle_calls(
    threads: &mut [Vec<Call>],
    extras: Vec<(prop::sample::Index, prop::sample::Index, Call)>,
    reach: Reach,
) {
    let thread_count = threads.len();
    for (thread, at, call) in extras {
        let program = &mut threads[thread.index(thread_count)];
        let earliest = first_long_transaction_end(program, reach);
        let at = earliest + at.index(program.len() - earliest + 1);
        program.insert(at, call);
    }
}

/// The passes that change calls chosen by their thread and place (no draw, so every other
/// call of every seed keeps its meaning), in the order that keeps each one's places.
fn reshape_by_place(threads: &mut [Vec<Call>]) {
    limit_record_counts(threads);
    nest_tables_opened_in_transaction(threads);
    follow_creates(threads);
    put_sizes_at_edges(threads);
    attach_missing_files(threads);
}

/// One `index_record_count` in this many counts up to a limit (1 to 4 records).
pub const LIMITED_RECORD_COUNTS_IN: u64 = 3;

/// Gives some `index_record_count` calls a limit (`crecMax`), chosen from the call's thread
/// and place in its program: no proptest draw, so every other call of every seed keeps its
/// meaning, and a shrunk workload's counts keep theirs by place. Without it the limit was
/// never passed, and a count that went one past its limit went unseen.
fn limit_record_counts(threads: &mut [Vec<Call>]) {
    for (thread, program) in threads.iter_mut().enumerate() {
        for (index, call) in program.iter_mut().enumerate() {
            if let Call::IndexRecordCount { max_records, .. } = call {
                let mut rng = jetsim_engine::SplitMix64::new(
                    0xC0_0A71_1A1C ^ ((thread as u64) << 32) ^ index as u64,
                );
                if rng.chance(1, LIMITED_RECORD_COUNTS_IN) {
                    *max_records = 1 + rng.below(4);
                }
            }
        }
    }
}

/// One [`table_opened_in_transaction`] piece in this many opens its table in a nested level.
pub const NESTED_TABLE_OPENS_IN: u64 = 2;

/// Moves some [`table_opened_in_transaction`] pieces' open into a nested level, committed,
/// then begins another nested level and rolls it back before the piece's first move: the
/// table belongs to the enclosing level once its level committed, so that rollback must
/// leave it open (ESE closes on rollback only the tables the rolled-back level opened).
/// Chosen from the piece's thread and place, as [`limit_record_counts`] chooses (and after
/// it, so the counts keep their places): no proptest draw. Without it no run opened a table
/// in a nested level and reused the level's number, and a nested commit that left its
/// tables at the level it ended went unseen.
fn nest_tables_opened_in_transaction(threads: &mut [Vec<Call>]) {
    for (thread, program) in threads.iter_mut().enumerate() {
        let mut at = 0;
        while at + 5 <= program.len() {
            if !is_table_opened_in_transaction(&program[at..at + 5]) {
                at += 1;
                continue;
            }
            let mut rng = jetsim_engine::SplitMix64::new(
                0x007A_B1E0_9E57 ^ ((thread as u64) << 32) ^ at as u64,
            );
            let mut piece_len = 5;
            if rng.chance(1, NESTED_TABLE_OPENS_IN) {
                let ses = Ref::Var(0);
                let first_move = program[at + 4].clone();
                program.insert(at + 1, Call::BeginTransaction { ses });
                // After the insert (now at + 4): the nested level's end, another nested level
                // rolled back, and the piece's move, all before the outer level's end.
                program.splice(
                    at + 4..at + 4,
                    [
                        Call::CommitTransaction { ses },
                        Call::BeginTransaction { ses },
                        Call::Rollback { ses },
                        first_move,
                    ],
                );
                piece_len = 10;
            }
            at += piece_len;
        }
    }
}

/// One `JetCreateTable` in this many is followed by deletes of its table, the others by a
/// second create of it ([`follow_creates`]).
pub const DELETES_AFTER_CREATE_IN: u64 = 2;

/// Follows every `JetCreateTable` call with more DDL on its table, chosen from the call's
/// thread and place (no draw): half get a `JetDeleteTable` while the create's own cursor has
/// the table open (ESE refuses it, `JET_errTableInUse`), the cursor's close, and the delete
/// again; the others a second create of the same table (`JET_errTableDuplicate`), bound to
/// the other variable. Without them a delete seldom met its table open and a create seldom
/// met its table there (probes that deleted tables under open cursors, and created a table
/// over an existing one, failed 0 of 10,000 default seeds).
fn follow_creates(threads: &mut [Vec<Call>]) {
    for (thread, program) in threads.iter_mut().enumerate() {
        let mut at = 0;
        while at < program.len() {
            let Call::CreateTable {
                ses,
                db,
                table,
                bind,
            } = program[at]
            else {
                at += 1;
                continue;
            };
            let mut rng = jetsim_engine::SplitMix64::new(
                0x0DE1_E7E0_0C4E_A7ED ^ ((thread as u64) << 32) ^ at as u64,
            );
            let follow: Vec<Call> = if rng.chance(1, DELETES_AFTER_CREATE_IN) {
                let delete = Call::DeleteTable { ses, db, table };
                let close = Call::CloseTable {
                    ses,
                    table: Ref::Var(bind),
                };
                vec![delete.clone(), close, delete]
            } else {
                vec![Call::CreateTable {
                    ses,
                    db,
                    table,
                    bind: (bind + 1) % VARS_PER_KIND,
                }]
            };
            let followed = follow.len();
            program.splice(at + 1..at + 1, follow);
            at += 1 + followed;
        }
    }
}

/// One record write or seek in this many gets a key or a value at a size edge
/// ([`put_sizes_at_edges`]).
pub const SIZE_EDGES_IN: u64 = 8;

/// Moves some inserts', replaces' and seeks' keys or values onto the size edges (the longest
/// key or value there may be, and one byte more: [`KEY_AT_MAX`], [`KEY_TOO_LONG`],
/// [`VALUE_AT_MAX`], [`VALUE_TOO_LONG`]), chosen from the call's thread and place (no draw),
/// after the other passes. Without them no call came within 1 byte of either limit (keys
/// were at most 127 bytes, values 503): probes that refused a key or a value of exactly the
/// limit failed 0 of 10,000 seeds.
fn put_sizes_at_edges(threads: &mut [Vec<Call>]) {
    let edge = |rng: &mut jetsim_engine::SplitMix64, at_max: u8, too_long: u8| {
        if rng.chance(1, 2) {
            at_max
        } else {
            too_long
        }
    };
    for (thread, program) in threads.iter_mut().enumerate() {
        for (index, call) in program.iter_mut().enumerate() {
            if !matches!(
                call,
                Call::Insert { .. } | Call::Replace { .. } | Call::Seek { .. }
            ) {
                continue;
            }
            let mut rng = jetsim_engine::SplitMix64::new(
                0x5_12E0_ED6E ^ ((thread as u64) << 32) ^ index as u64,
            );
            if !rng.chance(1, SIZE_EDGES_IN) {
                continue;
            }
            match call {
                Call::Insert { key, value, .. } => {
                    if rng.chance(1, 2) {
                        *key = edge(&mut rng, KEY_AT_MAX, KEY_TOO_LONG);
                    } else {
                        *value = edge(&mut rng, VALUE_AT_MAX, VALUE_TOO_LONG);
                    }
                }
                Call::Replace { value, .. } => {
                    *value = edge(&mut rng, VALUE_AT_MAX, VALUE_TOO_LONG);
                }
                Call::Seek { key, .. } => *key = edge(&mut rng, KEY_AT_MAX, KEY_TOO_LONG),
                _ => {}
            }
        }
    }
}

/// One `JetAttachDatabase` in this many names a path with no file ([`attach_missing_files`]).
pub const MISSING_FILE_ATTACHES_IN: u64 = 2;

/// Points some `JetAttachDatabase` calls at a path with no file ([`DatabaseFile::Missing`]),
/// chosen from the call's thread and place (no draw): the attach claims the path for its
/// instance, fails to open it, and must give the claim back, which the harness's probe at the
/// end of the run sees (another instance's attach of that path must find no file, not a
/// sharing violation). A detach piece's re-attach is left alone. Without them no attach failed
/// once it had claimed its path: a probe that kept the claim of a failed attach failed 1 of
/// 10,000 default seeds.
fn attach_missing_files(threads: &mut [Vec<Call>]) {
    for (thread, program) in threads.iter_mut().enumerate() {
        for index in 0..program.len() {
            // A detach piece's re-attach stays the run's: the rest of the run needs it.
            let after_detach =
                index > 0 && matches!(program[index - 1], Call::DetachDatabase { .. });
            if let Call::AttachDatabase { file, .. } = &mut program[index] {
                if after_detach {
                    continue;
                }
                let mut rng = jetsim_engine::SplitMix64::new(
                    0x0A77_AC4E_F11E ^ ((thread as u64) << 32) ^ index as u64,
                );
                if rng.chance(1, MISSING_FILE_ATTACHES_IN) {
                    *file = DatabaseFile::Missing;
                }
            }
        }
    }
}

/// Whether `calls` are one whole [`table_opened_in_transaction`] piece, as generated.
fn is_table_opened_in_transaction(calls: &[Call]) -> bool {
    let (ses, db, table) = (Ref::Var(0), Ref::Var(0), Ref::Var(1));
    matches!(
        calls,
        [
            Call::BeginTransaction { ses: s0 },
            Call::OpenTable { ses: s1, db: d, bind: 1, .. },
            Call::Insert { ses: s2, table: t2, .. },
            Call::CommitTransaction { ses: s3 } | Call::Rollback { ses: s3 },
            Call::Move { ses: s4, table: t4, to: Move::First },
        ] if [*s0, *s1, *s2, *s3, *s4] == [ses; 5] && *d == db && *t2 == table && *t4 == table
    )
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}
