//! `compression.algorithms[0]`: the algorithm's name, and its `params` read with [`QuantizationParams`] and
//! [`AccuracyControlParams`] as the schema.
//!
//! Only keys aquant honours are accepted: a POT key that would be read and then ignored is reported as unknown,
//! so nobody believes a setting took effect when it did not. The known keys are the structs' serde fields
//! (aliases included) plus the few keys that are about the config rather than the algorithm (`base_algorithm`,
//! and `target_device`, which may also sit in the compression section).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ConfigError;
use super::schema::{self, join};
use super::suggest;
use crate::job::Algorithm;
pub use crate::job::DEFAULT_QUANTIZATION;
use crate::quantize::{QuantizationParams, TargetDevice};
use crate::search::AccuracyControlParams;

/// POT's name of accuracy control.
pub const ACCURACY_AWARE_QUANTIZATION: &str = "AccuracyAwareQuantization";

/// The key naming AccuracyAwareQuantization's base algorithm: checked, never stored (there is one).
const BASE_ALGORITHM: &str = "base_algorithm";
/// The key of the target device, which the compression section may give instead.
const TARGET_DEVICE: &str = "target_device";

/// `{"name": ..., "params": {...}}`, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    params: Map<String, Value>,
}

/// Reads the algorithm at `path`; `compression_device` is the compression section's target device.
pub fn read(
    value: Value,
    path: &str,
    compression_device: Option<TargetDevice>,
) -> Result<Algorithm, ConfigError> {
    let Entry { name, mut params } = schema::from_value(value, path)?;
    let params_path = join(path, "params");
    let accuracy_aware = match name.as_str() {
        DEFAULT_QUANTIZATION => false,
        ACCURACY_AWARE_QUANTIZATION => true,
        other => {
            return Err(ConfigError::invalid(
                &join(path, "name"),
                format!(
                    "unknown algorithm '{other}' ({DEFAULT_QUANTIZATION} or {ACCURACY_AWARE_QUANTIZATION})"
                ),
            ))
        }
    };
    let control_keys = if accuracy_aware {
        schema::keys::<AccuracyControlParams>()
    } else {
        &[]
    };
    check_keys(&params, &params_path, accuracy_aware, control_keys)?;
    let device_path = join(&params_path, TARGET_DEVICE);
    let device = match params.remove(TARGET_DEVICE).filter(|v| !v.is_null()) {
        Some(value) => Some(target_device(value, &device_path)?),
        None => None,
    };
    let device = match (compression_device, device) {
        (Some(a), Some(b)) if a != b => {
            return Err(ConfigError::invalid(
                &device_path,
                "differs from compression.target_device; give it once",
            ))
        }
        (a, b) => b.or(a),
    };
    if let Some(base) = params.remove(BASE_ALGORITHM).filter(|v| !v.is_null()) {
        check_base_algorithm(base, &join(&params_path, BASE_ALGORITHM))?;
    }
    let control: Map<String, Value> = control_keys
        .iter()
        .filter_map(|key| params.remove_entry(*key))
        .collect();
    let mut quantization: QuantizationParams =
        schema::from_value(Value::Object(params), &params_path)?;
    if let Some(device) = device {
        quantization.target_device = device;
    }
    quantization
        .validate()
        .map_err(|e| ConfigError::rejected(&params_path, e))?;
    if !accuracy_aware {
        return Ok(Algorithm::Default(quantization));
    }
    let control: AccuracyControlParams = schema::from_value(Value::Object(control), &params_path)?;
    control
        .validate_for(&quantization)
        .map_err(|e| ConfigError::rejected(&params_path, e))?;
    Ok(Algorithm::AccuracyAware {
        quantization,
        control,
    })
}

/// Refuses the first key that is neither a parameter of the algorithm nor a config key, suggesting the nearest
/// one that is.
fn check_keys(
    params: &Map<String, Value>,
    path: &str,
    accuracy_aware: bool,
    control_keys: &[&'static str],
) -> Result<(), ConfigError> {
    let config_keys: &[&str] = if accuracy_aware {
        &[TARGET_DEVICE, BASE_ALGORITHM]
    } else {
        &[TARGET_DEVICE]
    };
    let known: Vec<&str> = schema::keys::<QuantizationParams>()
        .iter()
        .chain(control_keys)
        .chain(config_keys)
        .copied()
        .collect();
    match params.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(ConfigError::UnknownKey {
            key: key.clone(),
            path: join(path, key),
            suggestion: suggest::nearest(key, &known).map(str::to_string),
        }),
        None => Ok(()),
    }
}

/// A target device name (POT's spelling: `ANY`, `CPU`, `GNA`…).
pub fn target_device(value: Value, path: &str) -> Result<TargetDevice, ConfigError> {
    schema::from_value(value, path)
}

/// AccuracyAwareQuantization's base algorithm can only be DefaultQuantization.
fn check_base_algorithm(value: Value, path: &str) -> Result<(), ConfigError> {
    let base: String = schema::from_value(value, path)?;
    if base != DEFAULT_QUANTIZATION {
        return Err(ConfigError::invalid(
            path,
            format!("'{base}': the only base algorithm is {DEFAULT_QUANTIZATION}"),
        ));
    }
    Ok(())
}
