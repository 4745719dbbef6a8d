//! The rules besides linearizability, and [`check_run`], which applies every checker to one
//! run's history.

use super::linearizability::{self, Verdict};
use super::{Rule, Violation};

use crate::history::{EndState, Event, History, SessionEnd, Tables};
use crate::model::{step, ModelPhase, ModelState, Outcome};
use crate::transitions::thread_label;
use crate::workload::{Call, InstanceRef};
use jetsim_engine::JetError;
use std::collections::BTreeMap;

/// States the linearizability search may explore per run before giving up.
pub const SEARCH_STATES_MAX: u64 = 50_000;

/// Where a successful full stop landed relative to the other calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StopLanding {
    /// Calls that returned before the stop was invoked.
    pub before: u64,
    /// Calls whose interval overlapped the stop's.
    pub during: u64,
    /// Calls invoked after the stop returned.
    pub after: u64,
}

/// What checking one run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunVerdict {
    pub violations: Vec<Violation>,
    pub states_explored: u64,
    pub landing: Option<StopLanding>,
}

/// The first successful full stop of the main instance: (invoked, returned).
fn first_stop(history: &History) -> Option<(u64, u64)> {
    history
        .events
        .iter()
        .filter(|e| e.call.is_full_stop_of_main() && e.outcome == Outcome::Ok)
        .map(|e| (e.invoked, e.returned))
        .min()
}

/// Gated calls invoked after a successful stop returned must not succeed; allowlisted calls
/// are never refused with ClientRequestToStopJetService.
pub fn stop_rule(history: &History) -> Vec<Violation> {
    let mut violations = Vec::new();
    let stop_returned = first_stop(history).map(|(_, returned)| returned);
    for event in &history.events {
        let refused = event
            .outcome
            .is_err_named(JetError::ClientRequestToStopJetService);
        let lifecycle = matches!(event.call, Call::StopService { .. } | Call::Term { .. });
        if !lifecycle && !event.call.is_gated() && refused {
            violations.push(Violation {
                rule: Rule::StopRule,
                message: format!(
                    "{} {:?} (steps {}..{}) is allowlisted but was refused with ClientRequestToStopJetService",
                    thread_label(event.thread, history.workers),
                    event.call,
                    event.invoked,
                    event.returned
                ),
            });
        }
        if let Some(returned) = stop_returned {
            if event.call.is_gated() && event.invoked > returned && event.outcome.is_ok() {
                violations.push(Violation {
                    rule: Rule::StopRule,
                    message: format!(
                        "{} {:?} was invoked at step {} after the stop returned at step {}, and succeeded \
                         with {:?}; it must be refused with ClientRequestToStopJetService",
                        thread_label(event.thread, history.workers),
                        event.call,
                        event.invoked,
                        returned,
                        event.outcome
                    ),
                });
            }
        }
    }
    violations
}

/// The successful full stop of the main instance that returned at `returned`.
fn stop_returning_at(history: &History, returned: u64) -> Option<&Event> {
    history
        .events
        .iter()
        .find(|e| e.call.is_full_stop_of_main() && e.returned == returned)
}

/// The gated calls that overlap the instant a stop returned (invoked before, returned after),
/// most likely culprits first: the engine counts the calls inside its gate but does not say
/// which they were, and a call's recorded interval is wider than its time inside the gate.
/// Calls that went on to succeed were certainly admitted, so they come first; then other
/// outcomes; ties by invocation. The first `gated_calls_in_flight` of them are the ones the
/// failure text and the timeline name.
pub fn in_flight_at_stop<'h>(
    history: &'h History,
    after: &crate::history::AfterStop,
) -> Vec<&'h Event> {
    let mut overlapping: Vec<&Event> = history
        .events
        .iter()
        .filter(|e| {
            e.call.is_gated() && e.invoked < after.stop_returned && e.returned > after.stop_returned
        })
        .collect();
    overlapping.sort_by_key(|e| (!e.outcome.is_ok(), e.invoked, e.thread));
    overlapping
}

