//! [`Backend`] on OpenVINO, loaded from its C library at run time.
//!
//! OpenVINO is what the reference tool (POT) and NNCF evaluate with, and what their users deploy: it turns
//! aquant's QDQ ONNX into FakeQuantize on activations and int8 weights and runs the convolutions in int8, so a
//! candidate evaluated here is measured as OpenVINO will run it. Nothing is linked or downloaded at build
//! time: [`OpenvinoBackend::new`] loads `libopenvino_c` from `OPENVINO_LIB_PATH` or from the `openvino` Python
//! package (see [`find_library`]) and says clearly when neither exists.
//!
//! The model reaches OpenVINO as ONNX bytes (its ONNX frontend, from memory); intermediate tensors asked for
//! at preparation become extra graph outputs of a private copy, as with ONNX Runtime. Each prepared model is
//! compiled once; the threads that run it at the same time each take an infer request from a small pool.
//!
//! [`OpenvinoBackend::reading_ir`] hands OpenVINO the IR aquant saves ([`aquant_ir::write_ir`]) instead: the
//! engine of a run with an IR output, which then measures the very bytes written as `model.xml` + `model.bin`
//! rather than OpenVINO's own conversion of the QDQ ONNX. The two are not always the same numbers: on CPUs
//! with AMX, OpenVINO picks other int8 kernels for some convolutions of one than of the other (MobileNetV2:
//! one validation sample of 300 changes class), so the search of an IR output ranks and judges the IR.
#![deny(missing_docs)]

mod convert;
mod library;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use aquant::{Backend, EngineSettings, Error, ExternalPlan, OutputSource, Result, Session, Tensor};
use aquant_onnx::ModelProto;
use openvino::{CompiledModel, Core, DeviceType, InferRequest, RwPropertyKey};

pub use library::{find_library, LibraryNotFound, LIBRARY_VARIABLE};

/// The device OpenVINO runs on when none is named (POT's `engine.device` default).
pub const DEFAULT_DEVICE: &str = "CPU";

/// The OpenVINO engine on one device.
#[derive(Clone)]
pub struct OpenvinoBackend {
    /// One core per thread that may compile at once: the binding compiles through `&mut Core`, so a single
    /// shared core made the ranking's parallel preparations of candidates wait for each other.
    cores: Arc<Vec<Mutex<Core>>>,
    device: String,
    form: Form,
    threads: CpuThreads,
}

/// How the CPU device runs one inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CpuThreads {
    /// One thread per infer request and as many streams as aquant runs threads: the search's setting, so
    /// that parallel runs of one model do not queue behind each other.
    One,
    /// OpenVINO's `LATENCY` performance hint: one stream on the threads OpenVINO picks, as a latency-bound
    /// service deploys a model ([`Backend::at_default_threads`]).
    Latency,
}

/// What a model is handed to OpenVINO as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// ONNX bytes, read by OpenVINO's ONNX frontend.
    Onnx,
    /// The IR aquant writes (.xml text and .bin weights), read by OpenVINO's IR frontend; ONNX bytes for a
    /// model with no IR form. Every model aquant can save has one (an IR output is refused before the work
    /// otherwise), so the saved model and the search's candidates are read as IR; the fake-quantized models
    /// calibration and the analyses build (`Round`, float quantizers) have none, and OpenVINO reads them as
    /// ONNX, as it does the search's models for an ONNX output.
    Ir,
}

impl std::fmt::Debug for OpenvinoBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenvinoBackend({}, {:?})", self.device, self.form)
    }
}

/// The library file loaded, or why none could be: the library is loaded once per process.
static LIBRARY: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

pub(crate) fn backend_error(context: &str, error: impl std::fmt::Display) -> Error {
    let message = format!("{context}: {error}").replace('\n', " ");
    Error::Backend {
        backend: "openvino".into(),
        message,
    }
}

/// Float layers in f32 (see [`OpenvinoBackend::new`]), and the threads of one inference.
fn configure_cpu(core: &mut Core, threads: CpuThreads) -> Result<()> {
    let cpu = DeviceType::from(DEFAULT_DEVICE);
    let streams = rayon::current_num_threads().max(1).to_string();
    let settings: Vec<(RwPropertyKey, &str)> = match threads {
        CpuThreads::One => vec![
            (RwPropertyKey::HintInferencePrecision, "f32"),
            (RwPropertyKey::InferenceNumThreads, streams.as_str()),
            (RwPropertyKey::NumStreams, streams.as_str()),
        ],
        CpuThreads::Latency => vec![
            (RwPropertyKey::HintInferencePrecision, "f32"),
            (RwPropertyKey::HintPerformanceMode, "LATENCY"),
        ],
    };
    core.set_properties(&cpu, settings)
        .map_err(|e| backend_error("configuring the CPU", e))
}

