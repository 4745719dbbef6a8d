//! What a run did: every call's invocation and response, in order, and what the stopper saw
//! right after each successful stop. Serializable, so a run can be saved, diffed and hashed.

use crate::model::Outcome;
use crate::workload::Call;
use jetsim_engine::{InstanceStatus, StopRecord};
use serde::{Deserialize, Serialize};

/// One call: who made it, what, when it was invoked and when it returned (a global sequence
/// shared by all threads), and what it returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub thread: usize,
    pub call: Call,
    pub invoked: u64,
    pub returned: u64,
    pub outcome: Outcome,
}

/// What the harness itself read from the simulated disk at the instant a successful full stop
/// or `QuiesceCaches` stop of the main instance returned: the harness's own observation, so
/// the preparation and stop-drained rules never take the engine's word (its stop record or
/// its gate counter) for what the stop did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopObservation {
    pub thread: usize,
    pub grbit: u32,
    pub stop_invoked: u64,
    /// The stop's response step. The disk was read right after this step was taken, with no
    /// scheduling point in between: no other simulated thread ran between the two.
    pub stop_returned: u64,
    pub disk: DiskAtStop,
    /// Versions the main instance's store held at the same instant, by the harness's memory
    /// meter ([`crate::world::memory_meter`]).
    #[serde(default)]
    pub versions_held: u64,
    /// Full stops: the step at which the stopping thread first wrote to the disk, inside the
    /// stop (`None`: it wrote nothing, e.g. a second stop). A correct stop closes the gate
    /// and drains before it prepares, so no gated call invoked from then on is admitted.
    #[serde(default)]
    pub first_write_at: Option<u64>,
    /// Filled at the end of the run, for full stops: the log records only gated calls write
    /// (`Undo` of a record change, `Commit`, `AttachDatabase`) found at or after
    /// [`DiskAtStop::log_end_lsn`] in the log as written, as `Kind@lsn`.
    #[serde(default)]
    pub gated_records_after: Option<Vec<String>>,
    /// A clean term flushed the log's tail before it was read: finding no such record then
    /// means there was none. Otherwise some may never have left the engine's memory.
    #[serde(default)]
    pub log_read_whole: bool,
    /// Filled at the end of the run, for full stops: the page changes the log as written
    /// holds at or after [`DiskAtStop::log_end_lsn`] (see [`PageChangesAfter`]).
    #[serde(default)]
    pub page_changes_after: Option<PageChangesAfter>,
}

/// What changed pages after a full stop returned, read from the log as written: its
/// page-image records (one per tree operation that changed pages; a record of a database's
/// header alone is the clean mark a detach or a clean term writes, and is not counted) and
/// the record changes its
/// `Rollback` records say they undid (each undone change is one tree operation, so at most
/// one page-image record). After a full stop only a rollback (`JetRollback`, or the rollback
/// `JetEndSession` makes) may change a page: online defrag is parked and every other call
/// that writes is refused, so more page images than undone changes is a page change nothing
/// allowlisted made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageChangesAfter {
    /// The LSNs of the page-image records.
    pub page_image_lsns: Vec<u64>,
    /// The record changes the `Rollback` records undid, summed.
    pub rolled_back_changes: u64,
    /// The page-image records after the last `Rollback` record read. A rollback that takes
    /// the exclusive latch logs its undo a record at a time and its `Rollback` record last,
    /// and an eviction among them writes the log so far: when the log's tail was not
    /// written (no clean term), these may be a rollback's whose record is in that tail.
    #[serde(default)]
    pub images_after_last_rollback: u64,
}

impl PageChangesAfter {
    /// The page-image records no rollback accounts for (0 when the rollbacks cover them).
    pub fn unaccounted(&self) -> u64 {
        (self.page_image_lsns.len() as u64).saturating_sub(self.rolled_back_changes)
    }
}

