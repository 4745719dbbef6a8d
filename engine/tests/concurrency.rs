//! Sessions run in parallel: a session waiting for the disk stops no other session.
//!
//! A blocking `Io` wrapper holds one chosen I/O of one chosen thread (a page read of one
//! database, or a sync of the log) until the test lets it go. While it is held, another
//! session makes calls on another database whose pages are cached (reads, a record write
//! rolled back, calls that take the instance latch exclusively); every one of them must
//! finish. With a body that holds any lock across its I/O, shared or exclusive, some would
//! not: the test then fails through its deadlock watchdog (a bounded wait for a result, not
//! a sleep). Every build that checks lock ranks also fails such I/O at once, through its
//! `Unlatched` proof (`engine/src/runtime/sync.rs`).

mod common;

use common::{create_main_table, start_session, StdJet};
use jetsim_engine::env::{Io, IoFile, ManualClock, MemIo};
use jetsim_engine::*;
use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

const DB_A: &str = "db/a.edb";
const DB_B: &str = "db/b.edb";
const CALLS_WHILE_BLOCKED: u32 = 300;
/// [`calls_on_b`]'s cycle; [`CALLS_WHILE_BLOCKED`] is a whole number of them, so B ends
/// with no transaction open.
const CALLS_ON_B_CYCLE: u32 = 12;
const _: () = assert!(CALLS_WHILE_BLOCKED.is_multiple_of(CALLS_ON_B_CYCLE));
/// How long the watchdog waits for the other session's calls before it calls the engine
/// stuck. Generous: the calls take milliseconds; only a deadlock comes near it.
const WATCHDOG: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trapped {
    Read,
    /// Held after the read of the page at this offset: the caller has the bytes the disk had
    /// then.
    AfterReadAt(u64),
    Write,
    Sync,
}

/// Which I/O to hold, and the hand-shake with the test.
#[derive(Default)]
struct TrapState {
    armed: Option<(ThreadId, String, Trapped)>,
    holding: bool,
    released: bool,
}

#[derive(Default)]
struct Trap {
    state: Mutex<TrapState>,
    changed: Condvar,
}

impl Trap {
    fn arm(&self, thread: ThreadId, path: &str, kind: Trapped) {
        let mut state = self.state.lock().unwrap();
        *state = TrapState {
            armed: Some((thread, path.to_owned(), kind)),
            holding: false,
            released: false,
        };
    }

    /// Called by the wrapped file before each I/O: holds the armed one until released.
    fn pass(&self, path: &str, kind: Trapped) {
        let mut state = self.state.lock().unwrap();
        let me = std::thread::current().id();
        let hit = matches!(&state.armed, Some((t, p, k)) if *t == me && p == path && *k == kind);
        if !hit {
            return;
        }
        state.armed = None;
        state.holding = true;
        self.changed.notify_all();
        let state = self
            .changed
            .wait_while(state, |state| !state.released)
            .unwrap();
        drop(state);
    }

    fn wait_until_holding(&self) {
        let state = self.state.lock().unwrap();
        let (state, timeout) = self
            .changed
            .wait_timeout_while(state, WATCHDOG, |state| !state.holding)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "the armed I/O never happened: {:?}",
            state.armed
        );
    }

    fn release(&self) {
        let mut state = self.state.lock().unwrap();
        state.released = true;
        state.armed = None;
        self.changed.notify_all();
    }
}

struct BlockingIo {
    inner: MemIo,
    trap: Arc<Trap>,
}

struct BlockingFile {
    inner: Box<dyn IoFile>,
    path: String,
    trap: Arc<Trap>,
}

impl Io for BlockingIo {
    fn create(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        let inner = self.inner.create(path)?;
        Ok(self.wrap(path, inner))
    }
    fn open(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        let inner = self.inner.open(path)?;
        Ok(self.wrap(path, inner))
    }
    fn remove(&self, path: &str) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.inner.exists(path)
    }
}

impl BlockingIo {
    fn wrap(&self, path: &str, inner: Box<dyn IoFile>) -> Box<dyn IoFile> {
        Box::new(BlockingFile {
            inner,
            path: path.to_owned(),
            trap: Arc::clone(&self.trap),
        })
    }
}

impl IoFile for BlockingFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.trap.pass(&self.path, Trapped::Read);
        let read = self.inner.read_at(offset, buf);
        self.trap.pass(&self.path, Trapped::AfterReadAt(offset));
        read
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.trap.pass(&self.path, Trapped::Write);
        self.inner.write_at(offset, data)
    }
    fn sync(&self) -> io::Result<()> {
        self.trap.pass(&self.path, Trapped::Sync);
        self.inner.sync()
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("k{i:04}").into_bytes()
}

