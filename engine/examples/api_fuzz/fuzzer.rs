//! A seeded fuzzer of the public Jet API: what a sceptical user throws at the engine.
//!
//! It drives every public call of [`Jet`] with valid, stale, foreign and raw handles, random
//! grbits, keys and values from empty to past every limit, several instances that share and
//! do not share file names, calls after term, double closes, and stops, partial stops, terms
//! and crashes (MemIo: power cut and lost unsynced writes; files: an abandoned process) at
//! random points. Rules it holds the engine to, deciding from what it observed itself:
//!
//! - **no-panic**: no call panics (each runs under `catch_unwind`);
//! - **failed-call-changes-nothing** (single thread): a call that returns an error leaves
//!   every instance's observation ([`Jet::observe`]: phase, parameters, sessions, cursors,
//!   committed contents, stop flags) and its logical status (phase, sessions, open
//!   transactions, open tables, attached databases) as they were before it;
//! - **counters-agree-with-sessions**: `instance_status` counts as many open transactions,
//!   sessions and cursors as the observation shows;
//! - **no-gated-success-after-stop**: once a full stop has returned, no gated call on that
//!   instance that was invoked afterwards succeeds (the fuzzer's own allowlist, from the
//!   documentation, not the engine's table);
//! - **no-corruption**: no call answers `DatabaseCorrupted`: the disks never corrupt synced
//!   data (MemIo's crashes lose or tear only unsynced writes), so corruption is the engine's;
//! - **no-deadlock** (threads): the calls keep completing;
//! - **held-file-refused** (files): now and then another process (a second [`Jet`] on the
//!   same folder) starts one of the instance names and attaches one of the database paths,
//!   then terminates. A log or database file this process holds must be refused to it with
//!   `FileAccessDenied` (the store's OS lock), and its visit must change nothing this
//!   process observes (**neighbour-changes-nothing**).
//!
//! Single-threaded runs are deterministic on MemIo: one seed, one trace (its hash is in the
//! report), so `--seed S --trace A-B` shows calls A..=B of a failing run. Multi-threaded runs
//! take their calls from the seed but their interleaving from the OS.

use jetsim_engine::env::{ManualClock, MemIo};
use jetsim_engine::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Where the instances keep their files.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The simulated disk; restarts are power cuts that lose unsynced writes.
    Memory,
    /// Real files under this directory; restarts abandon the process's state.
    Files(PathBuf),
}

/// One fuzz run.
#[derive(Debug, Clone)]
pub struct FuzzOptions {
    pub calls: u64,
    pub seed: u64,
    pub backend: Backend,
    /// 1: deterministic, with the failed-call check. More: OS threads sharing handles.
    pub threads: usize,
    /// Print calls whose index falls in this range, with their results.
    pub trace: Option<RangeInclusive<u64>>,
    /// Seconds without a completed call before the watchdog reports a deadlock.
    pub watchdog_secs: u64,
}

impl FuzzOptions {
    pub fn new(calls: u64, seed: u64) -> Self {
        FuzzOptions {
            calls,
            seed,
            backend: Backend::Memory,
            threads: 1,
            trace: None,
            watchdog_secs: 60,
        }
    }
}

/// A broken rule, with what reproduces it.
#[derive(Debug, Clone)]
pub struct Violation {
    pub rule: &'static str,
    pub thread: usize,
    pub call_index: u64,
    pub call: String,
    pub detail: String,
}

/// What a run did and found.
#[derive(Debug, Default)]
pub struct FuzzReport {
    pub calls: u64,
    pub succeeded: u64,
    /// Error name → count.
    pub failed_by_error: BTreeMap<&'static str, u64>,
    /// Failed calls whose before/after state was compared.
    pub failed_calls_compared: u64,
    /// Failed calls that could not be compared (multi-threaded runs), counted, not skipped
    /// in silence.
    pub failed_calls_not_compared: u64,
    pub gated_calls_after_stop: u64,
    /// Visits of another process on the same folder (files), and how many of its inits and
    /// attaches were refused because this process held the file.
    pub neighbour_visits: u64,
    pub neighbour_refusals: u64,
    pub restarts: u64,
    pub stops: u64,
    pub terms: u64,
    pub violations: Vec<Violation>,
    pub deadlocked: bool,
    /// FNV-1a over every call and result, in order (single-threaded runs only).
    pub trace_hash: u64,
}

impl FuzzReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && !self.deadlocked
    }

    /// The violations counted by rule.
    pub fn violations_by_rule(&self) -> BTreeMap<&'static str, u64> {
        let mut by_rule = BTreeMap::new();
        for v in &self.violations {
            *by_rule.entry(v.rule).or_insert(0) += 1;
        }
        by_rule
    }

    /// A readable summary; with the replay command for every violation shown.
    pub fn summary(&self, options: &FuzzOptions) -> String {
        let mut out = String::new();
        let backend = match options.backend {
            Backend::Memory => "MemIo",
            Backend::Files(_) => "FileIo",
        };
        let _ = writeln!(
            out,
            "api_fuzz seed {} on {backend}, {} thread{}: {} calls, {} succeeded, {} failed \
             ({} compared before/after, {} not comparable), {} stops, {} terms, {} restarts",
            options.seed,
            options.threads,
            if options.threads == 1 { "" } else { "s" },
            self.calls,
            self.succeeded,
            self.failed_by_error.values().sum::<u64>(),
            self.failed_calls_compared,
            self.failed_calls_not_compared,
            self.stops,
            self.terms,
            self.restarts,
        );
        let _ = writeln!(
            out,
            "gated calls made after a stop returned: {}",
            self.gated_calls_after_stop
        );
        if let Backend::Files(_) = options.backend {
            let _ = writeln!(
                out,
                "another process's visits: {}, its inits and attaches refused with \
                 FileAccessDenied: {}",
                self.neighbour_visits, self.neighbour_refusals
            );
        }
        if options.threads == 1 {
            let _ = writeln!(out, "trace hash: {:016x}", self.trace_hash);
        }
        let _ = writeln!(out, "failures by error:");
        let mut by_count: Vec<_> = self.failed_by_error.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (name, count) in by_count {
            let code = JetError::ALL
                .iter()
                .find(|e| e.name() == *name)
                .map_or(0, |e| e.code());
            let _ = writeln!(out, "  {count:>9}  {name} ({code})");
        }
        if self.deadlocked {
            let _ = writeln!(
                out,
                "DEADLOCK: no call completed for {} s",
                options.watchdog_secs
            );
        }
        let _ = writeln!(
            out,
            "violations: {} {:?}",
            self.violations.len(),
            self.violations_by_rule()
        );
        for v in self.violations.iter().take(20) {
            let _ = writeln!(
                out,
                "  [{}] thread {} call #{}: {}\n    {}",
                v.rule, v.thread, v.call_index, v.call, v.detail
            );
            let _ = writeln!(
                out,
                "    reproduce: {}",
                replay_command(options, v.call_index)
            );
        }
        out
    }
}

/// The command that replays a run up to and including call `index`, tracing that call.
pub fn replay_command(options: &FuzzOptions, index: u64) -> String {
    let mut command = format!(
        "cargo run --release -p jetsim-engine --example api_fuzz -- --seed {} --calls {} \
         --trace {}-{}",
        options.seed,
        index + 1,
        index.saturating_sub(20),
        index
    );
    if let Backend::Files(_) = options.backend {
        command.push_str(" --file");
    }
    if options.threads > 1 {
        let _ = write!(
            command,
            " --threads {} (threads interleave by the OS: the seed fixes the calls, not their order)",
            options.threads
        );
    }
    command
}

