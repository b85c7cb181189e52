//! Calibration: one FP32 pass over the calibration samples, observing every tensor a quantizer needs.
//!
//! The statistics are collected from a *tapped copy* of the FP32 model (quantized tensors added as outputs),
//! never from a model that is judged. Memory is bounded by design: per tensor only the per-sample reduced
//! values of the range estimator are kept, plus, for fast bias correction, a running sum of the inputs of
//! the layers with a bias (one sample's worth of memory per such layer).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis};
use rayon::prelude::*;

use crate::backend::Backend;
use crate::data::{Annotation, Dataset};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::numerics::{RangeEstimator, SplitMix64, TensorStats};
use crate::params::QuantizationParams;
use crate::progress::Progress;
use crate::quantize::placement::Placement;
use crate::runner::{run_batches, Flow, InputBinding};
use crate::tensor::Tensor;

/// What calibration learned about the FP32 model.
#[derive(Debug, Clone)]
pub struct CalibrationStats {
    /// Per quantized tensor: the estimated (min, max) range, one entry (per tensor).
    pub ranges: BTreeMap<String, (f32, f32)>,
    /// Per tensor read by a layer with a bias: the mean over calibration samples, shape `[1, ...]`.
    pub mean_inputs: HashMap<String, ArrayD<f32>>,
    /// Samples observed.
    pub samples: usize,
    /// The FP32 model's own outputs and the annotation of each calibration sample, in calibration order,
    /// when they fit in `KEPT_OUTPUTS_BYTES`: a validation set equal to the calibration set needs no second
    /// FP32 pass.
    pub fp32_outputs: Option<FP32Outputs>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// The FP32 model's outputs on some samples: dataset indices, and per sample its outputs and annotation.
pub type FP32Outputs = (Vec<usize>, Vec<(Vec<Tensor>, Annotation)>);

/// Most bytes of FP32 outputs calibration keeps for reuse (classification logits of 300 samples: 1.2 MB).
pub const KEPT_OUTPUTS_BYTES: usize = 64 << 20;

/// The dataset indices used for calibration: the first `stat_subset_size`, or a seeded random draw.
pub fn calibration_indices(len: usize, params: &QuantizationParams) -> Vec<usize> {
    let count = params.stat_subset_size.min(len);
    let mut indices: Vec<usize> = match params.shuffle_data {
        // Reproducible across platforms for a given seed.
        true => SplitMix64::new(params.seed).permutation(len),
        false => (0..len).collect(),
    };
    indices.truncate(count);
    indices
}

struct RunningMean {
    sum: Option<ArrayD<f32>>,
    count: usize,
    consistent: bool,
}

impl RunningMean {
    /// Adds a batch: its samples summed in order (as `sum_axis` would), then into the running sum. A batch of
    /// one is added as it is. This runs on every sample of every such input, so contiguous data is added as
    /// plain slices, which the compiler vectorises (ndarray's `+=` on dynamic dimensions does not).
    fn add(&mut self, batch: &ArrayD<f32>) {
        let mut samples = batch.axis_iter(Axis(0));
        let Some(first) = samples.next() else {
            return;
        };
        self.count += batch.shape()[0];
        let batch_sum = match (samples.len(), &mut self.sum) {
            (0, Some(sum)) if sum.len() == first.len() && sum.shape()[1..] == *first.shape() => {
                add_into(sum.view_mut(), first);
                return;
            }
            _ => {
                let mut batch_sum = first.to_owned();
                for sample in samples {
                    add_into(batch_sum.view_mut(), sample);
                }
                batch_sum.insert_axis(Axis(0))
            }
        };
        match &mut self.sum {
            None => self.sum = Some(batch_sum),
            Some(sum) if sum.shape() == batch_sum.shape() => {
                add_into(sum.view_mut(), batch_sum.view())
            }
            // Inputs whose shape varies between samples have no meaningful mean tensor.
            Some(_) => self.consistent = false,
        }
    }

