"""NNCF's parameter types, mirrored: enums whose values are NNCF's, and the advanced-parameter dataclasses.

NNCF's own objects are accepted too (duck-typed through their ``value`` and attribute names), and every
setting aquant does not implement is refused by name rather than ignored.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Optional


class DropType(Enum):
    """How the allowed drop is measured (NNCF ``DropType``)."""

    ABSOLUTE = "absolute"
    RELATIVE = "relative"


class QuantizationPreset(Enum):
    """Activation preset (NNCF ``QuantizationPreset``)."""

    PERFORMANCE = "performance"
    MIXED = "mixed"


class TargetDevice(Enum):
    """Target device (NNCF ``TargetDevice``); aquant places quantizers for ANY and CPU (and POT's ``"GNA"``, given
    as a string); GPU, NPU and CPU_SPR are refused."""

    ANY = "ANY"
    CPU = "CPU"
    GPU = "GPU"
    NPU = "NPU"
    CPU_SPR = "CPU_SPR"


class ModelType(Enum):
    """Model family (NNCF ``ModelType``)."""

    TRANSFORMER = "transformer"


class OverflowFix(Enum):
    """Half-range weights against int16 saturation on CPUs without VNNI (NNCF ``OverflowFix``)."""

    ENABLE = "enable"
    DISABLE = "disable"
    FIRST_LAYER = "first_layer_only"


class RestoreMode(Enum):
    """What a revert returns to FP32 (NNCF ``RestoreMode``)."""

    ACTIVATIONS_AND_WEIGHTS = "activations_and_weights"
    ONLY_ACTIVATIONS = "only_activations"


@dataclass
class Subgraph:
    """NNCF's ``Subgraph`` (the nodes between ``inputs`` and ``outputs``), for ``IgnoredScope.subgraphs``, which
    aquant refuses: it exists so that NNCF code constructing one reaches that clear error."""

    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


@dataclass
class IgnoredScope:
    """Nodes never quantized (NNCF ``IgnoredScope``): exact names, regular expressions, op types. NNCF's
    ``subgraphs`` and ``validate=False`` are refused by name: aquant matches nodes one by one, and a name that
    matches no node is always an error."""

    names: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    subgraphs: list = field(default_factory=list)
    validate: bool = True


@dataclass
class AdvancedAccuracyRestorerParameters:
    """NNCF's ``AdvancedAccuracyRestorerParameters``.

    ``num_ranking_workers`` sets the worker threads of the whole run (ranking included); the default is one per
    core. ``intermediate_model_dir`` receives the model after every step.
    """

    max_num_iterations: int = sys.maxsize
    tune_hyperparams: bool = False
    ranking_subset_size: Optional[int] = None
    num_ranking_workers: Optional[int] = None
    intermediate_model_dir: Optional[str] = None
    restore_mode: RestoreMode = RestoreMode.ACTIVATIONS_AND_WEIGHTS


@dataclass
class StatisticsCollectorParameters:
    """One end of a range estimator (NNCF ``StatisticsCollectorParameters``): the per-sample statistic
    (``"min"``, ``"max"``, ``"abs_max"``, ``"quantile"``, ``"abs_quantile"``), how samples combine (``"mean"``,
    ``"max"``, ``"min"``, ``"median"``, ``"mean_no_outliers"``, ``"median_no_outliers"``) and the quantiles'
    outlier probability; ``None`` keeps aquant's default for that end (NNCF: the mean of per-sample min / max)."""

    statistics_type: Any = None
    aggregator_type: Any = None
    clipping_value: Optional[float] = None
    quantile_outlier_prob: float = 1e-4


@dataclass
class RangeEstimatorParameters:
    """How a quantizer's range is estimated (NNCF ``RangeEstimatorParameters``): its low and high ends."""

    min: StatisticsCollectorParameters = field(default_factory=StatisticsCollectorParameters)
    max: StatisticsCollectorParameters = field(default_factory=StatisticsCollectorParameters)


@dataclass
class AdvancedSmoothQuantParameters:
    """NNCF's SmoothQuant alphas per op family (negative: off). aquant has no SmoothQuant: only settings that ask
    for none are accepted (see :class:`AdvancedQuantizationParameters`)."""

    convolution: float = -1
    matmul: float = 0.95


