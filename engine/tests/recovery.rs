//! Durability: crash recovery at init, the simulated disk's faults, fail-stop on I/O errors,
//! and the planted durability bugs the crash sweep catches. Every crash here is
//! `MemIo::crash*` on the same simulated disk, followed by a new `Jet` whose `init` recovers.
//! Set-up lives in [`Run`] and `common`; each test still spells out its own crash story
//! (start, load, crash, recover, attach, check, term), so the opening and closing steps
//! look alike from test to test on purpose: a test reads as the scenario it checks.

mod common;

use std::collections::BTreeMap;

use common::{env_on, reattach, start_session, StdJet, DB};
use jetsim_engine::env::io::{CrashFaults, FaultPlan, InjectedFault, SplitMix64, PPM};
use jetsim_engine::env::MemIo;
use jetsim_engine::*;

type Contents = BTreeMap<Vec<u8>, Vec<u8>>;

const PAGE_BYTES: u64 = jetsim_engine::storage::PAGE_SIZE_BYTES as u64;

/// A running instance with `DB` created and table "t" open.
struct Run {
    jet: StdJet,
    instance: InstanceHandle,
    s: SessionHandle,
    d: DatabaseHandle,
    t: TableHandle,
}

fn start_with(io: &MemIo, mutations: Mutations, cache_pages: u64) -> JetResult<Run> {
    let jet = StdJet::new(env_on(io));
    let instance = manual_instance(&jet, mutations)?;
    jet.set_system_parameter(instance, SystemParameter::CacheSizePages, cache_pages)?;
    jet.set_system_parameter(instance, SystemParameter::CheckpointDepthMaxBytes, 16 << 10)?;
    jet.init(instance)?;
    let s = jet.begin_session(instance)?;
    let d = jet.create_database(s, DB)?;
    let t = jet.create_table(s, d, "t")?;
    Ok(Run {
        jet,
        instance,
        s,
        d,
        t,
    })
}

/// Instance "inst" with no background thread and `mutations` planted.
fn manual_instance(jet: &StdJet, mutations: Mutations) -> JetResult<InstanceHandle> {
    jet.create_instance_with(
        "inst",
        InstanceOptions {
            mutations,
            ..InstanceOptions::manual()
        },
    )
}

/// The three crashes the sweeps try at each cut: `variant` 0 is `crash` (every unsynced
/// operation lost), 1 `crash_with` at the default rates from a fixed seed, 2 `crash_with`
/// losing and tearing writes at `damage_ppm` each, seeded by the cut.
fn crash_variant(io: &MemIo, variant: u64, cut: u64, damage_ppm: u32) {
    match variant {
        0 => io.crash(),
        1 => io.crash_with(&mut SplitMix64::new(0), CrashFaults::default()),
        _ => io.crash_with(
            &mut SplitMix64::new(cut),
            CrashFaults {
                lost_write_ppm: damage_ppm,
                torn_write_ppm: damage_ppm,
                ..CrashFaults::default()
            },
        ),
    }
}

fn start(io: &MemIo) -> Run {
    start_with(io, Mutations::NONE, 256).expect("start")
}

fn key(i: u32) -> Vec<u8> {
    format!("k{i:04}").into_bytes()
}

fn value(tag: &str, i: u32) -> Vec<u8> {
    let mut v = format!("{tag}-{i}-").into_bytes();
    v.resize(150, b'.');
    v
}

impl Run {
    /// Makes the log durable without committing the open transaction: another session
    /// commits an empty transaction, which syncs the whole log tail.
    fn flush_log(&self) {
        let other = self.jet.begin_session(self.instance).unwrap();
        self.jet.begin_transaction(other).unwrap();
        self.jet.commit_transaction(other).unwrap();
        self.jet.end_session(other).unwrap();
    }

    /// Commits `n` records in one transaction; returns them.
    fn load(&self, range: std::ops::Range<u32>, tag: &str) -> Contents {
        self.jet.begin_transaction(self.s).unwrap();
        let mut loaded = Contents::new();
        for i in range {
            self.jet
                .insert(self.s, self.t, &key(i), &value(tag, i))
                .unwrap();
            loaded.insert(key(i), value(tag, i));
        }
        self.jet.commit_transaction(self.s).unwrap();
        loaded
    }

    fn set(&self, i: u32, v: Option<&[u8]>) -> JetResult<()> {
        let found = self.jet.seek(self.s, self.t, &key(i), SeekMode::Equal);
        match (found, v) {
            (Ok(()), Some(v)) => self.jet.replace(self.s, self.t, v),
            (Ok(()), None) => self.jet.delete(self.s, self.t),
            (Err(JetError::RecordNotFound), Some(v)) => self.jet.insert(self.s, self.t, &key(i), v),
            (Err(JetError::RecordNotFound), None) => Ok(()),
            (Err(e), _) => Err(e),
        }
    }
}

/// A new engine on the same disk: init (recovery), attach, read table "t".
struct Recovered {
    report: RecoveryReport,
    /// `None` when the database or the table does not exist.
    contents: Option<Contents>,
}

fn recover(io: &MemIo) -> JetResult<Recovered> {
    recover_with(io, Mutations::NONE)
}

/// [`recover`] by an engine with `mutations` planted (a bug in recovery itself).
fn recover_with(io: &MemIo, mutations: Mutations) -> JetResult<Recovered> {
    let jet = StdJet::new(env_on(io));
    let instance = manual_instance(&jet, mutations)?;
    jet.init(instance)?;
    let report = jet
        .last_recovery_report(instance)?
        .expect("init recorded a report");
    let s = jet.begin_session(instance)?;
    let contents = match jet.attach_database(s, DB) {
        Ok(_) => {
            let observed = jet.observe(instance)?;
            observed.committed.get(DB).and_then(|t| t.get("t")).cloned()
        }
        Err(JetError::FileNotFound | JetError::DatabaseCorrupted) => None,
        Err(e) => return Err(e),
    };
    jet.end_session(s)?;
    assert_eq!(jet.term(instance)?, TermOutcome::Clean);
    Ok(Recovered { report, contents })
}

fn crash_and_recover(run: Run, io: &MemIo) -> Recovered {
    drop(run);
    io.crash();
    recover(io).expect("recovery")
}

