//! The [`Lab`] on an engine: the quantized model, the evaluator, and what building and running
//! candidates needs. A candidate is identified by its set of reverted ops.

use std::collections::BTreeSet;
use std::path::PathBuf;

use aquant_onnx::ModelProto;

use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::{measure_latency, per_sample_value, Evaluation, Evaluator, Latency};
use crate::executor::Executor;
use crate::graph::Cut;
use crate::heap;
use crate::metric::Scoring;
use crate::quantize::{
    self, FP32Outputs, FittedQuantizers, ModelForm, QuantizationParams, QuantizedModel, RestoreMode,
};
use crate::search::cohort::Cohort;
use crate::search::groups::{quantizer_groups, QuantizerGroup};
use crate::search::lab::{Bench, Deployment, EngineId, Models, RankingCandidate};
use crate::search::ladder;
use crate::search::ranker::Scorer;
use crate::search::remote::{self, ExecutorScorer, Remote};
use crate::search::report::EvaluationCounts;
use crate::search::scorer::{CohortKey, CohortScorer, PlainScorer};
use crate::search::Levers;

/// Shared state of one accuracy-controlled run.
pub(crate) struct EngineLab<'a> {
    pub evaluator: Evaluator<'a>,
    pub quantized: QuantizedModel,
    pub restore_mode: RestoreMode,
    pub compress_weights: bool,
    /// The form candidates are evaluated in: whichever the engine runs fastest (with int8 kernels, QDQ: the
    /// saved model itself).
    pub evaluation_form: ModelForm,
    pub counts: EvaluationCounts,
    pub levers: Levers,
    /// The FP32 model.
    pub fp32: ModelProto,
    /// The calibration data and batch size, for re-quantizing.
    pub calibration: &'a dyn Dataset,
    pub batch_size: usize,
    /// FP32 outputs calibration computed, usable as the FP32 evaluation of exactly those samples.
    pub known_fp32: Option<FP32Outputs>,
    pub intermediate_dir: Option<PathBuf>,
    /// The engine the saved model is deployed on, and the batch it is judged at there.
    pub deployed: Option<&'a dyn Backend>,
    pub deployed_batch: usize,
    /// Timed runs of the deployed latency measure (0: not measured).
    pub latency_runs: usize,
    /// The cohort of the last ranking scorer, kept for the next scorer of the same ranking.
    pub parked: Option<(CohortKey, Cohort)>,
    /// The base algorithm's parameters of the current quantized model (what a remote worker rebuilds it with).
    pub params: QuantizationParams,
    /// Where candidates are evaluated instead of here, and what was sent there.
    pub remote: Option<Remote<'a>>,
    tag: String,
}

impl<'a> EngineLab<'a> {
    /// The context of a run judged by `evaluator`'s engine.
    pub fn new(evaluator: Evaluator<'a>, quantized: QuantizedModel, options: Options<'a>) -> Self {
        let mut ctx = EngineLab {
            evaluation_form: ModelForm::Evaluation,
            fp32: quantized.fp32().model().clone(),
            evaluator,
            quantized,
            restore_mode: options.restore_mode,
            compress_weights: options.compress_weights,
            counts: EvaluationCounts::default(),
            levers: options.levers,
            calibration: options.calibration,
            batch_size: options.batch_size,
            known_fp32: options.known_fp32,
            intermediate_dir: options.intermediate_dir,
            deployed: options.deployed,
            deployed_batch: options.deployed_batch,
            latency_runs: options.latency_runs,
            parked: None,
            params: options.params,
            remote: options.executor.map(Remote::new),
            tag: String::new(),
        };
        ctx.judge_on(ctx.evaluator.backend());
        ctx
    }

    /// Makes `backend` the judge: evaluations in the form it runs best, keyed by its name and version.
    fn judge_on(&mut self, backend: &'a dyn Backend) {
        self.evaluator.set_backend(backend);
        self.evaluation_form = ModelForm::evaluated_on(backend, self.compress_weights);
        self.retag();
    }

    fn retag(&mut self) {
        let backend = self.evaluator.backend();
        self.tag = format!(
            "{} {} batch {} {:016x}",
            backend.name(),
            backend.version(),
            self.evaluator.batch_size(),
            self.quantized.calibration().fingerprint()
        );
        self.parked = None;
    }

    /// The deployable model of the candidate `reverted` ([`ladder`] entries: ops in FP32 or at 16 bits).
    pub fn export(&self, reverted: &BTreeSet<String>) -> Result<ModelProto> {
        let form = ModelForm::Export {
            compress_weights: self.compress_weights,
        };
        self.quantized
            .build_with(&ladder::precisions(reverted), self.restore_mode, form)
    }

    /// The candidate `reverted` ([`ladder`] entries), in the form it is evaluated in.
    pub fn build(&self, reverted: &BTreeSet<String>) -> Result<ModelProto> {
        self.evaluator.profile().build(|| {
            self.quantized.build_with(
                &ladder::precisions(reverted),
                self.restore_mode,
                self.evaluation_form,
            )
        })
    }

