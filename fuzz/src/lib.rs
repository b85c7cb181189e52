//! The bodies of aquant's fuzz targets, as plain functions.
//!
//! `fuzz_targets/*.rs` are one-line libFuzzer wrappers around these (nightly, `cargo fuzz`). Keeping the bodies
//! here lets a stable `cargo test` replay the seeds and every regression input through exactly the code that was
//! fuzzed, on machines without nightly. A body returns quietly on any error (bad input is expected); it panics
//! only on a bug: a panic in aquant, or a broken invariant it asserts.
//!
#![deny(missing_docs)]

mod config;
mod data_spec;
mod fixture;
mod ir_load;
mod onnx_load;

pub use config::config;
pub use data_spec::data_spec;
pub use ir_load::ir_load;
pub use onnx_load::onnx_load;
