//! The version store: per-transaction before-images that give snapshot isolation, detect
//! write conflicts, and let rollback undo.
//!
//! Updates go to the B+tree in place (so pages get dirty and the log grows, as in ESE); the
//! value each write replaced is kept here as a [`Version`]. A reader whose snapshot predates a
//! write walks the record's chain back to the value it may see. Cleanup drops versions that no
//! active transaction can still need. The store is bounded: running out is
//! `VersionStoreOutOfMemory` after an inline cleanup freed nothing.

use crate::api::handles::InstanceHandle;
use crate::env::{UncountedMemory, VersionMemory};
use crate::error::{JetError, JetResult};
use crate::storage::{FileId, PageNumber};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A transaction's identity (never reused within an instance).
pub type TxnId = u64;
/// A commit timestamp: commits are numbered 1, 2, 3, … in commit order.
pub type CommitTs = u64;

/// Names one record: database file, table (by its B+tree root page) and key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId {
    pub file: FileId,
    pub table_root: PageNumber,
    pub key: Vec<u8>,
}

/// One write: what the record held before transaction `txn` changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub txn: TxnId,
    /// Transaction level (1-based) the write belongs to; nested commits move it down.
    pub level: u8,
    /// `None` while the writer is uncommitted.
    pub commit_ts: Option<CommitTs>,
    /// The value before the write (`None`: the record did not exist).
    pub before: Option<Vec<u8>>,
}

/// Who is reading: their own transaction (whose writes they always see) and their snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reader {
    pub txn: Option<TxnId>,
    /// Commits with a timestamp at or below this are visible.
    pub snapshot_ts: CommitTs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ActiveTxn {
    snapshot_ts: CommitTs,
    /// Records written, in write order, with the level of each write.
    writes: Vec<(RecordId, u8)>,
}

/// Statistics for the instance status and the stop record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VersionStoreStats {
    pub versions: u64,
    pub active_transactions: u64,
    pub cleanup_runs: u64,
    pub versions_cleaned: u64,
}

/// The environment's memory a version store takes its versions from, and whose they are.
struct MemoryAccount {
    memory: Arc<dyn VersionMemory>,
    instance: InstanceHandle,
}

impl std::fmt::Debug for MemoryAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryAccount")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// The version store of one instance.
#[derive(Debug)]
pub struct VersionStore {
    max_versions: u64,
    /// Versions held; every change goes through [`Self::allocated`] or [`Self::freed`], so
    /// the environment's memory always counts the same number.
    versions: u64,
    memory: MemoryAccount,
    next_txn: TxnId,
    last_commit_ts: CommitTs,
    active: BTreeMap<TxnId, ActiveTxn>,
    /// Oldest version first. Invariant: at most the newest versions are uncommitted, all by
    /// one transaction, and commit timestamps increase along a chain.
    chains: BTreeMap<RecordId, Vec<Version>>,
    cleanup_runs: u64,
    versions_cleaned: u64,
    /// Planted bug `ChainWalkRepeatsKey`: the walk after a key includes the key.
    chain_walk_repeats_key: bool,
    /// Planted bug `NestedCommitMovesNewestVersionOnly`: a nested commit moves only each
    /// record's newest version down a level.
    nested_commit_moves_newest_only: bool,
    /// Planted bug `VersionStoreOneOverLimit`: the full check lets one more version in.
    one_over_limit: bool,
    /// Versions left by the last cleanup: the store asks for the next one once it has grown
    /// by [`CLEANUP_BATCH_VERSIONS`] since.
    versions_after_cleanup: u64,
}

/// The background cleanup is asked for each time the store grows by this many versions (and
/// whenever it is half full): ESE's version-store cleanup runs all the time in the background,
/// not only when the store fills, so readers walk the B+tree, not a store of every record ever
/// written, to find their neighbours.
pub const CLEANUP_BATCH_VERSIONS: u64 = 32;

impl VersionStore {
    /// A store whose memory nobody counts (unit tests).
    pub fn new(max_versions: u64) -> Self {
        Self::in_memory_of(max_versions, Arc::new(UncountedMemory), InstanceHandle::NIL)
    }

