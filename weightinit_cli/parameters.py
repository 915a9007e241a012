"""The rule for every parameter of a model, by the type of the module that holds it.

apply.py initializes the weighted layers of the plan; this module gives each other
parameter its rule and the record of what was done to it (`ParameterRecord`):

- Linear / ConvNd / ConvTransposeNd outside the plan (MultiheadAttention's out_proj, a
  layer a traced forward never called as a module): the method, with `gain: auto` read as
  a linear activation (gain 1); the bias by the bias rule.
- MultiheadAttention: the packed `in_proj_weight` (3E x E) is three (E, E) projections,
  query, key and value, each drawn by the method with its own fans (E in, E out), not the
  packed 3E; `q_proj_weight`, `k_proj_weight`, `v_proj_weight` (kdim or vdim not E) each
  with their own fans; `in_proj_bias` by the bias rule, per projection. `bias_k` / `bias_v`
  (add_bias_kv: the key and value of one extra position appended to every sequence) also
  by the bias rule, as a bias of an (E, E) projection: zeros by default, a slot that every
  query scores 0 and that adds nothing to the output when attended (torch draws them
  xavier_normal, a random key that some queries then favour for no reason).
- RNN / LSTM / GRU and their cells: `weight_ih_l{k}`, `weight_hh_l{k}` (and `_reverse`)
  are the gates stacked (4 for LSTM, 3 for GRU, 1 for RNN), each (H, in) gate drawn by the
  method with its own fans; LSTM's projection `weight_hr_l{k}` is one (proj, H) weight.
  `gain: auto` uses nn.RNN's own nonlinearity (tanh or relu) and linear (1) for the gates
  of LSTM and GRU (sigmoid gates have gain 1). Biases by the bias rule, with the fan_in of
  the gate they add to.
- Embedding / EmbeddingBag: N(0, 1), a "default" rule. A lookup is a Linear layer applied
  to a one-hot input, which has one non-zero value, so the fan_in that keeps the variance
  is 1 and every fan_in-scaled method (He, LeCun with gain 1) gives std 1: an embedded
  token then has unit variance, as the inputs the methods assume. It is torch's default
  too. Fan-based rules would read fan_in as the embedding dim, which means nothing here.
  The padding_idx row is set to 0, as torch does.
- normalization (BatchNorm, InstanceNorm, LayerNorm, GroupNorm, RMSNorm): weight 1, bias 0,
  the identity at init ("norm: ones", "norm: zeros").
- the gates of residual schemes (gates.py): a branch's scalar is the method's α (SkipInit,
  ReZero: 0), or 1 (Fixup's multiplier); Fixup's scalar biases 0.
- any other parameter (a user's nn.Parameter, PReLU's weight, a parameter of a lazy module
  not yet materialized, or a tensor this method cannot make, such as identity on a
  non-square gate) is left as it is and recorded "skipped", with the reason.

Each draw is by the spec's backend (scratch: the NumPy rng; torch: the torch generator),
in the order of `model.named_modules()`, after the plan's layers: one seed, one model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import scratch, torch_init
from .errors import ShapeError
from .fans import fan_in_and_fan_out
from .initspec import InitSpec

Shape = tuple[int, ...]

WEIGHTED_LAYERS = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
NORMS = tuple(
    cls
    for cls in (
        nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
        nn.LayerNorm,
        nn.GroupNorm,
        getattr(nn, "RMSNorm", None),  # torch >= 2.4
    )
    if cls is not None
)
RECURRENT = (nn.RNNBase, nn.RNNCellBase)
EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)


@dataclass
class ParameterRecord:
    """What was done to one parameter tensor (`model.named_parameters()` entry)."""

    name: str  # dotted, as named_parameters names it (a tied tensor: its first name)
    shape: Shape
    fan_in: int | None  # per chunk; None where fans mean nothing (norms, embeddings, skipped)
    fan_out: int | None
    rule: str  # "method" | "default" | "skipped"
    detail: str  # the method, "bias: zeros", "norm: ones", "embedding: normal(0, 1)", a reason
    chunks: int = 1  # 3 for packed q/k/v, the gates of an RNN weight
    target_std: float | None = None  # None where skipped
    std: float | None = None  # measured after init (ddof 0); None for an empty tensor

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shape"] = list(self.shape)
        return data


@dataclass(frozen=True)
class _Rule:
    """How one parameter is made: `kind` weight | bias | ones | zeros | embedding; a
    weight or bias is the stack of `chunks` (each the shape of a weight, drawn apart)."""

    kind: str
    chunks: tuple[Shape, ...] = ()
    activation: str = "linear"
    groups: int = 1
    padding: int | None = None  # an embedding's padding_idx row, set to 0
    label: str = ""  # a constant's detail


class Draws:
    """The backend's random numbers, drawn in the order asked for."""

    def __init__(
        self, spec: InitSpec, rng: np.random.Generator, generator: torch.Generator | None
    ) -> None:
        self.spec, self.rng, self.generator = spec, rng, generator

    def weight(self, spec: InitSpec, shape: Shape, groups: int = 1) -> torch.Tensor:
        """A weight of `shape` drawn by `spec` (a float32 CPU tensor)."""
        if spec.backend == "scratch":
            return torch.from_numpy(scratch.sample(spec, shape, self.rng, groups))
        return torch_init.fill_(torch.empty(shape), spec, generator=self.generator, groups=groups)

    def bias(self, size: int, weight_shape: Shape) -> torch.Tensor:
        """The bias init of a weight of `weight_shape`: zeros, torch's default
        U(±1/√fan_in), or N(0, bias_var)."""
        kind, fan_in = self.spec.bias_init, fan_in_and_fan_out(weight_shape)[0]
        if kind == "zeros":
            return torch.zeros(size)
        variance = self.spec.bias_variance(fan_in)
        if self.spec.backend == "scratch":
            if kind == "normal":
                values = self.rng.standard_normal(size, dtype=np.float32)
                values *= np.float32(variance**0.5)
            else:
                values = scratch.torch_default_bias(weight_shape, size, rng=self.rng)
            return torch.from_numpy(values)
        cpu = torch.empty(size)
        if kind == "normal":
            return torch.nn.init.normal_(cpu, 0.0, variance**0.5, generator=self.generator)
        return torch_init.torch_default_bias_(cpu, weight_shape, generator=self.generator)

    def standard_normal(self, shape: Shape) -> torch.Tensor:
        if self.spec.backend == "scratch":
            return torch.from_numpy(self.rng.standard_normal(shape, dtype=np.float32))
        return torch.empty(shape).normal_(generator=self.generator)


