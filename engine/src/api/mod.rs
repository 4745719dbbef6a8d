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
use crate::instance::{worker, InstanceCore, InstanceState, Session, Store, Versions};
use crate::runtime::sync::{
    spin_until, unlatched, LeafRwLock, LockRank, RwLockReadGuard, RwLockWriteGuard,
};
use crate::runtime::Runtime;
use crate::storage::{
    Activity, FlushStart, FrameKey, Lsn, MissPolicy, Storage, TreeReads, WriteBackStart,
};
use crate::transaction::VersionStore;
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
    instances: LeafRwLock<R, Slots<Arc<InstanceCore<R>>>>,
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

/// A session call's body that needs the instance latch exclusively: it may change anything.
/// It may run more than once (page reads outside the latch), so it must change nothing
/// before its storage reads.
pub(crate) trait ExclusiveBody<R: Runtime, T>:
    FnMut(&InstanceCore<R>, &mut InstanceState<R>, SessionRef, &mut WakeOrders) -> JetResult<T>
{
}

impl<R: Runtime, T, F> ExclusiveBody<R, T> for F where
    F: FnMut(&InstanceCore<R>, &mut InstanceState<R>, SessionRef, &mut WakeOrders) -> JetResult<T>
{
}

/// The store as a read sees it: the tree through `tree`, and the version store, both from
/// one moment (the store latch and the versions' latch are held, shared or exclusively,
/// while it reads).
pub(crate) struct StoreReads<'s> {
    pub tree: TreeReads<'s>,
    pub versions: &'s VersionStore,
}

/// A read-only session call's body: it runs under the instance latch and the store latch
/// held shared, beside other read-only calls and record writes' walks, reads the store
/// through [`StoreReads`] and changes nothing but its own cursors' positions (its session is
/// its own: [`crate::instance::SessionClaims`]). It may run more than once (pages read
/// outside the latch).
pub(crate) trait SharedBody<R: Runtime, T>:
    FnMut(&InstanceState<R>, SessionRef, &mut StoreReads<'_>) -> JetResult<T>
{
}

impl<R: Runtime, T, F> SharedBody<R, T> for F where
    F: FnMut(&InstanceState<R>, SessionRef, &mut StoreReads<'_>) -> JetResult<T>
{
}

/// A record write's first step ([`SessionCall::run_write`]): under the instance latch and
/// the store latch held shared, it checks what it can and stages its tree change through
/// the cache alone (see [`crate::storage::StagedPages`]), changing nothing. It may run more
/// than once.
pub(crate) trait WritePlan<R: Runtime, P>:
    FnMut(&InstanceState<R>, SessionRef, &Store, &Versions) -> Result<P, (JetError, Option<FrameKey>)>
{
}

impl<R: Runtime, P, F> WritePlan<R, P> for F where
    F: FnMut(
        &InstanceState<R>,
        SessionRef,
        &Store,
        &Versions,
    ) -> Result<P, (JetError, Option<FrameKey>)>
{
}

/// A [`WritePlan`]'s result: what it staged, which it encodes once the store latch is let
/// go, so the install under the latch held exclusively (where two writers on different
/// tables wait for each other) only stamps it.
pub(crate) trait PlannedPages {
    fn encode_staged(&mut self);
}

/// A record write's second step: under the store latch and the versions' latch held
/// exclusively, it checks again
/// everything that decides the answer, then installs the plan, or answers `None` when a page
/// the plan read changed meanwhile (the plan is made again).
pub(crate) trait WriteInstall<R: Runtime, P, T>:
    FnMut(&InstanceState<R>, SessionRef, &mut Store, &mut Versions, P) -> JetResult<Option<T>>
{
}

impl<R: Runtime, P, T, F> WriteInstall<R, P, T> for F where
    F: FnMut(&InstanceState<R>, SessionRef, &mut Store, &mut Versions, P) -> JetResult<Option<T>>
{
}

/// A level-1 commit's append ([`SessionCall::run_commit_append`]): it changes the version
/// store under the versions' latch held exclusively and appends to the log under the log's
/// own lock, with the store latch held shared. It reads no page, so it runs once.
pub(crate) trait CommitAppendBody<R: Runtime, T>:
    FnMut(&InstanceCore<R>, &Storage, &mut Versions) -> JetResult<T>
{
}

impl<R: Runtime, T, F> CommitAppendBody<R, T> for F where
    F: FnMut(&InstanceCore<R>, &Storage, &mut Versions) -> JetResult<T>
{
}

/// A session call's body that changes only its own session (its transaction, its cursors'
/// levels) and, under the versions' latch held exclusively, the version store: a level-1
/// begin, a nested commit, a commit's publish ([`SessionCall::run_versions`]). It takes no store
/// latch, so it waits for no cache install, write-back or log-flush bookkeeping.
pub(crate) trait VersionsBody<R: Runtime, T>:
    FnMut(&InstanceCore<R>, &InstanceState<R>, SessionRef, &mut Versions) -> JetResult<T>
{
}

impl<R: Runtime, T, F> VersionsBody<R, T> for F where
    F: FnMut(&InstanceCore<R>, &InstanceState<R>, SessionRef, &mut Versions) -> JetResult<T>
{
}

/// What a commit waiting for the log does next ([`SessionCall::wait_durable`]).
enum DurableStep {
    /// The record is durable.
    Durable,
    /// Wait a moment for other commits to join the flush this call is about to start:
    /// `appended` Commit records had been appended when it decided to.
    Gather { appended: u64 },
    /// Another call's flush is out; `flushes_ended` flushes had ended when it was seen out
    /// (`None` only for the planted bug `FlushEndReadAfterLogLock`, which reads it later).
    InFlight { flushes_ended: Option<u64> },
    /// This call writes and syncs the log.
    Flush(crate::storage::LogFlush),
}

/// Work for the background worker that a call discovered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WakeOrders {
    pub wrote: bool,
    pub deleted: bool,
    checkpoint_depth_bytes: u64,
    checkpoint_depth_max_bytes: u64,
    version_cleanup_due: bool,
    /// The two readings of the store above were made by the call itself, under the store
    /// latch it held anyway ([`StoreReadings`]).
    store_read: bool,
}

/// What the background worker needs to know of the store after a write: the checkpoint
/// depth and whether version cleanup is due. Read under the store latch a record write's
/// install holds anyway, so [`SessionCall::finish`] need not take it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreReadings {
    checkpoint_depth_bytes: u64,
    version_cleanup_due: bool,
}

