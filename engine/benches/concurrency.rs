//! What sessions running in parallel buy, measured in one run against one thread doing the
//! same work per thread:
//!
//! 1. commits on real files with fsync, 2 threads against 1 (group commit: a commit waits for
//!    the log with no lock held, and commits appended meanwhile share the next sync), with
//!    the syncs each commit cost (1.00 with one thread; group commit brings it towards 0.50
//!    with two, whatever the disk's latency);
//! 2. seeks and retrieves on cached pages of separate tables, 2 threads against 1;
//! 3. level-1 commits of empty transactions (the commit path alone: a Commit record appended
//!    and made durable) beside seeks and retrieves on another table, in memory: each one's
//!    rate beside the other against alone, which shows what the commit path holds that a
//!    reader needs (the log has its own lock, taken with the store latch held shared);
//! 4. record writes (seek + replace, 50 to a transaction) on cached pages of separate
//!    tables in memory, 2 threads against 1: writes hold the instance latch shared, plan
//!    beside each other and take the store latch exclusively only to install.
//!
//! The commit line also measures, in the same rounds, a bare group commit on the same disk:
//! no engine, a mutex, a condvar and one file, each commit spinning the engine's CPU per
//! commit and appending the engine's log bytes per commit. Its ratio is what this disk lets
//! two committers gain (this machine's fdatasync is slower while the other CPU works), the
//! peer the engine's ratio is read against.
//!
//! Ratios are of throughput (work per second), so 2.0 is perfect scaling. Run:
//! `cargo bench -p jetsim-engine --bench concurrency` (`JETSIM_BENCH_COMMITS`, default 400
//! per thread and round; `JETSIM_BENCH_COMMIT_ROUNDS`, default 7; `JETSIM_BENCH_SEEKS`, default 100,000 per thread; `JETSIM_BENCH_WRITES`,
//! default 50,000 per thread; `JETSIM_BENCH_EMPTY_COMMITS`, default 200,000). Real files live under the
//! system's temporary folder and are removed afterwards.
//!
//! On a machine shared with other work the wall-time ratio moves with the load, so the seek
//! line also gives what the load does not move much: the CPU time each seek + retrieve pair
//! costs its thread with 1 and with 2 threads (shared cache lines and lock hand-offs make the
//! second dearer; a lock that puts a thread to sleep shows as CPUs busy below 2), and a
//! calibration measured in the same run: independent work with no shared data, 2 threads
//! against 1, which is the best ratio the machine allows at that moment.

use jetsim_engine::env::{FileIo, Io, IoFile, SystemClock};
use jetsim_engine::*;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const DB: &str = "bench.edb";
const RECORDS: u32 = 200;

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn key(i: u32) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

/// An initialized instance with one table per thread, `RECORDS` records each.
fn engine(env: Environment, tables: usize) -> (Arc<Jet<StdRuntime>>, InstanceHandle) {
    let jet = Arc::new(Jet::<StdRuntime>::new(env));
    let instance = jet
        .create_instance_with("bench", InstanceOptions::manual())
        .unwrap();
    jet.init(instance).unwrap();
    let sesid = jet.begin_session(instance).unwrap();
    let dbid = jet.create_database(sesid, DB).unwrap();
    for t in 0..tables {
        let table = jet.create_table(sesid, dbid, &format!("t{t}")).unwrap();
        jet.begin_transaction(sesid).unwrap();
        for i in 0..RECORDS {
            jet.insert(sesid, table, &key(i), &[b'v'; 64]).unwrap();
        }
        jet.commit_transaction(sesid).unwrap();
    }
    jet.end_session(sesid).unwrap();
    (jet, instance)
}

