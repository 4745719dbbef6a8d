//! The buffer manager: a bounded cache of page frames over the attached database files, and
//! the only code that reads or writes database pages on disk.
//!
//! It owns the write-ahead rule: before a dirty frame is written to its file, the log is
//! flushed past that frame's page LSN, so a page on disk is never ahead of the log that
//! describes it. It also owns the dirty-page bookkeeping a checkpoint needs: each dirty frame
//! remembers the LSN that first dirtied it since it was last clean (ESE's "rec LSN"); the
//! checkpoint is the oldest of those, or the log tip when nothing is dirty.
//!
//! Replacement is LRU by a deterministic use counter: the least recently used clean frame
//! goes first; when every frame is dirty the least recently used one is written back. As in
//! ESE's LRU-K (`csecCorrelatedTouch`), touches that come close together count as one: a
//! cache hit on a frame stamped within the last [`BufferManager::correlated_touch_stamps`]
//! stamps (half the cache) leaves its stamp alone. A frame's stamp is then at most that far
//! behind its last touch, while a full cache's oldest stamp is at least its size - 1 behind
//! the counter, so a frame touched that recently is never the least recently used one; and
//! hot pages read by several threads at once are only read: the counter and the stamps stay
//! still, and no cache line moves between the readers' cores.
//!
//! Cache hits under the shared store latch: a read-only call or a record write's plan holds
//! the store latch shared, and the frame table changes only under the exclusive instance
//! latch or the exclusive store latch (installs, evictions, writes), so
//! [`BufferManager::read_cached`] reads a frame with no lock of its own; only the LRU stamps
//! move, and they are atomics. A shared reader never installs: its miss is deferred as below.
//!
//! Background write-backs outside the latches ([`BufferManager::begin_write_back`]): the
//! checkpoint flusher copies a batch of the oldest dirty frames whose log records are durable,
//! marks them in flight and writes and syncs them holding no lock ([`WriteBackBatch`]); then it
//! marks clean each frame no change reached meanwhile ([`BufferManager::finish_write_back`]).
//! A frame changed while in flight stays dirty from the first change after the copy. Eviction
//! skips frames in flight, so no newer image of the page reaches the disk before the batch's
//! older one; any other write-back of a frame in flight (a stop's flush, a detach) comes only
//! after the batch's I/O ended (the engine waits for it; asserted here).
//!
//! Reads outside the instance lock: under [`MissPolicy::Defer`] a read that misses the cache
//! does no I/O; it records the page ([`BufferManager::take_deferred_read`]) and fails with
//! `OutOfBuffers`, and the API's call scope drops the instance lock, reads the page
//! ([`DeferredRead`]), installs it ([`BufferManager::finish_deferred_read`]) and runs the call
//! again. A deferred read that a write-back of the same page overtook is discarded (the disk
//! may have changed under it), and so is one whose page got cached meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::log::Log;
use super::page::page_lsn_of;
use super::{FileId, Lsn, PageNumber, PAGE_SIZE_BYTES};
use crate::env::io::IoFile;
use crate::error::{JetError, JetResult};
use crate::runtime::sync::Unlatched;

/// The smallest cache: enough for a root-to-leaf path during a split plus the header page.
pub const MIN_CACHE_SIZE_PAGES: usize = 8;

/// A cached page: its file and its page number.
pub type FrameKey = (FileId, PageNumber);

/// What a read that misses the cache does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissPolicy {
    /// Read the page at once (the caller holds the instance lock across the I/O).
    ReadUnderLock,
    /// Record the page and fail with `OutOfBuffers`: the caller reads it with no lock held
    /// and retries (only for operations that have changed nothing yet).
    Defer,
}

/// A page read taken out of the instance lock (see the module documentation).
pub struct DeferredRead {
    pub key: FrameKey,
    file: Arc<dyn IoFile>,
}

impl DeferredRead {
    /// Reads the page. Called with no lock held ([`Unlatched`] says so).
    pub fn read(&self, _unlatched: Unlatched) -> std::io::Result<Vec<u8>> {
        let mut bytes = vec![0u8; PAGE_SIZE_BYTES];
        self.file
            .read_at(page_offset_bytes(self.key.1), &mut bytes)?;
        Ok(bytes)
    }
}

/// Deferred reads of one page in flight, and whether a write-back overtook them.
#[derive(Debug, Clone, Copy, Default)]
struct ReadsInFlight {
    readers: u32,
    overtaken: bool,
}

struct Frame {
    bytes: Vec<u8>,
    dirty: bool,
    /// The LSN that first dirtied the frame since it was last clean; 0 while clean.
    first_dirty_lsn: Lsn,
    /// The LSN of the last log record that changed the page.
    page_lsn: Lsn,
    /// A std atomic: shared readers move it beside each other. It orders eviction only and
    /// synchronises nothing (the instance latch does), so model checkers need not see it.
    last_used_stamp: AtomicU64,
    /// A background write-back of a copy of this frame is in flight.
    write_back_in_flight: bool,
    /// The LSN of the first change installed while the write-back was in flight.
    changed_in_flight_lsn: Option<Lsn>,
}

/// A batch of dirty pages copied for the background flusher, written with no lock held.
pub struct WriteBackBatch {
    /// Page, the LSN of the copy, the copy.
    pages: Vec<(FrameKey, Lsn, Vec<u8>)>,
    files: BTreeMap<FileId, Arc<dyn IoFile>>,
    /// Set once the batch's writes and syncs have ended (well or not).
    io_ended: Arc<std::sync::atomic::AtomicBool>,
    /// Whether the batch syncs its files (the background flusher's, before a checkpoint);
    /// a call's batch for room does not (see [`BufferManager::begin_room_write_back`]).
    syncs: bool,
}

impl WriteBackBatch {
    /// Writes every page and, for a batch that syncs, syncs every file written. Called with
    /// no lock held ([`Unlatched`] says so).
    pub fn write_and_sync(&self, _unlatched: Unlatched) -> JetResult<()> {
        let result = self.write_and_sync_inner();
        self.io_ended.store(true, Ordering::Release);
        result
    }

    fn write_and_sync_inner(&self) -> JetResult<()> {
        for ((file, page), _, bytes) in &self.pages {
            self.files[file]
                .write_at(page_offset_bytes(*page), bytes)
                .map_err(|e| JetError::from_io(&e))?;
        }
        if self.syncs {
            for handle in self.files.values() {
                handle.sync().map_err(|e| JetError::from_io(&e))?;
            }
        }
        Ok(())
    }

    pub fn page_count(&self) -> usize {
        self.pages.len()
    }
}

/// Counters of page I/O.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferStats {
    pub pages_read: u64,
    pub pages_written: u64,
    pub evictions: u64,
}

