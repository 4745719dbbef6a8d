//! Linearizability of a history against the reference model: a Wing–Gong search with Lowe's
//! memoization (as Porcupine does). At each point only the calls that could come next in real
//! time are tried (invoked before every pending call's response); a (calls done, model state)
//! pair already explored is not explored again.
//!
//! The search must also end in a model state the engine's observed end state matches, so a
//! linearization that reaches the same results by a different path to a different state does
//! not count. It is bounded: past `states_max` explored states the verdict is "unknown", unless
//! some linearization explained every result but none explored reached the engine's end state,
//! which is reported as an end-state mismatch (within the bound).
//!
//! [`linearize`] also returns the order it found (or, without one, the deepest prefix it
//! reached), so a run's transitions can be replayed on the model call by call (the snapshots
//! of `crate::report::transitions`); [`check`] is the verdict alone.
//!
//! Calls refused with TermInProgress while a term that succeeded overlapped them are no-ops
//! the model cannot place (term is atomic in the model, two-phase in the engine); they are
//! accepted anywhere in their interval, and the end-state check still sees any effect they
//! had. A term that failed overlaps nothing: it must refuse no one.
//!
//! # Keeping the search small
//!
//! - **Eager placement.** A call that returns here what the engine returned and can change
//!   nothing wherever it is placed (an error the model returns: errors leave the model's
//!   state unchanged; a read `model::never_changes_state` lists; a no-op) is placed alone, as
//!   soon as it may come next. Any linearization that places it later can move it here:
//!   the calls between were pending, so none returned before it was invoked, and each sees
//!   the same state. A call in doubt is never placed eagerly (its effect may be needed later).
//! - **Memo on what can be observed** (`ModelState::hash_observable`): two commit orders no
//!   open snapshot separates and that write different keys, or a begin before and after an
//!   empty commit, reach states no later call can tell apart, and meet in the memo.
//! - **Earliest return first.** Of the calls that may come next, the one that returned first
//!   is tried first: the order of returns is a linearization far more often than the order
//!   of invocations, and a linearizable history needs only one path.
//!
//! # P-compositionality
//!
//! Linearizability is local (Herlihy and Wing; Horn and Kroening's P-compositionality): if
//! the model's state is a product of independent objects and every call reads and writes
//! one of them only, the history is linearizable if and only if each object's sub-history is,
//! and orders found per object merge into one (by linearization points, below). So the
//! history is split by object first, and each part searched alone. The objects the model
//! really has, from what each `model::apply` arm reads and writes:
//!
//! - the instance under test (gate, sessions, cursors, database, tables, commit log, log
//!   stream, defrag and cache flags);
//! - its system parameters, read and written only by `Get`/`SetSystemParameter`, which also
//!   read whether the instance is terminated: a part of their own only when no call of the
//!   history can terminate it (no term of it that succeeded or is in doubt);
//! - the uninitialized instance (`uninitialized_alive`), touched only by stop and term on it;
//! - nothing at all, for a call whose result follows from its arguments (a nil, foreign or
//!   unresolved session handle; a nil or terminated instance handle; parameters of the
//!   uninitialized instance): each such call is a part of its own.
//!
//! The instance is not split further, because its parts do not commute. Sessions and tables
//! share the commit log: a commit in one session changes what a later begin in another
//! snapshots, whether its writes conflict, and what it reads of any table, and one
//! transaction spans tables. A full stop changes the gate every session's next call reads;
//! term, detach and delete-table read every session's transactions and cursors. Replicating
//! the stop into per-session parts would let each part put it at a different point (a
//! session whose call after the stop was refused, and another whose later call succeeded,
//! each linearize alone and not together), so it would accept histories that are not
//! linearizable. The instance's part is searched whole.
//!
//! Each part's order gives every call a point in its interval: the latest invocation so
//! far in that order. Merged by point, a call that returned before another was invoked
//! comes first, so the merge keeps real time and every part's order; it is then replayed on
//! the whole model, every result and the end state compared, before it is reported. When
//! the parts find no linearization, or the merge does not replay, the whole history is
//! searched as before, so every verdict other than a linearization (violation, end-state
//! mismatch, with their diagnostics) comes from the whole history. A part that reaches the
//! bound alone gives no verdict.

use crate::history::Event;
use crate::model::{step, FoldHasher, ModelState, Outcome};
use crate::workload::{Call, InstanceRef, Ref};
use jetsim_engine::JetError;
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// The memo holds 64-bit fingerprints of (calls done, model state) rather than the states
/// themselves: cloning states into the set was a quarter of a run's checking time. A
/// fingerprint collision (about 1 in 10^10 at the search bound) could only prune a path and so
/// report a violation that is not one, never hide one; the replay of such a seed would show
/// a linearization by hand. Hashing has fixed keys: deterministic.
type Memo = HashSet<u64, BuildHasherDefault<IdentityHasher>>;

