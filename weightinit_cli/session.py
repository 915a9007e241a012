"""One run of a command, start to finish: where `winit train`, `compare`, `stats --out`
and `reproduce` run, and, inside a worker, each trial of a sweep.

A session resolves the device and builds the data first, so that bad input is refused
before any directory exists. Then it opens the run directory (runs.RunWriter), runs the
experiment with its progress sent to a callback and Ctrl-C or SIGTERM turned into a
stop at the next step, writes the result files and marks the run finished. It returns
the result data and where it went; the CLI renders them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .devices import resolve_device
from .runs import (
    RunWriter,
    check_creatable,
    csv_text,
    exact_run_dir,
    new_run_dir,
    refuse_overwrite,
    runs_root,
    write_run_files,
)

if TYPE_CHECKING:
    from .config import Config
    from .data import Dataset
    from .experiments import CompareResult, TrainResult
    from .initspec import InitSpec
    from .reproduce import Finding, Reproduction
    from .trackers import Trackers
    from .train import LogPoint, TrainHistory


class Progress(Protocol):
    """A live display of training runs, one row per label (render.TrainProgress)."""

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> Any: ...

    def update(self, label: str, point: LogPoint) -> None: ...


# (the steps of each run, a label per run) -> a display; the CLI passes one, or None
ProgressFactory = Callable[[int, Sequence[str]], Progress]


@dataclass
class Recorded:
    """An experiment's result, where it was written, and the exit code of a stop signal."""

    result: Any
    run_dir: Path | None
    exit_code: int = 0  # 130 / 143 after Ctrl-C / SIGTERM
    files: dict[str, str | bytes] | None = None  # a run kept in memory (a sweep trial)
    warnings: list[str] = field(default_factory=list)  # a tracker that stopped, say
    # a sweep trial's numbers for the trackers its driver feeds (trackers.MetricsRecorder)
    tracked: dict[str, Any] | None = None


def _prepare(cfg: Config, data: Dataset | None = None) -> tuple[str, Dataset]:
    """The device and the data: everything that can refuse a run, before it has a home."""
    from .experiments import load_dataset

    device = resolve_device(cfg.device)
    return device, data if data is not None else load_dataset(cfg)


def _run(
    writer: RunWriter,
    cfg: Config,
    run: Callable[[Callable[[int, LogPoint], None], Callable[[], bool]], Any],
    labels: Sequence[str],
    write: Callable[[RunWriter, Any], str],
    *,
    by_method: bool = False,
    progress: ProgressFactory | None = None,
    should_stop: Callable[[], bool] | None = None,
    trackers: Trackers | None = None,
) -> tuple[Any, int]:
    """The lifecycle: metrics as they come (to the trackers too), progress, a clean stop,
    the files, the status.

    `write(writer, result)` adds the result files and returns the run's status. Without
    `should_stop` (a command in the terminal), Ctrl-C and SIGTERM request the stop.
    """
    from .interrupts import GracefulStop
    from .serialize import metrics_columns, metrics_row

    names = [layer.name for layer in cfg.model.plan.weighted]
    extra = ["method"] if by_method else []
    writer.open_metrics(metrics_columns(names, *extra, weight_spectra=cfg.train.weight_spectra))
    stop = GracefulStop() if should_stop is None else None
    stopped = should_stop or stop
    display = progress(cfg.train.steps, labels) if progress is not None else None

    def on_log(index: int, point: LogPoint) -> None:
        extra = {"method": labels[index]} if by_method else {}
        writer.append_metrics(metrics_row(point, names, **extra))
        if trackers:
            trackers.log_point(labels[index], point, names)
        if display is not None:
            display.update(labels[index], point)

    started = time.perf_counter()
    try:
        with stop or nullcontext(), display or nullcontext():
            result = run(on_log, stopped)
        status = write(writer, result)
    except BaseException as err:
        writer.finish("interrupted" if isinstance(err, KeyboardInterrupt) else "failed", True)
        raise
    _finish(writer, "interrupted" if stopped() else status, started)
    return result, stop.exit_code if stop is not None else 0


