//! The restore loop (SPEC §4): revert the best-ranked group, evaluate on the full set, and
//! - stop when every metric is within its limit;
//! - keep the revert and take the next ranked group when the drop shrank;
//! - keep it but re-rank the remaining groups on the current model when the drop did not move (POT);
//! - roll it back (`use_prev_if_drop_increase`), never try that group again, and re-rank when the drop grew;
//! - stop at `max_iter_num` reverts or when nothing is left, returning the best model seen.
//!
//! With several metrics the loop works on the one furthest beyond its limit; when that changes, the ranking
//! subset and the ranking are recomputed for the new one.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use aquant_onnx::ModelProto;

use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::{Evaluation, Evaluator};
use crate::metric::{Direction, Metric};
use crate::quantize::{Preset, QuantizationParams};
use crate::search::context::SearchContext;
use crate::search::groups::{quantizer_groups, QuantizerGroup};
use crate::search::journal::{self, Journal};
use crate::search::params::AccuracyControlParams;
use crate::search::ranker::Ranking;
use crate::search::report::{
    EvaluationCounts, MetricReport, RankingEntry, Report, StepReport, Timings,
};
use crate::search::subset::ranking_subset;
use crate::search::tuning;
use crate::search::{Outcome, RunOptions};

/// Tolerance on drop comparisons: metric values are means of per-sample values, so equal models can differ in
/// the last bits.
const EPSILON: f64 = 1e-9;

/// FP32 baselines and allowed drops, per metric.
struct Limits {
    baselines: Vec<f64>,
    allowed: Vec<f64>,
}

impl Limits {
    fn drops(&self, ctx: &SearchContext, evaluation: &Evaluation) -> Vec<f64> {
        ctx.evaluator
            .metrics()
            .iter()
            .zip(&evaluation.metrics)
            .zip(&self.baselines)
            .map(|((metric, value), baseline)| metric.direction().drop(*baseline, value.value))
            .collect()
    }

    /// How far each metric is beyond its limit (≤ 0: within).
    fn excess(&self, drops: &[f64]) -> Vec<f64> {
        drops
            .iter()
            .zip(&self.allowed)
            .map(|(d, a)| d - a)
            .collect()
    }

    fn met(&self, drops: &[f64]) -> bool {
        self.excess(drops).iter().all(|e| *e <= EPSILON)
    }

    /// The metric furthest beyond its limit.
    fn controlled(&self, drops: &[f64]) -> usize {
        let excess = self.excess(drops);
        (0..excess.len())
            .max_by(|&a, &b| excess[a].total_cmp(&excess[b]).then(b.cmp(&a)))
            .unwrap_or(0)
    }