/// A new session with table "t" of the database at `path` open.
fn session_with_table(
    jet: &StdJet,
    instance: InstanceHandle,
    path: &str,
) -> (SessionHandle, TableHandle) {
    let sesid = jet.begin_session(instance).unwrap();
    let dbid = jet.open_database(sesid, path).unwrap();
    (sesid, jet.open_table(sesid, dbid, "t").unwrap())
}

/// Creates each database with a table "t" holding `records` records (keys `key(0..)`, each
/// with `value`), committed in one transaction; returns the open tables in order.
fn create_tables<const N: usize>(
    jet: &StdJet,
    sesid: SessionHandle,
    databases: [(&str, u32, &[u8]); N],
) -> [TableHandle; N] {
    databases.map(|(path, records, value)| {
        let dbid = jet.create_database(sesid, path).unwrap();
        let table = jet.create_table(sesid, dbid, "t").unwrap();
        jet.begin_transaction(sesid).unwrap();
        for i in 0..records {
            jet.insert(sesid, table, &key(i), value).unwrap();
        }
        jet.commit_transaction(sesid).unwrap();
        table
    })
}

/// Writes every dirty page back (the log first): a `QuiesceCaches` stop, then a resume.
fn write_every_page_back(jet: &StdJet, instance: InstanceHandle) {
    jet.stop_service_instance2(instance, stop_grbit::QUIESCE_CACHES)
        .unwrap();
    jet.stop_service_instance2(instance, stop_grbit::RESUME)
        .unwrap();
}

/// Two databases with a table each, written and cleanly terminated, then attached again by a
/// fresh instance so that nothing of them is cached.
fn two_databases(trap: &Arc<Trap>) -> (Arc<StdJet>, InstanceHandle) {
    let env = Environment::new(
        Arc::new(ManualClock::new(0)),
        Arc::new(BlockingIo {
            inner: MemIo::new(),
            trap: Arc::clone(trap),
        }),
    );
    let jet = Arc::new(StdJet::new(env));
    let (first, sesid) = start_session(&jet, "inst");
    let value = [b'v'; 64];
    for table in create_tables(
        &jet,
        sesid,
        [(DB_A, 200, &value[..]), (DB_B, 50, &value[..])],
    ) {
        jet.close_table(sesid, table).unwrap();
    }
    jet.end_session(sesid).unwrap();
    jet.term(first).unwrap();

    let (instance, sesid) = start_session(&jet, "inst");
    jet.attach_database(sesid, DB_A).unwrap();
    jet.attach_database(sesid, DB_B).unwrap();
    jet.end_session(sesid).unwrap();
    (jet, instance)
}

/// A session on database B whose pages are all cached.
fn cached_session_on_b(jet: &StdJet, instance: InstanceHandle) -> SessionOnB {
    let (sesid, table) = session_with_table(jet, instance, DB_B);
    for i in 0..50 {
        jet.seek(sesid, table, &key(i), SeekMode::Equal).unwrap();
        jet.retrieve(sesid, table).unwrap();
    }
    SessionOnB {
        instance,
        sesid,
        table,
    }
}

/// The calls on B, a cycle of [`CALLS_ON_B_CYCLE`]: reads under the shared latches, a record
/// write (it installs under the store latch held exclusively) rolled back (so it waits for
/// no log sync), calls that change only their own session under the shared instance latch
/// (context, open and close database), and calls that take the instance latch exclusively
/// (begin and end session). So a lock held across the other session's I/O stops some of
/// them whichever lock it is and however it is held. Returns how many succeeded.
fn calls_on_b(jet: &StdJet, on_b: SessionOnB) -> u32 {
    let SessionOnB {
        instance,
        sesid,
        table,
    } = on_b;
    let mut succeeded = 0;
    for i in 0..CALLS_WHILE_BLOCKED {
        let result = match i % CALLS_ON_B_CYCLE {
            0 | 8 => jet.seek(sesid, table, &key(i % 50), SeekMode::Equal),
            1 | 9 => jet.retrieve(sesid, table).map(|_| ()),
            2 => jet.begin_transaction(sesid),
            3 => jet.replace(sesid, table, b"scratch"),
            4 => jet.rollback(sesid),
            5 => jet.set_session_context(sesid, 0x5E55),
            6 => jet.reset_session_context(sesid),
            10 => jet
                .open_database(sesid, DB_B)
                .and_then(|dbid| jet.close_database(sesid, dbid)),
            11 => jet
                .begin_session(instance)
                .and_then(|other| jet.end_session(other)),
            _ => jet.move_cursor(sesid, table, MoveTo::First),
        };
        succeeded += u32::from(result.is_ok());
    }
    succeeded
}

/// A session with a table open on B, and its instance.
#[derive(Clone, Copy)]
struct SessionOnB {
    instance: InstanceHandle,
    sesid: SessionHandle,
    table: TableHandle,
}

