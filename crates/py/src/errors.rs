//! aquant errors as Python exceptions, and the Python exceptions raised inside callbacks kept as their cause.
//!
//! A callback (a metric, a `transform_func`, a `validation_fn`) runs deep inside the library, which knows only
//! [`aquant::Error`]; its Python exception is flattened into that error's one-line message and the exception
//! itself is kept in a [`Causes`] slot, so that the exception raised to the caller carries aquant's message and
//! the user's original exception (with its traceback) as `__cause__`.

use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// The first Python exception raised by a callback during a job.
#[derive(Clone, Default)]
pub struct Causes(Arc<Mutex<Option<PyErr>>>);

impl Causes {
    /// Keeps `error` (the first one only: later ones are usually consequences) and returns its one-line text.
    pub fn keep(&self, py: Python<'_>, error: PyErr) -> String {
        let text = describe(py, &error);
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
        text
    }

    fn take(&self) -> Option<PyErr> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// `TypeName: message`, as Python prints an exception's last line.
pub fn describe(py: Python<'_>, error: &PyErr) -> String {
    let name = error
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let message = error.value(py).to_string();
    if message.is_empty() {
        name
    } else {
        format!("{name}: {message}")
    }
}

/// The Python exception for `error`: `ValueError` for bad input (model, data, parameters, metric values),
/// `KeyboardInterrupt` for an interrupted run with nothing to save, `RuntimeError` otherwise (engine, file
/// system). The callback exception kept in `causes`, if any, becomes its `__cause__`.
pub fn to_py(py: Python<'_>, error: aquant::Error, causes: &Causes) -> PyErr {
    use aquant::Error as E;
    let message = error.to_string();
    let raised = match error {
        E::Interrupted => PyKeyboardInterrupt::new_err(message),
        E::Onnx(_)
        | E::InvalidModel(_)
        | E::UnsupportedOp { .. }
        | E::Data(_)
        | E::Metric { .. }
        | E::Config(_)
        | E::Report(_) => PyValueError::new_err(message),
        E::Ir(aquant_ir::IrError::Io { .. }) => PyRuntimeError::new_err(message),
        E::Ir(_) => PyValueError::new_err(message),
        E::Backend { .. } | E::Io { .. } | E::Executor(_) => PyRuntimeError::new_err(message),
    };
    if let Some(cause) = causes.take() {
        raised.set_cause(py, Some(cause));
    }
    raised
}

/// A Rust panic payload as a `RuntimeError` (no panic crosses into Python).
pub fn panicked(payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    PyRuntimeError::new_err(format!("internal error (please report): {message}"))
}
