//! The report's charts, drawn with plotters into inline SVG.
//!
//! plotters' SVG backend writes text as SVG `<text>` (no font files, no system fonts: the browser's
//! sans-serif draws it), so a chart is a few kilobytes of markup a page can inline. plotters draws a font of
//! size `s` at about `s / 1.24` px: the sizes below are chosen for 12–18 px text. Every chart uses the
//! palette of [`palette`] so a colour means one thing throughout the report.

use plotters::coord::ranged1d::{SegmentValue, SegmentedCoord};
use plotters::coord::types::{RangedCoordf64, RangedCoordi32};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::view::{FrontPointView, MetricView, ReportView};
use crate::error::{Error, Result};

/// The report's colours: each means one thing in every chart.
pub mod palette {
    use plotters::style::RGBColor;
    /// Quantized, kept, exact: the normal case.
    pub const INT8: RGBColor = RGBColor(0x2b, 0x6c, 0xb0);
    /// Moved to 16 bits by the precision ladder.
    pub const SIXTEEN: RGBColor = RGBColor(0x31, 0x97, 0x95);
    /// Reverted to FP32 and kept.
    pub const REVERTED: RGBColor = RGBColor(0xdd, 0x6b, 0x20);
    /// Rolled back, limits, at risk.
    pub const ALERT: RGBColor = RGBColor(0xc5, 0x30, 0x30);
    /// Bounds and other not-measured-exactly values.
    pub const BOUND: RGBColor = RGBColor(0xa0, 0xae, 0xc0);
}

/// Width of every chart, in pixels (the page is 1200 px wide at most).
const WIDTH: u32 = 1140;
/// Height of one bar's row.
const ROW: u32 = 17;
/// Longest label kept whole (longer ones keep their end: the last path components name the op).
const LABEL_CHARS: usize = 52;
const FONT: &str = "sans-serif";
/// Grid lines: visible, never louder than the data.
const GRID: RGBColor = RGBColor(0xe2, 0xe8, 0xf0);

/// How one bar is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BarKind {
    /// Measured, in the normal colour.
    Normal,
    /// Highlighted as reverted to FP32.
    Reverted,
    /// Highlighted as an alert (rolled back, at risk).
    Alert,
    /// A bound, not a measured value: hollow.
    Bound,
}

/// One row of a horizontal bar chart.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Row label.
    pub label: String,
    /// Bar length, in axis units.
    pub value: f64,
    /// Style.
    pub kind: BarKind,
    /// Text after the bar's end.
    pub note: String,
}

/// A horizontal bar chart: one row per bar, top to bottom.
pub struct BarChart<'a> {
    /// Caption.
    pub title: &'a str,
    /// The x axis's description.
    pub x_desc: &'a str,
    /// The bars.
    pub bars: Vec<Bar>,
    /// Where bars start (the x axis's left end when it lies left of every bar).
    pub origin: f64,
    /// A vertical reference line and its legend.
    pub line: Option<(f64, String)>,
    /// Legend entries: which kind means what (kinds absent from the bars are left out).
    pub legend: Vec<(BarKind, &'a str)>,
}

fn drawing<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> Error {
    Error::Report(format!("drawing a chart: {error}"))
}

fn colour(kind: BarKind) -> RGBColor {
    match kind {
        BarKind::Normal => palette::INT8,
        BarKind::Reverted => palette::REVERTED,
        BarKind::Alert => palette::ALERT,
        BarKind::Bound => palette::BOUND,
    }
}

fn style(kind: BarKind) -> ShapeStyle {
    match kind {
        // Paler than a measured bar: a bound is where the value could have been at best.
        BarKind::Bound => colour(kind).mix(0.45).filled(),
        _ => colour(kind).filled(),
    }
}

/// `label` cut to its last [`LABEL_CHARS`] characters.
pub fn short_label(label: &str) -> String {
    let chars: Vec<char> = label.chars().collect();
    match chars.len() > LABEL_CHARS {
        true => format!(
            "…{}",
            chars[chars.len() - LABEL_CHARS + 1..]
                .iter()
                .collect::<String>()
        ),
        false => label.to_string(),
    }
}

/// The legend box of the labelled series, top right, as every chart draws it.
fn draw_legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(0xcb, 0xd5, 0xe0))
        .label_font((FONT, 15))
        .draw()
        .map_err(drawing)
}

