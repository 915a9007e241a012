"""A sweep's run directory: found again on resume, filled trial by trial, summarized.

    runs/sweep-<UTC time>_<name>/
      sweep.yaml        the base config and the grid (itself a sweep file)
      meta.json         status, command, backend, counts, versions, the spec's hash
      trials/<nnn>_<point>/   a normal `winit train` run directory per trial
      results.csv       a row per trial; summary.csv a row per grid point over seeds
      summary.json      both, as JSON (what --json prints)
      heatmap_<metric>.png   final loss, final accuracy, steps to target by grid point

Re-running the same sweep (same base config and grid) finds its newest directory under
the runs root and runs only the trials without a summary there; a trial directory
without one (a failure, or a run killed while it was being written) is replaced. What an
earlier run left is read with care, and only winit's own is removed: resume.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import WinitError
from ..runs import (
    environment,
    new_run_dir,
    runs_root,
    utc_now,
    write_atomic,
    write_csv,
    write_json,
    write_run_files,
)
from .resume import (
    PREFIX,
    adopt_earlier_names,
    clear_temporary_files,
    clear_unfinished,
    earlier_runs,
    find_sweep_dir,
    finished_trials,
    sweep_lock,
)

if TYPE_CHECKING:
    from .grid import Sweep, Trial
    from .results import SweepPlan, SweepResult
    from .trial import TrialOutcome

BACKENDS = ("local", "ray")


class Display(Protocol):
    """A live display of a sweep's trials (view.SweepProgress)."""

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> Any: ...

    def start(self, index: int) -> None: ...

    def done(self, index: int, status: str, cost: float) -> None: ...

    def stopped(self) -> None: ...


class _NoDisplay:
    def __enter__(self) -> _NoDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def start(self, index: int) -> None:
        pass

    def done(self, index: int, status: str, cost: float) -> None:
        pass

    def stopped(self) -> None:
        pass


# (name, trials, trials done before, work to do) -> a display
DisplayFactory = Callable[[str, int, int, float], Display]


def sweep_meta(
    sweep: Sweep, status: str, command: str, backend: str, jobs: int | None, full_trials: bool
) -> dict[str, Any]:
    return {
        "status": status,
        "command": command,
        "experiment": {"command": "sweep", "name": sweep.name},
        "spec_hash": sweep.spec_hash(),
        "backend": backend,
        "jobs": jobs,
        "full_trials": full_trials,
        "trials": len(sweep.trials),
        "seed": sweep.base.seed,
        "started_at": utc_now(),
        "finished_at": None,
        "versions": environment(),
    }


def write_results(path: Path, result: SweepResult) -> list[str]:
    """results.csv, summary.csv, summary.json and the heatmaps; the PNGs' names."""
    from ..plots import png_bytes
    from ..serialize import json_safe, sweep_json
    from .heatmap import sweep_heatmap

    write_csv(path / "results.csv", [json_safe(r.row()) for r in result.results])
    write_csv(path / "summary.csv", [json_safe(g.row()) for g in result.groups])
    write_json(path / "summary.json", sweep_json(result))
    figures = []
    for metric in ("final_loss", "final_accuracy", "steps_to_target"):
        if result.sweep.group_axes and any(g.metrics[metric].n for g in result.groups):
            name = f"heatmap_{metric}.png"
            write_atomic(path / name, png_bytes(sweep_heatmap(result, metric)))
            figures.append(name)
    return figures


def prepare(sweep: Sweep, backend: str) -> set[str]:
    """Refuse what would fail every trial before any directory exists: a missing Ray,
    a device that is not there, data that cannot be made (and keep the data for the
    local workers, which inherit it). The devices the trials will run on."""
    from ..devices import resolve_device
    from ..trackers import check_trackers
    from .grid import point_text
    from .trial import data_key, dataset_for

    if backend not in BACKENDS:
        raise WinitError(f"--backend must be local or ray; got {backend!r}")
    check_trackers(sweep.base)
    if backend == "ray":
        from .ray import import_ray

        import_ray()
    requested = {t.config.device for t in sweep.trials}
    if backend == "ray":
        # the trials run on the cluster's machines: whether they have a GPU is asked of
        # the cluster once joined (check_cluster_gpus), not of this one
        devices = {d if d == "cuda" else resolve_device(d) for d in requested}
    else:
        devices = {resolve_device(device) for device in requested}
    base = data_key(sweep.base)
    seen: set[str] = set()
    for trial in sweep.trials:
        key = data_key(trial.config)
        if key not in seen and len(seen) < 32:  # beyond that, each worker makes its own
            seen.add(key)
            try:
                dataset_for(trial.config)
            except WinitError as err:
                if key == base:  # the grid is not to blame
                    raise
                raise WinitError(f"grid point {point_text(trial.point)}: {err}") from None
    return devices


