//! Everything a run is, derived from one `u64` seed ("swarm testing", as TigerBeetle's VOPR):
//! engine parameters, workload shape, scheduler, then the workload itself through proptest
//! strategies driven by a generator seeded from the same number.

use crate::workload::{self, Reach, StopPlan, Workload, WorkloadShape};
use jetsim_engine::storage::MIN_CACHE_SIZE_PAGES;
// The engine's generator, so a seed means the same run whatever the dependencies' versions do
// to theirs, and the workspace has one SplitMix64.
use jetsim_engine::SplitMix64;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};

/// How shuttle picks the interleaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Schedule {
    /// Uniformly random thread choice at every step.
    Random,
    /// Probabilistic concurrency testing with this bug depth.
    Pct { depth: usize },
    /// shuttle's uniform random walk (URW, "Selectively Uniform Concurrency Testing",
    /// ASPLOS 2025): a first execution counts each thread's scheduling points, the second
    /// weighs every choice by the points a thread has left, so interleavings are sampled
    /// uniformly rather than biased towards switching early.
    Urw,
}

/// Which schedulers a campaign draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Scheduling {
    /// shuttle's random scheduler only.
    Random,
    /// shuttle's PCT scheduler only.
    Pct,
    /// shuttle's uniform random walk scheduler only.
    Urw,
    /// Each seed draws one of the three.
    Mix,
}

/// Engine parameters drawn from the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineParameters {
    pub cache_size_pages: u64,
    pub checkpoint_depth_max_bytes: u64,
    /// 65,536, which no workload fills, but in the small-version-store runs
    /// ([`SMALL_VERSION_STORE_RUNS_IN`]). Whether a write finds room does not depend on when
    /// the background cleanup ran (a full store cleans inline first), so the model decides
    /// it from the versions still live.
    pub version_store_max_versions: u64,
    pub online_defrag: bool,
    pub background_thread: bool,
}

/// `explore --faults` cuts the power at a mutating disk operation below this (half the runs),
/// counted from the end of setup. Fault runs make 9 such operations at the median (6 and 13
/// at the quartiles, 91 at most over seeds 0..10,000), so about 70% of the cuts land inside
/// the run; the other runs crash at their end. `jetsim sweep` tries every operation.
pub const POWER_CUT_OPS_MAX: u64 = 16;

/// A whole run, derived from its seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    pub seed: u64,
    pub schedule: Schedule,
    pub engine: EngineParameters,
    pub shape: WorkloadShape,
    /// Records committed in table t0 before the threads start: (key, value). A few hundred
    /// in runs with the widest key range.
    pub initial_records: Vec<(u8, u8)>,
    /// Keys of `initial_records` the setup then deletes, in a second committed transaction
    /// ([`SHRUNK_BIG_TABLE_RUNS_IN`]): a run of neighbours that empties whole leaves, and
    /// whole internal nodes' worth of them, before the threads start. Left out of the JSON
    /// when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup_deleted_keys: Vec<u8>,
    /// Shuttle's own seed for the schedule.
    pub schedule_seed: u64,
    /// Disk faults and a crash (`explore --faults`); `None` for a run on a perfect disk.
    #[serde(default)]
    pub faults: Option<FaultSettings>,
    /// A slow disk ([`SLOW_DISK_RUNS_IN`]): each read of the database file during the
    /// workload completes only after the disk served this many more operations (0: reads are
    /// instant; see `world::harness::SlowDisk`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_latency_ops: u32,
    /// Slow writes (half the slow-disk runs): each write of the database file during the
    /// workload lands only after the disk served this many more operations (0: writes land
    /// at once), so a background write-back's batch stays out while calls, an eviction or a
    /// stop's flush run beside it (see `world::harness::SlowDisk`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub write_latency_ops: u32,
    /// How the sessions' work ends after every thread joined ([`END_SESSIONS_RUNS_IN`]).
    #[serde(default, skip_serializing_if = "WindDown::is_roll_back")]
    pub wind_down: WindDown,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// How the harness ends the sessions' work once every thread joined, before the final term.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindDown {
    /// Roll back every level of every session the threads made, one `JetRollback` at a
    /// time; the sessions stay for the final term to end.
    #[default]
    RollBack,
    /// End every session the threads made (`JetEndSession`, which rolls back every level
    /// the session still has open, closes its tables and its databases); a session that
    /// cannot be ended is rolled back as above. The only path by which a session with
    /// nested levels open ends in most runs.
    EndSessions,
}

impl WindDown {
    pub fn is_roll_back(&self) -> bool {
        *self == WindDown::RollBack
    }

    /// Run `seed`'s wind-down ([`END_SESSIONS_RUNS_IN`]).
    fn of_run(seed: u64) -> WindDown {
        if end_sessions_switch(seed) {
            WindDown::EndSessions
        } else {
            WindDown::RollBack
        }
    }
}

/// One run in this many winds down by ending its sessions ([`WindDown::EndSessions`]).
pub const END_SESSIONS_RUNS_IN: u64 = 2;

