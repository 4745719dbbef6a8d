//! Sessions, session contexts and transactions.

use super::calls::JetCall;
use super::handles::{InstanceHandle, SessionHandle};
use super::{Jet, LatchMode, SessionCall, SessionRef, StoreReadings, StoreReads, WakeOrders};
use crate::error::{JetError, JetResult};
use crate::instance::mutations::Mutant;
use crate::instance::{
    InstanceCore, InstanceState, OpenTransaction, Session, SessionCell, SessionContext, Store,
    Versions, TRANSACTION_LEVEL_MAX,
};
use crate::runtime::Runtime;
use crate::storage::{FileId, FrameKey, LogRecord, Lsn, StagedPages, UndoEntry};
use crate::transaction::{RecordId, TxnId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What `get_session_info` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// 0 outside a transaction.
    pub transaction_level: u8,
    pub context: Option<u64>,
    pub open_tables: u32,
    pub open_databases: u32,
}

impl<R: Runtime> Jet<R> {
    /// `JetBeginSession`. Under the instance latch held shared: the session is added under
    /// the sessions' own lock, beside other calls.
    pub fn begin_session(&self, instance: InstanceHandle) -> JetResult<SessionHandle> {
        let core = self.core(instance)?;
        let parts = instance.parts().expect("resolved above");
        let generation = self.next_generation();
        let (_pass, state) = Self::enter_instance_shared(&core, JetCall::BeginSession)?;
        let session = Session {
            context: SessionCell::new(None),
            transaction: Default::default(),
            open_databases: SessionCell::new(BTreeMap::new()),
            claim: Default::default(),
        };
        let slot = state
            .sessions
            .write()
            .insert(generation, Arc::new(session))
            .ok_or(JetError::OutOfSessions)?;
        Ok(SessionHandle::new(parts.instance_slot, slot, generation))
    }

    /// `JetEndSession`: refused with `SessionInUse` while a context is set (even by the calling
    /// thread); otherwise rolls back every level, closes the session's tables and databases,
    /// and frees the session. Under the instance latch held shared: each level is rolled
    /// back as `rollback` does it, and the session and its tables leave their own locks.
    pub fn end_session(&self, sesid: SessionHandle) -> JetResult<()> {
        self.with_session_call(sesid, JetCall::EndSession, LatchMode::Shared, |scope| {
            let mutations = scope.core().options.mutations;
            let ignores_context = mutations.is_active(Mutant::EndSessionIgnoresContext);
            let own = |state: &InstanceState<R>, session| session_entry(state, session);
            if scope.look(own).context.get().is_some() && !ignores_context {
                return Err(JetError::SessionInUse);
            }
            while scope.look(own).transaction.get().is_some() {
                roll_back_innermost(scope, false)?;
                // Planted bug `EndSessionRollsBackOneLevel`: the outer levels stay open.
                if mutations.is_active(Mutant::EndSessionRollsBackOneLevel) {
                    break;
                }
            }
            scope.look(|state, session| {
                close_cursors(state, session, |_| true);
                let removed = state
                    .sessions
                    .write()
                    .remove(session.slot, session.generation);
                debug_assert!(removed.is_some(), "the call holds its session");
            });
            scope.note_session_ended();
            Ok(())
        })
    }

    /// `JetSetSessionContext`: binds the session to `context` and the calling thread. Under
    /// the instance latch held shared: it changes only its own session's context, which only
    /// the call holding the session reads as authoritative (see [`SessionCall`]).
    ///
    /// [`SessionCall`]: super::SessionCall
    pub fn set_session_context(&self, sesid: SessionHandle, context: u64) -> JetResult<()> {
        self.with_own_session(sesid, JetCall::SetSessionContext, |_, entry| {
            if context == 0 || context == u64::MAX {
                return Err(JetError::InvalidParameter);
            }
            entry.context.with(|current| {
                if current.is_some() {
                    return Err(JetError::SessionContextAlreadySet);
                }
                *current = Some(SessionContext {
                    value: context,
                    thread: R::current_thread_id(),
                });
                Ok(())
            })
        })
    }