def plan_sweep(sweep: Sweep, runs_dir: str | Path | None, fresh: bool, backend: str) -> SweepPlan:
    """`winit sweep --dry-run`, after the checks a run makes first (devices, data, Ray)."""
    from .results import SweepPlan

    prepare(sweep, backend)
    found = None if fresh else find_sweep_dir(runs_root(runs_dir), sweep)
    finished = len(finished_trials(sweep, found / "trials")) if found is not None else 0
    return SweepPlan(sweep, found, finished)


def open_sweep_dir(sweep: Sweep, runs_dir: str | Path | None, fresh: bool) -> Path:
    """The sweep's directory: its newest earlier one, or a new one with sweep.yaml."""
    from ..yamlio import to_yaml

    root = runs_root(runs_dir)
    found = None if fresh else find_sweep_dir(root, sweep)
    if found is not None:
        return found
    path = new_run_dir(root, sweep.name, prefix=PREFIX)
    write_atomic(path / "sweep.yaml", to_yaml(sweep.spec()))
    return path


def run_sweep(
    sweep: Sweep,
    *,
    runs_dir: str | Path | None = None,
    backend: str = "local",
    jobs: int | None = None,
    address: str | None = None,
    fresh: bool = False,
    progress: DisplayFactory | None = None,
    command: str = "",
    full_trials: bool = False,
) -> tuple[SweepResult, int]:
    """Run (or resume) the sweep into its directory; (the result, a stop signal's exit code).

    Ray is joined (or started) before the directory exists: a cluster that cannot be
    reached leaves nothing behind. `full_trials`: every trial also writes loss.png and
    its layers after training, as `winit train` does.
    """
    from ..parallel import usable_cores

    devices = prepare(sweep, backend)
    if backend == "local":
        jobs = jobs or usable_cores()
        if "cuda" in devices:
            jobs = 1  # one GPU: trials queue for it anyway, and CUDA does not survive fork
    if backend == "ray":
        from .ray import ray_cluster

        session: Any = ray_cluster(address, jobs)
    else:
        session = nullcontext()
    with session as ray:
        if ray is not None and "cuda" in devices:
            from .ray import check_cluster_gpus

            check_cluster_gpus(ray)
        path = open_sweep_dir(sweep, runs_dir, fresh)
        with sweep_lock(path):
            meta = sweep_meta(sweep, "running", command, backend, jobs, full_trials)
            meta.update(earlier_runs(path, full_trials))
            return _run_in(path, sweep, meta, ray, jobs, progress, full_trials)


