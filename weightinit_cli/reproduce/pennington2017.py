"""Pennington, Schoenholz & Ganguli 2017, Resurrecting the sigmoid in deep learning through
dynamical isometry (NeurIPS): on tanh's critical line at small q*, orthogonal weights keep
the input-output Jacobian's singular values concentrated as depth grows, while Gaussian
weights spread them (σ²/m1² of JJᵀ grows as L, eq. 16: L(μ2/μ1² − 1 − s1), s1 = −1); ReLU
cannot be isometric even with orthogonal weights (μ2/μ1² = 2: σ²/m1² = L); and the
isometric net trains faster.

winit's `spectrum` measures 256-wide stacks fed 256 Gaussian features at σ_w² = 1, σ_b = 0
(tanh's critical point with q* -> 0; ReLU at σ_w² = 2), every depth of one deep stack at
once, beside the free-probability prediction; then the config's 100-layer tanh net trains on
MNIST under orthogonal and Gaussian (lecun_normal) weights, by SGD with momentum.

Agree when: orthogonal tanh's σ²/m1² stays under 2 at every depth, Gaussian's exceeds
0.7·L at the deepest and is at least 10x orthogonal's there, ReLU orthogonal's exceeds
0.7·L, the measured σ²/m1² is within 25% of theory at depths 1, L/8, L/4, L/2 and L (one
draw of each net: a Gaussian one's wanders by up to 30% at a few depths between), and
orthogonal reaches the target loss while Gaussian does not, or does later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..plots import Chart
from .finding import Finding, Reproduction, compare_at, with_overrides

if TYPE_CHECKING:
    from ..config import Config
    from ..spectrum import SpectrumResult

WIDTH = 256
INPUTS = 32
ARMS = {  # name: (activation, method, gain)
    "tanh orthogonal": ("tanh", "orthogonal", 1.0),
    "tanh Gaussian": ("tanh", "lecun_normal", 1.0),
    "relu orthogonal": ("relu", "orthogonal", 2**0.5),
}
METHODS = [("orthogonal", {}), ("lecun_normal", {})]


def spectra(cfg: Config, depth: int) -> dict[str, SpectrumResult]:
    from ..experiments import load_dataset
    from ..spectrum import spectrum

    out = {}
    for name, (activation, method, gain) in ARMS.items():
        arm = with_overrides(
            cfg, f"model.depth={depth}", f"model.width={WIDTH}", f"model.input_shape=[{WIDTH}]",
            f"model.activation={activation}", f"init.method={method}", f"init.gain={gain}",
            "data.name=gaussian", "data.samples=256", "model.num_classes=3",
        )  # fmt: skip
        out[name] = spectrum(arm, load_dataset(arm), INPUTS)
    return out


def _steps(reached: int | None) -> str:
    return "never" if reached is None else str(reached)


def run(cfg: Config, fast: bool) -> Finding:
    from ..experiments import load_dataset

    depth = 64 if fast else 128
    results = spectra(cfg, depth)
    rows: list[dict[str, Any]] = []
    shown = (1, depth // 8, depth // 4, depth // 2, depth)
    for name, result in results.items():
        for d in result.depths:
            if d.depth in shown:
                rows.append({"arm": name, "depth": d.depth, "σ²/m1²": d.variance,
                             "theory": d.variance_theory, "mean λ": d.mean,
                             "steps to target": ""})  # fmt: skip
    orth, gauss, relu = (results[n].depths for n in ARMS)
    within = all(
        abs(d.variance - d.variance_theory) <= 0.25 * max(d.variance_theory, 0.2)
        for arm in (orth, gauss, relu) for d in arm if d.depth in shown
    )  # fmt: skip
    spectra_agree = (
        max(d.variance for d in orth) < 2.0
        and gauss[-1].variance > 0.7 * depth
        and gauss[-1].variance >= 10 * orth[-1].variance
        and relu[-1].variance > 0.7 * depth
        and within
    )
    data = load_dataset(cfg)
    steps = {r.method: r.train.steps_to_target for r in compare_at(cfg, METHODS, data).runs}
    for method, reached in steps.items():
        rows.append({"arm": f"train {method}", "depth": cfg.model.depth, "σ²/m1²": "",
                     "theory": "", "mean λ": "", "steps to target": reached})  # fmt: skip
    trains = steps["orthogonal"] is not None and (
        steps["lecun_normal"] is None or steps["orthogonal"] < steps["lecun_normal"]
    )
    measured = (
        f"σ²/m1² of JJᵀ at depth {depth} (width {WIDTH}): tanh orthogonal "
        f"{orth[-1].variance:.3g} (theory {orth[-1].variance_theory:.3g}, at most "
        f"{max(d.variance for d in orth):.3g} at any depth), tanh Gaussian "
        f"{gauss[-1].variance:.3g} (theory {gauss[-1].variance_theory:.3g}), ReLU orthogonal "
        f"{relu[-1].variance:.3g} (theory {relu[-1].variance_theory:.3g}); steps to loss "
        f"{cfg.train.target_loss:g} on {cfg.data.name}, depth {cfg.model.depth}: orthogonal "
        f"{_steps(steps['orthogonal'])}, Gaussian {_steps(steps['lecun_normal'])} (of "
        f"{cfg.train.steps})"
    )
    charts = {
        f"pennington2017_{name.replace(' ', '_').lower()}.png": Chart(
            "spectrum_figure", {"result": result}
        )
        for name, result in results.items()
    }
    return REPRODUCTION.finding(measured, spectra_agree and trains, rows, charts)


REPRODUCTION = Reproduction(
    "pennington2017",
    "Pennington et al. 2017",
    "on tanh's critical line at small q*, orthogonal weights keep the input-output "
    "Jacobian near isometry as depth grows while Gaussian weights' eigenvalue variance grows "
    "with depth; ReLU does not reach isometry even with orthogonal weights; and the "
    "orthogonal tanh net reaches the target loss in fewer steps than the Gaussian one",
    run,
)
