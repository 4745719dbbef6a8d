//! The in-memory store ([`MemIo`]): a simulated disk with a seeded fault model.
//!
//! # The simulated disk and its fault model ([`MemIo`])
//!
//! Written down here, as TigerBeetle does for its simulated storage. Every fault the disk
//! injects is recorded as an [`InjectedFault`] (readable with [`MemIo::injected_faults`]), so
//! a trace can tell an injected fault from an engine bug. All randomness comes from one
//! [`SplitMix64`] seeded by [`FaultPlan::seed`]; there is no wall clock and no global state,
//! so a seed replays the same faults given the same sequence of I/O calls.
//!
//! What the disk may do:
//! 1. **Unsynced writes may be lost at a crash.** A file's bytes are its *synced* image plus
//!    the writes (and truncations) issued since its last `sync`. [`MemIo::crash`] drops all
//!    of them. [`MemIo::crash_with`] drops a seeded subset: each unsynced write is lost whole
//!    with probability `lost_write_ppm`, independently of the others, so a later write can
//!    survive an earlier one: the disk may have persisted them in any order.
//! 2. **A write may tear at sector granularity** ([`SECTOR_BYTES`] = 512). At a crash, a
//!    surviving unsynced write tears with probability `torn_write_ppm`: a random, non-empty,
//!    proper subset of its sectors reaches the disk, the rest keep their previous content. A
//!    synced write never tears and is never lost.
//! 3. **Reads, writes and syncs may fail** with an I/O error at seeded rates
//!    (`read_error_ppm`, `write_error_ppm`, `sync_error_ppm`). A failed write or sync changes
//!    nothing (its data is not written; after a failed sync the earlier unsynced writes stay
//!    unsynced, so a crash may still lose them).
//! 4. **Power can be cut after the n-th mutating operation** ([`MemIo::cut_power_after_ops`]):
//!    that operation and every later read, write, sync, create and remove fail, as if the
//!    machine died there. A crash (any of the `crash` calls) restores power, as a reboot does.
//! 5. **Directory entries are durable only once their directory is synced**, as on a real
//!    file system, where a file's `fsync` makes its bytes durable, not its name. The disk
//!    mirrors [`super::FileIo`], which syncs the parent directory inside `create` and
//!    `remove`: each is the entry change (refused only while the power is cut; not counted),
//!    then the directory's sync, a counted mutating operation that can fail
//!    (`sync_error_ppm`, recorded as a `SyncError` on `dir/`) or meet the power cut. A failed
//!    directory sync is an error the caller sees, and leaves the entry change made but not
//!    durable: at a crash each such change is undone with probability `lost_write_ppm`
//!    ([`MemIo::crash`]: always), so a created file is gone ([`InjectedFault::LostCreate`])
//!    or a removed one is back ([`InjectedFault::LostRemove`]), with its bytes as point 1
//!    leaves them. A directory sync makes every entry change in that directory durable, not
//!    only the caller's. A create of an existing file keeps the file and truncates it, and
//!    the truncation is an unsynced change of its bytes (point 1), as `O_TRUNC` is.
//!    Directories themselves are implicit in the paths and never lost.
//!
//! 6. **A sector an unsynced write put on the disk may come back as garbage** (random bytes)
//!    with probability `garbage_sector_ppm`, and
//! 7. **with one bit flipped** (otherwise) with probability `bit_flip_ppm`: the write was in
//!    flight when the power failed, and a drive that loses power mid-sector (or an SSD whose
//!    page program is interrupted) returns what it returns. Each sector of each surviving
//!    unsynced write (after tearing, point 2) draws both, in issue order; only the bytes that
//!    write put in that sector are damaged, never a neighbour's. Recorded as
//!    [`InjectedFault::GarbageSector`] and [`InjectedFault::BitFlip`]. For the log, whose
//!    tail is appended, a flip in a record's payload or checksum field leaves a well-formed
//!    frame header (a plausible length) with a wrong checksum: only the CRC tells it from a
//!    record, which is what these faults exist to exercise.
//!
//! **Synced data is never damaged**, by any fault here: every fault at a crash acts on
//! writes issued since the file's last successful sync, a synced byte is only ever replaced
//! by a later write, and a byte of an unsynced write that rewrites a synced byte with the
//! same value is never damaged (6 and 7 skip it, also inside a sector where the write adds
//! new bytes: the group-commit race below, then a bit flip on a synced commit record, lost an
//! acknowledged commit at sweep seed 300, crash point 3). That last case is a real hazard
//! the model leaves out on purpose: the engine's group commit can rewrite a durable log
//! range (a flush written outside the lock that lost the race to a flush under it), and a
//! real disk may tear such a rewrite, as it may tear the rewrite of a log's last, partly
//! filled sector (damage here never reaches a neighbour's bytes in the same sector). ESE
//! writes the last log sector to alternating shadow sectors for this reason; jetsim does
//! not yet, so the model does not claim a defence the engine lacks. The engine's durability promise (an acknowledged commit
//! survives any crash) rests on this, as it does on a real disk's, and a disk that rotted
//! synced sectors would need the page-level scrubbing and log replicas jetsim does not have.
//!
//! What is *not* modelled, and why:
//! - **Stale sectors ("ghost" records).** A real disk may return an *older* write's content
//!   for a sector whose newest write was lost. Here that is exactly what point 1 does (the
//!   sector keeps the synced content, or an earlier unsynced write that survived). What is
//!   not modelled is a file extension whose sectors come back holding what the medium held
//!   before a truncation (stale blocks exposed by a file system without ordered data): the
//!   log is the only file jetsim truncates and extends again (recovery cuts a torn tail, then
//!   appends over it), so such a sector could hold a whole record, with a right checksum, of
//!   a run that recovery had already cut. The log's per-record CRC cannot tell that record
//!   from a new one; it would take a checksum salted with the log's incarnation (ESE's log
//!   generation), which the format does not have yet. Hole regions (a torn extension's
//!   missing sectors) therefore read as zeros, as a file system with ordered data
//!   (ext4's default, NTFS) returns them.
//! - Corruption of synced data, misdirected writes and lost directory syncs that returned
//!   success: the engine makes no promise against them (see above).
//!
//! Faults 3 and 4 (and 5's failed directory syncs) are switchable at run time
//! ([`MemIo::set_faults_enabled`]), so a simulator can run a fault phase and then a clean
//! phase; the operation counter ([`MemIo::mutating_ops`]) always counts, for crash-point
//! sweeps.
//!
//! What the engine must survive, and how:
//! - Lost, reordered or torn unsynced writes (1, 2): recovery at the next `init` replays the
//!   write-ahead log. A commit is acknowledged only after its log record is synced, and a page
//!   is written only after the log describing it is synced (the WAL rule), so the synced log
//!   holds a full after-image of every page change that may be missing or torn on disk. Log
//!   records are length-prefixed and CRC-checked, so a torn or lost log tail ends the valid
//!   log (those records were never synced, so no commit depended on them). The checkpoint
//!   file has two CRC-checked slots, so a torn checkpoint write leaves the previous one. A
//!   page whose CRC fails is repaired from the log; the checkpoint is only persisted after
//!   every page before it is synced, so a torn page always has a later image in the log —
//!   if it does not, recovery reports `DatabaseCorrupted` and never uses the page.
//! - Garbage and flipped sectors (6, 7) are caught by the same checks: a log tail whose
//!   record fails its CRC ends the valid log there (reported in
//!   [`crate::storage::RecoveryReport::log_tail_checksum_failed`]; nothing after it was
//!   synced); a page fails its CRC and is repaired from the log; a checkpoint slot fails its
//!   CRC and the other slot is used. A log header that is garbage in a file no longer than
//!   the header is a creation that crashed before its sync: a fresh start, as an empty log.
//! - I/O errors (3, 4): the failing call returns `DiskIO` (or `LogWriteFail` for the log)
//!   and the instance becomes fail-stop (`InstanceUnavailable`) until it is terminated and
//!   initialized again, which recovers. The engine never retries a failed sync (its outcome
//!   is unknown) and never serves a page it could not read and verify. A commit whose call
//!   failed has an unknown outcome: recovery may find it committed or not, never half.
//! - Lost entries (5): a create or remove that returned is durable, so only a call that
//!   failed (init, create_database) can lose its file. A log or checkpoint that vanished is
//!   a fresh start (an empty log was never written to, so nothing depended on it; without a
//!   checkpoint, redo starts at the head of the log); a database the log names that vanished
//!   is reported in [`crate::storage::RecoveryReport::databases_missing`] and attaching it is
//!   `FileNotFound`.