/// [`hold_one_io_and_call_on_b`] on [`two_databases`], after `prepare`, with the deadlock
/// watchdog's wait: returns (calls on B that finished while the I/O was held, the blocked
/// call's result).
fn while_one_session_waits(
    kind: Trapped,
    path: &str,
    blocked: impl FnOnce(&StdJet, InstanceHandle) -> JetResult<()> + Send + 'static,
    prepare: impl FnOnce(&StdJet, InstanceHandle) -> Box<dyn FnOnce() + Send>,
) -> (u32, JetResult<()>) {
    let trap = Arc::new(Trap::default());
    let (jet, instance) = two_databases(&trap);
    let on_b = cached_session_on_b(&jet, instance);
    let _keep = prepare(&jet, instance);
    let (finished, blocked_result) = hold_one_io_and_call_on_b(
        &jet,
        &trap,
        (kind, path),
        move |jet| blocked(jet, instance),
        on_b,
        WATCHDOG,
    );
    let finished = finished.unwrap_or_else(|| {
        panic!("deadlock watchdog: another session's calls did not finish while one waited for I/O")
    });
    (finished, blocked_result)
}

/// Runs `blocked` on its own thread with `kind` I/O on `path` (`held`) trapped, waits until it
/// is held, then makes the calls on B (`on_b`: a session and its table) from another thread;
/// releases the I/O after they finish or `wait` runs out. Returns (the calls on B that finished
/// while the I/O was held, `None` if not all of them finished in `wait`; the blocked call's
/// result).
fn hold_one_io_and_call_on_b<T: Send + 'static>(
    jet: &Arc<StdJet>,
    trap: &Arc<Trap>,
    held: (Trapped, &str),
    blocked: impl FnOnce(&StdJet) -> T + Send + 'static,
    on_b: SessionOnB,
    wait: Duration,
) -> (Option<u32>, T) {
    let (kind, path) = held;
    let (armed_tx, armed_rx) = mpsc::channel();
    let blocked_thread = {
        let jet = Arc::clone(jet);
        let trap = Arc::clone(trap);
        let path = path.to_owned();
        std::thread::spawn(move || {
            trap.arm(std::thread::current().id(), &path, kind);
            armed_tx.send(()).unwrap();
            blocked(&jet)
        })
    };
    armed_rx.recv().unwrap();
    trap.wait_until_holding();
    let (done_tx, done_rx) = mpsc::channel();
    let caller = {
        let jet = Arc::clone(jet);
        std::thread::spawn(move || done_tx.send(calls_on_b(&jet, on_b)).unwrap())
    };
    let finished = done_rx.recv_timeout(wait).ok();
    trap.release();
    let blocked_result = blocked_thread.join().unwrap();
    caller.join().unwrap();
    (finished, blocked_result)
}

#[test]
fn a_session_waiting_for_a_page_read_stops_no_other_session() {
    let (finished, blocked) = while_one_session_waits(
        Trapped::Read,
        DB_A,
        |jet, instance| {
            let sesid = jet.begin_session(instance)?;
            let dbid = jet.open_database(sesid, DB_A)?;
            let table = jet.open_table(sesid, dbid, "t")?;
            jet.seek(sesid, table, &key(150), SeekMode::Equal)
        },
        |_, _| Box::new(|| ()),
    );
    assert_eq!(finished, CALLS_WHILE_BLOCKED);
    assert_eq!(blocked, Ok(()));
}

#[test]
fn a_session_waiting_for_its_commit_log_sync_stops_no_other_session() {
    let (finished, blocked) = while_one_session_waits(
        Trapped::Sync,
        "inst/jet.log",
        |jet, instance| {
            let sesid = jet.begin_session(instance)?;
            let dbid = jet.open_database(sesid, DB_A)?;
            let table = jet.open_table(sesid, dbid, "t")?;
            jet.begin_transaction(sesid)?;
            jet.insert(sesid, table, b"new", b"value")?;
            jet.commit_transaction(sesid)
        },
        |_, _| Box::new(|| ()),
    );
    assert_eq!(finished, CALLS_WHILE_BLOCKED);
    assert_eq!(blocked, Ok(()));
}

