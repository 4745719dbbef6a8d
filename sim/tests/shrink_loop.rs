//! The README's shrink loop, as a user runs it: `explore --mutant StopCheckpointNotPersisted --shrink
//! --out DIR` finds a failing seed and shrinks it into a regression scenario that passes the
//! suite's own rules for regressions (at most `REGRESSION_CALLS_MAX` calls, a mutant, an
//! expected failure, its story), says where it went, and does not claim that a file outside
//! `scenarios/regressions/` runs in `cargo test`.

use jetsim::scenario::Scenario;
use jetsim::shrink::REGRESSION_CALLS_MAX;
use std::process::Command;

#[test]
fn explore_shrink_writes_a_regression_the_suite_accepts_where_out_says() {
    let out = std::env::temp_dir().join(format!("jetsim-shrink-loop-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_jetsim"))
        .args([
            "explore",
            "--seeds",
            "100",
            "--mutant",
            "StopCheckpointNotPersisted",
            "--jobs",
            "2",
            "--shrink",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("run jetsim");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    // The campaign failed (the planted bug), so the exit code is 1 either way.
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap_or_else(|e| panic!("{}: {e}\n{stdout}", out.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}\n{stdout}");
    let scenario = Scenario::load(&files[0]).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    let calls: usize = scenario.threads.iter().map(Vec::len).sum();
    assert!(calls <= REGRESSION_CALLS_MAX, "{calls} calls\n{stdout}");
    assert_eq!(
        scenario.mutant.as_deref(),
        Some("StopCheckpointNotPersisted")
    );
    assert!(!scenario.expect.fail.is_empty());
    assert!(scenario.description.contains("Shrunk by"));
    assert!(
        stdout.contains(&format!(
            "regression scenario written to {}",
            files[0].display()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("runs in `cargo test"), "{stdout}");
    assert!(
        stdout.contains("move it to scenarios/regressions/"),
        "{stdout}"
    );
    // The file meets its own expectations when run again.
    assert!(scenario.run().unwrap().missed_expectations().is_empty());
}
