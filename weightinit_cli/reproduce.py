"""The classic results of the init literature, reproduced by winit itself.

Each reproduction starts from a config in weightinit_cli/papers/ (configs/papers/ in the
repository), runs winit's own experiments on it, and returns a Finding: the paper's
claim, what winit measured, whether they agree, the numbers, and figures. Nothing
prints here. `fast=True` runs the small version the tests use; the full one is larger
and slower.

- glorot2010: Glorot & Bengio 2010, Understanding the difficulty of training deep
  feedforward neural networks.
- he2015: He, Zhang, Ren & Sun 2015, Delving deep into rectifiers.
- saxe2013: Saxe, McClelland & Ganguli 2014, Exact solutions to the nonlinear dynamics
  of learning in deep linear neural networks.
- hanin2018: Hanin & Rolnick 2018, How to start training: the effect of initialization
  and architecture.
- zero_symmetry: why constant inits never break the symmetry between units.
- schoenholz2017: Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, Deep information
  propagation.
- mishkin2016: Mishkin & Matas 2016, All you need is a good init.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WinitError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .config import Config

PAPERS = Path(__file__).with_name("papers")


@dataclass
class Finding:
    """A reproduction's outcome: claim, measurement, verdict, numbers and figures."""

    name: str
    paper: str
    claim: str
    measured: str
    agree: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Figure] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from .report import json_safe

        return json_safe(
            {
                "name": self.name,
                "paper": self.paper,
                "claim": self.claim,
                "measured": self.measured,
                "agree": self.agree,
                "rows": self.rows,
            }
        )


@dataclass(frozen=True)
class Reproduction:
    name: str
    paper: str
    claim: str
    run: Callable[[Config, bool], Finding]

    @property
    def config_path(self) -> Path:
        return PAPERS / f"{self.name}.yaml"

    def config(self, overrides: list[str] | tuple[str, ...] = ()) -> Config:
        from .config import load_config

        return load_config(self.config_path, list(overrides))


def _with(cfg: Config, *overrides: str) -> Config:
    """The config with `--set`-style overrides applied (and validated again)."""
    from .config import apply_overrides, config_from_data

    return config_from_data(apply_overrides(cfg.model_dump(mode="json"), list(overrides)))


def _finding(repro: Reproduction, measured: str, agree: bool, rows, figures) -> Finding:
    return Finding(repro.name, repro.paper, repro.claim, measured, agree, rows, figures)


# --------------------------------------------------------------------------- glorot2010


def _glorot(cfg: Config, fast: bool) -> Finding:
    from .experiments import run_stats
    from .plots import std_profiles
    from .theory import per_layer_decay

    inits = {
        "standard U(±1/√n)": ("variance_scaling", {"scale": 1 / 3, "distribution": "uniform"}),
        "normalized (xavier_uniform)": ("xavier_uniform", {}),
    }
    rows, profiles = [], {}
    for label, (method, params) in inits.items():
        result = run_stats(cfg, method, params)
        hidden = result.layers[:-1]
        acts = [layer.activation.std for layer in hidden]
        grads = [layer.activation_grad.std for layer in hidden]
        theory_error = max(
            abs(layer.activation.std / layer.predicted_activation_std - 1) for layer in hidden
        )
        gradient_error = _gradient_theory_error(result)
        rows.append(
            {
                "init": label,
                "activation std per layer": per_layer_decay(acts),
                "backprop gradient std per layer (towards the input)": per_layer_decay(grads[::-1]),
                "max theory error": theory_error,
                "max gradient theory error": gradient_error,
            }
        )
        profiles[label] = result.layers
    standard, normalized = rows
    grad = "backprop gradient std per layer (towards the input)"
    agree = (
        standard["activation std per layer"] < 0.85
        and abs(1 - normalized[grad]) < 0.5 * abs(1 - standard[grad])
        and all(row["max theory error"] < 0.15 for row in rows)
        and all(row["max gradient theory error"] < 0.15 for row in rows)
    )
    measured = (
        f"standard: activations x{standard['activation std per layer']:.2f} per layer, "
        f"gradients x{standard['backprop gradient std per layer (towards the input)']:.2f} "
        f"per layer towards the input; normalized: x{normalized['activation std per layer']:.2f}"
        f" and x{normalized['backprop gradient std per layer (towards the input)']:.2f}; "
        f"mean-field within {max(r['max theory error'] for r in rows):.1%} (activations) and "
        f"{max(r['max gradient theory error'] for r in rows):.1%} (gradients) at every layer"
    )
    figures = {"glorot2010.png": std_profiles(profiles, title="Glorot & Bengio 2010")}
    return _finding(REPRODUCTIONS["glorot2010"], measured, agree, rows, figures)


