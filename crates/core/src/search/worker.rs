//! The far side of an [`Executor`](crate::executor::Executor): a worker that evaluates [`WorkUnit`]s from
//! the blobs it was sent, and what the search's side puts in those blobs ([`Setup`]).
//!
//! A worker holds what it received by key — FP32 models, setups (each rebuilt once into its quantized model),
//! samples — and the FP32 outputs of the samples it has scored against (per FP32 model and engine), so that a
//! metric comparing with the FP32 model runs the FP32 model once per sample and worker. Every candidate is
//! built from its setup exactly as the search's own lab builds it, so a unit's values are those the search
//! would compute itself (a test checks it). The worker knows neither engines nor metric code: its owner opens
//! them by name (the Python extension through `aquant-engines`, with the user's metric shipped beside it).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use aquant_onnx::ModelProto;

use crate::backend::Backend;
use crate::data::{Annotation, Dataset, Sample};
use crate::error::{Error, Result};
use crate::eval::{Evaluator, PreparedModel};
use crate::executor::{decode_samples, BlobKind, UnitValues, WorkUnit};
use crate::metric::Metric;
use crate::params::RestoreMode;
use crate::progress::NoProgress;
use crate::quantize::{self, FittedQuantizers, ModelForm, QuantizationParams, QuantizedModel};
use crate::search::ladder;
use crate::tensor::Tensor;

/// How the candidates of one quantized model are built and judged: everything a worker needs besides the FP32
/// model (by key) and the samples.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Setup {
    /// The key of the FP32 model's blob.
    pub model: String,
    /// The base algorithm's parameters (placement depends on them).
    pub params: QuantizationParams,
    /// The fitted quantizers: the quantized model, with the FP32 model and `params`.
    pub calibration: FittedQuantizers,
    /// What a revert returns to.
    pub restore_mode: RestoreMode,
    /// The form candidates are evaluated in: `None` the evaluation form, `Some(compress_weights)` the export
    /// form.
    pub export: Option<bool>,
    /// The judging engine's name and version: a worker with another version refuses the setup.
    pub engine: String,
    /// The engine's version on the search's side.
    pub engine_version: String,
    /// Samples per inference batch.
    pub batch_size: usize,
    /// The metrics' names, in the order units refer to them.
    pub metrics: Vec<String>,
}

impl Setup {
    fn form(&self) -> ModelForm {
        match self.export {
            Some(compress_weights) => ModelForm::Export { compress_weights },
            None => ModelForm::Evaluation,
        }
    }
}

/// Opens an engine by name, on the worker's machine.
pub type OpenEngine = Box<dyn Fn(&str) -> Result<Box<dyn Backend>> + Send + Sync>;
/// Opens a metric by name, on the worker's machine.
pub type OpenMetric = Box<dyn Fn(&str) -> Result<Box<dyn Metric>> + Send + Sync>;

/// A quantized model a worker can build candidates of.
struct Prepared {
    setup: Setup,
    quantized: QuantizedModel,
}

/// Evaluates work units from the blobs it received.
pub struct Worker {
    open_engine: OpenEngine,
    open_metric: OpenMetric,
    engines: HashMap<String, Box<dyn Backend>>,
    metrics: HashMap<String, Box<dyn Metric>>,
    models: HashMap<String, ModelProto>,
    setups: HashMap<String, Prepared>,
    samples: Held,
    /// FP32 outputs by (FP32 model key, engine name) and sample index.
    references: HashMap<(String, String), HashMap<usize, Vec<Tensor>>>,
    /// Every blob received: its kind, by key.
    loaded: HashMap<String, BlobKind>,
    /// The last candidates built and prepared, most recent last: a candidate's next shards usually come to
    /// the same worker, and building and preparing it costs more than a shard's inference.
    candidates: VecDeque<Candidate>,
}

/// Candidates kept prepared per worker.
const KEPT_CANDIDATES: usize = 3;

/// A candidate built and prepared: its setup key, its ladder entries, its model and session.
struct Candidate {
    setup: String,
    reverted: BTreeSet<String>,
    model: ModelProto,
    prepared: PreparedModel,
}

impl Worker {
    /// A worker with nothing received yet, opening engines and metrics with the given functions.
    pub fn new(open_engine: OpenEngine, open_metric: OpenMetric) -> Self {
        Worker {
            open_engine,
            open_metric,
            engines: HashMap::new(),
            metrics: HashMap::new(),
            models: HashMap::new(),
            setups: HashMap::new(),
            samples: Held::default(),
            references: HashMap::new(),
            loaded: HashMap::new(),
            candidates: VecDeque::new(),
        }
    }

    /// Whether the blob `key` was received.
    pub fn has(&self, key: &str) -> bool {
        self.loaded.contains_key(key)
    }

    /// How many blobs of each kind were received (`model`, `setup`, `samples`): what reached this worker.
    pub fn received(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for kind in self.loaded.values() {
            let name = match kind {
                BlobKind::Model => "model",
                BlobKind::Setup => "setup",
                BlobKind::Samples => "samples",
            };
            *counts.entry(name.to_owned()).or_insert(0) += 1;
        }
        counts
    }

