"""OpenVINO POT's Python API on aquant: a POT script ports by changing its imports.

    from aquant.pot import (DataLoader, IEEngine, Metric, compress_model_weights, create_pipeline,
                            load_model, save_model)
    from aquant.pot import init_logger  # openvino.tools.pot.utils.logger's

``DataLoader`` and ``Metric`` are the base classes POT scripts subclass; ``load_model``, ``IEEngine``,
``create_pipeline``, ``compress_model_weights`` and ``save_model`` take POT's config dicts. Algorithms are POT's
``{"name": "DefaultQuantization" | "AccuracyAwareQuantization", "params": {...}}`` with POT's parameter names
(unknown ones are refused with a suggestion). A ``Metric`` is driven through ``reset``/``update``; per-sample
values come from ``value`` as POT's own accuracy-aware algorithm reads them (``{name: [per-sample values]}``), so
aquant ranks on them as on its built-in metrics (and stops a ranking candidate early when the engine config
declares the range of one value, ``"metric_bounds": [0, 1]``). A ``Metric`` without ``value`` is scored over the
whole set (``reset``, ``update`` each sample, ``avg_value``).

Models are ONNX or OpenVINO IR (``{"model": "model.xml", "weights": "model.bin"}``); a model loaded from an IR is
saved as an IR in NNCF's form by ``save_model`` and, with ``"backend": "openvino"``, evaluated by OpenVINO on the
engine's ``device``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from . import _aquant
from ._api import _find_engines
from ._data import Source
from ._report import Report


#: Whether runs and evaluations print their progress lines on stderr (:func:`init_logger`).
_progress = True


def init_logger(level: Union[str, int] = "INFO") -> None:
    """POT's ``init_logger`` (``openvino.tools.pot.utils.logger``): at ``INFO`` or more verbose, ``pipeline.run``
    and ``pipeline.evaluate`` print their progress lines on stderr (the default); above it they are quiet."""
    global _progress
    number = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(number, int):
        raise ValueError(f"init_logger: unknown level {level!r} (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    _progress = number <= logging.INFO


class DataLoader(ABC):
    """POT's ``DataLoader``: ``__getitem__(i)`` returns ``(data, annotation)`` or ``(data, annotation,
    metadata)`` for one sample, ``data`` an array (or dict input name → array) *without* the batch axis, as POT's
    engine batches samples itself."""

    def __init__(self, config: Any = None):
        self.config = config

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> Any: ...


class Metric(ABC):
    """POT's ``Metric``: ``update(output, target)`` with the model's outputs (list of arrays) and the batch's
    annotations, ``value`` (``{name: [values of the last update]}``), ``avg_value`` (``{name: value}``),
    ``reset()``, ``get_attributes()`` (``{name: {"direction": "higher-better"|"higher-worse", "type": ...}}``)."""

    def __init__(self):
        self.reset()

    @property
    def value(self) -> dict:
        """Per-sample values of the last update; a subclass without it is scored over the whole set."""
        raise NotImplementedError

    @property
    @abstractmethod
    def avg_value(self) -> dict: ...

    @property
    def higher_better(self) -> bool:
        return True

    @abstractmethod
    def update(self, output: Any, target: Any) -> None: ...

    @abstractmethod
    def reset(self) -> None: ...

    def get_attributes(self) -> dict:
        return {}


def _parts(item: Any) -> tuple[Any, Any]:
    """``(data, annotation)`` of a loader item, read as POT's engine reads it (``IEEngine._process_batch``):
    ``(data, annotation[, metadata])``, or POT's older ``((img_id, annotation), data[, metadata])`` — an item
    whose first element is a tuple —, as its older samples return."""
    if not isinstance(item, (tuple, list)):
        return item, None
    if isinstance(item[0], tuple) and len(item) > 1:
        return item[1], item[0][1] if len(item[0]) > 1 else None
    return item[0], item[1] if len(item) > 1 else None


def _loader_source(loader: Any) -> Source:
    """A POT data loader as a source: data batched (leading axis added), and its annotation."""

    def data(item: Any) -> Any:
        sample = _parts(item)[0]
        if isinstance(sample, dict):
            return {name: np.expand_dims(np.asarray(x), 0) for name, x in sample.items()}
        return np.expand_dims(np.asarray(sample), 0)

    return Source(loader, data, lambda item: _parts(item)[1])


def _metric_spec(metric: Any, bounds: Optional[tuple] = None) -> tuple:
    """A POT metric as the Rust side takes it, with the declared range of one value (or None)."""
    attributes = metric.get_attributes() or {}
    names = list(attributes)
    if not names:
        raise ValueError("the metric's get_attributes() must name it: {name: {'direction': ..., 'type': ...}}")
    if len(names) > 1:
        raise ValueError(f"the metric gives several values {names}: give a Metric with one (aquant controls one)")
    name = names[0]
    direction = attributes[name].get("direction", "higher-better" if metric.higher_better else "higher-worse")
    kind = attributes[name].get("type", "accuracy")
    per_sample = not (isinstance(metric, Metric) and type(metric).value is Metric.value)
    if bounds is not None and not per_sample:
        raise ValueError("engine_config.metric_bounds is for a Metric with per-sample values (value)")
    bounds = None if bounds is None else (float(bounds[0]), float(bounds[1]))
    return ("pot" if per_sample else "pot_set", metric, name, direction, kind, bounds)


class _Model:
    """A model as ``load_model`` gives it: its file, its weights file for an IR, and its name."""

    def __init__(self, path: str, name: str, weights: Optional[str] = None):
        self.path = path
        self.name = name
        self.weights = weights

    @property
    def is_ir(self) -> bool:
        return self.weights is not None


def load_model(model_config: dict) -> _Model:
    """POT's ``load_model``: ``{"model_name": ..., "model": "path.onnx"}``, or an OpenVINO IR ``{"model":
    "model.xml", "weights": "model.bin"}`` (``weights`` defaults to the ``.bin`` beside the ``.xml``; an ONNX
    model carries its weights)."""
    unknown = set(model_config) - {"model_name", "model", "weights"}
    if unknown:
        raise ValueError(f"unknown model_config keys {sorted(unknown)} (model_name, model, weights)")
    path = os.fspath(model_config["model"])
    if not Path(path).is_file():
        raise ValueError(f"model_config.model: '{path}' is not a file")
    weights = model_config.get("weights") or None  # POT reads an empty string as no weights file
    if Path(path).suffix.lower() == ".xml":
        weights = os.fspath(weights) if weights else str(Path(path).with_suffix(".bin"))
        if not Path(weights).is_file():
            raise ValueError(f"model_config.weights: '{weights}' is not a file")
    elif weights:
        raise ValueError("model_config.weights: an ONNX model carries its weights; leave it empty")
    return _Model(path, model_config.get("model_name") or Path(path).stem, weights)


class IEEngine:
    """POT's ``IEEngine(config, data_loader, metric)``. ``config``: ``{"device": "CPU"}`` (another device runs on
    OpenVINO), plus aquant's ``"backend"`` ("auto", the default: the saved model's engine when it is installed,
    else tract; "tract", "ort" or "openvino"), ``"batch_size"`` and
    ``"metric_bounds"`` (the range of one per-sample value, e.g. ``[0, 1]``: the ranking then stops a candidate
    early, as for built-in metrics; a value outside it is an error). POT's ``stat_requests_number`` and
    ``eval_requests_number`` (parallel inference requests) set the worker threads of ``pipeline.run`` (the larger
    of the two; results do not depend on it). ``"executor": {"type": "ray", ...}`` runs AccuracyAwareQuantization's
    evaluations on a Ray cluster (the rest of the entry: :class:`aquant.ray.RayExecutor`'s arguments; its workers
    end with the run), or an ``aquant.ray.RayExecutor`` the caller keeps."""

    KEYS = ("device", "backend", "batch_size", "type", "metric_bounds", "stat_requests_number",
            "eval_requests_number", "executor")

    def __init__(self, config: dict, data_loader: Any = None, metric: Any = None):
        unknown = set(config) - set(self.KEYS)
        if unknown:
            raise ValueError(f"unknown engine_config keys {sorted(unknown)} ({', '.join(self.KEYS)})")
        if config.get("type", "simplified") not in ("simplified", "accuracy_checker"):
            raise ValueError(f"engine_config.type '{config['type']}' is not a POT engine type")
        self.config = config
        self.data_loader = data_loader
        self.metric = metric
        self.source = None if data_loader is None else _loader_source(data_loader)

    def _options(self) -> dict:
        return {
            "backend": self.config.get("backend", "auto"),
            "batch_size": int(self.config.get("batch_size", 1)),
            "device": self.config.get("device", "CPU"),
            "progress": _progress,
        }

    def _workers(self) -> Optional[int]:
        requests = [int(self.config[key]) for key in ("stat_requests_number", "eval_requests_number") if key in self.config]
        return max(requests) if requests else None

    def _metric(self) -> tuple:
        return _metric_spec(self.metric, self.config.get("metric_bounds"))

    def _executor(self, accuracy_aware: bool) -> Any:
        """The config's executor, bound to this engine's metric and data (None without one)."""
        config = self.config.get("executor")
        if config is None:
            return None
        if not accuracy_aware:
            raise ValueError("engine_config.executor is for AccuracyAwareQuantization (DefaultQuantization has no search)")
        from .ray import executor_from_config

        executor = executor_from_config(config)
        executor._bind(self._metric(), self.source)
        return executor


class CompressedModel:
    """What ``pipeline.run`` returns: the quantized model, its report, and both weight storages until
    ``compress_model_weights`` picks int8."""

    def __init__(self, fp32_weights: bytes, int8_weights: bytes, report: Report, source: _Model):
        self._forms = {False: fp32_weights, True: int8_weights}
        self.source = source.path
        self.is_ir = source.is_ir
        #: The input files (model, IR weights), which saving must never overwrite.
        self.inputs = {Path(p).resolve() for p in (source.path, source.weights) if p}
        self.compressed = False
        self.report = report
        self.name = source.name

    def to_bytes(self) -> bytes:
        """The ONNX model: FP32 weights behind QuantizeLinear/DequantizeLinear, int8 once compressed."""
        return self._forms[self.compressed]


class Pipeline:
    """POT's pipeline: one algorithm bound to an engine."""

    def __init__(self, algorithm: dict, engine: IEEngine):
        self.algorithm = algorithm
        self.engine = engine

    def run(self, model: _Model) -> CompressedModel:
        """Runs the algorithm on ``model`` (POT's ``pipeline.run``). Ctrl-C stops it at the next safe point and
        raises ``KeyboardInterrupt`` carrying the best model so far as ``.model``."""
        engine = self.engine
        if engine.source is None:
            raise ValueError("the engine has no data_loader")
        accuracy_aware = self.algorithm.get("name") == "AccuracyAwareQuantization"
        if accuracy_aware and engine.metric is None:
            raise ValueError("AccuracyAwareQuantization needs an engine with a metric")
        _find_engines()
        executor = engine._executor(accuracy_aware)
        try:
            int8, report_text, summary, interrupted, fp32 = _aquant.run(
                model.path,
                json.dumps(self.algorithm),
                engine.source,
                engine.source if accuracy_aware else None,
                engine._metric() if accuracy_aware else None,
                both_forms=True,
                compress_weights=True,
                weights=model.weights,
                output_format="ir" if model.is_ir else "onnx",
                workers=engine._workers(),
                executor=executor,
                **engine._options(),
            )
        finally:
            if executor is not None and isinstance(engine.config.get("executor"), dict):
                executor.shutdown()
        compressed = CompressedModel(fp32, int8, Report.from_json(report_text, summary), model)
        if interrupted:
            stop = KeyboardInterrupt("interrupted: the best model so far is .model")
            stop.model = compressed
            raise stop
        return compressed

    def evaluate(self, model: Any) -> dict:
        """The engine's metric on its data for ``model`` (POT's ``pipeline.evaluate``): ``{name: value}``."""
        engine = self.engine
        if engine.metric is None or engine.source is None:
            raise ValueError("pipeline.evaluate needs an engine with a data_loader and a metric")
        if isinstance(model, CompressedModel):
            given, weights = model.to_bytes(), None
        else:
            given, weights = model.path, model.weights
        name, value = _aquant.evaluate(given, engine.source, engine._metric(), weights=weights, **engine._options())
        return {name: value}


