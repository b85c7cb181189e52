"""Acceptance (1): a POT script — a top-1 ``Accuracy(Metric)`` as POT's documentation writes it and a
``DataLoader`` over the bundled arrays — gives the CLI's reverted ops and final metric on the same case."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aquant.pot import (
    DataLoader,
    IEEngine,
    Metric,
    compress_model_weights,
    create_pipeline,
    load_model,
    save_model,
)
from conftest import MNIST, ROOT, assert_deployed_drop, cli_binary

# Three-level weights make the bundled MNIST CNN lose accuracy, so accuracy control has something to revert.
PARAMS = {
    "maximal_drop": 0.002,
    "weights": {"level_low": -3, "level_high": 3},
    "saturation_fix": "no",
}
CLI_FLAGS = ["--max-drop", "0.002", "--weights-level-low=-3", "--weights-level-high", "3", "--overflow-fix", "disable"]


class Accuracy(Metric):
    """POT's documented top-k accuracy."""

    def __init__(self, top_k=1):
        super().__init__()
        self._top_k = top_k
        self._name = "accuracy@top{}".format(self._top_k)
        self._matches = []

    @property
    def value(self):
        """Returns accuracy metric value for the last model output."""
        return {self._name: self._matches[-1]}

    @property
    def avg_value(self):
        """Returns accuracy metric value for all model outputs."""
        return {self._name: np.ravel(self._matches).mean()}

    def update(self, output, target):
        if len(output) > 1:
            raise Exception("The accuracy metric cannot be calculated for a model with multiple outputs")
        if isinstance(target, dict):
            target = list(target.values())
        predict = np.argsort(output[0], axis=1)[:, -self._top_k :]
        match = [float(t in predict[i]) for i, t in enumerate(target)]
        self._matches.append(match)

    def reset(self):
        self._matches = []

    def get_attributes(self):
        return {self._name: {"direction": "higher-better", "type": "accuracy"}}


class ArrayLoader(DataLoader):
    """The bundled arrays, one unbatched image and its label per item, as POT loaders give them."""

    def __init__(self, config):
        super().__init__(config)
        self._x = np.load(MNIST / config["x"])
        self._y = np.load(MNIST / config["y"])

    def __len__(self):
        return len(self._y)

    def __getitem__(self, index):
        return self._x[index], int(self._y[index])


def run_pot(tmp_path, metric):
    model = load_model({"model_name": "mnist_cnn", "model": str(MNIST / "mnist_cnn.onnx")})
    engine = IEEngine(config={"device": "CPU"}, data_loader=ArrayLoader({"x": "val_x.npy", "y": "val_y.npy"}), metric=metric)
    pipeline = create_pipeline([{"name": "AccuracyAwareQuantization", "params": PARAMS}], engine)
    compressed = pipeline.run(model)
    compress_model_weights(compressed)
    saved = save_model(compressed, str(tmp_path / "pot"), "mnist_int8")
    return compressed, saved, pipeline


def test_pot_script_matches_cli(tmp_path, mnist):
    compressed, saved, pipeline = run_pot(tmp_path, Accuracy(top_k=1))
    report = compressed.report
    out = tmp_path / "cli"
    subprocess.run(
        [str(cli_binary()), "quantize", "--model", str(MNIST / "mnist_cnn.onnx"), "--calib", str(MNIST / "val.json"),
         "--val", str(MNIST / "val.json"), "--metric", "top1", *CLI_FLAGS, "-o", str(out), "--quiet"],
        check=True,
    )
    cli = json.loads((out / "report.json").read_text())
    assert report.reverted_ops > 0, "the case must exercise reverting"
    assert report.reverted == cli["reverted"]
    assert report.metrics[0].final == pytest.approx(cli["metrics"][0]["final"], abs=1e-12)
    assert report.metrics[0].baseline == pytest.approx(cli["metrics"][0]["baseline"], abs=1e-12)
    assert report.metrics[0].drop_ci == cli["metrics"][0]["drop_ci"]
    path, x, y = saved[0]["model"], mnist[2], mnist[3]
    # pipeline.evaluate scores the compressed model with the POT metric, as POT does.
    evaluated = pipeline.evaluate(compressed)["accuracy@top1"]
    assert evaluated == pytest.approx(report.metrics[0].final, abs=1e-12)
    assert_deployed_drop(path, x, y, mnist[0], PARAMS["maximal_drop"])


