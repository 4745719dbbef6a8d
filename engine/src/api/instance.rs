//! Instance lifecycle calls: create, init, term, system parameters, and the status and
//! background hooks harnesses use.

use super::calls::JetCall;
use super::handles::InstanceHandle;
use super::Jet;
use crate::error::{JetError, JetResult};
use crate::instance::gate::{Phase, TermEntry};
use crate::instance::mutations::Mutant;
use crate::instance::params::{InstanceOptions, SystemParameter};
use crate::instance::slots::Slots;
use crate::instance::status::{InstanceStatus, StopRecord};
use crate::instance::{worker, InstanceCore};
use crate::runtime::sync::{assert_no_shared_latch_io, Thread};
use crate::runtime::Runtime;
use crate::storage::{Failure, RecoveryReport, Storage};
use crate::transaction::VersionStore;
use std::sync::Arc;

/// `JetTerm2` grbits.
pub mod term_grbit {
    /// `JET_bitTermComplete`.
    pub const COMPLETE: u32 = 0x1;
    /// `JET_bitTermAbrupt` (what `JetTerm` uses).
    pub const ABRUPT: u32 = 0x2;
    /// `JET_bitTermStopBackup`: accepted; jetsim has no backup to stop.
    pub const STOP_BACKUP: u32 = 0x4;
    /// `JET_bitTermDirty`: skip the clean shutdown; recovery runs at the next init.
    pub const DIRTY: u32 = 0x8;
    pub const ALL: u32 = COMPLETE | ABRUPT | STOP_BACKUP | DIRTY;
}

/// How a successful term ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermOutcome {
    /// Everything flushed; the next init finds a clean database.
    Clean,
    /// `JET_bitTermDirty`: ESE returns `JET_errDirtyShutdown` (-1116) and the instance is gone.
    /// The log was flushed, so committed transactions are durable in it.
    DirtyShutdown,
}

impl TermOutcome {
    /// The code ESE returns for this outcome.
    pub fn jet_code(self) -> i32 {
        match self {
            TermOutcome::Clean => crate::error::SUCCESS,
            TermOutcome::DirtyShutdown => JetError::DirtyShutdown.code(),
        }
    }
}

/// Longest instance name; names become the folder of the instance's log.
pub const INSTANCE_NAME_BYTES_MAX: usize = 64;

fn valid_instance_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= INSTANCE_NAME_BYTES_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && name != "."
        && name != ".."
}

impl<R: Runtime> Jet<R> {
    /// `JetCreateInstance` with a background thread.
    pub fn create_instance(&self, name: &str) -> JetResult<InstanceHandle> {
        self.create_instance_with(name, InstanceOptions::default())
    }

    /// `JetCreateInstance` with explicit options.
    pub fn create_instance_with(
        &self,
        name: &str,
        options: InstanceOptions,
    ) -> JetResult<InstanceHandle> {
        if !valid_instance_name(name) {
            return Err(JetError::InvalidName);
        }
        let mut instances = self.instances.write();
        if instances.iter().any(|(_, _, core)| core.name == name) {
            return Err(JetError::InstanceNameInUse);
        }
        let generation = self.next_generation();
        // The handle needs the slot before the core exists: reserve, then fill.
        let probe = instances
            .next_free_slot()
            .ok_or(JetError::TooManyInstances)?;
        let handle = InstanceHandle::new(
            u8::try_from(probe).map_err(|_| JetError::TooManyInstances)?,
            0,
            generation,
        );
        let core = Arc::new(InstanceCore::new(
            name.to_owned(),
            handle,
            options,
            self.env.clone(),
        ));
        let slot = instances
            .insert(generation, core)
            .ok_or(JetError::TooManyInstances)?;
        assert_eq!(slot, probe, "slot table changed under its lock");
        Ok(handle)
    }

