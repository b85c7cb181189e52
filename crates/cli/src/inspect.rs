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
    println!("model: {}", args.model.display());
    println!("opset: {}", aquant_onnx::default_opset(graph.model()));
    for port in graph.inputs() {
        println!("input:  {}", describe(&port));
    }
    for port in graph.outputs() {
        println!("output: {}", describe(&port));
    }
    println!("nodes: {}", graph.nodes().len());
    for (op, count) in graph.op_counts() {
        println!("  {op:<24} {count}");
    }
    let quantizable: Vec<_> = graph
        .nodes()
        .iter()
        .filter(|n| aquant::ops::is_quantizable(&graph, n))
        .collect();
    println!("quantizable nodes: {}", quantizable.len());
    for node in quantizable {
        println!(
            "  {} ({})",
            node.name.as_deref().unwrap_or(""),
            node.op_type.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
