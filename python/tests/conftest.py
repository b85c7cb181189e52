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


@pytest.fixture(scope="session", autouse=True)
def fresh_output_dirs_in_pytest_tmp(tmp_path_factory):
    """A run without ``output_dir`` writes to a fresh temporary directory (NNCF's contract: the model is
    returned, the report saved): keep those under pytest's own temporary tree, which pytest prunes."""
    import tempfile

    before = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("runs"))
    yield
    tempfile.tempdir = before


@pytest.fixture(scope="session")
def mnist():
    """(model path, calibration x, validation x, validation labels)."""
    return (
        MNIST / "mnist_cnn.onnx",
        np.load(MNIST / "calib_x.npy"),
        np.load(MNIST / "val_x.npy"),
        np.load(MNIST / "val_y.npy"),
    )


class Digits:
    """A custom dataset: numpy images and labels, indexable, items ``(image, label)``."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def transform(item):
    """An NNCF ``transform_func`` for :class:`Digits` items: the image, batched."""
    image, _ = item
    return image[None]


def nncf_datasets(mnist):
    """(calibration, validation) as NNCF scripts build them: ``aquant.Dataset`` over the digits."""
    import aquant

    _, calib_x, x, y = mnist
    return aquant.Dataset(calib_x, lambda image: image[None]), aquant.Dataset(Digits(x, y), transform)


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


def weights_3_levels(monkeypatch):
    """Three-level weights (aquant's POT parameter, passed through the algorithm entry): coarse enough that the
    MNIST search reverts several groups."""
    import aquant._api as api

    base = api._base_params

    def patched(*args):
        params, device = base(*args)
        params["weights"] = {"level_low": -3, "level_high": 3}
        return params, device

    monkeypatch.setattr(api, "_base_params", patched)
