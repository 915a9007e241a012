"""A saved run directory as `winit rerun` reads it, checked whole before anything runs.

meta.json's "experiment" says how the run ran (session.py fills it per command and
runs.RunWriter writes it; a sweep's trial adds its place in the sweep, sweep/trial.py);
config.yaml goes through the config loader; the result files the rerun will be compared
with must be readable. Each problem is one WinitError line naming the file and the field,
so a directory that cannot be repeated or compared is refused before any experiment runs
and before any directory exists.
"""

from __future__ import annotations

import csv
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WinitError
from .limits import MAX_CSV_BYTES, excerpt, read_json, size_text
from .printable import shown

if TYPE_CHECKING:
    from .config import Config
    from .initspec import InitSpec

# What must match bit for bit; summary.json names its own run directory, so that key is
# left out of the comparison.
COMPARED = ("metrics.csv", "layers.csv", "summary.json")
COMMANDS = ("train", "compare", "stats")
# The keys each command's "experiment" may have (session.train, compare, stats; a trial's
# in sweep/trial.py). Another key is refused: this winit would not repeat what it means.
EXPERIMENT_KEYS = {
    "train": {"command", "threads", "measured_after", "sweep"},
    "compare": {"command", "methods", "spp"},
    "stats": {"command", "spp"},
}
SWEEP_KEYS = {"dir", "trial", "grid_point"}
MAX_THREADS = 1024  # torch threads: more than any machine has cores


@dataclass(frozen=True)
class Experiment:
    """meta.json's "experiment", checked: how the run ran."""

    command: str  # train | compare | stats
    threads: int | None = None  # torch threads a train run used (1: a sweep's trial)
    measured_after: bool = True  # train: the layers measured again after training
    spp: bool = False  # compare, stats: signal propagation of conv layers or blocks too
    methods: tuple[tuple[str, dict[str, Any]], ...] = ()  # compare: (method, params as given)
    sweep: dict[str, Any] | None = None  # a sweep's trial: its sweep dir, name, grid point


@dataclass
class SavedRun:
    path: Path
    config: Config
    experiment: Experiment
    specs: list[InitSpec] = field(default_factory=list)  # compare's inits
    compared: tuple[str, ...] = ()  # the result files of COMPARED the original has


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    names = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
    return names.get(type(value), "a number")


def _got(value: Any) -> str:
    """What a JSON value is, as an error says it: `got a string '4'`, `got null`."""
    if isinstance(value, (dict, list, bool)) or value is None:
        return f"got {_json_type(value)}"
    return f"got {_json_type(value)} {excerpt(value)}"


def _key(key: str) -> str:
    return shown(key) if key.isidentifier() else excerpt(key)


def _boolean(where: str, experiment: Mapping[str, Any], key: str, default: bool) -> bool:
    value = experiment.get(key, default)
    if not isinstance(value, bool):
        raise WinitError(f"{where}: experiment.{key}: must be true or false; {_got(value)}")
    return value