    /// `instance`'s store, taking its versions' memory from `memory`.
    pub fn in_memory_of(
        max_versions: u64,
        memory: Arc<dyn VersionMemory>,
        instance: InstanceHandle,
    ) -> Self {
        assert!(max_versions > 0);
        VersionStore {
            max_versions,
            versions: 0,
            memory: MemoryAccount { memory, instance },
            next_txn: 1,
            last_commit_ts: 0,
            active: BTreeMap::new(),
            chains: BTreeMap::new(),
            cleanup_runs: 0,
            versions_cleaned: 0,
            chain_walk_repeats_key: false,
            nested_commit_moves_newest_only: false,
            one_over_limit: false,
            versions_after_cleanup: 0,
        }
    }

    fn allocated(&mut self, versions: u64) {
        self.versions += versions;
        self.memory
            .memory
            .versions_allocated(self.memory.instance, versions);
    }

    fn freed(&mut self, versions: u64) {
        assert!(versions <= self.versions, "freed more versions than held");
        self.versions -= versions;
        if versions > 0 {
            self.memory
                .memory
                .versions_freed(self.memory.instance, versions);
        }
    }

    /// Plants `ChainWalkRepeatsKey` (see [`crate::Mutant`]).
    pub fn set_chain_walk_repeats_key(&mut self, planted: bool) {
        self.chain_walk_repeats_key = planted;
    }

    /// Plants `NestedCommitMovesNewestVersionOnly` (see [`crate::Mutant`]).
    pub fn set_nested_commit_moves_newest_only(&mut self, planted: bool) {
        self.nested_commit_moves_newest_only = planted;
    }

    /// Plants `VersionStoreOneOverLimit` (see [`crate::Mutant`]).
    pub fn set_one_over_limit(&mut self, planted: bool) {
        self.one_over_limit = planted;
    }

    /// Whether the background should clean up now: the store is half full, or has grown by a
    /// batch since the last cleanup.
    pub fn cleanup_due(&self) -> bool {
        self.versions * 2 >= self.max_versions
            || self.versions >= self.versions_after_cleanup + CLEANUP_BATCH_VERSIONS
    }

    pub fn set_max_versions(&mut self, max_versions: u64) {
        assert!(max_versions > 0);
        self.max_versions = max_versions;
    }

    pub fn stats(&self) -> VersionStoreStats {
        VersionStoreStats {
            versions: self.versions,
            active_transactions: self.active.len() as u64,
            cleanup_runs: self.cleanup_runs,
            versions_cleaned: self.versions_cleaned,
        }
    }

    /// Top-level transactions begun and not yet committed or rolled back.
    pub fn open_transactions(&self) -> usize {
        self.active.len()
    }

    /// The timestamp the next top-level commit will get.
    pub fn next_commit_ts(&self) -> CommitTs {
        self.last_commit_ts + 1
    }

    /// A reader outside any transaction: sees everything committed so far.
    pub fn reader_outside_transaction(&self) -> Reader {
        Reader {
            txn: None,
            snapshot_ts: self.last_commit_ts,
        }
    }

    /// The reader of `txn`'s own snapshot.
    pub fn reader_for(&self, txn: TxnId) -> JetResult<Reader> {
        let active = self.active(txn)?;
        Ok(Reader {
            txn: Some(txn),
            snapshot_ts: active.snapshot_ts,
        })
    }

    fn active(&self, txn: TxnId) -> JetResult<&ActiveTxn> {
        self.active
            .get(&txn)
            .ok_or_else(|| unknown_transaction(txn))
    }

    /// Starts a top-level transaction with a snapshot of everything committed.
    pub fn begin(&mut self) -> TxnId {
        let txn = self.next_txn;
        self.next_txn += 1;
        let previous = self.active.insert(
            txn,
            ActiveTxn {
                snapshot_ts: self.last_commit_ts,
                writes: Vec::new(),
            },
        );
        assert!(previous.is_none());
        txn
    }

    /// The value `reader` sees for `record`, given what the B+tree holds now.
    pub fn visible(
        &self,
        record: &RecordId,
        tree_value: Option<Vec<u8>>,
        reader: Reader,
    ) -> Option<Vec<u8>> {
        let Some(chain) = self.chains.get(record) else {
            return tree_value;
        };
        let mut value = tree_value;
        for version in chain.iter().rev() {
            let sees_write = Some(version.txn) == reader.txn
                || version.commit_ts.is_some_and(|ts| ts <= reader.snapshot_ts);
            if sees_write {
                break;
            }
            value = version.before.clone();
        }
        value
    }