def _gradient_theory_error(result: Any) -> float:
    """Largest relative error of the back-propagated gradient std per layer (relative to the
    output layer's) against the mean-field backward recursion."""
    from .theory import predict_gradient_ratios

    layers, records = result.layers, result.init.layers
    predicted = predict_gradient_ratios(
        [r.fan_out * r.target_std**2 for r in records],
        [layer.activation_fn for layer in layers],
        [layer.predicted_preactivation_std**2 for layer in layers],
    )
    last = layers[-1].activation_grad.std
    return max(
        abs((layer.activation_grad.std / last) / math.sqrt(ratio) - 1)
        for layer, ratio in zip(layers[:-1], predicted[:-1], strict=True)
    )


# --------------------------------------------------------------------------- he2015


def _he(cfg: Config, fast: bool) -> Finding:
    from .experiments import run_compare
    from .plots import loss_curves

    methods = [("xavier_normal", {}), ("he_normal", {})]
    chance = math.log(cfg.model.num_classes)
    # The shallow net gets twice the steps: both inits train there, He sooner.
    depths = {"deep": cfg.model.depth, "shallow": 6}
    steps = {"deep": cfg.train.steps, "shallow": 2 * cfg.train.steps}
    rows, figures, results = [], {}, {}
    for label, depth in depths.items():
        run_cfg = _with(cfg, f"model.depth={depth}", f"train.steps={steps[label]}")
        result = run_compare(run_cfg, methods)
        results[label] = {run.method: run.train for run in result.runs}
        for run in result.runs:
            rows.append(
                {
                    "net": f"{label} ({depth} layers)",
                    "init": run.method,
                    "final loss": run.train.final_loss,
                    "steps to target": run.train.steps_to_target,
                }
            )
        figures[f"he2015_{label}.png"] = loss_curves(
            {m: h for m, h in results[label].items()}, title=f"He et al. 2015: {depth} layers"
        )
    deep, shallow = results["deep"], results["shallow"]
    stalls = deep["xavier_normal"].final_loss > chance - 0.05
    he_trains = deep["he_normal"].final_loss < chance - 0.4
    both = all(h.steps_to_target is not None for h in shallow.values())
    he_faster = (
        both and shallow["he_normal"].steps_to_target < shallow["xavier_normal"].steps_to_target
    )
    measured = (
        f"{depths['deep']} layers: xavier ends at {deep['xavier_normal'].final_loss:.3f} "
        f"(chance {chance:.3f}), he at {deep['he_normal'].final_loss:.3f}; 6 layers: "
        f"target reached at step {shallow['xavier_normal'].steps_to_target} (xavier) and "
        f"{shallow['he_normal'].steps_to_target} (he)"
    )
    return _finding(
        REPRODUCTIONS["he2015"], measured, stalls and he_trains and he_faster, rows, figures
    )


# --------------------------------------------------------------------------- saxe2013


def _saxe(cfg: Config, fast: bool) -> Finding:
    from .experiments import run_compare
    from .plots import steps_against

    depths = [8, 32, 64] if fast else [8, 16, 32, 64]
    methods = [("orthogonal", {}), ("lecun_normal", {})]
    steps: dict[str, list[int | None]] = {m: [] for m, _ in methods}
    rows = []
    for depth in depths:
        result = run_compare(_with(cfg, f"model.depth={depth}"), methods)
        for run in result.runs:
            steps[run.method].append(run.train.steps_to_target)
            rows.append(
                {"depth": depth, "init": run.method, "steps to target": run.train.steps_to_target}
            )
    never = cfg.train.steps * 2  # a run that never reaches the target counts as slower
    orth = [s if s is not None else never for s in steps["orthogonal"]]
    gauss = [s if s is not None else never for s in steps["lecun_normal"]]
    agree = orth[-1] <= 1.25 * orth[0] and gauss[-1] >= 2 * gauss[0]
    measured = (
        f"steps to the target loss at depths {depths}: orthogonal {steps['orthogonal']}, "
        f"scaled Gaussian {steps['lecun_normal']}"
    )
    figure = steps_against(
        depths,
        {
            "orthogonal": steps["orthogonal"],
            "scaled Gaussian (lecun_normal)": steps["lecun_normal"],
        },
        x_label="depth",
        ceiling=cfg.train.steps,
        title="Saxe et al. 2014: deep linear nets",
    )
    return _finding(REPRODUCTIONS["saxe2013"], measured, agree, rows, {"saxe2013.png": figure})


