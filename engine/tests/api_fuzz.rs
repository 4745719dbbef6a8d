//! The bounded run of the API fuzzer inside `cargo test` (the fuzzer itself lives in
//! `engine/examples/api_fuzz/`). `JETSIM_FUZZ_CALLS` raises the number of calls; a failure
//! prints every violation with the command that replays it.

#[path = "../examples/api_fuzz/fuzzer.rs"]
#[allow(dead_code)]
mod fuzzer;

use fuzzer::{Backend, FuzzOptions, FuzzReport};

fn calls(default: u64) -> u64 {
    std::env::var("JETSIM_FUZZ_CALLS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn assert_passed(options: &FuzzOptions, report: &FuzzReport) {
    let summary = report.summary(options);
    println!("{summary}");
    assert!(report.passed(), "{summary}");
    assert_eq!(report.calls, options.calls, "every call was made");
}

/// 20,000 calls on the simulated disk, with crashes and restarts: no panic, no failed call
/// that changed state, no gated success after a stop.
#[test]
fn fuzz_on_the_simulated_disk_breaks_no_rule() {
    let options = FuzzOptions::new(calls(20_000), 1);
    let report = fuzzer::run(&options);
    assert_passed(&options, &report);
    // The run must have reached what it exists to reach, or passing means nothing.
    assert!(
        report.stops > 0 && report.terms > 0 && report.restarts > 0,
        "{report:?}"
    );
    assert!(report.failed_calls_compared > 1_000, "{report:?}");
    assert!(report.gated_calls_after_stop > 0, "{report:?}");
    assert!(report.succeeded > report.calls / 10, "{report:?}");
}

/// One seed, one trace: the replay command in a violation only works if this holds.
#[test]
fn a_seed_replays_the_same_trace() {
    let options = FuzzOptions::new(calls(20_000) / 10, 7);
    let a = fuzzer::run(&options);
    let b = fuzzer::run(&options);
    assert_eq!(a.trace_hash, b.trace_hash);
    let other = fuzzer::run(&FuzzOptions::new(options.calls, 8));
    assert_ne!(a.trace_hash, other.trace_hash, "the seed decides the calls");
}

/// Real files in a temporary folder.
#[test]
fn fuzz_on_real_files_breaks_no_rule() {
    let dir = std::env::temp_dir().join(format!("jetsim-api-fuzz-test-{}", std::process::id()));
    let mut options = FuzzOptions::new(calls(20_000) / 4, 2);
    options.backend = Backend::Files(dir.join("root"));
    std::fs::create_dir_all(dir.join("root")).unwrap();
    let report = fuzzer::run(&options);
    let _ = std::fs::remove_dir_all(&dir);
    assert_passed(&options, &report);
    // Another process visited and was refused files this one held (the OS lock path).
    assert!(report.neighbour_refusals > 0, "{report:?}");
}

/// Four OS threads sharing handles, one of them stopping and terming.
#[test]
fn fuzz_with_four_threads_breaks_no_rule() {
    let mut options = FuzzOptions::new(calls(20_000), 3);
    options.threads = 4;
    let report = fuzzer::run(&options);
    let summary = report.summary(&options);
    println!("{summary}");
    assert!(report.passed(), "{summary}");
}
