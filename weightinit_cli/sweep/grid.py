"""A sweep's grid: the base config, its axes, and every trial's validated config. No torch.

A sweep file is an ordinary config with a `grid:` of dotted field paths to lists of
values (and optionally `seeds: N`); `--grid model.depth=5,10,20` adds or replaces an
axis from the command line. Every trial is the base config with one value of each axis,
validated before anything runs, so a bad value is refused with the field it is about.

A trial's seed is the sweep's seed unless `seed` is an axis (`seeds: N` makes it one:
the sweep seed, +1, ..., +N-1). Trials that differ only in other axes therefore share
their data and batch order, as `winit compare`'s methods do: a difference between two
methods at one seed is the methods' doing, not the sampling's.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import WinitError
from ..limits import clip, excerpt

if TYPE_CHECKING:
    from ..config import Config

REPLICATE_AXIS = "seed"  # the axis results are averaged over
MAX_TRIALS = 100_000
MAX_SEEDS = 10_000


@dataclass(frozen=True)
class Axis:
    key: str  # a dotted config path: model.depth
    values: tuple[Any, ...]


@dataclass
class Trial:
    index: int  # position in the grid, the first axis varying slowest
    point: dict[str, Any]  # axis key -> this trial's value, in axis order
    config: Config
    dirname: str  # its run directory under trials/


@dataclass
class Sweep:
    name: str
    base: Config
    axes: list[Axis]
    trials: list[Trial]

    @property
    def group_axes(self) -> list[Axis]:
        """The axes a result is reported by: all but the replicate (seed) axis."""
        return [axis for axis in self.axes if axis.key != REPLICATE_AXIS]

    def grid(self) -> dict[str, list[Any]]:
        """Each axis's field and its values, in axis order."""
        return {axis.key: list(axis.values) for axis in self.axes}

    def spec(self) -> dict[str, Any]:
        """What sweep.yaml holds: the resolved base config plus the grid; itself a sweep file."""
        from ..loading import config_data

        return {**config_data(self.base), "grid": self.grid()}

    def spec_hash(self) -> str:
        """12 hex digits identifying the sweep's experiments (its name left out). The axes
        keep their order: it decides the trials' directory names."""
        from ..config import TRACKER_FIELDS
        from ..loading import config_data

        # where it is also shown is not what it runs: a resume may add or drop a tracker
        drop = {"name", *TRACKER_FIELDS}
        base = {k: v for k, v in config_data(self.base).items() if k not in drop}
        spec = {"base": base, "grid": [[key, values] for key, values in self.grid().items()]}
        canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def value_text(value: Any) -> str:
    """A grid value as people read it: a string as it is, anything else as JSON; a long
    one cut to an excerpt (a value may hold thousands of items)."""
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, (list, dict)) and len(value) > 16:
        return excerpt(value)
    return clip(json.dumps(value, default=str))


def point_text(point: Mapping[str, Any], whole: bool = False) -> str:
    """A grid point as `model.depth=5 init.method=he`; long values cut, unless `whole`
    (the JSON and a trial name's digest need every character)."""
    if whole:
        return " ".join(
            f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}"
            for key, value in point.items()
        )
    return " ".join(f"{clip(key, 60)}={value_text(value)}" for key, value in point.items())


def parse_grid_option(text: str) -> tuple[str, list[Any]]:
    """`--grid KEY=V1,V2,...` (or `KEY=[V1, V2]` for values with commas) as (key, values)."""
    from ..loading import parse_value

    key, equals, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not equals or not key or not raw:
        raise WinitError(
            f"--grid needs KEY=V1,V2,..., e.g. model.depth=5,10,20; got {excerpt(text)}"
        )
    try:
        if raw.startswith("["):
            values = parse_value(raw)
            if not isinstance(values, list):
                raise WinitError(f"{excerpt(raw)} is not a list")
        else:
            parts = [part.strip() for part in raw.split(",")]
            if len(parts) > MAX_TRIALS:  # before each is parsed
                raise WinitError(f"{len(parts):,} values; the limit is {MAX_TRIALS:,} trials")
            if "" in parts:
                raise WinitError("an empty value between commas")
            values = [parse_value(part) for part in parts]
    except WinitError as err:
        hint = "" if raw.startswith("[") else " (values with commas go in a list: KEY=[V1, V2])"
        raise WinitError(f"--grid {clip(text)}: {err}{hint}") from None
    return key, values


def _flatten(grid: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, Any]:
    """`{model: {depth: [..]}}` and `{model.depth: [..]}` both as {"model.depth": [..]}."""
    flat: dict[str, Any] = {}
    for key, values in grid.items():
        if not isinstance(key, str) or not key.strip():
            raise WinitError(f"{source}: grid: {excerpt(key)} is not a config field path")
        path = f"{prefix}{key}"
        found = (
            _flatten(values, source, f"{path}.") if isinstance(values, Mapping) else {path: values}
        )
        for name, value in found.items():
            if name in flat:
                raise WinitError(f"{source}: grid.{name} is given twice")
            flat[name] = value
    return flat


