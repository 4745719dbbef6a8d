//! The reference model: an independent, sequential, deliberately simple implementation of the
//! Jet semantics the simulator checks the engine against. No engine code is reused; it shares
//! only the symbolic call language ([`crate::workload`]) and error names.
//!
//! `step(state, thread, call) -> (result, state')`. For every error result the state is
//! returned unchanged (a property test below holds the model to that).
//!
//! Order of checks, mirroring the engine's documented order: the handle must name a live
//! instance, then the instance phase (the gate), then the handles inside the instance, then
//! the arguments, then the operation.

use crate::workload::{Call, DatabaseFile, InstanceRef, Move, Parameter, Ref, Seek, TABLES};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

/// A result as the checkers compare it: the success value, or the JET error's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Outcome {
    Ok,
    Record {
        key: u8,
        value: u8,
    },
    Count(u64),
    SessionInfo {
        level: u8,
        context: Option<u64>,
        open_tables: u32,
        open_databases: u32,
    },
    Attached {
        already: bool,
    },
    Terminated {
        dirty: bool,
    },
    /// A system parameter's value.
    Parameter(u64),
    Err(String),
}

impl Outcome {
    pub fn err(error: jetsim_engine::JetError) -> Outcome {
        Outcome::Err(error.name().to_owned())
    }
    pub fn is_ok(&self) -> bool {
        !matches!(self, Outcome::Err(_))
    }
    pub fn is_err_named(&self, error: jetsim_engine::JetError) -> bool {
        matches!(self, Outcome::Err(name) if name == error.name())
    }

    /// The call met a disk failure (`DiskIO`, or `LogWriteFail` from a commit whose log write
    /// or sync failed): what it did may or may not have reached the disk, so the checkers
    /// place it in doubt rather than compare it.
    pub fn is_io_error(&self) -> bool {
        self.is_err_named(jetsim_engine::JetError::DiskIO)
            || self.is_err_named(jetsim_engine::JetError::LogWriteFail)
    }
}

use jetsim_engine::JetError as E;

type Res = Result<Outcome, E>;

/// Lifecycle of the instance under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ModelPhase {
    Running,
    Stopped,
    Terminated,
}

/// Which kind of object a variable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Session,
    Database,
    Table,
}

/// An object's identity in the model.
pub type ObjectId = u32;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ModelTransaction {
    pub snapshot_ts: u64,
    /// Writes per level (index 0 = level 1): (table, key) → value (`None`: deleted).
    pub levels: Vec<BTreeMap<(u8, u8), Option<u8>>>,
    /// Versions per level, as the engine's version store holds them: one per write, so a
    /// record written twice counts twice (the map above keeps its last value once); a
    /// nested commit moves its level's versions to the enclosing level.
    #[serde(default)]
    pub versions: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ModelSession {
    pub alive: bool,
    /// (context value, thread that set it).
    pub context: Option<(u64, usize)>,
    pub transaction: Option<ModelTransaction>,
    /// Opens of the attached database (0 = not open).
    pub database_opens: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Position {
    BeforeFirst,
    On(u8),
    AfterLast,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ModelCursor {
    pub alive: bool,
    pub session: ObjectId,
    pub table: u8,
    pub opened_at_level: u8,
    pub position: Position,
}

/// An instance's system parameters, as `JetGetSystemParameter` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ModelParameters {
    pub checkpoint_depth_max_bytes: u64,
    pub cache_size_pages: u64,
    pub version_store_max_versions: u64,
    pub online_defrag: bool,
}

impl ModelParameters {
    /// What a run's setup set on the instance under test.
    pub fn of_run(engine: &crate::workload::config::EngineParameters) -> ModelParameters {
        ModelParameters {
            checkpoint_depth_max_bytes: engine.checkpoint_depth_max_bytes,
            cache_size_pages: engine.cache_size_pages,
            version_store_max_versions: engine.version_store_max_versions,
            online_defrag: engine.online_defrag,
        }
    }

    fn get(&self, parameter: Parameter) -> u64 {
        match parameter {
            Parameter::CheckpointDepthMaxBytes => self.checkpoint_depth_max_bytes,
            Parameter::CacheSizePages => self.cache_size_pages,
            Parameter::VersionStoreMaxVersions => self.version_store_max_versions,
            Parameter::OnlineDefrag => u64::from(self.online_defrag),
        }
    }
}

/// `JET_paramCacheSizeMax`'s range in pages (README: "at least 8").
const CACHE_SIZE_PAGES_MIN: u64 = 8;
const CACHE_SIZE_PAGES_MAX: u64 = 1 << 20;

/// The longest key and value a record may have (ESE's `JET_cbKeyMost` and the record size
/// limit, as the README documents them for jetsim); past either a write or a seek is refused
/// with `JET_errRecordTooBig` and changes nothing. The model's own copy, asserted equal to the
/// engine's in a test: the answer must not come from the engine.
pub const KEY_BYTES_MAX: usize = 128;
pub const VALUE_BYTES_MAX: usize = 512;

/// `RecordTooBig` for a key (and, for a write with a value, a value) past its limit, judged
/// on the lengths of the bytes the harness sends for those numbers (measured once: the
/// model steps on the checker's hot path).
fn check_record_size(key: u8, value: Option<u8>) -> Result<(), E> {
    static LENGTHS: OnceLock<([usize; 256], [usize; 256])> = OnceLock::new();
    let (key_lengths, value_lengths) = LENGTHS.get_or_init(|| {
        let (mut keys, mut values) = ([0; 256], [0; 256]);
        for number in 0..=u8::MAX {
            keys[usize::from(number)] = crate::workload::key_bytes(number).len();
            values[usize::from(number)] = crate::workload::value_bytes(number).len();
        }
        (keys, values)
    });
    let key_too_long = key_lengths[usize::from(key)] > KEY_BYTES_MAX;
    let value_too_long =
        value.is_some_and(|value| value_lengths[usize::from(value)] > VALUE_BYTES_MAX);
    if key_too_long || value_too_long {
        return Err(E::RecordTooBig);
    }
    Ok(())
}

/// One committed write: (commit_ts, table, key, value; `None`: deleted).
pub type CommittedWrite = (u64, u8, u8, Option<u8>);

/// A part of [`ModelState`] shared, copy on write, between the states the linearizability
/// search explores: cloning a state copies a pointer per part, and a step copies only the
/// parts it writes (`DerefMut` clones a part still shared with another state first), so
/// the maps no call of the step touches are never copied. A part also keeps its digest for
/// [`ModelState::hash_observable`] while it is unchanged, so a state shares its parent's
/// digests of the parts its step did not write. A representation only: it reads, compares,
/// hashes, prints and serializes exactly as the value it holds.
#[derive(Clone, Default)]
pub struct Shared<T>(Arc<Part<T>>);

#[derive(Clone, Default)]
struct Part<T> {
    value: T,
    /// The value's digest (see [`Shared::digest`]); emptied at every write.
    digest: OnceLock<u64>,
}

impl<T> Shared<T> {
    pub fn new(value: T) -> Shared<T> {
        Shared(Arc::new(Part {
            value,
            digest: OnceLock::new(),
        }))
    }

    /// A 64-bit digest of the value as `digest_of` hashes it, computed once while the value
    /// is unchanged. Each part of the state is digested by one function only (in
    /// [`ModelState::hash_observable`]), so the digest kept is always that function's.
    fn digest(&self, digest_of: impl FnOnce(&T, &mut FoldHasher)) -> u64 {
        *self.0.digest.get_or_init(|| {
            let mut hasher = FoldHasher::default();
            digest_of(&self.0.value, &mut hasher);
            hasher.finish()
        })
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T: Clone> std::ops::DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        let part = Arc::make_mut(&mut self.0);
        part.digest.take();
        &mut part.value
    }
}

impl<T: FromIterator<A>, A> FromIterator<A> for Shared<T> {
    fn from_iter<I: IntoIterator<Item = A>>(iter: I) -> Shared<T> {
        Shared::new(iter.into_iter().collect())
    }
}

impl<'a, T> IntoIterator for &'a Shared<T>
where
    &'a T: IntoIterator,
{
    type Item = <&'a T as IntoIterator>::Item;
    type IntoIter = <&'a T as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        (&self.0.value).into_iter()
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Shared<T>) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.value == other.0.value
    }
}

impl<T: Eq> Eq for Shared<T> {}

