//! Thin wrappers so engine code reads like `std::sync` while the primitives come from a
//! [`Runtime`]. Nothing here adds behaviour.

use super::Runtime;
use std::marker::PhantomData;

/// Every lock of the engine has a rank; a thread may only take a lock whose rank is greater
/// than every rank it already holds, so no two threads can wait for each other in a cycle.
/// It is asserted at every acquisition (std in debug builds; loom and shuttle always, see
/// [`Runtime::CHECKS_LOCK_RANKS`]), so an
/// inversion fails at once instead of deadlocking only when the timing is unlucky; ESE's
/// critical sections carry ranks for the same reason (`dev/ese/src/inc/sync.hxx`).
///
/// Ranks, outermost first (the README's lock table says what each guards). Same shape as
/// `api::HandleKind` (a derive and explicit discriminants) and nothing more in common: a
/// rank's number orders locks, a handle kind's is part of a handle's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockRank {
    /// `InstanceCore::stop_lock`: serialises stop, partial stop and resume; held across the
    /// stop's drain and preparation.
    StopSerial = 10,
    /// `InstanceCore::state`, the instance latch (a reader-writer lock): sessions, cursors,
    /// databases, the store latch and the versions' latch. Read-only calls, record writes, begin, commit and
    /// rollback, opening and closing a table or a database, beginning and ending a session,
    /// setting, resetting and reading a session's context, defragment and get system
    /// parameter hold it shared, and so do the background worker's version cleanup,
    /// checkpoint-flush batches and online defrag steps; every other call (DDL, attach,
    /// detach, the other instance-level calls) exclusively; no
    /// call holds it while it waits for a page read or a log sync (`api::SessionCall`), and
    /// no I/O is made holding it shared ([`assert_no_shared_latch_io`]).
    Instance = 20,
    /// `InstanceState::store`, the store latch (a reader-writer lock): the storage (cache,
    /// log, files). Taken only under the instance latch held shared, and only for CPU work
    /// on cached pages (a call under the exclusive instance latch reaches the store without
    /// it): held shared by a read-only call's tree walks and by a record write's walk, which
    /// stages its pages, and by a level-1 commit's append and a group-commit flush's start
    /// and end, which take the log's own lock ([`LockRank::LogTail`]) inside; held
    /// exclusively while a record write installs what it staged, and for a miss's
    /// registration and install and a write-back batch's (a call's for room, the background
    /// checkpoint flush's) start and end.
    Store = 21,
    /// `InstanceState::versions`, the versions' latch (a reader-writer lock): the version
    /// store and the logged commits. Taken under the instance latch held shared, after the
    /// store latch when a call needs both, and only for CPU work: held shared with the store
    /// latch by walks and plans, exclusively with it by installs, exclusively with the store
    /// latch held shared by a level-1 commit's append; alone (exclusively) by begin, a
    /// nested commit and a commit's publish, which so wait for no cache install, write-back
    /// or log-flush bookkeeping.
    Versions = 22,
    /// The log's tail (`storage::Storage`'s [`LeafMutex`], no scheduling point): the log's
    /// unflushed bytes, its flushed and appended LSNs, the transactions the checkpoint's
    /// undo point follows, and a failure met under the store latch held shared. Taken only
    /// for CPU work, by a caller holding the store latch shared (a holder of the store latch
    /// exclusively reaches it with no lock): a level-1 commit's append (after the versions'
    /// latch), a group-commit flush's start and end, and looks at the log's LSNs. Takes
    /// nothing inside: a flush's end is counted, and a commit that saw the flush out reads
    /// the count, in a std atomic under it (`InstanceCore::log_flushes_ended`).
    LogTail = 23,
    /// `InstanceCore::session_claims`: claims given up while a call waited for one (a claim
    /// itself is an atomic in the session, under the latch). Taken under the instance latch
    /// (either way) or alone; a call waiting for its session waits on it holding nothing
    /// else.
    SessionClaims = 24,
    /// `InstanceState::cursors`: the open tables, a [`LeafRwLock`] (no scheduling point):
    /// read by every call on a cursor, written by the calls that open and close tables,
    /// under the instance latch held either way; takes nothing inside.
    Cursors = 25,
    /// `InstanceCore::log_flush`: the commits asleep until a group-commit flush ends. Taken
    /// by a sleeping commit, holding nothing else, and by a flush's end to wake it, after
    /// the log's tail is let go.
    LogFlushWait = 26,
    /// `InstanceState::sessions`: the sessions, a [`LeafRwLock`] (no scheduling point): read
    /// briefly by every session call to take its session's `Arc` out, written by begin and
    /// end session under the instance latch held shared; takes nothing inside. Above the
    /// claims' lock, under which a waiter looks its session up.
    Sessions = 27,
    /// `Worker::state`: what the background worker is asked to do.
    WorkerState = 30,
    /// `Gate::state`: phase, a term's decision and the sleepers (the calls in flight are an
    /// atomic word beside it, whose flags change only under it). Taken at a closed gate, by
    /// phase changes, and by a leaving call that must wake a sleeper; an open gate admits
    /// without it. A leaf but for the worker's thread handle.
    Gate = 40,
    /// `Worker::thread`: the background thread's join handle.
    WorkerThread = 50,
    /// `Jet::instances`: the instance table, a [`LeafRwLock`] (no scheduling point): read by
    /// every call to find its instance, written by create and term; takes nothing inside.
    InstanceTable = 60,
}

