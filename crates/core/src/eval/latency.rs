//! How long one inference takes: the deployed check's second measure beside accuracy, because a quantized
//! model exists to run faster, and whether it does depends on the engine's fusions and the CPU (without VNNI
//! an int8 kernel can be slower than FP32).
//!
//! Both models run one sample at a time (batch 1, what a latency-bound service runs) on the deployed engine
//! as it is configured ([`Backend::settings`]: one thread per inference), in two passes (FP32 then saved,
//! saved then FP32) so that a machine's drifting load touches both alike, each block of runs on the only
//! session alive, after a warm-up; the median of the timed runs is reported.
//! Where the engine picks its own threads ([`Backend::at_default_threads`]) both are timed that way too: a
//! service deployed with the engine's defaults runs so, and int8 kernels do not scale with threads as float
//! ones do. A measured figure, not a result: it is never journaled or compared in tests.
//!
//! The accuracy / size / latency front times each of its models the same way ([`measure_each`]: the same
//! passes, warm-up and median), at the engine's default threads only, a few models at a time so that the
//! models waiting to be timed stay few beside the run.

use std::sync::Arc;
use std::time::Instant;

use aquant_onnx::ModelProto;
use serde::Serialize;

use crate::backend::{Backend, FloatOps, Session};
use crate::data::Dataset;
use crate::error::Result;
use crate::runner::InputBinding;
use crate::tensor::Tensor;

/// Untimed runs of each session before its timed ones (first-run allocation, caches, lazy kernel choice).
const WARM_UP: usize = 5;
/// Most models of a front timed together: in passes against drift, few enough that the exported models
/// held for it stay small.
const TIMED_TOGETHER: usize = 4;

/// The weight bytes of the models timed together, past which fewer are: each holds a copy of its weights
/// until it is timed, so a large model's front is timed a model or two at a time (issue #27).
const TIMED_TOGETHER_BYTES: usize = 512 << 20;

/// How many models of `weight_bytes` (FP32) each [`measure_each`] is given at once: up to [`TIMED_TOGETHER`],
/// as many as fit in [`TIMED_TOGETHER_BYTES`], at least one.
pub fn timed_together(weight_bytes: usize) -> usize {
    (TIMED_TOGETHER_BYTES / weight_bytes.max(1)).clamp(1, TIMED_TOGETHER)
}

/// The FP32 and the saved model's median time of one inference, under one setting of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timing {
    /// Median milliseconds of one FP32 inference.
    pub fp32_ms: f64,
    /// Median milliseconds of one inference of the saved model.
    pub int8_ms: f64,
    /// `fp32_ms / int8_ms`: above 1, the saved model is faster.
    pub speedup: f64,
}

impl Timing {
    fn of(fp32_ms: f64, int8_ms: f64) -> Timing {
        Timing {
            fp32_ms,
            int8_ms,
            speedup: fp32_ms / int8_ms,
        }
    }
}

/// The FP32 and the saved model's latency on one engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// At one thread per inference, as the engine judged the model.
    #[serde(flatten)]
    pub one_thread: Timing,
    /// At the engine's default threads (`None`: the engine has no such choice).
    pub default_threads: Option<Timing>,
    /// Timed runs of each model (after [`WARM_UP`] untimed ones).
    pub runs: usize,
    /// Samples per run.
    pub batch: usize,
    /// The saved model's nodes the engine still computes in float (`None`: the engine does not show its
    /// optimized graph): why a saved model is not faster, when it is not.
    pub float_ops: Option<FloatOps>,
}

/// Times `fp32` and `saved` on `engine` on the first sample of `data`, `runs` times each, at one thread and at
/// the engine's default threads, and reads the engine's float nodes of `saved` (`None` for 0 runs).
pub fn measure_latency(
    engine: &dyn Backend,
    fp32: &ModelProto,
    saved: &ModelProto,
    data: &dyn Dataset,
    runs: usize,
) -> Result<Option<Latency>> {
    if runs == 0 {
        return Ok(None);
    }
    let inputs = InputBinding::from_model(saved)?.bind(data.get(0)?, 0)?;
    let one_thread = time_both(engine, [fp32, saved], &inputs, runs)?;
    let default_threads = match engine.at_default_threads()? {
        Some(engine) => Some(time_both(engine.as_ref(), [fp32, saved], &inputs, runs)?),
        None => None,
    };
    Ok(Some(Latency {
        one_thread,
        default_threads,
        runs,
        batch: 1,
        float_ops: engine.float_ops(saved)?,
    }))
}

/// The median times of `models` (FP32, saved) on `engine` ([`time_in_passes`]).
fn time_both(
    engine: &dyn Backend,
    models: [&ModelProto; 2],
    inputs: &[Tensor],
    runs: usize,
) -> Result<Timing> {
    let medians = time_in_passes(engine, &models, inputs, runs)?;
    Ok(Timing::of(medians[0], medians[1]))
}