impl StoreReadings {
    pub(crate) fn of(store: &Store, versions: &Versions) -> Self {
        StoreReadings {
            checkpoint_depth_bytes: store
                .storage
                .as_ref()
                .map_or(0, |storage| storage.checkpoint_depth_bytes()),
            // ESE cleans versions in the background as the store grows; so do we, so a
            // writer rarely has to clean inline.
            version_cleanup_due: versions.version_store.cleanup_due(),
        }
    }
}

impl<R: Runtime> Jet<R> {
    pub fn new(env: Environment) -> Self {
        Jet {
            env,
            generations: AtomicU32::new(1),
            instances: LeafRwLock::new(LockRank::InstanceTable, Slots::new(INSTANCES_MAX)),
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
    pub(crate) fn claim_database(&self, core: &InstanceCore<R>, path: &str) -> JetResult<()> {
        let instance = core.handle;
        let unchecked = core
            .options
            .mutations
            .is_active(crate::Mutant::DatabaseSharingUnchecked);
        let mut owners = self.database_owners();
        match owners.get(path) {
            // Planted bug `DatabaseSharingUnchecked`: another instance's claim is not looked at.
            Some(owner) if *owner != instance && !unchecked => {
                Err(JetError::DatabaseSharingViolation)
            }
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
            .read()
            .get(u16::from(parts.instance_slot), parts.generation)
            .cloned()
            .ok_or(JetError::InvalidParameter)
    }

    fn core_by_slot(&self, instance_slot: u8) -> Option<Arc<InstanceCore<R>>> {
        self.instances
            .read()
            .iter()
            .find(|(slot, _, _)| *slot == u16::from(instance_slot))
            .map(|(_, _, core)| Arc::clone(core))
    }

    /// Runs a session-level call whose body needs no I/O wait of its own: see
    /// [`Jet::with_session_call`]; the body may run more than once (page reads outside the
    /// lock), so it must change nothing before its storage reads.
    pub(crate) fn with_session<T>(
        &self,
        sesid: SessionHandle,
        call: JetCall,
        mut body: impl ExclusiveBody<R, T>,
    ) -> JetResult<T> {
        self.with_session_call(sesid, call, LatchMode::Exclusive, |scope| {
            scope.run(&mut body)
        })
    }

    /// Runs a read-only session call under the instance latch held shared: see
    /// [`SharedBody`] and [`SessionCall::run_shared`]. Same shape as [`Jet::with_session`]:
    /// both are thin doors into [`Jet::with_session_call`], one per body kind, kept apart
    /// because the latch mode and the body's type go together.
    pub(crate) fn with_session_read<T>(
        &self,
        sesid: SessionHandle,
        call: JetCall,
        mut body: impl SharedBody<R, T>,
    ) -> JetResult<T> {
        self.with_session_call(sesid, call, LatchMode::Shared, |scope| {
            scope.run_shared(&mut body)
        })
    }

    /// Runs a session-level call: resolve the handle, pass the gate, take the instance latch
    /// (as `mode` says), validate the session and hold it (see [`SessionCall`]), run `work`,
    /// then pass on any background work it found.
    pub(crate) fn with_session_call<T>(
        &self,
        sesid: SessionHandle,
        call: JetCall,
        mode: LatchMode,
        work: impl FnOnce(&mut SessionCall<'_, R>) -> JetResult<T>,
    ) -> JetResult<T> {
        let parts = sesid.parts().ok_or(JetError::InvalidSesid)?;
        let core = self
            .core_by_slot(parts.instance_slot)
            .ok_or(JetError::InvalidSesid)?;
        let session = SessionRef {
            slot: parts.object_slot,
            generation: parts.generation,
        };
        let mut scope = SessionCall::begin(&core, session, call, mode)?;
        let result = work(&mut scope);
        debug_assert_ne!(
            result.as_ref().err(),
            Some(&JetError::OutOfBuffers),
            "a deferred page read escaped its call scope"
        );
        let orders = scope.finish();
        drop(scope);
        Self::pass_on(&core, orders);
        result
    }

    /// `InstanceUnavailable` once an I/O error made the instance fail-stop.
    pub(crate) fn check_available(store: &Store) -> JetResult<()> {
        match store.storage.as_ref().and_then(|storage| storage.failure()) {
            Some(_) => Err(JetError::InstanceUnavailable),
            None => Ok(()),
        }
    }

    /// No other thread holds the session's context. `end_session`, `set_session_context`,
    /// `reset_session_context` and `get_session_info` have their own context rules and skip
    /// the thread check.
    pub(crate) fn check_context(entry: &Session<R>, call: JetCall) -> JetResult<()> {
        let exempt = matches!(
            call,
            JetCall::EndSession
                | JetCall::SetSessionContext
                | JetCall::ResetSessionContext
                | JetCall::GetSessionInfo
        );
        if let (false, Some(context)) = (exempt, entry.context.get()) {
            // ESE: a session whose context was set by one thread may not be used by another.
            if context.thread != R::current_thread_id() {
                return Err(JetError::SessionSharingViolation);
            }
        }
        Ok(())
    }

    pub(crate) fn pass_on(core: &InstanceCore<R>, orders: WakeOrders) {
        if !orders.wrote && !orders.deleted {
            return;
        }
        let (depth_bytes, max_bytes) = (
            orders.checkpoint_depth_bytes,
            orders.checkpoint_depth_max_bytes,
        );
        core.worker.request(|worker| {
            if orders.wrote
                && (depth_bytes > max_bytes || (worker.caches_quiesced && depth_bytes > 0))
            {
                worker.flush_requested = true;
            }
            if orders.deleted {
                worker.defrag_work_pending = true;
            }
            if orders.version_cleanup_due {
                worker.cleanup_requested = true;
            }
        });
    }

    /// Admission: holds the gate for `call`, holding no other lock (the gate is the stop's
    /// mechanism and its counts are of calls really inside the engine). `refused_handle` is
    /// the error for a handle the gate no longer serves.
    pub(crate) fn admit<'a>(
        core: &'a InstanceCore<R>,
        call: JetCall,
        refused_handle: JetError,
    ) -> JetResult<GatePass<'a, R>> {
        core.gate
            .enter(call.admission(core.options.mutations), refused_handle)
    }

    /// An instance-level call's admission, then the instance latch held shared, refused with
    /// `InstanceUnavailable` once the storage is fail-stop: the steps every such call that
    /// changes nothing the latch guards (or only a registry behind its own lock) takes.
    pub(crate) fn enter_instance_shared<'a>(
        core: &'a InstanceCore<R>,
        call: JetCall,
    ) -> JetResult<(GatePass<'a, R>, StateReadGuard<'a, R>)> {
        let pass = Self::enter_instance(core, call)?;
        let state = core.state.read();
        if state.storage_failed() {
            return Err(JetError::InstanceUnavailable);
        }
        Ok((pass, state))
    }

    /// Holds the gate for an instance-level call with the given admission.
    pub(crate) fn enter_instance<'a>(
        core: &'a InstanceCore<R>,
        call: JetCall,
    ) -> JetResult<GatePass<'a, R>> {
        Self::admit(core, call, JetError::InvalidParameter)
    }
}

