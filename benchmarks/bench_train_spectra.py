"""What logging the weight spectra costs a `winit train` run: the same run with
`train.weight_spectra` on (the default) and off, and a plain-PyTorch script doing the
training without any of winit.

    python benchmarks/bench_train_spectra.py [--repeats 3] [--threads N] [--json]

At every log step (41 of them in 400 steps) winit takes each weighted layer's singular
values (one SVD in float64) and fits WeightWatcher's power law to their squares: the
spectral norm, stable rank and α of metrics.csv. Two workloads:

- the default `winit train` (no config: a 20-layer ReLU net of width 64 on spirals,
  21 weighted layers, 64 eigenvalues each);
- configs/deep_relu.yaml (30 layers of width 256: 31 weighted layers, 256 eigenvalues each),
  with benchmarks/baseline_train.py as its plain-PyTorch baseline (the same training and
  files, by hand; no spectra).

Each run is a whole process (`python -m weightinit_cli train ... --json`, import to last
file), the sides taking turns; also the training loop's own seconds (meta.json's
timing.train_loop_seconds; the baseline prints its own). Reported: the medians, on/off
(what the logging adds) and each against the plain baseline. The script checks that on and
off trained alike: the same final loss.
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
HERE = ROOT / "benchmarks"
TARGET = 1.10  # the issue's: logging adds at most 10% to a default `winit train`

WORKLOADS = {"default": [], "deep_relu": [str(ROOT / "configs" / "deep_relu.yaml")]}


def environment(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)  # this tree's winit, not an installed one
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def winit_run(config: list[str], spectra: bool, runs: Path, env: dict[str, str]) -> dict:
    argv = [sys.executable, "-m", "weightinit_cli", "train", *config, "--runs-dir", str(runs)]
    argv += ["--json", "--set", f"train.weight_spectra={str(spectra).lower()}"]
    start = time.perf_counter()
    out = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    summary = json.loads(out.stdout)
    meta = json.loads((Path(summary["run_dir"]) / "meta.json").read_text())
    return {
        "wall_s": wall,
        "loop_s": meta["timing"]["train_loop_seconds"],
        "final_loss": summary["final_loss"],
    }


def baseline_run(out: Path, env: dict[str, str]) -> dict:
    argv = [sys.executable, str(HERE / "baseline_train.py"), "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "loop_s": data["loop_seconds"]}


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = environment(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="winit-bench-spectra-"))
    results: dict[str, dict[str, list[dict]]] = {
        name: {"on": [], "off": [], "baseline": []} for name in WORKLOADS
    }
    for repeat in range(args.repeats):
        for name, config in WORKLOADS.items():
            sides = ("on", "off") if repeat % 2 == 0 else ("off", "on")
            for side in sides:
                runs = tmp / f"{name}-{side}-{repeat}"
                results[name][side].append(winit_run(config, side == "on", runs, env))
            if name == "deep_relu":
                results[name]["baseline"].append(baseline_run(tmp / f"base-{repeat}", env))
    report: dict[str, dict] = {}
    for name, sides in results.items():
        on, off = sides["on"], sides["off"]
        finals = {round(r["final_loss"], 12) for r in on + off}
        if len(finals) != 1:
            raise SystemExit(f"{name}: on and off trained differently: final losses {finals}")
        row = {
            "on_wall_s": median_of(on, "wall_s"),
            "off_wall_s": median_of(off, "wall_s"),
            "on_loop_s": median_of(on, "loop_s"),
            "off_loop_s": median_of(off, "loop_s"),
        }
        row["added_wall"] = row["on_wall_s"] / row["off_wall_s"]
        row["added_loop"] = row["on_loop_s"] / row["off_loop_s"]
        if sides["baseline"]:
            row["baseline_wall_s"] = median_of(sides["baseline"], "wall_s")
            row["baseline_loop_s"] = median_of(sides["baseline"], "loop_s")
            row["on_vs_baseline_wall"] = row["on_wall_s"] / row["baseline_wall_s"]
            row["off_vs_baseline_wall"] = row["off_wall_s"] / row["baseline_wall_s"]
        report[name] = row
    if args.json:
        print(json.dumps({"repeats": args.repeats, "threads": args.threads, **report}, indent=2))
        return
    print("| workload | spectra on | off | on / off (whole) | on / off (loop) | vs plain |")
    print("|---|---|---|---|---|---|")
    for name, row in report.items():
        met = "met" if row["added_wall"] <= TARGET else "NOT met"
        plain = (
            f"on {row['on_vs_baseline_wall']:.2f}x, off {row['off_vs_baseline_wall']:.2f}x"
            if "baseline_wall_s" in row
            else "-"
        )
        print(
            f"| {name} | {row['on_wall_s']:.2f} s | {row['off_wall_s']:.2f} s | "
            f"{row['added_wall']:.3f}x ({met}, ≤ {TARGET}x) | {row['added_loop']:.2f}x | {plain} |"
        )


if __name__ == "__main__":
    main()
