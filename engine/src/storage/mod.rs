//! The storage layer: the [`Storage`] facade the engine calls, and the types it shares.
//!
//! The stack, top to bottom (each module owns one layer):
//! - `mod.rs`: [`Storage`]: attached files by [`FileId`], argument validation, checkpoints.
//! - `database.rs`: one database file: header, free list, catalog, defrag over its trees.
//! - `btree.rs`: B+tree operations over pages.
//! - `page.rs`: page layout, checksum, node codec.
//! - `buffer_manager.rs`: the bounded page cache, write-back, the WAL rule.
//! - `log.rs`: the write-ahead log and its record codec.
//! - `checkpoint.rs`: the checkpoint (`.chk`) file.
//! - `recovery.rs`: crash recovery at open: redo from the checkpoint, undo of transactions
//!   that never committed.
//!
//! Everything here is single-threaded but for two paths: the caller holds the instance
//! latch exclusively, or the store latch exclusively, around every `&mut self` call; readers
//! and record writes share the store latch around the `&self` walks of
//! [`TreeReads::Cached`] and [`Storage::stage_write`], which touch only cached pages and
//! change nothing (see `buffer_manager`, and `database` for staged writes).
//! All state lives in ordered maps so behaviour is deterministic. Every page change is logged
//! as a full page image before it reaches the cache.
//!
//! Fail-stop: the first I/O error (`DiskIO`, `LogWriteFail`) of any operation is remembered
//! ([`Storage::failure`]) and every later operation is refused with `InstanceUnavailable`:
//! after an I/O error the cache and the log tail may disagree with the disk in ways only
//! recovery can sort out, so nothing more is written or served until a fresh open recovers.

pub mod btree;
pub mod buffer_manager;
pub mod checkpoint;
pub mod database;
pub mod log;
pub mod page;
pub mod recovery;

use std::collections::BTreeMap;

use crate::env::io::Io;
use crate::error::{JetError, JetResult};
use crate::runtime::sync::{LeafMutex, LockRank, RankHooks, Unlatched};
use buffer_manager::BufferManager;
pub use buffer_manager::{DeferredRead, FrameKey, MissPolicy, WriteBackBatch};
use checkpoint::{CheckpointFile, CheckpointState};
use database::Pager;
pub use log::{FlushStart, LogFlush};

pub use buffer_manager::MIN_CACHE_SIZE_PAGES;
pub use database::{DefragReport, StagedPages};
pub use log::LogRecord;
pub use recovery::RecoveryReport;

/// Bytes per page, in files and in the cache.
pub const PAGE_SIZE_BYTES: usize = 2048;
/// Longest key (and table name); chosen with [`MAX_VALUE_BYTES`] so at least three max-size
/// entries fit in a leaf.
pub const MAX_KEY_BYTES: usize = 128;
/// Longest value.
pub const MAX_VALUE_BYTES: usize = 512;
/// Databases one Storage can have attached at once (bounded so the checkpoint file, which
/// lists them, has a fixed size).
pub const MAX_ATTACHED_DATABASES: usize = 8;
/// Longest database path.
pub const MAX_DATABASE_PATH_BYTES: usize = 255;

/// A log sequence number: the byte offset of a record in the log. 0 means "none".
pub type Lsn = u64;
/// A page's index in its database file.
pub type PageNumber = u32;

/// Identifies an attached database file within one [`Storage`]. Never reused within a log:
/// a reopened Storage continues after the highest id its log and checkpoint mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

/// How a read-only tree walk reaches its pages: through the storage itself under the
/// exclusive instance latch, or through the cache alone under the shared latch. Either way
/// `None` (no storage: before init) answers `NotInitialized`.
pub enum TreeReads<'s> {
    /// Misses follow the storage's [`MissPolicy`]; an I/O error makes it fail-stop.
    Locked(Option<&'s mut Storage>),
    /// Cached pages only: the first miss is kept in `missed` and the walk fails with
    /// `OutOfBuffers` (the caller reads the page with no latch held and walks again).
    Cached {
        storage: Option<&'s Storage>,
        missed: Option<FrameKey>,
    },
}

impl<'s> TreeReads<'s> {
    pub fn cached(storage: Option<&'s Storage>) -> Self {
        TreeReads::Cached {
            storage,
            missed: None,
        }
    }

    /// The page a cached walk missed, if one did.
    pub fn missed(&self) -> Option<FrameKey> {
        match self {
            TreeReads::Locked(_) => None,
            TreeReads::Cached { missed, .. } => *missed,
        }
    }

    fn walk<T>(
        &mut self,
        file: FileId,
        operation: impl FnOnce(&mut Pager<'_>) -> JetResult<T>,
    ) -> JetResult<T> {
        match self {
            TreeReads::Locked(storage) => storage
                .as_deref_mut()
                .ok_or(JetError::NotInitialized)?
                .with_pager(file, operation),
            TreeReads::Cached { storage, missed } => storage
                .ok_or(JetError::NotInitialized)?
                .with_cached_pager(file, missed, operation),
        }
    }

    /// [`Storage::get`]. Check the arguments, then walk: the same shape as
    /// [`Storage::put`] and [`Storage::remove`], kept apart because reads go through `walk`
    /// (either latch) and writes through `with_pager` (the exclusive latch only).
    pub fn get(
        &mut self,
        file: FileId,
        root: PageNumber,
        key: &[u8],
    ) -> JetResult<Option<Vec<u8>>> {
        check_key(key)?;
        check_table_root(root)?;
        self.walk(file, |p| btree::get(p, root, key))
    }

    /// [`Storage::table_root`]: the catalog's look-up of a table.
    pub fn table_root(&mut self, file: FileId, name: &str) -> JetResult<Option<PageNumber>> {
        check_table_name(name)?;
        self.walk(file, |p| p.table_root(name))
    }

    /// [`Storage::next_after`].
    pub fn next_after(
        &mut self,
        file: FileId,
        root: PageNumber,
        key: Option<&[u8]>,
    ) -> JetResult<Option<(Vec<u8>, Vec<u8>)>> {
        key.map_or(Ok(()), check_key)?;
        check_table_root(root)?;
        self.walk(file, |p| btree::next_after(p, root, key))
    }

    /// [`Storage::prev_before`].
    pub fn prev_before(
        &mut self,
        file: FileId,
        root: PageNumber,
        key: Option<&[u8]>,
    ) -> JetResult<Option<(Vec<u8>, Vec<u8>)>> {
        key.map_or(Ok(()), check_key)?;
        check_table_root(root)?;
        self.walk(file, |p| btree::prev_before(p, root, key))
    }
}

/// What [`Storage::begin_write_back`] found to do.
pub enum WriteBackStart {
    /// The checkpoint is within its target: nothing to write.
    Shallow,
    /// A batch of pages to write with no lock held.
    Batch(WriteBackBatch),
    /// The oldest dirty page's log record is not durable yet: the log must be flushed first
    /// (a group-commit flush, with no lock held), then the write-back started again.
    LogFirst,
}

/// A checkpoint on its way to the disk ([`Storage::begin_checkpoint_persist`]): the data
/// files written since their last sync, then the checkpoint slot.
pub struct CheckpointPersist {
    written_files: Vec<std::sync::Arc<dyn crate::env::io::IoFile>>,
    write: checkpoint::CheckpointWrite,
    /// The storage's failed flag ([`Storage::failed_flag`]).
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CheckpointPersist {
    /// Syncs the written data files, then writes and syncs the checkpoint. Called with no
    /// lock held ([`Unlatched`] says so).
    ///
    /// A data file's failed sync makes the storage fail-stop at once, before the persist's
    /// end is accounted under the latch: the persist took those files' sync over from every
    /// later checkpoint (their writes are no longer counted unsynced), so a checkpoint made
    /// meanwhile (a stop's, under the exclusive latch, which the persist's end waits for)
    /// would pass pages whose sync failed and that a crash loses. The failure itself (the
    /// error, the activity) is recorded at the end, as for every other I/O.
    pub fn write_and_sync(&self, _unlatched: Unlatched) -> std::io::Result<()> {
        for file in &self.written_files {
            if let Err(error) = file.sync() {
                self.failed
                    .store(true, std::sync::atomic::Ordering::Release);
                return Err(error);
            }
        }
        self.write.write_and_sync()
    }
}

/// What [`Storage::flush_to_depth`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushReport {
    pub pages_written: u64,
    pub checkpoint_lsn_before: Lsn,
    pub checkpoint_lsn_after: Lsn,
    pub checkpoint_depth_bytes_before: u64,
    pub checkpoint_depth_bytes_after: u64,
}

/// Cumulative I/O counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageStats {
    pub pages_read: u64,
    pub pages_written: u64,
    pub log_bytes_written: u64,
    pub log_flushes: u64,
    pub evictions: u64,
    pub checkpoints_written: u64,
}

