//! The machine-readable results of a campaign: the JSON report `explore --json` writes and
//! `merge` reads and writes (schema: `sim/report.schema.json`), its JUnit XML rendering
//! (`--junit`), seed sharding (`explore --shard K/N`) and the merge of shard reports.
//!
//! The report is one object, `{schema_version, jetsim_version, command, summary, runs}`.
//! `jetsim_version` is recorded because what a seed means (its workload and schedule) is only
//! promised within one version: `merge` refuses reports of different versions.
//!
//! Exit codes, for `explore`, `merge` and every other command: 0 when every run passed (and,
//! with `--check-determinism`, replayed identically), 1 when a run failed a rule (or a
//! scenario missed an expectation, or shrinking could not reach its goal), 2 for bad input or
//! an I/O error (clap's own usage errors also exit 2).
//!
//! The folder also holds what a person reads: [`transitions`] (a run's state transitions as
//! text, the scenarios' snapshots) and [`timeline`] (the HTML timeline of a run).

pub mod concurrency;
pub mod timeline;
pub mod transitions;

use crate::check::{Rule, Violation};
use crate::history::CrashPoint;
use crate::workload::config::RunConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Bumped whenever a field changes meaning or goes away (adding a field is not a change).
pub const SCHEMA_VERSION: u32 = 1;

/// The version of jetsim that wrote a report: seeds keep their meaning within one version.
pub const JETSIM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `--shard K/N`: the K-th (1-based) of N deterministic shares of a seed range, as
/// cargo-nextest's `--partition count:K/N` shares tests. Seed `start + i` belongs to shard
/// `i % N + 1`: round robin, so every shard gets a similar mix of the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// 1-based.
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The offsets into `0..seeds` this shard runs, in order.
    pub fn offsets(self, seeds: u64) -> impl Iterator<Item = u64> {
        (self.index - 1..seeds).step_by(usize::try_from(self.count).unwrap_or(usize::MAX))
    }

    /// How many of `seeds` this shard runs.
    pub fn len(self, seeds: u64) -> u64 {
        if seeds < self.index {
            0
        } else {
            (seeds - self.index) / self.count + 1
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || format!("expected K/N with 1 <= K <= N (e.g. 2/4), got {text:?}");
        let (k, n) = text.split_once('/').ok_or_else(usage)?;
        let index: u64 = k.trim().parse().map_err(|_| usage())?;
        let count: u64 = n.trim().parse().map_err(|_| usage())?;
        if count == 0 || index == 0 || index > count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

/// What produced a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandInfo {
    /// `explore` or `merge`.
    pub name: String,
    /// The command line as given.
    pub line: String,
    /// The whole seed range `start..start + seeds` (a shard runs its share of it).
    pub start: u64,
    pub seeds: u64,
    /// `random`, `pct` or `mix`.
    pub strategy: String,
    pub mutant: Option<String>,
    pub faults: bool,
    pub check_determinism: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// `merge`: the reports it joined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
}

/// Totals over the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub seeds_run: u64,
    pub seeds_failed: u64,
    /// Failing seeds per rule (a seed counts once per rule it broke), every rule listed.
    pub failures_by_rule: BTreeMap<String, u64>,
    pub calls: u64,
    /// Wall time of the campaign; for a merge, the sum of the shards' times.
    pub wall_seconds: f64,
    /// Only with `--check-determinism`: seeds whose two runs differed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nondeterministic_seeds: Option<Vec<u64>>,
    pub passed: bool,
    /// What the command exits with (0 passed, 1 failed).
    pub exit_code: u8,
}

impl Summary {
    /// The totals of `runs`.
    pub fn of_runs(runs: &[RunRecord], wall_seconds: f64, check_determinism: bool) -> Summary {
        let mut failures_by_rule: BTreeMap<String, u64> = Rule::ALL
            .iter()
            .map(|rule| (rule.name().to_owned(), 0))
            .collect();
        for run in runs {
            let rules: std::collections::BTreeSet<Rule> =
                run.violations.iter().map(|v| v.rule).collect();
            for rule in rules {
                *failures_by_rule.entry(rule.name().to_owned()).or_insert(0) += 1;
            }
        }
        let nondeterministic: Vec<u64> = runs
            .iter()
            .filter(|r| r.deterministic == Some(false))
            .map(|r| r.seed)
            .collect();
        let seeds_failed = runs.iter().filter(|r| !r.passed).count() as u64;
        let passed = seeds_failed == 0 && nondeterministic.is_empty();
        Summary {
            seeds_run: runs.len() as u64,
            seeds_failed,
            failures_by_rule,
            calls: runs.iter().map(|r| r.calls).sum(),
            wall_seconds,
            nondeterministic_seeds: check_determinism.then_some(nondeterministic),
            passed,
            exit_code: u8::from(!passed),
        }
    }
}