pub struct BufferManager {
    frames: BTreeMap<FrameKey, Frame>,
    files: BTreeMap<FileId, Arc<dyn IoFile>>,
    cache_size_pages: usize,
    /// Deterministic LRU clock: bumped on every frame access (an atomic for the same reason
    /// as [`Frame::last_used_stamp`]).
    use_counter: AtomicU64,
    stats: BufferStats,
    /// Files with page writes not yet synced (evictions write without syncing). A checkpoint
    /// may only be persisted past a page once that page's write is synced, so
    /// [`BufferManager::sync_written_files`] runs before every checkpoint.
    unsynced_files: BTreeSet<FileId>,
    /// Planted bug `PageBeforeLog`: write pages back without flushing the log first.
    pub(crate) skip_wal_flush: bool,
    /// Planted bug `OvertakenReadInstalled`: install a deferred read even when a write-back
    /// of its page overtook it.
    pub(crate) install_overtaken_reads: bool,
    /// Planted bug `NextStopsAtLeafEnd` (read by the B+tree through its pager): a forward
    /// walk gives up when the child that may hold the key has nothing after it.
    pub(crate) next_tries_one_child: bool,
    /// Planted bug `CheckpointFromNewestDirtyPage`: the checkpoint follows the newest
    /// first-dirty LSN instead of the oldest.
    pub(crate) checkpoint_from_newest_dirty: bool,
    miss_policy: MissPolicy,
    /// The page a read under [`MissPolicy::Defer`] missed.
    deferred_read: Option<FrameKey>,
    reads_in_flight: BTreeMap<FrameKey, ReadsInFlight>,
    /// For each write-back batch out (the background flusher's, and calls' made for room):
    /// whether its I/O has ended.
    write_backs_out: Vec<Arc<std::sync::atomic::AtomicBool>>,
    /// Frames an install that may not write asked for and did not find clean (see
    /// [`BufferManager::has_clean_room_for`]); 0 when none was refused.
    room_wanted: usize,
    /// Planted bug `FrameEvictedDuringWriteBack`: eviction, and a call's write-back for room,
    /// take frames whose background write-back is in flight.
    pub(crate) evicts_frames_in_flight: bool,
    /// Planted bugs `StopFlushBesideWriteBack` and `DetachBesideWriteBack`: pages are
    /// written back while a background batch holding them is out (the assertion that forbids
    /// it is off).
    pub(crate) writes_beside_write_back: bool,
    /// Coverage marks of the owning instance.
    pub(crate) marks: crate::marks::Marks,
    /// Run before each page read, write-back or file sync made under a latch (see
    /// [`crate::storage::Storage::set_latched_io_check`]).
    pub(crate) latched_io_check: crate::runtime::sync::LatchedIoCheck,
}

fn page_offset_bytes(page: PageNumber) -> u64 {
    u64::from(page) * PAGE_SIZE_BYTES as u64
}

impl BufferManager {
    pub fn new(cache_size_pages: usize) -> BufferManager {
        BufferManager {
            frames: BTreeMap::new(),
            files: BTreeMap::new(),
            cache_size_pages: cache_size_pages.max(MIN_CACHE_SIZE_PAGES),
            use_counter: AtomicU64::new(0),
            stats: BufferStats::default(),
            unsynced_files: BTreeSet::new(),
            skip_wal_flush: false,
            install_overtaken_reads: false,
            next_tries_one_child: false,
            checkpoint_from_newest_dirty: false,
            miss_policy: MissPolicy::ReadUnderLock,
            deferred_read: None,
            reads_in_flight: BTreeMap::new(),
            write_backs_out: Vec::new(),
            room_wanted: 0,
            evicts_frames_in_flight: false,
            writes_beside_write_back: false,
            marks: crate::marks::Marks::default(),
            latched_io_check: super::no_latched_io_check,
        }
    }

    pub fn cache_size_pages(&self) -> usize {
        self.cache_size_pages
    }

    pub fn stats(&self) -> BufferStats {
        self.stats
    }

    pub fn add_file(&mut self, file: FileId, handle: Box<dyn IoFile>) {
        let previous = self.files.insert(file, Arc::from(handle));
        assert!(previous.is_none(), "a FileId is registered once");
    }

    pub fn has_file(&self, file: FileId) -> bool {
        self.files.contains_key(&file)
    }

    /// Writes back the file's dirty pages, syncs it, drops its frames and closes it.
    pub fn remove_file(&mut self, file: FileId, log: &mut Log) -> JetResult<()> {
        self.flush_file(file, log)?;
        self.frames.retain(|(frame_file, _), _| *frame_file != file);
        let removed = self.files.remove(&file);
        debug_assert!(removed.is_some());
        debug_assert!(!self.unsynced_files.contains(&file));
        Ok(())
    }

    /// Drops a file's frames and handle without writing anything (for a file whose creation
    /// or attach failed before anything worth keeping was cached).
    pub fn forget_file(&mut self, file: FileId) {
        self.frames.retain(|(frame_file, _), _| *frame_file != file);
        self.files.remove(&file);
        self.unsynced_files.remove(&file);
    }

