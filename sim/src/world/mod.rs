//! Where a workload runs: the engine on shuttle's controlled scheduler, over a simulated disk.
//!
//! The engine's `ShuttleRuntime` (`jetsim_engine::runtime`, feature `shuttle`) gives it
//! shuttle's locks, atomics and threads; [`harness`] sets up the instance on the simulated
//! disk, runs one program per simulated thread, taps what the disk durably holds, crashes and
//! recovers ([`power_cut`] places power cuts at the acknowledgements and writes it sees),
//! audits every durable checkpoint against the database file ([`checkpoint_audit`]), meters
//! the version store's memory ([`memory_meter`]);
//! [`panic_hook`] keeps shuttle's panic output to shuttle's own executions.

pub mod checkpoint_audit;
pub mod harness;
pub mod memory_meter;
pub mod panic_hook;
pub mod power_cut;
