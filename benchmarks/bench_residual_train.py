"""`winit train` on a 64-block residual MLP on MNIST, against a plain PyTorch loop training
the same model.

    python benchmarks/bench_residual_train.py [--repeats 5] [--width 64] [--branch-depth 2]
        [--method he_normal] [--branch-scale sqrt_depth] [--steps 400] [--threads N] [--json]

The network is `--set model.block=residual --depth 64 --set data.name=mnist`: a dense stem
784 -> width, 64 pre-activation residual blocks x + F(x), F a ReLU before each of its
`branch_depth` Linear layers, then a ReLU and a Linear head to 10 classes; He-normal weights
with each branch's last layer scaled by 1/sqrt(64) (`init.branch_scale: sqrt_depth`), which
keeps the residual stream's variance O(1) at this depth so that the run trains. Width 64
and two layers per branch are the defaults that `winit compare --methods he_normal fixup
skipinit --set model.block=residual --depth 64` runs; they are also the hardest case for an
overhead ratio, since with 130 small layers each step is mostly PyTorch's fixed cost per
call, not arithmetic, and what winit adds per layer weighs the most.

Both sides train the same nn.Module for the same steps on the same batches: built by
models.build_model from the same plan and initialized by winit (experiments.initialized,
the same seed), the same SGD optimizer, the same shuffled mini-batches (a permutation per
epoch from a generator seeded as winit seeds it), and the same logging as a plain script
does it: the step's loss read once, and at step 0 and every `log_every` steps the held-out
loss and accuracy (eval mode, no grad) and the global gradient norm.

- plain: load the data (winit's loader: the same arrays), build and init the model, the
  plain loop above. Nothing else.
- winit: `session.train`, what `winit train --json` runs after reading its config: the
  data, the model and its init, the statistics pass at init (and its theory and verdict),
  the training loop (train.train: each log point also has every layer's gradient std,
  and is a flushed metrics.csv row), the statistics pass after training, and the run
  directory (config.yaml, meta.json, metrics.csv, layers.csv, summary.json, loss.png).

Two ratios, wall and CPU time each, the medians over repeats, the two sides taking turns:
the training loop (on both sides from the step-0 log point to the last, read by a Clock at
each point) and the whole (from loading the data to the last file). The script checks that
both trained the same way: the same training loss at every log point. Use --threads 1 on a
shared machine: two torch threads fighting neighbours for two cores make the wall times
meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this tree's winit, not an installed one

DEPTH = 64
TARGET = 1.10


def config(args: argparse.Namespace):
    from weightinit_cli.loading import load_config

    sets = [
        "model.block=residual",
        f"model.depth={DEPTH}",
        f"model.width={args.width}",
        f"model.branch_depth={args.branch_depth}",
        "data.name=mnist",
        f"init.method={args.method}",
        f"init.branch_scale={args.branch_scale}",
        f"train.steps={args.steps}",
    ]
    return load_config(None, sets, "train")


class Clock:
    """The wall and CPU clocks read at each log point. On the winit side it stands where
    `winit train`'s live display does (session.train's `progress`), and is as cheap as
    --json's none; the plain loop reads it at its own log points."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __call__(self, steps: int, labels: object) -> Clock:  # the progress factory
        return self

    def __enter__(self) -> Clock:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, label: object = None, point: object = None) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def loop(self) -> tuple[float, float]:
        """Wall and CPU seconds from the first log point (step 0) to the last."""
        return self.wall[-1] - self.wall[0], self.cpu[-1] - self.cpu[0]


def plain_loop(model, data, cfg, seed: int, clock: Clock) -> list[float]:
    """A plain training loop of `model` as cfg (a TrainConfig) asks; the mean training loss
    of each log point."""
    import torch
    from torch import nn

    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_test, y_test = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    generator = torch.Generator().manual_seed(seed)
    batch = min(cfg.batch_size, len(y))
    order, position = torch.randperm(len(y), generator=generator), 0
    logged: list[tuple[float, ...]] = []

    def log(loss: float) -> None:
        model.eval()
        with torch.no_grad():
            logits = model(x_test)
        model.train()
        norms = [p.grad.norm() for p in model.parameters() if p.grad is not None]
        logged.append(
            (
                loss,
                nn.functional.cross_entropy(logits, y_test).item(),
                (logits.argmax(dim=1) == y_test).float().mean().item(),
                torch.stack(norms).norm().item(),
            )
        )
        clock.update()

    model.train()
    nn.functional.cross_entropy(model(x[:batch]), y[:batch]).backward()  # warm, as winit's
    model.zero_grad(set_to_none=True)  # statistics pass at init warms its loop
    total, since = 0.0, 0
    for step in range(cfg.steps):
        if position + batch > len(y):
            order, position = torch.randperm(len(y), generator=generator), 0
        index = order[position : position + batch]
        position += batch
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x[index]), y[index])
        loss.backward()
        if step == 0:
            log(loss.item())
        optimizer.step()
        total, since = total + loss.item(), since + 1
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            log(total / since)
            total, since = 0.0, 0
    return [point[0] for point in logged]