class SetAccuracy(Accuracy):
    """The same metric without per-sample values: scored over whole sets (reset, update, avg_value)."""

    value = Metric.value


def test_pot_metric_without_value_is_dataset_level(tmp_path, mnist):
    compressed, saved, _ = run_pot(tmp_path, SetAccuracy())
    per_sample, _, _ = run_pot(tmp_path / "b", Accuracy())
    assert compressed.report.ranked_by == "output_nmse"
    assert per_sample.report.ranked_by == "metric"
    assert compressed.report.metrics[0].baseline == pytest.approx(per_sample.report.metrics[0].baseline)
    assert compressed.report.metrics[0].quantized == pytest.approx(per_sample.report.metrics[0].quantized)


def ov_script(name, *args):
    """One of scripts/ (OpenVINO's Python package, installed by .ci/run): its one JSON line."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *map(str, args)], capture_output=True, text=True
    )
    assert done.returncode == 0, f"{name}: {done.stderr} (OpenVINO missing? pip install -r scripts/requirements-openvino.txt)"
    return json.loads(done.stdout)


def test_pot_script_on_an_openvino_ir(tmp_path):
    # A POT user's own case: an IR in (model + weights elsewhere), OpenVINO evaluating, an IR out in NNCF's form,
    # judged by OpenVINO reading the saved IR; Python OpenVINO's measure of the saved files is the reported one.
    made = ov_script("make_ir.py", MNIST / "mnist_cnn.onnx", tmp_path / "ir" / "mnist_cnn.xml")
    weights = tmp_path / "weights" / "mnist_cnn.bin"
    weights.parent.mkdir()
    Path(made["bin"]).rename(weights)
    model = load_model({"model_name": "mnist_cnn", "model": made["xml"], "weights": str(weights)})
    loader = ArrayLoader({"x": "val_x.npy", "y": "val_y.npy"})
    config = {"device": "CPU", "backend": "openvino", "metric_bounds": [0, 1]}
    engine = IEEngine(config=config, data_loader=loader, metric=Accuracy(top_k=1))
    pipeline = create_pipeline([{"name": "AccuracyAwareQuantization", "params": PARAMS}], engine)
    compressed = pipeline.run(model)
    compress_model_weights(compressed)
    saved = save_model(compressed, str(tmp_path / "out"), "mnist_int8")
    assert saved == [{"name": "mnist_int8", "model": str(tmp_path / "out" / "mnist_int8.xml"),
                      "weights": str(tmp_path / "out" / "mnist_int8.bin")}]
    report = compressed.report
    assert report.reverted_ops > 0 and report.target_met
    batch = str(report.deployed["batch"])  # measured as the deployed check did (ov_eval: one thread, f32)
    measured = ov_script("ov_eval.py", "--model", saved[0]["model"], "--data", MNIST / "val.json", "--batch", batch)
    assert report.deployed["engine"] == "openvino-ir"
    assert report.deployed["metrics"][0]["value"] == measured["value"]
    assert measured["value"] >= report.metrics[0].baseline - PARAMS["maximal_drop"] - 1e-9
    # The quantized convolutions run in int8 in OpenVINO; the reverted ones stay f32.
    import onnx

    convolutions = {n.name for n in onnx.load(str(MNIST / "mnist_cnn.onnx")).graph.node if n.op_type == "Conv"}
    int8 = measured["convolutions"].get("u8", 0) + measured["convolutions"].get("i8", 0)
    assert int8 == len(convolutions - set(report.reverted)), measured


def test_save_model_never_overwrites_an_ir_input(tmp_path):
    made = ov_script("make_ir.py", MNIST / "mnist_cnn.onnx", tmp_path / "mnist_cnn.xml")
    model = load_model({"model": made["xml"]})
    assert model.weights == made["bin"]
    engine = IEEngine(config={"device": "CPU"}, data_loader=ArrayLoader({"x": "calib_x.npy", "y": "val_y.npy"}))
    compressed = create_pipeline([{"name": "DefaultQuantization", "params": {}}], engine).run(model)
    before = Path(made["bin"]).read_bytes()
    with pytest.raises(ValueError, match="would overwrite the input model"):
        save_model(compressed, str(tmp_path), "mnist_cnn")
    assert Path(made["bin"]).read_bytes() == before
    with pytest.raises(ValueError, match="only backend openvino"):
        create_pipeline([{"name": "DefaultQuantization", "params": {}}],
                        IEEngine(config={"device": "GPU", "backend": "tract"},
                                 data_loader=engine.data_loader)).run(model)
    # backend "auto" takes OpenVINO for a device other than the CPU, which says this machine has no GPU.
    with pytest.raises(RuntimeError, match="no device 'GPU'"):
        create_pipeline([{"name": "DefaultQuantization", "params": {}}],
                        IEEngine(config={"device": "GPU"}, data_loader=engine.data_loader)).run(model)


def quantizer_types(model: bytes) -> tuple:
    """The model's opset and the zero-point types of its DequantizeLinear nodes, sorted: which ops run at which
    bits, whatever the weight storage (int8 initializers, or FP32 ones behind QuantizeLinear)."""
    import onnx

    proto = onnx.load_from_string(model)
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    types = {i.name: i.data_type for i in proto.graph.initializer}
    zero_points = sorted(
        types.get(n.input[2], 0) for n in proto.graph.node if n.op_type == "DequantizeLinear" and len(n.input) > 2
    )
    return opset, zero_points


def both_forms(algorithm):
    """``pipeline.run`` on the bundled MNIST CNN: its default form (FP32 weights) and its compressed one."""
    model = load_model({"model_name": "mnist_cnn", "model": str(MNIST / "mnist_cnn.onnx")})
    loader = ArrayLoader({"x": "val_x.npy", "y": "val_y.npy"})
    engine = IEEngine(config={"device": "CPU"}, data_loader=loader, metric=Accuracy(top_k=1))
    compressed = create_pipeline([algorithm], engine).run(model)
    fp32_weights = compressed.to_bytes()
    compress_model_weights(compressed)
    return compressed.report, fp32_weights, compressed.to_bytes()


@pytest.mark.parametrize(
    "algorithm",
    [
        # A ladder: groups climb to 16 bits before FP32 (w16a16: the three-level weights get their levels back).
        {"name": "AccuracyAwareQuantization", "params": {**PARAMS, "fallback": ["w16a16", "fp32"]}},
        # GNA: the base algorithm starts 16-bit activations (POT's gna.json).
        {"name": "DefaultQuantization", "params": {"target_device": "GNA"}},
    ],
    ids=["ladder", "gna"],
)
def test_both_weight_forms_keep_the_precisions(algorithm):
    # Issue 24: the form pipeline.run returns before compress_model_weights was rebuilt from the reverted ops
    # only, so 16-bit steps and GNA's 16-bit activations came back as int8 there.
    report, fp32_weights, int8_weights = both_forms(algorithm)
    assert report.ops_by_precision["int16"] > 0, "the case must put ops at 16 bits"
    assert quantizer_types(fp32_weights) == quantizer_types(int8_weights)


def test_issue_26_empty_weights_for_an_onnx_model_is_no_weights():
    # POT reads "weights": "" as absent (its samples write it for ONNX models); it once stopped the run with
    # "weights '' given for '…mnist_cnn.onnx', which is not an OpenVINO IR".
    model = load_model({"model_name": "mnist_cnn", "model": str(MNIST / "mnist_cnn.onnx"), "weights": ""})
    engine = IEEngine(config={"device": "CPU"}, data_loader=ArrayLoader({"x": "calib_x.npy", "y": "calib_y.npy"}))
    compressed = create_pipeline([{"name": "DefaultQuantization", "params": {"stat_subset_size": 50}}], engine).run(model)
    assert compressed.report.quantized_ops > 0


class OlderItems(ArrayLoader):
    """POT's older item form, as its classification sample returns it: ``((index, annotation), data)``."""

    def __getitem__(self, index):
        return (index, int(self._y[index])), self._x[index]


