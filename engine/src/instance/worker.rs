//! Background work of an instance: online defragmentation, version-store cleanup and the
//! checkpoint flusher.
//!
//! All of it is event-driven: the worker sleeps on a condition variable until a call or a
//! stop signals work, never on a timer (loom and shuttle do not model time). The same
//! [`run_round`] runs on the instance's background thread or, for instances created without
//! one, when the harness calls `Jet::run_background_tasks`.
//!
//! Defragmentation runs in small steps, each under the instance lock, and checks between steps
//! whether a stop asked it to park; a stop waits until the pass in progress has noticed. The
//! checkpoint flusher writes its pages holding no lock (see [`flush_checkpoint`]).

use crate::api::{SessionCall, CALL_RESTARTS_MAX};
use crate::error::JetResult;
use crate::instance::status::{CleanupStatus, DefragStatus};
use crate::instance::{InstanceCore, InstanceState};
use crate::runtime::sync::{unlatched, Condvar, LockRank, Mutex, RwLockWriteGuard};
use crate::runtime::Runtime;
use crate::storage::{
    Activity, DefragReport, FileId, FlushStart, FrameKey, StagedPages, Storage, WriteBackStart,
};
use crate::{Mutant, Mutations};
use std::collections::BTreeSet;

/// Upper bound on defrag steps in one round, so a round always ends and a shutdown or park is
/// noticed promptly even if every step finds work.
pub const DEFRAG_STEPS_PER_ROUND_MAX: u32 = 64;

/// What the worker is asked to do and what it has done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerState {
    /// Databases started with `defragment` (in addition to all of them when the
    /// `OnlineDefrag` parameter is on).
    pub defrag_started: BTreeSet<FileId>,
    /// Mirrors the `OnlineDefrag` parameter.
    pub defrag_parameter_on: bool,
    /// Set by a full stop or a `BackgroundUserTasks` partial stop.
    pub defrag_parked: bool,
    pub defrag_pass_active: bool,
    /// Deletes or a start may have left pages to merge.
    pub defrag_work_pending: bool,
    pub defrag_pages_freed: u64,
    pub defrag_steps: u64,
    pub cleanup_requested: bool,
    pub cleanup_runs: u64,
    pub flush_requested: bool,
    /// Target checkpoint depth is 0 (full stop or `QuiesceCaches`).
    pub caches_quiesced: bool,
    /// Background steps that failed (I/O); the durability work makes these fail-stop.
    pub background_errors: u64,
    pub shutdown: bool,
    pub round_active: bool,
    /// Write-back I/O out: a background batch's, or the checkpoint's that follows the
    /// batches (see `flush_checkpoint`), or a call's batch for room
    /// (`api::SessionCall::write_back_for_room`). See [`write_back_out`].
    pub write_backs_in_flight: u32,
}

impl WorkerState {
    pub fn defrag_status(&self) -> DefragStatus {
        if self.defrag_parked {
            DefragStatus::Parked
        } else if self.defrag_parameter_on || !self.defrag_started.is_empty() {
            DefragStatus::Running
        } else {
            DefragStatus::Off
        }
    }

    pub fn cleanup_status(&self) -> CleanupStatus {
        if self.cleanup_requested {
            CleanupStatus::Signalled
        } else {
            CleanupStatus::Idle
        }
    }

    fn defrag_has_work(&self) -> bool {
        self.defrag_status() == DefragStatus::Running && self.defrag_work_pending
    }

    fn has_work(&self) -> bool {
        self.cleanup_requested || self.flush_requested || self.defrag_has_work()
    }
}

/// The worker's shared state and its wake-up signal.
pub struct Worker<R: Runtime> {
    pub state: Mutex<R, WorkerState>,
    pub wake: Condvar<R>,
    pub thread: Mutex<R, Option<R::JoinHandle<()>>>,
}

impl<R: Runtime> Worker<R> {
    pub fn new() -> Self {
        Worker {
            state: Mutex::new(LockRank::WorkerState, WorkerState::default()),
            wake: Condvar::new(),
            thread: Mutex::new(LockRank::WorkerThread, None),
        }
    }

