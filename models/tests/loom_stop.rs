//! loom models of the stop protocol (`jetsim_models::stop_models`), run on the engine's own
//! code, with their explored execution counts pinned.
//!
//! Each test pins the number of executions loom explores. A change in a pinned count means the
//! search space changed (engine code gained or lost a scheduling point, or the model changed)
//! and must be reviewed: re-measure, check the model still reaches the interleavings it is
//! about, and update the number. The models, their threads, properties and bounds (with the
//! reason for each) are in `models/src/stop_models.rs`.
//!
//! Teeth: every mutant a model catches, with the execution at which loom found it pinned.
//!
//! The default run takes about 25 s on two cores. Heavier variants (bounds lifted) run only
//! with `JETSIM_LOOM_HEAVY=1 cargo test -p jetsim-models -- --nocapture heavy_` (all of them:
//! a few minutes); without the variable they return at once. They print their counts instead of pinning
//! them.

use jetsim_engine::{Mutant, Mutations};
use jetsim_models::stop_models::{heavy, Failure, Property, StopModel};

/// Explores `model` (unmutated) at its own bound; returns the executions and coverage.
fn passes(model: StopModel) -> (usize, Vec<usize>) {
    passes_at(model, Mutations::NONE, model.bound())
}

fn passes_at(model: StopModel, mutations: Mutations, bound: Option<usize>) -> (usize, Vec<usize>) {
    match model.check(mutations, bound) {
        Ok(explored) => (explored.executions, explored.coverage),
        Err(failure) => panic!("{model} (bound {bound:?}) failed: {failure}"),
    }
}

fn executions(model: StopModel) -> usize {
    passes(model).0
}

fn planted(mutant: Mutant) -> Mutations {
    Mutations::NONE.with(mutant)
}

/// Asserts loom finds a violation of `property` in `model` with `mutant` planted, at its own
/// bound, and returns it.
fn caught(mutant: Mutant, model: StopModel, property: Property) -> Failure {
    caught_at(mutant, model, model.bound(), property)
}

fn caught_at(
    mutant: Mutant,
    model: StopModel,
    bound: Option<usize>,
    property: Property,
) -> Failure {
    match model.check(planted(mutant), bound) {
        Ok(explored) => panic!(
            "{mutant:?}: loom explored every execution of {model} ({}) and found no violation",
            explored.executions
        ),
        Err(failure) => {
            assert_eq!(
                failure.property,
                Some(property),
                "{mutant:?}: loom failed {model} on something else than {property}: {failure}"
            );
            failure
        }
    }
}

