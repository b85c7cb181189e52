//! Jobs: an algorithm from start to report, as a front end runs it.
//!
//! The layers below compute (the base algorithm in `quantize`, the search in `search`); a job adds what a
//! finished run owes its user: the deployable model, the analyses of the saved model, the deployed check and
//! the report. It sits above the search, so the base algorithm never imports the search to check its result
//! where it is deployed. Two jobs: DefaultQuantization's (`quantize_default`) and accuracy control's
//! (`quantize_with_accuracy_control`: the base algorithm, then the search, then the analyses of the saved model).

mod accuracy_control;
mod default_quantization;
mod deployed;
mod front;
mod holdout;
mod memory;
mod run;

pub use accuracy_control::{quantize_with_accuracy_control, AccuracyControlOutcome};
pub use deployed::check_deployed;
pub use memory::{parse_bytes, MemoryNeeds};
pub use run::{run, Algorithm, Destination, Finished, Request};

pub use default_quantization::{
    quantize_default, DefaultOutcome, DefaultReport, DefaultTimings, DeployedTarget,
    OverflowFixApplied, DEFAULT_QUANTIZATION,
};
