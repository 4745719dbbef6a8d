//! A run's state transitions, call by call, in the order the linearizability search found:
//! what each call returned, and what it changed in the reference model ("state unchanged"
//! for a no-op), plus, after a successful full stop, what the engine's stop record says it
//! did. The snapshots in `snapshots/` are this text; the HTML timeline reuses the same replay.
//!
//! The text is deterministic for a deterministic run: it names sessions by who created them
//! (`t1#0` is thread 1's first session), cursors by their session and table, never by handle
//! values or addresses, and every collection it walks is ordered.
//!
//! Line shape: `[invoked..returned] thread call -> result   what changed`, e.g.
//! `[ 12.. 15] t2 commit_transaction(s0) -> ClientRequestToStopJetService   state unchanged`.

use crate::check::linearizability::{Stuck, Verdict};
use crate::history::{AfterStop, Event, History};
use crate::model::{step, ModelPhase, ModelSession, ModelState, ObjectId, Outcome, Position};
use crate::workload::{Call, DatabaseFile, InstanceRef, Move, Ref, Seek};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One call placed in the linearization, with what it did to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub event: Event,
    /// What changed in the model, in words; empty when nothing did.
    pub changes: Vec<String>,
    /// The model's state before the call (for marks that look at it).
    pub before: ModelState,
    /// And after.
    pub after: ModelState,
}

/// How far the linearization got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Every call placed, ending in the engine's end state.
    Complete,
    /// Every result explained, but not the engine's end state.
    EndStateMismatch,
    /// No order explains the results: the prefix was placed, then every candidate disagreed.
    Stuck(Vec<Stuck>),
    /// The search hit its bound.
    Unknown,
}

/// A run replayed on the model along the linearization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub transitions: Vec<Transition>,
    pub placement: Placement,
    /// Calls the linearization did not place (besides the stuck candidates), in invocation
    /// order.
    pub unplaced: Vec<Event>,
    /// Full stops' records, by the step the stop returned at.
    pub after_stops: Vec<AfterStop>,
    /// The run ended in a crash and a recovery (disk faults): the end state to explain is the
    /// recovered data.
    pub crashed: bool,
    /// The number of workload threads (the harness's own thread, which winds down and terms,
    /// is numbered after them).
    pub threads: usize,
}

/// The harness's own thread (wind-down rollbacks, the final term): numbered after the workers.
pub fn harness_thread(history: &History) -> usize {
    history.events.iter().map(|e| e.thread).max().unwrap_or(0)
}

/// Replays `history` on the model from `initial`. The final term (made by the harness after
/// it read the end state) is not part of the search, as in the checkers; it is stepped from
/// the linearization's end.
pub fn replay(history: &History, initial: &ModelState, threads: usize) -> Replay {
    let (body, final_term) = crate::check::split_final_term(history);
    let found = crate::check::search(&body, initial, history);
    let placement = match found.verdict {
        Verdict::Linearizable { .. } => Placement::Complete,
        Verdict::EndStateMismatch { .. } => Placement::EndStateMismatch,
        Verdict::Violation { stuck, .. } => Placement::Stuck(stuck),
        Verdict::Unknown { .. } => Placement::Unknown,
    };
    let mut transitions = Vec::new();
    let mut state = initial.clone();
    for (event, next) in found.order.iter().zip(found.states) {
        push_transition(&mut transitions, &mut state, event, next);
    }
    // Placed, or shown as a stuck candidate: not listed again as unplaced.
    let mut placed: BTreeSet<(usize, u64)> =
        found.order.iter().map(|e| (e.thread, e.invoked)).collect();
    if let Placement::Stuck(stuck) = &placement {
        placed.extend(stuck.iter().map(|s| (s.event.thread, s.event.invoked)));
    }
    let mut unplaced: Vec<Event> = body
        .iter()
        .filter(|e| !placed.contains(&(e.thread, e.invoked)))
        .cloned()
        .collect();
    unplaced.sort_by_key(|e| e.invoked);
    if placement == Placement::Complete || placement == Placement::EndStateMismatch {
        for event in &final_term {
            let (_, next) = step(&state, event.thread, &event.call);
            push_transition(&mut transitions, &mut state, event, next);
        }
    } else {
        unplaced.extend(final_term);
    }
    Replay {
        transitions,
        placement,
        unplaced,
        after_stops: history.after_stops.clone(),
        crashed: history.io_faults,
        threads,
    }
}

