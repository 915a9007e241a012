"""compare on several cores: the default compare (3 methods) run one after another in
this process, and side by side on worker processes, same numbers, wall time ratio.

    python benchmarks/bench_compare.py [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from weightinit_cli.experiments import load_dataset, run_compare
from weightinit_cli.loading import load_config
from weightinit_cli.serialize import compare_json

METHODS = [("xavier_uniform", {}), ("he_normal", {}), ("zeros", {})]


def timed(cfg, data, jobs: int | None) -> tuple[float, dict]:
    start = time.perf_counter()
    specs = [cfg.init.spec_for(method, params) for method, params in METHODS]
    result = run_compare(cfg, specs, data, "cpu", jobs=jobs)
    return time.perf_counter() - start, compare_json(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cfg = load_config(None, [], command="compare")
    data = load_dataset(cfg)
    timed(cfg, data, 1)  # warm-up: first-call costs (allocator, kernels) out of the numbers
    sequential, parallel = [], []
    for _ in range(args.repeats):
        seconds, seq_json = timed(cfg, data, 1)
        sequential.append(seconds)
        seconds, par_json = timed(cfg, data, None)
        parallel.append(seconds)
        assert seq_json == par_json, "parallel and sequential results differ"
    result = {
        "cores": len(os.sched_getaffinity(0)),
        "methods": len(METHODS),
        "sequential_s": statistics.median(sequential),
        "parallel_s": statistics.median(parallel),
    }
    result["ratio"] = result["parallel_s"] / result["sequential_s"]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("| methods | cores | sequential (s) | parallel (s) | ratio | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| {result['methods']} | {result['cores']} | {result['sequential_s']:.2f} | "
        f"{result['parallel_s']:.2f} | {result['ratio']:.2f} | <= 0.70 |"
    )


if __name__ == "__main__":
    main()
