//! The malformed-input corpus: one test per way an input can be wrong (issue 7).
//!
//! Every case runs `aquant quantize` with accuracy control on a small model with one thing broken and checks the
//! same four promises: exit status 2, exactly one `error:` line on stderr naming the problem,
//! nothing written in the output directory (no model, no report, no temporary file), and every input file
//! byte-for-byte unchanged. Malformed models are built in code at test time; nothing is checked in.
//!
//! Sections: models that are not ONNX, graphs that are not valid, models aquant cannot run, data, metrics,
//! output paths. The one malformed input that is *not* an error, a validation set smaller than the ranking
//! subset, is at the end.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use aquant::builder::ModelBuilder;
use aquant_onnx::proto::tensor_proto::DataLocation;
use aquant_onnx::proto::StringStringEntryProto;
use aquant_onnx::ModelProto;
use common::{assert_clean_error, assert_finished, f32_npy, i64_npy, write};

/// Samples in the small data sets below.
const SAMPLES: usize = 8;

/// A working directory with a model, calibration and validation data, and the output directory to check.
struct Case {
    dir: tempfile::TempDir,
    model: String,
    calib: String,
    val: String,
}

impl Case {
    /// `model` saved beside valid data for it (input `x` of shape `[N, 4]`, labels in `0..3`).
    fn new(model: &ModelProto) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let model = write(dir.path(), "model.onnx", aquant_onnx::encode_model(model));
        let x: Vec<f32> = (0..SAMPLES * 4).map(|i| (i as f32 * 0.37).sin()).collect();
        let labels: Vec<i64> = (0..SAMPLES as i64).map(|i| i % 3).collect();
        let calib = data_spec(dir.path(), "calib", &[SAMPLES, 4], &x, None);
        let val = data_spec(dir.path(), "val", &[SAMPLES, 4], &x, Some(&labels));
        Case {
            dir,
            model,
            calib,
            val,
        }
    }

    /// A case on the small valid model.
    fn valid() -> Case {
        Case::new(&matmul_model().build())
    }

    fn output_dir(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// `aquant quantize` with accuracy control on this case; `overrides` replace the case's own flag values
    /// (`--calib`, `--val`, `-o`) or add flags.
    fn quantize(&self, overrides: &[(&str, &str)]) -> Output {
        let out = self.output_dir();
        let mut flags: Vec<(&str, &str)> = vec![
            ("--model", &self.model),
            ("--calib", &self.calib),
            ("--val", &self.val),
            ("-o", out.to_str().unwrap()),
        ];
        for &(flag, value) in overrides {
            match flags.iter_mut().find(|(f, _)| *f == flag) {
                Some(slot) => slot.1 = value,
                None => flags.push((flag, value)),
            }
        }
        let mut args = vec!["quantize", "--quiet"];
        args.extend(flags.into_iter().flat_map(|(f, v)| [f, v]));
        common::aquant(&args)
    }

    /// Runs `run` and checks the four promises, `needle` being what the error line must name.
    fn assert_refused(&self, needle: &str, run: impl FnOnce(&Case) -> Output) {
        let before = snapshot(self.dir.path());
        let output = run(self);
        assert_clean_error(&output, needle);
        assert_eq!(
            files_under(&self.output_dir()),
            Vec::<PathBuf>::new(),
            "files written by a failed run"
        );
        let mut after = snapshot(self.dir.path());
        after.retain(|path, _| !path.starts_with(self.output_dir()));
        assert_eq!(before, after, "an input file changed");
    }
}

/// `x [N, 4] → MatMul → y [N, 3]`: the smallest model aquant quantizes.
fn matmul_model() -> ModelBuilder {
    let weights: Vec<f32> = (0..12).map(|i| (i as f32 - 5.5) / 4.0).collect();
    ModelBuilder::new(13)
        .input("x", &[None, Some(4)])
        .initializer("w", &[4, 3], &weights)
        .node("MatMul", "matmul", &["x", "w"], &["y"])
        .output("y", &[None, Some(3)])
}

