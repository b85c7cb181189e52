//! The inference engine boundary.
//!
//! The algorithms never name an engine: they hand a [`ModelProto`] to a [`Backend`] and run the [`Session`] it
//! prepares. Extra outputs (intermediate tensors for calibration statistics) are chosen at preparation time,
//! because engines optimise the graph for exactly the outputs requested. A session is shared by the threads of
//! an evaluation (`Sync`): engines here are fastest with one intra-op thread per run and runs in parallel.

use std::sync::Arc;

use aquant_onnx::ModelProto;

use crate::error::Result;
use crate::tensor::Tensor;

/// An inference engine.
pub trait Backend: Send + Sync {
    /// Short engine name for messages and reports ("tract", "ort").
    fn name(&self) -> &str;

    /// The engine's version ("0.23.9", "1.32.0"), for reports: a measured figure names what measured it.
    fn version(&self) -> String;

    /// Prepares `model` for execution. The session returns the model's outputs followed by `extra_outputs`
    /// (names of intermediate tensors), in that order.
    fn prepare(&self, model: &ModelProto, extra_outputs: &[String]) -> Result<Arc<dyn Session>>;

    /// Whether the engine runs a QDQ model at least as fast as its fake-quantized FP32 form. Engines with
    /// int8 kernels (ONNX Runtime) do, and their QDQ numerics are then exactly what the deployed model
    /// computes; simulating engines (tract) are faster on the FP32 form, which gives the same numbers.
    fn runs_qdq_natively(&self) -> bool {
        false
    }
}

/// A model ready to run.
pub trait Session: Send + Sync {
    /// Runs one batch. `inputs` follow the model's (non-initializer) graph inputs in order; the result follows
    /// the output order fixed at preparation.
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>>;
}