    /// Takes in blob `key` of `kind`: decodes it (a setup is rebuilt into its quantized model, which needs its
    /// FP32 model received first). Receiving a key again does nothing.
    pub fn receive(&mut self, kind: BlobKind, key: &str, bytes: &[u8]) -> Result<()> {
        if self.has(key) {
            return Ok(());
        }
        match kind {
            BlobKind::Model => {
                let model = aquant_onnx::decode_model(bytes, key.as_ref())?;
                self.models.insert(key.to_owned(), model);
            }
            BlobKind::Setup => {
                let setup: Setup = serde_json::from_slice(bytes)
                    .map_err(|e| Error::Executor(format!("setup {key}: {e}")))?;
                let fp32 = self.models.get(&setup.model).ok_or_else(|| {
                    Error::Executor(format!(
                        "setup {key} needs model {}, not received",
                        setup.model
                    ))
                })?;
                let quantized = quantize::from_calibration(
                    fp32.clone(),
                    &setup.params,
                    setup.calibration.clone(),
                )?;
                self.setups
                    .insert(key.to_owned(), Prepared { setup, quantized });
            }
            BlobKind::Samples => {
                for (index, sample) in decode_samples(bytes)? {
                    self.samples.insert(index, sample);
                }
            }
        }
        self.loaded.insert(key.to_owned(), kind);
        Ok(())
    }

    /// The unit's values: its candidate built from its setup, run on its samples, scored by its metrics.
    pub fn run(&mut self, unit: &WorkUnit) -> Result<UnitValues> {
        let Worker {
            open_engine,
            open_metric,
            engines,
            metrics,
            models,
            setups,
            samples,
            references,
            candidates,
            ..
        } = self;
        let prepared = setups
            .get(&unit.setup)
            .ok_or_else(|| Error::Executor(format!("setup {} was not received", unit.setup)))?;
        let setup = &prepared.setup;
        let names = unit
            .metrics
            .iter()
            .map(|&m| {
                let name = setup.metrics.get(m);
                name.ok_or_else(|| Error::Executor(format!("no metric {m} in the setup")))
            })
            .collect::<Result<Vec<_>>>()?;
        open(open_engine, open_metric, engines, metrics, setup, &names)?;
        let chosen: Vec<&dyn Metric> = names.iter().map(|n| metrics[*n].as_ref()).collect();
        let fp32 = &models[&setup.model];
        let cache = references
            .entry((setup.model.clone(), setup.engine.clone()))
            .or_default();
        let engine = engines[&setup.engine].as_ref();
        let evaluator = Evaluator::new(
            engine,
            &*samples,
            chosen,
            Some(fp32),
            setup.batch_size,
            &NoProgress,
        )?;
        seed(&evaluator, cache, &unit.samples);
        let candidate = candidate(candidates, &evaluator, prepared, unit)?;
        let evaluation = evaluator.evaluate_prepared(
            &candidate.prepared,
            &candidate.model,
            &unit.samples,
            "work unit",
        )?;
        for &index in &unit.samples {
            if let Some(outputs) = evaluator.reference_outputs(index) {
                cache.entry(index).or_insert(outputs);
            }
        }
        Ok(UnitValues {
            id: unit.id,
            values: evaluation
                .metrics
                .into_iter()
                .map(|m| m.per_sample)
                .collect(),
        })
    }
}

/// The candidate of `unit`, from the kept ones or built from `prepared` and prepared on `evaluator`'s engine.
fn candidate<'c>(
    kept: &'c mut VecDeque<Candidate>,
    evaluator: &Evaluator,
    prepared: &Prepared,
    unit: &WorkUnit,
) -> Result<&'c Candidate> {
    let position = kept
        .iter()
        .position(|c| c.setup == unit.setup && c.reverted == unit.reverted);
    let candidate = match position.and_then(|p| kept.remove(p)) {
        Some(candidate) => candidate,
        None => {
            let setup = &prepared.setup;
            let precisions = ladder::precisions(&unit.reverted);
            let model =
                prepared
                    .quantized
                    .build_with(&precisions, setup.restore_mode, setup.form())?;
            Candidate {
                setup: unit.setup.clone(),
                reverted: unit.reverted.clone(),
                prepared: evaluator.prepared(&model)?,
                model,
            }
        }
    };
    if kept.len() == KEPT_CANDIDATES {
        kept.pop_front();
    }
    kept.push_back(candidate);
    Ok(kept.back().expect("pushed"))
}

