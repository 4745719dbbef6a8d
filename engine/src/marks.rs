//! Coverage marks (TigerBeetle's `marks`): named points on the engine's rarely taken paths (a
//! B+tree split, an eviction writing a dirty page back, the stop's drain waiting), counted
//! per instance so a simulator can show which paths its campaign reached.
//!
//! A mark site is one line, `mark!(marks, Name)` or `mark!(marks, Name if condition)`. With
//! the additive `marks` feature (which the simulator enables) the counts live in an `Arc` the
//! instance, its storage and its background worker share; without it [`Marks`] is empty and
//! the macro compiles to nothing. Counts are std atomics: they synchronise nothing, so model
//! checkers need not see them, and a count never steers the engine. A mark's condition reads
//! only values the code already holds: taking a lock there would add a scheduling point under
//! shuttle and loom, and schedules (and pinned loom execution counts) would depend on the
//! feature.

#[cfg(feature = "marks")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "marks")]
use std::sync::Arc;

macro_rules! marks_list {
    ($($(#[$doc:meta])* $name:ident => $text:literal,)*) => {
        /// Every coverage mark of the engine.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Mark {
            $($(#[$doc])* $name,)*
        }

        impl Mark {
            pub const ALL: &'static [Mark] = &[$(Mark::$name,)*];

            /// The mark's name in reports (snake case).
            pub fn name(self) -> &'static str {
                match self {
                    $(Mark::$name => $text,)*
                }
            }
        }
    };
}

marks_list! {
    /// A full stop closed the gate and waited for gated calls in flight to leave.
    StopDrainWaited => "stop_drain_waited",
    /// A full stop found an earlier one completed: nothing to do.
    SecondStopNothingToDo => "second_stop_nothing_to_do",
    /// The full stop's flush wrote dirty pages back.
    StopFlushWrotePages => "stop_flush_wrote_pages",
    /// A partial stop (`BackgroundUserTasks`/`QuiesceCaches`) found the instance fully stopped.
    PartialStopAfterFullStop => "partial_stop_after_full_stop",
    /// `Resume` undid a partial stop.
    ResumeUndidPartialStop => "resume_undid_partial_stop",
    /// `Resume` was refused because a full stop had begun.
    ResumeRefusedAfterFullStop => "resume_refused_after_full_stop",
    /// A B+tree leaf split.
    BtreeLeafSplit => "btree_leaf_split",
    /// A B+tree internal node split (the tree had three levels or more).
    BtreeInternalSplit => "btree_internal_split",
    /// A B+tree root split (the tree grew a level).
    BtreeRootSplit => "btree_root_split",
    /// Online defrag merged two sibling pages (pages moved, one freed).
    DefragMergedPages => "defrag_merged_pages",
    /// Online defrag merged two sibling internal nodes (their separator came down).
    DefragMergedInternalPages => "defrag_merged_internal_pages",
    /// The buffer manager evicted a dirty page, writing it back first.
    EvictionWroteDirtyPage => "eviction_wrote_dirty_page",
    /// `index_record_count` let go of the instance lock between steps.
    RecordCountSpannedSteps => "record_count_spanned_steps",
    /// `index_record_count` aborted because a stop had begun.
    RecordCountAbortedByStop => "record_count_aborted_by_stop",
    /// A term met a stop that began after it looked, and waited for it.
    TermRacedStop => "term_raced_stop",
    /// A term was refused because transactions were open.
    TermRefusedActiveUsers => "term_refused_active_users",
    /// Detach was refused because the version store still held the database's versions.
    DetachRefusedVersions => "detach_refused_versions",
    /// The background worker's checkpoint flush wrote pages.
    BackgroundFlushWrotePages => "background_flush_wrote_pages",
    /// A page read made outside the instance latch was installed in the cache.
    DeferredReadInstalled => "deferred_read_installed",
    /// A page read made outside the instance latch came back after a write-back of the same
    /// page overtook it (so it may hold an older image, and is discarded).
    DeferredReadOvertaken => "deferred_read_overtaken",
    /// A record write's staged pages changed before it could install them (another write
    /// installed over a page it read), so it staged again.
    StagedWriteRaced => "staged_write_raced",
    /// A rollback read a page its undo needs with no latch held: its plan under the shared
    /// latches missed it, or (after its plans kept losing races) its look ahead before the
    /// exclusive latch did.
    RollbackReadAhead => "rollback_read_ahead",
    /// A stop parked online defrag while the background worker's pass was running, and
    /// waited for it to end.
    StopParkedDefragPass => "stop_parked_defrag_pass",
}

/// The per-instance counts (empty without the `marks` feature).
#[derive(Clone, Default)]
pub struct Marks {
    #[cfg(feature = "marks")]
    counts: Arc<[AtomicU64; Mark::ALL.len()]>,
}

impl std::fmt::Debug for Marks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.counts()).finish()
    }
}

impl Marks {
    /// Counts one hit of `mark`.
    #[inline]
    pub fn hit(&self, mark: Mark) {
        #[cfg(feature = "marks")]
        self.counts[mark as usize].fetch_add(1, Ordering::Relaxed);
        #[cfg(not(feature = "marks"))]
        let _ = mark;
    }

    /// Every mark with its count so far, in [`Mark::ALL`] order (empty without the feature).
    pub fn counts(&self) -> Vec<(Mark, u64)> {
        #[cfg(feature = "marks")]
        return Mark::ALL
            .iter()
            .map(|&mark| (mark, self.counts[mark as usize].load(Ordering::Relaxed)))
            .collect();
        #[cfg(not(feature = "marks"))]
        Vec::new()
    }

    /// Whether marks are compiled in.
    pub const ENABLED: bool = cfg!(feature = "marks");
}

/// `mark!(marks, Name)` or `mark!(marks, Name if condition)`: counts a coverage mark (see
/// [`crate::marks`]). Without the `marks` feature it evaluates nothing.
#[macro_export]
macro_rules! mark {
    ($marks:expr, $name:ident) => {
        if $crate::marks::Marks::ENABLED {
            $marks.hit($crate::marks::Mark::$name);
        }
    };
    ($marks:expr, $name:ident if $condition:expr) => {
        if $crate::marks::Marks::ENABLED && $condition {
            $marks.hit($crate::marks::Mark::$name);
        }
    };
}
