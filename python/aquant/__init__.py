"""aquant: accuracy-aware post-training INT8 quantization of ONNX models, in Rust.

NNCF users change one import::

    import aquant as nncf
    quantized, report = nncf.quantize_with_accuracy_control(model, calibration, validation, validation_fn,
                                                            max_drop=0.01)

(aquant returns the typed report beside the model). POT users import from :mod:`aquant.pot` instead of
``openvino.tools.pot``. The work runs in Rust (tract, ONNX Runtime or OpenVINO); Python is called only for the data, the
transform and the metric.
"""

from ._aquant import Model, __version__
from ._api import BUILTIN_METRICS, quantize, quantize_with_accuracy_control
from ._data import Dataset
from ._params import (
    AdvancedAccuracyRestorerParameters,
    AdvancedQuantizationParameters,
    DropType,
    IgnoredScope,
    ModelType,
    OverflowFix,
    QuantizationPreset,
    RestoreMode,
    TargetDevice,
)
from ._report import MetricReport, Report

__all__ = [
    "AdvancedAccuracyRestorerParameters",
    "AdvancedQuantizationParameters",
    "BUILTIN_METRICS",
    "Dataset",
    "DropType",
    "IgnoredScope",
    "MetricReport",
    "Model",
    "ModelType",
    "OverflowFix",
    "QuantizationPreset",
    "Report",
    "RestoreMode",
    "TargetDevice",
    "__version__",
    "quantize",
    "quantize_with_accuracy_control",
]
