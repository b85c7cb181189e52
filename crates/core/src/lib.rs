//! aquant: accuracy-aware post-training INT8 quantization of ONNX models.
//!
//! The library is what the `aquant` binary drives: load a model into a [`Graph`], open a [`Dataset`],
//! pick a [`Metric`], run models through a [`Backend`] with an [`Evaluator`]. No module names an inference
//! engine; engines live in their own crates (`aquant-tract`).
#![deny(missing_docs)]

mod backend;
mod error;
mod eval;
mod executor;
mod heap;
mod profile;
mod progress;
mod runner;
mod tensor;

pub mod builder;
pub mod config;
pub mod cpu;
pub mod data;
pub mod graph;
pub mod job;
pub mod metric;
pub mod numerics;
pub mod ops;
pub mod output;
pub mod params;
pub mod pipeline;
pub mod quantize;
pub mod render;
pub mod runtime_library;
pub mod saturation;
pub mod search;
pub mod sensitivity;

pub use backend::{
    Backend, BackendChoice, ChosenBackend, EngineSettings, ExternalPlan, FloatOps, OutputSource,
    Session,
};
pub use cpu::CpuFeatures;
pub use data::{open_dataset, Annotation, DataSpec, Dataset, Sample};
pub use error::{Error, Result};
pub use eval::{EvaluatedModel, Evaluation, Evaluator, MetricValue};
pub use executor::{
    decode_samples, encode_samples, Blob, BlobKind, Executor, UnitValues, WorkUnit,
};
pub use graph::{Graph, Patch};
pub use metric::{Direction, Metric};
pub use profile::ProfileReport;
pub use progress::{NoProgress, Progress};
pub use runner::{run_batches, InputBinding};
pub use tensor::Tensor;
