//! OS threads hammer the API while another thread stops the instance. The rule checked:
//! once `stop_service_instance` has returned, no gated call succeeds, and allowlisted calls
//! are never refused with ClientRequestToStopJetService.
//!
//! Real threads, real scheduling: the interleaving differs each run, but the rule must hold in
//! every one, so the test cannot flake unless the engine is wrong. Rounds default to 20;
//! `JETSIM_STRESS_ROUNDS` raises them.

mod common;

use common::*;
use jetsim_engine::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

fn rounds() -> u64 {
    std::env::var("JETSIM_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// One worker's loop: every call is classified as gated or allowlisted and checked against
/// whether the stop had returned before the call began.
fn hammer(
    jet: &StdJet,
    instance: InstanceHandle,
    worker: u64,
    stopped: &AtomicBool,
    violations: &AtomicU64,
) -> u64 {
    let mut calls = 0u64;
    let check = |call: JetCall, stopped_before: bool, result: Result<(), JetError>| {
        let refused = result == Err(JetError::ClientRequestToStopJetService);
        let gated = call.admission(Mutations::NONE) == Admission::Gated;
        let wrong = (stopped_before && gated && result.is_ok()) || (!gated && refused);
        if wrong {
            violations.fetch_add(1, Ordering::SeqCst);
            eprintln!("worker {worker}: {call:?} after stop={stopped_before} returned {result:?}");
        }
    };
    let Ok(sesid) = jet.begin_session(instance) else {
        return 0;
    };
    let dbid = jet.open_database(sesid, DB);
    let table = dbid.and_then(|d| jet.open_table(sesid, d, "t"));
    for i in 0..200u64 {
        let key = format!("w{worker}-{i}");
        macro_rules! call {
            ($name:expr, $e:expr) => {{
                let before = stopped.load(Ordering::SeqCst);
                let result = $e.map(|_| ());
                check($name, before, result);
                calls += 1;
                result
            }};
        }
        let Ok(table) = table else { break };
        let began = call!(JetCall::BeginTransaction, jet.begin_transaction(sesid));
        let _ = call!(
            JetCall::Insert,
            jet.insert(sesid, table, key.as_bytes(), b"value")
        );
        let _ = call!(
            JetCall::Seek,
            jet.seek(sesid, table, key.as_bytes(), SeekMode::Equal)
        );
        let _ = call!(JetCall::Retrieve, jet.retrieve(sesid, table));
        if i % 3 == 0 {
            let _ = call!(JetCall::Delete, jet.delete(sesid, table));
        }
        if began.is_ok() {
            if i % 2 == 0 {
                let _ = call!(JetCall::CommitTransaction, jet.commit_transaction(sesid));
            }
            // Whatever commit did, leave no transaction open (rollback is allowlisted).
            while jet
                .get_session_info(sesid)
                .map(|info| info.transaction_level > 0)
                == Ok(true)
            {
                let _ = call!(JetCall::Rollback, jet.rollback(sesid));
            }
        }
        let _ = call!(JetCall::GetSessionInfo, jet.get_session_info(sesid));
    }
    let _ = jet.end_session(sesid);
    calls
}

#[test]
fn no_gated_call_succeeds_after_the_stop_returned() {
    let mut total_calls = 0;
    for round in 0..rounds() {
        let f = fixture_with(InstanceOptions::default());
        f.jet
            .set_system_parameter(f.instance, SystemParameter::CheckpointDepthMaxBytes, 4096)
            .unwrap();
        f.jet
            .defragment(f.sesid, f.dbid, defrag_grbit::BATCH_START)
            .unwrap();
        let stopped = AtomicBool::new(false);
        let violations = AtomicU64::new(0);
        let progress = AtomicU64::new(0);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|w| {
                    let (jet, stopped, violations, progress) =
                        (&f.jet, &stopped, &violations, &progress);
                    scope.spawn(move || {
                        let calls = hammer(jet, f.instance, w, stopped, violations);
                        progress.fetch_add(1, Ordering::SeqCst);
                        calls
                    })
                })
                .collect();
            // Stop at a point that varies with the round: after 0..3 workers finished.
            let wait_for = round % 4;
            while progress.load(Ordering::SeqCst) < wait_for {
                std::thread::yield_now();
            }
            f.jet.stop_service_instance(f.instance).unwrap();
            stopped.store(true, Ordering::SeqCst);
            let status = f.status();
            assert_eq!(status.phase, Phase::Stopped);
            assert_eq!(
                status.gated_calls_in_flight, 0,
                "a gated call is still running after the stop returned"
            );
            assert_eq!(status.defrag, DefragStatus::Parked);
            for worker in workers {
                total_calls += worker.join().unwrap();
            }
        });
        assert_eq!(
            violations.load(Ordering::SeqCst),
            0,
            "round {round}: stop rule broken (see stderr)"
        );
        let record = f.jet.last_stop_record(f.instance).unwrap().unwrap();
        assert!(matches!(
            record.quiesce(),
            Some(StopStep::CheckpointQuiesced {
                checkpoint_depth_after_bytes: 0,
                ..
            })
        ));
        f.jet.end_session(f.sesid).unwrap();
        assert_eq!(
            f.jet.term(f.instance),
            Ok(TermOutcome::Clean),
            "round {round}"
        );
    }
    assert!(total_calls > 0, "workers made no calls");
}
