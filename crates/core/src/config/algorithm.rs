//! `compression.algorithms[0].params`: POT's parameter names mapped onto [`QuantizationParams`] and
//! [`AccuracyControlParams`].
//!
//! Only keys aquant honours are accepted: a POT key that would be read and then ignored is reported as unknown,
//! so nobody believes a setting took effect when it did not.

use serde_json::Value;

use super::error::ConfigError;
use super::fields::{typed, Fields};
use crate::quantize::{IgnoredScope, QuantizationParams, TargetDevice};
use crate::search::{AccuracyControlParams, MetricTarget};

/// POT's name of the base algorithm.
pub const DEFAULT_QUANTIZATION: &str = "DefaultQuantization";
/// POT's name of accuracy control.
pub const ACCURACY_AWARE_QUANTIZATION: &str = "AccuracyAwareQuantization";

const ALGORITHM_KEYS: &[&str] = &["name", "params"];
const BASE_KEYS: &[&str] = &[
    "preset",
    "stat_subset_size",
    "shuffle_data",
    "seed",
    "target_device",
    "model_type",
    "ignored",
    "weights",
    "activations",
    "fast_bias_correction",
    "use_fast_bias",
    "saturation_fix",
];
const CONTROL_KEYS: &[&str] = &[
    "maximal_drop",
    "drop_type",
    "ranking_subset_size",
    "max_iter_num",
    "use_prev_if_drop_increase",
    "base_algorithm",
    "convert_to_mixed_preset",
    "metrics",
    "metric_subset_ratio",
    "tune_hyperparams",
    "restore_mode",
];
const IGNORED_KEYS: &[&str] = &["scope", "operations"];
const OPERATION_KEYS: &[&str] = &["type"];
const WEIGHTS_KEYS: &[&str] = &["bits", "mode", "granularity", "level_low", "level_high"];
const ACTIVATIONS_KEYS: &[&str] = &["bits", "mode", "range_estimator"];
const METRIC_KEYS: &[&str] = &["name", "baseline_value"];

/// The one algorithm of a config, read.
pub struct Algorithm {
    /// Base-algorithm parameters.
    pub quantization: QuantizationParams,
    /// `Some` for AccuracyAwareQuantization.
    pub accuracy_control: Option<AccuracyControlParams>,
}

/// Reads `{"name": ..., "params": {...}}` at `path`; `target_device` is the compression section's.
pub fn read(
    value: Value,
    path: &str,
    target_device: Option<TargetDevice>,
) -> Result<Algorithm, ConfigError> {
    let mut algorithm = Fields::new(value, path, ALGORITHM_KEYS)?;
    let name: String = algorithm.require("name")?;
    let accuracy_aware = match name.as_str() {
        DEFAULT_QUANTIZATION => false,
        ACCURACY_AWARE_QUANTIZATION => true,
        other => {
            return Err(ConfigError::invalid(
                &algorithm.path_of("name"),
                format!(
                    "unknown algorithm '{other}' ({DEFAULT_QUANTIZATION} or {ACCURACY_AWARE_QUANTIZATION})"
                ),
            ))
        }
    };
    let known: Vec<&str> = if accuracy_aware {
        BASE_KEYS.iter().chain(CONTROL_KEYS).copied().collect()
    } else {
        BASE_KEYS.to_vec()
    };
    let params_path = algorithm.path_of("params");
    let mut params = match algorithm.raw("params") {
        Some(value) => Fields::new(value, &params_path, &known)?,
        None => Fields::new(Value::Object(Default::default()), &params_path, &known)?,
    };
    let quantization = quantization(&mut params, target_device)?;
    let accuracy_control = if accuracy_aware {
        Some(accuracy_control(&mut params)?)
    } else {
        None
    };
    Ok(Algorithm {
        quantization,
        accuracy_control,
    })
}

/// A target device name; GNA is refused with its reason.
pub fn target_device(value: Value, path: &str) -> Result<TargetDevice, ConfigError> {
    if value.as_str() == Some("GNA") {
        return Err(ConfigError::invalid(
            path,
            "GNA needs 16-bit quantization, which tract 0.23.9 cannot execute",
        ));
    }
    typed(value, path)
}

