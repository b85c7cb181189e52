//! The core in layers, measured from the code's own paths (issue #24).
//!
//! Every file of `crates/core/src` is read as tokens (comments and literals skipped); every path that names
//! something in the crate (`use crate::…`, `super::…`, `self::…`, a child module, or a name a `use` brought in,
//! in declarations and in code alike) is resolved through the module tree and the `use` re-exports to the module
//! that defines it, and that module to its *unit* (a top-level module, or a folder of one that belongs to another
//! layer today). The units sit on layers, bottom to top, in [`LAYERS`]: a path from a unit to a unit on a higher
//! layer is an arrow up. Test code (`#[cfg(test)]` items and modules) is not measured: tests may use anything.
//! A `pub use` of a higher layer's item keeps an old public path working after the item moved up (the module's
//! own code does not use it): it is listed apart, as a *re-export up*, and not counted as an arrow.
//!
//! The test prints the facts (units, layers, arrows up with where they are, circles between units) and fails on
//! an arrow up, a circle, a function over [`MAX_FN_LINES`] lines outside tests, or two public types of one name
//! across the core, the CLI and the Python extension, unless it is in the allowlists below. The allowlists are
//! today's known offenders and only shrink: an entry that no longer happens fails too, so that it is removed with
//! the fix, and a long function may not grow past its listed length.
//!
//! Self-contained on purpose (a small lexer, no `syn`): it reads paths, not types, so it needs no parser.

#[path = "layers/layering.rs"]
mod layering;
#[path = "layers/lexer.rs"]
mod lexer;
#[path = "layers/reading.rs"]
mod reading;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use layering::Layering;
use reading::Crate;

/// The layers, bottom to top, and the units on each (`a::b` is the module `crate::a::b` and everything in it;
/// a unit is the longest listed prefix of a module's path). The target order is `params → numerics → ops → qmodel →
/// metric/eval → analysis → quantize → search → job → config/pipeline`, with the base modules below it all.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "base",
        &[
            "error",
            "tensor",
            "graph",
            "data",
            "progress",
            "backend",
            "runner",
            "profile",
            "cpu",
            "runtime_library",
            "builder",
            "executor",
            "heap",
        ],
    ),
    ("params", &["params"]),
    ("numerics", &["numerics"]),
    ("ops", &["ops"]),
    (
        "qmodel",
        &[
            "quantize::model",
            "quantize::placement",
            "quantize::precision",
            "quantize::footprint",
        ],
    ),
    ("metric/eval", &["metric", "eval"]),
    ("analysis", &["saturation", "sensitivity"]),
    ("quantize", &["quantize"]),
    ("search", &["search"]),
    ("job", &["job", "output", "render"]),
    ("config/pipeline", &["config", "pipeline"]),
];

/// Today's arrows up (`from unit -> to unit`). Only shrinks.
const ALLOWED_UP: &[&str] = &[];

/// Public paths kept after their item moved to a higher layer (`from unit -> to unit`). Only shrinks: callers
/// move to the new path, then the re-export goes.
const ALLOWED_REEXPORTS_UP: &[&str] = &[];

/// Today's circles: the units of each strongly connected component of the unit graph, sorted, joined by ` ~ `.
/// Only shrinks.
const ALLOWED_CIRCLES: &[&str] = &[];

/// Functions longer than this (from `fn` to its closing brace) are too long to read as one step.
const MAX_FN_LINES: usize = 80;

/// Today's long functions outside tests: `crate-relative file::name` and its length now, which it may not exceed.
/// Only shrinks.
const ALLOWED_LONG_FNS: &[(&str, usize)] = &[];

/// Public type names declared more than once across the core, the CLI and the Python extension. Only shrinks.
const ALLOWED_SAME_NAMES: &[&str] = &[];

#[test]
fn the_core_is_in_layers() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR"));
    let krate = Crate::read(&core.join("src"));
    let facts = Layering::measure(&krate);
    println!("{}", facts.describe());

    let mut failures = Vec::new();
    let up: BTreeSet<String> = facts
        .arrows_up()
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    check_allowlist("arrow up", &up, ALLOWED_UP, &mut failures);
    let circles: BTreeSet<String> = facts.circles().iter().map(|c| c.join(" ~ ")).collect();
    check_allowlist("circle", &circles, ALLOWED_CIRCLES, &mut failures);
    let reexports: BTreeSet<String> = facts
        .reexports_up
        .keys()
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    check_allowlist(
        "re-export up",
        &reexports,
        ALLOWED_REEXPORTS_UP,
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_function_is_over_80_lines_outside_tests() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut long = BTreeMap::new();
    for name in [
        "core", "cli", "py", "ir", "onnx", "tract", "ort", "openvino",
    ] {
        let krate = Crate::read(&crates.join(name).join("src"));
        for file in &krate.files {
            for f in &file.fns {
                if f.lines > MAX_FN_LINES {
                    long.insert(format!("{name}/{}::{}", file.rel, f.name), f.lines);
                }
            }
        }
    }
    println!(
        "functions over {MAX_FN_LINES} lines outside tests: {}",
        long.len()
    );
    for (name, lines) in &long {
        println!("  {name}: {lines}");
    }
    let mut failures = Vec::new();
    let names: BTreeSet<String> = long.keys().cloned().collect();
    let allowed: Vec<&str> = ALLOWED_LONG_FNS.iter().map(|(name, _)| *name).collect();
    check_allowlist("function over 80 lines", &names, &allowed, &mut failures);
    for (name, cap) in ALLOWED_LONG_FNS {
        if let Some(&lines) = long.get(*name) {
            if lines > *cap {
                failures.push(format!(
                    "{name} grew to {lines} lines (allowed {cap}, and it should shrink)"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_two_public_types_share_a_name() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut places: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in ["core", "cli", "py"] {
        let krate = Crate::read(&crates.join(name).join("src"));
        for file in &krate.files {
            for (ty, line) in &file.pub_types {
                places
                    .entry(ty.clone())
                    .or_default()
                    .push(format!("{name}/{}:{line}", file.rel));
            }
        }
    }
    let same: BTreeMap<&String, &Vec<String>> =
        places.iter().filter(|(_, at)| at.len() > 1).collect();
    println!("public types declared more than once: {}", same.len());
    for (name, at) in &same {
        println!("  {name}: {}", at.join(", "));
    }
    let names: BTreeSet<String> = same.keys().map(|name| name.to_string()).collect();
    let mut failures = Vec::new();
    check_allowlist(
        "public type name used twice",
        &names,
        ALLOWED_SAME_NAMES,
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// New offenders and allowlist entries that no longer happen (remove them: the list only shrinks).
fn check_allowlist(
    what: &str,
    found: &BTreeSet<String>,
    allowed: &[&str],
    failures: &mut Vec<String>,
) {
    let allowed: BTreeSet<String> = allowed.iter().map(|s| s.to_string()).collect();
    for new in found.difference(&allowed) {
        failures.push(format!("new {what}: {new}"));
    }
    for gone in allowed.difference(found) {
        failures.push(format!(
            "{what} fixed, remove it from the allowlist: {gone}"
        ));
    }
}
