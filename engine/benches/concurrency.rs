//! What sessions running in parallel buy, measured in one run against one thread doing the
//! same work per thread:
//!
//! 1. commits on real files with fsync, 2 threads against 1 (group commit: a commit waits for
//!    the log with no lock held, and commits appended meanwhile share the next sync);
//! 2. seeks and retrieves on cached pages of separate tables, 2 threads against 1.
//!
//! Ratios are of throughput (work per second), so 2.0 is perfect scaling. Run:
//! `cargo bench -p jetsim-engine --bench concurrency` (`JETSIM_BENCH_COMMITS`, default 400
//! per thread; `JETSIM_BENCH_SEEKS`, default 100,000 per thread). Real files live under the
//! system's temporary folder and are removed afterwards.

use jetsim_engine::*;
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

/// Runs `work(thread)` on `threads` threads at once; returns the wall time in seconds.
fn timed(threads: usize, work: impl Fn(usize) + Sync) -> f64 {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let work = &work;
            scope.spawn(move || work(thread));
        }
    });
    started.elapsed().as_secs_f64()
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

/// Commits per second with `threads` threads, each committing `commits` one-insert
/// transactions on its own table, on real files.
fn commits_per_second(threads: usize, commits: u64) -> f64 {
    let root = std::env::temp_dir().join(format!(
        "jetsim-bench-concurrency-{}-{threads}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&root);
    let (jet, instance) = engine(Environment::on_disk(&root), threads);
    let sessions: Vec<_> = (0..threads)
        .map(|t| session_on(&jet, instance, t))
        .collect();
    let seconds = timed(threads, |thread| {
        let (sesid, table) = sessions[thread];
        for i in 0..commits {
            jet.begin_transaction(sesid).unwrap();
            jet.insert(sesid, table, format!("c{i:08}").as_bytes(), b"committed")
                .unwrap();
            jet.commit_transaction(sesid).unwrap();
        }
    });
    jet.term(instance).unwrap();
    let _ = std::fs::remove_dir_all(&root);
    (threads as u64 * commits) as f64 / seconds
}

/// Seek + retrieve pairs per second with `threads` threads on separate cached tables.
fn seeks_per_second(threads: usize, seeks: u64) -> f64 {
    let (jet, instance) = engine(Environment::in_memory(), threads);
    let sessions: Vec<_> = (0..threads)
        .map(|t| session_on(&jet, instance, t))
        .collect();
    let seconds = timed(threads, |thread| {
        let (sesid, table) = sessions[thread];
        for i in 0..seeks {
            let k = key((i % u64::from(RECORDS)) as u32);
            jet.seek(sesid, table, &k, SeekMode::Equal).unwrap();
            jet.retrieve(sesid, table).unwrap();
        }
    });
    (threads as u64 * seeks) as f64 / seconds
}

fn main() {
    let commits = env_count("JETSIM_BENCH_COMMITS", 400);
    let seeks = env_count("JETSIM_BENCH_SEEKS", 100_000);
    let one = commits_per_second(1, commits);
    let two = commits_per_second(2, commits);
    println!(
        "commits on real files (fsync): 1 thread {one:.0}/s, 2 threads {two:.0}/s, ratio {:.2}",
        two / one
    );
    let one = seeks_per_second(1, seeks);
    let two = seeks_per_second(2, seeks);
    println!(
        "seek+retrieve on cached pages, separate tables: 1 thread {one:.0}/s, 2 threads \
         {two:.0}/s, ratio {:.2}",
        two / one
    );
}