/// Opens `setup`'s engine (checking its version against the search's) and the metrics `names`, once each (a
/// setup may name metrics that never leave the search: a `validation_fn`).
fn open(
    open_engine: &OpenEngine,
    open_metric: &OpenMetric,
    engines: &mut HashMap<String, Box<dyn Backend>>,
    metrics: &mut HashMap<String, Box<dyn Metric>>,
    setup: &Setup,
    names: &[&String],
) -> Result<()> {
    if !engines.contains_key(&setup.engine) {
        let engine = open_engine(&setup.engine)?;
        if engine.version() != setup.engine_version {
            return Err(Error::Executor(format!(
                "{} is version {} here, {} where the search runs: install the same version on every node",
                setup.engine,
                engine.version(),
                setup.engine_version
            )));
        }
        engines.insert(setup.engine.clone(), engine);
    }
    for &name in names {
        if !metrics.contains_key(name) {
            metrics.insert(name.clone(), open_metric(name)?);
        }
    }
    Ok(())
}

/// Gives `evaluator` the FP32 outputs `cache` holds for `indices`.
fn seed(evaluator: &Evaluator, cache: &HashMap<usize, Vec<Tensor>>, indices: &[usize]) {
    let (known, outputs): (Vec<usize>, Vec<(Vec<Tensor>, Annotation)>) = indices
        .iter()
        .filter_map(|i| cache.get(i).map(|o| (*i, (o.clone(), Annotation::None))))
        .unzip();
    evaluator.seed_reference(&known, &outputs);
}

/// The samples a worker received, by dataset index.
#[derive(Default)]
struct Held {
    samples: HashMap<usize, Arc<Sample>>,
    len: usize,
}

impl Held {
    fn insert(&mut self, index: usize, sample: Sample) {
        self.len = self.len.max(index + 1);
        self.samples.insert(index, Arc::new(sample));
    }
}

impl Dataset for Held {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Result<Sample> {
        self.samples
            .get(&index)
            .map(|s| s.as_ref().clone())
            .ok_or_else(|| Error::Executor(format!("sample {index} was not received")))
    }
}

/// An [`Executor`](crate::executor::Executor) of in-process [`Worker`]s, one thread each: the units are dealt
/// round robin, and a worker receives a blob the first time one of its units needs it. It runs the remote
/// path of the search without a cluster (tests compare it with the local search); a worker's
/// [`Worker::received`] tells what reached it.
pub struct LocalExecutor {
    workers: Vec<std::sync::Mutex<Worker>>,
    blobs: std::sync::Mutex<HashMap<String, crate::executor::Blob>>,
    shard_size: usize,
}

impl LocalExecutor {
    /// `workers` workers (at least one), each made by `make`, evaluating `shard_size` samples per unit.
    pub fn new(workers: usize, shard_size: usize, make: impl Fn() -> Worker) -> Self {
        LocalExecutor {
            workers: (0..workers.max(1))
                .map(|_| std::sync::Mutex::new(make()))
                .collect(),
            blobs: Default::default(),
            shard_size: shard_size.max(1),
        }
    }

    /// What each worker received ([`Worker::received`]).
    pub fn received(&self) -> Vec<BTreeMap<String, usize>> {
        self.workers
            .iter()
            .map(|w| w.lock().unwrap_or_else(|p| p.into_inner()).received())
            .collect()
    }

    /// Runs `units` on `worker`, receiving the blobs they need first.
    fn run_on(
        &self,
        worker: &std::sync::Mutex<Worker>,
        units: &[&WorkUnit],
    ) -> Result<Vec<UnitValues>> {
        let mut worker = worker.lock().unwrap_or_else(|p| p.into_inner());
        let mut answers = Vec::with_capacity(units.len());
        for unit in units {
            for key in &unit.blobs {
                if worker.has(key) {
                    continue;
                }
                let blob = self
                    .blobs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(key)
                    .cloned();
                let blob =
                    blob.ok_or_else(|| Error::Executor(format!("blob {key} was not published")))?;
                worker.receive(blob.kind, key, &blob.bytes)?;
            }
            answers.push(worker.run(unit)?);
        }
        Ok(answers)
    }
}

impl crate::executor::Executor for LocalExecutor {
    fn workers(&self) -> usize {
        self.workers.len()
    }

    fn shard_size(&self) -> usize {
        self.shard_size
    }

    fn publish(&self, blobs: &[crate::executor::Blob]) -> Result<()> {
        let mut held = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
        for blob in blobs {
            held.entry(blob.key.clone()).or_insert_with(|| blob.clone());
        }
        Ok(())
    }

    fn run(&self, units: Vec<WorkUnit>) -> Result<Vec<UnitValues>> {
        use rayon::prelude::*;
        let n = self.workers.len();
        let dealt: Vec<Vec<&WorkUnit>> = (0..n)
            .map(|w| units.iter().skip(w).step_by(n).collect())
            .collect();
        let answers: Vec<Result<Vec<UnitValues>>> = self
            .workers
            .par_iter()
            .zip(dealt)
            .map(|(worker, units)| self.run_on(worker, &units))
            .collect();
        let mut all = Vec::with_capacity(units.len());
        for answer in answers {
            all.extend(answer?);
        }
        Ok(all)
    }
}
