//! Reading a parameter struct from JSON with the struct itself as the schema.
//!
//! serde's derive already knows every key a struct takes, aliases included (POT's and NNCF's spellings), and
//! hands that list to the error it raises for an unknown key (`unknown_field(key, expected)`). This module is a
//! deserializer over a [`serde_json::Value`] that keeps the JSON path of where it reads, with an error type of
//! its own, so every error names its path and an unknown key comes with the schema's own candidates for
//! "did you mean". No list of keys is kept by hand: a field added to a struct is known, checked and suggested.
//!
//! In a struct, `null` counts as absent (POT writes `"model_type": null`): a known key whose value is `null` takes
//! its default.

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

use super::error::ConfigError;
use super::suggest;

/// `value` (at `path`, empty for the root) read as `T`.
pub fn from_value<T: DeserializeOwned>(value: Value, path: &str) -> Result<T, ConfigError> {
    T::deserialize(Node {
        value,
        path: path.to_string(),
    })
    .map_err(SchemaError::into_config_error)
}

/// The keys the struct `T` takes, aliases included, as serde's derive lists them. Empty for a type that is not
/// a struct refusing unknown keys (`#[serde(deny_unknown_fields)]`), which has no closed set of keys.
pub fn keys<T: DeserializeOwned>() -> &'static [&'static str] {
    let probe = Value::Object(Map::from_iter([(PROBE.to_string(), Value::Bool(true))]));
    match T::deserialize(Node {
        value: probe,
        path: String::new(),
    }) {
        Err(SchemaError {
            kind: Kind::UnknownKey { expected, .. },
            ..
        }) => expected,
        _ => &[],
    }
}

/// A key no struct has.
const PROBE: &str = "\u{0}";

/// Why a value could not be read, and where (`None` until the deserializer that read it attaches its path).
#[derive(Debug)]
struct SchemaError {
    path: Option<String>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    UnknownKey {
        key: String,
        expected: &'static [&'static str],
    },
    Missing(&'static str),
    /// A field given twice, under its name and an alias.
    Duplicate(&'static str),
    Other(String),
}

impl SchemaError {
    /// The error, placed at `path` unless a deeper reader placed it already.
    fn at(mut self, path: &str) -> Self {
        self.path.get_or_insert_with(|| path.to_string());
        self
    }

    fn into_config_error(self) -> ConfigError {
        let path = self.path.unwrap_or_default();
        match self.kind {
            Kind::UnknownKey { key, expected } => ConfigError::UnknownKey {
                suggestion: suggest::nearest(&key, expected).map(str::to_string),
                path: join(&path, &key),
                key,
            },
            Kind::Missing(field) => ConfigError::Missing(join(&path, field)),
            Kind::Duplicate(field) => ConfigError::invalid(
                &path,
                format!("sets `{field}`, which is already given under another name: give it once"),
            ),
            Kind::Other(message) => ConfigError::WrongType {
                path: if path.is_empty() {
                    "(root)".into()
                } else {
                    path
                },
                message,
            },
        }
    }
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::UnknownKey { key, .. } => write!(f, "unknown key `{key}`"),
            Kind::Missing(field) => write!(f, "missing `{field}`"),
            Kind::Duplicate(field) => write!(f, "`{field}` given twice"),
            Kind::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for SchemaError {}

impl de::Error for SchemaError {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        SchemaError {
            path: None,
            kind: Kind::Other(message.to_string()),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        SchemaError {
            path: None,
            kind: Kind::UnknownKey {
                key: field.to_string(),
                expected,
            },
        }
    }

    fn missing_field(field: &'static str) -> Self {
        SchemaError {
            path: None,
            kind: Kind::Missing(field),
        }
    }

    fn duplicate_field(field: &'static str) -> Self {
        SchemaError {
            path: None,
            kind: Kind::Duplicate(field),
        }
    }
}

/// A JSON value and its path.
struct Node {
    value: Value,
    path: String,
}

impl<'de> de::Deserializer<'de> for Node {
    type Error = SchemaError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        let path = self.path;
        let result = match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_u64(u),
                (None, Some(i)) => visitor.visit_i64(i),
                (None, None) => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visitor.visit_seq(Items {
                items: items.into_iter().enumerate(),
                path: path.clone(),
            }),
            Value::Object(map) => visit_object(map, &path, false, visitor),
        };
        result.map_err(|e| e.at(&path))
    }

    /// A struct's `null` entries are absent, once their keys are checked.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SchemaError> {
        let map = match self.value {
            Value::Object(map) => map,
            other => {
                let message = format!("expected an object, found {}", kind(&other));
                return Err(SchemaError {
                    path: Some(self.path),
                    kind: Kind::Other(message),
                });
            }
        };
        let unknown = map
            .iter()
            .find(|(key, value)| value.is_null() && !fields.contains(&key.as_str()));
        if let Some((key, _)) = unknown {
            return Err(de::Error::unknown_field(key, fields))
                .map_err(|e: SchemaError| e.at(&self.path));
        }
        visit_object(map, &self.path, true, visitor).map_err(|e| e.at(&self.path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SchemaError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, SchemaError> {
        visitor.visit_newtype_struct(self)
    }

    /// Enums are spelt by name (`"preset": "mixed"`), as in POT.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SchemaError> {
        match self.value {
            Value::String(name) => visitor
                .visit_enum(name.into_deserializer())
                .map_err(|e: SchemaError| e.at(&self.path)),
            _ => self.deserialize_any(visitor),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

fn visit_object<'de, V: Visitor<'de>>(
    map: Map<String, Value>,
    path: &str,
    skip_null: bool,
    visitor: V,
) -> Result<V::Value, SchemaError> {
    let mut entries = Entries {
        entries: map.into_iter(),
        skip_null,
        pending: None,
        path: path.to_string(),
    };
    visitor.visit_map(&mut entries).map_err(|e| match e.kind {
        // The alias that repeated a field is the key just read.
        Kind::Duplicate(_) => e.at(&entries.pending_path()),
        _ => e,
    })
}

/// The elements of an array, each with its path.
struct Items {
    items: std::iter::Enumerate<std::vec::IntoIter<Value>>,
    path: String,
}

impl<'de> de::SeqAccess<'de> for Items {
    type Error = SchemaError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, SchemaError> {
        let Some((i, value)) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{i}]", self.path);
        seed.deserialize(Node { value, path }).map(Some)
    }
}

/// The entries of an object (`null` ones skipped for a struct).
struct Entries {
    entries: serde_json::map::IntoIter,
    skip_null: bool,
    /// The key just read and its value, not read yet.
    pending: Option<(String, Value)>,
    path: String,
}

impl Entries {
    fn pending_path(&self) -> String {
        self.pending
            .as_ref()
            .map_or(self.path.clone(), |(key, _)| join(&self.path, key))
    }
}

impl<'de> de::MapAccess<'de> for Entries {
    type Error = SchemaError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, SchemaError> {
        let skip_null = self.skip_null;
        let Some((key, value)) = self
            .entries
            .find(|(_, value)| !(skip_null && value.is_null()))
        else {
            return Ok(None);
        };
        let read = seed.deserialize(key.clone().into_deserializer())?;
        self.pending = Some((key, value));
        Ok(Some(read))
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, SchemaError> {
        let path = self.pending_path();
        let (_, value) = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("a value without its key"))?;
        seed.deserialize(Node { value, path })
    }
}

/// What a JSON value is, in words.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `key` inside the object at `path` (empty for the root).
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
