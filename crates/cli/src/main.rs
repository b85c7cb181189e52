//! The `aquant` command line: a thin front end over the `aquant` library.
//!
//! Exit status: 0 success, 1 accuracy target not met (the best model is still saved), 2 error. Errors print
//! one line, `error: <cause chain>`, on stderr.

mod eval;
mod inspect;
mod output;
mod progress;
mod quantize;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Accuracy-aware post-training INT8 quantization of ONNX models.
#[derive(Parser)]
#[command(name = "aquant", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate a model on a dataset with a metric.
    Eval(eval::EvalArgs),
    /// List a model's inputs, outputs, op counts and quantizable nodes.
    Inspect(inspect::InspectArgs),
    /// Quantize a model to INT8 (QDQ ONNX).
    Quantize(Box<quantize::QuantizeArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => eval::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Quantize(args) => quantize::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
