"""Parametrizations: how init, the readout and the learning rate scale with width.

SP (the standard parametrization) is every init as it is and one learning rate for all.
µP (the maximal update parametrization; Yang et al. 2021, "Tensor Programs V", Table 3
and Appendix B) is realised exactly as the `mup` package 1.0.0 does it, so that a winit
network and a `mup` one started from the same weights take the same steps:

- which dims are widths: a parameter's dim is a width where the network at
  `model.base_width` (and at twice it, mup's `delta`) has another size there
  (`set_base_shapes`); its width multiplier is its size over the base's. A parameter with
  two width dims is matrix-like (hidden weights), with one vector-like (the input layer's
  weight, the readout's weight, biases, norms), with none fixed (the readout's bias, gates);
- the readout (the last Linear, fan_in a width, fan_out not) sees its input times
  output_mult / width_mult (`MuReadout.forward`, output_mult 1 by default);
- init: the method's own (fan_in-scaled) draw, then what `set_base_shapes(rescale_params=
  True)` does: the readout's weight and bias times √width_mult (`MuReadout.
  _rescale_parameters`), every other layer's bias times √(fan_in's width_mult)
  (`rescale_linear_bias`); a zero readout (`MuReadout(readout_zero_init=True)`) stays 0;
- learning rate (`MuAdam`, `MuSGD`): Adam: matrix-like lr / width_mult, the rest lr;
  SGD: vector-like lr · width_mult, matrix-like lr / (fan_in mult / fan_out mult), fixed
  lr. Weight decay moves the other way (mup scales it by the inverse).

NTK (the neural tangent parametrization; Jacot et al. 2018; Yang & Hu 2021, "Tensor
Programs IV", Table 1: a = 1/2 past the input layer, b = c = 0) writes each weight as
W = w/√fan_in with w ~ N(0, σ²) trained at lr η. winit trains W itself, which is the same
trajectory when W is drawn as SP draws it and trained at η/fan_in under SGD, η/√fan_in under
Adam (Adam's step ignores the scale of its gradient), wherever fan_in is a width: the abc
symmetry (a, b, c) -> (a + θ, b − θ, c − 2θ) for SGD, c − θ for Adam, at θ = −1/2. Relative
to model.base_width, that is lr / fan_in's width_mult (SGD) or lr / √it (Adam); every other
parameter keeps lr, no init is rescaled and no forward pass is multiplied. Weight decay
(torch's, added to the gradient) is wd × that width_mult under both optimizers, which is
NTK's decay of w. Only Linear and conv weights have fans to read: another 2-D parameter (a
position table) is scaled as a vector.

Pure Python at import; `parametrization_of` builds the two base networks on torch's meta
device (no memory, no random draws) to read their parameter shapes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .errors import WinitError

if TYPE_CHECKING:
    from .apply import InitReport

Shape = tuple[int, ...]
# per dim: the base's size where the dim is a width, None where it is finite
BaseShape = tuple[int | None, ...]


@dataclass(frozen=True)
class ParamScaling:
    """One parameter under µP: its shape, which dims are widths, and what µP does to it."""

    name: str  # as model.named_parameters() names it
    shape: Shape
    base: BaseShape
    # what set_base_shapes(rescale_params=True) multiplies its draw by (parametrize sets it)
    init_mult: float = 1.0
    # an nn.Embedding's weight, stored (fan_in, fan_out) = (vocab, width), not (out, in)
    embedding: bool = False
    # a Linear's or conv's weight, stored (out, in, ...): only these have a fan_in to read
    layer_weight: bool = True

    def _mult(self, i: int) -> float:
        base = self.base[i]
        return 1.0 if base is None else self.shape[i] / base

    @property
    def ninf(self) -> int:
        """How many of its dims are widths."""
        return sum(1 for b in self.base if b is not None)

    @property
    def width_mult(self) -> float:
        """mup's InfShape.width_mult: the multiplier of the last width dim (the fan_in of a
        matrix-like weight), 1 where none."""
        widths = [i for i, b in enumerate(self.base) if b is not None]
        return self._mult(widths[-1]) if widths else 1.0

    @property
    def kind(self) -> str:
        """matrix (two width dims), vector (one) or fixed (none)."""
        return {0: "fixed", 1: "vector"}.get(self.ninf, "matrix")

    @property
    def role(self) -> str:
        """A weight's place: input (fan_in finite, fan_out a width), hidden (both widths),
        output (fan_in a width, fan_out finite), fixed (neither); `bias` or `vector` else."""
        if len(self.shape) < 2:
            return "bias" if self.name.endswith("bias") else "vector"
        if not (self.layer_weight or self.embedding):  # a raw parameter: no fans to read
            return "parameter"
        fan_out, fan_in = self.base[0] is not None, self.base[1] is not None
        if self.embedding:
            fan_out, fan_in = fan_in, fan_out
        return {(True, False): "input", (True, True): "hidden", (False, True): "output"}.get(
            (fan_out, fan_in), "fixed"
        )

    def adam_lr(self, lr: float) -> float:
        """MuAdam's learning rate for it (the same expression, so the same float)."""
        return lr / self.width_mult if self.ninf == 2 else lr

    def adam_weight_decay(self, wd: float) -> float:
        return wd * self.width_mult if self.ninf == 2 else wd

    def _fan_ratio(self) -> float:
        return self._mult(1) / self._mult(0)  # mup's fanin_fanout_mult_ratio

    def sgd_lr(self, lr: float) -> float:
        """MuSGD's learning rate for it."""
        if self.ninf == 1:
            return lr * self.width_mult
        if self.ninf == 2:
            return lr / self._fan_ratio()
        return lr

    def sgd_weight_decay(self, wd: float) -> float:
        if self.ninf == 1:
            return wd / self.width_mult
        if self.ninf == 2:
            return wd * self._fan_ratio()
        return wd

    def _ntk_fan_in_mult(self) -> float:
        """The width multiplier NTK divides by: fan_in's, for a weight whose fan_in is a
        width (hidden and output weights); 1 for every other parameter."""
        return self._mult(1) if self.role in ("hidden", "output") else 1.0

    def ntk_lr(self, optimizer: str, lr: float) -> float:
        """NTK in SP form: lr / fan_in mult (SGD), lr / √it (Adam)."""
        mult = self._ntk_fan_in_mult()
        return lr / mult if optimizer == "sgd" else lr / math.sqrt(mult)

    def ntk_weight_decay(self, optimizer: str, wd: float) -> float:
        """torch's coupled L2 decay of W = w/√n at decay wd: wd · n for both optimizers (the
        decay's gradient wd·w is √n times W's; SGD's lr is 1/n of w's, Adam's step ignores
        the gradient's scale), so that SGD's lr × decay stays NTK's."""
        return wd * self._ntk_fan_in_mult()


