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

    /// [`Backend::prepare`] for a model that runs a handful of samples (the analyses of a few calibration
    /// samples): the engine may skip what pays off only over many runs. ONNX Runtime skips pre-packing
    /// weights, which costs a packed copy of every weight and most of the time of preparing a large model
    /// (issue #27); its float kernels then sum in another order (results differ in their last bits), so a
    /// deployed model or a search's candidate is never measured this way.
    fn prepare_for_few_runs(
        &self,
        model: &ModelProto,
        extra_outputs: &[String],
    ) -> Result<Arc<dyn Session>> {
        self.prepare(model, extra_outputs)
    }

    /// Whether the engine runs a QDQ model at least as fast as its fake-quantized FP32 form. Engines with
    /// int8 kernels (ONNX Runtime) do, and their QDQ numerics are then exactly what the deployed model
    /// computes; simulating engines (tract) are faster on the FP32 form, which gives the same numbers.
    fn runs_qdq_natively(&self) -> bool {
        false
    }

    /// Whether the quantized values of a QDQ model (what its `QuantizeLinear`s write) stay the same when they
    /// are also outputs, and a model starting from them computes what the whole model does. Then a ranking
    /// candidate runs only its part after its change, on the base model's quantized values
    /// ([`Cut::AtQuantizedValues`](crate::graph::Cut)). True where the engine fuses each `DequantizeLinear →
    /// op → QuantizeLinear` group on its own (ONNX Runtime, tested bit for bit); not where it moves
    /// dequantization across ops (OpenVINO's low-precision transformations).
    fn keeps_quantized_values_when_tapped(&self) -> bool {
        false
    }

    /// The conditions this engine runs every model under. A measure depends on them as well as on the model
    /// and the CPU (on AMX CPUs the kernels an engine picks, and so its int8 results, depend on the threads
    /// and batch; OpenVINO computes float layers in bf16 unless told f32), so a report names them and
    /// whoever checks a figure runs under the same ones.
    fn settings(&self) -> EngineSettings;

    /// This engine as a latency-bound service deploys it: one inference on the threads the engine picks by
    /// default, instead of the one thread each of aquant's parallel runs gets. The deployed check times the
    /// saved model both ways, since a kernel's speed-up can differ between one thread and many. `None` where
    /// the engine has no such choice (tract computes an inference on one thread).
    fn at_default_threads(&self) -> Result<Option<Box<dyn Backend>>> {
        Ok(None)
    }

    /// The nodes of `model` this engine still computes in float once it has optimized the graph, where the
    /// engine shows its optimized graph (`None` otherwise): an int8 model runs at int8 speed only where the
    /// engine fused its quantizers into integer kernels, and these nodes are where it did not.
    fn float_ops(&self, _model: &ModelProto) -> Result<Option<FloatOps>> {
        Ok(None)
    }
}

/// An engine a front end opened for a run, and why it is that one (`auto`'s resolution, or the user's name): the
/// report says both, since the engine decides how fast the search is and what its numbers were measured on.
pub struct ChosenBackend {
    /// The engine.
    pub engine: Box<dyn Backend>,
    /// Why this engine: "auto: …" or "named".
    pub because: String,
}

impl ChosenBackend {
    /// An engine the caller named (`--backend ort`, `backend="ort"`, a library user's own).
    pub fn named(engine: Box<dyn Backend>) -> ChosenBackend {
        ChosenBackend {
            engine,
            because: BackendChoice::NAMED.to_owned(),
        }
    }

    /// What report.json says of it.
    pub fn choice(&self) -> BackendChoice {
        BackendChoice {
            name: self.engine.name().to_owned(),
            chosen_because: self.because.clone(),
        }
    }
}

/// The engine a run calibrated and searched with, and why that one (report.json `backend`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackendChoice {
    /// The engine's name ([`Backend::name`]).
    pub name: String,
    /// Why: `auto`'s reason, or [`BackendChoice::NAMED`].
    pub chosen_because: String,
}

impl BackendChoice {
    /// The reason of an engine the caller named rather than left to `auto`.
    pub const NAMED: &'static str = "named";

    /// An engine handed to the library as it is: the caller chose it.
    pub fn named(engine: &dyn Backend) -> BackendChoice {
        BackendChoice {
            name: engine.name().to_owned(),
            chosen_because: BackendChoice::NAMED.to_owned(),
        }
    }

    /// "ort (auto: ONNX Runtime, where an ONNX output runs, was found)".
    pub fn describe(&self) -> String {
        format!("{} ({})", self.name, self.chosen_because)
    }
}

/// The nodes an engine computes in float in its optimized graph of a model ([`Backend::float_ops`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FloatOps {
    /// Nodes computing in float (quantizers, integer kernels and data movement excluded).
    pub count: usize,
    /// Of them, the Conv/Gemm/MatMul nodes with a constant weight: weights no integer kernel took.
    pub weighted: Vec<String>,
}

/// How an engine runs a model, as far as its numbers can depend on it ([`Backend::settings`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EngineSettings {
    /// Threads one inference runs on (aquant runs independent batches in parallel instead); `None` where the
    /// engine chooses (a device without CPU threads, an OpenVINO GPU; [`Backend::at_default_threads`]).
    pub threads: Option<usize>,
    /// The precision the engine is told to compute floating-point layers in, when it takes such a hint
    /// (OpenVINO's `INFERENCE_PRECISION_HINT`).
    pub precision_hint: Option<String>,
    /// The engine's graph-optimization level, when it has one (ONNX Runtime's: "all" = `ORT_ENABLE_ALL`).
    pub optimization: Option<String>,
}