# --------------------------------------------------------------------------- hanin2018


def output_length_spread(
    widths: list[int], seeds: int, input_dim: int, seed: int = 0
) -> tuple[float, float]:
    """(Var of log(|x_L|² / |x_0|²), fraction of dead nets) over random He-initialized ReLU
    nets, for one input. A dead net (output exactly 0) has no log length; it is counted
    apart. The nets are drawn with winit's scratch he_normal and run as one batched matmul
    per layer (nets along the batch dimension)."""
    import numpy as np
    import torch

    from . import scratch

    rng = np.random.default_rng(seed)
    x0 = torch.from_numpy(rng.standard_normal(input_dim, dtype=np.float32))
    x = x0.expand(seeds, input_dim).unsqueeze(2)  # (nets, features, 1)
    fan_in = input_dim
    for width in widths:
        w = torch.from_numpy(scratch.he_normal((seeds * width, fan_in), rng=rng))
        x = torch.relu(torch.bmm(w.view(seeds, width, fan_in), x))
        fan_in = width
    ratio = x.squeeze(2).double().pow(2).sum(1) / x0.double().pow(2).sum()
    alive = ratio > 0
    return float(torch.log(ratio[alive]).var()), float(1 - alive.double().mean())


def _hanin(cfg: Config, fast: bool) -> Finding:
    from .plots import spread_against

    # Pairs with equal Σ1/n but different depth and width: (10, 32) and (40, 128);
    # (40, 32) and (20, 16).
    archs = [(10, 128), (10, 32), (40, 128), (20, 32), (40, 32), (20, 16), (40, 16)]
    if not fast:  # widths of 16 and up: width 8 is outside the asymptotic regime (dead nets)
        archs += [(80, 32), (80, 16), (60, 16)]
    seeds = 300 if fast else 2000
    rows = []
    for depth, width in archs:
        beta = depth / width
        spread, dead = output_length_spread(
            [width] * depth, seeds, cfg.model.input_shape[0], cfg.seed
        )
        rows.append(
            {
                "depth": depth,
                "width": width,
                "sum 1/n": beta,
                "Var log |x_L|²": spread,
                "dead nets": dead,
            }
        )
    rows.sort(key=lambda r: r["sum 1/n"])
    betas = [r["sum 1/n"] for r in rows]
    spreads = [r["Var log |x_L|²"] for r in rows]
    slope = sum(b * s for b, s in zip(betas, spreads, strict=True)) / sum(b * b for b in betas)
    levels: dict[float, list[float]] = {}
    for beta, spread in zip(betas, spreads, strict=True):
        levels.setdefault(beta, []).append(spread)
    means = [sum(v) / len(v) for _, v in sorted(levels.items())]
    monotone = all(a < b for a, b in zip(means, means[1:], strict=False))
    residual = max(abs(s - slope * b) / (slope * b) for b, s in zip(betas, spreads, strict=True))
    # Hanin & Rolnick: Var log |x_L|² ≈ 5 Σ1/n for wide enough layers.
    agree = monotone and residual < 0.35 and 3 < slope < 8
    by_arch = {(r["depth"], r["width"]): r["Var log |x_L|²"] for r in rows}
    measured = (
        f"Var log |x_L|² against Σ1/n: {'monotone' if monotone else 'not monotone'}, "
        f"slope {slope:.2f} through the origin (theory: 5), every architecture within "
        f"{residual:.0%} of "
        f"that line; at equal Σ1/n = 0.31, depth 10 x width 32 gives "
        f"{by_arch[(10, 32)]:.3f} and depth 40 x width 128 gives {by_arch[(40, 128)]:.3f}"
    )
    figure = spread_against(betas, spreads, slope, title="Hanin & Rolnick 2018")
    return _finding(REPRODUCTIONS["hanin2018"], measured, agree, rows, {"hanin2018.png": figure})