    /// Changes the worker's orders and wakes it.
    pub fn signal(&self, change: impl FnOnce(&mut WorkerState)) {
        let mut state = self.state.lock();
        change(&mut state);
        drop(state);
        self.wake.notify_all();
    }

    /// Adds work orders and wakes the thread only if they gave an idle worker something to
    /// do. Calls that write pass their orders on here each time; most find the orders already
    /// given (or nothing to ask), and a wake-up nobody needs is a shared write per call (and a
    /// scheduling point for the checkers). Only the thread sleeps on "has work"; the other
    /// waiters on `wake` wait for a round or pass to end, which `run_round` signals.
    pub fn request(&self, orders: impl FnOnce(&mut WorkerState)) {
        let mut state = self.state.lock();
        let had_work = state.has_work();
        orders(&mut state);
        let wake = !had_work && state.has_work();
        drop(state);
        if wake {
            self.wake.notify_all();
        }
    }

    pub fn snapshot(&self) -> WorkerState {
        self.state.lock().clone()
    }

    /// Parks defragmentation and waits until no defrag pass is running (a pass checks the
    /// park between its steps only). Returns the status before and after.
    pub fn park_defrag(
        &self,
        mutations: Mutations,
        marks: &crate::marks::Marks,
    ) -> (DefragStatus, DefragStatus) {
        let mut state = self.state.lock();
        let before = state.defrag_status();
        state.defrag_parked = true;
        // Planted bug: report defrag parked while its pass in progress still moves pages.
        let waits_for_pass = !mutations.is_active(Mutant::DefragParkSkipsPassInProgress);
        crate::mark!(marks, StopParkedDefragPass if waits_for_pass && state.defrag_pass_active);
        let state = self
            .wake
            .wait_while(state, |s| waits_for_pass && s.defrag_pass_active);
        let after = state.defrag_status();
        drop(state);
        self.wake.notify_all();
        (before, after)
    }
}

impl<R: Runtime> Default for Worker<R> {
    fn default() -> Self {
        Self::new()
    }
}

/// The background thread's body: sleep until there is work or shutdown, run a round, repeat.
pub fn thread_main<R: Runtime>(core: &InstanceCore<R>) {
    loop {
        {
            let state = core.worker.state.lock();
            let state = core
                .worker
                .wake
                .wait_while(state, |s| !s.shutdown && !s.has_work());
            if state.shutdown {
                return;
            }
        }
        run_round(core);
    }
}

/// One round of background work: a version cleanup if requested, a checkpoint flush if
/// requested, and up to [`DEFRAG_STEPS_PER_ROUND_MAX`] defrag steps. Returns whether anything
/// was done.
pub fn run_round<R: Runtime>(core: &InstanceCore<R>) -> bool {
    let Some(orders) = take_orders(core) else {
        return false;
    };
    let mut errors = 0u64;
    if orders.cleanup {
        clean_versions(core);
    }
    if orders.flush {
        errors += flush_checkpoint(core);
    }
    let defrag = if orders.defrag {
        defrag_pass(core)
    } else {
        DefragPass::default()
    };
    errors += defrag.errors;
    // Defrag dirties pages; if that pushed the checkpoint past its target, flush next round.
    let flush_next = defrag.steps > 0 && {
        let quiesced = core.worker.state.lock().caches_quiesced;
        // A look: the latches shared.
        let state = core.state.read();
        let target = checkpoint_target_bytes(quiesced, &state);
        let store = state.store.read();
        store
            .storage
            .as_ref()
            .is_some_and(|storage| storage.checkpoint_depth_bytes() > target)
    };
    let mut state = core.worker.state.lock();
    state.flush_requested |= flush_next;
    state.cleanup_runs += u64::from(orders.cleanup);
    if defrag.finished {
        state.defrag_work_pending = false;
    }
    state.defrag_pages_freed += defrag.pages_freed;
    state.defrag_steps += defrag.steps;
    state.background_errors += errors;
    state.defrag_pass_active = false;
    state.round_active = false;
    drop(state);
    // A stop may be waiting for the pass to end; the thread may have more to do.
    core.worker.wake.notify_all();
    orders.cleanup || orders.flush || defrag.steps > 0
}

