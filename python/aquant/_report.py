"""The run's report: report.json's content, typed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class MetricReport:
    """One controlled metric: FP32 baseline, fully quantized and final values, drop and allowed drop, and the
    drop's 95 % confidence interval (``{level, low, high, samples, method}``; ``None`` for a metric user code
    scores over the whole set: a validation_fn, a POT metric)."""

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
    #: What a ``memory_limit`` allowed: ``limit``, ``threads``, ``reference_budget`` (bytes of FP32 outputs kept) and
    #: the ``estimate`` of the peak, in bytes; ``None`` without a limit.
    memory: Optional[dict] = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)
    summary_line: str = field(default="", repr=False, compare=False)

    @classmethod
    def from_json(cls, text: str, summary: str = "") -> "Report":
        """The report of report.json's ``text``, with the run's ``summary`` line."""
        raw = json.loads(text)
        known = {name for name in cls.__dataclass_fields__ if name not in ("metrics", "raw", "summary_line")}
        return cls(
            metrics=[MetricReport(**{k: m[k] for k in MetricReport.__dataclass_fields__ if k in m})
                     for m in raw.get("metrics", [])],
            raw=raw,
            summary_line=summary,
            **{k: v for k, v in raw.items() if k in known},
        )

    def to_dict(self) -> dict[str, Any]:
        """report.json's content."""
        return json.loads(json.dumps(self.raw))

    def summary(self) -> str:
        """One line, as the command line prints it (the same text, written by the run)."""
        return self.summary_line
