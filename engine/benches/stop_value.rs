//! What `JetStopServiceInstance` buys, measured: with 10,000 dirty pages in the cache,
//!
//! 1. term's time after a completed stop against term without a stop (the stop moved the
//!    flushing out of term), and
//! 2. recovery work after a crash right after a successful stop against the same crash
//!    without it (log bytes replayed, pages redone, time to init).
//!
//! In-memory storage, so times are CPU time of the engine's own work (no disk latency).
//! Run: `cargo bench -p jetsim-engine --bench stop_value` (`JETSIM_DIRTY_PAGES`, default 10000).

use jetsim_engine::env::{ManualClock, MemIo};
use jetsim_engine::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DB: &str = "bench.edb";

struct Loaded {
    jet: Jet<StdRuntime>,
    instance: InstanceHandle,
    io: Arc<MemIo>,
    dirty_pages: u64,
}

/// An instance whose cache holds at least `dirty_pages_min` dirty pages.
fn load(dirty_pages_min: u64) -> Loaded {
    let io = Arc::new(MemIo::new());
    let env = Environment::new(Arc::new(ManualClock::new(0)), io.clone());
    let jet = Jet::<StdRuntime>::new(env);
    let instance = jet
        .create_instance_with("bench", InstanceOptions::manual())
        .unwrap();
    jet.set_system_parameter(
        instance,
        SystemParameter::CacheSizePages,
        dirty_pages_min * 2,
    )
    .unwrap();
    jet.set_system_parameter(
        instance,
        SystemParameter::CheckpointDepthMaxBytes,
        u64::MAX / 2,
    )
    .unwrap();
    jet.set_system_parameter(instance, SystemParameter::VersionStoreMaxVersions, 1 << 24)
        .unwrap();
    jet.init(instance).unwrap();
    let s = jet.begin_session(instance).unwrap();
    let d = jet.create_database(s, DB).unwrap();
    let t = jet.create_table(s, d, "t").unwrap();
    let value = [7u8; 500];
    let mut key = 0u64;
    loop {
        jet.begin_transaction(s).unwrap();
        for _ in 0..1000 {
            jet.insert(s, t, format!("key{key:012}").as_bytes(), &value)
                .unwrap();
            key += 1;
        }
        jet.commit_transaction(s).unwrap();
        let dirty_pages = jet.instance_status(instance).unwrap().dirty_pages;
        if dirty_pages >= dirty_pages_min {
            jet.end_session(s).unwrap();
            return Loaded {
                jet,
                instance,
                io,
                dirty_pages,
            };
        }
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = f();
    (value, started.elapsed())
}

/// Crashes the instance's storage and recovers it with a fresh engine; returns the report
/// and the time init took.
fn crash_and_recover(loaded: Loaded) -> (jetsim_engine::RecoveryReport, Duration) {
    let Loaded { jet, io, .. } = loaded;
    drop(jet);
    io.crash();
    let env = Environment::new(Arc::new(ManualClock::new(0)), io);
    let jet = Jet::<StdRuntime>::new(env);
    let instance = jet
        .create_instance_with("bench", InstanceOptions::manual())
        .unwrap();
    let ((), took) = timed(|| jet.init(instance).unwrap());
    let report = jet
        .last_recovery_report(instance)
        .unwrap()
        .expect("init recovered");
    (report, took)
}

fn main() {
    let dirty_pages_min: u64 = std::env::var("JETSIM_DIRTY_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);

    // 1. term with and without a preceding stop.
    let plain = load(dirty_pages_min);
    let dirty = plain.dirty_pages;
    let (_, term_alone) = timed(|| plain.jet.term(plain.instance).unwrap());
    let stopped = load(dirty_pages_min);
    let (_, stop_time) = timed(|| stopped.jet.stop_service_instance(stopped.instance).unwrap());
    let (_, term_after_stop) = timed(|| stopped.jet.term(stopped.instance).unwrap());

    // 2. recovery after a crash, with and without a stop just before it.
    let (without, recover_without) = crash_and_recover(load(dirty_pages_min));
    let with_stop = load(dirty_pages_min);
    with_stop
        .jet
        .stop_service_instance(with_stop.instance)
        .unwrap();
    let (with, recover_with) = crash_and_recover(with_stop);

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "jetsim stop value: {dirty} dirty pages in the cache (2 KiB pages, in-memory storage)"
    );
    println!();
    println!("  term without a stop          {:>9.2} ms", ms(term_alone));
    println!("  stop                         {:>9.2} ms", ms(stop_time));
    println!(
        "  term after the stop          {:>9.2} ms",
        ms(term_after_stop)
    );
    println!(
        "  term after stop / term alone {:>9.3}",
        term_after_stop.as_secs_f64() / term_alone.as_secs_f64()
    );
    println!();
    println!("  crash without a stop: recovery replayed {:>10} log bytes, redid {:>6} pages, init {:.2} ms",
        without.log_bytes_replayed, without.pages_redone, ms(recover_without));
    println!("  crash right after a stop:  recovery replayed {:>10} log bytes, redid {:>6} pages, init {:.2} ms",
        with.log_bytes_replayed, with.pages_redone, ms(recover_with));
    assert!(
        without.pages_redone > 0,
        "the crash without a stop had nothing to redo"
    );
    assert_eq!(with.pages_redone, 0, "a stop should leave no redo work");
}