    /// Records with a chain in `table`, strictly after / before `key`, nearest first: the
    /// keys a snapshot may see that the B+tree no longer has.
    pub fn chain_key_after(
        &self,
        file: FileId,
        table_root: PageNumber,
        key: Option<&[u8]>,
    ) -> Option<Vec<u8>> {
        use std::ops::Bound;
        let start = RecordId {
            file,
            table_root,
            key: key.map(<[u8]>::to_vec).unwrap_or_default(),
        };
        let lower = match key {
            Some(_) if self.chain_walk_repeats_key => Bound::Included(start),
            Some(_) => Bound::Excluded(start),
            None => Bound::Included(start),
        };
        self.chains
            .range((lower, Bound::Unbounded))
            .next()
            .filter(|(id, _)| id.file == file && id.table_root == table_root)
            .map(|(id, _)| id.key.clone())
    }

    /// The mirror of [`Self::chain_key_after`], from the other end of the range. Two
    /// functions rather than one with a direction: each serves one cursor move, and reads as
    /// that move.
    pub fn chain_key_before(
        &self,
        file: FileId,
        table_root: PageNumber,
        key: Option<&[u8]>,
    ) -> Option<Vec<u8>> {
        use std::ops::Bound;
        let upper = match key {
            Some(key) => Bound::Excluded(RecordId {
                file,
                table_root,
                key: key.to_vec(),
            }),
            None => match table_root.checked_add(1) {
                Some(next_root) => Bound::Excluded(RecordId {
                    file,
                    table_root: next_root,
                    key: Vec::new(),
                }),
                None => Bound::Unbounded,
            },
        };
        self.chains
            .range((Bound::Unbounded, upper))
            .next_back()
            .filter(|(id, _)| id.file == file && id.table_root == table_root)
            .map(|(id, _)| id.key.clone())
    }

    /// Whether any version (committed or not) still refers to a table of `file`.
    pub fn database_has_versions(&self, file: FileId) -> bool {
        let start = RecordId {
            file,
            table_root: 0,
            key: Vec::new(),
        };
        self.chains
            .range(start..)
            .next()
            .is_some_and(|(id, _)| id.file == file)
    }

    /// Whether any version (committed or not) still refers to `table`.
    pub fn table_has_versions(&self, file: FileId, table_root: PageNumber) -> bool {
        self.chain_key_after(file, table_root, None).is_some()
    }

    /// Checks that `txn` may write `record` now, without changing anything.
    pub fn check_write(&self, txn: TxnId, record: &RecordId) -> JetResult<()> {
        let active = self.active(txn)?;
        if let Some(newest) = self.chains.get(record).and_then(|chain| chain.last()) {
            let conflicts =
                newest.txn != txn && newest.commit_ts.is_none_or(|ts| ts > active.snapshot_ts);
            if conflicts {
                return Err(JetError::WriteConflict);
            }
        }
        Ok(())
    }

    /// Makes room for one more version: inline cleanup first, then the documented error.
    pub fn reserve(&mut self) -> JetResult<()> {
        let max_versions = self.max_versions + u64::from(self.one_over_limit);
        if self.versions < max_versions {
            return Ok(());
        }
        self.cleanup();
        if self.versions < self.max_versions {
            Ok(())
        } else {
            Err(JetError::VersionStoreOutOfMemory)
        }
    }

    /// Records that `txn` at `level` replaced `before` in `record`. The caller checked the
    /// write ([`Self::check_write`]) and reserved room ([`Self::reserve`]).
    pub fn record_write(
        &mut self,
        txn: TxnId,
        level: u8,
        record: RecordId,
        before: Option<Vec<u8>>,
    ) {
        debug_assert!(self.check_write(txn, &record).is_ok());
        assert!(level >= 1);
        let active = self
            .active
            .get_mut(&txn)
            .expect("write by an unknown transaction");
        active.writes.push((record.clone(), level));
        self.chains.entry(record).or_default().push(Version {
            txn,
            level,
            commit_ts: None,
            before,
        });
        self.allocated(1);
    }

