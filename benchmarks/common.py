"""Shared pieces of the benchmarks: the `winit stats` workload, the passes compared, the
machine description. Imported by run.py and probe_memory.py (benchmarks/ is on their path).
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any


def stats_workload(layer: str = "dense", depth: int | None = None, width: int | None = None):
    """The model and batch `winit stats [--layer LAYER] [--depth D] [--width W]` measures:
    built, initialized (the config's method, he_normal) and on the first batch, as winit
    builds them. Returns (model, x, y, plan)."""
    from weightinit_cli.experiments import first_batch, initialized, load_dataset
    from weightinit_cli.loading import load_config

    overrides = [f"model.depth={depth}"] if depth is not None else []
    overrides += [f"model.width={width}"] if width is not None else []
    cfg = load_config(None, overrides, "stats", layer)
    data = load_dataset(cfg)
    model, _ = initialized(cfg, cfg.init.spec, data)
    x, y = first_batch(data, cfg.train.batch_size, "cpu")
    return model, x, y, cfg.model.plan


def plain_pass(model: Any, x: Any, y: Any, plan: Any = None) -> float:
    """What the probe is measured against: one forward and one backward pass, nothing else."""
    import torch

    model.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return loss.item()


def probe_pass(model: Any, x: Any, y: Any, plan: Any) -> float:
    """winit's probe: the same pass, with every per-layer statistic."""
    from weightinit_cli.probe import probe

    return probe(model, x, y, plan).loss


PASSES = {"plain": plain_pass, "probe": probe_pass}


def plain_train_loop(model: Any, data: Any, cfg: Any, seed: int = 0) -> float:
    """Seconds of a plain PyTorch loop doing what winit's train() does for `cfg` (a
    TrainConfig): the same optimizer, batches and steps, and at every log step the
    held-out loss and accuracy and the gradient norm (as benchmarks/baseline_train.py)."""
    import time

    import torch
    from torch import nn

    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_test, y_test = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
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

    model.train()
    nn.functional.cross_entropy(model(x[:batch]), y[:batch]).backward()  # warm, as winit's
    model.zero_grad(set_to_none=True)  # statistics pass at init is
    start = time.perf_counter()
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
    return time.perf_counter() - start


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """Where the numbers were taken."""
    import importlib.metadata as md

    import torch

    versions = {}
    for name in ("torch", "numpy", "typer", "rich", "pydantic", "matplotlib"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "executable": sys.executable,
        "torch_threads": torch.get_num_threads(),
        "versions": versions,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