/// A lock a thread holds, in its runtime's stack of held locks
/// ([`Runtime::with_held_lock_ranks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLock {
    pub rank: LockRank,
    /// Held shared (a reader-writer lock's `read`): other threads may be inside beside it.
    pub shared: bool,
}

fn acquire<R: Runtime>(rank: LockRank, shared: bool) {
    if R::CHECKS_LOCK_RANKS {
        R::with_held_lock_ranks(|held| {
            // A leaf holder takes nothing more: above all, no runtime lock, whose taking is a
            // scheduling point at which loom or shuttle would run another thread into the
            // leaf's std lock, which blocks the one OS thread they run on.
            let leaf = |lock: &HeldLock| lock.rank == LockRank::LogTail;
            if let Some(inner) = held.iter().find(|inner| inner.rank >= rank || leaf(inner)) {
                let inner = inner.rank;
                let ranks: Vec<LockRank> = held.iter().map(|lock| lock.rank).collect();
                panic!("lock rank: taking {rank:?} while holding {inner:?} (held: {ranks:?})");
            }
            held.push(HeldLock { rank, shared });
        });
    }
}

fn release<R: Runtime>(rank: LockRank) {
    if R::CHECKS_LOCK_RANKS {
        R::with_held_lock_ranks(|held| {
            let at = held
                .iter()
                .rposition(|lock| lock.rank == rank)
                .expect("a released lock was held");
            held.remove(at);
        });
    }
}

/// What the assertion of [`unlatched`] says when it fails.
pub const LOCK_ACROSS_IO: &str = "lock held across I/O";

/// Proof that, when it was made, the thread held no lock another call may need: the
/// argument of every I/O the engine makes beside calls (a cache miss's page read, a
/// commit's group sync, the background flush's write-backs, log syncs and checkpoint
/// persists), whose documentation says "called with no lock held". Making one asserts it
/// wherever lock ranks are checked ([`Runtime::CHECKS_LOCK_RANKS`]), so I/O moved under a
/// latch fails at its first execution under loom, shuttle (the simulator) and std debug
/// builds, whichever session it would have held up: the same teeth the rank order has.
/// Only [`LockRank::StopSerial`] may be held: no call takes it, only stops and resumes,
/// which wait for this I/O anyway.
#[derive(Debug, Clone, Copy)]
pub struct Unlatched(());

/// An [`Unlatched`], after asserting that the thread holds no lock but
/// [`LockRank::StopSerial`] (the assertion runs where [`Runtime::CHECKS_LOCK_RANKS`]).
pub fn unlatched<R: Runtime>() -> Unlatched {
    if R::CHECKS_LOCK_RANKS {
        R::with_held_lock_ranks(|held| {
            if let Some(latch) = held.iter().find(|lock| lock.rank != LockRank::StopSerial) {
                let (latch, ranks) = (latch.rank, held_ranks(held));
                panic!(
                    "{LOCK_ACROSS_IO}: I/O beside calls while holding {latch:?} (held: {ranks:?})"
                );
            }
        });
    }
    Unlatched(())
}

