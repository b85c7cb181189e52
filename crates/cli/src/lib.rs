//! The `aquant` command line: a thin front end over the `aquant` library.
//!
//! Exit status: 0 success, 1 accuracy target not met (the best model is still saved), 2 error. Errors print
//! one line, `error: <cause chain>`, on stderr.
//!
//! A library so that two front ends run the same parser and commands: the `aquant` binary, and the Python
//! package's `aquant` console script (through the extension `aquant._aquant`). They differ only in the
//! [`Executors`] they give: `--executor ray` needs Python, which only the console script has.

/// Prints a line on stdout, ignoring a closed pipe: `aquant inspect M | head` must not panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod eval;
mod inspect;
mod interrupt;
mod memory;
mod output;
mod progress;
mod quantize;
mod report;

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
    /// Quantize a model to INT8 (QDQ ONNX). `aquant quantize --resume OUT_DIR` continues an interrupted
    /// accuracy-aware run with its original arguments.
    Quantize(Box<quantize::QuantizeArgs>),
    /// Re-render a run's report.html from its report.json, or print a Markdown summary (--format md).
    Report(report::ReportArgs),
}

pub use quantize::{ExecutorSpec, Executors, NoExecutors};

/// Runs the command line `argv` (the program's name first) with `executors` for `--executor`; returns the
/// exit status.
pub fn main(argv: Vec<String>, executors: &dyn Executors) -> u8 {
    memory::return_large_frees_to_the_os();
    let (cli, resumed) = match quantize::resume_request(&argv[1..]) {
        Some(Ok(original)) => {
            let program = argv[0].clone();
            (
                Cli::parse_from(std::iter::once(program).chain(original)),
                true,
            )
        }
        Some(Err(error)) => {
            eprintln!("error: {error:#}");
            return 2;
        }
        None => (Cli::parse_from(&argv), false),
    };
    let result = match cli.command {
        Command::Eval(args) => eval::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Quantize(args) => quantize::run(*args, resumed, executors),
        Command::Report(args) => report::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            2
        }
    }
}