def _axis(key: str, values: Any, where: str) -> Axis:
    from ..config import Config

    parts = key.split(".")
    if "" in parts:
        raise WinitError(f"{where}: {excerpt(key)} has an empty part")
    if parts[0] == "name":
        raise WinitError(f"{where}: name is the sweep's name, not an axis")
    if parts[0] not in Config.model_fields:
        fields = ", ".join(f for f in Config.model_fields if f != "name")
        raise WinitError(f"{where}: unknown field {clip(parts[0], 40)} (expected one of {fields})")
    if not isinstance(values, list):
        raise WinitError(
            f"{where}: expected a list of values, e.g. [5, 10, 20]; got {excerpt(values)}"
        )
    if not values:
        raise WinitError(f"{where}: the list of values is empty")
    if len(values) > MAX_TRIALS:  # before anything looks at each value
        raise WinitError(
            f"{where}: {len(values):,} values make more than {MAX_TRIALS:,} trials, the limit"
        )
    seen: set[str] = set()
    for value in values:
        shown = json.dumps(value, sort_keys=True, default=str)
        if shown in seen:
            raise WinitError(f"{where}: {value_text(value)} is listed twice")
        seen.add(shown)
    return Axis(key, tuple(values))


def seed_axis(base_seed: int, seeds: Any, where: str) -> Axis:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
        raise WinitError(
            f"{where}: must be a whole number from 1 to {MAX_SEEDS}; got {excerpt(seeds)}"
        )
    return Axis(REPLICATE_AXIS, tuple(base_seed + k for k in range(seeds)))


def _value_slug(value: Any, before_13: bool = False) -> str:
    """A value as part of a file name that tells it apart from the axis's other values:
    -0.1 is not 0.1, 1e+308 is not 1e-308, and a string that had to change ("a b") says
    so with a digest of what it was. `before_13`: the name winit gave before it kept signs
    and exponents (issue 13), by which a sweep directory of then is found again."""
    from ..runs import slug

    if isinstance(value, (list, tuple)):
        return "x".join(_value_slug(v, before_13) for v in value)
    if isinstance(value, Mapping):
        return "-".join(f"{k}-{_value_slug(v, before_13)}" for k, v in value.items())
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    if before_13:
        return slug(text)
    if isinstance(value, (int, float)):
        return json.dumps(value).replace("+", "")  # digits, ".", "e" and "-" only
    safe = slug(text)
    if safe == text:
        return safe
    return f"{safe}-{hashlib.sha256(text.encode('utf-8', 'surrogateescape')).hexdigest()[:6]}"


def axis_labels(axes: Sequence[Axis]) -> dict[str, str]:
    """Short column names: the last part of each key (`depth`), the whole key if shared."""
    last = [axis.key.rsplit(".", 1)[-1] for axis in axes]
    return {
        axis.key: name if last.count(name) == 1 else axis.key
        for axis, name in zip(axes, last, strict=True)
    }


def earlier_dirname(sweep: Sweep, trial: Trial) -> str:
    """The name an older winit gave `trial`'s directory (often the same as today's)."""
    labels = axis_labels(sweep.axes)
    old_slug = functools.partial(_value_slug, before_13=True)
    return _dirname(trial.index, len(sweep.trials), trial.point, labels, old_slug)


def _dirname(
    index: int,
    count: int,
    point: Mapping[str, Any],
    labels: Mapping[str, str],
    value_slug: Any = _value_slug,
) -> str:
    label = "_".join(f"{labels[key]}={value_slug(value)}" for key, value in point.items())
    if len(label) > 80:  # a file name has room for 255 bytes; a person for less
        whole = point_text(point, whole=True).encode("utf-8", "surrogateescape")
        digest = hashlib.sha256(whole).hexdigest()[:8]
        label = f"{label[:70]}-{digest}"
    return f"{index:0{len(str(count - 1))}d}_{label}"