/// Appends the transition `event` makes from `state` to `next`, and moves `state` on.
fn push_transition(
    transitions: &mut Vec<Transition>,
    state: &mut ModelState,
    event: &Event,
    next: ModelState,
) {
    transitions.push(Transition {
        event: event.clone(),
        changes: describe_changes(state, &next),
        before: state.clone(),
        after: next.clone(),
    });
    *state = next;
}

/// `t0`, `t1`, ... for workload threads; `wd` for the harness's wind-down and final term.
pub fn thread_label(thread: usize, threads: usize) -> String {
    if thread >= threads {
        "wd".to_owned()
    } else {
        format!("t{thread}")
    }
}

fn session_ref(r: Ref, thread: usize) -> String {
    match r {
        Ref::Var(v) => format!("s{v}"),
        Ref::Nil => "nil".to_owned(),
        Ref::Foreign => "foreign".to_owned(),
        Ref::Created(n) => format!("t{thread}#{n}"),
        Ref::Peer(v) => format!("peer.s{v}"),
        Ref::PeerCreated { thread, n } => format!("t{thread}#{n}"),
    }
}

fn object_ref(r: Ref, prefix: &str) -> String {
    match r {
        Ref::Var(v) => format!("{prefix}{v}"),
        Ref::Nil => "nil".to_owned(),
        Ref::Foreign => "foreign".to_owned(),
        other => format!("{other:?}"),
    }
}

fn instance_ref(r: InstanceRef) -> &'static str {
    match r {
        InstanceRef::Main => "main",
        InstanceRef::Nil => "nil",
        InstanceRef::Uninitialized => "uninitialized",
        InstanceRef::Terminated => "terminated",
    }
}

/// `grbit` as `|`-joined names of its known bits, then any unknown rest in hex.
fn grbit_names(grbit: u32, known: &[(u32, &str)]) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = grbit;
    for &(bit, name) in known {
        if grbit & bit != 0 {
            names.push(name.to_owned());
            rest &= !bit;
        }
    }
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    names
}

fn stop_grbit(grbit: u32) -> String {
    grbit_names(
        grbit,
        &[
            (0x2, "BackgroundUserTasks"),
            (0x4, "QuiesceCaches"),
            (0x8000_0000, "Resume"),
        ],
    )
    .join("|")
}

fn term_grbit(grbit: u32) -> String {
    let names = grbit_names(
        grbit,
        &[
            (0x1, "Complete"),
            (0x2, "Abrupt"),
            (0x4, "StopBackup"),
            (0x8, "Dirty"),
        ],
    );
    if names.is_empty() {
        "0".to_owned()
    } else {
        names.join("|")
    }
}

