//! The command line as a user meets it, through the built binary: bad input is refused with
//! a clear message and exit code 2 (a CI job must not pass a campaign that ran nothing),
//! every argument has help text, `--version` works, and `--json` / `--junit` write what
//! `sim/report.schema.json` and JUnit readers expect, with rule names as the text prints them.

#[allow(dead_code)]
mod common;

use common::{jetsim, said, FAILING_EXPLORE};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    common::scratch("cli", name)
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["explore", "--seeds", "0"], "--seeds"),
        (
            &["explore", "--start", "18446744073709551615", "--seeds", "5"],
            "goes past the last seed",
        ),
        (&["explore", "--jobs", "0"], "--jobs"),
        (&["explore", "--shard", "5/4"], "1 <= K <= N"),
        (&["explore", "--shard", "0/4"], "1 <= K <= N"),
        (&["explore", "--seeds", "2", "--shard", "3/3"], "is empty"),
        (
            &["explore", "--seeds", "3", "--mutant", "NoSuchBug"],
            "NoSuchBug",
        ),
        (&["sweep", "--seeds", "0"], "--seeds"),
        (&["merge", "--json", "/dev/null"], "REPORT"),
    ];
    for (args, says) in cases {
        let output = jetsim(args);
        let all = said(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}:\n{all}");
        assert!(all.contains(says), "{args:?} should say {says:?}:\n{all}");
        assert!(
            !all.contains("seeds run"),
            "{args:?} ran a campaign anyway:\n{all}"
        );
    }
}

#[test]
fn an_unknown_field_in_a_scenario_call_is_an_error() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/second-stop.json");
    let original = std::fs::read_to_string(&scenario).unwrap();
    let typo = original.replacen("\"grbit\":", "\"grbits\": 1, \"grbit\":", 1);
    assert_ne!(typo, original, "the scenario makes a call with a grbit");
    let path = scratch("typo.json");
    std::fs::write(&path, typo).unwrap();
    let output = jetsim(&["scenario", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", said(&output));
    assert!(
        said(&output).contains("unknown field `grbits`"),
        "{}",
        said(&output)
    );
}

#[test]
fn version_and_help_text_for_every_argument() {
    let version = jetsim(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("jetsim {}", env!("CARGO_PKG_VERSION"))
    );
    for command in [
        "explore", "merge", "sweep", "replay", "shrink", "scenario", "mutants",
    ] {
        let output = jetsim(&[command, "-h"]);
        assert!(output.status.success(), "{command}");
        let help = String::from_utf8_lossy(&output.stdout).to_string();
        // clap lists each argument as "  NAME  description"; one without a description is
        // the name alone on its line.
        let mut entries = 0;
        for line in help.lines() {
            let entry = line.trim_start();
            let indented = line.len() - entry.len() == 2;
            if indented && (entry.starts_with('-') || entry.starts_with('<')) {
                entries += 1;
                assert!(
                    entry.contains("  "),
                    "`jetsim {command}`: {entry:?} has no help text:\n{help}"
                );
            }
        }
        assert!(entries >= 1, "{command}:\n{help}");
    }
    let help = String::from_utf8_lossy(&jetsim(&["explore", "-h"]).stdout).to_string();
    assert!(help.contains("Exit codes: 0"), "{help}");
}

/// A small JSON Schema check: `$ref` into `$defs`, `type`, `const`, `enum`, `required`,
/// `properties`, `additionalProperties`, `propertyNames`, `items`, `minimum`, `pattern` of
/// the one form the schema uses (fixed-length lowercase hex). Enough for
/// `sim/report.schema.json`; anything else in the schema fails the check.
fn validate(schema: &Value, root: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        errors.push(format!("{at}: schema is not an object"));
        return;
    };
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$schema" | "$id" | "title" | "description" | "$defs" => {}
            "$ref" => {
                let name = rule.as_str().unwrap().trim_start_matches("#/$defs/");
                validate(&root["$defs"][name], root, value, at, errors);
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
                    _ => unreachable!(),
                };
                let ok = types.iter().any(|t| match *t {
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "integer" => value.is_u64() || value.is_i64(),
                    "number" => value.is_number(),
                    "boolean" => value.is_boolean(),
                    "null" => value.is_null(),
                    _ => false,
                });
                if !ok {
                    errors.push(format!("{at}: {value} is not {types:?}"));
                }
            }
            "const" if value != rule => errors.push(format!("{at}: {value} is not {rule}")),
            "enum" if !rule.as_array().unwrap().contains(value) => {
                errors.push(format!("{at}: {value} is not one of {rule}"))
            }
            "const" | "enum" => {}
            "minimum" => {
                if value.as_f64().is_some_and(|v| v < rule.as_f64().unwrap()) {
                    errors.push(format!("{at}: {value} < {rule}"));
                }
            }
            "pattern" => {
                assert_eq!(rule, "^[0-9a-f]{16}$", "the check knows only this pattern");
                let s = value.as_str().unwrap_or("");
                if s.len() != 16
                    || !s
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                {
                    errors.push(format!("{at}: {value} is not 16 lowercase hex digits"));
                }
            }
            "required" => {
                for name in rule.as_array().unwrap() {
                    let name = name.as_str().unwrap();
                    if value.is_object() && value.get(name).is_none() {
                        errors.push(format!("{at}: missing {name}"));
                    }
                }
            }
            "properties" | "additionalProperties" | "propertyNames" => {
                let Some(object) = value.as_object() else {
                    continue;
                };
                let properties = schema.get("properties").and_then(Value::as_object);
                for (name, field) in object {
                    let path = format!("{at}.{name}");
                    match (keyword.as_str(), properties.and_then(|p| p.get(name))) {
                        ("properties", Some(sub)) => validate(sub, root, field, &path, errors),
                        ("additionalProperties", None) => match rule {
                            Value::Bool(false) => errors.push(format!("{path}: not in the schema")),
                            Value::Bool(true) => {}
                            sub => validate(sub, root, field, &path, errors),
                        },
                        ("propertyNames", _) => {
                            validate(rule, root, &Value::String(name.clone()), &path, errors)
                        }
                        _ => {}
                    }
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    validate(rule, root, item, &format!("{at}[{i}]"), errors);
                }
            }
            other => errors.push(format!("{at}: the check does not know keyword {other}")),
        }
    }
}

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("report.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Asserts `report` matches the schema.
pub fn assert_matches_schema(report: &Value) {
    let schema = schema();
    let mut errors = Vec::new();
    validate(&schema, &schema, report, "report", &mut errors);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Element names opened and closed in order, and whether every one closed; `<?...?>` skipped.
fn xml_balanced(xml: &str) -> Result<usize, String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut elements = 0;
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').ok_or("unclosed <")? + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if tag.starts_with('?') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
            if top != name {
                return Err(format!("</{name}> closes <{top}>"));
            }
        } else {
            elements += 1;
            let name = tag.split_whitespace().next().unwrap_or("");
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        // Text between tags holds no raw markup characters.
        let text_end = rest.find('<').unwrap_or(rest.len());
        if rest[..text_end].contains('>') {
            return Err(format!("a raw > in text: {:?}", &rest[..text_end]));
        }
    }
    if stack.is_empty() {
        Ok(elements)
    } else {
        Err(format!("unclosed {stack:?}"))
    }
}

