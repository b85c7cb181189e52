//! The Markdown summary (`aquant report OUT_DIR --format md`): the page's content without its charts, for a
//! terminal or a pull-request comment.

use std::fmt::Write as _;

use super::view::ReportView;
use super::{bytes, fixed, front_rows, outcome, seconds};
use crate::metric::limit_sign;

/// Ops listed in the sensitivity and ranking tables: a summary names the few that matter.
const TOP: usize = 5;

/// The summary.
pub fn markdown(view: &ReportView) -> String {
    let mut md = format!(
        "# aquant report: {}\n\n{}\n\n",
        view.model_name(),
        outcome(view)
    );
    metrics(view, &mut md);
    steps(view, &mut md);
    front(view, &mut md);
    ranking(view, &mut md);
    sensitivity(view, &mut md);
    saturation(view, &mut md);
    footprint(view, &mut md);
    md
}

/// `text` safe in a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The drop; judged at a confidence level, with the interval whose upper end was compared.
fn drop_cell(view: &ReportView, m: &super::view::MetricView, decimals: usize) -> String {
    match (m.drop_ci, view.confidence) {
        (Some(ci), Some(_)) => format!("{} ({})", fixed(m.drop, decimals), ci.text(decimals)),
        _ => fixed(m.drop, decimals),
    }
}

fn confirmation(view: &ReportView, c: &super::view::ConfirmationView, md: &mut String) {
    let _ = writeln!(md, "Held-out confirmation: {}\n", c.sentence());
    md.push_str("| metric | FP32 | final | drop | allowed |\n|---|---:|---:|---:|---:|\n");
    for m in &c.metrics {
        let d = view.decimals(&m.name);
        let drop = match m.drop_ci {
            Some(ci) => format!("{} ({})", fixed(m.drop, d), ci.text(d)),
            None => fixed(m.drop, d),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {drop} | {} {} |",
            cell(&m.name),
            fixed(m.baseline, d),
            fixed(m.r#final, d),
            limit_sign(m.drop, m.allowed_drop),
            fixed(m.allowed_drop, d)
        );
    }
    md.push('\n');
}

/// Every model of the front, then with several targets each one's model.
fn front(view: &ReportView, md: &mut String) {
    if view.front.is_empty() {
        return;
    }
    let name = view.metrics.first().map_or("metric", |m| m.name.as_str());
    md.push_str("## Accuracy, size and latency of every model\n\n");
    let _ = writeln!(
        md,
        "| model | {} | drop | size | int8 / int16 / fp32 ops | latency | |\n|---|---:|---:|---:|---:|---:|---|",
        cell(name)
    );
    for row in front_rows(view) {
        let saved = row.saved.then(|| "**saved model**".to_string());
        let notes: Vec<String> = saved.into_iter().chain(row.notes).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.label,
            row.value,
            row.drop,
            row.size,
            row.ops,
            row.latency,
            notes.join(", ")
        );
    }
    md.push('\n');
    if view.targets.is_empty() {
        return;
    }
    md.push_str("| max_drop | model | met | saved to |\n|---:|---|---|---|\n");
    for t in &view.targets {
        let met = match (&t.deployed, t.target_met) {
            (Some(dep), met) => format!(
                "{} on {} {}",
                if met { "yes" } else { "NO" },
                dep.engine,
                dep.version
            ),
            (None, met) => (if met { "yes" } else { "NO" }).to_string(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {met} | {} |",
            t.max_drop,
            t.point,
            cell(t.output.as_deref().unwrap_or("(not saved)"))
        );
    }
    md.push('\n');
}

fn metrics(view: &ReportView, md: &mut String) {
    if !view.metrics.is_empty() {
        md.push_str(
            "| metric | FP32 | INT8 | final | drop | allowed |\n|---|---:|---:|---:|---:|---:|\n",
        );
        for m in &view.metrics {
            let d = view.decimals(&m.name);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} {} |",
                cell(&m.name),
                fixed(m.baseline, d),
                fixed(m.quantized, d),
                fixed(m.r#final, d),
                drop_cell(view, m, d),
                limit_sign(m.judged(view.confidence.is_some()), m.allowed_drop),
                fixed(m.allowed_drop, d)
            );
        }
        md.push('\n');
    }
    if let Some(c) = &view.confirmation {
        confirmation(view, c, md);
    }
    if let Some(d) = &view.deployed {
        let _ = writeln!(md, "Deployed on {} {} ({}):\n", d.engine, d.version, d.cpu);
        md.push_str("| metric | value | drop | allowed |\n|---|---:|---:|---:|\n");
        for m in &d.metrics {
            let sign = limit_sign(m.judged_drop.unwrap_or(m.drop), m.allowed_drop);
            let d = view.decimals(&m.name);
            let (value, drop, allowed) = (
                fixed(m.value, d),
                fixed(m.drop, d),
                fixed(m.allowed_drop, d),
            );
            let _ = writeln!(
                md,
                "| {} | {value} | {drop} | {sign} {allowed} |",
                cell(&m.name)
            );
        }
        md.push('\n');
    }
}

