//! Records through a cursor: seek, move, retrieve, insert, replace, delete, and the
//! long-running `index_record_count`.
//!
//! An honest simplification of ESE's `JetPrepareUpdate`/`JetSetColumn`/`JetUpdate`: a record
//! is a key and a value, both bytes, written in one call. Reads see the session's snapshot
//! (its transaction's, or the latest commits outside a transaction); updates need a
//! transaction (`NotInTransaction` otherwise, as in ESE). A failed call leaves the cursor
//! where it was.

use super::calls::JetCall;
use super::database::owned_cursor;
use super::handles::{SessionHandle, TableHandle};
use super::session::session_entry;
use super::{Jet, LatchMode, SessionRef, StoreReadings};
use crate::error::{JetError, JetResult};
use crate::instance::gate::Phase;
use crate::instance::{InstanceState, OpenTransaction, Position, Store, Versions};
use crate::runtime::Runtime;
use crate::storage::{
    FileId, FrameKey, LogRecord, PageNumber, StagedPages, TreeReads, MAX_KEY_BYTES, MAX_VALUE_BYTES,
};
use crate::transaction::{Reader, RecordId, TxnId, VersionStore};

/// Where `seek` lands, after ESE's `JET_bitSeekEQ`, `SeekGE` and `SeekLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeekMode {
    Equal,
    GreaterOrEqual,
    LessOrEqual,
}

/// `JetMove` offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MoveTo {
    First,
    Previous,
    Next,
    Last,
}

/// Records `index_record_count` reads per step before it lets go of the instance lock and
/// checks whether a stop has begun.
pub const RECORD_COUNT_STEP_RECORDS: u64 = 16;

/// One table as a cursor sees it.
struct TableView {
    file: FileId,
    root: PageNumber,
    reader: Reader,
}

impl TableView {
    fn record(&self, key: &[u8]) -> RecordId {
        RecordId {
            file: self.file,
            table_root: self.root,
            key: key.to_vec(),
        }
    }

    fn get(
        &self,
        tree: &mut TreeReads<'_>,
        versions: &VersionStore,
        key: &[u8],
    ) -> JetResult<Option<Vec<u8>>> {
        let tree_value = tree.get(self.file, self.root, key)?;
        Ok(versions.visible(&self.record(key), tree_value, self.reader))
    }

    /// The nearest visible record strictly after (`forward`) or before `from`.
    fn step(
        &self,
        tree: &mut TreeReads<'_>,
        versions: &VersionStore,
        from: Option<&[u8]>,
        forward: bool,
    ) -> JetResult<Option<(Vec<u8>, Vec<u8>)>> {
        let mut at = from.map(<[u8]>::to_vec);
        // Each iteration passes one key of the tree or of the version store, so the loop ends
        // after at most their combined count.
        loop {
            let in_tree = if forward {
                tree.next_after(self.file, self.root, at.as_deref())?
            } else {
                tree.prev_before(self.file, self.root, at.as_deref())?
            };
            let in_versions = if forward {
                versions.chain_key_after(self.file, self.root, at.as_deref())
            } else {
                versions.chain_key_before(self.file, self.root, at.as_deref())
            };
            let key = match (&in_tree, in_versions) {
                (None, None) => return Ok(None),
                (Some((k, _)), None) => k.clone(),
                (None, Some(v)) => v,
                (Some((k, _)), Some(v)) => {
                    if (forward && v < *k) || (!forward && v > *k) {
                        v
                    } else {
                        k.clone()
                    }
                }
            };
            // Each step must pass `at`: a walk that returns its own starting key would find
            // the same record for ever (a call that never returns, holding its latch), so a
            // tree or version store that does so is reported, as scan reports keys out of
            // order.
            if at.as_deref().is_some_and(|at| {
                if forward {
                    key.as_slice() <= at
                } else {
                    key.as_slice() >= at
                }
            }) {
                return Err(JetError::DatabaseCorrupted);
            }
            let tree_value = match in_tree {
                Some((k, v)) if k == key => Some(v),
                _ => {
                    let tree_value = tree.get(self.file, self.root, &key)?;
                    // The key came from the version store and lies between `at` and the tree
                    // walk's answer: if the tree holds it, the walk passed over it (a wrong
                    // step between leaves). Checked here, where it costs nothing, because the
                    // chains would otherwise hide it for every record written since the last
                    // cleanup; scan reports keys out of order the same way.
                    if tree_value.is_some() {
                        return Err(JetError::DatabaseCorrupted);
                    }
                    tree_value
                }
            };
            if let Some(value) = versions.visible(&self.record(&key), tree_value, self.reader) {
                return Ok(Some((key, value)));
            }
            at = Some(key);
        }
    }
}

