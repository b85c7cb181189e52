//! The `aquant` binary: the command line ([`aquant_cli::main`]) without Python, so without `--executor ray`.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(aquant_cli::main(
        std::env::args().collect(),
        &aquant_cli::NoExecutors,
    ))
}