impl<T: PartialOrd> PartialOrd for Shared<T> {
    fn partial_cmp(&self, other: &Shared<T>) -> Option<std::cmp::Ordering> {
        self.0.value.partial_cmp(&other.0.value)
    }
}

impl<T: Ord> Ord for Shared<T> {
    fn cmp(&self, other: &Shared<T>) -> std::cmp::Ordering {
        self.0.value.cmp(&other.0.value)
    }
}

impl<T: std::hash::Hash> std::hash::Hash for Shared<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.value.hash(state);
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.value.fmt(f)
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.value.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Shared<T>, D::Error> {
        T::deserialize(deserializer).map(Shared::new)
    }
}

/// A fast, fixed-key (deterministic) 64-bit hasher, for the linearizability search's memo
/// fingerprints and the digests of a state's parts: each word is folded into the state by a
/// 64x64->128-bit multiply (foldhash's mixing step). SipHash's many small writes were a
/// third of the search's time.
pub struct FoldHasher(u64);

impl Default for FoldHasher {
    fn default() -> Self {
        FoldHasher(0x243f_6a88_85a3_08d3)
    }
}

impl FoldHasher {
    const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
    const SALT: u64 = 0x1319_8a2e_0370_7344;
}

fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl std::hash::Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        folded_multiply(self.0, Self::MULTIPLIER)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word) ^ ((chunk.len() as u64) << 59));
        }
    }
    fn write_u8(&mut self, value: u8) {
        self.write_u64(u64::from(value));
    }
    fn write_u16(&mut self, value: u16) {
        self.write_u64(u64::from(value));
    }
    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }
    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = folded_multiply(self.0 ^ value, Self::MULTIPLIER ^ Self::SALT.rotate_left(7))
            .wrapping_add(Self::SALT);
    }
}

/// The whole model state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ModelState {
    pub phase: ModelPhase,
    pub uninitialized_alive: bool,
    pub defrag_parked: bool,
    pub caches_quiesced: bool,
    /// `JET_bitStopServiceStopAndEmitLog` ended the log stream: every call that would write
    /// the log fails with `errLogServiceStopped` after its own checks, and changes nothing.
    #[serde(default)]
    pub log_stopped: bool,
    pub attached: bool,
    /// Bumped at every attach: database handles from an earlier attachment are stale.
    pub database_epoch: u32,
    pub bindings: Shared<BTreeMap<(usize, Kind, u8), ObjectId>>,
    /// Sessions in creation order per thread: (thread, n) → session.
    pub created: Shared<BTreeMap<(usize, u8), ObjectId>>,
    /// Database variables bind an epoch.
    pub database_bindings: Shared<BTreeMap<(usize, u8), u32>>,
    pub sessions: Shared<BTreeMap<ObjectId, ModelSession>>,
    pub cursors: Shared<BTreeMap<ObjectId, ModelCursor>>,
    /// Objects (sessions, cursors) each thread has created so far. An object's id is its
    /// creating thread and its number in that thread, never a global counter: two orders of
    /// independent calls then reach the same state, which the linearizability search's memo
    /// merges (a global counter made every order distinct and the end-state search explode).
    pub objects_created: Shared<BTreeMap<usize, ObjectId>>,
    pub last_commit_ts: u64,
    /// Every committed write, in commit order.
    pub commits: Shared<Vec<CommittedWrite>>,
    /// The instance under test's system parameters (`None` in states made without a run's
    /// configuration: parameter calls are then not modelled).
    #[serde(default)]
    pub parameters: Option<ModelParameters>,
    /// The tables of the database (setup's `t0`, `t1`; DDL creates and deletes others).
    #[serde(default = "setup_tables")]
    pub tables: Shared<BTreeSet<u8>>,
    /// Versions of committed transactions the version store may still need: (commit
    /// timestamp, versions), oldest first; those at or before every open snapshot are dead
    /// (see [`live_versions`]) and dropped at commits.
    #[serde(default)]
    pub committed_versions: Vec<(u64, u32)>,
}

fn setup_tables() -> Shared<BTreeSet<u8>> {
    (0..TABLES).collect()
}

impl ModelState {
    /// The state right after the harness's setup: instance running, database attached with
    /// tables `t0`/`t1`, `initial` records committed in `t0`.
    pub fn initial(initial: &[(u8, u8)]) -> ModelState {
        ModelState {
            phase: ModelPhase::Running,
            uninitialized_alive: true,
            defrag_parked: false,
            caches_quiesced: false,
            log_stopped: false,
            attached: true,
            database_epoch: 1,
            bindings: Shared::default(),
            created: Shared::default(),
            database_bindings: Shared::default(),
            sessions: Shared::default(),
            cursors: Shared::default(),
            objects_created: Shared::default(),
            last_commit_ts: u64::from(!initial.is_empty()),
            commits: initial
                .iter()
                .map(|&(key, value)| (1, 0, key, Some(value)))
                .collect(),
            parameters: None,
            tables: setup_tables(),
            committed_versions: Vec::new(),
        }
    }

    /// The state right after the setup of run `config` (its records, the ones it then
    /// deleted, and its parameters).
    pub fn for_run(config: &crate::workload::config::RunConfig) -> ModelState {
        let mut state = ModelState {
            parameters: Some(ModelParameters::of_run(&config.engine)),
            ..ModelState::initial(&config.initial_records)
        };
        if !config.setup_deleted_keys.is_empty() {
            // The setup's second transaction: one commit, after the inserts'.
            state.last_commit_ts += 1;
            let ts = state.last_commit_ts;
            state.commits.extend(
                config
                    .setup_deleted_keys
                    .iter()
                    .map(|&key| (ts, 0, key, None)),
            );
        }
        state
    }

    /// The committed value of `(table, key)` as of `ts`.
    fn committed_value(&self, table: u8, key: u8, ts: u64) -> Option<u8> {
        self.commits
            .iter()
            .rev()
            .find(|&&(commit_ts, t, k, _)| t == table && k == key && commit_ts <= ts)
            .and_then(|&(_, _, _, value)| value)
    }

    /// What `session` sees of one record ([`Self::visible`] for one key, without building
    /// the whole table: tables hold a few hundred records in some runs).
    fn visible_value(&self, session: ObjectId, table: u8, key: u8) -> Option<u8> {
        let entry = &self.sessions[&session];
        match &entry.transaction {
            None => self.committed_value(table, key, self.last_commit_ts),
            Some(txn) => txn
                .levels
                .iter()
                .rev()
                .find_map(|level| level.get(&(table, key)).copied())
                .unwrap_or_else(|| self.committed_value(table, key, txn.snapshot_ts)),
        }
    }

    /// Committed contents of `table` as of `ts`.
    pub fn committed_as_of(&self, table: u8, ts: u64) -> BTreeMap<u8, u8> {
        let mut contents = BTreeMap::new();
        for &(commit_ts, t, key, value) in &self.commits {
            if t == table && commit_ts <= ts {
                match value {
                    Some(value) => contents.insert(key, value),
                    None => contents.remove(&key),
                };
            }
        }
        contents
    }

    /// What `session` sees of `table`: its snapshot (or the latest commits), then its own
    /// writes, inner levels last.
    fn visible(&self, session: ObjectId, table: u8) -> BTreeMap<u8, u8> {
        let entry = &self.sessions[&session];
        match &entry.transaction {
            None => self.committed_as_of(table, self.last_commit_ts),
            Some(txn) => {
                let mut contents = self.committed_as_of(table, txn.snapshot_ts);
                for level in &txn.levels {
                    for (&(t, key), &value) in level {
                        if t == table {
                            match value {
                                Some(value) => contents.insert(key, value),
                                None => contents.remove(&key),
                            };
                        }
                    }
                }
                contents
            }
        }
    }

    fn bound(&self, thread: usize, kind: Kind, var: u8) -> Option<ObjectId> {
        self.bindings.get(&(thread, kind, var)).copied()
    }

    fn bind(&mut self, thread: usize, kind: Kind, var: u8) -> ObjectId {
        let created = self.objects_created.entry(thread).or_insert(0);
        *created += 1;
        assert!(*created < 1 << 16 && thread < 1 << 15, "ids fit");
        let id = (u32::try_from(thread).expect("few threads") << 16) | *created;
        self.bindings.insert((thread, kind, var), id);
        id
    }

    fn cursors_of(&self, session: ObjectId) -> impl Iterator<Item = (&ObjectId, &ModelCursor)> {
        self.cursors
            .iter()
            .filter(move |(_, c)| c.alive && c.session == session)
    }

