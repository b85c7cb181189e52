#!/usr/bin/env python3
"""Reference values of aquant's dataset-level metrics, from the implementations users compare with.

Reads a fixture directory and prints one JSON line:

    {"f1_macro": ..., "auroc": ..., "auroc_two_scores": ..., "map50": ..., "map50_95": ...}

Fixture files (each metric is computed only when its files exist):
- f1_macro: `class_scores.npy` [N, C] float32, `class_labels.npy` [N] int64 → scikit-learn's
  `f1_score(labels, argmax(scores), average="macro")`.
- auroc: `binary_scores.npy` [N] float32, `binary_labels.npy` [N] int64 → `roc_auc_score(labels, scores)`.
- auroc_two_scores: `binary_logits.npy` [N, 2] float32 and `binary_labels.npy` → `roc_auc_score` of softmax's
  probability of class 1 (what aquant's `auroc` replaces by `logit[1] - logit[0]`).
- map50, map50_95: `detections.npy` [S, N, 6] float32 rows (x1, y1, x2, y2, score, class), rows with score <= 0
  or class < 0 being padding, and `boxes.jsonl` (aquant's data-spec form: one line per sample, a JSON array of
  {"class": c, "box": [x1, y1, x2, y2]}) → pycocotools' COCOeval bbox AP@0.5 and AP@[.5:.95] (area all,
  maxDets 100), images in sample order.

The Rust test `crates/core/tests/dataset_metrics.rs` writes the fixture and compares. Exit status 3 with a
one-line message when scikit-learn or pycocotools is missing (install scripts/requirements.txt).
"""
import contextlib
import io
import json
import os
import sys

import numpy as np

try:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from sklearn.metrics import f1_score, roc_auc_score
except ImportError as e:
    print(f"missing Python package ({e}): pip install -r scripts/requirements.txt", file=sys.stderr)
    sys.exit(3)


def f1_macro(d):
    scores = np.load(os.path.join(d, "class_scores.npy"))
    labels = np.load(os.path.join(d, "class_labels.npy"))
    return float(f1_score(labels, scores.argmax(axis=1), average="macro"))


def auroc(d):
    labels = np.load(os.path.join(d, "binary_labels.npy"))
    return float(roc_auc_score(labels, np.load(os.path.join(d, "binary_scores.npy"))))


def auroc_two_scores(d):
    labels = np.load(os.path.join(d, "binary_labels.npy"))
    logits = np.load(os.path.join(d, "binary_logits.npy")).astype(np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return float(roc_auc_score(labels, exp[:, 1] / exp.sum(axis=1)))


def xywh(box):
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def coco_ground_truth(boxes_path, images):
    """A COCO object of the boxes file; ids start at 1 (COCOeval treats a matched id 0 as no match)."""
    annotations, classes = [], set()
    with open(boxes_path) as f:
        lines = f.read().splitlines()
    assert len(lines) == images, f"{len(lines)} lines of boxes for {images} samples"
    for image, line in enumerate(lines):
        for obj in json.loads(line):
            bbox = xywh(obj["box"])
            classes.add(obj["class"])
            annotations.append({"id": len(annotations) + 1, "image_id": image + 1, "category_id": obj["class"],
                                "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0})
    return annotations, classes


def coco_detections(detections):
    results = []
    for image, rows in enumerate(detections.astype(np.float64).tolist()):
        for x1, y1, x2, y2, score, cls in rows:
            if score > 0 and cls >= 0:
                results.append({"image_id": image + 1, "category_id": int(cls),
                                "bbox": xywh([x1, y1, x2, y2]), "score": score})
    return results


def mean_average_precision(d):
    detections = np.load(os.path.join(d, "detections.npy"))
    annotations, classes = coco_ground_truth(os.path.join(d, "boxes.jsonl"), len(detections))
    results = coco_detections(detections)
    classes |= {r["category_id"] for r in results}
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"images": [{"id": i + 1} for i in range(len(detections))], "annotations": annotations,
                         "categories": [{"id": c} for c in sorted(classes)]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {"map50": float(evaluation.stats[1]), "map50_95": float(evaluation.stats[0])}


def main():
    if len(sys.argv) != 2:
        print("usage: metric_reference.py FIXTURE_DIR", file=sys.stderr)
        sys.exit(2)
    d = sys.argv[1]
    present = lambda *names: all(os.path.exists(os.path.join(d, n)) for n in names)
    values = {}
    if present("class_scores.npy", "class_labels.npy"):
        values["f1_macro"] = f1_macro(d)
    if present("binary_scores.npy", "binary_labels.npy"):
        values["auroc"] = auroc(d)
    if present("binary_logits.npy", "binary_labels.npy"):
        values["auroc_two_scores"] = auroc_two_scores(d)
    if present("detections.npy", "boxes.jsonl"):
        values.update(mean_average_precision(d))
    print(json.dumps(values))


if __name__ == "__main__":
    main()
