//! `cargo run --release -p jetsim-models --bin mutants [-- --markdown]`: the mutation
//! catalogue, measured.
//!
//! One row per planted bug (`Mutant::ALL`): the loom model that catches it and the execution at
//! which loom first fails (deterministic), and for the seeded simulator (`jetsim`) under
//! shuttle's random, PCT and uniform random walk (URW) schedulers, a column pair each: the
//! seeds `first_detection` runs until one fails, as median and maximum over 20 start seeds
//! (`start = k * 1_000_003`), each bounded. Durability mutants the campaign's crash switch
//! catches are measured too; one only the engine's crash tests catch has no numbers here.
//!
//! A seed that fails without the mutant too is not counted as a detection; it is run a second
//! time and listed with the rules it broke, and if the second run differs (another trace or
//! verdict) the tool says NONDETERMINISTIC and exits 1: state leaking between runs of one
//! process is a defect, not a finding.
//!
//! Options: `--markdown` (a Markdown table for the README), `--starts N` (default 20),
//! `--max-seeds N` (default 3000), `--jobs N` (default: all cores).

use jetsim::campaign::{first_detection, Detection};
use jetsim::check::Rule;
use jetsim::config::Scheduling;
use jetsim::simulation::{run_seed, scheduling_name};
use jetsim_engine::{Mutant, Mutations};
use jetsim_models::catalogue::{self, Entry, CONCURRENCY_TESTS, CRASH_TESTS, SWEEP_TESTS};
use jetsim_models::stop_models::Outcome;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The distance between two start seeds.
const START_STRIDE: u64 = 1_000_003;
const SCHEDULERS: [Scheduling; 3] = [Scheduling::Random, Scheduling::Pct, Scheduling::Urw];
/// Table columns: the fixed ones, then a median and a maximum per scheduler.
const COLUMNS: usize = 4 + 2 * SCHEDULERS.len();

struct Options {
    markdown: bool,
    starts: u64,
    max_seeds: u64,
    jobs: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        markdown: false,
        starts: 20,
        max_seeds: 3000,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{name} takes a positive number"))
        };
        match arg.as_str() {
            "--markdown" => options.markdown = true,
            "--starts" => options.starts = number("--starts")?,
            "--max-seeds" => options.max_seeds = number("--max-seeds")?,
            "--jobs" => options.jobs = number("--jobs")? as usize,
            "-h" | "--help" => {
                return Err(
                    "usage: mutants [--markdown] [--starts N] [--max-seeds N] [--jobs N]".into(),
                )
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(options)
}

/// One unit of work for the worker threads.
#[derive(Clone, Copy)]
enum Task {
    /// Run the loom model of row `row`.
    Loom { row: usize },
    /// `first_detection` of row `row`'s mutant under `SCHEDULERS[scheduler]` from start `k`.
    Sim {
        row: usize,
        scheduler: usize,
        k: u64,
    },
}

/// Everything measured for one mutant.
struct Row {
    mutant: Mutant,
    entry: Option<&'static Entry>,
    loom: Option<Outcome>,
    /// Per scheduler, per start: the detection, if any.
    sim: [Vec<SimResult>; SCHEDULERS.len()],
}

impl Row {
    fn measured_by_sim(&self) -> bool {
        self.entry.is_some_and(|e| !e.is_durability())
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    // loom and shuttle report every failing execution through the panic hook; here failures
    // are the data, not news. (shuttle still prints two lines of its own per failing seed
    // that panicked, on stderr.)
    std::panic::set_hook(Box::new(|_| {}));
    catalogue::order_panic_hooks();
    let started = Instant::now();
    let rows = measure(&options);
    let elapsed = started.elapsed();
    let table = table(&rows, &options);
    if options.markdown {
        print_markdown(&table);
    } else {
        print_aligned(&table);
    }
    println!();
    println!(
        "{} mutants; sim: {} start seeds (start = k * {START_STRIDE}) per scheduler, at most {} seeds each; {} jobs; took {}.",
        rows.len(),
        options.starts,
        options.max_seeds,
        options.jobs,
        seconds(elapsed)
    );
    let mut skipped: BTreeMap<(&str, u64), (Vec<String>, &CleanFailure)> = BTreeMap::new();
    for row in &rows {
        for (scheduler, results) in SCHEDULERS.iter().zip(&row.sim) {
            for failure in results.iter().flat_map(|r| &r.skipped) {
                let (mutants, _) = skipped
                    .entry((scheduling_name(*scheduler), failure.seed))
                    .or_insert_with(|| (Vec::new(), failure));
                let name = catalogue::mutant_name(row.mutant);
                if !mutants.contains(&name) {
                    mutants.push(name);
                }
            }
        }
    }
    let mut nondeterministic = false;
    if !skipped.is_empty() {
        println!(
            "Not counted as detections: seeds that fail without any mutant too (replay with `cargo run --release -p jetsim -- replay SEED --strategy S`):"
        );
        for ((scheduler, seed), (mutants, failure)) in skipped {
            let bullet = if options.markdown { "-" } else { " " };
            let rules: Vec<&str> = failure.rules.iter().map(|r| r.name()).collect();
            let again = if failure.same_again {
                "the same trace and verdict when run again".to_owned()
            } else {
                nondeterministic = true;
                "NONDETERMINISTIC: run again, it gave another trace or verdict".to_owned()
            };
            println!(
                "{bullet} {scheduler} seed {seed} (met with {}): broke {}; {again}",
                mutants.join(", "),
                rules.join(", ")
            );
        }
    }
    if nondeterministic {
        eprintln!("a seed ran differently twice in this process: a determinism defect");
        return ExitCode::FAILURE;
    }
    let uncatalogued: Vec<String> = rows
        .iter()
        .filter(|r| r.entry.is_none())
        .map(|r| catalogue::mutant_name(r.mutant))
        .collect();
    if uncatalogued.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "not in the catalogue (models/src/catalogue.rs): {}",
            uncatalogued.join(", ")
        );
        ExitCode::FAILURE
    }
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.1} s", elapsed.as_secs_f64())
}