/// Whether run `seed` winds down by ending its sessions: a stream of its own, so the runs'
/// draws stay as they were.
fn end_sessions_switch(seed: u64) -> bool {
    SplitMix64::new(seed ^ 0xE5D5_E551_0E5D_5E55).chance(1, END_SESSIONS_RUNS_IN)
}

/// One run in this many is a slow-disk run (the swarm's slow-disk switch, a stream of its
/// own, so the other runs' draws stay as they were): every read of the database file during
/// the workload completes only after the disk served [`SLOW_READ_LATENCY_OPS`] more
/// operations (`world::harness::SlowDisk`), over a cache too small for the table's leaves,
/// written back after every change (checkpoint depth 0, background thread). A page read
/// outside the instance latch is then often overtaken: other sessions read the same leaves,
/// change them, the flusher writes them back and the cache evicts them while the read is in
/// flight, which is the window the engine's overtaken-read rule exists for. Without the slow
/// disk, a default campaign reached that window about once in 10,000 runs.
pub const SLOW_DISK_RUNS_IN: u64 = 4;
/// How many more disk operations a slow-disk run's read waits for.
pub const SLOW_READ_LATENCY_OPS: u32 = 64;
/// One run in this many of those the slow-disk switch leaves off is a slow-write run (a
/// stream of its own): the same crowded cache written back after every change, reads
/// instant, and each database write landing only after the disk served up to twice
/// [`SLOW_WRITE_LATENCY_OPS`] more operations, drawn per write, so writes may land out of
/// order. A background write-back's batch is then out while calls, an eviction or a stop's
/// flush write the same pages: the window the in-flight frames exist for, which writes
/// landing at once closed under the scheduler. A switch apart from the slow disk's: with
/// writes slow too, a read outside the latch is rarely overtaken by a write-back that lands
/// before it completes, and the slow-disk runs keep that window.
pub const SLOW_WRITE_RUNS_IN: u64 = 8;
/// How many more disk operations a slow write waits for, on average, before it lands.
pub const SLOW_WRITE_LATENCY_OPS: u32 = 64;
/// The cache of a slow-disk run: the smallest the engine accepts.
pub const SLOW_DISK_CACHE_SIZE_PAGES: u64 = 8;

/// What the slow-disk switch changes in a run it turns on.
#[derive(Debug, Clone, Copy)]
struct SlowDiskSwitch {
    /// A key range of 24 to 47 keys with large values: one table of about ten leaves, more
    /// than the cache holds, every leaf read and written by every thread.
    key_range: u8,
    /// Reads are slow (the slow-disk runs); writes land at once.
    slow_reads: bool,
    /// Writes are slow (the slow-write runs, [`SLOW_WRITE_RUNS_IN`]); reads are instant.
    slow_writes: bool,
}

/// One slow-write run in this many ends its threads' programs on the detach race
/// ([`Reach::detach_race`]) whatever its own draw said: the slow writes keep a background
/// write-back's batch out while the last session detaches, the window in which a detach must
/// wait for the batch before it lets the file go (the detached-unwritten rule). Drawn
/// elsewhere, a detach met a batch in flight in about one run in 5,000.
pub const SLOW_WRITE_DETACH_RACE_RUNS_IN: u64 = 2;

/// Whether run `seed`, a slow-write run, races its detaches: a stream of its own, so the
/// other runs keep their meaning.
fn slow_write_detach_race_switch(seed: u64, slow_disk: Option<SlowDiskSwitch>) -> bool {
    slow_disk.is_some_and(|switch| switch.slow_writes)
        && SplitMix64::new(seed ^ 0xDE7A_C4B5_10E5_0000).chance(1, SLOW_WRITE_DETACH_RACE_RUNS_IN)
}

/// One run in this many nests its nested-transaction piece deep ([`Reach::deep_nesting`]).
pub const DEEP_NESTING_RUNS_IN: u64 = 8;

/// Whether run `seed` nests deep: a stream of its own, so other seeds keep their meaning.
fn deep_nesting_switch(seed: u64) -> bool {
    SplitMix64::new(seed ^ 0xDEE9_DEE9_DEE9_DEE9).chance(1, DEEP_NESTING_RUNS_IN)
}

/// One run in this many has a version store of [`SMALL_VERSION_STORE_VERSIONS`] versions (a
/// stream of its own; only where the setup's records fit in it), so writes meet
/// `VersionStoreOutOfMemory` and the live-version count decides them.
pub const SMALL_VERSION_STORE_RUNS_IN: u64 = 3;
/// The sizes a small version store is drawn from.
pub const SMALL_VERSION_STORE_VERSIONS: std::ops::RangeInclusive<u64> = 1..=4;

/// The version store's size in run `seed`, when it is a small-version-store run and the
/// setup's `initial_records` fit in it (the setup commits them in one transaction, a
/// version each).
fn small_version_store(seed: u64, initial_records: &[(u8, u8)]) -> Option<u64> {
    let mut rng = SplitMix64::new(seed ^ 0x5E45_10E5_5E45_10E5);
    let versions = &SMALL_VERSION_STORE_VERSIONS;
    rng.chance(1, SMALL_VERSION_STORE_RUNS_IN)
        .then(|| versions.start() + rng.below(versions.end() - versions.start() + 1))
        .filter(|&versions| initial_records.len() as u64 <= versions)
}

