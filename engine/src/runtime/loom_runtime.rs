//! [`Runtime`](super::Runtime) on loom 0.7 (feature `loom`): every lock, notify, atomic
//! operation and thread start is a point where loom's scheduler may switch threads, so a model
//! (`jetsim-models`) explores the engine's interleavings.
//!
//! Only usable inside `loom::model` (loom's primitives panic outside an execution).

implement_runtime! {
    /// loom's threads and `loom::sync`. Adds no behaviour: a lock is a lock, a notify is a
    /// notify.
    LoomRuntime on loom
}
