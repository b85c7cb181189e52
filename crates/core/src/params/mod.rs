//! The parameters every front end fills: what the base algorithm and accuracy control compute
//! ([`QuantizationParams`], [`AccuracyControlParams`]: POT's config keys, NNCF's aliases, the command line's
//! flags) and how a run is carried out ([`RunOptions`]).
//!
//! They sit at the bottom of the core, above only the graph, data and engine boundary, so that every layer
//! that reads them (the op registry, placement, the base algorithm, the search, the jobs) imports them
//! downwards; nothing here runs a model.

mod accuracy_control;
mod precision;
mod quantization;
mod range;
mod run;

pub use accuracy_control::{
    AccuracyControlParams, DropType, MaxDrop, MetricTarget, RankingScore, RestoreMode,
};
pub use precision::Precision;
pub use quantization::{
    ActivationsParams, Deploy, Granularity, IgnoredScope, Mode, ModelType, OverflowFix, Preset,
    QuantizationParams, TargetDevice, WeightsParams,
};
pub use range::{Aggregator, Estimator, RangeEstimator, Statistic};
pub use run::{
    Levers, MemoryPlan, RunOptions, DEFAULT_LATENCY_RUNS, DEFAULT_REFERENCE_BUDGET,
    DEFAULT_SENSITIVITY_SAMPLES,
};