    fn next_stamp(&self) -> u64 {
        self.use_counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// How many stamps back a cache hit counts as correlated with the frame's last stamp
    /// (see the module documentation): half the cache, so below its size - 1 for every
    /// cache of at least [`MIN_CACHE_SIZE_PAGES`].
    pub fn correlated_touch_stamps(&self) -> u64 {
        (self.cache_size_pages / 2) as u64
    }

    /// A cache hit on `frame`: a new stamp unless its last one is recent (loads only, then).
    fn touch(&self, frame: &Frame) {
        let last = frame.last_used_stamp.load(Ordering::Relaxed);
        // Saturating: a shared reader may see a stamp before the counter move that made it.
        let age = self
            .use_counter
            .load(Ordering::Relaxed)
            .saturating_sub(last);
        if age < self.correlated_touch_stamps() {
            return;
        }
        frame
            .last_used_stamp
            .store(self.next_stamp(), Ordering::Relaxed);
    }

    /// The page's bytes if it is cached, for a caller holding the instance latch shared (see
    /// the module documentation): no I/O, no install, no eviction.
    /// The LSN of the last change to a cached page (`None`: not cached). Leaves its stamp
    /// alone: a write's check that the pages it read are unchanged is not a use.
    pub fn cached_page_lsn(&self, file: FileId, page: PageNumber) -> Option<Lsn> {
        self.frames.get(&(file, page)).map(|frame| frame.page_lsn)
    }

    pub fn read_cached(&self, file: FileId, page: PageNumber) -> Option<&[u8]> {
        let frame = self.frames.get(&(file, page))?;
        self.touch(frame);
        Some(&frame.bytes)
    }

    /// Registers a read of `key`, which a shared reader missed, as in flight (as
    /// [`BufferManager::take_deferred_read`] does); `None` if the page got cached meanwhile or
    /// its file is closed. [`BufferManager::finish_deferred_read`] must follow a `Some`.
    pub fn defer_read(&mut self, key: FrameKey) -> Option<DeferredRead> {
        if self.frames.contains_key(&key) {
            return None;
        }
        self.deferred_read = Some(key);
        self.take_deferred_read()
    }

    pub fn set_miss_policy(&mut self, policy: MissPolicy) {
        self.miss_policy = policy;
    }

    /// The page a read under [`MissPolicy::Defer`] missed, if one did; registers the read as
    /// in flight, so [`BufferManager::finish_deferred_read`] must follow.
    pub fn take_deferred_read(&mut self) -> Option<DeferredRead> {
        let key = self.deferred_read.take()?;
        let file = Arc::clone(self.files.get(&key.0)?);
        self.reads_in_flight.entry(key).or_default().readers += 1;
        Some(DeferredRead { key, file })
    }

    /// Installs what a [`DeferredRead`] read, unless the page got cached meanwhile, its file
    /// was closed, or a write-back of the page overtook the read. An I/O error is the read's.
    /// Unless `evictions_may_write` (the caller holds the instance latch exclusively), the
    /// read is not installed either when its frame would need an eviction to write a page
    /// back: the frame is kept for [`BufferManager::take_room_wanted`].
    pub fn finish_deferred_read(
        &mut self,
        read: &DeferredRead,
        bytes: std::io::Result<Vec<u8>>,
        evictions_may_write: bool,
        log: &mut Log,
    ) -> JetResult<()> {
        let key = read.key;
        let in_flight = self
            .reads_in_flight
            .get_mut(&key)
            .expect("take_deferred_read registered it");
        let was_overtaken = in_flight.overtaken;
        let overtaken = was_overtaken && !self.install_overtaken_reads;
        in_flight.readers -= 1;
        if in_flight.readers == 0 {
            self.reads_in_flight.remove(&key);
        }
        let bytes = bytes.map_err(|e| JetError::from_io(&e))?;
        self.stats.pages_read += 1;
        crate::mark!(self.marks, DeferredReadOvertaken if was_overtaken);
        if overtaken || self.frames.contains_key(&key) || !self.files.contains_key(&key.0) {
            return Ok(());
        }
        if !evictions_may_write && !self.has_clean_room_for(key.0, &[key.1]) {
            return Ok(());
        }
        crate::mark!(self.marks, DeferredReadInstalled);
        let stamp = self.next_stamp();
        self.install_read(key, bytes, stamp, log)
    }

    /// The page's bytes, from the cache or read from its file (possibly evicting a frame).
    /// The bytes are not verified here; the page codec checks the checksum on decode.
    pub fn read(&mut self, file: FileId, page: PageNumber, log: &mut Log) -> JetResult<&[u8]> {
        let key = (file, page);
        if let Some(frame) = self.frames.get(&key) {
            self.touch(frame);
        } else {
            let handle = self.files.get(&file).ok_or(JetError::InvalidDatabaseId)?;
            if self.miss_policy == MissPolicy::Defer {
                self.deferred_read = Some(key);
                return Err(JetError::OutOfBuffers);
            }
            (self.latched_io_check)();
            let mut bytes = vec![0u8; PAGE_SIZE_BYTES];
            handle
                .read_at(page_offset_bytes(page), &mut bytes)
                .map_err(|e| JetError::from_io(&e))?;
            self.stats.pages_read += 1;
            let stamp = self.next_stamp();
            self.install_read(key, bytes, stamp, log)?;
        }
        debug_assert!(self.frames.len() <= self.cache_size_pages);
        Ok(&self.frames[&key].bytes)
    }

    /// Caches a page just read from disk as a clean frame.
    fn install_read(
        &mut self,
        key: FrameKey,
        bytes: Vec<u8>,
        stamp: u64,
        log: &mut Log,
    ) -> JetResult<()> {
        {
            self.make_room(log)?;
            // A page on disk is durable. Its LSN only orders it against *this* log's records;
            // a database last written under another instance's log carries LSNs from that log,
            // which may lie beyond our tip. No record of ours describes such a page, so it needs
            // no log flush before write-back: treat it as LSN 0 (found by the loom models:
            // attach to a second instance, then write).
            let stored_lsn = page_lsn_of(&bytes);
            let page_lsn = if stored_lsn < log.tip_lsn() {
                stored_lsn
            } else {
                0
            };
            self.frames.insert(
                key,
                Frame {
                    bytes,
                    dirty: false,
                    first_dirty_lsn: 0,
                    page_lsn,
                    last_used_stamp: AtomicU64::new(stamp),
                    write_back_in_flight: false,
                    changed_in_flight_lsn: None,
                },
            );
        }
        Ok(())
    }

    /// Installs a new image of a page, already logged at `page_lsn`, as a dirty frame.
    pub fn write(
        &mut self,
        file: FileId,
        page: PageNumber,
        bytes: Vec<u8>,
        page_lsn: Lsn,
        log: &mut Log,
    ) -> JetResult<()> {
        assert_eq!(bytes.len(), PAGE_SIZE_BYTES);
        // The record describing this image must already be in the log.
        assert!(
            page_lsn < log.tip_lsn(),
            "a page image is logged before it is cached"
        );
        if !self.files.contains_key(&file) {
            return Err(JetError::InvalidDatabaseId);
        }
        let key = (file, page);
        let stamp = self.next_stamp();
        if !self.frames.contains_key(&key) {
            self.make_room(log)?;
        }
        let frame = self.frames.entry(key).or_insert(Frame {
            bytes: Vec::new(),
            dirty: false,
            first_dirty_lsn: 0,
            page_lsn: 0,
            last_used_stamp: AtomicU64::new(stamp),
            write_back_in_flight: false,
            changed_in_flight_lsn: None,
        });
        debug_assert!(page_lsn >= frame.page_lsn, "page LSNs only grow");
        if frame.write_back_in_flight {
            frame.changed_in_flight_lsn.get_or_insert(page_lsn);
        }
        frame.bytes = bytes;
        if !frame.dirty {
            frame.dirty = true;
            frame.first_dirty_lsn = page_lsn;
        }
        frame.page_lsn = page_lsn;
        *frame.last_used_stamp.get_mut() = stamp;
        Ok(())
    }

    /// Evicts frames until there is room for one more, or until every frame left is in a
    /// write-back batch: that happens only after the cache was made smaller than the frames
    /// in flight (batches take at most half the cache they were started in), and the cache
    /// then holds more frames than its size until those batches end, when the next
    /// evictions bring it down.
    fn make_room(&mut self, log: &mut Log) -> JetResult<()> {
        // Each iteration removes a frame, so this runs at most `frames.len()` times.
        while self.frames.len() >= self.cache_size_pages {
            // A frame whose write-back is in flight stays: a newer image written now would be
            // overwritten on disk by the batch's older one.
            let takes_in_flight = self.evicts_frames_in_flight;
            let victim = self
                .lru_frame(|frame| !frame.dirty && (takes_in_flight || !frame.write_back_in_flight))
                .or_else(|| self.lru_frame(|frame| takes_in_flight || !frame.write_back_in_flight));
            let Some(victim) = victim else {
                assert!(
                    self.frames_in_flight() > self.cache_size_pages / 2,
                    "a full cache has frames not in flight unless it shrank below its batches"
                );
                return Ok(());
            };
            if self.frames[&victim].dirty {
                crate::mark!(self.marks, EvictionWroteDirtyPage);
                self.write_back(victim, log)?;
            }
            let evicted = self.frames.remove(&victim).expect("victim exists");
            debug_assert!(!evicted.dirty);
            self.stats.evictions += 1;
        }
        Ok(())
    }

    fn lru_frame(&self, eligible: impl Fn(&Frame) -> bool) -> Option<FrameKey> {
        self.frames
            .iter()
            .filter(|(_, frame)| eligible(frame))
            .min_by_key(|(_, frame)| frame.last_used_stamp.load(Ordering::Relaxed))
            .map(|(key, _)| *key)
    }

    /// Writes one dirty frame to its file, flushing the log first as the WAL rule demands.
    fn write_back(&mut self, key: FrameKey, log: &mut Log) -> JetResult<()> {
        (self.latched_io_check)();
        let frame = self.frames.get(&key).expect("frame exists");
        assert!(frame.dirty);
        assert!(
            !frame.write_back_in_flight
                || self.evicts_frames_in_flight
                || self.writes_beside_write_back
                || self
                    .write_backs_out
                    .iter()
                    .all(|ended| ended.load(Ordering::Acquire)),
            "page {key:?} written back while a background write-back of it is in flight"
        );
        if !self.skip_wal_flush {
            if log.flushed_lsn() <= frame.page_lsn {
                log.flush()?;
            }
            // The WAL rule: the record at page_lsn (which has nonzero length) is durable.
            assert!(
                log.flushed_lsn() > frame.page_lsn,
                "WAL rule: page {key:?} written before its log record"
            );
        }
        let handle = self.files.get(&key.0).expect("frames belong to open files");
        self.unsynced_files.insert(key.0);
        // A deferred read of this page that started before this write may return the old
        // bytes: it must not be installed.
        if let Some(in_flight) = self.reads_in_flight.get_mut(&key) {
            in_flight.overtaken = true;
        }
        handle
            .write_at(page_offset_bytes(key.1), &frame.bytes)
            .map_err(|e| JetError::from_io(&e))?;
        let frame = self.frames.get_mut(&key).expect("frame exists");
        frame.dirty = false;
        frame.first_dirty_lsn = 0;
        self.stats.pages_written += 1;
        Ok(())
    }

    /// Copies up to `batch_max` of the oldest dirty frames (by first-dirty LSN) for a
    /// background write-back, while the checkpoint depth against `log`'s tip exceeds
    /// `max_depth_bytes`: only frames whose log record is durable (the WAL rule, without a
    /// log write here) and no frame already in flight. Marks them in flight; `None` if there
    /// is nothing to write.
    pub fn begin_write_back(
        &mut self,
        max_depth_bytes: u64,
        log: &Log,
        batch_max: usize,
    ) -> Option<WriteBackBatch> {
        assert!(
            batch_max + self.frames_in_flight() <= self.cache_size_pages / 2,
            "the batches out take at most half the cache"
        );
        let mut dirty: Vec<(Lsn, FrameKey)> = self
            .frames
            .iter()
            .filter(|(_, frame)| frame.dirty && !frame.write_back_in_flight)
            .map(|(key, frame)| (frame.first_dirty_lsn, *key))
            .collect();
        dirty.sort_unstable();
        let mut pages = Vec::new();
        for (first_dirty_lsn, key) in dirty {
            let frame = &self.frames[&key];
            let durable = self.skip_wal_flush || log.flushed_lsn() > frame.page_lsn;
            if pages.len() == batch_max
                || log.tip_lsn() - first_dirty_lsn <= max_depth_bytes
                || !durable
            {
                break;
            }
            pages.push((key, frame.page_lsn, frame.bytes.clone()));
        }
        if pages.is_empty() {
            return None;
        }
        Some(self.start_batch(pages, true))
    }

    /// Frames whose write-back is in flight, in every batch out.
    pub fn frames_in_flight(&self) -> usize {
        self.frames
            .values()
            .filter(|frame| frame.write_back_in_flight)
            .count()
    }

    /// Marks `pages` in flight and hands them out as a batch.
    fn start_batch(&mut self, pages: Vec<(FrameKey, Lsn, Vec<u8>)>, syncs: bool) -> WriteBackBatch {
        let mut files = BTreeMap::new();
        for (key, _, _) in &pages {
            let frame = self.frames.get_mut(key).expect("chosen above");
            frame.write_back_in_flight = true;
            frame.changed_in_flight_lsn = None;
            // A deferred read of this page that started before this write may return the
            // old bytes: it must not be installed.
            if let Some(in_flight) = self.reads_in_flight.get_mut(key) {
                in_flight.overtaken = true;
            }
            files.insert(key.0, Arc::clone(&self.files[&key.0]));
        }
        let io_ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        self.write_backs_out.push(Arc::clone(&io_ended));
        WriteBackBatch {
            pages,
            files,
            io_ended,
            syncs,
        }
    }

    /// Whether `pages` of `file` can be installed with evictions that write nothing: the
    /// frames the pages not cached need can all come from clean frames not in flight, other
    /// than the pages themselves (an eviction may take one of those before it is written,
    /// and its write then needs a frame of its own, so they are not counted). If not, the
    /// frames missing are kept for [`BufferManager::take_room_wanted`].
    pub fn has_clean_room_for(&mut self, file: FileId, pages: &[PageNumber]) -> bool {
        let keys: Vec<FrameKey> = pages.iter().map(|&page| (file, page)).collect();
        self.has_clean_room_for_keys(&keys)
    }

    /// [`BufferManager::has_clean_room_for`] for pages of any files, installed together.
    pub fn has_clean_room_for_keys(&mut self, keys: &[FrameKey]) -> bool {
        let new_frames = keys
            .iter()
            .filter(|key| !self.frames.contains_key(key))
            .count();
        let evictions = (self.frames.len() + new_frames).saturating_sub(self.cache_size_pages);
        if evictions == 0 {
            return true;
        }
        let clean = self
            .frames
            .iter()
            .filter(|(key, frame)| {
                !frame.dirty && !frame.write_back_in_flight && !keys.contains(key)
            })
            .count();
        if clean >= evictions {
            return true;
        }
        self.room_wanted = self.room_wanted.max(evictions - clean);
        false
    }

    /// The clean frames an install found missing ([`BufferManager::has_clean_room_for`]),
    /// now forgotten; 0 if none was.
    pub fn take_room_wanted(&mut self) -> usize {
        std::mem::take(&mut self.room_wanted)
    }

    /// Copies up to `wanted` of the least recently used dirty frames whose log record is
    /// durable, and not in flight, for a call to write with no latch held
    /// ([`WriteBackBatch::write_and_sync`], which writes them without a sync: the next
    /// checkpoint syncs their files, as after an eviction) and end with
    /// [`BufferManager::finish_write_back`]; they are then clean, and an eviction may take
    /// them without writing. The batches out stay within half the cache. `None`: no such
    /// frame, since every dirty frame waits for the log (the caller makes it durable first)
    /// or is in flight already.
    pub fn begin_room_write_back(&mut self, wanted: usize, log: &Log) -> Option<WriteBackBatch> {
        let room = (self.cache_size_pages / 2).saturating_sub(self.frames_in_flight());
        let mut dirty: Vec<(u64, FrameKey)> = self
            .frames
            .iter()
            .filter(|(_, frame)| {
                frame.dirty
                    && (self.evicts_frames_in_flight || !frame.write_back_in_flight)
                    && (self.skip_wal_flush || log.flushed_lsn() > frame.page_lsn)
            })
            .map(|(key, frame)| (frame.last_used_stamp.load(Ordering::Relaxed), *key))
            .collect();
        dirty.sort_unstable();
        let pages: Vec<(FrameKey, Lsn, Vec<u8>)> = dirty
            .into_iter()
            .take(wanted.min(room))
            .map(|(_, key)| {
                let frame = &self.frames[&key];
                (key, frame.page_lsn, frame.bytes.clone())
            })
            .collect();
        if pages.is_empty() {
            return None;
        }
        crate::mark!(self.marks, EvictionWroteDirtyPage);
        Some(self.start_batch(pages, false))
    }

    /// Ends a background write-back whose I/O ended (`written`: it succeeded). Each frame
    /// still cached is no longer in flight; one no change reached meanwhile is clean (its
    /// copy is on disk and synced), one changed meanwhile stays dirty from its first change
    /// after the copy. Returns the pages cleaned.
    pub fn finish_write_back(&mut self, batch: WriteBackBatch, written: bool) -> u64 {
        assert!(
            batch.io_ended.load(Ordering::Acquire),
            "a batch ends after its I/O"
        );
        self.write_backs_out
            .retain(|ended| !Arc::ptr_eq(ended, &batch.io_ended));
        if written && !batch.syncs {
            // Written, not synced: the next checkpoint syncs the files first.
            let open = batch
                .files
                .keys()
                .filter(|file| self.files.contains_key(file));
            self.unsynced_files.extend(open);
        }
        let mut cleaned = 0;
        for (key, _, _) in &batch.pages {
            // A detach may have dropped the file's frames meanwhile (after the I/O ended).
            let Some(frame) = self.frames.get_mut(key) else {
                continue;
            };
            frame.write_back_in_flight = false;
            let changed = frame.changed_in_flight_lsn.take();
            if !written || !frame.dirty {
                continue;
            }
            match changed {
                None => {
                    frame.dirty = false;
                    frame.first_dirty_lsn = 0;
                    cleaned += 1;
                }
                Some(first_change_lsn) => frame.first_dirty_lsn = first_change_lsn,
            }
        }
        if written {
            self.stats.pages_written += batch.pages.len() as u64;
        }
        cleaned
    }

    /// Writes back every dirty page of `file` in page order and syncs the file.
    pub fn flush_file(&mut self, file: FileId, log: &mut Log) -> JetResult<u64> {
        let dirty: Vec<FrameKey> = self
            .frames
            .range((file, 0)..=(file, PageNumber::MAX))
            .filter(|(_, frame)| frame.dirty)
            .map(|(key, _)| *key)
            .collect();
        for key in &dirty {
            self.write_back(*key, log)?;
        }
        let handle = self.files.get(&file).ok_or(JetError::InvalidDatabaseId)?;
        (self.latched_io_check)();
        handle.sync().map_err(|e| JetError::from_io(&e))?;
        self.unsynced_files.remove(&file);
        Ok(dirty.len() as u64)
    }

    /// Syncs every file with page writes not yet synced (by eviction or a flush).
    /// The files written since their last sync, now counted as synced: the caller syncs
    /// them with no lock held (an error there makes the storage fail-stop, so none is lost).
    pub fn take_unsynced_files(&mut self) -> Vec<Arc<dyn IoFile>> {
        std::mem::take(&mut self.unsynced_files)
            .into_iter()
            .map(|file| Arc::clone(self.files.get(&file).expect("written files are open")))
            .collect()
    }

    pub fn sync_written_files(&mut self) -> JetResult<()> {
        // Each iteration removes one file from the set.
        while let Some(&file) = self.unsynced_files.first() {
            let handle = self.files.get(&file).expect("written files are open");
            (self.latched_io_check)();
            handle.sync().map_err(|e| JetError::from_io(&e))?;
            self.unsynced_files.remove(&file);
        }
        Ok(())
    }

    /// Writes back dirty pages oldest-first (by first-dirty LSN) until the checkpoint depth
    /// against `log`'s tip is at most `max_depth_bytes`, then syncs every file written.
    /// Returns the number of pages written.
    pub fn flush_to_depth(&mut self, max_depth_bytes: u64, log: &mut Log) -> JetResult<u64> {
        let mut pages_written = 0u64;
        // Oldest first-dirty LSN first. Sorted once: writing a page back dirties nothing else,
        // so the order stays right, and the checkpoint after cleaning the i-th page is the
        // (i+1)-th page's LSN. (Rescanning the frames for the oldest at every step made a
        // 10,000-page stop quadratic: 1.5 s.)
        let mut dirty: Vec<(Lsn, FrameKey)> = self
            .frames
            .iter()
            .filter(|(_, frame)| frame.dirty)
            .map(|(key, frame)| (frame.first_dirty_lsn, *key))
            .collect();
        dirty.sort_unstable();
        for &(first_dirty_lsn, key) in &dirty {
            if log.tip_lsn() - first_dirty_lsn <= max_depth_bytes {
                break;
            }
            self.write_back(key, log)?;
            pages_written += 1;
        }
        debug_assert!(log.tip_lsn() - self.checkpoint_lsn(log.tip_lsn()) <= max_depth_bytes);
        // Pages must be durable before a checkpoint past them is recorded: those written now
        // and those evicted earlier without a sync (which a checkpoint no longer counts).
        self.sync_written_files()?;
        Ok(pages_written)
    }

    /// Writes back every dirty page and syncs every file.
    pub fn flush_all(&mut self, log: &mut Log) -> JetResult<u64> {
        let files: Vec<FileId> = self.files.keys().copied().collect();
        let mut pages_written = 0;
        for file in files {
            pages_written += self.flush_file(file, log)?;
        }
        debug_assert_eq!(self.dirty_page_count(), 0);
        Ok(pages_written)
    }

    /// The oldest first-dirty LSN over dirty frames, or `tip_lsn` when nothing is dirty.
    pub fn checkpoint_lsn(&self, tip_lsn: Lsn) -> Lsn {
        let first_dirty_lsns = self
            .frames
            .values()
            .filter(|frame| frame.dirty)
            .map(|frame| frame.first_dirty_lsn);
        let checkpoint = if self.checkpoint_from_newest_dirty {
            first_dirty_lsns.max()
        } else {
            first_dirty_lsns.min()
        }
        .unwrap_or(tip_lsn);
        debug_assert!(checkpoint <= tip_lsn);
        checkpoint
    }

    pub fn dirty_page_count(&self) -> u64 {
        self.frames.values().filter(|frame| frame.dirty).count() as u64
    }

    /// Changes the cache size (clamped to [`MIN_CACHE_SIZE_PAGES`]) and evicts down to it.
    /// Makes the cache `pages` frames (at least [`MIN_CACHE_SIZE_PAGES`]), evicting what it
    /// can now: frames in a write-back batch stay until it ends (see
    /// [`BufferManager::make_room`]).
    pub fn set_cache_size_pages(&mut self, pages: usize, log: &mut Log) -> JetResult<()> {
        self.cache_size_pages = pages.max(MIN_CACHE_SIZE_PAGES);
        // make_room leaves len < capacity; shrinking needs len <= capacity.
        while self.frames.len() > self.cache_size_pages {
            let before = self.frames.len();
            self.cache_size_pages += 1;
            let result = self.make_room(log);
            self.cache_size_pages -= 1;
            result?;
            if self.frames.len() == before {
                break;
            }
        }
        Ok(())
    }

    pub fn cached_page_count(&self) -> usize {
        self.frames.len()
    }

    /// Drops every file handle (after [`BufferManager::flush_all`]).
    /// Drops every dirty frame unwritten: only for the planted bug
    /// [`crate::Mutant::TermTrustsStopFlush`].
    pub fn forget_dirty_pages(&mut self) {
        self.frames.retain(|_, frame| !frame.dirty);
    }

    pub fn close_all(&mut self) {
        debug_assert_eq!(self.dirty_page_count(), 0);
        self.frames.clear();
        self.files.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::io::{Io, MemIo};
    use crate::runtime::sync::unlatched;
    use crate::runtime::StdRuntime;
    use crate::storage::log::LogRecord;
    use crate::storage::page::{decode_page, encode_page, Node, PageContent};

    fn logged_image(log: &mut Log, file: FileId, page: PageNumber, tag: u8) -> (Vec<u8>, Lsn) {
        let lsn = log.tip_lsn();
        let content = PageContent::Node(Node::Leaf {
            entries: vec![(vec![tag], vec![tag; 10])],
        });
        let image = encode_page(&content, lsn);
        let logged = log
            .append(&LogRecord::PageImages {
                file,
                images: vec![(page, image.clone())],
            })
            .expect("append");
        assert_eq!(logged, lsn);
        (image, lsn)
    }

    #[test]
    fn eviction_obeys_the_wal_rule_and_lru() {
        // Goal: a dirty page evicted from a full cache reaches its file only after the log is
        // flushed past its page LSN, and the page read back is the one written.
        let io = MemIo::new();
        let (mut log, _) = Log::open(&io, "t.log").expect("log");
        let file = FileId(1);
        let mut buffers = BufferManager::new(1); // clamped to the minimum
        assert_eq!(buffers.cache_size_pages(), MIN_CACHE_SIZE_PAGES);
        buffers.add_file(file, io.create("t.edb").expect("create"));
        for page in 0..MIN_CACHE_SIZE_PAGES as PageNumber {
            let (image, lsn) = logged_image(&mut log, file, page, page as u8);
            buffers
                .write(file, page, image, lsn, &mut log)
                .expect("write");
        }
        assert_eq!(buffers.dirty_page_count(), MIN_CACHE_SIZE_PAGES as u64);
        assert_eq!(log.flushed_lsn(), crate::storage::log::LOG_HEADER_BYTES);
        let first_lsn = buffers.checkpoint_lsn(log.tip_lsn());

        // One more page: every frame is dirty, so page 0 (LRU) is written back.
        let (image, lsn) = logged_image(&mut log, file, 100, 100);
        buffers
            .write(file, 100, image, lsn, &mut log)
            .expect("write");
        assert_eq!(buffers.stats().evictions, 1);
        assert_eq!(buffers.stats().pages_written, 1);
        assert!(
            log.flushed_lsn() > first_lsn,
            "WAL: log flushed before the page"
        );
        let on_disk = io.open("t.edb").expect("open");
        let mut bytes = vec![0; PAGE_SIZE_BYTES];
        on_disk.read_at(0, &mut bytes).expect("read");
        let (page_lsn, _) = decode_page(&bytes).expect("valid page");
        assert!(page_lsn < log.flushed_lsn());

        // Page 0 comes back from the file.
        let bytes = buffers.read(file, 0, &mut log).expect("read").to_vec();
        assert_eq!(decode_page(&bytes).expect("valid").0, first_lsn);
        assert_eq!(buffers.stats().pages_read, 1);
        assert!(buffers.cached_page_count() <= MIN_CACHE_SIZE_PAGES);
    }

    #[test]
    fn room_for_an_install_comes_from_a_write_back_made_outside_the_latch() {
        // Goal: with every frame dirty, an install that may not write is refused and says how
        // many frames it lacks; the call's batch for room takes the least recently used
        // pages whose log is durable, writes them without a sync, and leaves them clean, so
        // the install then evicts without writing; the next checkpoint must sync the file.
        let io = MemIo::new();
        let (mut log, file, mut buffers) = smallest_cache_on(&io);
        for page in 0..MIN_CACHE_SIZE_PAGES as PageNumber {
            let (image, lsn) = logged_image(&mut log, file, page, page as u8);
            buffers
                .write(file, page, image, lsn, &mut log)
                .expect("write");
        }
        // Two new pages, and page 3 rewritten: two frames short, none clean.
        assert!(!buffers.has_clean_room_for(file, &[3, 100, 101]));
        assert_eq!(buffers.take_room_wanted(), 2);
        assert_eq!(buffers.take_room_wanted(), 0, "taken once");
        // Nothing is durable yet: no page may be written back.
        assert!(buffers.begin_room_write_back(2, &log).is_none());
        log.flush().expect("flush");
        let batch = buffers
            .begin_room_write_back(2, &log)
            .expect("durable dirty pages");
        let written: Vec<FrameKey> = batch.pages.iter().map(|(key, _, _)| *key).collect();
        assert_eq!(written, [(file, 0), (file, 1)], "least recently used first");
        assert!(
            !buffers.has_clean_room_for(file, &[3, 100, 101]),
            "in flight"
        );
        let syncs_before = io.mutating_ops();
        batch
            .write_and_sync(unlatched::<StdRuntime>())
            .expect("write");
        assert_eq!(io.mutating_ops() - syncs_before, 2, "two writes, no sync");
        assert_eq!(buffers.finish_write_back(batch, true), 2);
        assert!(buffers.has_clean_room_for(file, &[3, 100, 101]));
        assert!(
            !buffers.unsynced_files.is_empty(),
            "the checkpoint syncs them"
        );
        for page in [100, 101] {
            let (image, lsn) = logged_image(&mut log, file, page, page as u8);
            let written_before = buffers.stats().pages_written;
            buffers
                .write(file, page, image, lsn, &mut log)
                .expect("write");
            assert_eq!(
                buffers.stats().pages_written,
                written_before,
                "a clean eviction"
            );
        }
    }

    /// A log and a cache of [`MIN_CACHE_SIZE_PAGES`] over one file, `t.edb`, on `io`.
    fn smallest_cache_on(io: &MemIo) -> (Log, FileId, BufferManager) {
        cache_on(io, MIN_CACHE_SIZE_PAGES)
    }

    fn cache_on(io: &MemIo, cache_pages: usize) -> (Log, FileId, BufferManager) {
        let (log, _) = Log::open(io, "t.log").expect("log");
        let file = FileId(1);
        let mut buffers = BufferManager::new(cache_pages);
        buffers.add_file(file, io.create("t.edb").expect("create"));
        (log, file, buffers)
    }

    /// A full cache of dirty pages `0..cache_pages` of `file` (page `p` tagged `p`), the log
    /// flushed, and a background write-back batch of the oldest half out.
    fn full_cache_with_half_in_flight(
        log: &mut Log,
        file: FileId,
        buffers: &mut BufferManager,
    ) -> WriteBackBatch {
        let cache_pages = buffers.cache_size_pages();
        for page in 0..cache_pages as PageNumber {
            let (image, lsn) = logged_image(log, file, page, page as u8);
            buffers.write(file, page, image, lsn, log).expect("write");
        }
        log.flush().expect("flush");
        let batch = buffers
            .begin_write_back(0, log, cache_pages / 2)
            .expect("dirty pages to write");
        assert_eq!(batch.page_count(), cache_pages / 2);
        batch
    }

    /// The disk's image of `page`: its tag (the first key's byte).
    fn tag_on_disk(io: &MemIo, page: PageNumber) -> u8 {
        let mut bytes = vec![0; PAGE_SIZE_BYTES];
        io.open("t.edb")
            .expect("open")
            .read_at(page_offset_bytes(page), &mut bytes)
            .expect("read");
        leaf_tag(&bytes)
    }

    /// A full cache of dirty pages 0..8, log flushed, with a background write-back batch of
    /// the oldest half out; then page 0 (in the batch) is changed, left the least recently
    /// used, and the cache made to evict one frame while the batch's I/O is out. Returns the
    /// disk's tag of page 0 after the batch's I/O, and whether the cache still holds page 0
    /// dirty from the change after the batch ended (`None`: not cached).
    fn write_back_racing_an_eviction(evicts_frames_in_flight: bool) -> (u8, Option<bool>) {
        let io = MemIo::new();
        let (mut log, file, mut buffers) = smallest_cache_on(&io);
        buffers.evicts_frames_in_flight = evicts_frames_in_flight;
        let batch = full_cache_with_half_in_flight(&mut log, file, &mut buffers);
        let (image, change_lsn) = logged_image(&mut log, file, 0, 50);
        buffers
            .write(file, 0, image, change_lsn, &mut log)
            .expect("write");
        // Page 0 is the least recently used frame, so it is the victim if it may be one.
        *buffers
            .frames
            .get_mut(&(file, 0))
            .expect("cached")
            .last_used_stamp
            .get_mut() = 0;
        let (image, lsn) = logged_image(&mut log, file, 100, 100);
        buffers
            .write(file, 100, image, lsn, &mut log)
            .expect("write");
        let written = batch.write_and_sync(unlatched::<StdRuntime>());
        let tag = tag_on_disk(&io, 0);
        buffers.finish_write_back(batch, written.is_ok());
        let frame = buffers.frames.get(&(file, 0));
        let dirty_from_change =
            frame.map(|frame| frame.dirty && frame.first_dirty_lsn == change_lsn);
        (tag, dirty_from_change)
    }

    #[test]
    fn a_background_write_back_keeps_frames_in_flight_and_changed_ones_dirty() {
        // Goal: eviction skips the frames whose write-back is in flight, and a frame changed
        // while in flight stays dirty from that change: the disk holds the batch's copy (tag
        // 0), the cache the change (tag 50), to be written later.
        assert_eq!(write_back_racing_an_eviction(false), (0, Some(true)));
    }

    #[test]
    fn a_frame_evicted_during_its_write_back_loses_its_change_on_disk() {
        // Goal: the planted bug `FrameEvictedDuringWriteBack`'s effect, seen on the disk: the
        // evicted frame's newer image (tag 50) is overwritten by the batch's older copy, and
        // the cache no longer has the page.
        assert_eq!(write_back_racing_an_eviction(true), (0, None));
    }

    #[test]
    fn a_cache_shrunk_below_its_frames_in_flight_shrinks_when_the_batch_ends() {
        // Goal: a cache made smaller than the frames a write-back batch holds (set while the
        // batch's I/O ended but before its owner finished it) keeps those frames, still
        // takes new pages, and comes down to its size once the batch has ended. Found by the
        // 8-thread fault campaign (a CacheSizePages of 9 set under a 32-frame batch).
        let io = MemIo::new();
        let (mut log, file, mut buffers) = cache_on(&io, 4 * MIN_CACHE_SIZE_PAGES);
        let cached = 4 * MIN_CACHE_SIZE_PAGES as PageNumber;
        let batch = full_cache_with_half_in_flight(&mut log, file, &mut buffers);
        let in_flight = 2 * MIN_CACHE_SIZE_PAGES;
        let written = batch.write_and_sync(unlatched::<StdRuntime>());
        buffers
            .set_cache_size_pages(MIN_CACHE_SIZE_PAGES, &mut log)
            .expect("shrink");
        assert_eq!(buffers.cached_page_count(), in_flight);
        let (image, lsn) = logged_image(&mut log, file, cached, 99);
        buffers
            .write(file, cached, image, lsn, &mut log)
            .expect("a page installs beside the batch");
        assert_eq!(buffers.cached_page_count(), in_flight + 1);
        buffers.finish_write_back(batch, written.is_ok());
        let (image, lsn) = logged_image(&mut log, file, cached + 1, 100);
        buffers
            .write(file, cached + 1, image, lsn, &mut log)
            .expect("write");
        assert_eq!(buffers.cached_page_count(), MIN_CACHE_SIZE_PAGES);
    }

    #[test]
    fn correlated_touches_leave_stamps_alone_and_hot_pages_cached() {
        // Goal: a cache hit on a recently stamped frame writes nothing shared (the counter
        // and the stamp stay), one on an older frame re-stamps it, and a page hit between
        // every install stays cached however many cold pages pass through the cache.
        let io = MemIo::new();
        let (mut log, _) = Log::open(&io, "t.log").expect("log");
        let file = FileId(1);
        let mut buffers = BufferManager::new(MIN_CACHE_SIZE_PAGES);
        buffers.add_file(file, io.create("t.edb").expect("create"));
        for page in 0..MIN_CACHE_SIZE_PAGES as PageNumber {
            let (image, lsn) = logged_image(&mut log, file, page, 1);
            buffers
                .write(file, page, image, lsn, &mut log)
                .expect("write");
        }
        buffers.flush_to_depth(0, &mut log).expect("flush");
        let counter = |buffers: &BufferManager| buffers.use_counter.load(Ordering::Relaxed);
        let stamp = |buffers: &BufferManager, page| {
            buffers.frames[&(file, page)]
                .last_used_stamp
                .load(Ordering::Relaxed)
        };

        // Page 0 was stamped first: a hit re-stamps it; the next hits are correlated.
        let before = counter(&buffers);
        assert!(buffers.read_cached(file, 0).is_some());
        assert_eq!(counter(&buffers), before + 1);
        assert_eq!(stamp(&buffers, 0), before + 1);
        assert!(buffers.read_cached(file, 0).is_some());
        buffers.read(file, 0, &mut log).expect("read");
        assert_eq!(
            counter(&buffers),
            before + 1,
            "a correlated hit writes nothing"
        );

        for cold in 0..4 * MIN_CACHE_SIZE_PAGES as PageNumber {
            let (image, lsn) = logged_image(&mut log, file, 100 + cold, 2);
            buffers
                .write(file, 100 + cold, image, lsn, &mut log)
                .expect("write");
            buffers.flush_to_depth(0, &mut log).expect("flush");
            assert!(
                buffers.read_cached(file, 0).is_some(),
                "the hot page was evicted after {cold} cold pages"
            );
            let age = counter(&buffers) - stamp(&buffers, 0);
            assert!(age < buffers.correlated_touch_stamps());
        }
        assert!(buffers.stats().evictions >= 3 * MIN_CACHE_SIZE_PAGES as u64);
    }

    #[test]
    fn checkpoint_follows_the_oldest_dirty_page() {
        // Goal: flushing to a depth writes oldest-first and stops as soon as it is shallow
        // enough; depth 0 cleans everything.
        let io = MemIo::new();
        let (mut log, _) = Log::open(&io, "t.log").expect("log");
        let file = FileId(1);
        let mut buffers = BufferManager::new(16);
        buffers.add_file(file, io.create("t.edb").expect("create"));
        assert_eq!(buffers.checkpoint_lsn(log.tip_lsn()), log.tip_lsn());
        let mut lsns = Vec::new();
        for page in 0..4 {
            let (image, lsn) = logged_image(&mut log, file, page, 1);
            buffers
                .write(file, page, image, lsn, &mut log)
                .expect("write");
            lsns.push(lsn);
        }
        // Rewriting page 0 keeps its first-dirty LSN.
        let (image, lsn) = logged_image(&mut log, file, 0, 2);
        buffers.write(file, 0, image, lsn, &mut log).expect("write");
        assert_eq!(buffers.checkpoint_lsn(log.tip_lsn()), lsns[0]);

        let depth_bytes = log.tip_lsn() - lsns[2];
        let written = buffers
            .flush_to_depth(depth_bytes, &mut log)
            .expect("flush");
        assert_eq!(written, 2);
        assert_eq!(buffers.checkpoint_lsn(log.tip_lsn()), lsns[2]);
        let written = buffers.flush_to_depth(0, &mut log).expect("flush");
        assert_eq!(written, 2);
        assert_eq!(buffers.dirty_page_count(), 0);
        assert_eq!(buffers.checkpoint_lsn(log.tip_lsn()), log.tip_lsn());
    }

    #[test]
    #[should_panic(expected = "a page image is logged before it is cached")]
    fn caching_an_unlogged_image_is_caught() {
        // Goal: the WAL assertion fires when a page image is cached without a log record.
        let io = MemIo::new();
        let (mut log, _) = Log::open(&io, "t.log").expect("log");
        let mut buffers = BufferManager::new(8);
        buffers.add_file(FileId(1), io.create("t.edb").expect("create"));
        let image = encode_page(&PageContent::Node(Node::empty_leaf()), log.tip_lsn());
        let _ = buffers.write(FileId(1), 2, image, log.tip_lsn(), &mut log);
    }

    #[test]
    fn shrinking_the_cache_writes_back() {
        let io = MemIo::new();
        let (mut log, _) = Log::open(&io, "t.log").expect("log");
        let file = FileId(1);
        let mut buffers = BufferManager::new(32);
        buffers.add_file(file, io.create("t.edb").expect("create"));
        for page in 0..20 {
            let (image, lsn) = logged_image(&mut log, file, page, 1);
            buffers
                .write(file, page, image, lsn, &mut log)
                .expect("write");
        }
        buffers.set_cache_size_pages(8, &mut log).expect("shrink");
        assert_eq!(buffers.cached_page_count(), 8);
        assert_eq!(buffers.stats().pages_written, 12);
    }

    /// A read made outside the latch of page 0 while page 0 is changed, written back and
    /// evicted; then the read's bytes are handed to `finish_deferred_read`. Returns the
    /// bytes page 0 then has in the cache.
    fn page_after_an_overtaken_deferred_read(install_overtaken_reads: bool) -> Vec<u8> {
        let io = MemIo::new();
        let (mut log, file, mut buffers) = smallest_cache_on(&io);
        buffers.install_overtaken_reads = install_overtaken_reads;
        let write = |buffers: &mut BufferManager, log: &mut Log, page, tag| {
            let (image, lsn) = logged_image(log, file, page, tag);
            buffers.write(file, page, image, lsn, log).expect("write");
        };
        let evict_page_0 = |buffers: &mut BufferManager, log: &mut Log, tag: u8| {
            buffers.flush_all(log).expect("flush");
            for page in 1..=MIN_CACHE_SIZE_PAGES as PageNumber {
                write(buffers, log, page, tag);
            }
            assert!(!buffers.frames.contains_key(&(file, 0)), "page 0 evicted");
        };
        write(&mut buffers, &mut log, 0, 1);
        evict_page_0(&mut buffers, &mut log, 1);

        // The reader misses page 0 and reads it with no latch: version 1.
        buffers.set_miss_policy(MissPolicy::Defer);
        assert_eq!(
            buffers.read(file, 0, &mut log).err(),
            Some(JetError::OutOfBuffers)
        );
        let deferred = buffers.take_deferred_read().expect("the miss was recorded");
        let stale = deferred.read(unlatched::<StdRuntime>());
        buffers.set_miss_policy(MissPolicy::ReadUnderLock);

        // Meanwhile a writer changes page 0 to version 2; it is written back and evicted.
        write(&mut buffers, &mut log, 0, 2);
        evict_page_0(&mut buffers, &mut log, 3);

        buffers
            .finish_deferred_read(&deferred, stale, true, &mut log)
            .expect("finish");
        buffers.read(file, 0, &mut log).expect("read").to_vec()
    }

    fn leaf_tag(bytes: &[u8]) -> u8 {
        match decode_page(bytes).expect("valid page").1 {
            PageContent::Node(Node::Leaf { entries }) => entries[0].0[0],
            other => panic!("not the test's leaf: {other:?}"),
        }
    }

    #[test]
    fn a_deferred_read_overtaken_by_a_write_back_is_discarded() {
        // Goal: a page read outside the latch, that a write-back of the page overtook, never
        // replaces the newer page: the cache (and so every later read or write) sees the
        // version the writer made, not the one the slow reader saw.
        assert_eq!(leaf_tag(&page_after_an_overtaken_deferred_read(false)), 2);
        // Teeth: the planted bug `OvertakenReadInstalled` brings version 1 back.
        assert_eq!(leaf_tag(&page_after_an_overtaken_deferred_read(true)), 1);
    }
}
