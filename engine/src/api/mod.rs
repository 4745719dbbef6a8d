//! The Jet API: ESE's calls as methods of [`Jet`], taking and returning handles.
//!
//! Every call resolves its handle, passes the instance's gate (see
//! [`crate::instance::gate`]), validates everything it can before changing anything, and
//! returns `Result<_, JetError>`. A failed call leaves the instance's observable state
//! unchanged; the exception is an I/O error (`DiskIO`, `LogWriteFail`), after which the
//! instance is fail-stop: every later call except term returns `InstanceUnavailable` until
//! term and a new create_instance + init, which recovers. The flag is the storage's own
//! ([`crate::storage::Storage::failure`]), read under the instance lock each call already
//! takes: no extra lock or atomic in the gate.
//!
//! Order of checks, which the simulator's reference model mirrors: the handle must decode and
//! name a live instance (else the handle kind's invalid error), then the gate (phase), then
//! the handles inside the instance, then arguments, then the operation.

pub mod calls;
pub mod database;
pub mod handles;
pub mod instance;
pub mod observe;
pub mod records;
pub mod session;
pub mod stop;

use crate::env::Environment;
use crate::error::{JetError, JetResult};
use crate::instance::gate::GatePass;
use crate::instance::slots::Slots;
use crate::instance::{InstanceCore, InstanceState};
use crate::runtime::sync::Mutex;
use crate::runtime::Runtime;
use calls::JetCall;
use handles::{InstanceHandle, SessionHandle};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Most instances one [`Jet`] holds (`JET_paramMaxInstances`).
pub const INSTANCES_MAX: usize = 255;

/// One loaded copy of the engine (ESE: the process's ESENT.DLL): the instance table, the
/// environment, and the generation counter behind every handle.
pub struct Jet<R: Runtime> {
    env: Environment,
    // A plain std atomic: it only hands out unique numbers, it synchronises nothing, so model
    // checkers need not see it.
    generations: AtomicU32,
    instances: Mutex<R, Slots<Arc<InstanceCore<R>>>>,
    /// Database path → the instance that has it attached. A leaf lock: taken inside an
    /// instance's lock, never held across I/O or while taking another lock. A std mutex, not
    /// the runtime's: its critical sections are map lookups with no scheduling point inside.
    database_owners: std::sync::Mutex<BTreeMap<String, InstanceHandle>>,
}

/// A session resolved inside its instance's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionRef {
    pub slot: u16,
    pub generation: u32,
}

/// Work for the background worker that a call discovered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WakeOrders {
    pub wrote: bool,
    pub deleted: bool,
    checkpoint_depth_bytes: u64,
    checkpoint_depth_max_bytes: u64,
    version_store_half_full: bool,
}

