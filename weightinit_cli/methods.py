"""The catalogue of init methods: names, aliases, formulas, parameters, references.

Pure data (no NumPy, no torch), so that `winit methods` starts at once. `resolve_params`
is the one place a method's parameters are checked and defaulted; initspec.InitSpec
holds the result, which both backends (scratch.py, torch_init.py) and theory read.

References
- Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward
  neural networks (AISTATS).
- He, Zhang, Ren & Sun 2015, Delving deep into rectifiers (ICCV).
- LeCun, Bottou, Orr & Mueller 1998, Efficient BackProp.
- Saxe, McClelland & Ganguli 2014, Exact solutions to the nonlinear dynamics of
  learning in deep linear neural networks (ICLR).
- Martens 2010, Deep learning via Hessian-free optimization (ICML).
- Zagoruyko & Komodakis 2017, DiracNets; Le, Jaitly & Hinton 2015, IRNN.
- Zhang, Dauphin & Ma 2019, Fixup initialization: residual learning without
  normalization (ICLR).
- De & Smith 2020, Batch normalization biases residual blocks towards the identity
  function in deep networks (NeurIPS): SkipInit.
- Bachlechner, Majumder, Mao, Cottrell & McAuley 2020, ReZero is all you need: fast
  convergence at large depth (UAI 2021).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import WinitError
from .fans import FAN_MODES, NONLINEARITIES
from .limits import FLOAT32_MAX, excerpt  # beyond FLOAT32_MAX no weight is finite

# Keras and JAX divide by this so that a normal truncated at +-2 sigma keeps the
# requested std: it is the std of a standard normal truncated to [-2, 2].
TRUNCATED_NORMAL_STD_CORRECTION = 0.87962566103423978


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    help: str
    kind: str = "float"  # float | int | str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Method:
    name: str
    formula: str
    best_for: str
    layers: str
    reference: str
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    random: bool = True
    note: str = ""
    summary: str = ""
    data_dependent: bool = False  # needs a batch of the run's data (lsuv)
    # residual schemes: the method whose formula draws the weights, and what each residual
    # block's branch output passes through ("scalar": a learnable α; "fixup": a multiplier
    # and scalar biases; gates.py); they need a network with residual blocks
    draws_as: str = ""
    gate: str = "none"
    param_names: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_names", tuple(p.name for p in self.params))

    @property
    def residual_scheme(self) -> bool:
        """Whether the method is a scheme for residual networks (needs residual blocks)."""
        return bool(self.draws_as)

    @property
    def takes_gain(self) -> bool:
        return "gain" in self.param_names

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("param_names")
        data["params"] = [{k: v for k, v in asdict(p).items() if v != ()} for p in self.params]
        data["aliases"] = list(self.aliases)
        data["takes_gain"] = self.takes_gain
        return data


def _gain(default: float | None = 1.0, help: str = "multiplies the std") -> Param:
    return Param("gain", default, help)


_MODE = Param("mode", "fan_in", "which fan scales the variance", "str", ("fan_in", "fan_out"))
_NONLINEARITY = Param(
    "nonlinearity",
    "leaky_relu",
    "the activation after the layer; with `a` it sets the gain (torch's default)",
    "str",
    NONLINEARITIES,
)
_SLOPE = Param("a", 0.0, "negative slope of the leaky_relu the gain is computed for")
_HE_GAIN = _gain(None, "overrides the gain; default calculate_gain(nonlinearity, a) = sqrt(2)")

# SkipInit's and ReZero's: he_normal's, and the gate's start
_GATED = (
    _MODE,
    _NONLINEARITY,
    _SLOPE,
    _HE_GAIN,
    Param("alpha", 0.0, "α at init: 0 makes every block the identity"),
)

_TRUNC_NOTE = (
    "trunc_normal follows torch: cutoffs a and b are absolute values and the std is not "
    "corrected, so the sample's std is below `std` (0.88x for the default [-2, 2]). "
    "variance_scaling(distribution=truncated_normal) corrects like Keras and JAX: it "
    f"samples with std/{TRUNCATED_NORMAL_STD_CORRECTION} cut at 2 of those stds, so the "
    "result has exactly the target std."
)

_CATALOGUE: tuple[Method, ...] = (
    Method(
        "zeros",
        "W = 0",
        "biases only",
        "dense, conv",
        "baseline",
        aliases=("zero",),
        random=False,
        summary="all weights zero: every unit identical, symmetry never broken",
    ),
    Method(
        "ones",
        "W = 1",
        "nothing (baseline)",
        "dense, conv",
        "baseline",
        random=False,
        summary="all weights one: identical units and exploding sums",
    ),
    Method(
        "constant",
        "W = value",
        "biases",
        "dense, conv",
        "baseline",
        params=(Param("value", 0.0, "the constant"),),
        random=False,
        summary="all weights one value",
    ),
    Method(
        "normal",
        "N(mean, std²)",
        "shallow nets",
        "dense, conv",
        "baseline",
        params=(Param("mean", 0.0, "mean"), Param("std", 1.0, "standard deviation")),
        aliases=("random_normal",),
        summary="Gaussian with a fixed std; the default std=1 explodes deep nets",
    ),
    Method(
        "uniform",
        "U(a, b)",
        "shallow nets",
        "dense, conv",
        "baseline",
        params=(Param("a", 0.0, "lower bound"), Param("b", 1.0, "upper bound")),
        aliases=("random_uniform",),
        summary="uniform on a fixed interval, blind to the fans",
    ),
    Method(
        "trunc_normal",
        "N(mean, std²) cut to [a, b]",
        "transformers (std 0.02)",
        "dense, conv",
        "torch.nn.init",
        params=(
            Param("mean", 0.0, "mean of the untruncated normal"),
            Param("std", 1.0, "std of the untruncated normal"),
            Param("a", -2.0, "lower cutoff (absolute value)"),
            Param("b", 2.0, "upper cutoff (absolute value)"),
        ),
        note=_TRUNC_NOTE,
        summary="truncated Gaussian, torch semantics (ViT/timm use std=0.02)",
    ),
    Method(
        "xavier_uniform",
        "U(±gain·√(6/(fan_in+fan_out)))",
        "tanh, sigmoid, linear",
        "dense, conv",
        "Glorot & Bengio 2010",
        params=(_gain(),),
        aliases=("xavier", "glorot", "glorot_uniform"),
        summary="Glorot: keeps variance forward and backward (uniform)",
    ),
    Method(
        "xavier_normal",
        "N(0, gain²·2/(fan_in+fan_out))",
        "tanh, sigmoid, linear",
        "dense, conv",
        "Glorot & Bengio 2010",
        params=(_gain(),),
        aliases=("glorot_normal",),
        summary="Glorot: keeps variance forward and backward (normal)",
    ),
    Method(
        "he_uniform",
        "U(±gain·√(3/fan)), gain = √(2/(1+a²))",
        "relu, leaky_relu",
        "dense, conv",
        "He et al. 2015",
        params=(_MODE, _NONLINEARITY, _SLOPE, _HE_GAIN),
        aliases=("kaiming_uniform",),
        summary="He/Kaiming: keeps ReLU signals alive (uniform)",
    ),
    Method(
        "he_normal",
        "N(0, gain²/fan), gain = √(2/(1+a²))",
        "relu, leaky_relu",
        "dense, conv",
        "He et al. 2015",
        params=(_MODE, _NONLINEARITY, _SLOPE, _HE_GAIN),
        aliases=("he", "kaiming", "kaiming_normal"),
        summary="He/Kaiming: keeps ReLU signals alive (normal)",
    ),
    Method(
        "lecun_uniform",
        "U(±gain·√(3/fan_in))",
        "selu, linear",
        "dense, conv",
        "LeCun et al. 1998",
        params=(_gain(),),
        summary="LeCun: unit variance for linear/SELU units (uniform)",
    ),
    Method(
        "lecun_normal",
        "N(0, gain²/fan_in)",
        "selu, linear",
        "dense, conv",
        "LeCun et al. 1998",
        params=(_gain(),),
        note="A plain normal, as torch's kaiming_normal_(nonlinearity='linear'); "
        "Keras' lecun_normal is variance_scaling(1, fan_in, truncated_normal).",
        summary="LeCun: unit variance for linear/SELU units (normal)",
    ),
    Method(
        "variance_scaling",
        "std = gain·√(scale/fan)",
        "any",
        "dense, conv",
        "Keras VarianceScaling",
        params=(
            Param("scale", 1.0, "variance scale (1: lecun, 2: he; with fan_avg, 1: xavier)"),
            Param("mode", "fan_in", "which fan", "str", FAN_MODES),
            Param(
                "distribution",
                "truncated_normal",
                "sampling distribution",
                "str",
                ("normal", "truncated_normal", "uniform"),
            ),
            _gain(),
            Param("bias_var", 0.0, "σ_b²: biases N(0, bias_var) (0: the bias option decides)"),
        ),
        note=_TRUNC_NOTE,
        summary="the general fan-scaled family: lecun, xavier and he are special cases",
    ),
    Method(
        "orthogonal",
        "gain·Q, Q orthogonal (QR of N(0, 1))",
        "linear, tanh",
        "dense, conv",
        "Saxe et al. 2014",
        params=(_gain(),),
        summary="(semi-)orthogonal matrix, flattened to out × rest; "
        "deep linear nets train in depth-independent time",
    ),
    Method(
        "delta_orthogonal",
        "gain·Q at the kernel centre, 0 elsewhere (Q orthogonal out × in)",
        "deep conv nets: dynamical isometry",
        "conv (dense: orthogonal)",
        "Xiao et al. 2018",
        params=(_gain(),),
        summary="orthogonal centre tap of a conv kernel: a conv net that starts as an "
        "orthogonal map per position, trainable at 10,000 layers (Xiao et al. 2018)",
    ),
    Method(
        "lsuv",
        "orthogonal, then W /= std(layer output) per layer until Var = 1 ± tol",
        "any; deep nets without normalization",
        "dense, conv",
        "Mishkin & Matas 2016",
        params=(
            Param("tol", 0.1, "accepted |Var(output) − 1|"),
            Param("max_iters", 10.0, "rescalings per layer at most"),
            _gain(1.0, "gain of the orthogonal pre-init"),
        ),
        data_dependent=True,
        summary="layer-sequential unit variance: data-dependent, one batch of the run's data",
        note="Needs data: winit stats/train/compare pass the run's first batch; "
        "apply_weight_init(model, 'lsuv', data=x) in Python. The std it aims for is found, "
        "not set: the record holds the std after rescaling.",
    ),
    Method(
        "identity",
        "W = I (eye; dirac for conv)",
        "linear, residual",
        "square dense, conv",
        "Le et al. 2015; Zagoruyko 2017",
        aliases=("eye", "dirac"),
        random=False,
        summary="the layer is the identity map; needs in == out (per group for conv)",
    ),
    Method(
        "sparse",
        "N(0, std²), a fraction `sparsity` of each column 0",
        "deep tanh nets",
        "dense",
        "Martens 2010",
        params=(
            Param("sparsity", 0.1, "fraction of zeros in each column"),
            Param("std", 0.01, "std of the non-zero entries"),
        ),
        summary="sparse Gaussian columns, for deep nets trained with Hessian-free optimization",
    ),
    Method(
        "fixup",
        "He, then branch layers × L^(-1/(2m-2)); each branch's last layer and the head 0",
        "deep residual nets without normalization",
        "residual",
        "Zhang et al. 2019",
        params=(_MODE, _NONLINEARITY, _SLOPE, _HE_GAIN),
        draws_as="he_normal",
        gate="fixup",
        summary="Fixup: every block starts as the identity, and the first SGD step moves "
        "the output by O(1) whatever the depth (L blocks of m weighted layers)",
        note="Weights are drawn by he_normal (its parameters), then the non-last weighted "
        "layers of each residual branch are scaled by L^(-1/(2m-2)) and the last one and the "
        "classifier (weight and bias) set to 0. Each branch gets a scalar multiplier (1) "
        "and scalar biases (0) before each weighted layer and activation and after the "
        "multiplier. Left out: the scalar bias before the classifier, which its own bias "
        "(0 at init) covers.",
    ),
    Method(
        "skipinit",
        "He, and x + α·F(x) with a learnable α = 0 on each residual branch",
        "deep residual nets without batchnorm",
        "residual",
        "De & Smith 2020",
        params=_GATED,
        draws_as="he_normal",
        gate="scalar",
        summary="SkipInit: a learnable scalar on each branch, 0 at init, does what "
        "batchnorm does for a deep ResNet: it biases every block towards the identity",
        note="Weights are drawn by he_normal (its parameters); the scalar is a parameter "
        "of each residual block (`<block>.gate.scale`).",
    ),
    Method(
        "rezero",
        "He, and x + α·F(x) with a learnable α = 0 on each residual branch",
        "deep residual nets and transformers without normalization",
        "residual",
        "Bachlechner et al. 2020",
        params=_GATED,
        draws_as="he_normal",
        gate="scalar",
        summary="ReZero: x + α·F(x), α = 0: the same gate as SkipInit, proposed for "
        "transformers too, where it replaces the layer norms",
        note="The same network at init as skipinit: the papers differ in where they use it "
        "(ReZero drops the normalization in transformers too), not in the init.",
    ),
    Method(
        "torch_default",
        "U(±1/√fan_in), bias U(±1/√fan_in)",
        "any (PyTorch default)",
        "dense, conv",
        "PyTorch reset_parameters",
        summary="PyTorch's own layer default: what you get if you do nothing",
    ),
)

METHODS: dict[str, Method] = {m.name: m for m in _CATALOGUE}
ALIASES: dict[str, str] = {a: m.name for m in _CATALOGUE for a in m.aliases}


def canonical_name(name: str) -> str:
    """The canonical name for a method name or alias; a WinitError naming close matches."""
    key = name.strip().lower().replace("-", "_")
    if key in METHODS:
        return key
    if key in ALIASES:
        return ALIASES[key]
    known = [*METHODS, *ALIASES]
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.75)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise WinitError(f"unknown init method {excerpt(name)}; {hint}`winit methods` lists them all")


def get_method(name: str) -> Method:
    return METHODS[canonical_name(name)]


def _coerce(method: str, p: Param, value: Any) -> Any:
    where = f"parameter {excerpt(p.name)} of {method}"
    if value is None and p.default is None:
        return None
    if p.kind == "str":
        if not isinstance(value, str) or (p.choices and value not in p.choices):
            raise WinitError(f"{where} must be one of {', '.join(p.choices)}; got {excerpt(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WinitError(f"{where} must be a number; got {excerpt(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise WinitError(f"{where} must be finite; got {excerpt(value)}")
    if abs(value) > FLOAT32_MAX:  # an int too: float() of 10**400 would overflow
        raise WinitError(
            f"{where} must be within ±{FLOAT32_MAX:.4g}, the range of the float32 weights; "
            f"got {excerpt(value)}"
        )
    return float(value)


def resolve_params(name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The method's full parameter set: defaults overlaid with `params`, validated."""
    method = get_method(name)
    given = dict(params or {})
    unknown = sorted(set(given) - set(method.param_names))
    if unknown:
        takes = ", ".join(method.param_names) or "no parameters"
        raise WinitError(f"{method.name} does not take {', '.join(unknown)}; it takes {takes}")
    resolved = {
        p.name: _coerce(method.name, p, given.get(p.name, p.default)) for p in method.params
    }
    _check_ranges(method.name, resolved)
    return resolved


