//! version-cleanup: a full stop starts version-store cleanup, and the harness checks it from
//! the memory the store holds, never from the engine's cleanup flag or counters.
//!
//! The engine takes each version's memory from its environment; the harness meters it
//! ([`crate::world::memory_meter`]) and reads it at the instant the first successful full
//! stop returns ([`StopObservation::versions_held`]). The stop drains the gated calls and
//! then cleans up, so if no transaction was open while it did, every version left was dead and
//! the store must hold none. Whether a transaction was open is decided from the history alone:
//! the harness follows each session's transaction level through the calls that returned (a
//! session is named as the model names it: by the thread that created it and the how-manieth
//! it was). A stop during which a transaction may have been open, or ended, is counted as
//! unobservable with its reason, never passed in silence.

use super::rules::{call_span, Observability};
use super::{Rule, Violation};
use crate::history::{Event, History, StopObservation};
use crate::report::transitions::thread_label;
use crate::workload::{Call, InstanceRef, Ref};
use std::collections::BTreeMap;

/// Reasons this rule could not be decided, by kind.
pub mod unobservable_reason {
    pub const TRANSACTION_OPEN: &str = "a transaction was open";
    pub const TRANSACTION_ENDED: &str = "a transaction ended during the stop";
    pub const LEVELS_AMBIGUOUS: &str = "a session's calls overlapped";
}

/// A session as the model names it: (creating thread, how many that thread created before).
pub(super) type SessionName = (usize, u8);

/// Each session's transaction level, followed through the calls that returned (also the
/// commit-durable rule's, which asks which commits ended a level-1 transaction).
#[derive(Default)]
pub(super) struct TransactionLevels {
    created: BTreeMap<usize, u8>,
    /// (thread, variable) → the session last bound to it.
    bindings: BTreeMap<(usize, u8), SessionName>,
    levels: BTreeMap<SessionName, u8>,
}

impl TransactionLevels {
    fn session(&self, thread: usize, ses: Ref) -> Option<SessionName> {
        match ses {
            Ref::Var(var) => self.bindings.get(&(thread, var)).copied(),
            Ref::Created(n) => Some((thread, n)),
            Ref::PeerCreated { thread: peer, n } => Some((usize::from(peer), n)),
            Ref::Nil | Ref::Foreign | Ref::Peer(_) => None,
        }
    }

    /// The level of the session `event`'s call names, before the call (`None`: a session
    /// this history does not follow, such as another instance's).
    pub(super) fn level_of_session_of(&self, event: &Event) -> Option<u8> {
        self.levels.get(&self.session_of(event)?).copied()
    }

