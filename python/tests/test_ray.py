"""Issue #29: accuracy control's evaluations on a real local Ray cluster (``ray.init`` with worker processes,
never a mock): the same decisions as the local run, a worker killed by its pid mid-ranking, the model and data
sent once per worker, a worker without its engine."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import aquant  # noqa: E402
from aquant.ray import RayExecutor, executor_from_config  # noqa: E402
from conftest import MNIST, nncf_datasets, weights_3_levels  # noqa: E402

MAX_DROP = 0.002
# Full-range weights with the overflow fix off: the bundled MNIST CNN then loses accuracy and accuracy
# control reverts ops (as test_nncf.py's runs).
ADVANCED = aquant.AdvancedQuantizationParameters(overflow_fix=aquant.OverflowFix.DISABLE)
SHARD = 64


@pytest.fixture(scope="module")
def cluster():
    """A local Ray: this process is the driver, the workers are processes of their own."""
    ray.init(
        num_cpus=3, object_store_memory=400 * 2**20, include_dashboard=False, log_to_driver=False,
    )
    yield
    ray.shutdown()


def top1(outputs, annotation):
    return float(np.argmax(outputs[0]) == annotation)


def search(mnist, **kwargs):
    calibration, validation = nncf_datasets(mnist)
    _, report = aquant.quantize_with_accuracy_control(
        str(mnist[0]), calibration, validation, max_drop=MAX_DROP, advanced_quantization_parameters=ADVANCED,
        progress=False, return_report=True, deployed_check=False, backend="ort", **kwargs,
    )
    return report


def assert_same_search(remote, local):
    assert local.reverted_ops > 0 and len(local.steps) > 0
    assert remote.reverted == local.reverted
    assert remote.steps == local.steps
    assert [m.final for m in remote.metrics] == [m.final for m in local.metrics]
    assert remote.ranking[0] == local.ranking[0]


def assert_sent_once(executor, validation_len):
    shards = -(-validation_len // SHARD)
    for received in executor.received():
        assert received["model"] == 1 and received["setup"] == 1, received
        assert 1 <= received["samples"] <= shards, received
    # Every blob went into the object store once, whatever the number of workers.
    assert executor.puts == 1 + 1 + shards


def test_a_ray_run_is_the_local_run_and_sends_model_and_data_once(cluster, mnist, monkeypatch):
    weights_3_levels(monkeypatch)
    local = search(mnist, metric="top1")
    executor = RayExecutor(num_workers=2, shard_size=SHARD)
    remote = search(mnist, metric="top1", executor=executor)
    assert_same_search(remote, local)
    assert_sent_once(executor, len(mnist[3]))
    executor.shutdown()


def test_a_python_metric_travels_to_the_workers(cluster, mnist, monkeypatch):
    weights_3_levels(monkeypatch)
    local = search(mnist, metric=top1, metric_bounds=(0, 1))
    # cloudpickle ships `top1` by reference to this module: the workers import it, as a user's workers import
    # the module their metric is in (Ray's runtime_env).
    here = os.path.dirname(os.path.abspath(__file__))
    executor = RayExecutor(num_workers=2, shard_size=SHARD, runtime_env={"env_vars": {"PYTHONPATH": here}})
    remote = search(mnist, metric=top1, metric_bounds=(0, 1), executor=executor)
    assert_same_search(remote, local)
    executor.shutdown()


class KillsAWorkerMidRanking(RayExecutor):
    """Kills worker 0's process (SIGKILL, by its pid) right after the first ranking units went out: units of a
    ranking are at most one per worker, a full evaluation's are one per shard."""

    killed = None

    def _run(self, units):
        calls = self._submit(units)
        if self.killed is None and 1 < len(units) <= self.workers:
            self.killed = self.worker_pids()[0]
            os.kill(self.killed, signal.SIGKILL)
        return self._collect(calls)


def test_a_worker_killed_mid_ranking_changes_nothing(cluster, mnist, monkeypatch):
    weights_3_levels(monkeypatch)
    local = search(mnist, metric="top1")
    executor = KillsAWorkerMidRanking(num_workers=2, shard_size=SHARD)
    remote = search(mnist, metric="top1", executor=executor)
    assert executor.killed is not None, "no ranking went out"
    pids = executor.worker_pids()
    assert executor.killed not in pids, "the killed worker was restarted as a new process"
    assert_same_search(remote, local)
    # The restarted worker fetched the model again: it is a new process with nothing of the old one.
    assert all(r["model"] == 1 for r in executor.received())
    executor.shutdown()