fn held_ranks(held: &[HeldLock]) -> Vec<LockRank> {
    held.iter().map(|lock| lock.rank).collect()
}

/// What the assertion of [`assert_no_shared_latch_io`] says when it fails.
pub const IO_UNDER_SHARED_LATCH: &str = "I/O under a shared latch";

/// The check the storage runs before each I/O it may make under a latch (a page read or
/// write-back, a file or log sync: [`crate::storage::Storage::set_latched_io_check`]).
pub type LatchedIoCheck = fn();

/// Asserts, wherever lock ranks are checked, that the thread holds no latch shared. A call
/// that holds the instance latch shared runs beside other sessions' calls: it may make no
/// I/O until it lets go (its misses and syncs are made holding nothing, [`unlatched`]), or
/// a session waiting for the disk would hold up every session that needs the latch
/// exclusively, and every session behind those. I/O under the exclusive instance latch (DDL,
/// attach and detach, the stop's flush, a call's last try after its restarts) holds up the
/// others by design, and is allowed here.
pub fn assert_no_shared_latch_io<R: Runtime>() {
    if R::CHECKS_LOCK_RANKS {
        R::with_held_lock_ranks(|held| {
            if let Some(latch) = held.iter().find(|lock| lock.shared) {
                let (latch, ranks) = (latch.rank, held_ranks(held));
                panic!("{IO_UNDER_SHARED_LATCH}: holding {latch:?} shared (held: {ranks:?})");
            }
        });
    }
}

/// Tries `attempt` up to [`Runtime::RWLOCK_SPINS`] times, spinning between tries.
fn spin_for<R: Runtime, G>(mut attempt: impl FnMut() -> Option<G>) -> Option<G> {
    let mut guard = None;
    spin_until(R::RWLOCK_SPINS, || {
        guard = attempt();
        guard.is_some()
    });
    guard
}

/// Looks at `done` up to `looks` times, spinning between looks; whether it came true. For
/// waits on OS threads that are shorter than a sleep and its wake-up.
pub fn spin_until(looks: u32, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..looks {
        if done() {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

/// A mutex from runtime `R`, with its [`LockRank`].
pub struct Mutex<R: Runtime, T: Send + 'static> {
    inner: R::Mutex<T>,
    rank: LockRank,
}

impl<R: Runtime, T: Send + 'static> Mutex<R, T> {
    pub fn new(rank: LockRank, value: T) -> Self {
        Mutex {
            inner: R::mutex_new(value),
            rank,
        }
    }
    pub fn lock(&self) -> MutexGuard<'_, R, T> {
        acquire::<R>(self.rank, false);
        MutexGuard {
            inner: Some(R::mutex_lock(&self.inner)),
            rank: self.rank,
        }
    }
}

/// Proof of holding a [`Mutex`]; releasing it (drop) gives the rank back.
pub struct MutexGuard<'a, R: Runtime, T: Send + 'static> {
    inner: Option<R::MutexGuard<'a, T>>,
    rank: LockRank,
}

impl<R: Runtime, T: Send + 'static> std::ops::Deref for MutexGuard<'_, R, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_ref().expect("held until dropped")
    }
}

impl<R: Runtime, T: Send + 'static> std::ops::DerefMut for MutexGuard<'_, R, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("held until dropped")
    }
}

impl<R: Runtime, T: Send + 'static> Drop for MutexGuard<'_, R, T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            drop(inner);
            release::<R>(self.rank);
        }
    }
}

/// A reader-writer lock from runtime `R`, with its [`LockRank`]. A shared holder and an
/// exclusive holder count alike for rank order: a thread holding it either way may only take
/// locks ranked above it.
pub struct RwLock<R: Runtime, T: Send + Sync + 'static> {
    inner: R::RwLock<T>,
    rank: LockRank,
}