    /// `JetResetSessionContext`: only the thread that set the context may reset it. Shares
    /// the latch as `set_session_context` does.
    pub fn reset_session_context(&self, sesid: SessionHandle) -> JetResult<()> {
        self.with_own_session(sesid, JetCall::ResetSessionContext, |core, entry| {
            let any_thread = core
                .options
                .mutations
                .is_active(Mutant::ResetContextFromAnyThread);
            entry.context.with(|current| match *current {
                Some(context) if any_thread || context.thread == R::current_thread_id() => {
                    *current = None;
                    Ok(())
                }
                _ => Err(JetError::SessionContextNotSetByThisThread),
            })
        })
    }

    /// `JetGetSessionInfo` (ESE lets it through after a stop). Shares the latch: it reads its
    /// own session and the open tables.
    pub fn get_session_info(&self, sesid: SessionHandle) -> JetResult<SessionInfo> {
        self.with_session_call(sesid, JetCall::GetSessionInfo, LatchMode::Shared, |scope| {
            scope.run_registry(|state, session| {
                let entry = session_entry(state, session);
                let open_tables = state
                    .cursors
                    .read()
                    .iter()
                    .filter(|(_, _, c)| {
                        c.session_slot == session.slot && c.session_generation == session.generation
                    })
                    .count();
                Ok(SessionInfo {
                    transaction_level: entry.transaction.get().map_or(0, |t| t.level),
                    context: entry.context.get().map(|c| c.value),
                    open_tables: u32::try_from(open_tables).expect("bounded by CURSORS_MAX"),
                    open_databases: entry
                        .open_databases
                        .with(|open| u32::try_from(open.len()).expect("bounded by DATABASES_MAX")),
                })
            })
        })
    }

    /// A call that changes only its own session's cells: the instance latch held shared, no
    /// other latch (see [`super::SessionCall::run_registry`]).
    fn with_own_session<T>(
        &self,
        sesid: SessionHandle,
        call: JetCall,
        body: impl FnOnce(&InstanceCore<R>, &Session<R>) -> JetResult<T>,
    ) -> JetResult<T> {
        self.with_session_call(sesid, call, LatchMode::Shared, |scope| {
            let core = scope.core();
            scope.run_registry(|state, session| body(core, &session_entry(state, session)))
        })
    }

    /// `JetBeginTransaction`: level 1 takes a snapshot; up to 7 levels nest. Holds the
    /// instance latch shared: it changes only its own session and, for level 1, under the
    /// versions' latch, the version store, so it runs beside reads and record writes and
    /// never waits for the store latch. A nested level changes only the session's
    /// transaction cell, which only the call holding the session changes: no latch at all.
    pub fn begin_transaction(&self, sesid: SessionHandle) -> JetResult<()> {
        self.with_session_call(
            sesid,
            JetCall::BeginTransaction,
            LatchMode::Shared,
            |call| {
                let level_max = if call
                    .core()
                    .options
                    .mutations
                    .is_active(Mutant::TransactionLimitOffByOne)
                {
                    TRANSACTION_LEVEL_MAX + 1
                } else {
                    TRANSACTION_LEVEL_MAX
                };
                let open =
                    call.look(|state, session| session_entry(state, session).transaction.get());
                let next = match open {
                    None => call.run_versions(&mut |_, _, _, versions| {
                        Ok(OpenTransaction {
                            txn: versions.version_store.begin(),
                            level: 1,
                        })
                    })?,
                    Some(open) if open.level >= level_max => return Err(JetError::TransTooDeep),
                    Some(open) => OpenTransaction {
                        level: open.level + 1,
                        ..open
                    },
                };
                call.look(|state, session| {
                    session_entry(state, session).transaction.set(Some(next))
                });
                Ok(())
            },
        )
    }

