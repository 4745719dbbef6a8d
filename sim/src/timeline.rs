//! A picture of one run: a single self-contained HTML file (inline CSS and SVG, no scripts,
//! no network) with a timeline of every call.
//!
//! - One lane per thread (the harness's wind-down and final term in the last lane, `wd`).
//! - Each call is a bar from its invocation step to its response step (the global sequence
//!   the harness stamps), coloured by result: ok, refused with ClientRequestToStopJetService,
//!   or another error. Stops and terms have a thick blue outline.
//! - Each successful full stop is marked across every lane (dashed lines where it was invoked
//!   and returned), with its stop record written under the lanes.
//! - For a failing run, the offending calls (the linearizability search's stuck candidates,
//!   a gated call that succeeded after the stop returned, a call still in flight when the stop
//!   returned) are outlined in red, numbered, and listed with what the model expected.
//! - Hovering a bar shows the call, its steps, its result and any note (SVG `<title>`).
//!
//! The markup is XHTML-clean (every element closed, attributes quoted, text escaped), so
//! tests can check it with a tag-balance parser.

use crate::check::{Rule, Violation};
use crate::history::{Event, History};
use crate::model::{ModelState, Outcome};
use crate::simulation::SeedReport;
use crate::transitions::{
    self, call_text, outcome_text, stop_record_line, thread_label, Placement, Replay,
};
use jetsim_engine::JetError;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// What to draw.
pub struct TimelineInput<'a> {
    pub title: String,
    /// Lines under the title: configuration, mutant, how to reproduce.
    pub details: Vec<String>,
    /// Workload threads (the harness's thread is drawn after them).
    pub threads: usize,
    pub history: &'a History,
    pub violations: &'a [Violation],
    pub replay: Option<&'a Replay>,
}

/// Renders `report`'s run (replayed on the model) and writes it to `path`.
pub fn write_report_html(
    title: &str,
    mut details: Vec<String>,
    report: &SeedReport,
    path: &Path,
) -> Result<(), String> {
    let history = report
        .history
        .as_ref()
        .ok_or("the run did not complete (it panicked or deadlocked): no timeline to draw")?;
    let threads = report.workload.threads.len();
    let replay = transitions::replay(history, &ModelState::for_run(&report.config), threads);
    details.push(format!(
        "{} in {}; {} with the harness's wind-down and final term (lane wd)",
        crate::campaign::plural(
            report.workload.call_count(),
            "workload call",
            "workload calls"
        ),
        crate::campaign::plural(threads, "thread", "threads"),
        crate::campaign::plural(history.events.len(), "call", "calls")
    ));
    let html = render_html(&TimelineInput {
        title: title.to_owned(),
        details,
        threads,
        history,
        violations: &report.verdict.violations,
        replay: Some(&replay),
    });
    std::fs::write(path, html).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Result classes, for colour and legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Ok,
    Refused,
    Error,
}

fn class(outcome: &Outcome) -> Class {
    if outcome.is_ok() {
        Class::Ok
    } else if outcome.is_err_named(JetError::ClientRequestToStopJetService) {
        Class::Refused
    } else {
        Class::Error
    }
}

fn css_class(class: Class) -> &'static str {
    match class {
        Class::Ok => "ok",
        Class::Refused => "refused",
        Class::Error => "error",
    }
}

type Key = (usize, u64);

fn key(e: &Event) -> Key {
    (e.thread, e.invoked)
}

/// Why a call is highlighted: the whole story, and the few words drawn under its bar.
#[derive(Debug, Clone)]
struct Note {
    long: String,
    short: String,
}

