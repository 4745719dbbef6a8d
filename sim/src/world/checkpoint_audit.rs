//! The checkpoint audit: each time the engine makes a checkpoint durable, the harness checks
//! the checkpoint's promise from the disk alone. A checkpoint at LSN C says recovery may
//! start its redo at C: every page change the log holds before C must already be in the
//! database file. So for every page of the run's database whose newest change before C the
//! durable log records at LSN L, the durable database file must hold that page with a page
//! LSN of at least L. A page that lacks it is a change no crash from now on can recover until
//! the page is written back or changed again: a checkpoint that points too late (taken from
//! the newest dirty page rather than the oldest, or persisted before the pages it passes were
//! written and synced).
//!
//! It reads only what the tap mirrored: the durable bytes of the log, the checkpoint file and
//! the database file, decoded with the engine's on-disk formats, never the engine's buffers
//! or records. The durable log is decoded once per run, a piece at each checkpoint. It also
//! tells the power cutter whether a checkpoint leaves changes behind it (it points before the
//! durable log's end), which is where a cut right after it matters.

use jetsim_engine::storage::checkpoint::newest_checkpoint;
use jetsim_engine::storage::log::{
    decode_records_from, log_signature_of, LogRecord, LOG_HEADER_BYTES,
};
use jetsim_engine::storage::page::{decode_page, page_lsn_of, PageContent};
use jetsim_engine::storage::{FileId, Lsn, PageNumber, PAGE_SIZE_BYTES};
use std::collections::{BTreeMap, VecDeque};

/// What the log says about the audited database, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LogEvent {
    /// `file` now names the audited database's path.
    AttachedHere(FileId),
    /// `file` now names another path, or nothing.
    Released(FileId),
    /// Pages of `file` changed at this record.
    Changed(FileId, Vec<PageNumber>),
}

/// The totals one run's audit reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// Durable checkpoints checked against the database file.
    pub checkpoints_audited: u64,
    /// Page changes those checks found present (each page's newest change before each
    /// checkpoint).
    pub page_changes_checked: u64,
    /// A checkpoint that passed a change the database file lacks, in words, one a
    /// checkpoint.
    pub breaches: Vec<String>,
    /// Checkpoints the audit could not check, by why.
    pub unobservable: BTreeMap<&'static str, u64>,
}

/// One run's audit of the main instance's checkpoints against `database_path`.
#[derive(Debug)]
pub struct CheckpointAudit {
    database_path: &'static str,
    log_signature: Option<u64>,
    /// Where the decoded prefix of the durable log ends (a record boundary).
    decoded_to: Lsn,
    /// Decoded events not yet folded: at or after the last checkpoint's LSN.
    pending: VecDeque<(Lsn, LogEvent)>,
    /// The audited database's file while attached, per the events folded so far.
    database_file: Option<FileId>,
    /// Page → the LSN of its newest change among the folded events.
    newest_change: BTreeMap<PageNumber, Lsn>,
    folded_to: Lsn,
    report: AuditReport,
}

impl CheckpointAudit {
    pub fn new(database_path: &'static str) -> CheckpointAudit {
        CheckpointAudit {
            database_path,
            log_signature: None,
            decoded_to: LOG_HEADER_BYTES,
            pending: VecDeque::new(),
            database_file: None,
            newest_change: BTreeMap::new(),
            folded_to: 0,
            report: AuditReport::default(),
        }
    }

    /// The totals so far.
    pub fn report(&self) -> &AuditReport {
        &self.report
    }