impl<R: Runtime, T: Send + Sync + 'static> RwLock<R, T> {
    pub fn new(rank: LockRank, value: T) -> Self {
        RwLock {
            inner: R::rwlock_new(value),
            rank,
        }
    }
    /// Holds the lock shared: other shared holders may hold it at the same time.
    pub fn read(&self) -> RwLockReadGuard<'_, R, T> {
        acquire::<R>(self.rank, true);
        let inner = spin_for::<R, _>(|| R::rwlock_try_read(&self.inner))
            .unwrap_or_else(|| R::rwlock_read(&self.inner));
        RwLockReadGuard {
            inner: Some(inner),
            rank: self.rank,
        }
    }
    /// The value, to a caller that owns the lock itself exclusively (it holds a lock ranked
    /// outside this one exclusively, so nobody else can be inside): no lock is taken.
    pub fn get_mut(&mut self) -> &mut T {
        R::rwlock_get_mut(&mut self.inner)
    }
    /// Holds the lock exclusively.
    pub fn write(&self) -> RwLockWriteGuard<'_, R, T> {
        acquire::<R>(self.rank, false);
        let inner = spin_for::<R, _>(|| R::rwlock_try_write(&self.inner))
            .unwrap_or_else(|| R::rwlock_write(&self.inner));
        RwLockWriteGuard {
            inner: Some(inner),
            rank: self.rank,
        }
    }
}

/// Proof of holding a [`RwLock`] shared; releasing it (drop) gives the rank back.
pub struct RwLockReadGuard<'a, R: Runtime, T: Send + Sync + 'static> {
    inner: Option<R::RwLockReadGuard<'a, T>>,
    rank: LockRank,
}

impl<R: Runtime, T: Send + Sync + 'static> std::ops::Deref for RwLockReadGuard<'_, R, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_ref().expect("held until dropped")
    }
}

impl<R: Runtime, T: Send + Sync + 'static> Drop for RwLockReadGuard<'_, R, T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            drop(inner);
            release::<R>(self.rank);
        }
    }
}

/// Proof of holding a [`RwLock`] exclusively; releasing it (drop) gives the rank back.
pub struct RwLockWriteGuard<'a, R: Runtime, T: Send + Sync + 'static> {
    inner: Option<R::RwLockWriteGuard<'a, T>>,
    rank: LockRank,
}

impl<R: Runtime, T: Send + Sync + 'static> std::ops::Deref for RwLockWriteGuard<'_, R, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_ref().expect("held until dropped")
    }
}

impl<R: Runtime, T: Send + Sync + 'static> std::ops::DerefMut for RwLockWriteGuard<'_, R, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("held until dropped")
    }
}

impl<R: Runtime, T: Send + Sync + 'static> Drop for RwLockWriteGuard<'_, R, T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            drop(inner);
            release::<R>(self.rank);
        }
    }
}

/// A reader-writer lock that is never a scheduling point: made of std's locks under every
/// runtime, with its [`LockRank`] asserted like the others. Only for a table every call reads
/// and few calls write, whose critical sections take no other lock, do no I/O and touch no
/// primitive of the runtime: under loom and shuttle one simulated thread runs at a time, so
/// such a section can never be contended and a checker gains no interleaving by scheduling
/// inside it, while every call would pay two scheduling points for it.
///
/// Under std, lookups run side by side without writing a shared cache line: the lock is
/// [`LEAF_READER_SHARDS`] std locks, each on a line of its own; a reader holds its thread's
/// shard shared, a writer holds every shard exclusively, in order (so two writers cannot
/// deadlock). With one std lock, every call's two lookups (its instance, its session or
/// cursor) bounced the lock's line between the CPUs: seek + retrieve by 2 threads against 1
/// measured a median 1.58 with it and 1.81 sharded (the seek loop of
/// `cargo bench -p jetsim-engine --bench concurrency`, six alternated runs of each build on
/// this 2-core machine).
pub struct LeafRwLock<R: Runtime, T> {
    shards: [ReaderShard; LEAF_READER_SHARDS],
    value: std::cell::UnsafeCell<T>,
    rank: LockRank,
    runtime: PhantomData<fn() -> R>,
}

/// Readers' shards of one [`LeafRwLock`].
const LEAF_READER_SHARDS: usize = 8;

/// One shard: a lock of its own on a cache line of its own, so readers on different shards
/// never write the same line.
#[repr(align(128))]
struct ReaderShard(std::sync::RwLock<()>);