/// One [`StopPlan::PartialThenFull`] run in this many is [`StopPlan::PartialOnly`].
pub const PARTIAL_ONLY_RUNS_IN: u64 = 2;

/// Whether a partial-then-full run `seed` leaves its full stop out: a stream of its own, so
/// the other plans' seeds keep their meaning.
fn partial_only_switch(seed: u64) -> bool {
    SplitMix64::new(seed ^ 0x9A27_1A10_9A27_1A10).chance(1, PARTIAL_ONLY_RUNS_IN)
}

/// One run with the widest key range in this many shrinks its big table in the setup
/// ([`RunConfig::setup_deleted_keys`]), with online defrag on and the background thread: the
/// tree of three levels built by the setup's inserts loses a run of neighbouring records, so
/// defrag merges the emptied leaves beside the threads' calls and then, once an internal node
/// is left with few children, internal nodes (the separator between them comes down). Without
/// it, defrag merged two internal nodes in 1 of 10,000 runs.
pub const SHRUNK_BIG_TABLE_RUNS_IN: u64 = 2;
/// How many neighbouring records the setup of a shrunk big table deletes (of about 150): an
/// internal node's children hold about 60.
pub const SETUP_DELETES: std::ops::RangeInclusive<u64> = 50..=100;

/// The keys run `seed`'s setup deletes (none unless its big table is shrunk): a run of
/// neighbours from `initial_records`, drawn from a stream of its own so other seeds keep
/// their meaning. A shrunk table's run has online defrag on, with the background thread.
fn setup_deleted_keys(
    seed: u64,
    reach: Reach,
    initial_records: &[(u8, u8)],
    engine: &mut EngineParameters,
) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed ^ 0x5B41_7AB1_E5B4_17AB);
    if reach.key_range != workload::KEY_RANGE_MAX || !rng.chance(1, SHRUNK_BIG_TABLE_RUNS_IN) {
        return Vec::new();
    }
    engine.online_defrag = true;
    engine.background_thread = true;
    let deletes =
        SETUP_DELETES.start() + rng.below(SETUP_DELETES.end() - SETUP_DELETES.start() + 1);
    let deletes = (deletes as usize).min(initial_records.len());
    let first = rng.below((initial_records.len() - deletes + 1) as u64) as usize;
    initial_records[first..first + deletes]
        .iter()
        .map(|&(key, _)| key)
        .collect()
}

/// One run in this many races the stop against an online defrag pass
/// ([`Reach::defrag_at_stop`]): a table of several leaves (a wide key range, large values),
/// online defrag on with the background thread, and the stopper emptying a run of
/// neighbouring records right before it stops. Without it, defrag found pages to merge in
/// about 2% of runs, and a stop met a pass moving pages in about 1 run in 10,000.
pub const DEFRAG_AT_STOP_RUNS_IN: u64 = 8;
/// The key range of a defrag-at-stop run whose own draw was narrower: about ten leaves of
/// large records, half of them set up.
pub const DEFRAG_AT_STOP_KEY_RANGE: u8 = workload::WIDE_KEY_RANGE + 24;

/// Whether run `seed` races its stop against online defrag: a stream of its own, so other
/// seeds keep their meaning.
fn defrag_at_stop_switch(seed: u64) -> bool {
    SplitMix64::new(seed ^ 0xDEF2_A6DE_F2A6_DEF2).chance(1, DEFRAG_AT_STOP_RUNS_IN)
}

impl SlowDiskSwitch {
    /// The run's read and write latencies, in disk operations (0: instant).
    fn latencies_ops(switch: Option<SlowDiskSwitch>) -> (u32, u32) {
        switch.map_or((0, 0), |switch| {
            (
                if switch.slow_reads {
                    SLOW_READ_LATENCY_OPS
                } else {
                    0
                },
                if switch.slow_writes {
                    SLOW_WRITE_LATENCY_OPS
                } else {
                    0
                },
            )
        })
    }
}

/// The slow-disk switch, then, for runs it leaves off, the slow-write switch: each a stream
/// of its own, so the slow-disk runs and every other run keep their meaning.
fn slow_disk_switch(seed: u64) -> Option<SlowDiskSwitch> {
    let draw = |stream: u64, runs_in: u64, slow_reads: bool| {
        let mut rng = SplitMix64::new(seed ^ stream);
        rng.chance(1, runs_in).then(|| SlowDiskSwitch {
            key_range: workload::WIDE_KEY_RANGE + 8 + rng.below(24) as u8,
            slow_reads,
            slow_writes: !slow_reads,
        })
    };
    draw(0x5104_D15C_5104_D15C, SLOW_DISK_RUNS_IN, true)
        .or_else(|| draw(0x5104_3A17_5104_3A17, SLOW_WRITE_RUNS_IN, false))
}

