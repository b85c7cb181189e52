//! The step chart: what each revert step did to the controlled metric's drop.

use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{draw_legend, drawing, padded, palette, FONT, GRID, WIDTH};
use crate::error::Result;
use crate::render::view::{MetricView, ReportView};

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
