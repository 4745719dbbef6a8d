//! JetStopServiceInstance(2): validation without side effects, the gate, the preparation
//! steps, the allowlist, partial stops and resume. One behaviour per test.

mod common;

use common::*;
use jetsim_engine::instance::gate::{Admission, Gate, StopEntry};
use jetsim_engine::*;

/// Dirty pages, open transaction-free session, defrag started: a stop has work to do.
fn busy_fixture() -> Fixture {
    let f = fixture();
    f.load(100);
    f.jet
        .defragment(f.sesid, f.dbid, defrag_grbit::BATCH_START)
        .unwrap();
    let status = f.status();
    assert!(status.dirty_pages > 0 && status.checkpoint_depth_bytes > 0);
    assert_eq!(status.defrag, DefragStatus::Running);
    f
}

#[test]
fn stop_runs_every_preparation_step_in_order() {
    let f = busy_fixture();
    let dirty_before = f.status().dirty_pages;
    // The fixture's writes may already have asked for a cleanup (one is due each batch of
    // versions); the stop asks whatever the state.
    let cleanup_before = f.status().version_cleanup;
    f.jet.stop_service_instance(f.instance).unwrap();
    let record = f
        .jet
        .last_stop_record(f.instance)
        .unwrap()
        .expect("recorded");
    assert_eq!(record.grbit, stop_grbit::ALL);
    assert_eq!(record.steps.len(), 4);
    assert_eq!(record.steps[0], StopStep::GateClosed { calls_drained: 0 });
    assert_eq!(
        record.steps[1],
        StopStep::DefragParked {
            before: DefragStatus::Running,
            after: DefragStatus::Parked
        }
    );
    assert_eq!(
        record.steps[2],
        StopStep::VersionCleanupSignalled {
            before: cleanup_before,
            after: CleanupStatus::Signalled
        }
    );
    let StopStep::CheckpointQuiesced {
        dirty_pages_before,
        dirty_pages_after,
        checkpoint_depth_after_bytes,
        log_tip_lsn,
        checkpoint_lsn_after,
        pages_written,
        ..
    } = record.steps[3].clone()
    else {
        panic!("fourth step is not the quiesce: {:?}", record.steps[3]);
    };
    assert_eq!(dirty_pages_before, dirty_before);
    assert_eq!(dirty_pages_after, 0);
    assert_eq!(checkpoint_depth_after_bytes, 0);
    assert_eq!(
        checkpoint_lsn_after, log_tip_lsn,
        "checkpoint at the log tip"
    );
    assert!(pages_written >= dirty_before);
    let status = f.status();
    assert_eq!(status.phase, Phase::Stopped);
    assert_eq!(status.defrag, DefragStatus::Parked);
    assert_eq!(status.version_cleanup, CleanupStatus::Signalled);
    assert!(status.caches_quiesced);
    // The background round now cleans versions but does not defragment.
    f.jet.run_background_tasks(f.instance).unwrap();
    let after = f.status();
    assert_eq!(after.version_cleanup, CleanupStatus::Idle);
    assert_eq!(after.version_cleanup_runs, 1);
    assert_eq!(after.versions, 0);
    assert_eq!(after.defrag_pages_freed, 0);
}

