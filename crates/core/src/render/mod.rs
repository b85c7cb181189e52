//! The report a person reads: `report.html` (one self-contained page, inline SVG charts and CSS, no script,
//! no network) and a Markdown summary, both rendered from `report.json`.
//!
//! Rendering starts from the file, not from the in-memory report ([`ReportView`]), so `aquant report OUT_DIR`
//! re-renders any run's page from its directory, and the page shows exactly what the JSON says. `view` reads
//! the file, `charts` draws, `page` lays out the HTML, `markdown` writes the summary; the wording both share
//! is here.

mod charts;
mod markdown;
mod page;
mod view;

pub use markdown::markdown;
pub use page::html;
pub use view::{ReportView, StepView};

use crate::metric::limit_sign;

/// `x` with `decimals` decimals ([`ReportView::decimals`]).
fn fixed(x: f64, decimals: usize) -> String {
    format!("{x:.decimals$}")
}

/// "≤" when `drop` is within `allowed`, else ">".
/// Seconds in words: "0.42 s", "95.4 s".
fn seconds(s: f64) -> String {
    match s < 10.0 {
        true => format!("{s:.2} s"),
        false => format!("{s:.1} s"),
    }
}

/// Bytes in words: "3.92 MB" (decimal units, as file managers show them).
fn bytes(b: usize) -> String {
    match b {
        b if b >= 1_000_000 => format!("{:.2} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} kB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

/// The outcome in one sentence: target met or not and why, and what the deployed check found.
pub fn outcome(view: &ReportView) -> String {
    let head = match view.is_search() {
        true => search_outcome(view),
        false => format!(
            "DefaultQuantization quantized {} ops; it makes no accuracy search, so nothing was reverted",
            view.quantized_ops
        ),
    };
    let deployed = match &view.deployed {
        Some(d) => deployed_outcome(view, d),
        None => "; the saved model was not checked on its deployment engine".into(),
    };
    let confirmation = view
        .confirmation
        .as_ref()
        .map_or(String::new(), |c| format!("; {}", c.sentence()));
    format!("{head}{deployed}{confirmation}.")
}

/// "; the saved model, checked on ort 1.32.0 as deployed on this CPU (…), meets the target: top1 …", or for a
/// model only timed (no validation set) "; the saved model was timed on …"; then its latency.
fn deployed_outcome(view: &ReportView, d: &view::DeployedView) -> String {
    let place = format!(
        "{} {} as deployed on this CPU ({}{})",
        d.engine,
        d.version,
        d.cpu,
        conditions(d)
    );
    let timing = d.latency.as_ref().map_or(String::new(), latency);
    if d.metrics.is_empty() {
        return format!(
            "; the saved model was timed on {place}, with no validation set to judge it on{timing}"
        );
    }
    let metrics: Vec<String> = d
        .metrics
        .iter()
        .map(|m| {
            let d = view.decimals(&m.name);
            let (value, drop, allowed) = (
                fixed(m.value, d),
                fixed(m.drop, d),
                fixed(m.allowed_drop, d),
            );
            let (judged, upper_end) = match m.judged_drop {
                Some(high) => (high, format!(", upper end {}", fixed(high, d))),
                None => (m.drop, String::new()),
            };
            let sign = limit_sign(judged, m.allowed_drop);
            format!(
                "{} {value} (drop {drop}{upper_end} {sign} {allowed})",
                m.name
            )
        })
        .collect();
    let verdict = match (d.target_met, d.continued) {
        (true, false) => "meets the target",
        (true, true) => "meets the target after the search went on with it as the judge",
        (false, _) => "does NOT meet the target",
    };
    format!(
        "; the saved model, checked on {place}, {verdict}: {}{timing}",
        metrics.join(", ")
    )
}

/// "; one inference takes 7.10 ms against 9.75 ms in FP32 (1.37× faster, 1 op left in float; 5.20 ms against
/// 6.90 ms at the engine's default threads, 1.33× faster)".
fn latency(l: &view::LatencyView) -> String {
    let float = l
        .float_ops
        .as_ref()
        .map_or(String::new(), |f| match f.count {
            1 => ", 1 op left in float".to_owned(),
            n => format!(", {n} ops left in float"),
        });
    let default_threads = l.default_threads.as_ref().map_or(String::new(), |t| {
        format!(
            "; {:.2} ms against {:.2} ms at the engine's default threads, {}",
            t.int8_ms,
            t.fp32_ms,
            speedup(t.speedup)
        )
    });
    format!(
        "; one inference takes {:.2} ms against {:.2} ms in FP32 ({}{float}{default_threads})",
        l.int8_ms,
        l.fp32_ms,
        speedup(l.speedup)
    )
}

/// "1.37× faster" or "0.96×: NOT faster".
fn speedup(speedup: f64) -> String {
    match speedup > 1.0 {
        true => format!("{speedup:.2}× faster"),
        false => format!("{speedup:.2}×: NOT faster"),
    }
}

/// ", batch 1, 1 thread, f32": what the deployed check ran under, as far as the report recorded it.
fn conditions(d: &view::DeployedView) -> String {
    let batch = d.batch.map(|b| format!("batch {b}"));
    let threads = d.threads.map(|n| match n {
        1 => "1 thread".to_owned(),
        n => format!("{n} threads"),
    });
    [batch, threads, d.precision_hint.clone()]
        .into_iter()
        .flatten()
        .map(|part| format!(", {part}"))
        .collect()
}

/// One model of the front as both the page and the Markdown summary tabulate it, its cells formatted.
struct FrontRow {
    label: String,
    value: String,
    drop: String,
    size: String,
    ops: String,
    latency: String,
    /// The saved model.
    saved: bool,
    /// The targets it is the model of, and "rolled back" for a step that was.
    notes: Vec<String>,
}

/// The front's rows, in its order, the first metric's value and drop at that metric's decimals.
fn front_rows(view: &ReportView) -> Vec<FrontRow> {
    let name = view.metrics.first().map_or("metric", |m| m.name.as_str());
    let d = view.decimals(name);
    (view.front.iter())
        .map(|p| {
            let first = p.metrics.first();
            let ops = &p.ops_by_precision;
            let mut notes = view.target_of(&p.label);
            if !p.kept {
                notes.push("rolled back".into());
            }
            FrontRow {
                label: p.label.clone(),
                value: first.map_or(String::new(), |m| fixed(m.value, d)),
                drop: first.map_or(String::new(), |m| fixed(m.drop, d)),
                size: bytes(p.bytes),
                ops: format!("{} / {} / {}", ops.int8, ops.int16, ops.fp32_reverted),
                latency: p.latency_ms.map_or("–".into(), |ms| format!("{ms:.3} ms")),
                saved: p.chosen,
                notes,
            }
        })
        .collect()
}

fn search_outcome(view: &ReportView) -> String {
    let metrics: Vec<String> = view
        .metrics
        .iter()
        .map(|m| {
            let d = view.decimals(&m.name);
            let values = format!(
                "{} {} → {}",
                m.name,
                fixed(m.baseline, d),
                fixed(m.r#final, d)
            );
            let allowed = fixed(m.allowed_drop, d);
            match (m.drop_ci, view.confidence.is_some()) {
                (Some(ci), true) => format!(
                    "{values} (drop {}, {}, upper end {} {} {allowed})",
                    fixed(m.drop, d),
                    ci.text(d),
                    fixed(ci.high, d),
                    limit_sign(ci.high, m.allowed_drop)
                ),
                (ci, _) => {
                    let interval = ci.map_or(String::new(), |ci| format!(", {}", ci.text(d)));
                    let sign = limit_sign(m.drop, m.allowed_drop);
                    format!(
                        "{values} (drop {} {sign} {allowed}{interval})",
                        fixed(m.drop, d)
                    )
                }
            }
        })
        .collect();
    let reverted = format!(
        "{} of {} quantized ops reverted to FP32",
        view.reverted.len(),
        view.quantized_ops
    );
    match view.target_met {
        Some(true) => format!("Target met: {reverted}, {}", metrics.join(", ")),
        _ => format!(
            "Target NOT met ({}): the best model found was saved, {reverted}, {}",
            view.stop_message.as_deref().unwrap_or("no reason given"),
            metrics.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_with_only_the_oldest_fields_renders_every_section() {
        let view =
            ReportView::from_json(r#"{"algorithm": "DefaultQuantization", "quantized_ops": 5}"#)
                .unwrap();
        let page = html(&view).unwrap();
        for id in [
            "outcome",
            "metrics",
            "steps",
            "front",
            "ranking",
            "sensitivity",
            "saturation",
            "timings",
        ] {
            assert!(page.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        assert!(page.contains("DefaultQuantization quantized 5 ops"));
        assert!(markdown(&view).starts_with("# aquant report: "));
    }

    #[test]
    fn a_malformed_report_is_a_report_error() {
        for text in ["", "[1]", r#"{"algorithm": "AccuracyAwareQuantization"}"#] {
            assert!(
                matches!(ReportView::from_json(text), Err(crate::Error::Report(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn decimals_show_two_digits_of_a_small_allowed_drop() {
        let view = ReportView::from_json(
            r#"{"algorithm": "AccuracyAwareQuantization", "quantized_ops": 1, "metrics": [
                {"name": "nmse", "direction": "higher-worse", "baseline": 0, "quantized": 0.0007,
                 "final": 0.000196, "drop": 0.000196, "allowed_drop": 0.0003},
                {"name": "top1", "direction": "higher-better", "baseline": 0.98, "quantized": 0.97,
                 "final": 0.98, "drop": 0, "allowed_drop": 0.01}]}"#,
        )
        .unwrap();
        assert_eq!(view.decimals("nmse"), 5);
        assert_eq!(view.decimals("top1"), 4);
        assert_eq!(fixed(0.000196, view.decimals("nmse")), "0.00020");
    }
}
