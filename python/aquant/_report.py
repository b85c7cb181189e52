"""The run's report: report.json's content, typed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class MetricReport:
    """One controlled metric: FP32 baseline, fully quantized and final values, drop and allowed drop, and the
    drop's 95 % confidence interval (``{level, low, high, samples, method}``; ``None`` for a dataset-level
    metric)."""

    name: str
    direction: str
    baseline: float
    quantized: float
    final: float
    drop: float
    allowed_drop: float
    drop_ci: Optional[dict] = None


@dataclass(frozen=True)
class Report:
    """What a run did (the same content as its report.json; ``to_dict()`` gives it whole).

    ``algorithm`` is ``"AccuracyAwareQuantization"`` or ``"DefaultQuantization"``; the accuracy-control fields
    (``metrics``, ``target_met``, ``reverted``, ``steps``…) are empty for the latter.
    """

    algorithm: str
    model: str
    output: Optional[str]
    quantized_ops: int
    reverted_ops: int
    reverted: list[str] = field(default_factory=list)
    #: The precision each moved op ended at (``"w8a16"``, ``"fp32"``…; the precision ladder, ``fallback``).
    precisions: dict = field(default_factory=dict)
    #: Ops counted by precision (``int8``, ``int16``, ``fp32_reverted``…).
    ops_by_precision: dict = field(default_factory=dict)
    metrics: list[MetricReport] = field(default_factory=list)
    target_met: bool = True
    interrupted: bool = False
    stop_reason: Optional[str] = None
    stop_message: Optional[str] = None
    preset: Optional[str] = None
    steps: list[dict] = field(default_factory=list)
    ranking: list[dict] = field(default_factory=list)
    #: What ranked the groups: ``"metric"`` (per-sample values) or ``"output_nmse"`` (a dataset-level metric, e.g.
    #: a ``validation_fn`` returning one float); ``None`` when nothing was ranked.
    ranked_by: Optional[str] = None
    deployed: Optional[dict] = None
    overflow_fix: Optional[dict] = None
    saturation: Optional[dict] = None
    timings_s: dict = field(default_factory=dict)
    #: Work done: ``full`` and ``subset`` evaluations, ``samples_inferred``.
    evaluations: dict = field(default_factory=dict)
    #: The engine that calibrated and searched, and why that one: ``{"name": "ort", "chosen_because": "auto: …"}``
    #: (``backend="auto"`` picks the saved model's engine when it is installed, else tract).
    backend: Optional[dict] = None
    #: FP32 and the saved model on the held-out samples (``holdout_fraction``): ``samples``, ``indices``,
    #: ``engine``, ``metrics`` (``baseline``, ``final``, ``drop``, ``allowed_drop``, ``drop_ci``), ``met``.
    confirmation: Optional[dict] = None
    #: The confidence level the target was judged at (``confidence``): each metric's ``drop_ci`` is at that
    #: level and its upper end is what met or missed the allowed drop. ``None``: the drop itself was judged.
    confidence: Optional[float] = None
    #: Every model of the search's path, FP32 first, then the fully quantized model and each step's candidate:
    #: ``label``, ``step``, ``kept``, ``chosen`` (the saved model), ``metrics`` (``name``, ``value``, ``drop``),
    #: ``bytes``, ``ops_by_precision`` and ``latency_ms`` on the deployed engine (``None``: not timed).
    front: list[dict] = field(default_factory=list)
    #: With several targets (``max_drop=[...]``), each one's model, tightest first: ``max_drop``, ``point`` (its
    #: front label), ``metrics``, ``target_met``, ``deployed``, ``output``; empty with one target.
    targets: list[dict] = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, text: str) -> "Report":
        raw = json.loads(text)
        known = {name for name in cls.__dataclass_fields__ if name not in ("metrics", "raw")}
        return cls(
            metrics=[MetricReport(**{k: m[k] for k in MetricReport.__dataclass_fields__ if k in m})
                     for m in raw.get("metrics", [])],
            raw=raw,
            **{k: v for k, v in raw.items() if k in known},
        )

    def to_dict(self) -> dict[str, Any]:
        """report.json's content."""
        return json.loads(json.dumps(self.raw))

    def summary(self) -> str:
        """One line, as the command line prints it."""
        engine = f"{self.backend['name']} ({self.backend['chosen_because']})" if self.backend else None
        if self.algorithm != "AccuracyAwareQuantization":
            return f"{self.quantized_ops} ops quantized" + (f" on {engine}" if engine else "")
        parts = [f"{self.reverted_ops} of {self.quantized_ops} quantized ops reverted"]
        for m in self.metrics:
            ci = m.drop_ci
            interval = f"{round(ci['level'] * 1000) / 10:g}% CI [{ci['low']:.4f}, {ci['high']:.4f}]" if ci else ""
            values = f"{m.name} {m.baseline:.4f} → {m.final:.4f}"
            if ci and self.confidence is not None:
                sign = "≤" if ci["high"] <= m.allowed_drop + 1e-12 else ">"
                parts.append(f"{values}, drop {m.drop:.4f} ({interval}), upper end {ci['high']:.4f} {sign} "
                             f"{m.allowed_drop:.4f}")
            else:
                sign = "≤" if m.drop <= m.allowed_drop + 1e-12 else ">"
                parts.append(f"{values}, drop {m.drop:.4f} {sign} {m.allowed_drop:.4f}"
                             + (f" ({interval})" if ci else ""))
        if engine:
            parts.append(f"searched on {engine}")
        if self.confirmation:
            verdict = "confirmed" if self.confirmation["met"] else "NOT confirmed"
            parts.append(f"held out {self.confirmation['samples']} samples: {verdict}")
        if not self.target_met:
            parts.append("accuracy target NOT met")
        return "; ".join(parts)
