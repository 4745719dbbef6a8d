//! A picture of one run: a single self-contained HTML file (inline CSS and SVG, no scripts,
//! no network) with a timeline of every call.
//!
//! - One lane per thread (the harness's wind-down and final term in the last lane, `wd`).
//! - Each call is a bar from its invocation step to its response step (the global sequence
//!   the harness stamps), coloured by result: ok, refused with ClientRequestToStopJetService,
//!   or another error. Stops and terms have a thick blue outline.
//! - Each successful full stop is marked across every lane (dashed lines where it was invoked
//!   and returned), with its stop record written under the lanes.
//! - For a failing run, the culprit (the call the failure text names first: the call still
//!   in flight when the stop returned, the first call no order explains, a gated call admitted
//!   after the stop) gets a red band across every lane, a marker and a thick red outline,
//!   however short its bar; the calls it brought about (the stop that returned too early, the
//!   other candidates) a dashed red outline; every other bar is faded. Each is numbered,
//!   culprits first, with a note under its bar and a line under the lanes saying what the model
//!   expected, and a "jump to the failure" link scrolls to the culprit.
//! - Zoom: the first level fits the whole run into the window's width; further levels (4
//!   times wider each, up to about 9 px a step, where most bars hold their call's name) are
//!   chosen with radio buttons that CSS alone switches, and scroll sideways.
//! - Labels never overlap: a call's name is drawn only inside its own bar (cut with an
//!   ellipsis), stop labels and notes are packed into rows ([`pack_rows`]). Every `<text>`
//!   carries its font size and anchor, so a test can measure the page (monospace glyphs
//!   advance [`GLYPH_EM`] of the font size).
//! - Hovering a bar shows the call, its steps, its result and any note (SVG `<title>`).
//!
//! The markup is XHTML-clean (every element closed, attributes quoted, text escaped), so
//! tests can check it with a tag-balance parser.

use crate::check::linearizability::Stuck;
use crate::check::{Rule, Violation};
use crate::drive::simulation::SeedReport;
use crate::history::{Event, History};
use crate::model::{ModelState, Outcome};
use crate::report::transitions::{
    self, call_text, outcome_text, stop_record_line, thread_label, Placement, Replay,
};
use crate::workload::Call;
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
        crate::drive::campaign::plural(
            report.workload.call_count(),
            "workload call",
            "workload calls"
        ),
        crate::drive::campaign::plural(threads, "thread", "threads"),
        crate::drive::campaign::plural(history.events.len(), "call", "calls")
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

/// Escapes text for the page's HTML content and attribute values.
pub fn escape(text: &str) -> String {
    super::escape_markup(text, "&#39;")
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

fn is_lifecycle(call: &Call) -> bool {
    matches!(call, Call::StopService { .. } | Call::Term { .. })
}

/// Why a call is highlighted: the whole story, the few words drawn under its bar, and
/// whether it is the culprit (what went wrong) or a consequence (what that brought about).
#[derive(Debug, Clone)]
struct Note {
    long: String,
    short: String,
    culprit: bool,
}

/// The notes of the calls to highlight, by call.
type Notes = BTreeMap<Key, Vec<Note>>;

/// The calls to highlight, with why and what was expected instead: one step per rule, each
/// finding the calls that rule's violation names.
fn offending(input: &TimelineInput) -> Notes {
    let mut notes = Notes::new();
    let history = input.history;
    let rules: Vec<Rule> = input.violations.iter().map(|v| v.rule).collect();
    if let Some(Placement::Stuck(stuck)) = input.replay.map(|r| &r.placement) {
        stuck_notes(stuck, &mut notes);
    }
    let stops: Vec<&Event> = crate::check::rules::successful_full_stops(history).collect();
    if rules.contains(&Rule::StopRule) {
        stop_rule_notes(history, &stops, &mut notes);
    }
    if rules.contains(&Rule::StopDrained) {
        stop_drained_notes(history, &stops, &mut notes);
    }
    // Rules whose violation is the stop itself, named by its return step.
    for (rule, short) in [
        (Rule::Preparation, "preparation incomplete"),
        (Rule::VersionCleanup, "versions left after cleanup"),
        (Rule::DefragParked, "pages changed after the stop"),
    ] {
        for v in input.violations.iter().filter(|v| v.rule == rule) {
            for stop in &stops {
                if v.message.contains(&format!("(step {})", stop.returned)) {
                    notes.entry(key(stop)).or_default().push(Note {
                        long: v.message.clone(),
                        short: short.to_owned(),
                        culprit: true,
                    });
                }
            }
        }
    }
    notes
}

/// Linearizability: the calls no order explains. The failure text names the first
/// candidate; the others disagree too.
fn stuck_notes(stuck: &[Stuck], notes: &mut Notes) {
    for (i, s) in stuck.iter().enumerate() {
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
            culprit: i == 0,
        });
    }
}

