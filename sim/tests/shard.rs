//! Sharding on existing CI engines: a campaign run as 4 `explore --shard K/4` processes and
//! joined by `jetsim merge` is the unsharded campaign, seed by seed (same trace hashes, same
//! verdicts, same summary); `merge` refuses overlapping shards and a missing one.

#[allow(dead_code)]
mod common;

use common::{said, FAILING_EXPLORE};
use jetsim::check::Rule;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The failing campaign of the other tests, from seed 7, on one thread.
fn campaign() -> Vec<&'static str> {
    [&FAILING_EXPLORE[..], &["--start", "7", "--jobs", "1"]].concat()
}

fn scratch(name: &str) -> PathBuf {
    common::scratch("shard", name)
}

fn jetsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_jetsim"))
}

fn load(path: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn four_shards_merged_are_the_unsharded_campaign_seed_by_seed() {
    let whole = scratch("whole.json");
    let whole_run = jetsim()
        .args(campaign())
        .arg("--json")
        .arg(&whole)
        .output()
        .unwrap();
    // The planted bug fails some seeds: exit 1, and the report is still written.
    assert_eq!(whole_run.status.code(), Some(1), "{}", said(&whole_run));

    let shards: Vec<PathBuf> = (1..=4)
        .map(|k| scratch(&format!("shard-{k}.json")))
        .collect();
    let children: Vec<_> = shards
        .iter()
        .enumerate()
        .map(|(i, path)| {
            jetsim()
                .args(campaign())
                .args(["--shard", &format!("{}/4", i + 1), "--json"])
                .arg(path)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(matches!(status.code(), Some(0 | 1)), "{status}");
    }
    let mut shard_seeds = Vec::new();
    for path in &shards {
        let report = load(path);
        let seeds: Vec<u64> = report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seed"].as_u64().unwrap())
            .collect();
        assert_eq!(seeds.len(), 10, "40 seeds in 4 shards");
        shard_seeds.push(seeds);
    }
    // Round robin: shard 1 holds seeds 7, 11, 15, ...
    assert_eq!(shard_seeds[0][..3], [7, 11, 15]);

    let merged = scratch("merged.json");
    let junit = scratch("merged.xml");
    let merge = jetsim()
        .arg("merge")
        .args(&shards)
        .arg("--json")
        .arg(&merged)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(
        merge.status.code(),
        Some(1),
        "failures merge as failures: {}",
        said(&merge)
    );
    let (whole_report, merged_report) = (load(&whole), load(&merged));
    let xml = std::fs::read_to_string(&junit).unwrap();

    let by_seed = |report: &Value| -> Vec<(u64, String, bool, Value)> {
        report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["seed"].as_u64().unwrap(),
                    r["trace_hash"].as_str().unwrap().to_owned(),
                    r["passed"].as_bool().unwrap(),
                    r["violations"].clone(),
                )
            })
            .collect()
    };
    let (expected, got) = (by_seed(&whole_report), by_seed(&merged_report));
    assert_eq!(expected.len(), 40);
    assert_eq!(got.len(), 40);
    for (e, g) in expected.iter().zip(&got) {
        assert_eq!(
            e, g,
            "seed {} differs between the whole run and the merge",
            e.0
        );
    }
    assert!(expected.iter().any(|(_, _, passed, _)| !passed));
    for field in [
        "seeds_run",
        "seeds_failed",
        "calls",
        "failures_by_rule",
        "passed",
        "exit_code",
    ] {
        assert_eq!(
            whole_report["summary"][field], merged_report["summary"][field],
            "summary.{field}"
        );
    }
    // The merge prints the same per-rule table as the unsharded run, in the same order.
    // (The coverage table is explore's alone: a shard report does not carry marks.)
    let rule_lines = |output: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
            .filter(|l| {
                Rule::ALL
                    .iter()
                    .any(|r| l.trim_start().starts_with(r.name()))
            })
            .map(str::to_owned)
            .collect()
    };
    assert!(rule_lines(&whole_run).len() >= 9, "{}", said(&whole_run));
    assert_eq!(rule_lines(&merge), rule_lines(&whole_run));
    assert_eq!(merged_report["command"]["name"], "merge");
    assert_eq!(
        merged_report["command"]["merged_from"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert!(merged_report["command"].get("shard").is_none());
    assert_eq!(xml.matches("<testcase ").count(), 40);

    // A merge that must be refused: exit 2; returns what it said.
    let refused = |reports: &[&PathBuf]| -> String {
        let output = jetsim()
            .arg("merge")
            .args(reports)
            .arg("--json")
            .arg(scratch("bad.json"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", said(&output));
        said(&output)
    };
    // Overlap: shard 1 twice.
    let overlap = refused(&[&shards[0], &shards[0], &shards[1], &shards[2], &shards[3]]);
    assert!(overlap.contains("the shards overlap"), "{overlap}");
    // A missing shard.
    let missing = refused(&[&shards[0], &shards[1], &shards[2]]);
    assert!(
        missing.contains("10 seeds of 7..47 are in no report"),
        "{missing}"
    );
    assert!(
        !scratch("bad.json").exists(),
        "a refused merge writes nothing"
    );

    for path in shards.iter().chain([&whole, &merged, &junit]) {
        std::fs::remove_file(path).unwrap();
    }
}

/// The checked-in CI examples use the flags this binary takes and agree with themselves on
/// the shard count (a matrix of 4 with SHARDS=4; an Indexed Job of 4 completions with
/// SHARDS=4), and their shard commands run.
#[test]
fn the_ci_examples_shard_and_merge_with_flags_jetsim_accepts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ci");
    let actions = std::fs::read_to_string(root.join("github-actions.yml")).unwrap();
    let kubernetes = std::fs::read_to_string(root.join("kubernetes-indexed-job.yaml")).unwrap();
    assert!(actions.contains("shard: [1, 2, 3, 4]") && actions.contains("SHARDS: \"4\""));
    assert!(actions.contains("--shard \"${{ matrix.shard }}/$SHARDS\""));
    assert!(actions.contains("merge shard-*.json") && actions.contains("--junit"));
    assert!(actions.contains("upload-artifact"));
    assert!(kubernetes.contains("completionMode: Indexed"));
    assert!(kubernetes.contains("completions: 4") && kubernetes.contains("value: \"4\""));
    assert!(kubernetes.contains("shard=$((JOB_COMPLETION_INDEX + 1))"));
    assert!(kubernetes.contains("jetsim merge /reports/shard-*.json"));
    // The shard command both files run, with a small range: accepted, and it writes a report
    // of its share.
    let report = scratch("example.json");
    let output = jetsim()
        .args(["explore", "--seeds", "8", "--shard", "4/4", "--json"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", said(&output));
    assert_eq!(load(&report)["runs"].as_array().unwrap().len(), 2);
    std::fs::remove_file(&report).unwrap();
}