def test_a_worker_without_its_engine_is_an_error_naming_the_node(cluster, mnist, monkeypatch):
    weights_3_levels(monkeypatch)
    executor = RayExecutor(
        num_workers=1, shard_size=SHARD, timeout=120,
        runtime_env={"env_vars": {"ORT_DYLIB_PATH": "/nonexistent/libonnxruntime.so"}},
    )
    message = r"^executor: run: RuntimeError: aquant worker on node [\d.]+ \(pid \d+\): ort backend: ONNX Runtime not found"
    with pytest.raises(RuntimeError, match=message):
        search(mnist, metric="top1", executor=executor)
    executor.shutdown()


def test_executor_values_are_checked(mnist):
    with pytest.raises(TypeError, match="executor must be an aquant.ray.RayExecutor or None"):
        search(mnist, metric="top1", executor="ray")
    with pytest.raises(ValueError, match="executor type must be 'ray', not 'dask'"):
        executor_from_config({"type": "dask"})
    with pytest.raises(ValueError, match="shard_size must be a positive integer"):
        RayExecutor(shard_size=0)


def test_pot_engine_config_runs_the_search_on_ray(cluster, tmp_path):
    from aquant.pot import IEEngine, create_pipeline, load_model
    from test_pot import PARAMS, Accuracy, ArrayLoader, run_pot

    local, _, _ = run_pot(tmp_path, Accuracy(top_k=1))
    here = os.path.dirname(os.path.abspath(__file__))
    executor = {"type": "ray", "num_workers": 2, "shard_size": SHARD, "runtime_env": {"env_vars": {"PYTHONPATH": here}}}
    loader = ArrayLoader({"x": "val_x.npy", "y": "val_y.npy"})
    engine = IEEngine(config={"device": "CPU", "executor": executor}, data_loader=loader, metric=Accuracy(top_k=1))
    model = load_model({"model_name": "mnist_cnn", "model": str(MNIST / "mnist_cnn.onnx")})
    remote = create_pipeline([{"name": "AccuracyAwareQuantization", "params": PARAMS}], engine).run(model)
    assert_same_search(remote.report, local.report)
    with pytest.raises(ValueError, match="engine_config.executor is for AccuracyAwareQuantization"):
        create_pipeline([{"name": "DefaultQuantization", "params": {}}], engine).run(model)


@pytest.mark.slow
def test_mobilenet_v2_on_ray_is_the_local_search(cluster):
    """MobileNetV2 at max_drop 0.003 (built-in top1, ONNX Runtime): 2 Ray workers give the local search's
    decisions (minutes: `pytest -m slow`)."""
    data = os.path.join(os.path.dirname(MNIST), "imagenet")
    x, y = np.load(os.path.join(data, "val_u8.npy")), np.load(os.path.join(data, "val_y.npy"))
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)
    dataset = aquant.Dataset(
        [(x[i], int(y[i])) for i in range(len(y))],
        lambda item: ((item[0].astype(np.float32) * np.float32(1 / 255) - mean) / std)[None],
    )

    def run(**kwargs):
        _, report = aquant.quantize_with_accuracy_control(
            os.path.join(data, "mobilenet_v2.onnx"), dataset, dataset, metric="top1", max_drop=0.003,
            backend="ort", deployed_check=False, progress=False, return_report=True, **kwargs)
        return report

    local = run()
    executor = RayExecutor(num_workers=2, shard_size=16)
    remote = run(executor=executor)
    assert_same_search(remote, local)
    executor.shutdown()


def test_the_console_script_runs_the_command_line_with_executor_ray(mnist, tmp_path):
    """`aquant quantize … --executor ray` through the wheel's console script (the clap parser in the extension):
    the local command line's decisions. No address and no Ray in that process: the executor starts a local one."""
    import json
    import subprocess
    import sysconfig

    script = os.path.join(sysconfig.get_path("scripts"), "aquant")
    flags = ["--max-drop", "0.002", "--weights-level-low=-3", "--weights-level-high", "3", "--overflow-fix",
             "disable", "--backend", "ort", "--no-deployed-check", "--quiet"]
    data = os.path.dirname(mnist[0])

    def quantize(out, *extra):
        command = [script, "quantize", "--model", str(mnist[0]), "--calib", os.path.join(data, "calib.json"),
                   "--val", os.path.join(data, "val.json"), "-o", str(out), *flags, *extra]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return json.loads((out / "report.json").read_text()), done.stderr

    local, _ = quantize(tmp_path / "local")
    remote, said = quantize(tmp_path / "ray", "--executor", "ray")
    assert "Started a local Ray instance" in said
    assert local["reverted_ops"] > 0
    for key in ("reverted", "steps", "metrics"):
        assert remote[key] == local[key], key
    assert remote["evaluations"]["subset"] > 0
