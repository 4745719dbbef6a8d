//! Every scenario in the top-level `scenarios/` (and `scenarios/regressions/`) runs here: it
//! must meet its expectations (rules that hold or fail, coverage marks hit), and its state
//! transitions must match the accepted snapshot in the top-level `snapshots/`.
//!
//! A differing snapshot fails the test (in CI too: `INSTA_UPDATE=no`, and insta never writes
//! under `CI=true`). To accept a change in behaviour: `cargo insta test -p jetsim --test
//! scenarios` then `cargo insta review`, or without cargo-insta `INSTA_UPDATE=always cargo test
//! -p jetsim --test scenarios` and read the diff of `snapshots/` before committing it.
//!
//! Also here: the HTML timeline is well-formed and shows what it must, and a missed coverage
//! mark fails with a message that says what to do.

#[allow(dead_code)]
mod common;

use common::{jetsim, scenario_page, scenarios_dir, scratch};
use jetsim::model::ModelState;
use jetsim::scenario::{Mark, Scenario};
use jetsim::shrink::REGRESSION_CALLS_MAX;
use jetsim::transitions;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    // Relative to this file: the workspace's top-level snapshots/ folder.
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

/// Runs one file: returns its missed expectations, asserts its snapshot.
fn check_scenario(path: &Path, missed: &Mutex<Vec<String>>, names: &Mutex<BTreeSet<String>>) {
    let scenario = match Scenario::load(path) {
        Ok(scenario) => scenario,
        Err(error) => {
            missed.lock().unwrap().push(error);
            return;
        }
    };
    let file_stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if scenario.name != file_stem {
        missed.lock().unwrap().push(format!(
            "{}: the scenario's name {:?} differs from its file name",
            path.display(),
            scenario.name
        ));
    }
    if !names.lock().unwrap().insert(scenario.name.clone()) {
        missed
            .lock()
            .unwrap()
            .push(format!("two scenarios are named {}", scenario.name));
    }
    let run = scenario.run().expect("a loaded scenario runs");
    for m in run.missed_expectations() {
        missed
            .lock()
            .unwrap()
            .push(format!("{}: {m}", path.display()));
    }
    insta::assert_snapshot!("scenario", run.render());
}

#[test]
fn every_scenario_meets_its_expectations_and_matches_its_snapshot() {
    let missed = Mutex::new(Vec::new());
    let names = Mutex::new(BTreeSet::new());
    snapshot_settings().bind(|| {
        insta::glob!("../../scenarios", "*.json", |path| {
            check_scenario(path, &missed, &names)
        });
        insta::glob!("../../scenarios/regressions", "*.json", |path| {
            check_scenario(path, &missed, &names)
        });
    });
    let missed = missed.into_inner().unwrap();
    assert!(
        missed.is_empty(),
        "scenarios missed expectations:\n{}",
        missed.join("\n")
    );
    let names = names.into_inner().unwrap();
    assert!(names.len() >= 18, "only {} scenarios", names.len());
}

fn load_all(dir: &Path) -> Vec<Scenario> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths.iter().map(|p| Scenario::load(p).unwrap()).collect()
}