impl std::fmt::Display for EngineSettings {
    /// "1 thread, f32, optimization all".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let threads = self.threads.map(|n| match n {
            1 => "1 thread".to_owned(),
            n => format!("{n} threads"),
        });
        let hint = self.precision_hint.clone();
        let level = self
            .optimization
            .as_ref()
            .map(|l| format!("optimization {l}"));
        let parts: Vec<String> = [threads, hint, level].into_iter().flatten().collect();
        write!(f, "{}", parts.join(", "))
    }
}

/// A model ready to run.
pub trait Session: Send + Sync {
    /// Runs one batch. `inputs` follow the model's (non-initializer) graph inputs in order; the result follows
    /// the output order fixed at preparation.
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>>;
}

/// How an engine that runs ONNX bytes gives [`Backend::prepare`]'s outputs: the model it is handed, its
/// run-time inputs, and where each requested output comes from.
///
/// Engines return graph outputs only, so a tapped intermediate tensor becomes an extra graph output of a
/// private copy of the model; a graph input asked for as an output is passed through from the inputs instead
/// (ONNX Runtime hands such values back in a buffer that does not outlive the run, and OpenVINO answers with
/// them only when a Result consumes them).
pub struct ExternalPlan<'m> {
    /// The model to hand the engine: the original when nothing is tapped, else the copy with extra outputs.
    pub model: std::borrow::Cow<'m, ModelProto>,
    /// The run-time inputs' names, in order.
    pub inputs: Vec<String>,
    /// Where each output of the session (the model's outputs, then the extra ones) comes from.
    pub outputs: Vec<OutputSource>,
}

/// Where one session output comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputSource {
    /// A graph output of the model, by name. Integer outputs other than int64 come widened to f32, so
    /// that metrics read them as they read scores.
    Output(String),
    /// A tapped intermediate value (an extra graph output of the engine's model), by name, in its own element
    /// type: the 8-bit quantized values a ranking candidate's suffix starts from stay 8-bit.
    Tapped(String),
    /// Input number `i`, passed through.
    Input(usize),
}

impl<'m> ExternalPlan<'m> {
    /// The plan for `model` with `extra_outputs` tapped.
    pub fn new(model: &'m ModelProto, extra_outputs: &[String]) -> Result<ExternalPlan<'m>> {
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| crate::error::Error::InvalidModel("the model has no graph".into()))?;
        let model_outputs: Vec<String> =
            graph.output.iter().filter_map(|o| o.name.clone()).collect();
        let inputs: Vec<String> = crate::graph::runtime_inputs(graph)
            .into_iter()
            .map(|p| p.name)
            .collect();
        let tapped: Vec<String> = extra_outputs
            .iter()
            .filter(|name| !inputs.contains(name) && !model_outputs.contains(name))
            .cloned()
            .collect();
        let passed = |name: &String| {
            inputs
                .iter()
                .position(|i| i == name)
                .map(OutputSource::Input)
        };
        let outputs = (model_outputs.iter())
            .map(|name| passed(name).unwrap_or_else(|| OutputSource::Output(name.clone())))
            .chain(
                (extra_outputs.iter())
                    .map(|name| passed(name).unwrap_or_else(|| OutputSource::Tapped(name.clone()))),
            )
            .collect();
        let model = match tapped.is_empty() {
            true => std::borrow::Cow::Borrowed(model),
            false => std::borrow::Cow::Owned(with_extra_outputs(model, &tapped)),
        };
        Ok(ExternalPlan {
            model,
            inputs,
            outputs,
        })
    }
}

/// A copy of `model` that also outputs the tensors `extra`: the activations aquant taps, float unless declared
/// otherwise or quantized (8-bit values the base model of a ranking hands its candidates' suffixes).
fn with_extra_outputs(model: &ModelProto, extra: &[String]) -> ModelProto {
    use aquant_onnx::proto::type_proto::{Tensor as TensorType, Value as TypeValue};
    use aquant_onnx::{TypeProto, ValueInfoProto};

    let mut model = model.clone();
    let graph = model.graph.get_or_insert_with(Default::default);
    let quantized: std::collections::HashMap<String, i32> = crate::graph::quantized_values(graph)
        .into_iter()
        .filter(|(value, _)| extra.iter().any(|e| e == value))
        .map(|(value, elem_type)| (value.to_owned(), elem_type))
        .collect();
    for name in extra {
        let declared = graph
            .value_info
            .iter()
            .find(|v| v.name.as_deref() == Some(name))
            .and_then(|v| v.r#type.clone());
        graph.output.push(ValueInfoProto {
            name: Some(name.clone()),
            r#type: Some(declared.unwrap_or_else(|| TypeProto {
                value: Some(TypeValue::TensorType(TensorType {
                    elem_type: Some(quantized.get(name).copied().unwrap_or(1)),
                    shape: None,
                })),
                ..Default::default()
            })),
            ..Default::default()
        });
    }
    model
}
