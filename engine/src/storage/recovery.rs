//! Crash recovery, run by [`Storage::open`] before anything else touches the databases.
//!
//! 1. **Log.** [`super::log::Log::open`] keeps the valid prefix of the log: decoding stops at
//!    the first record whose length or CRC is wrong, and the torn tail is cut off
//!    ([`RecoveryReport::torn_tail_bytes`]; [`RecoveryReport::log_tail_checksum_failed`] when
//!    a whole frame failed its CRC: garbage or a flipped bit the simulated disk injects).
//!    Nothing in a torn tail was ever synced, so no acknowledged commit and (by the WAL rule)
//!    no page on disk depends on it.
//! 2. **Databases.** The files the log names (`AttachDatabase`, the checkpoint's attached
//!    list, minus `DetachDatabase`, which flushed them) are opened through the same `Io`. One
//!    is recovered only if it belongs to this log: its header carries this log's signature
//!    (stamped durably at create and attach). A database whose header names another log has
//!    been attached elsewhere since and is left alone, whatever this log says about it. This
//!    is what makes page LSNs safe to compare at all: LSNs of another log mean nothing here.
//! 3. **Redo** from the checkpoint LSN: every page with an image in a `PageImages` record after the
//!    checkpoint gets its newest image, unless the page on disk already is that image byte for
//!    byte (then its LSN equals the image's and nothing is written). Images are full
//!    after-images, so writing the newest one is the same as replaying them all in order, and
//!    comparing contents rather than only LSNs also covers a page that still carries a
//!    foreign LSN from before the attach. A page whose checksum fails (a torn write) is
//!    repaired this way ([`RecoveryReport::pages_repaired`]); the checkpoint is only
//!    persisted after every earlier page write is synced, so a torn page always has an image
//!    after the checkpoint. A damaged header with no image to repair it, in a database that
//!    needs recovery work, is `DatabaseCorrupted`; recovery never reads through a bad page.
//! 4. **Undo.** Transactions with `Undo` records and no `Commit` (nor level-1 `Rollback`) are
//!    losers: their before-images are put back, newest first across all of them, through the
//!    ordinary B+tree code, so every compensation is logged as page images (a crash during
//!    recovery redoes them and undoes again: applying before-images newest-first is
//!    idempotent). A nested `Rollback` names how many of the newest Undo records it
//!    compensated, so those are not undone twice (another transaction may have rewritten the
//!    record since). Each loser then gets a level-1 `Rollback` record.
//! 5. **Checkpoint.** Pages are flushed and synced, every recovered database is detached
//!    (`DetachDatabase`: the application attaches it again, as ESE's API flow has it), a
//!    `RecoveryComplete` record ends the run's transactions (ids restart after it), and a
//!    checkpoint at the log tip is persisted. After recovery the databases are consistent on
//!    disk on their own.
//!
//! **Files that vanished, files held elsewhere.** A create or remove is durable once it
//! returns (the store syncs the directory), so only a failed init or create can lose its
//! file at a crash (the simulated disk's fault 5). An empty or missing log is a fresh start
//! (nothing was ever logged in it); a missing checkpoint file is no checkpoint (redo and the
//! loser scan start at the head of the log, which is never truncated); a database the log
//! names that no longer exists is reported in [`RecoveryReport::databases_missing`], its
//! images and undo records are skipped (counted), and attaching it is `FileNotFound`. A
//! database file another process or engine holds open (the store's lock) is never read under
//! its holder. The holder attached it, which only a clean file or one its own log owns
//! allows, so when this log has no work for it recovery leaves it alone
//! ([`RecoveryReport::databases_held_elsewhere`]); when it has (only a holder that is not a
//! jetsim instance can cause that), recovery stops with `JET_errFileAccessDenied` before
//! writing anything, and [`Storage::open`] removes the log or checkpoint file this attempt
//! created, so init can simply be retried once the file is free.
//!
//! **Transactions span checkpoints.** An open transaction's Undo records can precede the
//! checkpoint LSN. ESE holds its checkpoint back to the oldest begin-transaction; jetsim
//! instead records a second point in the checkpoint, the *undo LSN* (the first Undo record of
//! the oldest transaction still open), and scans for losers from the older of the two. The
//! checkpoint (the redo point, and so the checkpoint depth the stop quiesces to 0) keeps
//! meaning "pages before this are on disk", and a long-running transaction does not make
//! every crash redo the whole log since it began; it only makes the (cheap) analysis scan
//! longer. The log is never truncated, so both points always lie inside it; a future log
//! truncation must keep everything from `min(checkpoint LSN, undo LSN)`.