/// Holds the background flush at the sync of `path` (which it makes holding no latch),
/// after a session wrote a record to A with the checkpoint depth
/// target at 0 and left its transaction open or committed it; returns what
/// [`while_one_session_waits`] does.
fn while_the_background_flush_waits_for(path: &str, commit: bool) -> (u32, JetResult<()>) {
    while_one_session_waits(
        Trapped::Sync,
        path,
        |jet, instance| jet.run_background_tasks(instance).map(|_| ()),
        move |jet, instance| {
            jet.set_system_parameter(instance, SystemParameter::CheckpointDepthMaxBytes, 0)
                .unwrap();
            let sesid = jet.begin_session(instance).unwrap();
            let dbid = jet.open_database(sesid, DB_A).unwrap();
            let table = jet.open_table(sesid, dbid, "t").unwrap();
            jet.begin_transaction(sesid).unwrap();
            jet.insert(sesid, table, b"new", b"value").unwrap();
            if commit {
                jet.commit_transaction(sesid).unwrap();
            }
            Box::new(|| ())
        },
    )
}

/// The background flush writes a page back only once the page's log record is durable; when
/// it is not (an open transaction changed the page), the flusher flushes the log first, with
/// no latch held, like a commit. While that log sync is held, another session's calls on
/// another database all finish.
#[test]
fn the_background_flush_waiting_for_its_log_sync_stops_no_other_session() {
    let (finished, blocked) = while_the_background_flush_waits_for("inst/jet.log", false);
    assert_eq!(finished, CALLS_WHILE_BLOCKED);
    assert_eq!(blocked, Ok(()));
}

/// After its page batches, the background flush persists the checkpoint: it syncs the data
/// files written and writes and syncs the checkpoint file, with no latch held. While that
/// checkpoint sync is held, another session's calls on another database all finish.
#[test]
fn the_background_flush_waiting_for_its_checkpoint_sync_stops_no_other_session() {
    let (finished, blocked) = while_the_background_flush_waits_for("inst/jet.chk", true);
    assert_eq!(finished, CALLS_WHILE_BLOCKED);
    assert_eq!(blocked, Ok(()));
}

/// The stop writes the dirty pages back beside the calls its closed gate still admits: while
/// the first page write of its flush is held, another session rolls back its open
/// transaction (a write on another database), closes its table and ends: all three finish
/// (a stop that wrote its pages under the exclusive instance latch, as it did, kept them
/// waiting for the whole flush: the watchdog fails the test), and then the stop returns.
#[test]
fn the_stops_page_writes_stop_no_allowlisted_call() {
    let trap = Arc::new(Trap::default());
    let (jet, instance) = two_databases(&trap);
    // Committed changes on A: dirty pages whose log records are durable.
    let (writer, table) = session_with_table(&jet, instance, DB_A);
    jet.begin_transaction(writer).unwrap();
    for i in 0..20 {
        jet.seek(writer, table, &key(i), SeekMode::Equal).unwrap();
        jet.replace(writer, table, b"changed").unwrap();
    }
    jet.commit_transaction(writer).unwrap();
    // A transaction on B, open across the stop.
    let on_b = cached_session_on_b(&jet, instance);
    jet.begin_transaction(on_b.sesid).unwrap();
    jet.replace(on_b.sesid, on_b.table, b"uncommitted").unwrap();
    let (armed_tx, armed_rx) = mpsc::channel();
    let stopper = {
        let (jet, trap) = (Arc::clone(&jet), Arc::clone(&trap));
        std::thread::spawn(move || {
            trap.arm(std::thread::current().id(), DB_A, Trapped::Write);
            armed_tx.send(()).unwrap();
            jet.stop_service_instance(instance)
        })
    };
    armed_rx.recv().unwrap();
    trap.wait_until_holding();
    let (done_tx, done_rx) = mpsc::channel();
    let caller = {
        let jet = Arc::clone(&jet);
        std::thread::spawn(move || {
            let SessionOnB { sesid, table, .. } = on_b;
            let results = [
                jet.rollback(sesid),
                jet.close_table(sesid, table),
                jet.end_session(sesid),
            ];
            done_tx.send(results).unwrap();
        })
    };
    let finished = done_rx.recv_timeout(WATCHDOG);
    trap.release();
    let stopped = stopper.join().unwrap();
    caller.join().unwrap();
    let finished = finished.unwrap_or_else(|_| {
        panic!("deadlock watchdog: an allowlisted call waited for the stop's page write")
    });
    assert_eq!(finished, [Ok(()), Ok(()), Ok(())]);
    assert_eq!(stopped, Ok(()));
}

/// An instance on a blocking `Io` with `mutations` planted and a cache of 8 pages, and a
/// session on it.
fn eight_page_cache_instance(
    trap: &Arc<Trap>,
    mutations: Mutations,
) -> (Arc<StdJet>, InstanceHandle, SessionHandle) {
    let env = Environment::new(
        Arc::new(ManualClock::new(0)),
        Arc::new(BlockingIo {
            inner: MemIo::new(),
            trap: Arc::clone(trap),
        }),
    );
    let jet = Arc::new(StdJet::new(env));
    let options = InstanceOptions {
        mutations,
        ..InstanceOptions::manual()
    };
    let instance = jet.create_instance_with("inst", options).unwrap();
    jet.set_system_parameter(instance, SystemParameter::CacheSizePages, 8)
        .unwrap();
    jet.init(instance).unwrap();
    let session = jet.begin_session(instance).unwrap();
    (jet, instance, session)
}

