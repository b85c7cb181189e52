//! numpy arrays ↔ aquant tensors, and a model's inputs from what a Python dataset or caller gives.
//!
//! Inputs are converted as NNCF's and POT's datasets give them: one array (the model's only input), a tuple or
//! list of arrays (the model's inputs in order) or a dict from input name to array. Floating arrays become
//! float32 and integer or boolean ones int64 — the element types ONNX models take — and anything else is a
//! `ValueError` naming the dtype.

use std::hash::{DefaultHasher, Hasher};

use aquant::data::SOLE_INPUT;
use aquant::Tensor;
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// One Python array-like as a tensor.
pub fn tensor(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Tensor> {
    let py = value.py();
    let numpy = py.import("numpy")?;
    let array = numpy.call_method1("asarray", (value,))?;
    let kind: String = array.getattr("dtype")?.getattr("kind")?.extract()?;
    let target = match kind.as_str() {
        "f" => "float32",
        "i" | "u" | "b" => "int64",
        _ => {
            let dtype = array.getattr("dtype")?.str()?.to_string();
            return Err(PyValueError::new_err(format!(
                "{what}: arrays of dtype {dtype} cannot be fed to an ONNX model (give float or integer arrays)"
            )));
        }
    };
    let array = array.call_method1("astype", (target,))?;
    Ok(match target {
        "float32" => {
            let a = array.cast_into::<PyArrayDyn<f32>>()?;
            Tensor::F32(a.readonly().as_array().to_owned())
        }
        _ => {
            let a = array.cast_into::<PyArrayDyn<i64>>()?;
            Tensor::I64(a.readonly().as_array().to_owned())
        }
    })
}

/// A model's inputs from one array, a tuple/list of arrays (in `names` order) or a dict name → array.
pub fn inputs(value: &Bound<'_, PyAny>, names: &[String]) -> PyResult<Vec<(String, Tensor)>> {
    if let Ok(dict) = value.cast::<PyDict>() {
        return dict
            .iter()
            .map(|(k, v)| {
                let name: String = k.extract().map_err(|_| {
                    PyValueError::new_err("input dict keys must be the model's input names (str)")
                })?;
                let t = tensor(&v, &format!("input '{name}'"))?;
                Ok((name, t))
            })
            .collect();
    }
    if let Some(items) = sequence_of_arrays(value)? {
        if items.len() != names.len() {
            return Err(PyValueError::new_err(format!(
                "{} arrays given for the model's {} inputs {names:?}",
                items.len(),
                names.len()
            )));
        }
        return items
            .iter()
            .zip(names)
            .map(|(v, name)| Ok((name.clone(), tensor(v, &format!("input '{name}'"))?)))
            .collect();
    }
    Ok(vec![(SOLE_INPUT.to_owned(), tensor(value, "input")?)])
}

/// The items of a tuple or list whose items are all numpy arrays (a list of numbers is one array).
fn sequence_of_arrays<'py>(value: &Bound<'py, PyAny>) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
    let items: Vec<Bound<'py, PyAny>> = if let Ok(t) = value.cast::<PyTuple>() {
        t.iter().collect()
    } else if let Ok(l) = value.cast::<PyList>() {
        l.iter().collect()
    } else {
        return Ok(None);
    };
    let ndarray = value.py().import("numpy")?.getattr("ndarray")?;
    for item in &items {
        if !item.is_instance(&ndarray)? {
            return Ok(None);
        }
    }
    Ok(Some(items))
}

/// A tensor as a numpy array.
pub fn array<'py>(py: Python<'py>, tensor: &Tensor) -> Bound<'py, PyAny> {
    match tensor {
        Tensor::F32(a) => a.clone().into_pyarray(py).into_any(),
        Tensor::I64(a) => a.clone().into_pyarray(py).into_any(),
        Tensor::U8(a) => a.clone().into_pyarray(py).into_any(),
        Tensor::I8(a) => a.clone().into_pyarray(py).into_any(),
    }
}

/// Tensors as a list of numpy arrays (a model's outputs, in its output order).
pub fn arrays<'py>(py: Python<'py>, tensors: &[Tensor]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, tensors.iter().map(|t| array(py, t)))
}

/// A hash of the tensors' types, shapes and values (names aside: a caller may name what the dataset did not),
/// to recognise inputs aquant has already run.
pub fn fingerprint<'a>(tensors: impl IntoIterator<Item = &'a Tensor>) -> u64 {
    let mut hash = DefaultHasher::new();
    for tensor in tensors {
        hash.write_usize(tensor.shape().len());
        tensor.shape().iter().for_each(|&d| hash.write_usize(d));
        match tensor {
            Tensor::F32(a) => {
                hash.write_u8(1);
                a.iter().for_each(|v| hash.write_u32(v.to_bits()));
            }
            Tensor::I64(a) => {
                hash.write_u8(7);
                a.iter().for_each(|v| hash.write_i64(*v));
            }
            Tensor::U8(a) => {
                hash.write_u8(2);
                a.iter().for_each(|v| hash.write_u8(*v));
            }
            Tensor::I8(a) => {
                hash.write_u8(3);
                a.iter().for_each(|v| hash.write_i8(*v));
            }
        }
    }
    hash.finish()
}

/// [`fingerprint`] of named inputs, taken in the model's input order (`names`) whatever order they came in.
pub fn inputs_fingerprint(inputs: &[(String, Tensor)], names: &[String]) -> u64 {
    let mut ordered: Vec<&(String, Tensor)> = inputs.iter().collect();
    ordered.sort_by_key(|(name, _)| names.iter().position(|n| n == name).unwrap_or(usize::MAX));
    fingerprint(ordered.into_iter().map(|(_, t)| t))
}
