"""aquant: accuracy-aware post-training INT8 quantization of ONNX models, in Rust.

NNCF users change one import::

    import aquant as nncf
    quantized = nncf.quantize_with_accuracy_control(model, calibration, validation, validation_fn, max_drop=0.01)

(the typed report is ``aquant.last_report()``, report.json in the output directory, or returned beside the model
with ``return_report=True``). POT users import from :mod:`aquant.pot` instead of
``openvino.tools.pot``. The work runs in Rust (tract, ONNX Runtime or OpenVINO); Python is called only for the data, the
transform and the metric.
"""

from ._aquant import Model, __version__
from ._api import BUILTIN_METRICS, last_report, quantize, quantize_with_accuracy_control
from ._data import Dataset
from ._params import (
    AdvancedAccuracyRestorerParameters,
    AdvancedBiasCorrectionParameters,
    AdvancedQuantizationParameters,
    AdvancedSmoothQuantParameters,
    DropType,
    IgnoredScope,
    ModelType,
    OverflowFix,
    QuantizationPreset,
    RangeEstimatorParameters,
    RestoreMode,
    StatisticsCollectorParameters,
    Subgraph,
    TargetDevice,
)
from ._report import MetricReport, Report

__all__ = [
    "AdvancedAccuracyRestorerParameters",
    "AdvancedBiasCorrectionParameters",
    "AdvancedQuantizationParameters",
    "AdvancedSmoothQuantParameters",
    "BUILTIN_METRICS",
    "Dataset",
    "DropType",
    "IgnoredScope",
    "MetricReport",
    "Model",
    "ModelType",
    "OverflowFix",
    "QuantizationPreset",
    "RangeEstimatorParameters",
    "Report",
    "RestoreMode",
    "StatisticsCollectorParameters",
    "Subgraph",
    "TargetDevice",
    "__version__",
    "last_report",
    "quantize",
    "quantize_with_accuracy_control",
]
