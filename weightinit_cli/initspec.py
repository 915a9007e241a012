"""An init method resolved once: the frozen InitSpec that everything else reads.

Config validation, `winit compare --methods/--param` and `apply_weight_init` each make
one InitSpec: the canonical method name, every parameter checked and defaulted
(methods.resolve_params), the gain choice, the bias init and the backend. scratch.py
and torch_init.py sample from it, apply.py applies it layer by layer (with
`for_layer`, which folds in `gain: auto`), and the mean-field theory reads the
variances it aims for (`target_std`, `bias_variance`). Pure Python: no NumPy, no torch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import ShapeError, WinitError
from .fans import calculate_gain, fan, fan_in_and_fan_out
from .limits import excerpt
from .methods import METHODS, canonical_name, resolve_params

if TYPE_CHECKING:
    from .plan import NetworkPlan

BACKENDS = ("scratch", "torch")
# the methods whose std is read off the fans (so a weight of 2 dimensions or more)
FAN_SCALED = (
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "variance_scaling",
    "torch_default",
)
BIASES = ("zeros", "torch_default")
HE = ("he_uniform", "he_normal")


class InitSpecError(WinitError):
    """A bad part of an init choice; `field` says which: method, mode, gain, params, bias
    or backend (the config names it init.<field>)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple:
        return (type(self), (self.field, str(self)))


class InitSpecErrors(InitSpecError):
    """Several bad parts of one init choice (`problems`, each an InitSpecError)."""

    def __init__(self, problems: list[InitSpecError]) -> None:
        super().__init__(problems[0].field, "; ".join(str(p) for p in problems))
        self.problems = problems

    def __reduce__(self) -> tuple:
        return (type(self), (self.problems,))


def _frozen(params: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(params))


def _checked(field: str, check: Any, *args: Any) -> Any:
    try:
        return check(*args)
    except InitSpecError:
        raise
    except WinitError as err:
        raise InitSpecError(field, str(err)) from None