/// The shard the calling OS thread reads through: threads are numbered as they first read.
fn reader_shard() -> usize {
    static NEXT_THREAD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize =
            NEXT_THREAD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % LEAF_READER_SHARDS;
    }
    // Shard 0 for a lookup from a thread-local destructor, after this one is gone.
    SHARD.try_with(|shard| *shard).unwrap_or(0)
}

// SAFETY: the value is reached only through a guard: shared by a reader holding one shard
// shared, exclusively by a writer holding every shard exclusively, as std's RwLock<T>.
unsafe impl<R: Runtime, T: Send + Sync> Sync for LeafRwLock<R, T> {}
unsafe impl<R: Runtime, T: Send> Send for LeafRwLock<R, T> {}

/// A reader's hold: its shard, shared.
pub struct LeafRead<'a, T> {
    _shard: std::sync::RwLockReadGuard<'a, ()>,
    value: &'a T,
}

impl<T> std::ops::Deref for LeafRead<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

/// A writer's hold: every shard, exclusively.
pub struct LeafWrite<'a, T> {
    _shards: [std::sync::RwLockWriteGuard<'a, ()>; LEAF_READER_SHARDS],
    value: &'a mut T,
}

impl<T> std::ops::Deref for LeafWrite<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> std::ops::DerefMut for LeafWrite<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}

impl<R: Runtime, T> LeafRwLock<R, T> {
    pub fn new(rank: LockRank, value: T) -> Self {
        LeafRwLock {
            shards: std::array::from_fn(|_| ReaderShard(std::sync::RwLock::new(()))),
            value: std::cell::UnsafeCell::new(value),
            rank,
            runtime: PhantomData,
        }
    }

    /// Holds the lock shared.
    pub fn read(&self) -> LeafGuard<'_, R, LeafRead<'_, T>> {
        acquire::<R>(self.rank, true);
        // A panic while holding it left the table consistent: every update is one statement.
        let shard = self.shards[reader_shard()]
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // SAFETY: a writer holds every shard exclusively; this reader holds one shared.
        let value = unsafe { &*self.value.get() };
        LeafGuard::new(
            LeafRead {
                _shard: shard,
                value,
            },
            self.rank,
        )
    }

    /// The value, to a caller that owns the lock itself exclusively (as
    /// [`RwLock::get_mut`]): no lock is taken.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// Holds the lock exclusively.
    pub fn write(&self) -> LeafGuard<'_, R, LeafWrite<'_, T>> {
        acquire::<R>(self.rank, false);
        // In index order: `from_fn` calls its closure for 0, 1, ... in turn.
        let shards = std::array::from_fn(|index| {
            self.shards[index]
                .0
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        });
        // SAFETY: every shard is held exclusively: no reader or writer reaches the value.
        let value = unsafe { &mut *self.value.get() };
        LeafGuard::new(
            LeafWrite {
                _shards: shards,
                value,
            },
            self.rank,
        )
    }
}

/// Proof of holding a [`LeafRwLock`] (shared or exclusively, as `G` says); dropping it gives
/// the rank back.
pub struct LeafGuard<'a, R: Runtime, G> {
    inner: Option<G>,
    rank: LockRank,
    runtime: PhantomData<&'a fn() -> R>,
}

impl<R: Runtime, G> LeafGuard<'_, R, G> {
    fn new(inner: G, rank: LockRank) -> Self {
        LeafGuard {
            inner: Some(inner),
            rank,
            runtime: PhantomData,
        }
    }
}

impl<R: Runtime, G: std::ops::Deref> std::ops::Deref for LeafGuard<'_, R, G> {
    type Target = G::Target;
    fn deref(&self) -> &G::Target {
        self.inner.as_ref().expect("held until dropped")
    }
}

impl<R: Runtime, G: std::ops::DerefMut> std::ops::DerefMut for LeafGuard<'_, R, G> {
    fn deref_mut(&mut self) -> &mut G::Target {
        self.inner.as_mut().expect("held until dropped")
    }
}

impl<R: Runtime, G> Drop for LeafGuard<'_, R, G> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            drop(inner);
            release::<R>(self.rank);
        }
    }
}