use super::faults::{FaultState, Op};
use super::{CrashFaults, FaultPlan, InjectedFault, Io, IoFile, SplitMix64, SECTOR_BYTES};
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, Clone, Copy)]
enum PendingOp {
    /// `len` bytes written at `offset`. Their content is `current[offset..offset + len]`
    /// while `saved` is `None` (nothing issued since has changed those bytes), else
    /// `MemFileData::saved[saved..saved + len]`, copied there just before a later operation
    /// changed them: a write costs no copy of its own unless it is overwritten before a sync.
    Write {
        offset: usize,
        len: usize,
        saved: Option<usize>,
    },
    SetLen {
        len: usize,
    },
}

#[derive(Debug)]
struct MemFileData {
    current: Vec<u8>,
    /// The bytes as of the last sync: what survives any crash.
    synced: Vec<u8>,
    /// Every write and truncation since the last sync, oldest first.
    pending: Vec<PendingOp>,
    /// The content of pending writes whose bytes in `current` were changed since (see
    /// [`PendingOp::Write`]), one after another.
    saved: Vec<u8>,
}

impl Default for MemFileData {
    fn default() -> Self {
        MemFileData {
            current: spare_image(),
            synced: spare_image(),
            pending: Vec::new(),
            saved: spare_image(),
        }
    }
}

impl Drop for MemFileData {
    fn drop(&mut self) {
        keep_spare_image(std::mem::take(&mut self.current));
        keep_spare_image(std::mem::take(&mut self.synced));
        keep_spare_image(std::mem::take(&mut self.saved));
    }
}