/// Runs the fuzzer.
pub fn run(options: &FuzzOptions) -> FuzzReport {
    if options.threads <= 1 {
        run_single(options)
    } else {
        run_threads(options)
    }
}

// ---------------------------------------------------------------------------------------
// Randomness and arguments

/// Names shared between instances on purpose, so their files collide.
const INSTANCE_NAMES: &[&str] = &["alpha", "beta", "gamma"];
const DATABASE_PATHS: &[&str] = &["one.edb", "two.edb", "shared/db.edb"];
const TABLE_NAMES: &[&str] = &["t", "u", "orders"];

struct Rng(SplitMix64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0.below(bound)
    }
    fn index(&mut self, len: usize) -> usize {
        self.0.below(len as u64) as usize
    }
    fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.0.below(denominator) < numerator
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.index(items.len())]
    }

    /// A name: mostly from the pool, sometimes empty, at or past the 64-byte name limit, or
    /// not valid at all.
    fn name(&mut self, pool: &[&str]) -> String {
        match self.below(40) {
            0 => String::new(),
            1 => "n".repeat(64),
            2 => "n".repeat(65),
            3 => "../escape".to_owned(),
            4 => "nul\0byte".to_owned(),
            5 => "x".repeat(300),
            _ => self.pick(pool).to_owned(),
        }
    }

    /// Bytes from empty to past every limit; small sizes from a 16-value alphabet so keys
    /// collide.
    fn bytes(&mut self, limit: usize) -> Vec<u8> {
        let len = match self.below(100) {
            0..=2 => 0,
            3 => limit,
            4 => limit + 1,
            5 if self.chance(1, 20) => 1 << 20,
            6..=9 => self.index(limit + 1),
            _ => 1 + self.index(3),
        };
        if len > 16 {
            let fill = b'a' + self.below(16) as u8;
            return vec![fill; len];
        }
        (0..len).map(|_| b'a' + self.below(16) as u8).collect()
    }

    fn grbit(&mut self, meaningful: &[u32]) -> u32 {
        if self.chance(1, 8) {
            self.0.next_u64() as u32
        } else {
            meaningful[self.index(meaningful.len())]
        }
    }
}

// ---------------------------------------------------------------------------------------
// Handles the fuzzer has seen

#[derive(Debug, Clone, Copy)]
struct Known<H> {
    handle: H,
    instance: InstanceHandle,
    /// The session a database or table handle belongs to.
    session: SessionHandle,
    live: bool,
}

#[derive(Debug, Default)]
struct Pools {
    instances: Vec<(InstanceHandle, String, bool)>,
    sessions: Vec<Known<SessionHandle>>,
    databases: Vec<Known<DatabaseHandle>>,
    tables: Vec<Known<TableHandle>>,
    /// Instance → ticket at which a full stop on it had returned.
    stopped_at: BTreeMap<u64, u64>,
    /// Instances whose init succeeded and that have not been terminated since.
    running: std::collections::BTreeSet<u64>,
}

const POOL_MAX: usize = 48;

fn push_bounded<T>(pool: &mut Vec<T>, item: T, is_live: impl Fn(&T) -> bool) {
    if pool.len() >= POOL_MAX {
        if let Some(dead) = pool.iter().position(|x| !is_live(x)) {
            pool.remove(dead);
        } else {
            pool.remove(0);
        }
    }
    pool.push(item);
}

/// A handle argument: mostly a live one, sometimes stale (closed, or from before a
/// restart), foreign (another kind's value) or raw.
fn choose<H: Copy>(
    rng: &mut Rng,
    pool: &[Known<H>],
    raw: impl Fn(u64) -> H,
    other_kind: Option<u64>,
) -> (H, Option<InstanceHandle>, Option<SessionHandle>) {
    let live: Vec<&Known<H>> = pool.iter().filter(|k| k.live).collect();
    let roll = rng.below(100);
    if roll < 80 && !live.is_empty() {
        let k = live[rng.index(live.len())];
        return (k.handle, Some(k.instance), Some(k.session));
    }
    if roll < 90 && !pool.is_empty() {
        let k = &pool[rng.index(pool.len())];
        return (k.handle, Some(k.instance), Some(k.session));
    }
    if roll < 95 {
        if let Some(value) = other_kind {
            return (raw(value), None, None);
        }
    }
    let value = match rng.below(4) {
        0 => 0,
        1 => u64::MAX,
        2 => rng.below(1 << 20),
        _ => rng.0.next_u64(),
    };
    (raw(value), None, None)
}

// ---------------------------------------------------------------------------------------
// Calls

/// One call with its arguments; `Display` is the trace line.
#[derive(Debug, Clone)]
enum Call {
    CreateInstance(String),
    Init(InstanceHandle),
    Term(InstanceHandle),
    Term2(InstanceHandle, u32),
    Stop(InstanceHandle),
    Stop2(InstanceHandle, u32),
    GetParameter(InstanceHandle, SystemParameter),
    SetParameter(InstanceHandle, SystemParameter, u64),
    RunBackgroundTasks(InstanceHandle),
    Inspect(InstanceHandle),
    BeginSession(InstanceHandle),
    EndSession(SessionHandle),
    SetContext(SessionHandle, u64),
    ResetContext(SessionHandle),
    GetSessionInfo(SessionHandle),
    BeginTransaction(SessionHandle),
    Commit(SessionHandle),
    Rollback(SessionHandle),
    CreateDatabase(SessionHandle, String),
    AttachDatabase(SessionHandle, String),
    DetachDatabase(SessionHandle, String),
    OpenDatabase(SessionHandle, String),
    CloseDatabase(SessionHandle, DatabaseHandle),
    Defragment(SessionHandle, DatabaseHandle, u32),
    CreateTable(SessionHandle, DatabaseHandle, String),
    OpenTable(SessionHandle, DatabaseHandle, String),
    CloseTable(SessionHandle, TableHandle),
    DeleteTable(SessionHandle, DatabaseHandle, String),
    Seek(SessionHandle, TableHandle, Vec<u8>, SeekMode),
    Move(SessionHandle, TableHandle, MoveTo),
    Retrieve(SessionHandle, TableHandle),
    Insert(SessionHandle, TableHandle, Vec<u8>, Vec<u8>),
    Replace(SessionHandle, TableHandle, Vec<u8>),
    Delete(SessionHandle, TableHandle),
    IndexRecordCount(SessionHandle, TableHandle, u64),
    /// Not a Jet call: the process dies (power cut, unsynced writes lost) and restarts.
    Restart,
}

