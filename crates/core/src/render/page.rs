//! `report.html`: one self-contained page, a section per question a reader has.
//!
//! The page is a fixed list of sections filled with `format!` and one escaping function: a template engine
//! would add a dependency and a second language for a dozen short fragments. The markup is well-formed XML
//! (void elements closed, only XML's own entities), so tests and tools can parse the whole page.

use std::fmt::Write as _;

use super::charts::{
    front_chart, palette, ranking_chart, saturation_chart, sensitivity_chart, step_chart, FrontAxis,
};
use super::view::ReportView;
use super::{bytes, fixed, front_rows, outcome, seconds};
use crate::error::Result;
use crate::metric::limit_sign;

/// The page's style: a plain, print-friendly layout 1200 px wide at most.
const CSS: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:#1a202c;
 background:#f7fafc;margin:0;padding:24px}
main{max-width:1200px;margin:0 auto}
h1{font-size:26px;margin:0 0 4px}
.sub{color:#4a5568;margin:0 0 18px;font-size:14px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:14px 18px;margin:0 0 16px}
h2{font-size:19px;margin:0 0 10px}
p{line-height:1.45;margin:6px 0}
.outcome{font-size:17px;padding:10px 14px;border-radius:6px;border-left:6px solid}
.met{background:#f0fff4;border-color:#2f855a}
.missed{background:#fff5f5;border-color:#c53030}
.neutral{background:#ebf8ff;border-color:#2b6cb0}
table{border-collapse:collapse;font-size:14px;margin:6px 0}
th,td{padding:4px 10px;border-bottom:1px solid #e2e8f0;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
thead th{background:#edf2f7}
figure{margin:8px 0}
figure svg{width:100%;height:auto;display:block}
.note{color:#4a5568;font-size:13px}
.bar{height:12px;background:#2b6cb0;border-radius:2px;min-width:1px}
.stack{display:flex;height:22px;border-radius:4px;overflow:hidden;margin:8px 0;max-width:900px}
.stack div{height:100%}
code{font-size:13px}
ul{margin:4px 0}
";

/// The whole page.
pub fn html(view: &ReportView) -> Result<String> {
    let sections = [
        ("outcome", "Outcome", outcome_section(view)),
        ("metrics", "Metrics", metrics_section(view)),
        ("steps", "Revert steps", steps_section(view)?),
        (
            "front",
            "Accuracy, size and latency of every model",
            front_section(view)?,
        ),
        ("ranking", "Ranking", ranking_section(view)?),
        (
            "sensitivity",
            "Per-layer sensitivity",
            sensitivity_section(view)?,
        ),
        (
            "saturation",
            "Saturation analysis",
            saturation_section(view)?,
        ),
        ("timings", "Time per stage", timings_section(view)),
        ("precision", "Ops per precision", precision_section(view)),
        ("sizes", "Model sizes", sizes_section(view)),
    ];
    let mut body = String::new();
    for (id, title, content) in sections {
        let _ = write!(
            body,
            "<section id=\"{id}\">\n<h2>{title}</h2>\n{content}</section>\n"
        );
    }
    let title = format!("aquant report: {}", esc(view.model_name()));
    let sub = format!(
        "{} · model <code>{}</code> · saved to <code>{}</code>{}",
        esc(&view.algorithm),
        esc(&view.model),
        esc(view.output.as_deref().unwrap_or("(not saved)")),
        view.backend.as_ref().map_or(String::new(), |b| format!(
            " · search engine {}",
            esc(&b.describe())
        ))
    );
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n<p class=\"sub\">{sub}</p>\n{body}</main>\n</body>\n</html>\n"
    ))
}

/// `text` escaped for HTML and XML alike.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn figure(svg: &str) -> String {
    format!("<figure class=\"chart\">\n{svg}\n</figure>\n")
}

fn paragraph(text: &str) -> String {
    format!("<p>{}</p>\n", esc(text))
}

/// A numeric cell, tagged with what it shows so tests and tools can find it.
fn cell(key: &str, value: &str) -> String {
    format!("<td class=\"num\" data-key=\"{key}\">{}</td>", esc(value))
}

fn outcome_section(view: &ReportView) -> String {
    let class = match (view.is_search(), view.target_met, &view.deployed) {
        (true, Some(true), _) => "met",
        (true, _, _) => "missed",
        (false, _, Some(d)) if !d.target_met => "missed",
        (false, _, Some(_)) => "met",
        (false, _, None) => "neutral",
    };
    format!("<p class=\"outcome {class}\">{}</p>\n", esc(&outcome(view)))
}

fn metrics_section(view: &ReportView) -> String {
    let confirmation = view
        .confirmation
        .as_ref()
        .map_or(String::new(), |c| confirmation_table(view, c));
    if view.is_search() {
        search_metrics(view) + &confirmation
    } else {
        deployed_metrics(view)
    }
}

/// FP32 and the saved model on the samples the search never saw.
fn confirmation_table(view: &ReportView, c: &super::view::ConfirmationView) -> String {
    let mut rows = String::new();
    for m in &c.metrics {
        let d = view.decimals(&m.name);
        let _ = writeln!(
            rows,
            "<tr data-metric=\"{}\"><th>{}</th>{}{}{}{}{}<td>{}</td></tr>",
            esc(&m.name),
            esc(&m.name),
            cell("baseline", &fixed(m.baseline, d)),
            cell("final", &fixed(m.r#final, d)),
            cell("drop", &fixed(m.drop, d)),
            cell("drop_ci", &m.drop_ci.map_or("–".into(), |ci| ci.text(d))),
            cell("allowed_drop", &fixed(m.allowed_drop, d)),
            limit_sign(m.drop, m.allowed_drop),
        );
    }
    format!(
        "<h3>Held-out confirmation</h3>\n{}\
         <table id=\"confirmation-table\">\n<thead><tr><th>metric</th><th>FP32</th><th>final</th><th>drop</th>\
         <th>its confidence interval</th><th>allowed drop</th><th></th></tr></thead>\n<tbody>\n{rows}</tbody>\n\
         </table>\n",
        paragraph(&format!(
            "The search never saw these samples: {}.",
            c.sentence()
        ))
    )
}

fn search_metrics(view: &ReportView) -> String {
    let deployed = view.deployed.as_ref();
    let deployed_head = deployed.map_or(String::new(), |d| {
        format!("<th>deployed ({} {})</th>", esc(&d.engine), esc(&d.version))
    });
    let mut rows = String::new();
    for m in &view.metrics {
        let d = view.decimals(&m.name);
        let deployed_cell = deployed.map_or(String::new(), |deployed| {
            let value = deployed
                .metrics
                .iter()
                .find(|x| x.name == m.name)
                .map(|x| fixed(x.value, d));
            cell("deployed", value.as_deref().unwrap_or("–"))
        });
        let verdict = match m.within(view.confidence.is_some()) {
            true => "within",
            false => "beyond",
        };
        let _ = writeln!(
            rows,
            "<tr data-metric=\"{}\"><th>{}</th><td>{}</td>{}{}{}{}{}{}{deployed_cell}<td>{verdict}</td></tr>",
            esc(&m.name),
            esc(&m.name),
            esc(direction(m.direction)),
            cell("baseline", &fixed(m.baseline, d)),
            cell("quantized", &fixed(m.quantized, d)),
            cell("final", &fixed(m.r#final, d)),
            cell("drop", &fixed(m.drop, d)),
            cell("drop_ci", &m.drop_ci.map_or("–".into(), |ci| ci.text(d))),
            cell("allowed_drop", &fixed(m.allowed_drop, d)),
        );
    }
    format!(
        "<table id=\"metrics-table\">\n<thead><tr><th>metric</th><th>direction</th><th>FP32</th>\
         <th>INT8 (all ops)</th><th>final</th><th>drop</th><th>its confidence interval</th>\
         <th>allowed drop</th>{deployed_head}<th>final drop</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n\
         <p class=\"note\">FP32, INT8 and final are measured by the search engine on the whole validation set; \
         drop = how much worse than FP32, in the metric's units; its confidence interval comes from the paired \
         per-sample values of FP32 and the final model (on n samples one sample is 1/n).{}</p>\n",
        judged_at(view)
    )
}

/// What the "final drop" column judged, when it is not the drop itself.
fn judged_at(view: &ReportView) -> String {
    view.confidence.map_or(String::new(), |level| {
        format!(
            " The target was judged at {}% confidence: the interval's upper end, not the drop, must be within \
             the allowed drop.",
            crate::metric::confidence::percent(level)
        )
    })
}

fn direction(direction: crate::metric::Direction) -> &'static str {
    match direction {
        crate::metric::Direction::HigherBetter => "higher is better",
        crate::metric::Direction::HigherWorse => "lower is better",
    }
}

fn deployed_metrics(view: &ReportView) -> String {
    let Some(d) = &view.deployed else {
        return paragraph(
            "No metric was measured: DefaultQuantization judges the saved model only with a validation set \
             and ONNX Runtime (the deployed check).",
        );
    };
    let mut rows = String::new();
    for m in &d.metrics {
        let digits = view.decimals(&m.name);
        let _ = writeln!(
            rows,
            "<tr data-metric=\"{}\"><th>{}</th>{}{}{}<td>{}</td></tr>",
            esc(&m.name),
            esc(&m.name),
            cell("deployed", &fixed(m.value, digits)),
            cell("drop", &fixed(m.drop, digits)),
            cell("allowed_drop", &fixed(m.allowed_drop, digits)),
            limit_sign(m.drop, m.allowed_drop),
        );
    }
    format!(
        "<table id=\"metrics-table\">\n<thead><tr><th>metric</th><th>INT8 on {} {}</th><th>drop</th>\
         <th>allowed drop</th><th></th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n\
         <p class=\"note\">The saved model against the FP32 model, both on {}: DefaultQuantization has no \
         search engine of its own to compare with.</p>\n",
        esc(&d.engine),
        esc(&d.version),
        esc(&d.engine)
    )
}

fn steps_section(view: &ReportView) -> Result<String> {
    if !view.is_search() {
        return Ok(paragraph(
            "DefaultQuantization reverts nothing: there are no revert steps to draw.",
        ));
    }
    let Some(svg) = step_chart(view)? else {
        let why = match view.target_met {
            Some(true) => "the fully quantized model already met the target".to_string(),
            _ => view.stop_message.clone().unwrap_or_default(),
        };
        return Ok(paragraph(&format!("No revert step was made: {why}.")) + &reverted_list(view));
    };
    let mut rows = String::new();
    for s in &view.steps {
        let d = view.decimals(s.metric_name.as_deref().unwrap_or(""));
        let ops: Vec<String> = s
            .reverted_group
            .iter()
            .map(|n| format!("<code>{}</code>", esc(n)))
            .collect();
        let _ = writeln!(
            rows,
            "<tr data-step=\"{}\"><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td>{}{}<td>{}</td></tr>",
            s.step,
            s.step,
            s.group,
            ops.join("<br/>"),
            esc(s.metric_name.as_deref().unwrap_or("")),
            cell("metric", &fixed(s.metric, d)),
            cell("drop", &fixed(s.drop, d)),
            esc(&s.reason),
        );
    }
    Ok(format!(
        "{}<table id=\"steps-table\">\n<thead><tr><th>step</th><th>group</th><th>ops reverted</th>\
         <th>controlled metric</th><th>value</th><th>drop</th><th>outcome</th></tr></thead>\n\
         <tbody>\n{rows}</tbody>\n</table>\n{}",
        figure(&svg),
        reverted_list(view)
    ))
}

fn reverted_list(view: &ReportView) -> String {
    let items: String = view
        .reverted
        .iter()
        .map(|n| format!("<li><code>{}</code></li>\n", esc(n)))
        .collect();
    match items.is_empty() {
        true => "<p>No op is left in FP32.</p>\n<ul id=\"reverted\"></ul>\n".into(),
        false => format!(
            "<p>Ops left in FP32 in the saved model:</p>\n<ul id=\"reverted\">\n{items}</ul>\n"
        ),
    }
}

fn ranking_section(view: &ReportView) -> Result<String> {
    if !view.is_search() {
        return Ok(paragraph(
            "DefaultQuantization ranks nothing: groups are ranked only when accuracy control must revert some.",
        ));
    }
    Ok(match ranking_chart(view)? {
        Some(svg) => format!(
            "{}<p class=\"note\">The last ranking of the run ({} groups). Groups are ranked by the metric of the \
             model with that group reverted, on the ranking subset; a pruned group's evaluation stopped as soon \
             as it could not rank first, and its bar is that bound.</p>\n",
            figure(&svg),
            view.ranking.len()
        ),
        None => paragraph("No ranking was needed: the fully quantized model met the target."),
    })
}

fn sensitivity_section(view: &ReportView) -> Result<String> {
    let (Some(s), Some(svg)) = (&view.sensitivity, sensitivity_chart(view)?) else {
        return Ok(paragraph(
            "Not measured: the run skipped it (--no-sensitivity) or was interrupted.",
        ));
    };
    let top = s.layers.iter().max_by(|a, b| a.share.total_cmp(&b.share));
    let top = top.map_or(String::new(), |l| {
        format!(
            " The most sensitive op is <code>{}</code> ({:.1} %).",
            esc(&l.node),
            l.share * 100.0
        )
    });
    Ok(format!(
        "{}<p class=\"note\">For each quantized op, the NMSE between the FP32 model's outputs and those of the \
         model with only that op quantized, on {} calibration samples; its share is its part of the sum over \
         all ops. The fully quantized model's NMSE is {:.3e}.{top}</p>\n",
        figure(&svg),
        s.samples,
        s.all_quantized_nmse
    ))
}

fn saturation_section(view: &ReportView) -> Result<String> {
    let Some(s) = &view.saturation else {
        return Ok(paragraph("No saturation analysis in this report."));
    };
    let at_risk: Vec<String> = s
        .layers_at_risk
        .iter()
        .map(|l| {
            format!(
                "<code>{}</code> ({:.1} %)",
                esc(&l.node),
                l.rate.unwrap_or(0.0) * 100.0
            )
        })
        .collect();
    let verdict = match at_risk.is_empty() {
        true => "No layer is at risk".to_string(),
        false => format!("At risk: {}", at_risk.join(", ")),
    };
    let measured = match s.samples {
        0 => "from the weights alone".to_string(),
        n => format!("on {n} calibration samples"),
    };
    let never = s
        .layers
        .iter()
        .filter(|l| l.rate.is_none_or(|r| r == 0.0))
        .count();
    let chart = saturation_chart(view)?.map_or(String::new(), |svg| figure(&svg));
    Ok(format!(
        "{chart}<p>{verdict} (threshold {:.0} %, measured {measured}). {never} of {} int8 layers never saturate \
         on these samples (not drawn).</p>\n<p class=\"note\">Without VNNI (AVX2 CPUs), \
         ONNX Runtime's int8 kernels add pairs of u8×s8 products in saturating int16; this is the share of each \
         layer's outputs where that happens, computed in integers as the kernel does.</p>\n",
        s.threshold * 100.0,
        s.layers.len(),
    ))
}

/// The front: the metric against size and latency, every point in a table, and each target's model.
fn front_section(view: &ReportView) -> Result<String> {
    if view.front.is_empty() {
        return Ok(paragraph("Not in this report."));
    }
    let mut out = String::new();
    for axis in [FrontAxis::Bytes, FrontAxis::Latency] {
        if let Some(svg) = front_chart(view, axis)? {
            out.push_str(&figure(&svg));
        }
    }
    let name = view.metrics.first().map_or("metric", |m| m.name.as_str());
    let mut rows = String::new();
    for row in front_rows(view) {
        let saved = row.saved.then(|| "saved model".to_string());
        let notes: Vec<String> = saved.into_iter().chain(row.notes).collect();
        let _ = writeln!(
            rows,
            "<tr><th>{}</th>{}{}{}{}{}<td>{}</td></tr>",
            esc(&row.label),
            cell("value", &row.value),
            cell("drop", &row.drop),
            cell("bytes", &row.size),
            cell("ops", &row.ops),
            cell("latency", &row.latency),
            esc(&notes.join(", "))
        );
    }
    let _ = write!(
        out,
        "<table id=\"front-table\">\n<thead><tr><th>model</th><th>{}</th><th>drop</th><th>size</th>\
         <th>int8 / int16 / fp32 ops</th><th>latency</th><th></th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n\
         <p class=\"note\">Every model the search evaluated on the full validation set, FP32 first; metrics as the \
         search judged them; latency: median of one inference on the deployed engine on this CPU, batch 1, at \
         the engine's default threads.</p>\n",
        esc(name)
    );
    out.push_str(&targets_table(view));
    Ok(out)
}

/// With several targets, each one's model and its verdict.
fn targets_table(view: &ReportView) -> String {
    if view.targets.is_empty() {
        return String::new();
    }
    let mut rows = String::new();
    for t in &view.targets {
        let drops: Vec<String> = (t.metrics.iter())
            .map(|m| {
                let d = view.decimals(&m.name);
                let judged = m.judged_drop.unwrap_or(m.drop);
                format!(
                    "{} {} {} {}",
                    m.name,
                    fixed(m.drop, d),
                    limit_sign(judged, m.allowed_drop),
                    fixed(m.allowed_drop, d)
                )
            })
            .collect();
        let verdict = match (t.target_met, &t.deployed) {
            (true, Some(d)) => format!("met on {} {}", d.engine, d.version),
            (false, Some(d)) => format!("NOT met on {} {}", d.engine, d.version),
            (true, None) => "met".into(),
            (false, None) => "NOT met".into(),
        };
        let _ = writeln!(
            rows,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            t.max_drop,
            esc(&t.point),
            esc(&drops.join(", ")),
            esc(&verdict),
            esc(t.output.as_deref().unwrap_or("(not saved)"))
        );
    }
    format!(
        "<table id=\"targets-table\">\n<thead><tr><th>max_drop</th><th>model</th><th>drop</th>\
         <th>verdict</th><th>saved to</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n"
    )
}

fn timings_section(view: &ReportView) -> String {
    let stages = &view.timings_s.0;
    let total = stages
        .iter()
        .find(|(name, _)| name == "total")
        .map(|(_, s)| *s);
    let longest = stages
        .iter()
        .filter(|(name, _)| name != "total")
        .map(|(_, s)| *s)
        .fold(0.0, f64::max);
    let mut rows = String::new();
    for (name, s) in stages.iter().filter(|(name, _)| name != "total") {
        let width = if longest > 0.0 {
            100.0 * s / longest
        } else {
            0.0
        };
        let _ = writeln!(
            rows,
            "<tr><th>{}</th>{}<td style=\"width:560px\"><div class=\"bar\" style=\"width:{width:.1}%\"></div></td></tr>",
            esc(&name.replace('_', " ")),
            cell(name, &seconds(*s)),
        );
    }
    let total = total.map_or(String::new(), |t| {
        format!(
            "<tr><th>total (wall)</th>{}<td></td></tr>\n",
            cell("total", &seconds(t))
        )
    });
    format!("<table id=\"timings-table\">\n<tbody>\n{rows}{total}</tbody>\n</table>\n")
}

fn precision_section(view: &ReportView) -> String {
    let Some(ops) = &view.ops_by_precision else {
        return paragraph("Not in this report.");
    };
    let total = (ops.int8 + ops.int16 + ops.fp32_reverted + ops.fp32_other).max(1) as f64;
    let parts = [
        ("int8", "int8 (quantized)", ops.int8, palette::INT8),
        (
            "int16",
            "16-bit (weights or inputs; the precision ladder's 16-bit steps)",
            ops.int16,
            palette::SIXTEEN,
        ),
        (
            "fp32_reverted",
            "FP32, reverted by the search",
            ops.fp32_reverted,
            palette::REVERTED,
        ),
        (
            "fp32_other",
            "FP32, never quantized (activations, reshapes, pooling…)",
            ops.fp32_other,
            palette::BOUND,
        ),
    ];
    let mut stack = String::new();
    let mut rows = String::new();
    for (key, label, count, colour) in parts {
        let rgb = format!("#{:02x}{:02x}{:02x}", colour.0, colour.1, colour.2);
        let width = 100.0 * count as f64 / total;
        let _ = write!(
            stack,
            "<div style=\"width:{width:.2}%;background:{rgb}\"></div>"
        );
        let _ = writeln!(
            rows,
            "<tr><th><span style=\"color:{rgb}\">■</span> {}</th>{}</tr>",
            esc(label),
            cell(key, &count.to_string())
        );
    }
    format!(
        "<div class=\"stack\">{stack}</div>\n<table id=\"precision-table\">\n<tbody>\n{rows}</tbody>\n</table>\n\
         <p class=\"note\">Ops of the FP32 graph by the precision they run in, in the saved model \
         (the QuantizeLinear/DequantizeLinear pairs added are not counted).</p>\n"
    )
}

fn sizes_section(view: &ReportView) -> String {
    let Some(b) = &view.model_bytes else {
        return paragraph("Not in this report.");
    };
    let ratio = b.int8 as f64 / (b.fp32.max(1)) as f64;
    format!(
        "<table id=\"sizes-table\">\n<tbody>\n<tr><th>FP32 model</th>{}</tr>\n<tr><th>saved INT8 model</th>{}</tr>\n\
         <tr><th>ratio</th>{}</tr>\n</tbody>\n</table>\n<p class=\"note\">ONNX files with every weight inline \
         ({} and {} bytes).</p>\n",
        cell("fp32", &bytes(b.fp32)),
        cell("int8", &bytes(b.int8)),
        cell("ratio", &format!("{ratio:.2}×")),
        b.fp32,
        b.int8
    )
}