/// The calls to highlight, with why and what was expected instead.
fn offending(input: &TimelineInput) -> BTreeMap<Key, Vec<Note>> {
    let mut notes: BTreeMap<Key, Vec<Note>> = BTreeMap::new();
    let history = input.history;
    let rules: Vec<Rule> = input.violations.iter().map(|v| v.rule).collect();
    if let Some(Placement::Stuck(stuck)) = input.replay.map(|r| &r.placement) {
        for s in stuck {
            notes.entry(key(&s.event)).or_default().push(Note {
                long: format!(
                    "no order explains it: the engine returned {}, the model expected {}",
                    outcome_text(&s.event.outcome),
                    outcome_text(&s.model_expected)
                ),
                short: format!(
                    "returned {}; model expected {}",
                    outcome_text(&s.event.outcome),
                    outcome_text(&s.model_expected)
                ),
            });
        }
    }
    let stops: Vec<&Event> = history
        .events
        .iter()
        .filter(|e| e.call.is_full_stop_of_main() && e.outcome == Outcome::Ok)
        .collect();
    if rules.contains(&Rule::StopRule) {
        if let Some(returned) = stops.iter().map(|s| s.returned).min() {
            for e in &history.events {
                if e.call.is_gated() && e.invoked > returned && e.outcome.is_ok() {
                    notes.entry(key(e)).or_default().push(Note {
                        long: format!(
                            "invoked after the stop returned (step {returned}) and admitted; the \
                             model expected ClientRequestToStopJetService"
                        ),
                        short: "model expected ClientRequestToStopJetService".to_owned(),
                    });
                }
            }
        }
        for e in &history.events {
            let lifecycle = matches!(
                e.call,
                crate::workload::Call::StopService { .. } | crate::workload::Call::Term { .. }
            );
            if !lifecycle
                && !e.call.is_gated()
                && e.outcome
                    .is_err_named(JetError::ClientRequestToStopJetService)
            {
                notes.entry(key(e)).or_default().push(Note {
                    long: "allowlisted, yet refused; the model expected it to be admitted"
                        .to_owned(),
                    short: "allowlisted: model expected admission".to_owned(),
                });
            }
        }
    }
    if rules.contains(&Rule::StopDrained) {
        for after in history
            .after_stops
            .iter()
            .filter(|a| a.gated_calls_in_flight > 0)
        {
            // The same calls the failure text names: the likeliest of those overlapping the
            // stop's return, as many as the engine counted in flight.
            let in_flight = crate::check::rules::in_flight_at_stop(history, after);
            for e in in_flight
                .into_iter()
                .take(after.gated_calls_in_flight as usize)
            {
                notes.entry(key(e)).or_default().push(Note {
                    long: format!(
                        "still in flight when the stop returned (step {}); the stop must wait \
                         for it",
                        after.stop_returned
                    ),
                    short: "in flight after the stop returned".to_owned(),
                });
            }
            if let Some(stop) = stops.iter().find(|s| s.returned == after.stop_returned) {
                notes.entry(key(stop)).or_default().push(Note {
                    long: format!(
                        "returned with {} in flight (phase {}); expected 0",
                        crate::campaign::plural(
                            after.gated_calls_in_flight as usize,
                            "gated call",
                            "gated calls"
                        ),
                        after.phase
                    ),
                    short: format!("returned with {} in flight", after.gated_calls_in_flight),
                });
            }
        }
    }
    if rules.contains(&Rule::Preparation) {
        for v in input
            .violations
            .iter()
            .filter(|v| v.rule == Rule::Preparation)
        {
            for stop in &stops {
                if v.message.contains(&format!("(step {})", stop.returned)) {
                    notes.entry(key(stop)).or_default().push(Note {
                        long: v.message.clone(),
                        short: "preparation incomplete".to_owned(),
                    });
                }
            }
        }
    }
    notes
}

const LANE_HEIGHT: f64 = 58.0;
/// Width of one character of the bar labels (monospace, 11px), for fitting them.
const CHAR_WIDTH: f64 = 6.8;
const BAR_HEIGHT: f64 = 24.0;
const LEFT: f64 = 120.0;
const TOP: f64 = 56.0;

