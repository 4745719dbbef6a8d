//! What sessions running in parallel buy, measured in one run against one thread doing the
//! same work per thread:
//!
//! 1. commits on real files with fsync, 2 threads against 1 (group commit: a commit waits for
//!    the log with no lock held, and commits appended meanwhile share the next sync), with
//!    the syncs each commit cost (1.00 with one thread; group commit brings it towards 0.50
//!    with two, whatever the disk's latency);
//! 2. seeks and retrieves on cached pages of separate tables, 2 threads against 1;
//! 3. record writes (seek + replace, 50 to a transaction) on cached pages of separate
//!    tables in memory, 2 threads against 1: writes hold the instance latch shared, plan
//!    beside each other and take the store latch exclusively only to install.
//!
//! Ratios are of throughput (work per second), so 2.0 is perfect scaling. Run:
//! `cargo bench -p jetsim-engine --bench concurrency` (`JETSIM_BENCH_COMMITS`, default 400
//! per thread and round; `JETSIM_BENCH_COMMIT_ROUNDS`, default 7; `JETSIM_BENCH_SEEKS`, default 100,000 per thread; `JETSIM_BENCH_WRITES`,
//! default 50,000 per thread). Real files live under the
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
}

struct SyncCountingFile {
    file: Box<dyn IoFile>,
    syncs: Arc<AtomicU64>,
}

impl SyncCountingIo {
    fn counted(&self, file: Box<dyn IoFile>) -> Box<dyn IoFile> {
        Box::new(SyncCountingFile {
            file,
            syncs: Arc::clone(&self.syncs),
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

/// Commits with `threads` threads, each committing `commits` one-insert transactions on
/// its own table, on real files: commits per second, and syncs per commit.
fn commits_timed(threads: usize, commits: u64) -> (f64, f64) {
    let root = std::env::temp_dir().join(format!(
        "jetsim-bench-concurrency-{}-{threads}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&root);
    let syncs = Arc::new(AtomicU64::new(0));
    let io = SyncCountingIo {
        files: FileIo::new(&root),
        syncs: Arc::clone(&syncs),
    };
    let env = Environment::new(Arc::new(SystemClock::new()), Arc::new(io));
    let (jet, instance) = engine(env, threads);
    let syncs_before = syncs.load(Ordering::Relaxed);
    let sessions: Vec<_> = (0..threads)
        .map(|t| session_on(&jet, instance, t))
        .collect();
    let timing = timed(threads, |thread| {
        let (sesid, table) = sessions[thread];
        for i in 0..commits {
            jet.begin_transaction(sesid).unwrap();
            jet.insert(sesid, table, format!("c{i:08}").as_bytes(), b"committed")
                .unwrap();
            jet.commit_transaction(sesid).unwrap();
        }
    });
    let commit_syncs = syncs.load(Ordering::Relaxed) - syncs_before;
    jet.term(instance).unwrap();
    let _ = std::fs::remove_dir_all(&root);
    let total = (threads as u64 * commits) as f64;
    (total / timing.wall_seconds, commit_syncs as f64 / total)
}

/// Commits, 2 threads against 1, in `rounds` rounds of one measurement each, alternating
/// which goes first. This disk's fsync latency drifts over seconds (one thread's rate moved
/// between 3,000 and 5,600 commits/s from one run to the next), so one 1-thread phase then
/// one 2-thread phase measures the drift as much as the engine; rounds a fraction of a
/// second long, interleaved, see the same disk, and the median of their ratios is the
/// figure. Returns the report line.
fn commits_in_rounds(commits: u64, rounds: u64) -> String {
    let mut ratios = Vec::new();
    let (mut one_syncs, mut two_syncs) = (0.0, 0.0);
    let (mut one_rate_sum, mut two_rate_sum) = (0.0, 0.0);
    for round in 0..rounds.max(1) {
        let ((one, syncs_one), (two, syncs_two)) = if round % 2 == 0 {
            let one = commits_timed(1, commits);
            (one, commits_timed(2, commits))
        } else {
            let two = commits_timed(2, commits);
            (commits_timed(1, commits), two)
        };
        ratios.push(two / one);
        one_syncs += syncs_one;
        two_syncs += syncs_two;
        one_rate_sum += one;
        two_rate_sum += two;
    }
    let count = ratios.len() as f64;
    let rounds_text: Vec<String> = ratios.iter().map(|ratio| format!("{ratio:.2}")).collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    format!(
        "commits on real files (fsync): 1 thread {:.0}/s, 2 threads {:.0}/s (means over \
         rounds); ratio per round {}, median {median:.2}; syncs per commit: 1 thread {:.2}, \
         2 threads {:.2}",
        one_rate_sum / count,
        two_rate_sum / count,
        rounds_text.join(" "),
        one_syncs / count,
        two_syncs / count
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