/// The disk faults of a run: `engine::env::FaultPlan::swarm(fault_seed)` (I/O error rates,
/// what a crash loses or tears), and where the power is cut, counted in mutating disk
/// operations after setup. The run always ends in a crash and a recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    pub fault_seed: u64,
    pub power_cut_after_ops: Option<u64>,
    /// Crash as soon as the threads are done, with no final term (nothing flushed).
    #[serde(default)]
    pub crash_before_term: bool,
    /// The plan's seeded read, write and sync errors; off in a crash-point sweep, where the
    /// power cut is the only fault before the crash.
    #[serde(default = "io_errors_default")]
    pub io_errors: bool,
    /// The power is cut right after the response of this successful commit (0-based, over
    /// all threads): see `world::power_cut`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_cut_after_commit: Option<u64>,
    /// The power is cut right after this write, sync or truncation of the database file
    /// (0-based, after setup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_cut_after_database_op: Option<u64>,
    /// The power is cut right after this write to the log (0-based, after setup), before its
    /// sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_cut_after_log_write: Option<u64>,
    /// The power is cut right after this write-back (0-based, after setup): a database-file
    /// write, the first after a log sync (see `world::power_cut`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_cut_after_write_back: Option<u64>,
    /// The power is cut right after this checkpoint became durable (0-based, after setup):
    /// the checkpoint file's sync (see `world::power_cut`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_cut_after_checkpoint: Option<u64>,
}

fn io_errors_default() -> bool {
    true
}

/// One default run in [`CRASH_RUNS_IN`] ends in a crash and a recovery that must find exactly
/// the committed data (the swarm's crash switch, a stream of its own): on a perfect disk, no
/// I/O errors; in five of six the power is cut during the run (as at one point of a
/// crash-point sweep: every operation after it fails, and the calls that met it are in
/// doubt), at a seeded disk operation, right after an acknowledged commit, right after a
/// database-file write or sync, right after a log write, or right after a write-back (a
/// database write, the first after a log sync: `world::power_cut`); and no final term
/// in half, so what the log held unsynced is what the crash may lose, tear or garble. A run
/// cut at a write-back is also shaped for it: a small cache, no background flush, trees that
/// split and long transactions, so a split's eviction flushes the log in its middle (a tree
/// operation logged page by page is then torn by the cut). One crash run in
/// [`CHECKPOINT_CUT_CRASH_RUNS_IN`] instead cuts right after a checkpoint became durable (a
/// stream of its own, so the other crash runs keep their meaning). Without the crash switch,
/// acknowledged commits, the write-ahead rule, the checkpoint and the log's checksums would
/// only be checked under `--faults` and `sweep`.
pub const CRASH_RUNS_IN: u64 = 3;

/// One crash run in this many cuts the power right after a checkpoint became durable, in a
/// run shaped for it ([`shape_for_switches`]).
pub const CHECKPOINT_CUT_CRASH_RUNS_IN: u64 = 6;

fn crash_switch(seed: u64) -> Option<FaultSettings> {
    let mut rng = SplitMix64::new(seed ^ 0xC4A5_4C4A_5C4A_54C4);
    if !rng.chance(1, CRASH_RUNS_IN) {
        return None;
    }
    let fault_seed = rng.next_u64();
    let (mut after_ops, mut after_commit) = (None, None);
    let (mut after_database_op, mut after_log_write) = (None, None);
    let mut after_write_back = None;
    // The database file's operations get two shares: a page written back before its log
    // shows only when the cut lands right after it.
    match rng.below(6) {
        0 => after_ops = Some(rng.below(POWER_CUT_OPS_MAX)),
        1 => after_commit = Some(rng.below(POWER_CUT_COMMITS_MAX)),
        2 | 3 => after_database_op = Some(rng.below(POWER_CUT_DATABASE_OPS_MAX)),
        4 => after_log_write = Some(rng.below(POWER_CUT_LOG_WRITES_MAX)),
        // A run with fewer write-backs crashes at its end.
        _ => after_write_back = Some(rng.below(POWER_CUT_WRITE_BACKS_MAX)),
    }
    let mut checkpoint_rng = SplitMix64::new(seed ^ 0xC8EC_C8EC_C8EC_C8EC);
    let after_checkpoint = checkpoint_rng
        .chance(1, CHECKPOINT_CUT_CRASH_RUNS_IN)
        .then(|| checkpoint_rng.below(POWER_CUT_CHECKPOINTS_MAX));
    if after_checkpoint.is_some() {
        (after_ops, after_commit) = (None, None);
        (after_database_op, after_log_write, after_write_back) = (None, None, None);
    }
    Some(FaultSettings {
        fault_seed,
        power_cut_after_ops: after_ops,
        crash_before_term: rng.chance(1, 2),
        io_errors: false,
        power_cut_after_commit: after_commit,
        power_cut_after_database_op: after_database_op,
        power_cut_after_log_write: after_log_write,
        power_cut_after_write_back: after_write_back,
        power_cut_after_checkpoint: after_checkpoint,
    })
}

