//! Storage backend: a small trait, as redb's `StorageBackend`, with a real-filesystem
//! implementation ([`FileIo`], `file.rs`) and an in-memory one that simulates a faulty disk
//! ([`MemIo`], `mem.rs`, whose fault model is written down there). `faults.rs` owns the seeded
//! randomness and the fault plan the simulated disk draws from.

mod faults;
mod file;
mod mem;

pub use faults::{CrashFaults, FaultPlan, InjectedFault, SplitMix64, PPM, SECTOR_BYTES};
pub use file::FileIo;
pub use mem::{keep_spare_image, spare_image, MemIo};

use std::io;

/// A named file store. Paths are `/`-separated names relative to the store's root.
pub trait Io: Send + Sync {
    /// Creates (or truncates) a file.
    fn create(&self, path: &str) -> io::Result<Box<dyn IoFile>>;
    /// Opens an existing file; `NotFound` if it does not exist.
    fn open(&self, path: &str) -> io::Result<Box<dyn IoFile>>;
    fn remove(&self, path: &str) -> io::Result<()>;
    fn exists(&self, path: &str) -> bool;
}

/// One open file. Reads past the end fail with `UnexpectedEof`.
// `len` is fallible (it asks the backend), so an `is_empty` would only restate `len() == 0`.
#[allow(clippy::len_without_is_empty)]
pub trait IoFile: Send + Sync {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    fn sync(&self) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;
}
