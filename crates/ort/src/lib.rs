//! [`Backend`] on ONNX Runtime, loaded from its shared library at run time.
//!
//! ONNX Runtime is the engine users deploy QDQ models on, and on this class of machine it runs convolutions
//! 2–3× faster than tract. Nothing is linked or downloaded at build time: [`OrtBackend::new`] loads
//! `libonnxruntime` from `ORT_DYLIB_PATH`, or from the `onnxruntime` Python package when one is installed,
//! and says clearly when neither exists (the `ort` crate would panic on first use instead).
//!
//! ONNX Runtime returns only graph outputs, so intermediate tensors asked for at preparation become extra
//! graph outputs of a private copy of the model. `ort` runs a session through `&mut`, so each prepared model
//! keeps a small pool of sessions: one per thread that runs it at the same time, each with one intra-op thread
//! (two threads inside one session are slower here than two sessions).
#![deny(missing_docs)]

mod lent;
mod library;
mod optimized;

use std::sync::{Arc, Mutex, OnceLock};

use aquant::{
    Backend, EngineSettings, Error, ExternalPlan, FloatOps, OutputSource, Result, Session, Tensor,
};
use aquant_onnx::ModelProto;
use lent::{LentInitializers, Sharing};
use ndarray::{ArrayD, IxDyn};
use ort::environment::Environment;
use ort::logging::LogLevel;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynValue, TensorElementType, ValueType};

pub use library::{find_library, LibraryNotFound, DYLIB_VARIABLE};

/// The ONNX Runtime engine.
#[derive(Clone)]
pub struct OrtBackend {
    environment: Environment,
    /// Intra-op threads of every session: 1 (aquant runs sessions in parallel instead), or 0 for ONNX
    /// Runtime's default (one per physical core), as [`Backend::at_default_threads`] measures a deployment.
    intra_threads: usize,
    /// What this backend's sessions share (pre-packed weights); `None` when it could not be set up.
    sharing: Option<Arc<Sharing>>,
}

impl std::fmt::Debug for OrtBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrtBackend")
    }
}

/// The process-wide environment: ONNX Runtime allows one, and its library can be loaded only once.
static ENVIRONMENT: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

/// The library file the environment was created from.
static LIBRARY: OnceLock<std::path::PathBuf> = OnceLock::new();

/// ONNX Runtime's session option that keeps kernels from pre-packing their weights
/// (`kOrtSessionOptionsConfigDisablePrepacking`).
const DISABLE_PREPACKING: &str = "session.disable_prepacking";

fn backend_error(context: &str, error: impl std::fmt::Display) -> Error {
    let message = format!("{context}: {error}").replace('\n', " ");
    Error::Backend {
        backend: "ort".into(),
        message,
    }
}

impl OrtBackend {
    /// Loads ONNX Runtime (see [`find_library`]) and creates its environment, once per process.
    pub fn new() -> Result<OrtBackend> {
        let environment = ENVIRONMENT.get_or_init(|| {
            let path = find_library().map_err(|e| e.to_string())?;
            let _ = LIBRARY.set(path.clone());
            ort::init_from(&path)
                .map_err(|e| format!("loading {}: {e}", path.display()))?
                .with_name("aquant")
                .build()
                .map_err(|e| format!("creating the ONNX Runtime environment: {e}"))
        });
        match environment {
            Ok(environment) => Ok(OrtBackend {
                environment: environment.clone(),
                intra_threads: 1,
                sharing: Sharing::new().map(Arc::new),
            }),
            Err(message) => Err(Error::Backend {
                backend: "ort".into(),
                message: message.clone(),
            }),
        }
    }

    /// A session of the encoded model `bytes`, with the initializers `lent` taken out of it: shared with the
    /// backend's other sessions unless ONNX Runtime refused that before, else as external initializers.
    fn new_session(
        &self,
        bytes: &[u8],
        lent: &LentInitializers,
        prepack: bool,
    ) -> Result<ort::session::Session> {
        let sharing = self.sharing.as_deref();
        if let Some(sharing) = sharing.filter(|s| s.worth_trying() && !lent.is_empty()) {
            let session = self.commit(bytes, lent, Some(sharing), prepack);
            sharing.record(session.is_ok());
            if let Ok(session) = session {
                return Ok(session);
            }
        }
        self.commit(bytes, lent, None, prepack)
    }