/// The crash switch cuts the power after one of the first this many acknowledged commits.
pub const POWER_CUT_COMMITS_MAX: u64 = 4;
/// The crash switch cuts the power after one of the first this many database-file writes
/// and syncs.
pub const POWER_CUT_DATABASE_OPS_MAX: u64 = 8;
/// The crash switch cuts the power after one of the first this many log writes.
pub const POWER_CUT_LOG_WRITES_MAX: u64 = 4;
/// The crash switch cuts the power after one of the first this many write-backs (database
/// writes, each the first after a log sync): in a run shaped for it the first come as the threads' long
/// transactions outgrow the cache, later ones mostly from reads' evictions and the stop's
/// flush (over 1,000 such runs, a planted per-page logged split was caught in 12% with the
/// first write-back, 8% with the second, 5% with the fourth).
pub const POWER_CUT_WRITE_BACKS_MAX: u64 = 2;
/// The crash switch's cuts that shape the run they end (see [`shape_for_switches`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrashCut {
    WriteBack,
    Checkpoint,
}

impl CrashCut {
    fn of(faults: FaultSettings) -> Option<CrashCut> {
        if faults.power_cut_after_checkpoint.is_some() {
            Some(CrashCut::Checkpoint)
        } else if faults.power_cut_after_write_back.is_some() {
            Some(CrashCut::WriteBack)
        } else {
            None
        }
    }
}

/// The crash switch cuts the power right after one of the first this many checkpoints made
/// durable: the background flush's, mostly, in a run shaped for it.
pub const POWER_CUT_CHECKPOINTS_MAX: u64 = 3;
/// The checkpoint depth of a run cut at a checkpoint: a background flush every few changes
/// that leaves several pages dirty behind the checkpoint it writes.
pub const CHECKPOINT_CUT_DEPTH_BYTES: u64 = 16 << 10;
/// The smallest cache of a run cut at a checkpoint: the changed leaves stay dirty in it
/// rather than being evicted (written back) before the checkpoint.
pub const CHECKPOINT_CUT_CACHE_SIZE_PAGES: u64 = 64;
/// The key range a run whose crash switch cuts at a write-back or a checkpoint gets when its
/// own draw was narrower: enough records of long keys for trees that split under a small
/// cache, and for changes spread over many leaves.
pub const CRASH_CUT_KEY_RANGE: u8 = workload::WIDE_KEY_RANGE + 32;

/// A workload size that replaces the seed's draw (`explore --threads N --calls M`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkloadSize {
    /// Threads (at least 2).
    pub threads: Option<usize>,
    /// Most random calls a thread makes after its warm-up.
    pub calls_per_thread_max: Option<usize>,
}

impl WorkloadSize {
    /// ` --threads N --calls M` for the options that are set, for replay commands.
    pub fn arguments(&self) -> String {
        let mut arguments = String::new();
        if let Some(threads) = self.threads {
            arguments.push_str(&format!(" --threads {threads}"));
        }
        if let Some(calls) = self.calls_per_thread_max {
            arguments.push_str(&format!(" --calls {calls}"));
        }
        arguments
    }
}

/// Which disk faults a run has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// A perfect disk, no crash.
    Off,
    /// `explore --faults`: the seed's I/O error rates, maybe a power cut, a crash at the end.
    Seeded,
    /// One point of a crash-point sweep: no I/O errors; the power fails at this mutating disk
    /// operation of the workload (`None`: never, the crash comes after the final term).
    CrashAt(Option<u64>),
}

/// What the slow disk (and its detach race) and the write-back and checkpoint cuts ask of a
/// run's engine and reach. A cut's engine wins where the slow disk is on too: the write-back
/// cut needs the log unflushed between commits and the checkpoint cut needs pages left dirty
/// behind a checkpoint, where the slow disk writes every change back at once.
fn shape_for_switches(
    seed: u64,
    slow_disk_switch: Option<SlowDiskSwitch>,
    cut: Option<CrashCut>,
    engine: &mut EngineParameters,
    reach: &mut Reach,
) {
    let slow_disk = slow_disk_switch.is_some();
    reach.detach_race |= slow_write_detach_race_switch(seed, slow_disk_switch);
    if slow_disk || cut == Some(CrashCut::Checkpoint) {
        reach.large_values = true;
    }
    if cut == Some(CrashCut::Checkpoint) {
        // Many leaves changed between two background flushes, a cache that keeps them, and
        // each flush stopping at a depth that leaves several behind the checkpoint it writes.
        engine.cache_size_pages = engine.cache_size_pages.max(CHECKPOINT_CUT_CACHE_SIZE_PAGES);
        engine.checkpoint_depth_max_bytes = CHECKPOINT_CUT_DEPTH_BYTES;
        engine.background_thread = true;
    } else if cut == Some(CrashCut::WriteBack) {
        // More pages dirtied between two log flushes than the cache holds, and no background
        // flush cleaning them: a split's new page then evicts a page whose log is not
        // durable, and the log is flushed in the middle of the split.
        engine.cache_size_pages = MIN_CACHE_SIZE_PAGES as u64;
        engine.checkpoint_depth_max_bytes = 1 << 20;
        reach.long_transactions = true;
    } else if slow_disk {
        engine.cache_size_pages = SLOW_DISK_CACHE_SIZE_PAGES;
        engine.checkpoint_depth_max_bytes = 0;
        engine.background_thread = true;
    }
}