fn short(bytes: &[u8]) -> String {
    if bytes.len() <= 8 {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        format!("<{} bytes>", bytes.len())
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use Call::*;
        match self {
            CreateInstance(n) => write!(f, "create_instance({n:?})"),
            Init(i) => write!(f, "init({i:?})"),
            Term(i) => write!(f, "term({i:?})"),
            Term2(i, g) => write!(f, "term2({i:?}, {g:#x})"),
            Stop(i) => write!(f, "stop_service_instance({i:?})"),
            Stop2(i, g) => write!(f, "stop_service_instance2({i:?}, {g:#x})"),
            GetParameter(i, p) => write!(f, "get_system_parameter({i:?}, {p:?})"),
            SetParameter(i, p, v) => write!(f, "set_system_parameter({i:?}, {p:?}, {v})"),
            RunBackgroundTasks(i) => write!(f, "run_background_tasks({i:?})"),
            Inspect(i) => write!(f, "inspect({i:?})"),
            BeginSession(i) => write!(f, "begin_session({i:?})"),
            EndSession(s) => write!(f, "end_session({s:?})"),
            SetContext(s, c) => write!(f, "set_session_context({s:?}, {c:#x})"),
            ResetContext(s) => write!(f, "reset_session_context({s:?})"),
            GetSessionInfo(s) => write!(f, "get_session_info({s:?})"),
            BeginTransaction(s) => write!(f, "begin_transaction({s:?})"),
            Commit(s) => write!(f, "commit_transaction({s:?})"),
            Rollback(s) => write!(f, "rollback({s:?})"),
            CreateDatabase(s, p) => write!(f, "create_database({s:?}, {p:?})"),
            AttachDatabase(s, p) => write!(f, "attach_database({s:?}, {p:?})"),
            DetachDatabase(s, p) => write!(f, "detach_database({s:?}, {p:?})"),
            OpenDatabase(s, p) => write!(f, "open_database({s:?}, {p:?})"),
            CloseDatabase(s, d) => write!(f, "close_database({s:?}, {d:?})"),
            Defragment(s, d, g) => write!(f, "defragment({s:?}, {d:?}, {g:#x})"),
            CreateTable(s, d, n) => write!(f, "create_table({s:?}, {d:?}, {n:?})"),
            OpenTable(s, d, n) => write!(f, "open_table({s:?}, {d:?}, {n:?})"),
            CloseTable(s, t) => write!(f, "close_table({s:?}, {t:?})"),
            DeleteTable(s, d, n) => write!(f, "delete_table({s:?}, {d:?}, {n:?})"),
            Seek(s, t, k, m) => write!(f, "seek({s:?}, {t:?}, {}, {m:?})", short(k)),
            Move(s, t, m) => write!(f, "move({s:?}, {t:?}, {m:?})"),
            Retrieve(s, t) => write!(f, "retrieve({s:?}, {t:?})"),
            Insert(s, t, k, v) => {
                write!(f, "insert({s:?}, {t:?}, {}, {})", short(k), short(v))
            }
            Replace(s, t, v) => write!(f, "replace({s:?}, {t:?}, {})", short(v)),
            Delete(s, t) => write!(f, "delete({s:?}, {t:?})"),
            IndexRecordCount(s, t, m) => write!(f, "index_record_count({s:?}, {t:?}, {m})"),
            Restart => write!(f, "<restart: power cut, process dies, restarts>"),
        }
    }
}

impl Call {
    /// Gated after a full stop, by the documentation's allowlist (JetRollback,
    /// JetCloseTable, JetEndSession, JetCloseDatabase, JetDetachDatabase,
    /// JetResetSessionContext still work) plus JetGetSessionInfo, which ESE's source lets
    /// through. Lifecycle calls, parameters and inspection have rules of their own.
    fn is_gated(&self) -> bool {
        use Call::*;
        !matches!(
            self,
            CreateInstance(..)
                | Init(..)
                | Term(..)
                | Term2(..)
                | Stop(..)
                | Stop2(..)
                | GetParameter(..)
                | SetParameter(..)
                | RunBackgroundTasks(..)
                | Inspect(..)
                | Restart
                | Rollback(..)
                | CloseTable(..)
                | EndSession(..)
                | CloseDatabase(..)
                | DetachDatabase(..)
                | ResetContext(..)
                | GetSessionInfo(..)
        )
    }
}

/// Draws a call. Every thread creates and initializes instances; only a `stopper` thread
/// stops, terms and restarts them. A slot whose call this thread may not make is drawn again.
fn draw(
    rng: &mut Rng,
    pools: &Pools,
    stopper: bool,
    can_restart: bool,
) -> (Call, Option<InstanceHandle>) {
    let pick = Pick { pools };
    loop {
        let roll = match draw_slot(rng, pools, stopper, can_restart) {
            Slot::Roll(roll) => roll,
            Slot::Call(call) => return call,
            Slot::Again => continue,
        };
        let call = match roll {
            0..=124 => pick.instance_call(rng, roll, stopper, can_restart),
            125..=324 => pick.session_call(rng, roll),
            325..=519 => pick.database_call(rng, roll),
            _ => pick.table_call(rng, roll),
        };
        if let Some(call) = call {
            return call;
        }
    }
}

/// What [`draw_slot`] chose: a slot of the 1000 that [`draw`] turns into a call, a term of a
/// stopped instance, or nothing this thread may make.
enum Slot {
    Roll(u64),
    Call((Call, Option<InstanceHandle>)),
    Again,
}

/// Chooses the slot of the next call, steering towards what the pools lack.
fn draw_slot(rng: &mut Rng, pools: &Pools, stopper: bool, can_restart: bool) -> Slot {
    // Lifecycle calls are rare (about 3% in all), so instances live long enough for the
    // data calls to reach deep states; then 1000 slots share out the rest.
    let live_instances = pools.instances.iter().filter(|i| i.2).count();
    let live_sessions = pools.sessions.iter().filter(|k| k.live).count();
    let roll = if live_instances == 0 && rng.chance(1, 2) {
        0
    } else if pools.running.is_empty() && rng.chance(1, 2) {
        20
    } else if !pools.running.is_empty() && live_sessions < 2 && rng.chance(1, 3) {
        125
    } else if live_sessions > 0 && !pools.databases.iter().any(|k| k.live) && rng.chance(1, 3) {
        // Attach, create or open a database (in that order of the slots below).
        [345, 325, 380, 380][rng.index(4)]
    } else if live_sessions > 0 && !pools.tables.iter().any(|k| k.live) && rng.chance(1, 3) {
        [430, 455, 455][rng.index(3)]
    } else if stopper && !pools.stopped_at.is_empty() && rng.chance(1, 15) {
        // A stopped instance is there to be terminated; the calls in between are the
        // interesting ones, a few dozen of them are enough. Half the terms are dirty, so
        // open transactions do not keep it alive for ever.
        let stopped: Vec<u64> = pools.stopped_at.keys().copied().collect();
        let i = InstanceHandle(stopped[rng.index(stopped.len())]);
        let call = if rng.chance(1, 2) {
            Call::Term(i)
        } else {
            Call::Term2(i, term_grbit::DIRTY)
        };
        return Slot::Call((call, Some(i)));
    } else if rng.chance(25, 1000) {
        let roll = [0, 20, 20, 40, 48, 54, 61, 61][rng.index(8)];
        if !stopper && roll >= 40 {
            return Slot::Again;
        }
        roll
    } else if stopper && can_restart && rng.chance(1, 2000) {
        71
    } else {
        72 + rng.below(928)
    };
    Slot::Roll(roll)
}

/// A call's handles, drawn from the pools (mostly live ones, sometimes stale or foreign).
struct Pick<'a> {
    pools: &'a Pools,
}

/// A system parameter for the get and set calls.
fn parameter(rng: &mut Rng) -> SystemParameter {
    SystemParameter::ALL[rng.index(SystemParameter::ALL.len())]
}

/// A value for a set call: the limits' edges and plain values.
fn parameter_value(rng: &mut Rng) -> u64 {
    [
        0,
        1,
        7,
        8,
        64,
        512,
        4096,
        1 << 20,
        (1 << 20) + 1,
        1 << 24,
        u64::MAX,
    ][rng.index(11)]
}

