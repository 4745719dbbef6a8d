//! `JetStopServiceInstance` and `JetStopServiceInstance2`, done better than ESE.
//!
//! 1. Validate (handle, grbit, phase) before any side effect: a failed stop changes nothing.
//! 2. Close the gate and wait until the gated calls in flight have left
//!    ([`crate::instance::gate::Gate::begin_stop`]).
//! 3. Park online defrag (waiting for a pass in progress), clean up the version store,
//!    quiesce the checkpoint (flush every dirty page; the checkpoint reaches the log tip).
//!
//! ESE only signals its version-store cleanup task here. jetsim runs one cleanup pass
//! inside the stop (after the drain, so no gated call can add a version behind it) and also
//! signals the background's cleanup as ESE does: when the stop returns, the store holds only
//! versions an open transaction can still need, which a harness can check from the memory
//! the store takes from its environment ([`crate::env::VersionMemory`]).
//! 4. Mark the instance stopped, record what was done, return.
//!
//! Stops, partial stops and resumes are serialised by the instance's stop lock, so a resume
//! can never unpark what a concurrent full stop has just parked.

use super::calls::JetCall;
use super::handles::InstanceHandle;
use super::session::publish_durable_commits;
use super::{Jet, SessionCall};
use crate::error::{JetError, JetResult};
use crate::instance::gate::{Phase, StopEntry};
use crate::instance::mutations::Mutant;
use crate::instance::status::{StopRecord, StopStep};
use crate::instance::InstanceCore;
use crate::runtime::Runtime;
use crate::storage::Activity;

/// `JetStopServiceInstance2` grbits.
pub mod stop_grbit {
    /// `JET_bitStopServiceAll`: the full stop.
    pub const ALL: u32 = 0x0;
    /// `JET_bitStopServiceBackgroundUserTasks`: pause online defrag only.
    pub const BACKGROUND_USER_TASKS: u32 = 0x2;
    /// `JET_bitStopServiceQuiesceCaches`: flush dirty pages only.
    pub const QUIESCE_CACHES: u32 = 0x4;
    /// `JET_bitStopServiceStopAndEmitLog`: end logging and emit the end-of-log-stream
    /// marker. Valid only on its own.
    pub const STOP_AND_EMIT_LOG: u32 = 0x8;
    /// `JET_bitStopServiceResume`: undo a partial stop.
    pub const RESUME: u32 = 0x8000_0000;
    pub const KNOWN: u32 = BACKGROUND_USER_TASKS | QUIESCE_CACHES | STOP_AND_EMIT_LOG | RESUME;
}

impl<R: Runtime> Jet<R> {
    /// `JetStopServiceInstance`: the full stop.
    pub fn stop_service_instance(&self, instance: InstanceHandle) -> JetResult<()> {
        self.stop_service_instance2(instance, stop_grbit::ALL)
    }

    /// `JetStopServiceInstance2`.
    pub fn stop_service_instance2(&self, instance: InstanceHandle, grbit: u32) -> JetResult<()> {
        let core = self.core(instance)?;
        if core
            .options
            .mutations
            .is_active(Mutant::DefragStoppedBeforeValidation)
        {
            // Planted bug: a side effect before validation.
            core.worker.park_defrag(core.options.mutations, &core.marks);
        }
        // ESE (`JetStopServiceInstanceEx`): unknown bits are InvalidGrbit, and so is
        // StopAndEmitLog with any other bit (Resume included: it cannot be undone).
        let emit_log = grbit & stop_grbit::STOP_AND_EMIT_LOG != 0;
        if grbit & !stop_grbit::KNOWN != 0 || (emit_log && grbit != stop_grbit::STOP_AND_EMIT_LOG) {
            return Err(JetError::InvalidGrbit);
        }
        // Planted bug `ConcurrentStopReturnsEarly` lets stops run side by side.
        let _serial = (!core
            .options
            .mutations
            .is_active(Mutant::ConcurrentStopReturnsEarly))
        .then(|| core.stop_lock.lock());
        let started_at_micros = core.env.clock.now_micros();
        let steps = if grbit & stop_grbit::RESUME != 0 {
            resume(&core, grbit)?
        } else if emit_log {
            vec![stop_and_emit_log(&core)?]
        } else if grbit == stop_grbit::ALL {
            match full_stop(&core)? {
                Some(steps) => steps,
                // A second stop: success, nothing more to do, nothing recorded.
                None => return Ok(()),
            }
        } else {
            partial_stop(&core, grbit)?
        };
        let record = StopRecord {
            grbit,
            steps,
            started_at_micros,
            finished_at_micros: core.env.clock.now_micros(),
        };
        let mut state = core.state.write();
        state.last_stop = Some(record);
        state.stops_completed += 1;
        Ok(())
    }
}

