//! The accepted snapshots in this folder and the scenarios they belong to: every scenario
//! (`scenarios/*.json`, `scenarios/regressions/*.json`) has its `scenario@NAME.json.snap`
//! here, and every snapshot here belongs to a scenario, so a renamed or deleted scenario
//! cannot leave a stale snapshot behind.
//!
//! This file is also why `cargo insta review`, `cargo insta test --review` and `cargo insta
//! pending-snapshots` see this folder: cargo-insta looks for pending snapshots under each
//! package's manifest folder and the folders of its targets' sources, and this test target
//! (`[[test]] snapshot_files` in `sim/Cargo.toml`) has its source here. The snapshots stay in
//! the top-level `snapshots/` folder the layout promises.

use std::collections::BTreeSet;
use std::path::Path;

fn names_in(dir: &Path, prefix: &str, suffix: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| {
            name.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(suffix))
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn every_scenario_has_a_snapshot_and_every_snapshot_a_scenario() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let snapshots = names_in(&root.join("snapshots"), "scenario@", ".json.snap");
    let mut scenarios = names_in(&root.join("scenarios"), "", ".json");
    scenarios.extend(names_in(&root.join("scenarios/regressions"), "", ".json"));
    assert!(scenarios.len() >= 16, "{} scenarios", scenarios.len());
    let orphans: Vec<&String> = snapshots.difference(&scenarios).collect();
    assert!(
        orphans.is_empty(),
        "snapshots without a scenario (delete them, or restore the scenario): {orphans:?}"
    );
    let missing: Vec<&String> = scenarios.difference(&snapshots).collect();
    assert!(
        missing.is_empty(),
        "scenarios without an accepted snapshot: {missing:?}; run `cargo insta test -p jetsim \
         --test scenarios --review` and accept them"
    );
}