/// Each of `models`' median milliseconds of one inference on `engine`, timed in two passes: in order, then in
/// reverse order (A B C, C B A), half the runs each, so that a drift in the machine's speed touches every model
/// alike. Each block of runs has the only session alive, prepared and warmed up for it (the middle model's two
/// blocks, back to back, share one): sessions with thread pools of their own slow each other down while they
/// are alive together, as their idle workers spin waiting for work after each run. MobileNetV2 on ONNX
/// Runtime 1.32 at its default threads, 2 cores: FP32 3.9 ms and INT8 2.6 ms alone, 4.8 and 3.3 ms when the
/// two sessions were run interleaved run by run, as they were timed before.
fn time_in_passes(
    engine: &dyn Backend,
    models: &[&ModelProto],
    inputs: &[Tensor],
    runs: usize,
) -> Result<Vec<f64>> {
    let passes = (0..models.len())
        .map(|m| (m, runs.div_ceil(2)))
        .chain((0..models.len()).rev().map(|m| (m, runs / 2)));
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); models.len()];
    let mut alive: Option<(usize, Arc<dyn Session>)> = None;
    for (model, block) in passes.filter(|&(_, block)| block > 0) {
        let session = match alive.take() {
            Some((m, session)) if m == model => session,
            last => {
                // Gone before the next is prepared: its engine threads with it.
                drop(last);
                warmed_up(engine, models[model], inputs)?
            }
        };
        for _ in 0..block {
            let start = Instant::now();
            session.run(batch_of_one(inputs)?)?;
            times[model].push(start.elapsed().as_secs_f64() * 1e3);
        }
        alive = Some((model, session));
    }
    Ok(times.into_iter().map(median).collect())
}

/// `model` prepared on `engine` and run [`WARM_UP`] times.
fn warmed_up(
    engine: &dyn Backend,
    model: &ModelProto,
    inputs: &[Tensor],
) -> Result<Arc<dyn Session>> {
    let session = engine.prepare(model, &[])?;
    for _ in 0..WARM_UP {
        session.run(batch_of_one(inputs)?)?;
    }
    Ok(session)
}

/// Each of `models`' median milliseconds of one inference on `engine` at its default threads (as configured,
/// when it has no such choice), batch 1, on the first sample of `data`, `runs` timed runs each (`None` for 0
/// runs), timed in passes ([`time_in_passes`]): the latency axis of the accuracy / size / latency front,
/// given [`timed_together`] models at a time.
pub fn measure_each(
    engine: &dyn Backend,
    models: &[ModelProto],
    data: &dyn Dataset,
    runs: usize,
) -> Result<Option<Vec<f64>>> {
    let Some(first) = models.first().filter(|_| runs > 0) else {
        return Ok(None);
    };
    let inputs = InputBinding::from_model(first)?.bind(data.get(0)?, 0)?;
    let default_threads = engine.at_default_threads()?;
    let engine = default_threads.as_deref().unwrap_or(engine);
    let models: Vec<&ModelProto> = models.iter().collect();
    Ok(Some(time_in_passes(engine, &models, &inputs, runs)?))
}

/// One sample's bound inputs as a batch of one (a fresh copy per run: sessions take their inputs).
fn batch_of_one(inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    inputs.iter().map(|t| Tensor::concat_rows(&[t])).collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() % 2 {
        1 => values[middle],
        _ => (values[middle - 1] + values[middle]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use aquant_onnx::GraphProto;

    use super::*;
    use crate::backend::EngineSettings;

    /// An engine that records each run: the model's graph name and how many sessions were alive.
    #[derive(Default)]
    struct Recording {
        alive: Arc<AtomicUsize>,
        runs: Arc<Mutex<Vec<(String, usize)>>>,
    }

    struct RecordingSession {
        model: String,
        alive: Arc<AtomicUsize>,
        runs: Arc<Mutex<Vec<(String, usize)>>>,
    }

    impl Backend for Recording {
        fn name(&self) -> &str {
            "recording"
        }
        fn version(&self) -> String {
            "0".into()
        }
        fn prepare(&self, model: &ModelProto, _: &[String]) -> Result<Arc<dyn Session>> {
            self.alive.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(RecordingSession {
                model: model
                    .graph
                    .as_ref()
                    .and_then(|g| g.name.clone())
                    .unwrap_or_default(),
                alive: self.alive.clone(),
                runs: self.runs.clone(),
            }))
        }
        fn settings(&self) -> EngineSettings {
            EngineSettings {
                threads: Some(1),
                precision_hint: None,
                optimization: None,
            }
        }
    }

    impl Session for RecordingSession {
        fn run(&self, _: Vec<Tensor>) -> Result<Vec<Tensor>> {
            let alive = self.alive.load(Ordering::SeqCst);
            self.runs.lock().unwrap().push((self.model.clone(), alive));
            Ok(Vec::new())
        }
    }

    impl Drop for RecordingSession {
        fn drop(&mut self) {
            self.alive.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn named(name: &str) -> ModelProto {
        ModelProto {
            graph: Some(GraphProto {
                name: Some(name.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn models_are_timed_in_two_passes_each_block_on_the_only_session_alive() {
        let engine = Recording::default();
        let models = [named("a"), named("b"), named("c")];
        let models: Vec<&ModelProto> = models.iter().collect();
        let medians = time_in_passes(&engine, &models, &[], 5).unwrap();
        assert_eq!(medians.len(), 3);
        let runs = engine.runs.lock().unwrap().clone();
        assert!(runs.iter().all(|(_, alive)| *alive == 1), "{runs:?}");
        let mut blocks: Vec<(String, usize)> = Vec::new();
        for (model, _) in &runs {
            match blocks.last_mut() {
                Some((last, count)) if last == model => *count += 1,
                _ => blocks.push((model.clone(), 1)),
            }
        }
        // a and b: warm-up and 3 timed runs, then warm-up again and 2; c: its two blocks on one session.
        let expected = [("a", 8), ("b", 8), ("c", 10), ("b", 7), ("a", 7)];
        let expected: Vec<(String, usize)> =
            expected.iter().map(|(m, n)| (m.to_string(), *n)).collect();
        assert_eq!(blocks, expected);
        assert_eq!(engine.alive.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