/// A call in the compact form of the snapshots: `insert(s0, tab0, k2=v3)`. Long on purpose:
/// one arm per `Call`; the snapshots depend on every spelling, kept in one place (arms alike in
/// shape, such as create_table and open_table, stay apart: each is its own spelling).
pub fn call_text(call: &Call, thread: usize) -> String {
    let s = |r: Ref| session_ref(r, thread);
    let db = |r: Ref| object_ref(r, "db");
    let tab = |r: Ref| object_ref(r, "tab");
    match *call {
        Call::BeginSession { bind } => format!("begin_session(->s{bind})"),
        Call::EndSession { ses } => format!("end_session({})", s(ses)),
        Call::SetSessionContext { ses, context } => {
            format!("set_session_context({}, {context:#x})", s(ses))
        }
        Call::ResetSessionContext { ses } => format!("reset_session_context({})", s(ses)),
        Call::GetSessionInfo { ses } => format!("get_session_info({})", s(ses)),
        Call::OpenDatabase { ses, bind } => format!("open_database({}, ->db{bind})", s(ses)),
        Call::CloseDatabase { ses, db: d } => format!("close_database({}, {})", s(ses), db(d)),
        Call::AttachDatabase { ses, file } => match file {
            DatabaseFile::Run => format!("attach_database({})", s(ses)),
            DatabaseFile::Missing => format!("attach_database({}, missing file)", s(ses)),
        },
        Call::DetachDatabase { ses } => format!("detach_database({})", s(ses)),
        Call::Defragment { ses, db: d, grbit } => {
            format!("defragment({}, {}, {grbit:#x})", s(ses), db(d))
        }
        Call::CreateTable {
            ses,
            db: d,
            table,
            bind,
        } => format!(
            "create_table({}, {}, \"t{table}\", ->tab{bind})",
            s(ses),
            db(d)
        ),
        Call::DeleteTable { ses, db: d, table } => {
            format!("delete_table({}, {}, \"t{table}\")", s(ses), db(d))
        }
        Call::OpenTable {
            ses,
            db: d,
            table,
            bind,
        } => format!(
            "open_table({}, {}, \"t{table}\", ->tab{bind})",
            s(ses),
            db(d)
        ),
        Call::CloseTable { ses, table } => format!("close_table({}, {})", s(ses), tab(table)),
        Call::BeginTransaction { ses } => format!("begin_transaction({})", s(ses)),
        Call::CommitTransaction { ses } => format!("commit_transaction({})", s(ses)),
        Call::Rollback { ses } => format!("rollback({})", s(ses)),
        Call::Insert {
            ses,
            table,
            key,
            value,
        } => format!("insert({}, {}, k{key}=v{value})", s(ses), tab(table)),
        Call::Replace { ses, table, value } => {
            format!("replace({}, {}, v{value})", s(ses), tab(table))
        }
        Call::Delete { ses, table } => format!("delete({}, {})", s(ses), tab(table)),
        Call::Seek {
            ses,
            table,
            key,
            mode,
        } => {
            let mode = match mode {
                Seek::Equal => "==",
                Seek::GreaterOrEqual => ">=",
                Seek::LessOrEqual => "<=",
            };
            format!("seek({}, {}, {mode} k{key})", s(ses), tab(table))
        }
        Call::Move { ses, table, to } => {
            let to = match to {
                Move::First => "first",
                Move::Previous => "previous",
                Move::Next => "next",
                Move::Last => "last",
            };
            format!("move({}, {}, {to})", s(ses), tab(table))
        }
        Call::Retrieve { ses, table } => format!("retrieve({}, {})", s(ses), tab(table)),
        Call::IndexRecordCount {
            ses,
            table,
            max_records: 0,
        } => {
            format!("index_record_count({}, {})", s(ses), tab(table))
        }
        Call::IndexRecordCount {
            ses,
            table,
            max_records,
        } => {
            format!(
                "index_record_count({}, {}, max {max_records})",
                s(ses),
                tab(table)
            )
        }
        Call::StopService { instance, grbit: 0 } => {
            format!("stop_service_instance({})", instance_ref(instance))
        }
        Call::StopService { instance, grbit } => format!(
            "stop_service_instance2({}, {})",
            instance_ref(instance),
            stop_grbit(grbit)
        ),
        Call::Term { instance, grbit } => {
            format!("term2({}, {})", instance_ref(instance), term_grbit(grbit))
        }
        Call::GetSystemParameter {
            instance,
            parameter,
        } => format!(
            "get_system_parameter({}, {parameter:?})",
            instance_ref(instance)
        ),
        Call::SetSystemParameter {
            instance,
            parameter,
            value,
        } => format!(
            "set_system_parameter({}, {parameter:?}, {value})",
            instance_ref(instance)
        ),
    }
}