// The slot functions below look alike arm by arm (draw the handles, build the call); they
// stay spelled out because each arm's draws, in their order, are what a seed means.
impl Pick<'_> {
    fn instance(&self, rng: &mut Rng) -> (InstanceHandle, Option<InstanceHandle>) {
        let pools = self.pools;
        let live: Vec<&(InstanceHandle, String, bool)> =
            pools.instances.iter().filter(|i| i.2).collect();
        let roll = rng.below(100);
        if roll < 85 && !live.is_empty() {
            let h = live[rng.index(live.len())].0;
            return (h, Some(h));
        }
        if roll < 95 && !pools.instances.is_empty() {
            let h = pools.instances[rng.index(pools.instances.len())].0;
            return (h, Some(h));
        }
        let raw = [0, u64::MAX, rng.below(1 << 16)][rng.index(3)];
        (InstanceHandle(raw), None)
    }

    fn session(&self, rng: &mut Rng) -> (SessionHandle, Option<InstanceHandle>) {
        let other = self.pools.tables.first().map(|t| t.handle.0);
        let (h, owner, _) = choose(rng, &self.pools.sessions, SessionHandle, other);
        (h, owner)
    }

    /// A table or database call: the handle's own session mostly, another one sometimes.
    fn paired(&self, rng: &mut Rng, own: Option<SessionHandle>) -> SessionHandle {
        match own {
            Some(s) if rng.chance(85, 100) => s,
            _ => self.session(rng).0,
        }
    }

    fn table(&self, rng: &mut Rng) -> (SessionHandle, TableHandle, Option<InstanceHandle>) {
        let other = self.pools.sessions.first().map(|s| s.handle.0);
        let (t, owner, own) = choose(rng, &self.pools.tables, TableHandle, other);
        let s = self.paired(rng, own);
        (s, t, owner)
    }

    fn database(&self, rng: &mut Rng) -> (SessionHandle, DatabaseHandle, Option<InstanceHandle>) {
        let other = self.pools.tables.first().map(|t| t.handle.0);
        let (d, owner, own) = choose(rng, &self.pools.databases, DatabaseHandle, other);
        let s = self.paired(rng, own);
        (s, d, owner)
    }

    /// Slots 0..=124: instance calls (lifecycle, parameters, background tasks).
    fn instance_call(
        &self,
        rng: &mut Rng,
        roll: u64,
        stopper: bool,
        can_restart: bool,
    ) -> Option<(Call, Option<InstanceHandle>)> {
        Some(match roll {
            0..=19 => {
                let name = rng.name(INSTANCE_NAMES);
                (Call::CreateInstance(name), None)
            }
            20..=39 => {
                let (i, o) = self.instance(rng);
                (Call::Init(i), o)
            }
            40..=47 if stopper => {
                let (i, o) = self.instance(rng);
                (Call::Term(i), o)
            }
            48..=53 if stopper => {
                let (i, o) = self.instance(rng);
                let g = rng.grbit(&[0, 1, 2, 4, 8, 3, 9]);
                (Call::Term2(i, g), o)
            }
            54..=60 if stopper => {
                let (i, o) = self.instance(rng);
                (Call::Stop(i), o)
            }
            61..=70 if stopper => {
                let (i, o) = self.instance(rng);
                let g = rng.grbit(&[0, 2, 4, 6, 8, 10, 0x8000_0000, 0x8000_0002, 0x8000_0008, 1]);
                (Call::Stop2(i, g), o)
            }
            71 if stopper && can_restart => (Call::Restart, None),
            72..=85 => {
                let (i, o) = self.instance(rng);
                (Call::GetParameter(i, parameter(rng)), o)
            }
            86..=99 => {
                let (i, o) = self.instance(rng);
                let p = parameter(rng);
                (Call::SetParameter(i, p, parameter_value(rng)), o)
            }
            100..=114 => {
                let (i, o) = self.instance(rng);
                (Call::RunBackgroundTasks(i), o)
            }
            115..=124 => {
                let (i, o) = self.instance(rng);
                (Call::Inspect(i), o)
            }
            _ => return None,
        })
    }

    /// Slots 125..=324: session and transaction calls.
    fn session_call(&self, rng: &mut Rng, roll: u64) -> Option<(Call, Option<InstanceHandle>)> {
        Some(match roll {
            125..=164 => {
                let (i, o) = self.instance(rng);
                (Call::BeginSession(i), o)
            }
            165..=179 => {
                let (s, o) = self.session(rng);
                (Call::EndSession(s), o)
            }
            180..=189 => {
                let (s, o) = self.session(rng);
                let c = [1, 2, 0, u64::MAX][rng.index(4)];
                (Call::SetContext(s, c), o)
            }
            190..=199 => {
                let (s, o) = self.session(rng);
                (Call::ResetContext(s), o)
            }
            200..=214 => {
                let (s, o) = self.session(rng);
                (Call::GetSessionInfo(s), o)
            }
            215..=264 => {
                let (s, o) = self.session(rng);
                (Call::BeginTransaction(s), o)
            }
            265..=299 => {
                let (s, o) = self.session(rng);
                (Call::Commit(s), o)
            }
            300..=324 => {
                let (s, o) = self.session(rng);
                (Call::Rollback(s), o)
            }
            _ => return None,
        })
    }

    /// Slots 325..=519: database calls, and table creation and deletion.
    fn database_call(&self, rng: &mut Rng, roll: u64) -> Option<(Call, Option<InstanceHandle>)> {
        Some(match roll {
            325..=344 => {
                let (s, o) = self.session(rng);
                (Call::CreateDatabase(s, rng.name(DATABASE_PATHS)), o)
            }
            345..=364 => {
                let (s, o) = self.session(rng);
                (Call::AttachDatabase(s, rng.name(DATABASE_PATHS)), o)
            }
            365..=379 => {
                let (s, o) = self.session(rng);
                (Call::DetachDatabase(s, rng.name(DATABASE_PATHS)), o)
            }
            380..=404 => {
                let (s, o) = self.session(rng);
                (Call::OpenDatabase(s, rng.name(DATABASE_PATHS)), o)
            }
            405..=419 => {
                let (s, d, o) = self.database(rng);
                (Call::CloseDatabase(s, d), o)
            }
            420..=429 => {
                let (s, d, o) = self.database(rng);
                let g = rng.grbit(&[0, 1, 2, 3]);
                (Call::Defragment(s, d, g), o)
            }
            430..=454 => {
                let (s, d, o) = self.database(rng);
                (Call::CreateTable(s, d, rng.name(TABLE_NAMES)), o)
            }
            455..=489 => {
                let (s, d, o) = self.database(rng);
                (Call::OpenTable(s, d, rng.name(TABLE_NAMES)), o)
            }
            490..=509 => {
                let (s, t, o) = self.table(rng);
                (Call::CloseTable(s, t), o)
            }
            510..=519 => {
                let (s, d, o) = self.database(rng);
                (Call::DeleteTable(s, d, rng.name(TABLE_NAMES)), o)
            }
            _ => return None,
        })
    }

    /// Slots 520..=999: cursor and record calls.
    fn table_call(&self, rng: &mut Rng, roll: u64) -> Option<(Call, Option<InstanceHandle>)> {
        Some(match roll {
            520..=579 => {
                let (s, t, o) = self.table(rng);
                let mode = [
                    SeekMode::Equal,
                    SeekMode::GreaterOrEqual,
                    SeekMode::LessOrEqual,
                ][rng.index(3)];
                (Call::Seek(s, t, rng.bytes(MAX_KEY_BYTES_LIMIT), mode), o)
            }
            580..=639 => {
                let (s, t, o) = self.table(rng);
                let to =
                    [MoveTo::First, MoveTo::Next, MoveTo::Previous, MoveTo::Last][rng.index(4)];
                (Call::Move(s, t, to), o)
            }
            640..=689 => {
                let (s, t, o) = self.table(rng);
                (Call::Retrieve(s, t), o)
            }
            690..=829 => {
                let (s, t, o) = self.table(rng);
                let k = rng.bytes(MAX_KEY_BYTES_LIMIT);
                let v = rng.bytes(MAX_VALUE_BYTES_LIMIT);
                (Call::Insert(s, t, k, v), o)
            }
            830..=889 => {
                let (s, t, o) = self.table(rng);
                (Call::Replace(s, t, rng.bytes(MAX_VALUE_BYTES_LIMIT)), o)
            }
            890..=949 => {
                let (s, t, o) = self.table(rng);
                (Call::Delete(s, t), o)
            }
            950..=999 => {
                let (s, t, o) = self.table(rng);
                let m = [0, 1, 5, 100, u64::MAX][rng.index(5)];
                (Call::IndexRecordCount(s, t, m), o)
            }
            _ => return None,
        })
    }
}