#[test]
fn gated_calls_of_every_family_are_refused_after_the_stop_and_change_nothing() {
    let f = busy_fixture();
    f.jet.move_cursor(f.sesid, f.table, MoveTo::First).unwrap();
    f.jet.stop_service_instance(f.instance).unwrap();
    let refused = JetError::ClientRequestToStopJetService;
    let (s, d, t) = (f.sesid, f.dbid, f.table);
    assert_refused_unchanged(&f, refused, || f.jet.begin_session(f.instance));
    assert_refused_unchanged(&f, refused, || f.jet.set_session_context(s, 5));
    assert_refused_unchanged(&f, refused, || f.jet.create_database(s, "db/other.edb"));
    assert_refused_unchanged(&f, refused, || f.jet.attach_database(s, "db/other.edb"));
    assert_refused_unchanged(&f, refused, || f.jet.open_database(s, DB));
    assert_refused_unchanged(&f, refused, || {
        f.jet.defragment(s, d, defrag_grbit::BATCH_START)
    });
    assert_refused_unchanged(&f, refused, || f.jet.create_table(s, d, "t2"));
    assert_refused_unchanged(&f, refused, || f.jet.open_table(s, d, "t"));
    assert_refused_unchanged(&f, refused, || f.jet.delete_table(s, d, "t"));
    assert_refused_unchanged(&f, refused, || f.jet.begin_transaction(s));
    assert_refused_unchanged(&f, refused, || f.jet.commit_transaction(s));
    assert_refused_unchanged(&f, refused, || f.jet.seek(s, t, b"k0001", SeekMode::Equal));
    assert_refused_unchanged(&f, refused, || f.jet.move_cursor(s, t, MoveTo::Next));
    assert_refused_unchanged(&f, refused, || f.jet.retrieve(s, t));
    assert_refused_unchanged(&f, refused, || f.jet.insert(s, t, b"x", b"y"));
    assert_refused_unchanged(&f, refused, || f.jet.replace(s, t, b"y"));
    assert_refused_unchanged(&f, refused, || f.jet.delete(s, t));
    assert_refused_unchanged(&f, refused, || f.jet.index_record_count(s, t, 0));
    assert_eq!(f.status().refused_after_stop, 18);
}

#[test]
fn allowlisted_calls_still_work_after_the_stop() {
    let f = busy_fixture();
    f.jet.set_session_context(f.sesid, 9).unwrap();
    f.jet.begin_transaction(f.sesid).unwrap();
    f.jet.begin_transaction(f.sesid).unwrap();
    let inner = f.jet.open_table(f.sesid, f.dbid, "t").unwrap();
    f.jet.insert(f.sesid, inner, b"zz", b"v").unwrap();
    f.jet.stop_service_instance(f.instance).unwrap();
    // get_session_info, rollback (closing the level's table), reset_session_context,
    // close_table, close_database, end_session, detach_database, parameters.
    assert_eq!(
        f.jet.get_session_info(f.sesid).unwrap().transaction_level,
        2
    );
    f.jet.rollback(f.sesid).unwrap();
    assert_eq!(
        f.jet.close_table(f.sesid, inner),
        Err(JetError::InvalidTableId),
        "rollback closed it"
    );
    f.jet.rollback(f.sesid).unwrap();
    assert_eq!(
        f.jet.rollback(f.sesid),
        Err(JetError::NotInTransaction),
        "allowlisted, model errors still apply"
    );
    assert_eq!(f.jet.end_session(f.sesid), Err(JetError::SessionInUse));
    f.jet.reset_session_context(f.sesid).unwrap();
    f.jet.close_table(f.sesid, f.table).unwrap();
    assert_eq!(
        f.jet.detach_database(f.sesid, DB),
        Err(JetError::DatabaseInUse),
        "still open"
    );
    f.jet.close_database(f.sesid, f.dbid).unwrap();
    f.jet.detach_database(f.sesid, DB).unwrap();
    f.jet.end_session(f.sesid).unwrap();
    f.jet
        .set_system_parameter(f.instance, SystemParameter::CheckpointDepthMaxBytes, 1)
        .unwrap();
    f.jet
        .set_system_parameter(f.instance, SystemParameter::OnlineDefrag, 1)
        .unwrap();
    assert_eq!(
        f.status().defrag,
        DefragStatus::Parked,
        "a parameter does not unpark a stopped instance"
    );
    assert_eq!(f.jet.term(f.instance), Ok(TermOutcome::Clean));
}

