//! The checkers a run's history must pass. Each violation names its rule and says, in words,
//! what happened and what should have.

pub mod linearizability;
pub mod rules;

use serde::{Deserialize, Serialize};
use std::fmt;

/// The rules, in the order they are checked. Serialized by the same kebab-case name the text
/// output prints (`stop-drained`), so JSON reports, scenario files and summaries agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The engine panicked, deadlocked, or a thread did not finish.
    NoPanic,
    /// No order of the calls, consistent with their real-time order, makes the reference model
    /// return what the engine returned.
    Linearizability,
    /// The engine's state after all threads joined differs from the model's at the end of the
    /// linearization (a failed call changed something, or a success did the wrong thing).
    FailureAtomicity,
    /// A gated call invoked after a successful stop returned succeeded, or an allowlisted call
    /// was refused with ClientRequestToStopJetService.
    StopRule,
    /// A gated call did work after the stop began preparing, as the harness saw it: admitted
    /// though invoked after the stop's first disk write, or log records only gated calls
    /// write appeared after the stop returned.
    StopDrained,
    /// The disk the harness read when a full or quiescing stop returned was not prepared:
    /// the durable checkpoint short of the durable log's end, unsynced writes, or pages a
    /// recovery of a copy crashed then would redo.
    Preparation,
    /// The final term did not succeed.
    FinalTerm,
    /// The linearizability search hit its bound: no verdict.
    SearchBound,
    /// After a crash (`--faults`), recovery failed, or found other than the committed data
    /// (the latter is reported as failure-atomicity's end-state mismatch).
    Durability,
}

impl Rule {
    pub const ALL: &'static [Rule] = &[
        Rule::NoPanic,
        Rule::Linearizability,
        Rule::FailureAtomicity,
        Rule::StopRule,
        Rule::StopDrained,
        Rule::Preparation,
        Rule::FinalTerm,
        Rule::SearchBound,
        Rule::Durability,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::NoPanic => "no-panic",
            Rule::Linearizability => "linearizability",
            Rule::FailureAtomicity => "failure-atomicity",
            Rule::StopRule => "stop-rule",
            Rule::StopDrained => "stop-drained",
            Rule::Preparation => "preparation",
            Rule::FinalTerm => "final-term",
            Rule::SearchBound => "search-bound",
            Rule::Durability => "durability",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: Rule,
    /// What happened, in words.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.rule, self.message)
    }
}