use std::collections::{BTreeMap, BTreeSet};

use super::checkpoint::CheckpointState;
use super::log::{LogRecord, LOG_HEADER_BYTES};
use super::page::{decode_page, PageContent};
use super::{FileId, Lsn, PageNumber, Storage, PAGE_SIZE_BYTES};
use crate::env::io::{Io, IoFile};
use crate::error::{JetError, JetResult};

/// What recovery did when a [`Storage`] was opened (`Jet::last_recovery_report`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The log ended with a clean shutdown: nothing was replayed, nothing written.
    pub clean: bool,
    /// End-of-log-stream markers (`StopAndEmitLog`) found in the log.
    pub log_stream_ends: u64,
    /// End of the valid log.
    pub log_end_lsn: Lsn,
    /// Redo started here (the persisted checkpoint).
    pub redo_start_lsn: Lsn,
    /// The loser scan started here (the older of the checkpoint and undo LSNs).
    pub analysis_start_lsn: Lsn,
    /// Log bytes from the checkpoint to the end: the redo work the checkpoint bounds.
    pub log_bytes_replayed: u64,
    /// Log bytes the loser scan read (at least `log_bytes_replayed`).
    pub log_bytes_scanned: u64,
    /// Page images after the checkpoint, for databases this log owns.
    pub page_images_replayed: u64,
    /// Pages written by redo (the page on disk differed from its newest image).
    pub pages_redone: u64,
    /// Of those, pages whose checksum had failed (torn writes repaired from the log).
    pub pages_repaired: u64,
    /// Transactions that never committed and were undone.
    pub transactions_undone: u64,
    pub undo_records_applied: u64,
    /// Undo records for databases that were not recovered (missing, or owned by another log).
    pub undo_records_skipped: u64,
    /// Bytes of torn or garbage log tail that were cut off.
    pub torn_tail_bytes: u64,
    /// The cut tail began with a whole record frame whose checksum failed (garbage, a
    /// flipped bit, or a torn record only the CRC caught): the log's CRC is what ended it.
    pub log_tail_checksum_failed: bool,
    /// Checkpoint file slots that failed their check (a checkpoint write torn at the crash;
    /// the other slot, or the start of the log, was used).
    pub checkpoint_slots_damaged: u32,
    /// Databases recovered (by path).
    pub databases_recovered: Vec<String>,
    /// Databases the log names whose header now names another log: left alone.
    pub databases_owned_elsewhere: Vec<String>,
    /// Databases the log names that no longer exist.
    pub databases_missing: Vec<String>,
    /// Databases the log names, with no recovery work for them, that another process or
    /// engine holds open: left alone, unread.
    pub databases_held_elsewhere: Vec<String>,
    /// Databases whose header is damaged and which needed no recovery work (a create that
    /// crashed before anything reached the disk): left alone; attaching them reports
    /// `DatabaseCorrupted`.
    pub databases_unusable: Vec<String>,
}

/// One database the log names, as recovery sees it.
struct Candidate {
    path: String,
    handle: Box<dyn IoFile>,
}

/// The newest after-image of every page logged after the checkpoint (the redo set).
type NewestImages<'log> = BTreeMap<(FileId, PageNumber), &'log [u8]>;

/// The Undo records of every transaction that never ended (the losers), oldest first.
type Losers<'log> = BTreeMap<u64, Vec<(Lsn, &'log LogRecord)>>;

fn page_offset_bytes(page: PageNumber) -> u64 {
    u64::from(page) * PAGE_SIZE_BYTES as u64
}

/// Reads one page; `None` if it lies (partly) past the end of the file.
fn read_page(handle: &dyn IoFile, page: PageNumber) -> JetResult<Option<Vec<u8>>> {
    let mut bytes = vec![0u8; PAGE_SIZE_BYTES];
    match handle.read_at(page_offset_bytes(page), &mut bytes) {
        Ok(()) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(JetError::from_io(&e)),
    }
}

