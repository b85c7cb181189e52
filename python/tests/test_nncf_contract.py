"""Issue #26: NNCF's contract exactly. ``quantize_with_accuracy_control`` and ``quantize`` return the model (the
report goes to the output directory, :func:`aquant.last_report`, and with ``return_report=True`` beside the
model); every field of NNCF's ``AdvancedQuantizationParameters`` is honoured or refused by name; and
``validation_fn`` is lent what NNCF lends: an ``onnx.ModelProto`` (parsed only when touched) for an ONNX model, a
compiled model for an OpenVINO one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import aquant
from aquant.pot import DataLoader, IEEngine, compress_model_weights, create_pipeline, load_model
from conftest import MNIST, Digits, assert_deployed_drop, nncf_datasets, transform

MAX_DROP = 0.01
MINMAX = aquant.RangeEstimatorParameters(
    min=aquant.StatisticsCollectorParameters("min", "min"), max=aquant.StatisticsCollectorParameters("max", "max")
)


def validate(model: onnx.ModelProto, data) -> float:
    """A validation function as NNCF's ONNX examples write it: the input name from ``model.graph``, its own ONNX
    Runtime session from ``model.SerializeToString()``."""
    import onnxruntime as ort

    input_name = model.graph.input[0].name
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    output_names = [output.name for output in session.get_outputs()]
    hits = [np.argmax(session.run(output_names, {input_name: transform(item)})[0]) == item[1] for item in data]
    return float(np.mean(hits))


@pytest.mark.parametrize("returns", ["float", "float_and_none"])
def test_an_nncf_onnx_script_runs_unchanged(mnist, tmp_path, capsys, returns):
    # The script: a ModelProto in, validate() reading model.graph and building its own session, the
    # result given to onnx.save. The YOLOv8 example's validation function returns (metric, None).
    validation_fn = validate if returns == "float" else (lambda model, data: (validate(model, data), None))
    calibration, validation = nncf_datasets(mnist)
    quantized = aquant.quantize_with_accuracy_control(
        onnx.load(str(mnist[0])), calibration, validation, validation_fn=validation_fn, max_drop=MAX_DROP
    )
    assert isinstance(quantized, onnx.ModelProto)
    onnx.save(quantized, tmp_path / "int8.onnx")
    report = aquant.last_report()
    out = Path(report.output).parent
    assert f"aquant: writing the quantized model and report.json to {out}" in capsys.readouterr().err
    assert json.loads((out / "report.json").read_text()) == report.to_dict()
    assert (out / "model.onnx").read_bytes() == (tmp_path / "int8.onnx").read_bytes()
    assert report.target_met and report.metrics[0].name == ("validate" if returns == "float" else "<lambda>")
    assert_deployed_drop(tmp_path / "int8.onnx", mnist[2], mnist[3], mnist[0], MAX_DROP)


def test_the_lent_onnx_model_is_parsed_only_when_touched(mnist, monkeypatch):
    parses = []
    real = onnx.load_from_string
    monkeypatch.setattr(onnx, "load_from_string", lambda data: parses.append(len(data)) or real(data))
    calibration, validation = nncf_datasets(mnist)

    def calls_only(model, data):
        hits = [np.argmax(model(transform(item))[0]) == item[1] for item in data]
        return float(np.mean(hits))

    seen = {}

    def reads_the_proto(model, data):
        seen.update(inputs=[i.name for i in model.graph.input], opset=model.opset_import[0].version,
                    nodes=len(model.graph.node))
        onnx.checker.check_model(model)  # NNCF code may check what it is lent
        return calls_only(model, data)

    kwargs = dict(max_drop=MAX_DROP, progress=False)
    aquant.quantize_with_accuracy_control(str(mnist[0]), calibration, validation, calls_only, **kwargs)
    assert parses == []  # a path in and a function that only calls the model: never parsed
    aquant.quantize_with_accuracy_control(str(mnist[0]), calibration, validation, reads_the_proto, **kwargs)
    assert parses and seen["inputs"] == ["input"] and seen["opset"] == 13 and seen["nodes"] > 0


def test_the_lent_openvino_model_is_a_compiled_model(mnist):
    # What NNCF's OpenVINO examples use of the CompiledModel they are lent: outputs, output(i), inputs, and a
    # call whose results are keyed by output port (and by index or name).
    import openvino as ov

    def validate_ov(compiled, data):
        output = compiled.outputs[0]
        assert compiled.output(0) == output == compiled.output(output.get_any_name())
        assert [port.any_name for port in compiled.inputs] == ["input"]
        hits = []
        for item in data:
            results = compiled(transform(item))
            assert results[output] is results[0] is results[output.any_name]
            assert list(results) == compiled.outputs and len(results.to_tuple()) == 1
            hits.append(np.argmax(results[output]) == item[1])
        return float(np.mean(hits))

    calibration, validation = nncf_datasets(mnist)
    model = aquant.quantize_with_accuracy_control(
        ov.convert_model(str(mnist[0])), calibration, validation, validate_ov, max_drop=MAX_DROP, progress=False
    )
    assert isinstance(model, ov.Model)
    assert aquant.last_report().target_met
    with pytest.raises(ValueError, match="validation_fn raised KeyError: .*no output 'nope'"):
        aquant.quantize_with_accuracy_control(
            ov.convert_model(str(mnist[0])), calibration, validation,
            lambda compiled, data: compiled.output("nope"), progress=False,
        )


def test_return_report_and_the_output_dir(mnist, tmp_path):
    calibration, _ = nncf_datasets(mnist)
    model, report = aquant.quantize(
        str(mnist[0]), calibration, subset_size=50, output_dir=tmp_path / "a", progress=False, return_report=True
    )
    assert aquant.last_report() is report and report.algorithm == "DefaultQuantization"
    only_model = aquant.quantize(str(mnist[0]), calibration, subset_size=50, output_dir=tmp_path / "b",
                                 progress=False)
    assert only_model == str(tmp_path / "b" / "model.onnx") and (tmp_path / "b" / "report.json").is_file()
    assert Path(model).read_bytes() == Path(only_model).read_bytes()
    with pytest.raises(ValueError, match="resume=True continues the run in output_dir"):
        aquant.quantize_with_accuracy_control(str(mnist[0]), calibration, calibration, metric="top1", resume=True)


@dataclasses.dataclass
class BiasCorrection:  # NNCF's AdvancedBiasCorrectionParameters, away from its defaults
    apply_for_all_nodes: bool = True
    threshold: float = None


@pytest.mark.parametrize(
    "field, setting, named",
    [
        ("quantize_outputs", True, "quantize_outputs"),
        ("disable_channel_alignment", False, "disable_channel_alignment"),
        ("batchwise_statistics", True, "batchwise_statistics"),
        ("activations_quantization_params", {"num_bits": 4}, "activations_quantization_params"),
        ("weights_quantization_params", {"num_bits": 4}, "weights_quantization_params"),
        ("quantizer_propagation_rule", "1", "quantizer_propagation_rule"),
        ("bias_correction_params", BiasCorrection(), "bias_correction_params"),
        ("backend_params", {"external_data_dir": "x"}, "backend_params"),
        ("weights_range_estimator_params", aquant.RangeEstimatorParameters(
            aquant.StatisticsCollectorParameters("quantile", "mean"),
            aquant.StatisticsCollectorParameters("quantile", "mean")), "weights_range_estimator_params"),
        ("activations_range_estimator_params", aquant.RangeEstimatorParameters(
            max=aquant.StatisticsCollectorParameters(clipping_value=6.0)), r"activations_range_estimator_params \(clipping_value"),
        ("activations_range_estimator_params", aquant.RangeEstimatorParameters(
            max=aquant.StatisticsCollectorParameters("raw")), r"activations_range_estimator_params \(statistics_type 'raw'"),
    ],
)
def test_an_advanced_field_aquant_cannot_honour_is_refused_by_name(mnist, field, setting, named):
    calibration, _ = nncf_datasets(mnist)
    advanced = aquant.AdvancedQuantizationParameters(**{field: setting})
    with pytest.raises(ValueError, match=f"not supported by aquant: {named}"):
        aquant.quantize(str(mnist[0]), calibration, advanced_parameters=advanced, progress=False)


def test_refusals_are_named_together_and_for_transformers_smooth_quant(mnist):
    calibration, _ = nncf_datasets(mnist)
    both = aquant.AdvancedQuantizationParameters(quantize_outputs=True, backend_params={"a": 1})
    with pytest.raises(ValueError, match="quantize_outputs; backend_params"):
        aquant.quantize(str(mnist[0]), calibration, advanced_parameters=both, progress=False)
    smooth = aquant.AdvancedQuantizationParameters(smooth_quant_alphas=aquant.AdvancedSmoothQuantParameters(matmul=0.5))
    with pytest.raises(ValueError, match=r"smooth_quant_alphas \(aquant has no SmoothQuant\)"):
        aquant.quantize(str(mnist[0]), calibration, model_type=aquant.ModelType.TRANSFORMER,
                        advanced_parameters=smooth, progress=False)
    with pytest.raises(ValueError, match="ignored_scope.subgraphs is not supported"):
        aquant.quantize(str(mnist[0]), calibration, progress=False, ignored_scope=aquant.IgnoredScope(
            subgraphs=[aquant.Subgraph(inputs=["/c1/Conv"], outputs=["/c2/Conv"])]))
    with pytest.raises(ValueError, match="ignored_scope.validate=False is not supported"):
        aquant.quantize(str(mnist[0]), calibration, progress=False, ignored_scope=aquant.IgnoredScope(validate=False))


class Images(DataLoader):
    """The calibration digits as a POT loader."""

    def __init__(self, x):
        super().__init__({})
        self._x = x

    def __len__(self):
        return len(self._x)

    def __getitem__(self, index):
        return self._x[index], 0


def test_honoured_advanced_fields(mnist):
    # Fields that change nothing in aquant (where NNCF gathers statistics; SmoothQuant off or not a transformer)
    # give the default's model; an activations range estimator is POT's range_estimator block, the same model.
    _, calib_x, _, _ = mnist
    calibration, _ = nncf_datasets(mnist)
    fp32 = (MNIST / "mnist_cnn.onnx").read_bytes()

    def quantized(advanced):
        return aquant.quantize(fp32, calibration, advanced_parameters=advanced, progress=False)

    default = quantized(None)
    assert quantized(aquant.AdvancedQuantizationParameters(
        inplace_statistics=False, smooth_quant_alphas=aquant.AdvancedSmoothQuantParameters(-1, 0.5),
        weights_range_estimator_params=MINMAX, disable_bias_correction=False,
    )) == default
    minmax = quantized(aquant.AdvancedQuantizationParameters(activations_range_estimator_params=MINMAX))
    assert minmax != default
    block = {"min": {"type": "min", "aggregator": "min"}, "max": {"type": "max", "aggregator": "max"}}
    pipeline = create_pipeline(
        [{"name": "DefaultQuantization", "params": {"preset": "performance", "activations": {"range_estimator": block}}}],
        IEEngine({"device": "CPU"}, Images(calib_x)),
    )
    pot = pipeline.run(load_model({"model_name": "mnist_cnn", "model": str(MNIST / "mnist_cnn.onnx"), "weights": ""}))
    compress_model_weights(pot)
    assert pot.to_bytes() == minmax
    assert quantized(aquant.AdvancedQuantizationParameters(disable_bias_correction=True)) != default


def test_nncf_parameter_objects_are_read_the_same(mnist):
    nncf = pytest.importorskip("nncf")
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    calibration, _ = nncf_datasets(mnist)
    fp32 = (MNIST / "mnist_cnn.onnx").read_bytes()
    ours = aquant.AdvancedQuantizationParameters(overflow_fix=aquant.OverflowFix.DISABLE,
                                                 activations_range_estimator_params=MINMAX)
    theirs = nncf.AdvancedQuantizationParameters(overflow_fix=nncf.OverflowFix.DISABLE,
                                                 activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)
    assert aquant.quantize(fp32, calibration, advanced_parameters=theirs, progress=False) == aquant.quantize(
        fp32, calibration, advanced_parameters=ours, progress=False)
    with pytest.raises(ValueError, match="not supported by aquant: quantize_outputs"):
        aquant.quantize(fp32, calibration, advanced_parameters=nncf.AdvancedQuantizationParameters(
            quantize_outputs=True), progress=False)
    with pytest.raises(ValueError, match="ignored_scope.subgraphs"):
        aquant.quantize(fp32, calibration, progress=False, ignored_scope=nncf.IgnoredScope(
            subgraphs=[nncf.Subgraph(inputs=["/c1/Conv"], outputs=["/c2/Conv"])]))