/// The exclusive caller's tree reads (misses follow the storage's policy) and version store.
fn locked_get<R: Runtime>(
    state: &mut InstanceState<R>,
    table: &TableView,
    key: &[u8],
) -> JetResult<Option<Vec<u8>>> {
    let storage = state.store.get_mut().storage.as_mut();
    let version_store = &state.versions.get_mut().version_store;
    table.get(&mut TreeReads::Locked(storage), version_store, key)
}

fn view<R: Runtime>(
    state: &InstanceState<R>,
    versions: &VersionStore,
    session: SessionRef,
    slot: u16,
    generation: u32,
) -> JetResult<TableView> {
    let (database_slot, table_root) = {
        let cursors = state.cursors.read();
        let cursor = cursors.get(slot, generation).expect("cursor validated");
        (cursor.database_slot, cursor.table_root)
    };
    let database = state
        .databases
        .iter()
        .find(|(db_slot, _, _)| *db_slot == database_slot)
        .map(|(_, _, db)| db.file)
        .ok_or(JetError::InvalidTableId)?;
    let reader = match session_entry(state, session).transaction.get() {
        Some(open) => versions.reader_for(open.txn)?,
        None => versions.reader_outside_transaction(),
    };
    Ok(TableView {
        file: database,
        root: table_root,
        reader,
    })
}

fn set_position<R: Runtime>(
    state: &InstanceState<R>,
    slot: u16,
    generation: u32,
    position: Position,
) {
    state
        .cursors
        .read()
        .get(slot, generation)
        .expect("cursor validated")
        .position
        .set(position);
}

fn current_key<R: Runtime>(
    state: &InstanceState<R>,
    slot: u16,
    generation: u32,
) -> JetResult<Vec<u8>> {
    let position = state
        .cursors
        .read()
        .get(slot, generation)
        .expect("cursor validated")
        .position
        .get();
    match position {
        Position::On(key) => Ok(key),
        Position::BeforeFirst | Position::AfterLast => Err(JetError::NoCurrentRecord),
    }
}

impl<R: Runtime> Jet<R> {
    /// `JetSeek` (with the key given directly instead of `JetMakeKey`).
    pub fn seek(
        &self,
        sesid: SessionHandle,
        tableid: TableHandle,
        key: &[u8],
        mode: SeekMode,
    ) -> JetResult<()> {
        self.with_session_read(sesid, JetCall::Seek, |state, session, reads| {
            let (tree, versions) = (&mut reads.tree, reads.versions);
            let (slot, generation) = owned_cursor(state, session, tableid)?;
            if key.len() > MAX_KEY_BYTES {
                return Err(JetError::RecordTooBig);
            }
            let table = view(state, versions, session, slot, generation)?;
            let found = match table.get(tree, versions, key)? {
                Some(_) => Some(key.to_vec()),
                None => match mode {
                    SeekMode::Equal => None,
                    SeekMode::GreaterOrEqual => {
                        table.step(tree, versions, Some(key), true)?.map(|(k, _)| k)
                    }
                    SeekMode::LessOrEqual => table
                        .step(tree, versions, Some(key), false)?
                        .map(|(k, _)| k),
                },
            };
            let found = found.ok_or(JetError::RecordNotFound)?;
            set_position(state, slot, generation, Position::On(found));
            Ok(())
        })
    }

    /// `JetMove`. At either end returns `NoCurrentRecord` and leaves the cursor where it was.
    pub fn move_cursor(
        &self,
        sesid: SessionHandle,
        tableid: TableHandle,
        to: MoveTo,
    ) -> JetResult<()> {
        self.with_session_read(sesid, JetCall::Move, |state, session, reads| {
            let (tree, versions) = (&mut reads.tree, reads.versions);
            let (slot, generation) = owned_cursor(state, session, tableid)?;
            let table = view(state, versions, session, slot, generation)?;
            let position = state
                .cursors
                .read()
                .get(slot, generation)
                .expect("validated")
                .position
                .get();
            let found = match (to, &position) {
                (MoveTo::First, _) | (MoveTo::Next, Position::BeforeFirst) => {
                    table.step(tree, versions, None, true)?
                }
                (MoveTo::Last, _) | (MoveTo::Previous, Position::AfterLast) => {
                    table.step(tree, versions, None, false)?
                }
                (MoveTo::Next, Position::On(key)) => table.step(tree, versions, Some(key), true)?,
                (MoveTo::Previous, Position::On(key)) => {
                    table.step(tree, versions, Some(key), false)?
                }
                (MoveTo::Next, Position::AfterLast) | (MoveTo::Previous, Position::BeforeFirst) => {
                    None
                }
            };
            let (key, _) = found.ok_or(JetError::NoCurrentRecord)?;
            set_position(state, slot, generation, Position::On(key));
            Ok(())
        })
    }

