//! report.html and `aquant report`: every `quantize` run writes the page, `aquant report OUT_DIR` renders the
//! same page again from report.json alone, and the page shows what the JSON says: every section is there,
//! every inline SVG is well-formed XML, and the numbers in its tables are report.json's.

mod common;

use std::path::Path;

use common::{aquant, assert_clean_error, assets};
use roxmltree::{Document, Node, ParsingOptions};
use serde_json::Value;

/// The sections every report has, whatever the algorithm.
const SECTIONS: [&str; 9] = [
    "outcome",
    "metrics",
    "steps",
    "ranking",
    "sensitivity",
    "saturation",
    "timings",
    "precision",
    "sizes",
];

fn asset(path: &str) -> String {
    assets().join(path).to_string_lossy().into_owned()
}

fn quantize(out: &Path, extra: &[&str]) {
    let out = out.to_string_lossy().into_owned();
    let mut args = vec!["quantize", "-q", "-o", &out];
    args.extend_from_slice(extra);
    let output = aquant(&args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The MNIST worked example of the guide: NMSE and top-1 within 0.0003, which reverts `/fc2/Gemm`.
fn mnist_accuracy_aware(out: &Path, extra: &[&str]) {
    let (model, calib, val) = (
        asset("mnist_cnn/mnist_cnn.onnx"),
        asset("mnist_cnn/calib.json"),
        asset("mnist_cnn/val.json"),
    );
    let mut args = vec![
        "--model",
        &model,
        "--calib",
        &calib,
        "--val",
        &val,
        "--metric",
        "nmse,top1",
        "--max-drop",
        "0.0003",
        // Only the first layer halved, so that two layers still saturate and the page draws their chart.
        "--overflow-fix",
        "first_layer",
    ];
    args.extend_from_slice(extra);
    quantize(out, &args);
}

fn text(node: Node) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .map(|n| n.text().unwrap_or(""))
        .collect()
}

fn by_id<'a, 'i>(page: &'a Document<'i>, id: &str) -> Node<'a, 'i> {
    page.descendants()
        .find(|n| n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no element with id '{id}'"))
}

/// Asserts that `shown` (a number with some decimals) is `value` rounded to those decimals.
fn assert_shows(shown: &str, value: f64, what: &str) {
    let decimals = shown.split('.').nth(1).map_or(0, str::len) as i32;
    let parsed: f64 = shown
        .parse()
        .unwrap_or_else(|_| panic!("{what}: '{shown}'"));
    assert!(
        (parsed - value).abs() <= 0.5 * 10f64.powi(-decimals) + 1e-12,
        "{what}: shows {shown}, report.json has {value}"
    );
}

/// The texts an SVG draws, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    Document::parse(svg)
        .unwrap()
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| text(n).trim().to_string())
        .collect()
}

