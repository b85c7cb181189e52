//! The bar charts of groups and layers: the ranking, the sensitivity and the saturation analysis.

use super::{short_label, Bar, BarChart, BarKind};
use crate::error::Result;
use crate::render::view::ReportView;

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
