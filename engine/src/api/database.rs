//! Databases (create, attach, detach, open, close, defragment) and tables (create, open,
//! close, delete).

use super::calls::JetCall;
use super::handles::{DatabaseHandle, SessionHandle, TableHandle};
use super::session::{close_cursors, session_entry};
use super::{Jet, LatchMode, SessionRef};
use crate::env::io::Io;
use crate::error::{JetError, JetResult};
use crate::instance::{
    AttachedDatabase, Cursor, CursorLevel, CursorPosition, InstanceCore, InstanceState, Position,
};
use crate::runtime::Runtime;
use crate::storage::{FileId, Storage};

/// `JetDefragment` grbits.
pub mod defrag_grbit {
    /// `JET_bitDefragmentBatchStart`.
    pub const BATCH_START: u32 = 0x1;
    /// `JET_bitDefragmentBatchStop`.
    pub const BATCH_STOP: u32 = 0x2;
}

/// What `attach_database` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachOutcome {
    Attached,
    /// ESE's warning `JET_wrnDatabaseAttached` (+1007): it already was.
    AlreadyAttached,
}

/// Longest table name (ESE: `JET_cbNameMost`).
pub const TABLE_NAME_BYTES_MAX: usize = 64;

fn valid_table_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= TABLE_NAME_BYTES_MAX
        && !name.bytes().any(|b| b.is_ascii_control())
}

/// A database path is a relative, `/`-separated name in the instance's file store, judged
/// the same on every backend: empty or over 255 bytes is `InvalidParameter`; a control byte
/// (NUL included), a backslash, a leading `/` or an empty, `.` or `..` component is ESE's
/// `JET_errInvalidPath`. Decided here, before any I/O: a file system would reject some of
/// these with an I/O error, which fail-stops the instance.
fn check_database_path(path: &str) -> JetResult<()> {
    if path.is_empty() || path.len() > 255 {
        return Err(JetError::InvalidParameter);
    }
    let bad_byte = path.bytes().any(|b| b.is_ascii_control() || b == b'\\');
    let bad_component = path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..");
    if bad_byte || bad_component {
        return Err(JetError::InvalidPath);
    }
    Ok(())
}

impl<R: Runtime> Jet<R> {
    /// `JetCreateDatabase`: creates, attaches and opens a database (not inside a transaction).
    pub fn create_database(&self, sesid: SessionHandle, path: &str) -> JetResult<DatabaseHandle> {
        let generation = self.next_generation();
        self.with_session(
            sesid,
            JetCall::CreateDatabase,
            |core, state, session, orders| {
                check_database_path(path)?;
                no_transaction(state, session)?;
                if find_attached(state, path).is_some() {
                    return Err(JetError::DatabaseDuplicate);
                }
                let slot =
                    self.attach_file(core, state, path, generation, Storage::create_database)?;
                session_entry(state, session)
                    .open_databases
                    .with(|open| *open.entry(slot).or_insert(0) += 1);
                orders.wrote = true;
                Ok(DatabaseHandle::new(
                    core.handle.parts().expect("live").instance_slot,
                    slot,
                    generation,
                ))
            },
        )
    }

    /// `JetAttachDatabase` (not inside a transaction).
    pub fn attach_database(&self, sesid: SessionHandle, path: &str) -> JetResult<AttachOutcome> {
        let generation = self.next_generation();
        self.with_session(sesid, JetCall::AttachDatabase, |core, state, session, _| {
            check_database_path(path)?;
            no_transaction(state, session)?;
            if find_attached(state, path).is_some() {
                return Ok(AttachOutcome::AlreadyAttached);
            }
            self.attach_file(core, state, path, generation, Storage::attach_database)?;
            Ok(AttachOutcome::Attached)
        })
    }

    /// The steps `create_database` and `attach_database` share once `path` is known not to
    /// be attached: a free slot, the path claimed across instances, `open` on the storage
    /// (the claim given back if it fails), then the slot filled. Returns the slot.
    fn attach_file(
        &self,
        core: &InstanceCore<R>,
        state: &mut InstanceState<R>,
        path: &str,
        generation: u32,
        open: impl FnOnce(&mut Storage, &dyn Io, &str) -> JetResult<FileId>,
    ) -> JetResult<u16> {
        if state.databases.next_free_slot().is_none() {
            return Err(JetError::TooManyAttachedDatabases);
        }
        let storage = state.storage_mut()?;
        self.claim_database(core, path)?;
        // Planted bug `FailedAttachKeepsClaim` keeps the claim of a failed open.
        let keeps_claim = core
            .options
            .mutations
            .is_active(crate::Mutant::FailedAttachKeepsClaim);
        let file = open(storage, core.env.io.as_ref(), path).inspect_err(|_| {
            if !keeps_claim {
                self.release_database(core.handle, path)
            }
        })?;
        let attached = AttachedDatabase {
            file,
            path: path.to_owned(),
        };
        Ok(state
            .databases
            .insert(generation, attached)
            .expect("free slot checked"))
    }

