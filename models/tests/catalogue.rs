//! The mutation catalogue is complete and true (`models/src/catalogue.rs`):
//!
//! - every planted bug in `Mutant::ALL` has an entry naming at least one checker, and every
//!   entry names a planted bug (adding a mutant without cataloguing it fails here);
//! - a mutant with a loom model is caught by it at the pinned execution with the named
//!   property, and the unmutated engine passes the same model at the same bound;
//! - a mutant with sim rules is caught by `first_detection` from start 0 within the stated
//!   bound, by one of those rules, and the unmutated engine passes the detecting seed;
//! - a mutant naming an engine crash test (every durability mutant does) names one that
//!   exists and plants it.
//!
//! Measured numbers (median and maximum over 20 starts) come from
//! `cargo run --release -p jetsim-models --bin mutants`.

use jetsim::campaign::first_detection;
use jetsim::simulation::{replay_command, run_seed, scheduling_name};
use jetsim_engine::{Mutant, Mutations};
use jetsim_models::catalogue::{
    self, mutant_name, planted, Entry, CATALOGUE, CONCURRENCY_TESTS, CRASH_TESTS, SWEEP_TESTS,
};
use jetsim_models::stop_models::StopModel;
use std::collections::BTreeSet;

#[test]
fn every_mutant_is_catalogued_with_a_checker() {
    let uncatalogued: Vec<String> = Mutant::ALL
        .iter()
        .filter(|m| !matches!(catalogue::entry(**m), Some(e) if e.has_checker()))
        .map(|m| mutant_name(*m))
        .collect();
    assert!(
        uncatalogued.is_empty(),
        "planted bugs without a checker in models/src/catalogue.rs: {uncatalogued:?}"
    );
    let unknown: Vec<&str> = CATALOGUE
        .iter()
        .filter(|e| e.resolve().is_none())
        .map(|e| e.mutant)
        .collect();
    assert!(
        unknown.is_empty(),
        "catalogue entries naming no planted bug: {unknown:?}"
    );
    let names: BTreeSet<&str> = CATALOGUE.iter().map(|e| e.mutant).collect();
    assert_eq!(names.len(), CATALOGUE.len(), "a mutant is catalogued twice");
    // Every entry's loom model is explored at that model's own bound (the one whose clean
    // count `tests/loom_stop.rs` pins).
    for entry in CATALOGUE {
        if let Some(teeth) = entry.loom {
            assert_eq!(teeth.bound, teeth.model.bound(), "{}", entry.mutant);
        }
    }
}

/// Every entry that names a test of one kind (`test_of`: crash, sweep or concurrency) names a
/// test in `file` (relative to the workspace root) whose body plants that entry's mutant.
fn assert_tests_plant_their_mutants(file: &str, test_of: impl Fn(&Entry) -> Option<&'static str>) {
    let named: Vec<(&str, &str)> = CATALOGUE
        .iter()
        .filter_map(|e| Some((e.mutant, test_of(e)?)))
        .collect();
    assert!(!named.is_empty(), "{file}: no entries");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(file);
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    for (mutant, test) in &named {
        let start = source
            .find(&format!("fn {test}()"))
            .unwrap_or_else(|| panic!("{mutant}: no test `{test}` in {file}"));
        let body = &source[start..];
        let body = &body[..body.find("\n}\n").unwrap_or(body.len())];
        assert!(
            body.contains(&format!("Mutant::{mutant}")),
            "{file}: `{test}` does not plant {mutant}"
        );
    }
}

#[test]
fn durability_mutants_are_planted_by_the_engines_crash_tests() {
    // Every entry naming a crash test, the ones the sim catches too.
    assert_tests_plant_their_mutants(CRASH_TESTS, |e| e.crash_tests);
}

#[test]
fn sweep_tests_named_by_the_catalogue_exist_and_plant_their_mutant() {
    assert_tests_plant_their_mutants(SWEEP_TESTS, |e| e.sweep_test);
}

#[test]
fn concurrency_tests_named_by_the_catalogue_exist_and_plant_their_mutant() {
    assert_tests_plant_their_mutants(CONCURRENCY_TESTS, |e| e.concurrency_test);
}

#[test]
fn loom_catches_each_catalogued_mutant_and_passes_the_real_engine() {
    catalogue::order_panic_hooks();
    let mut clean: BTreeSet<(StopModel, Option<usize>)> = BTreeSet::new();
    for entry in CATALOGUE {
        let Some(teeth) = entry.loom else { continue };
        let mutant = entry.resolve().expect("catalogued mutants exist");
        let model = teeth.model;
        match model.check(planted(mutant), teeth.bound) {
            Ok(explored) => panic!(
                "{}: {model} explored {} executions without a failure",
                entry.mutant, explored.executions
            ),
            Err(failure) => {
                assert_eq!(
                    (failure.execution, failure.property),
                    (teeth.execution, Some(teeth.property)),
                    "{}: {model} failed differently than catalogued: {failure}",
                    entry.mutant
                );
            }
        }
        clean.insert((model, teeth.bound));
    }
    for (model, bound) in clean {
        if let Err(failure) = model.check(Mutations::NONE, bound) {
            panic!("the real engine fails {model} (bound {bound:?}): {failure}");
        }
    }
}

#[test]
fn the_sim_catches_each_catalogued_mutant_and_passes_the_real_engine() {
    catalogue::order_panic_hooks();
    let entries: Vec<_> = CATALOGUE.iter().filter(|e| e.sim.is_some()).collect();
    // Two workers (the test binaries' other tests share the cores).
    let next = std::sync::atomic::AtomicUsize::new(0);
    let report = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(entry) = entries.get(index) else {
                    return;
                };
                let teeth = entry.sim.expect("filtered");
                let mutant = entry.resolve().expect("catalogued mutants exist");
                let name = scheduling_name(teeth.scheduling);
                let detection =
                    first_detection(planted(mutant), teeth.scheduling, 0, teeth.max_seeds)
                        .unwrap_or_else(|| {
                            panic!(
                                "{mutant:?} not caught within {} {name} seeds from 0",
                                teeth.max_seeds
                            )
                        });
                assert!(
                    detection.rules.iter().any(|r| teeth.rules.contains(r)),
                    "{mutant:?} was caught at {name} seed {} by {:?}, not by {:?}\n  reproduce: {}",
                    detection.seed,
                    detection.rules,
                    teeth.rules,
                    replay_command(detection.seed, teeth.scheduling, Some(entry.mutant))
                );
                let real = run_seed(detection.seed, teeth.scheduling, Mutations::NONE);
                assert!(
                    real.passed(),
                    "{name} seed {} fails without {mutant:?}: {:?}",
                    detection.seed,
                    real.verdict.violations
                );
                report.lock().expect("report").push(format!(
                    "{mutant:?}: {:?} ({name}) at seed {} of at most {}",
                    detection.rules, detection.runs, teeth.max_seeds
                ));
            });
        }
    });
    for line in report.into_inner().expect("report") {
        eprintln!("{line}");
    }
}
