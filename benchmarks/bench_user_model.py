"""`winit stats --model` on a resnet18 at 3x64x64, against a plain forward and backward pass
of the same model on the same batch.

    python benchmarks/bench_user_model.py [--batch 64] [--repeats 5]

The model is torchvision's resnet18 (built without weights) where torchvision imports, and
otherwise tests/user_models.py:ResNet, the same layout (11.2M parameters at 10 classes).
Three ratios, each against the plain pass measured in the same run, interleaved with it:

- probe: winit's measurement (one forward and backward pass with every per-layer
  statistic, and the theory beside it), as `winit stats` runs it;
- stats: all of `winit stats`'s work after the config is read: building the model, the
  init of every parameter, and the measurement;
- peak memory of the probe pass against the plain pass, each in a fresh process (peak
  resident set during the pass, as benchmarks/probe_memory.py measures it).

Prints a Markdown table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from probe_memory import _status_kib as status_kib  # noqa: E402 (benchmarks/ is on its path)

ROOT = Path(__file__).resolve().parents[1]


def _spec() -> str:
    try:
        import torchvision.models  # noqa: F401

        return "torchvision.models:resnet18"
    except Exception:  # beside the CPU torch wheel, PyPI's torchvision fails to import
        return "tests/user_models.py:ResNet"


def _config(batch: int):
    from weightinit_cli.loading import load_config

    sets = [
        f"model.module={_spec()}",
        "model.args.num_classes=10",
        "model.input_shape=[3, 64, 64]",
        "data.name=gaussian",
        f"data.samples={4 * batch}",
        f"train.batch_size={batch}",
    ]
    return load_config(None, sets, command="stats")


def _workload(batch: int):
    from weightinit_cli.experiments import first_batch, initialized, load_dataset

    cfg = _config(batch)
    data = load_dataset(cfg)
    model, report = initialized(cfg, cfg.init.spec, data)
    x, y = first_batch(data, batch, "cpu")
    return cfg, data, model, report, x, y


def plain(model, x, y) -> None:
    import torch

    model.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()


def _seconds(run) -> float:
    gc.collect()
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def timings(batch: int, repeats: int) -> dict[str, float]:
    from weightinit_cli.experiments import measure, run_stats

    cfg, data, model, report, x, y = _workload(batch)
    plain(model, x, y)  # warm up the kernels
    base, probe, whole = [], [], []
    for _ in range(repeats):
        base.append(_seconds(lambda: plain(model, x, y)))
        probe.append(_seconds(lambda: measure(cfg, model, report, data, "cpu")))
        base.append(_seconds(lambda: plain(model, x, y)))
        whole.append(_seconds(lambda: run_stats(cfg, data, "cpu")))
    plain_s = statistics.median(base)
    return {
        "plain_seconds": plain_s,
        "probe_ratio": statistics.median(probe) / plain_s,
        "stats_ratio": statistics.median(whole) / plain_s,
    }


def peak_memory(batch: int, variant: str) -> int:
    """Peak resident bytes of one pass (in this process: run it in a fresh one)."""
    from weightinit_cli.experiments import measure

    cfg, data, model, report, x, y = _workload(batch)
    plain(model, x[:8], y[:8])
    model.zero_grad(set_to_none=True)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = status_kib("VmRSS")
    if variant == "plain":
        plain(model, x, y)
    else:
        measure(cfg, model, report, data, "cpu")
    return (status_kib("VmHWM") - before) * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory", choices=["plain", "probe"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.memory:
        print(peak_memory(args.batch, args.memory))
        return
    result = timings(args.batch, args.repeats)
    peaks = {}
    for variant in ("plain", "probe"):
        out = subprocess.run(
            [sys.executable, __file__, "--batch", str(args.batch), "--memory", variant],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        peaks[variant] = int(out.stdout.split()[-1])
    result["memory_ratio"] = peaks["probe"] / peaks["plain"]
    result["model"] = _spec()
    print(f"`winit stats --model {result['model']}`, input 3x64x64, batch {args.batch}")
    print("| measure | ratio to a plain forward+backward | target |")
    print("| --- | --- | --- |")
    print(f"| probe (the measurement) | {result['probe_ratio']:.2f}x | 1.25x |")
    print(f"| stats (build, init, measurement) | {result['stats_ratio']:.2f}x | - |")
    print(f"| peak memory of the probe pass | {result['memory_ratio']:.2f}x | 1.2x |")
    print(f"plain pass: {result['plain_seconds']:.3f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
