//! jetsim-models: exhaustive (loom) models of the jetsim engine's stop protocol, and the
//! mutation catalogue.
//!
//! The engine takes its locks, condition variables, atomics and threads from a
//! [`jetsim_engine::Runtime`]. With its `loom` feature, which this crate turns on, the engine
//! provides [`LoomRuntime`], which maps every one of them onto loom 0.7's instrumented
//! primitives, so `Jet::<LoomRuntime>` runs the engine's own code (the gate, the stop
//! protocol, term, the background worker) under loom's scheduler, which explores every
//! interleaving of the model's threads (up to a preemption bound where the full space is too
//! large).
//!
//! The models live in [`stop_models`]. Each creates its engine inside the `loom::model`
//! closure, races Jet calls against `stop_service_instance`, and asserts the protocol's
//! properties: a call admitted by the gate finishes before the stop returns, a call made after
//! it is refused with `ClientRequestToStopJetService`, the allowlisted calls keep working, term
//! and stop never deadlock. [`stop_models::StopModel::check`] runs one with a set of planted
//! bugs ([`jetsim_engine::Mutant`], enabled by the engine's `mutants` feature, which this crate
//! turns on) and returns the executions explored or the first failing one;
//! `tests/loom_stop.rs` pins those numbers.
//!
//! [`catalogue`] names, for every planted bug, the checker that catches it (a loom model, a
//! rule of the `jetsim` simulator, or the engine's crash tests); `tests/catalogue.rs` holds
//! it to that, and `cargo run --release -p jetsim-models --bin mutants` prints the table with
//! runs to first detection.

pub mod catalogue;
pub mod stop_models;

// The runtime lives with the other two in the engine (`jetsim_engine::runtime`, feature `loom`);
// re-exported so the models keep naming `crate::LoomRuntime`.
pub use jetsim_engine::LoomRuntime;
