//! Runs one workload on the engine under shuttle and records its history.
//!
//! Setup (main simulated thread): the instance under test with the run's parameters, a
//! database with tables `t0` and `t1` and the initial records; a second instance whose
//! handles serve as foreign ones; an instance never initialized; one already terminated.
//! Then one simulated thread per program, each followed by a wind-down (reset its contexts,
//! roll back its transactions) so the instance can be terminated; then, after all joined, the
//! end state is read and the final term is made. Every call, the wind-down's and the term's
//! included, is recorded with global invocation and response sequence numbers.

use crate::history::{
    AfterStop, CheckpointAudited, CommitAck, CrashPoint, DetachAck, DiskAtStop, EndState, Event,
    History, PageChangesAfter, RecoveryWork, SessionEnd, SharingProbe, StopObservation, TermDisk,
    WriteAheadAudited,
};
use crate::model::Outcome;
use crate::workload::config::{RunConfig, Schedule, WindDown};
use crate::workload::{self, Call, DatabaseFile, InstanceRef, Ref, Workload};
use crate::world::checkpoint_audit::CheckpointAudit;
use crate::world::memory_meter::VersionMeter;
use crate::world::power_cut::{CutFile, CutPlan, PowerCutter};
use crate::ShuttleRuntime;
use jetsim_engine::env::io::{keep_spare_image, spare_image, SplitMix64};
use jetsim_engine::env::{Io, IoFile, ManualClock, MemIo, VersionMemory};
use jetsim_engine::runtime::panic_message;
use jetsim_engine::{
    DatabaseHandle, Environment, InstanceHandle, InstanceOptions, Jet, JetResult, Mutations,
    SeekMode, SessionHandle, SystemParameter, TableHandle, TermOutcome,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The database every run uses.
pub const DATABASE_PATH: &str = "db/main.edb";
/// Where [`DatabaseFile::Missing`] attaches look: no file is ever there.
pub const MISSING_DATABASE_PATH: &str = "db/missing.edb";

/// What the history records of a `JetAttachDatabase`'s answer.
fn attach_outcome(result: jetsim_engine::JetResult<jetsim_engine::AttachOutcome>) -> Outcome {
    outcome(result, |a| Outcome::Attached {
        already: a == jetsim_engine::AttachOutcome::AlreadyAttached,
    })
}

/// The path a `JetAttachDatabase` of `file` names.
fn database_path(file: DatabaseFile) -> &'static str {
    match file {
        DatabaseFile::Run => DATABASE_PATH,
        DatabaseFile::Missing => MISSING_DATABASE_PATH,
    }
}
/// The main instance's log and checkpoint files (the engine names them after the instance).
const MAIN_LOG_PATH: &str = "main/jet.log";
const MAIN_CHECKPOINT_PATH: &str = "main/jet.chk";

/// The tap's copy of one file: its bytes as written so far, and as of its last successful
/// sync (what any crash keeps). Between syncs the tap notes only which byte ranges changed and
/// how short the file became, so a write costs one copy and no allocation, and a sync copies
/// only what changed. The synced image is shared (copy on write) with the disk oracle's crash
/// copy, which is dropped before the run goes on.
#[derive(Debug)]
struct TapFileData {
    current: Vec<u8>,
    synced: Arc<Vec<u8>>,
    /// Byte ranges of `current` written since the last sync, oldest first.
    written_since_sync: Vec<std::ops::Range<usize>>,
    /// The shortest length the file had since the last sync, if it was truncated or
    /// extended (bytes past it in `synced` are stale).
    resized_to_min: Option<usize>,
}

impl TapFileData {
    fn new() -> TapFileData {
        TapFileData {
            current: spare_image(),
            synced: Arc::new(spare_image()),
            written_since_sync: Vec::new(),
            resized_to_min: None,
        }
    }

    fn unsynced(&self) -> bool {
        !self.written_since_sync.is_empty() || self.resized_to_min.is_some()
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        tap_write(&mut self.current, offset, bytes);
        self.written_since_sync.push(offset..offset + bytes.len());
    }

    fn set_len(&mut self, len: usize) {
        self.current.resize(len, 0);
        self.resized_to_min = Some(self.resized_to_min.map_or(len, |min| min.min(len)));
    }

    /// The synced image becomes the written one.
    fn sync(&mut self) {
        if !self.unsynced() {
            return;
        }
        let synced = owned_image(&mut self.synced);
        if let Some(min) = self.resized_to_min.take() {
            synced.truncate(min);
        }
        let len = self.current.len();
        synced.resize(len, 0);
        for range in self.written_since_sync.drain(..) {
            let range = range.start.min(len)..range.end.min(len);
            synced[range.clone()].copy_from_slice(&self.current[range]);
        }
        debug_assert_eq!(*synced, self.current);
    }
}

impl Drop for TapFileData {
    fn drop(&mut self) {
        keep_spare_image(std::mem::take(&mut self.current));
        if let Ok(synced) = Arc::try_unwrap(std::mem::take(&mut self.synced)) {
            keep_spare_image(synced);
        }
    }
}

/// `image` to write to: copied (into a spare) first if anyone else shares it.
fn owned_image(image: &mut Arc<Vec<u8>>) -> &mut Vec<u8> {
    if Arc::get_mut(image).is_none() {
        let mut copy = spare_image();
        copy.extend_from_slice(image);
        *image = Arc::new(copy);
    }
    Arc::get_mut(image).expect("just made unique")
}

// The same steps as `MemIo`'s own write (`engine/src/env/io/mem.rs`, `apply_write`), kept
// apart on purpose: the tap is the oracle's independent view of the disk, so a bug in the
// disk's write must not be copied into it.
fn tap_write(image: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset + bytes.len();
    if end > image.len() {
        image.resize(end, 0);
    }
    image[offset..end].copy_from_slice(bytes);
}

/// The harness's own view of the simulated disk: every file operation the engine makes goes
/// through here to the [`MemIo`] below, and the tap mirrors each one that succeeded, so at any
/// instant it knows what the disk durably holds and what is still unsynced, without asking
/// the engine. It also notes the step at which the disk first failed an operation. Each
/// operation is the disk's and the tap's critical sections back to back, with no scheduling
/// point, so under shuttle the mirror never lags the disk.
struct DiskTap {
    disk: Arc<MemIo>,
    files: TapFiles,
    /// The run's step counter (shared with the recorder), read, never advanced.
    steps: Arc<AtomicU64>,
    first_failure_at: Arc<Mutex<Option<u64>>>,
    stoppers: Arc<Mutex<Stoppers>>,
    cutter: Arc<PowerCutter>,
    slow_disk: Arc<SlowDisk>,
    audit: Arc<Mutex<CheckpointAudit>>,
    commit_records: Mutex<DurableCommitRecords>,
    write_ahead: Arc<Mutex<WriteAheadAudited>>,
    /// The detached-unwritten watch's window, opened by the recorder at a detach's response
    /// and closed at the next attach's invocation; read at every database file write.
    detached: Arc<Mutex<DetachedWindow>>,
    /// Set while the harness's probe drives the other instance ([`probe_database_sharing`]):
    /// files opened then are that instance's, mirrored (the disk read back later must be the
    /// real one) but neither audited against the main log, counted towards a power cut, nor
    /// slowed. Nothing of the instance under test opens a file meanwhile: every thread has
    /// joined, and its background work opens none.
    other_instance_opens: AtomicBool,
}

/// The write-ahead audit, on the database file's writes: every page the file takes must carry
/// a page LSN below the end of the main log's synced bytes at that instant. A page's LSN is
/// where the `PageImages` record that logged its image begins, so the record is durable only
/// if the durable log reaches past it; a page written before that is a change a crash can
/// leave on disk with no log record to undo or explain it (the WAL rule). Decided from the
/// bytes the tap mirrors, at every write, crash or not; pages with LSN 0 (never logged:
/// a file's extension) are not counted.
struct WriteAheadWatch {
    files: TapFiles,
    audit: Arc<Mutex<WriteAheadAudited>>,
    steps: Arc<AtomicU64>,
    detached: Arc<Mutex<DetachedWindow>>,
}

/// The detached-unwritten watch: from the response of a successful `JetDetachDatabase` of
/// the database until the next `JetAttachDatabase` is invoked, the file is no instance's,
/// and the engine must not change it (ESE flushes and closes the file before the detach
/// returns: a backup or another process may take it then). A background write-back still
/// out at the detach, a flusher or defrag pass still holding the file, or a term that
/// writes every file it ever had, lands a write here. Decided at every write the tap sees of
/// the instance under test's file handles; the windows are rebuilt from the history by the
/// check (`check::detached_unwritten`).
#[derive(Default)]
struct DetachedWindow {
    /// The response step of the detach that opened the window; `None`: closed.
    since: Option<u64>,
    /// Attaches invoked and not yet returned.
    attaches_in_flight: u32,
    /// Attach invocations and returns so far: a detach that an attach overlapped (in flight
    /// at its invocation, or invoked or returned before its response) opens no window, since
    /// the attach may have taken effect after the detach.
    attach_events: u64,
}

impl WriteAheadWatch {
    /// The detached-unwritten watch at one change of the file (`what`: the operation, in
    /// words, made only for a breach): a change inside an open window is a breach.
    fn file_changed(&self, what: impl FnOnce() -> String) {
        let Some(since) = lock(&self.detached).since else {
            return;
        };
        let what = what();
        let step = self.steps.load(Ordering::SeqCst);
        let mut audit = lock(&self.audit);
        audit.detached_writes += 1;
        if audit.first_detached_write.is_none() {
            audit.first_detached_write = Some(format!(
                "{what} of {DATABASE_PATH} at step {step}, after the detach that answered success at step {since} and before any attach: a detached database is no instance's, and the engine must not change its file (a write-back still out at the detach, or a background pass or term still holding the file)"
            ));
        }
    }

    /// Audits `bytes`, written at `offset`, against the durable log and against what the file
    /// held before (`previous_lsns`: the written pages' LSNs in the file as written so far).
    /// The page LSNs `file` holds at the pages a write of `len` bytes at `offset` covers (`None`
    /// past the file's end), in order.
    fn page_lsns(file: &[u8], offset: usize, len: usize) -> Vec<Option<u64>> {
        use jetsim_engine::storage::page::page_lsn_of;
        use jetsim_engine::storage::PAGE_SIZE_BYTES;
        (offset..offset + len)
            .step_by(PAGE_SIZE_BYTES)
            .map(|start| file.get(start..start + PAGE_SIZE_BYTES).map(page_lsn_of))
            .collect()
    }

    fn page_written(&self, offset: usize, bytes: &[u8], previous_lsns: &[Option<u64>]) {
        use jetsim_engine::storage::page::page_lsn_of;
        use jetsim_engine::storage::PAGE_SIZE_BYTES;
        if !offset.is_multiple_of(PAGE_SIZE_BYTES) || !bytes.len().is_multiple_of(PAGE_SIZE_BYTES) {
            lock(&self.audit).unaligned_writes += 1;
            return;
        }
        let durable_log_end = lock(&self.files)
            .get(MAIN_LOG_PATH)
            .map_or(0, |log| lock(log).synced.len() as u64);
        let when = match self.steps.load(Ordering::SeqCst) {
            0 => "during the setup".to_owned(),
            step => format!("at step {step}"),
        };
        let mut audit = lock(&self.audit);
        for (index, page) in bytes.chunks_exact(PAGE_SIZE_BYTES).enumerate() {
            let page_lsn = page_lsn_of(page);
            if page_lsn == 0 {
                continue;
            }
            let page_number = offset / PAGE_SIZE_BYTES + index;
            audit.pages += 1;
            if page_lsn >= durable_log_end {
                audit.breaches += 1;
                if audit.first_breach.is_none() {
                    audit.first_breach = Some(format!(
                        "page {page_number} of {DATABASE_PATH} was written {when} with page LSN {page_lsn} while the durable log ended at {durable_log_end}: the record that logged the page was not durable (the write-ahead rule)"
                    ));
                }
            }
            let previous = previous_lsns.get(index).copied().flatten().unwrap_or(0);
            if page_lsn < previous {
                audit.stale_writes += 1;
                if audit.first_stale_write.is_none() {
                    audit.first_stale_write = Some(format!(
                        "page {page_number} of {DATABASE_PATH} was written {when} with page LSN {page_lsn} over its image with page LSN {previous}: an older image landed over a newer one, and the change between them is lost on disk"
                    ));
                }
            }
        }
    }
}

/// The append-only audit, on the main log's writes: a write may put bytes past the log's
/// durable end, or the very bytes it holds there again (a group-commit flush and a flush
/// under the latch write one range alike), never different bytes over durable ones. Decided
/// from the bytes the tap mirrors, at every write, crash or not.
struct LogAppendWatch {
    audit: Arc<Mutex<WriteAheadAudited>>,
    steps: Arc<AtomicU64>,
}

