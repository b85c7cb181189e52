"""Ctrl-C: a SIGINT during the search saves the best model so far and raises KeyboardInterrupt, as the CLI
stops; the saved model runs in ONNX Runtime."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

from conftest import MNIST, ort_top1

import numpy as np

SCRIPT = textwrap.dedent(
    """
    import sys, time, numpy as np, aquant
    root = sys.argv[1]
    x, y = np.load(root + "/val_x.npy"), np.load(root + "/val_y.npy")
    calls, announced = [0], [False]
    def top1(outputs, label):
        # Called from several threads: `calls[0] += 1` may lose updates and another thread may move the count
        # between the increment and the test, so test a threshold (once), never an exact count.
        calls[0] += 1
        if calls[0] >= 2 * len(y) + 50 and not announced[0]:  # FP32 and INT8 evaluated: the search is ranking
            announced[0] = True
            print("RANKING", flush=True)
        time.sleep(0.002)
        return float(np.argmax(outputs[0]) == label)
    try:
        # Three-level weights: the MNIST CNN then loses accuracy, so the search ranks (a POT parameter).
        import aquant._api as api
        base = api._base_params
        def patched(*args):
            params, device = base(*args)
            params.update(weights={"level_low": -3, "level_high": 3}, overflow_fix="disable")
            return params, device
        api._base_params = patched
        aquant_params = dict(max_drop=0.0, progress=False, deployed_check=False, output_dir=sys.argv[2])
        aquant.quantize_with_accuracy_control(
            root + "/mnist_cnn.onnx", aquant.Dataset(list(x[:300]), lambda i: i[None]),
            aquant.Dataset(list(zip(x, y)), lambda item: item[0][None]), metric=top1, **aquant_params)
        print("FINISHED", flush=True)
    except KeyboardInterrupt as stop:
        print("INTERRUPTED", type(stop.model).__name__, flush=True)
        sys.exit(130)
    """
)


def test_sigint_saves_best_model(tmp_path, mnist):
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(MNIST), str(out)], stdout=subprocess.PIPE, text=True
    )
    for line in process.stdout:
        if line.startswith("RANKING"):
            process.send_signal(signal.SIGINT)
            break
        if line.startswith("FINISHED"):
            break
    rest = process.stdout.read()
    assert process.wait(timeout=300) == 130, rest
    assert "INTERRUPTED str" in rest  # a path in: the saved path out
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] is True
    assert (out / "state" / "journal.jsonl").is_file()  # resumable with resume=True
    top1 = ort_top1(out / "model.onnx", mnist[2], mnist[3])
    assert np.isfinite(top1)