impl<R: Runtime> Jet<R> {
    pub fn new(env: Environment) -> Self {
        Jet {
            env,
            generations: AtomicU32::new(1),
            instances: Mutex::new(Slots::new(INSTANCES_MAX)),
            database_owners: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    fn database_owners(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, InstanceHandle>> {
        // A panic while holding it left the map consistent (every update is one call).
        self.database_owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claims `path` for `instance` before it attaches or creates the database there. ESE
    /// (`FMP::ErrWriteLatchByNameWsz`, fmp.cxx) refuses a database that a different instance
    /// is using with `JET_errDatabaseSharingViolation`; a file held by another process (or
    /// another engine on the same store) is refused by the store itself with
    /// `JET_errFileAccessDenied`.
    pub(crate) fn claim_database(&self, instance: InstanceHandle, path: &str) -> JetResult<()> {
        let mut owners = self.database_owners();
        match owners.get(path) {
            Some(owner) if *owner != instance => Err(JetError::DatabaseSharingViolation),
            _ => {
                owners.insert(path.to_owned(), instance);
                Ok(())
            }
        }
    }

    /// Gives `path` up (detach, or an attach that failed).
    pub(crate) fn release_database(&self, instance: InstanceHandle, path: &str) {
        let mut owners = self.database_owners();
        if owners.get(path) == Some(&instance) {
            owners.remove(path);
        }
    }

    /// Gives up every database `instance` holds (term).
    pub(crate) fn release_databases_of(&self, instance: InstanceHandle) {
        self.database_owners().retain(|_, owner| *owner != instance);
    }

    pub fn environment(&self) -> &Environment {
        &self.env
    }

    pub(crate) fn next_generation(&self) -> u32 {
        loop {
            let generation = self.generations.fetch_add(1, Ordering::Relaxed);
            // 0 is nil; after 2^32 allocations the counter wraps and skips it.
            if generation != 0 {
                return generation;
            }
        }
    }

    /// The instance named by `handle` (InvalidParameter, as ESE's retail builds, otherwise).
    pub(crate) fn core(&self, handle: InstanceHandle) -> JetResult<Arc<InstanceCore<R>>> {
        let parts = handle.parts().ok_or(JetError::InvalidParameter)?;
        self.instances
            .lock()
            .get(u16::from(parts.instance_slot), parts.generation)
            .cloned()
            .ok_or(JetError::InvalidParameter)
    }

    fn core_by_slot(&self, instance_slot: u8) -> Option<Arc<InstanceCore<R>>> {
        self.instances
            .lock()
            .iter()
            .find(|(slot, _, _)| *slot == u16::from(instance_slot))
            .map(|(_, _, core)| Arc::clone(core))
    }

    /// Runs a session-level call: resolve, gate, validate the session, run `body` under the
    /// instance lock, then pass on any background work it found.
    pub(crate) fn with_session<T>(
        &self,
        sesid: SessionHandle,
        call: JetCall,
        body: impl FnOnce(
            &InstanceCore<R>,
            &mut InstanceState<R>,
            SessionRef,
            &mut WakeOrders,
        ) -> JetResult<T>,
    ) -> JetResult<T> {
        let parts = sesid.parts().ok_or(JetError::InvalidSesid)?;
        let core = self
            .core_by_slot(parts.instance_slot)
            .ok_or(JetError::InvalidSesid)?;
        let mut orders = WakeOrders::default();
        let result = {
            // Admission and body under one hold of the instance lock: a gated call that was
            // admitted runs its whole body before any call that comes after the stop closed
            // the gate (those need this lock too), so the stop is atomic to every observer.
            // Admitting outside the lock let an allowlisted end_session slip between a
            // gated open_table's admission and its body (found by the simulator, PCT seed
            // 431). Lock order: state, then gate; nothing takes them the other way round.
            let admission = call.admission(core.options.mutations);
            let early = match Self::admits_outside_lock(&core) {
                true => Some(core.gate.enter(admission, JetError::InvalidSesid)?),
                false => None,
            };
            let mut state = core.state.lock();
            let pass = match early {
                Some(pass) => pass,
                None => core.gate.enter(admission, JetError::InvalidSesid)?,
            };
            let session = SessionRef {
                slot: parts.object_slot,
                generation: parts.generation,
            };
            let result = Self::check_available(&state)
                .and_then(|()| Self::check_session(&state, session, call))
                .and_then(|()| body(&core, &mut state, session, &mut orders));
            if orders.wrote {
                orders.checkpoint_depth_bytes = state
                    .storage
                    .as_ref()
                    .map_or(0, |storage| storage.checkpoint_depth_bytes());
                orders.checkpoint_depth_max_bytes = state.params.checkpoint_depth_max_bytes;
                // ESE cleans versions in the background as the store fills; so do we, from
                // half full, so a writer rarely has to clean inline.
                orders.version_store_half_full = state.version_store.stats().versions * 2
                    >= state.params.version_store_max_versions;
            }
            // Leave the engine before letting go of the lock: a stop waiting for in-flight
            // calls then sees this call gone exactly when its effects are all in place.
            drop(pass);
            result
        };
        Self::pass_on(&core, orders);
        result
    }

    /// The planted gate bugs (`StopFlagLast`, `CheckThenActGate`, `TermDoesNotWait`) are about
    /// a gate that is separate from the work it guards, as ESE's is: with one planted, calls
    /// are admitted before taking the instance lock, as this engine did before the simulator
    /// showed why not (admission under the lock also masks those three bugs).
    pub(crate) fn admits_outside_lock(core: &InstanceCore<R>) -> bool {
        let mutations = core.options.mutations;
        mutations.is_active(crate::Mutant::StopFlagLast)
            || mutations.is_active(crate::Mutant::CheckThenActGate)
            || mutations.is_active(crate::Mutant::TermDoesNotWait)
    }

    /// `InstanceUnavailable` once an I/O error made the instance fail-stop.
    pub(crate) fn check_available(state: &InstanceState<R>) -> JetResult<()> {
        match state.storage.as_ref().and_then(|storage| storage.failure()) {
            Some(_) => Err(JetError::InstanceUnavailable),
            None => Ok(()),
        }
    }

    /// The session exists, and no other thread holds its context. `end_session`,
    /// `set_session_context`, `reset_session_context` and `get_session_info` have their own
    /// context rules and skip the thread check.
    fn check_session(
        state: &InstanceState<R>,
        session: SessionRef,
        call: JetCall,
    ) -> JetResult<()> {
        let entry = state
            .sessions
            .get(session.slot, session.generation)
            .ok_or(JetError::InvalidSesid)?;
        let exempt = matches!(
            call,
            JetCall::EndSession
                | JetCall::SetSessionContext
                | JetCall::ResetSessionContext
                | JetCall::GetSessionInfo
        );
        if let (false, Some(context)) = (exempt, entry.context) {
            // ESE: a session whose context was set by one thread may not be used by another.
            if context.thread != R::current_thread_id() {
                return Err(JetError::SessionSharingViolation);
            }
        }
        Ok(())
    }

    fn pass_on(core: &InstanceCore<R>, orders: WakeOrders) {
        if !orders.wrote && !orders.deleted {
            return;
        }
        let (depth_bytes, max_bytes) = (
            orders.checkpoint_depth_bytes,
            orders.checkpoint_depth_max_bytes,
        );
        core.worker.signal(|worker| {
            if orders.wrote
                && (depth_bytes > max_bytes || (worker.caches_quiesced && depth_bytes > 0))
            {
                worker.flush_requested = true;
            }
            if orders.deleted {
                worker.defrag_work_pending = true;
            }
            if orders.version_store_half_full {
                worker.cleanup_requested = true;
            }
        });
    }

    /// Holds the gate for an instance-level call with the given admission.
    pub(crate) fn enter_instance<'a>(
        core: &'a InstanceCore<R>,
        call: JetCall,
    ) -> JetResult<GatePass<'a, R>> {
        core.gate.enter(
            call.admission(core.options.mutations),
            JetError::InvalidParameter,
        )
    }
}

impl<R: Runtime> Drop for Jet<R> {
    /// Background threads hold their instance; stop them so a dropped `Jet` leaks no thread.
    fn drop(&mut self) {
        let cores: Vec<Arc<InstanceCore<R>>> = self
            .instances
            .lock()
            .iter()
            .map(|(_, _, core)| Arc::clone(core))
            .collect();
        for core in cores {
            instance::stop_worker(&core);
        }
    }
}