/// The full stop. `None` when an earlier stop already completed.
fn full_stop<R: Runtime>(core: &InstanceCore<R>) -> JetResult<Option<Vec<StopStep>>> {
    // A fail-stop instance cannot quiesce: refuse before closing the gate or parking defrag,
    // so the failed stop changes nothing (an I/O error during the flush itself still leaves
    // the gate closed: a stop that got that far is not undone).
    Jet::<R>::check_available(core.state.write().store_mut())?;
    let calls_drained = match core.gate.begin_stop()? {
        StopEntry::AlreadyStopped => {
            crate::mark!(core.marks, SecondStopNothingToDo);
            return Ok(None);
        }
        StopEntry::Proceed { waited_for_calls } => waited_for_calls,
    };
    crate::mark!(core.marks, StopDrainWaited if calls_drained > 0);
    let mut steps = vec![StopStep::GateClosed { calls_drained }];
    let (before, after) = core.worker.park_defrag(core.options.mutations, &core.marks);
    steps.push(StopStep::DefragParked { before, after });
    if !core
        .options
        .mutations
        .is_active(Mutant::VersionCleanupNotSignalled)
    {
        steps.push(signal_version_cleanup(core));
    }
    let quiesced = if core
        .options
        .mutations
        .is_active(Mutant::CheckpointQuiesceSkipped)
    {
        Ok(None)
    } else {
        quiesce_checkpoint(core).map(Some)
    };
    // Whatever the flush did, the gate stays closed: a stop that got this far is not undone.
    core.gate.finish_stop();
    if let Some(step) = quiesced? {
        steps.push(step);
    }
    Ok(Some(steps))
}

/// One cleanup pass now, and the background's cleanup signalled.
fn signal_version_cleanup<R: Runtime>(core: &InstanceCore<R>) -> StopStep {
    crate::instance::worker::clean_versions(core);
    let mut before = None;
    let mut after = None;
    core.worker.signal(|w| {
        before = Some(w.cleanup_status());
        w.cleanup_requested = true;
        after = Some(w.cleanup_status());
    });
    StopStep::VersionCleanupSignalled {
        before: before.expect("signal ran"),
        after: after.expect("signal ran"),
    }
}

/// Rounds of [`write_back_beside_calls`] before the stop takes the exclusive latch: enough
/// for a cache of dirty pages (each round writes up to half the cache, or makes the log
/// durable first), bounded because the calls beside it may keep dirtying pages.
const STOP_WRITE_BACK_ROUNDS_MAX: u32 = 8;

/// The dirty pages and the checkpoint depth now, read under the shared latches.
fn dirty_pages_and_depth<R: Runtime>(core: &InstanceCore<R>) -> JetResult<(u64, u64)> {
    let state = core.state.read();
    let store = state.store.read();
    // The gate guarantees an initialized instance while a correct stop holds it; only a
    // planted bug (a stop that does not close the gate, racing term) can get here without.
    let storage = store.storage.as_ref().ok_or(JetError::TermInProgress)?;
    Ok((storage.dirty_page_count(), storage.checkpoint_depth_bytes()))
}

/// Writes the dirty pages back before the stop takes the exclusive latch, beside the calls
/// the stopped gate still admits (rollback, close table, end session, ...), so none of them
/// waits for the stop's I/O: each round writes the least recently used dirty pages as a
/// call's write-back for room does (prepared and ended under the shared instance latch and
/// the exclusive store latch, written and synced holding nothing, counted so a flush under
/// the exclusive latch waits for it), or makes the log durable first when they wait for
/// it. `dirty_pages` is the count the stop read as it began; each later round reads it
/// again. Returns the pages written. What the calls beside it dirty meanwhile, the
/// exclusive flush after it writes.
fn write_back_beside_calls<R: Runtime>(
    core: &InstanceCore<R>,
    mut dirty_pages: u64,
) -> JetResult<u64> {
    let mut pages_written = 0;
    for round in 0..STOP_WRITE_BACK_ROUNDS_MAX {
        if round > 0 {
            dirty_pages = dirty_pages_and_depth(core)?.0;
        }
        if dirty_pages == 0 {
            break;
        }
        pages_written +=
            SessionCall::<R>::write_back_for_room(core, dirty_pages as usize, Activity::Call)?;
    }
    Ok(pages_written)
}

