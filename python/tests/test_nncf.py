"""Acceptance (2) and (3): NNCF-style calls — ``validation_fn`` returning a float or ``(float, list)``, a
per-sample metric, a custom numpy dataset with ``transform_func`` — and the model kinds in and out."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

import aquant
from conftest import MNIST, Digits, assert_deployed_drop, transform, weights_3_levels
from conftest import nncf_datasets as datasets

MAX_DROP = 0.002
# Three-level weights: the bundled MNIST CNN then loses accuracy and accuracy control reverts ops.
ADVANCED = aquant.AdvancedQuantizationParameters(overflow_fix=aquant.OverflowFix.DISABLE)


def run(mnist, tmp_path=None, model=None, advanced=ADVANCED, **kwargs):
    calibration, validation = datasets(mnist)
    return aquant.quantize_with_accuracy_control(
        model if model is not None else str(mnist[0]), calibration, validation, max_drop=MAX_DROP,
        advanced_quantization_parameters=advanced, progress=False,
        output_dir=None if tmp_path is None else tmp_path, return_report=True, **kwargs,
    )


def validation_with_values(model, data):
    hits = [float(np.argmax(model(transform(item))[0]) == item[1]) for item in data]
    return float(np.mean(hits)), hits


def validation_float(model, data):
    return validation_with_values(model, data)[0]


def top1(outputs, annotation):
    return float(np.argmax(outputs[0]) == annotation)


def test_per_sample_values_agree_with_metric_and_builtin(mnist, tmp_path, monkeypatch):
    weights_3_levels(monkeypatch)
    _, by_fn = run(mnist, validation_fn=validation_with_values)
    _, by_metric = run(mnist, metric=top1)
    model, by_name = run(mnist, tmp_path, metric="top1")
    assert by_fn.reverted_ops > 0
    for other in (by_metric, by_name):
        assert by_fn.reverted == other.reverted
        assert by_fn.metrics[0].final == pytest.approx(other.metrics[0].final, abs=1e-12)
    assert model == str(tmp_path / "model.onnx")  # a path in, the saved path out
    assert (tmp_path / "report.json").is_file()
    assert_deployed_drop(tmp_path / "model.onnx", mnist[2], mnist[3], mnist[0], MAX_DROP)


def test_metric_bounds_let_the_ranking_stop_early_with_the_same_decisions(mnist, monkeypatch):
    # A Python metric has no known range, so every ranking candidate runs the whole subset; declared bounds let
    # the ranking prune as for the built-in top1: fewer samples inferred, the same groups reverted.
    weights_3_levels(monkeypatch)
    _, unbounded = run(mnist, metric=top1)
    model, bounded = run(mnist, metric=top1, metric_bounds=(0, 1))
    _, builtin = run(mnist, metric="top1")
    assert unbounded.reverted_ops > 0 and bounded.reverted == unbounded.reverted == builtin.reverted
    assert bounded.metrics[0].final == unbounded.metrics[0].final
    assert bounded.evaluations["samples_inferred"] < unbounded.evaluations["samples_inferred"]
    assert bounded.evaluations["samples_inferred"] == builtin.evaluations["samples_inferred"]
    assert_deployed_drop(model, mnist[2], mnist[3], mnist[0], MAX_DROP)


def test_metric_bounds_are_checked(mnist, monkeypatch):
    weights_3_levels(monkeypatch)
    with pytest.raises(ValueError, match=r"metric 'top1': returned 1, outside metric_bounds \(0, 0.5\)"):
        run(mnist, metric=top1, metric_bounds=(0, 0.5))
    with pytest.raises(ValueError, match="low < high"):
        run(mnist, metric=top1, metric_bounds=(1, 0))
    with pytest.raises(ValueError, match="validation_fn sees whole sets"):
        run(mnist, validation_fn=validation_float, metric_bounds=(0, 1))


def test_validation_fn_returning_float(mnist, monkeypatch):
    # A bare float is a dataset-level metric: groups are ranked by output NMSE, the float judges full evaluations.
    weights_3_levels(monkeypatch)
    _, with_values = run(mnist, validation_fn=validation_with_values)
    model, report = run(mnist, validation_fn=validation_float)
    assert with_values.ranked_by == "metric"
    assert report.ranked_by == "output_nmse" and report.reverted_ops > 0
    assert report.metrics[0].final == pytest.approx(with_values.metrics[0].final, abs=1e-12)
    # Per-sample values give the drop a confidence interval around it; a bare float gives none.
    ci = with_values.metrics[0].drop_ci
    assert ci["method"] == "paired_score" and ci["low"] <= with_values.metrics[0].drop <= ci["high"]
    assert f"95% CI [{ci['low']:.4f}, {ci['high']:.4f}]" in with_values.summary()
    assert report.metrics[0].drop_ci is None
    assert_deployed_drop(model, mnist[2], mnist[3], mnist[0], MAX_DROP)


def test_validation_fn_float_when_nothing_to_revert(mnist):
    # Full precision weights: the INT8 model is within the drop, so no ranking (no per-sample values) is needed.
    # With NNCF's default overflow fix: without it, ONNX Runtime on a CPU without VNNI saturates the first Conv
    # (0.849 top-1), the deployed check misses and the search goes on reverting, on such a CPU only.
    model, report = run(mnist, validation_fn=validation_float, advanced=None)
    assert report.target_met and report.reverted_ops == 0
    assert_deployed_drop(model, mnist[2], mnist[3], mnist[0], MAX_DROP)


def test_model_proto_in_proto_out_and_input_untouched(mnist):
    proto = onnx.load(str(mnist[0]))
    before = proto.SerializeToString()
    quantized, report = run(mnist, model=proto, metric="top1")
    assert isinstance(quantized, onnx.ModelProto)
    assert proto.SerializeToString() == before
    assert_deployed_drop(quantized.SerializeToString(), mnist[2], mnist[3], mnist[0], MAX_DROP)
    as_bytes, _ = run(mnist, model=before, metric="top1")
    assert isinstance(as_bytes, bytes)


def test_custom_dataset_with_transform_and_nncf_duck_typing(mnist):
    class NncfLikeDataset:  # nncf.Dataset's attributes, without NNCF
        def __init__(self, data_source, transform_func=None):
            self._data_source = data_source
            self._transform_func = transform_func

    _, calib_x, x, y = mnist
    generator = (calib_x[i] for i in range(len(calib_x)))  # a non-indexable iterable, read once
    calibration = NncfLikeDataset(generator, lambda image: {"input": image[None]})
    validation = NncfLikeDataset(Digits(x, y), transform)
    model, report = aquant.quantize_with_accuracy_control(
        str(mnist[0]), calibration, validation, validation_with_values, max_drop=MAX_DROP, progress=False,
        return_report=True,
    )
    assert report.target_met
    assert_deployed_drop(model, x, y, mnist[0], MAX_DROP)


def test_model_outlives_validation_fn_is_an_error(mnist):
    kept = []

    def keep(model, data):
        kept.append(model)
        return validation_with_values(model, data)

    run(mnist, validation_fn=keep)
    with pytest.raises(RuntimeError, match="validation_fn call"):
        kept[0](mnist[2][:1])


def test_quantize_default(mnist, tmp_path):
    calibration, _ = datasets(mnist)
    model, report = aquant.quantize(str(mnist[0]), calibration, subset_size=100, output_dir=tmp_path, progress=False,
                                    return_report=True)
    assert report.algorithm == "DefaultQuantization" and report.quantized_ops > 0
    assert_deployed_drop(model, mnist[2], mnist[3], mnist[0], 0.01)


def test_external_data_keyword_saves_weights_beside_the_model(mnist, tmp_path):
    # external_data="always" (the command line's --external-data): model.onnx + model.onnx.data, which ONNX
    # Runtime loads from the path with the drop kept; an unknown value is refused before any work.
    calibration, _ = datasets(mnist)
    model = aquant.quantize(str(mnist[0]), calibration, subset_size=100, output_dir=tmp_path, progress=False,
                            external_data="always")
    assert model == str(tmp_path / "model.onnx") and (tmp_path / "model.onnx.data").stat().st_size > 0
    assert_deployed_drop(model, mnist[2], mnist[3], mnist[0], 0.01)
    with pytest.raises(ValueError, match="'auto', 'always' or 'never'"):
        aquant.quantize(str(mnist[0]), calibration, output_dir=tmp_path / "other", progress=False,
                        external_data="sometimes")
    assert not (tmp_path / "other").exists()


def test_memory_limit_sets_the_threads_or_refuses_with_the_least_it_needs(mnist, tmp_path):
    # memory_limit (the command line's --memory-limit), as bytes or as a size: the report says what it chose; a
    # limit below the least the run needs is refused before any work, naming that least.
    calibration, _ = datasets(mnist)
    _, report = aquant.quantize(str(mnist[0]), calibration, subset_size=100, output_dir=tmp_path / "8g",
                                progress=False, return_report=True, memory_limit="8G")
    assert report.memory["limit"] == 8 << 30 and report.memory["threads"] >= 1
    assert report.memory["estimate"] <= 8 << 30
    least = r"memory_limit 1 MiB is below the least this run needs on ort: about \d+ MiB"
    with pytest.raises(ValueError, match=least):
        aquant.quantize(str(mnist[0]), calibration, output_dir=tmp_path / "1m", progress=False,
                        memory_limit=1 << 20)
    assert not (tmp_path / "1m" / "model.onnx").exists()
    with pytest.raises(ValueError, match="memory_limit"):
        aquant.quantize(str(mnist[0]), calibration, progress=False, memory_limit="lots")


def test_openvino_model_in_openvino_model_out(mnist, tmp_path, monkeypatch):
    # NNCF's OpenVINO flow: an ov.Model in, a validation_fn written for a CompiledModel (compiled(x)[output(0)]),
    # an ov.Model out — the IR aquant saved — which OpenVINO compiles and runs with the reported metric.
    import openvino as ov  # installed by .ci/run from scripts/requirements-openvino.txt
    weights_3_levels(monkeypatch)
    _, calib_x, x, y = mnist

    def validation_ov(compiled, data):
        hits = [float(np.argmax(compiled(transform(item))[compiled.output(0)]) == item[1]) for item in data]
        return float(np.mean(hits)), hits

    calibration, validation = datasets(mnist)
    model, report = aquant.quantize_with_accuracy_control(
        ov.convert_model(str(mnist[0])), calibration, validation, validation_ov, max_drop=MAX_DROP,
        advanced_quantization_parameters=ADVANCED, progress=False, output_dir=tmp_path, return_report=True,
    )
    assert isinstance(model, ov.Model)
    assert report.reverted_ops > 0 and report.target_met
    assert report.deployed["engine"] == "openvino-ir"
    assert (tmp_path / "model.xml").is_file() and (tmp_path / "model.bin").is_file()
    # Measured under the deployed check's conditions: batch 1 (one item per call), one thread, f32.
    assert (report.deployed["batch"], report.deployed["threads"], report.deployed["precision_hint"]) == (1, 1, "f32")
    settings = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1}
    compiled = ov.Core().compile_model(model, "CPU", settings)
    measured, _ = validation_ov(compiled, list(Digits(x, y)))
    assert measured == report.deployed["metrics"][0]["value"]


def test_fallback_ladder_from_python(mnist, tmp_path, monkeypatch):
    # The precision ladder as the CLI's --fallback: groups go to 16-bit activations before FP32, the report says
    # which precision each moved op ended at, and the opset-21 model ONNX Runtime runs keeps the drop.
    weights_3_levels(monkeypatch)
    _, plain = run(mnist, metric="top1")
    model, ladder = run(mnist, tmp_path, metric="top1", fallback="w8a16,fp32")
    assert plain.reverted_ops > 0
    moved = ladder.precisions
    assert moved and set(moved.values()) <= {"w8a16", "fp32"}
    assert ladder.ops_by_precision["int16"] == sum(1 for p in moved.values() if p == "w8a16")
    assert ladder.target_met
    opsets = {o.domain: o.version for o in onnx.load(model).opset_import}
    assert opsets.get("", opsets.get("ai.onnx")) == (21 if "w8a16" in moved.values() else 13)
    assert_deployed_drop(model, mnist[2], mnist[3], mnist[0], MAX_DROP)
    with pytest.raises(ValueError, match="fallback"):
        run(mnist, metric="top1", fallback="w9a16")


def test_holdout_fraction_confirms_on_samples_the_search_never_saw(mnist):
    _, report = run(mnist, metric="top1", holdout_fraction=0.3)
    confirmation = report.confirmation
    assert confirmation["samples"] == len(confirmation["indices"]) == round(0.3 * len(mnist[3]))
    assert report.metrics[0].drop_ci["samples"] == len(mnist[3]) - confirmation["samples"]
    m = confirmation["metrics"][0]
    assert confirmation["met"] == (m["drop"] <= m["allowed_drop"] + 1e-12)
    assert "held out" in report.summary()
    with pytest.raises(ValueError, match=r"holdout_fraction must be in \[0, 1\)"):
        run(mnist, metric="top1", holdout_fraction=1.5)


def test_confidence_judges_the_target_on_the_upper_end_of_the_drops_interval(mnist):
    _, report = run(mnist, metric="top1", confidence=0.9)
    assert report.confidence == 0.9
    ci = report.metrics[0].drop_ci
    assert ci["level"] == 0.9
    assert report.target_met == (ci["high"] <= report.metrics[0].allowed_drop + 1e-9)
    assert "upper end" in report.summary() and "90% CI" in report.summary()
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        run(mnist, metric="top1", confidence=1.5)
    # A validation function runs the model itself: it cannot be scored on thousands of bootstrap resamples.
    with pytest.raises(ValueError, match="metric 'validation_float' has none"):
        run(mnist, validation_fn=validation_float, confidence=0.9)


def test_backend_auto_searches_on_onnx_runtime_when_installed_and_says_why(mnist):
    _, report = run(mnist, metric="top1")
    assert report.backend["name"] == "ort"
    assert report.backend["chosen_because"].startswith("auto: ONNX Runtime")
    assert f"searched on ort ({report.backend['chosen_because']})" in report.summary()
    assert report.deployed["reused"] is True


def test_backend_auto_falls_back_to_tract_without_onnx_runtime(tmp_path):
    """An empty ORT_DYLIB_PATH (which the package leaves as given) names no library: ONNX Runtime is not found."""
    script = (
        "import numpy as np, aquant\n"
        f"m = {str(MNIST)!r}\n"
        "calib = aquant.Dataset(np.load(m + '/calib_x.npy')[:32], lambda x: x[None])\n"
        "_, report = aquant.quantize(m + '/mnist_cnn.onnx', calib, progress=False, return_report=True)\n"
        "print(report.backend['name']); print(report.backend['chosen_because'])\n"
    )
    env = {**os.environ, "ORT_DYLIB_PATH": ""}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    name, because = done.stdout.strip().splitlines()[-2:]
    assert name == "tract"
    assert because.startswith("auto: ONNX Runtime") and "not found" in because


def test_several_targets_save_a_model_per_target_and_the_front_lists_every_model(mnist, tmp_path):
    calibration, validation = datasets(mnist)
    model, report = aquant.quantize_with_accuracy_control(
        str(mnist[0]), calibration, validation, metric="nmse", max_drop=[0.0003, 0.00003, 0.0001],
        progress=False, output_dir=tmp_path, return_report=True,
    )
    assert [t["max_drop"] for t in report.targets] == [0.00003, 0.0001, 0.0003]
    assert report.targets[0]["output"] == report.output == model
    for target in report.targets:
        assert target["target_met"], target
        assert os.path.exists(target["output"]), target
    assert os.path.exists(tmp_path / "max_drop_0.0003" / "model.onnx")
    labels = [p["label"] for p in report.front]
    assert labels[:2] == ["FP32", "INT8"] and {t["point"] for t in report.targets} <= set(labels)
    assert sum(p["chosen"] for p in report.front) == 1
