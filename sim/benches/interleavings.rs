//! Interleavings per second of the full simulation (engine + recording + checkers) against
//! bare shuttle running the same shape (same threads, one shared-mutex operation per call of
//! the same workload, no engine, no checks), measured in one run, single-threaded; then what
//! each stage of a run cost, so a regression shows where it is.
//!
//! Both run on the bench's own thread, as `explore`'s workers do. The full simulation is the
//! steps `simulation::run_workload_here` takes, each timed: execution (`harness::run_here`:
//! setup, the programs under shuttle, the disk oracle at each stop, wind-down, final term),
//! checking (the model and every rule) and reporting (the trace hash). Workload generation
//! (the seed's configuration and programs) is timed on its own and, as before, kept out of
//! the ratio: the bare side is given the shape, not asked to draw it.
//!
//! It also prints the bound the simulation's scheduling points alone set on the ratio: a
//! pass of bare runs whose threads make no calls gives shuttle's cost of a run besides its
//! points, bare shuttle's runs give the cost of a point, and a simulation that cost nothing
//! but its points would take the first plus its points at the second.
//!
//! Run: `cargo bench -p jetsim --bench interleavings` (`JETSIM_BENCH_SEEDS`, default 2000).

use jetsim::check::check_run;
use jetsim::config::{RunConfig, Schedule, Scheduling};
use jetsim::harness::{self, RunEnd};
use jetsim::model::ModelState;
use jetsim::workload::Workload;
use jetsim_engine::Mutations;
use std::time::{Duration, Instant};