def test_older_item_form_requests_numbers_and_init_logger(monkeypatch):
    # POT's classification sample: items ((index, label), image), an engine config with POT's infer-request
    # counts (worker threads of the run), init_logger choosing whether progress lines are printed (the progress
    # lines themselves only appear for tasks longer than a few seconds, so what the run is asked is checked).
    import aquant.pot as pot

    asked = []
    real = pot._aquant.run
    monkeypatch.setattr(pot._aquant, "run", lambda *args, **kwargs: asked.append(kwargs) or real(*args, **kwargs))
    model = load_model({"model_name": "mnist_cnn", "model": str(MNIST / "mnist_cnn.onnx")})
    algorithm = [{"name": "AccuracyAwareQuantization", "params": PARAMS}]
    reports = []
    try:
        for loader, config, level in [
            (ArrayLoader({"x": "val_x.npy", "y": "val_y.npy"}), {"device": "CPU"}, "WARNING"),
            (OlderItems({"x": "val_x.npy", "y": "val_y.npy"}),
             {"device": "CPU", "stat_requests_number": 4, "eval_requests_number": 2}, "INFO"),
        ]:
            pot.init_logger(level=level)
            reports.append(create_pipeline(algorithm, IEEngine(config, loader, Accuracy())).run(model).report)
    finally:
        pot.init_logger(level="INFO")
    quiet, loud = reports
    assert loud.reverted_ops > 0 and loud.reverted == quiet.reverted
    assert loud.metrics[0].final == quiet.metrics[0].final
    assert [(a["progress"], a["workers"]) for a in asked] == [(False, None), (True, 4)]
    with pytest.raises(ValueError, match="unknown level 'LOUD'"):
        pot.init_logger(level="LOUD")


