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
//!    that operation and every later read, write and sync fail, as if the machine died
//!    there. A crash (any of the `crash` calls) restores power, as a reboot does.
//!
//! Faults 3 and 4 are switchable at run time ([`MemIo::set_faults_enabled`]), so a simulator
//! can run a fault phase and then a clean phase; the operation counter
//! ([`MemIo::mutating_ops`]) always counts, for crash-point sweeps.
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
//! - I/O errors (3, 4): the failing call returns `DiskIO` (or `LogWriteFail` for the log)
//!   and the instance becomes fail-stop (`InstanceUnavailable`) until it is terminated and
//!   initialized again, which recovers. The engine never retries a failed sync (its outcome
//!   is unknown) and never serves a page it could not read and verify. A commit whose call
//!   failed has an unknown outcome: recovery may find it committed or not, never half.

use super::faults::{FaultState, Op};
use super::{CrashFaults, FaultPlan, InjectedFault, Io, IoFile, SplitMix64, SECTOR_BYTES};
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, Clone)]
enum PendingOp {
    Write { offset: usize, bytes: Vec<u8> },
    SetLen { len: usize },
}

#[derive(Debug, Default)]
struct MemFileData {
    current: Vec<u8>,
    /// The bytes as of the last sync: what survives any crash.
    synced: Vec<u8>,
    /// Every write and truncation since the last sync, oldest first.
    pending: Vec<PendingOp>,
}

fn apply_write(image: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset + bytes.len();
    if end > image.len() {
        image.resize(end, 0);
    }
    image[offset..end].copy_from_slice(bytes);
}

impl MemFileData {
    fn sync(&mut self) {
        // O(bytes written since the last sync), not O(file size): syncing the log at every
        // commit stays cheap.
        for op in self.pending.drain(..) {
            match op {
                PendingOp::Write { offset, bytes } => apply_write(&mut self.synced, offset, &bytes),
                PendingOp::SetLen { len } => self.synced.resize(len, 0),
            }
        }
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
        let mut image = self.synced.clone();
        for op in self.pending.drain(..) {
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
                PendingOp::Write { offset, bytes } if lost => {
                    injected.push(InjectedFault::LostWrite {
                        path: path.to_owned(),
                        offset: offset as u64,
                        len: bytes.len() as u64,
                    })
                }
                PendingOp::Write { offset, bytes } => {
                    let sectors_total = bytes.len().div_ceil(SECTOR_BYTES);
                    if sectors_total > 1 && rng.chance_ppm(faults.torn_write_ppm) {
                        // A non-empty proper subset of the sectors reaches the disk.
                        let mut keep: Vec<bool> = (0..sectors_total)
                            .map(|_| rng.next_u64() & 1 == 1)
                            .collect();
                        let first = rng.below(sectors_total as u64) as usize;
                        keep[first] = true;
                        if keep.iter().all(|&k| k) {
                            keep[(first + 1) % sectors_total] = false;
                        }
                        for (sector, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
                            let start = sector * SECTOR_BYTES;
                            let end = (start + SECTOR_BYTES).min(bytes.len());
                            apply_write(&mut image, offset + start, &bytes[start..end]);
                        }
                        injected.push(InjectedFault::TornWrite {
                            path: path.to_owned(),
                            offset: offset as u64,
                            len: bytes.len() as u64,
                            sectors_kept: keep.iter().filter(|&&k| k).count() as u32,
                            sectors_total: sectors_total as u32,
                        });
                    } else {
                        apply_write(&mut image, offset, &bytes);
                    }
                }
            }
        }
        self.pending.clear();
        self.current = image.clone();
        self.synced = image;
    }
}

/// In-memory files on a simulated disk with the fault model above. Deterministic: the file
/// table is a `BTreeMap`, no call blocks, and faults come from the plan's seed.
#[derive(Debug, Default, Clone)]
pub struct MemIo {
    // std Mutex, not a runtime one: every critical section is a memcpy with no scheduling point
    // inside, so it can never be held across a model checker's preemption. Lock order: the
    // file table, then a file, then the fault state.
    files: Arc<Mutex<BTreeMap<String, Arc<Mutex<MemFileData>>>>>,
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

    /// Mutating operations (write, sync, set_len) attempted so far, across all files.
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
        lock(&self.files).keys().cloned().collect()
    }

    /// A simulated crash: every file loses all writes since its last sync. Power returns.
    pub fn crash(&self) {
        let mut injected = Vec::new();
        for (path, file) in lock(&self.files).iter() {
            lock(file).crash(path, None, &mut injected);
        }
        self.reboot(injected);
    }

    /// A simulated crash with partial loss: each unsynced write is lost or torn as `crash`
    /// says, drawing from `rng`. Power returns.
    pub fn crash_with(&self, rng: &mut SplitMix64, crash: CrashFaults) {
        let mut injected = Vec::new();
        for (path, file) in lock(&self.files).iter() {
            lock(file).crash(path, Some((&mut *rng, crash)), &mut injected);
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
            .values()
            .map(|file| lock(file).current.len() as u64)
            .sum()
    }

    /// Overwrites bytes of a file as durable content, bypassing faults and the operation
    /// counter: for tests that plant damage (a torn page, a garbage log tail).
    pub fn corrupt(&self, path: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let files = lock(&self.files);
        let file = files
            .get(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_owned()))?;
        let mut data = lock(file);
        let offset = usize::try_from(offset).map_err(|_| io::Error::other("offset"))?;
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

impl Io for MemIo {
    fn create(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        let data = Arc::new(Mutex::new(MemFileData::default()));
        lock(&self.files).insert(path.to_owned(), Arc::clone(&data));
        Ok(Box::new(MemFile {
            path: path.to_owned(),
            data,
            faults: Arc::clone(&self.faults),
        }))
    }
    fn open(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        let files = lock(&self.files);
        let data = files
            .get(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_owned()))?;
        Ok(Box::new(MemFile {
            path: path.to_owned(),
            data: Arc::clone(data),
            faults: Arc::clone(&self.faults),
        }))
    }
    fn remove(&self, path: &str) -> io::Result<()> {
        lock(&self.files)
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_owned()))
    }
    fn exists(&self, path: &str) -> bool {
        lock(&self.files).contains_key(path)
    }
}

fn range(offset: u64, len: usize) -> io::Result<(usize, usize)> {
    let start = usize::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "range overflows"))?;
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
        let mut data = lock(&self.data);
        apply_write(&mut data.current, start, bytes);
        data.pending.push(PendingOp::Write {
            offset: start,
            bytes: bytes.to_vec(),
        });
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
        let mut data = lock(&self.data);
        data.current.resize(end, 0);
        data.pending.push(PendingOp::SetLen { len: end });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(io.mutating_ops(), 200);

        io.cut_power_after_ops(Some(202));
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
            op_index: 202,
            operation: Some("write f".to_owned())
        }));
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // Reference values of SplitMix64 seeded with 0 (from the published algorithm).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
