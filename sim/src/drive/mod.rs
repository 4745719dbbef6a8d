//! What runs seeds: [`simulation`] takes one seed end to end (configuration, workload, run,
//! check); [`campaign`] runs many in parallel with a progress bar and a report; [`sweep`]
//! crashes each seed's run at every one of its disk operations in turn; [`scenario`] runs the
//! named scenario files of the top-level `scenarios/` folder.

pub mod campaign;
pub mod scenario;
pub mod simulation;
pub mod sweep;
