//! The instance's entry gate: which calls are admitted in which lifecycle phase, how many are
//! in flight, and the transitions that wait for them to drain (stop and term).
//!
//! This is the piece ESE gets wrong: ESE sets its stop flag after the preparation steps and
//! never waits for calls that passed their entry check, so a commit can finish after
//! `JetStopServiceInstance` returned. Here the check and the in-flight count are one atomic
//! step, the stop closes the gate *first* and waits until every gated call has left, and
//! only then prepares. The loom models in `jetsim-models` run this file's code exhaustively.
//!
//! Admission takes no lock while the gate is open, as ESE's `INST::ErrAPIEnter` takes none: a
//! call adds itself to one atomic word that also holds the gate's "closed" flags, with a
//! compare and swap that succeeds only on a word whose flag for the call's kind is clear, so
//! a closing and an admission are ordered: a call either counted in before the flag was set,
//! and the closer sees it, or sees the flag and goes to the mutex. (ESE adds first and takes
//! itself out again when it sees the flag; here no count is ever transient, so a drained
//! count is exactly the calls admitted.) Leaving is one subtraction.
//! Only the rare paths take the gate's mutex: a closed gate (refuse, or wait while a stop
//! drains or a term decides), the phase changes, and a leaving call that finds a sleeper to
//! wake. The mutex and the atomic word share one rule: the flags change only under the mutex.

use crate::error::{JetError, JetResult};
use crate::instance::mutations::{Mutant, Mutations};
use crate::runtime::sync::{AtomicU64, Condvar, LockRank, Mutex, MutexGuard};
use crate::runtime::Runtime;

/// Lifecycle phase of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// `create_instance` returned; parameters may be set; nothing else works.
    Created,
    Initializing,
    Running,
    /// A full stop closed the gate and is draining calls or preparing.
    Stopping,
    /// The stop completed: only allowlisted calls are admitted, for ever.
    Stopped,
    Terminating,
    Terminated,
}

impl Phase {
    /// A full stop has begun (the gate is closed to gated calls).
    pub fn stop_requested(self) -> bool {
        matches!(self, Phase::Stopping | Phase::Stopped)
    }
}

/// How a call is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Admission {
    /// Refused with `ClientRequestToStopJetService` once a full stop has begun.
    Gated,
    /// Still works after a stop: rollback, close_table, end_session, close_database,
    /// detach_database, reset_session_context, get_session_info.
    Allowlisted,
    /// Parameter calls: also admitted before init, as ESE allows.
    Configuration,
}

/// Counters the gate keeps; a snapshot is part of the instance status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateStatus {
    pub phase: Phase,
    pub gated_in_flight: u32,
    pub ungated_in_flight: u32,
    /// How many full stops found gated calls in flight and waited for them (a coverage mark).
    pub stops_that_waited: u64,
    /// Gated calls refused because a stop had begun.
    pub refused_after_stop: u64,
}

struct GateState {
    phase: Phase,
    /// A term is deciding whether it can end the instance: calls wait at the gate (neither
    /// admitted nor refused) until it has decided.
    term_deciding: bool,
    stops_that_waited: u64,
    refused_after_stop: u64,
    /// Threads asleep on `Gate::changed` (or about to be: registered before their last look
    /// at the counts). While there are any, the word's [`SLEEPERS`] flag is set and a call
    /// whose leaving empties its count wakes them; most calls leave with nobody waiting, and
    /// a wake-up is a lock and a shared write (and scheduling points for the checkers) every
    /// call would otherwise pay.
    waiters: u32,
    /// The flags this state puts in the admission word ([`Gate::flags_of`]), as last written
    /// there: only holders of the mutex change them.
    flags: u64,
}