/// The storage engine: the log, the page cache and the attached database files.
pub struct Storage {
    buffers: BufferManager,
    /// The log, and what follows it, behind the log's own short lock (rank
    /// [`LockRank::LogTail`]): a holder of the storage exclusively reaches it with no lock; a
    /// level-1 commit's append and a group-commit flush's start and end take it holding the
    /// store latch shared, so they wait for no reader's walk and hold up none.
    tail: LeafMutex<LogTail>,
    checkpoint: CheckpointFile,
    /// Attached databases: id → path.
    databases: BTreeMap<FileId, String>,
    next_file_id: u32,
    checkpoints_written: u64,
    /// Whether `failure` is set, readable without the storage (see [`Storage::failed_flag`]).
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// What the storage is doing now, recorded with a failure.
    activity: Activity,
    /// What recovery did when this storage was opened.
    recovery: RecoveryReport,
    /// Planted bug `OperationLoggedPerPage`.
    operations_logged_per_page: bool,
    /// Planted bug `TermCheckpointNotPersisted`.
    term_checkpoint_skipped: bool,
    /// Planted bug `DetachLeavesDatabaseDirty`.
    detach_leaves_dirty: bool,
    /// Planted bug `DetachRecordNotFlushed`.
    detach_record_not_flushed: bool,
    /// Planted bug `InternalMergeWrongSeparator`.
    merge_separator_wrong: bool,
}

/// What [`Storage::tail`] guards: the log, the transactions its records leave open, and the
/// failure that made the storage fail-stop (recorded where the error was met, with the
/// storage held exclusively or only shared).
struct LogTail {
    log: log::Log,
    /// Transactions with Undo records and no end yet: id → LSN of the first Undo record. The
    /// oldest is the checkpoint's undo point.
    open_transactions: BTreeMap<u64, Lsn>,
    /// Transactions whose end record (Commit, level-1 Rollback) is appended but may not be
    /// durable yet: end record LSN → LSN of the transaction's first Undo record. Until the
    /// end record is flushed a crash leaves the transaction open in the log, so the
    /// checkpoint's undo point must still cover its Undo records (see [`Storage::undo_lsn`]).
    ending_transactions: BTreeMap<Lsn, Lsn>,
    /// The I/O error that made this storage fail-stop.
    failure: Option<Failure>,
}

impl LogTail {
    /// Appends `record` and keeps the transactions it opens or ends.
    fn append(&mut self, record: &LogRecord) -> JetResult<Lsn> {
        let lsn = self.log.append(record)?;
        self.track_transaction(lsn, record);
        Ok(lsn)
    }

    /// Keeps `open_transactions` current: a transaction opens at its first Undo record and
    /// ends at its commit or its level-1 rollback; an ended transaction stays in
    /// `ending_transactions` until its end record is durable.
    fn track_transaction(&mut self, lsn: Lsn, record: &LogRecord) {
        // Entries whose end record the log has flushed since no longer hold the undo point.
        self.ending_transactions = self.ending_transactions.split_off(&self.log.flushed_lsn());
        match record {
            LogRecord::Undo { txn, .. } => {
                self.open_transactions.entry(*txn).or_insert(lsn);
            }
            LogRecord::Commit { txn, .. } | LogRecord::Rollback { txn, level: 1, .. } => {
                if let Some(first_undo_lsn) = self.open_transactions.remove(txn) {
                    self.ending_transactions.insert(lsn, first_undo_lsn);
                }
            }
            _ => {}
        }
    }

    /// See [`Storage::undo_lsn`].
    fn undo_lsn(&self) -> Lsn {
        let flushed_lsn = self.log.flushed_lsn();
        let ending = self
            .ending_transactions
            .range(flushed_lsn..)
            .map(|(_, first_undo_lsn)| first_undo_lsn);
        self.open_transactions
            .values()
            .chain(ending)
            .min()
            .copied()
            .unwrap_or(self.log.tip_lsn())
    }

    /// Passes `result` through, remembering a fatal error as met during `activity`, and
    /// raising `failed` with it.
    fn note<T>(
        &mut self,
        result: JetResult<T>,
        activity: Activity,
        failed: &std::sync::atomic::AtomicBool,
    ) -> JetResult<T> {
        if let Err(error) = &result {
            if is_fatal(*error) && self.failure.is_none() {
                failed.store(true, std::sync::atomic::Ordering::Release);
                self.failure = Some(Failure {
                    error: *error,
                    during: activity,
                });
            }
        }
        result
    }
}

/// What the storage was doing when an I/O error made it fail-stop: a caller's Jet call, or
/// one of the background worker's tasks, which have no caller to return the error to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Activity {
    /// Work for a Jet call (the call itself reports the error).
    Call,
    /// The background checkpoint flush (writing dirty pages back, persisting the checkpoint).
    CheckpointFlush,
    /// A background online-defragmentation pass.
    DefragPass,
}

/// The I/O error that made a storage fail-stop, and what it was doing then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub error: JetError,
    pub during: Activity,
}

/// One entry of a rollback's undo for [`Storage::stage_undo`]: a table root, a key, and the
/// before-image to put back (`None`: remove the key).
pub type UndoEntry<'a> = (PageNumber, &'a [u8], Option<&'a [u8]>);

/// The storage's [`crate::runtime::sync::LatchedIoCheck`] until the engine sets its own.
pub(crate) fn no_latched_io_check() {}

/// Errors after which the storage is fail-stop.
fn is_fatal(error: JetError) -> bool {
    matches!(error, JetError::DiskIO | JetError::LogWriteFail)
}

fn check_key(key: &[u8]) -> JetResult<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(JetError::RecordTooBig);
    }
    Ok(())
}

/// The catalog is the storage layer's own tree; a caller's root must be a table's.
fn check_table_root(root: PageNumber) -> JetResult<()> {
    if root <= database::CATALOG_ROOT_PAGE {
        return Err(JetError::ObjectNotFound);
    }
    Ok(())
}