    /// A session of `bytes`; without `prepack`, its kernels read the weights as they are instead of a packed
    /// copy ([`Backend::prepare_for_few_runs`]).
    fn commit(
        &self,
        bytes: &[u8],
        lent: &LentInitializers,
        sharing: Option<&Sharing>,
        prepack: bool,
    ) -> Result<ort::session::Session> {
        let context = "creating a session";
        let fail = |e: ort::Error<_>| backend_error(context, e);
        let builder = ort::session::Session::builder(&self.environment)
            .map_err(|e| backend_error(context, e))?
            .with_intra_threads(self.intra_threads)
            .map_err(fail)?
            .with_inter_threads(1)
            .map_err(fail)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(fail)?
            .with_config_entry(DISABLE_PREPACKING, if prepack { "0" } else { "1" })
            .map_err(fail)?
            // An attempt to share may fail, and is retried without: only an unexpected error is worth a log line.
            .with_log_level(match sharing {
                Some(_) => LogLevel::Fatal,
                None => LogLevel::Error,
            })
            .map_err(fail)?;
        lent.lend_to(builder, sharing)?
            .commit_from_memory(bytes)
            .map_err(|e| backend_error(context, e))
    }
}

impl Backend for OrtBackend {
    fn name(&self) -> &str {
        "ort"
    }

    /// From the loaded library's build info ("ORT Build Info: git-branch=rel-1.32.0, …"), else from its file
    /// name (`libonnxruntime.so.1.32.0`: the Python wheels are built from a branch called HEAD).
    fn version(&self) -> String {
        let info = ort::info();
        let from_file = || {
            LIBRARY.get().and_then(|p| {
                p.file_name()?
                    .to_str()?
                    .split_once(".so.")
                    .map(|(_, v)| v.to_owned())
            })
        };
        info.split(|c: char| c == ',' || c.is_whitespace())
            .find_map(|field| field.strip_prefix("git-branch=rel-"))
            .map(str::to_owned)
            .or_else(from_file)
            .unwrap_or_else(|| info.to_owned())
    }

    fn runs_qdq_natively(&self) -> bool {
        true
    }

    /// Its QDQ selectors fuse each `DequantizeLinear → op → QuantizeLinear` group into one integer kernel and
    /// allow the group's `QuantizeLinear` output to be a graph output; a model starting at that value keeps
    /// the groups after it whole (`crates/cli/tests/prefix_cache.rs` checks it bit for bit on MobileNetV2).
    fn keeps_quantized_values_when_tapped(&self) -> bool {
        true
    }

    /// As `OrtBackend::new_session` builds every session: one intra-op thread (or ONNX Runtime's default),
    /// one inter-op thread, `ORT_ENABLE_ALL` (the default of ONNX Runtime's Python sessions, so what a deployed
    /// model gets).
    fn settings(&self) -> EngineSettings {
        EngineSettings {
            threads: (self.intra_threads > 0).then_some(self.intra_threads),
            precision_hint: None,
            optimization: Some("all".into()),
        }
    }

    /// Sessions with ONNX Runtime's default intra-op threads (`intra_op_num_threads` 0: one per physical
    /// core), what a Python `InferenceSession` with default options runs on.
    fn at_default_threads(&self) -> Result<Option<Box<dyn Backend>>> {
        Ok(Some(Box::new(OrtBackend {
            intra_threads: 0,
            ..self.clone()
        })))
    }

