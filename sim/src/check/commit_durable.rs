//! commit-durable: a level-1 `JetCommitTransaction` answers success only once its Commit
//! record is durable (ESE's commit waits for the log; group commit may share the sync, never
//! skip it). The harness checks it from the disk at each acknowledgement, without a crash:
//! at the response step of every successful commit it counted the Commit records in the
//! synced bytes of the main log ([`crate::history::CommitAck`]), and since each level-1
//! commit appends one record, by then the durable log must hold at least one record per
//! level-1 commit acknowledged so far (the setup's excepted). Which commits ended a level-1
//! transaction is decided from the history alone, following each session's level through
//! the calls that returned. A session two threads called on at once (one waiting for the
//! other's claim) has no known level from then on: its commits are neither judged nor counted
//! (counted unobservable instead), which keeps the count a lower bound. Counting, not naming,
//! records makes the check sound but not complete: a record another commit made durable early
//! can stand in for a missing one.
//!
//! detach-durable, by the same method: a detach answers success only once its Detach record
//! is durable (ESE's `ErrLGDetachDB` waits for the log), so at the response of the n-th
//! successful detach the durable log holds at least n Detach records. Every detach of the
//! workload is of the run's one database, and the setup makes none.

use super::rules::Observability;
use super::version_cleanup::{
    sessions_ambiguous_from, succeeded_in_return_order, TransactionLevels,
};
use super::{Rule, Violation};
use crate::history::{Event, History};
use crate::report::transitions::thread_label;
use crate::workload::Call;
use std::collections::BTreeMap;

/// Why a commit could not be judged.
pub const LEVEL_UNKNOWN: &str = "its session's calls overlapped";

/// One violation per level-1 commit that answered before the durable log could hold its
/// record; none for a history the harness did not read the log for. Each commit judged is
/// counted in `seen`, each one whose level is unknown counted unobservable.
pub fn commit_durable(history: &History, seen: &mut Observability) -> Vec<Violation> {
    let ambiguous = sessions_ambiguous_from(history);
    let durable_at: BTreeMap<u64, u64> = history
        .commit_acks
        .iter()
        .map(|ack| (ack.returned, ack.durable_commit_records))
        .collect();
    let done = succeeded_in_return_order(history, u64::MAX);
    let mut levels = TransactionLevels::default();
    let mut acknowledged = 0u64;
    let mut violations = Vec::new();
    for event in done {
        let is_commit = matches!(event.call, Call::CommitTransaction { .. });
        let level = levels.level_of_session_of(event);
        let unknown_from = levels
            .session_of(event)
            .and_then(|name| ambiguous.get(&name).copied())
            .filter(|&from_step| from_step < event.returned);
        levels.apply(event);
        if !is_commit || level.is_none() {
            continue;
        }
        if let Some(from_step) = unknown_from {
            seen.unobservable(
                Rule::CommitDurable,
                event.returned,
                (
                    LEVEL_UNKNOWN,
                    format!(
                        "{} {:?} (steps {}..{}): calls on its session overlapped from step {from_step}, so whether it ended a level-1 transaction is not known",
                        thread_label(event.thread, history.workers),
                        event.call,
                        event.invoked,
                        event.returned
                    ),
                ),
            );
            continue;
        }
        if level != Some(1) {
            continue;
        }
        acknowledged += 1;
        let Some(&durable) = durable_at.get(&event.returned) else {
            continue;
        };
        seen.observed(Rule::CommitDurable);
        let durable = durable.saturating_sub(history.durable_commit_records_at_start);
        if durable < acknowledged {
            violations.push(Violation {
                rule: Rule::CommitDurable,
                message: format!(
                    "{} {:?} (steps {}..{}) answered success, yet the durable log held {durable} of the workload's Commit records when it did, with {acknowledged} level-1 commits acknowledged by then: an acknowledged commit was not durable",
                    thread_label(event.thread, history.workers),
                    event.call,
                    event.invoked,
                    event.returned,
                ),
            });
        }
    }
    violations
}

/// One violation per detach that answered before the durable log could hold its record.
pub fn detach_durable(history: &History, seen: &mut Observability) -> Vec<Violation> {
    let durable_at: BTreeMap<u64, u64> = history
        .detach_acks
        .iter()
        .map(|ack| (ack.returned, ack.durable_detach_records))
        .collect();
    let detaches = succeeded_in_return_order(history, u64::MAX)
        .into_iter()
        .filter(|event| matches!(event.call, Call::DetachDatabase { .. }));
    let mut violations = Vec::new();
    for (acknowledged, event) in (1u64..).zip(detaches) {
        let Some(&durable) = durable_at.get(&event.returned) else {
            continue;
        };
        seen.observed(Rule::DetachDurable);
        if durable < acknowledged {
            violations.push(detach_not_durable(history, event, durable, acknowledged));
        }
    }
    violations
}

fn detach_not_durable(
    history: &History,
    event: &Event,
    durable: u64,
    acknowledged: u64,
) -> Violation {
    Violation {
        rule: Rule::DetachDurable,
        message: format!(
            "{} {:?} (steps {}..{}) answered success, yet the durable log held {durable} Detach records when it did, with {acknowledged} detaches acknowledged by then: the file was any instance's while this log, after a crash, still named it attached",
            thread_label(event.thread, history.workers),
            event.call,
            event.invoked,
            event.returned,
        ),
    }
}