@dataclass(frozen=True)
class InitSpec:
    """One init method with everything about it decided."""

    method: str  # canonical name
    params: Mapping[str, Any]  # every parameter of the method, checked and defaulted
    given: Mapping[str, Any]  # the parameters as the user gave them
    auto_gain: bool = False  # gain: auto, folded in per layer by for_layer
    bias: str = "zeros"  # zeros | torch_default
    backend: str = "scratch"  # scratch | torch

    def __reduce__(self) -> tuple:
        # a mappingproxy does not pickle (compare's and a sweep's workers send specs)
        return (
            _unpickle,
            (
                self.method,
                dict(self.params),
                dict(self.given),
                self.auto_gain,
                self.bias,
                self.backend,
            ),
        )

    @classmethod
    def create(
        cls,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        mode: str | None = None,
        gain: str | float | None = None,
        bias: str | None = None,
        backend: str = "scratch",
    ) -> InitSpec:
        """Check and resolve an init choice; an InitSpecError names the part at fault
        (InitSpecErrors, every part at fault where there are several).

        gain: None or "default" keeps the method's own, "auto" takes calculate_gain of
        the activation after each layer, a number sets it. bias: None is torch_default
        for method torch_default and zeros otherwise.
        """
        name = _checked("method", canonical_name, method)
        given = dict(params or {})
        problems: list[InitSpecError] = []

        def check(field: str, call: Any, *args: Any) -> Any:
            try:
                return _checked(field, call, *args)
            except InitSpecError as err:
                problems.append(err)
                return None

        def twice(key: str) -> None:
            problems.append(
                InitSpecError(
                    "params", f"{key} is given twice: as init.{key} and init.params.{key}"
                )
            )

        if backend not in BACKENDS:
            problems.append(
                InitSpecError(
                    "backend", f"backend must be scratch or torch; got {excerpt(backend)}"
                )
            )
        if mode is not None:
            if "mode" in given:
                twice("mode")
            check("mode", resolve_params, name, {"mode": mode})
        gain = None if gain == "default" else gain
        fixed_gain: dict[str, Any] = {}
        if isinstance(gain, str) and gain != "auto":
            problems.append(
                InitSpecError(
                    "gain", f"gain must be default, auto or a number; got {excerpt(gain)}"
                )
            )
        elif gain is not None:
            if "gain" in given:
                twice("gain")
            if gain != "auto":
                if not METHODS[name].takes_gain:
                    problems.append(
                        InitSpecError("gain", f"{name} takes no gain; leave gain at default")
                    )
                else:
                    fixed_gain = check("gain", resolve_params, name, {"gain": gain}) or {}
        check("params", resolve_params, name, given)
        bias = bias or ("torch_default" if name == "torch_default" else "zeros")
        if bias not in BIASES:
            problems.append(
                InitSpecError("bias", f"bias must be zeros or torch_default; got {excerpt(bias)}")
            )
        if mode is not None and "mode" not in given:
            given["mode"] = mode
        gain_value = {"gain": fixed_gain["gain"]} if fixed_gain else {}
        resolved = (
            None if problems else check("params", resolve_params, name, {**given, **gain_value})
        )
        if problems:
            raise problems[0] if len(problems) == 1 else InitSpecErrors(problems)
        return cls(
            name,
            _frozen(resolved),
            _frozen(given),
            auto_gain=gain == "auto",
            bias=bias,
            backend=backend,
        )

    @property
    def data_dependent(self) -> bool:
        """Whether the method needs a batch of the run's data (lsuv)."""
        return METHODS[self.method].data_dependent

    @property
    def drawn_as(self) -> str:
        """The method whose formula draws the weights: a residual scheme's (fixup,
        skipinit, rezero: he_normal), else this one."""
        return METHODS[self.method].draws_as or self.method

    @property
    def gain(self) -> float | None:
        """The gain the weights are scaled by; None for a method that takes none."""
        if not METHODS[self.method].takes_gain:
            return None
        return he_gain(self.params) if self.drawn_as in HE else self.params["gain"]

    def for_layer(self, activation: str, negative_slope: float = 0.0) -> InitSpec:
        """The spec for one layer followed by `activation`: `gain: auto` folded in
        (he: its nonlinearity and slope; other methods with a gain: that activation's)."""
        if not self.auto_gain:
            return self
        slope = negative_slope if activation == "leaky_relu" else 0.0
        params = dict(self.params)
        if self.drawn_as in HE:
            params.update(nonlinearity=activation, a=slope)
        elif METHODS[self.method].takes_gain:
            from .activations import get_activation

            params["gain"] = get_activation(activation).gain(slope)
        return replace(self, params=_frozen(params), auto_gain=False)

    def initial(self) -> InitSpec:
        """The spec the weights are first drawn with: lsuv's orthogonal pre-init (which it
        then rescales with data), a residual scheme's he_normal (which apply.py then scales
        or zeros per layer), else this one."""
        if self.drawn_as != self.method:
            he = {k: v for k, v in self.params.items() if k in METHODS[self.drawn_as].param_names}
            return replace(self, method=self.drawn_as, params=_frozen(he), given=_frozen({}))
        if self.method != "lsuv":
            return self
        return replace(
            self,
            method="orthogonal",
            params=_frozen({"gain": self.params["gain"]}),
            given=_frozen({}),
        )

    def target_std(self, shape: Sequence[int], groups: int = 1) -> float:
        """The std of the weights this method aims for on a weight of `shape`."""
        return target_std(self.drawn_as, shape, self.params, groups)

    @property
    def bias_init(self) -> str:
        """How the biases are drawn: normal with variance_scaling's bias_var, else `bias`."""
        return "normal" if self.params.get("bias_var") else self.bias

    def bias_variance(self, fan_in: int) -> float:
        """The variance of the biases this init gives a layer (theory's σ_b²)."""
        if self.bias_init == "normal":
            return float(self.params["bias_var"])
        if self.bias_init == "torch_default":
            return 1.0 / (3 * fan_in) if fan_in else 0.0
        return 0.0

    def check_plan(self, plan: NetworkPlan) -> None:
        """A ShapeError naming the first weighted layer of `plan` this method cannot make."""
        for layer in plan.weighted:
            if layer.weight_shape is not None:
                self.check_shape(layer.weight_shape, layer.groups, layer.name)

    def check_residual(self, plan: NetworkPlan, built: bool, field: str = "init.method") -> None:
        """A WinitError where this residual scheme (fixup, skipinit, rezero) cannot apply:
        a network without residual blocks, or one winit did not build (whose branches it
        cannot gate). Other methods apply anywhere."""
        if not METHODS[self.method].residual_scheme:
            return
        field = f"{field}: " if field else ""
        if not built:
            raise WinitError(
                f"{field}{self.method} gates the residual blocks winit builds; with "
                "model.module write the scheme into your module, or use init.branch_scale"
            )
        if not plan.has("residual"):
            raise WinitError(
                f"{field}{self.method} is a scheme for residual networks, and this one has "
                "no residual blocks (set model.block: residual, or write residual layers)"
            )

    def check_shape(self, shape: Sequence[int], groups: int = 1, layer: str | None = None) -> None:
        """A ShapeError where this method cannot make a weight of `shape` (PyTorch layout):
        fan-scaled and orthogonal methods need 2 dimensions or more, identity needs 2 to 5
        and as many outputs as inputs (per group), sparse a Dense weight. `layer` names
        the layer in the message."""
        shape = tuple(int(s) for s in shape)
        where = f"; layer {layer!r} has shape {shape}" if layer else f"; got shape {shape}"
        if self.method == "sparse" and len(shape) != 2:
            what = "layers" if layer else "(2-D) weights"
            raise ShapeError(f"sparse applies to Dense {what} only{where}")
        if self.method == "identity":
            if len(shape) not in (2, 3, 4, 5):
                raise ShapeError(f"identity needs a 2-D to 5-D weight{where}")
            if len(shape) > 2 and (groups < 1 or shape[0] % groups):
                raise ShapeError(
                    f"identity: {shape[0]} output channels do not split into {groups} groups"
                )
            if layer is not None and shape[0] // groups != shape[1]:
                raise ShapeError(
                    f"identity cannot apply to layer {layer!r}: it maps {shape[1] * groups} "
                    f"inputs to {shape[0]} outputs, and an identity needs them equal"
                )
        if self.drawn_as in FAN_SCALED:
            fan_in_and_fan_out(shape)  # its ShapeError for fewer than 2 dimensions
        if self.method in ("orthogonal", "delta_orthogonal", "lsuv") and len(shape) < 2:
            raise ShapeError(f"{self.method} needs a weight of at least 2 dimensions{where}")