/// Runs every loom model and every sim detection on `options.jobs` threads.
fn measure(options: &Options) -> Vec<Row> {
    let mut rows: Vec<Row> = Mutant::ALL
        .iter()
        .map(|&mutant| Row {
            mutant,
            entry: catalogue::entry(mutant),
            loom: None,
            sim: std::array::from_fn(|_| vec![SimResult::default(); options.starts as usize]),
        })
        .collect();
    let mut tasks = Vec::new();
    for (row, r) in rows.iter().enumerate() {
        if r.entry.and_then(|e| e.loom).is_some() {
            tasks.push(Task::Loom { row });
        }
    }
    for k in 0..options.starts {
        for (row, r) in rows.iter().enumerate() {
            if r.measured_by_sim() {
                for scheduler in 0..SCHEDULERS.len() {
                    tasks.push(Task::Sim { row, scheduler, k });
                }
            }
        }
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let rows_ref = &rows;
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(&task) = tasks.get(index) else {
                    return;
                };
                let result = run_task(task, rows_ref, options);
                results.lock().expect("results").push((task, result));
                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                eprint!("\r{finished}/{} measurements", tasks.len());
            });
        }
    });
    eprintln!();
    for (task, result) in results.into_inner().expect("results") {
        match (task, result) {
            (Task::Loom { row }, TaskResult::Loom(outcome)) => rows[row].loom = Some(outcome),
            (Task::Sim { row, scheduler, k }, TaskResult::Sim(result)) => {
                rows[row].sim[scheduler][k as usize] = result
            }
            _ => unreachable!("a task's result has the task's kind"),
        }
    }
    rows
}

enum TaskResult {
    Loom(Outcome),
    Sim(SimResult),
}

/// One start's sim measurement.
#[derive(Clone, Default)]
struct SimResult {
    detection: Option<Detection>,
    /// Seeds that failed with the mutant but also without it (not counted as detections).
    skipped: Vec<CleanFailure>,
}

/// A seed the unmutated engine failed, run twice: a seed that fails once and passes (or
/// fails otherwise) the second time is a determinism defect, not a finding.
#[derive(Clone)]
struct CleanFailure {
    seed: u64,
    rules: Vec<Rule>,
    /// The second run had the same trace hash and the same verdict.
    same_again: bool,
}