    /// `JetRetrieveColumn` on the whole record: `(key, value)` under the cursor.
    pub fn retrieve(
        &self,
        sesid: SessionHandle,
        tableid: TableHandle,
    ) -> JetResult<(Vec<u8>, Vec<u8>)> {
        self.with_session_read(sesid, JetCall::Retrieve, |state, session, reads| {
            let (tree, versions) = (&mut reads.tree, reads.versions);
            let (slot, generation) = owned_cursor(state, session, tableid)?;
            let key = current_key(state, slot, generation)?;
            let table = view(state, versions, session, slot, generation)?;
            let value = table
                .get(tree, versions, &key)?
                .ok_or(JetError::RecordDeleted)?;
            Ok((key, value))
        })
    }

    /// `JetUpdate` of a new record; the cursor moves onto it.
    pub fn insert(
        &self,
        sesid: SessionHandle,
        tableid: TableHandle,
        key: &[u8],
        value: &[u8],
    ) -> JetResult<()> {
        let asked = RecordWrite {
            tableid,
            kind: WriteKind::Insert,
            key: Some(key),
            value: Some(value),
            mutations: crate::Mutations::NONE,
        };
        self.write_record(sesid, JetCall::Insert, asked)
    }

    /// `JetUpdate` after `JET_prepReplace`: a new value for the record under the cursor.
    pub fn replace(
        &self,
        sesid: SessionHandle,
        tableid: TableHandle,
        value: &[u8],
    ) -> JetResult<()> {
        let asked = RecordWrite {
            tableid,
            kind: WriteKind::Replace,
            key: None,
            value: Some(value),
            mutations: crate::Mutations::NONE,
        };
        self.write_record(sesid, JetCall::Replace, asked)
    }

    /// `JetDelete` of the record under the cursor; the cursor stays on the deleted key.
    pub fn delete(&self, sesid: SessionHandle, tableid: TableHandle) -> JetResult<()> {
        let asked = RecordWrite {
            tableid,
            kind: WriteKind::Delete,
            key: None,
            value: None,
            mutations: crate::Mutations::NONE,
        };
        self.write_record(sesid, JetCall::Delete, asked)
    }

    /// A record write, under the instance latch held shared (see
    /// [`super::SessionCall::run_write`]): planned and staged beside other calls, then
    /// checked again and installed under the store latch held exclusively. The checks run in
    /// one order on both paths and on the exclusive one it falls back to: the cursor, the key
    /// and sizes, the table, the transaction, write conflicts, room in the version store,
    /// then whether the record exists.
    fn write_record(
        &self,
        sesid: SessionHandle,
        call: JetCall,
        asked: RecordWrite<'_>,
    ) -> JetResult<()> {
        self.with_session_call(sesid, call, LatchMode::Shared, |scope| {
            let mutations = scope.core().options.mutations;
            let asked = RecordWrite { mutations, ..asked };
            let mut plan =
                |state: &InstanceState<R>, session, store: &Store, versions: &Versions| {
                    plan_write(state, session, store, versions, &asked)
                };
            // Planted bug `VersionRecordedAfterInstall`: the write's version, kept here by
            // its install, is recorded once the install's latches are let go.
            let late_version = std::cell::RefCell::new(None);
            let mut install = |state: &InstanceState<R>,
                               _,
                               store: &mut Store,
                               versions: &mut Versions,
                               planned| {
                install_write(
                    state,
                    store,
                    versions,
                    &asked,
                    planned,
                    mutations,
                    &late_version,
                )
            };
            let mut exclusive = |_: &_, state: &mut InstanceState<R>, session, _: &mut _| {
                // The rare path: the versions' latch is taken (it is free) to read the
                // version store beside the state.
                let target =
                    write_target(state, &state.versions.read().version_store, session, &asked)?;
                write_checks(state.versions_mut(), &target)?;
                let visible = locked_get(state, &target.table, &target.key)?;
                if let Some(refused) = asked.kind.refusal(&visible) {
                    return Err(refused);
                }
                write(state, &target, asked.value)?;
                target.move_cursor(state, &asked);
                Ok(StoreReadings::of(
                    state.store.get_mut(),
                    state.versions.get_mut(),
                ))
            };
            let readings = scope.run_write(&mut plan, &mut install, &mut exclusive);
            if let Some((txn, level, record, before)) = late_version.take() {
                scope.run_versions(&mut |_, _, _, versions: &mut Versions| {
                    versions
                        .version_store
                        .record_write(txn, level, record.clone(), before.clone());
                    Ok(())
                })?;
            }
            let readings = readings?;
            scope.note_write(asked.kind == WriteKind::Delete, readings);
            Ok(())
        })
    }

