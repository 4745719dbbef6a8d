//! The environment boundary: time, storage and version-store memory come from outside the
//! engine. Threads come from [`crate::runtime`]. Nothing else in the engine reads a clock or
//! touches `std::fs`.

pub mod clock;
pub mod io;
pub mod memory;

pub use clock::{Clock, ManualClock, SystemClock};
pub use io::{FileIo, Io, IoFile, MemIo};
pub use memory::{UncountedMemory, VersionMemory};

use std::sync::Arc;

/// What an engine is given: a clock, a storage backend and the memory its version stores take.
#[derive(Clone)]
pub struct Environment {
    pub clock: Arc<dyn Clock>,
    pub io: Arc<dyn Io>,
    pub version_memory: Arc<dyn VersionMemory>,
}

impl Environment {
    /// `clock` and `io`, with version-store memory nobody counts.
    pub fn new(clock: Arc<dyn Clock>, io: Arc<dyn Io>) -> Self {
        Environment {
            clock,
            io,
            version_memory: Arc::new(UncountedMemory),
        }
    }

    /// The same environment, with version stores taking their memory from `memory`.
    pub fn with_version_memory(self, memory: Arc<dyn VersionMemory>) -> Self {
        Environment {
            version_memory: memory,
            ..self
        }
    }

    /// In-memory storage and a manual clock starting at zero: fully deterministic.
    pub fn in_memory() -> Self {
        Environment::new(Arc::new(ManualClock::new(0)), Arc::new(MemIo::new()))
    }

    /// Real files under `root` and the system's monotonic clock.
    pub fn on_disk(root: impl Into<std::path::PathBuf>) -> Self {
        Environment::new(Arc::new(SystemClock::new()), Arc::new(FileIo::new(root)))
    }
}
