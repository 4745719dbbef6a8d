//! What an instance shows about itself: its status (for tests, the simulator and snapshots)
//! and the record of what its stop did. Plain data, no behaviour.

use crate::instance::gate::Phase;
use crate::storage::Lsn;
use std::fmt;

/// Online defragmentation, as the stop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DefragStatus {
    /// Not enabled (parameter off and no database started).
    Off,
    /// Enabled and free to run when there is work.
    Running,
    /// Held by a stop: it will not run again (until a partial stop is resumed).
    Parked,
}

/// Version-store cleanup, as the stop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CleanupStatus {
    /// Nothing asked for a cleanup since the last one ran.
    Idle,
    /// A cleanup was requested and has not run yet.
    Signalled,
}

impl fmt::Display for DefragStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DefragStatus::Off => "off",
            DefragStatus::Running => "running",
            DefragStatus::Parked => "parked",
        })
    }
}

impl fmt::Display for CleanupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CleanupStatus::Idle => "idle",
            CleanupStatus::Signalled => "signalled",
        })
    }
}

/// A consistent-enough picture of one instance: each part is read under its own lock, one
/// after the other, so parts may come from slightly different instants while calls run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    pub phase: Phase,
    pub gated_calls_in_flight: u32,
    pub ungated_calls_in_flight: u32,
    pub stops_that_waited: u64,
    pub refused_after_stop: u64,
    pub defrag: DefragStatus,
    pub defrag_pages_freed: u64,
    pub version_cleanup: CleanupStatus,
    pub version_cleanup_runs: u64,
    pub versions: u64,
    pub sessions: u64,
    pub open_transactions: u64,
    pub open_tables: u64,
    pub attached_databases: u64,
    pub dirty_pages: u64,
    pub checkpoint_depth_bytes: u64,
    pub log_tip_lsn: Lsn,
    pub checkpoint_lsn: Lsn,
    pub caches_quiesced: bool,
    pub background_errors: u64,
}

/// One step of a stop, with the state before and after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopStep {
    /// The gate closed; `calls_drained` gated calls were in flight and have left.
    GateClosed { calls_drained: u32 },
    DefragParked {
        before: DefragStatus,
        after: DefragStatus,
    },
    VersionCleanupSignalled {
        before: CleanupStatus,
        after: CleanupStatus,
    },
    CheckpointQuiesced {
        dirty_pages_before: u64,
        dirty_pages_after: u64,
        checkpoint_depth_before_bytes: u64,
        checkpoint_depth_after_bytes: u64,
        pages_written: u64,
        /// The log tip when the checkpoint was taken; the checkpoint equals it when the depth
        /// after is 0.
        log_tip_lsn: Lsn,
        checkpoint_lsn_after: Lsn,
    },
    /// `Resume`: partial stops undone.
    Resumed {
        defrag_unparked: bool,
        caches_unquiesced: bool,
    },
    /// `StopAndEmitLog`: logging ended; everything logged is durable up to `durable_lsn`, the
    /// end-of-log-stream marker included. `emitted` is false when an earlier call had already
    /// ended the stream.
    LogStreamEnded { emitted: bool, durable_lsn: Lsn },
}

impl fmt::Display for StopStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopStep::GateClosed { calls_drained } => {
                write!(f, "gate closed, {calls_drained} calls drained")
            }
            StopStep::DefragParked { before, after } => write!(f, "defrag {before} -> {after}"),
            StopStep::VersionCleanupSignalled { before, after } => {
                write!(f, "version cleanup {before} -> {after}")
            }
            StopStep::CheckpointQuiesced {
                dirty_pages_before,
                dirty_pages_after,
                checkpoint_depth_before_bytes,
                checkpoint_depth_after_bytes,
                ..
            } => write!(
                f,
                "dirty pages {dirty_pages_before} -> {dirty_pages_after}; checkpoint depth \
                 {checkpoint_depth_before_bytes} -> {checkpoint_depth_after_bytes} bytes"
            ),
            StopStep::Resumed {
                defrag_unparked,
                caches_unquiesced,
            } => write!(
                f,
                "resumed (defrag unparked: {defrag_unparked}, caches unquiesced: {caches_unquiesced})"
            ),
            StopStep::LogStreamEnded {
                emitted,
                durable_lsn,
            } => write!(
                f,
                "log stream ended (marker written now: {emitted}), durable to LSN {durable_lsn}"
            ),
        }
    }
}

/// What one successful `stop_service_instance(2)` call did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRecord {
    pub grbit: u32,
    pub steps: Vec<StopStep>,
    pub started_at_micros: u64,
    pub finished_at_micros: u64,
}

impl StopRecord {
    /// The quiesce step, if the stop flushed.
    pub fn quiesce(&self) -> Option<&StopStep> {
        self.steps
            .iter()
            .find(|s| matches!(s, StopStep::CheckpointQuiesced { .. }))
    }
}