@dataclass(frozen=True)
class Parametrization:
    """A network's parametrization: µP's scaling of each parameter, and the readout's."""

    name: str  # mup or ntk
    width: int
    base_width: int
    readout: str | None  # the readout layer's module name (NTK may have none to name)
    params: tuple[ParamScaling, ...]
    output_mult: float = 1.0
    zero_readout: bool = False

    @property
    def width_mult(self) -> float:
        return self.width / self.base_width

    @property
    def label(self) -> str:
        return LABELS[self.name]

    @property
    def readout_width_mult(self) -> float:
        """MuReadout.width_mult(): the readout weight's (1 without a readout)."""
        if self.readout is None:
            return 1.0
        return self.by_name[f"{self.readout}.weight"].width_mult

    @property
    def multiplies_readout(self) -> bool:
        """Whether the readout's forward pass is multiplied (µP's MuReadout; not NTK in SP
        form, whose multipliers are folded into the init and the lr)."""
        return self.name == "mup"

    @property
    def readout_multiplier(self) -> float:
        """What the readout's input is multiplied by (µP: output_mult / width_mult)."""
        if not self.multiplies_readout:
            return 1.0
        return self.output_mult / self.readout_width_mult

    def attention_scale(self, head_dim: int) -> float | None:
        """What the attention logits Q_h·K_h are multiplied by: under µP 1/d_head (Yang et
        al. 2021, §4, "attention logit scaled 1/d"; mup's examples/Transformer with attn_mult
        1); None under NTK, which keeps SP's 1/√d_head (torch's own default). Heads stay
        fixed as width grows, so d_head = width / heads grows."""
        return 1.0 / head_dim if self.name == "mup" else None

    @cached_property
    def by_name(self) -> dict[str, ParamScaling]:
        return {p.name: p for p in self.params}

    def lr(self, name: str, optimizer: str, lr: float) -> float:
        """The learning rate of parameter `name` under `optimizer` (adam | sgd)."""
        p = self.by_name[name]
        if self.name == "ntk":
            return p.ntk_lr(optimizer, lr)
        return p.adam_lr(lr) if optimizer == "adam" else p.sgd_lr(lr)

    def weight_decay(self, name: str, optimizer: str, wd: float) -> float:
        p = self.by_name[name]
        if self.name == "ntk":
            return p.ntk_weight_decay(optimizer, wd)
        return p.adam_weight_decay(wd) if optimizer == "adam" else p.sgd_weight_decay(wd)

    def param_groups(
        self, named: list[tuple[str, Any]], optimizer: str, lr: float, weight_decay: float
    ) -> list[dict[str, Any]]:
        """Optimizer param groups: parameters of equal lr and weight decay together, in
        model order (every parameter is in the table: it was read from the same build)."""
        groups: dict[tuple[float, float], list[Any]] = {}
        for name, param in named:
            key = (self.lr(name, optimizer, lr), self.weight_decay(name, optimizer, weight_decay))
            groups.setdefault(key, []).append(param)
        return [{"params": ps, "lr": g_lr, "weight_decay": wd} for (g_lr, wd), ps in groups.items()]


