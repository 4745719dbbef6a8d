//! A test that fails after running simulations prints its own panic message, not shuttle's
//! "Tried to get ExecutionState ... NotSet" noise (`jetsim::panic_hook`). The test re-runs
//! itself as a child process that panics, and reads what the child printed.

use jetsim::config::Scheduling;
use jetsim::simulation::run_seed_here;
use jetsim_engine::Mutations;
use std::process::Command;

const CHILD: &str = "JETSIM_PANIC_OUTPUT_CHILD";

#[test]
fn a_failing_assertion_after_a_run_prints_only_its_own_message() {
    if std::env::var_os(CHILD).is_some() {
        let report = run_seed_here(3, Scheduling::Random, Mutations::NONE);
        assert!(report.passed());
        panic!("the child's own failure message");
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_failing_assertion_after_a_run_prints_only_its_own_message",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the child must fail");
    assert!(
        stderr.contains("the child's own failure message"),
        "{stderr}"
    );
    assert!(!stderr.contains("ExecutionState"), "{stderr}");
    assert!(!stderr.contains("serializing schedule"), "{stderr}");
}