/// The admission word: the gated calls in flight (its low bits), the other calls in flight,
/// and the flags. A count never reaches its neighbour ([`IN_FLIGHT_MAX`]).
const GATED_ONE: u64 = 1;
const UNGATED_ONE: u64 = 1 << 24;
const COUNT_MASK: u64 = (1 << 24) - 1;
/// Gated calls may not come in without the mutex: the phase is not `Running`, or a term
/// decides.
const GATED_CLOSED: u64 = 1 << 56;
/// Allowlisted and configuration calls may not come in without the mutex: the phase is
/// neither `Running` nor `Stopped`, or a term decides.
const UNGATED_CLOSED: u64 = 1 << 57;
/// A thread sleeps on `Gate::changed` for the counts to fall.
const SLEEPERS: u64 = 1 << 58;
const FLAGS_MASK: u64 = GATED_CLOSED | UNGATED_CLOSED | SLEEPERS;

/// Calls in flight, from the admission word.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    gated: u32,
    ungated: u32,
}

impl InFlight {
    fn of(word: u64) -> Self {
        InFlight {
            gated: (word & COUNT_MASK) as u32,
            ungated: ((word >> 24) & COUNT_MASK) as u32,
        }
    }
}

impl Admission {
    /// One call of this kind in the admission word.
    fn one(self) -> u64 {
        match self {
            Admission::Gated => GATED_ONE,
            Admission::Allowlisted | Admission::Configuration => UNGATED_ONE,
        }
    }

    /// The flag that sends a call of this kind to the mutex.
    fn closed(self) -> u64 {
        match self {
            Admission::Gated => GATED_CLOSED,
            Admission::Allowlisted | Admission::Configuration => UNGATED_CLOSED,
        }
    }

    /// This kind's count in the admission word.
    fn count(self, word: u64) -> u32 {
        let in_flight = InFlight::of(word);
        match self {
            Admission::Gated => in_flight.gated,
            Admission::Allowlisted | Admission::Configuration => in_flight.ungated,
        }
    }
}

/// What [`Gate::begin_stop`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopEntry {
    /// The gate is now closed and drained: prepare, then call [`Gate::finish_stop`].
    Proceed { waited_for_calls: u32 },
    /// A previous stop completed; nothing more to do.
    AlreadyStopped,
}

/// What [`Gate::begin_term`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermEntry {
    /// The gate is closed to every call: drain, shut down, then [`Gate::finish_term`].
    Proceed,
    /// Every call in flight has left and new ones wait: decide, then [`Gate::decide_term`].
    Decide,
    /// A stop, an init or another term's decision started meanwhile: wait and look again.
    Retry,
}

/// Upper bound on calls in flight per instance; a real caller cannot reach it (each call needs
/// its own thread), so hitting it means a leaked pass.
const IN_FLIGHT_MAX: u32 = 1 << 20;

/// The gate. Every Jet call that touches an instance holds a [`GatePass`] for its duration.
pub struct Gate<R: Runtime> {
    /// Calls in flight and the flags (see [`GATED_ONE`] and the constants after it).
    admission: AtomicU64<R>,
    state: Mutex<R, GateState>,
    changed: Condvar<R>,
    mutations: Mutations,
}

/// Proof of admission; leaving the engine is dropping it.
#[must_use = "dropping the pass leaves the engine"]
pub struct GatePass<'a, R: Runtime> {
    gate: &'a Gate<R>,
    admission: Admission,
}

impl<R: Runtime> Drop for GatePass<'_, R> {
    fn drop(&mut self) {
        self.gate.leave(self.admission);
    }
}

impl<R: Runtime> Gate<R> {
    pub fn new(mutations: Mutations) -> Self {
        let flags = Self::flags_of(Phase::Created, false, 0);
        Gate {
            admission: AtomicU64::new(flags),
            state: Mutex::new(
                LockRank::Gate,
                GateState {
                    phase: Phase::Created,
                    term_deciding: false,
                    stops_that_waited: 0,
                    refused_after_stop: 0,
                    waiters: 0,
                    flags,
                },
            ),
            changed: Condvar::new(),
            mutations,
        }
    }

