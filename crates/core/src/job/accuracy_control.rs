//! Accuracy control's job: quantize, set up the lab (engine, journal), run the search's [`Restorer`] state
//! machine, then analyse the model to save and write down what happened.

use std::collections::BTreeSet;
use std::time::Instant;

use aquant_onnx::ModelProto;

use crate::backend::{Backend, BackendChoice};
use crate::data::{Annotation, Dataset};
use crate::error::{Error, Result};
use crate::eval::Evaluator;
use crate::graph::Graph;
use crate::heap;
use crate::job::{front, holdout};
use crate::metric::confidence::{DropInterval, IntervalParams};
use crate::metric::{Direction, Metric, OutputError};
use crate::params::RunOptions;
use crate::params::{AccuracyControlParams, RankingScore};
use crate::quantize::{
    self, FP32Outputs, ModelBytes, OpsByPrecision, QuantizationParams, QuantizationSummary,
    QuantizedModel,
};
use crate::saturation::{self, SaturationReport};
use crate::search::engine_lab::{self, EngineLab};
use crate::search::journal::Journal;
use crate::search::ladder;
use crate::search::record::Recorded;
use crate::search::restorer::{Restorer, Verdict};
use crate::search::{
    Confirmation, EvaluationCounts, MetricReport, OverflowFixReport, Report, StopReason,
};
use crate::sensitivity::{self, SensitivityReport};
use crate::tensor::Tensor;

/// Where the search starts: the ops the target device puts at a precision other than the base one (GNA's
/// 16-bit defaults), as ladder entries.
fn start_entries(
    quantized: &QuantizedModel,
    quantization: &QuantizationParams,
) -> BTreeSet<String> {
    quantize::device_precisions(quantized.placement(), quantization)
        .into_iter()
        .map(|(op, p)| ladder::entry(&op, p))
        .collect()
}

/// The overflow fix as saved: its mode and the layers still quantized with half-range weights (a moved op
/// keeps no int8 weights of its own).
fn overflow_fix_report(
    quantized: &QuantizedModel,
    quantization: &QuantizationParams,
    precisions: &quantize::Precisions,
) -> OverflowFixReport {
    OverflowFixReport {
        mode: quantization.effective_overflow_fix(),
        half_range_layers: quantized
            .half_range_layers()
            .into_iter()
            .filter(|n| !precisions.contains_key(n))
            .collect(),
    }
}

/// The result of accuracy-controlled quantization.
pub struct AccuracyControlOutcome {
    /// The final quantized model (state), to build or inspect.
    pub quantized: QuantizedModel,
    /// The final deployable QDQ model.
    pub model: ModelProto,
    /// What happened.
    pub report: Report,
    /// With several targets, each looser one's model, in the order of `report.targets` after the first (the
    /// tightest, whose model is `model`).
    pub target_models: Vec<ModelProto>,
}

impl AccuracyControlOutcome {
    /// Whether every metric is within its allowed drop, on the held-out samples too when some were held out.
    pub fn target_met(&self) -> bool {
        self.report.target_met && self.report.confirmation.as_ref().is_none_or(|c| c.met)
    }
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
) -> Result<AccuracyControlOutcome> {
    let start = Instant::now();
    control.validate_for(quantization)?;
    let control = &control.for_device(quantization.target_device);
    check_metric_targets(metrics, control)?;
    let split = holdout::split(validation, control.holdout_fraction, quantization.seed)?;
    let run = Run {
        backend,
        calibration,
        validation: split
            .as_ref()
            .map_or(validation, |s| &s.search as &dyn Dataset),
        metrics,
        quantization,
        control,
        options,
    };
    let model_name = model
        .graph
        .as_ref()
        .and_then(|g| g.name.clone())
        .unwrap_or_default();
    let mut journal = run.open_journal(&model)?;
    let (quantized, summary) = run.quantize(&mut journal, model)?;
    ladder::check_names(
        &control.fallback,
        quantized.placement().nodes.iter().map(|n| n.name.as_str()),
    )?;
    // The judge's FP32 reference, which the search's evaluator borrows for the whole run.
    let fp32 = quantized.fp32().model().clone();
    let (mut verdict, ctx) = run.search(quantized, &fp32, summary.fp32_outputs, journal)?;
    verdict.timings.calibration = summary.calibration_seconds + summary.bias_correction_seconds;
    verdict.timings.overflow_analysis = summary.overflow_analysis_seconds;
    let mut outcome = run.finish(ctx, verdict, model_name, start)?;
    if let Some(split) = split.as_ref().filter(|_| !outcome.report.interrupted) {
        outcome.report.confirmation = Some(Box::new(run.confirm(&fp32, &outcome.model, split)?));
    }
    Ok(outcome)
}