fn steps(view: &ReportView, md: &mut String) {
    if view.steps.is_empty() {
        return;
    }
    md.push_str("## Revert steps\n\n| step | group | ops | metric | drop | outcome |\n|---:|---:|---|---:|---:|---|\n");
    for s in &view.steps {
        let d = view.decimals(s.metric_name.as_deref().unwrap_or(""));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            s.step,
            s.group,
            cell(&s.reverted_group.join(", ")),
            fixed(s.metric, d),
            fixed(s.drop, d),
            cell(&s.reason)
        );
    }
    md.push('\n');
}

fn ranking(view: &ReportView, md: &mut String) {
    if view.ranking.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Last ranking (top {} of {})\n\n| group | ops | score |\n|---:|---|---:|",
        TOP.min(view.ranking.len()),
        view.ranking.len()
    );
    let d = view.decimals(view.ranking_metric().map_or("", |m| m.name.as_str()));
    for r in view.ranking.iter().take(TOP) {
        let bound = if r.exact { "" } else { " (bound)" };
        let _ = writeln!(
            md,
            "| {} | {} | {}{bound} |",
            r.group,
            cell(&r.nodes.join(", ")),
            fixed(r.score, d)
        );
    }
    md.push('\n');
}

fn sensitivity(view: &ReportView, md: &mut String) {
    let Some(s) = &view.sensitivity else {
        return;
    };
    let mut layers: Vec<_> = s.layers.iter().collect();
    layers.sort_by(|a, b| b.share.total_cmp(&a.share));
    let _ = writeln!(
        md,
        "## Most sensitive ops ({} samples; NMSE with only the op quantized)\n\n| op | type | NMSE | share |\n|---|---|---:|---:|",
        s.samples
    );
    for l in layers.iter().take(TOP) {
        let _ = writeln!(
            md,
            "| {} | {} | {:.3e} | {:.1} % |",
            cell(&l.node),
            l.op_type,
            l.nmse,
            l.share * 100.0
        );
    }
    md.push('\n');
}

fn saturation(view: &ReportView, md: &mut String) {
    let Some(s) = &view.saturation else {
        return;
    };
    let at_risk: Vec<String> = s
        .layers_at_risk
        .iter()
        .map(|l| format!("`{}` ({:.1} %)", l.node, l.rate.unwrap_or(0.0) * 100.0))
        .collect();
    let verdict = match at_risk.is_empty() {
        true => "none".to_string(),
        false => at_risk.join(", "),
    };
    let _ = writeln!(
        md,
        "Layers at risk of int16 saturation without VNNI (threshold {:.0} %): {verdict}.\n",
        s.threshold * 100.0
    );
}

fn footprint(view: &ReportView, md: &mut String) {
    if let Some(ops) = &view.ops_by_precision {
        let _ = writeln!(
            md,
            "Ops: {} int8,{} {} reverted to FP32, {} never quantized.",
            ops.int8,
            match ops.int16 {
                0 => String::new(),
                n => format!(" {n} in 16 bits,"),
            },
            ops.fp32_reverted,
            ops.fp32_other
        );
    }
    if let Some(b) = &view.model_bytes {
        let _ = writeln!(
            md,
            "Size: {} FP32 → {} INT8 ({:.2}×).",
            bytes(b.fp32),
            bytes(b.int8),
            b.int8 as f64 / b.fp32.max(1) as f64
        );
    }
    let stages: Vec<String> = view
        .timings_s
        .0
        .iter()
        .map(|(name, s)| format!("{} {}", name.replace('_', " "), seconds(*s)))
        .collect();
    if !stages.is_empty() {
        let _ = writeln!(md, "Time: {}.", stages.join(", "));
    }
}