/// The stop rule: gated calls admitted after the first stop returned, and allowlisted calls
/// refused.
fn stop_rule_notes(history: &History, stops: &[&Event], notes: &mut Notes) {
    if let Some(returned) = stops.iter().map(|s| s.returned).min() {
        for e in &history.events {
            if e.call.is_gated() && e.invoked > returned && e.outcome.is_ok() {
                notes.entry(key(e)).or_default().push(Note {
                    long: format!(
                        "invoked after the stop returned (step {returned}) and admitted; the \
                         model expected ClientRequestToStopJetService"
                    ),
                    short: "model expected ClientRequestToStopJetService".to_owned(),
                    culprit: true,
                });
            }
        }
    }
    for e in &history.events {
        if !is_lifecycle(&e.call)
            && !e.call.is_gated()
            && e.outcome
                .is_err_named(JetError::ClientRequestToStopJetService)
        {
            notes.entry(key(e)).or_default().push(Note {
                long: "allowlisted, yet refused; the model expected it to be admitted".to_owned(),
                short: "allowlisted: model expected admission".to_owned(),
                culprit: true,
            });
        }
    }
}

/// Stop-drained, from the same observations the rule decides from
/// (`check::rules::stop_effects`): calls admitted while a full stop prepared, and the stops
/// whose log gained gated records after they returned.
fn stop_drained_notes(history: &History, stops: &[&Event], notes: &mut Notes) {
    for observation in history.stop_observations.iter().filter(|o| o.grbit == 0) {
        if let Some(first_write_at) = observation.first_write_at {
            for e in crate::check::rules::admitted_while_preparing(history, observation) {
                notes.entry(key(e)).or_default().push(Note {
                    long: format!(
                        "invoked after the stop began preparing (its first disk write, step \
                         {first_write_at}) and admitted; the stop must close the gate first"
                    ),
                    short: "admitted after the stop began preparing".to_owned(),
                    culprit: true,
                });
            }
        }
        let records = observation
            .gated_records_after
            .as_deref()
            .unwrap_or_default();
        if records.is_empty() {
            continue;
        }
        if let Some(stop) = stops
            .iter()
            .find(|s| s.returned == observation.stop_returned)
        {
            notes.entry(key(stop)).or_default().push(Note {
                long: format!(
                    "the log gained records of gated calls after it returned: {}",
                    records.join(", ")
                ),
                short: "gated calls wrote after it returned".to_owned(),
                culprit: false,
            });
        }
    }
}

/// The highlighted calls and their numbers: culprits first, each group in invocation order,
/// so (1) is always the call to look at first.
struct Highlights {
    notes: BTreeMap<Key, Vec<Note>>,
    number: BTreeMap<Key, usize>,
    /// The culprit numbered (1), the "jump to the failure" target.
    first_culprit: Option<Key>,
}

impl Highlights {
    fn of(input: &TimelineInput) -> Highlights {
        let notes = offending(input);
        let is_culprit = |k: &Key| notes[k].iter().any(|n| n.culprit);
        let mut keys: Vec<Key> = notes.keys().copied().collect();
        keys.sort_by_key(|k| (!is_culprit(k), k.1, k.0));
        let first_culprit = keys.first().copied().filter(|k| is_culprit(k));
        let number = keys.iter().enumerate().map(|(i, k)| (*k, i + 1)).collect();
        Highlights {
            notes,
            number,
            first_culprit,
        }
    }

    fn is_culprit(&self, k: &Key) -> bool {
        self.notes
            .get(k)
            .is_some_and(|notes| notes.iter().any(|n| n.culprit))
    }

    /// "(n) why; why" for the note under a bar.
    fn short(&self, k: &Key) -> Option<String> {
        let notes = self.notes.get(k)?;
        let short: Vec<&str> = notes.iter().map(|n| n.short.as_str()).collect();
        Some(format!("({}) {}", self.number[k], short.join("; ")))
    }

    fn long(&self, k: &Key) -> Option<String> {
        let notes = self.notes.get(k)?;
        let long: Vec<&str> = notes.iter().map(|n| n.long.as_str()).collect();
        Some(long.join("; "))
    }
}

/// Monospace glyphs (DejaVu Sans Mono, Liberation Mono, Courier New) advance 0.6 of the font
/// size: what every label is measured with.
pub const GLYPH_EM: f64 = 0.6;
/// Call names, stop labels and notes.
const LABEL_FONT_PX: f64 = 11.0;
const TICK_FONT_PX: f64 = 10.0;
const LANE_FONT_PX: f64 = 12.0;
/// The lane-name column.
const LEFT: f64 = 120.0;
/// The lanes' width at the fit level (the page then shrinks it to the window, never widens).
const FIT_WIDTH: f64 = 1150.0;
/// The most zoomed level's scale: about a call name's first letters in a two-step bar.
const DETAIL_STEP_PX: f64 = 9.0;
/// A short run is not stretched beyond this.
const STEP_PX_MAX: f64 = 90.0;
/// Each zoom level is this many times wider than the one before.
const ZOOM_FACTOR: f64 = 4.0;
/// One row of stop labels, tick labels or notes.
const ROW_HEIGHT: f64 = 14.0;
/// From a lane's top to its bars (room for the culprit's marker).
const BAR_OFFSET: f64 = 10.0;
const BAR_HEIGHT: f64 = 22.0;
const LANE_PADDING_BOTTOM: f64 = 8.0;
/// The narrowest bar drawn, and the narrowest culprit band.
const BAR_PX_MIN: f64 = 2.0;
const BAND_PX_MIN: f64 = 10.0;
/// The jump target's width: about a window's, less the lane names.
const JUMP_TARGET_WIDTH: f64 = 1000.0;
/// Space kept between two labels in a row.
const LABEL_GAP: f64 = 6.0;

