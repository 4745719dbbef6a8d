//! Monotonic time. The engine uses it to timestamp what it did (the stop record, checkpoints),
//! never to decide *when* to do something: background work is woken by condition variables,
//! because loom and shuttle do not model time and a timed wait would never fire under them.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonic clock in microseconds since an arbitrary origin.
pub trait Clock: Send + Sync {
    fn now_micros(&self) -> u64;
}

/// A clock only the harness moves: the simulator advances it deterministically.
#[derive(Debug, Default)]
pub struct ManualClock {
    // A std atomic, not a runtime one: the clock is written only by the harness between or
    // inside steps, and reading it is not a synchronisation point the checkers need to see.
    now_micros: AtomicU64,
}

impl ManualClock {
    pub fn new(start_micros: u64) -> Self {
        ManualClock {
            now_micros: AtomicU64::new(start_micros),
        }
    }
    pub fn advance_micros(&self, delta_micros: u64) {
        self.now_micros.fetch_add(delta_micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> u64 {
        self.now_micros.load(Ordering::SeqCst)
    }
}

/// The operating system's monotonic clock, for real deployments only.
#[derive(Debug)]
pub struct SystemClock {
    origin: std::time::Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        // The one wall-clock read in the engine crate: this type *is* the boundary.
        SystemClock {
            origin: std::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_micros(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}