/// A session rolls back a transaction whose changed leaf was written back and evicted, with
/// its page read held; meanwhile another session makes [`CALLS_WHILE_BLOCKED`] calls on
/// another database. Returns how many of them finished within `wait` while the read was
/// held (`None`: not all of them did), after checking that the rollback then succeeded and
/// put the value from before back.
fn calls_finished_while_a_rollback_reads(mutations: Mutations, wait: Duration) -> Option<u32> {
    let trap = Arc::new(Trap::default());
    let (jet, instance, writer) = eight_page_cache_instance(&trap, mutations);
    // A's 200 records fill more leaves than the 8-page cache holds.
    let value = [b'v'; 64];
    let [table_a, table_b] = create_tables(
        &jet,
        writer,
        [(DB_A, 200, &value[..]), (DB_B, 50, &value[..])],
    );
    let (roller, roller_table) = session_with_table(&jet, instance, DB_A);
    jet.begin_transaction(roller).unwrap();
    jet.seek(roller, roller_table, &key(199), SeekMode::Equal)
        .unwrap();
    jet.replace(roller, roller_table, b"uncommitted").unwrap();
    // Write every page back (the log first), then read A's first records and all of B:
    // the changed leaf, now clean, leaves the cache.
    write_every_page_back(&jet, instance);
    for i in 0..100 {
        jet.seek(writer, table_a, &key(i), SeekMode::Equal).unwrap();
    }
    for i in 0..50 {
        jet.seek(writer, table_b, &key(i), SeekMode::Equal).unwrap();
    }

    let (finished, rolled_back) = hold_one_io_and_call_on_b(
        &jet,
        &trap,
        (Trapped::Read, DB_A),
        move |jet| jet.rollback(roller),
        SessionOnB {
            instance,
            sesid: writer,
            table: table_b,
        },
        wait,
    );
    assert_eq!(rolled_back, Ok(()));
    jet.seek(writer, table_a, &key(199), SeekMode::Equal)
        .unwrap();
    assert_eq!(jet.retrieve(writer, table_a).unwrap().1, vec![b'v'; 64]);
    finished
}

/// A rollback whose pages were evicted reads them with no latch held: it finds them under the
/// shared latch first, reads each miss unlatched, and undoes under the exclusive latch only
/// once they are cached. While its page read is held, another session's calls on another
/// database all finish; then the rollback ends and the record has its value from before.
#[test]
fn a_session_rolling_back_while_its_pages_are_read_stops_no_other_session() {
    let finished = calls_finished_while_a_rollback_reads(Mutations::NONE, WATCHDOG);
    let finished = finished.unwrap_or_else(|| {
        panic!("deadlock watchdog: another session's calls did not finish while a rollback read")
    });
    assert_eq!(finished, CALLS_WHILE_BLOCKED);
}

/// How long the planted test gives the other session's calls. Under the planted bug they
/// cannot finish before the read is released, so the wait always runs out; were the bug not
/// planted, the 300 calls on cached pages would finish in about a millisecond and the test
/// fail. Short, so the test stays fast.
const PLANTED_WAIT: Duration = Duration::from_millis(500);

#[test]
fn planted_rollback_reads_under_latch_is_caught() {
    // Teeth: reading under the exclusive latch, the rollback holds every other session.
    let planted = Mutations::NONE.with(Mutant::RollbackReadsUnderLatch);
    assert_eq!(
        calls_finished_while_a_rollback_reads(planted, PLANTED_WAIT),
        None
    );
}