/// A core on `device`, configured for `threads` on the CPU; `check`: first fail with the devices there are when
/// OpenVINO has no `device` (a plugin query: a backend asks once, on its first core).
fn open_core(device: &str, threads: CpuThreads, check: bool) -> Result<Core> {
    let mut core = Core::new().map_err(|e| backend_error("creating the OpenVINO core", e))?;
    if check {
        check_device(&core, device)?;
    }
    if device == DEFAULT_DEVICE {
        configure_cpu(&mut core, threads)?;
    }
    Ok(core)
}

/// Fails with the devices there are when `core` has no `device`.
fn check_device(core: &Core, device: &str) -> Result<()> {
    let available = core
        .available_devices()
        .map_err(|e| backend_error("listing devices", e))?;
    if !available.iter().any(|d| d.as_ref() == device) {
        let names: Vec<&str> = available.iter().map(|d| d.as_ref()).collect();
        return Err(backend_error(
            "opening the device",
            format!("OpenVINO has no device '{device}' here (available: {names:?})"),
        ));
    }
    Ok(())
}

impl OpenvinoBackend {
    /// Loads OpenVINO (see [`find_library`]) and opens `device` ("CPU", "GPU", …: POT's `engine.device`).
    ///
    /// On the CPU, floating-point layers run in f32: OpenVINO's default on CPUs with bf16 instructions
    /// (AVX512_BF16, AMX) is bf16, which would put bf16 rounding into the FP32 baseline and into every
    /// candidate, and the accuracy budget would be spent on it rather than on quantization. int8 layers are
    /// unaffected. Each infer request uses one thread, and the device keeps as many streams as aquant runs
    /// threads, so parallel runs of one model do not queue behind each other.
    pub fn new(device: &str) -> Result<OpenvinoBackend> {
        Self::open(device, CpuThreads::One, Form::Onnx)
    }

    fn open(device: &str, threads: CpuThreads, form: Form) -> Result<OpenvinoBackend> {
        let loaded = LIBRARY.get_or_init(|| {
            let path = find_library().map_err(|e| e.to_string())?;
            openvino_sys::library::load_from(&path)
                .map_err(|e| format!("loading {}: {e}", path.display()))?;
            Ok(path)
        });
        if let Err(message) = loaded {
            return Err(backend_error("loading OpenVINO", message));
        }
        let cores = (0..rayon::current_num_threads().max(1))
            .map(|i| open_core(device, threads, i == 0).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(OpenvinoBackend {
            cores: Arc::new(cores),
            device: device.to_owned(),
            form,
            threads,
        })
    }

    /// This engine, reading every model that has an IR form as the OpenVINO IR aquant saves instead of as
    /// ONNX (`Form::Ir`). Its name is `openvino-ir`, so the search never mistakes it for the
    /// ONNX-reading engine.
    pub fn reading_ir(self) -> OpenvinoBackend {
        OpenvinoBackend {
            form: Form::Ir,
            ..self
        }
    }

    /// The device models are compiled for.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// A core no other thread is compiling with, or, when all are busy, this thread's own (waiting for it).
    fn idle_core(&self) -> Result<std::sync::MutexGuard<'_, Core>> {
        if let Some(core) = self.cores.iter().find_map(|core| core.try_lock().ok()) {
            return Ok(core);
        }
        let own = rayon::current_thread_index().unwrap_or(0) % self.cores.len();
        self.cores[own]
            .lock()
            .map_err(|_| backend_error("compiling the model", "core poisoned"))
    }

    /// Compiles `model` in this engine's [`Form`].
    fn compile(&self, model: &ModelProto) -> Result<CompiledModel> {
        let ir = match self.form {
            Form::Onnx => None,
            Form::Ir => match aquant_ir::write_ir(model) {
                Ok(ir) => Some(ir),
                Err(aquant_ir::IrError::Unwritable(_)) => None,
                Err(error) => return Err(error.into()),
            },
        };
        let weights = match &ir {
            Some(ir) => Some(convert::bytes_tensor(&ir.bin)?),
            None => None,
        };
        let bytes = match &ir {
            Some(ir) => ir.xml.as_bytes().to_vec(),
            None => aquant_onnx::encode_model(model),
        };
        let mut core = self.idle_core()?;
        let model = core
            .read_model_from_buffer(&bytes, weights.as_ref())
            .map_err(|e| backend_error("reading the model", e))?;
        core.compile_model(&model, DeviceType::from(self.device.as_str()))
            .map_err(|e| backend_error("compiling the model", e))
    }
}

