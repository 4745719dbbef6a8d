//! The linearizability check at the workload sizes `explore --threads 8 --calls 50` runs:
//! every run gets a verdict (no `search-bound`) and passes. The seed count is small by
//! default and raised with `JETSIM_SCALE_SEEDS`; check times are measured by `explore`'s
//! summary ("check time per run"), never asserted here.

use jetsim::check::Rule;
use jetsim::drive::campaign::{run_campaign, CampaignOptions};
use jetsim::workload::config::{Scheduling, WorkloadSize};

#[test]
fn eight_threads_of_fifty_calls_get_a_verdict() {
    let options = CampaignOptions {
        seeds: std::env::var("JETSIM_SCALE_SEEDS").map_or(24, |n| n.parse().expect("a number")),
        start: std::env::var("JETSIM_SCALE_START").map_or(0, |n| n.parse().expect("a number")),
        scheduling: Scheduling::Mix,
        jobs: 2,
        size: WorkloadSize {
            threads: Some(8),
            calls_per_thread_max: Some(50),
        },
        ..CampaignOptions::default()
    };
    let summary = run_campaign(&options).expect("campaign runs");
    assert_eq!(summary.seeds_run, options.seeds);
    let bounded: Vec<String> = summary
        .failures
        .iter()
        .map(|r| {
            format!(
                "seed {}: {:?}\n  reproduce: {}",
                r.config.seed,
                r.verdict.violations,
                options.replay_command(r.config.seed)
            )
        })
        .collect();
    assert_eq!(
        summary.failures_by_rule.get(&Rule::SearchBound).copied(),
        None,
        "{}",
        bounded.join("\n")
    );
    assert!(bounded.is_empty(), "{}", bounded.join("\n"));
}
