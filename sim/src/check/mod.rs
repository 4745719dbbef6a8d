//! The checkers a run's history must pass, and [`check_run`], which applies every one of them
//! to a run. Each violation names its rule and says, in words, what happened and what should
//! have. [`linearizability`] holds the search against the reference model, [`rules`] the
//! stop's rules and the end-state and durability checks, [`version_cleanup`] the stop's
//! cleanup checked from the version store's memory.

pub mod commit_durable;
pub mod linearizability;
pub mod rules;
pub mod version_cleanup;

use crate::history::{Event, History};
use crate::model::{step, ModelPhase, ModelState, Outcome};
use crate::report::transitions::thread_label;
use crate::workload::{Call, DatabaseFile, InstanceRef};
use linearizability::Verdict;
use rules::{
    committed_tables, describe_disk_data, describe_end, describe_lost_data, end_matcher,
    first_stop, model_sessions, stop_effects, stop_rule, Observability,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// The first successful full stop returned with versions still in the version store's
    /// memory (the harness's meter), though no transaction was open while it cleaned up.
    VersionCleanup,
    /// After a successful full stop returned, the log gained page images that no rollback
    /// accounts for: something other than an allowlisted call changed pages (online defrag
    /// still running), as the harness read the log itself.
    DefragParked,
    /// The final term did not succeed.
    FinalTerm,
    /// The linearizability search hit its bound: no verdict.
    SearchBound,
    /// After a crash (`--faults`), recovery failed, or found other than the committed data
    /// (the latter is reported as failure-atomicity's end-state mismatch).
    Durability,
    /// The database file took a page before the log record that changed it was durable, as
    /// the harness read both at the write (the write-ahead rule).
    WriteAhead,
    /// The database file took an older image of a page over a newer one, as the harness read
    /// both at the write: the change between them is lost on disk.
    StaleWrite,
    /// A write put different bytes over the main log's durable ones, as the harness read
    /// both at the write: the log is append-only, and what it made durable (the commits it
    /// acknowledged among them) is lost.
    LogAppendOnly,
    /// A level-1 commit answered success before the durable log, as the harness read it at
    /// the response step, could hold its Commit record.
    CommitDurable,
    /// Without a crash: the disk the final term left, as the harness read it back (a crash
    /// right after the term, recovered by a fresh instance), holds other than the committed
    /// data, cannot be read, or (after a clean term) leaves pages for recovery to redo.
    TermDisk,
    /// A detach answered success before the durable log, as the harness read it at the
    /// response step, could hold its Detach record.
    DetachDurable,
    /// Without disk faults: another instance of the process, after every thread joined,
    /// attached the database file while the instance under test still had it attached (two
    /// instances, two logs, one file), or could not attach it once it was detached.
    DatabaseSharing,
    /// The database file changed while it was detached: between a detach's success and the
    /// next attach's invocation, as the harness saw the file's writes (its own watch of the
    /// disk, not the engine's account).
    DetachedUnwritten,
}

