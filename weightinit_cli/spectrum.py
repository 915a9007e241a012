"""The input-output Jacobian's spectrum at init: dynamical isometry (Saxe et al. 2014;
Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through
dynamical isometry", NeurIPS; 2018, "The emergence of spectral universality in deep
networks", AISTATS).

For each of a batch of the run's inputs x, J = ∂h/∂x, where h is the last hidden layer's
output (winit's plain dense stacks; J = D_L W_L ... D_1 W_1, D_l = diag φ'(pre-activations),
built layer by layer, so every depth's J comes with it) or the logits (any other network,
by torch.func in eval mode; a winit transformer's J is taken with respect to its
embedding's output, since token ids have no derivative). Per depth, over the k = min(fan)
eigenvalues λ of JᵀJ (the squared singular values): their mean m1 and their variance over
m1², σ²/m1² (averaged over the inputs); at the output every singular value.

Theory (plain dense stacks). With q_l the mean-field pre-activation variance of layer l
(meanfield.predict_layers, from the inputs' E[x²]), μ_k,l = E[φ'(√q_l z)^(2k)] and
χ_l = σ_w,l² μ_1,l:
- m1 = (n_l / k) Π χ_l: each layer multiplies a column's squared norm by (n_l/n_{l-1}) χ_l
  (Pennington et al. 2017, eq. 7 at q* when the q_l sit there);
- for square layers of i.i.d. (Gaussian) or orthogonal (Haar) weights, free probability:
  σ²/m1² = Σ_l (μ_2,l / μ_1,l² − 1 − s_1), s_1 = −1 for i.i.d. weights (WWᵀ is Wishart),
  0 for orthogonal (WWᵀ = σ_w² I): Pennington et al. 2017, eq. 16, which holds layer by
  layer because the variance of a product of free elements of mean 1 is the sum of their
  variances. A linear orthogonal net is exactly isometric (0); a linear Gaussian one has L.
Elsewhere (rectangular layers, other weights, other networks) the table says n/a.

The density, where a closed form exists: a linear stack of square layers, n wide as its
input, has J = W_L ... W_1 (its biases do not enter J), c = Π σ_w,l². With i.i.d. centred
weights the eigenvalues of JJᵀ/c follow the Fuss-Catalan law of order L as n → ∞
(Penson & Życzkowski 2011; fuss_catalan.py); with orthogonal ones JJᵀ = c I exactly, so
every singular value is √c. Not for lsuv: it rescales each orthogonal layer by a factor
the data chose, and winit records only the std of the weights it left (their mean
removed), so c would be an estimate, not a prediction. Not for non-centred draws (normal
with a mean, uniform on [0, 1]): their mean adds a spike the law does not have.
Elsewhere: no density (None).

Nothing here prints; torch is imported where it is used.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import WinitError

if TYPE_CHECKING:
    from .apply import InitReport
    from .config import Config
    from .data import Dataset

DEFAULT_INPUTS = 64
MAX_INPUTS = 4096
MAX_JACOBIAN_VALUES = 200_000_000  # inputs x outputs x input features kept at once (0.8 GB)
# s_1 of the weights' S-transform (Pennington et al. 2017, eq. 16): i.i.d. entries give a
# Wishart WWᵀ (s_1 = -1), Haar orthogonal ones WWᵀ = σ_w² I (s_1 = 0)
IID_METHODS = frozenset({
    "normal", "uniform", "trunc_normal", "xavier_uniform", "xavier_normal", "he_uniform",
    "he_normal", "lecun_uniform", "lecun_normal", "variance_scaling", "torch_default",
})  # fmt: skip
ORTHOGONAL_METHODS = frozenset({"orthogonal", "delta_orthogonal", "lsuv"})


def weight_family(method: str) -> str:
    """iid, orthogonal, or other (no free-probability prediction)."""
    if method in IID_METHODS:
        return "iid"
    return "orthogonal" if method in ORTHOGONAL_METHODS else "other"


@dataclass
class DepthSpectrum:
    """The Jacobian up to one layer: its eigenvalue moments, measured and predicted."""

    layer: str
    depth: int
    mean: float  # m1: the mean eigenvalue of JᵀJ (mean squared singular value)
    variance: float  # σ²/m1²: the eigenvalues' variance over their mean squared
    # the largest and smallest singular values over the inputs (at the output only: the
    # depths before have their moments, from traces)
    max_singular: float | None = None
    min_singular: float | None = None
    mean_theory: float | None = None
    variance_theory: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Density:
    """The predicted law of the singular values σ at the output: σ² = scale · x with x
    Fuss-Catalan of order s ("fuss_catalan"), or σ = √scale exactly ("delta", s None)."""

    kind: str  # "fuss_catalan" | "delta"
    s: int | None
    scale: float  # c = Π σ_w,l²

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "s": self.s, "scale": self.scale}


@dataclass
class SpectrumResult:
    name: str
    method: str
    family: str  # the weights: iid | orthogonal | other
    activation: str
    output: str  # "last hidden layer" | "logits"
    wrt: str  # "input" | "embedding"
    inputs: int
    input_dim: int
    output_dim: int
    depths: list[DepthSpectrum]
    singular_values: list[float] = field(default_factory=list)  # at the output, sorted
    weights: list[Any] = field(default_factory=list)  # weight_spectra.LayerSpectrum per layer
    seconds: float = 0.0
    density: Density | None = None  # the predicted law of singular_values, where one is known

    @property
    def final(self) -> DepthSpectrum:
        return self.depths[-1]

    def to_dict(self) -> dict[str, Any]:
        skipped = ("depths", "weights", "density")
        data = {k: v for k, v in self.__dict__.items() if k not in skipped}
        data["depths"] = [d.to_dict() for d in self.depths]
        data["weights"] = [w.to_dict() for w in self.weights]
        data["density"] = None if self.density is None else self.density.to_dict()
        return data


def _moments(jacobian: Any) -> tuple[float, float]:
    """(m1, σ²/m1²) of a batch of Jacobians [B, out, in] over the k = min eigenvalues of
    each JᵀJ, m1 and m2 averaged over the batch (traces: no decomposition per depth)."""
    import torch

    b, rows, cols = jacobian.shape
    flipped = jacobian.transpose(1, 2)
    gram = jacobian @ flipped if rows <= cols else flipped @ jacobian
    k = min(rows, cols)
    m1 = float(torch.diagonal(gram, dim1=1, dim2=2).sum(dim=1).mean()) / k
    m2 = float(gram.square().sum(dim=(1, 2)).mean()) / k
    variance = m2 / (m1 * m1) - 1.0 if m1 > 0 else math.nan
    return m1, variance


def _plain_dense(cfg: Config) -> bool:
    m = cfg.model
    return m.is_stack and m.type == "dense" and m.block == "plain" and m.norm == "none"


def _stack_jacobians(model: Any, plan: Any, x: Any) -> list[tuple[str, Any]]:
    """(layer name, J [B, n_l, n_0]) after each hidden layer of a plain dense stack, built
    as J_l = D_l W_l J_{l-1}; D_l = φ'(pre-activation) by autograd (the activations are
    elementwise)."""
    import torch
    from torch import nn

    hidden = [layer.name for layer in plan.weighted[:-1]]
    modules = list(model.named_children())
    b, n0 = x.shape
    jac = torch.eye(n0, dtype=x.dtype).expand(b, n0, n0)
    out: list[tuple[str, Any]] = []
    h, current = x, None
    for i, (name, module) in enumerate(modules):
        if name == plan.weighted[-1].name:
            break
        if isinstance(module, nn.Linear):
            h = module(h)
            jac = torch.matmul(module.weight, jac)
            current = name
        else:
            pre = h.detach().requires_grad_(True)
            with torch.enable_grad():
                post = module(pre)
                (slope,) = torch.autograd.grad(post.sum(), pre)
            h = post.detach()
            jac = slope[:, :, None] * jac
        nxt = modules[i + 1][1] if i + 1 < len(modules) else None
        if current in hidden and (nxt is None or isinstance(nxt, nn.Linear)):
            out.append((current, jac))
    return out


def _general_jacobian(model: Any, x: Any, embedded: bool) -> Any:
    """J [B, outputs, inputs] of the logits by torch.func (eval mode: one input at a time);
    `embedded`: with respect to the model's first module's output (a transformer's
    embedding), the rest of the model run on it."""
    import torch
    from torch.func import jacrev, vmap

    head = model[1:] if embedded else model
    if embedded:
        with torch.no_grad():
            x = model[0](x)
    shape = x.shape[1:]

    def f(one: Any) -> Any:
        return head(one.reshape(1, *shape)).reshape(-1)

    import warnings

    with warnings.catch_warnings():
        # torch.func has no batching rule for CPU flash attention: slower, still exact
        warnings.filterwarnings("ignore", message="There is a performance drop")
        jac = vmap(jacrev(f))(x.reshape(len(x), -1))
    return jac.reshape(len(x), jac.shape[1], -1)


def _weight_vars(records: list[Any]) -> list[float]:
    """σ_w,l² = fan_in × the weights' variance, per layer."""
    return [r.fan_in * r.target_std**2 for r in records]