def create_pipeline(algorithms: list, engine: IEEngine) -> Pipeline:
    """POT's ``create_pipeline``: exactly one algorithm (AccuracyAwareQuantization runs DefaultQuantization
    itself)."""
    if len(algorithms) != 1:
        raise ValueError(
            f"give one algorithm, not {len(algorithms)} (AccuracyAwareQuantization already runs DefaultQuantization)"
        )
    algorithm = dict(algorithms[0])
    if algorithm.get("name") not in ("DefaultQuantization", "AccuracyAwareQuantization"):
        raise ValueError(f"unknown algorithm {algorithm.get('name')!r} (DefaultQuantization, AccuracyAwareQuantization)")
    return Pipeline(algorithm, engine)


def compress_model_weights(model: CompressedModel) -> None:
    """Stores the quantized ops' weights as int8 (POT's ``compress_model_weights``): same numbers, 4× smaller."""
    model.compressed = True


def save_model(model: CompressedModel, save_path: str, model_name: Optional[str] = None) -> list:
    """Writes ``save_path/model_name.onnx``, or for a model loaded from an IR ``model_name.xml`` + ``.bin`` in
    NNCF's form (weights first, so an ``.xml`` never sits beside a ``.bin`` that is not its own), each atomically
    (temporary file, fsync, rename), and returns POT's ``[{"name": ..., "model": path[, "weights": path]}]``."""
    name = model_name or model.name
    directory = Path(save_path)
    directory.mkdir(parents=True, exist_ok=True)
    if model.is_ir:
        xml, bin_ = directory / f"{name}.xml", directory / f"{name}.bin"
        targets = {"model": xml, "weights": bin_}
    else:
        targets = {"model": directory / f"{name}.onnx"}
    for target in targets.values():
        if target.exists() and target.resolve() in model.inputs:
            raise ValueError(f"save_model would overwrite the input model '{model.source}'; choose another path or name")
    if model.is_ir:
        text, weights = _aquant.to_ir(model.to_bytes())
        _write_atomic(bin_, weights)
        _write_atomic(xml, text.encode())
    else:
        _write_atomic(targets["model"], model.to_bytes())
    return [{"name": name, **{key: str(path) for key, path in targets.items()}}]


def _write_atomic(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