#[test]
fn failed_stops_change_nothing() {
    let f = busy_fixture();
    let before = f.observe();
    let status_before = f.status();
    assert_eq!(
        f.jet.stop_service_instance(InstanceHandle::NIL),
        Err(JetError::InvalidParameter)
    );
    assert_eq!(
        f.jet.stop_service_instance(InstanceHandle(f.sesid.0)),
        Err(JetError::InvalidParameter)
    );
    assert_eq!(
        f.jet.stop_service_instance2(f.instance, 0x1),
        Err(JetError::InvalidGrbit)
    );
    assert_eq!(
        f.jet.stop_service_instance2(f.instance, 0x10),
        Err(JetError::InvalidGrbit)
    );
    assert_eq!(f.observe(), before);
    assert_eq!(
        f.status(),
        status_before,
        "defrag, dirty pages, checkpoint: all as before"
    );
    assert_eq!(f.jet.last_stop_record(f.instance).unwrap(), None);
    // Created but never initialized: ESE dereferences a null version store here.
    let idle = f
        .jet
        .create_instance_with("idle", InstanceOptions::manual())
        .unwrap();
    let idle_before = f.jet.observe(idle).unwrap();
    assert_eq!(
        f.jet.stop_service_instance(idle),
        Err(JetError::InvalidParameter)
    );
    assert_eq!(f.jet.observe(idle).unwrap(), idle_before);
    f.jet.init(idle).unwrap();
    f.jet.begin_session(idle).unwrap();
    // Terminated: the handle is stale.
    f.jet.term(idle).unwrap();
    assert_eq!(
        f.jet.stop_service_instance(idle),
        Err(JetError::InvalidParameter)
    );
}

#[test]
fn a_second_stop_succeeds_and_changes_nothing_more() {
    let f = busy_fixture();
    f.jet.stop_service_instance(f.instance).unwrap();
    let record = f.jet.last_stop_record(f.instance).unwrap();
    let before = f.observe();
    f.jet.stop_service_instance(f.instance).unwrap();
    assert_eq!(f.jet.last_stop_record(f.instance).unwrap(), record);
    assert_eq!(f.observe(), before);
}

#[test]
fn partial_stops_and_resume() {
    let f = busy_fixture();
    f.jet
        .stop_service_instance2(f.instance, stop_grbit::BACKGROUND_USER_TASKS)
        .unwrap();
    assert_eq!(f.status().defrag, DefragStatus::Parked);
    assert!(
        f.status().dirty_pages > 0,
        "BackgroundUserTasks does not flush"
    );
    let s = f.jet.begin_session(f.instance).unwrap();
    f.jet.end_session(s).unwrap();
    f.jet
        .stop_service_instance2(f.instance, stop_grbit::QUIESCE_CACHES)
        .unwrap();
    assert_eq!(f.status().dirty_pages, 0);
    assert_eq!(f.status().checkpoint_depth_bytes, 0);
    assert!(f.status().caches_quiesced);
    assert_eq!(
        f.status().phase,
        Phase::Running,
        "partial stops admit calls"
    );
    f.jet
        .stop_service_instance2(f.instance, stop_grbit::RESUME)
        .unwrap();
    let record = f.jet.last_stop_record(f.instance).unwrap().unwrap();
    assert_eq!(
        record.steps,
        vec![StopStep::Resumed {
            defrag_unparked: true,
            caches_unquiesced: true
        }]
    );
    assert_eq!(f.status().defrag, DefragStatus::Running);
    assert!(!f.status().caches_quiesced);
    // Resume of one named partial stop only.
    f.jet
        .stop_service_instance2(
            f.instance,
            stop_grbit::BACKGROUND_USER_TASKS | stop_grbit::QUIESCE_CACHES,
        )
        .unwrap();
    f.jet
        .stop_service_instance2(f.instance, stop_grbit::RESUME | stop_grbit::QUIESCE_CACHES)
        .unwrap();
    assert_eq!(f.status().defrag, DefragStatus::Parked);
    assert!(!f.status().caches_quiesced);
}

#[test]
fn resume_after_a_full_stop_is_refused_and_undoes_nothing() {
    let f = busy_fixture();
    f.jet.stop_service_instance(f.instance).unwrap();
    let before = f.observe();
    let status = f.status();
    assert_eq!(
        f.jet.stop_service_instance2(f.instance, stop_grbit::RESUME),
        Err(JetError::ClientRequestToStopJetService)
    );
    assert_eq!(f.observe(), before);
    assert_eq!(f.status(), status);
    // A partial stop after the full one has nothing left to do but succeeds.
    f.jet
        .stop_service_instance2(f.instance, stop_grbit::QUIESCE_CACHES)
        .unwrap();
    assert_eq!(f.status().phase, Phase::Stopped);
}