/// How a lock outside the runtime-generic code ([`LeafMutex`]) tells the runtime's rank
/// checks that it is taken and let go: set once the owner knows its runtime
/// ([`RankHooks::of`]); [`RankHooks::UNCHECKED`] before (recovery, a storage opened alone).
#[derive(Clone, Copy)]
pub struct RankHooks {
    acquire: fn(LockRank, bool),
    release: fn(LockRank),
}

impl RankHooks {
    /// No checks: for a storage opened outside an instance (tests, tools).
    pub const UNCHECKED: RankHooks = RankHooks {
        acquire: |_, _| {},
        release: |_| {},
    };

    /// The rank checks of runtime `R`, as its own locks make them.
    pub fn of<R: Runtime>() -> RankHooks {
        RankHooks {
            acquire: acquire::<R>,
            release: release::<R>,
        }
    }
}

/// A mutex with no scheduling point, for a short CPU-only section in code that is not
/// generic over the runtime (the storage): a std lock, its rank checked through
/// [`RankHooks`]. As for [`LeafRwLock`], no holder may reach a scheduling point or an I/O
/// inside it, so under loom and shuttle it can never be contended (one simulated thread
/// runs at a time), and under std it is held for a few appends' worth of copying. A holder
/// of its owner exclusively reaches the value with no lock ([`LeafMutex::get_mut`]).
pub struct LeafMutex<T> {
    inner: std::sync::Mutex<T>,
    rank: LockRank,
    hooks: RankHooks,
}

impl<T> LeafMutex<T> {
    pub fn new(rank: LockRank, value: T) -> Self {
        LeafMutex {
            inner: std::sync::Mutex::new(value),
            rank,
            hooks: RankHooks::UNCHECKED,
        }
    }

    /// From now on, taking the lock is checked against the ranks of the runtime `hooks` came
    /// from.
    pub fn set_rank_hooks(&mut self, hooks: RankHooks) {
        self.hooks = hooks;
    }

    pub fn lock(&self) -> LeafMutexGuard<'_, T> {
        (self.hooks.acquire)(self.rank, false);
        // A panic while holding it is an engine bug the caller reports; the value's own
        // invariants are the holder's, as in every lock here.
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        LeafMutexGuard {
            inner: Some(inner),
            rank: self.rank,
            release: self.hooks.release,
        }
    }

    /// The value, to a caller that owns the lock exclusively: no lock is taken.
    pub fn get_mut(&mut self) -> &mut T {
        self.inner
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn into_inner(self) -> T {
        self.inner
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Proof of holding a [`LeafMutex`]; dropping it gives the rank back.
pub struct LeafMutexGuard<'a, T> {
    inner: Option<std::sync::MutexGuard<'a, T>>,
    rank: LockRank,
    release: fn(LockRank),
}

impl<T> std::ops::Deref for LeafMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_ref().expect("held until dropped")
    }
}

impl<T> std::ops::DerefMut for LeafMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("held until dropped")
    }
}

impl<T> Drop for LeafMutexGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            drop(inner);
            (self.release)(self.rank);
        }
    }
}

/// A condition variable from runtime `R`.
pub struct Condvar<R: Runtime> {
    inner: R::Condvar,
}

impl<R: Runtime> Default for Condvar<R> {
    fn default() -> Self {
        Condvar {
            inner: R::condvar_new(),
        }
    }
}

impl<R: Runtime> Condvar<R> {
    pub fn new() -> Self {
        Self::default()
    }
    /// Waits, letting go of the lock meanwhile (and of its rank: a waiting thread holds it
    /// not), then takes it again under the same rank rule as [`Mutex::lock`].
    pub fn wait<'a, T: Send + 'static>(
        &self,
        mut guard: MutexGuard<'a, R, T>,
    ) -> MutexGuard<'a, R, T> {
        let rank = guard.rank;
        let inner = guard.inner.take().expect("held until dropped");
        release::<R>(rank);
        let inner = R::condvar_wait(&self.inner, inner);
        acquire::<R>(rank, false);
        guard.inner = Some(inner);
        guard
    }
    /// Waits until `condition` is false. Every caller loops on its predicate, so spurious
    /// wake-ups (which loom and shuttle both model) are harmless.
    pub fn wait_while<'a, T: Send + 'static>(
        &self,
        mut guard: MutexGuard<'a, R, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, R, T> {
        while condition(&mut guard) {
            guard = self.wait(guard);
        }
        guard
    }
    pub fn notify_all(&self) {
        R::condvar_notify_all(&self.inner);
    }
}