thread_local! {
    /// File images of dropped disks on this OS thread, kept for the next disk's files: a
    /// simulator makes a disk per run, and an image grown a write at a time otherwise
    /// reallocates and faults in fresh memory in every run. Emptied before reuse, so only
    /// their capacity carries over (nothing a run observes).
    static SPARE_IMAGES: std::cell::RefCell<Vec<Vec<u8>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Spare images kept per OS thread (a run's disk has a handful of files, three images each,
/// and the simulator's disk tap two more per file).
const SPARE_IMAGES_MAX: usize = 32;

/// An empty image, with the capacity of a dropped one if there is one. Also the simulator's
/// pool for its own copies of file images (its disk tap), so one pool serves a run.
pub fn spare_image() -> Vec<u8> {
    SPARE_IMAGES
        .try_with(|spares| spares.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Gives an image back to this OS thread's pool (see [`spare_image`]); only its capacity
/// is kept.
pub fn keep_spare_image(mut image: Vec<u8>) {
    if image.capacity() == 0 {
        return;
    }
    image.clear();
    // At thread exit the spares may already be gone; the image is then just freed.
    let _ = SPARE_IMAGES.try_with(|spares| {
        let mut spares = spares.borrow_mut();
        if spares.len() < SPARE_IMAGES_MAX {
            spares.push(image);
        }
    });
}

// The harness's disk tap (`sim/src/world/harness.rs`, `tap_write`) writes its mirror the same
// way on purpose: it is an independent record of the disk, so it shares no code with it.
fn apply_write(image: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset + bytes.len();
    if end > image.len() {
        image.resize(end, 0);
    }
    image[offset..end].copy_from_slice(bytes);
}

impl MemFileData {
    /// Copies out the content of every pending write still read from `current` that
    /// `[start, end)` overlaps, before an operation changes those bytes.
    fn save_pending_overlapping(&mut self, start: usize, end: usize) {
        for op in self.pending.iter_mut() {
            if let PendingOp::Write {
                offset,
                len,
                saved: saved @ None,
            } = op
            {
                if *offset < end && start < *offset + *len {
                    *saved = Some(self.saved.len());
                    self.saved
                        .extend_from_slice(&self.current[*offset..*offset + *len]);
                }
            }
        }
    }

    /// The content of a pending write.
    fn pending_bytes(&self, offset: usize, len: usize, saved: Option<usize>) -> &[u8] {
        match saved {
            Some(at) => &self.saved[at..at + len],
            None => &self.current[offset..offset + len],
        }
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset + bytes.len();
        self.save_pending_overlapping(offset, end);
        apply_write(&mut self.current, offset, bytes);
        self.pending.push(PendingOp::Write {
            offset,
            len: bytes.len(),
            saved: None,
        });
    }

    fn set_len(&mut self, len: usize) {
        if len < self.current.len() {
            self.save_pending_overlapping(len, usize::MAX);
        }
        self.current.resize(len, 0);
        self.pending.push(PendingOp::SetLen { len });
    }

    fn sync(&mut self) {
        // O(bytes changed since the last sync), not O(file size): syncing the log at every
        // commit stays cheap. A byte below every length the file has had since the last sync
        // changed only if a write covered it; every byte from there on is copied.
        let tail = self
            .pending
            .iter()
            .filter_map(|op| match op {
                PendingOp::SetLen { len } => Some(*len),
                PendingOp::Write { .. } => None,
            })
            .fold(self.synced.len().min(self.current.len()), usize::min);
        self.synced.truncate(tail);
        self.synced.extend_from_slice(&self.current[tail..]);
        for op in self.pending.drain(..) {
            if let PendingOp::Write { offset, len, .. } = op {
                let end = (offset + len).min(tail);
                if offset < end {
                    self.synced[offset..end].copy_from_slice(&self.current[offset..end]);
                }
            }
        }
        self.saved.clear();
        debug_assert_eq!(self.synced, self.current);
    }
    /// A crash: the file becomes its synced image plus the unsynced operations `crash` keeps
    /// (all lost when `rng` is `None`), applied in issue order.
    fn crash(
        &mut self,
        path: &str,
        mut rng: Option<(&mut SplitMix64, CrashFaults)>,
        injected: &mut Vec<InjectedFault>,
    ) {
        if self.pending.is_empty() {
            // Nothing unsynced: the file is its synced image already, and nothing is drawn.
            return;
        }
        let synced = &self.synced;
        let mut image = spare_image();
        image.extend_from_slice(synced);
        let mut pending = std::mem::take(&mut self.pending);
        for &op in &pending {
            let Some((rng, faults)) = rng.as_mut() else {
                break;
            };
            let lost = rng.chance_ppm(faults.lost_write_ppm);
            match op {
                PendingOp::SetLen { len } if lost => injected.push(InjectedFault::LostWrite {
                    path: path.to_owned(),
                    offset: len as u64,
                    len: 0,
                }),
                PendingOp::SetLen { len } => image.resize(len, 0),
                PendingOp::Write { offset, len, .. } if lost => {
                    injected.push(InjectedFault::LostWrite {
                        path: path.to_owned(),
                        offset: offset as u64,
                        len: len as u64,
                    })
                }
                PendingOp::Write { offset, len, saved } => {
                    let bytes = self.pending_bytes(offset, len, saved);
                    let sectors_total = bytes.len().div_ceil(SECTOR_BYTES);
                    let mut keep = vec![true; sectors_total];
                    if sectors_total > 1 && rng.chance_ppm(faults.torn_write_ppm) {
                        // A non-empty proper subset of the sectors reaches the disk.
                        for kept in keep.iter_mut() {
                            *kept = rng.next_u64() & 1 == 1;
                        }
                        let first = rng.below(sectors_total as u64) as usize;
                        keep[first] = true;
                        if keep.iter().all(|&k| k) {
                            keep[(first + 1) % sectors_total] = false;
                        }
                        injected.push(InjectedFault::TornWrite {
                            path: path.to_owned(),
                            offset: offset as u64,
                            len: bytes.len() as u64,
                            sectors_kept: keep.iter().filter(|&&k| k).count() as u32,
                            sectors_total: sectors_total as u32,
                        });
                    }
                    for (sector, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
                        let start = sector * SECTOR_BYTES;
                        let end = (start + SECTOR_BYTES).min(bytes.len());
                        let mut content = bytes[start..end].to_vec();
                        // A rewrite of durable bytes with the same bytes changes nothing the
                        // disk promised; damaging it would damage synced data (see fault 7).
                        let rewrites_synced =
                            synced.get(offset + start..offset + end) == Some(content.as_slice());
                        if !rewrites_synced {
                            // Byte by byte too: a sector that both rewrites durable bytes
                            // with the same bytes and adds new ones (a log flush that
                            // overlaps one already synced, the last partly filled sector)
                            // keeps the durable ones, for the same reason.
                            let durable = synced.get(offset + start..).unwrap_or(&[]);
                            let unchanged: Vec<bool> = content
                                .iter()
                                .enumerate()
                                .map(|(i, byte)| durable.get(i) == Some(byte))
                                .collect();
                            damage_sector(
                                path,
                                offset + start,
                                &mut content,
                                &unchanged,
                                rng,
                                faults,
                                injected,
                            );
                        }
                        apply_write(&mut image, offset + start, &content);
                    }
                }
            }
        }
        pending.clear();
        self.pending = pending;
        self.saved.clear();
        self.synced.clear();
        self.synced.extend_from_slice(&image);
        keep_spare_image(std::mem::replace(&mut self.current, image));
    }
}

/// Faults 6 and 7 on one sector's worth of an unsynced write that reached the disk:
/// `content` (at file offset `offset`) becomes random bytes, or gets one bit flipped, each at
/// its seeded rate. No draw is made at a rate of 0, so a plan without these faults replays
/// as it did before they existed.
///
/// `unchanged[i]` says byte `i` rewrites a durable byte with the same value: damage never
/// reaches it (the draws are the same either way, so seeds keep their meaning; a flip that
/// lands on such a byte is not made and not recorded).
fn damage_sector(
    path: &str,
    offset: usize,
    content: &mut [u8],
    unchanged: &[bool],
    rng: &mut SplitMix64,
    faults: &CrashFaults,
    injected: &mut Vec<InjectedFault>,
) {
    debug_assert_eq!(content.len(), unchanged.len());
    if content.is_empty() {
        return;
    }
    if rng.chance_ppm(faults.garbage_sector_ppm) {
        for (chunk_index, chunk) in content.chunks_mut(8).enumerate() {
            let random = rng.next_u64().to_le_bytes();
            for (i, byte) in chunk.iter_mut().enumerate() {
                if !unchanged[chunk_index * 8 + i] {
                    *byte = random[i];
                }
            }
        }
        injected.push(InjectedFault::GarbageSector {
            path: path.to_owned(),
            offset: offset as u64,
            len: content.len() as u64,
        });
    } else if rng.chance_ppm(faults.bit_flip_ppm) {
        let byte = rng.below(content.len() as u64) as usize;
        let bit = rng.below(8) as u8;
        if !unchanged[byte] {
            content[byte] ^= 1 << bit;
            injected.push(InjectedFault::BitFlip {
                path: path.to_owned(),
                offset: (offset + byte) as u64,
                bit,
            });
        }
    }
}

/// One file's bytes; a directory entry names it.
type Inode = Arc<Mutex<MemFileData>>;

/// The directory tree, flattened: paths to files, as the running system sees them and as the
/// disk has them (fault 5).
#[derive(Debug, Default)]
struct Directories {
    entries: BTreeMap<String, Inode>,
    /// The entries as of each directory's last sync: what a crash keeps for sure.
    durable: BTreeMap<String, Inode>,
}

/// The directory a path's entry lives in (`""`: the root).
fn directory_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// How a directory is named in faults and power cuts: with a trailing `/` (`./` the root).
fn directory_label(dir: &str) -> String {
    if dir.is_empty() {
        "./".to_owned()
    } else {
        format!("{dir}/")
    }
}

fn same_inode(a: Option<&Inode>, b: Option<&Inode>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

impl Directories {
    /// Paths whose entry changed since their directory's last sync, sorted.
    fn unsynced(&self, dir: Option<&str>) -> Vec<String> {
        // One merged walk of the two sorted maps: a create or remove costs no copy of the
        // paths that did not change.
        let mut unsynced = Vec::new();
        let (mut entries, mut durable) = (self.entries.iter(), self.durable.iter());
        let (mut entry, mut durable_entry) = (entries.next(), durable.next());
        loop {
            let (path, now, then) = match (entry, durable_entry) {
                (None, None) => break,
                (Some((path, inode)), None) => {
                    entry = entries.next();
                    (path, Some(inode), None)
                }
                (None, Some((path, inode))) => {
                    durable_entry = durable.next();
                    (path, None, Some(inode))
                }
                (Some((path, inode)), Some((durable_path, durable_inode))) => {
                    match path.cmp(durable_path) {
                        std::cmp::Ordering::Less => {
                            entry = entries.next();
                            (path, Some(inode), None)
                        }
                        std::cmp::Ordering::Greater => {
                            durable_entry = durable.next();
                            (durable_path, None, Some(durable_inode))
                        }
                        std::cmp::Ordering::Equal => {
                            entry = entries.next();
                            durable_entry = durable.next();
                            (path, Some(inode), Some(durable_inode))
                        }
                    }
                }
            };
            if dir.is_none_or(|dir| directory_of(path) == dir) && !same_inode(now, then) {
                unsynced.push(path.clone());
            }
        }
        unsynced
    }

    /// A directory's sync: every entry change in it becomes durable.
    fn sync(&mut self, dir: &str) {
        for path in self.unsynced(Some(dir)) {
            match self.entries.get(&path) {
                Some(inode) => self.durable.insert(path, Arc::clone(inode)),
                None => self.durable.remove(&path),
            };
        }
    }

    /// A crash: each unsynced entry change is undone (always when `rng` is `None`) or kept.
    fn crash(
        &mut self,
        rng: &mut Option<(&mut SplitMix64, CrashFaults)>,
        injected: &mut Vec<InjectedFault>,
    ) {
        for path in self.unsynced(None) {
            let lost = match rng.as_mut() {
                Some((rng, faults)) => rng.chance_ppm(faults.lost_write_ppm),
                None => true,
            };
            if !lost {
                match self.entries.get(&path) {
                    Some(inode) => self.durable.insert(path, Arc::clone(inode)),
                    None => self.durable.remove(&path),
                };
                continue;
            }
            match self.durable.get(&path) {
                Some(inode) => {
                    let created = self.entries.insert(path.clone(), Arc::clone(inode));
                    injected.push(match created {
                        Some(_) => InjectedFault::LostCreate { path },
                        None => InjectedFault::LostRemove { path },
                    });
                }
                None => {
                    self.entries.remove(&path);
                    injected.push(InjectedFault::LostCreate { path });
                }
            }
        }
    }
}

/// In-memory files on a simulated disk with the fault model above. Deterministic: the file
/// table is a `BTreeMap`, no call blocks, and faults come from the plan's seed.
#[derive(Debug, Default, Clone)]
pub struct MemIo {
    // std Mutex, not a runtime one: every critical section is a memcpy with no scheduling point
    // inside, so it can never be held across a model checker's preemption. Lock order: the
    // file table, then a file, then the fault state.
    files: Arc<Mutex<Directories>>,
    faults: Arc<Mutex<FaultState>>,
}

impl MemIo {
    pub fn new() -> Self {
        Self::default()
    }

    /// A disk that injects `plan`'s faults from the start.
    pub fn with_faults(plan: FaultPlan) -> Self {
        let io = Self::new();
        io.set_fault_plan(plan);
        io.set_faults_enabled(true);
        io
    }

    /// Installs a plan and reseeds the fault RNG from it (enabling is separate).
    pub fn set_fault_plan(&self, plan: FaultPlan) {
        let mut faults = lock(&self.faults);
        faults.plan = plan;
        faults.rng = SplitMix64::new(plan.seed);
    }

    pub fn fault_plan(&self) -> FaultPlan {
        lock(&self.faults).plan
    }

    /// Switches seeded I/O errors on or off (a fault phase, then a clean phase).
    pub fn set_faults_enabled(&self, enabled: bool) {
        lock(&self.faults).enabled = enabled;
    }

    /// Every fault injected so far, oldest first.
    pub fn injected_faults(&self) -> Vec<InjectedFault> {
        lock(&self.faults).injected.clone()
    }

    /// Mutating operations (write, sync, set_len, directory sync) attempted so far, across
    /// all files.
    pub fn mutating_ops(&self) -> u64 {
        lock(&self.faults).ops
    }

    /// Cuts the power at the mutating operation with 0-based index `op_index` (counted by
    /// [`Self::mutating_ops`]): it and every later operation fail. `None` cancels.
    pub fn cut_power_after_ops(&self, op_index: Option<u64>) {
        let mut faults = lock(&self.faults);
        faults.cut_after_ops = op_index;
        if let Some(index) = op_index {
            if faults.ops > index && !faults.power_cut {
                faults.power_cut = true;
                let op_index = faults.ops;
                faults.injected.push(InjectedFault::PowerCut {
                    op_index,
                    operation: None,
                });
            }
        }
    }

    pub fn power_is_cut(&self) -> bool {
        lock(&self.faults).power_cut
    }

    /// Names of all files, sorted.
    pub fn file_names(&self) -> Vec<String> {
        lock(&self.files).entries.keys().cloned().collect()
    }

    /// A simulated crash: every entry change since its directory's last sync is undone and
    /// every file loses all writes since its last sync. Power returns.
    pub fn crash(&self) {
        self.crash_inner(None);
    }

    /// A simulated crash with partial loss: each unsynced entry change is undone, and each
    /// unsynced write lost or torn, as `crash` says, drawing from `rng` (entries first, then
    /// the files' bytes, each in path order). Power returns.
    pub fn crash_with(&self, rng: &mut SplitMix64, crash: CrashFaults) {
        self.crash_inner(Some((rng, crash)));
    }

    fn crash_inner(&self, mut rng: Option<(&mut SplitMix64, CrashFaults)>) {
        let mut injected = Vec::new();
        {
            let mut directories = lock(&self.files);
            directories.crash(&mut rng, &mut injected);
            for (path, file) in directories.entries.iter() {
                let rng = rng.as_mut().map(|(rng, crash)| (&mut **rng, *crash));
                lock(file).crash(path, rng, &mut injected);
            }
        }
        self.reboot(injected);
    }

    /// [`Self::crash_with`] drawing from the plan's own RNG and crash rates.
    pub fn crash_seeded(&self) {
        let (mut rng, crash) = {
            let mut faults = lock(&self.faults);
            let seed = faults.rng.next_u64();
            (SplitMix64::new(seed), faults.plan.crash)
        };
        self.crash_with(&mut rng, crash);
    }

    fn reboot(&self, injected: Vec<InjectedFault>) {
        let mut faults = lock(&self.faults);
        faults.injected.extend(injected);
        faults.power_cut = false;
        faults.cut_after_ops = None;
    }

    /// Total bytes stored across all files.
    pub fn total_bytes(&self) -> u64 {
        lock(&self.files)
            .entries
            .values()
            .map(|file| lock(file).current.len() as u64)
            .sum()
    }

    /// Overwrites bytes of a file as durable content, bypassing faults and the operation
    /// counter: for tests that plant damage (a torn page, a garbage log tail).
    pub fn corrupt(&self, path: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let files = lock(&self.files);
        let file = files
            .entries
            .get(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_owned()))?;
        let mut data = lock(file);
        let offset = usize::try_from(offset).map_err(|_| io::Error::other("offset"))?;
        // Pending writes keep the content they were issued with.
        data.save_pending_overlapping(offset, offset + bytes.len());
        apply_write(&mut data.current, offset, bytes);
        apply_write(&mut data.synced, offset, bytes);
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct MemFile {
    path: String,
    data: Arc<Mutex<MemFileData>>,
    faults: Arc<Mutex<FaultState>>,
}

impl MemFile {
    fn check(&self, op: Op, offset: u64, len: u64) -> io::Result<()> {
        lock(&self.faults).check(op, &self.path, offset, len)
    }
}

impl MemIo {
    /// The sync of `path`'s directory after its entry changed (fault 5): a counted operation
    /// that may fail; on success every entry change in the directory is durable.
    fn sync_directory_of(&self, directories: &mut Directories, path: &str) -> io::Result<()> {
        let dir = directory_of(path);
        lock(&self.faults).check(Op::SyncDirectory, &directory_label(dir), 0, 0)?;
        directories.sync(dir);
        Ok(())
    }
}

impl Io for MemIo {
    fn create(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        let mut directories = lock(&self.files);
        lock(&self.faults).check_power()?;
        let data = match directories.entries.get(path) {
            Some(existing) => {
                lock(existing).set_len(0);
                Arc::clone(existing)
            }
            None => {
                let data = Inode::default();
                directories
                    .entries
                    .insert(path.to_owned(), Arc::clone(&data));
                data
            }
        };
        self.sync_directory_of(&mut directories, path)?;
        Ok(Box::new(MemFile {
            path: path.to_owned(),
            data,
            faults: Arc::clone(&self.faults),
        }))
    }
    fn open(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        let files = lock(&self.files);
        let data = files
            .entries
            .get(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_owned()))?;
        Ok(Box::new(MemFile {
            path: path.to_owned(),
            data: Arc::clone(data),
            faults: Arc::clone(&self.faults),
        }))
    }
    fn remove(&self, path: &str) -> io::Result<()> {
        let mut directories = lock(&self.files);
        lock(&self.faults).check_power()?;
        directories
            .entries
            .remove(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_owned()))?;
        self.sync_directory_of(&mut directories, path)
    }
    fn exists(&self, path: &str) -> bool {
        lock(&self.files).entries.contains_key(path)
    }
}

/// The in-memory disk's size: no file grows past it. A real file system refuses a write past
/// its largest file (`EFBIG`) as an error; without a bound, a write at an offset read from
/// damaged data (a page number in a log record whose checksum a planted bug ignored) made
/// the process allocate hundreds of gigabytes and abort, taking a whole campaign down with
/// no seed to replay.
pub const MEM_FILE_BYTES_MAX: usize = 1 << 32;

fn range(offset: u64, len: usize) -> io::Result<(usize, usize)> {
    let start = usize::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "range overflows"))?;
    if end > MEM_FILE_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "past the in-memory disk's largest file",
        ));
    }
    Ok((start, end))
}