thread_local! {
    /// Scheduling points of the bare runs' last executions (the kept one, as the simulation's).
    static BARE_SCHEDULING_POINTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Runs bare shuttle on `config`'s schedule: the threads of `calls_per_thread`, each making
/// its calls on one shared mutex. Returns the scheduling points of the kept execution.
fn bare_shuttle(config: &RunConfig, calls_per_thread: Vec<usize>) -> u64 {
    BARE_SCHEDULING_POINTS.with(|points| points.set(0));
    let runs = match config.schedule {
        Schedule::Random => 1,
        Schedule::Pct { .. } | Schedule::Urw => 2,
    };
    let started = std::sync::atomic::AtomicUsize::new(0);
    let body = move || {
        let kept = started.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == runs;
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
        if kept {
            let points = shuttle::current::context_switches() as u64;
            BARE_SCHEDULING_POINTS.with(|kept| kept.set(points));
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
    BARE_SCHEDULING_POINTS.with(|points| points.get())
}

/// Wall time per stage of a run, summed over the seeds.
#[derive(Default)]
struct Stages {
    generation: Duration,
    execution: Duration,
    /// Part of `execution`: the disk oracle's crash copy and recovery at each stop.
    disk_oracle: Duration,
    checking: Duration,
    reporting: Duration,
}

impl Stages {
    fn full(&self) -> Duration {
        self.execution + self.checking + self.reporting
    }

    fn print(&self, seeds: u64) {
        let full = self.full().as_secs_f64();
        let row = |name: &str, d: Duration, of_full: bool| {
            let share = if of_full {
                format!(
                    "{:>5.1}% of the full simulation",
                    100.0 * d.as_secs_f64() / full
                )
            } else {
                "(outside the ratio)".to_owned()
            };
            println!(
                "    {name:<24} {:>8.1} µs/run  {:>7.2} s  {share}",
                d.as_secs_f64() * 1e6 / seeds as f64,
                d.as_secs_f64(),
            );
        };
        println!("  stage costs:");
        row("workload generation", self.generation, false);
        row("execution", self.execution, true);
        row("  of which disk oracle", self.disk_oracle, true);
        row("checking", self.checking, true);
        row("reporting (trace hash)", self.reporting, true);
    }
}

fn timed<T>(total: &mut Duration, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let value = f();
    *total += started.elapsed();
    value
}

/// CPU time the calling thread has used (user + system), from `/proc/thread-self/stat` in
/// clock ticks (1/100 s, sampled by the kernel, so unbiased over many runs); `None` where the
/// file is missing. On a machine shared with other work the wall-time rates above move with
/// the load; this ratio does not.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which is parenthesised and may hold spaces): utime and
    // stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// [`timed`], also adding the thread's CPU time to `cpu`.
fn timed_cpu<T>(wall: &mut Duration, cpu: &mut Option<Duration>, f: impl FnOnce() -> T) -> T {
    let before = thread_cpu();
    let value = timed(wall, f);
    if let (Some(before), Some(after), Some(total)) = (before, thread_cpu(), cpu.as_mut()) {
        *total += after.saturating_sub(before);
    }
    value
}

/// The same threads as each run's, making no calls: what a run costs shuttle besides its
/// points, and those points. A pass of its own, after the others, so it warms neither
/// side's runs.
fn empty_runs(runs: &[(RunConfig, Workload)]) -> (Duration, u64) {
    let (mut time, mut points) = (Duration::ZERO, 0);
    for (config, workload) in runs {
        let threads = workload.threads.len() + 1;
        points += timed(&mut time, || bare_shuttle(config, vec![0; threads]));
    }
    (time, points)
}

/// Prints the scheduling points per interleaving and the bound they set on the ratio, from
/// the bare runs' and the empty runs' time and points over `seeds` seeds.
fn print_points(
    seeds: u64,
    (bare, bare_points): (Duration, u64),
    (empty, empty_points): (Duration, u64),
) {
    let per_seed = |points: u64| points as f64 / seeds as f64;
    let full_points = per_seed(harness::take_scheduling_points());
    let (bare_points, empty_points) = (per_seed(bare_points), per_seed(empty_points));
    println!(
        "  scheduling points    {full_points:>9.0} per interleaving, full; {bare_points:.0} bare"
    );
    // A run costs shuttle its setup (the empty runs: threads that make no calls) plus its
    // points, each costing what bare shuttle's cost. A simulation that made its points and
    // nothing else (engine and checkers free) would take the setup plus its points' cost: the
    // most its ratio could be.
    let point_seconds = (bare.as_secs_f64() - empty.as_secs_f64()).max(0.0)
        / ((bare_points - empty_points) * seeds as f64).max(1.0);
    let points_only_seconds =
        empty.as_secs_f64() + (full_points - empty_points).max(0.0) * seeds as f64 * point_seconds;
    println!(
        "  bound from points    {:>9.3}  (a run of shuttle's setup and {full_points:.0} points \
         at {:.2} µs a point, the engine and checkers free; setup {:.0} µs a run, {empty_points:.0} \
         points)",
        bare.as_secs_f64() / points_only_seconds.max(1e-9),
        point_seconds * 1e6,
        empty.as_secs_f64() * 1e6 / seeds as f64,
    );
}

fn main() {
    let seeds: u64 = std::env::var("JETSIM_BENCH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut stages = Stages::default();
    let runs: Vec<_> = (0..seeds)
        .map(|seed| {
            timed(&mut stages.generation, || {
                let config = RunConfig::derive(seed, Scheduling::Mix);
                let workload = config.workload();
                (config, workload)
            })
        })
        .collect();

    // Alternate full and bare seed by seed, so drift in the machine's speed hits both alike.
    let mut calls = 0usize;
    let mut bare = Duration::ZERO;
    let mut bare_points = 0u64;
    let (mut full_cpu, mut bare_cpu) = (Some(Duration::ZERO), Some(Duration::ZERO));
    harness::take_disk_oracle_time();
    for (config, workload) in &runs {
        let cpu_before = thread_cpu();
        let end = timed(&mut stages.execution, || {
            harness::run_here(config, workload, Mutations::NONE)
        });
        stages.disk_oracle += harness::take_disk_oracle_time();
        let history = match end {
            RunEnd::Completed(history) => history,
            RunEnd::Panicked(message) => panic!("seed {} panicked: {message}", config.seed),
        };
        let verdict = timed(&mut stages.checking, || {
            check_run(&history, &ModelState::for_run(config))
        });
        assert!(
            verdict.violations.is_empty(),
            "seed {} failed: {:?}",
            config.seed,
            verdict.violations
        );
        let hash = timed(&mut stages.reporting, || history.trace_hash());
        std::hint::black_box(hash);
        if let (Some(before), Some(after), Some(total)) = (cpu_before, thread_cpu(), &mut full_cpu)
        {
            *total += after.saturating_sub(before);
        }
        calls += history.events.len();
        // The bare run gets the same number of calls per thread as the simulation recorded
        // (program, wind-down and final term included).
        let threads = workload.threads.len() + 1;
        let mut per_thread = vec![0usize; threads];
        for event in &history.events {
            per_thread[event.thread.min(threads - 1)] += 1;
        }
        bare_points += timed_cpu(&mut bare, &mut bare_cpu, || {
            bare_shuttle(config, per_thread)
        });
    }
    let empty = empty_runs(&runs);

    let full = stages.full();
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
    if let (Some(full_cpu), Some(bare_cpu)) = (full_cpu, bare_cpu) {
        println!(
            "  ratio in CPU time    {:>9.3}  (full {:.2} s, bare {:.2} s of this thread's CPU)",
            bare_cpu.as_secs_f64() / full_cpu.as_secs_f64().max(1e-9),
            full_cpu.as_secs_f64(),
            bare_cpu.as_secs_f64()
        );
    }
    print_points(seeds, (bare, bare_points), empty);
    println!(
        "  checker share        {:>8.1}% of the full simulation's time",
        100.0 * stages.checking.as_secs_f64() / full.as_secs_f64()
    );
    stages.print(seeds);
}
