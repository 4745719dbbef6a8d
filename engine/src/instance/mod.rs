//! One ESE instance: its gate, its background worker, and the state behind one latch.
//!
//! Locking, outermost first (a thread holding one may only take those after it; the ranks
//! are [`crate::runtime::sync::LockRank`]): [`InstanceCore::stop_lock`] (serialises stop,
//! partial stop and resume), then the instance latch [`InstanceCore::state`] (a
//! reader-writer lock: session calls share it, but for DDL, attach and detach, which take
//! it exclusively as the instance-level calls but get system parameter do), then the store
//! latch [`InstanceState::store`] (taken only under the shared instance latch), then
//! [`InstanceCore::session_claims`], the open tables' leaf lock, [`InstanceCore::log_flush`]
//! and the sessions' leaf lock, then the gate's and the worker's own mutexes, which are
//! leaves. A Jet call passes the gate holding no lock (an open gate admits it with one atomic
//! step and takes no mutex: see [`gate`]), then
//! takes the instance latch; it lets go of it while it waits for a page read or a log sync
//! (see `api::SessionCall`). A session's own state (its transaction, its cursors' positions
//! and levels) is changed only by the one call holding the session, or under the exclusive
//! latch, so it needs no lock of its own beyond leaf cells.

pub mod gate;
pub mod mutations;
pub mod params;
pub mod slots;
pub mod status;
pub mod worker;

use crate::api::handles::InstanceHandle;
use crate::env::Environment;
use crate::runtime::sync::{Condvar, LeafRwLock, LockRank, Mutex, RwLock};
use crate::runtime::Runtime;
use crate::storage::{FileId, Lsn, PageNumber, Storage};
use crate::transaction::{TxnId, VersionStore};
use gate::Gate;
use params::{InstanceOptions, SystemParameters};
use slots::Slots;
use status::StopRecord;
use std::collections::BTreeMap;
use std::sync::Arc;
use worker::Worker;

/// Most sessions an instance holds (`JET_paramMaxSessions`).
pub const SESSIONS_MAX: usize = 1024;
/// Most cursors open at once in an instance (`JET_paramMaxCursors`).
pub const CURSORS_MAX: usize = 4096;
/// Most databases attached at once.
pub const DATABASES_MAX: usize = 64;
/// ESE nests transactions to 7 levels.
pub const TRANSACTION_LEVEL_MAX: u8 = 7;

/// A session context set with `set_session_context`, and the thread that set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionContext<T> {
    pub value: u64,
    pub thread: T,
}

/// An open transaction of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenTransaction {
    pub txn: TxnId,
    /// 1..=7.
    pub level: u8,
}

/// A session (`JET_SESID`).
#[derive(Debug)]
pub struct Session<R: Runtime> {
    pub context: SessionCell<Option<SessionContext<R::ThreadId>>>,
    pub transaction: SessionTransaction,
    /// Database slot → how many times this session has it open.
    pub open_databases: SessionCell<BTreeMap<u16, u32>>,
    /// Whether a call is inside the session (see [`SessionClaims`]).
    pub claim: SessionClaim<R>,
}

/// A session field that calls holding the instance latch shared still change: its open
/// transaction (begin, commit, rollback), its open databases (open and close database) and its
/// context (set and reset). Read and changed only by a call holding the session (see
/// [`SessionClaims`]) or by one holding the instance latch exclusively, so the lock is never
/// contended beyond a look before the claim; it exists because those calls change their own
/// session under the shared latch. A std mutex like [`CursorPosition`]: a leaf with no
/// scheduling point inside, taken for a copy, a look or a store.
#[derive(Debug, Default)]
pub struct SessionCell<T>(std::sync::Mutex<T>);

