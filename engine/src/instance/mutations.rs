//! Planted bugs ("mutants") that prove the checkers have teeth.
//!
//! A mutant can only be switched on when the crate is built with the additive `mutants`
//! feature; without it [`Mutations::is_active`] is a constant `false`, so a build without the
//! feature carries no mutated branch. The simulator, the loom models and the engine's own
//! tests always build with it: there every mutated branch is one test of the instance's set,
//! taken only by an instance created with that mutant ([`crate::InstanceOptions`]), so the
//! mutated and the correct engine coexist in one test process.

/// A named planted bug. Each says which rule it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mutant {
    /// ESE's order: run the preparation steps first and set the stop flag last, without
    /// waiting for calls in flight. Calls admitted before the flag finish after the stop.
    StopFlagLast,
    /// The gate checks the phase under its mutex and counts the call in flight after letting
    /// go of it: a stop can close the gate and drain between them and miss the call.
    CheckThenActGate,
    /// Stop validates after stopping online defragmentation: a failed stop has a side effect.
    DefragStoppedBeforeValidation,
    /// `rollback` is refused after the stop (allowlist missing an entry).
    AllowlistMissingRollback,
    /// `commit_transaction` is admitted after the stop (allowlist with an extra entry).
    AllowlistExtraCommit,
    /// The stop neither cleans up the version store nor signals its cleanup.
    VersionCleanupNotSignalled,
    /// The stop does not quiesce the checkpoint (dirty pages stay dirty).
    CheckpointQuiesceSkipped,
    /// `end_session` ends a session even though a context is set on it.
    EndSessionIgnoresContext,
    /// `rollback` leaves the tables opened in the rolled-back level open.
    RollbackLeavesTablesOpen,
    /// `reset_session_context` is accepted from a thread that did not set the context.
    ResetContextFromAnyThread,
    /// `term` does not wait for calls in flight to leave the engine.
    TermDoesNotWait,
    /// The buffer manager writes a dirty page back without first flushing the log up to the
    /// page's LSN (the write-ahead rule broken): after a crash the disk can hold a change the
    /// log never recorded, so recovery can neither redo nor undo it.
    PageBeforeLog,
    /// `commit_transaction` returns success before the commit record is synced: a crash right
    /// after the acknowledgement loses the commit.
    CommitAckBeforeLogSync,
    /// Every page change of a tree operation is logged as its own record and cached at once,
    /// instead of the operation's pages being logged as one record at its end: an eviction in
    /// the middle of a split flushes the log up to half of it, and a crash leaves recovery a
    /// tree with keys out of order or pages lost.
    OperationLoggedPerPage,
    /// The full stop (and `QuiesceCaches`) flushes the log, then records the checkpoint at the
    /// log tip without writing the dirty pages back or persisting the checkpoint: its record
    /// and the status say quiesced, the disk is not (a crash then redoes from the old
    /// checkpoint). Only a checker that reads the disk sees it.
    StopCheckpointNotPersisted,
    /// A committer that finds another commit's log flush in flight takes its own record as
    /// covered and returns at once. The flush in flight began before the record was appended,
    /// so a crash can lose an acknowledged commit (group commit's classic lost write).
    GroupCommitTrustsFlushInFlight,
    /// Recovery takes log frames on their length and payload alone, without checking their
    /// CRC: a garbage or bit-flipped tail (a write in flight at the crash, never synced) that
    /// still parses is replayed, so pages never written, or records never committed, appear.
    LogChecksumIgnored,
    /// A session call claims its session before it takes the instance latch, against the
    /// lock ranks (the claims rank above the latch). A call holding the claims lock then waits
    /// for the latch while a call holding the latch waits for the claims lock to give its
    /// session back: a deadlock whenever a writer holds the latch. The rank assertion (on in
    /// every loom and shuttle build) fails at the first such acquisition.
    SessionClaimBeforeLatch,
    /// A page read made outside the instance latch is installed in the cache although a
    /// write-back of the same page overtook it (and the page was evicted meanwhile): the
    /// cache then holds the page as it was before a change that is already on disk, so later
    /// reads miss committed data and later writes overwrite it.
    OvertakenReadInstalled,
    /// A forward B+tree walk (`next_after`: move next, seek greater-or-equal past a key, the
    /// counts) gives up when the child that may hold the key has nothing after it, instead of
    /// trying the next child: a move from the last record of a leaf finds nothing.
    NextStopsAtLeafEnd,
    /// The version store's walk to the next chained key (`chain_key_after`: cursor moves,
    /// seeks past a key, counts) starts at the key it is given instead of after it, so a
    /// record with a chain is found again and a walk never gets past it.
    ChainWalkRepeatsKey,
    /// `begin_transaction` checks the nesting limit one level too late: an eighth level is
    /// begun where ESE refuses it with `TransTooDeep`.
    TransactionLimitOffByOne,
    /// The checkpoint is taken from the newest first-dirty LSN of the cached pages instead of
    /// the oldest: it points past changes still only in the cache and the log, so a crash
    /// before those pages are written back loses them (redo starts too late).
    CheckpointFromNewestDirtyPage,
    /// A nested `commit_transaction` moves only each record's newest version down to the
    /// enclosing level: a level that wrote one record twice leaves the older version behind
    /// at a level that no longer exists, so the enclosing level's rollback finds it out of
    /// order (the version store's assertion) and cannot undo it.
    NestedCommitMovesNewestVersionOnly,
    /// A record write installs the pages it staged under the shared store latch without
    /// checking that the pages it read are unchanged: two writes that staged from the same
    /// leaf (or allocated from the same header) both install, and the second overwrites the
    /// first's change (a lost insert, or a page allocated twice).
    StagedWriteNotRevalidated,
    /// Eviction takes a frame whose background write-back is in flight: a writer evicting it
    /// writes its newer image, then the flusher's older copy lands over it, and the cache no
    /// longer holds the page; the disk has lost the newer change, which a later read (or a
    /// crash) brings back as it was.
    FrameEvictedDuringWriteBack,
    /// A stop's flush writes the dirty pages back without waiting for the background
    /// write-back batch whose I/O is out: it writes a page's newer image, then the batch's
    /// older copy lands over it, and the cache holds the page clean; the stop's checkpoint
    /// then points past a change the disk lost, and a clean term leaves it lost.
    StopFlushBesideWriteBack,
    /// A commit that finds another's log flush in flight reads how many flushes have ended
    /// only after it let go of the log's lock, instead of while that lock still showed the
    /// flush out: if the flush ends in between, the commit takes its end for one still to
    /// come and sleeps until a further flush ends, which nothing may ever start (a lost
    /// wake-up: the commit hangs).
    FlushEndReadAfterLogLock,
    /// A rollback undoes under the exclusive instance latch (as it once did), without the
    /// look ahead that exclusive path is given, so it reads the pages its undo needs under
    /// the latch: a session rolling back a transaction whose pages were evicted stops every
    /// other session for as long as its reads take.
    RollbackReadsUnderLatch,
    /// A read-only call's cache miss is read inside the store-latch section that registered
    /// it (one section instead of two): every record write's install in the instance, on
    /// any table, waits for the disk. The page read's [`crate::runtime::sync::Unlatched`]
    /// proof fails at the first miss wherever lock ranks are checked.
    MissReadUnderStoreLatch,
    /// A commit writes and syncs the log for its group holding its shared instance latch:
    /// every call that needs the latch exclusively (opening a table, a stop) waits for the
    /// disk. The sync's [`crate::runtime::sync::Unlatched`] proof fails at the first group
    /// sync wherever lock ranks are checked.
    CommitSyncUnderLatch,
    /// The background flush writes its batch back (and persists the checkpoint) holding the
    /// latches it prepared the batch under (the instance latch shared and the store latch
    /// exclusively; the instance latch exclusively on its fallback path): every walk in the
    /// instance waits for the disk. The write-back's [`crate::runtime::sync::Unlatched`] proof fails at the first
    /// batch wherever lock ranks are checked.
    WriteBackUnderLatch,
    /// A stop parks online defrag without waiting for the pass in progress: the stop returns
    /// (its record saying defrag parked) while that pass goes on moving records between
    /// pages, which ESE's stop promises to have ended.
    DefragParkSkipsPassInProgress,
    /// A record write installs what it staged, and a cache miss the page it read, without
    /// first checking that the frames they need can be had clean: when every frame is
    /// dirty, an eviction inside the install writes a page back (and flushes the log for
    /// it) holding the store latch exclusively and the instance latch shared, so every walk
    /// in the instance waits for the disk. The storage's check that no latch is held shared across I/O
    /// ([`crate::runtime::sync::assert_no_shared_latch_io`]) fails at the first such
    /// eviction wherever lock ranks are checked.
    InstallEvictsUnderStoreLatch,
    /// A call's write-back for room (its batch of least recently used pages, written with no
    /// latch held) is not counted among the write-backs in flight: a detach, a smaller
    /// cache or a stop's flush, under the exclusive latch, writes a page of that batch back
    /// while the batch's older copy is still on its way to the disk, which then lands over
    /// the newer image. The buffer manager's assertion that no page in flight is written
    /// back fails (and without it, a committed change is lost on disk).
    RoomWriteBackNotAwaited,
    /// A call that ended its own session (`end_session`, under the shared instance latch)
    /// wakes the calls waiting for the session's claim only if it finds the claim marked
    /// waited for, as any other call does; but the claim left with the session, so a call
    /// on the same session from another thread that marked it and went to sleep is never
    /// woken, and hangs.
    EndedSessionWakesNoWaiter,
    /// A wait at the gate for calls to leave (the stop's drain, the term's, an allowlisted
    /// call held while a stop drains) looks at the calls in flight before it raises the
    /// sleeper flag: the last call to leave between the look and the flag sees no sleeper
    /// and wakes nobody, and the waiter sleeps for ever.
    DrainLooksBeforeSleeperFlag,
    /// A record write records its version in a section of its own, under the versions'
    /// latch taken after its install let go of the store latch (two short sections instead
    /// of one): in between, a reader sees the write's new tree value with no version to hide
    /// it, so another transaction reads a value that is not committed (and may never be),
    /// and another writer finds no write conflict on the record.
    VersionRecordedAfterInstall,
    /// The background defrag step, staged under the shared latches beside calls, is
    /// installed without checking that the pages it read are unchanged: a record write
    /// installed into one of the two nodes between the step's staging and its install is
    /// overwritten by the merged node the step built from the older page, so the write is
    /// lost (or, if the write split the page, records end up in two places).
    DefragStepNotRevalidated,
    /// A stop whose write-back beside calls wrote pages trusts it to have left nothing
    /// dirty: under the exclusive latch it flushes the log and persists the checkpoint as
    /// the cache has it, writing no page back, so the pages an allowlisted call dirtied
    /// meanwhile (or those its bounded rounds did not reach) stay dirty and the checkpoint
    /// the stop leaves on disk is short of the log tip.
    StopFinalFlushSkipped,
    /// A term after a successful stop trusts the stop's flush: it writes no page back and
    /// persists its clean-shutdown checkpoint at the log's end. The pages the calls a stop
    /// still admits changed after it (a rollback's undo, an ended session's) never reach the
    /// disk, and the next init, finding the checkpoint at the log's end, replays nothing: the
    /// disk keeps the change the stop wrote and the rollback undid.
    TermTrustsStopFlush,
    /// A clean term writes every page back and logs its clean shutdown, but does not persist
    /// its checkpoint: the one on disk is the last the flusher or a stop wrote, so the next
    /// init replays the log from there, as after a crash (ESE's clean term leaves nothing to
    /// replay).
    TermCheckpointNotPersisted,
    /// A group-commit flush that ends after a flush under the latch (the WAL rule's before a
    /// write-back, the background flusher's while the group flush is out, a stop's) already
    /// made its range durable sets the log's durable end back to its own end. The log then
    /// takes what was appended since for bytes that start there: the next flush writes them
    /// over durable records, which are lost, and the records appended meanwhile get LSNs
    /// that are not where they land.
    GroupFlushEndRewindsLog,
    /// A partial stop tests its grbit for `BackgroundUserTasks` with `==` where a bit test
    /// belongs: the bit alone parks online defrag, but `BackgroundUserTasks | QuiesceCaches`
    /// flushes the caches and leaves defrag running, though the call succeeds. Behind a full
    /// stop nothing shows (the full stop parks defrag itself); a run that ends on the
    /// partial stop does.
    PartialStopBitTestedAlone,
    /// A detach flushes the database's pages and logs the detach but never marks the file
    /// consistent on its own (the header's clean-shutdown state): the file stays owned by
    /// this instance's log, and another instance (a new log) refuses to attach it with
    /// `DatabaseDirtyShutdown`. Nothing in this instance's own life shows it: re-attaching
    /// under the same log and recovery from that log both accept the file.
    DetachLeavesDatabaseDirty,
    /// `index_record_count` with a limit (`crecMax`) stops one record past it: the limit is
    /// compared with `>` where `>=` belongs, so a count of up to 2 answers 3.
    RecordCountOnePastLimit,
    /// Attach claims a database file without looking for another instance's claim: two
    /// instances of one process attach one file, each with its own log and cache (the
    /// defect the API fuzzer found, `JET_errDatabaseSharingViolation` missing). The second
    /// instance's attach then goes on to the file itself.
    DatabaseSharingUnchecked,
    /// A detach appends its Detach record and returns without waiting for the log to write
    /// it (ESE's `ErrLGDetachDB` waits): the file is clean and any instance's, yet a crash
    /// now leaves this log naming it attached.
    DetachRecordNotFlushed,
    /// `JetEndSession` rolls back only the session's innermost transaction level (an `if`
    /// where a `while` belongs): the outer levels' changes stay in the pages and the version
    /// store with no session to end them, uncommitted for ever, and a clean term writes them
    /// to the file.
    EndSessionRollsBackOneLevel,
    /// The version store's full check lets one version past `VersionStoreMaxVersions` in (a
    /// `<=` where `<` belongs) before it cleans up or refuses: a write the documented
    /// `VersionStoreOutOfMemory` should refuse succeeds.
    VersionStoreOneOverLimit,
    /// Online defrag merges two sibling internal nodes around the right one's first key
    /// instead of bringing their parent's separator down: the keys between the separator
    /// and that first key then route to the left node's last child, where they are not, so
    /// committed records vanish from seeks and moves and inserts land in the wrong leaf.
    /// Reached only in trees of three levels emptied enough for defrag to merge their
    /// internal nodes (the shrunk big tables).
    InternalMergeWrongSeparator,
    /// A partial stop with `QuiesceCaches` does not first check that the instance is still
    /// available: on an instance an I/O error already made fail-stop it parks defrag (with
    /// `BackgroundUserTasks`) and marks the caches quiesced, then fails at its flush with
    /// `InstanceUnavailable`, having changed the instance although it failed.
    PartialStopSkipsAvailabilityCheck,
    /// StopAndEmitLog on an instance a full stop or `QuiesceCaches` quiesced does not move
    /// the checkpoint over the end-of-stream marker it logs: the checkpoint depth the stop
    /// promised to keep at 0 grows again, and a crash then has recovery replay the log past
    /// the persisted checkpoint.
    EmitLogLeavesCheckpointBehind,
    /// A nested `commit_transaction` moves its writes to the enclosing level but leaves the
    /// tables opened in the committed level marked as that level's: a later nested level of
    /// the same depth that rolls back closes them, though they now belong to the enclosing
    /// level (ESE's rollback closes only the tables its level opened).
    NestedCommitKeepsTableLevels,
    /// A detach flushes and drops the database without waiting for the background
    /// write-backs in flight: a batch that copied a page of the file before the detach lands
    /// on the file after the detach returned, so a file that is no instance's changes under
    /// its new owner (and an older image may land over the detach's newer one). The buffer
    /// manager's assertion that no page in flight is written back is off with it, so only
    /// the disk shows it.
    DetachBesideWriteBack,
    /// `JetSetSystemParameter(OnlineDefrag, 1)` after a stop unparks online defragmentation:
    /// the parameter is taken (ESE allows it after a stop), and defrag starts moving pages
    /// again on an instance the stop promised to have stopped it on.
    DefragParameterUnparks,
    /// A record write's size check compares the key and the value with their limits with
    /// `>=` where `>` belongs: a key of exactly `MAX_KEY_BYTES` or a value of exactly
    /// `MAX_VALUE_BYTES`, which the documentation accepts, is refused with
    /// `JET_errRecordTooBig`.
    RecordLimitsExclusive,
    /// An attach whose open of the file fails (no file there, not a database, an I/O error)
    /// keeps its claim on the path: the instance owns a file it never attached, and another
    /// instance's attach of that path is refused with `JET_errDatabaseSharingViolation` for
    /// as long as this one lives.
    FailedAttachKeepsClaim,
    /// A full stop that finds another stop under way returns success at once, as if the
    /// instance were already stopped, and stops are not serialized: a second thread's
    /// `JetStopServiceInstance` returns while the first is still draining calls or flushing,
    /// before the instance is prepared for termination.
    ConcurrentStopReturnsEarly,
}