/// The simulated disk at one instant, as the harness reads it (durable bytes only: what a
/// crash at that instant would keep).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskAtStop {
    /// The checkpoint LSN the checkpoint file durably holds (`None`: no valid slot).
    pub checkpoint_lsn: Option<u64>,
    /// End of the valid prefix of the durable log (0: no valid log header).
    pub log_end_lsn: u64,
    /// The main instance's files (log, checkpoint, database) with writes not yet synced.
    pub unsynced_files: Vec<String>,
    /// Recovery on a copy of the disk crashed at that instant: pages it redid (the page on
    /// disk differed from its newest logged image), or why it could not run.
    pub crash_copy_pages_redone: Result<u64, String>,
}

impl DiskAtStop {
    /// What a quiesced stop leaves, in words, when this disk is not it (`None`: it is).
    pub fn unprepared(&self) -> Option<String> {
        let mut missing = Vec::new();
        if self.checkpoint_lsn != Some(self.log_end_lsn) {
            missing.push(format!(
                "the durable checkpoint is at {} but the durable log ends at LSN {}",
                self.checkpoint_lsn.map_or_else(
                    || "no LSN (no valid slot)".to_owned(),
                    |l| format!("LSN {l}")
                ),
                self.log_end_lsn
            ));
        }
        if !self.unsynced_files.is_empty() {
            missing.push(format!(
                "writes not yet synced to {}",
                self.unsynced_files.join(", ")
            ));
        }
        match &self.crash_copy_pages_redone {
            Ok(0) => {}
            Ok(pages) => missing.push(format!(
                "recovery on a copy of the disk crashed then redid {pages} pages"
            )),
            Err(why) => missing.push(format!(
                "recovery on a copy of the disk crashed then failed: {why}"
            )),
        }
        (!missing.is_empty()).then(|| missing.join("; "))
    }
}

/// Observed by the stopping thread immediately after a full stop returned success: the
/// engine's own account (status and stop record), for descriptions, snapshots and the
/// timeline only. No rule decides from it (see [`StopObservation`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterStop {
    /// Sequence number when the stop returned.
    pub stop_returned: u64,
    pub gated_calls_in_flight: u32,
    pub phase: String,
    pub defrag: String,
    /// The stop record's steps, printed.
    pub steps: Vec<String>,
    pub defrag_parked: bool,
    pub cleanup_signalled: bool,
    pub dirty_pages_after: Option<u64>,
    pub checkpoint_depth_after_bytes: Option<u64>,
    pub checkpoint_at_log_tip: bool,
    /// The stop record could not be read (the instance was terminated in between).
    pub record_missing: bool,
}

impl AfterStop {
    pub fn new(stop_returned: u64, status: &InstanceStatus, record: Option<&StopRecord>) -> Self {
        use jetsim_engine::{CleanupStatus, DefragStatus, StopStep};
        let steps = record.map(|r| r.steps.clone()).unwrap_or_default();
        let mut after = AfterStop {
            stop_returned,
            gated_calls_in_flight: status.gated_calls_in_flight,
            phase: format!("{:?}", status.phase),
            defrag: status.defrag.to_string(),
            steps: steps.iter().map(ToString::to_string).collect(),
            defrag_parked: false,
            cleanup_signalled: false,
            dirty_pages_after: None,
            checkpoint_depth_after_bytes: None,
            checkpoint_at_log_tip: false,
            record_missing: record.is_none(),
        };
        for step in &steps {
            match step {
                StopStep::DefragParked { after: a, .. } => {
                    after.defrag_parked = *a == DefragStatus::Parked
                }
                StopStep::VersionCleanupSignalled { after: a, .. } => {
                    after.cleanup_signalled = *a == CleanupStatus::Signalled
                }
                StopStep::CheckpointQuiesced {
                    dirty_pages_after,
                    checkpoint_depth_after_bytes,
                    log_tip_lsn,
                    checkpoint_lsn_after,
                    ..
                } => {
                    after.dirty_pages_after = Some(*dirty_pages_after);
                    after.checkpoint_depth_after_bytes = Some(*checkpoint_depth_after_bytes);
                    after.checkpoint_at_log_tip = log_tip_lsn == checkpoint_lsn_after;
                }
                _ => {}
            }
        }
        after
    }
}