/// Every inline `<svg>…</svg>` of `html`, each parsed on its own as an XML document.
fn svgs(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("every <svg> is closed") + start + 6;
        let svg = &rest[start..end];
        let doc = Document::parse(svg).unwrap_or_else(|e| panic!("an SVG does not parse: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        found.push(svg.to_string());
        rest = &rest[end..];
    }
    found
}

/// Checks `out`'s report.html against its report.json; returns the inline SVGs.
fn check_page(out: &Path) -> Vec<String> {
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // Self-contained: no script, nothing fetched (an SVG's xmlns names a namespace, it fetches nothing).
    for fetch in ["<script", "<link", "src=", "href=", "url(", "@import"] {
        assert!(!html.contains(fetch), "report.html holds {fetch}");
    }
    let options = ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let page = Document::parse_with_options(&html, options).expect("the page is well-formed");
    for id in SECTIONS {
        let section = by_id(&page, id);
        assert_eq!(section.tag_name().name(), "section", "{id}");
        assert!(!text(section).trim().is_empty(), "section {id} is empty");
    }
    for (key, value) in report["ops_by_precision"].as_object().unwrap() {
        let cell = page
            .descendants()
            .find(|n| n.attribute("data-key") == Some(key.as_str()))
            .unwrap();
        assert_eq!(text(cell), value.to_string(), "ops_by_precision.{key}");
    }
    let sizes = text(by_id(&page, "sizes"));
    let bytes = &report["model_bytes"];
    assert!(
        sizes.contains(&format!("({} and {} bytes)", bytes["fp32"], bytes["int8"])),
        "{sizes}"
    );
    let svgs = svgs(&html);
    if let Some(layers) = report["sensitivity"]["layers"].as_array() {
        let chart = svgs
            .iter()
            .find(|s| s.contains("Per-layer sensitivity"))
            .expect("a sensitivity chart");
        let texts = svg_texts(chart);
        let notes: Vec<&String> = texts.iter().filter(|t| t.ends_with(" %")).collect();
        assert_eq!(notes.len(), layers.len(), "one bar per quantized op");
        for (note, layer) in notes.iter().zip(layers) {
            let share = format!("{:.1} %", layer["share"].as_f64().unwrap() * 100.0);
            assert_eq!(**note, share, "{}", layer["node"]);
        }
    }
    svgs
}

/// The accuracy-aware parts: the metric table, the steps (table and chart), the reverted ops and the
/// ranking are report.json's.
fn check_search(out: &Path, svgs: &[String]) {
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let options = ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let page = Document::parse_with_options(&html, options).unwrap();
    let table = by_id(&page, "metrics-table");
    for metric in report["metrics"].as_array().unwrap() {
        let name = metric["name"].as_str().unwrap();
        let row = table
            .descendants()
            .find(|n| n.attribute("data-metric") == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}"));
        for key in ["baseline", "quantized", "final", "drop", "allowed_drop"] {
            let cell = row
                .children()
                .find(|n| n.attribute("data-key") == Some(key))
                .unwrap();
            assert_shows(
                &text(cell),
                metric[key].as_f64().unwrap(),
                &format!("{name} {key}"),
            );
        }
        // The drop's confidence interval, as report.json has it.
        let ci = &metric["drop_ci"];
        let shown = row
            .children()
            .find(|n| n.attribute("data-key") == Some("drop_ci"))
            .map(text)
            .unwrap();
        let inside = shown
            .strip_prefix("95% CI [")
            .and_then(|t| t.strip_suffix(']'));
        let (low, high) = inside.and_then(|t| t.split_once(", ")).expect(&shown);
        assert_shows(low, ci["low"].as_f64().unwrap(), &format!("{name} CI low"));
        assert_shows(
            high,
            ci["high"].as_f64().unwrap(),
            &format!("{name} CI high"),
        );
    }
    let steps = report["steps"].as_array().unwrap();
    let rows: Vec<Node> = by_id(&page, "steps-table")
        .descendants()
        .filter(|n| n.attribute("data-step").is_some())
        .collect();
    assert_eq!(rows.len(), steps.len(), "one row per step");
    let step_chart = svgs
        .iter()
        .find(|s| s.contains("Drop after each revert step"))
        .expect("a step chart");
    let step_texts = svg_texts(step_chart);
    assert!(
        step_texts.contains(&"final drop's 95% confidence interval".to_string()),
        "the final drop's interval in the step chart's legend: {step_texts:?}"
    );
    for (row, step) in rows.iter().zip(steps) {
        assert_eq!(
            row.attribute("data-step"),
            Some(step["step"].to_string().as_str())
        );
        let group = format!("group {}", step["group"]);
        assert!(step_texts.contains(&group), "{group} in the step chart");
        let drop = row
            .children()
            .find(|n| n.attribute("data-key") == Some("drop"))
            .unwrap();
        assert_shows(&text(drop), step["drop"].as_f64().unwrap(), "step drop");
    }
    let reverted: Vec<String> = by_id(&page, "reverted")
        .children()
        .filter(|n| n.is_element())
        .map(text)
        .collect();
    let expected: Vec<String> = report["reverted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert_eq!(reverted, expected);
    let ranking_chart = svgs
        .iter()
        .find(|s| s.contains("Last ranking"))
        .expect("a ranking chart");
    let ranking_texts = svg_texts(ranking_chart);
    for entry in report["ranking"].as_array().unwrap() {
        let label = format!("group {} · ", entry["group"]);
        assert!(
            ranking_texts.iter().any(|t| t.starts_with(&label)),
            "{label} in the ranking chart"
        );
    }
}

#[test]
fn an_accuracy_aware_run_writes_a_page_that_shows_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    mnist_accuracy_aware(&out, &[]);
    let svgs = check_page(&out);
    // Steps, the front against size and against latency, ranking, sensitivity, saturation (two MNIST layers
    // saturate).
    assert_eq!(svgs.len(), 6);
    for axis in [
        "against model size",
        "against latency on the deployed engine",
    ] {
        let chart = svgs.iter().find(|s| s.contains(axis)).expect(axis);
        let texts = svg_texts(chart);
        for label in ["saved model", "INT8", "FP32"] {
            assert!(
                texts.iter().any(|t| t == label),
                "{label} in {axis}: {texts:?}"
            );
        }
    }
    check_search(&out, &svgs);

    // `aquant report` renders the same page from report.json alone.
    let written = std::fs::read(out.join("report.html")).unwrap();
    std::fs::remove_file(out.join("report.html")).unwrap();
    let output = aquant(&["report", out.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(std::fs::read(out.join("report.html")).unwrap(), written);

    let output = aquant(&["report", out.to_str().unwrap(), "--format", "md"]);
    assert!(output.status.success());
    let md = String::from_utf8(output.stdout).unwrap();
    assert!(md.starts_with("# aquant report: mnist_cnn.onnx"), "{md}");
    assert!(
        md.contains("Target met: 1 of 5 quantized ops reverted"),
        "{md}"
    );
    assert!(md.contains("| 1 | 4 | /fc2/Gemm |"), "{md}");
}

#[test]
fn a_default_quantization_page_says_there_is_no_search() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (model, calib) = (
        asset("mnist_cnn/mnist_cnn.onnx"),
        asset("mnist_cnn/calib.json"),
    );
    let first_layer = ["--overflow-fix", "first_layer"];
    quantize(
        &out,
        &[&["--model", &model, "--calib", &calib], &first_layer[..]].concat(),
    );
    let svgs = check_page(&out);
    assert_eq!(svgs.len(), 2, "sensitivity and saturation only");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("DefaultQuantization reverts nothing"));
    assert!(html.contains("DefaultQuantization ranks nothing"));
}

#[test]
fn no_sensitivity_skips_the_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    mnist_accuracy_aware(&out, &["--no-sensitivity", "--no-deployed-check"]);
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["sensitivity"], Value::Null);
    assert_eq!(report["timings_s"]["sensitivity"], 0.0);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Not measured: the run skipped it"));
    let svgs = check_page(&out);
    check_search(&out, &svgs);
}