impl Rule {
    pub const ALL: &'static [Rule] = &[
        Rule::NoPanic,
        Rule::Linearizability,
        Rule::FailureAtomicity,
        Rule::StopRule,
        Rule::StopDrained,
        Rule::Preparation,
        Rule::VersionCleanup,
        Rule::DefragParked,
        Rule::FinalTerm,
        Rule::SearchBound,
        Rule::Durability,
        Rule::WriteAhead,
        Rule::StaleWrite,
        Rule::LogAppendOnly,
        Rule::CommitDurable,
        Rule::TermDisk,
        Rule::DetachDurable,
        Rule::DatabaseSharing,
        Rule::DetachedUnwritten,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::NoPanic => "no-panic",
            Rule::Linearizability => "linearizability",
            Rule::FailureAtomicity => "failure-atomicity",
            Rule::StopRule => "stop-rule",
            Rule::StopDrained => "stop-drained",
            Rule::Preparation => "preparation",
            Rule::VersionCleanup => "version-cleanup",
            Rule::DefragParked => "defrag-parked",
            Rule::FinalTerm => "final-term",
            Rule::SearchBound => "search-bound",
            Rule::Durability => "durability",
            Rule::WriteAhead => "write-ahead",
            Rule::StaleWrite => "stale-write",
            Rule::LogAppendOnly => "log-append-only",
            Rule::CommitDurable => "commit-durable",
            Rule::TermDisk => "term-disk",
            Rule::DetachDurable => "detach-durable",
            Rule::DatabaseSharing => "database-sharing",
            Rule::DetachedUnwritten => "detached-unwritten",
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

/// States the linearizability search may explore per run before giving up, unless
/// `--search-bound N` or `JETSIM_SEARCH_BOUND` says otherwise ([`search_states_max`]). At
/// `explore --threads 8 --calls 50`, 9,998 of 10,000 runs need under 50,000; the hardest of
/// seeds 0..10,000, 9520 (with nested transactions in the workloads), needs 1,177,037
/// (about 18 s): the bound leaves room for that, and only a run the search cannot settle
/// spends it.
pub const SEARCH_STATES_MAX: u64 = 2_000_000;

/// The environment variable that sets the search bound for tests and CI (the flag wins).
pub const SEARCH_BOUND_ENV: &str = "JETSIM_SEARCH_BOUND";

/// The bound `--search-bound` set for this process (0: not set). A setting of the oracle, not
/// of a run: it changes which verdicts are reachable, never what a seed runs or its trace.
static SEARCH_STATES_MAX_SET: AtomicU64 = AtomicU64::new(0);

/// Sets the search bound for every check in this process (`explore`/`replay --search-bound`).
pub fn set_search_states_max(states_max: u64) {
    SEARCH_STATES_MAX_SET.store(states_max.max(1), Ordering::Relaxed);
}

/// The search bound in force: `--search-bound`, else `JETSIM_SEARCH_BOUND`, else
/// [`SEARCH_STATES_MAX`]. An unparsable variable is a configuration error worth stopping for.
pub fn search_states_max() -> u64 {
    match SEARCH_STATES_MAX_SET.load(Ordering::Relaxed) {
        0 => match std::env::var(SEARCH_BOUND_ENV) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .map(|n| n.max(1))
                .unwrap_or_else(|_| {
                    panic!("{SEARCH_BOUND_ENV}={text:?}: expected a number of states")
                }),
            Err(_) => SEARCH_STATES_MAX,
        },
        set => set,
    }
}

/// ` --search-bound N` when the bound in force is not the default, for replay commands: a
/// search-bound verdict replays only under the bound that gave it.
pub fn search_bound_argument() -> String {
    match search_states_max() {
        SEARCH_STATES_MAX => String::new(),
        states_max => format!(" --search-bound {states_max}"),
    }
}

/// Where a successful full stop landed relative to the other calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StopLanding {
    /// Calls that returned before the stop was invoked.
    pub before: u64,
    /// Calls whose interval overlapped the stop's.
    pub during: u64,
    /// Calls invoked after the stop returned.
    pub after: u64,
}

/// What checking one run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunVerdict {
    pub violations: Vec<Violation>,
    pub states_explored: u64,
    pub landing: Option<StopLanding>,
    /// Which stop checks were made and which could not be.
    pub observability: Observability,
}

/// Splits the history into the calls the linearizability search places and the harness's
/// final term (made after it read the end state), which is checked, and replayed, from the
/// search's end.
pub fn split_final_term(history: &History) -> (Vec<Event>, Vec<Event>) {
    history.events.iter().cloned().partition(|e| {
        !(e.call
            == Call::Term {
                instance: InstanceRef::Main,
                grbit: jetsim_engine::term_grbit::ABRUPT,
            }
            && e.thread == final_thread(history))
    })
}

/// The linearizability search of `body` from `initial` to the end state the harness read:
/// the one [`check_run`] decides from, which the transitions replay repeats to show its order.
pub fn search(
    body: &[Event],
    initial: &ModelState,
    history: &History,
) -> linearizability::Linearization {
    linearizability::linearize_with(
        body,
        initial,
        &end_matcher(history),
        search_states_max(),
        linearizability::DiskFaults::of(history),
    )
}

