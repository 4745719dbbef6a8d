//! Interleavings per second of the full simulation (engine + recording + checkers) against
//! bare shuttle running the same shape (same threads, one shared-mutex operation per call of
//! the same workload, no engine, no checks), measured in one run, single-threaded.
//!
//! Both run on the bench's own thread, as `explore`'s workers do.
//!
//! Run: `cargo bench -p jetsim --bench interleavings` (`JETSIM_BENCH_SEEDS`, default 2000).

use jetsim::config::{RunConfig, Schedule, Scheduling};
use jetsim::simulation::run_workload_here;
use jetsim_engine::Mutations;
use std::time::{Duration, Instant};

fn bare_shuttle(config: &RunConfig, calls_per_thread: Vec<usize>) {
    let body = move || {
        let shared = std::sync::Arc::new(shuttle::sync::Mutex::new(0u64));
        let handles: Vec<_> = calls_per_thread
            .iter()
            .map(|&calls| {
                let shared = shared.clone();
                shuttle::thread::spawn(move || {
                    for _ in 0..calls {
                        *shared.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    };
    let iterations = match config.schedule {
        Schedule::Random => shuttle::Runner::new(
            shuttle::scheduler::RandomScheduler::new_from_seed(config.schedule_seed, 1),
            shuttle::Config::new(),
        )
        .run(body),
        // The simulation runs PCT twice per seed (calibration, then the recorded run).
        Schedule::Pct { depth } => shuttle::Runner::new(
            shuttle::scheduler::PctScheduler::new_from_seed(config.schedule_seed, depth, 2),
            shuttle::Config::new(),
        )
        .run(body),
        Schedule::Urw => shuttle::Runner::new(
            shuttle::scheduler::UrwRandomScheduler::new_from_seed(config.schedule_seed, 2),
            shuttle::Config::new(),
        )
        .run(body),
    };
    assert!(iterations >= 1);
}

fn main() {
    let seeds: u64 = std::env::var("JETSIM_BENCH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let runs: Vec<_> = (0..seeds)
        .map(|seed| {
            let config = RunConfig::derive(seed, Scheduling::Mix);
            let workload = config.workload();
            (config, workload)
        })
        .collect();

    // Alternate full and bare seed by seed, so drift in the machine's speed hits both alike.
    let mut checker = Duration::ZERO;
    let mut calls = 0usize;
    let mut full = Duration::ZERO;
    let mut bare = Duration::ZERO;
    for (config, workload) in &runs {
        let started = Instant::now();
        let report = run_workload_here(config, workload, Mutations::NONE);
        full += started.elapsed();
        assert!(
            report.passed(),
            "seed {} failed: {:?}",
            config.seed,
            report.verdict.violations
        );
        checker += Duration::from_micros(report.check_micros);
        calls += report.calls();
        // The bare run gets the same number of calls per thread as the simulation recorded
        // (program, wind-down and final term included).
        let history = report.history.expect("completed");
        let threads = workload.threads.len() + 1;
        let mut per_thread = vec![0usize; threads];
        for event in &history.events {
            per_thread[event.thread.min(threads - 1)] += 1;
        }
        let started = Instant::now();
        bare_shuttle(config, per_thread);
        bare += started.elapsed();
    }

    let rate = |d: Duration| seeds as f64 / d.as_secs_f64();
    println!("jetsim bench: {seeds} seeds (mix of random, PCT and URW), one thread");
    println!(
        "  full simulation      {:>9.0} interleavings/s  ({:.2} s, {} calls)",
        rate(full),
        full.as_secs_f64(),
        calls
    );
    println!(
        "  bare shuttle         {:>9.0} interleavings/s  ({:.2} s)",
        rate(bare),
        bare.as_secs_f64()
    );
    println!("  ratio full / bare    {:>9.3}", rate(full) / rate(bare));
    println!(
        "  checker share        {:>8.1}% of the full simulation's time",
        100.0 * checker.as_secs_f64() / full.as_secs_f64()
    );
}