    fn close_cursors_where(&mut self, session: ObjectId, close: impl Fn(&ModelCursor) -> bool) {
        for cursor in self.cursors.values_mut() {
            if cursor.alive && cursor.session == session && close(cursor) {
                cursor.alive = false;
            }
        }
    }
}

impl ModelState {
    /// Hashes what the rest of any run could observe of this state, for the linearizability
    /// search's memo: two states with equal hashes give every later call the same result and
    /// end the same way. Commit timestamps are compared only with the snapshots of
    /// transactions and with each other, so the commit log is kept only up to those points:
    /// the snapshots cut it into epochs, an epoch keeps the last value each key was given
    /// in it, empty epochs (a commit that wrote nothing) vanish, and a snapshot becomes the
    /// number of epochs it sees. `committed_value`, `conflicts` (a commit to the key after
    /// the snapshot), detach's and delete-table's "committed since the oldest snapshot" and
    /// the end state (the latest value of every key) read nothing else; later snapshots
    /// are taken at the newest commit, after every epoch. Two orders of commits that no
    /// open snapshot separates and that write different keys then meet in the memo. Every
    /// field is named here, so a new one cannot be forgotten.
    pub fn hash_observable<H: Hasher>(&self, hasher: &mut H) {
        let ModelState {
            phase,
            uninitialized_alive,
            defrag_parked,
            caches_quiesced,
            log_stopped,
            attached,
            database_epoch,
            bindings,
            created,
            database_bindings,
            sessions,
            cursors,
            objects_created,
            last_commit_ts: _,
            commits,
            parameters,
            tables,
            committed_versions,
        } = self;
        (phase, uninitialized_alive, defrag_parked, caches_quiesced).hash(hasher);
        (log_stopped, attached, database_epoch, parameters).hash(hasher);
        fn whole<T: Hash>(value: &T, hasher: &mut FoldHasher) {
            value.hash(hasher);
        }
        hasher.write_u64(tables.digest(whole));
        hasher.write_u64(bindings.digest(whole));
        hasher.write_u64(created.digest(whole));
        hasher.write_u64(database_bindings.digest(whole));
        hasher.write_u64(cursors.digest(whole));
        hasher.write_u64(objects_created.digest(whole));
        let mut snapshots: Vec<u64> = sessions
            .values()
            .filter_map(|s| s.transaction.as_ref().map(|t| t.snapshot_ts))
            .collect();
        snapshots.sort_unstable();
        snapshots.dedup();
        let seen = hash_epochs(commits, &snapshots, hasher);
        // Committed versions matter only through the snapshots that may still need them:
        // for each, how many were committed after it.
        for &snapshot in &snapshots {
            let after: u64 = committed_versions
                .iter()
                .filter(|&&(ts, _)| ts > snapshot)
                .map(|&(_, versions)| u64::from(versions))
                .sum();
            after.hash(hasher);
        }
        // The sessions but their snapshots' timestamps, then, for each transaction in
        // session order, the number of epochs its snapshot sees.
        hasher.write_u64(sessions.digest(|sessions, hasher| {
            sessions.len().hash(hasher);
            for (id, session) in sessions {
                let ModelSession {
                    alive,
                    context,
                    transaction,
                    database_opens,
                } = session;
                (id, alive, context, database_opens).hash(hasher);
                match transaction {
                    None => 0u8.hash(hasher),
                    Some(ModelTransaction {
                        snapshot_ts: _,
                        levels,
                        versions,
                    }) => (1u8, levels, versions).hash(hasher),
                }
            }
        }));
        for transaction in sessions.values().filter_map(|s| s.transaction.as_ref()) {
            let index = snapshots
                .binary_search(&transaction.snapshot_ts)
                .expect("collected");
            seen[index].hash(hasher);
        }
    }
}

/// Hashes the commit log cut into epochs by `snapshots` (sorted, distinct), as
/// [`ModelState::hash_observable`] says; returns, for each snapshot, how many non-empty
/// epochs it sees. The commits are in timestamp order, so an epoch is a run of them: read
/// backwards, the first write of each key in it is its last. An epoch's writes are a set
/// (each key once), hashed in no order: the sum of each write's mixed bits.
fn hash_epochs<H: std::hash::Hasher>(
    commits: &[(u64, u8, u8, Option<u8>)],
    snapshots: &[u64],
    hasher: &mut H,
) -> Vec<usize> {
    let mut seen = Vec::with_capacity(snapshots.len());
    // One bit per (table, key) of the tables the log names: 4 words a table.
    let tables = commits
        .iter()
        .map(|c| usize::from(c.1) + 1)
        .max()
        .unwrap_or(0);
    let mut written = vec![0u64; 4 * tables];
    let mut non_empty = 0usize;
    let mut end = commits.len();
    // Epoch `e` holds the commits after snapshot `e - 1`, up to and including snapshot `e`.
    for epoch in (0..=snapshots.len()).rev() {
        let start = match epoch {
            0 => 0,
            _ => commits[..end].partition_point(|c| c.0 <= snapshots[epoch - 1]),
        };
        let mut sum = 0u64;
        let mut writes = 0u64;
        for &(_, table, key, value) in commits[start..end].iter().rev() {
            let bit = usize::from(table) * 256 + usize::from(key);
            if written[bit / 64] & (1 << (bit % 64)) != 0 {
                continue;
            }
            written[bit / 64] |= 1 << (bit % 64);
            // Before every snapshot, a deleted key and a key never written look the same.
            if epoch == 0 && value.is_none() {
                continue;
            }
            let packed = (u64::from(table) << 24)
                | (u64::from(key) << 16)
                | value.map_or(0, |v| 0x100 | u64::from(v));
            sum = sum.wrapping_add(mix64(packed));
            writes += 1;
        }
        for &(_, table, key, _) in &commits[start..end] {
            let bit = usize::from(table) * 256 + usize::from(key);
            written[bit / 64] = 0;
        }
        if writes > 0 {
            hasher.write_u64(writes);
            hasher.write_u64(sum);
            non_empty += 1;
        }
        if epoch > 0 {
            // Filled backwards: reversed below.
            seen.push(non_empty);
        }
        end = start;
    }
    // `seen` counted the non-empty epochs after each snapshot, newest snapshot first; a
    // snapshot sees the others.
    seen.reverse();
    seen.iter().map(|after| non_empty - after).collect()
}

