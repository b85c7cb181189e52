"""Shared fixtures: the bundled MNIST CNN and its arrays, the CLI binary, and the ONNX Runtime check that every
saved model keeps the promised drop."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "assets" / "mnist_cnn"
IMAGENET = ROOT / "assets" / "imagenet"


@pytest.fixture(scope="session")
def mnist():
    """(model path, calibration x, validation x, validation labels)."""
    return (
        MNIST / "mnist_cnn.onnx",
        np.load(MNIST / "calib_x.npy"),
        np.load(MNIST / "val_x.npy"),
        np.load(MNIST / "val_y.npy"),
    )


def cli_binary() -> Path:
    """The `aquant` binary of `cargo build --release` (built here if missing)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "release" / "aquant"
    if not binary.is_file():
        subprocess.run(["cargo", "build", "--release", "-p", "aquant-cli"], cwd=ROOT, check=True)
    return binary


def ort_top1(model: bytes | str | Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 of `model` on (x, y) in ONNX Runtime as the deployed check measures by default (report.json
    `deployed`: batch 1, one thread, ORT_ENABLE_ALL): one sample at a time."""
    import onnxruntime as ort

    if isinstance(model, Path):
        model = str(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    hits = [int(np.argmax(session.run(None, {name: x[i : i + 1]})[0]) == y[i]) for i in range(len(x))]
    return float(np.mean(hits))


def assert_deployed_drop(model, x, y, fp32_path, max_drop):
    """The saved model, run in ONNX Runtime, is within `max_drop` of the FP32 model (top-1)."""
    fp32 = ort_top1(fp32_path, x, y)
    int8 = ort_top1(model, x, y)
    assert fp32 - int8 <= max_drop + 1e-9, f"ONNX Runtime: FP32 {fp32:.4f}, INT8 {int8:.4f}, allowed drop {max_drop}"
    return int8