def _threads(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_THREADS:
        raise WinitError(
            f"{where}: experiment.threads: must be a whole number from 1 to {MAX_THREADS}; "
            + _got(value)
        )
    return value


def _sweep(where: str, value: Any) -> dict[str, Any]:
    expected = "an object with dir, trial and grid_point"
    if not isinstance(value, dict):
        raise WinitError(f"{where}: experiment.sweep: must be {expected}; {_got(value)}")
    for key in sorted(SWEEP_KEYS | set(value)):
        if key not in value:
            raise WinitError(f"{where}: experiment.sweep.{key}: missing")
        if key not in SWEEP_KEYS:
            raise WinitError(f"{where}: experiment.sweep.{_key(key)}: not a key winit writes")
        kind = dict if key == "grid_point" else str
        if not isinstance(value[key], kind):
            must = "an object" if kind is dict else "a string"
            raise WinitError(f"{where}: experiment.sweep.{key}: must be {must}; {_got(value[key])}")
    return value


def _methods(where: str, value: Any) -> tuple[tuple[str, dict[str, Any]], ...]:
    if not isinstance(value, list) or not value:
        raise WinitError(
            f"{where}: experiment.methods: must be a non-empty array of "
            f'{{"method": ..., "params": {{...}}}}; {_got(value)}'
        )
    methods = []
    for i, entry in enumerate(value):
        at = f"{where}: experiment.methods.{i}"
        if not isinstance(entry, dict):
            raise WinitError(f'{at}: must be an object with "method" and "params"; {_got(entry)}')
        for key in sorted({"method", "params"} | set(entry)):
            if key not in entry:
                raise WinitError(f"{at}.{key}: missing")
            if key not in ("method", "params"):
                raise WinitError(f"{at}.{_key(key)}: not a key winit writes")
        if not isinstance(entry["method"], str):
            raise WinitError(f"{at}.method: must be a method's name; {_got(entry['method'])}")
        if not isinstance(entry["params"], dict):
            raise WinitError(f"{at}.params: must be an object; {_got(entry['params'])}")
        methods.append((entry["method"], entry["params"]))
    return tuple(methods)


def _command(where: str, experiment: Mapping[str, Any]) -> str:
    if "command" not in experiment:
        raise WinitError(f"{where}: experiment.command: missing; it says which experiment ran")
    command = experiment["command"]
    if command == "sweep":
        raise WinitError(
            f"{where}: experiment.command: sweep; `winit sweep SWEEP.yaml --fresh` repeats a "
            "sweep, and `winit rerun` repeats one of its trials/"
        )
    if command == "reproduce":
        raise WinitError(
            f"{where}: experiment.command: reproduce; `winit reproduce "
            f"{shown(str(experiment.get('name', 'NAME')))}` repeats a reproduction"
        )
    if command not in COMMANDS:
        raise WinitError(
            f"{where}: experiment.command: must be train, compare or stats; {_got(command)}"
        )
    return command


def read_experiment(path: Path) -> Experiment:
    """meta.json's "experiment" of the run directory `path`, checked (read bounded)."""
    where = path / "meta.json"
    meta = read_json(where)
    if not isinstance(meta, dict):
        raise WinitError(f"{where}: must be the JSON object winit writes; {_got(meta)}")
    if "experiment" not in meta:
        raise WinitError(f"{where}: experiment: missing; it says which experiment ran")
    experiment = meta["experiment"]
    if not isinstance(experiment, dict):
        raise WinitError(f"{where}: experiment: must be an object; {_got(experiment)}")
    command = _command(str(where), experiment)
    for key in experiment:
        if key not in EXPERIMENT_KEYS[command]:
            raise WinitError(
                f"{where}: experiment.{_key(key)}: not a key of a {command} run (written by "
                "another version of winit?)"
            )
    w = str(where)
    return Experiment(
        command=command,
        threads=_threads(w, experiment["threads"]) if "threads" in experiment else None,
        measured_after=_boolean(w, experiment, "measured_after", True),
        spp=_boolean(w, experiment, "spp", False),
        methods=_methods(w, experiment.get("methods")) if command == "compare" else (),
        sweep=_sweep(w, experiment["sweep"]) if "sweep" in experiment else None,
    )


def method_specs(cfg: Config, experiment: Experiment, where: str) -> list[InitSpec]:
    """compare's inits, each checked against the config's network, as `winit compare` checks
    its --methods and --param."""
    from .initspec import InitSpecError

    specs: list[InitSpec] = []
    for i, (method, params) in enumerate(experiment.methods):
        at = f"{where}: experiment.methods.{i}"
        try:
            spec = cfg.init.spec_for(method, params)
        except InitSpecError as err:
            part = {"method": "method", "gain": "params.gain"}.get(err.field, "params")
            raise WinitError(f"{at}.{part}: {shown(str(err), 300)}") from None
        try:
            spec.check_plan(cfg.model.plan)
        except WinitError as err:
            raise WinitError(f"{at}.method: {shown(str(err), 300)}") from None
        if any(s.method == spec.method for s in specs):
            raise WinitError(f"{at}.method: {spec.method} is compared twice")
        specs.append(spec)
    return specs


def check_csv(path: Path) -> None:
    """A CSV file winit wrote: a regular file of at most MAX_CSV_BYTES, UTF-8, a header row
    of column names, and every row as wide as the header (blank lines are skipped)."""
    try:
        info = path.stat()
    except OSError as err:
        raise WinitError(f"{path}: cannot read it ({err.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise WinitError(f"{path}: not a regular file")
    if info.st_size > MAX_CSV_BYTES:
        raise WinitError(
            f"{path}: larger than {size_text(MAX_CSV_BYTES)}, the limit for a CSV file"
        )
    width = 0
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            for row in reader:
                if not row:
                    continue
                if not width:
                    if not all(cell and cell.isprintable() for cell in row):
                        raise WinitError(f"{path}: line {reader.line_num}: not a header row")
                    width = len(row)
                elif len(row) != width:
                    raise WinitError(
                        f"{path}: line {reader.line_num}: {len(row)} cells, and the header "
                        f"has {width}"
                    )
    except UnicodeDecodeError:
        raise WinitError(f"{path}: not UTF-8 text, so not a CSV file winit wrote") from None
    except csv.Error as err:
        raise WinitError(f"{path}: not a CSV file winit wrote ({shown(str(err), 80)})") from None
    except OSError as err:
        raise WinitError(f"{path}: cannot read it ({err.strerror})") from None
    if not width:
        raise WinitError(f"{path}: empty; no header row")


def check_results(path: Path) -> tuple[str, ...]:
    """The result files of COMPARED that the run directory `path` has, each readable."""
    present = []
    for name in COMPARED:
        file = path / name
        if not (file.exists() or file.is_symlink()):
            continue
        if name.endswith(".csv"):
            check_csv(file)
        else:
            data = read_json(file)
            if not isinstance(data, dict):
                raise WinitError(f"{file}: must be the JSON object winit writes; {_got(data)}")
        present.append(name)
    if not present:
        raise WinitError(f"{path}: has none of {', '.join(COMPARED)} to compare against")
    return tuple(present)


def _made_where(path: Path, error: str) -> str:
    """Where the run's model file was, for a rerun that cannot find it (a relative path
    from another directory)."""
    if "model.module: no such file" not in error:
        return ""
    try:
        found = read_json(path / "meta.json").get("model_file", {}).get("path")
    except (WinitError, AttributeError):
        return ""
    if not isinstance(found, str):
        return ""
    where = shown(found, 300)
    return f" (the run's model file was {where}: rerun from the directory it was run in)"


def load_saved_run(path: str | Path) -> SavedRun:
    """The run directory `path`, every file the rerun reads checked; a WinitError, one line
    naming the file and the field, otherwise."""
    from .experiments import check_spp
    from .loading import load_config

    path = Path(path)
    if not path.is_dir():
        raise WinitError(f"{path}: not a run directory")
    if (path / "sweep.yaml").is_file():
        raise WinitError(
            f"{path} is a sweep: `winit sweep {path / 'sweep.yaml'} --fresh` repeats it "
            "(without --fresh it resumes), and `winit rerun` repeats one of its trials/"
        )
    for name in ("config.yaml", "meta.json"):
        if not (path / name).is_file():
            raise WinitError(f"{path}: no {name}; is it a run directory written by winit?")
    experiment = read_experiment(path)
    try:
        cfg = load_config(path / "config.yaml", command=experiment.command)
    except WinitError as err:
        hint = _made_where(path, str(err))
        if not hint:
            raise
        raise WinitError(f"{err}{hint}") from None
    specs = method_specs(cfg, experiment, str(path / "meta.json"))
    if experiment.spp:
        try:
            check_spp(cfg)
        except WinitError as err:
            raise WinitError(f"{path / 'meta.json'}: experiment.spp: {err}") from None
    return SavedRun(path, cfg, experiment, specs, check_results(path))