/// Flushes the log and every dirty page, moves the checkpoint to the log tip, and keeps the
/// target depth at 0 from now on. The pages go to disk beside the calls still admitted
/// first ([`write_back_beside_calls`]); then, under the exclusive latch, the log is flushed,
/// what is still dirty is written and the checkpoint persisted.
fn quiesce_checkpoint<R: Runtime>(core: &InstanceCore<R>) -> JetResult<StopStep> {
    core.worker.signal(|w| w.caches_quiesced = true);
    let (dirty_pages_before, checkpoint_depth_before_bytes) = dirty_pages_and_depth(core)?;
    // Planted bug `StopCheckpointNotPersisted` writes nothing back at all.
    let pages_written_beside = match core
        .options
        .mutations
        .is_active(Mutant::StopCheckpointNotPersisted)
    {
        true => 0,
        false => write_back_beside_calls(core, dirty_pages_before)?,
    };
    let mut state = core.state.write();
    if !core
        .options
        .mutations
        .is_active(Mutant::StopFlushBesideWriteBack)
    {
        crate::instance::worker::wait_for_write_back(core);
    }
    let storage = state
        .store_mut()
        .storage
        .as_mut()
        .ok_or(JetError::TermInProgress)?;
    storage.flush_log()?;
    if core
        .options
        .mutations
        .is_active(Mutant::StopCheckpointNotPersisted)
    {
        // Planted bug: report the checkpoint at the tip, write nothing back, persist nothing.
        let log_tip_lsn = storage.tip_lsn();
        return Ok(StopStep::CheckpointQuiesced {
            dirty_pages_before,
            dirty_pages_after: 0,
            checkpoint_depth_before_bytes,
            checkpoint_depth_after_bytes: 0,
            pages_written: 0,
            log_tip_lsn,
            checkpoint_lsn_after: log_tip_lsn,
        });
    }
    // Planted bug: what the write-back beside calls left dirty is trusted to be nothing.
    let skips_final_flush = pages_written_beside > 0
        && core
            .options
            .mutations
            .is_active(Mutant::StopFinalFlushSkipped);
    let report = match skips_final_flush {
        true => storage.flush_to_depth(u64::MAX)?,
        false => storage.flush_to_depth(0)?,
    };
    let pages_written = pages_written_beside + report.pages_written;
    crate::mark!(core.marks, StopFlushWrotePages if pages_written > 0);
    let step = StopStep::CheckpointQuiesced {
        dirty_pages_before,
        dirty_pages_after: storage.dirty_page_count(),
        checkpoint_depth_before_bytes,
        checkpoint_depth_after_bytes: storage.checkpoint_depth_bytes(),
        pages_written,
        log_tip_lsn: storage.tip_lsn(),
        checkpoint_lsn_after: storage.checkpoint_lsn(),
    };
    debug_assert!(
        skips_final_flush || storage.dirty_page_count() == 0,
        "quiesce left dirty pages"
    );
    Ok(step)
}

/// `BackgroundUserTasks` and/or `QuiesceCaches`: calls stay admitted.
fn partial_stop<R: Runtime>(core: &InstanceCore<R>, grbit: u32) -> JetResult<Vec<StopStep>> {
    let _pass = Jet::<R>::enter_instance(core, JetCall::SetSystemParameter)?;
    if let Some(error) = core.gate.stop_refusal() {
        return Err(error);
    }
    let phase = core.gate.phase();
    if phase == Phase::Created {
        return Err(JetError::InvalidParameter);
    }
    // Planted bug `PartialStopSkipsAvailabilityCheck` leaves the check out.
    let checks_availability = !core
        .options
        .mutations
        .is_active(Mutant::PartialStopSkipsAvailabilityCheck);
    if grbit & stop_grbit::QUIESCE_CACHES != 0 && checks_availability {
        // As the full stop: a flush that cannot work must not leave defrag parked.
        Jet::<R>::check_available(core.state.write().store_mut())?;
    }
    // Marks read only what the code already has: a mark must add no lock or scheduling point.
    crate::mark!(core.marks, PartialStopAfterFullStop if phase == Phase::Stopped);
    let mut steps = Vec::new();
    let parks_defrag = match core
        .options
        .mutations
        .is_active(Mutant::PartialStopBitTestedAlone)
    {
        true => grbit == stop_grbit::BACKGROUND_USER_TASKS,
        false => grbit & stop_grbit::BACKGROUND_USER_TASKS != 0,
    };
    if parks_defrag {
        let (before, after) = core.worker.park_defrag(core.options.mutations, &core.marks);
        steps.push(StopStep::DefragParked { before, after });
    }
    if grbit & stop_grbit::QUIESCE_CACHES != 0 {
        steps.push(quiesce_checkpoint(core)?);
    }
    Ok(steps)
}