/// What one run reads: the engine, the data, the metrics and the parameters (the device's accuracy control).
struct Run<'a> {
    backend: &'a dyn Backend,
    calibration: &'a dyn Dataset,
    validation: &'a dyn Dataset,
    metrics: &'a [&'a dyn Metric],
    quantization: &'a QuantizationParams,
    control: &'a AccuracyControlParams,
    options: &'a RunOptions<'a>,
}

impl Run<'_> {
    /// FP32 and the saved model on the held-out samples, judged on the deployed engine (the search's when
    /// there is none).
    fn confirm(
        &self,
        fp32: &ModelProto,
        saved: &ModelProto,
        split: &holdout::Split,
    ) -> Result<Confirmation> {
        let engine = self.options.deployed.unwrap_or(self.backend);
        holdout::confirm(
            engine,
            fp32,
            saved,
            split,
            self.metrics,
            self.control,
            self.options.deployed_batch.max(1),
            self.options.progress,
        )
    }

    /// The run's journal: in the file `options.journal` names, keyed by a fingerprint of everything the run
    /// depends on (so a resume with other inputs is refused), else in memory.
    fn open_journal(&self, model: &ModelProto) -> Result<Journal> {
        match &self.options.journal {
            Some(file) => Journal::open(file, &self.fingerprint(model)?),
            None => Ok(Journal::in_memory()),
        }
    }

    /// The model quantized with the run's parameters: calibrated, or rebuilt from the journal's record of that
    /// calibration (then the summary is empty: nothing was run).
    fn quantize(
        &self,
        journal: &mut Journal,
        model: ModelProto,
    ) -> Result<(QuantizedModel, QuantizationSummary)> {
        let params = self.quantization;
        let key = serde_json::to_string(params)
            .map_err(|e| Error::Config(format!("encoding parameters: {e}")))?;
        if let Some(calibration) = journal.calibration(&key) {
            let quantized = quantize::from_calibration(model, params, calibration)?;
            return Ok((quantized, QuantizationSummary::default()));
        }
        let (quantized, summary) = quantize::quantize(
            self.backend,
            model,
            self.calibration,
            params,
            self.options.batch_size,
            self.options.progress,
        )?;
        journal.record_calibration(&key, &quantized.calibration())?;
        Ok((quantized, summary))
    }

    /// Runs the [`Restorer`] from the device's starting precisions over a lab on the judging engine (recorded
    /// in `journal`); returns its verdict and the engine lab, which built every candidate.
    fn search<'r>(
        &'r self,
        quantized: QuantizedModel,
        fp32: &'r ModelProto,
        known_fp32: Option<FP32Outputs>,
        journal: Journal,
    ) -> Result<(Verdict, EngineLab<'r>)> {
        let start_entries = start_entries(&quantized, self.quantization);
        let nmse = ranking_nmse(self.metrics, self.control);
        let evaluator = Evaluator::new(
            self.backend,
            self.validation,
            self.metrics.iter().copied().chain(nmse).collect(),
            Some(fp32),
            self.options.batch_size,
            self.options.progress,
        )?
        .with_interrupt(self.options.interrupt)
        .with_bootstrap(self.control.bootstrap_samples)
        .with_reference_budget(self.options.reference_budget);
        // FP32 outputs calibration already computed are the FP32 evaluation's when validation is calibration.
        let same_data = std::ptr::addr_eq(self.calibration as *const dyn Dataset, self.validation);
        let known_fp32 = known_fp32.filter(|_| same_data);
        let setup = engine_lab::Options::of_run(
            self.options,
            self.quantization.clone(),
            self.control.restore_mode,
            self.calibration,
            known_fp32,
        );
        let ctx = EngineLab::new(evaluator, quantized, setup);
        let lab = Recorded::new(ctx, journal, self.options.levers.reuse);
        let restorer = Restorer::new(
            lab,
            self.metrics,
            nmse,
            self.control,
            self.quantization.clone(),
            self.options.levers.early_stop,
        )
        .starting_from(start_entries);
        let (verdict, lab) = restorer.run()?;
        Ok((verdict, lab.into_inner()))
    }

    /// The model to save, the analyses of it (saturation, sensitivity, footprint) and the report.
    fn finish(
        &self,
        ctx: EngineLab,
        mut verdict: Verdict,
        model_name: String,
        start: Instant,
    ) -> Result<AccuracyControlOutcome> {
        let model = ctx.export(&verdict.reverted)?;
        let precisions = ladder::precisions(&verdict.reverted);
        let sixteen_bit = precisions.values().any(|p| p.is_sixteen_bit());
        // Each analysis prepares sessions of its own, on other threads than the last one's: the pages the
        // last one freed go back first (crate::heap).
        heap::release_free_pages();
        let saturation_start = Instant::now();
        let saturation = analyze_saved(
            &model,
            saturation_engine(self.backend, self.options, sixteen_bit),
            self.calibration,
            self.options,
            verdict.stop,
        )?;
        verdict.timings.saturation = saturation_start.elapsed().as_secs_f64();
        heap::release_free_pages();
        let sensitivity = match verdict.stop {
            // The user is waiting for an interrupted run to stop.
            StopReason::Interrupted => None,
            _ => sensitivity::after_run(
                &ctx.quantized,
                self.backend,
                self.calibration,
                self.options,
            )?,
        };
        let footprint = Footprint {
            ops_by_precision: OpsByPrecision::of(&ctx.quantized, &precisions),
            model_bytes: ModelBytes::of(ctx.quantized.fp32().model(), &model),
        };
        verdict.timings.sensitivity = sensitivity.as_ref().map_or(0.0, |(_, seconds)| *seconds);
        heap::release_free_pages();
        let front_start = Instant::now();
        let front = front::front(&ctx, &verdict, self.metrics, &model)?;
        let (targets, target_models) = match self.control.maximal_drop.several() {
            true => front::targets(
                &ctx,
                &verdict,
                self.metrics,
                self.control.maximal_drop.tightest(),
            )?,
            false => (Vec::new(), Vec::new()),
        };
        verdict.timings.front = front_start.elapsed().as_secs_f64();
        verdict.timings.total = start.elapsed().as_secs_f64();
        let overflow_fix = overflow_fix_report(&ctx.quantized, self.quantization, &precisions);
        let mut report = report(
            self.backend,
            &ctx,
            model_name,
            self.metrics,
            self.control,
            verdict,
            Analyses {
                overflow_fix,
                saturation,
                sensitivity: sensitivity.map(|(report, _)| report),
                footprint,
            },
        );
        report.front = front;
        report.targets = targets;
        Ok(AccuracyControlOutcome {
            quantized: ctx.quantized,
            model,
            report,
            target_models,
        })
    }
}