    /// `JetIndexRecordCount`: counts the records the session sees, up to `max_records`
    /// (0: no limit). Long-running: every [`RECORD_COUNT_STEP_RECORDS`] records it lets go of
    /// the instance lock and, if a stop has begun, aborts with
    /// `ClientRequestToStopJetService` so the stop need not wait for it.
    pub fn index_record_count(
        &self,
        sesid: SessionHandle,
        tableid: TableHandle,
        max_records: u64,
    ) -> JetResult<u64> {
        self.with_session_call(
            sesid,
            JetCall::IndexRecordCount,
            LatchMode::Shared,
            |call| {
                let one_past = call
                    .core()
                    .options
                    .mutations
                    .is_active(crate::Mutant::RecordCountOnePastLimit);
                let limit = match max_records {
                    0 => u64::MAX,
                    // Planted bug `RecordCountOnePastLimit`: one record past the limit.
                    limit if one_past => limit.saturating_add(1),
                    limit => limit,
                };
                let mut count = 0u64;
                let mut at: Option<Vec<u8>> = None;
                loop {
                    // One step: up to RECORD_COUNT_STEP_RECORDS records past `at`. It changes
                    // nothing but its own result, so it can run again after a page read.
                    let (step_count, step_at, done) =
                        call.run_shared(&mut |state, session, reads| {
                            let (tree, versions) = (&mut reads.tree, reads.versions);
                            let (slot, generation) = owned_cursor(state, session, tableid)?;
                            let table = view(state, versions, session, slot, generation)?;
                            let (mut step_count, mut step_at) = (count, at.clone());
                            for _ in 0..RECORD_COUNT_STEP_RECORDS {
                                if step_count >= limit {
                                    return Ok((step_count, step_at, true));
                                }
                                match table.step(tree, versions, step_at.as_deref(), true)? {
                                    Some((key, _)) => {
                                        step_count += 1;
                                        step_at = Some(key);
                                    }
                                    None => return Ok((step_count, step_at, true)),
                                }
                            }
                            Ok((step_count, step_at, false))
                        })?;
                    if done {
                        return Ok(step_count);
                    }
                    (count, at) = (step_count, step_at);
                    let core = call.core();
                    crate::mark!(core.marks, RecordCountSpannedSteps);
                    let stopping = call.unlocked(|| {
                        R::yield_now();
                        matches!(core.gate.phase(), Phase::Stopping | Phase::Stopped)
                    });
                    if stopping {
                        crate::mark!(core.marks, RecordCountAbortedByStop);
                        return Err(JetError::ClientRequestToStopJetService);
                    }
                }
            },
        )
    }
}

fn check_sizes(key: &[u8], value: &[u8], mutations: crate::Mutations) -> JetResult<()> {
    // Planted bug `RecordLimitsExclusive`: a record at either limit is refused.
    let at_limit_refused = mutations.is_active(crate::Mutant::RecordLimitsExclusive)
        && (key.len() == MAX_KEY_BYTES || value.len() == MAX_VALUE_BYTES);
    if key.is_empty()
        || key.len() > MAX_KEY_BYTES
        || value.len() > MAX_VALUE_BYTES
        || at_limit_refused
    {
        return Err(JetError::RecordTooBig);
    }
    Ok(())
}

/// What a record write changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteKind {
    Insert,
    Replace,
    Delete,
}