fn run_task(task: Task, rows: &[Row], options: &Options) -> TaskResult {
    match task {
        Task::Loom { row } => {
            let row = &rows[row];
            let teeth = row.entry.and_then(|e| e.loom).expect("a loom entry");
            TaskResult::Loom(
                teeth
                    .model
                    .check(catalogue::planted(row.mutant), teeth.bound),
            )
        }
        Task::Sim { row, scheduler, k } => TaskResult::Sim(detect(
            rows[row].mutant,
            SCHEDULERS[scheduler],
            k * START_STRIDE,
            options.max_seeds,
        )),
    }
}

/// `first_detection` from `start`, skipping seeds that the unmutated engine fails as well (they
/// are not the mutant's doing); `runs` counts every seed run, skipped ones included.
fn detect(mutant: Mutant, scheduling: Scheduling, start: u64, max_seeds: u64) -> SimResult {
    let mut from = start;
    let mut skipped = Vec::new();
    loop {
        let budget = max_seeds - (from - start);
        let Some(found) = first_detection(catalogue::planted(mutant), scheduling, from, budget)
        else {
            return SimResult {
                detection: None,
                skipped,
            };
        };
        let clean = run_seed(found.seed, scheduling, Mutations::NONE);
        if clean.passed() {
            return SimResult {
                detection: Some(Detection {
                    runs: found.seed - start + 1,
                    ..found
                }),
                skipped,
            };
        }
        let again = run_seed(found.seed, scheduling, Mutations::NONE);
        let mut rules: Vec<Rule> = clean.verdict.violations.iter().map(|v| v.rule).collect();
        rules.sort();
        rules.dedup();
        skipped.push(CleanFailure {
            seed: found.seed,
            rules,
            same_again: again.trace_hash == clean.trace_hash && again.verdict == clean.verdict,
        });
        from = found.seed + 1;
        if from - start >= max_seeds {
            return SimResult {
                detection: None,
                skipped,
            };
        }
    }
}

const HEADER: [&str; COLUMNS] = [
    "mutant",
    "checker",
    "loom executions",
    "sim rules (detections)",
    "random median",
    "random max",
    "PCT median",
    "PCT max",
    "URW median",
    "URW max",
];

fn table(rows: &[Row], options: &Options) -> Vec<[String; COLUMNS]> {
    rows.iter().map(|row| table_row(row, options)).collect()
}