/// CPU time the calling thread has used, in seconds: from `/proc/thread-self/schedstat`
/// (nanoseconds), else `/proc/thread-self/stat` (clock ticks of 1/100 s); `None` where
/// neither can be read.
fn thread_cpu_seconds() -> Option<f64> {
    if let Ok(schedstat) = std::fs::read_to_string("/proc/thread-self/schedstat") {
        let ns: Option<u64> = schedstat
            .split_whitespace()
            .next()
            .and_then(|f| f.parse().ok());
        if let Some(ns) = ns.filter(|&ns| ns > 0) {
            return Some(ns as f64 / 1e9);
        }
    }
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (parenthesised, may hold spaces): utime and stime are
    // the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Wall time of a run and the CPU time its threads used, in seconds.
#[derive(Clone, Copy)]
struct Timing {
    wall_seconds: f64,
    /// Summed over the threads; `None` where the platform does not say.
    cpu_seconds: Option<f64>,
}

/// Runs `work(thread)` on `threads` threads at once.
fn timed(threads: usize, work: impl Fn(usize) + Sync) -> Timing {
    let started = Instant::now();
    let cpu_seconds = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let work = &work;
                scope.spawn(move || {
                    let before = thread_cpu_seconds();
                    work(thread);
                    Some(thread_cpu_seconds()? - before?)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a bench thread panicked"))
            .sum::<Option<f64>>()
    });
    Timing {
        wall_seconds: started.elapsed().as_secs_f64(),
        cpu_seconds,
    }
}

fn session_on(
    jet: &Jet<StdRuntime>,
    instance: InstanceHandle,
    table: usize,
) -> (SessionHandle, TableHandle) {
    let sesid = jet.begin_session(instance).unwrap();
    let dbid = jet.open_database(sesid, DB).unwrap();
    let tableid = jet.open_table(sesid, dbid, &format!("t{table}")).unwrap();
    (sesid, tableid)
}

/// Real files whose syncs are counted: how many commits one sync covers is what group
/// commit buys, whatever the disk's latency that day.
struct SyncCountingIo {
    files: FileIo,
    syncs: Arc<AtomicU64>,
    written_bytes: Arc<AtomicU64>,
}

struct SyncCountingFile {
    file: Box<dyn IoFile>,
    syncs: Arc<AtomicU64>,
    written_bytes: Arc<AtomicU64>,
}

impl SyncCountingIo {
    fn counted(&self, file: Box<dyn IoFile>) -> Box<dyn IoFile> {
        Box::new(SyncCountingFile {
            file,
            syncs: Arc::clone(&self.syncs),
            written_bytes: Arc::clone(&self.written_bytes),
        })
    }
}

impl Io for SyncCountingIo {
    fn create(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        Ok(self.counted(self.files.create(path)?))
    }
    fn open(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        Ok(self.counted(self.files.open(path)?))
    }
    fn remove(&self, path: &str) -> io::Result<()> {
        self.files.remove(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.files.exists(path)
    }
}

impl IoFile for SyncCountingFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.written_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.file.write_at(offset, data)
    }
    fn sync(&self) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.file.sync()
    }
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}

/// One measurement of commits: commits per second, syncs per commit, and bytes written per
/// commit (the log: nothing else is written while the commits run).
struct CommitRun {
    rate: f64,
    syncs_per_commit: f64,
    written_bytes_per_commit: f64,
}

/// A fresh folder under the system's temporary one, for one measurement.
fn fresh_root(name: &str, threads: usize) -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!(
        "jetsim-bench-concurrency-{}-{name}-{threads}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&root);
    root
}

/// Commits with `threads` threads, each committing `commits` one-insert transactions on
/// its own table, on real files.
fn commits_timed(threads: usize, commits: u64) -> CommitRun {
    let root = fresh_root("engine", threads);
    let syncs = Arc::new(AtomicU64::new(0));
    let written_bytes = Arc::new(AtomicU64::new(0));
    let io = SyncCountingIo {
        files: FileIo::new(&root),
        syncs: Arc::clone(&syncs),
        written_bytes: Arc::clone(&written_bytes),
    };
    let env = Environment::new(Arc::new(SystemClock::new()), Arc::new(io));
    let (jet, instance) = engine(env, threads);
    let sessions: Vec<_> = (0..threads)
        .map(|t| session_on(&jet, instance, t))
        .collect();
    let syncs_before = syncs.load(Ordering::Relaxed);
    let written_before = written_bytes.load(Ordering::Relaxed);
    let timing = timed(threads, |thread| {
        let (sesid, table) = sessions[thread];
        commit_loop(&jet, sesid, table, commits);
    });
    let commit_syncs = syncs.load(Ordering::Relaxed) - syncs_before;
    let commit_bytes = written_bytes.load(Ordering::Relaxed) - written_before;
    jet.term(instance).unwrap();
    let _ = std::fs::remove_dir_all(&root);
    let total = (threads as u64 * commits) as f64;
    CommitRun {
        rate: total / timing.wall_seconds,
        syncs_per_commit: commit_syncs as f64 / total,
        written_bytes_per_commit: commit_bytes as f64 / total,
    }
}