/// One seed's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub seed: u64,
    pub passed: bool,
    /// Only with `--check-determinism`: whether the second run gave the same trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deterministic: Option<bool>,
    /// The history's hash, 16 hex digits ("0000000000000000" when the run panicked).
    pub trace_hash: String,
    /// Calls recorded (workload, wind-down and final term).
    pub calls: u64,
    pub violations: Vec<Violation>,
    pub config: RunConfig,
    /// Fault runs: mutating disk operations after setup.
    pub disk_ops: Option<u64>,
    pub crash_point: Option<CrashPoint>,
    /// The command that replays this run exactly.
    pub replay: String,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub schema_version: u32,
    pub jetsim_version: String,
    pub command: CommandInfo,
    pub summary: Summary,
    /// In seed order.
    pub runs: Vec<RunRecord>,
}

impl Report {
    pub fn load(path: &std::path::Path) -> Result<Report, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let report: Report = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a jetsim report: {e}", path.display()))?;
        if report.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "{} has schema_version {}; this jetsim reads {SCHEMA_VERSION}",
                path.display(),
                report.schema_version
            ));
        }
        Ok(report)
    }

    pub fn write_json(&self, path: &std::path::Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        write_whole(path, &(text + "\n"))
    }

    pub fn write_junit(&self, path: &std::path::Path) -> Result<(), String> {
        write_whole(path, &self.junit())
    }

    /// JUnit XML: one test suite, one test case per seed; a failing seed's case holds a
    /// `<failure>` whose message names the rules and whose text gives every violation and
    /// the replay command. A nondeterministic seed fails too.
    pub fn junit(&self) -> String {
        let c = &self.command;
        let suite = format!(
            "jetsim {} seeds {}..{} ({} strategy{}{}{})",
            c.name,
            c.start,
            c.start.saturating_add(c.seeds),
            c.strategy,
            c.mutant
                .as_deref()
                .map(|m| format!(", mutant {m}"))
                .unwrap_or_default(),
            if c.faults { ", faults" } else { "" },
            c.shard.map(|s| format!(", shard {s}")).unwrap_or_default()
        );
        let classname = format!("jetsim.{}", c.strategy);
        let failures = self
            .runs
            .iter()
            .filter(|r| !r.passed || r.deterministic == Some(false))
            .count();
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            xml,
            "<testsuites name=\"jetsim\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">",
            self.runs.len(),
            self.summary.wall_seconds
        );
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\">",
            xml_escape(&suite),
            self.runs.len(),
            self.summary.wall_seconds
        );
        let _ = writeln!(
            xml,
            "    <properties>\n      <property name=\"jetsim_version\" value=\"{}\"/>\n      <property name=\"command\" value=\"{}\"/>\n    </properties>",
            xml_escape(&self.jetsim_version),
            xml_escape(&c.line)
        );
        for run in &self.runs {
            let name = format!("seed {}", run.seed);
            let mut problems: Vec<String> = run
                .violations
                .iter()
                .map(|v| format!("[{}] {}", v.rule, v.message))
                .collect();
            let mut kinds: Vec<&str> = run.violations.iter().map(|v| v.rule.name()).collect();
            kinds.dedup();
            if run.deterministic == Some(false) {
                problems
                    .push("not deterministic: two runs of this seed gave different traces".into());
                kinds.push("nondeterministic");
            }
            if problems.is_empty() {
                let _ = writeln!(
                    xml,
                    "    <testcase classname=\"{}\" name=\"{}\"/>",
                    xml_escape(&classname),
                    xml_escape(&name)
                );
                continue;
            }
            let message = format!(
                "seed {} broke {}; reproduce: {}",
                run.seed,
                kinds.join(", "),
                run.replay
            );
            let text = format!("{}\nreproduce: {}\n", problems.join("\n"), run.replay);
            let _ = writeln!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                xml_escape(&classname),
                xml_escape(&name),
                xml_escape(&message),
                xml_escape(&kinds.join(",")),
                xml_escape(&text)
            );
        }
        xml.push_str("  </testsuite>\n</testsuites>\n");
        xml
    }
}

/// Writes `text` to a temporary name beside `path`, then renames it into place: whoever
/// waits for a shard's report (a merge job polling a shared volume) never reads half of one.
fn write_whole(path: &std::path::Path, text: &str) -> Result<(), String> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = std::path::PathBuf::from(temporary);
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Escapes text for XML content and attribute values (the JUnit file).
pub fn xml_escape(text: &str) -> String {
    escape_markup(text, "&apos;")
}

