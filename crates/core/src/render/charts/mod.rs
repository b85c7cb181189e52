//! The report's charts, drawn with plotters into inline SVG.
//!
//! plotters' SVG backend writes text as SVG `<text>` (no font files, no system fonts: the browser's
//! sans-serif draws it), so a chart is a few kilobytes of markup a page can inline. plotters draws a font of
//! size `s` at about `s / 1.24` px: the sizes below are chosen for 12–18 px text. Every chart uses the
//! palette of [`palette`] so a colour means one thing throughout the report.
//!
//! A module per kind of chart — [`steps`] (the revert steps), [`bars`] (ranking, sensitivity, saturation:
//! bars of groups and layers, drawn by the [`BarChart`] here), [`front`] (metric against size or latency);
//! this one holds what they share.

use plotters::coord::ranged1d::{SegmentValue, SegmentedCoord};
use plotters::coord::types::{RangedCoordf64, RangedCoordi32};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

mod bars;
mod front;
mod steps;

pub use bars::{ranking_chart, saturation_chart, sensitivity_chart};
pub use front::{front_chart, FrontAxis};
pub use steps::step_chart;

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