/// `lo..hi` widened by a margin, never empty.
fn padded(lo: f64, hi: f64, margin: f64) -> (f64, f64) {
    let span = (hi - lo).abs().max(hi.abs().max(lo.abs()) * 1e-3).max(1e-9);
    (lo - span * margin, hi + span * margin)
}

/// A bar chart's drawing area: values across, one segment per row up.
type BarPlot<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, SegmentedCoord<RangedCoordi32>>>;

impl BarChart<'_> {
    /// The chart as an SVG document.
    pub fn svg(&self) -> Result<String> {
        // Empty rows above the bars hold the legend, so it never hides a bar.
        let rows = self.bars.len() as i32 + self.legend_entries() as i32 + 1;
        let height = 110 + ROW * rows as u32;
        let longest = self
            .bars
            .iter()
            .map(|b| b.label.chars().count())
            .max()
            .unwrap_or(0);
        let (lo, hi) = self.x_range();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
            root.fill(&WHITE).map_err(drawing)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, (FONT, 22))
                .margin(12)
                .margin_right(90)
                .x_label_area_size(40)
                .y_label_area_size((14.0 + 7.0 * longest as f64) as u32)
                .build_cartesian_2d(lo..hi, (0..rows).into_segmented())
                .map_err(drawing)?;
            self.draw_mesh(&mut chart, rows)?;
            self.draw_bars(&mut chart, lo)?;
            self.draw_notes(&mut chart)?;
            self.draw_line(&mut chart, rows)?;
            self.draw_legend_entries(&mut chart)?;
            draw_legend(&mut chart)?;
            root.present().map_err(drawing)?;
        }
        Ok(svg)
    }

    /// The row of bar `i`, counted from the bottom: the first bar is drawn at the top.
    fn row(&self, i: usize) -> i32 {
        self.bars.len() as i32 - 1 - i as i32
    }

    /// The axes, the bars' labels and the grid.
    fn draw_mesh(&self, chart: &mut BarPlot, rows: i32) -> Result<()> {
        let bars = self.bars.len() as i32;
        let label = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(y) => self
                .bars
                .get((bars - 1 - y) as usize)
                .map_or(String::new(), |b| b.label.clone()),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows as usize)
            .y_label_formatter(&label)
            .x_desc(self.x_desc)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(drawing)
    }

    /// One bar per row, from the origin (or the axis's left end, when the origin lies left of it).
    fn draw_bars(&self, chart: &mut BarPlot, lo: f64) -> Result<()> {
        chart
            .draw_series(self.bars.iter().enumerate().map(|(i, bar)| {
                let (y0, y1) = (
                    SegmentValue::Exact(self.row(i)),
                    SegmentValue::Exact(self.row(i) + 1),
                );
                let mut rect = Rectangle::new(
                    [(self.origin.max(lo), y0), (bar.value, y1)],
                    style(bar.kind),
                );
                rect.set_margin(2, 2, 0, 0);
                rect
            }))
            .map_err(drawing)?;
        Ok(())
    }

    /// Each bar's note, after its end.
    fn draw_notes(&self, chart: &mut BarPlot) -> Result<()> {
        let note_style = TextStyle::from((FONT, 14).into_font())
            .color(&RGBColor(0x4a, 0x55, 0x68))
            .pos(Pos::new(HPos::Left, VPos::Center));
        chart
            .draw_series(self.bars.iter().enumerate().map(|(i, bar)| {
                let at = (bar.value, SegmentValue::CenterOf(self.row(i)));
                Text::new(format!(" {}", bar.note), at, note_style.clone())
            }))
            .map_err(drawing)?;
        Ok(())
    }

    /// The reference line across every row, and its legend entry, when there is one.
    fn draw_line(&self, chart: &mut BarPlot, rows: i32) -> Result<()> {
        if let Some((x, text)) = &self.line {
            let ends = vec![
                (*x, SegmentValue::Exact(0)),
                (*x, SegmentValue::Exact(rows)),
            ];
            chart
                .draw_series(std::iter::once(DashedPathElement::new(
                    ends,
                    6,
                    4,
                    palette::ALERT.stroke_width(2),
                )))
                .map_err(drawing)?
                .label(text.as_str())
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], palette::ALERT.stroke_width(2))
                });
        }
        Ok(())
    }

    /// A legend entry for each kind some bar has: an empty series carries its label and swatch.
    fn draw_legend_entries(&self, chart: &mut BarPlot) -> Result<()> {
        for (kind, text) in &self.legend {
            if self.bars.iter().any(|b| b.kind == *kind) {
                let swatch = style(*kind);
                chart
                    .draw_series(std::iter::empty::<Rectangle<(f64, SegmentValue<i32>)>>())
                    .map_err(drawing)?
                    .label(*text)
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], swatch));
            }
        }
        Ok(())
    }

    /// Entries the legend shows: the line's and those of kinds some bar has.
    fn legend_entries(&self) -> usize {
        let kinds = self
            .legend
            .iter()
            .filter(|(kind, _)| self.bars.iter().any(|b| b.kind == *kind));
        kinds.count() + usize::from(self.line.is_some())
    }

    /// The x axis: from the origin (or just left of the smallest bar, when the origin is far below the
    /// values: ranking scores differ in their third decimal) to past the largest bar and its note.
    fn x_range(&self) -> (f64, f64) {
        let values = self
            .bars
            .iter()
            .map(|b| b.value)
            .chain(self.line.iter().map(|l| l.0));
        let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if !min.is_finite() {
            return (0.0, 1.0);
        }
        let (padded_lo, _) = padded(min, max, 0.15);
        let lo = match self.origin <= min && min - self.origin > 2.0 * (max - min) {
            true => padded_lo,
            false => self.origin.min(min),
        };
        // The right third stays free for the notes after the bars and the legend.
        let hi = max + (max - lo).max(1e-9) * 0.5;
        (lo, hi)
    }
}