    /// `JetInit`: opens (or creates) the instance's log and checkpoint, recovers the databases
    /// the log names (redo from the checkpoint, undo of transactions that never committed;
    /// see [`crate::storage::recovery`]), and starts the background worker. On failure
    /// (e.g. `DiskIO` during recovery) the instance is still created-but-not-initialized and
    /// init may be retried: recovery is restartable.
    pub fn init(&self, instance: InstanceHandle) -> JetResult<()> {
        let core = self.core(instance)?;
        core.gate.begin_init()?;
        let planted = |mutant| core.options.mutations.is_active(mutant);
        let opened = {
            let mut state = core.state.write();
            let cache_size_pages =
                usize::try_from(state.params.cache_size_pages).unwrap_or(usize::MAX);
            match Storage::open_salted(
                core.env.io.as_ref(),
                &core.log_path(),
                &core.checkpoint_path(),
                cache_size_pages,
                core.env.clock.now_micros(),
                !planted(Mutant::LogChecksumIgnored),
            ) {
                Ok(mut storage) => {
                    storage.set_wal_flush_skipped(planted(Mutant::PageBeforeLog));
                    storage.set_next_tries_one_child(planted(Mutant::NextStopsAtLeafEnd));
                    storage.set_checkpoint_from_newest_dirty_page(planted(
                        Mutant::CheckpointFromNewestDirtyPage,
                    ));
                    storage.set_overtaken_reads_installed(planted(Mutant::OvertakenReadInstalled));
                    storage.set_operations_logged_per_page(planted(Mutant::OperationLoggedPerPage));
                    storage
                        .set_frames_in_flight_evicted(planted(Mutant::FrameEvictedDuringWriteBack));
                    storage.set_writes_beside_write_back(
                        planted(Mutant::StopFlushBesideWriteBack)
                            || planted(Mutant::DetachBesideWriteBack),
                    );
                    storage
                        .set_term_checkpoint_skipped(planted(Mutant::TermCheckpointNotPersisted));
                    storage.set_group_flush_end_rewinds(planted(Mutant::GroupFlushEndRewindsLog));
                    storage.set_detach_leaves_dirty(planted(Mutant::DetachLeavesDatabaseDirty));
                    storage.set_detach_record_not_flushed(planted(Mutant::DetachRecordNotFlushed));
                    storage.set_merge_separator_wrong(planted(Mutant::InternalMergeWrongSeparator));
                    storage.set_marks(core.marks.clone());
                    storage.set_latched_io_check(assert_no_shared_latch_io::<R>);
                    storage.set_rank_hooks(crate::runtime::sync::RankHooks::of::<R>());
                    state.storage_failed = Some(storage.failed_flag());
                    state.store_mut().storage = Some(storage);
                    state.versions_mut().version_store = VersionStore::in_memory_of(
                        state.params.version_store_max_versions,
                        Arc::clone(&core.env.version_memory),
                        core.handle,
                    );
                    state
                        .versions_mut()
                        .version_store
                        .set_chain_walk_repeats_key(planted(Mutant::ChainWalkRepeatsKey));
                    state
                        .versions_mut()
                        .version_store
                        .set_nested_commit_moves_newest_only(planted(
                            Mutant::NestedCommitMovesNewestVersionOnly,
                        ));
                    state
                        .versions_mut()
                        .version_store
                        .set_one_over_limit(planted(Mutant::VersionStoreOneOverLimit));
                    debug_assert!(
                        state.versions_mut().logged_commits.is_empty(),
                        "term emptied it"
                    );
                    Ok(())
                }
                Err(error) => Err(error),
            }
        };
        if opened.is_ok() {
            let online_defrag = core.state.write().params.online_defrag;
            core.worker.signal(|w| {
                w.defrag_parameter_on = online_defrag;
                w.defrag_work_pending = online_defrag;
            });
            if core.options.background_thread {
                let thread_core = Arc::clone(&core);
                let handle = Thread::<R>::spawn(move || worker::thread_main(&thread_core));
                *core.worker.thread.lock() = Some(handle);
            }
        }
        core.gate.finish_init(opened.is_ok());
        opened
    }

    /// `JetTerm`: `term2` with `JET_bitTermAbrupt`.
    pub fn term(&self, instance: InstanceHandle) -> JetResult<TermOutcome> {
        self.term2(instance, term_grbit::ABRUPT)
    }

