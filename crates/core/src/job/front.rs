//! The accuracy / size / latency front of a search, and the model of each target of a run given several.
//!
//! The search already walks a path from the fully quantized model toward its target, one step at a time; every
//! model on it (kept or rolled back) is a trade-off a user may prefer to the one the target picked. The
//! restorer records the path with each model's metrics; here, after the search, each becomes a point with
//! what it costs: its size, its ops by precision, and its latency on the deployed engine. Latency is measured
//! at the end, not during the search, so the search stays as fast as without it; the timer is the deployed
//! check's ([`measure_each`]), a few models at a time, and FP32 and the saved model keep the times the
//! deployed check measured.

use aquant_onnx::ModelProto;

use crate::error::Result;
use crate::eval::{measure_each, timed_together, Timing};
use crate::metric::Metric;
use crate::quantize::{OpsByPrecision, Precision, Precisions};
use crate::search::engine_lab::EngineLab;
use crate::search::ladder;
use crate::search::restorer::{PathPoint, TargetVerdict, Verdict};
use crate::search::{DeployedMetric, FrontMetric, FrontPoint, StopReason, TargetReport};

/// "INT8" for the model the steps start from, "step N" for a step's candidate.
fn label(step: Option<usize>) -> String {
    step.map_or("INT8".into(), |n| format!("step {n}"))
}

/// The front of `verdict`'s search: FP32, then every model of the path in order, the saved one (`saved`)
/// marked; timed on the deployed engine `ctx` holds (`latency_runs` runs each) unless the run was interrupted.
/// FP32 and the saved model keep the times the deployed check measured them at, the front's way.
pub(crate) fn front(
    ctx: &EngineLab,
    verdict: &Verdict,
    metrics: &[&dyn Metric],
    saved: &ModelProto,
) -> Result<Vec<FrontPoint>> {
    let chosen = (verdict.path.iter()).rposition(|p| p.kept && p.reverted == verdict.reverted);
    let timed = ctx
        .deployed
        .filter(|_| verdict.stop != StopReason::Interrupted);
    let known = timed.and_then(|_| deployed_timing(ctx, verdict));
    let mut points = vec![fp32_point(ctx, verdict, metrics)];
    // The models still to time, with their points' positions.
    let mut untimed = Vec::new();
    match known {
        Some(timing) => points[0].latency_ms = Some(timing.fp32_ms),
        None => untimed.push((0, ctx.fp32.clone())),
    }
    let together = timed_together(ctx.quantized.weight_bytes());
    for (i, point) in verdict.path.iter().enumerate() {
        if untimed.len() == together {
            time_untimed(ctx, timed, &mut points, &mut untimed)?;
        }
        let is_saved = point.reverted == verdict.reverted;
        // The saved model's point shares its weights instead of exporting them again.
        let model = match is_saved {
            true => saved.clone(),
            false => ctx.export(&point.reverted)?,
        };
        let mut front_point = path_point(ctx, point, &model, metrics, chosen == Some(i));
        match known.filter(|_| is_saved) {
            Some(timing) => front_point.latency_ms = Some(timing.int8_ms),
            None => untimed.push((points.len(), model)),
        }
        points.push(front_point);
    }
    time_untimed(ctx, timed, &mut points, &mut untimed)?;
    Ok(points)
}

/// The deployed check's times of FP32 and the saved model where it measured them as [`measure_each`] does
/// (at the engine's default threads, else as configured; as many runs): not measured twice, and the front
/// agrees with `deployed.latency`.
fn deployed_timing(ctx: &EngineLab, verdict: &Verdict) -> Option<Timing> {
    let latency = verdict.deployed.as_ref()?.latency.as_ref()?;
    (latency.runs == ctx.latency_runs && latency.batch == 1)
        .then(|| latency.default_threads.unwrap_or(latency.one_thread))
}

/// Times the `untimed` models on `engine` (when there is one), each into its point of `points`, and empties
/// it.
fn time_untimed(
    ctx: &EngineLab,
    engine: Option<&dyn crate::Backend>,
    points: &mut [FrontPoint],
    untimed: &mut Vec<(usize, ModelProto)>,
) -> Result<()> {
    let (positions, models): (Vec<usize>, Vec<ModelProto>) = untimed.drain(..).unzip();
    let Some(engine) = engine.filter(|_| !models.is_empty()) else {
        return Ok(());
    };
    let medians = measure_each(engine, &models, ctx.evaluator.dataset(), ctx.latency_runs)?;
    for (position, ms) in positions.into_iter().zip(medians.into_iter().flatten()) {
        points[position].latency_ms = Some(ms);
    }
    Ok(())
}

