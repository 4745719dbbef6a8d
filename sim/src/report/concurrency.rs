//! How concurrent a run was, from the harness's own history (never the engine's counters):
//! the calls inside the engine at once, and the stops that met calls in flight.
//!
//! Every call's invocation and response carry one global step sequence shared by all
//! simulated threads, so two calls whose `[invoked, returned)` spans overlap had their bodies
//! interleaved inside the engine. A call the gate refused (`ClientRequestToStopJetService`)
//! never ran a body and is not counted. The harness sees spans, not the engine's locks: a call
//! waiting inside the engine for a latch or for I/O counts as in flight, as it does for the
//! stop's drain.

use crate::history::{Event, History};
use crate::workload::Call;
use jetsim_engine::JetError;

/// Concurrency totals over one run or many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overlap {
    /// Calls admitted (not refused at the gate).
    pub admitted_calls: u64,
    /// Over admitted calls: how many admitted calls were inside the engine when it was
    /// invoked, itself included (the mean is this over `admitted_calls`).
    pub in_engine_sum: u64,
    /// The most admitted calls inside the engine at once.
    pub in_engine_max: u64,
    /// Stop calls made.
    pub stops: u64,
    /// Stops invoked while two or more gated calls were inside the engine that returned
    /// before the stop did: calls the stop's drain had to wait for.
    pub stops_meeting_two_or_more: u64,
}

impl Overlap {
    /// The run's concurrency, from its history.
    pub fn of(history: &History) -> Overlap {
        let admitted: Vec<&Event> = history
            .events
            .iter()
            .filter(|event| {
                !event
                    .outcome
                    .is_err_named(JetError::ClientRequestToStopJetService)
            })
            .collect();
        let mut overlap = Overlap {
            admitted_calls: admitted.len() as u64,
            ..Overlap::default()
        };
        for event in &admitted {
            let inside = admitted
                .iter()
                .filter(|other| other.invoked <= event.invoked && event.invoked < other.returned)
                .count() as u64;
            overlap.in_engine_sum += inside;
            overlap.in_engine_max = overlap.in_engine_max.max(inside);
        }
        for stop in admitted
            .iter()
            .filter(|event| matches!(event.call, Call::StopService { .. }))
        {
            overlap.stops += 1;
            let met = admitted
                .iter()
                .filter(|call| {
                    call.call.is_gated()
                        && call.invoked < stop.invoked
                        && stop.invoked < call.returned
                        && call.returned < stop.returned
                })
                .count();
            if met >= 2 {
                overlap.stops_meeting_two_or_more += 1;
            }
        }
        overlap
    }

    /// Adds another run's totals.
    pub fn add(&mut self, other: Overlap) {
        self.admitted_calls += other.admitted_calls;
        self.in_engine_sum += other.in_engine_sum;
        self.in_engine_max = self.in_engine_max.max(other.in_engine_max);
        self.stops += other.stops;
        self.stops_meeting_two_or_more += other.stops_meeting_two_or_more;
    }

    /// The summary line's text.
    pub fn line(&self) -> String {
        let mean = self.in_engine_sum as f64 / self.admitted_calls.max(1) as f64;
        format!(
            "mean {mean:.2}, max {} (admitted calls invoked and not yet returned, at each one's \
             invocation); {} of {} stops met two or more gated calls in flight that left before \
             they returned",
            self.in_engine_max, self.stops_meeting_two_or_more, self.stops
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;

    fn event(thread: usize, call: Call, invoked: u64, returned: u64) -> Event {
        Event {
            thread,
            call,
            invoked,
            returned,
            outcome: Outcome::Ok,
        }
    }

    #[test]
    fn overlapping_spans_count_as_inside_at_once() {
        // Goal: two calls whose spans overlap are two inside the engine; a stop invoked while
        // both were in flight, which outlived them, met two.
        let seek = || Call::BeginSession { bind: 0 };
        let history = History {
            events: vec![
                event(0, seek(), 1, 5),
                event(1, seek(), 2, 6),
                event(
                    2,
                    Call::StopService {
                        instance: crate::workload::InstanceRef::Main,
                        grbit: 0,
                    },
                    3,
                    9,
                ),
                event(0, seek(), 10, 11),
            ],
            ..History::default()
        };
        let overlap = Overlap::of(&history);
        assert_eq!(overlap.admitted_calls, 4);
        assert_eq!(overlap.in_engine_max, 3);
        assert_eq!(overlap.in_engine_sum, 1 + 2 + 3 + 1);
        assert_eq!(overlap.stops, 1);
        assert_eq!(overlap.stops_meeting_two_or_more, 1);
    }
}