#[test]
fn a_failing_campaign_writes_a_report_its_schema_describes_and_a_junit_file() {
    let json = scratch("fail.json");
    let junit = scratch("fail.xml");
    let output = jetsim(
        &[
            &FAILING_EXPLORE[..],
            &[
                "--jobs",
                "2",
                "--json",
                json.to_str().unwrap(),
                "--junit",
                junit.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(output.status.code(), Some(1), "{}", said(&output));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    std::fs::remove_file(&json).unwrap();
    std::fs::remove_file(&junit).unwrap();

    assert_matches_schema(&report);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 40);
    // Without --check-determinism nobody checked, so nothing claims determinism.
    assert!(runs.iter().all(|r| r.get("deterministic").is_none()));
    assert!(report["summary"].get("nondeterministic_seeds").is_none());
    let failed = report["summary"]["seeds_failed"].as_u64().unwrap();
    assert!(failed > 0);
    assert_eq!(report["summary"]["exit_code"], 1);
    // Rule names: the JSON's are the text's.
    let preparation = report["summary"]["failures_by_rule"]["preparation"]
        .as_u64()
        .unwrap();
    assert!(preparation > 0);
    assert!(
        stdout.contains(&format!("    preparation          {preparation:>10}")),
        "{stdout}"
    );
    for run in runs.iter().filter(|r| r["passed"] == false) {
        let rule = run["violations"][0]["rule"].as_str().unwrap();
        let seed = run["seed"].as_u64().unwrap();
        if stdout.contains(&format!("FAILED seed {seed}:")) {
            assert!(
                stdout.contains(&format!("[{rule}]")),
                "{rule} not in\n{stdout}"
            );
        }
    }

    // JUnit: well formed, one case per seed, a failure per failing seed with its replay.
    let elements = xml_balanced(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert!(elements > 40);
    assert_eq!(xml.matches("<testcase ").count(), 40);
    assert_eq!(xml.matches("<failure ").count() as u64, failed);
    assert!(xml.contains(&format!("tests=\"40\" failures=\"{failed}\"")));
    for run in runs.iter().filter(|r| r["passed"] == false) {
        let replay = run["replay"].as_str().unwrap();
        assert!(xml.contains(&format!("reproduce: {replay}\n")), "{replay}");
    }
}

#[test]
fn the_determinism_flag_is_what_puts_deterministic_in_the_report() {
    let json = scratch("det.json");
    let output = jetsim(&[
        "explore",
        "--seeds",
        "5",
        "--check-determinism",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", said(&output));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_matches_schema(&report);
    assert!(report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["deterministic"] == true));
    assert_eq!(report["command"]["check_determinism"], true);
}

/// A run that fails only under a lowered search bound replays only under that bound, so the
/// reproduce line `replay` prints carries it (as `explore`'s does).
#[test]
fn replay_under_a_search_bound_prints_a_reproduce_line_with_that_bound() {
    let output = jetsim(&["replay", "0", "--search-bound", "1"]);
    let all = said(&output);
    assert!(
        all.contains("search-bound"),
        "bound 1 gave no search-bound verdict:\n{all}"
    );
    let reproduce = all
        .lines()
        .find(|line| line.starts_with("reproduce: "))
        .unwrap_or_else(|| panic!("no reproduce line:\n{all}"));
    assert!(
        reproduce.ends_with(" --search-bound 1"),
        "the reproduce line drops the bound: {reproduce}"
    );
}