/// The step chart: the controlled metric's drop after each step against the allowed drop, rolled-back steps
/// marked. `None` when there is no step.
pub fn step_chart(view: &ReportView) -> Result<Option<String>> {
    let Some(first) = view.steps.first() else {
        return Ok(None);
    };
    let Some(start) = view.metric(first.metric_name.as_deref()) else {
        return Ok(None);
    };
    StepChart { view, start }.svg().map(Some)
}

/// The step chart's drawing area: revert steps across, drops up.
type StepPlot<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The revert steps of a report, drawn against the controlled metric of the first.
struct StepChart<'a> {
    view: &'a ReportView,
    /// The first step's controlled metric: the fully quantized model's drop and the allowed drop at step 0.
    start: &'a MetricView,
}

impl StepChart<'_> {
    /// The chart as an SVG document.
    fn svg(&self) -> Result<String> {
        let n = self.view.steps.len() as f64;
        let (lo, hi) = self.drop_range();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, 380)).into_drawing_area();
            root.fill(&WHITE).map_err(drawing)?;
            let mut chart = ChartBuilder::on(&root)
                .caption("Drop after each revert step", (FONT, 22))
                .margin(12)
                .margin_right(40)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d(-0.5..n + 0.5, lo..hi)
                .map_err(drawing)?;
            self.draw_mesh(&mut chart)?;
            self.draw_allowed_drop(&mut chart)?;
            self.draw_kept_drop(&mut chart)?;
            self.draw_kept_steps(&mut chart)?;
            self.draw_rolled_back_steps(&mut chart)?;
            self.draw_groups(&mut chart, hi - lo)?;
            self.draw_final_interval(&mut chart)?;
            draw_legend(&mut chart)?;
            root.present().map_err(drawing)?;
        }
        Ok(svg)
    }

    /// The allowed drop of the metric named `name` (the first step's when the report has no such metric).
    fn allowed_at(&self, name: Option<&str>) -> f64 {
        self.view
            .metric(name)
            .map_or(self.start.allowed_drop, |m| m.allowed_drop)
    }

    /// The y axis: every drop and allowed drop drawn, and zero, with a margin.
    fn drop_range(&self) -> (f64, f64) {
        let drops = self
            .view
            .steps
            .iter()
            .map(|s| s.drop)
            .chain([self.start.quantized_drop(), 0.0]);
        let limits = self
            .view
            .steps
            .iter()
            .map(|s| self.allowed_at(s.metric_name.as_deref()));
        let interval = self.start.drop_ci.map(|ci| [ci.low, ci.high]);
        let all = drops
            .chain(limits)
            .chain([self.start.allowed_drop])
            .chain(interval.into_iter().flatten());
        let (min, max) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        padded(min, max, 0.12)
    }

    /// The axes, labelled with step numbers and drops, and the grid.
    fn draw_mesh(&self, chart: &mut StepPlot) -> Result<()> {
        let d = self.view.decimals(&self.start.name);
        let integer = |v: &f64| match (v - v.round()).abs() < 1e-6 && *v >= 0.0 {
            true => format!("{}", v.round() as i64),
            false => String::new(),
        };
        chart
            .configure_mesh()
            .x_labels((self.view.steps.len() + 2).min(40))
            .x_label_formatter(&integer)
            .y_label_formatter(&|v| format!("{v:.d$}"))
            .x_desc("revert step (0: every op quantized)")
            .y_desc(format!("drop of {}", step_metrics(self.view)))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(drawing)
    }

    /// The allowed drop of each step's controlled metric, as a step function.
    fn draw_allowed_drop(&self, chart: &mut StepPlot) -> Result<()> {
        let mut limit = vec![
            (-0.5, self.start.allowed_drop),
            (0.5, self.start.allowed_drop),
        ];
        for (i, step) in self.view.steps.iter().enumerate() {
            let allowed = self.allowed_at(step.metric_name.as_deref());
            limit.extend([(i as f64 + 0.5, allowed), (i as f64 + 1.5, allowed)]);
        }
        chart
            .draw_series(std::iter::once(DashedPathElement::new(
                limit,
                7,
                5,
                palette::ALERT.stroke_width(2),
            )))
            .map_err(drawing)?
            .label("allowed drop")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], palette::ALERT.stroke_width(2))
            });
        Ok(())
    }

    /// The final model's drop with its confidence interval, as an error bar right of the last step: how far
    /// the population's drop may be from the one drawn.
    fn draw_final_interval(&self, chart: &mut StepPlot) -> Result<()> {
        let Some(ci) = self.start.drop_ci else {
            return Ok(());
        };
        let x = self.view.steps.len() as f64 + 0.3;
        let cap = 0.08;
        let style = palette::INT8.stroke_width(2);
        let bar = [
            vec![(x, ci.low), (x, ci.high)],
            vec![(x - cap, ci.low), (x + cap, ci.low)],
            vec![(x - cap, ci.high), (x + cap, ci.high)],
        ];
        chart
            .draw_series(bar.into_iter().map(|p| PathElement::new(p, style)))
            .map_err(drawing)?
            .label(format!(
                "final drop's {}% confidence interval",
                crate::metric::confidence::percent(ci.level)
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x + 9, y - 6), (x + 9, y + 6)], style));
        Ok(())
    }

    /// The current model's drop: a rolled-back step leaves it where it was.
    fn draw_kept_drop(&self, chart: &mut StepPlot) -> Result<()> {
        let mut current = self.start.quantized_drop();
        let mut path = vec![(0.0, current)];
        for (i, step) in self.view.steps.iter().enumerate() {
            if step.kept {
                current = step.drop;
            }
            path.push((i as f64 + 1.0, current));
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                path,
                palette::INT8.stroke_width(2),
            )))
            .map_err(drawing)?
            .label("drop of the model kept")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], palette::INT8.stroke_width(2))
            });
        Ok(())
    }

    /// A dot at the fully quantized model's drop, and one at each kept step's.
    fn draw_kept_steps(&self, chart: &mut StepPlot) -> Result<()> {
        let kept = self.view.steps.iter().enumerate().filter(|(_, s)| s.kept);
        chart
            .draw_series(
                std::iter::once(Circle::new(
                    (0.0, self.start.quantized_drop()),
                    5,
                    palette::INT8.filled(),
                ))
                .chain(kept.map(|(i, s)| {
                    Circle::new((i as f64 + 1.0, s.drop), 6, palette::REVERTED.filled())
                })),
            )
            .map_err(drawing)?
            .label("step kept (group reverted)")
            .legend(|(x, y)| Circle::new((x + 9, y), 5, palette::REVERTED.filled()));
        Ok(())
    }

    /// A cross at each rolled-back step's drop; no legend entry when no step was rolled back.
    fn draw_rolled_back_steps(&self, chart: &mut StepPlot) -> Result<()> {
        let rolled_back: Vec<_> = self
            .view
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.kept)
            .collect();
        if !rolled_back.is_empty() {
            chart
                .draw_series(rolled_back.iter().map(|(i, s)| {
                    Cross::new((*i as f64 + 1.0, s.drop), 6, palette::ALERT.stroke_width(3))
                }))
                .map_err(drawing)?
                .label("step rolled back (drop grew)")
                .legend(|(x, y)| Cross::new((x + 9, y), 5, palette::ALERT.stroke_width(3)));
        }
        Ok(())
    }

    /// Each step's group, written just above its drop (`span` is the y axis's length).
    fn draw_groups(&self, chart: &mut StepPlot, span: f64) -> Result<()> {
        let note = TextStyle::from((FONT, 15).into_font())
            .color(&RGBColor(0x2d, 0x37, 0x48))
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(self.view.steps.iter().enumerate().map(|(i, s)| {
                let text = format!("group {}", s.group);
                Text::new(text, (i as f64 + 1.0, s.drop + span * 0.03), note.clone())
            }))
            .map_err(drawing)?;
        Ok(())
    }
}