    /// Applies a call that succeeded; failed calls change nothing (failure-atomicity holds
    /// the engine to that).
    pub(super) fn apply(&mut self, event: &Event) {
        let thread = event.thread;
        match &event.call {
            Call::BeginSession { bind } => {
                let created = self.created.entry(thread).or_insert(0);
                let name = (thread, *created);
                *created = created.saturating_add(1);
                self.bindings.insert((thread, *bind), name);
                self.levels.insert(name, 0);
            }
            Call::Term {
                instance: InstanceRef::Main,
                ..
            } => self.levels.clear(),
            call => {
                let Some(name) = call.session().and_then(|ses| self.session(thread, ses)) else {
                    return;
                };
                match call {
                    Call::EndSession { .. } => {
                        self.levels.remove(&name);
                    }
                    Call::BeginTransaction { .. } => {
                        if let Some(level) = self.levels.get_mut(&name) {
                            *level += 1;
                        }
                    }
                    Call::CommitTransaction { .. } | Call::Rollback { .. } => {
                        if let Some(level) = self.levels.get_mut(&name) {
                            *level = level.saturating_sub(1);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The session `event`'s call names, resolved before the call is applied.
    pub(super) fn session_of(&self, event: &Event) -> Option<SessionName> {
        event
            .call
            .session()
            .and_then(|ses| self.session(event.thread, ses))
    }

    fn open(&self) -> Vec<SessionName> {
        self.levels
            .iter()
            .filter(|(_, &level)| level > 0)
            .map(|(&name, _)| name)
            .collect()
    }
}

/// The calls that succeeded and returned by step `to`, in the order they returned: the order
/// [`TransactionLevels`] follows them in.
pub(super) fn succeeded_in_return_order(history: &History, to: u64) -> Vec<&Event> {
    let mut done: Vec<&Event> = history
        .events
        .iter()
        .filter(|e| e.returned <= to && e.outcome.is_ok())
        .collect();
    done.sort_by_key(|e| e.returned);
    done
}

/// Sessions whose transaction level the history cannot follow from some step on: two of
/// their successful calls that begin or end a transaction overlapped (another thread called
/// on the session while one was inside, waiting for its claim), so the order the calls took
/// effect in is not known from the order they returned in. Session → the first step from
/// which its level is unknown (the earlier invocation of the first overlapping pair).
pub(super) fn sessions_ambiguous_from(history: &History) -> BTreeMap<SessionName, u64> {
    let done = succeeded_in_return_order(history, u64::MAX);
    let mut levels = TransactionLevels::default();
    let mut spans: BTreeMap<SessionName, Vec<(u64, u64)>> = BTreeMap::new();
    for event in done {
        if changes_transactions(&event.call) {
            if let Some(name) = levels.session_of(event) {
                spans
                    .entry(name)
                    .or_default()
                    .push((event.invoked, event.returned));
            }
        }
        levels.apply(event);
    }
    let mut ambiguous = BTreeMap::new();
    for (name, mut calls) in spans {
        calls.sort_unstable();
        let mut latest_return: Option<(u64, u64)> = None;
        for (invoked, returned) in calls {
            if let Some((earlier_invoked, earlier_returned)) = latest_return {
                if invoked < earlier_returned {
                    ambiguous.insert(name, earlier_invoked);
                    break;
                }
            }
            if latest_return.is_none_or(|(_, r)| returned > r) {
                latest_return = Some((invoked, returned));
            }
        }
    }
    ambiguous
}

/// Calls that begin or end a transaction, or end every session.
fn changes_transactions(call: &Call) -> bool {
    matches!(
        call,
        Call::BeginTransaction { .. }
            | Call::CommitTransaction { .. }
            | Call::Rollback { .. }
            | Call::EndSession { .. }
            | Call::Term {
                instance: InstanceRef::Main,
                ..
            }
    )
}

/// Calls that end a transaction without passing the gate: after the stop's cleanup, they may
/// free versions the cleanup had to keep.
fn ends_transaction_past_gate(call: &Call) -> bool {
    matches!(
        call,
        Call::Rollback { .. }
            | Call::EndSession { .. }
            | Call::Term {
                instance: InstanceRef::Main,
                ..
            }
    )
}

/// The first successful full stop's observation, if any.
fn first_full_stop(history: &History) -> Option<&StopObservation> {
    history
        .stop_observations
        .iter()
        .filter(|o| o.grbit == 0)
        .min_by_key(|o| o.stop_returned)
}

/// Why the first full stop's cleanup cannot be held to "no version left", if it cannot.
fn unobservable(history: &History, from: u64, to: u64) -> Option<(&'static str, String)> {
    let did_something = |e: &Event| e.outcome.is_ok() || e.outcome.is_io_error();
    if let Some(step) = history.first_disk_failure_at.filter(|&step| step <= to) {
        return Some((
            super::rules::unobservable_reason::DISK_FAILED,
            format!("the disk failed an operation (injected) by step {step}"),
        ));
    }
    let calls = |pick: &dyn Fn(&Event) -> bool| -> Option<String> {
        let named: Vec<String> = history
            .events
            .iter()
            .filter(|e| pick(e) && did_something(e))
            .map(|e| call_span(history, e))
            .collect();
        (!named.is_empty()).then(|| named.join("; "))
    };
    if let Some(enders) =
        calls(&|e| e.invoked < to && e.returned > from && ends_transaction_past_gate(&e.call))
    {
        return Some((
            unobservable_reason::TRANSACTION_ENDED,
            format!("calls that may end a transaction overlapped it: {enders}"),
        ));
    }
    if let Some(in_flight) =
        calls(&|e| e.invoked < to && e.returned > to && changes_transactions(&e.call))
    {
        return Some((
            unobservable_reason::TRANSACTION_OPEN,
            format!(
                "calls that begin or end a transaction were in flight when it returned: {in_flight}"
            ),
        ));
    }
    let ambiguous: Vec<String> = sessions_ambiguous_from(history)
        .into_iter()
        .filter(|&(_, from_step)| from_step < to)
        .map(|((thread, n), from_step)| {
            format!(
                "{}'s session #{n} from step {from_step}",
                thread_label(thread, history.workers)
            )
        })
        .collect();
    if !ambiguous.is_empty() {
        return Some((
            unobservable_reason::LEVELS_AMBIGUOUS,
            format!(
                "calls on one session that begin or end a transaction overlapped, so its level is not known: {}",
                ambiguous.join(", ")
            ),
        ));
    }
    let mut levels = TransactionLevels::default();
    for event in succeeded_in_return_order(history, to) {
        levels.apply(event);
    }
    let open = levels.open();
    if !open.is_empty() {
        let names: Vec<String> = open
            .iter()
            .map(|(thread, n)| format!("{}'s session #{n}", thread_label(*thread, history.workers)))
            .collect();
        return Some((
            unobservable_reason::TRANSACTION_OPEN,
            format!(
                "transactions were open when it returned: {}",
                names.join(", ")
            ),
        ));
    }
    None
}

/// The first successful full stop of the main instance, held to its cleanup: with no
/// transaction open from the first full stop's invocation to this return, the store must
/// hold no version when it returns.
pub fn version_cleanup(history: &History, seen: &mut Observability) -> Vec<Violation> {
    let Some(observation) = first_full_stop(history) else {
        return Vec::new();
    };
    // The stop that did the work may be an earlier one that failed after its cleanup (a disk
    // error in its flush): the window opens at the first full stop invoked.
    let from = history
        .events
        .iter()
        .filter(|e| e.call.is_full_stop_of_main() && e.invoked <= observation.stop_returned)
        .map(|e| e.invoked)
        .min()
        .unwrap_or(observation.stop_invoked);
    if let Some(why) = unobservable(history, from, observation.stop_returned) {
        seen.unobservable(Rule::VersionCleanup, observation.stop_returned, why);
        return Vec::new();
    }
    seen.observed(Rule::VersionCleanup);
    if observation.versions_held == 0 {
        return Vec::new();
    }
    vec![Violation {
        rule: Rule::VersionCleanup,
        message: format!(
            "{} {:?}, invoked at step {}, returned success (step {}) with {} versions still in \
             the version store's memory, though no transaction was open when it returned and \
             none ended past the gate since step {from}: the stop starts version-store cleanup \
             after it drains, and with no transaction open every version is dead and must be \
             freed",
            thread_label(observation.thread, history.workers),
            Call::StopService {
                instance: InstanceRef::Main,
                grbit: 0
            },
            observation.stop_invoked,
            observation.stop_returned,
            observation.versions_held
        ),
    }]
}
