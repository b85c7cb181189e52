//! The model an evaluation ran, for metrics that run it themselves.

use std::sync::{Arc, OnceLock};

use aquant_onnx::ModelProto;

use super::{Evaluator, PreparedModel};
use crate::data::{Annotation, Sample};
use crate::error::Result;
use crate::metric::RunnableModel;
use crate::runner::InputBinding;
use crate::tensor::Tensor;

/// The model an evaluation ran, as a dataset-level metric that runs it itself sees it (NNCF's `validation_fn`
/// receives the model): inference goes through the evaluator's engine, prepared on first use only, since most
/// metrics never run it.
pub struct EvaluatedModel<'e> {
    evaluator: &'e Evaluator<'e>,
    model: &'e ModelProto,
    prepared: OnceLock<PreparedModel>,
}

impl<'e> EvaluatedModel<'e> {
    pub(super) fn new(
        evaluator: &'e Evaluator<'e>,
        model: &'e ModelProto,
        prepared: Option<PreparedModel>,
    ) -> Self {
        let cell = OnceLock::new();
        if let Some(prepared) = prepared {
            let _ = cell.set(prepared);
        }
        EvaluatedModel {
            evaluator,
            model,
            prepared: cell,
        }
    }
}

impl RunnableModel for EvaluatedModel<'_> {
    fn proto(&self) -> &ModelProto {
        self.model
    }

    fn run(&self, inputs: Vec<(String, Tensor)>) -> Result<Vec<Tensor>> {
        let (binding, session) = match self.prepared.get() {
            Some(prepared) => prepared,
            None => {
                let prepared = (
                    Arc::new(InputBinding::from_model(self.model)?),
                    self.evaluator.prepare(self.model, &[])?,
                );
                self.prepared.get_or_init(|| prepared)
            }
        };
        let sample = Sample {
            inputs,
            annotation: Annotation::None,
            metadata: Default::default(),
        };
        let outputs = session.run(binding.bind(sample, 0)?)?;
        self.evaluator.count_inferred(1);
        Ok(outputs)
    }
}