def timed(run) -> dict:
    """Run `run(clock)` -> (losses, status); its wall and CPU seconds, whole and loop."""
    clock = Clock()
    wall, cpu = time.perf_counter(), time.process_time()
    losses, status = run(clock)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    loop_wall, loop_cpu = clock.loop()
    return {
        "times": {"whole": wall, "whole_cpu": cpu, "loop": loop_wall, "loop_cpu": loop_cpu},
        "losses": losses,
        "status": status,
    }


def plain(cfg) -> dict:
    """Load the data, build and init the model, train it in a plain loop."""
    from weightinit_cli.experiments import initialized, load_dataset

    def run(clock: Clock) -> tuple[list[float], str]:
        data = load_dataset(cfg)
        model, _ = initialized(cfg, cfg.init.spec, data)
        return plain_loop(model, data, cfg.train, cfg.seed, clock), "completed"

    return timed(run)


def winit(cfg, runs: Path) -> dict:
    """What `winit train --json` does once its config is read."""
    from weightinit_cli import session
    from weightinit_cli.serialize import train_json

    def run(clock: Clock) -> tuple[list[float], str]:
        recorded = session.train(cfg, runs_dir=runs, progress=clock, command="winit train")
        train_json(recorded.result, str(recorded.run_dir))  # what --json prints
        history = recorded.result.history
        return [point.loss for point in history.history], history.status

    return timed(run)


def same_training(a: list[float], b: list[float]) -> bool:
    """The same loss at every log point (to float32's noise: the same ops, in one order)."""
    if len(a) != len(b):
        return False
    return all(abs(p - q) <= 1e-5 * max(1.0, abs(p)) for p, q in zip(a, b, strict=True))


KEYS = {
    "loop": "training loop, wall",
    "loop_cpu": "training loop, CPU",
    "whole": "whole, wall",
    "whole_cpu": "whole, CPU",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--branch-depth", type=int, default=2)
    parser.add_argument("--method", default="he_normal")
    parser.add_argument("--branch-scale", default="sqrt_depth")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON only")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = config(args)
    runs: dict[str, dict[str, list[float]]] = {
        side: {key: [] for key in KEYS} for side in ("plain", "winit")
    }
    with tempfile.TemporaryDirectory(prefix="winit-bench-residual-") as tmp:
        reference = plain(cfg)  # warm-up: first-call costs (the optimizer's imports) out
        trained = winit(cfg, Path(tmp))
        if not same_training(reference["losses"], trained["losses"]):
            raise SystemExit("winit and the plain loop trained differently")
        for repeat in range(args.repeats):
            # the two take turns, each going first every other round
            order = ("plain", "winit") if repeat % 2 == 0 else ("winit", "plain")
            for side in order:
                measured = plain(cfg) if side == "plain" else winit(cfg, Path(tmp))
                for key, seconds in measured["times"].items():
                    runs[side][key].append(seconds)
    med = {side: {k: statistics.median(v) for k, v in t.items()} for side, t in runs.items()}
    result = {
        "model": {
            "depth": DEPTH,
            "width": args.width,
            "branch_depth": args.branch_depth,
            "weighted_layers": len(cfg.model.plan.weighted),
            "method": args.method,
            "branch_scale": args.branch_scale,
        },
        "steps": args.steps,
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "status": trained["status"],
        "initial_loss": trained["losses"][0],
        "final_loss": trained["losses"][-1],
        "seconds": med,
        "ratio": {key: med["winit"][key] / med["plain"][key] for key in KEYS},
        "runs": runs,
        "load_average": list(os.getloadavg()),
    }
    if args.json:
        print(json.dumps(result))
        return
    m = result["model"]
    print(
        f"{DEPTH} residual blocks of width {m['width']} ({m['branch_depth']} layers a branch, "
        f"{m['weighted_layers']} weighted layers), mnist, {args.method} + branch_scale "
        f"{args.branch_scale}, {args.steps} steps, {result['torch_threads']} torch threads; "
        f"loss {result['initial_loss']:.3f} -> {result['final_loss']:.3f} ({result['status']}); "
        f"median of {args.repeats}; load average {result['load_average']}\n"
    )
    print("| measure | plain s | winit s | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for key, label in KEYS.items():
        plain_s, winit_s = med["plain"][key], med["winit"][key]
        target = f"{TARGET:.2f}x" if key.startswith("loop") else "-"
        print(f"| {label} | {plain_s:.2f} | {winit_s:.2f} | {winit_s / plain_s:.2f}x | {target} |")


if __name__ == "__main__":
    main()
