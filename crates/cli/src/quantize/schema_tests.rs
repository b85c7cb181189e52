//! Every parameter of the library's schema ([`QuantizationParams`], [`AccuracyControlParams`], nested groups
//! included) has a config key, a flag, a did-you-mean entry and a row in the guide's reference tables whose
//! default is the schema's (where the schema has a value; a default the library computes is described in words);
//! every value a row of the guide says is refused is refused by the config parser.
//! The parameters are found by serialising the structs' defaults, so a field added to a struct is walked
//! without touching this test; the flags are the ones `aquant quantize` really has (the structs derive them),
//! and the flags spanning them (`--config`'s conflicts, `--val`'s requirement) are checked too.

use aquant::quantize::QuantizationParams;
use aquant::search::AccuracyControlParams;
use clap::error::ErrorKind;
use clap::{Arg, Args, Command, FromArgMatches};
use serde_json::{json, Map, Value};

use super::{QuantizeArgs, CONTROL};

/// The guide whose `params` tables give every parameter's default.
const GUIDE: &str = include_str!("../../../../docs/guide.md");

/// Each parameter's path (`weights.bits`) and default; groups (fields whose default is an object) are walked.
fn parameters() -> Vec<(String, Value)> {
    let mut found = quantization_parameters();
    found.extend(control_parameters());
    found
}

fn quantization_parameters() -> Vec<(String, Value)> {
    let mut found = Vec::new();
    walk(
        &serde_json::to_value(QuantizationParams::default()).unwrap(),
        "",
        &mut found,
    );
    found
}

fn control_parameters() -> Vec<(String, Value)> {
    let mut found = Vec::new();
    walk(
        &serde_json::to_value(AccuracyControlParams::default()).unwrap(),
        "",
        &mut found,
    );
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

/// `aquant quantize`'s command, built (groups complete) as when it parses.
fn command() -> Command {
    let mut command = QuantizeArgs::augment_args(Command::new("quantize"));
    command.build();
    command
}

/// The flag of the parameter at `path`: its id is the path joined by `_` (`weights_bits`).
fn flag<'a>(command: &'a Command, path: &str) -> &'a Arg {
    let id = path.replace('.', "_");
    let flag = command.get_arguments().find(|a| a.get_id() == id.as_str());
    flag.unwrap_or_else(|| panic!("{path} has no flag with id `{id}`"))
}

fn parse(argv: &[&str]) -> Result<QuantizeArgs, clap::Error> {
    let argv = std::iter::once("quantize").chain(argv.iter().copied());
    QuantizeArgs::from_arg_matches(&command().try_get_matches_from(argv)?)
}

#[test]
fn every_parameter_has_a_flag() {
    let command = command();
    for (path, _) in parameters() {
        assert!(
            flag(&command, &path).get_long().is_some(),
            "{path}: no --flag"
        );
    }
}

#[test]
fn every_parameter_flag_conflicts_with_config() {
    let command = command();
    let config = command.get_arguments().find(|a| a.get_id() == "config");
    let conflicts = command.get_arg_conflicts_with(config.unwrap());
    for (path, _) in parameters() {
        let id = flag(&command, &path).get_id();
        assert!(
            conflicts.iter().any(|a| a.get_id() == id),
            "--config does not conflict with {path}'s flag"
        );
    }
}

#[test]
fn every_control_flag_needs_a_validation_set() {
    let command = command();
    let group = command.get_groups().find(|g| g.get_id() == CONTROL);
    let members: Vec<_> = group.unwrap().get_args().collect();
    for (path, _) in control_parameters() {
        let id = flag(&command, &path).get_id();
        assert!(
            members.contains(&id),
            "{path}'s flag is not in the group that requires --val"
        );
    }
    for (path, _) in quantization_parameters() {
        let id = flag(&command, &path).get_id();
        assert!(
            !members.contains(&id),
            "{path} is not an accuracy-control parameter"
        );
    }
    let job = ["--model", "m.onnx", "--calib", "c.json", "-o", "out"];
    let error = parse(&[&job[..], &["--max-drop", "0.1"]].concat())
        .err()
        .unwrap();
    assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
    assert!(parse(&[&job[..], &["--max-drop", "0.1", "--val", "v.json"]].concat()).is_ok());
}

