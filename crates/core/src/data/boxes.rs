//! Ground-truth boxes of a detection data set: a JSON-lines file, one line per sample.
//!
//! Each line is a JSON array of objects `{"class": c, "box": [x1, y1, x2, y2]}` (`[]` for a sample without
//! objects). The whole file is read when the data set opens: boxes are small next to the inputs, and reading
//! them once lets every malformed line be reported before any model runs.

use std::path::Path;

use serde_json::Value;

use crate::data::GroundTruthBox;
use crate::error::{Error, Result};

/// Reads the boxes file `path` (relative to `base_dir`), which must have one line per sample (`samples`).
pub fn read_boxes(path: &str, base_dir: &Path, samples: usize) -> Result<Vec<Vec<GroundTruthBox>>> {
    let full = base_dir.join(path);
    let text = std::fs::read_to_string(&full).map_err(|e| Error::io("reading", &full, e))?;
    let boxes = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            parse_line(line)
                .map_err(|message| Error::data(format!("boxes '{path}' line {}: {message}", i + 1)))
        })
        .collect::<Result<Vec<_>>>()?;
    if boxes.len() != samples {
        return Err(Error::data(format!(
            "boxes '{path}' has {} lines but the inputs have {samples} samples (one line per sample, [] for none)",
            boxes.len()
        )));
    }
    Ok(boxes)
}

/// The objects of one line, or what is wrong with it.
fn parse_line(line: &str) -> Result<Vec<GroundTruthBox>, String> {
    if line.trim().is_empty() {
        return Err("empty line (a sample without objects is [])".into());
    }
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Array(objects) = value else {
        return Err("expected a JSON array of {\"class\": c, \"box\": [x1, y1, x2, y2]}".into());
    };
    objects
        .iter()
        .enumerate()
        .map(|(j, object)| parse_object(object).map_err(|m| format!("object {}: {m}", j + 1)))
        .collect()
}

/// One `{"class": c, "box": [x1, y1, x2, y2]}`.
fn parse_object(object: &Value) -> Result<GroundTruthBox, String> {
    let Value::Object(fields) = object else {
        return Err("expected {\"class\": c, \"box\": [x1, y1, x2, y2]}".into());
    };
    if let Some(key) = fields.keys().find(|k| *k != "class" && *k != "box") {
        return Err(format!("unknown key '{key}' (keys: class, box)"));
    }
    let class = fields
        .get("class")
        .and_then(Value::as_i64)
        .filter(|c| *c >= 0)
        .ok_or("\"class\" must be a non-negative integer")?;
    let bbox = parse_box(fields.get("box").ok_or("no \"box\"")?)?;
    Ok(GroundTruthBox { class, bbox })
}

/// `[x1, y1, x2, y2]`: four finite numbers with `x1 <= x2`, `y1 <= y2`.
fn parse_box(value: &Value) -> Result<[f32; 4], String> {
    let numbers = value
        .as_array()
        .ok_or("\"box\" must be an array [x1, y1, x2, y2]")?;
    if numbers.len() != 4 {
        return Err(format!(
            "\"box\" must be 4 numbers [x1, y1, x2, y2], found {}",
            numbers.len()
        ));
    }
    let mut bbox = [0f32; 4];
    for (slot, number) in bbox.iter_mut().zip(numbers) {
        *slot = number
            .as_f64()
            .map(|v| v as f32)
            .filter(|v| v.is_finite())
            .ok_or("\"box\" values must be finite numbers")?;
    }
    if bbox[0] > bbox[2] || bbox[1] > bbox[3] {
        return Err(format!(
            "\"box\" {bbox:?} is not [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2"
        ));
    }
    Ok(bbox)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, samples: usize) -> Result<Vec<Vec<GroundTruthBox>>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.jsonl"), text).unwrap();
        read_boxes("b.jsonl", dir.path(), samples)
    }

    fn message(text: &str, samples: usize) -> String {
        read(text, samples).unwrap_err().to_string()
    }

    #[test]
    fn reads_one_line_per_sample() {
        let boxes = read(
            "[{\"class\": 2, \"box\": [1, 2, 3.5, 4]}]\n[]\n[{\"box\": [0,0,1,1], \"class\": 0}]\n",
            3,
        )
        .unwrap();
        assert_eq!(
            boxes[0],
            vec![GroundTruthBox {
                class: 2,
                bbox: [1.0, 2.0, 3.5, 4.0]
            }]
        );
        assert!(boxes[1].is_empty());
        assert_eq!(boxes[2][0].class, 0);
    }

    #[test]
    fn malformed_lines_are_named() {
        assert!(message("[]\n[{\"class\": 1, \"box\": [0, 0, 1]}]\n", 2)
            .contains("line 2: object 1: \"box\" must be 4 numbers [x1, y1, x2, y2], found 3"));
        assert!(message("[]\n[{\"class\": 1,\n", 2).contains("line 2: not JSON"));
        assert!(message("[]\n", 2).contains("has 1 lines but the inputs have 2 samples"));
        assert!(message("[]\n\n", 2).contains("line 2: empty line"));
        assert!(message("{\"class\": 1}\n", 1).contains("line 1: expected a JSON array"));
        assert!(message("[{\"class\": -1, \"box\": [0, 0, 1, 1]}]", 1)
            .contains("\"class\" must be a non-negative integer"));
        assert!(message("[{\"class\": 1, \"box\": [2, 0, 1, 1]}]", 1).contains("x1 <= x2"));
        assert!(
            message("[{\"class\": 1, \"bbox\": [0, 0, 1, 1]}]", 1).contains("unknown key 'bbox'")
        );
    }
}