impl LogAppendWatch {
    /// Where `bytes`, written at `offset`, first differ from the durable image `synced`
    /// (`None`: they do not, or land past its end).
    fn first_rewritten_byte(synced: &[u8], offset: usize, bytes: &[u8]) -> Option<usize> {
        let durable = synced.get(offset..)?;
        durable
            .iter()
            .zip(bytes)
            .position(|(old, new)| old != new)
            .map(|at| offset + at)
    }

    fn log_written(&self, durable_len: usize, rewritten_at: Option<usize>) {
        let mut audit = lock(&self.audit);
        audit.log_writes += 1;
        let Some(at) = rewritten_at else {
            return;
        };
        audit.log_rewrites += 1;
        if audit.first_log_rewrite.is_none() {
            let when = match self.steps.load(Ordering::SeqCst) {
                0 => "during the setup".to_owned(),
                step => format!("at step {step}"),
            };
            audit.first_log_rewrite = Some(format!(
                "{MAIN_LOG_PATH} took a write {when} that changed its byte at offset {at}, below the {durable_len} bytes it held durably: records the log had made durable (and any commit they acknowledged) are lost, and what follows them lands at LSNs it was not given"
            ));
        }
    }
}

/// The Commit records of the main instance's durable log, counted a piece at a time as the
/// log's synced bytes grow (decoded with the engine's on-disk format, never asked of it).
#[derive(Default)]
struct DurableCommitRecords {
    /// The signature of the log decoded so far.
    signature: Option<u64>,
    /// Where the decoded prefix ends (a record boundary), 0 before the first look.
    decoded_to: u64,
    /// Commit records in the decoded prefix.
    count: u64,
    /// Detach records in the decoded prefix.
    detaches: u64,
}

impl DurableCommitRecords {
    /// The Commit and Detach records in `log`, a durable image of the log that only grows
    /// while one log lives; a new or shortened log is decoded afresh.
    fn count_in(&mut self, log: &[u8]) -> DurableRecords {
        use jetsim_engine::storage::log::{
            decode_records_from, log_signature_of, LogRecord, LOG_HEADER_BYTES,
        };
        let signature = log_signature_of(log);
        if signature != self.signature || (log.len() as u64) < self.decoded_to {
            *self = DurableCommitRecords {
                signature,
                decoded_to: LOG_HEADER_BYTES,
                count: 0,
                detaches: 0,
            };
        }
        if signature.is_none() {
            return DurableRecords::default();
        }
        let mut records = Vec::new();
        self.decoded_to = decode_records_from(log, self.decoded_to, &mut records);
        for (_, record) in &records {
            match record {
                LogRecord::Commit { .. } => self.count += 1,
                LogRecord::DetachDatabase { .. } => self.detaches += 1,
                _ => {}
            }
        }
        DurableRecords {
            commits: self.count,
            detaches: self.detaches,
        }
    }
}

/// What [`DurableCommitRecords::count_in`] found in the durable log.
#[derive(Debug, Clone, Copy, Default)]
struct DurableRecords {
    commits: u64,
    detaches: u64,
}

/// The tap's copy of every file, by path.
type TapFiles = Arc<Mutex<BTreeMap<String, Arc<Mutex<TapFileData>>>>>;

/// What the checkpoint file's syncs report to: the audit, which reads the other files'
/// durable bytes from the tap, and the power cutter.
struct CheckpointWatch {
    files: TapFiles,
    audit: Arc<Mutex<CheckpointAudit>>,
    cutter: Arc<PowerCutter>,
}

impl CheckpointWatch {
    /// The durable bytes of `path` (shared, not copied), if the tap has the file.
    fn durable(&self, path: &str) -> Option<Arc<Vec<u8>>> {
        let data = lock(&self.files).get(path).cloned()?;
        let durable = Arc::clone(&lock(&data).synced);
        Some(durable)
    }

    /// The checkpoint file was synced and now durably holds `checkpoint`.
    fn checkpoint_synced(&self, checkpoint: &[u8]) {
        let log = self.durable(MAIN_LOG_PATH).unwrap_or_default();
        let database = self.durable(DATABASE_PATH);
        let behind = lock(&self.audit).checkpoint_durable(
            checkpoint,
            &log,
            database.as_deref().map(Vec::as_slice),
        );
        if let Some(behind) = behind {
            self.cutter.checkpoint_durable(behind);
        }
    }
}

/// A slow disk ([`RunConfig::read_latency_ops`]): a read of the database file returns the
/// bytes of the instant the disk served it, but completes only once the disk has served that
/// many more operations (of any file, for any thread), as a read reported behind a queue of
/// later requests. With slow writes too ([`RunConfig::write_latency_ops`]) a write of the
/// database file lands, and returns, only after such a wait, as a write queued behind
/// others: a background write-back's copy of a page may land after a newer image written
/// meanwhile. A wait also ends when the other threads stop making progress (they may be
/// waiting for this one: it may hold the instance latch), so it never deadlocks a run.
/// Counting operations rather than scheduling points makes it slow under every scheduler:
/// under PCT one yield already lets the others run until they block, under the random
/// scheduler a few dozen yields let them make only a few calls.
#[derive(Default)]
struct SlowDisk {
    /// Operations a slow read waits for (0: reads are instant).
    read_latency_ops: AtomicU64,
    /// Operations a slow write waits for before it lands, on average (0: writes land at
    /// once).
    write_latency_ops: AtomicU64,
    /// Draws each slow write's wait, between none and twice the average, so a write may land
    /// before one issued earlier: a disk reorders the writes between two syncs. Seeded from
    /// the run; drawn in the order the writes come, which the schedule fixes.
    write_waits: Mutex<Option<SplitMix64>>,
    /// Operations served through the tap so far (every file).
    ops: AtomicU64,
    /// Scheduling points the run's slow operations have spent waiting so far: once
    /// [`SLOW_IO_RUN_YIELDS_MAX`], the disk serves at once for the rest of the run.
    yields: AtomicU64,
    /// Whether a wait ends once the scheduler runs no other thread
    /// ([`SLOW_IO_ALONE_YIELDS_MAX`]): not under URW.
    ends_when_alone: AtomicBool,
}

/// The slow disk's write waits draw from their own stream of the run's seed (not the
/// slow-write switch's, whose first draw decided the run is one).
const WRITE_WAITS_STREAM: u64 = 0x3A17_3A17_3A17_3A17;

/// A slow read or write stops waiting after this many of its scheduling points in a row in
/// which no thread invoked or ended a call or used the disk: then the others are waiting (for
/// this thread, or for nothing it will see happen).
const SLOW_IO_IDLE_YIELDS_MAX: u32 = 256;

/// Under the random and PCT schedulers, a slow read or write stops waiting after this many
/// of its yields in a row after which the scheduler ran no other thread at all: then every
/// other thread is blocked or finished (under PCT a yield lowers the yielder's priority, so
/// one such yield already says so; under the random scheduler, with one other thread
/// runnable, 16 in a row happen by chance once in 65,536 waits, and then the read merely
/// ends early). Without it such a wait spent [`SLOW_IO_IDLE_YIELDS_MAX`] points for
/// nothing: a fifth of a default run's scheduling points (`cargo bench -p jetsim --bench
/// interleavings`). Not under URW, which picks a thread in proportion to the points it
/// estimates the thread has left, and counts a waiter's yields among them: a waiter is
/// picked again and again while others could run, and its waits, ended early, caught the
/// write-back bugs of the mutation table (`FrameEvictedDuringWriteBack`,
/// `StopFlushBesideWriteBack`) later or not at all.
const SLOW_IO_ALONE_YIELDS_MAX: u32 = 16;

/// Scheduling points a run may take before shuttle fails it as a livelock.
const RUN_STEPS_MAX: u64 = 2_000_000;

/// The scheduling points a run's slow operations may spend waiting, all told: a quarter of
/// the run's step bound, so a large run (8 threads of 50 calls on an 8-page cache, whose
/// every call misses) cannot spend its whole bound in the disk's queue and fail as if it
/// had livelocked. The default campaign's runs stay far below it.
const SLOW_IO_RUN_YIELDS_MAX: u64 = RUN_STEPS_MAX / 4;

impl SlowDisk {
    /// The workload begins: reads (and writes) are slow from now on, if the run's disk is.
    fn start(&self, config: &RunConfig) {
        let (read_latency_ops, write_latency_ops, seed) = (
            config.read_latency_ops,
            config.write_latency_ops,
            config.seed,
        );
        self.ends_when_alone
            .store(!matches!(config.schedule, Schedule::Urw), Ordering::Relaxed);
        self.read_latency_ops
            .store(u64::from(read_latency_ops), Ordering::Relaxed);
        self.write_latency_ops
            .store(u64::from(write_latency_ops), Ordering::Relaxed);
        *lock(&self.write_waits) = Some(SplitMix64::new(seed ^ WRITE_WAITS_STREAM));
    }

    fn served(&self) {
        self.ops.fetch_add(1, Ordering::Relaxed);
    }

    /// Called by a read of the database file after the disk took its bytes.
    fn complete_read(&self, steps: &AtomicU64) {
        self.wait_in_queue(self.read_latency_ops.load(Ordering::Relaxed), steps);
    }

    /// Called by a write of the database file before its bytes land.
    fn queue_write(&self, steps: &AtomicU64) {
        let average_ops = self.write_latency_ops.load(Ordering::Relaxed);
        if average_ops == 0 {
            return;
        }
        let wait_ops = lock(&self.write_waits)
            .as_mut()
            .map_or(average_ops, |waits| waits.below(2 * average_ops + 1));
        self.wait_in_queue(wait_ops, steps);
    }

    /// Waits until the disk served `latency_ops` more operations, or the others stopped
    /// making progress.
    fn wait_in_queue(&self, latency_ops: u64, steps: &AtomicU64) {
        // Never while unwinding: a panicked run is torn down outside shuttle.
        if latency_ops == 0 || std::thread::panicking() {
            return;
        }
        let until = self.ops.load(Ordering::Relaxed) + latency_ops;
        let progress = || self.ops.load(Ordering::Relaxed) + steps.load(Ordering::SeqCst);
        let alone_max = match self.ends_when_alone.load(Ordering::Relaxed) {
            true => SLOW_IO_ALONE_YIELDS_MAX,
            false => u32::MAX,
        };
        let (mut idle, mut alone) = (0, 0);
        while self.ops.load(Ordering::Relaxed) < until
            && idle < SLOW_IO_IDLE_YIELDS_MAX
            && alone < alone_max
            && self.yields.fetch_add(1, Ordering::Relaxed) < SLOW_IO_RUN_YIELDS_MAX
        {
            let before = progress();
            // Reading shuttle's count of scheduling points is no scheduling point itself.
            let points_before = shuttle::current::context_switches();
            shuttle::thread::yield_now();
            // Only this yield's own point: the scheduler found no other thread to run.
            alone = if shuttle::current::context_switches() == points_before + 1 {
                alone + 1
            } else {
                0
            };
            idle = if progress() == before { idle + 1 } else { 0 };
        }
    }
}

/// Threads inside a full stop, each with the step at which it first wrote to the disk.
type Stoppers = Vec<(shuttle::thread::ThreadId, Option<u64>)>;

/// Notes a successful mutating operation: if the calling thread is inside a full stop, the
/// first such step is when the stop began preparing. Never while unwinding: a run that
/// panicked is torn down outside shuttle's execution, where a thread has no identity.
fn note_stopper_write(stoppers: &Mutex<Stoppers>, steps: &AtomicU64) {
    let mut stoppers = lock(stoppers);
    if stoppers.is_empty() || std::thread::panicking() {
        return;
    }
    let me = shuttle::thread::current().id();
    if let Some((_, first)) = stoppers.iter_mut().find(|(id, _)| *id == me) {
        first.get_or_insert(steps.load(Ordering::SeqCst));
    }
}

/// A thread's watch over its own full stop; dropping it (also when the stop panics) ends the
/// watch, so no watch outlives its run.
struct StopWatch<'a> {
    tap: &'a DiskTap,
    thread: shuttle::thread::ThreadId,
}

impl StopWatch<'_> {
    /// The step at which the watched stop first wrote, ending the watch.
    fn first_write_at(self) -> Option<u64> {
        let stoppers = lock(&self.tap.stoppers);
        stoppers
            .iter()
            .find(|(id, _)| *id == self.thread)
            .and_then(|(_, first)| *first)
    }
}

impl Drop for StopWatch<'_> {
    fn drop(&mut self) {
        let mut stoppers = lock(&self.tap.stoppers);
        if let Some(index) = stoppers.iter().position(|(id, _)| *id == self.thread) {
            stoppers.remove(index);
        }
    }
}

