//! The front chart: every model the search walked through, by metric against size or latency.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{draw_legend, drawing, padded, palette, FONT, GRID, WIDTH};
use crate::error::Result;
use crate::render::view::{FrontPointView, MetricView, ReportView};

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