impl<T> SessionCell<T> {
    pub fn new(value: T) -> Self {
        SessionCell(std::sync::Mutex::new(value))
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    /// Runs `f` on the value, under the cell's lock (which `f` must not leave).
    pub fn with<U>(&self, f: impl FnOnce(&mut T) -> U) -> U {
        f(&mut self.lock())
    }
    pub fn set(&self, value: T) {
        *self.lock() = value;
    }
}

impl<T: Copy> SessionCell<T> {
    pub fn get(&self) -> T {
        *self.lock()
    }
}

/// A session's open transaction.
pub type SessionTransaction = SessionCell<Option<OpenTransaction>>;

/// Whether a call is inside a session: ESE counts one call in the API per session, so a call
/// claims its session for its whole length, waits for I/O included, and another thread's
/// call on the same session waits for the claim to go. So a session's own state (its
/// cursors' positions, its transaction) is touched by one call at a time, whether that call
/// holds the instance latch shared or exclusively.
///
/// The claim is a word in the session itself, read and changed under the instance latch
/// (shared or exclusive: it is an atomic), so a call on one session never touches what a
/// call on another session touches; it sits on cache lines of its own, apart from the other
/// sessions' entries that other threads read. Waiting for a claim to go uses
/// [`SessionClaims`].
#[repr(align(128))]
pub struct SessionClaim<R: Runtime>(crate::runtime::sync::AtomicU64<R>);

impl<R: Runtime> std::fmt::Debug for SessionClaim<R> {
    // Reading the word would be a scheduling point under loom and shuttle: not for Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionClaim")
    }
}

impl<R: Runtime> Default for SessionClaim<R> {
    fn default() -> Self {
        SessionClaim(crate::runtime::sync::AtomicU64::new(Self::FREE))
    }
}

impl<R: Runtime> SessionClaim<R> {
    const FREE: u64 = 0;
    const CLAIMED: u64 = 1;
    /// Claimed, and at least one call waits for it to go (see [`SessionClaims`]).
    const CLAIMED_WAITED_FOR: u64 = 2;

    /// Claims the session for the calling call; `false` if another call holds it.
    pub fn try_claim(&self) -> bool {
        self.0.compare_exchange(Self::FREE, Self::CLAIMED).is_ok()
    }

    /// Gives the claim up; `true` if a call was waiting for it (so the caller must wake the
    /// waiters: [`SessionClaims::released`]).
    pub fn release(&self) -> bool {
        let was = self.0.swap(Self::FREE);
        debug_assert_ne!(was, Self::FREE, "a claim released twice");
        was == Self::CLAIMED_WAITED_FOR
    }

    /// Records that a call is about to wait for the claim to go; `false` if it went already
    /// (then there is nothing to wait for).
    fn mark_waited_for(&self) -> bool {
        match self
            .0
            .compare_exchange(Self::CLAIMED, Self::CLAIMED_WAITED_FOR)
        {
            Ok(_) | Err(Self::CLAIMED_WAITED_FOR) => true,
            Err(_) => false,
        }
    }
}

/// Waiting for a session's claim to go ([`InstanceCore::session_claims`]). A waiter, still
/// holding the instance latch, takes `releases`, reads its count, marks the claim waited for
/// and only then lets go of the latch and sleeps until the count moves; a call giving up a
/// claim marked waited for moves the count under `releases` and wakes everyone. The mark
/// and the release are exchanges on the one claim word, so either the release sees the mark
/// (and its wake-up comes after the waiter sleeps: the waiter holds `releases` until it
/// does) or the mark sees the claim gone (and the waiter does not sleep). A call that ends
/// its own session (its claim goes with it) always moves the count.
pub struct SessionClaims<R: Runtime> {
    /// Claims given up while a call waited for one.
    releases: Mutex<R, u64>,
    released: Condvar<R>,
}

impl<R: Runtime> SessionClaims<R> {
    fn new() -> Self {
        SessionClaims {
            releases: Mutex::new(LockRank::SessionClaims, 0),
            released: Condvar::new(),
        }
    }

    /// Waits until the claim on session `(slot, generation)` goes. `latch` is the instance
    /// latch the caller holds (either way); it is let go of once the wait is registered.
    /// Returns holding nothing: the caller takes the latch again and looks at the session
    /// afresh (the call that held it may have ended it).
    pub fn wait_for_release(
        &self,
        latch: impl std::ops::Deref<Target = InstanceState<R>>,
        (slot, generation): (u16, u32),
    ) {
        let releases = self.releases.lock();
        let seen = *releases;
        let waits = latch
            .session(slot, generation)
            .is_some_and(|session| session.claim.mark_waited_for());
        drop(latch);
        if waits {
            drop(
                self.released
                    .wait_while(releases, |releases| *releases == seen),
            );
        }
    }