def base_shape(shape: Shape, base: Shape, delta: Shape) -> BaseShape:
    """mup's zip_infshape over a base and a delta: a dim is a width where base and delta
    differ; it keeps the base's size as its base."""
    if not len(shape) == len(base) == len(delta):
        raise ValueError(f"shapes differ in rank: {shape}, {base}, {delta}")
    return tuple(b if b != d else None for b, d in zip(base, delta, strict=True))


def parametrize(
    shapes: Mapping[str, Shape],
    base: Mapping[str, Shape],
    delta: Mapping[str, Shape],
    *,
    readout: str | None,
    width: int,
    base_width: int,
    bias_fan_in: Mapping[str, str] | None = None,
    output_mult: float = 1.0,
    zero_readout: bool = False,
    embeddings: frozenset[str] = frozenset(),
    layer_weights: frozenset[str] | None = None,
    name: str = "mup",
) -> Parametrization:
    """µP (or NTK: `name`) for a network of parameter `shapes` (name -> shape), against the
    same network at its base width (`base`) and at another width (`delta`). `readout`: the
    readout layer's module name (None: NTK without a zero readout needs none);
    `bias_fan_in`: for each Linear or conv bias, its weight's name; `embeddings`: the names
    of nn.Embedding weights (input weights, stored transposed); `layer_weights`: the names
    of Linear and conv weights (default: every parameter of two dims or more)."""
    if name not in ("mup", "ntk"):
        raise ValueError(f"no parametrization {name}")
    if set(shapes) != set(base) or set(shapes) != set(delta):
        raise ValueError("the networks at width and at base width have other parameters")
    if readout is None and (name == "mup" or zero_readout):
        raise ValueError("µP and a zero readout need the readout")
    fans = bias_fan_in or {}
    drawn = {
        param: ParamScaling(
            param,
            tuple(s),
            base_shape(tuple(s), tuple(base[param]), tuple(delta[param])),
            embedding=param in embeddings,
            layer_weight=layer_weights is None or param in layer_weights,
        )
        for param, s in shapes.items()
    }
    head = drawn.get(f"{readout}.weight")
    if readout is not None and (head is None or head.role != "output"):
        raise WinitError(
            f"model.readout: {readout} is no readout: a readout is a Linear whose fan_in "
            "grows with the width and whose fan_out does not"
        )
    params = []
    for param, p in drawn.items():
        if name == "ntk" or head is None:  # NTK in SP form draws as SP
            factor = 1.0
        elif param.startswith(f"{readout}."):  # MuReadout._rescale_parameters: weight, bias
            factor = head.width_mult**0.5
        elif param in fans:  # rescale_linear_bias: by the weight's fan_in multiplier
            factor = drawn[fans[param]]._mult(1) ** 0.5
        else:
            factor = 1.0
        params.append(replace(p, init_mult=factor))
    return Parametrization(
        name, width, base_width, readout, tuple(params), output_mult, zero_readout
    )