def build_sweep(
    base: Config,
    axes: Sequence[Axis],
    source: str,
    given: Sequence[str] = (),
) -> Sweep:
    """Every grid point as a validated trial config; the first bad one is a WinitError.
    `given`: the fields the user set (a data.name axis leaves them, and refills the rest
    from each point's dataset)."""
    from ..data_defaults import refill_for_dataset
    from ..loading import config_data, config_from_data, config_hash, set_dotted

    if not axes:
        raise WinitError(
            "a sweep needs a grid: a grid: section in the sweep file, or --grid KEY=V1,V2 "
            "(e.g. --grid model.depth=5,10,20)"
        )
    count = math.prod(len(axis.values) for axis in axes)
    if count > MAX_TRIALS:
        raise WinitError(f"{source}: the grid has {count:,} trials; the limit is {MAX_TRIALS:,}")
    base_data = config_data(base)
    labels = axis_labels(axes)
    trials: list[Trial] = []
    seen: dict[str, dict[str, Any]] = {}
    for index, values in enumerate(itertools.product(*(axis.values for axis in axes))):
        point = {axis.key: value for axis, value in zip(axes, values, strict=True)}
        where = f"{source}: grid point {point_text(point)}"
        data = json.loads(json.dumps(base_data))
        for key, value in point.items():
            # a copy: the config must never share (and later edit) the axis's own value
            set_dotted(data, key.split("."), copy.deepcopy(value), where)
        if "data.name" in point:
            data = refill_for_dataset(data, base.data.name, [*given, *point])
        cfg = config_from_data(data, where)
        if cfg.train.steps == 0:
            raise WinitError(
                f"{where}: train.steps: a sweep trains its trials, so it needs at least 1 step"
            )
        digest = config_hash(cfg)
        if digest in seen:
            raise WinitError(
                f"{source}: grid points {point_text(seen[digest])} and {point_text(point)} "
                "are the same experiment (an alias, or a value equal to another)"
            )
        seen[digest] = point
        trials.append(Trial(index, point, cfg, _dirname(index, count, point, labels)))
    return Sweep(base.name or "sweep", base, list(axes), trials)


def load_sweep(
    path: str | Path | None,
    grid_options: Sequence[str] = (),
    overrides: Sequence[str] = (),
    layer: str | None = None,
    seeds: int | None = None,
) -> Sweep:
    """The sweep of a file (config + grid:) and/or --grid options, with --set and --seeds."""
    from ..loading import given_keys, load_config, read_config_file

    content: dict[str, Any] = read_config_file(path) if path is not None else {}
    source = str(path) if path is not None else "--grid"
    grid = content.pop("grid", None)
    file_seeds = content.pop("seeds", None)
    kept = content if path else None
    try:
        base = load_config(path, overrides, "sweep", layer, content=kept)
    except WinitError:
        # a base that fits only the grid's datasets (a --model on mnist) is checked on the
        # first dataset of the data.name axis, which sets it in every trial anyway
        first = _first_dataset(grid, grid_options)
        if first is None:
            raise
        base_sets = [*overrides, f"data.name={json.dumps(first)}"]
        base = load_config(path, base_sets, "sweep", layer, content=kept)

    if grid is not None and not isinstance(grid, Mapping):
        raise WinitError(
            f"{source}: grid: expected a mapping of config fields to lists of values "
            f"(model.depth: [5, 10, 20]); got {excerpt(grid)}"
        )
    axes = {
        key: _axis(key, values, f"{source}: grid.{key}")
        for key, values in _flatten(grid or {}, source).items()
    }
    given: set[str] = set()
    for text in grid_options:
        key, values = parse_grid_option(text)
        if key in given:
            raise WinitError(f"--grid {clip(key)} is given twice; give each axis once")
        given.add(key)
        axes[key] = _axis(key, values, f"--grid {clip(text)}")  # replaces the file's, in its place
    _refuse_overlaps(list(axes))
    if seeds is not None:
        chosen_seeds, where = seeds, "--seeds"
    else:
        chosen_seeds, where = file_seeds, f"{source}: seeds"
    if chosen_seeds is not None:
        if REPLICATE_AXIS in axes:
            raise WinitError(
                f"{where}: the grid already has a seed axis; give seeds one way, not both"
            )
        axes[REPLICATE_AXIS] = seed_axis(base.seed, chosen_seeds, where)
    if base.train.steps == 0 and "train.steps" not in axes:
        raise WinitError(
            f"{'' if path is None else f'{path}: '}train.steps is 0: a sweep trains its "
            "trials, so it needs at least 1 step (winit stats, and compare --steps 0, "
            "measure at init)"
        )
    given = given_keys(content, overrides)
    return build_sweep(base, list(axes.values()), source, given)


def _first_dataset(grid: Any, grid_options: Sequence[str]) -> str | None:
    """The first value of a data.name axis, if the grid has one (a string)."""
    values: Any = None
    if isinstance(grid, Mapping):
        values = grid.get("data.name")
        if values is None and isinstance(grid.get("data"), Mapping):
            values = grid["data"].get("name")
    for text in grid_options:
        try:
            key, parsed = parse_grid_option(text)
        except WinitError:
            continue  # named properly when the axes are made
        if key == "data.name":
            values = parsed
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0]
    return None


def _refuse_overlaps(keys: Sequence[str]) -> None:
    """Two axes on one field (init.params and init.params.std) would fight over it."""
    for key in keys:
        for other in keys:
            if other != key and other.startswith(f"{key}."):
                raise WinitError(
                    f"grid: the axes {key} and {other} both set {other}; keep one of them"
                )


__all__ = [
    "Axis",
    "Sweep",
    "Trial",
    "axis_labels",
    "build_sweep",
    "load_sweep",
    "parse_grid_option",
    "point_text",
    "seed_axis",
    "value_text",
]