impl WriteKind {
    /// The answer when the record's visible value says no: an insert needs the key free, a
    /// replace or delete needs a record under the cursor.
    fn refusal(self, visible: &Option<Vec<u8>>) -> Option<JetError> {
        match (self, visible) {
            (WriteKind::Insert, Some(_)) => Some(JetError::KeyDuplicate),
            (WriteKind::Replace | WriteKind::Delete, None) => Some(JetError::RecordDeleted),
            _ => None,
        }
    }
}

/// A record write as asked: an insert names its key, a replace or delete takes the cursor's.
#[derive(Clone, Copy)]
struct RecordWrite<'a> {
    tableid: TableHandle,
    kind: WriteKind,
    key: Option<&'a [u8]>,
    /// `None`: delete.
    value: Option<&'a [u8]>,
    /// The instance's planted bugs (the size check's is one).
    mutations: crate::Mutations,
}

/// The record a write names, and the transaction that writes it.
struct WriteTarget {
    cursor: (u16, u32),
    table: TableView,
    key: Vec<u8>,
    open: OpenTransaction,
}

impl WriteTarget {
    /// After a successful insert the cursor stands on the new record.
    fn move_cursor<R: Runtime>(&self, state: &InstanceState<R>, asked: &RecordWrite<'_>) {
        if asked.kind == WriteKind::Insert {
            let (slot, generation) = self.cursor;
            set_position(state, slot, generation, Position::On(self.key.clone()));
        }
    }
}

/// The checks that read only the session's own things (its cursor, its transaction) and
/// the attached databases, none of which another call changes while this one holds its
/// session and the instance latch.
fn write_target<R: Runtime>(
    state: &InstanceState<R>,
    versions: &VersionStore,
    session: SessionRef,
    asked: &RecordWrite<'_>,
) -> JetResult<WriteTarget> {
    let (slot, generation) = owned_cursor(state, session, asked.tableid)?;
    let key = match asked.key {
        Some(key) => key.to_vec(),
        None => current_key(state, slot, generation)?,
    };
    if let Some(value) = asked.value {
        check_sizes(&key, value, asked.mutations)?;
    }
    let table = view(state, versions, session, slot, generation)?;
    let open = session_entry(state, session)
        .transaction
        .get()
        .ok_or(JetError::NotInTransaction)?;
    Ok(WriteTarget {
        cursor: (slot, generation),
        table,
        key,
        open,
    })
}

/// Everything in the version store that can refuse a write, checked before anything
/// changes.
fn write_checks(versions: &mut Versions, target: &WriteTarget) -> JetResult<()> {
    versions
        .version_store
        .check_write(target.open.txn, &target.table.record(&target.key))?;
    versions.version_store.reserve()
}

/// A record write planned under the shared latches.
struct PlannedWrite {
    target: WriteTarget,
    /// The value the tree held and the staged change; `None` if the record's visible value
    /// refused the write when planned.
    change: Option<(Option<Vec<u8>>, StagedPages)>,
}

impl super::PlannedPages for PlannedWrite {
    fn encode_staged(&mut self) {
        if let Some((_, staged)) = &mut self.change {
            staged.encode();
        }
    }
}

/// [`super::WritePlan`] of a record write: every check it can make without the version
/// store's write checks, then the tree change staged through the cache, kept only if the
/// record's visible value allows the write.
fn plan_write<R: Runtime>(
    state: &InstanceState<R>,
    session: SessionRef,
    store: &Store,
    versions: &Versions,
    asked: &RecordWrite<'_>,
) -> Result<PlannedWrite, (JetError, Option<FrameKey>)> {
    let versions = &versions.version_store;
    let target = write_target(state, versions, session, asked).map_err(|e| (e, None))?;
    let storage = store
        .storage
        .as_ref()
        .ok_or((JetError::NotInitialized, None))?;
    let mut missed = None;
    let (file, root) = (target.table.file, target.table.root);
    let (before, staged) = storage
        .stage_write(file, root, &target.key, asked.value, &mut missed)
        .map_err(|e| (e, missed))?;
    // The staging walk found the record's tree value, so its visible value needs no walk of
    // its own; a write that value refuses keeps nothing it staged.
    let record = target.table.record(&target.key);
    let visible = versions.visible(&record, before.clone(), target.table.reader);
    let change = asked
        .kind
        .refusal(&visible)
        .is_none()
        .then_some((before, staged));
    Ok(PlannedWrite { target, change })
}