/// The limits the engine documents for keys and values (`storage::MAX_KEY_BYTES`,
/// `MAX_VALUE_BYTES`); the fuzzer draws sizes up to one past them, and 1 MiB.
const MAX_KEY_BYTES_LIMIT: usize = jetsim_engine::storage::MAX_KEY_BYTES;
const MAX_VALUE_BYTES_LIMIT: usize = jetsim_engine::storage::MAX_VALUE_BYTES;

/// What a call returned, and the handle it created.
#[derive(Debug)]
enum Created {
    Nothing,
    Instance(InstanceHandle, String),
    Session(SessionHandle),
    Database(DatabaseHandle),
    Table(TableHandle),
}

struct Outcome {
    result: Result<String, JetError>,
    created: Created,
}

fn ok<T: std::fmt::Debug>(result: JetResult<T>) -> Outcome {
    Outcome {
        result: result.map(|v| format!("{v:?}")),
        created: Created::Nothing,
    }
}

fn execute(jet: &Jet<StdRuntime>, call: &Call, options: InstanceOptions) -> Outcome {
    use Call::*;
    match call {
        CreateInstance(name) => match jet.create_instance_with(name, options) {
            Ok(h) => Outcome {
                result: Ok(format!("{h:?}")),
                created: Created::Instance(h, name.clone()),
            },
            Err(e) => ok::<()>(Err(e)),
        },
        Init(i) => ok(jet.init(*i)),
        Term(i) => ok(jet.term(*i)),
        Term2(i, g) => ok(jet.term2(*i, *g)),
        Stop(i) => ok(jet.stop_service_instance(*i)),
        Stop2(i, g) => ok(jet.stop_service_instance2(*i, *g)),
        GetParameter(i, p) => ok(jet.get_system_parameter(*i, *p)),
        SetParameter(i, p, v) => ok(jet.set_system_parameter(*i, *p, *v)),
        RunBackgroundTasks(i) => ok(jet.run_background_tasks(*i)),
        Inspect(i) => {
            // Every read-only accessor; none may panic on any handle.
            let _ = jet.last_recovery_report(*i);
            let _ = jet.instance_failure(*i);
            let _ = jet.last_stop_record(*i);
            ok(jet.instance_status(*i).map(|s| s.phase))
        }
        BeginSession(i) => match jet.begin_session(*i) {
            Ok(s) => Outcome {
                result: Ok(format!("{s:?}")),
                created: Created::Session(s),
            },
            Err(e) => ok::<()>(Err(e)),
        },
        EndSession(s) => ok(jet.end_session(*s)),
        SetContext(s, c) => ok(jet.set_session_context(*s, *c)),
        ResetContext(s) => ok(jet.reset_session_context(*s)),
        GetSessionInfo(s) => ok(jet.get_session_info(*s)),
        BeginTransaction(s) => ok(jet.begin_transaction(*s)),
        Commit(s) => ok(jet.commit_transaction(*s)),
        Rollback(s) => ok(jet.rollback(*s)),
        CreateDatabase(s, p) => match jet.create_database(*s, p) {
            Ok(d) => Outcome {
                result: Ok(format!("{d:?}")),
                created: Created::Database(d),
            },
            Err(e) => ok::<()>(Err(e)),
        },
        AttachDatabase(s, p) => ok(jet.attach_database(*s, p)),
        DetachDatabase(s, p) => ok(jet.detach_database(*s, p)),
        OpenDatabase(s, p) => match jet.open_database(*s, p) {
            Ok(d) => Outcome {
                result: Ok(format!("{d:?}")),
                created: Created::Database(d),
            },
            Err(e) => ok::<()>(Err(e)),
        },
        CloseDatabase(s, d) => ok(jet.close_database(*s, *d)),
        Defragment(s, d, g) => ok(jet.defragment(*s, *d, *g)),
        CreateTable(s, d, n) => table_outcome(jet.create_table(*s, *d, n)),
        OpenTable(s, d, n) => table_outcome(jet.open_table(*s, *d, n)),
        CloseTable(s, t) => ok(jet.close_table(*s, *t)),
        DeleteTable(s, d, n) => ok(jet.delete_table(*s, *d, n)),
        Seek(s, t, k, m) => ok(jet.seek(*s, *t, k, *m)),
        Move(s, t, m) => ok(jet.move_cursor(*s, *t, *m)),
        Retrieve(s, t) => ok(jet.retrieve(*s, *t).map(|(k, v)| (short(&k), short(&v)))),
        Insert(s, t, k, v) => ok(jet.insert(*s, *t, k, v)),
        Replace(s, t, v) => ok(jet.replace(*s, *t, v)),
        Delete(s, t) => ok(jet.delete(*s, *t)),
        IndexRecordCount(s, t, m) => ok(jet.index_record_count(*s, *t, *m)),
        Restart => unreachable!("restarts are the driver's, not a Jet call"),
    }
}

fn table_outcome(result: JetResult<TableHandle>) -> Outcome {
    match result {
        Ok(t) => Outcome {
            result: Ok(format!("{t:?}")),
            created: Created::Table(t),
        },
        Err(e) => ok::<()>(Err(e)),
    }
}

/// Books the handles a successful call created or ended.
fn book(
    pools: &mut Pools,
    call: &Call,
    outcome: &Outcome,
    owner: Option<InstanceHandle>,
    session: Option<SessionHandle>,
) {
    if outcome.result.is_err() {
        return;
    }
    match outcome.created {
        Created::Instance(h, ref name) => {
            push_bounded(&mut pools.instances, (h, name.clone(), true), |i| i.2)
        }
        Created::Session(s) => {
            if let Some(instance) = owner {
                let k = Known {
                    handle: s,
                    instance,
                    session: s,
                    live: true,
                };
                push_bounded(&mut pools.sessions, k, |k| k.live);
            }
        }
        Created::Database(d) => {
            if let (Some(instance), Some(session)) = (owner, session) {
                let k = Known {
                    handle: d,
                    instance,
                    session,
                    live: true,
                };
                push_bounded(&mut pools.databases, k, |k| k.live);
            }
        }
        Created::Table(t) => {
            if let (Some(instance), Some(session)) = (owner, session) {
                let k = Known {
                    handle: t,
                    instance,
                    session,
                    live: true,
                };
                push_bounded(&mut pools.tables, k, |k| k.live);
            }
        }
        Created::Nothing => {}
    }
    match call {
        Call::Term(i) | Call::Term2(i, _) => {
            for entry in pools.instances.iter_mut().filter(|e| e.0 == *i) {
                entry.2 = false;
            }
            let dead = |k: &mut Known<_>| k.live &= k.instance != *i;
            pools.sessions.iter_mut().for_each(dead);
            pools
                .databases
                .iter_mut()
                .for_each(|k| k.live &= k.instance != *i);
            pools
                .tables
                .iter_mut()
                .for_each(|k| k.live &= k.instance != *i);
            pools.stopped_at.remove(&i.0);
            pools.running.remove(&i.0);
        }
        Call::Init(i) => {
            pools.running.insert(i.0);
        }
        Call::EndSession(s) => {
            pools
                .sessions
                .iter_mut()
                .for_each(|k| k.live &= k.handle != *s);
            pools
                .databases
                .iter_mut()
                .for_each(|k| k.live &= k.session != *s);
            pools
                .tables
                .iter_mut()
                .for_each(|k| k.live &= k.session != *s);
        }
        Call::CloseTable(_, t) => pools
            .tables
            .iter_mut()
            .for_each(|k| k.live &= k.handle != *t),
        Call::CloseDatabase(_, d) => pools
            .databases
            .iter_mut()
            .for_each(|k| k.live &= k.handle != *d),
        _ => {}
    }
}