/// A 64-bit atomic counter from runtime `R` (sequentially consistent).
pub struct AtomicU64<R: Runtime> {
    inner: R::AtomicU64,
}

impl<R: Runtime> AtomicU64<R> {
    pub fn new(value: u64) -> Self {
        AtomicU64 {
            inner: R::atomic_u64_new(value),
        }
    }
    pub fn load(&self) -> u64 {
        R::atomic_u64_load(&self.inner)
    }
    pub fn fetch_add(&self, delta: u64) -> u64 {
        R::atomic_u64_fetch_add(&self.inner, delta)
    }
    pub fn swap(&self, value: u64) -> u64 {
        R::atomic_u64_swap(&self.inner, value)
    }
    pub fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
        R::atomic_u64_compare_exchange(&self.inner, current, new)
    }
}

/// Thread operations of runtime `R`.
pub struct Thread<R: Runtime>(PhantomData<R>);

impl<R: Runtime> Thread<R> {
    pub fn spawn<F, T>(body: F) -> R::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        R::spawn(body)
    }
    pub fn current_id() -> R::ThreadId {
        R::current_thread_id()
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;
    use crate::runtime::StdRuntime;

    #[test]
    fn locks_taken_in_rank_order_are_fine() {
        let instance = Mutex::<StdRuntime, _>::new(LockRank::Instance, 0);
        let gate = Mutex::<StdRuntime, _>::new(LockRank::Gate, 0);
        let _instance = instance.lock();
        let _gate = gate.lock();
    }

    #[test]
    #[should_panic(expected = "lock rank: taking Instance while holding Gate")]
    fn a_lock_taken_against_its_rank_panics() {
        let instance = Mutex::<StdRuntime, _>::new(LockRank::Instance, 0);
        let gate = Mutex::<StdRuntime, _>::new(LockRank::Gate, 0);
        let _gate = gate.lock();
        let _instance = instance.lock();
    }

    #[test]
    #[should_panic(expected = "lock rank: taking LogFlushWait while holding LogTail")]
    fn a_leaf_mutex_holder_takes_no_lock_even_one_ranked_above_it() {
        // Goal: the log's tail is a std lock with no scheduling point; a runtime lock taken
        // inside it is a scheduling point at which loom or shuttle could run another thread
        // into the std lock and hang their one OS thread, so the rank check refuses it at
        // once, rank order or not.
        let mut tail = LeafMutex::new(LockRank::LogTail, 0u64);
        tail.set_rank_hooks(RankHooks::of::<StdRuntime>());
        let sleepers = Mutex::<StdRuntime, _>::new(LockRank::LogFlushWait, 0u32);
        let _tail = tail.lock();
        let _sleepers = sleepers.lock();
    }

    #[test]
    fn a_leaf_mutex_checks_ranks_only_once_its_runtime_is_known() {
        // A storage opened outside an instance (recovery's tools, tests) has no runtime to
        // check against; once the hooks are set, taking it against its rank panics.
        let tail = LeafMutex::new(LockRank::LogTail, 0u64);
        let gate = Mutex::<StdRuntime, _>::new(LockRank::Gate, 0u32);
        let _gate = gate.lock();
        assert_eq!(*tail.lock(), 0, "unchecked before the hooks are set");
        let mut tail = tail;
        tail.set_rank_hooks(RankHooks::of::<StdRuntime>());
        let inverted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(tail.lock());
        }));
        assert!(
            inverted.is_err(),
            "taking LogTail while holding Gate must panic"
        );
    }

    #[test]
    #[should_panic(expected = "lock rank: taking Instance while holding Instance")]
    fn two_locks_of_one_rank_are_an_inversion_waiting_to_happen() {
        let a = Mutex::<StdRuntime, _>::new(LockRank::Instance, 0);
        let b = Mutex::<StdRuntime, _>::new(LockRank::Instance, 0);
        let _a = a.lock();
        let _b = b.lock();
    }

    #[test]
    fn a_leaf_writer_waits_for_a_reader_on_another_shard() {
        // Goal: a writer takes every shard, not only its own thread's: while this thread
        // reads, a writer on another thread gets the lock only after the read ends.
        use std::sync::atomic::{AtomicBool, Ordering};
        let table = LeafRwLock::<StdRuntime, _>::new(LockRank::Sessions, 0u32);
        let writer_waiting = AtomicBool::new(false);
        let read_ended = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let read = table.read();
            let writer = scope.spawn(|| {
                writer_waiting.store(true, Ordering::SeqCst);
                let mut value = table.write();
                *value += 1;
                read_ended.load(Ordering::SeqCst)
            });
            while !writer_waiting.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            // Room for a writer that skipped this shard to get in first.
            for _ in 0..1000 {
                std::thread::yield_now();
            }
            assert_eq!(*read, 0);
            read_ended.store(true, Ordering::SeqCst);
            drop(read);
            assert!(
                writer.join().unwrap(),
                "the writer got in while a read was held"
            );
        });
        assert_eq!(*table.read(), 1);
    }

    #[test]
    fn two_shared_holders_of_a_latch_coexist() {
        let latch = RwLock::<StdRuntime, _>::new(LockRank::Instance, 0);
        let claims = Mutex::<StdRuntime, _>::new(LockRank::SessionClaims, 0);
        let first = latch.read();
        let second = std::thread::scope(|scope| scope.spawn(|| *latch.read()).join());
        assert_eq!(second.expect("a second reader is not blocked"), 0);
        let _claims = claims.lock();
        drop(first);
    }

    #[test]
    #[should_panic(expected = "lock rank: taking Instance while holding SessionClaims")]
    fn a_shared_latch_taken_against_its_rank_panics() {
        let latch = RwLock::<StdRuntime, _>::new(LockRank::Instance, 0);
        let claims = Mutex::<StdRuntime, _>::new(LockRank::SessionClaims, 0);
        let _claims = claims.lock();
        let _latch = latch.read();
    }

    #[test]
    fn io_beside_calls_may_hold_only_the_stop_serialisation() {
        let stop_serial = Mutex::<StdRuntime, _>::new(LockRank::StopSerial, 0);
        let _stop = stop_serial.lock();
        unlatched::<StdRuntime>();
    }

    #[test]
    #[should_panic(expected = "lock held across I/O: I/O beside calls while holding Store")]
    fn io_beside_calls_under_a_shared_latch_panics() {
        let store = RwLock::<StdRuntime, _>::new(LockRank::Store, 0);
        let _store = store.read();
        unlatched::<StdRuntime>();
    }

    #[test]
    fn a_released_lock_gives_its_rank_back() {
        let instance = Mutex::<StdRuntime, _>::new(LockRank::Instance, 0);
        let gate = Mutex::<StdRuntime, _>::new(LockRank::Gate, 0);
        drop(gate.lock());
        let _instance = instance.lock();
        StdRuntime::with_held_lock_ranks(|held| {
            assert_eq!(
                held,
                &[HeldLock {
                    rank: LockRank::Instance,
                    shared: false
                }]
            )
        });
    }

    #[test]
    fn io_under_an_exclusive_latch_passes_the_shared_latch_check() {
        let instance = RwLock::<StdRuntime, _>::new(LockRank::Instance, 0);
        let store = RwLock::<StdRuntime, _>::new(LockRank::Store, 0);
        let _instance = instance.write();
        let _store = store.write();
        assert_no_shared_latch_io::<StdRuntime>();
    }

    #[test]
    #[should_panic(expected = "I/O under a shared latch: holding Instance shared")]
    fn io_under_the_shared_instance_latch_panics_even_with_the_store_latch_exclusive() {
        let instance = RwLock::<StdRuntime, _>::new(LockRank::Instance, 0);
        let store = RwLock::<StdRuntime, _>::new(LockRank::Store, 0);
        let _instance = instance.read();
        let _store = store.write();
        assert_no_shared_latch_io::<StdRuntime>();
    }
}
