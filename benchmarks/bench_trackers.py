"""What logging to a tracker costs a default `winit train` run: the same run without a
tracker and with `--log NAME`, whole process to whole process, taking turns.

    python benchmarks/bench_trackers.py [--repeats 3] [--trackers tensorboard mlflow] [--json]

With TensorBoard, each of the 41 log points also takes every weighted layer's weight,
gradient and (on the held-out split) activation histogram, and the event files get the
scalars and histograms; the run ends with the config as hparams. With MLflow, the run is
created with the config as params, each log point's metrics go in one log_batch, and the
run directory's files become its artifacts, in MLflow's default store (a SQLite file, made
by one untimed run first: a new store migrates its tables once, in seconds). Reported: the
medians of the whole process and of the training loop (meta.json's
timing.train_loop_seconds), and their ratios to the run without a tracker, against the
issue's goal of at most 1.10x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.10


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)  # this tree's winit, not an installed one
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def one_run(trackers: list[str], runs: Path, env: dict[str, str]) -> dict[str, float]:
    argv = [sys.executable, "-m", "weightinit_cli", "train", "--runs-dir", str(runs), "--json"]
    for name in trackers:
        argv += ["--log", name]
    start = time.perf_counter()
    out = subprocess.run(argv, env=env, cwd=runs.parent, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    meta = json.loads((Path(json.loads(out.stdout)["run_dir"]) / "meta.json").read_text())
    return {"wall_s": wall, "loop_s": meta["timing"]["train_loop_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trackers", nargs="+", default=["tensorboard", "mlflow"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = environment()
    tmp = Path(tempfile.mkdtemp(prefix="winit-bench-trackers-"))
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    sides = {"none": [], **{name: [name] for name in args.trackers}}
    if "mlflow" in sides:
        one_run(["mlflow"], tmp / "warm-up", env)  # the store, made once
    results: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    for repeat in range(args.repeats):
        order = list(sides) if repeat % 2 == 0 else list(reversed(sides))
        for side in order:
            results[side].append(one_run(sides[side], tmp / f"{side}-{repeat}", env))
    medians = {
        side: {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "loop_s")}
        for side, runs in results.items()
    }
    if args.json:
        print(json.dumps({"repeats": args.repeats, "medians": medians}, indent=2))
        return
    base = medians["none"]
    print("| tracker | whole | loop | whole / none | loop / none |")
    print("|---|---|---|---|---|")
    for side, m in medians.items():
        ratio = m["wall_s"] / base["wall_s"]
        met = "" if side == "none" else f" ({'met' if ratio <= TARGET else 'NOT met'})"
        print(
            f"| {side} | {m['wall_s']:.2f} s | {m['loop_s']:.2f} s | {ratio:.3f}x{met} | "
            f"{m['loop_s'] / base['loop_s']:.2f}x |"
        )


if __name__ == "__main__":
    main()