impl Mutant {
    /// Every mutant, in declaration order.
    pub const ALL: &'static [Mutant] = &[
        Mutant::StopFlagLast,
        Mutant::CheckThenActGate,
        Mutant::DefragStoppedBeforeValidation,
        Mutant::AllowlistMissingRollback,
        Mutant::AllowlistExtraCommit,
        Mutant::VersionCleanupNotSignalled,
        Mutant::CheckpointQuiesceSkipped,
        Mutant::EndSessionIgnoresContext,
        Mutant::RollbackLeavesTablesOpen,
        Mutant::ResetContextFromAnyThread,
        Mutant::TermDoesNotWait,
        Mutant::PageBeforeLog,
        Mutant::CommitAckBeforeLogSync,
        Mutant::OperationLoggedPerPage,
        Mutant::StopCheckpointNotPersisted,
        Mutant::GroupCommitTrustsFlushInFlight,
        Mutant::LogChecksumIgnored,
        Mutant::SessionClaimBeforeLatch,
        Mutant::OvertakenReadInstalled,
        Mutant::NextStopsAtLeafEnd,
        Mutant::ChainWalkRepeatsKey,
        Mutant::TransactionLimitOffByOne,
        Mutant::CheckpointFromNewestDirtyPage,
        Mutant::NestedCommitMovesNewestVersionOnly,
        Mutant::StagedWriteNotRevalidated,
        Mutant::FrameEvictedDuringWriteBack,
        Mutant::StopFlushBesideWriteBack,
        Mutant::FlushEndReadAfterLogLock,
        Mutant::RollbackReadsUnderLatch,
        Mutant::MissReadUnderStoreLatch,
        Mutant::CommitSyncUnderLatch,
        Mutant::WriteBackUnderLatch,
        Mutant::DefragParkSkipsPassInProgress,
        Mutant::InstallEvictsUnderStoreLatch,
        Mutant::RoomWriteBackNotAwaited,
        Mutant::EndedSessionWakesNoWaiter,
        Mutant::DrainLooksBeforeSleeperFlag,
        Mutant::VersionRecordedAfterInstall,
        Mutant::DefragStepNotRevalidated,
        Mutant::StopFinalFlushSkipped,
        Mutant::TermTrustsStopFlush,
        Mutant::TermCheckpointNotPersisted,
        Mutant::GroupFlushEndRewindsLog,
        Mutant::PartialStopBitTestedAlone,
        Mutant::DetachLeavesDatabaseDirty,
        Mutant::RecordCountOnePastLimit,
        Mutant::DatabaseSharingUnchecked,
        Mutant::DetachRecordNotFlushed,
        Mutant::EndSessionRollsBackOneLevel,
        Mutant::VersionStoreOneOverLimit,
        Mutant::InternalMergeWrongSeparator,
        Mutant::PartialStopSkipsAvailabilityCheck,
        Mutant::EmitLogLeavesCheckpointBehind,
        Mutant::NestedCommitKeepsTableLevels,
        Mutant::DetachBesideWriteBack,
        Mutant::DefragParameterUnparks,
        Mutant::RecordLimitsExclusive,
        Mutant::FailedAttachKeepsClaim,
        Mutant::ConcurrentStopReturnsEarly,
    ];

    const fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

/// The set of mutants active in one instance. Empty unless the `mutants` feature is on and a
/// test asked for one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mutations {
    #[cfg_attr(not(feature = "mutants"), allow(dead_code))]
    bits: u64,
}

impl Mutations {
    /// No planted bug: the real engine.
    pub const NONE: Mutations = Mutations { bits: 0 };

    /// An engine with `mutant` planted.
    #[cfg(feature = "mutants")]
    pub fn with(self, mutant: Mutant) -> Mutations {
        Mutations {
            bits: self.bits | mutant.bit(),
        }
    }

    #[inline(always)]
    pub fn is_active(self, mutant: Mutant) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.bits & mutant.bit() != 0
        }
        #[cfg(not(feature = "mutants"))]
        {
            let _ = mutant.bit();
            false
        }
    }
}
