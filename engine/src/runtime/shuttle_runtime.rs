//! [`Runtime`](super::Runtime) on shuttle's controlled threads and primitives (feature
//! `shuttle`): every lock, wait, notify, atomic access and yield is a scheduling point
//! shuttle's scheduler decides, so a seed of the simulator (`jetsim`) names one interleaving
//! of the engine's own code and replays it exactly.
//!
//! Only usable inside a shuttle execution (`shuttle::Runner::run`, `shuttle::check_*`): outside
//! one, shuttle's primitives panic.

implement_runtime! {
    /// Shuttle's threads and `shuttle::sync`.
    ShuttleRuntime on shuttle
}