# --------------------------------------------------------------------------- zero symmetry


def symmetry_after_training(cfg: Config) -> list[dict[str, Any]]:
    """Per weighted layer of a zero-initialized net: is its weight gradient zero at step 0,
    and are all its rows still identical after cfg.train.steps steps?"""
    import torch

    from .experiments import build_dataset, first_batch, init_model
    from .train import train

    data = build_dataset(cfg)
    model, report = init_model(cfg, "zeros", {})
    x, y = first_batch(data, cfg.train.batch_size, "cpu")
    torch.nn.functional.cross_entropy(model(x), y).backward()
    layers = [(r.name, dict(model.named_modules())[r.name]) for r in report]
    zero_grad = {name: bool((m.weight.grad == 0).all()) for name, m in layers}
    model.zero_grad(set_to_none=True)
    train(model, data, cfg.train, seed=cfg.seed)
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


def _symmetry(cfg: Config, fast: bool) -> Finding:
    rows = []
    summary = []
    agree = True
    for activation in ("relu", "tanh", "sigmoid"):
        layer_rows = symmetry_after_training(_with(cfg, f"model.activation={activation}"))
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
    return _finding(REPRODUCTIONS["zero_symmetry"], "; ".join(summary), agree, rows, {})


# --------------------------------------------------------------------------- schoenholz2017


def _schoenholz(cfg: Config, fast: bool) -> Finding:
    from .critical import criticality
    from .experiments import run_compare
    from .plots import loss_curves

    bias_var = cfg.init.params.get("bias_var", 0.05)
    line = criticality(cfg.model.activation, bias_var).critical_weight_var
    weight_vars = [0.5, line, 5.0] if fast else [0.5, 1.0, line, 2.5, 5.0]
    depths = [cfg.model.depth] if fast else [20, cfg.model.depth, 100]
    chance = math.log(cfg.model.num_classes)
    rows, figures = [], {}
    verdicts = []
    for depth in depths:
        methods = [
            ("variance_scaling", {**cfg.init.params, "scale": w, "bias_var": bias_var})
            for w in weight_vars
        ]
        result = run_compare(_with(cfg, f"model.depth={depth}"), methods)
        histories = {}
        for w, run in zip(weight_vars, result.runs, strict=True):
            state = criticality(cfg.model.activation, bias_var, w)
            trained = run.train.final_loss < chance - 0.4
            predicted = depth < 6 * state.depth_scale_c
            verdicts.append(trained == predicted)
            rows.append(
                {
                    "depth": depth,
                    "σ_w²": w,
                    "phase": state.phase(),
                    "ξ_c": state.depth_scale_c,
                    "6·ξ_c > depth": predicted,
                    "final loss": run.train.final_loss,
                    "trained": trained,
                }
            )
            histories[f"σ_w²={w:.3g} ({state.phase()})"] = run.train
        figures[f"schoenholz2017_depth{depth}.png"] = loss_curves(
            histories, title=f"Schoenholz et al. 2017: tanh, depth {depth}, σ_b²={bias_var}"
        )
    # The 6·ξ_c rule is a boundary, not a sharp law: it must call at least 90% of runs.
    agree = sum(verdicts) >= 0.9 * len(verdicts)
    trained_at = sorted({f"{r['σ_w²']:.3g}" for r in rows if r["trained"]})
    measured = (
        f"critical σ_w² = {line:.3f} (σ_b² = {bias_var}); trained (loss below chance − 0.4) "
        f"at σ_w² {', '.join(trained_at) or 'none'}; the 6·ξ_c depth rule predicted "
        f"{sum(verdicts)} of {len(verdicts)} runs"
    )
    return _finding(REPRODUCTIONS["schoenholz2017"], measured, agree, rows, figures)


# --------------------------------------------------------------------------- mishkin2016