/// Escapes text for XML or HTML content and attribute values, spelling `'` as `apostrophe`
/// (HTML 4 readers do not know XML's `&apos;`, so the timeline page writes `&#39;`).
/// Characters XML 1.0 cannot carry at all (controls other than tab, newline and carriage
/// return) become `\u{..}` text, so a message with a stray control byte still gives a file
/// every JUnit reader parses.
pub fn escape_markup(text: &str, apostrophe: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str(apostrophe),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Joins shard reports (`jetsim merge`) into the report of the whole range: every report must
/// come from the same jetsim version and the same campaign (range, strategy, mutant, faults,
/// determinism check); no seed may appear twice, and every seed of the range must appear.
pub fn merge(reports: &[(String, Report)], line: String) -> Result<Report, String> {
    let Some((first_path, first)) = reports.first() else {
        return Err("merge needs at least one report".into());
    };
    let campaign = |c: &CommandInfo| {
        (
            c.start,
            c.seeds,
            c.strategy.clone(),
            c.mutant.clone(),
            c.faults,
            c.check_determinism,
        )
    };
    let mut runs: BTreeMap<u64, (RunRecord, &str)> = BTreeMap::new();
    let mut wall_seconds = 0.0;
    for (path, report) in reports {
        if report.jetsim_version != first.jetsim_version {
            return Err(format!(
                "{path} was written by jetsim {} and {first_path} by {}: a seed may mean different \
                 things in different versions, so their runs cannot be merged",
                report.jetsim_version, first.jetsim_version
            ));
        }
        if campaign(&report.command) != campaign(&first.command) {
            return Err(format!(
                "{path} and {first_path} are shards of different campaigns (range, strategy, \
                 mutant, faults or --check-determinism differ): {:?} vs {:?}",
                campaign(&report.command),
                campaign(&first.command)
            ));
        }
        wall_seconds += report.summary.wall_seconds;
        for run in &report.runs {
            if let Some((_, other)) = runs.get(&run.seed) {
                return Err(format!(
                    "seed {} is in both {other} and {path}: the shards overlap",
                    run.seed
                ));
            }
            runs.insert(run.seed, (run.clone(), path.as_str()));
        }
    }
    let c = &first.command;
    let end = c
        .start
        .checked_add(c.seeds)
        .ok_or("the reports' seed range overflows")?;
    let missing: Vec<u64> = (c.start..end).filter(|s| !runs.contains_key(s)).collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(10).map(u64::to_string).collect();
        return Err(format!(
            "{} seeds of {}..{end} are in no report (a shard is missing?): {}{}",
            missing.len(),
            c.start,
            shown.join(", "),
            if missing.len() > 10 { ", ..." } else { "" }
        ));
    }
    if let Some(&stray) = runs.keys().find(|&&s| s < c.start || s >= end) {
        return Err(format!(
            "seed {stray} lies outside the campaign's range {}..{end}",
            c.start
        ));
    }
    let runs: Vec<RunRecord> = runs.into_values().map(|(run, _)| run).collect();
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        jetsim_version: first.jetsim_version.clone(),
        command: CommandInfo {
            name: "merge".into(),
            line,
            shard: None,
            merged_from: reports.iter().map(|(path, _)| path.clone()).collect(),
            ..c.clone()
        },
        summary: Summary::of_runs(&runs, wall_seconds, c.check_determinism),
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_range() {
        for seeds in [0, 1, 5, 40, 41] {
            for count in 1..=6 {
                let mut seen = vec![0u32; seeds as usize];
                for index in 1..=count {
                    let shard = Shard { index, count };
                    let offsets: Vec<u64> = shard.offsets(seeds).collect();
                    assert_eq!(offsets.len() as u64, shard.len(seeds), "{shard} of {seeds}");
                    for o in offsets {
                        seen[o as usize] += 1;
                    }
                }
                assert!(
                    seen.iter().all(|&n| n == 1),
                    "{seeds} seeds, {count} shards"
                );
            }
        }
    }

    #[test]
    fn shard_syntax_is_one_based_k_of_n() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "1", "a/b", "-1/4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn xml_escaping_leaves_no_markup_and_no_illegal_characters() {
        let text = "a<b>&\"c'\u{1}\u{0}\n\u{ffff}";
        let escaped = xml_escape(text);
        assert_eq!(
            escaped,
            "a&lt;b&gt;&amp;&quot;c&apos;\\u{1}\\u{0}\n\\u{ffff}"
        );
    }
}