def _run_in(
    path: Path,
    sweep: Sweep,
    meta: dict[str, Any],
    ray: Any,
    jobs: int | None,
    progress: DisplayFactory | None,
    full_trials: bool,
) -> tuple[SweepResult, int]:
    """The trials not finished in `path`, run and written one by one, then the summary."""
    from ..interrupts import GracefulStop
    from ..trackers import open_sweep_trackers
    from .results import TrialResult, summarize
    from .trial import TrialTask, run_local, trial_cost

    trials_dir = path / "trials"
    if os.path.lexists(trials_dir) and not trials_dir.is_dir():
        raise WinitError(f"{trials_dir}: not a directory; winit keeps a sweep's trials there")
    trials_dir.mkdir(exist_ok=True)
    try:
        adopt_earlier_names(sweep, trials_dir)
        finished = finished_trials(sweep, trials_dir)
        clear_unfinished(sweep, trials_dir, finished)
        clear_temporary_files(path)
    except OSError as err:  # a folder of it that cannot be listed: a hand-made mode 000
        where = err.filename or trials_dir
        raise WinitError(f"{where}: cannot read it to resume ({err.strerror})") from None
    earlier = len(finished)
    write_json(path / "meta.json", meta)
    todo = [t for t in sweep.trials if t.index not in finished]
    costs = {t.index: trial_cost(t.config) for t in todo}
    todo.sort(key=lambda t: -costs[t.index])  # the longest first: the shortest makespan
    tasks = [
        TrialTask(
            t.index,
            t.dirname,
            str(trials_dir / t.dirname),
            t.point,
            t.config,
            path.name,
            meta["command"],
            full_trials,
        )
        for t in todo
    ]
    stop = GracefulStop()
    work = sum(costs.values())
    bar = progress(sweep.name, len(sweep.trials), earlier, work) if progress else _NoDisplay()
    warnings: list[str] = []

    def on_done(outcome: TrialOutcome) -> None:
        trial = sweep.trials[outcome.index]  # a trial's index is its place in the grid
        if outcome.status != "interrupted":  # it runs again next time
            trial_dir = trials_dir / trial.dirname
            write_run_files(trial_dir, _trial_events(trial, outcome, path, warnings))
            finished[outcome.index] = TrialResult(
                trial, outcome.status, outcome.summary, outcome.error, outcome.seconds
            )
            trackers.each(lambda t: t.log_trial(trial.config, trial_dir, outcome.status,
                                                outcome.tracked))  # fmt: skip
        _warn_once(warnings, outcome.warnings)
        bar.done(outcome.index, outcome.status, costs[outcome.index])

    with stop:  # through the summary's writing too: a Ctrl-C then leaves whole files
        # opened here: a Ctrl-C while MLflow starts (seconds) stops the sweep as any other
        again = {t.dirname for t in todo}
        trackers = open_sweep_trackers(sweep.base, sweep.grid(), path, meta["command"], again)
        try:
            with bar:
                if ray is not None:
                    from .ray import run_on_ray

                    run_on_ray(ray, tasks, jobs, bar.start, on_done, stop)
                else:
                    run_local(tasks, jobs or 1, bar.start, on_done, stop)
                bar.stopped()
        except BaseException as err:
            # What finished is on disk; say so in the results, without hiding `err`.
            status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
            with suppress(OSError, WinitError):
                _finish(path, meta, summarize(sweep, str(path), status, finished, earlier))
            trackers.each(lambda t: t.finish(status))
            raise
        if len(finished) == len(sweep.trials):
            failed = any(r.status == "failed" for r in finished.values())
            status = "incomplete" if failed else "completed"
        else:
            status = "interrupted" if stop() else "incomplete"
        result = _finish(path, meta, summarize(sweep, str(path), status, finished, earlier))
        trackers.each(lambda t: t.finish(result.status))
    result.warnings = _warn_once(trackers.warnings, warnings)
    return result, stop.exit_code


def _warn_once(warnings: list[str], more: list[str]) -> list[str]:
    """`warnings` with those of `more` about a tracker it has no warning of yet: a tracker
    that fails in every trial's worker is one warning, not one per trial."""
    for warning in more:
        if warning.split(" ", 1)[0] not in {w.split(" ", 1)[0] for w in warnings}:
            warnings.append(warning)
    return warnings


def _trial_events(
    trial: Trial, outcome: TrialOutcome, sweep_dir: Path, warnings: list[str]
) -> dict[str, str | bytes]:
    """The trial's files for its directory. Its TensorBoard run (tb/...) stays among them,
    or goes to log_dir/<sweep directory's name>/<trial> where log_dir is set; one that
    cannot be written there is a warning, as any tracker's failure."""
    from ..trackers import EVENTS_DIR

    log_dir, folder = trial.config.log_dir, f"{EVENTS_DIR}/"
    events = {k: v for k, v in outcome.files.items() if k.startswith(folder)}
    if log_dir is None or not events:
        return outcome.files
    target = Path(log_dir) / sweep_dir.name / trial.dirname
    try:
        write_run_files(target, {k.removeprefix(folder): v for k, v in events.items()})
    except (OSError, WinitError) as err:
        _warn_once(warnings, [f"tensorboard did not write trial {trial.dirname}'s run ({err})"])
    return {k: v for k, v in outcome.files.items() if k not in events}


def _finish(path: Path, meta: dict[str, Any], result: SweepResult) -> SweepResult:
    """The sweep's result files and its final meta.json."""
    result.figures = write_results(path, result)
    meta.update(
        status=result.status,
        finished_at=utc_now(),
        counts=result.counts,
        ran=result.ran,
        resumed=result.resumed,
    )
    write_json(path / "meta.json", meta)
    return result


__all__ = [
    "find_sweep_dir",
    "finished_trials",
    "open_sweep_dir",
    "plan_sweep",
    "run_sweep",
    "write_results",
]