    /// A single number to compare states: the worst excess.
    fn worst(&self, drops: &[f64]) -> f64 {
        self.excess(drops)
            .into_iter()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// A model state the loop has evaluated on the full set.
#[derive(Clone)]
struct State {
    reverted: BTreeSet<String>,
    evaluation: Evaluation,
    drops: Vec<f64>,
}

/// Quantizes `model` and reverts quantizer groups until every metric's drop on `validation` is within
/// `control.maximal_drop` (or nothing is left to revert). When the target cannot be reached, the best model
/// found is returned with `report.target_met == false`: the caller decides how loud to be.
#[allow(clippy::too_many_arguments)]
pub fn quantize_with_accuracy_control(
    backend: &dyn Backend,
    model: ModelProto,
    calibration: &dyn Dataset,
    validation: &dyn Dataset,
    metrics: &[&dyn Metric],
    quantization: &QuantizationParams,
    control: &AccuracyControlParams,
    options: &RunOptions,
) -> Result<Outcome> {
    let start = Instant::now();
    control.validate()?;
    check_metric_targets(metrics, control)?;
    let mut timings = Timings::default();
    let model_name = model
        .graph
        .as_ref()
        .and_then(|g| g.name.clone())
        .unwrap_or_default();

    let mut journal = match &options.journal {
        Some(file) => Journal::open(file)?,
        None => Journal::in_memory(),
    };
    let (quantized, summary) = journal::quantize(
        &mut journal,
        backend,
        model,
        calibration,
        quantization,
        options.batch_size,
        options.progress,
    )?;
    timings.calibration = summary.calibration_seconds + summary.bias_correction_seconds;
    let fp32 = quantized.fp32().model().clone();
    let evaluator = Evaluator::new(
        backend,
        validation,
        metrics.to_vec(),
        Some(&fp32),
        options.batch_size,
        options.progress,
    )?
    .with_interrupt(options.interrupt);
    let mut ctx = SearchContext::new(
        evaluator,
        quantized,
        control.restore_mode,
        options.compress_weights,
        options.levers,
        journal,
    );
    let all: Vec<usize> = ctx.evaluator.all_indices();

    // FP32 outputs calibration already computed are the FP32 evaluation's when validation is calibration.
    let same_data = std::ptr::addr_eq(calibration as *const dyn Dataset, validation);
    let known = summary.fp32_outputs.as_ref().filter(|_| same_data);

    // 1. Baselines: given, or measured on the full set.
    let t = Instant::now();
    let given: Option<Vec<f64>> = metrics
        .iter()
        .map(|m| {
            control
                .metrics
                .iter()
                .find(|t| t.name == m.name())
                .and_then(|t| t.baseline_value)
        })
        .collect();
    let (baselines, comparison_indices, fp32_eval) = match given {
        Some(values) => {
            let count = ((all.len() as f64) * control.metric_subset_ratio)
                .ceil()
                .max(1.0) as usize;
            let subset: Vec<usize> = all.iter().copied().take(count.min(all.len())).collect();
            let fp32_eval = ctx.evaluate_fp32(&fp32, &subset, "FP32 (comparison subset)", known)?;
            (values, subset, fp32_eval)
        }
        None => {
            let fp32_eval = ctx.evaluate_fp32(&fp32, &all, "FP32 evaluation", known)?;
            let values = fp32_eval.metrics.iter().map(|m| m.value).collect();
            (values, all.clone(), fp32_eval)
        }
    };
    timings.fp32_eval = t.elapsed().as_secs_f64();
    let limits = Limits {
        allowed: baselines.iter().map(|b| control.allowed_drop(*b)).collect(),
        baselines,
    };

    // 2. The fully quantized model.
    let t = Instant::now();
    let mut preset = quantization.preset;
    let mut current = evaluate_state(&mut ctx, &limits, BTreeSet::new(), &all, "INT8 evaluation")?;
    let quantized_values: Vec<f64> = current.evaluation.metrics.iter().map(|m| m.value).collect();
    timings.int8_eval = t.elapsed().as_secs_f64();
    save_intermediate(&ctx, options, "00_quantized", &current.reverted)?;

    // 3. Optionally the mixed preset before any revert.
    if !limits.met(&current.drops)
        && control.convert_to_mixed_preset
        && preset == Preset::Performance
    {
        let mixed_params = QuantizationParams {
            preset: Preset::Mixed,
            ..quantization.clone()
        };
        let previous = ctx.quantized.clone();
        let mixed = ctx.quantize(&fp32, calibration, &mixed_params, options.batch_size)?;
        ctx.replace_model(mixed);
        let candidate = evaluate_state(
            &mut ctx,
            &limits,
            BTreeSet::new(),
            &all,
            "INT8 (mixed preset)",
        )?;
        if limits.worst(&candidate.drops) < limits.worst(&current.drops) {
            current = candidate;
            preset = Preset::Mixed;
            save_intermediate(&ctx, options, "00_quantized_mixed", &current.reverted)?;
        } else {
            ctx.replace_model(previous);
        }
    }

    // 4. Optionally other base-algorithm settings before any revert.
    let mut tuned: Option<QuantizationParams> = None;
    if !limits.met(&current.drops) && control.tune_hyperparams {
        let controlled = limits.controlled(&current.drops);
        let subset_size = control.ranking_subset_size.unwrap_or(300).min(all.len());
        let subset = subset_for(
            &ctx,
            &fp32_eval,
            &comparison_indices,
            &current,
            controlled,
            subset_size,
        );
        let base = QuantizationParams {
            preset,
            ..quantization.clone()
        };
        let best = tuning::best_variant(
            &mut ctx,
            &fp32,
            calibration,
            &base,
            &subset,
            controlled,
            options.batch_size,
        )?;
        if let Some((variant, model)) = best {
            let previous = ctx.quantized.clone();
            ctx.replace_model(model);
            let candidate =
                evaluate_state(&mut ctx, &limits, BTreeSet::new(), &all, "INT8 (tuned)")?;
            if limits.worst(&candidate.drops) < limits.worst(&current.drops) {
                current = candidate;
                preset = variant.preset;
                tuned = Some(variant);
                save_intermediate(&ctx, options, "00_quantized_tuned", &current.reverted)?;
            } else {
                ctx.replace_model(previous);
            }
        }
    }

    // 5. The restore loop.
    let groups = quantizer_groups(ctx.quantized.placement());
    let mut best = current.clone();
    let mut steps: Vec<StepReport> = Vec::new();
    let mut last_ranking: Vec<RankingEntry> = Vec::new();
    let mut stepped_back: BTreeSet<usize> = BTreeSet::new();
    let max_iter = control.max_iter_num.unwrap_or(usize::MAX);
    let subset_size = control.ranking_subset_size.unwrap_or(300).min(all.len());
    let mut ranking: Option<Ranking> = None;
    let mut stop_reason = String::from("target met");
    let reference_values = fp32_eval;

    let mut interrupted = false;
    'restore: while !limits.met(&current.drops) {
        if steps.len() >= max_iter {
            stop_reason = format!("max_iter_num ({max_iter}) reached");
            break;
        }
        let controlled = limits.controlled(&current.drops);
        if ranking.as_ref().is_some_and(|r| r.metric() != controlled) {
            ranking = None;
        }
        let t = Instant::now();
        let entry = loop {
            let r = match &mut ranking {
                Some(r) => r,
                None => {
                    let remaining = remaining_groups(&groups, &current.reverted, &stepped_back);
                    if remaining.is_empty() {
                        stop_reason = "every group was tried: nothing left to revert".into();
                        timings.ranking += t.elapsed().as_secs_f64();
                        break 'restore;
                    }
                    let subset = subset_for(
                        &ctx,
                        &reference_values,
                        &comparison_indices,
                        &current,
                        controlled,
                        subset_size,
                    );
                    ranking.insert(Ranking::new(
                        &ctx,
                        &groups,
                        &remaining,
                        &current.reverted,
                        subset,
                        controlled,
                    ))
                }
            };
            let next = match r.next(&mut ctx) {
                Err(Error::Interrupted) => {
                    interrupted = true;
                    timings.ranking += t.elapsed().as_secs_f64();
                    break 'restore;
                }
                other => other?,
            };
            match next {
                Some(entry) => {
                    last_ranking = r.entries();
                    break entry;
                }
                None => ranking = None,
            }
        };
        timings.ranking += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let group = &groups[entry.group];
        let mut reverted = current.reverted.clone();
        reverted.extend(group.nodes.iter().cloned());
        let step = steps.len() + 1;
        let candidate =
            match evaluate_state(&mut ctx, &limits, reverted, &all, &format!("step {step}")) {
                Err(Error::Interrupted) => {
                    interrupted = true;
                    break 'restore;
                }
                other => other?,
            };
        let (before, after) = (current.drops[controlled], candidate.drops[controlled]);
        let (kept, reason) = if limits.met(&candidate.drops) {
            (true, "target met")
        } else if after < before - EPSILON {
            (true, "drop decreased")
        } else if after <= before + EPSILON {
            ranking = None;
            (true, "no improvement: re-ranking")
        } else if control.use_prev_if_drop_increase {
            ranking = None;
            stepped_back.insert(entry.group);
            (false, "drop increased: rolled back, re-ranking")
        } else {
            ranking = None;
            (
                true,
                "drop increased: kept (use_prev_if_drop_increase is off), re-ranking",
            )
        };
        steps.push(StepReport {
            step,
            group: entry.group,
            reverted_group: group.nodes.clone(),
            metric: candidate.evaluation.metrics[controlled].value,
            drop: after,
            kept,
            reason: reason.into(),
        });
        save_intermediate(
            &ctx,
            options,
            &format!("step_{step:03}"),
            &candidate.reverted,
        )?;
        if kept {
            current = candidate;
            if limits.worst(&current.drops) < limits.worst(&best.drops) - EPSILON
                || limits.met(&current.drops)
            {
                best = current.clone();
            }
        }
        timings.restore += t.elapsed().as_secs_f64();
    }
    if limits.met(&current.drops) {
        best = current;
    }
    if interrupted {
        stop_reason = "interrupted: the best model so far was saved; continue with --resume".into();
    }

    let model = ctx.export(&best.reverted)?;
    let metrics_report = ctx
        .evaluator
        .metrics()
        .iter()
        .enumerate()
        .map(|(i, m)| MetricReport {
            name: m.name().into(),
            direction: m.direction(),
            baseline: limits.baselines[i],
            quantized: quantized_values[i],
            r#final: best.evaluation.metrics[i].value,
            drop: best.drops[i],
            allowed_drop: limits.allowed[i],
        })
        .collect();
    timings.total = start.elapsed().as_secs_f64();
    let target_met = limits.met(&best.drops);
    let report = Report {
        algorithm: "AccuracyAwareQuantization".into(),
        model: model_name,
        metrics: metrics_report,
        target_met,
        interrupted,
        stop_reason: if target_met {
            "target met".into()
        } else {
            stop_reason
        },
        quantized_ops: ctx.quantized.placement().nodes.len(),
        reverted_ops: best.reverted.len(),
        reverted: ordered(&ctx, &best.reverted),
        preset: serde_json::to_value(preset)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        tuned_parameters: tuned.map(|t| serde_json::to_value(t).unwrap_or_default()),
        steps,
        ranking: last_ranking,
        evaluations: EvaluationCounts {
            samples_inferred: ctx.evaluator.samples_inferred(),
            ..ctx.counts.clone()
        },
        timings_s: timings,
        profile: ctx.evaluator.profile().report(),
        levers: ctx.levers,
        backend: ctx.evaluator.backend().name().to_owned(),
        output: None,
    };
    Ok(Outcome {
        quantized: ctx.quantized,
        model,
        report,
    })
}

fn check_metric_targets(metrics: &[&dyn Metric], control: &AccuracyControlParams) -> Result<()> {
    if metrics.is_empty() {
        return Err(Error::Config(
            "accuracy control needs at least one metric".into(),
        ));
    }
    if let Some(t) = control
        .metrics
        .iter()
        .find(|t| !metrics.iter().any(|m| m.name() == t.name))
    {
        return Err(Error::Config(format!(
            "a baseline is given for metric '{}', which is not evaluated",
            t.name
        )));
    }
    Ok(())
}

fn evaluate_state(
    ctx: &mut SearchContext,
    limits: &Limits,
    reverted: BTreeSet<String>,
    indices: &[usize],
    label: &str,
) -> Result<State> {
    let evaluation = ctx.evaluate(&reverted, indices, label)?;
    let drops = limits.drops(ctx, &evaluation);
    Ok(State {
        reverted,
        evaluation,
        drops,
    })
}

/// Groups not yet reverted and never rolled back.
fn remaining_groups(
    groups: &[QuantizerGroup],
    reverted: &BTreeSet<String>,
    stepped_back: &BTreeSet<usize>,
) -> Vec<usize> {
    groups
        .iter()
        .filter(|g| !stepped_back.contains(&g.id) && !g.nodes.iter().all(|n| reverted.contains(n)))
        .map(|g| g.id)
        .collect()
}

/// The ranking subset for metric `metric` (FP32 vs the current model, sample by sample), ordered worst-first
/// for the current model so that early-stopping evaluations meet the decisive samples first.
fn subset_for(
    ctx: &SearchContext,
    reference: &Evaluation,
    comparison: &[usize],
    current: &State,
    metric: usize,
    size: usize,
) -> Vec<usize> {
    let position: HashMap<usize, usize> = current
        .evaluation
        .indices
        .iter()
        .enumerate()
        .map(|(k, &i)| (i, k))
        .collect();
    let value = |i: usize| current.evaluation.metrics[metric].per_sample[position[&i]];
    let current_values: Vec<f64> = comparison.iter().map(|&i| value(i)).collect();
    let mut subset = ranking_subset(
        comparison,
        &reference.metrics[metric].per_sample,
        &current_values,
        size,
    );
    let higher_better = ctx.evaluator.metrics()[metric].direction() == Direction::HigherBetter;
    subset.sort_by(|&a, &b| {
        let (va, vb) = (value(a), value(b));
        if higher_better {
            va.total_cmp(&vb)
        } else {
            vb.total_cmp(&va)
        }
    });
    subset
}

fn ordered(ctx: &SearchContext, reverted: &BTreeSet<String>) -> Vec<String> {
    ctx.quantized
        .placement()
        .nodes
        .iter()
        .filter(|n| reverted.contains(&n.name))
        .map(|n| n.name.clone())
        .collect()
}

fn save_intermediate(
    ctx: &SearchContext,
    options: &RunOptions,
    name: &str,
    reverted: &BTreeSet<String>,
) -> Result<()> {
    let Some(dir) = &options.intermediate_dir else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    let model = ctx.export(reverted)?;
    aquant_onnx::save_model(&model, &dir.join(format!("{name}.onnx")))?;
    Ok(())
}
