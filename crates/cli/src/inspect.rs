//! `aquant inspect`: what a model takes, returns, contains, and what aquant would quantize; for a QDQ model,
//! which int8 layers saturate on x86 CPUs without VNNI (`aquant::saturation`): from the weights alone, or
//! measured on `--data`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use aquant::graph::{Dim, Port};
use aquant::saturation::{self, KernelPath, SaturationReport};
use aquant::Graph;
use clap::Args;

use aquant_engines::EngineName;

/// Arguments of `aquant inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The ONNX model.
    model: PathBuf,
    /// Data spec (JSON): measure int16 saturation of a QDQ model's int8 layers on its samples.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Samples of --data measured.
    #[arg(long, default_value_t = 32)]
    samples: usize,
    /// Inference engine that computes the layers' inputs for --data (auto: ONNX Runtime when it is found, else
    /// tract).
    #[arg(long, value_enum, default_value_t = EngineName::Tract)]
    backend: EngineName,
}

fn describe(port: &Port) -> String {
    let shape = match &port.shape {
        Some(dims) => dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(v) => v.to_string(),
                Dim::Symbolic(s) if s.is_empty() => "?".into(),
                Dim::Symbolic(s) => s.clone(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        None => "unknown".into(),
    };
    format!("{} [{}] (elem type {})", port.name, shape, port.elem_type)
}

/// Runs `aquant inspect`.
pub fn run(args: InspectArgs) -> Result<u8> {
    let graph = Graph::load(&args.model)?;
    let quantized = graph.nodes().iter().any(|n| {
        matches!(
            n.op_type.as_deref(),
            Some("DequantizeLinear" | "QuantizeLinear")
        )
    });
    if args.data.is_some() && !quantized {
        anyhow::bail!("--data measures saturation of a quantized (QDQ) model; this model has no QuantizeLinear/DequantizeLinear");
    }
    say!("model: {}", args.model.display());
    say!("opset: {}", aquant_onnx::default_opset(graph.model()));
    for port in graph.inputs() {
        say!("input:  {}", describe(&port));
    }
    for port in graph.outputs() {
        say!("output: {}", describe(&port));
    }
    say!("nodes: {}", graph.nodes().len());
    for (op, count) in graph.op_counts() {
        say!("  {op:<24} {count}");
    }
    if quantized {
        let report = match &args.data {
            None => saturation::analyze_qdq_weights(&graph)?,
            Some(spec) => {
                let data = aquant::open_dataset(spec).context("--data")?;
                let backend = args.backend.open()?;
                saturation::analyze_qdq(
                    &graph,
                    backend.as_ref(),
                    Some(data.as_ref()),
                    args.samples,
                    1,
                )?
            }
        };
        print_saturation(&report);
        return Ok(0);
    }
    // Exactly what `aquant quantize` would quantize with default parameters.
    let placement = aquant::quantize::place(&graph, &Default::default())?;
    say!("quantizable nodes: {}", placement.nodes.len());
    for node in &placement.nodes {
        say!("  {} ({})", node.name, node.op_type);
    }
    Ok(0)
}

/// The saturation table: one line per int8 Conv/MatMul/Gemm.
fn print_saturation(report: &SaturationReport) {
    say!("int16 saturation without VNNI ({}):", report.kernel);
    if report.samples == 0 {
        say!("  weights only (worst case: every activation code 255); give --data SPEC.json to measure");
    } else {
        say!(
            "  measured on {} samples; at risk: rate (outputs touched by a saturated pair) > {}",
            report.samples,
            report.threshold
        );
    }
    say!(
        "  {:<48} {:<6} {:>5} {:>12} {:>9} {:>11} {:>11}  verdict",
        "node",
        "op",
        "act",
        "risky pairs",
        "worst",
        "rate",
        "pair rate"
    );
    for l in &report.layers {
        let act = if l.signed_activation { "s8+128" } else { "u8" };
        let (rate, pair_rate) = match l.measured {
            Some(c) => (
                format!("{:.3e}", c.output_rate()),
                format!("{:.3e}", c.pair_rate()),
            ),
            None => ("-".into(), "-".into()),
        };
        let verdict = match &l.kernel {
            KernelPath::Depthwise => "safe (depthwise: 32-bit products)".to_string(),
            KernelPath::NotModelled(why) => format!("not modelled ({why})"),
            KernelPath::PairwiseInt16 if l.at_risk(report.threshold) => "AT RISK".to_string(),
            KernelPath::PairwiseInt16 if !l.can_saturate() => {
                "safe (no weight pair can saturate)".to_string()
            }
            KernelPath::PairwiseInt16 => "ok".to_string(),
        };
        say!(
            "  {:<48} {:<6} {:>5} {:>12} {:>9} {:>11} {:>11}  {verdict}",
            l.node,
            l.op_type,
            act,
            format!("{}/{}", l.weights.risky_pairs, l.weights.pairs),
            l.weights.worst_pair_sum,
            rate,
            pair_rate
        );
    }
    say!("layers at risk: {}", report.at_risk().count());
}