def _check_ranges(name: str, p: dict[str, Any]) -> None:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise WinitError(f"{name}: {what}")

    if p.get("gain") is not None:
        # a negative gain flips bounds and stds, which the samplers cannot take
        need(p["gain"] >= 0, f"gain must be >= 0; got {p['gain']}")
    if name in ("normal", "trunc_normal", "sparse"):
        need(p["std"] >= 0, f"std must be >= 0; got {p['std']}")
    if name == "uniform":
        need(p["a"] <= p["b"], f"needs a <= b; got a={p['a']}, b={p['b']}")
    if name == "trunc_normal":
        need(p["a"] < p["b"], f"needs a < b; got a={p['a']}, b={p['b']}")
        need(p["std"] > 0, f"std must be > 0; got {p['std']}")
    if name == "sparse":
        need(0 <= p["sparsity"] < 1, f"sparsity must be in [0, 1); got {p['sparsity']}")
    if name == "variance_scaling":
        need(p["scale"] > 0, f"scale must be > 0; got {p['scale']}")
        need(p["gain"] > 0, f"gain must be > 0; got {p['gain']}")
        need(p["bias_var"] >= 0, f"bias_var must be >= 0; got {p['bias_var']}")
    if name == "lsuv":
        need(p["tol"] > 0, f"tol must be > 0; got {p['tol']}")
        need(p["max_iters"] >= 0, f"max_iters must be >= 0; got {p['max_iters']}")