/// The scheduler of a run under `strategy`, drawn first from the run's stream (`Mix` draws
/// one of the three).
fn schedule_of(rng: &mut SplitMix64, strategy: Scheduling) -> Schedule {
    let strategy = match strategy {
        Scheduling::Mix => {
            [Scheduling::Random, Scheduling::Pct, Scheduling::Urw][rng.below(3) as usize]
        }
        chosen => chosen,
    };
    match strategy {
        Scheduling::Pct => Schedule::Pct {
            depth: 1 + rng.below(3) as usize,
        },
        Scheduling::Urw => Schedule::Urw,
        _ => Schedule::Random,
    }
}

/// The key range of a run whose own draw was `drawn`, after the switches that need trees: the
/// slow disk's own range; a run whose crash switch cuts at a write-back or a checkpoint grows
/// its trees (see `crash_switch`), and so does a defrag-at-stop run.
fn key_range_for_switches(
    drawn: u8,
    slow_disk: Option<SlowDiskSwitch>,
    cut: Option<CrashCut>,
    defrag_at_stop: bool,
) -> u8 {
    let key_range = slow_disk.map_or(drawn, |switch| switch.key_range);
    let narrow = key_range < workload::WIDE_KEY_RANGE;
    match (cut, defrag_at_stop) {
        (Some(_), _) if narrow => CRASH_CUT_KEY_RANGE,
        (None, true) if narrow => DEFRAG_AT_STOP_KEY_RANGE,
        _ => key_range,
    }
}

/// The records set up before the threads start: half the keys (three in four of the big
/// table's), with values of the run's size.
fn initial_records(rng: &mut SplitMix64, reach: Reach) -> Vec<(u8, u8)> {
    let (filled, of, keys) = if reach.key_range == workload::KEY_RANGE_MAX {
        (3, 4, workload::BIG_TABLE_KEYS)
    } else {
        (1, 2, reach.key_range)
    };
    let values = reach.values();
    let mut records = Vec::new();
    for key in 0..keys {
        if rng.chance(filled, of) {
            let value = values.start + rng.below(u64::from(values.end - values.start)) as u8;
            records.push((key, value));
        }
    }
    records
}

impl RunConfig {
    /// Derives the configuration of run `seed` under `strategy`.
    pub fn derive(seed: u64, strategy: Scheduling) -> RunConfig {
        // The crash switch draws from a stream of its own; a cut at a write-back also shapes
        // the run (below).
        let faults = crash_switch(seed);
        let mut rng = SplitMix64::new(seed);
        let schedule = schedule_of(&mut rng, strategy);
        let mut engine = EngineParameters {
            cache_size_pages: [8, 16, 64, 256][rng.below(4) as usize],
            checkpoint_depth_max_bytes: [0, 4 << 10, 64 << 10, 1 << 20][rng.below(4) as usize],
            version_store_max_versions: 1 << 16,
            online_defrag: rng.chance(1, 2),
            background_thread: rng.chance(2, 3),
        };
        // A term meets a stop in progress (`term_raced_stop`) in few runs even when both are
        // placed together: the racing term gets two shares.
        let stop_plan = match rng.below(12) {
            0..=3 => StopPlan::Once,
            4 => StopPlan::Twice,
            5 => StopPlan::BadHandleFirst,
            6 => StopPlan::UninitializedFirst,
            7 | 8 => StopPlan::RacingTerm,
            9 | 10 => StopPlan::PartialThenFull,
            _ => StopPlan::FullThenResumeAndPartial,
        };
        let stop_plan = match stop_plan {
            StopPlan::PartialThenFull if partial_only_switch(seed) => StopPlan::PartialOnly,
            plan => plan,
        };
        let threads = 2 + rng.below(5) as usize;
        let calls_per_thread_max = 4 + rng.below(9) as usize;
        // The swarm's switches. Wide key ranges cost the most (a few hundred records set up,
        // bigger model states), so they are a fraction of the runs.
        let key_range = match rng.below(20) {
            0..=13 => workload::KEYS,
            14..=16 => workload::WIDE_KEY_RANGE + rng.below(48) as u8,
            _ => workload::KEY_RANGE_MAX,
        };
        let slow_disk = slow_disk_switch(seed);
        let cut = faults.and_then(CrashCut::of);
        let defrag_at_stop = defrag_at_stop_switch(seed);
        let key_range = key_range_for_switches(key_range, slow_disk, cut, defrag_at_stop);
        let wide = key_range >= workload::WIDE_KEY_RANGE;
        let mut reach = Reach {
            key_range,
            // Wide key ranges mostly with large values: together they make deep trees.
            large_values: if wide {
                rng.chance(3, 4)
            } else {
                rng.chance(1, 4)
            },
            extra_stops: rng.chance(1, 3),
            racing_terms: rng.chance(1, 3),
            parameters: rng.chance(1, 4),
            detach_race: rng.chance(1, 8),
            ddl: rng.chance(1, 4),
            shared_contexts: !wide && rng.chance(1, 2),
            long_transactions: false,
            deep_nesting: false,
            defrag_at_stop: false,
        };
        shape_for_switches(seed, slow_disk, cut, &mut engine, &mut reach);
        reach.deep_nesting = deep_nesting_switch(seed);
        if defrag_at_stop {
            reach.defrag_at_stop = true;
            reach.large_values = true;
            engine.online_defrag = true;
            engine.background_thread = true;
        }
        let shape = WorkloadShape {
            threads,
            calls_per_thread_max,
            stop_plan,
            committed_writes: rng.chance(1, 2),
            reach,
        };
        let initial_records = initial_records(&mut rng, reach);
        let schedule_seed = rng.next_u64();
        if let Some(versions) = small_version_store(seed, &initial_records) {
            engine.version_store_max_versions = versions;
        }
        let setup_deleted_keys = setup_deleted_keys(seed, reach, &initial_records, &mut engine);
        let (read_latency_ops, write_latency_ops) = SlowDiskSwitch::latencies_ops(slow_disk);
        let mut config = RunConfig {
            seed,
            schedule,
            engine,
            shape,
            initial_records,
            setup_deleted_keys,
            schedule_seed,
            faults,
            read_latency_ops,
            write_latency_ops,
            wind_down: WindDown::of_run(seed),
        };
        if config.faults.is_some() {
            config.shape.committed_writes = true;
        }
        config
    }

