//! What every stage of the search shares: the quantized model, the evaluator, and the cache of evaluations.
//!
//! A candidate is identified by its set of reverted ops; its evaluation on a given set of samples never
//! changes, so it is computed at most once.

use std::collections::{BTreeSet, HashMap};

use aquant_onnx::ModelProto;

use crate::error::Result;
use crate::eval::{Evaluation, Evaluator};
use crate::quantize::{FP32Outputs, ModelForm, QuantizedModel, RestoreMode};
use crate::search::journal::{self, Journal};
use crate::search::report::EvaluationCounts;
use crate::search::Levers;

/// The journal's tag for evaluations of the FP32 model.
const FP32_TAG: u64 = 0;

/// Shared state of one accuracy-controlled run.
pub(super) struct SearchContext<'a> {
    pub evaluator: Evaluator<'a>,
    pub quantized: QuantizedModel,
    pub restore_mode: RestoreMode,
    pub compress_weights: bool,
    /// The form candidates are evaluated in: whichever the engine runs fastest (with int8 kernels, QDQ: the
    /// deployed numerics themselves).
    pub evaluation_form: ModelForm,
    pub counts: EvaluationCounts,
    pub levers: Levers,
    /// Results on disk, for resuming: consulted before evaluating, written after.
    pub journal: Journal,
    /// The current quantized model's fingerprint (journal key).
    pub model_tag: u64,
    cache: HashMap<(BTreeSet<String>, Vec<usize>), Evaluation>,
}

impl<'a> SearchContext<'a> {
    pub fn new(
        evaluator: Evaluator<'a>,
        quantized: QuantizedModel,
        restore_mode: RestoreMode,
        compress_weights: bool,
        levers: Levers,
        journal: Journal,
    ) -> Self {
        let evaluation_form = if evaluator.backend().runs_qdq_natively() {
            ModelForm::Export {
                compress_weights: true,
            }
        } else {
            ModelForm::Evaluation
        };
        SearchContext {
            model_tag: quantized.calibration().fingerprint(),
            evaluation_form,
            evaluator,
            quantized,
            restore_mode,
            compress_weights,
            counts: EvaluationCounts::default(),
            levers,
            journal,
            cache: HashMap::new(),
        }
    }

    /// Replaces the quantized model (e.g. after switching preset); cached evaluations no longer apply.
    pub fn replace_model(&mut self, quantized: QuantizedModel) {
        self.model_tag = quantized.calibration().fingerprint();
        self.quantized = quantized;
        self.cache.clear();
    }

    /// The deployable model with `reverted` ops in FP32.
    pub fn export(&self, reverted: &BTreeSet<String>) -> Result<ModelProto> {
        let form = ModelForm::Export {
            compress_weights: self.compress_weights,
        };
        self.quantized.build(reverted, self.restore_mode, form)
    }

    /// The candidate with `reverted` ops in FP32, in the form it is evaluated in.
    pub fn build(&self, reverted: &BTreeSet<String>) -> Result<ModelProto> {
        self.evaluator.profile().build(|| {
            self.quantized
                .build(reverted, self.restore_mode, self.evaluation_form)
        })
    }

    /// Whether a candidate's values upstream of its change can be taken from another model's run: true for
    /// simulated quantization (plain f32 ops); not for QDQ on an engine that fuses it, whose intermediate
    /// values change once they are outputs.
    pub fn cut_invariant(&self) -> bool {
        self.evaluation_form == ModelForm::Evaluation
    }

    /// How many ranking candidates are evaluated together: bounded so that their prepared models fit in
    /// about 256 MiB (an engine holds roughly two copies of the weights: as given and packed for its kernels):
    /// 9 candidates of MobileNetV2 (14 MB of weights), peak RSS about 520 MB for the whole run.
    pub fn cohort_size(&self) -> usize {
        const BUDGET: usize = 256 << 20;
        let weights = self.quantized.weight_bytes().max(1);
        (BUDGET / (2 * weights)).clamp(2, 64)
    }

    /// Evaluates the candidate with `reverted` ops in FP32 on `indices`.
    pub fn evaluate(
        &mut self,
        reverted: &BTreeSet<String>,
        indices: &[usize],
        label: &str,
    ) -> Result<Evaluation> {
        let key = (reverted.clone(), indices.to_vec());
        if let Some(hit) = self.cache.get(&key).filter(|_| self.levers.reuse) {
            return Ok(hit.clone());
        }
        if let Some(recorded) = self.journal.evaluation(self.model_tag, reverted, indices) {
            self.cache.insert(key, recorded.clone());
            return Ok(recorded);
        }
        let model = self.build(reverted)?;
        let evaluation = self.run_evaluation(&model, indices, label)?;
        self.journal
            .record_evaluation(self.model_tag, reverted, &evaluation)?;
        self.cache.insert(key, evaluation.clone());
        Ok(evaluation)
    }

    /// Evaluates the FP32 model on `indices` (journaled under tag 0), scoring the `known` outputs instead of
    /// running it when they are for exactly these samples.
    pub fn evaluate_fp32(
        &mut self,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
        known: Option<&FP32Outputs>,
    ) -> Result<Evaluation> {
        let none = BTreeSet::new();
        if let Some(recorded) = self.journal.evaluation(FP32_TAG, &none, indices) {
            return Ok(recorded);
        }
        let evaluation = match known.filter(|(known, _)| known == indices) {
            Some((_, outputs)) => {
                self.evaluator.seed_reference(indices, outputs);
                self.evaluator.score(indices, outputs)?
            }
            None => self.run_evaluation(model, indices, label)?,
        };
        self.journal
            .record_evaluation(FP32_TAG, &none, &evaluation)?;
        Ok(evaluation)
    }

    /// `model` quantized with `params` (calibrated on `data`, or rebuilt from the journal).
    pub fn quantize(
        &mut self,
        fp32: &ModelProto,
        data: &dyn crate::data::Dataset,
        params: &crate::quantize::QuantizationParams,
        batch_size: usize,
    ) -> Result<QuantizedModel> {
        let backend = self.evaluator.backend();
        let progress = self.evaluator.progress();
        journal::quantize(
            &mut self.journal,
            backend,
            fp32.clone(),
            data,
            params,
            batch_size,
            progress,
        )
        .map(|(model, _)| model)
    }

    fn run_evaluation(
        &mut self,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
    ) -> Result<Evaluation> {
        let evaluation = self.evaluator.evaluate(model, indices, label)?;
        if indices.len() == self.evaluator.dataset().len() {
            self.counts.full += 1;
        } else {
            self.counts.subset += 1;
        }
        Ok(evaluation)
    }
}