/// The work of one committing thread: `commits` one-insert transactions.
fn commit_loop(jet: &Jet<StdRuntime>, sesid: SessionHandle, table: TableHandle, commits: u64) {
    for i in 0..commits {
        jet.begin_transaction(sesid).unwrap();
        jet.insert(sesid, table, format!("c{i:08}").as_bytes(), b"committed")
            .unwrap();
        jet.commit_transaction(sesid).unwrap();
    }
}

/// The engine's CPU per commit without a disk: the same loop, one thread, in memory.
fn commit_cpu_seconds_in_memory(commits: u64) -> Option<f64> {
    let (jet, sessions) = in_memory_sessions(1);
    let timing = timed(1, |_| {
        commit_loop(&jet, sessions[0].0, sessions[0].1, commits)
    });
    Some(timing.cpu_seconds? / commits as f64)
}

/// What a bare group commit does per commit: CPU spun, bytes logged, and whether a writer
/// waits for the other committers still working.
#[derive(Clone, Copy)]
struct BareCommit {
    cpu_seconds: f64,
    log_bytes: usize,
    gathers: bool,
}

struct BareLogState {
    buffered: Vec<u8>,
    tip_bytes: u64,
    synced_bytes: u64,
    sync_in_flight: bool,
    syncs: u64,
    /// Threads between commits (spinning their CPU): the ones a gathering writer waits for.
    working: usize,
}

/// The peer of the engine's log: one file, a mutex and a condvar. A commit appends its
/// bytes and waits until a sync covers them; the first waiter that finds no sync in flight
/// writes and syncs everything buffered, with the lock let go. A gathering writer first
/// waits (up to [`BARE_GATHER_WAIT`]) for the threads still working, as the engine's
/// group commit does.
struct BareLog {
    file: std::fs::File,
    state: std::sync::Mutex<BareLogState>,
    changed: std::sync::Condvar,
}

/// The longest a gathering bare writer waits for the other committers.
const BARE_GATHER_WAIT: std::time::Duration = std::time::Duration::from_micros(200);

impl BareLog {
    fn commit(&self, bytes: &[u8], gathers: bool) {
        use std::os::unix::fs::FileExt;
        let mut state = self.state.lock().unwrap();
        state.working -= 1;
        self.changed.notify_all();
        state.buffered.extend_from_slice(bytes);
        state.tip_bytes += bytes.len() as u64;
        let mine = state.tip_bytes;
        let mut may_gather = gathers;
        while state.synced_bytes < mine {
            if state.sync_in_flight {
                state = self.changed.wait(state).unwrap();
                continue;
            }
            if may_gather && state.working > 0 {
                // Once a commit: then look again, as another thread may have synced meanwhile.
                may_gather = false;
                state = self
                    .changed
                    .wait_timeout(state, BARE_GATHER_WAIT)
                    .unwrap()
                    .0;
                continue;
            }
            state.sync_in_flight = true;
            let buffered = std::mem::take(&mut state.buffered);
            let (offset, end) = (state.synced_bytes, state.tip_bytes);
            drop(state);
            self.file.write_all_at(&buffered, offset).unwrap();
            self.file.sync_data().unwrap();
            state = self.state.lock().unwrap();
            state.synced_bytes = end;
            state.sync_in_flight = false;
            state.syncs += 1;
            self.changed.notify_all();
        }
        state.working += 1;
    }
}