@dataclass
class AdvancedBiasCorrectionParameters:
    """NNCF's bias-correction settings; aquant's bias correction is NNCF's default (``fast_bias_correction``), so
    only the defaults are accepted."""

    apply_for_all_nodes: bool = False
    threshold: Optional[float] = None


@dataclass
class AdvancedQuantizationParameters:
    """NNCF's ``AdvancedQuantizationParameters``: every field, with NNCF's defaults.

    aquant honours ``overflow_fix``, ``disable_bias_correction``, ``activations_range_estimator_params`` (POT's
    ``range_estimator``), ``weights_range_estimator_params`` left at min/max (what aquant does),
    ``smooth_quant_alphas`` / ``smooth_quant_alpha`` where they ask for no SmoothQuant (not a transformer,
    negative alphas, or NNCF's default) and ``inplace_statistics`` (where NNCF computes statistics, not what they
    are). Any other field away from NNCF's default is a ``ValueError`` naming it. An ``nncf`` instance is read
    the same way.
    """

    overflow_fix: Any = None
    quantize_outputs: bool = False
    inplace_statistics: bool = True
    disable_channel_alignment: bool = True
    disable_bias_correction: bool = False
    batchwise_statistics: Optional[bool] = None
    activations_quantization_params: Any = None
    weights_quantization_params: Any = None
    quantizer_propagation_rule: Any = None
    activations_range_estimator_params: Any = None
    weights_range_estimator_params: Any = None
    bias_correction_params: Any = None
    smooth_quant_alphas: Any = None
    smooth_quant_alpha: Optional[float] = None
    backend_params: dict = field(default_factory=dict)


def value(x: Any) -> Any:
    """An enum member's value (aquant's or NNCF's), a string as is."""
    return getattr(x, "value", x)


def ignored_scope_params(scope: Any) -> Optional[dict[str, list[str]]]:
    """An ``IgnoredScope`` (aquant's or NNCF's) as aquant's ``ignored_scope`` block."""
    if scope is None:
        return None
    if list(getattr(scope, "subgraphs", [])):
        raise ValueError("ignored_scope.subgraphs is not supported by aquant (list the nodes in names or patterns)")
    if not getattr(scope, "validate", True):
        raise ValueError("ignored_scope.validate=False is not supported by aquant (every name must name a node)")
    return {key: list(getattr(scope, key, [])) for key in ("names", "patterns", "types")}


def restorer_params(params: Any) -> dict[str, Any]:
    """``AdvancedAccuracyRestorerParameters`` (aquant's or NNCF's) as keyword settings."""
    if params is None:
        params = AdvancedAccuracyRestorerParameters()
    got = {f.name: getattr(params, f.name, f.default) for f in fields(AdvancedAccuracyRestorerParameters)}
    _refuse_unknown(params, set(got), "advanced_accuracy_restorer_parameters")
    return got


#: What each of NNCF's ``AdvancedQuantizationParameters`` fields aquant cannot honour must be left at: its
#: NNCF default, seen through enum values (``None`` stands for a default object: aquant's own dataclass).
_AT_DEFAULT = {
    "quantize_outputs": (False,),
    "disable_channel_alignment": (True,),
    "batchwise_statistics": (None,),
    "activations_quantization_params": (None,),
    "weights_quantization_params": (None,),
    "quantizer_propagation_rule": (None, "3"),  # NNCF's MERGE_ALL_IN_ONE
    "bias_correction_params": (None, (False, None)),
    "backend_params": ({},),
}

_STATISTICS = ("min", "max", "abs_max", "quantile", "abs_quantile")
_AGGREGATORS = ("mean", "max", "min", "median", "mean_no_outliers", "median_no_outliers")