/// A session's page read made outside the latch holds the page as it was; meanwhile another
/// session changes the page, commits, and the page is written back (a `QuiesceCaches` stop
/// and a resume) and evicted. Then the slow read finishes. Returns the value another session
/// reads afterwards: the committed one, unless the stale read replaced the newer page.
fn value_after_a_slow_read_overtaken_by_a_write_back(mutations: Mutations) -> Vec<u8> {
    let trap = Arc::new(Trap::default());
    let (jet, instance, writer) = eight_page_cache_instance(&trap, mutations);
    // B's 400 records of 64 bytes fill many more pages than the cache holds.
    let [table_a, table_b] = create_tables(
        &jet,
        writer,
        [(DB_A, 1, &b"old"[..]), (DB_B, 400, &[b'v'; 64][..])],
    );
    let (reader, reader_table) = session_with_table(&jet, instance, DB_A);
    // Write every page back, then read all of B: A's clean leaf leaves the 8-page cache.
    let write_back_and_evict_a = || {
        write_every_page_back(&jet, instance);
        for i in 0..400 {
            jet.seek(writer, table_b, &key(i), SeekMode::Equal).unwrap();
        }
    };
    write_back_and_evict_a();

    let (armed_tx, armed_rx) = mpsc::channel();
    let slow_reader = {
        let jet = Arc::clone(&jet);
        let trap = Arc::clone(&trap);
        std::thread::spawn(move || {
            // A's one leaf is page 2, after the header and the catalog (the seek reads the
            // header first; holding that read would test nothing).
            let leaf_offset_bytes = 2 * jetsim_engine::storage::PAGE_SIZE_BYTES as u64;
            trap.arm(
                std::thread::current().id(),
                DB_A,
                Trapped::AfterReadAt(leaf_offset_bytes),
            );
            armed_tx.send(()).unwrap();
            jet.seek(reader, reader_table, &key(0), SeekMode::Equal)
        })
    };
    armed_rx.recv().unwrap();
    trap.wait_until_holding();
    // The reader holds A's leaf with "old"; the writer commits "new" and it reaches the disk.
    jet.seek(writer, table_a, &key(0), SeekMode::Equal).unwrap();
    jet.begin_transaction(writer).unwrap();
    jet.replace(writer, table_a, b"new").unwrap();
    jet.commit_transaction(writer).unwrap();
    write_back_and_evict_a();
    trap.release();
    assert_eq!(slow_reader.join().unwrap(), Ok(()));

    jet.seek(writer, table_a, &key(0), SeekMode::Equal).unwrap();
    jet.retrieve(writer, table_a).unwrap().1
}

/// A session short of clean frames writes its batch for room back holding no latch, and the
/// batch's first write is held. Meanwhile another session changes every record it can reach
/// (some of them on pages of the batch, which become dirty again while their older copy is
/// on its way to the disk), then a `QuiesceCaches` partial stop (no drain: the writer's call
/// stays in flight) writes every dirty page back under the exclusive latch. Returns what the
/// partial stop did within `wait` while the batch was held (`None`: it had not returned,
/// waiting for the batch as it must), and what it did in the end; `Err` holds its panic
/// message if it panicked.
type Quiesced = Result<JetResult<()>, String>;

fn quiesce_beside_a_batch_for_room(
    mutations: Mutations,
    wait: Duration,
) -> (Option<Quiesced>, Quiesced) {
    let trap = Arc::new(Trap::default());
    let (jet, instance, setup) = eight_page_cache_instance(&trap, mutations);
    let value = [b'v'; 300];
    // Twenty-odd leaves of six records: more than the eight frames hold.
    let [table] = create_tables(&jet, setup, [(DB_A, 120, &value[..])]);
    let (armed_tx, armed_rx) = mpsc::channel();
    let writer = {
        let jet = Arc::clone(&jet);
        let trap = Arc::clone(&trap);
        std::thread::spawn(move || {
            let sesid = jet.begin_session(instance).unwrap();
            let dbid = jet.open_database(sesid, DB_A).unwrap();
            let table = jet.open_table(sesid, dbid, "t").unwrap();
            trap.arm(std::thread::current().id(), DB_A, Trapped::Write);
            armed_tx.send(()).unwrap();
            // Inserts dirty leaves until one needs a frame only a write-back can free: the
            // call's batch for room, whose first write the trap holds.
            jet.begin_transaction(sesid).unwrap();
            for i in 1000..1200 {
                jet.insert(sesid, table, &key(i), &value).unwrap();
            }
            jet.commit_transaction(sesid).unwrap();
        })
    };
    armed_rx.recv().unwrap();
    trap.wait_until_holding();
    // The batch took the least recently used dirty pages: the setup's. Change the records
    // of every leaf still cached, in flight or not (a miss only costs a read).
    jet.begin_transaction(setup).unwrap();
    for i in 0..120 {
        jet.seek(setup, table, &key(i), SeekMode::Equal).unwrap();
        jet.replace(setup, table, b"changed while the batch is out")
            .unwrap();
    }
    jet.commit_transaction(setup).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let quiescer = {
        let jet = Arc::clone(&jet);
        std::thread::spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                jet.stop_service_instance2(instance, stop_grbit::QUIESCE_CACHES)
            }))
            .map_err(|panic| jetsim_engine::runtime::panic_message(&*panic));
            done_tx.send(outcome).unwrap();
        })
    };
    let within_wait = done_rx.recv_timeout(wait).ok();
    trap.release();
    let outcome = match &within_wait {
        Some(outcome) => outcome.clone(),
        None => done_rx.recv().unwrap(),
    };
    writer.join().unwrap();
    quiescer.join().unwrap();
    (within_wait, outcome)
}