def _open_trackers(
    writer: RunWriter, cfg: Config, path: Path, labels: list[str], command: str
) -> Trackers:
    """The run's trackers (trackers.open_trackers): a Ctrl-C while one starts (seconds,
    for MLflow) leaves the run directory interrupted, not running."""
    from .trackers import open_trackers

    try:
        return open_trackers(cfg, path, labels, command)
    except BaseException as err:
        writer.finish("interrupted" if isinstance(err, KeyboardInterrupt) else "failed", True)
        raise


def _finish(writer: RunWriter, status: str, started: float) -> dict[str, str | bytes]:
    """Mark the run finished, with how long it ran (meta.json's timing.run_seconds)."""
    writer.meta.setdefault("timing", {})["run_seconds"] = round(time.perf_counter() - started, 4)
    return writer.finish(status)


# --------------------------------------------------------------------------- train


def _layer_rows(
    layers: Sequence[Any], point: LogPoint | None, names: list[str], **extra: Any
) -> list[dict[str, Any]]:
    """layers.csv rows: each layer's statistics, then its weight metrics at `point` (the
    log point of the same weights) where they were logged."""
    from .serialize import layer_row, weights_at

    weights = weights_at(point, names)
    return [{**layer_row(layer, **extra), **weights.get(layer.name, {})} for layer in layers]


def _logged_spectra(histories: dict[str, TrainHistory]) -> bool:
    return any(p.layer_weights for h in histories.values() for p in h.history)


def _spectra_png(writer: RunWriter, histories: dict[str, TrainHistory], title: str) -> None:
    """spectra.png, where weight metrics were logged."""
    from .plots import png_bytes, weight_metrics_figure

    if _logged_spectra(histories):
        writer.add("spectra.png", png_bytes(weight_metrics_figure(histories, title)))


def _train_files(
    writer: RunWriter, result: TrainResult, run_dir: str | None, plots: bool = True
) -> str:
    """layers.csv (at init, and after training if measured), summary.json, loss.png,
    spectra.png, and the loop's timing in meta.json; the history's status."""
    from .serialize import train_json

    history = result.history
    names, points = history.layer_names, history.history
    rows = _layer_rows(result.before.layers, points[0] if points else None, names, when="init")
    if result.after is not None:
        # the last point holds the final weights unless the run stopped between log steps
        last = points[-1] if points and points[-1].step == history.steps else None
        rows += _layer_rows(result.after.layers, last, names, when="final")
    writer.add("layers.csv", csv_text(rows))
    writer.add("summary.json", json.dumps(train_json(result, run_dir), indent=2))
    if plots:
        from .plots import loss_curves, png_bytes

        histories = {result.before.method: history}
        writer.add("loss.png", png_bytes(loss_curves(histories, title=result.name)))
        _spectra_png(writer, histories, f"{result.name}: weight spectra during training")
    per_second = round(history.steps / history.seconds, 2) if history.seconds else None
    writer.meta["timing"] = {
        "train_loop_seconds": round(history.seconds, 4),
        "steps_per_second": per_second,
    }
    return history.status


def _training(
    cfg: Config, data: Dataset, device: str, measure_after: bool, threads: int | None = None
) -> Callable[[Callable, Callable[[], bool]], TrainResult]:
    """The experiment of a training run, for _run: its log points are those of label 0."""
    from .experiments import run_train
    from .parallel import one_torch_thread

    def run(on_log: Callable, stop: Callable[[], bool]) -> TrainResult:
        with one_torch_thread() if threads == 1 else nullcontext():
            return run_train(
                cfg,
                data,
                device,
                on_log=lambda point: on_log(0, point),
                should_stop=stop,
                measure_after=measure_after,
            )

    return run


def _run_status(history_status: str) -> str:
    """A train run directory's status: a stuck run completed (a sweep's trial says stuck)."""
    return history_status if history_status in ("diverged", "interrupted") else "completed"