/// The abstract end state of the engine, in the model's terms, read after all threads joined
/// and before the final term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndState {
    pub phase: String,
    /// table → committed (key, value), when the database is attached.
    pub committed: Option<Vec<Vec<(u8, u8)>>>,
    /// Live sessions, ordered.
    pub sessions: Vec<SessionEnd>,
    pub defrag_parked: bool,
    pub caches_quiesced: bool,
}

/// Committed records per table (index = table number), as (key, value) in key order.
pub type Tables = Vec<Vec<(u8, u8)>>;

/// A `JetCommitTransaction` that returned success, and what the harness read from the
/// simulated disk at its response step, with no scheduling point in between: how many Commit
/// records the main log's synced bytes held. A level-1 commit may answer only once its record
/// is durable, so by then the durable log holds at least one record per level-1 commit
/// acknowledged so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitAck {
    pub returned: u64,
    pub durable_commit_records: u64,
}

/// A successful detach of the run's database, and the Detach records the main log's synced
/// bytes held at its response step, read by the harness with no scheduling point in between.
/// A detach answers only once its record is durable (ESE's `ErrLGDetachDB` waits for the
/// log), so by then the durable log holds one Detach record per detach acknowledged so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachAck {
    pub returned: u64,
    pub durable_detach_records: u64,
}

/// The disk a run without faults left after its final term, as a crash right then would leave
/// it (the synced bytes of the main instance's log, checkpoint and database files), recovered
/// by a fresh instance and read table by table: what a clean term promises is on disk, read
/// by the harness rather than asked of the instance that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermDisk {
    /// The records the fresh instance found, per table, or why it could not read them.
    pub found: Result<Tables, String>,
    /// Page images the fresh instance's recovery replayed after the durable checkpoint, and
    /// pages it redid (the disk's page differed from its newest image): none after a clean
    /// term, whose checkpoint is at the log's end with every page written.
    pub page_images_replayed: u64,
    pub pages_redone: u64,
    /// The records a fresh instance of another name (a new log of its own, no checkpoint)
    /// found attaching the database file alone, read from the same synced bytes, or why it
    /// could not. After a clean term, and in a run that ended with the database detached,
    /// the file must be consistent on its own: ESE leaves it in clean-shutdown state,
    /// attachable by any instance, with every committed change in it and nothing else.
    pub database_alone: Result<Tables, String>,
}

/// The harness's probe of the database's ownership across instances: with every thread
/// joined and the wind-down done, a session of the other instance (set up beside the one
/// under test, with a database and a log of its own) attaches the run's database file, and
/// detaches it again if that succeeded. A file belongs to one instance at a time: while the
/// instance under test has it attached, ESE refuses the attach with
/// `JET_errDatabaseSharingViolation`; once it detached, the file is any instance's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingProbe {
    pub attach: Outcome,
    /// The other instance's detach, made only when its attach succeeded.
    pub detach: Option<Outcome>,
    /// The other instance's attach of the path where no file is (the workload's
    /// [`crate::workload::DatabaseFile::Missing`] attaches name it): no instance may still
    /// hold it, so the attach must find no file.
    pub missing_attach: Outcome,
}

/// One live session at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionEnd {
    /// Thread that created it, and its creation index in that thread.
    pub created_by: (usize, u8),
    pub transaction_level: u8,
    pub context: Option<u64>,
    pub open_tables: u32,
}