impl DiskTap {
    /// An attach is invoked: the detached-unwritten window closes (the attach may write).
    fn attach_invoked(&self) {
        let mut window = lock(&self.detached);
        window.since = None;
        window.attaches_in_flight += 1;
        window.attach_events += 1;
    }

    fn attach_returned(&self) {
        let mut window = lock(&self.detached);
        window.attaches_in_flight -= 1;
        window.attach_events += 1;
    }

    /// A detach is invoked: the attach events so far, or `None` when an attach is out.
    fn detach_invoked(&self) -> Option<u64> {
        let window = lock(&self.detached);
        (window.attaches_in_flight == 0).then_some(window.attach_events)
    }

    /// A detach invoked when the attach events were `attach_events_at_invocation` answered
    /// success at step `returned`: the window opens, unless an attach overlapped it (the
    /// check counts that detach unobservable, from the history alone).
    fn detach_returned(&self, returned: u64, attach_events_at_invocation: Option<u64>) {
        let mut window = lock(&self.detached);
        if attach_events_at_invocation == Some(window.attach_events) {
            window.since = Some(returned);
        }
    }

    fn new(disk: Arc<MemIo>, steps: Arc<AtomicU64>) -> DiskTap {
        DiskTap {
            files: Arc::new(Mutex::new(BTreeMap::new())),
            steps,
            first_failure_at: Arc::new(Mutex::new(None)),
            stoppers: Arc::new(Mutex::new(Vec::new())),
            cutter: Arc::new(PowerCutter::new(Arc::clone(&disk))),
            disk,
            slow_disk: Arc::new(SlowDisk::default()),
            audit: Arc::new(Mutex::new(CheckpointAudit::new(DATABASE_PATH))),
            commit_records: Mutex::new(DurableCommitRecords::default()),
            write_ahead: Arc::new(Mutex::new(WriteAheadAudited::default())),
            detached: Arc::new(Mutex::new(DetachedWindow::default())),
            other_instance_opens: AtomicBool::new(false),
        }
    }

    /// The handle through the tap for `path`, opened on the disk as `inner`, mirrored into
    /// `data`; watched, cut and slowed only when it is the instance under test's.
    fn tap_file(
        &self,
        path: &str,
        inner: Box<dyn IoFile>,
        data: Arc<Mutex<TapFileData>>,
    ) -> Box<dyn IoFile> {
        let watched = !self.other_instance_opens.load(Ordering::Relaxed);
        Box::new(TapFile {
            inner,
            data,
            steps: Arc::clone(&self.steps),
            first_failure_at: Arc::clone(&self.first_failure_at),
            stoppers: Arc::clone(&self.stoppers),
            cutter: self.cutter_of(path).filter(|_| watched),
            checkpoint_watch: self.checkpoint_watch_of(path).filter(|_| watched),
            write_ahead_watch: self.write_ahead_watch_of(path).filter(|_| watched),
            log_append_watch: self.log_append_watch_of(path).filter(|_| watched),
            slow_disk: Arc::clone(&self.slow_disk),
            slow_io: watched && Self::slow_io_of(path),
        })
    }

    /// The main log's append-only watch (`None` for other files).
    fn log_append_watch_of(&self, path: &str) -> Option<LogAppendWatch> {
        (path == MAIN_LOG_PATH).then(|| LogAppendWatch {
            audit: Arc::clone(&self.write_ahead),
            steps: Arc::clone(&self.steps),
        })
    }

    /// The database file's write-ahead watch (`None` for other files).
    fn write_ahead_watch_of(&self, path: &str) -> Option<WriteAheadWatch> {
        (path == DATABASE_PATH).then(|| WriteAheadWatch {
            files: Arc::clone(&self.files),
            audit: Arc::clone(&self.write_ahead),
            steps: Arc::clone(&self.steps),
            detached: Arc::clone(&self.detached),
        })
    }

    /// The Commit records the main instance's log holds durably right now (0 before it
    /// exists).
    fn durable_commit_records(&self) -> u64 {
        self.durable_records().commits
    }

    /// The Commit and Detach records in the main log's synced bytes.
    fn durable_records(&self) -> DurableRecords {
        let Some((log, _)) = self.durable(MAIN_LOG_PATH) else {
            return DurableRecords::default();
        };
        lock(&self.commit_records).count_in(&log)
    }

    /// Whether `path`'s reads and writes go through the slow disk: the database file's do,
    /// the others' are instant.
    fn slow_io_of(path: &str) -> bool {
        path == DATABASE_PATH
    }

    /// The power cutter, for the database file's and the log's operations (`None` for other
    /// files).
    fn cutter_of(&self, path: &str) -> Option<(Arc<PowerCutter>, CutFile)> {
        let file = match path {
            DATABASE_PATH => CutFile::Database,
            MAIN_LOG_PATH => CutFile::Log,
            _ => return None,
        };
        Some((Arc::clone(&self.cutter), file))
    }

    /// The main checkpoint file's watch (`None` for other files).
    fn checkpoint_watch_of(&self, path: &str) -> Option<CheckpointWatch> {
        (path == MAIN_CHECKPOINT_PATH).then(|| CheckpointWatch {
            files: Arc::clone(&self.files),
            audit: Arc::clone(&self.audit),
            cutter: Arc::clone(&self.cutter),
        })
    }

    /// The calling thread is about to make a full stop: watch its disk writes.
    fn watch_stop(&self) -> StopWatch<'_> {
        let thread = shuttle::thread::current().id();
        lock(&self.stoppers).push((thread, None));
        StopWatch { tap: self, thread }
    }

    /// The durable bytes of `path` (shared, not copied) and whether it has unsynced
    /// operations.
    fn durable(&self, path: &str) -> Option<(Arc<Vec<u8>>, bool)> {
        let files = lock(&self.files);
        let file = lock(files.get(path)?);
        Some((Arc::clone(&file.synced), file.unsynced()))
    }

    /// Reads the main instance's files as a crash at this instant would leave them and
    /// recovers a copy (see [`DiskAtStop`]).
    fn at_stop(&self) -> DiskAtStop {
        let started = std::time::Instant::now();
        let disk = self.read_at_stop();
        DISK_ORACLE_TIME.with(|total| total.set(total.get() + started.elapsed()));
        disk
    }

    /// The main instance's files as a crash right after the final term would leave them (the
    /// synced bytes only), recovered by a fresh instance with the run's planted bug (a
    /// recovery bug shows here too) and read table by table; `None` when the run never made
    /// the database durable. OS-thread primitives: no scheduling point of the run's.
    ///
    /// The run's last look at the disk: the synced images are moved out of the tap rather
    /// than shared with it, so the fresh instance's writes (its recovery, its attach) change
    /// them in place instead of copying each file whole first.
    fn after_term(&self, mutations: Mutations) -> Option<TermDisk> {
        let started = std::time::Instant::now();
        let copy = CrashCopy::default();
        // The database file alone, for an instance with a log of its own: it shares the
        // synced bytes (each copy's first write takes its own).
        let alone = CrashCopy::default();
        for path in [MAIN_LOG_PATH, MAIN_CHECKPOINT_PATH, DATABASE_PATH] {
            let files = lock(&self.files);
            if let Some(file) = files.get(path) {
                let synced = std::mem::take(&mut lock(file).synced);
                if path == DATABASE_PATH {
                    alone.insert(path, Arc::clone(&synced));
                }
                copy.insert(path, synced);
            }
        }
        let created = copy.with_image(DATABASE_PATH, |bytes| !bytes.is_empty());
        let disk = created.then(|| {
            let jet = Jet::<jetsim_engine::StdRuntime>::new(Environment::new(
                Arc::new(ManualClock::new(0)),
                Arc::new(copy),
            ));
            let (found, report) = recover_and_read(&jet, mutations);
            drop(jet);
            TermDisk {
                found,
                page_images_replayed: report.as_ref().map_or(0, |r| r.page_images_replayed),
                pages_redone: report.as_ref().map_or(0, |r| r.pages_redone),
                database_alone: read_database_alone(alone, mutations),
            }
        });
        DISK_ORACLE_TIME.with(|total| total.set(total.get() + started.elapsed()));
        disk
    }

    /// Fills `history`'s term disk ([`DiskTap::after_term`]), or counts it unobservable.
    fn read_back_after_term(&self, history: &mut History, mutations: Mutations) {
        history.term_disk = self.after_term(mutations);
        if history.term_disk.is_none() {
            *history
                .unobservable
                .entry("term disk: the database was never made durable".to_owned())
                .or_insert(0) += 1;
        }
    }

    fn read_at_stop(&self) -> DiskAtStop {
        let paths = [MAIN_LOG_PATH, MAIN_CHECKPOINT_PATH, DATABASE_PATH];
        let copy = CrashCopy::default();
        let mut unsynced_files = Vec::new();
        for path in paths {
            let Some((bytes, unsynced)) = self.durable(path) else {
                continue;
            };
            if unsynced {
                unsynced_files.push(path.to_owned());
            }
            copy.insert(path, bytes);
        }
        let log_end_lsn = copy.with_image(MAIN_LOG_PATH, |log| {
            jetsim_engine::storage::log::decode_all(log).1
        });
        let checkpoint_lsn = copy
            .exists(MAIN_CHECKPOINT_PATH)
            .then(|| {
                jetsim_engine::storage::checkpoint::CheckpointFile::open(
                    &copy,
                    MAIN_CHECKPOINT_PATH,
                )
                .ok()
                .and_then(|file| file.last().map(|c| c.checkpoint_lsn))
            })
            .flatten();
        DiskAtStop {
            checkpoint_lsn,
            log_end_lsn,
            unsynced_files,
            crash_copy_pages_redone: recover_copy(copy),
        }
    }

    /// `read` over the bytes of `path` as written so far, synced or not (empty when there is
    /// no such file).
    fn with_written<T>(&self, path: &str, read: impl FnOnce(&[u8]) -> T) -> T {
        let files = lock(&self.files);
        match files.get(path) {
            Some(file) => read(&lock(file).current),
            None => read(&[]),
        }
    }

    /// Completes the run's stop observations from the end of the run: the step of the first
    /// disk failure, and for each full stop the log records only gated calls write that the
    /// log gained after the stop returned. The log is read whole only when a clean term
    /// flushed its tail; otherwise records may never have left the engine's memory, so what
    /// was found still counts, but finding none is no pass (see `log_read_whole`).
    fn finish(&self, history: &mut History) {
        history.first_disk_failure_at = *lock(&self.first_failure_at);
        let audit = lock(&self.audit);
        let report = audit.report();
        history.checkpoint_audit = CheckpointAudited {
            checkpoints: report.checkpoints_audited,
            page_changes: report.page_changes_checked,
            breaches: report.breaches.clone(),
        };
        for (why, count) in &report.unobservable {
            *history
                .unobservable
                .entry(format!("checkpoint audit: {why}"))
                .or_insert(0) += count;
        }
        drop(audit);
        history.write_ahead = lock(&self.write_ahead).clone();
        if history.write_ahead.unaligned_writes > 0 {
            history.unobservable.insert(
                "write-ahead: a database write not of whole pages".to_owned(),
                history.write_ahead.unaligned_writes,
            );
        }
        let flushed_by_clean_term = history.events.iter().any(|e| {
            matches!(
                e.call,
                Call::Term {
                    instance: InstanceRef::Main,
                    ..
                }
            ) && e.outcome == (Outcome::Terminated { dirty: false })
        });
        if history.stop_observations.is_empty() {
            return;
        }
        use jetsim_engine::storage::database::HEADER_PAGE;
        use jetsim_engine::storage::LogRecord;
        let (records, _) =
            self.with_written(MAIN_LOG_PATH, jetsim_engine::storage::log::decode_all);
        for observation in history
            .stop_observations
            .iter_mut()
            .filter(|o| o.grbit == 0)
        {
            // One pass over the records after the stop, for both rules that read them.
            let mut gated = Vec::new();
            let mut changes = PageChangesAfter::default();
            for (lsn, record) in records
                .iter()
                .filter(|(lsn, _)| *lsn >= observation.disk.log_end_lsn)
            {
                match record {
                    LogRecord::Undo { .. } => gated.push(format!("Undo@{lsn}")),
                    LogRecord::Commit { .. } => gated.push(format!("Commit@{lsn}")),
                    LogRecord::AttachDatabase { .. } => gated.push(format!("AttachDatabase@{lsn}")),
                    // A database's header alone is its clean mark (detach, a clean term).
                    LogRecord::PageImages { images, .. }
                        if images.iter().any(|(page, _)| *page != HEADER_PAGE) =>
                    {
                        changes.page_image_lsns.push(*lsn);
                        changes.images_after_last_rollback += 1;
                    }
                    LogRecord::Rollback { undone, .. } => {
                        changes.rolled_back_changes += u64::from(*undone);
                        changes.images_after_last_rollback = 0;
                    }
                    _ => {}
                }
            }
            observation.gated_records_after = Some(gated);
            observation.page_changes_after = Some(changes);
            observation.log_read_whole = flushed_by_clean_term;
        }
    }

    /// Notes the first failed operation of the disk. An open of a path where no file is
    /// (`NotFound`: an attach of the missing file) is the file system's answer, not a failure:
    /// nothing was written, so no check of what the disk holds becomes unobservable by it.
    fn note_failure<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if result
            .as_ref()
            .is_err_and(|e| e.kind() != std::io::ErrorKind::NotFound)
        {
            lock(&self.first_failure_at).get_or_insert(self.steps.load(Ordering::SeqCst));
        }
        result
    }
}