    pub fn status(&self) -> GateStatus {
        let state = self.state.lock();
        let in_flight = self.in_flight();
        GateStatus {
            phase: state.phase,
            gated_in_flight: in_flight.gated,
            ungated_in_flight: in_flight.ungated,
            stops_that_waited: state.stops_that_waited,
            refused_after_stop: state.refused_after_stop,
        }
    }

    fn in_flight(&self) -> InFlight {
        InFlight::of(self.admission.load())
    }

    /// The flags the admission word carries in this state.
    fn flags_of(phase: Phase, term_deciding: bool, waiters: u32) -> u64 {
        let mut flags = 0;
        if term_deciding || phase != Phase::Running {
            flags |= GATED_CLOSED;
        }
        if term_deciding || !matches!(phase, Phase::Running | Phase::Stopped) {
            flags |= UNGATED_CLOSED;
        }
        if waiters > 0 {
            flags |= SLEEPERS;
        }
        flags
    }

    /// Writes the flags of `state` into the admission word (after a change to its phase,
    /// term decision or sleepers); returns the word as it was before, counts included.
    fn publish(&self, state: &mut GateState) -> u64 {
        let flags = Self::flags_of(state.phase, state.term_deciding, state.waiters);
        let old = state.flags;
        state.flags = flags;
        // Only the mutex's holder changes flags, so the word holds exactly `old`: adding the
        // difference sets and clears them without touching the counts.
        let before = self.admission.fetch_add(flags.wrapping_sub(old));
        debug_assert_eq!(
            before & FLAGS_MASK,
            old,
            "gate flags changed outside the mutex"
        );
        before
    }

    pub fn phase(&self) -> Phase {
        self.state.lock().phase
    }

    /// Why `phase` refuses `admission`, if it does. `gone` is the caller's error for a
    /// terminated instance (its handles are stale: InvalidParameter or InvalidSesid).
    fn refusal(phase: Phase, admission: Admission, gone: JetError) -> Option<JetError> {
        match (phase, admission) {
            (Phase::Running, _) => None,
            (Phase::Created, Admission::Configuration) => None,
            (Phase::Created, _) => Some(JetError::NotInitialized),
            (Phase::Initializing, _) => Some(JetError::InitInProgress),
            (Phase::Stopping | Phase::Stopped, Admission::Gated) => {
                Some(JetError::ClientRequestToStopJetService)
            }
            (Phase::Stopping | Phase::Stopped, _) => None,
            (Phase::Terminating, _) => Some(JetError::TermInProgress),
            (Phase::Terminated, _) => Some(gone),
        }
    }