/// A result in the compact form: `ok`, an error's name, or the value returned.
pub fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok => "ok".to_owned(),
        Outcome::Record { key, value } => format!("k{key}=v{value}"),
        Outcome::Count(n) => format!("count {n}"),
        Outcome::SessionInfo {
            level,
            context,
            open_tables,
            open_databases,
        } => format!(
            "info(level {level}, context {}, tables {open_tables}, databases {open_databases})",
            context.map_or_else(|| "none".to_owned(), |c| format!("{c:#x}"))
        ),
        Outcome::Attached { already: true } => "already attached".to_owned(),
        Outcome::Attached { already: false } => "attached".to_owned(),
        Outcome::Terminated { dirty: true } => "terminated (dirty)".to_owned(),
        Outcome::Terminated { dirty: false } => "terminated".to_owned(),
        Outcome::Parameter(value) => format!("parameter {value}"),
        Outcome::Err(name) => name.clone(),
    }
}

fn phase_text(phase: ModelPhase) -> &'static str {
    match phase {
        ModelPhase::Running => "running",
        ModelPhase::Stopped => "stopped",
        ModelPhase::Terminated => "terminated",
    }
}

/// `t1#0`: the model's name of a session, by who created it.
fn session_label(state: &ModelState, id: ObjectId) -> String {
    state.created.iter().find(|(_, &s)| s == id).map_or_else(
        || format!("session {id}"),
        |((t, n), _)| format!("t{t}#{n}"),
    )
}

fn level(state: &ModelState, id: ObjectId) -> usize {
    state
        .sessions
        .get(&id)
        .and_then(|s| s.transaction.as_ref())
        .map_or(0, |t| t.levels.len())
}

fn value_text(value: Option<u8>) -> String {
    value.map_or_else(|| "deleted".to_owned(), |v| format!("v{v}"))
}

fn position_text(position: Position) -> String {
    match position {
        Position::BeforeFirst => "before first".to_owned(),
        Position::On(key) => format!("on k{key}"),
        Position::AfterLast => "after last".to_owned(),
    }
}

/// What changed from `before` to `after`, in words, in a fixed order: the instance, then
/// each session, each cursor, and the commits (the order the snapshots print them).
pub fn describe_changes(before: &ModelState, after: &ModelState) -> Vec<String> {
    let mut changes = Vec::new();
    instance_changes(before, after, &mut changes);
    for (&id, session) in &after.sessions {
        session_changes(before, after, id, session, &mut changes);
    }
    for (&id, cursor) in &after.cursors {
        let owner = session_label(after, cursor.session);
        match before.cursors.get(&id) {
            None => changes.push(format!("{owner} opened a cursor on t{}", cursor.table)),
            Some(old) if old.alive && !cursor.alive => {
                changes.push(format!("{owner} cursor on t{} closed", cursor.table))
            }
            Some(old) if cursor.alive && old.position != cursor.position => changes.push(format!(
                "{owner} cursor on t{} {}",
                cursor.table,
                position_text(cursor.position)
            )),
            Some(_) => {}
        }
    }
    if after.commits.len() > before.commits.len() {
        let written: Vec<String> = after.commits[before.commits.len()..]
            .iter()
            .map(|&(_, table, key, value)| format!("t{table}.k{key}={}", value_text(value)))
            .collect();
        changes.push(format!("committed {}", written.join(", ")));
    }
    changes
}

/// The instance's phase and flags, and the uninitialized instance's end.
fn instance_changes(before: &ModelState, after: &ModelState, changes: &mut Vec<String>) {
    if before.phase != after.phase {
        changes.push(format!(
            "phase {} -> {}",
            phase_text(before.phase),
            phase_text(after.phase)
        ));
    }
    for (flag_before, flag_after, on, off) in [
        (
            before.defrag_parked,
            after.defrag_parked,
            "defrag parked",
            "defrag unparked",
        ),
        (
            before.caches_quiesced,
            after.caches_quiesced,
            "caches quiesced",
            "caches unquiesced",
        ),
        (
            before.attached,
            after.attached,
            "database attached",
            "database detached",
        ),
        (
            before.log_stopped,
            after.log_stopped,
            "log stream ended",
            "log stream resumed",
        ),
    ] {
        if flag_before != flag_after {
            changes.push(if flag_after { on } else { off }.to_owned());
        }
    }
    if before.uninitialized_alive && !after.uninitialized_alive {
        changes.push("uninitialized instance terminated".to_owned());
    }
}