impl Storage {
    /// Recovers the databases this log names. `records` is the valid log, oldest first.
    pub(super) fn recover(
        &mut self,
        io: &dyn Io,
        records: &[(Lsn, LogRecord)],
    ) -> JetResult<RecoveryReport> {
        assert!(self.databases.is_empty() && self.tail.get_mut().open_transactions.is_empty());
        let signature = self.tail.get_mut().log.signature();
        let (mut report, checkpoint) = self.start_points(records);
        if report.clean {
            return Ok(report);
        }
        let attached = attached_at_log_end(checkpoint, records);
        let newest = newest_images(records, &attached, &mut report);
        let losers = losers(records, report.analysis_start_lsn);
        let owned = open_owned_databases(io, signature, &attached, &newest, &losers, &mut report)?;
        redo(&newest, &owned, &mut report)?;
        self.undo_losers(owned, &losers, &mut report)?;
        self.finish_recovery(&attached, &mut report)?;
        Ok(report)
    }

    /// Where redo and the loser scan start, what the log's tail looked like, and whether the
    /// log ended clean (then `report.clean` is set and there is nothing to do). Also returns
    /// the persisted checkpoint if it belongs to this log.
    fn start_points(
        &self,
        records: &[(Lsn, LogRecord)],
    ) -> (RecoveryReport, Option<&CheckpointState>) {
        let tail = self.tail.lock();
        let log_end_lsn = tail.log.tip_lsn();
        let signature = tail.log.signature();
        let mut report = RecoveryReport {
            log_end_lsn,
            torn_tail_bytes: tail.log.torn_tail_bytes(),
            log_tail_checksum_failed: tail.log.tail_checksum_failed(),
            checkpoint_slots_damaged: self.checkpoint.damaged_slots_at_open(),
            ..RecoveryReport::default()
        };
        drop(tail);
        // A checkpoint of another log (or past this one's end) says nothing about this log.
        let checkpoint = self.checkpoint.last().filter(|c| {
            c.log_signature == signature
                && c.checkpoint_lsn >= LOG_HEADER_BYTES
                && c.checkpoint_lsn <= log_end_lsn
        });
        let redo_start_lsn = checkpoint.map_or(LOG_HEADER_BYTES, |c| c.checkpoint_lsn);
        let analysis_start_lsn = checkpoint.map_or(LOG_HEADER_BYTES, |c| {
            c.undo_lsn.clamp(LOG_HEADER_BYTES, c.checkpoint_lsn)
        });
        report.redo_start_lsn = redo_start_lsn;
        report.analysis_start_lsn = analysis_start_lsn;
        report.log_bytes_replayed = log_end_lsn - redo_start_lsn;
        report.log_bytes_scanned = log_end_lsn - analysis_start_lsn;
        report.log_stream_ends = records
            .iter()
            .filter(|(_, record)| matches!(record, LogRecord::EndOfLogStream))
            .count() as u64;
        // A log that ends in its end-of-stream marker ended as cleanly as a clean shutdown
        // when the checkpoint reached it with no transaction open (term after
        // StopAndEmitLog); with one open, the marker resolves nothing and recovery undoes it.
        let nothing_open = checkpoint.is_some_and(|c| c.undo_lsn >= c.checkpoint_lsn);
        let ended_clean = match records.last() {
            Some((_, LogRecord::CleanShutdown)) => true,
            Some((_, LogRecord::EndOfLogStream)) => nothing_open,
            _ => false,
        };
        report.clean = records.is_empty() || (ended_clean && redo_start_lsn == log_end_lsn);
        (report, checkpoint)
    }

    /// Undo (step 4 above): puts the losers' before-images back, newest first across all of
    /// them, through the ordinary (logged) B+tree code, on the databases this log owns (from
    /// here on this storage's databases), then ends each loser with a level-1 `Rollback`.
    fn undo_losers(
        &mut self,
        owned: BTreeMap<FileId, Candidate>,
        losers: &Losers<'_>,
        report: &mut RecoveryReport,
    ) -> JetResult<()> {
        for (file, candidate) in owned {
            self.buffers.add_file(file, candidate.handle);
            self.databases.insert(file, candidate.path);
        }
        let mut undo: Vec<(Lsn, &LogRecord)> = losers.values().flatten().copied().collect();
        undo.sort_by_key(|(lsn, _)| std::cmp::Reverse(*lsn));
        for (_, record) in undo {
            let LogRecord::Undo {
                file,
                table_root,
                key,
                before,
                ..
            } = record
            else {
                unreachable!("only Undo records are pending");
            };
            if !self.databases.contains_key(file) {
                report.undo_records_skipped += 1;
                continue;
            }
            let undone = match before {
                Some(value) => self.put(*file, *table_root, key, value),
                None => self.remove(*file, *table_root, key),
            };
            match undone {
                Ok(_) => report.undo_records_applied += 1,
                Err(error) if error == JetError::DiskIO || error == JetError::LogWriteFail => {
                    return Err(error)
                }
                // A before-image that does not fit the tree it names: the database is not
                // what the log describes.
                Err(_) => return Err(JetError::DatabaseCorrupted),
            }
        }
        for (txn, undo) in losers {
            self.tail.get_mut().log.append(&LogRecord::Rollback {
                txn: *txn,
                level: 1,
                undone: u32::try_from(undo.len()).unwrap_or(u32::MAX),
            })?;
        }
        report.transactions_undone = losers.len() as u64;
        match self.failure() {
            Some(failure) => Err(failure.error),
            None => Ok(()),
        }
    }