/// The partial stop waits for the batch: its flush would otherwise write a page whose older
/// copy the batch still has on its way to the disk, and the older one could land last.
#[test]
fn a_flush_waits_for_a_calls_batch_for_room() {
    let (within_wait, outcome) = quiesce_beside_a_batch_for_room(Mutations::NONE, PLANTED_WAIT);
    assert_eq!(
        within_wait, None,
        "the partial stop returned while a batch for room was out"
    );
    assert_eq!(
        outcome,
        Ok(Ok(())),
        "the partial stop, once the batch ended"
    );
}

#[test]
fn planted_room_write_back_not_awaited_is_caught() {
    // Teeth: the uncounted batch is not waited for, and the flush writes one of its pages
    // back, which the buffer manager's assertion refuses.
    let (within_wait, _) = quiesce_beside_a_batch_for_room(
        Mutations::NONE.with(Mutant::RoomWriteBackNotAwaited),
        WATCHDOG,
    );
    let panic = match within_wait {
        Some(Err(panic)) => panic,
        other => panic!("the planted bug went unseen: {other:?}"),
    };
    assert!(
        panic.contains("written back while a background write-back of it is in flight"),
        "{panic}"
    );
}

#[test]
fn a_slow_page_read_overtaken_by_a_write_back_never_replaces_the_newer_page() {
    assert_eq!(
        value_after_a_slow_read_overtaken_by_a_write_back(Mutations::NONE),
        b"new"
    );
}

#[test]
fn planted_overtaken_read_installed_is_caught() {
    // Teeth: with the stale read installed, the committed value is lost from the cache.
    assert_eq!(
        value_after_a_slow_read_overtaken_by_a_write_back(
            Mutations::NONE.with(Mutant::OvertakenReadInstalled)
        ),
        b"old"
    );
}

/// A level-1 commit is held at its log sync (its record appended, its versions not yet
/// published, no latch held) while another thread's `StopAndEmitLog` makes the record durable
/// and ends the log. From the stop's return every logging call fails with
/// `LogServiceStopped`, so the commit can only be explained as having taken effect before
/// that: another session must see the write as committed at once, before the committer
/// wakes, and the commit then returns success. Published only when the committer woke, the
/// write stayed invisible after the stop, and another session's write on the record met a
/// `WriteConflict` (`jetsim replay 2686 --threads 8 --calls 50`).
#[test]
fn stop_and_emit_log_publishes_a_commit_held_at_its_log_sync() {
    let trap = Arc::new(Trap::default());
    let (jet, instance) = two_databases(&trap);
    let (other, other_table) = session_with_table(&jet, instance, DB_A);
    let (armed_tx, armed_rx) = mpsc::channel();
    let committer = {
        let jet = Arc::clone(&jet);
        let trap = Arc::clone(&trap);
        std::thread::spawn(move || {
            let sesid = jet.begin_session(instance)?;
            let dbid = jet.open_database(sesid, DB_A)?;
            let table = jet.open_table(sesid, dbid, "t")?;
            jet.begin_transaction(sesid)?;
            jet.insert(sesid, table, b"new", b"value")?;
            trap.arm(std::thread::current().id(), "inst/jet.log", Trapped::Sync);
            armed_tx.send(()).unwrap();
            jet.commit_transaction(sesid)
        })
    };
    armed_rx
        .recv()
        .expect("the committer reached its commit (its earlier calls failed otherwise)");
    trap.wait_until_holding();

    let stopped = jet.stop_service_instance2(instance, stop_grbit::STOP_AND_EMIT_LOG);
    // Read before the committer is let go: what the other session sees must not depend on
    // when the committer wakes.
    let seen = jet
        .seek(other, other_table, b"new", SeekMode::Equal)
        .and_then(|()| jet.retrieve(other, other_table));
    let written = jet
        .begin_transaction(other)
        .and_then(|()| jet.replace(other, other_table, b"other"));
    trap.release();
    let committed = committer.join().unwrap();

    assert_eq!(stopped, Ok(()));
    assert_eq!(
        seen,
        Ok((b"new".to_vec(), b"value".to_vec())),
        "the commit whose record the stop made durable is visible once the stop returned"
    );
    assert_eq!(
        written,
        Err(JetError::LogServiceStopped),
        "a write on the committed record is refused for the ended log, not as a conflict"
    );
    assert_eq!(committed, Ok(()));
    // Still the same after the committer woke: it found its commit published, and published
    // nothing twice.
    assert_eq!(
        jet.seek(other, other_table, b"new", SeekMode::Equal)
            .and_then(|()| jet.retrieve(other, other_table)),
        Ok((b"new".to_vec(), b"value".to_vec()))
    );
    // The other session's transaction cannot be rolled back once the log ended (rollback
    // logs), so only a dirty term ends the instance; it checks that no logged commit was
    // left unpublished.
    assert_eq!(jet.rollback(other), Err(JetError::LogServiceStopped));
    assert_eq!(
        jet.term2(instance, term_grbit::DIRTY),
        Ok(TermOutcome::DirtyShutdown)
    );
}