def bias_detail(spec: InitSpec) -> str:
    """How the biases are drawn, as a record's detail."""
    if spec.bias_init == "normal":
        return f"bias: normal(0, {spec.params['bias_var']:g})"
    return f"bias: {spec.bias_init}"


def _rules(module: nn.Module) -> dict[str, _Rule]:
    """The rule for each parameter winit knows of this module, by its own name."""
    if isinstance(module, WEIGHTED_LAYERS):
        shape = tuple(module.weight.shape)
        groups = getattr(module, "groups", 1)
        return {"weight": _Rule("weight", (shape,), groups=groups), "bias": _Rule("bias", (shape,))}
    if isinstance(module, nn.MultiheadAttention):
        return _attention_rules(module)
    if isinstance(module, RECURRENT):
        return _recurrent_rules(module)
    if isinstance(module, EMBEDDINGS):
        return {"weight": _Rule("embedding", padding=module.padding_idx)}
    if isinstance(module, NORMS):
        return {"weight": _Rule("ones"), "bias": _Rule("zeros")}
    declared = getattr(module, "winit_rules", None)  # the gates of residual schemes
    if callable(declared):
        return {name: _Rule(kind, label=label) for name, (kind, label) in declared().items()}
    return {}


def _attention_rules(module: nn.MultiheadAttention) -> dict[str, _Rule]:
    e = module.embed_dim
    if module.in_proj_weight is not None:
        projections: tuple[Shape, ...] = ((e, e),) * 3
        rules = {"in_proj_weight": _Rule("weight", projections)}
    else:
        names = ("q_proj_weight", "k_proj_weight", "v_proj_weight")
        projections = tuple(tuple(getattr(module, n).shape) for n in names)
        rules = {n: _Rule("weight", (s,)) for n, s in zip(names, projections, strict=True)}
    rules["in_proj_bias"] = _Rule("bias", projections)
    rules["bias_k"] = rules["bias_v"] = _Rule("bias", ((e, e),))
    return rules


def _recurrent_rules(module: nn.Module) -> dict[str, _Rule]:
    hidden = module.hidden_size
    activation = getattr(module, "nonlinearity", "linear")  # nn.RNN, nn.RNNCell: tanh | relu
    rules = {}
    for name, param in module.named_parameters(recurse=False):
        if name.startswith(("weight_ih", "weight_hh")):
            gates = param.shape[0] // hidden
            rules[name] = _Rule("weight", ((hidden, param.shape[1]),) * gates, activation)
        elif name.startswith("weight_hr"):  # LSTM's projection: one weight
            rules[name] = _Rule("weight", (tuple(param.shape),))
    for name, _ in module.named_parameters(recurse=False):
        weight = rules.get("weight" + name[len("bias") :])
        if name.startswith("bias") and weight is not None:
            rules[name] = _Rule("bias", weight.chunks)
    return rules


def _fans(chunks: tuple[Shape, ...], bias: bool = False) -> tuple[int | None, int | None]:
    """The fans of every chunk, where they share them (a bias: fan_in only)."""
    if len(set(chunks)) != 1:
        return None, None
    fan_in, fan_out = fan_in_and_fan_out(chunks[0])
    return (fan_in, None) if bias else (fan_in, fan_out)


def _pooled_std(sizes: list[int], stds: list[float]) -> float:
    """The std of the stacked chunks (each of mean 0) from the size and std of each."""
    total = sum(sizes)
    if not total:
        return 0.0
    return math.sqrt(sum(n * s * s for n, s in zip(sizes, stds, strict=True)) / total)