/// Session `id`'s changes: begun or ended, its context, transaction level, database opens and
/// uncommitted writes.
fn session_changes(
    before: &ModelState,
    after: &ModelState,
    id: ObjectId,
    session: &ModelSession,
    changes: &mut Vec<String>,
) {
    let label = session_label(after, id);
    let Some(old) = before.sessions.get(&id) else {
        changes.push(format!("session {label} begun"));
        return;
    };
    if old.alive && !session.alive {
        changes.push(format!("session {label} ended"));
    }
    if old.context != session.context {
        changes.push(match session.context {
            Some((context, by)) => format!("{label} context {context:#x} set by t{by}"),
            None => format!("{label} context reset"),
        });
    }
    let (level_before, level_after) = (level(before, id), level(after, id));
    if level_before != level_after {
        changes.push(format!(
            "{label} transaction level {level_before} -> {level_after}"
        ));
    }
    if old.database_opens != session.database_opens {
        changes.push(format!(
            "{label} database opens {} -> {}",
            old.database_opens, session.database_opens
        ));
    }
    // Uncommitted writes of the innermost level (the only one a call can change, besides
    // rollback and commit, whose level change is reported above).
    if level_before == level_after && level_after > 0 {
        let writes = |s: &ModelState| {
            s.sessions[&id]
                .transaction
                .as_ref()
                .and_then(|t| t.levels.last().cloned())
                .unwrap_or_default()
        };
        let (w_before, w_after) = (writes(before), writes(after));
        for (&(table, key), &value) in &w_after {
            if w_before.get(&(table, key)) != Some(&value) {
                changes.push(format!(
                    "{label} writes t{table}.k{key}={} (uncommitted)",
                    value_text(value)
                ));
            }
        }
    }
}

/// Column the "what changed" text starts at (lines longer than this get three spaces).
const CHANGE_COLUMN: usize = 72;

fn event_line(event: &Event, threads: usize) -> String {
    format!(
        "[{:>3}..{:>3}] {} {} -> {}",
        event.invoked,
        event.returned,
        thread_label(event.thread, threads),
        call_text(&event.call, event.thread),
        outcome_text(&event.outcome)
    )
}

fn padded(head: String, tail: &str) -> String {
    let width = head.chars().count();
    let pad = if width + 3 <= CHANGE_COLUMN {
        CHANGE_COLUMN - width
    } else {
        3
    };
    format!("{head}{}{tail}", " ".repeat(pad))
}

/// The stop record's steps, as one line: `t1 stop: gate closed, 0 calls drained; defrag ...`.
pub fn stop_record_line(after: &AfterStop, thread: &str) -> String {
    if after.record_missing {
        return format!("{thread} stop: no stop record (the instance was terminated since)");
    }
    format!("{thread} stop: {}", after.steps.join("; "))
}

impl Replay {
    /// The record of the full stop that returned at `returned`.
    pub fn after_stop(&self, returned: u64) -> Option<&AfterStop> {
        self.after_stops
            .iter()
            .find(|a| a.stop_returned == returned)
    }