    /// `JetCommitTransaction`: commits the innermost level. Level 1 gets a commit timestamp;
    /// its commit record is made durable before the commit takes effect and the call returns.
    /// The call waits for the log with no lock held, and commits appended meanwhile share
    /// the same sync (group commit); until the sync, the transaction's writes stay invisible
    /// to others, so nobody reads a commit a crash could still undo. A `StopAndEmitLog` that
    /// makes the record durable while the call waits publishes the commit itself, before the
    /// log ends (see `publish_durable_commits`); the call then finds it done.
    ///
    /// Holds the instance latch shared, as a record write does: every step changes only its
    /// own session (and its cursors' levels) and the version store under the versions'
    /// latch, and the level-1 append the log too, under the log's own short lock with the
    /// store latch held shared (as the group-commit flush's start and end). So commits run
    /// beside each other and beside reads' walks and writes' plans, waiting only for a
    /// write's install, and two committers' work overlaps while one's group-commit sync is
    /// out; a nested commit and a publish take no store latch.
    pub fn commit_transaction(&self, sesid: SessionHandle) -> JetResult<()> {
        self.with_session_call(
            sesid,
            JetCall::CommitTransaction,
            LatchMode::Shared,
            |call| {
                // The session's transaction is a cell only the call holding the session
                // changes: read with no latch, so a level-1 commit takes one section less.
                let open = call
                    .look(|state, session| session_entry(state, session).transaction.get())
                    .ok_or(JetError::NotInTransaction)?;
                if open.level > 1 {
                    let keeps_table_levels = call
                        .core()
                        .options
                        .mutations
                        .is_active(Mutant::NestedCommitKeepsTableLevels);
                    return call.run_versions(&mut |_, state, session, versions| {
                        versions.version_store.commit_level(open.txn, open.level)?;
                        let new_level = open.level - 1;
                        session_entry(state, session)
                            .transaction
                            .set(Some(OpenTransaction {
                                level: new_level,
                                ..open
                            }));
                        // Tables opened inside the committed level now belong to the
                        // enclosing one (planted bug `NestedCommitKeepsTableLevels`: not).
                        if !keeps_table_levels {
                            for_each_cursor_of(state, session, |cursor| {
                                cursor.opened_at_level.lower_to(new_level);
                            });
                        }
                        Ok(())
                    });
                }
                let logged = call.run_commit_append(&mut |core, storage, versions| {
                    let crate::instance::Versions {
                        version_store,
                        logged_commits,
                    } = versions;
                    // Log first: if the log cannot be made durable, the transaction stays open and
                    // nothing changed.
                    let (lsn, tip_lsn) = storage.append_commit(&LogRecord::Commit {
                        txn: open.txn,
                        commit_ts: version_store.next_commit_ts(),
                    })?;
                    if R::GROUP_COMMIT_SPINS > 0 {
                        core.commit_gathering
                            .commit_records_appended
                            .fetch_add(1, std::sync::atomic::Ordering::Release);
                    }
                    let previous = logged_commits.insert(open.txn, tip_lsn);
                    debug_assert_eq!(previous, None, "one commit call per transaction");
                    Ok((open.txn, lsn))
                })?;
                let (txn, lsn) = logged;
                let acknowledged_early = call
                    .core()
                    .options
                    .mutations
                    .is_active(Mutant::CommitAckBeforeLogSync);
                if !acknowledged_early {
                    if let Err(error) = call.wait_durable(lsn) {
                        // In doubt (the record may be on disk) and the instance is fail-stop:
                        // the transaction stays open, unpublished, until term.
                        call.run_versions(&mut |_, _, _, versions| {
                            versions.logged_commits.remove(&txn);
                            Ok(())
                        })?;
                        return Err(error);
                    }
                }
                call.note_commit();
                call.run_versions(&mut |_, state, session, versions| {
                    // A StopAndEmitLog that made the record durable while this call waited
                    // published the commit already (and removed the entry).
                    if versions.logged_commits.remove(&txn).is_some() {
                        publish_commit(state, versions, session)?;
                    }
                    Ok(())
                })
            },
        )
    }

    /// `JetRollback`: undoes the innermost level and closes the tables opened in it.
    pub fn rollback(&self, sesid: SessionHandle) -> JetResult<()> {
        self.with_session_call(sesid, JetCall::Rollback, LatchMode::Shared, |scope| {
            let mutations = scope.core().options.mutations;
            let keep_tables = mutations.is_active(Mutant::RollbackLeavesTablesOpen);
            if mutations.is_active(Mutant::RollbackReadsUnderLatch) {
                scope.latch_exclusively()?;
                return scope.run(&mut |_: &InstanceCore<R>, state, session, orders| {
                    rollback_body(state, session, orders, keep_tables)
                });
            }
            roll_back_innermost(scope, keep_tables)
        })
    }
}

