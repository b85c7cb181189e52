"""NNCF's entry points with NNCF's signatures: ``quantize_with_accuracy_control`` and ``quantize``."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from . import _aquant
from ._data import source
from ._lent import lending
from ._params import (
    DropType,
    TargetDevice,
    ignored_scope_params,
    quantization_params,
    restorer_params,
    value,
)
from ._report import Report

#: The report of the last run in this process (:func:`last_report`).
_last: Optional[Report] = None


def last_report() -> Optional[Report]:
    """The report of the last :func:`quantize_with_accuracy_control` or :func:`quantize` run (also written to its
    output directory as report.json); None before the first. Set before an interrupted run raises."""
    return _last


def _output_dir(output_dir: Any, progress: bool) -> str:
    """Where a run writes its model and report.json: ``output_dir``, or a fresh directory, named on stderr."""
    if output_dir is not None:
        return os.fspath(output_dir)
    fresh = tempfile.mkdtemp(prefix="aquant-")
    if progress:
        print(f"aquant: writing the quantized model and report.json to {fresh}", file=sys.stderr)
    return fresh

#: Metrics aquant computes itself (``metric="top1"``…): annotations must then be integer class indices.
BUILTIN_METRICS = ("top1", "top5", "agreement", "mse", "nmse")


def _is_openvino_model(model: Any) -> bool:
    """An ``openvino.Model`` (NNCF's OpenVINO input), recognised without importing openvino."""
    return type(model).__module__.startswith("openvino") and hasattr(model, "get_ordered_ops")


def _model_input(model: Any, scratch: str) -> tuple[Any, str]:
    """The model as the Rust side takes it (bytes or a path) and what kind the caller gave. An
    ``openvino.Model`` is saved as an IR in ``scratch`` (OpenVINO's own serialisation, f32 weights kept)."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "bytes"
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model), "path"
    if hasattr(model, "SerializeToString"):
        return model.SerializeToString(), "proto"
    if _is_openvino_model(model):
        import openvino as ov

        xml = os.path.join(scratch, "model.xml")
        ov.save_model(model, xml, compress_to_fp16=False)
        return xml, "openvino"
    raise TypeError(
        f"model must be an onnx.ModelProto, an openvino.Model, bytes or a path, not {type(model).__name__}"
    )


def _output_format(given: Any, kind: str) -> str:
    """The saved model's format: an IR for an IR given (an ``openvino.Model`` or a ``.xml`` path), else ONNX."""
    is_ir = kind == "openvino" or (kind == "path" and Path(given).suffix.lower() == ".xml")
    return "ir" if is_ir else "onnx"


def _model_output(data: bytes, kind: str, output: Optional[str]) -> Any:
    """The quantized model as the caller gave the input: a ModelProto, an openvino.Model (the IR aquant saves,
    read by OpenVINO), bytes, or the path it was saved to."""
    if kind == "proto":
        import onnx  # only needed when the caller works with ModelProto objects

        return onnx.load_from_string(data)
    if kind == "openvino":
        import numpy as np
        import openvino as ov

        xml, weights = _aquant.to_ir(data)
        return ov.Core().read_model(xml, ov.Tensor(np.frombuffer(weights, dtype=np.uint8).copy()))
    if kind == "path" and output is not None:
        return output
    return data


def metric_spec(metric: Any, bounds: Optional[tuple] = None) -> tuple:
    """A per-sample metric as the Rust side takes it: a built-in name or ``callable(outputs, annotation)``, with
    the declared bounds of one sample's value (or None)."""
    bounds = None if bounds is None else (float(bounds[0]), float(bounds[1]))
    if isinstance(metric, str):
        return ("builtin", metric, metric, "higher-better", "accuracy", bounds)
    if callable(metric):
        name = getattr(metric, "__name__", type(metric).__name__)
        return ("callable", metric, name, "higher-better", "accuracy", bounds)
    raise TypeError(f"metric must be a built-in name ({', '.join(BUILTIN_METRICS)}) or a callable, not {metric!r}")


def _package_dir(name: str) -> Optional[Path]:
    """Where this interpreter's package ``name`` is, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _find_engines() -> None:
    """Points the "ort" and "openvino" backends at this interpreter's onnxruntime and openvino packages (not
    at the first python3 on PATH), unless ORT_DYLIB_PATH / OPENVINO_LIB_PATH say otherwise."""
    found = [
        ("ORT_DYLIB_PATH", "onnxruntime", "capi", ("libonnxruntime.so*", "onnxruntime.dll", "libonnxruntime*.dylib")),
        ("OPENVINO_LIB_PATH", "openvino", "libs", ("libopenvino_c.so*", "openvino_c.dll", "libopenvino_c*.dylib")),
    ]
    for variable, package, subdir, patterns in found:
        directory = _package_dir(package)
        if variable in os.environ or directory is None:
            continue
        libraries = [lib for pattern in patterns for lib in sorted((directory / subdir).glob(pattern))]
        if libraries:
            os.environ[variable] = str(libraries[0])


def run(model: Any, algorithm: dict, calibration: Any, validation: Any, metric: Optional[tuple], **options: Any):
    """Runs one algorithm; returns ``(quantized model, Report)`` and raises ``KeyboardInterrupt`` (carrying
    both as ``.model`` and ``.report``) when Ctrl-C stopped it. A ``validation_fn`` is lent the model with the
    face NNCF's backend for the model's kind lends (:mod:`aquant._lent`)."""
    global _last
    _find_engines()
    executor = options.get("executor")
    if executor is not None:
        from .ray import RayExecutor

        if not isinstance(executor, RayExecutor):
            raise TypeError(f"executor must be an aquant.ray.RayExecutor or None, not {executor!r}")
        executor._bind(metric, validation)
    with tempfile.TemporaryDirectory(prefix="aquant-") as scratch:
        given, kind = _model_input(model, scratch)
        output_format = _output_format(given, kind)
        if metric is not None and metric[0] == "validation_fn":
            face = "openvino" if output_format == "ir" else "onnx"
            metric = (metric[0], lending(metric[1], face), *metric[2:])
        data, report_text, summary, interrupted, _ = _aquant.run(
            given, json.dumps(algorithm), calibration, validation, metric, output_format=output_format, **options
        )
    report = Report.from_json(report_text, summary)
    _last = report
    result = _model_output(data, kind, report.output)
    if interrupted:
        stop = KeyboardInterrupt(
            "interrupted: the best model so far is returned as .model"
            + (f" and saved to {report.output}" if report.output else "")
        )
        stop.model, stop.report = result, report
        raise stop
    return result, report


def _base_params(preset, target_device, subset_size, fast_bias_correction, model_type, ignored_scope, advanced):
    model_type = None if model_type is None else value(model_type)
    advanced = quantization_params(advanced, model_type)
    if preset is None:  # NNCF: mixed for transformers, performance otherwise
        preset = "mixed" if model_type == "transformer" else "performance"
    params: dict[str, Any] = {
        "preset": value(preset),
        "stat_subset_size": subset_size,
        "fast_bias_correction": fast_bias_correction and not advanced["disable_bias_correction"],
        "model_type": model_type,
    }
    if advanced["overflow_fix"] is not None:
        params["overflow_fix"] = advanced["overflow_fix"]
    if advanced["activations"] is not None:
        params["activations"] = advanced["activations"]
    if ignored_scope is not None:
        params["ignored_scope"] = ignored_scope_params(ignored_scope)
    if value(target_device) == "CPU_SPR":
        raise ValueError("target_device CPU_SPR is not supported by aquant (ANY, CPU or GNA)")
    return params, value(target_device)


def quantize_with_accuracy_control(
    model: Any,
    calibration_dataset: Any,
    validation_dataset: Any,
    validation_fn: Optional[Callable] = None,
    max_drop: Union[float, Sequence[float]] = 0.01,
    drop_type: Union[DropType, str] = DropType.ABSOLUTE,
    preset: Any = None,
    target_device: Union[TargetDevice, str] = TargetDevice.ANY,
    subset_size: int = 300,
    fast_bias_correction: bool = True,
    model_type: Any = None,
    ignored_scope: Any = None,
    advanced_quantization_parameters: Any = None,
    advanced_accuracy_restorer_parameters: Any = None,
    *,
    metric: Any = None,
    metric_bounds: Optional[tuple] = None,
    fallback: Union[str, list, None] = None,
    holdout_fraction: float = 0.0,
    confidence: Optional[float] = None,
    backend: str = "auto",
    overflow_fix: Any = None,
    deployed_check: bool = True,
    batch_size: int = 1,
    deployed_batch: int = 1,
    compress_weights: bool = True,
    progress: bool = True,
    output_dir: Optional[Union[str, os.PathLike]] = None,
    external_data: str = "auto",
    resume: bool = False,
    return_report: bool = False,
    executor: Any = None,
    memory_limit: Union[int, str, None] = None,
):
    """NNCF's ``quantize_with_accuracy_control``, run by aquant. Returns what NNCF returns: the quantized model,
    of the same kind as ``model`` (an ``onnx.ModelProto``, an ``openvino.Model``, bytes, or for a path the path of
    the saved model). The typed :class:`Report` is written to the output directory as report.json (``output_dir``,
    else a fresh directory named on stderr), kept as :func:`last_report`, and with ``return_report=True``
    returned beside the model: ``(model, report)``.

    ``validation_fn(model, data)`` is NNCF's: ``data`` holds the raw items of the samples being evaluated, and
    ``model`` is what NNCF's backend lends: for an ONNX model an ``onnx.ModelProto`` (parsed only when an attribute
    is read; ``SerializeToString()`` needs no parse), for an OpenVINO model a compiled model (``outputs``,
    ``output(i)``, a call returning results keyed by output). Both are also callable on what ``transform_func``
    makes of the items, with inference in Rust without the GIL and the inputs aquant has just run answered
    without inference — much faster than a session built from ``SerializeToString()``. It returns the metric,
    or ``(metric, per_sample_values)`` (``(metric, None)``: no values), which lets aquant pick the ranking subset and
    rank groups on them (on whole-subset calls: no early stop); a bare metric is ranked by output NMSE. Instead of it, ``metric`` may be a per-sample ``callable(outputs, annotation)`` or
    a built-in name (``"top1"``…), the fastest path. ``metric_bounds=(low, high)`` declares the range of one
    sample's value of a Python ``metric`` (``(0, 1)`` for an accuracy): the ranking can then stop evaluating a
    candidate once the remaining samples cannot change its rank, as it does for the built-ins (a
    ``validation_fn`` sees whole sets, so it cannot stop early); a value outside the bounds is an error.

    ``max_drop=[0.001, 0.003, 0.01]`` runs one search to the tightest target and saves, for each looser one, the
    first model of the search's path that meets it (on the deployed engine too) in
    ``output_dir/max_drop_<value>/``, as ``--max-drop 0.001,0.003,0.01``; the model returned is the tightest's,
    and ``report.targets`` says what each target got. ``report.front`` lists every model the search evaluated with
    its metrics, size, ops by precision and latency on the deployed engine.

    ``fallback`` is the precision ladder a group climbs when it must move (``"w8a16,fp32"`` or a list; default
    ``"fp32"``, a plain revert), as the command line's ``--fallback``. ``holdout_fraction`` keeps that share of
    the validation set from the search and judges the saved model there afterwards (``report.confirmation``), as
    ``--holdout-fraction``. ``confidence`` (e.g. ``0.95``) judges the target on the upper end of each drop's
    interval at that level instead of the drop itself, as ``--confidence``.

    aquant's own: ``backend`` ("auto", "tract", "ort" or "openvino"; "auto": ONNX Runtime, where the saved ONNX
    model is deployed, when it is installed, else tract; ``report.backend`` says which and why), ``overflow_fix`` (also in
    ``advanced_quantization_parameters``), ``deployed_check`` (judge the saved model on ONNX Runtime),
    ``batch_size``, ``deployed_batch`` (the batch the deployed check runs at, the serving batch: on AMX CPUs
    int8 results can depend on it), ``compress_weights``, ``progress`` (lines on stderr), ``output_dir`` (model.onnx, report.json,
    intermediate/, and the journal that ``resume=True`` continues an interrupted run from), ``external_data``
    (``"auto"``, ``"always"`` or ``"never"``: whether ``output_dir`` gets the weights in ``model.onnx.data``, as
    ``--external-data``; auto when the input had external data or the model would pass 2 GiB), ``return_report``,
    ``executor`` (an :class:`aquant.ray.RayExecutor`: the search's evaluations run on a Ray cluster, the decisions
    here), ``memory_limit`` (bytes, or a size such as ``"8G"``, as ``--memory-limit``: the run picks its threads
    and FP32 output cache to stay under it, or raises at once with the least it needs; ``report.memory`` says
    what it chose).
    """
    if resume and output_dir is None:
        raise ValueError("resume=True continues the run in output_dir: give output_dir")
    if (validation_fn is None) == (metric is None):
        raise ValueError("give exactly one of validation_fn (NNCF) and metric (a per-sample callable or name)")
    if validation_fn is not None:
        if not callable(validation_fn):
            raise TypeError("validation_fn must be callable: validation_fn(model, data) -> float")
        name = getattr(validation_fn, "__name__", "validation_fn")
        if metric_bounds is not None:
            raise ValueError("metric_bounds is for a per-sample metric: validation_fn sees whole sets")
        spec = ("validation_fn", validation_fn, name, "higher-better", "accuracy", None)
    else:
        spec = metric_spec(metric, metric_bounds)
    base, device = _base_params(
        preset, target_device, subset_size, fast_bias_correction, model_type, ignored_scope,
        advanced_quantization_parameters,
    )
    if overflow_fix is not None:
        base["overflow_fix"] = value(overflow_fix)
    restorer = restorer_params(advanced_accuracy_restorer_parameters)
    max_iterations = restorer["max_num_iterations"]
    control = {
        "max_drop": list(max_drop) if isinstance(max_drop, (list, tuple)) else max_drop,
        "drop_type": value(drop_type),
        "ranking_subset_size": restorer["ranking_subset_size"],
        "max_num_iterations": None if max_iterations >= 2**31 else max_iterations,
        "tune_hyperparams": restorer["tune_hyperparams"],
        "restore_mode": value(restorer["restore_mode"]),
    }
    if fallback is not None:
        control["fallback"] = fallback.split(",") if isinstance(fallback, str) else [value(f) for f in fallback]
    if holdout_fraction:
        control["holdout_fraction"] = holdout_fraction
    if confidence is not None:
        control["confidence"] = confidence
    calibration = source(calibration_dataset, "calibration_dataset")
    validation = (
        calibration if validation_dataset is calibration_dataset else source(validation_dataset, "validation_dataset")
    )
    intermediate = restorer["intermediate_model_dir"]
    model, report = run(
        model,
        {"name": "AccuracyAwareQuantization", "params": {**base, **control}},
        calibration,
        validation,
        spec,
        target_device=device,
        backend=backend,
        deployed_check=deployed_check,
        batch_size=batch_size,
        deployed_batch=deployed_batch,
        compress_weights=compress_weights,
        progress=progress,
        output_dir=_output_dir(output_dir, progress),
        external_data=external_data,
        intermediate_dir=None if intermediate is None else os.fspath(intermediate),
        resume=resume,
        workers=restorer["num_ranking_workers"],
        executor=executor,
        memory_limit=memory_limit,
    )
    return (model, report) if return_report else model


def quantize(
    model: Any,
    calibration_dataset: Any,
    mode: Any = None,
    preset: Any = None,
    target_device: Union[TargetDevice, str] = TargetDevice.ANY,
    subset_size: int = 300,
    fast_bias_correction: bool = True,
    model_type: Any = None,
    ignored_scope: Any = None,
    advanced_parameters: Any = None,
    *,
    backend: str = "auto",
    overflow_fix: Any = None,
    batch_size: int = 1,
    compress_weights: bool = True,
    progress: bool = True,
    output_dir: Optional[Union[str, os.PathLike]] = None,
    return_report: bool = False,
    external_data: str = "auto",
    memory_limit: Union[int, str, None] = None,
):
    """NNCF's ``quantize`` (post-training INT8, no accuracy control), run by aquant: the quantized model as
    :func:`quantize_with_accuracy_control` returns it (the report in the output directory, :func:`last_report`, and
    with ``return_report=True`` beside the model; ``external_data`` and ``memory_limit`` as there). ``mode`` (NNCF's
    FP8 modes) must be None."""
    if mode is not None:
        raise ValueError(f"mode={mode!r} is not supported by aquant (INT8 only: leave mode=None)")
    base, device = _base_params(
        preset, target_device, subset_size, fast_bias_correction, model_type, ignored_scope, advanced_parameters
    )
    if overflow_fix is not None:
        base["overflow_fix"] = value(overflow_fix)
    model, report = run(
        model,
        {"name": "DefaultQuantization", "params": base},
        source(calibration_dataset, "calibration_dataset"),
        None,
        None,
        target_device=device,
        backend=backend,
        deployed_check=False,
        batch_size=batch_size,
        compress_weights=compress_weights,
        progress=progress,
        output_dir=_output_dir(output_dir, progress),
        external_data=external_data,
        memory_limit=memory_limit,
    )
    return (model, report) if return_report else model