/// What the harness's own reads of the disk found, crash or not: a recovery after the crash
/// that failed, a durable checkpoint past a change the database file lacks (the checkpoint
/// audit), and a database write ahead of its log or older than what it overwrote (the
/// write-ahead audit).
fn disk_violations(history: &History) -> Vec<Violation> {
    let mut violations = Vec::new();
    if let Some(Err(why)) = &history.recovered {
        violations.push(Violation {
            rule: Rule::Durability,
            message: format!("recovery after the crash failed: {why}"),
        });
    }
    // A checkpoint that passed a change the database file lacks loses it to a crash: the
    // harness's audit of the durable files (`world::checkpoint_audit`), crash or not.
    for breach in &history.checkpoint_audit.breaches {
        violations.push(Violation {
            rule: Rule::Durability,
            message: breach.clone(),
        });
    }
    // The harness's audit of every database and main log write: a page on disk ahead of its
    // log, an older image over a newer one, durable log bytes written over.
    let audit = &history.write_ahead;
    for (rule, first, count) in [
        (Rule::WriteAhead, &audit.first_breach, audit.breaches),
        (
            Rule::StaleWrite,
            &audit.first_stale_write,
            audit.stale_writes,
        ),
        (
            Rule::LogAppendOnly,
            &audit.first_log_rewrite,
            audit.log_rewrites,
        ),
        (
            Rule::DetachedUnwritten,
            &audit.first_detached_write,
            audit.detached_writes,
        ),
    ] {
        if let Some(first) = first {
            violations.push(Violation {
                rule,
                message: match count {
                    1 => first.clone(),
                    n => format!("{first}; {} more such writes", n - 1),
                },
            });
        }
    }
    violations
}

/// detached-unwritten's reach: the harness watched the file from every successful detach's
/// response until the next attach was invoked (its violations come with the disk's, above),
/// except after a detach an attach overlapped, which may have taken effect after it.
/// Rebuilt from the history, as the harness opened its windows.
fn detached_unwritten(history: &History, seen: &mut Observability) {
    let attaches: Vec<&Event> = history
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.call,
                Call::AttachDatabase {
                    file: DatabaseFile::Run,
                    ..
                }
            )
        })
        .collect();
    for detach in history
        .events
        .iter()
        .filter(|e| matches!(e.call, Call::DetachDatabase { .. }) && e.outcome == Outcome::Ok)
    {
        let overlapped = attaches
            .iter()
            .any(|a| a.invoked < detach.returned && a.returned > detach.invoked);
        if overlapped {
            seen.unobservable(
                Rule::DetachedUnwritten,
                detach.returned,
                (
                    "an attach overlapped the detach",
                    "an attach in flight beside the detach may take effect after it".to_owned(),
                ),
            );
        } else {
            seen.observed(Rule::DetachedUnwritten);
        }
    }
}

