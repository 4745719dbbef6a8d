//! The rules besides linearizability: the stop rule, stop-drained and preparation (with what
//! could not be observed), and the end state and durability checks. [`super::check_run`]
//! applies them to one run's history.

use super::{listing_clause, Rule, Violation};

// The runner's items under this path too, which the tests name them by.
pub use super::{check_run, RunVerdict, StopLanding, SEARCH_STATES_MAX};

use crate::history::{
    EndState, Event, History, PageChangesAfter, SessionEnd, StopObservation, Tables,
};
use crate::model::{ModelPhase, ModelState, Outcome};
use crate::report::transitions::thread_label;
use crate::workload::{Call, InstanceRef};
use jetsim_engine::JetError;
use std::collections::BTreeMap;

/// The successful full stops of the main instance, in history order.
pub fn successful_full_stops(history: &History) -> impl Iterator<Item = &Event> {
    history
        .events
        .iter()
        .filter(|e| e.call.is_full_stop_of_main() && e.outcome == Outcome::Ok)
}

/// The first successful full stop of the main instance: (invoked, returned).
pub(super) fn first_stop(history: &History) -> Option<(u64, u64)> {
    successful_full_stops(history)
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

/// A check the harness could not make for one stop (or, for commit-durable, one commit), and
/// why: counted and printed, never a silent pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unobservable {
    pub rule: Rule,
    /// The step the checked call (the stop, or the commit) returned at.
    pub returned: u64,
    /// The kind of reason, short, for summaries.
    pub reason: &'static str,
    /// The reason in full (which calls, which step).
    pub detail: String,
}

/// How many stops (commits, for commit-durable) each disk-and-history check observed, and the
/// ones it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observability {
    /// Rule → stops (commits) the rule was decided for (passed or violated).
    pub observed: BTreeMap<Rule, u64>,
    pub unobservable: Vec<Unobservable>,
}

impl Observability {
    pub(super) fn observed(&mut self, rule: Rule) {
        *self.observed.entry(rule).or_insert(0) += 1;
    }

    pub(super) fn unobservable(&mut self, rule: Rule, returned: u64, (reason, detail): Why) {
        self.unobservable.push(Unobservable {
            rule,
            returned,
            reason,
            detail,
        });
    }
}