    /// `JetTerm2`. Waits for a stop in progress and for every call in flight; with
    /// transactions open (and no `Dirty`) returns `TooManyActiveUsers` and the instance lives
    /// on unchanged. Otherwise the instance is gone and its handles are stale. A fail-stop
    /// instance (after an I/O error) terminates without writing anything, open transactions
    /// or not, with `DirtyShutdown`: recovery at the next init finishes the job.
    pub fn term2(&self, instance: InstanceHandle, grbit: u32) -> JetResult<TermOutcome> {
        let core = self.core(instance)?;
        if grbit & !term_grbit::ALL != 0 {
            return Err(JetError::InvalidGrbit);
        }
        let dirty = grbit & term_grbit::DIRTY != 0;
        loop {
            core.gate.wait_for_term_window()?;
            match core.gate.begin_term()? {
                TermEntry::Retry => {
                    crate::mark!(core.marks, TermRacedStop);
                    continue;
                }
                TermEntry::Proceed => break,
                TermEntry::Decide => {
                    // Nothing is in flight and new calls wait at the gate, so what term sees
                    // here cannot go stale before the gate closes. ESE's term with
                    // transactions open returns JET_errTooManyActiveUsers and the instance
                    // lives on.
                    let mut state = core.state.write();
                    let failed = Self::check_available(state.store_mut()).is_err();
                    let open = !failed
                        && state
                            .sessions
                            .get_mut()
                            .iter()
                            .any(|(_, _, s)| s.transaction.get().is_some());
                    drop(state);
                    let refusal = (open && !dirty).then_some(JetError::TooManyActiveUsers);
                    crate::mark!(core.marks, TermRefusedActiveUsers if refusal.is_some());
                    core.gate.decide_term(refusal)?;
                    break;
                }
            }
        }
        core.gate.drain_for_term();
        stop_worker(&core);
        let mut failed = false;
        let leaked_commits;
        let shutdown = {
            let mut state = core.state.write();
            *state.cursors.get_mut() = Slots::new(crate::instance::CURSORS_MAX);
            *state.sessions.get_mut() = Slots::new(crate::instance::SESSIONS_MAX);
            state.databases = Slots::new(crate::instance::DATABASES_MAX);
            // Every committer published its commit or removed its entry before it left, and
            // term waited for them all: checked once the gate confirms nothing is in flight.
            leaked_commits = std::mem::take(&mut state.versions_mut().logged_commits);
            state.storage_failed = None;
            match state.store_mut().storage.take() {
                // Fail-stop: write nothing more; the next init recovers.
                Some(storage) if storage.failure().is_some() => {
                    failed = true;
                    Ok(())
                }
                Some(mut storage) if !dirty => {
                    let trusts_stop_flush = core
                        .options
                        .mutations
                        .is_active(Mutant::TermTrustsStopFlush)
                        && core.worker.state.lock().caches_quiesced;
                    if trusts_stop_flush {
                        storage.forget_dirty_pages();
                    }
                    storage.shutdown_clean()
                }
                Some(mut storage) => storage.flush_log(),
                None => Ok(()),
            }
        };
        core.gate.finish_term();
        debug_assert!(
            leaked_commits.is_empty(),
            "logged commits left unpublished at term: {leaked_commits:?}"
        );
        let parts = instance.parts().expect("resolved above");
        // Bound apart so the core is dropped after the table's lock, never inside it.
        let removed = self
            .instances
            .write()
            .remove(u16::from(parts.instance_slot), parts.generation);
        drop(removed);
        self.release_databases_of(instance);
        shutdown?;
        Ok(if dirty || failed {
            TermOutcome::DirtyShutdown
        } else {
            TermOutcome::Clean
        })
    }

    /// The instance's coverage marks (a shared handle: it keeps counting, and stays readable
    /// after term). Not a Jet call. Empty without the `marks` feature.
    pub fn marks(&self, instance: InstanceHandle) -> JetResult<crate::marks::Marks> {
        Ok(self.core(instance)?.marks.clone())
    }

    /// `JetGetSystemParameter`: under the instance latch held shared (parameters change
    /// only under it held exclusively).
    pub fn get_system_parameter(
        &self,
        instance: InstanceHandle,
        parameter: SystemParameter,
    ) -> JetResult<u64> {
        let core = self.core(instance)?;
        let (_pass, state) = Self::enter_instance_shared(&core, JetCall::GetSystemParameter)?;
        Ok(state.params.get(parameter))
    }

    /// `JetSetSystemParameter`. Still allowed after a stop, as in ESE; setting `OnlineDefrag`
    /// then does not unpark defragmentation.
    pub fn set_system_parameter(
        &self,
        instance: InstanceHandle,
        parameter: SystemParameter,
        value: u64,
    ) -> JetResult<()> {
        let core = self.core(instance)?;
        let _pass = Self::enter_instance(&core, JetCall::SetSystemParameter)?;
        let initialized = core.gate.phase() != Phase::Created;
        {
            let mut state = core.state.write();
            Self::check_available(state.store_mut())?;
            let next = state.params.with(parameter, value, initialized)?;
            if parameter == SystemParameter::CacheSizePages {
                crate::instance::worker::wait_for_write_back(&core);
                if let Some(storage) = state.store_mut().storage.as_mut() {
                    storage.set_cache_size_pages(usize::try_from(value).unwrap_or(usize::MAX))?;
                }
            }
            if parameter == SystemParameter::VersionStoreMaxVersions {
                state.versions_mut().version_store.set_max_versions(value);
            }
            state.params = next;
        }
        if parameter == SystemParameter::OnlineDefrag && initialized {
            let unparks = core
                .options
                .mutations
                .is_active(Mutant::DefragParameterUnparks);
            core.worker.signal(|w| {
                w.defrag_parameter_on = value == 1;
                w.defrag_work_pending |= value == 1;
                // Planted bug `DefragParameterUnparks`: the parameter undoes the stop's park.
                if unparks && value == 1 {
                    w.defrag_parked = false;
                }
            });
        }
        Ok(())
    }