def train(
    cfg: Config,
    *,
    runs_dir: str | Path | None = None,
    progress: ProgressFactory | None = None,
    command: str = "",
    threads: int | None = None,
    measure_after: bool = True,
) -> Recorded:
    """`winit train`: the config's init, trained, in a new run directory. `threads`: the
    torch threads to train on, and `measure_after`: whether the layers are measured again
    after training (1 and no: `winit rerun` of a sweep's trial, which ran so)."""
    from .trackers import check_trackers, final_metrics

    check_trackers(cfg)
    device, data = _prepare(cfg)
    experiment: dict[str, Any] = {"command": "train"}
    if threads:
        experiment["threads"] = threads
    if not measure_after:
        experiment["measured_after"] = False
    path = new_run_dir(runs_root(runs_dir), cfg.name or "run")
    writer = RunWriter(cfg, experiment, command=command, device=device, path=path)
    label = cfg.init.method
    trackers = _open_trackers(writer, cfg, path, [label], "train")
    try:
        result, code = _run(
            writer,
            cfg,
            _training(cfg, data, device, measure_after, threads),
            [label],
            lambda w, r: _run_status(_train_files(w, r, str(path))),
            progress=progress,
            trackers=trackers,
        )
        # the run directory's status (a stuck run completed), as its meta.json says
        trackers.finish(label, writer.meta["status"], final_metrics(result.history))
    finally:
        trackers.close()
    return Recorded(result, path, code, warnings=trackers.warnings)


def train_in_memory(
    cfg: Config,
    data: Dataset,
    experiment: dict[str, Any],
    *,
    run_dir: str,
    command: str,
    should_stop: Callable[[], bool] | None,
    plots: bool,
) -> Recorded:
    """A training run whose files are handed back as data, not written (a sweep's trial,
    in a worker that may be on another machine; `run_dir` is where the driver will put
    them). The second statistics pass and loss.png are left out unless `plots`. Its
    TensorBoard run comes back among the files (tb/...); what MLflow is to show, as
    numbers (the driver holds the sweep's MLflow runs)."""
    import tempfile

    from .trackers import final_metrics, open_worker_trackers

    device, data = _prepare(cfg, data)
    writer = RunWriter(cfg, experiment, command=command, device=device)
    label = cfg.init.method
    with tempfile.TemporaryDirectory(prefix="winit-trial-") as scratch:
        trackers = open_worker_trackers(cfg, Path(scratch), label)
        try:
            result, _ = _run(
                writer,
                cfg,
                _training(cfg, data, device, measure_after=plots),
                [label],
                lambda w, r: _train_files(w, r, run_dir, plots),
                should_stop=should_stop or (lambda: False),
                trackers=trackers,
            )
            trackers.finish(label, result.history.status, final_metrics(result.history))
        finally:
            trackers.close()
        files = {**writer.files, **trackers.files()}
    return Recorded(result, None, 0, files, trackers.warnings, trackers.recorded())


# --------------------------------------------------------------------------- compare


def _compare_files(writer: RunWriter, result: CompareResult) -> str:
    """layers.csv (a row per method and layer), summary.json, compare.png and spectra.png."""
    from .plots import compare_figure, png_bytes
    from .serialize import compare_json

    order = {run.method: i for i, run in enumerate(result.runs)}
    writer.sort_metrics(lambda row: (order.get(row["method"], len(order)), int(row["step"])))
    rows = []
    for run in result.runs:
        point = run.train.history[0] if run.train and run.train.history else None
        names = run.train.layer_names if run.train else []
        rows += _layer_rows(run.stats.layers, point, names, method=run.method)
    writer.add("layers.csv", csv_text(rows))
    writer.add("summary.json", json.dumps(compare_json(result), indent=2))
    writer.add("compare.png", png_bytes(compare_figure(result)))
    histories = {run.method: run.train for run in result.runs if run.train is not None}
    _spectra_png(writer, histories, f"{result.name}: weight spectra during training (median)")
    return "completed"