/// How many times a call is run again for pages read outside the lock before its misses are
/// read under the lock: a bound, so a call whose pages keep being evicted still ends.
pub(crate) const CALL_RESTARTS_MAX: u32 = 8;

/// The instance latch held exclusively.
pub(crate) type StateWriteGuard<'a, R> = RwLockWriteGuard<'a, R, InstanceState<R>>;

/// The instance latch held shared.
pub(crate) type StateReadGuard<'a, R> = RwLockReadGuard<'a, R, InstanceState<R>>;

/// How a call holds the instance latch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LatchMode {
    /// Read-only calls: other shared holders run beside it.
    Shared,
    /// Every call that may change the instance's state.
    Exclusive,
}

/// The instance latch as a call holds it.
enum Latch<'c, R: Runtime> {
    Shared(StateReadGuard<'c, R>),
    Exclusive(StateWriteGuard<'c, R>),
}

impl<'c, R: Runtime> Latch<'c, R> {
    fn take(core: &'c InstanceCore<R>, mode: LatchMode) -> Self {
        match mode {
            LatchMode::Shared => Latch::Shared(core.state.read()),
            LatchMode::Exclusive => Latch::Exclusive(core.state.write()),
        }
    }

    /// [`Jet::check_available`], from the storage's fail-stop flag (no store latch taken).
    fn check_available(&self) -> JetResult<()> {
        match self.storage_failed() {
            true => Err(JetError::InstanceUnavailable),
            false => Ok(()),
        }
    }
}

impl<R: Runtime> std::ops::Deref for Latch<'_, R> {
    type Target = InstanceState<R>;
    fn deref(&self) -> &InstanceState<R> {
        match self {
            Latch::Shared(guard) => guard,
            Latch::Exclusive(guard) => guard,
        }
    }
}

/// A session call in progress. It holds a gate pass, its session (no other call on the same
/// session runs until this one ends: ESE counts one call in the API per session; see
/// [`crate::instance::SessionClaims`]), and the instance latch, shared for a read-only call
/// and exclusively otherwise, except while it waits for I/O:
/// - a page that is not cached is read with no lock held, then the call runs again
///   ([`SessionCall::run`]; only calls that changed nothing yet, see
///   [`crate::storage::MissPolicy`]);
/// - a commit waits for the log with no lock held, sharing one sync with every commit
///   appended meanwhile ([`SessionCall::wait_durable`]).
///
/// So a session waiting for the disk stops no other session, and a gated call really is in
/// flight while a stop waits for it.
pub(crate) struct SessionCall<'c, R: Runtime> {
    core: &'c InstanceCore<R>,
    session: SessionRef,
    call: JetCall,
    mode: LatchMode,
    orders: WakeOrders,
    // Given back by `drop` in this order: the session, then the pass while the latch (if
    // held) is still held, so a stop waiting for in-flight calls sees this one gone only
    // with its effects in place.
    pass: Option<GatePass<'c, R>>,
    latch: Option<Latch<'c, R>>,
    /// The session, taken out of the sessions' lock once, at entry: the call holds its
    /// claim through it, and gives it up through it.
    entry: Arc<Session<R>>,
    /// The call ended its session (`end_session`): the claim left with it.
    ended: bool,
}

impl<'c, R: Runtime> SessionCall<'c, R> {
    fn begin(
        core: &'c InstanceCore<R>,
        session: SessionRef,
        call: JetCall,
        mode: LatchMode,
    ) -> JetResult<Self> {
        let pass = Jet::<R>::admit(core, call, JetError::InvalidSesid)?;
        let claims_first = core
            .options
            .mutations
            .is_active(crate::Mutant::SessionClaimBeforeLatch);
        loop {
            let early_claims = claims_first.then(|| core.session_claims.lock_for_mutant());
            let latch = Latch::take(core, mode);
            drop(early_claims);
            latch.check_available()?;
            let entry = latch
                .session(session.slot, session.generation)
                .ok_or(JetError::InvalidSesid)?;
            Jet::<R>::check_context(&entry, call)?;
            // A session ended since the look keeps its claim taken for ever (its ender never
            // gives it up), so a claim taken here is on a session that still exists.
            if entry.claim.try_claim() {
                // The context may have changed between the look and the claim: a call on
                // this session that held it (set and reset context share the latch) ended
                // in between. Holding the claim, the context stays as it is now.
                if let Err(refused) = Jet::<R>::check_context(&entry, call) {
                    if entry.claim.release() {
                        core.session_claims.released();
                    }
                    return Err(refused);
                }
                return Ok(SessionCall {
                    core,
                    session,
                    call,
                    mode,
                    orders: WakeOrders::default(),
                    pass: Some(pass),
                    latch: Some(latch),
                    entry,
                    ended: false,
                });
            }
            // Another thread's call is inside this session (waiting for I/O, or running
            // beside this one under a shared latch): wait for it to end, holding nothing
            // else, then look at the session again (that call may have ended it).
            core.session_claims
                .wait_for_release(latch, (session.slot, session.generation));
        }
    }