/// What the saved model is made of.
struct Footprint {
    ops_by_precision: OpsByPrecision,
    model_bytes: ModelBytes,
}

/// What is measured on the final model after the search.
struct Analyses {
    overflow_fix: OverflowFixReport,
    saturation: SaturationReport,
    sensitivity: Option<SensitivityReport>,
    footprint: Footprint,
}

/// The output NMSE against FP32, when groups may be ranked by it (`ranking_score` nmse, or auto with a
/// dataset-level metric): every evaluation then carries it after the controlled metrics, since the ranking
/// subset comes from the INT8 model's values.
fn ranking_nmse(
    metrics: &[&dyn Metric],
    control: &AccuracyControlParams,
) -> Option<&'static dyn Metric> {
    static NMSE: OutputError = OutputError::nmse();
    match control.ranking_score {
        RankingScore::Nmse => Some(&NMSE),
        RankingScore::Auto if metrics.iter().any(|m| !m.per_sample()) => Some(&NMSE),
        RankingScore::Auto | RankingScore::Metric => None,
    }
}

/// Metric `i`'s drop interval from FP32's evaluation to the final model's.
fn drop_interval(
    verdict: &Verdict,
    i: usize,
    direction: Direction,
    asked: IntervalParams,
) -> Option<DropInterval> {
    let fp32 = verdict.reference.as_ref()?;
    verdict.evaluation.drop_interval(fp32, i, direction, asked)
}