    /// The writes `txn` made at `level`, newest first, with the value each replaced: what a
    /// rollback of that level puts back into the B+tree. Changes nothing, so a rollback can
    /// undo the tree first and drop the versions ([`Self::rollback_level`]) only once the
    /// tree is back: a rollback that fails half-way leaves the store as it was.
    pub fn undo_of_level(
        &self,
        txn: TxnId,
        level: u8,
    ) -> JetResult<Vec<(RecordId, Option<Vec<u8>>)>> {
        let active = self.active(txn)?;
        let mut undo = Vec::new();
        let mut depth_by_record: BTreeMap<&RecordId, usize> = BTreeMap::new();
        for (record, _) in active
            .writes
            .iter()
            .rev()
            .take_while(|(_, write_level)| *write_level == level)
        {
            // The n-th newest write of this transaction to `record` is the n-th newest
            // version of its chain: only this transaction wrote the record since.
            let depth = depth_by_record.entry(record).or_insert(0);
            let chain = self.chains.get(record).expect("write without a chain");
            let version = &chain[chain.len() - 1 - *depth];
            assert_eq!(version.txn, txn, "another transaction's version on top");
            *depth += 1;
            undo.push((record.clone(), version.before.clone()));
        }
        Ok(undo)
    }

    /// Removes and returns, newest first, the writes `txn` made at `level` (the caller has
    /// put each `before` value back into the B+tree); level 1 ends the transaction.
    pub fn rollback_level(
        &mut self,
        txn: TxnId,
        level: u8,
    ) -> JetResult<Vec<(RecordId, Option<Vec<u8>>)>> {
        let active = self
            .active
            .get_mut(&txn)
            .ok_or_else(|| unknown_transaction(txn))?;
        let mut undone = Vec::new();
        let mut dropped = 0u64;
        while active
            .writes
            .last()
            .is_some_and(|(_, write_level)| *write_level == level)
        {
            let (record, _) = active.writes.pop().expect("checked non-empty");
            let chain = self.chains.get_mut(&record).expect("write without a chain");
            let version = chain.pop().expect("empty chain");
            assert_eq!(
                version.txn, txn,
                "rollback found another transaction's version on top"
            );
            assert_eq!(
                version.level, level,
                "rollback found a version of another level on top"
            );
            if chain.is_empty() {
                self.chains.remove(&record);
            }
            dropped += 1;
            undone.push((record, version.before));
        }
        debug_assert!(
            active.writes.iter().all(|(_, l)| *l < level),
            "writes out of level order"
        );
        if level == 1 {
            assert!(active.writes.is_empty());
            self.active.remove(&txn);
        }
        self.freed(dropped);
        Ok(undone)
    }

    /// Commits `level` of `txn`. For a nested level its writes join the enclosing level; for
    /// level 1 they get a commit timestamp, which is returned.
    pub fn commit_level(&mut self, txn: TxnId, level: u8) -> JetResult<Option<CommitTs>> {
        assert!(level >= 1);
        if level > 1 {
            let active = self
                .active
                .get_mut(&txn)
                .ok_or_else(|| unknown_transaction(txn))?;
            for (record, write_level) in active.writes.iter_mut().filter(|(_, l)| *l == level) {
                *write_level = level - 1;
                let chain = self.chains.get_mut(record).expect("write without a chain");
                // A level that wrote a record twice holds two versions of it: both move.
                let moved = if self.nested_commit_moves_newest_only {
                    chain.len() - 1..chain.len()
                } else {
                    0..chain.len()
                };
                for version in chain[moved]
                    .iter_mut()
                    .filter(|v| v.txn == txn && v.level == level)
                {
                    version.level = level - 1;
                }
            }
            return Ok(None);
        }
        let active = self
            .active
            .remove(&txn)
            .ok_or_else(|| unknown_transaction(txn))?;
        self.last_commit_ts += 1;
        let commit_ts = self.last_commit_ts;
        for (record, _) in &active.writes {
            let chain = self.chains.get_mut(record).expect("write without a chain");
            for version in chain.iter_mut().filter(|v| v.txn == txn) {
                version.commit_ts = Some(commit_ts);
            }
        }
        Ok(Some(commit_ts))
    }

    /// Drops versions no active transaction can see past. Returns how many were removed.
    pub fn cleanup(&mut self) -> u64 {
        let horizon = self
            .active
            .values()
            .map(|t| t.snapshot_ts)
            .min()
            .unwrap_or(self.last_commit_ts);
        let mut removed = 0u64;
        self.chains.retain(|_, chain| {
            // Every reader has a snapshot at or after `horizon`, so it sees the result of any
            // write committed at or before it: that version and all older ones are dead.
            if let Some(last_dead) = chain
                .iter()
                .rposition(|v| v.commit_ts.is_some_and(|ts| ts <= horizon))
            {
                removed += (last_dead + 1) as u64;
                chain.drain(..=last_dead);
            }
            !chain.is_empty()
        });
        self.freed(removed);
        self.versions_after_cleanup = self.versions;
        self.cleanup_runs += 1;
        self.versions_cleaned += removed;
        removed
    }
}

