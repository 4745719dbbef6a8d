//! The HTML timeline as a reader meets it: measured from the page itself, no two labels of
//! any zoom level overlap (on a 3-call regression, on a run with two stops a few steps
//! apart, and on a run of more than 1,000 calls), a call's name stays inside its own bar,
//! the first level fits the whole run into a window's width, and a failing run's culprit is
//! marked at every level with a "jump to the failure" link that has its target.
//!
//! Labels are measured as the page draws them: monospace (the SVG's `font-family`), each
//! glyph `GLYPH_EM` of its `font-size` wide, boxes from 0.8 of the size above the baseline
//! to 0.25 below.

#[allow(dead_code)]
mod common;

use common::{scenario_page, scenarios_dir};
use jetsim::scenario::Scenario;
use jetsim::timeline::GLYPH_EM;
use serde_json::json;

/// The value of attribute `name` in the tag text `tag`.
fn attribute<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

fn number(tag: &str, name: &str) -> f64 {
    attribute(tag, name)
        .unwrap_or_else(|| panic!("no {name} in <{tag}>"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} in <{tag}> is not a number"))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// A drawn label's box.
#[derive(Debug, Clone)]
struct Label {
    text: String,
    class: String,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    /// The bar drawn just before it in the same call group, for a call's name.
    bar: Option<(f64, f64)>,
}

/// Every `<text>` of one SVG, measured.
fn labels(svg: &str) -> Vec<Label> {
    let mut labels = Vec::new();
    let mut bar = None;
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let end = rest.find('>').expect("unclosed tag");
        let tag = &rest[..end];
        if tag.starts_with("g ") {
            bar = None;
        } else if tag.starts_with("rect ") && attribute(tag, "class").is_none() {
            let x = number(tag, "x");
            bar = Some((x, x + number(tag, "width")));
        } else if tag.starts_with("text ") {
            let close = rest.find("</text>").expect("unclosed <text>");
            let text = unescape(&rest[end + 1..close]);
            let size = number(tag, "font-size");
            let width = text.chars().count() as f64 * GLYPH_EM * size;
            let x = number(tag, "x");
            let y = number(tag, "y");
            let left = match attribute(tag, "text-anchor") {
                Some("start") => x,
                Some("middle") => x - width / 2.0,
                Some("end") => x - width,
                other => panic!("<{tag}>: text-anchor {other:?}"),
            };
            labels.push(Label {
                class: attribute(tag, "class").unwrap_or("").to_owned(),
                text,
                left,
                right: left + width,
                top: y - 0.8 * size,
                bottom: y + 0.25 * size,
                bar,
            });
        }
    }
    labels
}

/// What is wrong with one SVG's labels: pairs that overlap, labels outside the picture, a
/// call's name outside its bar.
fn label_problems(svg: &str) -> Vec<String> {
    let head = &svg[..svg.find('>').unwrap()];
    let (width, height) = (number(head, "width"), number(head, "height"));
    let mut labels = labels(svg);
    let mut problems = Vec::new();
    for l in &labels {
        if l.left < 0.0 || l.right > width || l.top < 0.0 || l.bottom > height {
            problems.push(format!(
                "{:?} ({}) lies outside the {width}x{height} picture: {l:?}",
                l.text, l.class
            ));
        }
        if l.class == "barlabel" {
            match l.bar {
                Some((left, right)) if l.left >= left && l.right <= right => {}
                _ => problems.push(format!(
                    "call name {:?} is not inside its bar: {l:?}",
                    l.text
                )),
            }
        }
    }
    labels.sort_by(|a, b| a.left.total_cmp(&b.left));
    for (i, a) in labels.iter().enumerate() {
        for b in &labels[i + 1..] {
            if b.left >= a.right {
                break;
            }
            if a.top < b.bottom && b.top < a.bottom {
                problems.push(format!(
                    "{:?} ({}, x {:.1}..{:.1}, y {:.1}..{:.1}) overlaps {:?} ({}, x {:.1}..{:.1}, y {:.1}..{:.1})",
                    a.text, a.class, a.left, a.right, a.top, a.bottom,
                    b.text, b.class, b.left, b.right, b.top, b.bottom
                ));
            }
        }
    }
    problems
}

/// Every SVG in the page (one per zoom level).
fn svgs(html: &str) -> Vec<&str> {
    html.match_indices("<svg ")
        .map(|(start, _)| {
            let end = html[start..].find("</svg>").unwrap() + start + "</svg>".len();
            &html[start..end]
        })
        .collect()
}

fn assert_no_label_problems(what: &str, html: &str) {
    let svgs = svgs(html);
    assert!(!svgs.is_empty(), "{what}: no SVG");
    for (level, svg) in svgs.iter().enumerate() {
        let problems = label_problems(svg);
        assert!(
            problems.is_empty(),
            "{what}, zoom level {level}: {} label problems:\n{}",
            problems.len(),
            problems.join("\n")
        );
        assert!(
            labels(svg).len() > 3,
            "{what}, level {level}: nothing measured"
        );
    }
}

/// Runs `scenario` and renders its page.
fn page(scenario: &Scenario) -> (String, usize) {
    let run = scenario.run().unwrap();
    let history = run.report.history.as_ref().expect("the run completed");
    let replay = run.replay.as_ref().unwrap();
    let html = scenario_page(scenario, history, &run.report.verdict.violations, replay);
    (html, history.events.len())
}

/// Checks a failing run's page: the culprit is marked at every level, and every level's
/// "jump to the failure" link has its target in that level.
fn assert_culprit_marked(what: &str, html: &str) {
    for (level, svg) in svgs(html).iter().enumerate() {
        assert!(
            svg.contains(" offending culprit\""),
            "{what}, level {level}: no culprit drawn"
        );
        assert_eq!(
            svg.matches("class=\"culpritband\"").count(),
            svg.matches(" culprit\"").count(),
            "{what}, level {level}: a band per culprit"
        );
        assert!(
            svg.contains(&format!("id=\"failure-{level}\"")),
            "{what}, level {level}: no jump target"
        );
        assert!(
            html.contains(&format!("href=\"#failure-{level}\"")),
            "{what}, level {level}: no jump link"
        );
    }
    assert!(
        html.contains("culprit (1): "),
        "{what}: the verdict names the culprit"
    );
}

#[test]
fn three_call_regressions_draw_without_overlapping_labels() {
    for name in [
        "stopflaglast-pct-seed-148",
        "allowlistextracommit-pct-seed-11",
    ] {
        let scenario =
            Scenario::load(&scenarios_dir().join(format!("regressions/{name}.json"))).unwrap();
        assert_eq!(scenario.threads.iter().map(Vec::len).sum::<usize>(), 3);
        let (html, _) = page(&scenario);
        assert_eq!(svgs(&html).len(), 1, "{name}: a short run needs no zoom");
        assert!(!html.contains("class=\"zoomradio\""), "{name}");
        assert_no_label_problems(name, &html);
        assert_culprit_marked(name, &html);
    }
}

#[test]
fn a_stop_that_leaves_versions_is_the_culprit_drawn() {
    let name = "versioncleanupnotsignalled-mix-seed-0";
    let scenario =
        Scenario::load(&scenarios_dir().join(format!("regressions/{name}.json"))).unwrap();
    let (html, _) = page(&scenario);
    assert_culprit_marked(name, &html);
    assert!(html.contains("versions left after cleanup"), "{name}");
    assert_no_label_problems(name, &html);
}

#[test]
fn two_stops_a_few_steps_apart_get_labels_in_separate_rows() {
    let scenario = Scenario::load(&scenarios_dir().join("second-stop.json")).unwrap();
    let (html, _) = page(&scenario);
    let svg = svgs(&html)[0];
    let stop_labels: Vec<Label> = labels(svg)
        .into_iter()
        .filter(|l| l.class == "stoplabel")
        .collect();
    assert_eq!(stop_labels.len(), 4, "{stop_labels:?}");
    assert_no_label_problems("second-stop", &html);
}

/// Five threads of 200 calls each (sessions, transactions, inserts, seeks); thread 0 stops
/// the instance after about 120 of its calls. Under StopFlagLast the stop returns with calls
/// in flight.
fn thousand_call_scenario() -> Scenario {
    let var = |n: u8| json!({"Var": n});
    let mut threads = Vec::new();
    for t in 0..5u8 {
        let mut calls = vec![
            json!({"BeginSession": {"bind": 0}}),
            json!({"OpenDatabase": {"ses": var(0), "bind": 0}}),
            json!({"OpenTable": {"ses": var(0), "db": var(0), "table": t % 2, "bind": 0}}),
        ];
        let mut i = 0u32;
        while calls.len() < 200 {
            let key = ((u32::from(t) * 37 + i * 11) % 16) as u8;
            calls.push(json!({"BeginTransaction": {"ses": var(0)}}));
            calls.push(
                json!({"Insert": {"ses": var(0), "table": var(0), "key": key, "value": i % 9}}),
            );
            calls.push(json!({"Seek": {"ses": var(0), "table": var(0), "key": key, "mode": "GreaterOrEqual"}}));
            calls.push(json!({"CommitTransaction": {"ses": var(0)}}));
            if t == 0 && calls.len() >= 120 && calls.len() < 124 {
                calls.push(json!({"StopService": {"instance": "Main", "grbit": 0}}));
            }
            i += 1;
        }
        calls.truncate(200);
        threads.push(calls);
    }
    serde_json::from_value(json!({
        "name": "thousand-calls",
        "description": "1,000 calls in 5 threads, a stop in the middle, StopFlagLast",
        "engine": {"cache_size_pages": 64, "checkpoint_depth_max_bytes": 65536,
                   "version_store_max_versions": 65536, "online_defrag": true,
                   "background_thread": false},
        "threads": threads,
        "schedule": {"scheduler": "Random", "schedule_seed": 0},
        "mutant": "StopFlagLast",
        "expect": {"fail": ["stop-drained"]}
    }))
    .expect("the scenario's JSON matches the schema")
}

#[test]
fn a_thousand_call_run_fits_the_window_zooms_and_points_at_its_culprit() {
    let mut scenario = thousand_call_scenario();
    assert_eq!(scenario.threads.iter().map(Vec::len).sum::<usize>(), 1000);
    // A schedule seed under which the stop returns with calls in flight and the timeline has
    // a culprit to draw: a call admitted after the stop began preparing. Not every failing
    // seed has one: when the only evidence is a commit record written after the stop returned
    // by a call admitted before it began, the page marks the stop and no culprit.
    let seed = (0..64)
        .find(|&seed| {
            let mut candidate = scenario.clone();
            candidate.schedule.schedule_seed = seed;
            candidate
                .run()
                .is_ok_and(|run| run.missed_expectations().is_empty())
                && svgs(&page(&candidate).0)
                    .iter()
                    .all(|svg| svg.contains(" offending culprit\""))
        })
        .expect("a schedule seed under which the stop returns with a culprit in flight");
    scenario.schedule.schedule_seed = seed;
    let (html, calls) = page(&scenario);
    assert!(calls > 1000, "{calls} calls");
    let svgs = svgs(&html);
    assert!(svgs.len() >= 3, "{} zoom levels", svgs.len());
    // Fit to width: the first level shows every step within a window's width and is shrunk
    // further by the page, never widened.
    let fit = svgs[0];
    assert!(fit.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline fit"));
    let fit_width = number(&fit[..fit.find('>').unwrap()], "width");
    assert!(fit_width <= 1400.0, "the fit level is {fit_width} px wide");
    assert!(html.contains("svg.fit { max-width: 100%; height: auto; }"));
    // Zoom: one radio button per level, the first chosen, each level wider than the last.
    assert_eq!(html.matches("class=\"zoomradio\"").count(), svgs.len());
    assert_eq!(html.matches("checked=\"checked\"").count(), 1);
    let widths: Vec<f64> = svgs
        .iter()
        .map(|svg| number(&svg[..svg.find('>').unwrap()], "width"))
        .collect();
    assert!(widths.windows(2).all(|w| w[1] > w[0] * 1.5), "{widths:?}");
    // Every call drawn at every level.
    for svg in &svgs {
        assert_eq!(svg.matches("<g class=\"call ").count(), calls);
    }
    assert_no_label_problems("1,000 calls", &html);
    assert_culprit_marked("1,000 calls", &html);
    // The most zoomed level names most calls inside their bars.
    let named = labels(svgs[svgs.len() - 1])
        .iter()
        .filter(|l| l.class == "barlabel")
        .count();
    assert!(named * 2 > calls, "{named} of {calls} calls named");
}

#[test]
fn the_label_check_finds_overlaps_and_names_outside_their_bars() {
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"300\" height=\"100\">\
        <text x=\"10\" y=\"20\" font-size=\"11\" text-anchor=\"start\" class=\"stoplabel\">stop invoked (t0)</text>\
        <text x=\"60\" y=\"22\" font-size=\"11\" text-anchor=\"start\" class=\"stoplabel\">stop returned (t1)</text>\
        <g class=\"call ok\"><rect x=\"100\" y=\"40\" width=\"20\" height=\"22\"/>\
        <text x=\"103\" y=\"55\" font-size=\"11\" text-anchor=\"start\" class=\"barlabel\">begin_session</text></g>\
        <text x=\"290\" y=\"90\" font-size=\"10\" text-anchor=\"middle\" class=\"ticklabel\">1000</text>\
        </svg>";
    let problems = label_problems(svg);
    assert!(
        problems.iter().any(|p| p.contains("overlaps")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("not inside its bar")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("outside")),
        "{problems:?}"
    );
    // And the page of a passing run has none.
    let scenario = Scenario::load(&scenarios_dir().join("stop-racing-commit.json")).unwrap();
    let (html, _) = page(&scenario);
    assert!(html.contains("verdict: every rule holds"));
    assert_no_label_problems("stop-racing-commit", &html);
}