def _skip(name: str, param: nn.Parameter, reason: str) -> ParameterRecord:
    shape = () if nn.parameter.is_lazy(param) else tuple(param.shape)  # not known yet
    return ParameterRecord(name, shape, None, None, "skipped", reason)


@torch.no_grad()
def _apply(name: str, param: nn.Parameter, rule: _Rule, draws: Draws) -> ParameterRecord:
    """Initialize `param` by `rule`; its record (std measured later)."""
    shape, spec = tuple(param.shape), draws.spec
    if rule.kind in ("ones", "zeros"):
        param.fill_(1.0 if rule.kind == "ones" else 0.0)
        detail = rule.label or f"norm: {rule.kind}"
        return ParameterRecord(name, shape, None, None, "default", detail, 1, 0.0)
    if rule.kind == "gate":  # SkipInit's and ReZero's α; Fixup's multiplier is 1
        alpha = spec.params.get("alpha", 1.0)
        param.fill_(alpha)
        what = f"gate: α = {alpha:g} ({spec.method})" if "alpha" in spec.params else "gate: 1"
        return ParameterRecord(name, shape, None, None, "default", what, 1, 0.0)
    if rule.kind == "embedding":
        param.copy_(draws.standard_normal(shape))
        if rule.padding is not None:
            param[rule.padding].fill_(0.0)
        return ParameterRecord(
            name, shape, None, None, "default", "embedding: normal(0, 1)", 1, 1.0
        )
    rows = sum(chunk[0] for chunk in rule.chunks)
    if rule.kind == "bias":
        if param.numel() != rows:
            return _skip(name, param, f"a bias of {param.numel()} values for {rows} outputs")
        values = [draws.bias(chunk[0], chunk) for chunk in rule.chunks]
        param.copy_(torch.cat(values).view(shape))
        fans = [fan_in_and_fan_out(chunk)[0] for chunk in rule.chunks]
        stds = [spec.bias_variance(f) ** 0.5 for f in fans]
        target = _pooled_std([c[0] for c in rule.chunks], stds)
        fan_in, fan_out = _fans(rule.chunks, bias=True)
        return ParameterRecord(
            name, shape, fan_in, fan_out, "method", bias_detail(spec), len(rule.chunks), target
        )
    if (rows, *rule.chunks[0][1:]) != shape:
        return _skip(name, param, f"winit cannot split its shape {shape} into {rule.chunks}")
    chunk_spec = spec.for_layer(rule.activation)
    try:
        for chunk in rule.chunks:
            chunk_spec.check_shape(chunk, rule.groups, name)
    except ShapeError as err:
        return _skip(name, param, f"left as it is: {err}")
    param.copy_(torch.cat([draws.weight(chunk_spec, chunk, rule.groups) for chunk in rule.chunks]))
    sizes = [math.prod(chunk) for chunk in rule.chunks]
    stds = [
        chunk_spec.target_std(c, rule.groups) if n else 0.0
        for c, n in zip(rule.chunks, sizes, strict=True)
    ]
    detail = "lsuv: its orthogonal start, not rescaled" if spec.data_dependent else spec.method
    fan_in, fan_out = _fans(rule.chunks)
    return ParameterRecord(
        name,
        shape,
        fan_in,
        fan_out,
        "method",
        detail,
        len(rule.chunks),
        _pooled_std(sizes, stds),
    )


def init_unplanned(model: nn.Module, draws: Draws, done: set[int]) -> dict[int, ParameterRecord]:
    """Initialize every parameter of `model` not in `done` (ids of tensors the plan's
    layers made) by its module's rule; the records by tensor id. A tied tensor is made
    once, by the first module that holds it."""
    names = {id(p): n for n, p in model.named_parameters()}
    records: dict[int, ParameterRecord] = {}
    seen = set(done)
    for module in dict(model.named_modules()).values():
        own = [(n, p) for n, p in module.named_parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for _, p in own)
        lazy = any(nn.parameter.is_lazy(p) for _, p in own)
        rules = {} if lazy or not own else _rules(module)
        for own_name, param in own:
            name, rule = names[id(param)], rules.get(own_name)
            if lazy:
                records[id(param)] = _skip(name, param, "not materialized yet (a lazy module)")
            elif param.numel() == 0:
                records[id(param)] = _skip(name, param, "empty: it has no values")
            elif rule is None:
                reason = f"a parameter of {type(module).__name__} that winit does not know"
                if isinstance(module, nn.utils.parametrize.ParametrizationList):
                    reason = (
                        "a parametrized weight's tensor (weight_norm, spectral_norm): winit "
                        "does not draw through parametrizations"
                    )
                records[id(param)] = _skip(name, param, reason)
            else:
                records[id(param)] = _apply(name, param, rule, draws)
    return records


@torch.no_grad()
def in_order(model: nn.Module, records: dict[int, ParameterRecord]) -> list[ParameterRecord]:
    """The records in `model.named_parameters()` order, each with its measured std."""
    ordered = []
    for _, param in model.named_parameters():
        record = records[id(param)]
        if not nn.parameter.is_lazy(param) and param.numel():
            record.std = param.detach().double().std(correction=0).item()
        ordered.append(record)
    return ordered