fn quantization(
    params: &mut Fields,
    compression_device: Option<TargetDevice>,
) -> Result<QuantizationParams, ConfigError> {
    let mut q = QuantizationParams::default();
    if let Some(v) = params.get("preset")? {
        q.preset = v;
    }
    if let Some(v) = params.get("stat_subset_size")? {
        q.stat_subset_size = v;
    }
    if let Some(v) = params.get("shuffle_data")? {
        q.shuffle_data = v;
    }
    if let Some(v) = params.get("seed")? {
        q.seed = v;
    }
    let device_path = params.path_of("target_device");
    let device = params
        .raw("target_device")
        .map(|v| target_device(v, &device_path))
        .transpose()?;
    q.target_device = match (compression_device, device) {
        (Some(a), Some(b)) if a != b => {
            return Err(ConfigError::invalid(
                &device_path,
                "differs from compression.target_device; give it once",
            ))
        }
        (a, b) => b.or(a).unwrap_or_default(),
    };
    q.model_type = params.get("model_type")?;
    if let Some(ignored) = params.object("ignored", IGNORED_KEYS)? {
        q.ignored_scope = ignored_scope(ignored)?;
    }
    if let Some(mut weights) = params.object("weights", WEIGHTS_KEYS)? {
        let w = &mut q.weights;
        if let Some(v) = weights.get("bits")? {
            w.bits = v;
        }
        if let Some(v) = weights.get("mode")? {
            w.mode = v;
        }
        if let Some(v) = weights.get("granularity")? {
            w.granularity = v;
        }
        w.level_low = weights.get("level_low")?;
        w.level_high = weights.get("level_high")?;
    }
    if let Some(mut activations) = params.object("activations", ACTIVATIONS_KEYS)? {
        let a = &mut q.activations;
        if let Some(v) = activations.get("bits")? {
            a.bits = v;
        }
        a.mode = activations.get("mode")?;
        a.range_estimator = activations.get("range_estimator")?;
    }
    if params.has("fast_bias_correction") && params.has("use_fast_bias") {
        return Err(ConfigError::invalid(
            &params.path_of("use_fast_bias"),
            "give one of use_fast_bias and fast_bias_correction (they are the same setting)",
        ));
    }
    if let Some(v) = params.get("fast_bias_correction")? {
        q.fast_bias_correction = v;
    }
    if let Some(v) = params.get("use_fast_bias")? {
        q.fast_bias_correction = v;
    }
    // POT's `saturation_fix`: first_layer | all | no (NNCF's spellings are accepted too).
    q.overflow_fix = params.get("saturation_fix")?;
    q.validate()
        .map_err(|e| ConfigError::rejected(params.path(), e))?;
    Ok(q)
}

/// POT's `ignored`: `scope` lists node names, `operations` lists `{"type": OP}`.
fn ignored_scope(mut ignored: Fields) -> Result<IgnoredScope, ConfigError> {
    let names = ignored.get("scope")?.unwrap_or_default();
    let types = ignored
        .list("operations")?
        .into_iter()
        .map(|(path, value)| Fields::new(value, &path, OPERATION_KEYS)?.require("type"))
        .collect::<Result<Vec<String>, _>>()?;
    Ok(IgnoredScope {
        names,
        patterns: Vec::new(),
        types,
    })
}

fn accuracy_control(params: &mut Fields) -> Result<AccuracyControlParams, ConfigError> {
    let mut c = AccuracyControlParams::default();
    if let Some(v) = params.get("maximal_drop")? {
        c.maximal_drop = v;
    }
    if let Some(v) = params.get("drop_type")? {
        c.drop_type = v;
    }
    c.ranking_subset_size = params.get("ranking_subset_size")?;
    c.max_iter_num = params.get("max_iter_num")?;
    if let Some(v) = params.get("use_prev_if_drop_increase")? {
        c.use_prev_if_drop_increase = v;
    }
    if let Some(base) = params.get::<String>("base_algorithm")? {
        if base != DEFAULT_QUANTIZATION {
            return Err(ConfigError::invalid(
                &params.path_of("base_algorithm"),
                format!("'{base}': the only base algorithm is {DEFAULT_QUANTIZATION}"),
            ));
        }
    }
    if let Some(v) = params.get("convert_to_mixed_preset")? {
        c.convert_to_mixed_preset = v;
    }
    c.metrics = params
        .list("metrics")?
        .into_iter()
        .map(|(path, value)| {
            let mut metric = Fields::new(value, &path, METRIC_KEYS)?;
            Ok(MetricTarget {
                name: metric.require("name")?,
                baseline_value: metric.get("baseline_value")?,
            })
        })
        .collect::<Result<_, ConfigError>>()?;
    if let Some(v) = params.get("metric_subset_ratio")? {
        c.metric_subset_ratio = v;
    }
    if let Some(v) = params.get("tune_hyperparams")? {
        c.tune_hyperparams = v;
    }
    if let Some(v) = params.get("restore_mode")? {
        c.restore_mode = v;
    }
    c.validate()
        .map_err(|e| ConfigError::rejected(params.path(), e))?;
    Ok(c)
}