fn check_table_name(name: &str) -> JetResult<()> {
    if name.is_empty() || name.len() > MAX_KEY_BYTES {
        return Err(JetError::InvalidName);
    }
    Ok(())
}

fn check_database_path(path: &str) -> JetResult<()> {
    if path.is_empty() || path.len() > MAX_DATABASE_PATH_BYTES {
        return Err(JetError::InvalidParameter);
    }
    Ok(())
}

impl Storage {
    /// Creates or reopens the log `log_path` and checkpoint file `checkpoint_path` through `io`,
    /// and recovers the databases the log names (see [`recovery`]).
    pub fn open(
        io: &dyn Io,
        log_path: &str,
        checkpoint_path: &str,
        cache_size_pages: usize,
    ) -> JetResult<Storage> {
        Self::open_salted(io, log_path, checkpoint_path, cache_size_pages, 0, true)
    }

    /// [`Storage::open`]; a newly created log's signature mixes its path with `log_salt`
    /// (the engine passes the clock), so logs stay distinguishable. `verify_log_checksums`
    /// is `false` only for the planted bug [`crate::Mutant::LogChecksumIgnored`].
    pub fn open_salted(
        io: &dyn Io,
        log_path: &str,
        checkpoint_path: &str,
        cache_size_pages: usize,
        log_salt: u64,
        verify_log_checksums: bool,
    ) -> JetResult<Storage> {
        let existed = [log_path, checkpoint_path].map(|path| io.exists(path));
        let opened = Self::open_and_recover(
            io,
            log_path,
            checkpoint_path,
            cache_size_pages,
            log_salt,
            verify_log_checksums,
        );
        if opened
            .as_ref()
            .is_err_and(|e| *e == JetError::FileAccessDenied)
        {
            // Refused because another process or engine holds one of the files: leave no
            // file behind that this attempt created (the storage, and its locks, are gone).
            for (path, existed) in [log_path, checkpoint_path].into_iter().zip(existed) {
                if !existed {
                    let _ = io.remove(path);
                }
            }
        }
        opened
    }

    fn open_and_recover(
        io: &dyn Io,
        log_path: &str,
        checkpoint_path: &str,
        cache_size_pages: usize,
        log_salt: u64,
        verify_log_checksums: bool,
    ) -> JetResult<Storage> {
        let (log, records) = log::Log::open_salted(io, log_path, log_salt, verify_log_checksums)?;
        let checkpoint = CheckpointFile::open(io, checkpoint_path)?;
        // FileIds stay unique across runs sharing a log, so a later replay is unambiguous.
        let logged_ids = records.iter().filter_map(|(_, record)| match record {
            LogRecord::AttachDatabase { file, .. }
            | LogRecord::DetachDatabase { file }
            | LogRecord::PageImages { file, .. } => Some(file.0),
            _ => None,
        });
        let checkpointed_ids = checkpoint
            .last()
            .into_iter()
            .flat_map(|state| state.attached.iter().map(|(file, _)| file.0));
        let highest_id = logged_ids.chain(checkpointed_ids).max().unwrap_or(0);
        let mut storage = Storage {
            buffers: BufferManager::new(cache_size_pages),
            tail: LeafMutex::new(
                LockRank::LogTail,
                LogTail {
                    log,
                    open_transactions: BTreeMap::new(),
                    ending_transactions: BTreeMap::new(),
                    failure: None,
                },
            ),
            checkpoint,
            databases: BTreeMap::new(),
            next_file_id: highest_id.saturating_add(1),
            checkpoints_written: 0,
            failed: std::sync::Arc::default(),
            activity: Activity::Call,
            recovery: RecoveryReport::default(),
            operations_logged_per_page: false,
            term_checkpoint_skipped: false,
            detach_leaves_dirty: false,
            detach_record_not_flushed: false,
            merge_separator_wrong: false,
        };
        storage.recovery = storage.recover(io, &records)?;
        Ok(storage)
    }

    /// What recovery did when this storage was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The I/O error that made this storage fail-stop, if one did, and what it was doing.
    pub fn failure(&self) -> Option<Failure> {
        self.tail.lock().failure
    }

