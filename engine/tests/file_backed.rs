//! The engine on real files: committed data survives term and a fresh init.

mod common;

use common::{create_main_table, reattach, TempDir, DB};
use jetsim_engine::*;

#[test]
fn committed_records_survive_term_and_init_on_disk() {
    let dir = TempDir::new("file-backed");
    {
        let jet = Jet::<StdRuntime>::new(Environment::on_disk(&dir.0));
        let instance = jet.create_instance("disk").unwrap();
        jet.set_system_parameter(instance, SystemParameter::CacheSizePages, 16)
            .unwrap();
        jet.init(instance).unwrap();
        let s = jet.begin_session(instance).unwrap();
        let (_, t) = create_main_table(&jet, s);
        jet.begin_transaction(s).unwrap();
        for i in 0..500u32 {
            jet.insert(
                s,
                t,
                format!("key{i:05}").as_bytes(),
                format!("value{i}").as_bytes(),
            )
            .unwrap();
        }
        jet.commit_transaction(s).unwrap();
        jet.begin_transaction(s).unwrap();
        jet.insert(s, t, b"uncommitted", b"x").unwrap();
        jet.rollback(s).unwrap();
        assert_eq!(jet.term(instance), Ok(TermOutcome::Clean));
    }
    assert!(dir.0.join(DB).is_file(), "database file on disk");
    assert!(dir.0.join("disk/jet.log").is_file(), "log file on disk");
    let jet = Jet::<StdRuntime>::new(Environment::on_disk(&dir.0));
    let instance = jet.create_instance("disk").unwrap();
    jet.init(instance).unwrap();
    let s = jet.begin_session(instance).unwrap();
    let (_, t) = reattach(&jet, s);
    assert_eq!(jet.index_record_count(s, t, 0), Ok(500));
    jet.seek(s, t, b"key00421", SeekMode::Equal).unwrap();
    assert_eq!(jet.retrieve(s, t).unwrap().1, b"value421");
    assert_eq!(
        jet.seek(s, t, b"uncommitted", SeekMode::Equal),
        Err(JetError::RecordNotFound)
    );
    jet.end_session(s).unwrap();
    jet.term(instance).unwrap();
}