impl IoFile for MemFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let (start, end) = range(offset, buf.len())?;
        self.check(Op::Read, offset, buf.len() as u64)?;
        let data = lock(&self.data);
        if end > data.current.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end",
            ));
        }
        buf.copy_from_slice(&data.current[start..end]);
        Ok(())
    }
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let (start, _) = range(offset, bytes.len())?;
        self.check(Op::Write, offset, bytes.len() as u64)?;
        lock(&self.data).write(start, bytes);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.check(Op::Sync, 0, 0)?;
        lock(&self.data).sync();
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.data).current.len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let (_, end) = range(len, 0)?;
        self.check(Op::SetLen, len, 0)?;
        lock(&self.data).set_len(end);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::io::PPM;

    #[test]
    fn a_write_past_the_largest_file_is_an_error_not_an_allocation() {
        let io = MemIo::new();
        let file = io.create("f").unwrap();
        let past = MEM_FILE_BYTES_MAX as u64;
        let error = file.write_at(past, b"x").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            file.set_len(past + 1).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        assert_eq!(
            file.len().unwrap(),
            0,
            "the refused operations changed nothing"
        );
    }

    #[test]
    fn crash_keeps_exactly_the_synced_bytes() {
        let io = MemIo::new();
        let file = io.create("f").unwrap();
        file.write_at(0, b"hello world").unwrap();
        file.sync().unwrap();
        file.write_at(6, b"WORLD and more").unwrap();
        file.write_at(0, b"J").unwrap();
        file.set_len(3).unwrap();
        io.crash();
        let mut buf = vec![0; 11];
        file.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"hello world");
        assert_eq!(file.len().unwrap(), 11);
    }

    #[test]
    fn reads_past_the_end_fail() {
        let io = MemIo::new();
        let file = io.create("f").unwrap();
        file.write_at(0, b"ab").unwrap();
        let mut buf = [0; 3];
        assert_eq!(
            file.read_at(0, &mut buf).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(io.open("missing").is_err());
    }

    fn contents(io: &MemIo, path: &str) -> Vec<u8> {
        let file = io.open(path).unwrap();
        let mut buf = vec![0; file.len().unwrap() as usize];
        file.read_at(0, &mut buf).unwrap();
        buf
    }

    #[test]
    fn partial_crash_is_seeded_and_marks_its_faults() {
        // Goal: a partial crash keeps a seeded subset of unsynced writes, tears some at sector
        // granularity, records each as injected, and the same seed gives the same disk.
        let run = |seed: u64| {
            let io = MemIo::new();
            let file = io.create("f").unwrap();
            file.write_at(0, &[0u8; 8 * SECTOR_BYTES]).unwrap();
            file.sync().unwrap();
            for i in 0..8u8 {
                file.write_at(u64::from(i) * 1024, &[i + 1; 2 * SECTOR_BYTES])
                    .unwrap();
            }
            let crash = CrashFaults {
                lost_write_ppm: 300_000,
                torn_write_ppm: 500_000,
                ..CrashFaults::default()
            };
            io.crash_with(&mut SplitMix64::new(seed), crash);
            (contents(&io, "f"), io.injected_faults())
        };
        let (bytes, faults) = run(7);
        assert_eq!(run(7), (bytes.clone(), faults.clone()), "deterministic");
        assert_eq!(bytes.len(), 16 * SECTOR_BYTES, "extensions may survive");
        for sector in bytes.chunks(SECTOR_BYTES) {
            assert!(
                sector.iter().all(|&b| b == sector[0]),
                "sectors never tear inside"
            );
        }
        let lost = faults
            .iter()
            .filter(|f| matches!(f, InjectedFault::LostWrite { .. }))
            .count();
        let torn = faults
            .iter()
            .filter(|f| matches!(f, InjectedFault::TornWrite { .. }))
            .count();
        let mut any_torn = torn > 0;
        let mut any_lost = lost > 0;
        for seed in 0..64 {
            let (_, faults) = run(seed);
            any_torn |= faults
                .iter()
                .any(|f| matches!(f, InjectedFault::TornWrite { .. }));
            any_lost |= faults
                .iter()
                .any(|f| matches!(f, InjectedFault::LostWrite { .. }));
        }
        assert!(any_torn && any_lost, "both fault kinds are reachable");
        assert!(faults[0].to_string().starts_with("[injected]"));
    }

    #[test]
    fn an_overwritten_or_truncated_unsynced_write_keeps_its_own_content_at_a_crash() {
        // Goal: each unsynced write survives a crash with the bytes it was issued with, even
        // when a later write or truncation changed them before the crash: every outcome is
        // the synced image plus a subset of the operations in issue order, and the outcomes
        // where a later operation was lost and the earlier write kept are reached.
        type Step = (u64, &'static [u8]);
        let steps: [Option<Step>; 4] = [
            Some((0, &[1; 8])),
            Some((2, &[2; 4])),
            None, // set_len(3)
            Some((6, &[3; 2])),
        ];
        let run = |seed: u64| {
            let io = MemIo::new();
            let file = io.create("f").unwrap();
            file.write_at(0, b"synced!").unwrap();
            file.sync().unwrap();
            for step in steps {
                match step {
                    Some((offset, bytes)) => file.write_at(offset, bytes).unwrap(),
                    None => file.set_len(3).unwrap(),
                }
            }
            let crash = CrashFaults {
                lost_write_ppm: 500_000,
                ..CrashFaults::default()
            };
            io.crash_with(&mut SplitMix64::new(seed), crash);
            contents(&io, "f")
        };
        let outcome = |kept: u32| {
            let mut image = b"synced!".to_vec();
            for (i, step) in steps.iter().enumerate() {
                if kept & (1 << i) == 0 {
                    continue;
                }
                match step {
                    Some((offset, bytes)) => apply_write(&mut image, *offset as usize, bytes),
                    None => image.resize(3, 0),
                }
            }
            image
        };
        let mut reached = [false; 16];
        for seed in 0..256 {
            let bytes = run(seed);
            let kept = (0..16u32).find(|&kept| outcome(kept) == bytes);
            let kept = kept.unwrap_or_else(|| panic!("seed {seed}: {bytes:?} is no outcome"));
            reached[kept as usize] = true;
        }
        assert!(reached[0b0001], "the first write kept, the overwrite lost");
        assert!(reached[0b1001], "kept across a lost truncation");
        assert!(reached[0b1111]);
    }

    #[test]
    fn garbage_and_flipped_sectors_damage_only_unsynced_writes() {
        // Goal: faults 6 and 7: at a crash, sectors of unsynced writes that reached the disk
        // come back as random bytes or with one bit flipped, seeded and recorded; synced
        // bytes are never touched; a plan without these rates draws as before.
        let run = |seed: u64, crash: CrashFaults| {
            let io = MemIo::new();
            let file = io.create("f").unwrap();
            file.write_at(0, &[0xAA; 4 * SECTOR_BYTES]).unwrap();
            file.sync().unwrap();
            file.write_at(4 * SECTOR_BYTES as u64, &[0x55; 8 * SECTOR_BYTES])
                .unwrap();
            io.crash_with(&mut SplitMix64::new(seed), crash);
            (contents(&io, "f"), io.injected_faults())
        };
        let crash = CrashFaults {
            garbage_sector_ppm: 200_000,
            bit_flip_ppm: 300_000,
            ..CrashFaults::default()
        };
        assert_eq!(run(5, crash), run(5, crash), "deterministic");
        let (mut garbage, mut flips) = (0, 0);
        for seed in 0..32 {
            let (bytes, faults) = run(seed, crash);
            assert!(
                bytes[..4 * SECTOR_BYTES].iter().all(|&b| b == 0xAA),
                "synced"
            );
            for fault in &faults {
                match fault {
                    InjectedFault::GarbageSector { offset, len, .. } => {
                        garbage += 1;
                        assert!(*offset >= 4 * SECTOR_BYTES as u64 && *len > 0);
                    }
                    InjectedFault::BitFlip { offset, bit, .. } => {
                        flips += 1;
                        let byte = bytes[*offset as usize];
                        assert_eq!(byte, 0x55 ^ (1 << bit), "seed {seed}: one bit flipped");
                    }
                    other => panic!("unexpected {other}"),
                }
            }
            let damaged = faults.len();
            let changed = bytes[4 * SECTOR_BYTES..]
                .chunks(SECTOR_BYTES)
                .filter(|sector| sector.iter().any(|&b| b != 0x55))
                .count();
            assert!(
                changed <= damaged,
                "seed {seed}: only recorded sectors differ"
            );
        }
        assert!(garbage > 0 && flips > 0, "both fault kinds are reachable");
        let plain = CrashFaults {
            lost_write_ppm: 300_000,
            torn_write_ppm: 500_000,
            ..CrashFaults::default()
        };
        let (bytes, faults) = run(9, plain);
        assert!(faults.iter().all(|f| !matches!(
            f,
            InjectedFault::GarbageSector { .. } | InjectedFault::BitFlip { .. }
        )));
        assert!(bytes[4 * SECTOR_BYTES..]
            .iter()
            .all(|&b| b == 0x55 || b == 0));
    }

    #[test]
    fn damage_in_a_sector_that_rewrites_synced_bytes_spares_them() {
        // Goal: a log flush that rewrites a synced, partly filled sector with the same bytes
        // and appends new ones (the group-commit race) may lose or damage only the new
        // bytes; the synced half of the sector survives every garbage and flip draw.
        let half = SECTOR_BYTES / 2;
        let crash = CrashFaults {
            garbage_sector_ppm: 400_000,
            bit_flip_ppm: 1_000_000,
            ..CrashFaults::default()
        };
        let mut damaged_new_bytes = 0;
        for seed in 0..64 {
            let io = MemIo::new();
            let file = io.create("f").unwrap();
            file.write_at(0, &[0xAA; SECTOR_BYTES / 2]).unwrap();
            file.sync().unwrap();
            let mut rewrite = vec![0xAA; half];
            rewrite.extend_from_slice(&[0x55; SECTOR_BYTES / 2]);
            file.write_at(0, &rewrite).unwrap();
            io.crash_with(&mut SplitMix64::new(seed), crash);
            let bytes = contents(&io, "f");
            assert!(
                bytes[..half].iter().all(|&b| b == 0xAA),
                "seed {seed}: the synced half is intact"
            );
            damaged_new_bytes += usize::from(bytes[half..].iter().any(|&b| b != 0x55));
        }
        assert!(damaged_new_bytes > 0, "the new half is still damaged");
    }

    #[test]
    fn seeded_errors_and_power_cut() {
        // Goal: errors come at the plan's rate and only while enabled; a power cut fails the
        // n-th mutating operation and all after it until a crash reboots.
        let io = MemIo::with_faults(FaultPlan {
            seed: 3,
            write_error_ppm: 500_000,
            ..FaultPlan::default()
        });
        let file = io.create("f").unwrap();
        let failures = (0..100).filter(|_| file.write_at(0, b"x").is_err()).count();
        assert!((20..80).contains(&failures), "{failures} of 100");
        assert_eq!(io.injected_faults().len(), failures);
        io.set_faults_enabled(false);
        assert!((0..100).all(|_| file.write_at(0, b"x").is_ok()));
        assert_eq!(
            io.mutating_ops(),
            201,
            "200 writes and the create's directory sync"
        );

        io.cut_power_after_ops(Some(203));
        file.write_at(0, b"a").unwrap();
        file.sync().unwrap();
        assert!(file.write_at(1, b"b").is_err());
        assert!(io.power_is_cut());
        assert!(file.sync().is_err());
        let mut buf = [0u8; 1];
        assert!(file.read_at(0, &mut buf).is_err(), "reads fail too");
        io.crash();
        assert!(!io.power_is_cut());
        assert_eq!(contents(&io, "f"), b"a");
        assert!(io.injected_faults().contains(&InjectedFault::PowerCut {
            op_index: 203,
            operation: Some("write f".to_owned())
        }));
    }

    #[test]
    fn an_entry_change_is_durable_only_once_its_directory_is_synced() {
        // Goal: fault 5. A create or remove whose directory sync met the power cut returned
        // an error and is undone by a crash (the file gone, the removed file back with its
        // synced bytes); one that returned survives any crash; the cut names the directory.
        let io = MemIo::new();
        let kept = io.create("d/kept").unwrap();
        kept.write_at(0, b"synced").unwrap();
        kept.sync().unwrap();
        io.cut_power_after_ops(Some(io.mutating_ops()));
        assert!(
            io.create("d/new").is_err(),
            "the directory sync met the cut"
        );
        assert!(io.exists("d/new"), "the entry changed; it is not durable");
        assert!(
            io.remove("d/kept").is_err(),
            "refused while the power is cut"
        );
        io.crash();
        assert!(!io.exists("d/new"));
        assert!(io.injected_faults().contains(&InjectedFault::PowerCut {
            op_index: 3,
            operation: Some("sync directory d/".to_owned())
        }));
        assert!(io.injected_faults().contains(&InjectedFault::LostCreate {
            path: "d/new".to_owned()
        }));

        io.cut_power_after_ops(Some(io.mutating_ops() + 1));
        io.create("e/f").unwrap();
        assert!(
            io.remove("d/kept").is_err(),
            "its directory sync met the cut"
        );
        assert!(!io.exists("d/kept"));
        io.crash();
        assert_eq!(
            contents(&io, "d/kept"),
            b"synced",
            "the removed file is back"
        );
        assert!(io.exists("e/f"), "a create that returned is durable");
        assert!(io.injected_faults().contains(&InjectedFault::LostRemove {
            path: "d/kept".to_owned()
        }));
        io.remove("d/kept").unwrap();
        io.crash();
        assert!(!io.exists("d/kept"), "a remove that returned is durable");
    }

    #[test]
    fn a_failed_directory_sync_is_an_error_and_a_later_sync_covers_it() {
        // Goal: a directory sync fails at the plan's sync error rate, as an error the caller
        // sees, recorded against the directory; the next successful sync of the same
        // directory makes the earlier entry durable too (a directory's fsync covers all of
        // its entries), while another directory's does not.
        let io = MemIo::with_faults(FaultPlan {
            seed: 1,
            sync_error_ppm: PPM,
            ..FaultPlan::default()
        });
        assert!(io.create("d/a").is_err());
        assert!(io.create("e/a").is_err());
        assert!(io.injected_faults().contains(&InjectedFault::SyncError {
            path: "d/".to_owned()
        }));
        io.set_faults_enabled(false);
        io.create("d/b").unwrap();
        io.crash();
        assert!(
            io.exists("d/a") && io.exists("d/b"),
            "d/'s sync covered d/a"
        );
        assert!(!io.exists("e/a"), "e/ was never synced");
        assert_eq!(io.file_names(), vec!["d/a".to_owned(), "d/b".to_owned()]);
    }

    #[test]
    fn unsynced_entries_are_lost_or_kept_by_seed() {
        // Goal: a seeded crash undoes each unsynced entry change with probability
        // lost_write_ppm, the same way for the same seed, and both outcomes are reachable.
        let run = |seed: u64| {
            let io = MemIo::new();
            io.cut_power_after_ops(Some(0));
            for name in ["a", "b", "c", "d"] {
                assert!(io.create(name).is_err());
            }
            let crash = CrashFaults {
                lost_write_ppm: 500_000,
                torn_write_ppm: 0,
                ..CrashFaults::default()
            };
            io.crash_with(&mut SplitMix64::new(seed), crash);
            io.file_names()
        };
        assert_eq!(run(3), run(3), "deterministic");
        let outcomes: Vec<usize> = (0..32).map(|seed| run(seed).len()).collect();
        assert!(outcomes.iter().any(|&n| n < 4) && outcomes.iter().any(|&n| n > 0));
    }

    #[test]
    fn create_of_an_existing_file_truncates_it_unsynced() {
        let io = MemIo::new();
        let file = io.create("f").unwrap();
        file.write_at(0, b"old").unwrap();
        file.sync().unwrap();
        let again = io.create("f").unwrap();
        assert_eq!(again.len().unwrap(), 0);
        io.crash();
        assert_eq!(
            contents(&io, "f"),
            b"old",
            "the truncation was never synced"
        );
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // Reference values of SplitMix64 seeded with 0 (from the published algorithm).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