def _centred(spec: Any) -> bool:
    """Whether an i.i.d. method draws weights of mean 0 (normal, uniform and trunc_normal
    take a mean or bounds; the others are centred by construction)."""
    p = spec.params
    if spec.method == "normal":
        return p["mean"] == 0
    if spec.method == "uniform":
        return p["a"] == -p["b"]
    if spec.method == "trunc_normal":
        return p["mean"] == 0 and p["a"] == -p["b"]
    return True


def _density(cfg: Config, report: InitReport, n0: int) -> Density | None:
    """The closed-form law of the output's singular values of a plain dense stack, where
    one exists (see the module docstring)."""
    from .activations import get_activation

    weighted, records = cfg.model.plan.weighted[:-1], report.layers[:-1]
    if not all(get_activation(p.activation).name == "linear" for p in weighted):
        return None
    if not all(r.fan_in == r.fan_out == n0 for r in records):
        return None
    families = {weight_family(r.method) for r in records}
    scale = math.prod(_weight_vars(records))
    if not (math.isfinite(scale) and scale > 0):
        return None
    if families == {"iid"} and all(_centred(r.spec) for r in records):
        return Density("fuss_catalan", len(records), scale)
    if families == {"orthogonal"} and all(r.method != "lsuv" for r in records):
        return Density("delta", None, scale)
    return None


