#!/usr/bin/env python3
"""One MobileNetV2 run at max_drop 0.003 (built-in top1, ONNX Runtime judging) through aquant's Python API,
locally or with a RayExecutor of N worker processes on a local Ray; prints one JSON line. bench/ray.sh runs it
for the local search and 1, 2 and 4 workers. (Not named ray.py: run as a script, it would shadow the ray
package.)

The line holds the wall seconds, the decisions (reverted ops, final metric), and for Ray the units and batches
sent, the seconds the workers spent answering them (busy), and from those the mean cost of a unit on a worker
and the driver's share (wall minus the busiest worker's busy seconds).
"""
import argparse
import json
import os
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "assets", "imagenet")
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


def transform(item):
    """The data spec's preprocessing (scale 1/255, mean, std), batched."""
    image, _ = item
    return ((image.astype(np.float32) * np.float32(1 / 255) - MEAN) / STD)[None]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=0, help="Ray worker processes (0: the local search)")
    parser.add_argument("--shard-size", type=int, default=16)
    args = parser.parse_args()
    import aquant

    x, y = np.load(os.path.join(DATA, "val_u8.npy")), np.load(os.path.join(DATA, "val_y.npy"))
    dataset = aquant.Dataset([(x[i], int(y[i])) for i in range(len(y))], transform)
    executor = None
    if args.workers:
        import ray

        from aquant.ray import RayExecutor

        ray.init(num_cpus=args.workers, object_store_memory=600 * 2**20, include_dashboard=False,
                 log_to_driver=False)
        executor = RayExecutor(num_workers=args.workers, shard_size=args.shard_size)
    start = time.time()
    _, report = aquant.quantize_with_accuracy_control(
        os.path.join(DATA, "mobilenet_v2.onnx"), dataset, dataset, metric="top1", max_drop=0.003, backend="ort",
        deployed_check=False, progress=False, return_report=True, executor=executor)
    wall = time.time() - start
    result = {
        "workers": args.workers,
        "seconds": round(wall, 1),
        "reverted": report.reverted,
        "steps": len(report.steps),
        "final": report.metrics[0].final,
        "evaluations": {k: report.evaluations[k] for k in ("full", "subset")},
    }
    if executor is not None:
        busy = executor.busy_seconds()
        result.update(
            shard_size=args.shard_size, units=executor.units, batches=executor.batches,
            busy_s=[round(b, 1) for b in busy], unit_s=round(sum(busy) / max(executor.units, 1), 3),
            driver_s=round(wall - max(busy), 1), received=executor.received())
        executor.shutdown()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