/// Defaults are not "given": `--config` alone parses, a parameter flag beside it does not, even at its default.
#[test]
fn config_conflicts_with_parameter_flags_given_only() {
    assert!(parse(&["--config", "x.json"]).is_ok());
    for flag in [
        &["--max-drop", "0.1"][..],
        &["--weights-bits", "8"],
        &["--preset", "performance"],
        &["--no-fast-bias-correction"],
        &["--fallback", "fp32"],
    ] {
        let error = parse(&[&["--config", "x.json"][..], flag].concat()).err();
        assert_eq!(
            error.map(|e| e.kind()),
            Some(ErrorKind::ArgumentConflict),
            "{flag:?}"
        );
    }
}

#[test]
fn flags_not_given_leave_the_library_defaults() {
    let args = parse(&["--model", "m.onnx", "--calib", "c.json", "-o", "out"]).unwrap();
    assert_eq!(args.quantization, QuantizationParams::default());
    assert_eq!(args.control, AccuracyControlParams::default());
}

/// The cells of the guide's table rows that start with a backticked name (`| `key` | default | meaning |`).
fn guide_rows() -> Vec<Vec<&'static str>> {
    GUIDE
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| line.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect()
}

/// The backticked names of a cell, in order.
fn backticked(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// The guide's row for the parameter at `path` and the default it gives that parameter: a row naming several
/// parameters (`weights.bits`, `weights.mode`) gives their defaults in the same order, comma-separated.
fn guide_default(path: &str) -> (Vec<&'static str>, String) {
    let paths: Vec<String> = parameters().into_iter().map(|(p, _)| p).collect();
    let row = guide_rows()
        .into_iter()
        .find(|cells| backticked(cells[0]).contains(&path))
        .unwrap_or_else(|| panic!("docs/guide.md has no row for `{path}`"));
    assert!(row.len() >= 3, "`{path}`: no default in {row:?}");
    let keys: Vec<&str> = backticked(row[0])
        .into_iter()
        .filter(|k| paths.iter().any(|p| p == k))
        .collect();
    let position = keys.iter().position(|k| *k == path).unwrap();
    let defaults: Vec<&str> = if keys.len() == 1 {
        vec![row[1]]
    } else {
        row[1].split(", ").collect()
    };
    assert_eq!(
        defaults.len(),
        keys.len(),
        "`{path}`: one default per key in {row:?}"
    );
    let default = defaults[position].trim().to_string();
    assert!(!default.is_empty(), "`{path}`: no default in {row:?}");
    (row, default)
}

/// How the guide may write a schema default: the value itself (`0.01`, `true`, `ANY`, `["fp32"]`); a default
/// the library computes (`None`) is described in words, which only a reader checks.
fn written_as(default: &Value) -> Option<String> {
    match default {
        Value::Null => None,
        Value::String(s) => Some(s.to_lowercase()),
        Value::Array(items) if items.is_empty() => Some("[]".into()),
        other => Some(other.to_string().to_lowercase()),
    }
}

#[test]
fn every_parameter_has_its_schema_default_in_the_guide() {
    for (path, default) in parameters() {
        let (row, written) = guide_default(&path);
        let Some(spelling) = written_as(&default) else {
            continue;
        };
        let cell = written.to_lowercase().replace('`', "");
        assert!(
            cell == spelling,
            "docs/guide.md gives `{path}` the default {written:?}, the schema {default} ({row:?})"
        );
    }
}

/// The guide's table rows about a parameter: (the parameter's path, the row's meaning cell). A row of
/// `compression.target_device` is about `target_device`.
fn parameter_rows() -> Vec<(String, &'static str)> {
    let paths: Vec<String> = parameters().into_iter().map(|(p, _)| p).collect();
    let mut found = Vec::new();
    for row in guide_rows().into_iter().filter(|row| row.len() >= 3) {
        for key in backticked(row[0]) {
            let key = key.strip_prefix("compression.").unwrap_or(key);
            if paths.iter().any(|p| p == key) {
                found.push((key.to_string(), row[2]));
            }
        }
    }
    found
}

/// Every value a row of the guide says is refused (`` `GPU`, `NPU` are refused ``) is refused by the config
/// parser, and the values it offers beside them in the same row are accepted.
#[test]
fn every_refusal_the_guide_names_is_made() {
    let mut checked = 0;
    for (path, meaning) in parameter_rows() {
        for clause in meaning.split(';').filter(|c| c.contains("refused")) {
            for value in backticked(clause) {
                let text = config(nested(&path, json!(value)));
                assert!(
                    aquant::config::parse(&text).is_err(),
                    "docs/guide.md says `{path}` {value} is refused, but the config parses: {text}"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 2,
        "the guide's refusals were not found (GPU, NPU)"
    );
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