/// What one round was asked to do.
struct Orders {
    cleanup: bool,
    flush: bool,
    defrag: bool,
}

/// Starts a round: takes the orders and marks the round (and the defrag pass, if any) active.
/// `None` when a round is already running or the worker is shutting down.
fn take_orders<R: Runtime>(core: &InstanceCore<R>) -> Option<Orders> {
    let mut state = core.worker.state.lock();
    if state.round_active || state.shutdown {
        // One round at a time: the thread and a manual tick never overlap.
        return None;
    }
    let orders = Orders {
        cleanup: state.cleanup_requested,
        flush: state.flush_requested,
        defrag: state.defrag_has_work(),
    };
    // Take the orders now, so a request that arrives during the round is kept for the
    // next one rather than cleared at the end of this one.
    state.cleanup_requested = false;
    state.flush_requested = false;
    state.round_active = true;
    state.defrag_pass_active = orders.defrag;
    Some(orders)
}

/// One version cleanup, beside calls: under the instance latch held shared and the
/// versions' latch held exclusively, as ESE's version-store cleanup runs beside sessions.
/// Sound beside every call the shared latch admits: cleanup drops only versions committed
/// at or before the oldest active snapshot, which no reader's visible value and no
/// writer's conflict check depends on, so a plan made before it is still right after it.
pub fn clean_versions<R: Runtime>(core: &InstanceCore<R>) -> u64 {
    let state = core.state.read();
    let removed = state.versions.write().version_store.cleanup();
    removed
}

/// The checkpoint depth the flusher aims at: none once a stop quiesced the caches, else the
/// instance's `checkpoint_depth_max_bytes`.
fn checkpoint_target_bytes<R: Runtime>(quiesced: bool, state: &InstanceState<R>) -> u64 {
    if quiesced {
        0
    } else {
        state.params.checkpoint_depth_max_bytes
    }
}

/// Flushes dirty pages until the checkpoint is within its target, then persists the
/// checkpoint. Returns the errors (0 or 1).
///
/// The pages are written in batches with no lock held: each batch is copied under the
/// instance latch held shared and the store latch held exclusively, as a call's write-back
/// for room is (so sessions that need only the instance latch, or other latches, go on
/// meanwhile), written and synced holding nothing (calls run meanwhile, and may change the
/// pages again), then ended under the same latches ([`crate::storage::WriteBackBatch`]).
/// While a batch's I/O is out, [`WorkerState::write_backs_in_flight`] counts it; a call that
/// writes pages back itself (a stop's flush, a detach, a smaller cache) waits for it first
/// ([`wait_for_write_back`]). The rarer steps are taken under the exclusive instance latch:
/// when the oldest dirty page waits for its log record, the log is flushed with no latch
/// held ([`flush_log_unlatched`]), and so is the checkpoint ([`persist_checkpoint_unlatched`]).
fn flush_checkpoint<R: Runtime>(core: &InstanceCore<R>) -> u64 {
    let quiesced = core.worker.state.lock().caches_quiesced;
    // Set once the log was flushed with no latch held for the oldest page: if the page waits
    // for its record again (changed meanwhile), the next flush is made under the latch, so
    // the round cannot chase a page that keeps changing.
    let mut log_flushed_unlatched = false;
    loop {
        match write_back_batch_shared(core, quiesced) {
            SharedWriteBack::Written => continue,
            SharedWriteBack::Failed => return 1,
            SharedWriteBack::Closed => return 0,
            SharedWriteBack::NoBatch => {}
        }
        let mut state = core.state.write();
        let target = checkpoint_target_bytes(quiesced, &state);
        let Some(storage) = state.store_mut().storage.as_mut() else {
            return 0;
        };
        storage.set_activity(Activity::CheckpointFlush);
        let started = storage.begin_write_back(target);
        let batch = match started {
            Ok(WriteBackStart::Batch(batch)) => batch,
            Ok(WriteBackStart::Shallow) => {
                return u64::from(persist_checkpoint_unlatched(core, state).is_err());
            }
            Ok(WriteBackStart::LogFirst) if log_flushed_unlatched => {
                let flushed = storage.flush_log();
                storage.set_activity(Activity::Call);
                if flushed.is_err() {
                    return 1;
                }
                continue;
            }
            Ok(WriteBackStart::LogFirst) => {
                log_flushed_unlatched = true;
                if flush_log_unlatched(core, state).is_err() {
                    return 1;
                }
                continue;
            }
            Err(_) => {
                storage.set_activity(Activity::Call);
                return 1;
            }
        };
        storage.set_activity(Activity::Call);
        let (written, mut state) =
            write_back_unlatched(core, state, || batch.write_and_sync(unlatched::<R>()));
        let storage = state
            .store_mut()
            .storage
            .as_mut()
            .expect("term waits for the round that wrote the batch");
        storage.set_activity(Activity::CheckpointFlush);
        let finished = storage.finish_write_back(batch, written);
        storage.set_activity(Activity::Call);
        if finished.is_err() {
            return 1;
        }
    }
}