#[test]
fn the_scenarios_cover_the_stop_protocol() {
    // The marks the scenario set as a whole must demand. Spelled out rather than
    // `Mark::ALL`: a new mark is not demanded until a scenario is written for it, and this
    // list is where that decision is made.
    let scenarios = load_all(&scenarios_dir());
    assert!(scenarios.len() >= 16, "{} scenarios", scenarios.len());
    let demanded: BTreeSet<Mark> = scenarios
        .iter()
        .flat_map(|s| s.expect.marks.iter().copied())
        .collect();
    for mark in [
        Mark::StopSucceeded,
        Mark::StopWaitedForCalls,
        Mark::CommitRacedStop,
        Mark::BeginSessionRacedStop,
        Mark::DefragParkedFromRunning,
        Mark::RefusedAfterStop,
        Mark::AllowlistedCallAfterStopSucceeded,
        Mark::StopFailedStateUnchanged,
        Mark::StopInvalidGrbit,
        Mark::SecondStopSucceeded,
        Mark::TermRacedStop,
        Mark::PartialStopSucceeded,
        Mark::ResumeSucceeded,
        Mark::ResumeRefusedAfterStop,
        Mark::EndSessionRefusedContextSet,
        Mark::RollbackClosedTables,
        Mark::DetachRefusedInUse,
    ] {
        assert!(
            demanded.contains(&mark),
            "no scenario demands {}",
            mark.name()
        );
    }
    // Each allowlisted call after a stop, and each stop_service_instance2 grbit.
    let calls: Vec<String> = scenarios
        .iter()
        .flat_map(|s| s.threads.iter().flatten())
        .map(|c| format!("{c:?}"))
        .collect();
    for name in [
        "Rollback",
        "CloseTable",
        "EndSession",
        "CloseDatabase",
        "DetachDatabase",
        "ResetSessionContext",
        "grbit: 2 ",
        "grbit: 4 ",
        "grbit: 6 ",
        "grbit: 2147483648 ",
        "grbit: 2147483652 ",
    ] {
        assert!(
            calls.iter().any(|c| c.contains(name)),
            "no scenario makes {name}"
        );
    }
}

#[test]
fn regressions_are_small_and_fail_under_their_mutant() {
    let regressions = load_all(&scenarios_dir().join("regressions"));
    assert!(!regressions.is_empty(), "no regression scenario");
    for r in &regressions {
        let calls: usize = r.threads.iter().map(Vec::len).sum();
        assert!(
            calls <= REGRESSION_CALLS_MAX,
            "{} has {calls} calls; a regression has at most {REGRESSION_CALLS_MAX} (the limit `jetsim shrink` works to)",
            r.name
        );
        assert!(r.mutant.is_some(), "{} names no mutant", r.name);
        assert!(!r.expect.fail.is_empty(), "{} expects no failure", r.name);
        assert!(
            r.description.contains("Shrunk by"),
            "{} tells no story",
            r.name
        );
    }
}

#[test]
fn scenario_files_round_trip_through_the_schema() {
    for scenario in load_all(&scenarios_dir())
        .into_iter()
        .chain(load_all(&scenarios_dir().join("regressions")))
    {
        let text = scenario.to_json().unwrap();
        let again: Scenario = serde_json::from_str(&text).unwrap();
        assert_eq!(again, scenario);
    }
}

#[test]
fn a_missed_mark_fails_with_a_message_that_says_what_to_do() {
    let mut scenario = Scenario::load(&scenarios_dir().join("stop-idle-instance.json")).unwrap();
    scenario.expect.marks.push(Mark::TermRacedStop);
    let missed = scenario.run().unwrap().missed_expectations();
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert!(missed[0].contains("coverage mark term_raced_stop was not hit"));
    assert!(missed[0].contains("--find-seed"));

    // And a regression whose bug is gone (no mutant) fails for holding.
    let mut fixed = load_all(&scenarios_dir().join("regressions")).remove(0);
    fixed.mutant = None;
    let missed = fixed.run().unwrap().missed_expectations();
    assert!(
        missed
            .iter()
            .any(|m| m.contains("must fail") && m.contains("but it held")),
        "{missed:?}"
    );
}