/// Applies every checker to one completed run.
pub fn check_run(history: &History, initial: &ModelState) -> RunVerdict {
    let mut verdict = RunVerdict::default();
    let (body, final_term) = split_final_term(history);
    verdict.violations.extend(disk_violations(history));
    let lin = search(&body, initial, history).verdict;
    let end_model = match lin {
        Verdict::Linearizable {
            end,
            states_explored,
        } => {
            verdict.states_explored = states_explored;
            Some(*end)
        }
        Verdict::Violation {
            states_explored,
            linearized_prefix,
            stuck,
        } => {
            verdict.states_explored = states_explored;
            verdict.violations.push(Violation {
                rule: Rule::Linearizability,
                message: linearizability_message(history, &stuck, linearized_prefix, body.len()),
            });
            None
        }
        Verdict::EndStateMismatch {
            end: model_end,
            states_explored,
        } => {
            verdict.states_explored = states_explored;
            verdict
                .violations
                .push(end_state_violation(history, &model_end));
            None
        }
        Verdict::Unknown { states_explored } => {
            verdict.states_explored = states_explored;
            verdict.violations.push(Violation {
                rule: Rule::SearchBound,
                message: format!(
                    "the linearizability search gave up after {states_explored} states"
                ),
            });
            None
        }
    };
    if let Some(model_end) = &end_model {
        verdict.violations.extend(term_disk_violations(
            history,
            model_end,
            final_term.first(),
            &mut verdict.observability,
        ));
    }
    if let Some(model_end) = &end_model {
        verdict.violations.extend(database_sharing_violation(
            history,
            model_end,
            &mut verdict.observability,
        ));
    }
    if let (Some(model_end), Some(term)) = (end_model, final_term.first()) {
        verdict
            .violations
            .extend(final_term_violation(history, &model_end, term));
    }
    for effect in &history.failed_stop_effects {
        verdict.violations.push(Violation {
            rule: Rule::FailureAtomicity,
            message: effect.clone(),
        });
    }
    verdict.violations.extend(stop_rule(history));
    let acks = commit_durable::commit_durable(history, &mut verdict.observability);
    verdict.violations.extend(acks);
    let detaches = commit_durable::detach_durable(history, &mut verdict.observability);
    verdict.violations.extend(detaches);
    detached_unwritten(history, &mut verdict.observability);
    let effects = stop_effects(history, &mut verdict.observability);
    verdict.violations.extend(effects);
    let cleanup = version_cleanup::version_cleanup(history, &mut verdict.observability);
    verdict.violations.extend(cleanup);
    verdict.landing = stop_landing(history);
    verdict
}

/// `lead`, the `items` joined by `separator`, then `tail`; nothing when there are no items.
/// For the clause a violation message adds only when it has something to list.
fn listing_clause(lead: &str, items: &[String], separator: &str, tail: &str) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!("{lead}{}{tail}", items.join(separator))
    }
}

/// The linearizability violation in words: the call no order explains, and the others that
/// could have come next.
fn linearizability_message(
    history: &History,
    stuck: &[linearizability::Stuck],
    linearized_prefix: usize,
    calls: usize,
) -> String {
    let detail: Vec<String> = stuck
        .iter()
        .map(|s| {
            format!(
                "{} {:?} (steps {}..{}): the engine returned {:?}, the model expected {:?}",
                thread_label(s.event.thread, history.workers),
                s.event.call,
                s.event.invoked,
                s.event.returned,
                s.event.outcome,
                s.model_expected
            )
        })
        .collect();
    let (first, others) = detail
        .split_first()
        .map_or(("", &[][..]), |(f, o)| (f.as_str(), o));
    let others = listing_clause(
        "; the other calls that could come next disagree too:\n      ",
        others,
        "\n      ",
        "",
    );
    format!(
        "{first}; no order of the calls explains this (after linearizing {linearized_prefix} \
         of the {calls} calls before the final term){others}"
    )
}

/// Every result linearizes but the end differs: after a crash, data recovery lost or
/// invented; without one, a failed call changed something or a success did the wrong thing.
fn end_state_violation(history: &History, model_end: &ModelState) -> Violation {
    match (history.io_faults, &history.recovered) {
        (true, Some(Ok(recovered))) => Violation {
            rule: Rule::Durability,
            message: describe_lost_data(recovered, &committed_tables(model_end)),
        },
        _ => Violation {
            rule: if history.io_faults { Rule::Durability } else { Rule::FailureAtomicity },
            message: format!(
                "every result linearizes, but the engine ended in [{}] (recovered after the crash: {:?}) while the model ended in phase {:?}, \
                 defrag parked {}, caches quiesced {}, sessions {:?}, committed {:?}",
                history.end_state.as_ref().map_or_else(|| "unobservable".to_owned(), describe_end),
                history.recovered,
                model_end.phase,
                model_end.defrag_parked,
                model_end.caches_quiesced,
                model_sessions(model_end),
                (0..crate::workload::TABLES)
                    .map(|t| model_end.committed_as_of(t, model_end.last_commit_ts))
                    .collect::<Vec<_>>()
            ),
        },
    }
}

