"""Acceptance (4): bad inputs raise Python exceptions with aquant's one-line message, and leave nothing
half-written."""

from __future__ import annotations

import numpy as np
import pytest

import aquant
from conftest import MNIST


def datasets(mnist, transform=lambda item: item[0][None]):
    _, calib_x, x, y = mnist
    return aquant.Dataset(list(calib_x), lambda image: image[None]), aquant.Dataset(list(zip(x, y)), transform)


def quantize(mnist, tmp_path, validation=None, **kwargs):
    calibration, default_validation = datasets(mnist)
    kwargs.setdefault("metric", "top1")
    return aquant.quantize_with_accuracy_control(
        str(mnist[0]), calibration, validation or default_validation, progress=False,
        output_dir=tmp_path / "out", **kwargs,
    )


def assert_nothing_written(tmp_path):
    out = tmp_path / "out"
    leftovers = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert not [p for p in leftovers if p.name in ("model.onnx", "report.json") or ".tmp" in p.name], leftovers


def test_wrong_shape(mnist, tmp_path):
    _, bad = datasets(mnist, transform=lambda item: item[0])  # unbatched: rank 3 for a rank-4 input
    with pytest.raises(ValueError, match="shape"):
        quantize(mnist, tmp_path, validation=bad)
    assert_nothing_written(tmp_path)


def test_metric_raising_keeps_the_cause(mnist, tmp_path):
    def broken(outputs, annotation):
        raise ZeroDivisionError("user bug")

    with pytest.raises(ValueError, match="user bug") as raised:
        quantize(mnist, tmp_path, metric=broken)
    assert isinstance(raised.value.__cause__, ZeroDivisionError)
    assert_nothing_written(tmp_path)


def test_metric_nan(mnist, tmp_path):
    with pytest.raises(ValueError, match="nan|NaN"):
        quantize(mnist, tmp_path, metric=lambda outputs, annotation: float("nan"))
    assert_nothing_written(tmp_path)


def test_validation_fn_raising(mnist, tmp_path):
    def broken(model, data):
        raise KeyError("missing")

    with pytest.raises(ValueError, match="missing") as raised:
        quantize(mnist, tmp_path, metric=None, validation_fn=broken)
    assert isinstance(raised.value.__cause__, KeyError)
    assert_nothing_written(tmp_path)


def test_nan_input(mnist, tmp_path):
    _, bad = datasets(mnist, transform=lambda item: np.full((1, 1, 28, 28), np.nan, np.float32))
    with pytest.raises(ValueError):
        quantize(mnist, tmp_path, validation=bad)
    assert_nothing_written(tmp_path)


def test_bad_parameters(mnist, tmp_path):
    with pytest.raises(ValueError, match="maximal_drop"):
        quantize(mnist, tmp_path, max_drop=-1)
    with pytest.raises(ValueError, match="CPU_SPR"):
        quantize(mnist, tmp_path, target_device=aquant.TargetDevice.CPU_SPR)
    with pytest.raises(ValueError, match="mode"):
        aquant.quantize(str(mnist[0]), datasets(mnist)[0], mode="fp8_e4m3")
    import dataclasses

    @dataclasses.dataclass
    class Restorer(aquant.AdvancedAccuracyRestorerParameters):  # a setting aquant does not implement
        validate_every: int = 5

    with pytest.raises(ValueError, match="validate_every is not supported"):
        quantize(mnist, tmp_path, advanced_accuracy_restorer_parameters=Restorer(validate_every=1))
    assert_nothing_written(tmp_path)


def test_broken_model_and_label(mnist, tmp_path):
    with pytest.raises(ValueError):
        aquant.quantize(b"not an onnx model", datasets(mnist)[0], progress=False)
    _, unlabelled = datasets(mnist)
    unlabelled = aquant.Dataset([(x, "seven") for x, _ in unlabelled._data_source], lambda item: item[0][None])
    with pytest.raises(ValueError, match="integer class index"):
        quantize(mnist, tmp_path, validation=unlabelled)
    assert_nothing_written(tmp_path)


def test_output_dir_never_overwrites_input(mnist, tmp_path):
    import shutil

    model = tmp_path / "out" / "model.onnx"
    model.parent.mkdir()
    shutil.copy(MNIST / "mnist_cnn.onnx", model)
    before = model.read_bytes()
    calibration, validation = datasets(mnist)
    with pytest.raises(ValueError, match="overwrite"):
        aquant.quantize_with_accuracy_control(str(model), calibration, validation, metric="top1",
                                              output_dir=tmp_path / "out", progress=False)
    assert model.read_bytes() == before