thread_local! {
    /// Wall time this OS thread spent in [`DiskTap::at_stop`] (the disk oracle's crash copy and
    /// recovery), for the benchmark's stage costs. Reporting only: nothing in a run reads it.
    static DISK_ORACLE_TIME: std::cell::Cell<std::time::Duration> =
        const { std::cell::Cell::new(std::time::Duration::ZERO) };
}

/// The wall time the calling OS thread's runs spent in the disk oracle at stops since the last
/// call (reporting only; see [`DISK_ORACLE_TIME`]).
pub fn take_disk_oracle_time() -> std::time::Duration {
    DISK_ORACLE_TIME.with(|total| total.take())
}

thread_local! {
    /// Scheduling points (shuttle's possible context switches) of the kept executions run on
    /// this OS thread, for the benchmark's like-for-like comparison. Reporting only.
    static SCHEDULING_POINTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The scheduling points of the kept executions the calling OS thread ran since the last call
/// (reporting only; see [`SCHEDULING_POINTS`]).
pub fn take_scheduling_points() -> u64 {
    SCHEDULING_POINTS.with(|total| total.take())
}

/// Adds this execution's scheduling points so far to [`SCHEDULING_POINTS`]; reading the count
/// is no scheduling point itself.
fn count_scheduling_points() {
    let points = shuttle::current::context_switches() as u64;
    SCHEDULING_POINTS.with(|total| total.set(total.get() + points));
}

/// The disk oracle's crash copy: the durable images of the main instance's files as the tap
/// holds them at a stop, for a recovery to run on. Each image is shared with the tap until
/// recovery writes to it (then that file alone is copied), so taking the copy costs no copy.
/// It is a plain disk, with no faults and no second crash: what it must model is the crash
/// already taken (only synced bytes survive), and the recovery after it runs to its end.
#[derive(Default)]
struct CrashCopy {
    files: Mutex<BTreeMap<String, CrashCopyImage>>,
}

/// One file's bytes in the crash copy: shared by its open handles, the bytes themselves
/// shared with the tap until written.
type CrashCopyImage = Arc<Mutex<Arc<Vec<u8>>>>;

impl CrashCopy {
    fn insert(&self, path: &str, image: Arc<Vec<u8>>) {
        lock(&self.files).insert(path.to_owned(), Arc::new(Mutex::new(image)));
    }

    /// `read` over the current image of `path` (empty when there is none).
    fn with_image<T>(&self, path: &str, read: impl FnOnce(&[u8]) -> T) -> T {
        let file = lock(&self.files).get(path).cloned();
        match file {
            Some(file) => read(&lock(&file)),
            None => read(&[]),
        }
    }
}

impl Io for CrashCopy {
    fn create(&self, path: &str) -> std::io::Result<Box<dyn IoFile>> {
        let image = Arc::new(Mutex::new(Arc::new(Vec::new())));
        lock(&self.files).insert(path.to_owned(), Arc::clone(&image));
        Ok(Box::new(CrashCopyFile { image }))
    }
    fn open(&self, path: &str) -> std::io::Result<Box<dyn IoFile>> {
        let image = lock(&self.files)
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, path.to_owned()))?;
        Ok(Box::new(CrashCopyFile { image }))
    }
    fn remove(&self, path: &str) -> std::io::Result<()> {
        lock(&self.files)
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, path.to_owned()))
    }
    fn exists(&self, path: &str) -> bool {
        lock(&self.files).contains_key(path)
    }
}

impl Drop for CrashCopy {
    fn drop(&mut self) {
        let files = std::mem::take(&mut *lock(&self.files));
        for image in files.into_values() {
            let image = Arc::try_unwrap(image)
                .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner));
            if let Ok(Ok(image)) = image.map(Arc::try_unwrap) {
                keep_spare_image(image);
            }
        }
    }
}

/// One open file of the crash copy.
struct CrashCopyFile {
    image: CrashCopyImage,
}

impl IoFile for CrashCopyFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let image = lock(&self.image);
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(buf.len()) {
            Some(end) if end <= image.len() => {
                buf.copy_from_slice(&image[start..end]);
                Ok(())
            }
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past end",
            )),
        }
    }
    fn write_at(&self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        let offset = usize::try_from(offset)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "offset"))?;
        tap_write(owned_image(&mut lock(&self.image)), offset, bytes);
        Ok(())
    }
    fn sync(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn len(&self) -> std::io::Result<u64> {
        Ok(lock(&self.image).len() as u64)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let len = usize::try_from(len)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "length"))?;
        owned_image(&mut lock(&self.image)).resize(len, 0);
        Ok(())
    }
}

/// Recovery on `copy` (a crashed disk), with OS-thread primitives and no background thread:
/// no scheduling point of the run's, so taking it never changes the schedule.
fn recover_copy(copy: CrashCopy) -> Result<u64, String> {
    let jet = Jet::<jetsim_engine::StdRuntime>::new(Environment::new(
        Arc::new(ManualClock::new(0)),
        Arc::new(copy),
    ));
    let instance = jet
        .create_instance_with("main", InstanceOptions::manual())
        .map_err(|e| format!("create_instance: {e:?}"))?;
    jet.init(instance)
        .map_err(|e| format!("init (recovery): {e:?}"))?;
    let report = jet
        .last_recovery_report(instance)
        .map_err(|e| format!("last_recovery_report: {e:?}"))?
        .ok_or("init reported no recovery")?;
    Ok(report.pages_redone)
}

impl Io for DiskTap {
    fn create(&self, path: &str) -> std::io::Result<Box<dyn IoFile>> {
        let inner = self.disk.create(path);
        let inner = self.note_failure(inner)?;
        let data = Arc::new(Mutex::new(TapFileData::new()));
        lock(&self.files).insert(path.to_owned(), Arc::clone(&data));
        Ok(self.tap_file(path, inner, data))
    }
    fn open(&self, path: &str) -> std::io::Result<Box<dyn IoFile>> {
        let inner = self.disk.open(path);
        let inner = self.note_failure(inner)?;
        let data = Arc::clone(
            lock(&self.files)
                .entry(path.to_owned())
                .or_insert_with(|| Arc::new(Mutex::new(TapFileData::new()))),
        );
        Ok(self.tap_file(path, inner, data))
    }
    fn remove(&self, path: &str) -> std::io::Result<()> {
        let removed = self.disk.remove(path);
        self.note_failure(removed)?;
        lock(&self.files).remove(path);
        Ok(())
    }
    fn exists(&self, path: &str) -> bool {
        self.disk.exists(path)
    }
}

/// One open file through the tap.
struct TapFile {
    inner: Box<dyn IoFile>,
    data: Arc<Mutex<TapFileData>>,
    steps: Arc<AtomicU64>,
    first_failure_at: Arc<Mutex<Option<u64>>>,
    stoppers: Arc<Mutex<Stoppers>>,
    /// The database file's and the log's: counts their operations towards a planned power
    /// cut.
    cutter: Option<(Arc<PowerCutter>, CutFile)>,
    /// The main checkpoint file's: each sync is a durable checkpoint to audit.
    checkpoint_watch: Option<CheckpointWatch>,
    /// The database file's: each write is audited against the durable log.
    write_ahead_watch: Option<WriteAheadWatch>,
    /// The main log's: each write is audited against the log's durable bytes.
    log_append_watch: Option<LogAppendWatch>,
    /// Counts every operation of the file (see [`SlowDisk`]).
    slow_disk: Arc<SlowDisk>,
    /// The database file's: its reads complete, and its writes land, as the slow disk
    /// decides.
    slow_io: bool,
}

impl TapFile {
    fn note<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if result.is_err() {
            lock(&self.first_failure_at).get_or_insert(self.steps.load(Ordering::SeqCst));
        }
        result
    }

    /// [`Self::note`] for a mutating operation, which may be a stop's first.
    fn note_mutation(&self, result: std::io::Result<()>) -> std::io::Result<()> {
        self.note(result)?;
        note_stopper_write(&self.stoppers, &self.steps);
        Ok(())
    }

    /// A successful mutating operation (`write` or not), counted towards a power cut
    /// planned after the N-th of its file (after the tap mirrored it).
    fn file_changed(&self, write: bool) {
        if let Some((cutter, file)) = &self.cutter {
            cutter.file_changed(*file, write);
        }
    }

    /// A successful sync: of the checkpoint file, a durable checkpoint.
    fn file_synced(&self) {
        if let Some(watch) = &self.checkpoint_watch {
            let checkpoint = Arc::clone(&lock(&self.data).synced);
            watch.checkpoint_synced(&checkpoint);
        }
    }
}

impl IoFile for TapFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.slow_disk.served();
        let read = self.inner.read_at(offset, buf);
        // On a slow disk the bytes are those of the instant the read was served; the read
        // completes later.
        if self.slow_io {
            self.slow_disk.complete_read(&self.steps);
        }
        // A read past the end is the engine probing a file, not a disk failure.
        if read
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof)
        {
            return read;
        }
        self.note(read)
    }
    fn write_at(&self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        self.slow_disk.served();
        if self.slow_io {
            self.slow_disk.queue_write(&self.steps);
        }
        let written = self.inner.write_at(offset, bytes);
        self.note_mutation(written)?;
        let offset = usize::try_from(offset).expect("the disk accepted the offset");
        // The LSNs the written pages had, read under the file's lock with the write itself;
        // the watch then takes the tap's file table and the log's lock with this one let go,
        // in the order every other reader of the tap takes them (table, then a file).
        let (previous_lsns, log_rewrite) = {
            let mut data = lock(&self.data);
            let previous = self
                .write_ahead_watch
                .as_ref()
                .map(|_| WriteAheadWatch::page_lsns(&data.current, offset, bytes.len()));
            let log_rewrite = self.log_append_watch.as_ref().map(|_| {
                let rewritten = LogAppendWatch::first_rewritten_byte(&data.synced, offset, bytes);
                (data.synced.len(), rewritten)
            });
            data.write(offset, bytes);
            (previous, log_rewrite)
        };
        if let (Some(watch), Some(previous)) = (&self.write_ahead_watch, previous_lsns) {
            watch.page_written(offset, bytes, &previous);
            watch.file_changed(|| format!("a write of {} bytes at offset {offset}", bytes.len()));
        }
        if let (Some(watch), Some((durable_len, rewritten))) = (&self.log_append_watch, log_rewrite)
        {
            watch.log_written(durable_len, rewritten);
        }
        self.file_changed(true);
        Ok(())
    }
    fn sync(&self) -> std::io::Result<()> {
        self.slow_disk.served();
        let synced = self.inner.sync();
        self.note_mutation(synced)?;
        lock(&self.data).sync();
        self.file_changed(false);
        self.file_synced();
        Ok(())
    }
    fn len(&self) -> std::io::Result<u64> {
        let len = self.inner.len();
        self.note(len)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.slow_disk.served();
        let set = self.inner.set_len(len);
        self.note_mutation(set)?;
        let len = usize::try_from(len).expect("the disk accepted the length");
        lock(&self.data).set_len(len);
        if let Some(watch) = &self.write_ahead_watch {
            watch.file_changed(|| format!("a length change to {len} bytes"));
        }
        self.file_changed(false);
        Ok(())
    }
}

/// Handles of the setup, shared by all threads.
#[derive(Clone, Copy)]
struct World {
    main: InstanceHandle,
    uninitialized: InstanceHandle,
    terminated: InstanceHandle,
    foreign_session: SessionHandle,
    foreign_database: DatabaseHandle,
    foreign_table: TableHandle,
    /// A live session of the other instance (set up beside the one under test, with a
    /// database of its own): the harness's own, for [`probe_database_sharing`].
    other_session: SessionHandle,
}

/// Every thread's sessions, shared so a thread can name another's ([`Ref::Peer`]).
#[derive(Default)]
struct SessionTable {
    /// Per thread: sessions in creation order.
    created: Vec<Vec<SessionHandle>>,
    /// Per thread: variable → index into `created`.
    vars: Vec<[Option<u8>; workload::VARS_PER_KIND as usize]>,
}