/// A version a planted `VersionRecordedAfterInstall` keeps out of its install: transaction,
/// level, record, before-image.
type LateVersion = (TxnId, u8, RecordId, Option<Vec<u8>>);

/// [`super::WriteInstall`] of a record write: the version store's checks, then the plan if
/// nothing it read changed (so the record's visible value, which decides the answer, did
/// not change either): the logical undo record, the staged pages, the version, all under
/// the store latch and the versions' latch held exclusively, so no reader sees the new tree
/// value without the version that hides it from other transactions.
/// Then, unless every frame it needs can be had clean, nothing: an eviction here would
/// write a page back under the store latch, so the caller makes room holding no latch and
/// plans again (`mutations` may plant `StagedWriteNotRevalidated`, which skips the first
/// check, `InstallEvictsUnderStoreLatch`, which skips the second, or
/// `VersionRecordedAfterInstall`, which leaves the version in `late_version`).
fn install_write<R: Runtime>(
    state: &InstanceState<R>,
    store: &mut Store,
    versions: &mut Versions,
    asked: &RecordWrite<'_>,
    planned: PlannedWrite,
    mutations: crate::Mutations,
    late_version: &std::cell::RefCell<Option<LateVersion>>,
) -> JetResult<Option<StoreReadings>> {
    let PlannedWrite { target, change } = planned;
    write_checks(versions, &target)?;
    let Some((before, staged)) = change else {
        // The plan was refused by the record's visible value: look again, now that nothing
        // can change under the look.
        let mut tree = TreeReads::cached(store.storage.as_ref());
        return match target
            .table
            .get(&mut tree, &versions.version_store, &target.key)
        {
            // A page the plan read was evicted since: plan again.
            Err(_) if tree.missed().is_some() => Ok(None),
            visible => match asked.kind.refusal(&visible?) {
                Some(refused) => Err(refused),
                None => Ok(None),
            },
        };
    };
    // The plan's pages unchanged mean the record's visible value is unchanged too: a write
    // to the record changes its leaf (a version comes only with a tree change). A commit
    // changes versions without one, but only its own transaction's, which the plan already
    // refused (`WriteConflict`) since they were uncommitted when it looked; a rollback puts
    // its before-images back through the tree.
    let storage = store.storage.as_mut().ok_or(JetError::NotInitialized)?;
    let revalidates = !mutations.is_active(crate::Mutant::StagedWriteNotRevalidated);
    if revalidates && !storage.staged_is_current(&staged) {
        return Ok(None);
    }
    let checks_room = !mutations.is_active(crate::Mutant::InstallEvictsUnderStoreLatch);
    if checks_room && !storage.staged_have_clean_room(std::slice::from_ref(&staged)) {
        return Ok(None);
    }
    let (file, table_root) = (target.table.file, target.table.root);
    storage.append_log(LogRecord::Undo {
        txn: target.open.txn,
        file,
        table_root,
        key: target.key.clone(),
        before: before.clone(),
    })?;
    storage.install_staged(staged)?;
    let record = target.table.record(&target.key);
    if mutations.is_active(crate::Mutant::VersionRecordedAfterInstall) {
        *late_version.borrow_mut() = Some((target.open.txn, target.open.level, record, before));
    } else {
        versions
            .version_store
            .record_write(target.open.txn, target.open.level, record, before);
    }
    target.move_cursor(state, asked);
    Ok(Some(StoreReadings::of(store, versions)))
}

/// Applies a checked write under the exclusive instance latch: logical undo record, then the
/// B+tree, then the version.
fn write<R: Runtime>(
    state: &mut InstanceState<R>,
    target: &WriteTarget,
    value: Option<&[u8]>,
) -> JetResult<()> {
    let (open, table, key) = (target.open, &target.table, target.key.as_slice());
    let storage = state
        .store
        .get_mut()
        .storage
        .as_mut()
        .ok_or(JetError::NotInitialized)?;
    let before = storage.get(table.file, table.root, key)?;
    storage.append_log(LogRecord::Undo {
        txn: open.txn,
        file: table.file,
        table_root: table.root,
        key: key.to_vec(),
        before: before.clone(),
    })?;
    match value {
        Some(value) => storage.put(table.file, table.root, key, value)?,
        None => storage.remove(table.file, table.root, key)?,
    };
    state.versions_mut().version_store.record_write(
        open.txn,
        open.level,
        table.record(key),
        before,
    );
    Ok(())
}