def _unpickle(method, params, given, auto_gain, bias, backend) -> InitSpec:
    return InitSpec(method, _frozen(params), _frozen(given), auto_gain, bias, backend)


def he_gain(params: Mapping[str, Any]) -> float:
    """The gain of he_uniform / he_normal: an explicit gain, else torch's rule."""
    if params.get("gain") is not None:
        return float(params["gain"])
    return calculate_gain(params["nonlinearity"], params["a"])


# 8-point Gauss-Legendre nodes and weights on [-1, 1] (the positive half; symmetric)
_GL_NODES = (0.1834346424956498, 0.5255324099163290, 0.7966664774136267, 0.9602898564975363)
_GL_WEIGHTS = (0.3626837833783620, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763)
_GL_PANELS = 64


@functools.lru_cache(maxsize=256)
def truncated_normal_std(mean: float, std: float, a: float, b: float) -> float:
    """Std of N(mean, std²) truncated to the absolute interval [a, b].

    By quadrature of the density relative to its peak in [a, b], which stays accurate
    where the closed form cancels or divides by zero: an interval narrow against std
    (std 1e7 on [-2, 2]) or far out in a tail (std 1 on [10, 11]).
    """
    alpha, beta = (a - mean) / std, (b - mean) / std
    peak = min(max(0.0, alpha), beta)
    reach = 40.0 / max(1.0, abs(peak))  # further out the density is below e^-40 of the peak
    lo, hi = max(alpha, peak - reach), min(beta, peak + reach)
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    offset = centre - peak
    us, ws = [], []
    for panel in range(_GL_PANELS):
        mid = -1 + (2 * panel + 1) / _GL_PANELS
        for node, weight in zip(_GL_NODES, _GL_WEIGHTS, strict=True):
            for u in (mid - node / _GL_PANELS, mid + node / _GL_PANELS):
                t = offset + half * u  # x - peak, so that no large x² is formed
                us.append(u)
                ws.append(weight * math.exp(-(peak * t + 0.5 * t * t)))
    total = sum(ws)
    mean_u = sum(w * u for w, u in zip(ws, us, strict=True)) / total
    var_u = sum(w * (u - mean_u) ** 2 for w, u in zip(ws, us, strict=True)) / total
    return std * half * math.sqrt(var_u)


