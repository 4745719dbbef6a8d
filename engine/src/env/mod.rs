//! The environment boundary: time and storage come from outside the engine. Threads come from
//! [`crate::runtime`]. Nothing else in the engine reads a clock or touches `std::fs`.

pub mod clock;
pub mod io;

pub use clock::{Clock, ManualClock, SystemClock};
pub use io::{FileIo, Io, IoFile, MemIo};

use std::sync::Arc;

/// What an engine is given: a clock and a storage backend.
#[derive(Clone)]
pub struct Environment {
    pub clock: Arc<dyn Clock>,
    pub io: Arc<dyn Io>,
}

impl Environment {
    /// In-memory storage and a manual clock starting at zero: fully deterministic.
    pub fn in_memory() -> Self {
        Environment {
            clock: Arc::new(ManualClock::new(0)),
            io: Arc::new(MemIo::new()),
        }
    }

    /// Real files under `root` and the system's monotonic clock.
    pub fn on_disk(root: impl Into<std::path::PathBuf>) -> Self {
        Environment {
            clock: Arc::new(SystemClock::new()),
            io: Arc::new(FileIo::new(root)),
        }
    }
}