    /// Wakes the calls waiting for a claim: one marked waited for was given up, or went
    /// with its session.
    pub fn released(&self) {
        *self.releases.lock() += 1;
        self.released.notify_all();
    }

    /// The planted bug `SessionClaimBeforeLatch` takes this before the latch.
    pub(crate) fn lock_for_mutant(&self) -> impl Drop + '_ {
        self.releases.lock()
    }
}

/// The commits asleep until a group-commit flush ends ([`InstanceCore::log_flush`]): a
/// commit that found another's flush in flight sleeps until
/// [`InstanceCore::log_flushes_ended`] moves, then looks again.
#[derive(Debug, Default)]
pub struct LogFlushWait {
    pub waiters: u32,
}

/// Group-commit gathering ([`Runtime::GROUP_COMMIT_SPINS`]): only runtimes where that count
/// is not 0 touch it, so plain atomics serve; loom and shuttle never see them.
#[derive(Debug, Default)]
pub struct CommitGathering {
    /// Level-1 Commit records appended: a gathering committer waits for it to move.
    pub commit_records_appended: std::sync::atomic::AtomicU64,
    /// A committer is gathering: the next one to append starts the flush at once rather
    /// than gather too, since the first is waiting for exactly that record.
    pub in_progress: std::sync::atomic::AtomicBool,
}

/// Where a cursor stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    BeforeFirst,
    On(Vec<u8>),
    AfterLast,
}

/// An open table (`JET_TABLEID`).
#[derive(Debug, Clone)]
pub struct Cursor {
    pub session_slot: u16,
    pub session_generation: u32,
    pub database_slot: u16,
    pub table_name: String,
    pub table_root: PageNumber,
    /// Transaction level when opened (0: outside a transaction). Rolling back that level
    /// closes the cursor.
    pub opened_at_level: CursorLevel,
    pub position: CursorPosition,
}

/// A cursor's position. Only a call holding the cursor's session reads or moves it (see
/// [`SessionClaims`]), so the lock is never contended; it exists because a read-only call
/// holds the instance latch shared and still moves its cursor. A std mutex like
/// `Jet::database_owners`: a leaf with no scheduling point inside, taken for a clone or a
/// store.
#[derive(Debug)]
pub struct CursorPosition(std::sync::Mutex<Position>);

