//! Reading one JSON object of a config against the list of keys it may hold.
//!
//! Every object is checked against its known keys before any value is read, so a typo is reported with its
//! JSON path and the nearest known key instead of being silently ignored; values are then read one key at a
//! time, so a wrong type names the key's path too.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ConfigError;
use super::suggest;

/// The keys of one config object, read one at a time.
pub struct Fields {
    path: String,
    map: Map<String, Value>,
}

impl Fields {
    /// Checks that `value` (at `path`, empty for the root) is an object whose keys are all in `known`.
    pub fn new(value: Value, path: &str, known: &[&str]) -> Result<Fields, ConfigError> {
        let Value::Object(map) = value else {
            return Err(wrong_type(path, &value, "an object"));
        };
        if let Some(key) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ConfigError::UnknownKey {
                key: key.clone(),
                path: join(path, key),
                suggestion: suggest::nearest(key, known).map(str::to_string),
            });
        }
        Ok(Fields {
            path: path.to_string(),
            map,
        })
    }

    /// The JSON path of `key` in this object.
    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw value of `key`; `null` counts as absent (POT writes `"model_type": null`).
    pub fn raw(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    /// The value of `key` as `T`, if present.
    pub fn get<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, ConfigError> {
        let path = self.path_of(key);
        self.raw(key).map(|value| typed(value, &path)).transpose()
    }

    /// The value of a required `key` as `T`.
    pub fn require<T: DeserializeOwned>(&mut self, key: &str) -> Result<T, ConfigError> {
        let path = self.path_of(key);
        self.get(key)?.ok_or(ConfigError::Missing(path))
    }

    /// The object at `key`, checked against its own `known` keys.
    pub fn object(&mut self, key: &str, known: &[&str]) -> Result<Option<Fields>, ConfigError> {
        let path = self.path_of(key);
        self.raw(key)
            .map(|value| Fields::new(value, &path, known))
            .transpose()
    }

    /// The array at `key`, each element with its JSON path.
    pub fn list(&mut self, key: &str) -> Result<Vec<(String, Value)>, ConfigError> {
        let path = self.path_of(key);
        match self.raw(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, item)| (format!("{path}[{i}]"), item))
                .collect()),
            Some(other) => Err(wrong_type(&path, &other, "an array")),
        }
    }
}

/// `value` (at `path`) as `T`, or an error naming the path and what was expected.
pub fn typed<T: DeserializeOwned>(value: Value, path: &str) -> Result<T, ConfigError> {
    serde_json::from_value(value).map_err(|e| ConfigError::WrongType {
        path: path.to_string(),
        message: e.to_string(),
    })
}

fn wrong_type(path: &str, value: &Value, expected: &str) -> ConfigError {
    let found = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ConfigError::WrongType {
        path: if path.is_empty() { "(root)" } else { path }.to_string(),
        message: format!("expected {expected}, found {found}"),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