/// The metrics the steps control, for the axis: "top1", or "nmse / top1".
fn step_metrics(view: &ReportView) -> String {
    let mut names: Vec<&str> = Vec::new();
    for step in &view.steps {
        let name = step
            .metric_name
            .as_deref()
            .or(view.metrics.first().map(|m| m.name.as_str()))
            .unwrap_or("the metric");
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(" / ")
}

/// The ranking chart: every group of the last ranking by its score, reverted groups highlighted, pruned
/// groups drawn hollow at the bound that ruled them out. `None` when there was no ranking.
pub fn ranking_chart(view: &ReportView) -> Result<Option<String>> {
    if view.ranking.is_empty() {
        return Ok(None);
    }
    let metric = view.ranking_metric();
    let name = metric.map_or("metric", |m| m.name.as_str());
    let d = view.decimals(name);
    let bound_sign = match metric.map(|m| m.direction) {
        Some(crate::metric::Direction::HigherWorse) => "≥",
        _ => "≤",
    };
    let bars = view
        .ranking
        .iter()
        .map(|entry| {
            let first = entry.nodes.first().map_or("", String::as_str);
            let more = match entry.nodes.len() {
                0 | 1 => String::new(),
                n => format!(" +{}", n - 1),
            };
            let kind = match (entry.exact, view.step_of(entry.group)) {
                (false, _) => BarKind::Bound,
                (true, Some(step)) if step.kept => BarKind::Reverted,
                (true, Some(_)) => BarKind::Alert,
                (true, None) => BarKind::Normal,
            };
            let note = match entry.exact {
                true => format!("{:.d$}", entry.score),
                false => format!("{bound_sign} {:.d$}", entry.score),
            };
            Bar {
                label: format!("group {} · {}{more}", entry.group, short_label(first)),
                value: entry.score,
                kind,
                note,
            }
        })
        .collect();
    let title =
        format!("Last ranking: {name} on the ranking subset with each group reverted, best first");
    let x_desc = format!("{name} with the group reverted (ranking subset)");
    BarChart {
        title: &title,
        x_desc: &x_desc,
        bars,
        origin: 0.0,
        line: None,
        legend: vec![
            (BarKind::Normal, "exact score"),
            (BarKind::Reverted, "reverted by a kept step"),
            (BarKind::Alert, "reverted, then rolled back"),
            (BarKind::Bound, "pruned: the bound that ruled it out"),
        ],
    }
    .svg()
    .map(Some)
}

/// The per-layer sensitivity chart: each quantized op's share of the output error, in graph order. `None`
/// when the analysis was skipped.
pub fn sensitivity_chart(view: &ReportView) -> Result<Option<String>> {
    let Some(sensitivity) = &view.sensitivity else {
        return Ok(None);
    };
    let bars = sensitivity
        .layers
        .iter()
        .map(|layer| Bar {
            label: format!("{} ({})", short_label(&layer.node), layer.op_type),
            value: layer.share * 100.0,
            kind: match view.reverted.contains(&layer.node) {
                true => BarKind::Reverted,
                false => BarKind::Normal,
            },
            note: format!("{:.1} %", layer.share * 100.0),
        })
        .collect();
    let title = format!(
        "Per-layer sensitivity: share of the output error with only that op quantized ({} samples)",
        sensitivity.samples
    );
    BarChart {
        title: &title,
        x_desc: "share of the summed NMSE against FP32 (%)",
        bars,
        origin: 0.0,
        line: None,
        legend: vec![
            (BarKind::Normal, "int8 in the saved model"),
            (BarKind::Reverted, "reverted to FP32 in the saved model"),
        ],
    }
    .svg()
    .map(Some)
}

/// The saturation chart: the share of outputs that saturate int16 on a CPU without VNNI of each int8 layer
/// where any does, against the at-risk threshold. `None` when no layer saturates.
pub fn saturation_chart(view: &ReportView) -> Result<Option<String>> {
    let Some(saturation) = &view.saturation else {
        return Ok(None);
    };
    let layers = match saturation.layers.is_empty() {
        true => &saturation.layers_at_risk,
        false => &saturation.layers,
    };
    let bars: Vec<Bar> = layers
        .iter()
        .filter_map(|layer| {
            // Layers that never saturate are counted in the text, not drawn: the chart is about those that do.
            let rate = layer.rate.filter(|r| *r > 0.0)?;
            Some(Bar {
                label: format!("{} ({})", short_label(&layer.node), layer.op_type),
                value: rate * 100.0,
                kind: match rate >= saturation.threshold {
                    true => BarKind::Alert,
                    false => BarKind::Normal,
                },
                note: format!("{:.2} %", rate * 100.0),
            })
        })
        .collect();
    if bars.is_empty() {
        return Ok(None);
    }
    let threshold = format!("at-risk threshold ({:.0} %)", saturation.threshold * 100.0);
    BarChart {
        title: "Saturation without VNNI: outputs whose int16 pair sums saturate, per int8 layer",
        x_desc: "outputs saturated on an AVX2 CPU without VNNI (%)",
        bars,
        origin: 0.0,
        line: Some((saturation.threshold * 100.0, threshold)),
        legend: vec![
            (BarKind::Normal, "below the threshold"),
            (BarKind::Alert, "at risk"),
        ],
    }
    .svg()
    .map(Some)
}

/// What the front chart puts across: each model's size, or its latency on the deployed engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontAxis {
    /// The ONNX file's size, in MB.
    Bytes,
    /// Median milliseconds of one inference on the deployed engine.
    Latency,
}

