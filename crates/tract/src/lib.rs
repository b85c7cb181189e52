//! [`Backend`] on tract-onnx, aquant's embedded default engine.
//!
//! tract runs QDQ models as simulated quantization (weights dequantized by constant folding, compute in f32),
//! which is what accuracy evaluation needs, and agrees with ONNX Runtime's unfused reference. Models are handed
//! over as encoded bytes (tract reads ONNX itself) and optimised for exactly the requested outputs. The model's
//! own input facts are kept: overriding a symbolic batch dimension with a concrete one breaks models whose
//! `value_info` carries the symbol. Each run is single-threaded; callers parallelise across runs.
#![deny(missing_docs)]

use std::sync::Arc;

use aquant::{Backend, Error, Result, Session, Tensor};
use aquant_onnx::ModelProto;
use tract_onnx::prelude::{
    Datum, Framework, InferenceModelExt, IntoRunnable, IntoTValue, IntoTensor, TValue,
    TypedRunnableModel,
};

/// The tract engine.
#[derive(Debug, Default, Clone, Copy)]
pub struct TractBackend;

impl TractBackend {
    /// A tract backend.
    pub fn new() -> Self {
        TractBackend
    }
}

fn backend_error(context: &str, error: impl std::fmt::Display) -> Error {
    // tract errors are chains spread over lines; reports need one line.
    let message = format!("{context}: {error:#}").replace('\n', " ");
    Error::Backend {
        backend: "tract".into(),
        message,
    }
}

impl Backend for TractBackend {
    fn name(&self) -> &str {
        "tract"
    }

    fn prepare(&self, model: &ModelProto, extra_outputs: &[String]) -> Result<Arc<dyn Session>> {
        let bytes = aquant_onnx::encode_model(model);
        let mut inference = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .map_err(|e| backend_error("loading model", e))?;
        if !extra_outputs.is_empty() {
            let graph = model.graph.as_ref().ok_or_else(|| backend_error("loading model", "no graph"))?;
            let names: Vec<&str> = graph
                .output
                .iter()
                .filter_map(|o| o.name.as_deref())
                .chain(extra_outputs.iter().map(String::as_str))
                .collect();
            inference
                .select_outputs_by_name(names)
                .map_err(|e| backend_error("selecting outputs", e))?;
        }
        let plan = inference
            .into_optimized()
            .map_err(|e| backend_error("optimising model", e))?
            .into_runnable()
            .map_err(|e| backend_error("planning model", e))?;
        Ok(Arc::new(TractSession { plan }))
    }
}

struct TractSession {
    plan: Arc<TypedRunnableModel>,
}

impl Session for TractSession {
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let inputs = inputs
            .into_iter()
            .map(|t| match t {
                Tensor::F32(a) => a.into_tensor().into_tvalue(),
                Tensor::I64(a) => a.into_tensor().into_tvalue(),
            })
            .collect();
        let outputs = self.plan.run(inputs).map_err(|e| backend_error("running model", e))?;
        outputs.into_iter().map(to_tensor).collect()
    }
}

fn to_tensor(value: TValue) -> Result<Tensor> {
    let tensor = value.into_tensor();
    let dt = tensor.datum_type();
    if dt == f32::datum_type() {
        return tensor.into_plain_array::<f32>().map(Tensor::F32).map_err(|e| backend_error("reading output", e));
    }
    if dt == i64::datum_type() {
        return tensor.into_plain_array::<i64>().map(Tensor::I64).map_err(|e| backend_error("reading output", e));
    }
    // Other outputs (int32 indices, bools…) are widened or cast to f32 so metrics can read them.
    tensor
        .cast_to::<f32>()
        .map_err(|e| backend_error(&format!("reading {dt:?} output"), e))?
        .into_owned()
        .into_plain_array::<f32>()
        .map(Tensor::F32)
        .map_err(|e| backend_error("reading output", e))
}