/// `StopAndEmitLog` (ESE's `LOG::ErrLGStopAndEmitLog`): no call logs anything from now on
/// (each that would fails with `errLogServiceStopped` and changes nothing); what was logged
/// is made durable, then the end-of-log-stream marker. Commits whose records this made
/// durable take effect before the stop lets go of the latch, not when their committers wake.
/// Calls stay admitted: the gate is not the stop's here, the log is. A full stop or term may
/// follow.
fn stop_and_emit_log<R: Runtime>(core: &InstanceCore<R>) -> JetResult<StopStep> {
    let _pass = Jet::<R>::enter_instance(core, JetCall::SetSystemParameter)?;
    if core.gate.phase() == Phase::Created {
        return Err(JetError::InvalidParameter);
    }
    // A full stop or QuiesceCaches promised a checkpoint depth of 0 from then on; the marker
    // is a log record past the checkpoint, so move the checkpoint over it again (nothing is
    // dirty, so this writes only the checkpoint file).
    let quiesced = core.worker.state.lock().caches_quiesced;
    let mut state = core.state.write();
    Jet::<R>::check_available(state.store_mut())?;
    let storage = state.storage_mut()?;
    let emitted = storage.stop_and_emit_log();
    // Before the latch goes, even if the flush failed: from here on every logging call is
    // refused, so a commit whose record is durable must take effect now, not when its
    // committer wakes (see `publish_durable_commits`).
    publish_durable_commits(&state)?;
    let emitted = emitted?;
    let storage = state.storage_mut()?;
    // Planted bug `EmitLogLeavesCheckpointBehind` skips the move.
    let moves_checkpoint = !core
        .options
        .mutations
        .is_active(Mutant::EmitLogLeavesCheckpointBehind);
    if emitted && quiesced && moves_checkpoint {
        crate::instance::worker::wait_for_write_back(core);
        storage.flush_to_depth(0)?;
    }
    Ok(StopStep::LogStreamEnded {
        emitted,
        durable_lsn: storage.flushed_lsn(),
    })
}

/// `Resume`: undoes partial stops (all of them, or those named with it). After a full stop it
/// is refused and undoes nothing.
fn resume<R: Runtime>(core: &InstanceCore<R>, grbit: u32) -> JetResult<Vec<StopStep>> {
    let _pass = Jet::<R>::enter_instance(core, JetCall::SetSystemParameter)?;
    match core.gate.phase() {
        Phase::Running => {}
        Phase::Stopping | Phase::Stopped => {
            crate::mark!(core.marks, ResumeRefusedAfterFullStop);
            return Err(JetError::ClientRequestToStopJetService);
        }
        _ => {
            return Err(core
                .gate
                .stop_refusal()
                .unwrap_or(JetError::InvalidParameter))
        }
    }
    let named = grbit & (stop_grbit::BACKGROUND_USER_TASKS | stop_grbit::QUIESCE_CACHES);
    let resume_defrag = named == 0 || named & stop_grbit::BACKGROUND_USER_TASKS != 0;
    let resume_caches = named == 0 || named & stop_grbit::QUIESCE_CACHES != 0;
    let mut step = StopStep::Resumed {
        defrag_unparked: false,
        caches_unquiesced: false,
    };
    core.worker.signal(|w| {
        let defrag_unparked = resume_defrag && w.defrag_parked;
        let caches_unquiesced = resume_caches && w.caches_quiesced;
        if defrag_unparked {
            w.defrag_parked = false;
            w.defrag_work_pending = true;
        }
        if caches_unquiesced {
            w.caches_quiesced = false;
        }
        step = StopStep::Resumed {
            defrag_unparked,
            caches_unquiesced,
        };
    });
    crate::mark!(core.marks, ResumeUndidPartialStop if step != StopStep::Resumed { defrag_unparked: false, caches_unquiesced: false });
    Ok(vec![step])
}
