//! [`Backend`] on tract-onnx, aquant's embedded default engine.
//!
//! tract runs QDQ models as simulated quantization (weights dequantized by constant folding, compute in f32),
//! which is what accuracy evaluation needs, and agrees with ONNX Runtime's unfused reference. Models are handed
//! over as tract's own protobuf (tract reads ONNX itself) and optimised for exactly the requested outputs. The
//! model's own input facts are kept: overriding a symbolic batch dimension with a concrete one breaks models
//! whose `value_info` carries the symbol. Each run is single-threaded; callers parallelise across runs.
//!
//! Memory: a session holds one copy of the weights, its optimised plan's. Handing the model over copies each
//! initializer once into tract's protobuf (the graph alone is encoded and decoded: tract's `model_for_read`
//! would hold the encoded model, a second read of it and the decoded one at once), and a session whose inputs
//! have a symbolic dimension keeps the model (whose tensors share their bytes with the caller's) to build a plan
//! for another binding, not tract's typed model, a second copy of every weight.
#![deny(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aquant::{Backend, EngineSettings, Error, Result, Session, Tensor};
use aquant_onnx::ModelProto;
use tract_onnx::prelude::{
    Datum, Framework, InferenceModel, InferenceModelExt, IntoRunnable, IntoTValue, IntoTensor,
    Symbol, TDim, TValue, TractResult, TypedModel, TypedRunnableModel,
};
use tract_onnx::tract_core::ops::unimpl::UnimplementedOp;

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

    fn version(&self) -> String {
        // tract exports no version; the workspace pins it exactly (Cargo.toml: tract-onnx "=0.23.9").
        "0.23.9".into()
    }

    /// tract runs a plan on the calling thread (no `multithread-mm`) and has no precision hint: its
    /// optimisations are always on and do not change values.
    fn settings(&self) -> EngineSettings {
        EngineSettings {
            threads: Some(1),
            precision_hint: None,
            optimization: None,
        }
    }

    fn prepare(&self, model: &ModelProto, extra_outputs: &[String]) -> Result<Arc<dyn Session>> {
        let typed = typed_model(model, extra_outputs)?;
        let symbols = input_symbols(&typed).map_err(|e| backend_error("reading input facts", e))?;
        if symbols.is_empty() {
            // Fully concrete inputs: the one plan there will ever be is built now.
            let plan = optimise(typed, &HashMap::new())?;
            return Ok(Arc::new(TractSession {
                source: None,
                typed: Mutex::new(None),
                symbols,
                plans: Mutex::new(HashMap::from([(Vec::new(), plan)])),
            }));
        }
        Ok(Arc::new(TractSession {
            source: Some((model.clone(), extra_outputs.to_vec())),
            typed: Mutex::new(Some(typed)),
            symbols,
            plans: Mutex::new(HashMap::new()),
        }))
    }
}

/// tract's protobuf of `model`: the graph without its weights encoded and decoded, then each initializer's
/// bytes copied in once (module doc).
fn tract_proto(model: &ModelProto) -> Result<tract_onnx::pb::ModelProto> {
    let mut skeleton = model.clone();
    let initializers = skeleton.graph.iter_mut().flat_map(|g| &mut g.initializer);
    let payloads: Vec<_> = initializers.map(|t| t.raw_data.take()).collect();
    let bytes = aquant_onnx::encode_model(&skeleton);
    drop(skeleton);
    let mut proto = tract_onnx::onnx()
        .proto_model_for_read(&mut bytes.as_slice())
        .map_err(|e| backend_error("loading model", e))?;
    let initializers = proto.graph.iter_mut().flat_map(|g| &mut g.initializer);
    for (tensor, raw) in initializers.zip(payloads) {
        if let Some(raw) = raw {
            tensor.raw_data = raw.to_vec();
        }
    }
    Ok(proto)
}

/// `model` loaded, checked for ops tract lacks, cut to its outputs and `extra_outputs`, typed and decluttered.
fn typed_model(model: &ModelProto, extra_outputs: &[String]) -> Result<TypedModel> {
    let mut inference = {
        let proto = tract_proto(model)?;
        tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .map_err(|e| backend_error("loading model", e))?
    };
    if let Some(error) = unimplemented_op(model, &inference) {
        return Err(error);
    }
    if !extra_outputs.is_empty() {
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| backend_error("loading model", "no graph"))?;
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
    inference
        .into_typed()
        .and_then(|t| t.into_decluttered())
        .map_err(|e| backend_error("typing model", e))
}