// ---------------------------------------------------------------------------------------------
// Crashes at chosen points

#[test]
fn crash_after_commits_recovers_every_commit_and_no_uncommitted_write() {
    // Goal: no term, nothing flushed but the log: every commit is redone from the log, the
    // open transaction (inserts, replaces and deletes of committed records) is undone.
    let io = MemIo::new();
    let run = start(&io);
    let mut expected = run.load(0..150, "a");
    expected.extend(run.load(150..200, "b"));
    run.jet.begin_transaction(run.s).unwrap();
    for i in (0..220).step_by(3) {
        let v = if i % 2 == 0 {
            Some(&b"uncommitted"[..])
        } else {
            None
        };
        run.set(i, v).unwrap();
    }
    run.flush_log();
    let recovered = crash_and_recover(run, &io);
    assert_eq!(recovered.contents.as_ref(), Some(&expected));
    let report = &recovered.report;
    println!("crash after commits: {report:?}");
    assert!(!report.clean);
    assert_eq!(report.transactions_undone, 1);
    assert!(report.undo_records_applied > 0);
    assert!(report.pages_redone > 0 && report.log_bytes_replayed > 0);
    assert_eq!(report.databases_recovered, vec![DB.to_owned()]);
    // A second restart finds a clean, consistent database and nothing to do.
    let again = recover(&io).unwrap();
    assert_eq!(again.contents, Some(expected));
    assert!(again.report.clean);
}

#[test]
fn an_open_transaction_spanning_the_checkpoint_is_undone() {
    // Goal: the checkpoint moves past a transaction's first Undo records (a QuiesceCaches
    // partial stop flushes every page while it is open); recovery still finds and undoes
    // them, because the checkpoint records the undo point.
    let io = MemIo::new();
    let run = start(&io);
    let expected = run.load(0..100, "a");
    run.jet.begin_transaction(run.s).unwrap();
    for i in 0..30 {
        run.set(i, Some(b"early")).unwrap();
    }
    run.jet
        .stop_service_instance2(run.instance, stop_grbit::QUIESCE_CACHES)
        .unwrap();
    assert_eq!(
        run.jet.instance_status(run.instance).unwrap().dirty_pages,
        0
    );
    for i in 30..60 {
        run.set(i, None).unwrap();
    }
    run.flush_log();
    let recovered = crash_and_recover(run, &io);
    let report = &recovered.report;
    assert!(
        report.analysis_start_lsn < report.redo_start_lsn,
        "undo information lay before the checkpoint: {report:?}"
    );
    assert_eq!(report.transactions_undone, 1);
    assert_eq!(report.undo_records_applied, 60);
    assert_eq!(recovered.contents, Some(expected));
}

#[test]
fn nested_rollback_is_not_undone_twice() {
    // Goal: a rolled-back nested level's records may be rewritten and committed by another
    // session; undoing the outer transaction at recovery must not restore them.
    let io = MemIo::new();
    let run = start(&io);
    let mut expected = run.load(0..20, "a");
    run.jet.begin_transaction(run.s).unwrap();
    run.set(1, Some(b"outer")).unwrap();
    run.jet.begin_transaction(run.s).unwrap();
    run.set(2, Some(b"inner")).unwrap();
    run.jet.rollback(run.s).unwrap();
    let other = run.jet.begin_session(run.instance).unwrap();
    let d = run.jet.open_database(other, DB).unwrap();
    let t = run.jet.open_table(other, d, "t").unwrap();
    run.jet.begin_transaction(other).unwrap();
    run.jet.seek(other, t, &key(2), SeekMode::Equal).unwrap();
    run.jet.replace(other, t, b"committed by other").unwrap();
    run.jet.commit_transaction(other).unwrap();
    expected.insert(key(2), b"committed by other".to_vec());
    let recovered = crash_and_recover(run, &io);
    assert_eq!(recovered.contents, Some(expected));
    assert_eq!(recovered.report.undo_records_applied, 1);
}

#[test]
fn the_stop_makes_recovery_almost_free() {
    // Goal: the stop's value, measured. The same workload, crashed right after a successful
    // JetStopServiceInstance and crashed without it: recovery work (log bytes replayed, pages
    // redone) is zero after the stop and substantial without it.
    let workload = |stop: bool| {
        let io = MemIo::new();
        let run = start(&io);
        let mut expected = Contents::new();
        for round in 0..5u32 {
            expected.extend(run.load(round * 100..round * 100 + 100, "w"));
        }
        if stop {
            run.jet.stop_service_instance(run.instance).unwrap();
        }
        let recovered = crash_and_recover(run, &io);
        assert_eq!(recovered.contents, Some(expected));
        recovered.report
    };
    let with_stop = workload(true);
    let without_stop = workload(false);
    println!(
        "stop's value: after a stop, recovery replayed {} log bytes and redid {} pages; \
         without the stop, {} log bytes and {} pages",
        with_stop.log_bytes_replayed,
        with_stop.pages_redone,
        without_stop.log_bytes_replayed,
        without_stop.pages_redone
    );
    assert_eq!(with_stop.log_bytes_replayed, 0);
    assert_eq!(with_stop.pages_redone, 0);
    assert!(without_stop.log_bytes_replayed > 100_000);
    assert!(without_stop.pages_redone > 10);
}

