//! What every stage of the search shares: the quantized model, the evaluator, and the cache of evaluations.
//!
//! A candidate is identified by its set of reverted ops; its evaluation on a given set of samples never
//! changes, so it is computed at most once.

use std::collections::{BTreeSet, HashMap};

use aquant_onnx::ModelProto;

use crate::error::Result;
use crate::eval::{Evaluation, Evaluator};
use crate::quantize::{ModelForm, QuantizedModel, RestoreMode};
use crate::search::report::EvaluationCounts;

/// Shared state of one accuracy-controlled run.
pub(super) struct SearchContext<'a> {
    pub evaluator: Evaluator<'a>,
    pub quantized: QuantizedModel,
    pub restore_mode: RestoreMode,
    pub compress_weights: bool,
    pub counts: EvaluationCounts,
    cache: HashMap<(BTreeSet<String>, Vec<usize>), Evaluation>,
}

impl<'a> SearchContext<'a> {
    pub fn new(
        evaluator: Evaluator<'a>,
        quantized: QuantizedModel,
        restore_mode: RestoreMode,
        compress_weights: bool,
    ) -> Self {
        SearchContext {
            evaluator,
            quantized,
            restore_mode,
            compress_weights,
            counts: EvaluationCounts::default(),
            cache: HashMap::new(),
        }
    }

    /// Replaces the quantized model (e.g. after switching preset); cached evaluations no longer apply.
    pub fn replace_model(&mut self, quantized: QuantizedModel) {
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

    /// Evaluates the candidate with `reverted` ops in FP32 on `indices`.
    pub fn evaluate(
        &mut self,
        reverted: &BTreeSet<String>,
        indices: &[usize],
        label: &str,
    ) -> Result<Evaluation> {
        let key = (reverted.clone(), indices.to_vec());
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.clone());
        }
        let model = self
            .quantized
            .build(reverted, self.restore_mode, ModelForm::Evaluation)?;
        let evaluation = self.evaluate_model(&model, indices, label)?;
        self.cache.insert(key, evaluation.clone());
        Ok(evaluation)
    }

    /// Evaluates an arbitrary model (the FP32 one) on `indices`.
    pub fn evaluate_model(
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