#[test]
fn term_after_stop_is_clean_and_data_survives() {
    let io = env::MemIo::new();
    let jet = StdJet::new(env_on(&io));
    let (instance, s) = start_session(&jet, "inst");
    let (_, t) = create_main_table(&jet, s);
    insert_committed(&jet, s, t, b"kept", b"yes");
    jet.stop_service_instance(instance).unwrap();
    assert_eq!(jet.term(instance), Ok(TermOutcome::Clean));
    let jet = StdJet::new(env_on(&io));
    let (_, s) = start_session(&jet, "inst");
    let (_, t) = reattach(&jet, s);
    jet.seek(s, t, b"kept", SeekMode::Equal).unwrap();
    assert_eq!(jet.retrieve(s, t).unwrap().1, b"yes");
}

#[test]
fn stop_waits_for_a_gated_call_in_flight() {
    // The gate on its own, on OS threads: a pass held here stands for a call in flight.
    let gate: Gate<StdRuntime> = Gate::new(Mutations::NONE);
    gate.begin_init().unwrap();
    gate.finish_init(true);
    let pass = gate
        .enter(Admission::Gated, JetError::InvalidParameter)
        .unwrap();
    std::thread::scope(|scope| {
        let stopper = scope.spawn(|| {
            let entry = gate.begin_stop().unwrap();
            gate.finish_stop();
            entry
        });
        // Wait (without sleeping) until the stop has closed the gate; it cannot finish while
        // the pass is held.
        let mut spins = 0u64;
        while gate.phase() != Phase::Stopping {
            spins += 1;
            assert!(spins < 1_000_000_000, "stop never closed the gate");
            std::thread::yield_now();
        }
        assert_eq!(
            gate.enter(Admission::Gated, JetError::InvalidParameter)
                .err(),
            Some(JetError::ClientRequestToStopJetService),
            "closed gate refuses new gated calls"
        );
        // An allowlisted call is admitted, but only once the drained call has left: it
        // linearizes after the stop, so it must not run among the calls before it.
        let allowlisted = scope.spawn(|| {
            gate.enter(Admission::Allowlisted, JetError::InvalidParameter)
                .map(drop)
        });
        assert_eq!(gate.status().gated_in_flight, 1);
        assert_eq!(
            gate.status().ungated_in_flight,
            0,
            "admitted before the drain"
        );
        assert_eq!(
            gate.phase(),
            Phase::Stopping,
            "stop still waiting for the call"
        );
        drop(pass);
        assert_eq!(
            stopper.join().unwrap(),
            StopEntry::Proceed {
                waited_for_calls: 1
            }
        );
        assert_eq!(allowlisted.join().unwrap(), Ok(()));
    });
    assert_eq!(gate.phase(), Phase::Stopped);
    assert_eq!(gate.status().stops_that_waited, 1);
}

#[test]
fn stop_racing_term_on_os_threads_is_safe() {
    for round in 0..20 {
        let f = fixture_with(InstanceOptions::default());
        f.load(20);
        std::thread::scope(|scope| {
            let stop = scope.spawn(|| f.jet.stop_service_instance(f.instance));
            let term = scope.spawn(|| f.jet.term(f.instance));
            let stop = stop.join().unwrap();
            let term = term.join().unwrap();
            assert_eq!(term, Ok(TermOutcome::Clean), "round {round}");
            assert!(
                matches!(
                    stop,
                    Ok(()) | Err(JetError::InvalidParameter) | Err(JetError::TermInProgress)
                ),
                "round {round}: {stop:?}"
            );
        });
        assert_eq!(
            f.jet.instance_status(f.instance),
            Err(JetError::InvalidParameter)
        );
    }
}
