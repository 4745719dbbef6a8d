//! Thin wrappers so engine code reads like `std::sync` while the primitives come from a
//! [`Runtime`]. Nothing here adds behaviour.

use super::Runtime;
use std::marker::PhantomData;

/// A mutex from runtime `R`.
pub struct Mutex<R: Runtime, T: Send + 'static> {
    inner: R::Mutex<T>,
}

impl<R: Runtime, T: Send + 'static> Mutex<R, T> {
    pub fn new(value: T) -> Self {
        Mutex {
            inner: R::mutex_new(value),
        }
    }
    pub fn lock(&self) -> R::MutexGuard<'_, T> {
        R::mutex_lock(&self.inner)
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
    pub fn wait<'a, T: Send + 'static>(&self, guard: R::MutexGuard<'a, T>) -> R::MutexGuard<'a, T> {
        R::condvar_wait(&self.inner, guard)
    }
    /// Waits until `condition` is false. Every caller loops on its predicate, so spurious
    /// wake-ups (which loom and shuttle both model) are harmless.
    pub fn wait_while<'a, T: Send + 'static>(
        &self,
        mut guard: R::MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> R::MutexGuard<'a, T> {
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