class NamedInputItems(ArrayLoader):
    """Items whose first element is a dict: POT's ``_process_batch`` reads it as ``{input name: data}`` (its
    docstring's ``({img_id: label}, image)`` never reaches that code as an annotation)."""

    def __getitem__(self, index):
        return {"input": self._x[index]}, int(self._y[index])


DEFAULT = [{"name": "DefaultQuantization", "params": {}}]


def test_a_leading_dict_is_the_model_s_inputs_by_name():
    model = load_model({"model_name": "mnist_cnn", "model": str(MNIST / "mnist_cnn.onnx")})
    scores = []
    for loader in (ArrayLoader, NamedInputItems):
        engine = IEEngine({"device": "CPU"}, loader({"x": "val_x.npy", "y": "val_y.npy"}), Accuracy())
        scores.append(create_pipeline(DEFAULT, engine).evaluate(model)["accuracy@top1"])
    assert scores[0] == scores[1] > 0.5
    with pytest.raises(ValueError, match="nope"):
        engine = IEEngine({"device": "CPU"}, BadNames({"x": "val_x.npy", "y": "val_y.npy"}), Accuracy())
        create_pipeline(DEFAULT, engine).evaluate(model)


class BadNames(ArrayLoader):
    def __getitem__(self, index):
        return {"nope": self._x[index]}, int(self._y[index])
