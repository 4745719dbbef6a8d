//! The runtime boundary: every lock, condition variable, atomic and thread the engine uses comes
//! from a [`Runtime`], so the same engine code runs on OS threads ([`StdRuntime`]), under loom
//! (`LoomRuntime`, feature `loom`, used by `jetsim-models`) and under shuttle (`ShuttleRuntime`,
//! feature `shuttle`, used by `jetsim`, the simulator). All three live here and share one body
//! (`implement.rs`).
//!
//! Why a trait with generic associated types instead of a `cfg`-switched facade (tokio's
//! `src/loom/`): `cargo test` at the workspace root builds every crate once, and cargo unifies
//! features, so a feature that switched the primitives would put the engine into shuttle mode
//! for the std tests too. Here the `loom` and `shuttle` features only add a type each, the std
//! engine is the same with or without them, and each harness picks its runtime at the call
//! site, so all three coexist in one test run.
//!
//! Engine code never names `R::Mutex` directly; it uses the wrappers in [`sync`], which read
//! like `std::sync`.

#[macro_use]
mod implement;

/// A panic's payload (from `catch_unwind` or a joined thread) as text: the message of
/// `panic!` with a literal or with arguments, or a placeholder for any other payload. Every
/// harness that turns an engine panic into a finding reads it here.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic payload>".to_owned())
}
#[cfg(feature = "loom")]
pub mod loom_runtime;
#[cfg(feature = "shuttle")]
pub mod shuttle_runtime;
pub mod std_runtime;
pub mod sync;

#[cfg(feature = "loom")]
pub use loom_runtime::LoomRuntime;
#[cfg(feature = "shuttle")]
pub use shuttle_runtime::ShuttleRuntime;
pub use std_runtime::StdRuntime;

use std::fmt::Debug;
use std::ops::{Deref, DerefMut};

