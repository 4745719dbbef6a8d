//! A tour of `JetStopServiceInstance` on real files: load data, start online defrag, let four
//! threads run transactions, stop the instance while they run, and show what the stop did,
//! what is refused afterwards, and that every committed record survives term and re-init.
//!
//! Run: `cargo run --release -p jetsim-engine --example stop_demo [DIR]` (default: a fresh
//! folder under the system temp dir, removed at the end).

use jetsim_engine::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const DB: &str = "demo.edb";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, remove_after) = demo_dir();
    std::fs::create_dir_all(&dir)?;
    println!("jetsim stop demo: files under {}", dir.display());

    let jet = Jet::<StdRuntime>::new(Environment::on_disk(&dir));
    let instance = jet.create_instance("demo")?;
    jet.set_system_parameter(instance, SystemParameter::CacheSizePages, 512)?;
    jet.set_system_parameter(instance, SystemParameter::CheckpointDepthMaxBytes, 8 << 20)?;
    jet.init(instance)?;
    let (sesid, dbid, table) = load_then_defragment(&jet, instance)?;
    print_status("before the stop", &jet.instance_status(instance)?);

    let workers = run_workers_and_stop(&jet, instance);
    show_after_stop(&jet, instance, &workers)?;
    jet.close_table(sesid, table)?;
    jet.close_database(sesid, dbid)?;
    jet.end_session(sesid)?;
    println!("close_table, close_database, end_session: still allowed, all succeeded");
    let outcome = jet.term(instance)?;
    println!("term: {outcome:?}");

    let expected = 300 + workers.committed;
    let found = count_after_reinit(&dir)?;
    println!("after re-init: {found} records (expected {expected})");
    if remove_after {
        std::fs::remove_dir_all(&dir)?;
    }
    if found != expected || workers.violations != 0 {
        return Err("the demo found a broken rule".into());
    }
    Ok(())
}

/// The folder named on the command line, or a fresh one under the temp dir that the demo
/// removes at the end (the flag).
fn demo_dir() -> (std::path::PathBuf, bool) {
    match std::env::args().nth(1) {
        Some(dir) => (std::path::PathBuf::from(dir), false),
        None => (
            std::env::temp_dir().join(format!("jetsim-demo-{}", std::process::id())),
            true,
        ),
    }
}

/// Creates the database with 3000 orders, deletes nine in ten so online defrag has
/// under-full pages to merge, and starts defrag. Returns the session, database and table,
/// still open.
fn load_then_defragment(
    jet: &Jet<StdRuntime>,
    instance: InstanceHandle,
) -> JetResult<(SessionHandle, DatabaseHandle, TableHandle)> {
    let sesid = jet.begin_session(instance)?;
    let dbid = jet.create_database(sesid, DB)?;
    let table = jet.create_table(sesid, dbid, "orders")?;
    jet.begin_transaction(sesid)?;
    for i in 0..3000u32 {
        jet.insert(
            sesid,
            table,
            format!("order{i:06}").as_bytes(),
            format!("{{\"qty\":{i}}}").as_bytes(),
        )?;
    }
    jet.commit_transaction(sesid)?;
    jet.begin_transaction(sesid)?;
    jet.move_cursor(sesid, table, MoveTo::First)?;
    for i in 0..3000u32 {
        if i % 10 != 0 {
            jet.delete(sesid, table)?;
        }
        if jet.move_cursor(sesid, table, MoveTo::Next).is_err() {
            break;
        }
    }
    jet.commit_transaction(sesid)?;
    jet.defragment(sesid, dbid, defrag_grbit::BATCH_START)?;
    Ok((sesid, dbid, table))
}

/// What the worker threads saw around the stop.
struct WorkerCounts {
    committed: u64,
    refused: u64,
    /// Transactions that committed after the stop had returned: must be 0.
    violations: u64,
}