    /// A checkpoint became durable: `checkpoint`, `log` and `database` are the three files'
    /// durable bytes (`database`: `None` when the file does not exist). Returns whether the
    /// checkpoint leaves changes behind it (it points before the durable log's end), `None`
    /// when it could not be read.
    pub fn checkpoint_durable(
        &mut self,
        checkpoint: &[u8],
        log: &[u8],
        database: Option<&[u8]>,
    ) -> Option<bool> {
        let Some(checkpoint) = newest_checkpoint(checkpoint) else {
            self.unobservable("no valid checkpoint in the durable file");
            return None;
        };
        let Some(signature) = log_signature_of(log) else {
            self.unobservable("no durable log header");
            return None;
        };
        if checkpoint.log_signature != signature {
            self.unobservable("checkpoint of another log");
            return None;
        }
        // A new log, a log cut shorter (recovery's torn-tail cut), or a checkpoint that went
        // backwards: start over from the log's first record.
        if self.log_signature != Some(signature)
            || (log.len() as u64) < self.decoded_to
            || checkpoint.checkpoint_lsn < self.folded_to
        {
            *self = CheckpointAudit {
                report: std::mem::take(&mut self.report),
                ..CheckpointAudit::new(self.database_path)
            };
            self.log_signature = Some(signature);
        }
        self.decode(log);
        self.fold_before(checkpoint.checkpoint_lsn);
        let behind = checkpoint.checkpoint_lsn < self.decoded_to;
        let Some(database) = database else {
            if !self.newest_change.is_empty() {
                self.breach(format!(
                    "the checkpoint at LSN {} (sequence {}) passes changes to {} pages of {}, \
                     and the file is not on the disk",
                    checkpoint.checkpoint_lsn,
                    checkpoint.sequence,
                    self.newest_change.len(),
                    self.database_path
                ));
            }
            self.report.checkpoints_audited += 1;
            return Some(behind);
        };
        if self.released_by_log_end() && self.owned_by_another_log(database) {
            // Detached (the durable log's last word on the file), then attached by another
            // instance (its own log, its own page LSNs): recovery from this checkpoint meets
            // the detach before any change of the file it could redo, so this log's changes
            // to it are no longer this checkpoint's promise.
            self.newest_change.clear();
            self.unobservable("the database file left for another instance's log");
            return Some(behind);
        }
        self.check_pages(checkpoint.checkpoint_lsn, checkpoint.sequence, database);
        self.report.checkpoints_audited += 1;
        Some(behind)
    }

    /// The audited database is detached as of the decoded log's end: the last attach or
    /// detach of it, folded or pending, is a detach.
    fn released_by_log_end(&self) -> bool {
        let mut file = self.database_file;
        for (_, event) in &self.pending {
            match event {
                LogEvent::AttachedHere(attached) => file = Some(*attached),
                LogEvent::Released(released) if file == Some(*released) => file = None,
                LogEvent::Released(_) | LogEvent::Changed(..) => {}
            }
        }
        file.is_none()
    }

    /// The durable database file's header names a log other than the audited one.
    fn owned_by_another_log(&self, database: &[u8]) -> bool {
        let header = database
            .get(..PAGE_SIZE_BYTES)
            .and_then(|page| decode_page(page).ok());
        matches!(
            header,
            Some((_, PageContent::Header(header)))
                if Some(header.log_signature) != self.log_signature
        )
    }

    fn unobservable(&mut self, why: &'static str) {
        *self.report.unobservable.entry(why).or_insert(0) += 1;
    }

    fn breach(&mut self, message: String) {
        self.report.breaches.push(message);
    }

    /// Decodes the durable log's records past the decoded prefix into events.
    fn decode(&mut self, log: &[u8]) {
        let mut records = Vec::new();
        self.decoded_to = decode_records_from(log, self.decoded_to, &mut records);
        for (lsn, record) in records {
            let event = match record {
                LogRecord::AttachDatabase { file, path } if path == self.database_path => {
                    LogEvent::AttachedHere(file)
                }
                LogRecord::AttachDatabase { file, .. } | LogRecord::DetachDatabase { file } => {
                    LogEvent::Released(file)
                }
                LogRecord::PageImages { file, images } => {
                    LogEvent::Changed(file, images.into_iter().map(|(page, _)| page).collect())
                }
                _ => continue,
            };
            self.pending.push_back((lsn, event));
        }
    }

    /// Folds the pending events before `checkpoint_lsn` into the newest change of each page.
    fn fold_before(&mut self, checkpoint_lsn: Lsn) {
        while let Some((lsn, _)) = self.pending.front() {
            if *lsn >= checkpoint_lsn {
                break;
            }
            let (lsn, event) = self.pending.pop_front().expect("a front event");
            match event {
                LogEvent::AttachedHere(file) => self.database_file = Some(file),
                // A detach writes the pages back first: they stay audited.
                LogEvent::Released(file) if self.database_file == Some(file) => {
                    self.database_file = None;
                }
                LogEvent::Released(_) => {}
                LogEvent::Changed(file, pages) if self.database_file == Some(file) => {
                    for page in pages {
                        self.newest_change.insert(page, lsn);
                    }
                }
                LogEvent::Changed(..) => {}
            }
        }
        self.folded_to = checkpoint_lsn;
    }

