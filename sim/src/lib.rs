//! jetsim: the deterministic simulator of concurrent Jet calls racing
//! `JetStopServiceInstance`.
//!
//! The engine (`jetsim-engine`) takes its locks, condition variables, atomics and threads from
//! a [`jetsim_engine::Runtime`]; this crate supplies [`ShuttleRuntime`], which runs the engine's
//! own code on shuttle's controlled scheduler, so every interleaving is chosen by a seed and
//! replays exactly. The tests in `sim/tests/` use it to check the stop rule (no gated call runs
//! after a stop returned) at sizes exhaustive model checking (loom, in `jetsim-models`) cannot
//! reach, with random and PCT schedulers, and prove their teeth against planted bugs.
//!
//! A later issue grows this crate into a seeded campaign: generated call sequences checked
//! against a reference model of the Jet API.
//!
//! Named scenarios ([`scenario`], files in the top-level `scenarios/`), their state
//! transitions as text ([`transitions`], snapshotted in `snapshots/`), the shrinker that turns
//! a failing seed into a regression scenario ([`shrink`]) and the HTML timeline of a run
//! ([`timeline`]) make failures small, named and readable. [`sweep`] crashes each seed's run
//! at every one of its disk operations in turn.

pub mod campaign;
pub mod check;
pub mod config;
pub mod harness;
pub mod history;
pub mod model;
pub mod panic_hook;
pub mod report;
pub mod scenario;
pub mod shrink;
pub mod shuttle_runtime;
pub mod simulation;
pub mod sweep;
pub mod timeline;
pub mod transitions;
pub mod workload;

pub use shuttle_runtime::ShuttleRuntime;