def identity_ones(shape: Sequence[int], groups: int = 1) -> int:
    """How many ones eye (2-D) or dirac (3-5-D, `groups`) writes into a weight."""
    if len(shape) == 2:
        return min(shape)
    if len(shape) not in (3, 4, 5):
        raise ShapeError(f"identity needs a 2-D to 5-D weight; got shape {tuple(shape)}")
    return groups * min(shape[0] // groups, shape[1])


def target_std(
    method: str, shape: Sequence[int], params: Mapping[str, Any], groups: int = 1
) -> float:
    """The std a method aims for on a weight of `shape`, from its resolved `params`.

    For deterministic methods it is the std of the resulting tensor; for random ones the
    std of the distribution sampled from. `groups` matters for identity only.
    """
    p = params
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    if method in ("zeros", "ones", "constant"):
        return 0.0
    if method == "normal":
        return p["std"]
    if method == "uniform":
        return (p["b"] - p["a"]) / math.sqrt(12)
    if method == "trunc_normal":
        return truncated_normal_std(p["mean"], p["std"], p["a"], p["b"])
    fan_in, fan_out = fan_in_and_fan_out(shape)
    if method in ("xavier_uniform", "xavier_normal"):
        return p["gain"] * math.sqrt(2.0 / (fan_in + fan_out))
    if method in HE:
        return he_gain(p) / math.sqrt(fan(shape, p["mode"]))
    if method in ("lecun_uniform", "lecun_normal"):
        return p["gain"] / math.sqrt(fan_in)
    if method == "variance_scaling":
        return p["gain"] * math.sqrt(p["scale"] / fan(shape, p["mode"]))
    if method in ("orthogonal", "lsuv"):  # lsuv: its orthogonal pre-init
        rows = shape[0]
        return p["gain"] / math.sqrt(max(rows, n // rows))
    if method == "delta_orthogonal":
        taps = n // (shape[0] * shape[1])
        return p["gain"] / math.sqrt(max(shape[0], shape[1]) * taps)
    if method == "identity":
        frac = identity_ones(shape, groups) / n
        return math.sqrt(frac - frac * frac)
    if method == "sparse":
        rows = shape[0]
        kept = rows - math.ceil(p["sparsity"] * rows)
        return p["std"] * math.sqrt(kept / rows)
    if method == "torch_default":
        return 1.0 / math.sqrt(3.0 * fan_in)
    raise AssertionError(f"no target std for {method}")  # every catalogue entry is handled


def expected_std(
    method: str,
    shape: Sequence[int],
    params: Mapping[str, Any] | None = None,
    groups: int = 1,
) -> float:
    """The std a method (by name or alias, with the parameters given) aims for on a weight
    of `shape` (the library's entry point; runs read InitSpec.target_std)."""
    return InitSpec.create(method, params).target_std(shape, groups)