impl Backend for OpenvinoBackend {
    fn name(&self) -> &str {
        match self.form {
            Form::Onnx => "openvino",
            Form::Ir => "openvino-ir",
        }
    }

    /// The release of the loaded library ("2026.4.1" of "2026.4.1-22982-e213a147257-releases/2026/4").
    fn version(&self) -> String {
        let build = openvino::version().build_number;
        build.split('-').next().unwrap_or(&build).to_owned()
    }

    fn runs_qdq_natively(&self) -> bool {
        true
    }

    /// On the CPU, as [`OpenvinoBackend::new`] configures it: one thread per infer request (as many streams
    /// as threads), float layers in f32. Other devices run with their own defaults, which aquant does not set.
    fn settings(&self) -> EngineSettings {
        let cpu = self.device == DEFAULT_DEVICE;
        EngineSettings {
            threads: (cpu && self.threads == CpuThreads::One).then_some(1),
            precision_hint: cpu.then(|| "f32".to_owned()),
            optimization: None,
        }
    }

    /// On the CPU, a core with OpenVINO's `LATENCY` hint (float layers still in f32), reading models as this
    /// one does; other devices choose their own threads already.
    fn at_default_threads(&self) -> Result<Option<Box<dyn Backend>>> {
        if self.device != DEFAULT_DEVICE {
            return Ok(None);
        }
        let engine = Self::open(&self.device, CpuThreads::Latency, self.form)?;
        Ok(Some(Box::new(engine)))
    }

    fn prepare(&self, model: &ModelProto, extra_outputs: &[String]) -> Result<Arc<dyn Session>> {
        let ExternalPlan {
            model,
            inputs,
            outputs,
        } = ExternalPlan::new(model, extra_outputs)?;
        let mut compiled = self.compile(&model)?;
        let count = compiled
            .get_input_size()
            .map_err(|e| backend_error("loading model", e))?;
        if count != inputs.len() {
            return Err(backend_error(
                "loading model",
                format!("OpenVINO sees {count} inputs, aquant {}", inputs.len()),
            ));
        }
        let first = compiled
            .create_infer_request()
            .map_err(|e| backend_error("creating an infer request", e))?;
        Ok(Arc::new(OpenvinoSession {
            compiled: Mutex::new(compiled),
            inputs,
            outputs,
            idle: Mutex::new(vec![first]),
        }))
    }
}

/// A compiled model and its idle infer requests (one more is created when all are busy).
struct OpenvinoSession {
    compiled: Mutex<CompiledModel>,
    inputs: Vec<String>,
    outputs: Vec<OutputSource>,
    idle: Mutex<Vec<InferRequest>>,
}

impl OpenvinoSession {
    fn checkout(&self) -> Result<InferRequest> {
        let idle = self
            .idle
            .lock()
            .map_err(|_| backend_error("running model", "request pool poisoned"))?
            .pop();
        match idle {
            Some(request) => Ok(request),
            None => self
                .compiled
                .lock()
                .map_err(|_| backend_error("running model", "compiled model poisoned"))?
                .create_infer_request()
                .map_err(|e| backend_error("creating an infer request", e)),
        }
    }

    fn checkin(&self, request: InferRequest) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(request);
        }
    }

    fn infer(&self, request: &mut InferRequest, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        for (name, tensor) in self.inputs.iter().zip(inputs) {
            let value = convert::to_openvino(tensor)?;
            request
                .set_tensor(name, &value)
                .map_err(|e| backend_error("passing an input", e))?;
        }
        request
            .infer()
            .map_err(|e| backend_error("running model", e))?;
        self.outputs
            .iter()
            .map(|source| match source {
                OutputSource::Input(i) => Ok(inputs[*i].clone()),
                OutputSource::Output(name) | OutputSource::Tapped(name) => {
                    let value = request
                        .get_tensor(name)
                        .map_err(|e| backend_error(&format!("reading output '{name}'"), e))?;
                    convert::to_tensor(name, &value)
                }
            })
            .collect()
    }
}

impl Session for OpenvinoSession {
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
        let mut request = self.checkout()?;
        let result = self.infer(&mut request, &inputs);
        self.checkin(request);
        result
    }
}
