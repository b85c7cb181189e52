//! `aquant inspect`: what a model takes, returns, contains, and what aquant would quantize.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use aquant::graph::{Dim, Port};
use aquant::Graph;
use clap::Args;

/// Arguments of `aquant inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The ONNX model.
    model: PathBuf,
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
pub fn run(args: InspectArgs) -> Result<ExitCode> {
    let graph = Graph::load(&args.model)?;
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
    // Exactly what `aquant quantize` would quantize with default parameters.
    let placement = aquant::quantize::place(&graph, &Default::default())?;
    say!("quantizable nodes: {}", placement.nodes.len());
    for node in &placement.nodes {
        say!("  {} ({})", node.name, node.op_type);
    }
    Ok(ExitCode::SUCCESS)
}