    /// [`Self::derive`] with disk faults drawn from the same seed (a separate stream, so the
    /// engine, schedule and shape are those of the run without faults), and workloads that
    /// also commit whole transactions ([`WorkloadShape::committed_writes`]).
    pub fn derive_with_faults(seed: u64, strategy: Scheduling) -> RunConfig {
        let mut config = Self::derive(seed, strategy);
        config.shape.committed_writes = true;
        let mut rng = SplitMix64::new(seed ^ 0xFA17_FA17_FA17_FA17);
        config.faults = Some(FaultSettings {
            fault_seed: rng.next_u64(),
            power_cut_after_ops: rng.chance(1, 2).then(|| rng.below(POWER_CUT_OPS_MAX)),
            crash_before_term: rng.chance(1, 2),
            io_errors: true,
            power_cut_after_commit: None,
            power_cut_after_database_op: None,
            power_cut_after_log_write: None,
            power_cut_after_write_back: None,
            power_cut_after_checkpoint: None,
        });
        config
    }

    /// The configuration of run `seed` with the disk faults `mode` asks for.
    pub fn derive_with(seed: u64, strategy: Scheduling, mode: FaultMode) -> RunConfig {
        match mode {
            FaultMode::Off => Self::derive(seed, strategy),
            FaultMode::Seeded => Self::derive_with_faults(seed, strategy),
            FaultMode::CrashAt(op) => {
                // The seed's crash behaviour (what unsynced writes the crash loses or tears),
                // none of its I/O errors, and the power cut where the sweep puts it.
                let mut config = Self::derive_with_faults(seed, strategy);
                let faults = config.faults.as_mut().expect("derived with faults");
                faults.power_cut_after_ops = op;
                faults.crash_before_term = false;
                faults.io_errors = false;
                faults.power_cut_after_commit = None;
                faults.power_cut_after_database_op = None;
                faults.power_cut_after_log_write = None;
                faults.power_cut_after_write_back = None;
                faults.power_cut_after_checkpoint = None;
                config
            }
        }
    }

    /// Raises the workload's size (`explore --threads N --calls M`): the seed's other draws
    /// stay as they are.
    pub fn resized(mut self, size: WorkloadSize) -> RunConfig {
        if let Some(threads) = size.threads {
            self.shape.threads = threads;
        }
        if let Some(calls) = size.calls_per_thread_max {
            self.shape.calls_per_thread_max = calls;
        }
        self
    }

    /// The workload of this run: proptest's strategy, driven by a generator seeded from the
    /// run's seed (so the same seed gives the same programs, and a failure can shrink).
    pub fn workload_tree(&self) -> impl ValueTree<Value = Workload> {
        let mut seed_bytes = [0u8; 32];
        let mut rng = SplitMix64::new(self.seed ^ 0x5EED_0F3A_1100);
        for chunk in seed_bytes.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        let test_rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
        let mut runner = TestRunner::new_with_rng(ProptestConfig::default(), test_rng);
        workload::workload(self.shape)
            .new_tree(&mut runner)
            .expect("workload strategies never reject")
    }