/// Four threads run transactions; the main thread stops the instance once 200 have
/// committed, while they still run.
fn run_workers_and_stop(jet: &Jet<StdRuntime>, instance: InstanceHandle) -> WorkerCounts {
    let stopped = AtomicBool::new(false);
    let committed = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let violations = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for worker in 0..4u32 {
            let (stopped, committed, refused, violations) =
                (&stopped, &committed, &refused, &violations);
            scope.spawn(move || {
                let Ok(s) = jet.begin_session(instance) else {
                    return;
                };
                let t = jet
                    .open_database(s, DB)
                    .and_then(|d| jet.open_table(s, d, "orders"));
                for i in 0..500u32 {
                    let after_stop = stopped.load(Ordering::SeqCst);
                    let result = jet.begin_transaction(s).and_then(|()| {
                        let t = t?;
                        jet.insert(s, t, format!("w{worker}-{i:04}").as_bytes(), b"new")?;
                        jet.commit_transaction(s)
                    });
                    match result {
                        Ok(()) if after_stop => {
                            violations.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(()) => {
                            committed.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(JetError::ClientRequestToStopJetService) => {
                            refused.fetch_add(1, Ordering::SeqCst);
                            let _ = jet.rollback(s);
                        }
                        Err(other) => panic!("unexpected {other}"),
                    }
                }
                jet.end_session(s).expect("end_session is allowlisted");
            });
        }
        while committed.load(Ordering::SeqCst) < 200 {
            std::thread::yield_now();
        }
        jet.stop_service_instance(instance).expect("stop");
        stopped.store(true, Ordering::SeqCst);
    });
    WorkerCounts {
        committed: committed.load(Ordering::SeqCst),
        refused: refused.load(Ordering::SeqCst),
        violations: violations.load(Ordering::SeqCst),
    }
}

/// Prints the stop's own record, the instance afterwards, the workers' counts, and what a
/// new session gets now.
fn show_after_stop(
    jet: &Jet<StdRuntime>,
    instance: InstanceHandle,
    workers: &WorkerCounts,
) -> JetResult<()> {
    let record = jet.last_stop_record(instance)?.expect("a stop record");
    println!("\nthe stop, step by step:");
    for step in &record.steps {
        println!("  {step}");
    }
    print_status("after the stop", &jet.instance_status(instance)?);
    println!(
        "\nworkers: {} transactions committed before the stop, {} calls refused with ClientRequestToStopJetService, {} succeeded after it (must be 0)",
        workers.committed, workers.refused, workers.violations
    );
    match jet.begin_session(instance) {
        Err(error) => println!("begin_session now: {} ({})", error.name(), error.code()),
        Ok(_) => println!("begin_session now: succeeded (wrong!)"),
    }
    Ok(())
}

/// A fresh engine on the same files: how many records the orders table holds.
fn count_after_reinit(dir: &std::path::Path) -> JetResult<u64> {
    let jet = Jet::<StdRuntime>::new(Environment::on_disk(dir));
    let instance = jet.create_instance("demo")?;
    jet.init(instance)?;
    let sesid = jet.begin_session(instance)?;
    jet.attach_database(sesid, DB)?;
    let dbid = jet.open_database(sesid, DB)?;
    let table = jet.open_table(sesid, dbid, "orders")?;
    let found = jet.index_record_count(sesid, table, 0)?;
    jet.end_session(sesid)?;
    jet.term(instance)?;
    Ok(found)
}

fn print_status(title: &str, status: &InstanceStatus) {
    println!("\n{title}:");
    println!("  phase                  {:?}", status.phase);
    println!(
        "  defrag                 {} ({} pages freed so far)",
        status.defrag, status.defrag_pages_freed
    );
    println!(
        "  version cleanup        {} ({} runs, {} versions)",
        status.version_cleanup, status.version_cleanup_runs, status.versions
    );
    println!("  dirty pages            {}", status.dirty_pages);
    println!(
        "  checkpoint depth       {} bytes",
        status.checkpoint_depth_bytes
    );
    println!("  gated calls in flight  {}", status.gated_calls_in_flight);
}