/// Everything recorded in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct History {
    pub events: Vec<Event>,
    pub after_stops: Vec<AfterStop>,
    /// The harness's own look at the disk after each successful full or quiescing stop.
    #[serde(default)]
    pub stop_observations: Vec<StopObservation>,
    /// The step count when the disk first failed an operation the engine asked for (an
    /// injected I/O error or a power cut, whichever the engine met first, in a call or in a
    /// background task): no `InstanceUnavailable` can be explained before it.
    #[serde(default)]
    pub first_disk_failure_at: Option<u64>,
    /// Online defragmentation was switched on (a pass may move pages whenever it is not
    /// parked).
    #[serde(default)]
    pub online_defrag: bool,
    /// Failed stops that changed the defrag or cache flags anyway.
    pub failed_stop_effects: Vec<String>,
    /// The run had disk faults (`explore --faults`).
    pub io_faults: bool,
    /// Worker threads; the harness's own calls (wind-down, final term) are made as thread
    /// number `workers`.
    pub workers: usize,
    /// Faults the disk injected, printed, each marked as injected.
    pub injected_faults: Vec<String>,
    /// After the final crash: recovery's outcome and what it found, per table, or why it
    /// failed.
    pub recovered: Option<Result<Tables, String>>,
    /// Each commit that returned success, with the Commit records the durable main log held
    /// at that instant, as the harness read them (see [`CommitAck`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commit_acks: Vec<CommitAck>,
    /// Each detach that returned success, with the Detach records the durable main log held
    /// at that instant (see [`DetachAck`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detach_acks: Vec<DetachAck>,
    /// The Commit records the durable main log held when the workload began (the setup's).
    #[serde(default)]
    pub durable_commit_records_at_start: u64,
    /// Without disk faults: the disk the run left after its final term, read back by the
    /// harness (see [`TermDisk`]); `None` when the run crashed instead, or never created the
    /// database (counted in `unobservable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term_disk: Option<TermDisk>,
    /// Without disk faults: what another instance of the process got, after every thread
    /// joined and before the final term, attaching the database file the run used (see
    /// [`SharingProbe`]); `None` when the run had faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing_probe: Option<SharingProbe>,
    pub end_state: Option<EndState>,
    /// Mutating disk operations (writes, syncs, truncations) the run made after setup, up to
    /// the crash: the crash points a sweep of this run tries. 0 without faults.
    #[serde(default)]
    pub disk_ops: u64,
    /// Where the power cut landed, when it did.
    #[serde(default)]
    pub crash_point: Option<CrashPoint>,
    /// What recovery did after the crash (when init got that far).
    #[serde(default)]
    pub recovery_work: Option<RecoveryWork>,
    /// The engine's coverage marks the workload hit (setup excluded): name → hits.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub marks: std::collections::BTreeMap<String, u64>,
    /// Checks the harness could not make, by why: `failed stop changed nothing` (another
    /// stop, resume or term overlapped the failed stop, so the flags were not its alone to
    /// change); `stop record overwritten` (a partial stop or StopAndEmitLog after the full
    /// stop recorded its own steps before the full stop's could be read: preparation and
    /// drain are then not checked for that stop).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unobservable: std::collections::BTreeMap<String, u64>,
    /// The harness's audit of every checkpoint the main instance made durable, against the
    /// durable database file (`world::checkpoint_audit`).
    #[serde(default, skip_serializing_if = "CheckpointAudited::is_empty")]
    pub checkpoint_audit: CheckpointAudited,
    /// The harness's audit of every database write against the durable log
    /// (`world::harness::WriteAheadWatch`).
    #[serde(default, skip_serializing_if = "WriteAheadAudited::is_empty")]
    pub write_ahead: WriteAheadAudited,
}

/// What the write-ahead audit found in one run: at every write the database file took, each
/// page's LSN against the end of the log's synced bytes at that instant, and against the LSN
/// the file already held for that page (page LSNs on disk only grow).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteAheadAudited {
    /// Page writes checked.
    pub pages: u64,
    /// The first page written before the log record that changed it was durable, in words,
    /// and how many such writes the run made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_breach: Option<String>,
    #[serde(default)]
    pub breaches: u64,
    /// Writes the audit could not read as whole pages (counted unobservable).
    #[serde(default)]
    pub unaligned_writes: u64,
    /// The first page written with an LSN below the one the file already held for it (an
    /// older image over a newer one), in words, and how many such writes the run made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_stale_write: Option<String>,
    #[serde(default)]
    pub stale_writes: u64,
    /// Writes to the main log checked against its durable bytes.
    #[serde(default)]
    pub log_writes: u64,
    /// The first write that put different bytes over the main log's durable ones, in words,
    /// and how many such writes the run made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_log_rewrite: Option<String>,
    #[serde(default)]
    pub log_rewrites: u64,
    /// The first change of the database file while it was detached (see the harness's
    /// `DetachedWindow`), in words, and how many such changes the run made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_detached_write: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub detached_writes: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl WriteAheadAudited {
    fn is_empty(&self) -> bool {
        *self == WriteAheadAudited::default()
    }
}