/// The memo's keys are already hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// The state's part is [`ModelState::hash_observable`]: states no sequence of calls can tell
/// apart (commit orders no open snapshot separates, empty commits) share a fingerprint, so
/// the memo merges them. Merging states that differ only in what nothing observes is exact;
/// like a collision, it could at worst prune a path, never accept a history.
fn fingerprint(done: &[u64], state: &ModelState) -> u64 {
    let mut hasher = FoldHasher::default();
    done.hash(&mut hasher);
    state.hash_observable(&mut hasher);
    hasher.finish()
}

/// The search's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable {
        /// The model state after the whole linearization.
        end: Box<ModelState>,
        states_explored: u64,
    },
    /// No linearization. `stuck` describes the deepest point the search reached: the calls
    /// that could have come next, with what the model would have returned for each.
    Violation {
        states_explored: u64,
        linearized_prefix: usize,
        stuck: Vec<Stuck>,
    },
    /// Results alone linearize, but no linearization ends in the engine's end state.
    EndStateMismatch {
        end: Box<ModelState>,
        states_explored: u64,
    },
    Unknown {
        states_explored: u64,
    },
}

impl Verdict {
    pub fn states_explored(&self) -> u64 {
        match *self {
            Verdict::Linearizable {
                states_explored, ..
            }
            | Verdict::Violation {
                states_explored, ..
            }
            | Verdict::EndStateMismatch {
                states_explored, ..
            }
            | Verdict::Unknown { states_explored } => states_explored,
        }
    }
}

/// A call the search could not place at its deepest point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub event: Event,
    pub model_expected: Outcome,
}

/// The ways one call may be placed at one point: each the outcome the model gives and the
/// state after it.
type Options = Vec<(Outcome, ModelState)>;

struct Search<'a> {
    /// The calls, by invocation step.
    events: Vec<&'a Event>,
    placements: Vec<Placement>,
    memo: Memo,
    explored: u64,
    states_max: u64,
    deepest: usize,
    stuck: Vec<Stuck>,
    end_matches: &'a dyn Fn(&ModelState) -> bool,
    results_only_end: Option<ModelState>,
    /// The order of `results_only_end`'s linearization (indices into `events`).
    results_only_order: Vec<(usize, u8)>,
    bound_hit: bool,
    /// The calls placed so far on the current path, in order: index into `events`, and which
    /// of its [`options`] was taken.
    path: Vec<(usize, u8)>,
    /// The path at the deepest point where some candidate disagreed.
    deepest_path: Vec<(usize, u8)>,
}

/// One point of the depth-first search: the placements still to try from it, and the calls
/// that disagreed there (index into `events`, and what the model returned instead), made
/// into [`Stuck`]s only if this point becomes the deepest.
struct Frame {
    tries: Vec<(usize, u8, ModelState)>,
    stuck: Vec<(usize, Outcome)>,
}

/// The calls of `0..len` not yet placed, in order: a word of `done` at a time, so the
/// placed calls at the front of a long history cost a word per 64.
fn pending(done: &[u64], len: usize) -> impl Iterator<Item = usize> + '_ {
    done.iter().enumerate().flat_map(move |(word, &bits)| {
        let mut open = !bits;
        std::iter::from_fn(move || {
            (open != 0).then(|| {
                let bit = open.trailing_zeros() as usize;
                open &= open - 1;
                word * 64 + bit
            })
        })
        .take_while(move |&i| i < len)
    })
}

