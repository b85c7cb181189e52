//! The output directory of `aquant quantize` is the library's ([`aquant::output::OutputDir`]), shared with the
//! Python package so both write the same layout with the same guarantees.

pub use aquant::output::{OutputDir, OutputFormat};