def _theory(
    cfg: Config, report: InitReport, x: Any, depths: list[tuple[str, Any]]
) -> list[tuple[float | None, float | None]]:
    """(m1, σ²/m1²) predicted at each recorded depth of a plain dense stack."""
    from .activations import expect, get_activation, sloped
    from .meanfield import predict_layers

    plan = cfg.model.plan
    weighted, records = plan.weighted[:-1], report.layers[:-1]
    weight_vars = _weight_vars(records)
    predictions = predict_layers(
        weight_vars,
        [r.bias_var for r in records],
        [p.activation for p in weighted],
        [p.negative_slope for p in weighted],
        [True] * len(weighted),
        [float(x.square().mean())] * len(weighted),
    )
    family = weight_family(cfg.init.method)
    s1 = {"iid": -1.0, "orthogonal": 0.0}.get(family)
    n0 = x.shape[1]
    square = all(r.fan_in == r.fan_out == n0 for r in records)
    out: list[tuple[float | None, float | None]] = []
    log_chi, spread = 0.0, 0.0
    by_name = {p.name: i for i, p in enumerate(weighted)}
    done = 0
    for name, _ in depths:
        upto = by_name[name] + 1
        for i in range(done, upto):
            act = get_activation(weighted[i].activation)
            dphi = sloped(act.derivative, weighted[i].negative_slope)
            q = predictions[i].q
            mu1 = expect(dphi, q)[1]
            mu2 = expect(lambda h, d=dphi: d(h) ** 2, q)[1]
            chi = weight_vars[i] * mu1
            log_chi += math.log(chi) if chi > 0 else -math.inf
            spread += (mu2 / (mu1 * mu1) - 1.0 - s1) if s1 is not None and mu1 > 0 else math.nan
        done = upto
        n_l = records[upto - 1].fan_out
        mean = (n_l / min(n_l, n0)) * math.exp(log_chi) if log_chi > -math.inf else 0.0
        variance = spread if square and s1 is not None and math.isfinite(spread) else None
        out.append((mean, variance))
    return out