fn report(
    backend: &dyn Backend,
    ctx: &EngineLab,
    model: String,
    metrics: &[&dyn Metric],
    control: &AccuracyControlParams,
    verdict: Verdict,
    analyses: Analyses,
) -> Report {
    let target_met = verdict.target_met();
    let fp32 = ladder::fp32_ops(&verdict.reverted);
    let metric_reports = metrics
        .iter()
        .enumerate()
        .map(|(i, m)| MetricReport {
            name: m.name().into(),
            direction: m.direction(),
            baseline: verdict.limits.baselines[i],
            quantized: verdict.quantized_values[i],
            r#final: verdict.evaluation.metrics[i].value,
            drop: verdict.drops[i],
            allowed_drop: verdict.limits.allowed[i],
            drop_ci: drop_interval(&verdict, i, m.direction(), IntervalParams::of(control)),
        })
        .collect();
    Report {
        algorithm: "AccuracyAwareQuantization".into(),
        model,
        metrics: metric_reports,
        confidence: control.confidence,
        target_met,
        interrupted: verdict.stop == StopReason::Interrupted,
        stop_reason: verdict.stop,
        stop_message: verdict.stop.message(control),
        quantized_ops: ctx.quantized.placement().nodes.len(),
        reverted_ops: fp32.len(),
        reverted: ordered(ctx, &fp32),
        precisions: ladder::precisions(&verdict.reverted),
        preset: serde_json::to_value(verdict.preset)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        tuned_parameters: verdict
            .tuned
            .map(|t| serde_json::to_value(t).unwrap_or_default()),
        steps: verdict.steps,
        ranking: verdict.ranking,
        ranked_by: verdict.ranked_by,
        evaluations: EvaluationCounts {
            samples_inferred: ctx.evaluator.samples_inferred(),
            ..ctx.counts.clone()
        },
        timings_s: verdict.timings,
        profile: ctx.evaluator.profile().report(),
        levers: ctx.levers,
        backend: BackendChoice::named(backend),
        memory: None,
        output: None,
        deployed: verdict.deployed,
        overflow_fix: analyses.overflow_fix,
        saturation: analyses.saturation,
        sensitivity: analyses.sensitivity,
        ops_by_precision: analyses.footprint.ops_by_precision,
        model_bytes: analyses.footprint.model_bytes,
        confirmation: None,
        front: Vec::new(),
        targets: Vec::new(),
    }
}

/// The engine the saturation analysis runs the saved model on: the judge's, unless the precision ladder left
/// 16-bit Q/DQ in it, which tract cannot load (ENGINES.md) — then the deployed engine (ONNX Runtime by default),
/// and without one no engine (the weights-only analysis).
fn saturation_engine<'a>(
    backend: &'a dyn Backend,
    options: &RunOptions<'a>,
    sixteen_bit: bool,
) -> Option<&'a dyn Backend> {
    match (sixteen_bit, backend.runs_qdq_natively()) {
        (false, _) | (true, true) => Some(backend),
        (true, false) => options.deployed,
    }
}

