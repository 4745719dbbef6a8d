//! The harness's meter on version-store memory: the engine takes each version's memory from
//! its environment ([`jetsim_engine::env::VersionMemory`]) and this counts, per instance, what
//! is held. The version-cleanup rule reads it where the disk oracle reads the disk: at a
//! stop's return, never from the engine's own counters.

use jetsim_engine::env::VersionMemory;
use jetsim_engine::InstanceHandle;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// Versions each instance's store holds, as the environment saw them allocated and freed.
// OS-thread primitives only: counting is not a synchronisation point of the simulated run,
// so it adds no scheduling point and leaves every seed's schedule as it was.
#[derive(Debug, Default)]
pub struct VersionMeter {
    held: Mutex<BTreeMap<InstanceHandle, u64>>,
}

impl VersionMeter {
    /// Versions `instance`'s store holds now.
    pub fn held(&self, instance: InstanceHandle) -> u64 {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&instance).copied().unwrap_or(0)
    }
}

impl VersionMemory for VersionMeter {
    fn versions_allocated(&self, instance: InstanceHandle, versions: u64) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        *held.entry(instance).or_insert(0) += versions;
    }

    fn versions_freed(&self, instance: InstanceHandle, versions: u64) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(instance).or_insert(0);
        // A store that frees what it never took is an engine bug the meter must not hide
        // behind a wrapped counter: it saturates, and the store's own assertion reports it.
        *count = count.saturating_sub(versions);
    }
}
