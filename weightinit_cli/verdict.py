"""A plain-language verdict on what an init did to a network's signal.

Computation only: from measured per-layer statistics it flags each layer's signal
(vanishing, exploding) and returns the network's verdict (a kind, the per-layer factor
and a sentence); rendering decides how to show them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .activations import get_activation

# An activation std below this fraction of layer 1's has vanished; above the
# inverse, it has exploded (issue #3's thresholds).
VANISHING = 1e-3
EXPLODING = 1e3
# Per-layer change in activation std that counts as "keeps its scale".
STABLE_BAND = 0.1


@dataclass
class Verdict:
    # symmetric | vanishing | exploding | shrinking | growing | stable | dead; residual
    # streams: linear too
    kind: str
    factor: float  # geometric-mean change of the activation std per layer
    message: str


def per_layer_factor(stds: Sequence[float]) -> float:
    """Geometric mean of std[l+1]/std[l]: 0 when the signal hits 0, inf when it overflows."""
    from .meanfield import per_layer_decay

    if any(not math.isfinite(s) for s in stds):
        return math.inf
    return per_layer_decay(stds)


def flag(value: float, first: float) -> str | None:
    """'vanishing' or 'exploding' for a per-layer std relative to layer 1's, else None."""
    if not math.isfinite(value) or value > EXPLODING * max(first, 1e-30):
        return "exploding"
    if value < VANISHING * first or (first == 0 and value == 0):
        return "vanishing"
    return None


def diagnose(
    activation_stds: Sequence[float],
    signals: Sequence[str | None],
    symmetric: Sequence[bool],
    dead_fractions: Sequence[float],
    activation_fn: str | None,
    method: str,
) -> Verdict:
    """Judge the hidden layers (the output layer excluded by the caller) by their
    activation stds and signal flags (`flag`), symmetry and dead units. `activation_fn`:
    the network's activation, None where it is not known (a user's module that applies its
    activations in its forward)."""
    vanishing = [i + 1 for i, f in enumerate(signals) if f == "vanishing"]
    exploding = [i + 1 for i, f in enumerate(signals) if f == "exploding"]
    symmetric_layers = [i + 1 for i, s in enumerate(symmetric) if s]
    factor = per_layer_factor(activation_stds)
    if activation_fn is None:
        try_instead, net = "another method (winit compare --methods ...)", "this network"
    else:
        try_instead, net = get_activation(activation_fn).suggestion, f"a {activation_fn} net"

    def verdict(kind: str, message: str) -> Verdict:
        return Verdict(kind, factor, message)

    def scaled(direction: str) -> str:
        """What to try for a signal that grows or shrinks: the suggestion, unless that is
        the method already in use (a network that is no plain chain of its activation)."""
        if try_instead != method:
            return try_instead
        return f"a {direction} gain (init.gain) or another method (winit compare)"

    if symmetric_layers and len(symmetric_layers) >= max(1, len(symmetric) - 1):
        return verdict(
            "symmetric",
            f"every unit of layers {_span(symmetric_layers)} has identical weights or gradients: "
            f"{method} never breaks the symmetry, so the units can only learn the same thing. "
            f"Use a random init; for {net}, try {try_instead}.",
        )
    if dead_fractions and max(dead_fractions) >= 0.5:
        worst = max(range(len(dead_fractions)), key=dead_fractions.__getitem__)
        return verdict(
            "dead",
            f"{dead_fractions[worst]:.0%} of the units of layer {worst + 1} are dead (zero for "
            f"every example): their gradients are zero and they will not train. "
            f"Try {try_instead if try_instead != method else 'another method (winit compare)'}.",
        )
    if exploding:
        growth = f"grow {factor:.2f}x per layer and" if math.isfinite(factor) else "overflow:"
        return verdict(
            "exploding",
            f"activations {growth} explode (more than {EXPLODING:g}x "
            f"layer 1 from layer {exploding[0]}): {method} is too large for {net}; "
            f"try {scaled('smaller')}.",
        )
    if vanishing or factor < 1 - STABLE_BAND:
        shrink = 1 / factor if factor > 0 else math.inf
        where = f" and vanish from layer {vanishing[0]}" if vanishing else ""
        return verdict(
            "vanishing" if vanishing else "shrinking",
            f"activations shrink {shrink:.2f}x per layer{where}: {method} starves {net}; "
            f"try {scaled('larger')}.",
        )
    if factor > 1 + STABLE_BAND:
        return verdict(
            "growing",
            f"activations grow {factor:.2f}x per layer: {method} amplifies {net} with depth; "
            f"try {scaled('smaller')}.",
        )
    return verdict(
        "stable",
        f"activations keep their scale across depth ({factor:.2f}x per layer): "
        f"{method} suits {net}.",
    )


