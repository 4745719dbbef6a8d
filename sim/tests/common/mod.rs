//! What the integration tests share: running the `jetsim` binary and reading what it said,
//! scratch paths, the failing campaign several of them start from, the scenario folder and a
//! scenario's timeline page. Each test crate uses a part of it, so each includes it with
//! `#[allow(dead_code)] mod common;`.

use jetsim::check::Violation;
use jetsim::history::History;
use jetsim::timeline::{render_html, TimelineInput};
use jetsim::transitions::Replay;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the built `jetsim` binary with `args`.
pub fn jetsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jetsim"))
        .args(args)
        .output()
        .expect("run jetsim")
}

/// What the binary printed: stdout, then stderr.
pub fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A path in the temporary folder, unique to this test process: `jetsim-{test}-{pid}-{name}`.
pub fn scratch(test: &str, name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("jetsim-{test}-{}-{name}", std::process::id()))
}

/// A campaign that fails: 40 PCT seeds with the stop's checkpoint not persisted (the
/// preparation rule catches it). Add `--jobs` and the outputs wanted.
pub const FAILING_EXPLORE: [&str; 7] = [
    "explore",
    "--seeds",
    "40",
    "--strategy",
    "pct",
    "--mutant",
    "StopCheckpointNotPersisted",
];

/// The top-level `scenarios/` folder.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// The timeline page of a run of `scenario` (titled with its name, described by its
/// description).
pub fn scenario_page(
    scenario: &jetsim::scenario::Scenario,
    history: &History,
    violations: &[Violation],
    replay: &Replay,
) -> String {
    render_html(&TimelineInput {
        title: scenario.name.clone(),
        details: vec![scenario.description.clone()],
        threads: scenario.threads.len(),
        history,
        violations,
        replay: Some(replay),
    })
}