/// What [`write_back_batch_shared`] did.
enum SharedWriteBack {
    /// A batch was written back and ended.
    Written,
    /// An I/O error (the storage is fail-stop now).
    Failed,
    /// No storage (term).
    Closed,
    /// No batch to write: the checkpoint is within its target, or the oldest dirty page
    /// waits for its log record; the caller decides under the exclusive latch.
    NoBatch,
}

/// One batch of the checkpoint flush under the shared latches: prepared and ended under the
/// instance latch held shared and the store latch held exclusively, written holding
/// nothing (the planted `WriteBackUnderLatch` keeps the latches across the I/O).
fn write_back_batch_shared<R: Runtime>(core: &InstanceCore<R>, quiesced: bool) -> SharedWriteBack {
    let under_latch = core
        .options
        .mutations
        .is_active(Mutant::WriteBackUnderLatch);
    let batch = {
        let state = core.state.read();
        let target = checkpoint_target_bytes(quiesced, &state);
        let mut store = state.store.write();
        let Some(storage) = store.storage.as_mut() else {
            return SharedWriteBack::Closed;
        };
        storage.set_activity(Activity::CheckpointFlush);
        let started = storage.begin_write_back(target);
        storage.set_activity(Activity::Call);
        let batch = match started {
            Ok(WriteBackStart::Batch(batch)) => batch,
            Ok(WriteBackStart::Shallow | WriteBackStart::LogFirst) => {
                return SharedWriteBack::NoBatch
            }
            Err(_) => return SharedWriteBack::Failed,
        };
        // Counted under the latch that prepared it: a stop's flush, under the exclusive
        // latch, waits for it from the moment its frames are in flight.
        write_back_began(core);
        if under_latch {
            // Planted bug: the write-back's I/O made holding the latches it was prepared
            // under.
            let written = batch.write_and_sync(unlatched::<R>());
            write_back_ended(core);
            return finish_batch(storage, batch, written);
        }
        batch
    };
    let written = batch.write_and_sync(unlatched::<R>());
    write_back_ended(core);
    let state = core.state.read();
    let mut store = state.store.write();
    let storage = store
        .storage
        .as_mut()
        .expect("term waits for the round that wrote the batch");
    finish_batch(storage, batch, written)
}

/// Ends a checkpoint-flush batch whose I/O ended with `written`.
fn finish_batch(
    storage: &mut crate::storage::Storage,
    batch: crate::storage::WriteBackBatch,
    written: JetResult<()>,
) -> SharedWriteBack {
    storage.set_activity(Activity::CheckpointFlush);
    let finished = storage.finish_write_back(batch, written);
    storage.set_activity(Activity::Call);
    match finished {
        Ok(_) => SharedWriteBack::Written,
        Err(_) => SharedWriteBack::Failed,
    }
}