fn table_row(row: &Row, options: &Options) -> [String; COLUMNS] {
    let name = catalogue::mutant_name(row.mutant);
    let dash = || "-".to_owned();
    let Some(entry) = row.entry else {
        return row_cells(
            name,
            "NOT CATALOGUED".to_owned(),
            dash(),
            dash(),
            Vec::new(),
        );
    };
    if entry.is_durability() {
        let test = entry.crash_tests.unwrap_or_default();
        let sweep = entry
            .sweep_test
            .map(|sweep| format!("; sim crash sweep ({SWEEP_TESTS}: {sweep})"))
            .unwrap_or_default();
        return row_cells(
            name,
            format!("engine crash tests ({CRASH_TESTS}: {test}){sweep}"),
            dash(),
            dash(),
            Vec::new(),
        );
    }
    let mut checkers = Vec::new();
    let mut loom_cell = dash();
    if let (Some(teeth), Some(outcome)) = (entry.loom, &row.loom) {
        let bound = match teeth.bound {
            Some(bound) => format!(", bound {bound}"),
            None => String::new(),
        };
        match outcome {
            Err(failure) => {
                let property = failure
                    .property
                    .map_or_else(|| "unnamed panic".to_owned(), |p| p.name().to_owned());
                checkers.push(format!("loom {}{bound}: {property}", teeth.model));
                loom_cell = failure.execution.to_string();
            }
            Ok(explored) => {
                checkers.push(format!("loom {}{bound}", teeth.model));
                loom_cell = format!("not caught in {}", explored.executions);
            }
        }
    }
    let mut rules: BTreeMap<Rule, usize> = BTreeMap::new();
    for detection in row
        .sim
        .iter()
        .flatten()
        .filter_map(|r| r.detection.as_ref())
    {
        for &rule in &detection.rules {
            *rules.entry(rule).or_default() += 1;
        }
    }
    if let Some(teeth) = entry.sim {
        let rules: Vec<&str> = teeth.rules.iter().map(|r| r.name()).collect();
        checkers.push(format!("sim {}", rules.join(" or ")));
    }
    if let Some(tests) = entry.crash_tests {
        checkers.push(format!("engine crash tests ({CRASH_TESTS}: {tests})"));
    }
    if let Some(test) = entry.concurrency_test {
        checkers.push(format!(
            "engine concurrency test ({CONCURRENCY_TESTS}: {test})"
        ));
    }
    let rules_cell = if rules.is_empty() {
        dash()
    } else {
        rules
            .iter()
            .map(|(rule, n)| format!("{rule} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let runs = row
        .sim
        .iter()
        .map(|results| runs_cells(results, options.max_seeds))
        .collect();
    row_cells(name, checkers.join("; "), loom_cell, rules_cell, runs)
}

/// One table row: the fixed cells, then (median, maximum) per scheduler, dashes for the
/// schedulers `runs` has no cells for.
fn row_cells(
    name: String,
    checkers: String,
    loom: String,
    rules: String,
    runs: Vec<(String, String)>,
) -> [String; COLUMNS] {
    let mut cells = vec![name, checkers, loom, rules];
    for scheduler in 0..SCHEDULERS.len() {
        let (median, max) = runs
            .get(scheduler)
            .cloned()
            .unwrap_or_else(|| ("-".to_owned(), "-".to_owned()));
        cells.push(median);
        cells.push(max);
    }
    cells.try_into().expect("COLUMNS cells")
}

/// Median and maximum runs to first detection over the starts; a start that did not detect
/// within `max_seeds` counts as more than `max_seeds`.
fn runs_cells(results: &[SimResult], max_seeds: u64) -> (String, String) {
    let mut runs: Vec<Option<u64>> = results
        .iter()
        .map(|r| r.detection.as_ref().map(|d| d.runs))
        .collect();
    let missed = runs.iter().filter(|r| r.is_none()).count();
    if missed == runs.len() {
        return (format!("not caught in {max_seeds}"), "-".to_owned());
    }
    // `None` (not caught) sorts last with this key.
    runs.sort_by_key(|r| r.unwrap_or(u64::MAX));
    let show = |r: Option<u64>| r.map_or_else(|| format!(">{max_seeds}"), |r| r.to_string());
    let n = runs.len();
    let median = if n % 2 == 1 {
        show(runs[n / 2])
    } else {
        match (runs[n / 2 - 1], runs[n / 2]) {
            (Some(a), Some(b)) if (a + b) % 2 == 0 => ((a + b) / 2).to_string(),
            (Some(a), Some(b)) => format!("{}.5", (a + b) / 2),
            _ => format!(">{max_seeds}"),
        }
    };
    let max = if missed == 0 {
        show(runs[n - 1])
    } else {
        format!(">{max_seeds} ({missed}/{n} missed)")
    };
    (median, max)
}

fn print_aligned(table: &[[String; COLUMNS]]) {
    let mut widths = HEADER.map(str::len);
    for row in table {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    // Numbers right-aligned, text left-aligned.
    let numeric: [bool; COLUMNS] = std::array::from_fn(|column| column == 2 || column >= 4);
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .zip(numeric)
            .map(|((cell, width), right)| {
                if right {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(&HEADER.map(str::to_owned));
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    println!("{}", rule.join("  "));
    for row in table {
        line(row);
    }
}

fn print_markdown(table: &[[String; COLUMNS]]) {
    println!("| {} |", HEADER.join(" | "));
    let alignments: [&str; COLUMNS] = std::array::from_fn(|column| {
        if column == 2 || column >= 4 {
            "---:"
        } else {
            "---"
        }
    });
    println!("|{}|", alignments.join("|"));
    for row in table {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        println!("| {} |", cells.join(" | "));
    }
}