    /// `JetDetachDatabase`: refused inside a transaction and while any session has it open.
    pub fn detach_database(&self, sesid: SessionHandle, path: &str) -> JetResult<()> {
        let detached =
            self.with_session(sesid, JetCall::DetachDatabase, |core, state, session, _| {
                no_transaction(state, session)?;
                let (slot, generation, file) =
                    find_attached(state, path).ok_or(JetError::DatabaseNotFound)?;
                let open_anywhere = state
                    .sessions
                    .get_mut()
                    .iter()
                    .any(|(_, _, s)| s.open_databases.with(|open| open.contains_key(&slot)));
                if open_anywhere {
                    return Err(JetError::DatabaseInUse);
                }
                if state
                    .cursors
                    .get_mut()
                    .iter()
                    .any(|(_, _, c)| c.database_slot == slot)
                {
                    return Err(JetError::DatabaseInUse);
                }
                // ESE (`ErrIsamDetachDatabase`, db.cxx) cleans the database's versions first and
                // returns JET_errDatabaseInUse if any remain: a transaction of some session
                // still touches the database (its rollback needs the pages, and its snapshot
                // must not see them change under it). The cleanup drops only versions no
                // transaction can see, so it changes nothing anyone observes.
                if state
                    .versions_mut()
                    .version_store
                    .database_has_versions(file)
                {
                    state.versions_mut().version_store.cleanup();
                    if state
                        .versions_mut()
                        .version_store
                        .database_has_versions(file)
                    {
                        crate::mark!(core.marks, DetachRefusedVersions);
                        return Err(JetError::DatabaseInUse);
                    }
                }
                // Planted bug `DetachBesideWriteBack` does not wait.
                if !core
                    .options
                    .mutations
                    .is_active(crate::Mutant::DetachBesideWriteBack)
                {
                    crate::instance::worker::wait_for_write_back(core);
                }
                let storage = state.storage_mut()?;
                storage.detach_database(file)?;
                state.databases.remove(slot, generation);
                self.release_database(core.handle, path);
                Ok(file)
            })?;
        // A detached database is no longer a defrag target.
        let sesid_parts = sesid.parts().expect("validated");
        if let Some(core) = self.core_by_slot(sesid_parts.instance_slot) {
            core.worker.signal(|w| {
                w.defrag_started.remove(&detached);
            });
        }
        Ok(())
    }

    /// `JetOpenDatabase`: the database must be attached. Under the instance latch held
    /// shared: it reads the attached databases (which only exclusive calls change) and
    /// counts the open in its own session.
    pub fn open_database(&self, sesid: SessionHandle, path: &str) -> JetResult<DatabaseHandle> {
        self.with_session_call(sesid, JetCall::OpenDatabase, LatchMode::Shared, |scope| {
            let instance_slot = scope.core().handle.parts().expect("live").instance_slot;
            scope.run_registry(|state, session| {
                let (slot, generation, _) =
                    find_attached(state, path).ok_or(JetError::DatabaseNotFound)?;
                session_entry(state, session)
                    .open_databases
                    .with(|open| *open.entry(slot).or_insert(0) += 1);
                Ok(DatabaseHandle::new(instance_slot, slot, generation))
            })
        })
    }

    /// `JetCloseDatabase`: opens are counted per session; the last close also closes the
    /// session's tables in that database. Shares the latch as `open_database` does (the
    /// tables close under the open tables' own lock).
    pub fn close_database(&self, sesid: SessionHandle, dbid: DatabaseHandle) -> JetResult<()> {
        self.with_session_call(sesid, JetCall::CloseDatabase, LatchMode::Shared, |scope| {
            scope.run_registry(|state, session| {
                let (slot, _) = opened_database(state, session, dbid)?;
                let last = session_entry(state, session).open_databases.with(|open| {
                    let count = open.get_mut(&slot).expect("checked open");
                    *count -= 1;
                    let last = *count == 0;
                    if last {
                        open.remove(&slot);
                    }
                    last
                });
                if last {
                    close_cursors(state, session, |cursor| cursor.database_slot == slot);
                }
                Ok(())
            })
        })
    }

