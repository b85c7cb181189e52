"""Accuracy control's evaluations on a Ray cluster: :class:`RayExecutor`.

The search (ranking with branch and bound, the steps, the journal, every decision) runs where
``quantize_with_accuracy_control`` is called, the *driver*. What it sends out is work units, "the per-sample
values of candidate C on samples S", each answered by a Ray actor that holds the Rust evaluator
(``aquant._aquant.Worker``). The bytes a worker needs — the FP32 model, the quantizer parameters, the
validation samples (already transformed, by shard) — are put in Ray's object store once and fetched by each
worker the first time one of its units needs them; a worker keeps them, and the FP32 model's outputs per
sample, for the rest of the run. A Python per-sample ``metric`` travels to the workers with cloudpickle (as Ray
ships any argument), with the validation set's annotations; a whole-set ``validation_fn`` runs on the driver
(the workers then compute the NMSE the ranking uses).

Faults: the actors are restarted and their pending calls retried by Ray (``max_restarts``,
``max_task_retries``), so a worker killed mid-run costs its shards, not the result; a worker that fails (its
engine missing on its node, say) raises an error naming the node; no answer within ``timeout`` seconds is an
error, never a hang. A killed driver resumes from its journal (``resume=True``) as without Ray.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Optional

#: Samples per work unit by default: small enough that branch and bound stops a losing candidate early, large
#: enough that a unit's fixed cost (an actor call, building the candidate) is shared by many samples.
DEFAULT_SHARD_SIZE = 16


class _Annotations:
    """The validation set's annotations, as a worker's Python metric reads them: ``annotation(i)``."""

    def __init__(self, annotations: list):
        self._annotations = annotations

    def annotation(self, index: int) -> Any:
        return self._annotations[index]


class _WorkerActor:
    """A Ray actor's state: one ``aquant._aquant.Worker`` and where it runs."""

    def __init__(self, metric: Optional[tuple], annotations: Optional[_Annotations]):
        import ray

        from . import _api, _aquant

        _api._find_engines()
        self._node = ray.util.get_node_ip_address()
        self._worker = _aquant.Worker(metric, annotations)
        self._busy = 0.0

    def pid(self) -> int:
        return os.getpid()

    def node(self) -> str:
        return self._node

    def run(self, unit: str, blobs: dict) -> str:
        """The values of ``unit``, fetching first the blobs (``key: (kind, [ref])``) this worker lacks."""
        import ray

        start = time.perf_counter()
        try:
            for key, (kind, boxed) in blobs.items():
                if not self._worker.has(key):
                    self._worker.receive(kind, key, ray.get(boxed[0]))
            return self._worker.run(unit)
        except Exception as error:
            raise RuntimeError(f"aquant worker on node {self._node} (pid {os.getpid()}): {error}") from error
        finally:
            self._busy += time.perf_counter() - start

    def busy(self) -> float:
        return self._busy

    def received(self) -> dict:
        return self._worker.received()