/// Width of `text` in monospace at `font_px`.
pub fn text_width(text: &str, font_px: f64) -> f64 {
    text.chars().count() as f64 * GLYPH_EM * font_px
}

/// Writes one `<text>`, font size and anchor explicit so the page can be measured.
fn push_text(svg: &mut String, x: f64, y: f64, font_px: f64, anchor: &str, class: &str, s: &str) {
    let _ = writeln!(
        svg,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{font_px}\" text-anchor=\"{anchor}\" \
         class=\"{class}\">{}</text>",
        escape(s)
    );
}

/// `text` cut to `width` px at `font_px` with an ellipsis, or nothing when fewer than four
/// characters would remain.
fn fit_text(text: &str, width: f64, font_px: f64) -> Option<String> {
    let fits = (width / (GLYPH_EM * font_px)).floor().max(0.0) as usize;
    if text.chars().count() <= fits {
        Some(text.to_owned())
    } else if fits >= 4 {
        Some(text.chars().take(fits - 1).collect::<String>() + "\u{2026}")
    } else {
        None
    }
}

/// Places intervals `(start, end)` in rows so that two in one row keep [`LABEL_GAP`] apart:
/// by start, each goes into the first row where it fits. Returns each interval's row.
pub fn pack_rows(intervals: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..intervals.len()).collect();
    order.sort_by(|&a, &b| intervals[a].0.total_cmp(&intervals[b].0).then(a.cmp(&b)));
    let mut row_ends: Vec<f64> = Vec::new();
    let mut rows = vec![0; intervals.len()];
    for i in order {
        let (start, end) = intervals[i];
        let row = match row_ends.iter().position(|&e| e + LABEL_GAP <= start) {
            Some(row) => row,
            None => {
                row_ends.push(end);
                row_ends.len() - 1
            }
        };
        row_ends[row] = end;
        rows[i] = row;
    }
    rows
}

/// The zoom levels' scales in px per step: the whole run in [`FIT_WIDTH`] first, then
/// [`ZOOM_FACTOR`] times wider each, up to [`DETAIL_STEP_PX`] (a level less than twice the
/// one before is not worth a button).
fn zoom_levels(steps: u64) -> Vec<f64> {
    let fit = (FIT_WIDTH / steps.max(1) as f64).min(STEP_PX_MAX);
    let mut levels = vec![fit];
    while let Some(&last) = levels.last() {
        if DETAIL_STEP_PX / last < 2.0 {
            break;
        }
        levels.push((last * ZOOM_FACTOR).min(DETAIL_STEP_PX));
    }
    levels
}

/// A label placed on the horizontal axis: its text starts at `x`.
struct Placed {
    x: f64,
    text: String,
}

impl Placed {
    fn span(&self) -> (f64, f64) {
        (self.x, self.x + text_width(&self.text, LABEL_FONT_PX))
    }
}

/// One call's bar at one zoom level.
struct Bar {
    x: f64,
    width: f64,
    /// Room for the call's name: the bar's own width, never the minimum it is drawn with.
    label_room: f64,
}

/// Everything one zoom level's SVG is drawn from.
struct Level<'a> {
    input: &'a TimelineInput<'a>,
    highlights: &'a Highlights,
    /// Calls in invocation order.
    events: &'a [&'a Event],
    stops: &'a [&'a Event],
    index: usize,
    step_px: f64,
    /// The last response step plus one.
    steps: u64,
    lanes: usize,
}

/// The vertical layout of one level, decided by how many rows its labels need.
struct Rows {
    /// Each stop label's row (above the axis).
    stop_label_rows: Vec<usize>,
    stop_labels: Vec<Placed>,
    tick_baseline: f64,
    lane_top: Vec<f64>,
    lane_height: Vec<f64>,
    lanes_bottom: f64,
    /// Each highlighted call's note and its row under the bars of its lane.
    notes: BTreeMap<Key, (Placed, usize)>,
}