    /// Where a candidate's values upstream of its change can be taken from another model's run: anywhere for
    /// simulated quantization (plain f32 ops); at quantized values for QDQ on an engine whose fused kernels
    /// write them the same when they are outputs; nowhere otherwise.
    pub fn cut(&self) -> Option<Cut> {
        match self.evaluation_form {
            ModelForm::Evaluation => Some(Cut::Anywhere),
            ModelForm::Export { .. } => self
                .evaluator
                .backend()
                .keeps_quantized_values_when_tapped()
                .then_some(Cut::AtQuantizedValues),
        }
    }

    /// How many ranking candidates are evaluated together: bounded so that their prepared models fit in
    /// about 256 MiB (an engine holds roughly two copies of the weights in the form it evaluates them: as given
    /// and packed for its kernels). MobileNetV2 (14 MB of FP32 weights): 36 candidates in int8 Q/DQ on ONNX
    /// Runtime (6.6 MB per session, measured), 9 in tract's FP32 evaluation form.
    pub fn cohort_size(&self) -> usize {
        const BUDGET: usize = 256 << 20;
        let weights = self.quantized.weight_bytes_in(self.evaluation_form).max(1);
        (BUDGET / (2 * weights)).clamp(2, 64)
    }

    fn run_evaluation(
        &mut self,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
    ) -> Result<Evaluation> {
        let evaluation = self.evaluator.evaluate(model, indices, label)?;
        self.count(indices);
        Ok(evaluation)
    }

    /// Counts an evaluation on `indices`: full or on a subset.
    fn count(&mut self, indices: &[usize]) {
        if indices.len() == self.evaluator.dataset().len() {
            self.counts.full += 1;
        } else {
            self.counts.subset += 1;
        }
    }
}

/// How a [`EngineLab`] is set up besides its evaluator and model.
pub(crate) struct Options<'a> {
    pub restore_mode: RestoreMode,
    pub compress_weights: bool,
    pub levers: Levers,
    pub calibration: &'a dyn Dataset,
    pub batch_size: usize,
    pub known_fp32: Option<FP32Outputs>,
    pub intermediate_dir: Option<PathBuf>,
    pub deployed: Option<&'a dyn Backend>,
    pub deployed_batch: usize,
    pub latency_runs: usize,
    /// The quantized model's base parameters.
    pub params: QuantizationParams,
    pub executor: Option<&'a dyn Executor>,
}

impl<'a> Options<'a> {
    /// A run's context options: `run`'s settings, the quantization parameters, the restore mode, the
    /// calibration set and the FP32 outputs calibration already computed (when they are the validation set's).
    pub fn of_run(
        run: &crate::params::RunOptions<'a>,
        params: QuantizationParams,
        restore_mode: RestoreMode,
        calibration: &'a dyn Dataset,
        known_fp32: Option<FP32Outputs>,
    ) -> Self {
        Options {
            restore_mode,
            compress_weights: run.compress_weights,
            levers: run.levers,
            calibration,
            batch_size: run.batch_size,
            known_fp32,
            intermediate_dir: run.intermediate_dir.clone(),
            deployed: run.deployed,
            deployed_batch: run.deployed_batch,
            latency_runs: run.latency_runs,
            params,
            executor: run.executor,
        }
    }
}

impl Bench for EngineLab<'_> {
    fn samples(&self) -> usize {
        self.evaluator.dataset().len()
    }

    fn tag(&self) -> String {
        self.tag.clone()
    }

    fn evaluate_fp32(&mut self, indices: &[usize]) -> Result<Evaluation> {
        let known = self.known_fp32.take();
        match known.filter(|(known, _)| known == indices) {
            Some((_, outputs)) => {
                self.evaluator.seed_reference(indices, &outputs);
                self.evaluator.score(&self.fp32, indices, &outputs)
            }
            None => {
                let model = self.fp32.clone();
                self.run_evaluation(&model, indices, "FP32 evaluation")
            }
        }
    }

    fn evaluate(
        &mut self,
        reverted: &BTreeSet<String>,
        indices: &[usize],
        label: &str,
    ) -> Result<Evaluation> {
        if remote::evaluates_remotely(self) {
            let evaluation = remote::evaluate(self, reverted, indices, label)?;
            self.count(indices);
            return Ok(evaluation);
        }
        let model = self.build(reverted)?;
        self.run_evaluation(&model, indices, label)
    }

    fn evaluation_from_values(
        &self,
        indices: &[usize],
        known: &dyn Fn(usize, usize) -> Option<f64>,
    ) -> Result<Option<Evaluation>> {
        let mut metrics = Vec::new();
        for (number, &metric) in self.evaluator.metrics().iter().enumerate() {
            // A dataset-level metric's value is not its per-sample values' aggregate.
            if !matches!(metric.scoring(), Scoring::PerSample(_)) {
                return Ok(None);
            }
            let Some(per_sample) = indices
                .iter()
                .map(|&i| known(number, i))
                .collect::<Option<Vec<f64>>>()
            else {
                return Ok(None);
            };
            metrics.push(per_sample_value(metric, per_sample)?);
        }
        Ok(Some(Evaluation {
            indices: indices.to_vec(),
            metrics,
            seconds: 0.0,
        }))
    }

    fn scorer<'s>(
        &'s mut self,
        base: &BTreeSet<String>,
        members: Vec<RankingCandidate>,
        subset: &[usize],
        metric: usize,
    ) -> Result<Box<dyn Scorer + 's>> {
        if self.remote.is_some() && self.evaluator.metrics()[metric].per_sample() {
            return Ok(Box::new(ExecutorScorer::new(self, members, subset, metric)));
        }
        // Cohorts score sample by sample: a dataset-level metric (even one that returns per-sample values) is
        // scored by whole-subset evaluations instead.
        if self.levers.cohorts && self.evaluator.metrics()[metric].per_sample() {
            return Ok(Box::new(CohortScorer::new(
                self, base, members, subset, metric,
            )));
        }
        Ok(Box::new(PlainScorer {
            ctx: self,
            members: members.into_iter().collect(),
            subset: subset.to_vec(),
            metric,
        }))
    }

    fn end_ranking(&mut self) {
        self.parked = None;
        heap::release_free_pages();
    }

    fn check_interrupt(&self) -> Result<()> {
        self.evaluator.check_interrupt()
    }
}

