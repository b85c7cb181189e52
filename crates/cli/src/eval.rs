//! `aquant eval`: the metric of one model on one dataset.

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Instant;

use anyhow::{Context, Result};
use aquant::{Evaluator, Graph};
use clap::Args;

use crate::engine::Engine;
use crate::progress::Bars;

/// Arguments of `aquant eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// The ONNX model.
    #[arg(long)]
    model: PathBuf,
    /// The data spec (JSON) of the evaluation set.
    #[arg(long)]
    data: PathBuf,
    /// Metric: top1, top5, topK, agreement, mse, nmse.
    #[arg(long, default_value = "top1")]
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
    /// Inference engine.
    #[arg(long, value_enum, default_value_t)]
    backend: Engine,
    /// Hide progress bars.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `aquant eval`.
pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let model = Graph::load(&args.model)?.into_model();
    let reference = match &args.reference {
        Some(path) => Some(Graph::load(path)?.into_model()),
        None => None,
    };
    let dataset = aquant::open_dataset(&args.data)?;
    let metric = aquant::metric::builtin(&args.metric)?;
    let backend = args.backend.open()?;
    let progress = Bars::new(args.quiet || args.json);
    let evaluator = Evaluator::new(
        backend.as_ref(),
        dataset.as_ref(),
        vec![metric.as_ref()],
        reference.as_ref(),
        args.batch,
        &progress,
    )?;
    let count = args.limit.unwrap_or(dataset.len()).min(dataset.len());
    let indices: Vec<usize> = (0..count).collect();
    let start = Instant::now();
    let outputs = evaluator
        .outputs(&model, &indices, "evaluating")
        .with_context(|| format!("evaluating '{}'", args.model.display()))?;
    let mut evaluation = evaluator.score(&indices, &outputs)?;
    evaluation.seconds = start.elapsed().as_secs_f64();
    if args.json {
        let mut json = serde_json::json!({
            "metric": evaluation.metrics[0].name,
            "value": evaluation.value(),
            "samples": count,
            "seconds": evaluation.seconds,
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
        say!(
            "{} = {:.4} on {} samples ({:.1} samples/s, {:.2} s)",
            evaluation.metrics[0].name,
            evaluation.value(),
            count,
            count as f64 / evaluation.seconds.max(1e-9),
            evaluation.seconds
        );
    }
    Ok(ExitCode::SUCCESS)
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