def rescale_init(model: Any, scaling: Parametrization, report: InitReport) -> None:
    """Turn the drawn (SP) init into µP's, as set_base_shapes(rescale_params=True) does,
    and zero the readout where asked; the report's records follow."""

    named = dict(model.named_parameters())
    factors = {p.name: p.init_mult for p in scaling.params if p.init_mult != 1.0}
    if scaling.zero_readout:
        factors.update({n: 0.0 for n in named if n.startswith(f"{scaling.readout}.")})
    scale_init(model, factors, report, scaling.name)


def zero_readout(model: Any, readout: str, report: InitReport) -> None:
    """Set the readout layer `readout` (its weight and bias) to 0, under any
    parametrization (mup's coordinate check starts from it: the output is exactly 0 at
    step 1, whatever the width)."""
    names = [n for n, _ in model.named_parameters() if n.startswith(f"{readout}.")]
    scale_init(model, dict.fromkeys(names, 0.0), report, "")


def zero_queries(model: Any, report: InitReport) -> None:
    """Set every attention layer's query weight and bias to 0: Q = 0 makes every logit 0,
    so each head averages its values uniformly at init, and the query learns from there
    (Yang et al. 2021, App. D; mup's examples/Transformer --query_zero_init)."""
    from .transformer import SelfAttention

    names = [
        f"{name}.query.{p}"
        for name, module in model.named_modules()
        if isinstance(module, SelfAttention)
        for p, _ in module.query.named_parameters()
    ]
    scale_init(model, dict.fromkeys(names, 0.0), report, "", zeroed="zero query")


def scale_init(
    model: Any,
    factors: dict[str, float],
    report: InitReport,
    why: str,
    zeroed: str = "zero readout",
) -> None:
    """Multiply the named parameters by their factors; the report's records follow (a
    parameter set to 0 is described as `zeroed`, with `why`)."""
    import torch

    named = dict(model.named_parameters())
    with torch.no_grad():
        for name, factor in factors.items():
            named[name].mul_(factor)
    for record in report.layers:
        weight = factors.get(f"{record.name}.weight", 1.0)
        record.target_std *= weight
        record.scale *= weight
        record.bias_var *= factors.get(f"{record.name}.bias", 1.0) ** 2
    for p in report.parameters:
        factor = factors.get(p.name)
        if factor is None:
            continue
        zero = zeroed + (f" ({why})" if why else "")
        p.detail = zero if factor == 0.0 else f"{p.detail} × {factor:.4g} ({why})"
        if p.target_std is not None:
            p.target_std *= factor
        if p.std is not None:  # measured again, as apply measures it (ddof 0)
            p.std = float(named[p.name].detach().std(unbiased=False))


