//! The `shrink` command (and `explore --shrink`): shrink a failing seed's workload with
//! [`crate::workload::shrink`] and write it as a regression scenario, or say why it could not.

use crate::drive::campaign::plural;
use crate::workload::config::{FaultMode, Scheduling};
use crate::workload::shrink::{self, ShrinkLimits, REGRESSION_CALLS_MAX};
use std::path::Path;

/// Where regression scenarios live: `cargo test -p jetsim --test scenarios` runs them.
pub const REGRESSIONS_DIR: &str = "scenarios/regressions";

/// Whether `out` is the folder `cargo test` runs regressions from.
fn is_regressions_dir(out: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    out == Path::new(REGRESSIONS_DIR)
        || (canonical(out).is_some() && canonical(out) == canonical(Path::new(REGRESSIONS_DIR)))
}

/// Shrinks `seed`, prints the story and writes the scenario into `out`. Succeeds when it
/// wrote one that the suite accepts as a regression (at most `REGRESSION_CALLS_MAX` calls).
pub fn shrink_to_regression(
    seed: u64,
    strategy: Scheduling,
    faults: FaultMode,
    mutant: Option<&str>,
    out: &Path,
    tree_runs_max: u64,
) -> Result<bool, String> {
    println!(
        "jetsim shrink {seed}: shrinking the failing workload (this runs it a few hundred times)"
    );
    let limits = ShrinkLimits {
        tree_runs_max,
        ..ShrinkLimits::default()
    };
    let shrunk = shrink::shrink_seed(seed, strategy, faults, mutant, limits)?;
    println!("{}", shrunk.story());
    let calls = shrunk.minimal.call_count();
    if calls > REGRESSION_CALLS_MAX {
        let aside = std::env::temp_dir();
        let path = shrink::write_regression(&shrunk.scenario(), &aside)?;
        println!(
            "could not shrink seed {seed} to a regression: {calls} calls remain and a regression \
             may have at most {REGRESSION_CALLS_MAX} (REGRESSION_CALLS_MAX, which \
             regressions_are_small_and_fail_under_their_mutant enforces), so nothing was written \
             to {}. The shrunk scenario is at {} for reading; try another failing seed or a \
             larger --tree-runs.",
            out.display(),
            path.display()
        );
        return Ok(false);
    }
    let path = shrink::write_regression(&shrunk.scenario(), out)?;
    println!(
        "regression scenario written to {} ({})",
        path.display(),
        plural(calls, "call", "calls")
    );
    if is_regressions_dir(out) {
        println!("it runs in `cargo test -p jetsim --test scenarios` from now on; accept its snapshot with `cargo insta test -p jetsim --test scenarios --review` (or INSTA_UPDATE=always and `git diff snapshots/`)");
    } else {
        println!(
            "it is not part of the test suite there; move it to {REGRESSIONS_DIR}/ to make it one"
        );
    }
    Ok(true)
}