    /// Every page's newest change before the checkpoint must be in the database file.
    fn check_pages(&mut self, checkpoint_lsn: Lsn, sequence: u64, database: &[u8]) {
        let mut missing = Vec::new();
        for (&page, &changed_lsn) in &self.newest_change {
            let start = page as usize * PAGE_SIZE_BYTES;
            let on_disk_lsn = database
                .get(start..start + PAGE_SIZE_BYTES)
                .map(page_lsn_of);
            if on_disk_lsn.is_none_or(|lsn| lsn < changed_lsn) {
                missing.push((page, changed_lsn, on_disk_lsn));
            }
        }
        self.report.page_changes_checked += self.newest_change.len() as u64;
        let Some(&(page, changed_lsn, on_disk_lsn)) = missing.first() else {
            return;
        };
        let on_disk = on_disk_lsn.map_or_else(
            || "the file ends before it".to_owned(),
            |lsn| format!("the durable page has LSN {lsn}"),
        );
        self.breach(format!(
            "the checkpoint at LSN {checkpoint_lsn} (sequence {sequence}) passes page {page} of \
             {}, changed at LSN {changed_lsn}, which is not in the database file ({on_disk}); \
             {} page{} so",
            self.database_path,
            missing.len(),
            if missing.len() == 1 { " is" } else { "s are" }
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetsim_engine::env::{Io, MemIo};
    use jetsim_engine::storage::checkpoint::CheckpointFile;
    use jetsim_engine::storage::log::Log;

    const DATABASE: &str = "db";

    /// What `path` holds on `disk`.
    fn file_bytes(disk: &MemIo, path: &str) -> Vec<u8> {
        let file = disk.open(path).expect("the file exists");
        let mut bytes = vec![0; file.len().expect("its length") as usize];
        file.read_at(0, &mut bytes).expect("its bytes");
        bytes
    }

    /// A page image stamped with `lsn` (only its header's LSN matters to the audit).
    fn page_with_lsn(lsn: Lsn) -> Vec<u8> {
        let mut page = vec![0u8; PAGE_SIZE_BYTES];
        page[8..16].copy_from_slice(&lsn.to_le_bytes());
        page
    }

    #[test]
    fn a_checkpoint_past_a_change_the_file_lacks_is_a_breach() {
        // Goal: pages 1 and 2 change at LSNs a and b; the database file holds page 1 as of
        // a but page 2 as of before b. A checkpoint at b's LSN passes nothing missing; one
        // past b passes page 2's change, which the file lacks; the audit says so, and says a
        // checkpoint at the log's end leaves nothing behind.
        let disk = MemIo::new();
        let (mut log, _) = Log::open(&disk, "log").expect("a new log");
        let file = FileId(1);
        log.append(&LogRecord::AttachDatabase {
            file,
            path: DATABASE.to_owned(),
        })
        .expect("appended");
        let images = |page| vec![(page, page_with_lsn(0))];
        let a = log
            .append(&LogRecord::PageImages {
                file,
                images: images(1),
            })
            .expect("appended");
        let b = log
            .append(&LogRecord::PageImages {
                file,
                images: images(2),
            })
            .expect("appended");
        log.flush().expect("flushed");
        let end = log.tip_lsn();
        let mut database = vec![0u8; 3 * PAGE_SIZE_BYTES];
        database[PAGE_SIZE_BYTES..2 * PAGE_SIZE_BYTES].copy_from_slice(&page_with_lsn(a));
        let mut checkpoints = CheckpointFile::open(&disk, "chk").expect("a new file");
        let mut audit = CheckpointAudit::new(DATABASE);
        let mut checkpoint_at = |audit: &mut CheckpointAudit, lsn| {
            checkpoints
                .write(log.signature(), lsn, lsn, vec![(file, DATABASE.to_owned())])
                .expect("written");
            let checkpoint = file_bytes(&disk, "chk");
            audit.checkpoint_durable(&checkpoint, &file_bytes(&disk, "log"), Some(&database))
        };
        assert_eq!(checkpoint_at(&mut audit, b), Some(true));
        assert!(audit.report().breaches.is_empty());
        assert_eq!(checkpoint_at(&mut audit, end), Some(false));
        assert_eq!(audit.report().checkpoints_audited, 2);
        let breaches = &audit.report().breaches;
        assert_eq!(breaches.len(), 1, "{breaches:?}");
        assert!(
            breaches[0].contains(&format!("page 2 of db, changed at LSN {b}")),
            "{}",
            breaches[0]
        );
    }
}