/// Renders the HTML page.
pub fn render_html(input: &TimelineInput) -> String {
    let history = input.history;
    let mut events: Vec<&Event> = history.events.iter().collect();
    events.sort_by_key(|e| (e.invoked, e.thread));
    let lanes = history
        .events
        .iter()
        .map(|e| e.thread + 1)
        .max()
        .unwrap_or(0)
        .max(input.threads);
    let last_step = history.events.iter().map(|e| e.returned).max().unwrap_or(0) + 1;
    let px = (1150.0 / last_step as f64).clamp(9.0, 90.0);
    let x = |step: u64| LEFT + step as f64 * px;
    let lanes_bottom = TOP + lanes as f64 * LANE_HEIGHT;
    let lane_top = |lane: usize| TOP + lane as f64 * LANE_HEIGHT;
    let bar_top = |lane: usize| lane_top(lane) + 8.0;
    let notes = offending(input);
    let numbered: BTreeMap<Key, usize> =
        notes.keys().enumerate().map(|(i, k)| (*k, i + 1)).collect();
    let stops: Vec<&Event> = events
        .iter()
        .copied()
        .filter(|e| e.call.is_full_stop_of_main() && e.outcome == Outcome::Ok)
        .collect();
    let label_of = |thread: usize| thread_label(thread, input.threads);

    // Under the timeline (HTML, so long lines wrap): the stop records, the offending calls.
    let mut footer = String::new();
    let mut first_stop = true;
    for stop in &stops {
        let record = if first_stop {
            history
                .after_stops
                .iter()
                .find(|a| a.stop_returned == stop.returned)
                .map(|after| stop_record_line(after, &label_of(stop.thread)))
        } else {
            Some(format!(
                "{} stop: already stopped, nothing done (no new stop record)",
                label_of(stop.thread)
            ))
        };
        first_stop = false;
        if let Some(record) = record {
            let _ = writeln!(
                footer,
                "<li class=\"stopnote\">steps {}..{}: {}</li>",
                stop.invoked,
                stop.returned,
                escape(&record)
            );
        }
    }
    for (k, lines) in &notes {
        if let Some(e) = history.events.iter().find(|e| key(e) == *k) {
            let long: Vec<&str> = lines.iter().map(|n| n.long.as_str()).collect();
            let _ = writeln!(
                footer,
                "<li class=\"violationnote\">({}) {} {} -&gt; {}: {}</li>",
                numbered[k],
                escape(&label_of(e.thread)),
                escape(&call_text(&e.call, e.thread)),
                escape(&outcome_text(&e.outcome)),
                escape(&long.join("; "))
            );
        }
    }
    let width = x(last_step) + 40.0;
    let height = lanes_bottom + 12.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"monospace\" font-size=\"12\">"
    );
    // Axis: a tick every few steps.
    let tick_every = ((40.0 / px).ceil() as u64).max(1);
    let _ = writeln!(svg, "<g class=\"axis\">");
    let mut step = 0;
    while step <= last_step {
        let _ = writeln!(
            svg,
            "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" class=\"tick\"/>\
             <text x=\"{0:.1}\" y=\"{3:.1}\" text-anchor=\"middle\" class=\"ticklabel\">{4}</text>",
            x(step),
            TOP - 6.0,
            lanes_bottom,
            TOP - 10.0,
            step
        );
        step += tick_every;
    }
    let _ = writeln!(
        svg,
        "<text x=\"8\" y=\"{:.1}\" class=\"ticklabel\">step</text></g>",
        TOP - 10.0
    );
    // Lanes.
    for lane in 0..lanes {
        let y = lane_top(lane);
        let calls = history.events.iter().filter(|e| e.thread == lane).count();
        let name = if lane >= input.threads {
            "wd (harness)".to_owned()
        } else if calls == 0 {
            format!("t{lane} (no calls)")
        } else {
            format!("thread t{lane}")
        };
        let _ = writeln!(
            svg,
            "<g class=\"lane\" id=\"lane-{lane}\"><rect x=\"0\" y=\"{y:.1}\" width=\"{width:.0}\" \
             height=\"{LANE_HEIGHT:.1}\" class=\"lane{}\"/><text x=\"8\" y=\"{:.1}\" \
             class=\"lanelabel\">{}</text></g>",
            lane % 2,
            y + 8.0 + BAR_HEIGHT / 2.0 + 4.0,
            escape(&name)
        );
    }
    // The stops, across every lane.
    for stop in &stops {
        for (step, what) in [(stop.invoked, "invoked"), (stop.returned, "returned")] {
            let _ = writeln!(
                svg,
                "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" class=\"stopline\"/>\
                 <text x=\"{3:.1}\" y=\"{4:.1}\" class=\"stoplabel\" text-anchor=\"{5}\">stop {6} ({7})</text>",
                x(step),
                TOP - 4.0,
                lanes_bottom,
                x(step) + if what == "invoked" { -3.0 } else { 3.0 },
                TOP - 24.0,
                if what == "invoked" { "end" } else { "start" },
                what,
                escape(&label_of(stop.thread))
            );
        }
    }
    // The calls.
    for e in &events {
        let lane = e.thread;
        let y = bar_top(lane);
        let x0 = x(e.invoked) + 1.0;
        let w = (x(e.returned) - x(e.invoked) - 2.0).max(4.0);
        let text = call_text(&e.call, e.thread);
        let mut title = format!(
            "{} {} -> {} (steps {}..{})",
            label_of(e.thread),
            text,
            outcome_text(&e.outcome),
            e.invoked,
            e.returned
        );
        let lifecycle = matches!(
            e.call,
            crate::workload::Call::StopService { .. } | crate::workload::Call::Term { .. }
        );
        let mut classes = vec!["call", css_class(class(&e.outcome))];
        if lifecycle {
            classes.push("lifecycle");
        }
        let note = notes.get(&key(e));
        if let Some(lines) = note {
            classes.push("offending");
            for line in lines {
                title.push('\n');
                title.push_str(&line.long);
            }
        }
        let _ = writeln!(
            svg,
            "<g class=\"{}\"><title>{}</title><rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" \
             height=\"{BAR_HEIGHT:.1}\" rx=\"3\"/>",
            classes.join(" "),
            escape(&title)
        );
        // The call's name inside its bar, cut short (with an ellipsis) when the bar is narrow.
        let name = text.split('(').next().unwrap_or("");
        let chars_fit = ((w - 6.0) / CHAR_WIDTH).floor().max(0.0) as usize;
        let label = if name.chars().count() <= chars_fit {
            Some(name.to_owned())
        } else if chars_fit >= 4 {
            Some(name.chars().take(chars_fit - 1).collect::<String>() + "\u{2026}")
        } else {
            None
        };
        if let Some(label) = label {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"barlabel\">{}</text>",
                x0 + 3.0,
                y + BAR_HEIGHT / 2.0 + 4.0,
                escape(&label)
            );
        }
        if let Some(n) = numbered.get(&key(e)) {
            let cx = x0 + w;
            let _ = writeln!(
                svg,
                "<circle cx=\"{cx:.1}\" cy=\"{y:.1}\" r=\"8\" class=\"badge\"/>\
                 <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"badgetext\">{n}</text>",
                y + 4.0
            );
            let short: Vec<&str> = note
                .map(|lines| lines.iter().map(|l| l.short.as_str()).collect())
                .unwrap_or_default();
            let _ = writeln!(
                svg,
                "<text x=\"{x0:.1}\" y=\"{:.1}\" class=\"shortnote\">({n}) {}</text>",
                y + BAR_HEIGHT + 13.0,
                escape(&short.join("; "))
            );
        }
        let _ = writeln!(svg, "</g>");
    }
    svg.push_str("</svg>\n");

    let mut html = String::new();
    html.push_str(
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n",
    );
    html.push_str("<meta charset=\"utf-8\"/>\n");
    let _ = writeln!(html, "<title>{}</title>", escape(&input.title));
    html.push_str(STYLE);
    html.push_str("</head>\n<body>\n");
    let _ = writeln!(html, "<h1>{}</h1>", escape(&input.title));
    for line in &input.details {
        let _ = writeln!(html, "<p class=\"detail\">{}</p>", escape(line));
    }
    if input.violations.is_empty() {
        html.push_str("<p class=\"verdict pass\">verdict: every rule holds</p>\n");
    } else {
        html.push_str("<div class=\"verdict fail\"><p>verdict: FAILED</p><ul>\n");
        for v in input.violations {
            let _ = writeln!(
                html,
                "<li><b>{}</b>: {}</li>",
                escape(v.rule.name()),
                escape(&v.message)
            );
        }
        html.push_str("</ul></div>\n");
    }
    html.push_str(
        "<p class=\"legend\"><span class=\"sw ok\"></span>ok \
         <span class=\"sw refused\"></span>refused: ClientRequestToStopJetService \
         <span class=\"sw error\"></span>other error \
         <span class=\"sw lifecycle\"></span>stop / term \
         <span class=\"sw offending\"></span>offending call (numbered, see below the lanes) \
         <span class=\"sw stop\"></span>full stop invoked / returned</p>\n",
    );
    html.push_str("<div class=\"timeline\">\n");
    html.push_str(&svg);
    if !footer.is_empty() {
        html.push_str("<ul class=\"notes\">\n");
        html.push_str(&footer);
        html.push_str("</ul>\n");
    }
    html.push_str("</div>\n");
    html.push_str("<h2>Calls in invocation order</h2>\n<table>\n<tr><th>steps</th><th>thread</th><th>call</th><th>result</th><th>note</th></tr>\n");
    for e in &events {
        let note = notes
            .get(&key(e))
            .map(|lines| {
                let long: Vec<&str> = lines.iter().map(|n| n.long.as_str()).collect();
                format!("({}) {}", numbered[&key(e)], long.join("; "))
            })
            .unwrap_or_default();
        let _ = writeln!(
            html,
            "<tr class=\"{}{}\"><td>{}..{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            css_class(class(&e.outcome)),
            if note.is_empty() { "" } else { " offending" },
            e.invoked,
            e.returned,
            escape(&label_of(e.thread)),
            escape(&call_text(&e.call, e.thread)),
            escape(&outcome_text(&e.outcome)),
            escape(&note)
        );
    }
    html.push_str("</table>\n");
    if let Some(replay) = input.replay {
        html.push_str("<h2>State transitions (linearization order)</h2>\n<pre>");
        html.push_str(&escape(&replay.render()));
        html.push_str("</pre>\n");
    }
    html.push_str("</body>\n</html>\n");
    html
}

