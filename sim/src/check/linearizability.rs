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

use crate::history::Event;
use crate::model::{step, ModelState, Outcome};
use crate::workload::Call;
use std::collections::HashSet;
use std::hash::BuildHasherDefault;

/// The memo holds 64-bit fingerprints of (calls done, model state) rather than the states
/// themselves: cloning states into the set was a quarter of a run's checking time. A
/// fingerprint collision (about 1 in 10^10 at the search bound) could only prune a path and so
/// report a violation that is not one, never hide one; the replay of such a seed would show
/// a linearization by hand. Hashing is SipHash with fixed keys: deterministic.
type Memo = HashSet<u64, BuildHasherDefault<IdentityHasher>>;

/// The memo's keys are already hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
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

fn fingerprint(done: &[u64], state: &ModelState) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    done.hash(&mut hasher);
    state.hash(&mut hasher);
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

/// A call the search could not place at its deepest point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub event: Event,
    pub model_expected: Outcome,
}

struct Search<'a> {
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
    explored_at_first_end: u64,
    bound_hit: bool,
    /// The calls placed so far on the current path, in order: index into `events`, and which
    /// of its [`options`] was taken.
    path: Vec<(usize, u8)>,
    /// The path at the deepest point where some candidate disagreed.
    deepest_path: Vec<(usize, u8)>,
}

/// States explored after the first results-only linearization, looking for one that also
/// matches the end state.
const END_SEARCH_STATES_MAX: u64 = u64::MAX / 2;

fn word(done: &[u64], i: usize) -> bool {
    done[i / 64] & (1 << (i % 64)) != 0
}

impl Search<'_> {
    fn run(&mut self, state: &ModelState, done: &mut Vec<u64>, count: usize) -> Option<ModelState> {
        if count == self.events.len() {
            if (self.end_matches)(state) {
                return Some(state.clone());
            }
            if self.results_only_end.is_none() {
                self.results_only_end = Some(state.clone());
                self.results_only_order = self.path.clone();
                self.explored_at_first_end = self.explored;
            }
            return None;
        }
        // Once some order explains every result, only a little more search is spent looking for
        // one that also reaches the observed end state: a mismatch is then reported quickly.
        let budget = match self.results_only_end {
            Some(_) => self
                .states_max
                .min(self.explored_at_first_end + END_SEARCH_STATES_MAX),
            None => self.states_max,
        };
        if self.explored >= budget {
            self.bound_hit = true;
            return None;
        }
        self.explored += 1;
        let horizon = (0..self.events.len())
            .filter(|&i| !word(done, i))
            .map(|i| self.events[i].returned)
            .min()
            .expect("some call pending");
        let mut stuck_here = Vec::new();
        for i in 0..self.events.len() {
            if word(done, i) || self.events[i].invoked > horizon {
                continue;
            }
            let event = self.events[i];
            for (choice, (expected, next)) in options(self.placements[i], state, event)
                .into_iter()
                .enumerate()
            {
                if expected != event.outcome {
                    stuck_here.push(Stuck {
                        event: event.clone(),
                        model_expected: expected,
                    });
                    continue;
                }
                done[i / 64] |= 1 << (i % 64);
                let fresh = self.memo.insert(fingerprint(done, &next));
                if fresh {
                    self.path
                        .push((i, u8::try_from(choice).expect("at most two options")));
                    if let Some(end) = self.run(&next, done, count + 1) {
                        // `path` now holds the whole linearization: leave it for the caller.
                        return Some(end);
                    }
                    self.path.pop();
                }
                done[i / 64] &= !(1 << (i % 64));
            }
        }
        if count >= self.deepest && !stuck_here.is_empty() {
            self.deepest = count;
            self.stuck = stuck_here;
            self.deepest_path = self.path.clone();
        }
        None
    }
}