impl<'a> Search<'a> {
    fn new(
        events: Vec<&'a Event>,
        placements: Vec<Placement>,
        end_matches: &'a dyn Fn(&ModelState) -> bool,
        states_max: u64,
    ) -> Search<'a> {
        Search {
            events,
            placements,
            memo: Memo::default(),
            explored: 0,
            states_max,
            deepest: 0,
            stuck: Vec::new(),
            end_matches,
            results_only_end: None,
            results_only_order: Vec::new(),
            bound_hit: false,
            path: Vec::new(),
            deepest_path: Vec::new(),
        }
    }

    /// Depth-first from `initial`, with an explicit stack (histories of a thousand calls
    /// would overflow a thread's stack): the end state of a linearization that also matches
    /// the engine's end, if one is found. `path` then holds its order.
    fn run(&mut self, initial: &ModelState) -> Option<ModelState> {
        let mut done = vec![0u64; self.events.len().div_ceil(64).max(1)];
        if self.events.is_empty() {
            return self.at_end(initial);
        }
        self.explored += 1;
        let mut stack = vec![self.expand(initial, &done)];
        while let Some(frame) = stack.last_mut() {
            let Some((i, choice, next)) = frame.tries.pop() else {
                let frame = stack.pop().expect("non-empty");
                self.note_stuck(frame.stuck);
                if let Some((i, _)) = (!stack.is_empty()).then(|| self.path.pop()).flatten() {
                    done[i / 64] &= !(1 << (i % 64));
                }
                continue;
            };
            done[i / 64] |= 1 << (i % 64);
            if !self.memo.insert(fingerprint(&done, &next)) {
                done[i / 64] &= !(1 << (i % 64));
                continue;
            }
            self.path.push((i, choice));
            if self.path.len() == self.events.len() {
                if let Some(end) = self.at_end(&next) {
                    return Some(end);
                }
                self.path.pop();
                done[i / 64] &= !(1 << (i % 64));
                continue;
            }
            if self.explored >= self.states_max {
                self.bound_hit = true;
                return None;
            }
            self.explored += 1;
            let frame = self.expand(&next, &done);
            stack.push(frame);
        }
        None
    }

    /// The ways to go on from `state`: every call that may come next with each of its
    /// placements the engine's result agrees with (the others are what the search got stuck
    /// on). A call that changes nothing and returns what the engine returned is placed alone:
    /// any linearization placing it later can move it here (every call placed in between is
    /// still pending now, so returned after it was invoked, and sees the same state).
    fn expand(&self, state: &ModelState, done: &[u64]) -> Frame {
        let pending = self.candidates(done);
        // The first call (by invocation) that may be placed alone. Only a harmless call can
        // be, so the model is stepped for those first: when one is placed alone, the other
        // calls' steps are never needed.
        let mut stepped: Vec<Option<Options>> = vec![None; pending.len()];
        for (slot, &i) in stepped.iter_mut().zip(&pending) {
            if !self.harmless(i) {
                continue;
            }
            let mut options = options(self.placements[i], state, self.events[i]);
            if self.agrees_alone(i, &options) {
                let (_, next) = options.swap_remove(0);
                return Frame {
                    tries: vec![(i, 0, next)],
                    stuck: Vec::new(),
                };
            }
            *slot = Some(options);
        }
        let mut candidates: Vec<(usize, Options)> = pending
            .into_iter()
            .zip(stepped)
            .map(|(i, stepped)| {
                let stepped =
                    stepped.unwrap_or_else(|| options(self.placements[i], state, self.events[i]));
                (i, stepped)
            })
            .collect();
        let mut tries = Vec::new();
        let mut stuck = Vec::new();
        // Earliest return first (see the module's notes): tried from the end, so reversed.
        candidates.sort_by_key(|(i, _)| self.events[*i].returned);
        for (i, options) in candidates {
            let event = self.events[i];
            for (choice, (expected, next)) in options.into_iter().enumerate() {
                if expected == event.outcome {
                    let choice = u8::try_from(choice).expect("at most two options");
                    tries.push((i, choice, next));
                } else {
                    stuck.push((i, expected));
                }
            }
        }
        tries.reverse();
        Frame { tries, stuck }
    }

    /// A point every way on from failed: the deepest such point with a disagreeing call is
    /// what a violation reports.
    fn note_stuck(&mut self, stuck: Vec<(usize, Outcome)>) {
        if self.path.len() >= self.deepest && !stuck.is_empty() {
            self.deepest = self.path.len();
            self.stuck = stuck
                .into_iter()
                .map(|(i, model_expected)| Stuck {
                    event: self.events[i].clone(),
                    model_expected,
                })
                .collect();
            self.deepest_path = self.path.clone();
        }
    }

    /// Every call is placed: a linearization if the end matches; otherwise remember the first
    /// order that explained every result, for an end-state mismatch.
    fn at_end(&mut self, state: &ModelState) -> Option<ModelState> {
        if (self.end_matches)(state) {
            return Some(state.clone());
        }
        if self.results_only_end.is_none() {
            self.results_only_end = Some(state.clone());
            self.results_only_order = self.path.clone();
        }
        None
    }

    /// The calls that may come next (invoked before every pending call returned).
    fn candidates(&self, done: &[u64]) -> Vec<usize> {
        // Events are sorted by invocation: past the earliest pending return, nothing can
        // come next, and nothing returns earlier.
        let mut horizon = u64::MAX;
        let mut next = Vec::new();
        for i in pending(done, self.events.len()) {
            if self.events[i].invoked > horizon {
                break;
            }
            horizon = horizon.min(self.events[i].returned);
            next.push(i);
        }
        // A call taken before a later one lowered the horizon below its invocation.
        next.retain(|&i| self.events[i].invoked <= horizon);
        next
    }

    /// Whether call `i` changes nothing wherever it is placed: an error the model returns
    /// (errors leave the state unchanged, by the model's contract), a call the model says
    /// never changes the state ([`crate::model::never_changes_state`]), and a no-op. Not a
    /// call in doubt: later, its effect may be what explains the history.
    fn harmless(&self, i: usize) -> bool {
        let event = self.events[i];
        match self.placements[i] {
            Placement::NoOp => true,
            Placement::Model => {
                !event.outcome.is_ok() || crate::model::never_changes_state(&event.call)
            }
            Placement::InDoubt | Placement::ForcedTerm => false,
        }
    }

    /// Whether harmless call `i`, placed now with `options`, returns what the engine returned:
    /// then it is placed alone.
    fn agrees_alone(&self, i: usize, options: &Options) -> bool {
        matches!(options.as_slice(), [(expected, _)] if *expected == self.events[i].outcome)
    }
}