/// term-disk: the disk the harness read back after the final term of a run without faults
/// must hold exactly the model's committed data (every acknowledged commit durable, nothing
/// uncommitted), whatever the term answered; after a clean term, recovery must also find
/// nothing to redo. Decided from the harness's copy of the synced files and the model alone.
fn term_disk_violations(
    history: &History,
    model_end: &ModelState,
    term: Option<&crate::history::Event>,
    seen: &mut Observability,
) -> Vec<Violation> {
    let Some(disk) = history.term_disk.as_ref().filter(|_| !history.io_faults) else {
        return Vec::new();
    };
    let committed = committed_tables(model_end);
    let mut violations = Vec::new();
    violations.extend(disk_read_violation(
        &disk.found,
        &committed,
        |why| format!("after the final term, a fresh instance could not read the disk it left: {why}"),
        |difference| format!("after the final term, the disk (as a crash then would leave it, recovered by a fresh instance) {difference}"),
    ));
    let clean_term = term.is_some_and(|t| t.outcome == Outcome::Terminated { dirty: false });
    // A clean term, or a detach the run ended on, leaves the file consistent on its own;
    // but after StopAndEmitLog nothing more is logged, so neither can mark the file clean:
    // it stays owned by the log its end-of-stream marker ends (that log's recovery, checked
    // above, resolves it).
    let consistent_alone = clean_term || !model_end.attached;
    if consistent_alone && model_end.log_stopped {
        seen.unobservable(
            Rule::TermDisk,
            term.map_or(0, |t| t.returned),
            (
                rules::unobservable_reason::LOG_STOPPED,
                "the file alone cannot be marked clean once StopAndEmitLog ended the log"
                    .to_owned(),
            ),
        );
    } else if consistent_alone {
        seen.observed(Rule::TermDisk);
        let why_alone = if clean_term {
            "the final term succeeded cleanly"
        } else {
            "the run ended with the database detached"
        };
        violations.extend(disk_read_violation(
            &disk.database_alone,
            &committed,
            |why| format!("{why_alone}, yet a fresh instance with a log of its own could not attach the database file alone: {why}. A clean term or a detach leaves the file consistent on its own (clean shutdown), attachable by any instance"),
            |difference| format!("{why_alone}, yet the database file alone (attached by a fresh instance with a log of its own) {difference}"),
        ));
    }
    if clean_term && (disk.page_images_replayed > 0 || disk.pages_redone > 0) {
        violations.push(Violation {
            rule: Rule::TermDisk,
            message: format!(
                "the final term succeeded cleanly, yet recovery of the disk it left replayed {} page images after the durable checkpoint and redid {} pages: a clean term leaves every page written and its checkpoint at the log's end",
                disk.page_images_replayed, disk.pages_redone
            ),
        });
    }
    violations
}

/// database-sharing: the harness's probe ([`crate::history::SharingProbe`]) against the
/// model's state after every thread's calls and the wind-down. While the instance under test
/// has the database attached (a stop leaves it so), another instance's attach of the file is
/// refused with `JET_errDatabaseSharingViolation`; once it detached, the other instance
/// attaches the file and detaches it again. Its attach of the path where no file is must find
/// none (`JET_errFileNotFound`): an attach of the workload's that failed there gave back its
/// claim. After a term of the instance under test, whether its file is clean depends on that
/// term: not decided here, counted.
fn database_sharing_violation(
    history: &History,
    model_end: &ModelState,
    seen: &mut Observability,
) -> Option<Violation> {
    let probe = history.sharing_probe.as_ref()?;
    if model_end.phase == ModelPhase::Terminated {
        seen.unobservable(
            Rule::DatabaseSharing,
            0,
            (
                rules::unobservable_reason::TERMINATED,
                "a call of the workload terminated the instance under test".to_owned(),
            ),
        );
        return None;
    }
    seen.observed(Rule::DatabaseSharing);
    let (expected_attach, expected_detach, owner) = if model_end.attached {
        (
            Outcome::err(jetsim_engine::JetError::DatabaseSharingViolation),
            None,
            "while the instance under test still had it attached",
        )
    } else {
        (
            Outcome::Attached { already: false },
            Some(Outcome::Ok),
            "after the instance under test had detached it",
        )
    };
    let expected_missing = Outcome::err(jetsim_engine::JetError::FileNotFound);
    if probe.missing_attach != expected_missing {
        return Some(Violation {
            rule: Rule::DatabaseSharing,
            message: format!(
                "after every thread joined, another instance's JetAttachDatabase of {} (a path where no file ever was, which the workload's attaches may have named and failed to open) answered {:?}; expected {expected_missing:?}. An attach that fails gives back its claim on the path",
                crate::world::harness::MISSING_DATABASE_PATH,
                probe.missing_attach,
            ),
        });
    }
    if probe.attach == expected_attach && probe.detach == expected_detach {
        return None;
    }
    let detach = probe
        .detach
        .as_ref()
        .map_or_else(String::new, |d| format!(", and its detach {d:?}"));
    Some(Violation {
        rule: Rule::DatabaseSharing,
        message: format!(
            "after every thread joined, another instance's JetAttachDatabase of the run's database file {owner} answered {:?}{detach}; expected {expected_attach:?}{}. A database file belongs to one instance at a time (ESE: JET_errDatabaseSharingViolation), and to none once detached",
            probe.attach,
            expected_detach.map_or_else(String::new, |d| format!(" and a detach {d:?}")),
        ),
    })
}