impl Level<'_> {
    fn x(&self, step: u64) -> f64 {
        LEFT + step as f64 * self.step_px
    }

    fn bar(&self, e: &Event) -> Bar {
        let gap = (self.step_px * 0.15).min(1.0);
        let natural = self.x(e.returned) - self.x(e.invoked) - 2.0 * gap;
        Bar {
            x: self.x(e.invoked) + gap,
            width: natural.max(BAR_PX_MIN),
            label_room: natural - 6.0,
        }
    }

    fn label_of(&self, thread: usize) -> String {
        thread_label(thread, self.input.threads)
    }

    /// The right end of the lanes: a label past it would widen the picture beyond the run.
    fn lanes_end(&self) -> f64 {
        self.x(self.steps) + 40.0
    }

    /// `text` starting at `x`, moved left as far as it must to end by [`Self::lanes_end`]
    /// (and never left of the picture).
    fn placed_inside(&self, x: f64, text: String) -> Placed {
        let width = text_width(&text, LABEL_FONT_PX);
        Placed {
            x: x.min(self.lanes_end() - width).max(2.0),
            text,
        }
    }

    /// "stop invoked (t2)" left of the line where the stop was invoked, "stop returned (t2)"
    /// right of the one where it returned (left of it when the run ends too soon after), each
    /// kept inside the picture.
    fn stop_labels(&self) -> Vec<Placed> {
        let mut labels = Vec::new();
        for stop in self.stops {
            let who = self.label_of(stop.thread);
            let invoked = format!("stop invoked ({who})");
            let x = self.x(stop.invoked) - 3.0 - text_width(&invoked, LABEL_FONT_PX);
            labels.push(self.placed_inside(x, invoked));
            let returned = format!("stop returned ({who})");
            let width = text_width(&returned, LABEL_FONT_PX);
            let right = self.x(stop.returned) + 3.0;
            let x = match right + width > self.lanes_end() {
                true => self.x(stop.returned) - 3.0 - width,
                false => right,
            };
            labels.push(self.placed_inside(x, returned));
        }
        labels
    }

    /// Decides the rows: stop labels above the axis, then the lanes, each as tall as its
    /// notes need.
    fn rows(&self) -> Rows {
        let stop_labels = self.stop_labels();
        let spans: Vec<(f64, f64)> = stop_labels.iter().map(Placed::span).collect();
        let stop_label_rows = pack_rows(&spans);
        let stop_rows = stop_label_rows.iter().map(|r| r + 1).max().unwrap_or(0);
        let tick_baseline = (stop_rows as f64 + 1.0) * ROW_HEIGHT;
        let mut notes = BTreeMap::new();
        let mut note_rows = Vec::with_capacity(self.lanes);
        for lane in 0..self.lanes {
            let placed: Vec<(Key, Placed)> = self
                .events
                .iter()
                .filter(|e| e.thread == lane)
                .filter_map(|e| {
                    let text = self.highlights.short(&key(e))?;
                    Some((key(e), self.placed_inside(self.bar(e).x, text)))
                })
                .collect();
            let spans: Vec<(f64, f64)> = placed.iter().map(|(_, p)| p.span()).collect();
            let rows = pack_rows(&spans);
            note_rows.push(rows.iter().map(|r| r + 1).max().unwrap_or(0));
            for ((k, p), row) in placed.into_iter().zip(rows) {
                notes.insert(k, (p, row));
            }
        }
        let mut lane_top = Vec::new();
        let mut lane_height = Vec::new();
        let mut y = tick_baseline + 6.0;
        for rows in note_rows {
            let height =
                BAR_OFFSET + BAR_HEIGHT + rows as f64 * ROW_HEIGHT + LANE_PADDING_BOTTOM + 2.0;
            lane_top.push(y);
            lane_height.push(height);
            y += height;
        }
        Rows {
            stop_label_rows,
            stop_labels,
            tick_baseline,
            lane_top,
            lane_height,
            lanes_bottom: y,
            notes,
        }
    }

    /// The picture's width: the whole axis, and every label.
    fn width(&self, rows: &Rows) -> f64 {
        let labels = rows
            .stop_labels
            .iter()
            .chain(rows.notes.values().map(|(p, _)| p))
            .map(|p| p.span().1)
            .fold(0.0, f64::max);
        (self.x(self.steps) + 40.0).max(labels + 8.0).ceil()
    }

    /// The step numbers along the top: a tick every 1, 2 or 5 times a power of ten steps,
    /// far enough apart for the widest number.
    fn axis(&self, svg: &mut String, rows: &Rows) {
        let widest = text_width(&self.steps.to_string(), TICK_FONT_PX);
        let mut every = 1u64;
        'search: for power in 0..20u32 {
            for base in [1u64, 2, 5] {
                every = base.saturating_mul(10u64.saturating_pow(power));
                if every as f64 * self.step_px >= widest + 2.0 * LABEL_GAP {
                    break 'search;
                }
            }
        }
        let _ = writeln!(svg, "<g class=\"axis\">");
        let mut step = 0;
        while step <= self.steps {
            let _ = writeln!(
                svg,
                "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" class=\"tick\"/>",
                self.x(step),
                rows.tick_baseline + 3.0,
                rows.lanes_bottom
            );
            push_text(
                svg,
                self.x(step),
                rows.tick_baseline,
                TICK_FONT_PX,
                "middle",
                "ticklabel",
                &step.to_string(),
            );
            step += every;
        }
        push_text(
            svg,
            8.0,
            rows.tick_baseline,
            TICK_FONT_PX,
            "start",
            "ticklabel",
            "step",
        );
        let _ = writeln!(svg, "</g>");
    }

    /// A band per lane, its name in the left column.
    fn lanes(&self, svg: &mut String, rows: &Rows, width: f64) {
        for lane in 0..self.lanes {
            let y = rows.lane_top[lane];
            let calls = self.events.iter().filter(|e| e.thread == lane).count();
            let name = if lane >= self.input.threads {
                "wd (harness)".to_owned()
            } else if calls == 0 {
                format!("t{lane} (no calls)")
            } else {
                format!("thread t{lane}")
            };
            let name = fit_text(&name, LEFT - 16.0, LANE_FONT_PX).unwrap_or_default();
            let _ = writeln!(
                svg,
                "<g class=\"lane\" id=\"lane-{}-{lane}\"><rect x=\"0\" y=\"{y:.1}\" \
                 width=\"{width:.0}\" height=\"{:.1}\" class=\"lane{}\"/>",
                self.index,
                rows.lane_height[lane],
                lane % 2
            );
            push_text(
                svg,
                8.0,
                y + BAR_OFFSET + BAR_HEIGHT / 2.0 + 4.0,
                LANE_FONT_PX,
                "start",
                "lanelabel",
                &name,
            );
            let _ = writeln!(svg, "</g>");
        }
    }

    /// Behind everything else: a red band across every lane where a culprit ran, wide enough
    /// to see however short the call.
    fn culprit_bands(&self, svg: &mut String, rows: &Rows) {
        for e in self.events {
            if !self.highlights.is_culprit(&key(e)) {
                continue;
            }
            let bar = self.bar(e);
            let width = bar.width.max(BAND_PX_MIN);
            let _ = writeln!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\" \
                 class=\"culpritband\"/>",
                bar.x + bar.width / 2.0 - width / 2.0,
                rows.lane_top.first().copied().unwrap_or(0.0),
                rows.lanes_bottom - rows.lane_top.first().copied().unwrap_or(0.0)
            );
        }
    }

    /// The "jump to the failure" link's target: an invisible box around the culprit, as wide
    /// as a window, so that scrolling it into view brings the culprit near the middle.
    fn jump_target(&self, svg: &mut String, rows: &Rows) {
        let Some(e) = self
            .highlights
            .first_culprit
            .and_then(|k| self.events.iter().find(|e| key(e) == k))
        else {
            return;
        };
        let bar = self.bar(e);
        let top = rows.lane_top.first().copied().unwrap_or(0.0);
        let x = (bar.x + bar.width / 2.0 - JUMP_TARGET_WIDTH / 2.0).max(0.0);
        let _ = writeln!(
            svg,
            "<rect id=\"failure-{}\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{JUMP_TARGET_WIDTH:.0}\" \
             height=\"{:.1}\" class=\"jumptarget\"/>",
            self.index,
            rows.lanes_bottom - top
        );
    }

    /// Dashed lines across the lanes where each full stop was invoked and returned, their
    /// labels in the rows above the axis.
    fn stop_marks(&self, svg: &mut String, rows: &Rows) {
        for stop in self.stops {
            for step in [stop.invoked, stop.returned] {
                let _ = writeln!(
                    svg,
                    "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" class=\"stopline\"/>",
                    self.x(step),
                    rows.tick_baseline + 3.0,
                    rows.lanes_bottom
                );
            }
        }
        for (label, row) in rows.stop_labels.iter().zip(&rows.stop_label_rows) {
            push_text(
                svg,
                label.x,
                (*row as f64 + 1.0) * ROW_HEIGHT - 3.0,
                LABEL_FONT_PX,
                "start",
                "stoplabel",
                &label.text,
            );
        }
    }

    /// Every call's bar, its name inside when it fits, its hover title; a highlighted call's
    /// outline, marker and note.
    fn calls(&self, svg: &mut String, rows: &Rows) {
        for e in self.events {
            let k = key(e);
            let y = rows.lane_top[e.thread] + BAR_OFFSET;
            let bar = self.bar(e);
            let text = call_text(&e.call, e.thread);
            let mut title = format!(
                "{} {} -> {} (steps {}..{})",
                self.label_of(e.thread),
                text,
                outcome_text(&e.outcome),
                e.invoked,
                e.returned
            );
            let mut classes = vec!["call", css_class(class(&e.outcome))];
            if is_lifecycle(&e.call) {
                classes.push("lifecycle");
            }
            if let Some(long) = self.highlights.long(&k) {
                classes.push("offending");
                if self.highlights.is_culprit(&k) {
                    classes.push("culprit");
                }
                let _ = write!(title, "\n({}) {long}", self.highlights.number[&k]);
            }
            let _ = writeln!(
                svg,
                "<g class=\"{}\"><title>{}</title><rect x=\"{:.1}\" y=\"{y:.1}\" \
                 width=\"{:.1}\" height=\"{BAR_HEIGHT:.1}\" rx=\"2\"/>",
                classes.join(" "),
                escape(&title),
                bar.x,
                bar.width
            );
            let name = text.split('(').next().unwrap_or("");
            if let Some(label) = fit_text(name, bar.label_room, LABEL_FONT_PX) {
                push_text(
                    svg,
                    bar.x + 3.0,
                    y + BAR_HEIGHT / 2.0 + 4.0,
                    LABEL_FONT_PX,
                    "start",
                    "barlabel",
                    &label,
                );
            }
            if self.highlights.is_culprit(&k) {
                let cx = bar.x + bar.width.min(12.0) / 2.0;
                let top = rows.lane_top[e.thread] + 1.0;
                let _ = writeln!(
                    svg,
                    "<polygon points=\"{:.1},{top:.1} {:.1},{top:.1} {cx:.1},{:.1}\" \
                     class=\"culpritmark\"/>",
                    cx - 5.0,
                    cx + 5.0,
                    top + BAR_OFFSET - 2.0
                );
            }
            if let Some((note, row)) = rows.notes.get(&k) {
                push_text(
                    svg,
                    note.x,
                    y + BAR_HEIGHT + (*row as f64 + 1.0) * ROW_HEIGHT - 2.0,
                    LABEL_FONT_PX,
                    "start",
                    "shortnote",
                    &note.text,
                );
            }
            let _ = writeln!(svg, "</g>");
        }
    }

    /// The level's whole SVG.
    fn svg(&self) -> String {
        let rows = self.rows();
        let width = self.width(&rows);
        let height = rows.lanes_bottom + 4.0;
        let mut classes = vec!["timeline"];
        if self.index == 0 {
            classes.push("fit");
        }
        if !self.input.violations.is_empty() {
            classes.push("failing");
        }
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"{}\" width=\"{width:.0}\" \
             height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" \
             font-family=\"monospace\">",
            classes.join(" ")
        );
        self.axis(&mut svg, &rows);
        self.lanes(&mut svg, &rows, width);
        self.jump_target(&mut svg, &rows);
        self.culprit_bands(&mut svg, &rows);
        self.stop_marks(&mut svg, &rows);
        self.calls(&mut svg, &rows);
        svg.push_str("</svg>\n");
        svg
    }
}

