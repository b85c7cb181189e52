//! Feeding a dataset through a session, batch by batch, on every core.
//!
//! One intra-op thread per run and runs in parallel is the fastest arrangement on this class of machine
//! (two threads inside one session are slower than one). Batches are processed in waves of one batch per
//! worker; each wave's results are handed to the caller in dataset order before the next wave starts, so memory
//! stays at (workers × batch) samples and results are deterministic whatever the scheduling.

use std::collections::BTreeSet;

use rayon::prelude::*;

use crate::backend::Session;
use crate::data::{Annotation, Dataset, Sample, SOLE_INPUT};
use crate::error::{Error, Result};
use aquant_onnx::ModelProto;

use crate::graph::{runtime_inputs, Dim, Graph, Port};
use crate::progress::Progress;
use crate::tensor::Tensor;

/// How dataset samples map onto a model's inputs, checked once against the model's declarations.
#[derive(Debug, Clone)]
pub struct InputBinding {
    ports: Vec<Port>,
    /// The batch size the model imposes (a fixed leading dimension), if any.
    fixed_batch: Option<usize>,
}

impl InputBinding {
    /// Reads the model's runtime inputs.
    pub fn new(graph: &Graph) -> Result<InputBinding> {
        Self::from_ports(graph.inputs())
    }

    /// Reads the runtime inputs of a model that need not be indexed as a [`Graph`].
    pub fn from_model(model: &ModelProto) -> Result<InputBinding> {
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| Error::InvalidModel("model has no graph".into()))?;
        Self::from_ports(runtime_inputs(graph))
    }

    fn from_ports(ports: Vec<Port>) -> Result<InputBinding> {
        if ports.is_empty() {
            return Err(Error::InvalidModel("the model has no runtime input".into()));
        }
        let fixed_batch = ports.iter().find_map(|p| match p.shape.as_deref() {
            Some([Dim::Fixed(b), ..]) => Some(*b),
            _ => None,
        });
        Ok(InputBinding { ports, fixed_batch })
    }

    /// The batch size to use when the caller asks for `requested`.
    pub fn batch_size(&self, requested: usize) -> usize {
        self.fixed_batch.unwrap_or(requested.max(1))
    }

    /// Orders one sample's tensors as the model's inputs, checking names, types and fixed dimensions.
    pub fn bind(&self, sample: Sample, index: usize) -> Result<Vec<Tensor>> {
        let mut inputs = sample.inputs;
        let given: BTreeSet<String> = inputs.iter().map(|(n, _)| n.clone()).collect();
        if inputs.len() == 1 && inputs[0].0 == SOLE_INPUT && self.ports.len() == 1 {
            inputs[0].0 = self.ports[0].name.clone();
        }
        let expected: Vec<&str> = self.ports.iter().map(|p| p.name.as_str()).collect();
        if inputs.len() != self.ports.len() {
            return Err(Error::data(format!(
                "the data gives inputs {given:?} but the model's inputs are {expected:?}"
            )));
        }
        self.ports
            .iter()
            .map(|port| {
                let pos = inputs
                    .iter()
                    .position(|(n, _)| *n == port.name)
                    .ok_or_else(|| {
                        Error::data(format!(
                        "the data gives inputs {given:?} but the model's inputs are {expected:?}"
                    ))
                    })?;
                let tensor = widened(port, inputs.swap_remove(pos).1);
                check_port(port, &tensor, index)?;
                Ok(tensor)
            })
            .collect()
    }
}

/// Integer data for a float input, as float: OpenVINO converts an array to its port's element type, and POT's
/// engine relies on it (its samples feed `uint8` images to float models). The other way (float data for an
/// integer input) would truncate, so it stays an error.
fn widened(port: &Port, tensor: Tensor) -> Tensor {
    match (port.elem_type, tensor) {
        (1, Tensor::I64(a)) => Tensor::F32(a.mapv(|v| v as f32)),
        (_, tensor) => tensor,
    }
}

fn check_port(port: &Port, tensor: &Tensor, index: usize) -> Result<()> {
    let type_ok = matches!(
        (port.elem_type, tensor),
        (1, Tensor::F32(_)) | (7, Tensor::I64(_)) | (0, _)
    );
    if !type_ok {
        return Err(Error::data(format!(
            "sample {index}, input '{}': the model expects ONNX element type {}, the data is {}",
            port.name,
            port.elem_type,
            tensor.dtype_name()
        )));
    }
    let Some(dims) = &port.shape else {
        return Ok(());
    };
    let shape = tensor.shape();
    let mismatch = dims.len() != shape.len()
        || dims
            .iter()
            .zip(shape)
            .skip(1)
            .any(|(d, &s)| matches!(d, Dim::Fixed(f) if *f != s));
    if mismatch {
        let want: Vec<String> = dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(v) => v.to_string(),
                Dim::Symbolic(s) if s.is_empty() => "?".into(),
                Dim::Symbolic(s) => s.clone(),
            })
            .collect();
        return Err(Error::data(format!(
            "sample {index}, input '{}': the model expects shape [{}], the data has {:?}",
            port.name,
            want.join(", "),
            shape
        )));
    }
    Ok(())
}