/// The ways the search may place `event` after `state`: each the outcome it would return and
/// the state after it.
fn options(placement: Placement, state: &ModelState, event: &Event) -> Options {
    let modelled = || step(state, event.thread, &event.call);
    let unchanged = || (event.outcome.clone(), state.clone());
    match placement {
        Placement::Model => vec![modelled()],
        Placement::NoOp => vec![unchanged()],
        // An I/O error's effect is unknown (a commit whose log sync failed may be durable or
        // not): either nothing happened, or what the model would do did.
        Placement::InDoubt => {
            let (model_outcome, next) = modelled();
            let mut options = vec![unchanged()];
            if model_outcome.is_ok() {
                options.push((event.outcome.clone(), next));
            }
            options
        }
        Placement::ForcedTerm => vec![(event.outcome.clone(), forced_term(state))],
    }
}

/// A verdict and the order behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linearization {
    pub verdict: Verdict,
    /// `Linearizable`: every call, in the order found. `EndStateMismatch`: every call, in the
    /// first order that explained every result. `Violation`: the deepest prefix the search
    /// placed (`linearized_prefix` calls) before every candidate disagreed. `Unknown`: empty.
    pub order: Vec<Event>,
    /// The model state after each call of `order`, as the search placed it (a call whose I/O
    /// error left its effect in doubt may have had it or not).
    pub states: Vec<ModelState>,
}

/// Checks `events` (any order) from `initial`; `end_matches` says whether a final model state
/// agrees with the engine's observed end state.
pub fn check(
    events: &[Event],
    initial: &ModelState,
    end_matches: &dyn Fn(&ModelState) -> bool,
    states_max: u64,
) -> Verdict {
    linearize(events, initial, end_matches, states_max).verdict
}

/// How the search may place one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// As the model says.
    Model,
    /// As a call with no effect (it returned an error the model cannot place).
    NoOp,
    /// Either with no effect or with the model's effect (an injected I/O error).
    InDoubt,
    /// A term that succeeded dirty on a fail-stop instance: the instance is gone.
    ForcedTerm,
}

/// The model after a term that could not be refused (fail-stop instance).
fn forced_term(state: &ModelState) -> ModelState {
    let mut next = state.clone();
    next.phase = crate::model::ModelPhase::Terminated;
    for session in next.sessions.values_mut() {
        session.alive = false;
        session.transaction = None;
    }
    for cursor in next.cursors.values_mut() {
        cursor.alive = false;
    }
    next
}

/// [`check`], also returning the order (see [`Linearization::order`]).
pub fn linearize(
    events: &[Event],
    initial: &ModelState,
    end_matches: &dyn Fn(&ModelState) -> bool,
    states_max: u64,
) -> Linearization {
    linearize_with(
        events,
        initial,
        end_matches,
        states_max,
        DiskFaults::default(),
    )
}

/// What the harness saw of the disk's faults in a run: whether it injected any
/// (`explore --faults`), and the step at which the disk first failed an operation the engine
/// asked for ([`crate::history::History::first_disk_failure_at`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskFaults {
    pub io_faults: bool,
    pub first_failure_at: Option<u64>,
}

impl DiskFaults {
    pub fn of(history: &crate::history::History) -> DiskFaults {
        DiskFaults {
            io_faults: history.io_faults,
            first_failure_at: history.first_disk_failure_at,
        }
    }

    /// A fail-stop refusal (`InstanceUnavailable`) is explained only by a disk failure the
    /// harness itself saw before the call returned; otherwise the model decides (and never
    /// returns it).
    fn explains_unavailable(self, event: &Event) -> bool {
        self.io_faults
            && self
                .first_failure_at
                .is_some_and(|step| step <= event.returned)
    }
}

/// [`linearize`] for a run with injected disk faults: calls that failed with `DiskIO` or
/// `LogWriteFail` are in doubt, calls refused with `InstanceUnavailable` after the disk failed
/// had no effect, and a dirty term of a fail-stop instance terminates it whatever the model
/// says. The history is first checked object by object (see the module's
/// "P-compositionality"); when that finds no linearization, it is checked whole, so every
/// verdict but a linearization comes from the whole history.
pub fn linearize_with(
    events: &[Event],
    initial: &ModelState,
    end_matches: &dyn Fn(&ModelState) -> bool,
    states_max: u64,
    faults: DiskFaults,
) -> Linearization {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| e.invoked);
    let placements = placements(&sorted, faults);
    let parts = partitions(&sorted, &placements);
    let mut split_explored = 0;
    if parts.len() > 1 {
        match linearize_parts(
            &sorted,
            &placements,
            &parts,
            initial,
            end_matches,
            states_max,
        ) {
            Ok(found) => return found,
            Err(explored) => split_explored = explored,
        }
    }
    let mut search = Search::new(sorted, placements, end_matches, states_max);
    let found = search.run(initial);
    search.explored += split_explored;
    let (verdict, order) = verdict_of(&mut search, found);
    let states = replay_states(&search.events, &search.placements, initial, &order)
        .map(|(states, _)| states)
        .unwrap_or_default();
    let order = order
        .into_iter()
        .map(|(i, _)| search.events[i].clone())
        .collect();
    Linearization {
        verdict,
        order,
        states,
    }
}