    /// The running sum as a slice and `batch`'s values, when `batch` is one contiguous sample that adds
    /// into the sum as a plain slice (what [`RunningMean::add`] would do); counts the sample.
    fn running_sum_for<'b>(&mut self, batch: &'b ArrayD<f32>) -> Option<(&mut [f32], &'b [f32])> {
        let sum = self.sum.as_mut()?;
        let fits = batch.shape()[0] == 1 && sum.shape() == batch.shape();
        let values = batch.as_slice().filter(|_| fits)?;
        let sum = sum.as_slice_mut()?;
        self.count += 1;
        Some((sum, values))
    }

    fn finish(self) -> Option<ArrayD<f32>> {
        let count = self.count as f32;
        self.sum.filter(|_| self.consistent).map(|s| s / count)
    }
}

/// `sum += x`, element by element in logical order, for arrays of the same number of elements (`sum` may
/// have a leading axis of one more).
fn add_into(mut sum: ArrayViewMutD<f32>, x: ArrayViewD<f32>) {
    match (sum.as_slice_mut(), x.as_slice()) {
        (Some(sum), Some(x)) => sum.iter_mut().zip(x).for_each(|(s, x)| *s += x),
        _ => sum.iter_mut().zip(x.iter()).for_each(|(s, x)| *s += x),
    }
}

