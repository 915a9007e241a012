"""TensorBoard: a run's scalars, per-layer histograms and hparams as event files, written
with torch.utils.tensorboard (which needs the tensorboard package).

One TensorBoard run (a directory of event files) per label: a train or stats run is the
directory itself; compare gets one per method under it, so that TensorBoard's run selector
groups them. Tags: loss, accuracy, test_loss, grad_norm, grad_std/<layer>, the weight
metrics (spectral_norm/<layer>, stable_rank/<layer>, alpha/<layer>), and the histograms
weights/<layer>, activations/<layer> and gradients/<layer> at every log step (step 0: at
init); the resolved config as hparams beside the final metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import point_metrics, stats_metrics

if TYPE_CHECKING:
    from ..experiments import StatsResult
    from ..histograms import Histogram, LayerHistograms
    from ..train import LogPoint


class TensorBoardTracker:
    name = "tensorboard"

    def __init__(self, base: Path, labels: list[str], params: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._params = params
        many = len(labels) > 1
        self._writers = {
            label: SummaryWriter(log_dir=str(base / label if many else base)) for label in labels
        }
        self.paths = {label: Path(w.log_dir) for label, w in self._writers.items()}

    @staticmethod
    def _histograms(layers: list[LayerHistograms]) -> list[Any]:
        from torch.utils.tensorboard.summary import histogram_raw

        def value(tag: str, h: Histogram) -> Any:
            summary = histogram_raw(tag, h.min, h.max, h.num, h.sum, h.sum_squares, h.limits,
                                    h.counts)  # fmt: skip
            return summary.value[0]

        values = []
        for layer in layers:
            values.append(value(f"weights/{layer.name}", layer.weight))
            if layer.activation is not None:
                values.append(value(f"activations/{layer.name}", layer.activation))
            if layer.grad is not None:
                values.append(value(f"gradients/{layer.name}", layer.grad))
        return values

    def _write(self, label: str, scalars: dict[str, float], values: list[Any], step: int) -> None:
        """One event for the step: every scalar and histogram in one summary (a third of
        the time of an event each)."""
        from tensorboard.compat.proto.summary_pb2 import Summary
        from torch.utils.tensorboard.summary import scalar

        values = [scalar(tag, value).value[0] for tag, value in scalars.items()] + values
        self._writers[label].file_writer.add_summary(Summary(value=values), step)

    def log_point(self, label: str, point: LogPoint, layer_names: list[str]) -> None:
        scalars = point_metrics(point, layer_names, nonfinite_loss=True)
        self._write(label, scalars, self._histograms(point.layer_histograms), point.step)

    def log_stats(self, label: str, stats: StatsResult) -> None:
        self._write(label, stats_metrics(stats), self._histograms(stats.histograms), 0)

    def finish(self, label: str, status: str, final: dict[str, float]) -> None:
        from torch.utils.tensorboard.summary import hparams

        writer = self._writers[label]
        metrics = {f"hparam/{k}": v for k, v in final.items()}
        # the hparams plugin's three summaries, in this run's own event file
        # the method is the label's (compare's are the runs' own, not the config's)
        chosen = {**self._params, "init.method": label, "status": status}
        for summary in hparams(chosen, metrics):
            writer.file_writer.add_summary(summary)
        self._write(label, metrics, [], 0)
        writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()

    abandon = close  # what it wrote so far stays readable
