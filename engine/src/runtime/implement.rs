//! The one body of every [`Runtime`](super::Runtime) implementation. std, loom and shuttle
//! each mirror `std::sync` and `std::thread` under their own crate root (`loom::sync::Mutex`,
//! `shuttle::thread::spawn`, ...), so an implementation is the same mapping with a different
//! root; writing it once keeps the three from drifting apart (a poisoning rule or lock-rank
//! bookkeeping changed in one but not the others would make a loom proof or a shuttle seed
//! check a different engine from the one that ships).

/// Defines `pub struct $name` and implements [`Runtime`](crate::runtime::Runtime) for it on the
/// primitives under `$root` (`std`, `loom` or `shuttle`), with the calling thread's held lock
/// ranks in `$root`'s thread-local storage.
macro_rules! implement_runtime {
    ($(#[$attr:meta])* $name:ident on $root:ident) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl $crate::runtime::Runtime for $name {
            type Mutex<T: Send + 'static> = $root::sync::Mutex<T>;
            type MutexGuard<'a, T: Send + 'static> = $root::sync::MutexGuard<'a, T>;
            type RwLock<T: Send + Sync + 'static> = $root::sync::RwLock<T>;
            type RwLockReadGuard<'a, T: Send + Sync + 'static> = $root::sync::RwLockReadGuard<'a, T>;
            type RwLockWriteGuard<'a, T: Send + Sync + 'static> =
                $root::sync::RwLockWriteGuard<'a, T>;
            type Condvar = $root::sync::Condvar;
            type AtomicU64 = $root::sync::atomic::AtomicU64;
            type JoinHandle<T: Send + 'static> = $root::thread::JoinHandle<T>;
            type ThreadId = $root::thread::ThreadId;

            fn mutex_new<T: Send + 'static>(value: T) -> Self::Mutex<T> {
                $root::sync::Mutex::new(value)
            }
            // Poisoning is absorbed: on OS threads a panicking engine thread is a bug the
            // harness reports; under loom and shuttle it already fails the execution, which
            // reports it with its schedule. (All three return std's `PoisonError`.)
            fn mutex_lock<T: Send + 'static>(mutex: &Self::Mutex<T>) -> Self::MutexGuard<'_, T> {
                mutex.lock().unwrap_or_else(::std::sync::PoisonError::into_inner)
            }
            fn rwlock_new<T: Send + Sync + 'static>(value: T) -> Self::RwLock<T> {
                $root::sync::RwLock::new(value)
            }
            fn rwlock_read<T: Send + Sync + 'static>(
                lock: &Self::RwLock<T>,
            ) -> Self::RwLockReadGuard<'_, T> {
                lock.read().unwrap_or_else(::std::sync::PoisonError::into_inner)
            }
            fn rwlock_write<T: Send + Sync + 'static>(
                lock: &Self::RwLock<T>,
            ) -> Self::RwLockWriteGuard<'_, T> {
                lock.write().unwrap_or_else(::std::sync::PoisonError::into_inner)
            }
            fn rwlock_try_read<T: Send + Sync + 'static>(
                lock: &Self::RwLock<T>,
            ) -> Option<Self::RwLockReadGuard<'_, T>> {
                match lock.try_read() {
                    Ok(guard) => Some(guard),
                    Err(::std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                    Err(::std::sync::TryLockError::WouldBlock) => None,
                }
            }
            fn rwlock_try_write<T: Send + Sync + 'static>(
                lock: &Self::RwLock<T>,
            ) -> Option<Self::RwLockWriteGuard<'_, T>> {
                match lock.try_write() {
                    Ok(guard) => Some(guard),
                    Err(::std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                    Err(::std::sync::TryLockError::WouldBlock) => None,
                }
            }
            fn rwlock_get_mut<T: Send + Sync + 'static>(lock: &mut Self::RwLock<T>) -> &mut T {
                lock.get_mut().unwrap_or_else(::std::sync::PoisonError::into_inner)
            }
            fn condvar_new() -> Self::Condvar {
                $root::sync::Condvar::new()
            }
            // `Self::MutexGuard` keeps `'a` early-bound as in the trait (E0195 otherwise).
            fn condvar_wait<'a, T: Send + 'static>(
                condvar: &Self::Condvar,
                guard: Self::MutexGuard<'a, T>,
            ) -> Self::MutexGuard<'a, T> {
                condvar.wait(guard).unwrap_or_else(::std::sync::PoisonError::into_inner)
            }
            fn condvar_notify_all(condvar: &Self::Condvar) {
                condvar.notify_all();
            }
            fn atomic_u64_new(value: u64) -> Self::AtomicU64 {
                $root::sync::atomic::AtomicU64::new(value)
            }
            fn atomic_u64_load(atomic: &Self::AtomicU64) -> u64 {
                atomic.load($root::sync::atomic::Ordering::SeqCst)
            }
            fn atomic_u64_fetch_add(atomic: &Self::AtomicU64, delta: u64) -> u64 {
                atomic.fetch_add(delta, $root::sync::atomic::Ordering::SeqCst)
            }
            fn atomic_u64_swap(atomic: &Self::AtomicU64, value: u64) -> u64 {
                atomic.swap(value, $root::sync::atomic::Ordering::SeqCst)
            }
            fn atomic_u64_compare_exchange(
                atomic: &Self::AtomicU64,
                current: u64,
                new: u64,
            ) -> Result<u64, u64> {
                use $root::sync::atomic::Ordering::SeqCst;
                atomic.compare_exchange(current, new, SeqCst, SeqCst)
            }
            fn spawn<F, T>(body: F) -> Self::JoinHandle<T>
            where
                F: FnOnce() -> T + Send + 'static,
                T: Send + 'static,
            {
                $root::thread::spawn(body)
            }
            fn join<T: Send + 'static>(handle: Self::JoinHandle<T>) -> ::std::thread::Result<T> {
                handle.join()
            }
            fn current_thread_id() -> Self::ThreadId {
                $root::thread::current().id()
            }
            fn yield_now() {
                $root::thread::yield_now();
            }
            fn with_held_lock_ranks<T>(
                f: impl FnOnce(&mut Vec<$crate::runtime::sync::HeldLock>) -> T,
            ) -> T {
                HELD_LOCK_RANKS.with(|held| f(&mut held.borrow_mut()))
            }
            const CHECKS_LOCK_RANKS: bool = implement_runtime!(@checks_lock_ranks $root);
            const RWLOCK_SPINS: u32 = implement_runtime!(@rwlock_spins $root);
            const GROUP_COMMIT_SPINS: u32 = implement_runtime!(@group_commit_spins $root);
        }

        implement_runtime!(@held_lock_ranks $root);
    };

    (@checks_lock_ranks std) => {
        cfg!(debug_assertions)
    };
    (@checks_lock_ranks $root:ident) => {
        true
    };

    // About 10 us of spinning on this machine's cores: longer than a store latch's install.
    (@rwlock_spins std) => {
        1000
    };
    (@rwlock_spins $root:ident) => {
        0
    };

    // About 100 us on this machine's cores: a one-insert transaction's CPU, well under an
    // fsync's 200 us (`cargo bench -p jetsim-engine --bench concurrency`).
    (@group_commit_spins std) => {
        10_000
    };
    (@group_commit_spins $root:ident) => {
        0
    };

    // The engine's thread-locals hold nothing engine logic reads: this lock-order bookkeeping
    // for debug assertions, a leaf lock's reader shard (`sync.rs`: which cache line a lookup
    // uses) and `MemIo`'s spare buffers (capacity only). One stack per `$root` thread (loom
    // and shuttle run all their threads on one OS thread, so only their own thread-locals
    // tell them apart). std's gets a `const` initialiser (no lazy-initialisation check);
    // loom's `thread_local!` cannot parse one (its `expr` fragments predate inline `const`).
    (@held_lock_ranks std) => {
        std::thread_local! {
            static HELD_LOCK_RANKS: ::std::cell::RefCell<Vec<$crate::runtime::sync::HeldLock>> =
                const { ::std::cell::RefCell::new(Vec::new()) };
        }
    };
    (@held_lock_ranks $root:ident) => {
        $root::thread_local! {
            static HELD_LOCK_RANKS: ::std::cell::RefCell<Vec<$crate::runtime::sync::HeldLock>> =
                ::std::cell::RefCell::new(Vec::new());
        }
    };
}