/// stop-drained in words: the call still in flight first, then the stop and what it should
/// have done.
fn stop_drained_message(history: &History, after: &crate::history::AfterStop) -> String {
    let lane = |thread: usize| thread_label(thread, history.workers);
    let describe = |e: &Event| {
        format!(
            "{} {:?} (steps {}..{}, returned {:?})",
            lane(e.thread),
            e.call,
            e.invoked,
            e.returned,
            e.outcome
        )
    };
    let stop = stop_returning_at(history, after.stop_returned)
        .map(|s| {
            format!(
                "{} {:?} (steps {}..{})",
                lane(s.thread),
                s.call,
                s.invoked,
                s.returned
            )
        })
        .unwrap_or_else(|| "the stop".to_owned());
    let in_flight = after.gated_calls_in_flight as usize;
    let candidates = in_flight_at_stop(history, after);
    let count = crate::campaign::plural(in_flight, "gated call", "gated calls");
    let culprit = match candidates.split_at(in_flight.min(candidates.len())) {
        ([], _) => String::new(),
        (named, rest) => {
            let named: Vec<String> = named.iter().map(|e| describe(e)).collect();
            let also = if rest.is_empty() {
                String::new()
            } else {
                let rest: Vec<String> = rest.iter().map(|e| describe(e)).collect();
                format!(" (also overlapping the stop's return: {})", rest.join("; "))
            };
            format!(
                "{} {} still in flight{also}: ",
                named.join("; "),
                if named.len() == 1 { "was" } else { "were" }
            )
        }
    };
    format!(
        "{culprit}{stop} returned at step {} with {count} in flight and the phase {}; \
         a stop must wait until no gated call is in flight (expected 0 and Stopped, or a \
         racing term's phase)",
        after.stop_returned, after.phase
    )
}

/// Right after each successful full stop: drained (no gated call in flight, phase Stopped) and
/// prepared (defrag parked, cleanup signalled, checkpoint quiesced to the log tip).
pub fn stop_effects(history: &History) -> Vec<Violation> {
    let mut violations = Vec::new();
    for after in &history.after_stops {
        // A term racing the stop may already have run by the time the stopper looks.
        let terminated_since = after.phase == "Terminating" || after.phase == "Terminated";
        if after.gated_calls_in_flight != 0 || !(after.phase == "Stopped" || terminated_since) {
            violations.push(Violation {
                rule: Rule::StopDrained,
                message: stop_drained_message(history, after),
            });
        }
        if after.record_missing {
            // Only a term that succeeded in between explains a missing record, or (with disk
            // faults) an earlier stop that hit an I/O error after closing the gate: the stop
            // that returned success then found the instance stopped and had nothing to record.
            let interrupted_stop = history.io_faults
                && history.events.iter().any(|e| {
                    matches!(e.call, Call::StopService { .. })
                        && (e.outcome.is_err_named(JetError::DiskIO)
                            || e.outcome.is_err_named(JetError::LogWriteFail)
                            || e.outcome.is_err_named(JetError::InstanceUnavailable))
                });
            let terminated = interrupted_stop
                || history.events.iter().any(|e| {
                    let io_error = e.outcome.is_err_named(JetError::DiskIO)
                        || e.outcome.is_err_named(JetError::LogWriteFail);
                    matches!(e.call, Call::Term { instance: InstanceRef::Main, .. })
                        // A term whose shutdown hit an I/O error still ended the instance.
                        && (e.outcome.is_ok() || (history.io_faults && io_error))
                });
            if !terminated {
                violations.push(Violation {
                    rule: Rule::Preparation,
                    message: format!(
                        "{} returned success (step {}) but left no stop record",
                        stop_name(history, after.stop_returned),
                        after.stop_returned
                    ),
                });
            }
            continue;
        }
        let mut missing = Vec::new();
        if !after.defrag_parked || (after.defrag != "parked" && !terminated_since) {
            missing.push(format!("defrag parked (status says {})", after.defrag));
        }
        if !after.cleanup_signalled {
            missing.push("version cleanup signalled".to_owned());
        }
        match (after.dirty_pages_after, after.checkpoint_depth_after_bytes) {
            (Some(0), Some(0)) if after.checkpoint_at_log_tip => {}
            (dirty, depth) => missing.push(format!(
                "checkpoint quiesced (dirty pages after {dirty:?}, depth after {depth:?} bytes, at log tip {})",
                after.checkpoint_at_log_tip
            )),
        }
        if !missing.is_empty() {
            violations.push(Violation {
                rule: Rule::Preparation,
                message: format!(
                    "{} returned success (step {}) without: {}. Its record: [{}]",
                    stop_name(history, after.stop_returned),
                    after.stop_returned,
                    missing.join("; "),
                    after.steps.join("; ")
                ),
            });
        }
    }
    violations
}

/// `t0 StopService { .. }`: the stop that returned at `returned`, by lane and call.
fn stop_name(history: &History, returned: u64) -> String {
    stop_returning_at(history, returned).map_or_else(
        || "the stop".to_owned(),
        |s| format!("{} {:?}", thread_label(s.thread, history.workers), s.call),
    )
}