/// Checks each part of the history on its own, then merges the orders found by their
/// linearization points and replays the merge on the whole model: a linearization of the
/// whole history (or no verdict, when a part alone reached the bound), or, with the states
/// the parts explored, none found this way.
fn linearize_parts(
    sorted: &[&Event],
    placements: &[Placement],
    parts: &[Vec<usize>],
    initial: &ModelState,
    end_matches: &dyn Fn(&ModelState) -> bool,
    states_max: u64,
) -> Result<Linearization, u64> {
    let mut explored = 0;
    let mut orders = Vec::with_capacity(parts.len());
    for part in parts {
        let events = part.iter().map(|&i| sorted[i]).collect();
        let part_placements = part.iter().map(|&i| placements[i]).collect();
        // Only the instance's part decides the end state; the others' objects are not part
        // of what the engine's end is compared with, and the replay below checks the whole.
        let any_end = |_: &ModelState| true;
        let ends: &dyn Fn(&ModelState) -> bool = if orders.is_empty() {
            end_matches
        } else {
            &any_end
        };
        let budget = states_max.saturating_sub(explored).max(1);
        let mut search = Search::new(events, part_placements, ends, budget);
        let found = search.run(initial);
        explored += search.explored;
        if search.bound_hit {
            // The whole history would need more: no verdict either way.
            return Ok(Linearization {
                verdict: Verdict::Unknown {
                    states_explored: explored,
                },
                order: Vec::new(),
                states: Vec::new(),
            });
        }
        found.ok_or(explored)?;
        orders.push(
            search
                .path
                .iter()
                .map(|&(i, choice)| (part[i], choice))
                .collect::<Vec<_>>(),
        );
    }
    let order = merge_by_points(sorted, &orders);
    let (states, end) = replay_states(sorted, placements, initial, &order).ok_or(explored)?;
    if !end_matches(&end) {
        return Err(explored);
    }
    Ok(Linearization {
        verdict: Verdict::Linearizable {
            end: Box::new(end),
            states_explored: explored,
        },
        order: order.iter().map(|&(i, _)| sorted[i].clone()).collect(),
        states,
    })
}

/// One order of every call from the parts' orders: each call gets the earliest point of its
/// interval not before its predecessor's in its part (the latest invocation so far), and
/// the calls are merged by point. A call that returned before another was invoked has the
/// earlier point, so the merge keeps real time, and each part's order.
fn merge_by_points(sorted: &[&Event], orders: &[Vec<(usize, u8)>]) -> Vec<(usize, u8)> {
    let mut pointed: Vec<(u64, usize, usize, (usize, u8))> = Vec::new();
    for (part, order) in orders.iter().enumerate() {
        let mut point = 0;
        for (rank, &(i, choice)) in order.iter().enumerate() {
            point = point.max(sorted[i].invoked);
            pointed.push((point, part, rank, (i, choice)));
        }
    }
    pointed.sort_unstable();
    pointed
        .into_iter()
        .map(|(_, _, _, placed)| placed)
        .collect()
}

/// The intervals of the terms that got past their decision and so may have refused others
/// on their way: one that succeeded, or (with disk faults) one whose shutdown met an I/O
/// error. A refused term (TooManyActiveUsers) decides before it changes the gate, so it
/// refuses no one.
fn deciding_terms(sorted: &[&Event], io_faults: bool) -> Vec<(u64, u64)> {
    sorted
        .iter()
        .filter(|e| {
            matches!(e.call, Call::Term { .. })
                && (e.outcome.is_ok() || (io_faults && e.outcome.is_io_error()))
        })
        .map(|e| (e.invoked, e.returned))
        .collect()
}

/// How the search may place each call of `sorted` (see [`Placement`]).
fn placements(sorted: &[&Event], faults: DiskFaults) -> Vec<Placement> {
    let io_faults = faults.io_faults;
    let terms = deciding_terms(sorted, io_faults);
    let main_term = |e: &Event| {
        matches!(
            e.call,
            Call::Term {
                instance: InstanceRef::Main,
                ..
            }
        )
    };
    sorted
        .iter()
        .map(|e| {
            let overlaps_term = terms.iter().any(|&(i, r)| i < e.returned && e.invoked < r);
            // A stop or term with unknown grbits is refused on a handle that still names the
            // instance, as it does while a racing term is finishing: no effect either way.
            let bad_grbit = matches!(e.call, Call::StopService { .. } | Call::Term { .. })
                && e.outcome.is_err_named(JetError::InvalidGrbit);
            let unavailable = faults.explains_unavailable(e)
                && e.outcome.is_err_named(JetError::InstanceUnavailable);
            if (e.outcome.is_err_named(JetError::TermInProgress) || bad_grbit) && overlaps_term {
                Placement::NoOp
            } else if unavailable && matches!(e.call, Call::StopService { .. }) {
                // A stop whose flush found the instance failed has closed the gate already.
                Placement::InDoubt
            } else if unavailable {
                Placement::NoOp
            } else if io_faults && main_term(e) && e.outcome.is_io_error() {
                // Term finishes terminating before it reports its shutdown's I/O error.
                Placement::ForcedTerm
            } else if io_faults && e.outcome.is_io_error() {
                Placement::InDoubt
            } else if io_faults
                && matches!(e.call, Call::Term { instance: InstanceRef::Main, grbit } if grbit & 0x8 == 0)
                && e.outcome == (Outcome::Terminated { dirty: true })
            {
                Placement::ForcedTerm
            } else {
                Placement::Model
            }
        })
        .collect()
}

