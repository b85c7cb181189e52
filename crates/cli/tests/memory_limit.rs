//! `--memory-limit`: a run picks the threads and FP32-output cache that fit (report.json `memory`), and a limit
//! below the least it needs stops it at once with that least (exit 2), before any model is saved.

mod common;

use common::read_report;

fn quantize_mnist(out: &std::path::Path, limit: &str) -> std::process::Output {
    let flags = [
        "--backend",
        "tract",
        "--no-deployed-check",
        "--no-sensitivity",
    ];
    common::quantize_mnist(out, &[&flags[..], &["--memory-limit", limit]].concat())
}

#[test]
fn a_limit_below_the_least_a_run_needs_stops_it_with_that_least() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = quantize_mnist(&out, "100M");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("memory_limit 100 MiB is below the least this run needs on tract: about"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.join("model.onnx").exists() && !out.join("report.json").exists());
}

#[test]
fn a_limit_that_fits_sets_the_threads_and_the_cache_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = quantize_mnist(&out, "400M");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let memory = read_report(&out)["memory"].clone();
    assert_eq!(memory["limit"], 400 << 20);
    let threads = memory["threads"].as_u64().unwrap();
    assert!((1..=std::thread::available_parallelism().unwrap().get() as u64).contains(&threads));
    assert!(
        memory["estimate"].as_u64().unwrap() <= 400 << 20,
        "{memory}"
    );
    // What is left under 400 MB after the engine, the model and the data is less than the cache's default.
    let cache = memory["reference_budget"].as_u64().unwrap();
    assert!(
        cache >= 64 << 20 && cache < aquant::params::DEFAULT_REFERENCE_BUDGET as u64,
        "{memory}"
    );
    // Without a limit, report.json has no plan.
    let free = dir.path().join("free");
    let output = common::quantize_mnist(&free, &["--no-sensitivity", "--no-deployed-check"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(read_report(&free).get("memory").is_none());
}