    /// From the graph ONNX Runtime writes after optimizing at `ORT_ENABLE_EXTENDED` (the `optimized` module).
    fn float_ops(&self, model: &ModelProto) -> Result<Option<FloatOps>> {
        let context = "dumping the optimized graph";
        let dir = tempfile::tempdir().map_err(|e| backend_error(context, e))?;
        let path = dir.path().join("optimized.onnx");
        let fail = |e: ort::Error<_>| backend_error(context, e);
        ort::session::Session::builder(&self.environment)
            .map_err(|e| backend_error(context, e))?
            .with_intra_threads(1)
            .map_err(fail)?
            .with_optimization_level(GraphOptimizationLevel::Level2)
            .map_err(fail)?
            .with_optimized_model_path(&path)
            .map_err(fail)?
            .with_log_level(LogLevel::Error)
            .map_err(fail)?
            .commit_from_memory(&aquant_onnx::encode_model(model))
            .map_err(|e| backend_error(context, e))?;
        let optimized = aquant_onnx::load_model(&path).map_err(|e| backend_error(context, e))?;
        Ok(Some(optimized::float_ops(
            &optimized.graph.unwrap_or_default(),
        )))
    }

    fn prepare(&self, model: &ModelProto, extra_outputs: &[String]) -> Result<Arc<dyn Session>> {
        self.prepare_packed(model, extra_outputs, true)
    }

    fn prepare_for_few_runs(
        &self,
        model: &ModelProto,
        extra_outputs: &[String],
    ) -> Result<Arc<dyn Session>> {
        self.prepare_packed(model, extra_outputs, false)
    }
}

impl OrtBackend {
    /// A prepared model whose sessions pre-pack their weights or not.
    fn prepare_packed(
        &self,
        model: &ModelProto,
        extra_outputs: &[String],
        prepack: bool,
    ) -> Result<Arc<dyn Session>> {
        let ExternalPlan {
            model,
            inputs,
            outputs,
        } = ExternalPlan::new(model, extra_outputs)?;
        let mut model = model.into_owned();
        let lent = LentInitializers::take(&mut model)?;
        let bytes = aquant_onnx::encode_model(&model);
        drop(model);
        let first = self.new_session(&bytes, &lent, prepack)?;
        let session_inputs: Vec<String> =
            first.inputs().iter().map(|i| i.name().to_owned()).collect();
        if session_inputs != inputs {
            return Err(backend_error(
                "loading model",
                format!("ONNX Runtime sees the inputs {session_inputs:?}, aquant {inputs:?}"),
            ));
        }
        Ok(Arc::new(OrtSession {
            backend: self.clone(),
            bytes,
            inputs,
            outputs,
            idle: Mutex::new(vec![first]),
            prepack,
            lent,
        }))
    }
}

/// A prepared model: its encoded bytes and lent initializers, to open more sessions when threads run it at once,
/// and the idle ones.
struct OrtSession {
    backend: OrtBackend,
    /// The model without its lent initializers: kilobytes, whatever the weights weigh.
    bytes: Vec<u8>,
    inputs: Vec<String>,
    outputs: Vec<OutputSource>,
    idle: Mutex<Vec<ort::session::Session>>,
    /// Whether its sessions pre-pack their weights.
    prepack: bool,
    /// After `idle`: fields drop in order, so the sessions go before the buffers they may read.
    lent: LentInitializers,
}

impl OrtSession {
    fn checkout(&self) -> Result<ort::session::Session> {
        let idle = self
            .idle
            .lock()
            .map_err(|_| backend_error("running model", "session pool poisoned"))?
            .pop();
        match idle {
            Some(session) => Ok(session),
            None => self
                .backend
                .new_session(&self.bytes, &self.lent, self.prepack),
        }
    }

    fn checkin(&self, session: ort::session::Session) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(session);
        }
    }
}

impl Session for OrtSession {
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(backend_error(
                "running model",
                format!(
                    "{} inputs given, the model has {}",
                    inputs.len(),
                    self.inputs.len()
                ),
            ));
        }
        let passed: Vec<Option<Tensor>> = (0..inputs.len())
            .map(|i| {
                self.outputs
                    .iter()
                    .any(|o| matches!(o, OutputSource::Input(j) if *j == i))
                    .then(|| inputs[i].clone())
            })
            .collect();
        let values = self
            .inputs
            .iter()
            .zip(inputs)
            .map(|(name, tensor)| Ok((name.clone(), to_value(tensor)?)))
            .collect::<Result<Vec<(String, DynValue)>>>()?;
        let mut session = self.checkout()?;
        let result = session
            .run(values)
            .map_err(|e| backend_error("running model", e))
            .and_then(|outputs| {
                self.outputs
                    .iter()
                    .map(|source| match source {
                        OutputSource::Input(i) => Ok(passed[*i].clone().expect("kept above")),
                        OutputSource::Output(name) | OutputSource::Tapped(name) => {
                            let value = outputs.get(name).ok_or_else(|| {
                                backend_error("running model", format!("no output '{name}'"))
                            })?;
                            let widen = matches!(source, OutputSource::Output(_));
                            to_tensor(name, value, widen)
                        }
                    })
                    .collect::<Result<Vec<Tensor>>>()
            });
        self.checkin(session);
        result
    }
}

