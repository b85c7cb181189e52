//! Jobs: an algorithm from start to report, as a front end runs it.
//!
//! The layers below compute (the base algorithm in `quantize`, the search in `search`); a job adds what a
//! finished run owes its user: the deployable model, the analyses of the saved model, the deployed check and
//! the report. It sits above the search, so the base algorithm never imports the search to check its result
//! where it is deployed. Today it holds DefaultQuantization's job; accuracy control's entry point still lives
//! in `search::run`.

mod default_quantization;

pub use default_quantization::{
    quantize_default, DefaultOutcome, DefaultReport, DefaultTimings, DeployedTarget,
    OverflowFixApplied, DEFAULT_QUANTIZATION,
};