/// What the checkpoint audit found in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointAudited {
    /// Durable checkpoints checked against the database file.
    pub checkpoints: u64,
    /// Page changes checked: each page's newest change before each checkpoint.
    pub page_changes: u64,
    /// Checkpoints that passed a change the database file lacks, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breaches: Vec<String>,
}

impl CheckpointAudited {
    fn is_empty(&self) -> bool {
        *self == CheckpointAudited::default()
    }
}

/// The work recovery reported after a run's crash (`jetsim_engine::RecoveryReport`, the
/// parts that vary from run to run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryWork {
    pub log_bytes_replayed: u64,
    pub pages_redone: u64,
    /// Torn pages rewritten from their log images.
    pub pages_repaired: u64,
    pub transactions_undone: u64,
    pub torn_tail_bytes: u64,
    pub checkpoint_slots_damaged: u32,
}

impl RecoveryWork {
    pub fn from_report(report: &jetsim_engine::RecoveryReport) -> Self {
        RecoveryWork {
            log_bytes_replayed: report.log_bytes_replayed,
            pages_redone: report.pages_redone,
            pages_repaired: report.pages_repaired,
            transactions_undone: report.transactions_undone,
            torn_tail_bytes: report.torn_tail_bytes,
            checkpoint_slots_damaged: report.checkpoint_slots_damaged,
        }
    }
}

impl std::fmt::Display for RecoveryWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "replayed {} log bytes, redid {} pages ({} torn pages repaired), undid {} transactions, cut a {}-byte torn log tail, {} damaged checkpoint slots",
            self.log_bytes_replayed,
            self.pages_redone,
            self.pages_repaired,
            self.transactions_undone,
            self.torn_tail_bytes,
            self.checkpoint_slots_damaged
        )
    }
}

/// Where a run's power cut landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashPoint {
    /// The mutating disk operation the power failed at, counted from the end of setup.
    pub op_index: u64,
    /// The operation it cut, e.g. `write main/jet.log` (`None`: between two operations).
    pub operation: Option<String>,
    /// What met the cut: the Jet call that got the I/O error (`JetCommitTransaction`,
    /// `JetStopServiceInstance`, `JetTerm`, ...), or a background task (`checkpoint flush`,
    /// `defrag pass`, or `background task` when a term removed the instance before its
    /// failure could be read).
    pub met_by: String,
}

impl CrashPoint {
    /// The file kind the cut operation touched: `log`, `checkpoint`, `database`.
    pub fn file_kind(&self) -> &'static str {
        match self.operation.as_deref() {
            Some(op) if op.ends_with(".log") => "log",
            Some(op) if op.ends_with(".chk") => "checkpoint file",
            Some(op) if op.ends_with(".edb") => "database file",
            Some(_) => "other file",
            None => "between operations",
        }
    }
}

impl History {
    /// FNV-1a over the canonical JSON (streamed, never built as a string): equal histories
    /// hash equal on every machine.
    pub fn trace_hash(&self) -> u64 {
        let mut hasher = Fnv1a(0xcbf2_9ce4_8422_2325);
        serde_json::to_writer(&mut hasher, self).expect("history serializes");
        hasher.0
    }
}

/// FNV-1a as an `io::Write` sink.
struct Fnv1a(u64);

impl std::io::Write for Fnv1a {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