    /// The transitions as text, one line per event (plus one per stop record), ending with a
    /// newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut stopped_before = false;
        for transition in &self.transitions {
            let event = &transition.event;
            let changes = if transition.changes.is_empty() {
                "state unchanged".to_owned()
            } else {
                transition.changes.join("; ")
            };
            let _ = writeln!(out, "{}", padded(event_line(event, self.threads), &changes));
            if event.call.is_full_stop_of_main() && event.outcome == Outcome::Ok {
                let label = thread_label(event.thread, self.threads);
                if stopped_before {
                    // A second full stop does nothing and records nothing: what the harness
                    // read after it is still the first stop's record.
                    let _ = writeln!(
                        out,
                        "          {label} stop: already stopped, nothing done (no new stop record)"
                    );
                } else if let Some(after) = self.after_stop(event.returned) {
                    let _ = writeln!(out, "          {}", stop_record_line(after, &label));
                }
                stopped_before = true;
            }
        }
        match &self.placement {
            Placement::Complete => {}
            Placement::EndStateMismatch if self.crashed => {
                let _ = writeln!(
                    out,
                    "-- every result is explained, but no order of the calls commits the data recovery found"
                );
            }
            Placement::EndStateMismatch => {
                let _ = writeln!(
                    out,
                    "-- every result is explained, but the model's end state is not the engine's"
                );
            }
            Placement::Stuck(stuck) => {
                let _ = writeln!(
                    out,
                    "-- no order of the calls explains the results past this point; every candidate disagrees:"
                );
                for s in stuck {
                    let _ = writeln!(
                        out,
                        "{}",
                        padded(
                            format!("!! {}", event_line(&s.event, self.threads)),
                            &format!("the model expected {}", outcome_text(&s.model_expected))
                        )
                    );
                }
            }
            Placement::Unknown => {
                let _ = writeln!(
                    out,
                    "-- the linearizability search hit its bound: no order to show"
                );
            }
        }
        if !self.unplaced.is_empty() {
            let _ = writeln!(out, "-- not placed (invocation order):");
            for event in &self.unplaced {
                let _ = writeln!(out, "   {}", event_line(event, self.threads));
            }
        }
        out
    }

    /// Whether a successful rollback closed cursors in the model (tables opened in its level).
    pub fn rollback_closed_tables(&self) -> bool {
        self.transitions.iter().any(|t| {
            matches!(t.event.call, Call::Rollback { .. })
                && t.event.outcome == Outcome::Ok
                && open_cursors(&t.after) < open_cursors(&t.before)
        })
    }
}

fn open_cursors(state: &ModelState) -> usize {
    state.cursors.values().filter(|c| c.alive).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    #[test]
    fn changes_are_described_in_words() {
        let s0 = ModelState::initial(&[(1, 1)]);
        let script = [
            Call::BeginSession { bind: 0 },
            Call::OpenDatabase {
                ses: Ref::Var(0),
                bind: 0,
            },
            Call::BeginTransaction { ses: Ref::Var(0) },
            Call::OpenTable {
                ses: Ref::Var(0),
                db: Ref::Var(0),
                table: 0,
                bind: 0,
            },
            Call::Insert {
                ses: Ref::Var(0),
                table: Ref::Var(0),
                key: 2,
                value: 3,
            },
            Call::CommitTransaction { ses: Ref::Var(0) },
            Call::StopService {
                instance: InstanceRef::Main,
                grbit: 0,
            },
            Call::BeginTransaction { ses: Ref::Var(0) },
        ];
        let mut state = s0;
        let mut described = Vec::new();
        for call in &script {
            let (_, next) = step(&state, 1, call);
            described.push(describe_changes(&state, &next).join("; "));
            state = next;
        }
        assert_eq!(
            described,
            vec![
                "session t1#0 begun",
                "t1#0 database opens 0 -> 1",
                "t1#0 transaction level 0 -> 1",
                "t1#0 opened a cursor on t0",
                "t1#0 writes t0.k2=v3 (uncommitted); t1#0 cursor on t0 on k2",
                "t1#0 transaction level 1 -> 0; committed t0.k2=v3",
                "phase running -> stopped; defrag parked; caches quiesced",
                "",
            ]
        );
        assert_eq!(
            call_text(
                &Call::StopService {
                    instance: InstanceRef::Main,
                    grbit: 0x8000_0002
                },
                0
            ),
            "stop_service_instance2(main, BackgroundUserTasks|Resume)"
        );
        assert!(state.bindings.contains_key(&(1, Kind::Session, 0)));
    }
}
