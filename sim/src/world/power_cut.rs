//! Power cuts placed by what the harness sees happen, not by a disk operation's number: right
//! after the engine acknowledged the N-th commit, right after its N-th write or sync of the
//! database file, right after its N-th write to the log (before the write's sync), or right
//! after its N-th write-back (the first database write after a log sync), or right after the
//! N-th checkpoint that leaves changes behind it became durable (the checkpoint file's sync of
//! a checkpoint that points before the durable log's end). These are the
//! instants a durability bug leaves visible: a commit acknowledged before its log record was
//! synced is lost by a crash right after the acknowledgement; a page written (and synced)
//! before the log records of its changes (the write-ahead rule broken) is found by a crash
//! right after the write or the sync; a tree operation whose first page changes an eviction
//! in its middle flushed to the log, and whose last never reached it, is torn by a crash
//! right after that eviction's write-back; a log write the crash catches unsynced is what
//! the crash may garble, which only the log's checksums tell from a record; and a checkpoint
//! that points past a change still only in the cache (or a redo that starts past where it
//! points) loses that change to a crash that comes before the page is written back or changed
//! again, which is soonest right after the checkpoint. A correct engine recovers exactly the
//! committed data from all of them.
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
    /// Right after this write-back (0-based, counted from the end of setup): the first write
    /// of the database file after a sync (or truncation) of the log, as a page's write-back
    /// after the log was flushed for it (an eviction in the middle of a call, a checkpoint or
    /// stop flush) makes.
    pub after_write_back: Option<u64>,
    /// Right after this checkpoint became durable (0-based, counted from the end of setup),
    /// counting only checkpoints that point before the durable log's end: those that leave
    /// changes for recovery to redo, which a checkpoint made with nothing dirty (a stop's,
    /// term's) does not.
    pub after_checkpoint: Option<u64>,
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
    checkpoints: u64,
    /// The log was synced (or truncated) since the database file's last write.
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
                // Only a write uses up the log sync: a database sync does not.
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

    /// A checkpoint became durable (the checkpoint file's sync); `leaves_changes_behind`:
    /// it points before the durable log's end, as the tap's checkpoint audit read it.
    pub fn checkpoint_durable(&self, leaves_changes_behind: bool) {
        let mut state = self.lock();
        if !state.armed || !leaves_changes_behind {
            return;
        }
        let n = state.checkpoints;
        state.checkpoints += 1;
        if state.plan.after_checkpoint == Some(n) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use jetsim_engine::env::Io;

    /// Whether the disk refuses a write now (the probe is a mutating operation itself).
    fn power_is_cut(disk: &MemIo) -> bool {
        disk.create("probe")
            .and_then(|file| file.write_at(0, b"x"))
            .is_err()
    }

    #[test]
    fn a_write_back_is_the_first_database_write_after_a_log_sync() {
        // Goal: only the first database write after a log sync counts (a database sync in
        // between does not matter), and the cut comes right after the planned one.
        let disk = Arc::new(MemIo::new());
        let cutter = PowerCutter::new(Arc::clone(&disk));
        cutter.arm(CutPlan {
            after_write_back: Some(1),
            ..CutPlan::default()
        });
        let (database, log) = (CutFile::Database, CutFile::Log);
        // Not write-backs: a write with no log sync before it, a write after a log write
        // alone, a database sync.
        cutter.file_changed(database, true);
        cutter.file_changed(log, true);
        cutter.file_changed(database, true);
        cutter.file_changed(database, false);
        assert!(!power_is_cut(&disk));
        // Write-back 0 (after a log sync and a database sync), then a second write, not one.
        cutter.file_changed(log, true);
        cutter.file_changed(log, false);
        cutter.file_changed(database, false);
        cutter.file_changed(database, true);
        cutter.file_changed(database, true);
        assert!(!power_is_cut(&disk));
        // Write-back 1, the planned one.
        cutter.file_changed(log, false);
        cutter.file_changed(database, true);
        assert!(power_is_cut(&disk));
    }

    #[test]
    fn only_a_checkpoint_that_leaves_changes_behind_counts() {
        // Goal: a checkpoint with nothing behind it (a stop's, term's) does not count, one
        // that leaves changes behind does, and the cut comes right after the planned one.
        let disk = Arc::new(MemIo::new());
        let cutter = PowerCutter::new(Arc::clone(&disk));
        cutter.checkpoint_durable(true);
        cutter.arm(CutPlan {
            after_checkpoint: Some(1),
            ..CutPlan::default()
        });
        cutter.checkpoint_durable(true);
        cutter.checkpoint_durable(false);
        cutter.file_changed(CutFile::Log, false);
        assert!(!power_is_cut(&disk));
        cutter.checkpoint_durable(true);
        assert!(power_is_cut(&disk));
    }

    #[test]
    fn a_disarmed_cutter_counts_nothing() {
        // Goal: setup's write-backs do not count towards the plan.
        let disk = Arc::new(MemIo::new());
        let cutter = PowerCutter::new(Arc::clone(&disk));
        cutter.file_changed(CutFile::Log, false);
        cutter.file_changed(CutFile::Database, true);
        cutter.arm(CutPlan {
            after_write_back: Some(0),
            ..CutPlan::default()
        });
        assert!(!power_is_cut(&disk));
        cutter.file_changed(CutFile::Log, false);
        cutter.file_changed(CutFile::Database, true);
        assert!(power_is_cut(&disk));
    }
}
