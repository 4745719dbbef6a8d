//! jetsim-models: exhaustive (loom) models of the jetsim engine's stop protocol.
//!
//! The engine takes its locks, condition variables, atomics and threads from a
//! [`jetsim_engine::Runtime`]. This crate provides [`LoomRuntime`], which maps every one of
//! them onto loom 0.7's instrumented primitives, so `Jet::<LoomRuntime>` runs the engine's own
//! code (the gate, the stop protocol, term, the background worker) under loom's scheduler,
//! which explores every interleaving of the model's threads (up to a preemption bound where
//! the full space is too large).
//!
//! The models themselves live in `tests/loom_stop.rs`. Each creates its engine inside the
//! `loom::model` closure, races Jet calls against `stop_service_instance`, and asserts the
//! protocol's properties: a call admitted by the gate finishes before the stop returns, a call
//! made after it is refused with `ClientRequestToStopJetService`, the allowlisted calls keep
//! working, term and stop never deadlock. The same models are run against planted bugs
//! ([`jetsim_engine::Mutant`], enabled by the engine's `mutants` feature, which this crate
//! turns on) to show that loom finds each of them.

pub mod loom_runtime;

pub use loom_runtime::LoomRuntime;
