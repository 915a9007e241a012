"""The coordinate check (Yang et al. 2021, "Tensor Programs V", and microsoft/mup's
`coord_check.py`): how the size of each module's output moves with width in the first
few optimizer steps.

For each width of a ladder and each seed, the config's network is built and initialized
exactly as a run builds it (`experiments.initialized`, then `train.make_optimizer`), and
trained on one fixed batch (mup's `fix_data=True`). At step t (1-based) the forward pass
before the t-th update records each planned module's output statistic (default `l1`,
mean |x|, as mup's `_record_coords`); t=1 is the network at init. Sizes are averaged
over the seeds.

The verdict is mup's own test rule (`mup/test`): a module passes when, between the two
widest widths, the ratio size(wide) / size(narrow) stays within [1/1.2, 1.2] at every
step (both exactly 0 counts as stable: a zero readout's output at t=1). The slope of
log size against log width over the whole ladder is reported beside it. The check passes
when every module does. Under SP with Adam the hidden layers' and the readout's outputs
grow with width after the first update (fail); under µP they stay put (pass).

Nothing here prints; torch is imported where it is used.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import WinitError

if TYPE_CHECKING:
    from .config import Config
    from .data import Dataset

DEFAULT_WIDTHS = (64, 128, 256, 512, 1024, 2048)
DEFAULT_STEPS = 4
DEFAULT_SEEDS = 3
MAX_WIDTHS = 16  # a ladder of 2^4 ... 2^19 fits
MAX_STEPS = 1000
MAX_SEEDS = 100
RATIO_BOUND = 1.2  # mup's tests: 1/1.2 < size(wide) / size(narrow) < 1.2
STATISTICS = ("l1", "l2", "std")  # mup's FDICT names: mean |x|, root mean square, std


@dataclass
class ModuleCoords:
    """One module's output size across the ladder, averaged over seeds, and its verdict."""

    name: str
    kind: str  # the plan's layer kind: dense, activation, residual, ...
    sizes: list[list[float]]  # [step][width]
    slopes: list[float | None]  # per step: d log(size) / d log(width); None: a size <= 0
    ratios: list[float | None]  # per step: size at the widest width / at the next widest
    stable: list[bool]  # per step: the ratio within the bound
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CoordCheckResult:
    name: str
    parametrization: str
    method: str
    optimizer: str
    lr: float
    statistic: str
    widths: list[int]
    steps: int
    seeds: list[int]
    modules: list[ModuleCoords]
    seconds: float = 0.0  # building, initializing and training every width and seed
    ratio_bound: float = RATIO_BOUND
    failed: list[str] = field(default_factory=list)  # the modules that did not pass

    @property
    def passed(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """The public JSON form (`winit coordcheck --json`, summary.json)."""
        return {
            "name": self.name,
            "parametrization": self.parametrization,
            "method": self.method,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "statistic": self.statistic,
            "widths": list(self.widths),
            "steps": self.steps,
            "seeds": list(self.seeds),
            "ratio_bound": self.ratio_bound,
            "passed": self.passed,
            "failed": list(self.failed),
            "seconds": round(self.seconds, 4),
            "modules": [m.to_dict() for m in self.modules],
        }

    def rows(self) -> list[dict[str, Any]]:
        """coords.csv: a row per module, width and step."""
        return [
            {"module": m.name, "kind": m.kind, "width": w, "step": t + 1, self.statistic: size}
            for m in self.modules
            for t, per_width in enumerate(m.sizes)
            for w, size in zip(self.widths, per_width, strict=True)
        ]


def parse_widths(text: str | None, limit: int) -> list[int]:
    """`--widths 64,128,256`: at least two distinct positive integers, at most MAX_WIDTHS,
    none over `limit` (a layer's size limit), in increasing order."""
    if text is None:
        return list(DEFAULT_WIDTHS)
    from .limits import excerpt

    parts = [p.strip() for p in text.split(",")]
    if len(parts) > MAX_WIDTHS:
        raise WinitError(f"--widths: at most {MAX_WIDTHS} widths; got {len(parts)}")
    widths = []
    for part in parts:
        if not part.isascii() or not part.isdigit() or int(part) < 1:
            raise WinitError(
                f"--widths: each width is a positive integer, e.g. 64,128,256; got {excerpt(part)}"
            )
        if int(part) > limit:
            raise WinitError(f"--widths: {part} is over the limit of {limit:,} units")
        widths.append(int(part))
    if len(set(widths)) != len(widths):
        raise WinitError(f"--widths: a width given twice: {excerpt(text)}")
    if len(widths) < 2:
        raise WinitError("--widths: a coordinate check compares at least two widths")
    return sorted(widths)


def width_configs(cfg: Config, widths: Sequence[int], seeds: int) -> dict[int, list[Config]]:
    """The config at each width (model.width, or a module's width argument), once per seed
    (cfg.seed, +1, ...), each validated as a file would be (a width too big for memory is
    refused here, before any work). Under NTK or µP without a model.base_width the
    narrowest width is the base (each width's own would make every multiplier 1)."""
    from .loading import config_data, config_from_data, set_dotted
    from .scaled_width import width_key

    base = config_data(cfg)
    if cfg.init.parametrization != "sp" and cfg.model.base_width is None:
        base["model"] = dict(base["model"], base_width=min(widths))
    key = width_key(cfg.model).split(".")
    out: dict[int, list[Config]] = {}
    for width in widths:
        where = f"--widths {width}"
        data = dict(base, model=dict(base["model"]))
        if "args" in data["model"]:  # set_dotted writes in place: a copy of the module's
            data["model"]["args"] = dict(data["model"]["args"])
        set_dotted(data, key, width, where)
        out[width] = []
        for offset in range(seeds):
            data["seed"] = cfg.seed + offset
            out[width].append(config_from_data(data, where))
    return out


def _statistic(name: str) -> Callable[[Any], Any]:
    """A 0-d tensor of an output (mup's FDICT: l1 mean |x|, l2 sqrt(mean x²), std)."""
    if name == "l1":
        return lambda x: x.abs().mean()
    if name == "l2":
        return lambda x: x.square().mean().sqrt()
    return lambda x: x.std()


def record(
    cfg: Config, data: Dataset, device: str, steps: int, statistic: str = "l1"
) -> dict[str, list[float]]:
    """One network's coordinates: per planned module (by name) the statistic of its output
    at each of `steps` forward passes on the first batch, an update after each."""
    import torch
    from torch import nn

    from .experiments import first_batch, initialized
    from .train import make_optimizer

    model, _ = initialized(cfg, cfg.init.spec, data)
    model.to(device).train()
    optimizer = make_optimizer(model, cfg.train)
    x, y = first_batch(data, cfg.train.batch_size, device)
    stat = _statistic(statistic)
    modules = dict(model.named_modules())
    records: dict[str, list[Any]] = {}
    handles = []

    def hook(name: str) -> Callable[..., None]:
        def measure(module: Any, inputs: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor):  # a module's tuple output is not a coordinate
                records.setdefault(name, []).append(stat(output.detach().float()))

        return measure

    for layer in cfg.model.plan.all_layers:
        if layer.name in modules:
            handles.append(modules[layer.name].register_forward_hook(hook(layer.name)))
    try:
        for t in range(steps):
            loss = nn.functional.cross_entropy(model(x), y)
            if t + 1 == steps:
                break  # the last update would change nothing that is recorded
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        for handle in handles:
            handle.remove()
    names = list(records)
    if not names:
        return {}
    # one transfer from the device for all the numbers
    values = torch.stack([torch.stack(records[n]) for n in names]).tolist()
    return dict(zip(names, values, strict=True))


def slope(widths: Sequence[int], sizes: Sequence[float]) -> float | None:
    """Least-squares slope of log size against log width; None where a size is not > 0."""
    if any(not (math.isfinite(s) and s > 0) for s in sizes):
        return None
    xs = [math.log(w) for w in widths]
    ys = [math.log(s) for s in sizes]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def ratio(narrow: float, wide: float) -> float | None:
    """size(wide) / size(narrow); 1 when both are exactly 0; None when only narrow is."""
    if narrow == 0.0:
        return 1.0 if wide == 0.0 else None
    return wide / narrow


def stable(r: float | None) -> bool:
    return r is not None and math.isfinite(r) and 1 / RATIO_BOUND <= r <= RATIO_BOUND


def coordcheck(
    cfg: Config,
    data: Dataset,
    device: str,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    steps: int = DEFAULT_STEPS,
    seeds: int = DEFAULT_SEEDS,
    statistic: str = "l1",
    on_network: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
) -> CoordCheckResult:
    """`winit coordcheck`: the config's network at each width, `seeds` times, `steps`
    steps each; `on_network(width, seed)` is told as each one finishes.

    The networks run as tasks on `jobs` forked workers (None: one per core, see
    `default_coord_jobs`), each on one torch thread; jobs=1 runs them here, also on one
    thread. The widest are handed out first (they take most of the time, so none is left
    to run alone at the end), and the coordinates are summed in ladder order, so the
    numbers do not depend on `jobs` or on which worker finished first.
    """
    from .parallel import run_tasks

    if statistic not in STATISTICS:
        raise WinitError(f"--stat: one of {', '.join(STATISTICS)}; got {statistic}")
    if device != "cpu":
        jobs = 1  # one accelerator: the networks queue for it anyway, and CUDA does not fork
    widths = sorted(widths)
    configs = width_configs(cfg, widths, seeds)
    # (width index, seed index), widest first; the dataset and configs reach the forked
    # workers copy-on-write, and each task sends back only its floats
    networks = [(i, k) for i in reversed(range(len(widths))) for k in range(seeds)]
    jobs = default_coord_jobs(len(networks)) if jobs is None else jobs

    def task(index: int, log: Any, stop: Any) -> dict[str, list[float]]:
        i, k = networks[index]
        return record(configs[widths[i]][k], data, device, steps, statistic)

    def done(index: int, result: Any) -> None:
        i, k = networks[index]
        if on_network is not None:
            on_network(widths[i], configs[widths[i]][k].seed)

    started = time.perf_counter()
    records = run_tasks(task, len(networks), jobs, on_done=done)
    by_network = dict(zip(networks, records, strict=True))
    # sums[module][step][width index], over the seeds, added in ladder order
    sums: dict[str, list[list[float]]] = {}
    kinds = {layer.name: layer.kind for layer in cfg.model.plan.all_layers}
    for i in range(len(widths)):
        for k in range(seeds):
            for name, values in by_network[i, k].items():
                per_step = sums.setdefault(name, [[0.0] * len(widths) for _ in range(steps)])
                for t, value in enumerate(values):
                    per_step[t][i] += value
    modules = []
    for name, per_step in sums.items():
        sizes = [[s / seeds for s in row] for row in per_step]
        ratios = [ratio(row[-2], row[-1]) for row in sizes]
        modules.append(
            ModuleCoords(
                name=name,
                kind=kinds.get(name, "module"),
                sizes=sizes,
                slopes=[slope(widths, row) for row in sizes],
                ratios=ratios,
                stable=[stable(r) for r in ratios],
                passed=all(stable(r) for r in ratios),
            )
        )
    return CoordCheckResult(
        name=cfg.name or "default",
        parametrization=str(getattr(cfg.init, "parametrization", "sp")),
        method=cfg.init.method,
        optimizer=cfg.train.optimizer,
        lr=cfg.train.lr,
        statistic=statistic,
        widths=list(widths),
        steps=steps,
        seeds=[c.seed for c in configs[widths[0]]],
        modules=modules,
        seconds=time.perf_counter() - started,
        failed=[m.name for m in modules if not m.passed],
    )


def default_coord_jobs(networks: int) -> int:
    """One worker per core (`parallel.default_jobs`, at most one per core), or none on one
    core. A ladder is many short networks handed out widest first, so workers that share
    cores would balance nothing and each pay their own start (about 1 s in its first
    torch.optim optimizer, benchmarks/README.md): the default ladder took 5.5-7.8 s on 8
    workers against 1.7 s on 2, on 2 cores."""
    from .parallel import default_jobs, usable_cores

    return min(default_jobs(networks), usable_cores())
