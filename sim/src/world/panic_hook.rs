//! Keeps shuttle's panic hook to shuttle's own executions.
//!
//! shuttle installs a process-wide panic hook the first time it runs. Inside an execution it
//! names the failing task; outside one (a failing `assert!` in a test that ran simulations
//! before, a panic on a campaign's worker thread after its run) it prints "Task failed,
//! serializing schedule" and "test panicked in task 'Tried to get ExecutionState, but got the
//! following error: NotSet'" before the real message: noise that buries the failure. [`install`]
//! puts a hook in front of shuttle's that sends panics raised inside a jetsim run to shuttle's
//! hook and every other panic to the hook that was there before shuttle's.

use std::cell::Cell;
use std::sync::Once;

std::thread_local! {
    /// Whether this OS thread is inside [`in_run`] (shuttle runs every simulated thread of an
    /// execution on the OS thread that called the runner).
    static IN_RUN: Cell<bool> = const { Cell::new(false) };
}

/// Installs the filtering hook once per process. shuttle's own hook is forced into place
/// first (with a trivial execution), so it cannot later replace this one.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let before_shuttle = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let mut config = shuttle::Config::new();
        config.failure_persistence = shuttle::FailurePersistence::None;
        shuttle::Runner::new(
            shuttle::scheduler::DfsScheduler::new(Some(1), false),
            config,
        )
        .run(|| {});
        let shuttle_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_RUN.with(Cell::get) {
                shuttle_hook(info);
            } else {
                before_shuttle(info);
            }
        }));
    });
}

/// Runs `body` (a shuttle execution) with its panics reported by shuttle's hook.
pub fn in_run<T>(body: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_RUN.with(|flag| flag.set(self.0));
        }
    }
    install();
    let _reset = Reset(IN_RUN.with(|flag| flag.replace(true)));
    body()
}
