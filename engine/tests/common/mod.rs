//! Shared fixture for the engine's integration tests: an in-memory instance with no
//! background thread, so every background step happens when the test asks.

#![allow(dead_code)]

use jetsim_engine::*;

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
    let dbid = jet.create_database(sesid, DB).unwrap();
    let table = jet.create_table(sesid, dbid, "t").unwrap();
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
