//! Every parameter of the library's schema ([`QuantizationParams`], [`AccuracyControlParams`], nested groups
//! included) has a config key, a flag, a default in the guide's reference table, and a did-you-mean entry.
//! The parameters are found by serialising the structs' defaults, so a field added to a struct is walked
//! without touching this test.

use aquant::quantize::QuantizationParams;
use aquant::search::AccuracyControlParams;
use clap::{Args, Command};
use serde_json::{json, Map, Value};

use super::QuantizeArgs;

/// The guide whose `params` tables give every parameter's default.
const GUIDE: &str = include_str!("../../../../docs/guide.md");

/// Each parameter's path (`weights.bits`) and default; groups (fields whose default is an object) are walked.
fn parameters() -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for defaults in [
        serde_json::to_value(QuantizationParams::default()).unwrap(),
        serde_json::to_value(AccuracyControlParams::default()).unwrap(),
    ] {
        walk(&defaults, "", &mut found);
    }
    found
}

fn walk(value: &Value, prefix: &str, found: &mut Vec<(String, Value)>) {
    for (key, value) in value.as_object().unwrap() {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(_) => walk(value, &path, found),
            _ => found.push((path, value.clone())),
        }
    }
}

/// `{"a": {"b": value}}` for the path `a.b`.
fn nested(path: &str, value: Value) -> Value {
    path.rsplit('.').fold(value, |inner, key| {
        Value::Object(Map::from_iter([(key.to_string(), inner)]))
    })
}

/// An accuracy-aware config whose params are `params`.
fn config(params: Value) -> String {
    json!({"model": {"model": "m.onnx"}, "engine": {"validation": "val.json"},
           "compression": {"algorithms": [{"name": "AccuracyAwareQuantization", "params": params}]}})
    .to_string()
}

#[test]
fn the_walk_finds_nested_parameters_of_both_structs() {
    let paths: Vec<String> = parameters().into_iter().map(|(path, _)| path).collect();
    for expected in [
        "preset",
        "weights.bits",
        "ignored_scope.types",
        "maximal_drop",
    ] {
        assert!(paths.iter().any(|p| p == expected), "{expected}: {paths:?}");
    }
}

#[test]
fn every_parameter_has_a_config_key() {
    for (path, default) in parameters() {
        let text = config(nested(&path, default));
        assert!(aquant::config::parse(&text).is_ok(), "{path}: {text}");
    }
}

#[test]
fn every_parameter_has_a_flag() {
    let command = QuantizeArgs::augment_args(Command::new("quantize"));
    let ids: Vec<&str> = command
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .collect();
    for (path, _) in parameters() {
        let id = path.replace('.', "_");
        assert!(
            ids.contains(&id.as_str()),
            "{path} has no flag with id `{id}`"
        );
    }
}

#[test]
fn every_parameter_has_a_default_in_the_guide() {
    let rows: Vec<Vec<&str>> = GUIDE
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| line.split(" | ").collect())
        .collect();
    for (path, _) in parameters() {
        let name = format!("`{path}`");
        let row = rows
            .iter()
            .find(|cells| cells[0].contains(&name))
            .unwrap_or_else(|| panic!("docs/guide.md has no row for {name}"));
        assert!(
            row.len() >= 3 && !row[1].trim().is_empty(),
            "{name}: no default in {row:?}"
        );
    }
}

#[test]
fn every_parameter_is_suggested_for_a_near_miss() {
    for (path, default) in parameters() {
        let (parent, name) = path.rsplit_once('.').unwrap_or(("", &path));
        let typo = &name[..name.len() - 1];
        let typo_path = if parent.is_empty() {
            typo.to_string()
        } else {
            format!("{parent}.{typo}")
        };
        let message = aquant::config::parse(&config(nested(&typo_path, default)))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(&format!("did you mean `{name}`?")),
            "{path}: {message}"
        );
    }
}
