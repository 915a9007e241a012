"""Scratch initializers against torch.nn.init, and both against writing the tensor once.

    python benchmarks/bench_init.py [--repeats N] [--json] [--methods m1,m2]

For every random method and for a 4096x4096 and a (512, 512, 3, 3) weight it times

- scratch: ``scratch.<method>(shape, rng=rng)`` and the copy of the new array into an
  ``nn.Parameter`` (``param.copy_(torch.from_numpy(arr))``), which is what
  ``apply_weight_init`` does with the scratch backend;
- torch: the ``torch.nn.init`` function that samples the same distribution, in place
  on the parameter, with a ``torch.Generator`` (torch's default intra-op threads);
- floor: writing the tensor once (the faster median of ``param.fill_(1.0)`` and of
  NumPy's ``fill`` on the parameter's memory): the memory-bandwidth limit no
  initializer can beat.

scratch.py is plain NumPy, written to be read, not to be fast; this measures what that
costs. Each time is the median of N runs (default 5; 3 for a cell whose first round takes
over 3 s), the two contenders taking turns so that a busy machine slows both alike.
ratio = scratch / torch (> 1: scratch is slower); x floor = time / floor. The table is
Markdown; ``--json`` prints the same numbers as JSON instead. The load average before and
after is printed: on a busy machine every number is noisier.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import init as nn_init

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from weightinit_cli import scratch  # noqa: E402
from weightinit_cli.initspec import expected_std  # noqa: E402
from weightinit_cli.methods import TRUNCATED_NORMAL_STD_CORRECTION  # noqa: E402

SHAPES = {"4096x4096": (4096, 4096), "512x512x3x3": (512, 512, 3, 3)}
SLOW_CELL_S = 1.0  # a first run slower than this caps the repeats at 3


def _variance_scaling(distribution: str) -> Callable[[torch.Tensor, torch.Generator], object]:
    def fill(t: torch.Tensor, g: torch.Generator):
        std = expected_std("variance_scaling", t.shape, {"distribution": distribution})
        if distribution == "uniform":
            bound = math.sqrt(3.0) * std
            return nn_init.uniform_(t, -bound, bound, generator=g)
        if distribution == "normal":
            return nn_init.normal_(t, 0.0, std, generator=g)
        wide = std / TRUNCATED_NORMAL_STD_CORRECTION
        return nn_init.trunc_normal_(t, 0.0, wide, -2 * wide, 2 * wide, generator=g)

    return fill


# (label, scratch method, its parameters, the torch.nn.init equivalent, 2-D only)
CASES: list[tuple[str, str, dict, Callable[[torch.Tensor, torch.Generator], object], bool]] = [
    ("normal", "normal", {}, lambda t, g: nn_init.normal_(t, generator=g), False),
    ("uniform", "uniform", {}, lambda t, g: nn_init.uniform_(t, generator=g), False),
    ("trunc_normal", "trunc_normal", {}, lambda t, g: nn_init.trunc_normal_(t, generator=g), False),
    (
        "xavier_uniform",
        "xavier_uniform",
        {},
        lambda t, g: nn_init.xavier_uniform_(t, generator=g),
        False,
    ),
    (
        "xavier_normal",
        "xavier_normal",
        {},
        lambda t, g: nn_init.xavier_normal_(t, generator=g),
        False,
    ),
    ("he_uniform", "he_uniform", {}, lambda t, g: nn_init.kaiming_uniform_(t, generator=g), False),
    ("he_normal", "he_normal", {}, lambda t, g: nn_init.kaiming_normal_(t, generator=g), False),
    (
        "lecun_uniform",
        "lecun_uniform",
        {},
        lambda t, g: nn_init.kaiming_uniform_(t, nonlinearity="linear", generator=g),
        False,
    ),
    (
        "lecun_normal",
        "lecun_normal",
        {},
        lambda t, g: nn_init.kaiming_normal_(t, nonlinearity="linear", generator=g),
        False,
    ),
    *[
        (
            f"variance_scaling ({dist})",
            "variance_scaling",
            {"distribution": dist},
            _variance_scaling(dist),
            False,
        )
        for dist in ("normal", "truncated_normal", "uniform")
    ],
    ("orthogonal", "orthogonal", {}, lambda t, g: nn_init.orthogonal_(t, generator=g), False),
    ("sparse", "sparse", {}, lambda t, g: nn_init.sparse_(t, 0.1, generator=g), True),
    (
        "torch_default",
        "torch_default",
        {},
        lambda t, g: nn_init.kaiming_uniform_(t, a=math.sqrt(5), generator=g),
        False,
    ),
]


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def floor_time(param: nn.Parameter, repeats: int) -> float:
    """Writing the parameter once: the faster median of torch's fill_ and NumPy's fill."""
    n = max(repeats, 5)
    with torch.no_grad():
        param.fill_(0.0)
        view = param.detach().numpy()
        by_torch = statistics.median(_timed(lambda: param.fill_(1.0)) for _ in range(n))
        by_numpy = statistics.median(_timed(lambda: view.fill(1.0)) for _ in range(n))
    return min(by_torch, by_numpy)


def bench_cell(method: str, params: dict, torch_fill, shape, repeats: int, seed: int = 0):
    """Median seconds of scratch (with the copy into the parameter) and of torch."""
    param = nn.Parameter(torch.empty(shape))
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)

    def scratch_copy() -> None:
        values = scratch.init(method, shape, rng=rng, **params)
        with torch.no_grad():
            param.copy_(torch.from_numpy(values))

    def torch_init() -> None:
        torch_fill(param, gen)

    contenders = [scratch_copy, torch_init]
    first = sum(_timed(fn) for fn in contenders)  # warm-up, not counted
    runs = min(repeats, 3) if first > 3 * SLOW_CELL_S else repeats
    times: list[list[float]] = [[] for _ in contenders]
    for i in range(runs):
        # Rotate who goes first, so that a busy machine slows all alike.
        for k in range(len(contenders)):
            j = (i + k) % len(contenders)
            times[j].append(_timed(contenders[j]))
    return [statistics.median(t) for t in times], runs


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def run(repeats: int, only: set[str] | None) -> dict:
    load_before = _load()
    results = []
    floors = {}
    for label, shape in SHAPES.items():
        floors[label] = floor_time(nn.Parameter(torch.empty(shape)), repeats)
    for case_label, method, params, torch_fill, dense_only in CASES:
        if only and case_label not in only and method not in only:
            continue
        for label, shape in SHAPES.items():
            if dense_only and len(shape) != 2:
                continue
            (ours, theirs), runs = bench_cell(method, params, torch_fill, shape, repeats)
            floor = floors[label]
            results.append(
                {
                    "method": case_label,
                    "shape": label,
                    "scratch_ms": ours * 1e3,
                    "torch_ms": theirs * 1e3,
                    "ratio": ours / theirs,
                    "scratch_x_floor": ours / floor,
                    "torch_x_floor": theirs / floor,
                    "runs": runs,
                }
            )
            print(
                f"  {case_label} {label}: {ours * 1e3:.1f} ms vs {theirs * 1e3:.1f} ms",
                file=sys.stderr,
                flush=True,
            )
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "load_average_before": load_before,
            "load_average_after": _load(),
        },
        "floor_ms": {label: t * 1e3 for label, t in floors.items()},
        "floor_gb_per_s": {
            label: math.prod(SHAPES[label]) * 4 / t / 1e9 for label, t in floors.items()
        },
        "results": results,
    }


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"{m['cpus']} CPUs, torch on {m['torch_threads']} threads; NumPy {m['numpy']}, "
        f"torch {m['torch']}, Python {m['python']}; "
        f"load average {m['load_average_before']} before, {m['load_average_after']} after.",
        "",
        "Floor (writing the tensor once, fill_ or NumPy fill): "
        + ", ".join(
            f"{label} {ms:.1f} ms ({report['floor_gb_per_s'][label]:.1f} GB/s)"
            for label, ms in report["floor_ms"].items()
        ),
        "",
        "| method | shape | scratch + copy_ (ms) | torch.nn.init (ms) | ratio "
        "| scratch x floor | torch x floor |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['method']} | {r['shape']} | {r['scratch_ms']:.1f} | {r['torch_ms']:.1f} "
            f"| {r['ratio']:.2f} | {r['scratch_x_floor']:.1f} | {r['torch_x_floor']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per cell (median)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument("--methods", help="comma-separated methods (labels or names) to run")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    only = {m.strip() for m in args.methods.split(",")} if args.methods else None
    report = run(args.repeats, only)
    print(json.dumps(report, indent=2) if args.json else markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