const STYLE: &str = "<style>
body { font-family: sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; margin: 0 0 6px 0; }
h2 { font-size: 16px; margin-top: 24px; }
p.detail { margin: 2px 0; font-family: monospace; font-size: 12px; color: #444; }
.verdict { margin: 8px 0; padding: 6px 10px; border-radius: 4px; font-size: 13px; }
.verdict.pass { background: #e8f5e9; }
.verdict.fail { background: #ffebee; border: 1px solid #c62828; }
.verdict.fail p { margin: 0; font-weight: bold; color: #c62828; }
.verdict ul { margin: 4px 0; padding-left: 20px; font-family: monospace; font-size: 12px; }
.legend { font-size: 12px; }
.sw { display: inline-block; width: 14px; height: 10px; margin: 0 4px 0 12px; border-radius: 2px; vertical-align: middle; }
.sw.ok { background: #66bb6a; }
.sw.refused { background: #ffa726; }
.sw.error { background: #bdbdbd; }
.sw.lifecycle { background: #fff; border: 2px solid #1565c0; }
.sw.offending { background: #fff; border: 2px solid #d50000; }
.sw.stop { background: #fff; border-left: 2px dashed #1565c0; }
.timeline { overflow-x: auto; border: 1px solid #ddd; }
.lane0 { fill: #fafafa; }
.lane1 { fill: #f0f0f0; }
.lanelabel { font-weight: bold; fill: #333; }
.tick { stroke: #e0e0e0; stroke-width: 1; }
.ticklabel { fill: #888; font-size: 10px; }
.call rect { stroke: #555; stroke-width: 0.5; }
.call.ok rect { fill: #66bb6a; }
.call.refused rect { fill: #ffa726; }
.call.error rect { fill: #bdbdbd; }
.call.lifecycle rect { stroke: #1565c0; stroke-width: 3; }
.call.offending rect { stroke: #d50000; stroke-width: 3.5; }
.call:hover rect { opacity: 0.75; }
.barlabel { fill: #111; font-size: 11px; pointer-events: none; }
.badge { fill: #d50000; }
.badgetext { fill: #fff; font-size: 11px; font-weight: bold; pointer-events: none; }
.stopline { stroke: #1565c0; stroke-width: 1.5; stroke-dasharray: 5 3; }
.stoplabel { fill: #1565c0; font-size: 11px; font-weight: bold; }
.shortnote { fill: #b71c1c; font-size: 11px; font-weight: bold; }
ul.notes { font-family: monospace; font-size: 12px; margin: 6px 0 8px 0; padding-left: 24px; }
li.stopnote { color: #1565c0; }
li.violationnote { color: #b71c1c; font-weight: bold; }
table { border-collapse: collapse; font-family: monospace; font-size: 12px; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
tr.refused td:nth-child(4) { color: #e65100; }
tr.error td:nth-child(4) { color: #616161; }
tr.offending { background: #ffebee; }
pre { font-size: 12px; background: #fafafa; padding: 8px; border: 1px solid #eee; overflow-x: auto; }
</style>
";
