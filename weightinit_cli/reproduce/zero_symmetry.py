"""Why constant inits never break the symmetry between units (Goodfellow, Bengio &
Courville 2016, Deep Learning, §8.4): with relu and tanh every weight gradient of a
zero-initialized net is zero; with sigmoid only the head learns at first and every hidden
unit stays identical to its neighbours."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .finding import Finding, Reproduction, with_overrides

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset


def symmetry_after_training(cfg: Config, data: Dataset) -> list[dict[str, Any]]:
    """Per weighted layer of a zero-initialized net: is its weight gradient zero at step 0,
    and are all its rows still identical after cfg.train.steps steps?"""
    import torch

    from ..experiments import first_batch, initialized
    from ..train import train

    model, report = initialized(cfg, cfg.init.spec_for("zeros", {}), data)
    x, y = first_batch(data, cfg.train.batch_size, "cpu")
    torch.nn.functional.cross_entropy(model(x), y).backward()
    modules = dict(model.named_modules())
    layers = [(r.name, modules[r.name]) for r in report]
    zero_grad = {name: bool((m.weight.grad == 0).all()) for name, m in layers}
    model.zero_grad(set_to_none=True)
    train(model, data, cfg.train, cfg.model.plan, seed=cfg.seed)
    rows = []
    for name, module in layers:
        w = module.weight.detach().reshape(module.weight.shape[0], -1)
        rows.append(
            {
                "layer": name,
                "grad zero at step 0": zero_grad[name],
                "rows identical after training": bool((w == w[:1]).all()),
                "weights still zero": bool((w == 0).all()),
            }
        )
    return rows


def run(cfg: Config, fast: bool) -> Finding:
    from ..experiments import load_dataset

    data = load_dataset(cfg)  # the activation changes the net, not the data
    rows = []
    summary = []
    agree = True
    for activation in ("relu", "tanh", "sigmoid"):
        run_cfg = with_overrides(cfg, f"model.activation={activation}")
        layer_rows = symmetry_after_training(run_cfg, data)
        hidden, head = layer_rows[:-1], layer_rows[-1]
        for row in layer_rows:
            rows.append({"activation": activation, **row})
        if activation in ("relu", "tanh"):
            # φ(0) = 0: every hidden output is 0, so no weight gradient reaches anything.
            expected = all(r["grad zero at step 0"] and r["weights still zero"] for r in layer_rows)
            summary.append(f"{activation}: every weight gradient is 0 and stays 0")
        else:
            # σ(0) = 1/2: the head learns from constant features; hidden units move together.
            expected = (
                all(r["grad zero at step 0"] for r in hidden)
                and not head["grad zero at step 0"]
                and all(r["rows identical after training"] for r in hidden)
                and not all(r["weights still zero"] for r in hidden)
            )
            summary.append(
                "sigmoid: only the head's gradient is non-zero at step 0; after training the "
                "hidden weights have moved, every row of each layer identical"
            )
        agree = agree and expected
    return REPRODUCTION.finding("; ".join(summary), agree, rows)


REPRODUCTION = Reproduction(
    "zero_symmetry",
    "Goodfellow et al. 2016 §8.4",
    "zero init never breaks the symmetry: with relu and tanh every weight gradient is "
    "zero; with sigmoid only the head learns at first and every hidden unit stays "
    "identical to its neighbours",
    run,
)