/// The session a call names, for booking what it creates.
fn session_of(call: &Call) -> Option<SessionHandle> {
    use Call::*;
    match call {
        CreateDatabase(s, _) | OpenDatabase(s, _) | CreateTable(s, ..) | OpenTable(s, ..) => {
            Some(*s)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// What the fuzzer compares

/// An instance's state as the fuzzer compares it around a failed call: the observation and
/// the logical part of the status (not counters that a refusal legitimately bumps, like
/// `refused_after_stop`, nor cache residency, which a read may change).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    observation: Observation,
    phase: Phase,
    sessions: u64,
    open_transactions: u64,
    open_tables: u64,
    attached_databases: u64,
    defrag: DefragStatus,
    caches_quiesced: bool,
}

fn see(jet: &Jet<StdRuntime>, instance: InstanceHandle) -> Result<Seen, JetError> {
    let observation = jet.observe(instance)?;
    let status = jet.instance_status(instance)?;
    Ok(Seen {
        observation,
        phase: status.phase,
        sessions: status.sessions,
        open_transactions: status.open_transactions,
        open_tables: status.open_tables,
        attached_databases: status.attached_databases,
        defrag: status.defrag,
        caches_quiesced: status.caches_quiesced,
    })
}

type World = BTreeMap<u64, Result<Seen, JetError>>;

fn see_all(jet: &Jet<StdRuntime>, pools: &Pools) -> World {
    pools
        .instances
        .iter()
        .map(|(h, _, _)| (h.0, see(jet, *h)))
        .collect()
}

/// Counters that must agree with the sessions and cursors the observation lists.
fn counter_disagreement(seen: &Seen) -> Option<String> {
    let o = &seen.observation;
    let in_transaction = o
        .sessions
        .values()
        .filter(|s| s.transaction_level > 0)
        .count() as u64;
    if seen.open_transactions != in_transaction {
        return Some(format!(
            "status counts {} open transactions, {in_transaction} sessions are in one",
            seen.open_transactions
        ));
    }
    if seen.sessions != o.sessions.len() as u64 {
        return Some(format!(
            "status counts {} sessions, the observation lists {}",
            seen.sessions,
            o.sessions.len()
        ));
    }
    if seen.open_tables != o.cursors.len() as u64 {
        return Some(format!(
            "status counts {} open tables, the observation lists {} cursors",
            seen.open_tables,
            o.cursors.len()
        ));
    }
    None
}

/// The first difference between two views of an instance, briefly.
fn difference(before: &Result<Seen, JetError>, after: &Result<Seen, JetError>) -> String {
    match (before, after) {
        (Ok(b), Ok(a)) => {
            let (b, a) = (&b, &a);
            if b.phase != a.phase {
                return format!("phase {:?} -> {:?}", b.phase, a.phase);
            }
            if b.observation.sessions != a.observation.sessions {
                return format!(
                    "sessions {:?} -> {:?}",
                    b.observation.sessions, a.observation.sessions
                );
            }
            if b.observation.cursors != a.observation.cursors {
                return format!(
                    "cursors {:?} -> {:?}",
                    b.observation.cursors, a.observation.cursors
                );
            }
            if b.observation.committed != a.observation.committed {
                return "committed contents changed".to_owned();
            }
            format!("{b:?} -> {a:?}")
        }
        (b, a) => format!(
            "{:?} -> {:?}",
            b.as_ref().map(|s| s.phase),
            a.as_ref().map(|s| s.phase)
        ),
    }
}

fn fnv(hash: &mut u64, text: &str) {
    for byte in text.bytes().chain(std::iter::once(b'\n')) {
        *hash ^= u64::from(byte);
        *hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
}

fn environment(backend: &Backend, memory: &MemIo) -> Environment {
    match backend {
        Backend::Memory => {
            Environment::new(Arc::new(ManualClock::new(0)), Arc::new(memory.clone()))
        }
        Backend::Files(dir) => Environment::on_disk(dir),
    }
}

// ---------------------------------------------------------------------------------------
// Single-threaded: deterministic, with the before/after comparison

/// The single-threaded run: each call drawn, made, traced and hashed, then checked against
/// what the fuzzer saw of every instance before and after it.
fn run_single(options: &FuzzOptions) -> FuzzReport {
    let mut rng = Rng(SplitMix64::new(options.seed));
    let mut memory = MemIo::new();
    let mut jet = Jet::<StdRuntime>::new(environment(&options.backend, &memory));
    let mut pools = Pools::default();
    let mut report = FuzzReport {
        trace_hash: 0xcbf2_9ce4_8422_2325,
        ..FuzzReport::default()
    };
    let mut ticket = 0u64;
    let mut before = see_all(&jet, &pools);
    for index in 0..options.calls {
        let tracing = options.trace.as_ref().is_some_and(|r| r.contains(&index));
        if let Backend::Files(dir) = &options.backend {
            if rng.chance(1, NEIGHBOUR_VISIT_ONE_IN) {
                let line = neighbour_visit(dir, &mut rng, &pools, &before, index, &mut report);
                fnv(&mut report.trace_hash, &line);
                if tracing {
                    println!("{line}");
                }
                let after = see_all(&jet, &pools);
                if after != before {
                    report.violations.push(Violation {
                        rule: "neighbour-changes-nothing",
                        thread: 0,
                        call_index: index,
                        call: line,
                        detail: "another process's visit changed what this one observes".to_owned(),
                    });
                }
                before = after;
            }
        }
        let (call, owner) = draw(&mut rng, &pools, true, true);
        ticket += 1;
        report.calls += 1;
        if let Call::Restart = call {
            report.restarts += 1;
            restart(&mut jet, &options.backend, &memory, &mut rng);
            pools.forget_all();
            fnv(&mut report.trace_hash, &call.to_string());
            if tracing {
                println!("#{index} {call}");
            }
            before = see_all(&jet, &pools);
            continue;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            execute(&jet, &call, InstanceOptions::manual())
        }));
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(payload) => {
                report.violations.push(Violation {
                    rule: "no-panic",
                    thread: 0,
                    call_index: index,
                    call: call.to_string(),
                    detail: jetsim_engine::runtime::panic_message(&*payload),
                });
                // The engine's state after a panic is unknown: start a fresh world.
                memory = MemIo::new();
                jet = Jet::<StdRuntime>::new(environment(&options.backend, &memory));
                pools = Pools::default();
                before = see_all(&jet, &pools);
                continue;
            }
        };
        let line = format!("#{index} {call} -> {:?}", outcome.result);
        fnv(&mut report.trace_hash, &line);
        if tracing {
            println!("{line}");
        }
        account(&mut report, &call, &outcome);
        check_result(&mut report, &pools, index, ticket, &call, owner, &outcome);
        book(&mut pools, &call, &outcome, owner, session_of(&call));
        if outcome.result.is_ok() && is_full_stop(&call) {
            if let Some(o) = owner {
                pools.stopped_at.entry(o.0).or_insert(ticket);
            }
        }
        let after = see_all(&jet, &pools);
        check_world(&mut report, index, &call, &outcome, &before, &after);
        before = after;
        if report.violations.len() > 1000 {
            break;
        }
    }
    report
}