def compare(
    cfg: Config,
    specs: Sequence[InitSpec],
    *,
    runs_dir: str | Path | None = None,
    out: str | Path | None = None,
    progress: ProgressFactory | None = None,
    command: str = "",
    jobs: int | None = None,
    spp: bool = False,
) -> Recorded:
    """`winit compare`: each init on the same network, data and seed, in one run directory."""
    from .experiments import check_spp, run_compare
    from .trackers import check_trackers, final_metrics

    check_trackers(cfg)
    if spp:
        check_spp(cfg)
    for spec in specs:  # an init that cannot make a layer: refused before a directory exists
        spec.check_plan(cfg.model.plan)
    device, data = _prepare(cfg)
    experiment: dict[str, Any] = {
        "command": "compare",
        "methods": [{"method": s.method, "params": dict(s.given)} for s in specs],
    }
    if spp:
        experiment["spp"] = True
    path = (
        exact_run_dir(out)
        if out is not None
        else new_run_dir(runs_root(runs_dir), f"compare-{cfg.name}")
    )
    writer = RunWriter(cfg, experiment, command=command, device=device, path=path)

    def run(on_log: Callable, stop: Callable[[], bool]) -> CompareResult:
        return run_compare(cfg, specs, data, device, on_log, stop, jobs, spp)

    labels = [s.method for s in specs]
    trackers = _open_trackers(writer, cfg, path, labels, "compare")
    try:
        result, code = _run(
            writer,
            cfg,
            run,
            labels,
            _compare_files,
            by_method=True,
            progress=progress,
            trackers=trackers,
        )
        for method_run in result.runs:
            if method_run.train is None:  # --steps 0: the statistics at init
                trackers.log_stats(method_run.method, method_run.stats)
                final = final_metrics(None, method_run.stats.loss)
                trackers.finish(method_run.method, "completed", final)
            else:
                final = final_metrics(method_run.train)
                trackers.finish(method_run.method, method_run.train.status, final)
    finally:
        trackers.close()
    return Recorded(result, path, code, warnings=trackers.warnings)


# --------------------------------------------------------------------------- stats


def stats(
    cfg: Config,
    *,
    spp: bool = False,
    out: str | Path | None = None,
    keep: bool = False,
    runs_dir: str | Path | None = None,
    command: str = "",
) -> Recorded:
    """`winit stats`: one initialized network measured at one batch; with `out` (`--out
    DIR`) or `keep` (a new directory under the runs root, for `winit rerun`) also a run
    directory, written whole: config.yaml, meta.json, layers.csv, summary.json and
    std_vs_depth.png."""
    from .experiments import check_spp, run_stats, wants_histograms
    from .trackers import check_trackers, final_metrics, open_trackers

    check_trackers(cfg)
    if spp:
        check_spp(cfg)
    keep = keep or bool(cfg.log)  # a tracker's files need a run directory to go with
    if out is not None:
        refuse_overwrite(Path(out))
        check_creatable(Path(out).parent, f"--out {out}: the parent directory")
    elif keep:
        check_creatable(runs_root(runs_dir))
    device, data = _prepare(cfg)
    if out is None and not keep:
        return Recorded(run_stats(cfg, data, device, spp=spp), None)
    from .plots import png_bytes, std_profiles
    from .serialize import layer_row, stats_json

    experiment: dict[str, Any] = {"command": "stats", **({"spp": True} if spp else {})}
    writer = RunWriter(cfg, experiment, command=command, device=device)
    started = time.perf_counter()
    result = run_stats(cfg, data, device, spp=spp, histograms=wants_histograms(cfg))
    writer.add("layers.csv", csv_text([layer_row(layer) for layer in result.layers]))
    writer.add("summary.json", json.dumps(stats_json(result), indent=2) + "\n")
    figure = std_profiles({result.method: result.layers}, title=f"{result.name}: std vs depth")
    writer.add("std_vs_depth.png", png_bytes(figure))
    files = _finish(writer, "completed", started)
    target = out if out is not None else new_run_dir(runs_root(runs_dir), f"stats-{cfg.name}")
    path = write_run_files(target, files)
    trackers = open_trackers(cfg, path, [result.method], "stats")
    try:
        trackers.log_stats(result.method, result)
        trackers.finish(result.method, "completed", final_metrics(None, result.loss))
    finally:
        trackers.close()
    return Recorded(result, path, warnings=trackers.warnings)


# --------------------------------------------------------------------------- reproduce


