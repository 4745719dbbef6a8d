//! The allowlist: which Jet calls still work after `JetStopServiceInstance`, and how the gate
//! admits each call. This is the engine's one table; the simulator's reference model keeps its
//! own list on purpose (`sim/src/model.rs`, `ALLOWED_AFTER_STOP`), so an entry wrong here makes
//! the engine and the model disagree and the campaign's stop rule catches it.

use crate::instance::gate::Admission;
use crate::instance::mutations::{Mutant, Mutations};

/// Every Jet call jetsim implements, by its ESE name without the `Jet` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JetCall {
    CreateInstance,
    Init,
    Term,
    StopServiceInstance,
    GetSystemParameter,
    SetSystemParameter,
    BeginSession,
    EndSession,
    SetSessionContext,
    ResetSessionContext,
    GetSessionInfo,
    CreateDatabase,
    AttachDatabase,
    DetachDatabase,
    OpenDatabase,
    CloseDatabase,
    Defragment,
    CreateTable,
    OpenTable,
    CloseTable,
    DeleteTable,
    BeginTransaction,
    CommitTransaction,
    Rollback,
    Seek,
    Move,
    Retrieve,
    Insert,
    Replace,
    Delete,
    IndexRecordCount,
}

impl JetCall {
    /// Calls the documentation says still work after a stop, plus `GetSessionInfo`, which ESE's
    /// source also lets through. Instance lifecycle calls (init, term, stop) have their own
    /// rules in the gate; parameters are [`Admission::Configuration`].
    // `tests::allowlist_is_the_documented_one` (and sim's
    // `the_models_allowlist_is_its_own_documented_list`) write this list out again on purpose:
    // a test states the documentation on its own, so an edit here cannot pass it unseen.
    pub const ALLOWED_AFTER_STOP: &'static [JetCall] = &[
        JetCall::Rollback,
        JetCall::CloseTable,
        JetCall::EndSession,
        JetCall::CloseDatabase,
        JetCall::DetachDatabase,
        JetCall::ResetSessionContext,
        JetCall::GetSessionInfo,
    ];

    /// Calls whose page reads happen outside the instance lock: their bodies change nothing
    /// before their last read, so a read that misses the cache can drop the call's work, read
    /// with no lock held, and run the call again (`api::SessionCall::run`). Reads made after
    /// a call's first logged change are made under the lock.
    pub fn reads_outside_lock(self) -> bool {
        matches!(
            self,
            JetCall::OpenTable
                | JetCall::Seek
                | JetCall::Move
                | JetCall::Retrieve
                | JetCall::Insert
                | JetCall::Replace
                | JetCall::Delete
                | JetCall::IndexRecordCount
        )
    }

    /// How the gate admits this call.
    pub fn admission(self, mutations: Mutations) -> Admission {
        if self == JetCall::Rollback && mutations.is_active(Mutant::AllowlistMissingRollback) {
            return Admission::Gated;
        }
        if self == JetCall::CommitTransaction && mutations.is_active(Mutant::AllowlistExtraCommit) {
            return Admission::Allowlisted;
        }
        match self {
            JetCall::GetSystemParameter | JetCall::SetSystemParameter => Admission::Configuration,
            call if Self::ALLOWED_AFTER_STOP.contains(&call) => Admission::Allowlisted,
            _ => Admission::Gated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_is_the_documented_one() {
        // Repeats `ALLOWED_AFTER_STOP` (and adds calls that must stay out) on purpose: the
        // expected list comes from the documentation, not from the constant under test.
        let allowed: Vec<JetCall> = [
            JetCall::BeginSession,
            JetCall::Rollback,
            JetCall::CommitTransaction,
            JetCall::CloseTable,
            JetCall::EndSession,
            JetCall::CloseDatabase,
            JetCall::DetachDatabase,
            JetCall::ResetSessionContext,
            JetCall::GetSessionInfo,
            JetCall::Insert,
        ]
        .into_iter()
        .filter(|c| c.admission(Mutations::NONE) == Admission::Allowlisted)
        .collect();
        assert_eq!(allowed, JetCall::ALLOWED_AFTER_STOP);
    }
}
