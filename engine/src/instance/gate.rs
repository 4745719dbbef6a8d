//! The instance's entry gate: which calls are admitted in which lifecycle phase, how many are
//! in flight, and the transitions that wait for them to drain (stop and term).
//!
//! This is the piece ESE gets wrong: ESE sets its stop flag after the preparation steps and
//! never waits for calls that passed their entry check, so a commit can finish after
//! `JetStopServiceInstance` returned. Here the check and the in-flight count are one critical
//! section, the stop closes the gate *first* and waits until every gated call has left, and
//! only then prepares. The loom models in `jetsim-models` run this file's code exhaustively.

use crate::error::{JetError, JetResult};
use crate::instance::mutations::{Mutant, Mutations};
use crate::runtime::sync::{Condvar, LockRank, Mutex, MutexGuard};
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
    gated_in_flight: u32,
    ungated_in_flight: u32,
    stops_that_waited: u64,
    refused_after_stop: u64,
    /// Threads asleep on `Gate::changed`. A call leaving the engine wakes them only when
    /// there are any: most calls leave with nobody waiting, and a wake-up is a shared write
    /// (and a scheduling point for the checkers) every call would otherwise pay.
    waiters: u32,
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
        Gate {
            state: Mutex::new(
                LockRank::Gate,
                GateState {
                    phase: Phase::Created,
                    term_deciding: false,
                    gated_in_flight: 0,
                    ungated_in_flight: 0,
                    stops_that_waited: 0,
                    refused_after_stop: 0,
                    waiters: 0,
                },
            ),
            changed: Condvar::new(),
            mutations,
        }
    }

    pub fn status(&self) -> GateStatus {
        let state = self.state.lock();
        GateStatus {
            phase: state.phase,
            gated_in_flight: state.gated_in_flight,
            ungated_in_flight: state.ungated_in_flight,
            stops_that_waited: state.stops_that_waited,
            refused_after_stop: state.refused_after_stop,
        }
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

    /// Admits a call or says why not. The phase check and the in-flight count change happen
    /// in one critical section: that is what makes "no gated call runs after the stop
    /// returned" hold.
    pub fn enter(&self, admission: Admission, gone: JetError) -> JetResult<GatePass<'_, R>> {
        if self.mutations.is_active(Mutant::CheckThenActGate) {
            // Planted bug: check, let go of the lock, then count.
            {
                let mut state = self.state.lock();
                if let Some(error) = Self::refusal(state.phase, admission, gone) {
                    state.refused_after_stop +=
                        u64::from(error == JetError::ClientRequestToStopJetService);
                    return Err(error);
                }
            }
            let mut state = self.state.lock();
            Self::count_in(&mut state, admission);
            return Ok(GatePass {
                gate: self,
                admission,
            });
        }
        let state = self.state.lock();
        // A call the closed gate still admits waits until the calls admitted before it closed
        // have left: they linearize before the stop, this one after it, so it must not run
        // among them (an end_session slipping in before a drained call's body made the stop
        // non-atomic to observers; the simulator found it, PCT seed 431).
        // And every call waits while a term decides: a term that is then refused must leave
        // no trace, so it may not refuse anyone meanwhile.
        let mut state = self.wait_while(state, |state| {
            state.term_deciding
                || (state.phase == Phase::Stopping
                    && admission != Admission::Gated
                    && state.gated_in_flight > 0)
        });
        if let Some(error) = Self::refusal(state.phase, admission, gone) {
            state.refused_after_stop += u64::from(error == JetError::ClientRequestToStopJetService);
            return Err(error);
        }
        Self::count_in(&mut state, admission);
        Ok(GatePass {
            gate: self,
            admission,
        })
    }

    fn count_in(state: &mut GateState, admission: Admission) {
        let counter = match admission {
            Admission::Gated => &mut state.gated_in_flight,
            Admission::Allowlisted | Admission::Configuration => &mut state.ungated_in_flight,
        };
        assert!(*counter < IN_FLIGHT_MAX, "gate pass leaked");
        *counter += 1;
    }

    fn leave(&self, admission: Admission) {
        let mut state = self.state.lock();
        let counter = match admission {
            Admission::Gated => &mut state.gated_in_flight,
            Admission::Allowlisted | Admission::Configuration => &mut state.ungated_in_flight,
        };
        assert!(*counter > 0, "gate left more often than entered");
        *counter -= 1;
        let drained = *counter == 0;
        let wake = drained && state.waiters > 0;
        drop(state);
        if wake {
            // Stop waits for gated calls, term for all: both re-check their own predicate.
            self.changed.notify_all();
        }
    }

    /// Sleeps on `changed`, counted in `waiters` meanwhile (so `leave` knows to wake it).
    fn wait<'a>(&self, mut state: MutexGuard<'a, R, GateState>) -> MutexGuard<'a, R, GateState> {
        state.waiters += 1;
        let mut state = self.changed.wait(state);
        state.waiters -= 1;
        state
    }

    /// Sleeps on `changed` while `condition` holds, counted as [`Gate::wait`].
    fn wait_while<'a>(
        &self,
        mut state: MutexGuard<'a, R, GateState>,
        mut condition: impl FnMut(&GateState) -> bool,
    ) -> MutexGuard<'a, R, GateState> {
        while condition(&state) {
            state = self.wait(state);
        }
        state
    }

    /// `init`: Created → Initializing.
    pub fn begin_init(&self) -> JetResult<()> {
        let mut state = self.state.lock();
        match state.phase {
            Phase::Created => {
                state.phase = Phase::Initializing;
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
        let waited_for_calls = state.gated_in_flight;
        if waited_for_calls > 0 {
            state.stops_that_waited += 1;
        }
        let state = self.wait_while(state, |state| state.gated_in_flight > 0);
        debug_assert_eq!(state.phase, Phase::Stopping);
        Ok(StopEntry::Proceed { waited_for_calls })
    }

    /// Full stop, second half: the preparation is done.
    pub fn finish_stop(&self) {
        let mut state = self.state.lock();
        if self.mutations.is_active(Mutant::StopFlagLast) {
            if state.phase == Phase::Running {
                state.phase = Phase::Stopped;
            }
        } else {
            assert_eq!(
                state.phase,
                Phase::Stopping,
                "finish_stop without begin_stop"
            );
            assert_eq!(
                state.gated_in_flight, 0,
                "a gated call entered a closed gate"
            );
            state.phase = Phase::Stopped;
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Term, before it decides: waits while a stop or an init is in progress (term lets them
    /// finish first). Errors for an instance already terminating or gone. Holds nothing on
    /// return: the caller then takes the instance lock and calls [`Gate::begin_term`].
    pub fn wait_for_term_window(&self) -> JetResult<()> {
        let state = self.state.lock();
        let state = self.wait_while(state, |state| {
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
                Ok(TermEntry::Proceed)
            }
            Phase::Running | Phase::Stopped => {
                state.term_deciding = true;
                if !self.mutations.is_active(Mutant::TermDoesNotWait) {
                    state = self.wait_while(state, |state| {
                        state.gated_in_flight > 0 || state.ungated_in_flight > 0
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
        let state = self.wait_while(state, |state| {
            state.gated_in_flight > 0 || state.ungated_in_flight > 0
        });
        debug_assert_eq!(state.phase, Phase::Terminating);
    }

    pub fn finish_term(&self) {
        let mut state = self.state.lock();
        assert_eq!(state.phase, Phase::Terminating);
        assert_eq!(
            state.gated_in_flight + state.ungated_in_flight,
            0,
            "term finished with calls still in flight"
        );
        state.phase = Phase::Terminated;
        drop(state);
        self.changed.notify_all();
    }
}