def reproduce(
    repro: Reproduction,
    cfg: Config,
    *,
    fast: bool,
    runs_dir: str | Path | None = None,
    command: str = "",
) -> tuple[Finding, Path]:
    """`winit reproduce NAME`: the reproduction's finding, in a run directory written
    whole: config.yaml, meta.json, finding.json and its plots."""
    from .plots import chart_figures, png_bytes

    # Every reproduction runs on the CPU (same seed, same numbers), whatever cfg.device says.
    check_creatable(runs_root(runs_dir))  # before minutes of work, not after
    experiment = {"command": "reproduce", "name": repro.name}
    writer = RunWriter(cfg, experiment, command=command, device="cpu")
    started = time.perf_counter()
    finding = repro.run(cfg, fast)
    writer.add("finding.json", json.dumps(finding.to_dict(), indent=2) + "\n")
    for name, figure in chart_figures(finding.charts).items():
        writer.add(name, png_bytes(figure))
    files = _finish(writer, "completed", started)
    target = new_run_dir(runs_root(runs_dir), f"reproduce-{finding.name}")
    return finding, write_run_files(target, files)


# --------------------------------------------------------------------------- coordcheck


def coordcheck(
    cfg: Config,
    widths: Sequence[int],
    steps: int,
    seeds: int,
    *,
    statistic: str = "l1",
    jobs: int | None = None,
    runs_dir: str | Path | None = None,
    command: str = "",
) -> Recorded:
    """`winit coordcheck`: the coordinate check over `widths` (its networks on `jobs`
    worker processes; None: one per core), in a run directory written whole: config.yaml,
    meta.json, summary.json, coords.csv and coordcheck.png."""
    from .coordcheck import coordcheck as check
    from .coordcheck import width_configs
    from .plots import coord_check_figure, png_bytes

    width_configs(cfg, widths, 1)  # a width that cannot be built: refused before any work
    check_creatable(runs_root(runs_dir))
    device, data = _prepare(cfg)
    experiment = {
        "command": "coordcheck",
        "widths": list(widths),
        "steps": steps,
        "seeds": seeds,
        "statistic": statistic,
    }
    writer = RunWriter(cfg, experiment, command=command, device=device)
    started = time.perf_counter()
    # jobs is not in the experiment: it changes when the numbers arrive, never what they are
    result = check(cfg, data, device, widths, steps, seeds, statistic, jobs=jobs)
    writer.add("summary.json", json.dumps(result.to_dict(), indent=2) + "\n")
    writer.add("coords.csv", csv_text(result.rows()))
    writer.add("coordcheck.png", png_bytes(coord_check_figure(result)))
    files = _finish(writer, "completed", started)
    target = new_run_dir(runs_root(runs_dir), f"coordcheck-{cfg.name}")
    return Recorded(result, write_run_files(target, files))


# --------------------------------------------------------------------------- transfer


# --------------------------------------------------------------------------- spectrum


def spectrum(
    cfg: Config,
    inputs: int,
    *,
    runs_dir: str | Path | None = None,
    command: str = "",
) -> Recorded:
    """`winit spectrum`: the input-output Jacobian's spectrum at init, in a run directory
    written whole: config.yaml, meta.json, summary.json, spectrum.csv, weights.csv,
    spectrum.png and weights.png."""
    from .plots import png_bytes, spectrum_figure, weight_spectra_figure
    from .spectrum import check_inputs
    from .spectrum import spectrum as measure_spectrum

    check_inputs(inputs)
    check_creatable(runs_root(runs_dir))
    device, data = _prepare(cfg)
    writer = RunWriter(cfg, {"command": "spectrum", "inputs": inputs}, command=command,
                       device=device)  # fmt: skip
    started = time.perf_counter()
    result = measure_spectrum(cfg, data, inputs)
    writer.add("summary.json", json.dumps(result.to_dict(), indent=2) + "\n")
    writer.add("spectrum.csv", csv_text([d.to_dict() for d in result.depths]))
    writer.add("weights.csv", csv_text([w.to_dict(with_eigenvalues=False) for w in result.weights]))
    writer.add("spectrum.png", png_bytes(spectrum_figure(result)))
    if result.weights:
        writer.add("weights.png", png_bytes(weight_spectra_figure(result)))
    files = _finish(writer, "completed", started)
    target = new_run_dir(runs_root(runs_dir), f"spectrum-{cfg.name}")
    return Recorded(result, write_run_files(target, files))