/// The first op tract cannot run, as an [`Error::UnsupportedOp`] naming the node and its op type.
///
/// tract loads such an op as a placeholder that only fails later, when typing, with a message naming tract's own
/// node index; aquant's node errors name the node and op type instead.
fn unimplemented_op(model: &ModelProto, inference: &InferenceModel) -> Option<Error> {
    let node = inference
        .nodes()
        .iter()
        .find(|n| n.op_is::<UnimplementedOp>())?;
    let op_type = model
        .graph
        .iter()
        .flat_map(|g| &g.node)
        .find(|n| n.name.as_deref() == Some(node.name.as_str()))
        .and_then(|n| n.op_type.clone())
        .unwrap_or_default();
    Some(Error::UnsupportedOp {
        node: node.name.clone(),
        op_type,
        reason: "the tract engine (0.23.9) does not implement this op".into(),
    })
}

/// Where symbolic dimensions sit in the inputs: (input, axis, symbol).
type SymbolSlots = Vec<(usize, usize, Symbol)>;

fn input_symbols(model: &TypedModel) -> TractResult<SymbolSlots> {
    let mut slots = Vec::new();
    for input in 0..model.inputs.len() {
        for (axis, dim) in model.input_fact(input)?.shape.iter().enumerate() {
            if let TDim::Sym(symbol) = dim {
                slots.push((input, axis, symbol.clone()));
            }
        }
    }
    Ok(slots)
}

/// A decluttered model and its optimised plans, one per binding of its symbolic input dimensions.
///
/// tract optimises a model with a symbolic batch dimension several times worse than one with a concrete
/// batch (measured: MobileNetV2 36 ms/sample concrete vs 120 ms symbolic), so each batch size gets a plan of its
/// own, built on first use. Binding the symbol everywhere at once also avoids the failure of overriding input
/// facts in models whose `value_info` repeats the symbol.
struct TractSession {
    /// The model and extra outputs, kept to build plans for new symbol bindings; `None` when the inputs have
    /// no symbol.
    source: Option<(ModelProto, Vec<String>)>,
    /// The typed model `prepare` built, until the first plan consumes it (later plans rebuild it from
    /// `source`).
    typed: Mutex<Option<TypedModel>>,
    symbols: SymbolSlots,
    plans: Mutex<HashMap<Vec<i64>, Arc<TypedRunnableModel>>>,
}

impl TractSession {
    fn plan(&self, inputs: &[Tensor]) -> Result<Arc<TypedRunnableModel>> {
        let values: Vec<i64> = self
            .symbols
            .iter()
            .map(|(input, axis, _)| {
                inputs
                    .get(*input)
                    .and_then(|t| t.shape().get(*axis))
                    .map(|&d| d as i64)
                    .ok_or_else(|| {
                        backend_error("running model", format!("input {input} has no axis {axis}"))
                    })
            })
            .collect::<Result<_>>()?;
        let mut plans = self
            .plans
            .lock()
            .map_err(|_| backend_error("running model", "plan cache poisoned"))?;
        if let Some(plan) = plans.get(&values) {
            return Ok(plan.clone());
        }
        let bindings: HashMap<Symbol, TDim> = self
            .symbols
            .iter()
            .zip(&values)
            .map(|((_, _, symbol), &v)| (symbol.clone(), TDim::Val(v)))
            .collect();
        let (model, extra_outputs) = self
            .source
            .as_ref()
            .ok_or_else(|| backend_error("running model", "no plan for these input shapes"))?;
        let first = self.typed.lock().ok().and_then(|mut typed| typed.take());
        let typed = match first {
            Some(typed) => typed,
            None => typed_model(model, extra_outputs)?,
        };
        let plan = optimise(typed, &bindings)?;
        plans.insert(values, plan.clone());
        Ok(plan)
    }
}

/// Binds the symbols and optimises: the plan that runs.
fn optimise(
    typed: TypedModel,
    bindings: &HashMap<Symbol, TDim>,
) -> Result<Arc<TypedRunnableModel>> {
    typed
        .set_symbols(bindings)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| backend_error("optimising model", e))
}

impl Session for TractSession {
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let plan = self.plan(&inputs)?;
        let inputs = inputs
            .into_iter()
            .map(|t| match t {
                Tensor::F32(a) => a.into_tensor().into_tvalue(),
                Tensor::I64(a) => a.into_tensor().into_tvalue(),
                Tensor::U8(a) => a.into_tensor().into_tvalue(),
                Tensor::I8(a) => a.into_tensor().into_tvalue(),
            })
            .collect();
        let outputs = plan
            .run(inputs)
            .map_err(|e| backend_error("running model", e))?;
        outputs.into_iter().map(to_tensor).collect()
    }
}
fn to_tensor(value: TValue) -> Result<Tensor> {
    let tensor = value.into_tensor();
    let dt = tensor.datum_type();
    if dt == f32::datum_type() {
        return tensor
            .into_plain_array::<f32>()
            .map(Tensor::F32)
            .map_err(|e| backend_error("reading output", e));
    }
    if dt == i64::datum_type() {
        return tensor
            .into_plain_array::<i64>()
            .map(Tensor::I64)
            .map_err(|e| backend_error("reading output", e));
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