/// The bare group commit with `threads` threads, `commits` each.
fn bare_commits_timed(threads: usize, commits: u64, work: BareCommit) -> CommitRun {
    let root = fresh_root("bare", threads);
    std::fs::create_dir_all(&root).unwrap();
    let path = root.join("bare.log");
    let log = BareLog {
        file: std::fs::File::create(&path).unwrap(),
        state: std::sync::Mutex::new(BareLogState {
            buffered: Vec::new(),
            tip_bytes: 0,
            synced_bytes: 0,
            sync_in_flight: false,
            syncs: 0,
            working: threads,
        }),
        changed: std::sync::Condvar::new(),
    };
    let record = vec![0x5A; work.log_bytes];
    let timing = timed(threads, |_| {
        for _ in 0..commits {
            let spun = Instant::now();
            while spun.elapsed().as_secs_f64() < work.cpu_seconds {
                std::hint::spin_loop();
            }
            log.commit(&record, work.gathers);
        }
    });
    let syncs = log.state.lock().unwrap().syncs;
    let _ = std::fs::remove_dir_all(&root);
    let total = (threads as u64 * commits) as f64;
    CommitRun {
        rate: total / timing.wall_seconds,
        syncs_per_commit: syncs as f64 / total,
        written_bytes_per_commit: work.log_bytes as f64,
    }
}

/// 2 threads against 1, measured back to back in the order `round` picks.
fn two_against_one(round: u64, measure: impl Fn(usize) -> CommitRun) -> (CommitRun, CommitRun) {
    if round.is_multiple_of(2) {
        let one = measure(1);
        (one, measure(2))
    } else {
        let two = measure(2);
        (measure(1), two)
    }
}

/// Ratios over rounds: each round's, the median, and the mean syncs per commit.
#[derive(Default)]
struct RoundRatios {
    ratios: Vec<f64>,
    one_rate_sum: f64,
    two_rate_sum: f64,
    one_syncs_sum: f64,
    two_syncs_sum: f64,
}

impl RoundRatios {
    fn add(&mut self, (one, two): (CommitRun, CommitRun)) {
        self.ratios.push(two.rate / one.rate);
        self.one_rate_sum += one.rate;
        self.two_rate_sum += two.rate;
        self.one_syncs_sum += one.syncs_per_commit;
        self.two_syncs_sum += two.syncs_per_commit;
    }