/// SplitMix64's finalizer: spreads a packed write over all 64 bits before the sum.
fn mix64(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// Calls that never change the model's state, whatever they return: they only read. The
/// linearizability search places such a call as soon as its result agrees (see
/// `check::linearizability`); a property test below holds the model to this list.
pub fn never_changes_state(call: &Call) -> bool {
    matches!(
        call,
        Call::GetSessionInfo { .. }
            | Call::Retrieve { .. }
            | Call::IndexRecordCount { .. }
            | Call::GetSystemParameter { .. }
    )
}

/// Steps the model: the result of `call` made by `thread`, and the next state. Errors leave
/// `state` untouched.
pub fn step(state: &ModelState, thread: usize, call: &Call) -> (Outcome, ModelState) {
    let mut next = state.clone();
    match apply(&mut next, thread, call) {
        Ok(outcome) => (outcome, next),
        Err(error) => (Outcome::err(error), state.clone()),
    }
}

fn apply(s: &mut ModelState, thread: usize, call: &Call) -> Res {
    match call {
        Call::StopService { instance, grbit } => stop(s, *instance, *grbit),
        Call::Term { instance, grbit } => term(s, *instance, *grbit),
        Call::GetSystemParameter {
            instance,
            parameter,
        } => system_parameter(s, *instance, *parameter, None),
        Call::SetSystemParameter {
            instance,
            parameter,
            value,
        } => system_parameter(s, *instance, *parameter, Some(*value)),
        Call::BeginSession { bind } => {
            gate(s, call)?;
            let id = s.bind(thread, Kind::Session, *bind);
            let n = s.created.range((thread, 0)..=(thread, u8::MAX)).count();
            s.created
                .insert((thread, u8::try_from(n).unwrap_or(u8::MAX)), id);
            s.sessions.insert(
                id,
                ModelSession {
                    alive: true,
                    context: None,
                    transaction: None,
                    database_opens: 0,
                },
            );
            Ok(Outcome::Ok)
        }
        _ => session_call(s, thread, call),
    }
}

/// The model's own allowlist: the Jet calls that still work after a full stop, each with the
/// source that says so. Written from the documentation, never read from the engine's table
/// (`JetCall::admission`), so an allowlist bug in the engine makes engine and model disagree.
/// `JetCall` is only the vocabulary of call names here.
pub const ALLOWED_AFTER_STOP: &[(jetsim_engine::JetCall, &str)] = {
    use jetsim_engine::JetCall as J;
    const DOCUMENTED: &str = "JetStopServiceInstance, Remarks: \"Las funciones que todavía se \
                              permiten después de esta llamada son\" (../shared/seed/)";
    &[
        (J::Rollback, DOCUMENTED),
        (J::CloseTable, DOCUMENTED),
        (J::EndSession, DOCUMENTED),
        (J::CloseDatabase, DOCUMENTED),
        (J::DetachDatabase, DOCUMENTED),
        (J::ResetSessionContext, DOCUMENTED),
        (
            J::GetSessionInfo,
            "ESE's source passes the \"ignore stop\" flag (../shared/ESE_FACTS.md, step 5: \
             undocumented); README \"What the stop guarantees\", 4",
        ),
        (
            J::Term,
            "../shared/ESE_FACTS.md, step 5: JetTerm/JetTerm2 still allowed; README, 4 (term/term2)",
        ),
        (
            J::GetSystemParameter,
            "../shared/ESE_FACTS.md, step 5: JetGet/SetSystemParameter still allowed; README, 4",
        ),
        (
            J::SetSystemParameter,
            "../shared/ESE_FACTS.md, step 5: JetGet/SetSystemParameter still allowed; README, 4",
        ),
    ]
};

/// Whether a full stop refuses `call` (`ClientRequestToStopJetService`): every call but the
/// model's allowlist ([`ALLOWED_AFTER_STOP`]) and the stop itself, whose lifecycle rules are
/// its own (a second stop succeeds, Resume is refused: see `stop` below). The one answer to
/// "is this call gated" in the simulator: the model, the rules, the scenario marks and the
/// timeline all come here (through [`Call::is_gated`]).
pub fn is_gated(call: &Call) -> bool {
    let name = call.jet_call();
    !matches!(call, Call::StopService { .. })
        && !ALLOWED_AFTER_STOP
            .iter()
            .any(|&(allowed, _)| allowed == name)
}

/// The gate, for a call on the main instance.
fn gate(s: &ModelState, call: &Call) -> Result<(), E> {
    match s.phase {
        ModelPhase::Running => Ok(()),
        ModelPhase::Stopped if is_gated(call) => Err(E::ClientRequestToStopJetService),
        ModelPhase::Stopped => Ok(()),
        ModelPhase::Terminated => Err(match call {
            Call::BeginSession { .. } => E::InvalidParameter,
            _ => E::InvalidSesid,
        }),
    }
}

fn stop(s: &mut ModelState, instance: InstanceRef, grbit: u32) -> Res {
    const KNOWN: u32 = 0x2 | 0x4 | 0x8 | 0x8000_0000;
    const STOP_AND_EMIT_LOG: u32 = 0x8;
    // StopAndEmitLog is valid only on its own (with Resume too: it cannot be undone).
    let bad_grbit =
        grbit & !KNOWN != 0 || (grbit & STOP_AND_EMIT_LOG != 0 && grbit != STOP_AND_EMIT_LOG);
    match instance {
        InstanceRef::Nil | InstanceRef::Terminated => return Err(E::InvalidParameter),
        InstanceRef::Uninitialized => {
            if !s.uninitialized_alive {
                return Err(E::InvalidParameter);
            }
            if bad_grbit {
                return Err(E::InvalidGrbit);
            }
            // Created, never initialized: "not a running instance".
            return Err(E::InvalidParameter);
        }
        InstanceRef::Main => {}
    }
    if s.phase == ModelPhase::Terminated {
        return Err(E::InvalidParameter);
    }
    if bad_grbit {
        return Err(E::InvalidGrbit);
    }
    if grbit == STOP_AND_EMIT_LOG {
        // Admitted like a parameter call, after a full stop too; a second one is a no-op.
        s.log_stopped = true;
        return Ok(Outcome::Ok);
    }
    if grbit & 0x8000_0000 != 0 {
        if s.phase == ModelPhase::Stopped {
            return Err(E::ClientRequestToStopJetService);
        }
        let named = grbit & 0x6;
        if named == 0 || named & 0x2 != 0 {
            s.defrag_parked = false;
        }
        if named == 0 || named & 0x4 != 0 {
            s.caches_quiesced = false;
        }
        return Ok(Outcome::Ok);
    }
    if grbit == 0 {
        s.phase = ModelPhase::Stopped;
        s.defrag_parked = true;
        s.caches_quiesced = true;
        return Ok(Outcome::Ok);
    }
    if s.phase == ModelPhase::Running {
        if grbit & 0x2 != 0 {
            s.defrag_parked = true;
        }
        if grbit & 0x4 != 0 {
            s.caches_quiesced = true;
        }
    }
    Ok(Outcome::Ok)
}

fn term(s: &mut ModelState, instance: InstanceRef, grbit: u32) -> Res {
    match instance {
        InstanceRef::Nil | InstanceRef::Terminated => return Err(E::InvalidParameter),
        InstanceRef::Uninitialized => {
            if !s.uninitialized_alive {
                return Err(E::InvalidParameter);
            }
            if grbit & !0xF != 0 {
                return Err(E::InvalidGrbit);
            }
            s.uninitialized_alive = false;
            return Ok(Outcome::Terminated {
                dirty: grbit & 0x8 != 0,
            });
        }
        InstanceRef::Main => {}
    }
    if s.phase == ModelPhase::Terminated {
        return Err(E::InvalidParameter);
    }
    if grbit & !0xF != 0 {
        return Err(E::InvalidGrbit);
    }
    let dirty = grbit & 0x8 != 0;
    if !dirty
        && s.sessions
            .values()
            .any(|x| x.alive && x.transaction.is_some())
    {
        return Err(E::TooManyActiveUsers);
    }
    s.phase = ModelPhase::Terminated;
    for session in s.sessions.values_mut() {
        session.alive = false;
    }
    for cursor in s.cursors.values_mut() {
        cursor.alive = false;
    }
    Ok(Outcome::Terminated { dirty })
}

/// `JetGetSystemParameter` (`value` `None`) and `JetSetSystemParameter` on the instance under
/// test. Parameter calls are admitted before init and after a stop, as ESE's are; a stale
/// instance handle is `InvalidParameter`. `VersionStoreMaxVersions` (ESE's
/// `JET_paramMaxVerPages`) is fixed once the instance is initialized (`AlreadyInitialized`);
/// the cache is 8 pages or more; online defrag is 0 or 1. Setting online defrag after a stop
/// does not unpark defragmentation (README, "What the stop guarantees").
fn system_parameter(
    s: &mut ModelState,
    instance: InstanceRef,
    parameter: Parameter,
    value: Option<u64>,
) -> Res {
    match instance {
        InstanceRef::Nil | InstanceRef::Terminated => return Err(E::InvalidParameter),
        // The workload reads and sets parameters of the instance under test only.
        InstanceRef::Uninitialized => return Err(E::InvalidParameter),
        InstanceRef::Main => {}
    }
    if s.phase == ModelPhase::Terminated {
        return Err(E::InvalidParameter);
    }
    let Some(parameters) = s.parameters.as_mut() else {
        // A state made without the run's configuration knows no parameter values.
        return Err(E::InvalidParameter);
    };
    let Some(value) = value else {
        return Ok(Outcome::Parameter(parameters.get(parameter)));
    };
    // The engine's `instance/params.rs` checks the same ranges in the same shape; the model
    // keeps its own copy on purpose, so a wrong range in the engine makes the two disagree.
    match parameter {
        Parameter::CheckpointDepthMaxBytes => parameters.checkpoint_depth_max_bytes = value,
        Parameter::CacheSizePages => {
            if !(CACHE_SIZE_PAGES_MIN..=CACHE_SIZE_PAGES_MAX).contains(&value) {
                return Err(E::InvalidParameter);
            }
            parameters.cache_size_pages = value;
        }
        Parameter::VersionStoreMaxVersions => return Err(E::AlreadyInitialized),
        Parameter::OnlineDefrag => {
            parameters.online_defrag = match value {
                0 => false,
                1 => true,
                _ => return Err(E::InvalidParameter),
            }
        }
    }
    Ok(Outcome::Ok)
}

fn ses_ref(call: &Call) -> Ref {
    call.session().expect("not a session call")
}

fn session_call(s: &mut ModelState, thread: usize, call: &Call) -> Res {
    // The handle must decode and name a live instance.
    let session = match ses_ref(call) {
        Ref::Nil => return Err(E::InvalidSesid),
        Ref::Var(var) => match s.bound(thread, Kind::Session, var) {
            Some(id) => Some(id),
            None => return Err(E::InvalidSesid),
        },
        Ref::Created(n) => match s.created.get(&(thread, n)) {
            Some(&id) => Some(id),
            None => return Err(E::InvalidSesid),
        },
        Ref::PeerCreated { thread: peer, n } => match s.created.get(&(usize::from(peer), n)) {
            Some(&id) => Some(id),
            None => return Err(E::InvalidSesid),
        },
        // The harness resolves peers before recording; an unresolved one is nil.
        Ref::Peer(_) => return Err(E::InvalidSesid),
        // A stale session of the other, running instance: its gate admits, its lookup fails.
        Ref::Foreign => return Err(E::InvalidSesid),
    };
    if s.phase == ModelPhase::Terminated {
        return Err(E::InvalidSesid);
    }
    gate(s, call)?;
    let session = session.expect("bound");
    let entry = &s.sessions[&session];
    if !entry.alive {
        return Err(E::InvalidSesid);
    }
    let exempt = matches!(
        call,
        Call::EndSession { .. }
            | Call::SetSessionContext { .. }
            | Call::ResetSessionContext { .. }
            | Call::GetSessionInfo { .. }
    );
    if let (false, Some((_, owner))) = (exempt, entry.context) {
        if owner != thread {
            return Err(E::SessionSharingViolation);
        }
    }
    session_body(s, thread, session, call)
}

fn level_of(s: &ModelState, session: ObjectId) -> u8 {
    s.sessions[&session]
        .transaction
        .as_ref()
        .map_or(0, |t| u8::try_from(t.levels.len()).expect("at most 7"))
}

/// The database a `db` argument names, which the session must have open.
fn opened_database(s: &ModelState, thread: usize, session: ObjectId, db: Ref) -> Result<(), E> {
    let epoch = match db {
        Ref::Var(var) => s.database_bindings.get(&(thread, var)).copied(),
        Ref::Nil | Ref::Foreign | Ref::Created(_) | Ref::Peer(_) | Ref::PeerCreated { .. } => None,
    };
    match epoch {
        Some(epoch)
            if s.attached
                && epoch == s.database_epoch
                && s.sessions[&session].database_opens > 0 =>
        {
            Ok(())
        }
        _ => Err(E::InvalidDatabaseId),
    }
}

/// The cursor a `table` argument names, which must belong to the session.
fn owned_cursor(
    s: &ModelState,
    thread: usize,
    session: ObjectId,
    table: Ref,
) -> Result<ObjectId, E> {
    let id = match table {
        Ref::Var(var) => s.bound(thread, Kind::Table, var),
        Ref::Nil | Ref::Foreign | Ref::Created(_) | Ref::Peer(_) | Ref::PeerCreated { .. } => None,
    }
    .ok_or(E::InvalidTableId)?;
    let cursor = &s.cursors[&id];
    if !cursor.alive {
        return Err(E::InvalidTableId);
    }
    if cursor.session != session {
        return Err(E::SesidTableIdMismatch);
    }
    Ok(id)
}

fn rollback_level(s: &mut ModelState, session: ObjectId) {
    let level = level_of(s, session);
    debug_assert!(level > 0);
    let entry = s.sessions.get_mut(&session).expect("alive");
    let txn = entry.transaction.as_mut().expect("level > 0");
    txn.levels.pop();
    txn.versions.pop();
    if txn.levels.is_empty() {
        entry.transaction = None;
    }
    s.close_cursors_where(session, |c| c.opened_at_level >= level);
}

/// Would `session` writing `(table, key)` conflict?
fn conflicts(s: &ModelState, session: ObjectId, table: u8, key: u8) -> bool {
    let txn = s.sessions[&session]
        .transaction
        .as_ref()
        .expect("in a transaction");
    let written_by_other = s.sessions.iter().any(|(&id, other)| {
        id != session
            && other.alive
            && other
                .transaction
                .as_ref()
                .is_some_and(|t| t.levels.iter().any(|l| l.contains_key(&(table, key))))
    });
    let committed_since = s
        .commits
        .iter()
        .any(|&(ts, t, k, _)| t == table && k == key && ts > txn.snapshot_ts);
    written_by_other || committed_since
}

/// A write, after every check of its call: it logs its undo record first, so a stopped log
/// refuses it here.
fn write(
    s: &mut ModelState,
    session: ObjectId,
    table: u8,
    key: u8,
    value: Option<u8>,
) -> Result<(), E> {
    if s.log_stopped {
        return Err(E::LogServiceStopped);
    }
    let txn = s
        .sessions
        .get_mut(&session)
        .and_then(|e| e.transaction.as_mut())
        .expect("in a transaction");
    txn.levels
        .last_mut()
        .expect("level")
        .insert((table, key), value);
    *txn.versions.last_mut().expect("level") += 1;
    Ok(())
}

fn write_checks(s: &ModelState, session: ObjectId, table: u8, key: u8) -> Result<(), E> {
    if s.sessions[&session].transaction.is_none() {
        return Err(E::NotInTransaction);
    }
    if conflicts(s, session, table, key) {
        return Err(E::WriteConflict);
    }
    // The engine's reserve: when its store is full it cleans inline, which leaves exactly
    // the live versions, and refuses only if those fill it; so whatever the background
    // cleanup did before, the answer depends on the live versions alone.
    let max_versions = s.parameters.map(|p| p.version_store_max_versions);
    if max_versions.is_some_and(|max| live_versions(s) >= max) {
        return Err(E::VersionStoreOutOfMemory);
    }
    Ok(())
}

/// The versions the engine's version store must keep now, which is what its cleanup leaves:
/// every write of an open transaction, and each committed write some open snapshot predates
/// (a snapshot at or after a commit sees its result, so the versions before it are dead).
fn live_versions(s: &ModelState) -> u64 {
    let uncommitted: u64 = alive_transactions(s)
        .flat_map(|t| t.versions.iter())
        .map(|&versions| u64::from(versions))
        .sum();
    let horizon = alive_transactions(s).map(|t| t.snapshot_ts).min();
    let committed: u64 = horizon.map_or(0, |horizon| {
        s.committed_versions
            .iter()
            .filter(|&&(ts, _)| ts > horizon)
            .map(|&(_, versions)| u64::from(versions))
            .sum()
    });
    uncommitted + committed
}

fn current_key(s: &ModelState, cursor: ObjectId) -> Result<u8, E> {
    match s.cursors[&cursor].position {
        Position::On(key) => Ok(key),
        Position::BeforeFirst | Position::AfterLast => Err(E::NoCurrentRecord),
    }
}

/// A new cursor of `session` on `table`, bound to `thread`'s table variable `bind`, before
/// the first record (JetOpenTable, and JetCreateTable, which returns the table open).
fn open_cursor(s: &mut ModelState, thread: usize, session: ObjectId, table: u8, bind: u8) {
    let opened_at_level = level_of(s, session);
    let id = s.bind(thread, Kind::Table, bind);
    s.cursors.insert(
        id,
        ModelCursor {
            alive: true,
            session,
            table,
            opened_at_level,
            position: Position::BeforeFirst,
        },
    );
}

/// The transactions of live sessions: the versions detach and delete-table must wait for.
fn alive_transactions(s: &ModelState) -> impl Iterator<Item = &ModelTransaction> {
    s.sessions
        .values()
        .filter(|x| x.alive)
        .filter_map(|x| x.transaction.as_ref())
}

/// What one call on a session does to the model. Long on purpose: one arm per session call,
/// so each call's semantics are written in one place and read beside their neighbours'.
fn session_body(s: &mut ModelState, thread: usize, session: ObjectId, call: &Call) -> Res {
    match *call {
        Call::EndSession { .. } => {
            if s.sessions[&session].context.is_some() {
                return Err(E::SessionInUse);
            }
            if level_of(s, session) > 0 && s.log_stopped {
                // Its rollback cannot log its compensation.
                return Err(E::LogServiceStopped);
            }
            while level_of(s, session) > 0 {
                rollback_level(s, session);
            }
            s.close_cursors_where(session, |_| true);
            let entry = s.sessions.get_mut(&session).expect("alive");
            entry.alive = false;
            entry.database_opens = 0;
            Ok(Outcome::Ok)
        }
        Call::SetSessionContext { context, .. } => {
            if context == 0 || context == u64::MAX {
                return Err(E::InvalidParameter);
            }
            let entry = s.sessions.get_mut(&session).expect("alive");
            if entry.context.is_some() {
                return Err(E::SessionContextAlreadySet);
            }
            entry.context = Some((context, thread));
            Ok(Outcome::Ok)
        }
        Call::ResetSessionContext { .. } => {
            let entry = s.sessions.get_mut(&session).expect("alive");
            match entry.context {
                Some((_, owner)) if owner == thread => {
                    entry.context = None;
                    Ok(Outcome::Ok)
                }
                _ => Err(E::SessionContextNotSetByThisThread),
            }
        }
        Call::GetSessionInfo { .. } => {
            let entry = &s.sessions[&session];
            Ok(Outcome::SessionInfo {
                level: level_of(s, session),
                context: entry.context.map(|(c, _)| c),
                open_tables: u32::try_from(s.cursors_of(session).count()).expect("small"),
                open_databases: u32::from(entry.database_opens > 0),
            })
        }
        Call::BeginTransaction { .. } => {
            let level = level_of(s, session);
            if level >= 7 {
                return Err(E::TransTooDeep);
            }
            let snapshot_ts = s.last_commit_ts;
            let entry = s.sessions.get_mut(&session).expect("alive");
            entry.transaction.get_or_insert_with(|| ModelTransaction {
                snapshot_ts,
                levels: Vec::new(),
                versions: Vec::new(),
            });
            let txn = entry.transaction.as_mut().expect("just begun");
            txn.levels.push(BTreeMap::new());
            txn.versions.push(0);
            Ok(Outcome::Ok)
        }
        Call::CommitTransaction { .. } => {
            let level = level_of(s, session);
            if level == 0 {
                return Err(E::NotInTransaction);
            }
            if level == 1 && s.log_stopped {
                // The outermost commit logs its commit record; a nested one logs nothing.
                return Err(E::LogServiceStopped);
            }
            let entry = s.sessions.get_mut(&session).expect("alive");
            let txn = entry.transaction.as_mut().expect("level > 0");
            let top = txn.levels.pop().expect("level > 0");
            let top_versions = txn.versions.pop().expect("level > 0");
            if level == 1 {
                entry.transaction = None;
                s.last_commit_ts += 1;
                let ts = s.last_commit_ts;
                for ((table, key), value) in top {
                    s.commits.push((ts, table, key, value));
                }
                if top_versions > 0 {
                    s.committed_versions.push((ts, top_versions));
                }
                // Versions no open snapshot predates are dead for good (snapshots only
                // get newer).
                let horizon = alive_transactions(s).map(|t| t.snapshot_ts).min();
                let horizon = horizon.unwrap_or(s.last_commit_ts);
                s.committed_versions.retain(|&(ts, _)| ts > horizon);
            } else {
                txn.levels.last_mut().expect("outer level").extend(top);
                *txn.versions.last_mut().expect("outer level") += top_versions;
            }
            for cursor in s.cursors.values_mut() {
                if cursor.alive && cursor.session == session {
                    cursor.opened_at_level = cursor.opened_at_level.min(level - 1);
                }
            }
            Ok(Outcome::Ok)
        }
        Call::Rollback { .. } => {
            if level_of(s, session) == 0 {
                return Err(E::NotInTransaction);
            }
            if s.log_stopped {
                return Err(E::LogServiceStopped);
            }
            rollback_level(s, session);
            Ok(Outcome::Ok)
        }
        Call::OpenDatabase { bind, .. } => {
            if !s.attached {
                return Err(E::DatabaseNotFound);
            }
            s.sessions.get_mut(&session).expect("alive").database_opens += 1;
            s.database_bindings.insert((thread, bind), s.database_epoch);
            Ok(Outcome::Ok)
        }
        Call::CloseDatabase { db, .. } => {
            opened_database(s, thread, session, db)?;
            let entry = s.sessions.get_mut(&session).expect("alive");
            entry.database_opens -= 1;
            if entry.database_opens == 0 {
                s.close_cursors_where(session, |_| true);
            }
            Ok(Outcome::Ok)
        }
        Call::AttachDatabase {
            file: DatabaseFile::Missing,
            ..
        } => {
            // Checked in the engine's order: the transaction, the log (an attach logs its
            // file), then the file itself, which is not there.
            if level_of(s, session) > 0 {
                return Err(E::InTransaction);
            }
            if s.log_stopped {
                return Err(E::LogServiceStopped);
            }
            Err(E::FileNotFound)
        }
        Call::AttachDatabase { .. } => {
            if level_of(s, session) > 0 {
                return Err(E::InTransaction);
            }
            if s.attached {
                return Ok(Outcome::Attached { already: true });
            }
            if s.log_stopped {
                return Err(E::LogServiceStopped);
            }
            s.attached = true;
            s.database_epoch += 1;
            Ok(Outcome::Attached { already: false })
        }
        Call::DetachDatabase { .. } => {
            if level_of(s, session) > 0 {
                return Err(E::InTransaction);
            }
            if !s.attached {
                return Err(E::DatabaseNotFound);
            }
            let open = s.sessions.values().any(|x| x.alive && x.database_opens > 0);
            let cursors = s.cursors.values().any(|c| c.alive);
            if open || cursors {
                return Err(E::DatabaseInUse);
            }
            // ESE's detach cleans the version store and refuses while the database still has
            // versions: uncommitted writes of any session, or committed ones an open
            // transaction's snapshot predates (its reads need them).
            let alive_transactions = || alive_transactions(s);
            let uncommitted = alive_transactions().any(|t| t.levels.iter().any(|l| !l.is_empty()));
            let oldest_snapshot = alive_transactions().map(|t| t.snapshot_ts).min();
            let needed = oldest_snapshot.is_some_and(|ts| s.commits.iter().any(|c| c.0 > ts));
            if uncommitted || needed {
                return Err(E::DatabaseInUse);
            }
            if s.log_stopped {
                return Err(E::LogServiceStopped);
            }
            s.attached = false;
            Ok(Outcome::Ok)
        }
        Call::Defragment { db, grbit, .. } => {
            if grbit != 1 && grbit != 2 {
                return Err(E::InvalidGrbit);
            }
            opened_database(s, thread, session, db)?;
            Ok(Outcome::Ok)
        }
        Call::OpenTable {
            db, table, bind, ..
        } => {
            opened_database(s, thread, session, db)?;
            if !s.tables.contains(&table) {
                return Err(E::ObjectNotFound);
            }
            open_cursor(s, thread, session, table, bind);
            Ok(Outcome::Ok)
        }
        // DDL is not versioned (README): a table exists from its creation's return to its
        // deletion's, whatever the transaction does; both are durable, so both log, after
        // their own checks. JetCreateTable returns the new table open.
        Call::CreateTable {
            db, table, bind, ..
        } => {
            opened_database(s, thread, session, db)?;
            if s.tables.contains(&table) {
                return Err(E::TableDuplicate);
            }
            if s.log_stopped {
                return Err(E::LogServiceStopped);
            }
            s.tables.insert(table);
            open_cursor(s, thread, session, table, bind);
            Ok(Outcome::Ok)
        }
        // JetDeleteTable: refused while any session has the table open, or while the version
        // store still holds its versions (uncommitted writes, or committed ones an open
        // snapshot predates), as detach is for the whole database.
        Call::DeleteTable { db, table, .. } => {
            opened_database(s, thread, session, db)?;
            if !s.tables.contains(&table) {
                return Err(E::ObjectNotFound);
            }
            if s.cursors.values().any(|c| c.alive && c.table == table) {
                return Err(E::TableInUse);
            }
            let alive_transactions = || alive_transactions(s);
            let uncommitted = alive_transactions()
                .any(|t| t.levels.iter().any(|l| l.keys().any(|&(t, _)| t == table)));
            let oldest_snapshot = alive_transactions().map(|t| t.snapshot_ts).min();
            let needed = oldest_snapshot
                .is_some_and(|ts| s.commits.iter().any(|c| c.0 > ts && c.1 == table));
            if uncommitted || needed {
                return Err(E::TableInUse);
            }
            if s.log_stopped {
                return Err(E::LogServiceStopped);
            }
            s.tables.remove(&table);
            s.commits.retain(|c| c.1 != table);
            Ok(Outcome::Ok)
        }
        Call::CloseTable { table, .. } => {
            let cursor = owned_cursor(s, thread, session, table)?;
            s.cursors.get_mut(&cursor).expect("alive").alive = false;
            Ok(Outcome::Ok)
        }
        Call::Insert {
            table, key, value, ..
        } => {
            let cursor = owned_cursor(s, thread, session, table)?;
            check_record_size(key, Some(value))?;
            let t = s.cursors[&cursor].table;
            write_checks(s, session, t, key)?;
            if s.visible_value(session, t, key).is_some() {
                return Err(E::KeyDuplicate);
            }
            write(s, session, t, key, Some(value))?;
            s.cursors.get_mut(&cursor).expect("alive").position = Position::On(key);
            Ok(Outcome::Ok)
        }
        // Replace and delete differ only in what they write at the cursor's record. Insert
        // (above) takes the same steps, kept apart because it writes at its own key, wants
        // that key absent and moves the cursor there.
        Call::Replace { table, .. } | Call::Delete { table, .. } => {
            let new_value = match *call {
                Call::Replace { value, .. } => Some(value),
                _ => None,
            };
            let cursor = owned_cursor(s, thread, session, table)?;
            let key = current_key(s, cursor)?;
            if new_value.is_some() {
                check_record_size(key, new_value)?;
            }
            let t = s.cursors[&cursor].table;
            write_checks(s, session, t, key)?;
            if s.visible_value(session, t, key).is_none() {
                return Err(E::RecordDeleted);
            }
            write(s, session, t, key, new_value)?;
            Ok(Outcome::Ok)
        }
        Call::Seek {
            table, key, mode, ..
        } => {
            let cursor = owned_cursor(s, thread, session, table)?;
            check_record_size(key, None)?;
            let t = s.cursors[&cursor].table;
            let found = if s.visible_value(session, t, key).is_some() {
                Some(key)
            } else {
                match mode {
                    Seek::Equal => None,
                    Seek::GreaterOrEqual => {
                        s.visible(session, t).range(key..).next().map(|(k, _)| *k)
                    }
                    Seek::LessOrEqual => s
                        .visible(session, t)
                        .range(..key)
                        .next_back()
                        .map(|(k, _)| *k),
                }
            };
            let found = found.ok_or(E::RecordNotFound)?;
            s.cursors.get_mut(&cursor).expect("alive").position = Position::On(found);
            Ok(Outcome::Ok)
        }
        Call::Move { table, to, .. } => {
            let cursor = owned_cursor(s, thread, session, table)?;
            let visible = s.visible(session, s.cursors[&cursor].table);
            let keys: Vec<u8> = visible.keys().copied().collect();
            let found = match (to, s.cursors[&cursor].position) {
                (Move::First, _) | (Move::Next, Position::BeforeFirst) => keys.first().copied(),
                (Move::Last, _) | (Move::Previous, Position::AfterLast) => keys.last().copied(),
                (Move::Next, Position::On(k)) => keys.iter().copied().find(|&x| x > k),
                (Move::Previous, Position::On(k)) => keys.iter().rev().copied().find(|&x| x < k),
                (Move::Next, Position::AfterLast) | (Move::Previous, Position::BeforeFirst) => None,
            };
            let found = found.ok_or(E::NoCurrentRecord)?;
            s.cursors.get_mut(&cursor).expect("alive").position = Position::On(found);
            Ok(Outcome::Ok)
        }
        Call::Retrieve { table, .. } => {
            let cursor = owned_cursor(s, thread, session, table)?;
            let key = current_key(s, cursor)?;
            let value = s
                .visible_value(session, s.cursors[&cursor].table, key)
                .ok_or(E::RecordDeleted)?;
            Ok(Outcome::Record { key, value })
        }
        Call::IndexRecordCount {
            table, max_records, ..
        } => {
            let cursor = owned_cursor(s, thread, session, table)?;
            let visible = s.visible(session, s.cursors[&cursor].table).len() as u64;
            // ESE's crecMax: 0 counts everything.
            Ok(Outcome::Count(match max_records {
                0 => visible,
                limit => visible.min(limit),
            }))
        }
        Call::BeginSession { .. }
        | Call::StopService { .. }
        | Call::Term { .. }
        | Call::GetSystemParameter { .. }
        | Call::SetSystemParameter { .. } => {
            unreachable!("handled before")
        }
    }
}

/// `index_record_count` is long-running: it lets go of the instance lock every few records
/// (and aborts with `ClientRequestToStopJetService` once a stop has begun, which the gate's
/// rule above already allows: the call is then placed after the stop). Its count is modelled
/// as one atomic read of what the session sees, which is what it is whenever that view
/// cannot change between its steps: under few records (one step), or inside the session's
/// own transaction (a snapshot) with no other thread writing through the same session. The
/// workload keeps to those two cases (`workload::WIDE_KEY_RANGE`).
const _: () = assert!(
    (crate::workload::WIDE_KEY_RANGE as u64)
        <= jetsim_engine::api::records::RECORD_COUNT_STEP_RECORDS
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{worker_call, worker_call_in, Reach};
    use proptest::prelude::*;

    fn any_call() -> impl Strategy<Value = Call> {
        prop_oneof![
            8 => worker_call(),
            // Every switch on: parameters, DDL, wide keys and large values.
            4 => worker_call_in(Reach {
                key_range: 40,
                large_values: true,
                extra_stops: true,
                racing_terms: true,
                parameters: true,
                detach_race: true,
                ddl: true,
                shared_contexts: true,
                long_transactions: true,
                deep_nesting: true,
                defrag_at_stop: true,
            }),
            1 => (prop_oneof![Just(InstanceRef::Main), Just(InstanceRef::Nil), Just(InstanceRef::Uninitialized)],
                  prop_oneof![Just(0u32), Just(2), Just(4), Just(0x8000_0000), Just(1)])
                .prop_map(|(instance, grbit)| Call::StopService { instance, grbit }),
            1 => (prop_oneof![Just(InstanceRef::Main), Just(InstanceRef::Uninitialized)], prop_oneof![Just(2u32), Just(8), Just(0x20)])
                .prop_map(|(instance, grbit)| Call::Term { instance, grbit }),
        ]
    }

    proptest! {
        /// The model's own contract: an error result leaves the state unchanged, so does
        /// any result of a call `never_changes_state` lists, and a success is deterministic.
        #[test]
        fn errors_leave_the_state_unchanged(calls in proptest::collection::vec((0usize..3, any_call()), 1..80), small_store in any::<bool>()) {
            let mut state = ModelState::initial(&[(0, 1), (3, 4), (30, 200)]);
            state.parameters = Some(ModelParameters {
                checkpoint_depth_max_bytes: 4096,
                cache_size_pages: 16,
                // A small store refuses writes with VersionStoreOutOfMemory too.
                version_store_max_versions: if small_store { 3 } else { 1 << 16 },
                online_defrag: true,
            });
            for (thread, call) in &calls {
                let (outcome, next) = step(&state, *thread, call);
                if !outcome.is_ok() {
                    prop_assert_eq!(&next, &state, "{:?} failed with {:?} but changed the state", call, outcome);
                }
                if never_changes_state(call) {
                    prop_assert_eq!(&next, &state, "{:?} returned {:?} and changed the state", call, outcome);
                }
                let (again, next_again) = step(&state, *thread, call);
                prop_assert_eq!(&again, &outcome);
                prop_assert_eq!(&next_again, &next);
                state = next;
            }
        }
    }

    #[test]
    fn snapshot_isolation_in_the_model() {
        let s = [0, 1]
            .iter()
            .fold(ModelState::initial(&[(0, 1)]), |state, &thread| {
                opened(&state, thread)
            });
        let ses = Ref::Var(0);
        let script = [
            (1, Call::BeginTransaction { ses }),
            (0, Call::BeginTransaction { ses }),
            (
                0,
                Call::Insert {
                    ses,
                    table: Ref::Var(0),
                    key: 2,
                    value: 9,
                },
            ),
            (0, Call::CommitTransaction { ses: Ref::Var(0) }),
        ];
        let mut state = s;
        for (thread, call) in &script {
            let (outcome, next) = step(&state, *thread, call);
            assert_eq!(outcome, Outcome::Ok, "{call:?}");
            state = next;
        }
        let count = Call::IndexRecordCount {
            ses: Ref::Var(0),
            table: Ref::Var(0),
            max_records: 0,
        };
        assert_eq!(
            step(&state, 1, &count).0,
            Outcome::Count(1),
            "snapshot predates the insert"
        );
        assert_eq!(step(&state, 0, &count).0, Outcome::Count(2));
        let conflict = Call::Insert {
            ses: Ref::Var(0),
            table: Ref::Var(0),
            key: 2,
            value: 1,
        };
        assert_eq!(step(&state, 1, &conflict).0, Outcome::err(E::WriteConflict));
    }

    fn observable(state: &ModelState) -> u64 {
        use std::hash::Hasher;
        let mut hasher = std::hash::DefaultHasher::new();
        state.hash_observable(&mut hasher);
        hasher.finish()
    }

    /// `thread` begins a session and a transaction, writes `writes`, and commits.
    fn committed(state: &ModelState, thread: usize, writes: &[(u8, u8)]) -> ModelState {
        ended(
            state,
            thread,
            writes,
            Call::CommitTransaction { ses: Ref::Var(0) },
        )
    }

    /// `thread`'s steps, each of which must succeed.
    fn stepped(state: &ModelState, thread: usize, script: &[Call]) -> ModelState {
        script.iter().fold(state.clone(), |state, call| {
            let (outcome, next) = step(&state, thread, call);
            assert_eq!(outcome, Outcome::Ok, "{call:?}");
            next
        })
    }

    /// `thread` begins session 0 and opens the database and table `t0` in it (variables 0).
    fn opened(state: &ModelState, thread: usize) -> ModelState {
        let (ses, var) = (Ref::Var(0), Ref::Var(0));
        let begin = Call::BeginSession { bind: 0 };
        let open_database = Call::OpenDatabase { ses, bind: 0 };
        let (db, table, bind) = (var, 0, 0);
        let open_table = Call::OpenTable {
            ses,
            db,
            table,
            bind,
        };
        stepped(state, thread, &[begin, open_database, open_table])
    }

    /// [`committed`], ending the transaction with `end`.
    fn ended(state: &ModelState, thread: usize, writes: &[(u8, u8)], end: Call) -> ModelState {
        let ses = Ref::Var(0);
        let mut script = vec![Call::BeginTransaction { ses }];
        for &(key, value) in writes {
            script.push(Call::Insert {
                ses,
                table: Ref::Var(0),
                key,
                value,
            });
        }
        script.push(end);
        stepped(&opened(state, thread), thread, &script)
    }

    #[test]
    fn a_write_finds_room_unless_the_live_versions_fill_the_store() {
        // Goal: the version store's limit counts what a full store's cleanup leaves: every
        // write of an open transaction (a record written twice counts twice) and the
        // committed writes an open snapshot predates; no other committed write.
        let mut start = ModelState::initial(&[]);
        start.parameters = Some(ModelParameters {
            checkpoint_depth_max_bytes: 0,
            cache_size_pages: 16,
            version_store_max_versions: 2,
            online_defrag: false,
        });
        let ses = Ref::Var(0);
        let insert = |key| Call::Insert {
            ses,
            table: Ref::Var(0),
            key,
            value: 1,
        };
        let replace = || Call::Replace {
            ses,
            table: Ref::Var(0),
            value: 2,
        };
        let begin = || Call::BeginTransaction { ses };
        let full = Outcome::err(E::VersionStoreOutOfMemory);
        // One transaction writes a record twice: two versions, the store is full.
        let twice = stepped(&opened(&start, 0), 0, &[begin(), insert(1), replace()]);
        assert_eq!(step(&twice, 0, &insert(2)).0, full);
        // Committed with no snapshot open, its versions are dead: room again.
        let commit = || Call::CommitTransaction { ses };
        let dead = stepped(&twice, 0, &[commit(), begin()]);
        assert_eq!(step(&dead, 0, &insert(2)).0, Outcome::Ok);
        // The same commit while another transaction's snapshot predates it: still live.
        let reader = stepped(&opened(&start, 1), 1, &[begin()]);
        let kept = stepped(
            &opened(&reader, 0),
            0,
            &[begin(), insert(1), replace(), commit()],
        );
        let writer = stepped(&kept, 0, &[begin()]);
        assert_eq!(step(&writer, 0, &insert(2)).0, full);
        // The reader's rollback lets them go.
        let released = stepped(&writer, 1, &[Call::Rollback { ses }]);
        assert_eq!(step(&released, 0, &insert(2)).0, Outcome::Ok);
        // A nested commit keeps its versions in the transaction; a rollback drops them.
        let nested = stepped(
            &opened(&start, 0),
            0,
            &[begin(), insert(1), begin(), insert(2)],
        );
        let merged = stepped(&nested, 0, &[commit()]);
        assert_eq!(step(&merged, 0, &insert(3)).0, full);
        let dropped = stepped(&nested, 0, &[Call::Rollback { ses }]);
        assert_eq!(step(&dropped, 0, &insert(3)).0, Outcome::Ok);
    }

    #[test]
    fn states_no_call_can_tell_apart_hash_alike() {
        let start = ModelState::initial(&[(0, 1)]);
        // Two commits of different keys, in either order, with no snapshot between.
        let one_two = committed(&committed(&start, 1, &[(2, 2)]), 2, &[(3, 3)]);
        let two_one = committed(&committed(&start, 2, &[(3, 3)]), 1, &[(2, 2)]);
        assert_ne!(one_two, two_one);
        assert_eq!(observable(&one_two), observable(&two_one));
        // An empty commit is as good as a rollback.
        let empty = committed(&start, 3, &[]);
        let rolled_back = ended(&start, 3, &[], Call::Rollback { ses: Ref::Var(0) });
        assert_ne!(empty.last_commit_ts, rolled_back.last_commit_ts);
        assert_eq!(observable(&empty), observable(&rolled_back));
        let after = |state: &ModelState| committed(&committed(state, 1, &[(2, 2)]), 2, &[(3, 3)]);
        assert_eq!(observable(&after(&empty)), observable(&after(&rolled_back)));
        // Different values are told apart.
        let other = committed(&committed(&start, 1, &[(2, 5)]), 2, &[(3, 3)]);
        assert_ne!(observable(&other), observable(&one_two));
    }

    #[test]
    fn a_snapshot_between_two_commits_tells_their_orders_apart() {
        let start = ModelState::initial(&[(0, 1)]);
        let snapshot = |state: &ModelState| {
            let begin = Call::BeginTransaction { ses: Ref::Var(0) };
            stepped(&opened(state, 5), 5, &[begin])
        };
        // Thread 5's transaction sees the first commit and not the second.
        let one_then_two = committed(&snapshot(&committed(&start, 1, &[(2, 2)])), 2, &[(3, 3)]);
        let two_then_one = committed(&snapshot(&committed(&start, 2, &[(3, 3)])), 1, &[(2, 2)]);
        assert_ne!(observable(&one_then_two), observable(&two_then_one));
    }

    /// `state` with every part copied out: no part shared, no digest kept.
    fn unshared(state: &ModelState) -> ModelState {
        fn copy<T: Clone>(part: &Shared<T>) -> Shared<T> {
            Shared::new(T::clone(part))
        }
        ModelState {
            bindings: copy(&state.bindings),
            created: copy(&state.created),
            database_bindings: copy(&state.database_bindings),
            sessions: copy(&state.sessions),
            cursors: copy(&state.cursors),
            objects_created: copy(&state.objects_created),
            commits: copy(&state.commits),
            tables: copy(&state.tables),
            ..state.clone()
        }
    }

    #[test]
    fn a_written_part_is_hashed_anew() {
        let start = opened(&ModelState::initial(&[(0, 1)]), 0);
        let digest = observable(&start);
        // A step from a state whose parts keep their digests copies the parts it writes.
        let begun = stepped(&start, 0, &[Call::BeginTransaction { ses: Ref::Var(0) }]);
        assert_ne!(observable(&begun), digest);
        assert_eq!(observable(&begun), observable(&unshared(&begun)));
        assert_eq!(observable(&start), digest, "the parent keeps its parts");
        // A part no other state shares is written in place, and forgets its digest.
        let mut alone = unshared(&start);
        assert_eq!(observable(&alone), digest);
        alone.tables.insert(7);
        alone
            .sessions
            .values_mut()
            .for_each(|s| s.database_opens += 1);
        assert_ne!(observable(&alone), digest);
        assert_eq!(observable(&alone), observable(&unshared(&alone)));
        assert_eq!(alone, unshared(&alone));
        assert_ne!(alone, start);
    }
}