/// Renders the HTML page: title and verdict, the timeline at each zoom level, the stop
/// records and highlighted calls, every call in a table, the state transitions.
pub fn render_html(input: &TimelineInput) -> String {
    let history = input.history;
    let mut events: Vec<&Event> = history.events.iter().collect();
    events.sort_by_key(|e| (e.invoked, e.thread));
    let stops: Vec<&Event> = events
        .iter()
        .copied()
        .filter(|e| e.call.is_full_stop_of_main() && e.outcome == Outcome::Ok)
        .collect();
    let highlights = Highlights::of(input);
    let steps = history.events.iter().map(|e| e.returned).max().unwrap_or(0) + 1;
    let lanes = history
        .events
        .iter()
        .map(|e| e.thread + 1)
        .max()
        .unwrap_or(0)
        .max(input.threads);
    let scales = zoom_levels(steps);
    let levels: Vec<String> = scales
        .iter()
        .enumerate()
        .map(|(index, &step_px)| {
            Level {
                input,
                highlights: &highlights,
                events: &events,
                stops: &stops,
                index,
                step_px,
                steps,
                lanes,
            }
            .svg()
        })
        .collect();

    let mut html = String::new();
    page_head(&mut html, input, levels.len());
    verdict(&mut html, input, &highlights);
    legend(&mut html);
    timeline(&mut html, input, &highlights, &scales, &levels);
    notes_under_lanes(&mut html, input, &highlights, &stops);
    call_table(&mut html, input, &highlights, &events);
    if let Some(replay) = input.replay {
        html.push_str("<h2>State transitions (linearization order)</h2>\n<pre>");
        html.push_str(&escape(&replay.render()));
        html.push_str("</pre>\n");
    }
    html.push_str("</body>\n</html>\n");
    html
}