/// Writes `<name>_x.npy` (and `<name>_y.npy`) and a data spec over them; returns the spec's path.
fn data_spec(dir: &Path, name: &str, shape: &[usize], x: &[f32], labels: Option<&[i64]>) -> String {
    write(dir, &format!("{name}_x.npy"), f32_npy(shape, x));
    let labels = match labels {
        Some(labels) => {
            write(dir, &format!("{name}_y.npy"), i64_npy(labels));
            format!(r#","labels":"{name}_y.npy""#)
        }
        None => String::new(),
    };
    write(
        dir,
        &format!("{name}.json"),
        format!(r#"{{"format":"npy","inputs":{{"x":"{name}_x.npy"}}{labels}}}"#),
    )
}

/// Every file under `dir`, recursively (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The bytes of every file under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

/// Replaces the case's model file with `bytes`.
fn with_model_bytes(bytes: &[u8]) -> Case {
    let case = Case::valid();
    std::fs::write(&case.model, bytes).unwrap();
    case
}

// Models that are not ONNX.

#[test]
fn truncated_onnx() {
    let bytes = aquant_onnx::encode_model(&matmul_model().build());
    let case = with_model_bytes(&bytes[..bytes.len() / 2]);
    case.assert_refused("is not a valid ONNX model", |c| c.quantize(&[]));
}

#[test]
fn random_bytes_onnx() {
    // A fixed xorshift stream: the same "random" file on every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let case = with_model_bytes(&bytes);
    case.assert_refused("is not a valid ONNX model", |c| c.quantize(&[]));
}

// Graphs that are not valid.

#[test]
fn graph_with_a_cycle() {
    let model = ModelBuilder::new(13)
        .input("x", &[None, Some(4)])
        .node("Add", "first", &["x", "b"], &["a"])
        .node("Relu", "second", &["a"], &["b"])
        .output("a", &[None, Some(4)])
        .build();
    Case::new(&model).assert_refused("the graph has a cycle through node", |c| c.quantize(&[]));
}

#[test]
fn dangling_input() {
    let model = matmul_model()
        .node("Add", "add", &["y", "ghost"], &["z"])
        .output("z", &[None, Some(3)])
        .build();
    Case::new(&model).assert_refused(
        "node 'add' (Add) reads 'ghost', which no node, input or initializer defines",
        |c| c.quantize(&[]),
    );
}

// Models aquant cannot run.

#[test]
fn unknown_op() {
    let model = matmul_model()
        .node("Frobnicate", "frob", &["y"], &["z"])
        .output("z", &[None, Some(3)])
        .build();
    let case = Case::new(&model);
    case.assert_refused("unsupported op: node 'frob' (Frobnicate)", |c| {
        c.quantize(&[("--backend", "tract")])
    });
    // On ONNX Runtime (`auto`'s engine here) the refusal is its own, naming the node and the op too.
    case.assert_refused("(\"frob\", Frobnicate", |c| c.quantize(&[]));
}

#[test]
fn unsupported_opset() {
    let mut model = matmul_model().build();
    model.opset_import[0].version = Some(99);
    Case::new(&model).assert_refused("unsupported opset: ai.onnx version 99", |c| c.quantize(&[]));
}

#[test]
fn external_data_missing() {
    let mut model = matmul_model().build();
    let weight = &mut model.graph.as_mut().unwrap().initializer[0];
    weight.raw_data = None;
    weight.data_location = Some(DataLocation::External as i32);
    weight.external_data = vec![StringStringEntryProto {
        key: Some("location".into()),
        value: Some("weights.bin".into()),
    }];
    Case::new(&model).assert_refused("external data of tensor 'w'", |c| c.quantize(&[]));
}

// Data.

#[test]
fn input_shape_mismatch() {
    let case = Case::valid();
    let x = vec![0.5f32; SAMPLES * 5];
    let calib = data_spec(case.dir.path(), "wide", &[SAMPLES, 5], &x, None);
    case.assert_refused("expects shape [N, 4]", |c| {
        c.quantize(&[("--calib", &calib)])
    });
}

#[test]
fn nan_in_data() {
    let case = Case::valid();
    let mut x = vec![0.5f32; SAMPLES * 4];
    x[5] = f32::NAN;
    let calib = data_spec(case.dir.path(), "nan", &[SAMPLES, 4], &x, None);
    case.assert_refused("sample 1, input 'x': NaN or Inf in data", |c| {
        c.quantize(&[("--calib", &calib)])
    });
}

#[test]
fn inf_in_data() {
    let case = Case::valid();
    let mut x = vec![0.5f32; SAMPLES * 4];
    x[0] = f32::INFINITY;
    let labels = [0i64; SAMPLES];
    let val = data_spec(case.dir.path(), "inf", &[SAMPLES, 4], &x, Some(&labels));
    case.assert_refused("sample 0, input 'x': NaN or Inf in data", |c| {
        c.quantize(&[("--val", &val)])
    });
}

#[test]
fn empty_dataset() {
    let case = Case::valid();
    let calib = data_spec(case.dir.path(), "empty", &[0, 4], &[], None);
    case.assert_refused("the dataset is empty", |c| {
        c.quantize(&[("--calib", &calib)])
    });
}

#[test]
fn wrong_number_of_labels() {
    let case = Case::valid();
    let x = vec![0.5f32; SAMPLES * 4];
    let labels = [0i64; SAMPLES - 1];
    let val = data_spec(case.dir.path(), "short", &[SAMPLES, 4], &x, Some(&labels));
    case.assert_refused("must be 8 integers", |c| c.quantize(&[("--val", &val)]));
}

/// A validation spec over the case's `val_x.npy` with ground-truth boxes `lines` (and `extra` keys).
fn boxes_spec(case: &Case, lines: &str, extra: &str) -> String {
    write(case.dir.path(), "val_boxes.jsonl", lines);
    write(
        case.dir.path(),
        "boxes.json",
        format!(
            r#"{{"format":"npy","inputs":{{"x":"val_x.npy"}},"boxes":"val_boxes.jsonl"{extra}}}"#
        ),
    )
}

/// A valid line of boxes: one object.
const BOXES_LINE: &str = "[{\"class\": 0, \"box\": [0, 0, 2, 2]}]";

/// One valid line per sample, with line `bad` (1-based) replaced by `line`.
fn boxes_with(bad: usize, line: &str) -> String {
    (1..=SAMPLES)
        .map(|i| format!("{}\n", if i == bad { line } else { BOXES_LINE }))
        .collect()
}

#[test]
fn boxes_line_not_json() {
    let case = Case::valid();
    let val = boxes_spec(&case, &boxes_with(2, "[{\"class\": 0, \"box\": [0, 0"), "");
    case.assert_refused("boxes 'val_boxes.jsonl' line 2: not JSON", |c| {
        c.quantize(&[("--val", &val), ("--metric", "map50")])
    });
}

#[test]
fn boxes_line_count() {
    let case = Case::valid();
    let val = boxes_spec(&case, &format!("{BOXES_LINE}\n").repeat(SAMPLES - 1), "");
    case.assert_refused("has 7 lines but the inputs have 8 samples", |c| {
        c.quantize(&[("--val", &val), ("--metric", "map50")])
    });
}

#[test]
fn box_with_three_numbers() {
    let case = Case::valid();
    let val = boxes_spec(
        &case,
        &boxes_with(3, "[{\"class\": 1, \"box\": [0, 0, 2]}]"),
        "",
    );
    case.assert_refused(
        "line 3: object 1: \"box\" must be 4 numbers [x1, y1, x2, y2], found 3",
        |c| c.quantize(&[("--val", &val), ("--metric", "map50")]),
    );
}

#[test]
fn boxes_and_labels_together() {
    let case = Case::valid();
    let val = boxes_spec(
        &case,
        &boxes_with(1, BOXES_LINE),
        r#","labels":"val_y.npy""#,
    );
    case.assert_refused("gives both \"labels\" and \"boxes\"", |c| {
        c.quantize(&[("--val", &val), ("--metric", "map50")])
    });
}

// Metrics.

#[test]
fn metric_returns_nan() {
    // Log of a negative product is NaN: the FP32 outputs themselves are NaN, so mse against them is NaN.
    let model = matmul_model()
        .node("Log", "log", &["y"], &["z"])
        .output("z", &[None, Some(3)])
        .build();
    Case::new(&model).assert_refused("metric 'mse': returned NaN for sample", |c| {
        c.quantize(&[("--metric", "mse")])
    });
}

// Output paths.

#[test]
fn unwritable_output_directory() {
    // Tests may run as root, which ignores permission bits: a regular file in the path is unwritable for all.
    let case = Case::valid();
    let blocker = write(case.dir.path(), "not_a_directory", "x");
    let out = format!("{blocker}/out");
    case.assert_refused("output directory", |c| c.quantize(&[("-o", &out)]));
}

#[test]
fn output_path_equal_to_input_model() {
    let case = Case::valid();
    let dir = case.dir.path().to_str().unwrap().to_string();
    let before = std::fs::read(&case.model).unwrap();
    let output = case.quantize(&[("-o", &dir)]);
    // The output directory here is the input's own directory: check the promises by hand.
    assert_clean_error(&output, "would overwrite the input model");
    assert_eq!(std::fs::read(&case.model).unwrap(), before);
    assert!(!case.dir.path().join("report.json").exists());
    assert!(!case.dir.path().join("intermediate").exists());
}

// Not an error.

/// A validation set smaller than the ranking subset is clamped to the whole set, as NNCF does: the run works, says
/// so on stderr, and leaves complete outputs and no temporary file.
#[test]
fn validation_set_smaller_than_ranking_subset() {
    let case = Case::valid();
    let output = case.quantize(&[("--ranking-subset-size", "1000"), ("--max-drop", "0")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_finished(&output, "a ranking subset larger than the data");
    assert!(
        stderr.contains("--ranking-subset-size 1000 is larger than the 8 validation samples"),
        "{stderr}"
    );
    assert!(case.output_dir().join("model.onnx").is_file());
    assert!(case.output_dir().join("report.json").is_file());
    let temporary: Vec<PathBuf> = files_under(&case.output_dir())
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(temporary.is_empty(), "temporary files left: {temporary:?}");
}

// OpenVINO IR models (issue 16): the small model as an IR, with one thing broken.

/// The matmul model as an IR 11 (`x [?, 4] → MatMul(w [3, 4], transpose_b) → y [?, 3]`), `op` its MatMul's type.
fn ir_xml(op: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<net name="matmul" version="11"><layers>
<layer id="0" name="x" type="Parameter" version="opset1"><data shape="?,4" element_type="f32"/>
<output><port id="0" precision="FP32" names="x"><dim>-1</dim><dim>4</dim></port></output></layer>
<layer id="1" name="w" type="Const" version="opset1"><data element_type="f32" shape="3, 4" offset="0" size="48"/>
<output><port id="0" precision="FP32"><dim>3</dim><dim>4</dim></port></output></layer>
<layer id="2" name="matmul" type="{op}" version="opset1"><data transpose_a="false" transpose_b="true"/>
<input><port id="0"/><port id="1"/></input>
<output><port id="2" precision="FP32" names="y"><dim>-1</dim><dim>3</dim></port></output></layer>
<layer id="3" name="y/sink" type="Result" version="opset1"><input><port id="0"/></input></layer>
</layers><edges>
<edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>
<edge from-layer="1" from-port="0" to-layer="2" to-port="1"/>
<edge from-layer="2" from-port="2" to-layer="3" to-port="0"/>
</edges></net>"#
    )
}

fn ir_bin() -> Vec<u8> {
    (0..12)
        .flat_map(|i| ((i as f32 - 5.5) / 4.0).to_le_bytes())
        .collect()
}

/// A case whose model is the IR `xml` with weights `bin` beside it.
fn with_ir(xml: &str, bin: &[u8]) -> Case {
    let mut case = Case::valid();
    case.model = write(case.dir.path(), "model.xml", xml.as_bytes());
    write(case.dir.path(), "model.bin", bin);
    case
}

#[test]
fn ir_reads_and_quantizes_when_intact() {
    let case = with_ir(&ir_xml("MatMul"), &ir_bin());
    let output = case.quantize(&[]);
    assert!(
        output.status.code().is_some_and(|c| c == 0 || c == 1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn ir_truncated_bin() {
    with_ir(&ir_xml("MatMul"), &ir_bin()[..40])
        .assert_refused("truncated or does not belong", |c| c.quantize(&[]));
}

#[test]
fn ir_mismatched_bin() {
    let mut longer = ir_bin();
    longer.extend(ir_bin());
    with_ir(&ir_xml("MatMul"), &longer)
        .assert_refused("does not belong to this .xml", |c| c.quantize(&[]));
}

#[test]
fn ir_unknown_op() {
    with_ir(&ir_xml("Einsum"), &ir_bin()).assert_refused(
        "IR operation 'Einsum' (layer 'matmul') is not supported",
        |c| c.quantize(&[]),
    );
}

#[test]
fn ir_malformed_xml() {
    let xml = ir_xml("MatMul");
    with_ir(&xml[..xml.len() - 20], &ir_bin())
        .assert_refused("not well-formed XML", |c| c.quantize(&[]));
}
