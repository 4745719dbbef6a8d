//! An observation of an instance's user-visible state: what a failed call must leave
//! unchanged. Deterministic (ordered maps, no addresses), so two observations compare with
//! `==` and print the same way every run.

use super::handles::InstanceHandle;
use super::Jet;
use crate::error::JetResult;
use crate::instance::gate::Phase;
use crate::instance::params::SystemParameters;
use crate::instance::Position;
use crate::runtime::Runtime;
use std::collections::BTreeMap;

/// Committed records of one table, in key order.
pub type TableContents = BTreeMap<Vec<u8>, Vec<u8>>;
/// Database path → table name → contents.
pub type CommittedData = BTreeMap<String, BTreeMap<String, TableContents>>;

/// One session as seen from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedSession {
    pub transaction_level: u8,
    pub context: Option<u64>,
    /// Database path → open count.
    pub open_databases: BTreeMap<String, u32>,
}

/// One open cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedCursor {
    pub session: u64,
    pub database: String,
    pub table: String,
    pub opened_at_level: u8,
    pub position: Position,
}

/// The observable state of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub phase: Phase,
    pub params: SystemParameters,
    /// Session handle value → session.
    pub sessions: BTreeMap<u64, ObservedSession>,
    /// Table handle value → cursor.
    pub cursors: BTreeMap<u64, ObservedCursor>,
    /// Database path → table name → committed records (as a reader outside any transaction
    /// sees them).
    pub committed: CommittedData,
    pub defrag_parked: bool,
    pub caches_quiesced: bool,
}

impl<R: Runtime> Jet<R> {
    /// Reads the instance's observable state. Not a Jet call: never gated, changes nothing
    /// observable (it reads pages through the cache, which may evict and write back).
    ///
    /// Long (about 110 lines) on purpose: every part is read under one hold of the instance
    /// latch, so the observation is one consistent snapshot; split into helpers, each would
    /// need the guard threaded through and the order of reads would be harder to see.
    pub fn observe(&self, instance: InstanceHandle) -> JetResult<Observation> {
        let core = self.core(instance)?;
        let phase = core.gate.phase();
        let worker = core.worker.snapshot();
        let instance_slot = instance.parts().expect("resolved").instance_slot;
        let mut state = core.state.write();
        let paths: BTreeMap<u16, String> = state
            .databases
            .iter()
            .map(|(slot, _, db)| (slot, db.path.clone()))
            .collect();
        let sessions = state
            .sessions
            .get_mut()
            .iter()
            .map(|(slot, generation, s)| {
                let handle = super::handles::SessionHandle::new(instance_slot, slot, generation).0;
                let open_databases = s.open_databases.with(|open| {
                    open.iter()
                        .map(|(db, count)| (paths.get(db).cloned().unwrap_or_default(), *count))
                        .collect()
                });
                (
                    handle,
                    ObservedSession {
                        transaction_level: s.transaction.get().map_or(0, |t| t.level),
                        context: s.context.get().map(|c| c.value),
                        open_databases,
                    },
                )
            })
            .collect();
        let cursors = state
            .cursors
            .read()
            .iter()
            .map(|(slot, generation, c)| {
                let handle = super::handles::TableHandle::new(instance_slot, slot, generation).0;
                let session = super::handles::SessionHandle::new(
                    instance_slot,
                    c.session_slot,
                    c.session_generation,
                )
                .0;
                (
                    handle,
                    ObservedCursor {
                        session,
                        database: paths.get(&c.database_slot).cloned().unwrap_or_default(),
                        table: c.table_name.clone(),
                        opened_at_level: c.opened_at_level.get(),
                        position: c.position.get(),
                    },
                )
            })
            .collect();
        let reader = state
            .versions_mut()
            .version_store
            .reader_outside_transaction();
        let files: Vec<(crate::storage::FileId, String)> = state
            .databases
            .iter()
            .map(|(_, _, db)| (db.file, db.path.clone()))
            .collect();
        let mut committed = BTreeMap::new();
        let state = &mut *state;
        let storage = &mut state.store.get_mut().storage;
        let version_store = &state.versions.get_mut().version_store;
        if let Some(storage) = storage.as_mut() {
            for (file, path) in files {
                let mut tables = BTreeMap::new();
                for name in storage.table_names(file)? {
                    // A catalog that lists a table it cannot find again is damaged: say
                    // so, as every call that reads it does, rather than panic.
                    let root = storage
                        .table_root(file, &name)?
                        .ok_or(crate::error::JetError::DatabaseCorrupted)?;
                    let mut records = BTreeMap::new();
                    let mut keys: Vec<Vec<u8>> = storage
                        .scan(file, root)?
                        .into_iter()
                        .map(|(k, _)| k)
                        .collect();
                    let mut at = None;
                    while let Some(key) = version_store.chain_key_after(file, root, at.as_deref()) {
                        // A walk that does not pass its starting key would never end.
                        if at.as_ref().is_some_and(|at| key <= *at) {
                            return Err(crate::error::JetError::DatabaseCorrupted);
                        }
                        keys.push(key.clone());
                        at = Some(key);
                    }
                    keys.sort();
                    keys.dedup();
                    for key in keys {
                        let tree_value = storage.get(file, root, &key)?;
                        let record = crate::transaction::RecordId {
                            file,
                            table_root: root,
                            key: key.clone(),
                        };
                        if let Some(value) = version_store.visible(&record, tree_value, reader) {
                            records.insert(key, value);
                        }
                    }
                    tables.insert(name, records);
                }
                committed.insert(path, tables);
            }
        }
        Ok(Observation {
            phase,
            params: state.params,
            sessions,
            cursors,
            committed,
            defrag_parked: worker.defrag_parked,
            caches_quiesced: worker.caches_quiesced,
        })
    }
}