impl Pools {
    /// After a restart (a power cut and a fresh engine): no handle is live, nothing is
    /// running or stopped.
    fn forget_all(&mut self) {
        self.instances.iter_mut().for_each(|i| i.2 = false);
        self.sessions.iter_mut().for_each(|k| k.live = false);
        self.databases.iter_mut().for_each(|k| k.live = false);
        self.tables.iter_mut().for_each(|k| k.live = false);
        self.stopped_at.clear();
        self.running.clear();
    }
}

/// The rules a call's own result answers: no corruption, and no gated call succeeding on an
/// instance whose full stop had returned before the call (`ticket`) was drawn.
fn check_result(
    report: &mut FuzzReport,
    pools: &Pools,
    index: u64,
    ticket: u64,
    call: &Call,
    owner: Option<InstanceHandle>,
    outcome: &Outcome,
) {
    if outcome.result == Err(JetError::DatabaseCorrupted) {
        report.violations.push(Violation {
            rule: "no-corruption",
            thread: 0,
            call_index: index,
            call: call.to_string(),
            detail: "DatabaseCorrupted, but the disk never corrupts synced data: the \
                     engine lost or mixed up a write it had made durable"
                .to_owned(),
        });
    }
    if call.is_gated() {
        if let Some(stopped) = owner.and_then(|o| pools.stopped_at.get(&o.0)) {
            report.gated_calls_after_stop += 1;
            if outcome.result.is_ok() && *stopped < ticket {
                report.violations.push(Violation {
                    rule: "no-gated-success-after-stop",
                    thread: 0,
                    call_index: index,
                    call: call.to_string(),
                    detail: format!("returned {:?} on a stopped instance", outcome.result),
                });
            }
        }
    }
}

/// The rules what the fuzzer sees of every instance answers: a failed call changed nothing
/// (`before` against `after`), and each instance's counters agree with its sessions.
fn check_world(
    report: &mut FuzzReport,
    index: u64,
    call: &Call,
    outcome: &Outcome,
    before: &World,
    after: &World,
) {
    if outcome.result.is_err() {
        report.failed_calls_compared += 1;
        for (instance, now) in after {
            if let Some(was) = before.get(instance) {
                if was != now {
                    report.violations.push(Violation {
                        rule: "failed-call-changes-nothing",
                        thread: 0,
                        call_index: index,
                        call: call.to_string(),
                        detail: format!(
                            "returned {:?}; instance {:?}: {}",
                            outcome.result,
                            InstanceHandle(*instance),
                            difference(was, now)
                        ),
                    });
                }
            }
        }
    }
    for seen in after.values().flatten() {
        if let Some(detail) = counter_disagreement(seen) {
            report.violations.push(Violation {
                rule: "counters-agree-with-sessions",
                thread: 0,
                call_index: index,
                call: call.to_string(),
                detail,
            });
        }
    }
}

/// About one call in this many is preceded by another process's visit (files only).
const NEIGHBOUR_VISIT_ONE_IN: u64 = 100;

/// Another process on the same folder: a second [`Jet`] starts one of the instance names,
/// attaches one of the database paths and terminates. Checks held-file-refused against what
/// this process observed before the visit (`world`); returns the visit's trace line.
fn neighbour_visit(
    dir: &std::path::Path,
    rng: &mut Rng,
    pools: &Pools,
    world: &World,
    index: u64,
    report: &mut FuzzReport,
) -> String {
    let name = rng.pick(INSTANCE_NAMES);
    let path = rng.pick(DATABASE_PATHS);
    // Files this process holds for certain: the log of every instance observed initialized,
    // and every database such an instance has attached. An instance that cannot be observed
    // may hold files too; the rule is only checked where the holding is known.
    let mut held_logs = std::collections::BTreeSet::new();
    let mut held_databases = std::collections::BTreeSet::new();
    // Only live entries: a handle of a process that restarted may equal a new one's.
    for (handle, instance_name, _) in pools.instances.iter().filter(|i| i.2) {
        if let Some(Ok(seen)) = world.get(&handle.0) {
            if matches!(
                seen.phase,
                Phase::Running | Phase::Stopping | Phase::Stopped
            ) {
                held_logs.insert(instance_name.as_str());
                held_databases.extend(seen.observation.committed.keys().cloned());
            }
        }
    }
    report.neighbour_visits += 1;
    let mut violation = |rule: &'static str, call: String, detail: String| {
        report.violations.push(Violation {
            rule,
            thread: 0,
            call_index: index,
            call,
            detail,
        })
    };
    let neighbour = Jet::<StdRuntime>::new(Environment::on_disk(dir));
    let Ok(instance) = neighbour.create_instance_with(name, InstanceOptions::manual()) else {
        return format!("#{index} <another process: create_instance({name:?}) failed>");
    };
    let init = neighbour.init(instance);
    let mut line = format!("#{index} <another process: init({name:?}) -> {init:?}");
    let mut refusals = u64::from(init == Err(JetError::FileAccessDenied));
    if held_logs.contains(name) && init != Err(JetError::FileAccessDenied) {
        violation(
            "held-file-refused",
            format!("another process's init({name:?})"),
            format!("returned {init:?} while this process holds {name}/jet.log"),
        );
    }
    if init == Err(JetError::DatabaseCorrupted) {
        violation(
            "no-corruption",
            format!("another process's init({name:?})"),
            "recovery answered DatabaseCorrupted".to_owned(),
        );
    }
    if init.is_ok() {
        if let Ok(session) = neighbour.begin_session(instance) {
            let attach = neighbour.attach_database(session, path);
            let _ = write!(line, ", attach_database({path:?}) -> {attach:?}");
            refusals += u64::from(attach == Err(JetError::FileAccessDenied));
            if held_databases.contains(path) && attach != Err(JetError::FileAccessDenied) {
                violation(
                    "held-file-refused",
                    format!("another process's attach_database({path:?})"),
                    format!("returned {attach:?} while this process has it attached"),
                );
            }
            if attach == Err(JetError::DatabaseCorrupted) {
                violation(
                    "no-corruption",
                    format!("another process's attach_database({path:?})"),
                    "DatabaseCorrupted".to_owned(),
                );
            }
            let _ = neighbour.end_session(session);
        }
        let term = neighbour.term(instance);
        let _ = write!(line, ", term -> {term:?}");
        if term.is_err() {
            let _ = neighbour.term2(instance, term_grbit::DIRTY);
        }
    }
    report.neighbour_refusals += refusals;
    line.push('>');
    line
}

fn is_full_stop(call: &Call) -> bool {
    matches!(call, Call::Stop(_) | Call::Stop2(_, stop_grbit::ALL))
}