def quantization_params(params: Any, model_type: Optional[str]) -> dict[str, Any]:
    """``AdvancedQuantizationParameters`` (aquant's or NNCF's) as aquant's settings: ``overflow_fix``,
    ``disable_bias_correction`` and ``activations`` (a POT ``range_estimator`` block, or None for aquant's
    default). Every field aquant cannot honour must be at NNCF's default: the others are named in one
    ``ValueError``."""
    if params is None:
        return {"overflow_fix": None, "disable_bias_correction": False, "activations": None}
    refused = [
        name for name, defaults in _AT_DEFAULT.items() if _plain(getattr(params, name, defaults[0])) not in defaults
    ]
    estimator, why = _activations_estimator(getattr(params, "activations_range_estimator_params", None))
    if why:
        refused.append(f"activations_range_estimator_params ({why})")
    if not _is_min_max(getattr(params, "weights_range_estimator_params", None)):
        refused.append("weights_range_estimator_params (aquant's weights always use their min and max)")
    if model_type == "transformer" and _smooth_quant_on(params):
        refused.append("smooth_quant_alphas (aquant has no SmoothQuant)")
    if refused:
        raise ValueError(
            "advanced_quantization_parameters: not supported by aquant: " + "; ".join(refused)
            + " (leave them at NNCF's defaults)"
        )
    fix = getattr(params, "overflow_fix", None)
    return {
        "overflow_fix": None if fix is None else value(fix),
        "disable_bias_correction": bool(getattr(params, "disable_bias_correction", False)),
        "activations": None if estimator is None else {"range_estimator": estimator},
    }


def _plain(x: Any) -> Any:
    """``x`` compared by value: an enum as its value, a dataclass as the tuple of its fields' values."""
    if hasattr(x, "__dataclass_fields__"):
        return tuple(_plain(getattr(x, f)) for f in x.__dataclass_fields__)
    return value(x)


def _end(end: Any, default: tuple[str, str]) -> tuple[Optional[dict], Optional[str]]:
    """One end of an NNCF range estimator as POT's ``{"type", "aggregator", "outlier_prob"}``, with
    ``default`` (statistic, aggregator) for what it leaves None; or why it cannot be honoured."""
    if getattr(end, "clipping_value", None) is not None:
        return None, "clipping_value"
    statistic = value(getattr(end, "statistics_type", None)) or default[0]
    aggregator = value(getattr(end, "aggregator_type", None)) or default[1]
    if statistic not in _STATISTICS:
        return None, f"statistics_type {statistic!r}"
    if aggregator not in _AGGREGATORS:
        return None, f"aggregator_type {aggregator!r}"
    return {"type": statistic, "aggregator": aggregator,
            "outlier_prob": float(getattr(end, "quantile_outlier_prob", 1e-4))}, None


def _activations_estimator(params: Any) -> tuple[Optional[dict], Optional[str]]:
    """The activations' range estimator as POT's block (None: aquant's default, NNCF's mean of min / max)."""
    if params is None:
        return None, None
    low, why_low = _end(params.min, ("min", "mean"))
    high, why_high = _end(params.max, ("max", "mean"))
    if why_low or why_high:
        return None, why_low or why_high
    if (low, high) == (_end(None, ("min", "mean"))[0], _end(None, ("max", "mean"))[0]):
        return None, None
    return {"min": low, "max": high}, None


def _is_min_max(params: Any) -> bool:
    """Whether a weights range estimator is what aquant does: left at NNCF's default, or NNCF's MINMAX."""
    if params is None:
        return True
    ends = [(value(e.statistics_type), value(e.aggregator_type), e.clipping_value) for e in (params.min, params.max)]
    return ends in ([(None, None, None)] * 2, [("min", "min", None), ("max", "max", None)])


def _smooth_quant_on(params: Any) -> bool:
    """Whether these parameters ask SmoothQuant of a transformer beyond NNCF's default (an alpha set ≥ 0).
    NNCF's default (matmul 0.95) is a remaining difference the guide lists: aquant has no SmoothQuant."""
    alphas = getattr(params, "smooth_quant_alphas", None)
    asked = [] if alphas is None or (alphas.convolution, alphas.matmul) == (-1, 0.95) else [
        alphas.convolution, alphas.matmul]
    legacy = getattr(params, "smooth_quant_alpha", None)
    return any(alpha >= 0 for alpha in asked + ([] if legacy is None else [legacy]))


def _refuse_unknown(params: Any, known: set[str], name: str) -> None:
    for f in getattr(type(params), "__dataclass_fields__", {}):
        if f not in known:
            defaults = type(params)()
            if getattr(params, f) != getattr(defaults, f):
                raise ValueError(f"{name}.{f} is not supported by aquant (leave it at its default)")