/// What a sink wants after a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Run the next batches.
    Continue,
    /// Stop: the caller has seen enough (batches already running in the current wave are still delivered).
    Stop,
}

/// Runs `session` over `indices` of `dataset` in parallel batches and hands each batch's outputs to `sink`,
/// in order: `sink(sample_indices, outputs, annotations)` where every output tensor has one row per sample
/// index. Returns the number of samples delivered (less than `indices.len()` when the sink stopped early).
pub fn run_batches(
    session: &dyn Session,
    binding: &InputBinding,
    dataset: &dyn Dataset,
    indices: &[usize],
    batch_size: usize,
    progress: &dyn Progress,
    mut sink: impl FnMut(&[usize], Vec<Tensor>, Vec<Annotation>) -> Result<Flow>,
) -> Result<usize> {
    let batch_size = binding.batch_size(batch_size);
    let batches: Vec<&[usize]> = indices.chunks(batch_size).collect();
    let workers = rayon::current_num_threads().max(1);
    let mut delivered = 0;
    for wave in batches.chunks(workers) {
        let results: Vec<Result<(Vec<Tensor>, Vec<Annotation>)>> = wave
            .par_iter()
            .map(|batch| {
                let outputs = run_one_batch(session, binding, dataset, batch, batch_size)?;
                progress.advance(batch.len() as u64);
                Ok(outputs)
            })
            .collect();
        let mut flow = Flow::Continue;
        for (batch, result) in wave.iter().zip(results) {
            let (outputs, annotations) = result?;
            delivered += batch.len();
            if sink(batch, outputs, annotations)? == Flow::Stop {
                flow = Flow::Stop;
            }
        }
        if flow == Flow::Stop {
            break;
        }
    }
    Ok(delivered)
}

fn run_one_batch(
    session: &dyn Session,
    binding: &InputBinding,
    dataset: &dyn Dataset,
    batch: &[usize],
    batch_size: usize,
) -> Result<(Vec<Tensor>, Vec<Annotation>)> {
    let mut per_sample = Vec::with_capacity(batch_size);
    let mut annotations = Vec::with_capacity(batch.len());
    for &i in batch {
        let mut sample = dataset.get(i)?;
        annotations.push(std::mem::replace(&mut sample.annotation, Annotation::None));
        per_sample.push(binding.bind(sample, i)?);
    }
    // A model with a fixed batch larger than what is left gets the last sample repeated; the padding rows of
    // the outputs are dropped below.
    let padding = if binding.fixed_batch.is_some() {
        batch_size - batch.len()
    } else {
        0
    };
    for _ in 0..padding {
        per_sample.push(per_sample.last().expect("batches are never empty").clone());
    }
    let inputs = (0..per_sample[0].len())
        .map(|k| Tensor::concat_rows(&per_sample.iter().map(|s| &s[k]).collect::<Vec<_>>()))
        .collect::<Result<Vec<_>>>()?;
    let outputs = session.run(inputs)?;
    let outputs = outputs
        .into_iter()
        .map(|t| {
            if t.batch_len() != batch.len() + padding {
                return Err(Error::InvalidModel(format!(
                    "an output has {} rows for a batch of {}; aquant needs outputs with the batch on axis 0",
                    t.batch_len(),
                    batch.len() + padding
                )));
            }
            Ok(if padding == 0 { t } else { t.rows(0..batch.len()) })
        })
        .collect::<Result<_>>()?;
    Ok((outputs, annotations))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    fn binding(elem_type: i32) -> InputBinding {
        let port = Port {
            name: "x".into(),
            elem_type,
            shape: None,
        };
        InputBinding::from_ports(vec![port]).unwrap()
    }

    fn sample(tensor: Tensor) -> Sample {
        Sample {
            inputs: vec![("x".into(), tensor)],
            annotation: Annotation::None,
            metadata: Default::default(),
        }
    }

    #[test]
    fn integer_data_for_a_float_input_is_widened_and_float_for_an_integer_one_refused() {
        let bytes = ArrayD::from_shape_vec(vec![1, 2], vec![3i64, 255]).unwrap();
        let bound = binding(1).bind(sample(Tensor::I64(bytes)), 0).unwrap();
        assert!(matches!(&bound[0], Tensor::F32(a) if a.iter().copied().eq([3.0, 255.0])));
        let floats = ArrayD::from_shape_vec(vec![1, 1], vec![0.5f32]).unwrap();
        let refused = binding(7).bind(sample(Tensor::F32(floats)), 4).unwrap_err();
        assert!(refused
            .to_string()
            .contains("sample 4, input 'x': the model expects ONNX element type 7"));
    }
}