/// The ways the search may place `event` after `state`: each the outcome it would return and
/// the state after it.
fn options(placement: Placement, state: &ModelState, event: &Event) -> Vec<(Outcome, ModelState)> {
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
/// says.
pub fn linearize_with(
    events: &[Event],
    initial: &ModelState,
    end_matches: &dyn Fn(&ModelState) -> bool,
    states_max: u64,
    faults: DiskFaults,
) -> Linearization {
    use jetsim_engine::JetError;
    let io_faults = faults.io_faults;
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| e.invoked);
    let terms: Vec<(u64, u64)> = sorted
        .iter()
        // Only a term that got past its decision may have refused others on its way: one
        // that succeeded, or (with disk faults) one whose shutdown met an I/O error. A
        // refused term (TooManyActiveUsers) decides before it changes the gate, so it
        // refuses no one.
        .filter(|e| {
            matches!(e.call, Call::Term { .. })
                && (e.outcome.is_ok() || (io_faults && (e.outcome.is_io_error())))
        })
        .map(|e| (e.invoked, e.returned))
        .collect();
    let placements = sorted
        .iter()
        .map(|e| {
            let overlaps_term = terms.iter().any(|&(i, r)| i < e.returned && e.invoked < r);
            // A stop or term with unknown grbits is refused on a handle that still names the
            // instance, as it does while a racing term is finishing: no effect either way.
            let bad_grbit = matches!(e.call, Call::StopService { .. } | Call::Term { .. })
                && e.outcome.is_err_named(JetError::InvalidGrbit);
            if (e.outcome.is_err_named(JetError::TermInProgress) || bad_grbit) && overlaps_term {
                Placement::NoOp
            } else if faults.explains_unavailable(e)
                && e.outcome.is_err_named(JetError::InstanceUnavailable)
                && matches!(e.call, Call::StopService { .. })
            {
                // A stop whose flush found the instance failed has closed the gate already.
                Placement::InDoubt
            } else if faults.explains_unavailable(e)
                && e.outcome.is_err_named(JetError::InstanceUnavailable)
            {
                Placement::NoOp
            } else if io_faults
                && matches!(e.call, Call::Term { instance: crate::workload::InstanceRef::Main, .. })
                && (e.outcome.is_io_error())
            {
                // Term finishes terminating before it reports its shutdown's I/O error.
                Placement::ForcedTerm
            } else if io_faults
                && (e.outcome.is_io_error())
            {
                Placement::InDoubt
            } else if io_faults
                && matches!(e.call, Call::Term { instance: crate::workload::InstanceRef::Main, grbit } if grbit & 0x8 == 0)
                && e.outcome == (Outcome::Terminated { dirty: true })
            {
                Placement::ForcedTerm
            } else {
                Placement::Model
            }
        })
        .collect();
    let mut search = Search {
        events: sorted,
        placements,
        memo: Memo::default(),
        explored: 0,
        states_max,
        deepest: 0,
        stuck: Vec::new(),
        end_matches,
        results_only_end: None,
        results_only_order: Vec::new(),
        explored_at_first_end: 0,
        bound_hit: false,
        path: Vec::new(),
        deepest_path: Vec::new(),
    };
    let mut done = vec![0u64; search.events.len().div_ceil(64).max(1)];
    let found = search.run(initial, &mut done, 0);
    let (verdict, order) = match found {
        Some(end) => (
            Verdict::Linearizable {
                end: Box::new(end),
                states_explored: search.explored,
            },
            std::mem::take(&mut search.path),
        ),
        None => match (search.results_only_end, search.bound_hit) {
            // A mismatch is a verdict only when every order was tried: a search cut off by the
            // bound after the first results-only order proves nothing (PCT seed 2002837 was
            // reported as a failure-atomicity violation that way; it linearizes at 151,803
            // states).
            (Some(end), false) => (
                Verdict::EndStateMismatch {
                    end: Box::new(end),
                    states_explored: search.explored,
                },
                std::mem::take(&mut search.results_only_order),
            ),
            (_, true) => (
                Verdict::Unknown {
                    states_explored: search.explored,
                },
                Vec::new(),
            ),
            (None, false) => (
                Verdict::Violation {
                    states_explored: search.explored,
                    linearized_prefix: search.deepest,
                    stuck: search.stuck,
                },
                std::mem::take(&mut search.deepest_path),
            ),
        },
    };
    let mut states = Vec::with_capacity(order.len());
    let mut state = initial.clone();
    for &(i, choice) in &order {
        let event = search.events[i];
        let (_, next) =
            options(search.placements[i], &state, event).swap_remove(usize::from(choice));
        states.push(next.clone());
        state = next;
    }
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
            event(
                0,
                Call::StopService {
                    instance: crate::workload::InstanceRef::Main,
                    grbit: 0,
                },
                0,
                3,
                Outcome::Ok,
            ),
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
            event(
                0,
                Call::StopService {
                    instance: crate::workload::InstanceRef::Main,
                    grbit: 0,
                },
                0,
                1,
                Outcome::Ok,
            ),
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
        let stop = event(
            0,
            Call::StopService {
                instance: crate::workload::InstanceRef::Main,
                grbit: 0,
            },
            0,
            3,
            Outcome::Ok,
        );
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
        let events: Vec<Event> = (0..4)
            .map(|t| event(t, Call::BeginSession { bind: 0 }, 0, 100, Outcome::Ok))
            .collect();
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

    #[test]
    fn the_bound_gives_no_verdict() {
        let events: Vec<Event> = (0..6)
            .map(|t| {
                event(
                    t,
                    Call::GetSessionInfo { ses: Ref::Nil },
                    0,
                    100,
                    Outcome::err(jetsim_engine::JetError::InvalidSesid),
                )
            })
            .collect();
        assert!(matches!(
            check(&events, &ModelState::initial(&[]), &any_end, 3),
            Verdict::Unknown { .. }
        ));
    }
}
