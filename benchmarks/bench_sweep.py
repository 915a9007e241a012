"""winit sweep against plain PyTorch: the same trials trained one after another by a plain
loop in this process (the baseline), then by `winit sweep` on one worker and on every
core (and on a local Ray instance with --ray), wall time ratios, same numbers.

The baseline does each trial's essential work (build the model, init its weights with
torch.nn.init, train it with the same optimizer, batches and logging: common.py's
plain_train_loop) on one torch thread, as sweep trials run. The sweep adds what makes a
trial a result: a statistics pass before and after training, its run directory (six
files, a PNG among them), the results files and heatmaps.

    python benchmarks/bench_sweep.py [--repeats 3] [--ray] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import plain_train_loop  # noqa: E402
from weightinit_cli.grid import load_sweep  # noqa: E402

GRID = ["init.method=xavier_normal,he_normal", "model.depth=5,20"]
SEEDS = 2


def baseline(spec) -> float:
    """Every trial as build + torch.nn.init + a plain training loop, on one thread."""
    import torch
    from torch import nn

    from weightinit_cli.experiments import build_dataset
    from weightinit_cli.models import build_model
    from weightinit_cli.parallel import one_torch_thread

    init = {"xavier_normal": nn.init.xavier_normal_, "he_normal": nn.init.kaiming_normal_}
    start = time.perf_counter()
    with one_torch_thread():
        for trial in spec.trials:
            cfg = trial.config
            data = build_dataset(cfg)
            torch.manual_seed(cfg.seed)
            model = build_model(cfg.model)
            for module in model.modules():
                if isinstance(module, nn.Linear):
                    init[cfg.init.method](module.weight)
                    nn.init.zeros_(module.bias)
            plain_train_loop(model, data, cfg.train, seed=cfg.seed)
    return time.perf_counter() - start


def swept(spec, root: Path, backend: str, jobs: int | None) -> tuple[float, list[dict]]:
    from weightinit_cli.sweep_outputs import run_sweep

    start = time.perf_counter()
    result, _ = run_sweep(
        spec, runs_dir=root, backend=backend, jobs=jobs, fresh=True, progress=False
    )
    seconds = time.perf_counter() - start
    with open(Path(result.run_dir) / "results.csv", newline="") as f:
        rows = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="also on a local Ray instance")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    spec = load_sweep(None, GRID, seeds=SEEDS)
    runs = {"baseline": [], "sweep --jobs 1": [], f"sweep --jobs {cores}": []}
    if args.ray:
        runs[f"sweep --backend ray ({cores} CPUs)"] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        baseline(spec)  # warm-up: first-call costs out of the numbers
        swept(spec, root, "local", 1)
        for _ in range(args.repeats):
            runs["baseline"].append(baseline(spec))
            seconds, reference = swept(spec, root, "local", 1)
            runs["sweep --jobs 1"].append(seconds)
            seconds, rows = swept(spec, root, "local", cores)
            runs[f"sweep --jobs {cores}"].append(seconds)
            assert rows == reference, "parallel and sequential sweeps differ"
            if args.ray:
                # a Ray instance starts and stops inside each run: its cost is in the time
                seconds, rows = swept(spec, root, "ray", cores)
                runs[f"sweep --backend ray ({cores} CPUs)"].append(seconds)
                assert rows == reference, "the Ray sweep differs"
    base = statistics.median(runs["baseline"])
    result = {
        "cores": cores,
        "trials": len(spec.trials),
        "seconds": {name: statistics.median(times) for name, times in runs.items()},
        "runs": runs,
    }
    result["ratio"] = {name: s / base for name, s in result["seconds"].items()}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"| {len(spec.trials)} trials, {cores} cores | wall (s) | ratio to the baseline |")
    print("| --- | --- | --- |")
    for name, seconds in result["seconds"].items():
        print(f"| {name} | {seconds:.2f} | {result['ratio'][name]:.2f} |")


if __name__ == "__main__":
    main()
