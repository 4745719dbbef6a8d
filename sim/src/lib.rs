//! jetsim: the deterministic simulator of concurrent Jet calls racing
//! `JetStopServiceInstance`.
//!
//! The engine (`jetsim-engine`) takes its locks, condition variables, atomics and threads from
//! a [`jetsim_engine::Runtime`]; this crate runs it on [`ShuttleRuntime`] (the engine's, feature
//! `shuttle`), which puts the engine's own code on shuttle's controlled scheduler, so every
//! interleaving is chosen by a seed and replays exactly. Each seed draws a configuration and a
//! workload, runs it on the engine and checks what the harness observed against an
//! independent reference model.
//!
//! The folders follow one seed's path (`ARCHITECTURE.md` at the repository root walks it):
//!
//! - [`workload`]: what a seed means: the run's configuration ([`workload::config`]), the
//!   calls each simulated thread makes, and the shrinker that turns a failing seed into a
//!   regression scenario ([`workload::shrink`]).
//! - [`world`]: where a workload runs: the harness that sets up the instance on the simulated
//!   disk, taps its writes, crashes and recovers it ([`world::harness`]), and the panic hook that keeps shuttle's noise to shuttle's runs.
//! - [`history`]: what the harness observed, every call's invocation and response.
//! - [`model`]: the reference model of the Jet API the checkers compare against.
//! - [`check`]: the rules a run must keep, decided from the history, the model and the disk.
//! - [`report`]: what a person or a CI reads: the JSON/JUnit report, the state transitions as
//!   text ([`report::transitions`]) and the HTML timeline ([`report::timeline`]).
//! - [`drive`]: what runs seeds: one seed end to end ([`drive::simulation`]), the campaign
//!   over many, the crash sweep and named scenarios (files in the top-level `scenarios/`).

pub mod check;
pub mod drive;
pub mod history;
pub mod model;
pub mod report;
pub mod workload;
pub mod world;

// Short paths (`jetsim::campaign`, `jetsim::timeline`, ...), which the tests, benches and
// models name these modules by.
pub use drive::{campaign, scenario, simulation, sweep};
pub use report::{timeline, transitions};
pub use workload::{config, shrink};
pub use world::{harness, panic_hook};

// The runtime lives with the other two in the engine (`jetsim_engine::runtime`); re-exported
// so the harness and tests keep naming `jetsim::ShuttleRuntime`.
pub use jetsim_engine::ShuttleRuntime;