impl Models for EngineLab<'_> {
    fn groups(&self) -> Vec<QuantizerGroup> {
        quantizer_groups(self.quantized.placement())
    }

    fn integer_kernels(&self, reverted: &BTreeSet<String>) -> usize {
        // An op at any rung above INT8 leaves its integer kernel (ONNX Runtime fuses 8-bit QDQ only).
        let ops = reverted
            .iter()
            .map(|e| ladder::parse(e).0.to_string())
            .collect();
        self.quantized.integer_kernels(&ops)
    }

    fn requantize(
        &mut self,
        params: &QuantizationParams,
        recorded: Option<FittedQuantizers>,
    ) -> Result<Option<FittedQuantizers>> {
        let (quantized, made) = match recorded {
            Some(calibration) => (
                quantize::from_calibration(self.fp32.clone(), params, calibration)?,
                None,
            ),
            None => {
                let (quantized, _) = quantize::quantize(
                    self.evaluator.backend(),
                    self.fp32.clone(),
                    self.calibration,
                    params,
                    self.batch_size,
                    self.evaluator.progress(),
                )?;
                let calibration = quantized.calibration();
                (quantized, Some(calibration))
            }
        };
        self.quantized = quantized;
        self.params = params.clone();
        self.retag();
        Ok(made)
    }

    fn save_intermediate(&self, name: &str, reverted: &BTreeSet<String>) -> Result<()> {
        let Some(dir) = &self.intermediate_dir else {
            return Ok(());
        };
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        let model = self.export(reverted)?;
        aquant_onnx::save_model(&model, &dir.join(format!("{name}.onnx")))?;
        Ok(())
    }
}

impl Deployment for EngineLab<'_> {
    fn deployed(&self) -> Option<EngineId> {
        self.deployed.map(|b| EngineId {
            name: b.name().to_owned(),
            version: b.version(),
            settings: b.settings(),
            batch: self.deployed_batch,
        })
    }

    fn judge_is_deployed(&self) -> bool {
        let judge = self.evaluator.backend();
        let saved_form = ModelForm::Export {
            compress_weights: self.compress_weights,
        };
        self.deployed.is_some_and(|d| {
            d.name() == judge.name()
                && d.version() == judge.version()
                && d.settings() == judge.settings()
                && self.deployed_batch == self.evaluator.batch_size()
                && self.evaluation_form == saved_form
        })
    }

    fn evaluate_deployed(&mut self, reverted: &BTreeSet<String>) -> Result<Evaluation> {
        let backend = self.deployed.ok_or_else(|| {
            Error::Config("no deployed engine to evaluate the saved model on".into())
        })?;
        let model = self.export(reverted)?;
        let all: Vec<usize> = (0..self.samples()).collect();
        let evaluation = Evaluator::new(
            backend,
            self.evaluator.dataset(),
            self.evaluator.metrics().to_vec(),
            Some(&self.fp32),
            self.deployed_batch,
            self.evaluator.progress(),
        )?
        .with_interrupt(self.evaluator.interrupt())
        .with_bootstrap(self.evaluator.bootstrap())
        .evaluate(&model, &all, "deployed check")?;
        self.counts.full += 1;
        Ok(evaluation)
    }

    fn judge_on_deployed(&mut self) -> Result<()> {
        let backend = self
            .deployed
            .ok_or_else(|| Error::Config("no deployed engine to judge on".into()))?;
        self.evaluator.set_batch_size(self.deployed_batch);
        self.judge_on(backend);
        Ok(())
    }

    fn deployed_latency(&mut self, reverted: &BTreeSet<String>) -> Result<Option<Latency>> {
        let Some(engine) = self.deployed else {
            return Ok(None);
        };
        let saved = self.export(reverted)?;
        let data = self.evaluator.dataset();
        measure_latency(engine, &self.fp32, &saved, data, self.latency_runs)
    }
}