# Each parametrization by the role of a weight, in SP form (W itself drawn and trained; the
# multiplier is 1 throughout): µP from Yang et al. 2021 ("Tensor Programs V"), Table 3; NTK
# from Yang & Hu 2021 ("Tensor Programs IV"), Table 1, moved into SP form by the abc
# symmetry. fan_in and fan_out are widths where they scale with width; a bias's fan_in is 1.
PARAMETRIZATIONS = ("sp", "ntk", "mup")
LABELS = {"sp": "SP", "ntk": "NTK", "mup": "µP"}
SCALING_ROLES = ("input weights & all biases", "output weights", "hidden weights")
# (quantity, role, SP, NTK, µP)
SCALING_TABLE: tuple[tuple[str, str, str, str, str], ...] = (
    ("init. var.", SCALING_ROLES[0], "1/fan_in", "1/fan_in", "1/fan_in"),
    ("init. var.", SCALING_ROLES[1], "1/fan_in", "1/fan_in", "1/fan_in²"),
    ("init. var.", SCALING_ROLES[2], "1/fan_in", "1/fan_in", "1/fan_in"),
    ("SGD lr", SCALING_ROLES[0], "1", "1", "fan_out"),
    ("SGD lr", SCALING_ROLES[1], "1", "1/fan_in", "1/fan_in"),
    ("SGD lr", SCALING_ROLES[2], "1", "1/fan_in", "1"),
    ("Adam lr", SCALING_ROLES[0], "1", "1", "1"),
    ("Adam lr", SCALING_ROLES[1], "1", "1/√fan_in", "1/fan_in"),
    ("Adam lr", SCALING_ROLES[2], "1", "1/√fan_in", "1/fan_in"),
)
# What else each changes, and how winit (µP as mup 1.0.0) writes the table above.
SCALING_NOTES: tuple[tuple[str, str], ...] = (
    ("widths", "relative to model.base_width: width_mult = fan_in / fan_in at base_width"),
    ("µP attention", "Q·K / d_head (SP, NTK: Q·K / √d_head); heads fixed, d_head = width / heads"),
    ("µP readout", "input × 1/width_mult (MuReadout), drawn init × √width_mult: "
                   "var ∝ 1/fan_in²; init.readout zero: 0"),
    ("µP biases", "drawn init × √(fan_in's width_mult), as mup's rescale_linear_bias"),
    ("µP Adam lr", "matrix-like (two width dims: hidden) lr / width_mult, the rest lr (MuAdam)"),
    ("µP SGD lr", "vector-like (one width dim: input, output, biases, norms) lr × width_mult; "
                  "matrix-like lr × fan_out mult / fan_in mult (MuSGD)"),
    ("µP embeddings", "input weights: vector-like, drawn N(0, 1) and not rescaled"),
    ("NTK", "W = w/√fan_in at lr η (Jacot et al. 2018) is W drawn as SP and trained at "
            "η / fan_in mult (SGD), η / √fan_in mult (Adam) where fan_in is a width"),
    ("NTK's limit", "hidden features stop moving as width grows (lazy training): sizes "
                    "stay put, their updates shrink as 1/√width"),
)  # fmt: skip


def width_multipliers_table(scaling: Parametrization) -> list[dict[str, Any]]:
    """Per parameter: its role, kind, width multiplier, init multiplier and the Adam and
    SGD learning-rate multipliers (what a view of the table shows)."""
    return [
        {
            "name": p.name,
            "role": p.role,
            "kind": p.kind,
            "width_mult": p.width_mult,
            "init_mult": p.init_mult,
            "adam_lr_mult": scaling.lr(p.name, "adam", 1.0),
            "sgd_lr_mult": scaling.lr(p.name, "sgd", 1.0),
            "forward_mult": (
                scaling.readout_multiplier
                if scaling.readout is not None and p.name.startswith(f"{scaling.readout}.")
                else 1.0
            ),
        }
        for p in scaling.params
    ]


__all__ = [
    "PARAMETRIZATIONS",
    "SCALING_NOTES",
    "SCALING_ROLES",
    "SCALING_TABLE",
    "Parametrization",
    "ParamScaling",
    "base_shape",
    "parametrize",
    "rescale_init",
    "width_multipliers_table",
]
