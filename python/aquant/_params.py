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
class IgnoredScope:
    """Nodes never quantized (NNCF ``IgnoredScope``): exact names, regular expressions, op types."""

    names: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
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
class AdvancedQuantizationParameters:
    """The part of NNCF's ``AdvancedQuantizationParameters`` aquant implements.

    An ``nncf`` instance is accepted as well; any of its other settings left away from NNCF's default is
    refused by name.
    """

    overflow_fix: Optional[OverflowFix] = None
    disable_bias_correction: bool = False


def value(x: Any) -> Any:
    """An enum member's value (aquant's or NNCF's), a string as is."""
    return getattr(x, "value", x)


def restorer_params(params: Any) -> dict[str, Any]:
    """``AdvancedAccuracyRestorerParameters`` (aquant's or NNCF's) as keyword settings."""
    if params is None:
        params = AdvancedAccuracyRestorerParameters()
    got = {f.name: getattr(params, f.name, f.default) for f in fields(AdvancedAccuracyRestorerParameters)}
    _refuse_unknown(params, set(got), "advanced_accuracy_restorer_parameters")
    return got


def quantization_params(params: Any) -> dict[str, Any]:
    """``AdvancedQuantizationParameters`` (aquant's or NNCF's) as keyword settings; NNCF settings aquant does not
    implement must be at NNCF's defaults."""
    if params is None:
        return {"overflow_fix": None, "disable_bias_correction": False}
    if not isinstance(params, AdvancedQuantizationParameters):
        defaults = type(params)()
        for f in getattr(type(params), "__dataclass_fields__", {}):
            if f in ("overflow_fix", "disable_bias_correction"):
                continue
            if getattr(params, f) != getattr(defaults, f):
                raise ValueError(
                    f"advanced_quantization_parameters.{f} is not supported by aquant (leave it at its default)"
                )
    fix = getattr(params, "overflow_fix", None)
    return {
        "overflow_fix": None if fix is None else value(fix),
        "disable_bias_correction": bool(getattr(params, "disable_bias_correction", False)),
    }


def _refuse_unknown(params: Any, known: set[str], name: str) -> None:
    for f in getattr(type(params), "__dataclass_fields__", {}):
        if f not in known:
            defaults = type(params)()
            if getattr(params, f) != getattr(defaults, f):
                raise ValueError(f"{name}.{f} is not supported by aquant (leave it at its default)")
