"""winit sweep against plain PyTorch: the same trials trained one after another by a plain
loop in this process (the baseline), then by `winit sweep` on one worker, on every core,
and (with --ray) on a local Ray instance; wall-time ratios, and the same numbers.

The baseline does each trial's essential work (build the model, init its weights with
torch.nn.init, train it with the same optimizer, batches and logging: common.py's
plain_train_loop) on one torch thread, as sweep trials run, and writes nothing. A sweep
adds what makes a trial a result: its config checked, a statistics pass at init, its run
directory, and once per sweep the results files and heatmaps.

- `--jobs 1`, in this process, against the baseline (target: within 1.10x).
- `--jobs N` (every core) as a whole `winit sweep` process, against the ideal on N cores:
  torch's start-up (`python -c "import torch"`) plus the baseline's time over N (target:
  within 1.15x).
- `--ray`: a local Ray instance started once (its start-up left out) and warmed by one
  sweep (its workers have imported torch and winit), then a 36-trial grid timed against
  the baseline of the same 36 trials (target: within 1.5x).

    python benchmarks/bench_sweep.py [--repeats 3] [--ray] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import plain_train_loop  # noqa: E402

from weightinit_cli.sweep.grid import load_sweep  # noqa: E402

GRID = ["init.method=xavier_normal,he_normal", "model.depth=5,20"]
SEEDS = 2
RAY_GRID = ["init.method=xavier_normal,he_normal,lecun_normal", "model.depth=5,10,20"]
RAY_SEEDS = 4  # 3 x 3 x 4 = 36 trials
TARGETS = {"jobs 1": 1.10, "jobs N": 1.15, "ray": 1.5}


def baseline(spec) -> float:
    """Every trial as build + torch.nn.init + a plain training loop, on one thread."""
    import torch
    from torch import nn

    from weightinit_cli.experiments import load_dataset
    from weightinit_cli.models import build_model
    from weightinit_cli.parallel import one_torch_thread

    init = {
        "xavier_normal": nn.init.xavier_normal_,
        "he_normal": nn.init.kaiming_normal_,
        "lecun_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="linear"),
    }
    start = time.perf_counter()
    with one_torch_thread():
        for trial in spec.trials:
            cfg = trial.config
            data = load_dataset(cfg)
            torch.manual_seed(cfg.seed)
            model = build_model(cfg.model.plan)
            for module in model.modules():
                if isinstance(module, nn.Linear):
                    init[cfg.init.method](module.weight)
                    nn.init.zeros_(module.bias)
            plain_train_loop(model, data, cfg.train, seed=cfg.seed)
    return time.perf_counter() - start


def results_of(run_dir: Path) -> list[dict]:
    with open(run_dir / "results.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def swept(spec, root: Path, backend: str, jobs: int | None) -> tuple[float, list[dict]]:
    from weightinit_cli.sweep.outputs import run_sweep

    start = time.perf_counter()
    result, _ = run_sweep(spec, runs_dir=root, backend=backend, jobs=jobs, fresh=True)
    return time.perf_counter() - start, results_of(Path(result.run_dir))


def swept_process(grid: list[str], seeds: int, root: Path, jobs: int) -> tuple[float, list]:
    """`winit sweep` as a user runs it: a whole process."""
    argv = [sys.executable, "-m", "weightinit_cli", "sweep", "--seeds", str(seeds)]
    argv += [arg for axis in grid for arg in ("--grid", axis)]
    argv += ["--jobs", str(jobs), "--fresh", "--json", "--runs-dir", str(root)]
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    return seconds, results_of(Path(json.loads(out.stdout)["run_dir"]))


def torch_start() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="also on a local Ray instance")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    spec = load_sweep(None, GRID, seeds=SEEDS)
    runs: dict[str, list[float]] = {
        "baseline": [],
        "sweep --jobs 1": [],
        f"sweep --jobs {cores}": [],
        "torch start-up": [],
        f"winit sweep --jobs {cores} (process)": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        baseline(spec)  # warm-up: first-call costs out of the numbers
        swept(spec, root, "local", 1)
        torch_start()
        for _ in range(args.repeats):
            runs["baseline"].append(baseline(spec))
            seconds, reference = swept(spec, root, "local", 1)
            runs["sweep --jobs 1"].append(seconds)
            seconds, rows = swept(spec, root, "local", cores)
            runs[f"sweep --jobs {cores}"].append(seconds)
            assert rows == reference, "parallel and sequential sweeps differ"
            runs["torch start-up"].append(torch_start())
            seconds, rows = swept_process(GRID, SEEDS, root, cores)
            runs[f"winit sweep --jobs {cores} (process)"].append(seconds)
            assert rows == reference, "parallel and sequential sweeps differ"
        if args.ray:
            ray_runs = ray_sweeps(root, cores, args.repeats)
    med = {name: statistics.median(times) for name, times in runs.items()}
    ideal = med["torch start-up"] + med["baseline"] / cores
    result = {
        "cores": cores,
        "trials": len(spec.trials),
        "seconds": med,
        "ideal_seconds": ideal,
        "ratio": {
            "jobs 1 / baseline": med["sweep --jobs 1"] / med["baseline"],
            f"jobs {cores} / ideal": med[f"winit sweep --jobs {cores} (process)"] / ideal,
        },
        "runs": runs,
    }
    if args.ray:
        result["ray"] = ray_runs
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"| {len(spec.trials)} trials, {cores} cores | wall (s) | ratio | target |")
    print("| --- | --- | --- | --- |")
    print(f"| plain PyTorch, one after another | {med['baseline']:.2f} | 1.00 | |")
    jobs1 = result["ratio"]["jobs 1 / baseline"]
    target = TARGETS["jobs 1"]
    print(f"| `winit sweep --jobs 1` | {med['sweep --jobs 1']:.2f} | {jobs1:.2f} | <= {target} |")
    inside = med[f"sweep --jobs {cores}"]
    share = inside / med["baseline"]
    print(f"| `sweep --jobs {cores}`, in this process | {inside:.2f} | {share:.2f} | |")
    print(
        f"| ideal on {cores} cores (torch start-up + baseline / {cores}) | {ideal:.2f} | 1.00 | |"
    )
    name = f"winit sweep --jobs {cores} (process)"
    ratio = result["ratio"][f"jobs {cores} / ideal"]
    print(f"| `{name}` | {med[name]:.2f} | {ratio:.2f} of the ideal | <= {TARGETS['jobs N']} |")
    if args.ray:
        trials = ray_runs["trials"]
        print(f"| {trials} trials: plain PyTorch | {ray_runs['baseline_s']:.2f} | 1.00 | |")
        print(
            f"| {ray_runs['trials']} trials: `winit sweep --backend ray` (warm) | "
            f"{ray_runs['ray_s']:.2f} | {ray_runs['ratio']:.2f} | <= {TARGETS['ray']} |"
        )


def ray_sweeps(root: Path, cores: int, repeats: int) -> dict:
    """The 36-trial grid on a local Ray instance started once and warmed by one sweep."""
    import ray

    spec = load_sweep(None, RAY_GRID, seeds=RAY_SEEDS)
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    try:
        swept(spec, root, "ray", cores)  # warm: the workers import torch and winit
        base, on_ray = [], []
        for _ in range(repeats):
            base.append(baseline(spec))
            seconds, _ = swept(spec, root, "ray", cores)
            on_ray.append(seconds)
    finally:
        ray.shutdown()
    baseline_s, ray_s = statistics.median(base), statistics.median(on_ray)
    return {
        "trials": len(spec.trials),
        "baseline_s": baseline_s,
        "ray_s": ray_s,
        "ratio": ray_s / baseline_s,
        "runs": {"baseline": base, "ray": on_ray},
    }


if __name__ == "__main__":
    main()
