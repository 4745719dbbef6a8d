//! jetsim-engine: a small ESE-style storage engine (the Jet API) whose clock, storage and
//! threads come from outside, so the same code runs on real files and OS threads, under loom,
//! and under a seeded simulator.
//!
//! Layout follows the stack:
//! - [`api`]: the Jet calls on handles ([`Jet`]), the allowlist, the stop protocol.
//! - [`instance`]: the gate, the background worker, sessions, cursors, status.
//! - [`transaction`]: the version store (snapshot isolation, conflicts, undo).
//! - [`storage`]: pages, B+trees, the buffer manager, the write-ahead log, the checkpoint.
//! - [`env`] and [`runtime`]: the boundary (clock, I/O, threads).
//! - [`error`]: the one mapping from failures to JET_err codes.

pub mod api;
pub mod env;
pub mod error;
pub mod instance;
pub mod marks;
pub mod runtime;
pub mod storage;
pub mod transaction;

pub use api::calls::JetCall;
pub use api::database::{defrag_grbit, AttachOutcome};
pub use api::handles::{DatabaseHandle, InstanceHandle, SessionHandle, TableHandle};
pub use api::instance::{term_grbit, TermOutcome};
pub use api::observe::{Observation, ObservedCursor, ObservedSession};
pub use api::records::{MoveTo, SeekMode};
pub use api::session::SessionInfo;
pub use api::stop::stop_grbit;
pub use api::Jet;
pub use env::io::{CrashFaults, FaultPlan, InjectedFault, SplitMix64};
pub use env::Environment;
pub use error::{JetError, JetResult};
pub use instance::gate::{Admission, Phase};
pub use instance::mutations::{Mutant, Mutations};
pub use instance::params::{InstanceOptions, SystemParameter, SystemParameters};
pub use instance::status::{CleanupStatus, DefragStatus, InstanceStatus, StopRecord, StopStep};
pub use instance::Position;
pub use marks::{Mark, Marks};
#[cfg(feature = "loom")]
pub use runtime::LoomRuntime;
#[cfg(feature = "shuttle")]
pub use runtime::ShuttleRuntime;
pub use runtime::{Runtime, StdRuntime};
pub use storage::{Activity, Failure, RecoveryReport};