/// Runs the calibration pass.
pub fn calibrate(
    backend: &dyn Backend,
    graph: &Graph,
    placement: &Placement,
    dataset: &dyn Dataset,
    params: &QuantizationParams,
    batch_size: usize,
    progress: &dyn Progress,
) -> Result<CalibrationStats> {
    let start = Instant::now();
    let indices = calibration_indices(dataset.len(), params);
    if indices.is_empty() {
        return Err(Error::data("the calibration dataset is empty"));
    }
    let model_outputs = graph.outputs().len();
    let mut observers = Observers::new(placement, params, model_outputs);
    let mut kept = KeptOutputs::new(model_outputs);
    let session = backend.prepare(graph.model(), &observers.tensors)?;
    let binding = InputBinding::new(graph)?;
    progress.start("calibrating", indices.len() as u64);
    let result = run_batches(
        session.as_ref(),
        &binding,
        dataset,
        &indices,
        batch_size,
        progress,
        |_, outputs, annotations| {
            kept.keep(&outputs, annotations);
            observers.observe(&outputs)?;
            Ok(Flow::Continue)
        },
    );
    progress.finish();
    result?;

    Ok(CalibrationStats {
        ranges: observers.ranges()?,
        mean_inputs: observers.mean_inputs(),
        samples: indices.len(),
        fp32_outputs: kept.samples.map(|kept| (indices.clone(), kept)),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The tensors calibration observes, each with its range estimator and, for the input of a layer whose bias
/// fast bias correction corrects, its running mean.
struct Observers {
    /// The quantized tensors, in placement order: the session outputs them after the model's own outputs.
    tensors: Vec<String>,
    stats: Vec<TensorStats>,
    means: Vec<Option<RunningMean>>,
    /// The model's own outputs, which come first among the session's outputs.
    model_outputs: usize,
}

impl Observers {
    /// An observer for every activation quantizer of `placement`, with the range estimator `params` ask for.
    fn new(placement: &Placement, params: &QuantizationParams, model_outputs: usize) -> Observers {
        let tensors: Vec<String> = placement
            .activations
            .iter()
            .map(|a| a.tensor.clone())
            .collect();
        let mean_tensors: Vec<String> = placement
            .nodes
            .iter()
            .filter(|n| n.bias.is_some() && params.fast_bias_correction)
            .filter_map(|n| n.activations.first().map(|(_, t)| t.clone()))
            .collect();
        let estimator = params
            .activations
            .range_estimator
            .unwrap_or_else(|| RangeEstimator::default_activations(params.activation_mode()));
        let stats: Vec<TensorStats> = tensors
            .iter()
            .map(|_| TensorStats::new(estimator))
            .collect();
        let means: Vec<Option<RunningMean>> = tensors
            .iter()
            .map(|t| {
                mean_tensors.contains(t).then_some(RunningMean {
                    sum: None,
                    count: 0,
                    consistent: true,
                })
            })
            .collect();
        Observers {
            tensors,
            stats,
            means,
            model_outputs,
        }
    }

    /// Adds one batch of the session's outputs to the statistics of the tensors after the model's outputs.
    fn observe(&mut self, outputs: &[Tensor]) -> Result<()> {
        // Reducing a batch is independent per tensor: spread it over the cores.
        self.stats
            .par_iter_mut()
            .zip(self.means.par_iter_mut())
            .zip(outputs.par_iter().skip(self.model_outputs))
            .zip(self.tensors.par_iter())
            .try_for_each(|(((stat, mean), output), name)| {
                let data = output.as_f32(name)?;
                let observed = match mean.as_mut().and_then(|m| m.running_sum_for(data)) {
                    // One sample added into the running sum as it is observed: one pass over it.
                    Some((sum, values)) => stat.observe_adding(values, sum),
                    None => stat.observe(data.view()).map(|()| {
                        if let Some(mean) = mean {
                            mean.add(data);
                        }
                    }),
                };
                observed.map_err(|e| Error::data(format!("calibration of tensor '{name}': {e}")))
            })
    }

    /// Each tensor's estimated range.
    fn ranges(&self) -> Result<BTreeMap<String, (f32, f32)>> {
        let mut ranges = BTreeMap::new();
        for (tensor, stat) in self.tensors.iter().zip(&self.stats) {
            let (min, max) = stat
                .finish()
                .map_err(|e| Error::data(format!("calibration of tensor '{tensor}': {e}")))?;
            ranges.insert(tensor.clone(), (min, max));
        }
        Ok(ranges)
    }

    /// The mean input of each layer with a bias, where the inputs' shape allows one.
    fn mean_inputs(self) -> HashMap<String, ArrayD<f32>> {
        self.tensors
            .iter()
            .zip(self.means)
            .filter_map(|(t, m)| m.and_then(RunningMean::finish).map(|a| (t.clone(), a)))
            .collect()
    }
}

/// The FP32 model's outputs and annotations of the samples seen so far, until they outgrow
/// [`KEPT_OUTPUTS_BYTES`] (then none are kept).
struct KeptOutputs {
    samples: Option<Vec<(Vec<Tensor>, Annotation)>>,
    bytes: usize,
    /// The model's own outputs, which come first among the session's outputs.
    model_outputs: usize,
}

impl KeptOutputs {
    fn new(model_outputs: usize) -> KeptOutputs {
        KeptOutputs {
            samples: Some(Vec::new()),
            bytes: 0,
            model_outputs,
        }
    }

    /// Keeps one batch's model outputs, split per sample, with their annotations.
    fn keep(&mut self, outputs: &[Tensor], annotations: Vec<Annotation>) {
        if let Some(kept) = &mut self.samples {
            let batch = annotations.len();
            self.bytes += outputs[..self.model_outputs]
                .iter()
                .map(|t| t.shape().iter().product::<usize>() * 4)
                .sum::<usize>();
            if self.bytes > KEPT_OUTPUTS_BYTES {
                self.samples = None;
            } else {
                for (row, annotation) in (0..batch).zip(annotations) {
                    let sample = outputs[..self.model_outputs]
                        .iter()
                        .map(|t| t.row(row))
                        .collect();
                    kept.push((sample, annotation));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_take_the_first_or_a_seeded_permutation() {
        let mut params = QuantizationParams {
            stat_subset_size: 4,
            ..Default::default()
        };
        assert_eq!(calibration_indices(10, &params), vec![0, 1, 2, 3]);
        assert_eq!(calibration_indices(2, &params), vec![0, 1]);
        params.shuffle_data = true;
        let a = calibration_indices(100, &params);
        assert_eq!(a, calibration_indices(100, &params), "same seed, same draw");
        assert_ne!(a, vec![0, 1, 2, 3]);
        params.seed = 1;
        assert_ne!(
            a,
            calibration_indices(100, &params),
            "another seed, another draw"
        );
    }
}