def _mishkin(cfg: Config, fast: bool) -> Finding:
    from .experiments import run_compare
    from .plots import loss_curves, std_profiles

    chance = math.log(cfg.model.num_classes)
    result = run_compare(cfg, [("lsuv", dict(cfg.init.params)), ("orthogonal", {})])
    lsuv, orthogonal = result.runs
    tol = lsuv.stats.init.layers[0].params["tol"]
    variances = [r.lsuv_variance for r in lsuv.stats.init.layers]
    measured_var = [layer.preactivation.std**2 for layer in lsuv.stats.layers]
    unit = all(abs(v - 1) <= tol for v in variances) and all(
        abs(v - 1) <= tol + 1e-6 for v in measured_var
    )
    trains = lsuv.train.final_loss < chance - 0.4
    rows = [
        {
            "layer": record.name,
            "iterations": record.lsuv_iterations,
            "output variance": record.lsuv_variance,
        }
        for record in lsuv.stats.init.layers
    ]
    measured = (
        f"every one of {len(variances)} layers at output variance 1 ± {tol} "
        f"(range {min(variances):.3f}-{max(variances):.3f}, at most "
        f"{max(r['iterations'] for r in rows)} rescalings); final loss "
        f"{lsuv.train.final_loss:.3f} against chance {chance:.3f}, where the orthogonal "
        f"pre-init alone ends at {orthogonal.train.final_loss:.3f}"
    )
    figures = {
        "mishkin2016_profile.png": std_profiles(
            {"lsuv": lsuv.stats.layers, "orthogonal": orthogonal.stats.layers},
            title="Mishkin & Matas 2016: LSUV vs its orthogonal pre-init",
        ),
        "mishkin2016_loss.png": loss_curves(
            {"lsuv": lsuv.train, "orthogonal": orthogonal.train}, title="30-layer ReLU MLP"
        ),
    }
    return _finding(REPRODUCTIONS["mishkin2016"], measured, unit and trains, rows, figures)


REPRODUCTIONS: dict[str, Reproduction] = {
    r.name: r
    for r in (
        Reproduction(
            "glorot2010",
            "Glorot & Bengio 2010",
            "in a 5-layer tanh net of 1000 units, the standard U(±1/√n) init shrinks the "
            "activations layer by layer and the back-propagated gradients towards the input; "
            "the normalized init keeps the gradients' scale far better, and mean-field theory "
            "predicts the activations",
            _glorot,
        ),
        Reproduction(
            "he2015",
            "He et al. 2015",
            "a 30-layer ReLU net with Xavier init stalls at the class-prior loss while He "
            "init trains; in a shallower (6-layer) net both train but He is faster",
            _he,
        ),
        Reproduction(
            "saxe2013",
            "Saxe et al. 2014",
            "in deep linear nets, orthogonal init converges in a number of steps that does "
            "not grow with depth, while a scaled Gaussian init slows down with depth",
            _saxe,
        ),
        Reproduction(
            "hanin2018",
            "Hanin & Rolnick 2018",
            "with He init, the spread of the output length of a ReLU net grows with the sum "
            "of reciprocal widths Σ1/n, not with depth or width alone",
            _hanin,
        ),
        Reproduction(
            "schoenholz2017",
            "Schoenholz et al. 2017",
            "a deep tanh net trains near the order-to-chaos critical line σ_w²* and not far "
            "from it, where the correlation depth scale ξ_c is short: nets train up to about "
            "6·ξ_c layers (the rule must call at least 90% of the runs)",
            _schoenholz,
        ),
        Reproduction(
            "mishkin2016",
            "Mishkin & Matas 2016",
            "LSUV brings every layer of a 30-layer ReLU net to unit output variance, and the "
            "net trains",
            _mishkin,
        ),
        Reproduction(
            "zero_symmetry",
            "Goodfellow et al. 2016 §8.4",
            "zero init never breaks the symmetry: with relu and tanh every weight gradient is "
            "zero; with sigmoid only the head learns at first and every hidden unit stays "
            "identical to its neighbours",
            _symmetry,
        ),
    )
}


def get_reproduction(name: str) -> Reproduction:
    if name not in REPRODUCTIONS:
        import difflib

        close = difflib.get_close_matches(name, list(REPRODUCTIONS), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise WinitError(
            f"unknown reproduction {name!r}; {hint}one of {', '.join(REPRODUCTIONS)}, or all"
        )
    return REPRODUCTIONS[name]


def run_reproduction(name: str, fast: bool = True, overrides: tuple[str, ...] = ()) -> Finding:
    """Run one reproduction on its paper config (with `--set`-style overrides)."""
    repro = get_reproduction(name)
    return repro.run(repro.config(overrides), fast)