    /// `JetDefragment`: starts or stops online defragmentation of one database. Under the
    /// instance latch held shared: the call only checks its handle; the worker's own state
    /// records the request.
    pub fn defragment(
        &self,
        sesid: SessionHandle,
        dbid: DatabaseHandle,
        grbit: u32,
    ) -> JetResult<()> {
        let file =
            self.with_session_call(sesid, JetCall::Defragment, LatchMode::Shared, |scope| {
                scope.run_registry(|state, session| {
                    if grbit != defrag_grbit::BATCH_START && grbit != defrag_grbit::BATCH_STOP {
                        return Err(JetError::InvalidGrbit);
                    }
                    let (_, file) = opened_database(state, session, dbid)?;
                    Ok(file)
                })
            })?;
        let parts = sesid.parts().expect("validated");
        if let Some(core) = self.core_by_slot(parts.instance_slot) {
            core.worker.signal(|w| {
                if grbit == defrag_grbit::BATCH_START {
                    w.defrag_started.insert(file);
                    w.defrag_work_pending = true;
                } else {
                    w.defrag_started.remove(&file);
                }
            });
        }
        Ok(())
    }

    /// `JetCreateTable`: creates the table and returns it open. DDL is not versioned: a
    /// rollback does not drop a table created inside the transaction (a simplification of
    /// ESE, which does).
    pub fn create_table(
        &self,
        sesid: SessionHandle,
        dbid: DatabaseHandle,
        name: &str,
    ) -> JetResult<TableHandle> {
        let generation = self.next_generation();
        self.with_session(
            sesid,
            JetCall::CreateTable,
            |core, state, session, orders| {
                let (slot, file) = table_to_open(state, session, dbid, name)?;
                let storage = state.storage_mut()?;
                let root = storage.create_table(file, name)?;
                orders.wrote = true;
                let instance_slot = core.handle.parts().expect("live").instance_slot;
                open_cursor(instance_slot, state, session, slot, name, root, generation)
            },
        )
    }

    /// `JetOpenTable`.
    pub fn open_table(
        &self,
        sesid: SessionHandle,
        dbid: DatabaseHandle,
        name: &str,
    ) -> JetResult<TableHandle> {
        let generation = self.next_generation();
        // Under the instance latch held shared, beside other calls: the catalog is read as
        // any read-only call reads (a miss is read with no latch held, and the body runs
        // again), and the cursor is added under the open tables' own lock, in the same run
        // as the look-up, so no detach or table deletion (each under the exclusive latch)
        // falls between the two.
        self.with_session_read(sesid, JetCall::OpenTable, |state, session, reads| {
            let (slot, file) = table_to_open(state, session, dbid, name)?;
            let root = reads
                .tree
                .table_root(file, name)?
                .ok_or(JetError::ObjectNotFound)?;
            let instance_slot = sesid.parts().expect("the call resolved it").instance_slot;
            open_cursor(instance_slot, state, session, slot, name, root, generation)
        })
    }

    /// `JetCloseTable`.
    pub fn close_table(&self, sesid: SessionHandle, tableid: TableHandle) -> JetResult<()> {
        // Under the instance latch held shared: only the open tables change, under their
        // own lock, and only this session's cursor, which no other call uses.
        self.with_session_call(sesid, JetCall::CloseTable, LatchMode::Shared, |scope| {
            scope.run_registry(|state, session| {
                let (slot, generation) = owned_cursor(state, session, tableid)?;
                state.cursors.write().remove(slot, generation);
                Ok(())
            })
        })
    }

    /// `JetDeleteTable`: refused while any cursor has it open or versions still refer to it.
    pub fn delete_table(
        &self,
        sesid: SessionHandle,
        dbid: DatabaseHandle,
        name: &str,
    ) -> JetResult<()> {
        self.with_session(sesid, JetCall::DeleteTable, |_, state, session, orders| {
            let (slot, file) = opened_database(state, session, dbid)?;
            if !valid_table_name(name) {
                return Err(JetError::InvalidName);
            }
            let storage = state.storage_mut()?;
            let root = storage
                .table_root(file, name)?
                .ok_or(JetError::ObjectNotFound)?;
            let open = state
                .cursors
                .get_mut()
                .iter()
                .any(|(_, _, c)| c.database_slot == slot && c.table_root == root);
            if open {
                return Err(JetError::TableInUse);
            }
            if state
                .versions_mut()
                .version_store
                .table_has_versions(file, root)
            {
                state.versions_mut().version_store.cleanup();
                if state
                    .versions_mut()
                    .version_store
                    .table_has_versions(file, root)
                {
                    return Err(JetError::TableInUse);
                }
            }
            let storage = state.storage_mut()?;
            storage.delete_table(file, name)?;
            orders.wrote = true;
            Ok(())
        })
    }
}