    /// Checkpoint (step 5 above): marks the recovered databases clean, flushes, detaches
    /// every database the log had attached, ends the run's transactions (`RecoveryComplete`)
    /// and persists a checkpoint at the log tip.
    fn finish_recovery(
        &mut self,
        attached: &BTreeMap<FileId, String>,
        report: &mut RecoveryReport,
    ) -> JetResult<()> {
        let recovered: Vec<FileId> = self.databases.keys().copied().collect();
        for &file in &recovered {
            self.mark_clean(file)?;
        }
        self.buffers.flush_all(&mut self.tail.get_mut().log)?;
        for file in recovered {
            self.buffers
                .remove_file(file, &mut self.tail.get_mut().log)?;
            let path = self.databases.remove(&file).expect("recovered");
            report.databases_recovered.push(path);
        }
        for file in attached.keys() {
            self.tail
                .get_mut()
                .log
                .append(&LogRecord::DetachDatabase { file: *file })?;
        }
        self.tail
            .get_mut()
            .log
            .append(&LogRecord::RecoveryComplete)?;
        self.tail.get_mut().log.flush()?;
        let tip_lsn = self.tail.get_mut().log.tip_lsn();
        self.persist_checkpoint(tip_lsn)?;
        debug_assert!(self.tail.get_mut().open_transactions.is_empty());
        debug_assert_eq!(self.dirty_page_count(), 0);
        Ok(())
    }
}

/// Which databases were attached when the log ended (the checkpoint's list, then every
/// attach and detach the log records).
fn attached_at_log_end(
    checkpoint: Option<&CheckpointState>,
    records: &[(Lsn, LogRecord)],
) -> BTreeMap<FileId, String> {
    let mut attached: BTreeMap<FileId, String> = checkpoint
        .map(|c| c.attached.iter().cloned().collect())
        .unwrap_or_default();
    for (_, record) in records {
        match record {
            LogRecord::AttachDatabase { file, path } => {
                // One path is never attached twice at once: an earlier FileId for it
                // ended at a clean shutdown, which logs no DetachDatabase. Keeping both
                // opened the file twice, and with files locked the second open was
                // refused by the first (init failed with FileAccessDenied for ever).
                attached.retain(|_, attached_path| attached_path != path);
                attached.insert(*file, path.clone());
            }
            LogRecord::DetachDatabase { file } => {
                attached.remove(file);
            }
            _ => {}
        }
    }
    attached
}

/// The redo set: the newest image of every page of an attached database logged after the
/// checkpoint (`report.redo_start_lsn`).
fn newest_images<'log>(
    records: &'log [(Lsn, LogRecord)],
    attached: &BTreeMap<FileId, String>,
    report: &mut RecoveryReport,
) -> NewestImages<'log> {
    let redo_start_lsn = report.redo_start_lsn;
    let mut newest = NewestImages::new();
    for (_, record) in records.iter().filter(|(lsn, _)| *lsn >= redo_start_lsn) {
        if let LogRecord::PageImages { file, images } = record {
            if attached.contains_key(file) {
                for (page, image) in images {
                    newest.insert((*file, *page), image);
                }
                report.page_images_replayed += images.len() as u64;
            }
        }
    }
    newest
}