/// Rolls back the innermost level of the call's session, and, unless `keep_tables` (the
/// planted bug `RollbackLeavesTablesOpen`), closes the tables opened in it. Under the shared
/// latches, as a record write: the level's undo staged as one change (a plan per file) and
/// installed at once with the Rollback record, the versions dropped and the tables closed.
/// Plans that keep losing races end under the exclusive latch, after the pages are read
/// ahead with no latch held across a read; a call already holding the latch exclusively
/// (an earlier level's last path) rolls back under it.
fn roll_back_innermost<R: Runtime>(
    scope: &mut SessionCall<'_, R>,
    keep_tables: bool,
) -> JetResult<()> {
    let mut exclusive =
        |_: &InstanceCore<R>, state: &mut InstanceState<R>, session, orders: &mut _| {
            rollback_body(state, session, orders, keep_tables)
        };
    if scope.mode() == LatchMode::Exclusive {
        return scope.run(&mut exclusive);
    }
    let marks = &scope.core().marks;
    let mut plan = |state: &InstanceState<R>, session, store: &Store, versions: &Versions| {
        let planned = plan_rollback(state, session, store, versions);
        crate::mark!(marks, RollbackReadAhead if matches!(planned, Err((_, Some(_)))));
        planned
    };
    let mut install =
        |state: &InstanceState<R>, session, store: &mut Store, versions: &mut Versions, planned| {
            install_rollback(state, session, store, versions, planned, keep_tables)
        };
    if let Some(readings) = scope.plan_and_install(&mut plan, &mut install)? {
        // As after a delete: the background worker may have flushing and defragmentation
        // to do (the undo removes records).
        scope.note_write(true, readings);
        return Ok(());
    }
    let mut walked = 0;
    scope.prefetch_then_latch_exclusively(&mut |state, session, reads| {
        undo_pages_walk(state, session, reads, &mut walked)
    })?;
    scope.run(&mut exclusive)
}

/// A rollback planned under the shared latches: the level it undoes, its undo (newest
/// first), and the undo staged on each file it touches.
struct PlannedRollback {
    open: OpenTransaction,
    undo: Vec<(RecordId, Option<Vec<u8>>)>,
    staged: Vec<StagedPages>,
}

impl super::PlannedPages for PlannedRollback {
    fn encode_staged(&mut self) {
        self.staged.iter_mut().for_each(StagedPages::encode);
    }
}

/// [`Jet::rollback`]'s plan, under the instance and store latches held shared: the
/// innermost level's undo, staged through the cache alone file by file
/// ([`crate::storage::Storage::stage_undo`]); a page that is not cached fails it with the
/// page, which the caller reads before it plans again.
fn plan_rollback<R: Runtime>(
    state: &InstanceState<R>,
    session: SessionRef,
    store: &Store,
    versions: &Versions,
) -> Result<PlannedRollback, (JetError, Option<FrameKey>)> {
    let open = session_entry(state, session)
        .transaction
        .get()
        .ok_or((JetError::NotInTransaction, None))?;
    let storage = store
        .storage
        .as_ref()
        .ok_or((JetError::NotInitialized, None))?;
    storage.check_log_writable().map_err(|e| (e, None))?;
    let undo = versions
        .version_store
        .undo_of_level(open.txn, open.level)
        .map_err(|e| (e, None))?;
    let mut by_file: BTreeMap<FileId, Vec<UndoEntry<'_>>> = BTreeMap::new();
    for (record, before) in &undo {
        by_file.entry(record.file).or_default().push((
            record.table_root,
            record.key.as_slice(),
            before.as_deref(),
        ));
    }
    let mut missed = None;
    let mut staged = Vec::with_capacity(by_file.len());
    for (file, entries) in by_file {
        let file_staged = storage
            .stage_undo(file, &entries, &mut missed)
            .map_err(|e| (e, missed))?;
        staged.push(file_staged);
    }
    Ok(PlannedRollback { open, undo, staged })
}