/// Makes the log durable for the flusher, holding no latch while it is written: a group-commit
/// flush of everything appended so far, which committers waiting meanwhile share
/// ([`crate::storage::LogFlush`]). If a committer's flush is already in flight, the log is
/// flushed under the latch instead (it covers what that flush does not). Called with the
/// storage's activity set to the checkpoint flush; leaves it set to calls.
fn flush_log_unlatched<R: Runtime>(
    core: &InstanceCore<R>,
    mut state: RwLockWriteGuard<'_, R, InstanceState<R>>,
) -> JetResult<()> {
    let storage = state.storage_mut()?;
    let flush = match storage.begin_log_flush_all() {
        Ok(FlushStart::Started(flush)) => flush,
        started => {
            let flushed = match started {
                Ok(FlushStart::InFlight) => storage.flush_log(),
                other => other.map(|_| ()),
            };
            storage.set_activity(Activity::Call);
            return flushed;
        }
    };
    // Calls run while the log is written: their failures are theirs.
    storage.set_activity(Activity::Call);
    drop(state);
    let written = flush.write_and_sync(unlatched::<R>());
    let mut state = core.state.write();
    let storage = state
        .storage_mut()
        .expect("term waits for the round that flushed the log");
    core.end_log_flush(storage, &flush, written, Activity::CheckpointFlush)
}

/// Lets go of the instance latch, runs `io` (a write-back's writes and syncs) with
/// [`WorkerState::write_backs_in_flight`] counting it, so a call that writes pages back or persists
/// a checkpoint waits for it ([`wait_for_write_back`]), then takes the latch again.
fn write_back_unlatched<'c, R: Runtime, T>(
    core: &'c InstanceCore<R>,
    state: RwLockWriteGuard<'c, R, InstanceState<R>>,
    io: impl FnOnce() -> T,
) -> (T, RwLockWriteGuard<'c, R, InstanceState<R>>) {
    write_back_began(core);
    // Planted bug: the write-back's I/O made holding the exclusive instance latch.
    let kept = match core
        .options
        .mutations
        .is_active(Mutant::WriteBackUnderLatch)
    {
        true => Some(state),
        false => {
            drop(state);
            None
        }
    };
    let result = io();
    write_back_ended(core);
    (result, kept.unwrap_or_else(|| core.state.write()))
}

/// Counts a write-back's I/O (a batch's writes and syncs, or a checkpoint's) as out, in
/// [`WorkerState::write_backs_in_flight`], so a call that writes pages back itself or
/// persists a checkpoint waits for it first ([`wait_for_write_back`]). Called under the
/// latch the write-back was prepared under, before it is let go.
pub(crate) fn write_back_began<R: Runtime>(core: &InstanceCore<R>) {
    core.worker.state.lock().write_backs_in_flight += 1;
}

/// A write-back's I/O counted by [`write_back_began`] has ended (well or not).
pub(crate) fn write_back_ended<R: Runtime>(core: &InstanceCore<R>) {
    core.worker.signal(|w| w.write_backs_in_flight -= 1);
}

/// Persists the checkpoint with no latch held while its files are synced and its slot
/// written: prepared under the latch, written holding nothing with
/// [`WorkerState::write_backs_in_flight`] counting it (a stop's flush waits for it, so the stop's
/// own checkpoint, prepared after this one, is the newer in its slot and on the disk),
/// ended under the latch. Called with the storage's activity set to the checkpoint flush;
/// leaves it set to calls.
fn persist_checkpoint_unlatched<'c, R: Runtime>(
    core: &'c InstanceCore<R>,
    mut state: RwLockWriteGuard<'c, R, InstanceState<R>>,
) -> JetResult<()> {
    let storage = state.storage_mut()?;
    let persist = storage.begin_checkpoint_persist();
    storage.set_activity(Activity::Call);
    let persist = persist?;
    let (written, mut state) =
        write_back_unlatched(core, state, || persist.write_and_sync(unlatched::<R>()));
    let storage = state
        .storage_mut()
        .expect("term waits for the round that persisted the checkpoint");
    storage.set_activity(Activity::CheckpointFlush);
    let finished = storage.finish_checkpoint_persist(persist, written);
    storage.set_activity(Activity::Call);
    finished
}

/// Waits, holding the instance latch exclusively, until no background write-back's I/O is
/// out: a call that writes pages back must not write a newer image of a page before a
/// batch's older one reaches the disk. The batch's I/O takes no lock, so the wait ends.
pub(crate) fn wait_for_write_back<R: Runtime>(core: &InstanceCore<R>) {
    let worker = core.worker.state.lock();
    drop(
        core.worker
            .wake
            .wait_while(worker, |w| w.write_backs_in_flight > 0),
    );
}