/// A reason a check could not be made: its kind and its details.
type Why = (&'static str, String);

/// Reasons, by kind (the short names summaries print).
pub mod unobservable_reason {
    pub const WRITER_OVERLAPPED: &str = "a writing call or term overlapped";
    pub const DEFRAG_UNPARKED: &str = "online defrag not parked";
    pub const DISK_FAILED: &str = "the disk failed an operation";
    pub const LOG_TAIL_UNREAD: &str = "no clean term flushed the log";
    pub const LOG_STOPPED: &str = "StopAndEmitLog ended the log";
    pub const TERMINATED: &str = "the instance under test was terminated";
}

/// Calls that may change the disk after a full stop returned without breaking it: the
/// allowlisted calls that write (rollback, end_session's rollback, detach), set_system_parameter
/// (a smaller cache evicts), StopAndEmitLog and term. Only when they did something: a success,
/// or an I/O error (its write may have happened).
fn may_write_after_stop(event: &Event) -> bool {
    use jetsim_engine::JetCall as J;
    let writes = match event.call {
        Call::Term { instance, .. } | Call::StopService { instance, .. }
            if instance != InstanceRef::Main =>
        {
            false
        }
        Call::StopService { grbit, .. } => {
            grbit & jetsim_engine::stop_grbit::STOP_AND_EMIT_LOG != 0
        }
        Call::Term { .. } => true,
        _ => matches!(
            event.call.jet_call(),
            J::Rollback | J::EndSession | J::DetachDatabase | J::SetSystemParameter
        ),
    };
    let did_something = event.outcome.is_ok() || event.outcome.is_io_error();
    writes && did_something
}

/// Why the disk the harness read after `observation`'s stop cannot be held to a quiesced
/// stop's state, if it cannot: another call that may write the disk overlapped the stop (or,
/// for a second stop, anything since the first), online defrag may have moved pages during a
/// partial stop, or the disk failed an operation in between. Decided from the history and
/// the harness's own fault log only.
fn preparation_unobservable(history: &History, observation: &StopObservation) -> Option<Why> {
    use unobservable_reason as reason;
    let full = observation.grbit == 0;
    // Since the earliest full stop up to this one: a second stop has nothing to do, so the
    // disk it is checked on is the first one's plus whatever ran since.
    let since = history
        .stop_observations
        .iter()
        .filter(|o| o.grbit == 0 && o.stop_returned <= observation.stop_returned)
        .map(|o| o.stop_invoked)
        .min()
        .unwrap_or(observation.stop_invoked);
    let after_full_stop = since < observation.stop_invoked || full;
    let disturbers: Vec<String> = history
        .events
        .iter()
        .filter(|e| {
            e.invoked != observation.stop_invoked
                && e.invoked < observation.stop_returned
                && e.returned > since
        })
        // Calls that could not be admitted change nothing.
        .filter(|e| !e.outcome.is_err_named(JetError::ClientRequestToStopJetService))
        .filter(|e| {
            if after_full_stop {
                may_write_after_stop(e)
            } else {
                // A partial stop keeps the gate open: any call may dirty and evict pages.
                !matches!(e.call, Call::StopService { instance, .. } | Call::Term { instance, .. } if instance != InstanceRef::Main)
            }
        })
        .map(|e| call_span(history, e))
        .collect();
    if !disturbers.is_empty() {
        return Some((
            reason::WRITER_OVERLAPPED,
            format!(
                "calls that may write the disk overlapped it: {}",
                disturbers.join("; ")
            ),
        ));
    }
    if !after_full_stop && observation.grbit & jetsim_engine::stop_grbit::BACKGROUND_USER_TASKS == 0
    {
        let defrag_started = history.events.iter().any(|e| {
            matches!(e.call, Call::Defragment { .. })
                && e.outcome.is_ok()
                && e.invoked < observation.stop_returned
        });
        if history.online_defrag || defrag_started {
            return Some((
                reason::DEFRAG_UNPARKED,
                "online defrag was not parked and may move pages".to_owned(),
            ));
        }
    }
    if let Some(step) = history
        .first_disk_failure_at
        .filter(|&step| step <= observation.stop_returned)
    {
        return Some((
            reason::DISK_FAILED,
            format!("the disk failed an operation (injected) by step {step}"),
        ));
    }
    None
}

/// defrag-parked for one full stop: after it returned, the only calls that may change pages
/// are rollbacks (and the rollback `JetEndSession` makes), each undone record change one
/// tree operation, so the log as written must hold no more page images after the stop than
/// its `Rollback` records undid changes. Online defrag still moving pages after the stop
/// returned (ESE's stop ends it first) breaks it. Decided from the log the harness read
/// itself and its own fault log; unobservable when the disk failed an operation (a rollback
/// may have stopped half way) or no clean term flushed the log's tail and nothing was found.
fn defrag_parked(
    history: &History,
    observation: &StopObservation,
    seen: &mut Observability,
) -> Option<Violation> {
    use unobservable_reason as reason;
    if observation.grbit != 0 {
        return None;
    }
    let changes = observation.page_changes_after.as_ref();
    let unaccounted = changes.map_or(0, PageChangesAfter::unaccounted);
    let why = match (changes, history.first_disk_failure_at) {
        (None, _) => (
            reason::LOG_TAIL_UNREAD,
            "the log was not read at the end of the run".to_owned(),
        ),
        (Some(_), Some(step)) => (
            reason::DISK_FAILED,
            format!("the disk failed an operation (injected) at step {step}"),
        ),
        // Page images after the last Rollback record read may be a rollback's whose own
        // record is in the tail no clean term wrote: unjudgeable, not a violation.
        (Some(changes), None)
            if !observation.log_read_whole && unaccounted <= changes.images_after_last_rollback =>
        {
            (
                reason::LOG_TAIL_UNREAD,
                "no clean term flushed the log's tail, so the log could not be read whole"
                    .to_owned(),
            )
        }
        (Some(changes), None) => {
            seen.observed(Rule::DefragParked);
            return (unaccounted > 0)
                .then(|| defrag_parked_violation(history, observation, changes));
        }
    };
    seen.unobservable(Rule::DefragParked, observation.stop_returned, why);
    None
}

/// defrag-parked's violation, in words.
fn defrag_parked_violation(
    history: &History,
    observation: &StopObservation,
    changes: &PageChangesAfter,
) -> Violation {
    let unaccounted = changes.unaccounted();
    Violation {
        rule: Rule::DefragParked,
        message: format!(
            "{}, and the log then gained {} page-image records (at LSNs {:?}) while its \
             rollbacks undid {} record changes: {unaccounted} page changes no allowlisted call \
             accounts for. A stop parks online defragmentation and waits for the pass in \
             progress before it returns, and after it only rollbacks change pages, each undone \
             change one record: defrag still moving records, a call working past the stop, a \
             stop that left the log unflushed, or a change logged in pieces",
            observed_stop_name(history, observation),
            changes.page_image_lsns.len(),
            changes.page_image_lsns,
            changes.rolled_back_changes
        ),
    }
}

/// A call as the stop checks list it: lane, call and steps.
pub(super) fn call_span(history: &History, e: &Event) -> String {
    format!(
        "{} {:?} (steps {}..{})",
        thread_label(e.thread, history.workers),
        e.call,
        e.invoked,
        e.returned
    )
}

/// The stop that `observation` saw, by lane and call, and when it returned (the timeline
/// finds the stop by that `(step N)`).
fn observed_stop_name(history: &History, observation: &StopObservation) -> String {
    format!(
        "{} {:?}, invoked at step {}, returned success (step {})",
        thread_label(observation.thread, history.workers),
        Call::StopService {
            instance: InstanceRef::Main,
            grbit: observation.grbit
        },
        observation.stop_invoked,
        observation.stop_returned
    )
}

/// stop-drained in words: the gated calls the harness saw in flight when the stop returned,
/// and the log records gated calls wrote after it.
fn stop_drained_message(
    history: &History,
    observation: &StopObservation,
    records: &[String],
) -> String {
    let in_flight: Vec<String> = history
        .events
        .iter()
        .filter(|e| {
            e.call.is_gated()
                && e.invoked < observation.stop_returned
                && e.returned > observation.stop_returned
        })
        .map(|e| {
            format!(
                "{} {:?} (steps {}..{}, returned {:?})",
                thread_label(e.thread, history.workers),
                e.call,
                e.invoked,
                e.returned,
                e.outcome
            )
        })
        .collect();
    let in_flight = listing_clause(
        " Gated calls the harness saw in flight when it returned: ",
        &in_flight,
        "; ",
        ".",
    );
    format!(
        "{}, and the log gained records only gated calls write after it: {} \
         (the durable log ended at LSN {} when the stop returned).{in_flight} A gated call did \
         work after the stop returned, or the stop left its log unflushed; a stop must wait \
         until no gated call is in flight and flush the log",
        observed_stop_name(history, observation),
        records.join(", "),
        observation.disk.log_end_lsn
    )
}

/// The gated calls that succeeded though invoked after `observation`'s stop had begun
/// preparing (its first disk write) and before it returned: stop-drained's violations, and
/// the calls the timeline marks for that rule. None when the stop wrote nothing.
pub fn admitted_while_preparing<'a>(
    history: &'a History,
    observation: &StopObservation,
) -> Vec<&'a Event> {
    let Some(first_write_at) = observation.first_write_at else {
        return Vec::new();
    };
    history
        .events
        .iter()
        .filter(|e| {
            e.call.is_gated()
                && e.outcome.is_ok()
                && e.invoked >= first_write_at
                && e.invoked < observation.stop_returned
        })
        .collect()
}