/// The front chart: the first metric of every model of the front against its size or latency, the kept path
/// joined in order, rolled-back steps crossed, the saved model ringed and each target's model named. `None`
/// when the report has no front, or (latency) no point was timed.
pub fn front_chart(view: &ReportView, axis: FrontAxis) -> Result<Option<String>> {
    let Some(metric) = view.metrics.first() else {
        return Ok(None);
    };
    let points: Vec<(f64, f64, &FrontPointView)> = (view.front.iter())
        .filter_map(|p| {
            let x = match axis {
                FrontAxis::Bytes => Some(p.bytes as f64 / 1e6),
                FrontAxis::Latency => p.latency_ms,
            }?;
            Some((x, p.metrics.first()?.value, p))
        })
        .collect();
    if points.len() < 2 {
        return Ok(None);
    }
    FrontChart {
        view,
        metric,
        axis,
        points,
    }
    .svg()
    .map(Some)
}

/// The front chart's drawing area: size or latency across, the metric up.
type FrontPlot<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The models of a front placed on one axis.
struct FrontChart<'a> {
    view: &'a ReportView,
    metric: &'a MetricView,
    axis: FrontAxis,
    /// (x, metric value, point), in the front's order.
    points: Vec<(f64, f64, &'a FrontPointView)>,
}