/// A committer about to flush the log while another session holds a transaction open
/// gathers a group: it waits, with no latch, for another Commit record to join its sync
/// (`Runtime::GROUP_COMMIT_SPINS`). Here the other transaction never commits while it
/// waits, so the wait must end on its own bound, and the commit be durable and visible;
/// the other session, idle inside its transaction, keeps its write and commits after.
#[test]
fn a_commit_beside_an_idle_open_transaction_gathers_for_a_bounded_wait() {
    let trap = Arc::new(Trap::default());
    let (jet, instance) = two_databases(&trap);
    let (idle, idle_table) = session_with_table(&jet, instance, DB_B);
    jet.begin_transaction(idle).unwrap();
    jet.insert(idle, idle_table, b"idle", b"uncommitted")
        .unwrap();

    let (done_tx, done_rx) = mpsc::channel();
    let committer = {
        let jet = Arc::clone(&jet);
        std::thread::spawn(move || {
            let result = (|| {
                let sesid = jet.begin_session(instance)?;
                let dbid = jet.open_database(sesid, DB_A)?;
                let table = jet.open_table(sesid, dbid, "t")?;
                for i in 0..3u8 {
                    jet.begin_transaction(sesid)?;
                    jet.insert(sesid, table, &[b'g', i], b"committed")?;
                    jet.commit_transaction(sesid)?;
                }
                Ok(())
            })();
            done_tx.send(result).unwrap();
        })
    };
    let committed: JetResult<()> = done_rx
        .recv_timeout(WATCHDOG)
        .unwrap_or_else(|_| panic!("deadlock watchdog: a gathering commit never flushed"));
    committer.join().unwrap();
    assert_eq!(committed, Ok(()));

    let (reader, reader_table) = session_with_table(&jet, instance, DB_A);
    for i in 0..3u8 {
        jet.seek(reader, reader_table, &[b'g', i], SeekMode::Equal)
            .unwrap();
        assert_eq!(
            jet.retrieve(reader, reader_table).unwrap().1,
            b"committed".to_vec()
        );
    }
    jet.commit_transaction(idle).unwrap();
    jet.seek(idle, idle_table, b"idle", SeekMode::Equal)
        .unwrap();
    assert_eq!(
        jet.retrieve(idle, idle_table).unwrap().1,
        b"uncommitted".to_vec()
    );
}

/// Calls each of the two threads of `two_threads_on_one_session_take_turns` makes
/// (`JETSIM_SHARED_SESSION_CALLS` raises it).
fn shared_session_calls() -> u32 {
    std::env::var("JETSIM_SHARED_SESSION_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

#[test]
fn two_threads_on_one_session_take_turns() {
    // Goal: two threads calling on one session (no context set, so both may) take turns
    // through the session's claim, a read-only call and a writing one alike: the call that
    // finds the claim held marks it waited for and sleeps until it is given up. A lost
    // wake-up leaves a thread asleep for ever, which the deadlock watchdog turns into a
    // failure.
    let jet = Arc::new(StdJet::new(Environment::in_memory()));
    let (_instance, sesid) = start_session(&jet, "inst");
    let (_, table) = create_main_table(&jet, sesid);
    jet.begin_transaction(sesid).unwrap();
    for i in 0..50 {
        jet.insert(sesid, table, &key(i), b"value").unwrap();
    }
    jet.commit_transaction(sesid).unwrap();
    let calls = shared_session_calls();
    let (done_tx, done_rx) = mpsc::channel();
    let threads: Vec<_> = (0..2)
        .map(|thread| {
            let (jet, done_tx) = (Arc::clone(&jet), done_tx.clone());
            std::thread::spawn(move || {
                let mut failed = Vec::new();
                for i in 0..calls {
                    let result = match (thread + i) % 3 {
                        0 => jet.seek(sesid, table, &key(i % 50), SeekMode::Equal),
                        1 => jet.retrieve(sesid, table).map(|_| ()),
                        _ => jet.get_session_info(sesid).map(|_| ()),
                    };
                    failed.extend(result.err());
                }
                done_tx.send(failed).unwrap();
            })
        })
        .collect();
    for _ in &threads {
        let failed = done_rx.recv_timeout(WATCHDOG).unwrap_or_else(|_| {
            panic!("deadlock watchdog: a call waiting for its session's claim never woke")
        });
        assert_eq!(failed, Vec::<JetError>::new());
    }
    for thread in threads {
        thread.join().unwrap();
    }
}