/// The saturation analysis of the model to be saved, on the first calibration samples (the weights alone when
/// the run was interrupted: the user is waiting for it to stop).
fn analyze_saved(
    model: &ModelProto,
    backend: Option<&dyn Backend>,
    calibration: &dyn Dataset,
    options: &RunOptions,
    stop: StopReason,
) -> Result<SaturationReport> {
    let graph = Graph::new(model.clone())?;
    let Some(backend) = backend.filter(|_| stop != StopReason::Interrupted) else {
        return saturation::analyze_qdq_weights(&graph);
    };
    let samples = quantize::AUTO_SAMPLES.min(calibration.len());
    saturation::analyze_qdq(
        &graph,
        backend,
        Some(calibration),
        samples,
        options.batch_size,
    )
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
    if let Some(m) = metrics.iter().find(|m| !m.has_drop_interval()) {
        if let Some(level) = control.confidence {
            return Err(Error::Config(format!(
                "confidence {level} needs an interval of every metric's drop, and metric '{}' has none: user \
                 code scores it over the whole set (a validation function or a POT metric), which cannot be \
                 scored again on thousands of bootstrap resamples; use a built-in or a per-sample metric",
                m.name()
            )));
        }
    }
    let given = |m: &&&dyn Metric| {
        control
            .metrics
            .iter()
            .any(|t| t.name == m.name() && t.baseline_value.is_some())
    };
    let with: Vec<&str> = metrics.iter().filter(given).map(|m| m.name()).collect();
    let without: Vec<&str> = metrics
        .iter()
        .filter(|m| !given(m))
        .map(|m| m.name())
        .collect();
    if !with.is_empty() && !without.is_empty() {
        return Err(Error::Config(format!(
            "baseline values are given for {with:?} but not for {without:?}: the FP32 model is evaluated on \
             the full set only when no metric has one, so give one for every metric or for none"
        )));
    }
    Ok(())
}

fn ordered(ctx: &EngineLab, reverted: &BTreeSet<String>) -> Vec<String> {
    ctx.quantized
        .placement()
        .nodes
        .iter()
        .filter(|n| reverted.contains(&n.name))
        .map(|n| n.name.clone())
        .collect()
}

impl Run<'_> {
    /// What a journal must have been written for: the model, the data (size and up to 16 evenly spread
    /// samples of each set), every parameter and the engine. FNV-1a, hex.
    fn fingerprint(&self, model: &ModelProto) -> Result<String> {
        let Run {
            backend,
            quantization,
            control,
            options,
            ..
        } = *self;
        let datasets = [self.calibration, self.validation];
        let mut hash = Fnv::default();
        hash.write(&aquant_onnx::encode_model(model));
        let settings = serde_json::json!({
            "quantization": quantization,
            "control": control,
            "levers": options.levers,
            "compress_weights": options.compress_weights,
            "engine": [backend.name(), backend.version()],
            "deployed": options.deployed.map(|d| [d.name().to_owned(), d.version()]),
            "engine_settings": backend.settings(),
            "deployed_settings": options.deployed.map(|d| d.settings()),
            "batch": options.batch_size,
            "deployed_batch": options.deployed_batch,
        });
        hash.write(settings.to_string().as_bytes());
        for data in datasets {
            let n = data.len();
            hash.write(&n.to_le_bytes());
            let picks: BTreeSet<usize> = (0..16.min(n)).map(|k| k * n / 16.min(n)).collect();
            for index in picks {
                let sample = data.get(index)?;
                for (name, tensor) in &sample.inputs {
                    hash.write(name.as_bytes());
                    match tensor {
                        Tensor::F32(a) => a.iter().for_each(|v| hash.write(&v.to_le_bytes())),
                        Tensor::I64(a) => a.iter().for_each(|v| hash.write(&v.to_le_bytes())),
                        Tensor::U8(a) => a.iter().for_each(|v| hash.write(&v.to_le_bytes())),
                        Tensor::I8(a) => a.iter().for_each(|v| hash.write(&v.to_le_bytes())),
                    }
                }
                if let Annotation::Label(label) = sample.annotation {
                    hash.write(&label.to_le_bytes());
                }
                if let Annotation::Boxes(boxes) = &sample.annotation {
                    for object in boxes {
                        hash.write(&object.class.to_le_bytes());
                        object
                            .bbox
                            .iter()
                            .for_each(|v| hash.write(&v.to_le_bytes()));
                    }
                }
            }
        }
        Ok(format!("{:016x}", hash.0))
    }
}

struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}