    pub(crate) fn core(&self) -> &'c InstanceCore<R> {
        self.core
    }

    /// The instance's state, to change (an exclusive call's).
    fn state(&mut self) -> &mut InstanceState<R> {
        match self.latch.as_mut() {
            Some(Latch::Exclusive(guard)) => guard,
            Some(Latch::Shared(_)) => panic!("a read-only call changes nothing"),
            None => panic!("the call holds the instance latch"),
        }
    }

    /// Runs `f` with the instance latch released (for I/O, or to let other calls run between
    /// the steps of a long call), then takes the latch again as before.
    pub(crate) fn unlocked<T>(&mut self, f: impl FnOnce() -> T) -> T {
        drop(self.latch.take());
        let value = f();
        self.latch = Some(Latch::take(self.core, self.mode));
        value
    }

    /// Runs `body` under the instance latch, held exclusively. If it needed a page that is
    /// not cached before it changed anything, the page is read with no lock held and `body`
    /// runs again.
    pub(crate) fn run<T>(&mut self, body: &mut impl ExclusiveBody<R, T>) -> JetResult<T> {
        let mut restarts = 0;
        loop {
            let restartable = self.call.reads_outside_lock() && restarts < CALL_RESTARTS_MAX;
            let (core, session) = (self.core, self.session);
            let mut orders = self.orders;
            let state = self.state();
            let policy = match restartable {
                true => MissPolicy::Defer,
                false => MissPolicy::ReadUnderLock,
            };
            if let Some(storage) = state.store_mut().storage.as_mut() {
                storage.set_miss_policy(policy);
            }
            let result = body(core, state, session, &mut orders);
            let deferred = state.store_mut().storage.as_mut().and_then(|storage| {
                storage.set_miss_policy(MissPolicy::ReadUnderLock);
                storage.take_deferred_read()
            });
            let Some(read) = deferred else {
                self.orders = orders;
                return result;
            };
            // The body changed nothing (the miss came before its first logged change): drop
            // its result, read the page with no lock held, run it again.
            let bytes = self.unlocked(|| read.read(unlatched::<R>()));
            let store = self.state().store_mut();
            let storage = store
                .storage
                .as_mut()
                .expect("a call in flight keeps term from closing the storage");
            storage.finish_deferred_read(&read, bytes, true)?;
            Jet::<R>::check_available(store)?;
            restarts += 1;
        }
    }

    /// The call removed its own session from the sessions (`end_session`): its claim left
    /// with it, so the call wakes the claim's waiters when it ends, whatever the claim says.
    pub(crate) fn note_session_ended(&mut self) {
        self.ended = true;
    }

    /// How the call holds the instance latch now (a shared call may have had to take it
    /// exclusively: [`Self::latch_exclusively`]).
    pub(crate) fn mode(&self) -> LatchMode {
        self.mode
    }

    /// Runs `f` on the instance's state as the call holds the latch, shared or exclusively:
    /// for looks at the call's own session and changes behind the registries' own locks.
    pub(crate) fn look<T>(&self, f: impl FnOnce(&InstanceState<R>, SessionRef) -> T) -> T {
        let state: &InstanceState<R> = self.latch.as_ref().expect("the call holds the latch");
        f(state, self.session)
    }

    /// Runs `body` under the instance latch held shared and no other latch: for a call that
    /// changes only a registry behind a leaf lock of its own (the open tables), and only its
    /// own session's entries in it.
    pub(crate) fn run_registry<T>(
        &mut self,
        body: impl FnOnce(&InstanceState<R>, SessionRef) -> JetResult<T>,
    ) -> JetResult<T> {
        debug_assert_eq!(self.mode, LatchMode::Shared);
        let state: &InstanceState<R> = self.latch.as_ref().expect("the call holds the latch");
        body(state, self.session)
    }

    /// Runs `body` under the versions' latch held exclusively (and the instance latch as the
    /// call holds it), with the store latch free: see [`VersionsBody`]. A commit whose
    /// record became durable still publishes if the instance failed meanwhile.
    pub(crate) fn run_versions<T>(&mut self, body: &mut impl VersionsBody<R, T>) -> JetResult<T> {
        let (core, session) = (self.core, self.session);
        let state: &InstanceState<R> = self.latch.as_ref().expect("the call holds the latch");
        body(core, state, session, &mut state.versions.write())
    }

    /// Runs `f` on the store under the store latch held shared, whichever way the call holds
    /// the instance latch: for the log's own short lock, which `f` takes.
    fn with_store_shared<T>(&self, f: impl FnOnce(&Store, &InstanceState<R>) -> T) -> T {
        let state: &InstanceState<R> = self.latch.as_ref().expect("the call holds the latch");
        f(&state.store.read(), state)
    }

    /// Runs `body` under the store latch held shared and the versions' latch held
    /// exclusively (and the instance latch as the call holds it): for a level-1 commit's
    /// append, which changes the version store and takes the log's own lock for the log.
    pub(crate) fn run_commit_append<T>(
        &mut self,
        body: &mut impl CommitAppendBody<R, T>,
    ) -> JetResult<T> {
        let core = self.core;
        let state: &InstanceState<R> = self.latch.as_ref().expect("the call holds the latch");
        let store = state.store.read();
        let storage = store.storage.as_ref().ok_or(JetError::NotInitialized)?;
        body(core, storage, &mut state.versions.write())
    }

    /// Runs a read-only `body` under the instance latch and the store latch held shared. A
    /// page it needs that is not cached is read with no latch held (registered, then
    /// installed, under the store latch, so a write-back that overtakes the read discards
    /// it) and `body` runs again; after [`CALL_RESTARTS_MAX`] such runs it runs once
    /// more under the exclusive latch, reading its misses there, so a call whose pages keep
    /// being evicted still ends.
    pub(crate) fn run_shared<T>(&mut self, body: &mut impl SharedBody<R, T>) -> JetResult<T> {
        for _ in 0..CALL_RESTARTS_MAX {
            let (result, missed) = self.run_cached(body)?;
            let Some(key) = missed else {
                return result;
            };
            // The body changed nothing: drop its result, read the page, run it again.
            self.read_missed_page(key)?;
        }
        self.run_shared_exclusively(body)
    }

    /// Runs `body` once under the store latch held shared, over cached pages only: its
    /// result, and the page it missed if it missed one.
    fn run_cached<T>(
        &self,
        body: &mut impl SharedBody<R, T>,
    ) -> JetResult<(JetResult<T>, Option<FrameKey>)> {
        let state: &InstanceState<R> = self.latch.as_ref().expect("the call holds the latch");
        let store = state.store.read();
        Jet::<R>::check_available(&store)?;
        let versions = state.versions.read();
        let mut reads = StoreReads {
            tree: TreeReads::cached(store.storage.as_ref()),
            versions: &versions.version_store,
        };
        let result = body(state, self.session, &mut reads);
        Ok((result, reads.tree.missed()))
    }

    /// [`SessionCall::run_shared`]'s last try, under the exclusive instance latch: misses are
    /// read under the latch.
    fn run_shared_exclusively<T>(&mut self, body: &mut impl SharedBody<R, T>) -> JetResult<T> {
        let (core, session) = (self.core, self.session);
        drop(self.latch.take());
        let state = core.state.write();
        // The store and versions' latches are free (the instance latch is held
        // exclusively); they are taken rather than reached through `store_mut` so that the
        // body can see the state too.
        let mut store = state.store.write();
        Jet::<R>::check_available(&store)?;
        // Exclusively, as the store latch: the body may read pages here, which no call
        // does holding a latch shared.
        let versions = state.versions.write();
        let mut reads = StoreReads {
            tree: TreeReads::Locked(store.storage.as_mut()),
            versions: &versions.version_store,
        };
        let result = body(&state, session, &mut reads);
        drop(versions);
        drop(store);
        drop(state);
        self.latch = Some(Latch::take(core, self.mode));
        result
    }

    /// Runs `f` on the storage under the store latch held exclusively and the instance latch
    /// held shared, for a caller that holds neither. The cache is the store's, so a miss's
    /// registration and install need nothing more: sessions entering a call, or between two
    /// of its steps, are not held up as the exclusive instance latch would hold them.
    /// `activity`: what an I/O error that makes the storage fail-stop here is put down to
    /// (a call's, or the background worker's, which has no caller to report it to).
    fn with_cache<T>(
        core: &InstanceCore<R>,
        activity: Activity,
        f: impl FnOnce(&mut Storage) -> T,
    ) -> T {
        let state = core.state.read();
        let mut store = state.store.write();
        let storage = store.storage.as_mut().expect(
            "a call in flight, or a background round (term stops the worker first), keeps \
             term from closing the storage",
        );
        storage.set_activity(activity);
        let value = f(storage);
        storage.set_activity(Activity::Call);
        value
    }

    /// Runs `f` on the storage under the store latch and the instance latch held shared, for
    /// a caller that holds neither: for the log's own short lock, which `f` takes.
    fn with_storage_shared<T>(core: &InstanceCore<R>, f: impl FnOnce(&Storage) -> T) -> T {
        let state = core.state.read();
        let store = state.store.read();
        let storage = store.storage.as_ref().expect(
            "a call in flight, or a background round (term stops the worker first), keeps \
             term from closing the storage",
        );
        f(storage)
    }

    /// Reads a page a walk under the shared latches missed, with no latch held, and installs
    /// it (see [`Self::read_missed`]); returns holding the instance latch as before.
    fn read_missed_page(&mut self, key: FrameKey) -> JetResult<()> {
        drop(self.latch.take());
        let read = Self::read_missed(self.core, key, Activity::Call);
        self.latch = Some(Latch::take(self.core, self.mode));
        read
    }

    /// Reads a page a walk under the shared latches missed, for a caller that holds no
    /// latch (a call, or the background worker's defrag step): the read is registered, then
    /// installed, under the store latch held exclusively, so a write-back that overtakes the
    /// read discards it; the read itself holds nothing.
    pub(crate) fn read_missed(
        core: &InstanceCore<R>,
        key: FrameKey,
        activity: Activity,
    ) -> JetResult<()> {
        let reads_under_store_latch = core
            .options
            .mutations
            .is_active(crate::Mutant::MissReadUnderStoreLatch);
        let registered = Self::with_cache(core, activity, |storage| {
            let read = storage.defer_read(key)?;
            // Planted bug: read inside the section that registered the read.
            let bytes = reads_under_store_latch.then(|| read.read(unlatched::<R>()));
            Some((read, bytes))
        });
        if let Some((read, bytes)) = registered {
            let bytes = bytes.unwrap_or_else(|| read.read(unlatched::<R>()));
            // Planted bug: the install evicts as it must, writing a page back if need be.
            let evictions_may_write = core
                .options
                .mutations
                .is_active(crate::Mutant::InstallEvictsUnderStoreLatch);
            let room_wanted = Self::with_cache(core, activity, |storage| {
                storage
                    .finish_deferred_read(&read, bytes, evictions_may_write)
                    .map(|()| storage.take_room_wanted())
            })?;
            if room_wanted > 0 {
                Self::write_back_for_room(core, room_wanted, activity)?;
            }
        }
        Ok(())
    }

    /// Makes `wanted` frames clean for a call that holds no latch, whose install (a record
    /// write's, or a miss's) would otherwise have had an eviction write a page back under
    /// the store latch: writes the least recently used dirty pages back holding nothing
    /// ([`Storage::begin_room_write_back`]), or makes the log durable first if they all
    /// wait for it. The call then runs again; what it finds may have been taken meanwhile,
    /// which its bounded restarts cover.
    pub(crate) fn write_back_for_room(
        core: &InstanceCore<R>,
        wanted: usize,
        activity: Activity,
    ) -> JetResult<u64> {
        // Planted bug: the batch is not counted, so nobody waits for it.
        let counted = !core
            .options
            .mutations
            .is_active(crate::Mutant::RoomWriteBackNotAwaited);
        let started = Self::with_cache(core, activity, |storage| {
            let started = storage.begin_room_write_back(wanted);
            if counted && matches!(started, Ok(WriteBackStart::Batch(_))) {
                // Counted before the latch is let go: a call that writes pages back under
                // the exclusive latch waits for it from the moment its frames are in flight.
                worker::write_back_began(core);
            }
            started
        })?;
        match started {
            WriteBackStart::Batch(batch) => {
                let pages = batch.page_count() as u64;
                let written = batch.write_and_sync(unlatched::<R>());
                if counted {
                    worker::write_back_ended(core);
                }
                Self::with_cache(core, activity, |storage| {
                    storage.finish_write_back(batch, written)
                })
                .map(|_| pages)
            }
            WriteBackStart::LogFirst => {
                let started =
                    Self::with_storage_shared(core, |storage| storage.begin_log_flush_all())?;
                let FlushStart::Started(flush) = started else {
                    // Durable meanwhile, or another call's flush is out: run again.
                    return Ok(0);
                };
                let written = flush.write_and_sync(unlatched::<R>());
                Self::with_storage_shared(core, |storage| {
                    core.end_log_flush(storage, &flush, written, activity)
                })
                .map(|()| 0)
            }
            WriteBackStart::Shallow => Ok(0),
        }
    }

    /// Runs a record write under the instance latch held shared, so that writes beside each
    /// other (and beside reads) wait only for one another's installs: `plan` stages the write
    /// under the store latch held shared, then `install` checks it again and installs it
    /// under the store latch held exclusively. A page the plan needs that is not cached is
    /// read with no latch held and the plan is made again; so is a plan whose pages changed
    /// before it was installed. After [`CALL_RESTARTS_MAX`] plans the write runs as
    /// `exclusive`, under the exclusive instance latch, so a write that keeps losing races
    /// still ends.
    pub(crate) fn run_write<P: PlannedPages, T>(
        &mut self,
        plan: &mut impl WritePlan<R, P>,
        install: &mut impl WriteInstall<R, P, T>,
        exclusive: &mut impl ExclusiveBody<R, T>,
    ) -> JetResult<T> {
        if let Some(value) = self.plan_and_install(plan, install)? {
            return Ok(value);
        }
        self.latch_exclusively()?;
        self.run(exclusive)
    }

    /// [`SessionCall::run_write`]'s plans and installs under the shared latches: the value
    /// installed, or `None` once [`CALL_RESTARTS_MAX`] plans were all refused at their
    /// install (a page they read changed, or no clean frames to install into), for the caller
    /// to end under the exclusive instance latch.
    pub(crate) fn plan_and_install<P: PlannedPages, T>(
        &mut self,
        plan: &mut impl WritePlan<R, P>,
        install: &mut impl WriteInstall<R, P, T>,
    ) -> JetResult<Option<T>> {
        debug_assert_eq!(self.mode, LatchMode::Shared);
        let (core, session) = (self.core, self.session);
        for _ in 0..CALL_RESTARTS_MAX {
            let state: &InstanceState<R> = self.latch.as_ref().expect("the call holds the latch");
            let planned = {
                let store = state.store.read();
                Jet::<R>::check_available(&store)?;
                plan(state, session, &store, &state.versions.read())
            };
            let mut planned = match planned {
                Ok(planned) => planned,
                Err((_, Some(missed))) => {
                    self.read_missed_page(missed)?;
                    continue;
                }
                Err((error, None)) => return Err(error),
            };
            planned.encode_staged();
            let mut store = state.store.write();
            Jet::<R>::check_available(&store)?;
            let installed = install(
                state,
                session,
                &mut store,
                &mut state.versions.write(),
                planned,
            )?;
            if let Some(value) = installed {
                return Ok(Some(value));
            }
            let room_wanted = store
                .storage
                .as_mut()
                .map_or(0, |storage| storage.take_room_wanted());
            drop(store);
            if room_wanted == 0 {
                crate::mark!(core.marks, StagedWriteRaced);
                continue;
            }
            drop(self.latch.take());
            let cleaned = Self::write_back_for_room(core, room_wanted, Activity::Call);
            self.latch = Some(Latch::take(core, self.mode));
            cleaned?;
        }
        Ok(None)
    }

    /// Lets go of the shared instance latch and takes it exclusively; the call keeps its
    /// session and its gate pass meanwhile, so only what other calls may change between the
    /// two (the store, the registries) must be read again.
    pub(crate) fn latch_exclusively(&mut self) -> JetResult<()> {
        debug_assert_eq!(self.mode, LatchMode::Shared);
        drop(self.latch.take());
        self.mode = LatchMode::Exclusive;
        self.latch = Some(Latch::take(self.core, self.mode));
        self.latch.as_ref().expect("just taken").check_available()
    }

    /// For an exclusive body that cannot run again once it changed something (a rollback
    /// undoes record after record): brings the pages it will need into the cache first, with
    /// no latch held across a read, then holds the instance latch exclusively for the body.
    /// `walk` finds those pages under the shared latches, as a read-only body does, and
    /// returns how many pages it may need; each page it misses is read with no latch held
    /// and `walk` runs again, until it misses nothing or it made that many reads and
    /// [`CALL_RESTARTS_MAX`] more (other calls' reads may evict what this one read: the body
    /// then reads what is still missing under its latch, so the call still ends).
    pub(crate) fn prefetch_then_latch_exclusively(
        &mut self,
        walk: &mut impl SharedBody<R, usize>,
    ) -> JetResult<()> {
        let mut reads_made = 0;
        loop {
            let (pages_needed, missed) = self.run_cached(walk)?;
            let pages_needed = pages_needed?;
            match missed {
                Some(key) if reads_made < pages_needed + CALL_RESTARTS_MAX as usize => {
                    self.read_missed_page(key)?;
                    reads_made += 1;
                    crate::mark!(self.core.marks, RollbackReadAhead);
                }
                _ => break,
            }
        }
        self.latch_exclusively()
    }

    /// Waits until the log is durable past `lsn`, holding no lock while the log is written:
    /// the first waiter writes everything appended so far (group commit), the others wait
    /// for it and find their records covered. If the log fails meanwhile (this flush or
    /// another's), the answer is `LogWriteFail`: the record at `lsn` may or may not have
    /// reached the disk, exactly as when the caller's own flush fails.
    ///
    /// A waiter about to start a flush while others may soon commit (transactions are open
    /// that have not appended their Commit record, or other calls are in flight) first
    /// gathers a group (see [`Self::gather_commits`]): without that, two threads committing
    /// in turn each find the other's flush in flight and every sync covers one commit.
    pub(crate) fn wait_durable(&mut self, lsn: Lsn) -> JetResult<()> {
        self.wait_durable_inner(lsn)
            .map_err(|_| JetError::LogWriteFail)
    }

    fn wait_durable_inner(&mut self, lsn: Lsn) -> JetResult<()> {
        let trusts_flush_in_flight = self
            .core
            .options
            .mutations
            .is_active(crate::Mutant::GroupCommitTrustsFlushInFlight);
        let reads_flush_end_late = self
            .core
            .options
            .mutations
            .is_active(crate::Mutant::FlushEndReadAfterLogLock);
        let syncs_under_latch = self
            .core
            .options
            .mutations
            .is_active(crate::Mutant::CommitSyncUnderLatch);
        let core = self.core;
        let mut gathered = R::GROUP_COMMIT_SPINS == 0;
        loop {
            let step = self.with_store_shared(|store, state| -> JetResult<DurableStep> {
                let storage = store.storage.as_ref().ok_or(JetError::NotInitialized)?;
                if !gathered {
                    if let Some(step) = Self::gather_step(core, storage, state, lsn) {
                        return Ok(step);
                    }
                }
                let (start, flushes_ended) = storage.begin_log_flush(lsn, |start| {
                    // Read under the log's lock that shows the flush out: its end is counted
                    // under the lock it is accounted under, so it counts after.
                    (matches!(start, FlushStart::InFlight) && !reads_flush_end_late)
                        .then(|| core.log_flushes_ended.load(Ordering::Acquire))
                })?;
                Ok(match start {
                    FlushStart::Durable => DurableStep::Durable,
                    FlushStart::InFlight => DurableStep::InFlight { flushes_ended },
                    FlushStart::Started(flush) => DurableStep::Flush(flush),
                })
            })?;
            match step {
                DurableStep::Durable => return Ok(()),
                DurableStep::Gather { appended } => {
                    gathered = true;
                    self.gather_commits(appended);
                }
                DurableStep::InFlight { flushes_ended } => {
                    if trusts_flush_in_flight {
                        return Ok(());
                    }
                    self.wait_for_flush_in_flight(flushes_ended);
                }
                DurableStep::Flush(flush) => {
                    let written = match syncs_under_latch {
                        // Planted bug: the group's sync made holding the call's latch.
                        true => flush.write_and_sync(unlatched::<R>()),
                        false => self.unlocked(|| flush.write_and_sync(unlatched::<R>())),
                    };
                    self.with_store_shared(|store, _| {
                        let storage = store
                            .storage
                            .as_ref()
                            .expect("a call in flight keeps term from closing the storage");
                        core.end_log_flush(storage, &flush, written, Activity::Call)
                    })?;
                }
            }
        }
    }

    /// Whether a commit waiting for `lsn` should first gather the commits of others into the
    /// flush it is about to start (only where [`Runtime::GROUP_COMMIT_SPINS`]): `Durable` if
    /// the record is durable already, `Gather` (claimed) if no flush is out, no other
    /// committer is gathering and another transaction or call may yet append a Commit
    /// record; `None` to go on to the flush.
    fn gather_step(
        core: &InstanceCore<R>,
        storage: &Storage,
        state: &InstanceState<R>,
        lsn: Lsn,
    ) -> Option<DurableStep> {
        let (flushed_lsn, flush_in_flight) = storage.log_flush_state();
        if flushed_lsn > lsn {
            return Some(DurableStep::Durable);
        }
        if flush_in_flight || core.commit_gathering.in_progress.load(Ordering::Acquire) {
            return None;
        }
        // Only a commit not yet durable counts who may join its flush: a durable one
        // takes no versions' latch. Another open transaction whose Commit record is not
        // appended yet may join (as PostgreSQL's `commit_siblings` counts active
        // transactions); a call in flight outside any transaction (a reader) cannot, and
        // waiting for one cost a committer beside a reader the whole gather.
        let versions = state.versions.read();
        let uncommitted_elsewhere = versions
            .version_store
            .open_transactions()
            .saturating_sub(versions.logged_commits.len());
        if uncommitted_elsewhere == 0 {
            return None;
        }
        // Claimed by one atomic step: two committers deciding side by side (each under the
        // store latch held shared) must not both gather, each waiting for the other's
        // record.
        let gathering = &core.commit_gathering;
        gathering
            .in_progress
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        Some(DurableStep::Gather {
            appended: gathering.commit_records_appended.load(Ordering::Acquire),
        })
    }

    /// Lets go of the latch and spins, up to [`Runtime::GROUP_COMMIT_SPINS`] looks, until
    /// another Commit record is appended, so that the flush this call then starts (or finds
    /// started) covers it too. Bounded, so a transaction left open by an idle session costs a
    /// commit at most this wait; it changes when the log is written, never what is written.
    fn gather_commits(&mut self, seen: u64) {
        let gathering = &self.core.commit_gathering;
        let appended = &gathering.commit_records_appended;
        self.unlocked(|| {
            spin_until(R::GROUP_COMMIT_SPINS, || {
                appended.load(Ordering::Acquire) != seen
            })
        });
        gathering.in_progress.store(false, Ordering::Release);
    }

    /// Waits, holding no latch, until the group-commit flush another call has in flight
    /// ends, `seen` being the count of flushes ended before it (`None`: the planted bug
    /// `FlushEndReadAfterLogLock`, which reads the count here, after letting go of the
    /// latches): first spinning ([`Runtime::GROUP_COMMIT_SPINS`] looks, since an fsync is
    /// short next to a sleep and its wake-up on OS threads), then asleep. The flusher moves
    /// the count, then wakes the sleepers under `log_flush`, which a sleeper holds from its
    /// last look until it sleeps, so the end cannot be missed.
    fn wait_for_flush_in_flight(&mut self, seen: Option<u64>) {
        let core = self.core;
        drop(self.latch.take());
        let ended_count = || core.log_flushes_ended.load(Ordering::Acquire);
        let seen = seen.unwrap_or_else(|| {
            // The planted bug's late read, at the first scheduling point after the latch.
            let _sleepers = core.log_flush.lock();
            ended_count()
        });
        let ended = R::GROUP_COMMIT_SPINS > 0
            && spin_until(R::GROUP_COMMIT_SPINS, || ended_count() != seen);
        if !ended {
            let mut flushes = core.log_flush.lock();
            flushes.waiters += 1;
            let mut flushes = core
                .log_flushed
                .wait_while(flushes, |_| ended_count() == seen);
            flushes.waiters -= 1;
        }
        self.latch = Some(Latch::take(core, self.mode));
    }

    /// A level-1 commit took effect: the background worker may have flushing to do.
    pub(crate) fn note_commit(&mut self) {
        self.orders.wrote = true;
    }

    /// A record write succeeded: the background worker may have flushing (and, after a
    /// delete, defragmentation) to do; `readings` is the store as the write left it.
    pub(crate) fn note_write(&mut self, deleted: bool, readings: StoreReadings) {
        self.orders.wrote = true;
        self.orders.deleted |= deleted;
        self.orders.checkpoint_depth_bytes = readings.checkpoint_depth_bytes;
        self.orders.version_cleanup_due = readings.version_cleanup_due;
        self.orders.store_read = true;
    }

    /// The background work the call found, with what the worker needs to decide on it.
    fn finish(&mut self) -> WakeOrders {
        let mut orders = self.orders;
        if orders.wrote {
            let latch = self.latch.as_mut().expect("the call holds the latch");
            if !orders.store_read {
                let readings = match latch {
                    Latch::Shared(state) => {
                        StoreReadings::of(&state.store.read(), &state.versions.read())
                    }
                    Latch::Exclusive(state) => {
                        let state = &mut **state;
                        StoreReadings::of(state.store.get_mut(), state.versions.get_mut())
                    }
                };
                orders.checkpoint_depth_bytes = readings.checkpoint_depth_bytes;
                orders.version_cleanup_due = readings.version_cleanup_due;
            }
            orders.checkpoint_depth_max_bytes = latch.params.checkpoint_depth_max_bytes;
        }
        orders
    }
}

