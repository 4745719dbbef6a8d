//! What runs seeds, and the handler of each `jetsim` command: [`simulation`] takes one seed
//! end to end (configuration, workload, run, check); [`campaign`] runs many in parallel with a
//! progress bar and a report (`explore`, `replay`); [`sweep`] crashes each seed's run at every
//! one of its disk operations in turn; [`scenario`] runs the named scenario files of the
//! top-level `scenarios/` folder; [`regression`] shrinks a failing seed into one (`shrink`);
//! [`merge`] joins shard reports.

pub mod campaign;
pub mod merge;
pub mod regression;
pub mod scenario;
pub mod simulation;
pub mod sweep;