impl CursorPosition {
    pub fn new(position: Position) -> Self {
        CursorPosition(std::sync::Mutex::new(position))
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Position> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub fn get(&self) -> Position {
        self.lock().clone()
    }
    pub fn set(&self, position: Position) {
        *self.lock() = position;
    }
}

impl Clone for CursorPosition {
    fn clone(&self) -> Self {
        CursorPosition::new(self.get())
    }
}

/// The transaction level a cursor belongs to. Like [`CursorPosition`], only a call holding
/// the cursor's session (or the instance latch exclusively) reads or changes it; a commit
/// holding the instance latch shared lowers it, hence the atomic.
#[derive(Debug, Default)]
pub struct CursorLevel(std::sync::atomic::AtomicU8);

impl CursorLevel {
    pub fn new(level: u8) -> Self {
        CursorLevel(std::sync::atomic::AtomicU8::new(level))
    }
    pub fn get(&self) -> u8 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// The level is at most `level` from now on (its transaction level was committed into
    /// the enclosing one).
    pub fn lower_to(&self, level: u8) {
        self.0
            .fetch_min(level, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clone for CursorLevel {
    fn clone(&self) -> Self {
        CursorLevel::new(self.get())
    }
}

/// An attached database (`JET_DBID` names its slot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedDatabase {
    pub file: FileId,
    pub path: String,
}

/// The storage: what a record write's pages change. Behind the store latch
/// ([`InstanceState::store`]) so that record writes, which hold the instance latch shared,
/// can change it beside each other and beside readers: a write walks its tree holding the
/// store latch shared and stages its pages, then installs them and its log records holding it
/// exclusively for a moment (see `api::SessionCall::run_write`).
pub struct Store {
    /// `Some` between a successful init and term.
    pub storage: Option<Storage>,
}

/// The version store and the commits waiting for their log: what begin, commit and a record
/// write's versions change. Behind a latch of its own ([`InstanceState::versions`]), as ESE's
/// version store has its own critical sections, so that beginning a transaction, a nested
/// commit and a commit's publish never wait for the store latch (cache misses' installs,
/// write-back and log-flush bookkeeping, other writers' installs), and those never wait for
/// them. A call that needs both takes the store latch first: a reader holds both shared for
/// its walk, so it sees a record's tree value and its versions from the same moment, and a
/// record write installs its pages and its version holding both exclusively.
pub struct Versions {
    pub version_store: VersionStore,
    /// Level-1 commits whose Commit record is appended but whose versions are not yet
    /// published: transaction → the LSN just past its Commit record. The committer inserts
    /// its entry when it appends the record and removes it when it publishes, unless a
    /// `StopAndEmitLog` made the record durable first and published for it (see
    /// `api::session::publish_durable_commits`). Beside the version store, under its latch,
    /// because a commit holds the instance latch shared. A `BTreeMap`, so the stop publishes
    /// in a deterministic order. Empty whenever no commit call is in flight.
    pub logged_commits: BTreeMap<TxnId, Lsn>,
}

/// Everything behind the instance lock.
pub struct InstanceState<R: Runtime> {
    pub params: SystemParameters,
    /// The sessions, behind a leaf lock of their own ([`LockRank::Sessions`]): begin and end
    /// session add and remove one beside other calls, under the instance latch held shared.
    /// Every call takes its session's `Arc` out under a brief read ([`Self::session`]) and
    /// holds the session through it, never through the lock. A call holding the latch
    /// exclusively reaches them with `get_mut`, taking no lock.
    pub sessions: LeafRwLock<R, Slots<Arc<Session<R>>>>,
    /// The open tables, behind a leaf lock of their own ([`LockRank::Cursors`]): a call
    /// holding the instance latch shared opens or closes a table beside other calls. A call
    /// holding the latch exclusively reaches them with `get_mut`, taking no lock.
    pub cursors: LeafRwLock<R, Slots<Cursor>>,
    pub databases: Slots<AttachedDatabase>,
    /// The storage's fail-stop flag ([`Storage::failed_flag`]) from init to term, so a call
    /// can be refused with `InstanceUnavailable` without taking the store latch.
    pub storage_failed: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The store latch ([`crate::runtime::sync::LockRank::Store`]). A call holding the
    /// instance latch exclusively reaches it with [`InstanceState::store_mut`], taking no
    /// lock.
    pub store: RwLock<R, Store>,
    /// The versions' latch ([`crate::runtime::sync::LockRank::Versions`]), taken after the
    /// store latch by a call that needs both. A call holding the instance latch exclusively
    /// reaches it with [`InstanceState::versions_mut`], taking no lock.
    pub versions: RwLock<R, Versions>,
    pub last_stop: Option<StopRecord>,
    pub stops_completed: u64,
}

/// The shared core of one instance; API calls and the background thread hold an `Arc` of it.
pub struct InstanceCore<R: Runtime> {
    pub name: String,
    pub handle: InstanceHandle,
    pub options: InstanceOptions,
    pub env: Environment,
    pub gate: Gate<R>,
    pub stop_lock: Mutex<R, ()>,
    pub worker: Worker<R>,
    pub state: RwLock<R, InstanceState<R>>,
    pub session_claims: SessionClaims<R>,
    pub log_flush: Mutex<R, LogFlushWait>,
    /// Group-commit flushes ended. Moves only under the log's tail lock, as the flush is
    /// accounted, and a commit that finds a flush in flight reads it under the same lock, so
    /// it reads a count from before that flush's end. A std atomic, as the storage's failed
    /// flag: the tail lock orders it (a section with no scheduling point, which loom and
    /// shuttle never interleave), and a sleeper reads it under `log_flush`, which the
    /// flusher takes after moving it, to wake the sleepers.
    pub log_flushes_ended: std::sync::atomic::AtomicU64,
    /// Signalled (with `log_flush`) when a group-commit log flush ends.
    pub log_flushed: Condvar<R>,
    /// What a committer gathering a group commit watches with no latch held.
    pub commit_gathering: CommitGathering,
    /// Coverage marks, shared with the storage at init (see [`crate::marks`]).
    pub marks: crate::marks::Marks,
}

impl<R: Runtime> InstanceState<R> {
    /// The session `(slot, generation)`, if it exists: its `Arc`, taken out under a brief
    /// read of the sessions' lock (nothing else is done inside it).
    pub fn session(&self, slot: u16, generation: u32) -> Option<Arc<Session<R>>> {
        self.sessions.read().get(slot, generation).cloned()
    }

    /// Whether the storage is fail-stop (an I/O error): no lock taken.
    pub fn storage_failed(&self) -> bool {
        self.storage_failed
            .as_ref()
            .is_some_and(|failed| failed.load(std::sync::atomic::Ordering::Acquire))
    }

    /// The store, to a call holding the instance latch exclusively.
    pub fn store_mut(&mut self) -> &mut Store {
        self.store.get_mut()
    }

    /// The version store and the logged commits, to a call holding the instance latch
    /// exclusively.
    pub fn versions_mut(&mut self) -> &mut Versions {
        self.versions.get_mut()
    }

    /// The storage, to a call holding the instance latch exclusively; `NotInitialized`
    /// before init and after term.
    pub fn storage_mut(&mut self) -> crate::error::JetResult<&mut Storage> {
        self.store_mut()
            .storage
            .as_mut()
            .ok_or(crate::error::JetError::NotInitialized)
    }
}

impl<R: Runtime> InstanceCore<R> {
    /// Ends a group-commit log flush whose I/O ended with `written`: accounts it in
    /// `storage` (an I/O error makes it fail-stop, put down to `activity`) and counts it
    /// ended under the log's lock that accounts it, so a commit that saw the flush out, and
    /// read the count under that lock, reads a count from before this one; then wakes the
    /// commits asleep on it.
    pub fn end_log_flush(
        &self,
        storage: &crate::storage::Storage,
        flush: &crate::storage::LogFlush,
        written: std::io::Result<()>,
        activity: crate::storage::Activity,
    ) -> crate::error::JetResult<()> {
        let finished = storage.finish_log_flush(flush, written, activity, || {
            self.log_flushes_ended
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        });
        // A sleeper looks at the count holding `log_flush` from its last look until it
        // sleeps, and the count moved before this takes it: no end is missed.
        let flushes = self.log_flush.lock();
        if flushes.waiters > 0 {
            self.log_flushed.notify_all();
        }
        finished
    }

    pub fn new(
        name: String,
        handle: InstanceHandle,
        options: InstanceOptions,
        env: Environment,
    ) -> Self {
        let params = SystemParameters::default();
        let version_store = VersionStore::in_memory_of(
            params.version_store_max_versions,
            std::sync::Arc::clone(&env.version_memory),
            handle,
        );
        InstanceCore {
            name,
            handle,
            options,
            env,
            gate: Gate::new(options.mutations),
            stop_lock: Mutex::new(LockRank::StopSerial, ()),
            worker: Worker::new(),
            state: RwLock::new(
                LockRank::Instance,
                InstanceState {
                    params,
                    sessions: LeafRwLock::new(LockRank::Sessions, Slots::new(SESSIONS_MAX)),
                    cursors: LeafRwLock::new(LockRank::Cursors, Slots::new(CURSORS_MAX)),
                    databases: Slots::new(DATABASES_MAX),
                    storage_failed: None,
                    store: RwLock::new(LockRank::Store, Store { storage: None }),
                    versions: RwLock::new(
                        LockRank::Versions,
                        Versions {
                            version_store,
                            logged_commits: BTreeMap::new(),
                        },
                    ),
                    last_stop: None,
                    stops_completed: 0,
                },
            ),
            session_claims: SessionClaims::new(),
            log_flush: Mutex::new(LockRank::LogFlushWait, LogFlushWait::default()),
            log_flushes_ended: std::sync::atomic::AtomicU64::new(0),
            log_flushed: Condvar::new(),
            commit_gathering: CommitGathering::default(),
            marks: crate::marks::Marks::default(),
        }
    }

    pub fn log_path(&self) -> String {
        format!("{}/jet.log", self.name)
    }

    pub fn checkpoint_path(&self) -> String {
        format!("{}/jet.chk", self.name)
    }
}