/// [`Jet::rollback`]'s install, under the store latch and the versions' latch held
/// exclusively: if the level's
/// undo is still the one planned and no page the plan read changed, and its frames can be
/// had clean, the staged pages (a `PageImages` record per file), the Rollback record, the
/// level's versions dropped, the session one level out and, unless `keep_tables` (the
/// planted bug `RollbackLeavesTablesOpen`), the tables opened in the level closed; else
/// nothing (`None`: plan again).
fn install_rollback<R: Runtime>(
    state: &InstanceState<R>,
    session: SessionRef,
    store: &mut Store,
    versions: &mut Versions,
    planned: PlannedRollback,
    keep_tables: bool,
) -> JetResult<Option<StoreReadings>> {
    let PlannedRollback { open, undo, staged } = planned;
    let storage = store.storage.as_mut().ok_or(JetError::NotInitialized)?;
    storage.check_log_writable()?;
    if versions.version_store.undo_of_level(open.txn, open.level)? != undo
        || !staged
            .iter()
            .all(|staged| storage.staged_is_current(staged))
        || !storage.staged_have_clean_room(&staged)
    {
        return Ok(None);
    }
    for file_staged in staged {
        storage.install_staged(file_staged)?;
    }
    storage.append_log(LogRecord::Rollback {
        txn: open.txn,
        level: open.level,
        undone: u32::try_from(undo.len()).expect("bounded by the version store"),
    })?;
    let undone = versions
        .version_store
        .rollback_level(open.txn, open.level)?;
    debug_assert_eq!(undone, undo, "the versions rolled back are the ones undone");
    leave_level(state, session, open, keep_tables);
    Ok(Some(StoreReadings::of(store, versions)))
}

/// The session one level out of `open` (out of the transaction from level 1) and, unless
/// `keep_tables`, the tables it opened in that level closed: the end of a rollback.
fn leave_level<R: Runtime>(
    state: &InstanceState<R>,
    session: SessionRef,
    open: OpenTransaction,
    keep_tables: bool,
) {
    session_entry(state, session)
        .transaction
        .set((open.level > 1).then_some(OpenTransaction {
            level: open.level - 1,
            ..open
        }));
    if !keep_tables {
        close_cursors(state, session, |cursor| {
            cursor.opened_at_level.get() >= open.level
        });
    }
}

/// [`Jet::rollback`]'s look ahead, under the shared latches: walks to the record of each of
/// the innermost level's undo entries, newest first, from entry `walked` on, stopping at the
/// first page that is not cached (the caller reads it and walks again from that entry, so a
/// long rollback is walked once, not once per read). Returns the entries' count, a bound on
/// the pages the undo reads that is known before any is read. A walk that fails otherwise is
/// left to the undo to report: this only warms the cache.
fn undo_pages_walk<R: Runtime>(
    state: &InstanceState<R>,
    session: SessionRef,
    reads: &mut StoreReads<'_>,
    walked: &mut usize,
) -> JetResult<usize> {
    let open = session_entry(state, session)
        .transaction
        .get()
        .ok_or(JetError::NotInTransaction)?;
    let undo = reads.versions.undo_of_level(open.txn, open.level)?;
    for (record, _) in undo.iter().skip(*walked) {
        let found = reads.tree.get(record.file, record.table_root, &record.key);
        if found.is_err() && reads.tree.missed().is_some() {
            break;
        }
        *walked += 1;
    }
    Ok(undo.len())
}

/// [`roll_back_innermost`]'s last path, under the exclusive latch: undoes the innermost
/// level.
fn rollback_body<R: Runtime>(
    state: &mut InstanceState<R>,
    session: SessionRef,
    orders: &mut WakeOrders,
    keep_tables: bool,
) -> JetResult<()> {
    let open = session_entry(state, session)
        .transaction
        .get()
        .ok_or(JetError::NotInTransaction)?;
    rollback_level(state, session, open, keep_tables)?;
    orders.wrote = true;
    orders.deleted = true;
    Ok(())
}