impl FrontChart<'_> {
    fn svg(&self) -> Result<String> {
        let range = |values: &mut dyn Iterator<Item = f64>, margin| {
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
            padded(lo, hi, margin)
        };
        let (x0, x1) = range(&mut self.points.iter().map(|p| p.0), 0.08);
        let (y0, y1) = range(&mut self.points.iter().map(|p| p.1), 0.15);
        let (title, x_desc) = match self.axis {
            FrontAxis::Bytes => (
                format!(
                    "{} against model size: every model of the search",
                    self.metric.name
                ),
                "ONNX file size (MB)",
            ),
            FrontAxis::Latency => (
                format!(
                    "{} against latency on the deployed engine",
                    self.metric.name
                ),
                "median ms of one inference (batch 1, the engine's default threads)",
            ),
        };
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, 400)).into_drawing_area();
            root.fill(&WHITE).map_err(drawing)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, (FONT, 22))
                .margin(12)
                .margin_right(40)
                .x_label_area_size(44)
                .y_label_area_size(80)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(drawing)?;
            let d = self.view.decimals(&self.metric.name);
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(self.metric.name.as_str())
                .y_label_formatter(&|v| format!("{v:.d$}"))
                .label_style((FONT, 15))
                .axis_desc_style((FONT, 16))
                .bold_line_style(GRID)
                .light_line_style(TRANSPARENT)
                .draw()
                .map_err(drawing)?;
            self.draw_points(&mut chart)?;
            self.draw_names(&mut chart, y1 - y0)?;
            draw_legend(&mut chart)?;
            root.present().map_err(drawing)?;
        }
        Ok(svg)
    }

    /// The kept path as a line in order, its models as dots (FP32 grey), rolled-back steps as crosses, the
    /// saved model ringed.
    fn draw_points(&self, chart: &mut FrontPlot) -> Result<()> {
        let kept: Vec<(f64, f64)> = (self.points.iter())
            .filter(|(_, _, p)| p.kept && p.label != "FP32")
            .map(|(x, y, _)| (*x, *y))
            .collect();
        let line = palette::INT8.stroke_width(2);
        chart
            .draw_series(std::iter::once(PathElement::new(kept.clone(), line)))
            .map_err(drawing)?
            .label("kept path, from INT8 on")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], line));
        chart
            .draw_series(
                kept.iter()
                    .map(|p| Circle::new(*p, 5, palette::INT8.filled())),
            )
            .map_err(drawing)?;
        let fp32 = self.points.iter().filter(|(_, _, p)| p.label == "FP32");
        chart
            .draw_series(fp32.map(|(x, y, _)| Circle::new((*x, *y), 6, palette::BOUND.filled())))
            .map_err(drawing)?
            .label("FP32")
            .legend(|(x, y)| Circle::new((x + 9, y), 5, palette::BOUND.filled()));
        let rolled_back: Vec<(f64, f64)> = (self.points.iter())
            .filter(|(_, _, p)| !p.kept)
            .map(|(x, y, _)| (*x, *y))
            .collect();
        if !rolled_back.is_empty() {
            chart
                .draw_series(
                    (rolled_back.iter()).map(|p| Cross::new(*p, 6, palette::ALERT.stroke_width(3))),
                )
                .map_err(drawing)?
                .label("step rolled back")
                .legend(|(x, y)| Cross::new((x + 9, y), 5, palette::ALERT.stroke_width(3)));
        }
        let chosen = self.points.iter().filter(|(_, _, p)| p.chosen);
        let ring = palette::REVERTED.stroke_width(3);
        chart
            .draw_series(chosen.map(|(x, y, _)| Circle::new((*x, *y), 11, ring)))
            .map_err(drawing)?
            .label("saved model")
            .legend(move |(x, y)| Circle::new((x + 9, y), 7, ring));
        Ok(())
    }

    /// The ends' and the targets' names above their points (`span`: the y axis's length).
    fn draw_names(&self, chart: &mut FrontPlot, span: f64) -> Result<()> {
        let note = TextStyle::from((FONT, 14).into_font())
            .color(&RGBColor(0x2d, 0x37, 0x48))
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        let named = self.points.iter().filter_map(|(x, y, p)| {
            let mut names = self.view.target_of(&p.label);
            if p.label == "FP32" || p.label == "INT8" {
                names.insert(0, p.label.clone());
            }
            (!names.is_empty()).then(|| (names.join(", "), *x, *y))
        });
        chart
            .draw_series(
                named.map(|(text, x, y)| Text::new(text, (x, y + span * 0.05), note.clone())),
            )
            .map_err(drawing)?;
        Ok(())
    }
}
