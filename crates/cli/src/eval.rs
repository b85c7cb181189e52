//! `aquant eval`: the metric of one model on one dataset.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use aquant::config::DataSource;
use aquant::{Evaluator, Graph};
use clap::Args;

use crate::progress::Bars;
use aquant_engines::EngineName;

/// Arguments of `aquant eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// POT-layout JSON config: evaluates its model on its validation set with its metrics.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// The ONNX model (with --config: instead of the config's model, e.g. the quantized one).
    #[arg(long, required_unless_present = "config")]
    model: Option<PathBuf>,
    /// The data spec (JSON) of the evaluation set.
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    data: Option<PathBuf>,
    /// Metric: top1, top5, topK, agreement, mse, nmse, f1_macro, auroc, map50, map50_95.
    #[arg(long, default_value = "top1", conflicts_with = "config")]
    metric: String,
    /// FP32 model that agreement/mse/nmse compare with.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Evaluate only the first N samples.
    #[arg(long)]
    limit: Option<usize>,
    /// Samples per inference batch.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// With --json: also list each sample's top-1 class (argmax of the first output).
    #[arg(long)]
    predictions: bool,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// Inference engine (auto: the engine of the model's format when it is found, else tract).
    #[arg(long, value_enum, default_value_t = EngineName::Tract)]
    backend: EngineName,
    /// Hide progress bars.
    #[arg(long, short)]
    quiet: bool,
}

/// The model, data and metrics to evaluate, from the flags or from a config.
struct Task {
    model: PathBuf,
    /// What agreement/mse/nmse compare with: --reference, else (with a config) the config's FP32 model.
    reference: Option<PathBuf>,
    data: DataSource,
    metrics: Vec<String>,
    /// The config's IR model and its `model.weights`, used wherever that model is loaded.
    weights: Option<(PathBuf, PathBuf)>,
    /// The config's `engine.device`.
    device: Option<String>,
}

impl Task {
    /// Loads `path`, with the config's weights when it is the config's IR model.
    fn load(&self, path: &std::path::Path) -> Result<aquant_onnx::ModelProto> {
        let weights = self
            .weights
            .as_ref()
            .filter(|(model, _)| model == path)
            .map(|(_, w)| w.as_path());
        Ok(Graph::load_with_weights(path, weights)?.into_model())
    }
}

impl EvalArgs {
    fn task(&self) -> Result<Task> {
        let Some(config) = &self.config else {
            return Ok(Task {
                model: self.model.clone().context("--model is required")?,
                reference: self.reference.clone(),
                data: DataSource::File(self.data.clone().context("--data is required")?),
                metrics: vec![self.metric.clone()],
                weights: None,
                device: None,
            });
        };
        let config = aquant::config::load(config)?;
        Ok(Task {
            model: self.model.clone().unwrap_or(config.model.clone()),
            reference: self.reference.clone().or(Some(config.model.clone())),
            weights: config.weights.map(|w| (config.model, w)),
            device: config.device,
            data: config
                .validation
                .context("the config has no validation dataset (engine.validation)")?,
            metrics: config.metrics,
        })
    }
}

/// Runs `aquant eval`.
pub fn run(args: EvalArgs) -> Result<u8> {
    let task = args.task()?;
    let model = task.load(&task.model)?;
    let reference = match &task.reference {
        Some(path) => Some(task.load(path)?),
        None => None,
    };
    let dataset = task.data.open()?;
    let metrics = task
        .metrics
        .iter()
        .map(|m| aquant::metric::builtin(m))
        .collect::<aquant::Result<Vec<_>>>()?;
    let format = aquant::output::OutputFormat::resolve(None, &task.model);
    let backend = args.backend.choose(format, task.device.as_deref())?.engine;
    let progress = Bars::new(args.quiet || args.json);
    let evaluator = Evaluator::new(
        backend.as_ref(),
        dataset.as_ref(),
        metrics.iter().map(|m| m.as_ref()).collect(),
        reference.as_ref(),
        args.batch,
        &progress,
    )?;
    let count = args.limit.unwrap_or(dataset.len()).min(dataset.len());
    let indices: Vec<usize> = (0..count).collect();
    let start = Instant::now();
    let outputs = evaluator
        .outputs(&model, &indices, "evaluating")
        .with_context(|| format!("evaluating '{}'", task.model.display()))?;
    let mut evaluation = evaluator.score(&model, &indices, &outputs)?;
    evaluation.seconds = start.elapsed().as_secs_f64();
    if args.json {
        let mut json = serde_json::json!({
            "metric": evaluation.metrics[0].name,
            "value": evaluation.value(),
            "samples": count,
            "seconds": evaluation.seconds,
            "metrics": evaluation.metrics.iter().map(|m| serde_json::json!({"name": m.name, "value": m.value})).collect::<Vec<_>>(),
        });
        if args.predictions {
            json["predictions"] = outputs
                .iter()
                .map(|(o, _)| top1(o))
                .collect::<Result<Vec<_>>>()?
                .into();
        }
        say!("{json}");
    } else {
        let values: Vec<String> = evaluation
            .metrics
            .iter()
            .map(|m| format!("{} = {:.4}", m.name, m.value))
            .collect();
        say!(
            "{} on {} samples ({:.1} samples/s, {:.2} s)",
            values.join(", "),
            count,
            count as f64 / evaluation.seconds.max(1e-9),
            evaluation.seconds
        );
    }
    Ok(0)
}

/// The top-1 class: argmax of the first output.
fn top1(outputs: &[aquant::Tensor]) -> Result<usize> {
    let first = outputs
        .first()
        .context("the model has no output")?
        .as_f32("first output")?;
    let values = first
        .as_slice()
        .context("the first output is not contiguous")?;
    Ok(aquant::metric::argmax(values))
}