/// Publishes the level-1 commit of `session`'s transaction, whose Commit record is durable:
/// its versions get their commit timestamp (others see its writes from now on), the session
/// leaves the transaction, and the tables it opened inside belong to no level any more.
/// The caller holds the versions' latch (`versions`) and either the session or the instance
/// latch exclusively.
fn publish_commit<R: Runtime>(
    state: &InstanceState<R>,
    versions: &mut Versions,
    session: SessionRef,
) -> JetResult<()> {
    let transaction = &session_entry(state, session).transaction;
    let open = transaction
        .get()
        .expect("a logged commit's session is held by its committer, in its transaction");
    debug_assert_eq!(open.level, 1, "only a level-1 commit is logged");
    let committed = versions.version_store.commit_level(open.txn, 1)?;
    debug_assert!(committed.is_some());
    transaction.set(None);
    for_each_cursor_of(state, session, |cursor| cursor.opened_at_level.lower_to(0));
    Ok(())
}

/// Publishes, for their committers, the logged commits whose Commit record is now durable
/// (below the log's flushed LSN), in log order. Called under the exclusive latch by the path
/// that made the log durable and ended it: `StopAndEmitLog`.
///
/// Why only there: a committer's record can become durable before the committer wakes and
/// publishes (another committer's group-commit flush, the WAL flush before a write-back, a
/// checkpoint). That window is harmless while the log lives: no call can tell "durable" from
/// "logged", and the commit linearizes at its publish. A call can tell "log stopped", though:
/// once `StopAndEmitLog` returned, every logging call fails with `LogServiceStopped`, so a
/// commit published after it would be a commit that succeeded after the log ended, while
/// other sessions meanwhile saw its writes uncommitted (`WriteConflict` on its records). So
/// the stop publishes before it lets go of the latch, and the commit takes effect before the
/// log ends. The other paths that end the log wait for the committer instead: a full stop
/// drains gated calls before its flush, and term drains every call before it shuts the log.
pub(crate) fn publish_durable_commits<R: Runtime>(state: &InstanceState<R>) -> JetResult<()> {
    // The latches are free (the caller holds the instance latch exclusively); they are taken
    // rather than reached through `store_mut` so that the sessions can be read beside them.
    let store = state.store.read();
    let Some(flushed_lsn) = store.storage.as_ref().map(|storage| storage.flushed_lsn()) else {
        return Ok(());
    };
    let mut versions = state.versions.write();
    let mut durable: Vec<(Lsn, TxnId)> = versions
        .logged_commits
        .iter()
        .filter(|(_, end_lsn)| **end_lsn <= flushed_lsn)
        .map(|(txn, end_lsn)| (*end_lsn, *txn))
        .collect();
    durable.sort_unstable();
    for (_, txn) in durable {
        // The sessions' lock is let go of before the publish looks the session up again.
        let session = state
            .sessions
            .read()
            .iter()
            .find(|(_, _, s)| s.transaction.get().is_some_and(|open| open.txn == txn))
            .map(|(slot, generation, _)| SessionRef { slot, generation })
            .expect("a logged commit's session lives until its committer returns");
        publish_commit(state, &mut versions, session)?;
        versions.logged_commits.remove(&txn);
    }
    Ok(())
}

/// The call's own session (validated and claimed at entry, so it exists until the call
/// ends it).
pub(crate) fn session_entry<R: Runtime>(
    state: &InstanceState<R>,
    session: SessionRef,
) -> Arc<Session<R>> {
    state
        .session(session.slot, session.generation)
        .expect("session validated at entry")
}

/// Applies `change` to every cursor the session owns.
fn for_each_cursor_of<R: Runtime>(
    state: &InstanceState<R>,
    session: SessionRef,
    mut change: impl FnMut(&crate::instance::Cursor),
) {
    state
        .cursors
        .read()
        .iter()
        .filter(|(_, _, c)| {
            c.session_slot == session.slot && c.session_generation == session.generation
        })
        .for_each(|(_, _, cursor)| change(cursor));
}

/// Closes the session's cursors that `close` selects.
pub(crate) fn close_cursors<R: Runtime>(
    state: &InstanceState<R>,
    session: SessionRef,
    close: impl Fn(&crate::instance::Cursor) -> bool,
) {
    let mut cursors = state.cursors.write();
    let doomed: Vec<(u16, u32)> = cursors
        .iter()
        .filter(|(_, _, c)| {
            c.session_slot == session.slot && c.session_generation == session.generation && close(c)
        })
        .map(|(slot, generation, _)| (slot, generation))
        .collect();
    for (slot, generation) in doomed {
        cursors.remove(slot, generation);
    }
}