impl<R: Runtime> Drop for SessionCall<'_, R> {
    /// Releases the session and leaves the gate, whatever way the call ended.
    fn drop(&mut self) {
        // The claim is in the session, behind the latch; a call that failed while reading a
        // page outside the latch ends without it.
        let latch = self
            .latch
            .take()
            .unwrap_or_else(|| Latch::take(self.core, LatchMode::Shared));
        // A session this call ended took its claim with it: wake its waiters regardless.
        let wake = match self.ended {
            false => self.entry.claim.release(),
            true => !self
                .core
                .options
                .mutations
                .is_active(crate::Mutant::EndedSessionWakesNoWaiter),
        };
        if wake {
            self.core.session_claims.released();
        }
        drop(self.pass.take());
        drop(latch);
    }
}

impl<R: Runtime> Drop for Jet<R> {
    /// Background threads hold their instance; stop them so a dropped `Jet` leaks no thread.
    fn drop(&mut self) {
        let cores: Vec<Arc<InstanceCore<R>>> = self
            .instances
            .read()
            .iter()
            .map(|(_, _, core)| Arc::clone(core))
            .collect();
        for core in cores {
            instance::stop_worker(&core);
        }
    }
}

/// Set-ups the engine's own unit tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{InstanceHandle, Jet};
    use crate::{Environment, InstanceOptions, Mutations, StdRuntime};
    use std::sync::Arc;
    use std::time::Duration;

    /// How long a test waits for a call that should not wait at all before it fails instead
    /// of hanging.
    pub(crate) const WATCHDOG: Duration = Duration::from_secs(120);

    /// A std engine on an in-memory disk with one initialized instance named `name` and no
    /// background thread: a test that holds a latch itself must not have the worker wait
    /// for the instance latch exclusively, which would hold back the shared takers it waits
    /// for.
    pub(crate) fn instance_without_worker(name: &str) -> (Arc<Jet<StdRuntime>>, InstanceHandle) {
        let jet = Arc::new(Jet::<StdRuntime>::new(Environment::in_memory()));
        let options = InstanceOptions {
            background_thread: false,
            mutations: Mutations::NONE,
        };
        let instance = jet.create_instance_with(name, options).unwrap();
        jet.init(instance).unwrap();
        (jet, instance)
    }
}
