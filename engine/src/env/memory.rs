//! Version-store memory: the engine asks the environment for the memory each version takes and
//! gives it back when the version is dropped, as ESE's version store takes its buckets from a
//! reserve sized by `JET_paramMaxVerPages`. What the environment counts is the harness's own
//! observation of how much the store holds, so a checker can hold the stop to "starts
//! version-store cleanup" without reading the engine's counters.

use crate::api::handles::InstanceHandle;

/// Where an instance's version store takes its memory from, counted in versions (one per
/// before-image kept).
pub trait VersionMemory: Send + Sync {
    /// `instance`'s version store now holds `versions` more versions.
    fn versions_allocated(&self, instance: InstanceHandle, versions: u64);
    /// `instance`'s version store dropped `versions` versions.
    fn versions_freed(&self, instance: InstanceHandle, versions: u64);
}

/// Memory nobody counts: what real deployments and most tests use.
#[derive(Debug, Default, Clone, Copy)]
pub struct UncountedMemory;

impl VersionMemory for UncountedMemory {
    fn versions_allocated(&self, _instance: InstanceHandle, _versions: u64) {}
    fn versions_freed(&self, _instance: InstanceHandle, _versions: u64) {}
}
