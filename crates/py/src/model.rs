//! The model a `validation_fn` receives: callable on numpy inputs, valid only during that call. The Python
//! package wraps it in NNCF's face for the model's kind (`aquant._lent`: a lazily parsed `onnx.ModelProto`, an
//! OpenVINO `CompiledModel`); this side gives what both need: calls, names, and the ONNX bytes.
//!
//! The library lends a dataset-level metric the evaluated model as a borrow ([`RunnableModel`]) that lasts
//! for one `set_value` call. Python objects live as long as Python likes, so the [`Model`] handed to Python
//! holds no borrow: it holds a channel to the thread inside `set_value` that owns the borrow ([`serve`]), and
//! the channel is closed when `set_value` returns — a call after that raises `RuntimeError`. No lifetime is
//! extended and nothing unsafe is needed.
//!
//! Most `validation_fn`s feed the model exactly the inputs `transform_func` made, which aquant has just run:
//! those calls are answered from a replay table keyed by the inputs' fingerprint, without inference. Any other
//! input runs on the evaluator's engine with the GIL released.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aquant::metric::RunnableModel;
use aquant::{Result, Tensor};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::convert;
use crate::errors::Causes;

/// What the Python thread asks of the thread that holds the model.
pub enum ModelRequest {
    /// Run the model on these inputs.
    Run(Vec<(String, Tensor)>, Sender<Result<Vec<Tensor>>>),
    /// The model's ONNX bytes.
    Encode(Sender<Vec<u8>>),
}

/// Outputs already computed, by input fingerprint.
pub type Replay = HashMap<u64, Vec<Tensor>>;

/// The model under evaluation, as `validation_fn(model, data)` receives it. Call it on one array, a tuple or
/// list of arrays, or a dict name → array: it returns the list of output arrays.
#[pyclass(frozen, module = "aquant._aquant")]
pub struct Model {
    requests: Arc<Mutex<Option<Sender<ModelRequest>>>>,
    replay: Arc<Replay>,
    names: Vec<String>,
    outputs: Vec<String>,
}

#[pymethods]
impl Model {
    /// Runs the model on `inputs`; returns its outputs (numpy arrays, in the model's output order).
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let sender = self.sender()?;
        let inputs = convert::inputs(inputs, &self.names)?;
        let key = convert::inputs_fingerprint(&inputs, &self.names);
        if let Some(outputs) = self.replay.get(&key) {
            return convert::arrays(py, outputs);
        }
        let outputs = py.detach(move || {
            let (reply, answer) = channel();
            sender.send(ModelRequest::Run(inputs, reply)).ok()?;
            answer.recv().ok()
        });
        match outputs {
            Some(Ok(outputs)) => convert::arrays(py, &outputs),
            Some(Err(error)) => Err(crate::errors::to_py(py, error, &Causes::default())),
            None => Err(expired()),
        }
    }

    /// The model's names of its inputs, in order.
    #[getter]
    fn input_names(&self) -> Vec<String> {
        self.names.clone()
    }

    /// The model's names of its outputs, in the order a call returns them (the keys of OpenVINO's results, which
    /// the Python package's `CompiledModel` face builds on).
    #[getter]
    fn output_names(&self) -> Vec<String> {
        self.outputs.clone()
    }

    /// The model as ONNX bytes (so `onnxruntime.InferenceSession(model.SerializeToString())` works, as with
    /// NNCF's ONNX backend).
    #[allow(non_snake_case)]
    fn SerializeToString<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let sender = self.sender()?;
        let bytes = py.detach(move || {
            let (reply, answer) = channel();
            sender.send(ModelRequest::Encode(reply)).ok()?;
            answer.recv().ok()
        });
        bytes.map(|b| PyBytes::new(py, &b)).ok_or_else(expired)
    }
}

impl Model {
    fn sender(&self) -> PyResult<Sender<ModelRequest>> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(expired)
    }
}

fn expired() -> PyErr {
    PyRuntimeError::new_err(
        "this model was lent to one validation_fn call and that call has returned; keep results, not the model",
    )
}

/// Runs `call` (which calls Python with a [`Model`]) on a scoped thread, while this thread, which holds the
/// borrowed `model`, answers its requests; closes the model when `call` returns.
pub fn serve<T: Send>(
    model: &dyn RunnableModel,
    replay: Replay,
    names: Vec<String>,
    call: impl FnOnce(Model) -> T + Send,
) -> std::thread::Result<T> {
    let (sender, requests) = channel();
    let slot = Arc::new(Mutex::new(Some(sender)));
    let outputs = model.proto().graph.as_ref().map_or_else(Vec::new, |g| {
        g.output
            .iter()
            .map(|o| o.name.clone().unwrap_or_default())
            .collect()
    });
    let lent = Model {
        requests: slot.clone(),
        replay: Arc::new(replay),
        names,
        outputs,
    };
    std::thread::scope(|scope| {
        let caller = scope.spawn(move || call(lent));
        answer(model, &requests, || caller.is_finished());
        // Closed before the join: a Model kept by Python can no longer reach this model.
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
        caller.join()
    })
}

/// Answers requests until `done` (checked between requests and every 20 ms).
fn answer(model: &dyn RunnableModel, requests: &Receiver<ModelRequest>, done: impl Fn() -> bool) {
    loop {
        match requests.recv_timeout(Duration::from_millis(20)) {
            Ok(ModelRequest::Run(inputs, reply)) => {
                let _ = reply.send(model.run(inputs));
            }
            Ok(ModelRequest::Encode(reply)) => {
                let _ = reply.send(aquant_onnx::encode_model(model.proto()));
            }
            Err(RecvTimeoutError::Timeout) if !done() => {}
            Err(_) => return,
        }
        if done() {
            return;
        }
    }
}