def _bounded(inputs: int, rows: int, columns: int, what: str) -> None:
    """Refuse a batch of Jacobians too big to hold, before any is built."""
    if inputs * rows * columns > MAX_JACOBIAN_VALUES:
        raise WinitError(
            f"--inputs: {inputs} inputs x {rows:,} {what} x {columns:,} input values is over "
            f"{MAX_JACOBIAN_VALUES:,} Jacobian entries; ask for fewer inputs or a smaller network"
        )


def check_inputs(count: int) -> int:
    if not 1 <= count <= MAX_INPUTS:
        raise WinitError(f"--inputs: between 1 and {MAX_INPUTS:,}; got {count}")
    return count


def spectrum(cfg: Config, data: Dataset, inputs: int = DEFAULT_INPUTS) -> SpectrumResult:
    """`winit spectrum`: the config's network at init, the Jacobian at `inputs` of the
    run's training inputs (fewer where the data has fewer)."""
    import torch

    from .datasets import TOKEN_VOCABULARY
    from .experiments import first_batch, initialized
    from .weight_spectra import weight_spectra

    check_inputs(inputs)
    plan = cfg.model.plan
    embedded = cfg.data.name in TOKEN_VOCABULARY
    if embedded and (cfg.model.module is not None or plan.layers[0].kind != "embedding"):
        raise WinitError(
            f"data.name: {cfg.data.name} gives token ids, which have no derivative; winit "
            "takes a network's Jacobian at its embedding's output (model.type: transformer, or "
            "an embedding first in model.layers)"
        )
    stacked = _plain_dense(cfg) and len(plan.weighted) > 1
    # the Jacobians' size, bounded before any weight is drawn
    count = min(inputs, data.n_train)
    n_in = int(math.prod(plan.layers[0].out_shape if embedded else cfg.model.input_shape))
    if stacked:
        _bounded(count, max(layer.fans[1] for layer in plan.weighted[:-1]), n_in, "units")
    else:
        _bounded(count, int(plan.outputs), n_in, "outputs")
    started = time.perf_counter()
    model, report = initialized(cfg, cfg.init.spec, data)
    x, _ = first_batch(data, inputs, "cpu")
    model.eval()
    with torch.no_grad():
        if stacked:
            jacobians = _stack_jacobians(model, plan, x.to(torch.float32))
        else:
            jacobians = [(plan.weighted[-1].name, _general_jacobian(model, x, embedded))]
    theory = _theory(cfg, report, x, jacobians) if stacked else [(None, None)] * len(jacobians)
    depths = []
    for depth, ((name, jac), (mean_t, var_t)) in enumerate(zip(jacobians, theory, strict=True)):
        m1, variance = _moments(jac)
        depths.append(DepthSpectrum(name, depth + 1, m1, variance, None, None, mean_t, var_t))
    final = jacobians[-1][1]
    values = torch.linalg.svdvals(final).reshape(-1)
    depths[-1].min_singular, depths[-1].max_singular = float(values.min()), float(values.max())
    return SpectrumResult(
        name=cfg.name or "default",
        method=cfg.init.method,
        family=weight_family(cfg.init.method),
        activation=str(cfg.model.activation) if cfg.model.module is None else "module",
        output="last hidden layer" if stacked else "logits",
        wrt="embedding" if embedded else "input",
        inputs=len(x),
        input_dim=final.shape[2],
        output_dim=final.shape[1],
        depths=depths,
        singular_values=sorted(float(v) for v in values),
        weights=weight_spectra(model, plan),
        seconds=time.perf_counter() - started,
        density=_density(cfg, report, x.shape[1]) if stacked else None,
    )


__all__ = [
    "DEFAULT_INPUTS",
    "Density",
    "DepthSpectrum",
    "SpectrumResult",
    "check_inputs",
    "spectrum",
    "weight_family",
]
