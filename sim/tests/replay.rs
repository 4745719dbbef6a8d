//! The reproduce path, tested end to end (shuttle's own replay tests are disabled upstream
//! because its schedule stopped being printed: don't trust the path, test it). Kept in its own
//! test binary: shuttle installs its panic hook once per process.

#[allow(dead_code)]
mod common;

use common::{jetsim, scratch, FAILING_EXPLORE};
use jetsim::campaign::{run_campaign, CampaignOptions};
use jetsim::config::Scheduling;
use jetsim::simulation::{replay_command, run_seed};
use jetsim_engine::{Mutant, Mutations};

#[test]
fn a_failure_found_by_explore_is_reproduced_by_the_printed_replay_command() {
    // Explore with a planted bug until it fails.
    // PCT finds StopFlagLast first at seed 246 (9 of the first 1,000 seeds fail).
    let options = CampaignOptions {
        seeds: 400,
        start: 0,
        scheduling: Scheduling::Pct,
        json: None,
        check_determinism: false,
        mutant: Some("StopFlagLast".into()),
        jobs: 2,
        progress: false,
        faults: false,
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).unwrap();
    let failure = summary.failures.first().expect("the planted bug was found");
    let seed = failure.config.seed;
    let command = replay_command(seed, Scheduling::Pct, Some("StopFlagLast"));
    assert_eq!(
        command,
        format!(
            "cargo run --release -p jetsim -- replay {seed} --strategy pct --mutant StopFlagLast"
        )
    );

    // In process: the same seed gives the identical run and the same verdict.
    let again = run_seed(
        seed,
        Scheduling::Pct,
        Mutations::NONE.with(Mutant::StopFlagLast),
    );
    assert_eq!(again.trace_hash, failure.trace_hash);
    assert_eq!(again.verdict, failure.verdict);

    // Through the binary, with exactly the printed arguments.
    let arguments: Vec<&str> = command
        .split_whitespace()
        .skip_while(|w| *w != "--")
        .skip(1)
        .collect();
    let output = jetsim(&arguments);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "replay of a failing seed exits 1:\n{stdout}"
    );
    assert!(stdout.contains("verdict: FAILED"), "{stdout}");
    assert!(
        stdout.contains(&format!("trace hash {:016x}", failure.trace_hash)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&command),
        "the replay prints its own reproduce command:\n{stdout}"
    );
}

#[test]
fn explore_reports_failures_with_their_seed_and_command() {
    let output = jetsim(&[&FAILING_EXPLORE[..], &["--jobs", "1"]].concat());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("preparation"), "{stdout}");
    assert!(stdout.contains("FAILED seed "), "{stdout}");
    assert!(
        stdout.contains("reproduce: cargo run --release -p jetsim -- replay ")
            && stdout.contains("--mutant StopCheckpointNotPersisted"),
        "{stdout}"
    );
}

// Shaped like scenarios.rs's tests of `scenario --html` and `replay --html` (run the binary
// with an output file, read the file back, remove it): they stay apart because each checks a
// different command's file, and what they share (`jetsim`, `scratch`) is in `common` already.
#[test]
fn a_clean_explore_with_the_determinism_check_passes_and_writes_json() {
    let json = scratch("explore", "report.json");
    let output = jetsim(&[
        "explore",
        "--seeds",
        "30",
        "--check-determinism",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("nondeterministic seeds          0"),
        "{stdout}"
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["jetsim_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(report["command"]["name"], "explore");
    assert_eq!(report["summary"]["seeds_run"], 30);
    assert_eq!(report["summary"]["exit_code"], 0);
    assert_eq!(
        report["summary"]["nondeterministic_seeds"],
        serde_json::json!([])
    );
    let runs = report["runs"].as_array().expect("an array of runs");
    assert_eq!(runs.len(), 30);
    assert!(runs
        .iter()
        .all(|r| r["passed"] == true && r["deterministic"] == true));
    assert!(runs[0]["replay"]
        .as_str()
        .unwrap()
        .starts_with("cargo run --release -p jetsim -- replay 0"));
}
