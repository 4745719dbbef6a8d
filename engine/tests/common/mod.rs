//! Shared fixture and setup for the engine's integration tests: an in-memory instance with
//! no background thread, so every background step happens when the test asks; instances on a
//! shared simulated disk (to crash and recover) or on real files in a temporary folder.

#![allow(dead_code)]

use jetsim_engine::env::{ManualClock, MemIo};
use jetsim_engine::*;
use std::sync::Arc;

pub type StdJet = Jet<StdRuntime>;

pub struct Fixture {
    pub jet: StdJet,
    pub instance: InstanceHandle,
    pub sesid: SessionHandle,
    pub dbid: DatabaseHandle,
    pub table: TableHandle,
}

pub const DB: &str = "db/main.edb";

/// Initialized instance, one session with `DB` created and open, table "t" open.
pub fn fixture() -> Fixture {
    fixture_with(InstanceOptions::manual())
}

pub fn fixture_with(options: InstanceOptions) -> Fixture {
    let jet = StdJet::new(Environment::in_memory());
    let instance = jet.create_instance_with("inst", options).unwrap();
    jet.init(instance).unwrap();
    let sesid = jet.begin_session(instance).unwrap();
    let (dbid, table) = create_main_table(&jet, sesid);
    Fixture {
        jet,
        instance,
        sesid,
        dbid,
        table,
    }
}

impl Fixture {
    /// Inserts and commits `n` records `k0000..` with 64-byte values.
    pub fn load(&self, n: u32) {
        self.jet.begin_transaction(self.sesid).unwrap();
        for i in 0..n {
            self.jet
                .insert(
                    self.sesid,
                    self.table,
                    format!("k{i:04}").as_bytes(),
                    &[b'v'; 64],
                )
                .unwrap();
        }
        self.jet.commit_transaction(self.sesid).unwrap();
    }

    pub fn observe(&self) -> Observation {
        self.jet.observe(self.instance).unwrap()
    }

    pub fn status(&self) -> InstanceStatus {
        self.jet.instance_status(self.instance).unwrap()
    }

    pub fn committed(&self, table: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.observe().committed[DB][table]
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Asserts `result` failed with `error` and the instance looks exactly as before.
#[track_caller]
pub fn assert_refused_unchanged<T: std::fmt::Debug>(
    f: &Fixture,
    error: JetError,
    call: impl FnOnce() -> JetResult<T>,
) {
    let before = f.observe();
    let result = call();
    assert_eq!(result.unwrap_err(), error);
    assert_eq!(f.observe(), before, "a failed call changed the instance");
}

/// An environment on the simulated disk `io` (shared: a test crashes it and recovers on the
/// same disk) with a clock that only moves when told.
pub fn env_on(io: &MemIo) -> Environment {
    Environment::new(Arc::new(ManualClock::new(0)), Arc::new(io.clone()))
}

/// Creates instance `name` with no background thread, initializes it (which recovers what
/// its log names) and begins one session.
pub fn start_session(jet: &StdJet, name: &str) -> (InstanceHandle, SessionHandle) {
    let instance = jet
        .create_instance_with(name, InstanceOptions::manual())
        .unwrap();
    jet.init(instance).unwrap();
    let session = jet.begin_session(instance).unwrap();
    (instance, session)
}

/// Creates `DB` and its table "t".
pub fn create_main_table(jet: &StdJet, session: SessionHandle) -> (DatabaseHandle, TableHandle) {
    let database = jet.create_database(session, DB).unwrap();
    let table = jet.create_table(session, database, "t").unwrap();
    (database, table)
}

/// Inserts one record in a transaction of its own and commits it.
pub fn insert_committed(
    jet: &StdJet,
    session: SessionHandle,
    table: TableHandle,
    key: &[u8],
    value: &[u8],
) {
    jet.begin_transaction(session).unwrap();
    jet.insert(session, table, key, value).unwrap();
    jet.commit_transaction(session).unwrap();
}

/// Attaches `DB`, left by an earlier instance, and opens its table "t".
pub fn reattach(jet: &StdJet, session: SessionHandle) -> (DatabaseHandle, TableHandle) {
    jet.attach_database(session, DB).unwrap();
    let database = jet.open_database(session, DB).unwrap();
    let table = jet.open_table(session, database, "t").unwrap();
    (database, table)
}

/// A fresh folder for real files, removed at the end. `tag` names it; the process id keeps
/// two test binaries running at once apart.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("jetsim-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