/// Doctype, title, the fixed style sheet and the zoom switch's rules for `levels` levels.
fn page_head(html: &mut String, input: &TimelineInput, levels: usize) {
    html.push_str(
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n",
    );
    html.push_str("<meta charset=\"utf-8\"/>\n");
    let _ = writeln!(html, "<title>{}</title>", escape(&input.title));
    html.push_str(STYLE);
    // Radio buttons before the levels pick which one shows (CSS only, no script).
    html.push_str("<style>\n");
    for i in 0..levels {
        let _ = writeln!(
            html,
            "#zoom-{i}:checked ~ #level-{i} {{ display: block; }}\n\
             #zoom-{i}:checked ~ .zoombar label[for=zoom-{i}] {{ background: #1565c0; color: #fff; }}"
        );
    }
    html.push_str("</style>\n</head>\n<body>\n");
    let _ = writeln!(html, "<h1>{}</h1>", escape(&input.title));
    for line in &input.details {
        let _ = writeln!(html, "<p class=\"detail\">{}</p>", escape(line));
    }
}

/// The verdict: every violation, and which call is the culprit.
fn verdict(html: &mut String, input: &TimelineInput, highlights: &Highlights) {
    if input.violations.is_empty() {
        html.push_str("<p class=\"verdict pass\">verdict: every rule holds</p>\n");
        return;
    }
    html.push_str("<div class=\"verdict fail\"><p>verdict: FAILED</p><ul>\n");
    for v in input.violations {
        let _ = writeln!(
            html,
            "<li><b>{}</b>: {}</li>",
            escape(v.rule.name()),
            escape(&v.message)
        );
    }
    html.push_str("</ul>\n");
    if let Some(e) = highlights
        .first_culprit
        .and_then(|k| input.history.events.iter().find(|e| key(e) == k))
    {
        let _ = writeln!(
            html,
            "<p class=\"culpritline\">culprit (1): {} {} -&gt; {}, steps {}..{}, marked in red \
             on the timeline (its link \"jump to the failure\" scrolls to it)</p>",
            escape(&thread_label(e.thread, input.threads)),
            escape(&call_text(&e.call, e.thread)),
            escape(&outcome_text(&e.outcome)),
            e.invoked,
            e.returned
        );
    }
    html.push_str("</div>\n");
}