/// The verdict of a finished search, and the order behind it (see [`Linearization::order`]).
fn verdict_of(search: &mut Search, found: Option<ModelState>) -> (Verdict, Vec<(usize, u8)>) {
    let states_explored = search.explored;
    match (found, search.results_only_end.take(), search.bound_hit) {
        (Some(end), _, _) => (
            Verdict::Linearizable {
                end: Box::new(end),
                states_explored,
            },
            std::mem::take(&mut search.path),
        ),
        // A mismatch is a verdict only when every order was tried: a search cut off by the
        // bound after the first results-only order proves nothing (PCT seed 2002837 was
        // reported as a failure-atomicity violation that way; it linearizes at 151,803
        // states).
        (None, Some(end), false) => (
            Verdict::EndStateMismatch {
                end: Box::new(end),
                states_explored,
            },
            std::mem::take(&mut search.results_only_order),
        ),
        (None, _, true) => (Verdict::Unknown { states_explored }, Vec::new()),
        (None, None, false) => (
            Verdict::Violation {
                states_explored,
                linearized_prefix: search.deepest,
                stuck: std::mem::take(&mut search.stuck),
            },
            std::mem::take(&mut search.deepest_path),
        ),
    }
}

/// The model state after each call of `order` (indices into `events`, with the option
/// taken), replayed from `initial`, and the end state; `None` if some call then returns other
/// than the engine returned.
fn replay_states(
    events: &[&Event],
    placements: &[Placement],
    initial: &ModelState,
    order: &[(usize, u8)],
) -> Option<(Vec<ModelState>, ModelState)> {
    let mut states = Vec::with_capacity(order.len());
    let mut state = initial.clone();
    for &(i, choice) in order {
        let mut options = options(placements[i], &state, events[i]);
        let (outcome, next) = options.swap_remove(usize::from(choice));
        if outcome != events[i].outcome {
            return None;
        }
        states.push(next.clone());
        state = next;
    }
    Some((states, state))
}

/// The independent objects of the model a call may touch (see the module's "P-compositionality").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Object {
    /// Everything of the instance under test but its system parameters: the gate, the
    /// sessions, the database, the commit log.
    Instance,
    /// The instance under test's system parameters, while no call can terminate it.
    Parameters,
    /// The instance created in setup and never initialized.
    Uninitialized,
    /// Nothing: the call's result follows from its arguments alone (a nil or foreign
    /// session handle, a nil or terminated instance handle, parameters of the
    /// uninitialized instance). Each such call is an object of its own.
    Constant,
}

/// Which object `event`, placed as `placement`, touches. `can_terminate`: some call of the
/// history may terminate the instance under test (parameter calls then read its phase).
fn object_of(event: &Event, placement: Placement, can_terminate: bool) -> Object {
    let settled = matches!(placement, Placement::Model | Placement::NoOp);
    match &event.call {
        Call::StopService { instance, .. } | Call::Term { instance, .. } => match instance {
            InstanceRef::Main => Object::Instance,
            InstanceRef::Uninitialized => Object::Uninitialized,
            InstanceRef::Nil | InstanceRef::Terminated if settled => Object::Constant,
            InstanceRef::Nil | InstanceRef::Terminated => Object::Instance,
        },
        Call::GetSystemParameter { instance, .. } | Call::SetSystemParameter { instance, .. } => {
            match instance {
                InstanceRef::Main if can_terminate || !settled => Object::Instance,
                InstanceRef::Main => Object::Parameters,
                _ if settled => Object::Constant,
                _ => Object::Instance,
            }
        }
        Call::BeginSession { .. } => Object::Instance,
        call => match call.session() {
            Some(Ref::Nil | Ref::Foreign | Ref::Peer(_)) if settled => Object::Constant,
            _ => Object::Instance,
        },
    }
}

/// Whether some call of the history may terminate the instance under test: a term of it
/// that succeeded or whose effect is in doubt (one refused by the model's own rules changes
/// nothing).
fn can_terminate(sorted: &[&Event], placements: &[Placement]) -> bool {
    sorted.iter().zip(placements).any(|(e, &placement)| {
        matches!(
            e.call,
            Call::Term {
                instance: InstanceRef::Main,
                ..
            }
        ) && (e.outcome.is_ok() || !matches!(placement, Placement::Model | Placement::NoOp))
    })
}