/// Whether a model state agrees with the engine's observed end state.
pub fn end_state_matches(model: &ModelState, end: &EndState) -> bool {
    let phase = match model.phase {
        ModelPhase::Running => "Running",
        ModelPhase::Stopped => "Stopped",
        ModelPhase::Terminated => return end.phase == "Terminated",
    };
    if end.phase != phase
        || end.defrag_parked != model.defrag_parked
        || end.caches_quiesced != model.caches_quiesced
    {
        return false;
    }
    let committed = model.attached.then(|| {
        (0..crate::workload::TABLES)
            .map(|t| {
                model
                    .committed_as_of(t, model.last_commit_ts)
                    .into_iter()
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    });
    if committed != end.committed {
        return false;
    }
    let mut sessions = model_sessions(model);
    sessions.sort();
    let mut observed = end.sessions.clone();
    observed.sort();
    sessions == observed
}

/// The model's live sessions in the end state's terms.
fn model_sessions(model: &ModelState) -> Vec<SessionEnd> {
    model
        .created
        .iter()
        .filter_map(|(&key, id)| {
            let s = &model.sessions[id];
            s.alive.then(|| {
                let level = s.transaction.as_ref().map_or(0, |t| t.levels.len() as u8);
                let open_tables = model
                    .cursors
                    .values()
                    .filter(|c| c.alive && c.session == *id)
                    .count() as u32;
                SessionEnd {
                    created_by: key,
                    transaction_level: level,
                    context: s.context.map(|(c, _)| c),
                    open_tables,
                }
            })
        })
        .collect()
}

fn describe_end(end: &EndState) -> String {
    format!(
        "phase {}, defrag parked {}, caches quiesced {}, sessions {:?}, committed {:?}",
        end.phase, end.defrag_parked, end.caches_quiesced, end.sessions, end.committed
    )
}

/// A durability failure in words: per table, the committed records recovery lost or changed
/// and the records it found that were never committed, against one order of the calls that
/// explains every result (no order explains the recovered data).
fn describe_lost_data(recovered: &Tables, committed: &Tables) -> String {
    let mut differences = Vec::new();
    for (table, (found, expected)) in recovered.iter().zip(committed).enumerate() {
        let found: BTreeMap<u8, u8> = found.iter().copied().collect();
        let expected: BTreeMap<u8, u8> = expected.iter().copied().collect();
        for (key, value) in &expected {
            match found.get(key) {
                None => differences.push(format!("t{table}.k{key}=v{value} committed, lost")),
                Some(got) if got != value => differences.push(format!(
                    "t{table}.k{key}=v{value} committed, recovered as v{got}"
                )),
                Some(_) => {}
            }
        }
        for (key, value) in &found {
            if !expected.contains_key(key) {
                differences.push(format!(
                    "t{table}.k{key}=v{value} recovered, never committed"
                ));
            }
        }
    }
    format!(
        "after the crash, recovery found data no order of the calls commits: {} (recovered {recovered:?}, committed {committed:?})",
        differences.join(", ")
    )
}

/// The model's committed records per table, in the recovered data's form.
fn committed_tables(model: &ModelState) -> Vec<Vec<(u8, u8)>> {
    (0..crate::workload::TABLES)
        .map(|t| {
            model
                .committed_as_of(t, model.last_commit_ts)
                .into_iter()
                .collect()
        })
        .collect()
}

/// Whether a model end state agrees with what the run observed: the engine's end state, or
/// after a crash the data recovery found.
pub fn end_matcher(history: &History) -> impl Fn(&ModelState) -> bool + '_ {
    move |model: &ModelState| {
        if history.io_faults {
            // After the crash, only committed data survives: recovery must find exactly it.
            return match &history.recovered {
                Some(Ok(tables)) => committed_tables(model) == *tables,
                _ => true,
            };
        }
        match &history.end_state {
            Some(end) => end_state_matches(model, end),
            // The engine could not be observed: only a terminated instance explains that.
            None => model.phase == ModelPhase::Terminated,
        }
    }
}

/// Applies every checker to one completed run.
pub fn check_run(history: &History, initial: &ModelState) -> RunVerdict {
    let mut verdict = RunVerdict::default();
    let (body, final_term): (Vec<_>, Vec<_>) = history.events.iter().cloned().partition(|e| {
        !(e.call
            == Call::Term {
                instance: InstanceRef::Main,
                grbit: 2,
            }
            && e.thread == final_thread(history))
    });
    let end = history.end_state.clone();
    let matches = end_matcher(history);
    if let Some(Err(why)) = &history.recovered {
        verdict.violations.push(Violation {
            rule: Rule::Durability,
            message: format!("recovery after the crash failed: {why}"),
        });
    }
    let lin = linearizability::linearize_with(
        &body,
        initial,
        &matches,
        SEARCH_STATES_MAX,
        history.io_faults,
    )
    .verdict;
    let end_model = match lin {
        Verdict::Linearizable {
            end,
            states_explored,
        } => {
            verdict.states_explored = states_explored;
            Some(*end)
        }
        Verdict::Violation {
            states_explored,
            linearized_prefix,
            stuck,
        } => {
            verdict.states_explored = states_explored;
            let detail: Vec<String> = stuck
                .iter()
                .map(|s| {
                    format!(
                        "{} {:?} (steps {}..{}): the engine returned {:?}, the model expected {:?}",
                        thread_label(s.event.thread, history.workers),
                        s.event.call,
                        s.event.invoked,
                        s.event.returned,
                        s.event.outcome,
                        s.model_expected
                    )
                })
                .collect();
            let (first, others) = detail
                .split_first()
                .map_or(("", &[][..]), |(f, o)| (f.as_str(), o));
            let others = if others.is_empty() {
                String::new()
            } else {
                format!(
                    "; the other calls that could come next disagree too:\n      {}",
                    others.join("\n      ")
                )
            };
            verdict.violations.push(Violation {
                rule: Rule::Linearizability,
                message: format!(
                    "{first}; no order of the calls explains this (after linearizing {linearized_prefix} \
                     of the {} calls before the final term){others}",
                    body.len()
                ),
            });
            None
        }
        Verdict::EndStateMismatch {
            end: model_end,
            states_explored,
        } => {
            verdict.states_explored = states_explored;
            let violation = match (history.io_faults, &history.recovered) {
                (true, Some(Ok(recovered))) => Violation {
                    rule: Rule::Durability,
                    message: describe_lost_data(recovered, &committed_tables(&model_end)),
                },
                _ => Violation {
                    rule: if history.io_faults { Rule::Durability } else { Rule::FailureAtomicity },
                    message: format!(
                        "every result linearizes, but the engine ended in [{}] (recovered after the crash: {:?}) while the model ended in phase {:?}, \
                         defrag parked {}, caches quiesced {}, sessions {:?}, committed {:?}",
                        end.as_ref().map_or_else(|| "unobservable".to_owned(), describe_end),
                        history.recovered,
                        model_end.phase,
                        model_end.defrag_parked,
                        model_end.caches_quiesced,
                        model_sessions(&model_end),
                        (0..crate::workload::TABLES)
                            .map(|t| model_end.committed_as_of(t, model_end.last_commit_ts))
                            .collect::<Vec<_>>()
                    ),
                },
            };
            verdict.violations.push(violation);
            None
        }
        Verdict::Unknown { states_explored } => {
            verdict.states_explored = states_explored;
            verdict.violations.push(Violation {
                rule: Rule::SearchBound,
                message: format!(
                    "the linearizability search gave up after {states_explored} states"
                ),
            });
            None
        }
    };
    if let (Some(model_end), Some(term)) = (end_model, final_term.first()) {
        let (expected, _) = step(&model_end, term.thread, &term.call);
        let succeeded = matches!(term.outcome, Outcome::Terminated { dirty: false });
        let already_gone = model_end.phase == ModelPhase::Terminated;
        // With disk faults, a fail-stop instance terminates dirty (and may already be gone).
        let fail_stop_term = history.io_faults
            && (matches!(term.outcome, Outcome::Terminated { .. })
                || term.outcome.is_err_named(jetsim_engine::JetError::DiskIO)
                || term
                    .outcome
                    .is_err_named(jetsim_engine::JetError::LogWriteFail));
        // After StopAndEmitLog a transaction cannot be rolled back (its compensation cannot
        // be logged), so the wind-down may leave one open and the model expects the term to
        // be refused: that is the documented outcome, not a failure.
        let refused_as_modelled = model_end.log_stopped
            && term
                .outcome
                .is_err_named(jetsim_engine::JetError::TooManyActiveUsers);
        if !fail_stop_term
            && (term.outcome != expected || !(succeeded || already_gone || refused_as_modelled))
        {
            verdict.violations.push(Violation {
                rule: Rule::FinalTerm,
                message: format!(
                    "the final term returned {:?}; the model expected {:?}, and a term after the wind-down must succeed",
                    term.outcome, expected
                ),
            });
        }
    }
    for effect in &history.failed_stop_effects {
        verdict.violations.push(Violation {
            rule: Rule::FailureAtomicity,
            message: effect.clone(),
        });
    }
    verdict.violations.extend(stop_rule(history));
    verdict.violations.extend(stop_effects(history));
    verdict.landing = first_stop(history).map(|(invoked, returned)| {
        let mut landing = StopLanding::default();
        for e in history
            .events
            .iter()
            .filter(|e| !e.call.is_full_stop_of_main())
        {
            if e.returned < invoked {
                landing.before += 1;
            } else if e.invoked > returned {
                landing.after += 1;
            } else {
                landing.during += 1;
            }
        }
        landing
    });
    verdict
}

/// The harness's final term is made by the thread numbered after the workers.
fn final_thread(history: &History) -> usize {
    history.workers
}
