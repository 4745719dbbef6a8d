//! The `merge` command: join the `--json` reports of `explore --shard` runs with
//! [`crate::report::merge`], print the merged summary and write the merged report.

use crate::check::Rule;
use crate::report::{Report, Summary};
use std::path::{Path, PathBuf};

/// Joins the reports at `reports`, prints the merged summary, writes the merged report to
/// `json` (and `junit`). `command_line` is recorded in the merged report.
pub fn merge_files(
    reports: &[PathBuf],
    json: &Path,
    junit: Option<&Path>,
    command_line: String,
) -> Result<bool, String> {
    let loaded = reports
        .iter()
        .map(|path| Report::load(path).map(|r| (path.display().to_string(), r)))
        .collect::<Result<Vec<_>, String>>()?;
    let merged = crate::report::merge(&loaded, command_line)?;
    let c = &merged.command;
    println!(
        "jetsim merge: {} reports, seeds {}..{} ({} strategy{})",
        loaded.len(),
        c.start,
        c.start + c.seeds,
        c.strategy,
        c.mutant
            .as_deref()
            .map(|m| format!(", mutant {m}"))
            .unwrap_or_default()
    );
    println!();
    print_totals(&merged.summary);
    for run in merged.runs.iter().filter(|r| !r.passed).take(5) {
        let violations: Vec<String> = run.violations.iter().map(ToString::to_string).collect();
        println!("\nFAILED seed {}:\n  {}", run.seed, violations.join("\n  "));
        println!("  reproduce: {}", run.replay);
    }
    merged.write_json(json)?;
    println!("report written to {}", json.display());
    if let Some(path) = junit {
        merged.write_junit(path)?;
        println!("JUnit file written to {}", path.display());
    }
    Ok(merged.summary.passed)
}

/// The merged summary's table: runs, failures by rule, calls, wall time.
fn print_totals(s: &Summary) {
    println!("  seeds run              {:>10}", s.seeds_run);
    println!("  seeds failed           {:>10}", s.seeds_failed);
    // In the order `explore` prints them (the report's map is alphabetical); a rule this
    // version does not know (from a report that names one) goes last.
    let mut by_rule: Vec<(&str, u64)> = Rule::ALL
        .iter()
        .filter_map(|rule| {
            let name = rule.name();
            s.failures_by_rule.get(name).map(|&count| (name, count))
        })
        .collect();
    for (name, &count) in &s.failures_by_rule {
        if !by_rule.iter().any(|(known, _)| known == name) {
            by_rule.push((name, count));
        }
    }
    for (rule, count) in by_rule {
        println!("    {rule:<20} {count:>10}");
    }
    if let Some(seeds) = &s.nondeterministic_seeds {
        println!("  nondeterministic seeds {:>10}", seeds.len());
    }
    println!("  calls checked          {:>10}", s.calls);
    println!("  wall time (shards)     {:>9.2}s", s.wall_seconds);
}