/// One test per planted bug, named `catches_...`: loom finds a violation of the property in
/// the model at the model's own bound, at the pinned execution.
macro_rules! teeth {
    ($($(#[$doc:meta])* $name:ident: $mutant:ident in $model:ident breaks $property:ident at $execution:literal;)*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                let failure = caught(Mutant::$mutant, StopModel::$model, Property::$property);
                assert_eq!(failure.execution, $execution);
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------------
// Model 1: a gated call racing a full stop.

#[test]
fn gate_begin_session_vs_stop() {
    // Unbounded: 3 loom threads (main blocked in join), small space.
    let (executions, coverage) = passes(StopModel::GateBeginSession);
    // Pinned: a change in the count means the search changed and must be reviewed.
    assert_eq!(executions, 876);
    // [refused, admitted and drained by the stop, admitted and done before the stop]
    assert_eq!(coverage, [216, 618, 42]);
}

#[test]
fn gate_begin_transaction_vs_stop() {
    // Unbounded: 3 loom threads (main blocked in join), small space.
    let (executions, coverage) = passes(StopModel::GateBeginTransaction);
    assert_eq!(executions, 465);
    assert_eq!(coverage, [216, 216, 33]);
}

#[test]
fn gate_commit_vs_stop() {
    // Unbounded: 3 loom threads (main blocked in join), small space.
    let (executions, coverage) = passes(StopModel::GateCommit);
    assert_eq!(executions, 13479);
    assert_eq!(coverage, [216, 12831, 432]);
}

#[test]
fn gate_main_stops() {
    assert_eq!(StopModel::GateMainStops.bound(), None);
    assert_eq!(executions(StopModel::GateMainStops), 458);
}

// ---------------------------------------------------------------------------------------------
// Model 2: an allowlisted call racing a full stop.

#[test]
fn allowlist_rollback_vs_stop() {
    assert_eq!(executions(StopModel::AllowlistRollback), 47973);
}

#[test]
fn allowlist_end_session_vs_stop() {
    assert_eq!(executions(StopModel::AllowlistEndSession), 47973);
}

// ---------------------------------------------------------------------------------------------
// Model 3: term racing a stop, and term racing calls.

#[test]
fn stop_vs_term() {
    assert_eq!(executions(StopModel::StopVsTerm), 1044);
}

#[test]
fn term_waits_for_calls() {
    assert_eq!(executions(StopModel::TermWaits), 132);
}

#[test]
fn call_vs_stop_vs_term() {
    // Bound 3 (unbounded it runs past 600,000 executions without finishing).
    assert_eq!(StopModel::CallVsStopVsTerm.bound(), Some(3));
    assert_eq!(executions(StopModel::CallVsStopVsTerm), 22591);
}

// ---------------------------------------------------------------------------------------------
// Model 4: two concurrent full stops.

#[test]
fn two_concurrent_stops() {
    assert_eq!(executions(StopModel::TwoStops), 588);
}

// ---------------------------------------------------------------------------------------------
// Model 5: session contexts across threads.

#[test]
fn session_context_across_threads() {
    assert_eq!(StopModel::SessionContext.bound(), Some(4));
    assert_eq!(executions(StopModel::SessionContext), 16682);
}

// ---------------------------------------------------------------------------------------------
// Model 6: partial stop and resume racing a full stop.

#[test]
fn partial_stop_resume_vs_full_stop() {
    assert_eq!(StopModel::PartialStopResume.bound(), Some(3));
    assert_eq!(executions(StopModel::PartialStopResume), 7245);
}

// ---------------------------------------------------------------------------------------------
// Model 7: the stop parking online defrag run by the engine's own background thread.

#[test]
fn stop_parks_background_defrag() {
    assert_eq!(StopModel::DefragPark.bound(), Some(3));
    let (executions, coverage) = passes(StopModel::DefragPark);
    assert_eq!(executions, 6040);
    // Coverage, pinned: stops that parked defrag after the pass had freed pages, and stops that
    // parked it before the pass got anything done.
    assert_eq!(coverage, [4451, 1589]);
}

/// Online defrag's steps run beside calls: staged under the shared latches, installed only
/// if no page they read changed.
#[test]
fn defrag_step_beside_a_writer() {
    assert_eq!(StopModel::DefragBesideWriter.bound(), Some(2));
    let (executions, coverage) = passes(StopModel::DefragBesideWriter);
    assert_eq!(executions, 2965);
    // Coverage, pinned: a defrag step landed while main wrote and committed, none did.
    assert_eq!(coverage, [247, 2718]);
}

teeth! {
    /// A defrag step staged before main's write installs its merged leaf over it: the
    /// replaced record comes back with its old value.
    catches_a_defrag_step_not_revalidated: DefragStepNotRevalidated in DefragBesideWriter breaks WritesKept at 965;
}

teeth! {
    /// The stop returns while the worker, past its park check, still makes its step: three
    /// preemptions (into the pass, out of it before its step, back after the stop).
    catches_a_defrag_park_that_skips_the_pass_in_progress: DefragParkSkipsPassInProgress in DefragPark breaks DefragRan at 1568;
}

// ---------------------------------------------------------------------------------------------
// Three racing threads, bounded.

#[test]
fn gate_two_calls_vs_stop() {
    assert_eq!(StopModel::GateTwoCalls.bound(), Some(3));
    assert_eq!(executions(StopModel::GateTwoCalls), 13028);
}

#[test]
fn two_stops_vs_term() {
    assert_eq!(StopModel::TwoStopsVsTerm.bound(), Some(3));
    assert_eq!(executions(StopModel::TwoStopsVsTerm), 8379);
}

// ---------------------------------------------------------------------------------------------
// Teeth: each planted bug is found by the model that is about it, in a pinned number of
// executions (deterministic: loom's search order is fixed). The unmutated engine passes the
// same models above. `tests/catalogue.rs` checks the same numbers through the catalogue.

teeth! {
    catches_stop_flag_last: StopFlagLast in GateBeginSession breaks InFlightAtStop at 4;
    catches_check_then_act_gate: CheckThenActGate in GateBeginSession breaks FinishedAfterStop at 211;
}

/// The check-then-act race needs two preemptions when the stopper is runnable throughout (the
/// stop on main): one into the caller, one out of it while it sits between its check and its
/// count. A bound of 1 explores everything else and misses it; a bound of 2 finds it.
#[test]
fn check_then_act_needs_preemption_bound_2() {
    let mutant = Mutant::CheckThenActGate;
    let missed = StopModel::GateMainStops.check(planted(mutant), Some(1));
    // Pinned: all executions of the mutated model with at most one preemption.
    assert_eq!(missed.map(|e| e.executions), Ok(6), "bound 1");
    // With both racing threads spawned (main blocked in `join`), the first switch is free and
    // bound 1 is enough: the shape of the model decides the bound a race needs.
    let spawned = caught_at(
        mutant,
        StopModel::GateBeginSession,
        Some(1),
        Property::FinishedAfterStop,
    );
    assert_eq!(spawned.execution, 5);
    let failure = caught_at(
        mutant,
        StopModel::GateMainStops,
        Some(2),
        Property::FinishedAfterStop,
    );
    assert_eq!(failure.execution, 16);
    // The unmutated engine passes at both bounds (and unbounded: `gate_main_stops`).
    let clean = |bound| passes_at(StopModel::GateMainStops, Mutations::NONE, bound).0;
    assert_eq!(clean(Some(1)), 9);
    assert_eq!(clean(Some(2)), 36);
}

teeth! {
    /// The commit, wrongly allowlisted, is not waited for: loom first finds it finishing after
    /// the stop returned (it would also be admitted after the stop, the next property).
    catches_allowlist_extra_commit: AllowlistExtraCommit in GateCommit breaks FinishedAfterStop at 55;
    catches_checkpoint_quiesce_skipped: CheckpointQuiesceSkipped in GateCommit breaks NotQuiesced at 1;
    catches_allowlist_missing_rollback: AllowlistMissingRollback in AllowlistRollback breaks Allowlist at 751;
    /// The engine's `Gate::finish_term` asserts no call is in flight; loom reaches that
    /// assertion before this model's own property.
    catches_term_does_not_wait: TermDoesNotWait in TermWaits breaks EngineTermInFlight at 13;
    catches_version_cleanup_not_signalled: VersionCleanupNotSignalled in TwoStops breaks OneStopRecord at 1;
    catches_reset_context_from_any_thread: ResetContextFromAnyThread in SessionContext breaks Context at 115;
    catches_end_session_ignores_context: EndSessionIgnoresContext in SessionContext breaks Context at 115;
    catches_defrag_stopped_before_validation: DefragStoppedBeforeValidation in PartialStopResume breaks Validation at 1;
}

// ---------------------------------------------------------------------------------------------
// Heavy variants: `JETSIM_LOOM_HEAVY=1`. Bounds lifted; counts printed, not pinned (measured
// where noted).

/// Runs `model` at its heavy bound when `JETSIM_LOOM_HEAVY` is set. The `heavy_*` tests that
/// call it are alike but stay one `#[test]` each: `cargo test heavy_NAME` runs one alone, and
/// each keeps the count measured for its model beside it.
fn heavy_run(model: StopModel) {
    let bound = model.heavy_bound();
    if !heavy() {
        eprintln!("{model}: skipped (set JETSIM_LOOM_HEAVY=1)");
        return;
    }
    let (executions, _) = passes_at(model, Mutations::NONE, bound);
    eprintln!("{model}: bound {bound:?}, {executions} executions");
}

#[test]
fn heavy_call_vs_stop_vs_term() {
    // Measured: bound 4, 187,929 executions (~30 s).
    assert_eq!(StopModel::CallVsStopVsTerm.heavy_bound(), Some(4));
    heavy_run(StopModel::CallVsStopVsTerm);
}

#[test]
fn heavy_two_calls_vs_stop() {
    // Measured: bound 4, 72,698 executions.
    assert_eq!(StopModel::GateTwoCalls.heavy_bound(), Some(4));
    heavy_run(StopModel::GateTwoCalls);
}

#[test]
fn heavy_two_stops_vs_term() {
    // Measured: bound 5, 117,740 executions (~15 s).
    assert_eq!(StopModel::TwoStopsVsTerm.heavy_bound(), Some(5));
    heavy_run(StopModel::TwoStopsVsTerm);
}

#[test]
fn heavy_session_context_across_threads() {
    // Measured: bound 6, 118,384 executions (~19 s).
    assert_eq!(StopModel::SessionContext.heavy_bound(), Some(6));
    heavy_run(StopModel::SessionContext);
}

#[test]
fn heavy_partial_stop_resume_vs_full_stop() {
    // Measured: bound 4, 107,913 executions.
    assert_eq!(StopModel::PartialStopResume.heavy_bound(), Some(4));
    heavy_run(StopModel::PartialStopResume);
}

#[test]
fn heavy_stop_parks_background_defrag() {
    // Measured: bound 4, 24,504 executions (~100 s; the default bound is 3).
    assert_eq!(StopModel::DefragPark.heavy_bound(), Some(4));
    heavy_run(StopModel::DefragPark);
}

// ---------------------------------------------------------------------------------------------
// Group commit: two committers, one flush written with the instance lock released.

#[test]
fn group_commit_two_committers() {
    assert_eq!(StopModel::GroupCommit.bound(), Some(3));
    let (executions, coverage) = passes(StopModel::GroupCommit);
    assert_eq!(executions, 14470);
    // [the commits overlapped inside the engine, they ran one after the other]
    assert_eq!(coverage, [9271, 5199]);
}

teeth! {
    /// The second committer finds the first one's flush in flight, returns at once, and the
    /// crash loses its record: that flush began before the record was appended.
    catches_group_commit_trusting_a_flush_in_flight: GroupCommitTrustsFlushInFlight in GroupCommit breaks CommitDurable at 358;
    /// The first committer writes and syncs the log holding its shared instance latch: the
    /// sync's `Unlatched` proof fails at once.
    catches_a_group_sync_under_the_latch: CommitSyncUnderLatch in GroupCommit breaks EngineLockAcrossIo at 1;
}

#[test]
fn heavy_group_commit_two_committers() {
    assert_eq!(StopModel::GroupCommit.heavy_bound(), Some(4));
    heavy_run(StopModel::GroupCommit);
}

// ---------------------------------------------------------------------------------------------
// The instance latch: two readers and a writer share it; the writer installs under the store
// latch.

#[test]
fn shared_readers_and_a_writer() {
    assert_eq!(StopModel::SharedReaders.bound(), Some(2));
    let (executions, coverage) = passes(StopModel::SharedReaders);
    assert_eq!(executions, 6541);
    // [the readers were inside the engine at once, they were not]
    assert_eq!(coverage, [4322, 2219]);
}

#[test]
fn catches_a_session_claim_taken_before_the_latch() {
    // The first session call (the set-up's open_database) takes the claims lock, then the
    // latch ranked below it: the engine's rank assertion fails before any deadlock can form.
    let failure = caught(
        Mutant::SessionClaimBeforeLatch,
        StopModel::SharedReaders,
        Property::EngineLockRank,
    );
    assert_eq!(failure.execution, 1);
}

teeth! {
    /// The writer records its version in a section of its own after its install let go of
    /// the store latch: a reader between the two finds the uncommitted record.
    catches_a_version_recorded_after_the_install: VersionRecordedAfterInstall in SharedReaders breaks SharedRead at 18;
}

#[test]
fn heavy_shared_readers_and_a_writer() {
    assert_eq!(StopModel::SharedReaders.heavy_bound(), Some(3));
    heavy_run(StopModel::SharedReaders);
}

// ---------------------------------------------------------------------------------------------
// Record writes: two writers stage into one leaf (one splits it) under the shared latches.

#[test]
fn staged_writers_split_one_leaf() {
    assert_eq!(StopModel::StagedWriters.bound(), Some(2));
    let (executions, coverage) = passes(StopModel::StagedWriters);
    assert_eq!(executions, 845);
    // [the writes were inside the engine at once, they were not]
    assert_eq!(coverage, [282, 563]);
}

teeth! {
    /// One write installs the pages it staged after the other installed over the leaf (or
    /// the header) it read: the split or the small record is lost.
    catches_a_staged_write_installed_over_a_changed_leaf: StagedWriteNotRevalidated in StagedWriters breaks WritesKept at 257;
}

#[test]
fn heavy_staged_writers_split_one_leaf() {
    assert_eq!(StopModel::StagedWriters.heavy_bound(), Some(3));
    heavy_run(StopModel::StagedWriters);
}

// ---------------------------------------------------------------------------------------------
// Background write-back: a stop's flush against the worker's batch whose I/O is out.

#[test]
fn stop_flush_vs_background_write_back() {
    assert_eq!(StopModel::StopFlushVsWriteBack.bound(), Some(2));
    let (executions, coverage) = passes(StopModel::StopFlushVsWriteBack);
    assert_eq!(executions, 2218);
    // [the worker wrote the database file while the stop was inside the engine, it did not]
    assert_eq!(coverage, [1609, 609]);
}

teeth! {
    /// The stop's flush writes the page's newer image while the worker's batch holding an
    /// older copy is out; the batch lands over it and the clean term leaves it there.
    catches_a_stop_flush_beside_a_write_back: StopFlushBesideWriteBack in StopFlushVsWriteBack breaks PagesKept at 1156;
}

#[test]
fn heavy_stop_flush_vs_background_write_back() {
    assert_eq!(StopModel::StopFlushVsWriteBack.heavy_bound(), Some(3));
    heavy_run(StopModel::StopFlushVsWriteBack);
}

#[test]
fn evictions_vs_background_write_back() {
    assert_eq!(StopModel::EvictionsVsWriteBack.bound(), Some(1));
    let (executions, coverage) = passes(StopModel::EvictionsVsWriteBack);
    assert_eq!(executions, 230);
    // [a worker's write landed after main's racing writes began, none did]
    assert_eq!(coverage, [228, 2]);
}

teeth! {
    /// A record write needing cache room evicts the changed page while the worker's batch
    /// holding its older copy is out: the eviction writes the newer image, the batch lands
    /// over it, and the page is no longer cached to be written again.
    catches_a_frame_evicted_during_its_write_back: FrameEvictedDuringWriteBack in EvictionsVsWriteBack breaks PagesKept at 216;
}

teeth! {
    /// A record write's plan misses a page the evictions pushed out and reads it inside the
    /// store-latch section that registered the read: the read's `Unlatched` proof fails.
    catches_a_miss_read_under_the_store_latch: MissReadUnderStoreLatch in EvictionsVsWriteBack breaks EngineLockAcrossIo at 1;
    /// The worker writes its batch back holding the latches it prepared it under: the
    /// write-back's `Unlatched` proof fails at the first batch.
    catches_a_write_back_under_the_latch: WriteBackUnderLatch in StopFlushVsWriteBack breaks EngineLockAcrossIo at 2;
    /// A record write installs without checking that its new page's frame can be had clean:
    /// with every frame dirty, the eviction inside the install writes a page back holding
    /// the store latch under the shared instance latch, and the storage's check fails.
    catches_an_install_evicting_under_the_store_latch: InstallEvictsUnderStoreLatch in EvictionsVsWriteBack breaks EngineIoUnderSharedLatch at 1;
}

#[test]
fn heavy_evictions_vs_background_write_back() {
    assert_eq!(StopModel::EvictionsVsWriteBack.heavy_bound(), Some(2));
    heavy_run(StopModel::EvictionsVsWriteBack);
}
