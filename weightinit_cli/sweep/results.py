"""A sweep's results as plain data: a row per trial, and per grid point the mean and
spread over seeds. Computed from the trials' summaries, so a resumed sweep reports the
trials an earlier run finished exactly as those it ran itself."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .grid import Axis, Sweep, Trial

METRICS = ("final_loss", "final_accuracy", "steps_to_target")


@dataclass
class Spread:
    """Mean and sample standard deviation of one metric over a grid point's seeds."""

    mean: float | None
    std: float | None  # None with fewer than two values
    n: int  # trials that gave a finite value

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": self.n}


def spread(values: Sequence[float | None]) -> Spread:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return Spread(None, None, 0)
    std = statistics.stdev(finite) if len(finite) > 1 else None
    return Spread(statistics.fmean(finite), std, len(finite))


def _cell(value: Any) -> Any:
    """A grid value for a CSV cell: lists and mappings as JSON, as the table shows them."""
    import json

    return json.dumps(value) if isinstance(value, (list, dict)) else value


@dataclass
class TrialResult:
    """One trial as the results table has it."""

    trial: Trial
    status: str  # completed | stuck | diverged | failed | pending (never finished)
    summary: dict[str, Any] | None = None
    error: str | None = None
    seconds: float | None = None

    def metric(self, name: str) -> float | None:
        """A metric for the group means: none from a diverged or failed trial, whose last
        finite loss (1e14, say) says only that it blew up, which its status says."""
        if self.status not in ("completed", "stuck"):
            return None
        value = (self.summary or {}).get(name)
        return float(value) if isinstance(value, (int, float)) else None

    def row(self) -> dict[str, Any]:
        """results.csv: the grid point by full field path, then the outcome."""
        summary = self.summary or {}
        return {
            "trial": self.trial.dirname,
            **{key: _cell(value) for key, value in self.trial.point.items()},
            "seed": self.trial.config.seed,
            "status": self.status,
            "initial_loss": summary.get("initial_loss"),
            "final_loss": summary.get("final_loss"),
            "final_accuracy": summary.get("final_accuracy"),
            "steps": summary.get("steps"),
            "steps_to_target": summary.get("steps_to_target"),
            "diverged_at": summary.get("diverged_at"),
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "error": self.error,
        }


@dataclass
class GroupResult:
    """A grid point without its seed: its trials' outcomes and their spread."""

    point: dict[str, Any]
    trials: int
    statuses: dict[str, int]
    metrics: dict[str, Spread] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """summary.csv: the point, the status counts, then mean and std of each metric."""
        row: dict[str, Any] = {key: _cell(value) for key, value in self.point.items()}
        row["trials"] = self.trials
        row.update({status: self.statuses.get(status, 0) for status in STATUS_ORDER})
        for name, value in self.metrics.items():
            row.update({f"{name}_mean": value.mean, f"{name}_std": value.std, f"{name}_n": value.n})
        return row

    def to_dict(self) -> dict[str, Any]:
        return {
            "point": self.point,
            "trials": self.trials,
            "statuses": self.statuses,
            **{name: value.to_dict() for name, value in self.metrics.items()},
        }


STATUS_ORDER = ("completed", "stuck", "diverged", "failed", "pending")


def group_results(results: Sequence[TrialResult], group_axes: Sequence[Axis]) -> list[GroupResult]:
    """One GroupResult per point of the group axes, in grid order."""
    keys = [axis.key for axis in group_axes]
    groups: dict[str, list[TrialResult]] = {}
    points: dict[str, dict[str, Any]] = {}
    for result in results:
        point = {key: result.trial.point[key] for key in keys}
        label = repr(list(point.values()))
        groups.setdefault(label, []).append(result)
        points.setdefault(label, point)
    out = []
    for label, members in groups.items():
        statuses: dict[str, int] = {}
        for member in members:
            statuses[member.status] = statuses.get(member.status, 0) + 1
        metrics = {name: spread([m.metric(name) for m in members]) for name in METRICS}
        ordered = {s: statuses[s] for s in STATUS_ORDER if s in statuses}
        out.append(GroupResult(points[label], len(members), ordered, metrics))
    return out


def status_counts(results: Sequence[TrialResult]) -> dict[str, int]:
    counts = {status: 0 for status in STATUS_ORDER}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts


@dataclass
class SweepResult:
    """What `winit sweep` ran and found."""

    sweep: Sweep
    run_dir: str
    status: str  # completed | incomplete (failed trials) | interrupted
    results: list[TrialResult]
    groups: list[GroupResult]
    ran: int  # trials run by this invocation
    resumed: int  # trials an earlier invocation had finished
    figures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # a tracker that stopped, say

    @property
    def counts(self) -> dict[str, int]:
        return status_counts(self.results)

    def failed(self) -> list[TrialResult]:
        return [r for r in self.results if r.status == "failed"]


@dataclass
class SweepPlan:
    """What a run of the sweep would do: which directory it resumes, and how many of its
    trials are finished there."""

    sweep: Sweep
    resumes: Path | None
    finished: int


def summarize(
    sweep: Sweep,
    run_dir: str,
    status: str,
    finished: Mapping[int, TrialResult],
    resumed: int,
) -> SweepResult:
    """Every trial's result (pending where none), grouped over seeds; `resumed` of the
    finished ones were there before this run."""
    results = [finished.get(t.index) or TrialResult(t, "pending") for t in sweep.trials]
    groups = group_results(results, sweep.group_axes)
    return SweepResult(sweep, run_dir, status, results, groups, len(finished) - resumed, resumed)


__all__ = [
    "GroupResult",
    "SweepPlan",
    "Spread",
    "SweepResult",
    "TrialResult",
    "group_results",
    "spread",
    "summarize",
]