class RayExecutor:
    """Evaluates accuracy control's candidates on a Ray cluster; pass it as ``executor=`` to
    :func:`aquant.quantize_with_accuracy_control` (or ``{"type": "ray", ...}`` as POT's ``IEEngine`` config
    ``"executor"``).

    ``address``: the cluster's (``"auto"``, ``"ray://host:10001"``, ``"127.0.0.1:6379"``); None joins the
    cluster this process already initialised, else starts a local one. ``num_workers``: Ray actors, one CPU
    each (default: the cluster's CPUs). ``shard_size``: samples per work unit. ``timeout``: seconds a batch of
    units may take before the run fails. ``max_restarts`` / ``max_task_retries``: how often Ray restarts a dead
    worker and retries its calls. ``object_store_memory`` (bytes) is passed to ``ray.init`` when this starts a
    local Ray. Every node needs the same ``aquant`` wheel and the engine the search judges on (``onnxruntime``
    for ``backend="ort"``).
    """

    def __init__(
        self,
        address: Optional[str] = None,
        num_workers: Optional[int] = None,
        shard_size: int = DEFAULT_SHARD_SIZE,
        *,
        timeout: float = 600.0,
        max_restarts: int = 3,
        max_task_retries: int = 3,
        object_store_memory: Optional[int] = None,
        runtime_env: Optional[dict] = None,
        cpus_per_worker: int = 1,
    ):
        for name, given in (("num_workers", num_workers), ("shard_size", shard_size), ("cpus_per_worker", cpus_per_worker)):
            if given is not None and (not isinstance(given, int) or given < 1):
                raise ValueError(f"{name} must be a positive integer, not {given!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        try:
            import ray
        except ImportError as missing:
            raise ImportError("RayExecutor needs Ray: pip install ray") from missing
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            ray.init(address=address, object_store_memory=object_store_memory, log_to_driver=False)
            self._started = address is None
        self.workers = num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus_per_worker)
        self.shard_size = shard_size
        self.timeout = float(timeout)
        # A worker's inference threads (rayon's pool) match the CPUs Ray reserves for it.
        runtime_env = dict(runtime_env or {})
        env_vars = {"RAYON_NUM_THREADS": str(cpus_per_worker), **runtime_env.get("env_vars", {})}
        runtime_env["env_vars"] = env_vars
        self._options = {
            "max_restarts": max_restarts,
            "max_task_retries": max_task_retries,
            "num_cpus": cpus_per_worker,
            "runtime_env": runtime_env,
        }
        self._actors: list = []
        self._refs: dict[str, tuple[str, Any]] = {}
        #: Blobs put in the object store (each once per run, whatever the number of workers).
        self.puts = 0
        #: Work units sent, and the batches they went in (one batch per round of the ranking).
        self.units = 0
        self.batches = 0

    def _bind(self, metric: Optional[tuple], validation: Any) -> None:
        """Starts the workers of a run scored by ``metric`` (a Python per-sample metric is shipped to them with
        the annotations of ``validation``; built-ins and a driver-side ``validation_fn`` ship nothing)."""
        self.shutdown_workers()
        shipped = None
        annotations = None
        if metric is not None and metric[0] not in ("builtin", "validation_fn"):
            shipped = metric
            annotations = self._ray.put(_Annotations([validation.annotation(i) for i in range(len(validation))]))
        actor = self._ray.remote(**self._options)(_WorkerActor)
        self._actors = [actor.remote(shipped, annotations) for _ in range(self.workers)]

    def _publish(self, blobs: list) -> None:
        """Puts the blobs ``(kind, key, bytes)`` not put yet in the object store."""
        for kind, key, data in blobs:
            if key not in self._refs:
                self._refs[key] = (kind, self._ray.put(data))
                self.puts += 1

    def _run(self, units: list) -> list:
        """The answers (JSON) of the work units (JSON), dealt round robin to the workers."""
        return self._collect(self._submit(units))

    def _submit(self, units: list) -> list:
        """Sends the work units to the workers, round robin; returns the pending calls. A unit carries its
        blobs' references boxed in a list, so that Ray does not fetch them with every call: the worker fetches
        those it lacks."""
        if not self._actors:
            raise RuntimeError("RayExecutor: no workers (the run did not bind the executor)")
        calls = []
        self.batches += 1
        self.units += len(units)
        for i, text in enumerate(units):
            needed = json.loads(text)["blobs"]
            blobs = {key: (self._refs[key][0], [self._refs[key][1]]) for key in needed}
            calls.append(self._actors[i % len(self._actors)].run.remote(text, blobs))
        return calls

    def _collect(self, calls: list) -> list:
        """The answers of pending calls, or an error once ``timeout`` has passed."""
        try:
            return self._ray.get(calls, timeout=self.timeout)
        except self._ray.exceptions.RayTaskError as failed:
            # The worker's own error (it names the node), without the remote traceback Ray wraps it in.
            raise RuntimeError(str(failed.cause)) from failed.cause
        except self._ray.exceptions.GetTimeoutError as late:
            for call in calls:
                self._ray.cancel(call, force=False)
            raise TimeoutError(
                f"RayExecutor: {len(calls)} work units not answered within {self.timeout:g} s"
            ) from late

    def busy_seconds(self) -> list[float]:
        """Seconds each worker spent answering units (fetching blobs included)."""
        return self._ray.get([a.busy.remote() for a in self._actors], timeout=self.timeout)

    def received(self) -> list[dict]:
        """What reached each worker: blobs by kind (``model``, ``setup``, ``samples``)."""
        return self._ray.get([a.received.remote() for a in self._actors], timeout=self.timeout)

    def worker_pids(self) -> list[int]:
        """The workers' process ids."""
        return self._ray.get([a.pid.remote() for a in self._actors], timeout=self.timeout)

    def shutdown_workers(self) -> None:
        """Ends the workers and forgets the blobs (a later run starts afresh)."""
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        self._refs = {}

    def shutdown(self) -> None:
        """Ends the workers, and the local Ray this executor started."""
        self.shutdown_workers()
        if self._started:
            self._ray.shutdown()
            self._started = False

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"RayExecutor(workers={self.workers}, shard_size={self.shard_size})"


def executor_from_config(config: Any) -> Optional[RayExecutor]:
    """The executor a POT engine config's ``"executor"`` entry names: ``{"type": "ray", **RayExecutor's
    arguments}``; None for none."""
    if config is None:
        return None
    if isinstance(config, RayExecutor):
        return config
    if not isinstance(config, dict) or "type" not in config:
        raise ValueError(f'executor must be {{"type": "ray", ...}}, not {config!r}')
    options = dict(config)
    kind = options.pop("type")
    if kind != "ray":
        raise ValueError(f"executor type must be 'ray', not {kind!r}")
    return RayExecutor(**options)
