//! [`Runtime`] on loom 0.7: every lock, notify, atomic operation and thread start is a point
//! where loom's scheduler may switch threads, so a model explores the engine's interleavings.
//!
//! Only usable inside `loom::model` (loom's primitives panic outside an execution).

use jetsim_engine::runtime::sync::LockRank;
use jetsim_engine::Runtime;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use loom::thread::{JoinHandle, ThreadId};
use std::sync::PoisonError;

/// loom's threads and `loom::sync`. Adds no behaviour: a lock is a lock, a notify is a notify.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoomRuntime;

impl Runtime for LoomRuntime {
    type Mutex<T: Send + 'static> = Mutex<T>;
    type MutexGuard<'a, T: Send + 'static> = MutexGuard<'a, T>;
    type RwLock<T: Send + Sync + 'static> = RwLock<T>;
    type RwLockReadGuard<'a, T: Send + Sync + 'static> = RwLockReadGuard<'a, T>;
    type RwLockWriteGuard<'a, T: Send + Sync + 'static> = RwLockWriteGuard<'a, T>;
    type Condvar = Condvar;
    type AtomicU64 = AtomicU64;
    type JoinHandle<T: Send + 'static> = JoinHandle<T>;
    type ThreadId = ThreadId;

    fn mutex_new<T: Send + 'static>(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
    // Poisoning is absorbed, as in the std runtime: a panicking model thread already fails
    // the whole loom execution.
    fn mutex_lock<T: Send + 'static>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }
    fn rwlock_new<T: Send + Sync + 'static>(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
    fn rwlock_read<T: Send + Sync + 'static>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
        lock.read().unwrap_or_else(PoisonError::into_inner)
    }
    fn rwlock_write<T: Send + Sync + 'static>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
        lock.write().unwrap_or_else(PoisonError::into_inner)
    }
    fn condvar_new() -> Condvar {
        Condvar::new()
    }
    // `Self::MutexGuard` rather than `MutexGuard`: keeps `'a` early-bound as in the trait
    // (E0195 otherwise).
    fn condvar_wait<'a, T: Send + 'static>(
        condvar: &Condvar,
        guard: Self::MutexGuard<'a, T>,
    ) -> Self::MutexGuard<'a, T> {
        condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }
    fn condvar_notify_all(condvar: &Condvar) {
        condvar.notify_all();
    }
    fn atomic_u64_new(value: u64) -> AtomicU64 {
        AtomicU64::new(value)
    }
    fn atomic_u64_load(atomic: &AtomicU64) -> u64 {
        atomic.load(Ordering::SeqCst)
    }
    fn atomic_u64_fetch_add(atomic: &AtomicU64, delta: u64) -> u64 {
        atomic.fetch_add(delta, Ordering::SeqCst)
    }
    fn spawn<F, T>(body: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        loom::thread::spawn(body)
    }
    fn join<T: Send + 'static>(handle: JoinHandle<T>) -> std::thread::Result<T> {
        handle.join()
    }
    fn current_thread_id() -> ThreadId {
        loom::thread::current().id()
    }
    fn yield_now() {
        loom::thread::yield_now();
    }
    fn with_held_lock_ranks<T>(f: impl FnOnce(&mut Vec<LockRank>) -> T) -> T {
        HELD_LOCK_RANKS.with(|held| f(&mut held.borrow_mut()))
    }
}

loom::thread_local! {
    // Per loom thread: the engine's lock-order bookkeeping (debug assertions only).
    static HELD_LOCK_RANKS: std::cell::RefCell<Vec<LockRank>> = std::cell::RefCell::new(Vec::new());
}