    /// Status for tests, the simulator and snapshots. Not a Jet call: never gated.
    pub fn instance_status(&self, instance: InstanceHandle) -> JetResult<InstanceStatus> {
        let core = self.core(instance)?;
        Ok(status_of(&core))
    }

    /// What recovery did at this instance's init (`None` before init). A clean previous
    /// shutdown gives a report with `clean` set and nothing replayed.
    pub fn last_recovery_report(
        &self,
        instance: InstanceHandle,
    ) -> JetResult<Option<RecoveryReport>> {
        let core = self.core(instance)?;
        let mut state = core.state.write();
        Ok(state
            .store_mut()
            .storage
            .as_ref()
            .map(|storage| storage.recovery_report().clone()))
    }

    /// The I/O error that made the instance fail-stop, if any, and whether a call or a
    /// background task (which has no caller to tell) met it. Not a Jet call: never gated.
    pub fn instance_failure(&self, instance: InstanceHandle) -> JetResult<Option<Failure>> {
        let core = self.core(instance)?;
        let failure = core
            .state
            .write()
            .store_mut()
            .storage
            .as_ref()
            .and_then(|storage| storage.failure());
        Ok(failure)
    }

    /// What the last successful stop (or partial stop, or resume) did.
    pub fn last_stop_record(&self, instance: InstanceHandle) -> JetResult<Option<StopRecord>> {
        let core = self.core(instance)?;
        let record = core.state.write().last_stop.clone();
        Ok(record)
    }

    /// Runs one round of background work now (for instances created without a background
    /// thread). Returns whether anything was done.
    pub fn run_background_tasks(&self, instance: InstanceHandle) -> JetResult<bool> {
        let core = self.core(instance)?;
        let _pass = Self::enter_instance(&core, JetCall::SetSystemParameter)?;
        if core.gate.phase() == Phase::Created {
            return Err(JetError::NotInitialized);
        }
        Ok(worker::run_round(&core))
    }
}

/// Shuts the background worker down and waits for it (thread joined, manual round finished).
pub(crate) fn stop_worker<R: Runtime>(core: &InstanceCore<R>) {
    core.worker.signal(|w| w.shutdown = true);
    let thread = core.worker.thread.lock().take();
    if let Some(thread) = thread {
        // A panic on the worker thread is an engine bug; surface it to the caller's thread.
        if let Err(panic) = R::join(thread) {
            std::panic::resume_unwind(panic);
        }
    }
    let state = core.worker.state.lock();
    drop(core.worker.wake.wait_while(state, |w| w.round_active));
}

// Same shape as `Storage::stats` (copy the counters of the layers below into one report);
// nothing to share: each copies different fields into its own type.
pub(crate) fn status_of<R: Runtime>(core: &InstanceCore<R>) -> InstanceStatus {
    let gate = core.gate.status();
    let worker = core.worker.snapshot();
    let mut state = core.state.write();
    let (sessions, open_tables, attached_databases) = (
        state.sessions.get_mut().len() as u64,
        state.cursors.get_mut().len() as u64,
        state.databases.len() as u64,
    );
    let vs = state.versions_mut().version_store.stats();
    let storage = state.store_mut().storage.as_ref();
    InstanceStatus {
        phase: gate.phase,
        gated_calls_in_flight: gate.gated_in_flight,
        ungated_calls_in_flight: gate.ungated_in_flight,
        stops_that_waited: gate.stops_that_waited,
        refused_after_stop: gate.refused_after_stop,
        defrag: worker.defrag_status(),
        defrag_pages_freed: worker.defrag_pages_freed,
        version_cleanup: worker.cleanup_status(),
        version_cleanup_runs: worker.cleanup_runs,
        versions: vs.versions,
        sessions,
        open_transactions: vs.active_transactions,
        open_tables,
        attached_databases,
        dirty_pages: storage.map_or(0, |s| s.dirty_page_count()),
        checkpoint_depth_bytes: storage.map_or(0, |s| s.checkpoint_depth_bytes()),
        log_tip_lsn: storage.map_or(0, |s| s.tip_lsn()),
        checkpoint_lsn: storage.map_or(0, |s| s.checkpoint_lsn()),
        caches_quiesced: worker.caches_quiesced,
        background_errors: worker.background_errors,
    }
}