    pub fn workload(&self) -> Workload {
        self.workload_tree().current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_derives_the_same_run_every_time() {
        for seed in [0, 1, 42, u64::MAX] {
            let a = RunConfig::derive(seed, Scheduling::Mix);
            let b = RunConfig::derive(seed, Scheduling::Mix);
            assert_eq!(a, b);
            assert_eq!(a.workload(), b.workload());
        }
        assert_ne!(
            RunConfig::derive(1, Scheduling::Mix).workload(),
            RunConfig::derive(2, Scheduling::Mix).workload()
        );
    }

    #[test]
    fn slow_disk_runs_are_a_quarter_and_crowd_a_small_cache() {
        let configs: Vec<RunConfig> = (0..400)
            .map(|seed| RunConfig::derive(seed, Scheduling::Mix))
            .collect();
        let slow: Vec<&RunConfig> = configs
            .iter()
            .filter(|c| c.read_latency_ops > 0 || c.write_latency_ops > 0)
            .collect();
        let slow_writes = slow.iter().filter(|c| c.write_latency_ops > 0).count();
        assert!(
            (60..=140).contains(&(slow.len() - slow_writes)),
            "{} slow runs",
            slow.len()
        );
        // One in eight of the other three quarters: about 37 of 400.
        assert!(
            (15..=65).contains(&slow_writes),
            "{slow_writes} slow-write runs"
        );
        let mut crowded = 0;
        for config in slow {
            assert!(
                (config.read_latency_ops, config.write_latency_ops) == (SLOW_READ_LATENCY_OPS, 0)
                    || (config.read_latency_ops, config.write_latency_ops)
                        == (0, SLOW_WRITE_LATENCY_OPS)
            );
            assert!(config.shape.reach.large_values);
            assert!((24..48).contains(&config.shape.reach.key_range));
            if config
                .faults
                .is_some_and(|f| f.power_cut_after_write_back.is_some())
            {
                // The write-back cut's shape wins: no background flush between commits.
                assert_eq!(config.engine.checkpoint_depth_max_bytes, 1 << 20);
                assert!(config.shape.reach.long_transactions);
                continue;
            }
            if config
                .faults
                .is_some_and(|f| f.power_cut_after_checkpoint.is_some())
            {
                // So does the checkpoint cut's: pages left dirty behind the checkpoint.
                assert_eq!(
                    config.engine.checkpoint_depth_max_bytes,
                    CHECKPOINT_CUT_DEPTH_BYTES
                );
                continue;
            }
            crowded += 1;
            assert_eq!(config.engine.cache_size_pages, SLOW_DISK_CACHE_SIZE_PAGES);
            assert_eq!(config.engine.checkpoint_depth_max_bytes, 0);
            assert!(config.engine.background_thread);
        }
        assert!(crowded >= 50, "{crowded} crowded slow runs");
    }

    #[test]
    fn checkpoint_cuts_are_a_crash_run_in_six_and_leave_pages_dirty_behind() {
        // Goal: the checkpoint cut replaces the crash run's other cut, and its run flushes in
        // the background to a depth that leaves pages dirty, in a cache that keeps them.
        let crash_runs: Vec<RunConfig> = (0..3000)
            .map(|seed| RunConfig::derive(seed, Scheduling::Mix))
            .filter(|config| config.faults.is_some())
            .collect();
        let cut: Vec<&RunConfig> = crash_runs
            .iter()
            .filter(|c| {
                c.faults
                    .is_some_and(|f| f.power_cut_after_checkpoint.is_some())
            })
            .collect();
        let share = cut.len() as f64 / crash_runs.len() as f64;
        assert!((0.12..0.22).contains(&share), "{share} of crash runs");
        for config in cut {
            let faults = config.faults.expect("a crash run");
            assert!(faults.power_cut_after_checkpoint < Some(POWER_CUT_CHECKPOINTS_MAX));
            assert_eq!(faults.power_cut_after_ops, None);
            assert_eq!(faults.power_cut_after_commit, None);
            assert_eq!(faults.power_cut_after_database_op, None);
            assert_eq!(faults.power_cut_after_log_write, None);
            assert_eq!(faults.power_cut_after_write_back, None);
            assert!(config.engine.background_thread);
            assert_eq!(
                config.engine.checkpoint_depth_max_bytes,
                CHECKPOINT_CUT_DEPTH_BYTES
            );
            assert!(config.engine.cache_size_pages >= CHECKPOINT_CUT_CACHE_SIZE_PAGES);
            assert!(config.shape.reach.key_range >= workload::WIDE_KEY_RANGE);
            assert!(config.shape.reach.large_values);
        }
    }

    #[test]
    fn the_swarm_covers_every_stop_plan_and_thread_count() {
        let configs: Vec<RunConfig> = (0..400)
            .map(|seed| RunConfig::derive(seed, Scheduling::Mix))
            .collect();
        for plan in [
            StopPlan::Once,
            StopPlan::Twice,
            StopPlan::BadHandleFirst,
            StopPlan::UninitializedFirst,
            StopPlan::RacingTerm,
            StopPlan::PartialThenFull,
            StopPlan::FullThenResumeAndPartial,
            StopPlan::PartialOnly,
        ] {
            assert!(
                configs.iter().any(|c| c.shape.stop_plan == plan),
                "{plan:?} never drawn"
            );
        }
        for threads in 2..=6 {
            assert!(
                configs.iter().any(|c| c.shape.threads == threads),
                "{threads} threads never drawn"
            );
        }
        assert!(configs
            .iter()
            .any(|c| matches!(c.schedule, Schedule::Pct { .. })));
        assert!(configs.iter().any(|c| c.schedule == Schedule::Random));
        assert!(configs.iter().any(|c| c.schedule == Schedule::Urw));
    }
}