/// The losers, from `analysis_start_lsn` on: Undo records of transactions with no `Commit`
/// nor level-1 `Rollback`, less those a nested `Rollback` already compensated.
fn losers(records: &[(Lsn, LogRecord)], analysis_start_lsn: Lsn) -> Losers<'_> {
    let mut pending = Losers::new();
    for (lsn, record) in records.iter().filter(|(lsn, _)| *lsn >= analysis_start_lsn) {
        match record {
            LogRecord::Undo { txn, .. } => pending.entry(*txn).or_default().push((*lsn, record)),
            LogRecord::Commit { txn, .. } => {
                pending.remove(txn);
            }
            LogRecord::Rollback { txn, level, undone } => {
                if let Some(undo) = pending.get_mut(txn) {
                    let keep = undo.len().saturating_sub(*undone as usize);
                    undo.truncate(keep);
                }
                if *level == 1 {
                    pending.remove(txn);
                }
            }
            LogRecord::CleanShutdown | LogRecord::RecoveryComplete => pending.clear(),
            _ => {}
        }
    }
    pending.retain(|_, undo| !undo.is_empty());
    pending
}

/// Databases (step 2 above): opens the databases the log had attached and keeps those that
/// belong to this log (its `signature` in their header, or a header image to redo); the
/// others are reported as missing, held or owned elsewhere, or unusable.
fn open_owned_databases(
    io: &dyn Io,
    signature: u64,
    attached: &BTreeMap<FileId, String>,
    newest: &NewestImages<'_>,
    losers: &Losers<'_>,
    report: &mut RecoveryReport,
) -> JetResult<BTreeMap<FileId, Candidate>> {
    let loser_files: BTreeSet<FileId> = losers
        .values()
        .flatten()
        .filter_map(|(_, record)| match record {
            LogRecord::Undo { file, .. } => Some(*file),
            _ => None,
        })
        .collect();
    let mut owned: BTreeMap<FileId, Candidate> = BTreeMap::new();
    for (file, path) in attached {
        let has_work = loser_files.contains(file)
            || newest
                .range((*file, 0)..=(*file, PageNumber::MAX))
                .next()
                .is_some();
        if !io.exists(path) {
            report.databases_missing.push(path.clone());
            continue;
        }
        let handle = match io.open(path).map_err(|e| JetError::from_io(&e)) {
            Ok(handle) => handle,
            // Another process or engine holds it, so it attached it, which only a clean
            // file or one its own log owns allows: this log has nothing to do there
            // unless it logged work for it (then the refusal stands).
            Err(JetError::FileAccessDenied) if !has_work => {
                report.databases_held_elsewhere.push(path.clone());
                continue;
            }
            Err(error) => return Err(error),
        };
        let header = read_page(handle.as_ref(), super::database::HEADER_PAGE)?.and_then(|bytes| {
            match decode_page(&bytes) {
                Ok((_, PageContent::Header(header))) => Some(header),
                _ => None,
            }
        });
        let candidate = Candidate {
            path: path.clone(),
            handle,
        };
        match header {
            Some(header) if header.log_signature != signature => {
                report.databases_owned_elsewhere.push(candidate.path);
            }
            Some(_) => {
                owned.insert(*file, candidate);
            }
            None if newest.contains_key(&(*file, super::database::HEADER_PAGE)) => {
                owned.insert(*file, candidate);
            }
            None if has_work => return Err(JetError::DatabaseCorrupted),
            None => report.databases_unusable.push(candidate.path),
        }
    }
    Ok(owned)
}

/// Redo (step 3 above): writes every page's newest image where the page on disk differs
/// (counting torn pages repaired), rounds a torn extension up to whole pages, and syncs each
/// database.
fn redo(
    newest: &NewestImages<'_>,
    owned: &BTreeMap<FileId, Candidate>,
    report: &mut RecoveryReport,
) -> JetResult<()> {
    for ((file, page), image) in newest {
        let Some(candidate) = owned.get(file) else {
            continue;
        };
        let on_disk = read_page(candidate.handle.as_ref(), *page)?;
        if on_disk.as_deref() == Some(*image) {
            continue;
        }
        if on_disk.is_some_and(|bytes| decode_page(&bytes).is_err()) {
            report.pages_repaired += 1;
        }
        candidate
            .handle
            .write_at(page_offset_bytes(*page), image)
            .map_err(|e| JetError::from_io(&e))?;
        report.pages_redone += 1;
    }
    for candidate in owned.values() {
        // A torn extension can leave a partial page at the end; no page lives there.
        let len = candidate.handle.len().map_err(|e| JetError::from_io(&e))?;
        let page_bytes = PAGE_SIZE_BYTES as u64;
        if len % page_bytes != 0 {
            candidate
                .handle
                .set_len(len.div_ceil(page_bytes) * page_bytes)
                .map_err(|e| JetError::from_io(&e))?;
        }
        candidate.handle.sync().map_err(|e| JetError::from_io(&e))?;
    }
    Ok(())
}