    /// Admits a call or says why not. The phase check and the in-flight count change are one
    /// atomic step (a compare and swap on the admission word, whose flags say whether the
    /// gate is open to the call): that is what makes "no gated call runs after the stop
    /// returned" hold.
    pub fn enter(&self, admission: Admission, gone: JetError) -> JetResult<GatePass<'_, R>> {
        let one = admission.one();
        if self.mutations.is_active(Mutant::CheckThenActGate) {
            // Planted bug: check the phase under the mutex, count in after letting go of it.
            {
                let mut state = self.state.lock();
                if let Some(error) = Self::refusal(state.phase, admission, gone) {
                    state.refused_after_stop +=
                        u64::from(error == JetError::ClientRequestToStopJetService);
                    return Err(error);
                }
            }
            self.admission.fetch_add(one);
            return Ok(GatePass {
                gate: self,
                admission,
            });
        }
        // Counted in only if the word it adds to has this kind's flag clear: a compare and
        // swap, tried first on the word of an open gate with nothing in flight (the common
        // case costs one step), then on the word it found.
        let closed = admission.closed();
        let mut word = 0;
        while word & closed == 0 {
            assert!(admission.count(word) < IN_FLIGHT_MAX, "gate pass leaked");
            match self.admission.compare_exchange(word, word + one) {
                Ok(_) => {
                    return Ok(GatePass {
                        gate: self,
                        admission,
                    })
                }
                Err(found) => word = found,
            }
        }
        self.enter_closed(admission, gone)
    }

    /// Admission through the mutex, when the gate was closed to the call's kind.
    fn enter_closed(&self, admission: Admission, gone: JetError) -> JetResult<GatePass<'_, R>> {
        let state = self.state.lock();
        // A call the closed gate still admits waits until the calls admitted before it closed
        // have left: they linearize before the stop, this one after it, so it must not run
        // among them (an end_session slipping in before a drained call's body made the stop
        // non-atomic to observers; the simulator found it, PCT seed 431).
        // And every call waits while a term decides: a term that is then refused must leave
        // no trace, so it may not refuse anyone meanwhile.
        let mut state = self.wait_while(state, |state, in_flight| {
            state.term_deciding
                || (state.phase == Phase::Stopping
                    && admission != Admission::Gated
                    && in_flight.gated > 0)
        });
        if let Some(error) = Self::refusal(state.phase, admission, gone) {
            state.refused_after_stop += u64::from(error == JetError::ClientRequestToStopJetService);
            return Err(error);
        }
        // Under the mutex the flags cannot change: the phase just checked admits the call.
        let before = self.admission.fetch_add(admission.one());
        assert!(admission.count(before) < IN_FLIGHT_MAX, "gate pass leaked");
        Ok(GatePass {
            gate: self,
            admission,
        })
    }

    fn leave(&self, admission: Admission) {
        let one = admission.one();
        let before = self.admission.fetch_add(one.wrapping_neg());
        assert!(
            admission.count(before) > 0,
            "gate left more often than entered"
        );
        let after = before.wrapping_sub(one);
        if admission.count(after) == 0 && after & SLEEPERS != 0 {
            // Stop waits for gated calls, term for all: both re-check their own predicate. A
            // sleeper holds the mutex from its last look at the counts until it sleeps, so
            // taking it here orders this wake-up after that look.
            drop(self.state.lock());
            self.changed.notify_all();
        }
    }

    /// Sleeps on `changed`, registered as a sleeper meanwhile (so a leaving call knows to
    /// wake it). The caller looks again when it wakes.
    fn wait<'a>(&self, mut state: MutexGuard<'a, R, GateState>) -> MutexGuard<'a, R, GateState> {
        self.add_sleeper(&mut state);
        let mut state = self.changed.wait(state);
        self.remove_sleeper(&mut state);
        state
    }

    fn add_sleeper(&self, state: &mut GateState) {
        state.waiters += 1;
        if state.waiters == 1 {
            self.publish(state);
        }
    }

    fn remove_sleeper(&self, state: &mut GateState) {
        state.waiters -= 1;
        if state.waiters == 0 {
            self.publish(state);
        }
    }

    /// Sleeps on `changed` while `condition` holds of the state and the calls in flight. The
    /// sleeper is registered before the look that sends it to sleep: a call that leaves
    /// after that look sees the flag and wakes it.
    fn wait_while<'a>(
        &self,
        mut state: MutexGuard<'a, R, GateState>,
        mut condition: impl FnMut(&GateState, InFlight) -> bool,
    ) -> MutexGuard<'a, R, GateState> {
        if !condition(&state, self.in_flight()) {
            return state;
        }
        if self
            .mutations
            .is_active(Mutant::DrainLooksBeforeSleeperFlag)
        {
            // Planted bug: sleep on the look made before the flag was up.
            state = self.wait(state);
            return self.wait_while(state, condition);
        }
        self.add_sleeper(&mut state);
        while condition(&state, self.in_flight()) {
            state = self.changed.wait(state);
        }
        self.remove_sleeper(&mut state);
        state
    }

    /// `init`: Created → Initializing.
    pub fn begin_init(&self) -> JetResult<()> {
        let mut state = self.state.lock();
        match state.phase {
            Phase::Created => {
                state.phase = Phase::Initializing;
                self.publish(&mut state);
                Ok(())
            }
            Phase::Initializing => Err(JetError::InitInProgress),
            Phase::Running | Phase::Stopping | Phase::Stopped => Err(JetError::AlreadyInitialized),
            Phase::Terminating => Err(JetError::TermInProgress),
            Phase::Terminated => Err(JetError::InvalidParameter),
        }
    }

    /// `init` finished: Running on success, back to Created on failure (nothing changed).
    pub fn finish_init(&self, succeeded: bool) {
        let mut state = self.state.lock();
        assert_eq!(state.phase, Phase::Initializing);
        state.phase = if succeeded {
            Phase::Running
        } else {
            Phase::Created
        };
        self.publish(&mut state);
        drop(state);
        self.changed.notify_all();
    }

    /// Validation of a stop without side effects: the error a stop would return now, if any.
    pub fn stop_refusal(&self) -> Option<JetError> {
        Self::stop_refusal_in(self.state.lock().phase)
    }

    fn stop_refusal_in(phase: Phase) -> Option<JetError> {
        match phase {
            Phase::Running | Phase::Stopping | Phase::Stopped => None,
            // The documented error for "not a running instance".
            Phase::Created | Phase::Initializing | Phase::Terminated => {
                Some(JetError::InvalidParameter)
            }
            Phase::Terminating => Some(JetError::TermInProgress),
        }
    }

    /// Full stop, first half: validate, close the gate, wait for gated calls in flight to
    /// leave. On error nothing changed.
    pub fn begin_stop(&self) -> JetResult<StopEntry> {
        let mut state = self.state.lock();
        loop {
            if state.term_deciding {
                state = self.wait(state);
                continue;
            }
            if let Some(error) = Self::stop_refusal_in(state.phase) {
                return Err(error);
            }
            match state.phase {
                Phase::Running => break,
                // Planted bug `ConcurrentStopReturnsEarly`: the other stop's work taken as
                // done.
                Phase::Stopping if self.mutations.is_active(Mutant::ConcurrentStopReturnsEarly) => {
                    return Ok(StopEntry::AlreadyStopped)
                }
                // Another stop is preparing: wait for it, then this one has nothing to add.
                Phase::Stopping => state = self.wait(state),
                _ => return Ok(StopEntry::AlreadyStopped),
            }
        }
        if self.mutations.is_active(Mutant::StopFlagLast) {
            // Planted bug (ESE's order): no gate closing, no drain; the flag is set at the end.
            return Ok(StopEntry::Proceed {
                waited_for_calls: 0,
            });
        }
        state.phase = Phase::Stopping;
        // The gated calls counted in before the flag closed the gate: the ones to wait for.
        let waited_for_calls = InFlight::of(self.publish(&mut state)).gated;
        if waited_for_calls > 0 {
            state.stops_that_waited += 1;
            // None can come in now, so the count the flag met is the drain's first look.
            state = self.wait_while(state, |_, in_flight| in_flight.gated > 0);
        }
        debug_assert_eq!(state.phase, Phase::Stopping);
        Ok(StopEntry::Proceed { waited_for_calls })
    }

    /// Full stop, second half: the preparation is done.
    pub fn finish_stop(&self) {
        let mut state = self.state.lock();
        if self.mutations.is_active(Mutant::StopFlagLast) {
            if state.phase == Phase::Running {
                state.phase = Phase::Stopped;
                self.publish(&mut state);
            }
        } else {
            assert_eq!(
                state.phase,
                Phase::Stopping,
                "finish_stop without begin_stop"
            );
            assert_eq!(
                self.in_flight().gated,
                0,
                "a gated call entered a closed gate"
            );
            state.phase = Phase::Stopped;
            self.publish(&mut state);
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Term, before it decides: waits while a stop or an init is in progress (term lets them
    /// finish first). Errors for an instance already terminating or gone. Holds nothing on
    /// return: the caller then takes the instance lock and calls [`Gate::begin_term`].
    pub fn wait_for_term_window(&self) -> JetResult<()> {
        let state = self.state.lock();
        let state = self.wait_while(state, |state, _| {
            state.term_deciding || matches!(state.phase, Phase::Stopping | Phase::Initializing)
        });
        match state.phase {
            Phase::Terminating => Err(JetError::TermInProgress),
            Phase::Terminated => Err(JetError::InvalidParameter),
            _ => Ok(()),
        }
    }

    /// Term, before it decides. A created-but-never-initialized instance has nothing to
    /// refuse for: the gate closes at once (`Proceed`). A running or stopped one holds new
    /// calls at the gate and waits until every call in flight has left (`Decide`): only then
    /// can term see every transaction that will ever be open, decide with
    /// [`Gate::decide_term`], and either close the gate or let the held calls in as if it had
    /// never come. `Retry` if a stop, an init or another term's decision began since
    /// [`Gate::wait_for_term_window`].
    pub fn begin_term(&self) -> JetResult<TermEntry> {
        let mut state = self.state.lock();
        if state.term_deciding {
            return Ok(TermEntry::Retry);
        }
        match state.phase {
            Phase::Stopping | Phase::Initializing => Ok(TermEntry::Retry),
            Phase::Terminating => Err(JetError::TermInProgress),
            Phase::Terminated => Err(JetError::InvalidParameter),
            Phase::Created => {
                state.phase = Phase::Terminating;
                self.publish(&mut state);
                Ok(TermEntry::Proceed)
            }
            Phase::Running | Phase::Stopped => {
                state.term_deciding = true;
                let in_flight = InFlight::of(self.publish(&mut state));
                // None can come in now: the counts the flags met are the drain's first look.
                let drained = in_flight.gated == 0 && in_flight.ungated == 0;
                if !drained && !self.mutations.is_active(Mutant::TermDoesNotWait) {
                    state = self.wait_while(state, |_, in_flight| {
                        in_flight.gated > 0 || in_flight.ungated > 0
                    });
                }
                debug_assert!(state.term_deciding);
                Ok(TermEntry::Decide)
            }
        }
    }

    /// Term, the decision after [`TermEntry::Decide`]: `refusal` is what term returns if it
    /// cannot end the instance (transactions open: `TooManyActiveUsers`). A refused term
    /// changed nothing and refused no one; the calls it held go on. Otherwise the gate now
    /// refuses every call; wait with [`Gate::drain_for_term`].
    pub fn decide_term(&self, refusal: Option<JetError>) -> JetResult<()> {
        let mut state = self.state.lock();
        assert!(state.term_deciding, "decide_term without begin_term");
        state.term_deciding = false;
        if refusal.is_none() {
            state.phase = Phase::Terminating;
        }
        self.publish(&mut state);
        drop(state);
        self.changed.notify_all();
        match refusal {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Term, after the gate closed: waits until every call in flight has left.
    pub fn drain_for_term(&self) {
        if self.mutations.is_active(Mutant::TermDoesNotWait) {
            return;
        }
        let state = self.state.lock();
        let state = self.wait_while(state, |_, in_flight| {
            in_flight.gated > 0 || in_flight.ungated > 0
        });
        debug_assert_eq!(state.phase, Phase::Terminating);
    }

    pub fn finish_term(&self) {
        let mut state = self.state.lock();
        assert_eq!(state.phase, Phase::Terminating);
        let in_flight = self.in_flight();
        assert_eq!(
            in_flight.gated + in_flight.ungated,
            0,
            "term finished with calls still in flight"
        );
        state.phase = Phase::Terminated;
        self.publish(&mut state);
        drop(state);
        self.changed.notify_all();
    }
}