/// The primitives a concurrency checker must see. Implementations must not add behaviour: a
/// lock is a lock, a notify is a notify; poisoning is absorbed (a panicking engine thread is a
/// bug the harness reports, not something the engine recovers from).
pub trait Runtime: Sized + Send + Sync + 'static {
    /// Mutual exclusion around `T`.
    type Mutex<T: Send + 'static>: Send + Sync;
    /// Proof of holding a [`Runtime::Mutex`].
    type MutexGuard<'a, T: Send + 'static>: DerefMut<Target = T>;
    /// A reader-writer lock around `T`: many shared holders or one exclusive holder.
    type RwLock<T: Send + Sync + 'static>: Send + Sync;
    /// Proof of holding a [`Runtime::RwLock`] shared.
    type RwLockReadGuard<'a, T: Send + Sync + 'static>: Deref<Target = T>;
    /// Proof of holding a [`Runtime::RwLock`] exclusively.
    type RwLockWriteGuard<'a, T: Send + Sync + 'static>: DerefMut<Target = T>;
    /// A condition variable usable with any [`Runtime::Mutex`].
    type Condvar: Send + Sync;
    /// A 64-bit atomic counter.
    type AtomicU64: Send + Sync;
    /// Handle to a spawned thread.
    type JoinHandle<T: Send + 'static>: Send;
    /// Identity of a thread, for session-context ownership checks.
    type ThreadId: Copy + Eq + Debug + Send + Sync + 'static;

    fn mutex_new<T: Send + 'static>(value: T) -> Self::Mutex<T>;
    fn mutex_lock<T: Send + 'static>(mutex: &Self::Mutex<T>) -> Self::MutexGuard<'_, T>;

    fn rwlock_new<T: Send + Sync + 'static>(value: T) -> Self::RwLock<T>;
    fn rwlock_read<T: Send + Sync + 'static>(
        lock: &Self::RwLock<T>,
    ) -> Self::RwLockReadGuard<'_, T>;
    fn rwlock_write<T: Send + Sync + 'static>(
        lock: &Self::RwLock<T>,
    ) -> Self::RwLockWriteGuard<'_, T>;
    /// Holds the lock shared if that needs no wait; `None` otherwise.
    fn rwlock_try_read<T: Send + Sync + 'static>(
        lock: &Self::RwLock<T>,
    ) -> Option<Self::RwLockReadGuard<'_, T>>;
    /// Holds the lock exclusively if that needs no wait; `None` otherwise.
    fn rwlock_try_write<T: Send + Sync + 'static>(
        lock: &Self::RwLock<T>,
    ) -> Option<Self::RwLockWriteGuard<'_, T>>;
    /// The value of a lock its caller owns exclusively (`&mut`): no locking, no scheduling
    /// point.
    fn rwlock_get_mut<T: Send + Sync + 'static>(lock: &mut Self::RwLock<T>) -> &mut T;

    fn condvar_new() -> Self::Condvar;
    fn condvar_wait<'a, T: Send + 'static>(
        condvar: &Self::Condvar,
        guard: Self::MutexGuard<'a, T>,
    ) -> Self::MutexGuard<'a, T>;
    fn condvar_notify_all(condvar: &Self::Condvar);

    fn atomic_u64_new(value: u64) -> Self::AtomicU64;
    fn atomic_u64_load(atomic: &Self::AtomicU64) -> u64;
    fn atomic_u64_fetch_add(atomic: &Self::AtomicU64, delta: u64) -> u64;
    fn atomic_u64_swap(atomic: &Self::AtomicU64, value: u64) -> u64;
    /// Stores `new` if the value is `current`; `Err` holds the value found otherwise.
    fn atomic_u64_compare_exchange(
        atomic: &Self::AtomicU64,
        current: u64,
        new: u64,
    ) -> Result<u64, u64>;

    fn spawn<F, T>(body: F) -> Self::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;
    /// Waits for the thread; `Err` carries its panic payload.
    fn join<T: Send + 'static>(handle: Self::JoinHandle<T>) -> std::thread::Result<T>;

    fn current_thread_id() -> Self::ThreadId;
    /// A scheduling point with no other effect (lets model checkers preempt here).
    fn yield_now();

    /// Runs `f` on the calling thread's stack of held lock ranks. Per runtime thread (a loom
    /// or shuttle thread has its own, though they share one OS thread), so each runtime
    /// keeps it in its own thread-local storage. It asserts lock order ([`Runtime::CHECKS_LOCK_RANKS`] says when)
    /// ([`sync::LockRank`]); it is bookkeeping that never changes what the engine does.
    fn with_held_lock_ranks<T>(f: impl FnOnce(&mut Vec<sync::HeldLock>) -> T) -> T;

    /// Whether the lock-rank assertions run in this build. Always under loom and shuttle,
    /// whose builds are proofs and campaigns (the simulator runs release-built, and a lock
    /// taken against its rank must fail its seed there, not only in debug tests); under std
    /// only in debug builds, so the shipped engine pays nothing for the bookkeeping.
    const CHECKS_LOCK_RANKS: bool;

    /// How many times a reader-writer lock is tried, spinning between tries, before the
    /// thread sleeps for it ([`sync::RwLock`]). On OS threads a latch held for microseconds
    /// is cheaper to spin for than to sleep for: a futex sleep and wake-up cost more than the
    /// wait. 0 under loom and shuttle, where a try is a scheduling point and spinning would
    /// only multiply the schedules.
    const RWLOCK_SPINS: u32;

    /// How many times a committer about to start a log flush looks, spinning between looks,
    /// for another transaction's Commit record to join it, while transactions that have not
    /// appended theirs are open (see `SessionCall::wait_durable`). On OS threads an fsync
    /// costs far more than the CPU of a short transaction, so a flush that waits that long
    /// covers two commits for one sync. 0 under loom and shuttle: there the wait would only
    /// multiply the schedules, and a seed's meaning must not depend on it.
    const GROUP_COMMIT_SPINS: u32;
}