#[test]
fn report_refuses_a_missing_directory_and_a_malformed_report() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let output = aquant(&["report", missing.to_str().unwrap()]);
    assert_clean_error(&output, "report.json");

    std::fs::write(dir.path().join("report.json"), b"{\"algorithm\": 3").unwrap();
    let output = aquant(&["report", dir.path().to_str().unwrap(), "--format", "md"]);
    assert_clean_error(&output, "is not a report");
    std::fs::write(dir.path().join("report.json"), b"[1, 2]").unwrap();
    let output = aquant(&["report", dir.path().to_str().unwrap()]);
    assert_clean_error(&output, "is not a report");
    assert!(!dir.path().join("report.html").exists());
}

/// The run of the acceptance criterion: MobileNetV2 at max_drop 0.003 (about 20 s on ONNX Runtime, 110 s on
/// tract, 2 cores).
#[test]
#[ignore = "MobileNetV2 accuracy-aware run, 20-110 s: cargo test --release -p aquant-cli --test report_html -- --ignored"]
fn the_mobilenet_v2_report_shows_its_search() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (model, data) = (
        asset("imagenet/mobilenet_v2.onnx"),
        asset("imagenet/val.json"),
    );
    quantize(
        &out,
        &[
            "--model",
            &model,
            "--calib",
            &data,
            "--val",
            &data,
            "--metric",
            "top1",
            "--max-drop",
            "0.003",
        ],
    );
    let svgs = check_page(&out);
    check_search(&out, &svgs);
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    // One sensitivity figure per quantized op, and the ranking ranks groups of those ops: how many depends on
    // the engine's placement (64 ops in 54 groups on ONNX Runtime, 53 on tract), not fixed here.
    let layers: Vec<&str> = (report["sensitivity"]["layers"].as_array().unwrap().iter())
        .map(|l| l["node"].as_str().unwrap())
        .collect();
    assert_eq!(
        layers.len() as u64,
        report["quantized_ops"].as_u64().unwrap()
    );
    let ranking = report["ranking"].as_array().unwrap();
    assert!(
        !ranking.is_empty(),
        "MobileNetV2 misses 0.003 at INT8: a ranking"
    );
    for entry in ranking {
        for node in entry["nodes"].as_array().unwrap() {
            assert!(layers.contains(&node.as_str().unwrap()), "{node} is ranked");
        }
    }
}