/// A thread's symbolic variables bound to real handles.
#[derive(Default)]
struct Bindings {
    thread: usize,
    databases: [Option<DatabaseHandle>; workload::VARS_PER_KIND as usize],
    tables: [Option<TableHandle>; workload::VARS_PER_KIND as usize],
    sessions: Arc<Mutex<SessionTable>>,
    /// Sessions this thread set a context on (resolved references), for the wind-down.
    contexts_set: Vec<Ref>,
}

impl Bindings {
    fn session(&self, world: &World, r: Ref) -> SessionHandle {
        let table = lock(&self.sessions);
        let created = |thread: usize, n: u8| {
            table
                .created
                .get(thread)
                .and_then(|c| c.get(usize::from(n)))
                .copied()
                .unwrap_or(SessionHandle::NIL)
        };
        match r {
            Ref::Var(v) => match table
                .vars
                .get(self.thread)
                .and_then(|vars| vars[usize::from(v)])
            {
                Some(n) => created(self.thread, n),
                None => SessionHandle::NIL,
            },
            Ref::Created(n) => created(self.thread, n),
            Ref::PeerCreated { thread, n } => created(usize::from(thread), n),
            Ref::Nil | Ref::Peer(_) => SessionHandle::NIL,
            Ref::Foreign => world.foreign_session,
        }
    }

    /// Replaces a [`Ref::Peer`] by the peer's session as of now, so the recorded call names
    /// exactly the session used.
    fn resolve_peer(&self, threads: usize, r: Ref) -> Ref {
        let Ref::Peer(v) = r else { return r };
        let peer = (self.thread + 1) % threads;
        let table = lock(&self.sessions);
        match table.vars.get(peer).and_then(|vars| vars[usize::from(v)]) {
            Some(n) => Ref::PeerCreated {
                thread: u8::try_from(peer).expect("few threads"),
                n,
            },
            None => Ref::Nil,
        }
    }

    fn bind_session(&self, var: u8, handle: SessionHandle) {
        let mut table = lock(&self.sessions);
        let thread = self.thread;
        if table.created.len() <= thread {
            table.created.resize_with(thread + 1, Vec::new);
            table.vars.resize_with(thread + 1, Default::default);
        }
        let n = u8::try_from(table.created[thread].len()).unwrap_or(u8::MAX);
        table.created[thread].push(handle);
        table.vars[thread][usize::from(var)] = Some(n);
    }

    fn created_count(&self, thread: usize) -> usize {
        lock(&self.sessions).created.get(thread).map_or(0, Vec::len)
    }
    fn database(&self, world: &World, r: Ref) -> DatabaseHandle {
        match r {
            Ref::Var(v) => self.databases[usize::from(v)].unwrap_or(DatabaseHandle::NIL),
            Ref::Nil | Ref::Created(_) | Ref::Peer(_) | Ref::PeerCreated { .. } => {
                DatabaseHandle::NIL
            }
            Ref::Foreign => world.foreign_database,
        }
    }
    fn table(&self, world: &World, r: Ref) -> TableHandle {
        match r {
            Ref::Var(v) => self.tables[usize::from(v)].unwrap_or(TableHandle::NIL),
            Ref::Nil | Ref::Created(_) | Ref::Peer(_) | Ref::PeerCreated { .. } => TableHandle::NIL,
            Ref::Foreign => world.foreign_table,
        }
    }
}

fn instance(world: &World, r: InstanceRef) -> InstanceHandle {
    match r {
        InstanceRef::Main => world.main,
        InstanceRef::Nil => InstanceHandle::NIL,
        InstanceRef::Uninitialized => world.uninitialized,
        InstanceRef::Terminated => world.terminated,
    }
}

fn outcome<T>(result: JetResult<T>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match result {
        Ok(value) => ok(value),
        Err(error) => Outcome::err(error),
    }
}

fn unit(result: JetResult<()>) -> Outcome {
    outcome(result, |()| Outcome::Ok)
}

/// Record bytes back to the workload's key and value numbers.
fn record_outcome((key, value): (Vec<u8>, Vec<u8>)) -> Outcome {
    let (key, value) = workload::record_numbers(&key, &value);
    Outcome::Record { key, value }
}

/// Makes one call on the engine: routes it to the step for its family, each arm there a
/// direct translation to the engine's API, so a new call is one arm in one family. The
/// `execute_*_call` families look alike (resolve the bound handles, call, translate the
/// result) and stay one arm per call: a shared helper would hide which Jet function each
/// `Call` makes, which is what a reader of a failing trace comes here to see.
fn execute(jet: &Jet<ShuttleRuntime>, world: &World, b: &mut Bindings, call: &Call) -> Outcome {
    match call {
        Call::BeginSession { .. }
        | Call::EndSession { .. }
        | Call::SetSessionContext { .. }
        | Call::ResetSessionContext { .. }
        | Call::GetSessionInfo { .. } => execute_session_call(jet, world, b, call),
        Call::OpenDatabase { .. }
        | Call::CloseDatabase { .. }
        | Call::AttachDatabase { .. }
        | Call::DetachDatabase { .. }
        | Call::Defragment { .. } => execute_database_call(jet, world, b, call),
        Call::OpenTable { .. }
        | Call::CreateTable { .. }
        | Call::DeleteTable { .. }
        | Call::CloseTable { .. } => execute_table_call(jet, world, b, call),
        Call::BeginTransaction { .. }
        | Call::CommitTransaction { .. }
        | Call::Rollback { .. }
        | Call::Insert { .. }
        | Call::Replace { .. }
        | Call::Delete { .. } => execute_update_call(jet, world, b, call),
        Call::Seek { .. }
        | Call::Move { .. }
        | Call::Retrieve { .. }
        | Call::IndexRecordCount { .. } => execute_cursor_call(jet, world, b, call),
        Call::StopService { .. }
        | Call::Term { .. }
        | Call::GetSystemParameter { .. }
        | Call::SetSystemParameter { .. } => execute_instance_call(jet, world, call),
    }
}

/// [`execute`] for the session calls: begin, end, context and info.
fn execute_session_call(
    jet: &Jet<ShuttleRuntime>,
    world: &World,
    b: &mut Bindings,
    call: &Call,
) -> Outcome {
    match *call {
        Call::BeginSession { bind } => outcome(jet.begin_session(world.main), |s| {
            b.bind_session(bind, s);
            Outcome::Ok
        }),
        Call::EndSession { ses } => unit(jet.end_session(b.session(world, ses))),
        Call::SetSessionContext { ses, context } => {
            let result = unit(jet.set_session_context(b.session(world, ses), context));
            if result.is_ok() {
                let named = match ses {
                    Ref::Var(v) => {
                        lock(&b.sessions).vars[b.thread][usize::from(v)].map(Ref::Created)
                    }
                    other => Some(other),
                };
                b.contexts_set.extend(named);
            }
            result
        }
        Call::ResetSessionContext { ses } => unit(jet.reset_session_context(b.session(world, ses))),
        Call::GetSessionInfo { ses } => outcome(jet.get_session_info(b.session(world, ses)), |i| {
            Outcome::SessionInfo {
                level: i.transaction_level,
                context: i.context,
                open_tables: i.open_tables,
                open_databases: i.open_databases,
            }
        }),
        _ => unreachable!("execute routes only a session call here"),
    }
}

/// [`execute`] for the database calls: open, close, attach, detach and online defrag.
fn execute_database_call(
    jet: &Jet<ShuttleRuntime>,
    world: &World,
    b: &mut Bindings,
    call: &Call,
) -> Outcome {
    match *call {
        Call::OpenDatabase { ses, bind } => outcome(
            jet.open_database(b.session(world, ses), DATABASE_PATH),
            |d| {
                b.databases[usize::from(bind)] = Some(d);
                Outcome::Ok
            },
        ),
        Call::CloseDatabase { ses, db } => {
            unit(jet.close_database(b.session(world, ses), b.database(world, db)))
        }
        Call::AttachDatabase { ses, file } => {
            attach_outcome(jet.attach_database(b.session(world, ses), database_path(file)))
        }
        Call::DetachDatabase { ses } => {
            unit(jet.detach_database(b.session(world, ses), DATABASE_PATH))
        }
        Call::Defragment { ses, db, grbit } => {
            unit(jet.defragment(b.session(world, ses), b.database(world, db), grbit))
        }
        _ => unreachable!("execute routes only a database call here"),
    }
}

/// [`execute`] for the table calls: open, create, delete and close.
fn execute_table_call(
    jet: &Jet<ShuttleRuntime>,
    world: &World,
    b: &mut Bindings,
    call: &Call,
) -> Outcome {
    match *call {
        Call::OpenTable {
            ses,
            db,
            table,
            bind,
        }
        | Call::CreateTable {
            ses,
            db,
            table,
            bind,
        } => {
            let (sesid, dbid) = (b.session(world, ses), b.database(world, db));
            let name = workload::table_name(table);
            let opened = if matches!(call, Call::OpenTable { .. }) {
                jet.open_table(sesid, dbid, &name)
            } else {
                jet.create_table(sesid, dbid, &name)
            };
            outcome(opened, |t| {
                b.tables[usize::from(bind)] = Some(t);
                Outcome::Ok
            })
        }
        Call::DeleteTable { ses, db, table } => unit(jet.delete_table(
            b.session(world, ses),
            b.database(world, db),
            &workload::table_name(table),
        )),
        Call::CloseTable { ses, table } => {
            unit(jet.close_table(b.session(world, ses), b.table(world, table)))
        }
        _ => unreachable!("execute routes only a table call here"),
    }
}

/// [`execute`] for the transaction and record-update calls. Same shape as the
/// other families, on purpose: see [`execute`].
fn execute_update_call(
    jet: &Jet<ShuttleRuntime>,
    world: &World,
    b: &mut Bindings,
    call: &Call,
) -> Outcome {
    match *call {
        Call::BeginTransaction { ses } => unit(jet.begin_transaction(b.session(world, ses))),
        Call::CommitTransaction { ses } => unit(jet.commit_transaction(b.session(world, ses))),
        Call::Rollback { ses } => unit(jet.rollback(b.session(world, ses))),
        Call::Insert {
            ses,
            table,
            key,
            value,
        } => unit(jet.insert(
            b.session(world, ses),
            b.table(world, table),
            &workload::key_bytes(key),
            &workload::value_bytes(value),
        )),
        Call::Replace { ses, table, value } => unit(jet.replace(
            b.session(world, ses),
            b.table(world, table),
            &workload::value_bytes(value),
        )),
        Call::Delete { ses, table } => {
            unit(jet.delete(b.session(world, ses), b.table(world, table)))
        }
        _ => unreachable!("execute routes only a transaction or update call here"),
    }
}

/// [`execute`] for the cursor calls: seek, move, retrieve and count. Same shape as the
/// other families, on purpose: see [`execute`].
fn execute_cursor_call(
    jet: &Jet<ShuttleRuntime>,
    world: &World,
    b: &mut Bindings,
    call: &Call,
) -> Outcome {
    match *call {
        Call::Seek {
            ses,
            table,
            key,
            mode,
        } => unit(jet.seek(
            b.session(world, ses),
            b.table(world, table),
            &workload::key_bytes(key),
            mode.engine(),
        )),
        Call::Move { ses, table, to } => {
            unit(jet.move_cursor(b.session(world, ses), b.table(world, table), to.engine()))
        }
        Call::Retrieve { ses, table } => outcome(
            jet.retrieve(b.session(world, ses), b.table(world, table)),
            record_outcome,
        ),
        Call::IndexRecordCount {
            ses,
            table,
            max_records,
        } => outcome(
            jet.index_record_count(b.session(world, ses), b.table(world, table), max_records),
            Outcome::Count,
        ),
        _ => unreachable!("execute routes only a cursor call here"),
    }
}

/// [`execute`] for the instance calls: stop, term and system parameters.
fn execute_instance_call(jet: &Jet<ShuttleRuntime>, world: &World, call: &Call) -> Outcome {
    match *call {
        Call::StopService {
            instance: target,
            grbit,
        } => unit(jet.stop_service_instance2(instance(world, target), grbit)),
        Call::Term {
            instance: target,
            grbit,
        } => outcome(jet.term2(instance(world, target), grbit), |t| {
            Outcome::Terminated {
                dirty: t == TermOutcome::DirtyShutdown,
            }
        }),
        Call::GetSystemParameter {
            instance: target,
            parameter,
        } => outcome(
            jet.get_system_parameter(instance(world, target), parameter.engine()),
            Outcome::Parameter,
        ),
        Call::SetSystemParameter {
            instance: target,
            parameter,
            value,
        } => unit(jet.set_system_parameter(instance(world, target), parameter.engine(), value)),
        _ => unreachable!("execute routes only an instance call here"),
    }
}

/// The call with every [`Ref::Peer`] resolved.
fn resolve_peers(bindings: &Bindings, threads: usize, call: &Call) -> Call {
    let mut call = call.clone();
    if let Some(ses) = call.session_mut() {
        *ses = bindings.resolve_peer(threads, *ses);
    }
    call
}