#[test]
fn crash_mid_defrag_at_every_write() {
    // Goal: power fails at every mutating I/O of an online-defrag round (merges rewrite and
    // free pages); recovery always yields the committed data.
    let setup = || {
        let io = MemIo::new();
        // A small cache: defrag's own reads evict (and write back), so the power cut can meet
        // a defrag pass as well as the checkpoint flush.
        let run = start_with(&io, Mutations::NONE, 8).unwrap();
        let mut expected = run.load(0..300, "a");
        run.jet.begin_transaction(run.s).unwrap();
        for i in 0..300 {
            if i % 5 != 0 {
                run.set(i, None).unwrap();
                expected.remove(&key(i));
            }
        }
        run.jet.commit_transaction(run.s).unwrap();
        run.jet
            .defragment(run.s, run.d, defrag_grbit::BATCH_START)
            .unwrap();
        // Make the defrag round flush its pages (depth 0) so it writes.
        run.jet
            .set_system_parameter(run.instance, SystemParameter::CheckpointDepthMaxBytes, 0)
            .unwrap();
        (io, run, expected)
    };
    let (io, run, _) = setup();
    let before = io.mutating_ops();
    while run.jet.run_background_tasks(run.instance).unwrap() {}
    let round_ops = io.mutating_ops() - before;
    assert!(
        run.jet
            .instance_status(run.instance)
            .unwrap()
            .defrag_pages_freed
            > 0
    );
    drop(run);
    assert!(round_ops > 0);
    let mut failed_during = std::collections::BTreeSet::new();
    for cut in 0..round_ops {
        let (io, run, expected) = setup();
        io.cut_power_after_ops(Some(io.mutating_ops() + cut));
        for _ in 0..100 {
            if !run.jet.run_background_tasks(run.instance).unwrap_or(false) {
                break;
            }
        }
        // Nobody called: the background task that met the power cut is on record.
        let failure = run.jet.instance_failure(run.instance).unwrap();
        failed_during.insert(failure.expect("the cut failed the round").during);
        let recovered = crash_and_recover(run, &io);
        assert_eq!(recovered.contents, Some(expected), "cut at defrag op {cut}");
    }
    println!("mid-defrag crash points: {round_ops}, failed during {failed_during:?}");
    assert_eq!(
        failed_during,
        [Activity::CheckpointFlush, Activity::DefragPass].into()
    );
}

