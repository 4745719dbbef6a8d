//! Power cuts placed by what the harness sees happen, not by a disk operation's number: right
//! after the engine acknowledged the N-th commit, right after its N-th write or sync of the
//! database file, or right after its N-th write to the log (before the write's sync). These
//! are the instants a durability bug leaves visible: a commit acknowledged before its log
//! record was synced is lost by a crash right after the acknowledgement; a page written (and
//! synced) before the log records of its changes (the write-ahead rule broken), or in the
//! middle of a tree operation's logging, is found by a crash right after the write or the
//! sync; and a log write the crash catches unsynced is what the crash may garble, which only
//! the log's checksums tell from a record. A correct engine recovers exactly the committed data from
//! both.
//!
//! The cut is the disk's own ([`MemIo::cut_power_after_ops`]): every later operation fails,
//! and the run ends in the crash and recovery every fault run ends in.

use jetsim_engine::env::MemIo;
use std::sync::{Arc, Mutex, PoisonError};

/// Where a run's event-placed power cut goes (`None` fields: not there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutPlan {
    /// Right after the response of this successful `JetCommitTransaction` (0-based, counted
    /// over all threads, any level).
    pub after_commit: Option<u64>,
    /// Right after this write, sync or truncation of the database file (0-based, counted
    /// from the end of setup).
    pub after_database_op: Option<u64>,
    /// Right after this write to the log file (0-based, counted from the end of setup).
    pub after_log_write: Option<u64>,
    /// Right after this write-back (0-based, counted from the end of setup): a write of the
    /// database file that directly follows a sync (or truncation) of the log, with no other database-file
    /// operation between them, as a page's write-back after the log was flushed for it (an
    /// eviction in the middle of a call, a checkpoint or stop flush) makes.
    pub after_write_back: Option<u64>,
}

/// The files whose operations a [`CutPlan`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutFile {
    Database,
    Log,
}

/// Counts the events of a [`CutPlan`] and cuts the power at the planned one.
#[derive(Debug)]
pub struct PowerCutter {
    disk: Arc<MemIo>,
    state: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    plan: CutPlan,
    armed: bool,
    commits: u64,
    database_ops: u64,
    log_writes: u64,
    write_backs: u64,
    /// The log was synced since the database file's last operation.
    log_synced: bool,
}

impl PowerCutter {
    /// Disarmed: setup's commits and writes are not counted.
    pub fn new(disk: Arc<MemIo>) -> PowerCutter {
        PowerCutter {
            disk,
            state: Mutex::new(Counts::default()),
        }
    }

    /// Starts counting (at the end of setup) towards `plan`.
    pub fn arm(&self, plan: CutPlan) {
        let mut state = self.lock();
        state.plan = plan;
        state.armed = true;
    }

    /// A commit was acknowledged (the harness saw its successful response).
    pub fn commit_acknowledged(&self) {
        let mut state = self.lock();
        if !state.armed {
            return;
        }
        let n = state.commits;
        state.commits += 1;
        if state.plan.after_commit == Some(n) {
            self.cut();
        }
    }

    /// The engine wrote (`write`), or synced or truncated, `file` (the operation succeeded).
    pub fn file_changed(&self, file: CutFile, write: bool) {
        let mut state = self.lock();
        if !state.armed {
            return;
        }
        let cut = match file {
            CutFile::Database => {
                let n = state.database_ops;
                state.database_ops += 1;
                let write_back = write && std::mem::take(&mut state.log_synced);
                let after_write_back = write_back && {
                    let n = state.write_backs;
                    state.write_backs += 1;
                    state.plan.after_write_back == Some(n)
                };
                state.plan.after_database_op == Some(n) || after_write_back
            }
            CutFile::Log if write => {
                let n = state.log_writes;
                state.log_writes += 1;
                state.plan.after_log_write == Some(n)
            }
            CutFile::Log => {
                state.log_synced = true;
                false
            }
        };
        if cut {
            self.cut();
        }
    }

    /// The next mutating disk operation, and every one after it, fails.
    fn cut(&self) {
        self.disk
            .cut_power_after_ops(Some(self.disk.mutating_ops()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