def _span(layers: Sequence[int]) -> str:
    return f"{layers[0]}-{layers[-1]}" if len(layers) > 2 else ", ".join(map(str, layers))


# The residual stream's E[x²] (a square: the std thresholds squared) over all its blocks:
# past 4 its std has doubled (a 1/√L branch scale stays below e, He's doubles per block).
STREAM_GROWING = 4.0
STREAM_SCHEMES = ("fixup", "skipinit", "init.branch_scale=sqrt_depth")


def diagnose_stream(
    names: Sequence[str],
    stream_in: float,
    stream_out: Sequence[float],
    method: str,
    normalized: bool = False,
) -> Verdict:
    """Judge a residual network by its stream: `stream_out[k]` is E[x²] after block
    `names[k]`, `stream_in` before the first. The factor is the std's geometric-mean change
    per block; an exploding stream is named at the first block whose std passes EXPLODING
    times the stream's input. A stream that grows by a steady amount per block (branches
    behind a norm: pre-LN transformers, Brock et al.'s BN-ReLU-Conv ResNets) grows
    linearly, not exponentially; `normalized`: the network already has norms (a
    transformer's layer norms), so a norm is not what to try."""
    blocks = len(stream_out)
    start = max(stream_in, 1e-30)
    last = stream_out[-1] if stream_out else stream_in
    finite = math.isfinite(last)
    ratio = last / start if finite else math.inf
    factor = ratio ** (1 / (2 * blocks)) if finite and blocks else math.inf
    schemes = ("init.branch_scale=gpt2", "rezero") if normalized else STREAM_SCHEMES
    others = [s for s in schemes if s != method]
    instead = f"try {', '.join(others[:-1])} or {others[-1]}" if len(others) > 1 else others[0]
    if not normalized:
        instead += ", or a norm (model.norm)"

    def verdict(kind: str, message: str) -> Verdict:
        return Verdict(kind, factor, message)

    over = [
        k
        for k, out in enumerate(stream_out)
        if not math.isfinite(out) or out > EXPLODING**2 * start
    ]
    if over:
        k = over[0]
        grows = f"grows {factor * factor:.2f}x per block" if finite else "overflows"
        return verdict(
            "exploding",
            f"the residual stream explodes at block {k + 1} of {blocks} ({names[k]}), where its "
            f"std passes {EXPLODING:g}x the stream's input: E[x²] {grows}, since each {method} "
            f"branch adds about as much as the stream holds; {instead}.",
        )
    if ratio < VANISHING**2:
        return verdict(
            "vanishing",
            f"the residual stream vanishes: E[x²] falls {1 / ratio:.3g}x over {blocks} blocks; "
            f"{method} shrinks the skip path itself (a projection or a norm on it).",
        )
    if ratio > STREAM_GROWING and _linear(stream_in, stream_out):
        added = (last - stream_in) / blocks
        bounded = "init.branch_scale=gpt2" if method != "init.branch_scale=gpt2" else "rezero"
        return verdict(
            "linear",
            f"the residual stream grows linearly, by about {added:.3g} in E[x²] per block "
            f"({stream_in:.3g} → {last:.3g} over {blocks} blocks), as branches behind a norm "
            f"do: each adds the same whatever the stream holds, so the deep blocks start near "
            f"the identity (Brock et al. 2021); to keep it bounded, try {bounded}.",
        )
    if ratio > STREAM_GROWING:
        return verdict(
            "growing",
            f"the residual stream grows {ratio:.3g}x in E[x²] over {blocks} blocks "
            f"({stream_in:.3g} → {last:.3g}), {factor * factor:.3f}x per block: deeper, it "
            f"explodes; {instead}.",
        )
    return verdict(
        "stable",
        f"the residual stream keeps its scale over {blocks} blocks (E[x²] {stream_in:.3g} → "
        f"{last:.3g}): {method} suits this residual network.",
    )


def _linear(stream_in: float, stream_out: Sequence[float]) -> bool:
    """Whether the stream grows by steady steps rather than by a steady factor: the
    relative growth of the last third of the blocks is under half that of the first."""
    ins = [stream_in, *stream_out[:-1]]
    growth = [out / max(x, 1e-30) - 1 for x, out in zip(ins, stream_out, strict=True)]
    third = max(1, len(growth) // 3)
    first, late = sum(growth[:third]) / third, sum(growth[-third:]) / third
    return len(growth) >= 3 and late < 0.5 * first