fn account(report: &mut FuzzReport, call: &Call, outcome: &Outcome) {
    match &outcome.result {
        Ok(_) => report.succeeded += 1,
        Err(e) => *report.failed_by_error.entry(e.name()).or_insert(0) += 1,
    }
    if outcome.result.is_ok() {
        match call {
            Call::Stop(_) | Call::Stop2(..) => report.stops += 1,
            Call::Term(_) | Call::Term2(..) => report.terms += 1,
            _ => {}
        }
    }
}

/// The process dies: power is cut (MemIo), the engine is dropped without term, the disk
/// loses a seeded share of its unsynced writes, and a new process starts on the same files.
fn restart(jet: &mut Jet<StdRuntime>, backend: &Backend, memory: &MemIo, rng: &mut Rng) {
    if let Backend::Memory = backend {
        memory.cut_power_after_ops(Some(memory.mutating_ops()));
    }
    let fresh = Jet::<StdRuntime>::new(environment(backend, memory));
    drop(std::mem::replace(jet, fresh));
    if let Backend::Memory = backend {
        let crash = CrashFaults {
            lost_write_ppm: [0, 300_000, 1_000_000][rng.index(3)],
            torn_write_ppm: [0, 200_000][rng.index(2)],
            ..CrashFaults::default()
        };
        let mut crash_rng = SplitMix64::new(rng.0.next_u64());
        memory.crash_with(&mut crash_rng, crash);
    }
}

// ---------------------------------------------------------------------------------------
// Multi-threaded: OS threads sharing handles, a watchdog, the stop rule by tickets

struct Shared {
    jet: Jet<StdRuntime>,
    pools: Mutex<Pools>,
    /// Global order of invocations and responses.
    tickets: AtomicU64,
    completed: AtomicU64,
    stop: AtomicBool,
    /// What each thread is calling now, for the deadlock report.
    in_flight: Vec<Mutex<Option<String>>>,
}

#[derive(Default)]
struct ThreadTally {
    report: FuzzReport,
}

fn run_threads(options: &FuzzOptions) -> FuzzReport {
    let memory = MemIo::new();
    let shared = Arc::new(Shared {
        jet: Jet::<StdRuntime>::new(environment(&options.backend, &memory)),
        pools: Mutex::new(Pools::default()),
        tickets: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        in_flight: (0..options.threads).map(|_| Mutex::new(None)).collect(),
    });
    // Start with an instance and sessions so the workers have something to share.
    {
        let jet = &shared.jet;
        let mut pools = shared.pools.lock().unwrap();
        if let Ok(instance) = jet.create_instance_with("alpha", InstanceOptions::default()) {
            pools.instances.push((instance, "alpha".to_owned(), true));
            if jet.init(instance).is_ok() {
                for _ in 0..options.threads {
                    if let Ok(s) = jet.begin_session(instance) {
                        pools.sessions.push(Known {
                            handle: s,
                            instance,
                            session: s,
                            live: true,
                        });
                    }
                }
            }
        }
    }
    let per_thread = options.calls / options.threads as u64;
    let (done_tx, done_rx) = mpsc::channel::<ThreadTally>();
    for thread in 0..options.threads {
        let shared = Arc::clone(&shared);
        let done = done_tx.clone();
        let seed = options.seed ^ (thread as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        std::thread::Builder::new()
            .name(format!("fuzz-{thread}"))
            .spawn(move || {
                let tally = worker(&shared, thread, seed, per_thread);
                let _ = done.send(tally);
            })
            .expect("spawn a fuzz thread");
    }
    drop(done_tx);
    let mut report = FuzzReport::default();
    let mut finished = 0;
    let mut last_completed = 0;
    let mut quiet_secs = 0;
    while finished < options.threads {
        match done_rx.recv_timeout(Duration::from_secs(1)) {
            Ok(tally) => {
                finished += 1;
                merge(&mut report, tally.report);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let completed = shared.completed.load(Ordering::SeqCst);
                if completed == last_completed {
                    quiet_secs += 1;
                } else {
                    quiet_secs = 0;
                    last_completed = completed;
                }
                if quiet_secs >= options.watchdog_secs {
                    report.deadlocked = true;
                    shared.stop.store(true, Ordering::SeqCst);
                    for (thread, slot) in shared.in_flight.iter().enumerate() {
                        if let Some(call) = slot.lock().unwrap().clone() {
                            report.violations.push(Violation {
                                rule: "no-deadlock",
                                thread,
                                call_index: completed,
                                call,
                                detail: format!(
                                    "still in flight after {} s without progress",
                                    options.watchdog_secs
                                ),
                            });
                        }
                    }
                    // The stuck threads are left behind: joining them would hang too.
                    return report;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    report
}

fn merge(into: &mut FuzzReport, from: FuzzReport) {
    into.calls += from.calls;
    into.succeeded += from.succeeded;
    for (name, count) in from.failed_by_error {
        *into.failed_by_error.entry(name).or_insert(0) += count;
    }
    into.failed_calls_compared += from.failed_calls_compared;
    into.failed_calls_not_compared += from.failed_calls_not_compared;
    into.gated_calls_after_stop += from.gated_calls_after_stop;
    into.neighbour_visits += from.neighbour_visits;
    into.neighbour_refusals += from.neighbour_refusals;
    into.restarts += from.restarts;
    into.stops += from.stops;
    into.terms += from.terms;
    into.violations.extend(from.violations);
}

fn worker(shared: &Shared, thread: usize, seed: u64, calls: u64) -> ThreadTally {
    let mut rng = Rng(SplitMix64::new(seed));
    let mut tally = ThreadTally::default();
    let report = &mut tally.report;
    for index in 0..calls {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let (call, owner) = {
            let pools = shared.pools.lock().unwrap();
            draw(&mut rng, &pools, thread == 0, false)
        };
        *shared.in_flight[thread].lock().unwrap() = Some(call.to_string());
        let invoked = shared.tickets.fetch_add(1, Ordering::SeqCst);
        // Background threads on, as a server runs: the interleaving is the OS's.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            execute(&shared.jet, &call, InstanceOptions::default())
        }));
        let responded = shared.tickets.fetch_add(1, Ordering::SeqCst);
        *shared.in_flight[thread].lock().unwrap() = None;
        shared.completed.fetch_add(1, Ordering::SeqCst);
        report.calls += 1;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(payload) => {
                report.violations.push(Violation {
                    rule: "no-panic",
                    thread,
                    call_index: index,
                    call: call.to_string(),
                    detail: jetsim_engine::runtime::panic_message(&*payload),
                });
                shared.stop.store(true, Ordering::SeqCst);
                break;
            }
        };
        account(report, &call, &outcome);
        if outcome.result.is_err() {
            report.failed_calls_not_compared += 1;
        }
        let mut pools = shared.pools.lock().unwrap();
        if call.is_gated() {
            if let Some(stopped) = owner.and_then(|o| pools.stopped_at.get(&o.0)) {
                if *stopped < invoked {
                    report.gated_calls_after_stop += 1;
                    if outcome.result.is_ok() {
                        report.violations.push(Violation {
                            rule: "no-gated-success-after-stop",
                            thread,
                            call_index: index,
                            call: call.to_string(),
                            detail: format!(
                                "invoked at ticket {invoked}, after the stop returned at \
                                 {stopped}, and returned {:?}",
                                outcome.result
                            ),
                        });
                    }
                }
            }
        }
        book(&mut pools, &call, &outcome, owner, session_of(&call));
        if outcome.result.is_ok() && is_full_stop(&call) {
            if let Some(o) = owner {
                pools.stopped_at.entry(o.0).or_insert(responded);
            }
        }
    }
    tally
}