/// Shared recording state of one execution.
struct Recorder {
    threads: usize,
    sequence: Arc<AtomicU64>,
    history: Mutex<History>,
    clock: Arc<ManualClock>,
    disk: Arc<DiskTap>,
    version_meter: Arc<VersionMeter>,
    /// Calls that may change the stop flags (stops and terms of the main instance): how many
    /// are in flight, and how many have begun or ended so far. A failed stop's flags are
    /// compared before and after only when no other such call overlapped it.
    flag_changers_in_flight: AtomicU64,
    flag_changer_events: AtomicU64,
    /// Whether this execution's history is the one kept: `false` in the calibration run PCT
    /// makes first, whose history is thrown away. The disk oracle at a stop has no scheduling
    /// point (OS-thread primitives only), so skipping it there leaves the calibration, and so
    /// the recorded run's schedule, exactly as they were.
    kept: bool,
}

impl Recorder {
    fn stamp(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::SeqCst)
    }

    fn record(&self, event: Event) {
        lock(&self.history).events.push(event);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes and records one call; after a successful full stop of the main instance, also
/// records what the stop left behind.
fn call_and_record(
    jet: &Jet<ShuttleRuntime>,
    world: &World,
    recorder: &Recorder,
    bindings: &mut Bindings,
    thread: usize,
    call: &Call,
) -> Outcome {
    let call = &resolve_peers(bindings, recorder.threads, call);
    // Simulated time moves only here, by a fixed step: deterministic under any schedule.
    recorder.clock.advance_micros(10);
    let flags = FlagWatch::begin(jet, world, recorder, call);
    let watch = call
        .is_full_stop_of_main()
        .then(|| recorder.disk.watch_stop());
    // An attach of the missing file cannot attach the run's.
    let attach = matches!(
        call,
        Call::AttachDatabase {
            file: DatabaseFile::Run,
            ..
        }
    );
    if attach {
        recorder.disk.attach_invoked();
    }
    let attach_events_at_detach = matches!(call, Call::DetachDatabase { .. })
        .then(|| recorder.disk.detach_invoked())
        .flatten();
    let invoked = recorder.stamp();
    let result = execute(jet, world, bindings, call);
    if attach {
        recorder.disk.attach_returned();
    }
    // Read before this call leaves the set of flag changers, so "alone" covers the read.
    let flags_after = flags.before.and_then(|_| stop_flags(jet, world));
    let returned = recorder.stamp();
    if matches!(call, Call::CommitTransaction { .. }) && result == Outcome::Ok {
        recorder.disk.cutter.commit_acknowledged();
        // The harness's own look at the durable log at the response step (no scheduling
        // point in between): the commit-durable rule's evidence.
        let durable_commit_records = recorder.disk.durable_commit_records();
        lock(&recorder.history).commit_acks.push(CommitAck {
            returned,
            durable_commit_records,
        });
    }
    if matches!(call, Call::DetachDatabase { .. }) && result == Outcome::Ok {
        // The same look for a detach: the detach-durable rule's evidence.
        let durable_detach_records = recorder.disk.durable_records().detaches;
        lock(&recorder.history).detach_acks.push(DetachAck {
            returned,
            durable_detach_records,
        });
        // No scheduling point since the response step: every later write is after it.
        recorder
            .disk
            .detach_returned(returned, attach_events_at_detach);
    }
    let stop = StopSpan {
        thread,
        invoked,
        returned,
        first_write_at: watch.and_then(StopWatch::first_write_at),
    };
    // The harness's own look at the disk, before anything else can run (no scheduling point
    // between the response step and this read).
    observe_disk_at_stop(recorder, world.main, call, &result, &stop);
    let alone = flags.end(recorder);
    check_failed_stop_changed_nothing(
        recorder,
        &stop,
        call,
        &result,
        flags.before,
        flags_after,
        alone,
    );
    note_after_full_stop(jet, world, recorder, call, &result, returned);
    recorder.record(Event {
        thread,
        call: call.clone(),
        invoked,
        returned,
        outcome: result.clone(),
    });
    result
}

/// The main instance's stop flags (defrag parked, caches quiesced), as the engine reports
/// them; `None` when it reports nothing. Only stops change them.
fn stop_flags(jet: &Jet<ShuttleRuntime>, world: &World) -> Option<(bool, bool)> {
    jet.instance_status(world.main).ok().map(|s| {
        (
            s.defrag == jetsim_engine::DefragStatus::Parked,
            s.caches_quiesced,
        )
    })
}

/// A call's watch over the stop flags: several threads may stop, resume and term at once, so
/// a failed stop's flags are its alone to change only when no other stop or term is in
/// flight, or begins or ends, while it runs.
struct FlagWatch {
    /// For a call that may change the flags (a stop, a term of the main instance): the other
    /// such calls in flight when it began, and the count of such calls' begins and ends.
    others_before: Option<(u64, u64)>,
    /// For a stop: the flags before it (`None` when the engine reported none).
    before: Option<(bool, bool)>,
}

impl FlagWatch {
    fn begin(
        jet: &Jet<ShuttleRuntime>,
        world: &World,
        recorder: &Recorder,
        call: &Call,
    ) -> FlagWatch {
        let changes_flags = matches!(
            call,
            Call::StopService { .. }
                | Call::Term {
                    instance: InstanceRef::Main,
                    ..
                }
        );
        let others_before = changes_flags.then(|| {
            let others = recorder
                .flag_changers_in_flight
                .fetch_add(1, Ordering::SeqCst);
            let events = recorder.flag_changer_events.fetch_add(1, Ordering::SeqCst) + 1;
            (others, events)
        });
        let before = matches!(call, Call::StopService { .. })
            .then(|| stop_flags(jet, world))
            .flatten();
        FlagWatch {
            others_before,
            before,
        }
    }

    /// Ends the watch: whether the call was alone among the flag changers throughout.
    fn end(&self, recorder: &Recorder) -> bool {
        let Some((others, events)) = self.others_before else {
            return true;
        };
        let alone = others == 0
            && recorder.flag_changer_events.load(Ordering::SeqCst) == events
            && recorder.flag_changers_in_flight.load(Ordering::SeqCst) == 1;
        recorder
            .flag_changers_in_flight
            .fetch_sub(1, Ordering::SeqCst);
        recorder.flag_changer_events.fetch_add(1, Ordering::SeqCst);
        alone
    }
}

/// When a call ran, by the run's step counter, and on which thread; for a full stop, also the
/// step of its first disk write.
struct StopSpan {
    thread: usize,
    invoked: u64,
    returned: u64,
    first_write_at: Option<u64>,
}

/// After a successful quiescing stop of the main instance (a full stop, or `QuiesceCaches`
/// without `Resume`), records what the disk durably holds (the disk oracle), in the run whose
/// history is kept; with it, the versions the main instance's store holds (the memory meter).
/// The same after a successful StopAndEmitLog invoked once a full stop had returned (the
/// history says so): a full stop keeps the checkpoint depth at 0 for good, so the marker the
/// emit logs must find the checkpoint moved over it.
fn observe_disk_at_stop(
    recorder: &Recorder,
    main: InstanceHandle,
    call: &Call,
    result: &Outcome,
    stop: &StopSpan,
) {
    let (
        Call::StopService {
            instance: InstanceRef::Main,
            grbit,
        },
        Outcome::Ok,
    ) = (call, result)
    else {
        return;
    };
    let quiescing = *grbit == 0
        || (*grbit & jetsim_engine::stop_grbit::QUIESCE_CACHES != 0
            && *grbit & jetsim_engine::stop_grbit::RESUME == 0);
    let emit_after_full_stop = *grbit == jetsim_engine::stop_grbit::STOP_AND_EMIT_LOG
        && lock(&recorder.history).events.iter().any(|e| {
            e.call.is_full_stop_of_main() && e.outcome.is_ok() && e.returned < stop.invoked
        });
    if !(quiescing || emit_after_full_stop) || !recorder.kept {
        return;
    }
    let disk = recorder.disk.at_stop();
    let versions_held = recorder.version_meter.held(main);
    lock(&recorder.history)
        .stop_observations
        .push(StopObservation {
            thread: stop.thread,
            grbit: *grbit,
            stop_invoked: stop.invoked,
            stop_returned: stop.returned,
            disk,
            versions_held,
            first_write_at: stop.first_write_at,
            gated_records_after: None,
            log_read_whole: false,
            page_changes_after: None,
        });
}

/// A stop that failed (other than by an I/O error in its own course) must leave the stop
/// flags as they were; counted as unobservable when another flag changer overlapped it.
fn check_failed_stop_changed_nothing(
    recorder: &Recorder,
    stop: &StopSpan,
    call: &Call,
    result: &Outcome,
    before: Option<(bool, bool)>,
    after: Option<(bool, bool)>,
    alone: bool,
) {
    // An I/O error in the middle of a stop is fail-stop, not a validation failure: the stop
    // is not undone (documented in engine/src/api/stop.rs), so only other failures count.
    let unavailable = jetsim_engine::JetError::InstanceUnavailable;
    let io_error = result.is_io_error() || result.is_err_named(unavailable);
    let Some(before) = before else { return };
    // Unless the instance had failed before the stop began: a call that answered
    // InstanceUnavailable before the stop was invoked shows it (the history's own evidence),
    // and a stop that begins on a failed instance must refuse before it changes anything, as
    // ESE's stop refuses an unavailable instance at its start.
    let failed_before = io_error
        && lock(&recorder.history)
            .events
            .iter()
            .any(|e| e.returned < stop.invoked && e.outcome.is_err_named(unavailable));
    if result.is_ok() || (io_error && !failed_before) {
        return;
    }
    let thread = stop.thread;
    if !alone {
        *lock(&recorder.history)
            .unobservable
            .entry("failed stop changed nothing".to_owned())
            .or_insert(0) += 1;
    } else if let Some(after) = after {
        if after != before {
            lock(&recorder.history).failed_stop_effects.push(format!(
                "thread {thread} {call:?} failed with {result:?} but changed (defrag parked, caches quiesced) \
                 from {before:?} to {after:?}"
            ));
        }
    }
}

/// After a successful full stop of the main instance: the engine's own account of it (status
/// and stop record), for descriptions and the timeline; no rule decides from it.
fn note_after_full_stop(
    jet: &Jet<ShuttleRuntime>,
    world: &World,
    recorder: &Recorder,
    call: &Call,
    result: &Outcome,
    returned: u64,
) {
    if !call.is_full_stop_of_main() || *result != Outcome::Ok {
        return;
    }
    let Ok(status) = jet.instance_status(world.main) else {
        return;
    };
    let record = jet.last_stop_record(world.main).ok().flatten();
    let mut history = lock(&recorder.history);
    if record.as_ref().is_some_and(|r| r.grbit != 0) {
        // Another thread's partial stop or StopAndEmitLog, after this full stop.
        *history
            .unobservable
            .entry("stop record overwritten".to_owned())
            .or_insert(0) += 1;
    } else {
        history
            .after_stops
            .push(AfterStop::new(returned, &status, record.as_ref()));
    }
}

/// Retries a wind-down call while a racing term is in progress (it will finish, one way or
/// the other); bounded, with a yield so the term can run.
const WIND_DOWN_RETRIES_MAX: usize = 64;

/// The setup; see the module comment.
fn set_up(jet: &Jet<ShuttleRuntime>, config: &RunConfig, mutations: Mutations) -> JetResult<World> {
    let options = InstanceOptions {
        background_thread: config.engine.background_thread,
        mutations,
    };
    let main = jet.create_instance_with("main", options)?;
    jet.set_system_parameter(
        main,
        SystemParameter::CacheSizePages,
        config.engine.cache_size_pages,
    )?;
    jet.set_system_parameter(
        main,
        SystemParameter::CheckpointDepthMaxBytes,
        config.engine.checkpoint_depth_max_bytes,
    )?;
    jet.set_system_parameter(
        main,
        SystemParameter::VersionStoreMaxVersions,
        config.engine.version_store_max_versions,
    )?;
    // A shrunk big table is defragmented beside the threads' calls, not during the setup's
    // deletes: online defrag is switched on once they are committed.
    let defrag_after_setup = !config.setup_deleted_keys.is_empty();
    jet.set_system_parameter(
        main,
        SystemParameter::OnlineDefrag,
        u64::from(config.engine.online_defrag && !defrag_after_setup),
    )?;
    jet.init(main)?;
    let setup = jet.begin_session(main)?;
    let db = jet.create_database(setup, DATABASE_PATH)?;
    for table in 0..workload::TABLES {
        let t = jet.create_table(setup, db, &workload::table_name(table))?;
        if table == 0 && !config.initial_records.is_empty() {
            jet.begin_transaction(setup)?;
            for &(key, value) in &config.initial_records {
                jet.insert(
                    setup,
                    t,
                    &workload::key_bytes(key),
                    &workload::value_bytes(value),
                )?;
            }
            jet.commit_transaction(setup)?;
        }
        if table == 0 && !config.setup_deleted_keys.is_empty() {
            jet.begin_transaction(setup)?;
            for &key in &config.setup_deleted_keys {
                jet.seek(setup, t, &workload::key_bytes(key), SeekMode::Equal)?;
                jet.delete(setup, t)?;
            }
            jet.commit_transaction(setup)?;
        }
        jet.close_table(setup, t)?;
    }
    jet.close_database(setup, db)?;
    jet.end_session(setup)?;
    if defrag_after_setup {
        jet.set_system_parameter(
            main,
            SystemParameter::OnlineDefrag,
            u64::from(config.engine.online_defrag),
        )?;
    }

    // The run's planted bug is in every instance of the process, as a bug in the code is.
    let other_options = InstanceOptions {
        mutations,
        ..InstanceOptions::manual()
    };
    let other = jet.create_instance_with("other", other_options)?;
    jet.init(other)?;
    let holder = jet.begin_session(other)?;
    let foreign_database = jet.create_database(holder, "db/other.edb")?;
    let foreign_table = jet.create_table(holder, foreign_database, "t0")?;
    let foreign_session = jet.begin_session(other)?;
    jet.end_session(foreign_session)?;

    let uninitialized = jet.create_instance_with("uninitialized", InstanceOptions::manual())?;
    // Created and terminated (no init needed): its handle is stale.
    let terminated = jet.create_instance_with("terminated", InstanceOptions::manual())?;
    jet.term(terminated)?;
    Ok(World {
        main,
        uninitialized,
        terminated,
        foreign_session,
        foreign_database,
        foreign_table,
        other_session: holder,
    })
}

/// Reads the engine's end state in the model's terms.
fn end_state(jet: &Jet<ShuttleRuntime>, world: &World, table: &SessionTable) -> Option<EndState> {
    let observation = jet.observe(world.main).ok()?;
    let committed = observation.committed.get(DATABASE_PATH).map(|tables| {
        (0..workload::TABLES)
            .map(|t| {
                tables
                    .get(&workload::table_name(t))
                    .map(|records| {
                        records
                            .iter()
                            .map(|(k, v)| match record_outcome((k.clone(), v.clone())) {
                                Outcome::Record { key, value } => (key, value),
                                _ => unreachable!(),
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    });
    let mut sessions = Vec::new();
    for (thread, created) in table.created.iter().enumerate() {
        for (n, handle) in created.iter().enumerate() {
            if let Some(s) = observation.sessions.get(&handle.0) {
                let open_tables = observation
                    .cursors
                    .values()
                    .filter(|c| c.session == handle.0)
                    .count() as u32;
                sessions.push(SessionEnd {
                    created_by: (thread, u8::try_from(n).unwrap_or(u8::MAX)),
                    transaction_level: s.transaction_level,
                    context: s.context,
                    open_tables,
                });
            }
        }
    }
    Some(EndState {
        phase: format!("{:?}", observation.phase),
        committed,
        sessions,
        defrag_parked: observation.defrag_parked,
        caches_quiesced: observation.caches_quiesced,
    })
}

/// The simulated disk and the engine on it, set up and ready for the workload.
struct Started {
    io: Arc<MemIo>,
    tap: Arc<DiskTap>,
    version_meter: Arc<VersionMeter>,
    clock: Arc<ManualClock>,
    sequence: Arc<AtomicU64>,
    jet: Arc<Jet<ShuttleRuntime>>,
    world: World,
    marks: jetsim_engine::Marks,
    /// The marks' counts and the disk's mutating operations when the workload began.
    marks_at_start: Vec<(jetsim_engine::Mark, u64)>,
    ops_at_start: u64,
}

/// The disk (with the run's faults, off during setup), the tap over it, the engine and the
/// setup; then the faults start.
fn start(config: &RunConfig, mutations: Mutations) -> Started {
    let clock = Arc::new(ManualClock::new(0));
    let sequence = Arc::new(AtomicU64::new(0));
    let io = Arc::new(match config.faults {
        Some(faults) => {
            let mut plan = jetsim_engine::FaultPlan::swarm(faults.fault_seed);
            if !faults.io_errors {
                plan.read_error_ppm = 0;
                plan.write_error_ppm = 0;
                plan.sync_error_ppm = 0;
            }
            MemIo::with_faults(plan)
        }
        None => MemIo::new(),
    });
    // Setup runs on a perfect disk; the faults start with the workload.
    io.set_faults_enabled(false);
    let tap = Arc::new(DiskTap::new(Arc::clone(&io), Arc::clone(&sequence)));
    let version_meter = Arc::new(VersionMeter::default());
    let env = Environment::new(clock.clone(), tap.clone())
        .with_version_memory(Arc::clone(&version_meter) as Arc<dyn VersionMemory>);
    let jet = Arc::new(Jet::<ShuttleRuntime>::new(env));
    let world = set_up(&jet, config, mutations).expect("setup of a fresh engine cannot fail");
    // Coverage marks count the workload's paths, not the setup's.
    let marks = jet
        .marks(world.main)
        .expect("the instance under test exists");
    let marks_at_start = marks.counts();
    let ops_at_start = io.mutating_ops();
    tap.slow_disk.start(config);
    if let Some(faults) = config.faults {
        io.set_faults_enabled(true);
        if let Some(ops) = faults.power_cut_after_ops {
            io.cut_power_after_ops(Some(io.mutating_ops() + ops));
        }
        tap.cutter.arm(CutPlan {
            after_commit: faults.power_cut_after_commit,
            after_database_op: faults.power_cut_after_database_op,
            after_log_write: faults.power_cut_after_log_write,
            after_write_back: faults.power_cut_after_write_back,
            after_checkpoint: faults.power_cut_after_checkpoint,
        });
    }
    Started {
        io,
        tap,
        version_meter,
        clock,
        sequence,
        jet,
        world,
        marks,
        marks_at_start,
        ops_at_start,
    }
}

/// One simulated thread's life: its program, then the first part of the wind-down (it drops
/// every context it set, which only the setter may, retrying while a racing term is in
/// progress).
fn run_thread(
    jet: &Jet<ShuttleRuntime>,
    world: &World,
    recorder: &Recorder,
    mut bindings: Bindings,
    program: &[Call],
) {
    let thread = bindings.thread;
    for call in program {
        call_and_record(jet, world, recorder, &mut bindings, thread, call);
    }
    let contexts = std::mem::take(&mut bindings.contexts_set);
    for ses in contexts {
        for _ in 0..WIND_DOWN_RETRIES_MAX {
            let result = call_and_record(
                jet,
                world,
                recorder,
                &mut bindings,
                thread,
                &Call::ResetSessionContext { ses },
            );
            if result != Outcome::err(jetsim_engine::JetError::TermInProgress) {
                break;
            }
            shuttle::thread::yield_now();
        }
    }
}

/// One simulated thread per program, each running [`run_thread`]; returns when all joined.
fn run_threads(
    jet: &Arc<Jet<ShuttleRuntime>>,
    world: World,
    recorder: &Arc<Recorder>,
    sessions: &Arc<Mutex<SessionTable>>,
    workload: &Workload,
) {
    let handles: Vec<_> = workload
        .threads
        .iter()
        .cloned()
        .enumerate()
        .map(|(thread, program)| {
            let (jet, recorder) = (Arc::clone(jet), Arc::clone(recorder));
            let bindings = Bindings {
                thread,
                sessions: Arc::clone(sessions),
                ..Bindings::default()
            };
            shuttle::thread::spawn(move || run_thread(&jet, &world, &recorder, bindings, &program))
        })
        .collect();
    for handle in handles {
        handle.join().expect("a simulated thread panicked");
    }
}

/// The wind-down's second part, alone on the main thread after every thread joined: end
/// every session any thread made (under [`WindDown::EndSessions`]), and roll back every level
/// of every session still there.
fn wind_down_every_session(
    jet: &Jet<ShuttleRuntime>,
    world: &World,
    recorder: &Recorder,
    main_bindings: &mut Bindings,
    wind_down: WindDown,
) {
    let threads = recorder.threads;
    for thread in 0..threads {
        for n in 0..main_bindings.created_count(thread) {
            let ses = Ref::PeerCreated {
                thread: u8::try_from(thread).expect("few threads"),
                n: u8::try_from(n).unwrap_or(u8::MAX),
            };
            let call = |bindings: &mut Bindings, call: &Call| {
                call_and_record(jet, world, recorder, bindings, threads, call)
            };
            if wind_down == WindDown::EndSessions
                && call(main_bindings, &Call::EndSession { ses }).is_ok()
            {
                continue;
            }
            for _ in 0..=jetsim_engine::instance::TRANSACTION_LEVEL_MAX {
                if !call(main_bindings, &Call::Rollback { ses }).is_ok() {
                    break;
                }
            }
        }
    }
}

/// One execution's body, run on shuttle's main thread: start, one simulated thread per
/// program, the wind-down, then the end (a crash before the final term, or the final term).
/// `kept`: whether this execution's history is the one the run keeps (see [`Recorder`]).
fn execution(
    config: &RunConfig,
    workload: &Workload,
    mutations: Mutations,
    kept: bool,
    out: &Mutex<Option<History>>,
) {
    let Started {
        clock,
        sequence,
        io,
        tap,
        version_meter,
        jet,
        world,
        marks,
        marks_at_start,
        ops_at_start,
    } = start(config, mutations);
    let threads = workload.threads.len();
    let recorder = Arc::new(Recorder {
        threads,
        sequence,
        history: Mutex::new(History {
            workers: threads,
            online_defrag: config.engine.online_defrag,
            durable_commit_records_at_start: tap.durable_commit_records(),
            ..History::default()
        }),
        clock,
        disk: Arc::clone(&tap),
        version_meter,
        flag_changers_in_flight: AtomicU64::new(0),
        flag_changer_events: AtomicU64::new(0),
        kept,
    });
    let sessions = Arc::new(Mutex::new(SessionTable::default()));
    run_threads(&jet, world, &recorder, &sessions, workload);
    let mut main_bindings = Bindings {
        thread: threads,
        sessions: Arc::clone(&sessions),
        ..Bindings::default()
    };
    let crash_before_term = config.faults.is_some_and(|f| f.crash_before_term);
    if !crash_before_term {
        wind_down_every_session(
            &jet,
            &world,
            &recorder,
            &mut main_bindings,
            config.wind_down,
        );
    }
    let end = end_state(&jet, &world, &lock(&sessions));
    let failure = jet.instance_failure(world.main).ok().flatten();
    let mut crash = Crash {
        io: &io,
        ops_at_start,
        ops_at_death: None,
        failure,
        mutations,
    };
    let history = |end| {
        let mut history = lock(&recorder.history).clone();
        history.end_state = end;
        tap.finish(&mut history);
        history.marks = marks_hit(&marks, &marks_at_start);
        history
    };
    if crash_before_term {
        // The machine dies here, with whatever transactions the programs left open (recovery
        // must undo them, nested rollbacks and all): no wind-down, no final term, nothing
        // more reaches the disk (dropping the engine below may still try: its background
        // thread, the instances' teardown).
        crash.ops_at_death = Some(io.mutating_ops());
        io.cut_power_after_ops(crash.ops_at_death);
        drop(jet);
        let mut history = history(end);
        crash.crash_and_recover(&mut history);
        *lock(out) = Some(history);
        return;
    }
    let sharing_probe = config
        .faults
        .is_none()
        .then(|| probe_database_sharing(&jet, &world, &tap));
    final_term(&jet, &world, &recorder, &mut main_bindings);
    if kept {
        count_scheduling_points();
    }
    let mut history = history(end);
    history.sharing_probe = sharing_probe;
    drop(jet);
    if config.faults.is_some() {
        crash.crash_and_recover(&mut history);
    } else {
        tap.read_back_after_term(&mut history, mutations);
    }
    *lock(out) = Some(history);
}

/// The harness's probe of who owns the database file ([`SharingProbe`]), after the wind-down
/// and before the final term, alone on the main thread: the other instance's session
/// attaches the file, and detaches it if it could. Its files are the other instance's while
/// it runs ([`DiskTap::other_instance_opens`]).
fn probe_database_sharing(jet: &Jet<ShuttleRuntime>, world: &World, tap: &DiskTap) -> SharingProbe {
    tap.other_instance_opens.store(true, Ordering::Relaxed);
    let attach = attach_outcome(jet.attach_database(world.other_session, DATABASE_PATH));
    let detach = matches!(attach, Outcome::Attached { .. })
        .then(|| unit(jet.detach_database(world.other_session, DATABASE_PATH)));
    let missing_attach =
        attach_outcome(jet.attach_database(world.other_session, MISSING_DATABASE_PATH));
    tap.other_instance_opens.store(false, Ordering::Relaxed);
    SharingProbe {
        attach,
        detach,
        missing_attach,
    }
}

/// The harness's final term of the main instance after the wind-down, recorded; then, whatever
/// it answered, a dirty term, so no background thread is left waiting (a failed final term is
/// reported by the checkers; this keeps shuttle from also calling it a deadlock).
fn final_term(
    jet: &Jet<ShuttleRuntime>,
    world: &World,
    recorder: &Recorder,
    bindings: &mut Bindings,
) {
    call_and_record(
        jet,
        world,
        recorder,
        bindings,
        recorder.threads,
        &Call::Term {
            instance: InstanceRef::Main,
            grbit: jetsim_engine::term_grbit::ABRUPT,
        },
    );
    let _ = jet.term2(world.main, jetsim_engine::term_grbit::DIRTY);
}

/// The coverage marks the workload hit (counts since `at_start`), by name.
fn marks_hit(
    marks: &jetsim_engine::Marks,
    at_start: &[(jetsim_engine::Mark, u64)],
) -> std::collections::BTreeMap<String, u64> {
    marks
        .counts()
        .into_iter()
        .zip(at_start)
        .filter(|((_, now), (_, then))| now > then)
        .map(|((mark, now), (_, then))| (mark.name().to_owned(), now - then))
        .collect()
}

/// The end of a run with disk faults: the disk, where the workload's disk operations began,
/// and the instance's fail-stop failure (read before the final term).
struct Crash<'a> {
    io: &'a Arc<MemIo>,
    ops_at_start: u64,
    /// When the machine died before the final term: the operations made up to then. The
    /// power "cut" that fails anything after is the crash itself, not a crash point.
    ops_at_death: Option<u64>,
    failure: Option<jetsim_engine::Failure>,
    /// The engine under test recovers: its planted bug too (a recovery bug shows only here).
    mutations: Mutations,
}

impl Crash<'_> {
    /// The crash: faults off (the reboot), then what the disk keeps of unsynced writes is
    /// decided by the plan's seeded loss and tears; then recovery on the same disk.
    fn crash_and_recover(&self, history: &mut History) {
        let io = self.io;
        let ops_at_end = self.ops_at_death.unwrap_or_else(|| io.mutating_ops());
        history.disk_ops = ops_at_end - self.ops_at_start;
        history.crash_point = self.locate_power_cut(history, &io.injected_faults());
        io.set_faults_enabled(false);
        io.cut_power_after_ops(None);
        io.crash_seeded();
        history.io_faults = true;
        history.injected_faults = io
            .injected_faults()
            .iter()
            .map(|fault| format!("[injected] {fault:?}"))
            .collect();
        let (recovered, work) = recover(
            Arc::clone(io),
            Arc::new(ManualClock::new(0)),
            self.mutations,
        );
        history.recovered = Some(recovered);
        history.recovery_work = work;
    }

    /// Where the power cut landed and what met it: a background task the engine names, else
    /// the first call (by response) that got an I/O error, else a background task.
    fn locate_power_cut(
        &self,
        history: &History,
        injected: &[jetsim_engine::InjectedFault],
    ) -> Option<CrashPoint> {
        let (op_index, operation) = injected.iter().find_map(|fault| match fault {
            jetsim_engine::InjectedFault::PowerCut {
                op_index,
                operation,
            } => Some((*op_index, operation.clone())),
            _ => None,
        })?;
        if self.ops_at_death.is_some_and(|death| op_index >= death) {
            return None;
        }
        let first_io_error = || {
            history
                .events
                .iter()
                .filter(|e| e.outcome.is_io_error())
                .min_by_key(|e| e.returned)
        };
        let met_by = match self.failure.map(|f| f.during) {
            Some(jetsim_engine::Activity::CheckpointFlush) => "checkpoint flush".to_owned(),
            Some(jetsim_engine::Activity::DefragPass) => "defrag pass".to_owned(),
            // No call got the I/O error: a background task met the cut, and a term removed
            // the instance before its failure could be read.
            _ => first_io_error().map_or_else(
                || "background task".to_owned(),
                |event| format!("Jet{:?}", event.call.jet_call()),
            ),
        };
        Some(CrashPoint {
            op_index: op_index.saturating_sub(self.ops_at_start),
            operation,
            met_by,
        })
    }
}

/// A fresh engine on the crashed disk: init recovers; returns the committed records it finds
/// (or why it could not) and the work recovery reported.
fn recover(
    io: Arc<MemIo>,
    clock: Arc<ManualClock>,
    mutations: Mutations,
) -> (Result<crate::history::Tables, String>, Option<RecoveryWork>) {
    let jet = Jet::<ShuttleRuntime>::new(Environment::new(clock, io));
    let (recovered, report) = recover_and_read(&jet, mutations);
    (recovered, report.as_ref().map(RecoveryWork::from_report))
}

/// A fresh instance on `jet`'s disk, with the run's planted bug (a recovery bug shows here
/// too): init recovers, then every table is read. Returns the records found, per table (or why
/// they could not be read), and what recovery reported (when init got that far).
fn recover_and_read<R: jetsim_engine::runtime::Runtime>(
    jet: &Jet<R>,
    mutations: Mutations,
) -> (
    Result<crate::history::Tables, String>,
    Option<jetsim_engine::RecoveryReport>,
) {
    let options = InstanceOptions {
        mutations,
        ..InstanceOptions::manual()
    };
    let recovered = jet
        .create_instance_with("main", options)
        .map_err(|e| format!("create_instance: {e:?}"))
        .and_then(|instance| {
            jet.init(instance)
                .map_err(|e| format!("init (recovery): {e:?}"))?;
            Ok(instance)
        });
    let report = recovered
        .as_ref()
        .ok()
        .and_then(|&instance| jet.last_recovery_report(instance).ok().flatten());
    (
        recovered.and_then(|instance| read_recovered(jet, instance)),
        report,
    )
}

/// The instance that attaches the database file alone ([`TermDisk::database_alone`]): a name
/// other than the run's, so its log (and the log's signature) is new.
const ELSEWHERE_INSTANCE: &str = "elsewhere";

/// [`TermDisk::database_alone`]: a fresh instance with a new log of its own (`copy` holds
/// the database file and nothing else) attaches the file and reads it table by table.
fn read_database_alone(
    copy: CrashCopy,
    mutations: Mutations,
) -> Result<crate::history::Tables, String> {
    let jet = Jet::<jetsim_engine::StdRuntime>::new(Environment::new(
        Arc::new(ManualClock::new(0)),
        Arc::new(copy),
    ));
    let options = InstanceOptions {
        mutations,
        ..InstanceOptions::manual()
    };
    let instance = jet
        .create_instance_with(ELSEWHERE_INSTANCE, options)
        .map_err(|e| format!("create_instance: {e:?}"))?;
    jet.init(instance).map_err(|e| format!("init: {e:?}"))?;
    read_recovered(&jet, instance)
}

/// The committed records of the recovered database, read through a session.
fn read_recovered<R: jetsim_engine::runtime::Runtime>(
    jet: &Jet<R>,
    instance: jetsim_engine::InstanceHandle,
) -> Result<crate::history::Tables, String> {
    let session = jet
        .begin_session(instance)
        .map_err(|e| format!("begin_session: {e:?}"))?;
    jet.attach_database(session, DATABASE_PATH)
        .map_err(|e| format!("attach_database after recovery: {e:?}"))?;
    let observation = jet
        .observe(instance)
        .map_err(|e| format!("observe: {e:?}"))?;
    let tables = observation
        .committed
        .get(DATABASE_PATH)
        .ok_or("the database is not attached after recovery")?;
    let mut recovered = Vec::new();
    for t in 0..workload::TABLES {
        let records = tables
            .get(&workload::table_name(t))
            .ok_or_else(|| format!("table t{t} is missing after recovery"))?;
        let mut rows = Vec::new();
        for (k, v) in records {
            match record_outcome((k.clone(), v.clone())) {
                Outcome::Record { key, value } => rows.push((key, value)),
                other => return Err(format!("unreadable record {other:?}")),
            }
        }
        recovered.push(rows);
    }
    jet.end_session(session)
        .map_err(|e| format!("end_session: {e:?}"))?;
    jet.term(instance)
        .map_err(|e| format!("term after recovery: {e:?}"))?;
    Ok(recovered)
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    Completed(Box<History>),
    /// The engine or the harness panicked, or shuttle found a deadlock.
    Panicked(String),
}

/// Runs `workload` once under the run's schedule, on a fresh OS thread (shuttle keeps
/// per-thread state and installs a panic hook).
pub fn run(config: &RunConfig, workload: &Workload, mutations: Mutations) -> RunEnd {
    let config = config.clone();
    let workload = workload.clone();
    std::thread::spawn(move || run_here(&config, &workload, mutations))
        .join()
        .unwrap_or_else(|payload| RunEnd::Panicked(panic_message(&*payload)))
}

/// Runs `workload` on the calling thread. The caller owns the thread's hygiene: after a run
/// that panicked, shuttle's per-thread state may be left behind, so the campaign retires that
/// OS thread and continues on a fresh one.
pub fn run_here(config: &RunConfig, workload: &Workload, mutations: Mutations) -> RunEnd {
    if std::env::var_os("SHUTTLE_RANDOM_SEED").is_some() {
        // shuttle's schedulers replace every explicit seed with this variable's value, which
        // would make a jetsim seed mean something else.
        return RunEnd::Panicked(
            "SHUTTLE_RANDOM_SEED is set; unset it so jetsim's seed decides the schedule".into(),
        );
    }
    let out = Arc::new(Mutex::new(None));
    let result = {
        let out = Arc::clone(&out);
        let run_config = config.clone();
        let workload = workload.clone();
        let (seed, schedule) = (config.schedule_seed, config.schedule);
        // PCT and URW run twice (see below) and keep the second; random runs once.
        let iterations = match schedule {
            Schedule::Random => 1,
            Schedule::Pct { .. } | Schedule::Urw => 2,
        };
        let started = std::sync::atomic::AtomicUsize::new(0);
        let body = move || {
            let kept = started.fetch_add(1, Ordering::SeqCst) + 1 == iterations;
            execution(&run_config, &workload, mutations, kept, &out)
        };
        let mut shuttle_config = shuttle::Config::new();
        shuttle_config.failure_persistence = shuttle::FailurePersistence::None;
        shuttle_config.max_steps = shuttle::MaxSteps::FailAfter(RUN_STEPS_MAX as usize);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            crate::world::panic_hook::in_run(|| match schedule {
                Schedule::Random => {
                    let scheduler =
                        shuttle::scheduler::RandomScheduler::new_from_seed(seed, iterations);
                    shuttle::Runner::new(scheduler, shuttle_config).run(body)
                }
                Schedule::Pct { depth } => {
                    // shuttle's PCT learns the execution's length in its first iteration and
                    // only places its priority change points from the second on: run two and
                    // keep the second's history (the first is a deterministic calibration).
                    let scheduler =
                        shuttle::scheduler::PctScheduler::new_from_seed(seed, depth, iterations);
                    shuttle::Runner::new(scheduler, shuttle_config).run(body)
                }
                // Like PCT, URW estimates each thread's scheduling points in its first
                // iteration (a plain random walk) and samples uniformly from the second on.
                Schedule::Urw => {
                    let scheduler =
                        shuttle::scheduler::UrwRandomScheduler::new_from_seed(seed, iterations);
                    shuttle::Runner::new(scheduler, shuttle_config).run(body)
                }
            })
        }))
    };
    match result {
        Ok(_) => match lock(&out).take() {
            Some(history) => RunEnd::Completed(Box::new(history)),
            None => RunEnd::Panicked("execution produced no history".into()),
        },
        Err(payload) => RunEnd::Panicked(panic_message(&*payload)),
    }
}

#[cfg(test)]
mod tests {
    use super::LogAppendWatch;

    #[test]
    fn the_log_append_audit_flags_only_different_bytes_over_durable_ones() {
        let durable = [1u8, 2, 3, 4];
        let rewritten =
            |offset, bytes: &[u8]| LogAppendWatch::first_rewritten_byte(&durable, offset, bytes);
        // Appending past the durable end, or writing the durable bytes again (a group flush
        // and a flush under the latch write one range alike), is the log's normal life.
        assert_eq!(rewritten(4, &[9, 9]), None);
        assert_eq!(rewritten(6, &[9]), None);
        assert_eq!(rewritten(1, &[2, 3]), None);
        assert_eq!(
            rewritten(2, &[3, 4, 5, 6]),
            None,
            "same durable prefix, new tail"
        );
        // Any durable byte changed is a rewrite, found where it first differs.
        assert_eq!(rewritten(0, &[1, 2, 7]), Some(2));
        assert_eq!(rewritten(3, &[0, 5]), Some(3));
    }
}