/// Each successful full or quiescing stop, checked by its own effects on what the harness
/// observed (the disk it read at the stop's response, the log at the end of the run, the
/// history), never by the engine's record or counters; a second stop is checked the same
/// way. A check that cannot be made is counted in `seen` with its reason.
///
/// - preparation: the disk as a crash right then would leave it is quiesced: the durable
///   checkpoint at the durable log's end, nothing unsynced, and recovery of a copy redoes no
///   page (after a StopAndEmitLog that followed a full stop too: its marker must not leave
///   the checkpoint behind);
/// - stop-drained (full stops): the log gains no record only a gated call writes after the
///   stop returned;
/// - defrag-parked (full stops): the log gains no page change after the stop returned but
///   the ones its rollbacks undid.
pub fn stop_effects(history: &History, seen: &mut Observability) -> Vec<Violation> {
    let mut violations = Vec::new();
    for observation in &history.stop_observations {
        match preparation_unobservable(history, observation) {
            Some(why) => seen.unobservable(Rule::Preparation, observation.stop_returned, why),
            None => {
                seen.observed(Rule::Preparation);
                if let Some(missing) = observation.disk.unprepared() {
                    violations.push(Violation {
                        rule: Rule::Preparation,
                        message: format!(
                            "{}, but the disk the harness read then was not \
                             prepared for termination: {missing}. A quiesced stop leaves the \
                             checkpoint at the durable log's end, every write synced, and \
                             nothing for recovery to redo",
                            observed_stop_name(history, observation)
                        ),
                    });
                }
            }
        }
        if observation.grbit != 0 {
            continue;
        }
        if let Some(first_write_at) = observation.first_write_at {
            for e in admitted_while_preparing(history, observation) {
                violations.push(Violation {
                    rule: Rule::StopDrained,
                    message: format!(
                        "{} {:?} (steps {}..{}) was invoked after {} had begun preparing (its \
                         first disk write, at step {first_write_at}), and succeeded with {:?}: \
                         a stop closes the gate and drains before it prepares, so the call \
                         must be refused with ClientRequestToStopJetService",
                        thread_label(e.thread, history.workers),
                        e.call,
                        e.invoked,
                        e.returned,
                        observed_stop_name(history, observation),
                        e.outcome
                    ),
                });
            }
        }
        match &observation.gated_records_after {
            Some(records) if records.is_empty() && !observation.log_read_whole => seen
                .unobservable(
                    Rule::StopDrained,
                    observation.stop_returned,
                    (
                        unobservable_reason::LOG_TAIL_UNREAD,
                        "no clean term flushed the log's tail, so the log could not be read whole"
                            .to_owned(),
                    ),
                ),
            None => seen.unobservable(
                Rule::StopDrained,
                observation.stop_returned,
                (
                    unobservable_reason::LOG_TAIL_UNREAD,
                    "the log was not read at the end of the run".to_owned(),
                ),
            ),
            Some(records) => {
                seen.observed(Rule::StopDrained);
                if !records.is_empty() {
                    violations.push(Violation {
                        rule: Rule::StopDrained,
                        message: stop_drained_message(history, observation, records),
                    });
                }
            }
        }
        violations.extend(defrag_parked(history, observation, seen));
    }
    violations
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
pub(super) fn model_sessions(model: &ModelState) -> Vec<SessionEnd> {
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

pub(super) fn describe_end(end: &EndState) -> String {
    format!(
        "phase {}, defrag parked {}, caches quiesced {}, sessions {:?}, committed {:?}",
        end.phase, end.defrag_parked, end.caches_quiesced, end.sessions, end.committed
    )
}

/// A durability failure in words: per table, the committed records recovery lost or changed
/// and the records it found that were never committed, against one order of the calls that
/// explains every result (no order explains the recovered data).
pub(super) fn describe_lost_data(recovered: &Tables, committed: &Tables) -> String {
    format!(
        "after the crash, recovery found data no order of the calls commits: {} (recovered {recovered:?}, committed {committed:?})",
        data_differences(recovered, committed).join(", ")
    )
}

/// The disk the final term left, against the committed data: what it lost or invented.
pub(super) fn describe_disk_data(found: &Tables, committed: &Tables) -> String {
    format!(
        "holds {} (found {found:?}, committed {committed:?})",
        data_differences(found, committed).join(", ")
    )
}

/// Per record, how `found` differs from `committed`: lost, changed, or never committed.
fn data_differences(found: &Tables, committed: &Tables) -> Vec<String> {
    let mut differences = Vec::new();
    for (table, (found, expected)) in found.iter().zip(committed).enumerate() {
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
    differences
}

/// The model's committed records per table, in the recovered data's form.
pub(super) fn committed_tables(model: &ModelState) -> Vec<Vec<(u8, u8)>> {
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