/// What a round's defrag steps did.
#[derive(Default)]
struct DefragPass {
    pages_freed: u64,
    steps: u64,
    errors: u64,
    /// Nothing is left to merge (or nothing may be logged any more): the pass is over.
    finished: bool,
}

/// Up to [`DEFRAG_STEPS_PER_ROUND_MAX`] defrag steps, each beside calls
/// ([`defrag_step_beside_calls`]), checking before each whether a stop parked defrag or the
/// worker is shutting down.
fn defrag_pass<R: Runtime>(core: &InstanceCore<R>) -> DefragPass {
    let mut pass = DefragPass::default();
    for _ in 0..DEFRAG_STEPS_PER_ROUND_MAX {
        let targets = {
            let worker = core.worker.state.lock();
            if worker.defrag_parked || worker.shutdown {
                break;
            }
            worker.defrag_started.clone()
        };
        let step = match defrag_step_beside_calls(core, &targets) {
            Some(step) => step,
            None => defrag_step_exclusively(core, &targets),
        };
        pass.errors += step.errors;
        match step.merged {
            Some(pages_freed) => {
                pass.pages_freed += pages_freed;
                pass.steps += 1;
            }
            None => {
                pass.finished = true;
                break;
            }
        }
    }
    pass
}

/// What one defrag step did: the pages it freed, if it merged anything (`None`: nothing is
/// left to merge, or nothing may be logged any more), and the files whose step failed.
struct DefragStep {
    merged: Option<u64>,
    errors: u64,
}

impl DefragStep {
    /// No merge: the pass is over (nothing left to merge, nothing may be logged, or the
    /// storage failed).
    fn over(errors: u64) -> Self {
        DefragStep {
            merged: None,
            errors,
        }
    }
}

/// The files a defrag step works on: every attached database under online defrag, else
/// those a `JetDefragment` started.
fn defrag_files<R: Runtime>(state: &InstanceState<R>, targets: &BTreeSet<FileId>) -> Vec<FileId> {
    let files = state.databases.iter().map(|(_, _, db)| db.file);
    match state.params.online_defrag {
        true => files.collect(),
        false => files.filter(|file| targets.contains(file)).collect(),
    }
}

/// What a defrag step's plan found under the shared latches.
enum DefragPlan {
    /// A step staged on a file, to install.
    Staged(DefragReport, StagedPages),
    /// A page the plan needs is not cached.
    Missed(FrameKey),
    /// Nothing to merge in any file (or the log is stopped for good).
    Nothing,
}

/// Stages a step on the first of `files` with something to merge, through the cache alone
/// (the caller holds the store latch shared). Returns the plan and how many files' staging
/// failed on the way.
fn plan_defrag_step(storage: &Storage, files: Vec<FileId>) -> (DefragPlan, u64) {
    // A page move must be logged; after StopAndEmitLog nothing is, for good: the pass is
    // over (left pending, the thread would spin on it for ever). The log is stopped only
    // under the exclusive instance latch, so it stays as seen until the install.
    if storage.log_is_stopped() {
        return (DefragPlan::Nothing, 0);
    }
    let mut errors = 0;
    for file in files {
        let mut missed = None;
        match storage.stage_defrag_step(file, &mut missed) {
            Ok(Some((report, staged))) => return (DefragPlan::Staged(report, staged), errors),
            Ok(None) => {}
            Err(_) => match missed {
                Some(key) => return (DefragPlan::Missed(key), errors),
                None => errors += 1,
            },
        }
    }
    (DefragPlan::Nothing, errors)
}