/// The FP32 end: its baselines (no drop), its size, every quantizable op in FP32.
fn fp32_point(ctx: &EngineLab, verdict: &Verdict, metrics: &[&dyn Metric]) -> FrontPoint {
    let all_fp32: Precisions = (ctx.quantized.placement().nodes.iter())
        .map(|n| (n.name.clone(), Precision::Fp32))
        .collect();
    FrontPoint {
        label: "FP32".into(),
        step: None,
        kept: true,
        chosen: false,
        metrics: (metrics.iter().zip(&verdict.limits.baselines))
            .map(|(m, b)| FrontMetric {
                name: m.name().into(),
                value: *b,
                drop: 0.0,
            })
            .collect(),
        bytes: aquant_onnx::encoded_len(&ctx.fp32),
        ops_by_precision: OpsByPrecision::of(&ctx.quantized, &all_fp32),
        latency_ms: None,
    }
}

/// A model of the path, saved as `model`.
fn path_point(
    ctx: &EngineLab,
    point: &PathPoint,
    model: &ModelProto,
    metrics: &[&dyn Metric],
    chosen: bool,
) -> FrontPoint {
    FrontPoint {
        label: label(point.step),
        step: point.step,
        kept: point.kept,
        chosen,
        metrics: (metrics.iter().enumerate())
            .map(|(i, m)| FrontMetric {
                name: m.name().into(),
                value: point.evaluation.metrics[i].value,
                drop: point.drops[i],
            })
            .collect(),
        bytes: aquant_onnx::encoded_len(model),
        ops_by_precision: OpsByPrecision::of(&ctx.quantized, &ladder::precisions(&point.reverted)),
        latency_ms: None,
    }
}

/// Each target's report, tightest first (the run's own model, `max_drop`), and each looser target's model, in
/// the same order after the tightest.
pub(crate) fn targets(
    ctx: &EngineLab,
    verdict: &Verdict,
    metrics: &[&dyn Metric],
    max_drop: f64,
) -> Result<(Vec<TargetReport>, Vec<ModelProto>)> {
    let mut reports = vec![tightest_target(verdict, metrics, max_drop)];
    let mut models = Vec::new();
    for target in &verdict.targets {
        reports.push(target_report(target, metrics, verdict));
        models.push(ctx.export(&target.point.reverted)?);
    }
    Ok((reports, models))
}

fn target_report(
    target: &TargetVerdict,
    metrics: &[&dyn Metric],
    verdict: &Verdict,
) -> TargetReport {
    let point = &target.point;
    TargetReport {
        max_drop: target.max_drop,
        point: label(point.step),
        metrics: (metrics.iter().enumerate())
            .map(|(i, m)| DeployedMetric {
                name: m.name().into(),
                value: point.evaluation.metrics[i].value,
                drop: point.drops[i],
                judged_drop: verdict.limits.confidence.map(|_| point.judged[i]),
                allowed_drop: target.allowed[i],
            })
            .collect(),
        target_met: target.met,
        deployed: target.deployed.clone(),
        output: None,
    }
}

/// The run's own target: the saved model, as the run's report says of it.
fn tightest_target(verdict: &Verdict, metrics: &[&dyn Metric], max_drop: f64) -> TargetReport {
    let saved = (verdict.path.iter()).rfind(|p| p.kept && p.reverted == verdict.reverted);
    TargetReport {
        max_drop,
        point: label(saved.and_then(|p| p.step)),
        metrics: (metrics.iter().enumerate())
            .map(|(i, m)| DeployedMetric {
                name: m.name().into(),
                value: verdict.evaluation.metrics[i].value,
                drop: verdict.drops[i],
                judged_drop: verdict.limits.confidence.map(|_| verdict.judged[i]),
                allowed_drop: verdict.limits.allowed[i],
            })
            .collect(),
        target_met: verdict.target_met(),
        deployed: verdict.deployed.clone(),
        output: None,
    }
}