/// Checks that every tag is closed in order (a tiny XML well-formedness check: comments,
/// the doctype and self-closing tags understood; attribute values must be quoted).
fn assert_balanced(markup: &str) -> usize {
    let mut stack: Vec<String> = Vec::new();
    let mut elements = 0;
    let mut rest = markup;
    while let Some(open) = rest.find('<') {
        rest = &rest[open..];
        if rest.starts_with("<!--") {
            let end = rest.find("-->").expect("unclosed comment");
            rest = &rest[end + 3..];
            continue;
        }
        let end = rest.find('>').expect("unclosed tag");
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        assert!(!tag.contains('<'), "a '<' inside <{tag}>");
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().unwrap_or_default();
            assert_eq!(top, name.trim(), "</{name}> closes <{top}>");
        } else if tag.ends_with('/') {
            elements += 1;
        } else {
            let name = tag.split_whitespace().next().unwrap().to_owned();
            stack.push(name);
            elements += 1;
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    elements
}

#[test]
fn the_timeline_of_a_failing_regression_is_well_formed_and_highlights_the_violation() {
    let scenario =
        Scenario::load(&scenarios_dir().join("regressions/allowlistextracommit-pct-seed-11.json"))
            .unwrap();
    let run = scenario.run().unwrap();
    let history = run.report.history.as_ref().unwrap();
    let replay = transitions::replay(
        history,
        &ModelState::initial(&scenario.initial_records),
        scenario.threads.len(),
    );
    let html = scenario_page(&scenario, history, &run.report.verdict.violations, &replay);
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained: nothing loaded from anywhere (the only URLs are XML namespaces, the
    // only links jump within the page).
    for loader in ["src=", "url(", "@import"] {
        assert!(!html.contains(loader), "the page loads something: {loader}");
    }
    assert_eq!(
        html.matches("href=").count(),
        html.matches("href=\"#").count(),
        "a link leaves the page"
    );
    assert!(!html.contains("<script"), "no scripts");
    assert_balanced(&html);
    let svg_start = html.find("<svg").unwrap();
    let svg_end = html.find("</svg>").unwrap() + "</svg>".len();
    let svg = &html[svg_start..svg_end];
    assert!(assert_balanced(svg) > 10);
    // A lane per workload thread and one for the harness.
    let lanes = svg.matches("class=\"lane\"").count();
    assert_eq!(lanes, scenario.threads.len() + 1);
    // A bar per call, each with a hover title.
    let bars = svg.matches("<g class=\"call ").count();
    assert_eq!(bars, history.events.len());
    assert_eq!(svg.matches("<title>").count(), bars);
    // The offending commit is outlined, numbered, and says what the model expected.
    assert_eq!(svg.matches("offending").count(), 1, "{svg}");
    assert!(svg.contains("model expected ClientRequestToStopJetService"));
    assert!(html.contains("verdict: FAILED"));
    assert!(html.contains("commit_transaction(s0) -&gt; NotInTransaction"));
    // The stop is marked across the lanes, with its record.
    assert_eq!(svg.matches("class=\"stopline\"").count(), 2);
    assert!(html.contains("gate closed, 0 calls drained"));
}

#[test]
fn the_scenario_command_writes_the_timeline() {
    let out = scratch("scenario", "timeline.html");
    let file = scenarios_dir().join("regressions/stopflaglast-pct-seed-148.json");
    let output = jetsim(&[
        "scenario",
        file.to_str().unwrap(),
        "--html",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("expectations: all met"), "{stdout}");
    let html = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert_balanced(&html);
    // StopFlagLast: a call was admitted after the stop began preparing; it is highlighted.
    assert!(
        html.contains("admitted after the stop began preparing"),
        "{html}"
    );
}

// This test and the one above open like replay.rs's explore-to-JSON test (run the binary with
// an output file, read it back, remove it): kept apart because each checks a different
// command's file; what they share (`jetsim`, `scratch`) is in `common` already.
#[test]
fn replay_writes_the_timeline_of_a_seed() {
    let out = scratch("replay", "timeline.html");
    let output = jetsim(&[
        "replay",
        "3",
        "--strategy",
        "pct",
        "--mutant",
        "StopCheckpointNotPersisted",
        "--html",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a failing seed exits 1:\n{stdout}"
    );
    assert!(stdout.contains("timeline written to"), "{stdout}");
    let html = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert_balanced(&html);
    assert!(html.contains("jetsim replay 3"));
    assert!(
        html.contains("class=\"call ok lifecycle offending culprit\""),
        "the stop is highlighted"
    );
}
