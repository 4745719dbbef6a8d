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
use super::{Jet, LatchMode, SessionRef};
use crate::error::{JetError, JetResult};
use crate::instance::gate::Phase;
use crate::instance::{InstanceState, Position};
use crate::runtime::Runtime;
use crate::storage::{FileId, LogRecord, PageNumber, TreeReads, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::transaction::{Reader, RecordId, VersionStore};

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
    let InstanceState {
        storage,
        version_store,
        ..
    } = state;
    table.get(&mut TreeReads::Locked(storage.as_mut()), version_store, key)
}

fn view<R: Runtime>(
    state: &InstanceState<R>,
    session: SessionRef,
    slot: u16,
    generation: u32,
) -> JetResult<TableView> {
    let cursor = state
        .cursors
        .get(slot, generation)
        .expect("cursor validated");
    let database = state
        .databases
        .iter()
        .find(|(db_slot, _, _)| *db_slot == cursor.database_slot)
        .map(|(_, _, db)| db.file)
        .ok_or(JetError::InvalidTableId)?;
    let reader = match session_entry(state, session).transaction {
        Some(open) => state.version_store.reader_for(open.txn)?,
        None => state.version_store.reader_outside_transaction(),
    };
    Ok(TableView {
        file: database,
        root: cursor.table_root,
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
    match state
        .cursors
        .get(slot, generation)
        .expect("cursor validated")
        .position
        .get()
    {
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
        self.with_session_read(sesid, JetCall::Seek, |state, session, tree| {
            let (slot, generation) = owned_cursor(state, session, tableid)?;
            if key.len() > MAX_KEY_BYTES {
                return Err(JetError::RecordTooBig);
            }
            let table = view(state, session, slot, generation)?;
            let versions = &state.version_store;
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
        self.with_session_read(sesid, JetCall::Move, |state, session, tree| {
            let (slot, generation) = owned_cursor(state, session, tableid)?;
            let table = view(state, session, slot, generation)?;
            let versions = &state.version_store;
            let position = state
                .cursors
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
        self.with_session_read(sesid, JetCall::Retrieve, |state, session, tree| {
            let (slot, generation) = owned_cursor(state, session, tableid)?;
            let key = current_key(state, slot, generation)?;
            let table = view(state, session, slot, generation)?;
            let value = table
                .get(tree, &state.version_store, &key)?
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
        self.with_session(sesid, JetCall::Insert, |_, state, session, orders| {
            let (slot, generation) = owned_cursor(state, session, tableid)?;
            check_sizes(key, value)?;
            let table = view(state, session, slot, generation)?;
            write_checks(state, session, &table, key)?;
            if locked_get(state, &table, key)?.is_some() {
                return Err(JetError::KeyDuplicate);
            }
            write(state, session, &table, key, Some(value))?;
            set_position(state, slot, generation, Position::On(key.to_vec()));
            orders.wrote = true;
            Ok(())
        })
    }

    /// `JetUpdate` after `JET_prepReplace`: a new value for the record under the cursor.
    pub fn replace(
        &self,
        sesid: SessionHandle,
        tableid: TableHandle,
        value: &[u8],
    ) -> JetResult<()> {
        self.with_session(sesid, JetCall::Replace, |_, state, session, orders| {
            let (slot, generation) = owned_cursor(state, session, tableid)?;
            let key = current_key(state, slot, generation)?;
            check_sizes(&key, value)?;
            let table = view(state, session, slot, generation)?;
            write_checks(state, session, &table, &key)?;
            locked_get(state, &table, &key)?.ok_or(JetError::RecordDeleted)?;
            write(state, session, &table, &key, Some(value))?;
            orders.wrote = true;
            Ok(())
        })
    }

    /// `JetDelete` of the record under the cursor; the cursor stays on the deleted key.
    pub fn delete(&self, sesid: SessionHandle, tableid: TableHandle) -> JetResult<()> {
        self.with_session(sesid, JetCall::Delete, |_, state, session, orders| {
            let (slot, generation) = owned_cursor(state, session, tableid)?;
            let key = current_key(state, slot, generation)?;
            let table = view(state, session, slot, generation)?;
            write_checks(state, session, &table, &key)?;
            locked_get(state, &table, &key)?.ok_or(JetError::RecordDeleted)?;
            write(state, session, &table, &key, None)?;
            orders.wrote = true;
            orders.deleted = true;
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
        let limit = if max_records == 0 {
            u64::MAX
        } else {
            max_records
        };
        self.with_session_call(
            sesid,
            JetCall::IndexRecordCount,
            LatchMode::Shared,
            |call| {
                let mut count = 0u64;
                let mut at: Option<Vec<u8>> = None;
                loop {
                    // One step: up to RECORD_COUNT_STEP_RECORDS records past `at`. It changes
                    // nothing but its own result, so it can run again after a page read.
                    let (step_count, step_at, done) =
                        call.run_shared(&mut |state, session, tree| {
                            let (slot, generation) = owned_cursor(state, session, tableid)?;
                            let table = view(state, session, slot, generation)?;
                            let versions = &state.version_store;
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

fn check_sizes(key: &[u8], value: &[u8]) -> JetResult<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
        return Err(JetError::RecordTooBig);
    }
    Ok(())
}

/// Everything that can refuse a write, checked before anything changes.
fn write_checks<R: Runtime>(
    state: &mut InstanceState<R>,
    session: SessionRef,
    table: &TableView,
    key: &[u8],
) -> JetResult<()> {
    let open = session_entry(state, session)
        .transaction
        .ok_or(JetError::NotInTransaction)?;
    state
        .version_store
        .check_write(open.txn, &table.record(key))?;
    state.version_store.reserve()
}

/// Applies a checked write: logical undo record, then the B+tree, then the version.
fn write<R: Runtime>(
    state: &mut InstanceState<R>,
    session: SessionRef,
    table: &TableView,
    key: &[u8],
    value: Option<&[u8]>,
) -> JetResult<()> {
    let open = session_entry(state, session)
        .transaction
        .expect("write_checks ran");
    let storage = state.storage.as_mut().ok_or(JetError::NotInitialized)?;
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
    state
        .version_store
        .record_write(open.txn, open.level, table.record(key), before);
    Ok(())
}