/// Undoes the innermost level of `open`: before-images back into the B+tree, newest first,
/// and only then drops the level's versions, so a rollback that fails (an I/O error, or a
/// log that `StopAndEmitLog` ended) leaves the session and the version store in step.
fn rollback_level<R: Runtime>(
    state: &mut InstanceState<R>,
    session: SessionRef,
    open: OpenTransaction,
    keep_tables: bool,
) -> JetResult<()> {
    let undo = state
        .versions_mut()
        .version_store
        .undo_of_level(open.txn, open.level)?;
    let undone_count = u32::try_from(undo.len()).expect("bounded by the version store");
    let storage = state.storage_mut()?;
    storage.check_log_writable()?;
    for (record, before) in &undo {
        match before {
            Some(value) => storage.put(record.file, record.table_root, &record.key, value)?,
            None => storage.remove(record.file, record.table_root, &record.key)?,
        };
    }
    storage.append_log(LogRecord::Rollback {
        txn: open.txn,
        level: open.level,
        undone: undone_count,
    })?;
    let undone = state
        .versions_mut()
        .version_store
        .rollback_level(open.txn, open.level)?;
    debug_assert_eq!(undone, undo, "the versions rolled back are the ones undone");
    leave_level(state, session, open, keep_tables);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::api::test_support::{instance_without_worker, WATCHDOG};
    use crate::JetResult;
    use std::sync::{mpsc, Arc};

    /// Begin, a nested begin and its commit change the version store under the versions'
    /// latch alone: they complete while another thread holds the store latch exclusively (as
    /// a cache miss's install, a write-back's or a log flush's bookkeeping, or another
    /// writer's install does). The level-1 commit appends its record under the store latch
    /// held shared, so it completes once the exclusive hold is let go.
    #[test]
    fn begin_and_a_nested_commit_complete_while_the_store_latch_is_held() {
        let (jet, instance) = instance_without_worker("versions");
        let session = jet.begin_session(instance).unwrap();
        let core = jet.core(instance).unwrap();
        let state = core.state.read();
        let store = state.store.write();
        let (done, finished) = mpsc::channel();
        let caller = {
            let jet = Arc::clone(&jet);
            std::thread::spawn(move || {
                let nested = (|| -> JetResult<()> {
                    jet.begin_transaction(session)?;
                    jet.begin_transaction(session)?;
                    jet.commit_transaction(session)
                })();
                done.send(nested).unwrap();
                jet.commit_transaction(session)
            })
        };
        let nested = finished
            .recv_timeout(WATCHDOG)
            .expect("begin or a nested commit waited for the store latch");
        assert_eq!(nested, Ok(()));
        drop(store);
        drop(state);
        assert_eq!(caller.join().unwrap(), Ok(()));
    }

    /// A level-1 commit appends its record and makes it durable (a group-commit flush's
    /// start, its sync with no latch, its end) under the log's own lock with the store latch
    /// held only shared: it completes while another thread holds the store latch shared, as
    /// every reader's walk and every writer's plan does. With the append under the store
    /// latch held exclusively it waited for every walk in progress, and held up every walk
    /// that came after it.
    #[test]
    fn a_level_one_commit_completes_while_the_store_latch_is_held_shared() {
        let (jet, instance) = instance_without_worker("commit-beside-walk");
        let session = jet.begin_session(instance).unwrap();
        let database = jet.create_database(session, "commit.edb").unwrap();
        let table = jet.create_table(session, database, "t").unwrap();
        jet.begin_transaction(session).unwrap();
        jet.insert(session, table, b"key", b"value").unwrap();
        let core = jet.core(instance).unwrap();
        let state = core.state.read();
        let walk = state.store.read();
        let (done, finished) = mpsc::channel();
        let committer = {
            let jet = Arc::clone(&jet);
            std::thread::spawn(move || done.send(jet.commit_transaction(session)).unwrap())
        };
        let committed = finished
            .recv_timeout(WATCHDOG)
            .expect("the level-1 commit waited for a shared hold of the store latch");
        assert_eq!(committed, Ok(()));
        drop(walk);
        drop(state);
        committer.join().unwrap();
    }
}