    /// A flag that turns true when this storage becomes fail-stop, for callers that must
    /// refuse calls without taking the lock the storage is behind. A std atomic: it orders
    /// nothing (the storage's lock does), so model checkers need not see it.
    pub fn failed_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        std::sync::Arc::clone(&self.failed)
    }

    /// Says what the following operations are for (the background worker sets its task and
    /// returns to [`Activity::Call`]); only reported with a failure.
    pub fn set_activity(&mut self, activity: Activity) {
        self.activity = activity;
    }

    /// Planted bug `PageBeforeLog` (tests only): write pages back without the WAL flush.
    pub fn set_wal_flush_skipped(&mut self, skipped: bool) {
        self.buffers.skip_wal_flush = skipped;
    }

    /// Planted bug `CheckpointFromNewestDirtyPage` (tests only): the checkpoint follows the
    /// newest dirty page instead of the oldest.
    pub fn set_checkpoint_from_newest_dirty_page(&mut self, newest: bool) {
        self.buffers.checkpoint_from_newest_dirty = newest;
    }

    /// Planted bug `NextStopsAtLeafEnd` (tests only): a forward B+tree walk tries only the
    /// child that may hold the key.
    pub fn set_next_tries_one_child(&mut self, one: bool) {
        self.buffers.next_tries_one_child = one;
    }

    /// Planted bug `OvertakenReadInstalled` (tests only): install a deferred page read even
    /// when a write-back of the page overtook it.
    pub fn set_overtaken_reads_installed(&mut self, installed: bool) {
        self.buffers.install_overtaken_reads = installed;
    }

    /// Counts this storage's coverage marks into the instance's (see [`crate::marks`]).
    /// Sets the check run before every I/O the storage makes for its caller under a latch (a
    /// page read that misses under [`MissPolicy::ReadUnderLock`], a write-back, a file sync,
    /// a log flush): the engine's asserts that no latch is held shared
    /// ([`crate::runtime::sync::assert_no_shared_latch_io`]). I/O made holding nothing goes
    /// through [`DeferredRead`], [`WriteBackBatch`], [`LogFlush`] and [`CheckpointPersist`],
    /// which take an [`Unlatched`] instead.
    pub fn set_latched_io_check(&mut self, check: crate::runtime::sync::LatchedIoCheck) {
        self.buffers.latched_io_check = check;
        self.tail.get_mut().log.latched_io_check = check;
    }

    /// Checks the log tail's lock against the ranks of the runtime `hooks` came from (the
    /// instance's, set at init).
    pub fn set_rank_hooks(&mut self, hooks: RankHooks) {
        self.tail.set_rank_hooks(hooks);
    }

    pub fn set_marks(&mut self, marks: crate::marks::Marks) {
        self.buffers.marks = marks;
    }

    /// The coverage marks this storage counts into.
    pub fn marks(&self) -> &crate::marks::Marks {
        &self.buffers.marks
    }

    /// Planted bug [`crate::Mutant::TermCheckpointNotPersisted`]: the clean shutdown does not
    /// persist its checkpoint.
    pub fn set_term_checkpoint_skipped(&mut self, skipped: bool) {
        self.term_checkpoint_skipped = skipped;
    }

    /// Planted bug [`crate::Mutant::TermTrustsStopFlush`]: the cache's dirty pages are
    /// dropped unwritten, as a term trusting the stop's flush leaves them.
    pub fn forget_dirty_pages(&mut self) {
        self.buffers.forget_dirty_pages();
    }

    /// Planted bug [`crate::Mutant::GroupFlushEndRewindsLog`]: a group-commit flush ending
    /// after a flush under the latch covered its range sets the durable end back to its own.
    pub fn set_group_flush_end_rewinds(&mut self, rewinds: bool) {
        self.tail.get_mut().log.stale_flush_end_rewinds = rewinds;
    }

    /// Planted bug [`crate::Mutant::DetachLeavesDatabaseDirty`]: a detach does not mark the
    /// file consistent on its own.
    pub fn set_detach_leaves_dirty(&mut self, leaves_dirty: bool) {
        self.detach_leaves_dirty = leaves_dirty;
    }

    /// Planted bug [`crate::Mutant::DetachRecordNotFlushed`]: a detach returns before its
    /// Detach record is durable.
    pub fn set_detach_record_not_flushed(&mut self, not_flushed: bool) {
        self.detach_record_not_flushed = not_flushed;
    }

    /// Planted bug [`crate::Mutant::InternalMergeWrongSeparator`]: online defrag merges two
    /// internal nodes around the right one's first key instead of their parent's separator.
    pub fn set_merge_separator_wrong(&mut self, wrong: bool) {
        self.merge_separator_wrong = wrong;
    }

    /// Planted bug `OperationLoggedPerPage` (tests only): log and cache each page change of a
    /// tree operation at once instead of the whole operation as one record.
    pub fn set_operations_logged_per_page(&mut self, per_page: bool) {
        self.operations_logged_per_page = per_page;
    }

    fn alive(&self) -> JetResult<()> {
        // Raised together with the failure (under the tail's lock, or with the storage held
        // exclusively), and only ever raised.
        match self.failed.load(std::sync::atomic::Ordering::Acquire) {
            true => Err(JetError::InstanceUnavailable),
            false => Ok(()),
        }
    }

    /// Passes `result` through, remembering a fatal error.
    fn note<T>(&mut self, result: JetResult<T>) -> JetResult<T> {
        let activity = self.activity;
        self.tail.get_mut().note(result, activity, &self.failed)
    }

    /// Changes the cache size (at least [`MIN_CACHE_SIZE_PAGES`]); shrinking writes back and
    /// evicts at once, so it can fail with an I/O error.
    pub fn set_cache_size_pages(&mut self, pages: usize) -> JetResult<()> {
        self.alive()?;
        let result = self
            .buffers
            .set_cache_size_pages(pages, &mut self.tail.get_mut().log);
        self.note(result)
    }

    pub fn cache_size_pages(&self) -> usize {
        self.buffers.cache_size_pages()
    }

    fn check_can_attach(&self, path: &str) -> JetResult<()> {
        check_database_path(path)?;
        if self.databases.values().any(|attached| attached == path) {
            return Err(JetError::DatabaseDuplicate);
        }
        if self.databases.len() >= MAX_ATTACHED_DATABASES {
            return Err(JetError::TooManyAttachedDatabases);
        }
        Ok(())
    }

    fn allocate_file_id(&mut self) -> JetResult<FileId> {
        let file = FileId(self.next_file_id);
        self.next_file_id = self
            .next_file_id
            .checked_add(1)
            .ok_or(JetError::TooManyAttachedDatabases)?;
        debug_assert!(!self.buffers.has_file(file));
        Ok(file)
    }

    /// Creates a new, empty database at `path` and attaches it. `DatabaseDuplicate` if the
    /// path is attached or already exists (nothing on disk is overwritten).
    pub fn create_database(&mut self, io: &dyn Io, path: &str) -> JetResult<FileId> {
        self.alive()?;
        let result = self.create_database_inner(io, path);
        self.note(result)
    }

    fn create_database_inner(&mut self, io: &dyn Io, path: &str) -> JetResult<FileId> {
        self.check_can_attach(path)?;
        self.tail.get_mut().log.check_writable()?;
        if io.exists(path) {
            return Err(JetError::DatabaseDuplicate);
        }
        let file = self.allocate_file_id()?;
        let handle = io.create(path).map_err(|e| JetError::from_io(&e))?;
        self.buffers.add_file(file, handle);
        let formatted = self.format_new_database(file, path);
        if let Err(error) = formatted {
            self.buffers.forget_file(file);
            // Best effort: a half-formatted file must not block a retry of the create.
            let _ = io.remove(path);
            return Err(error);
        }
        self.databases.insert(file, path.to_owned());
        Ok(file)
    }

    fn format_new_database(&mut self, file: FileId, path: &str) -> JetResult<()> {
        self.tail.get_mut().log.append(&LogRecord::AttachDatabase {
            file,
            path: path.to_owned(),
        })?;
        Pager::format(&mut self.buffers, &mut self.tail.get_mut().log, file)?;
        // Make the new file usable on its own at once (and keep the creation out of the
        // checkpoint depth): header and catalog reach disk now.
        self.buffers
            .flush_file(file, &mut self.tail.get_mut().log)?;
        Ok(())
    }

    /// Attaches an existing database. `FileNotFound` if there is no file, `DatabaseCorrupted`
    /// if it is not a valid database, `DatabaseDuplicate` if it is attached already.
    pub fn attach_database(&mut self, io: &dyn Io, path: &str) -> JetResult<FileId> {
        self.alive()?;
        let result = self.attach_database_inner(io, path);
        self.note(result)
    }

    fn attach_database_inner(&mut self, io: &dyn Io, path: &str) -> JetResult<FileId> {
        self.check_can_attach(path)?;
        self.tail.get_mut().log.check_writable()?;
        let handle = io.open(path).map_err(|e| JetError::from_io(&e))?;
        let len_bytes = handle.len().map_err(|e| JetError::from_io(&e))?;
        let page_size_bytes = PAGE_SIZE_BYTES as u64;
        if len_bytes < 2 * page_size_bytes || len_bytes % page_size_bytes != 0 {
            return Err(JetError::DatabaseCorrupted);
        }
        let file = self.allocate_file_id()?;
        self.buffers.add_file(file, handle);
        let validated = Pager::open(&mut self.buffers, &mut self.tail.get_mut().log, file)
            .and_then(|mut pager| pager.read_node(database::CATALOG_ROOT_PAGE).map(|_| ()));
        // ESE's attach refuses a database in dirty-shutdown state with
        // JET_errDatabaseDirtyShutdown: the log that owns it may hold changes it lacks, and
        // once this instance stamped it, that log's recovery would leave it alone for ever
        // (a crash between a flushed delete_table and its page writes then left a catalog
        // naming freed pages). The owning instance's init recovers it and marks it clean.
        let signature = self.tail.get_mut().log.signature();
        let validated = validated.and_then(|()| {
            let header =
                Pager::open(&mut self.buffers, &mut self.tail.get_mut().log, file)?.header();
            if !header.clean_shutdown && header.log_signature != signature {
                return Err(JetError::DatabaseDirtyShutdown);
            }
            Ok(())
        });
        if let Err(error) = validated {
            self.buffers.forget_file(file);
            return Err(error);
        }
        self.tail.get_mut().log.append(&LogRecord::AttachDatabase {
            file,
            path: path.to_owned(),
        })?;
        self.databases.insert(file, path.to_owned());
        // The header names the log the database now belongs to, durably before attach
        // returns: recovery of any other log that once owned it then leaves it alone.
        let stamped =
            Pager::open(&mut self.buffers, &mut self.tail.get_mut().log, file)?.stamp_owner()?;
        if stamped {
            self.buffers
                .flush_file(file, &mut self.tail.get_mut().log)?;
        }
        Ok(file)
    }

    /// Writes back the database's dirty pages, syncs and closes it.
    pub fn detach_database(&mut self, file: FileId) -> JetResult<()> {
        self.alive()?;
        self.check_file(file)?;
        self.tail.get_mut().log.check_writable()?;
        // Clean before the flush, so the flush makes the clean state durable with the pages.
        if !self.detach_leaves_dirty {
            self.mark_clean(file)?;
        }
        let removed = self.buffers.remove_file(file, &mut self.tail.get_mut().log);
        self.note(removed)?;
        self.databases.remove(&file);
        // Durable before detach returns, as ESE's `ErrLGDetachDB` waits for its record's
        // write: once detached the file is any instance's, and this log must not still name
        // it attached (its checkpoint would keep promising the file's pages to a recovery
        // that another instance's changes to it have overtaken).
        let logged = self
            .tail
            .get_mut()
            .log
            .append(&LogRecord::DetachDatabase { file })
            .and_then(|_| {
                if self.detach_record_not_flushed {
                    Ok(())
                } else {
                    self.tail.get_mut().log.flush()
                }
            });
        self.note(logged)
    }

    /// Marks `file` consistent on its own (see [`database::Pager::mark_clean`]).
    fn mark_clean(&mut self, file: FileId) -> JetResult<()> {
        self.with_pager(file, |p| p.mark_clean())
    }

    pub fn database_path(&self, file: FileId) -> Option<&str> {
        self.databases.get(&file).map(String::as_str)
    }

    /// Attached databases, sorted by FileId.
    pub fn attached(&self) -> Vec<(FileId, String)> {
        self.databases
            .iter()
            .map(|(file, path)| (*file, path.clone()))
            .collect()
    }

    fn check_file(&self, file: FileId) -> JetResult<()> {
        if !self.databases.contains_key(&file) {
            return Err(JetError::InvalidDatabaseId);
        }
        debug_assert!(self.buffers.has_file(file));
        Ok(())
    }

    /// Runs one tree operation on `file` and commits it: its page images reach the log as one
    /// record. An operation that fails is dropped uncommitted and leaves no trace; an I/O
    /// error makes the storage fail-stop ([`Storage::note`]).
    pub(crate) fn with_pager<T>(
        &mut self,
        file: FileId,
        operation: impl FnOnce(&mut Pager<'_>) -> JetResult<T>,
    ) -> JetResult<T> {
        self.alive()?;
        self.check_file(file)?;
        let per_page = self.operations_logged_per_page;
        let result = Pager::open(&mut self.buffers, &mut self.tail.get_mut().log, file).and_then(
            |mut pager| {
                pager.log_each_page_at_once = per_page;
                let value = operation(&mut pager)?;
                pager.commit()?;
                Ok(value)
            },
        );
        self.note(result)
    }

    /// Runs one read-only tree operation on `file` through the cache alone (the caller holds
    /// the instance latch shared): see [`TreeReads::Cached`]. It does no I/O, so it cannot
    /// make the storage fail-stop.
    fn with_cached_pager<T>(
        &self,
        file: FileId,
        missed: &mut Option<FrameKey>,
        operation: impl FnOnce(&mut Pager<'_>) -> JetResult<T>,
    ) -> JetResult<T> {
        self.alive()?;
        self.check_file(file)?;
        let mut pager = Pager::open_cached(&self.buffers, missed, file)?;
        let value = operation(&mut pager)?;
        pager.commit()?;
        Ok(value)
    }

    /// Stages a record write on a table (`value`: the new value, `None`: remove the key)
    /// through the cache alone, under the store latch held shared, beside readers and other
    /// writers: nothing reaches the log or the cache (see [`StagedPages`]). Returns the value
    /// the key had in the tree, and the staged pages for [`Storage::install_staged`]. A page
    /// that is not cached fails it with `OutOfBuffers`, recorded in `missed`, as a cached
    /// read does.
    pub fn stage_write(
        &self,
        file: FileId,
        root: PageNumber,
        key: &[u8],
        value: Option<&[u8]>,
        missed: &mut Option<FrameKey>,
    ) -> JetResult<(Option<Vec<u8>>, StagedPages)> {
        check_key(key)?;
        if value.is_some_and(|value| value.len() > MAX_VALUE_BYTES) {
            return Err(JetError::RecordTooBig);
        }
        check_table_root(root)?;
        self.alive()?;
        self.check_file(file)?;
        let mut pager = Pager::open_staging(&self.buffers, missed, file)?;
        let before = match value {
            Some(value) => btree::put(&mut pager, root, key, value)?,
            None => btree::remove(&mut pager, root, key)?,
        };
        Ok((before, pager.into_staged()))
    }

    /// Stages a rollback's undo on one file through the cache alone, under the store latch
    /// held shared, as [`Storage::stage_write`] stages a record write: each entry (a table
    /// root, a key, the before-image to put back or `None` to remove the key), in the order
    /// given, through one pager, so each sees the ones before it. A page that is not cached
    /// fails it with `OutOfBuffers`, recorded in `missed`.
    pub fn stage_undo(
        &self,
        file: FileId,
        undo: &[UndoEntry<'_>],
        missed: &mut Option<FrameKey>,
    ) -> JetResult<StagedPages> {
        self.alive()?;
        self.check_file(file)?;
        let mut pager = Pager::open_staging(&self.buffers, missed, file)?;
        for &(root, key, before) in undo {
            match before {
                Some(value) => btree::put(&mut pager, root, key, value)?,
                None => btree::remove(&mut pager, root, key)?,
            };
        }
        Ok(pager.into_staged())
    }

    /// Stages one online-defragmentation step on `file` (a merge of two neighbouring nodes of
    /// one of its trees, or a root collapse, as [`Storage::defrag_step`] makes it) through
    /// the cache alone, under the store latch held shared, beside readers and writers, as a
    /// record write is staged: `None` when no tree of the file has anything to merge. A
    /// page that is not cached fails it with `OutOfBuffers`, recorded in `missed`. A
    /// defrag step moves records between pages but changes no record's value, so installing
    /// it needs only its pages unchanged ([`Storage::staged_is_current`]).
    pub fn stage_defrag_step(
        &self,
        file: FileId,
        missed: &mut Option<FrameKey>,
    ) -> JetResult<Option<(DefragReport, StagedPages)>> {
        self.alive()?;
        self.check_file(file)?;
        let mut pager = Pager::open_staging(&self.buffers, missed, file)?;
        let report = pager.defrag_step(self.merge_separator_wrong)?;
        Ok(report.map(|report| (report, pager.into_staged())))
    }

    /// Whether a staged write may be installed now: no page it read changed since (see
    /// [`StagedPages::is_current`]).
    pub fn staged_is_current(&self, staged: &StagedPages) -> bool {
        self.databases.contains_key(&staged.file()) && staged.is_current(&self.buffers)
    }

    /// Installs a staged write that [`Storage::staged_is_current`] accepted: its pages as one
    /// `PageImages` record, then as dirty frames (an eviction may write a page back, and an
    /// I/O error makes the storage fail-stop).
    pub fn install_staged(&mut self, staged: StagedPages) -> JetResult<()> {
        self.alive()?;
        let per_page = self.operations_logged_per_page;
        let result = staged.install(&mut self.buffers, &mut self.tail.get_mut().log, per_page);
        self.note(result)
    }

    /// Registers a read of a page a [`TreeReads::Cached`] walk missed (see
    /// [`buffer_manager::BufferManager::defer_read`]).
    pub fn defer_read(&mut self, key: FrameKey) -> Option<DeferredRead> {
        self.buffers.defer_read(key)
    }

    /// Creates an empty table; returns its root page, which never changes.
    pub fn create_table(&mut self, file: FileId, name: &str) -> JetResult<PageNumber> {
        check_table_name(name)?;
        let result = self.with_pager(file, |p| p.create_table(name));
        // DDL is not transactional here (see the README), so it is durable when it returns,
        // like a commit: a table an application was told exists survives a crash.
        let result = result.and_then(|root| self.tail.get_mut().log.flush().map(|()| root));
        self.note(result)
    }

    pub fn table_root(&mut self, file: FileId, name: &str) -> JetResult<Option<PageNumber>> {
        check_table_name(name)?;
        self.with_pager(file, |p| p.table_root(name))
    }

    /// Deletes a table and frees all its pages. `ObjectNotFound` if there is no such table.
    pub fn delete_table(&mut self, file: FileId, name: &str) -> JetResult<()> {
        check_table_name(name)?;
        let result = self.with_pager(file, |p| p.delete_table(name));
        // Durable when it returns, like create_table.
        let result = result.and_then(|()| self.tail.get_mut().log.flush());
        self.note(result)
    }

    /// Table names, sorted.
    pub fn table_names(&mut self, file: FileId) -> JetResult<Vec<String>> {
        let tables = self.with_pager(file, |p| p.tables())?;
        Ok(tables.into_iter().map(|(name, _)| name).collect())
    }

    pub fn get(
        &mut self,
        file: FileId,
        root: PageNumber,
        key: &[u8],
    ) -> JetResult<Option<Vec<u8>>> {
        TreeReads::Locked(Some(self)).get(file, root, key)
    }

    /// Inserts or overwrites; returns the previous value.
    pub fn put(
        &mut self,
        file: FileId,
        root: PageNumber,
        key: &[u8],
        value: &[u8],
    ) -> JetResult<Option<Vec<u8>>> {
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(JetError::RecordTooBig);
        }
        check_table_root(root)?;
        self.with_pager(file, |p| btree::put(p, root, key, value))
    }

    /// Removes a key; returns the previous value. Same shape as the reads in [`TreeReads`],
    /// kept apart for the reason given at [`TreeReads::get`].
    pub fn remove(
        &mut self,
        file: FileId,
        root: PageNumber,
        key: &[u8],
    ) -> JetResult<Option<Vec<u8>>> {
        check_key(key)?;
        check_table_root(root)?;
        self.with_pager(file, |p| btree::remove(p, root, key))
    }

    /// The smallest entry with key strictly greater than `key`; `None` = the first entry.
    pub fn next_after(
        &mut self,
        file: FileId,
        root: PageNumber,
        key: Option<&[u8]>,
    ) -> JetResult<Option<(Vec<u8>, Vec<u8>)>> {
        TreeReads::Locked(Some(self)).next_after(file, root, key)
    }

    /// The greatest entry with key strictly less than `key`; `None` = the last entry.
    pub fn prev_before(
        &mut self,
        file: FileId,
        root: PageNumber,
        key: Option<&[u8]>,
    ) -> JetResult<Option<(Vec<u8>, Vec<u8>)>> {
        TreeReads::Locked(Some(self)).prev_before(file, root, key)
    }

    /// All entries in key order.
    pub fn scan(&mut self, file: FileId, root: PageNumber) -> JetResult<Vec<(Vec<u8>, Vec<u8>)>> {
        check_table_root(root)?;
        self.with_pager(file, |p| btree::scan(p, root))
    }

    /// Appends a record for the layer above (transactions, undo). `PageImages` records are the
    /// storage layer's own and are refused with `InvalidParameter`.
    pub fn append_log(&mut self, record: LogRecord) -> JetResult<Lsn> {
        if matches!(record, LogRecord::PageImages { .. }) {
            return Err(JetError::InvalidParameter);
        }
        self.alive()?;
        // A logged change cannot be made twice: the operation is not restartable from here.
        self.buffers.set_miss_policy(MissPolicy::ReadUnderLock);
        self.tail.get_mut().append(&record)
    }

    /// How reads that miss the cache behave from now on (see [`buffer_manager`]).
    pub fn set_miss_policy(&mut self, policy: MissPolicy) {
        self.buffers.set_miss_policy(policy);
    }

    /// The page the operation just run missed under [`MissPolicy::Defer`], if any.
    pub fn take_deferred_read(&mut self) -> Option<DeferredRead> {
        self.buffers.take_deferred_read()
    }

    /// Installs a deferred read's bytes (an I/O error makes the storage fail-stop).
    pub fn finish_deferred_read(
        &mut self,
        read: &DeferredRead,
        bytes: std::io::Result<Vec<u8>>,
        evictions_may_write: bool,
    ) -> JetResult<()> {
        let result = self.buffers.finish_deferred_read(
            read,
            bytes,
            evictions_may_write,
            &mut self.tail.get_mut().log,
        );
        self.note(result)
    }

    /// Whether staged writes can be installed together with evictions that write nothing
    /// (see [`BufferManager::has_clean_room_for`]); if not, the frames missing are kept for
    /// [`Storage::take_room_wanted`].
    pub fn staged_have_clean_room(&mut self, staged: &[StagedPages]) -> bool {
        let keys: Vec<FrameKey> = staged
            .iter()
            .flat_map(|staged| {
                let file = staged.file();
                staged
                    .page_numbers()
                    .into_iter()
                    .map(move |page| (file, page))
            })
            .collect();
        self.buffers.has_clean_room_for_keys(&keys)
    }

    /// The clean frames an install or a miss's install found missing, now forgotten (0:
    /// none), for the caller to write back with no latch held
    /// ([`Storage::begin_room_write_back`]).
    pub fn take_room_wanted(&mut self) -> usize {
        self.buffers.take_room_wanted()
    }

    /// Starts writing back up to `wanted` of the least recently used dirty pages, for a call
    /// that needs clean frames to install into and holds the instance latch shared, so may
    /// not write under it: the caller writes the batch holding no latch
    /// ([`WriteBackBatch::write_and_sync`]) and ends it with [`Storage::finish_write_back`].
    /// `LogFirst`: every such page waits for its log record, which the caller makes durable
    /// first (a group-commit flush). `Shallow`: nothing to write now (every dirty page is in
    /// flight already, or the batches out take half the cache).
    pub fn begin_room_write_back(&mut self, wanted: usize) -> JetResult<WriteBackStart> {
        self.alive()?;
        if let Some(batch) = self
            .buffers
            .begin_room_write_back(wanted, &self.tail.get_mut().log)
        {
            return Ok(WriteBackStart::Batch(batch));
        }
        let waits_for_log =
            self.tail.get_mut().log.flushed_lsn() < self.tail.get_mut().log.tip_lsn();
        Ok(match waits_for_log {
            true => WriteBackStart::LogFirst,
            false => WriteBackStart::Shallow,
        })
    }

    /// Appends a level-1 transaction's Commit record under the log's lock, with the storage
    /// shared (the store latch held shared: beside readers' walks and other commits, never
    /// beside an install). Returns its LSN and the log's tip just past it.
    pub fn append_commit(&self, record: &LogRecord) -> JetResult<(Lsn, Lsn)> {
        debug_assert!(matches!(record, LogRecord::Commit { .. }));
        self.alive()?;
        let mut tail = self.tail.lock();
        let lsn = tail.append(record)?;
        Ok((lsn, tail.log.tip_lsn()))
    }

    /// Under the log's lock, for a commit waiting until everything below `lsn` is durable:
    /// `Durable` if it is, else starts a group-commit flush of the log (see
    /// [`log::LogFlush`]) or finds one in flight. `under_lock` (which may take no lock and
    /// reach no scheduling point: the tail's lock is a leaf) sees the answer before the
    /// lock is let go, so what it reads orders with the flush's end
    /// ([`Storage::finish_log_flush`] runs its own under the same lock).
    pub fn begin_log_flush<T>(
        &self,
        lsn: Lsn,
        under_lock: impl FnOnce(&FlushStart) -> T,
    ) -> JetResult<(FlushStart, T)> {
        self.alive()?;
        let mut tail = self.tail.lock();
        let start = match tail.log.flushed_lsn() > lsn {
            true => FlushStart::Durable,
            false => tail.log.begin_flush(),
        };
        let seen = under_lock(&start);
        Ok((start, seen))
    }

    /// Accounts a group-commit flush under the log's lock, then runs `under_lock` (which
    /// counts the flush ended for the commits waiting on it; a leaf's section, as in
    /// [`Storage::begin_log_flush`]) before letting go. An I/O error makes the storage
    /// fail-stop, put down to `activity`.
    pub fn finish_log_flush(
        &self,
        flush: &LogFlush,
        result: std::io::Result<()>,
        activity: Activity,
        under_lock: impl FnOnce(),
    ) -> JetResult<()> {
        let mut tail = self.tail.lock();
        let finished = tail.log.finish_flush(flush, result);
        let finished = tail.note(finished, activity, &self.failed);
        under_lock();
        finished
    }

    /// [`Storage::begin_log_flush`] of everything appended so far.
    pub fn begin_log_flush_all(&self) -> JetResult<FlushStart> {
        self.begin_log_flush(Lsn::MAX, |_| ())
            .map(|(start, ())| start)
    }

    /// The log's flushed LSN and whether a group-commit flush is in flight, read together.
    pub fn log_flush_state(&self) -> (Lsn, bool) {
        let tail = self.tail.lock();
        (tail.log.flushed_lsn(), tail.log.flush_in_flight())
    }

    /// The undo point: the first Undo record of the oldest transaction that a crash now could
    /// leave open in the log, or the log tip when none could. That includes a transaction
    /// whose Commit or level-1 Rollback is appended but not yet flushed: a checkpoint is
    /// persisted without flushing the log past its redo point, so the crash can cut the end
    /// record off, and recovery must then still find (and undo) the transaction's changes,
    /// which the checkpoint's page flush may already have written to the database. Dropping
    /// it at the append let a background checkpoint after a stop's flush and an unflushed
    /// rollback skip the rolled-back deletes, and recovery kept them (`jetsim replay 167
    /// --crash-at 41`).
    pub fn undo_lsn(&self) -> Lsn {
        self.tail.lock().undo_lsn()
    }

    /// `LogServiceStopped` once [`Storage::stop_and_emit_log`] ended logging. Calls that would
    /// write the log ask first, before they change anything.
    pub fn check_log_writable(&self) -> JetResult<()> {
        self.tail.lock().log.check_writable()
    }

    pub fn log_is_stopped(&self) -> bool {
        self.tail.lock().log.is_stopped()
    }

    /// `JET_bitStopServiceStopAndEmitLog`: no more logging, everything logged made durable,
    /// then the end-of-log-stream marker (see [`log::Log::stop_and_emit`]). Returns whether
    /// this call ended the stream.
    pub fn stop_and_emit_log(&mut self) -> JetResult<bool> {
        self.alive()?;
        let result = self.tail.get_mut().log.stop_and_emit();
        self.note(result)
    }

    /// Writes and syncs every appended log record.
    pub fn flush_log(&mut self) -> JetResult<()> {
        self.alive()?;
        let result = self.tail.get_mut().log.flush();
        self.note(result)
    }

    /// The end of the appended log: the LSN the next record gets.
    pub fn tip_lsn(&self) -> Lsn {
        self.tail.lock().log.tip_lsn()
    }

    /// Everything below this LSN is durable in the log file.
    pub fn flushed_lsn(&self) -> Lsn {
        self.tail.lock().log.flushed_lsn()
    }

    /// The oldest first-dirty LSN over dirty pages, or the log tip when nothing is dirty.
    pub fn checkpoint_lsn(&self) -> Lsn {
        let tip_lsn = self.tail.lock().log.tip_lsn();
        self.buffers.checkpoint_lsn(tip_lsn)
    }

    pub fn checkpoint_depth_bytes(&self) -> u64 {
        let tip_lsn = self.tail.lock().log.tip_lsn();
        tip_lsn - self.checkpoint_lsn()
    }

    /// The checkpoint last persisted in the checkpoint file (by this run or an earlier one).
    pub fn persisted_checkpoint(&self) -> Option<&CheckpointState> {
        self.checkpoint.last()
    }

    pub fn dirty_page_count(&self) -> u64 {
        self.buffers.dirty_page_count()
    }

    /// Writes back dirty pages oldest-first until the checkpoint depth is at most
    /// `max_depth_bytes` (0: every dirty page), then persists the checkpoint.
    pub fn flush_to_depth(&mut self, max_depth_bytes: u64) -> JetResult<FlushReport> {
        self.alive()?;
        let result = self.flush_to_depth_inner(max_depth_bytes);
        self.note(result)
    }

    fn flush_to_depth_inner(&mut self, max_depth_bytes: u64) -> JetResult<FlushReport> {
        let checkpoint_lsn_before = self.checkpoint_lsn();
        let checkpoint_depth_bytes_before = self.checkpoint_depth_bytes();
        let pages_written = self
            .buffers
            .flush_to_depth(max_depth_bytes, &mut self.tail.get_mut().log)?;
        crate::mark!(self.buffers.marks, BackgroundFlushWrotePages if pages_written > 0 && self.activity == Activity::CheckpointFlush);
        let checkpoint_lsn_after = self.checkpoint_lsn();
        assert!(self.checkpoint_depth_bytes() <= max_depth_bytes);
        self.persist_checkpoint(checkpoint_lsn_after)?;
        Ok(FlushReport {
            pages_written,
            checkpoint_lsn_before,
            checkpoint_lsn_after,
            checkpoint_depth_bytes_before,
            checkpoint_depth_bytes_after: self.checkpoint_depth_bytes(),
        })
    }

    /// Starts a background write-back toward a checkpoint depth of `max_depth_bytes`: copies
    /// a batch of the oldest dirty pages (at most half the cache) for the caller to write with
    /// no lock held ([`WriteBackBatch::write_and_sync`]), then to end with
    /// [`Storage::finish_write_back`]. If the oldest dirty page's log record is not durable,
    /// the log is flushed here first. `None`: the checkpoint is within its target.
    pub fn begin_write_back(&mut self, max_depth_bytes: u64) -> JetResult<WriteBackStart> {
        self.alive()?;
        if self.checkpoint_depth_bytes() <= max_depth_bytes {
            return Ok(WriteBackStart::Shallow);
        }
        // Calls' batches for room may be out too: all of them take at most half the cache.
        let batch_max =
            (self.buffers.cache_size_pages() / 2).saturating_sub(self.buffers.frames_in_flight());
        if batch_max == 0 {
            // Those batches clean pages too; this round persists what the cache has now.
            return Ok(WriteBackStart::Shallow);
        }
        Ok(
            match self.buffers.begin_write_back(
                max_depth_bytes,
                &self.tail.get_mut().log,
                batch_max,
            ) {
                Some(batch) => WriteBackStart::Batch(batch),
                // The oldest dirty page waits for its log record to be durable.
                None if self.tail.get_mut().log.flushed_lsn()
                    < self.tail.get_mut().log.tip_lsn() =>
                {
                    WriteBackStart::LogFirst
                }
                // The oldest dirty pages are in a call's batch for room, which cleans them.
                None => WriteBackStart::Shallow,
            },
        )
    }

    /// Ends a background write-back whose I/O ended with `written`; an I/O error makes the
    /// storage fail-stop. Returns the pages cleaned.
    pub fn finish_write_back(
        &mut self,
        batch: WriteBackBatch,
        written: JetResult<()>,
    ) -> JetResult<u64> {
        let cleaned = self.buffers.finish_write_back(batch, written.is_ok());
        crate::mark!(self.buffers.marks, BackgroundFlushWrotePages if cleaned > 0 && self.activity == Activity::CheckpointFlush);
        self.note(written.map(|()| cleaned))
    }

    /// Starts persisting the checkpoint as the cache has it now (after background
    /// write-backs), to be written with no lock held ([`CheckpointPersist::write_and_sync`])
    /// and ended with [`Storage::finish_checkpoint_persist`]. The checkpoint is capped at the
    /// durable log: one never points past it, and a lower one only makes recovery redo
    /// more, so nothing here waits for the log.
    pub fn begin_checkpoint_persist(&mut self) -> JetResult<CheckpointPersist> {
        self.alive()?;
        let checkpoint_lsn = self
            .checkpoint_lsn()
            .min(self.tail.get_mut().log.flushed_lsn());
        let undo_lsn = self.undo_lsn();
        let signature = self.tail.get_mut().log.signature();
        let attached = self.attached();
        Ok(CheckpointPersist {
            // Every page write before the checkpoint must be durable first, evictions
            // included.
            written_files: self.buffers.take_unsynced_files(),
            write: self
                .checkpoint
                .prepare(signature, checkpoint_lsn, undo_lsn, attached),
            failed: std::sync::Arc::clone(&self.failed),
        })
    }

    /// Ends a checkpoint persist whose I/O gave `written` (an I/O error makes the storage
    /// fail-stop).
    pub fn finish_checkpoint_persist(
        &mut self,
        persist: CheckpointPersist,
        written: std::io::Result<()>,
    ) -> JetResult<()> {
        let result = self.checkpoint.finish(persist.write, written);
        self.note(result)
    }

    /// Planted bug `FrameEvictedDuringWriteBack` (tests only): eviction takes frames whose
    /// background write-back is in flight.
    pub fn set_frames_in_flight_evicted(&mut self, evicted: bool) {
        self.buffers.evicts_frames_in_flight = evicted;
    }

    /// Planted bugs `StopFlushBesideWriteBack` and `DetachBesideWriteBack` (tests only):
    /// pages may be written back while a background batch holding them is out.
    pub fn set_writes_beside_write_back(&mut self, planted: bool) {
        self.buffers.writes_beside_write_back = planted;
    }

    fn persist_checkpoint(&mut self, checkpoint_lsn: Lsn) -> JetResult<()> {
        // Every page write before the checkpoint must be durable, evictions included.
        self.buffers.sync_written_files()?;
        // A checkpoint must never point past the durable log.
        if self.tail.get_mut().log.flushed_lsn() < checkpoint_lsn {
            self.tail.get_mut().log.flush()?;
        }
        assert!(self.tail.get_mut().log.flushed_lsn() >= checkpoint_lsn);
        let undo_lsn = self.undo_lsn();
        let signature = self.tail.get_mut().log.signature();
        self.checkpoint
            .write(signature, checkpoint_lsn, undo_lsn, self.attached())?;
        self.checkpoints_written += 1;
        Ok(())
    }

    /// One small online-defrag step in `file`: merges one pair of under-full sibling pages.
    /// `None` when there is nothing left to merge.
    pub fn defrag_step(&mut self, file: FileId) -> JetResult<Option<DefragReport>> {
        let wrong_separator = self.merge_separator_wrong;
        self.with_pager(file, |p| p.defrag_step(wrong_separator))
    }

    /// Pages in the file, including the header, the catalog and free pages.
    pub fn page_count(&mut self, file: FileId) -> JetResult<u64> {
        self.with_pager(file, |p| Ok(u64::from(p.header().page_count)))
    }

    pub fn free_page_count(&mut self, file: FileId) -> JetResult<u64> {
        self.with_pager(file, |p| Ok(u64::from(p.header().free_page_count)))
    }

    /// Checks the file's page accounting: every page is the header, in exactly one tree, or
    /// on the free list, and the free count matches the list. `DatabaseCorrupted` if not.
    pub fn verify_database(&mut self, file: FileId) -> JetResult<()> {
        self.with_pager(file, |p| p.verify())
    }

    // Same shape as `api::instance::status_of`: see there for why it stays.
    pub fn stats(&self) -> StorageStats {
        let buffers = self.buffers.stats();
        let log = self.tail.lock().log.stats();
        StorageStats {
            pages_read: buffers.pages_read,
            pages_written: buffers.pages_written,
            log_bytes_written: log.bytes_written,
            log_flushes: log.flushes,
            evictions: buffers.evictions,
            checkpoints_written: self.checkpoints_written,
        }
    }

    /// Clean shutdown: flush everything, write CleanShutdown + checkpoint, sync all files,
    /// close them. After `StopAndEmitLog` the end-of-stream marker already closes the log
    /// and nothing more is logged: the checkpoint at the tip makes the shutdown clean.
    pub fn shutdown_clean(mut self) -> JetResult<()> {
        self.alive()?;
        // After StopAndEmitLog nothing may be logged, not even the clean marks: the databases
        // stay in use by this log, and the next init's recovery marks them clean.
        if !self.tail.get_mut().log.is_stopped() {
            let files: Vec<FileId> = self.databases.keys().copied().collect();
            for file in files {
                self.mark_clean(file)?;
            }
        }
        self.buffers.flush_all(&mut self.tail.get_mut().log)?;
        if !self.tail.get_mut().log.is_stopped() {
            self.tail.get_mut().log.append(&LogRecord::CleanShutdown)?;
        }
        self.tail.get_mut().log.flush()?;
        let tip_lsn = self.tail.get_mut().log.tip_lsn();
        if !self.term_checkpoint_skipped {
            self.persist_checkpoint(tip_lsn)?;
        }
        self.buffers.close_all();
        self.tail.into_inner().log.close()
    }
}

#[cfg(test)]
mod tests;