/// term-disk's verdict on one read of a disk: the fresh instance could not read it
/// (`unreadable` words why), or it found other records than the committed ones (`differs`
/// words the difference).
fn disk_read_violation(
    read: &Result<crate::history::Tables, String>,
    committed: &crate::history::Tables,
    unreadable: impl FnOnce(&str) -> String,
    differs: impl FnOnce(String) -> String,
) -> Option<Violation> {
    let message = match read {
        Err(why) => unreadable(why),
        Ok(found) if found != committed => differs(describe_disk_data(found, committed)),
        Ok(_) => return None,
    };
    Some(Violation {
        rule: Rule::TermDisk,
        message,
    })
}

/// The final term (the harness's, after the wind-down) must succeed unless the model says
/// otherwise or the instance failed on its disk.
fn final_term_violation(
    history: &History,
    model_end: &ModelState,
    term: &crate::history::Event,
) -> Option<Violation> {
    let (expected, _) = step(model_end, term.thread, &term.call);
    let succeeded = matches!(term.outcome, Outcome::Terminated { dirty: false });
    let already_gone = model_end.phase == ModelPhase::Terminated;
    // With disk faults, a fail-stop instance terminates dirty (and may already be gone).
    let fail_stop_term = history.io_faults
        && (matches!(term.outcome, Outcome::Terminated { .. }) || term.outcome.is_io_error());
    // After StopAndEmitLog a transaction cannot be rolled back (its compensation cannot
    // be logged), so the wind-down may leave one open and the model expects the term to
    // be refused: that is the documented outcome, not a failure.
    let refused_as_modelled = model_end.log_stopped
        && term
            .outcome
            .is_err_named(jetsim_engine::JetError::TooManyActiveUsers);
    if !fail_stop_term
        && (term.outcome != expected || !(succeeded || already_gone || refused_as_modelled))
    {
        return Some(Violation {
            rule: Rule::FinalTerm,
            message: format!(
                "the final term returned {:?}; the model expected {:?}, and a term after the wind-down must succeed",
                term.outcome, expected
            ),
        });
    }
    None
}

/// Where the first successful full stop landed relative to the other calls.
fn stop_landing(history: &History) -> Option<StopLanding> {
    first_stop(history).map(|(invoked, returned)| {
        let mut landing = StopLanding::default();
        for e in history
            .events
            .iter()
            .filter(|e| !e.call.is_full_stop_of_main())
        {
            if e.returned < invoked {
                landing.before += 1;
            } else if e.invoked > returned {
                landing.after += 1;
            } else {
                landing.during += 1;
            }
        }
        landing
    })
}

/// The harness's final term is made by the thread numbered after the workers.
fn final_thread(history: &History) -> usize {
    history.workers
}