fn legend(html: &mut String) {
    html.push_str(
        "<p class=\"legend\"><span class=\"sw ok\"></span>ok \
         <span class=\"sw refused\"></span>refused: ClientRequestToStopJetService \
         <span class=\"sw error\"></span>other error \
         <span class=\"sw lifecycle\"></span>stop / term \
         <span class=\"sw culprit\"></span>culprit (red band, numbered first) \
         <span class=\"sw offending\"></span>what it brought about \
         <span class=\"sw stop\"></span>full stop invoked / returned</p>\n",
    );
}

/// The zoom switch and one block per level: its "jump to the failure" link and its SVG.
fn timeline(
    html: &mut String,
    input: &TimelineInput,
    highlights: &Highlights,
    scales: &[f64],
    levels: &[String],
) {
    html.push_str("<div class=\"timeline\" id=\"timeline\">\n");
    if levels.len() > 1 {
        for i in 0..levels.len() {
            let _ = writeln!(
                html,
                "<input type=\"radio\" name=\"zoom\" id=\"zoom-{i}\" class=\"zoomradio\"{}/>",
                if i == 0 { " checked=\"checked\"" } else { "" }
            );
        }
        html.push_str("<p class=\"zoombar\">zoom:");
        for (i, scale) in scales.iter().enumerate() {
            let name = if i == 0 {
                "fit (whole run)".to_owned()
            } else {
                format!("\u{d7}{:.0}", scale / scales[0])
            };
            let _ = write!(html, " <label for=\"zoom-{i}\">{name}</label>");
        }
        html.push_str("</p>\n");
    }
    let culprit = highlights
        .first_culprit
        .and_then(|k| input.history.events.iter().find(|e| key(e) == k));
    for (i, (svg, scale)) in levels.iter().zip(scales).enumerate() {
        let only = if levels.len() == 1 { " only" } else { "" };
        let _ = writeln!(
            html,
            "<div class=\"level{only}\" id=\"level-{i}\">\n<p class=\"levelinfo\">{:.2} px a step",
            scale
        );
        if let Some(e) = culprit {
            let _ = write!(
                html,
                " \u{b7} <a href=\"#failure-{i}\">jump to the failure: (1) {} {} at steps {}..{}</a>",
                escape(&thread_label(e.thread, input.threads)),
                escape(&call_text(&e.call, e.thread)),
                e.invoked,
                e.returned
            );
        }
        html.push_str("</p>\n<div class=\"scroll\">\n");
        html.push_str(svg);
        html.push_str("</div>\n</div>\n");
    }
    html.push_str("</div>\n");
}