impl Drop for VersionStore {
    /// A store dropped (term, or the next init) gives its memory back.
    fn drop(&mut self) {
        let held = self.versions;
        self.freed(held);
    }
}

/// A session names a transaction the store does not have. The API keeps the two in step
/// (a rollback drops its versions only after the tree is back; detach refuses a database
/// that still has versions), so this is an engine bug: debug builds stop at once, and the
/// fuzzer (`examples/api_fuzz.rs`) drives every call sequence it can through that assertion.
/// Release builds refuse the call instead of panicking.
fn unknown_transaction(txn: TxnId) -> JetError {
    if cfg!(debug_assertions) {
        panic!("the version store has no transaction {txn}: a session and the store disagree");
    }
    JetError::NotInTransaction
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str) -> RecordId {
        RecordId {
            file: FileId(1),
            table_root: 3,
            key: key.as_bytes().to_vec(),
        }
    }

    /// Counts what the store takes and gives back, as the simulator's meter does.
    #[derive(Default)]
    struct Meter(std::sync::Mutex<i64>);

    impl VersionMemory for Meter {
        fn versions_allocated(&self, _instance: InstanceHandle, versions: u64) {
            *self.0.lock().unwrap() += versions as i64;
        }
        fn versions_freed(&self, _instance: InstanceHandle, versions: u64) {
            *self.0.lock().unwrap() -= versions as i64;
        }
    }

    #[test]
    fn the_environment_counts_every_version_held_until_the_store_is_dropped() {
        let meter = Arc::new(Meter::default());
        let held = || *meter.0.lock().unwrap();
        let mut vs = VersionStore::in_memory_of(16, meter.clone(), InstanceHandle::NIL);
        let reader = vs.begin();
        let writer = vs.begin();
        vs.record_write(writer, 1, record("a"), None);
        vs.record_write(writer, 2, record("b"), None);
        vs.record_write(writer, 2, record("c"), None);
        assert_eq!(held(), 3);
        // A rolled-back level gives its versions back at once.
        assert_eq!(vs.rollback_level(writer, 2).unwrap().len(), 2);
        assert_eq!(held(), 1);
        assert_eq!(vs.commit_level(writer, 1), Ok(Some(1)));
        // The older snapshot may still need the committed version: cleanup keeps it.
        assert_eq!(vs.cleanup(), 0);
        assert_eq!(held(), 1);
        assert_eq!(vs.rollback_level(reader, 1).unwrap().len(), 0);
        assert_eq!(vs.cleanup(), 1);
        assert_eq!(held(), 0);
        let last = vs.begin();
        vs.record_write(last, 1, record("d"), None);
        assert_eq!(held(), 1);
        drop(vs);
        assert_eq!(held(), 0, "a dropped store gives its memory back");
    }

    #[test]
    fn uncommitted_write_is_invisible_to_others_and_visible_to_self() {
        let mut vs = VersionStore::new(16);
        let writer = vs.begin();
        let reader = vs.begin();
        vs.record_write(writer, 1, record("k"), Some(b"old".to_vec()));
        let tree = Some(b"new".to_vec());
        assert_eq!(
            vs.visible(&record("k"), tree.clone(), vs.reader_for(writer).unwrap()),
            tree
        );
        assert_eq!(
            vs.visible(&record("k"), tree.clone(), vs.reader_for(reader).unwrap()),
            Some(b"old".to_vec())
        );
        assert_eq!(
            vs.check_write(reader, &record("k")),
            Err(JetError::WriteConflict)
        );
    }

    #[test]
    fn commit_after_snapshot_conflicts_and_stays_invisible() {
        let mut vs = VersionStore::new(16);
        let old_reader = vs.begin();
        let writer = vs.begin();
        vs.record_write(writer, 1, record("k"), None);
        assert_eq!(vs.commit_level(writer, 1), Ok(Some(1)));
        let tree = Some(b"v".to_vec());
        assert_eq!(
            vs.visible(
                &record("k"),
                tree.clone(),
                vs.reader_for(old_reader).unwrap()
            ),
            None
        );
        assert_eq!(
            vs.visible(&record("k"), tree.clone(), vs.reader_outside_transaction()),
            tree
        );
        assert_eq!(
            vs.check_write(old_reader, &record("k")),
            Err(JetError::WriteConflict)
        );
        let new_txn = vs.begin();
        assert_eq!(vs.check_write(new_txn, &record("k")), Ok(()));
    }

    #[test]
    fn nested_rollback_undoes_only_its_level() {
        let mut vs = VersionStore::new(16);
        let txn = vs.begin();
        vs.record_write(txn, 1, record("a"), None);
        vs.record_write(txn, 2, record("b"), Some(b"b0".to_vec()));
        vs.record_write(txn, 2, record("b"), Some(b"b1".to_vec()));
        let undo = vs.undo_of_level(txn, 2).unwrap();
        let undone = vs.rollback_level(txn, 2).unwrap();
        assert_eq!(undo, undone, "the undo list is what rollback removes");
        assert_eq!(
            undone,
            vec![
                (record("b"), Some(b"b1".to_vec())),
                (record("b"), Some(b"b0".to_vec()))
            ]
        );
        assert_eq!(vs.stats().versions, 1);
        assert_eq!(vs.rollback_level(txn, 1), Ok(vec![(record("a"), None)]));
        assert_eq!(vs.stats().versions, 0);
        assert_eq!(vs.stats().active_transactions, 0);
    }

    #[test]
    fn cleanup_keeps_what_an_old_snapshot_needs() {
        let mut vs = VersionStore::new(16);
        let old_reader = vs.begin();
        let writer = vs.begin();
        vs.record_write(writer, 1, record("k"), Some(b"v0".to_vec()));
        vs.commit_level(writer, 1).unwrap();
        assert_eq!(vs.cleanup(), 0, "old reader still needs v0");
        vs.rollback_level(old_reader, 1).unwrap();
        assert_eq!(vs.cleanup(), 1);
        assert_eq!(vs.stats().versions, 0);
    }

    #[test]
    fn cleanup_is_due_each_batch_of_versions_and_at_half_full() {
        // Goal: the background cleanup is asked for as the store grows, long before it fills,
        // and not again until another batch has accumulated since the last cleanup.
        let mut vs = VersionStore::new(1 << 16);
        let writer = vs.begin();
        for i in 0..CLEANUP_BATCH_VERSIONS {
            assert!(!vs.cleanup_due(), "due after {i} versions");
            vs.record_write(writer, 1, record(&format!("k{i}")), None);
        }
        assert!(vs.cleanup_due());
        // Nothing is dead yet (the writer is active): the cleanup frees nothing, and the next
        // is due only a batch later.
        assert_eq!(vs.cleanup(), 0);
        assert!(!vs.cleanup_due());
        vs.commit_level(writer, 1).unwrap();
        assert_eq!(vs.cleanup(), CLEANUP_BATCH_VERSIONS);
        assert!(!vs.cleanup_due());

        let mut small = VersionStore::new(4);
        let txn = small.begin();
        small.record_write(txn, 1, record("a"), None);
        assert!(!small.cleanup_due());
        small.record_write(txn, 1, record("b"), None);
        assert!(small.cleanup_due(), "half full");
    }

    #[test]
    fn full_store_is_a_clear_error() {
        let mut vs = VersionStore::new(1);
        let txn = vs.begin();
        vs.reserve().unwrap();
        vs.record_write(txn, 1, record("a"), None);
        assert_eq!(vs.reserve(), Err(JetError::VersionStoreOutOfMemory));
        vs.commit_level(txn, 1).unwrap();
        assert_eq!(
            vs.reserve(),
            Ok(()),
            "cleanup inside reserve frees the committed version"
        );
    }

    #[test]
    fn chain_keys_stay_inside_their_table() {
        let mut vs = VersionStore::new(16);
        let txn = vs.begin();
        vs.record_write(txn, 1, record("m"), None);
        vs.record_write(
            txn,
            1,
            RecordId {
                file: FileId(1),
                table_root: 4,
                key: b"a".to_vec(),
            },
            None,
        );
        assert_eq!(vs.chain_key_after(FileId(1), 3, None), Some(b"m".to_vec()));
        assert_eq!(vs.chain_key_after(FileId(1), 3, Some(b"m")), None);
        assert_eq!(vs.chain_key_before(FileId(1), 3, None), Some(b"m".to_vec()));
        assert_eq!(vs.chain_key_before(FileId(1), 3, Some(b"m")), None);
        assert_eq!(vs.chain_key_before(FileId(1), 4, None), Some(b"a".to_vec()));
    }
}