#[test]
fn a_crash_during_recovery_is_recovered() {
    // Goal: recovery logs its compensations, so power failing at any write of recovery itself
    // leaves a state the next recovery completes.
    let setup = || {
        let io = MemIo::new();
        let run = start(&io);
        let expected = run.load(0..120, "a");
        run.jet.begin_transaction(run.s).unwrap();
        for i in 0..120 {
            run.set(i, Some(b"loser")).unwrap();
        }
        run.flush_log();
        drop(run);
        io.crash();
        (io, expected)
    };
    let (io, _) = setup();
    let before = io.mutating_ops();
    recover(&io).unwrap();
    let recovery_ops = io.mutating_ops() - before;
    assert!(recovery_ops > 2);
    for cut in 0..recovery_ops {
        let (io, expected) = setup();
        io.cut_power_after_ops(Some(io.mutating_ops() + cut));
        assert!(recover(&io).is_err(), "power cut at {cut} fails the init");
        io.crash();
        let recovered = recover(&io).unwrap();
        assert_eq!(
            recovered.contents,
            Some(expected),
            "cut at recovery op {cut}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Torn pages, torn log tails

#[test]
fn a_torn_page_is_repaired_from_the_log() {
    // Goal: a page whose checksum fails after a crash, with an image after the checkpoint,
    // is rewritten from the log; the report counts it.
    let io = MemIo::new();
    let run = start(&io);
    let expected = run.load(0..200, "a");
    let recovered = {
        drop(run);
        io.crash();
        // Tear page 3 the way a sector-level tear would: its middle sector is garbage.
        io.corrupt(DB, 3 * PAGE_BYTES + 512, &[0xA5; 512]).unwrap();
        recover(&io).unwrap()
    };
    assert_eq!(recovered.contents, Some(expected));
    assert!(
        recovered.report.pages_repaired >= 1,
        "{:?}",
        recovered.report
    );
}

#[test]
fn torn_writes_from_the_fault_model_are_repaired() {
    // Goal: with the simulated disk tearing and dropping unsynced writes (evictions from a
    // tiny cache write pages without syncing), every seed recovers the committed data, and
    // some seeds do repair torn pages.
    let mut repaired = 0;
    for seed in 0..24u64 {
        let io = MemIo::new();
        let run = start_with(&io, Mutations::NONE, 8).unwrap();
        let mut expected = run.load(0..150, "a");
        expected.extend(run.load(150..250, "b"));
        drop(run);
        let crash = CrashFaults {
            lost_write_ppm: 300_000,
            torn_write_ppm: 600_000,
            ..CrashFaults::default()
        };
        io.crash_with(&mut SplitMix64::new(seed), crash);
        let recovered = recover(&io).unwrap();
        assert_eq!(recovered.contents, Some(expected), "seed {seed}");
        repaired += recovered.report.pages_repaired;
    }
    assert!(repaired > 0, "no seed tore a page");
    println!("torn pages repaired over 24 seeds: {repaired}");
}

#[test]
fn a_corrupt_page_without_a_log_image_is_reported_never_used() {
    // Goal: after a stop (checkpoint at the tip) nothing in the log can repair a page, so a
    // damaged page is DatabaseCorrupted on read, and a damaged header refuses the attach.
    let io = MemIo::new();
    let run = start(&io);
    run.load(0..200, "a");
    run.jet.stop_service_instance(run.instance).unwrap();
    drop(run);
    io.crash();
    io.corrupt(DB, 4 * PAGE_BYTES + 100, &[0xFF; 16]).unwrap();
    let jet = StdJet::new(env_on(&io));
    let instance = jet.create_instance("inst").unwrap();
    jet.init(instance).unwrap();
    let s = jet.begin_session(instance).unwrap();
    let (d, t) = reattach(&jet, s);
    assert_eq!(
        jet.index_record_count(s, t, 0),
        Err(JetError::DatabaseCorrupted)
    );
    jet.close_table(s, t).unwrap();
    jet.close_database(s, d).unwrap();
    jet.detach_database(s, DB).unwrap();
    io.corrupt(DB, 20, &[0xFF; 4]).unwrap();
    assert_eq!(jet.attach_database(s, DB), Err(JetError::DatabaseCorrupted));
    jet.end_session(s).unwrap();
    jet.term(instance).unwrap();
}

#[test]
fn a_torn_log_tail_is_cut_off_and_ignored() {
    // Goal: garbage after the last valid log record (a torn append) is detected by its
    // checksum, reported and cut off; the committed data before it is intact.
    let io = MemIo::new();
    let run = start(&io);
    let expected = run.load(0..50, "a");
    drop(run);
    io.crash();
    let log_len = {
        use jetsim_engine::env::Io;
        io.open("inst/jet.log").unwrap().len().unwrap()
    };
    io.corrupt(
        "inst/jet.log",
        log_len,
        &[0x40, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7],
    )
    .unwrap();
    let recovered = recover(&io).unwrap();
    assert_eq!(recovered.report.torn_tail_bytes, 11);
    assert_eq!(recovered.contents, Some(expected));
}

// ---------------------------------------------------------------------------------------------
// Files that vanished at a crash (the disk's fault 5: directory entries not yet synced)

#[test]
fn a_file_whose_creation_never_reached_the_disk_is_a_fresh_start() {
    // Goal: init creates the log and the checkpoint file; with the power cut at each of its
    // disk operations (the directory syncs that make those files exist included), the crash
    // loses the files' entries or keeps them (all, none, a seeded mix), and the next init is
    // a clean start every time, never a panic or an error; the instance then works.
    let ops_of_init = {
        let io = MemIo::new();
        let jet = StdJet::new(env_on(&io));
        let instance = jet
            .create_instance_with("inst", InstanceOptions::manual())
            .unwrap();
        jet.init(instance).unwrap();
        io.mutating_ops()
    };
    let mut lost_creates = 0;
    for cut in 0..ops_of_init {
        for variant in 0..3u64 {
            let io = MemIo::new();
            io.cut_power_after_ops(Some(cut));
            let jet = StdJet::new(env_on(&io));
            let instance = jet
                .create_instance_with("inst", InstanceOptions::manual())
                .unwrap();
            assert_eq!(jet.init(instance), Err(JetError::DiskIO), "cut at op {cut}");
            drop(jet);
            crash_variant(&io, variant, cut, 500_000);
            lost_creates += io
                .injected_faults()
                .iter()
                .filter(|f| matches!(f, InjectedFault::LostCreate { .. }))
                .count();
            let recovered = recover(&io)
                .unwrap_or_else(|e| panic!("cut at op {cut}, variant {variant}: {e:?}"));
            assert!(recovered.report.clean, "cut at op {cut}, variant {variant}");
            assert_eq!(recovered.contents, None);
            let run = start(&io);
            run.load(0..3, "after");
        }
    }
    assert!(
        ops_of_init >= 4,
        "log and checkpoint creation, header write and sync"
    );
    assert!(lost_creates > 0, "a created file vanished at some crash");
}

/// Commits 0..40, checkpoints, commits 40..80 and opens a transaction whose writes reach
/// the log; the process dies and the disk loses what was never synced.
fn committed_then_crashed(io: &MemIo) -> Contents {
    let run = start(io);
    let mut expected = run.load(0..40, "a");
    run.jet.run_background_tasks(run.instance).unwrap();
    expected.extend(run.load(40..80, "b"));
    run.jet.begin_transaction(run.s).unwrap();
    run.set(3, Some(b"never committed")).unwrap();
    run.flush_log();
    drop(run);
    io.crash();
    expected
}

#[test]
fn a_missing_checkpoint_file_means_redo_from_the_head_of_the_log() {
    // Goal: without the checkpoint file, recovery does not fail or guess: it redoes and
    // scans from the first record of the log, and every commit is back.
    let with_checkpoint = MemIo::new();
    committed_then_crashed(&with_checkpoint);
    let checkpointed = recover(&with_checkpoint).unwrap().report;
    assert!(checkpointed.redo_start_lsn > 0);

    let io = MemIo::new();
    let expected = committed_then_crashed(&io);
    {
        use jetsim_engine::env::Io;
        io.remove("inst/jet.chk").unwrap();
    }
    let recovered = recover(&io).unwrap();
    assert_eq!(recovered.contents, Some(expected));
    assert!(recovered.report.redo_start_lsn < checkpointed.redo_start_lsn);
    assert_eq!(recovered.report.transactions_undone, 1);
}

#[test]
fn a_missing_database_file_is_reported_and_attach_says_file_not_found() {
    // Goal: a database the log names that no longer exists is reported missing, its redo and
    // undo are skipped (counted), recovery finishes, attach is FileNotFound, and the path can
    // be created again.
    let io = MemIo::new();
    committed_then_crashed(&io);
    {
        use jetsim_engine::env::Io;
        io.remove(DB).unwrap();
    }
    let recovered = recover(&io).unwrap();
    assert_eq!(recovered.report.databases_missing, vec![DB.to_owned()]);
    assert!(recovered.report.undo_records_skipped > 0);
    assert_eq!(recovered.report.databases_recovered, Vec::<String>::new());
    assert_eq!(recovered.contents, None);
    let jet = StdJet::new(env_on(&io));
    let (instance, s) = start_session(&jet, "inst");
    assert_eq!(jet.attach_database(s, DB), Err(JetError::FileNotFound));
    jet.create_database(s, DB).unwrap();
    jet.end_session(s).unwrap();
    assert_eq!(jet.term(instance), Ok(TermOutcome::Clean));
}

// ---------------------------------------------------------------------------------------------
// I/O errors: fail-stop

#[test]
fn an_io_error_makes_the_instance_fail_stop_until_term_and_reinit() {
    // Goal: a log write failing during commit returns LogWriteFail; every later call (term
    // excepted) is InstanceUnavailable; term succeeds; a new init recovers.
    let io = MemIo::new();
    let run = start(&io);
    let expected = run.load(0..40, "a");
    run.jet.begin_transaction(run.s).unwrap();
    run.set(1, Some(b"doomed")).unwrap();
    io.set_fault_plan(FaultPlan {
        seed: 1,
        write_error_ppm: PPM,
        ..FaultPlan::default()
    });
    io.set_faults_enabled(true);
    assert_eq!(
        run.jet.commit_transaction(run.s),
        Err(JetError::LogWriteFail)
    );
    io.set_faults_enabled(false);
    assert_eq!(
        run.jet.instance_failure(run.instance),
        Ok(Some(Failure {
            error: JetError::LogWriteFail,
            during: Activity::Call
        }))
    );
    let unavailable = Err(JetError::InstanceUnavailable);
    assert_eq!(run.jet.commit_transaction(run.s), unavailable);
    assert_eq!(run.jet.rollback(run.s), unavailable);
    assert_eq!(run.jet.begin_session(run.instance).map(|_| ()), unavailable);
    assert_eq!(run.jet.retrieve(run.s, run.t).map(|_| ()), unavailable);
    assert_eq!(
        run.jet
            .get_system_parameter(run.instance, SystemParameter::CacheSizePages)
            .map(|_| ()),
        unavailable
    );
    assert_eq!(run.jet.close_table(run.s, run.t), unavailable);
    assert_eq!(run.jet.stop_service_instance(run.instance), unavailable);
    // Term succeeds even with the transaction open, writing nothing.
    let ops = io.mutating_ops();
    assert_eq!(run.jet.term(run.instance), Ok(TermOutcome::DirtyShutdown));
    assert_eq!(io.mutating_ops(), ops, "a fail-stop term writes nothing");
    io.crash();
    let recovered = recover(&io).unwrap();
    assert_eq!(recovered.contents, Some(expected));
    assert!(io
        .injected_faults()
        .iter()
        .any(|f| matches!(f, InjectedFault::WriteError { .. })));
}

#[test]
fn a_read_error_is_disk_io_and_fail_stop() {
    // Goal: a page read failing returns DiskIO (never a page), then InstanceUnavailable.
    let io = MemIo::new();
    let run = start(&io);
    let expected = run.load(0..200, "a");
    run.jet.stop_service_instance(run.instance).unwrap();
    run.jet.term(run.instance).unwrap();
    let jet = StdJet::new(env_on(&io));
    let instance = jet.create_instance("inst").unwrap();
    jet.init(instance).unwrap();
    let s = jet.begin_session(instance).unwrap();
    let (_, t) = reattach(&jet, s);
    io.set_fault_plan(FaultPlan {
        seed: 9,
        read_error_ppm: PPM,
        ..FaultPlan::default()
    });
    io.set_faults_enabled(true);
    assert_eq!(jet.index_record_count(s, t, 0), Err(JetError::DiskIO));
    io.set_faults_enabled(false);
    assert_eq!(
        jet.index_record_count(s, t, 0),
        Err(JetError::InstanceUnavailable)
    );
    assert_eq!(jet.term(instance), Ok(TermOutcome::DirtyShutdown));
    assert_eq!(recover(&io).unwrap().contents, Some(expected));
}

#[test]
fn seeded_io_errors_then_a_clean_phase_lose_no_commit() {
    // Goal: a fault phase with seeded read/write/sync errors (every error injected, every
    // failure fail-stop), then restart and a clean phase: every acknowledged commit survives.
    let mut failures = 0;
    for seed in 0..20u64 {
        let io = MemIo::new();
        let run = start(&io);
        let mut expected = run.load(0..50, "base");
        io.set_fault_plan(FaultPlan {
            seed,
            read_error_ppm: 2_000,
            write_error_ppm: 20_000,
            sync_error_ppm: 20_000,
            crash: CrashFaults {
                lost_write_ppm: 500_000,
                torn_write_ppm: 500_000,
                ..CrashFaults::default()
            },
        });
        io.set_faults_enabled(true);
        let mut in_doubt = None;
        for round in 0..30u32 {
            let writes: Vec<(u32, Vec<u8>)> = (0..4)
                .map(|j| ((round * 7 + j * 11) % 80, value("r", round)))
                .collect();
            let result = (|| {
                run.jet.begin_transaction(run.s)?;
                for (i, v) in &writes {
                    run.set(*i, Some(v))?;
                }
                run.jet.commit_transaction(run.s)
            })();
            match result {
                Ok(()) => expected.extend(writes.into_iter().map(|(i, v)| (key(i), v))),
                Err(error) => {
                    assert!(
                        matches!(error, JetError::DiskIO | JetError::LogWriteFail),
                        "seed {seed}: {error:?}"
                    );
                    in_doubt = Some(writes);
                    break;
                }
            }
        }
        io.set_faults_enabled(false);
        if in_doubt.is_some() {
            failures += 1;
            assert!(run.jet.instance_failure(run.instance).unwrap().is_some());
            assert!(!io.injected_faults().is_empty(), "every error is injected");
        }
        drop(run);
        io.crash_seeded();
        let recovered = recover(&io).unwrap();
        let contents = recovered.contents.expect("database");
        let mut with_doubt = expected.clone();
        if let Some(writes) = in_doubt {
            with_doubt.extend(writes.into_iter().map(|(i, v)| (key(i), v)));
        }
        assert!(
            contents == expected || contents == with_doubt,
            "seed {seed}: recovered data is neither before nor after the in-doubt commit"
        );
    }
    assert!(failures > 0, "no seed injected an error");
}

// ---------------------------------------------------------------------------------------------
// The log's identity

#[test]
fn a_database_another_log_left_dirty_waits_for_that_logs_recovery() {
    // Instance A crashes with changes to DB only in its log. Instance B (another log) may not
    // attach DB: its header says A's log still owns changes it lacks (ESE:
    // JET_errDatabaseDirtyShutdown). Once A's recovery has replayed them and marked the file
    // clean, B may have it, with A's data.
    let io = MemIo::new();
    let run = start(&io);
    let a_data = run.load(0..100, "a");
    run.flush_log();
    drop(run);
    io.crash();
    let (jet, b, s) = other_instance(&io);
    assert_eq!(
        jet.attach_database(s, DB),
        Err(JetError::DatabaseDirtyShutdown)
    );
    let recovered = recover(&io).unwrap();
    assert_eq!(recovered.contents.as_ref(), Some(&a_data));
    assert_eq!(jet.attach_database(s, DB), Ok(AttachOutcome::Attached));
    assert_eq!(jet.observe(b).unwrap().committed[DB]["t"], a_data);
    jet.end_session(s).unwrap();
    assert_eq!(jet.term(b), Ok(TermOutcome::Clean));
}

/// Instance B ("other", a log of its own) on `io`, initialized, with a session.
fn other_instance(io: &MemIo) -> (StdJet, InstanceHandle, SessionHandle) {
    let jet = StdJet::new(env_on(io));
    let b = jet.create_instance("other").unwrap();
    jet.init(b).unwrap();
    let s = jet.begin_session(b).unwrap();
    (jet, b, s)
}

/// A run with `mutations` planted that committed 100 records and closed its table and
/// database, ready to detach.
fn loaded_and_closed(io: &MemIo, mutations: Mutations) -> Run {
    let run = start_with(io, mutations, 256).expect("start");
    run.load(0..100, "a");
    run.jet.close_table(run.s, run.t).unwrap();
    run.jet.close_database(run.s, run.d).unwrap();
    run
}

#[test]
fn a_detach_is_in_the_durable_log_when_it_returns() {
    // Goal: a crash right after a detach returned leaves A's log naming the database
    // detached (ESE's ErrLGDetachDB waits for its record's write), so once instance B (its
    // own log) attached the clean file, A's recovery has nothing to say about it. Planted
    // `DetachRecordNotFlushed`: A's log still names it attached, and its recovery finds it
    // owned elsewhere.
    let planted = Mutations::NONE.with(Mutant::DetachRecordNotFlushed);
    for (mutations, owned_elsewhere) in [(Mutations::NONE, vec![]), (planted, vec![DB.to_owned()])]
    {
        let io = MemIo::new();
        let run = loaded_and_closed(&io, mutations);
        run.jet.detach_database(run.s, DB).unwrap();
        io.cut_power_after_ops(Some(io.mutating_ops()));
        drop(run);
        io.crash();
        let (jet, b, s) = other_instance(&io);
        assert_eq!(jet.attach_database(s, DB), Ok(AttachOutcome::Attached));
        jet.detach_database(s, DB).unwrap();
        jet.end_session(s).unwrap();
        jet.term(b).unwrap();
        let recovered = recover(&io).unwrap();
        assert_eq!(
            recovered.report.databases_owned_elsewhere, owned_elsewhere,
            "{mutations:?}"
        );
    }
}

#[test]
fn a_database_attached_under_another_log_is_left_alone() {
    // Instance A's detach makes DB clean on disk, and the power fails before its
    // DetachDatabase record reaches the log (the record's write and sync, a detach's last
    // two disk operations), so A's log still names DB as attached, with page images after
    // its checkpoint. DB is then attached to instance B (another log), changed and
    // detached. A's recovery must not replay its old page images over B's data: the header
    // names B's log.
    // A detach's disk operations, counted on a twin run (no background thread: the same).
    let detach_ops = {
        let io = MemIo::new();
        let run = loaded_and_closed(&io, Mutations::NONE);
        let before = io.mutating_ops();
        run.jet.detach_database(run.s, DB).unwrap();
        io.mutating_ops() - before
    };
    let io = MemIo::new();
    let run = loaded_and_closed(&io, Mutations::NONE);
    io.cut_power_after_ops(Some(io.mutating_ops() + detach_ops - 2));
    assert!(
        run.jet.detach_database(run.s, DB).is_err(),
        "the detach's Detach record met the power cut"
    );
    drop(run);
    io.crash();
    let b_data = {
        let (jet, b, s) = other_instance(&io);
        let (d, t) = reattach(&jet, s);
        jet.begin_transaction(s).unwrap();
        for i in 0..300u32 {
            jet.insert(s, t, &key(1000 + i), b"from B").unwrap();
        }
        jet.commit_transaction(s).unwrap();
        jet.close_table(s, t).unwrap();
        jet.close_database(s, d).unwrap();
        jet.detach_database(s, DB).unwrap();
        jet.end_session(s).unwrap();
        jet.term(b).unwrap();
        let (jet, b, s) = other_instance(&io);
        jet.attach_database(s, DB).unwrap();
        let data = jet.observe(b).unwrap().committed[DB]["t"].clone();
        jet.end_session(s).unwrap();
        jet.term(b).unwrap();
        data
    };
    assert_eq!(b_data.len(), 400, "B saw A's 100 records and added 300");
    let recovered = recover(&io).unwrap();
    assert_eq!(
        recovered.report.databases_owned_elsewhere,
        vec![DB.to_owned()]
    );
    assert_eq!(recovered.report.pages_redone, 0);
    assert_eq!(recovered.contents, Some(b_data));
}

// ---------------------------------------------------------------------------------------------
// The crash-point sweep

/// What the sweep workload acknowledged before the power failed.
#[derive(Default)]
struct Acked {
    database_created: bool,
    committed: Contents,
    /// Writes of the transaction whose commit call failed: it may or may not be durable.
    in_doubt: Option<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

/// A small workload: a preload, transactions of inserts, replaces and deletes (some rolled
/// back, one nested), checkpoint flushes, a defrag start, an open transaction at the end and
/// a stop under it.
/// Stops at the first error (the power cut).
fn sweep_workload(io: &MemIo, mutations: Mutations) -> Acked {
    let mut acked = Acked::default();
    let Ok(run) = start_with(io, mutations, 8) else {
        acked.database_created = false;
        return acked;
    };
    acked.database_created = true;
    let mut model = Contents::new();
    let result = (|| -> JetResult<()> {
        run.jet.begin_transaction(run.s)?;
        let mut preload = BTreeMap::new();
        for i in 0..60 {
            run.set(i, Some(&value("p", i)))?;
            preload.insert(key(i), Some(value("p", i)));
        }
        acked.in_doubt = Some(preload.clone());
        run.jet.commit_transaction(run.s)?;
        acked.in_doubt = None;
        apply(&mut model, &preload);
        for t in 0..10u32 {
            run.jet.begin_transaction(run.s)?;
            let mut writes = BTreeMap::new();
            for j in 0..5u32 {
                let i = (t * 17 + j * 23) % 70;
                let v = (j % 3 != 0).then(|| value(&format!("t{t}"), j));
                run.set(i, v.as_deref())?;
                writes.insert(key(i), v);
            }
            if t == 4 {
                // A nested level rolled back: its write is not part of the commit.
                run.jet.begin_transaction(run.s)?;
                run.set(5, Some(b"nested, rolled back"))?;
                run.jet.rollback(run.s)?;
            }
            if t % 4 == 3 {
                run.jet.rollback(run.s)?;
            } else {
                acked.in_doubt = Some(writes.clone());
                run.jet.commit_transaction(run.s)?;
                acked.in_doubt = None;
                apply(&mut model, &writes);
                acked.committed = model.clone();
            }
            if t % 3 == 2 {
                run.jet.run_background_tasks(run.instance)?;
            }
            if t == 6 {
                run.jet
                    .defragment(run.s, run.d, defrag_grbit::BATCH_START)?;
            }
        }
        run.jet.begin_transaction(run.s)?;
        for i in 0..20 {
            run.set(i, Some(b"never committed"))?;
        }
        run.jet.run_background_tasks(run.instance)?;
        // Crash points inside the stop too: it flushes the open transaction's pages, and the
        // checkpoint it persists lies after that transaction's first Undo record.
        run.jet.stop_service_instance(run.instance)?;
        Ok(())
    })();
    acked.committed = model;
    if result.is_err() {
        assert!(
            io.power_is_cut() || run.jet.instance_failure(run.instance).unwrap().is_some(),
            "the workload failed without an injected fault: {result:?}"
        );
    }
    acked
}

fn apply(model: &mut Contents, writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
    for (k, v) in writes {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
}

/// Checks a recovered disk against what was acknowledged: `Err` names the violation.
fn check(io: &MemIo, acked: &Acked) -> Result<RecoveryReport, String> {
    let recovered = recover(io).map_err(|e| format!("recovery failed: {e:?}"))?;
    let Some(contents) = recovered.contents else {
        if acked.database_created && !acked.committed.is_empty() {
            return Err("database or table lost".into());
        }
        return Ok(recovered.report);
    };
    let mut with_doubt = acked.committed.clone();
    if let Some(writes) = &acked.in_doubt {
        apply(&mut with_doubt, writes);
    }
    if contents == acked.committed || contents == with_doubt {
        return Ok(recovered.report);
    }
    let lost = acked
        .committed
        .iter()
        .filter(|(k, v)| contents.get(*k) != Some(v) && with_doubt.get(*k) != contents.get(*k))
        .count();
    let uncommitted = contents
        .iter()
        .filter(|(k, v)| acked.committed.get(*k) != Some(v) && with_doubt.get(*k) != Some(v))
        .count();
    Err(format!(
        "{lost} committed records lost or changed, {uncommitted} uncommitted records visible"
    ))
}

struct Sweep {
    crash_points: u64,
    recoveries: u64,
    violations: Vec<String>,
    pages_redone: u64,
}

/// Cuts the power at every mutating I/O of the workload in turn; after each, three crashes
/// (all unsynced writes lost, all kept, a seeded mix with tears), recovery, and the check.
fn crash_sweep(mutations: Mutations) -> Sweep {
    let io = MemIo::new();
    sweep_workload(&io, mutations);
    let total_ops = io.mutating_ops();
    let mut sweep = Sweep {
        crash_points: 0,
        recoveries: 0,
        violations: Vec::new(),
        pages_redone: 0,
    };
    for cut in 0..=total_ops {
        sweep.crash_points += 1;
        for variant in 0..3u64 {
            let io = MemIo::new();
            io.cut_power_after_ops(Some(cut));
            let acked = sweep_workload(&io, mutations);
            crash_variant(&io, variant, cut, 400_000);
            sweep.recoveries += 1;
            match check(&io, &acked) {
                Ok(report) => sweep.pages_redone += report.pages_redone,
                Err(violation) => sweep
                    .violations
                    .push(format!("crash at op {cut}, variant {variant}: {violation}")),
            }
        }
    }
    sweep
}

#[test]
fn crash_sweep_loses_no_commit() {
    // Goal: crash at every write and sync of the workload; zero lost commits and zero
    // visible uncommitted writes, under three crash behaviours of the disk.
    let sweep = crash_sweep(Mutations::NONE);
    println!(
        "crash sweep: {} crash points, {} recoveries, {} pages redone, {} violations",
        sweep.crash_points,
        sweep.recoveries,
        sweep.pages_redone,
        sweep.violations.len()
    );
    assert!(sweep.crash_points > 50);
    assert!(sweep.pages_redone > 0, "the sweep exercised redo");
    assert_eq!(sweep.violations, Vec::<String>::new());
}

#[test]
fn planted_commit_ack_before_log_sync_is_caught() {
    // Goal: the crash sweep's teeth: a commit acknowledged before its log is synced loses
    // commits when the power fails right after the acknowledgement.
    let sweep = crash_sweep(Mutations::NONE.with(Mutant::CommitAckBeforeLogSync));
    assert_caught(
        "CommitAckBeforeLogSync",
        &sweep.violations,
        sweep.recoveries,
    );
}

#[test]
fn planted_page_before_log_is_caught() {
    // Goal: pages written before their log records (no WAL flush) leave changes on disk that
    // the log never recorded: uncommitted data survives, or the tree breaks.
    let sweep = crash_sweep(Mutations::NONE.with(Mutant::PageBeforeLog));
    assert_caught("PageBeforeLog", &sweep.violations, sweep.recoveries);
}

/// What [`damaged_tail_sweep`] saw.
struct DamagedTails {
    recoveries: u64,
    violations: Vec<String>,
    /// Recoveries whose log ended at a frame that failed its CRC (the CRC cut the tail).
    cut_by_checksum: u64,
    garbage_sectors: u64,
    bit_flips: u64,
}

/// For each seed (`JETSIM_DAMAGED_TAIL_SEEDS`, default 48): committed data is synced, then a
/// transaction's commit writes its log tail and the sync fails (never acknowledged); the
/// crash keeps that write with seeded garbage sectors and bit flips (the disk's faults 6
/// and 7). Recovery by an engine with `mutations` must give back the committed data, with
/// or without the in-doubt transaction whole, and nothing else.
fn damaged_tail_sweep(mutations: Mutations) -> DamagedTails {
    let seeds: u64 = std::env::var("JETSIM_DAMAGED_TAIL_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut sweep = DamagedTails {
        recoveries: 0,
        violations: Vec::new(),
        cut_by_checksum: 0,
        garbage_sectors: 0,
        bit_flips: 0,
    };
    for seed in 0..seeds {
        let io = MemIo::new();
        let run = start(&io);
        let expected = run.load(0..40, "a");
        io.set_fault_plan(FaultPlan {
            seed,
            sync_error_ppm: PPM,
            crash: CrashFaults {
                garbage_sector_ppm: 20_000,
                bit_flip_ppm: 100_000,
                ..CrashFaults::default()
            },
            ..FaultPlan::default()
        });
        io.set_faults_enabled(true);
        let mut in_doubt = expected.clone();
        let outcome = (|| {
            run.jet.begin_transaction(run.s)?;
            for i in 30..60 {
                run.set(i, Some(&value("b", i)))?;
                in_doubt.insert(key(i), value("b", i));
            }
            run.jet.commit_transaction(run.s)
        })();
        assert_eq!(outcome, Err(JetError::LogWriteFail), "seed {seed}");
        io.set_faults_enabled(false);
        drop(run);
        io.crash_seeded();
        for fault in io.injected_faults() {
            match fault {
                InjectedFault::GarbageSector { .. } => sweep.garbage_sectors += 1,
                InjectedFault::BitFlip { .. } => sweep.bit_flips += 1,
                _ => {}
            }
        }
        sweep.recoveries += 1;
        let command = "cargo test -p jetsim-engine --test recovery log_tail";
        match recover_with(&io, mutations) {
            Ok(recovered) => {
                sweep.cut_by_checksum += u64::from(recovered.report.log_tail_checksum_failed);
                let contents = recovered.contents;
                if contents.as_ref() != Some(&expected) && contents.as_ref() != Some(&in_doubt) {
                    sweep.violations.push(format!(
                        "seed {seed}: recovered {} records, neither the committed data nor it \
                         with the in-doubt transaction ({command})",
                        contents.map_or(0, |c| c.len())
                    ));
                }
            }
            Err(error) => sweep.violations.push(format!(
                "seed {seed}: recovery failed: {error:?} ({command})"
            )),
        }
    }
    sweep
}

#[test]
fn a_garbage_or_flipped_log_tail_is_cut_by_its_checksum() {
    // Goal: the disk's garbage sectors and bit flips in an unsynced log tail (which still
    // parses as records often enough) are cut by the log's CRC and reported; recovery loses
    // no committed data and replays nothing of the damaged tail.
    let sweep = damaged_tail_sweep(Mutations::NONE);
    println!(
        "{} recoveries, {} garbage sectors and {} bit flips injected, {} tails cut by CRC",
        sweep.recoveries, sweep.garbage_sectors, sweep.bit_flips, sweep.cut_by_checksum
    );
    assert_eq!(sweep.violations, Vec::<String>::new());
    assert!(sweep.garbage_sectors > 0 && sweep.bit_flips > 0);
    assert!(sweep.cut_by_checksum > 0, "the CRC never ended a log");
}

#[test]
fn planted_log_checksum_ignored_is_caught_on_a_damaged_log_tail() {
    // Goal: the damaged-tail sweep's teeth: a recovery that takes frames without checking
    // their CRC replays a flipped record of a tail that was never synced.
    let sweep = damaged_tail_sweep(Mutations::NONE.with(Mutant::LogChecksumIgnored));
    assert_caught("LogChecksumIgnored", &sweep.violations, sweep.recoveries);
}

/// A planted bug's sweep found at least one violation; prints how many and the first.
fn assert_caught(mutant: &str, violations: &[String], recoveries: u64) {
    println!(
        "{mutant}: {} violations in {recoveries} recoveries; first: {:?}",
        violations.len(),
        violations.first()
    );
    assert!(!violations.is_empty(), "{mutant} was not caught");
}

/// Power cut at every disk operation while one big uncommitted transaction splits leaves in
/// an 8-page cache; after each crash, recovery must undo the transaction through a tree it
/// rebuilt whole. (A record write makes the room its install needs before it logs anything,
/// writing pages back with no latch held, so no eviction flushes the log in the middle of
/// its split: the planted bug `OperationLoggedPerPage`, which logs each page of a split as
/// its own record, no longer tears one here, and is caught by the simulator instead.) Returns the
/// crash points tried and the violations.
fn split_sweep(mutations: Mutations) -> (u64, Vec<String>) {
    // Committed records spread over the key range, so the splits below move committed
    // records as well as the transaction's own.
    let preload = |run: &Run| {
        run.jet.begin_transaction(run.s).unwrap();
        let mut loaded = Contents::new();
        for i in (0..150u32).step_by(6) {
            run.jet
                .insert(run.s, run.t, &key(i), &value("p", i))
                .unwrap();
            loaded.insert(key(i), value("p", i));
        }
        run.jet.commit_transaction(run.s).unwrap();
        loaded
    };
    let inserts = |run: &Run| -> JetResult<()> {
        run.jet.begin_transaction(run.s)?;
        for i in 0..150u32 {
            let k = (i * 37) % 150;
            if k % 6 != 0 {
                run.jet.insert(run.s, run.t, &key(k), &[b'x'; 300])?;
            }
        }
        Ok(())
    };
    let io = MemIo::new();
    let run = start_with(&io, mutations, 8).expect("start");
    let expected = preload(&run);
    let before = io.mutating_ops();
    inserts(&run).expect("no faults");
    let phase_ops = io.mutating_ops() - before;
    drop(run);
    let mut violations = Vec::new();
    for cut in 0..phase_ops {
        // Unsynced writes all lost, then all kept (page write-backs that reached the disk).
        for keep_unsynced in [false, true] {
            let io = MemIo::new();
            let run = start_with(&io, mutations, 8).expect("start");
            preload(&run);
            io.cut_power_after_ops(Some(io.mutating_ops() + cut));
            let _ = inserts(&run);
            drop(run);
            if keep_unsynced {
                io.crash_with(&mut SplitMix64::new(cut), CrashFaults::default());
            } else {
                io.crash();
            }
            let point = format!("cut at op {cut}, unsynced writes kept: {keep_unsynced}");
            match recover(&io) {
                Ok(recovered) if recovered.contents.as_ref() == Some(&expected) => {}
                Ok(recovered) => violations.push(format!(
                    "{point}: recovered {} records, expected the {} committed",
                    recovered.contents.map_or(0, |c| c.len()),
                    expected.len()
                )),
                Err(error) => violations.push(format!("{point}: recovery failed: {error:?}")),
            }
        }
    }
    (phase_ops, violations)
}

#[test]
fn a_split_reaches_the_log_whole_or_not_at_all() {
    // Goal: evictions in the middle of splits never leave recovery half a split.
    let (points, violations) = split_sweep(Mutations::NONE);
    println!(
        "split sweep: {points} crash points, {} violations",
        violations.len()
    );
    assert!(points > 20, "{points}");
    assert_eq!(violations, Vec::<String>::new());
}