/// Under the timeline (HTML, so long lines wrap): the stop records, the highlighted calls.
fn notes_under_lanes(
    html: &mut String,
    input: &TimelineInput,
    highlights: &Highlights,
    stops: &[&Event],
) {
    let history = input.history;
    let label_of = |thread: usize| thread_label(thread, input.threads);
    let mut lines = String::new();
    for (i, stop) in stops.iter().enumerate() {
        let record = if i == 0 {
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
        if let Some(record) = record {
            let _ = writeln!(
                lines,
                "<li class=\"stopnote\">steps {}..{}: {}</li>",
                stop.invoked,
                stop.returned,
                escape(&record)
            );
        }
    }
    let mut numbered: Vec<(&usize, &Key)> = highlights.number.iter().map(|(k, n)| (n, k)).collect();
    numbered.sort();
    for (n, k) in numbered {
        let Some(e) = history.events.iter().find(|e| key(e) == *k) else {
            continue;
        };
        let _ = writeln!(
            lines,
            "<li class=\"violationnote{}\">({n}) {} {} -&gt; {}: {}</li>",
            if highlights.is_culprit(k) {
                " culpritnote"
            } else {
                ""
            },
            escape(&label_of(e.thread)),
            escape(&call_text(&e.call, e.thread)),
            escape(&outcome_text(&e.outcome)),
            escape(&highlights.long(k).unwrap_or_default())
        );
    }
    if !lines.is_empty() {
        html.push_str("<ul class=\"notes\">\n");
        html.push_str(&lines);
        html.push_str("</ul>\n");
    }
}

/// Every call in invocation order, highlighted ones with their number and note.
fn call_table(
    html: &mut String,
    input: &TimelineInput,
    highlights: &Highlights,
    events: &[&Event],
) {
    html.push_str(
        "<h2>Calls in invocation order</h2>\n<table>\n<tr><th>steps</th><th>thread</th>\
         <th>call</th><th>result</th><th>note</th></tr>\n",
    );
    for e in events {
        let k = key(e);
        let note = highlights
            .long(&k)
            .map(|long| format!("({}) {long}", highlights.number[&k]))
            .unwrap_or_default();
        let _ = writeln!(
            html,
            "<tr class=\"{}{}\"><td>{}..{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            css_class(class(&e.outcome)),
            if note.is_empty() { "" } else { " offending" },
            e.invoked,
            e.returned,
            escape(&thread_label(e.thread, input.threads)),
            escape(&call_text(&e.call, e.thread)),
            escape(&outcome_text(&e.outcome)),
            escape(&note)
        );
    }
    html.push_str("</table>\n");
}

/// Colours and sizes outside the SVG geometry (the SVG's font sizes are attributes).
const STYLE: &str = "<style>
body { font-family: sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; margin: 0 0 6px 0; }
h2 { font-size: 16px; margin-top: 24px; }
p.detail { margin: 2px 0; font-family: monospace; font-size: 12px; color: #444; }
.verdict { margin: 8px 0; padding: 6px 10px; border-radius: 4px; font-size: 13px; }
.verdict.pass { background: #e8f5e9; }
.verdict.fail { background: #ffebee; border: 1px solid #c62828; }
.verdict.fail p { margin: 0; font-weight: bold; color: #c62828; }
.verdict p.culpritline { margin-top: 4px; font-family: monospace; font-size: 12px; }
.verdict ul { margin: 4px 0; padding-left: 20px; font-family: monospace; font-size: 12px; white-space: pre-wrap; }
.legend { font-size: 12px; }
.sw { display: inline-block; width: 14px; height: 10px; margin: 0 4px 0 12px; border-radius: 2px; vertical-align: middle; }
.sw.ok { background: #66bb6a; }
.sw.refused { background: #ffa726; }
.sw.error { background: #bdbdbd; }
.sw.lifecycle { background: #fff; border: 2px solid #1565c0; }
.sw.culprit { background: rgba(213, 0, 0, 0.25); border: 3px solid #d50000; }
.sw.offending { background: #fff; border: 2px dashed #d50000; }
.sw.stop { background: #fff; border-left: 2px dashed #1565c0; }
.timeline { border: 1px solid #ddd; padding: 4px; }
.zoomradio { position: absolute; opacity: 0; width: 0; height: 0; }
.zoombar { margin: 2px 0 4px 0; font-size: 12px; }
.zoombar label { border: 1px solid #1565c0; border-radius: 3px; padding: 1px 8px; margin-right: 4px; cursor: pointer; color: #1565c0; }
.level { display: none; }
.level.only { display: block; }
.levelinfo { margin: 2px 0; font-size: 12px; color: #666; }
.levelinfo a { color: #c62828; font-weight: bold; }
.scroll { overflow-x: auto; }
svg.fit { max-width: 100%; height: auto; }
.lane0 { fill: #fafafa; }
.lane1 { fill: #f0f0f0; }
.lanelabel { font-weight: bold; fill: #333; }
.tick { stroke: #e0e0e0; stroke-width: 1; }
.ticklabel { fill: #888; }
.call rect { stroke: #555; stroke-width: 0.5; }
.call.ok rect { fill: #66bb6a; }
.call.refused rect { fill: #ffa726; }
.call.error rect { fill: #bdbdbd; }
.call.lifecycle rect { stroke: #1565c0; stroke-width: 3; }
svg.failing .call:not(.offending) { opacity: 0.4; }
.call.offending rect { stroke: #d50000; stroke-width: 2; stroke-dasharray: 4 2; }
.call.culprit rect { stroke: #d50000; stroke-width: 4; stroke-dasharray: none; }
.call:hover rect { opacity: 0.75; }
.culpritband { fill: #d50000; opacity: 0.18; }
.culpritmark { fill: #d50000; }
.jumptarget { fill: none; stroke: none; }
.barlabel { fill: #111; pointer-events: none; }
.stopline { stroke: #1565c0; stroke-width: 1.5; stroke-dasharray: 5 3; }
.stoplabel { fill: #1565c0; font-weight: bold; }
.shortnote { fill: #b71c1c; font-weight: bold; }
ul.notes { font-family: monospace; font-size: 12px; margin: 6px 0 8px 0; padding-left: 24px; }
li.stopnote { color: #1565c0; }
li.violationnote { color: #b71c1c; }
li.culpritnote { font-weight: bold; }
table { border-collapse: collapse; font-family: monospace; font-size: 12px; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
tr.refused td:nth-child(4) { color: #e65100; }
tr.error td:nth-child(4) { color: #616161; }
tr.offending { background: #ffebee; }
pre { font-size: 12px; background: #fafafa; padding: 8px; border: 1px solid #eee; overflow-x: auto; }
</style>
";