fn to_value(tensor: Tensor) -> Result<DynValue> {
    match tensor {
        Tensor::F32(a) => value(a),
        Tensor::I64(a) => value(a),
        Tensor::U8(a) => value(a),
        Tensor::I8(a) => value(a),
    }
}

/// An ONNX Runtime tensor holding the data of `array` (moved when it is laid out in order, else copied).
fn value<T>(array: ArrayD<T>) -> Result<DynValue>
where
    T: ort::value::PrimitiveTensorElementType + Clone + std::fmt::Debug + 'static,
{
    let shape = array.shape().to_vec();
    let len = array.len();
    let data = match array.is_standard_layout() {
        true => {
            let (mut data, offset) = array.into_raw_vec_and_offset();
            data.drain(..offset.unwrap_or(0));
            data.truncate(len);
            data
        }
        false => array.iter().cloned().collect(),
    };
    ort::value::Tensor::from_array((shape, data))
        .map(|t| t.into_dyn())
        .map_err(|e| backend_error("passing an input", e))
}

/// The aquant tensor of output `name`: f32 and i64 as they are; other integers widened to f32 when `widen`
/// (a model's outputs, for metrics), else 8-bit ones as they are (tapped quantized values).
fn to_tensor(name: &str, value: &DynValue, widen: bool) -> Result<Tensor> {
    let context = format!("reading output '{name}'");
    let element = match value.dtype() {
        ValueType::Tensor { ty, .. } => *ty,
        other => {
            return Err(backend_error(
                &context,
                format!("{other:?} is not a tensor"),
            ))
        }
    };
    match element {
        TensorElementType::Float32 => native(&context, value).map(Tensor::F32),
        TensorElementType::Int64 => native(&context, value).map(Tensor::I64),
        TensorElementType::Uint8 if !widen => native(&context, value).map(Tensor::U8),
        TensorElementType::Int8 if !widen => native(&context, value).map(Tensor::I8),
        // Other outputs (int32 indices, uint8…) are widened to f32 so metrics can read them, as with tract.
        TensorElementType::Int32 => widened::<i32>(&context, value),
        TensorElementType::Uint8 => widened::<u8>(&context, value),
        TensorElementType::Int8 => widened::<i8>(&context, value),
        other => Err(backend_error(
            &context,
            format!("element type {other:?} is not supported"),
        )),
    }
}

/// The array of output `value`, in its own element type.
fn native<T>(context: &str, value: &DynValue) -> Result<ArrayD<T>>
where
    T: ort::value::PrimitiveTensorElementType + Copy,
{
    let (shape, data) = value
        .try_extract_tensor::<T>()
        .map_err(|e| backend_error(context, e))?;
    array(context, shape, data.to_vec())
}

fn widened<T>(context: &str, value: &DynValue) -> Result<Tensor>
where
    T: ort::value::PrimitiveTensorElementType + Copy + Into<f64>,
{
    let (shape, data) = value
        .try_extract_tensor::<T>()
        .map_err(|e| backend_error(context, e))?;
    let data = data.iter().map(|&v| v.into() as f32).collect();
    array(context, shape, data).map(Tensor::F32)
}

fn array<T>(context: &str, shape: &ort::value::Shape, data: Vec<T>) -> Result<ArrayD<T>> {
    let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    ArrayD::from_shape_vec(IxDyn(&dims), data).map_err(|e| backend_error(context, e))
}