fn no_transaction<R: Runtime>(state: &InstanceState<R>, session: SessionRef) -> JetResult<()> {
    match session_entry(state, session).transaction.get() {
        Some(_) => Err(JetError::InTransaction),
        None => Ok(()),
    }
}

/// `(slot, generation, file)` of the database attached at `path`.
fn find_attached<R: Runtime>(state: &InstanceState<R>, path: &str) -> Option<(u16, u32, FileId)> {
    state
        .databases
        .iter()
        .find(|(_, _, db)| db.path == path)
        .map(|(slot, generation, db)| (slot, generation, db.file))
}

/// What `create_table` and `open_table` check before they touch the storage: the database
/// open in this session, a valid name and a free cursor slot. Returns `(slot, file)` of the
/// database.
fn table_to_open<R: Runtime>(
    state: &InstanceState<R>,
    session: SessionRef,
    dbid: DatabaseHandle,
    name: &str,
) -> JetResult<(u16, FileId)> {
    let (slot, file) = opened_database(state, session, dbid)?;
    if !valid_table_name(name) {
        return Err(JetError::InvalidName);
    }
    if state.cursors.read().next_free_slot().is_none() {
        return Err(JetError::TooManyOpenTables);
    }
    Ok((slot, file))
}

/// The database `dbid` names, which this session must have open: `(slot, file)`. Same shape
/// as [`owned_cursor`] (handle, slot, ownership); kept apart because the two handle kinds
/// answer with different JET errors and are owned in different ways (a count per session
/// against the cursor's own session).
pub(crate) fn opened_database<R: Runtime>(
    state: &InstanceState<R>,
    session: SessionRef,
    dbid: DatabaseHandle,
) -> JetResult<(u16, FileId)> {
    let parts = dbid.parts().ok_or(JetError::InvalidDatabaseId)?;
    let db = state
        .databases
        .get(parts.object_slot, parts.generation)
        .ok_or(JetError::InvalidDatabaseId)?;
    if !session_entry(state, session)
        .open_databases
        .with(|open| open.contains_key(&parts.object_slot))
    {
        return Err(JetError::InvalidDatabaseId);
    }
    Ok((parts.object_slot, db.file))
}

/// The cursor `tableid` names, which must belong to this session: `(slot, generation)`. Same
/// shape as [`opened_database`]; kept apart for the reason given there.
pub(crate) fn owned_cursor<R: Runtime>(
    state: &InstanceState<R>,
    session: SessionRef,
    tableid: TableHandle,
) -> JetResult<(u16, u32)> {
    let parts = tableid.parts().ok_or(JetError::InvalidTableId)?;
    let cursors = state.cursors.read();
    let cursor = cursors
        .get(parts.object_slot, parts.generation)
        .ok_or(JetError::InvalidTableId)?;
    if cursor.session_slot != session.slot || cursor.session_generation != session.generation {
        return Err(JetError::SesidTableIdMismatch);
    }
    Ok((parts.object_slot, parts.generation))
}

/// Opens a cursor on `name` (rooted at `table_root`) for `session`: what `create_table` and
/// `open_table` end with.
fn open_cursor<R: Runtime>(
    instance_slot: u8,
    state: &InstanceState<R>,
    session: SessionRef,
    database_slot: u16,
    name: &str,
    table_root: crate::storage::PageNumber,
    generation: u32,
) -> JetResult<TableHandle> {
    let level = session_entry(state, session)
        .transaction
        .get()
        .map_or(0, |t| t.level);
    let slot = state
        .cursors
        .write()
        .insert(
            generation,
            Cursor {
                session_slot: session.slot,
                session_generation: session.generation,
                database_slot,
                table_name: name.to_owned(),
                table_root,
                opened_at_level: CursorLevel::new(level),
                position: CursorPosition::new(Position::BeforeFirst),
            },
        )
        .ok_or(JetError::TooManyOpenTables)?;
    Ok(TableHandle::new(instance_slot, slot, generation))
}