/// One defrag step beside calls, as ESE's online defragmentation runs beside sessions: the
/// step is staged under the instance latch and the store latch held shared (readers and
/// writers go on meanwhile), then installed under the store latch held exclusively if no
/// page it read changed, exactly as a record write is (a page not cached is read with no
/// latch held, and a step short of clean frames makes its room first; either way it is
/// planned again). A step moves records between pages but changes no record's value and
/// no version, so it needs neither the versions' latch nor a record's checks; DDL, attach
/// and detach take the instance latch exclusively, so the set of files and tables cannot
/// change under the shared latch. `None` when [`CALL_RESTARTS_MAX`] plans were all refused
/// at their install, for the caller to make the step under the exclusive latch (so a step
/// that keeps losing races still ends).
fn defrag_step_beside_calls<R: Runtime>(
    core: &InstanceCore<R>,
    targets: &BTreeSet<FileId>,
) -> Option<DefragStep> {
    let revalidates = !core
        .options
        .mutations
        .is_active(Mutant::DefragStepNotRevalidated);
    for _ in 0..CALL_RESTARTS_MAX {
        let state = core.state.read();
        let files = defrag_files(&state, targets);
        let (plan, errors) = match state.store.read().storage.as_ref() {
            Some(storage) => plan_defrag_step(storage, files),
            None => return Some(DefragStep::over(0)),
        };
        let (report, mut staged) = match plan {
            DefragPlan::Staged(report, staged) => (report, staged),
            DefragPlan::Nothing => return Some(DefragStep::over(errors)),
            DefragPlan::Missed(key) => {
                drop(state);
                if SessionCall::<R>::read_missed(core, key, Activity::DefragPass).is_err() {
                    // The storage failed: the pass ends; calls report the failure.
                    return Some(DefragStep::over(errors + 1));
                }
                continue;
            }
        };
        staged.encode();
        let mut store = state.store.write();
        let Some(storage) = store.storage.as_mut() else {
            return Some(DefragStep::over(errors));
        };
        // Planted bug: the step installed whatever changed since its plan.
        if revalidates && !storage.staged_is_current(&staged) {
            continue;
        }
        if !storage.staged_have_clean_room(std::slice::from_ref(&staged)) {
            let wanted = storage.take_room_wanted();
            drop(store);
            drop(state);
            if wanted > 0
                && SessionCall::<R>::write_back_for_room(core, wanted, Activity::DefragPass)
                    .is_err()
            {
                return Some(DefragStep::over(errors + 1));
            }
            continue;
        }
        storage.set_activity(Activity::DefragPass);
        let installed = storage.install_staged(staged);
        storage.set_activity(Activity::Call);
        return Some(match installed {
            Ok(()) => DefragStep {
                merged: Some(report.pages_freed),
                errors,
            },
            Err(_) => DefragStep::over(errors + 1),
        });
    }
    None
}

/// One defrag step under the exclusive instance latch: the fallback of a step that lost
/// [`CALL_RESTARTS_MAX`] races beside calls.
fn defrag_step_exclusively<R: Runtime>(
    core: &InstanceCore<R>,
    targets: &BTreeSet<FileId>,
) -> DefragStep {
    let mut state = core.state.write();
    let files = defrag_files(&state, targets);
    let mut step = DefragStep::over(0);
    let Some(storage) = state.store_mut().storage.as_mut() else {
        return step;
    };
    if storage.log_is_stopped() {
        return step;
    }
    storage.set_activity(Activity::DefragPass);
    for file in files {
        match storage.defrag_step(file) {
            Ok(Some(report)) => {
                step.merged = Some(report.pages_freed);
                break;
            }
            Ok(None) => {}
            Err(_) => step.errors += 1,
        }
    }
    storage.set_activity(Activity::Call);
    step
}

#[cfg(test)]
mod tests {
    use super::clean_versions;
    use crate::api::test_support::{instance_without_worker, WATCHDOG};
    use std::sync::{mpsc, Arc};

    /// A version cleanup runs beside calls: it completes while a call holds the instance
    /// latch shared (here, the test thread in a transaction's place), where a cleanup under
    /// the exclusive latch would wait for every call in the instance to leave it.
    #[test]
    fn a_version_cleanup_runs_while_a_call_holds_the_instance_latch_shared() {
        let (jet, instance) = instance_without_worker("cleanup");
        let core = jet.core(instance).unwrap();
        let state = core.state.read();
        let (done, finished) = mpsc::channel();
        let cleaner = {
            let core = Arc::clone(&core);
            std::thread::spawn(move || done.send(clean_versions(&core)).unwrap())
        };
        let removed = finished
            .recv_timeout(WATCHDOG)
            .expect("the cleanup waited for the shared instance latch");
        assert_eq!(removed, 0, "a fresh instance has no versions");
        drop(state);
        cleaner.join().unwrap();
    }
}