/// The history split by object: indices into `sorted`, one part per object (one per
/// constant call), the instance's part first.
fn partitions(sorted: &[&Event], placements: &[Placement]) -> Vec<Vec<usize>> {
    let can_terminate = can_terminate(sorted, placements);
    let mut parts: BTreeMap<(Object, usize), Vec<usize>> = BTreeMap::new();
    for (i, (event, &placement)) in sorted.iter().zip(placements).enumerate() {
        let object = object_of(event, placement, can_terminate);
        let key = match object {
            Object::Constant => (object, i),
            _ => (object, 0),
        };
        parts.entry(key).or_default().push(i);
    }
    parts.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Ref;

    fn event(thread: usize, call: Call, invoked: u64, returned: u64, outcome: Outcome) -> Event {
        Event {
            thread,
            call,
            invoked,
            returned,
            outcome,
        }
    }

    fn any_end(_: &ModelState) -> bool {
        true
    }

    #[test]
    fn overlapping_calls_may_take_either_order() {
        // Thread 1's begin_session overlaps thread 0's stop; it succeeded, so it must be placed
        // before the stop, which real time allows.
        let events = vec![
            event(0, stop(0), 0, 3, Outcome::Ok),
            event(1, Call::BeginSession { bind: 0 }, 1, 2, Outcome::Ok),
        ];
        let verdict = check(&events, &ModelState::initial(&[]), &any_end, 1000);
        assert!(
            matches!(verdict, Verdict::Linearizable { .. }),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_success_after_the_stop_in_real_time_is_a_violation() {
        let events = vec![
            event(0, stop(0), 0, 1, Outcome::Ok),
            event(1, Call::BeginSession { bind: 0 }, 2, 3, Outcome::Ok),
        ];
        let Verdict::Violation {
            stuck,
            linearized_prefix,
            ..
        } = check(&events, &ModelState::initial(&[]), &any_end, 1000)
        else {
            panic!("not caught");
        };
        assert_eq!(linearized_prefix, 1);
        assert_eq!(
            stuck[0].model_expected,
            Outcome::err(jetsim_engine::JetError::ClientRequestToStopJetService)
        );
    }

    #[test]
    fn the_order_found_is_returned() {
        // Thread 1's begin_session overlaps the stop and succeeded: it must come first.
        let stop = event(0, stop(0), 0, 3, Outcome::Ok);
        let begin = event(1, Call::BeginSession { bind: 0 }, 1, 2, Outcome::Ok);
        let found = linearize(
            &[stop.clone(), begin.clone()],
            &ModelState::initial(&[]),
            &any_end,
            1000,
        );
        assert!(matches!(found.verdict, Verdict::Linearizable { .. }));
        assert_eq!(found.order, vec![begin, stop.clone()]);

        // Without a linearization, the order is the deepest prefix placed: the stop alone.
        let late = event(1, Call::BeginSession { bind: 0 }, 4, 5, Outcome::Ok);
        let stuck = linearize(
            &[stop.clone(), late],
            &ModelState::initial(&[]),
            &any_end,
            1000,
        );
        assert!(matches!(stuck.verdict, Verdict::Violation { .. }));
        assert_eq!(stuck.order, vec![stop]);
    }

    #[test]
    fn the_end_state_must_match() {
        let events = vec![event(0, Call::BeginSession { bind: 0 }, 0, 1, Outcome::Ok)];
        let no_sessions = |s: &ModelState| s.sessions.is_empty();
        assert!(matches!(
            check(&events, &ModelState::initial(&[]), &no_sessions, 1000),
            Verdict::EndStateMismatch { .. }
        ));
    }

    #[test]
    fn a_mismatch_found_before_the_bound_cut_the_search_is_no_verdict() {
        // Four overlapping begin_sessions: the first order explains every result at once;
        // the end state never matches, and the bound stops the search among the other 23
        // orders. That is "unknown", not a mismatch.
        let events = overlapping_begins(4);
        let never = |_: &ModelState| false;
        assert!(matches!(
            check(&events, &ModelState::initial(&[]), &never, 8),
            Verdict::Unknown { .. }
        ));
        // With room for every order, the mismatch is a verdict.
        assert!(matches!(
            check(&events, &ModelState::initial(&[]), &never, 10_000),
            Verdict::EndStateMismatch { .. }
        ));
    }

    /// `threads` sessions begun at once, one a thread.
    fn overlapping_begins(threads: usize) -> Vec<Event> {
        (0..threads)
            .map(|t| event(t, Call::BeginSession { bind: 0 }, 0, 100, Outcome::Ok))
            .collect()
    }

    #[test]
    fn the_bound_gives_no_verdict() {
        // Linearizable in 7 states; 3 are not enough to find out.
        let events = overlapping_begins(6);
        let initial = ModelState::initial(&[]);
        assert!(matches!(
            check(&events, &initial, &any_end, 3),
            Verdict::Unknown { .. }
        ));
        assert!(matches!(
            check(&events, &initial, &any_end, 7),
            Verdict::Linearizable { .. }
        ));
    }

    fn with_parameters() -> ModelState {
        let mut state = ModelState::initial(&[]);
        state.parameters = Some(crate::model::ModelParameters {
            checkpoint_depth_max_bytes: 4096,
            cache_size_pages: 16,
            version_store_max_versions: 1 << 16,
            online_defrag: true,
        });
        state
    }

    fn stop(grbit: u32) -> Call {
        Call::StopService {
            instance: crate::workload::InstanceRef::Main,
            grbit,
        }
    }

    fn cache(value: Option<u64>) -> Call {
        let (instance, parameter) = (
            crate::workload::InstanceRef::Main,
            crate::workload::Parameter::CacheSizePages,
        );
        match value {
            Some(value) => Call::SetSystemParameter {
                instance,
                parameter,
                value,
            },
            None => Call::GetSystemParameter {
                instance,
                parameter,
            },
        }
    }

    fn split(events: &[Event]) -> Vec<Vec<usize>> {
        let sorted: Vec<&Event> = events.iter().collect();
        let placements = placements(&sorted, DiskFaults::default());
        partitions(&sorted, &placements)
    }

    #[test]
    fn the_history_splits_only_into_objects_that_commute() {
        let uninitialized = Call::Term {
            instance: crate::workload::InstanceRef::Uninitialized,
            grbit: 0,
        };
        let mut events = vec![
            event(0, stop(0), 0, 1, Outcome::Ok),
            event(1, cache(Some(20)), 2, 3, Outcome::Ok),
            event(1, uninitialized, 4, 5, Outcome::Terminated { dirty: false }),
            event(
                2,
                Call::GetSessionInfo { ses: Ref::Nil },
                6,
                7,
                Outcome::err(jetsim_engine::JetError::InvalidSesid),
            ),
            event(2, Call::BeginSession { bind: 0 }, 8, 9, Outcome::Ok),
        ];
        // Instance (stop, begin), parameters, the uninitialized instance, the nil handle.
        assert_eq!(split(&events), vec![vec![0, 4], vec![1], vec![2], vec![3]]);
        // A term that may succeed makes the parameters read the instance's phase.
        events.push(event(
            0,
            Call::Term {
                instance: crate::workload::InstanceRef::Main,
                grbit: 0,
            },
            10,
            11,
            Outcome::Terminated { dirty: false },
        ));
        assert_eq!(split(&events), vec![vec![0, 1, 4, 5], vec![2], vec![3]]);
    }

    /// A full stop, and beside it the cache size set to 20 and then read as `read`.
    fn stop_beside_parameters(read: u64) -> Vec<Event> {
        vec![
            event(0, stop(0), 0, 10, Outcome::Ok),
            event(1, cache(Some(20)), 2, 4, Outcome::Ok),
            event(1, cache(None), 5, 6, Outcome::Parameter(read)),
        ]
    }

    #[test]
    fn the_parts_merge_into_one_order_in_real_time() {
        // The parameter set overlaps the stop; the read after both sees it.
        let mut events = stop_beside_parameters(20);
        events.push(event(
            2,
            Call::BeginSession { bind: 0 },
            11,
            12,
            Outcome::err(jetsim_engine::JetError::ClientRequestToStopJetService),
        ));
        let found = linearize(&events, &with_parameters(), &any_end, 1000);
        assert!(matches!(found.verdict, Verdict::Linearizable { .. }));
        let position = |call: &Call| found.order.iter().position(|e| e.call == *call).unwrap();
        assert!(position(&cache(Some(20))) < position(&cache(None)));
        assert!(position(&stop(0)) < position(&Call::BeginSession { bind: 0 }));
        assert_eq!(found.states.len(), events.len());
        assert_eq!(
            found
                .states
                .last()
                .unwrap()
                .parameters
                .unwrap()
                .cache_size_pages,
            20
        );
    }

    #[test]
    fn a_wrong_result_in_a_part_of_its_own_is_a_violation() {
        let events = stop_beside_parameters(16);
        let Verdict::Violation { stuck, .. } = check(&events, &with_parameters(), &any_end, 1000)
        else {
            panic!("not caught");
        };
        assert_eq!(stuck[0].event.call, cache(None));
        assert_eq!(stuck[0].model_expected, Outcome::Parameter(20));
    }

    #[test]
    fn a_call_in_doubt_is_not_placed_before_its_effect_can_be_needed() {
        // t1's begin in t0's session failed on the disk while t0's session was being made:
        // placed first, it fails and does nothing; placed after, it began the transaction,
        // which t0 then sees. Only the second explains t0's read.
        let events = vec![
            event(0, Call::BeginSession { bind: 0 }, 0, 5, Outcome::Ok),
            event(
                1,
                Call::BeginTransaction {
                    ses: Ref::PeerCreated { thread: 0, n: 0 },
                },
                1,
                10,
                Outcome::err(jetsim_engine::JetError::DiskIO),
            ),
            event(
                0,
                Call::GetSessionInfo { ses: Ref::Var(0) },
                11,
                12,
                Outcome::SessionInfo {
                    level: 1,
                    context: None,
                    open_tables: 0,
                    open_databases: 0,
                },
            ),
        ];
        let faults = DiskFaults {
            io_faults: true,
            first_failure_at: Some(3),
        };
        let found = linearize_with(&events, &ModelState::initial(&[]), &any_end, 1000, faults);
        assert!(
            matches!(found.verdict, Verdict::Linearizable { .. }),
            "{:?}",
            found.verdict
        );
    }
}
