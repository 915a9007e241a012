"""What a reproduction returns: the paper's claim, winit's measurement, the verdict, the
numbers, and charts as data (plots.py draws them)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..plots import Chart

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset
    from ..experiments import CompareResult
    from ..train import TrainHistory

PAPERS = Path(__file__).parent.parent / "papers"


@dataclass
class Finding:
    """A reproduction's outcome: claim, measurement, verdict, numbers and charts."""

    name: str
    paper: str
    claim: str
    measured: str
    agree: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    charts: dict[str, Chart] = field(default_factory=dict)  # file name -> chart

    def to_dict(self) -> dict[str, Any]:
        from ..serialize import json_safe

        return json_safe(
            {
                "name": self.name,
                "paper": self.paper,
                "claim": self.claim,
                "measured": self.measured,
                "agree": self.agree,
                "rows": self.rows,
            }
        )


@dataclass(frozen=True)
class Reproduction:
    name: str
    paper: str
    claim: str
    run: Callable[[Config, bool], Finding]  # (its config, fast) -> what it found

    @property
    def config_path(self) -> Path:
        return PAPERS / f"{self.name}.yaml"

    def to_dict(self) -> dict[str, str]:
        """What `winit reproduce --list --json` shows of it."""
        return {"name": self.name, "paper": self.paper, "claim": self.claim}

    def config(self, overrides: Sequence[str] = ()) -> Config:
        """The paper's config with `overrides`; no claim reads the weight metrics a training
        run logs, so they are off unless an override turns them on."""
        from ..loading import load_config

        return load_config(self.config_path, ["train.weight_spectra=false", *overrides])

    def finding(
        self,
        measured: str,
        agree: bool,
        rows: list[dict[str, Any]],
        charts: dict[str, Chart] | None = None,
    ) -> Finding:
        return Finding(self.name, self.paper, self.claim, measured, agree, rows, charts or {})


def with_overrides(cfg: Config, *overrides: str) -> Config:
    """The config with `--set`-style overrides applied (and validated again)."""
    from ..loading import apply_overrides, config_data, config_from_data

    return config_from_data(apply_overrides(config_data(cfg), list(overrides)))


def compare_at(
    cfg: Config, methods: Sequence[tuple[str, dict[str, Any]]], data: Dataset, *overrides: str
) -> CompareResult:
    """Each (method, params), with the config's gain, bias and backend, on the config
    (with `--set`-style overrides) and the same data, on the CPU."""
    from ..experiments import run_compare

    run_cfg = with_overrides(cfg, *overrides) if overrides else cfg
    specs = [run_cfg.init.spec_for(method, params) for method, params in methods]
    return run_compare(run_cfg, specs, data, "cpu")


def learned(history: TrainHistory, cfg: Config) -> bool:
    """The loss ended well below chance (the log of the class count): the net learned."""
    return history.final_loss < math.log(cfg.model.num_classes) - 0.4