    fn median(&self) -> f64 {
        let mut sorted = self.ratios.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    fn describe(&self) -> String {
        let count = self.ratios.len() as f64;
        let rounds: Vec<String> = self.ratios.iter().map(|r| format!("{r:.2}")).collect();
        format!(
            "1 thread {:.0}/s, 2 threads {:.0}/s (means over rounds); ratio per round {}, \
             median {:.2}; syncs per commit: 1 thread {:.2}, 2 threads {:.2}",
            self.one_rate_sum / count,
            self.two_rate_sum / count,
            rounds.join(" "),
            self.median(),
            self.one_syncs_sum / count,
            self.two_syncs_sum / count
        )
    }
}

/// Commits, 2 threads against 1, in `rounds` rounds of one measurement each, alternating
/// which goes first, the engine and its bare peers in every round. This disk's fsync
/// latency drifts over seconds (one thread's rate moved between 3,000 and 5,600 commits/s
/// from one run to the next), so one 1-thread phase then one 2-thread phase measures the
/// drift as much as the engine; rounds a fraction of a second long, interleaved, see the
/// same disk, and the median of their ratios is the figure. Returns the report lines.
fn commits_in_rounds(commits: u64, rounds: u64) -> String {
    let mut engine = RoundRatios::default();
    let mut classic = RoundRatios::default();
    let mut gathering = RoundRatios::default();
    let cpu_seconds = commit_cpu_seconds_in_memory(commits).unwrap_or(0.0);
    let mut log_bytes = 0;
    for round in 0..rounds.max(1) {
        let runs = two_against_one(round, |threads| commits_timed(threads, commits));
        log_bytes = runs.0.written_bytes_per_commit.round() as usize;
        engine.add(runs);
        for (peer, gathers) in [(&mut classic, false), (&mut gathering, true)] {
            let work = BareCommit {
                cpu_seconds,
                log_bytes,
                gathers,
            };
            peer.add(two_against_one(round, |threads| {
                bare_commits_timed(threads, commits, work)
            }));
        }
    }
    let best_peer = classic.median().max(gathering.median());
    format!(
        "commits on real files (fsync): {}\n  bare group commit on the same disk, {:.1} us of \
         CPU and {log_bytes} log bytes a commit (the engine's, measured): classic leader {}\n  \
         gathering {}\n  the engine's median against the better peer's: {:.2}",
        engine.describe(),
        cpu_seconds * 1e6,
        classic.describe(),
        gathering.describe(),
        engine.median() / best_peer
    )
}

/// An in-memory engine with one table per thread, and a session on each table.
fn in_memory_sessions(threads: usize) -> (Arc<Jet<StdRuntime>>, Vec<(SessionHandle, TableHandle)>) {
    let (jet, instance) = engine(Environment::in_memory(), threads);
    let sessions = (0..threads)
        .map(|t| session_on(&jet, instance, t))
        .collect();
    (jet, sessions)
}

/// Seek + retrieve pairs with `threads` threads on separate cached tables, `seeks` each.
fn seeks_timed(threads: usize, seeks: u64) -> Timing {
    let (jet, sessions) = in_memory_sessions(threads);
    timed(threads, |thread| {
        let (sesid, table) = sessions[thread];
        for i in 0..seeks {
            let k = key((i % u64::from(RECORDS)) as u32);
            jet.seek(sesid, table, &k, SeekMode::Equal).unwrap();
            jet.retrieve(sesid, table).unwrap();
        }
    })
}

/// Record writes with `threads` threads on separate cached tables, `writes` each: seek and
/// replace, committed every [`WRITES_PER_TRANSACTION`] writes.
fn writes_timed(threads: usize, writes: u64) -> Timing {
    let (jet, sessions) = in_memory_sessions(threads);
    timed(threads, |thread| {
        let (sesid, table) = sessions[thread];
        for i in 0..writes {
            if i % WRITES_PER_TRANSACTION == 0 {
                jet.begin_transaction(sesid).unwrap();
            }
            let k = key((i % u64::from(RECORDS)) as u32);
            jet.seek(sesid, table, &k, SeekMode::Equal).unwrap();
            jet.replace(sesid, table, &i.to_le_bytes()).unwrap();
            if i % WRITES_PER_TRANSACTION == WRITES_PER_TRANSACTION - 1 || i + 1 == writes {
                jet.commit_transaction(sesid).unwrap();
            }
        }
    })
}

/// Level-1 commits beside readers, in memory: one thread begins and commits empty
/// transactions (each appends a Commit record and makes it durable: the commit path alone)
/// for `commits`, the other seeks and retrieves on another table until the committer ends.
/// Returns the committer's rate and the reader's, each per second of the run's wall time;
/// `with_reader: false` runs the committer alone, `with_committer: false` the reader alone
/// for `seeks` pairs.
fn commits_beside_reader(
    commits: u64,
    seeks: u64,
    with_reader: bool,
    with_committer: bool,
) -> (f64, f64) {
    let (jet, sessions) = in_memory_sessions(2);
    let committer_done = std::sync::atomic::AtomicBool::new(false);
    let seeks_done = AtomicU64::new(0);
    // Beside the committer the reader reads until it ends; alone, for `seeks` pairs.
    let keep_reading = |pairs: u64| match with_committer {
        true => !committer_done.load(Ordering::Acquire),
        false => pairs < seeks,
    };
    let started = Instant::now();
    std::thread::scope(|scope| {
        if with_reader {
            scope.spawn(|| {
                let (sesid, table) = sessions[1];
                let mut pairs = 0;
                while keep_reading(pairs) {
                    let k = key((pairs % u64::from(RECORDS)) as u32);
                    jet.seek(sesid, table, &k, SeekMode::Equal).unwrap();
                    jet.retrieve(sesid, table).unwrap();
                    pairs += 1;
                }
                seeks_done.store(pairs, Ordering::Release);
            });
        }
        if with_committer {
            let (sesid, _) = sessions[0];
            for _ in 0..commits {
                jet.begin_transaction(sesid).unwrap();
                jet.commit_transaction(sesid).unwrap();
            }
            committer_done.store(true, Ordering::Release);
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let committed = if with_committer { commits } else { 0 };
    (
        committed as f64 / wall,
        seeks_done.load(Ordering::Acquire) as f64 / wall,
    )
}

/// Writes per transaction in [`writes_timed`].
const WRITES_PER_TRANSACTION: u64 = 50;

/// The calibration: `rounds` of work that shares nothing (a hash over a buffer of the
/// thread's own) on each of `threads` threads.
fn independent_work_timed(threads: usize, rounds: u64) -> Timing {
    timed(threads, |thread| {
        let mut buffer = vec![thread as u8; 2048];
        let mut hash = 0u64;
        for round in 0..rounds {
            buffer[(round % 2048) as usize] = hash as u8;
            for &byte in &buffer {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        std::hint::black_box(hash);
    })
}

/// Microseconds of CPU per unit of work, as text.
fn cpu_per_unit(timing: Timing, units: u64) -> String {
    timing.cpu_seconds.map_or("unknown".to_owned(), |cpu| {
        format!("{:.2} us", cpu * 1e6 / units as f64)
    })
}

/// CPU time over wall time: how many CPUs the run kept busy, as text.
fn cpus_busy(timing: Timing) -> String {
    timing.cpu_seconds.map_or("unknown".to_owned(), |cpu| {
        format!("{:.2}", cpu / timing.wall_seconds)
    })
}

fn main() {
    let commits = env_count("JETSIM_BENCH_COMMITS", 400);
    let seeks = env_count("JETSIM_BENCH_SEEKS", 100_000);
    let writes = env_count("JETSIM_BENCH_WRITES", 50_000);
    let commit_rounds = env_count("JETSIM_BENCH_COMMIT_ROUNDS", 7);
    let commit_line = commits_in_rounds(commits, commit_rounds);
    println!("{commit_line}");
    let rounds = seeks;
    let calibration_one = independent_work_timed(1, rounds);
    let one = seeks_timed(1, seeks);
    let two = seeks_timed(2, seeks);
    let calibration_two = independent_work_timed(2, rounds);
    let rate = |timing: Timing, threads: u64| (threads * seeks) as f64 / timing.wall_seconds;
    println!(
        "seek+retrieve on cached pages, separate tables: 1 thread {:.0}/s, 2 threads \
         {:.0}/s, ratio {:.2}",
        rate(one, 1),
        rate(two, 2),
        rate(two, 2) / rate(one, 1)
    );
    println!(
        "  CPU per seek+retrieve: 1 thread {}, 2 threads {}; CPUs busy: 1 thread {}, \
         2 threads {}",
        cpu_per_unit(one, seeks),
        cpu_per_unit(two, 2 * seeks),
        cpus_busy(one),
        cpus_busy(two)
    );
    println!(
        "  calibration (independent work, nothing shared, same run): ratio {:.2}, CPUs busy: \
         1 thread {}, 2 threads {}",
        calibration_one.wall_seconds * 2.0 / calibration_two.wall_seconds,
        cpus_busy(calibration_one),
        cpus_busy(calibration_two)
    );
    let beside_commits = env_count("JETSIM_BENCH_EMPTY_COMMITS", 200_000);
    let (commits_alone, _) = commits_beside_reader(beside_commits, 0, false, true);
    let (_, seeks_alone) = commits_beside_reader(0, seeks, true, false);
    let (commits_beside, seeks_beside) = commits_beside_reader(beside_commits, 0, true, true);
    println!(
        "level-1 commits beside a reader, in memory: commits alone {commits_alone:.0}/s, \
         beside seek+retrieve {commits_beside:.0}/s ({:.2} of alone); seek+retrieve alone \
         {seeks_alone:.0}/s, beside the commits {seeks_beside:.0}/s ({:.2} of alone)",
        commits_beside / commits_alone,
        seeks_beside / seeks_alone
    );
    let one = writes_timed(1, writes);
    let two = writes_timed(2, writes);
    let rate = |timing: Timing, threads: u64| (threads * writes) as f64 / timing.wall_seconds;
    println!(
        "seek+replace on cached pages, separate tables: 1 thread {:.0}/s, 2 threads {:.0}/s, \
         ratio {:.2}; CPU per write: 1 thread {}, 2 threads {}; CPUs busy: 1 thread {}, \
         2 threads {}",
        rate(one, 1),
        rate(two, 2),
        rate(two, 2) / rate(one, 1),
        cpu_per_unit(one, writes),
        cpu_per_unit(two, 2 * writes),
        cpus_busy(one),
        cpus_busy(two)
    );
}
