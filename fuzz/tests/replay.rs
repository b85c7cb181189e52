//! Replays every seed and every regression input through the fuzz target bodies, on stable.
//!
//! This is what CI runs everywhere (`cargo test --no-default-features` in `fuzz/`): it proves the target bodies
//! build and that no input that once crashed aquant crashes it again. Each regression input also has its own
//! test, named after what it found, in `tests/regressions.rs`.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `folder` (none when it does not exist), sorted.
fn files(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    files.sort();
    files
}

fn replay(target: &str, body: fn(&[u8]), extra: &[PathBuf]) {
    let mut inputs = files(&fuzz_dir().join("seeds").join(target));
    assert!(!inputs.is_empty(), "no seeds for {target}");
    inputs.extend(files(&fuzz_dir().join("regressions").join(target)));
    inputs.extend_from_slice(extra);
    for input in inputs {
        eprintln!("{target}: {}", input.display());
        body(&std::fs::read(&input).unwrap());
    }
}

#[test]
fn onnx_load_replays_seeds_regressions_and_bundled_models() {
    let assets = fuzz_dir().join("../assets");
    let models = [
        "mnist_cnn/mnist_cnn.onnx",
        "imagenet/mobilenet_v2.onnx",
        "imagenet/efficientnet_lite0.onnx",
    ]
    .map(|m| assets.join(m));
    replay("onnx_load", aquant_fuzz::onnx_load, &models);
}

#[test]
fn ir_load_replays_seeds_and_regressions() {
    replay("ir_load", aquant_fuzz::ir_load, &[]);
}

#[test]
fn config_replays_seeds_regressions_and_example_configs() {
    let examples = fuzz_dir().join("../examples/configs");
    let configs = [
        "mnist_default.json",
        "mnist_accuracy_aware.json",
        "mobilenet_v2_accuracy_aware_spec.json",
    ]
    .map(|c| examples.join(c));
    replay("config", aquant_fuzz::config, &configs);
}

#[test]
fn data_spec_replays_seeds_regressions_and_bundled_specs() {
    let assets = fuzz_dir().join("../assets");
    let specs = [
        "mnist_cnn/val.json",
        "mnist_cnn/calib.json",
        "imagenet/val.json",
        "imagenet/photos.json",
    ]
    .map(|s| assets.join(s));
    replay("data_spec", aquant_fuzz::data_spec, &specs);
}
