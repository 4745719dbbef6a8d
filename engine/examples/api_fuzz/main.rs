//! `api_fuzz`: the seeded Jet API fuzzer from the command line (the logic is in
//! `fuzzer.rs`, shared with the bounded run in `engine/tests/api_fuzz.rs`).
//!
//! ```sh
//! cargo run --release -p jetsim-engine --example api_fuzz -- --calls 1000000 --seed 1
//! cargo run --release -p jetsim-engine --example api_fuzz -- --calls 200000 --seed 1 --file
//! cargo run --release -p jetsim-engine --example api_fuzz -- --calls 1000000 --seed 1 --threads 4
//! cargo run --release -p jetsim-engine --example api_fuzz -- --seed 1 --calls 5001 --trace 4980-5000
//! ```
//!
//! Exit status: 0 when no rule was broken, 1 when one was, 2 for bad arguments.

mod fuzzer;

use fuzzer::{Backend, FuzzOptions};

const USAGE: &str = "usage: api_fuzz [--calls N] [--seed S] [--file] [--threads T] [--trace A-B] \
[--watchdog-secs N]
  --calls N          calls to make in all (default 100000)
  --seed S           the seed; one seed is one run (default 1)
  --file             real files in a fresh temporary folder instead of the simulated disk
  --threads T        T OS threads sharing handles, thread 0 stopping and terming (default 1:
                     deterministic, with the failed-call-changes-nothing check)
  --trace A-B        print calls A..=B (0-based) with their results
  --watchdog-secs N  seconds without a completed call that count as a deadlock (default 60)";

fn parse() -> Result<FuzzOptions, String> {
    let mut options = FuzzOptions::new(100_000, 1);
    let mut file = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--calls" => options.calls = number(&value("--calls")?)?,
            "--seed" => options.seed = number(&value("--seed")?)?,
            "--threads" => {
                options.threads = number(&value("--threads")?)? as usize;
                if options.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            "--watchdog-secs" => options.watchdog_secs = number(&value("--watchdog-secs")?)?,
            "--file" => file = true,
            "--trace" => {
                let range = value("--trace")?;
                let (a, b) = range
                    .split_once('-')
                    .ok_or(format!("--trace wants A-B, got {range:?}"))?;
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(format!("--trace {a}-{b}: the range is empty"));
                }
                options.trace = Some(a..=b);
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.calls == 0 {
        return Err("--calls 0 would check nothing".into());
    }
    if file {
        let dir = std::env::temp_dir().join(format!(
            "jetsim-api-fuzz-{}-{}",
            std::process::id(),
            options.seed
        ));
        // Files live one level down, so a path like "../x" that escaped would still land in
        // the fuzzer's own folder.
        options.backend = Backend::Files(dir.join("root"));
    }
    Ok(options)
}

fn number(text: &str) -> Result<u64, String> {
    text.replace('_', "")
        .parse()
        .map_err(|_| format!("not a number: {text:?}"))
}

fn main() {
    let options = match parse() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("api_fuzz: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Backend::Files(root) = &options.backend {
        std::fs::create_dir_all(root).expect("create the fuzz folder");
    }
    // Panics are caught and reported as violations; keep their default message off stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let started = std::time::Instant::now();
    let report = fuzzer::run(&options);
    let elapsed = started.elapsed();
    print!("{}", report.summary(&options));
    println!(
        "{:.1} s, {:.0} calls/s",
        elapsed.as_secs_f64(),
        report.calls as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    if let Backend::Files(root) = &options.backend {
        if let Some(parent) = root.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
    if !report.passed() {
        std::process::exit(1);
    }
}
